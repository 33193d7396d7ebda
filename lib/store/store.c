/* The store's front: every public function of include/flora/store.h as a thin layer over the
 * engine vtable (lib/store/store_private.h). The front checks arguments, normalises them
 * (filters and options are never NULL when they reach an engine, a missing _id is added as
 * the first field, index specs get their default names), runs the storability checks, keeps
 * the validator registry and runs the transaction retry loop. The engines do the work.
 *
 * Engine contract for outputs: the front always passes a non-NULL `bson_t *out`/`reply`
 * that it has already initialised as an empty document; the engine appends to it (or
 * re-initialises it) and never destroys it. `opts` and `filter` are never NULL. */
#include "store/store_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* MongoDB codes without a name in include/flora/error.h (error_codes.yml). */
enum {
   CODE_INVALID_NAMESPACE = 73,
   CODE_CANNOT_CREATE_INDEX = 67,
   CODE_OPERATION_FAILED = 96,
};

/* ---- helpers ---------------------------------------------------------------------- */

static flora_store_t *
root_of(flora_store_t *store)
{
   return store->parent ? store->parent : store;
}

static const flora_store_t *
root_of_const(const flora_store_t *store)
{
   return store->parent ? store->parent : store;
}

static int64_t
monotonic_ms(void)
{
   struct timespec ts;

   clock_gettime(CLOCK_MONOTONIC, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
flora__store_now_ms(void)
{
   struct timespec ts;

   clock_gettime(CLOCK_REALTIME, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Collection names: MongoDB's rules for a collection in a namespace (manual "Naming
 * Restrictions"): not empty, no '$', no NUL, not in the system. prefix. */
static bool
check_collection(const char *coll, flora_error_t *error)
{
   FLORA_ASSERT_ARG(coll);
   if (coll[0] == '\0') {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_INVALID_NAMESPACE,
                      "Invalid namespace specified: the collection name is empty");
      return false;
   }
   if (strchr(coll, '$')) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_INVALID_NAMESPACE,
                      "Invalid collection name: '%s' contains '$'", coll);
      return false;
   }
   if (strncmp(coll, "system.", 7) == 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_INVALID_NAMESPACE,
                      "Invalid collection name: '%s' is in the reserved system. namespace", coll);
      return false;
   }
   return true;
}

/* The empty document engines receive in place of a NULL filter or opts. */
static const bson_t *
or_empty(const bson_t *doc, bson_t *empty)
{
   if (doc) {
      return doc;
   }
   bson_init(empty);
   return empty;
}

/* An update document must start with an operator (drivers' updateOne/updateMany rule). */
static bool
check_update_operators(const bson_t *update, flora_error_t *error)
{
   bson_iter_t it;

   if (!bson_iter_init(&it, update) || !bson_iter_next(&it)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "Update document requires atomic operators: it is empty");
      return false;
   }
   if (bson_iter_key(&it)[0] != '$') {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "Update document requires atomic operators: '%s' is not one",
                      bson_iter_key(&it));
      return false;
   }
   return true;
}

/* A replacement document has no operators. */
static bool
check_replacement(const bson_t *replacement, flora_error_t *error)
{
   bson_iter_t it;

   if (bson_iter_init(&it, replacement)) {
      while (bson_iter_next(&it)) {
         if (bson_iter_key(&it)[0] == '$') {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_DOLLAR_PREFIXED,
                            "Replacement document must not contain update operators: "
                            "found '%s'",
                            bson_iter_key(&it));
            return false;
         }
      }
   }
   return flora_document_check_storable(replacement, error);
}

/* Writes into *out (initialised here) doc with _id first: the existing _id moved to the
 * front, or a new ObjectId (MongoDB stores _id as the first field). Checks the _id type
 * (an array is refused with code 53, as mongod does) and then the whole document. */
static bool
prepare_insert(const bson_t *doc, bson_t *out, flora_error_t *error)
{
   bson_iter_t it;
   bson_oid_t oid;
   bool has_id = false;

   bson_init(out);
   if (bson_iter_init_find(&it, doc, "_id")) {
      has_id = true;
      if (BSON_ITER_HOLDS_ARRAY(&it)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INVALID_ID_FIELD,
                         "The '_id' value cannot be of type array");
         return false;
      }
      if (BSON_ITER_HOLDS_REGEX(&it)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INVALID_ID_FIELD,
                         "The '_id' value cannot be of type regex");
         return false;
      }
      bson_append_iter(out, "_id", 3, &it);
   } else {
      bson_oid_init(&oid, NULL);
      BSON_APPEND_OID(out, "_id", &oid);
   }
   if (bson_iter_init(&it, doc)) {
      while (bson_iter_next(&it)) {
         if (has_id && strcmp(bson_iter_key(&it), "_id") == 0) {
            continue;
         }
         bson_append_iter(out, bson_iter_key(&it), (int) bson_iter_key_len(&it), &it);
      }
   }
   return flora_document_check_storable(out, error);
}

