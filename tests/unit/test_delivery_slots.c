/* Slot capacity: 20 concurrent reservations of a window with capacity 3, from threads on a
 * sqlite FILE store, inside checkout-like transactions and outside: exactly 3 succeed, the
 * rest are SHOP CONFLICT "slot full". Releases never go below zero. Holiday capacity,
 * blocked dates, unknown windows, the exact-time pool, and the slots list. */
#include "flora_test.h"

#include <pthread.h>
#include <unistd.h>

#include "flora/config.h"
#include "flora/delivery.h"
#include "flora/migrate.h"
#include "flora/shop.h"
#include "flora/store.h"

#define THREADS 20

typedef struct fixture {
   char dir[256];
   char uri[300];
   flora_store_t *store;
} fixture_t;

static const char *rules =
   "{\"slots\": ["
   "{\"id\": \"09-12\", \"start\": \"09:00\", \"end\": \"12:00\", \"capacity\": 3},"
   "{\"id\": \"12-15\", \"start\": \"12:00\", \"end\": \"15:00\", \"capacity\": 3, \"weekdays\": [1, 2, 3, 4, 5]}],"
   "\"exactTime\": {\"enabled\": true, \"from\": \"09:00\", \"to\": \"21:00\", \"surcharge\": 50000, \"capacity\": 2},"
   "\"blockedDates\": [\"2027-02-20\"],"
   "\"holidays\": [{\"name\": \"valentines_day\", \"from\": \"02-13\", \"to\": \"02-14\", \"surcharge\": 30000, \"capacity\": 5}]}";

static int
setup(void **state)
{
   fixture_t *fx = calloc(1, sizeof *fx);
   flora_error_t error = {0};

   snprintf(fx->dir, sizeof fx->dir, "/tmp/flora-slots-XXXXXX");
   assert_non_null(mkdtemp(fx->dir));
   snprintf(fx->uri, sizeof fx->uri, "sqlite:%s/flora.db", fx->dir);
   assert_true(flora_store_open(&fx->store, fx->uri, NULL, &error));
   assert_true(flora_migrate_up(fx->store, flora_migrate_list(), NULL, NULL, &error));
   flora_shop_attach_schemas(fx->store);
   if (!flora_delivery_rules_load_json(fx->store, rules, strlen(rules), NULL, &error)) {
      fail_msg("%s", error.message);
   }
   *state = fx;
   return 0;
}

static int
teardown(void **state)
{
   fixture_t *fx = *state;
   char path[512];

   flora_store_close(fx->store);
   snprintf(path, sizeof path, "%s/flora.db", fx->dir);
   unlink(path);
   snprintf(path, sizeof path, "%s/flora.db-wal", fx->dir);
   unlink(path);
   snprintf(path, sizeof path, "%s/flora.db-shm", fx->dir);
   unlink(path);
   rmdir(fx->dir);
   free(fx);
   return 0;
}

static int64_t
reserved(fixture_t *fx, const char *key)
{
   bson_t filter = BSON_INITIALIZER, doc;
   bson_iter_t it;
   bool found = false;
   flora_error_t error = {0};
   int64_t n = 0;

   BSON_APPEND_UTF8(&filter, "_id", key);
   assert_true(flora_store_find_one(fx->store, "delivery_slots", &filter, NULL, &doc, &found, &error));
   if (found && bson_iter_init_find(&it, &doc, "reserved")) {
      n = bson_iter_as_int64(&it);
   }
   bson_destroy(&filter);
   bson_destroy(&doc);
   return n;
}

typedef struct worker {
   flora_store_t *store;
   const char *date;
   const char *slot;
   bool in_transaction;
   pthread_barrier_t *barrier;
   bool ok;
   flora_error_t error;
} worker_t;

static bool
reserve_in_txn(flora_store_t *txn, void *ctx, flora_error_t *error)
{
   worker_t *w = ctx;

   return flora_delivery_reserve_slot(txn, w->date, w->slot, error);
}

