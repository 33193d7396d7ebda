/* Coupon routes: the storefront's validate call and the managers' CRUD, thin adapters over
 * include/flora/coupons.h. Documented in docs/openapi.json. */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "flora/contact.h"
#include "flora/coupons.h"
#include "flora/orders.h"
#include "flora/schema.h"
#include "http.h"
#include "routes_shop.h"

/* POST /api/v1/coupons/validate {code, items?: [{sku, quantity}] | subtotal?, email?}:
 * whether the code applies and, when not, why. Uses the caller's cart when neither items
 * nor subtotal is given. */
static bool
validate_coupon(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t body, problems = BSON_INITIALIZER, result, items = BSON_INITIALIZER, cart;
   bson_iter_t it;
   const char *code = NULL;
   const bson_t *lines = NULL;
   int64_t subtotal = 0;
   char key[300] = "", email[256] = "";
   flora_customer_t customer;

   bson_init(&cart);
   bson_init(&result);
   if (!flora_http_body_json(req, &body, &error)) {
      flora_http_fail(res, &error);
      goto cleanup;
   }
   bson_iter_init(&it, &body);
   while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);

      if (k[0] == '$') {
         flora_http_error(res, 400, "invalid_argument", k, "operators are not allowed", NULL);
         goto cleanup;
      }
      if (strcmp(k, "code") == 0) {
         if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_REGEX(&it)) {
            /* {"$regex": ...} arrives as a BSON regex from libbson's Extended JSON reader. */
            flora_http_error(res, 400, "invalid_argument", "code", "operators are not allowed", NULL);
            goto cleanup;
         }
         if (!BSON_ITER_HOLDS_UTF8(&it) || !*bson_iter_utf8(&it, NULL) || strlen(bson_iter_utf8(&it, NULL)) > 40) {
            flora_schema_problem(&problems, "code", "must be a string of 1-40 characters");
         } else {
            code = bson_iter_utf8(&it, NULL);
         }
      } else if (strcmp(k, "subtotal") == 0) {
         if (!(BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) || bson_iter_as_int64(&it) < 0 ||
             bson_iter_as_int64(&it) > INT64_C(100000000000)) {
            flora_schema_problem(&problems, "subtotal", "must be a whole number of kopecks >= 0");
         } else {
            subtotal = bson_iter_as_int64(&it);
         }
      } else if (strcmp(k, "items") == 0) {
         bson_iter_t arr;
         uint32_t n = 0;

         if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr)) {
            flora_schema_problem(&problems, "items", "must be an array of {sku, quantity}");
            continue;
         }
         while (bson_iter_next(&arr)) {
            bson_iter_t f;
            const char *sku = NULL;
            int64_t qty = 0;
            char path[48];
            bool bad = !BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &f);

            while (!bad && bson_iter_next(&f)) {
               if (bson_iter_key(&f)[0] == '$' || BSON_ITER_HOLDS_DOCUMENT(&f) || BSON_ITER_HOLDS_REGEX(&f)) {
                  snprintf(path, sizeof path, "items.%u.%s", n, bson_iter_key(&f));
                  flora_http_error(res, 400, "invalid_argument", path, "operators are not allowed", NULL);
                  goto cleanup;
               }
               if (strcmp(bson_iter_key(&f), "sku") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
                  sku = bson_iter_utf8(&f, NULL);
               } else if (strcmp(bson_iter_key(&f), "quantity") == 0 &&
                          (BSON_ITER_HOLDS_INT32(&f) || BSON_ITER_HOLDS_INT64(&f))) {
                  qty = bson_iter_as_int64(&f);
               } else {
                  bad = true;
               }
            }
            if (bad || !sku || qty < 1 || qty > 999 || n >= 50) {
               snprintf(path, sizeof path, "items.%u", n);
               flora_schema_problem(&problems, path, "must be {sku: string, quantity: 1-999} (at most 50 lines)");
            } else {
               bson_t line;
               char idx[16];
               const char *ik;

               bson_uint32_to_string(n, &ik, idx, sizeof idx);
               BSON_APPEND_DOCUMENT_BEGIN(&items, ik, &line);
               BSON_APPEND_UTF8(&line, "sku", sku);
               BSON_APPEND_INT32(&line, "quantity", (int32_t) qty);
               bson_append_document_end(&items, &line);
            }
            n++;
         }
         lines = &items;
      } else if (strcmp(k, "email") == 0) {
         flora_error_t e = {0};

         if (!BSON_ITER_HOLDS_UTF8(&it) || !flora_email_normalize(bson_iter_utf8(&it, NULL), email, sizeof email, &e)) {
            flora_schema_problem(&problems, "email", "must be an e-mail address");
         } else {
            snprintf(key, sizeof key, "email:%s", email);
         }
      } else {
         flora_schema_problem(&problems, k, "unknown field");
      }
   }
   if (!bson_has_field(&body, "code")) {
      flora_schema_problem(&problems, "code", "is required");
   }
   if (!bson_empty(&problems)) {
      flora_http_error(res, 422, "validation_failed", NULL, "the request is invalid", &problems);
      goto cleanup;
   }
   if (req->principal.has_user) {
      flora_customer_t user = {.has_user = true};

      bson_oid_copy(&req->principal.user_id, &user.user_id);
      if (!flora_customer_coupon_key(app->store, &user, email[0] ? email : NULL, key, sizeof key, &error)) {
         flora_routes_fail(res, &error, NULL);
         goto cleanup;
      }
   }
   if (!lines && !bson_has_field(&body, "subtotal") && flora_routes_customer(req, &customer)) {
      /* The caller's cart. */
      bson_iter_t ci, li;
      uint32_t n = 0;

      bson_destroy(&cart);
      if (!flora_cart_get(app->store, &customer, &cart, &error)) {
         flora_routes_fail(res, &error, NULL);
         goto cleanup;
      }
      if (bson_iter_init_find(&ci, &cart, "items") && bson_iter_recurse(&ci, &li)) {
         while (bson_iter_next(&li)) {
            bson_iter_t f;
            bson_t line;
            char idx[16];
            const char *ik;

            bson_uint32_to_string(n++, &ik, idx, sizeof idx);
            BSON_APPEND_DOCUMENT_BEGIN(&items, ik, &line);
            bson_iter_recurse(&li, &f);
            while (bson_iter_next(&f)) {
               if (strcmp(bson_iter_key(&f), "sku") == 0 || strcmp(bson_iter_key(&f), "quantity") == 0) {
                  bson_append_iter(&line, bson_iter_key(&f), -1, &f);
               }
            }
            bson_append_document_end(&items, &line);
         }
      }
      lines = &items;
   }
   if (!flora_coupons_check(app->store, code, lines, subtotal, key[0] ? key : NULL,
                            flora_config_int(app->config, "delivery.flat_fee"), 0, &result, &error)) {
      flora_routes_fail(res, &error, NULL);
      goto cleanup;
   }
   flora_routes_answer(res, 200, &result);
