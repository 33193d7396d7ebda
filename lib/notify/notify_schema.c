/* Schemas of the notification collections: the transactional outbox (include/flora/outbox.h)
 * with its embedded channel deliveries, and the per-number SMS rate limit windows. */
#include "flora/outbox.h"
#include "flora/shop.h"

static const char *const outbox_statuses[] = {"pending", "sending", "sent", "failed", "dead", NULL};
static const char *const delivery_statuses[] = {"pending", "sent", "failed", NULL};
static const char *const locales[] = {"ru", "en", NULL};
static const char *const channels[] = {"email", "sms", NULL};
static const char *const events[] = {
   FLORA_EVENT_ORDER_CREATED,   FLORA_EVENT_ORDER_PAID,          FLORA_EVENT_ORDER_STATUS_CHANGED,
   FLORA_EVENT_ORDER_DELIVERED, FLORA_EVENT_USER_PASSWORD_RESET, FLORA_EVENT_REVIEW_APPROVED,
   NULL,
};

static const flora_field_t delivery_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "channel", .types = FLORA_T_STRING, .required = true,
    .enum_values = channels, .description = "email or sms"},
   {FLORA_FIELD_DEFAULTS, .path = "to", .types = FLORA_T_STRING, .required = true,
    .minlength = 3, .maxlength = 254,
    .description = "normalised e-mail address or E.164 phone number"},
   {FLORA_FIELD_DEFAULTS, .path = "status", .types = FLORA_T_STRING, .required = true,
    .enum_values = delivery_statuses,
    .description = "pending until the provider accepted it (sent); failed after a refused attempt"},
   {FLORA_FIELD_DEFAULTS, .path = "attempts", .types = FLORA_T_INT, .required = true,
    .has_min = true, .min = 0, .description = "provider calls made for this channel"},
   {FLORA_FIELD_DEFAULTS, .path = "lastError", .types = FLORA_T_STRING | FLORA_T_NULL,
    .maxlength = 1000, .description = "why the last attempt failed"},
   {FLORA_FIELD_DEFAULTS, .path = "providerId", .types = FLORA_T_STRING | FLORA_T_NULL,
    .maxlength = 200,
    .description = "the provider's id of the sent message (SMTP Message-ID, Twilio sid, SMS.ru sms_id)"},
   {FLORA_FIELD_DEFAULTS, .path = "segments", .types = FLORA_T_INT32 | FLORA_T_NULL,
    .description = "SMS: segments billed (GSM-7 160/153, UCS-2 70/67)"},
   {FLORA_FIELD_DEFAULTS, .path = "sentAt", .types = FLORA_T_DATE | FLORA_T_NULL,
    .description = "when the provider accepted it"},
   {NULL},
};

static const flora_field_t delivery_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = delivery_fields,
   .strict = true,
};

static const flora_field_t outbox_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "event", .types = FLORA_T_STRING, .required = true,
    .enum_values = events, .description = "what happened (decides the templates)"},
   {FLORA_FIELD_DEFAULTS, .path = "payload", .types = FLORA_T_DOCUMENT, .required = true,
    .description = "event data: ids to re-read, recipients under `to` (include/flora/outbox.h)"},
   {FLORA_FIELD_DEFAULTS, .path = "locale", .types = FLORA_T_STRING, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "\"ru\"",
    .enum_values = locales,
    .description = "language of the templates"},
   {FLORA_FIELD_DEFAULTS, .path = "dedupeKey", .types = FLORA_T_STRING, .minlength = 1,
    .maxlength = 200, .description = "optional; unique: a second enqueue with it is a no-op"},
   {FLORA_FIELD_DEFAULTS, .path = "status", .types = FLORA_T_STRING, .required = true,
    .enum_values = outbox_statuses,
    .description = "pending (due at nextAttemptAt), sending (leased), sent, failed (will retry), dead"},
   {FLORA_FIELD_DEFAULTS, .path = "attempts", .types = FLORA_T_INT, .required = true,
    .has_min = true, .min = 0, .description = "claims by a worker so far"},
   {FLORA_FIELD_DEFAULTS, .path = "nextAttemptAt", .types = FLORA_T_DATE, .required = true,
    .description = "not claimed before this time (backoff, quiet hours)"},
   {FLORA_FIELD_DEFAULTS, .path = "leaseOwner", .types = FLORA_T_STRING | FLORA_T_NULL,
    .maxlength = 200, .description = "the worker holding the message while sending"},
   {FLORA_FIELD_DEFAULTS, .path = "leaseExpiresAt", .types = FLORA_T_DATE | FLORA_T_NULL,
    .description = "after this another worker may reclaim the message (the holder crashed)"},
   {FLORA_FIELD_DEFAULTS, .path = "lastError", .types = FLORA_T_STRING | FLORA_T_NULL,
    .maxlength = 1000, .description = "why the last attempt failed"},
   {FLORA_FIELD_DEFAULTS, .path = "deliveries", .types = FLORA_T_ARRAY, .required = true,
    .minlength = 1, .maxlength = 4, .items = &delivery_item,
    .description = "one per channel; each marked sent on its own so a retry never resends another"},
   {FLORA_FIELD_DEFAULTS, .path = "sentAt", .types = FLORA_T_DATE | FLORA_T_NULL,
    .description = "when every delivery was sent"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t outbox_indexes[] = {
   {.name = "status_1_nextAttemptAt_1", .keys_json = "{\"status\": 1, \"nextAttemptAt\": 1}",
    .serves = "the worker's claim: due pending/failed messages, oldest first; the admin list by status"},
   {.name = "status_1_leaseExpiresAt_1", .keys_json = "{\"status\": 1, \"leaseExpiresAt\": 1}",
    .serves = "the worker's claim of messages whose lease expired (a crashed worker)"},
   {.name = "dedupeKey_1", .keys_json = "{\"dedupeKey\": 1}", .unique = true,
    .partial_filter_json = "{\"dedupeKey\": {\"$type\": \"string\"}}",
    .serves = "a repeated enqueue with the same key is a no-op"},
   {NULL},
};

const flora_schema_t flora_schema_outbox = {
   .collection = "outbox",
   .description = "The transactional outbox: notifications written in the same transaction as "
                  "the change they report, delivered by `flora worker` with a lease, retries "
                  "with backoff and a dead-letter state (docs/notifications.md).",
   .fields = outbox_fields,
   .strict = true,
   .timestamps = true,
   .indexes = outbox_indexes,
};

static const flora_field_t rate_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "windowStart", .types = FLORA_T_DATE, .required = true,
    .description = "start of the current counting window"},
   {FLORA_FIELD_DEFAULTS, .path = "count", .types = FLORA_T_INT, .required = true,
    .has_min = true, .min = 0, .description = "SMS sent to the number in the window"},
   {FLORA_FIELD_DEFAULTS, .path = "expiresAt", .types = FLORA_T_DATE, .required = true,
    .description = "end of the window; the TTL index removes stale windows"},
   {NULL},
};

static const flora_index_decl_t rate_indexes[] = {
   {.name = "expiresAt_1", .keys_json = "{\"expiresAt\": 1}", .expire_after_seconds = 1,
    .serves = "TTL: windows disappear after they end"},
   {NULL},
};

const flora_schema_t flora_schema_sms_rate_limits = {
   .collection = "sms_rate_limits",
   .description = "Per-number SMS counters in fixed windows (notify.sms_rate_limit per "
                  "notify.sms_rate_window_s), taken by conditional updates only. _id is the "
                  "E.164 phone number (a string), so each number has one document.",
   .fields = rate_fields,
   .strict = true,
   .indexes = rate_indexes,
};
