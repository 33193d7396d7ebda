/* The engine-agnostic store API suite (DESIGN.md section 2, "Conformance"): the same tests
 * against sqlite::memory:, a temporary sqlite file, and MongoDB when FLORA_TEST_MONGODB_URI
 * is set (a dedicated database on a replica set: every collection in it is dropped). */
#include "flora_test.h"

#include <stdbool.h>
#include <unistd.h>

#include "flora/store.h"

typedef struct target {
   const char *label;
   char uri[512];
   char dir[256]; /* temporary directory of a file store */
   bool available;
} target_t;

static target_t *current;
static flora_store_t *store;

/* ---- fixtures ---------------------------------------------------------------------------- */

static int
open_store(void **state)
{
   flora_error_t error = {0};
   bson_t names;
   bson_iter_t it;

   (void) state;
   if (!current->available) {
      return 0;
   }
   if (!flora_store_open(&store, current->uri, NULL, &error)) {
      fprintf(stderr, "cannot open %s: %s\n", current->uri, error.message);
      return -1;
   }
   if (!flora_store_list_collections(store, &names, &error)) {
      fprintf(stderr, "list_collections: %s\n", error.message);
      bson_destroy(&names);
      return -1;
   }
   bson_iter_init(&it, &names);
   while (bson_iter_next(&it)) {
      if (!flora_store_drop_collection(store, bson_iter_utf8(&it, NULL), &error)) {
         fprintf(stderr, "drop: %s\n", error.message);
         bson_destroy(&names);
         return -1;
      }
   }
   bson_destroy(&names);
   return 0;
}

static int
close_store(void **state)
{
   (void) state;
   flora_store_close(store);
   store = NULL;
   return 0;
}

#define REQUIRE_TARGET()                                                                       \
   do {                                                                                        \
      if (!current->available) {                                                               \
         flora_skip("%s: FLORA_TEST_MONGODB_URI is not set (no MongoDB server)",               \
                    current->label);                                                           \
      }                                                                                        \
   } while (0)

