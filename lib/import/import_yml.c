/* Yandex Market YML import (include/flora/import.h). Format reference:
 * yandex.ru/support/partnermarket/export/yml.html ("YML format", <yml_catalog><shop>
 * with <categories> and <offers>).
 *
 * Parsed with libxml2 without network access, without DTD loading and without entity
 * substitution (no XML_PARSE_NOENT, XML_PARSE_DTDLOAD or XML_PARSE_HUGE), so an external
 * entity in the feed is never fetched or read (XXE) and the DOCTYPE's shops.dtd is not
 * loaded. The declared encoding (often windows-1251) is honoured by libxml2.
 *
 * Categories: <category id parentId>Name</category> become category inputs {slug, name,
 * parentSlug?, sortOrder} in parent-first order; the slug is the transliterated name, or
 * "name-ID" when another category of the feed already has that slug. A category whose
 * parent is missing from the feed or whose parents form a cycle is reported as
 * "category ID" and not imported; its offers then fail.
 *
 * Offers (<offer id available>) become products keyed by the offer id (product sku; a
 * re-import updates): name from <name>, else <typePrefix> <vendor> <model>; <price> and
 * <oldprice> (kept as compareAtPrice only when above the price, as the Market does) in
 * kopecks; <currencyId> RUB/RUR, USD or EUR; <categoryId>; <picture>* (video files as
 * kind "video"); <description> (HTML in CDATA reduced to plain text); <vendorCode> as the
 * variant SKU when it is a valid SKU (else the offer id); <count> as stock, and
 * available="false" as stock 0; <param> "Высота"/"Height" and "Ширина"/"Width" (unit cm,
 * mm or m) as the variant's size, "Состав"/"Composition" as its composition, and a param
 * with unit "шт" as one composition entry {flower: param name, stems}. One variant named
 * "Стандарт" per offer. Occasion tags are inferred from the name and description. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "flora/catalog.h"
#include "flora/text.h"
#include "import/import_private.h"

#define MAX_CATEGORY_DEPTH 10

typedef struct yml_category {
   char *id;
   char *parent_id;
   char *name;
   char *slug;
   long parent; /* index, -1 root, -2 unresolved */
   bool emitted;
   bool failed;
} yml_category_t;

typedef struct yml_state {
   const flora__import_handler_t *handler;
   yml_category_t *cats;
   size_t n_cats;
} yml_state_t;

static bool
is_element(const xmlNode *n, const char *name)
{
   return n && n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *) name) == 0;
}

static const xmlNode *
first_child(const xmlNode *parent, const char *name)
{
   for (const xmlNode *c = parent ? parent->children : NULL; c; c = c->next) {
      if (is_element(c, name)) {
         return c;
      }
   }
   return NULL;
}

/* Trimmed text content of a node, or of an attribute; caller frees; NULL when absent. */
static char *
node_text(const xmlNode *n)
{
   xmlChar *content;
   char *trimmed;

   if (!n) {
      return NULL;
   }
   content = xmlNodeGetContent(n);
   if (!content) {
      return NULL;
   }
   trimmed = flora__import_trim((const char *) content);
   xmlFree(content);
   return trimmed;
}

static char *
child_text(const xmlNode *parent, const char *name)
{
   return node_text(first_child(parent, name));
}

static char *
attr_text(const xmlNode *n, const char *name)
{
   xmlChar *v = xmlGetProp(n, (const xmlChar *) name);
   char *trimmed;

   if (!v) {
      return NULL;
   }
   trimmed = flora__import_trim((const char *) v);
   xmlFree(v);
   return trimmed;
}

static bool
hands_error(const flora__import_handler_t *h, bool product, const char *ref, const char *fmt, ...)
   __attribute__((format(printf, 4, 5)));

