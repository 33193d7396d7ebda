/* The payments service (include/flora/pay.h): attempts recorded before and after every
 * provider call, results applied monotonically (a status rank) together with the order in
 * one transaction, webhooks stored under a unique id and applied exactly once, and
 * reconciliation of calls that never got an answer. */
#include "pay_private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "flora/shop.h"

#define PAYMENTS "payments"
#define EVENTS "webhook_events"

static const flora_pay_provider_t *const providers[] = {&flora_pay_stripe, &flora_pay_paypal,
                                                         &flora_pay_yookassa, NULL};

static const char *const statuses[] = {"created",  "pending",  "requires_action",
                                       "failed",   "authorized", "canceled",
                                       "captured", "partially_refunded", "refunded", NULL};

const flora_pay_provider_t *
flora_pay_provider(const char *name)
{
   for (size_t i = 0; name && providers[i]; i++) {
      if (strcmp(providers[i]->name, name) == 0) {
         return providers[i];
      }
   }
   return NULL;
}

const char *const *
flora_pay_statuses(void)
{
   return statuses;
}

int
flora_pay_status_rank(const char *status)
{
   for (int i = 0; status && statuses[i]; i++) {
      if (strcmp(statuses[i], status) == 0) {
         return i;
      }
   }
   return -1;
}

static int64_t
default_now(void)
{
   return (int64_t) time(NULL);
}

int64_t
flora__pay_now(const flora_pay_t *pay)
{
   return pay->options.now_s ? pay->options.now_s() : default_now();
}

static int64_t
now_ms(const flora_pay_t *pay)
{
   return flora__pay_now(pay) * 1000;
}

bool
flora_pay_new(flora_pay_t **out, flora_store_t *store, const flora_config_t *config,
              const flora_pay_orders_t *orders, const flora_pay_options_t *options,
              flora_error_t *error)
{
   flora_pay_t *pay;
   flora_pay_options_t defaults = FLORA_PAY_OPTIONS_INIT;

   FLORA_ASSERT_ARG(out && store && config && orders);
   *out = NULL;
   pay = calloc(1, sizeof *pay);
   if (!pay) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      return false;
   }
   pay->store = store;
   pay->config = config;
   pay->orders = orders;
   pay->options = options ? *options : defaults;
   pthread_mutex_init(&pay->token.lock, NULL);
   *out = pay;
   return true;
}

void
flora_pay_destroy(flora_pay_t *pay)
{
   if (!pay) {
      return;
   }
   pthread_mutex_destroy(&pay->token.lock);
   bson_free(pay->token.token);
   free(pay);
}

const flora_config_t *
flora_pay_config(const flora_pay_t *pay)
{
   return pay->config;
}

/* ---- helpers --------------------------------------------------------------------- */

static bool
is_conflict(const flora_error_t *e)
{
   return e->domain == FLORA_DOMAIN_SHOP && e->code == FLORA_ERR_CONFLICT;
}

static bool
get_oid(const bson_t *doc, const char *key, bson_oid_t *out)
{
   bson_iter_t it;

   if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_OID(&it)) {
      return false;
   }
   bson_oid_copy(bson_iter_oid(&it), out);
   return true;
}

static int64_t
get_i64(const bson_t *doc, const char *path)
{
   int64_t v = 0;

   flora__pay_int64(doc, path, &v);
   return v;
}

static void
append_date(bson_t *doc, const char *key, int64_t ms)
{
   BSON_APPEND_DATE_TIME(doc, key, ms);
}

static bool
find_payment(flora_store_t *store, const bson_oid_t *id, bson_t *out, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bool found = false, ok;

   BSON_APPEND_OID(&filter, "_id", id);
   ok = flora_store_find_one(store, PAYMENTS, &filter, NULL, out, &found, error);
   bson_destroy(&filter);
   if (ok && !found) {
      char hex[25];

      bson_oid_to_string(id, hex);
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "payment %s not found", hex);
      return false;
   }
   return ok;
}

/* The public view of a payment: everything but the provider call log. */
static void
public_view(const bson_t *payment, bson_t *out)
{
   bson_copy_to_excluding_noinit(payment, out, "providerRequests", NULL);
}

/* ---- applying a provider result -------------------------------------------------- */

typedef struct apply_ctx {
   flora_pay_t *pay;
   bson_oid_t payment_id;
   bool by_provider_id;            /* find the payment by (provider, provider id) instead */
   const char *provider;
   const flora_pay_result_t *result; /* may be NULL */
   const char *source;             /* "api", "webhook:<id>", "reconcile" */
   const char *operation;          /* clears pending of this operation, or NULL */
   const char *outcome;            /* providerRequests outcome to record, or NULL */
   const char *call_error;         /* its message */
   const char *forced_status;      /* e.g. "failed" after a refused create */
   int64_t refund_add;             /* a refund's amount */
   /* webhook */
   const char *event_key;          /* webhook_events key, or NULL */
   const char *event_id;
   const char *event_type;
   bool event_relevant;
   /* out */
   bool duplicate;
   bool rejected;
   bool changed;
   char reason[300];
   bson_t after;
   bool have_after;
   bool settle_order;              /* money arrived for a cancelled order: give it back */
   bson_oid_t order_id;            /* ... this one, after the transaction commits */
} apply_ctx_t;

static bool
insert_event(flora_store_t *txn, apply_ctx_t *c, const char *status, const bson_oid_t *payment_id,
             flora_error_t *error)
{
   bson_t doc = BSON_INITIALIZER, prepared;
   bool ok;

   BSON_APPEND_UTF8(&doc, "key", c->event_key);
   BSON_APPEND_UTF8(&doc, "provider", c->provider);
   BSON_APPEND_UTF8(&doc, "eventId", c->event_id);
   BSON_APPEND_UTF8(&doc, "type", c->event_type);
   BSON_APPEND_UTF8(&doc, "status", status);
   if (payment_id) {
      BSON_APPEND_OID(&doc, "paymentId", payment_id);
   }
   if (c->result && c->result->provider_payment_id) {
      BSON_APPEND_UTF8(&doc, "providerPaymentId", c->result->provider_payment_id);
   }
   if (c->reason[0]) {
      BSON_APPEND_UTF8(&doc, "reason", c->reason);
   }
   ok = flora_schema_prepare_insert(&flora_schema_webhook_events, &doc, now_ms(c->pay), &prepared,
                                    error) &&
        flora_store_insert_one(txn, EVENTS, &prepared, NULL, NULL, error);
   bson_destroy(&prepared);
   bson_destroy(&doc);
   return ok;
}

