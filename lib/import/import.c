/* Catalog import without a store (include/flora/import.h): reading files, format
 * detection, the report, and flora_import_parse_file. The upserts are in import_store.c,
 * so that parsing links without the store engines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "import/import_private.h"

#define MAX_FILE_BYTES (256u * 1024u * 1024u)

void
flora_import_report_init(flora_import_report_t *report)
{
   FLORA_ASSERT_ARG(report);
   memset(report, 0, sizeof *report);
   bson_init(&report->errors);
}

void
flora_import_report_cleanup(flora_import_report_t *report)
{
   if (!report) {
      return;
   }
   bson_destroy(&report->errors);
   memset(report, 0, sizeof *report);
}

char *
flora__import_read_file(const char *path, size_t *len, flora_error_t *error)
{
   FILE *f = fopen(path, "rb");
   struct stat sb;
   char *text = NULL;
   size_t got;

   if (!f) {
      flora_error_set(error, FLORA_DOMAIN_IO, errno == ENOENT ? FLORA_ERR_NOT_FOUND : FLORA_ERR_SYSTEM,
                      "%s: %s", path, strerror(errno));
      return NULL;
   }
   if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_INVALID, "%s: not a regular file", path);
      goto fail;
   }
   if ((uint64_t) sb.st_size > MAX_FILE_BYTES) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_TOO_LARGE,
                      "%s: %lld bytes is over the %u MiB import limit", path,
                      (long long) sb.st_size, MAX_FILE_BYTES / (1024u * 1024u));
      goto fail;
   }
   text = malloc((size_t) sb.st_size + 1);
   if (!text) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "%s: out of memory", path);
      goto fail;
   }
   got = fread(text, 1, (size_t) sb.st_size, f);
   if (got != (size_t) sb.st_size || ferror(f)) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "%s: read failed", path);
      free(text);
      text = NULL;
      goto fail;
   }
   text[got] = '\0';
   *len = got;
   fclose(f);
   return text;

fail:
   fclose(f);
   return NULL;
}

static bool
has_extension(const char *path, const char *ext)
{
   size_t lp = strlen(path), le = strlen(ext);

   return lp > le && strcasecmp(path + lp - le, ext) == 0;
}

bool
flora__import_detect_format(const char *path, flora_import_format_t *out, flora_error_t *error)
{
   FILE *f;
   int c;

   if (has_extension(path, ".csv") || has_extension(path, ".tsv")) {
      *out = FLORA_IMPORT_CSV;
      return true;
   }
   if (has_extension(path, ".yml") || has_extension(path, ".xml")) {
      *out = FLORA_IMPORT_YML;
      return true;
   }
   if (has_extension(path, ".json")) {
      *out = FLORA_IMPORT_JSON;
      return true;
   }
   f = fopen(path, "rb");
   if (!f) {
      flora_error_set(error, FLORA_DOMAIN_IO, errno == ENOENT ? FLORA_ERR_NOT_FOUND : FLORA_ERR_SYSTEM,
                      "%s: %s", path, strerror(errno));
      return false;
   }
   c = fgetc(f);
   if (c == 0xEF) { /* a UTF-8 byte order mark */
      fgetc(f);
      fgetc(f);
      c = fgetc(f);
   }
   while (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      c = fgetc(f);
   }
   fclose(f);
   *out = c == '{' ? FLORA_IMPORT_JSON : c == '<' ? FLORA_IMPORT_YML : FLORA_IMPORT_CSV;
   return true;
}

bool
flora__import_run_parser(const char *path, const flora_import_options_t *options,
           const flora__import_handler_t *handler, flora_error_t *error)
{
   flora_import_format_t format = options->format;

   if (format == FLORA_IMPORT_AUTO && !flora__import_detect_format(path, &format, error)) {
      return false;
   }
   switch (format) {
   case FLORA_IMPORT_CSV:
      return flora__import_csv(path, options, handler, error);
   case FLORA_IMPORT_YML:
      return flora__import_yml(path, options, handler, error);
   case FLORA_IMPORT_JSON:
      return flora__import_json(path, options, handler, error);
   case FLORA_IMPORT_AUTO:
      break;
   }
   flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "unknown import format %d",
                   (int) format);
   return false;
}

/* True when the input names a category (a non-empty categorySlugs or categoryIds). */
static bool
has_category(const bson_t *input)
{
   static const char *const keys[] = {"categorySlugs", "categoryIds"};
   bson_iter_t it, items;

   for (size_t i = 0; i < 2; i++) {
      if (!bson_iter_init_find(&it, input, keys[i])) {
         continue;
      }
      if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &items) || bson_iter_next(&items)) {
         return true; /* a non-array is the catalog's to refuse */
      }
   }
   return false;
}

/* Copy of input with categorySlugs [default_category] when it names none. */
void
flora__import_with_default_category(const bson_t *input, const flora_import_options_t *options, bson_t *out)
{
   bson_iter_t it;

   bson_init(out);
   if (!options->default_category || has_category(input)) {
      bson_concat(out, input);
      return;
   }
   if (bson_iter_init(&it, input)) {
      while (bson_iter_next(&it)) {
         const char *key = bson_iter_key(&it);

         if (strcmp(key, "categorySlugs") != 0 && strcmp(key, "categoryIds") != 0) {
            bson_append_iter(out, key, -1, &it);
         }
      }
   }
   {
      bson_t arr;

      BSON_APPEND_ARRAY_BEGIN(out, "categorySlugs", &arr);
      BSON_APPEND_UTF8(&arr, "0", options->default_category);
      bson_append_array_end(out, &arr);
   }
}

/* ---- parse only --------------------------------------------------------------------- */

typedef struct parse_ctx {
   const flora_import_options_t *options;
   flora_import_record_fn fn;
   void *ctx;
} parse_ctx_t;

static bool
parse_category(void *p, const char *ref, const bson_t *input, const flora_error_t *record_error)
{
   (void) p;
   (void) ref;
   (void) input;
   (void) record_error;
   return true;
}

static bool
parse_product(void *p, const char *ref, const bson_t *input, const flora_error_t *record_error)
{
   parse_ctx_t *pc = p;
   bson_t finished;

   if (record_error) {
      pc->fn(pc->ctx, ref, NULL, record_error);
      return true;
   }
   flora__import_with_default_category(input, pc->options, &finished);
   pc->fn(pc->ctx, ref, &finished, NULL);
   bson_destroy(&finished);
   return true;
}

bool
flora_import_parse_file(const char *path, const flora_import_options_t *options,
                        flora_import_record_fn fn, void *ctx, flora_error_t *error)
{
   flora_import_options_t defaults = FLORA_IMPORT_OPTIONS_INIT;
   parse_ctx_t pc = {options ? options : &defaults, fn, ctx};
   flora__import_handler_t handler = {parse_category, parse_product, &pc};

   FLORA_ASSERT_ARG(path);
   FLORA_ASSERT_ARG(fn);
   return flora__import_run_parser(path, pc.options, &handler, error);
}

