/* The embedded engine, sqlite:PATH and sqlite::memory: (DESIGN.md section 2): connection
 * pool, statement cache, catalog of collections and indexes, transactions and the
 * engine operations of store_private.h. Layout of the tables: sqlite_private.h.
 *
 * Concurrency: every connection runs in WAL mode (https://sqlite.org/wal.html) with a busy
 * timeout; a write runs in BEGIN IMMEDIATE ... COMMIT, so a read-match-apply-write update
 * is atomic against other threads and processes on the same file. A busy database that
 * outlasts the timeout fails with code 24 (LockTimeout), which is transient. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/query_private.h"
#include "store/sqlite_private.h"

#define SQ_DEFAULT_DB "flora"

/* ---- SQLite helpers -------------------------------------------------------------- */

void
flora__sqlite_error(sq_conn_t *conn, int rc, const char *what, flora_error_t *error)
{
   int primary = rc & 0xff;
   const char *msg = conn && conn->db ? sqlite3_errmsg(conn->db) : sqlite3_errstr(rc);

   if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_LOCK_TIMEOUT,
                      "database is busy (%s): %s", what, msg);
   } else if (primary == SQLITE_CANTOPEN || primary == SQLITE_NOTADB || primary == SQLITE_IOERR) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_CONNECTION, "sqlite %s: %s", what, msg);
   } else {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL, "sqlite %s: %s", what, msg);
   }
}

static uint64_t
hash_str(const char *s)
{
   uint64_t h = 1469598103934665603ULL;
   for (; *s; s++) {
      h = (h ^ (uint8_t) *s) * 1099511628211ULL;
   }
   return h;
}

void
flora__sqlite_stmt_cache_clear(sq_conn_t *conn)
{
   for (size_t i = 0; i < conn->n_cache; i++) {
      sqlite3_finalize(conn->cache[i].stmt);
      bson_free(conn->cache[i].sql);
   }
   conn->n_cache = 0;
}

sqlite3_stmt *
flora__sqlite_stmt(sq_conn_t *conn, const char *sql, flora_error_t *error)
{
   uint64_t h = hash_str(sql);
   sqlite3_stmt *stmt = NULL;
   int rc;

   for (size_t i = 0; i < conn->n_cache; i++) {
      if (conn->cache[i].hash == h && strcmp(conn->cache[i].sql, sql) == 0) {
         stmt = conn->cache[i].stmt;
         if (i > 0) {
            /* move a hit one place forward: hot statements gather at the front */
            sq_stmt_entry_t tmp = conn->cache[i - 1];
            conn->cache[i - 1] = conn->cache[i];
            conn->cache[i] = tmp;
         }
         sqlite3_reset(stmt);
         sqlite3_clear_bindings(stmt);
         return stmt;
      }
   }
   rc = sqlite3_prepare_v2(conn->db, sql, -1, &stmt, NULL);
   if (rc != SQLITE_OK) {
      flora__sqlite_error(conn, rc, "prepare", error);
      return NULL;
   }
   if (conn->n_cache == SQ_STMT_CACHE) {
      /* evict the coldest (last); callers never hold a cached statement across a fetch */
      conn->n_cache--;
      sqlite3_finalize(conn->cache[conn->n_cache].stmt);
      bson_free(conn->cache[conn->n_cache].sql);
   }
   conn->cache[conn->n_cache].hash = h;
   conn->cache[conn->n_cache].sql = bson_strdup(sql);
   conn->cache[conn->n_cache].stmt = stmt;
   conn->n_cache++;
   return stmt;
}

sqlite3_stmt *
flora__sqlite_stmtf(sq_conn_t *conn, flora_error_t *error, const char *fmt, ...)
{
   char sql[1024];
   va_list ap;
   int n;

   va_start(ap, fmt);
   n = vsnprintf(sql, sizeof sql, fmt, ap);
   va_end(ap);
   if (n < 0 || (size_t) n >= sizeof sql) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL, "statement too long");
      return NULL;
   }
   return flora__sqlite_stmt(conn, sql, error);
}

bool
flora__sqlite_exec(sq_conn_t *conn, const char *sql, flora_error_t *error)
{
   int rc = sqlite3_exec(conn->db, sql, NULL, NULL, NULL);
   if (rc != SQLITE_OK) {
      flora__sqlite_error(conn, rc, sql, error);
      return false;
   }
   return true;
}

bool
flora__sqlite_control(sq_conn_t *conn, const char *sql, flora_error_t *error)
{
   sqlite3_stmt *st = flora__sqlite_stmt(conn, sql, error);
   int rc;
   if (!st) {
      return false;
   }
   rc = sqlite3_step(st);
   sqlite3_reset(st);
   if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
      flora__sqlite_error(conn, rc, sql, error);
      return false;
   }
   return true;
}

/* ---- collection names ------------------------------------------------------------- */

bool
flora__sqlite_check_coll_name(const char *name, flora_error_t *error)
{
   /* MongoDB manual, "Restrictions on Collection Names": not empty, no '$', no NUL, not
    * starting with "system."; namespace at most 255 bytes. */
   if (!name || !*name || strchr(name, '$') || strncmp(name, "system.", 7) == 0 ||
       strlen(name) > 200) {
      flora_error_set(error, FLORA_DOMAIN_STORE, 73, "Invalid collection name: '%s'",
                      name ? name : "");
      return false;
   }
   return true;
}

static char *
hex_name(const char *name)
{
   static const char digits[] = "0123456789abcdef";
   size_t n = strlen(name);
   char *out = bson_malloc(2 * n + 1);
   for (size_t i = 0; i < n; i++) {
      out[2 * i] = digits[(uint8_t) name[i] >> 4];
      out[2 * i + 1] = digits[(uint8_t) name[i] & 15];
   }
   out[2 * n] = '\0';
   return out;
}

/* ---- catalog ------------------------------------------------------------------------ */

void
flora__sqlite_catalog_free(sq_catalog_t *cat)
{
   if (!cat) {
      return;
   }
   while (cat->colls) {
      sq_coll_t *c = cat->colls;
      cat->colls = c->next;
      for (size_t i = 0; i < c->n_indexes; i++) {
         flora__sqlite_index_free(c->indexes[i]);
      }
      bson_free(c->indexes);
      bson_free(c->name);
      bson_free(c->table);
      bson_free(c->hex);
      bson_free(c);
   }
   bson_free(cat);
}

sq_coll_t *
flora__sqlite_catalog_find(sq_catalog_t *cat, const char *name)
{
   for (sq_coll_t *c = cat ? cat->colls : NULL; c; c = c->next) {
      if (strcmp(c->name, name) == 0) {
         return c;
      }
   }
   return NULL;
}

void
flora__sqlite_catalog_invalidate(sq_conn_t *conn)
{
   flora__sqlite_catalog_free(conn->catalog);
   conn->catalog = NULL;
}

static bool
catalog_version(sq_conn_t *conn, int64_t *version, flora_error_t *error)
{
   sqlite3_stmt *st = flora__sqlite_stmt(
      conn,
      "SELECT ((SELECT schema_version FROM pragma_schema_version) << 32) | "
      "(SELECT user_version FROM pragma_user_version)",
      error);
   int rc;

   if (!st) {
      return false;
   }
   rc = sqlite3_step(st);
   if (rc != SQLITE_ROW) {
      flora__sqlite_error(conn, rc, "catalog version", error);
      sqlite3_reset(st);
      return false;
   }
   *version = sqlite3_column_int64(st, 0);
   sqlite3_reset(st);
   return true;
}

static sq_coll_t *
coll_new(const char *name)
{
   sq_coll_t *c = bson_malloc0(sizeof *c);
   char table[512];
   c->name = bson_strdup(name);
   c->hex = hex_name(name);
   snprintf(table, sizeof table, "c_%s", c->hex);
   c->table = bson_strdup(table);
   return c;
}