static bool
order_effects(flora_store_t *txn, apply_ctx_t *c, const bson_t *after, const char *old_status,
              flora_error_t *error)
{
   const flora_pay_orders_t *orders = c->pay->orders;
   const char *status = flora__pay_str(after, "status");
   const char *provider = flora__pay_str(after, "provider");
   int captured = flora_pay_status_rank("captured");
   int old_rank = flora_pay_status_rank(old_status), new_rank = flora_pay_status_rank(status);
   bson_oid_t order_id, pid;
   bson_t summary = BSON_INITIALIZER;
   char actor[64];
   flora_error_t err;
   const char *to = NULL;
   bool ok;

   if (!get_oid(after, "orderId", &order_id) || !get_oid(after, "_id", &pid)) {
      bson_destroy(&summary);
      return true;
   }
   BSON_APPEND_UTF8(&summary, "status", status);
   BSON_APPEND_UTF8(&summary, "provider", provider);
   BSON_APPEND_OID(&summary, "paymentId", &pid);
   BSON_APPEND_INT64(&summary, "amountPaid", get_i64(after, "amountCaptured"));
   BSON_APPEND_INT64(&summary, "amountRefunded", get_i64(after, "amountRefunded"));
   ok = orders->record_payment(txn, &order_id, &summary, error);
   bson_destroy(&summary);
   if (!ok) {
      return false;
   }
   if (strcmp(status, "authorized") == 0 || strcmp(status, "captured") == 0) {
      bson_t order = BSON_INITIALIZER;
      bool found = false;
      const char *ostatus;

      bson_destroy(&order);
      if (!orders->get(txn, &order_id, &order, &found, error)) {
         bson_destroy(&order);
         return false;
      }
      ostatus = found ? flora__pay_str(&order, "status") : NULL;
      if (ostatus && (strcmp(ostatus, "cancelled") == 0 || strcmp(ostatus, "refunded") == 0)) {
         char note[300], hex[25];

         /* Money held or taken for an order that is already cancelled (the buyer paid in
          * another tab, a late webhook): it goes back, by flora_pay_settle_order once this
          * transaction commits, and the order's history says why. */
         bson_oid_to_string(&pid, hex);
         snprintf(note, sizeof note,
                  "payment %s (%s) was %s after the order was %s: the money is returned automatically",
                  hex, provider, status, ostatus);
         snprintf(actor, sizeof actor, "payment:%s", provider);
         ok = !orders->note || orders->note(txn, &order_id, actor, note, error);
         if (ok) {
            c->settle_order = true;
            c->order_id = order_id;
            FLORA_LOG_WARN(FLORA_PAY_LOG, "payment for a closed order", "payment", hex, "status", status,
                           "order_status", ostatus, "source", c->source);
         }
         bson_destroy(&order);
         return ok;
      }
      bson_destroy(&order);
   }
   if (old_rank < captured && new_rank >= captured) {
      to = "paid";
   }
   if (strcmp(status, "refunded") == 0 && strcmp(old_status, "refunded") != 0) {
      to = "refunded";
   }
   if (!to) {
      return true;
   }
   snprintf(actor, sizeof actor, "payment:%s", provider);
   flora_error_clear(&err);
   if (!orders->transition(txn, &order_id, to, actor, c->source, NULL, &err)) {
      if (!is_conflict(&err)) {
         if (error) {
            *error = err;
         }
         return false;
      }
      /* The order moved on (e.g. cancelled before the money arrived): the payment keeps the
       * truth, a manager decides (refund). */
      FLORA_LOG_WARN(FLORA_PAY_LOG, "order not moved", "to", to, "reason", err.message,
                     "source", c->source);
   }
   return true;
}

