/* The MongoDB collection validator and index specifications derived from a schema: see
 * include/flora/schema.h (flora_schema_json_schema, flora_schema_index_specs).
 *
 * $jsonSchema keywords used (MongoDB manual, "$jsonSchema" and "JSON Schema omissions"):
 * bsonType, description, title, required, properties, additionalProperties, minimum,
 * maximum, minLength, maxLength, minItems, maxItems, enum, pattern, items.
 *
 * What the generated validator does not check, left to Flora's own validator
 * (flora_schema_validate), which every write through the model layer passes:
 *   - bounds on dates: $jsonSchema's minimum/maximum apply to numbers only;
 *   - custom field validators and the schema's whole-document hook;
 *   - enum on a field that also accepts non-string types other than null (Flora applies
 *     enum to strings only; $jsonSchema's enum would refuse the other types).
 * Patterns are POSIX extended regular expressions; MongoDB evaluates `pattern` with PCRE.
 * The common subset (anchors, classes, [[:alpha:]]-style classes, groups, alternation,
 * repetition counts) means the same in both; backslash escapes inside brackets, \d-style
 * shorthands and back-references differ, so schemas keep to the common subset. */
#include "doc/schema_private.h"

#include <limits.h>
#include <string.h>

static const uint32_t type_order[] = {
   FLORA_T_STRING, FLORA_T_INT32,    FLORA_T_INT64,    FLORA_T_DOUBLE,
   FLORA_T_DECIMAL, FLORA_T_BOOL,    FLORA_T_DATE,     FLORA_T_OBJECTID,
   FLORA_T_DOCUMENT, FLORA_T_ARRAY,  FLORA_T_BINARY,   FLORA_T_NULL,
};

static void
append_bson_type(bson_t *out, uint32_t types)
{
   const char *names[sizeof type_order / sizeof type_order[0]];
   size_t n = 0;
   bson_t arr;

   /* Flora's FLORA_T_INT64 accepts int32 as well (schema_private.h). */
   if (types & FLORA_T_INT64) {
      types |= FLORA_T_INT32;
   }
   for (size_t i = 0; i < sizeof type_order / sizeof type_order[0]; i++) {
      if (types & type_order[i]) {
         names[n++] = flora__schema_bson_type_name(type_order[i]);
      }
   }
   if (n == 1) {
      BSON_APPEND_UTF8(out, "bsonType", names[0]);
      return;
   }
   bson_append_array_begin(out, "bsonType", -1, &arr);
   for (size_t i = 0; i < n; i++) {
      char key[16];
      const char *k;
      bson_uint32_to_string((uint32_t) i, &k, key, sizeof key);
      bson_append_utf8(&arr, k, -1, names[i], -1);
   }
   bson_append_array_end(out, &arr);
}

/* A bound as a long when it is a whole number (reads better, compares exactly). */
static void
append_bound(bson_t *out, const char *key, double v)
{
   if (v == (double) (int64_t) v && v >= -9007199254740992.0 && v <= 9007199254740992.0) {
      BSON_APPEND_INT64(out, key, (int64_t) v);
   } else {
      BSON_APPEND_DOUBLE(out, key, v);
   }
}

static void append_object(bson_t *out, const flora_field_t *fields, bool strict,
                          const flora_schema_t *top);

/* The field's description, plus a note on the rules this validator leaves to Flora's, so
 * that a reader of the collection's validator on MongoDB knows they exist. */
static void
append_description(bson_t *out, const flora_field_t *f)
{
   char notes[200], a[40], b[40];
   size_t used = 0;
   bool date_bounds = (f->types & FLORA_T_DATE) && (f->has_min || f->has_max);
   bool enum_skipped = f->enum_values && (f->types & FLORA_T_STRING) &&
                       (f->types & ~(uint32_t) (FLORA_T_STRING | FLORA_T_NULL)) != 0;

   notes[0] = '\0';
   if (date_bounds) {
      a[0] = b[0] = '\0';
      if (f->has_min) {
         flora__schema_format_date((int64_t) f->min, a, sizeof a);
      }
      if (f->has_max) {
         flora__schema_format_date((int64_t) f->max, b, sizeof b);
      }
      int n = snprintf(notes, sizeof notes, "dates%s%s%s%s", f->has_min ? " >= " : "", a,
                       f->has_max ? " <= " : "", b);
      used = n > 0 ? BSON_MIN((size_t) n, sizeof notes - 1) : 0;
   }
   if (enum_skipped) {
      int n = snprintf(notes + used, sizeof notes - used, "%sstring enum", used ? ", " : "");
      used = n > 0 ? BSON_MIN(used + (size_t) n, sizeof notes - 1) : used;
   }
   if (f->validate) {
      snprintf(notes + used, sizeof notes - used, "%scustom check", used ? ", " : "");
   }
   if (notes[0]) {
      char *text = bson_strdup_printf("%s%s(checked by Flora, not by $jsonSchema: %s)",
                                      f->description ? f->description : "",
                                      f->description ? " " : "", notes);
      BSON_APPEND_UTF8(out, "description", text);
      bson_free(text);
   } else if (f->description) {
      BSON_APPEND_UTF8(out, "description", f->description);
   }
}

