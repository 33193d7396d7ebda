/* The write path under concurrency (issue 4, "Must hold"): checkouts against a temporary
 * sqlite FILE store shared by many threads, coupons with limits, idempotency keys,
 * cancellation restocking once, and the order state machine. */
#include "flora_test.h"

#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "flora/catalog.h"
#include "flora/config.h"
#include "flora/coupons.h"
#include "flora/delivery.h"
#include "flora/migrate.h"
#include "flora/orders.h"
#include "flora/shop.h"

static flora_store_t *store;
static flora_config_t *config;
static char dir[] = "/tmp/flora-checkout-XXXXXX";
static char db_path[256];

static int
setup(void **state)
{
   flora_error_t error = {0};
   flora_store_options_t options = FLORA_STORE_OPTIONS_INIT;
   char uri[300];

   (void) state;
   snprintf(dir, sizeof dir, "/tmp/flora-checkout-XXXXXX");
   if (!mkdtemp(dir)) {
      fail_msg("mkdtemp failed");
   }
   snprintf(db_path, sizeof db_path, "%s/flora.db", dir);
   snprintf(uri, sizeof uri, "sqlite:%s", db_path);
   options.busy_timeout_ms = 60000;
   options.pool_size = 32;
   options.ttl_sweep_interval_s = 0;
   if (!flora_store_open(&store, uri, &options, &error)) {
      fail_msg("open: %s", error.message);
   }
   if (!flora_migrate_up(store, flora_migrate_list(), NULL, NULL, &error)) {
      fail_msg("migrate: %s", error.message);
   }
   flora_shop_attach_schemas(store);
   if (!flora_config_load(&config, NULL, &error)) {
      fail_msg("config: %s", error.message);
   }
   return 0;
}

static int
teardown(void **state)
{
   char path[300];

   (void) state;
   flora_store_close(store);
   flora_config_destroy(config);
   store = NULL;
   config = NULL;
   unlink(db_path);
   snprintf(path, sizeof path, "%s-wal", db_path);
   unlink(path);
   snprintf(path, sizeof path, "%s-shm", db_path);
   unlink(path);
   rmdir(dir);
   return 0;
}

static void
make_product(const char *sku, int stock, int price)
{
   char json[512];
   bson_t *input, out, problems = BSON_INITIALIZER;
   flora_error_t error = {0};

   snprintf(json, sizeof json,
            "{'sku': '%s', 'name': 'Букет %s', 'images': [{'url': 'https://img.example/%s.jpg'}], "
            "'variants': [{'sku': '%s-M', 'name': 'M', 'price': %d, 'stock': %d}]}",
            sku, sku, sku, sku, price, stock);
   input = J(json);
   if (!flora_catalog_create_product(store, input, &problems, &out, &error)) {
      char *p = flora_test_str(&problems);

      fail_msg("create product: %s %s", error.message, p);
   }
   bson_destroy(&out);
   bson_destroy(&problems);
   bson_destroy(input);
}

static int64_t
variant_stock(const char *sku)
{
   bson_t *filter = BCON_NEW("variants.sku", BCON_UTF8(sku));
   bson_t doc;
   bool found = false;
   flora_error_t error = {0};
   bson_iter_t it, v, f;
   int64_t stock = -1;

   assert_true(flora_store_find_one(store, "products", filter, NULL, &doc, &found, &error));
   assert_true(found);
   assert_true(bson_iter_init_find(&it, &doc, "variants") && bson_iter_recurse(&it, &v));
   while (bson_iter_next(&v)) {
      bson_iter_recurse(&v, &f);
      if (bson_iter_find(&f, "sku") && strcmp(bson_iter_utf8(&f, NULL), sku) == 0) {
         bson_iter_recurse(&v, &f);
         bson_iter_find(&f, "stock");
         stock = bson_iter_as_int64(&f);
      }
   }
   bson_destroy(&doc);
   bson_destroy(filter);
   return stock;
}

static int64_t
count(const char *collection, const char *filter_json)
{
   bson_t *filter = J(filter_json);
   int64_t n = -1;
   flora_error_t error = {0};

   assert_true(flora_store_count_documents(store, collection, filter, NULL, &n, &error));
   bson_destroy(filter);
   return n;
}

static int64_t
path_int(const bson_t *doc, const char *path)
{
   bson_iter_t it, found;

   assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &found));
   return bson_iter_as_int64(&found);
}

/* A checkout input for sku x qty with an e-mail and an optional coupon. */
static bson_t *
checkout_input(const char *sku, int qty, const char *email, const char *coupon)
{
   char json[1024];

   snprintf(json, sizeof json,
            "{'customer': {'name': 'Анна', 'email': '%s', 'phone': '8 916 123-45-67'}, "
            "'items': [{'sku': '%s', 'quantity': %d}], "
            "'delivery': {'address': {'text': 'Москва, Тверская 1'}, 'date': '2026-12-30', 'slot': '09-12', "
            "'cardMessage': 'С днём рождения!', 'callFirst': true}%s%s%s}",
            email, sku, qty, coupon ? ", 'couponCode': '" : "", coupon ? coupon : "", coupon ? "'" : "");
   return J(json);
}

