/* Configuration: see include/flora/config.h. One static table of keys (redis config.c);
 * every value is parsed and checked by the same function whatever its source. */
#include "flora/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef enum key_type {
   TYPE_STRING,
   TYPE_INT,
   TYPE_BOOL,
} key_type_t;

typedef struct key_def {
   const char *name;
   const char *env;
   key_type_t type;
   int64_t min; /* int: bounds; string: minimum length */
   int64_t max; /* int: bounds; string: maximum length */
   const char *def;
   bool secret;
   const char *allowed; /* string keys: "a|b|c", or NULL for any value */
   const char *help;
} key_def_t;

#define MIB (INT64_C(1) << 20)

static const key_def_t keys[] = {
   {"store.uri", "FLORA_STORE_URI", TYPE_STRING, 1, 4096, "sqlite:var/flora.db", false, NULL,
    "Document store: sqlite:PATH (embedded), sqlite::memory:, or mongodb://... "
    "(a password in the URI is masked when printed)."},
   {"store.pool_size", "FLORA_STORE_POOL_SIZE", TYPE_INT, 1, 1024, "16", false, NULL,
    "Connections of the embedded engine, or the libmongoc client pool size."},
   {"store.ttl_sweep_interval_s", "FLORA_STORE_TTL_SWEEP_INTERVAL_S", TYPE_INT, 0, 86400, "60",
    false, NULL, "Embedded engine: seconds between TTL index sweeps (0 disables them)."},
   {"store.busy_timeout_ms", "FLORA_STORE_BUSY_TIMEOUT_MS", TYPE_INT, 0, 600000, "5000", false,
    NULL, "Embedded engine: milliseconds to wait for a locked database."},
   {"store.transaction_timeout_ms", "FLORA_STORE_TRANSACTION_TIMEOUT_MS", TYPE_INT, 1000, 3600000,
    "120000", false, NULL, "Milliseconds a transaction keeps retrying transient errors."},
   {"http.bind", "FLORA_HTTP_BIND", TYPE_STRING, 1, 64, "127.0.0.1", false, NULL,
    "Numeric IPv4 or IPv6 address the HTTP server listens on (0.0.0.0 or :: for all)."},
   {"http.port", "FLORA_HTTP_PORT", TYPE_INT, 0, 65535, "8080", false, NULL,
    "TCP port of the HTTP server; 0 picks a free port (logged at start)."},
   {"http.threads", "FLORA_HTTP_THREADS", TYPE_INT, 1, 256, "4", false, NULL,
    "Worker threads of the HTTP server (libmicrohttpd thread pool)."},
   {"http.max_body_bytes", "FLORA_HTTP_MAX_BODY_BYTES", TYPE_INT, 1024, 256 * MIB, "1048576",
    false, NULL, "Largest accepted request body in bytes; larger bodies get 413."},
   {"http.cache_entries", "FLORA_HTTP_CACHE_ENTRIES", TYPE_INT, 0, 1000000, "1024", false, NULL,
    "Rendered catalog responses kept in memory, validated by collection versions (embedded "
    "engine); 0 turns the cache off."},
   {"http.cache_bytes", "FLORA_HTTP_CACHE_BYTES", TYPE_INT, 1 * MIB, 4096 * MIB, "67108864", false,
    NULL, "Memory for cached responses in bytes."},
   {"http.connection_timeout_s", "FLORA_HTTP_CONNECTION_TIMEOUT_S", TYPE_INT, 1, 3600, "30", false,
    NULL, "Seconds of inactivity after which a connection is closed."},
   {"http.shutdown_timeout_s", "FLORA_HTTP_SHUTDOWN_TIMEOUT_S", TYPE_INT, 0, 3600, "30", false,
    NULL, "On SIGTERM, seconds to let requests in flight finish before closing connections."},
   {"http.admin_token", "FLORA_HTTP_ADMIN_TOKEN", TYPE_STRING, 0, 1024, "", true, NULL,
    "Bearer token of the admin routes; empty disables them (503)."},
   {"log.level", "FLORA_LOG_LEVEL", TYPE_STRING, 1, 16, "info", false, "debug|info|warn|error",
    "Lowest level logged."},
   {"log.format", "FLORA_LOG_FORMAT", TYPE_STRING, 1, 16, "logfmt", false, "logfmt|json",
    "Log line format on stderr."},
   {"log.requests", "FLORA_LOG_REQUESTS", TYPE_BOOL, 0, 1, "true", false, NULL,
    "Log one line per HTTP request (method, path, route, status, duration, bytes, id)."},
   {"shop.timezone", "FLORA_SHOP_TIMEZONE", TYPE_STRING, 1, 64, "Europe/Moscow", false, NULL,
    "IANA time zone of the shop: delivery dates, slots and cut-offs."},
   {"shop.currency", "FLORA_SHOP_CURRENCY", TYPE_STRING, 3, 3, "RUB", false, NULL,
    "ISO 4217 code of the shop's prices."},
   {"delivery.flat_fee", "FLORA_DELIVERY_FLAT_FEE", TYPE_INT, 0, 100000000, "50000", false, NULL,
    "Delivery price in kopecks while no delivery pricing is configured (checkout)."},
   {"cart.ttl_s", "FLORA_CART_TTL_S", TYPE_INT, 60, 365 * 86400, "604800", false, NULL,
    "Seconds an untouched cart lives (TTL on carts.expiresAt; every write refreshes it)."},
   {"auth.argon2_opslimit", "FLORA_AUTH_ARGON2_OPSLIMIT", TYPE_INT, 1, 16, "2", false, NULL,
    "Argon2id passes of password hashing (libsodium crypto_pwhash opslimit; 2 is "
    "crypto_pwhash_OPSLIMIT_INTERACTIVE)."},
   {"auth.argon2_memlimit", "FLORA_AUTH_ARGON2_MEMLIMIT", TYPE_INT, 8192, 4096 * MIB, "67108864",
    false, NULL,
    "Argon2id memory of password hashing in bytes (libsodium crypto_pwhash memlimit; 64 MiB "
    "is crypto_pwhash_MEMLIMIT_INTERACTIVE)."},
   {"auth.session_ttl_s", "FLORA_AUTH_SESSION_TTL_S", TYPE_INT, 60, 31536000, "2592000", false,
    NULL, "Seconds a session token stays valid after log-in."},
   {"auth.reset_ttl_s", "FLORA_AUTH_RESET_TTL_S", TYPE_INT, 60, 604800, "3600", false, NULL,
    "Seconds a password reset token stays valid."},
   {"auth.reset_url", "FLORA_AUTH_RESET_URL", TYPE_STRING, 1, 1000,
    "http://127.0.0.1:8080/reset-password?token=", false, NULL,
    "Storefront page of the password reset e-mail; the reset token is appended to it."},
   {"auth.rate_limit_window_s", "FLORA_AUTH_RATE_LIMIT_WINDOW_S", TYPE_INT, 1, 86400, "900", false,
    NULL, "Window of the authentication rate limits (log-in, registration, reset requests)."},
   {"auth.rate_limit_per_email", "FLORA_AUTH_RATE_LIMIT_PER_EMAIL", TYPE_INT, 1, 1000000, "10",
    false, NULL, "Attempts per e-mail address per window; more get 429."},
   {"auth.rate_limit_per_ip", "FLORA_AUTH_RATE_LIMIT_PER_IP", TYPE_INT, 1, 1000000, "100", false,
    NULL, "Attempts per client address per window; more get 429."},
   {"delivery.geocoder", "FLORA_DELIVERY_GEOCODER", TYPE_STRING, 1, 16, "none", false, "none|dadata",
    "Address geocoder of delivery quotes: none (clients send lat/lon) or dadata (DaData suggest/address)."},
   {"delivery.geocoder_url", "FLORA_DELIVERY_GEOCODER_URL", TYPE_STRING, 1, 1024,
    "https://suggestions.dadata.ru/suggestions/api/4_1/rs/suggest/address", false, NULL,
    "Endpoint of the geocoder (DaData suggest/address)."},
   {"delivery.geocoder_key", "FLORA_DELIVERY_GEOCODER_KEY", TYPE_STRING, 0, 1024, "", true, NULL,
    "API key of the geocoder (DaData: sent as Authorization: Token KEY)."},
   {"delivery.geocoder_timeout_ms", "FLORA_DELIVERY_GEOCODER_TIMEOUT_MS", TYPE_INT, 100, 60000,
    "3000", false, NULL, "Milliseconds before a geocoder call is abandoned (the quote then asks for coordinates)."},
   {"delivery.courier", "FLORA_DELIVERY_COURIER", TYPE_STRING, 1, 16, "none", false, "none|yandex",
    "Courier service for addresses outside every zone: none or yandex (Yandex Delivery check-price)."},
   {"delivery.courier_url", "FLORA_DELIVERY_COURIER_URL", TYPE_STRING, 1, 1024,
    "https://b2b.taxi.yandex.net/b2b/cargo/integration/v2/check-price", false, NULL,
    "Endpoint of the courier service's price check."},
   {"delivery.courier_key", "FLORA_DELIVERY_COURIER_KEY", TYPE_STRING, 0, 1024, "", true, NULL,
    "OAuth token of the courier service (sent as Authorization: Bearer TOKEN)."},
   {"delivery.courier_timeout_ms", "FLORA_DELIVERY_COURIER_TIMEOUT_MS", TYPE_INT, 100, 60000, "5000",
    false, NULL, "Milliseconds before a courier price call is abandoned (the address is then not deliverable)."},
   {"catalog.page_size_default", "FLORA_CATALOG_PAGE_SIZE_DEFAULT", TYPE_INT, 1, 1000, "24", false,
    NULL, "Items per catalog page when the client does not ask (at most page_size_max)."},
   {"catalog.page_size_max", "FLORA_CATALOG_PAGE_SIZE_MAX", TYPE_INT, 1, 1000, "100", false, NULL,
    "Largest page of catalog items a client may ask for."},
   {"notify.worker_in_serve", "FLORA_NOTIFY_WORKER_IN_SERVE", TYPE_BOOL, 0, 1, "false", false,
    NULL, "Run the notification worker inside `flora serve` (else run `flora worker`)."},
   {"notify.poll_interval_ms", "FLORA_NOTIFY_POLL_INTERVAL_MS", TYPE_INT, 10, 600000, "1000",
    false, NULL, "Worker: milliseconds to wait when no notification is due."},
   {"notify.batch_size", "FLORA_NOTIFY_BATCH_SIZE", TYPE_INT, 1, 1000, "20", false, NULL,
    "Worker: messages claimed (one at a time) before checking for a stop."},
   {"notify.lease_s", "FLORA_NOTIFY_LEASE_S", TYPE_INT, 1, 3600, "120", false, NULL,
    "Worker: seconds a claimed message stays leased; then another worker may reclaim it."},
   {"notify.retry_base_ms", "FLORA_NOTIFY_RETRY_BASE_MS", TYPE_INT, 1, 86400000, "30000", false,
    NULL, "First retry delay in ms; doubles per attempt (equal jitter) up to retry_max_ms."},
   {"notify.retry_max_ms", "FLORA_NOTIFY_RETRY_MAX_MS", TYPE_INT, 1, 604800000, "3600000", false,
    NULL, "Longest retry delay in ms."},
   {"notify.max_attempts", "FLORA_NOTIFY_MAX_ATTEMPTS", TYPE_INT, 1, 1000, "10", false, NULL,
    "Attempts before a message is dead-lettered (status dead)."},
   {"notify.shop_name", "FLORA_NOTIFY_SHOP_NAME", TYPE_STRING, 1, 200, "Flora", false, NULL,
    "Shop name in notifications and the e-mail sender's display name default."},
   {"notify.smtp_url", "FLORA_NOTIFY_SMTP_URL", TYPE_STRING, 0, 1024, "", false, NULL,
    "SMTP server: smtp://host:587 (STARTTLS) or smtps://host:465; empty: e-mail off."},
   {"notify.smtp_tls", "FLORA_NOTIFY_SMTP_TLS", TYPE_STRING, 1, 16, "starttls", false,
    "starttls|smtps|none", "TLS: starttls (required), smtps (implicit, smtps:// URL) or none "
    "(a relay on loopback only)."},
   {"notify.smtp_ca_file", "FLORA_NOTIFY_SMTP_CA_FILE", TYPE_STRING, 0, 4096, "", false, NULL,
    "PEM file of the CA certificates trusted for the SMTP server (e.g. a private relay); "
    "empty: the system's."},
   {"notify.smtp_user", "FLORA_NOTIFY_SMTP_USER", TYPE_STRING, 0, 256, "", false, NULL,
    "SMTP AUTH user; empty: no authentication."},
   {"notify.smtp_password", "FLORA_NOTIFY_SMTP_PASSWORD", TYPE_STRING, 0, 256, "", true, NULL,
    "SMTP AUTH password."},
   {"notify.smtp_timeout_s", "FLORA_NOTIFY_SMTP_TIMEOUT_S", TYPE_INT, 1, 600, "30", false, NULL,
    "Seconds one SMTP or SMS provider call may take."},
   {"notify.from_address", "FLORA_NOTIFY_FROM_ADDRESS", TYPE_STRING, 0, 254, "", false, NULL,
    "Sender address of e-mails (also the Message-ID domain)."},
   {"notify.from_name", "FLORA_NOTIFY_FROM_NAME", TYPE_STRING, 0, 200, "", false, NULL,
    "Sender display name; empty: notify.shop_name."},
   {"notify.sms_provider", "FLORA_NOTIFY_SMS_PROVIDER", TYPE_STRING, 1, 16, "none", false,
    "none|smsru|twilio", "SMS provider; none: SMS deliveries fail (and retry) with a clear error."},
   {"notify.smsru_url", "FLORA_NOTIFY_SMSRU_URL", TYPE_STRING, 1, 1024, "https://sms.ru", false,
    NULL, "SMS.ru API base URL."},
   {"notify.smsru_api_id", "FLORA_NOTIFY_SMSRU_API_ID", TYPE_STRING, 0, 256, "", true, NULL,
    "SMS.ru api_id."},
   {"notify.smsru_from", "FLORA_NOTIFY_SMSRU_FROM", TYPE_STRING, 0, 32, "", false, NULL,
    "SMS.ru approved sender name; empty: the account's default."},
   {"notify.twilio_url", "FLORA_NOTIFY_TWILIO_URL", TYPE_STRING, 1, 1024,
    "https://api.twilio.com", false, NULL, "Twilio REST API base URL."},
   {"notify.twilio_account_sid", "FLORA_NOTIFY_TWILIO_ACCOUNT_SID", TYPE_STRING, 0, 64, "", false,
    NULL, "Twilio Account SID (AC...)."},
   {"notify.twilio_auth_token", "FLORA_NOTIFY_TWILIO_AUTH_TOKEN", TYPE_STRING, 0, 256, "", true,
    NULL, "Twilio Auth Token."},
   {"notify.twilio_from", "FLORA_NOTIFY_TWILIO_FROM", TYPE_STRING, 0, 64, "", false, NULL,
    "Twilio sender: an E.164 number or a Messaging Service SID (MG...)."},
   {"notify.sms_rate_limit", "FLORA_NOTIFY_SMS_RATE_LIMIT", TYPE_INT, 1, 100000, "5", false, NULL,
    "SMS one phone number may receive per window."},
   {"notify.sms_rate_window_s", "FLORA_NOTIFY_SMS_RATE_WINDOW_S", TYPE_INT, 1, 604800, "3600",
    false, NULL, "Length of the per-number SMS window in seconds."},
   {"notify.quiet_hours_start", "FLORA_NOTIFY_QUIET_HOURS_START", TYPE_INT, 0, 23, "22", false,
    NULL, "Hour (shop time zone) from which SMS that can wait are held."},
   {"notify.quiet_hours_end", "FLORA_NOTIFY_QUIET_HOURS_END", TYPE_INT, 0, 23, "9", false, NULL,
    "Hour at which held SMS go out; equal to the start: no quiet hours."},
   {"pay.return_url", "FLORA_PAY_RETURN_URL", TYPE_STRING, 0, 2000,
    "http://127.0.0.1:8080/checkout/return", false, NULL,
    "Storefront page PayPal and YooKassa send the buyer back to after paying."},
   {"pay.http_timeout_ms", "FLORA_PAY_HTTP_TIMEOUT_MS", TYPE_INT, 100, 120000, "30000", false,
    NULL, "Whole-request timeout of a payment provider call, milliseconds."},
   {"pay.connect_timeout_ms", "FLORA_PAY_CONNECT_TIMEOUT_MS", TYPE_INT, 100, 60000, "5000", false,
    NULL, "Connect timeout of a payment provider call, milliseconds."},
   {"pay.max_retries", "FLORA_PAY_MAX_RETRIES", TYPE_INT, 0, 10, "2", false, NULL,
    "Retries of a provider call after a network error, 5xx or 409 (same idempotency key)."},
   {"pay.stripe.api_base", "FLORA_PAY_STRIPE_API_BASE", TYPE_STRING, 1, 500,
    "https://api.stripe.com", false, NULL, "Stripe API base URL."},
   {"pay.stripe.secret_key", "FLORA_PAY_STRIPE_SECRET_KEY", TYPE_STRING, 0, 500, "", true, NULL,
    "Stripe secret key (sk_test_... in the sandbox); empty disables Stripe."},
   {"pay.stripe.webhook_secret", "FLORA_PAY_STRIPE_WEBHOOK_SECRET", TYPE_STRING, 0, 500, "",
    true, NULL, "Signing secret (whsec_...) of the Stripe webhook endpoint."},
   {"pay.stripe.api_version", "FLORA_PAY_STRIPE_API_VERSION", TYPE_STRING, 1, 40, "2023-08-16",
    false, NULL, "Pinned Stripe-Version header (the version of the spec Flora is tested with)."},
   {"pay.stripe.capture_method", "FLORA_PAY_STRIPE_CAPTURE_METHOD", TYPE_STRING, 1, 20,
    "automatic", false, "automatic|manual",
    "automatic: charge at confirmation; manual: authorise, a manager captures."},
   {"pay.stripe.webhook_tolerance_s", "FLORA_PAY_STRIPE_WEBHOOK_TOLERANCE_S", TYPE_INT, 1, 3600,
    "300", false, NULL, "Largest age of a Stripe-Signature timestamp, seconds."},
   {"pay.paypal.api_base", "FLORA_PAY_PAYPAL_API_BASE", TYPE_STRING, 1, 500,
    "https://api-m.sandbox.paypal.com", false, NULL,
    "PayPal REST API base URL (https://api-m.paypal.com in production)."},
   {"pay.paypal.client_id", "FLORA_PAY_PAYPAL_CLIENT_ID", TYPE_STRING, 0, 500, "", false, NULL,
    "PayPal REST app client id; empty disables PayPal."},
   {"pay.paypal.client_secret", "FLORA_PAY_PAYPAL_CLIENT_SECRET", TYPE_STRING, 0, 500, "", true,
    NULL, "PayPal REST app secret."},
   {"pay.paypal.webhook_id", "FLORA_PAY_PAYPAL_WEBHOOK_ID", TYPE_STRING, 0, 200, "", false, NULL,
    "Id of the PayPal webhook (part of the signed string of every delivery)."},
   {"pay.yookassa.api_base", "FLORA_PAY_YOOKASSA_API_BASE", TYPE_STRING, 1, 500,
    "https://api.yookassa.ru", false, NULL, "YooKassa API base URL."},
   {"pay.yookassa.shop_id", "FLORA_PAY_YOOKASSA_SHOP_ID", TYPE_STRING, 0, 100, "", false, NULL,
    "YooKassa shopId; empty disables YooKassa."},
   {"pay.yookassa.secret_key", "FLORA_PAY_YOOKASSA_SECRET_KEY", TYPE_STRING, 0, 500, "", true,
    NULL, "YooKassa secret key."},
   {"pay.yookassa.capture", "FLORA_PAY_YOOKASSA_CAPTURE", TYPE_BOOL, 0, 1, "true", false, NULL,
    "true: YooKassa captures at once; false: two-stage, a manager captures."},
   {"pay.yookassa.send_receipt", "FLORA_PAY_YOOKASSA_SEND_RECEIPT", TYPE_BOOL, 0, 1, "true",
    false, NULL, "Send the 54-FZ receipt (from the order's lines) with every payment."},
   {"pay.yookassa.vat_code", "FLORA_PAY_YOOKASSA_VAT_CODE", TYPE_INT, 1, 12, "1", false, NULL,
    "YooKassa vat_code of receipt items (1: without VAT; see YooKassa's vat_code table)."},
   {"pay.yookassa.allowed_ips", "FLORA_PAY_YOOKASSA_ALLOWED_IPS", TYPE_STRING, 0, 2000,
    "185.71.76.0/27, 185.71.77.0/27, 77.75.153.0/25, 77.75.156.11, 77.75.156.35, "
    "77.75.154.128/25, 2a02:5180::/32",
    false, NULL,
    "Addresses YooKassa sends notifications from (yookassa.ru/developers/using-api/webhooks#ip)."},
};

