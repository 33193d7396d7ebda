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
