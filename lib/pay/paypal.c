/* PayPal: OAuth2 client-credentials token (cached until shortly before it expires),
 * Orders v2 create / get / capture, Payments v2 refunds of captures, PayPal-Request-Id on
 * every write, and the offline webhook signature check with the certificate fetched from
 * PAYPAL-CERT-URL (accepted only on the configured API host).
 * Sources: PayPal REST docs "Authentication", "Orders v2", "Payments v2", "Webhooks";
 * the PayPal documents in ../shared/providers/paypal; PayPal-Java-SDK Event.java and SSLUtil.java. */
#include "pay_private.h"

#include <inttypes.h>
#include <string.h>

#define NAME "paypal"
#define TOKEN_MARGIN_S 60 /* refresh this long before PayPal's expires_in runs out */

static bool
configured(const flora_config_t *config)
{
   return flora_config_string(config, "pay.paypal.client_id")[0] != '\0' &&
          flora_config_string(config, "pay.paypal.client_secret")[0] != '\0';
}

/* Gets a bearer token into out[out_len], from the cache when still fresh. */
static bool
token(flora_pay_t *pay, bool force, char *out, size_t out_len, flora_error_t *error)
{
   flora__pay_token_cache_t *cache = &pay->token;
   flora__pay_http_request_t req = {0};
   flora__pay_http_response_t res = {0};
   char *userpwd = NULL, *url = NULL;
   const char *tok;
   int64_t expires_in = 0, now = flora__pay_now(pay);
   bool ok = false;

   pthread_mutex_lock(&cache->lock);
   if (!force && cache->token && now < cache->expires_at_s) {
      snprintf(out, out_len, "%s", cache->token);
      pthread_mutex_unlock(&cache->lock);
      return true;
   }
   if (!configured(pay->config)) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "pay.paypal.client_id and pay.paypal.client_secret are not set");
      goto cleanup;
   }
   userpwd = bson_strdup_printf("%s:%s", flora__pay_conf(pay, NAME, "client_id"),
                                flora__pay_conf(pay, NAME, "client_secret"));
   url = flora__pay_url(flora__pay_conf(pay, NAME, "api_base"), "/v1/oauth2/token");
   req.provider = NAME;
   req.method = "POST";
   req.url = url;
   req.userpwd = userpwd;
   req.content_type = "application/x-www-form-urlencoded";
   req.body = "grant_type=client_credentials";
   req.body_len = strlen(req.body);
   req.retry = true; /* a token request changes nothing */
   if (!flora__pay_http(pay, &req, &res, error)) {
      goto cleanup;
   }
   if (res.status != 200) {
      flora__pay_http_fail(&res, NAME, "error_description", error);
      goto cleanup;
   }
   tok = flora__pay_str(res.json, "access_token");
   if (!tok || !flora__pay_int64(res.json, "expires_in", &expires_in) || expires_in <= 0 ||
       strlen(tok) + 1 > out_len) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "paypal: the token answer has no access_token/expires_in");
      goto cleanup;
   }
   bson_free(cache->token);
   cache->token = bson_strdup(tok);
   cache->expires_at_s =
      now + (expires_in > 2 * TOKEN_MARGIN_S ? expires_in - TOKEN_MARGIN_S : expires_in / 2);
   cache->fetched++;
   snprintf(out, out_len, "%s", tok);
   ok = true;
cleanup:
   pthread_mutex_unlock(&cache->lock);
   flora__pay_http_response_cleanup(&res);
   bson_free(userpwd);
   bson_free(url);
   return ok;
}

