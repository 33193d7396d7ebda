/* Payments end to end against the loopback fakes (tests/fakes/payfake.py), which validate
 * Stripe's and PayPal's requests against their published OpenAPI documents and implement
 * idempotency keys: create, capture, cancel, refunds, webhooks (verified, exactly once,
 * concurrent duplicates, forged, stale, out of order, amount mismatch), retries (a 500 then
 * success, a timeout after the provider accepted, no retry on 4xx), reconcile after a
 * call that never got an answer. Orders are the real module's (lib/shop/orders.c): the
 * order becomes paid, and "order.paid" is enqueued, exactly once. */
#include "flora_test.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flora/config.h"
#include "flora/migrate.h"
#include "flora/orders.h"
#include "flora/pay.h"
#include "flora/shop.h"
#include "flora/store.h"

extern char **environ;

static pid_t fake_pid;
static char fake_url[64];
static char tmpdir[] = "/tmp/flora-pay-XXXXXX";
static flora_store_t *store;
static flora_config_t *config;
static flora_pay_t *pay;
static int sleeps;
static int64_t slept_ms;
static int order_seq;
static EVP_PKEY *pp_key;

/* ---- orders: the real module (lib/shop/orders.c) ---------------------------------- */

static bool
o_get(flora_store_t *s, const bson_oid_t *id, bson_t *out, bool *found, flora_error_t *error)
{
   return flora_orders_get(s, id, out, found, error);
}

/* An order of 2 x 1000.00 + 1 x 333.33 - 100.00 discount + 500.00 delivery = 2733.33 RUB,
 * as checkout writes it (the orders schema validates it). */
static void
new_order(char number[32], bson_oid_t *id)
{
   bson_t *doc;
   bson_oid_t p1, p2;
   flora_error_t error = {0};
   char token[40], key[48];

   snprintf(number, 32, "FL-2026-%06d", ++order_seq);
   snprintf(token, sizeof token, "guest-token-%06d-abcdefgh", order_seq);
   snprintf(key, sizeof key, "guest:%s", token);
   bson_oid_init(id, NULL);
   bson_oid_init(&p1, NULL);
   bson_oid_init(&p2, NULL);
   doc = BCON_NEW("_id", BCON_OID(id), "number", BCON_UTF8(number), "guestToken",
                  BCON_UTF8(token), "customerKey", BCON_UTF8(key), "status",
                  BCON_UTF8("pending_payment"), "statusHistory", "[", "{", "status",
                  BCON_UTF8("pending_payment"), "at", BCON_DATE_TIME(1796000000000),
                  "actor", BCON_UTF8("system"), "}", "]", "currency", BCON_UTF8("RUB"),
                  "customer", "{", "name", BCON_UTF8("Анна Петрова"), "email",
                  BCON_UTF8("anna@example.ru"), "phone", BCON_UTF8("+79161234567"), "}",
                  "items", "[", "{", "productId", BCON_OID(&p1), "sku", BCON_UTF8("BQ-1-M"),
                  "name", BCON_UTF8("Букет «Нежность»"), "variant", BCON_UTF8("M"),
                  "unitPrice", BCON_INT64(100000), "quantity", BCON_INT32(2), "lineTotal",
                  BCON_INT64(200000), "}", "{", "productId", BCON_OID(&p2), "sku",
                  BCON_UTF8("CARD-1"), "name", BCON_UTF8("Открытка"), "variant",
                  BCON_UTF8("A6"), "unitPrice", BCON_INT64(33333), "quantity", BCON_INT32(1),
                  "lineTotal", BCON_INT64(33333), "}", "]", "totals", "{", "subtotal",
                  BCON_INT64(233333), "discount", BCON_INT64(10000), "delivery",
                  BCON_INT64(50000), "total", BCON_INT64(273333), "}", "delivery", "{",
                  "recipient", "{", "name", BCON_UTF8("Мария"), "phone",
                  BCON_UTF8("+79161112233"), "}", "address", "{", "text",
                  BCON_UTF8("Москва, Тверская 1"), "}", "date", BCON_UTF8("2026-12-01"), "slot",
                  "{", "id", BCON_UTF8("09-12"), "start", BCON_UTF8("09:00"), "end",
                  BCON_UTF8("12:00"), "}", "price", BCON_INT64(50000), "anonymous",
                  BCON_BOOL(false), "callFirst", BCON_BOOL(false), "}");
   if (!flora_model_insert(store, &flora_schema_orders, doc, NULL, NULL, &error)) {
      fail_msg("insert order: %s", error.message);
   }
   bson_destroy(doc);
}

static bson_t *
order_doc(const bson_oid_t *id)
{
   bson_t *out = bson_malloc0(sizeof *out);
   bool found = false;
   flora_error_t error = {0};

   assert_true(o_get(store, id, out, &found, &error));
   assert_true(found);
   return out;
}

static const char *
str_at(const bson_t *doc, const char *path)
{
   bson_iter_t it, c;

   if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &c) &&
       BSON_ITER_HOLDS_UTF8(&c)) {
      return bson_iter_utf8(&c, NULL);
   }
   return NULL;
}

static int64_t
int_at(const bson_t *doc, const char *path)
{
   bson_iter_t it, c;

   if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &c) &&
       BSON_ITER_HOLDS_NUMBER(&c)) {
      return bson_iter_as_int64(&c);
   }
   return -1;
}

/* The order's status and how many transitions it went through (statusHistory entries
 * after the first), plus how many "order.paid" outbox messages it produced. */
static void
assert_order(const bson_oid_t *id, const char *status, int transitions)
{
   bson_t *o = order_doc(id);
   bson_iter_t it;
   bson_t *filter = BCON_NEW("event", BCON_UTF8("order.paid"), "payload.orderId", BCON_OID(id));
   int64_t paid_messages = -1;
   flora_error_t error = {0};

   assert_string_equal(str_at(o, "status"), status);
   assert_true(bson_iter_init_find(&it, o, "statusHistory"));
   {
      uint32_t len;
      const uint8_t *data;
      bson_t arr;

      bson_iter_array(&it, &len, &data);
      bson_init_static(&arr, data, len);
      assert_int_equal((int) bson_count_keys(&arr) - 1, transitions);
   }
   assert_true(flora_store_count_documents(store, "outbox", filter, NULL, &paid_messages, &error));
   assert_int_equal(paid_messages, strcmp(status, "pending_payment") == 0 ? 0 : 1);
   bson_destroy(filter);
   bson_destroy(o);
   bson_free(o);
}

/* ---- talking to the fake ------------------------------------------------------------- */

static size_t
collect(char *p, size_t s, size_t n, void *ud)
{
   bson_string_t *b = ud;

   bson_string_append_printf(b, "%.*s", (int) (s * n), p);
   return s * n;
}