#define OK(call)                                                                               \
   do {                                                                                        \
      flora_error_t e_ = {0};                                                                  \
      flora_error_t *error = &e_;                                                              \
      if (!(call)) {                                                                           \
         fail_msg("%s failed: [%u] %s", #call, e_.code, e_.message);                           \
      }                                                                                        \
   } while (0)

/* Asserts a STORE error with code. */
#define FAILS_WITH(expected_code, call)                                                        \
   do {                                                                                        \
      flora_error_t e_ = {0};                                                                  \
      flora_error_t *error = &e_;                                                              \
      if (call) {                                                                              \
         fail_msg("%s succeeded; expected code %d", #call, (int) (expected_code));             \
      }                                                                                        \
      if (e_.domain != FLORA_DOMAIN_STORE || e_.code != (uint32_t) (expected_code)) {          \
         fail_msg("%s: expected store code %d, got domain %u code %u: %s", #call,              \
                  (int) (expected_code), e_.domain, e_.code, e_.message);                      \
      }                                                                                        \
   } while (0)

static int64_t
reply_int(const bson_t *reply, const char *key)
{
   bson_iter_t it;

   if (!bson_iter_init_find(&it, reply, key)) {
      char *s = flora_test_str(reply);
      fail_msg("reply has no %s: %s", key, s);
   }
   return bson_iter_as_int64(&it);
}

static int64_t
count(const char *coll, const char *filter_json)
{
   bson_t *filter = J(filter_json);
   int64_t n = -1;

   OK(flora_store_count_documents(store, coll, filter, NULL, &n, error));
   bson_destroy(filter);
   return n;
}

static void
insert_json(const char *coll, const char *json)
{
   bson_t *doc = J(json);

   OK(flora_store_insert_one(store, coll, doc, NULL, NULL, error));
   bson_destroy(doc);
}

/* The documents of a find as a JSON array string (caller frees). */
static char *
find_json(const char *coll, const char *filter_json, const char *opts_json)
{
   bson_t *filter = J(filter_json);
   bson_t *opts = opts_json ? J(opts_json) : NULL;
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   bson_t all = BSON_INITIALIZER;
   uint32_t i = 0;
   char key[16];
   char *json;
   flora_error_t e = {0};

   OK(flora_store_find(store, coll, filter, opts, &cursor, error));
   while (flora_cursor_next(cursor, &doc)) {
      snprintf(key, sizeof key, "%u", i++);
      BSON_APPEND_DOCUMENT(&all, key, doc);
   }
   if (flora_cursor_error(cursor, &e)) {
      fail_msg("cursor: %s", e.message);
   }
   flora_cursor_destroy(cursor);
   json = bson_as_relaxed_extended_json(&all, NULL);
   bson_destroy(&all);
   bson_destroy(filter);
   if (opts) {
      bson_destroy(opts);
   }
   return json;
}

#define assert_find(coll, filter, opts, expected)                                              \
   do {                                                                                        \
      char *got_ = find_json(coll, filter, opts);                                              \
      bson_t *e_ = J("{'a': " expected "}");                                                   \
      char *want_ = NULL;                                                                      \
      bson_iter_t it_;                                                                         \
      bson_t arr_;                                                                             \
      const uint8_t *d_;                                                                       \
      uint32_t l_;                                                                             \
      bson_iter_init_find(&it_, e_, "a");                                                      \
      bson_iter_array(&it_, &l_, &d_);                                                         \
      bson_init_static(&arr_, d_, l_);                                                         \
      want_ = bson_as_relaxed_extended_json(&arr_, NULL);                                \
      if (strcmp(got_, want_) != 0) {                                                          \
         fail_msg("find %s %s\n  got:      %s\n  expected: %s", filter, opts ? opts : "",     \
                  got_, want_);                                                                \
      }                                                                                        \
      bson_free(got_);                                                                         \
      bson_free(want_);                                                                        \
      bson_destroy(e_);                                                                        \
   } while (0)

/* ---- CRUD ---------------------------------------------------------------------------------- */

static void
test_insert_adds_id_first(void **state)
{
   bson_t *doc = J("{'name': 'Rose', 'price': 100}");
   bson_t reply, found;
   bson_iter_t it;
   bool hit = false;

   (void) state;
   REQUIRE_TARGET();
   OK(flora_store_insert_one(store, "products", doc, NULL, &reply, error));
   assert_true(bson_iter_init_find(&it, &reply, "insertedId"));
   assert_int_equal(bson_iter_type(&it), BSON_TYPE_OID);
   OK(flora_store_find_one(store, "products", NULL, NULL, &found, &hit, error));
   assert_true(hit);
   assert_true(bson_iter_init(&it, &found) && bson_iter_next(&it));
   assert_string_equal(bson_iter_key(&it), "_id");
   bson_destroy(&found);
   bson_destroy(&reply);
   bson_destroy(doc);

   /* An _id given later in the document is moved to the front. */
   insert_json("products", "{'name': 'Tulip', '_id': 7}");
   assert_find("products", "{'_id': 7}", NULL, "[{'_id': 7, 'name': 'Tulip'}]");
}

static void
test_crud(void **state)
{
   bson_t *docs[3] = {J("{'_id': 1, 'n': 'a', 'q': 5}"), J("{'_id': 2, 'n': 'b', 'q': 0}"),
                      J("{'_id': 3, 'n': 'c', 'q': 9}")};
   bson_t *filter = NULL, *update = NULL, reply;

   (void) state;
   REQUIRE_TARGET();
   OK(flora_store_insert_many(store, "items", (const bson_t *const *) docs, 3, NULL, &reply,
                              error));
   assert_int_equal(reply_int(&reply, "insertedCount"), 3);
   bson_destroy(&reply);
   assert_int_equal(count("items", "{}"), 3);

   filter = J("{'_id': 2}");
   update = J("{'$set': {'q': 4}, '$inc': {'v': 1}}");
   OK(flora_store_update_one(store, "items", filter, update, NULL, &reply, error));
   assert_int_equal(reply_int(&reply, "matchedCount"), 1);
   assert_int_equal(reply_int(&reply, "modifiedCount"), 1);
   bson_destroy(&reply);
   bson_destroy(update);
   assert_find("items", "{'_id': 2}", NULL, "[{'_id': 2, 'n': 'b', 'q': 4, 'v': 1}]");

   update = J("{'$set': {'flag': true}}");
   bson_destroy(filter);
   filter = J("{'q': {'$gte': 4}}");
   OK(flora_store_update_many(store, "items", filter, update, NULL, &reply, error));
   assert_int_equal(reply_int(&reply, "matchedCount"), 3);
   assert_int_equal(reply_int(&reply, "modifiedCount"), 3);
   bson_destroy(&reply);
   bson_destroy(update);
   /* A no-op update matches but modifies nothing. */
   update = J("{'$set': {'flag': true}}");
   OK(flora_store_update_many(store, "items", filter, update, NULL, &reply, error));
   assert_int_equal(reply_int(&reply, "matchedCount"), 3);
   assert_int_equal(reply_int(&reply, "modifiedCount"), 0);
   bson_destroy(&reply);
   bson_destroy(update);

   bson_destroy(filter);
   filter = J("{'_id': 3}");
   update = J("{'n': 'C'}");
   OK(flora_store_replace_one(store, "items", filter, update, NULL, &reply, error));
   assert_int_equal(reply_int(&reply, "modifiedCount"), 1);
   bson_destroy(&reply);
   bson_destroy(update);
   assert_find("items", "{'_id': 3}", NULL, "[{'_id': 3, 'n': 'C'}]");
   /* Changing _id in a replacement is refused. */
   update = J("{'_id': 4, 'n': 'D'}");
   FAILS_WITH(FLORA_STORE_IMMUTABLE_FIELD,
              flora_store_replace_one(store, "items", filter, update, NULL, NULL, error));
   bson_destroy(update);

   OK(flora_store_delete_one(store, "items", filter, NULL, &reply, error));
   assert_int_equal(reply_int(&reply, "deletedCount"), 1);
   bson_destroy(&reply);
   bson_destroy(filter);
   filter = J("{}");
   OK(flora_store_delete_many(store, "items", filter, NULL, &reply, error));
   assert_int_equal(reply_int(&reply, "deletedCount"), 2);
   bson_destroy(&reply);
   bson_destroy(filter);
   assert_int_equal(count("items", "{}"), 0);
   for (int i = 0; i < 3; i++) {
      bson_destroy(docs[i]);
   }
}

static void
test_upsert(void **state)
{
   bson_t *filter = J("{'sku': 'R-1', 'size': {'$eq': 'M'}}");
   bson_t *update = J("{'$set': {'stock': 3}, '$setOnInsert': {'created': true}}");
   bson_t *opts = J("{'upsert': true}");
   bson_t reply;
   bson_iter_t it;

   (void) state;
   REQUIRE_TARGET();
   OK(flora_store_update_one(store, "variants", filter, update, opts, &reply, error));
   assert_int_equal(reply_int(&reply, "matchedCount"), 0);
   assert_int_equal(reply_int(&reply, "upsertedCount"), 1);
   assert_true(bson_iter_init_find(&it, &reply, "upsertedId"));
   bson_destroy(&reply);
   assert_find("variants", "{}", "{'projection': {'_id': 0}}",
               "[{'sku': 'R-1', 'size': 'M', 'stock': 3, 'created': true}]");
   /* Second time: it matches, $setOnInsert does nothing. */
   bson_destroy(update);
   update = J("{'$set': {'stock': 4}, '$setOnInsert': {'created': false}}");
   OK(flora_store_update_one(store, "variants", filter, update, opts, &reply, error));
   assert_int_equal(reply_int(&reply, "matchedCount"), 1);
   assert_int_equal(reply_int(&reply, "upsertedCount"), 0);
   assert_false(bson_has_field(&reply, "upsertedId"));
   bson_destroy(&reply);
   assert_find("variants", "{}", "{'projection': {'_id': 0}}",
               "[{'sku': 'R-1', 'size': 'M', 'stock': 4, 'created': true}]");
   bson_destroy(filter);
   bson_destroy(update);
   bson_destroy(opts);
}

static void
test_find_options(void **state)
{
   (void) state;
   REQUIRE_TARGET();
   insert_json("f", "{'_id': 1, 'p': 30, 'tags': ['x'], 'n': 'a'}");
   insert_json("f", "{'_id': 2, 'p': 10, 'tags': ['y', 'x'], 'n': 'b'}");
   insert_json("f", "{'_id': 3, 'p': 20, 'n': 'c'}");
   insert_json("f", "{'_id': 4, 'p': null, 'n': 'd'}");
   assert_find("f", "{}", "{'sort': {'p': -1}, 'projection': {'n': 1}}",
               "[{'_id': 1, 'n': 'a'}, {'_id': 3, 'n': 'c'}, {'_id': 2, 'n': 'b'}, "
               "{'_id': 4, 'n': 'd'}]");
   assert_find("f", "{'p': {'$gt': 5}}", "{'sort': {'p': 1}, 'skip': 1, 'limit': 1}",
               "[{'_id': 3, 'p': 20, 'n': 'c'}]");
   assert_find("f", "{'tags': 'x'}", "{'sort': {'_id': 1}, 'projection': {'_id': 0, 'n': 1}}",
               "[{'n': 'a'}, {'n': 'b'}]");
   assert_find("f", "{'p': null}", "{'projection': {'tags': 0, 'p': 0}}",
               "[{'_id': 4, 'n': 'd'}]");
   assert_find("f", "{'missing': {'$exists': true}}", NULL, "[]");
   /* A missing collection is empty. */
   assert_find("nothing_here", "{}", NULL, "[]");
}

static void
test_find_and_modify(void **state)
{
   bson_t *filter = J("{'k': 'a'}");
   bson_t *update = J("{'$inc': {'v': 1}}");
   bson_t *before = J("{'sort': {'v': 1}, 'returnDocument': 'before', 'projection': {'_id': 0}}");
   bson_t *after = J("{'sort': {'v': 1}, 'returnDocument': 'after', 'projection': {'_id': 0}}");
   bson_t *upsert_after = J("{'upsert': true, 'returnDocument': 'after', "
                            "'projection': {'_id': 0}}");
   bson_t *none = J("{'k': 'zzz'}");
   bson_t *replacement = J("{'k': 'a', 'v': 100}");
   bson_t out;
   bool found = false;

   (void) state;
   REQUIRE_TARGET();
   insert_json("fam", "{'_id': 1, 'k': 'a', 'v': 5}");
   insert_json("fam", "{'_id': 2, 'k': 'a', 'v': 1}");

   OK(flora_store_find_one_and_update(store, "fam", filter, update, before, &out, &found, error));
   assert_true(found);
   {
      bson_t *want = J("{'k': 'a', 'v': 1}");
      assert_bson_equal(&out, want);
      bson_destroy(want);
   }
   bson_destroy(&out);
   OK(flora_store_find_one_and_update(store, "fam", filter, update, after, &out, &found, error));
   assert_true(found);
   {
      bson_t *want = J("{'k': 'a', 'v': 3}");
      assert_bson_equal(&out, want);
      bson_destroy(want);
   }
   bson_destroy(&out);

   /* No match, no upsert: not found, nothing written. */
   OK(flora_store_find_one_and_update(store, "fam", none, update, after, &out, &found, error));
   assert_false(found);
   assert_true(bson_empty(&out));
   bson_destroy(&out);
   assert_int_equal(count("fam", "{}"), 2);
   /* Upsert with "after" finds the new document. */
   OK(flora_store_find_one_and_update(store, "fam", none, update, upsert_after, &out, &found,
                                      error));
   assert_true(found);
   {
      bson_t *want = J("{'k': 'zzz', 'v': 1}");
      assert_bson_equal(&out, want);
      bson_destroy(want);
   }
   bson_destroy(&out);

   OK(flora_store_find_one_and_replace(store, "fam", filter, replacement, after, &out, &found,
                                       error));
   assert_true(found);
   bson_destroy(&out);
   assert_find("fam", "{'v': 100}", NULL, "[{'_id': 2, 'k': 'a', 'v': 100}]");

   OK(flora_store_find_one_and_delete(store, "fam", filter, before, &out, &found, error));
   assert_true(found);
   {
      bson_t *want = J("{'k': 'a', 'v': 5}");
      assert_bson_equal(&out, want);
      bson_destroy(want);
   }
   bson_destroy(&out);
   assert_int_equal(count("fam", "{}"), 2);

   bson_destroy(filter);
   bson_destroy(update);
   bson_destroy(before);
   bson_destroy(after);
   bson_destroy(upsert_after);
   bson_destroy(none);
   bson_destroy(replacement);
}

static void
test_count_distinct(void **state)
{
   bson_t *filter = J("{'on': true}");
   bson_t *opts = J("{'skip': 1, 'limit': 2}");
   bson_t out;
   int64_t n = 0;

   (void) state;
   REQUIRE_TARGET();
   insert_json("cd", "{'_id': 1, 'c': 'red', 'on': true, 'tags': ['a', 'b']}");
   insert_json("cd", "{'_id': 2, 'c': 'white', 'on': true, 'tags': ['b', 'c']}");
   insert_json("cd", "{'_id': 3, 'c': 'red', 'on': false, 'tags': 'd'}");
   insert_json("cd", "{'_id': 4, 'c': 2, 'on': true}");
   assert_int_equal(count("cd", "{'on': true}"), 3);
   assert_int_equal(count("cd", "{'c': 'red'}"), 2);
   OK(flora_store_count_documents(store, "cd", filter, opts, &n, error));
   assert_int_equal(n, 2);
   OK(flora_store_distinct(store, "cd", "c", NULL, &out, error));
   {
      bson_t *want = J("{'0': 2, '1': 'red', '2': 'white'}");
      assert_bson_equal(&out, want);
      bson_destroy(want);
   }
   bson_destroy(&out);
   OK(flora_store_distinct(store, "cd", "tags", filter, &out, error));
   {
      bson_t *want = J("{'0': 'a', '1': 'b', '2': 'c'}");
      assert_bson_equal(&out, want);
      bson_destroy(want);
   }
   bson_destroy(&out);
   bson_destroy(filter);
   bson_destroy(opts);
}

/* ---- indexes ------------------------------------------------------------------------------- */

static void
test_indexes(void **state)
{
   bson_t *specs = J("[{'key': {'email': 1}, 'name': 'email_unique', 'unique': true}, "
                     "{'key': {'city': 1, 'age': -1}}]");
   bson_t out;
   bson_iter_t it, spec;
   const char *names[3] = {NULL, NULL, NULL};
   int n = 0;

   (void) state;
   REQUIRE_TARGET();
   OK(flora_store_create_indexes(store, "users", specs, error));
   /* Creating the same indexes again succeeds. */
   OK(flora_store_create_indexes(store, "users", specs, error));
   OK(flora_store_list_indexes(store, "users", &out, error));
   bson_iter_init(&it, &out);
   while (bson_iter_next(&it) && n < 3) {
      bson_iter_t name;

      bson_iter_recurse(&it, &spec);
      assert_true(bson_iter_find(&spec, "name"));
      name = spec;
      names[n++] = bson_iter_utf8(&name, NULL);
   }
   assert_int_equal(bson_count_keys(&out), 3);
   assert_string_equal(names[0], "_id_");
   assert_true(strcmp(names[1], "email_unique") == 0 || strcmp(names[2], "email_unique") == 0);
   assert_true(strcmp(names[1], "city_1_age_-1") == 0 || strcmp(names[2], "city_1_age_-1") == 0);
   bson_destroy(&out);

   FAILS_WITH(FLORA_STORE_INVALID_OPTIONS, flora_store_drop_index(store, "users", "_id_", error));
   FAILS_WITH(FLORA_STORE_INDEX_NOT_FOUND, flora_store_drop_index(store, "users", "nope", error));
   OK(flora_store_drop_index(store, "users", "city_1_age_-1", error));
   OK(flora_store_list_indexes(store, "users", &out, error));
   assert_int_equal(bson_count_keys(&out), 2);
   bson_destroy(&out);
   bson_destroy(specs);
}

static void
test_unique_errors(void **state)
{
   bson_t *specs = J("[{'key': {'email': 1}, 'name': 'email_1', 'unique': true}]");
   bson_t *dup = J("{'email': 'a@x.ru'}");
   bson_t *same_id = J("{'_id': 1, 'email': 'b@x.ru'}");
   flora_error_t e = {0};

   (void) state;
   REQUIRE_TARGET();
   OK(flora_store_create_indexes(store, "users", specs, error));
   insert_json("users", "{'_id': 1, 'email': 'a@x.ru'}");
   assert_false(flora_store_insert_one(store, "users", dup, NULL, NULL, &e));
   assert_int_equal(e.domain, FLORA_DOMAIN_STORE);
   assert_int_equal(e.code, FLORA_STORE_DUPLICATE_KEY);
   assert_non_null(strstr(e.message, "E11000 duplicate key error"));
   assert_non_null(strstr(e.message, "email_1"));
   assert_non_null(strstr(e.message, "a@x.ru"));
   FAILS_WITH(FLORA_STORE_DUPLICATE_KEY,
              flora_store_insert_one(store, "users", same_id, NULL, NULL, error));
   assert_int_equal(count("users", "{}"), 1);
   /* A unique index over duplicates fails and is not created. */
   insert_json("dups", "{'v': 1}");
   insert_json("dups", "{'v': 1}");
   bson_destroy(specs);
   specs = J("[{'key': {'v': 1}, 'name': 'v_1', 'unique': true}]");
   FAILS_WITH(FLORA_STORE_DUPLICATE_KEY, flora_store_create_indexes(store, "dups", specs, error));
   {
      bson_t out;

      OK(flora_store_list_indexes(store, "dups", &out, error));
      assert_int_equal(bson_count_keys(&out), 1);
      bson_destroy(&out);
   }
   bson_destroy(specs);
   bson_destroy(dup);
   bson_destroy(same_id);
}

/* ---- validation hook ----------------------------------------------------------------------- */

static int validator_calls;

static bool
no_negative_price(void *ctx, const char *collection, const bson_t *doc, flora_error_t *error)
{
   bson_iter_t it;

   (void) ctx;
   validator_calls++;
   assert_string_equal(collection, "guarded");
   if (bson_iter_init_find(&it, doc, "price") && bson_iter_as_int64(&it) < 0) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "price: must not be negative");
      return false;
   }
   return true;
}

