/* Configuration: defaults, file, environment precedence, bounds errors naming the key and
 * the source, masking of secrets, and the committed example file being current. */
#include "flora_test.h"

#include <unistd.h>

#include "flora/config.h"

static char tmpdir[] = "/tmp/flora-test-config-XXXXXX";

static const char *const env_vars[] = {
   "FLORA_STORE_URI", "FLORA_HTTP_PORT", "FLORA_HTTP_ADMIN_TOKEN", "FLORA_LOG_LEVEL",
   "FLORA_LOG_REQUESTS", "FLORA_CATALOG_PAGE_SIZE_MAX", "FLORA_HTTP_THREADS",
};

static int
setup(void **state)
{
   (void) state;
   for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++) {
      unsetenv(env_vars[i]);
   }
   return 0;
}

/* Writes text to a file in tmpdir and returns its path (static buffer). */
static const char *
write_file(const char *name, const char *text)
{
   static char path[512];
   FILE *f;

   snprintf(path, sizeof path, "%s/%s", tmpdir, name);
   f = fopen(path, "w");
   assert_non_null(f);
   fputs(text, f);
   fclose(f);
   return path;
}

static char *
capture(flora_config_t *config)
{
   char *buf = NULL;
   size_t len = 0;
   FILE *f = open_memstream(&buf, &len);

   assert_non_null(f);
   if (config) {
      flora_config_print(config, f);
   } else {
      flora_config_print_example(f);
   }
   fclose(f);
   return buf;
}

static void
test_defaults(void **state)
{
   flora_config_t *c = NULL;
   flora_error_t e = {0};

   (void) state;
   assert_true(flora_config_load(&c, NULL, &e));
   assert_string_equal(flora_config_string(c, "store.uri"), "sqlite:var/flora.db");
   assert_int_equal(flora_config_int(c, "store.ttl_sweep_interval_s"), 60);
   assert_string_equal(flora_config_string(c, "http.bind"), "127.0.0.1");
   assert_int_equal(flora_config_int(c, "http.port"), 8080);
   assert_int_equal(flora_config_int(c, "http.threads"), 4);
   assert_int_equal(flora_config_int(c, "http.max_body_bytes"), 1048576);
   assert_string_equal(flora_config_string(c, "http.admin_token"), "");
   assert_string_equal(flora_config_string(c, "log.level"), "info");
   assert_string_equal(flora_config_string(c, "log.format"), "logfmt");
   assert_true(flora_config_bool(c, "log.requests"));
   assert_string_equal(flora_config_string(c, "shop.timezone"), "Europe/Moscow");
   assert_string_equal(flora_config_string(c, "shop.currency"), "RUB");
   assert_int_equal(flora_config_int(c, "catalog.page_size_default"), 24);
   assert_int_equal(flora_config_int(c, "catalog.page_size_max"), 100);
   flora_config_destroy(c);
}

static void
test_file_and_env_precedence(void **state)
{
   flora_config_t *c = NULL;
   flora_error_t e = {0};
   const char *path = write_file("a.conf", "# comment\n"
                                           "\n"
                                           "http.port = 9090   # trailing comment\n"
                                           "  http.threads=8\n"
                                           "store.uri = \"sqlite:/tmp/x #1.db\"  # quoted keeps #\n"
                                           "shop.timezone = 'Asia/Yekaterinburg'\n"
                                           "log.requests = off\n"
                                           "http.admin_token = \"s\\\"ecret\"\n");
   char *printed;

   (void) state;
   setenv("FLORA_HTTP_PORT", "7070", 1);
   assert_true(flora_config_load(&c, path, &e));
   assert_int_equal(flora_config_int(c, "http.port"), 7070); /* env beats file */
   assert_int_equal(flora_config_int(c, "http.threads"), 8);
   assert_string_equal(flora_config_string(c, "store.uri"), "sqlite:/tmp/x #1.db");
   assert_string_equal(flora_config_string(c, "shop.timezone"), "Asia/Yekaterinburg");
   assert_false(flora_config_bool(c, "log.requests"));
   assert_string_equal(flora_config_string(c, "http.admin_token"), "s\"ecret");

   /* Sources are printed beside the values; secrets are masked. */
   printed = capture(c);
   assert_non_null(strstr(printed, "http.port = 7070  # env FLORA_HTTP_PORT\n"));
   assert_non_null(strstr(printed, "http.threads = 8  # "));
   assert_non_null(strstr(printed, "a.conf:4\n"));
   assert_non_null(strstr(printed, "http.admin_token = \"***\"  # "));
   assert_null(strstr(printed, "s\\\"ecret")); /* the value, not key names like pay.*.secret_key */
   assert_null(strstr(printed, "s\"ecret"));
   free(printed);

   /* A command-line flag beats both; a copy is independent of the original. */
   {
      flora_config_t *copy = NULL;

      assert_true(flora_config_copy(&copy, c, &e));
      assert_true(flora_config_set(copy, "http.port", "6060", "--port", &e));
      assert_int_equal(flora_config_int(copy, "http.port"), 6060);
      assert_int_equal(flora_config_int(c, "http.port"), 7070);
      assert_string_equal(flora_config_string(copy, "store.uri"), "sqlite:/tmp/x #1.db");
      printed = capture(copy);
      assert_non_null(strstr(printed, "http.port = 6060  # --port\n"));
      free(printed);
      flora_config_destroy(copy);
   }
   flora_config_destroy(c);
}

