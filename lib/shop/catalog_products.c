/* Products: storefront queries and admin writes (include/flora/catalog.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "flora/catalog.h"
#include "flora/shop.h"
#include "flora/text.h"
#include "shop/shop_private.h"

#define PRODUCTS "products"
#define CATEGORIES "categories"
#define SLUG_MAX 150

/* Input fields a client may send; everything else the catalog derives. */
static const char *const derived_fields[] = {"_id", "categoryTree", "price", "compareAtPrice",
                                             "inStock", "flowers", "flowerTerms", "rating",
                                             "popularity", "createdAt", "updatedAt",
                                             "categorySlugs", "slug", NULL};

bool
flora_product_sort_parse(const char *name, flora_product_sort_t *out)
{
   static const struct {
      const char *name;
      flora_product_sort_t sort;
   } names[] = {
      {"price", FLORA_SORT_PRICE_ASC},       {"price_asc", FLORA_SORT_PRICE_ASC},
      {"-price", FLORA_SORT_PRICE_DESC},     {"price_desc", FLORA_SORT_PRICE_DESC},
      {"popularity", FLORA_SORT_POPULARITY}, {"newest", FLORA_SORT_NEWEST},
      {"rating", FLORA_SORT_RATING},         {"relevance", FLORA_SORT_RELEVANCE},
   };

   for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      if (strcmp(names[i].name, name) == 0) {
         *out = names[i].sort;
         return true;
      }
   }
   return false;
}

/* ---- derivation ------------------------------------------------------------------ */

typedef struct string_set {
   char **items;
   size_t len;
   size_t cap;
} string_set_t;

static void
string_set_add(string_set_t *set, const char *s)
{
   for (size_t i = 0; i < set->len; i++) {
      if (strcmp(set->items[i], s) == 0) {
         return;
      }
   }
   if (set->len == set->cap) {
      set->cap = set->cap ? set->cap * 2 : 16;
      set->items = realloc(set->items, set->cap * sizeof *set->items);
   }
   set->items[set->len++] = strdup(s);
}

static void
string_set_free(string_set_t *set)
{
   for (size_t i = 0; i < set->len; i++) {
      free(set->items[i]);
   }
   free(set->items);
   memset(set, 0, sizeof *set);
}

static void
append_string_array(bson_t *doc, const char *key, const string_set_t *set)
{
   bson_t arr;
   char idx[16];
   const char *k;

   BSON_APPEND_ARRAY_BEGIN(doc, key, &arr);
   for (size_t i = 0; i < set->len; i++) {
      bson_uint32_to_string((uint32_t) i, &k, idx, sizeof idx);
      BSON_APPEND_UTF8(&arr, k, set->items[i]);
   }
   bson_append_array_end(doc, &arr);
}

static bool
add_term(void *ctx, const char *term, size_t position)
{
   (void) position;
   string_set_add(ctx, term);
   return true;
}