static void
test_validation_hook(void **state)
{
   bson_t *bad = J("{'price': -1}");
   bson_t *filter = J("{'_id': 1}");
   bson_t *update = J("{'$inc': {'price': -20}}");
   bson_t *upsert_filter = J("{'_id': 2}");
   bson_t *upsert_update = J("{'$set': {'price': -5}}");
   bson_t *upsert = J("{'upsert': true}");
   flora_error_t e = {0};

   (void) state;
   REQUIRE_TARGET();
   flora_store_set_validator(store, "guarded", no_negative_price, NULL);
   validator_calls = 0;
   assert_false(flora_store_insert_one(store, "guarded", bad, NULL, NULL, &e));
   assert_int_equal(e.domain, FLORA_DOMAIN_STORE);
   assert_int_equal(e.code, FLORA_STORE_DOCUMENT_VALIDATION);
   assert_string_equal(e.message, "Document failed validation: price: must not be negative");
   assert_int_equal(count("guarded", "{}"), 0);
   insert_json("guarded", "{'_id': 1, 'price': 10}");
   FAILS_WITH(FLORA_STORE_DOCUMENT_VALIDATION,
              flora_store_update_one(store, "guarded", filter, update, NULL, NULL, error));
   assert_find("guarded", "{}", NULL, "[{'_id': 1, 'price': 10}]");
   FAILS_WITH(FLORA_STORE_DOCUMENT_VALIDATION,
              flora_store_update_one(store, "guarded", upsert_filter, upsert_update, upsert,
                                     NULL, error));
   FAILS_WITH(FLORA_STORE_DOCUMENT_VALIDATION,
              flora_store_replace_one(store, "guarded", filter, bad, NULL, NULL, error));
   assert_find("guarded", "{}", NULL, "[{'_id': 1, 'price': 10}]");
   assert_true(validator_calls >= 4);
   /* Other collections are not validated; removing the hook stops it. */
   insert_json("unguarded", "{'price': -1}");
   flora_store_set_validator(store, "guarded", NULL, NULL);
   insert_json("guarded", "{'price': -1}");
   assert_int_equal(count("guarded", "{}"), 2);
   bson_destroy(bad);
   bson_destroy(filter);
   bson_destroy(update);
   bson_destroy(upsert_filter);
   bson_destroy(upsert_update);
   bson_destroy(upsert);
}

