/* The mongodb engine: the store API on MongoDB through libmongoc 1.23 (DESIGN.md section 2).
 *
 * One mongoc_client_pool_t per store (maximum size from options.pool_size), error API
 * version 2 (server errors in MONGOC_ERROR_SERVER with the server's code), retryable writes
 * on unless the URI says otherwise, the database from the URI path or "flora". Each
 * operation pops a client from the pool and pushes it back; a cursor keeps its client until
 * it is destroyed. A transaction handle owns one client and one mongoc_client_session_t
 * for the length of the callback, and every operation on it appends the session to its
 * options (mongoc_client_session_append), as the libmongoc transactions guide does.
 *
 * Errors keep MongoDB's codes. A reply carrying the TransientTransactionError label
 * becomes code 112 (WriteConflict) so flora_error_is_transient() lets the front retry the
 * whole transaction; the server's own code is kept in the message. Network and server
 * selection failures are code 6. Client-side argument errors are code 2.
 *
 * The validation hook (flora_store_set_validator) runs here on every inserted or replaced
 * document, and on the result of an update computed from the matched documents before the
 * update is sent (the server's $jsonSchema collection validator, created by migrations,
 * remains the authoritative check against concurrent writers).
 *
 * Sources: libmongoc 1.23 API reference (mongoc_client_pool_t, mongoc_collection_*,
 * mongoc_client_session_t, "Transactions", "Error Reporting"); MongoDB manual "Transactions:
 * Drivers API" for the retry labels. */
#include "store/store_private.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DB "flora"

typedef struct mongo_impl {
   mongoc_uri_t *uri;
   mongoc_client_pool_t *pool;
   char *db;
} mongo_impl_t;

typedef struct mongo_txn {
   mongo_impl_t *root;
   mongoc_client_t *client;
   mongoc_client_session_t *session;
} mongo_txn_t;

/* A client for one operation: the transaction's, or one popped from the pool. */
typedef struct lease {
   mongo_impl_t *root;
   mongoc_client_t *client;
   mongoc_client_session_t *session;
   bool pooled;
} lease_t;

static pthread_once_t mongoc_once = PTHREAD_ONCE_INIT;

static void
mongoc_init_once(void)
{
   mongoc_init();
   atexit(mongoc_cleanup);
}

/* ---- errors ------------------------------------------------------------------------- */

static void
map_error(const bson_error_t *err, const bson_t *reply, flora_error_t *error)
{
   uint32_t code;
   bool transient = reply && mongoc_error_has_label(reply, "TransientTransactionError");

   switch (err->domain) {
   case MONGOC_ERROR_SERVER:
   case MONGOC_ERROR_WRITE_CONCERN:
      code = err->code;
      break;
   case MONGOC_ERROR_STREAM:
   case MONGOC_ERROR_SERVER_SELECTION:
   case MONGOC_ERROR_CLIENT:
      code = FLORA_STORE_CONNECTION;
      break;
   default:
      /* Client-side checks of libmongoc (invalid arguments, BSON, namespaces). */
      code = FLORA_STORE_BAD_VALUE;
      break;
   }
   if (transient) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_WRITE_CONFLICT,
                      "TransientTransactionError (server code %" PRIu32 "): %s", err->code,
                      err->message);
      return;
   }
   flora_error_set(error, FLORA_DOMAIN_STORE, code, "%s", err->message);
}

/* ---- leases and options ------------------------------------------------------------- */

static void
lease_acquire(flora_store_t *store, lease_t *lease)
{
   memset(lease, 0, sizeof *lease);
   if (store->in_txn) {
      mongo_txn_t *txn = store->impl;

      lease->root = txn->root;
      lease->client = txn->client;
      lease->session = txn->session;
   } else {
      lease->root = store->impl;
      lease->client = mongoc_client_pool_pop(lease->root->pool);
      lease->pooled = true;
   }
}

static void
lease_release(lease_t *lease)
{
   if (lease->pooled && lease->client) {
      mongoc_client_pool_push(lease->root->pool, lease->client);
   }
   lease->client = NULL;
}

/* *out (initialised here): the fields of opts minus those named in skip (NULL-terminated
 * list, may be NULL), plus the session of a transaction. */
static bool
op_opts(const lease_t *lease, const bson_t *opts, const char *const *skip, bson_t *out,
        flora_error_t *error)
{
   bson_iter_t it;
   bson_error_t err;

   bson_init(out);
   if (opts && bson_iter_init(&it, opts)) {
      while (bson_iter_next(&it)) {
         bool skipped = false;

         for (const char *const *s = skip; s && *s; s++) {
            if (strcmp(*s, bson_iter_key(&it)) == 0) {
               skipped = true;
            }
         }
         if (!skipped) {
            bson_append_iter(out, bson_iter_key(&it), -1, &it);
         }
      }
   }
   if (lease->session && !mongoc_client_session_append(lease->session, out, &err)) {
      map_error(&err, NULL, error);
      return false;
   }
   return true;
}

static mongoc_collection_t *
get_collection(const lease_t *lease, const char *coll)
{
   return mongoc_client_get_collection(lease->client, lease->root->db, coll);
}

/* ---- validation of updates ---------------------------------------------------------- */

