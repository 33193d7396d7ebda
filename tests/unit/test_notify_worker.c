/* The worker's state machine on the embedded engine, without providers: quiet hours defer
 * an SMS without counting an attempt, an unreachable SMTP server gives a retry with backoff,
 * a missing order is a permanent failure (dead at once), an expired lease is reclaimed, a
 * live one is not, and resend puts a dead message back. */
#include "flora_test.h"

#include <time.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "flora/migrate.h"
#include "flora/notify.h"
#include "flora/shop.h"

typedef struct fixture {
   flora_store_t *store;
   flora_config_t *config;
   flora_notify_worker_t *worker;
} fixture_t;

static int64_t
now_ms(void)
{
   struct timespec ts;

   clock_gettime(CLOCK_REALTIME, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
moscow_hour(void)
{
   UErrorCode status = U_ZERO_ERROR;
   UChar tz[32];
   UCalendar *cal;
   int h;

   u_uastrcpy(tz, "Europe/Moscow");
   cal = ucal_open(tz, -1, "en_US_POSIX", UCAL_GREGORIAN, &status);
   ucal_setMillis(cal, (UDate) now_ms(), &status);
   h = ucal_get(cal, UCAL_HOUR_OF_DAY, &status);
   ucal_close(cal);
   assert_false(U_FAILURE(status));
   return h;
}

static int
setup(void **state)
{
   fixture_t *f = calloc(1, sizeof *f);
   flora_error_t error = {0};
   char start[8], end[8];
   int h = moscow_hour();
   /* quiet hours that hold now: from this hour to the next */
   const char *kv[][2] = {
      {"notify.smtp_url", "smtp://127.0.0.1:1"}, /* nothing listens on port 1 */
      {"notify.smtp_tls", "none"},
      {"notify.from_address", "shop@flora.example"},
      {"notify.sms_provider", "twilio"},
      {"notify.twilio_url", "http://127.0.0.1:1"},
      {"notify.twilio_account_sid", "AC00"},
      {"notify.twilio_auth_token", "t"},
      {"notify.twilio_from", "+15005550006"},
      {"notify.retry_base_ms", "60000"},
      {"notify.retry_max_ms", "600000"},
      {"notify.max_attempts", "3"},
      {"shop.timezone", "Europe/Moscow"},
      {"notify.quiet_hours_start", start},
      {"notify.quiet_hours_end", end},
   };

   snprintf(start, sizeof start, "%d", h);
   snprintf(end, sizeof end, "%d", (h + 1) % 24);
   assert_true(flora_config_load(&f->config, NULL, &error));
   for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
      if (!flora_config_set(f->config, kv[i][0], kv[i][1], "test", &error)) {
         fail_msg("%s: %s", kv[i][0], error.message);
      }
   }
   assert_true(flora_store_open(&f->store, "sqlite::memory:", NULL, &error));
   assert_true(flora_migrate_up(f->store, flora_migrate_list(), NULL, NULL, &error));
   /* the outbox's own validators only: the sample order follows the contract's shape, not
    * every field the orders schema may require */
   flora_schema_attach(f->store, &flora_schema_outbox);
   flora_schema_attach(f->store, &flora_schema_sms_rate_limits);
   assert_true(flora_notify_worker_new(&f->worker, f->store, f->config, &error));
   *state = f;
   return 0;
}

static int
teardown(void **state)
{
   fixture_t *f = *state;

   flora_notify_worker_destroy(f->worker);
   flora_store_close(f->store);
   flora_config_destroy(f->config);
   free(f);
   return 0;
}

static void
insert_order(fixture_t *f)
{
   char path[4096];
   const char *src = getenv("FLORA_SOURCE_DIR");
   bson_json_reader_t *reader;
   bson_error_t err;
   bson_t order = BSON_INITIALIZER;
   flora_error_t error = {0};

   snprintf(path, sizeof path, "%s/tests/data/notify/sample_order.json", src ? src : "..");
   reader = bson_json_reader_new_from_file(path, &err);
   assert_non_null(reader);
   assert_int_equal(bson_json_reader_read(reader, &order, &err), 1);
   bson_json_reader_destroy(reader);
   assert_true(flora_store_insert_one(f->store, "orders", &order, NULL, NULL, &error));
   bson_destroy(&order);
}

static void
the_message(fixture_t *f, bson_t *out)
{
   bson_t *all = bson_new();
   bool found = false;
   flora_error_t error = {0};

   assert_true(flora_store_find_one(f->store, "outbox", all, NULL, out, &found, &error));
   assert_true(found);
   bson_destroy(all);
}

static int64_t
int_at(const bson_t *doc, const char *path)
{
   bson_iter_t it, v;

   assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &v));
   return BSON_ITER_HOLDS_DATE_TIME(&v) ? bson_iter_date_time(&v) : bson_iter_as_int64(&v);
}

