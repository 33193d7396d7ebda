/* CSV catalog import (include/flora/import.h), parsed with libcsv in strict mode.
 *
 * The header row names the columns; each is mapped to a field (name, price,
 * discount_price, description, composition, size, photos, sku, category, tags, stock) by
 * the built-in mapping (the field names themselves, the Flowwow export's Russian headers
 * and a few common Russian ones), overridden by options->mapping ("Column=field").
 * Columns mapped to nothing are ignored. A file without a name or price column fails as
 * a whole. The delimiter is the one of ',', ';' and TAB that the header line uses most
 * (Russian spreadsheets export with ';').
 *
 * Each data row becomes one product with one variant named "Стандарт":
 *  - prices in roubles become kopecks; a discount price below the full price becomes the
 *    variant price with the full price as compareAtPrice; a discount above it is an error;
 *  - composition "Гортензия - 3 шт; ..." becomes [{flower, stems}] (import_fields.c);
 *  - size "Высота-45см; Ширина-30см" becomes heightCm/widthCm (null when unknown);
 *  - photos are split on ';', ".mp4" and other video files become kind "video";
 *  - tags come from the tags column, else from occasions the name or description state;
 *  - category from the category column (a slug, or a name turned into its slug), else
 *    options->default_category (applied by import.c); the category must exist;
 *  - stock from the stock column, else left out (import.c gives new variants the
 *    default stock and existing ones keep theirs).
 *
 * SKU when the file has no sku column: a prefix ("FW-" for the Flowwow layout, "CSV-"
 * otherwise) and the first 10 hex digits of the SHA-256 of the name. The file is the
 * florist's listing, where one name can cover several different bouquets ("Цветы в
 * коробке" at four prices): the first distinct content under a name gets the plain SKU,
 * the second "-2", the third "-3", in file order. A row identical to an earlier row is the
 * same product (same SKU and source line, so it is reported unchanged). This keeps SKUs
 * stable across re-imports of the same or an edited export (a new price updates the
 * product), as long as same-named rows keep their order; renaming a bouquet makes a new
 * product. Slugs come from the catalog (transliterated name, "-2" on a collision).
 *
 * The Flowwow layout (github.com/webrodda/scraping_flowwow_com: Название, Полная цена,
 * Цена со скидкой, Описание, Состав, Размер, Ссылки на фотографии) is recognised by its
 * header; its scraper wrote "; " for every comma in descriptions, which is undone.
 *
 * Errors: a row that cannot be read or converted is reported as "line N" (the physical
 * line where the record starts) with the reason, and parsing goes on. Broken quoting is
 * reported at the record's line, and parsing resumes on the next line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>
#include <sodium.h>
#include <unistr.h>

#include "flora/catalog.h"
#include "flora/text.h"
#include "import/import_private.h"

typedef enum csv_field {
   F_NAME,
   F_PRICE,
   F_DISCOUNT,
   F_DESCRIPTION,
   F_COMPOSITION,
   F_SIZE,
   F_PHOTOS,
   F_SKU,
   F_CATEGORY,
   F_TAGS,
   F_STOCK,
   F_COUNT,
   F_NONE = -1,
} csv_field_t;

static const char *const field_names[F_COUNT] = {
   "name", "price", "discount_price", "description", "composition", "size",
   "photos", "sku", "category", "tags", "stock",
};

/* Built-in header names (compared case-folded). */
static const struct {
   const char *column;
   csv_field_t field;
} builtin_columns[] = {
   /* Flowwow */
   {"Название", F_NAME},
   {"Полная цена", F_PRICE},
   {"Цена со скидкой", F_DISCOUNT},
   {"Описание", F_DESCRIPTION},
   {"Состав", F_COMPOSITION},
   {"Размер", F_SIZE},
   {"Ссылки на фотографии", F_PHOTOS},
   /* common Russian spreadsheet headers */
   {"Наименование", F_NAME},
   {"Цена", F_PRICE},
   {"Артикул", F_SKU},
   {"Категория", F_CATEGORY},
   {"Теги", F_TAGS},
   {"Остаток", F_STOCK},
   {"Фото", F_PHOTOS},
};