/* Calls PayPal with the bearer token; on 401 fetches a new token once and tries again. */
static bool
call(flora_pay_t *pay, const char *method, const char *path, const bson_t *body,
     const char *request_id, flora__pay_http_response_t *res, flora_error_t *error)
{
   char tok[2048], auth[2100], rid[200];
   char *url = flora__pay_url(flora__pay_conf(pay, NAME, "api_base"), path);
   char *json = body ? bson_as_relaxed_extended_json(body, NULL) : NULL;
   bool ok = false;

   for (int round = 0; round < 2; round++) {
      flora__pay_http_request_t req = {0};
      size_t h = 0;

      if (!token(pay, round > 0, tok, sizeof tok, error)) {
         goto cleanup;
      }
      snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
      req.provider = NAME;
      req.method = method;
      req.url = url;
      req.headers[h++] = auth;
      req.headers[h++] = "Prefer: return=representation";
      if (request_id) {
         snprintf(rid, sizeof rid, "PayPal-Request-Id: %s", request_id);
         req.headers[h++] = rid;
      }
      if (json) {
         req.content_type = "application/json";
         req.body = json;
         req.body_len = strlen(json);
      }
      req.retry = request_id != NULL || strcmp(method, "GET") == 0;
      if (!flora__pay_http(pay, &req, res, error)) {
         goto cleanup;
      }
      if (res->status != 401 || round > 0) {
         break;
      }
      flora__pay_http_response_cleanup(res);
   }
   if (res->status < 200 || res->status > 299) {
      flora__pay_http_fail(res, NAME, "message", error);
      goto cleanup;
   }
   if (!res->json) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "paypal: the answer is not JSON");
      goto cleanup;
   }
   ok = true;
cleanup:
   bson_free(url);
   bson_free(json);
   return ok;
}

static const char *
map_status(const char *s)
{
   static const char *const map[][2] = {
      {"CREATED", "requires_action"}, {"SAVED", "requires_action"},
      {"PAYER_ACTION_REQUIRED", "requires_action"}, {"APPROVED", "authorized"},
      {"COMPLETED", "captured"},      {"VOIDED", "canceled"},
   };

   for (size_t i = 0; s && i < sizeof map / sizeof map[0]; i++) {
      if (strcmp(map[i][0], s) == 0) {
         return map[i][1];
      }
   }
   return NULL;
}

/* An Orders v2 order into a result. The first purchase unit carries the amount; a
 * completed capture carries the capture id and captured amount. */
static bool
from_order(const bson_t *order, const char *expected_currency, flora_pay_result_t *r,
           flora_error_t *error)
{
   const char *id = flora__pay_str(order, "id");
   const char *status = map_status(flora__pay_str(order, "status"));
   const char *value = flora__pay_str(order, "purchase_units.0.amount.value");
   const char *cur = flora__pay_str(order, "purchase_units.0.amount.currency_code");
   const char *cap_status = flora__pay_str(order, "purchase_units.0.payments.captures.0.status");
   bson_iter_t it, links;

   if (!id || !status || !value || !cur) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "paypal: the answer is not an order with an amount");
      return false;
   }
   if (!flora_money_parse(value, cur, expected_currency, &r->amount, error)) {
      flora_error_prefix(error, "paypal order %s", id);
      return false;
   }
   flora__pay_result_set(&r->provider_payment_id, id);
   flora__pay_result_set(&r->currency, cur);
   r->amount_refunded = -1;
   r->amount_authorized = 0;
   r->amount_captured = 0;
   if (strcmp(status, "authorized") == 0) {
      r->amount_authorized = r->amount;
   }
   if (cap_status) {
      const char *cid = flora__pay_str(order, "purchase_units.0.payments.captures.0.id");
      const char *cval = flora__pay_str(order, "purchase_units.0.payments.captures.0.amount.value");
      const char *ccur =
         flora__pay_str(order, "purchase_units.0.payments.captures.0.amount.currency_code");
      int64_t captured = 0;

      if (strcmp(cap_status, "COMPLETED") == 0 || strcmp(cap_status, "PARTIALLY_REFUNDED") == 0 ||
          strcmp(cap_status, "REFUNDED") == 0) {
         if (!cval || !ccur || !flora_money_parse(cval, ccur, cur, &captured, error)) {
            flora_error_prefix(error, "paypal order %s capture", id);
            return false;
         }
         r->amount_captured = captured;
         r->amount_authorized = captured;
         flora__pay_result_set(&r->capture_id, cid);
      } else if (strcmp(cap_status, "DECLINED") == 0 || strcmp(cap_status, "FAILED") == 0) {
         status = "failed";
      } else if (strcmp(cap_status, "PENDING") == 0) {
         status = "pending";
      }
   }
   flora__pay_result_set(&r->status, status);
   if (r->client.len) {
      bson_destroy(&r->client);
   }
   bson_init(&r->client);
   if (bson_iter_init(&it, order) && bson_iter_find_descendant(&it, "links", &links) &&
       BSON_ITER_HOLDS_ARRAY(&links) && bson_iter_recurse(&links, &it)) {
      while (bson_iter_next(&it)) {
         bson_t link;
         uint32_t len;
         const uint8_t *data;
         const char *rel, *href;

         if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
            continue;
         }
         bson_iter_document(&it, &len, &data);
         bson_init_static(&link, data, len);
         rel = flora__pay_str(&link, "rel");
         href = flora__pay_str(&link, "href");
         if (rel && href && (strcmp(rel, "approve") == 0 || strcmp(rel, "payer-action") == 0)) {
            BSON_APPEND_UTF8(&r->client, "approveUrl", href);
            break;
         }
      }
   }
   return true;
}