#define N_KEYS (sizeof keys / sizeof keys[0])

typedef struct value {
   char *str; /* every type keeps its text; strings use it as the value */
   int64_t i;
   bool b;
   char source[160];
} value_t;

struct flora_config {
   value_t values[N_KEYS];
};

static const key_def_t *
find_key(const char *name, size_t *index)
{
   for (size_t i = 0; i < N_KEYS; i++) {
      if (strcmp(keys[i].name, name) == 0) {
         if (index) {
            *index = i;
         }
         return &keys[i];
      }
   }
   return NULL;
}

static bool
allowed_value(const char *allowed, const char *value)
{
   size_t n = strlen(value);
   const char *p = allowed;

   while (*p) {
      const char *bar = strchr(p, '|');
      size_t len = bar ? (size_t) (bar - p) : strlen(p);

      if (len == n && strncmp(p, value, n) == 0) {
         return true;
      }
      p += len + (bar ? 1 : 0);
   }
   return false;
}

static bool
parse_bool(const char *s, bool *out)
{
   static const char *const yes[] = {"true", "yes", "on", "1"};
   static const char *const no[] = {"false", "no", "off", "0"};

   for (size_t i = 0; i < 4; i++) {
      if (strcasecmp(s, yes[i]) == 0) {
         *out = true;
         return true;
      }
      if (strcasecmp(s, no[i]) == 0) {
         *out = false;
         return true;
      }
   }
   return false;
}