typedef struct worker {
   pthread_t thread;
   pthread_barrier_t *barrier;
   const char *sku;
   const char *coupon;
   const char *idem_key;
   char token[64];
   char email[64];
   bool ok;
   bool replayed;
   flora_error_t error;
   bson_oid_t order_id;
   int64_t discount;
} worker_t;

static void *
run_checkout(void *arg)
{
   worker_t *w = arg;
   flora_customer_t customer = {.has_user = false, .guest_token = w->token};
   bson_t *input = checkout_input(w->sku, 1, w->email, w->coupon);
   bson_t order, problems = BSON_INITIALIZER;
   bson_iter_t it;

   pthread_barrier_wait(w->barrier);
   w->ok = flora_checkout(store, config, &customer, input, w->idem_key, &problems, &order, &w->replayed, &w->error);
   if (w->ok) {
      bson_iter_init_find(&it, &order, "_id");
      bson_oid_copy(bson_iter_oid(&it), &w->order_id);
      w->discount = path_int(&order, "totals.discount");
   }
   bson_destroy(&order);
   bson_destroy(&problems);
   bson_destroy(input);
   return NULL;
}

static void
run_workers(worker_t *w, size_t n)
{
   pthread_barrier_t barrier;

   pthread_barrier_init(&barrier, NULL, (unsigned) n);
   for (size_t i = 0; i < n; i++) {
      w[i].barrier = &barrier;
      assert_int_equal(pthread_create(&w[i].thread, NULL, run_checkout, &w[i]), 0);
   }
   for (size_t i = 0; i < n; i++) {
      pthread_join(w[i].thread, NULL);
   }
   pthread_barrier_destroy(&barrier);
}

/* ---- single checkout --------------------------------------------------------------- */

