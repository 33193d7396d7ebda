/* The document store: one API in MongoDB's terms over two engines (DESIGN.md section 2).
 *
 *   sqlite:PATH          the embedded engine (default: sqlite:data/flora.db). One file,
 *                        WAL, real transactions, MongoDB query semantics (include/flora/query.h)
 *                        and real SQLite indexes for every declared index.
 *   sqlite::memory:      the embedded engine on a private in-memory database (tests).
 *   mongodb://...        MongoDB through libmongoc (client pool, retryable writes,
 *   mongodb+srv://...    transactions on replica sets). Database name from the URI path,
 *                        else "flora".
 *
 * Collections are addressed by name. Options documents (`opts`) take MongoDB's names:
 * find: sort, skip, limit, projection, hint, batchSize (ignored); update: upsert,
 * arrayFilters; findAndModify: sort, projection, upsert, returnDocument ("before"|"after").
 *
 * Errors: STORE-domain flora_error_t with MongoDB's codes (11000 duplicate key, with the
 * key pattern and value in the message as MongoDB words it; 121 validation; 2 bad value
 * or unsupported operator; 9 failed to parse; 26 namespace not found; 24/112 transient).
 * Outputs: every `bson_t *out`/`reply` parameter is initialised by the callee, on success
 * and on failure, and the caller calls bson_destroy() on it; it may be NULL when the caller
 * does not want it.
 *
 * Threads: a flora_store_t may be used from many threads at once. A cursor belongs to the
 * thread that uses it. A transaction handle (see flora_store_with_transaction) belongs to
 * the callback's thread and is valid only during the callback. */
#ifndef FLORA_STORE_H
#define FLORA_STORE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flora/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flora_store flora_store_t;
typedef struct flora_cursor flora_cursor_t;

typedef struct flora_store_options {
   int version;                  /* FLORA_STORE_OPTIONS_VERSION */
   int ttl_sweep_interval_s;     /* embedded engine: TTL sweeper period; 0 disables (default 60) */
   int busy_timeout_ms;          /* embedded engine: wait for a locked database (default 5000) */
   int pool_size;                /* connections (embedded) or client pool size (mongodb); default 16 */
   int transaction_timeout_ms;   /* with_transaction gives up retrying after this (default 120000) */
} flora_store_options_t;

#define FLORA_STORE_OPTIONS_VERSION 1
#define FLORA_STORE_OPTIONS_INIT {FLORA_STORE_OPTIONS_VERSION, 60, 5000, 16, 120000}

/* Opens a store by URI. *out is owned by the caller (flora_store_close). options may be
 * NULL for the defaults. The embedded engine creates the file and its folder's file if
 * missing (not the folder). Errors: code 2 for an unknown scheme or bad URI, 6 when the
 * engine cannot be reached. */
bool flora_store_open(flora_store_t **out, const char *uri, const flora_store_options_t *options,
                      flora_error_t *error);

/* Stops the TTL sweeper, closes connections and frees the store. NULL is a no-op. */
void flora_store_close(flora_store_t *store);

/* "sqlite" or "mongodb". */
const char *flora_store_engine(const flora_store_t *store);

/* The URI the store was opened with, with any password masked ("mongodb://u:***@h/db"). */
const char *flora_store_uri_masked(const flora_store_t *store);

/* Round trip to the engine (MongoDB's ping); false with code 6 when it does not answer. */
bool flora_store_ping(flora_store_t *store, flora_error_t *error);

/* ---- validation hook ------------------------------------------------------------- */

/* Called with each whole document the store is about to write to `collection` (insert,
 * replacement, the result of an update or upsert). Return false with a VALIDATION or
 * STORE error to refuse it; the store then fails the write with code 121 and that
 * message, writing nothing. */
typedef bool (*flora_validate_fn)(void *ctx, const char *collection, const bson_t *doc,
                                  flora_error_t *error);

/* Registers (or, with fn NULL, removes) the validator of a collection. The ODM registers
 * each schema's validator here (include/flora/schema.h). ctx is borrowed. */
void flora_store_set_validator(flora_store_t *store, const char *collection, flora_validate_fn fn,
                               void *ctx);

/* ---- collections and indexes ----------------------------------------------------- */

/* opts: {validator: {$jsonSchema: ...}, validationLevel, validationAction} (applied by
 * the mongodb engine; the embedded engine stores it and relies on the validation hook).
 * Code 48 when it exists. */
bool flora_store_create_collection(flora_store_t *store, const char *collection, const bson_t *opts,
                                   flora_error_t *error);
