/* YooKassa (API v3): payments, capture, cancel, refunds, Basic auth shopId:secretKey,
 * Idempotence-Key on every write, amounts as decimal strings, the 54-FZ receipt built
 * from the order's line items, and notifications checked by sender IP and re-read from
 * the API. Sources: yookassa.ru/developers/api (Create payment, Capture, Cancel, Create
 * refund, the Receipt object), yookassa.ru/developers/using-api/webhooks (notification
 * format and IP list), yookassa-sdk-python security_helper.py and payment.py. */
#include "pay_private.h"

#include <inttypes.h>
#include <string.h>

#define NAME "yookassa"
#define DESC_MAX 128 /* receipt item description and payment description: 128 characters */

static bool
configured(const flora_config_t *config)
{
   return flora_config_string(config, "pay.yookassa.shop_id")[0] != '\0' &&
          flora_config_string(config, "pay.yookassa.secret_key")[0] != '\0';
}

static bool
call(flora_pay_t *pay, const char *method, const char *path, const bson_t *body,
     const char *key, flora__pay_http_response_t *res, flora_error_t *error)
{
   char *url, *userpwd, *json;
   char idem[200];
   flora__pay_http_request_t req = {0};
   bool ok;

   if (!configured(pay->config)) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "pay.yookassa.shop_id and pay.yookassa.secret_key are not set");
      return false;
   }
   url = flora__pay_url(flora__pay_conf(pay, NAME, "api_base"), path);
   userpwd = bson_strdup_printf("%s:%s", flora__pay_conf(pay, NAME, "shop_id"),
                                flora__pay_conf(pay, NAME, "secret_key"));
   json = body ? bson_as_relaxed_extended_json(body, NULL) : NULL;
   req.provider = NAME;
   req.method = method;
   req.url = url;
   req.userpwd = userpwd;
   if (key) {
      snprintf(idem, sizeof idem, "Idempotence-Key: %s", key);
      req.headers[0] = idem;
   }
   if (json) {
      req.content_type = "application/json";
      req.body = json;
      req.body_len = strlen(json);
   }
   req.retry = key != NULL || strcmp(method, "GET") == 0;
   ok = flora__pay_http(pay, &req, res, error);
   if (ok && (res->status < 200 || res->status > 299)) {
      ok = flora__pay_http_fail(res, NAME, "description", error);
   }
   if (ok && !res->json) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "yookassa: the answer is not JSON");
      ok = false;
   }
   bson_free(url);
   bson_free(userpwd);
   bson_free(json);
   return ok;
}

static const char *
map_status(const char *s)
{
   static const char *const map[][2] = {
      {"pending", "requires_action"}, {"waiting_for_capture", "authorized"},
      {"succeeded", "captured"},      {"canceled", "canceled"},
   };

   for (size_t i = 0; s && i < sizeof map / sizeof map[0]; i++) {
      if (strcmp(map[i][0], s) == 0) {
         return map[i][1];
      }
   }
   return NULL;
}

static bool
from_payment(const bson_t *p, const char *expected_currency, flora_pay_result_t *r,
             flora_error_t *error)
{
   const char *id = flora__pay_str(p, "id");
   const char *status = map_status(flora__pay_str(p, "status"));
   const char *value = flora__pay_str(p, "amount.value");
   const char *cur = flora__pay_str(p, "amount.currency");
   const char *rvalue = flora__pay_str(p, "refunded_amount.value");
   const char *rcur = flora__pay_str(p, "refunded_amount.currency");
   const char *url = flora__pay_str(p, "confirmation.confirmation_url");
   int64_t refunded = 0;

   if (!id || !status || !value || !cur) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "yookassa: the answer is not a payment");
      return false;
   }
   if (!flora_money_parse(value, cur, expected_currency, &r->amount, error) ||
       (rvalue && !flora_money_parse(rvalue, rcur ? rcur : "", cur, &refunded, error))) {
      flora_error_prefix(error, "yookassa payment %s", id);
      return false;
   }
   if (rvalue && refunded > 0) {
      status = refunded >= r->amount ? "refunded" : "partially_refunded";
   }
   flora__pay_result_set(&r->provider_payment_id, id);
   flora__pay_result_set(&r->status, status);
   flora__pay_result_set(&r->currency, cur);
   if (flora_pay_status_rank(status) >= flora_pay_status_rank("captured")) {
      /* After a capture YooKassa's amount is the amount captured (a partial capture
       * lowers it): the original amount is no longer in the answer. */
      r->amount_captured = r->amount;
      r->amount_authorized = r->amount;
      r->amount = 0;
   } else {
      r->amount_authorized = strcmp(status, "authorized") == 0 ? r->amount : 0;
      r->amount_captured = 0;
   }
   r->amount_refunded = rvalue ? refunded : -1;
   if (r->client.len) {
      bson_destroy(&r->client);
   }
   bson_init(&r->client);
   if (url) {
      BSON_APPEND_UTF8(&r->client, "confirmationUrl", url);
   }
   return true;
}

