/* `flora payments reconcile`: re-reads every unfinished payment from its provider and
 * repairs local state and the order (include/flora/pay.h, flora_pay_reconcile). A
 * provider call that was recorded but never answered (a crash, a lost connection) is
 * repeated with its recorded idempotency key, so it cannot act twice. Run it after a crash
 * and from cron (every few minutes) as a safety net for lost webhooks. Exit status 0 when
 * every payment was checked, 1 when one could not be (each is logged). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "flora/log.h"
#include "flora/pay.h"
#include "flora/shop.h"

static const char usage_text[] = "usage: flora payments reconcile\n";

int
flora_cmd_payments(const flora_config_t *config, int argc, char **argv)
{
   flora_store_options_t options = FLORA_STORE_OPTIONS_INIT;
   flora_store_t *store = NULL;
   flora_pay_t *pay = NULL;
   flora_error_t error = {0};
   size_t checked = 0, repaired = 0;
   int rc = 1;

   if (argc != 2 || strcmp(argv[1], "reconcile") != 0) {
      fputs(usage_text, stderr);
      return 2;
   }
   options.pool_size = (int) flora_config_int(config, "store.pool_size");
   options.ttl_sweep_interval_s = 0;
   options.busy_timeout_ms = (int) flora_config_int(config, "store.busy_timeout_ms");
   options.transaction_timeout_ms = (int) flora_config_int(config, "store.transaction_timeout_ms");
   if (!flora_store_open(&store, flora_config_string(config, "store.uri"), &options, &error)) {
      fprintf(stderr, "flora payments: %s\n", error.message);
      goto cleanup;
   }
   flora_shop_attach_schemas(store);
   if (!flora_pay_new(&pay, store, config, flora_pay_orders_shop(), NULL, &error)) {
      fprintf(stderr, "flora payments: %s\n", error.message);
      goto cleanup;
   }
   if (!flora_pay_reconcile(pay, &checked, &repaired, &error)) {
      fprintf(stderr, "flora payments: %s\n", error.message);
      printf("checked %zu, repaired %zu, some failed (see the log)\n", checked, repaired);
      goto cleanup;
   }
   printf("checked %zu, repaired %zu\n", checked, repaired);
   rc = 0;
cleanup:
   flora_pay_destroy(pay);
   flora_store_close(store);
   return rc;
}
