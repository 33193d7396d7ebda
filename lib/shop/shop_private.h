/* Helpers shared by the shop's files (lib/shop). Not installed. */
#ifndef FLORA_SHOP_PRIVATE_H
#define FLORA_SHOP_PRIVATE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/error.h"
#include "flora/store.h"

/* Wall clock, milliseconds since the epoch (UTC). */
int64_t flora__shop_now_ms(void);

/* The first document of collection where field == value (a string), into *out. */
bool flora__shop_find_by_string(flora_store_t *store, const char *collection, const char *field,
                                const char *value, bson_t *out, bool *found, flora_error_t *error);

/* Turns a duplicate-key store error (11000) into a SHOP CONFLICT naming the field the
 * index covers ("sku: ... already exists"); other errors are left as they are. */
void flora__shop_map_duplicate(flora_error_t *error, const char *what);

/* Copies every field of src except those named in skip (NULL-terminated) into dst. */
void flora__shop_copy_except(const bson_t *src, bson_t *dst, const char *const *skip);

/* A VALIDATION error with one problem {path, reason}, appended to problems when given. */
bool flora__shop_invalid(bson_t *problems, flora_error_t *error, const char *path,
                         const char *reason);

#endif