static void
test_masking(void **state)
{
   flora_config_t *c = NULL;
   flora_error_t e = {0};
   char *printed;

   (void) state;
   setenv("FLORA_STORE_URI", "mongodb://shop:pa55@db1:27017,db2/flora?replicaSet=rs0", 1);
   assert_true(flora_config_load(&c, NULL, &e));
   printed = capture(c);
   assert_non_null(strstr(printed, "store.uri = \"mongodb://shop:***@db1:27017,db2/flora"));
   assert_null(strstr(printed, "pa55"));
   free(printed);
   flora_config_destroy(c);
   /* An unencoded '@' in the password does not leak its tail. */
   setenv("FLORA_STORE_URI", "mongodb://shop:p@55word@db1/flora", 1);
   assert_true(flora_config_load(&c, NULL, &e));
   printed = capture(c);
   assert_non_null(strstr(printed, "store.uri = \"mongodb://shop:***@db1/flora\""));
   assert_null(strstr(printed, "55word"));
   assert_non_null(strstr(printed, "http.admin_token = \"\"  # default\n"));
   free(printed);
   flora_config_destroy(c);
}

typedef struct bad_case {
   const char *file_text; /* NULL: no file */
   const char *env;       /* "NAME=value" or NULL */
   const char *expect[3]; /* substrings of the error message */
} bad_case_t;

static void
test_errors_name_key_and_source(void **state)
{
   static const bad_case_t cases[] = {
      {"http.port = 70000\n", NULL, {"bad.conf:1", "http.port", "out of range 0..65535"}},
      {"# x\nhttp.prot = 1\n", NULL, {"bad.conf:2", "unknown key 'http.prot'"}},
      {"http.threads = 0\n", NULL, {"bad.conf:1", "http.threads", "1..256"}},
      {"http.threads = 4x\n", NULL, {"bad.conf:1", "http.threads", "not an integer"}},
      {"log.level = loud\n", NULL, {"bad.conf:1", "log.level", "debug|info|warn|error"}},
      {"log.format = xml\n", NULL, {"log.format", "logfmt|json"}},
      {"log.requests = maybe\n", NULL, {"log.requests", "not a boolean"}},
      {"store.uri = \"unterminated\n", NULL, {"bad.conf:1", "unterminated"}},
      {"just words\n", NULL, {"bad.conf:1", "key = value"}},
      {NULL, "FLORA_HTTP_THREADS=999", {"env FLORA_HTTP_THREADS", "http.threads", "1..256"}},
      {NULL, "FLORA_CATALOG_PAGE_SIZE_MAX=10", {"catalog.page_size_default", "page_size_max"}},
      {"shop.currency = rub\n", NULL, {"bad.conf:1", "shop.currency", "ISO 4217"}},
      {"shop.timezone = ../../etc/passwd\n", NULL, {"bad.conf:1", "shop.timezone", "IANA"}},
      {"shop.timezone = Europe/Mos cow\n", NULL, {"bad.conf:1", "shop.timezone"}},
   };

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      const bad_case_t *bc = &cases[i];
      flora_config_t *c = NULL;
      flora_error_t e = {0};
      const char *path = bc->file_text ? write_file("bad.conf", bc->file_text) : NULL;
      char env[128];

      setup(NULL);
      if (bc->env) {
         snprintf(env, sizeof env, "%s", bc->env);
         *strchr(env, '=') = '\0';
         setenv(env, strchr(bc->env, '=') + 1, 1);
      }
      assert_false(flora_config_load(&c, path, &e));
      assert_null(c);
      assert_int_equal(e.domain, FLORA_DOMAIN_CONFIG);
      for (size_t j = 0; j < 3 && bc->expect[j]; j++) {
         if (!strstr(e.message, bc->expect[j])) {
            fail_msg("case %zu: '%s' not in '%s'", i, bc->expect[j], e.message);
         }
      }
   }
   setup(NULL);
}

