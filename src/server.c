/* The HTTP server: see src/server.h and src/http.h. */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "auth.h"
#include "flora/json.h"
#include "flora/log.h"
#include "json_view.h"
#include "metrics.h"

#define MAX_SEGMENTS 32
#define MAX_QUERY_ARGS 64
#define REQUEST_ID_MAX 64
/* Bodies of refused requests are read and dropped up to this many bytes (or max_body_bytes
 * when larger), so a client that sends its whole body before reading (most do) still gets
 * the answer; closing with unread data would make the kernel reset the connection. */
#define DRAIN_MIN (16u * 1024 * 1024)

struct flora_server {
   struct MHD_Daemon *daemon;
   flora_app_t *app;
   const flora_route_t *routes;
   char *admin_token; /* NULL when not configured */
   size_t max_body_bytes;
   size_t drain_limit;
   int shutdown_timeout_s;
   bool log_requests;
   uint16_t port;
   atomic_bool draining;
   pthread_mutex_t lock; /* guards in_flight */
   pthread_cond_t idle;  /* signalled when in_flight drops */
   unsigned in_flight;
};

/* An answer decided by the server itself before the handler (404, 405, 401, ...). */
typedef struct early_answer {
   int status;
   const char *code;
   char message[160];
   char allow[64];      /* Allow header of a 405 */
   bool www_authenticate;
} early_answer_t;

/* One request, from its headers to its completion (MHD's con_cls). */
typedef struct conn_ctx {
   flora_server_t *server;
   struct MHD_Connection *connection;
   struct timespec start;
   char request_id[REQUEST_ID_MAX + 1];
   char client_address[64];
   char method[16];
   char *raw_path; /* as received, for the log */
   const flora_route_t *route;
   flora_http_request_t req;
   char param_names[FLORA_HTTP_MAX_PARAMS][64];
   char *segments[MAX_SEGMENTS];
   size_t n_segments;
   char *query_names[MAX_QUERY_ARGS];
   char *query_values[MAX_QUERY_ARGS];
   size_t n_query;
   char *body;
   size_t body_len;
   size_t body_cap;
   bool too_large;
   size_t discarded; /* body bytes dropped (refused request or too large) */
   bool has_early;
   early_answer_t early;
   bool answered;
   int status;
   size_t bytes;
} conn_ctx_t;

/* ---- decoding and matching ------------------------------------------------------ */

static int
hex_value(char c)
{
   if (c >= '0' && c <= '9') {
      return c - '0';
   }
   if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
   }
   if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
   }
   return -1;
}

/* Percent-decodes n bytes of s into a new string (RFC 3986 section 2.1); NULL for a
 * malformed escape, an encoded NUL, a result that is not UTF-8 (RFC 3986 section 2.5), or
 * no memory (*bad tells which). */
static char *
percent_decode(const char *s, size_t n, bool *bad)
{
   char *out = malloc(n + 1);
   size_t o = 0;

   *bad = false;
   if (!out) {
      return NULL;
   }
   for (size_t i = 0; i < n; i++) {
      if (s[i] != '%') {
         out[o++] = s[i];
         continue;
      }
      if (i + 2 >= n || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0 ||
          (s[i + 1] == '0' && s[i + 2] == '0')) {
         free(out);
         *bad = true;
         return NULL;
      }
      out[o++] = (char) (hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
   }
   out[o] = '\0';
   if (!bson_utf8_validate(out, o, false)) {
      free(out);
      *bad = true;
      return NULL;
   }
   return out;
}

typedef enum split_result {
   SPLIT_OK = 0,
   SPLIT_NOT_A_PATH,     /* the request target does not start with '/' */
   SPLIT_BAD_ENCODING,   /* malformed %XX or %00 */
   SPLIT_TOO_DEEP,       /* more segments than any route has */
   SPLIT_NO_MEMORY,
} split_result_t;

/* Splits the raw path into decoded segments ("/a/b%20c" -> "a", "b c"). */
static split_result_t
split_path(conn_ctx_t *ctx, const char *path)
{
   const char *p = path + 1;

   if (*path != '/') {
      return SPLIT_NOT_A_PATH;
   }
   if (*p == '\0') {
      return SPLIT_OK; /* "/" has no segments */
   }
   for (;;) {
      const char *slash = strchr(p, '/');
      size_t len = slash ? (size_t) (slash - p) : strlen(p);
      bool bad = false;

      if (ctx->n_segments == MAX_SEGMENTS) {
         return SPLIT_TOO_DEEP;
      }
      ctx->segments[ctx->n_segments] = percent_decode(p, len, &bad);
      if (!ctx->segments[ctx->n_segments]) {
         return bad ? SPLIT_BAD_ENCODING : SPLIT_NO_MEMORY;
      }
      ctx->n_segments++;
      if (!slash) {
         return SPLIT_OK;
      }
      p = slash + 1;
   }
}

/* Does pattern match the request's segments? On a match, fills the path parameters. */
static bool
match_pattern(conn_ctx_t *ctx, const char *pattern, bool capture)
{
   const char *p = pattern;
   size_t seg = 0;
   size_t n_params = 0;

   if (*p != '/') {
      return false;
   }
   p++;
   while (*p) {
      const char *slash = strchr(p, '/');
      size_t len = slash ? (size_t) (slash - p) : strlen(p);

      if (seg == ctx->n_segments) {
         return false;
      }
      if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
         if (ctx->segments[seg][0] == '\0' || n_params == FLORA_HTTP_MAX_PARAMS) {
            return false;
         }
         if (capture) {
            snprintf(ctx->param_names[n_params], sizeof ctx->param_names[n_params], "%.*s",
                     (int) (len - 2), p + 1);
            ctx->req.param_names[n_params] = ctx->param_names[n_params];
            ctx->req.param_values[n_params] = ctx->segments[seg];
         }
         n_params++;
      } else if (strlen(ctx->segments[seg]) != len || memcmp(ctx->segments[seg], p, len) != 0) {
         return false;
      }
      seg++;
      p += len + (slash ? 1 : 0);
      if (slash && *p == '\0') {
         return false; /* patterns have no trailing slash */
      }
   }
   if (seg != ctx->n_segments) {
      return false;
   }
   if (capture) {
      ctx->req.n_params = n_params;
   }
   return true;
}