static bool
payment_call(flora_pay_t *pay, const char *method, const char *path, const bson_t *body,
             const char *key, const char *currency, flora_pay_result_t *result,
             flora_error_t *error)
{
   flora__pay_http_response_t res = {0};
   bool ok = call(pay, method, path, body, key, &res, error) &&
             from_payment(res.json, currency, result, error);

   flora__pay_http_response_cleanup(&res);
   return ok;
}

static bool
append_amount(bson_t *parent, const char *key, int64_t minor, const char *currency,
              flora_error_t *error)
{
   char value[32];
   bson_t a;

   if (!flora_money_format(minor, currency, value, sizeof value, error)) {
      return false;
   }
   BSON_APPEND_DOCUMENT_BEGIN(parent, key, &a);
   BSON_APPEND_UTF8(&a, "value", value);
   BSON_APPEND_UTF8(&a, "currency", currency);
   bson_append_document_end(parent, &a);
   return true;
}

/* Copies at most DESC_MAX UTF-8 characters of s into out. */
static void
clip_utf8(const char *s, char *out, size_t out_len)
{
   size_t i = 0, chars = 0, o = 0;

   while (s[i] && chars < DESC_MAX) {
      size_t n = 1;
      unsigned char c = (unsigned char) s[i];

      if (c >= 0xf0) {
         n = 4;
      } else if (c >= 0xe0) {
         n = 3;
      } else if (c >= 0xc0) {
         n = 2;
      }
      if (o + n + 1 > out_len) {
         break;
      }
      for (size_t k = 0; k < n && s[i]; k++) {
         out[o++] = s[i++];
      }
      chars++;
   }
   out[o] = '\0';
}

static bool
append_item(bson_t *items, uint32_t *n, const char *description, int64_t quantity,
            int64_t unit_price, const char *currency, int vat_code, const char *subject,
            flora_error_t *error)
{
   char key[16], desc[DESC_MAX * 4 + 1];
   bson_t item;
   bool ok;

   clip_utf8(description, desc, sizeof desc);
   snprintf(key, sizeof key, "%u", (*n)++);
   BSON_APPEND_DOCUMENT_BEGIN(items, key, &item);
   BSON_APPEND_UTF8(&item, "description", desc);
   BSON_APPEND_INT64(&item, "quantity", quantity);
   ok = append_amount(&item, "amount", unit_price, currency, error);
   BSON_APPEND_INT32(&item, "vat_code", vat_code);
   BSON_APPEND_UTF8(&item, "payment_subject", subject);
   BSON_APPEND_UTF8(&item, "payment_mode", "full_prepayment");
   bson_append_document_end(items, &item);
   return ok;
}

/* The 54-FZ receipt (YooKassa "Receipt" object): the customer's e-mail and phone (E.164
 * digits without '+'), one item per order line at its unit price, the order's discount
 * spread over the lines in proportion to their totals (a line whose discounted total does
 * not divide by its quantity is split in two so every unit price stays exact), and
 * delivery as a "service" item. The items add up to amount exactly. */