static bool
apply_txn(flora_store_t *txn, void *ctx, flora_error_t *error)
{
   apply_ctx_t *c = ctx;
   const flora_pay_result_t *r = c->result;
   bson_t payment = BSON_INITIALIZER, filter = BSON_INITIALIZER, update = BSON_INITIALIZER;
   bson_t set, unset, push, prepared, reply;
   bool found = false, ok = false, write = false;
   const char *old_status, *new_status = NULL, *currency;
   int64_t amount, authorized, captured, refunded, n_authorized, n_captured, n_refunded;
   bson_oid_t pid;

   c->duplicate = c->rejected = c->changed = c->settle_order = false;
   c->reason[0] = '\0';
   if (c->have_after) {
      bson_destroy(&c->after);
      c->have_after = false;
   }
   bson_destroy(&payment);
   if (c->event_key) {
      bson_t ef = BSON_INITIALIZER, existing;

      BSON_APPEND_UTF8(&ef, "key", c->event_key);
      ok = flora_store_find_one(txn, EVENTS, &ef, NULL, &existing, &found, error);
      bson_destroy(&ef);
      bson_destroy(&existing);
      if (!ok) {
         bson_init(&payment);
         goto cleanup;
      }
      if (found) {
         c->duplicate = true;
         bson_init(&payment);
         goto cleanup;
      }
      if (!c->event_relevant) {
         snprintf(c->reason, sizeof c->reason, "event type %s is not acted on", c->event_type);
         ok = insert_event(txn, c, "ignored", NULL, error);
         bson_init(&payment);
         goto cleanup;
      }
   }
   if (c->by_provider_id) {
      bson_t pf = BSON_INITIALIZER;

      BSON_APPEND_UTF8(&pf, "provider", c->provider);
      BSON_APPEND_UTF8(&pf, "providerPaymentId", r->provider_payment_id);
      ok = flora_store_find_one(txn, PAYMENTS, &pf, NULL, &payment, &found, error);
      bson_destroy(&pf);
      if (!ok) {
         goto cleanup;
      }
      if (!found) {
         snprintf(c->reason, sizeof c->reason, "no payment with %s id %s", c->provider,
                  r->provider_payment_id);
         ok = c->event_key ? insert_event(txn, c, "ignored", NULL, error) : true;
         goto cleanup;
      }
      get_oid(&payment, "_id", &c->payment_id);
   } else {
      bson_t pf = BSON_INITIALIZER;

      BSON_APPEND_OID(&pf, "_id", &c->payment_id);
      ok = flora_store_find_one(txn, PAYMENTS, &pf, NULL, &payment, &found, error);
      bson_destroy(&pf);
      if (ok && !found) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "payment not found");
         ok = false;
      }
      if (!ok) {
         goto cleanup;
      }
   }
   ok = false;
   pid = c->payment_id;
   old_status = flora__pay_str(&payment, "status");
   currency = flora__pay_str(&payment, "currency");
   amount = get_i64(&payment, "amount");
   authorized = n_authorized = get_i64(&payment, "amountAuthorized");
   captured = n_captured = get_i64(&payment, "amountCaptured");
   refunded = n_refunded = get_i64(&payment, "amountRefunded");
   if (r) {
      if (r->currency && currency && strcasecmp(r->currency, currency) != 0) {
         snprintf(c->reason, sizeof c->reason, "currency %s does not match the payment's %s",
                  r->currency, currency);
         c->rejected = true;
      } else if (r->amount > 0 && r->amount != amount) {
         snprintf(c->reason, sizeof c->reason,
                  "amount %" PRId64 " does not match the payment's %" PRId64, r->amount, amount);
         c->rejected = true;
      }
      if (r->amount_authorized > n_authorized) {
         n_authorized = r->amount_authorized;
      }
      if (r->amount_captured > n_captured) {
         n_captured = r->amount_captured;
      }
      if (c->refund_add > 0) {
         n_refunded = refunded + c->refund_add;
      } else if (r->amount_refunded > n_refunded) {
         n_refunded = r->amount_refunded;
      }
      if (!c->rejected && (n_captured > amount || n_refunded > n_captured)) {
         snprintf(c->reason, sizeof c->reason,
                  "captured %" PRId64 " / refunded %" PRId64 " exceed the payment's %" PRId64,
                  n_captured, n_refunded, amount);
         c->rejected = true;
      }
      /* Money taken without our partial capture of an authorisation must be the whole
       * amount: an order is paid only for the right amount. */
      if (!c->rejected && r->status &&
          flora_pay_status_rank(r->status) >= flora_pay_status_rank("captured") &&
          flora_pay_status_rank(old_status) < flora_pay_status_rank("captured") &&
          strcmp(old_status, "authorized") != 0 && n_captured != amount) {
         snprintf(c->reason, sizeof c->reason,
                  "captured %" PRId64 " does not match the payment's %" PRId64, n_captured, amount);
         c->rejected = true;
      }
      new_status = r->status;
      if (n_refunded > 0 && n_captured > 0) {
         new_status = n_refunded >= n_captured ? "refunded" : "partially_refunded";
      }
   }
   if (c->forced_status) {
      new_status = c->forced_status;
   }
   if (c->rejected) {
      FLORA_LOG_WARN(FLORA_PAY_LOG, "provider result rejected", "reason", c->reason, "source",
                     c->source);
      if (c->event_key) {
         ok = insert_event(txn, c, "rejected", &pid, error);
      } else {
         flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID, "%s", c->reason);
      }
      goto cleanup;
   }
   BSON_APPEND_OID(&filter, "_id", &pid);
   BSON_APPEND_UTF8(&filter, "status", old_status);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   if (new_status && flora_pay_status_rank(new_status) > flora_pay_status_rank(old_status)) {
      BSON_APPEND_UTF8(&set, "status", new_status);
      write = true;
      c->changed = true;
   } else {
      new_status = old_status;
   }
   if (n_authorized != authorized) {
      BSON_APPEND_INT64(&set, "amountAuthorized", n_authorized);
      write = true;
      c->changed = true;
   }
   if (n_captured != captured) {
      BSON_APPEND_INT64(&set, "amountCaptured", n_captured);
      write = true;
      c->changed = true;
   }
   if (n_refunded != refunded) {
      BSON_APPEND_INT64(&set, "amountRefunded", n_refunded);
      write = true;
      c->changed = true;
   }
   if (r && r->provider_payment_id && !flora__pay_str(&payment, "providerPaymentId")) {
      BSON_APPEND_UTF8(&set, "providerPaymentId", r->provider_payment_id);
      write = true;
   }
   if (r && r->capture_id && !flora__pay_str(&payment, "captureId")) {
      BSON_APPEND_UTF8(&set, "captureId", r->capture_id);
      write = true;
   }
   if (r && r->client.len > 5) {
      bson_iter_t ci;

      if (!bson_iter_init_find(&ci, &payment, "client")) {
         BSON_APPEND_DOCUMENT(&set, "client", &r->client);
         write = true;
      }
   }
   bson_append_document_end(&update, &set);
   if (c->operation) {
      const char *pending_op = flora__pay_str(&payment, "pending.operation");

      if (pending_op && strcmp(pending_op, c->operation) == 0) {
         BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
         BSON_APPEND_UTF8(&unset, "pending", "");
         write = true;
         bson_append_document_end(&update, &unset);
      }
   }
   bson_init(&push);
   if (new_status != old_status) {
      bson_t h;

      BSON_APPEND_DOCUMENT_BEGIN(&push, "statusHistory", &h);
      BSON_APPEND_UTF8(&h, "status", new_status);
      append_date(&h, "at", now_ms(c->pay));
      BSON_APPEND_UTF8(&h, "source", c->source);
      bson_append_document_end(&push, &h);
   }
   if (c->outcome && c->operation) {
      const char *key = flora__pay_str(&payment, "pending.idempotencyKey");
      bson_t q;

      BSON_APPEND_DOCUMENT_BEGIN(&push, "providerRequests", &q);
      BSON_APPEND_UTF8(&q, "operation", c->operation);
      BSON_APPEND_UTF8(&q, "idempotencyKey", key ? key : "");
      BSON_APPEND_INT64(&q, "amount", get_i64(&payment, "pending.amount"));
      BSON_APPEND_UTF8(&q, "outcome", c->outcome);
      if (c->call_error) {
         char msg[600];

         snprintf(msg, sizeof msg, "%s", c->call_error);
         BSON_APPEND_UTF8(&q, "error", msg);
      }
      append_date(&q, "at", now_ms(c->pay));
      bson_append_document_end(&push, &q);
   }
   if (!bson_empty(&push)) {
      BSON_APPEND_DOCUMENT(&update, "$push", &push);
      write = true;
   }
   bson_destroy(&push);
   /* Nothing new (a reconcile that found the same state): no write at all. */
   if (write) {
      if (!flora_schema_prepare_update(&flora_schema_payments, &update, now_ms(c->pay),
                                       &prepared, error)) {
         bson_destroy(&prepared);
         goto cleanup;
      }
      ok = flora_store_update_one(txn, PAYMENTS, &filter, &prepared, NULL, &reply, error);
      bson_destroy(&prepared);
      if (ok && get_i64(&reply, "matchedCount") == 0) {
         /* Another writer moved it between our read and write inside this transaction:
          * a write conflict; the whole transaction is retried. */
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_WRITE_CONFLICT,
                         "payment changed concurrently");
         ok = false;
      }
      bson_destroy(&reply);
      if (!ok) {
         goto cleanup;
      }
   }
   bson_init(&c->after);
   c->have_after = true;
   ok = find_payment(txn, &pid, &c->after, error);
   if (ok && new_status != old_status) {
      ok = order_effects(txn, c, &c->after, old_status, error);
   }
   if (ok && c->event_key) {
      if (!c->changed) {
         snprintf(c->reason, sizeof c->reason, "stale or repeated: the payment is already %s",
                  old_status);
      }
      ok = insert_event(txn, c, c->changed ? "applied" : "ignored", &pid, error);
   }
cleanup:
   bson_destroy(&payment);
   bson_destroy(&filter);
   bson_destroy(&update);
   return ok;
}

static bool
apply(apply_ctx_t *c, flora_error_t *error)
{
   c->have_after = false;
   if (!flora_store_with_transaction(c->pay->store, apply_txn, c, error)) {
      return false;
   }
   if (c->settle_order) {
      flora_error_t err;
      char hex[25];

      /* The change itself is committed; a refund that fails now stays recorded on the
       * payment and flora_pay_reconcile's order pass retries it. */
      flora_error_clear(&err);
      if (!flora_pay_settle_order(c->pay, &c->order_id, NULL, &err)) {
         bson_oid_to_string(&c->order_id, hex);
         FLORA_LOG_WARN(FLORA_PAY_LOG, "automatic refund failed", "order", hex, "error", err.message);
      }
   }
   return true;
}

static void
apply_done(apply_ctx_t *c)
{
   if (c->have_after) {
      bson_destroy(&c->after);
      c->have_after = false;
   }
}

/* ---- recording a call before it is made ----------------------------------------- */

/* One conditional update: the payment is in one of `allowed` statuses, has no call in
 * flight, and (when check_amounts) its captured/refunded amounts are still the ones read;
 * it records pending {operation, key, amount} and a "calling <operation>" entry. */
