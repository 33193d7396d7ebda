/* The embedded engine (sqlite:PATH) through the public store API: index use shown by
 * explain and checked against collection scans, unique/sparse/partial/multikey indexes,
 * TTL, text search, transactions, and concurrency (threads and forked processes on one
 * file, no lost conditional updates). */
#include "flora_test.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "flora/store.h"

/* ---- helpers ------------------------------------------------------------------------ */

static flora_store_t *
open_store(const char *uri, int ttl_s)
{
   flora_store_options_t o = FLORA_STORE_OPTIONS_INIT;
   flora_store_t *s = NULL;
   flora_error_t e;
   o.ttl_sweep_interval_s = ttl_s;
   o.pool_size = 4;
   if (!flora_store_open(&s, uri, &o, &e)) {
      fail_msg("open %s: %s", uri, e.message);
   }
   return s;
}

static char *
temp_db(char *buf, size_t len)
{
   char dir[] = "/tmp/flora-sqlite-XXXXXX";
   assert_non_null(mkdtemp(dir));
   snprintf(buf, len, "sqlite:%s/t.db", dir);
   return buf;
}

static void
remove_db(const char *uri)
{
   const char *path = uri + 7;
   char p[600], dir[600];
   snprintf(p, sizeof p, "%s", path);
   unlink(p);
   snprintf(p, sizeof p, "%s-wal", path);
   unlink(p);
   snprintf(p, sizeof p, "%s-shm", path);
   unlink(p);
   snprintf(dir, sizeof dir, "%s", path);
   *strrchr(dir, '/') = '\0';
   rmdir(dir);
}

#define must(ok, e)                                                                           \
   do {                                                                                       \
      if (!(ok)) {                                                                            \
         fail_msg("store call failed (line %d): %u %s", __LINE__, (e)->code, (e)->message);   \
      }                                                                                       \
   } while (0)

static void
insert_json_at(flora_store_t *s, const char *coll, const char *json, int line)
{
   bson_t *d = J(json);
   flora_error_t e;
   if (!flora_store_insert_one(s, coll, d, NULL, NULL, &e)) {
      fail_msg("insert %s (line %d): %u %s", json, line, e.code, e.message);
   }
   bson_destroy(d);
}
#define insert_json(s, coll, json) insert_json_at(s, coll, json, __LINE__)

static void
create_index(flora_store_t *s, const char *coll, const char *spec_json)
{
   bson_t *spec = J(spec_json);
   bson_t arr = BSON_INITIALIZER;
   flora_error_t e;
   BSON_APPEND_DOCUMENT(&arr, "0", spec);
   must(flora_store_create_indexes(s, coll, &arr, &e), &e);
   bson_destroy(&arr);
   bson_destroy(spec);
}

static int64_t
count(flora_store_t *s, const char *coll, const char *filter_json)
{
   bson_t *f = J(filter_json);
   flora_error_t e;
   int64_t n = -1;
   must(flora_store_count_documents(s, coll, f, NULL, &n, &e), &e);
   bson_destroy(f);
   return n;
}

/* The _id values of find(filter, opts) as one array document, for comparing plans. */
static bson_t *
find_ids(flora_store_t *s, const char *coll, const bson_t *filter, const bson_t *opts)
{
   flora_cursor_t *c = NULL;
   flora_error_t e;
   const bson_t *doc;
   bson_t *ids = bson_new();
   uint32_t i = 0;
   must(flora_store_find(s, coll, filter, opts, &c, &e), &e);
   while (flora_cursor_next(c, &doc)) {
      bson_iter_t it;
      char k[16];
      const char *key;
      assert_true(bson_iter_init_find(&it, doc, "_id"));
      bson_uint32_to_string(i++, &key, k, sizeof k);
      bson_append_value(ids, key, -1, bson_iter_value(&it));
   }
   assert_false(flora_cursor_error(c, &e));
   flora_cursor_destroy(c);
   return ids;
}

static char *
explain_json(flora_store_t *s, const char *coll, const char *filter, const char *opts)
{
   bson_t *f = J(filter), *o = J(opts), out;
   flora_error_t e;
   char *json;
   must(flora_store_explain(s, coll, f, o, &out, &e), &e);
   json = bson_as_relaxed_extended_json(&out, NULL);
   bson_destroy(&out);
   bson_destroy(f);
   bson_destroy(o);
   return json;
}

/* ---- basics ----------------------------------------------------------------------------- */

static void
test_crud(void **state)
{
   flora_store_t *s = open_store("sqlite::memory:", 0);
   flora_error_t e;
   bson_t reply, out, *f, *u, *o;
   bool found;

   (void) state;
   assert_string_equal(flora_store_engine(s), "sqlite");
   insert_json(s, "p", "{'_id': 1, 'name': 'rose', 'price': 500, 'tags': ['red', 'love']}");
   insert_json(s, "p", "{'_id': 2, 'name': 'tulip', 'price': 300, 'tags': ['yellow']}");
   insert_json(s, "p", "{'_id': 3, 'name': 'lily', 'price': 700}");
   assert_int_equal(count(s, "p", "{}"), 3);
   assert_int_equal(count(s, "p", "{'price': {'$gte': 500}}"), 2);
   assert_int_equal(count(s, "p", "{'tags': 'red'}"), 1);

   /* duplicate _id */
   f = J("{'_id': 1}");
   assert_false(flora_store_insert_one(s, "p", f, NULL, NULL, &e));
   assert_int_equal(e.code, 11000);
   assert_string_equal(e.message,
                       "E11000 duplicate key error collection: flora.p index: _id_ dup key: { _id: 1 }");
   bson_destroy(f);

   /* update with upsert */
   f = J("{'name': 'peony'}");
   u = J("{'$set': {'price': 900}}");
   o = J("{'upsert': true}");
   must(flora_store_update_one(s, "p", f, u, o, &reply, &e), &e);
   {
      bson_iter_t it;
      assert_true(bson_iter_init_find(&it, &reply, "upsertedCount"));
      assert_int_equal(bson_iter_as_int64(&it), 1);
   }
   bson_destroy(&reply);
   assert_int_equal(count(s, "p", "{'name': 'peony', 'price': 900}"), 1);
   bson_destroy(f);
   bson_destroy(u);
   bson_destroy(o);

   /* find one and update, returnDocument after */
   f = J("{'_id': 2}");
   u = J("{'$inc': {'price': 50}}");
   o = J("{'returnDocument': 'after'}");
   must(flora_store_find_one_and_update(s, "p", f, u, o, &out, &found, &e), &e);
   assert_true(found);
   {
      bson_t *exp = J("{'_id': 2, 'name': 'tulip', 'price': 350, 'tags': ['yellow']}");
      assert_bson_equal(&out, exp);
      bson_destroy(exp);
   }
   bson_destroy(&out);
   bson_destroy(f);
   bson_destroy(u);
   bson_destroy(o);

   /* sort, skip, limit */
   {
      bson_t *all = J("{}");
      bson_t *opts = J("{'sort': {'price': -1}, 'skip': 1, 'limit': 2}");
      bson_t *ids = find_ids(s, "p", all, opts);
      bson_t *exp = J("{'0': 3, '1': 1}");
      assert_bson_equal(ids, exp);
      bson_destroy(ids);
      bson_destroy(exp);
      bson_destroy(all);
      bson_destroy(opts);
   }

   /* distinct unwinds arrays, BSON order */
   {
      bson_t *all = J("{}");
      bson_t *exp = J("{'0': 'love', '1': 'red', '2': 'yellow'}");
      must(flora_store_distinct(s, "p", "tags", all, &out, &e), &e);
      assert_bson_equal(&out, exp);
      bson_destroy(&out);
      bson_destroy(exp);
      bson_destroy(all);
   }

   /* delete */
   f = J("{'price': {'$lt': 400}}");
   must(flora_store_delete_many(s, "p", f, NULL, &reply, &e), &e);
   bson_destroy(&reply);
   bson_destroy(f);
   assert_int_equal(count(s, "p", "{}"), 3);
   flora_store_close(s);
}