static void *
run_worker(void *arg)
{
   worker_t *w = arg;

   pthread_barrier_wait(w->barrier);
   if (w->in_transaction) {
      w->ok = flora_store_with_transaction(w->store, reserve_in_txn, w, &w->error);
   } else {
      w->ok = flora_delivery_reserve_slot(w->store, w->date, w->slot, &w->error);
   }
   return NULL;
}

static void
race(fixture_t *fx, const char *date, const char *slot, bool in_transaction, int expect_ok)
{
   pthread_t threads[THREADS];
   worker_t workers[THREADS];
   pthread_barrier_t barrier;
   int ok = 0, full = 0;

   pthread_barrier_init(&barrier, NULL, THREADS);
   for (int i = 0; i < THREADS; i++) {
      workers[i] = (worker_t){.store = fx->store, .date = date, .slot = slot,
                              .in_transaction = in_transaction, .barrier = &barrier};
      assert_int_equal(pthread_create(&threads[i], NULL, run_worker, &workers[i]), 0);
   }
   for (int i = 0; i < THREADS; i++) {
      pthread_join(threads[i], NULL);
      if (workers[i].ok) {
         ok++;
      } else if (workers[i].error.domain == FLORA_DOMAIN_SHOP &&
                 workers[i].error.code == FLORA_ERR_CONFLICT &&
                 strstr(workers[i].error.message, "slot full")) {
         full++;
      } else {
         fail_msg("reservation %d failed otherwise: %s", i, workers[i].error.message);
      }
   }
   pthread_barrier_destroy(&barrier);
   assert_int_equal(ok, expect_ok);
   assert_int_equal(full, THREADS - expect_ok);
}

static void
test_twenty_race_for_three_in_transactions(void **state)
{
   fixture_t *fx = *state;

   race(fx, "2027-02-11", "09-12", true, 3);
   assert_int_equal(reserved(fx, "2027-02-11/09-12"), 3);
}

static void
test_twenty_race_for_three_without_transactions(void **state)
{
   fixture_t *fx = *state;

   race(fx, "2027-02-12", "09-12", false, 3);
   assert_int_equal(reserved(fx, "2027-02-12/09-12"), 3);
   /* the exact-time pool is its own capacity (2) */
   race(fx, "2027-02-12", "exact", false, 2);
   assert_int_equal(reserved(fx, "2027-02-12/exact"), 2);
}

static void
test_holiday_capacity(void **state)
{
   fixture_t *fx = *state;

   race(fx, "2027-02-13", "09-12", true, 5);
   assert_int_equal(reserved(fx, "2027-02-13/09-12"), 5);
}