static bool
has_validator(flora_store_t *store, const char *coll)
{
   flora_store_t *root = store->parent ? store->parent : store;
   bool found = false;

   pthread_rwlock_rdlock(&root->validators_lock);
   for (flora_validator_entry_t *e = root->validators; e; e = e->next) {
      if (strcmp(e->collection, coll) == 0) {
         found = true;
      }
   }
   pthread_rwlock_unlock(&root->validators_lock);
   return found;
}

/* Computes what the update would write to each matched document (or to the upserted one)
 * and runs the validation hook on it. */
static bool
validate_update(flora_store_t *store, mongoc_collection_t *collection, const lease_t *lease,
                const char *coll, const bson_t *filter, const bson_t *update,
                const bson_t *opts, bool multi, flora_error_t *error)
{
   flora_update_t *compiled = NULL;
   flora_matcher_t *matcher = NULL;
   mongoc_cursor_t *cursor = NULL;
   bson_t find_opts, array_filters;
   bson_iter_t it;
   const bson_t *doc;
   bool any = false, upsert = false, ok = false;
   bson_error_t err;
   const bson_t *err_reply;
   int64_t now = flora__store_now_ms();

   bson_init(&find_opts);
   bson_init(&array_filters);
   if (!has_validator(store, coll)) {
      return true;
   }
   if (opts && bson_iter_init_find(&it, opts, "arrayFilters") && BSON_ITER_HOLDS_ARRAY(&it)) {
      const uint8_t *data;
      uint32_t len;

      bson_iter_array(&it, &len, &data);
      bson_destroy(&array_filters);
      bson_init_static(&array_filters, data, len);
   }
   if (opts && bson_iter_init_find(&it, opts, "upsert")) {
      upsert = bson_iter_as_bool(&it);
   }
   compiled = flora_update_new(update, bson_empty(&array_filters) ? NULL : &array_filters, error);
   matcher = compiled ? flora_matcher_new(filter, error) : NULL;
   if (!matcher) {
      goto cleanup;
   }
   bson_destroy(&find_opts);
   if (!op_opts(lease, NULL, NULL, &find_opts, error)) {
      goto cleanup;
   }
   if (!multi) {
      BSON_APPEND_INT64(&find_opts, "limit", 1);
      if (opts && bson_iter_init_find(&it, opts, "sort")) {
         bson_append_iter(&find_opts, "sort", 4, &it);
      }
   }
   cursor = mongoc_collection_find_with_opts(collection, filter, &find_opts, NULL);
   while (mongoc_cursor_next(cursor, &doc)) {
      bson_t out;
      bool modified = false;
      int pos = -1;

      any = true;
      flora_matcher_match(matcher, doc, &pos);
      if (!flora_update_apply(compiled, doc, false, pos, now, &out, &modified, error)) {
         bson_destroy(&out);
         goto cleanup;
      }
      if (modified && !flora__store_validate(store, coll, &out, error)) {
         bson_destroy(&out);
         goto cleanup;
      }
      bson_destroy(&out);
   }
   if (mongoc_cursor_error_document(cursor, &err, &err_reply)) {
      map_error(&err, err_reply, error);
      goto cleanup;
   }
   if (!any && upsert) {
      bson_t seed, out;
      bool modified = false;

      if (!flora_update_upsert_seed(filter, &seed, error)) {
         bson_destroy(&seed);
         goto cleanup;
      }
      if (!flora_update_apply(compiled, &seed, true, -1, now, &out, &modified, error) ||
          !flora__store_validate(store, coll, &out, error)) {
         bson_destroy(&seed);
         bson_destroy(&out);
         goto cleanup;
      }
      bson_destroy(&seed);
      bson_destroy(&out);
   }
   ok = true;
cleanup:
   mongoc_cursor_destroy(cursor);
   flora_matcher_destroy(matcher);
   flora_update_destroy(compiled);
   bson_destroy(&find_opts);
   bson_destroy(&array_filters);
   return ok;
}

/* ---- cursors -------------------------------------------------------------------------- */

typedef struct mongo_cursor {
   mongo_impl_t *root;
   mongoc_client_t *client; /* pushed back on destroy when pooled */
   bool pooled;
   mongoc_collection_t *collection;
   mongoc_cursor_t *cursor;
} mongo_cursor_t;

static bool
mcursor_next(flora_cursor_t *cursor, const bson_t **doc)
{
   mongo_cursor_t *impl = cursor->impl;
   bson_error_t err;
   const bson_t *reply = NULL;

   if (mongoc_cursor_next(impl->cursor, doc)) {
      return true;
   }
   if (mongoc_cursor_error_document(impl->cursor, &err, &reply)) {
      cursor->failed = true;
      map_error(&err, reply, &cursor->error);
   }
   return false;
}

static void
mcursor_destroy(flora_cursor_t *cursor)
{
   mongo_cursor_t *impl = cursor->impl;

   if (!impl) {
      return;
   }
   mongoc_cursor_destroy(impl->cursor);
   mongoc_collection_destroy(impl->collection);
   if (impl->pooled) {
      mongoc_client_pool_push(impl->root->pool, impl->client);
   }
   bson_free(impl);
   cursor->impl = NULL;
}

static const flora_cursor_ops_t mcursor_ops = {mcursor_next, mcursor_destroy};

