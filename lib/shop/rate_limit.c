/* Fixed-window rate limits in the store (include/flora/users.h, collection rate_limits). */
#include <string.h>

#include "flora/users.h"
#include "shop/shop_private.h"

#define RATE_LIMITS "rate_limits"

/* One attempt: {key, expiresAt > now} $inc count, upserting a new window. A window
 * that has ended but is not swept yet makes the upsert clash on the unique key (11000): it is
 * deleted (only if still ended) and the attempt counted again. */
bool
flora_rate_limit_hit(flora_store_t *store, const char *key, int64_t limit, int64_t window_s,
                     int64_t *retry_after_s, flora_error_t *error)
{
   bson_t window = BSON_INITIALIZER;
   bson_iter_t it;
   bool found = false;
   bool ok = false;
   int64_t now = flora__shop_now_ms();
   int64_t count = 0;
   int64_t expires = now + window_s * 1000;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(key);
   FLORA_ASSERT_ARG(limit >= 1);
   FLORA_ASSERT_ARG(window_s >= 1);
   FLORA_ASSERT_ARG(retry_after_s);
   *retry_after_s = 0;
   for (int attempt = 0; attempt < 3 && !ok; attempt++) {
      bson_t *filter = BCON_NEW("key", BCON_UTF8(key), "expiresAt", "{", "$gt",
                                BCON_DATE_TIME(now), "}");
      bson_t *update = BCON_NEW("$inc", "{", "count", BCON_INT64(1), "}", "$setOnInsert", "{",
                                "expiresAt", BCON_DATE_TIME(now + window_s * 1000), "}");
      bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true), "returnDocument", BCON_UTF8("after"));
      flora_error_t err = {0};

      bson_destroy(&window);
      ok = flora_store_find_one_and_update(store, RATE_LIMITS, filter, update, opts, &window,
                                           &found, &err);
      bson_destroy(filter);
      bson_destroy(update);
      bson_destroy(opts);
      if (!ok && err.domain == FLORA_DOMAIN_STORE && err.code == FLORA_STORE_DUPLICATE_KEY) {
         bson_t *ended = BCON_NEW("key", BCON_UTF8(key), "expiresAt", "{", "$lte",
                                  BCON_DATE_TIME(now), "}");

         if (!flora_store_delete_one(store, RATE_LIMITS, ended, NULL, NULL, error)) {
            bson_destroy(ended);
            goto cleanup;
         }
         bson_destroy(ended);
         continue;
      }
      if (!ok) {
         if (error) {
            *error = err;
         }
         goto cleanup;
      }
   }
   if (!ok) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_WRITE_CONFLICT,
                      "rate limit %s: the window kept changing", key);
      goto cleanup;
   }
   ok = false;
   if (found && bson_iter_init_find(&it, &window, "count")) {
      count = bson_iter_as_int64(&it);
   }
   if (found && bson_iter_init_find(&it, &window, "expiresAt") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
      expires = bson_iter_date_time(&it);
   }
   if (count > limit) {
      int64_t wait_ms = expires - now;

      *retry_after_s = wait_ms > 0 ? (wait_ms + 999) / 1000 : 1;
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_RATE_LIMITED,
                      "too many attempts; try again in %lld s", (long long) *retry_after_s);
      goto cleanup;
   }
   ok = true;
cleanup:
   bson_destroy(&window);
   return ok;
}