/* ---- transactions -------------------------------------------------------------------------- */

typedef struct txn_ctx {
   int calls;
   int fail_transient_times; /* fail with a transient error on the first N calls */
   bool abort;               /* return false after writing */
} txn_ctx_t;

static bool
txn_body(flora_store_t *txn, void *data, flora_error_t *error)
{
   txn_ctx_t *ctx = data;
   bson_t *a = J("{'acct': 'a', 'amount': -100}");
   bson_t *b = J("{'acct': 'b', 'amount': 100}");
   bool ok;

   ctx->calls++;
   ok = flora_store_insert_one(txn, "ledger", a, NULL, NULL, error) &&
        flora_store_insert_one(txn, "ledger", b, NULL, NULL, error);
   bson_destroy(a);
   bson_destroy(b);
   if (!ok) {
      return false;
   }
   if (ctx->calls <= ctx->fail_transient_times) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_WRITE_CONFLICT,
                      "simulated write conflict");
      return false;
   }
   if (ctx->abort) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT, "business rule refused");
      return false;
   }
   return true;
}

static void
test_transactions(void **state)
{
   txn_ctx_t commit = {0, 0, false}, abort_ctx = {0, 0, true}, retry = {0, 2, false};
   flora_error_t e = {0};

   (void) state;
   REQUIRE_TARGET();
   OK(flora_store_create_collection(store, "ledger", NULL, error));
   OK(flora_store_with_transaction(store, txn_body, &commit, error));
   assert_int_equal(commit.calls, 1);
   assert_int_equal(count("ledger", "{}"), 2);

   assert_false(flora_store_with_transaction(store, txn_body, &abort_ctx, &e));
   assert_int_equal(abort_ctx.calls, 1);
   assert_int_equal(e.domain, FLORA_DOMAIN_SHOP);
   assert_string_equal(e.message, "business rule refused");
   assert_int_equal(count("ledger", "{}"), 2);

   OK(flora_store_with_transaction(store, txn_body, &retry, error));
   assert_int_equal(retry.calls, 3);
   assert_int_equal(count("ledger", "{}"), 4);
}

