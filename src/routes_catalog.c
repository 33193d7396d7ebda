/* Catalog routes: thin adapters over include/flora/catalog.h. Money in kopecks (int64)
 * both ways; documented in docs/openapi.json. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "flora/catalog.h"
#include "http.h"

static bool
parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
   char *end = NULL;
   long long v;

   if (!s || !*s) {
      return false;
   }
   errno = 0;
   v = strtoll(s, &end, 10);
   if (errno || *end || v < min || v > max) {
      return false;
   }
   *out = v;
   return true;
}

static bool
parse_bool(const char *s, bool *out)
{
   if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
      *out = true;
      return true;
   }
   if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
      *out = false;
      return true;
   }
   return false;
}

typedef struct list_params {
   flora_app_t *app;
   flora_product_query_t query;
   const char *bad_name;
   char reason[160];
} list_params_t;

#define TEXT_PARAM_MAX 200

static bool
text_param(list_params_t *p, const char *name, const char *value, const char **out)
{
   if (!*value) {
      snprintf(p->reason, sizeof p->reason, "must not be empty");
      return false;
   }
   if (strlen(value) > TEXT_PARAM_MAX) {
      snprintf(p->reason, sizeof p->reason, "must be at most %d bytes", TEXT_PARAM_MAX);
      return false;
   }
   (void) name;
   *out = value;
   return true;
}

static bool
list_param(void *ctx, const char *name, const char *value)
{
   list_params_t *p = ctx;
   flora_product_query_t *q = &p->query;
   int64_t page_max = flora_config_int(p->app->config, "catalog.page_size_max");
   bool ok;

   if (strcmp(name, "category") == 0) {
      ok = text_param(p, name, value, &q->category);
   } else if (strcmp(name, "tag") == 0) {
      ok = text_param(p, name, value, &q->tag);
   } else if (strcmp(name, "flower") == 0) {
      ok = text_param(p, name, value, &q->flower);
   } else if (strcmp(name, "q") == 0) {
      ok = text_param(p, name, value, &q->q);
   } else if (strcmp(name, "minPrice") == 0 || strcmp(name, "maxPrice") == 0) {
      ok = parse_int64(value, 0, INT64_MAX / 2, name[1] == 'i' ? &q->price_min : &q->price_max);
      if (!ok) {
         snprintf(p->reason, sizeof p->reason, "must be a whole number of kopecks >= 0");
      }
   } else if (strcmp(name, "inStock") == 0) {
      ok = parse_bool(value, &q->in_stock);
      if (!ok) {
         snprintf(p->reason, sizeof p->reason, "must be true or false");
      }
   } else if (strcmp(name, "sort") == 0) {
      ok = flora_product_sort_parse(value, &q->sort);
      if (!ok) {
         snprintf(p->reason, sizeof p->reason,
                  "must be one of price, -price, popularity, newest, rating, relevance");
      }
   } else if (strcmp(name, "page") == 0) {
      ok = parse_int64(value, 1, 1000000, &q->page);
      if (!ok) {
         snprintf(p->reason, sizeof p->reason, "must be a whole number from 1");
      }
   } else if (strcmp(name, "pageSize") == 0) {
      ok = parse_int64(value, 1, page_max, &q->page_size);
      if (!ok) {
         snprintf(p->reason, sizeof p->reason, "must be a whole number from 1 to %" PRId64, page_max);
      }
   } else {
      ok = false;
      snprintf(p->reason, sizeof p->reason,
               "unknown parameter (known: category, minPrice, maxPrice, inStock, tag, flower, q, "
               "sort, page, pageSize)");
   }
   if (!ok) {
      p->bad_name = name;
   }
   return ok;
}

static bool
list_products(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   list_params_t p = {.app = app, .query = FLORA_PRODUCT_QUERY_INIT};
   flora_error_t error = {0};
   bson_t out;

   p.query.page_size = flora_config_int(app->config, "catalog.page_size_default");
   flora_http_query_each(req, list_param, &p);
   if (p.bad_name) {
      return flora_http_error(res, 400, "invalid_argument", p.bad_name, p.reason, NULL);
   }
   if (p.query.price_min >= 0 && p.query.price_max >= 0 && p.query.price_min > p.query.price_max) {
      return flora_http_error(res, 400, "invalid_argument", "minPrice", "must not exceed maxPrice", NULL);
   }
   if (p.query.sort == FLORA_SORT_RELEVANCE && !p.query.q) {
      return flora_http_error(res, 400, "invalid_argument", "sort", "relevance needs a search query q", NULL);
   }
   if (!flora_catalog_list_products(app->store, &p.query, &out, &error)) {
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   bson_destroy(&res->body);
   bson_steal(&res->body, &out);
   return true;
}

static bool
get_product(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t out;
   bool found = false;
   bson_iter_t it;

   if (!flora_catalog_get_product(app->store, flora_http_param(req, "slug"), &out, &found, &error)) {
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   if (!found || !bson_iter_init_find(&it, &out, "active") || !bson_iter_as_bool(&it)) {
      bson_destroy(&out);
      return flora_http_error(res, 404, "not_found", "slug", "no product has this slug", NULL);
   }
   bson_destroy(&res->body);
   bson_init(&res->body);
   {
      static const char *const hidden[] = {"flowerTerms", "categoryTree", "source"};
      bson_iter_t f;

      bson_iter_init(&f, &out);
      while (bson_iter_next(&f)) {
         bool skip = false;

         for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
            skip = skip || strcmp(hidden[i], bson_iter_key(&f)) == 0;
         }
         if (!skip) {
            bson_append_iter(&res->body, bson_iter_key(&f), -1, &f);
         }
      }
   }
   bson_destroy(&out);
   return true;
}

static bool
list_categories(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t out;

   (void) req;
   if (!flora_catalog_category_tree(app->store, &out, &error)) {
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   bson_destroy(&res->body);
   bson_steal(&res->body, &out);
   return true;
}

/* ---- admin ----------------------------------------------------------------------- */

