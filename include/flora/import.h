/* Catalog import: CSV with a column mapping (the Flowwow export works with the built-in
 * mapping), Yandex Market YML (<yml_catalog>, the standard feed of Russian shops:
 * yandex.ru/support/partnermarket/export/yml.html) and Flora's own JSON. Records become
 * product inputs (include/flora/catalog.h) and are upserted by SKU (CSV, JSON) or offer id
 * (YML), so a re-import updates and never duplicates. A bad record is reported with its
 * line (CSV), offer id (YML) or index (JSON) and the reason; the good rest is imported. */
#ifndef FLORA_IMPORT_H
#define FLORA_IMPORT_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/error.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum flora_import_format {
   FLORA_IMPORT_AUTO = 0, /* by extension, then by content */
   FLORA_IMPORT_CSV,
   FLORA_IMPORT_YML,
   FLORA_IMPORT_JSON,
} flora_import_format_t;

typedef struct flora_import_options {
   flora_import_format_t format;
   /* CSV column mapping: NULL-terminated "Column=field" strings overriding the built-in
    * mapping (fields: name, price, discount_price, description, composition, size,
    * photos, sku, category, tags, stock). */
   const char *const *mapping;
   const char *default_category; /* category slug for records without one, or NULL */
   int32_t default_stock;        /* stock of new variants without a stock column */
   bool dry_run;                 /* parse and validate, write nothing */
} flora_import_options_t;

#define FLORA_IMPORT_OPTIONS_INIT {FLORA_IMPORT_AUTO, NULL, NULL, 10, false}

typedef struct flora_import_report {
   int64_t records;   /* records read */
   int64_t created;
   int64_t updated;
   int64_t unchanged;
   int64_t failed;
   int64_t categories; /* categories created or updated */
   bson_t errors;      /* array doc: [{ref: "line 12" | "offer 123" | "item 4", reason}] */
} flora_import_report_t;

/* Initialises a report (errors empty). flora_import_report_cleanup frees it. */
void flora_import_report_init(flora_import_report_t *report);
void flora_import_report_cleanup(flora_import_report_t *report);

/* Imports the file at path. Returns false only when the file as a whole cannot be read
 * (missing, unreadable, wrong format, bad header) or the store fails; bad records are
 * counted in report->failed with their reasons and do not fail the call. */
bool flora_import_catalog_file(flora_store_t *store, const char *path,
                               const flora_import_options_t *options,
                               flora_import_report_t *report, flora_error_t *error);

/* Parses without a store: calls fn for every record's product input (or its error).
 * ref is "line N" / "offer ID" / "item N". For tests and --dry-run. */
typedef void (*flora_import_record_fn)(void *ctx, const char *ref, const bson_t *input,
                                       const flora_error_t *record_error);
bool flora_import_parse_file(const char *path, const flora_import_options_t *options,
                             flora_import_record_fn fn, void *ctx, flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