/* The oid's of categoryIds (or of categorySlugs resolved) plus their ancestors. */
static bool
derive_categories(flora_store_t *store, const bson_t *input, bson_t *out, bson_t *problems,
                  flora_error_t *error)
{
   bson_iter_t it, arr;
   bson_oid_t ids[220];
   size_t n_ids = 0, n_tree = 0;
   bson_oid_t tree[220];
   bool ok = true;
   bson_t ids_doc, tree_doc;
   char idx[16];
   const char *k;

   if (bson_iter_init_find(&it, input, "categorySlugs") && BSON_ITER_HOLDS_ARRAY(&it) &&
       bson_iter_recurse(&it, &arr)) {
      while (bson_iter_next(&arr)) {
         bson_t cat;
         bool found = false;
         char path[64];

         snprintf(path, sizeof path, "categorySlugs.%s", bson_iter_key(&arr));
         if (!BSON_ITER_HOLDS_UTF8(&arr)) {
            ok = flora__shop_invalid(problems, error, path, "must be a string");
            continue;
         }
         if (!flora__shop_find_by_string(store, CATEGORIES, "slug", bson_iter_utf8(&arr, NULL), &cat,
                                         &found, error)) {
            bson_destroy(&cat);
            return false;
         }
         if (!found) {
            ok = flora__shop_invalid(problems, error, path, "no category has this slug");
         } else if (n_ids < sizeof ids / sizeof ids[0] && bson_iter_init_find(&it, &cat, "_id")) {
            bson_oid_copy(bson_iter_oid(&it), &ids[n_ids++]);
         }
         bson_destroy(&cat);
      }
   } else if (bson_iter_init_find(&it, input, "categoryIds") && BSON_ITER_HOLDS_ARRAY(&it) &&
              bson_iter_recurse(&it, &arr)) {
      while (bson_iter_next(&arr)) {
         if (BSON_ITER_HOLDS_OID(&arr) && n_ids < sizeof ids / sizeof ids[0]) {
            bson_oid_copy(bson_iter_oid(&arr), &ids[n_ids++]);
         } else if (BSON_ITER_HOLDS_UTF8(&arr) && bson_oid_is_valid(bson_iter_utf8(&arr, NULL), strlen(bson_iter_utf8(&arr, NULL))) &&
                    n_ids < sizeof ids / sizeof ids[0]) {
            bson_oid_init_from_string(&ids[n_ids++], bson_iter_utf8(&arr, NULL));
         } else {
            char path[64];

            snprintf(path, sizeof path, "categoryIds.%s", bson_iter_key(&arr));
            ok = flora__shop_invalid(problems, error, path, "must be a category id");
         }
      }
   }
   for (size_t i = 0; i < n_ids; i++) {
      bson_t filter = BSON_INITIALIZER, cat;
      bool found = false;
      bson_iter_t anc, a;

      BSON_APPEND_OID(&filter, "_id", &ids[i]);
      if (!flora_store_find_one(store, CATEGORIES, &filter, NULL, &cat, &found, error)) {
         bson_destroy(&filter);
         bson_destroy(&cat);
         return false;
      }
      bson_destroy(&filter);
      if (!found) {
         char path[64];

         snprintf(path, sizeof path, "categoryIds.%zu", i);
         ok = flora__shop_invalid(problems, error, path, "no category has this id");
         bson_destroy(&cat);
         continue;
      }
      if (bson_iter_init_find(&anc, &cat, "ancestors") && bson_iter_recurse(&anc, &a)) {
         while (bson_iter_next(&a)) {
            bson_iter_t aid;

            if (bson_iter_recurse(&a, &aid) && bson_iter_find(&aid, "_id") && BSON_ITER_HOLDS_OID(&aid) &&
                n_tree < sizeof tree / sizeof tree[0]) {
               bson_oid_copy(bson_iter_oid(&aid), &tree[n_tree++]);
            }
         }
      }
      if (n_tree < sizeof tree / sizeof tree[0]) {
         bson_oid_copy(&ids[i], &tree[n_tree++]);
      }
      bson_destroy(&cat);
   }
   if (!ok) {
      return false;
   }
   BSON_APPEND_ARRAY_BEGIN(out, "categoryIds", &ids_doc);
   for (size_t i = 0; i < n_ids; i++) {
      bson_uint32_to_string((uint32_t) i, &k, idx, sizeof idx);
      BSON_APPEND_OID(&ids_doc, k, &ids[i]);
   }
   bson_append_array_end(out, &ids_doc);
   BSON_APPEND_ARRAY_BEGIN(out, "categoryTree", &tree_doc);
   for (size_t i = 0, n = 0; i < n_tree; i++) {
      bool dup = false;

      for (size_t j = 0; j < i; j++) {
         dup = dup || bson_oid_equal(&tree[i], &tree[j]);
      }
      if (!dup) {
         bson_uint32_to_string((uint32_t) n++, &k, idx, sizeof idx);
         BSON_APPEND_OID(&tree_doc, k, &tree[i]);
      }
   }
   bson_append_array_end(out, &tree_doc);
   return true;
}

static int64_t
iter_int(const bson_iter_t *it, int64_t fallback)
{
   if (BSON_ITER_HOLDS_INT32(it)) {
      return bson_iter_int32(it);
   }
   if (BSON_ITER_HOLDS_INT64(it)) {
      return bson_iter_int64(it);
   }
   return fallback;
}

/* price, compareAtPrice, inStock, flowers, flowerTerms from the variants; and the
 * variants themselves, with stock carried over from `existing` when the input has none. */
