/* The `flora` command line: `flora COMMAND [ARGS]`. Each command is a function in its own
 * src/cmd_*.c returning the process exit status (0 success, 1 failure, 2 usage error)
 * and printing a message to stderr on failure. */
#ifndef FLORA_SRC_CLI_H
#define FLORA_SRC_CLI_H

#include "flora/config.h"

typedef struct flora_cli_command {
   const char *name;    /* "serve" */
   const char *summary; /* one line for `flora help` */
   const char *usage;   /* "flora serve [--port N] [--config FILE]" */
   int (*run)(const flora_config_t *config, int argc, char **argv); /* argv[0] is the name */
} flora_cli_command_t;

int flora_cli_main(int argc, char **argv);

/* Command implementations (src/cmd_*.c). */
int flora_cmd_serve(const flora_config_t *config, int argc, char **argv);
int flora_cmd_config(const flora_config_t *config, int argc, char **argv);
int flora_cmd_import(const flora_config_t *config, int argc, char **argv);
int flora_cmd_migrate(const flora_config_t *config, int argc, char **argv);
int flora_cmd_routes(const flora_config_t *config, int argc, char **argv);
int flora_cmd_conformance(const flora_config_t *config, int argc, char **argv);
int flora_cmd_docs(const flora_config_t *config, int argc, char **argv);
int flora_cmd_users(const flora_config_t *config, int argc, char **argv);
int flora_cmd_worker(const flora_config_t *config, int argc, char **argv);
int flora_cmd_notify(const flora_config_t *config, int argc, char **argv);
int flora_cmd_delivery(const flora_config_t *config, int argc, char **argv);
int flora_cmd_payments(const flora_config_t *config, int argc, char **argv);

#endif
