/* Projections (lib/query/projection.c): the table in tests/data/query/projection.json, the
 * OpenDocDB projection corpus recorded from real MongoDB, and the text-score convention. */
#include "flora_test.h"

#include "flora/query.h"
#include "query/query_private.h"

static void
test_projection_table(void **state)
{
   bson_t *data = flora_test_load_data("tests/data/query/projection.json");
   bson_iter_t it, cases, fld;
   int n = 0;

   (void) state;
   assert_true(bson_iter_init_find(&it, data, "cases"));
   assert_true(bson_iter_recurse(&it, &cases));
   while (bson_iter_next(&cases)) {
      bson_t c, doc, spec, want, got, filter;
      flora_projection_t *p;
      flora_matcher_t *m = NULL;
      flora_error_t err;

      flora_test_doc_of(&cases, &c);
      assert_true(bson_iter_init_find(&fld, &c, "doc"));
      flora_test_doc_of(&fld, &doc);
      assert_true(bson_iter_init_find(&fld, &c, "projection"));
      flora_test_doc_of(&fld, &spec);
      assert_true(bson_iter_init_find(&fld, &c, "out"));
      flora_test_doc_of(&fld, &want);
      if (bson_iter_init_find(&fld, &c, "filter")) {
         flora_test_doc_of(&fld, &filter);
         m = flora_matcher_new(&filter, &err);
         assert_non_null(m);
      }
      p = flora_projection_new(&spec, &err);
      if (!p) {
         char *ss = flora_test_str(&spec);

         fail_msg("case %d: %s does not compile: %s", n, ss, err.message);
      }
      if (!flora_projection_apply(p, &doc, m, &got, &err)) {
         char *ss = flora_test_str(&spec);

         fail_msg("case %d: %s fails: %s", n, ss, err.message);
      }
      if (!bson_equal(&got, &want)) {
         char *ss = flora_test_str(&spec);

         print_error("case %d: projection %s\n", n, ss);
         bson_free(ss);
      }
      assert_bson_equal(&got, &want);
      bson_destroy(&got);
      flora_projection_destroy(p);
      flora_matcher_destroy(m);
      n++;
   }
   assert_true(n >= 45);
   bson_destroy(data);
}

static void
test_projection_errors(void **state)
{
   bson_t *data = flora_test_load_data("tests/data/query/projection.json");
   bson_iter_t it, cases, fld;
   int n = 0;

   (void) state;
   assert_true(bson_iter_init_find(&it, data, "errors"));
   assert_true(bson_iter_recurse(&it, &cases));
   while (bson_iter_next(&cases)) {
      bson_t c, spec;
      flora_projection_t *p;
      flora_error_t err;
      const char *want_msg;
      int64_t want_code;

      flora_test_doc_of(&cases, &c);
      assert_true(bson_iter_init_find(&fld, &c, "projection"));
      flora_test_doc_of(&fld, &spec);
      assert_true(bson_iter_init_find(&fld, &c, "code"));
      want_code = bson_iter_as_int64(&fld);
      assert_true(bson_iter_init_find(&fld, &c, "message"));
      want_msg = bson_iter_utf8(&fld, NULL);
      flora_error_clear(&err);
      p = flora_projection_new(&spec, &err);
      if (p || err.domain != FLORA_DOMAIN_STORE || err.code != want_code ||
          !strstr(err.message, want_msg)) {
         char *ss = flora_test_str(&spec);

         fail_msg("error case %d: %s: compiled=%d code %u message '%s', want %lld '%s'", n, ss,
                  p != NULL, err.code, err.message, (long long) want_code, want_msg);
      }
      n++;
   }
   assert_true(n >= 15);
   bson_destroy(data);
}

static void
test_positional_needs_match(void **state)
{
   bson_t *spec = J("{'a.$': 1}");
   bson_t *filter = J("{'b': 1}");
   bson_t *doc = J("{'_id': 1, 'a': [1, 2], 'b': 1}");
   flora_projection_t *p = flora_projection_new(spec, NULL);
   flora_matcher_t *m = flora_matcher_new(filter, NULL);
   flora_error_t err;
   bson_t out;

   (void) state;
   assert_non_null(p);
   assert_false(flora_projection_apply(p, doc, NULL, &out, &err));
   assert_int_equal(err.code, FLORA_STORE_BAD_VALUE);
   bson_destroy(&out);
   /* the filter matched without an array element: MongoDB refuses the positional too */
   assert_false(flora_projection_apply(p, doc, m, &out, &err));
   assert_non_null(strstr(err.message, "couldn't find a matching element"));
   bson_destroy(&out);
   flora_projection_destroy(p);
   flora_projection_destroy(NULL);
   flora_matcher_destroy(m);
   bson_destroy(spec);
   bson_destroy(filter);
   bson_destroy(doc);
}

