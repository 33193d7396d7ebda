/* The HTTP server in-process on an ephemeral loopback port, with a test route table,
 * driven with libcurl: routing (404/405), decoding, body limits (413), JSON bodies (400),
 * request ids, keep-alive, admin authentication, metrics, concurrency, hostile input, and
 * a graceful stop with a request in flight. */
#include "flora_test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "flora/log.h"
#include "http.h"
#include "metrics.h"
#include "server.h"

/* ---- test routes ------------------------------------------------------------------ */

static atomic_int slow_entered;

/* Collects "name=value;" pairs, stopping after "stop". */
static bool
each_param(void *ctx, const char *name, const char *value)
{
   bson_string_t *s = ctx;

   bson_string_append_printf(s, "%s=%s;", name, value);
   return strcmp(name, "stop") != 0;
}

static bool
echo(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   const char *q = flora_http_query(req, "q");
   const char *h = flora_http_header(req, "x-test");
   bson_string_t *all = bson_string_new(NULL);

   (void) app;
   flora_http_query_each(req, each_param, all);
   BSON_APPEND_UTF8(&res->body, "all", all->str);
   bson_string_free(all, true);
   BSON_APPEND_UTF8(&res->body, "a", flora_http_param(req, "a"));
   BSON_APPEND_UTF8(&res->body, "b", flora_http_param(req, "b"));
   BSON_APPEND_UTF8(&res->body, "path", req->path);
   BSON_APPEND_UTF8(&res->body, "method", req->method);
   if (q) {
      BSON_APPEND_UTF8(&res->body, "q", q);
   }
   if (h) {
      BSON_APPEND_UTF8(&res->body, "h", h);
   }
   if (flora_http_param(req, "nope") != NULL) {
      return false;
   }
   return true;
}

static bool
no_content(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   (void) app;
   (void) req;
   BSON_APPEND_UTF8(&res->body, "ignored", "a 204 has no body");
   res->status = 204;
   return true;
}

static bool
post_json(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   bson_t doc;
   flora_error_t error = {0};

   (void) app;
   if (!flora_http_body_json(req, &doc, &error)) {
      bson_destroy(&doc);
      return flora_http_fail(res, &error);
   }
   BSON_APPEND_DOCUMENT(&res->body, "got", &doc);
   bson_destroy(&doc);
   res->status = 201;
   res->location = strdup("/json/1");
   return true;
}

static bool
slow(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   (void) app;
   (void) req;
   atomic_store(&slow_entered, 1);
   usleep(400 * 1000);
   BSON_APPEND_BOOL(&res->body, "slow", true);
   return true;
}

static bool
failing(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   (void) app;
   (void) req;
   BSON_APPEND_UTF8(&res->body, "secret", "internal detail");
   return false;
}

static bool
array(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   bson_t sub;

   (void) app;
   (void) req;
   BSON_APPEND_INT32(&res->body, "0", 1);
   BSON_APPEND_UTF8(&res->body, "1", "Розы \"red\"");
   BSON_APPEND_DOCUMENT_BEGIN(&res->body, "2", &sub);
   BSON_APPEND_INT64(&sub, "price", 199900);
   {
      bson_oid_t oid;

      bson_oid_init_from_string(&oid, "5f1d7a1b2c3d4e5f60718293");
      BSON_APPEND_OID(&sub, "_id", &oid);
   }
   BSON_APPEND_DATE_TIME(&sub, "at", INT64_C(1764520219123));
   bson_append_document_end(&res->body, &sub);
   res->body_is_array = true;
   return true;
}

static bool
conflict(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   bson_t *details = J("[{'path': 'sku', 'reason': 'taken'}]");

   (void) app;
   (void) req;
   flora_http_error(res, 409, "conflict", "sku", "sku is taken", details);
   bson_destroy(details);
   return true;
}

static bool
store_error(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};

   (void) app;
   (void) req;
   flora_error_set(&error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL, "sqlite: disk I/O at %s",
                   "/var/secret/path");
   return flora_http_fail(res, &error);
}

static bool
metrics(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};

   (void) req;
   if (!flora_metrics_render(app->metrics, &res->raw, &res->raw_len, &error)) {
      return flora_http_fail(res, &error);
   }
   res->content_type = FLORA_METRICS_CONTENT_TYPE;
   return true;
}

static bool
admin(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   (void) app;
   (void) req;
   BSON_APPEND_BOOL(&res->body, "admin", true);
   return true;
}

static const flora_route_t routes[] = {
   {"GET", "/echo/{a}/{b}", "test.echo", FLORA_AUTH_NONE, echo},
   {"DELETE", "/echo/{a}/{b}", "test.echo_delete", FLORA_AUTH_NONE, no_content},
   {"POST", "/json", "test.json", FLORA_AUTH_NONE, post_json},
   {"GET", "/slow", "test.slow", FLORA_AUTH_NONE, slow},
   {"GET", "/fail", "test.fail", FLORA_AUTH_NONE, failing},
   {"GET", "/array", "test.array", FLORA_AUTH_NONE, array},
   {"GET", "/conflict", "test.conflict", FLORA_AUTH_NONE, conflict},
   {"GET", "/store-error", "test.store_error", FLORA_AUTH_NONE, store_error},
   {"GET", "/metrics", "ops.metrics", FLORA_AUTH_NONE, metrics},
   {"POST", "/admin/reindex", "test.admin", FLORA_AUTH_ADMIN, admin},
   {NULL, NULL, NULL, FLORA_AUTH_NONE, NULL},
};