static void
test_release_never_below_zero(void **state)
{
   fixture_t *fx = *state;
   flora_error_t error = {0};

   assert_true(flora_delivery_reserve_slot(fx->store, "2027-02-11", "12-15", &error));
   assert_true(flora_delivery_reserve_slot(fx->store, "2027-02-11", "12-15", &error));
   assert_int_equal(reserved(fx, "2027-02-11/12-15"), 2);
   for (int i = 0; i < 4; i++) {
      assert_true(flora_delivery_release_slot(fx->store, "2027-02-11", "12-15", &error));
   }
   assert_int_equal(reserved(fx, "2027-02-11/12-15"), 0);
   /* releasing a slot nobody reserved creates nothing and succeeds */
   assert_true(flora_delivery_release_slot(fx->store, "2027-02-15", "09-12", &error));
   assert_int_equal(reserved(fx, "2027-02-15/09-12"), 0);
   /* a released unit can be sold again, up to capacity */
   for (int i = 0; i < 3; i++) {
      assert_true(flora_delivery_reserve_slot(fx->store, "2027-02-11", "12-15", &error));
   }
   assert_false(flora_delivery_reserve_slot(fx->store, "2027-02-11", "12-15", &error));
   assert_int_equal(error.code, FLORA_ERR_CONFLICT);
   assert_true(flora_delivery_release_slot(fx->store, "2027-02-11", "12-15", &error));
   assert_true(flora_delivery_reserve_slot(fx->store, "2027-02-11", "12-15", &error));
   assert_false(flora_delivery_release_slot(fx->store, "2027-13-01", "12-15", &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
}

static void
test_refusals(void **state)
{
   fixture_t *fx = *state;
   flora_error_t error = {0};

   assert_false(flora_delivery_reserve_slot(fx->store, "2027-02-20", "09-12", &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_SHOP);
   assert_non_null(strstr(error.message, "date_blocked"));
   /* 2027-02-13 is a Saturday: 12-15 is a weekday window */
   assert_false(flora_delivery_reserve_slot(fx->store, "2027-02-13", "12-15", &error));
   assert_non_null(strstr(error.message, "slot_not_offered"));
   assert_false(flora_delivery_reserve_slot(fx->store, "2027-02-11", "10-11", &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
   assert_non_null(strstr(error.message, "slot: "));
   assert_false(flora_delivery_reserve_slot(fx->store, "2027-02-31", "09-12", &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
   assert_non_null(strstr(error.message, "date: "));
   assert_int_equal(reserved(fx, "2027-02-20/09-12"), 0);
}

static void
test_slots_list(void **state)
{
   fixture_t *fx = *state;
   flora_config_t *config = NULL;
   flora_error_t error = {0};
   bson_t out;
   bson_iter_t it;
   /* 2027-02-11 10:30 Moscow */
   int64_t now = INT64_C(1802331000000);
   char *json;

   assert_true(flora_config_load(&config, NULL, &error));
   assert_true(flora_config_set(config, "shop.timezone", "Europe/Moscow", "test", &error));
   assert_true(flora_delivery_reserve_slot(fx->store, "2027-02-12", "12-15", &error));
   assert_true(flora_delivery_slots_list(fx->store, config, "2027-02-12", now, &out, &error));
   json = bson_as_relaxed_extended_json(&out, NULL);
   assert_true(bson_iter_init(&it, &out) && bson_iter_find_descendant(&it, "slots.1.remaining", &it));
   assert_int_equal(bson_iter_as_int64(&it), 2);
   assert_true(bson_iter_init(&it, &out) && bson_iter_find_descendant(&it, "slots.1.available", &it));
   assert_true(bson_iter_bool(&it));
   assert_true(bson_iter_init(&it, &out) && bson_iter_find_descendant(&it, "weekday", &it));
   assert_int_equal(bson_iter_as_int64(&it), 5);
   bson_free(json);
   bson_destroy(&out);
   /* today: 09-12 has started; 12-15 starts in 1.5 h < lead 2 h */
   assert_true(flora_delivery_slots_list(fx->store, config, "2027-02-11", now, &out, &error));
   assert_true(bson_iter_init(&it, &out) && bson_iter_find_descendant(&it, "slots.0.reason", &it));
   assert_string_equal(bson_iter_utf8(&it, NULL), "past_cutoff");
   assert_true(bson_iter_init(&it, &out) && bson_iter_find_descendant(&it, "slots.1.reason", &it));
   assert_string_equal(bson_iter_utf8(&it, NULL), "past_cutoff");
   bson_destroy(&out);
   assert_false(flora_delivery_slots_list(fx->store, config, "2027-02-10", now, &out, &error));
   assert_non_null(strstr(error.message, "date: "));
   bson_destroy(&out);
   assert_false(flora_delivery_slots_list(fx->store, config, "2027-6-1", now, &out, &error));
   bson_destroy(&out);
   flora_config_destroy(config);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_twenty_race_for_three_in_transactions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_twenty_race_for_three_without_transactions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_holiday_capacity, setup, teardown),
      cmocka_unit_test_setup_teardown(test_release_never_below_zero, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slots_list, setup, teardown),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
