/* `flora users create EMAIL --role admin|manager|customer [--name NAME]`: creates a user,
 * typically the first admin. The password comes from the environment variable
 * FLORA_USER_PASSWORD or, when it is not set, from the first line of standard input (so it
 * never appears in the process list or the shell history). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "flora/shop.h"
#include "flora/store.h"
#include "flora/users.h"

#define PASSWORD_BUF 1024

static int
usage(void)
{
   fprintf(stderr, "usage: flora users create EMAIL --role admin|manager|customer [--name NAME]\n"
                   "       password from FLORA_USER_PASSWORD or the first line of stdin\n");
   return 2;
}

/* Reads the password into buf; false when there is none. */
static bool
read_password(char *buf, size_t len)
{
   const char *env = getenv("FLORA_USER_PASSWORD");
   size_t n;

   if (env && env[0]) {
      if (strlen(env) >= len) {
         return false;
      }
      memcpy(buf, env, strlen(env) + 1);
      return true;
   }
   if (!fgets(buf, (int) len, stdin)) {
      return false;
   }
   n = strlen(buf);
   while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
      buf[--n] = '\0';
   }
   return n > 0;
}

/* Prints every {path, reason} of problems. */
static void
print_problems(const bson_t *problems)
{
   bson_iter_t it;

   if (!bson_iter_init(&it, problems)) {
      return;
   }
   while (bson_iter_next(&it)) {
      bson_iter_t p;
      const char *path = "", *reason = "";

      if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &p)) {
         continue;
      }
      while (bson_iter_next(&p)) {
         if (strcmp(bson_iter_key(&p), "path") == 0 && BSON_ITER_HOLDS_UTF8(&p)) {
            path = bson_iter_utf8(&p, NULL);
         } else if (strcmp(bson_iter_key(&p), "reason") == 0 && BSON_ITER_HOLDS_UTF8(&p)) {
            reason = bson_iter_utf8(&p, NULL);
         }
      }
      fprintf(stderr, "  %s: %s\n", path, reason);
   }
}

int
flora_cmd_users(const flora_config_t *config, int argc, char **argv)
{
   const char *email = NULL;
   const char *role_name = NULL;
   const char *name = NULL;
   char password[PASSWORD_BUF];
   flora_role_t role;
   flora_store_t *store = NULL;
   flora_error_t error = {0};
   bson_t input = BSON_INITIALIZER;
   bson_t problems = BSON_INITIALIZER;
   bson_t user = BSON_INITIALIZER;
   int rc = 1;

   if (argc < 3 || strcmp(argv[1], "create") != 0) {
      bson_destroy(&input);
      bson_destroy(&problems);
      bson_destroy(&user);
      return usage();
   }
   email = argv[2];
   for (int i = 3; i < argc; i++) {
      if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
         role_name = argv[++i];
      } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
         name = argv[++i];
      } else {
         role_name = NULL;
         break;
      }
   }
   if (!role_name || !flora_role_parse(role_name, &role)) {
      rc = usage();
      goto cleanup;
   }
   if (!read_password(password, sizeof password)) {
      fprintf(stderr, "flora users: no password (set FLORA_USER_PASSWORD or pipe it on stdin)\n");
      goto cleanup;
   }
   BSON_APPEND_UTF8(&input, "email", email);
   BSON_APPEND_UTF8(&input, "password", password);
   sodium_memzero(password, sizeof password);
   BSON_APPEND_UTF8(&input, "name", name ? name : email);
   if (!flora_store_open(&store, flora_config_string(config, "store.uri"), NULL, &error)) {
      fprintf(stderr, "flora users: %s\n", error.message);
      goto cleanup;
   }
   flora_shop_attach_schemas(store);
   bson_destroy(&user);
   if (!flora_users_create(store, config, &input, role, &problems, &user, &error)) {
      fprintf(stderr, "flora users: %s\n", error.message);
      print_problems(&problems);
      goto cleanup;
   }
   {
      bson_iter_t it;
      char id[25] = "";

      if (bson_iter_init_find(&it, &user, "_id") && BSON_ITER_HOLDS_OID(&it)) {
         bson_oid_to_string(bson_iter_oid(&it), id);
      }
      printf("created %s %s (%s)\n", flora_role_name(role), email, id);
   }
   rc = 0;
cleanup:
   flora_store_close(store);
   bson_destroy(&input);
   bson_destroy(&problems);
   bson_destroy(&user);
   return rc;
}
