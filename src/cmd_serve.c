/* `flora serve [--port N] [--bind ADDR] [--threads N]`: serves the JSON HTTP API until
 * SIGTERM or SIGINT, then drains (src/server.h) and exits 0.
 *
 * Signals are blocked in every thread (the server's threads inherit the mask) and taken
 * by sigwait(3) in the main thread, so no work happens in a signal handler. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "cli.h"
#include "flora/log.h"
#include "flora/shop.h"
#include "http.h"
#include "metrics.h"
#include "response_cache.h"
#include "server.h"
#include "worker_thread.h"

static const char usage_text[] = "usage: flora serve [--port N] [--bind ADDR] [--threads N]\n";

/* Applies the command's flags to config; returns -1 to go on, else an exit status. */
static int
apply_flags(flora_config_t *config, int argc, char **argv)
{
   static const struct {
      const char *flag;
      const char *key;
   } flags[] = {{"--port", "http.port"}, {"--bind", "http.bind"}, {"--threads", "http.threads"}};

   for (int i = 1; i < argc; i++) {
      const char *key = NULL;
      flora_error_t error = {0};

      if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
         fputs(usage_text, stdout);
         return 0;
      }
      for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
         if (strcmp(argv[i], flags[f].flag) == 0) {
            key = flags[f].key;
         }
      }
      if (!key || i + 1 >= argc) {
         fprintf(stderr, "flora serve: %s %s\n%s", key ? "missing value for" : "unknown option",
                 argv[i], usage_text);
         return 2;
      }
      if (!flora_config_set(config, key, argv[i + 1], argv[i], &error)) {
         fprintf(stderr, "flora serve: %s\n", error.message);
         return 2;
      }
      i++;
   }
   return -1;
}

int
flora_cmd_serve(const flora_config_t *base, int argc, char **argv)
{
   flora_config_t *config = NULL;
   flora_store_options_t store_options = FLORA_STORE_OPTIONS_INIT;
   flora_server_options_t server_options;
   flora_server_t *server = NULL;
   flora_worker_thread_t *worker = NULL;
   flora_app_t app = {0};
   flora_error_t error = {0};
   sigset_t signals;
   sigset_t old_mask;
   bool masked = false;
   int sig = 0;
   int rc = 1;
   char port[8];
   char address[128];

   atomic_init(&app.draining, false);
   if (!flora_config_copy(&config, base, &error)) {
      fprintf(stderr, "flora serve: %s\n", error.message);
      return 1;
   }
   rc = apply_flags(config, argc, argv);
   if (rc >= 0) {
      goto cleanup;
   }
   rc = 1;

   /* Block the signals before any thread starts, so only sigwait below receives them. */
   sigemptyset(&signals);
   sigaddset(&signals, SIGTERM);
   sigaddset(&signals, SIGINT);
   sigaddset(&signals, SIGHUP); /* a closed terminal or a reload request: logged, not fatal */
   pthread_sigmask(SIG_BLOCK, &signals, &old_mask);
   masked = true;
   signal(SIGPIPE, SIG_IGN);

   app.config = config;
   app.metrics = flora_metrics_new();
   if (!app.metrics) {
      FLORA_LOG_ERROR("serve", "out of memory");
      goto cleanup;
   }
   store_options.pool_size = (int) flora_config_int(config, "store.pool_size");
   store_options.ttl_sweep_interval_s =
      (int) flora_config_int(config, "store.ttl_sweep_interval_s");
   store_options.busy_timeout_ms = (int) flora_config_int(config, "store.busy_timeout_ms");
   store_options.transaction_timeout_ms =
      (int) flora_config_int(config, "store.transaction_timeout_ms");
   if (!flora_store_open(&app.store, flora_config_string(config, "store.uri"), &store_options,
                         &error)) {
      FLORA_LOG_ERROR("serve", "cannot open the store", "error", error.message);
      goto cleanup;
   }
   flora_shop_attach_schemas(app.store); /* every write is validated, updates included */
   app.cache = flora_response_cache_new((size_t) flora_config_int(config, "http.cache_entries"),
                                        (size_t) flora_config_int(config, "http.cache_bytes"));
   FLORA_LOG_INFO("serve", "store open", "engine", flora_store_engine(app.store), "uri",
                  flora_store_uri_masked(app.store));
   if (!flora_pay_new(&app.pay, app.store, config, flora_pay_orders_shop(), NULL, &error)) {
      FLORA_LOG_ERROR("serve", "cannot start payments", "error", error.message);
      goto cleanup;
   }

   flora_server_options_from_config(&server_options, config);
   if (!flora_server_start(&server, &app, flora_http_routes(), &server_options, &error)) {
      FLORA_LOG_ERROR("serve", "cannot start the HTTP server", "error", error.message);
      goto cleanup;
   }
   snprintf(port, sizeof port, "%u", (unsigned) flora_server_port(server));
   snprintf(address, sizeof address, strchr(server_options.bind, ':') ? "http://[%s]:%s"
                                                                      : "http://%s:%s",
            server_options.bind, port);
   FLORA_LOG_INFO("serve", "listening", "address", address, "port", port);
   if (flora_config_bool(config, "notify.worker_in_serve") &&
       !flora_worker_thread_start(&worker, app.store, config, &error)) {
      FLORA_LOG_ERROR("serve", "cannot start the notification worker", "error", error.message);
      goto cleanup;
   }

   while (sigwait(&signals, &sig) != 0 || (sig != SIGTERM && sig != SIGINT)) {
      if (sig == SIGHUP) {
         FLORA_LOG_INFO("serve", "SIGHUP ignored: configuration is read at start; restart to change it");
      }
   }
   FLORA_LOG_INFO("serve", "draining", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
   atomic_store(&app.draining, true);
   flora_worker_thread_stop(worker);
   worker = NULL;
   flora_server_stop(server);
   server = NULL;
   FLORA_LOG_INFO("serve", "stopped");
   rc = 0;
cleanup:
   flora_worker_thread_stop(worker);
   flora_server_stop(server);
   flora_pay_destroy(app.pay);
   flora_store_close(app.store);
   flora_response_cache_destroy(app.cache);
   flora_metrics_destroy(app.metrics);
   flora_config_destroy(config);
   if (masked) {
      pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
   }
   return rc;
}
