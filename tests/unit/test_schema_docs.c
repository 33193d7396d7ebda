/* The generated schema reference (docs/schema/, `flora docs schema`) matches the current
 * shop schemas, and the shop's schema tables are well formed (indexes parse, patterns
 * compile, defaults parse and satisfy their own rules). */
#include "flora_test.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "doc/schema_private.h"
#include "flora/shop.h"

static char *
read_file(const char *path, size_t *len)
{
   FILE *f = fopen(path, "rb");
   char *text = NULL;
   size_t size = 0;
   FILE *mem;
   char buf[4096];
   size_t n;

   if (!f) {
      return NULL;
   }
   mem = open_memstream(&text, &size);
   while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
      fwrite(buf, 1, n, mem);
   }
   fclose(f);
   fclose(mem);
   *len = size;
   return text;
}

static void
remove_dir(const char *dir)
{
   DIR *d = opendir(dir);
   struct dirent *e;
   char path[4096];

   if (!d) {
      return;
   }
   while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') {
         continue;
      }
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
   }
   closedir(d);
   rmdir(dir);
}

static int
run_docs(const char *dir)
{
   char *argv[] = {"docs", "schema", (char *) dir, NULL};
   return flora_cmd_docs(NULL, 3, argv);
}

static void
test_docs_up_to_date(void **state)
{
   const char *src = getenv("FLORA_SOURCE_DIR");
   const char *binary = getenv("FLORA_BINARY");
   char tmp[] = "/tmp/flora-schema-docs-XXXXXX";
   char committed_dir[4096], path[4400], how[4400];
   DIR *d;
   struct dirent *e;
   int pages = 0;

   (void) state;
   if (!src) {
      fail_msg("FLORA_SOURCE_DIR is not set: run this test through ctest");
   }
   snprintf(how, sizeof how, "run `cd %s && %s docs schema` to regenerate", src,
            binary ? binary : "build/<dir>/flora");
   snprintf(committed_dir, sizeof committed_dir, "%s/docs/schema", src);
   assert_non_null(mkdtemp(tmp));
   assert_int_equal(run_docs(tmp), 0);

   /* Every generated page is committed, byte for byte. */
   d = opendir(tmp);
   assert_non_null(d);
   while ((e = readdir(d)) != NULL) {
      size_t glen = 0, clen = 0;
      char *generated, *committed;
      if (e->d_name[0] == '.') {
         continue;
      }
      snprintf(path, sizeof path, "%s/%s", tmp, e->d_name);
      generated = read_file(path, &glen);
      snprintf(path, sizeof path, "%s/%s", committed_dir, e->d_name);
      committed = read_file(path, &clen);
      if (!committed || clen != glen || memcmp(committed, generated, glen) != 0) {
         print_error("docs/schema/%s is %s the schemas: %s\n", e->d_name,
                     committed ? "out of date with" : "missing for", how);
         free(generated);
         free(committed);
         closedir(d);
         remove_dir(tmp);
         fail();
      }
      free(generated);
      free(committed);
      pages++;
   }
   closedir(d);
   assert_true(pages >= 2); /* README.md and at least one collection */

   /* Nothing committed that the schemas no longer generate. */
   d = opendir(committed_dir);
   assert_non_null(d);
   while ((e = readdir(d)) != NULL) {
      size_t len = strlen(e->d_name);
      if (len < 4 || strcmp(e->d_name + len - 3, ".md") != 0) {
         continue;
      }
      snprintf(path, sizeof path, "%s/%s", tmp, e->d_name);
      if (access(path, F_OK) != 0) {
         print_error("docs/schema/%s belongs to no schema: %s (it removes stale pages)\n",
                     e->d_name, how);
         closedir(d);
         remove_dir(tmp);
         fail();
      }
   }
   closedir(d);
   remove_dir(tmp);
}

static void
test_docs_usage(void **state)
{
   char *no_topic[] = {"docs", NULL};
   char *bad_topic[] = {"docs", "openapi", NULL};
   char *too_many[] = {"docs", "schema", "a", "b", NULL};

   (void) state;
   assert_int_equal(flora_cmd_docs(NULL, 1, no_topic), 2);
   assert_int_equal(flora_cmd_docs(NULL, 2, bad_topic), 2);
   assert_int_equal(flora_cmd_docs(NULL, 4, too_many), 2);
}

