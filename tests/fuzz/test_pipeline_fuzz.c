/* Hostile pipelines: the stage and expression cases of tests/data/pipeline/ mutated at
 * random (values replaced by others of any type, fields dropped or added) must compile or
 * fail cleanly, and run or fail cleanly, never crash, leak or trip the sanitizers. The
 * pipelines of the HTTP API come from clients, so this is the contract that matters.
 * Deterministic (fixed seed), ten thousand pipelines, about two seconds under ASan. */
#include "flora_test.h"

#include "flora/query.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint32_t
rnd(uint32_t n)
{
   rng_state ^= rng_state << 13;
   rng_state ^= rng_state >> 7;
   rng_state ^= rng_state << 17;
   return (uint32_t) (rng_state % n);
}

static bson_t *
load(const char *name)
{
   char path[4096];
   const char *src = getenv("FLORA_SOURCE_DIR");
   bson_error_t err;
   bson_json_reader_t *reader;
   bson_t *doc = bson_new();

   snprintf(path, sizeof path, "%s/tests/data/pipeline/%s", src ? src : ".", name);
   reader = bson_json_reader_new_from_file(path, &err);
   assert_non_null(reader);
   assert_int_equal(bson_json_reader_read(reader, doc, &err), 1);
   bson_json_reader_destroy(reader);
   return doc;
}

/* Values a mutation may put anywhere. */
static const char *POOL_JSON =
   "{'v': [null, 0, -1, 1.5, '', '$a', '$$ROOT', '$$this', '$$nope', '$', 'x', [], [1, 'a'], {},"
   " {'$add': []}, {'a': 1}, {'$literal': '$x'}, true, {'$numberLong': '9223372036854775807'},"
   " {'$numberLong': '-9223372036854775808'}, {'$numberDecimal': 'NaN'},"
   " {'$numberDecimal': '-1E+6144'}, {'$numberDouble': 'Infinity'}, {'$numberDouble': '-0.0'},"
   " {'$date': {'$numberLong': '-62167219200001'}}, {'$date': {'$numberLong': '9223372036854775807'}},"
   " [[1, 2]], {'k': 'a', 'v': 1}, '%', '%Y-%m-%d %G %V', 'Europe/Moscow', 'Nowhere/City',"
   " '+99:99', 2147483647, -2147483648, {'$oid': '000102030405060708091011'},"
   " {'$regularExpression': {'pattern': 'a', 'options': 'i'}}, {'$timestamp': {'t': 1, 'i': 2}},"
   " {'$minKey': 1}, {'$maxKey': 1}, {'$binary': {'base64': '', 'subType': '00'}},"
   " '\\u0000', 'Роза', {'$map': {'input': '$a', 'in': '$$this'}}, {'$sum': 1}]}";

static void
mutate(const bson_t *in, bson_t *out, const bson_t *pool, int depth)
{
   bson_iter_t it, pv;
   uint32_t npool = 0, idx = 0;
   char key[16];

   bson_iter_init_find(&pv, pool, "v");
   {
      bson_iter_t c;
      bson_iter_recurse(&pv, &c);
      while (bson_iter_next(&c)) {
         npool++;
      }
   }
   bson_iter_init(&it, in);
   while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);
      uint32_t r = rnd(100);
      /* array keys must stay "0", "1", ... */
      if (k[0] >= '0' && k[0] <= '9') {
         snprintf(key, sizeof key, "%u", idx);
         k = key;
      }
      if (r < 4) {
         continue; /* dropped */
      }
      idx++;
      if (r < 14) {
         bson_iter_t c;
         uint32_t pick = rnd(npool);
         bson_iter_recurse(&pv, &c);
         while (bson_iter_next(&c) && pick-- > 0) {
         }
         bson_append_value(out, k, -1, bson_iter_value(&c));
      } else if ((BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) && depth < 12) {
         bson_t sub, child;
         const uint8_t *data;
         uint32_t len;
         if (BSON_ITER_HOLDS_ARRAY(&it)) {
            bson_iter_array(&it, &len, &data);
            bson_init_static(&sub, data, len);
            bson_append_array_begin(out, k, -1, &child);
            mutate(&sub, &child, pool, depth + 1);
            bson_append_array_end(out, &child);
         } else {
            bson_iter_document(&it, &len, &data);
            bson_init_static(&sub, data, len);
            bson_append_document_begin(out, k, -1, &child);
            mutate(&sub, &child, pool, depth + 1);
            bson_append_document_end(out, &child);
         }
      } else {
         bson_append_iter(out, k, -1, &it);
      }
   }
   if (rnd(100) < 3) {
      static const char *const names[] = {"as", "input", "x", "a.b", "$x", "timezone", "_id"};
      bson_append_int32(out, names[rnd(7)], -1, (int32_t) rnd(3));
   }
}