static char *
mask_uri(const char *uri)
{
   const char *scheme_end = strstr(uri, "://");
   const char *auth_start, *auth_end, *at = NULL, *colon = NULL;
   size_t len = strlen(uri);
   char *out;

   if (!scheme_end) {
      return bson_strdup(uri);
   }
   auth_start = scheme_end + 3;
   auth_end = auth_start + strcspn(auth_start, "/?");
   for (const char *p = auth_start; p < auth_end; p++) {
      if (*p == '@') {
         at = p;
      }
   }
   if (!at) {
      return bson_strdup(uri);
   }
   colon = memchr(auth_start, ':', (size_t) (at - auth_start));
   if (!colon) {
      return bson_strdup(uri);
   }
   out = bson_malloc(len + 4);
   memcpy(out, uri, (size_t) (colon + 1 - uri));
   memcpy(out + (colon + 1 - uri), "***", 3);
   memcpy(out + (colon + 1 - uri) + 3, at, len - (size_t) (at - uri) + 1);
   return out;
}

/* ---- open / close ----------------------------------------------------------------- */

bool
flora_store_open(flora_store_t **out, const char *uri, const flora_store_options_t *options,
                 flora_error_t *error)
{
   static const flora_store_options_t defaults = FLORA_STORE_OPTIONS_INIT;
   flora_store_t *store = NULL;
   bool ok = false;

   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(uri);
   FLORA_ASSERT_ARG(!options || options->version == FLORA_STORE_OPTIONS_VERSION);
   *out = NULL;

   store = bson_malloc0(sizeof *store);
   store->options = options ? *options : defaults;
   if (store->options.ttl_sweep_interval_s < 0) {
      store->options.ttl_sweep_interval_s = defaults.ttl_sweep_interval_s;
   }
   if (store->options.busy_timeout_ms < 0) {
      store->options.busy_timeout_ms = defaults.busy_timeout_ms;
   }
   if (store->options.pool_size <= 0) {
      store->options.pool_size = defaults.pool_size;
   }
   if (store->options.transaction_timeout_ms <= 0) {
      store->options.transaction_timeout_ms = defaults.transaction_timeout_ms;
   }
   if (pthread_rwlock_init(&store->validators_lock, NULL) != 0) {
      bson_free(store);
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL,
                      "cannot initialise the validator lock");
      return false;
   }
   store->uri_masked = mask_uri(uri);

   if (strncmp(uri, "sqlite:", 7) == 0) {
      ok = flora__store_sqlite_open(store, uri, error);
   } else if (strncmp(uri, "mongodb://", 10) == 0 || strncmp(uri, "mongodb+srv://", 14) == 0) {
      ok = flora__store_mongo_open(store, uri, error);
   } else {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "unknown store URI scheme in '%s' (expected sqlite:PATH, mongodb:// or "
                      "mongodb+srv://)",
                      store->uri_masked);
   }
   if (!ok) {
      pthread_rwlock_destroy(&store->validators_lock);
      bson_free(store->uri_masked);
      bson_free(store);
      return false;
   }
   FLORA_ASSERT_ARG(store->engine);
   *out = store;
   return true;
}

void
flora_store_close(flora_store_t *store)
{
   flora_validator_entry_t *entry, *next;

   if (!store) {
      return;
   }
   FLORA_ASSERT_ARG(!store->in_txn);
   if (store->engine && store->engine->close) {
      store->engine->close(store);
   }
   for (entry = store->validators; entry; entry = next) {
      next = entry->next;
      bson_free(entry->collection);
      bson_free(entry);
   }
   pthread_rwlock_destroy(&store->validators_lock);
   bson_free(store->uri_masked);
   bson_free(store);
}

const char *
flora_store_engine(const flora_store_t *store)
{
   FLORA_ASSERT_ARG(store);
   return store->engine->name;
}

const char *
flora_store_uri_masked(const flora_store_t *store)
{
   FLORA_ASSERT_ARG(store);
   return root_of_const(store)->uri_masked;
}

bool
flora_store_ping(flora_store_t *store, flora_error_t *error)
{
   FLORA_ASSERT_ARG(store);
   return store->engine->ping(store, error);
}

bool
flora_store_collection_versions(flora_store_t *store, const char *const *collections, size_t n,
                                int64_t *versions, flora_error_t *error)
{
   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(collections || n == 0);
   FLORA_ASSERT_ARG(versions || n == 0);
   if (!store->engine->collection_versions) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_COMMAND_NOT_SUPPORTED,
                      "the %s engine cannot tell collection versions", store->engine->name);
      return false;
   }
   return store->engine->collection_versions(store, collections, n, versions, error);
}