/* ---- indexes used ----------------------------------------------------------------------- */

static void
seed_products(flora_store_t *s, int n)
{
   bson_t **docs = calloc((size_t) n, sizeof *docs);
   flora_error_t e;
   for (int i = 0; i < n; i++) {
      char sku[32];
      docs[i] = bson_new();
      snprintf(sku, sizeof sku, "SKU-%05d", i);
      BSON_APPEND_INT32(docs[i], "_id", i);
      BSON_APPEND_UTF8(docs[i], "sku", sku);
      if (i % 17 == 0) {
         BSON_APPEND_DOUBLE(docs[i], "price", (i * 37 % 1000) + 0.5);
      } else if (i % 23 == 0) {
         BSON_APPEND_UTF8(docs[i], "price", "call us");
      } else if (i % 31 == 0) {
         bson_decimal128_t dec;
         char ds[32];
         snprintf(ds, sizeof ds, "%d.1", i % 7 == 0 ? 0 : i * 37 % 1000);
         bson_decimal128_from_string(ds, &dec);
         BSON_APPEND_DECIMAL128(docs[i], "price", &dec);
      } else if (i % 29 != 0) {
         BSON_APPEND_INT64(docs[i], "price", i * 37 % 1000);
      }
      BSON_APPEND_INT32(docs[i], "categoryId", i % 10);
      BSON_APPEND_INT32(docs[i], "stock", i % 7);
      if (i % 3 == 0) {
         bson_t tags;
         BSON_APPEND_ARRAY_BEGIN(docs[i], "tags", &tags);
         BSON_APPEND_UTF8(&tags, "0", i % 2 ? "red" : "white");
         BSON_APPEND_UTF8(&tags, "1", "gift");
         bson_append_array_end(docs[i], &tags);
      } else if (i % 3 == 1) {
         BSON_APPEND_UTF8(docs[i], "tags", "red");
      }
   }
   must(flora_store_insert_many(s, "products", (const bson_t *const *) docs, (size_t) n, NULL, NULL,
                                &e),
        &e);
   for (int i = 0; i < n; i++) {
      bson_destroy(docs[i]);
   }
   free(docs);
}