/* Dropping a collection that does not exist succeeds. */
bool flora_store_drop_collection(flora_store_t *store, const char *collection, flora_error_t *error);
/* *out: {"0": "categories", "1": ...} as an array document of names, sorted. */
bool flora_store_list_collections(flora_store_t *store, bson_t *out, flora_error_t *error);

/* specs: an array document of MongoDB index specifications:
 * {key: {f: 1, g: -1} | {f: "text", ...}, name, unique, sparse, partialFilterExpression,
 *  expireAfterSeconds, weights, default_language}. Creating an index that exists with the
 * same spec succeeds; the same name with another spec fails with code 85/86. Creating a
 * unique index over duplicates fails with 11000 and creates nothing. The collection is
 * created when missing. */
bool flora_store_create_indexes(flora_store_t *store, const char *collection, const bson_t *specs,
                                flora_error_t *error);
/* *out: an array document of the index specs, _id_ first. */
bool flora_store_list_indexes(flora_store_t *store, const char *collection, bson_t *out,
                              flora_error_t *error);
/* Code 27 when no index has that name; _id_ cannot be dropped (code 72). */
bool flora_store_drop_index(flora_store_t *store, const char *collection, const char *name,
                            flora_error_t *error);

/* ---- writes ---------------------------------------------------------------------- */

/* Inserts one document; a missing _id gets a new ObjectId (first field). reply:
 * {insertedId}. */
bool flora_store_insert_one(flora_store_t *store, const char *collection, const bson_t *doc,
                            const bson_t *opts, bson_t *reply, flora_error_t *error);
/* opts: {ordered: bool (default true)}. reply: {insertedCount, insertedIds: [...]}. An
 * ordered insert stops at the first error; the documents before it stay inserted, as in
 * MongoDB. */
bool flora_store_insert_many(flora_store_t *store, const char *collection, const bson_t *const *docs,
                             size_t n_docs, const bson_t *opts, bson_t *reply, flora_error_t *error);
/* reply: {matchedCount, modifiedCount, upsertedCount, upsertedId?}. update is an
 * operator document. opts: {upsert, arrayFilters, hint, sort}. */
bool flora_store_update_one(flora_store_t *store, const char *collection, const bson_t *filter,
                            const bson_t *update, const bson_t *opts, bson_t *reply,
                            flora_error_t *error);
bool flora_store_update_many(flora_store_t *store, const char *collection, const bson_t *filter,
                             const bson_t *update, const bson_t *opts, bson_t *reply,
                             flora_error_t *error);
/* replacement has no operators; _id, when present, must not change (code 66). */
bool flora_store_replace_one(flora_store_t *store, const char *collection, const bson_t *filter,
                             const bson_t *replacement, const bson_t *opts, bson_t *reply,
                             flora_error_t *error);
/* reply: {deletedCount}. */
bool flora_store_delete_one(flora_store_t *store, const char *collection, const bson_t *filter,
                            const bson_t *opts, bson_t *reply, flora_error_t *error);
bool flora_store_delete_many(flora_store_t *store, const char *collection, const bson_t *filter,
                             const bson_t *opts, bson_t *reply, flora_error_t *error);

/* Atomic find-and-modify of the first document by opts.sort. *out is the document before
 * or after (opts.returnDocument "before"|"after", default before) projected by
 * opts.projection; *found says whether there was one (an upsert with "after" finds the
 * new one). */
bool flora_store_find_one_and_update(flora_store_t *store, const char *collection,
                                     const bson_t *filter, const bson_t *update, const bson_t *opts,
                                     bson_t *out, bool *found, flora_error_t *error);
bool flora_store_find_one_and_replace(flora_store_t *store, const char *collection,
                                      const bson_t *filter, const bson_t *replacement,
                                      const bson_t *opts, bson_t *out, bool *found,
                                      flora_error_t *error);
bool flora_store_find_one_and_delete(flora_store_t *store, const char *collection,
                                     const bson_t *filter, const bson_t *opts, bson_t *out,
                                     bool *found, flora_error_t *error);

/* ---- reads ----------------------------------------------------------------------- */

/* Opens a cursor over the matching documents. opts: sort, skip, limit, projection, hint.
 * *out is owned by the caller (flora_cursor_destroy). A missing collection is empty. */
bool flora_store_find(flora_store_t *store, const char *collection, const bson_t *filter,
                      const bson_t *opts, flora_cursor_t **out, flora_error_t *error);