bool
flora_store_collection_version(flora_store_t *store, const char *collection, int64_t *version,
                               flora_error_t *error)
{
   FLORA_ASSERT_ARG(collection);
   return flora_store_collection_versions(store, &collection, 1, version, error);
}

/* ---- validators ------------------------------------------------------------------- */

void
flora_store_set_validator(flora_store_t *store, const char *collection, flora_validate_fn fn,
                          void *ctx)
{
   flora_store_t *root;
   flora_validator_entry_t **link, *entry;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(collection);
   root = root_of(store);
   pthread_rwlock_wrlock(&root->validators_lock);
   for (link = &root->validators; *link; link = &(*link)->next) {
      if (strcmp((*link)->collection, collection) == 0) {
         break;
      }
   }
   entry = *link;
   if (!fn) {
      if (entry) {
         *link = entry->next;
         bson_free(entry->collection);
         bson_free(entry);
      }
   } else if (entry) {
      entry->fn = fn;
      entry->ctx = ctx;
   } else {
      entry = bson_malloc0(sizeof *entry);
      entry->collection = bson_strdup(collection);
      entry->fn = fn;
      entry->ctx = ctx;
      *link = entry;
   }
   pthread_rwlock_unlock(&root->validators_lock);
}

/* The hook runs under the read lock, so once set_validator returns no call still uses the
 * old fn/ctx. A hook may call the store (read locks nest: glibc rwlocks prefer readers). */
bool
flora__store_validate(flora_store_t *store, const char *coll, const bson_t *doc,
                      flora_error_t *error)
{
   flora_store_t *root;
   flora_validator_entry_t *entry;
   flora_error_t inner;
   bool ok = true;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(coll);
   FLORA_ASSERT_ARG(doc);
   root = root_of(store);
   pthread_rwlock_rdlock(&root->validators_lock);
   for (entry = root->validators; entry; entry = entry->next) {
      if (strcmp(entry->collection, coll) == 0) {
         break;
      }
   }
   if (entry) {
      flora_error_clear(&inner);
      ok = entry->fn(entry->ctx, coll, doc, &inner);
      if (!ok) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_DOCUMENT_VALIDATION,
                         "Document failed validation: %s",
                         inner.message[0] ? inner.message : "refused by the validator");
      }
   }
   pthread_rwlock_unlock(&root->validators_lock);
   return ok;
}

/* ---- collections and indexes ------------------------------------------------------ */

bool
flora_store_create_collection(flora_store_t *store, const char *collection, const bson_t *opts,
                              flora_error_t *error)
{
   bson_t empty;

   FLORA_ASSERT_ARG(store);
   if (!check_collection(collection, error)) {
      return false;
   }
   return store->engine->create_collection(store, collection, or_empty(opts, &empty), error);
}

bool
flora_store_drop_collection(flora_store_t *store, const char *collection, flora_error_t *error)
{
   FLORA_ASSERT_ARG(store);
   if (!check_collection(collection, error)) {
      return false;
   }
   return store->engine->drop_collection(store, collection, error);
}

bool
flora_store_list_collections(flora_store_t *store, bson_t *out, flora_error_t *error)
{
   bson_t tmp;
   bson_t *dst = out ? out : &tmp;
   bool ok;

   FLORA_ASSERT_ARG(store);
   bson_init(dst);
   ok = store->engine->list_collections(store, dst, error);
   if (!out) {
      bson_destroy(&tmp);
   }
   return ok;
}

/* The default index name drivers give: "<field>_<value>" joined by "_" (e.g. "a_1_b_-1",
 * "name_text"), as in the MongoDB Index Management spec's "Index Name Generation". */
static bool
default_index_name(const bson_t *key, char *buf, size_t len, flora_error_t *error)
{
   bson_iter_t it;
   size_t used = 0;
   int n;

   buf[0] = '\0';
   if (!bson_iter_init(&it, key)) {
      return false;
   }
   while (bson_iter_next(&it)) {
      char value[64];

      if (BSON_ITER_HOLDS_UTF8(&it)) {
         snprintf(value, sizeof value, "%s", bson_iter_utf8(&it, NULL));
      } else if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
         snprintf(value, sizeof value, "%" PRId64, bson_iter_as_int64(&it));
      } else if (BSON_ITER_HOLDS_DOUBLE(&it)) {
         double d = bson_iter_double(&it);

         if (d == (double) (int64_t) d) {
            snprintf(value, sizeof value, "%" PRId64, (int64_t) d);
         } else {
            snprintf(value, sizeof value, "%g", d);
         }
      } else {
         flora_error_set(error, FLORA_DOMAIN_STORE, CODE_CANNOT_CREATE_INDEX,
                         "Values in the index key pattern must be numbers or strings: '%s'",
                         bson_iter_key(&it));
         return false;
      }
      n = snprintf(buf + used, len - used, "%s%s_%s", used ? "_" : "", bson_iter_key(&it), value);
      if (n < 0 || (size_t) n >= len - used) {
         flora_error_set(error, FLORA_DOMAIN_STORE, CODE_CANNOT_CREATE_INDEX,
                         "the generated index name is too long; give the index a name");
         return false;
      }
      used += (size_t) n;
   }
   return true;
}