static bool
build_receipt(flora_pay_t *pay, const bson_t *order, int64_t amount, const char *currency,
              bson_t *receipt, flora_error_t *error)
{
   const char *email = flora__pay_str(order, "customer.email");
   const char *phone = flora__pay_str(order, "customer.phone");
   const char *name = flora__pay_str(order, "customer.name");
   int64_t vat = flora_config_int(pay->config, "pay.yookassa.vat_code");
   int64_t discount = 0, delivery = 0, subtotal = 0, spread = 0, sum = 0;
   bson_iter_t it, lines;
   bson_t customer, items;
   uint32_t n = 0;
   bool ok = true;

   flora__pay_int64(order, "totals.discount", &discount);
   flora__pay_int64(order, "totals.delivery", &delivery);
   bson_init(receipt);
   BSON_APPEND_DOCUMENT_BEGIN(receipt, "customer", &customer);
   if (name) {
      BSON_APPEND_UTF8(&customer, "full_name", name);
   }
   if (email) {
      BSON_APPEND_UTF8(&customer, "email", email);
   }
   if (phone) {
      BSON_APPEND_UTF8(&customer, "phone", phone[0] == '+' ? phone + 1 : phone);
   }
   bson_append_document_end(receipt, &customer);
   if (!email && !phone) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_INVALID,
                      "yookassa receipt: the order has neither e-mail nor phone");
      return false;
   }
   /* First pass: the subtotal the discount is spread over. */
   if (!bson_iter_init(&it, order) || !bson_iter_find_descendant(&it, "items", &lines) ||
       !BSON_ITER_HOLDS_ARRAY(&lines)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_INVALID,
                      "yookassa receipt: the order has no items");
      return false;
   }
   bson_iter_recurse(&lines, &it);
   while (bson_iter_next(&it)) {
      bson_t line;
      uint32_t len;
      const uint8_t *data;
      int64_t price = 0, qty = 0;

      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         continue;
      }
      bson_iter_document(&it, &len, &data);
      bson_init_static(&line, data, len);
      flora__pay_int64(&line, "unitPrice", &price);
      flora__pay_int64(&line, "quantity", &qty);
      subtotal += price * qty;
   }
   BSON_APPEND_ARRAY_BEGIN(receipt, "items", &items);
   bson_iter_recurse(&lines, &it);
   while (ok && bson_iter_next(&it)) {
      bson_t line;
      uint32_t len;
      const uint8_t *data;
      int64_t price = 0, qty = 0, total, share, per, rest;
      const char *pname, *variant;
      char desc[DESC_MAX * 4 + 1];
      bool last;

      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         continue;
      }
      bson_iter_document(&it, &len, &data);
      bson_init_static(&line, data, len);
      pname = flora__pay_str(&line, "name");
      variant = flora__pay_str(&line, "variant");
      if (!flora__pay_int64(&line, "unitPrice", &price) ||
          !flora__pay_int64(&line, "quantity", &qty) || qty <= 0 || !pname) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_INVALID,
                         "yookassa receipt: an order line lacks name, unitPrice or quantity");
         ok = false;
         break;
      }
      total = price * qty;
      {
         bson_iter_t peek = it;

         last = !bson_iter_next(&peek);
      }
      share = subtotal > 0 ? (last ? discount - spread : discount * total / subtotal) : 0;
      spread += share;
      total -= share;
      snprintf(desc, sizeof desc, "%s%s%s", pname, variant ? ", " : "", variant ? variant : "");
      per = total / qty;
      rest = total - per * qty;
      if (rest == 0) {
         ok = append_item(&items, &n, desc, qty, per, currency, (int) vat, "commodity", error);
      } else {
         ok = (qty == 1 || append_item(&items, &n, desc, qty - 1, per, currency, (int) vat,
                                       "commodity", error)) &&
              append_item(&items, &n, desc, 1, per + rest, currency, (int) vat, "commodity",
                          error);
      }
      sum += total;
   }
   if (ok && delivery > 0) {
      ok = append_item(&items, &n, "Доставка", 1, delivery, currency, (int) vat, "service", error);
      sum += delivery;
   }
   bson_append_array_end(receipt, &items);
   if (ok && sum != amount) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_INVALID,
                      "yookassa receipt: the items add up to %" PRId64 ", the payment is %" PRId64,
                      sum, amount);
      ok = false;
   }
   return ok;
}

