/* The API's JSON view of BSON: what clients see instead of Extended JSON wrappers.
 * ObjectId → its 24-character hex string; date → RFC 3339 UTC string with milliseconds
 * ("2026-11-30T16:30:19.123Z"); decimal128 → its decimal string. int64 stays a JSON number
 * (money in kopecks fits 2^53 with room to spare); everything else is unchanged. */
#ifndef FLORA_SRC_JSON_VIEW_H
#define FLORA_SRC_JSON_VIEW_H

#include <bson/bson.h>

/* Appends the view of every field of in to out (an initialised document or array). */
void flora_json_view(const bson_t *in, bson_t *out);

/* The view serialised as JSON (relaxed Extended JSON of the converted document); as an
 * array when is_array. Caller frees with bson_free. *len receives the length. */
char *flora_json_view_string(const bson_t *in, bool is_array, size_t *len);

#endif
