/* The HTTP edge of `flora serve`: requests, responses and the route table.
 *
 * Routes are thin adapters over library calls (DESIGN.md section 1): a handler reads its
 * parameters, calls libflora, and answers JSON. The server (src/server.c, libmicrohttpd
 * in thread-pool mode with keep-alive) parses the request, enforces the body limit (413),
 * finds the route (404/405 with a JSON body), assigns a request id (X-Request-Id, taken
 * from the client when it sends a sane one), logs one structured line per request, and
 * records metrics by route name and status. */
#ifndef FLORA_SRC_HTTP_H
#define FLORA_SRC_HTTP_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

#include "flora/error.h"
#include "flora/users.h"

typedef struct flora_app flora_app_t;

#define FLORA_HTTP_MAX_PARAMS 8

typedef struct flora_http_request {
   const char *method;     /* "GET", "POST", ... */
   const char *path;       /* decoded path without the query string */
   const char *request_id; /* never NULL */
   const char *body;       /* raw body bytes (not NUL-terminated past body_len), or NULL */
   size_t body_len;
   /* Path parameters captured by {name} segments of the route pattern, URL-decoded. */
   size_t n_params;
   const char *param_names[FLORA_HTTP_MAX_PARAMS];
   const char *param_values[FLORA_HTTP_MAX_PARAMS];
   /* Who asks (include/flora/users.h), resolved by the server from "Authorization: Bearer
    * <token>" before the handler runs: a session token gives its user and the user's
    * current role; the configured http.admin_token gives role admin without a user;
    * nothing (or, on a FLORA_AUTH_NONE route, an unknown token) gives anonymous. */
   flora_principal_t principal;
   void *conn; /* the server's connection handle, for the accessors below */
} flora_http_request_t;

typedef struct flora_http_response {
   int status;               /* default 200 */
   bson_t body;              /* JSON body to send (relaxed Extended JSON), initialised empty */
   bool body_is_array;       /* send body as a top-level JSON array */
   char *raw;                /* when set (malloc'd, owned), sent instead of body */
   size_t raw_len;
   /* When set, raw is borrowed, not owned: raw_release(raw_release_cls) is called exactly
    * once when the server no longer needs it (sent, or the answer abandoned). Lets a
    * shared cached body go out without a copy. */
   void (*raw_release)(void *cls);
   void *raw_release_cls;
   const char *content_type; /* default application/json for body; set for raw */
   char *location;           /* optional Location header (malloc'd, owned) */
   int retry_after_s;        /* > 0: a Retry-After header (RFC 9110 section 10.2.3), e.g. with 429 */
} flora_http_response_t;

typedef bool (*flora_route_fn)(flora_app_t *app, const flora_http_request_t *req,
                               flora_http_response_t *res);

/* Who may call a route. Protected routes answer 401 (with WWW-Authenticate: Bearer) without
 * a token or with an unknown or expired one, and 403 when the role is too low. */
typedef enum flora_route_auth {
   FLORA_AUTH_NONE = 0, /* anyone; the principal is still resolved when a valid token is sent */
   FLORA_AUTH_CUSTOMER, /* any signed-in user (or the admin token) */
   FLORA_AUTH_MANAGER,  /* manager or admin */
   FLORA_AUTH_ADMIN,    /* admin: a user with role admin or the configured http.admin_token */
} flora_route_auth_t;

/* "public", "customer", "manager", "admin" (for `flora routes`). */
const char *flora_route_auth_name(flora_route_auth_t auth);

typedef struct flora_route {
   const char *method;
   const char *pattern; /* "/api/v1/products/{slug}" */
   const char *name;    /* metrics label, e.g. "products.get" */
   flora_route_auth_t auth;
   flora_route_fn handler;
} flora_route_t;

/* Query-string parameter (URL-decoded), or NULL when absent. Borrowed for the request. */
const char *flora_http_query(const flora_http_request_t *req, const char *name);
/* Calls fn for every query-string parameter (URL-decoded name and value, value "" when
 * absent) in order; stops when fn returns false. */
typedef bool (*flora_http_param_fn)(void *ctx, const char *name, const char *value);
void flora_http_query_each(const flora_http_request_t *req, flora_http_param_fn fn, void *ctx);
/* Request header (case-insensitive name), or NULL. Borrowed for the request. */
const char *flora_http_header(const flora_http_request_t *req, const char *name);
/* The client's IP address as text ("127.0.0.1", "::1"), or "unknown". Borrowed for the
 * request. (The peer of the TCP connection: behind a proxy, the proxy's address.) */
const char *flora_http_client_address(const flora_http_request_t *req);
/* Path parameter by name, or NULL. */
const char *flora_http_param(const flora_http_request_t *req, const char *name);

/* Parses the body as a JSON object into *out (initialised by the callee). Fails with an
 * INPUT error (400) naming the problem: empty body, not JSON, not an object. */
bool flora_http_body_json(const flora_http_request_t *req, bson_t *out, flora_error_t *error);

/* Answers status with {"error": {"code": <name>, "message": ..., "field"?: ...,
 * "details"?: [...]}}. field may be NULL; details (an array doc of {path, reason}) may be
 * NULL. Always returns true (the handler ran; the answer is an error). */
bool flora_http_error(flora_http_response_t *res, int status, const char *code, const char *field,
                      const char *message, const bson_t *details);
/* Answers for a library error: status from flora_error_http_status, code from the domain. */
bool flora_http_fail(flora_http_response_t *res, const flora_error_t *error);

/* Every route the server knows (the OpenAPI test checks docs/openapi.json against it);
 * terminated by an entry with method NULL. */
const flora_route_t *flora_http_routes(void);

/* Route tables contributed by each area of the API, concatenated by flora_http_routes.
 * Each is terminated by an entry with method NULL. */
extern const flora_route_t flora_routes_ops[];     /* /healthz /readyz /metrics */
extern const flora_route_t flora_routes_catalog[]; /* /api/v1/categories, /api/v1/products */
extern const flora_route_t flora_routes_users[];   /* /api/v1/auth, /api/v1/me, /api/v1/admin/users */
extern const flora_route_t flora_routes_orders[];  /* /api/v1/cart, /checkout, /orders, /admin/orders */
extern const flora_route_t flora_routes_coupons[]; /* /api/v1/coupons/validate, /admin/coupons */
extern const flora_route_t flora_routes_reviews[]; /* /api/v1/reviews, /products/{slug}/reviews, /admin/reviews */
extern const flora_route_t flora_routes_notify[];  /* /api/v1/admin/notifications */
extern const flora_route_t flora_routes_delivery[]; /* /api/v1/delivery/quote, /slots */
extern const flora_route_t flora_routes_pay[];     /* payments: /api/v1/orders/{number}/payments, /api/v1/admin/payments, /webhooks */

#endif