/* Each (filter, opts) answers the same through the planner as through a collection scan. */
static void
test_index_results_match_collscan(void **state)
{
   static const char *cases[][2] = {
      {"{'price': {'$gt': 500}}", "{}"},
      {"{'price': {'$gte': 100, '$lt': 200}}", "{'sort': {'price': 1}}"},
      {"{'price': {'$lte': 300}}", "{'sort': {'price': -1}, 'limit': 24}"},
      {"{'price': {'$gt': 'a'}}", "{}"},
      {"{'price': null}", "{}"},
      {"{'price': {'$in': [74, 111, 'call us', null]}}", "{}"},
      {"{'categoryId': 3}", "{'sort': {'price': 1}, 'limit': 5}"},
      {"{'categoryId': 3, 'price': {'$gt': 900}}", "{}"},
      {"{'categoryId': {'$in': [1, 2]}, 'price': {'$lt': 100}}", "{'sort': {'price': 1}}"},
      {"{'$and': [{'categoryId': 4}, {'price': {'$gte': 500}}]}", "{'sort': {'price': -1}, 'skip': 2, 'limit': 3}"},
      {"{'tags': 'red'}", "{}"},
      {"{'tags': {'$in': ['white', 'gift']}}", "{'sort': {'tags': 1}}"},
      {"{'tags': {'$gt': 'h'}}", "{'sort': {'tags': -1}}"},
      {"{'tags': ['red', 'gift']}", "{}"},
      {"{'sku': 'SKU-00042'}", "{}"},
      {"{'sku': {'$gte': 'SKU-00100', '$lt': 'SKU-00110'}}", "{'sort': {'sku': -1}}"},
      {"{}", "{'sort': {'price': 1}, 'limit': 10}"},
      {"{}", "{'sort': {'categoryId': -1, 'price': -1}, 'limit': 10}"},
      {"{'stock': {'$gte': 1}, 'sku': 'SKU-00008'}", "{}"},
      {"{'price': {'$lt': {'$numberDecimal': '111'}}}", "{'sort': {'price': 1}}"},
      {"{'price': {'$gt': {'$numberDecimal': '0.1'}, '$lt': 5.5}}", "{}"},
      /* decimal 0.1 is below the double 0.1 yet encodes like it: exclusive bounds widen */
      {"{'price': {'$gt': {'$numberDecimal': '0.09'}, '$lt': 0.1}}", "{}"},
      {"{'price': {'$gt': 0.1}}", "{'sort': {'price': 1}, 'limit': 3}"},
      {"{'$or': [{'sku': 'SKU-00001'}, {'price': {'$lt': 20}}, {'tags': 'white'}]}", "{}"},
      {"{'$or': [{'sku': 'SKU-00001'}, {'price': {'$lt': 20}}]}", "{'sort': {'price': -1}, 'limit': 4}"},
      {"{'$or': [{'sku': 'SKU-00001'}, {'stock': 2}]}", "{'limit': 3}"},
      {"{'sku': {'$regex': '^SKU-0001'}}", "{'sort': {'sku': -1}}"},
      {"{'sku': {'$regex': '^SKU-0001[0-3]'}}", "{'sort': {'sku': 1}}"},
      {"{'sku': {'$regex': '^SKU-0002?'}}", "{'sort': {'sku': 1}, 'limit': 40}"},
      {"{'sku': {'$regex': '^sku-0001', '$options': 'i'}}", "{'sort': {'sku': 1}}"},
      {"{'tags': {'$regex': '^wh'}}", "{}"},
   };
   flora_store_t *s = open_store("sqlite::memory:", 0);
   (void) state;
   seed_products(s, 600);
   create_index(s, "products", "{'key': {'sku': 1}, 'unique': true}");
   create_index(s, "products", "{'key': {'price': 1}}");
   create_index(s, "products", "{'key': {'categoryId': 1, 'price': -1}}");
   create_index(s, "products", "{'key': {'tags': 1}}");
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_t *f = J(cases[i][0]);
      bson_t *o = J(cases[i][1]);
      bson_t *natural = bson_copy(o);
      bson_t *a, *b;
      bson_t hint;
      BSON_APPEND_DOCUMENT_BEGIN(natural, "hint", &hint);
      BSON_APPEND_INT32(&hint, "$natural", 1);
      bson_append_document_end(natural, &hint);
      a = find_ids(s, "products", f, o);
      b = find_ids(s, "products", f, natural);
      if (!o || !bson_has_field(o, "sort")) {
         /* without a sort only the set matters: compare counts and membership */
         assert_int_equal(bson_count_keys(a), bson_count_keys(b));
      } else if (!bson_equal(a, b)) {
         char *ja = flora_test_str(a), *jb = flora_test_str(b);
         fail_msg("case %zu %s %s:\n planner %s\n scan    %s", i, cases[i][0], cases[i][1], ja, jb);
      }
      if (!(bson_count_keys(b) > 0 || strstr(cases[i][0], "['red', 'gift']"))) {
         fail_msg("case %zu %s finds nothing", i, cases[i][0]);
      }
      bson_destroy(a);
      bson_destroy(b);
      bson_destroy(f);
      bson_destroy(o);
      bson_destroy(natural);
   }
   flora_store_close(s);
}

static void
test_explain_uses_index(void **state)
{
   flora_store_t *s = open_store("sqlite::memory:", 0);
   char *j;
   (void) state;
   seed_products(s, 200);
   create_index(s, "products", "{'key': {'price': 1}}");
   create_index(s, "products", "{'key': {'sku': 1}, 'unique': true}");

   j = explain_json(s, "products", "{'price': {'$gt': 5}}", "{'sort': {'price': 1}, 'limit': 24}");
   assert_non_null(strstr(j, "\"IXSCAN\""));
   assert_non_null(strstr(j, "\"indexName\" : \"price_1\""));
   assert_null(strstr(j, "\"SORT\""));
   assert_non_null(strstr(j, "USING PRIMARY KEY (key>? AND key<?)"));
   bson_free(j);

   j = explain_json(s, "products", "{'sku': 'SKU-00010'}", "{}");
   assert_non_null(strstr(j, "\"indexName\" : \"sku_1\""));
   assert_non_null(strstr(j, "[\\\"SKU-00010\\\", \\\"SKU-00010\\\"]"));
   bson_free(j);

   j = explain_json(s, "products", "{'stock': 3}", "{}");
   assert_non_null(strstr(j, "\"COLLSCAN\""));
   bson_free(j);

   /* an anchored regex scans the strings with its prefix */
   j = explain_json(s, "products", "{'sku': {'$regex': '^SKU-001'}}", "{}");
   assert_non_null(strstr(j, "\"indexName\" : \"sku_1\""));
   assert_non_null(strstr(j, "USING PRIMARY KEY (key>? AND key<?)"));
   bson_free(j);
   j = explain_json(s, "products", "{'sku': {'$regex': 'SKU-001'}}", "{}");
   assert_non_null(strstr(j, "\"COLLSCAN\""));
   bson_free(j);

   /* $or: every clause through an index, or a collection scan */
   j = explain_json(s, "products", "{'$or': [{'sku': 'SKU-00010'}, {'price': {'$lt': 5}}]}", "{}");
   assert_non_null(strstr(j, "\"OR\""));
   assert_non_null(strstr(j, "\"indexName\" : \"sku_1\""));
   assert_non_null(strstr(j, "\"indexName\" : \"price_1\""));
   bson_free(j);
   j = explain_json(s, "products", "{'$or': [{'sku': 'SKU-00010'}, {'stock': 5}]}", "{}");
   assert_non_null(strstr(j, "\"COLLSCAN\""));
   bson_free(j);

   j = explain_json(s, "products", "{'stock': 3}", "{'sort': {'stock': 1}}");
   assert_non_null(strstr(j, "\"SORT\""));
   bson_free(j);

   /* hint by name and by key pattern; an unknown hint is an error */
   j = explain_json(s, "products", "{'stock': 3}", "{'hint': 'price_1'}");
   assert_non_null(strstr(j, "\"indexName\" : \"price_1\""));
   bson_free(j);
   j = explain_json(s, "products", "{'stock': 3}", "{'hint': {'sku': 1}}");
   assert_non_null(strstr(j, "\"indexName\" : \"sku_1\""));
   bson_free(j);
   {
      bson_t *f = J("{}"), *o = J("{'hint': 'nope_1'}"), out;
      flora_error_t e;
      assert_false(flora_store_explain(s, "products", f, o, &out, &e));
      assert_int_equal(e.code, 2);
      bson_destroy(&out);
      bson_destroy(f);
      bson_destroy(o);
   }
   flora_store_close(s);
}

/* ---- unique, sparse, partial, multikey ------------------------------------------------- */

