/* Stripe: PaymentIntents and Refunds over the form-encoded REST API, pinned
 * Stripe-Version, Idempotency-Key on every write, Stripe-Signature webhooks.
 * Sources: Stripe API reference (PaymentIntents, Refunds, Events), the OpenAPI document
 * ../shared/providers/stripe/spec3.yaml (2023-08-16), stripe-python _webhook.py. */
#include "pay_private.h"

#include <inttypes.h>
#include <string.h>

#define NAME "stripe"

static bool
configured(const flora_config_t *config)
{
   return flora_config_string(config, "pay.stripe.secret_key")[0] != '\0';
}

/* Stripe PaymentIntent statuses to Flora's (Stripe docs "How PaymentIntents work"). */
static const char *
map_status(const char *s)
{
   static const char *const map[][2] = {
      {"requires_payment_method", "requires_action"}, {"requires_confirmation", "requires_action"},
      {"requires_action", "requires_action"},         {"processing", "pending"},
      {"requires_capture", "authorized"},             {"succeeded", "captured"},
      {"canceled", "canceled"},
   };

   for (size_t i = 0; s && i < sizeof map / sizeof map[0]; i++) {
      if (strcmp(map[i][0], s) == 0) {
         return map[i][1];
      }
   }
   return NULL;
}

/* A PaymentIntent object into a result. */
static bool
from_intent(const bson_t *pi, const char *expected_currency, flora_pay_result_t *r,
            flora_error_t *error)
{
   const char *id = flora__pay_str(pi, "id");
   const char *status = map_status(flora__pay_str(pi, "status"));
   const char *cur = flora__pay_str(pi, "currency");
   const char *secret = flora__pay_str(pi, "client_secret");
   int64_t amount = 0, capturable = 0, received = 0;
   char upper[4] = {0};

   if (!id || !status || !cur || strlen(cur) != 3 || !flora__pay_int64(pi, "amount", &amount)) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "stripe: the answer is not a PaymentIntent");
      return false;
   }
   flora__pay_int64(pi, "amount_capturable", &capturable);
   flora__pay_int64(pi, "amount_received", &received);
   for (int i = 0; i < 3; i++) {
      upper[i] = (char) (cur[i] >= 'a' && cur[i] <= 'z' ? cur[i] - 32 : cur[i]);
   }
   if (!flora_money_from_stripe(amount, cur, expected_currency, &r->amount, error)) {
      flora_error_prefix(error, "stripe PaymentIntent %s", id);
      return false;
   }
   flora__pay_result_set(&r->provider_payment_id, id);
   flora__pay_result_set(&r->status, status);
   flora__pay_result_set(&r->currency, upper);
   r->amount_captured = received;
   r->amount_authorized = strcmp(status, "authorized") == 0 ? capturable : received;
   r->amount_refunded = -1;
   if (r->client.len) {
      bson_destroy(&r->client);
   }
   bson_init(&r->client);
   if (secret) {
      BSON_APPEND_UTF8(&r->client, "clientSecret", secret);
   }
   return true;
}

/* Calls Stripe. path: "/v1/...". form: may be NULL for GET. key: Idempotency-Key or NULL. */
static bool
call(flora_pay_t *pay, const char *method, const char *path, const bson_string_t *form,
     const char *key, flora__pay_http_response_t *res, flora_error_t *error)
{
   char auth[300], version[96], idem[200];
   char *url = flora__pay_url(flora__pay_conf(pay, NAME, "api_base"), path);
   flora__pay_http_request_t req = {0};
   const char *secret = flora__pay_conf(pay, NAME, "secret_key");
   size_t h = 0;
   bool ok;

   if (!*secret) {
      bson_free(url);
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "pay.stripe.secret_key is not set");
      return false;
   }
   snprintf(auth, sizeof auth, "Authorization: Bearer %s", secret);
   snprintf(version, sizeof version, "Stripe-Version: %s",
            flora__pay_conf(pay, NAME, "api_version"));
   req.provider = NAME;
   req.method = method;
   req.url = url;
   req.headers[h++] = auth;
   req.headers[h++] = version;
   if (key) {
      snprintf(idem, sizeof idem, "Idempotency-Key: %s", key);
      req.headers[h++] = idem;
   }
   if (form) {
      req.content_type = "application/x-www-form-urlencoded";
      req.body = form->str;
      req.body_len = form->len;
   }
   /* Reads are safe to repeat; writes only with their idempotency key. */
   req.retry = key != NULL || strcmp(method, "GET") == 0;
   ok = flora__pay_http(pay, &req, res, error);
   bson_free(url);
   if (ok && (res->status < 200 || res->status > 299)) {
      ok = flora__pay_http_fail(res, NAME, "error.message", error);
   }
   if (ok && !res->json) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "stripe: the answer is not JSON");
      ok = false;
   }
   return ok;
}

