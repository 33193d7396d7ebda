/* Schemas of the catalog: categories (a tree with an ancestors array) and products (with
 * embedded variants and denormalised fields kept by lib/shop/catalog.c). DESIGN.md
 * section 3. Money: int64 minor units (kopecks); see docs/schema/products.md. */
#include "flora/shop.h"

#define SLUG_PATTERN "^[a-z0-9]+(-[a-z0-9]+)*$"
#define SKU_PATTERN "^[A-Za-z0-9][A-Za-z0-9._/-]*$"
#define MONEY_MAX 100000000000.0 /* 1 billion roubles in kopecks: far above any bouquet */

static const char *const currencies[] = {"RUB", "USD", "EUR", NULL};
static const char *const media_kinds[] = {"image", "video", NULL};
static const char *const import_formats[] = {"csv", "yml", "json", "api", NULL};

/* ---- categories ------------------------------------------------------------------ */

static const flora_field_t ancestor_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "_id", .types = FLORA_T_OBJECTID, .required = true,
    .description = "ancestor category id", .ref_collection = "categories", .ref_field = "_id"},
   {FLORA_FIELD_DEFAULTS, .path = "slug", .types = FLORA_T_STRING, .required = true,
    .description = "ancestor slug (denormalised for breadcrumbs)"},
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true,
    .description = "ancestor name (denormalised for breadcrumbs)"},
   {NULL},
};

static const flora_field_t ancestor_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = ancestor_fields,
   .strict = true,
};

static const flora_field_t category_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "slug", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 100, .pattern = SLUG_PATTERN,
    .pattern_hint = "a URL slug: lowercase latin letters, digits and single hyphens",
    .description = "URL key, unique"},
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 120, .description = "display name"},
   {FLORA_FIELD_DEFAULTS, .path = "description", .types = FLORA_T_STRING, .maxlength = 2000,
    .description = "text for the category page"},
   {FLORA_FIELD_DEFAULTS, .path = "parentId", .types = FLORA_T_OBJECTID | FLORA_T_NULL,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "null",
    .ref_collection = "categories", .ref_field = "_id",
    .description = "parent category; null for a root"},
   {FLORA_FIELD_DEFAULTS, .path = "ancestors", .types = FLORA_T_ARRAY, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 10,
    .items = &ancestor_item,
    .description = "root-first path of ancestors (denormalised; kept by the catalog)"},
   {FLORA_FIELD_DEFAULTS, .path = "sortOrder", .types = FLORA_T_INT32,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "0", .has_min = true, .min = -1000000,
    .has_max = true, .max = 1000000, .description = "position among siblings"},
   {FLORA_FIELD_DEFAULTS, .path = "active", .types = FLORA_T_BOOL,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "true",
    .description = "shown in the storefront"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t category_indexes[] = {
   {.name = "slug_1", .keys_json = "{\"slug\": 1}", .unique = true,
    .serves = "GET /api/v1/products?category=SLUG resolves the category by slug"},
   {.name = "parentId_1_sortOrder_1", .keys_json = "{\"parentId\": 1, \"sortOrder\": 1}",
    .serves = "children of a category in display order (tree building, delete checks)"},
   {.name = "ancestors._id_1", .keys_json = "{\"ancestors._id\": 1}",
    .serves = "every descendant of a category (subtree moves and renames)"},
   {NULL},
};

const flora_schema_t flora_schema_categories = {
   .collection = "categories",
   .description = "The catalog's category tree. Each category stores its parent and the "
                  "root-first list of its ancestors, so a subtree is one indexed query and "
                  "breadcrumbs need no joins.",
   .fields = category_fields,
   .strict = true,
   .timestamps = true,
   .indexes = category_indexes,
};

/* ---- products -------------------------------------------------------------------- */

static const flora_field_t stem_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "flower", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 100, .description = "flower or material, as the florist names it"},
   {FLORA_FIELD_DEFAULTS, .path = "stems", .types = FLORA_T_INT32 | FLORA_T_NULL,
    .has_min = true, .min = 1, .has_max = true, .max = 10000,
    .description = "how many; null when the florist gives no count"},
   {NULL},
};

static const flora_field_t stem_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = stem_fields,
   .strict = true,
};

