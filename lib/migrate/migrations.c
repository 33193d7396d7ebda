/* The migrations built into Flora, in id order (include/flora/migrate.h). A new change to
 * the database is a new row here; an applied row is never edited (its checksum would no
 * longer match). */
#include "flora/migrate.h"
#include "flora/shop.h"

/* 0001: every shop collection with its $jsonSchema validator (applied by MongoDB, stored
 * by the embedded engine) and its declared indexes. Re-running after a crash half-way is
 * safe: an existing collection is kept and index creation is idempotent. */
static bool
create_schema_list(flora_store_t *store, const flora_schema_t *const *schemas,
                   flora_error_t *error)
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

static bool
create_collections_up(flora_store_t *store, flora_error_t *error)
{
   return create_schema_list(store, flora_shop_schemas(), error);
}

static bool
create_collections_down(flora_store_t *store, flora_error_t *error)
{
   const flora_schema_t *const *schemas = flora_shop_schemas();
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

static const flora_migration_t create_collections = {
   .id = "0001_create_collections",
   .description = "Create the shop's collections with their validators and indexes",
   .up = create_collections_up,
   .down = create_collections_down,
   .schemas = flora_shop_schemas,
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
   return create_schema_list(store, notification_schemas, error);
}

static bool
notifications_down(flora_store_t *store, flora_error_t *error)
{
   for (size_t i = 2; i > 0; i--) {
      if (!flora_store_drop_collection(store, notification_schemas[i - 1]->collection, error)) {
         return false;
      }
   }
   return true;
}

static const flora_migration_t notifications = {
   .id = "0005_notifications",
   .description = "Create the notification outbox and the SMS rate limit windows",
   .up = notifications_up,
   .down = notifications_down,
   .schemas = notification_schema_list,
};

static const flora_migration_t *const migrations[] = {
   &create_collections,
   &notifications,
   NULL,
};

const flora_migration_t *const *
flora_migrate_list(void)
{
   return migrations;
}