static void
test_unique(void **state)
{
   flora_store_t *s = open_store("sqlite::memory:", 0);
   flora_error_t e;
   bson_t *d, list;
   (void) state;
   create_index(s, "users", "{'key': {'email': 1}, 'unique': true}");
   insert_json(s, "users", "{'_id': 1, 'email': 'a@b.c'}");
   d = J("{'_id': 2, 'email': 'a@b.c'}");
   assert_false(flora_store_insert_one(s, "users", d, NULL, NULL, &e));
   assert_int_equal(e.code, 11000);
   assert_string_equal(e.message, "E11000 duplicate key error collection: flora.users index: "
                                  "email_1 dup key: { email: \"a@b.c\" }");
   bson_destroy(d);
   assert_int_equal(count(s, "users", "{}"), 1);

   /* one document without the field (indexed as null), not two */
   insert_json(s, "users", "{'_id': 3}");
   d = J("{'_id': 4, 'name': 'x'}");
   assert_false(flora_store_insert_one(s, "users", d, NULL, NULL, &e));
   assert_int_equal(e.code, 11000);
   bson_destroy(d);

   /* an update into a duplicate fails and changes nothing */
   insert_json(s, "users", "{'_id': 5, 'email': 'z@b.c'}");
   {
      bson_t *f = J("{'_id': 5}"), *u = J("{'$set': {'email': 'a@b.c'}}");
      assert_false(flora_store_update_one(s, "users", f, u, NULL, NULL, &e));
      assert_int_equal(e.code, 11000);
      bson_destroy(f);
      bson_destroy(u);
   }
   assert_int_equal(count(s, "users", "{'email': 'z@b.c'}"), 1);

   /* unordered insert_many keeps the good ones */
   {
      bson_t *a = J("{'_id': 10, 'email': 'n1'}"), *b = J("{'_id': 11, 'email': 'a@b.c'}"),
             *c = J("{'_id': 12, 'email': 'n2'}"), *o = J("{'ordered': false}"), reply;
      const bson_t *docs[] = {a, b, c};
      assert_false(flora_store_insert_many(s, "users", docs, 3, o, &reply, &e));
      assert_int_equal(e.code, 11000);
      bson_destroy(&reply);
      bson_destroy(a);
      bson_destroy(b);
      bson_destroy(c);
      bson_destroy(o);
   }
   assert_int_equal(count(s, "users", "{'_id': {'$in': [10, 12]}}"), 2);

   /* a unique index over duplicates fails and creates nothing */
   insert_json(s, "phones", "{'_id': 20, 'phone': '1'}");
   insert_json(s, "phones", "{'_id': 21, 'phone': '1'}");
   {
      bson_t *spec = J("{'0': {'key': {'phone': 1}, 'unique': true, 'sparse': true}}");
      assert_false(flora_store_create_indexes(s, "phones", spec, &e));
      assert_int_equal(e.code, 11000);
      bson_destroy(spec);
   }
   must(flora_store_list_indexes(s, "phones", &list, &e), &e);
   assert_int_equal(bson_count_keys(&list), 1);
   {
      bson_iter_t it;
      assert_true(bson_iter_init_find(&it, &list, "0"));
      bson_t *exp = J("{'v': 2, 'key': {'_id': 1}, 'name': '_id_'}");
      bson_t got;
      const uint8_t *data;
      uint32_t len;
      bson_iter_document(&it, &len, &data);
      bson_init_static(&got, data, len);
      assert_bson_equal(&got, exp);
      bson_destroy(exp);
   }
   bson_destroy(&list);

   /* drop: 27 for a missing index, 72 for _id_ */
   assert_false(flora_store_drop_index(s, "users", "nope", &e));
   assert_int_equal(e.code, 27);
   assert_false(flora_store_drop_index(s, "users", "_id_", &e));
   assert_int_equal(e.code, 72);
   must(flora_store_drop_index(s, "users", "email_1", &e), &e);
   insert_json(s, "users", "{'_id': 30, 'email': 'a@b.c'}");
   flora_store_close(s);
}

static void
test_sparse_partial_multikey(void **state)
{
   flora_store_t *s = open_store("sqlite::memory:", 0);
   flora_error_t e;
   char *j;
   (void) state;
   /* sparse unique: many documents without the field */
   create_index(s, "c", "{'key': {'code': 1}, 'unique': true, 'sparse': true}");
   insert_json(s, "c", "{'_id': 1}");
   insert_json(s, "c", "{'_id': 2}");
   insert_json(s, "c", "{'_id': 3, 'code': 'X'}");
   assert_int_equal(count(s, "c", "{'code': null}"), 2);
   assert_int_equal(count(s, "c", "{'code': 'X'}"), 1);

   /* partial unique: one active coupon use per (user, coupon) */
   create_index(s, "uses", "{'key': {'user': 1, 'coupon': 1}, 'unique': true, "
                           "'partialFilterExpression': {'active': true}}");
   insert_json(s, "uses", "{'_id': 1, 'user': 'u', 'coupon': 'c', 'active': false}");
   insert_json(s, "uses", "{'_id': 2, 'user': 'u', 'coupon': 'c', 'active': false}");
   insert_json(s, "uses", "{'_id': 3, 'user': 'u', 'coupon': 'c', 'active': true}");
   {
      bson_t *d = J("{'_id': 4, 'user': 'u', 'coupon': 'c', 'active': true}");
      assert_false(flora_store_insert_one(s, "uses", d, NULL, NULL, &e));
      assert_int_equal(e.code, 11000);
      bson_destroy(d);
   }
   assert_int_equal(count(s, "uses", "{'user': 'u', 'coupon': 'c'}"), 3);
   j = explain_json(s, "uses", "{'user': 'u', 'coupon': 'c'}", "{}");
   assert_non_null(strstr(j, "COLLSCAN")); /* the filter does not imply active: true */
   bson_free(j);
   j = explain_json(s, "uses", "{'user': 'u', 'coupon': 'c', 'active': true}", "{}");
   assert_non_null(strstr(j, "IXSCAN"));
   bson_free(j);

   /* multikey: one entry per element; a document's duplicates once; parallel arrays */
   create_index(s, "m", "{'key': {'a': 1, 'b': 1}}");
   insert_json(s, "m", "{'_id': 1, 'a': [1, 2, 2], 'b': 5}");
   insert_json(s, "m", "{'_id': 2, 'a': 3, 'b': [5, 6]}");
   {
      bson_t *d = J("{'_id': 3, 'a': [1], 'b': [2]}");
      assert_false(flora_store_insert_one(s, "m", d, NULL, NULL, &e));
      assert_int_equal(e.code, 171);
      bson_destroy(d);
   }
   assert_int_equal(count(s, "m", "{'a': 2}"), 1);
   assert_int_equal(count(s, "m", "{'a': {'$gt': 1, '$lt': 2}}"), 1); /* [1,2]: any element */
   assert_int_equal(count(s, "m", "{'a': 3, 'b': 6}"), 1);
   j = explain_json(s, "m", "{'a': 2}", "{}");
   assert_non_null(strstr(j, "\"isMultiKey\" : true"));
   bson_free(j);

   /* a sort on a multikey field orders by the array's smallest element, even when the
    * bounds meet the document at another element */
   create_index(s, "mk", "{'key': {'t': 1}}");
   insert_json(s, "mk", "{'_id': 1, 't': ['b', 'z']}");
   insert_json(s, "mk", "{'_id': 2, 't': ['c']}");
   insert_json(s, "mk", "{'_id': 3, 't': ['c', 'a']}");
   {
      bson_t *f = J("{'t': {'$in': ['b', 'c']}}"), *o = J("{'sort': {'t': 1}}");
      bson_t *ids = find_ids(s, "mk", f, o), *exp = J("{'0': 3, '1': 1, '2': 2}");
      assert_bson_equal(ids, exp);
      bson_destroy(ids);
      bson_destroy(exp);
      bson_destroy(o);
      o = J("{'sort': {'t': -1}, 'limit': 1}");
      ids = find_ids(s, "mk", f, o);
      exp = J("{'0': 1}");
      assert_bson_equal(ids, exp);
      bson_destroy(ids);
      bson_destroy(exp);
      bson_destroy(o);
      bson_destroy(f);
   }
   flora_store_close(s);
}

