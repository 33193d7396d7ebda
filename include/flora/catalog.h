/* The catalog: categories (a tree) and products with variants, over the store.
 * Document shapes: docs/schema/categories.md and docs/schema/products.md (generated from
 * lib/shop/catalog_schema.c). Money is int64 minor units (kopecks).
 *
 * Product input (create, upsert, import) is a product document without the denormalised
 * fields: {sku, slug?, name, description?, categoryIds? | categorySlugs?: [slug],
 * variants: [{sku, name, price, compareAtPrice?, stock?, composition?, heightCm?,
 * widthCm?}], currency?, images?, tags?, availableMonths?, active?, source?}. The catalog
 * derives slug (transliterated from the name when absent), categoryTree, price,
 * compareAtPrice, inStock, flowers and flowerTerms, so they can never disagree with the
 * variants. Validation problems come back as a VALIDATION error plus the problems array
 * (include/flora/schema.h). */
#ifndef FLORA_CATALOG_H
#define FLORA_CATALOG_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/error.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- products: storefront queries ------------------------------------------------ */

typedef enum flora_product_sort {
   FLORA_SORT_DEFAULT = 0, /* relevance with q, else popularity */
   FLORA_SORT_PRICE_ASC,
   FLORA_SORT_PRICE_DESC,
   FLORA_SORT_POPULARITY,
   FLORA_SORT_NEWEST,
   FLORA_SORT_RATING,
   FLORA_SORT_RELEVANCE,
} flora_product_sort_t;

typedef struct flora_product_query {
   const char *category;  /* slug; includes subcategories; NULL: all */
   int64_t price_min;     /* kopecks, inclusive; -1: none */
   int64_t price_max;     /* kopecks, inclusive; -1: none */
   bool in_stock;         /* only products with stock */
   const char *tag;       /* occasion tag; NULL: any */
   const char *flower;    /* a flower in the composition (stemmed match); NULL: any */
   const char *q;         /* full-text search; NULL: none */
   flora_product_sort_t sort;
   int64_t page;          /* 1-based */
   int64_t page_size;     /* 1..100 */
   bool include_inactive; /* admin listings */
} flora_product_query_t;

#define FLORA_PRODUCT_QUERY_INIT {NULL, -1, -1, false, NULL, NULL, NULL, FLORA_SORT_DEFAULT, 1, 24, false}

/* Parses a sort name ("price", "-price", "price_desc", "popularity", "newest", "rating",
 * "relevance"); false for an unknown name. */
bool flora_product_sort_parse(const char *name, flora_product_sort_t *out);

/* One page of products: *out = {items: [product...], total: int64, page, pageSize,
 * pages}. An unknown category slug gives an empty page (total 0), not an error. Items
 * carry "score" (double) when q is set. */
bool flora_catalog_list_products(flora_store_t *store, const flora_product_query_t *query,
                                 bson_t *out, flora_error_t *error);

/* The product with this slug (active or not); *found false when none. */
bool flora_catalog_get_product(flora_store_t *store, const char *slug, bson_t *out, bool *found,
                               flora_error_t *error);

/* ---- products: admin writes ------------------------------------------------------ */

/* Creates a product from input; *out is the stored document. Duplicate sku/slug/variant
 * sku: SHOP CONFLICT naming the field. */
bool flora_catalog_create_product(flora_store_t *store, const bson_t *input, bson_t *problems,
                                  bson_t *out, flora_error_t *error);

/* Creates or updates by sku (imports): an existing product keeps its _id, slug, rating,
 * popularity and createdAt; variant stock is replaced by the input's when the input has
 * it. *created says which. *changed is false when nothing differed (re-import). */
bool flora_catalog_upsert_product(flora_store_t *store, const bson_t *input, bson_t *problems,
                                  bool *created, bool *changed, flora_error_t *error);

/* Applies a partial update {name?, description?, variants?, ...} to the product with this
 * slug, re-deriving the denormalised fields; *out is the new document. */
bool flora_catalog_update_product(flora_store_t *store, const char *slug, const bson_t *patch,
                                  bson_t *problems, bson_t *out, flora_error_t *error);

/* Deletes the product; NOT_FOUND when none. */
bool flora_catalog_delete_product(flora_store_t *store, const char *slug, flora_error_t *error);

/* Adds delta (may be negative) to the stock of the variant with this SKU in one
 * conditional update (the filter requires stock >= -delta), keeping inStock right.
 * OUT_OF_STOCK when it would go below zero, NOT_FOUND for an unknown SKU. *new_stock
 * receives the result. */
bool flora_catalog_adjust_stock(flora_store_t *store, const char *variant_sku, int32_t delta,
                                int32_t *new_stock, flora_error_t *error);

/* ---- categories ------------------------------------------------------------------ */

/* The active tree: *out = {categories: [{_id, slug, name, description?, sortOrder,
 * productCount, children: [...]}]} ordered by sortOrder then name. */
bool flora_catalog_category_tree(flora_store_t *store, bson_t *out, flora_error_t *error);

/* Creates a category from {slug?, name, description?, parentSlug?|parentId?, sortOrder?,
 * active?}; ancestors are derived. */
bool flora_catalog_create_category(flora_store_t *store, const bson_t *input, bson_t *problems,
                                   bson_t *out, flora_error_t *error);
/* Creates or updates by slug (imports). */
bool flora_catalog_upsert_category(flora_store_t *store, const bson_t *input, bson_t *problems,
                                   bool *created, flora_error_t *error);
/* Updates name/description/sortOrder/active/parent; moving re-derives the ancestors of the
 * whole subtree and the categoryTree of affected products, in one transaction. Moving a
 * category under its own descendant: CONFLICT. */
bool flora_catalog_update_category(flora_store_t *store, const char *slug, const bson_t *patch,
                                   bson_t *problems, bson_t *out, flora_error_t *error);
/* Deletes a category without children; its products lose it (in one transaction).
 * CONFLICT when it has children. */
bool flora_catalog_delete_category(flora_store_t *store, const char *slug, flora_error_t *error);

/* ---- helpers --------------------------------------------------------------------- */

/* A URL slug from any UTF-8 text: Cyrillic transliterated (Russian passport rules,
 * ICAO Doc 9303 as adopted in Russia in 2013-2014: щ→shch, ж→zh, х→kh, ц→ts, ъ→ie, ...),
 * lowercased, non-alphanumerics folded into single hyphens, at most max_len bytes. Caller
 * frees. Returns NULL (and an INPUT error) when nothing sluggable remains. */
char *flora_catalog_slugify(const char *text, size_t max_len, flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