sq_catalog_t *
flora__sqlite_catalog(sq_conn_t *conn, flora_error_t *error)
{
   sq_catalog_t *cat = NULL;
   sqlite3_stmt *st;
   int64_t version;
   sq_coll_t *tail = NULL;
   int rc;

   if (!catalog_version(conn, &version, error)) {
      return NULL;
   }
   if (conn->catalog && conn->catalog->version == version) {
      return conn->catalog;
   }
   flora__sqlite_catalog_invalidate(conn);
   cat = bson_malloc0(sizeof *cat);
   cat->version = version;
   st = flora__sqlite_stmt(conn, "SELECT name FROM flora_collections ORDER BY name", error);
   if (!st) {
      goto fail;
   }
   while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      sq_coll_t *c = coll_new((const char *) sqlite3_column_text(st, 0));
      if (tail) {
         tail->next = c;
      } else {
         cat->colls = c;
      }
      tail = c;
   }
   sqlite3_reset(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(conn, rc, "load catalog", error);
      goto fail;
   }
   st = flora__sqlite_stmt(
      conn, "SELECT coll, num, spec, multikey FROM flora_indexes ORDER BY coll, num", error);
   if (!st) {
      goto fail;
   }
   while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      sq_coll_t *c = flora__sqlite_catalog_find(cat, (const char *) sqlite3_column_text(st, 0));
      bson_t spec;
      sq_index_t *ix;
      char table[512];

      if (!c || !bson_init_static(&spec, sqlite3_column_blob(st, 2),
                                  (size_t) sqlite3_column_bytes(st, 2))) {
         continue;
      }
      ix = flora__sqlite_index_parse(&spec, error);
      if (!ix) {
         sqlite3_reset(st);
         goto fail;
      }
      ix->num = sqlite3_column_int64(st, 1);
      ix->multikey = sqlite3_column_int(st, 3) != 0;
      if (ix->text) {
         snprintf(table, sizeof table, "t_%s", c->hex);
      } else {
         snprintf(table, sizeof table, "x_%s_%lld", c->hex, (long long) ix->num);
      }
      ix->table = bson_strdup(table);
      c->indexes = bson_realloc(c->indexes, sizeof *c->indexes * (c->n_indexes + 1));
      c->indexes[c->n_indexes++] = ix;
   }
   sqlite3_reset(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(conn, rc, "load catalog", error);
      goto fail;
   }
   conn->catalog = cat;
   return cat;
fail:
   flora__sqlite_catalog_free(cat);
   return NULL;
}

/* ---- connections ------------------------------------------------------------------- */

static void
conn_close(sq_conn_t *conn)
{
   if (!conn) {
      return;
   }
   flora__sqlite_stmt_cache_clear(conn);
   flora__sqlite_catalog_free(conn->catalog);
   sqlite3_close(conn->db);
   bson_free(conn);
}

static sq_conn_t *
conn_open(sq_engine_t *eng, flora_error_t *error)
{
   sq_conn_t *conn = bson_malloc0(sizeof *conn);
   int rc = sqlite3_open_v2(eng->path, &conn->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
   if (rc != SQLITE_OK) {
      flora__sqlite_error(conn, rc, "open", error);
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_CONNECTION, "cannot open %s: %s",
                      eng->path, conn->db ? sqlite3_errmsg(conn->db) : sqlite3_errstr(rc));
      conn_close(conn);
      return NULL;
   }
   sqlite3_busy_timeout(conn->db, eng->busy_timeout_ms);
   sqlite3_extended_result_codes(conn->db, 1);
   if ((!eng->memory && !flora__sqlite_exec(conn, "PRAGMA journal_mode=WAL", error)) ||
       !flora__sqlite_exec(conn, "PRAGMA synchronous=NORMAL", error) ||
       !flora__sqlite_exec(conn, "PRAGMA foreign_keys=OFF", error)) {
      conn_close(conn);
      return NULL;
   }
   return conn;
}

/* Waits for a free connection at most the busy timeout (a transaction callback that calls
 * the outer store on a one-connection :memory: database would otherwise wait forever). */
static sq_conn_t *
pool_acquire_timed(sq_engine_t *eng, flora_error_t *error)
{
   sq_conn_t *conn;
   struct timespec ts;
   int rc = 0;

   clock_gettime(CLOCK_REALTIME, &ts);
   ts.tv_sec += eng->busy_timeout_ms / 1000;
   ts.tv_nsec += (long) (eng->busy_timeout_ms % 1000) * 1000000L;
   if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
   }
   pthread_mutex_lock(&eng->pool_lock);
   while (!eng->free_list && rc != ETIMEDOUT) {
      rc = pthread_cond_timedwait(&eng->pool_cond, &eng->pool_lock, &ts);
   }
   conn = eng->free_list;
   if (conn) {
      eng->free_list = conn->next_free;
   }
   pthread_mutex_unlock(&eng->pool_lock);
   if (!conn) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_LOCK_TIMEOUT,
                      "no free database connection after %d ms (pool of %zu)",
                      eng->busy_timeout_ms, eng->n_conns);
   }
   return conn;
}

static sq_conn_t *
pool_acquire(sq_engine_t *eng)
{
   sq_conn_t *conn;
   pthread_mutex_lock(&eng->pool_lock);
   while (!eng->free_list) {
      pthread_cond_wait(&eng->pool_cond, &eng->pool_lock);
   }
   conn = eng->free_list;
   eng->free_list = conn->next_free;
   pthread_mutex_unlock(&eng->pool_lock);
   return conn;
}

static void
pool_release(sq_engine_t *eng, sq_conn_t *conn)
{
   pthread_mutex_lock(&eng->pool_lock);
   conn->next_free = eng->free_list;
   eng->free_list = conn;
   pthread_cond_signal(&eng->pool_cond);
   pthread_mutex_unlock(&eng->pool_lock);
}

/* ---- operation context ---------------------------------------------------------------- */

typedef struct sq_ctx {
   sq_engine_t *eng;
   sq_conn_t *conn;
   bool own;   /* began its own transaction on a pooled connection */
   bool write;
   const sq_coll_t *bumped; /* the collection whose change counter this op bumped */
} sq_ctx_t;

static sq_engine_t *
engine_of(flora_store_t *store)
{
   return store->in_txn ? ((sq_txn_t *) store->impl)->eng : (sq_engine_t *) store->impl;
}

static bool
ctx_begin(flora_store_t *store, bool write, sq_ctx_t *c, flora_error_t *error)
{
   memset(c, 0, sizeof *c);
   c->eng = engine_of(store);
   c->write = write;
   if (store->in_txn) {
      c->conn = ((sq_txn_t *) store->impl)->conn;
      return !write || flora__sqlite_control(c->conn, "SAVEPOINT flora_op", error);
   }
   c->conn = pool_acquire_timed(c->eng, error);
   if (!c->conn) {
      return false;
   }
   c->own = true;
   if (!flora__sqlite_control(c->conn, write ? "BEGIN IMMEDIATE" : "BEGIN", error)) {
      pool_release(c->eng, c->conn);
      c->conn = NULL;
      return false;
   }
   return true;
}

/* Commits (commit true) or rolls back the operation's work; false when the commit failed. */
static bool
ctx_end(sq_ctx_t *c, bool commit, flora_error_t *error)
{
   bool ok = true;
   if (!c->conn) {
      return false;
   }
   if (c->own) {
      if (commit) {
         ok = flora__sqlite_control(c->conn, "COMMIT", error);
      }
      if (!commit || !ok) {
         flora__sqlite_control(c->conn, "ROLLBACK", NULL);
         flora__sqlite_catalog_invalidate(c->conn);
      }
      pool_release(c->eng, c->conn);
   } else if (c->write) {
      if (!commit) {
         flora__sqlite_control(c->conn, "ROLLBACK TO flora_op", NULL);
         flora__sqlite_catalog_invalidate(c->conn);
      }
      ok = flora__sqlite_control(c->conn, "RELEASE flora_op", error);
   }
   c->conn = NULL;
   return ok;
}

/* Finds the collection; with create, creates it (catalog row and table) when missing. */
static bool
get_coll(sq_ctx_t *c, const char *name, bool create, const bson_t *opts, sq_coll_t **out,
         flora_error_t *error)
{
   sq_catalog_t *cat = flora__sqlite_catalog(c->conn, error);
   sqlite3_stmt *st;
   char *hex;
   char sql[1024];
   int rc;

   *out = NULL;
   if (!cat) {
      return false;
   }
   *out = flora__sqlite_catalog_find(cat, name);
   if (*out || !create) {
      return true;
   }
   if (!flora__sqlite_check_coll_name(name, error)) {
      return false;
   }
   st = flora__sqlite_stmt(c->conn, "INSERT INTO flora_collections(name, options) VALUES (?, ?)",
                           error);
   if (!st) {
      return false;
   }
   sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
   if (opts) {
      sqlite3_bind_blob(st, 2, bson_get_data(opts), (int) opts->len, SQLITE_TRANSIENT);
   }
   rc = sqlite3_step(st);
   sqlite3_reset(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(c->conn, rc, "create collection", error);
      return false;
   }
   hex = hex_name(name);
   snprintf(sql, sizeof sql,
            "CREATE TABLE \"c_%s\"(rid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, "
            "doc BLOB NOT NULL)",
            hex);
   bson_free(hex);
   if (!flora__sqlite_exec(c->conn, sql, error)) {
      return false;
   }
   cat = flora__sqlite_catalog(c->conn, error);
   if (!cat) {
      return false;
   }
   *out = flora__sqlite_catalog_find(cat, name);
   return *out != NULL;
}

/* ---- documents ---------------------------------------------------------------------- */

