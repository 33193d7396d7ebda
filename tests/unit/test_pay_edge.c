/* Payments at the edge: money conversion, webhook signature checks (Stripe's published
 * vector, PayPal's RSA scheme with a generated certificate), IP allowlists, retry policy.
 * Table tests of pure functions. */
#include "flora_test.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "flora/pay.h"
#include "flora/shop.h"

/* ---- money ------------------------------------------------------------------------ */

typedef struct parse_case {
   const char *text, *currency, *expected_currency;
   bool ok;
   int64_t minor;
} parse_case_t;

static const parse_case_t parse_cases[] = {
   {"2500.00", "RUB", "RUB", true, 250000},
   {"2500", "RUB", NULL, true, 250000},
   {"2500.5", "RUB", NULL, true, 250050},
   {"0.01", "USD", "usd", true, 1},
   {"-0.01", "EUR", NULL, true, -1},
   {"1500", "JPY", NULL, true, 1500},
   {"1.234", "KWD", NULL, true, 1234},
   {"92233720368547758.07", "RUB", NULL, true, INT64_MAX},
   {"10.005", "RUB", NULL, false, 0},      /* more decimals than RUB has: never rounded */
   {"1500.0", "JPY", NULL, false, 0},      /* JPY has none */
   {"2500.00", "RUB", "USD", false, 0},    /* currency mismatch */
   {"2500.00", "XXX", NULL, false, 0},     /* unknown currency */
   {"", "RUB", NULL, false, 0},
   {".50", "RUB", NULL, false, 0},
   {"1.", "RUB", NULL, false, 0},
   {"+1.00", "RUB", NULL, false, 0},
   {"1e3", "RUB", NULL, false, 0},
   {" 1.00", "RUB", NULL, false, 0},
   {"1,00", "RUB", NULL, false, 0},
   {"92233720368547758.08", "RUB", NULL, false, 0}, /* overflow */
   {"99999999999999999999", "JPY", NULL, false, 0},
};

static void
test_money_parse(void **state)
{
   (void) state;
   for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
      const parse_case_t *c = &parse_cases[i];
      flora_error_t error = {0};
      int64_t minor = -42;
      bool ok = flora_money_parse(c->text, c->currency, c->expected_currency, &minor, &error);

      if (ok != c->ok || (ok && minor != c->minor)) {
         fail_msg("parse \"%s\" %s: got ok=%d minor=%lld (%s)", c->text, c->currency, ok,
                  (long long) minor, error.message);
      }
      if (!ok) {
         assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
      }
   }
}

typedef struct format_case {
   int64_t minor;
   const char *currency, *text;
} format_case_t;

static const format_case_t format_cases[] = {
   {250000, "RUB", "2500.00"}, {1, "USD", "0.01"},      {-1, "EUR", "-0.01"},
   {1500, "JPY", "1500"},      {1234, "KWD", "1.234"}, {0, "RUB", "0.00"},
   {INT64_MIN, "RUB", "-92233720368547758.08"},
};

static void
test_money_format(void **state)
{
   char buf[32];
   flora_error_t error = {0};

   (void) state;
   for (size_t i = 0; i < sizeof format_cases / sizeof format_cases[0]; i++) {
      const format_case_t *c = &format_cases[i];

      assert_true(flora_money_format(c->minor, c->currency, buf, sizeof buf, &error));
      assert_string_equal(buf, c->text);
   }
   assert_false(flora_money_format(1, "XXX", buf, sizeof buf, &error));
   assert_false(flora_money_format(250000, "RUB", buf, 4, &error)); /* too small */
   assert_int_equal(flora_money_exponent("rub"), 2);
   assert_int_equal(flora_money_exponent("JPY"), 0);
   assert_int_equal(flora_money_exponent("BHD"), 3);
   assert_int_equal(flora_money_exponent("ZZZ"), -1);
}

static void
test_money_stripe(void **state)
{
   flora_error_t error = {0};
   int64_t amount = 0, minor = 0;
   char cur[4];

   (void) state;
   assert_true(flora_money_to_stripe(250000, "RUB", &amount, cur, &error));
   assert_int_equal(amount, 250000);
   assert_string_equal(cur, "rub");
   assert_false(flora_money_to_stripe(-5, "RUB", &amount, cur, &error));
   assert_false(flora_money_to_stripe(100000000, "RUB", &amount, cur, &error));
   assert_false(flora_money_to_stripe(1, "XYZ", &amount, cur, &error));
   assert_true(flora_money_from_stripe(1099, "usd", "USD", &minor, &error));
   assert_int_equal(minor, 1099);
   assert_false(flora_money_from_stripe(1099, "usd", "RUB", &minor, &error));
   assert_non_null(strstr(error.message, "mismatch"));
   assert_false(flora_money_from_stripe(-1, "usd", NULL, &minor, &error));
}

