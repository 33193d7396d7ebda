/* Catalog import into the store (include/flora/import.h): the upserts through the catalog
 * (flora_catalog_upsert_category / _product) and the report.
 *
 * Each record is upserted on its own (one catalog transaction each), so a bad record never
 * blocks the good rest. A record the catalog refuses (validation, a conflicting SKU or
 * slug, a missing category) is a failed record with the catalog's reason; any other store
 * error (engine down, disk full) stops the import and fails the call.
 *
 * Stock: a record that gives no stock leaves the stored stock of existing variants alone
 * (the catalog carries it over) and gives new variants options->default_stock.
 *
 * Dry run: the file is parsed and converted and each product is looked up by SKU to count
 * it as created or updated; nothing is written, and the checks only the catalog makes
 * (schema bounds, categories existing) are not made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flora/catalog.h"
#include "import/import_private.h"

/* ---- import into the store ---------------------------------------------------------- */

typedef struct import_ctx {
   flora_store_t *store;
   const flora_import_options_t *options;
   flora_import_report_t *report;
   bool stopped;
   flora_error_t stop_error;
} import_ctx_t;

/* The reason of a refused record: the error message and the problems, one line. */
static void
record_reason(const flora_error_t *error, const bson_t *problems, char *out, size_t out_len)
{
   bson_iter_t it, item;
   size_t used = 0;
   int n;

   if (bson_count_keys(problems) == 0) {
      snprintf(out, out_len, "%s", error->message);
      return;
   }
   out[0] = '\0';
   if (!bson_iter_init(&it, problems)) {
      return;
   }
   while (bson_iter_next(&it) && used < out_len) {
      const char *path = "", *reason = "";

      if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &item)) {
         continue;
      }
      while (bson_iter_next(&item)) {
         if (strcmp(bson_iter_key(&item), "path") == 0 && BSON_ITER_HOLDS_UTF8(&item)) {
            path = bson_iter_utf8(&item, NULL);
         } else if (strcmp(bson_iter_key(&item), "reason") == 0 && BSON_ITER_HOLDS_UTF8(&item)) {
            reason = bson_iter_utf8(&item, NULL);
         }
      }
      n = snprintf(out + used, out_len - used, "%s%s: %s", used ? "; " : "", path, reason);
      used += n > 0 ? (size_t) n : 0;
   }
}

/* Store errors that belong to one record rather than to the store as a whole. */
static bool
is_record_error(const flora_error_t *error)
{
   if (error->domain == FLORA_DOMAIN_STORE) {
      return error->code == FLORA_STORE_DOCUMENT_VALIDATION ||
             error->code == FLORA_STORE_DUPLICATE_KEY || error->code == FLORA_STORE_BAD_VALUE;
   }
   return error->domain == FLORA_DOMAIN_VALIDATION || error->domain == FLORA_DOMAIN_SHOP ||
          error->domain == FLORA_DOMAIN_INPUT;
}

static bool
stop(import_ctx_t *ic, const char *ref, const flora_error_t *error)
{
   ic->stopped = true;
   ic->stop_error = *error;
   flora_error_prefix(&ic->stop_error, "%s", ref);
   return false;
}

static bool
import_category(void *p, const char *ref, const bson_t *input, const flora_error_t *record_error)
{
   import_ctx_t *ic = p;
   bson_t problems = BSON_INITIALIZER;
   flora_error_t error = {0};
   bool created = false;
   bool ok = true;

   if (record_error) {
      flora__import_add_error(&ic->report->errors, ref, record_error->message);
      goto cleanup;
   }
   if (flora_catalog_upsert_category(ic->store, input, &problems, &created, &error)) {
      ic->report->categories++;
   } else if (is_record_error(&error)) {
      char reason[1024];

      record_reason(&error, &problems, reason, sizeof reason);
      flora__import_add_error(&ic->report->errors, ref, reason);
   } else {
      ok = stop(ic, ref, &error);
   }

cleanup:
   bson_destroy(&problems);
   return ok;
}

/* *out: input with stock = default_stock on each variant that has none and that the stored
 * product (looked up by sku) does not have. *exists says whether there is one. */