/* Wraps a mongoc cursor; takes over the lease's client and the collection. */
static flora_cursor_t *
wrap_cursor(lease_t *lease, mongoc_collection_t *collection, mongoc_cursor_t *mcursor)
{
   flora_cursor_t *cursor = bson_malloc0(sizeof *cursor);
   mongo_cursor_t *impl = bson_malloc0(sizeof *impl);

   impl->root = lease->root;
   impl->client = lease->client;
   impl->pooled = lease->pooled;
   impl->collection = collection;
   impl->cursor = mcursor;
   lease->client = NULL;
   lease->pooled = false;
   cursor->ops = &mcursor_ops;
   cursor->impl = impl;
   return cursor;
}

/* ---- engine operations ---------------------------------------------------------------- */

static bool
m_ping(flora_store_t *store, flora_error_t *error)
{
   lease_t lease;
   bson_t cmd = BSON_INITIALIZER, reply;
   bson_error_t err;
   bool ok;

   lease_acquire(store, &lease);
   BSON_APPEND_INT32(&cmd, "ping", 1);
   ok = mongoc_client_command_simple(lease.client, "admin", &cmd, NULL, &reply, &err);
   if (!ok) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_CONNECTION,
                      "MongoDB does not answer: %s", err.message);
   }
   bson_destroy(&reply);
   bson_destroy(&cmd);
   lease_release(&lease);
   return ok;
}

static void
m_close(flora_store_t *store)
{
   mongo_impl_t *impl = store->impl;

   if (!impl) {
      return;
   }
   mongoc_client_pool_destroy(impl->pool);
   mongoc_uri_destroy(impl->uri);
   bson_free(impl->db);
   bson_free(impl);
   store->impl = NULL;
}

static bool
m_create_collection(flora_store_t *store, const char *coll, const bson_t *opts,
                    flora_error_t *error)
{
   lease_t lease;
   mongoc_database_t *db = NULL;
   mongoc_collection_t *created = NULL;
   bson_t full;
   bson_error_t err;
   bool ok = false;

   lease_acquire(store, &lease);
   if (!op_opts(&lease, opts, NULL, &full, error)) {
      goto cleanup;
   }
   db = mongoc_client_get_database(lease.client, lease.root->db);
   created = mongoc_database_create_collection(db, coll, &full, &err);
   if (!created) {
      map_error(&err, NULL, error);
      goto cleanup;
   }
   ok = true;
cleanup:
   mongoc_collection_destroy(created);
   mongoc_database_destroy(db);
   bson_destroy(&full);
   lease_release(&lease);
   return ok;
}

static bool
m_drop_collection(flora_store_t *store, const char *coll, flora_error_t *error)
{
   lease_t lease;
   mongoc_collection_t *collection = NULL;
   bson_t opts;
   bson_error_t err;
   bool ok = false;

   lease_acquire(store, &lease);
   if (!op_opts(&lease, NULL, NULL, &opts, error)) {
      goto cleanup;
   }
   collection = get_collection(&lease, coll);
   if (!mongoc_collection_drop_with_opts(collection, &opts, &err)) {
      /* Servers before 7.0 answer NamespaceNotFound; dropping nothing succeeds. */
      if (!(err.domain == MONGOC_ERROR_SERVER && err.code == FLORA_STORE_NAMESPACE_NOT_FOUND)) {
         map_error(&err, NULL, error);
         goto cleanup;
      }
   }
   ok = true;
cleanup:
   mongoc_collection_destroy(collection);
   bson_destroy(&opts);
   lease_release(&lease);
   return ok;
}