/* ---- server fixture --------------------------------------------------------------- */

typedef struct fixture {
   flora_app_t app;
   flora_server_t *server;
   char base[64];
} fixture_t;

static fixture_t fx;

static flora_server_options_t
test_options(void)
{
   flora_server_options_t o = {0};

   o.bind = "127.0.0.1";
   o.port = 0;
   o.threads = 4;
   o.max_body_bytes = 1024;
   o.connection_timeout_s = 10;
   o.shutdown_timeout_s = 10;
   o.admin_token = "s3cret-token";
   o.log_requests = true;
   return o;
}

static void
start(fixture_t *f, const flora_server_options_t *o)
{
   flora_error_t error = {0};

   memset(f, 0, sizeof *f);
   atomic_init(&f->app.draining, false);
   f->app.metrics = flora_metrics_new();
   if (!flora_server_start(&f->server, &f->app, routes, o, &error)) {
      fail_msg("server start: %s", error.message);
   }
   assert_true(flora_server_port(f->server) > 0);
   snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", flora_server_port(f->server));
}

static void
stop(fixture_t *f)
{
   flora_server_stop(f->server);
   flora_metrics_destroy(f->app.metrics);
   f->server = NULL;
}

static int
group_setup(void **state)
{
   flora_server_options_t o = test_options();

   (void) state;
   curl_global_init(CURL_GLOBAL_DEFAULT);
   flora_log_configure("warn", "logfmt");
   start(&fx, &o);
   return 0;
}

static int
group_teardown(void **state)
{
   (void) state;
   stop(&fx);
   curl_global_cleanup();
   return 0;
}

/* ---- client ----------------------------------------------------------------------- */

typedef struct reply {
   long status;
   char *body;
   size_t body_len;
   char *headers;
   size_t headers_len;
   long connects;
   CURLcode code;
} reply_t;

typedef struct sink {
   char *buf;
   size_t len;
} sink_t;

static size_t
collect(char *data, size_t size, size_t n, void *userp)
{
   sink_t *s = userp;
   size_t add = size * n;
   char *p = realloc(s->buf, s->len + add + 1);

   if (!p) {
      return 0;
   }
   memcpy(p + s->len, data, add);
   s->len += add;
   p[s->len] = '\0';
   s->buf = p;
   return add;
}

typedef struct request {
   const char *method;
   const char *path;
   const char *body;     /* NULL: none */
   long body_len;        /* 0: strlen(body) */
   bool chunked;         /* send the body with Transfer-Encoding: chunked */
   const char *headers[4];
} request_t;

typedef struct upload {
   const char *data;
   size_t len;
   size_t off;
} upload_t;

static size_t
read_upload(char *buf, size_t size, size_t n, void *userp)
{
   upload_t *u = userp;
   size_t left = u->len - u->off;
   size_t take = size * n < left ? size * n : left;

   memcpy(buf, u->data + u->off, take);
   u->off += take;
   return take;
}

/* Performs one request on curl (a handle reused for keep-alive, or NULL for a new one). */
static reply_t
perform_on(CURL *curl, const char *base, const request_t *rq)
{
   reply_t r = {0};
   struct curl_slist *headers = NULL;
   char url[4096];
   bool own = curl == NULL;
   sink_t body = {NULL, 0};
   sink_t head = {NULL, 0};
   upload_t up = {0};

   if (own) {
      curl = curl_easy_init();
   }
   curl_easy_reset(curl);
   snprintf(url, sizeof url, "%s%s", base, rq->path);
   curl_easy_setopt(curl, CURLOPT_URL, url);
   curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, rq->method);
   curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
   curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
   curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
   curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
   curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect);
   curl_easy_setopt(curl, CURLOPT_HEADERDATA, &head);
   if (strcmp(rq->method, "HEAD") == 0) {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
   }
   for (size_t i = 0; i < 4 && rq->headers[i]; i++) {
      headers = curl_slist_append(headers, rq->headers[i]);
   }
   if (rq->body) {
      up.data = rq->body;
      up.len = rq->body_len <= 0 ? strlen(rq->body) : (size_t) rq->body_len;
      if (rq->chunked) {
         headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
         curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
         curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_upload);
         curl_easy_setopt(curl, CURLOPT_READDATA, &up);
         curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, rq->method);
      } else {
         curl_easy_setopt(curl, CURLOPT_POSTFIELDS, rq->body);
         curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) up.len);
      }
      headers = curl_slist_append(headers, "Content-Type: application/json");
   }
   curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
   r.code = curl_easy_perform(curl);
   curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
   curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &r.connects);
   curl_slist_free_all(headers);
   if (own) {
      curl_easy_cleanup(curl);
   }
   r.body = body.buf ? body.buf : strdup("");
   r.body_len = body.len;
   r.headers = head.buf ? head.buf : strdup("");
   r.headers_len = head.len;
   return r;
}

static reply_t
perform(const request_t *rq)
{
   return perform_on(NULL, fx.base, rq);
}

