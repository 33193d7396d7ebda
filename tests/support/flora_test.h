/* Helpers shared by the test programs (cmocka). */
#ifndef FLORA_TEST_H
#define FLORA_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <bson/bson.h>

/* Parses relaxed/canonical Extended JSON into a new bson_t (caller destroys); fails the
 * test on bad JSON. Single quotes are turned into double quotes so C literals stay
 * readable: J("{'a': 1}"). */
static inline bson_t *
flora_test_json(const char *json)
{
   char *copy = strdup(json);
   bson_error_t err;
   bson_t *b;

   for (char *p = copy; *p; p++) {
      if (*p == '\'') {
         *p = '"';
      }
   }
   b = bson_new_from_json((const uint8_t *) copy, -1, &err);
   if (!b) {
      fail_msg("bad test JSON %s: %s", json, err.message);
   }
   free(copy);
   return b;
}
#define J(s) flora_test_json(s)

/* The canonical-ish relaxed JSON of a document, for messages (caller frees with bson_free). */
static inline char *
flora_test_str(const bson_t *b)
{
   return bson_as_relaxed_extended_json(b, NULL);
}

/* Asserts two documents are equal byte for byte (field order matters), printing both. */
#define assert_bson_equal(actual, expected)                                                    \
   do {                                                                                        \
      const bson_t *a_ = (actual), *e_ = (expected);                                           \
      if (!bson_equal(a_, e_)) {                                                               \
         char *as_ = flora_test_str(a_), *es_ = flora_test_str(e_);                            \
         print_error("documents differ\n  actual:   %s\n  expected: %s\n", as_, es_);          \
         bson_free(as_);                                                                       \
         bson_free(es_);                                                                       \
         fail();                                                                               \
      }                                                                                        \
   } while (0)

/* Reads the JSON file at path into a new bson_t (caller destroys); NULL when the file is
 * missing; fails the test when it is not JSON. */
static inline bson_t *
flora_test_load_json(const char *path)
{
   FILE *f = fopen(path, "rb");
   char *buf;
   long len;
   bson_t *b;
   bson_error_t err;

   if (!f) {
      return NULL;
   }
   fseek(f, 0, SEEK_END);
   len = ftell(f);
   fseek(f, 0, SEEK_SET);
   buf = malloc((size_t) len + 1);
   assert_int_equal(fread(buf, 1, (size_t) len, f), (size_t) len);
   buf[len] = '\0';
   fclose(f);
   b = bson_new_from_json((const uint8_t *) buf, len, &err);
   free(buf);
   if (!b) {
      fail_msg("%s: %s", path, err.message);
   }
   return b;
}

/* A data file of the project (path relative to FLORA_SOURCE_DIR); fails when missing. */
static inline bson_t *
flora_test_load_data(const char *rel)
{
   const char *src = getenv("FLORA_SOURCE_DIR");
   char path[4096];
   bson_t *b;

   snprintf(path, sizeof path, "%s/%s", src ? src : ".", rel);
   b = flora_test_load_json(path);
   if (!b) {
      fail_msg("cannot read %s (FLORA_SOURCE_DIR=%s)", path, src ? src : "unset");
   }
   return b;
}

/* The document or array at it as a static bson_t borrowing its bytes. */
static inline void
flora_test_doc_of(const bson_iter_t *it, bson_t *out)
{
   uint32_t len;
   const uint8_t *data;

   if (BSON_ITER_HOLDS_ARRAY(it)) {
      bson_iter_array(it, &len, &data);
   } else {
      assert_true(BSON_ITER_HOLDS_DOCUMENT(it));
      bson_iter_document(it, &len, &data);
   }
   assert_true(bson_init_static(out, data, len));
}

/* ../shared (read-only test input), or NULL when absent (a user's fresh clone). */
static inline const char *
flora_test_shared_dir(void)
{
   const char *d = getenv("FLORA_SHARED_DIR");
   static char buf[4096];

   if (!d) {
      return NULL;
   }
   snprintf(buf, sizeof buf, "%s/DESIGN.md", d);
   FILE *f = fopen(buf, "r");
   if (!f) {
      return NULL;
   }
   fclose(f);
   return d;
}

/* Skips the current test with a printed reason. */
#define flora_skip(...)                                                                        \
   do {                                                                                        \
      print_message("SKIP: " __VA_ARGS__);                                                     \
      print_message("\n");                                                                     \
      skip();                                                                                  \
   } while (0)

#endif