static bool
derive_variants(const bson_t *input, const bson_t *existing, bson_t *out, bson_t *problems, bool *invalid,
                flora_error_t *error)
{
   bson_iter_t it, arr, field;
   int64_t best_price = -1, best_compare = -1;
   bool in_stock = false;
   string_set_t flowers = {0}, terms = {0}, skus = {0};
   bool ok = true, dup_sku = false;

   if (!bson_iter_init_find(&it, input, "variants")) {
      return true; /* schema validation reports the missing field */
   }
   if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr)) {
      bson_append_iter(out, "variants", -1, &it);
      return true;
   }
   {
      bson_t variants;

      BSON_APPEND_ARRAY_BEGIN(out, "variants", &variants);
      while (bson_iter_next(&arr)) {
         bson_t v;
         int64_t price = -1, compare = -1, stock = -1;
         const char *sku = NULL;

         if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) {
            bson_append_iter(&variants, bson_iter_key(&arr), -1, &arr);
            continue;
         }
         if (bson_iter_recurse(&arr, &field) && bson_iter_find(&field, "sku") && BSON_ITER_HOLDS_UTF8(&field)) {
            const char *this_sku = bson_iter_utf8(&field, NULL);

            for (size_t k = 0; k < skus.len; k++) {
               if (strcmp(skus.items[k], this_sku) == 0) {
                  char path[64];

                  snprintf(path, sizeof path, "variants.%s.sku", bson_iter_key(&arr));
                  flora__shop_invalid(problems, error, path, "is the SKU of another variant of this product");
                  dup_sku = true;
               }
            }
            string_set_add(&skus, this_sku);
         }
         BSON_APPEND_DOCUMENT_BEGIN(&variants, bson_iter_key(&arr), &v);
         bson_iter_recurse(&arr, &field);
         while (bson_iter_next(&field)) {
            const char *key = bson_iter_key(&field);

            if (strcmp(key, "price") == 0) {
               price = iter_int(&field, -1);
            } else if (strcmp(key, "compareAtPrice") == 0) {
               compare = iter_int(&field, -1);
            } else if (strcmp(key, "stock") == 0) {
               stock = iter_int(&field, -1);
            } else if (strcmp(key, "sku") == 0 && BSON_ITER_HOLDS_UTF8(&field)) {
               sku = bson_iter_utf8(&field, NULL);
            } else if (strcmp(key, "composition") == 0 && BSON_ITER_HOLDS_ARRAY(&field)) {
               bson_iter_t comp, stem;

               bson_iter_recurse(&field, &comp);
               while (bson_iter_next(&comp)) {
                  if (BSON_ITER_HOLDS_DOCUMENT(&comp) && bson_iter_recurse(&comp, &stem) &&
                      bson_iter_find(&stem, "flower") && BSON_ITER_HOLDS_UTF8(&stem)) {
                     uint32_t len;
                     const char *name = bson_iter_utf8(&stem, &len);
                     char *folded = flora_text_fold(name, len);

                     if (folded) {
                        string_set_add(&flowers, folded);
                        free(folded);
                     }
                     if (!flora_text_terms(name, len, "russian", add_term, &terms, error)) {
                        ok = false;
                     }
                  }
               }
            }
            if (strcmp(key, "stock") != 0) {
               bson_append_iter(&v, key, -1, &field);
            }
         }
         if (stock < 0 && existing && sku) {
            /* carry the stored stock of the same variant over */
            bson_iter_t ev, evs;

            if (bson_iter_init_find(&ev, existing, "variants") && bson_iter_recurse(&ev, &evs)) {
               while (bson_iter_next(&evs)) {
                  bson_iter_t f;
                  bson_iter_t s;

                  if (bson_iter_recurse(&evs, &f) && bson_iter_find(&f, "sku") && BSON_ITER_HOLDS_UTF8(&f) &&
                      strcmp(bson_iter_utf8(&f, NULL), sku) == 0 && bson_iter_recurse(&evs, &s) &&
                      bson_iter_find(&s, "stock")) {
                     stock = iter_int(&s, -1);
                  }
               }
            }
         }
         if (bson_iter_recurse(&arr, &field) && bson_iter_find(&field, "stock")) {
            if (stock >= 0 && (BSON_ITER_HOLDS_INT32(&field) || BSON_ITER_HOLDS_INT64(&field))) {
               BSON_APPEND_INT32(&v, "stock", (int32_t) (stock > INT32_MAX ? INT32_MAX : stock));
            } else {
               bson_append_iter(&v, "stock", -1, &field); /* let validation name the problem */
            }
         } else {
            BSON_APPEND_INT32(&v, "stock", stock > 0 ? (int32_t) (stock > INT32_MAX ? INT32_MAX : stock) : 0);
         }
         bson_append_document_end(&variants, &v);
         if (price >= 0 && (best_price < 0 || price < best_price)) {
            best_price = price;
            best_compare = compare;
         }
         in_stock = in_stock || stock > 0;
      }
      bson_append_array_end(out, &variants);
   }
   if (best_price >= 0) {
      BSON_APPEND_INT64(out, "price", best_price);
   }
   if (best_compare > best_price) {
      BSON_APPEND_INT64(out, "compareAtPrice", best_compare);
   } else {
      BSON_APPEND_NULL(out, "compareAtPrice");
   }
   BSON_APPEND_BOOL(out, "inStock", in_stock);
   append_string_array(out, "flowers", &flowers);
   append_string_array(out, "flowerTerms", &terms);
   string_set_free(&flowers);
   string_set_free(&terms);
   string_set_free(&skus);
   *invalid = dup_sku;
   return ok;
}

/* A slug not used by another product: base, base-2, base-3, ... */
static bool
unique_slug(flora_store_t *store, const char *base, const bson_oid_t *self, char *out, size_t out_len,
            flora_error_t *error)
{
   for (int n = 1; n < 1000; n++) {
      bson_t doc;
      bool found = false;
      bson_iter_t it;
      bool mine;

      if (n == 1) {
         snprintf(out, out_len, "%s", base);
      } else {
         snprintf(out, out_len, "%s-%d", base, n);
      }
      if (!flora__shop_find_by_string(store, PRODUCTS, "slug", out, &doc, &found, error)) {
         bson_destroy(&doc);
         return false;
      }
      mine = found && self && bson_iter_init_find(&it, &doc, "_id") && BSON_ITER_HOLDS_OID(&it) &&
             bson_oid_equal(bson_iter_oid(&it), self);
      bson_destroy(&doc);
      if (!found || mine) {
         return true;
      }
   }
   flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT, "slug: no free slug for '%s'", base);
   return false;
}

/* A derived field (price from the variants, slug from the name) fails only because its
 * source failed; when the source's own problem is listed, the derived one is noise. */