/* ---- TTL ------------------------------------------------------------------------------------ */

static void
test_ttl(void **state)
{
   char uri[256];
   flora_store_t *s;
   char json[256];
   int64_t now_ms = (int64_t) time(NULL) * 1000;
   (void) state;
   temp_db(uri, sizeof uri);
   s = open_store(uri, 1);
   create_index(s, "sessions", "{'key': {'createdAt': 1}, 'expireAfterSeconds': 60}");
   snprintf(json, sizeof json, "{'_id': 'old', 'createdAt': {'$date': {'$numberLong': '%lld'}}}",
            (long long) (now_ms - 3600 * 1000));
   insert_json(s, "sessions", json);
   snprintf(json, sizeof json,
            "{'_id': 'oldest-in-array', 'createdAt': [{'$date': {'$numberLong': '%lld'}}, "
            "{'$date': {'$numberLong': '%lld'}}]}",
            (long long) (now_ms + 3600 * 1000), (long long) (now_ms - 3600 * 1000));
   insert_json(s, "sessions", json);
   snprintf(json, sizeof json, "{'_id': 'new', 'createdAt': {'$date': {'$numberLong': '%lld'}}}",
            (long long) now_ms);
   insert_json(s, "sessions", json);
   insert_json(s, "sessions", "{'_id': 'no-date', 'createdAt': 'yesterday'}");
   for (int i = 0; i < 100 && count(s, "sessions", "{}") > 2; i++) {
      usleep(100 * 1000);
   }
   assert_int_equal(count(s, "sessions", "{}"), 2);
   assert_int_equal(count(s, "sessions", "{'_id': {'$in': ['new', 'no-date']}}"), 2);
   assert_int_equal(count(s, "sessions", "{'createdAt': {'$lt': {'$date': {'$numberLong': '1'}}}}"), 0);
   flora_store_close(s); /* stops the sweeper at once (not after a period) */
   remove_db(uri);
}

/* ---- text ------------------------------------------------------------------------------------ */

static void
test_text(void **state)
{
   flora_store_t *s = open_store("sqlite::memory:", 0);
   flora_error_t e;
   (void) state;
   insert_json(s, "p", "{'_id': 1, 'name': 'Роза Red Naomi', 'description': 'Крупная красная роза'}");
   insert_json(s, "p", "{'_id': 2, 'name': 'Тюльпаны', 'description': 'Букет с розой и тюльпанами'}");
   insert_json(s, "p", "{'_id': 3, 'name': 'Lily', 'description': 'white lilies'}");
   {
      bson_t *f = J("{'$text': {'$search': 'розы'}}"), *o = J("{}");
      flora_cursor_t *c = NULL;
      assert_false(flora_store_find(s, "p", f, o, &c, &e) && c && !flora_cursor_error(c, &e));
      assert_int_equal(e.code, 27);
      assert_string_equal(e.message, "text index required for $text query");
      flora_cursor_destroy(c);
      bson_destroy(f);
      bson_destroy(o);
   }
   create_index(s, "p", "{'key': {'name': 'text', 'description': 'text'}, 'weights': {'name': 10}, "
                        "'default_language': 'russian'}");
   {
      bson_t *spec = J("{'0': {'key': {'description': 'text'}, 'name': 'other'}}");
      assert_false(flora_store_create_indexes(s, "p", spec, &e));
      assert_int_equal(e.code, 85);
      bson_destroy(spec);
   }
   assert_int_equal(count(s, "p", "{'$text': {'$search': 'розы'}}"), 2);
   assert_int_equal(count(s, "p", "{'$text': {'$search': 'lily'}}"), 1);
   assert_int_equal(count(s, "p", "{'$text': {'$search': 'розы -тюльпан'}}"), 1);
   assert_int_equal(count(s, "p", "{'$text': {'$search': '\\\"красная роза\\\"'}}"), 1);
   assert_int_equal(count(s, "p", "{'$text': {'$search': 'орхидея'}}"), 0);
   assert_int_equal(count(s, "p", "{'$text': {'$search': 'роза'}, '_id': {'$gt': 1}}"), 1);
   {
      /* ranked by score: the name (weight 10) beats the description */
      bson_t *f = J("{'$text': {'$search': 'роза'}}");
      bson_t *o = J("{'sort': {'score': {'$meta': 'textScore'}}}");
      bson_t *ids = find_ids(s, "p", f, o);
      bson_t *exp = J("{'0': 1, '1': 2}");
      assert_bson_equal(ids, exp);
      bson_destroy(ids);
      bson_destroy(exp);
      bson_destroy(f);
      bson_destroy(o);
   }
   /* an update re-indexes the text */
   {
      bson_t *f = J("{'_id': 3}"), *u = J("{'$set': {'description': 'розовые лилии'}}");
      must(flora_store_update_one(s, "p", f, u, NULL, NULL, &e), &e);
      bson_destroy(f);
      bson_destroy(u);
   }
   assert_int_equal(count(s, "p", "{'$text': {'$search': 'лилия'}}"), 1);
   {
      char *j = explain_json(s, "p", "{'$text': {'$search': 'роза'}}", "{}");
      assert_non_null(strstr(j, "TEXT_MATCH"));
      assert_non_null(strstr(j, "VIRTUAL TABLE INDEX"));
      bson_free(j);
   }
   flora_store_close(s);
}

