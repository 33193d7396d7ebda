/* Schemas of the write path's order side: carts, orders and the counters that number them
 * (DESIGN.md section 3: an order embeds snapshots of what was bought and of its delivery,
 * so it never changes when the catalog does). Money: int64 kopecks. */
#include "flora/shop.h"

#define MONEY_MAX 100000000000.0
#define SKU_PATTERN "^[A-Za-z0-9][A-Za-z0-9._/-]*$"
#define E164_PATTERN "^[+][1-9][0-9]{6,14}$"

static const char *const order_statuses[] = {"pending_payment", "paid", "assembling", "ready",
                                             "out_for_delivery", "delivered", "cancelled",
                                             "refunded", NULL};
static const char *const coupon_kinds[] = {"percent", "fixed", "free_delivery", NULL};

/* ---- carts ------------------------------------------------------------------------- */

static const flora_field_t cart_line_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "productId", .types = FLORA_T_OBJECTID, .required = true,
    .ref_collection = "products", .ref_field = "_id", .description = "the product of the variant"},
   {FLORA_FIELD_DEFAULTS, .path = "sku", .types = FLORA_T_STRING, .required = true, .minlength = 1,
    .maxlength = 64, .pattern = SKU_PATTERN, .pattern_hint = "letters, digits and . _ / -",
    .description = "variant SKU"},
   {FLORA_FIELD_DEFAULTS, .path = "quantity", .types = FLORA_T_INT32, .required = true,
    .has_min = true, .min = 1, .has_max = true, .max = 999, .description = "units"},
   {NULL},
};

static const flora_field_t cart_line_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = cart_line_fields,
   .strict = true,
};

static const flora_field_t cart_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "userId", .types = FLORA_T_OBJECTID, .ref_collection = "users",
    .ref_field = "_id", .description = "owner when signed in (exactly one of userId, guestToken)"},
   {FLORA_FIELD_DEFAULTS, .path = "guestToken", .types = FLORA_T_STRING, .minlength = 16,
    .maxlength = 128, .description = "owner when a guest: the X-Cart-Token the API handed out"},
   {FLORA_FIELD_DEFAULTS, .path = "items", .types = FLORA_T_ARRAY, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 50,
    .items = &cart_line_item, .description = "lines; one per SKU"},
   {FLORA_FIELD_DEFAULTS, .path = "expiresAt", .types = FLORA_T_DATE, .required = true,
    .description = "an abandoned cart is removed after this (TTL index; refreshed on every write, "
                   "config cart.ttl_s)"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t cart_indexes[] = {
   {.name = "userId_1", .keys_json = "{\"userId\": 1}", .unique = true,
    .partial_filter_json = "{\"userId\": {\"$exists\": true}}",
    .serves = "the signed-in customer's cart (one per user)"},
   {.name = "guestToken_1", .keys_json = "{\"guestToken\": 1}", .unique = true,
    .partial_filter_json = "{\"guestToken\": {\"$exists\": true}}",
    .serves = "a guest's cart by X-Cart-Token (one per token)"},
   {.name = "expiresAt_ttl", .keys_json = "{\"expiresAt\": 1}", .expire_after_seconds = 1,
    .serves = "TTL: abandoned carts are removed (one second after expiresAt)"},
   {NULL},
};

const flora_schema_t flora_schema_carts = {
   .collection = "carts",
   .description = "Shopping carts of signed-in customers and guests. Lines hold only the SKU and "
                  "quantity: prices and names are read from the catalog at checkout.",
   .fields = cart_fields,
   .strict = true,
   .timestamps = true,
   .indexes = cart_indexes,
};

/* ---- orders ------------------------------------------------------------------------ */

static const flora_field_t customer_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 120, .description = "buyer's name"},
   {FLORA_FIELD_DEFAULTS, .path = "email", .types = FLORA_T_STRING, .required = true,
    .minlength = 3, .maxlength = 254, .description = "normalised e-mail (lower case)"},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING, .pattern = E164_PATTERN,
    .pattern_hint = "E.164", .description = "buyer's phone, E.164"},
   {NULL},
};

static const flora_field_t status_entry_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "status", .types = FLORA_T_STRING, .required = true,
    .enum_values = order_statuses, .description = "the status entered"},
   {FLORA_FIELD_DEFAULTS, .path = "at", .types = FLORA_T_DATE, .required = true, .description = "when (UTC)"},
   {FLORA_FIELD_DEFAULTS, .path = "actor", .types = FLORA_T_STRING, .required = true, .minlength = 1,
    .maxlength = 120, .description = "user:<id>, manager:<id>, system or payment:<provider>"},
   {FLORA_FIELD_DEFAULTS, .path = "note", .types = FLORA_T_STRING, .maxlength = 1000, .description = "why"},
   {NULL},
};

