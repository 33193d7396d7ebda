/* `flora worker [--once]`: delivers the notification outbox (include/flora/notify.h) until
 * SIGTERM or SIGINT; the message in hand is finished first, so a clean stop never leaves a
 * lease behind. --once delivers what is due now and exits. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flora/log.h"
#include "flora/notify.h"
#include "flora/shop.h"
#include "worker_thread.h"

struct flora_worker_thread {
   pthread_t thread;
   atomic_bool stop;
   flora_notify_worker_t *worker;
};

static void *
thread_main(void *arg)
{
   flora_worker_thread_t *t = arg;

   flora_notify_worker_run(t->worker, &t->stop);
   return NULL;
}

bool
flora_worker_thread_start(flora_worker_thread_t **out, flora_store_t *store,
                          const flora_config_t *config, flora_error_t *error)
{
   flora_worker_thread_t *t = calloc(1, sizeof *t);

   *out = NULL;
   if (!t) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      return false;
   }
   atomic_init(&t->stop, false);
   if (!flora_notify_worker_new(&t->worker, store, config, error)) {
      free(t);
      return false;
   }
   if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "cannot start the worker thread");
      flora_notify_worker_destroy(t->worker);
      free(t);
      return false;
   }
   *out = t;
   return true;
}

void
flora_worker_thread_stop(flora_worker_thread_t *t)
{
   if (!t) {
      return;
   }
   atomic_store(&t->stop, true);
   pthread_join(t->thread, NULL);
   flora_notify_worker_destroy(t->worker);
   free(t);
}

static const char usage_text[] = "usage: flora worker [--once]\n";

static bool
open_store(const flora_config_t *config, flora_store_t **store, flora_error_t *error)
{
   flora_store_options_t options = FLORA_STORE_OPTIONS_INIT;

   options.pool_size = (int) flora_config_int(config, "store.pool_size");
   options.ttl_sweep_interval_s = (int) flora_config_int(config, "store.ttl_sweep_interval_s");
   options.busy_timeout_ms = (int) flora_config_int(config, "store.busy_timeout_ms");
   options.transaction_timeout_ms = (int) flora_config_int(config, "store.transaction_timeout_ms");
   if (!flora_store_open(store, flora_config_string(config, "store.uri"), &options, error)) {
      return false;
   }
   flora_shop_attach_schemas(*store);
   return true;
}

int
flora_cmd_worker(const flora_config_t *config, int argc, char **argv)
{
   flora_store_t *store = NULL;
   flora_worker_thread_t *thread = NULL;
   flora_notify_worker_t *worker = NULL;
   flora_error_t error = {0};
   bool once = false;
   sigset_t signals, old_mask;
   bool masked = false;
   int sig = 0;
   int rc = 1;

   for (int i = 1; i < argc; i++) {
      if (strcmp(argv[i], "--once") == 0) {
         once = true;
      } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
         fputs(usage_text, stdout);
         return 0;
      } else {
         fprintf(stderr, "flora worker: unknown option %s\n%s", argv[i], usage_text);
         return 2;
      }
   }
   /* Signals are taken by sigwait in this thread only (as in `flora serve`). */
   sigemptyset(&signals);
   sigaddset(&signals, SIGTERM);
   sigaddset(&signals, SIGINT);
   pthread_sigmask(SIG_BLOCK, &signals, &old_mask);
   masked = true;
   signal(SIGPIPE, SIG_IGN);
   if (!open_store(config, &store, &error)) {
      fprintf(stderr, "flora worker: cannot open the store: %s\n", error.message);
      goto cleanup;
   }
   if (once) {
      size_t n = 0;

      if (!flora_notify_worker_new(&worker, store, config, &error)) {
         fprintf(stderr, "flora worker: %s\n", error.message);
         goto cleanup;
      }
      do {
         if (!flora_notify_worker_run_once(worker, NULL, &n, &error)) {
            fprintf(stderr, "flora worker: %s\n", error.message);
            goto cleanup;
         }
      } while (n > 0);
      rc = 0;
      goto cleanup;
   }
   if (!flora_worker_thread_start(&thread, store, config, &error)) {
      fprintf(stderr, "flora worker: %s\n", error.message);
      goto cleanup;
   }
   while (sigwait(&signals, &sig) != 0 || (sig != SIGTERM && sig != SIGINT)) {
   }
   FLORA_LOG_INFO("worker", "stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
   flora_worker_thread_stop(thread);
   thread = NULL;
   rc = 0;
cleanup:
   flora_worker_thread_stop(thread);
   flora_notify_worker_destroy(worker);
   flora_store_close(store);
   if (masked) {
      pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
   }
   return rc;
}