static void
reply_free(reply_t *r)
{
   free(r->body);
   free(r->headers);
}

/* The value of a response header (case-insensitive name), copied into a static buffer. */
static const char *
header_of(const reply_t *r, const char *name)
{
   static char value[256];
   size_t n = strlen(name);

   for (const char *line = r->headers; line && *line;) {
      const char *end = strstr(line, "\r\n");

      if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
         const char *v = line + n + 1;

         while (*v == ' ') {
            v++;
         }
         snprintf(value, sizeof value, "%.*s", (int) (end - v), v);
         return value;
      }
      line = end ? end + 2 : NULL;
   }
   return NULL;
}

static bson_t *
json_of(const reply_t *r)
{
   bson_error_t err;
   bson_t *b = bson_new_from_json((const uint8_t *) r->body, (ssize_t) r->body_len, &err);

   if (!b) {
      fail_msg("response is not JSON (%s): %s", err.message, r->body);
   }
   return b;
}

static const char *
str_at(const bson_t *doc, const char *dotted)
{
   bson_iter_t it;
   bson_iter_t found;

   if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, dotted, &found) ||
       !BSON_ITER_HOLDS_UTF8(&found)) {
      return NULL;
   }
   return bson_iter_utf8(&found, NULL);
}

/* Asserts status, a JSON error body with code, and a message containing message_part. */
static void
assert_error(const reply_t *r, long status, const char *code, const char *message_part)
{
   bson_t *doc;

   if (r->status != status) {
      fail_msg("expected %ld, got %ld: %s", status, r->status, r->body);
   }
   assert_string_equal(header_of(r, "Content-Type"), "application/json");
   doc = json_of(r);
   assert_non_null(str_at(doc, "error.code"));
   assert_string_equal(str_at(doc, "error.code"), code);
   if (message_part && !strstr(str_at(doc, "error.message"), message_part)) {
      fail_msg("'%s' not in '%s'", message_part, str_at(doc, "error.message"));
   }
   bson_destroy(doc);
}

/* ---- tests ------------------------------------------------------------------------ */

typedef struct error_case {
   request_t rq;
   long status;
   const char *code;
   const char *message_part;
} error_case_t;

static void
test_error_answers(void **state)
{
   static char big[2048];
   static char deep[1000];
   const error_case_t cases[] = {
      {{"GET", "/nope"}, 404, "not_found", "no such route"},
      {{"GET", "/echo/a"}, 404, "not_found", NULL},
      {{"GET", "/echo/a/b/c"}, 404, "not_found", NULL},
      {{"GET", "/echo//b"}, 404, "not_found", NULL},
      {{"GET", "/json/"}, 404, "not_found", NULL},
      {{"GET", "/json"}, 405, "method_not_allowed", "allowed: POST"},
      {{"PUT", "/echo/x/y"}, 405, "method_not_allowed", "GET, HEAD, DELETE"},
      {{"GET", "/echo/a%zz/b"}, 400, "invalid_argument", "malformed percent-encoding"},
      {{"GET", "/echo/a%2/b"}, 400, "invalid_argument", "path"},
      {{"GET", "/echo/a%00/b"}, 400, "invalid_argument", "path"},
      {{"GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/1/2/3/4/5/6/7/8"}, 404,
       "not_found", NULL},
      {{"GET", "/echo/a/b?q=%g1"}, 400, "invalid_argument", "query string"},
      {{"GET", "/echo/%f0%28/b"}, 400, "invalid_argument", "UTF-8 in the path"},
      {{"GET", "/echo/a/b?q=%c3"}, 400, "invalid_argument", "UTF-8 in the query string"},
      {{"GET", "/echo/a/b?%ff=1"}, 400, "invalid_argument", "query string"},
      {{"POST", "/json", "{\"a\": "}, 400, "invalid_argument", "not valid JSON"},
      {{"POST", "/json", "[1, 2]"}, 400, "invalid_argument", "must be a JSON object"},
      {{"POST", "/json", "\"text\""}, 400, "invalid_argument", "must be a JSON object"},
      {{"POST", "/json", ""}, 400, "invalid_argument", "empty"},
      {{"POST", "/json", "  \n "}, 400, "invalid_argument", "empty"},
      {{"POST", "/json", "{\"a\": \"\xff\"}"}, 400, "invalid_argument", "UTF-8"},
      {{"POST", "/json", "{} {}"}, 400, "invalid_argument", "end of file expected"},
      {{"POST", "/json", "{}x"}, 400, "invalid_argument", NULL},
      {{"POST", "/json", big, sizeof big}, 413, "payload_too_large", "1024 bytes"},
      {{"POST", "/json", big, sizeof big, true}, 413, "payload_too_large", "1024 bytes"},
      {{"POST", "/json", deep}, 400, "invalid_argument", "not valid JSON"},
      {{"GET", "/fail"}, 500, "internal", "internal error"},
      {{"GET", "/store-error"}, 500, "internal", "internal error"},
      {{"GET", "/conflict"}, 409, "conflict", "sku is taken"},
   };

   (void) state;
   /* {"a":{"a":...  nested deeper than libbson's JSON reader allows, and unterminated. */
   for (size_t i = 0; i + 6 < sizeof deep; i += 5) {
      memcpy(deep + i, "{\"a\":", 5);
   }
   memset(big, ' ', sizeof big);
   big[0] = '{';
   big[sizeof big - 1] = '}';
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      reply_t r = perform(&cases[i].rq);

      print_message("case %zu: %s %s -> %ld\n", i, cases[i].rq.method, cases[i].rq.path, r.status);
      assert_int_equal(r.code, CURLE_OK);
      assert_error(&r, cases[i].status, cases[i].code, cases[i].message_part);
      assert_non_null(header_of(&r, "X-Request-Id"));
      /* Never an internal detail in the answer. */
      assert_null(strstr(r.body, "secret"));
      if (cases[i].status == 405) {
         assert_non_null(header_of(&r, "Allow"));
         assert_non_null(strstr(cases[i].message_part, header_of(&r, "Allow")));
      }
      reply_free(&r);
   }
}