#define FLOWWOW_COLUMNS 7 /* the first seven rows above */
#define MAX_COLUMNS 256
#define MAX_FIELD_BYTES (1024 * 1024)

typedef struct csv_state {
   const flora_import_options_t *options;
   const flora__import_handler_t *handler;
   flora_error_t *error;
   /* the record being assembled */
   char **cells;
   size_t n_cells;
   size_t cap_cells;
   bool oversized; /* a field over MAX_FIELD_BYTES or too many columns */
   /* lines */
   size_t line;        /* physical line being fed (1-based) */
   size_t record_line; /* where the current record started */
   /* header */
   bool have_header;
   size_t n_columns;
   csv_field_t column_field[MAX_COLUMNS];
   bool flowwow;
   bool file_failed; /* header problem: error set */
   bool stopped;     /* a handler stopped the parse */
   /* SKU derivation: the distinct contents seen per name */
   struct seen {
      char *name;
      unsigned char content[crypto_hash_sha256_BYTES];
      char sku[80];
      char ref[32];
   } *seen;
   size_t n_seen;
   size_t cap_seen;
} csv_state_t;

static void
clear_cells(csv_state_t *st)
{
   for (size_t i = 0; i < st->n_cells; i++) {
      free(st->cells[i]);
   }
   st->n_cells = 0;
   st->oversized = false;
}

static void
on_field(void *s, size_t len, void *data)
{
   csv_state_t *st = data;
   char *copy;

   if (st->oversized) {
      return;
   }
   if (st->n_cells >= MAX_COLUMNS || len > MAX_FIELD_BYTES) {
      st->oversized = true;
      return;
   }
   if (st->n_cells == st->cap_cells) {
      size_t cap = st->cap_cells ? st->cap_cells * 2 : 16;
      char **grown = realloc(st->cells, cap * sizeof *grown);

      if (!grown) {
         st->oversized = true;
         return;
      }
      st->cells = grown;
      st->cap_cells = cap;
   }
   copy = malloc(len + 1);
   if (!copy) {
      st->oversized = true;
      return;
   }
   if (len > 0) {
      memcpy(copy, s, len);
   }
   copy[len] = '\0';
   st->cells[st->n_cells++] = copy;
}

/* ---- header ------------------------------------------------------------------------- */

static bool
same_folded(const char *a, const char *b)
{
   char *ta = flora__import_trim(a);
   char *tb = flora__import_trim(b);
   char *fa = ta ? flora_text_fold(ta, strlen(ta)) : NULL;
   char *fb = tb ? flora_text_fold(tb, strlen(tb)) : NULL;
   bool same = fa && fb && strcmp(fa, fb) == 0;

   free(ta);
   free(tb);
   free(fa);
   free(fb);
   return same;
}

static csv_field_t
field_by_name(const char *name)
{
   for (int f = 0; f < F_COUNT; f++) {
      if (same_folded(name, field_names[f])) {
         return (csv_field_t) f;
      }
   }
   return F_NONE;
}

