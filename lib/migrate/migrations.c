/* The migrations built into Flora, in id order (include/flora/migrate.h). A new change to
 * the database is a new row here; an applied row is never edited (its checksum would no
 * longer match). */
#include "flora/migrate.h"
#include "flora/shop.h"

/* Creates each collection of schemas with its $jsonSchema validator (applied by MongoDB,
 * stored by the embedded engine) and its declared indexes. Re-running after a crash
 * half-way is safe: an existing collection is kept and index creation is idempotent. */
static bool
create_schemas(const flora_schema_t *const *schemas, flora_store_t *store, flora_error_t *error)
{
   for (size_t i = 0; schemas[i]; i++) {
      const char *coll = schemas[i]->collection;
      bson_t validator, opts = BSON_INITIALIZER, specs;
      flora_error_t err;
      bool ok;

      flora_error_clear(&err);
      ok = flora_schema_json_schema(schemas[i], &validator, error);
      if (ok) {
         BSON_APPEND_DOCUMENT(&opts, "validator", &validator);
         ok = flora_store_create_collection(store, coll, &opts, &err);
         if (!ok && err.domain == FLORA_DOMAIN_STORE &&
             err.code == FLORA_STORE_NAMESPACE_EXISTS) {
            ok = true;
         } else if (!ok && error) {
            *error = err;
         }
      }
      bson_destroy(&validator);
      bson_destroy(&opts);
      if (!ok) {
         flora_error_prefix(error, "creating collection %s", coll);
         return false;
      }
      ok = flora_schema_index_specs(schemas[i], &specs, error) &&
           (bson_empty(&specs) || flora_store_create_indexes(store, coll, &specs, error));
      bson_destroy(&specs);
      if (!ok) {
         flora_error_prefix(error, "creating the indexes of %s", coll);
         return false;
      }
   }
   return true;
}

/* Drops the collections of schemas, last first. */
static bool
drop_schemas(const flora_schema_t *const *schemas, flora_store_t *store, flora_error_t *error)
{
   size_t n = 0;

   while (schemas[n]) {
      n++;
   }
   for (size_t i = n; i > 0; i--) {
      if (!flora_store_drop_collection(store, schemas[i - 1]->collection, error)) {
         flora_error_prefix(error, "dropping collection %s", schemas[i - 1]->collection);
         return false;
      }
   }
   return true;
}

/* 0001: the catalog's collections (the shop's collections when it was written; later
 * collections come with later migrations, so its checksum stays the same). */
static const flora_schema_t *const catalog_schemas[] = {
   &flora_schema_categories,
   &flora_schema_products,
   NULL,
};

static const flora_schema_t *const *
create_collections_schemas(void)
{
   return catalog_schemas;
}

static bool
create_collections_up(flora_store_t *store, flora_error_t *error)
{
   return create_schemas(catalog_schemas, store, error);
}

static bool
create_collections_down(flora_store_t *store, flora_error_t *error)
{
   return drop_schemas(catalog_schemas, store, error);
}

static const flora_migration_t create_collections = {
   .id = "0001_create_collections",
   .description = "Create the shop's collections with their validators and indexes",
   .up = create_collections_up,
   .down = create_collections_down,
   .schemas = create_collections_schemas,
};

/* 0002: accounts (include/flora/users.h). */
static const flora_schema_t *const users_schemas[] = {
   &flora_schema_users,
   &flora_schema_sessions,
   &flora_schema_password_resets,
   &flora_schema_rate_limits,
   NULL,
};

static const flora_schema_t *const *
users_schemas_list(void)
{
   return users_schemas;
}

static bool
users_up(flora_store_t *store, flora_error_t *error)
{
   return create_schemas(users_schemas, store, error);
}

static bool
users_down(flora_store_t *store, flora_error_t *error)
{
   return drop_schemas(users_schemas, store, error);
}

static const flora_migration_t users = {
   .id = "0002_users",
   .description = "Create users, sessions, password_resets and rate_limits with their "
                  "validators and indexes (TTL on expiresAt)",
   .up = users_up,
   .down = users_down,
   .schemas = users_schemas_list,
};