static void
test_details_and_field(void **state)
{
   reply_t r = perform(&(request_t){"GET", "/conflict"});
   bson_t *doc = json_of(&r);
   bson_t *expected =
      J("{'error': {'code': 'conflict', 'message': 'sku is taken', 'field': 'sku', "
        "'details': [{'path': 'sku', 'reason': 'taken'}]}}");

   (void) state;
   assert_bson_equal(doc, expected);
   bson_destroy(doc);
   bson_destroy(expected);
   reply_free(&r);
}

static void
test_params_query_headers(void **state)
{
   reply_t r = perform(&(request_t){"GET",
                                    "/echo/red%20roses/a%2Fb?q=x%26y+z&other=1&flag&stop=%3D&after=1",
                                    .headers = {"X-Test: hello"}});
   bson_t *doc;

   (void) state;
   assert_int_equal(r.status, 200);
   assert_string_equal(header_of(&r, "Content-Type"), "application/json");
   doc = json_of(&r);
   assert_string_equal(str_at(doc, "a"), "red roses");
   assert_string_equal(str_at(doc, "b"), "a/b");
   assert_string_equal(str_at(doc, "path"), "/echo/red roses/a/b");
   assert_string_equal(str_at(doc, "q"), "x&y z");
   assert_string_equal(str_at(doc, "h"), "hello");
   assert_string_equal(str_at(doc, "method"), "GET");
   /* Every parameter in order, decoded, "" for a bare name; the callback can stop early. */
   assert_string_equal(str_at(doc, "all"), "q=x&y z;other=1;flag=;stop==;");
   bson_destroy(doc);
   reply_free(&r);

   /* HEAD is served by the GET route, without a body. */
   r = perform(&(request_t){"HEAD", "/echo/a/b"});
   assert_int_equal(r.status, 200);
   assert_int_equal(r.body_len, 0);
   reply_free(&r);
}

static void
test_json_body_and_location(void **state)
{
   reply_t r = perform(&(request_t){"POST", "/json", "{\"name\": \"Розы\", \"n\": 3, "
                                                     "\"id\": \"5f1d7a1b2c3d4e5f60718293\"}",
                                    0});
   reply_t ext = perform(&(request_t){"POST", "/json", "{\"id\": {\"$oid\": \"5f1d7a1b2c3d4e5f60718293\"}}", 0});
   bson_t *doc;
   bson_t *expected = J("{'got': {'name': 'Розы', 'n': 3, 'id': '5f1d7a1b2c3d4e5f60718293'}}");

   (void) state;
   /* Extended JSON in a client body is refused before the route runs, naming the field. */
   assert_int_equal(ext.status, 400);
   assert_non_null(strstr(ext.body, "\"field\" : \"id\""));
   reply_free(&ext);
   assert_int_equal(r.status, 201);
   assert_string_equal(header_of(&r, "Location"), "/json/1");
   doc = json_of(&r);
   assert_bson_equal(doc, expected);
   bson_destroy(doc);
   bson_destroy(expected);
   reply_free(&r);

   /* A body of exactly the limit is accepted, chunked too. */
   {
      char exact[1024];

      memset(exact, ' ', sizeof exact);
      exact[0] = '{';
      exact[sizeof exact - 1] = '}';
      r = perform(&(request_t){"POST", "/json", exact, sizeof exact});
      assert_int_equal(r.status, 201);
      reply_free(&r);
      r = perform(&(request_t){"POST", "/json", exact, sizeof exact, true});
      assert_int_equal(r.status, 201);
      reply_free(&r);
   }
}

static void
test_array_body(void **state)
{
   reply_t r = perform(&(request_t){"GET", "/array"});
   char wrapped[512];
   bson_t *doc;
   bson_t *expected = J("{'a': [1, 'Розы \\\"red\\\"', {'price': 199900, "
                        "'_id': '5f1d7a1b2c3d4e5f60718293', 'at': '2025-11-30T16:30:19.123Z'}]}");

   (void) state;
   assert_int_equal(r.status, 200);
   assert_int_equal(r.body[0], '[');
   snprintf(wrapped, sizeof wrapped, "{\"a\": %s}", r.body);
   free(r.body);
   r.body = strdup(wrapped);
   r.body_len = strlen(wrapped);
   doc = json_of(&r);
   assert_bson_equal(doc, expected);
   bson_destroy(doc);
   bson_destroy(expected);
   reply_free(&r);
}

