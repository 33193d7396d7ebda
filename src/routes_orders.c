/* Cart, checkout and order routes: thin adapters over include/flora/orders.h. Guests are
 * identified by the X-Cart-Token header (the API returns a new token as cartToken when it
 * creates a guest cart or a guest checkout without one); signed-in users by their session.
 * Documented in docs/openapi.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "flora/log.h"
#include "flora/orders.h"
#include "flora/schema.h"
#include "http.h"
#include "routes_shop.h"

static int64_t
cart_ttl(flora_app_t *app)
{
   return flora_config_int(app->config, "cart.ttl_s");
}

/* ---- cart ---------------------------------------------------------------------------- */

static bool
get_cart(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_customer_t customer;
   flora_error_t error = {0};
   bson_t out;

   if (!flora_routes_customer(req, &customer)) {
      bson_t empty = BSON_INITIALIZER, arr;

      BSON_APPEND_ARRAY_BEGIN(&empty, "items", &arr);
      bson_append_array_end(&empty, &arr);
      BSON_APPEND_INT64(&empty, "subtotal", 0);
      flora_routes_answer(res, 200, &empty);
      bson_destroy(&empty);
      return true;
   }
   if (!flora_cart_get(app->store, &customer, &out, &error)) {
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   flora_routes_answer(res, 200, &out);
   bson_destroy(&out);
   return true;
}

/* Reads {sku?, quantity} of a cart write; answers 422 naming every bad field. */
static bool
cart_body(const flora_http_request_t *req, bool need_sku, const char **sku, int32_t *quantity, bson_t *body,
          flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t problems = BSON_INITIALIZER;
   bson_iter_t it;
   bool ok;

   *sku = NULL;
   *quantity = 0;
   if (!flora_http_body_json(req, body, &error)) {
      flora_http_fail(res, &error);
      bson_destroy(&problems);
      return false;
   }
   bson_iter_init(&it, body);
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);

      if (key[0] == '$' || BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_REGEX(&it)) {
         flora_http_error(res, 400, "invalid_argument", key, "operators and objects are not allowed here", NULL);
         bson_destroy(&problems);
         return false;
      }
      if (strcmp(key, "sku") == 0 && need_sku) {
         if (!BSON_ITER_HOLDS_UTF8(&it) || !*bson_iter_utf8(&it, NULL) || strlen(bson_iter_utf8(&it, NULL)) > 64) {
            flora_schema_problem(&problems, "sku", "must be a string of 1-64 characters");
         } else {
            *sku = bson_iter_utf8(&it, NULL);
         }
      } else if (strcmp(key, "quantity") == 0) {
         if (!(BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) || bson_iter_as_int64(&it) < (need_sku ? 1 : 0) ||
             bson_iter_as_int64(&it) > 999) {
            flora_schema_problem(&problems, "quantity", need_sku ? "must be a whole number from 1 to 999"
                                                                 : "must be a whole number from 0 to 999");
         } else {
            *quantity = (int32_t) bson_iter_as_int64(&it);
         }
      } else {
         flora_schema_problem(&problems, key, "unknown field");
      }
   }
   if (need_sku && !bson_has_field(body, "sku")) {
      flora_schema_problem(&problems, "sku", "is required");
   }
   if (!bson_has_field(body, "quantity")) {
      flora_schema_problem(&problems, "quantity", "is required");
   }
   ok = bson_empty(&problems);
   if (!ok) {
      flora_http_error(res, 422, "validation_failed", NULL, "the cart line is invalid", &problems);
   }
   bson_destroy(&problems);
   return ok;
}