static void
allow_add(char *allow, size_t size, const char *method)
{
   size_t n = strlen(method);
   const char *p = allow;

   while ((p = strstr(p, method)) != NULL) {
      if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0')) {
         return;
      }
      p += n;
   }
   if (allow[0]) {
      strncat(allow, ", ", size - strlen(allow) - 1);
   }
   strncat(allow, method, size - strlen(allow) - 1);
}

static void
set_early(conn_ctx_t *ctx, int status, const char *code, const char *message)
{
   ctx->has_early = true;
   ctx->early.status = status;
   ctx->early.code = code;
   snprintf(ctx->early.message, sizeof ctx->early.message, "%s", message);
}

/* Finds the route (404 / 405 otherwise). */
static void
route_request(conn_ctx_t *ctx)
{
   const flora_route_t *r;
   bool is_head = strcmp(ctx->method, "HEAD") == 0;

   for (r = ctx->server->routes; r->method; r++) {
      if (!match_pattern(ctx, r->pattern, false)) {
         continue;
      }
      allow_add(ctx->early.allow, sizeof ctx->early.allow, r->method);
      if (strcmp(r->method, "GET") == 0) {
         allow_add(ctx->early.allow, sizeof ctx->early.allow, "HEAD");
      }
      if (!ctx->route && (strcmp(r->method, ctx->method) == 0 ||
                          (is_head && strcmp(r->method, "GET") == 0))) {
         ctx->route = r;
      }
   }
   if (ctx->route) {
      match_pattern(ctx, ctx->route->pattern, true);
      ctx->early.allow[0] = '\0';
      return;
   }
   if (ctx->early.allow[0]) {
      char message[128];

      snprintf(message, sizeof message, "method %s is not allowed here (allowed: %s)",
               ctx->method, ctx->early.allow);
      set_early(ctx, 405, "method_not_allowed", message);
   } else {
      set_early(ctx, 404, "not_found", "no such route");
   }
}

/* ---- authentication ------------------------------------------------------------- */

/* Resolves the bearer token into ctx->req.principal (src/auth.h) and checks the route's
 * level: a protected route without a token or with an unknown/expired one is 401, with a
 * role too low 403. On a public route an unknown token is ignored (anonymous). */
