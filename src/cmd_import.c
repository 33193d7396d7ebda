/* `flora import catalog FILE [--format csv|yml|json] [--map COL=FIELD]... [--category SLUG]
 * [--stock N] [--dry-run]`: imports a catalog file (include/flora/import.h) into the store
 * named by the configuration key store.uri, and prints the report: the counts, then one
 * line per bad record ("line 12: price is not a number: \"abc\"").
 *
 * Exit status: 0 when the file was read (even with bad records), 1 when the file cannot be
 * read or the store fails, 2 on a usage error. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flora/import.h"
#include "flora/shop.h"
#include "flora/store.h"

#define USAGE                                                                              \
   "usage: flora import catalog FILE [--format csv|yml|json] [--map COLUMN=FIELD]...\n"   \
   "                                 [--category SLUG] [--stock N] [--dry-run]\n"          \
   "  --format    the file's format (default: from the extension, then the content)\n"    \
   "  --map       CSV: map a header column to a field (name, price, discount_price,\n"     \
   "              description, composition, size, photos, sku, category, tags, stock;\n"   \
   "              COLUMN= ignores the column); repeatable\n"                               \
   "  --category  category slug for products that name none (the category must exist)\n"  \
   "  --stock     stock of new variants when the file gives none (default 10)\n"           \
   "  --dry-run   read and check the file, count what would change, write nothing\n"

static int
usage_error(const char *fmt, const char *arg)
{
   fprintf(stderr, "flora import: ");
   fprintf(stderr, fmt, arg);
   fprintf(stderr, "\n" USAGE);
   return 2;
}

static bool
parse_format(const char *text, flora_import_format_t *out)
{
   if (strcmp(text, "csv") == 0) {
      *out = FLORA_IMPORT_CSV;
   } else if (strcmp(text, "yml") == 0 || strcmp(text, "xml") == 0) {
      *out = FLORA_IMPORT_YML;
   } else if (strcmp(text, "json") == 0) {
      *out = FLORA_IMPORT_JSON;
   } else {
      return false;
   }
   return true;
}

static bool
parse_stock(const char *text, int32_t *out)
{
   char *end = NULL;
   long v;

   if (!text[0] || text[0] == '-' || text[0] == '+') {
      return false;
   }
   errno = 0;
   v = strtol(text, &end, 10);
   if (errno != 0 || *end != '\0' || v < 0 || v > 1000000) {
      return false;
   }
   *out = (int32_t) v;
   return true;
}

static void
print_report(const flora_import_report_t *report, const char *path, bool dry_run)
{
   bson_iter_t it, item;

   printf("%s%s: %lld records: %lld created, %lld updated, %lld unchanged, %lld failed; "
          "%lld categories\n",
          dry_run ? "dry run (nothing written) " : "", path, (long long) report->records,
          (long long) report->created, (long long) report->updated,
          (long long) report->unchanged, (long long) report->failed,
          (long long) report->categories);
   if (!bson_iter_init(&it, &report->errors)) {
      return;
   }
   while (bson_iter_next(&it)) {
      const char *ref = "?", *reason = "";

      if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &item)) {
         continue;
      }
      while (bson_iter_next(&item)) {
         if (strcmp(bson_iter_key(&item), "ref") == 0 && BSON_ITER_HOLDS_UTF8(&item)) {
            ref = bson_iter_utf8(&item, NULL);
         } else if (strcmp(bson_iter_key(&item), "reason") == 0 && BSON_ITER_HOLDS_UTF8(&item)) {
            reason = bson_iter_utf8(&item, NULL);
         }
      }
      printf("%s: %s\n", ref, reason);
   }
}

int
flora_cmd_import(const flora_config_t *config, int argc, char **argv)
{
   flora_import_options_t options = FLORA_IMPORT_OPTIONS_INIT;
   flora_import_report_t report;
   flora_store_t *store = NULL;
   flora_error_t error = {0};
   const char **mapping = NULL;
   size_t n_mapping = 0;
   const char *path = NULL;
   int rc = 1;

   if (argc < 2 || strcmp(argv[1], "catalog") != 0) {
      return usage_error("%s", argc < 2 ? "what to import? (catalog)" : "only 'catalog' can be imported");
   }
   mapping = calloc((size_t) argc, sizeof *mapping);
   if (!mapping) {
      fprintf(stderr, "flora import: out of memory\n");
      return 1;
   }
   for (int i = 2; i < argc; i++) {
      const char *arg = argv[i];
      bool has_value = i + 1 < argc;

      if (strcmp(arg, "--dry-run") == 0) {
         options.dry_run = true;
      } else if (strcmp(arg, "--format") == 0 && has_value) {
         if (!parse_format(argv[++i], &options.format)) {
            rc = usage_error("unknown format '%s' (csv, yml or json)", argv[i]);
            goto cleanup;
         }
      } else if (strcmp(arg, "--map") == 0 && has_value) {
         if (!strchr(argv[++i], '=')) {
            rc = usage_error("--map wants COLUMN=FIELD, not '%s'", argv[i]);
            goto cleanup;
         }
         mapping[n_mapping++] = argv[i];
      } else if (strcmp(arg, "--category") == 0 && has_value) {
         options.default_category = argv[++i];
      } else if (strcmp(arg, "--stock") == 0 && has_value) {
         if (!parse_stock(argv[++i], &options.default_stock)) {
            rc = usage_error("--stock wants a whole number 0..1000000, not '%s'", argv[i]);
            goto cleanup;
         }
      } else if (arg[0] == '-' && arg[1] != '\0') {
         rc = usage_error("unknown option, or an option without its value: %s", arg);
         goto cleanup;
      } else if (!path) {
         path = arg;
      } else {
         rc = usage_error("one FILE only ('%s' is a second one)", arg);
         goto cleanup;
      }
   }
   if (!path) {
      rc = usage_error("%s", "FILE is missing");
      goto cleanup;
   }
   options.mapping = n_mapping ? mapping : NULL;

   if (!flora_store_open(&store, flora_config_string(config, "store.uri"), NULL, &error)) {
      fprintf(stderr, "flora import: cannot open the store: %s\n", error.message);
      goto cleanup;
   }
   flora_shop_attach_schemas(store);
   flora_import_report_init(&report);
   if (flora_import_catalog_file(store, path, &options, &report, &error)) {
      print_report(&report, path, options.dry_run);
      rc = 0;
      if (report.records > 0 && report.failed == report.records) {
         /* the file was read, but nothing in it could be imported: a script should notice */
         fprintf(stderr, "flora import: every record of %s was refused\n", path);
         rc = 1;
      }
   } else {
      /* what was imported before a store failure stays imported: say how much */
      if (report.records > 0) {
         print_report(&report, path, options.dry_run);
      }
      fprintf(stderr, "flora import: %s\n", error.message);
   }
   flora_import_report_cleanup(&report);

cleanup:
   flora_store_close(store);
   free(mapping);
   return rc;
}