static bool
write_cart(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res, const char *sku,
           int32_t quantity, bool add)
{
   flora_customer_t customer;
   flora_error_t error = {0};
   char token[FLORA_CART_TOKEN_LEN + 1] = "";
   bson_t out;

   if (!flora_routes_customer(req, &customer)) {
      if (!add) {
         return flora_http_error(res, 404, "not_found", "X-Cart-Token", "no cart: send X-Cart-Token or sign in", NULL);
      }
      flora_cart_new_token(token);
      customer.guest_token = token;
   }
   if (!flora_cart_set_item(app->store, &customer, sku, quantity, add, cart_ttl(app), &out, &error)) {
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   if (token[0]) {
      BSON_APPEND_UTF8(&out, "cartToken", token);
   }
   flora_routes_answer(res, token[0] ? 201 : 200, &out);
   bson_destroy(&out);
   return true;
}

static bool
add_cart_item(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   const char *sku;
   int32_t quantity;
   bson_t body;
   bool ok = true;

   if (cart_body(req, true, &sku, &quantity, &body, res)) {
      ok = write_cart(app, req, res, sku, quantity, true);
   }
   bson_destroy(&body);
   return ok;
}

static bool
set_cart_item(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   const char *sku;
   int32_t quantity;
   bson_t body;
   bool ok = true;

   if (cart_body(req, false, &sku, &quantity, &body, res)) {
      ok = write_cart(app, req, res, flora_http_param(req, "sku"), quantity, false);
   }
   bson_destroy(&body);
   return ok;
}

static bool
delete_cart_item(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   return write_cart(app, req, res, flora_http_param(req, "sku"), 0, false);
}

static bool
clear_cart(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_customer_t customer;
   flora_error_t error = {0};

   if (flora_routes_customer(req, &customer) && !flora_cart_clear(app->store, &customer, &error)) {
      return flora_routes_fail(res, &error, NULL);
   }
   res->status = 204;
   return true;
}

static bool
merge_cart(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   const char *token = flora_routes_cart_token(req);
   flora_error_t error = {0};
   bson_t out;

   if (!req->principal.has_user) {
      return flora_http_error(res, 403, "forbidden", NULL, "merging needs a signed-in user", NULL);
   }
   if (!token) {
      return flora_http_error(res, 400, "invalid_argument", "X-Cart-Token", "the guest cart's token is required", NULL);
   }
   if (!flora_cart_merge(app->store, token, &req->principal.user_id, cart_ttl(app), &out, &error)) {
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   flora_routes_answer(res, 200, &out);
   bson_destroy(&out);
   return true;
}

/* ---- checkout ------------------------------------------------------------------------ */

static bool
checkout(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_customer_t customer;
   flora_error_t error = {0};
   char token[FLORA_CART_TOKEN_LEN + 1] = "";
   bson_t input, order, problems = BSON_INITIALIZER;
   bool replayed = false;
   const char *key = flora_http_header(req, "Idempotency-Key");

   if (!flora_http_body_json(req, &input, &error)) {
      bson_destroy(&input);
      bson_destroy(&problems);
      return flora_http_fail(res, &error);
   }
   if (!flora_routes_customer(req, &customer)) {
      if (!bson_has_field(&input, "items")) {
         bson_destroy(&input);
         bson_destroy(&problems);
         return flora_http_error(res, 400, "invalid_argument", "X-Cart-Token",
                                 "a guest checkout needs the cart's X-Cart-Token, or items", NULL);
      }
      flora_cart_new_token(token);
      customer.guest_token = token;
      customer.new_guest = true;
   }
   if (!flora_checkout(app->store, app->config, &customer, &input, key, &problems, &order, &replayed, &error)) {
      if (error.domain == FLORA_DOMAIN_VALIDATION && strstr(error.message, "Idempotency-Key")) {
         flora_http_error(res, 400, "invalid_argument", "Idempotency-Key", "must be 1-200 characters", NULL);
      } else if (error.domain == FLORA_DOMAIN_SHOP && error.code == FLORA_ERR_INVALID &&
                 strncmp(error.message, FLORA_CHECKOUT_KEY_REUSED, strlen(FLORA_CHECKOUT_KEY_REUSED)) == 0) {
         flora_http_error(res, 422, FLORA_CHECKOUT_KEY_REUSED, "Idempotency-Key",
                          error.message + strlen(FLORA_CHECKOUT_KEY_REUSED ": "), NULL);
      } else {
         flora_routes_fail(res, &error, &problems);
      }
   } else {
      if (token[0]) {
         bson_iter_t gt;

         /* A replay answers the first order, and its token is the one that sees it. */
         if (replayed && bson_iter_init_find(&gt, &order, "guestToken") && BSON_ITER_HOLDS_UTF8(&gt)) {
            snprintf(token, sizeof token, "%s", bson_iter_utf8(&gt, NULL));
         }
         BSON_APPEND_UTF8(&order, "cartToken", token);
      }
      flora_routes_answer(res, replayed ? 200 : 201, &order);
      {
         bson_iter_t it;
         char hex[25];

         if (bson_iter_init_find(&it, &order, "_id") && BSON_ITER_HOLDS_OID(&it)) {
            size_t n = sizeof "/api/v1/orders/" + 24;

            bson_oid_to_string(bson_iter_oid(&it), hex);
            res->location = malloc(n);
            snprintf(res->location, n, "/api/v1/orders/%s", hex);
         }
      }
   }
   bson_destroy(&input);
   bson_destroy(&order);
   bson_destroy(&problems);
   return true;
}

/* ---- orders: customers ---------------------------------------------------------------- */

static bool
page_params(const flora_http_request_t *req, int64_t *page, int64_t *page_size, flora_http_response_t *res)
{
   const char *p = flora_http_query(req, "page"), *s = flora_http_query(req, "pageSize");

   *page = 1;
   *page_size = 20;
   if (p && !flora_routes_int(p, 1, 1000000, page)) {
      flora_http_error(res, 400, "invalid_argument", "page", "must be a whole number from 1", NULL);
      return false;
   }
   if (s && !flora_routes_int(s, 1, 100, page_size)) {
      flora_http_error(res, 400, "invalid_argument", "pageSize", "must be a whole number from 1 to 100", NULL);
      return false;
   }
   return true;
}

static bool
my_orders(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   static const char *const known[] = {"page", "pageSize", "status", NULL};
   flora_order_query_t q = FLORA_ORDER_QUERY_INIT;
   flora_customer_t customer;
   flora_error_t error = {0};
   bson_t out;

   if (!flora_routes_known_params(req, known, res) || !page_params(req, &q.page, &q.page_size, res)) {
      return true;
   }
   if (!flora_routes_customer(req, &customer)) {
      return flora_http_error(res, 401, "unauthorized", NULL, "sign in or send the X-Cart-Token of your orders", NULL);
   }
   q.customer = &customer;
   q.status = flora_http_query(req, "status");
   if (!flora_orders_list(app->store, &q, &out, &error)) {
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   flora_routes_answer(res, 200, &out);
   bson_destroy(&out);
   return true;
}

/* The order of the path's {id} when it belongs to the caller (else a 404 answer). */
static bool
own_order(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res, bson_oid_t *id, bson_t *out)
{
   flora_customer_t customer;
   flora_error_t error = {0};
   char key[200];
   bson_iter_t it;
   bool found = false;

   bson_init(out);
   if (!flora_routes_oid(flora_http_param(req, "id"), id) || !flora_routes_customer(req, &customer)) {
      flora_http_error(res, 404, "not_found", "id", "no such order", NULL);
      return false;
   }
   bson_destroy(out);
   if (!flora_orders_get(app->store, id, out, &found, &error)) {
      flora_routes_fail(res, &error, NULL);
      return false;
   }
   flora_customer_key(&customer, key, sizeof key);
   if (!found || !bson_iter_init_find(&it, out, "customerKey") || !BSON_ITER_HOLDS_UTF8(&it) ||
       strcmp(bson_iter_utf8(&it, NULL), key) != 0) {
      /* Someone else's order is indistinguishable from none. */
      flora_http_error(res, 404, "not_found", "id", "no such order", NULL);
      return false;
   }
   return true;
}

static bool
my_order(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   bson_oid_t id;
   bson_t order;

   if (own_order(app, req, res, &id, &order)) {
      flora_routes_answer(res, 200, &order);
   }
   bson_destroy(&order);
   return true;
}

/* After a committed move to cancelled or refunded the payments module gives the money
 * back (flora_pay_settle_order; docs/orders.md), and *out becomes the order as it is then
 * (with the history's note of the refund). A refund that fails stays recorded on the
 * payment for `flora payments reconcile`; the status change stands either way. */
static void
settle_money(flora_app_t *app, const bson_oid_t *id, bson_t *out)
{
   flora_error_t error = {0};
   bson_iter_t it;
   bson_t fresh;
   bool found = false;
   char hex[25];

   if (!app->pay || !bson_iter_init_find(&it, out, "status") || !BSON_ITER_HOLDS_UTF8(&it) ||
       (strcmp(bson_iter_utf8(&it, NULL), "cancelled") != 0 && strcmp(bson_iter_utf8(&it, NULL), "refunded") != 0)) {
      return;
   }
   if (!flora_pay_settle_order(app->pay, id, NULL, &error)) {
      bson_oid_to_string(id, hex);
      FLORA_LOG_WARN("http", "automatic refund failed; reconcile retries it", "order", hex, "error", error.message);
   }
   if (flora_orders_get(app->store, id, &fresh, &found, &error) && found) {
      bson_destroy(out);
      bson_copy_to(&fresh, out);
   }
   bson_destroy(&fresh);
}

static bool
cancel_my_order(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id;
   bson_t order, out;
   bson_iter_t it;
   char actor[64];

   if (own_order(app, req, res, &id, &order)) {
      /* Customers may cancel until the shop starts assembling (docs/orders.md). */
      if (bson_iter_init_find(&it, &order, "status") && BSON_ITER_HOLDS_UTF8(&it) &&
          strcmp(bson_iter_utf8(&it, NULL), "pending_payment") != 0 && strcmp(bson_iter_utf8(&it, NULL), "paid") != 0) {
         flora_http_error(res, 409, "conflict", "status", "the order can no longer be cancelled by the customer; "
                                                          "ask the shop", NULL);
      } else {
         flora_routes_actor(req, actor, sizeof actor);
         if (!req->principal.has_user) {
            snprintf(actor, sizeof actor, "guest");
         }
         if (!flora_orders_transition(app->store, &id, "cancelled", actor, "cancelled by the customer", &out,
                                      &error)) {
            flora_routes_fail(res, &error, NULL);
         } else {
            settle_money(app, &id, &out);
            flora_routes_answer(res, 200, &out);
         }
         bson_destroy(&out);
      }
   }
   bson_destroy(&order);
   return true;
}

/* ---- orders: managers ----------------------------------------------------------------- */

static bool
date_param(const char *s)
{
   return s && strlen(s) == 10 && s[4] == '-' && s[7] == '-' && strspn(s, "0123456789-") == 10;
}

static bool
admin_list_orders(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   static const char *const known[] = {"page", "pageSize", "status", "deliveryDate", "createdFrom", "createdTo",
                                       "sort", NULL};
   flora_order_query_t q = FLORA_ORDER_QUERY_INIT;
   flora_error_t error = {0};
   const char *s;
   bson_t out;

   if (!flora_routes_known_params(req, known, res) || !page_params(req, &q.page, &q.page_size, res)) {
      return true;
   }
   if ((s = flora_http_query(req, "status"))) {
      bool ok = false;

      for (const char *const *st = flora_order_statuses(); *st; st++) {
         ok = ok || strcmp(*st, s) == 0;
      }
      if (!ok) {
         return flora_http_error(res, 400, "invalid_argument", "status", "not an order status", NULL);
      }
      q.status = s;
   }
   if ((s = flora_http_query(req, "deliveryDate"))) {
      if (!date_param(s)) {
         return flora_http_error(res, 400, "invalid_argument", "deliveryDate", "must be YYYY-MM-DD", NULL);
      }
      q.delivery_date = s;
   }
   for (int i = 0; i < 2; i++) {
      const char *name = i == 0 ? "createdFrom" : "createdTo";
      int64_t *ms = i == 0 ? &q.created_from_ms : &q.created_to_ms;

      if ((s = flora_http_query(req, name))) {
         char json[96];
         bson_t *doc;
         bson_iter_t it;

         if (strlen(s) > 40 || strspn(s, "0123456789-:.TZ+") != strlen(s)) {
            return flora_http_error(res, 400, "invalid_argument", name, "must be an RFC 3339 date-time", NULL);
         }
         snprintf(json, sizeof json, "{\"d\": {\"$date\": \"%s\"}}", s);
         doc = bson_new_from_json((const uint8_t *) json, -1, NULL);
         if (!doc || !bson_iter_init_find(&it, doc, "d") || !BSON_ITER_HOLDS_DATE_TIME(&it)) {
            if (doc) {
               bson_destroy(doc);
            }
            return flora_http_error(res, 400, "invalid_argument", name, "must be an RFC 3339 date-time", NULL);
         }
         *ms = bson_iter_date_time(&it);
         bson_destroy(doc);
      }
   }
   if ((s = flora_http_query(req, "sort"))) {
      if (strcmp(s, "newest") == 0) {
         q.sort = FLORA_ORDER_SORT_NEWEST;
      } else if (strcmp(s, "oldest") == 0) {
         q.sort = FLORA_ORDER_SORT_OLDEST;
      } else if (strcmp(s, "delivery") == 0) {
         q.sort = FLORA_ORDER_SORT_DELIVERY;
      } else {
         return flora_http_error(res, 400, "invalid_argument", "sort", "must be newest, oldest or delivery", NULL);
      }
   }
   if (!flora_orders_list(app->store, &q, &out, &error)) {
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   flora_routes_answer(res, 200, &out);
   bson_destroy(&out);
   return true;
}

static bool
admin_get_order(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id;
   bson_t out;
   bool found = false;

   if (!flora_routes_oid(flora_http_param(req, "id"), &id)) {
      return flora_http_error(res, 404, "not_found", "id", "no such order", NULL);
   }
   if (!flora_orders_get(app->store, &id, &out, &found, &error)) {
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   if (!found) {
      bson_destroy(&out);
      return flora_http_error(res, 404, "not_found", "id", "no such order", NULL);
   }
   flora_routes_answer(res, 200, &out);
   bson_destroy(&out);
   return true;
}

static bool
admin_order_by_number(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t out;
   bool found = false;
   const char *number = flora_http_param(req, "number");

   if (strlen(number) > 32 || !flora_orders_get_by_number(app->store, number, &out, &found, &error)) {
      if (strlen(number) > 32) {
         return flora_http_error(res, 404, "not_found", "number", "no such order", NULL);
      }
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   if (!found) {
      bson_destroy(&out);
      return flora_http_error(res, 404, "not_found", "number", "no such order", NULL);
   }
   flora_routes_answer(res, 200, &out);
   bson_destroy(&out);
   return true;
}

static bool
admin_set_status(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id;
   bson_t body, out, problems = BSON_INITIALIZER;
   bson_iter_t it;
   const char *status = NULL, *note = NULL;
   char actor[64];

   if (!flora_routes_oid(flora_http_param(req, "id"), &id)) {
      bson_destroy(&problems);
      return flora_http_error(res, 404, "not_found", "id", "no such order", NULL);
   }
   if (!flora_http_body_json(req, &body, &error)) {
      bson_destroy(&body);
      bson_destroy(&problems);
      return flora_http_fail(res, &error);
   }
   bson_iter_init(&it, &body);
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);

      if (key[0] == '$' || BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_REGEX(&it)) {
         /* answer before freeing body: key points into it */
         flora_http_error(res, 400, "invalid_argument", key, "operators and objects are not allowed here", NULL);
         bson_destroy(&body);
         bson_destroy(&problems);
         return true;
      }
      if (strcmp(key, "status") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
         status = bson_iter_utf8(&it, NULL);
      } else if (strcmp(key, "note") == 0 && BSON_ITER_HOLDS_UTF8(&it) && strlen(bson_iter_utf8(&it, NULL)) <= 3000) {
         note = bson_iter_utf8(&it, NULL);
      } else if (strcmp(key, "status") == 0 || strcmp(key, "note") == 0) {
         flora_schema_problem(&problems, key, strcmp(key, "status") == 0 ? "must be a string"
                                                                        : "must be a string of at most 3000 bytes");
      } else {
         flora_schema_problem(&problems, key, "unknown field");
      }
   }
   if (!status && !bson_has_field(&body, "status")) {
      flora_schema_problem(&problems, "status", "is required");
   }
   if (!bson_empty(&problems)) {
      flora_http_error(res, 422, "validation_failed", NULL, "the status change is invalid", &problems);
   } else {
      flora_routes_actor(req, actor, sizeof actor);
      if (!flora_orders_transition(app->store, &id, status, actor, note, &out, &error)) {
         if (error.domain == FLORA_DOMAIN_VALIDATION) {
            flora_schema_problem(&problems, "status", error.message);
         }
         flora_routes_fail(res, &error, &problems);
      } else {
         settle_money(app, &id, &out);
         flora_routes_answer(res, 200, &out);
      }
      bson_destroy(&out);
   }
   bson_destroy(&body);
   bson_destroy(&problems);
   return true;
}

const flora_route_t flora_routes_orders[] = {
   {"GET", "/api/v1/cart", "cart.get", FLORA_AUTH_NONE, get_cart},
   {"DELETE", "/api/v1/cart", "cart.clear", FLORA_AUTH_NONE, clear_cart},
   {"POST", "/api/v1/cart/items", "cart.items.add", FLORA_AUTH_NONE, add_cart_item},
   {"PUT", "/api/v1/cart/items/{sku}", "cart.items.set", FLORA_AUTH_NONE, set_cart_item},
   {"DELETE", "/api/v1/cart/items/{sku}", "cart.items.delete", FLORA_AUTH_NONE, delete_cart_item},
   {"POST", "/api/v1/cart/merge", "cart.merge", FLORA_AUTH_CUSTOMER, merge_cart},
   {"POST", "/api/v1/checkout", "checkout", FLORA_AUTH_NONE, checkout},
   {"GET", "/api/v1/orders", "orders.list", FLORA_AUTH_NONE, my_orders},
   {"GET", "/api/v1/orders/{id}", "orders.get", FLORA_AUTH_NONE, my_order},
   {"POST", "/api/v1/orders/{id}/cancel", "orders.cancel", FLORA_AUTH_NONE, cancel_my_order},
   {"GET", "/api/v1/admin/orders", "admin.orders.list", FLORA_AUTH_MANAGER, admin_list_orders},
   {"GET", "/api/v1/admin/orders/{id}", "admin.orders.get", FLORA_AUTH_MANAGER, admin_get_order},
   {"GET", "/api/v1/admin/orders/by-number/{number}", "admin.orders.by_number", FLORA_AUTH_MANAGER,
    admin_order_by_number},
   {"POST", "/api/v1/admin/orders/{id}/status", "admin.orders.status", FLORA_AUTH_MANAGER, admin_set_status},
   {NULL, NULL, NULL, FLORA_AUTH_NONE, NULL},
};