/* Checks the specs' shape and adds default names: *out (initialised here) is the array of
 * normalised specs. */
static bool
normalise_index_specs(const bson_t *specs, bson_t *out, flora_error_t *error)
{
   bson_iter_t it, field;
   uint32_t i = 0;

   bson_init(out);
   if (!bson_iter_init(&it, specs)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "index specifications are not a valid document");
      return false;
   }
   while (bson_iter_next(&it)) {
      const uint8_t *data;
      uint32_t len;
      bson_t spec, key;
      char name[512];
      const char *idx_key;
      char idx_buf[16];
      bson_t normal;

      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_TYPE_MISMATCH,
                         "each index specification must be a document (element %u)", i);
         return false;
      }
      bson_iter_document(&it, &len, &data);
      if (!bson_init_static(&spec, data, len)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "index specification %u is not valid BSON", i);
         return false;
      }
      if (!bson_iter_init_find(&field, &spec, "key") || !BSON_ITER_HOLDS_DOCUMENT(&field)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "The 'key' field is a required property of an index specification");
         return false;
      }
      bson_iter_document(&field, &len, &data);
      if (!bson_init_static(&key, data, len) || bson_count_keys(&key) == 0) {
         flora_error_set(error, FLORA_DOMAIN_STORE, CODE_CANNOT_CREATE_INDEX,
                         "Index keys cannot be an empty field");
         return false;
      }
      bson_uint32_to_string(i, &idx_key, idx_buf, sizeof idx_buf);
      if (bson_iter_init_find(&field, &spec, "name")) {
         if (!BSON_ITER_HOLDS_UTF8(&field) || bson_iter_utf8(&field, NULL)[0] == '\0') {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_TYPE_MISMATCH,
                            "The 'name' field of an index specification must be a non-empty "
                            "string");
            return false;
         }
         BSON_APPEND_DOCUMENT(out, idx_key, &spec);
      } else {
         if (!default_index_name(&key, name, sizeof name, error)) {
            return false;
         }
         bson_init(&normal);
         bson_concat(&normal, &spec);
         BSON_APPEND_UTF8(&normal, "name", name);
         BSON_APPEND_DOCUMENT(out, idx_key, &normal);
         bson_destroy(&normal);
      }
      i++;
   }
   if (i == 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "Must specify at least one index to create");
      return false;
   }
   return true;
}

bool
flora_store_create_indexes(flora_store_t *store, const char *collection, const bson_t *specs,
                           flora_error_t *error)
{
   bson_t normal;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(specs);
   if (!check_collection(collection, error)) {
      return false;
   }
   if (normalise_index_specs(specs, &normal, error)) {
      ok = store->engine->create_indexes(store, collection, &normal, error);
   }
   bson_destroy(&normal);
   return ok;
}

bool
flora_store_list_indexes(flora_store_t *store, const char *collection, bson_t *out,
                         flora_error_t *error)
{
   bson_t tmp;
   bson_t *dst = out ? out : &tmp;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   bson_init(dst);
   if (check_collection(collection, error)) {
      ok = store->engine->list_indexes(store, collection, dst, error);
   }
   if (!out) {
      bson_destroy(&tmp);
   }
   return ok;
}

bool
flora_store_drop_index(flora_store_t *store, const char *collection, const char *name,
                       flora_error_t *error)
{
   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(name);
   if (!check_collection(collection, error)) {
      return false;
   }
   if (strcmp(name, "_id_") == 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INVALID_OPTIONS,
                      "cannot drop _id index");
      return false;
   }
   return store->engine->drop_index(store, collection, name, error);
}

/* ---- writes ----------------------------------------------------------------------- */

