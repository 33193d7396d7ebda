/* The outbox: enqueue inside a transaction, dedupe keys, refused payloads, rollback. */
#include "flora_test.h"

#include "flora/migrate.h"
#include "flora/outbox.h"
#include "flora/shop.h"
#include "flora/store.h"

static flora_store_t *
open_store(void)
{
   flora_store_t *store = NULL;
   flora_error_t error = {0};

   assert_true(flora_store_open(&store, "sqlite::memory:", NULL, &error));
   assert_true(flora_migrate_up(store, flora_migrate_list(), NULL, NULL, &error));
   flora_shop_attach_schemas(store);
   return store;
}

static int64_t
count(flora_store_t *store, const char *filter_json)
{
   bson_t *filter = J(filter_json);
   int64_t n = -1;
   flora_error_t error = {0};

   assert_true(flora_store_count_documents(store, "outbox", filter, NULL, &n, &error));
   bson_destroy(filter);
   return n;
}

typedef struct {
   const bson_t *payload;
   bool fail_after;
} txn_ctx_t;

static bool
enqueue_in_txn(flora_store_t *txn, void *ctx, flora_error_t *error)
{
   txn_ctx_t *c = ctx;

   if (!flora_outbox_enqueue(txn, FLORA_EVENT_ORDER_PAID, c->payload, "order.paid:1", error)) {
      return false;
   }
   if (c->fail_after) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT, "rolled back on purpose");
      return false;
   }
   return true;
}

static void
test_enqueue_transaction_and_dedupe(void **state)
{
   flora_store_t *store = open_store();
   bson_t *payload = J("{'orderId': {'$oid': '650000000000000000000001'}, 'number': 'FL-2026-000001',"
                       " 'status': 'paid', 'to': {'email': 'anna@example.ru', 'phone': '+79161234567',"
                       " 'locale': 'ru'}}");
   txn_ctx_t ctx = {payload, true};
   flora_error_t error = {0};

   (void) state;
   assert_false(flora_store_with_transaction(store, enqueue_in_txn, &ctx, &error));
   assert_int_equal(count(store, "{}"), 0); /* rolled back with the change it reported */

   ctx.fail_after = false;
   assert_true(flora_store_with_transaction(store, enqueue_in_txn, &ctx, &error));
   assert_true(flora_store_with_transaction(store, enqueue_in_txn, &ctx, &error));
   assert_int_equal(count(store, "{}"), 1);
   /* order.paid is e-mail only: one delivery although a phone was given */
   assert_int_equal(count(store, "{'status': 'pending', 'attempts': 0, 'deliveries': {'$size': 1},"
                                 " 'deliveries.channel': 'email', 'locale': 'ru'}"),
                    1);

   /* without a key, every enqueue writes; status_changed goes to e-mail and SMS */
   assert_true(flora_outbox_enqueue(store, FLORA_EVENT_ORDER_STATUS_CHANGED, payload, NULL, &error));
   assert_true(flora_outbox_enqueue(store, FLORA_EVENT_ORDER_STATUS_CHANGED, payload, NULL, &error));
   assert_int_equal(count(store, "{'event': 'order.status_changed', 'deliveries': {'$size': 2}}"), 2);
   bson_destroy(payload);
   flora_store_close(store);
}

static void
test_enqueue_refuses(void **state)
{
   static const struct {
      const char *event;
      const char *payload;
      const char *message;
   } cases[] = {
      {"order.exploded", "{'to': {'email': 'a@b.ru'}}", "unknown notification event"},
      {"order.paid", "{'number': 'x'}", "payload.to"},
      {"order.paid", "{'to': {'locale': 'ru'}}", "neither an e-mail"},
      {"order.paid", "{'to': {'email': 'a@b.ru', 'locale': 'de'}}", "payload.to.locale"},
      {"order.paid", "{'to': {'phone': '+79161234567'}}", "no template"},
   };
   flora_store_t *store = open_store();

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_t *payload = J(cases[i].payload);
      flora_error_t error = {0};

      assert_false(flora_outbox_enqueue(store, cases[i].event, payload, NULL, &error));
      assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
      if (!strstr(error.message, cases[i].message)) {
         fail_msg("case %zu: \"%s\" lacks \"%s\"", i, error.message, cases[i].message);
      }
      bson_destroy(payload);
   }
   assert_int_equal(count(store, "{}"), 0);
   flora_store_close(store);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_enqueue_transaction_and_dedupe),
      cmocka_unit_test(test_enqueue_refuses),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