static void
check_auth(conn_ctx_t *ctx)
{
   const char *auth =
      MHD_lookup_connection_value(ctx->connection, MHD_HEADER_KIND, "Authorization");
   flora_auth_outcome_t outcome = FLORA_AUTH_ANONYMOUS;
   flora_error_t error = {0};
   flora_route_auth_t level = ctx->route->auth;

   if (!ctx->server->app || !ctx->server->app->store) {
      /* No store (unit tests of the server): only the admin token can be checked. */
      if (auth && ctx->server->admin_token && strncasecmp(auth, "Bearer ", 7) == 0 &&
          flora_auth_token_equal(auth + 7, ctx->server->admin_token)) {
         ctx->req.principal.role = FLORA_ROLE_ADMIN;
         outcome = FLORA_AUTH_RESOLVED;
      } else if (auth) {
         outcome = FLORA_AUTH_INVALID;
      }
   } else if (!flora_auth_resolve(ctx->server->app->store, ctx->server->admin_token, auth,
                                  &ctx->req.principal, &outcome, &error)) {
      FLORA_LOG_ERROR("http", "session lookup failed", "error", error.message, "request_id",
                      ctx->request_id);
      set_early(ctx, flora_error_is_transient(&error) ? 503 : 500,
                flora_error_is_transient(&error) ? "unavailable" : "internal",
                "cannot check the credentials now");
      return;
   }
   if (level == FLORA_AUTH_NONE) {
      return;
   }
   if (outcome != FLORA_AUTH_RESOLVED) {
      set_early(ctx, 401, "unauthorized",
                outcome == FLORA_AUTH_INVALID
                   ? "the bearer token is invalid or expired"
                   : "this route needs Authorization: Bearer <token>");
      ctx->early.www_authenticate = true;
      return;
   }
   if (!flora_auth_allows(level, &ctx->req.principal)) {
      char message[96];

      snprintf(message, sizeof message, "this route needs the %s role",
               flora_route_auth_name(level));
      set_early(ctx, 403, "forbidden", message);
   }
}

/* ---- request id ------------------------------------------------------------------- */

static bool
request_id_ok(const char *id)
{
   size_t n = 0;

   for (const char *p = id; *p; p++, n++) {
      char c = *p;

      if (n == REQUEST_ID_MAX ||
          !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-')) {
         return false;
      }
   }
   return n > 0;
}

static void
assign_request_id(conn_ctx_t *ctx)
{
   const char *given =
      MHD_lookup_connection_value(ctx->connection, MHD_HEADER_KIND, "X-Request-Id");
   unsigned char random[16];

   if (given && request_id_ok(given)) {
      snprintf(ctx->request_id, sizeof ctx->request_id, "%s", given);
      return;
   }
   randombytes_buf(random, sizeof random);
   sodium_bin2hex(ctx->request_id, sizeof ctx->request_id, random, sizeof random);
}

/* ---- query string ----------------------------------------------------------------- */

static enum MHD_Result
collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
   conn_ctx_t *ctx = cls;
   bool bad = false;
   char *k;
   char *v;

   (void) kind;
   if (ctx->n_query == MAX_QUERY_ARGS) {
      set_early(ctx, 400, "invalid_argument", "too many query parameters");
      return MHD_NO;
   }
   k = percent_decode(key, strlen(key), &bad);
   v = k ? percent_decode(value ? value : "", value ? strlen(value) : 0, &bad) : NULL;
   if (!k || !v) {
      free(k);
      set_early(ctx, bad ? 400 : 500, bad ? "invalid_argument" : "internal",
                bad ? "malformed percent-encoding or invalid UTF-8 in the query string"
                    : "out of memory");
      return MHD_NO;
   }
   ctx->query_names[ctx->n_query] = k;
   ctx->query_values[ctx->n_query] = v;
   ctx->n_query++;
   return MHD_YES;
}

/* ---- accessors (src/http.h) ------------------------------------------------------- */

const char *
flora_http_query(const flora_http_request_t *req, const char *name)
{
   const conn_ctx_t *ctx;

   FLORA_ASSERT_ARG(req);
   FLORA_ASSERT_ARG(name);
   ctx = req->conn;
   if (!ctx) {
      return NULL;
   }
   for (size_t i = 0; i < ctx->n_query; i++) {
      if (strcmp(ctx->query_names[i], name) == 0) {
         return ctx->query_values[i];
      }
   }
   return NULL;
}

void
flora_http_query_each(const flora_http_request_t *req, flora_http_param_fn fn, void *ctx)
{
   const conn_ctx_t *c;

   FLORA_ASSERT_ARG(req);
   FLORA_ASSERT_ARG(fn);
   c = req->conn;
   if (!c) {
      return;
   }
   for (size_t i = 0; i < c->n_query; i++) {
      if (!fn(ctx, c->query_names[i], c->query_values[i])) {
         return;
      }
   }
}

const char *
flora_http_header(const flora_http_request_t *req, const char *name)
{
   const conn_ctx_t *ctx;

   FLORA_ASSERT_ARG(req);
   FLORA_ASSERT_ARG(name);
   ctx = req->conn;
   if (!ctx) {
      return NULL;
   }
   return MHD_lookup_connection_value(ctx->connection, MHD_HEADER_KIND, name);
}

