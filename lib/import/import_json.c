/* Flora's own JSON catalog (include/flora/import.h): one object
 *
 *   {"categories": [category input, ...], "products": [product input, ...]}
 *
 * where a category input is what flora_catalog_create_category takes ({slug, name,
 * description?, parentSlug?, sortOrder?, active?}) and a product input what
 * flora_catalog_create_product takes (include/flora/catalog.h). Both keys are optional,
 * any other top-level key is an error (a misspelt "product" would otherwise import
 * nothing without a word). Parsed with libbson (bson_new_from_json): relaxed or canonical
 * Extended JSON, so what `flora export` writes reads back.
 *
 * Categories are handed over parents first: one whose parentSlug names a category later
 * in the file waits for it. Products keep their own fields; "source" is added as
 * {format: "json", ref: "item N"} when absent. Refs: "category N" and "item N", N being
 * the 0-based index in the file's array. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flora/json.h"
#include "import/import_private.h"

static bool
hand_error(const flora__import_handler_t *h, bool product, const char *ref, const char *reason)
{
   flora_error_t e;

   flora_error_set(&e, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "%s", reason);
   return product ? h->product(h->ctx, ref, NULL, &e) : h->category(h->ctx, ref, NULL, &e);
}

/* The parentSlug of a category document, or NULL. */
static const char *
parent_slug(const bson_t *cat)
{
   bson_iter_t it;

   if (bson_iter_init_find(&it, cat, "parentSlug") && BSON_ITER_HOLDS_UTF8(&it)) {
      return bson_iter_utf8(&it, NULL);
   }
   return NULL;
}

static const char *
own_slug(const bson_t *cat)
{
   bson_iter_t it;

   if (bson_iter_init_find(&it, cat, "slug") && BSON_ITER_HOLDS_UTF8(&it)) {
      return bson_iter_utf8(&it, NULL);
   }
   return NULL;
}

static bool
emit_categories(const bson_iter_t *array, const flora__import_handler_t *h, flora_error_t *error)
{
   bson_iter_t it = *array, items;
   bson_t *cats = NULL;
   bool *done = NULL;
   size_t *index = NULL; /* position in the file's array */
   size_t position = 0;
   size_t n = 0, cap = 0;
   bool ok = false;
   bool progress = true;

   if (!bson_iter_recurse(&it, &items)) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "\"categories\" is not an array");
      return false;
   }
   /* copy the documents out; report the non-documents right away */
   for (; bson_iter_next(&items); position++) {
      char ref[48];

      snprintf(ref, sizeof ref, "category %zu", position);
      if (!BSON_ITER_HOLDS_DOCUMENT(&items)) {
         if (!hand_error(h, false, ref, "not an object")) {
            goto cleanup;
         }
         continue;
      }
      if (n == cap) {
         size_t ncap = cap ? cap * 2 : 32;
         bson_t *grown = realloc(cats, ncap * sizeof *grown);
         bool *grown_done = realloc(done, ncap * sizeof *grown_done);
         size_t *grown_index = realloc(index, ncap * sizeof *grown_index);

         if (grown) {
            cats = grown;
         }
         if (grown_done) {
            done = grown_done;
         }
         if (grown_index) {
            index = grown_index;
         }
         if (!grown || !grown_done || !grown_index) {
            flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
            goto cleanup;
         }
         cap = ncap;
      }
      {
         uint32_t len;
         const uint8_t *data;

         bson_iter_document(&items, &len, &data);
         if (!bson_init_static(&cats[n], data, len)) {
            if (!hand_error(h, false, ref, "not a valid document")) {
               goto cleanup;
            }
            continue;
         }
         index[n] = position;
         done[n++] = false;
      }
   }
   while (progress) {
      progress = false;
      for (size_t i = 0; i < n; i++) {
         const char *parent = parent_slug(&cats[i]);
         bool waits = false;
         char ref[48];

         if (done[i]) {
            continue;
         }
         for (size_t j = 0; parent && j < n && !waits; j++) {
            const char *slug = own_slug(&cats[j]);

            waits = j != i && !done[j] && slug && strcmp(slug, parent) == 0;
         }
         if (waits) {
            continue;
         }
         done[i] = progress = true;
         snprintf(ref, sizeof ref, "category %zu", index[i]);
         if (!h->category(h->ctx, ref, &cats[i], NULL)) {
            goto cleanup;
         }
      }
   }
   /* a parentSlug cycle: hand the rest over as they are, the catalog names the problem */
   for (size_t i = 0; i < n; i++) {
      char ref[48];

      if (!done[i]) {
         snprintf(ref, sizeof ref, "category %zu", index[i]);
         if (!hand_error(h, false, ref, "its parentSlug chain is a cycle")) {
            goto cleanup;
         }
      }
   }
   ok = true;

