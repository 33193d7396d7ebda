/* Schemas of payments and webhook_events (include/flora/pay.h). Money: int64 minor units
 * with an ISO 4217 code; see docs/schema/payments.md and docs/payments.md. */
#include "flora/shop.h"

#define MONEY_MAX 100000000000.0 /* 1 billion roubles in kopecks */

static const char *const providers[] = {"stripe", "paypal", "yookassa", NULL};
static const char *const statuses[] = {"created",  "pending",  "requires_action",
                                       "failed",   "authorized", "canceled",
                                       "captured", "partially_refunded", "refunded", NULL};
static const char *const operations[] = {"create", "capture", "cancel", "refund", "reconcile",
                                         NULL};
static const char *const outcomes[] = {"calling", "ok", "error", "unknown", NULL};
static const char *const event_statuses[] = {"applied", "ignored", "rejected", NULL};

#define MONEY(name, desc)                                                                      \
   {FLORA_FIELD_DEFAULTS, .path = name, .types = FLORA_T_INT, .required = true,                \
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "0", .has_min = true, .min = 0,       \
    .has_max = true, .max = MONEY_MAX, .description = desc}

static const flora_field_t history_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "status", .types = FLORA_T_STRING, .required = true,
    .maxlength = 40, .description = "a payment status, or \"calling <operation>\" before a provider call"},
   {FLORA_FIELD_DEFAULTS, .path = "at", .types = FLORA_T_DATE, .required = true,
    .description = "when (UTC)"},
   {FLORA_FIELD_DEFAULTS, .path = "source", .types = FLORA_T_STRING, .required = true,
    .maxlength = 200,
    .description = "what moved it: api, webhook:<event id>, reconcile, manager"},
   {FLORA_FIELD_DEFAULTS, .path = "idempotencyKey", .types = FLORA_T_STRING, .maxlength = 200,
    .description = "the key of the provider call, for \"calling ...\" entries"},
   {NULL},
};

static const flora_field_t history_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = history_fields,
   .strict = true,
};

static const flora_field_t request_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "operation", .types = FLORA_T_STRING, .required = true,
    .enum_values = operations, .description = "the provider call"},
   {FLORA_FIELD_DEFAULTS, .path = "idempotencyKey", .types = FLORA_T_STRING, .required = true,
    .maxlength = 200, .description = "sent as Idempotency-Key / PayPal-Request-Id / Idempotence-Key"},
   {FLORA_FIELD_DEFAULTS, .path = "amount", .types = FLORA_T_INT, .has_min = true, .min = 0,
    .description = "minor units the call concerns"},
   {FLORA_FIELD_DEFAULTS, .path = "outcome", .types = FLORA_T_STRING, .required = true,
    .enum_values = outcomes,
    .description = "calling (recorded before the call), ok, error (refused), unknown (no answer)"},
   {FLORA_FIELD_DEFAULTS, .path = "error", .types = FLORA_T_STRING, .maxlength = 600,
    .description = "the error message (never keys or card data)"},
   {FLORA_FIELD_DEFAULTS, .path = "at", .types = FLORA_T_DATE, .required = true,
    .description = "when (UTC)"},
   {NULL},
};

static const flora_field_t request_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = request_fields,
   .strict = true,
};

static const flora_field_t pending_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "operation", .types = FLORA_T_STRING, .required = true,
    .enum_values = operations, .description = "the call in flight"},
   {FLORA_FIELD_DEFAULTS, .path = "idempotencyKey", .types = FLORA_T_STRING, .required = true,
    .maxlength = 200, .description = "its key: a repeat with it cannot act twice"},
   {FLORA_FIELD_DEFAULTS, .path = "amount", .types = FLORA_T_INT, .has_min = true, .min = 0,
    .description = "minor units"},
   {FLORA_FIELD_DEFAULTS, .path = "since", .types = FLORA_T_DATE, .required = true,
    .description = "when the call was recorded"},
   {NULL},
};