static void
append_field_schema(bson_t *out, const flora_field_t *f)
{
   uint32_t types = f->types;

   append_bson_type(out, types);
   append_description(out, f);
   if ((types & FLORA_T_NUMBER) && f->has_min) {
      append_bound(out, "minimum", f->min);
   }
   if ((types & FLORA_T_NUMBER) && f->has_max) {
      append_bound(out, "maximum", f->max);
   }
   if (types & FLORA_T_STRING) {
      if (f->minlength >= 0) {
         BSON_APPEND_INT64(out, "minLength", f->minlength);
      }
      if (f->maxlength >= 0) {
         BSON_APPEND_INT64(out, "maxLength", f->maxlength);
      }
      if (f->pattern) {
         BSON_APPEND_UTF8(out, "pattern", f->pattern);
      }
      if (f->enum_values && (types & ~(uint32_t) (FLORA_T_STRING | FLORA_T_NULL)) == 0) {
         bson_t arr;
         uint32_t i = 0;
         char key[16];
         const char *k;
         bson_append_array_begin(out, "enum", -1, &arr);
         for (const char *const *e = f->enum_values; *e; e++) {
            bson_uint32_to_string(i++, &k, key, sizeof key);
            bson_append_utf8(&arr, k, -1, *e, -1);
         }
         if (types & FLORA_T_NULL) {
            bson_uint32_to_string(i++, &k, key, sizeof key);
            bson_append_null(&arr, k, -1);
         }
         bson_append_array_end(out, &arr);
      }
   }
   if (types & FLORA_T_ARRAY) {
      if (f->minlength >= 0) {
         BSON_APPEND_INT64(out, "minItems", f->minlength);
      }
      if (f->maxlength >= 0) {
         BSON_APPEND_INT64(out, "maxItems", f->maxlength);
      }
      if (f->items) {
         bson_t items;
         bson_append_document_begin(out, "items", -1, &items);
         append_field_schema(&items, f->items);
         bson_append_document_end(out, &items);
      }
   }
   if ((types & FLORA_T_DOCUMENT) && f->fields) {
      append_object(out, f->fields, f->strict, NULL);
   }
}

/* required, properties and additionalProperties of an object (top: the collection). */
static void
append_object(bson_t *out, const flora_field_t *fields, bool strict, const flora_schema_t *top)
{
   bson_t req, props, prop;
   uint32_t n = 0;
   char key[16];
   const char *k;
   bool has_id = false, has_created = false, has_updated = false;

   for (const flora_field_t *f = fields; f && f->path; f++) {
      if (f->required) {
         n++;
      }
      has_id = has_id || strcmp(f->path, "_id") == 0;
      has_created = has_created || strcmp(f->path, FLORA__SCHEMA_CREATED_AT) == 0;
      has_updated = has_updated || strcmp(f->path, FLORA__SCHEMA_UPDATED_AT) == 0;
   }
   if (n > 0) {
      /* MongoDB refuses an empty `required` array. */
      n = 0;
      bson_append_array_begin(out, "required", -1, &req);
      for (const flora_field_t *f = fields; f && f->path; f++) {
         if (f->required) {
            bson_uint32_to_string(n++, &k, key, sizeof key);
            bson_append_utf8(&req, k, -1, f->path, -1);
         }
      }
      bson_append_array_end(out, &req);
   }
   bson_append_document_begin(out, "properties", -1, &props);
   if (top && !has_id) {
      /* Any _id (MongoDB's example validators list _id whenever additionalProperties is
       * false, or every document would be refused). */
      bson_append_document_begin(&props, "_id", -1, &prop);
      bson_append_document_end(&props, &prop);
   }
   for (const flora_field_t *f = fields; f && f->path; f++) {
      bson_append_document_begin(&props, f->path, -1, &prop);
      append_field_schema(&prop, f);
      bson_append_document_end(&props, &prop);
   }
   if (top && top->timestamps) {
      static const char *const names[] = {FLORA__SCHEMA_CREATED_AT, FLORA__SCHEMA_UPDATED_AT};
      bool declared[] = {has_created, has_updated};
      for (size_t i = 0; i < 2; i++) {
         if (!declared[i]) {
            bson_append_document_begin(&props, names[i], -1, &prop);
            BSON_APPEND_UTF8(&prop, "bsonType", "date");
            bson_append_document_end(&props, &prop);
         }
      }
   }
   bson_append_document_end(out, &props);
   if (strict) {
      BSON_APPEND_BOOL(out, "additionalProperties", false);
   }
}