static bool
read_header(csv_state_t *st)
{
   size_t flowwow_hits = 0;
   int seen_field[F_COUNT];

   if (st->n_cells > MAX_COLUMNS || st->oversized) {
      flora_error_set(st->error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "CSV header (line %zu) has more than %d columns", st->record_line,
                      MAX_COLUMNS);
      return false;
   }
   st->n_columns = st->n_cells;
   for (size_t c = 0; c < st->n_cells; c++) {
      const char *col = st->cells[c];

      if (u8_check((const uint8_t *) col, strlen(col))) {
         flora_error_set(st->error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "CSV header (line %zu) is not valid UTF-8", st->record_line);
         return false;
      }
      st->column_field[c] = field_by_name(col);
      for (size_t b = 0; b < sizeof builtin_columns / sizeof builtin_columns[0]; b++) {
         if (st->column_field[c] == F_NONE && same_folded(col, builtin_columns[b].column)) {
            st->column_field[c] = builtin_columns[b].field;
            flowwow_hits += b < FLOWWOW_COLUMNS;
         }
      }
   }
   st->flowwow = flowwow_hits == FLOWWOW_COLUMNS;

   /* explicit mapping */
   for (const char *const *m = st->options->mapping; m && *m; m++) {
      const char *eq = strrchr(*m, '=');
      char column[512];
      csv_field_t field;
      bool matched = false;

      if (!eq || eq == *m || (size_t) (eq - *m) >= sizeof column) {
         flora_error_set(st->error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "mapping \"%s\" is not COLUMN=FIELD", *m);
         return false;
      }
      memcpy(column, *m, (size_t) (eq - *m));
      column[eq - *m] = '\0';
      field = field_by_name(eq + 1);
      if (field == F_NONE && eq[1] != '\0') {
         flora_error_set(st->error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "mapping \"%s\": unknown field \"%s\" (fields: name, price, "
                         "discount_price, description, composition, size, photos, sku, "
                         "category, tags, stock; empty to ignore the column)",
                         *m, eq + 1);
         return false;
      }
      for (size_t c = 0; c < st->n_columns; c++) {
         if (same_folded(st->cells[c], column)) {
            st->column_field[c] = field;
            matched = true;
         }
      }
      if (!matched) {
         flora_error_set(st->error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "mapping \"%s\": the CSV header (line %zu) has no column \"%s\"", *m,
                         st->record_line, column);
         return false;
      }
   }

   for (int f = 0; f < F_COUNT; f++) {
      seen_field[f] = -1;
   }
   for (size_t c = 0; c < st->n_columns; c++) {
      csv_field_t f = st->column_field[c];

      if (f == F_NONE) {
         continue;
      }
      if (seen_field[f] >= 0) {
         flora_error_set(st->error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "CSV header (line %zu): columns \"%s\" and \"%s\" both map to %s "
                         "(use --map to choose)",
                         st->record_line, st->cells[seen_field[f]], st->cells[c], field_names[f]);
         return false;
      }
      seen_field[f] = (int) c;
   }
   if (seen_field[F_NAME] < 0 || seen_field[F_PRICE] < 0) {
      char columns[300] = "";
      size_t used = 0;

      for (size_t c = 0; c < st->n_columns && used < sizeof columns; c++) {
         int n = snprintf(columns + used, sizeof columns - used, "%s\"%s\"", c ? ", " : "",
                          st->cells[c]);

         used += n > 0 ? (size_t) n : 0;
      }
      flora_error_set(st->error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "CSV header (line %zu) has no %s column (columns: %s); map one with "
                      "COLUMN=%s",
                      st->record_line, seen_field[F_NAME] < 0 ? "name" : "price", columns,
                      seen_field[F_NAME] < 0 ? "name" : "price");
      return false;
   }
   st->have_header = true;
   return true;
}

/* ---- rows --------------------------------------------------------------------------- */

/* The cell of a field, or NULL when no column maps to it. */
static const char *
cell(const csv_state_t *st, csv_field_t f)
{
   for (size_t c = 0; c < st->n_columns && c < st->n_cells; c++) {
      if (st->column_field[c] == f) {
         return st->cells[c];
      }
   }
   return NULL;
}

static void
hex10(const unsigned char *digest, char out[11])
{
   static const char hex[] = "0123456789abcdef";

   for (int i = 0; i < 5; i++) {
      out[2 * i] = hex[digest[i] >> 4];
      out[2 * i + 1] = hex[digest[i] & 15];
   }
   out[10] = '\0';
}