static int
compare_names(const void *a, const void *b)
{
   return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool
m_list_collections(flora_store_t *store, bson_t *out, flora_error_t *error)
{
   lease_t lease;
   mongoc_database_t *db = NULL;
   char **names = NULL;
   size_t n = 0;
   bson_t opts;
   bson_error_t err;
   bool ok = false;

   lease_acquire(store, &lease);
   if (!op_opts(&lease, NULL, NULL, &opts, error)) {
      goto cleanup;
   }
   db = mongoc_client_get_database(lease.client, lease.root->db);
   names = mongoc_database_get_collection_names_with_opts(db, &opts, &err);
   if (!names) {
      map_error(&err, NULL, error);
      goto cleanup;
   }
   while (names[n]) {
      n++;
   }
   qsort(names, n, sizeof *names, compare_names);
   for (size_t i = 0; i < n; i++) {
      char buf[16];
      const char *key;

      bson_uint32_to_string((uint32_t) i, &key, buf, sizeof buf);
      BSON_APPEND_UTF8(out, key, names[i]);
   }
   ok = true;
cleanup:
   bson_strfreev(names);
   mongoc_database_destroy(db);
   bson_destroy(&opts);
   lease_release(&lease);
   return ok;
}

/* createIndexes through the command (libmongoc 1.23 has no typed helper for it). */
static bool
m_create_indexes(flora_store_t *store, const char *coll, const bson_t *specs,
                 flora_error_t *error)
{
   lease_t lease;
   mongoc_database_t *db = NULL;
   bson_t cmd = BSON_INITIALIZER, opts, reply;
   bson_error_t err;
   bool ok = false;

   bson_init(&reply);
   lease_acquire(store, &lease);
   if (!op_opts(&lease, NULL, NULL, &opts, error)) {
      goto cleanup;
   }
   BSON_APPEND_UTF8(&cmd, "createIndexes", coll);
   BSON_APPEND_ARRAY(&cmd, "indexes", specs);
   db = mongoc_client_get_database(lease.client, lease.root->db);
   bson_destroy(&reply);
   if (!mongoc_database_write_command_with_opts(db, &cmd, &opts, &reply, &err)) {
      map_error(&err, &reply, error);
      goto cleanup;
   }
   ok = true;
cleanup:
   mongoc_database_destroy(db);
   bson_destroy(&cmd);
   bson_destroy(&opts);
   bson_destroy(&reply);
   lease_release(&lease);
   return ok;
}

static bool
m_list_indexes(flora_store_t *store, const char *coll, bson_t *out, flora_error_t *error)
{
   lease_t lease;
   mongoc_collection_t *collection = NULL;
   mongoc_cursor_t *cursor = NULL;
   const bson_t *doc;
   const bson_t *err_reply = NULL;
   bson_t opts;
   bson_error_t err;
   uint32_t i = 0;
   bool ok = false;

   lease_acquire(store, &lease);
   if (!op_opts(&lease, NULL, NULL, &opts, error)) {
      goto cleanup;
   }
   collection = get_collection(&lease, coll);
   cursor = mongoc_collection_find_indexes_with_opts(collection, &opts);
   while (mongoc_cursor_next(cursor, &doc)) {
      char buf[16];
      const char *key;

      bson_uint32_to_string(i++, &key, buf, sizeof buf);
      BSON_APPEND_DOCUMENT(out, key, doc);
   }
   if (mongoc_cursor_error_document(cursor, &err, &err_reply)) {
      map_error(&err, err_reply, error);
      goto cleanup;
   }
   ok = true;
cleanup:
   mongoc_cursor_destroy(cursor);
   mongoc_collection_destroy(collection);
   bson_destroy(&opts);
   lease_release(&lease);
   return ok;
}

static bool
m_drop_index(flora_store_t *store, const char *coll, const char *name, flora_error_t *error)
{
   lease_t lease;
   mongoc_collection_t *collection = NULL;
   bson_t opts;
   bson_error_t err;
   bool ok = false;

   lease_acquire(store, &lease);
   if (!op_opts(&lease, NULL, NULL, &opts, error)) {
      goto cleanup;
   }
   collection = get_collection(&lease, coll);
   if (!mongoc_collection_drop_index_with_opts(collection, name, &opts, &err)) {
      map_error(&err, NULL, error);
      goto cleanup;
   }
   ok = true;
cleanup:
   mongoc_collection_destroy(collection);
   bson_destroy(&opts);
   lease_release(&lease);
   return ok;
}

static bool
m_insert(flora_store_t *store, const char *coll, const bson_t *const *docs, size_t n,
         bool ordered, bson_t *reply, flora_error_t *error)
{
   lease_t lease;
   mongoc_collection_t *collection = NULL;
   bson_t opts, result, ids;
   bson_iter_t it;
   bson_error_t err;
   int64_t inserted;
   bool ok = false;

   bson_init(&result);
   lease_acquire(store, &lease);
   if (!op_opts(&lease, NULL, NULL, &opts, error)) {
      goto cleanup;
   }
   for (size_t i = 0; i < n; i++) {
      if (!flora__store_validate(store, coll, docs[i], error)) {
         BSON_APPEND_INT32(reply, "insertedCount", 0);
         goto cleanup;
      }
   }
   BSON_APPEND_BOOL(&opts, "ordered", ordered);
   collection = get_collection(&lease, coll);
   bson_destroy(&result);
   ok = mongoc_collection_insert_many(collection, (const bson_t **) docs, n, &opts, &result,
                                      &err);
   if (!ok) {
      map_error(&err, &result, error);
   }
   inserted = bson_iter_init_find(&it, &result, "insertedCount") ? bson_iter_as_int64(&it) : 0;
   BSON_APPEND_INT64(reply, "insertedCount", inserted);
   /* Which documents made it is known for ordered inserts (a prefix) and full success. */
   if (ok || ordered) {
      BSON_APPEND_ARRAY_BEGIN(reply, "insertedIds", &ids);
      for (size_t i = 0; i < n && (int64_t) i < inserted; i++) {
         char buf[16];
         const char *key;

         bson_uint32_to_string((uint32_t) i, &key, buf, sizeof buf);
         if (bson_iter_init_find(&it, docs[i], "_id")) {
            bson_append_iter(&ids, key, -1, &it);
         }
      }
      bson_append_array_end(reply, &ids);
   }
cleanup:
   mongoc_collection_destroy(collection);
   bson_destroy(&opts);
   bson_destroy(&result);
   lease_release(&lease);
   return ok;
}

/* Copies the counters of a mongoc update/delete reply into reply. */
static void
copy_counts(const bson_t *from, bson_t *reply, const char *const *keys)
{
   bson_iter_t it;

   for (const char *const *k = keys; *k; k++) {
      if (bson_iter_init_find(&it, from, *k)) {
         if (strcmp(*k, "upsertedId") == 0) {
            bson_append_iter(reply, *k, -1, &it);
         } else {
            BSON_APPEND_INT64(reply, *k, bson_iter_as_int64(&it));
         }
      } else if (strcmp(*k, "upsertedId") != 0) {
         BSON_APPEND_INT64(reply, *k, 0);
      }
   }
}

static bool
m_update(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *update,
         const bson_t *opts, bool multi, bson_t *reply, flora_error_t *error)
{
   static const char *const keys[] = {"matchedCount", "modifiedCount", "upsertedCount",
                                      "upsertedId", NULL};
   lease_t lease;
   mongoc_collection_t *collection = NULL;
   bson_t full, result;
   bson_iter_t it;
   bson_error_t err;
   bool replacement;
   bool ok = false;

   bson_init(&result);
   lease_acquire(store, &lease);
   if (!op_opts(&lease, opts, NULL, &full, error)) {
      goto cleanup;
   }
   /* updateOne's sort is a MongoDB 8.0 server feature that libmongoc 1.23 cannot send. */
   if (bson_has_field(opts, "sort")) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "unsupported: the sort option of updateOne/replaceOne on the mongodb "
                      "engine (use findOneAndUpdate)");
      goto cleanup;
   }
   collection = get_collection(&lease, coll);
   replacement = !(bson_iter_init(&it, update) && bson_iter_next(&it) &&
                   bson_iter_key(&it)[0] == '$');
   if (replacement) {
      if (!flora__store_validate(store, coll, update, error)) {
         goto cleanup;
      }
   } else if (!validate_update(store, collection, &lease, coll, filter, update, opts, multi,
                               error)) {
      goto cleanup;
   }
   bson_destroy(&result);
   if (replacement) {
      ok = mongoc_collection_replace_one(collection, filter, update, &full, &result, &err);
   } else if (multi) {
      ok = mongoc_collection_update_many(collection, filter, update, &full, &result, &err);
   } else {
      ok = mongoc_collection_update_one(collection, filter, update, &full, &result, &err);
   }
   if (!ok) {
      map_error(&err, &result, error);
      goto cleanup;
   }
   copy_counts(&result, reply, keys);
