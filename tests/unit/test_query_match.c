/* Filters (lib/query/match.c): the table in tests/data/query/match.json, the OpenDocDB
 * corpus recorded from real MongoDB (../shared/conformance/opendocdb-cts/query), and the
 * matcher's API edges. */
#include "flora_test.h"

#include "flora/query.h"
#include "query/query_private.h"

/* Reads a JSON file into a new bson_t (a top-level array becomes {"0": ..., "1": ...}),
 * or NULL when the file is absent. Fails the test on bad JSON. */
static void
test_match_table(void **state)
{
   bson_t *data = flora_test_load_data("tests/data/query/match.json");
   bson_iter_t it, cases, fld;
   int n = 0;

   (void) state;
   assert_true(bson_iter_init_find(&it, data, "cases"));
   assert_true(bson_iter_recurse(&it, &cases));
   while (bson_iter_next(&cases)) {
      bson_t c, doc, filter;
      flora_matcher_t *m;
      flora_error_t err;
      bool want, got;
      int index = -7;

      flora_test_doc_of(&cases, &c);
      assert_true(bson_iter_init_find(&fld, &c, "doc"));
      flora_test_doc_of(&fld, &doc);
      assert_true(bson_iter_init_find(&fld, &c, "filter"));
      flora_test_doc_of(&fld, &filter);
      assert_true(bson_iter_init_find(&fld, &c, "match"));
      want = bson_iter_bool(&fld);
      m = flora_matcher_new(&filter, &err);
      if (!m) {
         char *fs = flora_test_str(&filter);

         fail_msg("case %d: %s does not compile: %s", n, fs, err.message);
      }
      got = flora_matcher_match(m, &doc, &index);
      if (got != want || got != flora_matcher_match(m, &doc, NULL)) {
         char *fs = flora_test_str(&filter), *ds = flora_test_str(&doc);

         fail_msg("case %d: %s on %s: got %d, want %d", n, fs, ds, got, want);
      }
      if (!got) {
         assert_int_equal(index, -1);
      }
      if (bson_iter_init_find(&fld, &c, "index") && index != bson_iter_as_int64(&fld)) {
         char *fs = flora_test_str(&filter), *ds = flora_test_str(&doc);

         fail_msg("case %d: %s on %s: first array index %d, want %d", n, fs, ds, index,
                  (int) bson_iter_as_int64(&fld));
      }
      flora_matcher_destroy(m);
      n++;
   }
   assert_true(n > 150);
   bson_destroy(data);
}

static void
test_match_errors(void **state)
{
   bson_t *data = flora_test_load_data("tests/data/query/match.json");
   bson_iter_t it, cases, fld;
   int n = 0;

   (void) state;
   assert_true(bson_iter_init_find(&it, data, "errors"));
   assert_true(bson_iter_recurse(&it, &cases));
   while (bson_iter_next(&cases)) {
      bson_t c, filter;
      flora_matcher_t *m;
      flora_error_t err;
      const char *want_msg;
      int64_t want_code;

      flora_test_doc_of(&cases, &c);
      assert_true(bson_iter_init_find(&fld, &c, "filter"));
      flora_test_doc_of(&fld, &filter);
      assert_true(bson_iter_init_find(&fld, &c, "code"));
      want_code = bson_iter_as_int64(&fld);
      assert_true(bson_iter_init_find(&fld, &c, "message"));
      want_msg = bson_iter_utf8(&fld, NULL);
      flora_error_clear(&err);
      m = flora_matcher_new(&filter, &err);
      if (m || err.domain != FLORA_DOMAIN_STORE || err.code != want_code ||
          !strstr(err.message, want_msg)) {
         char *fs = flora_test_str(&filter);

         fail_msg("error case %d: %s: compiled=%d code %u message '%s', want %lld '%s'", n, fs,
                  m != NULL, err.code, err.message, (long long) want_code, want_msg);
      }
      n++;
   }
   assert_true(n > 40);
   bson_destroy(data);
}

/* ---- the OpenDocDB corpus ------------------------------------------------------------ */