static bool
create(flora_pay_t *pay, const flora_pay_create_t *req, flora_pay_result_t *result,
       flora_error_t *error)
{
   bson_t body = BSON_INITIALIZER, conf, meta, receipt = BSON_INITIALIZER;
   char desc[DESC_MAX * 4 + 1], text[200];
   bool ok = false;

   if (!append_amount(&body, "amount", req->amount, req->currency, error)) {
      goto cleanup;
   }
   BSON_APPEND_BOOL(&body, "capture", flora_config_bool(pay->config, "pay.yookassa.capture"));
   BSON_APPEND_DOCUMENT_BEGIN(&body, "confirmation", &conf);
   BSON_APPEND_UTF8(&conf, "type", "redirect");
   BSON_APPEND_UTF8(&conf, "return_url", req->return_url);
   bson_append_document_end(&body, &conf);
   snprintf(text, sizeof text, "Заказ %s", req->order_number);
   clip_utf8(text, desc, sizeof desc);
   BSON_APPEND_UTF8(&body, "description", desc);
   BSON_APPEND_DOCUMENT_BEGIN(&body, "metadata", &meta);
   BSON_APPEND_UTF8(&meta, "paymentId", req->payment_id);
   BSON_APPEND_UTF8(&meta, "orderNumber", req->order_number);
   bson_append_document_end(&body, &meta);
   if (flora_config_bool(pay->config, "pay.yookassa.send_receipt")) {
      bson_destroy(&receipt);
      if (!build_receipt(pay, req->order, req->amount, req->currency, &receipt, error)) {
         goto cleanup;
      }
      BSON_APPEND_DOCUMENT(&body, "receipt", &receipt);
   }
   ok = payment_call(pay, "POST", "/v3/payments", &body, req->idempotency_key, req->currency,
                     result, error);
cleanup:
   bson_destroy(&receipt);
   bson_destroy(&body);
   return ok;
}

static bool
bad_id(const char *id, flora_error_t *error)
{
   flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "yookassa: bad id \"%s\"",
                   id ? id : "");
   return false;
}

static bool
get(flora_pay_t *pay, const char *id, const char *currency, flora_pay_result_t *result,
    flora_error_t *error)
{
   char *path = flora__pay_id_path("/v3/payments/%s", id);
   bool ok;

   if (!path) {
      return bad_id(id, error);
   }
   ok = payment_call(pay, "GET", path, NULL, NULL, currency, result, error);
   bson_free(path);
   return ok;
}

static bool
capture(flora_pay_t *pay, const char *id, int64_t amount, const char *currency,
        const char *key, flora_pay_result_t *result, flora_error_t *error)
{
   char *path = flora__pay_id_path("/v3/payments/%s/capture", id);
   bson_t body = BSON_INITIALIZER;
   bool ok = false;

   if (!path) {
      bson_destroy(&body);
      return bad_id(id, error);
   }
   if (append_amount(&body, "amount", amount, currency, error)) {
      ok = payment_call(pay, "POST", path, &body, key, currency, result, error);
   }
   bson_destroy(&body);
   bson_free(path);
   return ok;
}

static bool
cancel(flora_pay_t *pay, const char *id, const char *currency, const char *key,
       flora_pay_result_t *result, flora_error_t *error)
{
   char *path = flora__pay_id_path("/v3/payments/%s/cancel", id);
   bson_t body = BSON_INITIALIZER;
   bool ok;

   if (!path) {
      bson_destroy(&body);
      return bad_id(id, error);
   }
   ok = payment_call(pay, "POST", path, &body, key, currency, result, error);
   bson_destroy(&body);
   bson_free(path);
   return ok;
}

