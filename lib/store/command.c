/* flora_store_command: MongoDB database commands over the store functions.
 *
 * The generic adapter for engines without their own command path (the embedded engine):
 * each command document is parsed as mongod parses it and run through the public store
 * API, and the reply is built in the shape MongoDB 7.0 answers (manual "Database
 * Commands": find, aggregate, count, distinct, insert, update, delete, findAndModify,
 * create, drop, createIndexes, listIndexes, dropIndexes, listCollections, explain, ping).
 * `ok` is always a double; counters (n, nModified, numIndexes*, nIndexesWas) are int32;
 * cursor ids are int64 0 (every result is in the first batch). */
#include "store/store_private.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_DB "flora"

/* MongoDB codes without a name in include/flora/error.h (error_codes.yml). */
enum {
   CODE_INVALID_LENGTH = 16,
   CODE_INVALID_NAMESPACE = 73,
   CODE_NON_NEGATIVE = 51024, /* "BSON field 'x' value must be >= 0" */
   CODE_MISSING_FIELD = 40414, /* "BSON field 'x' is missing but a required field" */
};

typedef struct command_ctx {
   flora_store_t *store;
   const bson_t *cmd;
   const char *name;   /* the command's name (first key) */
   const char *coll;   /* the collection, when the command names one */
   const char *db;     /* $db or "flora" */
   char ns[512];       /* "<db>.<coll>" */
   bson_t *reply;      /* initialised, empty */
} command_ctx_t;

typedef bool (*command_fn)(command_ctx_t *ctx, flora_error_t *error);

/* ---- parsing helpers ------------------------------------------------------------- */

static const char *
type_name(bson_type_t type)
{
   const char *name = flora_value_type_name(type);

   return name ? name : "unknown";
}

static bool
wrong_type(const char *owner, const bson_iter_t *it, const char *expected, flora_error_t *error)
{
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_TYPE_MISMATCH,
                   "BSON field '%s.%s' is the wrong type '%s', expected type '%s'", owner,
                   bson_iter_key(it), type_name(bson_iter_type(it)), expected);
   return false;
}

/* A static view of the document or array at it. */
static void
view_of(const bson_iter_t *it, bson_t *out)
{
   const uint8_t *data = NULL;
   uint32_t len = 0;

   if (BSON_ITER_HOLDS_ARRAY(it)) {
      bson_iter_array(it, &len, &data);
   } else {
      bson_iter_document(it, &len, &data);
   }
   if (!data || !bson_init_static(out, data, len)) {
      bson_init(out);
   }
}

/* Looks up key in doc. *present says whether it is there; when it is, it must be a
 * document (or an array, when want_array) and *out views it. */
static bool
get_doc(const bson_t *doc, const char *owner, const char *key, bool want_array, bson_t *out,
        bool *present, flora_error_t *error)
{
   bson_iter_t it;

   *present = false;
   bson_init(out);
   if (!bson_iter_init_find(&it, doc, key) || BSON_ITER_HOLDS_NULL(&it)) {
      return true;
   }
   if (want_array ? !BSON_ITER_HOLDS_ARRAY(&it) : !BSON_ITER_HOLDS_DOCUMENT(&it)) {
      return wrong_type(owner, &it, want_array ? "array" : "object", error);
   }
   view_of(&it, out);
   *present = true;
   return true;
}

static bool
get_bool(const bson_t *doc, const char *owner, const char *key, bool dflt, bool *out,
         flora_error_t *error)
{
   bson_iter_t it;

   *out = dflt;
   if (!bson_iter_init_find(&it, doc, key) || BSON_ITER_HOLDS_NULL(&it)) {
      return true;
   }
   switch (bson_iter_type(&it)) {
   case BSON_TYPE_BOOL:
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DOUBLE:
   case BSON_TYPE_DECIMAL128:
      *out = bson_iter_as_bool(&it);
      return true;
   default:
      return wrong_type(owner, &it, "bool", error);
   }
}

/* A whole number (int32, int64 or a double without fraction). */
static bool
get_int64(const bson_t *doc, const char *owner, const char *key, int64_t dflt, int64_t *out,
          bool *present, flora_error_t *error)
{
   bson_iter_t it;
   double d;

   *out = dflt;
   if (present) {
      *present = false;
   }
   if (!bson_iter_init_find(&it, doc, key) || BSON_ITER_HOLDS_NULL(&it)) {
      return true;
   }
   if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
      *out = bson_iter_as_int64(&it);
   } else if (BSON_ITER_HOLDS_DOUBLE(&it)) {
      d = bson_iter_double(&it);
      if (!isfinite(d) || d != floor(d) || fabs(d) > 9.0e18) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "Expected an integer for BSON field '%s.%s': %g", owner, key, d);
         return false;
      }
      *out = (int64_t) d;
   } else {
      return wrong_type(owner, &it, "long", error);
   }
   if (present) {
      *present = true;
   }
   return true;
}

static bool
non_negative(const char *owner, const char *key, int64_t value, flora_error_t *error)
{
   if (value < 0) {
      /* mongod's IDL names the bare field here, unlike its type errors. */
      (void) owner;
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_NON_NEGATIVE,
                      "BSON field '%s' value must be >= 0, actual value '%" PRId64 "'", key,
                      value);
      return false;
   }
   return true;
}

static void
append_doc_at(bson_t *array, uint32_t index, const bson_t *doc)
{
   char buf[16];
   const char *key;

   bson_uint32_to_string(index, &key, buf, sizeof buf);
   BSON_APPEND_DOCUMENT(array, key, doc);
}

static int32_t
clamp32(int64_t v)
{
   return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t) v;
}

static int64_t
reply_int(const bson_t *reply, const char *key)
{
   bson_iter_t it;

   return bson_iter_init_find(&it, reply, key) ? bson_iter_as_int64(&it) : 0;
}

/* Drains a cursor into reply.cursor {firstBatch, id: 0, ns}. Destroys the cursor. */
static bool
reply_cursor(bson_t *reply, flora_cursor_t *cursor, const char *ns, flora_error_t *error)
{
   bson_t cur, batch;
   const bson_t *doc;
   uint32_t i = 0;
   bool ok = true;

   BSON_APPEND_DOCUMENT_BEGIN(reply, "cursor", &cur);
   BSON_APPEND_ARRAY_BEGIN(&cur, "firstBatch", &batch);
   while (flora_cursor_next(cursor, &doc)) {
      append_doc_at(&batch, i++, doc);
   }
   bson_append_array_end(&cur, &batch);
   BSON_APPEND_INT64(&cur, "id", 0);
   BSON_APPEND_UTF8(&cur, "ns", ns);
   bson_append_document_end(reply, &cur);
   if (flora_cursor_error(cursor, error)) {
      ok = false;
   }
   flora_cursor_destroy(cursor);
   return ok;
}

