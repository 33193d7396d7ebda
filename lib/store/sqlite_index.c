/* Index specs and index maintenance of the embedded engine, with MongoDB's semantics
 * (MongoDB manual, "Indexes": compound, multikey, unique, partial, sparse, TTL, text):
 *   - a compound key is the concatenation of its fields' encodings (sqlite_keys.c), a
 *     descending field's bytes inverted;
 *   - multikey: an array field gives one key per element (cartesian across fields); two
 *     array fields in one compound key fail with 171 "cannot index parallel arrays"; a
 *     document's own duplicate keys are stored once;
 *   - a missing field indexes as null; a sparse index skips documents lacking every key
 *     field; a partial index holds only documents matching partialFilterExpression;
 *   - unique: the index table's primary key is the key, so SQLite enforces it; a clash is
 *     code 11000 with MongoDB's message;
 *   - TTL: a sweeper thread deletes documents whose indexed date (the earliest, for an
 *     array) is older than expireAfterSeconds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flora/text.h"
#include "store/sqlite_private.h"

/* ---- specs -------------------------------------------------------------------------- */

void
flora__sqlite_index_free(sq_index_t *ix)
{
   if (!ix) {
      return;
   }
   bson_free(ix->name);
   bson_destroy(ix->spec);
   bson_free(ix->table);
   for (size_t i = 0; i < ix->n_fields; i++) {
      bson_free(ix->fields[i]);
   }
   bson_free(ix->fields);
   bson_free(ix->dirs);
   flora_matcher_destroy(ix->partial);
   bson_destroy(ix->partial_spec);
   bson_free(ix->language);
   bson_free(ix);
}

static void
add_field(sq_index_t *ix, const char *name, int dir)
{
   for (size_t i = 0; i < ix->n_fields; i++) {
      if (strcmp(ix->fields[i], name) == 0) {
         ix->dirs[i] = dir;
         return;
      }
   }
   ix->fields = bson_realloc(ix->fields, sizeof *ix->fields * (ix->n_fields + 1));
   ix->dirs = bson_realloc(ix->dirs, sizeof *ix->dirs * (ix->n_fields + 1));
   ix->fields[ix->n_fields] = bson_strdup(name);
   ix->dirs[ix->n_fields] = dir;
   ix->n_fields++;
}

static bool
bad(flora_error_t *error, uint32_t code, const char *msg, const char *arg)
{
   flora_error_set(error, FLORA_DOMAIN_STORE, code, msg, arg);
   return false;
}