static bool
order_call(flora_pay_t *pay, const char *method, const char *path, const bson_t *body,
           const char *key, const char *currency, flora_pay_result_t *result,
           flora_error_t *error)
{
   flora__pay_http_response_t res = {0};
   bool ok = call(pay, method, path, body, key, &res, error) &&
             from_order(res.json, currency, result, error);

   flora__pay_http_response_cleanup(&res);
   return ok;
}

static bool
create(flora_pay_t *pay, const flora_pay_create_t *req, flora_pay_result_t *result,
       flora_error_t *error)
{
   char value[32], desc[128];
   bson_t body = BSON_INITIALIZER, units, unit, amount, ctx;
   bool ok;

   if (!flora_money_format(req->amount, req->currency, value, sizeof value, error)) {
      bson_destroy(&body);
      return false;
   }
   snprintf(desc, sizeof desc, "Order %s", req->order_number);
   BSON_APPEND_UTF8(&body, "intent", "CAPTURE");
   BSON_APPEND_ARRAY_BEGIN(&body, "purchase_units", &units);
   BSON_APPEND_DOCUMENT_BEGIN(&units, "0", &unit);
   BSON_APPEND_UTF8(&unit, "reference_id", req->order_number);
   BSON_APPEND_UTF8(&unit, "custom_id", req->payment_id);
   BSON_APPEND_UTF8(&unit, "invoice_id", req->payment_id);
   BSON_APPEND_UTF8(&unit, "description", desc);
   BSON_APPEND_DOCUMENT_BEGIN(&unit, "amount", &amount);
   BSON_APPEND_UTF8(&amount, "currency_code", req->currency);
   BSON_APPEND_UTF8(&amount, "value", value);
   bson_append_document_end(&unit, &amount);
   bson_append_document_end(&units, &unit);
   bson_append_array_end(&body, &units);
   BSON_APPEND_DOCUMENT_BEGIN(&body, "application_context", &ctx);
   BSON_APPEND_UTF8(&ctx, "return_url", req->return_url);
   BSON_APPEND_UTF8(&ctx, "cancel_url", req->return_url);
   BSON_APPEND_UTF8(&ctx, "user_action", "PAY_NOW");
   BSON_APPEND_UTF8(&ctx, "shipping_preference", "NO_SHIPPING");
   bson_append_document_end(&body, &ctx);
   ok = order_call(pay, "POST", "/v2/checkout/orders", &body, req->idempotency_key,
                   req->currency, result, error);
   bson_destroy(&body);
   return ok;
}

static bool
bad_id(const char *id, flora_error_t *error)
{
   flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "paypal: bad id \"%s\"",
                   id ? id : "");
   return false;
}

static bool
get(flora_pay_t *pay, const char *id, const char *currency, flora_pay_result_t *result,
    flora_error_t *error)
{
   char *path = flora__pay_id_path("/v2/checkout/orders/%s", id);
   bool ok;

   if (!path) {
      return bad_id(id, error);
   }
   ok = order_call(pay, "GET", path, NULL, NULL, currency, result, error);
   bson_free(path);
   return ok;
}

/* Orders v2 with intent CAPTURE captures the whole approved amount (PayPal "Capture
 * payment for order"); a partial capture is refused before anything is sent. */