/* ---- transactions --------------------------------------------------------------------------- */

static bool
txn_two_then(flora_store_t *txn, void *ctx, flora_error_t *error)
{
   bool commit = *(bool *) ctx;
   bson_t *a = J("{'k': 'a'}"), *b = J("{'k': 'b'}");
   int64_t n = 0;
   bool ok = flora_store_insert_one(txn, "t", a, NULL, NULL, error) &&
             flora_store_insert_one(txn, "t", b, NULL, NULL, error) &&
             flora_store_count_documents(txn, "t", NULL, NULL, &n, error);
   bson_destroy(a);
   bson_destroy(b);
   if (ok && n < 2) {
      flora_error_set(error, FLORA_DOMAIN_STORE, 1, "the transaction does not see its writes");
      return false;
   }
   if (ok && !commit) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT, "abort on purpose");
      return false;
   }
   return ok;
}

static void
test_transactions(void **state)
{
   flora_store_t *s = open_store("sqlite::memory:", 0);
   flora_error_t e;
   bool commit = false;
   (void) state;
   assert_false(flora_store_with_transaction(s, txn_two_then, &commit, &e));
   assert_string_equal(e.message, "abort on purpose");
   assert_int_equal(count(s, "t", "{}"), 0);
   commit = true;
   must(flora_store_with_transaction(s, txn_two_then, &commit, &e), &e);
   assert_int_equal(count(s, "t", "{}"), 2);
   flora_store_close(s);
}

/* ---- concurrency ----------------------------------------------------------------------------- */

#define STOCK 120
#define THREADS 6
#define ATTEMPTS 30

typedef struct worker {
   flora_store_t *s;
   int sold;
   int failed;
} worker_t;

static int
sell(flora_store_t *s, int attempts, int *failed)
{
   bson_t *f = J("{'sku': 'ROSE-1', 'stock': {'$gte': 1}}");
   bson_t *u = J("{'$inc': {'stock': -1, 'sold': 1}}");
   int sold = 0;
   for (int i = 0; i < attempts; i++) {
      bson_t reply;
      flora_error_t e;
      bson_iter_t it;
      if (!flora_store_update_one(s, "stock", f, u, NULL, &reply, &e)) {
         (*failed)++;
      } else if (bson_iter_init_find(&it, &reply, "modifiedCount")) {
         sold += (int) bson_iter_as_int64(&it);
      }
      bson_destroy(&reply);
   }
   bson_destroy(f);
   bson_destroy(u);
   return sold;
}

static void *
worker_main(void *arg)
{
   worker_t *w = arg;
   w->sold = sell(w->s, ATTEMPTS, &w->failed);
   return NULL;
}

static void
setup_stock(flora_store_t *s, int stock)
{
   char json[128];
   snprintf(json, sizeof json, "{'sku': 'ROSE-1', 'stock': %d, 'sold': 0}", stock);
   create_index(s, "stock", "{'key': {'sku': 1}, 'unique': true}");
   insert_json(s, "stock", json);
}

static void
test_threads_no_lost_updates(void **state)
{
   char uri[256];
   flora_store_t *s;
   pthread_t th[THREADS];
   worker_t w[THREADS];
   int sold = 0;
   (void) state;
   temp_db(uri, sizeof uri);
   s = open_store(uri, 0);
   setup_stock(s, 100); /* less than THREADS * ATTEMPTS: the filter must refuse the rest */
   for (int i = 0; i < THREADS; i++) {
      w[i].s = s;
      w[i].sold = w[i].failed = 0;
      assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
   }
   for (int i = 0; i < THREADS; i++) {
      pthread_join(th[i], NULL);
      sold += w[i].sold;
      assert_int_equal(w[i].failed, 0);
   }
   assert_int_equal(sold, 100);
   assert_int_equal(count(s, "stock", "{'stock': 0, 'sold': 100}"), 1);
   flora_store_close(s);
   remove_db(uri);
}

static void
test_processes_no_lost_updates(void **state)
{
   char uri[256];
   flora_store_t *s;
   pid_t pids[4];
   int sold = 0;
   (void) state;
   temp_db(uri, sizeof uri);
   s = open_store(uri, 0);
   setup_stock(s, STOCK);
   flora_store_close(s);
   for (int i = 0; i < 4; i++) {
      pids[i] = fork();
      assert_true(pids[i] >= 0);
      if (pids[i] == 0) {
         flora_store_t *cs = open_store(uri, 0);
         int failed = 0;
         int n = sell(cs, 40, &failed);
         flora_store_close(cs);
         _exit(failed ? 255 : n);
      }
   }
   for (int i = 0; i < 4; i++) {
      int status = 0;
      assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
      assert_true(WIFEXITED(status));
      assert_int_not_equal(WEXITSTATUS(status), 255);
      sold += WEXITSTATUS(status);
   }
   assert_int_equal(sold, STOCK);
   s = open_store(uri, 0);
   assert_int_equal(count(s, "stock", "{'stock': 0, 'sold': 120}"), 1);
   flora_store_close(s);
   remove_db(uri);
}

/* ---- aggregation, projection, find-and-modify, collections ------------------------------ */

