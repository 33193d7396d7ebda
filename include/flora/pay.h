/* Payments: one provider interface with Stripe, PayPal and YooKassa behind it, money
 * conversion at the edge, the `payments` and `webhook_events` collections, verified
 * exactly-once webhooks, retries with idempotency keys, and reconciliation after a crash.
 * DESIGN.md sections 3 and 4; docs/payments.md for the client flows.
 *
 * Money inside Flora is int64 minor units (kopecks for RUB) plus an ISO 4217 code. Stripe
 * takes integer minor units and a lowercase code; PayPal and YooKassa take decimal strings
 * ("2500.00"). Conversion is exact: a value with more fraction digits than the currency
 * has, or a currency other than the one expected, is an error, never rounded.
 *
 * Idempotency: every provider call carries a key derived from our own ids
 * ("<payment id>:<operation>:<amount>"), sent as Stripe's Idempotency-Key, PayPal's
 * PayPal-Request-Id or YooKassa's Idempotence-Key, and the same on every retry, so a retry
 * (ours, or `flora payments reconcile` after a crash) can never charge twice.
 *
 * Errors: PROVIDER domain for what a provider answered or a network failure (code
 * FLORA_ERR_UNAVAILABLE when it could not be reached or answered 5xx, FLORA_ERR_INVALID
 * when it refused the request, FLORA_ERR_UNAUTHORIZED for a bad key or a webhook that
 * fails verification); SHOP domain for business rules (NOT_FOUND, CONFLICT: e.g. a refund
 * above what was captured, a capture of a payment that is not authorised); INPUT for a
 * malformed amount or webhook body; CONFIG when a provider is not configured. */
#ifndef FLORA_PAY_H
#define FLORA_PAY_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flora/config.h"
#include "flora/error.h"
#include "flora/schema.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- money at the edge (lib/pay/money.c) ----------------------------------------- */

/* The number of minor-unit digits of an ISO 4217 currency (RUB, USD, EUR: 2; JPY, KRW: 0;
 * KWD, BHD: 3), or -1 for a code not in Flora's table. Source: ISO 4217 list one (SIX
 * Financial Information), Stripe "Supported currencies" (zero-decimal list). The code is
 * case-insensitive. */
int flora_money_exponent(const char *currency);

/* Writes minor units as the currency's decimal string ("2500.00" for 250000 RUB, "1500"
 * for 1500 JPY, "-0.01" for -1) into out[out_len]. Errors: INPUT for an unknown currency
 * or when out is too small. */
bool flora_money_format(int64_t minor, const char *currency, char *out, size_t out_len,
                        flora_error_t *error);

/* Parses a provider's decimal string into minor units of `currency`, strictly: an
 * optional '-', digits, and an optional '.' followed by 1..exponent digits ("2500",
 * "2500.5", "2500.50"); no exponent, spaces, '+' or grouping; "10.005" in RUB is an
 * error (no rounding), as is an overflow. When expected_currency is not NULL, `currency`
 * must equal it (case-insensitive), else INPUT error "currency mismatch". */
bool flora_money_parse(const char *text, const char *currency, const char *expected_currency,
                       int64_t *minor, flora_error_t *error);

/* Stripe's integer amount for minor units (Stripe "Currencies: minor units"): the same
 * integer, checked non-negative and within Stripe's 8-digit limit (99999999); writes the
 * lowercase code into stripe_currency[4]. Errors: INPUT. */
bool flora_money_to_stripe(int64_t minor, const char *currency, int64_t *amount,
                           char stripe_currency[4], flora_error_t *error);

/* Minor units from Stripe's (amount, lowercase currency), checked against
 * expected_currency (may be NULL). Errors: INPUT (unknown currency, negative, mismatch). */
bool flora_money_from_stripe(int64_t amount, const char *stripe_currency,
                             const char *expected_currency, int64_t *minor,
                             flora_error_t *error);

/* ---- webhook verification (lib/pay/verify.c) ------------------------------------- */

/* Verifies a Stripe-Signature header ("t=<unix>,v1=<hex>[,v1=<hex>...]", other schemes
 * ignored) over the raw body: HMAC-SHA256 keyed with the whole endpoint secret
 * ("whsec_...") of "<t>.<body>", compared in constant time with every v1 (any may match),
 * and |now_s - t| <= tolerance_s (300 by default in Stripe's libraries). Source:
 * stripe-python stripe/_webhook.py, stripe-go webhook/client.go; Stripe docs "Check the
 * webhook signatures". Errors: PROVIDER/UNAUTHORIZED naming the reason (malformed header,
 * no v1, stale timestamp, no signature matches). *t_out (may be NULL) gets t. */
