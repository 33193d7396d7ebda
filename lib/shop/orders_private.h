/* Internals shared by the write path's files (lib/shop/cart.c, checkout.c, orders.c,
 * coupons.c, reviews.c). Not installed. */
#ifndef FLORA_ORDERS_PRIVATE_H
#define FLORA_ORDERS_PRIVATE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/config.h"
#include "flora/coupons.h"
#include "flora/error.h"
#include "flora/store.h"

#define FLORA__LINES_MAX 50
#define FLORA__QUANTITY_MAX 999

/* INPUT error (HTTP 400) naming the first `$`-prefixed key anywhere in doc (operator
 * injection: client JSON never reaches a store filter as an operator). prefix is the
 * path of doc ("" at the top). */
bool flora__reject_operators(const bson_t *doc, const char *prefix, flora_error_t *error);

/* UTF-8 code points in s (s is valid UTF-8). */
size_t flora__utf8_length(const char *s);

/* Resolves [{sku, quantity}] (an array document, SKUs distinct) against the catalog into
 * *lines (initialised by the callee): [{productId, sku, name, variant, unitPrice,
 * quantity, image?, lineTotal, categoryTree}] and *subtotal. With take_stock, each line's
 * stock is taken by one conditional update (variants $elemMatch {sku, stock >= qty};
 * $inc stock -qty and popularity +qty; inStock kept right): call it in a transaction.
 * VALIDATION (problems: items.N.sku) for an unknown or inactive SKU; OUT_OF_STOCK naming
 * the SKU and what is left (problems: {path: "items", reason, sku, available, requested}). */
bool flora__lines_resolve(flora_store_t *store, const bson_t *items, bool take_stock, bson_t *lines,
                          int64_t *subtotal, bson_t *problems, flora_error_t *error);

/* Puts back the stock of an order's items (inside the cancelling transaction). */
bool flora__lines_restock(flora_store_t *txn, const bson_t *order, flora_error_t *error);

/* Judges coupon (a coupons document) for lines (as flora__lines_resolve makes them, or
 * NULL: subtotal alone), the customer's uses so far and now_ms. *discount receives the
 * discount when it applies. Pure. */
flora_coupon_reason_t flora__coupon_judge(const bson_t *coupon, const bson_t *lines, int64_t subtotal,
                                          int64_t delivery_price, int64_t customer_uses,
                                          int64_t now_ms, int64_t *discount);

/* The customer's uses of a coupon (0 when none), read from coupon_redemptions. */
bool flora__coupon_customer_uses(flora_store_t *store, const bson_oid_t *coupon_id,
                                 const char *customer_key, int64_t *uses, flora_error_t *error);

/* Counts one use in txn: {uses < usageLimit} $inc uses; then the per-customer counter
 * {couponId, customerKey, count < perCustomerLimit} $inc count with upsert (a customer at
 * the limit makes the upsert collide with the unique index). SHOP CONFLICT
 * "couponCode: limit_reached ..." or "couponCode: already_used ...". */
bool flora__coupon_redeem(flora_store_t *txn, const bson_t *coupon, const char *customer_key,
                          flora_error_t *error);

/* Gives one use back (cancellation), never below zero. */
bool flora__coupon_release(flora_store_t *txn, const bson_oid_t *coupon_id, const char *customer_key,
                           flora_error_t *error);

/* Upper-cases an ASCII coupon code into out; false when it is empty, too long or has
 * characters outside [A-Za-z0-9_-]. */
bool flora__coupon_code_normalize(const char *code, char *out, size_t out_len);

/* Prices the delivery of an order (the one place that does): when delivery zones are
 * configured (`delivery_zones` is not empty) by flora_delivery_quote (include/flora/
 * delivery.h) with the normalised delivery (address, date, slot), else the configured
 * delivery.flat_fee. *quote (initialised by the callee) receives the quote document, or
 * stays empty with the flat fee. A request the zones cannot serve: SHOP CONFLICT
 * "delivery: <reason>"; a malformed or past date: VALIDATION naming the field. */
bool flora__delivery_price(flora_store_t *store, const flora_config_t *config, int64_t subtotal,
                           const bson_t *delivery, bson_t *quote, int64_t *price, flora_error_t *error);

/* Reserves (or, with release, gives back) one unit of the order delivery's slot capacity in
 * txn, when the delivery was priced by a quote (delivery.quote present); otherwise nothing.
 * delivery: the order's delivery document. SHOP CONFLICT "slot full". */
bool flora__delivery_slot(flora_store_t *txn, const bson_t *delivery, bool release, flora_error_t *error);

/* Enqueues an outbox message for an order event in txn (include/flora/outbox.h):
 * payload {orderId, number, status, to: {email, phone?, locale: "ru"}}, deduplicated by
 * event, order id and the length of its status history. */
bool flora__order_notify(flora_store_t *txn, const char *event, const bson_t *order, flora_error_t *error);

/* Appends {items, total, page, pageSize, pages} from a find with filter and sort. */
bool flora__find_page(flora_store_t *store, const char *collection, const bson_t *filter,
                      const bson_t *sort, int64_t page, int64_t page_size, bson_t *out,
                      flora_error_t *error);

/* Whole-number value of a numeric iterator, or def. */
int64_t flora__iter_int64(const bson_iter_t *it, int64_t def);

#endif