/* GET (body NULL) or POST to the fake; returns the answer parsed as BSON (caller destroys). */
static bson_t *
fake(const char *path, const char *body)
{
   CURL *c = curl_easy_init();
   bson_string_t *b = bson_string_new(NULL);
   char url[256];
   bson_error_t err;
   bson_t *doc;

   snprintf(url, sizeof url, "%s%s", fake_url, path);
   curl_easy_setopt(c, CURLOPT_URL, url);
   curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
   curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
   if (body) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
   }
   assert_int_equal(curl_easy_perform(c), CURLE_OK);
   curl_easy_cleanup(c);
   doc = bson_new_from_json((const uint8_t *) b->str, b->len, &err);
   if (!doc) {
      fail_msg("fake answered non-JSON: %s", b->str);
   }
   bson_string_free(b, true);
   return doc;
}

static int64_t
fake_count(const char *what)
{
   bson_t *st = fake("/_control/state", NULL);
   int64_t n = int_at(st, what);
   bson_iter_t it, v;

   /* Every request the client sent must have passed the providers' contracts. */
   if (bson_iter_init_find(&it, st, "violations") && bson_iter_recurse(&it, &v) &&
       bson_iter_next(&v)) {
      char *s = bson_as_relaxed_extended_json(st, NULL);

      fail_msg("contract violations: %s", s);
   }
   bson_destroy(st);
   return n;
}

static void
fake_faults(const char *json)
{
   bson_destroy(fake("/_control/faults", json));
}

static void
fake_act(const char *provider, const char *action, const char *id)
{
   char body[256];

   snprintf(body, sizeof body, "{\"provider\": \"%s\", \"action\": \"%s\", \"id\": \"%s\"}",
            provider, action, id);
   bson_destroy(fake("/_control/act", body));
}

/* The idempotency keys of the logged requests to path (method+path prefix), in order. */
static int
fake_keys(const char *match, char keys[][128], int max)
{
   bson_t *log = fake("/_control/log", NULL);
   bson_iter_t it, arr;
   int n = 0;

   assert_true(bson_iter_init_find(&it, log, "log") && bson_iter_recurse(&it, &arr));
   while (bson_iter_next(&arr) && n < max) {
      bson_t e;
      uint32_t len;
      const uint8_t *data;
      char mp[300];

      bson_iter_document(&arr, &len, &data);
      bson_init_static(&e, data, len);
      snprintf(mp, sizeof mp, "%s %s", str_at(&e, "method"), str_at(&e, "path"));
      if (strncmp(mp, match, strlen(match)) == 0) {
         snprintf(keys[n++], 128, "%s", str_at(&e, "key") ? str_at(&e, "key") : "");
      }
   }
   bson_destroy(log);
   return n;
}

/* ---- fixture --------------------------------------------------------------------------- */

static int64_t clock_offset_s; /* moves the payments service's clock (token expiry) */

static int64_t
test_now(void)
{
   return (int64_t) time(NULL) + clock_offset_s;
}

static void
no_sleep(void *ctx, int64_t ms)
{
   (void) ctx;
   sleeps++;
   slept_ms += ms;
}

static void
set(const char *key, const char *value)
{
   flora_error_t error = {0};

   if (!flora_config_set(config, key, value, "test", &error)) {
      fail_msg("%s: %s", key, error.message);
   }
}

static void
make_paypal_cert(void)
{
   X509 *x = X509_new();
   BIO *bio = BIO_new(BIO_s_mem());
   char *data;
   long n;
   char *pem;
   bson_t *r;
   X509_NAME *name;

   pp_key = EVP_RSA_gen(2048);
   X509_set_version(x, 2);
   ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
   X509_gmtime_adj(X509_getm_notBefore(x), -60);
   X509_gmtime_adj(X509_getm_notAfter(x), 86400);
   X509_set_pubkey(x, pp_key);
   name = X509_get_subject_name(x);
   X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) "fake paypal", -1,
                              -1, 0);
   X509_set_issuer_name(x, name);
   X509_sign(x, pp_key, EVP_sha256());
   PEM_write_bio_X509(bio, x);
   n = BIO_get_mem_data(bio, &data);
   pem = bson_strndup(data, (size_t) n);
   r = fake("/_control/cert", pem);
   bson_destroy(r);
   bson_free(pem);
   BIO_free(bio);
   X509_free(x);
}

static int
group_setup(void **state)
{
   const char *src = getenv("FLORA_SOURCE_DIR");
   const char *shared = flora_test_shared_dir();
   char script[4200], uri[256], line[64];
   int pipefd[2];
   posix_spawn_file_actions_t fa;
   flora_error_t error = {0};
   flora_pay_options_t opts = FLORA_PAY_OPTIONS_INIT;
   FILE *out;

   (void) state;
   if (!src || !shared || access("/usr/bin/python3", X_OK) != 0) {
      print_message("SKIP: needs FLORA_SOURCE_DIR, FLORA_SHARED_DIR (the providers' specs) "
                    "and python3\n");
      return 0;
   }
   snprintf(script, sizeof script, "%s/tests/fakes/payfake.py", src);
   {
      char *argv[] = {"/usr/bin/python3", script, "--port", "0", NULL};

      assert_int_equal(pipe(pipefd), 0);
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
      posix_spawn_file_actions_addclose(&fa, pipefd[0]);
      assert_int_equal(posix_spawn(&fake_pid, argv[0], &fa, NULL, argv, environ), 0);
      posix_spawn_file_actions_destroy(&fa);
      close(pipefd[1]);
   }
   out = fdopen(pipefd[0], "r");
   if (!fgets(line, sizeof line, out) || strncmp(line, "PORT ", 5) != 0) {
      fail_msg("the fake did not start");
   }
   {
      char *end = NULL;
      long port = strtol(line + 5, &end, 10);

      if (port <= 0 || port > 65535 || (*end != '\n' && *end != '\0')) {
         fail_msg("the fake announced a bad port: %s", line);
      }
      snprintf(fake_url, sizeof fake_url, "http://127.0.0.1:%ld", port);
   }
   fclose(out);
   curl_global_init(CURL_GLOBAL_DEFAULT);
   {
      /* Without the providers' contracts the fake would check nothing: skip instead. */
      bson_t *st = fake("/_control/state", NULL);
      char *json = bson_as_relaxed_extended_json(st, NULL);
      bool both = strstr(json, "\"stripe\"") && strstr(json, "\"paypal\"");

      bson_free(json);
      bson_destroy(st);
      if (!both) {
         print_message("SKIP: the fake could not load Stripe's and PayPal's OpenAPI documents "
                       "from FLORA_SHARED_DIR/providers/prism (Stripe's needs python3-yaml)\n");
         kill(fake_pid, SIGTERM);
         waitpid(fake_pid, NULL, 0);
         fake_pid = 0;
         curl_global_cleanup();
         return 0;
      }
   }
   assert_non_null(mkdtemp(tmpdir));
   snprintf(uri, sizeof uri, "sqlite:%s/pay.db", tmpdir);
   if (!flora_store_open(&store, uri, NULL, &error) ||
       !flora_migrate_up(store, flora_migrate_list(), NULL, NULL, &error)) {
      fail_msg("store: %s", error.message);
   }
   flora_shop_attach_schemas(store);
   assert_true(flora_config_load(&config, NULL, &error));
   set("pay.stripe.api_base", fake_url);
   set("pay.stripe.secret_key", "sk_test_flora");
   set("pay.stripe.webhook_secret", "whsec_flora");
   set("pay.paypal.api_base", fake_url);
   set("pay.paypal.client_id", "flora-client");
   set("pay.paypal.client_secret", "flora-secret");
   set("pay.paypal.webhook_id", "WH-FLORA");
   set("pay.yookassa.api_base", fake_url);
   set("pay.yookassa.shop_id", "123456");
   set("pay.yookassa.secret_key", "test_flora");
   set("pay.yookassa.allowed_ips", "185.71.76.0/27, 127.0.0.1");
   set("pay.http_timeout_ms", "1500");
   opts.retry.sleep = no_sleep;
   opts.now_s = test_now;
   assert_true(flora_pay_new(&pay, store, config, flora_pay_orders_shop(), &opts, &error));
   make_paypal_cert();
   return 0;
}