static const flora_field_t status_entry_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = status_entry_fields,
   .strict = true,
};

static const flora_field_t line_item_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "productId", .types = FLORA_T_OBJECTID, .required = true,
    .ref_collection = "products", .ref_field = "_id", .description = "the product bought"},
   {FLORA_FIELD_DEFAULTS, .path = "sku", .types = FLORA_T_STRING, .required = true, .minlength = 1,
    .maxlength = 64, .description = "variant SKU"},
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true, .minlength = 1,
    .maxlength = 200, .description = "product name at the time of the order"},
   {FLORA_FIELD_DEFAULTS, .path = "variant", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 120, .description = "variant name at the time of the order"},
   {FLORA_FIELD_DEFAULTS, .path = "unitPrice", .types = FLORA_T_INT64, .required = true,
    .has_min = true, .min = 0, .has_max = true, .max = MONEY_MAX, .description = "kopecks"},
   {FLORA_FIELD_DEFAULTS, .path = "quantity", .types = FLORA_T_INT32, .required = true,
    .has_min = true, .min = 1, .has_max = true, .max = 999, .description = "units"},
   {FLORA_FIELD_DEFAULTS, .path = "image", .types = FLORA_T_STRING, .maxlength = 2000,
    .description = "cover image URL at the time of the order"},
   {FLORA_FIELD_DEFAULTS, .path = "lineTotal", .types = FLORA_T_INT64, .required = true,
    .has_min = true, .min = 0, .description = "unitPrice x quantity, kopecks"},
   {NULL},
};

static const flora_field_t line_item_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = line_item_fields,
   .strict = true,
};

static const flora_field_t order_coupon_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "couponId", .types = FLORA_T_OBJECTID, .required = true,
    .ref_collection = "coupons", .ref_field = "_id", .description = "the coupon"},
   {FLORA_FIELD_DEFAULTS, .path = "code", .types = FLORA_T_STRING, .required = true,
    .description = "code as stored (upper case)"},
   {FLORA_FIELD_DEFAULTS, .path = "kind", .types = FLORA_T_STRING, .required = true,
    .enum_values = coupon_kinds, .description = "percent, fixed or free_delivery"},
   {FLORA_FIELD_DEFAULTS, .path = "discount", .types = FLORA_T_INT64, .required = true,
    .has_min = true, .min = 0, .description = "kopecks taken off"},
   {FLORA_FIELD_DEFAULTS, .path = "customerKey", .types = FLORA_T_STRING, .required = true,
    .description = "whose per-customer use it counted (user:<id> or email:<address>)"},
   {NULL},
};

static const flora_field_t totals_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "subtotal", .types = FLORA_T_INT64, .required = true,
    .has_min = true, .min = 0, .description = "sum of line totals, kopecks"},
   {FLORA_FIELD_DEFAULTS, .path = "discount", .types = FLORA_T_INT64, .required = true,
    .has_min = true, .min = 0, .description = "coupon discount, kopecks"},
   {FLORA_FIELD_DEFAULTS, .path = "delivery", .types = FLORA_T_INT64, .required = true,
    .has_min = true, .min = 0, .description = "delivery price, kopecks"},
   {FLORA_FIELD_DEFAULTS, .path = "total", .types = FLORA_T_INT64, .required = true,
    .has_min = true, .min = 0, .description = "subtotal - discount + delivery, kopecks"},
   {NULL},
};

static const flora_field_t recipient_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 120, .description = "who receives the flowers"},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING, .required = true,
    .pattern = E164_PATTERN, .pattern_hint = "E.164", .description = "recipient's phone, E.164"},
   {NULL},
};

static const flora_field_t address_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "text", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 500, .description = "the address as typed"},
   {FLORA_FIELD_DEFAULTS, .path = "lat", .types = FLORA_T_DOUBLE | FLORA_T_INT, .has_min = true,
    .min = -90, .has_max = true, .max = 90, .description = "latitude (WGS 84)"},
   {FLORA_FIELD_DEFAULTS, .path = "lon", .types = FLORA_T_DOUBLE | FLORA_T_INT, .has_min = true,
    .min = -180, .has_max = true, .max = 180, .description = "longitude (WGS 84)"},
   {NULL},
};