static const char *
str_at(const bson_t *doc, const char *path)
{
   bson_iter_t it, v;

   assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &v));
   return BSON_ITER_HOLDS_UTF8(&v) ? bson_iter_utf8(&v, NULL) : "(not a string)";
}

static void
run_once(fixture_t *f, size_t expected_claims)
{
   flora_error_t error = {0};
   size_t n = 0;

   if (!flora_notify_worker_run_once(f->worker, NULL, &n, &error)) {
      fail_msg("run_once: %s", error.message);
   }
   assert_int_equal(n, expected_claims);
}

static void
test_quiet_hours_defer_sms_and_smtp_down_retries(void **state)
{
   fixture_t *f = *state;
   bson_t *payload = J("{'orderId': {'$oid': '650000000000000000000123'}, 'number': 'FL-2026-000123',"
                       " 'status': 'out_for_delivery',"
                       " 'to': {'email': 'anna@example.ru', 'phone': '+79161234567', 'locale': 'ru'}}");
   flora_error_t error = {0};
   bson_t msg;
   int64_t before;

   insert_order(f);
   assert_true(flora_outbox_enqueue(f->store, FLORA_EVENT_ORDER_STATUS_CHANGED, payload, NULL, &error));
   before = now_ms();
   run_once(f, 1);
   the_message(f, &msg);
   /* e-mail tried and failed (nothing listens), SMS held by the quiet hours, untouched */
   assert_string_equal(str_at(&msg, "status"), "failed");
   assert_int_equal(int_at(&msg, "attempts"), 1);
   assert_string_equal(str_at(&msg, "deliveries.0.status"), "failed");
   assert_int_equal(int_at(&msg, "deliveries.0.attempts"), 1);
   assert_non_null(strstr(str_at(&msg, "lastError"), "SMTP"));
   assert_string_equal(str_at(&msg, "deliveries.1.status"), "pending");
   assert_int_equal(int_at(&msg, "deliveries.1.attempts"), 0);
   /* backoff after the first attempt: within [base/2, base] */
   assert_true(int_at(&msg, "nextAttemptAt") >= before + 30000);
   assert_true(int_at(&msg, "nextAttemptAt") <= now_ms() + 60000);
   bson_destroy(&msg);
   run_once(f, 0); /* not due yet */
   bson_destroy(payload);
}

static void
test_sms_only_deferred_is_not_an_attempt(void **state)
{
   fixture_t *f = *state;
   bson_t *payload = J("{'orderId': {'$oid': '650000000000000000000123'}, 'number': 'FL-2026-000123',"
                       " 'status': 'delivered', 'to': {'phone': '+79161234567'}}");
   flora_error_t error = {0};
   bson_t msg;
   int64_t now = now_ms();

   insert_order(f);
   assert_true(flora_outbox_enqueue(f->store, FLORA_EVENT_ORDER_DELIVERED, payload, NULL, &error));
   run_once(f, 1);
   the_message(f, &msg);
   assert_string_equal(str_at(&msg, "status"), "pending");
   assert_int_equal(int_at(&msg, "attempts"), 0);
   /* due when the quiet hour ends: on the next whole hour, within the next 60 minutes */
   assert_true(int_at(&msg, "nextAttemptAt") > now);
   assert_true(int_at(&msg, "nextAttemptAt") <= now + 3600 * 1000);
   assert_int_equal(int_at(&msg, "nextAttemptAt") % (3600 * 1000), 0); /* Moscow is UTC+3 */
   bson_destroy(&msg);
   bson_destroy(payload);
}