static int
group_teardown(void **state)
{
   char cmd[300];

   (void) state;
   if (fake_pid > 0) {
      kill(fake_pid, SIGTERM);
      waitpid(fake_pid, NULL, 0);
   }
   if (!store) {
      return 0;
   }
   flora_pay_destroy(pay);
   flora_config_destroy(config);
   flora_store_close(store);
   EVP_PKEY_free(pp_key);
   if (strstr(tmpdir, "XXXXXX") == NULL) {
      snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
      if (system(cmd) != 0) {
         print_message("could not remove %s\n", tmpdir);
      }
   }
   curl_global_cleanup();
   return 0;
}

static int
test_setup(void **state)
{
   (void) state;
   if (fake_pid <= 0) {
      return 0; /* each test skips itself (cmocka cannot skip from a setup) */
   }
   bson_destroy(fake("/_control/reset", ""));
   sleeps = 0;
   slept_ms = 0;
   return 0;
}

/* ---- webhooks ------------------------------------------------------------------------- */

typedef struct hdrs {
   const char *names[8];
   const char *values[8];
} hdrs_t;

static const char *
hdr(void *ctx, const char *name)
{
   hdrs_t *h = ctx;

   for (int i = 0; i < 8 && h->names[i]; i++) {
      if (strcasecmp(h->names[i], name) == 0) {
         return h->values[i];
      }
   }
   return NULL;
}

static char *
stripe_sig(const char *secret, int64_t t, const char *body)
{
   char prefix[32];
   unsigned char mac[32];
   unsigned int len = 0;
   char *payload, hex[65];

   snprintf(prefix, sizeof prefix, "%lld.", (long long) t);
   payload = bson_strdup_printf("%s%s", prefix, body);
   HMAC(EVP_sha256(), secret, (int) strlen(secret), (const unsigned char *) payload,
        strlen(payload), mac, &len);
   for (int i = 0; i < 32; i++) {
      snprintf(hex + 2 * i, 3, "%02x", mac[i]);
   }
   bson_free(payload);
   return bson_strdup_printf("t=%lld,v1=%s", (long long) t, hex);
}

static char *
stripe_event(const char *evt, const char *type, const char *pi, int64_t amount,
             int64_t received, const char *currency, const char *status)
{
   return bson_strdup_printf(
      "{\"id\": \"%s\", \"object\": \"event\", \"type\": \"%s\", \"data\": {\"object\": "
      "{\"id\": \"%s\", \"object\": \"payment_intent\", \"amount\": %lld, "
      "\"amount_capturable\": 0, \"amount_received\": %lld, \"currency\": \"%s\", "
      "\"status\": \"%s\"}}}",
      evt, type, pi, (long long) amount, (long long) received, currency, status);
}

static bool
deliver_stripe(const char *body, const char *secret, int64_t t, int64_t now,
               flora_pay_webhook_outcome_t *outcome, flora_error_t *error)
{
   char *sig = stripe_sig(secret, t, body);
   hdrs_t h = {{"Stripe-Signature"}, {sig}};
   flora_pay_webhook_t hook = {body, strlen(body), hdr, &h, "127.0.0.1", now};
   bool ok = flora_pay_handle_webhook(pay, "stripe", &hook, outcome, error);

   bson_free(sig);
   return ok;
}

/* ---- Stripe -------------------------------------------------------------------------- */

static void
stripe_pay(char number[32], bson_oid_t *order_id, bson_oid_t *payment_id, char pi[64])
{
   bson_t out;
   flora_error_t error = {0};

   new_order(number, order_id);
   if (!flora_pay_create_payment(pay, number, "stripe", &out, &error)) {
      fail_msg("create: %s", error.message);
   }
   assert_non_null(str_at(&out, "client.clientSecret"));
   assert_string_equal(str_at(&out, "status"), "requires_action");
   assert_int_equal(int_at(&out, "amount"), 273333);
   {
      bson_iter_t it;

      assert_true(bson_iter_init_find(&it, &out, "paymentId"));
      bson_oid_copy(bson_iter_oid(&it), payment_id);
   }
   bson_destroy(&out);
   {
      bson_t p;

      assert_true(flora_pay_get_payment(pay, payment_id, &p, &error));
      snprintf(pi, 64, "%s", str_at(&p, "providerPaymentId"));
      bson_destroy(&p);
   }
}