/* Checks value against def and stores it with its source. */
static bool
set_value(value_t *v, const key_def_t *def, const char *value, const char *source,
          flora_error_t *error)
{
   int64_t i = 0;
   bool b = false;
   char *copy = NULL;

   switch (def->type) {
   case TYPE_INT: {
      char *end = NULL;
      long long n;

      errno = 0;
      n = strtoll(value, &end, 10);
      if (errno != 0 || end == value || *end != '\0' || isspace((unsigned char) value[0])) {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                         "%s: %s: '%s' is not an integer", source, def->name, value);
         return false;
      }
      if (n < def->min || n > def->max) {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                         "%s: %s: %lld is out of range %" PRId64 "..%" PRId64, source, def->name,
                         n, def->min, def->max);
         return false;
      }
      i = n;
      break;
   }
   case TYPE_BOOL:
      if (!parse_bool(value, &b)) {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                         "%s: %s: '%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
                         source, def->name, value);
         return false;
      }
      break;
   case TYPE_STRING: {
      size_t len = strlen(value);

      if (def->allowed && !allowed_value(def->allowed, value)) {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                         "%s: %s: '%s' is not one of %s", source, def->name, value, def->allowed);
         return false;
      }
      if ((int64_t) len < def->min || (int64_t) len > def->max) {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                         "%s: %s: length %zu is out of range %" PRId64 "..%" PRId64, source,
                         def->name, len, def->min, def->max);
         return false;
      }
      break;
   }
   }
   copy = strdup(value);
   if (!copy) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_SYSTEM, "out of memory");
      return false;
   }
   free(v->str);
   v->str = copy;
   v->i = i;
   v->b = b;
   snprintf(v->source, sizeof v->source, "%s", source);
   return true;
}

