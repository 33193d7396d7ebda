/* Review routes: a product's approved reviews, the author's writes and the managers'
 * moderation, thin adapters over include/flora/reviews.h. Documented in docs/openapi.json. */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "flora/catalog.h"
#include "flora/reviews.h"
#include "flora/schema.h"
#include "flora/users.h"
#include "http.h"
#include "routes_shop.h"

static bool
page_of(const flora_http_request_t *req, flora_http_response_t *res, int64_t *page, int64_t *size)
{
   *page = 1;
   *size = 20;
   if (flora_http_query(req, "page") && !flora_routes_int(flora_http_query(req, "page"), 1, 1000000, page)) {
      flora_http_error(res, 400, "invalid_argument", "page", "must be a whole number from 1", NULL);
      return false;
   }
   if (flora_http_query(req, "pageSize") && !flora_routes_int(flora_http_query(req, "pageSize"), 1, 100, size)) {
      flora_http_error(res, 400, "invalid_argument", "pageSize", "must be a whole number from 1 to 100", NULL);
      return false;
   }
   return true;
}

static bool
product_reviews(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   static const char *const known[] = {"page", "pageSize", NULL};
   flora_error_t error = {0};
   bson_t product, out;
   bson_iter_t it;
   bool found = false;
   int64_t page, size;

   if (!flora_routes_known_params(req, known, res) || !page_of(req, res, &page, &size)) {
      return true;
   }
   if (!flora_catalog_get_product(app->store, flora_http_param(req, "slug"), &product, &found, &error)) {
      bson_destroy(&product);
      return flora_routes_fail(res, &error, NULL);
   }
   if (!found || !bson_iter_init_find(&it, &product, "_id")) {
      bson_destroy(&product);
      return flora_http_error(res, 404, "not_found", "slug", "no product has this slug", NULL);
   }
   if (!flora_reviews_list(app->store, bson_iter_oid(&it), "approved", page, size, &out, &error)) {
      bson_destroy(&product);
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   if (bson_iter_init_find(&it, &product, "rating")) {
      bson_append_iter(&out, "rating", -1, &it);
   }
   flora_routes_answer(res, 200, &out);
   bson_destroy(&product);
   bson_destroy(&out);
   return true;
}

static bool
create_review(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t body, out, problems = BSON_INITIALIZER, user;
   bson_iter_t it;
   bool found = false, ok;
   const char *name = NULL;

   bson_init(&user);
   if (!req->principal.has_user) {
      bson_destroy(&problems);
      bson_destroy(&user);
      return flora_http_error(res, 403, "forbidden", NULL, "reviews are written by signed-in customers", NULL);
   }
   if (!flora_http_body_json(req, &body, &error)) {
      bson_destroy(&body);
      bson_destroy(&problems);
      bson_destroy(&user);
      return flora_http_fail(res, &error);
   }
   bson_destroy(&user);
   if (flora_users_get(app->store, &req->principal.user_id, &user, &found, &error) && found &&
       bson_iter_init_find(&it, &user, "name") && BSON_ITER_HOLDS_UTF8(&it)) {
      name = bson_iter_utf8(&it, NULL);
   }
   ok = flora_reviews_create(app->store, &req->principal.user_id, name, &body, &problems, &out, &error);
   if (!ok) {
      flora_routes_fail(res, &error, &problems);
   } else {
      flora_routes_answer(res, 201, &out);
   }
   bson_destroy(&body);
   bson_destroy(&out);
   bson_destroy(&problems);
   bson_destroy(&user);
   return true;
}

static bool
update_review(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t body, out, problems = BSON_INITIALIZER;
   bson_oid_t id;

   if (!req->principal.has_user || !flora_routes_oid(flora_http_param(req, "id"), &id)) {
      bson_destroy(&problems);
      return flora_http_error(res, 404, "not_found", "id", "no such review", NULL);
   }
   if (!flora_http_body_json(req, &body, &error)) {
      bson_destroy(&body);
      bson_destroy(&problems);
      return flora_http_fail(res, &error);
   }
   if (!flora_reviews_update(app->store, &id, &req->principal.user_id, &body, &problems, &out, &error)) {
      flora_routes_fail(res, &error, &problems);
   } else {
      flora_routes_answer(res, 200, &out);
   }
   bson_destroy(&body);
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
delete_review(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id;
   bool manager = req->principal.role >= FLORA_ROLE_MANAGER;

   if (!flora_routes_oid(flora_http_param(req, "id"), &id) || (!manager && !req->principal.has_user)) {
      return flora_http_error(res, 404, "not_found", "id", "no such review", NULL);
   }
   if (!flora_reviews_delete(app->store, &id, manager ? NULL : &req->principal.user_id, &error)) {
      return flora_routes_fail(res, &error, NULL);
   }
   res->status = 204;
   return true;
}

static bool
admin_list_reviews(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   static const char *const known[] = {"status", "page", "pageSize", NULL};
   flora_error_t error = {0};
   const char *status = flora_http_query(req, "status");
   int64_t page, size;
   bson_t out;

   if (!flora_routes_known_params(req, known, res) || !page_of(req, res, &page, &size)) {
      return true;
   }
   if (status && strcmp(status, "pending") != 0 && strcmp(status, "approved") != 0 && strcmp(status, "rejected") != 0) {
      return flora_http_error(res, 400, "invalid_argument", "status", "must be pending, approved or rejected", NULL);
   }
   if (!flora_reviews_list(app->store, NULL, status, page, size, &out, &error)) {
      bson_destroy(&out);
      return flora_routes_fail(res, &error, NULL);
   }
   flora_routes_answer(res, 200, &out);
   bson_destroy(&out);
   return true;
}

static bool
moderate_review(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t body, out, problems = BSON_INITIALIZER;
   bson_iter_t it;
   bson_oid_t id;
   char actor[64];
   const char *status = NULL;

   bson_init(&out);
   if (!flora_routes_oid(flora_http_param(req, "id"), &id)) {
      bson_destroy(&problems);
      bson_destroy(&out);
      return flora_http_error(res, 404, "not_found", "id", "no such review", NULL);
   }
   if (!flora_http_body_json(req, &body, &error)) {
      bson_destroy(&body);
      bson_destroy(&problems);
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   bson_iter_init(&it, &body);
   while (bson_iter_next(&it)) {
      if (bson_iter_key(&it)[0] == '$' || BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_REGEX(&it)) {
         flora_http_error(res, 400, "invalid_argument", bson_iter_key(&it), "operators are not allowed", NULL);
         goto cleanup;
      }
      if (strcmp(bson_iter_key(&it), "status") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
         status = bson_iter_utf8(&it, NULL);
      } else {
         flora_schema_problem(&problems, bson_iter_key(&it),
                              strcmp(bson_iter_key(&it), "status") == 0 ? "must be a string" : "unknown field");
      }
   }
   if (!bson_has_field(&body, "status")) {
      flora_schema_problem(&problems, "status", "is required");
   }
   if (!bson_empty(&problems)) {
      flora_http_error(res, 422, "validation_failed", NULL, "the moderation is invalid", &problems);
      goto cleanup;
   }
   flora_routes_actor(req, actor, sizeof actor);
   bson_destroy(&out);
   if (!flora_reviews_moderate(app->store, &id, status, actor, &out, &error)) {
      if (error.domain == FLORA_DOMAIN_VALIDATION) {
         flora_schema_problem(&problems, "status", "must be pending, approved or rejected");
      }
      flora_routes_fail(res, &error, &problems);
      goto cleanup;
   }
   flora_routes_answer(res, 200, &out);
cleanup:
   bson_destroy(&body);
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

const flora_route_t flora_routes_reviews[] = {
   {"GET", "/api/v1/products/{slug}/reviews", "reviews.list", FLORA_AUTH_NONE, product_reviews},
   {"POST", "/api/v1/reviews", "reviews.create", FLORA_AUTH_CUSTOMER, create_review},
   {"PATCH", "/api/v1/reviews/{id}", "reviews.update", FLORA_AUTH_CUSTOMER, update_review},
   {"DELETE", "/api/v1/reviews/{id}", "reviews.delete", FLORA_AUTH_CUSTOMER, delete_review},
   {"GET", "/api/v1/admin/reviews", "admin.reviews.list", FLORA_AUTH_MANAGER, admin_list_reviews},
   {"POST", "/api/v1/admin/reviews/{id}/moderation", "admin.reviews.moderate", FLORA_AUTH_MANAGER, moderate_review},
   {NULL, NULL, NULL, FLORA_AUTH_NONE, NULL},
};