bool
flora_store_insert_one(flora_store_t *store, const char *collection, const bson_t *doc,
                       const bson_t *opts, bson_t *reply, flora_error_t *error)
{
   bson_t prepared, engine_reply;
   const bson_t *docs[1];
   bson_iter_t id;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(doc);
   (void) opts;
   bson_init(&engine_reply);
   if (reply) {
      bson_init(reply);
   }
   if (!check_collection(collection, error)) {
      bson_init(&prepared);
      goto cleanup;
   }
   if (!prepare_insert(doc, &prepared, error)) {
      goto cleanup;
   }
   docs[0] = &prepared;
   if (!store->engine->insert(store, collection, docs, 1, true, &engine_reply, error)) {
      goto cleanup;
   }
   if (reply && bson_iter_init_find(&id, &prepared, "_id")) {
      bson_append_iter(reply, "insertedId", -1, &id);
   }
   ok = true;
cleanup:
   bson_destroy(&engine_reply);
   bson_destroy(&prepared);
   return ok;
}

/* prepare_insert into a heap document (bson_t arrays from malloc are misaligned: bson_t
 * asks for 128-byte alignment). NULL with *error on failure. */
static bson_t *
prepare_insert_new(const bson_t *doc, flora_error_t *error)
{
   bson_t tmp;
   bson_t *copy = NULL;

   if (prepare_insert(doc, &tmp, error)) {
      copy = bson_copy(&tmp);
   }
   bson_destroy(&tmp);
   return copy;
}

bool
flora_store_insert_many(flora_store_t *store, const char *collection, const bson_t *const *docs,
                        size_t n_docs, const bson_t *opts, bson_t *reply, flora_error_t *error)
{
   bson_t **prepared = NULL;
   bson_t tmp;
   bson_t *dst = reply ? reply : &tmp;
   flora_error_t first_error;
   bool have_error = false;
   bool ordered = true;
   bson_iter_t it;
   size_t n_valid = 0, i;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(docs || n_docs == 0);
   bson_init(dst);
   flora_error_clear(&first_error);
   if (!check_collection(collection, error)) {
      goto cleanup;
   }
   if (opts && bson_iter_init_find(&it, opts, "ordered")) {
      ordered = bson_iter_as_bool(&it);
   }
   if (n_docs == 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INVALID_OPTIONS,
                      "Write batch sizes must be between 1 and 100000. Got 0 operations.");
      goto cleanup;
   }
   /* Ordered: the documents before the first bad one are inserted; unordered: the bad
    * documents are left out and the others inserted (MongoDB's semantics). The first
    * error is reported. */
   prepared = bson_malloc0(n_docs * sizeof *prepared);
   for (i = 0; i < n_docs; i++) {
      flora_error_t doc_error;
      bson_t *doc;

      FLORA_ASSERT_ARG(docs[i]);
      doc = prepare_insert_new(docs[i], &doc_error);
      if (doc) {
         prepared[n_valid++] = doc;
         continue;
      }
      if (!have_error) {
         first_error = doc_error;
         have_error = true;
      }
      if (ordered) {
         break;
      }
   }
   if (n_valid > 0) {
      bson_reinit(dst);
      if (!store->engine->insert(store, collection, (const bson_t *const *) prepared, n_valid,
                                 ordered, dst, error)) {
         goto cleanup;
      }
   } else {
      BSON_APPEND_INT32(dst, "insertedCount", 0);
   }
   if (have_error) {
      if (error) {
         *error = first_error;
      }
      goto cleanup;
   }
   ok = true;
cleanup:
   for (i = 0; prepared && i < n_valid; i++) {
      bson_destroy(prepared[i]);
   }
   bson_free(prepared);
   if (!reply) {
      bson_destroy(&tmp);
   }
   return ok;
}

static bool
update_common(flora_store_t *store, const char *collection, const bson_t *filter,
              const bson_t *update, const bson_t *opts, bool multi, bool replacement,
              bson_t *reply, flora_error_t *error)
{
   bson_t tmp, empty_opts;
   bson_t *dst = reply ? reply : &tmp;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(filter);
   FLORA_ASSERT_ARG(update);
   bson_init(dst);
   if (!check_collection(collection, error)) {
      goto cleanup;
   }
   if (replacement ? !check_replacement(update, error) : !check_update_operators(update, error)) {
      goto cleanup;
   }
   ok = store->engine->update(store, collection, filter, update, or_empty(opts, &empty_opts),
                              multi, dst, error);
cleanup:
   if (!reply) {
      bson_destroy(&tmp);
   }
   return ok;
}

bool
flora_store_update_one(flora_store_t *store, const char *collection, const bson_t *filter,
                       const bson_t *update, const bson_t *opts, bson_t *reply,
                       flora_error_t *error)
{
   return update_common(store, collection, filter, update, opts, false, false, reply, error);
}

bool
flora_store_update_many(flora_store_t *store, const char *collection, const bson_t *filter,
                        const bson_t *update, const bson_t *opts, bson_t *reply,
                        flora_error_t *error)
{
   return update_common(store, collection, filter, update, opts, true, false, reply, error);
}

