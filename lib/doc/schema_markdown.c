/* The generated reference page of a collection: see include/flora/schema.h
 * (flora_schema_markdown). Output is deterministic (no dates, no addresses), so
 * tests/unit/test_schema_docs.c can compare docs/schema/ with what the schemas generate.
 * Tables are GitHub-flavoured Markdown; `|` inside a cell is escaped as `\|`, which GFM
 * honours inside code spans too. */
#include "doc/schema_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BANNER                                                                           \
   "<!-- Generated from lib/shop/*.c by `flora docs schema`; do not edit. -->\n"

/* Writes s with table-breaking characters escaped. */
static void
put_cell(FILE *f, const char *s)
{
   for (; s && *s; s++) {
      if (*s == '|') {
         fputs("\\|", f);
      } else if (*s == '\n') {
         fputc(' ', f);
      } else {
         fputc(*s, f);
      }
   }
}

static void
put_types(FILE *f, uint32_t types)
{
   static const uint32_t order[] = {FLORA_T_STRING, FLORA_T_INT32,    FLORA_T_INT64,
                                    FLORA_T_DOUBLE, FLORA_T_DECIMAL,  FLORA_T_BOOL,
                                    FLORA_T_DATE,   FLORA_T_OBJECTID, FLORA_T_DOCUMENT,
                                    FLORA_T_ARRAY,  FLORA_T_BINARY,   FLORA_T_NULL};
   bool first = true;

   for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
      if (types & order[i]) {
         fprintf(f, "%s%s", first ? "" : ", ", flora__schema_bson_type_name(order[i]));
         first = false;
      }
   }
   if (first) {
      fputs("none", f);
   }
}

/* "; " between constraints. */
static void
sep(FILE *f, bool *first)
{
   if (!*first) {
      fputs("; ", f);
   }
   *first = false;
}

/* "1–200 characters", "exactly 5 items", "at least 1 item", "at most 3 items". */
static void
put_length(FILE *f, int64_t min, int64_t max, const char *unit)
{
   if (min >= 0 && min == max) {
      fprintf(f, "exactly %" PRId64 " %s%s", min, unit, min == 1 ? "" : "s");
   } else if (min >= 0 && max >= 0) {
      fprintf(f, "%" PRId64 "–%" PRId64 " %ss", min, max, unit);
   } else if (min >= 0) {
      fprintf(f, "at least %" PRId64 " %s%s", min, unit, min == 1 ? "" : "s");
   } else {
      fprintf(f, "at most %" PRId64 " %s%s", max, unit, max == 1 ? "" : "s");
   }
}

static void
put_constraints(FILE *f, const flora_field_t *fl, bool *dates_unchecked)
{
   bool first = true;
   char a[40], b[40];
   bool dates = (fl->types & FLORA_T_DATE) && !(fl->types & FLORA_T_NUMBER);

   if (fl->has_min || fl->has_max) {
      sep(f, &first);
      if (dates) {
         *dates_unchecked = true;
         if (fl->has_min) {
            flora__schema_format_date((int64_t) fl->min, a, sizeof a);
         }
         if (fl->has_max) {
            flora__schema_format_date((int64_t) fl->max, b, sizeof b);
         }
      } else {
         flora__schema_format_number(fl->min, a, sizeof a);
         flora__schema_format_number(fl->max, b, sizeof b);
      }
      if (fl->has_min && fl->has_max) {
         fprintf(f, "%s ≤ value ≤ %s", a, b);
      } else if (fl->has_min) {
         fprintf(f, "≥ %s", a);
      } else {
         fprintf(f, "≤ %s", b);
      }
      if (dates) {
         fputs(" (Flora only)", f);
      }
   }
   if ((fl->types & FLORA_T_STRING) && (fl->minlength >= 0 || fl->maxlength >= 0)) {
      sep(f, &first);
      put_length(f, fl->minlength, fl->maxlength, "character");
   }
   if ((fl->types & FLORA_T_ARRAY) && (fl->minlength >= 0 || fl->maxlength >= 0)) {
      sep(f, &first);
      put_length(f, fl->minlength, fl->maxlength, "item");
   }
   if (fl->enum_values) {
      sep(f, &first);
      fputs("one of: ", f);
      for (const char *const *e = fl->enum_values; *e; e++) {
         fputs(e == fl->enum_values ? "`" : ", `", f);
         put_cell(f, *e);
         fputs("`", f);
      }
   }
   if (fl->pattern) {
      sep(f, &first);
      fputs("matches `", f);
      put_cell(f, fl->pattern);
      fputs("`", f);
      if (fl->pattern_hint) {
         fputs(" (", f);
         put_cell(f, fl->pattern_hint);
         fputs(")", f);
      }
   }
   if (fl->fields && (fl->types & FLORA_T_DOCUMENT)) {
      sep(f, &first);
      fputs(fl->strict ? "strict: unknown subfields refused" : "other subfields allowed", f);
   }
   if (fl->validate) {
      sep(f, &first);
      fputs("custom check (Flora only)", f);
   }
}

