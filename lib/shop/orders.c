/* Orders: reads, listings, the lifecycle state machine and payment summaries
 * (include/flora/orders.h; the table is explained in docs/orders.md). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "flora/orders.h"
#include "flora/outbox.h"
#include "flora/schema.h"
#include "flora/shop.h"
#include "shop/orders_private.h"
#include "shop/shop_private.h"

#define ORDERS "orders"

static const char *const statuses[] = {"pending_payment", "paid", "assembling", "ready", "out_for_delivery",
                                       "delivered", "cancelled", "refunded", NULL};

/* The state machine: every allowed (from, to). Cancelling is possible until the bouquet
 * leaves the shop; a refund returns money for an order that was paid and not cancelled
 * (out_for_delivery first ends in delivered or goes back to ready when the courier
 * returns it). cancelled and refunded are final. */
static const struct {
   const char *from;
   const char *to;
} transitions[] = {
   {"pending_payment", "paid"},
   {"pending_payment", "cancelled"},
   {"paid", "assembling"},
   {"paid", "cancelled"},
   {"paid", "refunded"},
   {"assembling", "ready"},
   {"assembling", "cancelled"},
   {"assembling", "refunded"},
   {"ready", "out_for_delivery"},
   {"ready", "refunded"},
   {"out_for_delivery", "delivered"},
   {"out_for_delivery", "ready"},
   {"delivered", "refunded"},
};

const char *const *
flora_order_statuses(void)
{
   return statuses;
}

bool
flora_order_transition_allowed(const char *from, const char *to)
{
   FLORA_ASSERT_ARG(from);
   FLORA_ASSERT_ARG(to);
   for (size_t i = 0; i < sizeof transitions / sizeof transitions[0]; i++) {
      if (strcmp(transitions[i].from, from) == 0 && strcmp(transitions[i].to, to) == 0) {
         return true;
      }
   }
   return false;
}

static bool
known_status(const char *s)
{
   for (size_t i = 0; statuses[i]; i++) {
      if (strcmp(statuses[i], s) == 0) {
         return true;
      }
   }
   return false;
}

bool
flora__order_notify(flora_store_t *txn, const char *event, const bson_t *order, flora_error_t *error)
{
   bson_t payload = BSON_INITIALIZER, to, hist;
   bson_iter_t it, c;
   char key[128], hex[25] = "";
   uint32_t n_history = 0;
   bool ok;

   if (bson_iter_init_find(&it, order, "_id") && BSON_ITER_HOLDS_OID(&it)) {
      bson_oid_to_string(bson_iter_oid(&it), hex);
      bson_append_iter(&payload, "orderId", -1, &it);
   }
   if (bson_iter_init_find(&it, order, "number")) {
      bson_append_iter(&payload, "number", -1, &it);
   }
   if (bson_iter_init_find(&it, order, "status")) {
      bson_append_iter(&payload, "status", -1, &it);
   }
   BSON_APPEND_DOCUMENT_BEGIN(&payload, "to", &to);
   if (bson_iter_init_find(&it, order, "customer") && bson_iter_recurse(&it, &c)) {
      while (bson_iter_next(&c)) {
         if ((strcmp(bson_iter_key(&c), "email") == 0 || strcmp(bson_iter_key(&c), "phone") == 0) &&
             BSON_ITER_HOLDS_UTF8(&c)) {
            bson_append_iter(&to, bson_iter_key(&c), -1, &c);
         }
      }
   }
   BSON_APPEND_UTF8(&to, "locale", "ru");
   bson_append_document_end(&payload, &to);
   if (bson_iter_init_find(&it, order, "statusHistory") && BSON_ITER_HOLDS_ARRAY(&it)) {
      const uint8_t *d;
      uint32_t len;

      bson_iter_array(&it, &len, &d);
      if (bson_init_static(&hist, d, len)) {
         n_history = bson_count_keys(&hist);
      }
   }
   snprintf(key, sizeof key, "%s:%s:%u", event, hex, n_history);
   ok = flora_outbox_enqueue(txn, event, &payload, key, error);
   bson_destroy(&payload);
   return ok;
}

bool
flora_orders_get(flora_store_t *store, const bson_oid_t *order_id, bson_t *out, bool *found, flora_error_t *error)
{
   bson_t *filter;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(order_id);
   filter = BCON_NEW("_id", BCON_OID(order_id));
   ok = flora_store_find_one(store, ORDERS, filter, NULL, out, found, error);
   bson_destroy(filter);
   return ok;
}

bool
flora_orders_get_by_number(flora_store_t *store, const char *number, bson_t *out, bool *found,
                           flora_error_t *error)
{
   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(number);
   return flora__shop_find_by_string(store, ORDERS, "number", number, out, found, error);
}