static char *
trim(char *s)
{
   char *end;

   while (isspace((unsigned char) *s)) {
      s++;
   }
   end = s + strlen(s);
   while (end > s && isspace((unsigned char) end[-1])) {
      *--end = '\0';
   }
   return s;
}

/* Turns the text after '=' into the value, in place: a quoted value ("..." with \" \\ \n
 * \t escapes, or '...' verbatim) may be followed by a comment; an unquoted one ends at a
 * '#' that follows whitespace. Returns NULL with *why set on a malformed value. */
static char *
parse_value(char *s, const char **why)
{
   char *out;
   char *p;
   char quote;

   s = trim(s);
   if (*s != '"' && *s != '\'') {
      for (p = s; *p; p++) {
         if (*p == '#' && (p == s || isspace((unsigned char) p[-1]))) {
            *p = '\0';
            break;
         }
      }
      return trim(s);
   }
   quote = *s;
   out = s;
   p = s + 1;
   while (*p && *p != quote) {
      if (quote == '"' && *p == '\\') {
         p++;
         switch (*p) {
         case '"':
         case '\\':
            *out++ = *p;
            break;
         case 'n':
            *out++ = '\n';
            break;
         case 't':
            *out++ = '\t';
            break;
         default:
            *why = "unknown escape in quoted value";
            return NULL;
         }
         p++;
      } else {
         *out++ = *p++;
      }
   }
   if (*p != quote) {
      *why = "unterminated quoted value";
      return NULL;
   }
   p++;
   while (isspace((unsigned char) *p)) {
      p++;
   }
   if (*p != '\0' && *p != '#') {
      *why = "text after the closing quote";
      return NULL;
   }
   *out = '\0';
   return s;
}

