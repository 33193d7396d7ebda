/* Internals of the embedded engine (sqlite:PATH), shared by lib/store/sqlite*.c.
 *
 * Storage layout (DESIGN.md section 2):
 *   flora_collections(name TEXT PRIMARY KEY, options BLOB)       the catalog of collections
 *   flora_indexes(coll, name, num, spec BLOB, multikey, PRIMARY KEY(coll, name))
 *   "c_<hex name>"(rid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, doc BLOB NOT NULL)
 *   "x_<hex name>_<num>"(key BLOB, rid INTEGER, PRIMARY KEY(key, rid)) WITHOUT ROWID
 *       or, for a unique index, PRIMARY KEY(key) so SQLite enforces uniqueness
 *   "t_<hex name>"  an FTS5 table (rowid = rid) holding the stemmed terms of the text index
 * Collection names are hex-encoded into table names, so no user text reaches SQL as an
 * identifier. Index keys are the order-preserving encoding of sqlite_keys.c: memcmp order
 * of two keys is flora_value_compare order of the values. */
#ifndef FLORA_SQLITE_PRIVATE_H
#define FLORA_SQLITE_PRIVATE_H

#include <sqlite3.h>
#include <stdint.h>

#include "store/store_private.h"

/* ---- byte buffers ---------------------------------------------------------------- */

typedef struct sq_buf {
   uint8_t *data;
   size_t len;
   size_t cap;
} sq_buf_t;

#define SQ_BUF_INIT {NULL, 0, 0}

void flora__sqlite_buf_append(sq_buf_t *buf, const void *data, size_t len);
void flora__sqlite_buf_byte(sq_buf_t *buf, uint8_t byte);
void flora__sqlite_buf_free(sq_buf_t *buf);

/* ---- keys (sqlite_keys.c) ---------------------------------------------------------- */

/* The first byte of the encoding of a value of this type (its BSON order class). Values
 * whose classes differ compare by this byte. */
uint8_t flora__sqlite_key_type_byte(bson_type_t type);

/* Appends the order-preserving encoding of v; descending inverts every byte. Every
 * encoding is prefix-free, so concatenations compare component by component. */
void flora__sqlite_key_append(sq_buf_t *buf, const bson_value_t *v, bool descending);

/* The smallest byte string greater than every string that starts with key[0..len):
 * written into *out (which is reset). False when there is none (key is all 0xFF). */
bool flora__sqlite_key_successor(const uint8_t *key, size_t len, sq_buf_t *out);

/* ---- catalog -------------------------------------------------------------------- */

typedef struct sq_index {
   char *name;
   bson_t *spec;       /* the spec as listed (v, key, name, options) */
   char *table;        /* x_<hex>_<num> or t_<hex> (text) */
   int64_t num;
   size_t n_fields;
   char **fields;      /* dotted paths of the key pattern (text: the weighted fields) */
   int *dirs;          /* 1 or -1 (text: weights) */
   bool unique;
   bool sparse;
   bool text;
   bool multikey;      /* some document gave more than one key (persisted) */
   flora_matcher_t *partial; /* partialFilterExpression, or NULL */
   bson_t *partial_spec;
   int64_t expire_after_s; /* TTL, or -1 */
   char *language;     /* text: default_language */
} sq_index_t;

typedef struct sq_coll {
   char *name;
   char *table;        /* c_<hex> */
   char *hex;
   sq_index_t **indexes;
   size_t n_indexes;
   struct sq_coll *next;
} sq_coll_t;

typedef struct sq_catalog {
   int64_t version;    /* schema_version << 32 | user_version at load */
   sq_coll_t *colls;
} sq_catalog_t;

/* ---- connections ---------------------------------------------------------------- */

typedef struct sq_stmt_entry {
   uint64_t hash;
   char *sql;
   sqlite3_stmt *stmt;
} sq_stmt_entry_t;

#define SQ_STMT_CACHE 128