/* The SKU and source ref of a row without a sku column (see the file comment). */
static bool
derive_sku(csv_state_t *st, const char *name, const char *ref, char *sku, size_t sku_len,
           char *source_ref, size_t ref_len)
{
   unsigned char content[crypto_hash_sha256_BYTES];
   unsigned char name_hash[crypto_hash_sha256_BYTES];
   crypto_hash_sha256_state hs;
   size_t ordinal = 1;
   char hex[11];

   crypto_hash_sha256_init(&hs);
   for (size_t c = 0; c < st->n_cells; c++) {
      crypto_hash_sha256_update(&hs, (const unsigned char *) st->cells[c], strlen(st->cells[c]));
      crypto_hash_sha256_update(&hs, (const unsigned char *) "\x1f", 1);
   }
   crypto_hash_sha256_final(&hs, content);
   for (size_t i = 0; i < st->n_seen; i++) {
      if (strcmp(st->seen[i].name, name) != 0) {
         continue;
      }
      if (memcmp(st->seen[i].content, content, sizeof content) == 0) {
         snprintf(sku, sku_len, "%s", st->seen[i].sku);
         snprintf(source_ref, ref_len, "%s", st->seen[i].ref);
         return true;
      }
      ordinal++;
   }
   crypto_hash_sha256(name_hash, (const unsigned char *) name, strlen(name));
   hex10(name_hash, hex);
   if (ordinal == 1) {
      snprintf(sku, sku_len, "%s%s", st->flowwow ? "FW-" : "CSV-", hex);
   } else {
      snprintf(sku, sku_len, "%s%s-%zu", st->flowwow ? "FW-" : "CSV-", hex, ordinal);
   }
   snprintf(source_ref, ref_len, "%s", ref);
   if (st->n_seen == st->cap_seen) {
      size_t cap = st->cap_seen ? st->cap_seen * 2 : 64;
      struct seen *grown = realloc(st->seen, cap * sizeof *grown);

      if (!grown) {
         return false;
      }
      st->seen = grown;
      st->cap_seen = cap;
   }
   st->seen[st->n_seen].name = strdup(name);
   if (!st->seen[st->n_seen].name) {
      return false;
   }
   memcpy(st->seen[st->n_seen].content, content, sizeof content);
   snprintf(st->seen[st->n_seen].sku, sizeof st->seen[st->n_seen].sku, "%s", sku);
   snprintf(st->seen[st->n_seen].ref, sizeof st->seen[st->n_seen].ref, "%s", ref);
   st->n_seen++;
   return true;
}

/* "; " back to ", " (the Flowwow scraper's substitution). Caller frees. */
static char *
restore_commas(const char *text)
{
   size_t len = strlen(text);
   char *out = malloc(len + 1);
   size_t o = 0;

   if (!out) {
      return NULL;
   }
   for (size_t i = 0; i < len; i++) {
      if (text[i] == ';' && text[i + 1] == ' ') {
         out[o++] = ',';
      } else {
         out[o++] = text[i];
      }
   }
   out[o] = '\0';
   return out;
}

static bool
is_slug(const char *s)
{
   bool prev_hyphen = true;

   if (*s == '\0') {
      return false;
   }
   for (; *s; s++) {
      if ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')) {
         prev_hyphen = false;
      } else if (*s == '-' && !prev_hyphen) {
         prev_hyphen = true;
      } else {
         return false;
      }
   }
   return !prev_hyphen;
}

static void
append_tags_column(bson_t *doc, const char *text)
{
   const char *p = text;
   uint32_t n = 0;
   bson_t arr;

   BSON_APPEND_ARRAY_BEGIN(doc, "tags", &arr);
   while (*p) {
      size_t len;
      char idx[16];
      const char *key;

      p += strspn(p, ",; \t\r\n");
      len = strcspn(p, ",; \t\r\n");
      if (len == 0) {
         break;
      }
      bson_uint32_to_string(n++, &key, idx, sizeof idx);
      bson_append_utf8(&arr, key, -1, p, (int) len);
      p += len;
   }
   bson_append_array_end(doc, &arr);
}