sq_index_t *
flora__sqlite_index_parse(const bson_t *spec, flora_error_t *error)
{
   sq_index_t *ix = bson_malloc0(sizeof *ix);
   bson_iter_t it, kit;
   bson_t key, weights;
   const uint8_t *data;
   uint32_t len;
   char name[512] = "";
   size_t name_len = 0;

   ix->expire_after_s = -1;
   if (!bson_iter_init_find(&it, spec, "key") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bad(error, FLORA_STORE_FAILED_TO_PARSE, "index specification has no key document%s", "");
      goto fail;
   }
   bson_iter_document(&it, &len, &data);
   if (!bson_init_static(&key, data, len) || bson_empty(&key)) {
      bad(error, 67, "Index keys cannot be empty.%s", "");
      goto fail;
   }
   bson_iter_init(&kit, &key);
   while (bson_iter_next(&kit)) {
      const char *f = bson_iter_key(&kit);
      int dir = 0;
      char part[256];
      if (BSON_ITER_HOLDS_UTF8(&kit)) {
         if (strcmp(bson_iter_utf8(&kit, NULL), "text") != 0) {
            bad(error, FLORA_STORE_BAD_VALUE,
                "index type '%s' is not supported by the embedded engine",
                bson_iter_utf8(&kit, NULL));
            goto fail;
         }
         ix->text = true;
         add_field(ix, f, 1);
         snprintf(part, sizeof part, "%s%s_text", name_len ? "_" : "", f);
      } else if (BSON_ITER_HOLDS_NUMBER(&kit)) {
         double d = bson_iter_as_double(&kit);
         if (d == 0 || d != d) {
            bad(error, 67, "Values in the index key pattern can't be 0 (field %s)", f);
            goto fail;
         }
         dir = d > 0 ? 1 : -1;
         add_field(ix, f, dir);
         snprintf(part, sizeof part, "%s%s_%d", name_len ? "_" : "", f, dir);
      } else {
         bad(error, 67, "bad index key pattern for field %s", f);
         goto fail;
      }
      if (strlen(f) == 0 || f[0] == '$') {
         bad(error, 67, "bad index key field name '%s'", f);
         goto fail;
      }
      if (name_len + strlen(part) < sizeof name) {
         memcpy(name + name_len, part, strlen(part) + 1);
         name_len += strlen(part);
      }
   }
   if (ix->text) {
      for (size_t i = 0; i < ix->n_fields; i++) {
         if (ix->dirs[i] != 1 || !bson_iter_init_find(&kit, &key, ix->fields[i]) ||
             !BSON_ITER_HOLDS_UTF8(&kit)) {
            bad(error, FLORA_STORE_BAD_VALUE,
                "compound text indexes are not supported by the embedded engine (%s)",
                ix->fields[i]);
            goto fail;
         }
      }
      if (bson_iter_init_find(&it, spec, "weights") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
         bson_iter_document(&it, &len, &data);
         if (bson_init_static(&weights, data, len) && bson_iter_init(&kit, &weights)) {
            while (bson_iter_next(&kit)) {
               int w = (int) bson_iter_as_int64(&kit);
               if (!BSON_ITER_HOLDS_NUMBER(&kit) || w < 1 || w > 99999) {
                  bad(error, FLORA_STORE_BAD_VALUE, "bad weight for field %s",
                      bson_iter_key(&kit));
                  goto fail;
               }
               add_field(ix, bson_iter_key(&kit), w);
            }
         }
      }
      ix->language = bson_strdup("english");
      if (bson_iter_init_find(&it, spec, "default_language") && BSON_ITER_HOLDS_UTF8(&it)) {
         bson_free(ix->language);
         ix->language = bson_strdup(bson_iter_utf8(&it, NULL));
      }
      if (!flora_text_language_supported(ix->language)) {
         bad(error, 17262, "language override unsupported: %s", ix->language);
         goto fail;
      }
   }
   if (bson_iter_init_find(&it, spec, "name")) {
      if (!BSON_ITER_HOLDS_UTF8(&it) || bson_iter_utf8(&it, NULL)[0] == '\0') {
         bad(error, FLORA_STORE_BAD_VALUE, "index name must be a non-empty string%s", "");
         goto fail;
      }
      ix->name = bson_strdup(bson_iter_utf8(&it, NULL));
   } else {
      ix->name = bson_strdup(name);
   }
   ix->unique = bson_iter_init_find(&it, spec, "unique") && bson_iter_as_bool(&it);
   ix->sparse = bson_iter_init_find(&it, spec, "sparse") && bson_iter_as_bool(&it);
   if (ix->text && ix->unique) {
      bad(error, 67, "a text index cannot be unique (%s)", ix->name);
      goto fail;
   }
   if (bson_iter_init_find(&it, spec, "expireAfterSeconds")) {
      if (!BSON_ITER_HOLDS_NUMBER(&it) || bson_iter_as_int64(&it) < 0 || ix->n_fields != 1 ||
          ix->text) {
         bad(error, FLORA_STORE_BAD_VALUE,
             "TTL index %s: expireAfterSeconds must be a non-negative number on a single field",
             ix->name);
         goto fail;
      }
      ix->expire_after_s = bson_iter_as_int64(&it);
   }
   if (bson_iter_init_find(&it, spec, "partialFilterExpression")) {
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         bad(error, FLORA_STORE_TYPE_MISMATCH, "partialFilterExpression must be a document%s", "");
         goto fail;
      }
      bson_iter_document(&it, &len, &data);
      ix->partial_spec = bson_new_from_data(data, len);
      ix->partial = flora_matcher_new(ix->partial_spec, error);
      if (!ix->partial) {
         goto fail;
      }
   }
   /* the spec as listIndexes shows it */
   ix->spec = bson_new();
   BSON_APPEND_INT32(ix->spec, "v", 2);
   BSON_APPEND_DOCUMENT(ix->spec, "key", &key);
   BSON_APPEND_UTF8(ix->spec, "name", ix->name);
   if (ix->unique) {
      BSON_APPEND_BOOL(ix->spec, "unique", true);
   }
   if (ix->sparse) {
      BSON_APPEND_BOOL(ix->spec, "sparse", true);
   }
   if (ix->partial_spec) {
      BSON_APPEND_DOCUMENT(ix->spec, "partialFilterExpression", ix->partial_spec);
   }
   if (ix->expire_after_s >= 0) {
      BSON_APPEND_INT64(ix->spec, "expireAfterSeconds", ix->expire_after_s);
   }
   if (ix->text) {
      bson_t w;
      BSON_APPEND_DOCUMENT_BEGIN(ix->spec, "weights", &w);
      for (size_t i = 0; i < ix->n_fields; i++) {
         BSON_APPEND_INT32(&w, ix->fields[i], ix->dirs[i]);
      }
      bson_append_document_end(ix->spec, &w);
      BSON_APPEND_UTF8(ix->spec, "default_language", ix->language);
   }
   return ix;