static void
test_request_id(void **state)
{
   reply_t r = perform(&(request_t){"GET", "/echo/a/b", .headers = {"X-Request-Id: abc-1.2_3"}});
   const char *id;

   (void) state;
   assert_string_equal(header_of(&r, "X-Request-Id"), "abc-1.2_3");
   reply_free(&r);

   /* Unsafe or overlong ids are replaced by a generated one (32 hex digits). */
   r = perform(&(request_t){"GET", "/echo/a/b", .headers = {"X-Request-Id: a\"b<script>"}});
   id = header_of(&r, "X-Request-Id");
   assert_int_equal(strlen(id), 32);
   assert_int_equal(strspn(id, "0123456789abcdef"), 32);
   reply_free(&r);
   r = perform(&(request_t){"GET", "/echo/a/b",
                            .headers = {"X-Request-Id: "
                                        "0123456789012345678901234567890123456789012345678901234567890123"
                                        "4"}});
   assert_int_equal(strlen(header_of(&r, "X-Request-Id")), 32);
   reply_free(&r);
}

static void
test_keep_alive(void **state)
{
   CURL *curl = curl_easy_init();

   (void) state;
   for (int i = 0; i < 4; i++) {
      reply_t r = perform_on(curl, fx.base, &(request_t){"GET", "/echo/a/b"});

      assert_int_equal(r.status, 200);
      assert_int_equal(r.connects, i == 0 ? 1 : 0); /* reused after the first */
      reply_free(&r);
   }
   /* 204 has no body, and the connection stays usable. */
   {
      reply_t r = perform_on(curl, fx.base, &(request_t){"DELETE", "/echo/a/b"});

      assert_int_equal(r.status, 204);
      assert_int_equal(r.body_len, 0);
      assert_null(header_of(&r, "Content-Type"));
      /* RFC 9110 section 8.6: no Content-Length in a 204. */
      assert_null(header_of(&r, "Content-Length"));
      assert_int_equal(r.connects, 0);
      reply_free(&r);
      r = perform_on(curl, fx.base, &(request_t){"GET", "/echo/a/b"});
      assert_int_equal(r.status, 200);
      assert_int_equal(r.connects, 0);
      reply_free(&r);
   }
   /* A refused body is drained, so the connection survives a 413 and a 404 with a body. */
   {
      static char big[3000];
      reply_t r;

      memset(big, 'x', sizeof big);
      r = perform_on(curl, fx.base, &(request_t){"POST", "/json", big, sizeof big});
      assert_int_equal(r.status, 413);
      assert_int_equal(r.connects, 0);
      reply_free(&r);
      r = perform_on(curl, fx.base, &(request_t){"POST", "/nope", big, sizeof big});
      assert_int_equal(r.status, 404);
      assert_int_equal(r.connects, 0);
      reply_free(&r);
      r = perform_on(curl, fx.base, &(request_t){"GET", "/echo/a/b"});
      assert_int_equal(r.status, 200);
      assert_int_equal(r.connects, 0);
      reply_free(&r);
   }
   /* Error answers without a body keep the connection too. */
   {
      reply_t r = perform_on(curl, fx.base, &(request_t){"GET", "/nope"});

      assert_int_equal(r.status, 404);
      assert_int_equal(r.connects, 0);
      reply_free(&r);
   }
   curl_easy_cleanup(curl);
}

static void
test_admin_auth(void **state)
{
   reply_t r = perform(&(request_t){"POST", "/admin/reindex"});
   fixture_t no_token;
   flora_server_options_t o = test_options();

   (void) state;
   assert_error(&r, 401, "unauthorized", "Bearer");
   assert_string_equal(header_of(&r, "WWW-Authenticate"), "Bearer");
   reply_free(&r);
   r = perform(&(request_t){"POST", "/admin/reindex", .headers = {"Authorization: Basic eDp5"}});
   assert_error(&r, 401, "unauthorized", NULL);
   reply_free(&r);
   r = perform(&(request_t){"POST", "/admin/reindex",
                            .headers = {"Authorization: Bearer s3cret-tokeN"}});
   assert_error(&r, 401, "unauthorized", "invalid or expired");
   reply_free(&r);
   r = perform(&(request_t){"POST", "/admin/reindex",
                            .headers = {"Authorization: Bearer s3cret-token-and-more"}});
   assert_error(&r, 401, "unauthorized", NULL);
   reply_free(&r);
   r = perform(&(request_t){"POST", "/admin/reindex",
                            .headers = {"Authorization: Bearer s3cret-token"}});
   assert_int_equal(r.status, 200);
   reply_free(&r);

   /* No token configured: a bearer token can only be a session, and there is none. */
   o.admin_token = "";
   start(&no_token, &o);
   r = perform_on(NULL, no_token.base,
                  &(request_t){"POST", "/admin/reindex",
                               .headers = {"Authorization: Bearer "}});
   assert_error(&r, 401, "unauthorized", NULL);
   reply_free(&r);
   stop(&no_token);
}

typedef struct worker {
   int ok;
   int requests;
} worker_t;