/* The first match into *out; *found false (and *out empty) when none. */
bool flora_store_find_one(flora_store_t *store, const char *collection, const bson_t *filter,
                          const bson_t *opts, bson_t *out, bool *found, flora_error_t *error);
/* opts: skip, limit. */
bool flora_store_count_documents(flora_store_t *store, const char *collection, const bson_t *filter,
                                 const bson_t *opts, int64_t *count, flora_error_t *error);
/* *out: an array document of the distinct values of field (arrays unwound), in BSON order. */
bool flora_store_distinct(flora_store_t *store, const char *collection, const char *field,
                          const bson_t *filter, bson_t *out, flora_error_t *error);
/* pipeline: an array document of stages (include/flora/query.h lists them). */
bool flora_store_aggregate(flora_store_t *store, const char *collection, const bson_t *pipeline,
                           const bson_t *opts, flora_cursor_t **out, flora_error_t *error);
/* The query plan MongoDB-style: {queryPlanner: {namespace, winningPlan: {stage: "IXSCAN"|
 * "COLLSCAN"|"TEXT"|..., indexName?, ...}}, engine: {...engine details, e.g. SQLite's
 * EXPLAIN QUERY PLAN rows}}. opts as for find. */
bool flora_store_explain(flora_store_t *store, const char *collection, const bson_t *filter,
                         const bson_t *opts, bson_t *out, flora_error_t *error);

/* Next document, borrowed until the next call or destroy. False at the end or on an error
 * (then flora_cursor_error says which). */
bool flora_cursor_next(flora_cursor_t *cursor, const bson_t **doc);
/* True (and *error filled) when the cursor stopped on an error. */
bool flora_cursor_error(const flora_cursor_t *cursor, flora_error_t *error);
void flora_cursor_destroy(flora_cursor_t *cursor);

/* A number that changes whenever a committed write (by any thread or process) changes the
 * documents of the collection: inserts, updates, deletes, TTL expiry, a drop. It never
 * goes back. Readers use it to validate caches of query results: equal numbers mean equal
 * contents. The embedded engine keeps it in the writing transaction; the mongodb engine
 * cannot tell without a change stream and fails with code 115 (CommandNotSupported), so
 * callers must not cache there. A collection never written has version 0. */
bool flora_store_collection_version(flora_store_t *store, const char *collection, int64_t *version,
                                    flora_error_t *error);

/* The versions of n collections read together (one snapshot, one round trip): versions[i]
 * is collection[i]'s. Same errors as flora_store_collection_version. */
bool flora_store_collection_versions(flora_store_t *store, const char *const *collections, size_t n,
                                     int64_t *versions, flora_error_t *error);

/* ---- transactions ---------------------------------------------------------------- */

/* The body of a transaction. Use `txn` (not the outer store) for every operation that
 * belongs to it; return false to abort. */
typedef bool (*flora_txn_fn)(flora_store_t *txn, void *ctx, flora_error_t *error);

/* Runs fn in a multi-document transaction and commits it. When fn or the commit fails
 * with a transient error (flora_error_is_transient), the whole callback is retried until
 * options.transaction_timeout_ms, as MongoDB drivers' withTransaction does; fn must
 * therefore be safe to run again. Any other failure aborts, leaves nothing written and
 * is returned. Called on a transaction handle, runs fn inside the same transaction. */
bool flora_store_with_transaction(flora_store_t *store, flora_txn_fn fn, void *ctx,
                                  flora_error_t *error);

/* ---- commands -------------------------------------------------------------------- */

/* Runs a MongoDB database command document (the OP_MSG body without $db): find (one
 * batch: cursor.firstBatch holds every result, id 0), aggregate, count, distinct, insert,
 * update, delete, findAndModify, create, drop, createIndexes, listIndexes, dropIndexes,
 * listCollections, explain, ping. *reply has MongoDB's shape: {ok: 1.0, ...}; write
 * errors of insert/update/delete are reported in reply.writeErrors with ok 1, as MongoDB
 * does. Returns false (and reply {ok: 0.0, errmsg, code, codeName}) on command errors.
 * This is what `flora conformance` and the mongodb engine's pass-through speak. */
bool flora_store_command(flora_store_t *store, const bson_t *command, bson_t *reply,
                         flora_error_t *error);

/* MongoDB's name for a store error code ("DuplicateKey", "BadValue", ...). */
const char *flora_store_code_name(uint32_t code);

#ifdef __cplusplus
}
#endif
#endif
