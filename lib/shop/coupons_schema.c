/* Schemas of coupons and of their per-customer redemptions (DESIGN.md section 3: limits
 * are one conditional update; per-customer use is a unique index). */
#include "flora/shop.h"

#define MONEY_MAX 100000000000.0

static const char *const coupon_kinds[] = {"percent", "fixed", "free_delivery", NULL};

static const flora_field_t oid_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_OBJECTID,
};

static const flora_field_t coupon_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "code", .types = FLORA_T_STRING, .required = true,
    .minlength = 3, .maxlength = 40, .pattern = "^[A-Z0-9][A-Z0-9_-]*$",
    .pattern_hint = "upper-case latin letters, digits, _ and - (codes are case-insensitive)",
    .description = "the code customers type, stored upper-case, unique"},
   {FLORA_FIELD_DEFAULTS, .path = "description", .types = FLORA_T_STRING, .maxlength = 500,
    .description = "for managers"},
   {FLORA_FIELD_DEFAULTS, .path = "kind", .types = FLORA_T_STRING, .required = true,
    .enum_values = coupon_kinds, .description = "percent, fixed (kopecks) or free_delivery"},
   {FLORA_FIELD_DEFAULTS, .path = "value", .types = FLORA_T_INT, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "0", .has_min = true, .min = 0,
    .has_max = true, .max = MONEY_MAX,
    .description = "percent (1-100) for percent, kopecks for fixed, 0 for free_delivery"},
   {FLORA_FIELD_DEFAULTS, .path = "minSubtotal", .types = FLORA_T_INT, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "0", .has_min = true, .min = 0,
    .has_max = true, .max = MONEY_MAX, .description = "minimum order subtotal, kopecks"},
   {FLORA_FIELD_DEFAULTS, .path = "maxDiscount", .types = FLORA_T_INT | FLORA_T_NULL,
    .has_min = true, .min = 1, .has_max = true, .max = MONEY_MAX,
    .description = "cap on the discount, kopecks; null: none"},
   {FLORA_FIELD_DEFAULTS, .path = "validFrom", .types = FLORA_T_DATE | FLORA_T_NULL,
    .description = "not valid before (UTC); null: no start"},
   {FLORA_FIELD_DEFAULTS, .path = "validUntil", .types = FLORA_T_DATE | FLORA_T_NULL,
    .description = "not valid from this instant (UTC); null: no end"},
   {FLORA_FIELD_DEFAULTS, .path = "usageLimit", .types = FLORA_T_INT | FLORA_T_NULL,
    .has_min = true, .min = 1, .description = "uses in total; null: unlimited"},
   {FLORA_FIELD_DEFAULTS, .path = "uses", .types = FLORA_T_INT, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "0", .has_min = true, .min = 0,
    .description = "orders that use it now (a cancellation gives the use back)"},
   {FLORA_FIELD_DEFAULTS, .path = "perCustomerLimit", .types = FLORA_T_INT, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "1", .has_min = true, .min = 1,
    .has_max = true, .max = 1000000, .description = "uses per customer"},
   {FLORA_FIELD_DEFAULTS, .path = "productIds", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 500, .items = &oid_item,
    .description = "applies only to these products (with categoryIds: either); empty: any"},
   {FLORA_FIELD_DEFAULTS, .path = "categoryIds", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 100, .items = &oid_item,
    .description = "applies only to products in these categories or their subcategories"},
   {FLORA_FIELD_DEFAULTS, .path = "active", .types = FLORA_T_BOOL, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "true", .description = "usable"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t coupon_indexes[] = {
   {.name = "code_1", .keys_json = "{\"code\": 1}", .unique = true,
    .serves = "checkout and validate find a coupon by its (upper-cased) code"},
   {NULL},
};

const flora_schema_t flora_schema_coupons = {
   .collection = "coupons",
   .description = "Discount codes. `uses` is counted by one conditional update "
                  "{uses < usageLimit} in the checkout transaction.",
   .fields = coupon_fields,
   .strict = true,
   .timestamps = true,
   .indexes = coupon_indexes,
};

static const flora_field_t redemption_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "couponId", .types = FLORA_T_OBJECTID, .required = true,
    .ref_collection = "coupons", .ref_field = "_id", .description = "the coupon"},
   {FLORA_FIELD_DEFAULTS, .path = "customerKey", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 300,
    .description = "user:<id>, or email:<normalised address> for a guest"},
   {FLORA_FIELD_DEFAULTS, .path = "count", .types = FLORA_T_INT, .required = true,
    .has_min = true, .min = 0, .description = "uses by this customer now"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "first use"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "last change"},
   {NULL},
};

static const flora_index_decl_t redemption_indexes[] = {
   {.name = "couponId_1_customerKey_1", .keys_json = "{\"couponId\": 1, \"customerKey\": 1}",
    .unique = true,
    .serves = "per-customer limit: one counter per customer and coupon; the conditional upsert "
              "{count < limit} fails with 11000 when the customer has used it up"},
   {NULL},
};

const flora_schema_t flora_schema_coupon_redemptions = {
   .collection = "coupon_redemptions",
   .description = "Per-customer coupon use counters.",
   .fields = redemption_fields,
   .strict = true,
   .timestamps = true,
   .indexes = redemption_indexes,
};