fail:
   flora__sqlite_index_free(ix);
   return NULL;
}

/* ---- path values ---------------------------------------------------------------------- */

typedef struct walk {
   bool unwind;
   bool missing_as_null;
   bool had_array;
   size_t found;
   sq_value_fn fn;
   void *ctx;
} walk_t;

static void
emit(walk_t *w, const bson_value_t *v)
{
   w->fn(w->ctx, v);
}

static void
missing(walk_t *w)
{
   if (w->missing_as_null) {
      bson_value_t v;
      memset(&v, 0, sizeof v);
      v.value_type = BSON_TYPE_NULL;
      emit(w, &v);
   }
}

static void
walk_doc(const uint8_t *data, uint32_t len, const char *path, walk_t *w)
{
   const char *dot = strchr(path, '.');
   size_t n = dot ? (size_t) (dot - path) : strlen(path);
   bson_t doc;
   bson_iter_t it;
   const bson_value_t *v;

   if (!bson_init_static(&doc, data, len) || !bson_iter_init(&it, &doc) ||
       !bson_iter_find_w_len(&it, path, (int) n)) {
      missing(w);
      return;
   }
   v = bson_iter_value(&it);
   if (!dot) {
      w->found++;
      if (v->value_type == BSON_TYPE_ARRAY && w->unwind) {
         bson_iter_t ai;
         bson_t arr;
         bool any = false;
         w->had_array = true;
         if (bson_init_static(&arr, v->value.v_doc.data, v->value.v_doc.data_len) &&
             bson_iter_init(&ai, &arr)) {
            while (bson_iter_next(&ai)) {
               emit(w, bson_iter_value(&ai));
               any = true;
            }
         }
         if (!any) {
            bson_value_t u;
            memset(&u, 0, sizeof u);
            u.value_type = BSON_TYPE_UNDEFINED;
            emit(w, &u);
         }
      } else {
         emit(w, v);
      }
      return;
   }
   if (v->value_type == BSON_TYPE_DOCUMENT) {
      walk_doc(v->value.v_doc.data, v->value.v_doc.data_len, dot + 1, w);
   } else if (v->value_type == BSON_TYPE_ARRAY) {
      const char *rest = dot + 1;
      bson_iter_t ai;
      bson_t arr;
      bool any = false;
      w->had_array = true;
      if (rest[0] >= '0' && rest[0] <= '9') {
         /* a numeric component addresses an element (arrays are documents "0", "1", ...) */
         walk_doc(v->value.v_doc.data, v->value.v_doc.data_len, rest, w);
         return;
      }
      if (bson_init_static(&arr, v->value.v_doc.data, v->value.v_doc.data_len) &&
          bson_iter_init(&ai, &arr)) {
         while (bson_iter_next(&ai)) {
            any = true;
            if (BSON_ITER_HOLDS_DOCUMENT(&ai)) {
               const uint8_t *d;
               uint32_t l;
               bson_iter_document(&ai, &l, &d);
               walk_doc(d, l, rest, w);
            } else {
               missing(w);
            }
         }
      }
      if (!any) {
         missing(w);
      }
   } else {
      missing(w);
   }
}