/* Reports a record error to the handler; false when it stops the parse. */
static bool
hands_error(const flora__import_handler_t *h, bool product, const char *ref, const char *fmt, ...)
{
   flora_error_t e = {FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, ""};
   va_list ap;

   va_start(ap, fmt);
   vsnprintf(e.message, sizeof e.message, fmt, ap);
   va_end(ap);
   return product ? h->product(h->ctx, ref, NULL, &e) : h->category(h->ctx, ref, NULL, &e);
}

/* ---- categories --------------------------------------------------------------------- */

static void
free_categories(yml_state_t *st)
{
   for (size_t i = 0; i < st->n_cats; i++) {
      free(st->cats[i].id);
      free(st->cats[i].parent_id);
      free(st->cats[i].name);
      free(st->cats[i].slug);
   }
   free(st->cats);
   st->cats = NULL;
   st->n_cats = 0;
}

static long
category_index(const yml_state_t *st, const char *id)
{
   for (size_t i = 0; i < st->n_cats; i++) {
      if (st->cats[i].id && strcmp(st->cats[i].id, id) == 0) {
         return (long) i;
      }
   }
   return -1;
}

static bool
slug_taken(const yml_state_t *st, size_t upto, const char *slug)
{
   for (size_t i = 0; i < upto; i++) {
      if (st->cats[i].slug && strcmp(st->cats[i].slug, slug) == 0) {
         return true;
      }
   }
   return false;
}

/* Reads <categories>, gives each a slug, resolves parents; reports bad ones. */
static bool
read_categories(yml_state_t *st, const xmlNode *shop, flora_error_t *error)
{
   const xmlNode *cats = first_child(shop, "categories");
   size_t n = 0;

   for (const xmlNode *c = cats ? cats->children : NULL; c; c = c->next) {
      n += is_element(c, "category");
   }
   if (n == 0) {
      return true;
   }
   st->cats = calloc(n, sizeof *st->cats);
   if (!st->cats) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      return false;
   }
   for (const xmlNode *c = cats->children; c; c = c->next) {
      yml_category_t *cat;

      if (!is_element(c, "category")) {
         continue;
      }
      cat = &st->cats[st->n_cats++];
      cat->id = attr_text(c, "id");
      cat->parent_id = attr_text(c, "parentId");
      cat->name = node_text(c);
      cat->parent = -1;
   }
   for (size_t i = 0; i < st->n_cats; i++) {
      yml_category_t *cat = &st->cats[i];
      char ref[80];
      char *base;

      snprintf(ref, sizeof ref, "category %s", cat->id ? cat->id : "(no id)");
      if (!cat->id || cat->id[0] == '\0') {
         cat->failed = true;
         if (!hands_error(st->handler, false, ref, "category has no id")) {
            return false;
         }
         continue;
      }
      if (category_index(st, cat->id) != (long) i) {
         cat->failed = true;
         if (!hands_error(st->handler, false, ref, "category id %s is used twice", cat->id)) {
            return false;
         }
         continue;
      }
      if (!cat->name || cat->name[0] == '\0') {
         cat->failed = true;
         if (!hands_error(st->handler, false, ref, "category has no name")) {
            return false;
         }
         continue;
      }
      if (cat->parent_id && cat->parent_id[0] != '\0') {
         cat->parent = category_index(st, cat->parent_id);
         if (cat->parent < 0) {
            cat->parent = -2;
            cat->failed = true;
            if (!hands_error(st->handler, false, ref,
                             "parentId %s is not a category of the feed", cat->parent_id)) {
               return false;
            }
            continue;
         }
      }
      base = flora_catalog_slugify(cat->name, 90, NULL);
      if (!base) {
         size_t len = strlen("category-") + strlen(cat->id) + 1;

         base = malloc(len);
         if (!base) {
            flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
            return false;
         }
         snprintf(base, len, "category-%s", cat->id);
         cat->slug = flora_catalog_slugify(base, 100, NULL);
         free(base);
      } else if (slug_taken(st, i, base)) {
         size_t len = strlen(base) + strlen(cat->id) + 2;
         char *with_id = malloc(len);

         if (!with_id) {
            free(base);
            flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
            return false;
         }
         snprintf(with_id, len, "%s-%s", base, cat->id);
         cat->slug = flora_catalog_slugify(with_id, 100, NULL);
         free(with_id);
         free(base);
      } else {
         cat->slug = base;
      }
      if (!cat->slug) {
         cat->failed = true;
         if (!hands_error(st->handler, false, ref, "category id %s cannot make a slug", cat->id)) {
            return false;
         }
      }
   }
   return true;
}