static const flora_field_t variant_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "sku", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 64, .pattern = SKU_PATTERN,
    .pattern_hint = "letters, digits and . _ / -", .description = "stock keeping unit, unique across products"},
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 120, .description = "size or option label, e.g. \"M\" or \"25 stems\""},
   {FLORA_FIELD_DEFAULTS, .path = "price", .types = FLORA_T_INT, .required = true,
    .has_min = true, .min = 0, .has_max = true, .max = MONEY_MAX,
    .description = "price in minor units (kopecks)"},
   {FLORA_FIELD_DEFAULTS, .path = "compareAtPrice", .types = FLORA_T_INT | FLORA_T_NULL,
    .has_min = true, .min = 0, .has_max = true, .max = MONEY_MAX,
    .description = "the full price before a discount, in minor units; null without a discount"},
   {FLORA_FIELD_DEFAULTS, .path = "stock", .types = FLORA_T_INT32, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "0", .has_min = true, .min = 0,
    .has_max = true, .max = 1000000,
    .description = "units on hand; changed only by conditional updates (never below 0)"},
   {FLORA_FIELD_DEFAULTS, .path = "composition", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 100,
    .items = &stem_item, .description = "stem composition of this size"},
   {FLORA_FIELD_DEFAULTS, .path = "heightCm", .types = FLORA_T_INT32 | FLORA_T_NULL,
    .has_min = true, .min = 1, .has_max = true, .max = 1000, .description = "bouquet height, cm"},
   {FLORA_FIELD_DEFAULTS, .path = "widthCm", .types = FLORA_T_INT32 | FLORA_T_NULL,
    .has_min = true, .min = 1, .has_max = true, .max = 1000, .description = "bouquet width, cm"},
   {NULL},
};

static const flora_field_t variant_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = variant_fields,
   .strict = true,
};

static const flora_field_t image_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "url", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 2000, .pattern = "^https?://[^[:space:]]+$",
    .pattern_hint = "an http(s) URL", .description = "image or video URL"},
   {FLORA_FIELD_DEFAULTS, .path = "kind", .types = FLORA_T_STRING, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "\"image\"", .enum_values = media_kinds,
    .description = "image or video"},
   {FLORA_FIELD_DEFAULTS, .path = "alt", .types = FLORA_T_STRING, .maxlength = 300,
    .description = "alternative text"},
   {NULL},
};

static const flora_field_t image_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = image_fields,
   .strict = true,
};

static const flora_field_t string_tag_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_STRING, .minlength = 1,
   .maxlength = 40, .pattern = "^[a-z0-9]+(_[a-z0-9]+)*$",
   .pattern_hint = "a tag: lowercase latin letters, digits and underscores",
};

static const flora_field_t term_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_STRING, .minlength = 1, .maxlength = 100,
};

static const flora_field_t objectid_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_OBJECTID,
   .ref_collection = "categories", .ref_field = "_id",
};

static const flora_field_t month_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_INT32, .has_min = true, .min = 1,
   .has_max = true, .max = 12,
};

static const flora_field_t count_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_INT32, .has_min = true, .min = 0,
};

static const flora_field_t rating_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "average", .types = FLORA_T_DOUBLE, .required = true,
    .has_min = true, .min = 0, .has_max = true, .max = 5, .description = "mean of approved ratings; 0 when none"},
   {FLORA_FIELD_DEFAULTS, .path = "count", .types = FLORA_T_INT32, .required = true,
    .has_min = true, .min = 0, .description = "approved reviews"},
   {FLORA_FIELD_DEFAULTS, .path = "histogram", .types = FLORA_T_ARRAY, .required = true,
    .minlength = 5, .maxlength = 5, .items = &count_item,
    .description = "approved reviews with 1..5 stars (index 0 = 1 star)"},
   {NULL},
};

static const flora_field_t source_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "format", .types = FLORA_T_STRING, .required = true,
    .enum_values = import_formats, .description = "where the product came from"},
   {FLORA_FIELD_DEFAULTS, .path = "ref", .types = FLORA_T_STRING, .maxlength = 200,
    .description = "the record in the source: a CSV line, a YML offer id"},
   {NULL},
};