/* 0003: the write path: carts, orders, counters, coupons, coupon redemptions, reviews. */
static const flora_schema_t *const orders_schemas[] = {
   &flora_schema_carts,   &flora_schema_orders,             &flora_schema_counters,
   &flora_schema_coupons, &flora_schema_coupon_redemptions, &flora_schema_reviews,
   NULL,
};

static const flora_schema_t *const *
orders_schemas_list(void)
{
   return orders_schemas;
}

static bool
orders_up(flora_store_t *store, flora_error_t *error)
{
   return create_schemas(orders_schemas, store, error);
}

static bool
orders_down(flora_store_t *store, flora_error_t *error)
{
   return drop_schemas(orders_schemas, store, error);
}

static const flora_migration_t orders = {
   .id = "0003_orders",
   .description = "Carts, orders, counters, coupons, coupon redemptions and reviews",
   .up = orders_up,
   .down = orders_down,
   .schemas = orders_schemas_list,
};

/* 0004: delivery zones, rules, slot capacity and the geocoder cache
 * (include/flora/delivery.h). */
static const flora_schema_t *const delivery_schemas[] = {
   &flora_schema_delivery_zones,
   &flora_schema_delivery_rules,
   &flora_schema_delivery_slots,
   &flora_schema_geocode_cache,
   NULL,
};

static const flora_schema_t *const *
delivery_schemas_list(void)
{
   return delivery_schemas;
}

static bool
delivery_up(flora_store_t *store, flora_error_t *error)
{
   return create_schemas(delivery_schemas, store, error);
}

static bool
delivery_down(flora_store_t *store, flora_error_t *error)
{
   return drop_schemas(delivery_schemas, store, error);
}

static const flora_migration_t delivery = {
   .id = "0004_delivery",
   .description = "Create delivery_zones, delivery_rules, delivery_slots and geocode_cache with "
                  "their validators and indexes (TTL on geocode_cache.createdAt)",
   .up = delivery_up,
   .down = delivery_down,
   .schemas = delivery_schemas_list,
};

/* 0005: the notification collections (outbox, sms_rate_limits) with their validators and
 * indexes, for a database migrated before they existed. Same idempotent steps as 0001. */
static const flora_schema_t *const notification_schemas[] = {
   &flora_schema_outbox,
   &flora_schema_sms_rate_limits,
   NULL,
};

static const flora_schema_t *const *
notification_schema_list(void)
{
   return notification_schemas;
}

static bool
notifications_up(flora_store_t *store, flora_error_t *error)
{
   return create_schemas(notification_schemas, store, error);
}

static bool
notifications_down(flora_store_t *store, flora_error_t *error)
{
   return drop_schemas(notification_schemas, store, error);
}

static const flora_migration_t notifications = {
   .id = "0005_notifications",
   .description = "Create the notification outbox and the SMS rate limit windows",
   .up = notifications_up,
   .down = notifications_down,
   .schemas = notification_schema_list,
};

/* 0006: payments and webhook_events (lib/pay/pay_schema.c). */
static const flora_schema_t *const payments_schemas[] = {
   &flora_schema_payments,
   &flora_schema_webhook_events,
   NULL,
};

static const flora_schema_t *const *
payments_schemas_list(void)
{
   return payments_schemas;
}

static bool
payments_up(flora_store_t *store, flora_error_t *error)
{
   return create_schemas(payments_schemas, store, error);
}

static bool
payments_down(flora_store_t *store, flora_error_t *error)
{
   return drop_schemas(payments_schemas, store, error);
}

static const flora_migration_t payments = {
   .id = "0006_payments",
   .description = "Create payments and webhook_events with their validators and indexes",
   .up = payments_up,
   .down = payments_down,
   .schemas = payments_schemas_list,
};

static const flora_migration_t *const migrations[] = {
   &create_collections,
   &users,
   &orders,
   &delivery,
   &notifications,
   &payments,
   NULL,
};

const flora_migration_t *const *
flora_migrate_list(void)
{
   return migrations;
}
