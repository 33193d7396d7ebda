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
extern const flora_schema_t flora_schema_payments;       /* lib/pay/pay_schema.c */
extern const flora_schema_t flora_schema_webhook_events; /* lib/pay/pay_schema.c */

#ifdef __cplusplus
}
#endif
#endif