static void
drop_derived_problems(bson_t *problems)
{
   static const char *const derived[] = {"price", "compareAtPrice", "inStock", "flowers",
                                          "flowerTerms", "categoryTree", "slug"};
   bson_t kept = BSON_INITIALIZER;
   bson_iter_t it;
   bool has_source = false;
   uint32_t n = 0;

   if (!problems || !bson_iter_init(&it, problems)) {
      return;
   }
   while (bson_iter_next(&it)) {
      bson_iter_t p;
      bool is_derived = false;

      if (bson_iter_recurse(&it, &p) && bson_iter_find(&p, "path") && BSON_ITER_HOLDS_UTF8(&p)) {
         for (size_t i = 0; i < sizeof derived / sizeof derived[0]; i++) {
            is_derived = is_derived || strcmp(bson_iter_utf8(&p, NULL), derived[i]) == 0;
         }
      }
      has_source = has_source || !is_derived;
   }
   if (!has_source) {
      return;
   }
   bson_iter_init(&it, problems);
   while (bson_iter_next(&it)) {
      bson_iter_t p, r;
      bool drop = false;

      if (bson_iter_recurse(&it, &p) && bson_iter_find(&p, "path") && BSON_ITER_HOLDS_UTF8(&p) &&
          bson_iter_recurse(&it, &r) && bson_iter_find(&r, "reason") && BSON_ITER_HOLDS_UTF8(&r)) {
         for (size_t i = 0; i < sizeof derived / sizeof derived[0]; i++) {
            /* a slug the client sent and got wrong stays; a missing derived one goes */
            drop = drop || (strcmp(bson_iter_utf8(&p, NULL), derived[i]) == 0 &&
                            strcmp(bson_iter_utf8(&r, NULL), "is required") == 0);
         }
      }
      if (!drop) {
         char idx[16];
         const char *k;

         bson_uint32_to_string(n++, &k, idx, sizeof idx);
         bson_append_iter(&kept, k, -1, &it);
      }
   }
   bson_reinit(problems);
   bson_iter_init(&it, &kept);
   while (bson_iter_next(&it)) {
      bson_append_iter(problems, bson_iter_key(&it), -1, &it);
   }
   bson_destroy(&kept);
}

/* Builds the document to store from input (and the stored one, when updating). */
static bool
build_product(flora_store_t *store, const bson_t *input, const bson_t *existing, int64_t now_ms,
              bson_t *out, bson_t *problems, flora_error_t *error)
{
   bson_t draft = BSON_INITIALIZER;
   bson_iter_t it;
   const bson_oid_t *self = NULL;
   char slug[SLUG_MAX + 16];
   bool ok = true;
   bool have_slug = false;

   bson_init(out);
   if (existing && bson_iter_init_find(&it, existing, "_id") && BSON_ITER_HOLDS_OID(&it)) {
      self = bson_iter_oid(&it);
      BSON_APPEND_OID(&draft, "_id", self);
   }
   /* slug: the input's, else the stored one, else from the name */
   if (bson_iter_init_find(&it, input, "slug") && BSON_ITER_HOLDS_UTF8(&it)) {
      snprintf(slug, sizeof slug, "%s", bson_iter_utf8(&it, NULL));
      have_slug = true;
   } else if (bson_iter_init_find(&it, input, "slug")) {
      ok = flora__shop_invalid(problems, error, "slug", "must be a string");
   } else if (existing && bson_iter_init_find(&it, existing, "slug") && BSON_ITER_HOLDS_UTF8(&it)) {
      snprintf(slug, sizeof slug, "%s", bson_iter_utf8(&it, NULL));
      have_slug = true;
   } else if (bson_iter_init_find(&it, input, "name") && BSON_ITER_HOLDS_UTF8(&it)) {
      flora_error_t slug_error = {0};
      char *base = flora_catalog_slugify(bson_iter_utf8(&it, NULL), SLUG_MAX, &slug_error);

      if (base) {
         have_slug = unique_slug(store, base, self, slug, sizeof slug, error);
         free(base);
         if (!have_slug) {
            bson_destroy(&draft);
            return false;
         }
      } else {
         ok = flora__shop_invalid(problems, error, "name", "has no letters or digits for a slug");
      }
   }
   if (have_slug) {
      BSON_APPEND_UTF8(&draft, "slug", slug);
   }
   flora__shop_copy_except(input, &draft, (const char *const[]){"_id", "slug", "categoryIds",
                                                                "categorySlugs", "categoryTree",
                                                                "variants", "price", "compareAtPrice",
                                                                "inStock", "flowers", "flowerTerms",
                                                                "rating", "popularity", "createdAt",
                                                                "updatedAt", NULL});
   if (!derive_categories(store, input, &draft, problems, error)) {
      if (error->domain != FLORA_DOMAIN_VALIDATION) {
         bson_destroy(&draft);
         return false;
      }
      ok = false;
   }
   {
      bool invalid_variants = false;

      if (!derive_variants(input, existing, &draft, problems, &invalid_variants, error)) {
         bson_destroy(&draft);
         return false;
      }
      ok = ok && !invalid_variants;
   }
   if (existing) {
      static const char *const kept[] = {"rating", "popularity", "createdAt"};

      for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
         if (bson_iter_init_find(&it, existing, kept[i])) {
            bson_append_iter(&draft, kept[i], -1, &it);
         }
      }
   }
   if (!ok) {
      /* report schema problems too, so the client sees every failing field at once */
      bson_t prepared;

      if (flora_schema_prepare_insert(&flora_schema_products, &draft, now_ms, &prepared, NULL)) {
         flora_error_t schema_error;

         flora_schema_validate(&flora_schema_products, &prepared, problems, &schema_error);
      }
      drop_derived_problems(problems);
      bson_destroy(&prepared);
      bson_destroy(&draft);
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "product is invalid");
      return false;
   }
   bson_destroy(out);
   if (!flora_schema_prepare_insert(&flora_schema_products, &draft, now_ms, out, error)) {
      bson_destroy(&draft);
      return false;
   }
   bson_destroy(&draft);
   if (!flora_schema_validate(&flora_schema_products, out, problems, error)) {
      drop_derived_problems(problems);
      return false;
   }
   return true;
}