static bool
load_file(flora_config_t *config, const char *file, flora_error_t *error)
{
   FILE *f = fopen(file, "r");
   char *line = NULL;
   size_t cap = 0;
   ssize_t n;
   unsigned lineno = 0;
   bool ok = false;

   if (!f) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_NOT_FOUND, "%s: %s", file,
                      strerror(errno));
      return false;
   }
   while ((n = getline(&line, &cap, f)) >= 0) {
      char source[160];
      char *s;
      char *eq;
      char *key;
      char *value;
      const char *why = NULL;
      size_t index = 0;
      const key_def_t *def;

      lineno++;
      snprintf(source, sizeof source, "%s:%u", file, lineno);
      if ((size_t) n != strlen(line)) {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID, "%s: NUL byte in line",
                         source);
         goto cleanup;
      }
      s = trim(line);
      if (*s == '\0' || *s == '#') {
         continue;
      }
      eq = strchr(s, '=');
      if (!eq) {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                         "%s: expected 'key = value'", source);
         goto cleanup;
      }
      *eq = '\0';
      key = trim(s);
      def = find_key(key, &index);
      if (!def) {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID, "%s: unknown key '%s'",
                         source, key);
         goto cleanup;
      }
      value = parse_value(eq + 1, &why);
      if (!value) {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID, "%s: %s: %s", source, key,
                         why);
         goto cleanup;
      }
      if (!set_value(&config->values[index], def, value, source, error)) {
         goto cleanup;
      }
   }
   if (ferror(f)) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_SYSTEM, "%s: read error", file);
      goto cleanup;
   }
   ok = true;
