/* The aggregation expression language (lib/query/expr.c), driven by
 * tests/data/pipeline/expressions.json: each case has a document `doc`, an expression
 * `expr` and either the expected value `expect`, `missing: true` (the result is missing)
 * or an error `code`. `now` (milliseconds) sets $$NOW. */
#include "flora_test.h"

#include "flora/query.h"
#include "query/expr_private.h"

static bson_t *
load_cases(const char *name)
{
   char path[4096];
   bson_error_t err;
   bson_json_reader_t *reader;
   bson_t *doc = bson_new();
   const char *src = getenv("FLORA_SOURCE_DIR");
   int rc;

   snprintf(path, sizeof path, "%s/tests/data/pipeline/%s", src ? src : ".", name);
   reader = bson_json_reader_new_from_file(path, &err);
   if (!reader) {
      fail_msg("cannot open %s: %s", path, err.message);
   }
   rc = bson_json_reader_read(reader, doc, &err);
   if (rc != 1) {
      fail_msg("bad JSON in %s: %s", path, err.message);
   }
   bson_json_reader_destroy(reader);
   return doc;
}

static void
test_expression_cases(void **state)
{
   bson_t *all = load_cases("expressions.json");
   bson_iter_t it, cases;
   int failures = 0, n = 0;

   (void) state;
   assert_true(bson_iter_init_find(&it, all, "cases") && BSON_ITER_HOLDS_ARRAY(&it));
   bson_iter_recurse(&it, &cases);
   while (bson_iter_next(&cases)) {
      bson_t c, doc;
      bson_iter_t f;
      const uint8_t *data;
      uint32_t len;
      const char *name = "?";
      flora_error_t error;
      flora__expr_t *e = NULL;
      bson_value_t out;
      int64_t now = 0;
      bool ok;

      n++;
      bson_iter_document(&cases, &len, &data);
      bson_init_static(&c, data, len);
      if (bson_iter_init_find(&f, &c, "name")) {
         name = bson_iter_utf8(&f, NULL);
      }
      if (bson_iter_init_find(&f, &c, "now")) {
         now = bson_iter_as_int64(&f);
      }
      bson_init(&doc);
      if (bson_iter_init_find(&f, &c, "doc")) {
         bson_t d;
         bson_iter_document(&f, &len, &data);
         bson_init_static(&d, data, len);
         bson_destroy(&doc);
         bson_copy_to(&d, &doc);
      }
      assert_true(bson_iter_init_find(&f, &c, "expr"));
      memset(&error, 0, sizeof error);
      e = flora__expr_compile(bson_iter_value(&f), &error);
      ok = e && flora__expr_eval(e, &doc, now, &out, &error);
      if (bson_iter_init_find(&f, &c, "code")) {
         int32_t code = bson_iter_int32(&f);
         if (ok) {
            print_error("case %s: expected error %d, got success\n", name, code);
            bson_value_destroy(&out);
            failures++;
         } else if ((int32_t) error.code != code) {
            print_error("case %s: expected error %d, got %u: %s\n", name, code, error.code,
                        error.message);
            failures++;
         }
      } else if (!ok) {
         print_error("case %s: unexpected error %u: %s\n", name, error.code, error.message);
         failures++;
      } else if (bson_iter_init_find(&f, &c, "missing")) {
         if (out.value_type != BSON_TYPE_EOD) {
            print_error("case %s: expected missing\n", name);
            failures++;
         }
         bson_value_destroy(&out);
      } else {
         bson_t got = BSON_INITIALIZER, want = BSON_INITIALIZER;
         assert_true(bson_iter_init_find(&f, &c, "expect"));
         flora__value_append(&got, "v", 1, &out);
         bson_append_value(&want, "v", 1, bson_iter_value(&f));
         if (!bson_equal(&got, &want)) {
            char *g = bson_as_canonical_extended_json(&got, NULL);
            char *w = bson_as_canonical_extended_json(&want, NULL);
            print_error("case %s:\n  got:  %s\n  want: %s\n", name, g, w);
            bson_free(g);
            bson_free(w);
            failures++;
         }
         bson_destroy(&got);
         bson_destroy(&want);
         bson_value_destroy(&out);
      }
      flora__expr_destroy(e);
      bson_destroy(&doc);
   }
   bson_destroy(all);
   print_message("%d expression cases, %d failed\n", n, failures);
   assert_int_equal(failures, 0);
   assert_true(n > 50);
}

/* Constant folding information and hashing agree with comparison. */
static void
test_hash_consistent_with_compare(void **state)
{
   bson_t *d = J("{'a': [{'$numberInt': '1'}, {'$numberLong': '1'}, 1.0, {'$numberDecimal': '1.00'},"
                 " {'x': 1}, {'x': {'$numberLong': '1'}}, 'a', -0.0, 0]}");
   bson_iter_t it, arr;
   bson_value_t vals[16];
   int n = 0;

   (void) state;
   assert_true(bson_iter_init_find(&it, d, "a"));
   bson_iter_recurse(&it, &arr);
   while (bson_iter_next(&arr)) {
      vals[n++] = *bson_iter_value(&arr);
   }
   for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
         if (flora__agg_compare(&vals[i], &vals[j]) == 0) {
            assert_true(flora__agg_hash(&vals[i]) == flora__agg_hash(&vals[j]));
         }
      }
   }
   assert_true(flora__agg_compare(&vals[0], &vals[3]) == 0);
   assert_true(flora__agg_compare(&vals[4], &vals[5]) == 0);
   bson_destroy(d);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_expression_cases),
      cmocka_unit_test(test_hash_consistent_with_compare),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
