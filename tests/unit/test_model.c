/* The model layer over a real store (the embedded engine on sqlite::memory:):
 * flora_model_insert prepares, validates and writes; flora_schema_attach makes the store
 * refuse invalid documents from any write path with code 121. */
#include "flora_test.h"

#include "flora/schema.h"
#include "flora/store.h"

static const char *const kinds[] = {"bouquet", "plant", NULL};

static const flora_field_t line_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "sku", .types = FLORA_T_STRING, .required = true, .minlength = 1},
   {FLORA_FIELD_DEFAULTS, .path = "qty", .types = FLORA_T_INT32, .required = true, .has_min = true,
    .min = 1},
   {FLORA_FIELD_DEFAULTS, .path = "gift", .types = FLORA_T_BOOL, .default_kind = FLORA_DEFAULT_VALUE,
    .default_json = "false"},
   {.path = NULL},
};

static const flora_field_t line_item = {
   FLORA_FIELD_DEFAULTS, .types = FLORA_T_DOCUMENT, .fields = line_fields, .strict = true,
};

static const flora_field_t fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true, .maxlength = 10},
   {FLORA_FIELD_DEFAULTS, .path = "kind", .types = FLORA_T_STRING, .enum_values = kinds,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "\"bouquet\""},
   {FLORA_FIELD_DEFAULTS, .path = "lines", .types = FLORA_T_ARRAY, .items = &line_item,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]"},
   {.path = NULL},
};

static const flora_schema_t things = {
   .collection = "things",
   .fields = fields,
   .strict = true,
   .timestamps = true,
};

static int
setup(void **state)
{
   flora_store_t *store = NULL;
   flora_error_t error = {0};

   if (!flora_store_open(&store, "sqlite::memory:", NULL, &error)) {
      print_error("cannot open the embedded store: %s\n", error.message);
      return -1;
   }
   flora_schema_attach(store, &things);
   *state = store;
   return 0;
}

static int
teardown(void **state)
{
   flora_store_close(*state);
   return 0;
}

static void
test_model_insert_prepares_and_writes(void **state)
{
   flora_store_t *store = *state;
   bson_t *doc = J("{'name': 'Peonies', 'lines': [{'sku': 'P-1', 'qty': 2}]}");
   bson_t reply, found_doc, filter = BSON_INITIALIZER;
   bson_iter_t it;
   bool found = false;
   flora_error_t error = {0};

   if (!flora_model_insert(store, &things, doc, NULL, &reply, &error)) {
      fail_msg("insert: %s", error.message);
   }
   assert_true(bson_iter_init_find(&it, &reply, "insertedId") && BSON_ITER_HOLDS_OID(&it));
   BSON_APPEND_OID(&filter, "_id", bson_iter_oid(&it));
   assert_true(flora_store_find_one(store, "things", &filter, NULL, &found_doc, &found, &error));
   assert_true(found);
   assert_true(bson_iter_init_find(&it, &found_doc, "kind"));
   assert_string_equal(bson_iter_utf8(&it, NULL), "bouquet");
   {
      bson_iter_t sub;
      assert_true(bson_iter_init(&it, &found_doc) && bson_iter_find_descendant(&it, "lines.0.gift", &sub));
      assert_true(BSON_ITER_HOLDS_BOOL(&sub) && !bson_iter_bool(&sub));
   }
   assert_true(bson_iter_init_find(&it, &found_doc, "createdAt") && BSON_ITER_HOLDS_DATE_TIME(&it));
   assert_true(bson_iter_init_find(&it, &found_doc, "updatedAt") && BSON_ITER_HOLDS_DATE_TIME(&it));
   bson_destroy(&found_doc);
   bson_destroy(&filter);
   bson_destroy(&reply);
   bson_destroy(doc);
}

static void
test_model_insert_refuses_with_every_problem(void **state)
{
   flora_store_t *store = *state;
   bson_t *doc = J("{'name': 'Far too long a name', 'kind': 'tree', 'lines': [{'qty': 0}], 'x': 1}");
   bson_t *expected = J("[{'path': 'name', 'reason': 'must be at most 10 characters'},"
                        " {'path': 'kind', 'reason': 'must be one of: bouquet, plant'},"
                        " {'path': 'lines.0.sku', 'reason': 'is required'},"
                        " {'path': 'lines.0.qty', 'reason': 'must be >= 1'},"
                        " {'path': 'x', 'reason': 'unknown field'}]");
   bson_t problems = BSON_INITIALIZER, reply, empty = BSON_INITIALIZER;
   flora_error_t error = {0};
   int64_t before = -1, after = -1;

   assert_true(flora_store_count_documents(store, "things", &empty, NULL, &before, &error));
   assert_false(flora_model_insert(store, &things, doc, &problems, &reply, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
   assert_int_equal(flora_error_http_status(&error), 422);
   assert_bson_equal(&problems, expected);
   assert_true(bson_empty(&reply));
   assert_true(flora_store_count_documents(store, "things", &empty, NULL, &after, &error));
   assert_int_equal(before, after);
   bson_destroy(&reply);
   bson_destroy(&problems);
   bson_destroy(expected);
   bson_destroy(doc);
}

/* The attached validator guards every write path, not only the model layer. */
static void
test_attached_validator_guards_the_store(void **state)
{
   flora_store_t *store = *state;
   bson_t *bad = J("{'name': 5}");
   bson_t *good = J("{'_id': 1, 'name': 'Tulips'}");
   bson_t *filter = J("{'_id': 1}");
   bson_t *bad_update = J("{'$set': {'kind': 'tree'}}");
   bson_t *good_update = J("{'$set': {'kind': 'plant'}}");
   bson_t reply;
   flora_error_t error = {0};

   assert_false(flora_store_insert_one(store, "things", bad, NULL, &reply, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_STORE);
   assert_int_equal(error.code, FLORA_STORE_DOCUMENT_VALIDATION);
   assert_non_null(strstr(error.message, "name: must be a string"));
   bson_destroy(&reply);

   assert_true(flora_store_insert_one(store, "things", good, NULL, &reply, &error));
   bson_destroy(&reply);
   memset(&error, 0, sizeof error);
   assert_false(flora_store_update_one(store, "things", filter, bad_update, NULL, &reply, &error));
   assert_int_equal(error.code, FLORA_STORE_DOCUMENT_VALIDATION);
   assert_non_null(strstr(error.message, "kind: must be one of: bouquet, plant"));
   bson_destroy(&reply);
   if (!flora_store_update_one(store, "things", filter, good_update, NULL, &reply, &error)) {
      fail_msg("update: %s", error.message);
   }
   bson_destroy(&reply);

   bson_destroy(good_update);
   bson_destroy(bad_update);
   bson_destroy(filter);
   bson_destroy(good);
   bson_destroy(bad);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_model_insert_prepares_and_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_model_insert_refuses_with_every_problem, setup, teardown),
      cmocka_unit_test_setup_teardown(test_attached_validator_guards_the_store, setup, teardown),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
