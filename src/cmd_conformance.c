/* `flora conformance DIR [--uri URI]`: runs the OpenDocDB compatibility suite in DIR
 * against a store (default sqlite::memory:, a fresh one per suite file) and prints one line
 * per case and the totals (include/flora/conformance.h). Exit status 1 when a case failed. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "flora/conformance.h"

static void
print_case(void *ctx, flora_conformance_outcome_t outcome, const char *path, const char *name,
           const char *detail)
{
   (void) ctx;
   switch (outcome) {
   case FLORA_CONFORMANCE_PASS:
      printf("PASS %s %s\n", path, name);
      break;
   case FLORA_CONFORMANCE_FAIL:
      printf("FAIL %s %s: %s\n", path, name, detail);
      break;
   case FLORA_CONFORMANCE_UNSUPPORTED:
      printf("UNSUPPORTED %s %s: %s\n", path, name, detail);
      break;
   }
}

int
flora_cmd_conformance(const flora_config_t *config, int argc, char **argv)
{
   flora_conformance_totals_t totals;
   flora_error_t error = {0};
   const char *dir = NULL;
   const char *uri = NULL;

   (void) config;
   for (int i = 1; i < argc; i++) {
      if (strcmp(argv[i], "--uri") == 0 && i + 1 < argc) {
         uri = argv[++i];
      } else if (argv[i][0] != '-' && !dir) {
         dir = argv[i];
      } else {
         fprintf(stderr, "usage: flora conformance DIR [--uri URI]\n");
         return 2;
      }
   }
   if (!dir) {
      fprintf(stderr, "usage: flora conformance DIR [--uri URI]\n");
      return 2;
   }
   if (!flora_conformance_run(dir, uri, print_case, NULL, &totals, &error)) {
      fprintf(stderr, "flora conformance: %s\n", error.message);
      return 1;
   }
   printf("%zu passed, %zu failed, %zu unsupported\n", totals.passed, totals.failed,
          totals.unsupported);
   return totals.failed > 0 ? 1 : 0;
}