static bool
claim(flora_pay_t *pay, const bson_oid_t *id, const char *const *allowed, const char *operation,
      const char *key, int64_t amount, const bson_t *read, const char *source, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, in, arr, set, pend, push, h, q;
   bson_t prepared, reply;
   char calling[48];
   bool ok;

   BSON_APPEND_OID(&filter, "_id", id);
   BSON_APPEND_DOCUMENT_BEGIN(&filter, "status", &in);
   BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
   for (uint32_t i = 0; allowed[i]; i++) {
      char k[8];

      snprintf(k, sizeof k, "%u", i);
      BSON_APPEND_UTF8(&arr, k, allowed[i]);
   }
   bson_append_array_end(&in, &arr);
   bson_append_document_end(&filter, &in);
   BSON_APPEND_NULL(&filter, "pending");
   if (read) {
      BSON_APPEND_INT64(&filter, "amountCaptured", get_i64(read, "amountCaptured"));
      BSON_APPEND_INT64(&filter, "amountRefunded", get_i64(read, "amountRefunded"));
   }
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   BSON_APPEND_DOCUMENT_BEGIN(&set, "pending", &pend);
   BSON_APPEND_UTF8(&pend, "operation", operation);
   BSON_APPEND_UTF8(&pend, "idempotencyKey", key);
   BSON_APPEND_INT64(&pend, "amount", amount);
   append_date(&pend, "since", now_ms(pay));
   bson_append_document_end(&set, &pend);
   bson_append_document_end(&update, &set);
   snprintf(calling, sizeof calling, "calling %s", operation);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$push", &push);
   BSON_APPEND_DOCUMENT_BEGIN(&push, "statusHistory", &h);
   BSON_APPEND_UTF8(&h, "status", calling);
   append_date(&h, "at", now_ms(pay));
   BSON_APPEND_UTF8(&h, "source", source);
   BSON_APPEND_UTF8(&h, "idempotencyKey", key);
   bson_append_document_end(&push, &h);
   BSON_APPEND_DOCUMENT_BEGIN(&push, "providerRequests", &q);
   BSON_APPEND_UTF8(&q, "operation", operation);
   BSON_APPEND_UTF8(&q, "idempotencyKey", key);
   BSON_APPEND_INT64(&q, "amount", amount);
   BSON_APPEND_UTF8(&q, "outcome", "calling");
   append_date(&q, "at", now_ms(pay));
   bson_append_document_end(&push, &q);
   bson_append_document_end(&update, &push);
   ok = flora_schema_prepare_update(&flora_schema_payments, &update, now_ms(pay), &prepared,
                                    error) &&
        flora_store_update_one(pay->store, PAYMENTS, &filter, &prepared, NULL, &reply, error);
   if (ok && get_i64(&reply, "matchedCount") == 0) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                      "the payment cannot be %s now (its status does not allow it, or another "
                      "operation is in progress)",
                      strcmp(operation, "cancel") == 0 ? "cancelled" : operation);
      ok = false;
   }
   bson_destroy(&prepared);
   bson_destroy(&reply);
   bson_destroy(&filter);
   bson_destroy(&update);
   return ok;
}

/* Records the answer (or its absence) of a call: ok applies the result; a refusal clears
 * pending (forced_status for a refused create); no answer leaves pending for reconcile. */
static bool
record_answer(flora_pay_t *pay, const bson_oid_t *id, const char *operation,
              const flora_pay_result_t *result, int64_t refund_add, const flora_error_t *call_err,
              const char *source, bson_t *out, flora_error_t *error)
{
   apply_ctx_t c = {0};
   bool ok;

   c.pay = pay;
   c.payment_id = *id;
   c.operation = operation;
   c.source = source;
   c.result = call_err ? NULL : result;
   c.refund_add = refund_add;
   if (call_err) {
      bool unknown = call_err->domain == FLORA_DOMAIN_PROVIDER &&
                     call_err->code == FLORA_ERR_UNAVAILABLE;

      c.outcome = unknown ? "unknown" : "error";
      c.call_error = call_err->message;
      if (unknown) {
         c.operation = NULL; /* keep pending: reconcile repeats the call with its key */
         c.outcome = NULL;
      } else if (strcmp(operation, "create") == 0) {
         c.forced_status = "failed";
      }
   } else {
      c.outcome = "ok";
   }
   ok = apply(&c, error);
   if (ok && out && c.have_after) {
      public_view(&c.after, out);
   }
   apply_done(&c);
   return ok;
}

/* ---- create --------------------------------------------------------------------- */

static bool
order_amount(const bson_t *order, int64_t *amount, const char **currency, flora_error_t *error)
{
   *currency = flora__pay_str(order, "currency");
   if (!flora__pay_int64(order, "totals.total", amount) || !*currency || *amount <= 0) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_INVALID,
                      "the order has no positive totals.total and currency");
      return false;
   }
   return true;
}

/* Calls the provider's create for a recorded attempt and records the answer. */
static bool
run_create(flora_pay_t *pay, const flora_pay_provider_t *provider, const bson_t *payment,
           const bson_t *order, const char *source, bson_t *out, flora_error_t *error)
{
   flora_pay_create_t req = {0};
   flora_pay_result_t result = {0};
   flora_error_t call_err;
   bson_oid_t id;
   char hex[25];
   bool called, ok;

   get_oid(payment, "_id", &id);
   bson_oid_to_string(&id, hex);
   req.payment_id = hex;
   req.order_number = flora__pay_str(payment, "orderNumber");
   req.order = order;
   req.amount = get_i64(payment, "amount");
   req.currency = flora__pay_str(payment, "currency");
   req.idempotency_key = flora__pay_str(payment, "idempotencyKey");
   req.return_url = flora_config_string(pay->config, "pay.return_url");
   flora_error_clear(&call_err);
   called = provider->create(pay, &req, &result, &call_err);
   ok = record_answer(pay, &id, "create", &result, 0, called ? NULL : &call_err, source, out,
                      error);
   flora_pay_result_cleanup(&result);
   if (ok && !called) {
      if (error) {
         *error = call_err;
      }
      return false;
   }
   return ok;
}

/* Records a new attempt (status created, the create call pending with its key) and reads
 * it back into *payment (initialised here, also on failure). */
static bool
new_attempt(flora_pay_t *pay, const char *provider, const bson_t *order, bson_t *payment,
            flora_error_t *error)
{
   bson_t doc = BSON_INITIALIZER, hist, h, reqs, q, pend;
   bson_oid_t id, order_id;
   int64_t amount, ms = now_ms(pay);
   const char *currency;
   char hex[25], *key;
   bool ok;

   bson_init(payment);
   if (!order_amount(order, &amount, &currency, error) || !get_oid(order, "_id", &order_id)) {
      bson_destroy(&doc);
      return false;
   }
   bson_oid_init(&id, NULL);
   bson_oid_to_string(&id, hex);
   key = bson_strdup_printf("%s:create:%" PRId64, hex, amount);
   BSON_APPEND_OID(&doc, "_id", &id);
   BSON_APPEND_OID(&doc, "orderId", &order_id);
   BSON_APPEND_UTF8(&doc, "orderNumber", flora__pay_str(order, "number"));
   BSON_APPEND_UTF8(&doc, "provider", provider);
   BSON_APPEND_UTF8(&doc, "status", "created");
   BSON_APPEND_INT64(&doc, "amount", amount);
   BSON_APPEND_INT64(&doc, "amountAuthorized", 0);
   BSON_APPEND_INT64(&doc, "amountCaptured", 0);
   BSON_APPEND_INT64(&doc, "amountRefunded", 0);
   BSON_APPEND_UTF8(&doc, "currency", currency);
   BSON_APPEND_UTF8(&doc, "idempotencyKey", key);
   BSON_APPEND_DOCUMENT_BEGIN(&doc, "pending", &pend);
   BSON_APPEND_UTF8(&pend, "operation", "create");
   BSON_APPEND_UTF8(&pend, "idempotencyKey", key);
   BSON_APPEND_INT64(&pend, "amount", amount);
   append_date(&pend, "since", ms);
   bson_append_document_end(&doc, &pend);
   BSON_APPEND_ARRAY_BEGIN(&doc, "statusHistory", &hist);
   BSON_APPEND_DOCUMENT_BEGIN(&hist, "0", &h);
   BSON_APPEND_UTF8(&h, "status", "created");
   append_date(&h, "at", ms);
   BSON_APPEND_UTF8(&h, "source", "api");
   bson_append_document_end(&hist, &h);
   BSON_APPEND_DOCUMENT_BEGIN(&hist, "1", &h);
   BSON_APPEND_UTF8(&h, "status", "calling create");
   append_date(&h, "at", ms);
   BSON_APPEND_UTF8(&h, "source", "api");
   BSON_APPEND_UTF8(&h, "idempotencyKey", key);
   bson_append_document_end(&hist, &h);
   bson_append_array_end(&doc, &hist);
   BSON_APPEND_ARRAY_BEGIN(&doc, "providerRequests", &reqs);
   BSON_APPEND_DOCUMENT_BEGIN(&reqs, "0", &q);
   BSON_APPEND_UTF8(&q, "operation", "create");
   BSON_APPEND_UTF8(&q, "idempotencyKey", key);
   BSON_APPEND_INT64(&q, "amount", amount);
   BSON_APPEND_UTF8(&q, "outcome", "calling");
   append_date(&q, "at", ms);
   bson_append_document_end(&reqs, &q);
   bson_append_array_end(&doc, &reqs);
   bson_free(key);
   ok = flora_model_insert(pay->store, &flora_schema_payments, &doc, NULL, NULL, error);
   if (ok) {
      bson_destroy(payment);
      ok = find_payment(pay->store, &id, payment, error);
   }
   bson_destroy(&doc);
   return ok;
}