/* The refund receipt (чек возврата) 54-FZ asks for when receipts go through YooKassa
 * (YooKassa "Create refund": receipt). A full refund repeats the payment's receipt built
 * from the order; a partial one is one item "Возврат по заказу <number>" for the amount,
 * since Flora does not know which goods it covers. */
static bool
append_refund_receipt(flora_pay_t *pay, const bson_t *payment, int64_t amount,
                      const char *currency, bson_t *body, flora_error_t *error)
{
   bson_t order = BSON_INITIALIZER, receipt = BSON_INITIALIZER;
   bson_oid_t order_id;
   bson_iter_t it;
   int64_t total = 0;
   bool found = false, ok = false;

   if (!bson_iter_init_find(&it, payment, "orderId") || !BSON_ITER_HOLDS_OID(&it)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_INVALID,
                      "yookassa refund receipt: the payment has no order");
      goto cleanup;
   }
   bson_oid_copy(bson_iter_oid(&it), &order_id);
   bson_destroy(&order);
   if (!pay->orders->get(pay->store, &order_id, &order, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND,
                      "yookassa refund receipt: the order is gone");
      goto cleanup;
   }
   flora__pay_int64(&order, "totals.total", &total);
   bson_destroy(&receipt);
   if (amount == total) {
      ok = build_receipt(pay, &order, amount, currency, &receipt, error);
   } else {
      const char *number = flora__pay_str(&order, "number");
      const char *email = flora__pay_str(&order, "customer.email");
      const char *phone = flora__pay_str(&order, "customer.phone");
      char desc[DESC_MAX * 4 + 1];
      bson_t customer, items;
      uint32_t n = 0;

      bson_init(&receipt);
      BSON_APPEND_DOCUMENT_BEGIN(&receipt, "customer", &customer);
      if (email) {
         BSON_APPEND_UTF8(&customer, "email", email);
      }
      if (phone) {
         BSON_APPEND_UTF8(&customer, "phone", phone[0] == '+' ? phone + 1 : phone);
      }
      bson_append_document_end(&receipt, &customer);
      snprintf(desc, sizeof desc, "Возврат по заказу %s", number ? number : "");
      BSON_APPEND_ARRAY_BEGIN(&receipt, "items", &items);
      ok = append_item(&items, &n, desc, 1, amount, currency,
                       (int) flora_config_int(pay->config, "pay.yookassa.vat_code"), "commodity",
                       error);
      bson_append_array_end(&receipt, &items);
   }
   if (ok) {
      BSON_APPEND_DOCUMENT(body, "receipt", &receipt);
   }
cleanup:
   bson_destroy(&order);
   bson_destroy(&receipt);
   return ok;
}

static bool
refund(flora_pay_t *pay, const bson_t *payment, int64_t amount, const char *currency,
       const char *key, flora_pay_result_t *result, flora_error_t *error)
{
   const char *pid = flora__pay_str(payment, "providerPaymentId");
   flora__pay_http_response_t res = {0};
   bson_t body = BSON_INITIALIZER;
   const char *id, *status, *value, *cur;
   int64_t refunded = 0;
   bool ok = false;

   if (!pid) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                      "yookassa: the payment has no provider id");
      goto cleanup;
   }
   BSON_APPEND_UTF8(&body, "payment_id", pid);
   if (!append_amount(&body, "amount", amount, currency, error) ||
       (flora_config_bool(pay->config, "pay.yookassa.send_receipt") &&
        !append_refund_receipt(pay, payment, amount, currency, &body, error)) ||
       !call(pay, "POST", "/v3/refunds", &body, key, &res, error)) {
      goto cleanup;
   }
   id = flora__pay_str(res.json, "id");
   status = flora__pay_str(res.json, "status");
   value = flora__pay_str(res.json, "amount.value");
   cur = flora__pay_str(res.json, "amount.currency");
   if (!id || !status || !value || !cur ||
       !flora_money_parse(value, cur, currency, &refunded, error)) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "yookassa: the answer is not a refund");
      goto cleanup;
   }
   if (strcmp(status, "canceled") == 0) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "yookassa: refund %s canceled", id);
      goto cleanup;
   }
   flora__pay_result_set(&result->refund_id, id);
   flora__pay_result_set(&result->provider_payment_id, pid);
   result->amount_refunded = refunded;
   ok = true;