cleanup:
   mongoc_collection_destroy(collection);
   bson_destroy(&full);
   bson_destroy(&result);
   lease_release(&lease);
   return ok;
}

static bool
m_remove(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
         bool multi, bson_t *reply, flora_error_t *error)
{
   static const char *const keys[] = {"deletedCount", NULL};
   lease_t lease;
   mongoc_collection_t *collection = NULL;
   bson_t full, result;
   bson_error_t err;
   bool ok = false;

   bson_init(&result);
   lease_acquire(store, &lease);
   if (!op_opts(&lease, opts, NULL, &full, error)) {
      goto cleanup;
   }
   collection = get_collection(&lease, coll);
   bson_destroy(&result);
   ok = multi ? mongoc_collection_delete_many(collection, filter, &full, &result, &err)
              : mongoc_collection_delete_one(collection, filter, &full, &result, &err);
   if (!ok) {
      map_error(&err, &result, error);
      goto cleanup;
   }
   copy_counts(&result, reply, keys);
cleanup:
   mongoc_collection_destroy(collection);
   bson_destroy(&full);
   bson_destroy(&result);
   lease_release(&lease);
   return ok;
}

static bool
m_find_and_modify(flora_store_t *store, const char *coll, const bson_t *filter,
                  const bson_t *update, bool remove, const bson_t *opts, bson_t *out,
                  bool *found, flora_error_t *error)
{
   static const char *const handled[] = {"sort", "projection", "upsert", "returnDocument", NULL};
   lease_t lease;
   mongoc_collection_t *collection = NULL;
   mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new();
   mongoc_find_and_modify_flags_t flags = MONGOC_FIND_AND_MODIFY_NONE;
   bson_t extra, result, sub;
   bson_iter_t it;
   bson_error_t err;
   bool ok = false;

   bson_init(&result);
   *found = false;
   lease_acquire(store, &lease);
   if (!op_opts(&lease, opts, handled, &extra, error)) {
      goto cleanup;
   }
   collection = get_collection(&lease, coll);
   if (bson_iter_init_find(&it, opts, "sort") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      const uint8_t *data;
      uint32_t len;

      bson_iter_document(&it, &len, &data);
      bson_init_static(&sub, data, len);
      mongoc_find_and_modify_opts_set_sort(fam, &sub);
   }
   if (bson_iter_init_find(&it, opts, "projection") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      const uint8_t *data;
      uint32_t len;

      bson_iter_document(&it, &len, &data);
      bson_init_static(&sub, data, len);
      mongoc_find_and_modify_opts_set_fields(fam, &sub);
   }
   if (remove) {
      flags |= MONGOC_FIND_AND_MODIFY_REMOVE;
   } else {
      bool replacement = !(bson_iter_init(&it, update) && bson_iter_next(&it) &&
                           bson_iter_key(&it)[0] == '$');

      if (replacement ? !flora__store_validate(store, coll, update, error)
                      : !validate_update(store, collection, &lease, coll, filter, update, opts,
                                         false, error)) {
         goto cleanup;
      }
      mongoc_find_and_modify_opts_set_update(fam, update);
      if (bson_iter_init_find(&it, opts, "upsert") && bson_iter_as_bool(&it)) {
         flags |= MONGOC_FIND_AND_MODIFY_UPSERT;
      }
      if (bson_iter_init_find(&it, opts, "returnDocument") && BSON_ITER_HOLDS_UTF8(&it) &&
          strcmp(bson_iter_utf8(&it, NULL), "after") == 0) {
         flags |= MONGOC_FIND_AND_MODIFY_RETURN_NEW;
      }
   }
   mongoc_find_and_modify_opts_set_flags(fam, flags);
   if (!mongoc_find_and_modify_opts_append(fam, &extra)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "invalid findAndModify options");
      goto cleanup;
   }
   bson_destroy(&result);
   if (!mongoc_collection_find_and_modify_with_opts(collection, filter, fam, &result, &err)) {
      map_error(&err, &result, error);
      goto cleanup;
   }
   if (bson_iter_init_find(&it, &result, "value") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      const uint8_t *data;
      uint32_t len;

      bson_iter_document(&it, &len, &data);
      bson_init_static(&sub, data, len);
      bson_concat(out, &sub);
      *found = true;
   }
   ok = true;