/* Hands the categories to the handler, parents first. */
static bool
emit_categories(yml_state_t *st)
{
   bool progress = true;

   while (progress) {
      progress = false;
      for (size_t i = 0; i < st->n_cats; i++) {
         yml_category_t *cat = &st->cats[i];
         const yml_category_t *parent = cat->parent >= 0 ? &st->cats[cat->parent] : NULL;
         bson_t input = BSON_INITIALIZER;
         char ref[80];
         bool go_on;

         if (cat->emitted || cat->failed || (parent && !parent->emitted && !parent->failed)) {
            continue;
         }
         progress = true;
         snprintf(ref, sizeof ref, "category %s", cat->id);
         if (parent && parent->failed) {
            cat->failed = true;
            if (!hands_error(st->handler, false, ref, "its parent category %s was not imported",
                             parent->id)) {
               return false;
            }
            continue;
         }
         cat->emitted = true;
         BSON_APPEND_UTF8(&input, "slug", cat->slug);
         BSON_APPEND_UTF8(&input, "name", cat->name);
         if (parent) {
            BSON_APPEND_UTF8(&input, "parentSlug", parent->slug);
         }
         BSON_APPEND_INT32(&input, "sortOrder", (int32_t) i);
         go_on = st->handler->category(st->handler->ctx, ref, &input, NULL);
         bson_destroy(&input);
         if (!go_on) {
            return false;
         }
      }
   }
   /* what is left waits on itself: a cycle */
   for (size_t i = 0; i < st->n_cats; i++) {
      yml_category_t *cat = &st->cats[i];
      char ref[80];

      if (!cat->emitted && !cat->failed) {
         cat->failed = true;
         snprintf(ref, sizeof ref, "category %s", cat->id);
         if (!hands_error(st->handler, false, ref, "its parentId chain is a cycle")) {
            return false;
         }
      }
   }
   return true;
}

/* ---- descriptions ------------------------------------------------------------------- */

typedef struct text_buf {
   char *s;
   size_t len;
   size_t cap;
} text_buf_t;

static void
buf_add(text_buf_t *b, const char *s, size_t n)
{
   if (b->len + n + 1 > b->cap) {
      size_t cap = b->cap ? b->cap : 256;
      char *grown;

      while (cap < b->len + n + 1) {
         cap *= 2;
      }
      grown = realloc(b->s, cap);
      if (!grown) {
         return;
      }
      b->s = grown;
      b->cap = cap;
   }
   memcpy(b->s + b->len, s, n);
   b->len += n;
   b->s[b->len] = '\0';
}

static bool
is_block(const xmlNode *n)
{
   static const char *const blocks[] = {"p", "div", "li", "ul", "ol", "h1", "h2", "h3",
                                        "h4", "h5", "h6", "tr", "table", "blockquote"};

   for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
      if (is_element(n, blocks[i])) {
         return true;
      }
   }
   return false;
}

static void
html_text(const xmlNode *n, text_buf_t *b)
{
   for (; n; n = n->next) {
      if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
         if (n->content) {
            buf_add(b, (const char *) n->content, strlen((const char *) n->content));
         }
      } else if (is_element(n, "br")) {
         buf_add(b, "\n", 1);
      } else if (n->type == XML_ELEMENT_NODE) {
         if (is_element(n, "script") || is_element(n, "style")) {
            continue;
         }
         if (is_block(n)) {
            buf_add(b, "\n", 1);
         }
         html_text(n->children, b);
         if (is_block(n)) {
            buf_add(b, "\n", 1);
         }
      }
   }
}