typedef struct sq_conn {
   sqlite3 *db;
   sq_stmt_entry_t cache[SQ_STMT_CACHE];
   size_t n_cache;
   sq_catalog_t *catalog; /* per connection: used by one thread at a time */
   struct sq_conn *next_free;
} sq_conn_t;

typedef struct sq_engine {
   char *path;         /* file name for sqlite3_open_v2 */
   bool memory;
   char *db_name;      /* the "database" part of namespaces in messages */
   int busy_timeout_ms;
   /* pool */
   pthread_mutex_t pool_lock;
   pthread_cond_t pool_cond;
   sq_conn_t **conns;
   size_t n_conns;
   sq_conn_t *free_list;
   /* TTL sweeper */
   pthread_t ttl_thread;
   bool ttl_running;
   bool ttl_stop;
   int ttl_interval_s;
   pthread_mutex_t ttl_lock;
   pthread_cond_t ttl_cond;
} sq_engine_t;

/* The state behind a transaction handle (flora_store_t with in_txn). */
typedef struct sq_txn {
   sq_engine_t *eng;
   sq_conn_t *conn;
   int depth;
} sq_txn_t;

/* Borrow / return a pooled connection (blocks while all are in use). */
sq_conn_t *flora__sqlite_pool_acquire(sq_engine_t *eng);
void flora__sqlite_pool_release(sq_engine_t *eng, sq_conn_t *conn);

/* Prepared statement from the connection's cache (reset, bindings cleared). NULL on an
 * SQLite error (filled). */
sqlite3_stmt *flora__sqlite_stmt(sq_conn_t *conn, const char *sql, flora_error_t *error);
/* Formats the SQL then gets the cached statement. */
sqlite3_stmt *flora__sqlite_stmtf(sq_conn_t *conn, flora_error_t *error, const char *fmt, ...)
   __attribute__((format(printf, 3, 4)));
/* Runs SQL without results. */
bool flora__sqlite_exec(sq_conn_t *conn, const char *sql, flora_error_t *error);
/* Runs a transaction-control statement (BEGIN, COMMIT, SAVEPOINT...) through the
 * statement cache. error may be NULL (best-effort rollback). */
bool flora__sqlite_control(sq_conn_t *conn, const char *sql, flora_error_t *error);
/* Maps an SQLite result code to a store error (BUSY/LOCKED: 24 transient). */
void flora__sqlite_error(sq_conn_t *conn, int rc, const char *what, flora_error_t *error);
/* Drops every cached statement (after DDL that invalidates them). */
void flora__sqlite_stmt_cache_clear(sq_conn_t *conn);

/* The catalog as of the connection's current transaction (reloaded when the schema or
 * user_version changed). Borrowed from the connection. */
sq_catalog_t *flora__sqlite_catalog(sq_conn_t *conn, flora_error_t *error);
sq_coll_t *flora__sqlite_catalog_find(sq_catalog_t *cat, const char *name);
void flora__sqlite_catalog_free(sq_catalog_t *cat);
/* Marks the catalog stale so the next flora__sqlite_catalog reloads it. */
void flora__sqlite_catalog_invalidate(sq_conn_t *conn);

/* Validates a collection name as MongoDB does (code 73 InvalidNamespace). */
bool flora__sqlite_check_coll_name(const char *name, flora_error_t *error);

/* ---- index maintenance (sqlite_index.c) ------------------------------------------ */

/* Parses and checks an index spec into a new sq_index_t (no table yet). */
sq_index_t *flora__sqlite_index_parse(const bson_t *spec, flora_error_t *error);
void flora__sqlite_index_free(sq_index_t *ix);

/* Creates the index table(s) of ix for coll and fills them from the existing documents. */
bool flora__sqlite_index_build(sq_engine_t *eng, sq_conn_t *conn, sq_coll_t *coll, sq_index_t *ix,
                               flora_error_t *error);

/* Adds (old NULL) / removes (new NULL) / changes the index entries of one document. */
bool flora__sqlite_index_write(sq_engine_t *eng, sq_conn_t *conn, sq_coll_t *coll, int64_t rid,
                               const bson_t *old_doc, const bson_t *new_doc, flora_error_t *error);