cleanup:
   mongoc_find_and_modify_opts_destroy(fam);
   mongoc_collection_destroy(collection);
   bson_destroy(&extra);
   bson_destroy(&result);
   lease_release(&lease);
   return ok;
}

static bool
m_find(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
       flora_cursor_t **out, flora_error_t *error)
{
   lease_t lease;
   mongoc_collection_t *collection;
   mongoc_cursor_t *cursor;
   bson_t full;

   lease_acquire(store, &lease);
   if (!op_opts(&lease, opts, NULL, &full, error)) {
      bson_destroy(&full);
      lease_release(&lease);
      return false;
   }
   collection = get_collection(&lease, coll);
   cursor = mongoc_collection_find_with_opts(collection, filter, &full, NULL);
   bson_destroy(&full);
   *out = wrap_cursor(&lease, collection, cursor);
   lease_release(&lease);
   return true;
}

static bool
m_count(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
        int64_t *count, flora_error_t *error)
{
   lease_t lease;
   mongoc_collection_t *collection = NULL;
   bson_t full, reply;
   bson_error_t err;
   bool ok = false;

   bson_init(&reply);
   lease_acquire(store, &lease);
   if (!op_opts(&lease, opts, NULL, &full, error)) {
      goto cleanup;
   }
   collection = get_collection(&lease, coll);
   bson_destroy(&reply);
   *count = mongoc_collection_count_documents(collection, filter, &full, NULL, &reply, &err);
   if (*count < 0) {
      *count = 0;
      map_error(&err, &reply, error);
      goto cleanup;
   }
   ok = true;
cleanup:
   mongoc_collection_destroy(collection);
   bson_destroy(&full);
   bson_destroy(&reply);
   lease_release(&lease);
   return ok;
}

static int
compare_values(const void *a, const void *b)
{
   return flora_value_compare(a, b);
}

/* The distinct command; values sorted in BSON order (the server gives no order). */
static bool
m_distinct(flora_store_t *store, const char *coll, const char *field, const bson_t *filter,
           bson_t *out, flora_error_t *error)
{
   lease_t lease;
   mongoc_collection_t *collection = NULL;
   bson_t cmd = BSON_INITIALIZER, opts, reply;
   bson_iter_t it, values;
   bson_error_t err;
   bson_value_t *list = NULL;
   size_t n = 0, cap = 0;
   bool ok = false;

   bson_init(&reply);
   lease_acquire(store, &lease);
   if (!op_opts(&lease, NULL, NULL, &opts, error)) {
      goto cleanup;
   }
   BSON_APPEND_UTF8(&cmd, "distinct", coll);
   BSON_APPEND_UTF8(&cmd, "key", field);
   BSON_APPEND_DOCUMENT(&cmd, "query", filter);
   collection = get_collection(&lease, coll);
   bson_destroy(&reply);
   if (!mongoc_collection_read_command_with_opts(collection, &cmd, NULL, &opts, &reply, &err)) {
      map_error(&err, &reply, error);
      goto cleanup;
   }
   if (bson_iter_init_find(&it, &reply, "values") && bson_iter_recurse(&it, &values)) {
      while (bson_iter_next(&values)) {
         if (n == cap) {
            cap = cap ? cap * 2 : 16;
            list = bson_realloc(list, cap * sizeof *list);
         }
         list[n++] = *bson_iter_value(&values);
      }
   }
   qsort(list, n, sizeof *list, compare_values);
   for (size_t i = 0; i < n; i++) {
      char buf[16];
      const char *key;

      bson_uint32_to_string((uint32_t) i, &key, buf, sizeof buf);
      bson_append_value(out, key, -1, &list[i]);
   }
   ok = true;
cleanup:
   bson_free(list);
   mongoc_collection_destroy(collection);
   bson_destroy(&cmd);
   bson_destroy(&opts);
   bson_destroy(&reply);
   lease_release(&lease);
   return ok;
}

static bool
m_aggregate(flora_store_t *store, const char *coll, const bson_t *pipeline, const bson_t *opts,
            flora_cursor_t **out, flora_error_t *error)
{
   lease_t lease;
   mongoc_collection_t *collection;
   mongoc_cursor_t *cursor;
   bson_t full;

   lease_acquire(store, &lease);
   if (!op_opts(&lease, opts, NULL, &full, error)) {
      bson_destroy(&full);
      lease_release(&lease);
      return false;
   }
   collection = get_collection(&lease, coll);
   cursor = mongoc_collection_aggregate(collection, MONGOC_QUERY_NONE, pipeline, &full, NULL);
   bson_destroy(&full);
   *out = wrap_cursor(&lease, collection, cursor);
   lease_release(&lease);
   return true;
}