static bool
id_key(const bson_t *doc, sq_buf_t *key, bson_value_t *id_out, flora_error_t *error)
{
   bson_iter_t it;
   key->len = 0;
   if (!bson_iter_init_find(&it, doc, "_id")) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INVALID_ID_FIELD,
                      "document has no _id");
      return false;
   }
   if (BSON_ITER_HOLDS_ARRAY(&it) || BSON_ITER_HOLDS_REGEX(&it) ||
       bson_iter_type(&it) == BSON_TYPE_UNDEFINED) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INVALID_ID_FIELD,
                      "The '_id' value cannot be of type %s",
                      BSON_ITER_HOLDS_ARRAY(&it) ? "array" : "regex");
      return false;
   }
   flora__sqlite_key_append(key, bson_iter_value(&it), false);
   if (id_out) {
      bson_value_copy(bson_iter_value(&it), id_out);
   }
   return true;
}

static void
dup_id_error(sq_engine_t *eng, const char *coll, const bson_t *doc, flora_error_t *error)
{
   bson_iter_t it;
   bson_t k = BSON_INITIALIZER;
   char *json;
   if (bson_iter_init_find(&it, doc, "_id")) {
      bson_append_value(&k, "v", 1, bson_iter_value(&it));
   }
   /* MongoDB's wording: dup key: { _id: VALUE }; json is '{ "v" : VALUE }' */
   json = bson_as_relaxed_extended_json(&k, NULL);
   if (json && strlen(json) > 10) {
      json[strlen(json) - 2] = '\0';
   }
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_DUPLICATE_KEY,
                   "E11000 duplicate key error collection: %s.%s index: _id_ dup key: { _id: %s }",
                   eng->db_name, coll, json && strlen(json) > 8 ? json + 8 : "null");
   bson_free(json);
   bson_destroy(&k);
}

bool
flora__sqlite_bump(sq_conn_t *conn, const char *coll, flora_error_t *error)
{
   sqlite3_stmt *st = flora__sqlite_stmt(conn,
                                         "INSERT INTO flora_changes(coll, version) VALUES (?, 1) "
                                         "ON CONFLICT(coll) DO UPDATE SET version = version + 1",
                                         error);
   int rc;

   if (!st) {
      return false;
   }
   sqlite3_bind_text(st, 1, coll, -1, SQLITE_STATIC);
   rc = sqlite3_step(st);
   sqlite3_reset(st);
   sqlite3_clear_bindings(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(conn, rc, "change counter", error);
      return false;
   }
   return true;
}

static bool
sq_collection_versions(flora_store_t *store, const char *const *colls, size_t n, int64_t *versions,
                       flora_error_t *error)
{
   sq_ctx_t c;
   sq_conn_t *conn;
   sqlite3_stmt *st;
   bool ok, own = !store->in_txn;
   int rc;

   /* Hot path of every cached read: outside a transaction each SELECT is its own read
    * (autocommit), which saves a BEGIN and a COMMIT; the numbers only ever grow, so reading
    * them one by one can only make a cache miss, never serve stale data. */
   if (own) {
      conn = pool_acquire_timed(engine_of(store), error);
      if (!conn) {
         return false;
      }
   } else {
      if (!ctx_begin(store, false, &c, error)) {
         return false;
      }
      conn = c.conn;
   }
   st = flora__sqlite_stmt(conn, "SELECT version FROM flora_changes WHERE coll = ?", error);
   ok = st != NULL;
   for (size_t i = 0; ok && i < n; i++) {
      sqlite3_bind_text(st, 1, colls[i], -1, SQLITE_STATIC);
      rc = sqlite3_step(st);
      versions[i] = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
      ok = rc == SQLITE_ROW || rc == SQLITE_DONE;
      if (!ok) {
         flora__sqlite_error(conn, rc, "change counter", error);
      }
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
   }
   if (own) {
      pool_release(engine_of(store), conn);
      return ok;
   }
   return ctx_end(&c, ok, error) && ok;
}

/* Writes one document change with its index entries, all or nothing: insert (old NULL,
 * *rid set), replace (both) or delete (new_doc NULL). */
static bool
write_doc(sq_ctx_t *c, sq_coll_t *coll, int64_t *rid, const bson_t *old_doc, const bson_t *new_doc,
          flora_error_t *error)
{
   sqlite3_stmt *st = NULL;
   sq_buf_t key = SQ_BUF_INIT;
   /* with secondary indexes a document write is several statements: a savepoint makes
    * them one; alone, the collection row's statement is atomic by itself */
   bool savepoint = coll->n_indexes > 0 || c->bumped != coll;
   bool ok = false;
   int rc;

   if (savepoint && !flora__sqlite_control(c->conn, "SAVEPOINT flora_doc", error)) {
      return false;
   }

   if (!old_doc) {
      if (!id_key(new_doc, &key, NULL, error)) {
         goto cleanup;
      }
      st = flora__sqlite_stmtf(c->conn, error, "INSERT INTO \"%s\"(id, doc) VALUES (?, ?)",
                               coll->table);
      if (!st) {
         goto cleanup;
      }
      sqlite3_bind_blob(st, 1, key.data, (int) key.len, SQLITE_STATIC);
      sqlite3_bind_blob(st, 2, bson_get_data(new_doc), (int) new_doc->len, SQLITE_STATIC);
      rc = sqlite3_step(st);
      sqlite3_reset(st);
      if ((rc & 0xff) == SQLITE_CONSTRAINT) {
         dup_id_error(c->eng, coll->name, new_doc, error);
         goto cleanup;
      }
      if (rc != SQLITE_DONE) {
         flora__sqlite_error(c->conn, rc, "insert", error);
         goto cleanup;
      }
      *rid = sqlite3_last_insert_rowid(c->conn->db);
   } else if (new_doc) {
      st = flora__sqlite_stmtf(c->conn, error, "UPDATE \"%s\" SET doc = ? WHERE rid = ?",
                               coll->table);
      if (!st) {
         goto cleanup;
      }
      sqlite3_bind_blob(st, 1, bson_get_data(new_doc), (int) new_doc->len, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, *rid);
      rc = sqlite3_step(st);
      sqlite3_reset(st);
      if (rc != SQLITE_DONE) {
         flora__sqlite_error(c->conn, rc, "update", error);
         goto cleanup;
      }
   } else {
      st = flora__sqlite_stmtf(c->conn, error, "DELETE FROM \"%s\" WHERE rid = ?", coll->table);
      if (!st) {
         goto cleanup;
      }
      sqlite3_bind_int64(st, 1, *rid);
      rc = sqlite3_step(st);
      sqlite3_reset(st);
      if (rc != SQLITE_DONE) {
         flora__sqlite_error(c->conn, rc, "delete", error);
         goto cleanup;
      }
   }
   ok = flora__sqlite_index_write(c->eng, c->conn, coll, *rid, old_doc, new_doc, error);
   if (ok && c->bumped != coll) {
      /* once per operation, after its first successful write */
      ok = flora__sqlite_bump(c->conn, coll->name, error);
      c->bumped = ok ? coll : NULL;
   }
cleanup:
   if (st) {
      sqlite3_clear_bindings(st);
   }
   flora__sqlite_buf_free(&key);
   if (savepoint) {
      if (!ok) {
         flora__sqlite_control(c->conn, "ROLLBACK TO flora_doc", NULL);
      }
      flora__sqlite_control(c->conn, "RELEASE flora_doc", NULL);
   }
   return ok;
}

/* ---- options --------------------------------------------------------------------- */

static bool
opt_int64(const bson_t *opts, const char *name, int64_t *out)
{
   bson_iter_t it;
   if (opts && bson_iter_init_find(&it, opts, name) && BSON_ITER_HOLDS_NUMBER(&it)) {
      *out = bson_iter_as_int64(&it);
      return true;
   }
   return false;
}

static bool
opt_bool(const bson_t *opts, const char *name, bool dflt)
{
   bson_iter_t it;
   if (opts && bson_iter_init_find(&it, opts, name)) {
      return bson_iter_as_bool(&it);
   }
   return dflt;
}

/* A document-valued option borrowed into *out (static bson over the opts' bytes). */
static bool
opt_doc(const bson_t *opts, const char *name, bson_t *out)
{
   bson_iter_t it;
   const uint8_t *data;
   uint32_t len;
   if (opts && bson_iter_init_find(&it, opts, name) && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_iter_document(&it, &len, &data);
      return bson_init_static(out, data, len);
   }
   return false;
}