cleanup:
   free(line);
   fclose(f);
   return ok;
}

/* Rules that involve more than one key. */
static bool
check_consistency(const flora_config_t *config, flora_error_t *error)
{
   size_t d = 0;
   size_t m = 0;

   find_key("catalog.page_size_default", &d);
   find_key("catalog.page_size_max", &m);
   if (config->values[d].i > config->values[m].i) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "%s: catalog.page_size_default (%" PRId64
                      ") is larger than catalog.page_size_max (%" PRId64 ", %s)",
                      config->values[d].source, config->values[d].i, config->values[m].i,
                      config->values[m].source);
      return false;
   }
   find_key("shop.currency", &d);
   for (const char *p = config->values[d].str; *p; p++) {
      if (*p < 'A' || *p > 'Z') {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                         "%s: shop.currency: '%s' is not an ISO 4217 code (three capitals)",
                         config->values[d].source, config->values[d].str);
         return false;
      }
   }
   /* An IANA zone name ("Europe/Moscow", "Etc/GMT+3"): names a file under the zoneinfo
    * directory, so no "..", no leading '/', and only the characters such names use. */
   find_key("shop.timezone", &d);
   {
      const char *tz = config->values[d].str;

      if (tz[0] == '/' || strstr(tz, "..") ||
          strspn(tz, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
             strlen(tz)) {
         flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                         "%s: shop.timezone: '%s' is not an IANA time zone name",
                         config->values[d].source, tz);
         return false;
      }
   }
   return true;
}

