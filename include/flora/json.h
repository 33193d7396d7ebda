/* Strict checks of JSON text from outside (request bodies, import files) before libbson
 * turns it into BSON. libbson's reader is lenient where a shop cannot be: it keeps both
 * values of a duplicated key (so validation sees one and storage keeps the other), wraps
 * integers beyond 64 bits, and accepts NUL characters inside strings. The check parses the
 * text once with Jansson (a well-kept JSON library, Debian's libjansson) and refuses:
 *   - duplicate keys in an object (RFC 8259 section 4: names SHOULD be unique),
 *   - integers outside int64 and reals outside double's range,
 *   - "\u0000" in strings,
 *   - anything that is not valid JSON (RFC 8259) in UTF-8,
 * naming the line and column of the first problem. */
#ifndef FLORA_JSON_H
#define FLORA_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "flora/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Checks text[0..len). false with an INPUT error ("line 3, column 12: duplicate object key
 * 'active'") otherwise. Borrowed text; nothing is kept. */
bool flora_json_check_strict(const char *text, size_t len, flora_error_t *error);

/* True when an object key starts with '$' at any depth: MongoDB operators ($ne, $gt,
 * $where) and Extended JSON wrappers ($oid, $numberLong, $regex), which libbson would turn
 * into typed values. Client request bodies are plain JSON, so the server refuses such
 * bodies before any route runs: operator injection is kept out of every route at once.
 * field[field_size] receives the field holding the first one ("email" for
 * {"email": {"$ne": null}}; the key itself at the top) and key_path[key_path_size] the
 * whole path ("email.$ne"). False also for text that is not JSON (the route reports it). */
bool flora_json_find_dollar_key(const char *text, size_t len, char *field, size_t field_size, char *key_path,
                                size_t key_path_size);

#ifdef __cplusplus
}
#endif
#endif