bool
flora_store_replace_one(flora_store_t *store, const char *collection, const bson_t *filter,
                        const bson_t *replacement, const bson_t *opts, bson_t *reply,
                        flora_error_t *error)
{
   return update_common(store, collection, filter, replacement, opts, false, true, reply, error);
}

static bool
remove_common(flora_store_t *store, const char *collection, const bson_t *filter,
              const bson_t *opts, bool multi, bson_t *reply, flora_error_t *error)
{
   bson_t tmp, empty_opts;
   bson_t *dst = reply ? reply : &tmp;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(filter);
   bson_init(dst);
   if (check_collection(collection, error)) {
      ok = store->engine->remove(store, collection, filter, or_empty(opts, &empty_opts), multi,
                                 dst, error);
   }
   if (!reply) {
      bson_destroy(&tmp);
   }
   return ok;
}

bool
flora_store_delete_one(flora_store_t *store, const char *collection, const bson_t *filter,
                       const bson_t *opts, bson_t *reply, flora_error_t *error)
{
   return remove_common(store, collection, filter, opts, false, reply, error);
}

bool
flora_store_delete_many(flora_store_t *store, const char *collection, const bson_t *filter,
                        const bson_t *opts, bson_t *reply, flora_error_t *error)
{
   return remove_common(store, collection, filter, opts, true, reply, error);
}

/* opts.returnDocument must be "before" or "after" when present. */
static bool
check_return_document(const bson_t *opts, flora_error_t *error)
{
   bson_iter_t it;
   const char *value;

   if (!opts || !bson_iter_init_find(&it, opts, "returnDocument")) {
      return true;
   }
   value = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
   if (strcmp(value, "before") != 0 && strcmp(value, "after") != 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "returnDocument must be \"before\" or \"after\"");
      return false;
   }
   return true;
}

static bool
find_and_modify_common(flora_store_t *store, const char *collection, const bson_t *filter,
                       const bson_t *update, bool replacement, bool remove, const bson_t *opts,
                       bson_t *out, bool *found, flora_error_t *error)
{
   bson_t tmp, empty_opts;
   bson_t *dst = out ? out : &tmp;
   bool found_tmp = false;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(filter);
   FLORA_ASSERT_ARG(remove || update);
   bson_init(dst);
   if (found) {
      *found = false;
   }
   if (!check_collection(collection, error) || !check_return_document(opts, error)) {
      goto cleanup;
   }
   if (!remove &&
       (replacement ? !check_replacement(update, error) : !check_update_operators(update, error))) {
      goto cleanup;
   }
   ok = store->engine->find_and_modify(store, collection, filter, remove ? NULL : update, remove,
                                       or_empty(opts, &empty_opts), dst,
                                       found ? found : &found_tmp, error);
cleanup:
   if (!out) {
      bson_destroy(&tmp);
   }
   return ok;
}

bool
flora_store_find_one_and_update(flora_store_t *store, const char *collection,
                                const bson_t *filter, const bson_t *update, const bson_t *opts,
                                bson_t *out, bool *found, flora_error_t *error)
{
   return find_and_modify_common(store, collection, filter, update, false, false, opts, out, found,
                                 error);
}

bool
flora_store_find_one_and_replace(flora_store_t *store, const char *collection,
                                 const bson_t *filter, const bson_t *replacement,
                                 const bson_t *opts, bson_t *out, bool *found,
                                 flora_error_t *error)
{
   FLORA_ASSERT_ARG(replacement);
   return find_and_modify_common(store, collection, filter, replacement, true, false, opts, out,
                                 found, error);
}

bool
flora_store_find_one_and_delete(flora_store_t *store, const char *collection,
                                const bson_t *filter, const bson_t *opts, bson_t *out,
                                bool *found, flora_error_t *error)
{
   return find_and_modify_common(store, collection, filter, NULL, false, true, opts, out, found,
                                 error);
}

/* ---- reads ------------------------------------------------------------------------ */

bool
flora_store_find(flora_store_t *store, const char *collection, const bson_t *filter,
                 const bson_t *opts, flora_cursor_t **out, flora_error_t *error)
{
   bson_t empty_filter, empty_opts;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(out);
   *out = NULL;
   if (!check_collection(collection, error)) {
      return false;
   }
   return store->engine->find(store, collection, or_empty(filter, &empty_filter),
                              or_empty(opts, &empty_opts), out, error);
}