static bool
capture(flora_pay_t *pay, const char *id, int64_t amount, const char *currency,
        const char *key, flora_pay_result_t *result, flora_error_t *error)
{
   flora_pay_result_t before = {0};
   char *path = flora__pay_id_path("/v2/checkout/orders/%s/capture", id);
   bson_t empty = BSON_INITIALIZER;
   bool ok = false;

   if (!path) {
      bson_destroy(&empty);
      return bad_id(id, error);
   }
   if (!get(pay, id, currency, &before, error)) {
      goto cleanup;
   }
   if (amount != before.amount) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                      "paypal captures the whole order (intent CAPTURE): %" PRId64
                      " asked, %" PRId64 " approved",
                      amount, before.amount);
      goto cleanup;
   }
   ok = order_call(pay, "POST", path, &empty, key, currency, result, error);
cleanup:
   flora_pay_result_cleanup(&before);
   bson_destroy(&empty);
   bson_free(path);
   return ok;
}

/* An Orders v2 order that is never captured simply expires (PayPal voids approved orders
 * it does not capture); there is no cancel call for intent CAPTURE. Flora reads the order
 * and records the cancellation locally; a captured order cannot be cancelled. */
static bool
cancel(flora_pay_t *pay, const char *id, const char *currency, const char *key,
       flora_pay_result_t *result, flora_error_t *error)
{
   (void) key;
   if (!get(pay, id, currency, result, error)) {
      return false;
   }
   if (strcmp(result->status, "captured") == 0) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                      "paypal order %s is captured: refund it instead", id);
      return false;
   }
   flora__pay_result_set(&result->status, "canceled");
   return true;
}

static bool
refund(flora_pay_t *pay, const bson_t *payment, int64_t amount, const char *currency,
       const char *key, flora_pay_result_t *result, flora_error_t *error)
{
   const char *capture_id = flora__pay_str(payment, "captureId");
   char *path = flora__pay_id_path("/v2/payments/captures/%s/refund", capture_id);
   flora__pay_http_response_t res = {0};
   bson_t body = BSON_INITIALIZER, amt;
   char value[32];
   const char *id, *status, *rv, *rc;
   int64_t refunded = 0;
   bool ok = false;

   if (!path) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                      "paypal: the payment has no capture to refund");
      goto cleanup;
   }
   if (!flora_money_format(amount, currency, value, sizeof value, error)) {
      goto cleanup;
   }
   BSON_APPEND_DOCUMENT_BEGIN(&body, "amount", &amt);
   BSON_APPEND_UTF8(&amt, "value", value);
   BSON_APPEND_UTF8(&amt, "currency_code", currency);
   bson_append_document_end(&body, &amt);
   if (!call(pay, "POST", path, &body, key, &res, error)) {
      goto cleanup;
   }
   id = flora__pay_str(res.json, "id");
   status = flora__pay_str(res.json, "status");
   rv = flora__pay_str(res.json, "amount.value");
   rc = flora__pay_str(res.json, "amount.currency_code");
   if (!id || !status) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "paypal: the answer is not a refund");
      goto cleanup;
   }
   if (strcmp(status, "CANCELLED") == 0 || strcmp(status, "FAILED") == 0) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID, "paypal: refund %s %s",
                      id, status);
      goto cleanup;
   }
   refunded = amount;
   if (rv && rc && !flora_money_parse(rv, rc, currency, &refunded, error)) {
      goto cleanup;
   }
   flora__pay_result_set(&result->refund_id, id);
   flora__pay_result_set(&result->provider_payment_id,
                         flora__pay_str(payment, "providerPaymentId"));
   result->amount_refunded = refunded;
   ok = true;
cleanup:
   flora__pay_http_response_cleanup(&res);
   bson_destroy(&body);
   bson_free(path);
   return ok;
}

static const char *
hook_header(const flora_pay_webhook_t *hook, const char *name)
{
   return hook->header ? hook->header(hook->header_ctx, name) : NULL;
}

/* Downloads the signing certificate (public data, no auth) from an allowed URL. */
static bool
fetch_cert(flora_pay_t *pay, const char *url, flora__pay_http_response_t *res,
           flora_error_t *error)
{
   flora__pay_http_request_t req = {0};

   if (!flora_pay_paypal_cert_url_allowed(url, flora__pay_conf(pay, NAME, "api_base"))) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAUTHORIZED,
                      "webhook signature: PAYPAL-CERT-URL is not on the PayPal API host");
      return false;
   }
   req.provider = NAME;
   req.method = "GET";
   req.url = url;
   req.retry = true;
   if (!flora__pay_http(pay, &req, res, error)) {
      return false;
   }
   if (res->status != 200) {
      flora__pay_http_fail(res, NAME, "message", error);
      return false;
   }
   return true;
}