static bool
lookup_provider(flora_pay_t *pay, const char *name, const flora_pay_provider_t **out,
                flora_error_t *error)
{
   *out = flora_pay_provider(name);
   if (!*out) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "unknown payment provider \"%s\" (stripe, paypal, yookassa)",
                      name ? name : "");
      return false;
   }
   if (!(*out)->configured(pay->config)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_UNAVAILABLE,
                      "payment provider %s is not configured", name);
      return false;
   }
   return true;
}

static void
client_answer(const bson_t *payment, bson_t *out)
{
   bson_iter_t it;
   bson_oid_t id;

   get_oid(payment, "_id", &id);
   BSON_APPEND_OID(out, "paymentId", &id);
   BSON_APPEND_UTF8(out, "provider", flora__pay_str(payment, "provider"));
   BSON_APPEND_UTF8(out, "status", flora__pay_str(payment, "status"));
   BSON_APPEND_INT64(out, "amount", get_i64(payment, "amount"));
   BSON_APPEND_UTF8(out, "currency", flora__pay_str(payment, "currency"));
   if (bson_iter_init_find(&it, payment, "client") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_append_iter(out, "client", -1, &it);
   } else {
      bson_t empty = BSON_INITIALIZER;

      BSON_APPEND_DOCUMENT(out, "client", &empty);
      bson_destroy(&empty);
   }
}

bool
flora_pay_create_payment(flora_pay_t *pay, const char *order_number, const char *provider_name,
                         bson_t *out, flora_error_t *error)
{
   const flora_pay_provider_t *provider;
   bson_t order = BSON_INITIALIZER, payment = BSON_INITIALIZER, after = BSON_INITIALIZER;
   bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
   bool found = false, ok = false;
   const char *status, *currency;
   int64_t amount;
   bson_oid_t order_id;

   FLORA_ASSERT_ARG(pay && order_number);
   if (out) {
      bson_init(out);
   }
   bson_destroy(&order);
   bson_destroy(&payment);
   if (!lookup_provider(pay, provider_name, &provider, error)) {
      bson_init(&order);
      bson_init(&payment);
      goto cleanup;
   }
   bson_init(&payment);
   if (!pay->orders->get_by_number(pay->store, order_number, &order, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "order %s not found",
                      order_number);
      goto cleanup;
   }
   status = flora__pay_str(&order, "status");
   if (!status || strcmp(status, "pending_payment") != 0) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                      "order %s is %s, not awaiting payment", order_number,
                      status ? status : "without status");
      goto cleanup;
   }
   if (!order_amount(&order, &amount, &currency, error) || !get_oid(&order, "_id", &order_id)) {
      goto cleanup;
   }
   /* A second click reuses the open attempt with this provider and amount. */
   {
      bson_t in, arr;

      BSON_APPEND_OID(&filter, "orderId", &order_id);
      BSON_APPEND_UTF8(&filter, "provider", provider->name);
      BSON_APPEND_INT64(&filter, "amount", amount);
      BSON_APPEND_UTF8(&filter, "currency", currency);
      BSON_APPEND_DOCUMENT_BEGIN(&filter, "status", &in);
      BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
      BSON_APPEND_UTF8(&arr, "0", "created");
      BSON_APPEND_UTF8(&arr, "1", "requires_action");
      BSON_APPEND_UTF8(&arr, "2", "pending");
      bson_append_array_end(&in, &arr);
      bson_append_document_end(&filter, &in);
      BCON_APPEND(&opts, "sort", "{", "createdAt", BCON_INT32(-1), "}");
   }
   if (!flora_store_find_one(pay->store, PAYMENTS, &filter, &opts, &payment, &found, error)) {
      goto cleanup;
   }
   if (found && flora__pay_str(&payment, "pending.operation") == NULL &&
       flora__pay_str(&payment, "providerPaymentId")) {
      if (out) {
         client_answer(&payment, out);
      }
      ok = true;
      goto cleanup;
   }
   if (!found) {
      bson_destroy(&payment);
      if (!new_attempt(pay, provider->name, &order, &payment, error)) {
         goto cleanup;
      }
   }
   if (!run_create(pay, provider, &payment, &order, "api", &after, error)) {
      goto cleanup;
   }
   if (out) {
      client_answer(&after, out);
   }
   ok = true;
cleanup:
   bson_destroy(&filter);
   bson_destroy(&opts);
   bson_destroy(&order);
   bson_destroy(&payment);
   bson_destroy(&after);
   return ok;
}

bool
flora_pay_list_payments(flora_pay_t *pay, const char *order_number, bson_t *out,
                        flora_error_t *error)
{
   bson_t order = BSON_INITIALIZER, filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   bool found = false, ok = false;
   bson_oid_t order_id;
   uint32_t n = 0;

   FLORA_ASSERT_ARG(pay && order_number && out);
   bson_init(out);
   bson_destroy(&order);
   if (!pay->orders->get_by_number(pay->store, order_number, &order, &found, error)) {
      goto cleanup;
   }
   if (!found || !get_oid(&order, "_id", &order_id)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "order %s not found",
                      order_number);
      goto cleanup;
   }
   BSON_APPEND_OID(&filter, "orderId", &order_id);
   BCON_APPEND(&opts, "sort", "{", "createdAt", BCON_INT32(-1), "_id", BCON_INT32(-1), "}",
               "projection", "{", "providerRequests", BCON_INT32(0), "}");
   if (!flora_store_find(pay->store, PAYMENTS, &filter, &opts, &cursor, error)) {
      goto cleanup;
   }
   while (flora_cursor_next(cursor, &doc)) {
      char k[16];

      snprintf(k, sizeof k, "%u", n++);
      BSON_APPEND_DOCUMENT(out, k, doc);
   }
   ok = !flora_cursor_error(cursor, error);