static void
query_from_opts(const bson_t *filter, const bson_t *opts, sq_query_t *q, bson_t *sort,
                bson_t *hint)
{
   bson_iter_t it;
   memset(q, 0, sizeof *q);
   q->filter = filter;
   if (opt_doc(opts, "sort", sort) && !bson_empty(sort)) {
      q->sort = sort;
   }
   if (opt_doc(opts, "hint", hint)) {
      q->hint = hint;
   } else if (opts && bson_iter_init_find(&it, opts, "hint") && BSON_ITER_HOLDS_UTF8(&it)) {
      q->hint_name = bson_iter_utf8(&it, NULL);
   }
   opt_int64(opts, "skip", &q->skip);
   if (opt_int64(opts, "limit", &q->limit) && q->limit < 0) {
      q->limit = -q->limit;
   }
   if (q->skip < 0) {
      q->skip = 0;
   }
}

/* ---- engine operations: admin ----------------------------------------------------------- */

static bool
sq_ping(flora_store_t *store, flora_error_t *error)
{
   sq_ctx_t c;
   if (!ctx_begin(store, false, &c, error)) {
      return false;
   }
   return ctx_end(&c, true, error);
}

static bool
sq_create_collection(flora_store_t *store, const char *coll, const bson_t *opts,
                     flora_error_t *error)
{
   sq_ctx_t c;
   sq_coll_t *sc = NULL;
   bool ok;

   if (!flora__sqlite_check_coll_name(coll, error) || !ctx_begin(store, true, &c, error)) {
      return false;
   }
   ok = get_coll(&c, coll, false, NULL, &sc, error);
   if (ok && sc) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_NAMESPACE_EXISTS,
                      "Collection %s.%s already exists.", c.eng->db_name, coll);
      ok = false;
   }
   ok = ok && get_coll(&c, coll, true, opts, &sc, error);
   return ctx_end(&c, ok, error) && ok;
}

static bool
drop_coll_tables(sq_ctx_t *c, sq_coll_t *sc, flora_error_t *error)
{
   char sql[1024];
   sqlite3_stmt *st;
   int rc;

   if (!flora__sqlite_bump(c->conn, sc->name, error)) {
      return false;
   }
   for (size_t i = 0; i < sc->n_indexes; i++) {
      snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS \"%s\"", sc->indexes[i]->table);
      if (!flora__sqlite_exec(c->conn, sql, error)) {
         return false;
      }
   }
   snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS \"%s\"", sc->table);
   if (!flora__sqlite_exec(c->conn, sql, error)) {
      return false;
   }
   st = flora__sqlite_stmt(c->conn, "DELETE FROM flora_indexes WHERE coll = ?", error);
   if (!st) {
      return false;
   }
   sqlite3_bind_text(st, 1, sc->name, -1, SQLITE_TRANSIENT);
   rc = sqlite3_step(st);
   sqlite3_reset(st);
   st = rc == SQLITE_DONE
           ? flora__sqlite_stmt(c->conn, "DELETE FROM flora_collections WHERE name = ?", error)
           : NULL;
   if (!st) {
      if (rc != SQLITE_DONE) {
         flora__sqlite_error(c->conn, rc, "drop collection", error);
      }
      return false;
   }
   sqlite3_bind_text(st, 1, sc->name, -1, SQLITE_TRANSIENT);
   rc = sqlite3_step(st);
   sqlite3_reset(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(c->conn, rc, "drop collection", error);
      return false;
   }
   return true;
}

static bool
sq_drop_collection(flora_store_t *store, const char *coll, flora_error_t *error)
{
   sq_ctx_t c;
   sq_coll_t *sc = NULL;
   bool ok;

   if (!ctx_begin(store, true, &c, error)) {
      return false;
   }
   ok = get_coll(&c, coll, false, NULL, &sc, error);
   if (ok && sc) {
      ok = drop_coll_tables(&c, sc, error);
      flora__sqlite_stmt_cache_clear(c.conn);
      flora__sqlite_catalog_invalidate(c.conn);
   }
   return ctx_end(&c, ok, error) && ok;
}

static bool
sq_list_collections(flora_store_t *store, bson_t *out, flora_error_t *error)
{
   sq_ctx_t c;
   sq_catalog_t *cat;
   uint32_t i = 0;

   bson_init(out);
   if (!ctx_begin(store, false, &c, error)) {
      return false;
   }
   cat = flora__sqlite_catalog(c.conn, error);
   for (sq_coll_t *sc = cat ? cat->colls : NULL; sc; sc = sc->next) {
      char k[16];
      const char *key;
      bson_uint32_to_string(i++, &key, k, sizeof k);
      BSON_APPEND_UTF8(out, key, sc->name);
   }
   return ctx_end(&c, cat != NULL, error) && cat != NULL;
}

static bool
same_key(const sq_index_t *a, const sq_index_t *b)
{
   bson_iter_t ia, ib;
   bson_t ka, kb;
   return opt_doc(a->spec, "key", &ka) && opt_doc(b->spec, "key", &kb) &&
          bson_iter_init(&ia, &ka) && bson_iter_init(&ib, &kb) && bson_equal(&ka, &kb);
}

static bool
create_one_index(sq_ctx_t *c, const char *coll, const bson_t *spec, flora_error_t *error)
{
   sq_index_t *ix = flora__sqlite_index_parse(spec, error);
   sq_coll_t *sc = NULL;
   sqlite3_stmt *st;
   int64_t num = 1;
   char table[512];
   bool ok = false;
   int rc;

   if (!ix || !get_coll(c, coll, true, NULL, &sc, error)) {
      goto cleanup;
   }
   if (strcmp(ix->name, "_id_") == 0) {
      ok = true; /* the _id index always exists */
      goto cleanup;
   }
   for (size_t i = 0; i < sc->n_indexes; i++) {
      sq_index_t *o = sc->indexes[i];
      if (strcmp(o->name, ix->name) == 0) {
         if (bson_equal(o->spec, ix->spec)) {
            ok = true;
            goto cleanup;
         }
         flora_error_set(error, FLORA_DOMAIN_STORE,
                         same_key(o, ix) ? FLORA_STORE_INDEX_OPTIONS_CONFLICT
                                         : FLORA_STORE_INDEX_KEY_SPECS_CONFLICT,
                         "An existing index has the same name as the requested index but a "
                         "different spec. Requested index: %s",
                         ix->name);
         goto cleanup;
      }
      if (o->text && ix->text) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INDEX_OPTIONS_CONFLICT,
                         "An equivalent index already exists with a different name and "
                         "options: only one text index per collection (%s exists)",
                         o->name);
         goto cleanup;
      }
      if (same_key(o, ix)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INDEX_OPTIONS_CONFLICT,
                         "Index already exists with a different name: %s", o->name);
         goto cleanup;
      }
      if (o->num >= num) {
         num = o->num + 1;
      }
   }
   ix->num = num;
   if (ix->text) {
      snprintf(table, sizeof table, "t_%s", sc->hex);
   } else {
      snprintf(table, sizeof table, "x_%s_%lld", sc->hex, (long long) num);
   }
   ix->table = bson_strdup(table);
   if (!flora__sqlite_index_build(c->eng, c->conn, sc, ix, error)) {
      goto cleanup;
   }
   st = flora__sqlite_stmt(
      c->conn, "INSERT INTO flora_indexes(coll, name, num, spec, multikey) VALUES (?, ?, ?, ?, ?)",
      error);
   if (!st) {
      goto cleanup;
   }
   sqlite3_bind_text(st, 1, coll, -1, SQLITE_TRANSIENT);
   sqlite3_bind_text(st, 2, ix->name, -1, SQLITE_TRANSIENT);
   sqlite3_bind_int64(st, 3, num);
   sqlite3_bind_blob(st, 4, bson_get_data(ix->spec), (int) ix->spec->len, SQLITE_TRANSIENT);
   sqlite3_bind_int(st, 5, ix->multikey ? 1 : 0);
   rc = sqlite3_step(st);
   sqlite3_reset(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(c->conn, rc, "create index", error);
      goto cleanup;
   }
   ok = true;
cleanup:
   flora__sqlite_index_free(ix);
   flora__sqlite_catalog_invalidate(c->conn);
   return ok;
}

static bool
sq_create_indexes(flora_store_t *store, const char *coll, const bson_t *specs,
                  flora_error_t *error)
{
   sq_ctx_t c;
   bson_iter_t it;
   bool ok = true;

   if (!flora__sqlite_check_coll_name(coll, error) || !ctx_begin(store, true, &c, error)) {
      return false;
   }
   if (!bson_iter_init(&it, specs)) {
      ok = false;
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "bad index specs");
   }
   while (ok && bson_iter_next(&it)) {
      bson_t spec;
      const uint8_t *data;
      uint32_t len;
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_TYPE_MISMATCH,
                         "index specification must be a document");
         ok = false;
         break;
      }
      bson_iter_document(&it, &len, &data);
      ok = bson_init_static(&spec, data, len) && create_one_index(&c, coll, &spec, error);
   }
   return ctx_end(&c, ok, error) && ok;
}

