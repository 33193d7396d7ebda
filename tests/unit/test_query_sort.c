/* Sort specs (lib/query/sort.c): the table in tests/data/query/sort.json and the
 * text-score key. */
#include "flora_test.h"

#include "flora/query.h"
#include "query/query_private.h"

static int64_t
id_of(const bson_t *doc)
{
   bson_iter_t it;

   assert_true(bson_iter_init_find(&it, doc, "_id"));
   return bson_iter_as_int64(&it);
}

static void
test_sort_table(void **state)
{
   bson_t *data = flora_test_load_data("tests/data/query/sort.json");
   bson_iter_t it, cases, fld, x;
   int n = 0;

   (void) state;
   assert_true(bson_iter_init_find(&it, data, "cases"));
   assert_true(bson_iter_recurse(&it, &cases));
   while (bson_iter_next(&cases)) {
      bson_t c, spec, docs, order;
      flora_docs_t list = FLORA_DOCS_INIT;
      flora_sort_t *s;
      flora_error_t err;
      size_t i = 0;

      flora_test_doc_of(&cases, &c);
      assert_true(bson_iter_init_find(&fld, &c, "sort"));
      flora_test_doc_of(&fld, &spec);
      assert_true(bson_iter_init_find(&fld, &c, "docs"));
      flora_test_doc_of(&fld, &docs);
      assert_true(bson_iter_init_find(&fld, &c, "order"));
      flora_test_doc_of(&fld, &order);
      s = flora_sort_new(&spec, &err);
      if (!s) {
         fail_msg("case %d: %s", n, err.message);
      }
      bson_iter_init(&x, &docs);
      while (bson_iter_next(&x)) {
         bson_t d;

         flora_test_doc_of(&x, &d);
         flora_docs_append_copy(&list, &d);
      }
      flora_sort_docs(s, &list);
      bson_iter_init(&x, &order);
      while (bson_iter_next(&x)) {
         assert_true(i < list.len);
         if (id_of(list.items[i]) != bson_iter_as_int64(&x)) {
            char *ss = flora_test_str(&spec);

            fail_msg("case %d (%s): position %zu holds _id %lld, want %lld", n, ss, i,
                     (long long) id_of(list.items[i]), (long long) bson_iter_as_int64(&x));
         }
         if (i > 0) {
            assert_true(flora_sort_compare(s, list.items[i - 1], list.items[i]) <= 0);
            assert_true(flora_sort_compare(s, list.items[i], list.items[i - 1]) >= 0);
         }
         assert_int_equal(flora_sort_compare(s, list.items[i], list.items[i]), 0);
         i++;
      }
      assert_int_equal(i, list.len);
      flora_docs_clear(&list);
      flora_sort_destroy(s);
      n++;
   }
   assert_true(n >= 20);
   bson_destroy(data);
}

static void
test_sort_errors(void **state)
{
   bson_t *data = flora_test_load_data("tests/data/query/sort.json");
   bson_iter_t it, cases, fld;

   (void) state;
   assert_true(bson_iter_init_find(&it, data, "errors"));
   assert_true(bson_iter_recurse(&it, &cases));
   while (bson_iter_next(&cases)) {
      bson_t c, spec;
      flora_error_t err;
      flora_sort_t *s;
      const char *want_msg;

      flora_test_doc_of(&cases, &c);
      assert_true(bson_iter_init_find(&fld, &c, "sort"));
      flora_test_doc_of(&fld, &spec);
      assert_true(bson_iter_init_find(&fld, &c, "message"));
      want_msg = bson_iter_utf8(&fld, NULL);
      flora_error_clear(&err);
      s = flora_sort_new(&spec, &err);
      if (s || err.code != FLORA_STORE_BAD_VALUE || !strstr(err.message, want_msg)) {
         char *ss = flora_test_str(&spec);

         fail_msg("%s: compiled=%d code %u '%s', want '%s'", ss, s != NULL, err.code, err.message,
                  want_msg);
      }
   }
   bson_destroy(data);
}

static void
test_sort_text_score(void **state)
{
   bson_t *spec = J("{'score': {'$meta': 'textScore'}, '_id': 1}");
   flora_sort_t *s = flora_sort_new(spec, NULL);
   flora_docs_t list = FLORA_DOCS_INIT;
   const double scores[] = {0.5, 2.0, 1.0, 2.0};
   const int64_t want[] = {0, 2, 1, 3};

   (void) state;
   assert_non_null(s);
   for (int i = 0; i < 4; i++) {
      bson_t *d = bson_new();

      BSON_APPEND_INT64(d, "_id", 3 - i);
      BSON_APPEND_DOUBLE(d, FLORA__TEXT_SCORE_FIELD, scores[i]);
      flora_docs_append_owned(&list, d);
   }
   flora_docs_append_owned(&list, J("{'_id': 9}")); /* no score: 0.0 */
   flora_sort_docs(s, &list);
   for (int i = 0; i < 4; i++) {
      assert_int_equal(id_of(list.items[i]), want[i]);
   }
   assert_int_equal(id_of(list.items[4]), 9);
   flora_docs_clear(&list);
   flora_sort_destroy(s);
   flora_sort_destroy(NULL);
   bson_destroy(spec);
}

static void
test_sort_many_stable(void **state)
{
   bson_t *spec = J("{'k': 1}");
   flora_sort_t *s = flora_sort_new(spec, NULL);
   flora_docs_t list = FLORA_DOCS_INIT;

   (void) state;
   for (int i = 0; i < 2000; i++) {
      bson_t *d = bson_new();

      BSON_APPEND_INT32(d, "k", (i * 7919) % 13);
      BSON_APPEND_INT32(d, "seq", i);
      flora_docs_append_owned(&list, d);
   }
   flora_sort_docs(s, &list);
   for (size_t i = 1; i < list.len; i++) {
      bson_iter_t a, b, sa, sb;

      assert_true(bson_iter_init_find(&a, list.items[i - 1], "k"));
      assert_true(bson_iter_init_find(&b, list.items[i], "k"));
      assert_true(bson_iter_int32(&a) <= bson_iter_int32(&b));
      if (bson_iter_int32(&a) == bson_iter_int32(&b)) {
         assert_true(bson_iter_init_find(&sa, list.items[i - 1], "seq"));
         assert_true(bson_iter_init_find(&sb, list.items[i], "seq"));
         assert_true(bson_iter_int32(&sa) < bson_iter_int32(&sb));
      }
   }
   flora_docs_clear(&list);
   flora_sort_destroy(s);
   bson_destroy(spec);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sort_table),
      cmocka_unit_test(test_sort_errors),
      cmocka_unit_test(test_sort_text_score),
      cmocka_unit_test(test_sort_many_stable),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
