/* The store's front (lib/store/store.c): URI dispatch, masking, options, transactions'
 * retry loop and nesting, cursors over lists, on the embedded engine; the mongodb engine's
 * open errors without a server. */
#include "flora_test.h"

#include "flora/store.h"
#include "store/store_private.h"

static void
test_open_errors(void **state)
{
   flora_store_t *store = NULL;
   flora_error_t error = {0};

   (void) state;
   assert_false(flora_store_open(&store, "postgres://x", NULL, &error));
   assert_null(store);
   assert_int_equal(error.domain, FLORA_DOMAIN_STORE);
   assert_int_equal(error.code, FLORA_STORE_BAD_VALUE);

   assert_false(flora_store_open(&store, "mongodb://", NULL, &error));
   assert_int_equal(error.code, FLORA_STORE_BAD_VALUE);

   /* Nothing listens on port 1: code 6, and the password never appears. */
   assert_false(flora_store_open(&store,
                                 "mongodb://shop:s3cret@127.0.0.1:1/flora?"
                                 "serverSelectionTimeoutMS=300&connectTimeoutMS=300",
                                 NULL, &error));
   assert_null(store);
   assert_int_equal(error.code, FLORA_STORE_CONNECTION);
   assert_non_null(strstr(error.message, "mongodb://shop:***@127.0.0.1:1/flora"));
   assert_null(strstr(error.message, "s3cret"));
}

static void
test_engine_and_uri(void **state)
{
   flora_store_options_t options = FLORA_STORE_OPTIONS_INIT;
   flora_store_t *store = NULL;
   flora_error_t error = {0};

   (void) state;
   options.pool_size = 0;              /* 0: the default */
   options.transaction_timeout_ms = 0; /* 0: the default */
   assert_true(flora_store_open(&store, "sqlite::memory:", &options, &error));
   assert_string_equal(flora_store_engine(store), "sqlite");
   assert_string_equal(flora_store_uri_masked(store), "sqlite::memory:");
   assert_int_equal(store->options.pool_size, 16);
   assert_int_equal(store->options.transaction_timeout_ms, 120000);
   assert_true(flora_store_ping(store, &error));
   flora_store_close(store);
   flora_store_close(NULL);
}

typedef struct nest_ctx {
   int calls;
   int inner_calls;
   bool in_txn_inside;
   const char *engine;
} nest_ctx_t;

static bool
inner(flora_store_t *txn, void *data, flora_error_t *error)
{
   nest_ctx_t *ctx = data;
   bson_t *doc = J("{'inner': true}");
   bool ok = flora_store_insert_one(txn, "nest", doc, NULL, NULL, error);

   bson_destroy(doc);
   ctx->inner_calls++;
   return ok;
}

static bool
outer(flora_store_t *txn, void *data, flora_error_t *error)
{
   nest_ctx_t *ctx = data;

   ctx->calls++;
   ctx->in_txn_inside = txn->in_txn;
   ctx->engine = flora_store_engine(txn);
   return flora_store_with_transaction(txn, inner, ctx, error);
}

static bool
always_conflicts(flora_store_t *txn, void *data, flora_error_t *error)
{
   int *calls = data;

   (void) txn;
   (*calls)++;
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_WRITE_CONFLICT, "conflict %d", *calls);
   return false;
}

static bool
silent_abort(flora_store_t *txn, void *data, flora_error_t *error)
{
   (void) txn;
   (void) data;
   (void) error;
   return false;
}

static void
test_transactions(void **state)
{
   flora_store_options_t options = FLORA_STORE_OPTIONS_INIT;
   flora_store_t *store = NULL;
   flora_error_t error = {0};
   nest_ctx_t ctx = {0, 0, false, NULL};
   int64_t n = 0;
   int calls = 0;

   (void) state;
   options.transaction_timeout_ms = 200;
   assert_true(flora_store_open(&store, "sqlite::memory:", &options, &error));
   assert_true(flora_store_create_collection(store, "nest", NULL, &error));
   /* Called on a transaction handle, with_transaction runs fn in the same transaction. */
   assert_true(flora_store_with_transaction(store, outer, &ctx, &error));
   assert_int_equal(ctx.calls, 1);
   assert_int_equal(ctx.inner_calls, 1);
   assert_true(ctx.in_txn_inside);
   assert_string_equal(ctx.engine, "sqlite");
   assert_true(flora_store_count_documents(store, "nest", NULL, NULL, &n, &error));
   assert_int_equal(n, 1);

   /* A transient error is retried until the timeout, then returned. */
   assert_false(flora_store_with_transaction(store, always_conflicts, &calls, &error));
   assert_true(calls > 1);
   assert_int_equal(error.code, FLORA_STORE_WRITE_CONFLICT);
   assert_true(flora_error_is_transient(&error));

   /* A callback that returns false without saying why still yields an error. */
   flora_error_clear(&error);
   assert_false(flora_store_with_transaction(store, silent_abort, NULL, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_STORE);
   assert_non_null(strstr(error.message, "aborted by its callback"));
   flora_store_close(store);
}

static void
test_cursors(void **state)
{
   flora_docs_t docs = FLORA_DOCS_INIT;
   flora_error_t error = {0}, got = {0};
   flora_cursor_t *cursor;
   const bson_t *doc;
   bson_t *a = J("{'a': 1}");

   (void) state;
   flora_docs_append_copy(&docs, a);
   flora_docs_append_copy(&docs, a);
   cursor = flora__cursor_from_docs(&docs);
   assert_int_equal(docs.len, 0);
   assert_true(flora_cursor_next(cursor, &doc));
   assert_bson_equal(doc, a);
   assert_true(flora_cursor_next(cursor, &doc));
   assert_false(flora_cursor_next(cursor, &doc));
   assert_false(flora_cursor_error(cursor, &got));
   flora_cursor_destroy(cursor);

   flora_error_set(&error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "bad");
   cursor = flora__cursor_failed(&error);
   assert_false(flora_cursor_next(cursor, &doc));
   assert_null(doc);
   assert_true(flora_cursor_error(cursor, &got));
   assert_string_equal(got.message, "bad");
   flora_cursor_destroy(cursor);
   flora_cursor_destroy(NULL);
   bson_destroy(a);
}

static bool
refuse(void *ctx, const char *collection, const bson_t *doc, flora_error_t *error)
{
   (void) ctx;
   (void) collection;
   (void) doc;
   (void) error; /* no message: the store still says why */
   return false;
}

static void
test_validator_registry(void **state)
{
   flora_store_t *store = NULL;
   flora_error_t error = {0};
   bson_t *doc = J("{'x': 1}");

   (void) state;
   assert_true(flora_store_open(&store, "sqlite::memory:", NULL, &error));
   flora_store_set_validator(store, "a", refuse, NULL);
   flora_store_set_validator(store, "b", refuse, NULL);
   flora_store_set_validator(store, "a", NULL, NULL);
   assert_true(flora__store_validate(store, "a", doc, &error));
   assert_false(flora__store_validate(store, "b", doc, &error));
   assert_int_equal(error.code, FLORA_STORE_DOCUMENT_VALIDATION);
   assert_string_equal(error.message, "Document failed validation: refused by the validator");
   assert_true(flora__store_validate(store, "c", doc, &error));
   bson_destroy(doc);
   flora_store_close(store); /* frees the remaining entry */
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_errors),
      cmocka_unit_test(test_engine_and_uri),
      cmocka_unit_test(test_transactions),
      cmocka_unit_test(test_cursors),
      cmocka_unit_test(test_validator_registry),
   };

   return cmocka_run_group_tests_name("store front", tests, NULL, NULL);
}
