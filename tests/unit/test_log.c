/* Structured logs: escaping in both formats, JSON lines that parse (bson_new_from_json),
 * level filtering, RFC 3339 timestamps. stderr is redirected to a pipe to read the lines. */
#include "flora_test.h"

#include <fcntl.h>
#include <unistd.h>

#include "flora/log.h"

static int pipe_fds[2];
static int saved_stderr = -1;

static int
redirect(void **state)
{
   (void) state;
   fflush(stderr);
   assert_int_equal(pipe(pipe_fds), 0);
   fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
   saved_stderr = dup(STDERR_FILENO);
   dup2(pipe_fds[1], STDERR_FILENO);
   return 0;
}

static int
restore(void **state)
{
   (void) state;
   dup2(saved_stderr, STDERR_FILENO);
   close(saved_stderr);
   close(pipe_fds[0]);
   close(pipe_fds[1]);
   flora_log_configure("info", "logfmt");
   return 0;
}

/* Everything written so far (static buffer). */
static const char *
drain(void)
{
   static char buf[65536];
   ssize_t n = read(pipe_fds[0], buf, sizeof buf - 1);

   buf[n > 0 ? n : 0] = '\0';
   return buf;
}

static void
test_logfmt_escaping(void **state)
{
   const char *out;

   (void) state;
   assert_true(flora_log_configure("debug", "logfmt"));
   FLORA_LOG_INFO("http", "request done", "path", "/a b", "q", "say \"hi\"\\", "nl", "a\nb\tc",
                  "ctl", "\x01", "empty", "", "ru", "Розы", "bad", "x\xff", "k=y", "plain");
   out = drain();
   assert_non_null(strstr(out, " level=info domain=http msg=\"request done\" path=\"/a b\" "
                               "q=\"say \\\"hi\\\"\\\\\" nl=\"a\\nb\\tc\" ctl=\"\\u0001\" empty=\"\" "
                               "ru=\"Розы\" bad=\"x\xEF\xBF\xBD\" k_y=plain\n"));
   assert_memory_equal(out, "ts=", 3);
   /* 2026-11-30T16:26:43.123Z */
   assert_int_equal(out[3 + 4], '-');
   assert_int_equal(out[3 + 10], 'T');
   assert_int_equal(out[3 + 19], '.');
   assert_int_equal(out[3 + 23], 'Z');
   assert_int_equal(strchr(out, '\n')[1], '\0'); /* exactly one line */
}

static void
test_json_lines_parse(void **state)
{
   static const char *const values[] = {
      "plain", "quote \" backslash \\ slash /", "ctl \x01\x1f\x7f", "nl \n cr \r tab \t",
      "utf-8 Розы 🌹", "bad \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 end", "",
   };

   (void) state;
   assert_true(flora_log_configure("info", "json"));
   for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
      const char *out;
      bson_t *doc;
      bson_error_t err;
      bson_iter_t it;

      FLORA_LOG_WARN("store", "event", "value", values[i], "n", "1");
      out = drain();
      assert_int_equal(out[strlen(out) - 1], '\n');
      doc = bson_new_from_json((const uint8_t *) out, (ssize_t) strlen(out) - 1, &err);
      if (!doc) {
         fail_msg("invalid JSON line %s: %s", out, err.message);
      }
      assert_true(bson_iter_init_find(&it, doc, "level"));
      assert_string_equal(bson_iter_utf8(&it, NULL), "warn");
      assert_true(bson_iter_init_find(&it, doc, "value"));
      assert_true(bson_utf8_validate(bson_iter_utf8(&it, NULL), strlen(bson_iter_utf8(&it, NULL)),
                                     false));
      if (i < 5) {
         /* Valid UTF-8 comes back unchanged. */
         assert_string_equal(bson_iter_utf8(&it, NULL), values[i]);
      }
      assert_true(bson_iter_init_find(&it, doc, "ts"));
      assert_int_equal(strlen(bson_iter_utf8(&it, NULL)), 24);
      bson_destroy(doc);
   }
}

static void
test_levels(void **state)
{
   (void) state;
   assert_true(flora_log_configure("warn", "logfmt"));
   assert_false(flora_log_enabled(FLORA_LOG_LEVEL_INFO));
   assert_true(flora_log_enabled(FLORA_LOG_LEVEL_ERROR));
   FLORA_LOG_INFO("x", "hidden");
   FLORA_LOG_DEBUG("x", "hidden");
   assert_string_equal(drain(), "");
   FLORA_LOG_ERROR("x", "shown");
   assert_non_null(strstr(drain(), "level=error domain=x msg=shown\n"));
   assert_false(flora_log_configure("loud", "logfmt"));
   assert_false(flora_log_configure("info", "xml"));
   assert_false(flora_log_enabled(FLORA_LOG_LEVEL_INFO)); /* unchanged by a bad call */
}

static void
test_long_line(void **state)
{
   char big[5000];
   const char *out;

   (void) state;
   memset(big, 'a', sizeof big - 1);
   big[sizeof big - 1] = '\0';
   assert_true(flora_log_configure("info", "logfmt"));
   FLORA_LOG_INFO("x", "big", "v", big);
   out = drain();
   assert_non_null(strstr(out, big));
   assert_int_equal(out[strlen(out) - 1], '\n');
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_logfmt_escaping, redirect, restore),
      cmocka_unit_test_setup_teardown(test_json_lines_parse, redirect, restore),
      cmocka_unit_test_setup_teardown(test_levels, redirect, restore),
      cmocka_unit_test_setup_teardown(test_long_line, redirect, restore),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
