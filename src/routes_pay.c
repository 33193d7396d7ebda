/* Payments over HTTP (include/flora/pay.h; docs/payments.md for the client flows):
 *   POST /api/v1/orders/{number}/payments        start a payment: {provider} -> client data
 *   GET  /api/v1/orders/{number}/payments        the order's payment attempts
 *   GET  /api/v1/admin/payments/{id}             one payment (managers)
 *   POST /api/v1/admin/payments/{id}/capture     {amount?} capture (managers)
 *   POST /api/v1/admin/payments/{id}/cancel      cancel (managers)
 *   POST /api/v1/admin/payments/{id}/refund      {amount?} refund (managers)
 *   POST /webhooks/stripe | /webhooks/paypal | /webhooks/yookassa   provider notifications
 * The order routes answer the order's owner (the signed-in user, or the guest holding its
 * X-Cart-Token) and managers; anyone else gets 404, as for an order that does not exist.
 * The order is named by its number ("FL-2026-000123"), the one the customer sees. */
#include <string.h>
#include <time.h>

#include "app.h"
#include "flora/orders.h"
#include "flora/pay.h"
#include "http.h"
#include "routes_shop.h"

static bool
no_service(flora_http_response_t *res)
{
   return flora_http_error(res, 503, "unavailable", NULL, "payments are not started", NULL);
}

/* Loads the order and checks the caller may see it: managers, or the customer whose key
 * (include/flora/orders.h flora_customer_key: the signed-in user, or the guest's
 * X-Cart-Token) is the order's customerKey. Anyone else gets 404, as routes_orders.c does. */
static bool
owned_order(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res,
            bool *allowed)
{
   const char *number = flora_http_param(req, "number");
   flora_customer_t customer;
   char key[200];
   bson_t order;
   bool found = false;
   flora_error_t error = {0};
   bson_iter_t it;

   *allowed = false;
   if (!flora_orders_get_by_number(app->store, number, &order, &found, &error)) {
      bson_destroy(&order);
      return flora_http_fail(res, &error);
   }
   if (found) {
      if (req->principal.role >= FLORA_ROLE_MANAGER) {
         *allowed = true;
      } else if (flora_routes_customer(req, &customer)) {
         flora_customer_key(&customer, key, sizeof key);
         *allowed = bson_iter_init_find(&it, &order, "customerKey") &&
                    BSON_ITER_HOLDS_UTF8(&it) && strcmp(bson_iter_utf8(&it, NULL), key) == 0;
      }
   }
   bson_destroy(&order);
   if (!*allowed) {
      return flora_http_error(res, 404, "not_found", "number", "no such order", NULL);
   }
   return true;
}

static bool
start_payment(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   bson_t body, out;
   bson_iter_t it;
   flora_error_t error = {0};
   bool allowed;

   if (!app->pay) {
      return no_service(res);
   }
   if (!flora_http_body_json(req, &body, &error)) {
      bson_destroy(&body);
      return flora_http_fail(res, &error);
   }
   if (!bson_iter_init_find(&it, &body, "provider") || !BSON_ITER_HOLDS_UTF8(&it)) {
      bson_destroy(&body);
      return flora_http_error(res, 400, "invalid_argument", "provider",
                              "must be one of stripe, paypal, yookassa", NULL);
   }
   if (!owned_order(app, req, res, &allowed) || !allowed) {
      bson_destroy(&body);
      return true;
   }
   if (!flora_pay_create_payment(app->pay, flora_http_param(req, "number"),
                                 bson_iter_utf8(&it, NULL), &out, &error)) {
      bson_destroy(&out);
      bson_destroy(&body);
      return flora_http_fail(res, &error);
   }
   bson_destroy(&body);
   res->status = 201;
   bson_destroy(&res->body);
   bson_steal(&res->body, &out);
   return true;
}

