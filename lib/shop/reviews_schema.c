/* Schema of product reviews: one per user per product, moderated; approved ones feed the
 * product's denormalised rating summary (products.rating). */
#include "flora/shop.h"

static const char *const review_statuses[] = {"pending", "approved", "rejected", NULL};

static const flora_field_t photo_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_STRING, .minlength = 1, .maxlength = 2000,
   .pattern = "^https?://[^[:space:]]+$", .pattern_hint = "an http(s) URL",
};

static const flora_field_t review_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "productId", .types = FLORA_T_OBJECTID, .required = true,
    .ref_collection = "products", .ref_field = "_id", .description = "the product reviewed"},
   {FLORA_FIELD_DEFAULTS, .path = "userId", .types = FLORA_T_OBJECTID, .required = true,
    .ref_collection = "users", .ref_field = "_id", .description = "the author"},
   {FLORA_FIELD_DEFAULTS, .path = "authorName", .types = FLORA_T_STRING, .maxlength = 120,
    .description = "name shown with the review"},
   {FLORA_FIELD_DEFAULTS, .path = "rating", .types = FLORA_T_INT32, .required = true,
    .has_min = true, .min = 1, .has_max = true, .max = 5, .description = "stars, 1-5"},
   {FLORA_FIELD_DEFAULTS, .path = "text", .types = FLORA_T_STRING, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "\"\"", .maxlength = 5000,
    .description = "plain text"},
   {FLORA_FIELD_DEFAULTS, .path = "photos", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 10,
    .items = &photo_item, .description = "photo URLs"},
   {FLORA_FIELD_DEFAULTS, .path = "status", .types = FLORA_T_STRING, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "\"pending\"",
    .enum_values = review_statuses, .description = "moderation: pending, approved, rejected"},
   {FLORA_FIELD_DEFAULTS, .path = "verifiedPurchase", .types = FLORA_T_BOOL, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "false",
    .description = "the author has a delivered order containing the product"},
   {FLORA_FIELD_DEFAULTS, .path = "moderatedBy", .types = FLORA_T_STRING, .maxlength = 120,
    .description = "actor of the last moderation"},
   {FLORA_FIELD_DEFAULTS, .path = "moderatedAt", .types = FLORA_T_DATE,
    .description = "time of the last moderation"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t review_indexes[] = {
   {.name = "productId_1_userId_1", .keys_json = "{\"productId\": 1, \"userId\": 1}", .unique = true,
    .serves = "one review per user per product"},
   {.name = "productId_1_status_1_createdAt_-1",
    .keys_json = "{\"productId\": 1, \"status\": 1, \"createdAt\": -1}",
    .serves = "a product page's approved reviews, newest first"},
   {.name = "status_1_createdAt_1", .keys_json = "{\"status\": 1, \"createdAt\": 1}",
    .serves = "the moderation queue, oldest first"},
   {NULL},
};

const flora_schema_t flora_schema_reviews = {
   .collection = "reviews",
   .description = "Product reviews with moderation. Approving, rejecting an approved review, "
                  "editing or removing one changes products.rating with $inc on the count and "
                  "histogram and a recomputed average in the same transaction.",
   .fields = review_fields,
   .strict = true,
   .timestamps = true,
   .indexes = review_indexes,
};