bool
flora_schema_json_schema(const flora_schema_t *schema, bson_t *out, flora_error_t *error)
{
   bson_t js;

   FLORA_ASSERT_ARG(schema);
   FLORA_ASSERT_ARG(out);
   (void) error;
   bson_init(out);
   bson_append_document_begin(out, "$jsonSchema", -1, &js);
   BSON_APPEND_UTF8(&js, "bsonType", "object");
   if (schema->collection) {
      BSON_APPEND_UTF8(&js, "title", schema->collection);
   }
   if (schema->validate) {
      char *text = bson_strdup_printf("%s%s(cross-field rules are checked by Flora, not by "
                                      "$jsonSchema)",
                                      schema->description ? schema->description : "",
                                      schema->description ? " " : "");
      BSON_APPEND_UTF8(&js, "description", text);
      bson_free(text);
   } else if (schema->description) {
      BSON_APPEND_UTF8(&js, "description", schema->description);
   }
   append_object(&js, schema->fields, schema->strict, schema);
   bson_append_document_end(out, &js);
   return true;
}

/* Appends the JSON document `json` under key; false with an INPUT error naming what. */
static bool
append_json_doc(bson_t *out, const char *key, const char *json, const char *index,
                const char *what, flora_error_t *error)
{
   bson_t doc;
   bson_error_t berr;

   if (!bson_init_from_json(&doc, json, -1, &berr)) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "index %s: %s is not a JSON document: %s",
                      index, what, berr.message);
      return false;
   }
   if (strcmp(key, "key") == 0 && bson_empty(&doc)) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "index %s: no keys", index);
      bson_destroy(&doc);
      return false;
   }
   BSON_APPEND_DOCUMENT(out, key, &doc);
   bson_destroy(&doc);
   return true;
}

bool
flora_schema_index_specs(const flora_schema_t *schema, bson_t *out, flora_error_t *error)
{
   uint32_t i = 0;
   char key[16];
   const char *k;
   bool ok = true;

   FLORA_ASSERT_ARG(schema);
   FLORA_ASSERT_ARG(out);
   bson_init(out);
   for (const flora_index_decl_t *d = schema->indexes; ok && d && d->name; d++) {
      bson_t spec;
      bson_uint32_to_string(i++, &k, key, sizeof key);
      bson_append_document_begin(out, k, -1, &spec);
      ok = d->keys_json && append_json_doc(&spec, "key", d->keys_json, d->name, "keys_json", error);
      if (!d->keys_json) {
         flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "index %s: no keys", d->name);
      }
      BSON_APPEND_UTF8(&spec, "name", d->name);
      if (d->unique) {
         BSON_APPEND_BOOL(&spec, "unique", true);
      }
      if (d->sparse) {
         BSON_APPEND_BOOL(&spec, "sparse", true);
      }
      if (ok && d->partial_filter_json) {
         ok = append_json_doc(&spec, "partialFilterExpression", d->partial_filter_json, d->name,
                              "partial_filter_json", error);
      }
      if (ok && d->expire_after_seconds > 0) {
         /* MongoDB takes a 32-bit integer of seconds (manual: "TTL Indexes"). */
         if (d->expire_after_seconds > INT32_MAX) {
            flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                            "index %s: expire_after_seconds %" PRId64 " exceeds %d", d->name,
                            d->expire_after_seconds, INT32_MAX);
            ok = false;
         } else {
            BSON_APPEND_INT32(&spec, "expireAfterSeconds", (int32_t) d->expire_after_seconds);
         }
      }
      if (ok && d->weights_json) {
         ok = append_json_doc(&spec, "weights", d->weights_json, d->name, "weights_json", error);
      }
      if (ok && d->default_language) {
         BSON_APPEND_UTF8(&spec, "default_language", d->default_language);
      }
      bson_append_document_end(out, &spec);
   }
   if (!ok) {
      flora_error_prefix(error, "schema %s", schema->collection ? schema->collection : "?");
      bson_reinit(out);
   }
   return ok;
}