void
flora__sqlite_path_values(const bson_t *doc, const char *path, bool unwind, bool missing_as_null,
                          sq_value_fn fn, void *ctx, bool *had_array)
{
   walk_t w = {unwind, missing_as_null, false, 0, fn, ctx};
   walk_doc(bson_get_data(doc), doc->len, path, &w);
   if (had_array) {
      *had_array = w.had_array;
   }
}

/* ---- keys of a document ------------------------------------------------------------------- */

typedef struct vlist {
   bson_value_t *items; /* shallow: point into the document */
   size_t len, cap;
} vlist_t;

static void
vlist_add(void *ctx, const bson_value_t *v)
{
   vlist_t *l = ctx;
   if (l->len == l->cap) {
      l->cap = l->cap ? l->cap * 2 : 4;
      l->items = bson_realloc(l->items, sizeof *l->items * l->cap);
   }
   l->items[l->len++] = *v;
}

typedef struct keyset {
   sq_buf_t *keys;
   size_t len, cap;
   bool multikey;
} keyset_t;

static void
keyset_free(keyset_t *ks)
{
   for (size_t i = 0; i < ks->len; i++) {
      flora__sqlite_buf_free(&ks->keys[i]);
   }
   bson_free(ks->keys);
   memset(ks, 0, sizeof *ks);
}

static int
key_cmp(const void *a, const void *b)
{
   const sq_buf_t *x = a, *y = b;
   size_t n = x->len < y->len ? x->len : y->len;
   int r = n ? memcmp(x->data, y->data, n) : 0;
   if (r) {
      return r;
   }
   return x->len < y->len ? -1 : x->len > y->len;
}

/* The sorted, deduplicated keys of doc in ix (none when sparse/partial exclude it). */
static bool
doc_keys(const sq_index_t *ix, const bson_t *doc, keyset_t *ks, flora_error_t *error)
{
   vlist_t *vals = bson_malloc0(sizeof *vals * ix->n_fields);
   size_t arrays = 0, total = 1, found_any = 0;
   bool ok = false;

   memset(ks, 0, sizeof *ks);
   if (!doc) {
      bson_free(vals);
      return true;
   }
   if (ix->partial && !flora_matcher_match(ix->partial, doc, NULL)) {
      ok = true;
      goto cleanup;
   }
   for (size_t f = 0; f < ix->n_fields; f++) {
      /* a missing field, and elements of an array that lack the path, index as null */
      walk_t w = {true, true, false, 0, vlist_add, &vals[f]};
      walk_doc(bson_get_data(doc), doc->len, ix->fields[f], &w);
      found_any += w.found;
      if (w.had_array) {
         arrays++;
         ks->multikey = true;
      }
      total *= vals[f].len;
   }
   if (arrays > 1) {
      flora_error_set(error, FLORA_DOMAIN_STORE, 171, "cannot index parallel arrays (index %s)",
                      ix->name);
      goto cleanup;
   }
   if (ix->sparse && found_any == 0) {
      ok = true;
      goto cleanup;
   }
   if (total > 1) {
      ks->multikey = true;
   }
   ks->keys = bson_malloc0(sizeof *ks->keys * total);
   for (size_t k = 0; k < total; k++) {
      size_t rest = k;
      for (size_t f = 0; f < ix->n_fields; f++) {
         size_t idx = rest % vals[f].len;
         rest /= vals[f].len;
         flora__sqlite_key_append(&ks->keys[k], &vals[f].items[idx], ix->dirs[f] < 0);
      }
   }
   ks->len = total;
   qsort(ks->keys, ks->len, sizeof *ks->keys, key_cmp);
   {
      size_t out = 0;
      for (size_t i = 0; i < ks->len; i++) {
         if (out > 0 && key_cmp(&ks->keys[out - 1], &ks->keys[i]) == 0) {
            flora__sqlite_buf_free(&ks->keys[i]);
            continue;
         }
         ks->keys[out++] = ks->keys[i];
      }
      ks->len = out;
   }
   ok = true;
cleanup:
   for (size_t f = 0; f < ix->n_fields; f++) {
      bson_free(vals[f].items);
   }
   bson_free(vals);
   return ok;
}

/* MongoDB's duplicate key message: "E11000 duplicate key error collection: db.coll index:
 * name dup key: { field: value }" (values in relaxed extended JSON). */