/* ---- Stripe signature ------------------------------------------------------------- */

static char *
read_file(const char *path, size_t *len)
{
   FILE *f = fopen(path, "rb");
   char *buf;
   long n;

   if (!f) {
      return NULL;
   }
   fseek(f, 0, SEEK_END);
   n = ftell(f);
   fseek(f, 0, SEEK_SET);
   buf = malloc((size_t) n + 1);
   assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
   buf[n] = '\0';
   fclose(f);
   *len = (size_t) n;
   return buf;
}

#define VECTOR_SIG "3bfab77baf5f7b6991a46c9b53b6547d7afc56148b10468fcad9f35c1992ffbd"

static void
test_stripe_vector(void **state)
{
   const char *shared = flora_test_shared_dir();
   char path[4200];
   size_t len = 0;
   char *body;
   flora_error_t error = {0};
   int64_t t = 0;

   (void) state;
   if (!shared) {
      flora_skip("FLORA_SHARED_DIR not set: Stripe's test vector is in ../shared/providers");
   }
   snprintf(path, sizeof path, "%s/providers/stripe/webhook_payload.txt", shared);
   body = read_file(path, &len);
   if (!body) {
      flora_skip("%s is missing", path);
   }
   assert_int_equal(len, 125);
   /* The published vector, alone and among other signatures (any v1 may match). */
   assert_true(flora_pay_stripe_verify("t=1700000000,v1=" VECTOR_SIG, body, len,
                                       "whsec_test_secret", 1700000000, 300, &t, &error));
   assert_int_equal(t, 1700000000);
   assert_true(flora_pay_stripe_verify("t=1700000000,v0=abc,v1=" VECTOR_SIG ",scheme=x", body,
                                       len, "whsec_test_secret", 1700000100, 300, NULL, &error));
   assert_true(flora_pay_stripe_verify(
      "t=1700000000,v1=0000000000000000000000000000000000000000000000000000000000000000,v1=" VECTOR_SIG,
      body, len, "whsec_test_secret", 1700000299, 300, NULL, &error));
   /* Stale and future timestamps. */
   assert_false(flora_pay_stripe_verify("t=1700000000,v1=" VECTOR_SIG, body, len,
                                        "whsec_test_secret", 1700000301, 300, NULL, &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
   assert_non_null(strstr(error.message, "tolerance"));
   assert_false(flora_pay_stripe_verify("t=1700000000,v1=" VECTOR_SIG, body, len,
                                        "whsec_test_secret", 1699999000, 300, NULL, &error));
   /* Wrong secret, altered body, altered timestamp, malformed headers. */
   assert_false(flora_pay_stripe_verify("t=1700000000,v1=" VECTOR_SIG, body, len, "whsec_other",
                                        1700000000, 300, NULL, &error));
   body[10] ^= 1;
   assert_false(flora_pay_stripe_verify("t=1700000000,v1=" VECTOR_SIG, body, len,
                                        "whsec_test_secret", 1700000000, 300, NULL, &error));
   body[10] ^= 1;
   assert_false(flora_pay_stripe_verify("t=1700000001,v1=" VECTOR_SIG, body, len,
                                        "whsec_test_secret", 1700000000, 300, NULL, &error));
   assert_false(flora_pay_stripe_verify("v1=" VECTOR_SIG, body, len, "whsec_test_secret",
                                        1700000000, 300, NULL, &error));
   assert_false(flora_pay_stripe_verify("t=1700000000", body, len, "whsec_test_secret",
                                        1700000000, 300, NULL, &error));
   assert_false(flora_pay_stripe_verify("t=abc,v1=" VECTOR_SIG, body, len, "whsec_test_secret",
                                        1700000000, 300, NULL, &error));
   assert_false(flora_pay_stripe_verify("t=1700000000,v1=zz", body, len, "whsec_test_secret",
                                        1700000000, 300, NULL, &error));
   assert_false(flora_pay_stripe_verify(NULL, body, len, "whsec_test_secret", 1700000000, 300,
                                        NULL, &error));
   free(body);
}

/* ---- PayPal signature --------------------------------------------------------------- */

/* A self-signed certificate and its key, as PEM (both malloc'd). */
static void
make_cert(char **cert_pem, size_t *cert_len, EVP_PKEY **key_out, long valid_from_s)
{
   EVP_PKEY *key = EVP_RSA_gen(2048);
   X509 *x = X509_new();
   BIO *bio = BIO_new(BIO_s_mem());
   X509_NAME *name;
   char *data;
   long n;

   assert_non_null(key);
   X509_set_version(x, 2);
   ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
   X509_gmtime_adj(X509_getm_notBefore(x), valid_from_s);
   X509_gmtime_adj(X509_getm_notAfter(x), valid_from_s + 3600);
   X509_set_pubkey(x, key);
   name = X509_get_subject_name(x);
   X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) "messageverificationcerts.test", -1, -1, 0);
   X509_set_issuer_name(x, name);
   assert_true(X509_sign(x, key, EVP_sha256()) > 0);
   PEM_write_bio_X509(bio, x);
   n = BIO_get_mem_data(bio, &data);
   *cert_pem = malloc((size_t) n);
   memcpy(*cert_pem, data, (size_t) n);
   *cert_len = (size_t) n;
   BIO_free(bio);
   X509_free(x);
   *key_out = key;
}