bool
flora_store_find_one(flora_store_t *store, const char *collection, const bson_t *filter,
                     const bson_t *opts, bson_t *out, bool *found, flora_error_t *error)
{
   bson_t one_opts = BSON_INITIALIZER;
   bson_t tmp;
   bson_t *dst = out ? out : &tmp;
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   bson_iter_t it;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   bson_init(dst);
   if (found) {
      *found = false;
   }
   if (opts && bson_iter_init(&it, opts)) {
      while (bson_iter_next(&it)) {
         if (strcmp(bson_iter_key(&it), "limit") != 0) {
            bson_append_iter(&one_opts, bson_iter_key(&it), -1, &it);
         }
      }
   }
   BSON_APPEND_INT64(&one_opts, "limit", 1);
   if (!flora_store_find(store, collection, filter, &one_opts, &cursor, error)) {
      goto cleanup;
   }
   if (flora_cursor_next(cursor, &doc)) {
      bson_destroy(dst);
      bson_copy_to(doc, dst);
      if (found) {
         *found = true;
      }
   } else if (flora_cursor_error(cursor, error)) {
      goto cleanup;
   }
   ok = true;
cleanup:
   flora_cursor_destroy(cursor);
   bson_destroy(&one_opts);
   if (!out) {
      bson_destroy(&tmp);
   }
   return ok;
}

bool
flora_store_count_documents(flora_store_t *store, const char *collection, const bson_t *filter,
                            const bson_t *opts, int64_t *count, flora_error_t *error)
{
   bson_t empty_filter, empty_opts;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(count);
   *count = 0;
   if (!check_collection(collection, error)) {
      return false;
   }
   return store->engine->count(store, collection, or_empty(filter, &empty_filter),
                               or_empty(opts, &empty_opts), count, error);
}

bool
flora_store_distinct(flora_store_t *store, const char *collection, const char *field,
                     const bson_t *filter, bson_t *out, flora_error_t *error)
{
   bson_t empty_filter, tmp;
   bson_t *dst = out ? out : &tmp;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(field);
   bson_init(dst);
   if (!check_collection(collection, error)) {
      goto cleanup;
   }
   if (field[0] == '\0') {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "FieldPath cannot be constructed with empty string");
      goto cleanup;
   }
   ok = store->engine->distinct(store, collection, field, or_empty(filter, &empty_filter), dst,
                                error);
cleanup:
   if (!out) {
      bson_destroy(&tmp);
   }
   return ok;
}

bool
flora_store_aggregate(flora_store_t *store, const char *collection, const bson_t *pipeline,
                      const bson_t *opts, flora_cursor_t **out, flora_error_t *error)
{
   bson_t empty_opts;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(pipeline);
   FLORA_ASSERT_ARG(out);
   *out = NULL;
   if (!check_collection(collection, error)) {
      return false;
   }
   return store->engine->aggregate(store, collection, pipeline, or_empty(opts, &empty_opts), out,
                                   error);
}

bool
flora_store_explain(flora_store_t *store, const char *collection, const bson_t *filter,
                    const bson_t *opts, bson_t *out, flora_error_t *error)
{
   bson_t empty_filter, empty_opts, tmp;
   bson_t *dst = out ? out : &tmp;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   bson_init(dst);
   if (check_collection(collection, error)) {
      ok = store->engine->explain(store, collection, or_empty(filter, &empty_filter),
                                  or_empty(opts, &empty_opts), dst, error);
   }
   if (!out) {
      bson_destroy(&tmp);
   }
   return ok;
}

/* ---- transactions ----------------------------------------------------------------- */

/* Backoff between attempts: 5 ms doubling to 1 s, with full jitter, never past the
 * deadline. */
static void
backoff_sleep(unsigned attempt, int64_t deadline_ms, uint32_t *seed)
{
   int64_t cap = 5;
   int64_t left = deadline_ms - monotonic_ms();
   int64_t wait_ms;
   struct timespec ts;

   for (unsigned i = 0; i < attempt && cap < 1000; i++) {
      cap *= 2;
   }
   if (cap > 1000) {
      cap = 1000;
   }
   /* xorshift32: jitter needs no quality. */
   *seed ^= *seed << 13;
   *seed ^= *seed >> 17;
   *seed ^= *seed << 5;
   wait_ms = 1 + (int64_t) (*seed % (uint32_t) cap);
   if (wait_ms > left) {
      wait_ms = left;
   }
   if (wait_ms <= 0) {
      return;
   }
   ts.tv_sec = (time_t) (wait_ms / 1000);
   ts.tv_nsec = (long) (wait_ms % 1000) * 1000000L;
   while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
   }
}