/* ---- errors -------------------------------------------------------------------------------- */

/* A bad filter fails at find or on the cursor's first next, with code. */
static void
assert_find_fails(const char *filter_json, uint32_t code)
{
   bson_t *filter = J(filter_json);
   flora_cursor_t *cursor = NULL;
   flora_error_t e = {0};
   const bson_t *doc;

   if (flora_store_find(store, "errs", filter, NULL, &cursor, &e)) {
      assert_false(flora_cursor_next(cursor, &doc));
      assert_true(flora_cursor_error(cursor, &e));
   }
   if (e.domain != FLORA_DOMAIN_STORE || e.code != code) {
      fail_msg("find %s: expected code %u, got %u: %s", filter_json, code, e.code, e.message);
   }
   flora_cursor_destroy(cursor);
   bson_destroy(filter);
}

static void
test_cursor_and_filter_errors(void **state)
{
   flora_cursor_t *cursor = NULL;
   flora_error_t e = {0};
   const bson_t *doc;
   bson_t *filter = J("{}");
   int n = 0;

   (void) state;
   REQUIRE_TARGET();
   insert_json("errs", "{'a': 1}");
   OK(flora_store_find(store, "errs", filter, NULL, &cursor, error));
   while (flora_cursor_next(cursor, &doc)) {
      n++;
   }
   assert_int_equal(n, 1);
   assert_false(flora_cursor_error(cursor, &e));
   /* Past the end it stays at the end. */
   assert_false(flora_cursor_next(cursor, &doc));
   flora_cursor_destroy(cursor);
   bson_destroy(filter);

   assert_find_fails("{'a': {'$foo': 1}}", FLORA_STORE_BAD_VALUE);
   assert_find_fails("{'$where': 'this.a == 1'}", FLORA_STORE_BAD_VALUE);
   assert_find_fails("{'a': {'$in': 5}}", FLORA_STORE_BAD_VALUE);
   assert_find_fails("{'$and': 'x'}", FLORA_STORE_BAD_VALUE);
}