static bool
sq_list_indexes(flora_store_t *store, const char *coll, bson_t *out, flora_error_t *error)
{
   sq_ctx_t c;
   sq_coll_t *sc = NULL;
   bool ok;

   bson_init(out);
   if (!ctx_begin(store, false, &c, error)) {
      return false;
   }
   ok = get_coll(&c, coll, false, NULL, &sc, error);
   if (ok && !sc) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_NAMESPACE_NOT_FOUND,
                      "ns does not exist: %s.%s", c.eng->db_name, coll);
      ok = false;
   }
   if (ok) {
      bson_t id, key;
      BSON_APPEND_DOCUMENT_BEGIN(out, "0", &id);
      BSON_APPEND_INT32(&id, "v", 2);
      BSON_APPEND_DOCUMENT_BEGIN(&id, "key", &key);
      BSON_APPEND_INT32(&key, "_id", 1);
      bson_append_document_end(&id, &key);
      BSON_APPEND_UTF8(&id, "name", "_id_");
      bson_append_document_end(out, &id);
      for (size_t i = 0; i < sc->n_indexes; i++) {
         char k[16];
         const char *kp;
         bson_uint32_to_string((uint32_t) i + 1, &kp, k, sizeof k);
         BSON_APPEND_DOCUMENT(out, kp, sc->indexes[i]->spec);
      }
   }
   return ctx_end(&c, ok, error) && ok;
}

static bool
sq_drop_index(flora_store_t *store, const char *coll, const char *name, flora_error_t *error)
{
   sq_ctx_t c;
   sq_coll_t *sc = NULL;
   sq_index_t *ix = NULL;
   bool ok;

   if (strcmp(name, "_id_") == 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INVALID_OPTIONS,
                      "cannot drop _id index");
      return false;
   }
   if (!ctx_begin(store, true, &c, error)) {
      return false;
   }
   ok = get_coll(&c, coll, false, NULL, &sc, error);
   for (size_t i = 0; ok && sc && i < sc->n_indexes; i++) {
      if (strcmp(sc->indexes[i]->name, name) == 0) {
         ix = sc->indexes[i];
      }
   }
   if (ok && !sc) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_NAMESPACE_NOT_FOUND,
                      "ns not found %s.%s", c.eng->db_name, coll);
      ok = false;
   } else if (ok && !ix) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INDEX_NOT_FOUND,
                      "index not found with name [%s]", name);
      ok = false;
   }
   if (ok) {
      char sql[1024];
      sqlite3_stmt *st;
      snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS \"%s\"", ix->table);
      ok = flora__sqlite_exec(c.conn, sql, error);
      st = ok ? flora__sqlite_stmt(c.conn, "DELETE FROM flora_indexes WHERE coll = ? AND name = ?",
                                   error)
              : NULL;
      if (st) {
         int rc;
         sqlite3_bind_text(st, 1, coll, -1, SQLITE_TRANSIENT);
         sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
         rc = sqlite3_step(st);
         sqlite3_reset(st);
         if (rc != SQLITE_DONE) {
            flora__sqlite_error(c.conn, rc, "drop index", error);
            ok = false;
         }
      } else {
         ok = false;
      }
      flora__sqlite_stmt_cache_clear(c.conn);
      flora__sqlite_catalog_invalidate(c.conn);
   }
   return ctx_end(&c, ok, error) && ok;
}

/* ---- engine operations: writes --------------------------------------------------------- */

static void
append_array_value(bson_t *arr, uint32_t i, const bson_value_t *v)
{
   char k[16];
   const char *key;
   bson_uint32_to_string(i, &key, k, sizeof k);
   bson_append_value(arr, key, -1, v);
}

static bool
sq_insert(flora_store_t *store, const char *coll, const bson_t *const *docs, size_t n, bool ordered,
          bson_t *reply, flora_error_t *error)
{
   sq_ctx_t c;
   sq_coll_t *sc = NULL;
   bson_t ids = BSON_INITIALIZER, errs = BSON_INITIALIZER;
   uint32_t inserted = 0, n_errs = 0;
   bool ok = true;
   flora_error_t first;

   flora_error_clear(&first);
   if (reply) {
      bson_init(reply);
   }
   if (!ctx_begin(store, true, &c, error)) {
      bson_destroy(&ids);
      bson_destroy(&errs);
      return false;
   }
   if (!get_coll(&c, coll, true, NULL, &sc, error)) {
      ctx_end(&c, false, NULL);
      bson_destroy(&ids);
      bson_destroy(&errs);
      return false;
   }
   for (size_t i = 0; i < n; i++) {
      flora_error_t e;
      int64_t rid = 0;
      bson_iter_t it;
      flora_error_clear(&e);
      if (flora__store_validate(store, coll, docs[i], &e) &&
          write_doc(&c, sc, &rid, NULL, docs[i], &e)) {
         if (bson_iter_init_find(&it, docs[i], "_id")) {
            append_array_value(&ids, inserted, bson_iter_value(&it));
         }
         inserted++;
         continue;
      }
      if (ok) {
         first = e;
      }
      ok = false;
      {
         bson_t we;
         char k[16];
         const char *key;
         bson_uint32_to_string(n_errs++, &key, k, sizeof k);
         BSON_APPEND_DOCUMENT_BEGIN(&errs, key, &we);
         BSON_APPEND_INT32(&we, "index", (int32_t) i);
         BSON_APPEND_INT32(&we, "code", (int32_t) e.code);
         BSON_APPEND_UTF8(&we, "errmsg", e.message);
         bson_append_document_end(&errs, &we);
      }
      if (ordered || e.code == FLORA_STORE_LOCK_TIMEOUT) {
         break;
      }
      /* catalog may have been reloaded by a failed savepoint: look the collection up again */
      if (!get_coll(&c, coll, true, NULL, &sc, &e)) {
         break;
      }
   }
   {
      flora_error_t commit_error;
      if (!ctx_end(&c, true, &commit_error)) {
         /* nothing of the batch stayed */
         ok = false;
         inserted = 0;
         bson_reinit(&ids);
         first = commit_error;
      }
   }
   if (!ok && error) {
      *error = first;
   }
   if (reply) {
      BSON_APPEND_INT32(reply, "insertedCount", (int32_t) inserted);
      BSON_APPEND_ARRAY(reply, "insertedIds", &ids);
      if (n_errs) {
         BSON_APPEND_ARRAY(reply, "writeErrors", &errs);
      }
   }
   bson_destroy(&ids);
   bson_destroy(&errs);
   return ok;
}

/* Ensures a new document has an _id (a new ObjectId, first). */
static bson_t *
with_id(const bson_t *doc)
{
   bson_iter_t it;
   bson_t *out;
   bson_oid_t oid;
   if (bson_iter_init_find(&it, doc, "_id")) {
      return bson_copy(doc);
   }
   out = bson_new();
   bson_oid_init(&oid, NULL);
   BSON_APPEND_OID(out, "_id", &oid);
   bson_concat(out, doc);
   return out;
}

/* The document an upsert inserts (before validation), into *out (a new bson). */
static bool
upsert_doc(const flora_update_t *upd, const bson_t *filter, const bson_t *update_spec,
           bson_t **out, flora_error_t *error)
{
   bson_t seed, applied;
   bool modified = false;
   bool ok = false;

   *out = NULL;
   if (!flora_update_upsert_seed(filter, &seed, error)) {
      return false;
   }
   if (flora_update_is_replacement(upd)) {
      /* the replacement, with the filter's _id when it has none */
      bson_iter_t it;
      bson_t tmp = BSON_INITIALIZER;
      if (!bson_has_field(update_spec, "_id") && bson_iter_init_find(&it, &seed, "_id")) {
         bson_append_value(&tmp, "_id", 3, bson_iter_value(&it));
      }
      bson_concat(&tmp, update_spec);
      *out = with_id(&tmp);
      bson_destroy(&tmp);
      ok = true;
   } else if (flora_update_apply(upd, &seed, true, -1, flora__store_now_ms(), &applied, &modified,
                                 error)) {
      *out = with_id(&applied);
      bson_destroy(&applied);
      ok = true;
   }
   bson_destroy(&seed);
   return ok;
}

/* Applies the update to one fetched row; *changed when it wrote. */
static bool
update_row(sq_ctx_t *c, flora_store_t *store, sq_coll_t *sc, const flora_update_t *upd,
           const flora_matcher_t *matcher, sq_row_t *row, bson_t **new_doc, bool *changed,
           flora_error_t *error)
{
   bson_t out;
   bool modified = false;
   int pos = -1;

   *changed = false;
   if (new_doc) {
      *new_doc = NULL;
   }
   flora_matcher_match(matcher, row->doc, &pos);
   if (!flora_update_apply(upd, row->doc, false, pos, flora__store_now_ms(), &out, &modified,
                           error)) {
      return false;
   }
   if (modified) {
      if (!flora_document_check_storable(&out, error) ||
          !flora__store_validate(store, sc->name, &out, error) ||
          !write_doc(c, sc, &row->rid, row->doc, &out, error)) {
         bson_destroy(&out);
         return false;
      }
      *changed = true;
   }
   if (new_doc) {
      *new_doc = bson_copy(&out);
   }
   bson_destroy(&out);
   return true;
}