static void
test_stripe_create_and_webhooks(void **state)
{
   char number[32], pi[64], keys[8][128];
   bson_oid_t order_id, payment_id;
   flora_pay_webhook_outcome_t outcome;
   flora_error_t error = {0};
   int64_t now = (int64_t) time(NULL);
   char *ok_body, *bad_amount, *late;
   bson_t p, again;

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   stripe_pay(number, &order_id, &payment_id, pi);
   assert_int_equal(fake_count("stripe_intents"), 1);
   assert_int_equal(fake_keys("POST /v1/payment_intents", keys, 8), 1);
   assert_non_null(strstr(keys[0], ":create:273333"));
   {
      /* The pinned API version goes with every Stripe call. */
      bson_t *log = fake("/_control/log", NULL);
      char *json = bson_as_relaxed_extended_json(log, NULL);

      assert_non_null(strstr(json, "\"stripe_version\" : \"2023-08-16\""));
      assert_null(strstr(json, "\"stripe_version\" : null"));
      bson_free(json);
      bson_destroy(log);
   }
   /* A second click reuses the open attempt: no second intent. */
   assert_true(flora_pay_create_payment(pay, number, "stripe", &again, &error));
   bson_destroy(&again);
   assert_int_equal(fake_count("stripe_intents"), 1);

   /* Forged signature and stale timestamp: refused, nothing stored or changed. */
   ok_body = stripe_event("evt_1", "payment_intent.succeeded", pi, 273333, 273333, "rub",
                          "succeeded");
   assert_false(deliver_stripe(ok_body, "whsec_forged", now, now, &outcome, &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
   assert_false(deliver_stripe(ok_body, "whsec_flora", now - 301, now, &outcome, &error));
   assert_non_null(strstr(error.message, "tolerance"));
   assert_order(&order_id, "pending_payment", 0);

   /* Amount mismatch: stored as rejected, the order stays unpaid. */
   bad_amount = stripe_event("evt_0", "payment_intent.succeeded", pi, 100, 100, "rub",
                             "succeeded");
   assert_true(deliver_stripe(bad_amount, "whsec_flora", now, now, &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_REJECTED);
   assert_order(&order_id, "pending_payment", 0);
   bson_free(bad_amount);
   bad_amount = stripe_event("evt_0b", "payment_intent.succeeded", pi, 273333, 273333, "usd",
                             "succeeded");
   assert_true(deliver_stripe(bad_amount, "whsec_flora", now, now, &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_REJECTED);
   assert_order(&order_id, "pending_payment", 0);

   /* The verified success pays the order; the same event again changes nothing. */
   assert_true(deliver_stripe(ok_body, "whsec_flora", now, now, &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_APPLIED);
   assert_order(&order_id, "paid", 1);
   assert_true(deliver_stripe(ok_body, "whsec_flora", now, now, &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_DUPLICATE);
   assert_order(&order_id, "paid", 1);

   /* An older event arriving late cannot move the payment back. */
   late = stripe_event("evt_2", "payment_intent.processing", pi, 273333, 0, "rub", "processing");
   assert_true(deliver_stripe(late, "whsec_flora", now, now, &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_IGNORED);
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   assert_string_equal(str_at(&p, "status"), "captured");
   assert_int_equal(int_at(&p, "amountCaptured"), 273333);
   bson_destroy(&p);

   /* Malformed body with a valid signature: an input error, nothing stored. */
   assert_false(deliver_stripe("{\"id\": 5}", "whsec_flora", now, now, &outcome, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
   /* Unknown type: stored and ignored. */
   assert_true(deliver_stripe("{\"id\": \"evt_9\", \"type\": \"customer.created\", \"data\": "
                              "{\"object\": {\"id\": \"cus_1\"}}}",
                              "whsec_flora", now, now, &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_IGNORED);
   bson_free(ok_body);
   bson_free(bad_amount);
   bson_free(late);
}

typedef struct race {
   const char *body;
   int64_t now;
   flora_pay_webhook_outcome_t outcome;
   bool ok;
   flora_error_t error;
} race_t;

static void *
race_thread(void *arg)
{
   race_t *r = arg;

   r->ok = deliver_stripe(r->body, "whsec_flora", r->now, r->now, &r->outcome, &r->error);
   return NULL;
}

static void
test_stripe_concurrent_duplicates(void **state)
{
   char number[32], pi[64];
   bson_oid_t order_id, payment_id;
   pthread_t t[4];
   race_t r[4];
   int applied = 0, duplicate = 0;
   char *body;

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   stripe_pay(number, &order_id, &payment_id, pi);
   body = stripe_event("evt_race", "payment_intent.succeeded", pi, 273333, 273333, "rub",
                       "succeeded");
   for (int i = 0; i < 4; i++) {
      memset(&r[i], 0, sizeof r[i]);
      r[i].body = body;
      r[i].now = (int64_t) time(NULL);
      pthread_create(&t[i], NULL, race_thread, &r[i]);
   }
   for (int i = 0; i < 4; i++) {
      pthread_join(t[i], NULL);
      if (!r[i].ok) {
         fail_msg("delivery %d: %s", i, r[i].error.message);
      }
      applied += r[i].outcome == FLORA_PAY_WEBHOOK_APPLIED;
      duplicate += r[i].outcome == FLORA_PAY_WEBHOOK_DUPLICATE;
   }
   assert_int_equal(applied, 1);
   assert_int_equal(duplicate, 3);
   assert_order(&order_id, "paid", 1);
   bson_free(body);
}

static void
test_stripe_retries(void **state)
{
   char number[32], keys[8][128];
   bson_oid_t order_id;
   bson_t out;
   flora_error_t error = {0};

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   /* A 500 and then success: one intent at the provider, the same key twice. */
   new_order(number, &order_id);
   fake_faults("[{\"match\": \"POST /v1/payment_intents\", \"status\": 500, \"times\": 1}]");
   if (!flora_pay_create_payment(pay, number, "stripe", &out, &error)) {
      fail_msg("create: %s", error.message);
   }
   bson_destroy(&out);
   assert_int_equal(fake_count("stripe_intents"), 1);
   assert_int_equal(fake_keys("POST /v1/payment_intents", keys, 8), 2);
   assert_string_equal(keys[0], keys[1]);
   assert_int_equal(sleeps, 1);

   /* A timeout after the provider accepted: the retry with the same key gets the same
    * intent back (the fake replays it), still one intent. */
   bson_destroy(fake("/_control/reset", ""));
   new_order(number, &order_id);
   fake_faults("[{\"match\": \"POST /v1/payment_intents\", \"after\": true, \"delay\": 3, "
               "\"times\": 1}]");
   if (!flora_pay_create_payment(pay, number, "stripe", &out, &error)) {
      fail_msg("create after timeout: %s", error.message);
   }
   assert_non_null(str_at(&out, "client.clientSecret"));
   bson_destroy(&out);
   assert_int_equal(fake_count("stripe_intents"), 1);
   assert_int_equal(fake_keys("POST /v1/payment_intents", keys, 8), 2);
   assert_string_equal(keys[0], keys[1]);

   /* A 4xx is never retried; Stripe-Should-Retry: false is honoured. */
   bson_destroy(fake("/_control/reset", ""));
   sleeps = 0;
   new_order(number, &order_id);
   fake_faults("[{\"match\": \"POST /v1/payment_intents\", \"status\": 402, \"times\": 5}]");
   assert_false(flora_pay_create_payment(pay, number, "stripe", &out, &error));
   bson_destroy(&out);
   assert_int_equal(error.domain, FLORA_DOMAIN_PROVIDER);
   assert_int_equal(fake_keys("POST /v1/payment_intents", keys, 8), 1);
   assert_int_equal(sleeps, 0);
   new_order(number, &order_id);
   fake_faults("[{\"match\": \"POST /v1/payment_intents\", \"status\": 503, "
               "\"should_retry\": \"false\", \"times\": 5}]");
   assert_false(flora_pay_create_payment(pay, number, "stripe", &out, &error));
   bson_destroy(&out);
   assert_int_equal(fake_keys("POST /v1/payment_intents", keys, 8), 2);
   assert_int_equal(sleeps, 0);
}

static void
test_stripe_manual_capture_and_refunds(void **state)
{
   char number[32], pi[64], keys[8][128];
   bson_oid_t order_id, payment_id;
   bson_t out;
   flora_error_t error = {0};
   size_t checked = 0, repaired = 0;

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   set("pay.stripe.capture_method", "manual");
   stripe_pay(number, &order_id, &payment_id, pi);
   set("pay.stripe.capture_method", "automatic");
   fake_act("stripe", "confirm", pi);
   /* Reconcile reads the authorisation (no webhook came). */
   assert_true(flora_pay_reconcile(pay, &checked, &repaired, &error));
   assert_true(checked >= 1);
   assert_true(flora_pay_get_payment(pay, &payment_id, &out, &error));
   assert_string_equal(str_at(&out, "status"), "authorized");
   assert_int_equal(int_at(&out, "amountAuthorized"), 273333);
   bson_destroy(&out);
   assert_order(&order_id, "pending_payment", 0);
   /* A capture above the authorisation is refused before anything is sent. */
   assert_false(flora_pay_capture(pay, &payment_id, 273334, &out, &error));
   bson_destroy(&out);
   assert_int_equal(error.code, FLORA_ERR_CONFLICT);
   assert_int_equal(fake_keys("POST /v1/payment_intents/", keys, 8), 0);
   /* A partial capture. */
   if (!flora_pay_capture(pay, &payment_id, 200000, &out, &error)) {
      fail_msg("capture: %s", error.message);
   }
   assert_string_equal(str_at(&out, "status"), "captured");
   assert_int_equal(int_at(&out, "amountCaptured"), 200000);
   bson_destroy(&out);
   assert_order(&order_id, "paid", 1);
   /* Refund above captured: refused, nothing sent. */
   assert_false(flora_pay_refund(pay, &payment_id, 200001, &out, &error));
   bson_destroy(&out);
   assert_int_equal(error.code, FLORA_ERR_CONFLICT);
   assert_int_equal(fake_keys("POST /v1/refunds", keys, 8), 0);
   /* Partial, then the rest. */
   assert_true(flora_pay_refund(pay, &payment_id, 50000, &out, &error));
   assert_string_equal(str_at(&out, "status"), "partially_refunded");
   assert_int_equal(int_at(&out, "amountRefunded"), 50000);
   bson_destroy(&out);
   assert_true(flora_pay_refund(pay, &payment_id, 0, &out, &error));
   assert_string_equal(str_at(&out, "status"), "refunded");
   assert_int_equal(int_at(&out, "amountRefunded"), 200000);
   bson_destroy(&out);
   assert_int_equal(fake_count("stripe_refunds"), 2);
   assert_int_equal(fake_keys("POST /v1/refunds", keys, 8), 2);
   assert_string_not_equal(keys[0], keys[1]);
   assert_order(&order_id, "refunded", 2);
   /* Nothing left to refund. */
   assert_false(flora_pay_refund(pay, &payment_id, 1, &out, &error));
   bson_destroy(&out);
}

static void
test_stripe_cancel(void **state)
{
   char number[32], pi[64];
   bson_oid_t order_id, payment_id;
   bson_t out;
   flora_error_t error = {0};

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   stripe_pay(number, &order_id, &payment_id, pi);
   if (!flora_pay_cancel(pay, &payment_id, &out, &error)) {
      fail_msg("cancel: %s", error.message);
   }
   assert_string_equal(str_at(&out, "status"), "canceled");
   bson_destroy(&out);
   /* Cancelled is final: no second cancel, no capture. */
   assert_false(flora_pay_cancel(pay, &payment_id, &out, &error));
   bson_destroy(&out);
   assert_false(flora_pay_capture(pay, &payment_id, 0, &out, &error));
   bson_destroy(&out);
}

/* ---- a cancelled order gets its money back ------------------------------------------ */

/* Does a note of the order's statusHistory contain needle? */
static bool
history_says(const bson_oid_t *order_id, const char *needle)
{
   bson_t *o = order_doc(order_id);
   bson_iter_t it, h, n;
   bool said = false;

   if (bson_iter_init_find(&it, o, "statusHistory") && bson_iter_recurse(&it, &h)) {
      while (bson_iter_next(&h)) {
         if (bson_iter_recurse(&h, &n) && bson_iter_find(&n, "note") && BSON_ITER_HOLDS_UTF8(&n) &&
             strstr(bson_iter_utf8(&n, NULL), needle)) {
            said = true;
         }
      }
   }
   bson_destroy(o);
   bson_free(o);
   return said;
}

/* A Stripe payment confirmed at the fake and its success delivered: the order is paid. */
static void
stripe_paid(char number[32], bson_oid_t *order_id, bson_oid_t *payment_id, char pi[64])
{
   flora_pay_webhook_outcome_t outcome;
   flora_error_t error = {0};
   int64_t now = (int64_t) time(NULL);
   char evt[96], *body;

   stripe_pay(number, order_id, payment_id, pi);
   fake_act("stripe", "confirm", pi);
   snprintf(evt, sizeof evt, "evt_paid_%s", pi);
   body = stripe_event(evt, "payment_intent.succeeded", pi, 273333, 273333, "rub", "succeeded");
   if (!deliver_stripe(body, "whsec_flora", now, now, &outcome, &error)) {
      fail_msg("webhook: %s", error.message);
   }
   bson_free(body);
   assert_order(order_id, "paid", 1);
}

typedef struct settle_race {
   bson_oid_t order_id;
   bool ok;
   size_t refunds;
   flora_error_t error;
} settle_race_t;

static void *
settle_thread(void *arg)
{
   settle_race_t *r = arg;

   r->ok = flora_pay_settle_order(pay, &r->order_id, &r->refunds, &r->error);
   return NULL;
}

static void
test_cancelled_paid_order_is_refunded_once(void **state)
{
   char number[32], pi[64], keys[8][128];
   bson_oid_t order_id, payment_id;
   settle_race_t races[4];
   pthread_t threads[4];
   size_t refunds = 0, total = 0;
   flora_error_t error = {0};
   bson_t p;

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   stripe_paid(number, &order_id, &payment_id, pi);
   /* Not cancelled yet: nothing to give back. */
   assert_true(flora_pay_settle_order(pay, &order_id, &refunds, &error));
   assert_int_equal(refunds, 0);
   assert_true(flora_orders_transition(store, &order_id, "cancelled", "user:test", NULL, NULL, &error));
   /* Four settlements at once (a double click, the route and reconcile): one refund. */
   for (int i = 0; i < 4; i++) {
      memset(&races[i], 0, sizeof races[i]);
      races[i].order_id = order_id;
      assert_int_equal(pthread_create(&threads[i], NULL, settle_thread, &races[i]), 0);
   }
   for (int i = 0; i < 4; i++) {
      pthread_join(threads[i], NULL);
      if (!races[i].ok) {
         fail_msg("settle: %s", races[i].error.message);
      }
      total += races[i].refunds;
   }
   assert_int_equal(total, 1);
   assert_int_equal(fake_count("stripe_refunds"), 1);
   assert_int_equal(fake_keys("POST /v1/refunds", keys, 8), 1);
   assert_non_null(strstr(keys[0], ":refund:0:273333"));
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   assert_string_equal(str_at(&p, "status"), "refunded");
   assert_int_equal(int_at(&p, "amountRefunded"), 273333);
   bson_destroy(&p);
   {
      bson_t *o = order_doc(&order_id);

      assert_string_equal(str_at(o, "status"), "cancelled");
      assert_int_equal(int_at(o, "payment.amountRefunded"), 273333);
      bson_destroy(o);
      bson_free(o);
   }
   assert_true(history_says(&order_id, "refunded 2733.33 RUB"));
   /* Again, and reconcile: nothing more is sent. */
   assert_true(flora_pay_settle_order(pay, &order_id, &refunds, &error));
   assert_int_equal(refunds, 0);
   assert_true(flora_pay_reconcile(pay, NULL, NULL, &error));
   assert_int_equal(fake_count("stripe_refunds"), 1);
}

static void
test_failed_automatic_refund_is_retried_by_reconcile(void **state)
{
   char number[32], pi[64], keys[8][128];
   bson_oid_t order_id, payment_id;
   size_t refunds = 0, repaired = 0;
   flora_error_t error = {0};
   bson_t p;

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   /* The gateway refuses (4xx): recorded, noted on the order, reconcile retries. */
   stripe_paid(number, &order_id, &payment_id, pi);
   assert_true(flora_orders_transition(store, &order_id, "cancelled", "manager:test", NULL, NULL, &error));
   fake_faults("[{\"match\": \"POST /v1/refunds\", \"status\": 400, \"times\": 1}]");
   assert_false(flora_pay_settle_order(pay, &order_id, &refunds, &error));
   assert_int_equal(refunds, 0);
   assert_true(history_says(&order_id, "failed"));
   assert_true(history_says(&order_id, "flora payments reconcile"));
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   assert_string_equal(str_at(&p, "status"), "captured");
   bson_destroy(&p);
   assert_true(flora_pay_reconcile(pay, NULL, &repaired, &error));
   assert_true(repaired >= 1);
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   assert_string_equal(str_at(&p, "status"), "refunded");
   bson_destroy(&p);
   assert_true(history_says(&order_id, "refunded 2733.33 RUB"));

   /* No answer at all (5xx on every try): the call stays pending with its key and
    * reconcile repeats it with the same key: one refund at the gateway. */
   bson_destroy(fake("/_control/reset", ""));
   stripe_paid(number, &order_id, &payment_id, pi);
   assert_true(flora_orders_transition(store, &order_id, "cancelled", "user:test", NULL, NULL, &error));
   fake_faults("[{\"match\": \"POST /v1/refunds\", \"status\": 500, \"times\": 20}]");
   assert_false(flora_pay_settle_order(pay, &order_id, &refunds, &error));
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   assert_string_equal(str_at(&p, "pending.operation"), "refund");
   bson_destroy(&p);
   bson_destroy(fake("/_control/reset", ""));
   assert_true(flora_pay_reconcile(pay, NULL, NULL, &error));
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   assert_string_equal(str_at(&p, "status"), "refunded");
   assert_null(str_at(&p, "pending.operation"));
   bson_destroy(&p);
   assert_int_equal(fake_keys("POST /v1/refunds", keys, 8), 1);
   assert_non_null(strstr(keys[0], ":refund:0:273333"));
}

static void
test_payment_after_cancellation_is_returned(void **state)
{
   char number[32], pi[64], evt[96], *body;
   bson_oid_t order_id, payment_id;
   flora_pay_webhook_outcome_t outcome;
   flora_error_t error = {0};
   int64_t now = (int64_t) time(NULL);
   bson_t p;

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   /* The buyer cancels while the payment page is still open, then pays anyway. */
   stripe_pay(number, &order_id, &payment_id, pi);
   assert_true(flora_orders_transition(store, &order_id, "cancelled", "user:test", NULL, NULL, &error));
   fake_act("stripe", "confirm", pi);
   snprintf(evt, sizeof evt, "evt_late_%s", pi);
   body = stripe_event(evt, "payment_intent.succeeded", pi, 273333, 273333, "rub", "succeeded");
   assert_true(deliver_stripe(body, "whsec_flora", now, now, &outcome, &error));
   bson_free(body);
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_APPLIED);
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   assert_string_equal(str_at(&p, "status"), "refunded");
   assert_int_equal(int_at(&p, "amountRefunded"), 273333);
   bson_destroy(&p);
   assert_int_equal(fake_count("stripe_refunds"), 1);
   {
      bson_t *o = order_doc(&order_id);

      assert_string_equal(str_at(o, "status"), "cancelled");
      bson_destroy(o);
      bson_free(o);
   }
   assert_true(history_says(&order_id, "after the order was cancelled"));
   assert_true(history_says(&order_id, "refunded 2733.33 RUB"));
}

static void
test_reconcile_after_lost_answer(void **state)
{
   char number[32], keys[8][128];
   bson_oid_t order_id;
   bson_t out, list;
   flora_error_t error = {0};
   size_t checked = 0, repaired = 0;
   bson_iter_t it;

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   /* The provider accepts, then the connection drops, on every try: the call's outcome is
    * unknown; the attempt stays recorded as "calling create". */
   new_order(number, &order_id);
   fake_faults("[{\"match\": \"POST /v1/payment_intents\", \"after\": true, \"drop\": true, "
               "\"times\": 3}]");
   assert_false(flora_pay_create_payment(pay, number, "stripe", &out, &error));
   bson_destroy(&out);
   assert_int_equal(error.code, FLORA_ERR_UNAVAILABLE);
   assert_int_equal(fake_count("stripe_intents"), 1);
   assert_true(flora_pay_list_payments(pay, number, &list, &error));
   assert_true(bson_iter_init_find(&it, &list, "0"));
   {
      bson_t p;
      uint32_t len;
      const uint8_t *data;

      bson_iter_document(&it, &len, &data);
      bson_init_static(&p, data, len);
      assert_string_equal(str_at(&p, "status"), "created");
      assert_string_equal(str_at(&p, "pending.operation"), "create");
      assert_null(str_at(&p, "providerPaymentId"));
   }
   bson_destroy(&list);
   /* Reconcile repeats the create with the recorded key: the same intent, not a second. */
   assert_true(flora_pay_reconcile(pay, &checked, &repaired, &error));
   assert_true(repaired >= 1);
   assert_int_equal(fake_count("stripe_intents"), 1);
   assert_int_equal(fake_keys("POST /v1/payment_intents", keys, 8), 4);
   assert_string_equal(keys[0], keys[3]);
   assert_true(flora_pay_list_payments(pay, number, &list, &error));
   assert_true(bson_iter_init_find(&it, &list, "0"));
   {
      bson_t p;
      uint32_t len;
      const uint8_t *data;

      bson_iter_document(&it, &len, &data);
      bson_init_static(&p, data, len);
      assert_string_equal(str_at(&p, "status"), "requires_action");
      assert_null(str_at(&p, "pending.operation"));
      assert_non_null(str_at(&p, "providerPaymentId"));
      assert_non_null(str_at(&p, "client.clientSecret"));
   }
   bson_destroy(&list);
}

/* ---- PayPal ---------------------------------------------------------------------------- */

static char *
paypal_sig(const char *tid, const char *ttime, const char *body)
{
   char *payload = flora_pay_paypal_signed_payload(tid, ttime, "WH-FLORA", body, strlen(body));
   EVP_MD_CTX *md = EVP_MD_CTX_new();
   unsigned char sig[512];
   size_t sig_len = sizeof sig;
   char *b64 = bson_malloc0(1024);

   EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pp_key);
   EVP_DigestSign(md, sig, &sig_len, (const unsigned char *) payload, strlen(payload));
   EVP_EncodeBlock((unsigned char *) b64, sig, (int) sig_len);
   EVP_MD_CTX_free(md);
   bson_free(payload);
   return b64;
}

static bool
deliver_paypal(const char *body, const char *cert_url, bool forge,
               flora_pay_webhook_outcome_t *outcome, flora_error_t *error)
{
   char *sig = paypal_sig("tid-1", "2026-11-30T10:00:00Z", forge ? "{}" : body);
   hdrs_t h = {{"PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG",
                "PAYPAL-CERT-URL", "PAYPAL-AUTH-ALGO"},
               {"tid-1", "2026-11-30T10:00:00Z", sig, cert_url, "SHA256withRSA"}};
   flora_pay_webhook_t hook = {body, strlen(body), hdr, &h, "127.0.0.1", (int64_t) time(NULL)};
   bool ok = flora_pay_handle_webhook(pay, "paypal", &hook, outcome, error);

   bson_free(sig);
   return ok;
}

static void
test_paypal_flow(void **state)
{
   char number[32], keys[8][128], cert_url[128], *body;
   bson_oid_t order_id, payment_id;
   bson_t out, p;
   bson_iter_t it;
   flora_error_t error = {0};
   flora_pay_webhook_outcome_t outcome;
   const char *ppid;

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   new_order(number, &order_id);
   if (!flora_pay_create_payment(pay, number, "paypal", &out, &error)) {
      fail_msg("create: %s", error.message);
   }
   assert_non_null(strstr(str_at(&out, "client.approveUrl"), "checkoutnow?token="));
   assert_true(bson_iter_init_find(&it, &out, "paymentId"));
   bson_oid_copy(bson_iter_oid(&it), &payment_id);
   bson_destroy(&out);
   assert_int_equal(fake_keys("POST /v2/checkout/orders", keys, 8), 1);
   assert_non_null(strstr(keys[0], ":create:273333"));
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   ppid = str_at(&p, "providerPaymentId");
   fake_act("paypal", "approve", ppid);
   /* The buyer approved: a webhook says so (signed with the certificate the fake serves). */
   snprintf(cert_url, sizeof cert_url, "%s/v1/notifications/certs/CERT-1", fake_url);
   body = bson_strdup_printf(
      "{\"id\": \"WH-1\", \"event_type\": \"CHECKOUT.ORDER.APPROVED\", \"resource\": {\"id\": "
      "\"%s\", \"status\": \"APPROVED\", \"purchase_units\": [{\"amount\": {\"currency_code\": "
      "\"RUB\", \"value\": \"2733.33\"}}]}}",
      ppid);
   assert_false(deliver_paypal(body, cert_url, true, &outcome, &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
   assert_false(deliver_paypal(body, "https://evil.example/cert", false, &outcome, &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
   if (!deliver_paypal(body, cert_url, false, &outcome, &error)) {
      fail_msg("paypal webhook: %s", error.message);
   }
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_APPLIED);
   bson_free(body);
   /* PayPal captures the whole order: a partial capture is refused before it is sent. */
   assert_false(flora_pay_capture(pay, &payment_id, 1000, &out, &error));
   bson_destroy(&out);
   assert_int_equal(error.code, FLORA_ERR_CONFLICT);
   assert_int_equal(fake_keys("POST /v2/checkout/orders/", keys, 8), 0);
   /* The whole capture pays the order. */
   if (!flora_pay_capture(pay, &payment_id, 0, &out, &error)) {
      fail_msg("capture: %s", error.message);
   }
   assert_string_equal(str_at(&out, "status"), "captured");
   assert_non_null(str_at(&out, "captureId"));
   bson_destroy(&out);
   assert_order(&order_id, "paid", 1);
   /* The capture webhook afterwards is applied without a second transition. */
   body = bson_strdup_printf(
      "{\"id\": \"WH-2\", \"event_type\": \"PAYMENT.CAPTURE.COMPLETED\", \"resource\": {\"id\": "
      "\"CAP1\", \"status\": \"COMPLETED\", \"amount\": {\"currency_code\": \"RUB\", \"value\": "
      "\"2733.33\"}, \"supplementary_data\": {\"related_ids\": {\"order_id\": \"%s\"}}}}",
      ppid);
   assert_true(deliver_paypal(body, cert_url, false, &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_IGNORED);
   assert_order(&order_id, "paid", 1);
   bson_free(body);
   /* Refunds go to the capture. */
   assert_true(flora_pay_refund(pay, &payment_id, 33333, &out, &error));
   assert_string_equal(str_at(&out, "status"), "partially_refunded");
   bson_destroy(&out);
   assert_int_equal(fake_count("paypal_refunds"), 1);
   /* One OAuth token served every call... */
   assert_int_equal(fake_count("paypal_tokens"), 1);
   /* ...until shortly before it expires (expires_in 32400 s): then a new one. */
   clock_offset_s = 32400 - 30;
   assert_true(flora_pay_refund(pay, &payment_id, 1000, &out, &error));
   bson_destroy(&out);
   clock_offset_s = 0;
   assert_int_equal(fake_count("paypal_tokens"), 2);
   assert_int_equal(fake_count("paypal_refunds"), 2);
   bson_destroy(&p);
}

/* ---- YooKassa ------------------------------------------------------------------------ */

static bool
deliver_yookassa(const char *body, const char *ip, flora_pay_webhook_outcome_t *outcome,
                 flora_error_t *error)
{
   hdrs_t h = {{NULL}, {NULL}};
   flora_pay_webhook_t hook = {body, strlen(body), hdr, &h, ip, (int64_t) time(NULL)};

   return flora_pay_handle_webhook(pay, "yookassa", &hook, outcome, error);
}

static void
test_yookassa_flow(void **state)
{
   char number[32], keys[8][128], *body;
   bson_oid_t order_id, payment_id;
   bson_t out, p;
   bson_iter_t it;
   flora_error_t error = {0};
   flora_pay_webhook_outcome_t outcome;
   const char *ypid;

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   new_order(number, &order_id);
   /* The fake refuses a receipt whose items do not add up to the amount exactly. */
   if (!flora_pay_create_payment(pay, number, "yookassa", &out, &error)) {
      fail_msg("create: %s", error.message);
   }
   assert_non_null(strstr(str_at(&out, "client.confirmationUrl"), "yoomoney.ru"));
   assert_true(bson_iter_init_find(&it, &out, "paymentId"));
   bson_oid_copy(bson_iter_oid(&it), &payment_id);
   bson_destroy(&out);
   assert_int_equal(fake_keys("POST /v3/payments", keys, 8), 1);
   assert_non_null(strstr(keys[0], ":create:273333"));
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   ypid = str_at(&p, "providerPaymentId");
   /* A notification claiming success before the buyer paid: the re-read says pending, so
    * it is refused and not stored; the order is not paid. */
   body = bson_strdup_printf("{\"type\": \"notification\", \"event\": \"payment.succeeded\", "
                             "\"object\": {\"id\": \"%s\", \"status\": \"succeeded\"}}",
                             ypid);
   assert_false(deliver_yookassa(body, "127.0.0.1", &outcome, &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
   assert_non_null(strstr(error.message, "not confirmed"));
   assert_order(&order_id, "pending_payment", 0);
   fake_act("yookassa", "pay", ypid);
   /* From an address outside the allowlist: refused. */
   assert_false(deliver_yookassa(body, "203.0.113.9", &outcome, &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
   assert_order(&order_id, "pending_payment", 0);
   /* Now the API confirms it: applied once; the redelivery is a duplicate. */
   assert_true(deliver_yookassa(body, "127.0.0.1", &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_APPLIED);
   assert_order(&order_id, "paid", 1);
   assert_true(deliver_yookassa(body, "127.0.0.1", &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_DUPLICATE);
   bson_free(body);
   assert_order(&order_id, "paid", 1);
   /* Malformed notifications. */
   assert_false(deliver_yookassa("{\"type\": \"notification\"}", "127.0.0.1", &outcome, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
   assert_false(deliver_yookassa("not json", "127.0.0.1", &outcome, &error));
   /* Refund above captured: refused before sending; a partial refund goes through. */
   assert_false(flora_pay_refund(pay, &payment_id, 273334, &out, &error));
   bson_destroy(&out);
   assert_int_equal(fake_keys("POST /v3/refunds", keys, 8), 0);
   assert_true(flora_pay_refund(pay, &payment_id, 73333, &out, &error));
   assert_string_equal(str_at(&out, "status"), "partially_refunded");
   bson_destroy(&out);
   body = bson_strdup_printf("{\"type\": \"notification\", \"event\": \"refund.succeeded\", "
                             "\"object\": {\"id\": \"r-1\", \"payment_id\": \"%s\", \"status\": "
                             "\"succeeded\"}}",
                             ypid);
   assert_true(deliver_yookassa(body, "127.0.0.1", &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_IGNORED); /* already known */
   bson_free(body);
   bson_destroy(&p);
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   assert_int_equal(int_at(&p, "amountRefunded"), 73333);
   assert_int_equal(int_at(&p, "amountCaptured"), 273333);
   bson_destroy(&p);
}

/* Two-stage YooKassa: the payment waits for capture; a manager captures part of it. */
static void
test_yookassa_partial_capture(void **state)
{
   char number[32], *body;
   bson_oid_t order_id, payment_id;
   bson_t out, p;
   bson_iter_t it;
   flora_error_t error = {0};
   flora_pay_webhook_outcome_t outcome;

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   set("pay.yookassa.capture", "false");
   new_order(number, &order_id);
   if (!flora_pay_create_payment(pay, number, "yookassa", &out, &error)) {
      fail_msg("create: %s", error.message);
   }
   set("pay.yookassa.capture", "true");
   assert_true(bson_iter_init_find(&it, &out, "paymentId"));
   bson_oid_copy(bson_iter_oid(&it), &payment_id);
   bson_destroy(&out);
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   fake_act("yookassa", "pay", str_at(&p, "providerPaymentId"));
   body = bson_strdup_printf("{\"type\": \"notification\", \"event\": "
                             "\"payment.waiting_for_capture\", \"object\": {\"id\": \"%s\"}}",
                             str_at(&p, "providerPaymentId"));
   assert_true(deliver_yookassa(body, "127.0.0.1", &outcome, &error));
   assert_int_equal(outcome, FLORA_PAY_WEBHOOK_APPLIED);
   bson_free(body);
   bson_destroy(&p);
   assert_order(&order_id, "pending_payment", 0);
   assert_true(flora_pay_capture(pay, &payment_id, 200000, &out, &error));
   assert_string_equal(str_at(&out, "status"), "captured");
   assert_int_equal(int_at(&out, "amountCaptured"), 200000);
   assert_int_equal(int_at(&out, "amount"), 273333);
   bson_destroy(&out);
   assert_order(&order_id, "paid", 1);
}

/* A full YooKassa refund carries the payment's receipt again (the fake checks it adds up). */
static void
test_yookassa_full_refund(void **state)
{
   char number[32];
   bson_oid_t order_id, payment_id;
   bson_t out, p;
   bson_iter_t it;
   flora_error_t error = {0};

   (void) state;
   if (fake_pid <= 0) {
      skip();
   }
   new_order(number, &order_id);
   assert_true(flora_pay_create_payment(pay, number, "yookassa", &out, &error));
   assert_true(bson_iter_init_find(&it, &out, "paymentId"));
   bson_oid_copy(bson_iter_oid(&it), &payment_id);
   bson_destroy(&out);
   assert_true(flora_pay_get_payment(pay, &payment_id, &p, &error));
   fake_act("yookassa", "pay", str_at(&p, "providerPaymentId"));
   bson_destroy(&p);
   assert_true(flora_pay_reconcile(pay, NULL, NULL, &error));
   assert_order(&order_id, "paid", 1);
   if (!flora_pay_refund(pay, &payment_id, 0, &out, &error)) {
      fail_msg("refund: %s", error.message);
   }
   assert_string_equal(str_at(&out, "status"), "refunded");
   assert_int_equal(int_at(&out, "amountRefunded"), 273333);
   bson_destroy(&out);
   assert_int_equal(fake_count("yookassa_refunds"), 1);
   assert_order(&order_id, "refunded", 2);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_stripe_create_and_webhooks, test_setup),
      cmocka_unit_test_setup(test_stripe_concurrent_duplicates, test_setup),
      cmocka_unit_test_setup(test_stripe_retries, test_setup),
      cmocka_unit_test_setup(test_stripe_manual_capture_and_refunds, test_setup),
      cmocka_unit_test_setup(test_stripe_cancel, test_setup),
      cmocka_unit_test_setup(test_cancelled_paid_order_is_refunded_once, test_setup),
      cmocka_unit_test_setup(test_failed_automatic_refund_is_retried_by_reconcile, test_setup),
      cmocka_unit_test_setup(test_payment_after_cancellation_is_returned, test_setup),
      cmocka_unit_test_setup(test_reconcile_after_lost_answer, test_setup),
      cmocka_unit_test_setup(test_paypal_flow, test_setup),
      cmocka_unit_test_setup(test_yookassa_flow, test_setup),
      cmocka_unit_test_setup(test_yookassa_partial_capture, test_setup),
      cmocka_unit_test_setup(test_yookassa_full_refund, test_setup),
   };

   return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
