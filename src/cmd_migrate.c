/* `flora migrate status|up|down [N]`: the schema migrations (include/flora/migrate.h) on
 * the store named by the configuration key store.uri. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flora/migrate.h"
#include "flora/store.h"

static void
print_progress(void *ctx, const flora_migration_t *migration, const char *action)
{
   (void) ctx;
   printf("%-9s %s  %s\n", action, migration->id,
          migration->description ? migration->description : "");
   fflush(stdout);
}

static void
format_time(int64_t ms, char *buf, size_t len)
{
   time_t secs = (time_t) (ms / 1000);
   struct tm tm;

   if (!gmtime_r(&secs, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
      snprintf(buf, len, "-");
   }
}

static int
run_status(flora_store_t *store)
{
   flora_migration_status_t *st = NULL;
   flora_error_t error = {0};
   size_t n = 0;
   int problems = 0;

   if (!flora_migrate_status(store, flora_migrate_list(), &st, &n, &error)) {
      fprintf(stderr, "flora migrate: %s\n", error.message);
      return 1;
   }
   for (size_t i = 0; i < n; i++) {
      char when[32] = "-";
      const char *state = st[i].applied ? "applied" : "pending";

      if (st[i].applied) {
         format_time(st[i].applied_at_ms, when, sizeof when);
      }
      if (!st[i].migration) {
         state = "unknown";
         problems++;
      } else if (st[i].checksum_mismatch) {
         state = "changed";
         problems++;
      }
      printf("%-9s %s  %s  %s\n", state, st[i].id, when,
             st[i].migration && st[i].migration->description ? st[i].migration->description
                                                             : "");
   }
   free(st);
   if (problems > 0) {
      fprintf(stderr,
              "flora migrate: %d applied migration(s) are unknown to this program or were "
              "changed after being applied\n",
              problems);
      return 1;
   }
   return 0;
}

static bool
parse_steps(const char *text, size_t *out)
{
   char *end = NULL;
   unsigned long long v;

   if (!text[0] || text[0] == '-') {
      return false;
   }
   errno = 0;
   v = strtoull(text, &end, 10);
   if (errno != 0 || *end != '\0' || v == 0 || v > 1000000) {
      return false;
   }
   *out = (size_t) v;
   return true;
}

int
flora_cmd_migrate(const flora_config_t *config, int argc, char **argv)
{
   flora_migrate_options_t options = FLORA_MIGRATE_OPTIONS_INIT;
   flora_store_t *store = NULL;
   flora_error_t error = {0};
   const char *action;
   const char *uri;
   size_t steps = 1, count = 0;
   int rc = 1;
   bool confirmed = false;

   /* `down` drops collections with their data: it needs --yes, wherever it is given */
   for (int i = 1; i < argc; i++) {
      if (strcmp(argv[i], "--yes") == 0) {
         confirmed = true;
         memmove(&argv[i], &argv[i + 1], (size_t) (argc - i - 1) * sizeof *argv);
         argc--;
         i--;
      }
   }
   if (argc < 2 || argc > 3 ||
       (strcmp(argv[1], "status") != 0 && strcmp(argv[1], "up") != 0 &&
        strcmp(argv[1], "down") != 0) ||
       (argc == 3 && (strcmp(argv[1], "down") != 0 || !parse_steps(argv[2], &steps)))) {
      fprintf(stderr, "usage: flora migrate status|up|down [N] --yes\n");
      return 2;
   }
   action = argv[1];
   if (strcmp(action, "down") == 0 && !confirmed) {
      fprintf(stderr, "flora migrate: down reverts migrations and DROPS their collections with all "
                      "their documents; run it again with --yes to do that\n");
      return 2;
   }
   uri = flora_config_string(config, "store.uri");
   if (!flora_store_open(&store, uri, NULL, &error)) {
      fprintf(stderr, "flora migrate: cannot open the store: %s\n", error.message);
      return 1;
   }
   options.progress = print_progress;
   if (strcmp(action, "status") == 0) {
      rc = run_status(store);
   } else if (strcmp(action, "up") == 0) {
      if (flora_migrate_up(store, flora_migrate_list(), &options, &count, &error)) {
         printf("%zu migration(s) applied\n", count);
         rc = 0;
      } else {
         fprintf(stderr, "flora migrate: %s (%zu applied before the failure)\n", error.message,
                 count);
      }
   } else {
      if (flora_migrate_down(store, flora_migrate_list(), steps, &options, &count, &error)) {
         printf("%zu migration(s) reverted\n", count);
         rc = 0;
      } else {
         fprintf(stderr, "flora migrate: %s (%zu reverted before the failure)\n", error.message,
                 count);
      }
   }
   flora_store_close(store);
   return rc;
}
