/* The registry of the shop's schemas (include/flora/shop.h). */
#include <string.h>

#include "flora/shop.h"

static const flora_schema_t *const schemas[] = {
   &flora_schema_categories,
   &flora_schema_products,
   &flora_schema_users,
   &flora_schema_sessions,
   &flora_schema_password_resets,
   &flora_schema_rate_limits,
   &flora_schema_carts,
   &flora_schema_orders,
   &flora_schema_counters,
   &flora_schema_coupons,
   &flora_schema_coupon_redemptions,
   &flora_schema_reviews,
   &flora_schema_outbox,
   &flora_schema_sms_rate_limits,
   &flora_schema_delivery_zones,
   &flora_schema_delivery_rules,
   &flora_schema_delivery_slots,
   &flora_schema_geocode_cache,
   &flora_schema_payments,
   &flora_schema_webhook_events,
   NULL,
};

const flora_schema_t *const *
flora_shop_schemas(void)
{
   return schemas;
}

const flora_schema_t *
flora_shop_schema(const char *collection)
{
   FLORA_ASSERT_ARG(collection);
   for (size_t i = 0; schemas[i]; i++) {
      if (strcmp(schemas[i]->collection, collection) == 0) {
         return schemas[i];
      }
   }
   return NULL;
}

void
flora_shop_attach_schemas(flora_store_t *store)
{
   FLORA_ASSERT_ARG(store);
   for (size_t i = 0; schemas[i]; i++) {
      flora_schema_attach(store, schemas[i]);
   }
}