static void
put_default(FILE *f, const flora_field_t *fl)
{
   switch (fl->default_kind) {
   case FLORA_DEFAULT_VALUE:
      fputs("`", f);
      put_cell(f, fl->default_json ? fl->default_json : "null");
      fputs("`", f);
      break;
   case FLORA_DEFAULT_NOW:
      fputs("now", f);
      break;
   case FLORA_DEFAULT_OBJECTID:
      fputs("new ObjectId", f);
      break;
   default:
      break;
   }
}

static void
put_rows(FILE *f, const flora_field_t *fields, const char *prefix, bool timestamps,
         bool *dates_unchecked);

/* Table cells: "| content " or, when empty, "| " (so an empty cell reads "| |"). The
 * page is written to an open_memstream stream, where ftell() tells whether a cell got
 * content. */
static long
cell_begin(FILE *f)
{
   fputs("| ", f);
   return ftell(f);
}

static void
cell_end(FILE *f, long start)
{
   if (ftell(f) != start) {
      fputc(' ', f);
   }
}

static void
put_code_cell(FILE *f, const char *text)
{
   long c = cell_begin(f);
   if (text) {
      fputs("`", f);
      put_cell(f, text);
      fputs("`", f);
   }
   cell_end(f, c);
}

static void
put_row(FILE *f, const flora_field_t *fl, const char *path, bool timestamp, bool *dates_unchecked)
{
   long c;

   put_code_cell(f, path);
   c = cell_begin(f);
   put_types(f, fl->types);
   cell_end(f, c);
   c = cell_begin(f);
   fputs(fl->required ? "yes" : "", f);
   cell_end(f, c);
   c = cell_begin(f);
   if (timestamp && fl->default_kind == FLORA_DEFAULT_NONE) {
      fputs("now", f); /* maintained by the schema's timestamps */
   } else {
      put_default(f, fl);
   }
   cell_end(f, c);
   c = cell_begin(f);
   put_constraints(f, fl, dates_unchecked);
   cell_end(f, c);
   c = cell_begin(f);
   if (fl->ref_collection) {
      fputs("`", f);
      put_cell(f, fl->ref_collection);
      fputs(".", f);
      put_cell(f, fl->ref_field ? fl->ref_field : "_id");
      fputs("`", f);
   }
   cell_end(f, c);
   c = cell_begin(f);
   put_cell(f, fl->description);
   cell_end(f, c);
   fputs("|\n", f);

   if (fl->fields && (fl->types & FLORA_T_DOCUMENT)) {
      put_rows(f, fl->fields, path, false, dates_unchecked);
   }
   if (fl->items && (fl->types & FLORA_T_ARRAY)) {
      char *item_path = bson_strdup_printf("%s[]", path);
      put_row(f, fl->items, item_path, false, dates_unchecked);
      bson_free(item_path);
   }
}

static void
put_rows(FILE *f, const flora_field_t *fields, const char *prefix, bool timestamps,
         bool *dates_unchecked)
{
   for (const flora_field_t *fl = fields; fl && fl->path; fl++) {
      char *path = prefix ? bson_strdup_printf("%s.%s", prefix, fl->path) : bson_strdup(fl->path);
      bool ts = timestamps && (strcmp(fl->path, FLORA__SCHEMA_CREATED_AT) == 0 ||
                               strcmp(fl->path, FLORA__SCHEMA_UPDATED_AT) == 0);
      put_row(f, fl, path, ts, dates_unchecked);
      bson_free(path);
   }
}

static bool
declares(const flora_field_t *fields, const char *name)
{
   for (const flora_field_t *fl = fields; fl && fl->path; fl++) {
      if (strcmp(fl->path, name) == 0) {
         return true;
      }
   }
   return false;
}

static bool
is_custom(const flora_field_t *fl)
{
   return fl->validate != NULL;
}

static bool
is_pattern(const flora_field_t *fl)
{
   return fl->pattern != NULL;
}

/* True when pred holds for a field of the list, its subfields or its items. */
static bool
any_field(const flora_field_t *fields, bool (*pred)(const flora_field_t *))
{
   for (const flora_field_t *fl = fields; fl && fl->path; fl++) {
      if (pred(fl) || any_field(fl->fields, pred) ||
          (fl->items && (pred(fl->items) || any_field(fl->items->fields, pred)))) {
         return true;
      }
   }
   return false;
}