static void
dup_key_error(sq_engine_t *eng, const sq_coll_t *coll, const sq_index_t *ix, const sq_buf_t *key,
              const bson_t *doc, flora_error_t *error)
{
   char msg[400];
   size_t len = 0;
   vlist_t vals = {0};

   len += (size_t) snprintf(msg, sizeof msg, "{ ");
   for (size_t f = 0; f < ix->n_fields && len < sizeof msg; f++) {
      /* the field's value that produced this key component: re-encode candidates */
      walk_t w = {true, false, false, 0, vlist_add, &vals};
      const bson_value_t *pick = NULL;
      bson_value_t null_v;
      bson_t one = BSON_INITIALIZER;
      char *json;
      vals.len = 0;
      walk_doc(bson_get_data(doc), doc->len, ix->fields[f], &w);
      for (size_t i = 0; i < vals.len && !pick; i++) {
         sq_buf_t b = SQ_BUF_INIT;
         flora__sqlite_key_append(&b, &vals.items[i], ix->dirs[f] < 0);
         if (b.len <= key->len && memmem(key->data, key->len, b.data, b.len)) {
            pick = &vals.items[i];
         }
         flora__sqlite_buf_free(&b);
      }
      if (!pick) {
         memset(&null_v, 0, sizeof null_v);
         null_v.value_type = BSON_TYPE_NULL;
         pick = &null_v;
      }
      bson_append_value(&one, "v", 1, pick);
      json = bson_as_relaxed_extended_json(&one, NULL);
      /* json is '{ "v" : VALUE }' */
      if (json && strlen(json) > 10) {
         json[strlen(json) - 2] = '\0';
         len += (size_t) snprintf(msg + len, sizeof msg - len, "%s%s: %s", f ? ", " : "",
                                  ix->fields[f], json + 8);
      }
      bson_free(json);
      bson_destroy(&one);
   }
   if (len < sizeof msg) {
      snprintf(msg + len, sizeof msg - len, " }");
   }
   bson_free(vals.items);
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_DUPLICATE_KEY,
                   "E11000 duplicate key error collection: %s.%s index: %s dup key: %s",
                   eng->db_name, coll->name, ix->name, msg);
}

static bool
keys_insert(sq_engine_t *eng, sq_conn_t *conn, const sq_coll_t *coll, const sq_index_t *ix,
            int64_t rid, const keyset_t *ks, const bson_t *doc, flora_error_t *error)
{
   sqlite3_stmt *st = flora__sqlite_stmtf(conn, error, "INSERT INTO \"%s\"(key, rid) VALUES (?, ?)",
                                          ix->table);
   if (!st) {
      return false;
   }
   for (size_t i = 0; i < ks->len; i++) {
      int rc;
      sqlite3_reset(st);
      sqlite3_bind_blob(st, 1, ks->keys[i].data, (int) ks->keys[i].len, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, rid);
      rc = sqlite3_step(st);
      sqlite3_reset(st);
      if ((rc & 0xff) == SQLITE_CONSTRAINT) {
         sqlite3_clear_bindings(st);
         dup_key_error(eng, coll, ix, &ks->keys[i], doc, error);
         return false;
      }
      if (rc != SQLITE_DONE) {
         sqlite3_clear_bindings(st);
         flora__sqlite_error(conn, rc, "index insert", error);
         return false;
      }
   }
   sqlite3_clear_bindings(st);
   return true;
}

static bool
keys_delete(sq_conn_t *conn, const sq_index_t *ix, int64_t rid, const keyset_t *ks,
            flora_error_t *error)
{
   sqlite3_stmt *st = flora__sqlite_stmtf(conn, error,
                                          "DELETE FROM \"%s\" WHERE key = ? AND rid = ?", ix->table);
   if (!st) {
      return false;
   }
   for (size_t i = 0; i < ks->len; i++) {
      int rc;
      sqlite3_reset(st);
      sqlite3_bind_blob(st, 1, ks->keys[i].data, (int) ks->keys[i].len, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, rid);
      rc = sqlite3_step(st);
      sqlite3_reset(st);
      if (rc != SQLITE_DONE) {
         sqlite3_clear_bindings(st);
         flora__sqlite_error(conn, rc, "index delete", error);
         return false;
      }
   }
   sqlite3_clear_bindings(st);
   return true;
}