static void
test_text_score_meta(void **state)
{
   bson_t *doc = J("{'_id': 1, 'v': 'red roses', 'w': 2}");
   static const struct {
      const char *spec;
      const char *want;
   } cases[] = {
      {"{'score': {'$meta': 'textScore'}}", "{'_id': 1, 'v': 'red roses', 'w': 2, 'score': 1.5}"},
      {"{'v': 1, 'score': {'$meta': 'textScore'}}", "{'_id': 1, 'v': 'red roses', 'score': 1.5}"},
      {"{'w': 0}", "{'_id': 1, 'v': 'red roses'}"},
      {"{'w': 1}", "{'_id': 1, 'w': 2}"},
      {"{}", "{'_id': 1, 'v': 'red roses', 'w': 2}"},
      {"{'v': {'$meta': 'textScore'}, '_id': 0}", "{'w': 2, 'v': 1.5}"},
   };

   (void) state;
   BSON_APPEND_DOUBLE(doc, FLORA__TEXT_SCORE_FIELD, 1.5);
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_t *spec = J(cases[i].spec), *want = J(cases[i].want);
      flora_projection_t *p = flora_projection_new(spec, NULL);
      bson_t out;

      assert_non_null(p);
      assert_true(flora_projection_apply(p, doc, NULL, &out, NULL));
      assert_bson_equal(&out, want);
      bson_destroy(&out);
      flora_projection_destroy(p);
      bson_destroy(spec);
      bson_destroy(want);
   }
   bson_destroy(doc);
}

/* The OpenDocDB projection cases ($elemMatch, positional). The $meta case needs a text
 * index (the engine's part) and is covered by test_text_score_meta above. */
static void
test_opendocdb_projection(void **state)
{
   static const char *const files[] = {"elemMatch.json", "positional.json"};
   const char *shared = flora_test_shared_dir();
   int ran = 0;

   (void) state;
   if (!shared) {
      flora_skip("FLORA_SHARED_DIR is not set or holds no corpus: OpenDocDB cases not run");
   }
   for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
      char path[4096], fixture_path[4096];
      bson_t *suite;
      bson_iter_t it;

      snprintf(path, sizeof path, "%s/conformance/opendocdb-cts/projection/%s", shared,
               files[fi]);
      suite = flora_test_load_json(path);
      assert_non_null(suite);
      bson_iter_init(&it, suite);
      while (bson_iter_next(&it)) {
         bson_t tc, request, response, filter, spec, sortspec, expected;
         bson_iter_t f, cur, fx;
         bson_t *fixture;
         flora_matcher_t *m;
         flora_sort_t *s;
         flora_projection_t *p;
         flora_docs_t got = FLORA_DOCS_INIT;
         flora_error_t err;
         size_t i = 0;

         flora_test_doc_of(&it, &tc);
         assert_true(bson_iter_init_find(&f, &tc, "request"));
         flora_test_doc_of(&f, &request);
         assert_true(bson_iter_init_find(&f, &tc, "response"));
         flora_test_doc_of(&f, &response);
         assert_true(bson_iter_init_find(&f, &request, "find"));
         snprintf(fixture_path, sizeof fixture_path, "%s/conformance/opendocdb-cts/%s.fixture.json",
                  shared, bson_iter_utf8(&f, NULL));
         assert_true(bson_iter_init_find(&f, &request, "filter"));
         flora_test_doc_of(&f, &filter);
         assert_true(bson_iter_init_find(&f, &request, "projection"));
         flora_test_doc_of(&f, &spec);
         assert_true(bson_iter_init_find(&f, &request, "sort"));
         flora_test_doc_of(&f, &sortspec);
         m = flora_matcher_new(&filter, &err);
         assert_non_null(m);
         s = flora_sort_new(&sortspec, &err);
         assert_non_null(s);
         p = flora_projection_new(&spec, &err);
         if (!p) {
            fail_msg("%s: projection does not compile: %s", files[fi], err.message);
         }
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
            bson_t want, out;

            flora_test_doc_of(&fx, &want);
            assert_true(i < got.len);
            if (!flora_projection_apply(p, got.items[i], m, &out, &err)) {
               fail_msg("%s: apply failed: %s", files[fi], err.message);
            }
            assert_bson_equal(&out, &want);
            bson_destroy(&out);
            i++;
         }
         assert_int_equal(i, got.len);
         flora_docs_clear(&got);
         flora_projection_destroy(p);
         flora_sort_destroy(s);
         flora_matcher_destroy(m);
         bson_destroy(fixture);
         ran++;
      }
      bson_destroy(suite);
   }
   print_message("OpenDocDB projection cases: %d agreed with MongoDB\n", ran);
   assert_int_equal(ran, 2);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_projection_table),     cmocka_unit_test(test_projection_errors),
      cmocka_unit_test(test_positional_needs_match), cmocka_unit_test(test_text_score_meta),
      cmocka_unit_test(test_opendocdb_projection),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