cleanup:
   flora_cursor_destroy(cursor);
   bson_destroy(&order);
   bson_destroy(&filter);
   bson_destroy(&opts);
   return ok;
}

bool
flora_pay_get_payment(flora_pay_t *pay, const bson_oid_t *payment_id, bson_t *out,
                      flora_error_t *error)
{
   bson_t doc = BSON_INITIALIZER;
   bool ok;

   FLORA_ASSERT_ARG(pay && payment_id && out);
   bson_init(out);
   bson_destroy(&doc);
   ok = find_payment(pay->store, payment_id, &doc, error);
   if (ok) {
      public_view(&doc, out);
   }
   bson_destroy(&doc);
   return ok;
}

/* ---- capture, cancel, refund ------------------------------------------------------ */

typedef enum op_kind { OP_CAPTURE, OP_CANCEL, OP_REFUND } op_kind_t;

static bool
call_op(flora_pay_t *pay, const flora_pay_provider_t *provider, op_kind_t kind,
        const bson_t *payment, int64_t amount, const char *key, flora_pay_result_t *result,
        flora_error_t *error)
{
   const char *ppid = flora__pay_str(payment, "providerPaymentId");
   const char *currency = flora__pay_str(payment, "currency");

   switch (kind) {
   case OP_CAPTURE:
      return provider->capture(pay, ppid, amount, currency, key, result, error);
   case OP_CANCEL:
      return provider->cancel(pay, ppid, currency, key, result, error);
   case OP_REFUND:
   default:
      return provider->refund(pay, payment, amount, currency, key, result, error);
   }
}

static const char *
op_name(op_kind_t kind)
{
   return kind == OP_CAPTURE ? "capture" : kind == OP_CANCEL ? "cancel" : "refund";
}

static bool
run_op(flora_pay_t *pay, const bson_oid_t *id, op_kind_t kind, int64_t amount, const char *source,
       bson_t *out, flora_error_t *error)
{
   static const char *const capturable[] = {"authorized", NULL};
   static const char *const cancellable[] = {"created", "pending", "requires_action",
                                             "authorized", NULL};
   static const char *const refundable[] = {"captured", "partially_refunded", NULL};
   const flora_pay_provider_t *provider;
   bson_t payment = BSON_INITIALIZER;
   flora_pay_result_t result = {0};
   flora_error_t call_err;
   char hex[25], *key = NULL;
   const char *status;
   int64_t authorized, captured, refunded;
   bool called, ok = false;

   if (out) {
      bson_init(out);
   }
   bson_destroy(&payment);
   if (!find_payment(pay->store, id, &payment, error)) {
      goto cleanup;
   }
   if (!lookup_provider(pay, flora__pay_str(&payment, "provider"), &provider, error)) {
      goto cleanup;
   }
   status = flora__pay_str(&payment, "status");
   authorized = get_i64(&payment, "amountAuthorized");
   captured = get_i64(&payment, "amountCaptured");
   refunded = get_i64(&payment, "amountRefunded");
   bson_oid_to_string(id, hex);
   if (amount < 0) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "amount must be positive");
      goto cleanup;
   }
   switch (kind) {
   case OP_CAPTURE:
      if (amount == 0) {
         amount = authorized;
      }
      if (strcmp(status, "authorized") != 0 || amount > authorized || amount == 0) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                         "payment %s is %s with %" PRId64 " authorised: cannot capture %" PRId64,
                         hex, status, authorized, amount);
         goto cleanup;
      }
      key = bson_strdup_printf("%s:capture:%" PRId64, hex, amount);
      break;
   case OP_CANCEL:
      key = bson_strdup_printf("%s:cancel", hex);
      break;
   case OP_REFUND:
      if (amount == 0) {
         amount = captured - refunded;
      }
      if (flora_pay_status_rank(status) < flora_pay_status_rank("captured") ||
          amount > captured - refunded || amount == 0) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                         "payment %s is %s with %" PRId64 " captured and %" PRId64
                         " refunded: cannot refund %" PRId64,
                         hex, status, captured, refunded, amount);
         goto cleanup;
      }
      key = bson_strdup_printf("%s:refund:%" PRId64 ":%" PRId64, hex, refunded, amount);
      break;
   }
   if (!claim(pay, id,
              kind == OP_CAPTURE ? capturable : kind == OP_CANCEL ? cancellable : refundable,
              op_name(kind), key, amount, kind == OP_REFUND ? &payment : NULL, source, error)) {
      goto cleanup;
   }
   flora_error_clear(&call_err);
   called = call_op(pay, provider, kind, &payment, amount, key, &result, &call_err);
   if (called && kind != OP_REFUND && !result.currency) {
      flora__pay_result_set(&result.currency, flora__pay_str(&payment, "currency"));
   }
   ok = record_answer(pay, id, op_name(kind), &result,
                      called && kind == OP_REFUND ? result.amount_refunded : 0,
                      called ? NULL : &call_err, source, out, error);
   if (ok && !called) {
      if (error) {
         *error = call_err;
      }
      ok = false;
   }
cleanup:
   flora_pay_result_cleanup(&result);
   bson_free(key);
   bson_destroy(&payment);
   return ok;
}

bool
flora_pay_capture(flora_pay_t *pay, const bson_oid_t *payment_id, int64_t amount, bson_t *out,
                  flora_error_t *error)
{
   FLORA_ASSERT_ARG(pay && payment_id);
   return run_op(pay, payment_id, OP_CAPTURE, amount, "api", out, error);
}

bool
flora_pay_cancel(flora_pay_t *pay, const bson_oid_t *payment_id, bson_t *out,
                 flora_error_t *error)
{
   FLORA_ASSERT_ARG(pay && payment_id);
   return run_op(pay, payment_id, OP_CANCEL, 0, "api", out, error);
}

bool
flora_pay_refund(flora_pay_t *pay, const bson_oid_t *payment_id, int64_t amount, bson_t *out,
                 flora_error_t *error)
{
   FLORA_ASSERT_ARG(pay && payment_id);
   return run_op(pay, payment_id, OP_REFUND, amount, "api", out, error);
}

/* ---- money back for a cancelled order ------------------------------------------------ */

static void
settle_note(flora_pay_t *pay, const bson_oid_t *order_id, const char *provider, const char *note)
{
   flora_error_t err;
   char actor[64];

   if (!pay->orders->note) {
      return;
   }
   flora_error_clear(&err);
   snprintf(actor, sizeof actor, "payment:%s", provider ? provider : "unknown");
   if (!pay->orders->note(pay->store, order_id, actor, note, &err)) {
      FLORA_LOG_WARN(FLORA_PAY_LOG, "order note not written", "error", err.message, "note", note);
   }
}

/* Returns one payment's money for an order in order_status: a refund of captured minus
 * refunded, or the void of an authorisation. *sent: a call succeeded. A payment with a
 * call in flight, or with nothing to give back, is left alone; losing the claim to a
 * concurrent caller (SHOP CONFLICT) is not an error: the winner does it. */
