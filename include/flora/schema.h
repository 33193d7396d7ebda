/* Schemas: the declarative model layer (what Mongoose gives a Node shop, Flora gives to C).
 *
 * A schema is a static C table per collection: fields with BSON type(s), required,
 * default, bounds, lengths, enum, pattern, nested documents and arrays with their own
 * fields, references, custom validators, timestamps, and index declarations. It is the
 * single source of truth (DESIGN.md section 2); from it come:
 *   - validation with every failing path and reason in one error (HTTP 422);
 *   - defaults and createdAt/updatedAt on insert and update;
 *   - the MongoDB `$jsonSchema` collection validator (manual: "$jsonSchema", draft 4 subset
 *     with bsonType);
 *   - the index specifications both engines create through migrations;
 *   - the generated reference docs/schema/<collection>.md.
 *
 * Tables are static data: every pointer in them is borrowed for the program's lifetime.
 * Lists are terminated by an entry whose `path` (fields) or `name` (indexes) is NULL. */
#ifndef FLORA_SCHEMA_H
#define FLORA_SCHEMA_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/error.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Type bits; a field accepts any of the types in its mask. */
enum {
   FLORA_T_STRING = 1u << 0,
   FLORA_T_INT32 = 1u << 1,
   FLORA_T_INT64 = 1u << 2,
   FLORA_T_DOUBLE = 1u << 3,
   FLORA_T_DECIMAL = 1u << 4,
   FLORA_T_BOOL = 1u << 5,
   FLORA_T_DATE = 1u << 6,
   FLORA_T_OBJECTID = 1u << 7,
   FLORA_T_DOCUMENT = 1u << 8,
   FLORA_T_ARRAY = 1u << 9,
   FLORA_T_NULL = 1u << 10,
   FLORA_T_BINARY = 1u << 11,
   FLORA_T_INT = FLORA_T_INT32 | FLORA_T_INT64,                   /* whole numbers */
   FLORA_T_NUMBER = FLORA_T_INT | FLORA_T_DOUBLE | FLORA_T_DECIMAL, /* any number */
};

/* Defaults computed at insert time. */
typedef enum flora_default_kind {
   FLORA_DEFAULT_NONE = 0,
   FLORA_DEFAULT_VALUE,    /* default_json: a JSON/Extended JSON literal, e.g. "0", "\"RUB\"", "[]" */
   FLORA_DEFAULT_NOW,      /* the current UTC date */
   FLORA_DEFAULT_OBJECTID, /* a new ObjectId */
} flora_default_kind_t;

/* A custom validator of one value: return false and write a reason (no path) into
 * reason[reason_len] to refuse it. */
typedef bool (*flora_field_validate_fn)(const bson_iter_t *value, char *reason, size_t reason_len);

typedef struct flora_field flora_field_t;

struct flora_field {
   const char *path;        /* field name within its document (no dots); NULL ends a list */
   uint32_t types;          /* FLORA_T_* mask */
   bool required;
   const char *description; /* one line for the docs */
   flora_default_kind_t default_kind;
   const char *default_json;
   /* Numbers (and dates, in ms since epoch): inclusive bounds when has_min/has_max. */
   bool has_min, has_max;
   double min, max;
   /* Strings (UTF-8 characters) and arrays (elements); -1 = no bound. Use 0 for none
    * only via FLORA_FIELD_DEFAULTS below. */
   int64_t minlength, maxlength;
   const char *const *enum_values; /* NULL-terminated list of allowed strings, or NULL */
   const char *pattern;            /* POSIX extended regex a string must match, or NULL */
   const char *pattern_hint;       /* what the pattern means, for messages ("a URL slug") */
   const flora_field_t *fields;    /* FLORA_T_DOCUMENT: its fields (NULL: any document) */
   bool strict;                    /* with fields: unknown subfields are refused */
   const flora_field_t *items;     /* FLORA_T_ARRAY: one descriptor for every element */
   const char *ref_collection;     /* a reference: the collection and field it points to */
   const char *ref_field;
   flora_field_validate_fn validate;
};

/* Field initialiser: unset bounds are "none". Use as
 * {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true}. */
#define FLORA_FIELD_DEFAULTS .minlength = -1, .maxlength = -1

typedef struct flora_index_decl {
   const char *name;          /* NULL ends a list */
   const char *keys_json;     /* e.g. "{\"categoryIds\": 1, \"price\": 1}" or {"name": "text"} */
   bool unique;
   bool sparse;
   const char *partial_filter_json; /* partialFilterExpression, or NULL */
   int64_t expire_after_seconds;    /* TTL when > 0 */
   const char *weights_json;        /* text index weights, or NULL */
   const char *default_language;    /* text index language ("russian", "english", "none") */
   const char *serves;              /* the query this index serves, for the docs */
} flora_index_decl_t;