static bool
intent_call(flora_pay_t *pay, const char *method, const char *path, const bson_string_t *form,
            const char *key, const char *currency, flora_pay_result_t *result,
            flora_error_t *error)
{
   flora__pay_http_response_t res;
   bool ok = call(pay, method, path, form, key, &res, error) &&
             from_intent(res.json, currency, result, error);

   flora__pay_http_response_cleanup(&res);
   return ok;
}

static bool
create(flora_pay_t *pay, const flora_pay_create_t *req, flora_pay_result_t *result,
       flora_error_t *error)
{
   bson_string_t *form = bson_string_new(NULL);
   char amount[24], cur[4], desc[160];
   int64_t stripe_amount;
   bool ok = false;

   if (!flora_money_to_stripe(req->amount, req->currency, &stripe_amount, cur, error)) {
      goto cleanup;
   }
   snprintf(amount, sizeof amount, "%" PRId64, stripe_amount);
   snprintf(desc, sizeof desc, "Order %s", req->order_number);
   flora__pay_form_add(form, "amount", amount);
   flora__pay_form_add(form, "currency", cur);
   flora__pay_form_add(form, "capture_method", flora__pay_conf(pay, NAME, "capture_method"));
   flora__pay_form_add(form, "automatic_payment_methods[enabled]", "true");
   flora__pay_form_add(form, "description", desc);
   flora__pay_form_add(form, "metadata[payment_id]", req->payment_id);
   flora__pay_form_add(form, "metadata[order_number]", req->order_number);
   ok = intent_call(pay, "POST", "/v1/payment_intents", form, req->idempotency_key,
                    req->currency, result, error);
cleanup:
   bson_string_free(form, true);
   return ok;
}

static bool
bad_id(const char *id, flora_error_t *error)
{
   flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "stripe: bad object id \"%s\"",
                   id);
   return false;
}

static bool
get(flora_pay_t *pay, const char *id, const char *currency, flora_pay_result_t *result,
    flora_error_t *error)
{
   char *path = flora__pay_id_path("/v1/payment_intents/%s", id);
   bool ok;

   if (!path) {
      return bad_id(id, error);
   }
   ok = intent_call(pay, "GET", path, NULL, NULL, currency, result, error);
   bson_free(path);
   return ok;
}

static bool
capture(flora_pay_t *pay, const char *id, int64_t amount, const char *currency,
        const char *key, flora_pay_result_t *result, flora_error_t *error)
{
   char *path = flora__pay_id_path("/v1/payment_intents/%s/capture", id);
   bson_string_t *form = bson_string_new(NULL);
   char buf[24];
   bool ok;

   if (!path) {
      bson_string_free(form, true);
      return bad_id(id, error);
   }
   snprintf(buf, sizeof buf, "%" PRId64, amount);
   flora__pay_form_add(form, "amount_to_capture", buf);
   ok = intent_call(pay, "POST", path, form, key, currency, result, error);
   bson_string_free(form, true);
   bson_free(path);
   return ok;
}

static bool
cancel(flora_pay_t *pay, const char *id, const char *currency, const char *key,
       flora_pay_result_t *result, flora_error_t *error)
{
   char *path = flora__pay_id_path("/v1/payment_intents/%s/cancel", id);
   bson_string_t *form = bson_string_new(NULL);
   bool ok;

   if (!path) {
      bson_string_free(form, true);
      return bad_id(id, error);
   }
   flora__pay_form_add(form, "cancellation_reason", "requested_by_customer");
   ok = intent_call(pay, "POST", path, form, key, currency, result, error);
   bson_string_free(form, true);
   bson_free(path);
   return ok;
}