static bool
settle_payment(flora_pay_t *pay, const bson_oid_t *order_id, const char *order_status, const bson_oid_t *id,
               bool *sent, flora_error_t *error)
{
   bson_t payment = BSON_INITIALIZER;
   flora_error_t err;
   op_kind_t kind;
   const char *status, *provider, *currency;
   int64_t captured, refunded, amount = 0;
   char source[64], hex[25], money[48], note[900];
   bool ok = false;

   *sent = false;
   bson_destroy(&payment);
   if (!find_payment(pay->store, id, &payment, error)) {
      goto cleanup;
   }
   status = flora__pay_str(&payment, "status");
   provider = flora__pay_str(&payment, "provider");
   currency = flora__pay_str(&payment, "currency");
   captured = get_i64(&payment, "amountCaptured");
   refunded = get_i64(&payment, "amountRefunded");
   ok = true;
   if (!status || flora__pay_str(&payment, "pending.operation")) {
      goto cleanup; /* a call in flight: flora_pay_reconcile finishes it first */
   }
   if ((strcmp(status, "captured") == 0 || strcmp(status, "partially_refunded") == 0) && captured > refunded) {
      kind = OP_REFUND;
      amount = captured - refunded;
   } else if (strcmp(status, "authorized") == 0) {
      kind = OP_CANCEL;
      amount = get_i64(&payment, "amountAuthorized");
   } else {
      goto cleanup;
   }
   bson_oid_to_string(id, hex);
   if (!currency || !flora_money_format(amount, currency, money, sizeof money, NULL)) {
      snprintf(money, sizeof money, "%" PRId64 " minor units", amount);
   } else {
      size_t len = strlen(money);

      snprintf(money + len, sizeof money - len, " %s", currency);
   }
   snprintf(source, sizeof source, "order %s", order_status);
   flora_error_clear(&err);
   if (run_op(pay, id, kind, kind == OP_REFUND ? amount : 0, source, NULL, &err)) {
      *sent = true;
      snprintf(note, sizeof note, "%s %s on payment %s (%s): the order is %s",
               kind == OP_REFUND ? "refunded" : "released the authorisation of", money, hex,
               provider ? provider : "", order_status);
      settle_note(pay, order_id, provider, note);
      goto cleanup;
   }
   if (is_conflict(&err)) {
      goto cleanup; /* a concurrent caller claimed it first */
   }
   snprintf(note, sizeof note, "%s %s on payment %s (%s) failed: %s; `flora payments reconcile` retries it",
            kind == OP_REFUND ? "refund of" : "release of", money, hex, provider ? provider : "", err.message);
   settle_note(pay, order_id, provider, note);
   FLORA_LOG_WARN(FLORA_PAY_LOG, "automatic refund failed", "payment", hex, "error", err.message);
   if (error) {
      *error = err;
   }
   ok = false;
cleanup:
   bson_destroy(&payment);
   return ok;
}

bool
flora_pay_settle_order(flora_pay_t *pay, const bson_oid_t *order_id, size_t *refunds, flora_error_t *error)
{
   bson_t order = BSON_INITIALIZER, filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   bson_oid_t ids[64];
   size_t n = 0, sent_count = 0;
   const char *status;
   char order_status[32];
   bool found = false, ok = false, all_ok = true;
   flora_error_t first;

   FLORA_ASSERT_ARG(pay && order_id);
   flora_error_clear(&first);
   if (refunds) {
      *refunds = 0;
   }
   bson_destroy(&order);
   if (!pay->orders->get(pay->store, order_id, &order, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      char hex[25];

      bson_oid_to_string(order_id, hex);
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "order %s not found", hex);
      goto cleanup;
   }
   status = flora__pay_str(&order, "status");
   if (!status || (strcmp(status, "cancelled") != 0 && strcmp(status, "refunded") != 0)) {
      ok = true;
      goto cleanup;
   }
   snprintf(order_status, sizeof order_status, "%s", status);
   BSON_APPEND_OID(&filter, "orderId", order_id);
   BCON_APPEND(&opts, "projection", "{", "_id", BCON_INT32(1), "}", "sort", "{", "_id", BCON_INT32(1), "}",
               "limit", BCON_INT64((int64_t) (sizeof ids / sizeof ids[0])));
   if (!flora_store_find(pay->store, PAYMENTS, &filter, &opts, &cursor, error)) {
      goto cleanup;
   }
   while (flora_cursor_next(cursor, &doc)) {
      if (n < sizeof ids / sizeof ids[0] && get_oid(doc, "_id", &ids[n])) {
         n++;
      }
   }
   if (flora_cursor_error(cursor, error)) {
      goto cleanup;
   }
   for (size_t i = 0; i < n; i++) {
      flora_error_t err;
      bool sent = false;

      flora_error_clear(&err);
      if (!settle_payment(pay, order_id, order_status, &ids[i], &sent, &err)) {
         if (all_ok) {
            first = err;
         }
         all_ok = false;
      }
      sent_count += sent;
   }
   if (refunds) {
      *refunds = sent_count;
   }
   ok = all_ok;
   if (!ok && error) {
      *error = first;
   }
cleanup:
   flora_cursor_destroy(cursor);
   bson_destroy(&order);
   bson_destroy(&filter);
   bson_destroy(&opts);
   return ok;
}

/* ---- webhooks --------------------------------------------------------------------- */

bool
flora_pay_handle_webhook(flora_pay_t *pay, const char *provider_name,
                         const flora_pay_webhook_t *hook, flora_pay_webhook_outcome_t *outcome,
                         flora_error_t *error)
{
   const flora_pay_provider_t *provider = flora_pay_provider(provider_name);
   flora_pay_event_t event = {0};
   apply_ctx_t c = {0};
   char *key = NULL, source[300];
   flora_error_t err;
   bool ok = false;

   FLORA_ASSERT_ARG(pay && hook && outcome);
   if (!provider) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_NOT_FOUND, "unknown provider");
      return false;
   }
   if (!provider->parse_webhook(pay, hook, &event, error)) {
      FLORA_LOG_WARN(FLORA_PAY_LOG, "webhook refused", "provider", provider->name, "reason",
                     error ? error->message : "");
      goto cleanup;
   }
   key = bson_strdup_printf("%s:%s", provider->name, event.event_id);
   snprintf(source, sizeof source, "webhook:%s", event.event_id);
   c.pay = pay;
   c.provider = provider->name;
   c.by_provider_id = true;
   c.result = &event.object;
   c.source = source;
   c.event_key = key;
   c.event_id = event.event_id;
   c.event_type = event.type;
   c.event_relevant = event.relevant && event.object.provider_payment_id;
   flora_error_clear(&err);
   ok = apply(&c, &err);
   if (!ok && err.domain == FLORA_DOMAIN_STORE && err.code == FLORA_STORE_DUPLICATE_KEY) {
      /* A concurrent delivery of the same event committed first. */
      c.duplicate = true;
      ok = true;
   }
   if (!ok) {
      if (error) {
         *error = err;
      }
      goto cleanup;
   }
   *outcome = c.duplicate  ? FLORA_PAY_WEBHOOK_DUPLICATE
              : c.rejected ? FLORA_PAY_WEBHOOK_REJECTED
              : c.changed  ? FLORA_PAY_WEBHOOK_APPLIED
                           : FLORA_PAY_WEBHOOK_IGNORED;
   FLORA_LOG_INFO(FLORA_PAY_LOG, "webhook", "provider", provider->name, "event", event.event_id,
                  "type", event.type,
                  "outcome",
                  c.duplicate  ? "duplicate"
                  : c.rejected ? "rejected"
                  : c.changed  ? "applied"
                               : "ignored",
                  "reason", c.reason);
cleanup:
   apply_done(&c);
   bson_free(key);
   flora_pay_event_cleanup(&event);
   return ok;
}

/* ---- reconcile -------------------------------------------------------------------- */