static bool
sq_update(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *update,
          const bson_t *opts, bool multi, bson_t *reply, flora_error_t *error)
{
   sq_ctx_t c;
   sq_coll_t *sc = NULL;
   flora_update_t *upd = NULL;
   flora_matcher_t *matcher = NULL;
   sq_rows_t rows = {0};
   sq_query_t q;
   bson_t sort, hint, af;
   bson_t *ins = NULL;
   bson_value_t upserted_id = {0};
   int32_t matched = 0, modified = 0, upserted = 0;
   bool began = false, ok = false;
   bson_iter_t it;

   if (reply) {
      bson_init(reply);
   }
   upd = flora_update_new(update, opt_doc(opts, "arrayFilters", &af) ? &af : NULL, error);
   if (!upd && opts && bson_iter_init_find(&it, opts, "arrayFilters") &&
       BSON_ITER_HOLDS_ARRAY(&it)) {
      const uint8_t *data;
      uint32_t len;
      bson_iter_array(&it, &len, &data);
      if (bson_init_static(&af, data, len)) {
         upd = flora_update_new(update, &af, error);
      }
   }
   matcher = upd ? flora_matcher_new(filter, error) : NULL;
   if (!matcher) {
      goto cleanup;
   }
   if (!ctx_begin(store, true, &c, error)) {
      goto cleanup;
   }
   began = true;
   query_from_opts(filter, opts, &q, &sort, &hint);
   q.skip = 0;
   q.limit = multi ? 0 : 1;
   if (!flora__sqlite_query(c.eng, c.conn, coll, &q, matcher, &rows, NULL, error)) {
      goto cleanup;
   }
   if (rows.len > 0 && !get_coll(&c, coll, false, NULL, &sc, error)) {
      goto cleanup;
   }
   for (size_t i = 0; i < rows.len; i++) {
      bool changed;
      if (!update_row(&c, store, sc, upd, matcher, &rows.items[i], NULL, &changed, error)) {
         goto cleanup;
      }
      matched++;
      modified += changed ? 1 : 0;
   }
   if (rows.len == 0 && opt_bool(opts, "upsert", false)) {
      int64_t rid = 0;
      if (!upsert_doc(upd, filter, update, &ins, error) ||
          !flora_document_check_storable(ins, error) ||
          !flora__store_validate(store, coll, ins, error) ||
          !get_coll(&c, coll, true, NULL, &sc, error) || !write_doc(&c, sc, &rid, NULL, ins, error)) {
         goto cleanup;
      }
      if (bson_iter_init_find(&it, ins, "_id")) {
         bson_value_copy(bson_iter_value(&it), &upserted_id);
      }
      upserted = 1;
   }
   ok = true;
cleanup:
   if (began && !ctx_end(&c, ok, ok ? error : NULL)) {
      ok = false;
   }
   if (reply && ok) {
      BSON_APPEND_INT32(reply, "matchedCount", matched);
      BSON_APPEND_INT32(reply, "modifiedCount", modified);
      BSON_APPEND_INT32(reply, "upsertedCount", upserted);
      if (upserted) {
         BSON_APPEND_VALUE(reply, "upsertedId", &upserted_id);
      }
   }
   if (upserted) {
      bson_value_destroy(&upserted_id);
   }
   bson_destroy(ins);
   flora__sqlite_rows_free(&rows);
   flora_matcher_destroy(matcher);
   flora_update_destroy(upd);
   return ok;
}

static bool
sq_remove(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
          bool multi, bson_t *reply, flora_error_t *error)
{
   sq_ctx_t c;
   sq_coll_t *sc = NULL;
   flora_matcher_t *matcher = NULL;
   sq_rows_t rows = {0};
   sq_query_t q;
   bson_t sort, hint;
   int32_t deleted = 0;
   bool began = false, ok = false;

   if (reply) {
      bson_init(reply);
   }
   matcher = flora_matcher_new(filter, error);
   if (!matcher || !ctx_begin(store, true, &c, error)) {
      goto cleanup;
   }
   began = true;
   query_from_opts(filter, opts, &q, &sort, &hint);
   q.skip = 0;
   q.limit = multi ? 0 : 1;
   if (!flora__sqlite_query(c.eng, c.conn, coll, &q, matcher, &rows, NULL, error)) {
      goto cleanup;
   }
   if (rows.len > 0 && !get_coll(&c, coll, false, NULL, &sc, error)) {
      goto cleanup;
   }
   for (size_t i = 0; i < rows.len; i++) {
      if (!write_doc(&c, sc, &rows.items[i].rid, rows.items[i].doc, NULL, error)) {
         goto cleanup;
      }
      deleted++;
   }
   ok = true;
cleanup:
   if (began && !ctx_end(&c, ok, ok ? error : NULL)) {
      ok = false;
   }
   if (reply && ok) {
      BSON_APPEND_INT32(reply, "deletedCount", deleted);
   }
   flora__sqlite_rows_free(&rows);
   flora_matcher_destroy(matcher);
   return ok;
}

static bool
project_into(const bson_t *opts, const bson_t *doc, const flora_matcher_t *matcher, bson_t *out,
             flora_error_t *error)
{
   bson_t proj;
   flora_projection_t *p;
   bool ok;
   if (!opt_doc(opts, "projection", &proj) || bson_empty(&proj)) {
      bson_copy_to(doc, out);
      return true;
   }
   p = flora_projection_new(&proj, error);
   if (!p) {
      bson_init(out);
      return false;
   }
   ok = flora_projection_apply(p, doc, matcher, out, error);
   flora_projection_destroy(p);
   return ok;
}

static bool
sq_find_and_modify(flora_store_t *store, const char *coll, const bson_t *filter,
                   const bson_t *update, bool remove, const bson_t *opts, bson_t *out,
                   bool *found, flora_error_t *error)
{
   sq_ctx_t c;
   sq_coll_t *sc = NULL;
   flora_update_t *upd = NULL;
   flora_matcher_t *matcher = NULL;
   sq_rows_t rows = {0};
   sq_query_t q;
   bson_t sort, hint, af;
   bson_t *result = NULL, *ins = NULL;
   bool began = false, ok = false, after = false;
   bson_iter_t it;

   if (out) {
      bson_init(out);
   }
   if (found) {
      *found = false;
   }
   if (!remove && !update) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "Either an update or remove=true must be specified");
      return false;
   }
   if (opts && bson_iter_init_find(&it, opts, "returnDocument") && BSON_ITER_HOLDS_UTF8(&it)) {
      after = strcmp(bson_iter_utf8(&it, NULL), "after") == 0;
   } else if (opts && bson_iter_init_find(&it, opts, "new")) {
      after = bson_iter_as_bool(&it);
   }
   if (!remove) {
      upd = flora_update_new(update, opt_doc(opts, "arrayFilters", &af) ? &af : NULL, error);
      if (!upd) {
         goto cleanup;
      }
   }
   matcher = flora_matcher_new(filter, error);
   if (!matcher || !ctx_begin(store, true, &c, error)) {
      goto cleanup;
   }
   began = true;
   query_from_opts(filter, opts, &q, &sort, &hint);
   q.skip = 0;
   q.limit = 1;
   if (!flora__sqlite_query(c.eng, c.conn, coll, &q, matcher, &rows, NULL, error)) {
      goto cleanup;
   }
   if (rows.len > 0) {
      if (!get_coll(&c, coll, false, NULL, &sc, error)) {
         goto cleanup;
      }
      if (remove) {
         if (!write_doc(&c, sc, &rows.items[0].rid, rows.items[0].doc, NULL, error)) {
            goto cleanup;
         }
         result = bson_copy(rows.items[0].doc);
      } else {
         bson_t *newdoc = NULL;
         bool changed;
         if (!update_row(&c, store, sc, upd, matcher, &rows.items[0], &newdoc, &changed, error)) {
            goto cleanup;
         }
         if (after) {
            result = newdoc;
         } else {
            result = bson_copy(rows.items[0].doc);
            bson_destroy(newdoc);
         }
      }
   } else if (!remove && opt_bool(opts, "upsert", false)) {
      int64_t rid = 0;
      if (!upsert_doc(upd, filter, update, &ins, error) ||
          !flora_document_check_storable(ins, error) ||
          !flora__store_validate(store, coll, ins, error) ||
          !get_coll(&c, coll, true, NULL, &sc, error) || !write_doc(&c, sc, &rid, NULL, ins, error)) {
         goto cleanup;
      }
      if (after) {
         result = ins;
         ins = NULL;
      }
   }
   ok = true;