static bool
parse_webhook(flora_pay_t *pay, const flora_pay_webhook_t *hook, flora_pay_event_t *event,
              flora_error_t *error)
{
   flora__pay_http_response_t cert = {0};
   const char *cert_url = hook_header(hook, "PAYPAL-CERT-URL");
   bson_t *doc = NULL;
   bson_error_t berr;
   const char *id, *type;
   bson_iter_t it, res_it;
   bson_t resource;
   uint32_t len;
   const uint8_t *data;
   bool ok = false;

   if (!cert_url) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAUTHORIZED,
                      "webhook signature: PayPal transmission headers missing");
      return false;
   }
   if (!fetch_cert(pay, cert_url, &cert, error) ||
       !flora_pay_paypal_verify(hook_header(hook, "PAYPAL-TRANSMISSION-ID"),
                                hook_header(hook, "PAYPAL-TRANSMISSION-TIME"),
                                flora__pay_conf(pay, NAME, "webhook_id"),
                                hook_header(hook, "PAYPAL-AUTH-ALGO"),
                                hook_header(hook, "PAYPAL-TRANSMISSION-SIG"), cert.body,
                                cert.body_len, hook->body, hook->body_len, error)) {
      goto cleanup;
   }
   doc = bson_new_from_json((const uint8_t *) hook->body, (ssize_t) hook->body_len, &berr);
   id = doc ? flora__pay_str(doc, "id") : NULL;
   type = doc ? flora__pay_str(doc, "event_type") : NULL;
   if (!id || !type || !bson_iter_init(&it, doc) ||
       !bson_iter_find_descendant(&it, "resource", &res_it) ||
       !BSON_ITER_HOLDS_DOCUMENT(&res_it)) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "paypal webhook: not an event with a resource");
      goto cleanup;
   }
   bson_iter_document(&res_it, &len, &data);
   bson_init_static(&resource, data, len);
   event->event_id = bson_strdup(id);
   event->type = bson_strdup(type);
   if (strcmp(type, "CHECKOUT.ORDER.APPROVED") == 0 ||
       strcmp(type, "CHECKOUT.ORDER.COMPLETED") == 0) {
      if (!from_order(&resource, NULL, &event->object, error)) {
         goto cleanup;
      }
      event->relevant = true;
   } else if (strcmp(type, "PAYMENT.CAPTURE.COMPLETED") == 0 ||
              strcmp(type, "PAYMENT.CAPTURE.DENIED") == 0) {
      const char *order_id = flora__pay_str(&resource, "supplementary_data.related_ids.order_id");
      const char *value = flora__pay_str(&resource, "amount.value");
      const char *cur = flora__pay_str(&resource, "amount.currency_code");
      const char *cid = flora__pay_str(&resource, "id");
      bool completed = strcmp(type, "PAYMENT.CAPTURE.COMPLETED") == 0;

      if (!order_id || !value || !cur || !cid) {
         flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "paypal webhook %s: capture without order id or amount", id);
         goto cleanup;
      }
      if (!flora_money_parse(value, cur, NULL, &event->object.amount, error)) {
         goto cleanup;
      }
      flora__pay_result_set(&event->object.provider_payment_id, order_id);
      flora__pay_result_set(&event->object.status, completed ? "captured" : "failed");
      flora__pay_result_set(&event->object.currency, cur);
      flora__pay_result_set(&event->object.capture_id, cid);
      event->object.amount_captured = completed ? event->object.amount : 0;
      event->object.amount_authorized = event->object.amount_captured;
      event->object.amount_refunded = -1;
      event->relevant = true;
   }
   ok = true;
cleanup:
   if (doc) {
      bson_destroy(doc);
   }
   flora__pay_http_response_cleanup(&cert);
   return ok;
}

const flora_pay_provider_t flora_pay_paypal = {
   .name = NAME,
   .configured = configured,
   .create = create,
   .get = get,
   .capture = capture,
   .cancel = cancel,
   .refund = refund,
   .parse_webhook = parse_webhook,
};