/* Collapses blanks to one space, trims lines, keeps at most one empty line. In place. */
static void
tidy_text(char *s)
{
   size_t o = 0;
   size_t newlines = 0;
   bool space = false;

   for (size_t i = 0; s[i]; i++) {
      char c = s[i];

      if (c == '\r') {
         continue;
      }
      if (c == '\n') {
         newlines++;
         space = false;
         continue;
      }
      if (c == ' ' || c == '\t') {
         space = true;
         continue;
      }
      if (o > 0 && newlines > 0) {
         s[o++] = '\n';
         if (newlines > 1) {
            s[o++] = '\n';
         }
      } else if (o > 0 && space) {
         s[o++] = ' ';
      }
      newlines = 0;
      space = false;
      s[o++] = c;
   }
   s[o] = '\0';
}

/* The description as plain text: HTML (a CDATA section with tags, as shops send it) is
 * parsed with libxml2's HTML parser (no network) and reduced to its text. Caller frees. */
static char *
description_text(const xmlNode *offer)
{
   char *raw = child_text(offer, "description");
   htmlDocPtr html;
   text_buf_t b = {0};

   if (!raw || !strchr(raw, '<')) {
      if (raw) {
         tidy_text(raw);
      }
      return raw;
   }
   html = htmlReadMemory(raw, (int) strlen(raw), NULL, "UTF-8",
                         HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING);
   if (!html) {
      return raw;
   }
   html_text(xmlDocGetRootElement(html), &b);
   xmlFreeDoc(html);
   if (!b.s) {
      return raw;
   }
   free(raw);
   tidy_text(b.s);
   return b.s;
}

/* ---- offers ------------------------------------------------------------------------- */

static bool
valid_sku(const char *s)
{
   if (!s || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
               (s[0] >= '0' && s[0] <= '9'))) {
      return false;
   }
   for (const char *p = s; *p; p++) {
      if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("._/-", *p))) {
         return false;
      }
   }
   return strlen(s) <= 64;
}

/* A folded comparison of a param name with any of names. */
static bool
param_is(const char *folded, const char *const *names)
{
   for (size_t i = 0; names[i]; i++) {
      if (strcmp(folded, names[i]) == 0) {
         return true;
      }
   }
   return false;
}

/* Centimetres from a param value and unit (cm default, mm, m); 0 when not a length. */
static int32_t
length_cm(const char *value, const char *unit)
{
   char *folded_unit = unit ? flora_text_fold(unit, strlen(unit)) : NULL;
   double v;
   char *end = NULL;
   int32_t cm = 0;

   v = strtod(value, &end);
   if (end && end != value && *end == '\0' && v > 0) {
      if (folded_unit && strcmp(folded_unit, "мм") == 0) {
         v /= 10;
      } else if (folded_unit && (strcmp(folded_unit, "м") == 0 || strcmp(folded_unit, "m") == 0)) {
         v *= 100;
      }
      if (v >= 1 && v <= 1000) {
         cm = (int32_t) (v + 0.5);
      }
   }
   free(folded_unit);
   return cm;
}

typedef struct offer_params {
   int32_t height;
   int32_t width;
   text_buf_t composition; /* "Состав" text and "Flower - N шт" parts, ';'-joined */
} offer_params_t;

