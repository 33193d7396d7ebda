/* Internals shared by the schema files (lib/doc/schema_*.c, lib/doc/model.c). Not installed. */
#ifndef FLORA_SCHEMA_PRIVATE_H
#define FLORA_SCHEMA_PRIVATE_H

#include <regex.h>

#include "flora/schema.h"

/* Names of the timestamp fields a schema with `timestamps` maintains (Mongoose's names). */
#define FLORA__SCHEMA_CREATED_AT "createdAt"
#define FLORA__SCHEMA_UPDATED_AT "updatedAt"

/* The FLORA_T_* bit of a BSON type, 0 for types no schema accepts. */
uint32_t flora__schema_type_bit(bson_type_t type);

/* True when a value of BSON type `type` is accepted by the mask. FLORA_T_INT64 accepts
 * int32 too: an int32 always fits an int64, and libbson's JSON parser makes small
 * numbers int32. No other conversions: types are strict BSON types. */
bool flora__schema_type_accepts(uint32_t types, bson_type_t type);

/* MongoDB's $jsonSchema bsonType alias of one FLORA_T_* bit ("string", "int", ...). */
const char *flora__schema_bson_type_name(uint32_t bit);

/* The compiled pattern of a field, or NULL when it does not compile (then *reason says
 * why). Compiled once per pattern and cached for the program's lifetime, keyed by the
 * pattern's address: pattern must be static (schema tables are, schema.h), never a buffer
 * that is reused. Thread-safe. */
const regex_t *flora__schema_regex(const char *pattern, char *reason, size_t reason_len);

/* Parses a default_json literal ("0", "\"RUB\"", "[]", "{\"$date\": ...}") and appends it
 * to out under key. False with an INPUT error naming the literal when it is not JSON. */
bool flora__schema_append_json_value(bson_t *out, const char *key, const char *json,
                                     flora_error_t *error);

/* Formats a number bound the shortest way that reads back exactly ("1", "0.5", "1e+21"). */
void flora__schema_format_number(double value, char *buf, size_t len);

/* Formats ms since the Unix epoch as ISO 8601 UTC ("2026-02-14T00:00:00.000Z"). */
void flora__schema_format_date(int64_t ms, char *buf, size_t len);

#endif