const char *
flora_http_client_address(const flora_http_request_t *req)
{
   conn_ctx_t *ctx;
   const union MHD_ConnectionInfo *info;

   FLORA_ASSERT_ARG(req);
   ctx = req->conn;
   if (!ctx) {
      return "unknown";
   }
   if (ctx->client_address[0]) {
      return ctx->client_address;
   }
   info = MHD_get_connection_info(ctx->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
   if (!info || !info->client_addr ||
       getnameinfo(info->client_addr,
                   info->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                            : sizeof(struct sockaddr_in),
                   ctx->client_address, sizeof ctx->client_address, NULL, 0,
                   NI_NUMERICHOST) != 0) {
      snprintf(ctx->client_address, sizeof ctx->client_address, "unknown");
   }
   return ctx->client_address;
}

const char *
flora_http_param(const flora_http_request_t *req, const char *name)
{
   FLORA_ASSERT_ARG(req);
   FLORA_ASSERT_ARG(name);
   for (size_t i = 0; i < req->n_params; i++) {
      if (strcmp(req->param_names[i], name) == 0) {
         return req->param_values[i];
      }
   }
   return NULL;
}

/* ---- responses -------------------------------------------------------------------- */

/* Relaxed Extended JSON of an array document as a top-level JSON array: each element is
 * serialised as the value of a one-field document and the value's text cut out. */
static char *
array_json(const bson_t *array, size_t *len)
{
   bson_string_t *s = bson_string_new("[");
   bson_iter_t it;
   bool first = true;
   char *out = NULL;
   static const char prefix[] = "{ \"v\" : ";
   static const char suffix[] = " }";

   if (!bson_iter_init(&it, array)) {
      goto cleanup;
   }
   while (bson_iter_next(&it)) {
      bson_t one = BSON_INITIALIZER;
      size_t n = 0;
      char *json;

      bson_append_iter(&one, "v", 1, &it);
      json = bson_as_relaxed_extended_json(&one, &n);
      bson_destroy(&one);
      if (!json || n < sizeof prefix - 1 + sizeof suffix - 1 ||
          memcmp(json, prefix, sizeof prefix - 1) != 0 ||
          memcmp(json + n - (sizeof suffix - 1), suffix, sizeof suffix - 1) != 0) {
         bson_free(json);
         goto cleanup;
      }
      if (!first) {
         bson_string_append(s, ", ");
      }
      first = false;
      json[n - (sizeof suffix - 1)] = '\0';
      bson_string_append(s, json + sizeof prefix - 1);
      bson_free(json);
   }
   bson_string_append(s, "]");
   out = malloc(s->len + 1);
   if (out) {
      memcpy(out, s->str, s->len + 1);
      *len = s->len;
   }
cleanup:
   bson_string_free(s, true);
   return out;
}

static char *
document_json(const bson_t *doc, size_t *len)
{
   size_t n = 0;
   char *json = bson_as_relaxed_extended_json(doc, &n);
   char *out;

   if (!json) {
      return NULL;
   }
   out = malloc(n + 1);
   if (out) {
      memcpy(out, json, n + 1);
      *len = n;
   }
   bson_free(json);
   return out;
}

static void
response_init(flora_http_response_t *res)
{
   memset(res, 0, sizeof *res);
   res->status = 200;
   bson_init(&res->body);
}

static void
response_cleanup(flora_http_response_t *res)
{
   bson_destroy(&res->body);
   if (res->raw_release) {
      if (res->raw) {
         res->raw_release(res->raw_release_cls);
      }
   } else {
      free(res->raw);
   }
   free(res->location);
}

/* Sends res (serialised here). Returns MHD's verdict. */
static enum MHD_Result
send_answer(conn_ctx_t *ctx, flora_http_response_t *res, const early_answer_t *early)
{
   struct MHD_Response *response = NULL;
   const char *content_type = res->content_type;
   char *data = NULL;
   size_t len = 0;
   enum MHD_Result ok;
   void (*release)(void *) = NULL;
   void *release_cls = NULL;

   if (res->status == 204 || res->status == 304) {
      /* No body at all (RFC 9110 sections 15.3.5 and 15.4.5). */
      content_type = NULL;
      data = NULL;
      len = 0;
   } else if (res->raw) {
      data = res->raw;
      len = res->raw_len;
      res->raw = NULL;
      release = res->raw_release;
      release_cls = res->raw_release_cls;
      if (!content_type) {
         content_type = "application/octet-stream";
      }
   } else {
      /* What clients see: ObjectIds, dates and decimals as strings (src/json_view.h). */
      bson_t view = BSON_INITIALIZER;

      flora_json_view(&res->body, &view);
      data = res->body_is_array ? array_json(&view, &len) : document_json(&view, &len);
      bson_destroy(&view);
      content_type = "application/json";
      if (!data) {
         FLORA_LOG_ERROR("http", "response is not serialisable", "request_id", ctx->request_id);
         flora_http_error(res, 500, "internal", NULL, "internal error", NULL);
         data = document_json(&res->body, &len);
         if (!data) {
            return MHD_NO;
         }
      }
   }
   if (data && release) {
      /* a shared body: libmicrohttpd calls release when it is done with it */
      response = MHD_create_response_from_buffer_with_free_callback_cls(len, data, release, release_cls);
   } else {
      response = data ? MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE)
                      : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
   }
   if (!response) {
      if (release) {
         release(release_cls);
      } else {
         free(data);
      }
      return MHD_NO;
   }
   if (content_type) {
      MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
   }
   MHD_add_response_header(response, "X-Request-Id", ctx->request_id);
   if (res->location) {
      MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, res->location);
   }
   if (res->retry_after_s > 0) {
      char seconds[24];

      snprintf(seconds, sizeof seconds, "%d", res->retry_after_s);
      MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
   }
   if (early && early->allow[0] && res->status == 405) {
      MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, early->allow);
   }
   if (early && early->www_authenticate) {
      MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
   }
   if (atomic_load(&ctx->server->draining)) {
      MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
   }
   ctx->status = res->status;
   ctx->bytes = len;
   ctx->answered = true;
   ok = MHD_queue_response(ctx->connection, (unsigned) res->status, response);
   MHD_destroy_response(response);
   return ok;
}