static void
read_params(const xmlNode *offer, offer_params_t *op)
{
   static const char *const heights[] = {"высота", "height", NULL};
   static const char *const widths[] = {"ширина", "width", "диаметр", "diameter", NULL};
   static const char *const compositions[] = {"состав", "composition", "состав букета", NULL};

   for (const xmlNode *c = offer->children; c; c = c->next) {
      char *name, *unit, *value, *folded;

      if (!is_element(c, "param")) {
         continue;
      }
      name = attr_text(c, "name");
      unit = attr_text(c, "unit");
      value = node_text(c);
      folded = name ? flora_text_fold(name, strlen(name)) : NULL;
      if (folded && value && value[0] != '\0') {
         char *folded_unit = unit ? flora_text_fold(unit, strlen(unit)) : NULL;

         if (param_is(folded, heights)) {
            op->height = length_cm(value, unit);
         } else if (param_is(folded, widths)) {
            op->width = length_cm(value, unit);
         } else if (param_is(folded, compositions)) {
            if (op->composition.len) {
               buf_add(&op->composition, "; ", 2);
            }
            buf_add(&op->composition, value, strlen(value));
         } else if (folded_unit && (strcmp(folded_unit, "шт") == 0 ||
                                    strcmp(folded_unit, "шт.") == 0)) {
            if (op->composition.len) {
               buf_add(&op->composition, "; ", 2);
            }
            buf_add(&op->composition, name, strlen(name));
            buf_add(&op->composition, " - ", 3);
            buf_add(&op->composition, value, strlen(value));
            buf_add(&op->composition, " шт", strlen(" шт"));
         }
         free(folded_unit);
      }
      free(name);
      free(unit);
      free(value);
      free(folded);
   }
}

static char *
offer_name(const xmlNode *offer)
{
   char *name = child_text(offer, "name");
   text_buf_t b = {0};
   static const char *const parts[] = {"typePrefix", "vendor", "model"};

   if (name && name[0] != '\0') {
      return name;
   }
   free(name);
   for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
      char *t = child_text(offer, parts[i]);

      if (t && t[0] != '\0') {
         if (b.len) {
            buf_add(&b, " ", 1);
         }
         buf_add(&b, t, strlen(t));
      }
      free(t);
   }
   return b.s;
}