static void *
hammer(void *arg)
{
   worker_t *w = arg;
   CURL *curl = curl_easy_init();

   for (int i = 0; i < w->requests; i++) {
      reply_t r = perform_on(i % 2 ? curl : NULL, fx.base, &(request_t){"GET", "/echo/c/d"});

      w->ok += r.code == CURLE_OK && r.status == 200 && strstr(r.body, "\"a\" : \"c\"") != NULL;
      reply_free(&r);
   }
   curl_easy_cleanup(curl);
   return NULL;
}

static void
test_concurrent_requests(void **state)
{
   pthread_t threads[8];
   worker_t workers[8];

   (void) state;
   for (int i = 0; i < 8; i++) {
      workers[i] = (worker_t){0, 25};
      assert_int_equal(pthread_create(&threads[i], NULL, hammer, &workers[i]), 0);
   }
   for (int i = 0; i < 8; i++) {
      pthread_join(threads[i], NULL);
      assert_int_equal(workers[i].ok, 25);
   }
}

/* Raw bytes to a port; returns what the server answered (static buffer). half_close: shut
 * our side down after sending (else wait for the server to answer or close). */
static const char *
raw_exchange_port(uint16_t port, const char *data, size_t len, bool half_close)
{
   static char buf[8192];
   struct sockaddr_in sa = {0};
   int fd = socket(AF_INET, SOCK_STREAM, 0);
   size_t got = 0;
   struct timeval tv = {5, 0};

   sa.sin_family = AF_INET;
   sa.sin_port = htons(port);
   sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
   assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
   setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
   for (size_t off = 0; off < len;) {
      ssize_t w = send(fd, data + off, len - off, MSG_NOSIGNAL);

      if (w <= 0) {
         break; /* the server may close early: that is an answer too */
      }
      off += (size_t) w;
   }
   if (half_close) {
      shutdown(fd, SHUT_WR);
   }
   for (;;) {
      ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);

      if (n <= 0) {
         break;
      }
      got += (size_t) n;
   }
   buf[got] = '\0';
   close(fd);
   return buf;
}

static const char *
raw_exchange(const char *data, size_t len)
{
   return raw_exchange_port(flora_server_port(fx.server), data, len, true);
}