static bson_t *
nested(int depth)
{
   bson_t *doc = bson_new();

   BSON_APPEND_INT32(doc, "leaf", 1);
   for (int i = 1; i < depth; i++) {
      bson_t *outer = bson_new();

      BSON_APPEND_DOCUMENT(outer, "d", doc);
      bson_destroy(doc);
      doc = outer;
   }
   return doc;
}

static void
test_bad_documents(void **state)
{
   bson_t *dollar = J("{'$bad': 1}");
   bson_t *empty_name = J("{'': 1}");
   bson_t *ok_nested = nested(100);
   bson_t *too_deep = nested(101);
   bson_t *big = bson_new();
   char *blob = malloc(1024 * 1024);
   bson_t *update = J("{'$set': {'x': 1}}");
   bson_t *not_update = J("{'x': 1}");
   bson_t *filter = J("{}");

   (void) state;
   REQUIRE_TARGET();
   memset(blob, 'x', 1024 * 1024 - 1);
   blob[1024 * 1024 - 1] = '\0';
   for (int i = 0; i < 17; i++) {
      char key[8];

      snprintf(key, sizeof key, "f%d", i);
      BSON_APPEND_UTF8(big, key, blob);
   }
   FAILS_WITH(FLORA_STORE_DOLLAR_PREFIXED,
              flora_store_insert_one(store, "bad", dollar, NULL, NULL, error));
   FAILS_WITH(FLORA_STORE_EMPTY_FIELD_NAME,
              flora_store_insert_one(store, "bad", empty_name, NULL, NULL, error));
   OK(flora_store_insert_one(store, "bad", ok_nested, NULL, NULL, error));
   FAILS_WITH(FLORA_STORE_OVERFLOW,
              flora_store_insert_one(store, "bad", too_deep, NULL, NULL, error));
   FAILS_WITH(FLORA_STORE_BSON_TOO_LARGE,
              flora_store_insert_one(store, "bad", big, NULL, NULL, error));
   FAILS_WITH(FLORA_STORE_FAILED_TO_PARSE,
              flora_store_update_one(store, "bad", filter, not_update, NULL, NULL, error));
   FAILS_WITH(FLORA_STORE_DOLLAR_PREFIXED,
              flora_store_replace_one(store, "bad", filter, update, NULL, NULL, error));
   assert_int_equal(count("bad", "{}"), 1);
   free(blob);
   bson_destroy(dollar);
   bson_destroy(empty_name);
   bson_destroy(ok_nested);
   bson_destroy(too_deep);
   bson_destroy(big);
   bson_destroy(update);
   bson_destroy(not_update);
   bson_destroy(filter);
}