static void
reply_cursor_docs(bson_t *reply, const bson_t *array, const char *ns)
{
   bson_t cur;

   BSON_APPEND_DOCUMENT_BEGIN(reply, "cursor", &cur);
   BSON_APPEND_ARRAY(&cur, "firstBatch", array);
   BSON_APPEND_INT64(&cur, "id", 0);
   BSON_APPEND_UTF8(&cur, "ns", ns);
   bson_append_document_end(reply, &cur);
}

static void
reply_ok(bson_t *reply)
{
   BSON_APPEND_DOUBLE(reply, "ok", 1.0);
}

/* Appends a write error {index, code, errmsg} and, when given, the duplicate key's
 * {keyPattern, keyValue} (MongoDB adds both to 11000 write errors). */
static void
append_write_error(bson_t *errors, uint32_t *n_errors, uint32_t index, const flora_error_t *err,
                   const bson_t *dup_key)
{
   bson_t we;
   char buf[16];
   const char *key;

   bson_uint32_to_string((*n_errors)++, &key, buf, sizeof buf);
   BSON_APPEND_DOCUMENT_BEGIN(errors, key, &we);
   BSON_APPEND_INT32(&we, "index", (int32_t) index);
   BSON_APPEND_INT32(&we, "code", (int32_t) err->code);
   if (dup_key) {
      bson_concat(&we, dup_key);
   }
   BSON_APPEND_UTF8(&we, "errmsg", err->message);
   bson_append_document_end(errors, &we);
}

/* For a duplicate key error of an inserted document: *out (initialised here) gets
 * {keyPattern, keyValue} from the index named in MongoDB's message ("... index: NAME dup
 * key: ...") and the document's values. False when they cannot be told (unknown index,
 * text index, an array value: the colliding element is not known). */
static bool
duplicate_key_info(flora_store_t *store, const char *coll, const flora_error_t *err,
                   const bson_t *doc, bson_t *out)
{
   const char *start = strstr(err->message, " index: ");
   const char *end = start ? strstr(start + 8, " dup key") : NULL;
   char name[256];
   bson_t specs, pattern, value;
   bson_iter_t it, field, found;
   bool ok = false;

   bson_init(out);
   bson_init(&specs);
   if (err->code != FLORA_STORE_DUPLICATE_KEY || !end || (size_t) (end - start - 8) >= sizeof name) {
      goto cleanup;
   }
   snprintf(name, sizeof name, "%.*s", (int) (end - start - 8), start + 8);
   bson_destroy(&specs);
   if (!flora_store_list_indexes(store, coll, &specs, NULL)) {
      goto cleanup;
   }
   bson_iter_init(&it, &specs);
   while (bson_iter_next(&it)) {
      bson_t spec;

      view_of(&it, &spec);
      if (!bson_iter_init_find(&field, &spec, "name") || !BSON_ITER_HOLDS_UTF8(&field) ||
          strcmp(bson_iter_utf8(&field, NULL), name) != 0) {
         continue;
      }
      if (!bson_iter_init_find(&field, &spec, "key") || !BSON_ITER_HOLDS_DOCUMENT(&field)) {
         goto cleanup;
      }
      view_of(&field, &pattern);
      BSON_APPEND_DOCUMENT(out, "keyPattern", &pattern);
      BSON_APPEND_DOCUMENT_BEGIN(out, "keyValue", &value);
      bson_iter_init(&field, &pattern);
      while (bson_iter_next(&field)) {
         if (!BSON_ITER_HOLDS_NUMBER(&field)) {
            bson_append_document_end(out, &value);
            goto cleanup;
         }
         if (!flora_document_get_path(doc, bson_iter_key(&field), &found)) {
            BSON_APPEND_NULL(&value, bson_iter_key(&field));
         } else if (BSON_ITER_HOLDS_ARRAY(&found)) {
            bson_append_document_end(out, &value);
            goto cleanup;
         } else {
            bson_append_iter(&value, bson_iter_key(&field), -1, &found);
         }
      }
      bson_append_document_end(out, &value);
      ok = true;
      break;
   }
cleanup:
   bson_destroy(&specs);
   if (!ok) {
      bson_reinit(out);
   }
   return ok;
}

/* A command-level failure among the per-document ones: the namespace itself is bad. */
static bool
is_command_error(const flora_error_t *err)
{
   return err->domain == FLORA_DOMAIN_STORE && err->code == CODE_INVALID_NAMESPACE;
}

/* True when the collection exists. */
static bool
collection_exists(flora_store_t *store, const char *coll, bool *exists, flora_error_t *error)
{
   bson_t names;
   bson_iter_t it;

   *exists = false;
   if (!flora_store_list_collections(store, &names, error)) {
      bson_destroy(&names);
      return false;
   }
   if (bson_iter_init(&it, &names)) {
      while (bson_iter_next(&it)) {
         if (BSON_ITER_HOLDS_UTF8(&it) && strcmp(bson_iter_utf8(&it, NULL), coll) == 0) {
            *exists = true;
         }
      }
   }
   bson_destroy(&names);
   return true;
}

static bool
count_indexes(flora_store_t *store, const char *coll, int32_t *n, flora_error_t *error)
{
   bson_t specs;
   bool ok = flora_store_list_indexes(store, coll, &specs, error);

   *n = ok ? (int32_t) bson_count_keys(&specs) : 0;
   bson_destroy(&specs);
   return ok;
}

/* ---- find, aggregate, count, distinct ---------------------------------------------- */

static bool
cmd_find(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t filter, sort, projection, opts = BSON_INITIALIZER;
   bool has_filter, has_sort, has_projection, has_skip, has_limit, single_batch;
   int64_t skip, limit, batch_size;
   flora_cursor_t *cursor = NULL;
   bson_iter_t it;
   bool ok = false;

   if (!get_doc(ctx->cmd, "find", "filter", false, &filter, &has_filter, error) ||
       !get_doc(ctx->cmd, "find", "sort", false, &sort, &has_sort, error) ||
       !get_doc(ctx->cmd, "find", "projection", false, &projection, &has_projection, error) ||
       !get_int64(ctx->cmd, "find", "skip", 0, &skip, &has_skip, error) ||
       !non_negative("find", "skip", skip, error) ||
       !get_int64(ctx->cmd, "find", "limit", 0, &limit, &has_limit, error) ||
       !non_negative("find", "limit", limit, error) ||
       !get_int64(ctx->cmd, "find", "batchSize", 101, &batch_size, NULL, error) ||
       !non_negative("find", "batchSize", batch_size, error) ||
       !get_bool(ctx->cmd, "find", "singleBatch", false, &single_batch, error)) {
      goto cleanup;
   }
   if (has_sort) {
      BSON_APPEND_DOCUMENT(&opts, "sort", &sort);
   }
   if (has_projection) {
      BSON_APPEND_DOCUMENT(&opts, "projection", &projection);
   }
   if (has_skip && skip > 0) {
      BSON_APPEND_INT64(&opts, "skip", skip);
   }
   if (has_limit && limit > 0) {
      BSON_APPEND_INT64(&opts, "limit", limit);
   }
   if (bson_iter_init_find(&it, ctx->cmd, "hint")) {
      bson_append_iter(&opts, "hint", 4, &it);
   }
   if (!flora_store_find(ctx->store, ctx->coll, &filter, &opts, &cursor, error)) {
      goto cleanup;
   }
   if (!reply_cursor(ctx->reply, cursor, ctx->ns, error)) {
      goto cleanup;
   }
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   bson_destroy(&opts);
   return ok;
}