cleanup:
   bson_destroy(&body);
   bson_destroy(&problems);
   bson_destroy(&result);
   bson_destroy(&items);
   bson_destroy(&cart);
   return true;
}

static bool
answer_write(flora_http_response_t *res, bool ok, int status, bson_t *doc, const bson_t *problems,
             const flora_error_t *error)
{
   if (!ok) {
      return flora_routes_fail(res, error, problems);
   }
   flora_routes_answer(res, status, doc);
   return true;
}

static bool
admin_list(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   static const char *const known[] = {"page", "pageSize", NULL};
   flora_error_t error = {0};
   int64_t page = 1, size = 20;
   bson_t out;

   if (!flora_routes_known_params(req, known, res)) {
      return true;
   }
   if (flora_http_query(req, "page") && !flora_routes_int(flora_http_query(req, "page"), 1, 1000000, &page)) {
      return flora_http_error(res, 400, "invalid_argument", "page", "must be a whole number from 1", NULL);
   }
   if (flora_http_query(req, "pageSize") && !flora_routes_int(flora_http_query(req, "pageSize"), 1, 100, &size)) {
      return flora_http_error(res, 400, "invalid_argument", "pageSize", "must be a whole number from 1 to 100", NULL);
   }
   if (!flora_coupons_list(app->store, page, size, &out, &error)) {
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   flora_routes_answer(res, 200, &out);
   bson_destroy(&out);
   return true;
}

static bool
admin_create(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t body, out, problems = BSON_INITIALIZER;
   bool ok;

   if (!flora_http_body_json(req, &body, &error)) {
      bson_destroy(&body);
      bson_destroy(&problems);
      return flora_http_fail(res, &error);
   }
   ok = flora_coupons_create(app->store, &body, &problems, &out, &error);
   answer_write(res, ok, 201, &out, &problems, &error);
   bson_destroy(&body);
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
admin_get(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t out;
   bool found = false;

   if (!flora_coupons_get(app->store, flora_http_param(req, "code"), &out, &found, &error)) {
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   if (!found) {
      bson_destroy(&out);
      return flora_http_error(res, 404, "not_found", "code", "no coupon has this code", NULL);
   }
   flora_routes_answer(res, 200, &out);
   bson_destroy(&out);
   return true;
}

static bool
admin_update(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t body, out, problems = BSON_INITIALIZER;
   bool ok;

   if (!flora_http_body_json(req, &body, &error)) {
      bson_destroy(&body);
      bson_destroy(&problems);
      return flora_http_fail(res, &error);
   }
   ok = flora_coupons_update(app->store, flora_http_param(req, "code"), &body, &problems, &out, &error);
   answer_write(res, ok, 200, &out, &problems, &error);
   bson_destroy(&body);
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
admin_delete(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};

   if (!flora_coupons_delete(app->store, flora_http_param(req, "code"), &error)) {
      return flora_routes_fail(res, &error, NULL);
   }
   res->status = 204;
   return true;
}

const flora_route_t flora_routes_coupons[] = {
   {"POST", "/api/v1/coupons/validate", "coupons.validate", FLORA_AUTH_NONE, validate_coupon},
   {"GET", "/api/v1/admin/coupons", "admin.coupons.list", FLORA_AUTH_MANAGER, admin_list},
   {"POST", "/api/v1/admin/coupons", "admin.coupons.create", FLORA_AUTH_MANAGER, admin_create},
   {"GET", "/api/v1/admin/coupons/{code}", "admin.coupons.get", FLORA_AUTH_MANAGER, admin_get},
   {"PATCH", "/api/v1/admin/coupons/{code}", "admin.coupons.update", FLORA_AUTH_MANAGER, admin_update},
   {"DELETE", "/api/v1/admin/coupons/{code}", "admin.coupons.delete", FLORA_AUTH_MANAGER, admin_delete},
   {NULL, NULL, NULL, FLORA_AUTH_NONE, NULL},
};
