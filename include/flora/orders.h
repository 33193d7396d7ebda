/* The shop's write path: carts, checkout and orders with their lifecycle (DESIGN.md
 * section 3; docs/orders.md; document shapes in docs/schema/carts.md and orders.md).
 *
 * Money is int64 kopecks, times are UTC dates. Limits (stock, coupon uses, per-customer
 * coupon use) are enforced by single conditional updates inside one transaction
 * (flora_store_with_transaction), so concurrent checkouts never oversell, never use a
 * coupon past its limit, and a failed checkout leaves nothing behind.
 *
 * Errors: STORE errors pass through; VALIDATION (422) with every failing field in
 * `problems` ([{path, reason}]); INPUT (400) for operator injection (a `$`-prefixed key in
 * client JSON), naming the field; SHOP NOT_FOUND (404), CONFLICT (409: illegal
 * transition, coupon refused, empty cart), OUT_OF_STOCK (409, naming the SKU and what is
 * left). Outputs `bson_t *out` are initialised by the callee on every path; the caller
 * destroys them. `store` may be a transaction handle. */
#ifndef FLORA_ORDERS_H
#define FLORA_ORDERS_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/config.h"
#include "flora/error.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Who is buying: a signed-in user, or a guest identified by the X-Cart-Token. */
typedef struct flora_customer {
   bool has_user;
   bson_oid_t user_id;      /* when has_user */
   const char *guest_token; /* when !has_user: 16-128 characters; borrowed */
   bool new_guest;          /* the guest came without X-Cart-Token and guest_token was made
                             * for this request: flora_checkout scopes its Idempotency-Key by
                             * the normalised e-mail instead of the token */
} flora_customer_t;

/* ---- cart ---------------------------------------------------------------------------- */

#define FLORA_CART_TOKEN_LEN 43 /* base64url of 32 random bytes, without padding */

/* A new random guest token (32 bytes from libsodium's randombytes_buf, base64url, no
 * padding) into out[FLORA_CART_TOKEN_LEN + 1]. */
void flora_cart_new_token(char out[FLORA_CART_TOKEN_LEN + 1]);

/* The customer's cart: *out = {items: [{productId, sku, quantity, name, variant,
 * unitPrice, lineTotal, available}], subtotal, expiresAt?}; lines whose SKU left the
 * catalog are dropped from the view. An absent cart is an empty one. */
bool flora_cart_get(flora_store_t *store, const flora_customer_t *customer, bson_t *out,
                    flora_error_t *error);

/* Sets (add false) or adds to (add true) the quantity of a SKU in the customer's cart,
 * creating the cart; quantity 0 with add false removes the line. Refreshes expiresAt to
 * now + ttl_s. *out as flora_cart_get. Errors: VALIDATION for a quantity outside 0..999
 * (1..999 when adding) or over 50 lines; NOT_FOUND for an unknown or inactive SKU. */
bool flora_cart_set_item(flora_store_t *store, const flora_customer_t *customer, const char *sku,
                         int32_t quantity, bool add, int64_t ttl_s, bson_t *out,
                         flora_error_t *error);

/* Removes the customer's cart (no error when there is none). */
bool flora_cart_clear(flora_store_t *store, const flora_customer_t *customer, flora_error_t *error);

/* At sign-in: moves the guest cart's lines into the user's cart (quantities add up, capped
 * at 999) and removes the guest cart, in one transaction. *out as flora_cart_get. */
bool flora_cart_merge(flora_store_t *store, const char *guest_token, const bson_oid_t *user_id,
                      int64_t ttl_s, bson_t *out, flora_error_t *error);

/* ---- checkout ------------------------------------------------------------------------ */

/* Creates an order from input:
 *   {customer: {name, email, phone?}, items?: [{sku, quantity}] (else the cart's lines),
 *    delivery: {recipient?: {name, phone}, address: {text, lat?, lon?}, date: "YYYY-MM-DD",
 *               slot?: "09-12" | exactTime?: "14:30", cardMessage? (<= 500 characters),
 *               anonymous?: bool, callFirst?: bool},
 *    couponCode?, note?}
 * in one transaction: line items copied from the catalog; stock taken per SKU by one
 * conditional update (variants $elemMatch {sku, stock >= qty}); the coupon counted with
 * its global ({uses < usageLimit}) and per-customer (coupon_redemptions counter) limits;
 * delivery priced (config delivery.flat_fee); number FL-<year>-<6 digits> from the
 * counters collection; the cart emptied when it was used. The recipient defaults to the
 * buyer. Phones are normalised to E.164 (include/flora/contact.h).
 * idempotency_key (may be NULL; 1-200 characters) scopes to the customer (customerKey; for
 * a new_guest, "email:<normalised e-mail>"): the same key returns the first order
 * (*replayed true), also when both arrive at once. The key is stored with a fingerprint of
 * the request (SHA-256 of its canonical Extended JSON, keys sorted); the same key with a
 * different request fails with SHOP INVALID whose message starts with
 * FLORA_CHECKOUT_KEY_REUSED (HTTP 422, as Stripe answers). The per-customer coupon limit
 * counts by "email:<normalised e-mail>": the account's e-mail for a user, the checkout's
 * for a guest.
 * On OUT_OF_STOCK, problems (may be NULL) receives [{path: "items", reason, sku,
 * available, requested}]. *order is the stored order. */