static bool
cmd_aggregate(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t pipeline, cursor_opt, opts = BSON_INITIALIZER;
   bool has_pipeline, has_cursor, explain;
   flora_cursor_t *cursor = NULL;
   bson_iter_t it;
   bool ok = false;

   if (!ctx->coll) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "unsupported: collection-less aggregate ({aggregate: 1}) is not supported "
                      "by the %s engine",
                      flora_store_engine(ctx->store));
      goto cleanup;
   }
   if (!get_doc(ctx->cmd, "aggregate", "pipeline", true, &pipeline, &has_pipeline, error) ||
       !get_doc(ctx->cmd, "aggregate", "cursor", false, &cursor_opt, &has_cursor, error) ||
       !get_bool(ctx->cmd, "aggregate", "explain", false, &explain, error)) {
      goto cleanup;
   }
   if (!has_pipeline) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'aggregate.pipeline' is missing but a required field");
      goto cleanup;
   }
   if (explain) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "unsupported: aggregate with explain");
      goto cleanup;
   }
   if (!has_cursor) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "The 'cursor' option is required, except for aggregate with the explain "
                      "argument");
      goto cleanup;
   }
   if (bson_iter_init_find(&it, ctx->cmd, "hint")) {
      bson_append_iter(&opts, "hint", 4, &it);
   }
   if (bson_iter_init_find(&it, ctx->cmd, "let")) {
      bson_append_iter(&opts, "let", 3, &it);
   }
   if (!flora_store_aggregate(ctx->store, ctx->coll, &pipeline, &opts, &cursor, error) ||
       !reply_cursor(ctx->reply, cursor, ctx->ns, error)) {
      goto cleanup;
   }
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   bson_destroy(&opts);
   return ok;
}

static bool
cmd_count(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t query, opts = BSON_INITIALIZER;
   bool has_query;
   int64_t skip, limit, n = 0;
   bson_iter_t it;
   bool ok = false;

   if (!get_doc(ctx->cmd, "count", "query", false, &query, &has_query, error) ||
       !get_int64(ctx->cmd, "count", "skip", 0, &skip, NULL, error) ||
       !non_negative("count", "skip", skip, error) ||
       !get_int64(ctx->cmd, "count", "limit", 0, &limit, NULL, error)) {
      goto cleanup;
   }
   /* A negative limit counts like its absolute value (manual "count"). */
   if (limit < 0) {
      limit = -limit;
   }
   if (skip > 0) {
      BSON_APPEND_INT64(&opts, "skip", skip);
   }
   if (limit > 0) {
      BSON_APPEND_INT64(&opts, "limit", limit);
   }
   if (bson_iter_init_find(&it, ctx->cmd, "hint")) {
      bson_append_iter(&opts, "hint", 4, &it);
   }
   if (!flora_store_count_documents(ctx->store, ctx->coll, &query, &opts, &n, error)) {
      goto cleanup;
   }
   BSON_APPEND_INT32(ctx->reply, "n", clamp32(n));
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   bson_destroy(&opts);
   return ok;
}

static bool
cmd_distinct(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t query, values;
   bool has_query;
   bson_iter_t it;
   bool ok = false;

   bson_init(&values);
   if (!get_doc(ctx->cmd, "distinct", "query", false, &query, &has_query, error)) {
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, ctx->cmd, "key")) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'distinct.key' is missing but a required field");
      goto cleanup;
   }
   if (!BSON_ITER_HOLDS_UTF8(&it)) {
      wrong_type("distinct", &it, "string", error);
      goto cleanup;
   }
   bson_destroy(&values);
   if (!flora_store_distinct(ctx->store, ctx->coll, bson_iter_utf8(&it, NULL), &query, &values,
                             error)) {
      goto cleanup;
   }
   BSON_APPEND_ARRAY(ctx->reply, "values", &values);
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   bson_destroy(&values);
   return ok;
}

/* ---- writes ------------------------------------------------------------------------ */

static bool
cmd_insert(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t documents, errors = BSON_INITIALIZER;
   bool has_documents, ordered;
   bson_iter_t it;
   uint32_t index = 0, n_errors = 0;
   int32_t n = 0;
   bool ok = false;

   if (!get_doc(ctx->cmd, "insert", "documents", true, &documents, &has_documents, error) ||
       !get_bool(ctx->cmd, "insert", "ordered", true, &ordered, error)) {
      goto cleanup;
   }
   if (!has_documents) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'insert.documents' is missing but a required field");
      goto cleanup;
   }
   if (bson_count_keys(&documents) == 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_INVALID_LENGTH,
                      "Write batch sizes must be between 1 and 100000. Got 0 operations.");
      goto cleanup;
   }
   bson_iter_init(&it, &documents);
   for (index = 0; bson_iter_next(&it); index++) {
      flora_error_t err;
      bson_t doc;

      flora_error_clear(&err);
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         wrong_type("insert", &it, "object", error);
         goto cleanup;
      }
      view_of(&it, &doc);
      if (flora_store_insert_one(ctx->store, ctx->coll, &doc, NULL, NULL, &err)) {
         n++;
         continue;
      }
      if (is_command_error(&err)) {
         if (error) {
            *error = err;
         }
         goto cleanup;
      }
      {
         bson_t dup;
         bool have_dup = duplicate_key_info(ctx->store, ctx->coll, &err, &doc, &dup);

         append_write_error(&errors, &n_errors, index, &err, have_dup ? &dup : NULL);
         bson_destroy(&dup);
      }
      if (ordered) {
         break;
      }
   }
   BSON_APPEND_INT32(ctx->reply, "n", n);
   if (n_errors > 0) {
      BSON_APPEND_ARRAY(ctx->reply, "writeErrors", &errors);
   }
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   bson_destroy(&errors);
   return ok;
}

/* True when the update document is a replacement: no top-level operator. */
static bool
is_replacement(const bson_t *update)
{
   bson_iter_t it;

   return !(bson_iter_init(&it, update) && bson_iter_next(&it) && bson_iter_key(&it)[0] == '$');
}

static bool
check_no_collation(const bson_t *doc, const char *owner, flora_error_t *error)
{
   bson_iter_t it;

   if (bson_iter_init_find(&it, doc, "collation")) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "unsupported: %s with a collation (only the simple binary collation is "
                      "supported)",
                      owner);
      return false;
   }
   return true;
}

/* Runs one update statement; accumulates n/nModified/upserted. false with *err for a
 * write error. */
/* Parses one update statement and, when execute, runs it. Parse errors are the command's
 * (mongod parses the whole command first); execution errors are write errors. */