/* ---- writes ---------------------------------------------------------------------- */

bool
flora_catalog_create_product(flora_store_t *store, const bson_t *input, bson_t *problems, bson_t *out,
                             flora_error_t *error)
{
   bson_t doc;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(input);
   if (out) {
      bson_init(out);
   }
   /* A slug made from the name is checked free and then inserted; a concurrent create of
    * a same-named product can take it in between: then build again, and the next free
    * suffix is found. A slug the client chose is not changed. */
   for (int attempt = 0;; attempt++) {
      bson_t salted = BSON_INITIALIZER;
      const bson_t *source = input;
      bson_iter_t name;

      /* Many creators racing for one name all probe the same next suffix; after a few
       * rounds each takes a random one instead, so every round makes progress. */
      if (attempt >= 3 && bson_iter_init_find(&name, input, "name") && BSON_ITER_HOLDS_UTF8(&name)) {
         char *base = flora_catalog_slugify(bson_iter_utf8(&name, NULL), SLUG_MAX, NULL);
         char slug[SLUG_MAX + 16];

         if (base) {
            snprintf(slug, sizeof slug, "%s-%08x", base, randombytes_random());
            free(base);
            bson_concat(&salted, input);
            BSON_APPEND_UTF8(&salted, "slug", slug);
            source = &salted;
         }
      }
      ok = build_product(store, source, NULL, flora__shop_now_ms(), &doc, problems, error);
      bson_destroy(&salted);
      if (!ok) {
         bson_destroy(&doc);
         return false;
      }
      ok = flora_store_insert_one(store, PRODUCTS, &doc, NULL, NULL, error);
      if (ok || attempt >= 12 || bson_has_field(input, "slug") || error->code != FLORA_STORE_DUPLICATE_KEY ||
          !strstr(error->message, "index: slug_1 ")) {
         break;
      }
      bson_destroy(&doc);
   }
   if (!ok) {
      flora__shop_map_duplicate(error, "a product");
   } else if (out) {
      bson_destroy(out);
      bson_copy_to(&doc, out);
   }
   bson_destroy(&doc);
   return ok;
}

/* True when a and b have the same top-level fields with equal values, in any order: a
 * rebuilt document appends the fields it keeps from the stored one (rating, createdAt)
 * and the schema defaults in another order than the first insert did. */
static bool
same_fields(const bson_t *a, const bson_t *b)
{
   bson_iter_t ia, ib;

   if (bson_count_keys(a) != bson_count_keys(b) || !bson_iter_init(&ia, a)) {
      return false;
   }
   while (bson_iter_next(&ia)) {
      bson_t da = BSON_INITIALIZER, db = BSON_INITIALIZER;
      bool equal;

      if (!bson_iter_init_find(&ib, b, bson_iter_key(&ia))) {
         return false;
      }
      bson_append_iter(&da, "v", 1, &ia);
      bson_append_iter(&db, "v", 1, &ib);
      equal = bson_equal(&da, &db);
      bson_destroy(&da);
      bson_destroy(&db);
      if (!equal) {
         return false;
      }
   }
   return true;
}

/* Replaces the stored product with the document built from input; *changed false when
 * only updatedAt would differ. Runs inside a transaction. */
static bool
replace_product(flora_store_t *txn, const bson_t *existing, const bson_t *input, bson_t *problems,
                bson_t *out, bool *changed, flora_error_t *error)
{
   bson_t doc, filter = BSON_INITIALIZER;
   bson_iter_t it;
   int64_t stored_updated = 0;
   bool ok = false;

   if (bson_iter_init_find(&it, existing, "updatedAt") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
      stored_updated = bson_iter_date_time(&it);
   }
   /* Built with the stored updatedAt first, so an unchanged product compares equal. */
   if (!build_product(txn, input, existing, stored_updated, &doc, problems, error)) {
      goto cleanup;
   }
   {
      bson_t stamped = BSON_INITIALIZER;

      /* createdAt is carried over from existing; only updatedAt is the build's */
      *changed = !same_fields(&doc, existing);
      flora__shop_copy_except(&doc, &stamped, (const char *const[]){"updatedAt", NULL});
      BSON_APPEND_DATE_TIME(&stamped, "updatedAt", *changed ? flora__shop_now_ms() : stored_updated);
      bson_destroy(&doc);
      doc = stamped;
   }
   if (!*changed) {
      ok = true;
      goto cleanup;
   }
   bson_iter_init_find(&it, existing, "_id");
   bson_append_iter(&filter, "_id", -1, &it);
   if (!flora_store_replace_one(txn, PRODUCTS, &filter, &doc, NULL, NULL, error)) {
      flora__shop_map_duplicate(error, "a product");
      goto cleanup;
   }
   ok = true;
cleanup:
   if (ok && out) {
      bson_destroy(out);
      bson_copy_to(&doc, out);
   }
   bson_destroy(&doc);
   bson_destroy(&filter);
   return ok;
}

