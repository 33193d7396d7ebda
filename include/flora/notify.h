/* Notifications: the worker that delivers the outbox (include/flora/outbox.h), the
 * templates, e-mail over SMTP and SMS through SMS.ru or Twilio. docs/notifications.md
 * describes the delivery guarantees (at-least-once; exactly once where a provider
 * deduplicates) and the configuration keys (notify.*). */
#ifndef FLORA_NOTIFY_H
#define FLORA_NOTIFY_H

#include <bson/bson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flora/config.h"
#include "flora/error.h"
#include "flora/outbox.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- money and templates ----------------------------------------------------------- */

/* Formats minor units as the shop shows money: "2 500,00 ₽" for 250000 kopecks RUB. The
 * thousands separator is U+00A0 NO-BREAK SPACE (so a total never wraps), the decimal
 * separator a comma, and the currency sign follows after another U+00A0 (₽ for RUB, $ USD,
 * € EUR, else the ISO code). Negative amounts get a leading "-". Writes into out[out_len]
 * (64 bytes suffice); false when it does not fit. */
bool flora_notify_format_money(int64_t minor, const char *currency, char *out, size_t out_len);

/* Renders a template: {{name}} substitutes a variable, {{#each name}}...{{/each}} repeats
 * its body for every element of an array (inside, names resolve in the element first,
 * then outside), {{#if name}}...{{else}}...{{/if}} tests a variable (true, a non-empty
 * string or array, a non-zero number). Values are strings, integers or booleans. With
 * html true every substituted value is HTML-escaped (& < > " '); the template text itself
 * is not. A variable that is not in vars, an unclosed or unknown tag is an error
 * (VALIDATION, naming the variable or tag): templates are checked by a test that renders
 * every one (tests/unit/test_notify_templates.c). *out is malloc'd, freed by the caller;
 * NULL on failure. */
bool flora_notify_render_template(const char *tmpl, const bson_t *vars, bool html, char **out,
                                  flora_error_t *error);

/* The variables of an event's templates, built from the outbox payload and, for order
 * events, the order document (include/flora/orders.h's shape; may be NULL for the other
 * events): shopName, number, status, statusLabel, customerName, items [{name, variant,
 * quantity, unitPrice, lineTotal}], subtotal, discount, hasDiscount, deliveryPrice, total
 * (formatted money), deliveryDate ("14.02.2026" ru, "14 Feb 2026" en), deliverySlot
 * ("09:00–12:00" or "14:30"), recipientName, recipientPhone, address, cardMessage,
 * hasCardMessage; for user.password_reset resetUrl and name; for review.approved
 * productName and name. *vars is initialised by the callee. Errors: VALIDATION when a
 * field the event needs is missing from the order or payload. */
bool flora_notify_build_vars(const char *event, const char *locale, const char *shop_name,
                             const bson_t *payload, const bson_t *order, bson_t *vars,
                             flora_error_t *error);

typedef struct flora_notify_rendered {
   char *subject; /* e-mail subject (plain text) */
   char *text;    /* e-mail plain-text body */
   char *html;    /* e-mail HTML body (values escaped) */
   char *sms;     /* SMS text, or NULL when the event sends no SMS */
} flora_notify_rendered_t;

/* Renders every part of event in locale ("ru" or "en") with vars. out is filled with
 * malloc'd strings (flora_notify_rendered_clear frees them, also after a failure).
 * Errors: VALIDATION for an unknown event or locale or a template error. */
bool flora_notify_render(const char *event, const char *locale, const bson_t *vars,
                         flora_notify_rendered_t *out, flora_error_t *error);
void flora_notify_rendered_clear(flora_notify_rendered_t *rendered);

/* ---- e-mail ------------------------------------------------------------------------ */

typedef struct flora_email {
   const char *to;         /* normalised address */
   const char *to_name;    /* display name or NULL */
   const char *subject;    /* UTF-8 */
   const char *text;       /* UTF-8 plain-text body */
   const char *html;       /* UTF-8 HTML body */
   const char *message_id; /* "<local@domain>" (RFC 5322 section 3.6.4), stable across retries */
} flora_email_t;

/* Encodes a UTF-8 header value as RFC 2047 "B" encoded-words (=?UTF-8?B?...?=), each at
 * most 75 characters and split only between whole characters (RFC 2047 section 5), joined
 * by CRLF SP (folding); pure ASCII printable text is returned as it is. *out is
 * malloc'd; false only when out of memory. */
bool flora_email_encode_words(const char *utf8, char **out);

/* The Date header value for ms since the epoch (RFC 5322 section 3.3), in UTC:
 * "Mon, 30 Nov 2026 17:07:21 +0000". out needs 32 bytes. */
void flora_email_date(int64_t ms, char *out, size_t out_len);

/* Sends one e-mail over SMTP with libcurl (config notify.smtp_url, smtp_tls: starttls =
 * CURLUSESSL_ALL, smtps = implicit TLS with an smtps:// URL, none = plain, for a relay on
 * loopback only; smtp_user and smtp_password for AUTH; from_address and from_name). The
 * message is MIME (RFC 2045-2047, built with curl_mime_*): multipart/alternative of
 * text/plain and text/html, UTF-8, quoted-printable; Subject and display names as RFC 2047
 * encoded-words; Date and Message-ID headers. Errors: PROVIDER domain, code UNAVAILABLE
 * for connection and 4xx SMTP replies or timeouts (retry), INVALID for a refused
 * recipient or sender (5xx: permanent), CONFIG when SMTP is not configured. */
