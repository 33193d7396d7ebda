/* The operations routes (src/routes_ops.c) behind the real server: /healthz, /readyz
 * against an embedded store (sqlite::memory:), without a store and while draining, and
 * /metrics; and the program's route table (src/routes.c). */
#include "flora_test.h"

#include <unistd.h>

#include <curl/curl.h>

#include "app.h"
#include "flora/log.h"
#include "flora/store.h"
#include "http.h"
#include "metrics.h"
#include "server.h"

typedef struct fixture {
   flora_app_t app;
   flora_server_t *server;
} fixture_t;

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

/* GETs path; returns the status, *body (caller frees) and the Content-Type. */
static long
get(const fixture_t *f, const char *path, char **body, char *content_type, size_t ct_size)
{
   CURL *curl = curl_easy_init();
   sink_t sink = {NULL, 0};
   char url[256];
   long status = 0;
   char *ct = NULL;

   snprintf(url, sizeof url, "http://127.0.0.1:%u%s", flora_server_port(f->server), path);
   curl_easy_setopt(curl, CURLOPT_URL, url);
   curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
   curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
   curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
   assert_int_equal(curl_easy_perform(curl), CURLE_OK);
   curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
   curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
   snprintf(content_type, ct_size, "%s", ct ? ct : "");
   curl_easy_cleanup(curl);
   *body = sink.buf ? sink.buf : strdup("");
   return status;
}

static int
setup(void **state)
{
   fixture_t *f = calloc(1, sizeof *f);
   flora_server_options_t o = {0};
   flora_error_t error = {0};

   flora_log_configure("warn", "logfmt");
   atomic_init(&f->app.draining, false);
   f->app.metrics = flora_metrics_new();
   if (!flora_store_open(&f->app.store, "sqlite::memory:", NULL, &error)) {
      fail_msg("store: %s", error.message);
   }
   o.bind = "127.0.0.1";
   o.threads = 2;
   o.max_body_bytes = 4096;
   o.connection_timeout_s = 10;
   o.shutdown_timeout_s = 5;
   if (!flora_server_start(&f->server, &f->app, flora_routes_ops, &o, &error)) {
      fail_msg("server: %s", error.message);
   }
   *state = f;
   return 0;
}

static int
teardown(void **state)
{
   fixture_t *f = *state;

   flora_server_stop(f->server);
   flora_store_close(f->app.store);
   flora_metrics_destroy(f->app.metrics);
   free(f);
   return 0;
}

static void
test_healthz_and_readyz(void **state)
{
   fixture_t *f = *state;
   char ct[128];
   char *body = NULL;
   flora_store_t *store = f->app.store;

   assert_int_equal(get(f, "/healthz", &body, ct, sizeof ct), 200);
   assert_string_equal(ct, "application/json");
   assert_non_null(strstr(body, "\"status\" : \"ok\""));
   free(body);

   assert_int_equal(get(f, "/readyz", &body, ct, sizeof ct), 200);
   assert_non_null(strstr(body, "\"status\" : \"ready\""));
   free(body);

   /* Without a store: not ready, still alive. */
   f->app.store = NULL;
   assert_int_equal(get(f, "/readyz", &body, ct, sizeof ct), 503);
   assert_non_null(strstr(body, "\"code\" : \"unavailable\""));
   assert_non_null(strstr(body, "store is not open"));
   free(body);
   assert_int_equal(get(f, "/healthz", &body, ct, sizeof ct), 200);
   free(body);
   f->app.store = store;

   /* Draining (SIGTERM received): not ready, still alive. */
   atomic_store(&f->app.draining, true);
   assert_int_equal(get(f, "/readyz", &body, ct, sizeof ct), 503);
   assert_non_null(strstr(body, "shutting down"));
   free(body);
   assert_int_equal(get(f, "/healthz", &body, ct, sizeof ct), 200);
   free(body);
   atomic_store(&f->app.draining, false);
}

static void
test_metrics(void **state)
{
   fixture_t *f = *state;
   char ct[128];
   char *body = NULL;

   assert_int_equal(get(f, "/healthz", &body, ct, sizeof ct), 200);
   free(body);
   assert_int_equal(get(f, "/readyz", &body, ct, sizeof ct), 200);
   free(body);
   /* A request is counted when libmicrohttpd reports it completed, which may come just
    * after the client has its answer: poll briefly for the count. */
   for (int tries = 0;; tries++) {
      assert_int_equal(get(f, "/metrics", &body, ct, sizeof ct), 200);
      if (tries >= 50 || strstr(body, "flora_http_requests_total{route=\"ops.readyz\",method=\"GET\","
                                      "status=\"200\"} 1\n")) {
         break;
      }
      free(body);
      usleep(20000);
   }
   assert_string_equal(ct, FLORA_METRICS_CONTENT_TYPE);
   assert_non_null(strstr(body, "flora_http_requests_total{route=\"ops.healthz\",method=\"GET\","
                                "status=\"200\"} 1\n"));
   assert_non_null(strstr(body, "flora_http_requests_total{route=\"ops.readyz\",method=\"GET\","
                                "status=\"200\"} 1\n"));
   assert_non_null(strstr(body, "flora_store_operations_total{op=\"ping\"} 1\n"));
   assert_non_null(strstr(body, "flora_build_info{version=\""));
   free(body);
}

static void
test_route_table(void **state)
{
   const flora_route_t *all = flora_http_routes();
   size_t n_ops = 0;

   (void) state;
   /* Every route is well formed, unique by method and pattern, and the ops routes are in. */
   for (const flora_route_t *r = all; r->method; r++) {
      assert_non_null(r->pattern);
      assert_int_equal(r->pattern[0], '/');
      assert_non_null(r->name);
      assert_non_null(r->handler);
      for (const flora_route_t *o = all; o < r; o++) {
         if (strcmp(o->method, r->method) == 0 && strcmp(o->pattern, r->pattern) == 0) {
            fail_msg("%s %s is routed twice", r->method, r->pattern);
         }
      }
      n_ops += strncmp(r->name, "ops.", 4) == 0;
   }
   assert_int_equal(n_ops, 3);
   assert_ptr_equal(flora_http_routes(), all); /* built once */
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_healthz_and_readyz, setup, teardown),
      cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
      cmocka_unit_test(test_route_table),
   };
   int rc;

   curl_global_init(CURL_GLOBAL_DEFAULT);
   rc = cmocka_run_group_tests(tests, NULL, NULL);
   curl_global_cleanup();
   return rc;
}