bool flora_pay_stripe_verify(const char *header, const char *body, size_t body_len,
                             const char *secret, int64_t now_s, int64_t tolerance_s,
                             int64_t *t_out, flora_error_t *error);

/* The payload PayPal signs for a webhook:
 * "<transmission_id>|<transmission_time>|<webhook_id>|<crc32 of body, unsigned decimal>"
 * (PayPal-Java-SDK Event.java validateReceivedEvent). Caller frees the result with
 * bson_free. */
char *flora_pay_paypal_signed_payload(const char *transmission_id, const char *transmission_time,
                                      const char *webhook_id, const char *body, size_t body_len);

/* Verifies PayPal's offline webhook signature: the base64 PAYPAL-TRANSMISSION-SIG is a
 * SHA256withRSA signature (PAYPAL-AUTH-ALGO "SHA256withRSA") of the signed payload above,
 * checked with the public key of the PEM certificate cert_pem (downloaded from
 * PAYPAL-CERT-URL), which must be valid now. Source: PayPal-Java-SDK SSLUtil.java and
 * Event.java. Errors: PROVIDER/UNAUTHORIZED. */
bool flora_pay_paypal_verify(const char *transmission_id, const char *transmission_time,
                             const char *webhook_id, const char *auth_algo,
                             const char *signature_b64, const char *cert_pem, size_t cert_len,
                             const char *body, size_t body_len, flora_error_t *error);

/* True when cert_url is an https URL (or, for a loopback api_base in tests, the same
 * scheme) on exactly the host and port of api_base, so a forged webhook cannot make us
 * fetch a certificate of its choosing. */
bool flora_pay_paypal_cert_url_allowed(const char *cert_url, const char *api_base);

/* Is the numeric IPv4 or IPv6 address ip inside one of the comma- or space-separated
 * ranges ("185.71.76.0/27, 77.75.156.11, 2a02:5180::/32"; an address without a prefix
 * is a single host)? IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are compared as IPv4.
 * Errors: INPUT for a malformed address or range. */
bool flora_pay_ip_allowed(const char *ip, const char *ranges, bool *allowed,
                          flora_error_t *error);

/* ---- retries (lib/pay/retry.c) --------------------------------------------------- */

/* Sleeps ms milliseconds (injectable for tests). */
typedef void (*flora_pay_sleep_fn)(void *ctx, int64_t ms);

typedef struct flora_pay_retry {
   int version;         /* FLORA_PAY_RETRY_VERSION */
   int max_retries;     /* retries after the first try (Stripe's SDKs: 2) */
   int64_t initial_ms;  /* first backoff (500) */
   int64_t max_ms;      /* cap (5000) */
   flora_pay_sleep_fn sleep; /* NULL: nanosleep */
   void *sleep_ctx;
} flora_pay_retry_t;

#define FLORA_PAY_RETRY_VERSION 1
#define FLORA_PAY_RETRY_INIT {FLORA_PAY_RETRY_VERSION, 2, 500, 5000, NULL, NULL}

/* Should a call be tried again? network_error: no HTTP answer at all (connect failure,
 * timeout, reset). should_retry: the Stripe-Should-Retry header or NULL; "true" forces a
 * retry and "false" forbids one whatever the status. Otherwise: 409 and >= 500 retry,
 * every other status does not (not 429 either, as Stripe's SDKs). Source: stripe-python
 * _http_client.py _should_retry; DESIGN.md section 4. */
bool flora_pay_retry_should(bool network_error, long status, const char *should_retry);

/* The wait before retry number n (1-based): min(initial * 2^(n-1), max) scaled by a
 * jitter factor in [0.5, 1.0] (jitter01 in [0, 1) picks it), never below initial/2.
 * Source: stripe-python _http_client.py _sleep_time_seconds. */
int64_t flora_pay_retry_delay_ms(const flora_pay_retry_t *retry, int n, double jitter01);

/* ---- the provider interface ------------------------------------------------------ */

typedef struct flora_pay flora_pay_t;

/* What a provider call reports, normalised. Strings are owned by the struct; free with
 * flora_pay_result_cleanup (which accepts a zeroed struct). */