bool flora_email_send(const flora_config_t *config, const flora_email_t *email,
                      flora_error_t *error);

/* ---- SMS --------------------------------------------------------------------------- */

typedef struct flora_sms_segments {
   bool gsm7;       /* GSM 03.38 default alphabet (with its extension table) */
   size_t units;    /* septets (extension characters count 2) or UTF-16 code units */
   size_t segments; /* GSM-7: 1 up to 160, else ceil(units / 153); UCS-2: 70, else 67 each */
} flora_sms_segments_t;

/* Counts the segments of a UTF-8 text (3GPP TS 23.038 section 6.2.1 basic character set
 * and extension table; TS 23.040 concatenation headers leave 153 septets / 67 UCS-2
 * characters per part). Errors: INPUT for invalid UTF-8. An empty text is 0 segments. */
bool flora_sms_count_segments(const char *utf8, flora_sms_segments_t *out, flora_error_t *error);

/* Sends one SMS through the configured provider (notify.sms_provider): "smsru" (SMS.ru
 * HTTP API, POST {smsru_url}/sms/send with api_id, to, msg, json=1; https://sms.ru/api/send)
 * or "twilio" (POST {twilio_url}/2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP
 * Basic auth AccountSid:AuthToken and form fields To, From, Body;
 * https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource).
 * to is E.164. The provider's message id is written into provider_id[provider_id_len].
 * Neither provider documents an idempotency key for sending, so a retry after a lost
 * reply may send twice (docs/notifications.md). Errors: PROVIDER domain, UNAVAILABLE for
 * network errors, 5xx and 429 (retry), INVALID for a refusal (permanent), CONFIG when no
 * provider is configured. */
bool flora_sms_send(const flora_config_t *config, const char *to, const char *text,
                    char *provider_id, size_t provider_id_len, flora_error_t *error);

/* Whether now_ms falls in the quiet hours (notify.quiet_hours_start to quiet_hours_end,
 * whole hours in shop.timezone, computed with ICU's ucal; equal hours switch them off).
 * *ends_at_ms receives when they end (or now_ms when not quiet). Errors: CONFIG for an
 * unknown time zone. */
bool flora_sms_quiet_hours(const flora_config_t *config, int64_t now_ms, bool *quiet,
                           int64_t *ends_at_ms, flora_error_t *error);

/* Takes one SMS from phone's budget (notify.sms_rate_limit per notify.sms_rate_window_s,
 * fixed windows in the sms_rate_limits collection) with conditional updates only: $inc in
 * the current window under the limit, or starting a new window over an old one. *allowed
 * false when the budget is spent; *retry_at_ms is then the window's end. */
bool flora_sms_rate_take(flora_store_t *store, const flora_config_t *config, const char *phone,
                         int64_t now_ms, bool *allowed, int64_t *retry_at_ms, flora_error_t *error);

/* ---- the worker -------------------------------------------------------------------- */

typedef struct flora_notify_worker flora_notify_worker_t;

/* A worker over store with config's notify.* settings; its lease owner id is
 * "<hostname>:<pid>:<random>". *out is owned by the caller (flora_notify_worker_destroy;
 * NULL is a no-op). store and config are borrowed and must outlive it. */
bool flora_notify_worker_new(flora_notify_worker_t **out, flora_store_t *store,
                             const flora_config_t *config, flora_error_t *error);
void flora_notify_worker_destroy(flora_notify_worker_t *worker);

/* Claims due messages one at a time, each with one findAndModify ({status: pending|failed,
 * nextAttemptAt <= now} or {status: sending, leaseExpiresAt <= now}: a crashed worker's
 * lease is reclaimed), and delivers each, up to notify.batch_size messages. Each delivery
 * is marked sent as soon as its provider accepted it; a failed one is retried with
 * exponential backoff and equal jitter (notify.retry_base_ms doubling up to retry_max_ms)
 * until notify.max_attempts, then the message is dead. Permanent failures (a template
 * error, a refused recipient) make it dead at once. SMS of events that can wait
 * (order.status_changed, order.delivered, review.approved) are held during quiet hours.
 * stop (may be NULL) is checked between messages. *n_claimed (may be NULL) receives the
 * number of messages claimed. Errors: STORE errors of the claim. */
bool flora_notify_worker_run_once(flora_notify_worker_t *worker, const atomic_bool *stop,
                                  size_t *n_claimed, flora_error_t *error);

/* Runs batches until *stop becomes true, sleeping notify.poll_interval_ms when nothing is
 * due. The message in hand is finished before it returns (sending is bounded by the
 * providers' timeouts, well under the lease). Store errors are logged and retried. */
void flora_notify_worker_run(flora_notify_worker_t *worker, const atomic_bool *stop);

/* ---- operations -------------------------------------------------------------------- */

/* One page of outbox messages, newest first: *out = {items: [...], page, pageSize, total}.
 * status may be NULL (all) or one of pending, sending, sent, failed, dead. page from 1.
 * *out is initialised by the callee. */
bool flora_notify_list(flora_store_t *store, const char *status, int64_t page, int64_t page_size,
                       bson_t *out, flora_error_t *error);

/* Puts a failed or dead message back in the queue, due now with its attempts reset; its
 * deliveries already sent stay sent. *out (may be NULL) receives the message after the
 * change. Errors: SHOP NOT_FOUND; SHOP CONFLICT when it is pending, sending or sent. */
bool flora_notify_resend(flora_store_t *store, const bson_oid_t *id, bson_t *out,
                         flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