static bool
with_default_stock(import_ctx_t *ic, const bson_t *input, bson_t *out, bool *exists,
                   flora_error_t *error)
{
   bson_t existing, filter = BSON_INITIALIZER;
   bson_iter_t it, variants;
   bool found = false;
   bool ok = false;

   bson_init(out);
   *exists = false;
   if (!bson_iter_init_find(&it, input, "sku") || !BSON_ITER_HOLDS_UTF8(&it)) {
      bson_concat(out, input); /* the catalog reports the missing sku */
      bson_destroy(&filter);
      return true;
   }
   BSON_APPEND_UTF8(&filter, "sku", bson_iter_utf8(&it, NULL));
   if (!flora_store_find_one(ic->store, "products", &filter, NULL, &existing, &found, error)) {
      goto cleanup;
   }
   *exists = found;
   if (!bson_iter_init(&it, input)) {
      goto cleanup;
   }
   while (bson_iter_next(&it)) {
      bson_t arr;

      if (strcmp(bson_iter_key(&it), "variants") != 0 || !BSON_ITER_HOLDS_ARRAY(&it)) {
         bson_append_iter(out, bson_iter_key(&it), -1, &it);
         continue;
      }
      BSON_APPEND_ARRAY_BEGIN(out, "variants", &arr);
      bson_iter_recurse(&it, &variants);
      while (bson_iter_next(&variants)) {
         bson_iter_t v;
         const char *sku = NULL;
         bool known = false;
         bson_t variant;
         bool has_stock = true;

         if (BSON_ITER_HOLDS_DOCUMENT(&variants) && bson_iter_recurse(&variants, &v)) {
            has_stock = bson_iter_find(&v, "stock");
         }
         if (has_stock) {
            /* stock given, or not a document: the catalog validates it as it is */
            bson_append_iter(&arr, bson_iter_key(&variants), -1, &variants);
            continue;
         }
         if (bson_iter_recurse(&variants, &v) && bson_iter_find(&v, "sku") &&
             BSON_ITER_HOLDS_UTF8(&v)) {
            sku = bson_iter_utf8(&v, NULL);
         }
         if (found && sku) {
            bson_iter_t ev, evs, f;

            if (bson_iter_init_find(&ev, &existing, "variants") && BSON_ITER_HOLDS_ARRAY(&ev) &&
                bson_iter_recurse(&ev, &evs)) {
               while (bson_iter_next(&evs) && !known) {
                  known = BSON_ITER_HOLDS_DOCUMENT(&evs) && bson_iter_recurse(&evs, &f) &&
                          bson_iter_find(&f, "sku") && BSON_ITER_HOLDS_UTF8(&f) &&
                          strcmp(bson_iter_utf8(&f, NULL), sku) == 0;
               }
            }
         }
         if (known) {
            bson_append_iter(&arr, bson_iter_key(&variants), -1, &variants);
            continue;
         }
         BSON_APPEND_DOCUMENT_BEGIN(&arr, bson_iter_key(&variants), &variant);
         bson_iter_recurse(&variants, &v);
         while (bson_iter_next(&v)) {
            bson_append_iter(&variant, bson_iter_key(&v), -1, &v);
         }
         BSON_APPEND_INT32(&variant, "stock", ic->options->default_stock);
         bson_append_document_end(&arr, &variant);
      }
      bson_append_array_end(out, &arr);
   }
   ok = true;

cleanup:
   bson_destroy(&existing);
   bson_destroy(&filter);
   return ok;
}

static bool
import_product(void *p, const char *ref, const bson_t *input, const flora_error_t *record_error)
{
   import_ctx_t *ic = p;
   bson_t with_category, finished, problems = BSON_INITIALIZER;
   flora_error_t error = {0};
   bool exists = false, created = false, changed = false;
   bool ok = true;

   ic->report->records++;
   if (record_error) {
      ic->report->failed++;
      flora__import_add_error(&ic->report->errors, ref, record_error->message);
      bson_destroy(&problems);
      return true;
   }
   flora__import_with_default_category(input, ic->options, &with_category);
   if (!with_default_stock(ic, &with_category, &finished, &exists, &error)) {
      ok = stop(ic, ref, &error);
      goto cleanup;
   }
   if (!flora_catalog_upsert_product(ic->store, &finished, &problems, &created, &changed, &error)) {
      if (is_record_error(&error)) {
         char reason[1024];

         ic->report->failed++;
         record_reason(&error, &problems, reason, sizeof reason);
         flora__import_add_error(&ic->report->errors, ref, reason);
      } else {
         ok = stop(ic, ref, &error);
      }
      goto cleanup;
   }
   if (created) {
      ic->report->created++;
   } else if (changed) {
      ic->report->updated++;
   } else {
      ic->report->unchanged++;
   }

cleanup:
   bson_destroy(&with_category);
   bson_destroy(&finished);
   bson_destroy(&problems);
   return ok;
}

