/* Prometheus metrics: see src/metrics.h. */
#include "metrics.h"

#include <bson/bson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef FLORA_VERSION
#error "FLORA_VERSION is defined by the build (CMakeLists.txt)"
#endif

static const double buckets[] = {.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
static const char *const bucket_labels[] = {"0.001", "0.005", "0.01", "0.025", "0.05", "0.1",
                                            "0.25",  "0.5",   "1",    "2.5",   "5",    "10"};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])
_Static_assert(sizeof bucket_labels / sizeof bucket_labels[0] == N_BUCKETS, "one label per bucket");

typedef struct request_series {
   char *route;
   char method[8];
   int status;
   uint64_t count;
} request_series_t;

typedef struct duration_series {
   char *route;
   uint64_t bucket_counts[N_BUCKETS]; /* non-cumulative; summed when rendered */
   uint64_t count;
   double sum;
} duration_series_t;

typedef struct store_series {
   char *op;
   uint64_t count;
   uint64_t errors;
} store_series_t;

/* A growable array of series under one mutex. */
typedef struct family {
   pthread_mutex_t lock;
   void *items;
   size_t n;
   size_t cap;
} family_t;

struct flora_metrics {
   family_t requests;  /* request_series_t */
   family_t durations; /* duration_series_t */
   family_t store;     /* store_series_t */
   double start_time;
};

static void
family_init(family_t *f)
{
   pthread_mutex_init(&f->lock, NULL);
   f->items = NULL;
   f->n = 0;
   f->cap = 0;
}

/* Makes room for one more item of size bytes; false when out of memory. Lock held. */
static bool
family_grow(family_t *f, size_t size)
{
   size_t cap;
   void *p;

   if (f->n < f->cap) {
      return true;
   }
   cap = f->cap ? f->cap * 2 : 16;
   p = realloc(f->items, cap * size);
   if (!p) {
      return false;
   }
   f->items = p;
   f->cap = cap;
   return true;
}

flora_metrics_t *
flora_metrics_new(void)
{
   flora_metrics_t *m = calloc(1, sizeof *m);
   struct timespec ts;

   if (!m) {
      return NULL;
   }
   family_init(&m->requests);
   family_init(&m->durations);
   family_init(&m->store);
   clock_gettime(CLOCK_REALTIME, &ts);
   m->start_time = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
   return m;
}

void
flora_metrics_destroy(flora_metrics_t *m)
{
   if (!m) {
      return;
   }
   for (size_t i = 0; i < m->requests.n; i++) {
      free(((request_series_t *) m->requests.items)[i].route);
   }
   for (size_t i = 0; i < m->durations.n; i++) {
      free(((duration_series_t *) m->durations.items)[i].route);
   }
   for (size_t i = 0; i < m->store.n; i++) {
      free(((store_series_t *) m->store.items)[i].op);
   }
   free(m->requests.items);
   free(m->durations.items);
   free(m->store.items);
   pthread_mutex_destroy(&m->requests.lock);
   pthread_mutex_destroy(&m->durations.lock);
   pthread_mutex_destroy(&m->store.lock);
   free(m);
}

/* Standard methods keep their name; anything else is "OTHER" (bounded label values). */
static const char *
method_label(const char *method)
{
   static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT",
                                       "PATCH",   "DELETE",  "OPTIONS"};

   for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
      if (method && strcmp(method, known[i]) == 0) {
         return known[i];
      }
   }
   return "OTHER";
}