static void
write_text(const char *dir, const char *name, const char *text)
{
   char path[4096];
   FILE *f;

   snprintf(path, sizeof path, "%s/%s", dir, name);
   f = fopen(path, "wb");
   assert_non_null(f);
   fputs(text, f);
   fclose(f);
}

static void
test_docs_removes_only_stale_generated_pages(void **state)
{
   char tmp[] = "/tmp/flora-schema-docs-XXXXXX";
   char sub[4200], path[4300];
   const flora_schema_t *const *schemas = flora_shop_schemas();

   (void) state;
   assert_non_null(mkdtemp(tmp));
   snprintf(sub, sizeof sub, "%s/nested/dir", tmp); /* created like mkdir -p */
   assert_int_equal(run_docs(sub), 0);
   write_text(sub, "gone.md",
              "<!-- Generated from lib/shop/*.c by `flora docs schema`; do not edit. -->\n# `gone`\n");
   write_text(sub, "notes.md", "# Hand-written notes\n");
   assert_int_equal(run_docs(sub), 0);
   snprintf(path, sizeof path, "%s/gone.md", sub);
   assert_int_not_equal(access(path, F_OK), 0);
   snprintf(path, sizeof path, "%s/notes.md", sub);
   assert_int_equal(access(path, F_OK), 0);
   snprintf(path, sizeof path, "%s/%s.md", sub, schemas[0]->collection);
   assert_int_equal(access(path, F_OK), 0);
   remove_dir(sub);
   snprintf(sub, sizeof sub, "%s/nested", tmp);
   rmdir(sub);
   rmdir(tmp);
}

/* ---- the shop's tables ------------------------------------------------------------ */

static void
check_field(const char *collection, const char *path, const flora_field_t *f)
{
   char reason[128], sub[512];

   if (f->types == 0) {
      fail_msg("%s: %s: no type", collection, path);
   }
   if (f->pattern && !flora__schema_regex(f->pattern, reason, sizeof reason)) {
      fail_msg("%s: %s: pattern %s does not compile: %s", collection, path, f->pattern, reason);
   }
   if (f->enum_values && !f->enum_values[0]) {
      fail_msg("%s: %s: empty enum", collection, path);
   }
   if (f->items) {
      snprintf(sub, sizeof sub, "%s[]", path);
      check_field(collection, sub, f->items);
   }
   for (const flora_field_t *c = f->fields; c && c->path; c++) {
      snprintf(sub, sizeof sub, "%s.%s", path, c->path);
      check_field(collection, sub, c);
   }
}

static void
test_shop_schemas_well_formed(void **state)
{
   const flora_schema_t *const *schemas = flora_shop_schemas();
   bson_t empty = BSON_INITIALIZER;

   (void) state;
   assert_non_null(schemas[0]);
   for (size_t i = 0; schemas[i]; i++) {
      const flora_schema_t *s = schemas[i];
      bson_t out, prepared, problems = BSON_INITIALIZER;
      bson_iter_t it, item;
      flora_error_t error = {0};

      assert_non_null(s->collection);
      assert_ptr_equal(flora_shop_schema(s->collection), s);
      for (const flora_field_t *f = s->fields; f && f->path; f++) {
         check_field(s->collection, f->path, f);
      }
      if (!flora_schema_index_specs(s, &out, &error)) {
         fail_msg("%s: %s", s->collection, error.message);
      }
      bson_destroy(&out);
      assert_true(flora_schema_json_schema(s, &out, &error));
      bson_destroy(&out);
      /* Defaults parse, and an empty document with its defaults fails only for the
       * required fields that have none. */
      if (!flora_schema_prepare_insert(s, &empty, INT64_C(1700000000000), &prepared, &error)) {
         fail_msg("%s: %s", s->collection, error.message);
      }
      flora_schema_validate(s, &prepared, &problems, NULL);
      bson_iter_init(&it, &problems);
      while (bson_iter_next(&it)) {
         bson_iter_recurse(&it, &item);
         assert_true(bson_iter_find(&item, "reason"));
         if (strcmp(bson_iter_utf8(&item, NULL), "is required") != 0) {
            char *j = bson_as_relaxed_extended_json(&problems, NULL);
            fail_msg("%s: a default breaks its own rules: %s", s->collection, j);
         }
      }
      bson_destroy(&problems);
      bson_destroy(&prepared);
   }
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_docs_up_to_date),
      cmocka_unit_test(test_docs_usage),
      cmocka_unit_test(test_docs_removes_only_stale_generated_pages),
      cmocka_unit_test(test_shop_schemas_well_formed),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