static void
test_collections(void **state)
{
   bson_t out;

   (void) state;
   REQUIRE_TARGET();
   OK(flora_store_create_collection(store, "b_coll", NULL, error));
   FAILS_WITH(FLORA_STORE_NAMESPACE_EXISTS,
              flora_store_create_collection(store, "b_coll", NULL, error));
   insert_json("a_coll", "{'x': 1}");
   OK(flora_store_list_collections(store, &out, error));
   {
      bson_t *want = J("{'0': 'a_coll', '1': 'b_coll'}");
      assert_bson_equal(&out, want);
      bson_destroy(want);
   }
   bson_destroy(&out);
   OK(flora_store_drop_collection(store, "a_coll", error));
   OK(flora_store_drop_collection(store, "never_was", error));
   OK(flora_store_list_collections(store, &out, error));
   assert_int_equal(bson_count_keys(&out), 1);
   bson_destroy(&out);
   FAILS_WITH(73, flora_store_create_collection(store, "", NULL, error));
   FAILS_WITH(73, flora_store_create_collection(store, "a$b", NULL, error));
   OK(flora_store_ping(store, error));
}

/* ---- targets ------------------------------------------------------------------------------- */

static target_t memory_target = {"sqlite::memory:", "sqlite::memory:", "", true};
static target_t file_target = {"sqlite file", "", "", true};
static target_t mongo_target = {"mongodb", "", "", false};