void
flora_metrics_http_request(flora_metrics_t *m, const char *route, const char *method, int status,
                           double duration_s)
{
   const char *ml = method_label(method);
   request_series_t *rs = NULL;
   duration_series_t *ds = NULL;

   if (!m) {
      return;
   }
   if (!route) {
      route = "unmatched";
   }
   pthread_mutex_lock(&m->requests.lock);
   for (size_t i = 0; i < m->requests.n; i++) {
      request_series_t *s = &((request_series_t *) m->requests.items)[i];

      if (s->status == status && strcmp(s->method, ml) == 0 && strcmp(s->route, route) == 0) {
         rs = s;
         break;
      }
   }
   if (!rs && family_grow(&m->requests, sizeof *rs)) {
      char *copy = strdup(route);

      if (copy) {
         rs = &((request_series_t *) m->requests.items)[m->requests.n++];
         memset(rs, 0, sizeof *rs);
         rs->route = copy;
         snprintf(rs->method, sizeof rs->method, "%s", ml);
         rs->status = status;
      }
   }
   if (rs) {
      rs->count++;
   }
   pthread_mutex_unlock(&m->requests.lock);

   pthread_mutex_lock(&m->durations.lock);
   for (size_t i = 0; i < m->durations.n; i++) {
      duration_series_t *s = &((duration_series_t *) m->durations.items)[i];

      if (strcmp(s->route, route) == 0) {
         ds = s;
         break;
      }
   }
   if (!ds && family_grow(&m->durations, sizeof *ds)) {
      char *copy = strdup(route);

      if (copy) {
         ds = &((duration_series_t *) m->durations.items)[m->durations.n++];
         memset(ds, 0, sizeof *ds);
         ds->route = copy;
      }
   }
   if (ds) {
      for (size_t b = 0; b < N_BUCKETS; b++) {
         if (duration_s <= buckets[b]) {
            ds->bucket_counts[b]++;
            break;
         }
      }
      ds->count++;
      ds->sum += duration_s;
   }
   pthread_mutex_unlock(&m->durations.lock);
}

void
flora_metrics_store_op(flora_metrics_t *m, const char *op, bool ok)
{
   store_series_t *ss = NULL;

   if (!m || !op) {
      return;
   }
   pthread_mutex_lock(&m->store.lock);
   for (size_t i = 0; i < m->store.n; i++) {
      store_series_t *s = &((store_series_t *) m->store.items)[i];

      if (strcmp(s->op, op) == 0) {
         ss = s;
         break;
      }
   }
   if (!ss && family_grow(&m->store, sizeof *ss)) {
      char *copy = strdup(op);

      if (copy) {
         ss = &((store_series_t *) m->store.items)[m->store.n++];
         memset(ss, 0, sizeof *ss);
         ss->op = copy;
      }
   }
   if (ss) {
      ss->count++;
      ss->errors += ok ? 0 : 1;
   }
   pthread_mutex_unlock(&m->store.lock);
}

/* Appends a label value escaped as the exposition format requires: \\ \" \n. */
static void
append_label(bson_string_t *s, const char *value)
{
   for (const char *p = value; *p; p++) {
      switch (*p) {
      case '\\':
         bson_string_append(s, "\\\\");
         break;
      case '"':
         bson_string_append(s, "\\\"");
         break;
      case '\n':
         bson_string_append(s, "\\n");
         break;
      default:
         bson_string_append_c(s, *p);
      }
   }
}

/* Formats a float the way Prometheus clients do: shortest round-trip form, "+Inf". */
static void
append_double(bson_string_t *s, double v)
{
   char buf[64];

   snprintf(buf, sizeof buf, "%.17g", v);
   for (int prec = 1; prec < 17; prec++) {
      char shorter[64];

      snprintf(shorter, sizeof shorter, "%.*g", prec, v);
      if (strtod(shorter, NULL) == v) {
         memcpy(buf, shorter, sizeof shorter);
         break;
      }
   }
   bson_string_append(s, buf);
}

static void
render_requests(flora_metrics_t *m, bson_string_t *s)
{
   bson_string_append(s, "# HELP flora_http_requests_total HTTP requests answered, by route, "
                         "method and status.\n"
                         "# TYPE flora_http_requests_total counter\n");
   pthread_mutex_lock(&m->requests.lock);
   for (size_t i = 0; i < m->requests.n; i++) {
      const request_series_t *r = &((request_series_t *) m->requests.items)[i];

      bson_string_append(s, "flora_http_requests_total{route=\"");
      append_label(s, r->route);
      bson_string_append_printf(s, "\",method=\"%s\",status=\"%d\"} %" PRIu64 "\n", r->method,
                                r->status, r->count);
   }
   pthread_mutex_unlock(&m->requests.lock);
}

