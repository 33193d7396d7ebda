/* Prometheus exposition (src/metrics.h): counters by label set, cumulative histogram
 * buckets, label escaping, bounded method labels, and counts that add up under
 * concurrent updates. */
#include "flora_test.h"

#include <pthread.h>

#include "metrics.h"

static char *
render(flora_metrics_t *m)
{
   char *text = NULL;
   size_t len = 0;
   flora_error_t error = {0};

   assert_true(flora_metrics_render(m, &text, &len, &error));
   assert_int_equal(strlen(text), len);
   return text;
}

static void
assert_contains(const char *text, const char *line)
{
   if (!strstr(text, line)) {
      fail_msg("'%s' not in:\n%s", line, text);
   }
}

static void
test_histogram_buckets_are_cumulative(void **state)
{
   flora_metrics_t *m = flora_metrics_new();
   static const double durations[] = {0.0005, 0.001, 0.003, 0.2, 0.2, 3, 42};
   char *text;

   (void) state;
   for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
      flora_metrics_http_request(m, "products.list", "GET", 200, durations[i]);
   }
   flora_metrics_http_request(m, "products.list", "GET", 500, 0.01);
   text = render(m);
   assert_contains(text, "flora_http_requests_total{route=\"products.list\",method=\"GET\","
                         "status=\"200\"} 7\n");
   assert_contains(text, "flora_http_requests_total{route=\"products.list\",method=\"GET\","
                         "status=\"500\"} 1\n");
   /* le is inclusive: 0.001 falls in the 0.001 bucket. */
   assert_contains(text, "_bucket{route=\"products.list\",le=\"0.001\"} 2\n");
   assert_contains(text, "_bucket{route=\"products.list\",le=\"0.005\"} 3\n");
   assert_contains(text, "_bucket{route=\"products.list\",le=\"0.01\"} 4\n");
   assert_contains(text, "_bucket{route=\"products.list\",le=\"0.25\"} 6\n");
   assert_contains(text, "_bucket{route=\"products.list\",le=\"2.5\"} 6\n");
   assert_contains(text, "_bucket{route=\"products.list\",le=\"5\"} 7\n");
   assert_contains(text, "_bucket{route=\"products.list\",le=\"10\"} 7\n");
   assert_contains(text, "_bucket{route=\"products.list\",le=\"+Inf\"} 8\n");
   assert_contains(text, "flora_http_request_duration_seconds_count{route=\"products.list\"} 8\n");
   assert_contains(text, "flora_http_request_duration_seconds_sum{route=\"products.list\"} 45.4145\n");
   free(text);
   flora_metrics_destroy(m);
}

static void
test_labels(void **state)
{
   flora_metrics_t *m = flora_metrics_new();
   char *text;

   (void) state;
   flora_metrics_http_request(m, "we\"ird\\route\n", "BREW", 418, 0.1);
   flora_metrics_http_request(m, NULL, "DELETE", 404, 0.1);
   flora_metrics_store_op(m, "insert_one", true);
   flora_metrics_store_op(m, "insert_one", true);
   flora_metrics_store_op(m, "find", false);
   text = render(m);
   assert_contains(text, "{route=\"we\\\"ird\\\\route\\n\",method=\"OTHER\",status=\"418\"} 1\n");
   assert_contains(text, "{route=\"unmatched\",method=\"DELETE\",status=\"404\"} 1\n");
   assert_contains(text, "flora_store_operations_total{op=\"insert_one\"} 2\n");
   assert_contains(text, "flora_store_operations_total{op=\"find\"} 1\n");
   assert_contains(text, "flora_store_operation_errors_total{op=\"insert_one\"} 0\n");
   assert_contains(text, "flora_store_operation_errors_total{op=\"find\"} 1\n");
   assert_contains(text, "# TYPE flora_store_operation_errors_total counter\n");
   assert_contains(text, "flora_build_info{version=\"" FLORA_VERSION "\"");
   free(text);
   flora_metrics_destroy(m);
   flora_metrics_destroy(NULL);
   flora_metrics_http_request(NULL, "x", "GET", 200, 0); /* no-ops */
   flora_metrics_store_op(NULL, "x", true);
}

static void *
bump(void *arg)
{
   flora_metrics_t *m = arg;
   char route[16];

   for (int i = 0; i < 2000; i++) {
      snprintf(route, sizeof route, "r%d", i % 5);
      flora_metrics_http_request(m, route, "GET", 200, 0.002);
      flora_metrics_store_op(m, "find", i % 10 != 0);
   }
   return NULL;
}

static void
test_concurrent_updates(void **state)
{
   flora_metrics_t *m = flora_metrics_new();
   pthread_t threads[6];
   char *text;

   (void) state;
   for (int i = 0; i < 6; i++) {
      assert_int_equal(pthread_create(&threads[i], NULL, bump, m), 0);
   }
   for (int i = 0; i < 6; i++) {
      pthread_join(threads[i], NULL);
   }
   text = render(m);
   for (int r = 0; r < 5; r++) {
      char line[128];

      snprintf(line, sizeof line, "{route=\"r%d\",method=\"GET\",status=\"200\"} 2400\n", r);
      assert_contains(text, line);
      snprintf(line, sizeof line, "_bucket{route=\"r%d\",le=\"0.005\"} 2400\n", r);
      assert_contains(text, line);
   }
   assert_contains(text, "flora_store_operations_total{op=\"find\"} 12000\n");
   assert_contains(text, "flora_store_operation_errors_total{op=\"find\"} 1200\n");
   free(text);
   flora_metrics_destroy(m);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_histogram_buckets_are_cumulative),
      cmocka_unit_test(test_labels),
      cmocka_unit_test(test_concurrent_updates),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
