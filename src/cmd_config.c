/* `flora config [--example]`: prints the effective configuration with each value's source
 * and secrets masked, or the example configuration file generated from the key table. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int
flora_cmd_config(const flora_config_t *config, int argc, char **argv)
{
   if (argc == 2 && strcmp(argv[1], "--example") == 0) {
      flora_config_print_example(stdout);
      return 0;
   }
   if (argc != 1) {
      fprintf(stderr, "usage: flora config [--example]\n");
      return 2;
   }
   flora_config_print(config, stdout);
   return 0;
}
