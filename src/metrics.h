/* Process metrics in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), served by GET /metrics.
 *
 * Families:
 *   flora_http_requests_total{route,method,status}            counter
 *   flora_http_request_duration_seconds{route}                histogram, buckets
 *       .001 .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 (seconds)
 *   flora_store_operations_total{op}                          counter
 *   flora_store_operation_errors_total{op}                    counter
 *   flora_process_start_time_seconds                          gauge (Unix time)
 *   flora_build_info{version,libmicrohttpd,libbson}           gauge, always 1
 *
 * Thread-safe: one mutex per family, held only to find a series and bump it. Label sets
 * are bounded by their callers: route names come from the route table, methods outside
 * the standard set are recorded as "OTHER". */
#ifndef FLORA_SRC_METRICS_H
#define FLORA_SRC_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "flora/error.h"

typedef struct flora_metrics flora_metrics_t;

/* A new registry with the process start time taken now; NULL when out of memory. The
 * caller destroys it (flora_metrics_destroy, NULL is a no-op). */
flora_metrics_t *flora_metrics_new(void);
void flora_metrics_destroy(flora_metrics_t *metrics);

/* Counts one finished HTTP request. route is the route's name ("unmatched" when none
 * matched); duration in seconds. metrics NULL is a no-op. */
void flora_metrics_http_request(flora_metrics_t *metrics, const char *route, const char *method,
                                int status, double duration_s);

/* Counts one store operation ("find", "insert_one", ...) and, when ok is false, one error.
 * metrics NULL is a no-op. */
void flora_metrics_store_op(flora_metrics_t *metrics, const char *op, bool ok);

/* Renders every family as exposition text into *out (malloc'd, NUL-terminated, owned by
 * the caller) and its length into *len. Errors: FLORA_ERR_SYSTEM when out of memory. */
bool flora_metrics_render(flora_metrics_t *metrics, char **out, size_t *len, flora_error_t *error);

/* The Content-Type of the rendered text. */
#define FLORA_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
