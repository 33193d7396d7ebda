/* Operations routes: liveness, readiness and metrics (src/http.h flora_routes_ops).
 *
 *   GET /healthz  200 {"status": "ok"} while the process serves requests (liveness).
 *   GET /readyz   200 {"status": "ready"} when the store answers a ping and the server is
 *                 not draining; otherwise 503 with the reason (readiness: a load balancer
 *                 stops sending traffic).
 *   GET /metrics  Prometheus text exposition format 0.0.4 (src/metrics.h). */
#include <stdlib.h>

#include "app.h"
#include "flora/log.h"
#include "http.h"
#include "metrics.h"

static bool
healthz(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   (void) app;
   (void) req;
   BSON_APPEND_UTF8(&res->body, "status", "ok");
   return true;
}

static bool
readyz(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};

   (void) req;
   if (atomic_load(&app->draining)) {
      return flora_http_error(res, 503, "unavailable", NULL, "shutting down", NULL);
   }
   if (!app->store) {
      return flora_http_error(res, 503, "unavailable", NULL, "store is not open", NULL);
   }
   if (!flora_store_ping(app->store, &error)) {
      flora_metrics_store_op(app->metrics, "ping", false);
      FLORA_LOG_WARN("http", "not ready", "error", error.message);
      flora_error_prefix(&error, "store does not answer");
      return flora_http_error(res, 503, "unavailable", NULL, error.message, NULL);
   }
   flora_metrics_store_op(app->metrics, "ping", true);
   BSON_APPEND_UTF8(&res->body, "status", "ready");
   return true;
}

static bool
metrics(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};

   (void) req;
   if (!app->metrics) {
      return flora_http_error(res, 503, "unavailable", NULL, "metrics are not enabled", NULL);
   }
   if (!flora_metrics_render(app->metrics, &res->raw, &res->raw_len, &error)) {
      return flora_http_fail(res, &error);
   }
   res->content_type = FLORA_METRICS_CONTENT_TYPE;
   return true;
}

const flora_route_t flora_routes_ops[] = {
   {"GET", "/healthz", "ops.healthz", FLORA_AUTH_NONE, healthz},
   {"GET", "/readyz", "ops.readyz", FLORA_AUTH_NONE, readyz},
   {"GET", "/metrics", "ops.metrics", FLORA_AUTH_NONE, metrics},
   {NULL, NULL, NULL, FLORA_AUTH_NONE, NULL},
};