bool
flora_config_load(flora_config_t **out, const char *file, flora_error_t *error)
{
   flora_config_t *config = NULL;
   bool ok = false;

   FLORA_ASSERT_ARG(out);
   *out = NULL;
   config = calloc(1, sizeof *config);
   if (!config) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_SYSTEM, "out of memory");
      goto cleanup;
   }
   for (size_t i = 0; i < N_KEYS; i++) {
      if (!set_value(&config->values[i], &keys[i], keys[i].def, "default", error)) {
         goto cleanup;
      }
   }
   if (file && !load_file(config, file, error)) {
      goto cleanup;
   }
   for (size_t i = 0; i < N_KEYS; i++) {
      const char *env = getenv(keys[i].env);
      char source[160];

      if (!env) {
         continue;
      }
      snprintf(source, sizeof source, "env %s", keys[i].env);
      if (!set_value(&config->values[i], &keys[i], env, source, error)) {
         goto cleanup;
      }
   }
   if (!check_consistency(config, error)) {
      goto cleanup;
   }
   *out = config;
   config = NULL;
   ok = true;
cleanup:
   flora_config_destroy(config);
   return ok;
}

bool
flora_config_set(flora_config_t *config, const char *key, const char *value, const char *source,
                 flora_error_t *error)
{
   size_t index = 0;
   const key_def_t *def;
   value_t saved;
   bool ok;

   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(key);
   FLORA_ASSERT_ARG(value);
   def = find_key(key, &index);
   if (!def) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_NOT_FOUND, "%s: unknown key '%s'",
                      source ? source : "set", key);
      return false;
   }
   saved = config->values[index];
   saved.str = strdup(saved.str);
   if (!saved.str) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_SYSTEM, "out of memory");
      return false;
   }
   ok = set_value(&config->values[index], def, value, source ? source : "set", error) &&
        check_consistency(config, error);
   if (!ok) {
      /* Put the previous value back: a rejected value leaves the configuration as it was. */
      free(config->values[index].str);
      config->values[index] = saved;
      return false;
   }
   free(saved.str);
   return true;
}

bool
flora_config_copy(flora_config_t **out, const flora_config_t *config, flora_error_t *error)
{
   flora_config_t *copy = NULL;

   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(config);
   *out = NULL;
   copy = calloc(1, sizeof *copy);
   if (!copy) {
      goto oom;
   }
   for (size_t i = 0; i < N_KEYS; i++) {
      copy->values[i] = config->values[i];
      copy->values[i].str = strdup(config->values[i].str);
      if (!copy->values[i].str) {
         goto oom;
      }
   }
   *out = copy;
   return true;
oom:
   flora_config_destroy(copy);
   flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_SYSTEM, "out of memory");
   return false;
}