static enum MHD_Result
send_early(conn_ctx_t *ctx)
{
   flora_http_response_t res;
   enum MHD_Result ok;

   response_init(&res);
   flora_http_error(&res, ctx->early.status, ctx->early.code, NULL, ctx->early.message, NULL);
   ok = send_answer(ctx, &res, &ctx->early);
   response_cleanup(&res);
   return ok;
}

static enum MHD_Result
run_handler(conn_ctx_t *ctx)
{
   flora_http_response_t res;
   enum MHD_Result ok;

   response_init(&res);
   ctx->req.body = ctx->body;
   ctx->req.body_len = ctx->body_len;
   if (ctx->body_len > 0) {
      char field[256], key_path[512];

      /* no route ever sees an operator or Extended JSON key in a client body */
      if (flora_json_find_dollar_key(ctx->body, ctx->body_len, field, sizeof field, key_path,
                                     sizeof key_path)) {
         char message[700];

         snprintf(message, sizeof message,
                  "%s: operators and Extended JSON (keys starting with $) are not allowed in "
                  "request bodies; send a plain value",
                  key_path);
         flora_http_error(&res, 400, "invalid_argument", field, message, NULL);
         ok = send_answer(ctx, &res, NULL);
         response_cleanup(&res);
         return ok;
      }
   }
   if (!ctx->route->handler(ctx->server->app, &ctx->req, &res)) {
      FLORA_LOG_ERROR("http", "handler failed", "route", ctx->route->name, "request_id",
                      ctx->request_id);
      free(res.location);
      res.location = NULL;
      flora_http_error(&res, 500, "internal", NULL, "internal error", NULL);
   } else if (res.status < 100 || res.status > 599) {
      FLORA_LOG_ERROR("http", "handler set an invalid status", "route", ctx->route->name,
                      "request_id", ctx->request_id);
      free(res.location);
      res.location = NULL;
      flora_http_error(&res, 500, "internal", NULL, "internal error", NULL);
   }
   ok = send_answer(ctx, &res, NULL);
   response_cleanup(&res);
   return ok;
}

/* ---- MHD callbacks ---------------------------------------------------------------- */

/* Leaves URLs and query arguments as received: the server decodes each path segment and
 * query argument itself (MHD's default decoder would merge %2F into the path and keep
 * malformed escapes). */
static size_t
unescape_none(void *cls, struct MHD_Connection *connection, char *s)
{
   (void) cls;
   (void) connection;
   return strlen(s);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
   char buf[512];
   size_t n;

   (void) cls;
   vsnprintf(buf, sizeof buf, fmt, ap);
   n = strlen(buf);
   while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
      buf[--n] = '\0';
   }
   FLORA_LOG_WARN("http", "libmicrohttpd", "detail", buf);
}

static double
seconds_since(const struct timespec *start)
{
   struct timespec now;

   clock_gettime(CLOCK_MONOTONIC, &now);
   return (double) (now.tv_sec - start->tv_sec) + (double) (now.tv_nsec - start->tv_nsec) / 1e9;
}