#define FLORA_CHECKOUT_KEY_REUSED "idempotency_key_reused"

bool flora_checkout(flora_store_t *store, const flora_config_t *config,
                    const flora_customer_t *customer, const bson_t *input,
                    const char *idempotency_key, bson_t *problems, bson_t *order, bool *replayed,
                    flora_error_t *error);

/* ---- orders -------------------------------------------------------------------------- */

/* The statuses, NULL-terminated, in lifecycle order. */
const char *const *flora_order_statuses(void);

/* True when the state machine (docs/orders.md) allows from -> to. */
bool flora_order_transition_allowed(const char *from, const char *to);

bool flora_orders_get(flora_store_t *store, const bson_oid_t *order_id, bson_t *out, bool *found,
                      flora_error_t *error);
bool flora_orders_get_by_number(flora_store_t *store, const char *number, bson_t *out,
                                bool *found, flora_error_t *error);

/* Moves the order to to_status with one conditional update {_id, status: {$in: the states
 * that may go to to_status}} and appends {status, at, actor, note?} to statusHistory.
 * Cancelling restocks every line and gives the coupon use back in the same transaction,
 * so of two concurrent cancels only the winner restocks. actor: "user:<id>",
 * "manager:<id>", "system" or "payment:<provider>"; note may be NULL. *out (may be NULL)
 * is the new order. NOT_FOUND for an unknown order; CONFLICT (409) naming both statuses
 * for an illegal transition. */
bool flora_orders_transition(flora_store_t *store, const bson_oid_t *order_id, const char *to_status,
                             const char *actor, const char *note, bson_t *out,
                             flora_error_t *error);

/* Sets order.payment = {status, provider, paymentId, amountPaid, amountRefunded} (the
 * fields given). VALIDATION for wrong types or negative amounts; NOT_FOUND. */
bool flora_orders_record_payment(flora_store_t *store, const bson_oid_t *order_id,
                                 const bson_t *payment, flora_error_t *error);

/* Appends a note to the order's statusHistory without changing its status:
 * {status: <the current one>, at, actor, note} (note cut to 1000 bytes), e.g. the payments
 * module recording a refund it made or could not make for a cancelled order. A note equal
 * to the last entry's note is not repeated (a retried step says it once). NOT_FOUND. */
bool flora_orders_note(flora_store_t *store, const bson_oid_t *order_id, const char *actor, const char *note,
                       flora_error_t *error);

typedef enum flora_order_sort {
   FLORA_ORDER_SORT_NEWEST = 0,   /* createdAt descending */
   FLORA_ORDER_SORT_OLDEST,       /* createdAt ascending */
   FLORA_ORDER_SORT_DELIVERY,     /* delivery.date ascending, then createdAt */
} flora_order_sort_t;

typedef struct flora_order_query {
   const flora_customer_t *customer; /* only this customer's orders; NULL: all (managers) */
   const char *status;               /* NULL: any */
   const char *delivery_date;        /* "YYYY-MM-DD"; NULL: any */
   int64_t created_from_ms;          /* inclusive; -1: none */
   int64_t created_to_ms;            /* exclusive; -1: none */
   flora_order_sort_t sort;
   int64_t page;                     /* 1-based */
   int64_t page_size;                /* 1..100 */
} flora_order_query_t;

#define FLORA_ORDER_QUERY_INIT {NULL, NULL, NULL, -1, -1, FLORA_ORDER_SORT_NEWEST, 1, 20}

/* One page: *out = {items: [order...], total, page, pageSize, pages}. */
bool flora_orders_list(flora_store_t *store, const flora_order_query_t *query, bson_t *out,
                       flora_error_t *error);

/* The customer's key as orders store it: "user:<hex id>" or "guest:<token>". */
void flora_customer_key(const flora_customer_t *customer, char *out, size_t out_len);

/* The key per-customer coupon limits count by (coupon_redemptions.customerKey):
 * "email:<normalised e-mail>", where the e-mail is the user account's for a signed-in
 * customer (read from `users`; the e-mail typed at checkout cannot evade the limit) and
 * `email` (normalised, flora_email_normalize; may be NULL) for a guest or a user without
 * one. So a user and a guest checkout with the same e-mail are one customer. STORE errors
 * pass through. */
bool flora_customer_coupon_key(flora_store_t *store, const flora_customer_t *customer, const char *email,
                               char *out, size_t out_len, flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
