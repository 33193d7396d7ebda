/* Defaults, _id and timestamps: see include/flora/schema.h (flora_schema_prepare_insert,
 * flora_schema_prepare_update). The timestamp rules follow Mongoose's `timestamps`
 * option (mongoosejs.com/docs/timestamps.html): createdAt is set on insert unless the
 * document already has one, updatedAt on every insert and update; an upsert gets createdAt
 * through $setOnInsert. */
#include "doc/schema_private.h"

#include <string.h>

bool
flora__schema_append_json_value(bson_t *out, const char *key, const char *json,
                                 flora_error_t *error)
{
   char *wrapped = bson_strdup_printf("{\"v\": %s}", json);
   bson_t *parsed = NULL;
   bson_error_t berr;
   bson_iter_t it;
   bool ok = false;

   parsed = bson_new_from_json((const uint8_t *) wrapped, -1, &berr);
   if (!parsed || !bson_iter_init_find(&it, parsed, "v")) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "schema default %s is not a JSON value: %s", json,
                      parsed ? "no value" : berr.message);
      goto cleanup;
   }
   ok = bson_append_iter(out, key, -1, &it);
cleanup:
   bson_destroy(parsed);
   bson_free(wrapped);
   return ok;
}

static const flora_field_t *
find_field(const flora_field_t *fields, const char *key)
{
   for (const flora_field_t *f = fields; f && f->path; f++) {
      if (strcmp(f->path, key) == 0) {
         return f;
      }
   }
   return NULL;
}

static bool copy_value(const flora_field_t *f, const bson_iter_t *it, const char *key,
                       int64_t now_ms, bson_t *out, flora_error_t *error);

/* Declared fields tracked in the copy pass; later ones are looked up in the document. */
#define SEEN_FIELDS 64

/* Copies doc's fields into out, then appends the defaults of the declared fields it lacks. */
static bool
copy_fields(const flora_field_t *fields, const bson_t *doc, int64_t now_ms, bson_t *out,
            flora_error_t *error)
{
   bson_iter_t it;
   bool seen[SEEN_FIELDS] = {false}; /* declared fields the document has, by position */

   if (bson_iter_init(&it, doc)) {
      while (bson_iter_next(&it)) {
         const char *key = bson_iter_key(&it);
         const flora_field_t *f = find_field(fields, key);
         if (f && f - fields < SEEN_FIELDS) {
            seen[f - fields] = true;
         }
         if (!copy_value(f, &it, key, now_ms, out, error)) {
            return false;
         }
      }
   }
   for (const flora_field_t *f = fields; f && f->path; f++) {
      bool present = f - fields < SEEN_FIELDS ? seen[f - fields] : bson_has_field(doc, f->path);
      if (f->default_kind == FLORA_DEFAULT_NONE || present) {
         continue;
      }
      if (f->default_kind == FLORA_DEFAULT_NOW) {
         BSON_APPEND_DATE_TIME(out, f->path, now_ms);
      } else if (f->default_kind == FLORA_DEFAULT_OBJECTID) {
         bson_oid_t oid;
         bson_oid_init(&oid, NULL);
         BSON_APPEND_OID(out, f->path, &oid);
      } else {
         /* A literal default goes through copy_value too, so a default "{}" of a
          * document with fields gets its subfields' defaults. */
         bson_t tmp = BSON_INITIALIZER;
         bson_iter_t v;
         bool ok = flora__schema_append_json_value(&tmp, "v", f->default_json ? f->default_json : "null",
                                                   error) &&
                   bson_iter_init_find(&v, &tmp, "v") &&
                   copy_value(f, &v, f->path, now_ms, out, error);
         bson_destroy(&tmp);
         if (!ok) {
            flora_error_prefix(error, "field %s", f->path);
            return false;
         }
      }
   }
   return true;
}

static bool
copy_value(const flora_field_t *f, const bson_iter_t *it, const char *key, int64_t now_ms,
           bson_t *out, flora_error_t *error)
{
   bson_t src, dst;
   uint32_t len;
   const uint8_t *data;
   bson_iter_t child;
   bool ok = true;

   if (f && f->fields && BSON_ITER_HOLDS_DOCUMENT(it)) {
      bson_iter_document(it, &len, &data);
      if (!bson_init_static(&src, data, len)) {
         return bson_append_iter(out, key, -1, it);
      }
      bson_append_document_begin(out, key, -1, &dst);
      ok = copy_fields(f->fields, &src, now_ms, &dst, error);
      bson_append_document_end(out, &dst);
      return ok;
   }
   if (f && f->items && BSON_ITER_HOLDS_ARRAY(it) && bson_iter_recurse(it, &child)) {
      bson_append_array_begin(out, key, -1, &dst);
      while (ok && bson_iter_next(&child)) {
         ok = copy_value(f->items, &child, bson_iter_key(&child), now_ms, &dst, error);
      }
      bson_append_array_end(out, &dst);
      return ok;
   }
   return bson_append_iter(out, key, -1, it);
}