/* First call of a request: everything that can be decided from the headers. */
static conn_ctx_t *
begin_request(flora_server_t *server, struct MHD_Connection *connection, const char *url,
              const char *method)
{
   conn_ctx_t *ctx = calloc(1, sizeof *ctx);
   const char *length;

   if (!ctx) {
      return NULL;
   }
   ctx->server = server;
   ctx->connection = connection;
   clock_gettime(CLOCK_MONOTONIC, &ctx->start);
   snprintf(ctx->method, sizeof ctx->method, "%s", method);
   ctx->raw_path = strndup(url, 2048);
   assign_request_id(ctx);
   ctx->req.method = ctx->method;
   ctx->req.request_id = ctx->request_id;
   ctx->req.conn = ctx;
   pthread_mutex_lock(&server->lock);
   server->in_flight++;
   pthread_mutex_unlock(&server->lock);

   /* A request that arrives on a kept-alive connection after draining began is refused
    * before any handler runs: it changes nothing, and the client may safely retry it on
    * another instance. Requests already running are waited for (flora_server_stop). */
   if (atomic_load(&server->draining)) {
      set_early(ctx, 503, "unavailable", "the server is shutting down; retry the request");
      return ctx;
   }
   if (!ctx->raw_path) {
      set_early(ctx, 500, "internal", "out of memory");
      return ctx;
   }
   /* The absolute form "http://host/path" (RFC 9112 section 3.2.2) is routed by its path. */
   if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) {
      const char *path = strchr(strstr(url, "://") + 3, '/');

      url = path ? path : "/";
   }
   switch (split_path(ctx, url)) {
   case SPLIT_OK:
      break;
   case SPLIT_NOT_A_PATH:
      set_early(ctx, 400, "invalid_argument", "the request target must be a path");
      return ctx;
   case SPLIT_BAD_ENCODING:
      set_early(ctx, 400, "invalid_argument", "malformed percent-encoding or invalid UTF-8 in the path");
      return ctx;
   case SPLIT_TOO_DEEP:
      set_early(ctx, 404, "not_found", "no such route");
      return ctx;
   case SPLIT_NO_MEMORY:
      set_early(ctx, 500, "internal", "out of memory");
      return ctx;
   }
   {
      /* The decoded path, for handlers. */
      size_t n = 2;
      size_t o = 0;
      char *path;

      for (size_t i = 0; i < ctx->n_segments; i++) {
         n += strlen(ctx->segments[i]) + 1;
      }
      path = malloc(n);
      if (!path) {
         set_early(ctx, 500, "internal", "out of memory");
         return ctx;
      }
      for (size_t i = 0; i < ctx->n_segments; i++) {
         size_t len = strlen(ctx->segments[i]);

         path[o++] = '/';
         memcpy(path + o, ctx->segments[i], len);
         o += len;
      }
      if (o == 0) {
         path[o++] = '/';
      }
      path[o] = '\0';
      ctx->req.path = path;
   }
   MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, collect_query, ctx);
   if (ctx->has_early) {
      return ctx;
   }
   route_request(ctx);
   if (ctx->has_early) {
      return ctx;
   }
   check_auth(ctx);
   if (ctx->has_early) {
      return ctx;
   }
   length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_CONTENT_LENGTH);
   if (length) {
      char *end = NULL;
      unsigned long long n;

      errno = 0;
      n = strtoull(length, &end, 10);
      if (errno == 0 && end != length && *end == '\0' && n > server->max_body_bytes) {
         char message[128];

         snprintf(message, sizeof message, "request body is larger than %zu bytes",
                  server->max_body_bytes);
         set_early(ctx, 413, "payload_too_large", message);
         return ctx;
      }
   }
   return ctx;
}

/* Does the request announce a body (which an early answer would leave unread)? */
static bool
has_body(struct MHD_Connection *connection)
{
   const char *length =
      MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

   if (MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                   MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
      return true;
   }
   return length && strcmp(length, "0") != 0;
}

/* Should an answer known from the headers go out before the body is read? Yes when the
 * client waits for "100 Continue" before sending it (RFC 9110 section 10.1.1), or when the
 * announced body is too big to drain; the connection then closes. Otherwise the body is
 * drained first and the connection stays usable. */