static bool
run_update_statement(command_ctx_t *ctx, const bson_t *stmt, bool execute, uint32_t index,
                     int64_t *n, int64_t *n_modified, bson_t *upserted, uint32_t *n_upserted,
                     flora_error_t *err)
{
   bson_t q, array_filters, opts = BSON_INITIALIZER, result;
   bool has_q, has_filters, upsert, multi;
   bson_iter_t it, id;
   bson_t u;
   bool ok = false;

   bson_init(&result);
   if (!get_doc(stmt, "update.updates", "q", false, &q, &has_q, err) ||
       !get_doc(stmt, "update.updates", "arrayFilters", true, &array_filters, &has_filters, err) ||
       !get_bool(stmt, "update.updates", "upsert", false, &upsert, err) ||
       !get_bool(stmt, "update.updates", "multi", false, &multi, err) ||
       !check_no_collation(stmt, "update", err)) {
      goto cleanup;
   }
   if (!has_q) {
      flora_error_set(err, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'update.updates.q' is missing but a required field");
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, stmt, "u")) {
      flora_error_set(err, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'update.updates.u' is missing but a required field");
      goto cleanup;
   }
   if (!BSON_ITER_HOLDS_DOCUMENT(&it) && !BSON_ITER_HOLDS_ARRAY(&it)) {
      wrong_type("update.updates", &it, "object", err);
      goto cleanup;
   }
   if (!execute) {
      ok = true;
      goto cleanup;
   }
   if (BSON_ITER_HOLDS_ARRAY(&it)) {
      flora_error_set(err, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "unsupported: pipeline-style updates (an aggregation pipeline as 'u')");
      goto cleanup;
   }
   view_of(&it, &u);
   if (upsert) {
      BSON_APPEND_BOOL(&opts, "upsert", true);
   }
   if (has_filters) {
      BSON_APPEND_ARRAY(&opts, "arrayFilters", &array_filters);
   }
   if (bson_iter_init_find(&it, stmt, "hint")) {
      bson_append_iter(&opts, "hint", 4, &it);
   }
   bson_destroy(&result);
   if (is_replacement(&u)) {
      if (multi) {
         bson_init(&result);
         flora_error_set(err, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "multi update is not supported for replacement-style update");
         goto cleanup;
      }
      if (has_filters) {
         bson_init(&result);
         flora_error_set(err, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "arrayFilters may not be specified for replacement-style updates");
         goto cleanup;
      }
      ok = flora_store_replace_one(ctx->store, ctx->coll, &q, &u, &opts, &result, err);
   } else if (multi) {
      ok = flora_store_update_many(ctx->store, ctx->coll, &q, &u, &opts, &result, err);
   } else {
      ok = flora_store_update_one(ctx->store, ctx->coll, &q, &u, &opts, &result, err);
   }
   if (!ok) {
      goto cleanup;
   }
   *n += reply_int(&result, "matchedCount") + reply_int(&result, "upsertedCount");
   *n_modified += reply_int(&result, "modifiedCount");
   if (bson_iter_init_find(&id, &result, "upsertedId")) {
      bson_t entry;
      char buf[16];
      const char *key;

      bson_uint32_to_string((*n_upserted)++, &key, buf, sizeof buf);
      BSON_APPEND_DOCUMENT_BEGIN(upserted, key, &entry);
      BSON_APPEND_INT32(&entry, "index", (int32_t) index);
      bson_append_iter(&entry, "_id", 3, &id);
      bson_append_document_end(upserted, &entry);
   }
cleanup:
   bson_destroy(&result);
   bson_destroy(&opts);
   return ok;
}

static bool
cmd_update(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t updates, upserted = BSON_INITIALIZER, errors = BSON_INITIALIZER;
   bool has_updates, ordered;
   bson_iter_t it;
   int64_t n = 0, n_modified = 0;
   uint32_t index, n_upserted = 0, n_errors = 0;
   bool ok = false;

   if (!get_doc(ctx->cmd, "update", "updates", true, &updates, &has_updates, error) ||
       !get_bool(ctx->cmd, "update", "ordered", true, &ordered, error)) {
      goto cleanup;
   }
   if (!has_updates) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'update.updates' is missing but a required field");
      goto cleanup;
   }
   if (bson_count_keys(&updates) == 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_INVALID_LENGTH,
                      "Write batch sizes must be between 1 and 100000. Got 0 operations.");
      goto cleanup;
   }
   bson_iter_init(&it, &updates);
   while (bson_iter_next(&it)) {
      bson_t stmt;

      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         wrong_type("update", &it, "object", error);
         goto cleanup;
      }
      view_of(&it, &stmt);
      if (!run_update_statement(ctx, &stmt, false, 0, &n, &n_modified, &upserted, &n_upserted,
                                error)) {
         goto cleanup;
      }
   }
   bson_iter_init(&it, &updates);
   for (index = 0; bson_iter_next(&it); index++) {
      flora_error_t err;
      bson_t stmt;

      flora_error_clear(&err);
      view_of(&it, &stmt);
      if (run_update_statement(ctx, &stmt, true, index, &n, &n_modified, &upserted, &n_upserted,
                               &err)) {
         continue;
      }
      if (is_command_error(&err)) {
         if (error) {
            *error = err;
         }
         goto cleanup;
      }
      append_write_error(&errors, &n_errors, index, &err, NULL);
      if (ordered) {
         break;
      }
   }
   BSON_APPEND_INT32(ctx->reply, "n", clamp32(n));
   BSON_APPEND_INT32(ctx->reply, "nModified", clamp32(n_modified));
   if (n_upserted > 0) {
      BSON_APPEND_ARRAY(ctx->reply, "upserted", &upserted);
   }
   if (n_errors > 0) {
      BSON_APPEND_ARRAY(ctx->reply, "writeErrors", &errors);
   }
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   bson_destroy(&upserted);
   bson_destroy(&errors);
   return ok;
}