static double
now_s(void)
{
   struct timespec ts;

   clock_gettime(CLOCK_MONOTONIC, &ts);
   return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* A body announced beyond the drain limit is refused without being read, as is one the
 * client holds back for 100 Continue; one sent anyway is drained and answered; an idle
 * connection is closed after connection_timeout_s. */
static void
test_early_413_and_idle_timeout(void **state)
{
   static const char headers_only[] = "POST /json HTTP/1.1\r\nHost: x\r\n"
                                      "Content-Length: 50000000\r\n\r\n";
   static const char expecting[] = "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                                   "Expect: 100-continue\r\n\r\n";
   char sent_anyway[4096];
   fixture_t f;
   flora_server_options_t o = test_options();
   const char *answer;
   double t0;
   int n;

   (void) state;
   n = snprintf(sent_anyway, sizeof sent_anyway,
                "POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n");
   memset(sent_anyway + n, 'x', 2000);
   snprintf(sent_anyway + n + 2000, sizeof sent_anyway - (size_t) n - 2000,
            "GET /echo/a/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
   o.connection_timeout_s = 1;
   start(&f, &o);
   t0 = now_s();
   answer = raw_exchange_port(flora_server_port(f.server), headers_only, sizeof headers_only - 1,
                              false);
   assert_memory_equal(answer, "HTTP/1.1 413 ", 13);
   assert_non_null(strstr(answer, "\"payload_too_large\""));
   assert_true(now_s() - t0 < 1.0); /* answered at once, not after the timeout */

   /* A client waiting for 100 Continue gets the 413 instead, and never sends the body. */
   t0 = now_s();
   answer = raw_exchange_port(flora_server_port(f.server), expecting, sizeof expecting - 1, false);
   assert_memory_equal(answer, "HTTP/1.1 413 ", 13);
   assert_null(strstr(answer, "100 Continue"));
   assert_true(now_s() - t0 < 1.0);

   /* A refused body that is sent anyway is read, dropped, and answered; keep-alive holds. */
   answer = raw_exchange_port(flora_server_port(f.server), sent_anyway, strlen(sent_anyway),
                              false);
   assert_memory_equal(answer, "HTTP/1.1 413 ", 13);
   assert_non_null(strstr(answer, "HTTP/1.1 200 "));

   t0 = now_s();
   answer = raw_exchange_port(flora_server_port(f.server), "", 0, false);
   assert_string_equal(answer, "");
   assert_true(now_s() - t0 >= 0.9);
   assert_true(now_s() - t0 < 4.5);
   stop(&f);
}

static void
test_hostile_input(void **state)
{
   static const char *const inputs[] = {
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "GET /echo/a/b HTTP/9.9\r\n\r\n",
      "GET http://example.com/echo/a/b?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "POST /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -5\r\n\r\n{}",
      "POST /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Content-Length: 99999999999999999999999\r\n\r\n{}",
      "POST /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Transfer-Encoding: chunked\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n",
      "GET /echo/%/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /echo/a/b?%=%&&=&q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /\x01\x02\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
   };
   char *huge = malloc(200 * 1024);
   size_t n;

   (void) state;
   for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
      const char *answer = raw_exchange(inputs[i], strlen(inputs[i]));

      print_message("input %zu -> %.40s\n", i, answer);
      if (i >= 2) {
         /* Requests MHD parses are answered, with a status line. */
         assert_memory_equal(answer, "HTTP/1.", 7);
      }
      if (strncmp(inputs[i], "GET * ", 6) == 0) {
         assert_non_null(strstr(answer, "must be a path"));
      }
      if (i == 3) {
         /* The absolute form (RFC 9112 section 3.2.2) is routed by its path. */
         assert_non_null(strstr(answer, "HTTP/1.1 200 "));
         assert_non_null(strstr(answer, "\"q\" : \"1\""));
      }
   }
   /* A header bigger than the connection's memory. */
   n = (size_t) snprintf(huge, 200 * 1024,
                         "GET /echo/a/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ");
   memset(huge + n, 'a', 150 * 1024);
   n += 150 * 1024;
   memcpy(huge + n, "\r\n\r\n", 4);
   n += 4;
   raw_exchange(huge, n);
   free(huge);
   /* Still serving. */
   {
      reply_t r = perform(&(request_t){"GET", "/echo/a/b"});

      assert_int_equal(r.status, 200);
      reply_free(&r);
   }
}

/* Random request targets over the characters that matter to decoding and routing: every
 * answer is a JSON document with one of the expected statuses. Seeded: reproducible, and
 * FLORA_TEST_SEED picks another sequence. */
static void
test_random_targets(void **state)
{
   static const char alphabet[] = "%%%//ab{}09fFgG?&=+.-_~echojsonmetrics";
   CURL *curl = curl_easy_init();
   unsigned seed = 20261130;

   (void) state;
   if (getenv("FLORA_TEST_SEED")) {
      seed = (unsigned) strtoul(getenv("FLORA_TEST_SEED"), NULL, 10);
   }
   print_message("seed %u (FLORA_TEST_SEED)\n", seed);
   for (int i = 0; i < 300; i++) {
      char path[64];
      size_t len = 1 + (size_t) (rand_r(&seed) % 40);
      reply_t r;
      bson_t *doc;

      path[0] = '/';
      for (size_t j = 1; j < len; j++) {
         path[j] = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
      }
      path[len] = '\0';
      if (i % 3 == 0) {
         snprintf(path, sizeof path, "/echo/%c%c/%%%c%c", alphabet[rand_r(&seed) % 20],
                  alphabet[rand_r(&seed) % 20], alphabet[rand_r(&seed) % 20],
                  alphabet[rand_r(&seed) % 20]);
      }
      r = perform_on(curl, fx.base, &(request_t){"GET", path});
      if (r.code != CURLE_OK || (r.status != 200 && r.status != 400 && r.status != 404 &&
                                 r.status != 405)) {
         fail_msg("GET %s: curl %d, status %ld: %s", path, r.code, r.status, r.body);
      }
      doc = json_of(&r);
      bson_destroy(doc);
      reply_free(&r);
   }
   curl_easy_cleanup(curl);
}

/* Random JSON-ish bodies (Extended JSON keywords, nesting, escapes, stray bytes): every
 * answer is 201 or a 400 JSON error, never a 500. */
static void
test_random_bodies(void **state)
{
   static const char *const pieces[] = {
      "{", "}", "[", "]", ",", ":", "\"a\"", "\"$oid\"", "\"$date\"", "\"$numberLong\"",
      "\"$regularExpression\"", "\"$binary\"", "\"$numberDecimal\"", "1", "-0", "1e999",
      "\"5f1d7a1b2c3d4e5f60718293\"", "true", "null", "\"\\u0000\"", "\"\\ud800\"", "\"Роза\"",
      "\xc3", " ", "\"x\"", "{\"$numberLong\": \"9\"}", "\"2026-02-14T00:00:00Z\"",
   };
   CURL *curl = curl_easy_init();
   unsigned seed = 14022026;

   (void) state;
   if (getenv("FLORA_TEST_SEED")) {
      seed = (unsigned) strtoul(getenv("FLORA_TEST_SEED"), NULL, 10);
   }
   for (int i = 0; i < 300; i++) {
      char body[1024];
      size_t len = 0;
      size_t n = 1 + (size_t) (rand_r(&seed) % 24);
      reply_t r;
      bson_t *doc;

      if (i % 2 == 0) {
         len = (size_t) snprintf(body, sizeof body, "{\"k\": ");
      }
      for (size_t j = 0; j < n; j++) {
         const char *p = pieces[rand_r(&seed) % (sizeof pieces / sizeof pieces[0])];

         len += (size_t) snprintf(body + len, sizeof body - len, "%s", p);
      }
      r = perform_on(curl, fx.base, &(request_t){"POST", "/json", body, (long) len});
      if (r.code != CURLE_OK || (r.status != 201 && r.status != 400)) {
         fail_msg("POST %s: curl %d, status %ld: %s", body, r.code, r.status, r.body);
      }
      doc = json_of(&r);
      bson_destroy(doc);
      reply_free(&r);
   }
   curl_easy_cleanup(curl);
}

static void
test_metrics_exposition(void **state)
{
   reply_t r;

   (void) state;
   r = perform(&(request_t){"GET", "/echo/m/n"});
   reply_free(&r);
   r = perform(&(request_t){"GET", "/nowhere"});
   reply_free(&r);
   flora_metrics_store_op(fx.app.metrics, "find", true);
   flora_metrics_store_op(fx.app.metrics, "find", false);
   r = perform(&(request_t){"GET", "/metrics"});
   assert_int_equal(r.status, 200);
   assert_string_equal(header_of(&r, "Content-Type"), FLORA_METRICS_CONTENT_TYPE);
   static const char *const expected[] = {
      "# TYPE flora_http_requests_total counter\n",
      "flora_http_requests_total{route=\"test.echo\",method=\"GET\",status=\"200\"} ",
      "flora_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} ",
      "flora_http_requests_total{route=\"test.json\",method=\"POST\",status=\"413\"} ",
      "flora_http_requests_total{route=\"unmatched\",method=\"PUT\",status=\"405\"} ",
      "# TYPE flora_http_request_duration_seconds histogram\n",
      "flora_http_request_duration_seconds_bucket{route=\"test.echo\",le=\"0.001\"} ",
      "flora_http_request_duration_seconds_bucket{route=\"test.echo\",le=\"2.5\"} ",
      "flora_http_request_duration_seconds_bucket{route=\"test.echo\",le=\"+Inf\"} ",
      "flora_http_request_duration_seconds_sum{route=\"test.echo\"} ",
      "flora_http_request_duration_seconds_count{route=\"test.echo\"} ",
      "flora_store_operations_total{op=\"find\"} 2\n",
      "flora_store_operation_errors_total{op=\"find\"} 1\n",
      "# TYPE flora_process_start_time_seconds gauge\nflora_process_start_time_seconds 1",
      "flora_build_info{version=\"" FLORA_VERSION "\",libmicrohttpd=\"",
   };
   for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
      if (!strstr(r.body, expected[i])) {
         fail_msg("'%s' not in:\n%s", expected[i], r.body);
      }
   }
   /* Every line is a comment or "name{labels} value". */
   for (char *line = r.body; *line;) {
      char *end = strchr(line, '\n');

      assert_non_null(end);
      assert_true(line[0] == '#' || (line[0] >= 'a' && line[0] <= 'z'));
      assert_non_null(memchr(line, ' ', (size_t) (end - line)));
      line = end + 1;
   }
   reply_free(&r);
}