cleanup:
   free(cats);
   free(done);
   free(index);
   return ok;
}

static bool
emit_products(const bson_iter_t *array, const flora__import_handler_t *h, flora_error_t *error)
{
   bson_iter_t it = *array, items;
   size_t index = 0;

   if (!bson_iter_recurse(&it, &items)) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "\"products\" is not an array");
      return false;
   }
   for (; bson_iter_next(&items); index++) {
      char ref[48];
      bson_t product, input;
      uint32_t len;
      const uint8_t *data;
      bool go_on;

      snprintf(ref, sizeof ref, "item %zu", index);
      if (!BSON_ITER_HOLDS_DOCUMENT(&items)) {
         if (!hand_error(h, true, ref, "not an object")) {
            return false;
         }
         continue;
      }
      bson_iter_document(&items, &len, &data);
      if (!bson_init_static(&product, data, len)) {
         if (!hand_error(h, true, ref, "not a valid document")) {
            return false;
         }
         continue;
      }
      bson_init(&input);
      bson_concat(&input, &product);
      if (!bson_has_field(&product, "source")) {
         bson_t source;

         BSON_APPEND_DOCUMENT_BEGIN(&input, "source", &source);
         BSON_APPEND_UTF8(&source, "format", "json");
         BSON_APPEND_UTF8(&source, "ref", ref);
         bson_append_document_end(&input, &source);
      }
      go_on = h->product(h->ctx, ref, &input, NULL);
      bson_destroy(&input);
      if (!go_on) {
         return false;
      }
   }
   return true;
}

bool
flora__import_json(const char *path, const flora_import_options_t *options,
                   const flora__import_handler_t *handler, flora_error_t *error)
{
   bson_t *doc = NULL;
   bson_error_t json_error;
   bson_iter_t it, categories, products;
   bool have_categories = false, have_products = false;
   char *text = NULL;
   size_t len = 0;
   bool ok = false;

   (void) options;
   text = flora__import_read_file(path, &len, error);
   if (!text) {
      return false;
   }
   if (len > 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
      memset(text, ' ', 3); /* a byte order mark from an editor */
   }
   if (!flora_json_check_strict(text, len, error)) {
      flora_error_prefix(error, "%s: not valid JSON", path);
      goto cleanup;
   }
   doc = bson_new_from_json((const uint8_t *) text, (ssize_t) len, &json_error);
   if (!doc) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "%s: not valid JSON: %s", path,
                      json_error.message);
      goto cleanup;
   }
   if (!bson_iter_init(&it, doc)) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "%s: not valid JSON", path);
      goto cleanup;
   }
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);

      if (strcmp(key, "categories") == 0 && BSON_ITER_HOLDS_ARRAY(&it)) {
         categories = it;
         have_categories = true;
      } else if (strcmp(key, "products") == 0 && BSON_ITER_HOLDS_ARRAY(&it)) {
         products = it;
         have_products = true;
      } else if (strcmp(key, "categories") == 0 || strcmp(key, "products") == 0) {
         flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "%s: \"%s\" must be an array", path, key);
         goto cleanup;
      } else {
         flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "%s: unknown top-level key \"%s\" (a Flora catalog has \"categories\" "
                         "and \"products\")",
                         path, key);
         goto cleanup;
      }
   }
   if (!have_categories && !have_products) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "%s: not a Flora catalog (no \"categories\" or \"products\" array)", path);
      goto cleanup;
   }
   ok = (!have_categories || emit_categories(&categories, handler, error)) &&
        (!have_products || emit_products(&products, handler, error));

cleanup:
   bson_destroy(doc);
   free(text);
   return ok;
}