/* Builds the product input of the current row into *input; false with reason. */
static bool
convert_row(csv_state_t *st, const char *ref, bson_t *input, char *reason, size_t reason_len)
{
   const char *raw;
   char *name = NULL, *description = NULL, *sku_cell = NULL;
   char sku[80], source_ref[32];
   int64_t price = 0, discount = -1, variant_price, compare = -1;
   int32_t height = 0, width = 0, stock = -1;
   const char *size_text = NULL;
   const char *composition_text = NULL;
   bson_t variants, variant, source;
   bool ok = false;
   char why[300];

   for (size_t c = 0; c < st->n_cells; c++) {
      if (u8_check((const uint8_t *) st->cells[c], strlen(st->cells[c]))) {
         snprintf(reason, reason_len, "column %zu is not valid UTF-8", c + 1);
         return false;
      }
   }
   name = flora__import_trim(cell(st, F_NAME));
   if (!name || name[0] == '\0') {
      snprintf(reason, reason_len, "name is empty");
      goto cleanup;
   }
   if (!flora__import_parse_money(cell(st, F_PRICE), &price, why, sizeof why)) {
      snprintf(reason, reason_len, "price %s", why);
      goto cleanup;
   }
   raw = cell(st, F_DISCOUNT);
   if (raw) {
      char *t = flora__import_trim(raw);

      if (t && t[0] != '\0' && !flora__import_parse_money(t, &discount, why, sizeof why)) {
         snprintf(reason, reason_len, "discount price %s", why);
         free(t);
         goto cleanup;
      }
      free(t);
   }
   if (discount > price) {
      snprintf(reason, reason_len,
               "discount price %lld.%02lld is above the full price %lld.%02lld",
               (long long) (discount / 100), (long long) (discount % 100),
               (long long) (price / 100), (long long) (price % 100));
      goto cleanup;
   }
   variant_price = price;
   if (discount >= 0 && discount < price) {
      variant_price = discount;
      compare = price;
   }
   raw = cell(st, F_STOCK);
   if (raw) {
      char *t = flora__import_trim(raw);

      if (t && t[0] != '\0' && !flora__import_parse_count(t, &stock, why, sizeof why)) {
         snprintf(reason, reason_len, "stock %s", why);
         free(t);
         goto cleanup;
      }
      free(t);
   }

   sku_cell = cell(st, F_SKU) ? flora__import_trim(cell(st, F_SKU)) : NULL;
   if (sku_cell && sku_cell[0] != '\0') {
      snprintf(sku, sizeof sku, "%s", sku_cell);
      snprintf(source_ref, sizeof source_ref, "%s", ref);
   } else if (!derive_sku(st, name, ref, sku, sizeof sku, source_ref, sizeof source_ref)) {
      snprintf(reason, reason_len, "out of memory");
      goto cleanup;
   }

   raw = cell(st, F_DESCRIPTION);
   if (raw) {
      char *t = flora__import_trim(raw);

      description = t && st->flowwow ? restore_commas(t) : t;
      if (t && st->flowwow) {
         free(t);
      }
   }

   BSON_APPEND_UTF8(input, "sku", sku);
   BSON_APPEND_UTF8(input, "name", name);
   BSON_APPEND_UTF8(input, "description", description ? description : "");
   raw = cell(st, F_CATEGORY);
   if (raw) {
      char *t = flora__import_trim(raw);

      if (t && t[0] != '\0') {
         char *slug = is_slug(t) ? strdup(t) : flora_catalog_slugify(t, 100, NULL);
         bson_t arr;

         if (!slug) {
            snprintf(reason, reason_len, "category \"%s\" has no letters or digits", t);
            free(t);
            goto cleanup;
         }
         BSON_APPEND_ARRAY_BEGIN(input, "categorySlugs", &arr);
         BSON_APPEND_UTF8(&arr, "0", slug);
         bson_append_array_end(input, &arr);
         free(slug);
      }
      free(t);
   }

   /* size: the size column, or a composition column that holds a size instead */
   size_text = cell(st, F_SIZE);
   composition_text = cell(st, F_COMPOSITION);
   if (size_text) {
      flora__import_parse_size(size_text, &height, &width);
   }
   if (height == 0 && width == 0 && composition_text &&
       flora__import_looks_like_size(composition_text)) {
      flora__import_parse_size(composition_text, &height, &width);
   }

   BSON_APPEND_ARRAY_BEGIN(input, "variants", &variants);
   BSON_APPEND_DOCUMENT_BEGIN(&variants, "0", &variant);
   BSON_APPEND_UTF8(&variant, "sku", sku);
   BSON_APPEND_UTF8(&variant, "name", "Стандарт");
   BSON_APPEND_INT64(&variant, "price", variant_price);
   if (compare >= 0) {
      BSON_APPEND_INT64(&variant, "compareAtPrice", compare);
   } else {
      BSON_APPEND_NULL(&variant, "compareAtPrice");
   }
   if (stock >= 0) {
      BSON_APPEND_INT32(&variant, "stock", stock);
   }
   flora__import_append_composition(&variant, "composition",
                                    composition_text ? composition_text : "");
   if (height > 0) {
      BSON_APPEND_INT32(&variant, "heightCm", height);
   } else {
      BSON_APPEND_NULL(&variant, "heightCm");
   }
   if (width > 0) {
      BSON_APPEND_INT32(&variant, "widthCm", width);
   } else {
      BSON_APPEND_NULL(&variant, "widthCm");
   }
   bson_append_document_end(&variants, &variant);
   bson_append_array_end(input, &variants);

   BSON_APPEND_UTF8(input, "currency", "RUB");
   raw = cell(st, F_PHOTOS);
   if (!flora__import_append_images(input, "images", raw ? raw : "", why, sizeof why)) {
      snprintf(reason, reason_len, "%s", why);
      goto cleanup;
   }
   raw = cell(st, F_TAGS);
   if (raw) {
      append_tags_column(input, raw);
   } else {
      const char *texts[] = {name, description};

      flora__import_append_inferred_tags(input, "tags", texts, 2);
   }
   BSON_APPEND_DOCUMENT_BEGIN(input, "source", &source);
   BSON_APPEND_UTF8(&source, "format", "csv");
   BSON_APPEND_UTF8(&source, "ref", source_ref);
   bson_append_document_end(input, &source);
   ok = true;

cleanup:
   free(name);
   free(description);
   free(sku_cell);
   return ok;
}

