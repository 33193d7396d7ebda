/* Coupons: percent, fixed-amount and free-delivery discount codes (document shape:
 * docs/schema/coupons.md). Codes are case-insensitive: stored upper-case and unique.
 *
 * A coupon applies when it is active, inside its validity window [validFrom, validUntil),
 * the order subtotal reaches minSubtotal, uses < usageLimit, the customer's uses <
 * perCustomerLimit and, when it is restricted to products or categories (subcategories
 * included, through products.categoryTree), some line is eligible. The discount: percent
 * of the eligible lines' total (rounded down to the kopeck), or the fixed amount (at most
 * the eligible total), or the delivery price for free_delivery; then capped by
 * maxDiscount. Uses are counted at checkout (include/flora/orders.h) by conditional
 * updates; a cancelled order gives its use back.
 *
 * Errors and outputs follow include/flora/orders.h. */
#ifndef FLORA_COUPONS_H
#define FLORA_COUPONS_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/error.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Why a coupon does not apply (FLORA_COUPON_OK when it does). */
typedef enum flora_coupon_reason {
   FLORA_COUPON_OK = 0,
   FLORA_COUPON_UNKNOWN,        /* "unknown" */
   FLORA_COUPON_INACTIVE,       /* "inactive" */
   FLORA_COUPON_NOT_YET_VALID,  /* "not_yet_valid" */
   FLORA_COUPON_EXPIRED,        /* "expired" */
   FLORA_COUPON_BELOW_MINIMUM,  /* "below_minimum" */
   FLORA_COUPON_LIMIT_REACHED,  /* "limit_reached" */
   FLORA_COUPON_ALREADY_USED,   /* "already_used" */
   FLORA_COUPON_NOT_APPLICABLE, /* "not_applicable": no eligible item */
} flora_coupon_reason_t;

/* The reason's API name ("expired", ...; "ok"). */
const char *flora_coupon_reason_name(flora_coupon_reason_t reason);

/* Creates a coupon from {code, kind, value, minSubtotal?, maxDiscount?, validFrom?,
 * validUntil? (dates or RFC 3339 strings), usageLimit?, perCustomerLimit?, productIds?,
 * categoryIds? (ObjectIds or hex strings), active?, description?}. The code is upper-cased.
 * VALIDATION with every problem; CONFLICT when the code exists. *out: the stored coupon. */
bool flora_coupons_create(flora_store_t *store, const bson_t *input, bson_t *problems, bson_t *out,
                          flora_error_t *error);

/* Changes the fields of patch (same fields as create except code and uses). *out: the
 * new coupon. NOT_FOUND for an unknown code. */
bool flora_coupons_update(flora_store_t *store, const char *code, const bson_t *patch,
                          bson_t *problems, bson_t *out, flora_error_t *error);

/* Deletes a coupon (orders keep their snapshot). NOT_FOUND for an unknown code. */
bool flora_coupons_delete(flora_store_t *store, const char *code, flora_error_t *error);

/* The coupon by code (any case); *found false when none. */
bool flora_coupons_get(flora_store_t *store, const char *code, bson_t *out, bool *found,
                       flora_error_t *error);

/* A page of coupons by code: *out = {items, total, page, pageSize, pages}. */
bool flora_coupons_list(flora_store_t *store, int64_t page, int64_t page_size, bson_t *out,
                        flora_error_t *error);

/* Says whether code applies to an order without counting a use. lines: an array document
 * [{sku, quantity}] (resolved against the catalog) or NULL to judge by subtotal alone
 * (then a restricted coupon does not apply); subtotal is used when lines is NULL.
 * customer_key (may be NULL): "user:<hex id>" or "email:<normalised address>" for the
 * per-customer limit. delivery_price: what free_delivery would take off. now_ms: 0 for
 * the clock. *result = {code, applicable: bool, reason: "ok"|..., message, kind?,
 * discount: int64, subtotal: int64}. An unknown code is a result, not an error. */
bool flora_coupons_check(flora_store_t *store, const char *code, const bson_t *lines,
                         int64_t subtotal, const char *customer_key, int64_t delivery_price,
                         int64_t now_ms, bson_t *result, flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
