/* Command dispatch for the `flora` program. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flora/log.h"
#include "http.h"

static const flora_cli_command_t commands[] = {
   {"serve", "serve the JSON HTTP API", "flora serve [--port N] [--bind ADDR]", flora_cmd_serve},
   {"config", "print the effective configuration (secrets masked)",
    "flora config [--example]", flora_cmd_config},
   {"import", "import a catalog (CSV, Yandex Market YML or Flora JSON)",
    "flora import catalog FILE [--format csv|yml|json] [--map COL=FIELD ...] [--dry-run]",
    flora_cmd_import},
   {"migrate", "apply or revert schema migrations", "flora migrate status|up|down [N] --yes",
    flora_cmd_migrate},
   {"conformance", "run OpenDocDB compatibility cases against the store",
    "flora conformance DIR [--uri URI]", flora_cmd_conformance},
   {"docs", "generate the schema reference (one page per collection)",
    "flora docs schema [OUTDIR]   (default docs/schema)", flora_cmd_docs},
   {"users", "create a user (the first admin, staff accounts)",
    "flora users create EMAIL --role admin|manager|customer [--name NAME]  (password: "
    "FLORA_USER_PASSWORD or stdin)",
    flora_cmd_users},
   {"delivery", "load delivery zones or rules (validated first; a bad file changes nothing)",
    "flora delivery zones load FILE | rules load FILE | rules show", flora_cmd_delivery},
   {"routes", "list the HTTP routes (method, path, metrics name, auth)", "flora routes",
    flora_cmd_routes},
   {"worker", "deliver the notification outbox (e-mail, SMS) until SIGTERM",
    "flora worker [--once]", flora_cmd_worker},
   {"notify", "preview a notification or enqueue one by hand",
    "flora notify preview EVENT (--order NUMBER | --order-file FILE) [--locale en] | "
    "enqueue EVENT --payload JSON [--dedupe KEY]",
    flora_cmd_notify},
   {"payments", "re-read unfinished payments from the providers and repair them",
    "flora payments reconcile", flora_cmd_payments},
   {NULL, NULL, NULL, NULL},
};

static void
usage(FILE *out)
{
   fprintf(out, "usage: flora [--config FILE] COMMAND [ARGS]\n\ncommands:\n");
   for (const flora_cli_command_t *c = commands; c->name; c++) {
      fprintf(out, "  %-12s %s\n               %s\n", c->name, c->summary, c->usage);
   }
   fprintf(out, "\nConfiguration: FILE, then FLORA_* environment variables "
                "(`flora config --example` lists every key).\n");
}

int
flora_cli_main(int argc, char **argv)
{
   const char *config_file = getenv("FLORA_CONFIG");
   flora_config_t *config = NULL;
   flora_error_t error = {0};
   int i = 1;
   int rc;

   while (i < argc && argv[i][0] == '-') {
      if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
         config_file = argv[i + 1];
         i += 2;
      } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
         usage(stdout);
         return 0;
      } else {
         fprintf(stderr, "flora: unknown option %s\n", argv[i]);
         usage(stderr);
         return 2;
      }
   }
   if (i >= argc) {
      usage(stderr);
      return 2;
   }
   if (strcmp(argv[i], "help") == 0) {
      usage(stdout);
      return 0;
   }
   for (const flora_cli_command_t *c = commands; c->name; c++) {
      if (strcmp(c->name, argv[i]) != 0) {
         continue;
      }
      if (!flora_config_load(&config, config_file, &error)) {
         fprintf(stderr, "flora: configuration: %s\n", error.message);
         return 2;
      }
      if (!flora_log_configure(flora_config_string(config, "log.level"),
                               flora_config_string(config, "log.format"))) {
         fprintf(stderr, "flora: configuration: bad log.level or log.format\n");
         flora_config_destroy(config);
         return 2;
      }
      rc = c->run(config, argc - i, argv + i);
      flora_config_destroy(config);
      return rc;
   }
   fprintf(stderr, "flora: unknown command '%s'\n", argv[i]);
   usage(stderr);
   return 2;
}

int
flora_cmd_routes(const flora_config_t *config, int argc, char **argv)
{
   (void) config;
   (void) argv;
   if (argc != 1) {
      fprintf(stderr, "usage: flora routes\n");
      return 2;
   }
   for (const flora_route_t *r = flora_http_routes(); r->method; r++) {
      printf("%-7s %-40s %-28s %s\n", r->method, r->pattern, r->name,
             flora_route_auth_name(r->auth));
   }
   return 0;
}
