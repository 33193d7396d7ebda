/* `flora delivery zones load FILE` and `flora delivery rules load FILE` (docs/delivery.md):
 * validate the whole file, print every problem with its zone and field, and only when the
 * file is good replace what is stored (zones in one transaction). `flora delivery rules
 * show` prints the effective rules (the defaults when none were loaded).
 * Exit status: 0 loaded, 1 a bad file or a store failure (nothing changed), 2 usage. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flora/delivery.h"
#include "flora/shop.h"
#include "flora/store.h"

#define USAGE                                                                              \
   "usage: flora delivery zones load FILE\n"                                               \
   "       flora delivery rules load FILE\n"                                               \
   "       flora delivery rules show\n"

#define MAX_FILE (64 * 1024 * 1024)

static char *
read_file(const char *path, size_t *len)
{
   FILE *f = fopen(path, "rb");
   char *data = NULL;
   size_t cap = 0, n = 0;

   if (!f) {
      fprintf(stderr, "flora delivery: %s: %s\n", path, strerror(errno));
      return NULL;
   }
   for (;;) {
      size_t got;

      if (n + 65536 + 1 > cap) {
         char *bigger;

         cap = cap ? cap * 2 : 131072;
         bigger = cap > MAX_FILE ? NULL : realloc(data, cap);
         if (!bigger) {
            fprintf(stderr, "flora delivery: %s: larger than %d MiB\n", path, MAX_FILE >> 20);
            free(data);
            fclose(f);
            return NULL;
         }
         data = bigger;
      }
      got = fread(data + n, 1, 65536, f);
      n += got;
      if (got < 65536) {
         break;
      }
   }
   if (ferror(f)) {
      fprintf(stderr, "flora delivery: %s: read error\n", path);
      free(data);
      fclose(f);
      return NULL;
   }
   fclose(f);
   data[n] = '\0';
   *len = n;
   return data;
}

static void
print_problems(const bson_t *problems)
{
   bson_iter_t it, p;

   bson_iter_init(&it, problems);
   while (bson_iter_next(&it)) {
      const char *path = "", *reason = "";

      if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &p)) {
         continue;
      }
      while (bson_iter_next(&p)) {
         if (strcmp(bson_iter_key(&p), "path") == 0) {
            path = bson_iter_utf8(&p, NULL);
         } else if (strcmp(bson_iter_key(&p), "reason") == 0) {
            reason = bson_iter_utf8(&p, NULL);
         }
      }
      fprintf(stderr, "  %s: %s\n", path, reason);
   }
}

int
flora_cmd_delivery(const flora_config_t *config, int argc, char **argv)
{
   flora_store_t *store = NULL;
   flora_error_t error = {0};
   bson_t problems = BSON_INITIALIZER;
   char *data = NULL;
   size_t len = 0;
   bool zones, show;
   int rc = 1;

   if (argc < 3 || (strcmp(argv[1], "zones") != 0 && strcmp(argv[1], "rules") != 0)) {
      fprintf(stderr, USAGE);
      return 2;
   }
   zones = strcmp(argv[1], "zones") == 0;
   show = !zones && strcmp(argv[2], "show") == 0 && argc == 3;
   if (!show && (strcmp(argv[2], "load") != 0 || argc != 4)) {
      fprintf(stderr, USAGE);
      return 2;
   }
   if (!show && !(data = read_file(argv[3], &len))) {
      goto cleanup;
   }
   if (!flora_store_open(&store, flora_config_string(config, "store.uri"), NULL, &error)) {
      fprintf(stderr, "flora delivery: cannot open the store: %s\n", error.message);
      goto cleanup;
   }
   flora_shop_attach_schemas(store);
   if (show) {
      bson_t rules;
      char *json;

      if (!flora_delivery_rules_get(store, &rules, &error)) {
         bson_destroy(&rules);
         fprintf(stderr, "flora delivery: %s\n", error.message);
         goto cleanup;
      }
      json = bson_as_relaxed_extended_json(&rules, NULL);
      printf("%s\n", json);
      bson_free(json);
      bson_destroy(&rules);
      rc = 0;
   } else if (zones) {
      int64_t n = 0;

      if (flora_delivery_zones_load_json(store, data, len, &problems, &n, &error)) {
         printf("%s: %lld zones loaded\n", argv[3], (long long) n);
         rc = 0;
      } else {
         fprintf(stderr, "flora delivery: %s: %s; nothing changed\n", argv[3], error.message);
         print_problems(&problems);
      }
   } else if (flora_delivery_rules_load_json(store, data, len, &problems, &error)) {
      printf("%s: rules loaded\n", argv[3]);
      rc = 0;
   } else {
      fprintf(stderr, "flora delivery: %s: %s; nothing changed\n", argv[3], error.message);
      print_problems(&problems);
   }
cleanup:
   bson_destroy(&problems);
   flora_store_close(store);
   free(data);
   return rc;
}