typedef struct dry_run {
   import_ctx_t *ic;
   const char *path;
   flora__import_handler_t *handler;
   bool rolled_back;
   bool parse_failed;
   flora_error_t parse_error;
   flora_error_t outcome;
} dry_run_t;

#define DRY_RUN_ROLLBACK 0x44525952u /* a private code: the dry run's own abort */

static bool
dry_run_txn(flora_store_t *txn, void *p, flora_error_t *error)
{
   dry_run_t *dr = p;
   flora_store_t *outer = dr->ic->store;
   flora_import_report_t *report = dr->ic->report;

   /* a retried transaction starts its counts again */
   report->records = report->created = report->updated = report->unchanged = report->failed = 0;
   report->categories = 0;
   bson_reinit(&report->errors);
   dr->ic->store = txn;
   dr->ic->stopped = false;
   dr->parse_failed = !flora__import_run_parser(dr->path, dr->ic->options, dr->handler, &dr->parse_error);
   if (dr->parse_failed && dr->ic->stopped) {
      dr->parse_error = dr->ic->stop_error;
      if (flora_error_is_transient(&dr->parse_error)) {
         *error = dr->parse_error; /* let the transaction retry */
         dr->ic->store = outer;
         return false;
      }
   }
   dr->ic->store = outer;
   dr->rolled_back = true;
   flora_error_set(error, FLORA_DOMAIN_NONE, DRY_RUN_ROLLBACK, "dry run: rolled back");
   return false;
}

bool
flora_import_catalog_file(flora_store_t *store, const char *path,
                          const flora_import_options_t *options, flora_import_report_t *report,
                          flora_error_t *error)
{
   flora_import_options_t defaults = FLORA_IMPORT_OPTIONS_INIT;
   import_ctx_t ic = {.store = store, .report = report};
   flora__import_handler_t handler = {import_category, import_product, &ic};
   flora_error_t parse_error = {0};

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(path);
   FLORA_ASSERT_ARG(report);
   ic.options = options ? options : &defaults;
   if (ic.options->default_stock < 0 || ic.options->default_stock > 1000000) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "default stock %d is outside 0..1000000", (int) ic.options->default_stock);
      return false;
   }
   if (ic.options->default_category) {
      bson_t cat;
      bool found = false;
      bson_t filter = BSON_INITIALIZER;
      bool ok;

      BSON_APPEND_UTF8(&filter, "slug", ic.options->default_category);
      ok = flora_store_find_one(store, "categories", &filter, NULL, &cat, &found, error);
      bson_destroy(&filter);
      bson_destroy(&cat);
      if (!ok) {
         return false;
      }
      if (!found) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND,
                         "no category has slug '%s' (create it first)",
                         ic.options->default_category);
         return false;
      }
   }
   if (ic.options->dry_run) {
      /* A dry run is the real import inside one transaction that is then rolled back, so
       * its counts and reasons are exactly what the import would report. */
      dry_run_t dr = {.ic = &ic, .path = path, .handler = &handler};

      if (flora_store_with_transaction(store, dry_run_txn, &dr, &dr.outcome) || !dr.rolled_back) {
         if (error) {
            *error = dr.outcome;
         }
         return false;
      }
      if (dr.parse_failed && error) {
         *error = dr.parse_error;
      }
      return !dr.parse_failed;
   }
   if (!flora__import_run_parser(path, ic.options, &handler, &parse_error)) {
      if (error) {
         *error = ic.stopped ? ic.stop_error : parse_error;
      }
      return false;
   }
   return true;
}