static void
render_durations(flora_metrics_t *m, bson_string_t *s)
{
   bson_string_append(s, "# HELP flora_http_request_duration_seconds Time from the request's "
                         "headers to its answer, by route.\n"
                         "# TYPE flora_http_request_duration_seconds histogram\n");
   pthread_mutex_lock(&m->durations.lock);
   for (size_t i = 0; i < m->durations.n; i++) {
      const duration_series_t *d = &((duration_series_t *) m->durations.items)[i];
      uint64_t cumulative = 0;

      for (size_t b = 0; b < N_BUCKETS; b++) {
         cumulative += d->bucket_counts[b];
         bson_string_append(s, "flora_http_request_duration_seconds_bucket{route=\"");
         append_label(s, d->route);
         bson_string_append_printf(s, "\",le=\"%s\"} %" PRIu64 "\n", bucket_labels[b],
                                   cumulative);
      }
      bson_string_append(s, "flora_http_request_duration_seconds_bucket{route=\"");
      append_label(s, d->route);
      bson_string_append_printf(s, "\",le=\"+Inf\"} %" PRIu64 "\n", d->count);
      bson_string_append(s, "flora_http_request_duration_seconds_sum{route=\"");
      append_label(s, d->route);
      bson_string_append(s, "\"} ");
      append_double(s, d->sum);
      bson_string_append(s, "\nflora_http_request_duration_seconds_count{route=\"");
      append_label(s, d->route);
      bson_string_append_printf(s, "\"} %" PRIu64 "\n", d->count);
   }
   pthread_mutex_unlock(&m->durations.lock);
}

static void
render_store(flora_metrics_t *m, bson_string_t *s)
{
   bson_string_t *errors = bson_string_new(
      "# HELP flora_store_operation_errors_total Store operations that failed, by operation.\n"
      "# TYPE flora_store_operation_errors_total counter\n");

   bson_string_append(s, "# HELP flora_store_operations_total Store operations, by operation.\n"
                         "# TYPE flora_store_operations_total counter\n");
   pthread_mutex_lock(&m->store.lock);
   for (size_t i = 0; i < m->store.n; i++) {
      const store_series_t *o = &((store_series_t *) m->store.items)[i];

      bson_string_append(s, "flora_store_operations_total{op=\"");
      append_label(s, o->op);
      bson_string_append_printf(s, "\"} %" PRIu64 "\n", o->count);
      bson_string_append(errors, "flora_store_operation_errors_total{op=\"");
      append_label(errors, o->op);
      bson_string_append_printf(errors, "\"} %" PRIu64 "\n", o->errors);
   }
   pthread_mutex_unlock(&m->store.lock);
   bson_string_append(s, errors->str);
   bson_string_free(errors, true);
}

bool
flora_metrics_render(flora_metrics_t *m, char **out, size_t *len, flora_error_t *error)
{
   bson_string_t *s;

   FLORA_ASSERT_ARG(m);
   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(len);
   *out = NULL;
   *len = 0;
   s = bson_string_new(NULL);
   render_requests(m, s);
   render_durations(m, s);
   render_store(m, s);
   bson_string_append(s, "# HELP flora_process_start_time_seconds Start time of the process "
                         "since the Unix epoch in seconds.\n"
                         "# TYPE flora_process_start_time_seconds gauge\n"
                         "flora_process_start_time_seconds ");
   append_double(s, m->start_time);
   bson_string_append(s, "\n# HELP flora_build_info Version of Flora and of its HTTP and BSON "
                         "libraries; always 1.\n"
                         "# TYPE flora_build_info gauge\n"
                         "flora_build_info{version=\"");
   append_label(s, FLORA_VERSION);
   bson_string_append(s, "\",libmicrohttpd=\"");
   append_label(s, MHD_get_version());
   bson_string_append(s, "\",libbson=\"");
   append_label(s, bson_get_version());
   bson_string_append(s, "\"} 1\n");
   /* Copied so the caller frees with free(), not bson_free(). */
   *out = malloc(s->len + 1);
   if (!*out) {
      bson_string_free(s, true);
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      return false;
   }
   memcpy(*out, s->str, s->len + 1);
   *len = s->len;
   bson_string_free(s, true);
   return true;
}