bool
flora_store_with_transaction(flora_store_t *store, flora_txn_fn fn, void *ctx,
                             flora_error_t *error)
{
   flora_error_t attempt_error;
   int64_t deadline;
   uint32_t seed;
   unsigned attempt;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(fn);
   if (store->in_txn) {
      return fn(store, ctx, error);
   }
   deadline = monotonic_ms() + store->options.transaction_timeout_ms;
   seed = (uint32_t) flora__store_now_ms() ^ (uint32_t) (uintptr_t) &attempt_error;
   if (seed == 0) {
      seed = 0x9e3779b9u;
   }
   for (attempt = 0;; attempt++) {
      flora_error_clear(&attempt_error);
      if (store->engine->transaction(store, fn, ctx, &attempt_error)) {
         return true;
      }
      if (attempt_error.domain == FLORA_DOMAIN_NONE) {
         flora_error_set(&attempt_error, FLORA_DOMAIN_STORE, CODE_OPERATION_FAILED,
                         "the transaction was aborted by its callback");
      }
      if (!flora_error_is_transient(&attempt_error) || monotonic_ms() >= deadline) {
         break;
      }
      backoff_sleep(attempt, deadline, &seed);
   }
   if (error) {
      *error = attempt_error;
   }
   return false;
}

/* ---- code names ------------------------------------------------------------------- */

const char *
flora_store_code_name(uint32_t code)
{
   /* mongo/src/mongo/base/error_codes.yml */
   static const struct {
      uint32_t code;
      const char *name;
   } names[] = {
      {0, "OK"},
      {1, "InternalError"},
      {2, "BadValue"},
      {4, "NoSuchKey"},
      {5, "GraphContainsCycle"},
      {6, "HostUnreachable"},
      {7, "HostNotFound"},
      {8, "UnknownError"},
      {9, "FailedToParse"},
      {10, "CannotMutateObject"},
      {11, "UserNotFound"},
      {12, "UnsupportedFormat"},
      {13, "Unauthorized"},
      {14, "TypeMismatch"},
      {15, "Overflow"},
      {16, "InvalidLength"},
      {17, "ProtocolError"},
      {18, "AuthenticationFailed"},
      {20, "IllegalOperation"},
      {22, "InvalidBSON"},
      {24, "LockTimeout"},
      {26, "NamespaceNotFound"},
      {27, "IndexNotFound"},
      {28, "PathNotViable"},
      {29, "NonExistentPath"},
      {30, "InvalidPath"},
      {31, "RoleNotFound"},
      {40, "ConflictingUpdateOperators"},
      {43, "CursorNotFound"},
      {48, "NamespaceExists"},
      {50, "MaxTimeMSExpired"},
      {52, "DollarPrefixedFieldName"},
      {53, "InvalidIdField"},
      {54, "NotSingleValueField"},
      {55, "InvalidDBRef"},
      {56, "EmptyFieldName"},
      {57, "DottedFieldName"},
      {59, "CommandNotFound"},
      {61, "ShardKeyNotFound"},
      {66, "ImmutableField"},
      {67, "CannotCreateIndex"},
      {68, "IndexAlreadyExists"},
      {72, "InvalidOptions"},
      {73, "InvalidNamespace"},
      {79, "UnknownReplWriteConcern"},
      {85, "IndexOptionsConflict"},
      {86, "IndexKeySpecsConflict"},
      {89, "NetworkTimeout"},
      {91, "ShutdownInProgress"},
      {96, "OperationFailed"},
      {100, "UnsatisfiableWriteConcern"},
      {112, "WriteConflict"},
      {115, "CommandNotSupported"},
      {121, "DocumentValidationFailure"},
      {125, "CommandFailed"},
      {133, "FailedToSatisfyReadPreference"},
      {146, "ExceededMemoryLimit"},
      {166, "CommandNotSupportedOnView"},
      {168, "InvalidPipelineOperator"},
      {189, "PrimarySteppedDown"},
      {197, "InvalidIndexSpecificationOption"},
      {225, "TransactionTooOld"},
      {244, "TransactionAborted"},
      {251, "NoSuchTransaction"},
      {256, "TransactionCommitted"},
      {257, "TransactionTooLarge"},
      {262, "ExceededTimeLimit"},
      {263, "OperationNotSupportedInTransaction"},
      {10107, "NotWritablePrimary"},
      {10334, "BSONObjectTooLarge"},
      {11000, "DuplicateKey"},
      {11600, "InterruptedAtShutdown"},
      {11601, "Interrupted"},
      {11602, "InterruptedDueToReplStateChange"},
      {13435, "NotPrimaryNoSecondaryOk"},
      {13436, "NotPrimaryOrSecondary"},
   };
   static _Thread_local char location[32];

   for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      if (names[i].code == code) {
         return names[i].name;
      }
   }
   /* Codes without a registered name are "Location<code>" (mongo's ErrorCodes). */
   snprintf(location, sizeof location, "Location%" PRIu32, code);
   return location;
}