static bool
row_is_blank(const csv_state_t *st)
{
   for (size_t c = 0; c < st->n_cells; c++) {
      if (st->cells[c][0] != '\0') {
         return false;
      }
   }
   return true;
}

/* Hands a record error to the handler; false when it stops. */
static bool
report_row_error(csv_state_t *st, const char *ref, const char *reason)
{
   flora_error_t e;

   flora_error_set(&e, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "%s", reason);
   if (!st->handler->product(st->handler->ctx, ref, NULL, &e)) {
      st->stopped = true;
      return false;
   }
   return true;
}

static void
on_record(int terminator, void *data)
{
   csv_state_t *st = data;
   char ref[32];

   (void) terminator;
   if (st->stopped || st->file_failed) {
      clear_cells(st);
      return;
   }
   snprintf(ref, sizeof ref, "line %zu", st->record_line);
   if (!st->have_header) {
      if (!read_header(st)) {
         st->file_failed = true;
      }
   } else if (row_is_blank(st)) {
      /* an empty row: nothing to import, nothing wrong */
   } else if (st->oversized) {
      report_row_error(st, ref, "a field is over 1 MiB or there are over 256 columns");
   } else if (st->n_cells != st->n_columns) {
      char reason[120];

      snprintf(reason, sizeof reason, "has %zu fields, the header has %zu", st->n_cells,
               st->n_columns);
      report_row_error(st, ref, reason);
   } else {
      bson_t input = BSON_INITIALIZER;
      char reason[512];

      if (convert_row(st, ref, &input, reason, sizeof reason)) {
         if (!st->handler->product(st->handler->ctx, ref, &input, NULL)) {
            st->stopped = true;
         }
      } else {
         report_row_error(st, ref, reason);
      }
      bson_destroy(&input);
   }
   clear_cells(st);
   st->record_line = st->line + 1;
}

/* The delimiter the header line uses most among ',', ';' and TAB (outside quotes). */
static unsigned char
detect_delimiter(const char *text, size_t len)
{
   size_t commas = 0, semicolons = 0, tabs = 0;
   bool quoted = false;

   for (size_t i = 0; i < len && (quoted || (text[i] != '\n' && text[i] != '\r')); i++) {
      if (text[i] == '"') {
         quoted = !quoted;
      } else if (!quoted) {
         commas += text[i] == ',';
         semicolons += text[i] == ';';
         tabs += text[i] == '\t';
      }
   }
   if (semicolons > commas && semicolons >= tabs) {
      return ';';
   }
   if (tabs > commas && tabs > semicolons) {
      return '\t';
   }
   return ',';
}

static int
is_blank_char(unsigned char c)
{
   return c == ' ';
}

#define CSV_MAX_LINE_BYTES (256 * 1024)

static bool
new_parser(struct csv_parser *p, unsigned char delimiter, flora_error_t *error)
{
   if (csv_init(p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "CSV parser: out of memory");
      return false;
   }
   csv_set_delim(p, delimiter);
   csv_set_blk_size(p, 16 * 1024); /* grow field buffers in large steps, not 128 bytes */
   /* only spaces are trimmed around fields, so a TAB delimiter stays a delimiter */
   csv_set_space_func(p, is_blank_char);
   return true;
}