/* A whole-document validator (cross-field rules). Append problems with
 * flora_schema_problem(); return false when there were any. */
typedef bool (*flora_doc_validate_fn)(const bson_t *doc, bson_t *problems);

typedef struct flora_schema {
   const char *collection;
   const char *description;
   const flora_field_t *fields; /* top-level fields (without _id unless it has rules) */
   bool strict;                 /* unknown top-level fields are refused */
   bool timestamps;             /* createdAt on insert, updatedAt on insert and update */
   const flora_index_decl_t *indexes;
   flora_doc_validate_fn validate;
} flora_schema_t;

/* Validates doc. On failure returns false, fills *error (domain VALIDATION, code INVALID,
 * message "path: reason; path: reason" truncated to fit) and, when problems is not NULL,
 * appends every problem to it as an array document [{path, reason}, ...] (problems must be
 * an initialised, empty array document). Paths are dotted with array indexes
 * ("items.2.quantity").
 * Rules: types are strict BSON types, with one widening: FLORA_T_INT64 also accepts int32
 * (an int32 always fits an int64, and libbson's JSON parser makes small numbers int32).
 * null passes only when FLORA_T_NULL is in the mask, and then no other rule applies to it;
 * an absent field fails only when required. String lengths count Unicode code points
 * (invalid UTF-8 is itself a problem); enum and pattern apply to strings, bounds to numbers
 * of any type and to dates (ms since the epoch), lengths of arrays to their elements. A
 * field's custom validator runs when its type matched; the schema's whole-document hook
 * always runs. With timestamps, top-level createdAt/updatedAt must be dates, and strict
 * schemas allow them and _id. Problems come in declaration order, then unknown fields. */
bool flora_schema_validate(const flora_schema_t *schema, const bson_t *doc, bson_t *problems,
                           flora_error_t *error);

/* Appends {path, reason} to a problems array (for custom validators). */
void flora_schema_problem(bson_t *problems, const char *path, const char *reason);

/* Writes into *out (initialised by the callee) doc with defaults filled in for missing
 * fields (recursively), and createdAt/updatedAt set to now_ms when the schema has
 * timestamps. _id gets a new ObjectId when missing.
 * Details: defaults fill absent fields only (not nulls), inside present subdocuments and
 * every document element of arrays whose items have fields, and inside a default document
 * itself; _id comes first; a createdAt the document already has is kept (Mongoose's rule),
 * updatedAt is always now_ms. Errors: INPUT when a default_json does not parse. */
bool flora_schema_prepare_insert(const flora_schema_t *schema, const bson_t *doc, int64_t now_ms,
                                 bson_t *out, flora_error_t *error);

/* Writes into *out an update with updatedAt set (and, for upserts, createdAt via
 * $setOnInsert) when the schema has timestamps; otherwise a copy of update.
 * Details: the fields merge into an existing $set/$setOnInsert; an update that already
 * names updatedAt (or createdAt) in any operator keeps its own, since adding ours would
 * conflict (code 40); a replacement document gets updatedAt and keeps its createdAt.
 * Errors: STORE code 9 when $set or $setOnInsert is not a document. */
bool flora_schema_prepare_update(const flora_schema_t *schema, const bson_t *update,
                                 int64_t now_ms, bson_t *out, flora_error_t *error);

/* {$jsonSchema: {...}} for the MongoDB collection validator (MongoDB manual: "$jsonSchema").
 * It refuses what flora_schema_validate refuses except for rules $jsonSchema cannot state:
 * bounds on dates, custom validators, the whole-document hook, and enum on a field that
 * also accepts non-string types; the descriptions in the output name them. Patterns are
 * POSIX ERE here and PCRE on MongoDB: keep to their common subset. Never fails today;
 * *out is initialised by the callee. */
bool flora_schema_json_schema(const flora_schema_t *schema, bson_t *out, flora_error_t *error);

/* The index specifications (an array document, store.h's format). */
bool flora_schema_index_specs(const flora_schema_t *schema, bson_t *out, flora_error_t *error);

/* The reference page of the collection in Markdown (caller frees with free()). */
char *flora_schema_markdown(const flora_schema_t *schema);

/* Registers flora_schema_validate as the store's validator hook for the collection. */
void flora_schema_attach(flora_store_t *store, const flora_schema_t *schema);

/* The model layer: prepare, validate, then write. Validation problems are appended to
 * problems (may be NULL). */
bool flora_model_insert(flora_store_t *store, const flora_schema_t *schema, const bson_t *doc,
                        bson_t *problems, bson_t *reply, flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
