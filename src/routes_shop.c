/* Helpers of the write path's routes (src/routes_shop.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routes_shop.h"

const char *
flora_routes_cart_token(const flora_http_request_t *req)
{
   const char *t = flora_http_header(req, "X-Cart-Token");
   size_t n;

   if (!t) {
      return NULL;
   }
   n = strlen(t);
   if (n < 16 || n > 128 ||
       strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != n) {
      return NULL;
   }
   return t;
}

bool
flora_routes_customer(const flora_http_request_t *req, flora_customer_t *out)
{
   memset(out, 0, sizeof *out);
   if (req->principal.has_user) {
      out->has_user = true;
      bson_oid_copy(&req->principal.user_id, &out->user_id);
      return true;
   }
   out->guest_token = flora_routes_cart_token(req);
   return out->guest_token != NULL;
}

void
flora_routes_actor(const flora_http_request_t *req, char *out, size_t out_len)
{
   char hex[25];

   if (!req->principal.has_user) {
      snprintf(out, out_len, "%s", req->principal.role == FLORA_ROLE_ADMIN ? "admin" : "system");
      return;
   }
   bson_oid_to_string(&req->principal.user_id, hex);
   snprintf(out, out_len, "%s:%s", req->principal.role >= FLORA_ROLE_MANAGER ? "manager" : "user", hex);
}

bool
flora_routes_fail(flora_http_response_t *res, const flora_error_t *error, const bson_t *problems)
{
   int status = flora_error_http_status(error);

   if (error->domain == FLORA_DOMAIN_VALIDATION) {
      return flora_http_error(res, 422, "validation_failed", NULL, error->message,
                              problems && !bson_empty(problems) ? problems : NULL);
   }
   if (status == 409 && problems && !bson_empty(problems)) {
      return flora_http_error(res, 409, error->code == FLORA_ERR_OUT_OF_STOCK ? "out_of_stock" : "conflict",
                              NULL, error->message, problems);
   }
   return flora_http_fail(res, error);
}

bool
flora_routes_int(const char *s, int64_t min, int64_t max, int64_t *out)
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

bool
flora_routes_oid(const char *s, bson_oid_t *out)
{
   if (!s || strlen(s) != 24 || !bson_oid_is_valid(s, 24)) {
      return false;
   }
   bson_oid_init_from_string(out, s);
   return true;
}

typedef struct known_ctx {
   const char *const *known;
   const char *bad;
} known_ctx_t;

static bool
check_param(void *data, const char *name, const char *value)
{
   known_ctx_t *ctx = data;

   (void) value;
   for (size_t i = 0; ctx->known[i]; i++) {
      if (strcmp(ctx->known[i], name) == 0) {
         return true;
      }
   }
   ctx->bad = name;
   return false;
}

bool
flora_routes_known_params(const flora_http_request_t *req, const char *const *known, flora_http_response_t *res)
{
   known_ctx_t ctx = {.known = known};

   flora_http_query_each(req, check_param, &ctx);
   if (ctx.bad) {
      flora_http_error(res, 400, "invalid_argument", ctx.bad, "unknown parameter", NULL);
      return false;
   }
   return true;
}

void
flora_routes_answer(flora_http_response_t *res, int status, bson_t *doc)
{
   res->status = status;
   bson_destroy(&res->body);
   bson_init(&res->body);
   bson_concat(&res->body, doc);
}