typedef struct transition_ctx {
   const bson_oid_t *id;
   const char *to;
   const char *actor;
   const char *note;
   bson_t order; /* after */
} transition_ctx_t;

static bool
transition_txn(flora_store_t *txn, void *data, flora_error_t *error)
{
   transition_ctx_t *ctx = data;
   bson_t filter = BSON_INITIALIZER, in, arr, *update, opts = BSON_INITIALIZER, before;
   bson_iter_t it;
   int64_t now = flora__shop_now_ms();
   bool found = false, ok = false;
   uint32_t n = 0;
   char idx[16];
   const char *k;

   bson_init(&before);
   bson_reinit(&ctx->order);
   /* One conditional update: the order must be in a state that may go to `to`. */
   BSON_APPEND_OID(&filter, "_id", ctx->id);
   BSON_APPEND_DOCUMENT_BEGIN(&filter, "status", &in);
   BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
   for (size_t i = 0; i < sizeof transitions / sizeof transitions[0]; i++) {
      if (strcmp(transitions[i].to, ctx->to) == 0) {
         bson_uint32_to_string(n++, &k, idx, sizeof idx);
         BSON_APPEND_UTF8(&arr, k, transitions[i].from);
      }
   }
   bson_append_array_end(&in, &arr);
   bson_append_document_end(&filter, &in);
   if (ctx->note) {
      update = BCON_NEW("$set", "{", "status", BCON_UTF8(ctx->to), "updatedAt", BCON_DATE_TIME(now), "}", "$push", "{",
                        "statusHistory", "{", "status", BCON_UTF8(ctx->to), "at", BCON_DATE_TIME(now), "actor",
                        BCON_UTF8(ctx->actor), "note", BCON_UTF8(ctx->note), "}", "}");
   } else {
      update = BCON_NEW("$set", "{", "status", BCON_UTF8(ctx->to), "updatedAt", BCON_DATE_TIME(now), "}", "$push", "{",
                        "statusHistory", "{", "status", BCON_UTF8(ctx->to), "at", BCON_DATE_TIME(now), "actor",
                        BCON_UTF8(ctx->actor), "}", "}");
   }
   BSON_APPEND_UTF8(&opts, "returnDocument", "after");
   bson_destroy(&ctx->order);
   if (!flora_store_find_one_and_update(txn, ORDERS, &filter, update, &opts, &ctx->order, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      bson_destroy(&before);
      if (!flora_orders_get(txn, ctx->id, &before, &found, error)) {
         goto cleanup;
      }
      if (!found) {
         char hex[25];

         bson_oid_to_string(ctx->id, hex);
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no order has id %s", hex);
      } else {
         const char *from = bson_iter_init_find(&it, &before, "status") && BSON_ITER_HOLDS_UTF8(&it)
                               ? bson_iter_utf8(&it, NULL)
                               : "?";

         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                         "status: an order cannot go from %s to %s", from, ctx->to);
      }
      goto cleanup;
   }
   if (!flora__order_notify(txn, FLORA_EVENT_ORDER_STATUS_CHANGED, &ctx->order, error) ||
       (strcmp(ctx->to, "paid") == 0 && !flora__order_notify(txn, FLORA_EVENT_ORDER_PAID, &ctx->order, error)) ||
       (strcmp(ctx->to, "delivered") == 0 &&
        !flora__order_notify(txn, FLORA_EVENT_ORDER_DELIVERED, &ctx->order, error))) {
      goto cleanup;
   }
   /* Only the transaction that won the status change gets here: restock once. */
   if (strcmp(ctx->to, "cancelled") == 0) {
      bson_iter_t c, f;

      if (!flora__lines_restock(txn, &ctx->order, error)) {
         goto cleanup;
      }
      if (bson_iter_init_find(&c, &ctx->order, "delivery") && BSON_ITER_HOLDS_DOCUMENT(&c)) {
         const uint8_t *ddata;
         uint32_t len;
         bson_t delivery;

         bson_iter_document(&c, &len, &ddata);
         bson_init_static(&delivery, ddata, len);
         if (!flora__delivery_slot(txn, &delivery, true, error)) {
            goto cleanup;
         }
      }
      if (bson_iter_init_find(&c, &ctx->order, "coupon") && BSON_ITER_HOLDS_DOCUMENT(&c)) {
         const bson_oid_t *cid = NULL;
         const char *key = NULL;

         bson_iter_recurse(&c, &f);
         while (bson_iter_next(&f)) {
            if (strcmp(bson_iter_key(&f), "couponId") == 0 && BSON_ITER_HOLDS_OID(&f)) {
               cid = bson_iter_oid(&f);
            } else if (strcmp(bson_iter_key(&f), "customerKey") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
               key = bson_iter_utf8(&f, NULL);
            }
         }
         if (cid && key && !flora__coupon_release(txn, cid, key, error)) {
            goto cleanup;
         }
      }
   }
   ok = true;
cleanup:
   bson_destroy(&filter);
   bson_destroy(update);
   bson_destroy(&opts);
   bson_destroy(&before);
   return ok;
}