void
flora_config_destroy(flora_config_t *config)
{
   if (!config) {
      return;
   }
   for (size_t i = 0; i < N_KEYS; i++) {
      free(config->values[i].str);
   }
   free(config);
}

static const value_t *
get(const flora_config_t *config, const char *key, key_type_t type)
{
   size_t index = 0;
   const key_def_t *def;

   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(key);
   def = find_key(key, &index);
   FLORA_ASSERT_ARG(def != NULL);
   FLORA_ASSERT_ARG(def->type == type);
   return &config->values[index];
}

const char *
flora_config_string(const flora_config_t *config, const char *key)
{
   return get(config, key, TYPE_STRING)->str;
}

int64_t
flora_config_int(const flora_config_t *config, const char *key)
{
   return get(config, key, TYPE_INT)->i;
}

bool
flora_config_bool(const flora_config_t *config, const char *key)
{
   return get(config, key, TYPE_BOOL)->b;
}

/* Writes s as a double-quoted value the file parser reads back. */
static void
print_quoted(FILE *out, const char *s)
{
   fputc('"', out);
   for (; *s; s++) {
      switch (*s) {
      case '"':
         fputs("\\\"", out);
         break;
      case '\\':
         fputs("\\\\", out);
         break;
      case '\n':
         fputs("\\n", out);
         break;
      case '\t':
         fputs("\\t", out);
         break;
      default:
         fputc(*s, out);
      }
   }
   fputc('"', out);
}

/* Prints a string value quoted, with the password of a "scheme://user:password@host" URI
 * replaced by "***". */
static void
print_uri_masked(FILE *out, const char *s)
{
   const char *scheme_end = strstr(s, "://");
   const char *authority = scheme_end ? scheme_end + 3 : NULL;
   const char *at = NULL;
   const char *colon = NULL;
   char *masked = NULL;

   if (authority) {
      /* userinfo ends at the last '@' of the authority (which ends at '/', '?' or '#'). */
      size_t len = strcspn(authority, "/?#");

      for (size_t i = 0; i < len; i++) {
         if (authority[i] == '@') {
            at = authority + i;
         }
      }
   }
   if (at) {
      colon = memchr(authority, ':', (size_t) (at - authority));
   }
   if (!colon) {
      print_quoted(out, s);
      return;
   }
   if (asprintf(&masked, "%.*s***%s", (int) (colon + 1 - s), s, at) < 0) {
      print_quoted(out, "***");
      return;
   }
   print_quoted(out, masked);
   free(masked);
}

static void
print_value(FILE *out, const key_def_t *def, const char *text)
{
   if (def->type == TYPE_STRING) {
      print_quoted(out, text);
   } else {
      fputs(text, out);
   }
}

void
flora_config_print(const flora_config_t *config, FILE *out)
{
   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(out);
   for (size_t i = 0; i < N_KEYS; i++) {
      const value_t *v = &config->values[i];

      fprintf(out, "%s = ", keys[i].name);
      if (keys[i].secret) {
         print_quoted(out, v->str[0] ? "***" : "");
      } else if (keys[i].type == TYPE_STRING) {
         print_uri_masked(out, v->str);
      } else {
         print_value(out, &keys[i], v->str);
      }
      fprintf(out, "  # %s\n", v->source);
   }
}

void
flora_config_print_example(FILE *out)
{
   FLORA_ASSERT_ARG(out);
   fputs("# Flora configuration (generated by `flora config --example`; do not edit by hand).\n"
         "#\n"
         "# Format: `key = value` lines; `#` starts a comment; values may be quoted with \"...\"\n"
         "# (escapes \\\" \\\\ \\n \\t) or '...'. Precedence, lowest first: these defaults, the file\n"
         "# given by --config or FLORA_CONFIG, then the environment variable named for each key.\n"
         "# Every value below is the default.\n",
         out);
   for (size_t i = 0; i < N_KEYS; i++) {
      const key_def_t *def = &keys[i];

      fprintf(out, "\n# %s\n# ", def->help);
      switch (def->type) {
      case TYPE_INT:
         fprintf(out, "integer %" PRId64 "..%" PRId64, def->min, def->max);
         break;
      case TYPE_BOOL:
         fputs("boolean", out);
         break;
      case TYPE_STRING:
         if (def->allowed) {
            fprintf(out, "one of %s", def->allowed);
         } else {
            fputs("string", out);
         }
         break;
      }
      fprintf(out, "%s; environment: %s\n", def->secret ? ", secret" : "", def->env);
      fprintf(out, "%s = ", def->name);
      print_value(out, def, def->def);
      fputc('\n', out);
   }
}