/* Visits the values at a dotted path with MongoDB's array traversal; a path that leads
 * nowhere gives one null (when missing_as_null) or nothing. The last component's array is
 * unwound (an empty array gives undefined) when unwind is true. *had_array tells whether an
 * array was met. */
typedef void (*sq_value_fn)(void *ctx, const bson_value_t *v);
void flora__sqlite_path_values(const bson_t *doc, const char *path, bool unwind,
                               bool missing_as_null, sq_value_fn fn, void *ctx, bool *had_array);

/* Starts / stops the TTL sweeper thread. */
bool flora__sqlite_ttl_start(sq_engine_t *eng, int interval_s, flora_error_t *error);
void flora__sqlite_ttl_stop(sq_engine_t *eng);
/* One sweep now (used by the thread and by tests through a short interval). */
bool flora__sqlite_ttl_sweep(sq_engine_t *eng, sq_conn_t *conn, int64_t now_ms, flora_error_t *error);

/* ---- planning (sqlite_plan.c) ------------------------------------------------------ */

typedef struct sq_query {
   const bson_t *filter;
   const bson_t *sort;      /* or NULL */
   const bson_t *hint;      /* {hint: ...} value document or NULL */
   const char *hint_name;   /* hint given as a name, or NULL */
   int64_t skip;
   int64_t limit;           /* 0: none */
   bool want_scores;        /* keep text scores */
   bool no_docs;            /* only count: rows get no document copies (doc NULL) */
} sq_query_t;

/* A fetched document with its row id. */
typedef struct sq_row {
   int64_t rid;
   bson_t *doc;
   double score;            /* text score (0 without $text) */
} sq_row_t;

typedef struct sq_rows {
   sq_row_t *items;
   size_t len;
   size_t cap;
} sq_rows_t;

void flora__sqlite_rows_free(sq_rows_t *rows);

/* Runs the query on conn (inside a transaction the caller holds): plans, scans, re-checks
 * every document with the matcher, sorts, skips and limits. explain (when not NULL)
 * receives the plan instead (no rows are fetched then). */
bool flora__sqlite_query(sq_engine_t *eng, sq_conn_t *conn, const char *coll_name,
                         const sq_query_t *query, const flora_matcher_t *matcher, sq_rows_t *rows,
                         bson_t *explain, flora_error_t *error);

/* ---- text (sqlite_text.c) ---------------------------------------------------------- */

bool flora__sqlite_text_create(sq_conn_t *conn, sq_coll_t *coll, sq_index_t *ix, flora_error_t *error);
bool flora__sqlite_text_write(sq_conn_t *conn, sq_coll_t *coll, sq_index_t *ix, int64_t rid,
                              const bson_t *old_doc, const bson_t *new_doc, flora_error_t *error);
typedef struct sq_text_terms {
   char **items;
   size_t len;
} sq_text_terms_t;

/* Row ids of the documents matching the $search string (FTS5 order), and the distinct
 * positive query terms in *terms (free with flora__sqlite_text_terms_free). */
bool flora__sqlite_text_search(sq_conn_t *conn, sq_coll_t *coll, sq_index_t *ix, const char *search,
                               sq_rows_t *rows, sq_text_terms_t *terms, char **plan_sql,
                               flora_error_t *error);
void flora__sqlite_text_terms_free(sq_text_terms_t *terms);
/* MongoDB's textScore of doc for the query terms (fts_spec.cpp, text index version 3). */
double flora__sqlite_text_score(const sq_index_t *ix, const bson_t *doc, const sq_text_terms_t *query);

/* Counts committed changes to a collection's documents in flora_changes (bumped inside the
 * writing transaction, so every process sees it with the data): the source of
 * flora_store_collection_version. */
bool flora__sqlite_bump(sq_conn_t *conn, const char *coll, flora_error_t *error);

#endif