static bool
m_explain(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
          bson_t *out, flora_error_t *error)
{
   lease_t lease;
   mongoc_database_t *db = NULL;
   bson_t cmd = BSON_INITIALIZER, find, session_opts, reply;
   bson_iter_t it;
   bson_error_t err;
   bool ok = false;

   bson_init(&reply);
   lease_acquire(store, &lease);
   if (!op_opts(&lease, NULL, NULL, &session_opts, error)) {
      goto cleanup;
   }
   BSON_APPEND_DOCUMENT_BEGIN(&cmd, "explain", &find);
   BSON_APPEND_UTF8(&find, "find", coll);
   BSON_APPEND_DOCUMENT(&find, "filter", filter);
   if (bson_iter_init(&it, opts)) {
      while (bson_iter_next(&it)) {
         bson_append_iter(&find, bson_iter_key(&it), -1, &it);
      }
   }
   bson_append_document_end(&cmd, &find);
   BSON_APPEND_UTF8(&cmd, "verbosity", "queryPlanner");
   db = mongoc_client_get_database(lease.client, lease.root->db);
   bson_destroy(&reply);
   if (!mongoc_database_read_command_with_opts(db, &cmd, NULL, &session_opts, &reply, &err)) {
      map_error(&err, &reply, error);
      goto cleanup;
   }
   if (bson_iter_init(&it, &reply)) {
      while (bson_iter_next(&it)) {
         const char *key = bson_iter_key(&it);

         if (strcmp(key, "ok") != 0 && key[0] != '$' && strcmp(key, "operationTime") != 0) {
            bson_append_iter(out, key, -1, &it);
         }
      }
   }
   ok = true;
cleanup:
   mongoc_database_destroy(db);
   bson_destroy(&cmd);
   bson_destroy(&session_opts);
   bson_destroy(&reply);
   lease_release(&lease);
   return ok;
}

/* ---- transactions ------------------------------------------------------------------------ */

static int64_t
mono_ms(void)
{
   return bson_get_monotonic_time() / 1000;
}

static bool
m_transaction(flora_store_t *store, flora_txn_fn fn, void *ctx, flora_error_t *error)
{
   mongo_impl_t *root = store->impl;
   mongo_txn_t txn = {root, NULL, NULL};
   flora_store_t handle;
   bson_error_t err;
   bson_t reply;
   int64_t deadline = mono_ms() + store->options.transaction_timeout_ms;
   bool ok = false;

   memset(&handle, 0, sizeof handle);
   txn.client = mongoc_client_pool_pop(root->pool);
   txn.session = mongoc_client_start_session(txn.client, NULL, &err);
   if (!txn.session) {
      map_error(&err, NULL, error);
      goto cleanup;
   }
   if (!mongoc_client_session_start_transaction(txn.session, NULL, &err)) {
      map_error(&err, NULL, error);
      goto cleanup;
   }
   handle.engine = store->engine;
   handle.impl = &txn;
   handle.parent = store;
   handle.in_txn = true;
   handle.options = store->options;
   if (!fn(&handle, ctx, error)) {
      bson_error_t abort_err;

      mongoc_client_session_abort_transaction(txn.session, &abort_err);
      goto cleanup;
   }
   /* Commit; UnknownTransactionCommitResult means the outcome is unknown and the commit
    * alone is retried (transactions spec), until the transaction's deadline. */
   for (;;) {
      if (mongoc_client_session_commit_transaction(txn.session, &reply, &err)) {
         bson_destroy(&reply);
         ok = true;
         break;
      }
      if (mongoc_error_has_label(&reply, "UnknownTransactionCommitResult") &&
          mono_ms() < deadline) {
         bson_destroy(&reply);
         continue;
      }
      map_error(&err, &reply, error);
      bson_destroy(&reply);
      break;
   }
cleanup:
   if (txn.session) {
      mongoc_client_session_destroy(txn.session);
   }
   mongoc_client_pool_push(root->pool, txn.client);
   return ok;
}

/* ---- commands ------------------------------------------------------------------------------ */

/* Replaces a cursor reply whose id is not 0 by one that holds every document in
 * firstBatch, as flora_store_command promises. Takes *reply's contents. */
static bool
drain_cursor_reply(const lease_t *lease, const bson_t *opts, bson_t *reply, flora_error_t *error)
{
   bson_iter_t it, cur;
   char *ns = NULL;
   bson_t *stolen, batch, cursor_doc;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   const bson_t *err_reply = NULL;
   bson_error_t err;
   uint32_t i = 0;
   bool ok = false;

   if (!bson_iter_init_find(&it, reply, "cursor") || !bson_iter_recurse(&it, &cur)) {
      return true;
   }
   if (!bson_iter_find(&cur, "id") || bson_iter_as_int64(&cur) == 0) {
      return true;
   }
   if (bson_iter_init_find(&it, reply, "cursor") && bson_iter_recurse(&it, &cur) &&
       bson_iter_find(&cur, "ns") && BSON_ITER_HOLDS_UTF8(&cur)) {
      ns = bson_strdup(bson_iter_utf8(&cur, NULL));
   }
   stolen = bson_copy(reply);
   bson_reinit(reply);
   cursor = mongoc_cursor_new_from_command_reply_with_opts(lease->client, stolen, opts);
   BSON_APPEND_DOCUMENT_BEGIN(reply, "cursor", &cursor_doc);
   BSON_APPEND_ARRAY_BEGIN(&cursor_doc, "firstBatch", &batch);
   while (mongoc_cursor_next(cursor, &doc)) {
      char buf[16];
      const char *key;

      bson_uint32_to_string(i++, &key, buf, sizeof buf);
      BSON_APPEND_DOCUMENT(&batch, key, doc);
   }
   bson_append_array_end(&cursor_doc, &batch);
   BSON_APPEND_INT64(&cursor_doc, "id", 0);
   BSON_APPEND_UTF8(&cursor_doc, "ns", ns ? ns : "");
   bson_append_document_end(reply, &cursor_doc);
   BSON_APPEND_DOUBLE(reply, "ok", 1.0);
   if (mongoc_cursor_error_document(cursor, &err, &err_reply)) {
      map_error(&err, err_reply, error);
      bson_reinit(reply);
      if (err_reply && !bson_empty(err_reply)) {
         bson_concat(reply, err_reply);
      }
      goto cleanup;
   }
   ok = true;
cleanup:
   mongoc_cursor_destroy(cursor);
   bson_free(ns);
   return ok;
}