static bool
lookup_cb(void *ctx, const char *collection, const char *field, const bson_value_t *value,
          flora_docs_t *out, flora_error_t *error)
{
   bson_t *d = bson_new();

   (void) ctx;
   (void) collection;
   (void) field;
   (void) error;
   bson_append_value(d, "v", 1, value);
   flora_docs_append_owned(out, d);
   return true;
}

static void
test_mutated_pipelines(void **state)
{
   bson_t *stages = load("stages.json"), *exprs = load("expressions.json");
   bson_t *pool = J(POOL_JSON);
   bson_t *extra = J("[{'_id': 1, 'a': [1, {'b': 2}], 'd': {'$date': '2021-01-01T00:00:00Z'},"
                     " 's': 'Роза', 'n': null}, {'_id': 2, 'a': {'b': [3]}, 'k': 'x'}, {'_id': 3}]");
   bson_iter_t it, sc, ec;
   uint32_t nstages = 0, nexprs = 0;
   int compiled = 0, ran = 0;

   (void) state;
   bson_iter_init_find(&it, stages, "cases");
   bson_iter_recurse(&it, &sc);
   while (bson_iter_next(&sc)) {
      nstages++;
   }
   bson_iter_init_find(&it, exprs, "cases");
   bson_iter_recurse(&it, &ec);
   while (bson_iter_next(&ec)) {
      nexprs++;
   }
   for (int round = 0; round < 10000; round++) {
      bool use_expr = rnd(2) == 0;
      uint32_t pick = rnd(use_expr ? nexprs : nstages);
      bson_iter_t cases, c, f;
      bson_t spec = BSON_INITIALIZER, mutated = BSON_INITIALIZER;
      flora_docs_t docs = FLORA_DOCS_INIT, out = FLORA_DOCS_INIT;
      flora_error_t error;
      flora_pipeline_t *p;

      bson_iter_init_find(&it, use_expr ? exprs : stages, "cases");
      bson_iter_recurse(&it, &cases);
      while (bson_iter_next(&cases) && pick-- > 0) {
      }
      bson_iter_recurse(&cases, &c);
      if (use_expr) {
         bson_t stage, proj, grp, id;
         assert_true(bson_iter_find(&c, "expr"));
         bson_append_document_begin(&spec, "0", 1, &stage);
         bson_append_document_begin(&stage, "$project", -1, &proj);
         bson_append_value(&proj, "r", 1, bson_iter_value(&c));
         bson_append_document_end(&stage, &proj);
         bson_append_document_end(&spec, &stage);
         bson_append_document_begin(&spec, "1", 1, &stage);
         bson_append_document_begin(&stage, "$group", -1, &grp);
         bson_append_utf8(&grp, "_id", 3, "$r", 2);
         bson_append_document_begin(&grp, "s", 1, &id);
         bson_append_utf8(&id, "$addToSet", -1, "$r", 2);
         bson_append_document_end(&grp, &id);
         bson_append_document_end(&stage, &grp);
         bson_append_document_end(&spec, &stage);
      } else {
         const uint8_t *data;
         uint32_t len;
         bson_t arr;
         assert_true(bson_iter_find(&c, "pipeline"));
         bson_iter_array(&c, &len, &data);
         bson_init_static(&arr, data, len);
         bson_concat(&spec, &arr);
      }
      mutate(&spec, &mutated, pool, 0);
      bson_iter_init(&f, extra);
      while (bson_iter_next(&f)) {
         bson_t d;
         const uint8_t *data;
         uint32_t len;
         bson_iter_document(&f, &len, &data);
         bson_init_static(&d, data, len);
         flora_docs_append_copy(&docs, &d);
      }
      p = flora_pipeline_new(&mutated, &error);
      if (p) {
         compiled++;
         if (flora_pipeline_run(p, 0, &docs, lookup_cb, NULL, 1000, &out, &error)) {
            ran++;
         }
      }
      flora_pipeline_destroy(p);
      flora_docs_clear(&docs);
      flora_docs_clear(&out);
      bson_destroy(&spec);
      bson_destroy(&mutated);
   }
   print_message("10000 mutated pipelines: %d compiled, %d ran to the end\n", compiled, ran);
   /* the mutations must leave enough valid pipelines for the run paths to be exercised */
   assert_true(compiled > 2500);
   assert_true(ran > 1500);
   bson_destroy(stages);
   bson_destroy(exprs);
   bson_destroy(pool);
   bson_destroy(extra);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mutated_pipelines),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