/* Parses one delete statement and, when execute, runs it (see run_update_statement). */
static bool
run_delete_statement(command_ctx_t *ctx, const bson_t *stmt, bool execute, int64_t *n,
                     flora_error_t *err)
{
   bson_t q, opts = BSON_INITIALIZER, result;
   bool has_q, has_limit;
   int64_t limit;
   bson_iter_t it;
   bool ok = false;

   bson_init(&result);
   if (!get_doc(stmt, "delete.deletes", "q", false, &q, &has_q, err) ||
       !get_int64(stmt, "delete.deletes", "limit", 0, &limit, &has_limit, err) ||
       !check_no_collation(stmt, "delete", err)) {
      goto cleanup;
   }
   if (!has_q) {
      flora_error_set(err, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'delete.deletes.q' is missing but a required field");
      goto cleanup;
   }
   if (!has_limit) {
      flora_error_set(err, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'delete.deletes.limit' is missing but a required field");
      goto cleanup;
   }
   if (limit != 0 && limit != 1) {
      flora_error_set(err, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "The limit field in delete objects must be 0 or 1. Got %" PRId64, limit);
      goto cleanup;
   }
   if (!execute) {
      ok = true;
      goto cleanup;
   }
   if (bson_iter_init_find(&it, stmt, "hint")) {
      bson_append_iter(&opts, "hint", 4, &it);
   }
   bson_destroy(&result);
   ok = limit == 1 ? flora_store_delete_one(ctx->store, ctx->coll, &q, &opts, &result, err)
                   : flora_store_delete_many(ctx->store, ctx->coll, &q, &opts, &result, err);
   if (ok) {
      *n += reply_int(&result, "deletedCount");
   }
cleanup:
   bson_destroy(&result);
   bson_destroy(&opts);
   return ok;
}

static bool
cmd_delete(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t deletes, errors = BSON_INITIALIZER;
   bool has_deletes, ordered;
   bson_iter_t it;
   int64_t n = 0;
   uint32_t index, n_errors = 0;
   bool ok = false;

   if (!get_doc(ctx->cmd, "delete", "deletes", true, &deletes, &has_deletes, error) ||
       !get_bool(ctx->cmd, "delete", "ordered", true, &ordered, error)) {
      goto cleanup;
   }
   if (!has_deletes) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'delete.deletes' is missing but a required field");
      goto cleanup;
   }
   if (bson_count_keys(&deletes) == 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_INVALID_LENGTH,
                      "Write batch sizes must be between 1 and 100000. Got 0 operations.");
      goto cleanup;
   }
   bson_iter_init(&it, &deletes);
   while (bson_iter_next(&it)) {
      bson_t stmt;

      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         wrong_type("delete", &it, "object", error);
         goto cleanup;
      }
      view_of(&it, &stmt);
      if (!run_delete_statement(ctx, &stmt, false, &n, error)) {
         goto cleanup;
      }
   }
   bson_iter_init(&it, &deletes);
   for (index = 0; bson_iter_next(&it); index++) {
      flora_error_t err;
      bson_t stmt;

      flora_error_clear(&err);
      view_of(&it, &stmt);
      if (run_delete_statement(ctx, &stmt, true, &n, &err)) {
         continue;
      }
      if (is_command_error(&err)) {
         if (error) {
            *error = err;
         }
         goto cleanup;
      }
      append_write_error(&errors, &n_errors, index, &err, NULL);
      if (ordered) {
         break;
      }
   }
   BSON_APPEND_INT32(ctx->reply, "n", clamp32(n));
   if (n_errors > 0) {
      BSON_APPEND_ARRAY(ctx->reply, "writeErrors", &errors);
   }
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   bson_destroy(&errors);
   return ok;
}

/* ---- findAndModify ------------------------------------------------------------------ */

typedef struct fam_args {
   command_ctx_t *ctx;
   bson_t query, sort, update, fields, array_filters;
   bool has_sort, has_update, has_fields, has_filters;
   bool remove, return_new, upsert;
   /* results */
   bson_t before, after;
   bool found_before, found_after;
} fam_args_t;

static bool
fam_body(flora_store_t *txn, void *data, flora_error_t *error)
{
   fam_args_t *a = data;
   bson_t find_opts = BSON_INITIALIZER, mod_opts = BSON_INITIALIZER;
   bool ok = false;

   bson_reinit(&a->before);
   bson_reinit(&a->after);
   a->found_before = a->found_after = false;
   if (a->has_sort) {
      BSON_APPEND_DOCUMENT(&find_opts, "sort", &a->sort);
      BSON_APPEND_DOCUMENT(&mod_opts, "sort", &a->sort);
   }
   if (a->remove) {
      bson_destroy(&a->before);
      ok = flora_store_find_one_and_delete(txn, a->ctx->coll, &a->query, &find_opts, &a->before,
                                           &a->found_before, error);
      goto cleanup;
   }
   bson_destroy(&a->before);
   if (!flora_store_find_one(txn, a->ctx->coll, &a->query, &find_opts, &a->before,
                             &a->found_before, error)) {
      goto cleanup;
   }
   if (a->upsert) {
      BSON_APPEND_BOOL(&mod_opts, "upsert", true);
   }
   if (a->has_filters) {
      BSON_APPEND_ARRAY(&mod_opts, "arrayFilters", &a->array_filters);
   }
   BSON_APPEND_UTF8(&mod_opts, "returnDocument", "after");
   bson_destroy(&a->after);
   if (is_replacement(&a->update)) {
      ok = flora_store_find_one_and_replace(txn, a->ctx->coll, &a->query, &a->update, &mod_opts,
                                            &a->after, &a->found_after, error);
   } else {
      ok = flora_store_find_one_and_update(txn, a->ctx->coll, &a->query, &a->update, &mod_opts,
                                           &a->after, &a->found_after, error);
   }
cleanup:
   bson_destroy(&find_opts);
   bson_destroy(&mod_opts);
   return ok;
}

/* Appends value: the document projected by fields (or null). */
static bool
append_fam_value(fam_args_t *a, const bson_t *doc, bool found, flora_error_t *error)
{
   flora_projection_t *projection = NULL;
   flora_matcher_t *matcher = NULL;
   bson_t projected;
   bool ok = false;

   bson_init(&projected);
   if (!found) {
      BSON_APPEND_NULL(a->ctx->reply, "value");
      ok = true;
      goto cleanup;
   }
   if (!a->has_fields || bson_empty(&a->fields)) {
      BSON_APPEND_DOCUMENT(a->ctx->reply, "value", doc);
      ok = true;
      goto cleanup;
   }
   projection = flora_projection_new(&a->fields, error);
   matcher = projection ? flora_matcher_new(&a->query, error) : NULL;
   if (!matcher) {
      goto cleanup;
   }
   bson_destroy(&projected);
   if (!flora_projection_apply(projection, doc, matcher, &projected, error)) {
      goto cleanup;
   }
   BSON_APPEND_DOCUMENT(a->ctx->reply, "value", &projected);
   ok = true;
cleanup:
   bson_destroy(&projected);
   flora_projection_destroy(projection);
   flora_matcher_destroy(matcher);
   return ok;
}

