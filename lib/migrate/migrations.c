/* The migrations built into Flora, in id order (include/flora/migrate.h). A new change to
 * the database is a new row here; an applied row is never edited (its checksum would no
 * longer match). */
#include "flora/migrate.h"
#include "flora/shop.h"

/* Creates each collection of schemas with its $jsonSchema validator (applied by MongoDB,
 * stored by the embedded engine) and its declared indexes. Re-running after a crash
 * half-way is safe: an existing collection is kept and index creation is idempotent. */
static bool
create_schemas(flora_store_t *store, const flora_schema_t *const *schemas, flora_error_t *error)
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
drop_schemas(flora_store_t *store, const flora_schema_t *const *schemas, flora_error_t *error)
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

/* 0001: the catalog collections. Its list is frozen to what it applied when it shipped
 * (its checksum covers these schemas): collections added later get their own migration. */
static const flora_schema_t *const *
catalog_schemas(void)
{
   static const flora_schema_t *const list[] = {&flora_schema_categories, &flora_schema_products,
                                                NULL};

   return list;
}

static bool
create_collections_up(flora_store_t *store, flora_error_t *error)
{
   return create_schemas(store, catalog_schemas(), error);
}

static bool
create_collections_down(flora_store_t *store, flora_error_t *error)
{
   return drop_schemas(store, catalog_schemas(), error);
}

static const flora_migration_t create_collections = {
   .id = "0001_create_collections",
   .description = "Create the shop's collections with their validators and indexes",
   .up = create_collections_up,
   .down = create_collections_down,
   .schemas = catalog_schemas,
};

/* 0006: payments and webhook_events (lib/pay/pay_schema.c). */
static const flora_schema_t *const *
payments_schemas(void)
{
   static const flora_schema_t *const list[] = {&flora_schema_payments,
                                                &flora_schema_webhook_events, NULL};

   return list;
}

static bool
payments_up(flora_store_t *store, flora_error_t *error)
{
   return create_schemas(store, payments_schemas(), error);
}

static bool
payments_down(flora_store_t *store, flora_error_t *error)
{
   return drop_schemas(store, payments_schemas(), error);
}

static const flora_migration_t payments = {
   .id = "0006_payments",
   .description = "Create payments and webhook_events with their validators and indexes",
   .up = payments_up,
   .down = payments_down,
   .schemas = payments_schemas,
};

static const flora_migration_t *const migrations[] = {
   &create_collections,
   &payments,
   NULL,
};

const flora_migration_t *const *
flora_migrate_list(void)
{
   return migrations;
}