static bool
reconcile_one(flora_pay_t *pay, const bson_oid_t *id, bool *repaired, flora_error_t *error)
{
   const flora_pay_provider_t *provider;
   bson_t payment = BSON_INITIALIZER, after = BSON_INITIALIZER;
   flora_pay_result_t result = {0};
   const char *op, *ppid, *before, *now_status;
   bool ok = false;

   *repaired = false;
   bson_destroy(&payment);
   if (!find_payment(pay->store, id, &payment, error) ||
       !lookup_provider(pay, flora__pay_str(&payment, "provider"), &provider, error)) {
      goto cleanup;
   }
   before = flora__pay_str(&payment, "status");
   op = flora__pay_str(&payment, "pending.operation");
   ppid = flora__pay_str(&payment, "providerPaymentId");
   if (op && strcmp(op, "create") == 0) {
      bson_t order = BSON_INITIALIZER;
      bson_oid_t order_id;
      bool found = false;

      bson_destroy(&order);
      get_oid(&payment, "orderId", &order_id);
      ok = pay->orders->get(pay->store, &order_id, &order, &found, error);
      if (ok && !found) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "order of payment gone");
         ok = false;
      }
      /* The same idempotency key: the provider answers with the payment it made, if any. */
      ok = ok && run_create(pay, provider, &payment, &order, "reconcile", &after, error);
      bson_destroy(&order);
   } else if (op) {
      const char *key = flora__pay_str(&payment, "pending.idempotencyKey");
      int64_t amount = get_i64(&payment, "pending.amount");
      op_kind_t kind = strcmp(op, "capture") == 0  ? OP_CAPTURE
                       : strcmp(op, "cancel") == 0 ? OP_CANCEL
                                                   : OP_REFUND;
      flora_error_t call_err;
      bool called;

      flora_error_clear(&call_err);
      called = call_op(pay, provider, kind, &payment, amount, key, &result, &call_err);
      if (called && kind != OP_REFUND && !result.currency) {
         flora__pay_result_set(&result.currency, flora__pay_str(&payment, "currency"));
      }
      ok = record_answer(pay, id, op, &result, called && kind == OP_REFUND ? result.amount_refunded : 0,
                         called ? NULL : &call_err, "reconcile", &after, error);
      if (ok && !called) {
         if (error) {
            *error = call_err;
         }
         ok = false;
      }
   } else if (ppid) {
      apply_ctx_t c = {0};

      ok = provider->get(pay, ppid, flora__pay_str(&payment, "currency"), &result, error);
      if (ok) {
         c.pay = pay;
         c.payment_id = *id;
         c.result = &result;
         c.source = "reconcile";
         ok = apply(&c, error);
         if (ok && c.have_after) {
            bson_destroy(&after);
            bson_copy_to(&c.after, &after);
         }
         apply_done(&c);
      }
   } else {
      ok = true;
   }
   now_status = flora__pay_str(&after, "status");
   *repaired = op != NULL || (now_status && strcmp(now_status, before) != 0);
cleanup:
   flora_pay_result_cleanup(&result);
   bson_destroy(&payment);
   bson_destroy(&after);
   return ok;
}

bool
flora_pay_reconcile(flora_pay_t *pay, size_t *checked, size_t *repaired, flora_error_t *error)
{
   bson_t *filter = BCON_NEW("$or", "[", "{", "pending.operation", "{", "$exists", BCON_BOOL(true),
                             "}", "}", "{", "status", "{", "$in", "[", BCON_UTF8("created"),
                             BCON_UTF8("pending"), BCON_UTF8("requires_action"),
                             BCON_UTF8("authorized"), "]", "}", "}", "]");
   bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   bson_oid_t *ids = NULL;
   size_t n = 0, cap = 0, n_repaired = 0;
   bool ok = false, all_ok = true;
   flora_error_t first;

   FLORA_ASSERT_ARG(pay);
   flora_error_clear(&first);
   if (!flora_store_find(pay->store, PAYMENTS, filter, opts, &cursor, error)) {
      goto cleanup;
   }
   while (flora_cursor_next(cursor, &doc)) {
      if (n == cap) {
         bson_oid_t *grown;

         cap = cap ? cap * 2 : 16;
         grown = realloc(ids, cap * sizeof *ids);
         if (!grown) {
            flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
            goto cleanup;
         }
         ids = grown;
      }
      if (get_oid(doc, "_id", &ids[n])) {
         n++;
      }
   }
   if (flora_cursor_error(cursor, error)) {
      goto cleanup;
   }
   for (size_t i = 0; i < n; i++) {
      bool fixed = false;
      flora_error_t err;
      char hex[25];

      flora_error_clear(&err);
      bson_oid_to_string(&ids[i], hex);
      if (!reconcile_one(pay, &ids[i], &fixed, &err)) {
         FLORA_LOG_WARN(FLORA_PAY_LOG, "reconcile failed", "payment", hex, "error", err.message);
         if (all_ok) {
            first = err;
         }
         all_ok = false;
         continue;
      }
      if (fixed) {
         n_repaired++;
         FLORA_LOG_INFO(FLORA_PAY_LOG, "reconciled", "payment", hex);
      }
   }
   /* The safety net of automatic refunds: a cancelled or refunded order whose payment
    * summary still holds money (a crash between the cancellation and its refund, a refund
    * the gateway refused or did not answer, money that arrived after the cancellation). */
   {
      bson_t *of = BCON_NEW("status", "{", "$in", "[", BCON_UTF8("cancelled"), BCON_UTF8("refunded"), "]", "}",
                            "payment.status", "{", "$in", "[", BCON_UTF8("authorized"), BCON_UTF8("captured"),
                            BCON_UTF8("partially_refunded"), "]", "}");
      flora_cursor_t *oc = NULL;
      bson_oid_t *orders = NULL;
      size_t n_orders = 0, ocap = 0;
      bool listed = flora_store_find(pay->store, "orders", of, opts, &oc, error);

      while (listed && flora_cursor_next(oc, &doc)) {
         if (n_orders == ocap) {
            bson_oid_t *grown;

            ocap = ocap ? ocap * 2 : 16;
            grown = realloc(orders, ocap * sizeof *orders);
            if (!grown) {
               flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
               listed = false;
               break;
            }
            orders = grown;
         }
         if (get_oid(doc, "_id", &orders[n_orders])) {
            n_orders++;
         }
      }
      if (listed && flora_cursor_error(oc, error)) {
         listed = false;
      }
      flora_cursor_destroy(oc);
      bson_destroy(of);
      if (!listed) {
         free(orders);
         goto cleanup;
      }
      for (size_t i = 0; i < n_orders; i++) {
         size_t sent = 0;
         flora_error_t err;
         char hex[25];

         flora_error_clear(&err);
         bson_oid_to_string(&orders[i], hex);
         if (!flora_pay_settle_order(pay, &orders[i], &sent, &err)) {
            FLORA_LOG_WARN(FLORA_PAY_LOG, "reconcile: automatic refund failed", "order", hex, "error", err.message);
            if (all_ok) {
               first = err;
            }
            all_ok = false;
         }
         n_repaired += sent;
      }
      free(orders);
   }
   if (checked) {
      *checked = n;
   }
   if (repaired) {
      *repaired = n_repaired;
   }
   ok = all_ok;
   if (!ok && error) {
      *error = first;
   }
cleanup:
   flora_cursor_destroy(cursor);
   free(ids);
   bson_destroy(filter);
   bson_destroy(opts);
   return ok;
}