static const flora_field_t slot_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "id", .types = FLORA_T_STRING, .maxlength = 16,
    .description = "slot id, e.g. 09-12"},
   {FLORA_FIELD_DEFAULTS, .path = "start", .types = FLORA_T_STRING, .maxlength = 5,
    .description = "HH:MM, shop time zone"},
   {FLORA_FIELD_DEFAULTS, .path = "end", .types = FLORA_T_STRING, .maxlength = 5,
    .description = "HH:MM, shop time zone"},
   {FLORA_FIELD_DEFAULTS, .path = "exactTime", .types = FLORA_T_STRING, .maxlength = 5,
    .description = "HH:MM for delivery at an exact time"},
   {NULL},
};

static const flora_field_t delivery_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "recipient", .types = FLORA_T_DOCUMENT, .required = true,
    .fields = recipient_fields, .strict = true,
    .description = "the buyer's name and phone unless someone else receives"},
   {FLORA_FIELD_DEFAULTS, .path = "address", .types = FLORA_T_DOCUMENT, .required = true,
    .fields = address_fields, .strict = true, .description = "where"},
   {FLORA_FIELD_DEFAULTS, .path = "date", .types = FLORA_T_STRING, .required = true,
    .pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", .pattern_hint = "YYYY-MM-DD",
    .description = "delivery day in the shop's time zone"},
   {FLORA_FIELD_DEFAULTS, .path = "slot", .types = FLORA_T_DOCUMENT, .required = true,
    .fields = slot_fields, .strict = true, .description = "time window or exact time"},
   {FLORA_FIELD_DEFAULTS, .path = "price", .types = FLORA_T_INT64, .required = true,
    .has_min = true, .min = 0, .description = "delivery price, kopecks"},
   {FLORA_FIELD_DEFAULTS, .path = "cardMessage", .types = FLORA_T_STRING, .maxlength = 500,
    .description = "text of the greeting card"},
   {FLORA_FIELD_DEFAULTS, .path = "anonymous", .types = FLORA_T_BOOL, .required = true,
    .description = "do not tell the recipient who sent it"},
   {FLORA_FIELD_DEFAULTS, .path = "callFirst", .types = FLORA_T_BOOL, .required = true,
    .description = "call the recipient before coming"},
   {FLORA_FIELD_DEFAULTS, .path = "quote", .types = FLORA_T_DOCUMENT,
    .description = "the delivery quote the price came from"},
   {NULL},
};

static const flora_field_t payment_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "status", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 40, .description = "provider-independent payment status"},
   {FLORA_FIELD_DEFAULTS, .path = "provider", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 40, .description = "stripe, paypal, yookassa"},
   {FLORA_FIELD_DEFAULTS, .path = "paymentId", .types = FLORA_T_STRING | FLORA_T_OBJECTID,
    .description = "our payment id"},
   {FLORA_FIELD_DEFAULTS, .path = "amountPaid", .types = FLORA_T_INT64, .has_min = true, .min = 0,
    .description = "kopecks captured"},
   {FLORA_FIELD_DEFAULTS, .path = "amountRefunded", .types = FLORA_T_INT64, .has_min = true,
    .min = 0, .description = "kopecks refunded"},
   {NULL},
};