static bool
convert_offer(yml_state_t *st, const xmlNode *offer, const char *id, const char *ref,
              bson_t *input, char *reason, size_t reason_len)
{
   char *name = NULL, *price_text = NULL, *old_text = NULL, *currency = NULL;
   char *category = NULL, *description = NULL, *vendor_code = NULL, *count_text = NULL;
   char *available = NULL;
   offer_params_t params = {0};
   int64_t price = 0, old = -1;
   int32_t stock = -1;
   const char *currency_code = "RUB";
   text_buf_t pictures = {0};
   bson_t variants, variant, source;
   char why[300];
   bool ok = false;

   name = offer_name(offer);
   if (!name || name[0] == '\0') {
      snprintf(reason, reason_len, "offer has no <name> (or <model>)");
      goto cleanup;
   }
   price_text = child_text(offer, "price");
   if (!price_text) {
      snprintf(reason, reason_len, "offer has no <price>");
      goto cleanup;
   }
   if (!flora__import_parse_money(price_text, &price, why, sizeof why)) {
      snprintf(reason, reason_len, "price %s", why);
      goto cleanup;
   }
   old_text = child_text(offer, "oldprice");
   if (old_text && old_text[0] != '\0' &&
       !flora__import_parse_money(old_text, &old, why, sizeof why)) {
      snprintf(reason, reason_len, "oldprice %s", why);
      goto cleanup;
   }
   currency = child_text(offer, "currencyId");
   if (currency && currency[0] != '\0') {
      if (strcmp(currency, "RUR") == 0 || strcmp(currency, "RUB") == 0) {
         currency_code = "RUB";
      } else if (strcmp(currency, "USD") == 0) {
         currency_code = "USD";
      } else if (strcmp(currency, "EUR") == 0) {
         currency_code = "EUR";
      } else {
         snprintf(reason, reason_len, "currency %s is not supported (RUB, USD, EUR)", currency);
         goto cleanup;
      }
   }
   count_text = child_text(offer, "count");
   if (count_text && count_text[0] != '\0' &&
       !flora__import_parse_count(count_text, &stock, why, sizeof why)) {
      snprintf(reason, reason_len, "count %s", why);
      goto cleanup;
   }
   available = attr_text(offer, "available");
   if (available && strcmp(available, "false") == 0) {
      stock = 0;
   }
   category = child_text(offer, "categoryId");
   description = description_text(offer);
   vendor_code = child_text(offer, "vendorCode");
   read_params(offer, &params);

   BSON_APPEND_UTF8(input, "sku", id);
   BSON_APPEND_UTF8(input, "name", name);
   BSON_APPEND_UTF8(input, "description", description ? description : "");
   if (category && category[0] != '\0') {
      long idx = category_index(st, category);
      bson_t arr;

      if (idx < 0) {
         snprintf(reason, reason_len, "categoryId %s is not a category of the feed", category);
         goto cleanup;
      }
      if (!st->cats[idx].emitted) {
         snprintf(reason, reason_len, "category %s was not imported", category);
         goto cleanup;
      }
      BSON_APPEND_ARRAY_BEGIN(input, "categorySlugs", &arr);
      BSON_APPEND_UTF8(&arr, "0", st->cats[idx].slug);
      bson_append_array_end(input, &arr);
   }

   BSON_APPEND_ARRAY_BEGIN(input, "variants", &variants);
   BSON_APPEND_DOCUMENT_BEGIN(&variants, "0", &variant);
   BSON_APPEND_UTF8(&variant, "sku", valid_sku(vendor_code) ? vendor_code : id);
   BSON_APPEND_UTF8(&variant, "name", "Стандарт");
   BSON_APPEND_INT64(&variant, "price", price);
   if (old > price) {
      BSON_APPEND_INT64(&variant, "compareAtPrice", old);
   } else {
      BSON_APPEND_NULL(&variant, "compareAtPrice");
   }
   if (stock >= 0) {
      BSON_APPEND_INT32(&variant, "stock", stock);
   }
   flora__import_append_composition(&variant, "composition",
                                    params.composition.s ? params.composition.s : "");
   if (params.height > 0) {
      BSON_APPEND_INT32(&variant, "heightCm", params.height);
   } else {
      BSON_APPEND_NULL(&variant, "heightCm");
   }
   if (params.width > 0) {
      BSON_APPEND_INT32(&variant, "widthCm", params.width);
   } else {
      BSON_APPEND_NULL(&variant, "widthCm");
   }
   bson_append_document_end(&variants, &variant);
   bson_append_array_end(input, &variants);
   BSON_APPEND_UTF8(input, "currency", currency_code);

   for (const xmlNode *c = offer->children; c; c = c->next) {
      char *url;

      if (!is_element(c, "picture")) {
         continue;
      }
      url = node_text(c);
      if (url && url[0] != '\0') {
         if (pictures.len) {
            buf_add(&pictures, ";", 1);
         }
         buf_add(&pictures, url, strlen(url));
      }
      free(url);
   }
   if (!flora__import_append_images(input, "images", pictures.s ? pictures.s : "", why,
                                    sizeof why)) {
      snprintf(reason, reason_len, "picture: %s", why);
      goto cleanup;
   }
   {
      const char *texts[] = {name, description};

      flora__import_append_inferred_tags(input, "tags", texts, 2);
   }
   BSON_APPEND_DOCUMENT_BEGIN(input, "source", &source);
   BSON_APPEND_UTF8(&source, "format", "yml");
   BSON_APPEND_UTF8(&source, "ref", ref);
   bson_append_document_end(input, &source);
   ok = true;

cleanup:
   free(name);
   free(price_text);
   free(old_text);
   free(currency);
   free(category);
   free(description);
   free(vendor_code);
   free(count_text);
   free(available);
   free(params.composition.s);
   free(pictures.s);
   return ok;
}