typedef struct slow_client {
   char base[64];
   reply_t reply;
} slow_client_t;

static void *
slow_request(void *arg)
{
   slow_client_t *c = arg;

   c->reply = perform_on(NULL, c->base, &(request_t){"GET", "/slow"});
   return NULL;
}

static void
test_graceful_stop(void **state)
{
   fixture_t f;
   flora_server_options_t o = test_options();
   slow_client_t client;
   pthread_t thread;
   bson_t *doc;
   reply_t after;
   char base[64];

   (void) state;
   start(&f, &o);
   atomic_store(&slow_entered, 0);
   snprintf(client.base, sizeof client.base, "%s", f.base);
   snprintf(base, sizeof base, "%s", f.base);
   assert_int_equal(pthread_create(&thread, NULL, slow_request, &client), 0);
   while (!atomic_load(&slow_entered)) {
      usleep(1000);
   }
   f.app.draining = true;
   stop(&f); /* returns once the slow request has been answered */
   pthread_join(thread, NULL);
   assert_int_equal(client.reply.code, CURLE_OK);
   assert_int_equal(client.reply.status, 200);
   assert_string_equal(header_of(&client.reply, "Connection"), "close");
   doc = json_of(&client.reply);
   assert_non_null(strstr(client.reply.body, "\"slow\" : true"));
   bson_destroy(doc);
   reply_free(&client.reply);

   /* Nothing listens any more. */
   after = perform_on(NULL, base, &(request_t){"GET", "/slow"});
   assert_int_equal(after.code, CURLE_COULDNT_CONNECT);
   reply_free(&after);
}

static void
test_bad_bind_address(void **state)
{
   flora_server_options_t o = test_options();
   flora_server_t *server = NULL;
   flora_error_t error = {0};
   flora_app_t app = {0};

   (void) state;
   o.bind = "localhost-ish";
   assert_false(flora_server_start(&server, &app, routes, &o, &error));
   assert_null(server);
   assert_non_null(strstr(error.message, "localhost-ish"));
   /* The port in use. */
   o.bind = "127.0.0.1";
   o.port = flora_server_port(fx.server);
   assert_false(flora_server_start(&server, &app, routes, &o, &error));
   assert_non_null(strstr(error.message, "cannot listen"));
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_answers),
      cmocka_unit_test(test_details_and_field),
      cmocka_unit_test(test_params_query_headers),
      cmocka_unit_test(test_json_body_and_location),
      cmocka_unit_test(test_array_body),
      cmocka_unit_test(test_request_id),
      cmocka_unit_test(test_keep_alive),
      cmocka_unit_test(test_admin_auth),
      cmocka_unit_test(test_concurrent_requests),
      cmocka_unit_test(test_hostile_input),
      cmocka_unit_test(test_early_413_and_idle_timeout),
      cmocka_unit_test(test_random_targets),
      cmocka_unit_test(test_random_bodies),
      cmocka_unit_test(test_metrics_exposition),
      cmocka_unit_test(test_graceful_stop),
      cmocka_unit_test(test_bad_bind_address),
   };

   return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