static int
use_memory(void **state)
{
   (void) state;
   current = &memory_target;
   return 0;
}

static int
use_file(void **state)
{
   (void) state;
   snprintf(file_target.dir, sizeof file_target.dir, "/tmp/flora-store-api-XXXXXX");
   if (!mkdtemp(file_target.dir)) {
      return -1;
   }
   snprintf(file_target.uri, sizeof file_target.uri, "sqlite:%s/flora.db", file_target.dir);
   current = &file_target;
   return 0;
}

static int
drop_file(void **state)
{
   char cmd[600];

   (void) state;
   snprintf(cmd, sizeof cmd, "rm -rf '%s'", file_target.dir);
   return system(cmd) == 0 ? 0 : -1;
}

static int
use_mongo(void **state)
{
   const char *uri = getenv("FLORA_TEST_MONGODB_URI");

   (void) state;
   if (uri && uri[0]) {
      snprintf(mongo_target.uri, sizeof mongo_target.uri, "%s", uri);
      mongo_target.available = true;
   } else {
      print_message("SKIP: mongodb target: FLORA_TEST_MONGODB_URI is not set (no MongoDB "
                    "server on this machine)\n");
   }
   current = &mongo_target;
   return 0;
}

#define TESTS                                                                                  \
   cmocka_unit_test_setup_teardown(test_insert_adds_id_first, open_store, close_store),        \
      cmocka_unit_test_setup_teardown(test_crud, open_store, close_store),                     \
      cmocka_unit_test_setup_teardown(test_upsert, open_store, close_store),                   \
      cmocka_unit_test_setup_teardown(test_find_options, open_store, close_store),             \
      cmocka_unit_test_setup_teardown(test_find_and_modify, open_store, close_store),          \
      cmocka_unit_test_setup_teardown(test_count_distinct, open_store, close_store),           \
      cmocka_unit_test_setup_teardown(test_indexes, open_store, close_store),                  \
      cmocka_unit_test_setup_teardown(test_unique_errors, open_store, close_store),            \
      cmocka_unit_test_setup_teardown(test_validation_hook, open_store, close_store),          \
      cmocka_unit_test_setup_teardown(test_transactions, open_store, close_store),             \
      cmocka_unit_test_setup_teardown(test_cursor_and_filter_errors, open_store, close_store), \
      cmocka_unit_test_setup_teardown(test_bad_documents, open_store, close_store),            \
      cmocka_unit_test_setup_teardown(test_collections, open_store, close_store)

int
main(void)
{
   const struct CMUnitTest memory_tests[] = {TESTS};
   const struct CMUnitTest file_tests[] = {TESTS};
   const struct CMUnitTest mongo_tests[] = {TESTS};
   int failed = 0;

   failed += cmocka_run_group_tests_name("store api: sqlite::memory:", memory_tests, use_memory,
                                         NULL);
   failed += cmocka_run_group_tests_name("store api: sqlite file", file_tests, use_file,
                                         drop_file);
   failed += cmocka_run_group_tests_name("store api: mongodb", mongo_tests, use_mongo, NULL);
   return failed;
}