static bool
read_offers(yml_state_t *st, const xmlNode *shop)
{
   const xmlNode *offers = first_child(shop, "offers");
   size_t position = 0;

   for (const xmlNode *o = offers ? offers->children : NULL; o; o = o->next) {
      char *id;
      char ref[120];
      char reason[512];
      bson_t input = BSON_INITIALIZER;
      bool go_on;

      if (!is_element(o, "offer")) {
         continue;
      }
      position++;
      id = attr_text(o, "id");
      if (!id || id[0] == '\0') {
         snprintf(ref, sizeof ref, "offer #%zu", position);
         free(id);
         bson_destroy(&input);
         if (!hands_error(st->handler, true, ref, "offer has no id attribute")) {
            return false;
         }
         continue;
      }
      snprintf(ref, sizeof ref, "offer %s", id);
      if (convert_offer(st, o, id, ref, &input, reason, sizeof reason)) {
         go_on = st->handler->product(st->handler->ctx, ref, &input, NULL);
      } else {
         go_on = hands_error(st->handler, true, ref, "%s", reason);
      }
      bson_destroy(&input);
      free(id);
      if (!go_on) {
         return false;
      }
   }
   return true;
}

/* The first error libxml2 reports (the last one is usually a consequence of it). */
typedef struct first_error {
   bool set;
   int line;
   char message[300];
} first_error_t;

static void
keep_first_error(void *data, xmlErrorPtr e)
{
   xmlParserCtxtPtr ctxt = data;
   first_error_t *fe = ctxt ? ctxt->_private : NULL;

   if (!fe || fe->set || !e || e->level < XML_ERR_ERROR) {
      return;
   }
   fe->set = true;
   fe->line = e->line;
   snprintf(fe->message, sizeof fe->message, "%s", e->message ? e->message : "malformed XML");
   fe->message[strcspn(fe->message, "\n")] = '\0';
}

bool
flora__import_yml(const char *path, const flora_import_options_t *options,
                  const flora__import_handler_t *handler, flora_error_t *error)
{
   yml_state_t st = {.handler = handler};
   xmlParserCtxtPtr ctxt = NULL;
   first_error_t first = {0};
   xmlDocPtr doc = NULL;
   const xmlNode *root, *shop;
   char *text = NULL;
   size_t len = 0;
   bool ok = false;

   (void) options;
   text = flora__import_read_file(path, &len, error);
   if (!text) {
      return false;
   }
   if (len > INT32_MAX) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_TOO_LARGE, "%s: too large", path);
      goto cleanup;
   }
   ctxt = xmlNewParserCtxt();
   if (!ctxt) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "libxml2: out of memory");
      goto cleanup;
   }
   ctxt->_private = &first;
   ctxt->sax->serror = keep_first_error;
   /* No XML_PARSE_NOENT (entity substitution), XML_PARSE_DTDLOAD or XML_PARSE_HUGE. */
   doc = xmlCtxtReadMemory(ctxt, text, (int) len, path, NULL,
                           XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
   if (!doc) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "%s: line %d: %s", path,
                      first.line, first.set ? first.message : "malformed XML");
      goto cleanup;
   }
   root = xmlDocGetRootElement(doc);
   if (!is_element(root, "yml_catalog")) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "%s: not a YML feed (the root element is <%s>, not <yml_catalog>)", path,
                      root ? (const char *) root->name : "");
      goto cleanup;
   }
   shop = first_child(root, "shop");
   if (!shop) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "%s: <yml_catalog> has no <shop>", path);
      goto cleanup;
   }
   ok = read_categories(&st, shop, error) && emit_categories(&st) && read_offers(&st, shop);

cleanup:
   free_categories(&st);
   xmlFreeDoc(doc);
   xmlFreeParserCtxt(ctxt);
   free(text);
   return ok;
}