bool
flora__import_csv(const char *path, const flora_import_options_t *options,
                  const flora__import_handler_t *handler, flora_error_t *error)
{
   csv_state_t st = {.options = options, .handler = handler, .error = error};
   struct csv_parser parser;
   bool parser_live = false;
   size_t len = 0;
   char *text = NULL;
   const char *p;
   const char *end;
   unsigned char delimiter;
   bool ok = false;

   if (sodium_init() < 0) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "libsodium failed to initialise");
      return false;
   }
   text = flora__import_read_file(path, &len, error);
   if (!text) {
      return false;
   }
   p = text;
   end = text + len;
   if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
      p += 3; /* UTF-8 byte order mark, as spreadsheets write it */
   }
   delimiter = detect_delimiter(p, (size_t) (end - p));
   if (!new_parser(&parser, delimiter, error)) {
      goto cleanup;
   }
   parser_live = true;
   st.line = 1;
   st.record_line = 1;
   while (p < end && !st.stopped && !st.file_failed) {
      const char *nl = memchr(p, '\n', (size_t) (end - p));
      size_t chunk = nl ? (size_t) (nl - p) + 1 : (size_t) (end - p);

      if (chunk > CSV_MAX_LINE_BYTES && st.have_header && st.record_line == st.line) {
         /* No catalog field is this long (the longest, a description, is 10,000
          * characters); refusing the line up front keeps a runaway field from costing
          * minutes and gigabytes. */
         char ref[32], reason[96];

         snprintf(ref, sizeof ref, "line %zu", st.line);
         snprintf(reason, sizeof reason, "the line is longer than %d KiB", CSV_MAX_LINE_BYTES / 1024);
         if (!report_row_error(&st, ref, reason)) {
            goto cleanup;
         }
         p += chunk;
         st.line++;
         st.record_line = st.line;
         continue;
      }
      if (csv_parse(&parser, p, chunk, on_field, on_record, &st) != chunk) {
         char ref[32], reason[160];

         snprintf(ref, sizeof ref, "line %zu", st.record_line);
         if (st.record_line == st.line) {
            snprintf(reason, sizeof reason, "broken quoting (%s)", csv_strerror(csv_error(&parser)));
         } else {
            snprintf(reason, sizeof reason, "broken quoting in the record running to line %zu (%s)",
                     st.line, csv_strerror(csv_error(&parser)));
         }
         clear_cells(&st);
         csv_free(&parser);
         parser_live = false;
         if (!st.have_header) {
            flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                            "CSV header (line %zu) is malformed: %s", st.record_line, reason);
            goto cleanup;
         }
         if (!report_row_error(&st, ref, reason)) {
            goto cleanup;
         }
         /* resume with a fresh parser on the next line */
         if (!new_parser(&parser, delimiter, error)) {
            goto cleanup;
         }
         parser_live = true;
         st.record_line = st.line + 1;
      }
      p += chunk;
      st.line++;
   }
   if (st.file_failed || st.stopped) {
      goto cleanup;
   }
   /* the last record when the file does not end with a newline */
   st.line--;
   if (csv_fini(&parser, on_field, on_record, &st) != 0) {
      char ref[32];

      snprintf(ref, sizeof ref, "line %zu", st.record_line);
      clear_cells(&st);
      if (!st.have_header) {
         flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "CSV header (line %zu) has an unterminated quoted field", st.record_line);
         goto cleanup;
      }
      if (!report_row_error(&st, ref, "unterminated quoted field (runs to the end of the file)")) {
         goto cleanup;
      }
   }
   if (st.file_failed || st.stopped) {
      goto cleanup;
   }
   if (!st.have_header) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "%s: the CSV file is empty",
                      path);
      goto cleanup;
   }
   ok = true;

cleanup:
   if (parser_live) {
      csv_free(&parser);
   }
   clear_cells(&st);
   free(st.cells);
   for (size_t i = 0; i < st.n_seen; i++) {
      free(st.seen[i].name);
   }
   free(st.seen);
   free(text);
   return ok;
}