static bool
cmd_find_and_modify(command_ctx_t *ctx, flora_error_t *error)
{
   fam_args_t a;
   bson_t leo;
   bson_iter_t it, id;
   bool ok = false;

   memset(&a, 0, sizeof a);
   a.ctx = ctx;
   bson_init(&a.before);
   bson_init(&a.after);
   bson_init(&a.update);
   if (!get_doc(ctx->cmd, "findAndModify", "query", false, &a.query, &(bool){false}, error) ||
       !get_doc(ctx->cmd, "findAndModify", "sort", false, &a.sort, &a.has_sort, error) ||
       !get_doc(ctx->cmd, "findAndModify", "fields", false, &a.fields, &a.has_fields, error) ||
       !get_doc(ctx->cmd, "findAndModify", "arrayFilters", true, &a.array_filters,
                &a.has_filters, error) ||
       !get_bool(ctx->cmd, "findAndModify", "remove", false, &a.remove, error) ||
       !get_bool(ctx->cmd, "findAndModify", "new", false, &a.return_new, error) ||
       !get_bool(ctx->cmd, "findAndModify", "upsert", false, &a.upsert, error) ||
       !check_no_collation(ctx->cmd, "findAndModify", error)) {
      goto cleanup;
   }
   if (bson_iter_init_find(&it, ctx->cmd, "update") && !BSON_ITER_HOLDS_NULL(&it)) {
      if (BSON_ITER_HOLDS_ARRAY(&it)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "unsupported: pipeline-style updates (an aggregation pipeline as "
                         "'update')");
         goto cleanup;
      }
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         wrong_type("findAndModify", &it, "object", error);
         goto cleanup;
      }
      bson_destroy(&a.update);
      view_of(&it, &a.update);
      a.has_update = true;
   }
   if (a.remove && a.has_update) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "Cannot specify both an update and remove=true");
      goto cleanup;
   }
   if (!a.remove && !a.has_update) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "Either an update or remove=true must be specified");
      goto cleanup;
   }
   if (a.remove && a.upsert) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "Cannot specify both upsert=true and remove=true");
      goto cleanup;
   }
   if (a.remove && a.return_new) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "Cannot specify both new=true and remove=true; 'remove' always returns the "
                      "deleted document");
      goto cleanup;
   }
   if (!flora_store_with_transaction(ctx->store, fam_body, &a, error)) {
      goto cleanup;
   }
   BSON_APPEND_DOCUMENT_BEGIN(ctx->reply, "lastErrorObject", &leo);
   if (a.remove) {
      BSON_APPEND_INT32(&leo, "n", a.found_before ? 1 : 0);
   } else {
      BSON_APPEND_INT32(&leo, "n", a.found_before || a.found_after ? 1 : 0);
      BSON_APPEND_BOOL(&leo, "updatedExisting", a.found_before);
      if (!a.found_before && a.found_after && bson_iter_init_find(&id, &a.after, "_id")) {
         bson_append_iter(&leo, "upserted", 8, &id);
      }
   }
   bson_append_document_end(ctx->reply, &leo);
   if (a.return_new) {
      ok = append_fam_value(&a, &a.after, a.found_after, error);
   } else {
      ok = append_fam_value(&a, &a.before, a.found_before, error);
   }
   if (ok) {
      reply_ok(ctx->reply);
   }
cleanup:
   bson_destroy(&a.before);
   bson_destroy(&a.after);
   bson_destroy(&a.update);
   return ok;
}

/* ---- collections and indexes -------------------------------------------------------- */

/* Fields of a command that are not options of the operation (generic arguments). */
static bool
is_generic_field(const char *key)
{
   static const char *const generic[] = {
      "$db",        "lsid",     "txnNumber",  "autocommit",   "startTransaction",
      "$clusterTime", "$readPreference", "readConcern", "writeConcern", "comment",
      "maxTimeMS",  "apiVersion", "apiStrict", "apiDeprecationErrors", NULL,
   };

   for (const char *const *g = generic; *g; g++) {
      if (strcmp(key, *g) == 0) {
         return true;
      }
   }
   return false;
}

static bool
cmd_create(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t opts = BSON_INITIALIZER;
   bson_iter_t it;
   bool ok = false;

   bson_iter_init(&it, ctx->cmd);
   bson_iter_next(&it); /* the command name */
   while (bson_iter_next(&it)) {
      if (!is_generic_field(bson_iter_key(&it))) {
         bson_append_iter(&opts, bson_iter_key(&it), -1, &it);
      }
   }
   if (flora_store_create_collection(ctx->store, ctx->coll, &opts, error)) {
      reply_ok(ctx->reply);
      ok = true;
   }
   bson_destroy(&opts);
   return ok;
}

static bool
cmd_drop(command_ctx_t *ctx, flora_error_t *error)
{
   bool exists;
   int32_t n_indexes = 0;

   if (!collection_exists(ctx->store, ctx->coll, &exists, error)) {
      return false;
   }
   if (exists && !count_indexes(ctx->store, ctx->coll, &n_indexes, error)) {
      return false;
   }
   if (!flora_store_drop_collection(ctx->store, ctx->coll, error)) {
      return false;
   }
   /* MongoDB 7.0 answers ok for a collection that does not exist. */
   if (exists) {
      BSON_APPEND_INT32(ctx->reply, "nIndexesWas", n_indexes);
      BSON_APPEND_UTF8(ctx->reply, "ns", ctx->ns);
   }
   reply_ok(ctx->reply);
   return true;
}

static bool
cmd_create_indexes(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t indexes;
   bool has_indexes, exists;
   int32_t before = 1, after = 0;

   if (!get_doc(ctx->cmd, "createIndexes", "indexes", true, &indexes, &has_indexes, error)) {
      return false;
   }
   if (!has_indexes) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'createIndexes.indexes' is missing but a required field");
      return false;
   }
   if (!collection_exists(ctx->store, ctx->coll, &exists, error)) {
      return false;
   }
   /* A collection created by the command counts its _id index as there before. */
   if (exists && !count_indexes(ctx->store, ctx->coll, &before, error)) {
      return false;
   }
   if (!flora_store_create_indexes(ctx->store, ctx->coll, &indexes, error) ||
       !count_indexes(ctx->store, ctx->coll, &after, error)) {
      return false;
   }
   BSON_APPEND_INT32(ctx->reply, "numIndexesBefore", before);
   BSON_APPEND_INT32(ctx->reply, "numIndexesAfter", after);
   if (exists && before == after) {
      BSON_APPEND_UTF8(ctx->reply, "note", "all indexes already exist");
   } else {
      BSON_APPEND_BOOL(ctx->reply, "createdCollectionAutomatically", !exists);
   }
   reply_ok(ctx->reply);
   return true;
}

static bool
ns_not_found(command_ctx_t *ctx, flora_error_t *error)
{
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_NAMESPACE_NOT_FOUND,
                   "ns does not exist: %s", ctx->ns);
   return false;
}

static bool
cmd_list_indexes(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t specs, batch = BSON_INITIALIZER;
   bson_iter_t it, field;
   bool exists;
   uint32_t i = 0;
   bool ok = false;

   bson_init(&specs);
   if (!collection_exists(ctx->store, ctx->coll, &exists, error)) {
      goto cleanup;
   }
   if (!exists) {
      ns_not_found(ctx, error);
      goto cleanup;
   }
   bson_destroy(&specs);
   if (!flora_store_list_indexes(ctx->store, ctx->coll, &specs, error)) {
      goto cleanup;
   }
   bson_iter_init(&it, &specs);
   while (bson_iter_next(&it)) {
      bson_t spec, entry = BSON_INITIALIZER;

      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         bson_destroy(&entry);
         continue;
      }
      view_of(&it, &spec);
      BSON_APPEND_INT32(&entry, "v", 2);
      bson_iter_init(&field, &spec);
      while (bson_iter_next(&field)) {
         if (strcmp(bson_iter_key(&field), "v") != 0) {
            bson_append_iter(&entry, bson_iter_key(&field), -1, &field);
         }
      }
      append_doc_at(&batch, i++, &entry);
      bson_destroy(&entry);
   }
   reply_cursor_docs(ctx->reply, &batch, ctx->ns);
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   bson_destroy(&specs);
   bson_destroy(&batch);
   return ok;
}