typedef struct flora_pay_result {
   char *provider_payment_id; /* pi_..., PayPal order id, YooKassa payment id */
   char *status;              /* one of Flora's payment statuses (flora_pay_statuses) */
   char *currency;            /* ISO 4217, upper case */
   int64_t amount;            /* the payment's amount, minor units */
   int64_t amount_authorized; /* minor units the provider holds or has taken */
   int64_t amount_captured;   /* minor units taken */
   int64_t amount_refunded;   /* minor units refunded (-1: the answer does not say) */
   char *capture_id;          /* PayPal capture id when captured, else NULL */
   char *refund_id;           /* set by refund calls */
   bson_t client;             /* what the storefront needs: {clientSecret} | {approveUrl} |
                               * {confirmationUrl}, empty when none */
} flora_pay_result_t;

void flora_pay_result_cleanup(flora_pay_result_t *result);

/* What the provider needs to create a payment for an order. Borrowed. */
typedef struct flora_pay_create {
   const char *payment_id;      /* our payments._id (hex), sent as metadata */
   const char *order_number;    /* "FL-2026-000123" */
   const bson_t *order;         /* the order document (contract in docs/payments.md) */
   int64_t amount;              /* minor units */
   const char *currency;        /* ISO 4217 */
   const char *idempotency_key;
   const char *return_url;      /* where PayPal and YooKassa send the buyer back */
} flora_pay_create_t;

/* A verified, normalised webhook event. Owned; flora_pay_event_cleanup frees. */
typedef struct flora_pay_event {
   char *event_id;            /* unique per provider: evt_..., WH-..., or built for YooKassa */
   char *type;                /* the provider's event type */
   bool relevant;             /* false: a type Flora does not act on (stored, ignored) */
   flora_pay_result_t object; /* the payment as verified (re-read from the API where the
                               * provider's contract asks for it) */
} flora_pay_event_t;

void flora_pay_event_cleanup(flora_pay_event_t *event);

/* The raw webhook as it arrived. Borrowed. */
typedef struct flora_pay_webhook {
   const char *body;
   size_t body_len;
   const char *(*header)(void *ctx, const char *name); /* case-insensitive; NULL if absent */
   void *header_ctx;
   const char *peer_ip; /* numeric sender address */
   int64_t now_s;       /* current Unix time (injectable for tests) */
} flora_pay_webhook_t;

/* One payment gateway. Every function fills *result (zeroed by the caller) on success.
 * Providers live one per file (lib/pay/stripe.c, paypal.c, yookassa.c). */
typedef struct flora_pay_provider {
   const char *name; /* "stripe", "paypal", "yookassa" */
   /* Is it configured (keys present)? */
   bool (*configured)(const flora_config_t *config);
   bool (*create)(flora_pay_t *pay, const flora_pay_create_t *req, flora_pay_result_t *result,
                  flora_error_t *error);
   bool (*get)(flora_pay_t *pay, const char *provider_payment_id, const char *currency,
               flora_pay_result_t *result, flora_error_t *error);
   /* amount: minor units to capture (partial when below the authorised amount). */
   bool (*capture)(flora_pay_t *pay, const char *provider_payment_id, int64_t amount,
                   const char *currency, const char *idempotency_key,
                   flora_pay_result_t *result, flora_error_t *error);
   bool (*cancel)(flora_pay_t *pay, const char *provider_payment_id, const char *currency,
                  const char *idempotency_key, flora_pay_result_t *result, flora_error_t *error);
   /* payment: our payments document (provider ids, capture id). */
   bool (*refund)(flora_pay_t *pay, const bson_t *payment, int64_t amount, const char *currency,
                  const char *idempotency_key, flora_pay_result_t *result, flora_error_t *error);
   /* Verifies and parses a webhook. Verification failure: PROVIDER/UNAUTHORIZED; a body
    * that is not the provider's event: INPUT. */
   bool (*parse_webhook)(flora_pay_t *pay, const flora_pay_webhook_t *hook,
                         flora_pay_event_t *event, flora_error_t *error);
} flora_pay_provider_t;

extern const flora_pay_provider_t flora_pay_stripe;
extern const flora_pay_provider_t flora_pay_paypal;
extern const flora_pay_provider_t flora_pay_yookassa;

/* The provider by name, or NULL. */
const flora_pay_provider_t *flora_pay_provider(const char *name);