static bool
is_unsupported_case(const bson_t *filter)
{
   char *s = bson_as_relaxed_extended_json(filter, NULL);
   static const char *const ops[] = {"$where", "$expr", "$jsonSchema", "$bits", "$geo",
                                     "$near", "$box", "$center", "$polygon"};
   bool found = false;

   for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
      found = found || strstr(s, ops[i]) != NULL;
   }
   bson_free(s);
   return found;
}

static int
run_cts_file(const char *dir, const char *file, int *unsupported)
{
   char path[4096];
   bson_t *suite;
   bson_iter_t it;
   int ran = 0;

   snprintf(path, sizeof path, "%s/%s", dir, file);
   suite = flora_test_load_json(path);
   assert_non_null(suite);
   bson_iter_init(&it, suite);
   while (bson_iter_next(&it)) {
      bson_t tc, request, response, filter, sortspec, expected;
      bson_iter_t f, cur;
      bson_t *fixture;
      flora_matcher_t *m;
      flora_sort_t *s;
      flora_error_t err;
      flora_docs_t got = FLORA_DOCS_INIT;
      char fixture_path[4096];
      bson_iter_t fx;
      size_t i = 0;

      flora_test_doc_of(&it, &tc);
      assert_true(bson_iter_init_find(&f, &tc, "request"));
      flora_test_doc_of(&f, &request);
      assert_true(bson_iter_init_find(&f, &tc, "response"));
      flora_test_doc_of(&f, &response);
      if (!bson_iter_init_find(&f, &request, "find") || bson_has_field(&request, "projection")) {
         continue;
      }
      snprintf(fixture_path, sizeof fixture_path, "%s/../%s.fixture.json", dir,
               bson_iter_utf8(&f, NULL));
      assert_true(bson_iter_init_find(&f, &request, "filter"));
      flora_test_doc_of(&f, &filter);
      m = flora_matcher_new(&filter, &err);
      if (is_unsupported_case(&filter)) {
         assert_null(m);
         assert_int_equal(err.code, FLORA_STORE_BAD_VALUE);
         assert_non_null(strstr(err.message, "unsupported query operator"));
         (*unsupported)++;
         continue;
      }
      if (!m) {
         fail_msg("%s: filter does not compile: %s", file, err.message);
      }
      assert_true(bson_iter_init_find(&f, &request, "sort"));
      flora_test_doc_of(&f, &sortspec);
      s = flora_sort_new(&sortspec, &err);
      assert_non_null(s);
      fixture = flora_test_load_json(fixture_path);
      assert_non_null(fixture);
      bson_iter_init(&fx, fixture);
      while (bson_iter_next(&fx)) {
         bson_t d;

         flora_test_doc_of(&fx, &d);
         if (flora_matcher_match(m, &d, NULL)) {
            flora_docs_append_copy(&got, &d);
         }
      }
      flora_sort_docs(s, &got);
      assert_true(bson_iter_init_find(&f, &response, "cursor"));
      assert_true(bson_iter_recurse(&f, &cur));
      assert_true(bson_iter_find(&cur, "firstBatch"));
      flora_test_doc_of(&cur, &expected);
      bson_iter_init(&fx, &expected);
      while (bson_iter_next(&fx)) {
         bson_t want;

         flora_test_doc_of(&fx, &want);
         if (i >= got.len) {
            char *ws = flora_test_str(&want);

            fail_msg("%s: missing result %zu %s", file, i, ws);
         }
         if (!bson_equal(got.items[i], &want)) {
            print_error("%s: result %zu differs\n", file, i);
         }
         assert_bson_equal(got.items[i], &want);
         i++;
      }
      if (i != got.len) {
         char *gs = flora_test_str(got.items[i]);

         fail_msg("%s: extra result %s", file, gs);
      }
      if (0) {
      }
      flora_docs_clear(&got);
      flora_sort_destroy(s);
      flora_matcher_destroy(m);
      bson_destroy(fixture);
      ran++;
   }
   bson_destroy(suite);
   return ran;
}