cleanup:
   if (began && !ctx_end(&c, ok, ok ? error : NULL)) {
      ok = false;
   }
   if (ok && result) {
      if (found) {
         *found = true;
      }
      if (out) {
         bson_destroy(out);
         ok = project_into(opts, result, matcher, out, error);
      }
   }
   bson_destroy(result);
   bson_destroy(ins);
   flora__sqlite_rows_free(&rows);
   flora_matcher_destroy(matcher);
   flora_update_destroy(upd);
   return ok;
}

/* ---- engine operations: reads ---------------------------------------------------------- */

static bool
run_query(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
          bool no_docs, flora_matcher_t **matcher_out, sq_rows_t *rows, bson_t *explain,
          flora_error_t *error)
{
   sq_ctx_t c;
   sq_query_t q;
   bson_t sort, hint, proj;
   flora_matcher_t *matcher = flora_matcher_new(filter, error);
   bool ok;

   *matcher_out = matcher;
   if (!matcher || !ctx_begin(store, false, &c, error)) {
      return false;
   }
   query_from_opts(filter, opts, &q, &sort, &hint);
   q.want_scores = opt_doc(opts, "projection", &proj) || q.sort;
   q.no_docs = no_docs;
   ok = flora__sqlite_query(c.eng, c.conn, coll, &q, matcher, rows, explain, error);
   return ctx_end(&c, ok, ok ? error : NULL) && ok;
}

static bool
sq_find(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
        flora_cursor_t **out, flora_error_t *error)
{
   flora_matcher_t *matcher = NULL;
   sq_rows_t rows = {0};
   flora_docs_t docs = FLORA_DOCS_INIT;
   bson_t proj;
   flora_projection_t *p = NULL;
   bool ok = false;

   *out = NULL;
   if (!run_query(store, coll, filter, opts, false, &matcher, &rows, NULL, error)) {
      goto cleanup;
   }
   if (opt_doc(opts, "projection", &proj) && !bson_empty(&proj)) {
      p = flora_projection_new(&proj, error);
      if (!p) {
         goto cleanup;
      }
   }
   for (size_t i = 0; i < rows.len; i++) {
      if (p) {
         bson_t tmp;
         if (!flora_projection_apply(p, rows.items[i].doc, matcher, &tmp, error)) {
            bson_destroy(&tmp);
            goto cleanup;
         }
         flora_docs_append_owned(&docs, bson_copy(&tmp));
         bson_destroy(&tmp);
      } else if (bson_has_field(rows.items[i].doc, FLORA__TEXT_SCORE_FIELD)) {
         bson_t tmp;
         flora__text_score_strip(rows.items[i].doc, &tmp);
         flora_docs_append_owned(&docs, bson_copy(&tmp));
         bson_destroy(&tmp);
      } else {
         flora_docs_append_owned(&docs, rows.items[i].doc);
         rows.items[i].doc = NULL;
      }
   }
   *out = flora__cursor_from_docs(&docs);
   ok = true;
cleanup:
   flora_docs_clear(&docs);
   flora_projection_destroy(p);
   flora__sqlite_rows_free(&rows);
   flora_matcher_destroy(matcher);
   return ok;
}

static bool
sq_count(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
         int64_t *count, flora_error_t *error)
{
   flora_matcher_t *matcher = NULL;
   sq_rows_t rows = {0};
   bson_t o = BSON_INITIALIZER;
   int64_t v;
   bool ok;

   *count = 0;
   if (opt_int64(opts, "skip", &v)) {
      BSON_APPEND_INT64(&o, "skip", v);
   }
   if (opt_int64(opts, "limit", &v)) {
      BSON_APPEND_INT64(&o, "limit", v);
   }
   ok = run_query(store, coll, filter, &o, true, &matcher, &rows, NULL, error);
   if (ok) {
      *count = (int64_t) rows.len;
   }
   bson_destroy(&o);
   flora__sqlite_rows_free(&rows);
   flora_matcher_destroy(matcher);
   return ok;
}

typedef struct distinct_item {
   sq_buf_t key;
   bson_value_t value;
} distinct_item_t;

typedef struct distinct_set {
   distinct_item_t *items;
   size_t len, cap;
} distinct_set_t;

static void
distinct_add(void *ctx, const bson_value_t *v)
{
   distinct_set_t *set = ctx;
   distinct_item_t *it;
   if (v->value_type == BSON_TYPE_UNDEFINED) {
      return; /* an empty array contributes nothing */
   }
   if (set->len == set->cap) {
      set->cap = set->cap ? set->cap * 2 : 16;
      set->items = bson_realloc(set->items, sizeof *set->items * set->cap);
   }
   it = &set->items[set->len++];
   memset(&it->key, 0, sizeof it->key);
   flora__sqlite_key_append(&it->key, v, false);
   bson_value_copy(v, &it->value);
}

static int
distinct_cmp(const void *a, const void *b)
{
   const distinct_item_t *x = a, *y = b;
   size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
   int r = memcmp(x->key.data, y->key.data, n);
   if (r) {
      return r;
   }
   return x->key.len < y->key.len ? -1 : x->key.len > y->key.len;
}

static bool
sq_distinct(flora_store_t *store, const char *coll, const char *field, const bson_t *filter,
            bson_t *out, flora_error_t *error)
{
   flora_matcher_t *matcher = NULL;
   sq_rows_t rows = {0};
   distinct_set_t set = {0};
   bson_t empty = BSON_INITIALIZER;
   uint32_t n = 0;
   bool ok;

   bson_init(out);
   ok = run_query(store, coll, filter ? filter : &empty, NULL, false, &matcher, &rows, NULL, error);
   for (size_t i = 0; ok && i < rows.len; i++) {
      bool had_array;
      flora__sqlite_path_values(rows.items[i].doc, field, true, false, distinct_add, &set,
                                &had_array);
   }
   if (set.len) {
      qsort(set.items, set.len, sizeof *set.items, distinct_cmp);
   }
   for (size_t i = 0; i < set.len; i++) {
      if (ok && (i == 0 || distinct_cmp(&set.items[i - 1], &set.items[i]) != 0)) {
         append_array_value(out, n++, &set.items[i].value);
      }
   }
   for (size_t i = 0; i < set.len; i++) {
      flora__sqlite_buf_free(&set.items[i].key);
      bson_value_destroy(&set.items[i].value);
   }
   bson_free(set.items);
   bson_destroy(&empty);
   flora__sqlite_rows_free(&rows);
   flora_matcher_destroy(matcher);
   return ok;
}

/* $lookup: the documents of `collection` whose field equals value, on the aggregate's
 * connection (so inside its snapshot) and through an index on the field when there is one. */
typedef struct lookup_ctx {
   sq_engine_t *eng;
   sq_conn_t *conn;
} lookup_ctx_t;

static bool
lookup_fn(void *ctx, const char *collection, const char *field, const bson_value_t *value,
          flora_docs_t *out, flora_error_t *error)
{
   lookup_ctx_t *lc = ctx;
   bson_t filter = BSON_INITIALIZER, eq;
   flora_matcher_t *matcher;
   sq_rows_t rows = {0};
   sq_query_t q;
   bool ok;

   BSON_APPEND_DOCUMENT_BEGIN(&filter, field, &eq);
   BSON_APPEND_VALUE(&eq, "$eq", value);
   bson_append_document_end(&filter, &eq);
   matcher = flora_matcher_new(&filter, error);
   memset(&q, 0, sizeof q);
   q.filter = &filter;
   ok = matcher && flora__sqlite_query(lc->eng, lc->conn, collection, &q, matcher, &rows, NULL,
                                       error);
   for (size_t i = 0; ok && i < rows.len; i++) {
      flora_docs_append_owned(out, rows.items[i].doc);
      rows.items[i].doc = NULL;
   }
   flora__sqlite_rows_free(&rows);
   flora_matcher_destroy(matcher);
   bson_destroy(&filter);
   return ok;
}