static bool
list_payments(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   bson_t out;
   flora_error_t error = {0};
   bool allowed;

   if (!app->pay) {
      return no_service(res);
   }
   if (!owned_order(app, req, res, &allowed) || !allowed) {
      return true;
   }
   if (!flora_pay_list_payments(app->pay, flora_http_param(req, "number"), &out, &error)) {
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   BSON_APPEND_ARRAY(&res->body, "items", &out);
   bson_destroy(&out);
   return true;
}

static bool
payment_id(const flora_http_request_t *req, flora_http_response_t *res, bson_oid_t *id)
{
   const char *hex = flora_http_param(req, "id");

   if (!hex || !bson_oid_is_valid(hex, strlen(hex)) || strlen(hex) != 24) {
      flora_http_error(res, 404, "not_found", NULL, "payment not found", NULL);
      return false;
   }
   bson_oid_init_from_string(id, hex);
   return true;
}

/* {amount?}: minor units, a whole number >= 1; absent means all that is possible. */
static bool
body_amount(const flora_http_request_t *req, flora_http_response_t *res, int64_t *amount)
{
   bson_t body;
   bson_iter_t it;
   flora_error_t error = {0};

   *amount = 0;
   if (req->body_len == 0) {
      return true;
   }
   if (!flora_http_body_json(req, &body, &error)) {
      bson_destroy(&body);
      flora_http_fail(res, &error);
      return false;
   }
   if (bson_iter_init_find(&it, &body, "amount")) {
      if (!(BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) ||
          bson_iter_as_int64(&it) < 1) {
         bson_destroy(&body);
         flora_http_error(res, 400, "invalid_argument", "amount",
                          "must be a whole number of minor units (kopecks) >= 1", NULL);
         return false;
      }
      *amount = bson_iter_as_int64(&it);
   }
   bson_destroy(&body);
   return true;
}

typedef enum admin_op { ADMIN_GET, ADMIN_CAPTURE, ADMIN_CANCEL, ADMIN_REFUND } admin_op_t;

static bool
admin(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res,
      admin_op_t op)
{
   bson_oid_t id;
   int64_t amount = 0;
   bson_t out;
   flora_error_t error = {0};
   bool ok;

   if (!app->pay) {
      return no_service(res);
   }
   if (!payment_id(req, res, &id)) {
      return true;
   }
   if ((op == ADMIN_CAPTURE || op == ADMIN_REFUND) && !body_amount(req, res, &amount)) {
      return true;
   }
   switch (op) {
   case ADMIN_CAPTURE:
      ok = flora_pay_capture(app->pay, &id, amount, &out, &error);
      break;
   case ADMIN_CANCEL:
      ok = flora_pay_cancel(app->pay, &id, &out, &error);
      break;
   case ADMIN_REFUND:
      ok = flora_pay_refund(app->pay, &id, amount, &out, &error);
      break;
   case ADMIN_GET:
   default:
      ok = flora_pay_get_payment(app->pay, &id, &out, &error);
      break;
   }
   if (!ok) {
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   bson_destroy(&res->body);
   bson_steal(&res->body, &out);
   return true;
}

static bool
get_payment(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   return admin(app, req, res, ADMIN_GET);
}

static bool
capture_payment(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   return admin(app, req, res, ADMIN_CAPTURE);
}

static bool
cancel_payment(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   return admin(app, req, res, ADMIN_CANCEL);
}

static bool
refund_payment(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   return admin(app, req, res, ADMIN_REFUND);
}

static const char *
request_header(void *ctx, const char *name)
{
   return flora_http_header(ctx, name);
}

/* Verified and stored (applied, duplicate, ignored or rejected): 200, so the provider
 * stops retrying. Unverifiable or malformed: 400, nothing stored. Anything else (the store
 * is down): 500, and the provider delivers again later. */
static bool
webhook(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res,
        const char *provider)
{
   static const char *const names[] = {"applied", "duplicate", "ignored", "rejected"};
   flora_pay_webhook_t hook = {0};
   flora_pay_webhook_outcome_t outcome = FLORA_PAY_WEBHOOK_IGNORED;
   flora_error_t error = {0};

   if (!app->pay) {
      return no_service(res);
   }
   hook.body = req->body ? req->body : "";
   hook.body_len = req->body_len;
   hook.header = request_header;
   hook.header_ctx = (void *) req;
   hook.peer_ip = flora_http_client_address(req);
   hook.now_s = (int64_t) time(NULL);
   if (!flora_pay_handle_webhook(app->pay, provider, &hook, &outcome, &error)) {
      if (error.domain == FLORA_DOMAIN_PROVIDER && error.code == FLORA_ERR_UNAUTHORIZED) {
         return flora_http_error(res, 400, "bad_signature", NULL, error.message, NULL);
      }
      if (error.domain == FLORA_DOMAIN_INPUT) {
         return flora_http_error(res, 400, "invalid_argument", NULL, error.message, NULL);
      }
      return flora_http_fail(res, &error);
   }
   BSON_APPEND_BOOL(&res->body, "received", true);
   BSON_APPEND_UTF8(&res->body, "outcome", names[outcome]);
   return true;
}

static bool
webhook_stripe(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   return webhook(app, req, res, "stripe");
}

static bool
webhook_paypal(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   return webhook(app, req, res, "paypal");
}

static bool
webhook_yookassa(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   return webhook(app, req, res, "yookassa");
}

const flora_route_t flora_routes_pay[] = {
   {"POST", "/api/v1/orders/{number}/payments", "payments.start", FLORA_AUTH_NONE, start_payment},
   {"GET", "/api/v1/orders/{number}/payments", "payments.list", FLORA_AUTH_NONE, list_payments},
   {"GET", "/api/v1/admin/payments/{id}", "admin.payments.get", FLORA_AUTH_MANAGER, get_payment},
   {"POST", "/api/v1/admin/payments/{id}/capture", "admin.payments.capture", FLORA_AUTH_MANAGER,
    capture_payment},
   {"POST", "/api/v1/admin/payments/{id}/cancel", "admin.payments.cancel", FLORA_AUTH_MANAGER,
    cancel_payment},
   {"POST", "/api/v1/admin/payments/{id}/refund", "admin.payments.refund", FLORA_AUTH_MANAGER,
    refund_payment},
   {"POST", "/webhooks/stripe", "webhooks.stripe", FLORA_AUTH_NONE, webhook_stripe},
   {"POST", "/webhooks/paypal", "webhooks.paypal", FLORA_AUTH_NONE, webhook_paypal},
   {"POST", "/webhooks/yookassa", "webhooks.yookassa", FLORA_AUTH_NONE, webhook_yookassa},
   {NULL, NULL, NULL, FLORA_AUTH_NONE, NULL},
};