static const flora_field_t product_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "sku", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 64, .pattern = SKU_PATTERN,
    .pattern_hint = "letters, digits and . _ / -",
    .description = "product code, unique; imports update by it (or by the YML offer id)"},
   {FLORA_FIELD_DEFAULTS, .path = "slug", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 160, .pattern = SLUG_PATTERN,
    .pattern_hint = "a URL slug: lowercase latin letters, digits and single hyphens",
    .description = "URL key, unique; transliterated from the name when not given"},
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 200, .description = "display name"},
   {FLORA_FIELD_DEFAULTS, .path = "description", .types = FLORA_T_STRING, .maxlength = 10000,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "\"\"", .description = "plain text"},
   {FLORA_FIELD_DEFAULTS, .path = "categoryIds", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 20,
    .items = &objectid_item, .description = "the categories the product is placed in"},
   {FLORA_FIELD_DEFAULTS, .path = "categoryTree", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 220,
    .items = &objectid_item,
    .description = "categoryIds plus all their ancestors (denormalised), so a category "
                   "page with its subcategories is one indexed query"},
   {FLORA_FIELD_DEFAULTS, .path = "variants", .types = FLORA_T_ARRAY, .required = true,
    .minlength = 1, .maxlength = 50, .items = &variant_item,
    .description = "sizes or options with their own price, stock and composition"},
   {FLORA_FIELD_DEFAULTS, .path = "currency", .types = FLORA_T_STRING, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "\"RUB\"", .enum_values = currencies,
    .description = "ISO 4217 code of every price in the product"},
   {FLORA_FIELD_DEFAULTS, .path = "price", .types = FLORA_T_INT, .required = true,
    .has_min = true, .min = 0, .has_max = true, .max = MONEY_MAX,
    .description = "lowest variant price in minor units (denormalised for sorting and filters)"},
   {FLORA_FIELD_DEFAULTS, .path = "compareAtPrice", .types = FLORA_T_INT | FLORA_T_NULL,
    .has_min = true, .min = 0, .has_max = true, .max = MONEY_MAX,
    .description = "full price of the cheapest variant when it is discounted (denormalised)"},
   {FLORA_FIELD_DEFAULTS, .path = "inStock", .types = FLORA_T_BOOL, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "false",
    .description = "some variant has stock (denormalised; kept by every stock change)"},
   {FLORA_FIELD_DEFAULTS, .path = "flowers", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 200,
    .items = &term_item, .description = "distinct flower names of all compositions (denormalised)"},
   {FLORA_FIELD_DEFAULTS, .path = "flowerTerms", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 400,
    .items = &term_item,
    .description = "stemmed words of the flower names, for the flower filter (denormalised)"},
   {FLORA_FIELD_DEFAULTS, .path = "images", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 30,
    .items = &image_item, .description = "photos and videos, the first is the cover"},
   {FLORA_FIELD_DEFAULTS, .path = "tags", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 30,
    .items = &string_tag_item,
    .description = "occasions and labels: birthday, wedding, march_8, valentines_day, ..."},
   {FLORA_FIELD_DEFAULTS, .path = "availableMonths", .types = FLORA_T_ARRAY,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]", .maxlength = 12,
    .items = &month_item,
    .description = "months (1-12, shop time zone) the product is sold; empty: all year"},
   {FLORA_FIELD_DEFAULTS, .path = "rating", .types = FLORA_T_DOCUMENT, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE,
    .default_json = "{\"average\": 0.0, \"count\": 0, \"histogram\": [0, 0, 0, 0, 0]}",
    .fields = rating_fields, .strict = true,
    .description = "summary of approved reviews (denormalised; kept by the reviews module)"},
   {FLORA_FIELD_DEFAULTS, .path = "popularity", .types = FLORA_T_INT, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "0", .has_min = true, .min = 0,
    .description = "units sold (denormalised; kept by checkout)"},
   {FLORA_FIELD_DEFAULTS, .path = "active", .types = FLORA_T_BOOL, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "true",
    .description = "listed in the storefront"},
   {FLORA_FIELD_DEFAULTS, .path = "source", .types = FLORA_T_DOCUMENT, .fields = source_fields,
    .strict = true, .description = "the import record it came from"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t product_indexes[] = {
   {.name = "sku_1", .keys_json = "{\"sku\": 1}", .unique = true,
    .serves = "imports and admin edits find a product by SKU"},
   {.name = "slug_1", .keys_json = "{\"slug\": 1}", .unique = true,
    .serves = "GET /api/v1/products/{slug}"},
   {.name = "variants.sku_1", .keys_json = "{\"variants.sku\": 1}", .unique = true,
    .serves = "stock changes and checkout find a variant by its SKU; no two products share one"},
   {.name = "categoryTree_1_price_1", .keys_json = "{\"categoryTree\": 1, \"price\": 1}",
    .serves = "a category page with its subcategories, sorted or filtered by price"},
   {.name = "price_1", .keys_json = "{\"price\": 1}",
    .serves = "the catalog sorted by price, price ranges"},
   {.name = "popularity_-1", .keys_json = "{\"popularity\": -1}",
    .serves = "the catalog sorted by popularity"},
   {.name = "createdAt_-1", .keys_json = "{\"createdAt\": -1}",
    .serves = "the catalog sorted by newest"},
   {.name = "rating.average_-1", .keys_json = "{\"rating.average\": -1}",
    .serves = "the catalog sorted by rating"},
   {.name = "flowerTerms_1", .keys_json = "{\"flowerTerms\": 1}",
    .serves = "?flower=роза: bouquets containing a flower"},
   {.name = "tags_1", .keys_json = "{\"tags\": 1}", .serves = "?tag=birthday: occasion pages"},
   {.name = "catalog_text",
    .keys_json = "{\"name\": \"text\", \"flowers\": \"text\", \"tags\": \"text\", "
                 "\"description\": \"text\"}",
    .weights_json = "{\"name\": 10, \"flowers\": 5, \"tags\": 3, \"description\": 1}",
    .default_language = "russian",
    .serves = "?q=роза: full-text search ranked by relevance (name counts most)"},
   {NULL},
};

const flora_schema_t flora_schema_products = {
   .collection = "products",
   .description = "Bouquets and other goods. Variants (sizes) are embedded because they are "
                  "always read with their product; the lowest price, stock presence, flower "
                  "names and the rating summary are denormalised onto the product so that "
                  "listing, filtering and sorting are single indexed queries.",
   .fields = product_fields,
   .strict = true,
   .timestamps = true,
   .indexes = product_indexes,
};
