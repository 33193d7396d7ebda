/* The model layer over the store: see include/flora/schema.h (flora_schema_attach,
 * flora_model_insert). */
#include "doc/schema_private.h"

#include <time.h>

/* The store's validator hook (store.h flora_validate_fn): ctx is the schema. */
static bool
validate_hook(void *ctx, const char *collection, const bson_t *doc, flora_error_t *error)
{
   (void) collection;
   return flora_schema_validate((const flora_schema_t *) ctx, doc, NULL, error);
}

void
flora_schema_attach(flora_store_t *store, const flora_schema_t *schema)
{
   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(schema);
   FLORA_ASSERT_ARG(schema->collection);
   flora_store_set_validator(store, schema->collection, validate_hook, (void *) schema);
}

static int64_t
now_ms(void)
{
   struct timespec ts;

   clock_gettime(CLOCK_REALTIME, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
flora_model_insert(flora_store_t *store, const flora_schema_t *schema, const bson_t *doc,
                   bson_t *problems, bson_t *reply, flora_error_t *error)
{
   bson_t prepared = BSON_INITIALIZER;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(schema);
   FLORA_ASSERT_ARG(doc);
   if (!flora_schema_prepare_insert(schema, doc, now_ms(), &prepared, error) ||
       !flora_schema_validate(schema, &prepared, problems, error)) {
      if (reply) {
         bson_init(reply);
      }
      goto cleanup;
   }
   ok = flora_store_insert_one(store, schema->collection, &prepared, NULL, reply, error);
cleanup:
   bson_destroy(&prepared);
   return ok;
}