typedef struct upsert_ctx {
   const bson_t *input;
   const char *slug; /* update by slug, else upsert by sku */
   bson_t *problems;
   bson_t *out;
   bool created;
   bool changed;
   bool not_found;
} upsert_ctx_t;

static bool
upsert_txn(flora_store_t *txn, void *data, flora_error_t *error)
{
   upsert_ctx_t *ctx = data;
   bson_t existing;
   bson_iter_t it;
   bool found = false;
   bool ok;

   if (ctx->problems) {
      /* a retried transaction starts again with no problems */
      bson_reinit(ctx->problems);
   }
   if (ctx->slug) {
      ok = flora__shop_find_by_string(txn, PRODUCTS, "slug", ctx->slug, &existing, &found, error);
   } else if (bson_iter_init_find(&it, ctx->input, "sku") && BSON_ITER_HOLDS_UTF8(&it)) {
      ok = flora__shop_find_by_string(txn, PRODUCTS, "sku", bson_iter_utf8(&it, NULL), &existing, &found,
                                      error);
   } else {
      bson_init(&existing);
      ok = true;
   }
   if (!ok) {
      bson_destroy(&existing);
      return false;
   }
   if (!found) {
      bson_destroy(&existing);
      if (ctx->slug) {
         ctx->not_found = true;
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no product has slug '%s'", ctx->slug);
         return false;
      }
      ctx->created = ctx->changed = true;
      return flora_catalog_create_product(txn, ctx->input, ctx->problems, ctx->out, error);
   }
   if (ctx->slug) {
      /* a patch: the stored document's fields, overridden by the patch's */
      bson_t merged = BSON_INITIALIZER;
      bson_iter_t f;

      bson_iter_init(&f, &existing);
      while (bson_iter_next(&f)) {
         const char *key = bson_iter_key(&f);
         bool derived = false;

         for (size_t i = 0; derived_fields[i]; i++) {
            derived = derived || strcmp(derived_fields[i], key) == 0;
         }
         /* the stored slug stays unless the patch names a new one */
         if ((!derived || strcmp(key, "slug") == 0) && !bson_has_field(ctx->input, key) &&
             !(strcmp(key, "categoryIds") == 0 && bson_has_field(ctx->input, "categorySlugs"))) {
            bson_append_iter(&merged, key, -1, &f);
         }
      }
      bson_iter_init(&f, ctx->input);
      while (bson_iter_next(&f)) {
         bson_append_iter(&merged, bson_iter_key(&f), -1, &f);
      }
      ok = replace_product(txn, &existing, &merged, ctx->problems, ctx->out, &ctx->changed, error);
      bson_destroy(&merged);
   } else {
      ok = replace_product(txn, &existing, ctx->input, ctx->problems, ctx->out, &ctx->changed, error);
   }
   if (ok && !ctx->changed && ctx->out) {
      bson_destroy(ctx->out);
      bson_copy_to(&existing, ctx->out);
   }
   bson_destroy(&existing);
   return ok;
}

bool
flora_catalog_upsert_product(flora_store_t *store, const bson_t *input, bson_t *problems, bool *created,
                             bool *changed, flora_error_t *error)
{
   upsert_ctx_t ctx = {.input = input, .problems = problems};
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(input);
   ok = flora_store_with_transaction(store, upsert_txn, &ctx, error);
   if (created) {
      *created = ok && ctx.created;
   }
   if (changed) {
      *changed = ok && ctx.changed;
   }
   return ok;
}

bool
flora_catalog_update_product(flora_store_t *store, const char *slug, const bson_t *patch, bson_t *problems,
                             bson_t *out, flora_error_t *error)
{
   upsert_ctx_t ctx = {.input = patch, .slug = slug, .problems = problems, .out = out};

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(slug);
   FLORA_ASSERT_ARG(patch);
   if (out) {
      bson_init(out);
   }
   return flora_store_with_transaction(store, upsert_txn, &ctx, error);
}

bool
flora_catalog_delete_product(flora_store_t *store, const char *slug, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, reply;
   bson_iter_t it;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(slug);
   BSON_APPEND_UTF8(&filter, "slug", slug);
   ok = flora_store_delete_one(store, PRODUCTS, &filter, NULL, &reply, error);
   if (ok && (!bson_iter_init_find(&it, &reply, "deletedCount") || bson_iter_as_int64(&it) == 0)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no product has slug '%s'", slug);
      ok = false;
   }
   bson_destroy(&filter);
   bson_destroy(&reply);
   return ok;
}

typedef struct stock_ctx {
   const char *sku;
   int32_t delta;
   int32_t new_stock;
} stock_ctx_t;