static void
test_checkout_copies_catalog_and_totals(void **state)
{
   flora_customer_t customer = {.has_user = false, .guest_token = "guest-token-0000000001"};
   bson_t *input, order, problems = BSON_INITIALIZER;
   flora_error_t error = {0};
   bson_iter_t it, found;
   bool replayed = true;

   (void) state;
   make_product("ROSE", 3, 250000);
   input = checkout_input("ROSE-M", 2, "Anna@Example.com", NULL);
   if (!flora_checkout(store, config, &customer, input, NULL, &problems, &order, &replayed, &error)) {
      fail_msg("checkout: %s", error.message);
   }
   assert_false(replayed);
   bson_iter_init(&it, &order);
   assert_true(bson_iter_find_descendant(&it, "number", &found));
   assert_true(strncmp(bson_iter_utf8(&found, NULL), "FL-", 3) == 0);
   assert_int_equal(strlen(bson_iter_utf8(&found, NULL)), strlen("FL-2026-000001"));
   assert_string_equal(bson_iter_utf8(&found, NULL) + 8, "000001");
   bson_iter_init(&it, &order);
   assert_true(bson_iter_find_descendant(&it, "items.0.name", &found));
   assert_string_equal(bson_iter_utf8(&found, NULL), "Букет ROSE");
   bson_iter_init(&it, &order);
   assert_true(bson_iter_find_descendant(&it, "items.0.image", &found));
   assert_string_equal(bson_iter_utf8(&found, NULL), "https://img.example/ROSE.jpg");
   bson_iter_init(&it, &order);
   assert_true(bson_iter_find_descendant(&it, "customer.email", &found));
   assert_string_equal(bson_iter_utf8(&found, NULL), "anna@example.com");
   bson_iter_init(&it, &order);
   assert_true(bson_iter_find_descendant(&it, "delivery.recipient.phone", &found));
   assert_string_equal(bson_iter_utf8(&found, NULL), "+79161234567");
   assert_int_equal(path_int(&order, "totals.subtotal"), 500000);
   assert_int_equal(path_int(&order, "totals.delivery"), flora_config_int(config, "delivery.flat_fee"));
   assert_int_equal(path_int(&order, "totals.total"), 500000 + flora_config_int(config, "delivery.flat_fee"));
   assert_int_equal(variant_stock("ROSE-M"), 1);
   assert_int_equal(count("products", "{'sku': 'ROSE', 'popularity': 2, 'inStock': true}"), 1);
   bson_destroy(input);
   bson_destroy(&order);

   /* The last unit: inStock follows. Then out of stock names the SKU and what is left. */
   input = checkout_input("ROSE-M", 1, "anna@example.com", NULL);
   assert_true(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   bson_destroy(&order);
   assert_int_equal(count("products", "{'sku': 'ROSE', 'inStock': false}"), 1);
   assert_false(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   assert_int_equal(error.code, FLORA_ERR_OUT_OF_STOCK);
   assert_non_null(strstr(error.message, "ROSE-M"));
   assert_non_null(strstr(error.message, "0 left"));
   assert_int_equal(count("orders", "{}"), 2);
   assert_int_equal(count("counters", "{'seq': 2}"), 1); /* the failed checkout used no number */
   bson_destroy(input);
   bson_destroy(&order);
   bson_destroy(&problems);
}

static void
test_bad_input_names_every_field(void **state)
{
   flora_customer_t customer = {.has_user = false, .guest_token = "guest-token-0000000002"};
   bson_t *input, order, problems = BSON_INITIALIZER;
   flora_error_t error = {0};
   char *text;

   (void) state;
   input = J("{'customer': {'name': 5, 'email': 'nope'}, 'items': [{'sku': 'A', 'quantity': 0}, "
             "{'sku': 'B', 'quantity': 'x'}], 'delivery': {'address': {'text': ''}, 'date': '2026-02-30', "
             "'slot': '12-09', 'anonymous': 'yes'}, 'extra': 1}");
   assert_false(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
   text = flora_test_str(&problems);
   for (size_t i = 0; i < 9; i++) {
      static const char *const paths[] = {"customer.name", "customer.email", "items.0.quantity", "items.1.quantity",
                                          "delivery.address.text", "delivery.date", "delivery.slot",
                                          "delivery.anonymous", "extra"};

      if (!strstr(text, paths[i])) {
         fail_msg("problems lack %s: %s", paths[i], text);
      }
   }
   bson_free(text);
   bson_destroy(input);
   bson_destroy(&order);
   bson_reinit(&problems);

   /* Operator injection: refused as INPUT (400), naming the field. */
   input = J("{'customer': {'name': 'A', 'email': {'$ne': null}}}");
   assert_false(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
   assert_non_null(strstr(error.message, "customer.email.$ne"));
   bson_destroy(input);
   bson_destroy(&order);
   bson_destroy(&problems);
}

/* ---- must hold: concurrency ----------------------------------------------------------- */

static void
test_hundred_checkouts_five_in_stock(void **state)
{
   enum { N = 100 };
   worker_t *w = calloc(N, sizeof *w);
   int ok = 0, oos = 0;

   (void) state;
   make_product("LAST", 5, 100000);
   for (int i = 0; i < N; i++) {
      w[i].sku = "LAST-M";
      snprintf(w[i].token, sizeof w[i].token, "guest-token-%08d", i);
      snprintf(w[i].email, sizeof w[i].email, "buyer%d@example.com", i);
   }
   run_workers(w, N);
   for (int i = 0; i < N; i++) {
      if (w[i].ok) {
         ok++;
      } else if (w[i].error.code == FLORA_ERR_OUT_OF_STOCK && strstr(w[i].error.message, "LAST-M")) {
         oos++;
      } else {
         fail_msg("worker %d: unexpected error %u/%u %s", i, w[i].error.domain, w[i].error.code, w[i].error.message);
      }
   }
   assert_int_equal(ok, 5);
   assert_int_equal(oos, 95);
   assert_int_equal(variant_stock("LAST-M"), 0);
   assert_int_equal(count("orders", "{'items.sku': 'LAST-M'}"), 5);
   assert_int_equal(count("products", "{'sku': 'LAST', 'inStock': false, 'popularity': 5}"), 1);
   free(w);
}

static void
make_coupon(const char *json)
{
   bson_t *input = J(json), out, problems = BSON_INITIALIZER;
   flora_error_t error = {0};

   if (!flora_coupons_create(store, input, &problems, &out, &error)) {
      char *p = flora_test_str(&problems);

      fail_msg("coupon: %s %s", error.message, p);
   }
   bson_destroy(&out);
   bson_destroy(&problems);
   bson_destroy(input);
}

static void
test_fifty_orders_coupon_limited_to_ten(void **state)
{
   enum { N = 50 };
   worker_t *w = calloc(N, sizeof *w);
   int discounted = 0, refused = 0;

   (void) state;
   make_product("MANY", 1000, 200000);
   make_coupon("{'code': 'spring10', 'kind': 'percent', 'value': 10, 'usageLimit': 10}");
   for (int i = 0; i < N; i++) {
      w[i].sku = "MANY-M";
      w[i].coupon = "Spring10";
      snprintf(w[i].token, sizeof w[i].token, "guest-token-%08d", i);
      snprintf(w[i].email, sizeof w[i].email, "c%d@example.com", i);
   }
   run_workers(w, N);
   for (int i = 0; i < N; i++) {
      if (w[i].ok) {
         assert_int_equal(w[i].discount, 20000);
         discounted++;
      } else if (w[i].error.code == FLORA_ERR_CONFLICT && strstr(w[i].error.message, "limit_reached")) {
         refused++;
      } else {
         fail_msg("worker %d: unexpected error %s", i, w[i].error.message);
      }
   }
   assert_int_equal(discounted, 10);
   assert_int_equal(refused, 40);
   assert_int_equal(count("coupons", "{'code': 'SPRING10', 'uses': 10}"), 1);
   assert_int_equal(count("outbox", "{'event': 'order.created'}"), 10); /* none for refused ones */
   assert_int_equal(count("orders", "{'coupon.code': 'SPRING10'}"), 10);
   assert_int_equal(count("coupon_redemptions", "{}"), 10);
   assert_int_equal(variant_stock("MANY-M"), 990); /* refused checkouts took nothing */
   free(w);
}

static void
test_per_customer_limit(void **state)
{
   flora_customer_t customer = {.has_user = false, .guest_token = "guest-token-0000000003"};
   bson_t *input, order, problems = BSON_INITIALIZER;
   flora_error_t error = {0};

   (void) state;
   make_product("PC", 100, 100000);
   make_coupon("{'code': 'ONCE', 'kind': 'fixed', 'value': 30000}");
   make_coupon("{'code': 'TWICE', 'kind': 'free_delivery', 'perCustomerLimit': 2}");
   input = checkout_input("PC-M", 1, "same@example.com", "once");
   assert_true(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   assert_int_equal(path_int(&order, "totals.discount"), 30000);
   bson_destroy(&order);
   /* Another guest token, same e-mail: the same customer for the coupon. */
   customer.guest_token = "guest-token-0000000004";
   assert_false(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   assert_non_null(strstr(error.message, "already_used"));
   bson_destroy(&order);
   bson_destroy(input);
   bson_reinit(&problems);
   input = checkout_input("PC-M", 1, "same@example.com", "TWICE");
   for (int i = 0; i < 2; i++) {
      if (!flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error)) {
         fail_msg("use %d: %s", i + 1, error.message);
      }
      assert_int_equal(path_int(&order, "totals.discount"), flora_config_int(config, "delivery.flat_fee"));
      bson_destroy(&order);
   }
   assert_false(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   assert_non_null(strstr(error.message, "already_used"));
   bson_destroy(&order);
   bson_destroy(input);
   bson_destroy(&problems);
}

static void
test_idempotency_key_one_order(void **state)
{
   enum { N = 20 };
   worker_t *w = calloc(N, sizeof *w);
   flora_customer_t customer = {.has_user = false, .guest_token = "guest-token-idem-0001"};
   bson_t *input, first, again, problems = BSON_INITIALIZER;
   flora_error_t error = {0};
   bool replayed = false;
   bson_iter_t a, b;

   (void) state;
   make_product("IDEM", 2, 100000);
   /* Retried one after the other. */
   input = checkout_input("IDEM-M", 1, "idem@example.com", NULL);
   assert_true(flora_checkout(store, config, &customer, input, "key-1", &problems, &first, &replayed, &error));
   assert_false(replayed);
   assert_true(flora_checkout(store, config, &customer, input, "key-1", &problems, &again, &replayed, &error));
   assert_true(replayed);
   bson_iter_init_find(&a, &first, "_id");
   bson_iter_init_find(&b, &again, "_id");
   assert_true(bson_oid_equal(bson_iter_oid(&a), bson_iter_oid(&b)));
   assert_int_equal(variant_stock("IDEM-M"), 1);
   bson_destroy(&again);
   /* The same key from another customer is another order. */
   customer.guest_token = "guest-token-idem-0002";
   assert_true(flora_checkout(store, config, &customer, input, "key-1", &problems, &again, &replayed, &error));
   assert_false(replayed);
   assert_int_equal(variant_stock("IDEM-M"), 0);
   bson_destroy(&first);
   bson_destroy(&again);
   bson_destroy(input);
   bson_destroy(&problems);

   /* Concurrently: twenty copies of one request, one order (stock 1 would fail the rest
    * with out of stock if they were separate orders). */
   assert_int_equal(flora_catalog_adjust_stock(store, "IDEM-M", 1, NULL, &error), true);
   for (int i = 0; i < N; i++) {
      w[i].sku = "IDEM-M";
      w[i].idem_key = "key-concurrent";
      snprintf(w[i].token, sizeof w[i].token, "guest-token-idem-0003");
      snprintf(w[i].email, sizeof w[i].email, "idem3@example.com");
   }
   run_workers(w, N);
   for (int i = 0; i < N; i++) {
      if (!w[i].ok) {
         fail_msg("worker %d: %s", i, w[i].error.message);
      }
      assert_true(bson_oid_equal(&w[i].order_id, &w[0].order_id));
   }
   assert_int_equal(count("orders", "{'idempotencyKey': 'key-concurrent'}"), 1);
   assert_int_equal(variant_stock("IDEM-M"), 0);
   free(w);
}

typedef struct cancel_worker {
   pthread_t thread;
   pthread_barrier_t *barrier;
   const bson_oid_t *id;
   bool ok;
   flora_error_t error;
} cancel_worker_t;

static void *
run_cancel(void *arg)
{
   cancel_worker_t *w = arg;

   pthread_barrier_wait(w->barrier);
   w->ok = flora_orders_transition(store, w->id, "cancelled", "system", "customer changed their mind", NULL,
                                   &w->error);
   return NULL;
}

static void
test_concurrent_cancels_restock_once(void **state)
{
   enum { N = 20 };
   cancel_worker_t w[N];
   pthread_barrier_t barrier;
   flora_customer_t customer = {.has_user = false, .guest_token = "guest-token-cancel-01"};
   bson_t *input, order, problems = BSON_INITIALIZER, after;
   flora_error_t error = {0};
   bson_iter_t it;
   bson_oid_t id;
   bool found = false;
   int ok = 0;

   (void) state;
   make_product("CAN", 10, 100000);
   make_coupon("{'code': 'BACK', 'kind': 'fixed', 'value': 1000, 'usageLimit': 1}");
   input = checkout_input("CAN-M", 1, "cancel@example.com", "BACK");
   {
      bson_t *big = checkout_input("CAN-M", 3, "cancel@example.com", "BACK");

      assert_true(flora_checkout(store, config, &customer, big, NULL, &problems, &order, NULL, &error));
      bson_destroy(big);
   }
   assert_int_equal(variant_stock("CAN-M"), 7);
   assert_int_equal(count("coupons", "{'code': 'BACK', 'uses': 1}"), 1);
   bson_iter_init_find(&it, &order, "_id");
   bson_oid_copy(bson_iter_oid(&it), &id);
   pthread_barrier_init(&barrier, NULL, N);
   for (int i = 0; i < N; i++) {
      w[i] = (cancel_worker_t){.barrier = &barrier, .id = &id};
      assert_int_equal(pthread_create(&w[i].thread, NULL, run_cancel, &w[i]), 0);
   }
   for (int i = 0; i < N; i++) {
      pthread_join(w[i].thread, NULL);
      if (w[i].ok) {
         ok++;
      } else {
         assert_int_equal(w[i].error.code, FLORA_ERR_CONFLICT);
         assert_int_equal(flora_error_http_status(&w[i].error), 409);
      }
   }
   pthread_barrier_destroy(&barrier);
   assert_int_equal(ok, 1);
   assert_int_equal(count("outbox", "{'event': 'order.status_changed', 'payload.status': 'cancelled'}"), 1);
   assert_int_equal(variant_stock("CAN-M"), 10);
   assert_int_equal(count("products", "{'sku': 'CAN', 'popularity': 0}"), 1);
   /* The coupon use came back: the same customer may use it again. */
   assert_int_equal(count("coupons", "{'code': 'BACK', 'uses': 0}"), 1);
   assert_true(flora_checkout(store, config, &customer, input, NULL, &problems, &after, NULL, &error));
   bson_destroy(&after);
   assert_true(flora_orders_get(store, &id, &after, &found, &error));
   assert_true(found);
   bson_iter_init(&it, &after);
   {
      bson_iter_t h;

      assert_true(bson_iter_find_descendant(&it, "statusHistory.1.status", &h));
      assert_string_equal(bson_iter_utf8(&h, NULL), "cancelled");
      bson_iter_init(&it, &after);
      assert_true(bson_iter_find_descendant(&it, "statusHistory.1.actor", &h));
      assert_string_equal(bson_iter_utf8(&h, NULL), "system");
      bson_iter_init(&it, &after);
      assert_false(bson_iter_find_descendant(&it, "statusHistory.2", &h));
   }
   bson_destroy(&after);
   bson_destroy(&order);
   bson_destroy(input);
   bson_destroy(&problems);
}

/* ---- the state machine ------------------------------------------------------------------ */

static void
test_state_machine_table(void **state)
{
   /* Every allowed transition; everything else is refused. docs/orders.md. */
   static const char *const allowed[][2] = {
      {"pending_payment", "paid"},  {"pending_payment", "cancelled"}, {"paid", "assembling"},
      {"paid", "cancelled"},        {"paid", "refunded"},             {"assembling", "ready"},
      {"assembling", "cancelled"},  {"assembling", "refunded"},       {"ready", "out_for_delivery"},
      {"ready", "refunded"},        {"out_for_delivery", "delivered"}, {"out_for_delivery", "ready"},
      {"delivered", "refunded"},
   };
   const char *const *statuses = flora_order_statuses();
   size_t n_allowed = 0;

   (void) state;
   for (size_t i = 0; statuses[i]; i++) {
      for (size_t j = 0; statuses[j]; j++) {
         bool expect = false;

         for (size_t k = 0; k < sizeof allowed / sizeof allowed[0]; k++) {
            expect = expect || (strcmp(allowed[k][0], statuses[i]) == 0 && strcmp(allowed[k][1], statuses[j]) == 0);
         }
         if (flora_order_transition_allowed(statuses[i], statuses[j]) != expect) {
            fail_msg("%s -> %s: expected %s", statuses[i], statuses[j], expect ? "allowed" : "refused");
         }
         n_allowed += expect;
      }
   }
   assert_int_equal(n_allowed, sizeof allowed / sizeof allowed[0]);
}

static void
test_lifecycle_over_the_store(void **state)
{
   flora_customer_t customer = {.has_user = false, .guest_token = "guest-token-life-0001"};
   bson_t *input, order, problems = BSON_INITIALIZER, out, *payment;
   flora_error_t error = {0};
   bson_iter_t it;
   bson_oid_t id, unknown;
   static const char *const path[] = {"paid", "assembling", "ready", "out_for_delivery", "delivered"};

   (void) state;
   make_product("LIFE", 5, 100000);
   input = checkout_input("LIFE-M", 1, "life@example.com", NULL);
   assert_true(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   bson_iter_init_find(&it, &order, "_id");
   bson_oid_copy(bson_iter_oid(&it), &id);
   /* Skipping a step is illegal: 409 naming both statuses. */
   assert_false(flora_orders_transition(store, &id, "delivered", "manager:x", NULL, NULL, &error));
   assert_int_equal(flora_error_http_status(&error), 409);
   assert_non_null(strstr(error.message, "pending_payment"));
   assert_non_null(strstr(error.message, "delivered"));
   payment = J("{'status': 'succeeded', 'provider': 'stripe', 'paymentId': 'pi_1', 'amountPaid': 150000}");
   assert_true(flora_orders_record_payment(store, &id, payment, &error));
   bson_destroy(payment);
   for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
      if (!flora_orders_transition(store, &id, path[i], i == 0 ? "payment:stripe" : "manager:m1", NULL, &out, &error)) {
         fail_msg("-> %s: %s", path[i], error.message);
      }
      bson_destroy(&out);
   }
   /* A delivered order cannot be cancelled (no restock). */
   assert_false(flora_orders_transition(store, &id, "cancelled", "manager:m1", NULL, NULL, &error));
   assert_int_equal(error.code, FLORA_ERR_CONFLICT);
   assert_int_equal(variant_stock("LIFE-M"), 4);
   assert_true(flora_orders_get(store, &id, &out, &(bool){false}, &error));
   assert_int_equal(path_int(&out, "payment.amountPaid"), 150000);
   bson_iter_init(&it, &out);
   {
      bson_iter_t h;

      assert_true(bson_iter_find_descendant(&it, "statusHistory.5.status", &h));
      assert_string_equal(bson_iter_utf8(&h, NULL), "delivered");
   }
   bson_destroy(&out);
   assert_int_equal(count("outbox", "{'event': 'order.status_changed'}"), 5);
   assert_int_equal(count("outbox", "{'event': 'order.paid'}"), 1);
   assert_int_equal(count("outbox", "{'event': 'order.delivered'}"), 1);
   assert_int_equal(count("outbox", "{'event': 'order.created', 'payload.to.email': 'life@example.com'}"), 1);
   bson_oid_init_from_string(&unknown, "000000000000000000000000");
   assert_false(flora_orders_transition(store, &unknown, "paid", "system", NULL, NULL, &error));
   assert_int_equal(error.code, FLORA_ERR_NOT_FOUND);
   bson_destroy(&order);
   bson_destroy(input);
   bson_destroy(&problems);
}

static void
test_cart_and_checkout_from_cart(void **state)
{
   char token[FLORA_CART_TOKEN_LEN + 1];
   flora_customer_t guest = {.has_user = false, .guest_token = token};
   flora_customer_t user = {.has_user = true};
   bson_t cart, *input, order, problems = BSON_INITIALIZER;
   flora_error_t error = {0};

   (void) state;
   flora_cart_new_token(token);
   assert_int_equal(strlen(token), FLORA_CART_TOKEN_LEN);
   make_product("CART", 10, 120000);
   make_product("CART2", 10, 80000);
   assert_true(flora_cart_set_item(store, &guest, "CART-M", 2, true, 3600, &cart, &error));
   bson_destroy(&cart);
   assert_true(flora_cart_set_item(store, &guest, "CART-M", 1, true, 3600, &cart, &error));
   assert_int_equal(path_int(&cart, "items.0.quantity"), 3);
   assert_int_equal(path_int(&cart, "subtotal"), 360000);
   bson_destroy(&cart);
   assert_false(flora_cart_set_item(store, &guest, "NOPE", 1, true, 3600, &cart, &error));
   assert_int_equal(error.code, FLORA_ERR_NOT_FOUND);
   bson_destroy(&cart);
   assert_false(flora_cart_set_item(store, &guest, "CART-M", 0, true, 3600, &cart, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
   bson_destroy(&cart);

   /* Merge into a user's cart at sign-in. */
   bson_oid_init(&user.user_id, NULL);
   assert_true(flora_cart_set_item(store, &user, "CART2-M", 1, false, 3600, &cart, &error));
   bson_destroy(&cart);
   assert_true(flora_cart_merge(store, token, &user.user_id, 3600, &cart, &error));
   assert_int_equal(path_int(&cart, "subtotal"), 360000 + 80000);
   bson_destroy(&cart);
   assert_true(flora_cart_get(store, &guest, &cart, &error));
   assert_int_equal(path_int(&cart, "subtotal"), 0);
   bson_destroy(&cart);

   /* Checkout without items takes the cart's lines and empties it. */
   input = J("{'customer': {'name': 'Пётр', 'email': 'petr@example.com'}, "
             "'delivery': {'recipient': {'name': 'Мария', 'phone': '+7 999 111-22-33'}, "
             "'address': {'text': 'СПб', 'lat': 59.9, 'lon': 30.3}, 'date': '2026-12-31', 'exactTime': '14:30', "
             "'anonymous': true}}");
   if (!flora_checkout(store, config, &user, input, NULL, &problems, &order, NULL, &error)) {
      char *p = flora_test_str(&problems);

      fail_msg("checkout: %s %s", error.message, p);
   }
   assert_int_equal(path_int(&order, "totals.subtotal"), 440000);
   assert_int_equal(variant_stock("CART-M"), 7);
   assert_int_equal(variant_stock("CART2-M"), 9);
   assert_int_equal(count("carts", "{'userId': {'$exists': true}}"), 0);
   bson_destroy(&order);
   /* An empty cart: 409. */
   assert_false(flora_checkout(store, config, &user, input, NULL, &problems, &order, NULL, &error));
   assert_int_equal(error.code, FLORA_ERR_CONFLICT);
   bson_destroy(&order);
   bson_destroy(input);
   bson_destroy(&problems);
}

static void
test_coupon_check_reasons(void **state)
{
   bson_t result, *lines, *cat_in, cat, problems = BSON_INITIALIZER;
   flora_error_t error = {0};
   bson_iter_t it;
   char json[512];
   static const struct {
      const char *code;
      int64_t subtotal;
      const char *reason;
      int64_t discount;
   } cases[] = {
      {"NOSUCH", 500000, "unknown", 0},         {"OFF", 500000, "inactive", 0},
      {"LATER", 500000, "not_yet_valid", 0},    {"OLD", 500000, "expired", 0},
      {"BIG", 100000, "below_minimum", 0},      {"BIG", 600000, "ok", 50000},
      {"CAPPED", 1000000, "ok", 7000},          {"CATONLY", 500000, "not_applicable", 0},
   };

   (void) state;
   make_coupon("{'code': 'off', 'kind': 'fixed', 'value': 100, 'active': false}");
   make_coupon("{'code': 'later', 'kind': 'fixed', 'value': 100, 'validFrom': '2999-01-01T00:00:00Z'}");
   make_coupon("{'code': 'old', 'kind': 'fixed', 'value': 100, 'validUntil': '2001-01-01T00:00:00Z'}");
   make_coupon("{'code': 'big', 'kind': 'fixed', 'value': 50000, 'minSubtotal': 500000}");
   make_coupon("{'code': 'capped', 'kind': 'percent', 'value': 50, 'maxDiscount': 7000}");
   cat_in = J("{'name': 'Розы', 'slug': 'rozy-test'}");
   assert_true(flora_catalog_create_category(store, cat_in, &problems, &cat, &error));
   bson_iter_init_find(&it, &cat, "_id");
   {
      char hex[25];

      bson_oid_to_string(bson_iter_oid(&it), hex);
      snprintf(json, sizeof json, "{'code': 'catonly', 'kind': 'percent', 'value': 10, 'categoryIds': ['%s']}", hex);
      make_coupon(json);
   }
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      assert_true(flora_coupons_check(store, cases[i].code, NULL, cases[i].subtotal, NULL, 50000, 0, &result, &error));
      bson_iter_init_find(&it, &result, "reason");
      if (strcmp(bson_iter_utf8(&it, NULL), cases[i].reason) != 0) {
         fail_msg("%s: reason %s, expected %s", cases[i].code, bson_iter_utf8(&it, NULL), cases[i].reason);
      }
      assert_int_equal(path_int(&result, "discount"), cases[i].discount);
      bson_destroy(&result);
   }
   /* A product in a subcategory of the coupon's category is eligible. */
   {
      bson_t *sub = J("{'name': 'Пионовидные', 'slug': 'pionovidnye-test', 'parentSlug': 'rozy-test'}"), subcat, out;
      bson_t *prod = J("{'sku': 'INCAT', 'name': 'В категории', 'categorySlugs': ['pionovidnye-test'], "
                       "'variants': [{'sku': 'INCAT-M', 'name': 'M', 'price': 300000, 'stock': 5}]}");

      assert_true(flora_catalog_create_category(store, sub, &problems, &subcat, &error));
      assert_true(flora_catalog_create_product(store, prod, &problems, &out, &error));
      make_product("OUTCAT", 5, 100000);
      lines = J("[{'sku': 'INCAT-M', 'quantity': 1}, {'sku': 'OUTCAT-M', 'quantity': 2}]");
      assert_true(flora_coupons_check(store, "catonly", lines, 0, NULL, 50000, 0, &result, &error));
      bson_iter_init_find(&it, &result, "reason");
      assert_string_equal(bson_iter_utf8(&it, NULL), "ok");
      assert_int_equal(path_int(&result, "discount"), 30000);
      assert_int_equal(path_int(&result, "subtotal"), 500000);
      bson_destroy(&result);
      bson_destroy(lines);
      bson_destroy(sub);
      bson_destroy(prod);
      bson_destroy(&subcat);
      bson_destroy(&out);
   }
   bson_destroy(cat_in);
   bson_destroy(&cat);
   bson_destroy(&problems);
}


/* With delivery zones configured the price comes from the delivery quote and the slot's
 * capacity is taken in the checkout transaction (and given back on cancellation). */
static void
test_delivery_zones_price_and_slot(void **state)
{
   static const char zones[] =
      "{\"locations\": [{\"id\": \"center\", \"name\": \"Flora\", \"point\": [37.6176, 55.7558]}], "
      "\"zones\": [{\"id\": \"ring10\", \"name\": \"10 km\", \"location\": \"center\", "
      "\"ring\": {\"innerKm\": 0, \"outerKm\": 10}, \"basePrice\": 30000, \"maxDistanceKm\": 10}]}";
   flora_customer_t customer = {.has_user = false, .guest_token = "guest-token-zones-001"};
   bson_t problems = BSON_INITIALIZER, order, *input;
   flora_error_t error = {0};
   char json[1024], date[16], filter[96];
   time_t later = time(NULL) + 3 * 86400;
   struct tm tm;
   bson_iter_t it;
   bson_oid_t id;

   (void) state;
   gmtime_r(&later, &tm);
   strftime(date, sizeof date, "%Y-%m-%d", &tm);
   if (!flora_delivery_zones_load_json(store, zones, strlen(zones), &problems, NULL, &error)) {
      fail_msg("zones: %s", error.message);
   }
   make_product("ZONE", 5, 200000);
   snprintf(json, sizeof json,
            "{'customer': {'name': 'Анна', 'email': 'zone@example.com', 'phone': '+79161234567'}, "
            "'items': [{'sku': 'ZONE-M', 'quantity': 1}], "
            "'delivery': {'address': {'text': 'Москва', 'lat': %s, 'lon': %s}, 'date': '%s', 'slot': '12-15'}}",
            "55.76", "37.62", date);
   input = J(json);
   if (!flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error)) {
      fail_msg("checkout: %s", error.message);
   }
   bson_destroy(input);
   assert_int_equal(path_int(&order, "totals.delivery"), path_int(&order, "delivery.quote.price"));
   assert_int_equal(path_int(&order, "totals.delivery"), 30000);
   snprintf(filter, sizeof filter, "{'_id': '%s/12-15', 'reserved': 1}", date);
   assert_int_equal(count("delivery_slots", filter), 1);
   bson_iter_init_find(&it, &order, "_id");
   bson_oid_copy(bson_iter_oid(&it), &id);
   bson_destroy(&order);
   assert_true(flora_orders_transition(store, &id, "cancelled", "system", NULL, NULL, &error));
   snprintf(filter, sizeof filter, "{'_id': '%s/12-15', 'reserved': 0}", date);
   assert_int_equal(count("delivery_slots", filter), 1);

   /* Outside every zone: 409 with the reason, nothing taken. */
   snprintf(json, sizeof json,
            "{'customer': {'name': 'Анна', 'email': 'zone@example.com', 'phone': '+79161234567'}, "
            "'items': [{'sku': 'ZONE-M', 'quantity': 1}], "
            "'delivery': {'address': {'text': 'Питер', 'lat': 59.93, 'lon': 30.33}, 'date': '%s', 'slot': '12-15'}}",
            date);
   input = J(json);
   assert_false(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   assert_int_equal(flora_error_http_status(&error), 409);
   assert_non_null(strstr(error.message, "outside_zones"));
   assert_int_equal(variant_stock("ZONE-M"), 5);
   bson_destroy(&order);
   bson_destroy(input);
   /* A past date: 422 naming the field. */
   input = J("{'customer': {'name': 'Анна', 'email': 'zone@example.com', 'phone': '+79161234567'}, "
             "'items': [{'sku': 'ZONE-M', 'quantity': 1}], "
             "'delivery': {'address': {'text': 'Москва', 'lat': 55.76, 'lon': 37.62}, 'date': '2001-01-01', "
             "'slot': '12-15'}}");
   assert_false(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   assert_int_equal(flora_error_http_status(&error), 422);
   assert_non_null(strstr(error.message, "date"));
   {
      char *text = flora_test_str(&problems);

      if (!strstr(text, "delivery.date")) {
         fail_msg("problems lack delivery.date: %s", text);
      }
      bson_free(text);
   }
   bson_destroy(&order);
   bson_destroy(input);
   bson_destroy(&problems);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_machine_table),
      cmocka_unit_test_setup_teardown(test_checkout_copies_catalog_and_totals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_input_names_every_field, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hundred_checkouts_five_in_stock, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fifty_orders_coupon_limited_to_ten, setup, teardown),
      cmocka_unit_test_setup_teardown(test_per_customer_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idempotency_key_one_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_cancels_restock_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lifecycle_over_the_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cart_and_checkout_from_cart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_coupon_check_reasons, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delivery_zones_price_and_slot, setup, teardown),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