static void
put_indexes(FILE *f, const flora_index_decl_t *indexes)
{
   fputs("## Indexes\n\n", f);
   if (!indexes || !indexes->name) {
      fputs("Only the `_id_` index MongoDB creates for every collection.\n", f);
      return;
   }
   fputs("| Name | Keys | Options | Serves |\n|---|---|---|---|\n", f);
   for (const flora_index_decl_t *d = indexes; d->name; d++) {
      bool first = true;
      long c;
      put_code_cell(f, d->name);
      put_code_cell(f, d->keys_json);
      c = cell_begin(f);
      if (d->unique) {
         sep(f, &first);
         fputs("unique", f);
      }
      if (d->sparse) {
         sep(f, &first);
         fputs("sparse", f);
      }
      if (d->partial_filter_json) {
         sep(f, &first);
         fputs("partial: `", f);
         put_cell(f, d->partial_filter_json);
         fputs("`", f);
      }
      if (d->expire_after_seconds > 0) {
         sep(f, &first);
         fprintf(f, "TTL: expires %" PRId64 " s after the indexed date", d->expire_after_seconds);
      }
      if (d->weights_json) {
         sep(f, &first);
         fputs("weights: `", f);
         put_cell(f, d->weights_json);
         fputs("`", f);
      }
      if (d->default_language) {
         sep(f, &first);
         fputs("language: ", f);
         put_cell(f, d->default_language);
      }
      cell_end(f, c);
      c = cell_begin(f);
      put_cell(f, d->serves);
      cell_end(f, c);
      fputs("|\n", f);
   }
}

char *
flora_schema_markdown(const flora_schema_t *schema)
{
   char *buf = NULL;
   size_t len = 0;
   FILE *f;
   bool dates_unchecked = false;
   bool has_id;

   FLORA_ASSERT_ARG(schema);
   f = open_memstream(&buf, &len);
   if (!f) {
      return NULL;
   }
   has_id = declares(schema->fields, "_id");
   fputs(BANNER, f);
   fprintf(f, "# `%s`\n\n", schema->collection ? schema->collection : "?");
   if (schema->description) {
      fprintf(f, "%s\n\n", schema->description);
   }
   fputs(schema->strict ? "Unknown top-level fields are refused (strict).\n"
                        : "Fields not listed here are allowed.\n",
         f);
   if (schema->timestamps) {
      fputs("Timestamps: `createdAt` is set on insert (kept when the document has one) and "
            "`updatedAt` on every insert and update.\n",
            f);
   }
   fputs("\n## Fields\n\n", f);
   fputs("| Path | Type | Required | Default | Constraints | Reference | Description |\n"
         "|---|---|---|---|---|---|---|\n",
         f);
   if (!has_id) {
      fputs("| `_id` | any | yes | new ObjectId | | | The document's id. |\n", f);
   }
   put_rows(f, schema->fields, NULL, schema->timestamps, &dates_unchecked);
   if (schema->timestamps) {
      if (!declares(schema->fields, FLORA__SCHEMA_CREATED_AT)) {
         fputs("| `createdAt` | date | | now | | | When the document was created (UTC). |\n", f);
      }
      if (!declares(schema->fields, FLORA__SCHEMA_UPDATED_AT)) {
         fputs("| `updatedAt` | date | | now | | | When the document last changed (UTC). |\n", f);
      }
   }
   fputs("\nPaths: `a.b` is field `b` of the document in `a`; `a[]` is every element of the "
         "array `a`. A field of type `long` also accepts `int` (an int32 always fits an "
         "int64). Lengths count Unicode characters (code points).\n",
         f);
   fputs("\n## Validation\n\n"
         "Flora checks every rule above on each write and reports every failing path at once "
         "(HTTP 422). On MongoDB the collection also carries the `$jsonSchema` validator "
         "generated from this schema (`flora migrate`). ",
         f);
   if (dates_unchecked || any_field(schema->fields, is_custom) || schema->validate) {
      fputs("Rules marked *Flora only* cannot be expressed in `$jsonSchema` "
            "(it has no bounds on dates and no custom code) and are checked by Flora alone.",
            f);
   } else {
      fputs("Every rule here is also in the `$jsonSchema` validator.", f);
   }
   if (schema->validate) {
      fputs(" A whole-document check (cross-field rules) also runs (Flora only).", f);
   }
   if (any_field(schema->fields, is_pattern)) {
      fputs(" Patterns are POSIX extended regular expressions; MongoDB evaluates them as PCRE, "
            "which agrees on the forms used here.",
            f);
   }
   fputs("\n\n", f);
   put_indexes(f, schema->indexes);
   if (fclose(f) != 0) {
      free(buf);
      return NULL;
   }
   return buf;
}