static void
test_opendocdb_query(void **state)
{
   static const char *const files[] = {
      "comparison/eq.json",   "comparison/ne.json",  "comparison/gt.json",
      "comparison/gte.json",  "comparison/lt.json",  "comparison/lte.json",
      "comparison/in.json",   "comparison/nin.json", "logical/and.json",
      "logical/or.json",      "logical/not.json",    "element/exists.json",
      "evaluation/mod.json",  "evaluation/regex.json", "evaluation/where.json",
      "evaluation/expr.json", "evaluation/jsonSchema.json", "array/all.json",
      "array/elemmatch.json", "bitwise/bitsAllSet.json", "bitwise/bitsAnyClear.json",
      "geospatial/geoWithin.json",
   };
   const char *shared = flora_test_shared_dir();
   char dir[4096];
   int ran = 0, unsupported = 0;

   (void) state;
   if (!shared) {
      flora_skip("FLORA_SHARED_DIR is not set or holds no corpus: OpenDocDB cases not run");
   }
   snprintf(dir, sizeof dir, "%s/conformance/opendocdb-cts/query", shared);
   for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
      ran += run_cts_file(dir, files[i], &unsupported);
   }
   print_message("OpenDocDB query cases: %d agreed with MongoDB, %d refused as unsupported\n",
                 ran, unsupported);
   assert_true(ran >= 15);
   assert_true(unsupported >= 5);
}

/* ---- $regex/$options operator forms (libbson's JSON parser rewrites them) ------------- */

typedef enum { ARG_NONE, ARG_STRING, ARG_REGEX, ARG_INT } arg_kind_t;

static const struct {
   arg_kind_t regex_kind;
   const char *pattern;
   const char *regex_options; /* of a regex-typed $regex */
   const char *options;       /* $options, or NULL */
   bool options_first;
   const char *value;
   bool match;
   uint32_t code; /* compile error, or 0 */
} regex_op_cases[] = {
   {ARG_STRING, "^ro", NULL, NULL, false, "Rose", false, 0},
   {ARG_STRING, "^ro", NULL, "i", false, "Rose", true, 0},
   {ARG_STRING, "^ro", NULL, "i", true, "Rose", true, 0},
   {ARG_STRING, "^ro", NULL, "", false, "rose", true, 0},
   {ARG_REGEX, "^ROSE$", "i", NULL, false, "Rose", true, 0},
   {ARG_REGEX, "^ROSE$", "", "i", false, "Rose", true, 0},
   {ARG_REGEX, "^ROSE$", "i", "", false, "Rose", true, 0},
   {ARG_REGEX, "a", "i", "m", false, "a", false, 51075},
   {ARG_STRING, "a", NULL, "z", false, "a", false, 51108},
   {ARG_STRING, "a", NULL, "imsxu", false, "A", true, 0},
   {ARG_INT, NULL, NULL, NULL, false, "1", false, FLORA_STORE_BAD_VALUE},
   {ARG_NONE, NULL, NULL, "i", false, "a", false, FLORA_STORE_BAD_VALUE},
   {ARG_STRING, "a(", NULL, NULL, false, "a", false, 51091},
};

static void
test_regex_operator_forms(void **state)
{
   (void) state;
   for (size_t i = 0; i < sizeof regex_op_cases / sizeof regex_op_cases[0]; i++) {
      bson_t filter = BSON_INITIALIZER, ops, doc = BSON_INITIALIZER;
      flora_matcher_t *m;
      flora_error_t err;

      bson_append_document_begin(&filter, "a", 1, &ops);
      if (regex_op_cases[i].options && regex_op_cases[i].options_first) {
         BSON_APPEND_UTF8(&ops, "$options", regex_op_cases[i].options);
      }
      switch (regex_op_cases[i].regex_kind) {
      case ARG_STRING:
         BSON_APPEND_UTF8(&ops, "$regex", regex_op_cases[i].pattern);
         break;
      case ARG_REGEX:
         BSON_APPEND_REGEX(&ops, "$regex", regex_op_cases[i].pattern,
                           regex_op_cases[i].regex_options);
         break;
      case ARG_INT:
         BSON_APPEND_INT32(&ops, "$regex", 1);
         break;
      case ARG_NONE:
         break;
      }
      if (regex_op_cases[i].options && !regex_op_cases[i].options_first) {
         BSON_APPEND_UTF8(&ops, "$options", regex_op_cases[i].options);
      }
      bson_append_document_end(&filter, &ops);
      BSON_APPEND_UTF8(&doc, "a", regex_op_cases[i].value);
      flora_error_clear(&err);
      m = flora_matcher_new(&filter, &err);
      if (regex_op_cases[i].code) {
         if (m || err.code != regex_op_cases[i].code) {
            fail_msg("regex case %zu: compiled=%d code %u (%s)", i, m != NULL, err.code,
                     err.message);
         }
      } else if (!m || flora_matcher_match(m, &doc, NULL) != regex_op_cases[i].match) {
         fail_msg("regex case %zu: compiled=%d (%s)", i, m != NULL, err.message);
      }
      flora_matcher_destroy(m);
      bson_destroy(&filter);
      bson_destroy(&doc);
   }
}