static char *
sign_b64(EVP_PKEY *key, const char *payload)
{
   EVP_MD_CTX *md = EVP_MD_CTX_new();
   unsigned char sig[512];
   size_t sig_len = sizeof sig;
   char *b64 = malloc(1024);

   assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
   assert_int_equal(EVP_DigestSign(md, sig, &sig_len, (const unsigned char *) payload,
                                   strlen(payload)),
                    1);
   EVP_EncodeBlock((unsigned char *) b64, sig, (int) sig_len);
   EVP_MD_CTX_free(md);
   return b64;
}

static void
test_paypal_signature(void **state)
{
   const char *body = "{\"id\":\"WH-1\",\"event_type\":\"PAYMENT.CAPTURE.COMPLETED\"}";
   char *cert, *old_cert, *payload, *sig, *forged;
   size_t cert_len, old_len;
   EVP_PKEY *key, *old_key, *other_key;
   char *other_cert;
   size_t other_len;
   flora_error_t error = {0};

   (void) state;
   /* The signed string: PayPal-Java-SDK Event.java; the CRC32 of this body by zlib. */
   payload = flora_pay_paypal_signed_payload("tid-1", "2026-11-30T10:00:00Z", "WHID", body,
                                             strlen(body));
   assert_non_null(strstr(payload, "tid-1|2026-11-30T10:00:00Z|WHID|"));
   make_cert(&cert, &cert_len, &key, -60);
   sig = sign_b64(key, payload);
   assert_true(flora_pay_paypal_verify("tid-1", "2026-11-30T10:00:00Z", "WHID", "SHA256withRSA",
                                       sig, cert, cert_len, body, strlen(body), &error));
   /* Another body, transmission id or webhook id: refused. */
   assert_false(flora_pay_paypal_verify("tid-1", "2026-11-30T10:00:00Z", "WHID", "SHA256withRSA",
                                        sig, cert, cert_len, "{}", 2, &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
   assert_false(flora_pay_paypal_verify("tid-2", "2026-11-30T10:00:00Z", "WHID", "SHA256withRSA",
                                        sig, cert, cert_len, body, strlen(body), &error));
   assert_false(flora_pay_paypal_verify("tid-1", "2026-11-30T10:00:00Z", "OTHER", "SHA256withRSA",
                                        sig, cert, cert_len, body, strlen(body), &error));
   assert_false(flora_pay_paypal_verify("tid-1", "2026-11-30T10:00:00Z", "WHID", "SHA1withRSA",
                                        sig, cert, cert_len, body, strlen(body), &error));
   assert_false(flora_pay_paypal_verify("tid-1", "2026-11-30T10:00:00Z", "WHID", "SHA256withRSA",
                                        "not base64!", cert, cert_len, body, strlen(body), &error));
   /* Signed by another key. */
   make_cert(&other_cert, &other_len, &other_key, -60);
   forged = sign_b64(other_key, payload);
   assert_false(flora_pay_paypal_verify("tid-1", "2026-11-30T10:00:00Z", "WHID", "SHA256withRSA",
                                        forged, cert, cert_len, body, strlen(body), &error));
   /* A certificate not valid now. */
   make_cert(&old_cert, &old_len, &old_key, -7200);
   free(sig);
   sig = sign_b64(old_key, payload);
   assert_false(flora_pay_paypal_verify("tid-1", "2026-11-30T10:00:00Z", "WHID", "SHA256withRSA",
                                        sig, old_cert, old_len, body, strlen(body), &error));
   assert_non_null(strstr(error.message, "valid"));
   assert_false(flora_pay_paypal_verify("tid-1", "2026-11-30T10:00:00Z", "WHID", "SHA256withRSA",
                                        sig, "garbage", 7, body, strlen(body), &error));
   /* Certificate URLs: only on the configured API host. */
   assert_true(flora_pay_paypal_cert_url_allowed(
      "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1",
      "https://api-m.sandbox.paypal.com"));
   assert_false(flora_pay_paypal_cert_url_allowed("https://evil.example/cert",
                                                  "https://api-m.sandbox.paypal.com"));
   assert_false(flora_pay_paypal_cert_url_allowed(
      "https://api-m.sandbox.paypal.com.evil.example/cert", "https://api-m.sandbox.paypal.com"));
   assert_false(flora_pay_paypal_cert_url_allowed(
      "https://user@api-m.sandbox.paypal.com/cert", "https://api-m.sandbox.paypal.com"));
   assert_false(flora_pay_paypal_cert_url_allowed("http://api-m.sandbox.paypal.com/cert",
                                                  "https://api-m.sandbox.paypal.com"));
   assert_true(flora_pay_paypal_cert_url_allowed("http://127.0.0.1:4010/certs/1",
                                                 "http://127.0.0.1:4010"));
   assert_false(flora_pay_paypal_cert_url_allowed("http://127.0.0.1:4011/certs/1",
                                                  "http://127.0.0.1:4010"));
   free(forged);
   free(other_cert);
   free(old_cert);
   EVP_PKEY_free(other_key);
   EVP_PKEY_free(old_key);
   free(sig);
   free(cert);
   EVP_PKEY_free(key);
   bson_free(payload);
}

/* ---- IP ranges -------------------------------------------------------------------- */

#define YOOKASSA_IPS                                                                           \
   "185.71.76.0/27, 185.71.77.0/27, 77.75.153.0/25, 77.75.156.11, 77.75.156.35, "               \
   "77.75.154.128/25, 2a02:5180::/32"

typedef struct ip_case {
   const char *ip;
   bool ok, allowed;
} ip_case_t;

static const ip_case_t ip_cases[] = {
   {"185.71.76.0", true, true},      {"185.71.76.31", true, true},
   {"185.71.76.32", true, false},    {"77.75.156.11", true, true},
   {"77.75.156.12", true, false},    {"77.75.154.200", true, true},
   {"77.75.154.127", true, false},   {"2a02:5180::1", true, true},
   {"2a02:5181::1", true, false},    {"::ffff:185.71.77.5", true, true},
   {"127.0.0.1", true, false},       {"not-an-ip", false, false},
   {"185.71.76.0/27", false, false}, {"", false, false},
};

static void
test_ip_ranges(void **state)
{
   flora_error_t error = {0};
   bool allowed;

   (void) state;
   for (size_t i = 0; i < sizeof ip_cases / sizeof ip_cases[0]; i++) {
      bool ok = flora_pay_ip_allowed(ip_cases[i].ip, YOOKASSA_IPS, &allowed, &error);

      if (ok != ip_cases[i].ok || (ok && allowed != ip_cases[i].allowed)) {
         fail_msg("%s: ok=%d allowed=%d", ip_cases[i].ip, ok, allowed);
      }
   }
   assert_false(flora_pay_ip_allowed("1.2.3.4", "1.2.3.0/33", &allowed, &error));
   assert_false(flora_pay_ip_allowed("1.2.3.4", "banana", &allowed, &error));
   assert_true(flora_pay_ip_allowed("1.2.3.4", "", &allowed, &error));
   assert_false(allowed);
   assert_true(flora_pay_ip_allowed("10.1.2.3", "0.0.0.0/0", &allowed, &error));
   assert_true(allowed);
}

/* ---- retries ---------------------------------------------------------------------- */

static void
test_retry(void **state)
{
   flora_pay_retry_t r = FLORA_PAY_RETRY_INIT;

   (void) state;
   /* Network errors, 409 and 5xx retry; other 4xx never; Stripe-Should-Retry decides. */
   assert_true(flora_pay_retry_should(true, 0, NULL));
   assert_true(flora_pay_retry_should(false, 500, NULL));
   assert_true(flora_pay_retry_should(false, 503, NULL));
   assert_true(flora_pay_retry_should(false, 409, NULL));
   assert_false(flora_pay_retry_should(false, 400, NULL));
   assert_false(flora_pay_retry_should(false, 402, NULL));
   assert_false(flora_pay_retry_should(false, 404, NULL));
   assert_false(flora_pay_retry_should(false, 429, NULL));
   assert_false(flora_pay_retry_should(false, 200, NULL));
   assert_true(flora_pay_retry_should(false, 400, "true"));
   assert_false(flora_pay_retry_should(false, 500, "false"));
   assert_false(flora_pay_retry_should(true, 0, "false"));
   /* Backoff: min(0.5 * 2^(n-1), 5) s with jitter in [0.5, 1.0]. */
   assert_int_equal(flora_pay_retry_delay_ms(&r, 1, 0.999999), 499);
   assert_int_equal(flora_pay_retry_delay_ms(&r, 1, 0.0), 250);
   assert_int_equal(flora_pay_retry_delay_ms(&r, 2, 0.0), 500);
   assert_int_equal(flora_pay_retry_delay_ms(&r, 3, 0.0), 1000);
   assert_int_equal(flora_pay_retry_delay_ms(&r, 4, 0.0), 2000);
   assert_int_equal(flora_pay_retry_delay_ms(&r, 5, 0.0), 2500); /* 5 s cap, halved */
   assert_int_equal(flora_pay_retry_delay_ms(&r, 30, 0.0), 2500);
   assert_true(flora_pay_retry_delay_ms(&r, 30, 0.9) <= 5000);
}

static void
test_statuses(void **state)
{
   (void) state;
   assert_true(flora_pay_status_rank("created") < flora_pay_status_rank("authorized"));
   assert_true(flora_pay_status_rank("authorized") < flora_pay_status_rank("captured"));
   assert_true(flora_pay_status_rank("captured") < flora_pay_status_rank("refunded"));
   assert_true(flora_pay_status_rank("failed") < flora_pay_status_rank("captured"));
   assert_int_equal(flora_pay_status_rank("bogus"), -1);
   assert_non_null(flora_pay_provider("stripe"));
   assert_non_null(flora_pay_provider("paypal"));
   assert_non_null(flora_pay_provider("yookassa"));
   assert_null(flora_pay_provider("bitcoin"));
}

/* The payments schemas: registered, and their defaults keep their own rules (an empty
 * document fails only for required fields without a default). */
static void
test_schemas(void **state)
{
   const flora_schema_t *const list[] = {&flora_schema_payments, &flora_schema_webhook_events};

   (void) state;
   for (size_t i = 0; i < 2; i++) {
      bson_t empty = BSON_INITIALIZER, prepared, problems = BSON_INITIALIZER, specs;
      flora_error_t error = {0};
      bson_iter_t it, item;

      assert_ptr_equal(flora_shop_schema(list[i]->collection), list[i]);
      assert_true(flora_schema_index_specs(list[i], &specs, &error));
      bson_destroy(&specs);
      assert_true(flora_schema_prepare_insert(list[i], &empty, INT64_C(1700000000000), &prepared,
                                              &error));
      flora_schema_validate(list[i], &prepared, &problems, NULL);
      bson_iter_init(&it, &problems);
      while (bson_iter_next(&it)) {
         bson_iter_recurse(&it, &item);
         assert_true(bson_iter_find(&item, "reason"));
         assert_string_equal(bson_iter_utf8(&item, NULL), "is required");
      }
      bson_destroy(&problems);
      bson_destroy(&prepared);
   }
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_money_parse),    cmocka_unit_test(test_money_format),
      cmocka_unit_test(test_money_stripe),   cmocka_unit_test(test_stripe_vector),
      cmocka_unit_test(test_paypal_signature), cmocka_unit_test(test_ip_ranges),
      cmocka_unit_test(test_retry),          cmocka_unit_test(test_statuses),
      cmocka_unit_test(test_schemas),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