/* Answers a write: 201/200 with the document, or the error with validation details. */
static bool
answer_write(flora_http_response_t *res, bool ok, int status, bson_t *doc, const bson_t *problems,
             const flora_error_t *error, const char *location_prefix)
{
   bson_iter_t it;

   if (!ok) {
      if (error->domain == FLORA_DOMAIN_VALIDATION && problems && !bson_empty(problems)) {
         return flora_http_error(res, 422, "validation_failed", NULL, "the document is invalid", problems);
      }
      return flora_http_fail(res, error);
   }
   res->status = status;
   if (location_prefix && bson_iter_init_find(&it, doc, "slug") && BSON_ITER_HOLDS_UTF8(&it)) {
      size_t n = strlen(location_prefix) + strlen(bson_iter_utf8(&it, NULL)) + 1;

      res->location = malloc(n);
      snprintf(res->location, n, "%s%s", location_prefix, bson_iter_utf8(&it, NULL));
   }
   bson_destroy(&res->body);
   bson_copy_to(doc, &res->body);
   return true;
}

static bool
create_product(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t input, out, problems = BSON_INITIALIZER;
   bool ok;

   if (!flora_http_body_json(req, &input, &error)) {
      bson_destroy(&input);
      bson_destroy(&problems);
      return flora_http_fail(res, &error);
   }
   ok = flora_catalog_create_product(app->store, &input, &problems, &out, &error);
   answer_write(res, ok, 201, &out, &problems, &error, "/api/v1/products/");
   bson_destroy(&input);
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
update_product(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t input, out, problems = BSON_INITIALIZER;
   bool ok;

   if (!flora_http_body_json(req, &input, &error)) {
      bson_destroy(&input);
      bson_destroy(&problems);
      return flora_http_fail(res, &error);
   }
   ok = flora_catalog_update_product(app->store, flora_http_param(req, "slug"), &input, &problems, &out, &error);
   answer_write(res, ok, 200, &out, &problems, &error, NULL);
   bson_destroy(&input);
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
delete_product(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};

   if (!flora_catalog_delete_product(app->store, flora_http_param(req, "slug"), &error)) {
      return flora_http_fail(res, &error);
   }
   res->status = 204;
   return true;
}

static bool
adjust_stock(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t input;
   bson_iter_t it;
   int32_t stock = 0;
   int64_t delta;
   const char *sku = flora_http_param(req, "sku");

   if (!flora_http_body_json(req, &input, &error)) {
      bson_destroy(&input);
      return flora_http_fail(res, &error);
   }
   if (!bson_iter_init_find(&it, &input, "delta") ||
       !(BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it))) {
      bson_destroy(&input);
      return flora_http_error(res, 422, "validation_failed", "delta", "is required and must be a whole number",
                              NULL);
   }
   delta = bson_iter_as_int64(&it);
   bson_destroy(&input);
   if (delta < -1000000 || delta > 1000000 || delta == 0) {
      return flora_http_error(res, 422, "validation_failed", "delta",
                              "must be a non-zero whole number from -1000000 to 1000000", NULL);
   }
   if (!flora_catalog_adjust_stock(app->store, sku, (int32_t) delta, &stock, &error)) {
      return flora_http_fail(res, &error);
   }
   BSON_APPEND_UTF8(&res->body, "sku", sku);
   BSON_APPEND_INT32(&res->body, "stock", stock);
   return true;
}