static void
test_set_rejects_and_keeps_old_value(void **state)
{
   flora_config_t *c = NULL;
   flora_error_t e = {0};

   (void) state;
   assert_true(flora_config_load(&c, NULL, &e));
   assert_false(flora_config_set(c, "http.port", "-1", "--port", &e));
   assert_non_null(strstr(e.message, "--port: http.port"));
   assert_int_equal(flora_config_int(c, "http.port"), 8080);
   assert_false(flora_config_set(c, "nope", "1", "--nope", &e));
   assert_int_equal(e.code, FLORA_ERR_NOT_FOUND);
   assert_false(flora_config_set(c, "catalog.page_size_max", "5", "--max", &e));
   assert_int_equal(flora_config_int(c, "catalog.page_size_max"), 100);
   flora_config_destroy(c);
   assert_false(flora_config_load(&c, "/nonexistent/flora.conf", &e));
   assert_null(c);
   assert_non_null(strstr(e.message, "/nonexistent/flora.conf"));
}

/* The generated example loads, gives the defaults, and matches docs/flora.conf.example. */
static void
test_example_file_is_current(void **state)
{
   char *example = capture(NULL);
   const char *src = getenv("FLORA_SOURCE_DIR");
   char path[1024];
   char *committed = NULL;
   size_t cap = 0;
   FILE *f;
   flora_config_t *c = NULL;
   flora_error_t e = {0};
   char *defaults;
   char *loaded;

   (void) state;
   /* Loading the example file gives the same values as no file at all. */
   assert_true(flora_config_load(&c, write_file("example.conf", example), &e));
   loaded = capture(c);
   flora_config_destroy(c);
   assert_true(flora_config_load(&c, NULL, &e));
   defaults = capture(c);
   flora_config_destroy(c);
   /* Sources differ (file:line versus default); compare the values only. */
   for (char *a = loaded, *b = defaults; a && b;) {
      char *ea = strstr(a, "  # ");
      char *eb = strstr(b, "  # ");

      assert_non_null(ea);
      assert_non_null(eb);
      assert_int_equal(ea - a, eb - b);
      assert_memory_equal(a, b, (size_t) (ea - a));
      a = strchr(ea, '\n');
      b = strchr(eb, '\n');
      if (!a || !a[1]) {
         break;
      }
      a++;
      b++;
   }
   free(loaded);
   free(defaults);

   if (!src) {
      free(example);
      flora_skip("FLORA_SOURCE_DIR is not set (run through ctest)");
   }
   snprintf(path, sizeof path, "%s/docs/flora.conf.example", src);
   f = fopen(path, "r");
   if (!f) {
      fail_msg("%s is missing: run `flora config --example > docs/flora.conf.example`", path);
   }
   committed = calloc(1, 1);
   {
      char chunk[4096];
      size_t n;
      size_t len = 0;

      while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
         committed = realloc(committed, len + n + 1);
         memcpy(committed + len, chunk, n);
         len += n;
         committed[len] = '\0';
      }
      cap = len;
   }
   fclose(f);
   if (strcmp(committed, example) != 0) {
      fail_msg("docs/flora.conf.example (%zu bytes) is stale: regenerate it with "
               "`flora config --example > docs/flora.conf.example`",
               cap);
   }
   free(committed);
   free(example);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_defaults, setup),
      cmocka_unit_test_setup(test_file_and_env_precedence, setup),
      cmocka_unit_test_setup(test_masking, setup),
      cmocka_unit_test_setup(test_errors_name_key_and_source, setup),
      cmocka_unit_test_setup(test_set_rejects_and_keeps_old_value, setup),
      cmocka_unit_test_setup(test_example_file_is_current, setup),
   };
   int rc;

   if (!mkdtemp(tmpdir)) {
      perror("mkdtemp");
      return 1;
   }
   rc = cmocka_run_group_tests(tests, NULL, NULL);
   {
      char cmd[600];

      snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
      if (system(cmd) != 0) {
         fprintf(stderr, "could not remove %s\n", tmpdir);
      }
   }
   return rc;
}