bool
flora_schema_prepare_insert(const flora_schema_t *schema, const bson_t *doc, int64_t now_ms,
                            bson_t *out, flora_error_t *error)
{
   bson_t body = BSON_INITIALIZER;
   bson_iter_t it;
   bool ok = false;

   FLORA_ASSERT_ARG(schema);
   FLORA_ASSERT_ARG(doc);
   FLORA_ASSERT_ARG(out);
   bson_init(out);
   if (!copy_fields(schema->fields, doc, now_ms, &body, error)) {
      flora_error_prefix(error, "%s", schema->collection);
      goto cleanup;
   }
   /* _id first, as MongoDB stores it: the document's, a declared default, or a new one. */
   if (bson_iter_init_find(&it, &body, "_id")) {
      bson_append_iter(out, "_id", -1, &it);
   } else {
      bson_oid_t oid;
      bson_oid_init(&oid, NULL);
      BSON_APPEND_OID(out, "_id", &oid);
   }
   if (bson_iter_init(&it, &body)) {
      while (bson_iter_next(&it)) {
         const char *key = bson_iter_key(&it);
         if (strcmp(key, "_id") == 0 ||
             (schema->timestamps && strcmp(key, FLORA__SCHEMA_UPDATED_AT) == 0)) {
            continue; /* _id is first; updatedAt is set below */
         }
         bson_append_iter(out, key, -1, &it);
      }
   }
   if (schema->timestamps) {
      if (!bson_has_field(&body, FLORA__SCHEMA_CREATED_AT)) {
         BSON_APPEND_DATE_TIME(out, FLORA__SCHEMA_CREATED_AT, now_ms);
      }
      BSON_APPEND_DATE_TIME(out, FLORA__SCHEMA_UPDATED_AT, now_ms);
   }
   ok = true;
cleanup:
   bson_destroy(&body);
   if (!ok) {
      bson_reinit(out);
   }
   return ok;
}

/* True when any operator of update names `field` itself or a path below it. */
static bool
update_touches(const bson_t *update, const char *field)
{
   bson_iter_t op, path;
   size_t n = strlen(field);

   if (!bson_iter_init(&op, update)) {
      return false;
   }
   while (bson_iter_next(&op)) {
      if (!BSON_ITER_HOLDS_DOCUMENT(&op) || !bson_iter_recurse(&op, &path)) {
         continue;
      }
      while (bson_iter_next(&path)) {
         const char *key = bson_iter_key(&path);
         if (strncmp(key, field, n) == 0 && (key[n] == '\0' || key[n] == '.')) {
            return true;
         }
      }
   }
   return false;
}

/* Appends {op: {...fields of it..., field: now}} to out. */
static bool
append_operator_with(bson_t *out, const bson_iter_t *op, const char *field, int64_t now_ms,
                     flora_error_t *error)
{
   bson_t dst;
   bson_iter_t child;

   if (!BSON_ITER_HOLDS_DOCUMENT(op) || !bson_iter_recurse(op, &child)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "Modifiers operate on fields but we found another type instead: %s",
                      bson_iter_key(op));
      return false;
   }
   bson_append_document_begin(out, bson_iter_key(op), -1, &dst);
   while (bson_iter_next(&child)) {
      bson_append_iter(&dst, bson_iter_key(&child), -1, &child);
   }
   BSON_APPEND_DATE_TIME(&dst, field, now_ms);
   bson_append_document_end(out, &dst);
   return true;
}

bool
flora_schema_prepare_update(const flora_schema_t *schema, const bson_t *update, int64_t now_ms,
                            bson_t *out, flora_error_t *error)
{
   bson_iter_t it;
   bool set_updated, set_created, had_set = false, had_set_on_insert = false;
   bool replacement;

   FLORA_ASSERT_ARG(schema);
   FLORA_ASSERT_ARG(update);
   FLORA_ASSERT_ARG(out);
   if (!schema->timestamps) {
      bson_copy_to(update, out);
      return true;
   }
   bson_init(out);
   replacement = !bson_iter_init(&it, update) || !bson_iter_next(&it) ||
                 bson_iter_key(&it)[0] != '$';
   if (replacement) {
      /* A replacement document: it keeps its own createdAt (if any) and gets updatedAt. */
      if (bson_iter_init(&it, update)) {
         while (bson_iter_next(&it)) {
            if (strcmp(bson_iter_key(&it), FLORA__SCHEMA_UPDATED_AT) != 0) {
               bson_append_iter(out, bson_iter_key(&it), -1, &it);
            }
         }
      }
      BSON_APPEND_DATE_TIME(out, FLORA__SCHEMA_UPDATED_AT, now_ms);
      return true;
   }
   /* An update that already names a timestamp keeps its own (adding ours would make
    * MongoDB refuse the update with ConflictingUpdateOperators). */
   set_updated = !update_touches(update, FLORA__SCHEMA_UPDATED_AT);
   set_created = !update_touches(update, FLORA__SCHEMA_CREATED_AT);
   bson_iter_init(&it, update);
   while (bson_iter_next(&it)) {
      const char *op = bson_iter_key(&it);
      if (strcmp(op, "$set") == 0 && set_updated) {
         had_set = true;
         if (!append_operator_with(out, &it, FLORA__SCHEMA_UPDATED_AT, now_ms, error)) {
            goto fail;
         }
      } else if (strcmp(op, "$setOnInsert") == 0 && set_created) {
         had_set_on_insert = true;
         if (!append_operator_with(out, &it, FLORA__SCHEMA_CREATED_AT, now_ms, error)) {
            goto fail;
         }
      } else {
         bson_append_iter(out, op, -1, &it);
      }
   }
   if (set_updated && !had_set) {
      bson_t set;
      bson_append_document_begin(out, "$set", -1, &set);
      BSON_APPEND_DATE_TIME(&set, FLORA__SCHEMA_UPDATED_AT, now_ms);
      bson_append_document_end(out, &set);
   }
   if (set_created && !had_set_on_insert) {
      bson_t soi;
      bson_append_document_begin(out, "$setOnInsert", -1, &soi);
      BSON_APPEND_DATE_TIME(&soi, FLORA__SCHEMA_CREATED_AT, now_ms);
      bson_append_document_end(out, &soi);
   }
   return true;
fail:
   bson_reinit(out);
   return false;
}