static bool
m_command(flora_store_t *store, const bson_t *command, bson_t *reply, flora_error_t *error)
{
   lease_t lease;
   bson_t cmd = BSON_INITIALIZER, opts;
   bson_iter_t it;
   bson_error_t err;
   const char *db;
   flora_error_t mapped;
   bool ok = false;

   flora_error_clear(&mapped);
   lease_acquire(store, &lease);
   db = lease.root->db;
   if (bson_iter_init(&it, command)) {
      while (bson_iter_next(&it)) {
         if (strcmp(bson_iter_key(&it), "$db") == 0) {
            if (BSON_ITER_HOLDS_UTF8(&it)) {
               db = bson_iter_utf8(&it, NULL);
            }
         } else {
            bson_append_iter(&cmd, bson_iter_key(&it), -1, &it);
         }
      }
   }
   if (!op_opts(&lease, NULL, NULL, &opts, &mapped)) {
      goto failed;
   }
   bson_destroy(reply);
   if (!mongoc_client_command_with_opts(lease.client, db, &cmd, NULL, &opts, reply, &err)) {
      map_error(&err, reply, &mapped);
      goto failed;
   }
   if (!drain_cursor_reply(&lease, &opts, reply, &mapped)) {
      goto failed;
   }
   ok = true;
   goto cleanup;
failed:
   if (bson_empty(reply) || !bson_has_field(reply, "ok")) {
      bson_reinit(reply);
      BSON_APPEND_DOUBLE(reply, "ok", 0.0);
      BSON_APPEND_UTF8(reply, "errmsg", mapped.message);
      BSON_APPEND_INT32(reply, "code", (int32_t) mapped.code);
      BSON_APPEND_UTF8(reply, "codeName", flora_store_code_name(mapped.code));
   }
   if (error) {
      *error = mapped;
   }
cleanup:
   bson_destroy(&cmd);
   bson_destroy(&opts);
   lease_release(&lease);
   return ok;
}

static const flora_store_engine_t mongo_engine = {
   .name = "mongodb",
   .ping = m_ping,
   .close = m_close,
   .create_collection = m_create_collection,
   .drop_collection = m_drop_collection,
   .list_collections = m_list_collections,
   .create_indexes = m_create_indexes,
   .list_indexes = m_list_indexes,
   .drop_index = m_drop_index,
   .insert = m_insert,
   .update = m_update,
   .remove = m_remove,
   .find_and_modify = m_find_and_modify,
   .find = m_find,
   .count = m_count,
   .distinct = m_distinct,
   .aggregate = m_aggregate,
   .explain = m_explain,
   .transaction = m_transaction,
   .command = m_command,
};

bool
flora__store_mongo_open(flora_store_t *store, const char *uri, flora_error_t *error)
{
   mongo_impl_t *impl = NULL;
   bson_error_t err;
   const char *db;

   pthread_once(&mongoc_once, mongoc_init_once);
   impl = bson_malloc0(sizeof *impl);
   impl->uri = mongoc_uri_new_with_error(uri, &err);
   if (!impl->uri) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "bad MongoDB URI %s: %s",
                      store->uri_masked, err.message);
      goto failed;
   }
   if (!mongoc_uri_has_option(impl->uri, MONGOC_URI_RETRYWRITES)) {
      mongoc_uri_set_option_as_bool(impl->uri, MONGOC_URI_RETRYWRITES, true);
   }
   db = mongoc_uri_get_database(impl->uri);
   impl->db = bson_strdup(db && db[0] ? db : DEFAULT_DB);
   impl->pool = mongoc_client_pool_new_with_error(impl->uri, &err);
   if (!impl->pool) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "cannot create a MongoDB client pool for %s: %s", store->uri_masked,
                      err.message);
      goto failed;
   }
   mongoc_client_pool_set_error_api(impl->pool, MONGOC_ERROR_API_VERSION_2);
   mongoc_client_pool_max_size(impl->pool, (uint32_t) store->options.pool_size);
   mongoc_client_pool_set_appname(impl->pool, "flora");
   store->engine = &mongo_engine;
   store->impl = impl;
   /* store.h: opening fails with code 6 when the engine cannot be reached. */
   if (!m_ping(store, error)) {
      store->impl = NULL;
      store->engine = NULL;
      goto failed;
   }
   return true;
failed:
   if (impl->pool) {
      mongoc_client_pool_destroy(impl->pool);
   }
   mongoc_uri_destroy(impl->uri);
   bson_free(impl->db);
   bson_free(impl);
   return false;
}