bool
flora_orders_transition(flora_store_t *store, const bson_oid_t *order_id, const char *to_status, const char *actor,
                        const char *note, bson_t *out, flora_error_t *error)
{
   transition_ctx_t ctx = {.id = order_id, .to = to_status, .actor = actor, .note = note};
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(order_id);
   FLORA_ASSERT_ARG(to_status);
   FLORA_ASSERT_ARG(actor);
   bson_init(&ctx.order);
   if (out) {
      bson_init(out);
   }
   if (!known_status(to_status)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "status: must be one of pending_payment, paid, assembling, ready, out_for_delivery, "
                      "delivered, cancelled, refunded");
      goto cleanup;
   }
   if (!*actor || strlen(actor) > 120 || (note && flora__utf8_length(note) > 1000)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "%s", *actor && strlen(actor) <= 120 ? "note: at most 1000 characters" : "actor: 1-120 characters");
      goto cleanup;
   }
   if (!flora_store_with_transaction(store, transition_txn, &ctx, error)) {
      goto cleanup;
   }
   if (out) {
      bson_destroy(out);
      bson_copy_to(&ctx.order, out);
   }
   ok = true;
cleanup:
   bson_destroy(&ctx.order);
   return ok;
}

bool
flora_orders_record_payment(flora_store_t *store, const bson_oid_t *order_id, const bson_t *payment,
                            flora_error_t *error)
{
   static const char *const known[] = {"status", "provider", "paymentId", "amountPaid", "amountRefunded", NULL};
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, reply;
   bson_iter_t it;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(order_id);
   FLORA_ASSERT_ARG(payment);
   bson_init(&reply);
   bson_iter_init(&it, payment);
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      bool hit = false;

      for (size_t i = 0; known[i]; i++) {
         hit = hit || strcmp(known[i], key) == 0;
      }
      if (!hit) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "payment.%s: unknown field", key);
         goto cleanup;
      }
      if ((strcmp(key, "amountPaid") == 0 || strcmp(key, "amountRefunded") == 0) &&
          (!(BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) || bson_iter_as_int64(&it) < 0)) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "payment.%s: must be a whole number of kopecks >= 0", key);
         goto cleanup;
      }
      if ((strcmp(key, "status") == 0 || strcmp(key, "provider") == 0) &&
          (!BSON_ITER_HOLDS_UTF8(&it) || !*bson_iter_utf8(&it, NULL) || strlen(bson_iter_utf8(&it, NULL)) > 40)) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "payment.%s: must be 1-40 characters",
                         key);
         goto cleanup;
      }
   }
   if (!bson_has_field(payment, "status") || !bson_has_field(payment, "provider")) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "payment: status and provider are required");
      goto cleanup;
   }
   BSON_APPEND_OID(&filter, "_id", order_id);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   bson_iter_init(&it, payment);
   while (bson_iter_next(&it)) {
      char path[48];

      snprintf(path, sizeof path, "payment.%s", bson_iter_key(&it));
      if (BSON_ITER_HOLDS_INT32(&it)) {
         BSON_APPEND_INT64(&set, path, bson_iter_as_int64(&it));
      } else {
         bson_append_iter(&set, path, -1, &it);
      }
   }
   BSON_APPEND_DATE_TIME(&set, "updatedAt", flora__shop_now_ms());
   bson_append_document_end(&update, &set);
   bson_destroy(&reply);
   if (!flora_store_update_one(store, ORDERS, &filter, &update, NULL, &reply, error)) {
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, &reply, "matchedCount") || bson_iter_as_int64(&it) == 0) {
      char hex[25];

      bson_oid_to_string(order_id, hex);
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no order has id %s", hex);
      goto cleanup;
   }
   ok = true;
cleanup:
   bson_destroy(&filter);
   bson_destroy(&update);
   bson_destroy(&reply);
   return ok;
}