/* Flora's payment statuses, NULL-terminated, in rank order: created, pending,
 * requires_action, failed, authorized, canceled, captured, partially_refunded, refunded.
 * A status only ever moves to a higher rank (out-of-order events cannot move a payment
 * backwards). */
const char *const *flora_pay_statuses(void);
/* The rank of a status, or -1 for an unknown one. */
int flora_pay_status_rank(const char *status);

/* ---- orders (the contract of include/flora/orders.h, injected) ------------------- */

/* The order functions payments use, with the signatures of include/flora/orders.h. The
 * program passes flora_pay_orders_shop(); a test may pass its own. */
typedef struct flora_pay_orders {
   bool (*get)(flora_store_t *store, const bson_oid_t *order_id, bson_t *out, bool *found,
               flora_error_t *error);
   bool (*get_by_number)(flora_store_t *store, const char *number, bson_t *out, bool *found,
                         flora_error_t *error);
   bool (*transition)(flora_store_t *store, const bson_oid_t *order_id, const char *to_status,
                      const char *actor, const char *note, bson_t *out, flora_error_t *error);
   bool (*record_payment)(flora_store_t *store, const bson_oid_t *order_id,
                          const bson_t *payment, flora_error_t *error);
   /* flora_orders_note; may be NULL (the order's history then says nothing of automatic
    * refunds, the payment's own history still does). */
   bool (*note)(flora_store_t *store, const bson_oid_t *order_id, const char *actor,
                const char *note, flora_error_t *error);
} flora_pay_orders_t;

/* flora_orders_get, _get_by_number, _transition, _record_payment and _note
 * (lib/shop/orders.c).
 * Static data. */
const flora_pay_orders_t *flora_pay_orders_shop(void);

/* ---- the payments service (lib/pay/payments.c) ------------------------------------ */

typedef struct flora_pay_options {
   int version;              /* FLORA_PAY_OPTIONS_VERSION */
   flora_pay_retry_t retry;  /* backoff; max_retries and the timeouts come from config */
   int64_t (*now_s)(void);   /* NULL: time(NULL) */
} flora_pay_options_t;

#define FLORA_PAY_OPTIONS_VERSION 1
#define FLORA_PAY_OPTIONS_INIT {FLORA_PAY_OPTIONS_VERSION, FLORA_PAY_RETRY_INIT, NULL}

/* A payments service over store with the pay.* configuration keys. config, store and
 * orders are borrowed and must outlive it; options may be NULL. Thread-safe (PayPal's
 * OAuth token cache is behind a mutex). *out: flora_pay_destroy. */
bool flora_pay_new(flora_pay_t **out, flora_store_t *store, const flora_config_t *config,
                   const flora_pay_orders_t *orders, const flora_pay_options_t *options,
                   flora_error_t *error);
void flora_pay_destroy(flora_pay_t *pay);

const flora_config_t *flora_pay_config(const flora_pay_t *pay);

/* Starts a payment of the order (status pending_payment) with provider: records the
 * attempt, calls the provider with the attempt's idempotency key, records the answer.
 * *out (initialised by the callee): {paymentId, provider, status, amount, currency,
 * client: {...}}. A repeated call while an attempt with this provider and amount is open
 * answers that attempt (no second charge). Errors: INPUT (unknown provider), SHOP
 * NOT_FOUND (order), CONFLICT (order not awaiting payment), UNAVAILABLE (provider not
 * configured), PROVIDER (the provider refused or did not answer; with no answer the
 * attempt stays recorded for flora_pay_reconcile). */
bool flora_pay_create_payment(flora_pay_t *pay, const char *order_number, const char *provider,
                              bson_t *out, flora_error_t *error);

/* The payment attempts of an order, newest first, into *out (initialised by the callee)
 * as an array document of payments (providerRequests left out). SHOP NOT_FOUND for an
 * unknown order. */
bool flora_pay_list_payments(flora_pay_t *pay, const char *order_number, bson_t *out,
                             flora_error_t *error);

/* Captures amount (minor units; 0 = all authorised) of an authorised payment. SHOP
 * CONFLICT when not authorised, when amount exceeds the authorised amount, or while another
 * call on the payment is unanswered (nothing is sent then). *out (initialised by the
 * callee): the payment after. The call is recorded before it is made (pending, with the
 * key "<id>:capture:<amount>") and cleared with the answer. */