static const flora_field_t order_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "number", .types = FLORA_T_STRING, .required = true,
    .pattern = "^FL-[0-9]{4}-[0-9]{6,}$", .pattern_hint = "FL-<year>-<6 digits>",
    .description = "human-readable number, unique, from the counters collection"},
   {FLORA_FIELD_DEFAULTS, .path = "userId", .types = FLORA_T_OBJECTID, .ref_collection = "users",
    .ref_field = "_id", .description = "the buyer when signed in"},
   {FLORA_FIELD_DEFAULTS, .path = "guestToken", .types = FLORA_T_STRING, .maxlength = 128,
    .description = "the guest's X-Cart-Token when not signed in"},
   {FLORA_FIELD_DEFAULTS, .path = "customerKey", .types = FLORA_T_STRING, .required = true,
    .maxlength = 300, .description = "user:<id> or guest:<token>; scopes Idempotency-Key"},
   {FLORA_FIELD_DEFAULTS, .path = "customer", .types = FLORA_T_DOCUMENT, .required = true,
    .fields = customer_fields, .strict = true, .description = "the buyer's contact details"},
   {FLORA_FIELD_DEFAULTS, .path = "status", .types = FLORA_T_STRING, .required = true,
    .enum_values = order_statuses, .description = "lifecycle state (docs/orders.md)"},
   {FLORA_FIELD_DEFAULTS, .path = "statusHistory", .types = FLORA_T_ARRAY, .required = true,
    .maxlength = 100, .items = &status_entry_item, .description = "every status change, oldest first"},
   {FLORA_FIELD_DEFAULTS, .path = "items", .types = FLORA_T_ARRAY, .required = true,
    .minlength = 1, .maxlength = 50, .items = &line_item_item,
    .description = "snapshots of what was bought"},
   {FLORA_FIELD_DEFAULTS, .path = "currency", .types = FLORA_T_STRING, .required = true,
    .minlength = 3, .maxlength = 3, .description = "ISO 4217"},
   {FLORA_FIELD_DEFAULTS, .path = "coupon", .types = FLORA_T_DOCUMENT, .fields = order_coupon_fields,
    .strict = true, .description = "the coupon applied"},
   {FLORA_FIELD_DEFAULTS, .path = "totals", .types = FLORA_T_DOCUMENT, .required = true,
    .fields = totals_fields, .strict = true, .description = "money, kopecks"},
   {FLORA_FIELD_DEFAULTS, .path = "delivery", .types = FLORA_T_DOCUMENT, .required = true,
    .fields = delivery_fields, .strict = true, .description = "snapshot of the delivery"},
   {FLORA_FIELD_DEFAULTS, .path = "payment", .types = FLORA_T_DOCUMENT, .fields = payment_fields,
    .strict = true, .description = "payment summary (kept by the payments module)"},
   {FLORA_FIELD_DEFAULTS, .path = "idempotencyKey", .types = FLORA_T_STRING, .minlength = 1,
    .maxlength = 200, .description = "the checkout's Idempotency-Key header"},
   {FLORA_FIELD_DEFAULTS, .path = "idempotencyScope", .types = FLORA_T_STRING, .minlength = 1,
    .maxlength = 300,
    .description = "what the Idempotency-Key is unique within: customerKey, or email:<e-mail> "
                   "for a guest who came without X-Cart-Token"},
   {FLORA_FIELD_DEFAULTS, .path = "idempotencyFingerprint", .types = FLORA_T_STRING,
    .pattern = "^[0-9a-f]{64}$",
    .description = "SHA-256 (hex) of the checkout request (canonical Extended JSON, keys sorted); "
                   "the same key with another request answers 422 idempotency_key_reused"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t order_indexes[] = {
   {.name = "number_1", .keys_json = "{\"number\": 1}", .unique = true,
    .serves = "GET /api/v1/orders/by-number/{number}; no two orders share a number"},
   {.name = "idempotencyKey_1_idempotencyScope_1",
    .keys_json = "{\"idempotencyKey\": 1, \"idempotencyScope\": 1}", .unique = true,
    .partial_filter_json = "{\"idempotencyKey\": {\"$exists\": true}}",
    .serves = "a retried checkout with the same Idempotency-Key finds its order; a concurrent "
              "duplicate fails with 11000"},
   {.name = "customerKey_1_createdAt_-1", .keys_json = "{\"customerKey\": 1, \"createdAt\": -1}",
    .serves = "a customer's own orders, newest first"},
   {.name = "status_1_createdAt_-1", .keys_json = "{\"status\": 1, \"createdAt\": -1}",
    .serves = "managers: orders by status, newest first"},
   {.name = "createdAt_-1", .keys_json = "{\"createdAt\": -1}",
    .serves = "managers: all orders by creation date"},
   {.name = "delivery.date_1_status_1", .keys_json = "{\"delivery.date\": 1, \"status\": 1}",
    .serves = "managers: orders by delivery date (the florists' day plan)"},
   {.name = "items.productId_1_userId_1", .keys_json = "{\"items.productId\": 1, \"userId\": 1}",
    .serves = "reviews: did this user receive this product (verified purchase)"},
   {NULL},
};

const flora_schema_t flora_schema_orders = {
   .collection = "orders",
   .description = "Orders. Line items and delivery are snapshots taken at checkout, so an order "
                  "never changes when the catalog does; status changes are conditional updates "
                  "on the current status with an appended history entry.",
   .fields = order_fields,
   .strict = true,
   .timestamps = true,
   .indexes = order_indexes,
};

/* ---- counters ---------------------------------------------------------------------- */

static const flora_field_t counter_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "seq", .types = FLORA_T_INT, .required = true, .has_min = true,
    .min = 0, .description = "the last number handed out"},
   {NULL},
};

static const flora_index_decl_t counter_indexes[] = {
   {NULL},
};

const flora_schema_t flora_schema_counters = {
   .collection = "counters",
   .description = "Sequences (findAndModify with $inc and upsert), keyed by a string _id naming "
                  "what is counted: `order:2026` numbers the orders of 2026.",
   .fields = counter_fields,
   .strict = true,
   .timestamps = false,
   .indexes = counter_indexes,
};