/* The name of the index whose key equals key, or NULL. Borrowed from specs. */
static const char *
index_name_by_key(const bson_t *specs, const bson_t *key)
{
   bson_iter_t it, field;

   bson_iter_init(&it, specs);
   while (bson_iter_next(&it)) {
      bson_t spec, spec_key;

      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         continue;
      }
      view_of(&it, &spec);
      if (!bson_iter_init_find(&field, &spec, "key") || !BSON_ITER_HOLDS_DOCUMENT(&field)) {
         continue;
      }
      view_of(&field, &spec_key);
      if (bson_equal(&spec_key, key) && bson_iter_init_find(&field, &spec, "name") &&
          BSON_ITER_HOLDS_UTF8(&field)) {
         return bson_iter_utf8(&field, NULL);
      }
   }
   return NULL;
}

static bool
cmd_drop_indexes(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t specs;
   bson_iter_t it, names, field;
   bool exists;
   bool ok = false;

   bson_init(&specs);
   if (!collection_exists(ctx->store, ctx->coll, &exists, error)) {
      goto cleanup;
   }
   if (!exists) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_NAMESPACE_NOT_FOUND,
                      "ns not found %s", ctx->ns);
      goto cleanup;
   }
   bson_destroy(&specs);
   if (!flora_store_list_indexes(ctx->store, ctx->coll, &specs, error)) {
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, ctx->cmd, "index")) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_MISSING_FIELD,
                      "BSON field 'dropIndexes.index' is missing but a required field");
      goto cleanup;
   }
   if (BSON_ITER_HOLDS_UTF8(&it) && strcmp(bson_iter_utf8(&it, NULL), "*") == 0) {
      bson_iter_init(&names, &specs);
      while (bson_iter_next(&names)) {
         bson_t spec;

         view_of(&names, &spec);
         if (bson_iter_init_find(&field, &spec, "name") && BSON_ITER_HOLDS_UTF8(&field) &&
             strcmp(bson_iter_utf8(&field, NULL), "_id_") != 0 &&
             !flora_store_drop_index(ctx->store, ctx->coll, bson_iter_utf8(&field, NULL),
                                     error)) {
            goto cleanup;
         }
      }
   } else if (BSON_ITER_HOLDS_UTF8(&it)) {
      if (!flora_store_drop_index(ctx->store, ctx->coll, bson_iter_utf8(&it, NULL), error)) {
         goto cleanup;
      }
   } else if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_t key;
      const char *name;

      view_of(&it, &key);
      name = index_name_by_key(&specs, &key);
      if (!name) {
         char *json = bson_as_relaxed_extended_json(&key, NULL);

         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INDEX_NOT_FOUND,
                         "can't find index with key: %s", json ? json : "{}");
         bson_free(json);
         goto cleanup;
      }
      if (!flora_store_drop_index(ctx->store, ctx->coll, name, error)) {
         goto cleanup;
      }
   } else if (BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_t list;

      view_of(&it, &list);
      bson_iter_init(&names, &list);
      while (bson_iter_next(&names)) {
         if (!BSON_ITER_HOLDS_UTF8(&names)) {
            wrong_type("dropIndexes.index", &names, "string", error);
            goto cleanup;
         }
         if (!flora_store_drop_index(ctx->store, ctx->coll, bson_iter_utf8(&names, NULL),
                                     error)) {
            goto cleanup;
         }
      }
   } else {
      wrong_type("dropIndexes", &it, "string or object", error);
      goto cleanup;
   }
   BSON_APPEND_INT32(ctx->reply, "nIndexesWas", (int32_t) bson_count_keys(&specs));
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   bson_destroy(&specs);
   return ok;
}

static bool
cmd_list_collections(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t filter, names, batch = BSON_INITIALIZER;
   bool has_filter, name_only;
   flora_matcher_t *matcher = NULL;
   bson_iter_t it;
   char ns[600];
   uint32_t i = 0;
   bool ok = false;

   bson_init(&names);
   if (!get_doc(ctx->cmd, "listCollections", "filter", false, &filter, &has_filter, error) ||
       !get_bool(ctx->cmd, "listCollections", "nameOnly", false, &name_only, error)) {
      goto cleanup;
   }
   matcher = flora_matcher_new(&filter, error);
   if (!matcher) {
      goto cleanup;
   }
   bson_destroy(&names);
   if (!flora_store_list_collections(ctx->store, &names, error)) {
      goto cleanup;
   }
   bson_iter_init(&it, &names);
   while (bson_iter_next(&it)) {
      bson_t entry = BSON_INITIALIZER, child, key;

      if (!BSON_ITER_HOLDS_UTF8(&it)) {
         bson_destroy(&entry);
         continue;
      }
      BSON_APPEND_UTF8(&entry, "name", bson_iter_utf8(&it, NULL));
      BSON_APPEND_UTF8(&entry, "type", "collection");
      if (!name_only) {
         BSON_APPEND_DOCUMENT_BEGIN(&entry, "options", &child);
         bson_append_document_end(&entry, &child);
         BSON_APPEND_DOCUMENT_BEGIN(&entry, "info", &child);
         BSON_APPEND_BOOL(&child, "readOnly", false);
         bson_append_document_end(&entry, &child);
         BSON_APPEND_DOCUMENT_BEGIN(&entry, "idIndex", &child);
         BSON_APPEND_INT32(&child, "v", 2);
         BSON_APPEND_DOCUMENT_BEGIN(&child, "key", &key);
         BSON_APPEND_INT32(&key, "_id", 1);
         bson_append_document_end(&child, &key);
         BSON_APPEND_UTF8(&child, "name", "_id_");
         bson_append_document_end(&entry, &child);
      }
      if (flora_matcher_match(matcher, &entry, NULL)) {
         append_doc_at(&batch, i++, &entry);
      }
      bson_destroy(&entry);
   }
   snprintf(ns, sizeof ns, "%s.$cmd.listCollections", ctx->db);
   reply_cursor_docs(ctx->reply, &batch, ns);
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   flora_matcher_destroy(matcher);
   bson_destroy(&names);
   bson_destroy(&batch);
   return ok;
}

