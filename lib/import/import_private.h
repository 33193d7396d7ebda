/* Catalog import internals (include/flora/import.h): one parser per format feeding records
 * to a handler, and the field converters they share. Not installed. */
#ifndef FLORA_IMPORT_PRIVATE_H
#define FLORA_IMPORT_PRIVATE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flora/error.h"
#include "flora/import.h"

/* Where a parser sends what it reads. Each callback gets the record's ref ("line 12",
 * "offer 42", "item 3", "category 7"), its input (NULL when record_error is set) and
 * returns false to stop the parse (the handler then owns the reason, e.g. a store
 * failure). Categories arrive before the products that use them, parents before
 * children. Inputs are borrowed for the call. */
typedef struct flora__import_handler {
   bool (*category)(void *ctx, const char *ref, const bson_t *input,
                    const flora_error_t *record_error);
   bool (*product)(void *ctx, const char *ref, const bson_t *input,
                   const flora_error_t *record_error);
   void *ctx;
} flora__import_handler_t;

/* The parsers. false when the file as a whole cannot be read (error set; INPUT or IO
 * domain) or when a handler callback stopped the parse (error left to the handler). */
bool flora__import_csv(const char *path, const flora_import_options_t *options,
                       const flora__import_handler_t *handler, flora_error_t *error);
bool flora__import_yml(const char *path, const flora_import_options_t *options,
                       const flora__import_handler_t *handler, flora_error_t *error);
bool flora__import_json(const char *path, const flora_import_options_t *options,
                        const flora__import_handler_t *handler, flora_error_t *error);

/* The format of a file: by extension (.csv, .yml/.xml, .json), else by its first
 * non-blank byte ('{' JSON, '<' YML, anything else CSV). IO error when unreadable. */
bool flora__import_detect_format(const char *path, flora_import_format_t *out,
                                 flora_error_t *error);

/* Runs the parser of options->format (detected when AUTO) over path. */
bool flora__import_run_parser(const char *path, const flora_import_options_t *options,
                              const flora__import_handler_t *handler, flora_error_t *error);

/* *out (initialised here): input with categorySlugs [options->default_category] when
 * input names no category and a default is set; else a copy of input. */
void flora__import_with_default_category(const bson_t *input,
                                         const flora_import_options_t *options, bson_t *out);

/* Reads a whole file into a NUL-terminated buffer (caller frees with free()); IO error
 * naming the path. Files over 256 MiB are refused (TOO_LARGE). */
char *flora__import_read_file(const char *path, size_t *len, flora_error_t *error);

/* ---- field converters (import_fields.c) --------------------------------------------- */

/* A money amount in roubles (or any currency with 100 minor units) to minor units:
 * "5990", "5 990" (space, no-break or thin space as thousands separator), "5990.50",
 * "5990,50", optionally followed by "₽", "р.", "руб." or "руб". Negative amounts,
 * more than two decimals, other characters and amounts over 10^9 are rejected with a
 * reason in reason[]. */
bool flora__import_parse_money(const char *text, int64_t *out, char *reason, size_t reason_len);

/* A non-negative count ("12"); false with a reason otherwise. */
bool flora__import_parse_count(const char *text, int32_t *out, char *reason, size_t reason_len);

/* Appends a composition array [{flower, stems}] to doc under key, from florist text:
 * "Гортензия - 3 шт; Роза - 5 шт" (parts split on ';', or on ',' when there is no ';');
 * a part without a count keeps stems null; words glued together by a scraper
 * ("СвечаНобилисКипарисовик") are split where a lower-case letter meets a capital.
 * Never fails: text it cannot structure becomes one {flower: text, stems: null}.
 * Returns the number of entries appended. */
size_t flora__import_append_composition(bson_t *doc, const char *key, const char *text);

/* Heights and widths in cm from "Высота-45см; Ширина-30см" (also "Height: 45 cm"); *h
 * and *w are 0 when absent or outside 1..1000. */
void flora__import_parse_size(const char *text, int32_t *h, int32_t *w);

/* True when text names a size (has "высота"/"ширина"/"height"/"width" and a number). */
bool flora__import_looks_like_size(const char *text);

/* Appends images [{url, kind}] from URLs separated by ';' (or whitespace); ".mp4",
 * ".mov", ".webm" are kind "video". false with a reason when one is not an http(s) URL. */
bool flora__import_append_images(bson_t *doc, const char *key, const char *text, char *reason,
                                 size_t reason_len);

/* Appends the occasion tags the text clearly states (name and description): "8 марта"
 * -> march_8, "свадьб"/"свадебн"/"невест" -> wedding, "день рождения" -> birthday,
 * "14 февраля"/"валентин" -> valentines_day, "день матери" -> mothers_day,
 * "новый год"/"новогодн" -> new_year. Returns how many. */
size_t flora__import_append_inferred_tags(bson_t *doc, const char *key, const char *const *texts,
                                          size_t n_texts);

/* Copies text with leading and trailing ASCII and Unicode spaces removed (caller frees). */
char *flora__import_trim(const char *text);

/* Appends {ref, reason} to an errors array document. */
void flora__import_add_error(bson_t *errors, const char *ref, const char *reason);

#endif