static void
test_missing_order_is_dead_at_once_then_resend(void **state)
{
   fixture_t *f = *state;
   bson_t *payload = J("{'orderId': {'$oid': '650000000000000000000999'}, 'number': 'FL-X',"
                       " 'status': 'paid', 'to': {'email': 'anna@example.ru'}}");
   flora_error_t error = {0};
   bson_t msg, out;
   bson_oid_t id;
   bson_iter_t it;

   assert_true(flora_outbox_enqueue(f->store, FLORA_EVENT_ORDER_PAID, payload, NULL, &error));
   run_once(f, 1);
   the_message(f, &msg);
   assert_string_equal(str_at(&msg, "status"), "dead");
   assert_non_null(strstr(str_at(&msg, "lastError"), "order FL-X not found"));
   assert_true(bson_iter_init_find(&it, &msg, "_id"));
   bson_oid_copy(bson_iter_oid(&it), &id);
   bson_destroy(&msg);

   assert_true(flora_notify_list(f->store, "dead", 1, 10, &out, &error));
   assert_int_equal(int_at(&out, "total"), 1);
   bson_destroy(&out);
   assert_true(flora_notify_resend(f->store, &id, &out, &error));
   assert_string_equal(str_at(&out, "status"), "pending");
   assert_int_equal(int_at(&out, "attempts"), 0);
   bson_destroy(&out);
   assert_false(flora_notify_resend(f->store, &id, NULL, &error)); /* pending: nothing to resend */
   assert_int_equal(error.code, FLORA_ERR_CONFLICT);
   bson_oid_init_from_string(&id, "650000000000000000000000");
   assert_false(flora_notify_resend(f->store, &id, NULL, &error));
   assert_int_equal(error.code, FLORA_ERR_NOT_FOUND);
   bson_destroy(payload);
}

static void
test_leases(void **state)
{
   fixture_t *f = *state;
   bson_t *payload = J("{'name': 'A', 'resetUrl': 'https://x/r', 'to': {'email': 'a@example.ru'}}");
   flora_error_t error = {0};
   bson_t *all = bson_new();
   bson_t *update;
   bson_t msg;

   assert_true(flora_outbox_enqueue(f->store, FLORA_EVENT_USER_PASSWORD_RESET, payload, NULL, &error));
   /* held by another worker whose lease is still valid: not ours */
   update = BCON_NEW("$set", "{", "status", BCON_UTF8("sending"), "leaseOwner", BCON_UTF8("other"),
                     "leaseExpiresAt", BCON_DATE_TIME(now_ms() + 60000), "}");
   assert_true(flora_store_update_one(f->store, "outbox", all, update, NULL, NULL, &error));
   bson_destroy(update);
   run_once(f, 0);
   /* the other worker died: its lease expired, we reclaim the message */
   update = BCON_NEW("$set", "{", "leaseExpiresAt", BCON_DATE_TIME(now_ms() - 1), "}");
   assert_true(flora_store_update_one(f->store, "outbox", all, update, NULL, NULL, &error));
   bson_destroy(update);
   run_once(f, 1);
   the_message(f, &msg);
   assert_string_equal(str_at(&msg, "status"), "failed"); /* SMTP is down in this fixture */
   assert_int_equal(int_at(&msg, "attempts"), 1);
   bson_destroy(&msg);
   bson_destroy(all);
   bson_destroy(payload);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_quiet_hours_defer_sms_and_smtp_down_retries, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sms_only_deferred_is_not_an_attempt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_order_is_dead_at_once_then_resend, setup, teardown),
      cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