static bool
cmd_explain(command_ctx_t *ctx, flora_error_t *error)
{
   bson_t inner, filter, sort, projection, opts = BSON_INITIALIZER, out;
   bool has_inner, has_filter, has_sort, has_projection;
   int64_t skip, limit;
   bson_iter_t it;
   bool ok = false;

   bson_init(&out);
   if (!get_doc(ctx->cmd, "explain", "explain", false, &inner, &has_inner, error)) {
      goto cleanup;
   }
   if (!has_inner || !bson_iter_init(&it, &inner) || !bson_iter_next(&it)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "explain command requires a nested object");
      goto cleanup;
   }
   if (strcmp(bson_iter_key(&it), "find") != 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "unsupported: explain of '%s' (only find is explained)", bson_iter_key(&it));
      goto cleanup;
   }
   if (!BSON_ITER_HOLDS_UTF8(&it)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, CODE_INVALID_NAMESPACE,
                      "Failed to parse namespace element");
      goto cleanup;
   }
   if (!get_doc(&inner, "find", "filter", false, &filter, &has_filter, error) ||
       !get_doc(&inner, "find", "sort", false, &sort, &has_sort, error) ||
       !get_doc(&inner, "find", "projection", false, &projection, &has_projection, error) ||
       !get_int64(&inner, "find", "skip", 0, &skip, NULL, error) ||
       !non_negative("find", "skip", skip, error) ||
       !get_int64(&inner, "find", "limit", 0, &limit, NULL, error) ||
       !non_negative("find", "limit", limit, error)) {
      goto cleanup;
   }
   if (has_sort) {
      BSON_APPEND_DOCUMENT(&opts, "sort", &sort);
   }
   if (has_projection) {
      BSON_APPEND_DOCUMENT(&opts, "projection", &projection);
   }
   if (skip > 0) {
      BSON_APPEND_INT64(&opts, "skip", skip);
   }
   if (limit > 0) {
      BSON_APPEND_INT64(&opts, "limit", limit);
   }
   {
      bson_iter_t hint;

      if (bson_iter_init_find(&hint, &inner, "hint")) {
         bson_append_iter(&opts, "hint", 4, &hint);
      }
   }
   bson_destroy(&out);
   if (!flora_store_explain(ctx->store, bson_iter_utf8(&it, NULL), &filter, &opts, &out, error)) {
      goto cleanup;
   }
   bson_concat(ctx->reply, &out);
   reply_ok(ctx->reply);
   ok = true;
cleanup:
   bson_destroy(&out);
   bson_destroy(&opts);
   return ok;
}

static bool
cmd_ping(command_ctx_t *ctx, flora_error_t *error)
{
   if (!flora_store_ping(ctx->store, error)) {
      return false;
   }
   reply_ok(ctx->reply);
   return true;
}

/* ---- dispatch ------------------------------------------------------------------------ */

typedef struct command_entry {
   const char *name;
   command_fn fn;
   bool needs_collection; /* the command's value is a collection name */
} command_entry_t;

static const command_entry_t commands[] = {
   {"find", cmd_find, true},
   {"aggregate", cmd_aggregate, false},
   {"count", cmd_count, true},
   {"distinct", cmd_distinct, true},
   {"insert", cmd_insert, true},
   {"update", cmd_update, true},
   {"delete", cmd_delete, true},
   {"findAndModify", cmd_find_and_modify, true},
   {"findandmodify", cmd_find_and_modify, true},
   {"create", cmd_create, true},
   {"drop", cmd_drop, true},
   {"createIndexes", cmd_create_indexes, true},
   {"listIndexes", cmd_list_indexes, true},
   {"dropIndexes", cmd_drop_indexes, true},
   {"deleteIndexes", cmd_drop_indexes, true},
   {"listCollections", cmd_list_collections, false},
   {"explain", cmd_explain, false},
   {"ping", cmd_ping, false},
   {NULL, NULL, false},
};

static void
reply_error(bson_t *reply, const flora_error_t *err)
{
   uint32_t code = err->domain == FLORA_DOMAIN_STORE ? err->code : FLORA_STORE_INTERNAL;

   bson_reinit(reply);
   BSON_APPEND_DOUBLE(reply, "ok", 0.0);
   BSON_APPEND_UTF8(reply, "errmsg", err->message);
   BSON_APPEND_INT32(reply, "code", (int32_t) code);
   BSON_APPEND_UTF8(reply, "codeName", flora_store_code_name(code));
}

bool
flora_store_command(flora_store_t *store, const bson_t *command, bson_t *reply,
                    flora_error_t *error)
{
   command_ctx_t ctx;
   const command_entry_t *entry;
   flora_error_t err;
   bson_t tmp;
   bson_iter_t it;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(command);
   memset(&ctx, 0, sizeof ctx);
   flora_error_clear(&err);
   ctx.reply = reply ? reply : &tmp;
   bson_init(ctx.reply);
   if (store->engine->command) {
      /* The engine answers in MongoDB's shape itself (the mongodb engine passes the
       * command through); its reply is kept, failed or not. */
      ok = store->engine->command(store, command, ctx.reply, &err);
      if (!ok && error) {
         *error = err;
      }
      goto cleanup;
   }
   ctx.store = store;
   ctx.cmd = command;
   ctx.db = DEFAULT_DB;
   if (bson_iter_init_find(&it, command, "$db")) {
      if (!BSON_ITER_HOLDS_UTF8(&it) || bson_iter_utf8(&it, NULL)[0] == '\0') {
         flora_error_set(&err, FLORA_DOMAIN_STORE, CODE_INVALID_NAMESPACE,
                         "Invalid database name: '$db' must be a non-empty string");
         goto done;
      }
      ctx.db = bson_iter_utf8(&it, NULL);
   }
   if (!bson_iter_init(&it, command) || !bson_iter_next(&it)) {
      flora_error_set(&err, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "empty command document");
      goto done;
   }
   ctx.name = bson_iter_key(&it);
   for (entry = commands; entry->name; entry++) {
      if (strcmp(entry->name, ctx.name) == 0) {
         break;
      }
   }
   if (!entry->name) {
      flora_error_set(&err, FLORA_DOMAIN_STORE, FLORA_STORE_COMMAND_NOT_FOUND,
                      "no such command: '%s'", ctx.name);
      goto done;
   }
   if (BSON_ITER_HOLDS_UTF8(&it)) {
      ctx.coll = bson_iter_utf8(&it, NULL);
      snprintf(ctx.ns, sizeof ctx.ns, "%s.%s", ctx.db, ctx.coll);
   } else if (entry->needs_collection) {
      flora_error_set(&err, FLORA_DOMAIN_STORE, CODE_INVALID_NAMESPACE,
                      "collection name has invalid type %s", type_name(bson_iter_type(&it)));
      goto done;
   } else {
      snprintf(ctx.ns, sizeof ctx.ns, "%s.$cmd.%s", ctx.db, ctx.name);
   }
   ok = entry->fn(&ctx, &err);
done:
   if (!ok) {
      if (err.domain == FLORA_DOMAIN_NONE) {
         flora_error_set(&err, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL,
                         "command '%s' failed", ctx.name ? ctx.name : "?");
      }
      reply_error(ctx.reply, &err);
      if (error) {
         *error = err;
      }
   }
cleanup:
   if (!reply) {
      bson_destroy(&tmp);
   }
   return ok;
}