bool flora_pay_capture(flora_pay_t *pay, const bson_oid_t *payment_id, int64_t amount,
                       bson_t *out, flora_error_t *error);

/* Cancels (voids) a payment that is not captured. */
bool flora_pay_cancel(flora_pay_t *pay, const bson_oid_t *payment_id, bson_t *out,
                      flora_error_t *error);

/* Refunds amount (0 = the rest) of a captured payment. SHOP CONFLICT, and nothing sent,
 * when amount exceeds captured minus already refunded. A full refund moves the order to
 * "refunded". Key: "<id>:refund:<refunded before>:<amount>". */
bool flora_pay_refund(flora_pay_t *pay, const bson_oid_t *payment_id, int64_t amount,
                      bson_t *out, flora_error_t *error);

/* Gives back the money of an order that is cancelled or refunded (docs/orders.md: "a
 * cancelled paid order is refunded by the payments module"): for each payment of the order,
 * a captured one is refunded by captured minus refunded, an authorised one is voided.
 * Each call goes through the same path as flora_pay_refund / flora_pay_cancel: recorded on
 * the payment before it is made (one conditional update on the payment's status, amounts
 * and no call in flight, so of concurrent callers only one sends anything), with the key
 * "<payment id>:refund:<refunded before>:<amount>" ("<payment id>:cancel"), so a retry is
 * the same request to the gateway and never refunds twice. Every outcome is noted on the
 * order's statusHistory (orders->note). A payment with a call in flight is left to
 * flora_pay_reconcile; an order in any other status is left alone (true). A refund the
 * gateway refused or did not answer stays on the payment (pending, or the error in its
 * providerRequests) and flora_pay_reconcile retries it. *refunds (may be NULL) counts the
 * calls that succeeded. Errors: SHOP NOT_FOUND (order); the first gateway or store error
 * after every payment was tried. The program calls it after a status change to cancelled
 * or refunded commits, and flora_pay_handle_webhook / flora_pay_reconcile call it when a
 * payment is authorised or captured for an order already cancelled. */
bool flora_pay_settle_order(flora_pay_t *pay, const bson_oid_t *order_id, size_t *refunds,
                            flora_error_t *error);

/* The outcome of a webhook delivery. */
typedef enum flora_pay_webhook_outcome {
   FLORA_PAY_WEBHOOK_APPLIED = 0, /* verified, stored, applied */
   FLORA_PAY_WEBHOOK_DUPLICATE,   /* this event id was stored before: nothing done again */
   FLORA_PAY_WEBHOOK_IGNORED,     /* verified, stored, a type or payment Flora ignores */
   FLORA_PAY_WEBHOOK_REJECTED,    /* verified, stored as rejected (amount/currency
                                   * mismatch): no state change, logged */
} flora_pay_webhook_outcome_t;

/* Verifies a webhook with the provider's rule, stores it in webhook_events under the
 * unique key "<provider>:<event id>" and applies it to the payment (and the order) in the same
 * transaction, exactly once. Unverifiable: PROVIDER/UNAUTHORIZED (HTTP 400), nothing
 * stored; malformed: INPUT (400). */
bool flora_pay_handle_webhook(flora_pay_t *pay, const char *provider,
                              const flora_pay_webhook_t *hook,
                              flora_pay_webhook_outcome_t *outcome, flora_error_t *error);

/* Re-reads every unfinished payment (a call recorded but not answered, or a status below
 * captured that is not final) from its provider and repairs local state and the order;
 * a create that never got an answer is repeated with its recorded idempotency key. Then
 * settles (flora_pay_settle_order) every cancelled or refunded order whose payment summary
 * is still authorized, captured or partially_refunded: the safety net for a crash between
 * a cancellation and its refund, and for refunds the gateway refused.
 * *checked and *repaired (may be NULL) count payments. */
bool flora_pay_reconcile(flora_pay_t *pay, size_t *checked, size_t *repaired,
                         flora_error_t *error);

/* The payment document by id (providerRequests left out). SHOP NOT_FOUND. */
bool flora_pay_get_payment(flora_pay_t *pay, const bson_oid_t *payment_id, bson_t *out,
                           flora_error_t *error);

/* The schemas flora_schema_payments and flora_schema_webhook_events
 * (lib/pay/pay_schema.c) are declared in include/flora/shop.h with the other collections. */

#ifdef __cplusplus
}
#endif
#endif
