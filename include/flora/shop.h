/* The shop's collections: their schemas (the single source of truth, include/flora/schema.h)
 * and the registry that migrations, validation and the generated docs read. */
#ifndef FLORA_SHOP_H
#define FLORA_SHOP_H

#include "flora/schema.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every shop collection's schema, NULL-terminated, in the order migrations create them.
 * Static data. */
const flora_schema_t *const *flora_shop_schemas(void);

/* The schema of one collection by name, or NULL. */
const flora_schema_t *flora_shop_schema(const char *collection);

/* Attaches every shop schema's validator to the store (flora_schema_attach). */
void flora_shop_attach_schemas(flora_store_t *store);

extern const flora_schema_t flora_schema_categories;
extern const flora_schema_t flora_schema_products;
extern const flora_schema_t flora_schema_users;
extern const flora_schema_t flora_schema_sessions;
extern const flora_schema_t flora_schema_password_resets;
extern const flora_schema_t flora_schema_rate_limits;
extern const flora_schema_t flora_schema_carts;              /* lib/shop/orders_schema.c */
extern const flora_schema_t flora_schema_orders;
extern const flora_schema_t flora_schema_counters;
extern const flora_schema_t flora_schema_coupons;            /* lib/shop/coupons_schema.c */
extern const flora_schema_t flora_schema_coupon_redemptions;
extern const flora_schema_t flora_schema_reviews;            /* lib/shop/reviews_schema.c */
extern const flora_schema_t flora_schema_outbox;          /* lib/notify/notify_schema.c */
extern const flora_schema_t flora_schema_sms_rate_limits; /* lib/notify/notify_schema.c */
/* Delivery (lib/delivery/delivery_schema.c, include/flora/delivery.h). */
extern const flora_schema_t flora_schema_delivery_zones;
extern const flora_schema_t flora_schema_delivery_rules;
extern const flora_schema_t flora_schema_delivery_slots;
extern const flora_schema_t flora_schema_geocode_cache;
extern const flora_schema_t flora_schema_payments;       /* lib/pay/pay_schema.c */
extern const flora_schema_t flora_schema_webhook_events; /* lib/pay/pay_schema.c */

#ifdef __cplusplus
}
#endif
#endif