bool
flora_orders_note(flora_store_t *store, const bson_oid_t *order_id, const char *actor, const char *note,
                  flora_error_t *error)
{
   bson_t order = BSON_INITIALIZER, filter = BSON_INITIALIZER, update = BSON_INITIALIZER, reply = BSON_INITIALIZER;
   bson_t push, entry, set;
   bson_iter_t it, h;
   bool found = false, ok = false;
   const char *status = NULL, *last_note = NULL;
   char text[1001];

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(order_id);
   FLORA_ASSERT_ARG(actor);
   FLORA_ASSERT_ARG(note);
   snprintf(text, sizeof text, "%s", note);
   bson_destroy(&order);
   if (!flora_orders_get(store, order_id, &order, &found, error)) {
      goto cleanup;
   }
   if (!found || !bson_iter_init_find(&it, &order, "status") || !BSON_ITER_HOLDS_UTF8(&it)) {
      char hex[25];

      bson_oid_to_string(order_id, hex);
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no order has id %s", hex);
      goto cleanup;
   }
   status = bson_iter_utf8(&it, NULL);
   if (bson_iter_init_find(&it, &order, "statusHistory") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &h)) {
      while (bson_iter_next(&h)) {
         bson_iter_t n;

         last_note = NULL;
         if (BSON_ITER_HOLDS_DOCUMENT(&h) && bson_iter_recurse(&h, &n) && bson_iter_find(&n, "note") &&
             BSON_ITER_HOLDS_UTF8(&n)) {
            last_note = bson_iter_utf8(&n, NULL);
         }
      }
   }
   if (last_note && strcmp(last_note, text) == 0) {
      ok = true; /* said already (a retry of the same thing): the history does not repeat it */
      goto cleanup;
   }
   /* The status it was read in: a concurrent transition makes this a no-op rather than a
    * note filed under the wrong status. */
   BSON_APPEND_OID(&filter, "_id", order_id);
   BSON_APPEND_UTF8(&filter, "status", status);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$push", &push);
   BSON_APPEND_DOCUMENT_BEGIN(&push, "statusHistory", &entry);
   BSON_APPEND_UTF8(&entry, "status", status);
   BSON_APPEND_DATE_TIME(&entry, "at", flora__shop_now_ms());
   BSON_APPEND_UTF8(&entry, "actor", actor);
   BSON_APPEND_UTF8(&entry, "note", text);
   bson_append_document_end(&push, &entry);
   bson_append_document_end(&update, &push);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   BSON_APPEND_DATE_TIME(&set, "updatedAt", flora__shop_now_ms());
   bson_append_document_end(&update, &set);
   bson_destroy(&reply);
   ok = flora_store_update_one(store, ORDERS, &filter, &update, NULL, &reply, error);
cleanup:
   bson_destroy(&order);
   bson_destroy(&filter);
   bson_destroy(&update);
   bson_destroy(&reply);
   return ok;
}

bool
flora_orders_list(flora_store_t *store, const flora_order_query_t *q, bson_t *out, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, sort = BSON_INITIALIZER;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(q);
   if (q->customer) {
      char key[200];

      flora_customer_key(q->customer, key, sizeof key);
      BSON_APPEND_UTF8(&filter, "customerKey", key);
   }
   if (q->status) {
      BSON_APPEND_UTF8(&filter, "status", q->status);
   }
   if (q->delivery_date) {
      BSON_APPEND_UTF8(&filter, "delivery.date", q->delivery_date);
   }
   if (q->created_from_ms >= 0 || q->created_to_ms >= 0) {
      bson_t range;

      BSON_APPEND_DOCUMENT_BEGIN(&filter, "createdAt", &range);
      if (q->created_from_ms >= 0) {
         BSON_APPEND_DATE_TIME(&range, "$gte", q->created_from_ms);
      }
      if (q->created_to_ms >= 0) {
         BSON_APPEND_DATE_TIME(&range, "$lt", q->created_to_ms);
      }
      bson_append_document_end(&filter, &range);
   }
   switch (q->sort) {
   case FLORA_ORDER_SORT_OLDEST:
      BSON_APPEND_INT32(&sort, "createdAt", 1);
      break;
   case FLORA_ORDER_SORT_DELIVERY:
      BSON_APPEND_INT32(&sort, "delivery.date", 1);
      BSON_APPEND_INT32(&sort, "createdAt", 1);
      break;
   case FLORA_ORDER_SORT_NEWEST:
      BSON_APPEND_INT32(&sort, "createdAt", -1);
      break;
   }
   BSON_APPEND_INT32(&sort, "_id", q->sort == FLORA_ORDER_SORT_NEWEST ? -1 : 1);
   ok = flora__find_page(store, ORDERS, &filter, &sort, q->page, q->page_size, out, error);
   bson_destroy(&filter);
   bson_destroy(&sort);
   return ok;
}