static bool
answer_before_body(const flora_server_t *server, struct MHD_Connection *connection)
{
   const char *expect =
      MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
   const char *length =
      MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
   char *end = NULL;
   unsigned long long n;

   if (expect && strcasecmp(expect, "100-continue") == 0) {
      return true;
   }
   if (!length) {
      return false;
   }
   errno = 0;
   n = strtoull(length, &end, 10);
   return errno != 0 || *end != '\0' || n > server->drain_limit;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size,
           void **con_cls)
{
   flora_server_t *server = cls;
   conn_ctx_t *ctx = *con_cls;

   (void) version;
   if (!ctx) {
      ctx = begin_request(server, connection, url, method);
      if (!ctx) {
         return MHD_NO;
      }
      *con_cls = ctx;
      /* An error known from the headers is answered on the final call, after the body
       * (if any) has been drained, unless answer_before_body says otherwise. */
      if (ctx->has_early && has_body(connection) && answer_before_body(server, connection)) {
         return send_early(ctx);
      }
      return MHD_YES;
   }
   if (*upload_data_size > 0) {
      size_t n = *upload_data_size;

      *upload_data_size = 0;
      if (!ctx->has_early && !ctx->too_large && n > server->max_body_bytes - ctx->body_len) {
         ctx->too_large = true;
         ctx->discarded = ctx->body_len;
         free(ctx->body);
         ctx->body = NULL;
         ctx->body_len = ctx->body_cap = 0;
      }
      if (ctx->has_early || ctx->too_large) {
         /* Dropped; a body past the drain limit (chunked, so not announced) ends the
          * connection without an answer. */
         ctx->discarded += n;
         return ctx->discarded > server->drain_limit ? MHD_NO : MHD_YES;
      }
      if (ctx->body_len + n > ctx->body_cap) {
         size_t cap = ctx->body_cap ? ctx->body_cap : 4096;
         char *p;

         while (cap < ctx->body_len + n) {
            cap *= 2;
         }
         if (cap > server->max_body_bytes) {
            cap = server->max_body_bytes;
         }
         p = realloc(ctx->body, cap);
         if (!p) {
            return MHD_NO;
         }
         ctx->body = p;
         ctx->body_cap = cap;
      }
      memcpy(ctx->body + ctx->body_len, upload_data, n);
      ctx->body_len += n;
      return MHD_YES;
   }
   if (ctx->answered) {
      return MHD_YES;
   }
   if (ctx->has_early) {
      return send_early(ctx);
   }
   if (ctx->too_large) {
      char message[128];

      snprintf(message, sizeof message, "request body is larger than %zu bytes",
               server->max_body_bytes);
      set_early(ctx, 413, "payload_too_large", message);
      return send_early(ctx);
   }
   return run_handler(ctx);
}

static void
on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
   flora_server_t *server = cls;
   conn_ctx_t *ctx = *con_cls;
   double duration;
   const char *route;

   (void) connection;
   if (!ctx) {
      return;
   }
   *con_cls = NULL;
   duration = seconds_since(&ctx->start);
   route = ctx->route ? ctx->route->name : "unmatched";
   if (ctx->answered) {
      flora_metrics_http_request(server->app ? server->app->metrics : NULL, route, ctx->method,
                                 ctx->status, duration);
   }
   if (server->log_requests || !ctx->answered || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
      char status[16];
      char duration_ms[32];
      char bytes[32];

      snprintf(status, sizeof status, "%d", ctx->answered ? ctx->status : 0);
      snprintf(duration_ms, sizeof duration_ms, "%.3f", duration * 1000.0);
      snprintf(bytes, sizeof bytes, "%zu", ctx->bytes);
      if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
         FLORA_LOG_INFO("http", "request", "method", ctx->method, "path", ctx->raw_path,
                        "route", route, "status", status, "duration_ms", duration_ms, "bytes",
                        bytes, "request_id", ctx->request_id);
      } else {
         FLORA_LOG_WARN("http", "request aborted", "method", ctx->method, "path", ctx->raw_path,
                        "route", route, "status", status, "duration_ms", duration_ms, "bytes",
                        bytes, "request_id", ctx->request_id, "reason",
                        toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout"
                        : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN
                           ? "shutdown"
                           : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? "client closed"
                                                                        : "error");
      }
   }
   for (size_t i = 0; i < ctx->n_segments; i++) {
      free(ctx->segments[i]);
   }
   for (size_t i = 0; i < ctx->n_query; i++) {
      free(ctx->query_names[i]);
      free(ctx->query_values[i]);
   }
   free((char *) ctx->req.path);
   free(ctx->raw_path);
   free(ctx->body);
   free(ctx);
   pthread_mutex_lock(&server->lock);
   server->in_flight--;
   pthread_cond_broadcast(&server->idle);
   pthread_mutex_unlock(&server->lock);
}

/* ---- lifecycle -------------------------------------------------------------------- */

void
flora_server_options_from_config(flora_server_options_t *options, const flora_config_t *config)
{
   FLORA_ASSERT_ARG(options);
   FLORA_ASSERT_ARG(config);
   memset(options, 0, sizeof *options);
   options->bind = flora_config_string(config, "http.bind");
   options->port = (int) flora_config_int(config, "http.port");
   options->threads = (int) flora_config_int(config, "http.threads");
   options->max_body_bytes = (size_t) flora_config_int(config, "http.max_body_bytes");
   options->connection_timeout_s = (int) flora_config_int(config, "http.connection_timeout_s");
   options->shutdown_timeout_s = (int) flora_config_int(config, "http.shutdown_timeout_s");
   options->admin_token = flora_config_string(config, "http.admin_token");
   options->log_requests = flora_config_bool(config, "log.requests");
}

static void
server_free(flora_server_t *server)
{
   if (!server) {
      return;
   }
   if (server->admin_token) {
      sodium_memzero(server->admin_token, strlen(server->admin_token));
   }
   free(server->admin_token);
   pthread_mutex_destroy(&server->lock);
   pthread_cond_destroy(&server->idle);
   free(server);
}

