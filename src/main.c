/* The `flora` program: dispatches to the CLI commands (src/cli.h). */
#include "cli.h"

int
main(int argc, char **argv)
{
   return flora_cli_main(argc, argv);
}