static bool
keysets_equal(const keyset_t *a, const keyset_t *b)
{
   if (a->len != b->len) {
      return false;
   }
   for (size_t i = 0; i < a->len; i++) {
      if (key_cmp(&a->keys[i], &b->keys[i]) != 0) {
         return false;
      }
   }
   return true;
}

/* Persists the multikey flag; bumps user_version so other connections reload. */
static bool
mark_multikey(sq_conn_t *conn, const sq_coll_t *coll, sq_index_t *ix, flora_error_t *error)
{
   sqlite3_stmt *st = flora__sqlite_stmt(
      conn, "UPDATE flora_indexes SET multikey = 1 WHERE coll = ? AND name = ?", error);
   char sql[64];
   int64_t uv = 0;
   int rc;

   if (!st) {
      return false;
   }
   sqlite3_bind_text(st, 1, coll->name, -1, SQLITE_TRANSIENT);
   sqlite3_bind_text(st, 2, ix->name, -1, SQLITE_TRANSIENT);
   rc = sqlite3_step(st);
   sqlite3_reset(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(conn, rc, "mark multikey", error);
      return false;
   }
   st = flora__sqlite_stmt(conn, "SELECT user_version FROM pragma_user_version", error);
   if (!st) {
      return false;
   }
   if (sqlite3_step(st) == SQLITE_ROW) {
      uv = sqlite3_column_int64(st, 0);
   }
   sqlite3_reset(st);
   uv = (uv + 1) & 0x7fffffff;
   snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long) uv);
   if (!flora__sqlite_exec(conn, sql, error)) {
      return false;
   }
   ix->multikey = true;
   if (conn->catalog) {
      conn->catalog->version = (conn->catalog->version & ~(int64_t) 0xffffffff) | uv;
   }
   return true;
}

bool
flora__sqlite_index_write(sq_engine_t *eng, sq_conn_t *conn, sq_coll_t *coll, int64_t rid,
                          const bson_t *old_doc, const bson_t *new_doc, flora_error_t *error)
{
   for (size_t i = 0; i < coll->n_indexes; i++) {
      sq_index_t *ix = coll->indexes[i];
      keyset_t before, after;
      bool ok;

      if (ix->text) {
         if (!flora__sqlite_text_write(conn, coll, ix, rid, old_doc, new_doc, error)) {
            return false;
         }
         continue;
      }
      if (!doc_keys(ix, old_doc, &before, error)) {
         /* an old document that cannot be keyed was never stored: nothing to remove */
         memset(&before, 0, sizeof before);
      }
      if (!doc_keys(ix, new_doc, &after, error)) {
         keyset_free(&before);
         return false;
      }
      ok = true;
      if (!keysets_equal(&before, &after)) {
         ok = keys_delete(conn, ix, rid, &before, error) &&
              keys_insert(eng, conn, coll, ix, rid, &after, new_doc, error);
      }
      if (ok && after.multikey && !ix->multikey) {
         ok = mark_multikey(conn, coll, ix, error);
      }
      keyset_free(&before);
      keyset_free(&after);
      if (!ok) {
         return false;
      }
   }
   return true;
}

