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
#include "json_view.h"
#include "response_cache.h"

static bool
parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
   char *end = NULL;
   long long v;

   if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 18) {
      return false; /* digits only: no sign, spaces or exponent */
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

/* ---- response cache -------------------------------------------------------------- */

typedef struct cache_key {
   char text[1024];
   size_t len;
   bool overflow;
} cache_key_t;

static bool
key_param(void *ctx, const char *name, const char *value)
{
   cache_key_t *k = ctx;
   int n = snprintf(k->text + k->len, sizeof k->text - k->len, "%c%s=%s", k->len ? '&' : '?', name, value);

   if (n < 0 || (size_t) n >= sizeof k->text - k->len) {
      k->overflow = true;
      return false;
   }
   k->len += (size_t) n;
   return true;
}

/* The cache's view of a request: its path and parameters in the order sent, and the
 * versions of the two collections every catalog answer is made of. False: don't cache. */
static bool
cache_prepare(flora_app_t *app, const flora_http_request_t *req, cache_key_t *key, int64_t versions[2])
{
   flora_error_t error;
   int n;

   static const char *const collections[] = {"products", "categories"};

   if (!app->cache || !flora_store_collection_versions(app->store, collections, 2, versions, &error)) {
      return false;
   }
   n = snprintf(key->text, sizeof key->text, "%s", req->path);
   if (n < 0 || (size_t) n >= sizeof key->text) {
      return false;
   }
   key->len = (size_t) n;
   key->overflow = false;
   flora_http_query_each(req, key_param, key);
   return !key->overflow;
}

static bool
cache_answer(flora_app_t *app, const cache_key_t *key, const int64_t versions[2], flora_http_response_t *res)
{
   const char *body = NULL;
   size_t len = 0;
   void *handle = NULL;

   if (!flora_response_cache_get(app->cache, key->text, versions, 2, &body, &len, &handle)) {
      return false;
   }
   res->raw = (char *) body; /* borrowed: released by the server after sending */
   res->raw_len = len;
   res->raw_release = flora_response_cache_release;
   res->raw_release_cls = handle;
   res->content_type = "application/json";
   return true;
}

/* Answers with body (taken), rendered once and kept in the cache when use_cache. */
static void
answer(flora_app_t *app, bool use_cache, const cache_key_t *key, const int64_t versions[2], bson_t *body,
       flora_http_response_t *res)
{
   size_t len = 0;
   char *json = use_cache ? flora_json_view_string(body, false, &len) : NULL;
   char *raw = json ? malloc(len + 1) : NULL;

   if (!raw) {
      bson_free(json);
      bson_destroy(&res->body);
      bson_steal(&res->body, body);
      return;
   }
   memcpy(raw, json, len + 1);
   bson_free(json);
   bson_destroy(body);
   flora_response_cache_put(app->cache, key->text, versions, 2, raw, len);
   res->raw = raw;
   res->raw_len = len;
   res->content_type = "application/json";
}


typedef struct list_params {
   flora_app_t *app;
   flora_product_query_t query;
   const char *seen[16];
   size_t n_seen;
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

   for (size_t i = 0; i < p->n_seen; i++) {
      if (strcmp(p->seen[i], name) == 0) {
         p->bad_name = name;
         snprintf(p->reason, sizeof p->reason, "is given more than once");
         return false;
      }
   }
   if (p->n_seen < sizeof p->seen / sizeof p->seen[0]) {
      p->seen[p->n_seen++] = name;
   }
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
                  "must be one of price (= price_asc), -price (= price_desc), popularity, newest, rating, relevance");
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
   cache_key_t key;
   int64_t versions[2];
   bool use_cache;

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
   use_cache = cache_prepare(app, req, &key, versions);
   if (use_cache && cache_answer(app, &key, versions, res)) {
      return true;
   }
   if (!flora_catalog_list_products(app->store, &p.query, &out, &error)) {
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   answer(app, use_cache, &key, versions, &out, res);
   return true;
}

/* The client's view of a product: without the fields kept for queries only. */
static void
product_view(const bson_t *product, bson_t *out)
{
   static const char *const hidden[] = {"flowerTerms", "categoryTree", "source"};
   bson_iter_t f;

   bson_iter_init(&f, product);
   while (bson_iter_next(&f)) {
      bool skip = false;

      for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
         skip = skip || strcmp(hidden[i], bson_iter_key(&f)) == 0;
      }
      if (!skip) {
         bson_append_iter(out, bson_iter_key(&f), -1, &f);
      }
   }
}

static bool
get_product(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t out, view = BSON_INITIALIZER;
   bool found = false;
   bson_iter_t it;
   cache_key_t key;
   int64_t versions[2];
   bool use_cache = cache_prepare(app, req, &key, versions);

   if (use_cache && cache_answer(app, &key, versions, res)) {
      bson_destroy(&view);
      return true;
   }
   if (!flora_catalog_get_product(app->store, flora_http_param(req, "slug"), &out, &found, &error)) {
      bson_destroy(&view);
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   if (!found || !bson_iter_init_find(&it, &out, "active") || !bson_iter_as_bool(&it)) {
      bson_destroy(&out);
      bson_destroy(&view);
      return flora_http_error(res, 404, "not_found", "slug", "no product has this slug", NULL);
   }
   product_view(&out, &view);
   bson_destroy(&out);
   answer(app, use_cache, &key, versions, &view, res);
   return true;
}

static bool
list_categories(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t out;

   cache_key_t key;
   int64_t versions[2];
   bool use_cache = cache_prepare(app, req, &key, versions);

   if (use_cache && cache_answer(app, &key, versions, res)) {
      return true;
   }
   if (!flora_catalog_category_tree(app->store, &out, &error)) {
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   answer(app, use_cache, &key, versions, &out, res);
   return true;
}

/* ---- admin ----------------------------------------------------------------------- */

/* Answers a write: 201/200 with the document, or the error with validation details. */
static bool
answer_write(flora_http_response_t *res, bool ok, int status, bson_t *doc, const bson_t *problems,
             const flora_error_t *error, const char *location_prefix, bool is_product)
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
   bson_init(&res->body);
   if (is_product) {
      product_view(doc, &res->body);
   } else {
      bson_concat(&res->body, doc);
   }
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
   answer_write(res, ok, 201, &out, &problems, &error, "/api/v1/products/", true);
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
   answer_write(res, ok, 200, &out, &problems, &error, NULL, true);
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

/* 422 for one field, with the details list every 422 carries. */
static bool
invalid_field(flora_http_response_t *res, const char *field, const char *reason)
{
   bson_t details = BSON_INITIALIZER, one;

   BSON_APPEND_DOCUMENT_BEGIN(&details, "0", &one);
   BSON_APPEND_UTF8(&one, "path", field);
   BSON_APPEND_UTF8(&one, "reason", reason);
   bson_append_document_end(&details, &one);
   flora_http_error(res, 422, "validation_failed", field, reason, &details);
   bson_destroy(&details);
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
      return invalid_field(res, "delta", "is required and must be a whole number");
   }
   delta = bson_iter_as_int64(&it);
   bson_destroy(&input);
   if (delta < -1000000 || delta > 1000000 || delta == 0) {
      return invalid_field(res, "delta", "must be a non-zero whole number from -1000000 to 1000000");
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
   answer_write(res, ok, 201, &out, &problems, &error, NULL, false);
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
   answer_write(res, ok, 200, &out, &problems, &error, NULL, false);
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