static bool
stock_txn(flora_store_t *txn, void *data, flora_error_t *error)
{
   stock_ctx_t *ctx = data;
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, elem, inc, set, reply, doc;
   bson_t opts = BSON_INITIALIZER;
   bson_iter_t it, vs;
   bool found = false, in_stock = false, ok = false;

   bson_init(&reply);
   bson_init(&doc);
   BSON_APPEND_DOCUMENT_BEGIN(&filter, "variants", &elem);
   {
      bson_t em, cond;

      BSON_APPEND_DOCUMENT_BEGIN(&elem, "$elemMatch", &em);
      BSON_APPEND_UTF8(&em, "sku", ctx->sku);
      BSON_APPEND_DOCUMENT_BEGIN(&em, "stock", &cond);
      BSON_APPEND_INT32(&cond, "$gte", ctx->delta < 0 ? -ctx->delta : 0);
      bson_append_document_end(&em, &cond);
      bson_append_document_end(&elem, &em);
   }
   bson_append_document_end(&filter, &elem);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &inc);
   BSON_APPEND_INT32(&inc, "variants.$.stock", ctx->delta);
   bson_append_document_end(&update, &inc);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   BSON_APPEND_DATE_TIME(&set, "updatedAt", flora__shop_now_ms());
   bson_append_document_end(&update, &set);
   BSON_APPEND_UTF8(&opts, "returnDocument", "after");
   bson_destroy(&doc);
   if (!flora_store_find_one_and_update(txn, PRODUCTS, &filter, &update, &opts, &doc, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      bool exists = false;
      bson_t probe;

      if (!flora__shop_find_by_string(txn, PRODUCTS, "variants.sku", ctx->sku, &probe, &exists, error)) {
         bson_destroy(&probe);
         goto cleanup;
      }
      bson_destroy(&probe);
      if (exists) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_OUT_OF_STOCK,
                         "stock: not enough of %s to take %d", ctx->sku, -ctx->delta);
      } else {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no variant has SKU '%s'", ctx->sku);
      }
      goto cleanup;
   }
   if (bson_iter_init_find(&it, &doc, "variants") && bson_iter_recurse(&it, &vs)) {
      while (bson_iter_next(&vs)) {
         bson_iter_t f, s;
         int64_t stock = 0;

         if (bson_iter_recurse(&vs, &s) && bson_iter_find(&s, "stock")) {
            stock = iter_int(&s, 0);
         }
         in_stock = in_stock || stock > 0;
         if (bson_iter_recurse(&vs, &f) && bson_iter_find(&f, "sku") && BSON_ITER_HOLDS_UTF8(&f) &&
             strcmp(bson_iter_utf8(&f, NULL), ctx->sku) == 0) {
            ctx->new_stock = (int32_t) stock;
         }
      }
   }
   if (!bson_iter_init_find(&it, &doc, "inStock") || !BSON_ITER_HOLDS_BOOL(&it) || bson_iter_bool(&it) != in_stock) {
      bson_t idf = BSON_INITIALIZER, upd = BSON_INITIALIZER, s2;

      bson_iter_init_find(&it, &doc, "_id");
      bson_append_iter(&idf, "_id", -1, &it);
      BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &s2);
      BSON_APPEND_BOOL(&s2, "inStock", in_stock);
      bson_append_document_end(&upd, &s2);
      ok = flora_store_update_one(txn, PRODUCTS, &idf, &upd, NULL, NULL, error);
      bson_destroy(&idf);
      bson_destroy(&upd);
      if (!ok) {
         goto cleanup;
      }
   }
   ok = true;
cleanup:
   bson_destroy(&filter);
   bson_destroy(&update);
   bson_destroy(&opts);
   bson_destroy(&reply);
   bson_destroy(&doc);
   return ok;
}

bool
flora_catalog_adjust_stock(flora_store_t *store, const char *variant_sku, int32_t delta, int32_t *new_stock,
                           flora_error_t *error)
{
   stock_ctx_t ctx = {.sku = variant_sku, .delta = delta};
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(variant_sku);
   if (delta == INT32_MIN) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "delta: out of range");
      return false;
   }
   ok = flora_store_with_transaction(store, stock_txn, &ctx, error);
   if (ok && new_stock) {
      *new_stock = ctx.new_stock;
   }
   return ok;
}

/* ---- reads ----------------------------------------------------------------------- */

bool
flora_catalog_get_product(flora_store_t *store, const char *slug, bson_t *out, bool *found,
                          flora_error_t *error)
{
   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(slug);
   return flora__shop_find_by_string(store, PRODUCTS, "slug", slug, out, found, error);
}

static void
append_sort(bson_t *opts, const flora_product_query_t *q)
{
   bson_t sort;
   flora_product_sort_t s = q->sort;

   if (s == FLORA_SORT_DEFAULT) {
      s = q->q ? FLORA_SORT_RELEVANCE : FLORA_SORT_POPULARITY;
   }
   if (s == FLORA_SORT_RELEVANCE && !q->q) {
      s = FLORA_SORT_POPULARITY;
   }
   BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
   switch (s) {
   case FLORA_SORT_PRICE_ASC:
      BSON_APPEND_INT32(&sort, "price", 1);
      break;
   case FLORA_SORT_PRICE_DESC:
      BSON_APPEND_INT32(&sort, "price", -1);
      break;
   case FLORA_SORT_NEWEST:
      BSON_APPEND_INT32(&sort, "createdAt", -1);
      break;
   case FLORA_SORT_RATING:
      BSON_APPEND_INT32(&sort, "rating.average", -1);
      BSON_APPEND_INT32(&sort, "rating.count", -1);
      break;
   case FLORA_SORT_RELEVANCE: {
      bson_t meta;

      BSON_APPEND_DOCUMENT_BEGIN(&sort, "score", &meta);
      BSON_APPEND_UTF8(&meta, "$meta", "textScore");
      bson_append_document_end(&sort, &meta);
      break;
   }
   case FLORA_SORT_POPULARITY:
   case FLORA_SORT_DEFAULT:
      BSON_APPEND_INT32(&sort, "popularity", -1);
      break;
   }
   BSON_APPEND_INT32(&sort, "_id", 1); /* a stable order across pages */
   bson_append_document_end(opts, &sort);
}