bool
flora__sqlite_index_build(sq_engine_t *eng, sq_conn_t *conn, sq_coll_t *coll, sq_index_t *ix,
                          flora_error_t *error)
{
   char sql[1024];
   sqlite3_stmt *st = NULL;
   int rc;

   if (ix->text) {
      if (!flora__sqlite_text_create(conn, coll, ix, error)) {
         return false;
      }
   } else {
      snprintf(sql, sizeof sql,
               ix->unique ? "CREATE TABLE \"%s\"(key BLOB NOT NULL PRIMARY KEY, rid INTEGER NOT "
                            "NULL) WITHOUT ROWID"
                          : "CREATE TABLE \"%s\"(key BLOB NOT NULL, rid INTEGER NOT NULL, "
                            "PRIMARY KEY(key, rid)) WITHOUT ROWID",
               ix->table);
      if (!flora__sqlite_exec(conn, sql, error)) {
         return false;
      }
   }
   /* not from the statement cache: the loop below uses cached statements */
   snprintf(sql, sizeof sql, "SELECT rid, doc FROM \"%s\"", coll->table);
   rc = sqlite3_prepare_v2(conn->db, sql, -1, &st, NULL);
   if (rc != SQLITE_OK) {
      flora__sqlite_error(conn, rc, "build index", error);
      return false;
   }
   while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      bson_t doc;
      int64_t rid = sqlite3_column_int64(st, 0);
      bool ok;
      if (!bson_init_static(&doc, sqlite3_column_blob(st, 1), (size_t) sqlite3_column_bytes(st, 1))) {
         continue;
      }
      if (ix->text) {
         ok = flora__sqlite_text_write(conn, coll, ix, rid, NULL, &doc, error);
      } else {
         keyset_t ks;
         ok = doc_keys(ix, &doc, &ks, error) &&
              keys_insert(eng, conn, coll, ix, rid, &ks, &doc, error);
         if (ks.multikey) {
            ix->multikey = true;
         }
         keyset_free(&ks);
      }
      if (!ok) {
         sqlite3_finalize(st);
         return false;
      }
   }
   sqlite3_finalize(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(conn, rc, "build index", error);
      return false;
   }
   return true;
}

/* ---- TTL ---------------------------------------------------------------------------------- */

static bool
sweep_index(sq_engine_t *eng, sq_conn_t *conn, sq_coll_t *coll, sq_index_t *ix, int64_t now_ms,
            flora_error_t *error)
{
   sq_buf_t lo = SQ_BUF_INIT, hi = SQ_BUF_INIT;
   bson_value_t cutoff;
   int64_t *rids = NULL;
   size_t n = 0, cap = 0;
   sqlite3_stmt *st;
   bool ok = false;
   int rc;

   memset(&cutoff, 0, sizeof cutoff);
   cutoff.value_type = BSON_TYPE_DATE_TIME;
   cutoff.value.v_datetime = now_ms - ix->expire_after_s * 1000;
   if (ix->dirs[0] > 0) {
      flora__sqlite_buf_byte(&lo, flora__sqlite_key_type_byte(BSON_TYPE_DATE_TIME));
      flora__sqlite_key_append(&hi, &cutoff, false);
   } else {
      /* descending: dates older than the cutoff come after its inverted encoding */
      sq_buf_t enc = SQ_BUF_INIT;
      flora__sqlite_key_append(&enc, &cutoff, true);
      flora__sqlite_key_successor(enc.data, enc.len, &lo);
      flora__sqlite_buf_free(&enc);
      flora__sqlite_buf_byte(&hi, (uint8_t) ~flora__sqlite_key_type_byte(BSON_TYPE_DATE_TIME));
      flora__sqlite_key_successor(hi.data, hi.len, &enc);
      hi.len = 0;
      flora__sqlite_buf_append(&hi, enc.data, enc.len);
      flora__sqlite_buf_free(&enc);
   }
   st = flora__sqlite_stmtf(conn, error,
                            "SELECT DISTINCT rid FROM \"%s\" WHERE key >= ? AND key < ?", ix->table);
   if (!st) {
      goto cleanup;
   }
   sqlite3_bind_blob(st, 1, lo.data, (int) lo.len, SQLITE_STATIC);
   sqlite3_bind_blob(st, 2, hi.data, (int) hi.len, SQLITE_STATIC);
   while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (n == cap) {
         cap = cap ? cap * 2 : 64;
         rids = bson_realloc(rids, sizeof *rids * cap);
      }
      rids[n++] = sqlite3_column_int64(st, 0);
   }
   sqlite3_reset(st);
   sqlite3_clear_bindings(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(conn, rc, "TTL scan", error);
      goto cleanup;
   }
   for (size_t i = 0; i < n; i++) {
      sqlite3_stmt *get = flora__sqlite_stmtf(conn, error, "SELECT doc FROM \"%s\" WHERE rid = ?",
                                              coll->table);
      sqlite3_stmt *del;
      bson_t *doc = NULL;
      if (!get) {
         goto cleanup;
      }
      sqlite3_bind_int64(get, 1, rids[i]);
      if (sqlite3_step(get) == SQLITE_ROW) {
         doc = bson_new_from_data(sqlite3_column_blob(get, 0), (size_t) sqlite3_column_bytes(get, 0));
      }
      sqlite3_reset(get);
      if (!doc) {
         continue;
      }
      del = flora__sqlite_stmtf(conn, error, "DELETE FROM \"%s\" WHERE rid = ?", coll->table);
      if (!del) {
         bson_destroy(doc);
         goto cleanup;
      }
      sqlite3_bind_int64(del, 1, rids[i]);
      rc = sqlite3_step(del);
      sqlite3_reset(del);
      if (rc != SQLITE_DONE) {
         flora__sqlite_error(conn, rc, "TTL delete", error);
         bson_destroy(doc);
         goto cleanup;
      }
      if (!flora__sqlite_index_write(eng, conn, coll, rids[i], doc, NULL, error) ||
          (i == 0 && !flora__sqlite_bump(conn, coll->name, error))) {
         bson_destroy(doc);
         goto cleanup;
      }
      bson_destroy(doc);
   }
   ok = true;