static bool
create_category(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t input, out, problems = BSON_INITIALIZER;
   bool ok;

   if (!flora_http_body_json(req, &input, &error)) {
      bson_destroy(&input);
      bson_destroy(&problems);
      return flora_http_fail(res, &error);
   }
   ok = flora_catalog_create_category(app->store, &input, &problems, &out, &error);
   answer_write(res, ok, 201, &out, &problems, &error, NULL);
   bson_destroy(&input);
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
update_category(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t input, out, problems = BSON_INITIALIZER;
   bool ok;

   if (!flora_http_body_json(req, &input, &error)) {
      bson_destroy(&input);
      bson_destroy(&problems);
      return flora_http_fail(res, &error);
   }
   ok = flora_catalog_update_category(app->store, flora_http_param(req, "slug"), &input, &problems, &out,
                                      &error);
   answer_write(res, ok, 200, &out, &problems, &error, NULL);
   bson_destroy(&input);
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
delete_category(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};

   if (!flora_catalog_delete_category(app->store, flora_http_param(req, "slug"), &error)) {
      return flora_http_fail(res, &error);
   }
   res->status = 204;
   return true;
}

const flora_route_t flora_routes_catalog[] = {
   {"GET", "/api/v1/categories", "categories.list", FLORA_AUTH_NONE, list_categories},
   {"GET", "/api/v1/products", "products.list", FLORA_AUTH_NONE, list_products},
   {"GET", "/api/v1/products/{slug}", "products.get", FLORA_AUTH_NONE, get_product},
   {"POST", "/api/v1/admin/products", "admin.products.create", FLORA_AUTH_MANAGER, create_product},
   {"PATCH", "/api/v1/admin/products/{slug}", "admin.products.update", FLORA_AUTH_MANAGER, update_product},
   {"DELETE", "/api/v1/admin/products/{slug}", "admin.products.delete", FLORA_AUTH_MANAGER, delete_product},
   {"POST", "/api/v1/admin/variants/{sku}/stock", "admin.stock.adjust", FLORA_AUTH_MANAGER, adjust_stock},
   {"POST", "/api/v1/admin/categories", "admin.categories.create", FLORA_AUTH_MANAGER, create_category},
   {"PATCH", "/api/v1/admin/categories/{slug}", "admin.categories.update", FLORA_AUTH_MANAGER, update_category},
   {"DELETE", "/api/v1/admin/categories/{slug}", "admin.categories.delete", FLORA_AUTH_MANAGER, delete_category},
   {NULL, NULL, NULL, FLORA_AUTH_NONE, NULL},
};