/* Builds the filter; *empty is set when the query can match nothing (unknown category). */
static bool
product_filter(flora_store_t *store, const flora_product_query_t *q, bson_t *filter, bool *empty,
               flora_error_t *error)
{
   *empty = false;
   if (!q->include_inactive) {
      BSON_APPEND_BOOL(filter, "active", true);
   }
   if (q->category) {
      bson_t cat;
      bool found = false;
      bson_iter_t it;

      if (!flora__shop_find_by_string(store, CATEGORIES, "slug", q->category, &cat, &found, error)) {
         bson_destroy(&cat);
         return false;
      }
      if (!found || !bson_iter_init_find(&it, &cat, "_id")) {
         *empty = true;
      } else {
         bson_append_iter(filter, "categoryTree", -1, &it);
      }
      bson_destroy(&cat);
   }
   if (q->price_min >= 0 || q->price_max >= 0) {
      bson_t range;

      BSON_APPEND_DOCUMENT_BEGIN(filter, "price", &range);
      if (q->price_min >= 0) {
         BSON_APPEND_INT64(&range, "$gte", q->price_min);
      }
      if (q->price_max >= 0) {
         BSON_APPEND_INT64(&range, "$lte", q->price_max);
      }
      bson_append_document_end(filter, &range);
   }
   if (q->in_stock) {
      BSON_APPEND_BOOL(filter, "inStock", true);
   }
   if (q->tag) {
      BSON_APPEND_UTF8(filter, "tags", q->tag);
   }
   if (q->flower) {
      string_set_t terms = {0};
      bson_t all, arr;

      if (!flora_text_terms(q->flower, strlen(q->flower), "russian", add_term, &terms, error)) {
         string_set_free(&terms);
         return false;
      }
      if (terms.len == 0) {
         *empty = true;
      } else {
         BSON_APPEND_DOCUMENT_BEGIN(filter, "flowerTerms", &all);
         append_string_array(&all, "$all", &terms);
         bson_append_document_end(filter, &all);
      }
      (void) arr;
      string_set_free(&terms);
   }
   if (q->q) {
      bson_t text;

      BSON_APPEND_DOCUMENT_BEGIN(filter, "$text", &text);
      BSON_APPEND_UTF8(&text, "$search", q->q);
      bson_append_document_end(filter, &text);
   }
   return true;
}

bool
flora_catalog_list_products(flora_store_t *store, const flora_product_query_t *q, bson_t *out,
                            flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, projection, items;
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   int64_t total = 0;
   bool empty = false, ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(q);
   FLORA_ASSERT_ARG(q->page >= 1 && q->page_size >= 1);
   bson_init(out);
   if (!product_filter(store, q, &filter, &empty, error)) {
      goto cleanup;
   }
   if (!empty && !flora_store_count_documents(store, PRODUCTS, &filter, NULL, &total, error)) {
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN(out, "items", &items);
   if (!empty && total > (q->page - 1) * q->page_size) {
      append_sort(&opts, q);
      BSON_APPEND_INT64(&opts, "skip", (q->page - 1) * q->page_size);
      BSON_APPEND_INT64(&opts, "limit", q->page_size);
      BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &projection);
      BSON_APPEND_INT32(&projection, "flowerTerms", 0);
      BSON_APPEND_INT32(&projection, "categoryTree", 0);
      BSON_APPEND_INT32(&projection, "source", 0);
      if (q->q) {
         bson_t meta;

         BSON_APPEND_DOCUMENT_BEGIN(&projection, "score", &meta);
         BSON_APPEND_UTF8(&meta, "$meta", "textScore");
         bson_append_document_end(&projection, &meta);
      }
      bson_append_document_end(&opts, &projection);
      if (!flora_store_find(store, PRODUCTS, &filter, &opts, &cursor, error)) {
         bson_append_array_end(out, &items);
         goto cleanup;
      }
      for (uint32_t i = 0; flora_cursor_next(cursor, &doc); i++) {
         char idx[16];
         const char *k;

         bson_uint32_to_string(i, &k, idx, sizeof idx);
         BSON_APPEND_DOCUMENT(&items, k, doc);
      }
      if (flora_cursor_error(cursor, error)) {
         bson_append_array_end(out, &items);
         goto cleanup;
      }
   }
   bson_append_array_end(out, &items);
   BSON_APPEND_INT64(out, "total", total);
   BSON_APPEND_INT64(out, "page", q->page);
   BSON_APPEND_INT64(out, "pageSize", q->page_size);
   BSON_APPEND_INT64(out, "pages", (total + q->page_size - 1) / q->page_size);
   ok = true;
cleanup:
   flora_cursor_destroy(cursor);
   bson_destroy(&filter);
   bson_destroy(&opts);
   return ok;
}