static const flora_field_t payment_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "orderId", .types = FLORA_T_OBJECTID, .required = true,
    .ref_collection = "orders", .ref_field = "_id", .description = "the order paid"},
   {FLORA_FIELD_DEFAULTS, .path = "orderNumber", .types = FLORA_T_STRING, .required = true,
    .maxlength = 64, .description = "the order's number (denormalised for support)"},
   {FLORA_FIELD_DEFAULTS, .path = "provider", .types = FLORA_T_STRING, .required = true,
    .enum_values = providers, .description = "payment gateway"},
   {FLORA_FIELD_DEFAULTS, .path = "providerPaymentId", .types = FLORA_T_STRING, .maxlength = 200,
    .description = "the gateway's id: PaymentIntent pi_..., PayPal order id, YooKassa payment id; "
                   "absent until the gateway answered"},
   {FLORA_FIELD_DEFAULTS, .path = "captureId", .types = FLORA_T_STRING, .maxlength = 200,
    .description = "PayPal capture id (refunds go to it)"},
   {FLORA_FIELD_DEFAULTS, .path = "status", .types = FLORA_T_STRING, .required = true,
    .enum_values = statuses,
    .description = "only moves up this list's rank order (out-of-order events cannot move it back)"},
   MONEY("amount", "the amount asked for, minor units (the order's total)"),
   MONEY("amountAuthorized", "held or taken by the gateway, minor units"),
   MONEY("amountCaptured", "taken, minor units"),
   MONEY("amountRefunded", "given back, minor units (never above amountCaptured)"),
   {FLORA_FIELD_DEFAULTS, .path = "currency", .types = FLORA_T_STRING, .required = true,
    .minlength = 3, .maxlength = 3, .pattern = "^[A-Z]{3}$", .pattern_hint = "an ISO 4217 code",
    .description = "ISO 4217 code"},
   {FLORA_FIELD_DEFAULTS, .path = "idempotencyKey", .types = FLORA_T_STRING, .required = true,
    .maxlength = 200, .description = "key of the create call, unique: <payment id>:create:<amount>"},
   {FLORA_FIELD_DEFAULTS, .path = "client", .types = FLORA_T_DOCUMENT,
    .description = "what the storefront needs: clientSecret, approveUrl or confirmationUrl"},
   {FLORA_FIELD_DEFAULTS, .path = "pending", .types = FLORA_T_DOCUMENT | FLORA_T_NULL,
    .fields = pending_fields, .strict = true,
    .description = "a provider call recorded but not yet answered (reconcile resolves it)"},
   {FLORA_FIELD_DEFAULTS, .path = "statusHistory", .types = FLORA_T_ARRAY, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .items = &history_item,
    .description = "every status change and provider call, oldest first"},
   {FLORA_FIELD_DEFAULTS, .path = "providerRequests", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .items = &request_item,
    .description = "provider calls (redacted: operation, key, amount, outcome; no secrets)"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t payment_indexes[] = {
   {.name = "orderId_1_createdAt_-1", .keys_json = "{\"orderId\": 1, \"createdAt\": -1}",
    .serves = "GET /api/v1/orders/{number}/payments: an order's attempts, newest first"},
   {.name = "provider_1_providerPaymentId_1",
    .keys_json = "{\"provider\": 1, \"providerPaymentId\": 1}", .unique = true,
    .partial_filter_json = "{\"providerPaymentId\": {\"$exists\": true}}",
    .serves = "webhooks find the payment by the gateway's id; one local payment per gateway payment"},
   {.name = "idempotencyKey_1", .keys_json = "{\"idempotencyKey\": 1}", .unique = true,
    .serves = "one attempt per create key"},
   {.name = "status_1_updatedAt_1", .keys_json = "{\"status\": 1, \"updatedAt\": 1}",
    .serves = "flora payments reconcile: unfinished payments"},
   {NULL},
};

const flora_schema_t flora_schema_payments = {
   .collection = "payments",
   .description = "Every payment attempt of an order with one gateway: the gateway's ids, "
                  "the amounts authorised, captured and refunded, the status history and "
                  "the provider calls, each recorded before it is made and after it answers.",
   .fields = payment_fields,
   .strict = true,
   .timestamps = true,
   .indexes = payment_indexes,
};

static const flora_field_t event_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "key", .types = FLORA_T_STRING, .required = true,
    .maxlength = 300,
    .description = "<provider>:<event id>, unique: an event is applied once"},
   {FLORA_FIELD_DEFAULTS, .path = "provider", .types = FLORA_T_STRING, .required = true,
    .enum_values = providers, .description = "who sent it"},
   {FLORA_FIELD_DEFAULTS, .path = "eventId", .types = FLORA_T_STRING, .required = true,
    .maxlength = 250,
    .description = "the provider's event id (YooKassa: <event>:<object id>)"},
   {FLORA_FIELD_DEFAULTS, .path = "type", .types = FLORA_T_STRING, .required = true,
    .maxlength = 100, .description = "the provider's event type"},
   {FLORA_FIELD_DEFAULTS, .path = "status", .types = FLORA_T_STRING, .required = true,
    .enum_values = event_statuses,
    .description = "applied; ignored (a type or payment Flora does not act on); rejected "
                   "(verified but the amount or currency does not match: nothing changed)"},
   {FLORA_FIELD_DEFAULTS, .path = "paymentId", .types = FLORA_T_OBJECTID,
    .ref_collection = "payments", .ref_field = "_id", .description = "the payment it concerned"},
   {FLORA_FIELD_DEFAULTS, .path = "providerPaymentId", .types = FLORA_T_STRING, .maxlength = 200,
    .description = "the gateway's payment id the event named"},
   {FLORA_FIELD_DEFAULTS, .path = "reason", .types = FLORA_T_STRING, .maxlength = 600,
    .description = "why it was ignored or rejected"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "received"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t event_indexes[] = {
   {.name = "key_1", .keys_json = "{\"key\": 1}", .unique = true,
    .serves = "exactly once: a second delivery of an event (even a concurrent one) is a duplicate key"},
   {.name = "paymentId_1", .keys_json = "{\"paymentId\": 1}",
    .serves = "the events of a payment (support)"},
   {NULL},
};

const flora_schema_t flora_schema_webhook_events = {
   .collection = "webhook_events",
   .description = "Webhook deliveries that passed verification, one per provider event id: "
                  "the unique key makes a second delivery (even a concurrent one) a no-op.",
   .fields = event_fields,
   .strict = true,
   .timestamps = true,
   .indexes = event_indexes,
};