cleanup:
   bson_free(rids);
   flora__sqlite_buf_free(&lo);
   flora__sqlite_buf_free(&hi);
   return ok;
}

bool
flora__sqlite_ttl_sweep(sq_engine_t *eng, sq_conn_t *conn, int64_t now_ms, flora_error_t *error)
{
   sq_catalog_t *cat;
   bool ok = true;

   if (!flora__sqlite_exec(conn, "BEGIN IMMEDIATE", error)) {
      return false;
   }
   cat = flora__sqlite_catalog(conn, error);
   ok = cat != NULL;
   for (sq_coll_t *c = cat ? cat->colls : NULL; ok && c; c = c->next) {
      for (size_t i = 0; ok && i < c->n_indexes; i++) {
         if (c->indexes[i]->expire_after_s >= 0 && !c->indexes[i]->text) {
            ok = sweep_index(eng, conn, c, c->indexes[i], now_ms, error);
         }
      }
   }
   if (ok) {
      ok = flora__sqlite_exec(conn, "COMMIT", error);
   }
   if (!ok) {
      sqlite3_exec(conn->db, "ROLLBACK", NULL, NULL, NULL);
      flora__sqlite_catalog_invalidate(conn);
   }
   return ok;
}

static void *
ttl_main(void *arg)
{
   sq_engine_t *eng = arg;

   pthread_mutex_lock(&eng->ttl_lock);
   while (!eng->ttl_stop) {
      struct timespec ts;
      int rc = 0;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += eng->ttl_interval_s;
      while (!eng->ttl_stop && rc != ETIMEDOUT) {
         rc = pthread_cond_timedwait(&eng->ttl_cond, &eng->ttl_lock, &ts);
      }
      if (eng->ttl_stop) {
         break;
      }
      pthread_mutex_unlock(&eng->ttl_lock);
      {
         sq_conn_t *conn = flora__sqlite_pool_acquire(eng);
         flora_error_t err;
         /* a failed sweep (a busy database) is retried at the next period */
         (void) flora__sqlite_ttl_sweep(eng, conn, flora__store_now_ms(), &err);
         flora__sqlite_pool_release(eng, conn);
      }
      pthread_mutex_lock(&eng->ttl_lock);
   }
   pthread_mutex_unlock(&eng->ttl_lock);
   return NULL;
}

bool
flora__sqlite_ttl_start(sq_engine_t *eng, int interval_s, flora_error_t *error)
{
   eng->ttl_interval_s = interval_s;
   eng->ttl_stop = false;
   if (pthread_create(&eng->ttl_thread, NULL, ttl_main, eng) != 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL,
                      "cannot start the TTL sweeper thread");
      return false;
   }
   eng->ttl_running = true;
   return true;
}

void
flora__sqlite_ttl_stop(sq_engine_t *eng)
{
   if (!eng->ttl_running) {
      return;
   }
   pthread_mutex_lock(&eng->ttl_lock);
   eng->ttl_stop = true;
   pthread_cond_broadcast(&eng->ttl_cond);
   pthread_mutex_unlock(&eng->ttl_lock);
   pthread_join(eng->ttl_thread, NULL);
   eng->ttl_running = false;
}