static bool
refund(flora_pay_t *pay, const bson_t *payment, int64_t amount, const char *currency,
       const char *key, flora_pay_result_t *result, flora_error_t *error)
{
   const char *pi = flora__pay_str(payment, "providerPaymentId");
   bson_string_t *form = bson_string_new(NULL);
   flora__pay_http_response_t res = {0};
   char buf[24];
   const char *status, *id, *cur;
   int64_t refunded = 0;
   bool ok = false;

   if (!pi) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                      "stripe: the payment has no PaymentIntent");
      goto cleanup;
   }
   snprintf(buf, sizeof buf, "%" PRId64, amount);
   flora__pay_form_add(form, "payment_intent", pi);
   flora__pay_form_add(form, "amount", buf);
   if (!call(pay, "POST", "/v1/refunds", form, key, &res, error)) {
      goto cleanup;
   }
   status = flora__pay_str(res.json, "status");
   id = flora__pay_str(res.json, "id");
   cur = flora__pay_str(res.json, "currency");
   if (!id || !status || !cur || !flora__pay_int64(res.json, "amount", &refunded) ||
       !flora_money_from_stripe(refunded, cur, currency, &refunded, error)) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                      "stripe: the answer is not a Refund");
      goto cleanup;
   }
   if (strcmp(status, "failed") == 0 || strcmp(status, "canceled") == 0) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID, "stripe: refund %s %s",
                      id, status);
      goto cleanup;
   }
   flora__pay_result_set(&result->refund_id, id);
   flora__pay_result_set(&result->provider_payment_id, pi);
   result->amount_refunded = refunded;
   ok = true;
cleanup:
   flora__pay_http_response_cleanup(&res);
   bson_string_free(form, true);
   return ok;
}

static const char *
hook_header(const flora_pay_webhook_t *hook, const char *name)
{
   return hook->header ? hook->header(hook->header_ctx, name) : NULL;
}

static bool
parse_webhook(flora_pay_t *pay, const flora_pay_webhook_t *hook, flora_pay_event_t *event,
              flora_error_t *error)
{
   bson_t *doc = NULL;
   bson_error_t berr;
   bson_iter_t it, obj;
   const char *id, *type;
   bool ok = false;

   if (!flora_pay_stripe_verify(hook_header(hook, "Stripe-Signature"), hook->body,
                                hook->body_len, flora__pay_conf(pay, NAME, "webhook_secret"),
                                hook->now_s,
                                flora_config_int(pay->config, "pay.stripe.webhook_tolerance_s"),
                                NULL, error)) {
      return false;
   }
   doc = bson_new_from_json((const uint8_t *) hook->body, (ssize_t) hook->body_len, &berr);
   id = doc ? flora__pay_str(doc, "id") : NULL;
   type = doc ? flora__pay_str(doc, "type") : NULL;
   if (!id || !type || !bson_iter_init(&it, doc) ||
       !bson_iter_find_descendant(&it, "data.object", &obj) || !BSON_ITER_HOLDS_DOCUMENT(&obj)) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "stripe webhook: not an event with data.object");
      goto cleanup;
   }
   event->event_id = bson_strdup(id);
   event->type = bson_strdup(type);
   event->relevant = false;
   if (strncmp(type, "payment_intent.", 15) == 0) {
      bson_t pi;
      uint32_t len;
      const uint8_t *data;

      bson_iter_document(&obj, &len, &data);
      if (!bson_init_static(&pi, data, len) || !from_intent(&pi, NULL, &event->object, error)) {
         flora_error_prefix(error, "stripe webhook %s", id);
         goto cleanup;
      }
      event->relevant = true;
   } else if (strcmp(type, "charge.refunded") == 0) {
      bson_t ch;
      uint32_t len;
      const uint8_t *data;
      const char *pi, *cur;
      int64_t refunded = 0, amount = 0;

      bson_iter_document(&obj, &len, &data);
      bson_init_static(&ch, data, len);
      pi = flora__pay_str(&ch, "payment_intent");
      cur = flora__pay_str(&ch, "currency");
      if (!pi || !cur || !flora__pay_int64(&ch, "amount_refunded", &refunded) ||
          !flora__pay_int64(&ch, "amount", &amount) || flora_money_exponent(cur) < 0) {
         flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "stripe webhook %s: not a charge", id);
         goto cleanup;
      }
      flora__pay_result_set(&event->object.provider_payment_id, pi);
      flora__pay_result_set(&event->object.status,
                            refunded >= amount ? "refunded" : "partially_refunded");
      {
         char upper[4] = {(char) (cur[0] & ~0x20), (char) (cur[1] & ~0x20),
                          (char) (cur[2] & ~0x20), 0};

         flora__pay_result_set(&event->object.currency, upper);
      }
      event->object.amount = amount;
      event->object.amount_captured = amount;
      event->object.amount_authorized = amount;
      event->object.amount_refunded = refunded;
      event->relevant = true;
   }
   ok = true;
cleanup:
   if (doc) {
      bson_destroy(doc);
   }
   return ok;
}

const flora_pay_provider_t flora_pay_stripe = {
   .name = NAME,
   .configured = configured,
   .create = create,
   .get = get,
   .capture = capture,
   .cancel = cancel,
   .refund = refund,
   .parse_webhook = parse_webhook,
};