cleanup:
   flora__pay_http_response_cleanup(&res);
   bson_destroy(&body);
   return ok;
}

/* Does the payment as re-read from the API bear the event out? The re-read may be further
 * along than the event (a waiting_for_capture notification arriving after the capture),
 * never behind it. An unconfirmed event is not stored, so YooKassa's redelivery is looked at
 * afresh. */
static bool
confirmed(const char *ev, const flora_pay_result_t *r)
{
   int rank = flora_pay_status_rank(r->status);

   if (strcmp(ev, "payment.succeeded") == 0) {
      return rank >= flora_pay_status_rank("captured");
   }
   if (strcmp(ev, "payment.waiting_for_capture") == 0) {
      return rank >= flora_pay_status_rank("authorized");
   }
   if (strcmp(ev, "payment.canceled") == 0) {
      return strcmp(r->status, "canceled") == 0;
   }
   if (strcmp(ev, "refund.succeeded") == 0) {
      return r->amount_refunded > 0;
   }
   return true;
}

/* Notifications are unsigned: the sender must be in pay.yookassa.allowed_ips, and only
 * the object re-read from the API is trusted (YooKassa "Incoming notifications"). The
 * event id is "<event>:<object id>", unique per state change of one object. */
static bool
parse_webhook(flora_pay_t *pay, const flora_pay_webhook_t *hook, flora_pay_event_t *event,
              flora_error_t *error)
{
   bson_t *doc = NULL;
   bson_error_t berr;
   const char *type, *ev, *oid, *payment_id;
   bool allowed = false, ok = false;
   flora_error_t ip_err;

   if (!flora_pay_ip_allowed(hook->peer_ip ? hook->peer_ip : "", 
                             flora__pay_conf(pay, NAME, "allowed_ips"), &allowed, &ip_err) ||
       !allowed) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAUTHORIZED,
                      "webhook: sender %s is not in pay.yookassa.allowed_ips",
                      hook->peer_ip ? hook->peer_ip : "(unknown)");
      return false;
   }
   doc = bson_new_from_json((const uint8_t *) hook->body, (ssize_t) hook->body_len, &berr);
   type = doc ? flora__pay_str(doc, "type") : NULL;
   ev = doc ? flora__pay_str(doc, "event") : NULL;
   oid = doc ? flora__pay_str(doc, "object.id") : NULL;
   if (!type || strcmp(type, "notification") != 0 || !ev || !oid) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "yookassa webhook: not a notification with event and object.id");
      goto cleanup;
   }
   event->event_id = bson_strdup_printf("%s:%s", ev, oid);
   event->type = bson_strdup(ev);
   payment_id = NULL;
   if (strncmp(ev, "payment.", 8) == 0) {
      payment_id = oid;
   } else if (strncmp(ev, "refund.", 7) == 0) {
      payment_id = flora__pay_str(doc, "object.payment_id");
   }
   if (payment_id) {
      if (!get(pay, payment_id, NULL, &event->object, error)) {
         flora_error_prefix(error, "yookassa webhook: re-reading payment %s", payment_id);
         goto cleanup;
      }
      if (!confirmed(ev, &event->object)) {
         flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAUTHORIZED,
                         "webhook: %s is not confirmed by the API (payment %s is %s)", ev,
                         payment_id, event->object.status);
         goto cleanup;
      }
      event->relevant = true;
   }
   ok = true;
cleanup:
   if (doc) {
      bson_destroy(doc);
   }
   return ok;
}

const flora_pay_provider_t flora_pay_yookassa = {
   .name = NAME,
   .configured = configured,
   .create = create,
   .get = get,
   .capture = capture,
   .cancel = cancel,
   .refund = refund,
   .parse_webhook = parse_webhook,
};