/* ---- API edges ------------------------------------------------------------------------ */

static void
test_text_search(void **state)
{
   bson_t *f = J("{'$text': {'$search': 'red roses', '$language': 'english', "
                 "'$caseSensitive': false}, 'price': {'$lt': 100}}");
   bson_t *g = J("{'price': {'$lt': 100}}");
   bson_t *cheap = J("{'price': 50}"), *dear = J("{'price': 500}");
   flora_matcher_t *m = flora_matcher_new(f, NULL);
   flora_matcher_t *n = flora_matcher_new(g, NULL);

   (void) state;
   assert_non_null(m);
   assert_string_equal(flora_matcher_text_search(m), "red roses");
   assert_null(flora_matcher_text_search(n));
   assert_true(flora_matcher_match(m, cheap, NULL));
   assert_false(flora_matcher_match(m, dear, NULL));
   flora_matcher_destroy(m);
   flora_matcher_destroy(n);
   flora_matcher_destroy(NULL);
   bson_destroy(f);
   bson_destroy(g);
   bson_destroy(cheap);
   bson_destroy(dear);
}

static void
test_filter_independent_of_input(void **state)
{
   bson_t *f = J("{'name': {'$regex': '^ro', '$options': 'i'}, 'tags': {'$in': ['red', 'white']}, "
                 "'stock': {'$gte': 1}}");
   bson_t *doc = J("{'name': 'Rose', 'tags': ['white'], 'stock': 3}");
   flora_matcher_t *m = flora_matcher_new(f, NULL);

   (void) state;
   bson_destroy(f); /* the matcher keeps no pointer into the filter */
   assert_true(flora_matcher_match(m, doc, NULL));
   flora_matcher_destroy(m);
   bson_destroy(doc);
}

static bson_t *
nest_and(int levels)
{
   bson_t *inner = J("{'a': 1}");

   for (int i = 0; i < levels; i++) {
      bson_t *outer = bson_new();
      bson_t arr;

      bson_append_array_begin(outer, "$and", 4, &arr);
      bson_append_document(&arr, "0", 1, inner);
      bson_append_array_end(outer, &arr);
      bson_destroy(inner);
      inner = outer;
   }
   return inner;
}

static void
test_deep_nesting_refused(void **state)
{
   bson_t *ok = nest_and(50), *deep = nest_and(150);
   bson_t *doc = J("{'a': 1}");
   flora_matcher_t *m;
   flora_error_t err;

   (void) state;
   m = flora_matcher_new(ok, &err);
   assert_non_null(m);
   assert_true(flora_matcher_match(m, doc, NULL));
   flora_matcher_destroy(m);
   assert_null(flora_matcher_new(deep, &err));
   assert_int_equal(err.code, FLORA_STORE_BAD_VALUE);
   bson_destroy(ok);
   bson_destroy(deep);
   bson_destroy(doc);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_match_table),
      cmocka_unit_test(test_match_errors),
      cmocka_unit_test(test_opendocdb_query),
      cmocka_unit_test(test_regex_operator_forms),
      cmocka_unit_test(test_text_search),
      cmocka_unit_test(test_filter_independent_of_input),
      cmocka_unit_test(test_deep_nesting_refused),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