bool
flora_server_start(flora_server_t **out, flora_app_t *app, const flora_route_t *routes,
                   const flora_server_options_t *options, flora_error_t *error)
{
   flora_server_t *server = NULL;
   struct addrinfo hints = {0};
   struct addrinfo *ai = NULL;
   struct sockaddr_storage addr;
   char port[8];
   unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
   const union MHD_DaemonInfo *info;
   pthread_condattr_t cattr;
   int rc;
   bool ok = false;

   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(routes);
   FLORA_ASSERT_ARG(options);
   FLORA_ASSERT_ARG(options->bind);
   FLORA_ASSERT_ARG(options->threads >= 1);
   FLORA_ASSERT_ARG(options->port >= 0 && options->port <= 65535);
   *out = NULL;
   if (sodium_init() < 0) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "libsodium failed to initialise");
      goto cleanup;
   }
   server = calloc(1, sizeof *server);
   if (!server) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      goto cleanup;
   }
   pthread_mutex_init(&server->lock, NULL);
   pthread_condattr_init(&cattr);
   pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
   pthread_cond_init(&server->idle, &cattr);
   pthread_condattr_destroy(&cattr);
   server->app = app;
   server->routes = routes;
   server->max_body_bytes = options->max_body_bytes;
   server->drain_limit = options->max_body_bytes > DRAIN_MIN ? options->max_body_bytes : DRAIN_MIN;
   server->shutdown_timeout_s = options->shutdown_timeout_s;
   server->log_requests = options->log_requests;
   if (options->admin_token && options->admin_token[0]) {
      server->admin_token = strdup(options->admin_token);
      if (!server->admin_token) {
         flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
         goto cleanup;
      }
   }

   hints.ai_family = AF_UNSPEC;
   hints.ai_socktype = SOCK_STREAM;
   hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
   snprintf(port, sizeof port, "%d", options->port);
   rc = getaddrinfo(options->bind, port, &hints, &ai);
   if (rc != 0 || !ai || ai->ai_addrlen > sizeof addr) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_INVALID,
                      "http.bind: '%s' is not a numeric IPv4 or IPv6 address (%s)", options->bind,
                      rc != 0 ? gai_strerror(rc) : "no address");
      goto cleanup;
   }
   memset(&addr, 0, sizeof addr);
   memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
   if (ai->ai_family == AF_INET6) {
      flags |= MHD_USE_IPv6;
   }

   errno = 0;
   server->daemon = MHD_start_daemon(
      flags, (uint16_t) options->port, NULL, NULL, on_request, server,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) (options->threads > 1 ? options->threads : 0),
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) options->connection_timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (64 * 1024),
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, server,
      MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
      MHD_OPTION_END);
   if (!server->daemon) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "cannot listen on %s port %d: %s",
                      options->bind, options->port,
                      errno ? strerror(errno) : "libmicrohttpd refused to start");
      goto cleanup;
   }
   info = MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
   server->port = info ? info->port : (uint16_t) options->port;
   *out = server;
   server = NULL;
   ok = true;
cleanup:
   if (ai) {
      freeaddrinfo(ai);
   }
   if (server && server->daemon) {
      MHD_stop_daemon(server->daemon);
   }
   server_free(server);
   return ok;
}

uint16_t
flora_server_port(const flora_server_t *server)
{
   FLORA_ASSERT_ARG(server);
   return server->port;
}

void
flora_server_stop(flora_server_t *server)
{
   MHD_socket listener;
   struct timespec deadline;
   bool timed_out = false;

   if (!server) {
      return;
   }
   atomic_store(&server->draining, true);
   listener = MHD_quiesce_daemon(server->daemon);
   if (listener != MHD_INVALID_SOCKET) {
      close(listener);
   }
   clock_gettime(CLOCK_MONOTONIC, &deadline);
   deadline.tv_sec += server->shutdown_timeout_s;
   pthread_mutex_lock(&server->lock);
   {
      char n[16];
      char port[8];

      snprintf(n, sizeof n, "%u", server->in_flight);
      snprintf(port, sizeof port, "%u", (unsigned) server->port);
      FLORA_LOG_INFO("http", "stopped listening", "port", port, "in_flight", n);
   }
   while (server->in_flight > 0 && !timed_out) {
      timed_out = pthread_cond_timedwait(&server->idle, &server->lock, &deadline) == ETIMEDOUT;
   }
   if (timed_out && server->in_flight > 0) {
      char n[16];

      snprintf(n, sizeof n, "%u", server->in_flight);
      FLORA_LOG_WARN("http", "shutdown timeout: closing requests in flight", "requests", n);
   }
   pthread_mutex_unlock(&server->lock);
   MHD_stop_daemon(server->daemon);
   server_free(server);
}