static bson_t *
aggregate_all(flora_store_t *s, const char *coll, const char *pipeline_json)
{
   bson_t *p = J(pipeline_json), *out = bson_new();
   flora_cursor_t *c = NULL;
   flora_error_t e;
   const bson_t *doc;
   uint32_t i = 0;
   must(flora_store_aggregate(s, coll, p, NULL, &c, &e), &e);
   while (flora_cursor_next(c, &doc)) {
      char k[16];
      const char *key;
      bson_uint32_to_string(i++, &key, k, sizeof k);
      BSON_APPEND_DOCUMENT(out, key, doc);
   }
   assert_false(flora_cursor_error(c, &e));
   flora_cursor_destroy(c);
   bson_destroy(p);
   return out;
}

static void
test_aggregate_lookup(void **state)
{
   flora_store_t *s = open_store("sqlite::memory:", 0);
   bson_t *got, *exp;
   (void) state;
   create_index(s, "categories", "{'key': {'slug': 1}, 'unique': true}");
   insert_json(s, "categories", "{'_id': 1, 'slug': 'roses'}");
   insert_json(s, "categories", "{'_id': 2, 'slug': 'tulips'}");
   insert_json(s, "products", "{'_id': 10, 'cat': 'roses', 'price': 300}");
   insert_json(s, "products", "{'_id': 11, 'cat': 'tulips', 'price': 100}");
   insert_json(s, "products", "{'_id': 12, 'cat': 'roses', 'price': 200}");
   insert_json(s, "products", "{'_id': 13, 'price': 50}");
   got = aggregate_all(s, "products",
                       "[{'$match': {'price': {'$gte': 100}}}, {'$sort': {'price': 1}},"
                       " {'$lookup': {'from': 'categories', 'localField': 'cat',"
                       "  'foreignField': 'slug', 'as': 'c'}},"
                       " {'$project': {'_id': 1, 'n': {'$size': '$c'}}}]");
   exp = J("{'0': {'_id': 11, 'n': 1}, '1': {'_id': 12, 'n': 1}, '2': {'_id': 10, 'n': 1}}");
   assert_bson_equal(got, exp);
   bson_destroy(got);
   bson_destroy(exp);
   got = aggregate_all(s, "products",
                       "[{'$group': {'_id': '$cat', 'total': {'$sum': '$price'}}},"
                       " {'$sort': {'_id': 1}}]");
   exp = J("{'0': {'_id': null, 'total': 50}, '1': {'_id': 'roses', 'total': 500},"
           " '2': {'_id': 'tulips', 'total': 100}}");
   assert_bson_equal(got, exp);
   bson_destroy(got);
   bson_destroy(exp);
   flora_store_close(s);
}

static void
test_projection_and_find_and_modify(void **state)
{
   flora_store_t *s = open_store("sqlite::memory:", 0);
   flora_error_t e;
   bson_t out, *f, *u, *o, *exp;
   bool found;
   (void) state;
   insert_json(s, "q", "{'_id': 1, 'k': 'a', 'n': 5, 'name': 'foo bar'}");
   insert_json(s, "q", "{'_id': 2, 'k': 'a', 'n': 9, 'name': 'foo'}");
   insert_json(s, "q", "{'_id': 3, 'k': 'b', 'n': 1, 'name': 'baz'}");
   /* the lowest n of k 'a' by sort, projected */
   f = J("{'k': 'a'}");
   u = J("{'$inc': {'n': 1}}");
   o = J("{'sort': {'n': 1}, 'projection': {'n': 1, '_id': 0}, 'returnDocument': 'after'}");
   must(flora_store_find_one_and_update(s, "q", f, u, o, &out, &found, &e), &e);
   exp = J("{'n': 6}");
   assert_true(found);
   assert_bson_equal(&out, exp);
   bson_destroy(&out);
   bson_destroy(exp);
   bson_destroy(o);
   o = J("{'sort': {'n': -1}}");
   must(flora_store_find_one_and_delete(s, "q", f, o, &out, &found, &e), &e);
   exp = J("{'_id': 2, 'k': 'a', 'n': 9, 'name': 'foo'}");
   assert_bson_equal(&out, exp);
   bson_destroy(&out);
   bson_destroy(exp);
   bson_destroy(o);
   bson_destroy(u);
   bson_destroy(f);
   /* upsert through find-and-modify */
   f = J("{'_id': 7}");
   u = J("{'$set': {'k': 'z'}}");
   o = J("{'upsert': true, 'returnDocument': 'after'}");
   must(flora_store_find_one_and_update(s, "q", f, u, o, &out, &found, &e), &e);
   exp = J("{'_id': 7, 'k': 'z'}");
   assert_true(found);
   assert_bson_equal(&out, exp);
   bson_destroy(&out);
   bson_destroy(exp);
   bson_destroy(o);
   bson_destroy(u);
   bson_destroy(f);
   /* textScore in a projection; the score never leaks into plain results */
   create_index(s, "q", "{'key': {'name': 'text'}}");
   f = J("{'$text': {'$search': 'foo'}}");
   o = J("{'projection': {'name': 1, 'score': {'$meta': 'textScore'}}}");
   must(flora_store_find_one(s, "q", f, o, &out, &found, &e), &e);
   exp = J("{'_id': 1, 'name': 'foo bar', 'score': 0.75}"); /* 'foo' once among 2 tokens: 1 * (0.5*1/2 + 0.5) */
   assert_bson_equal(&out, exp);
   bson_destroy(&out);
   bson_destroy(exp);
   bson_destroy(o);
   o = J("{'sort': {'s': {'$meta': 'textScore'}}}");
   must(flora_store_find_one(s, "q", f, o, &out, &found, &e), &e);
   exp = J("{'_id': 1, 'k': 'a', 'n': 6, 'name': 'foo bar'}");
   assert_bson_equal(&out, exp);
   bson_destroy(&out);
   bson_destroy(exp);
   bson_destroy(o);
   bson_destroy(f);
   flora_store_close(s);
}

static void
test_collections(void **state)
{
   flora_store_t *s = open_store("sqlite::memory:", 0);
   flora_error_t e;
   bson_t out, *exp;
   (void) state;
   must(flora_store_create_collection(s, "orders", NULL, &e), &e);
   assert_false(flora_store_create_collection(s, "orders", NULL, &e));
   assert_int_equal(e.code, 48);
   insert_json(s, "a b \"c\"; DROP TABLE x", "{'_id': 1}");
   insert_json(s, "users", "{'_id': 1}");
   must(flora_store_list_collections(s, &out, &e), &e);
   exp = J("{'0': 'a b \\\"c\\\"; DROP TABLE x', '1': 'orders', '2': 'users'}");
   assert_bson_equal(&out, exp);
   bson_destroy(&out);
   bson_destroy(exp);
   must(flora_store_drop_collection(s, "users", &e), &e);
   must(flora_store_drop_collection(s, "users", &e), &e);
   assert_int_equal(count(s, "users", "{}"), 0);
   assert_int_equal(count(s, "a b \"c\"; DROP TABLE x", "{}"), 1);
   flora_store_close(s);
}