static bool
sq_aggregate(flora_store_t *store, const char *coll, const bson_t *pipeline, const bson_t *opts,
             flora_cursor_t **out, flora_error_t *error)
{
   flora_pipeline_t *pl = flora_pipeline_new(pipeline, error);
   const bson_t *match = NULL, *sort = NULL;
   bson_t empty = BSON_INITIALIZER;
   flora_matcher_t *matcher = NULL;
   flora_docs_t docs = FLORA_DOCS_INIT, result = FLORA_DOCS_INIT;
   sq_rows_t rows = {0};
   sq_query_t q;
   sq_ctx_t c;
   size_t skip;
   bool began = false, ok = false;

   (void) opts;
   *out = NULL;
   if (!pl) {
      goto cleanup;
   }
   skip = flora_pipeline_prefix(pl, &match, &sort);
   matcher = flora_matcher_new(match ? match : &empty, error);
   if (!matcher || !ctx_begin(store, false, &c, error)) {
      goto cleanup;
   }
   began = true;
   memset(&q, 0, sizeof q);
   q.filter = match ? match : &empty;
   q.sort = sort;
   if (!flora__sqlite_query(c.eng, c.conn, coll, &q, matcher, &rows, NULL, error)) {
      goto cleanup;
   }
   for (size_t i = 0; i < rows.len; i++) {
      flora_docs_append_owned(&docs, rows.items[i].doc);
      rows.items[i].doc = NULL;
   }
   {
      lookup_ctx_t lc = {c.eng, c.conn};
      if (!flora_pipeline_run(pl, skip, &docs, lookup_fn, &lc, flora__store_now_ms(), &result,
                              error)) {
         goto cleanup;
      }
   }
   ok = true;
cleanup:
   if (began && !ctx_end(&c, ok, ok ? error : NULL)) {
      ok = false;
   }
   if (ok) {
      *out = flora__cursor_from_docs(&result);
   }
   flora_docs_clear(&docs);
   flora_docs_clear(&result);
   flora__sqlite_rows_free(&rows);
   flora_matcher_destroy(matcher);
   flora_pipeline_destroy(pl);
   bson_destroy(&empty);
   return ok;
}

static bool
sq_explain(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
           bson_t *out, flora_error_t *error)
{
   flora_matcher_t *matcher = NULL;
   sq_rows_t rows = {0};
   bool ok;

   bson_init(out);
   ok = run_query(store, coll, filter, opts, false, &matcher, &rows, out, error);
   flora__sqlite_rows_free(&rows);
   flora_matcher_destroy(matcher);
   return ok;
}

/* ---- transactions ----------------------------------------------------------------------- */

static bool
sq_transaction(flora_store_t *store, flora_txn_fn fn, void *ctx, flora_error_t *error)
{
   flora_store_t handle;
   sq_txn_t txn;
   bool ok;

   if (store->in_txn) {
      /* nested: a savepoint inside the running transaction */
      sq_txn_t *outer = store->impl;
      if (!flora__sqlite_control(outer->conn, "SAVEPOINT flora_nested", error)) {
         return false;
      }
      ok = fn(store, ctx, error);
      if (!ok) {
         flora__sqlite_control(outer->conn, "ROLLBACK TO flora_nested", NULL);
         flora__sqlite_catalog_invalidate(outer->conn);
      }
      flora__sqlite_control(outer->conn, "RELEASE flora_nested", NULL);
      return ok;
   }
   memset(&txn, 0, sizeof txn);
   txn.eng = store->impl;
   txn.conn = pool_acquire_timed(txn.eng, error);
   if (!txn.conn) {
      return false;
   }
   if (!flora__sqlite_control(txn.conn, "BEGIN IMMEDIATE", error)) {
      pool_release(txn.eng, txn.conn);
      return false;
   }
   memset(&handle, 0, sizeof handle);
   handle.engine = store->engine;
   handle.impl = &txn;
   handle.parent = store;
   handle.in_txn = true;
   handle.options = store->options;
   pthread_rwlock_init(&handle.validators_lock, NULL);
   ok = fn(&handle, ctx, error);
   if (ok) {
      ok = flora__sqlite_control(txn.conn, "COMMIT", error);
   }
   if (!ok) {
      flora__sqlite_control(txn.conn, "ROLLBACK", NULL);
      flora__sqlite_catalog_invalidate(txn.conn);
   }
   pthread_rwlock_destroy(&handle.validators_lock);
   pool_release(txn.eng, txn.conn);
   return ok;
}

/* ---- open / close ------------------------------------------------------------------------ */

static void
engine_free(sq_engine_t *eng)
{
   if (!eng) {
      return;
   }
   flora__sqlite_ttl_stop(eng);
   for (size_t i = 0; i < eng->n_conns; i++) {
      conn_close(eng->conns[i]);
   }
   bson_free(eng->conns);
   pthread_mutex_destroy(&eng->pool_lock);
   pthread_cond_destroy(&eng->pool_cond);
   pthread_mutex_destroy(&eng->ttl_lock);
   pthread_cond_destroy(&eng->ttl_cond);
   bson_free(eng->path);
   bson_free(eng->db_name);
   bson_free(eng);
}

static void
sq_close(flora_store_t *store)
{
   if (store && !store->in_txn) {
      engine_free(store->impl);
      store->impl = NULL;
   }
}

static const flora_store_engine_t sqlite_engine = {
   .name = "sqlite",
   .ping = sq_ping,
   .close = sq_close,
   .create_collection = sq_create_collection,
   .drop_collection = sq_drop_collection,
   .list_collections = sq_list_collections,
   .create_indexes = sq_create_indexes,
   .list_indexes = sq_list_indexes,
   .drop_index = sq_drop_index,
   .insert = sq_insert,
   .update = sq_update,
   .remove = sq_remove,
   .find_and_modify = sq_find_and_modify,
   .find = sq_find,
   .count = sq_count,
   .distinct = sq_distinct,
   .aggregate = sq_aggregate,
   .explain = sq_explain,
   .transaction = sq_transaction,
   .command = NULL,
   .collection_versions = sq_collection_versions,
};

static bool
init_schema(sq_conn_t *conn, flora_error_t *error)
{
   return flora__sqlite_exec(conn, "BEGIN IMMEDIATE", error) &&
          (flora__sqlite_exec(conn,
                              "CREATE TABLE IF NOT EXISTS flora_collections("
                              "name TEXT PRIMARY KEY, options BLOB);"
                              "CREATE TABLE IF NOT EXISTS flora_indexes("
                              "coll TEXT NOT NULL, name TEXT NOT NULL, num INTEGER NOT NULL, "
                              "spec BLOB NOT NULL, multikey INTEGER NOT NULL DEFAULT 0, "
                              "PRIMARY KEY(coll, name));"
                              "CREATE TABLE IF NOT EXISTS flora_changes("
                              "coll TEXT PRIMARY KEY, version INTEGER NOT NULL)",
                              error)
              ? flora__sqlite_exec(conn, "COMMIT", error)
              : (sqlite3_exec(conn->db, "ROLLBACK", NULL, NULL, NULL), false));
}

bool
flora__store_sqlite_open(flora_store_t *store, const char *uri, flora_error_t *error)
{
   sq_engine_t *eng = NULL;
   const char *path;
   size_t pool;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(uri);
   if (strncmp(uri, "sqlite:", 7) != 0 || uri[7] == '\0') {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "bad sqlite URI '%s' (expected sqlite:PATH or sqlite::memory:)", uri);
      return false;
   }
   path = uri + 7;
   eng = bson_malloc0(sizeof *eng);
   pthread_mutex_init(&eng->pool_lock, NULL);
   pthread_cond_init(&eng->pool_cond, NULL);
   pthread_mutex_init(&eng->ttl_lock, NULL);
   pthread_cond_init(&eng->ttl_cond, NULL);
   eng->memory = strcmp(path, ":memory:") == 0;
   eng->path = bson_strdup(path);
   eng->db_name = bson_strdup(SQ_DEFAULT_DB);
   eng->busy_timeout_ms = store->options.busy_timeout_ms > 0 ? store->options.busy_timeout_ms : 5000;
   /* a private in-memory database lives in one connection */
   pool = eng->memory ? 1 : (store->options.pool_size > 0 ? (size_t) store->options.pool_size : 16);
   eng->conns = bson_malloc0(sizeof *eng->conns * pool);
   for (size_t i = 0; i < pool; i++) {
      sq_conn_t *conn = conn_open(eng, error);
      if (!conn) {
         goto fail;
      }
      eng->conns[eng->n_conns++] = conn;
      if (i == 0 && !init_schema(conn, error)) {
         goto fail;
      }
      conn->next_free = eng->free_list;
      eng->free_list = conn;
   }
   if (store->options.ttl_sweep_interval_s > 0 &&
       !flora__sqlite_ttl_start(eng, store->options.ttl_sweep_interval_s, error)) {
      goto fail;
   }
   store->engine = &sqlite_engine;
   store->impl = eng;
   return true;
fail:
   engine_free(eng);
   return false;
}

sq_conn_t *
flora__sqlite_pool_acquire(sq_engine_t *eng)
{
   return pool_acquire(eng);
}

void
flora__sqlite_pool_release(sq_engine_t *eng, sq_conn_t *conn)
{
   pool_release(eng, conn);
}
