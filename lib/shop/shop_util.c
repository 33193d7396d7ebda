/* Helpers shared by the shop's files. */
#include <string.h>
#include <time.h>

#include "flora/schema.h"
#include "shop/shop_private.h"

int64_t
flora__shop_now_ms(void)
{
   struct timespec ts;

   clock_gettime(CLOCK_REALTIME, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
flora__shop_find_by_string(flora_store_t *store, const char *collection, const char *field,
                           const char *value, bson_t *out, bool *found, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bool ok;

   BSON_APPEND_UTF8(&filter, field, value);
   ok = flora_store_find_one(store, collection, &filter, NULL, out, found, error);
   bson_destroy(&filter);
   return ok;
}

void
flora__shop_map_duplicate(flora_error_t *error, const char *what)
{
   const char *index;
   char field[128];
   size_t n = 0;

   if (!error || error->domain != FLORA_DOMAIN_STORE || error->code != FLORA_STORE_DUPLICATE_KEY) {
      return;
   }
   /* MongoDB's message: "E11000 duplicate key error collection: db.c index: sku_1 dup key: ..." */
   index = strstr(error->message, "index: ");
   if (index) {
      index += strlen("index: ");
      while (index[n] && index[n] != ' ' && n + 1 < sizeof field) {
         field[n] = index[n];
         n++;
      }
   }
   field[n] = '\0';
   /* An index named after one ascending key, e.g. "variants.sku_1": the field is the key. */
   if (n > 2 && strcmp(field + n - 2, "_1") == 0) {
      field[n - 2] = '\0';
   }
   flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT, "%s: %s with this %s already exists",
                   n ? field : "_id", what, n ? field : "_id");
}

void
flora__shop_copy_except(const bson_t *src, bson_t *dst, const char *const *skip)
{
   bson_iter_t it;

   if (!bson_iter_init(&it, src)) {
      return;
   }
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      bool skipped = false;

      for (size_t i = 0; skip && skip[i]; i++) {
         if (strcmp(skip[i], key) == 0) {
            skipped = true;
            break;
         }
      }
      if (!skipped) {
         bson_append_iter(dst, key, -1, &it);
      }
   }
}

bool
flora__shop_invalid(bson_t *problems, flora_error_t *error, const char *path, const char *reason)
{
   if (problems) {
      flora_schema_problem(problems, path, reason);
   }
   flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "%s: %s", path, reason);
   return false;
}