/* A write lock held by another connection past the busy timeout: code 24, transient. */
static void
test_busy_is_transient(void **state)
{
   char uri[256];
   flora_store_options_t o = FLORA_STORE_OPTIONS_INIT;
   flora_store_t *s = NULL;
   flora_error_t e;
   sqlite3 *other = NULL;
   bson_t *d = J("{'x': 2}");
   (void) state;
   temp_db(uri, sizeof uri);
   o.ttl_sweep_interval_s = 0;
   o.busy_timeout_ms = 100;
   must(flora_store_open(&s, uri, &o, &e), &e);
   insert_json(s, "c", "{'x': 1}");
   assert_int_equal(sqlite3_open(uri + 7, &other), SQLITE_OK);
   assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
   assert_false(flora_store_insert_one(s, "c", d, NULL, NULL, &e));
   assert_int_equal(e.code, 24);
   assert_true(flora_error_is_transient(&e));
   assert_int_equal(count(s, "c", "{}"), 1); /* readers are not blocked (WAL) */
   sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
   sqlite3_close(other);
   must(flora_store_insert_one(s, "c", d, NULL, NULL, &e), &e);
   bson_destroy(d);
   flora_store_close(s);
   remove_db(uri);
}

/* Another process's new index is seen at once (the catalog follows schema changes). */
static void
test_catalog_across_processes(void **state)
{
   char uri[256];
   flora_store_t *s;
   flora_error_t e;
   pid_t pid;
   int status = 0;
   bson_t *d = J("{'_id': 2, 'email': 'a@b.c'}");
   (void) state;
   temp_db(uri, sizeof uri);
   {
      /* one connection, so its cached catalog is the one that must notice */
      flora_store_options_t o = FLORA_STORE_OPTIONS_INIT;
      o.ttl_sweep_interval_s = 0;
      o.pool_size = 1;
      must(flora_store_open(&s, uri, &o, &e), &e);
   }
   insert_json(s, "users", "{'_id': 1, 'email': 'a@b.c'}");
   assert_int_equal(count(s, "users", "{'email': 'a@b.c'}"), 1); /* catalog cached */
   pid = fork();
   assert_true(pid >= 0);
   if (pid == 0) {
      flora_store_t *cs = open_store(uri, 0);
      bson_t *spec = J("{'0': {'key': {'email': 1}, 'unique': true}}");
      bool ok = flora_store_create_indexes(cs, "users", spec, &e);
      bson_destroy(spec);
      flora_store_close(cs);
      _exit(ok ? 0 : 1);
   }
   assert_int_equal(waitpid(pid, &status, 0), pid);
   assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
   assert_false(flora_store_insert_one(s, "users", d, NULL, NULL, &e));
   assert_int_equal(e.code, 11000);
   {
      char *j = explain_json(s, "users", "{'email': 'a@b.c'}", "{}");
      assert_non_null(strstr(j, "email_1"));
      bson_free(j);
   }
   bson_destroy(d);
   flora_store_close(s);
   remove_db(uri);
}

/* Collection versions: bumped by every committed change, seen by other handles on the
 * file, untouched by reads and by writes that fail. */
static void
test_collection_version(void **state)
{
   char path[] = "/tmp/flora-version-XXXXXX";
   char uri[64];
   int fd = mkstemp(path);
   flora_store_t *a, *b;
   flora_error_t e;
   int64_t v0 = -1, v1 = -1, v2 = -1, v3 = -1, other = -1;
   bson_t *doc, *filter, *update;

   (void) state;
   assert_true(fd >= 0);
   close(fd);
   snprintf(uri, sizeof uri, "sqlite:%s", path);
   a = open_store(uri, 0);
   b = open_store(uri, 0);
   assert_true(flora_store_collection_version(a, "v", &v0, &e));
   assert_int_equal(v0, 0);
   doc = J("{'_id': 1, 'n': 1}");
   assert_true(flora_store_insert_one(a, "v", doc, NULL, NULL, &e));
   assert_true(flora_store_collection_version(b, "v", &v1, &e));
   assert_true(v1 > v0);
   /* a read does not change it; a failed write (duplicate _id) does not either */
   assert_true(flora_store_count_documents(b, "v", NULL, NULL, &other, &e));
   assert_false(flora_store_insert_one(b, "v", doc, NULL, NULL, &e));
   assert_true(flora_store_collection_version(a, "v", &v2, &e));
   assert_int_equal(v2, v1);
   /* an update through the other handle does */
   filter = J("{'_id': 1}");
   update = J("{'$inc': {'n': 1}}");
   assert_true(flora_store_update_one(b, "v", filter, update, NULL, NULL, &e));
   assert_true(flora_store_collection_version(a, "v", &v3, &e));
   assert_true(v3 > v2);
   /* another collection's counter is separate */
   assert_true(flora_store_collection_version(a, "other", &other, &e));
   assert_int_equal(other, 0);
   bson_destroy(doc);
   bson_destroy(filter);
   bson_destroy(update);
   flora_store_close(a);
   flora_store_close(b);
   unlink(path);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crud),
      cmocka_unit_test(test_index_results_match_collscan),
      cmocka_unit_test(test_explain_uses_index),
      cmocka_unit_test(test_unique),
      cmocka_unit_test(test_sparse_partial_multikey),
      cmocka_unit_test(test_ttl),
      cmocka_unit_test(test_text),
      cmocka_unit_test(test_transactions),
      cmocka_unit_test(test_threads_no_lost_updates),
      cmocka_unit_test(test_processes_no_lost_updates),
      cmocka_unit_test(test_aggregate_lookup),
      cmocka_unit_test(test_projection_and_find_and_modify),
      cmocka_unit_test(test_collections),
      cmocka_unit_test(test_busy_is_transient),
      cmocka_unit_test(test_catalog_across_processes),
      cmocka_unit_test(test_collection_version),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
