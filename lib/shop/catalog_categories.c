/* Categories: a tree kept as parentId plus a root-first ancestors array
 * (include/flora/catalog.h). Moves and renames rewrite the subtree and the products'
 * categoryTree in one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flora/catalog.h"
#include "flora/query.h"
#include "flora/shop.h"
#include "shop/shop_private.h"

#define PRODUCTS "products"
#define CATEGORIES "categories"
#define SLUG_MAX 100

/* ---- tree for the storefront ----------------------------------------------------- */

typedef struct node {
   bson_t *doc;
   bson_oid_t id;
   bson_oid_t parent;
   bool has_parent;
   int64_t count;
} node_t;

static void
append_children(const node_t *nodes, size_t n, const bson_oid_t *parent, bson_t *arr, int depth)
{
   uint32_t i_out = 0;

   if (depth > 16) {
      return; /* the schema bounds ancestors to 10 levels */
   }
   for (size_t i = 0; i < n; i++) {
      bson_t child, children;
      bson_iter_t it;
      char idx[16];
      const char *k;

      if (parent ? !(nodes[i].has_parent && bson_oid_equal(&nodes[i].parent, parent)) : nodes[i].has_parent) {
         continue;
      }
      bson_uint32_to_string(i_out++, &k, idx, sizeof idx);
      BSON_APPEND_DOCUMENT_BEGIN(arr, k, &child);
      BSON_APPEND_OID(&child, "_id", &nodes[i].id);
      static const char *const shown[] = {"slug", "name", "description", "sortOrder"};
      for (size_t f = 0; f < sizeof shown / sizeof shown[0]; f++) {
         if (bson_iter_init_find(&it, nodes[i].doc, shown[f])) {
            bson_append_iter(&child, shown[f], -1, &it);
         }
      }
      BSON_APPEND_INT64(&child, "productCount", nodes[i].count);
      BSON_APPEND_ARRAY_BEGIN(&child, "children", &children);
      append_children(nodes, n, &nodes[i].id, &children, depth + 1);
      bson_append_array_end(&child, &children);
      bson_append_document_end(arr, &child);
   }
}

static bool
count_products(flora_store_t *store, node_t *nodes, size_t n, flora_error_t *error)
{
   bson_t *pipeline = BCON_NEW("0", "{", "$match", "{", "active", BCON_BOOL(true), "}", "}",
                               "1", "{", "$unwind", BCON_UTF8("$categoryTree"), "}",
                               "2", "{", "$group", "{", "_id", BCON_UTF8("$categoryTree"), "n", "{",
                               "$sum", BCON_INT32(1), "}", "}", "}");
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   bool ok;

   ok = flora_store_aggregate(store, PRODUCTS, pipeline, NULL, &cursor, error);
   while (ok && flora_cursor_next(cursor, &doc)) {
      bson_iter_t id, cnt;

      if (!bson_iter_init_find(&id, doc, "_id") || !BSON_ITER_HOLDS_OID(&id) ||
          !bson_iter_init_find(&cnt, doc, "n")) {
         continue;
      }
      for (size_t i = 0; i < n; i++) {
         if (bson_oid_equal(&nodes[i].id, bson_iter_oid(&id))) {
            nodes[i].count = bson_iter_as_int64(&cnt);
         }
      }
   }
   if (ok && flora_cursor_error(cursor, error)) {
      ok = false;
   }
   flora_cursor_destroy(cursor);
   bson_destroy(pipeline);
   return ok;
}

bool
flora_catalog_category_tree(flora_store_t *store, bson_t *out, flora_error_t *error)
{
   bson_t *filter = BCON_NEW("active", BCON_BOOL(true));
   bson_t *opts = BCON_NEW("sort", "{", "sortOrder", BCON_INT32(1), "name", BCON_INT32(1), "}");
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   node_t *nodes = NULL;
   size_t n = 0, cap = 0;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   bson_init(out);
   if (!flora_store_find(store, CATEGORIES, filter, opts, &cursor, error)) {
      goto cleanup;
   }
   while (flora_cursor_next(cursor, &doc)) {
      bson_iter_t it;

      if (n == cap) {
         cap = cap ? cap * 2 : 64;
         nodes = realloc(nodes, cap * sizeof *nodes);
      }
      memset(&nodes[n], 0, sizeof nodes[n]);
      if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it)) {
         continue;
      }
      bson_oid_copy(bson_iter_oid(&it), &nodes[n].id);
      if (bson_iter_init_find(&it, doc, "parentId") && BSON_ITER_HOLDS_OID(&it)) {
         bson_oid_copy(bson_iter_oid(&it), &nodes[n].parent);
         nodes[n].has_parent = true;
      }
      nodes[n].doc = bson_copy(doc);
      n++;
   }
   if (flora_cursor_error(cursor, error) || !count_products(store, nodes, n, error)) {
      goto cleanup;
   }
   /* An inactive parent hides its subtree: children whose parent is not listed are dropped. */
   {
      bson_t arr;

      BSON_APPEND_ARRAY_BEGIN(out, "categories", &arr);
      append_children(nodes, n, NULL, &arr, 0);
      bson_append_array_end(out, &arr);
   }
   ok = true;
cleanup:
   for (size_t i = 0; i < n; i++) {
      bson_destroy(nodes[i].doc);
   }
   free(nodes);
   flora_cursor_destroy(cursor);
   bson_destroy(filter);
   bson_destroy(opts);
   return ok;
}

/* ---- writes ---------------------------------------------------------------------- */

/* Finds the parent named by input (parentSlug or parentId); *has_parent false for a root. */
static bool
resolve_parent(flora_store_t *store, const bson_t *input, bson_t *parent, bool *has_parent, bool *named,
               bson_t *problems, flora_error_t *error)
{
   bson_iter_t it;
   bool found = false;

   bson_init(parent);
   *has_parent = false;
   *named = false;
   if (bson_iter_init_find(&it, input, "parentSlug")) {
      *named = true;
      if (BSON_ITER_HOLDS_NULL(&it)) {
         return true;
      }
      if (!BSON_ITER_HOLDS_UTF8(&it)) {
         return flora__shop_invalid(problems, error, "parentSlug", "must be a string or null");
      }
      bson_destroy(parent);
      if (!flora__shop_find_by_string(store, CATEGORIES, "slug", bson_iter_utf8(&it, NULL), parent, &found,
                                      error)) {
         return false;
      }
   } else if (bson_iter_init_find(&it, input, "parentId")) {
      bson_t filter = BSON_INITIALIZER;
      bson_oid_t oid;

      *named = true;
      if (BSON_ITER_HOLDS_NULL(&it)) {
         return true;
      }
      if (BSON_ITER_HOLDS_OID(&it)) {
         bson_oid_copy(bson_iter_oid(&it), &oid);
      } else if (BSON_ITER_HOLDS_UTF8(&it) &&
                 bson_oid_is_valid(bson_iter_utf8(&it, NULL), strlen(bson_iter_utf8(&it, NULL)))) {
         bson_oid_init_from_string(&oid, bson_iter_utf8(&it, NULL));
      } else {
         return flora__shop_invalid(problems, error, "parentId", "must be a category id or null");
      }
      BSON_APPEND_OID(&filter, "_id", &oid);
      bson_destroy(parent);
      if (!flora_store_find_one(store, CATEGORIES, &filter, NULL, parent, &found, error)) {
         bson_destroy(&filter);
         return false;
      }
      bson_destroy(&filter);
   } else {
      return true;
   }
   if (!found) {
      return flora__shop_invalid(problems, error, bson_iter_key(&it), "no such category");
   }
   *has_parent = true;
   return true;
}

/* ancestors of a child of parent: parent's ancestors + parent. */
static void
append_ancestors(bson_t *doc, const bson_t *parent, bool has_parent)
{
   bson_t arr;
   uint32_t n = 0;
   char idx[16];
   const char *k;

   BSON_APPEND_ARRAY_BEGIN(doc, "ancestors", &arr);
   if (has_parent) {
      bson_iter_t it, a;
      bson_t entry;
      static const char *const fields[] = {"_id", "slug", "name"};

      if (bson_iter_init_find(&it, parent, "ancestors") && bson_iter_recurse(&it, &a)) {
         while (bson_iter_next(&a)) {
            bson_uint32_to_string(n++, &k, idx, sizeof idx);
            bson_append_iter(&arr, k, -1, &a);
         }
      }
      bson_uint32_to_string(n, &k, idx, sizeof idx);
      BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &entry);
      for (size_t f = 0; f < 3; f++) {
         if (bson_iter_init_find(&it, parent, fields[f])) {
            bson_append_iter(&entry, fields[f], -1, &it);
         }
      }
      bson_append_document_end(&arr, &entry);
   }
   bson_append_array_end(doc, &arr);
}

static bool
build_category(flora_store_t *store, const bson_t *input, const bson_t *existing, bson_t *out,
               bson_t *problems, flora_error_t *error)
{
   bson_t draft = BSON_INITIALIZER, parent;
   bson_iter_t it;
   bool has_parent = false, named = false, ok = true;

   bson_init(out);
   if (existing && bson_iter_init_find(&it, existing, "_id")) {
      bson_append_iter(&draft, "_id", -1, &it);
   }
   if (bson_iter_init_find(&it, input, "slug") || (existing && bson_iter_init_find(&it, existing, "slug"))) {
      bson_append_iter(&draft, "slug", -1, &it);
   } else if (bson_iter_init_find(&it, input, "name") && BSON_ITER_HOLDS_UTF8(&it)) {
      char *slug = flora_catalog_slugify(bson_iter_utf8(&it, NULL), SLUG_MAX, NULL);

      if (slug) {
         BSON_APPEND_UTF8(&draft, "slug", slug);
         free(slug);
      }
   }
   {
      static const char *const plain[] = {"name", "description", "sortOrder", "active", "createdAt"};

      for (size_t f = 0; f < sizeof plain / sizeof plain[0]; f++) {
         if (bson_iter_init_find(&it, input, plain[f]) && strcmp(plain[f], "createdAt") != 0) {
            bson_append_iter(&draft, plain[f], -1, &it);
         } else if (existing && bson_iter_init_find(&it, existing, plain[f])) {
            bson_append_iter(&draft, plain[f], -1, &it);
         }
      }
   }
   /* unknown input fields go through so that strict validation names them */
   flora__shop_copy_except(input, &draft,
                           (const char *const[]){"_id", "slug", "name", "description", "sortOrder",
                                                 "active", "parentSlug", "parentId", "ancestors",
                                                 "createdAt", "updatedAt", NULL});
   if (!resolve_parent(store, input, &parent, &has_parent, &named, problems, error)) {
      if (error->domain != FLORA_DOMAIN_VALIDATION) {
         bson_destroy(&parent);
         bson_destroy(&draft);
         return false;
      }
      ok = false;
   }
   if (!named && existing) {
      /* keep the stored parent */
      bson_destroy(&parent);
      bson_init(&parent);
      if (bson_iter_init_find(&it, existing, "parentId") && BSON_ITER_HOLDS_OID(&it)) {
         bson_t filter = BSON_INITIALIZER;

         bson_append_iter(&filter, "_id", -1, &it);
         bson_destroy(&parent);
         if (!flora_store_find_one(store, CATEGORIES, &filter, NULL, &parent, &has_parent, error)) {
            bson_destroy(&filter);
            bson_destroy(&parent);
            bson_destroy(&draft);
            return false;
         }
         bson_destroy(&filter);
      }
   }
   if (has_parent && bson_iter_init_find(&it, &parent, "_id")) {
      bson_append_iter(&draft, "parentId", -1, &it);
   } else {
      BSON_APPEND_NULL(&draft, "parentId");
   }
   append_ancestors(&draft, &parent, has_parent);
   if (has_parent && existing) {
      /* a category cannot move under itself or its own descendant */
      bson_iter_t eid, a;
      bool loop = false;

      bson_iter_init_find(&eid, existing, "_id");
      if (bson_iter_init_find(&it, &parent, "_id") && bson_oid_equal(bson_iter_oid(&it), bson_iter_oid(&eid))) {
         loop = true;
      }
      if (bson_iter_init_find(&it, &parent, "ancestors") && bson_iter_recurse(&it, &a)) {
         while (bson_iter_next(&a)) {
            bson_iter_t id;

            if (bson_iter_recurse(&a, &id) && bson_iter_find(&id, "_id") && BSON_ITER_HOLDS_OID(&id) &&
                bson_oid_equal(bson_iter_oid(&id), bson_iter_oid(&eid))) {
               loop = true;
            }
         }
      }
      if (loop) {
         bson_destroy(&parent);
         bson_destroy(&draft);
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                         "parentSlug: a category cannot move under itself or its descendants");
         return false;
      }
   }
   bson_destroy(&parent);
   bson_destroy(out);
   if (!flora_schema_prepare_insert(&flora_schema_categories, &draft, flora__shop_now_ms(), out, error)) {
      bson_destroy(&draft);
      return false;
   }
   bson_destroy(&draft);
   if (!flora_schema_validate(&flora_schema_categories, out, problems, error)) {
      return false;
   }
   if (!ok) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "category is invalid");
   }
   return ok;
}

bool
flora_catalog_create_category(flora_store_t *store, const bson_t *input, bson_t *problems, bson_t *out,
                              flora_error_t *error)
{
   bson_t doc;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(input);
   if (out) {
      bson_init(out);
   }
   if (!build_category(store, input, NULL, &doc, problems, error)) {
      bson_destroy(&doc);
      return false;
   }
   ok = flora_store_insert_one(store, CATEGORIES, &doc, NULL, NULL, error);
   if (!ok) {
      flora__shop_map_duplicate(error, "a category");
   } else if (out) {
      bson_destroy(out);
      bson_copy_to(&doc, out);
   }
   bson_destroy(&doc);
   return ok;
}

/* Recomputes categoryTree of every product placed in `category_id`'s subtree. */
static bool
refresh_products(flora_store_t *txn, const bson_oid_t *category_id, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   flora_docs_t products = FLORA_DOCS_INIT;
   bool ok = true;

   BSON_APPEND_OID(&filter, "categoryTree", category_id);
   if (!flora_store_find(txn, PRODUCTS, &filter, NULL, &cursor, error)) {
      bson_destroy(&filter);
      return false;
   }
   while (flora_cursor_next(cursor, &doc)) {
      flora_docs_append_copy(&products, doc);
   }
   ok = !flora_cursor_error(cursor, error);
   flora_cursor_destroy(cursor);
   bson_destroy(&filter);
   for (size_t i = 0; ok && i < products.len; i++) {
      bson_t idf = BSON_INITIALIZER, update = BSON_INITIALIZER, set, tree;
      bson_iter_t it, ids;
      uint32_t n = 0;

      bson_iter_init_find(&it, products.items[i], "_id");
      bson_append_iter(&idf, "_id", -1, &it);
      BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
      BSON_APPEND_ARRAY_BEGIN(&set, "categoryTree", &tree);
      if (bson_iter_init_find(&it, products.items[i], "categoryIds") && bson_iter_recurse(&it, &ids)) {
         while (ok && bson_iter_next(&ids)) {
            bson_t cf = BSON_INITIALIZER, cat;
            bool found = false;
            bson_iter_t anc, a;
            char idx[16];
            const char *k;

            bson_append_iter(&cf, "_id", -1, &ids);
            ok = flora_store_find_one(txn, CATEGORIES, &cf, NULL, &cat, &found, error);
            if (ok && found && bson_iter_init_find(&anc, &cat, "ancestors") && bson_iter_recurse(&anc, &a)) {
               while (bson_iter_next(&a)) {
                  bson_iter_t aid;

                  if (bson_iter_recurse(&a, &aid) && bson_iter_find(&aid, "_id")) {
                     bson_uint32_to_string(n++, &k, idx, sizeof idx);
                     bson_append_iter(&tree, k, -1, &aid);
                  }
               }
            }
            if (ok && found) {
               bson_uint32_to_string(n++, &k, idx, sizeof idx);
               bson_append_iter(&tree, k, -1, &ids);
            }
            bson_destroy(&cf);
            bson_destroy(&cat);
         }
      }
      bson_append_array_end(&set, &tree);
      BSON_APPEND_DATE_TIME(&set, "updatedAt", flora__shop_now_ms());
      bson_append_document_end(&update, &set);
      ok = ok && flora_store_update_one(txn, PRODUCTS, &idf, &update, NULL, NULL, error);
      bson_destroy(&idf);
      bson_destroy(&update);
   }
   flora_docs_clear(&products);
   return ok;
}

/* Rewrites the ancestors of every descendant of `cat` (already stored in its new form). */
static bool
refresh_descendants(flora_store_t *txn, const bson_t *cat, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   flora_docs_t descendants = FLORA_DOCS_INIT;
   bson_iter_t it;
   bool ok;

   bson_iter_init_find(&it, cat, "_id");
   bson_append_iter(&filter, "ancestors._id", -1, &it);
   /* parents before children: fewer ancestors first */
   BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
   BSON_APPEND_INT32(&sort, "ancestors", 1);
   bson_append_document_end(&opts, &sort);
   ok = flora_store_find(txn, CATEGORIES, &filter, NULL, &cursor, error);
   while (ok && flora_cursor_next(cursor, &doc)) {
      flora_docs_append_copy(&descendants, doc);
   }
   ok = ok && !flora_cursor_error(cursor, error);
   flora_cursor_destroy(cursor);
   bson_destroy(&filter);
   bson_destroy(&opts);
   /* Process by depth so each child's parent is already rewritten. */
   for (size_t depth = 1; ok && depth <= 12; depth++) {
      for (size_t i = 0; ok && i < descendants.len; i++) {
         bson_iter_t anc, a, pid;
         size_t count = 0;
         bson_t pf = BSON_INITIALIZER, parent, idf = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
         bool found = false;

         if (bson_iter_init_find(&anc, descendants.items[i], "ancestors") && bson_iter_recurse(&anc, &a)) {
            while (bson_iter_next(&a)) {
               count++;
            }
         }
         if (count != depth) {
            bson_destroy(&pf);
            bson_destroy(&idf);
            bson_destroy(&update);
            continue;
         }
         bson_iter_init_find(&pid, descendants.items[i], "parentId");
         bson_append_iter(&pf, "_id", -1, &pid);
         ok = flora_store_find_one(txn, CATEGORIES, &pf, NULL, &parent, &found, error);
         if (ok && found) {
            bson_iter_init_find(&it, descendants.items[i], "_id");
            bson_append_iter(&idf, "_id", -1, &it);
            BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
            append_ancestors(&set, &parent, true);
            BSON_APPEND_DATE_TIME(&set, "updatedAt", flora__shop_now_ms());
            bson_append_document_end(&update, &set);
            ok = flora_store_update_one(txn, CATEGORIES, &idf, &update, NULL, NULL, error);
         }
         bson_destroy(&pf);
         bson_destroy(&parent);
         bson_destroy(&idf);
         bson_destroy(&update);
      }
   }
   flora_docs_clear(&descendants);
   return ok;
}

typedef struct category_ctx {
   const bson_t *input;
   const char *slug; /* the category to update; NULL: upsert by input.slug */
   bson_t *problems;
   bson_t *out;
   bool created;
   bool remove;
} category_ctx_t;

static bool
category_txn(flora_store_t *txn, void *data, flora_error_t *error)
{
   category_ctx_t *ctx = data;
   bson_t existing, doc, filter = BSON_INITIALIZER;
   bson_iter_t it;
   const char *slug = ctx->slug;
   bool found = false, ok = false;

   bson_init(&doc);
   if (ctx->problems) {
      bson_reinit(ctx->problems);
   }
   if (!slug && bson_iter_init_find(&it, ctx->input, "slug") && BSON_ITER_HOLDS_UTF8(&it)) {
      slug = bson_iter_utf8(&it, NULL);
   }
   if (slug) {
      if (!flora__shop_find_by_string(txn, CATEGORIES, "slug", slug, &existing, &found, error)) {
         goto cleanup;
      }
   } else {
      bson_init(&existing);
   }
   if (!found) {
      if (ctx->slug) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no category has slug '%s'", ctx->slug);
         goto cleanup;
      }
      ctx->created = true;
      ok = flora_catalog_create_category(txn, ctx->input, ctx->problems, ctx->out, error);
      goto cleanup;
   }
   bson_iter_init_find(&it, &existing, "_id");
   bson_append_iter(&filter, "_id", -1, &it);
   if (ctx->remove) {
      bson_t children = BSON_INITIALIZER, pull = BSON_INITIALIZER, pf = BSON_INITIALIZER, inner;
      int64_t n_children = 0;

      bson_append_iter(&children, "parentId", -1, &it);
      ok = flora_store_count_documents(txn, CATEGORIES, &children, NULL, &n_children, error);
      bson_destroy(&children);
      if (ok && n_children > 0) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                         "category '%s' has %lld subcategories: move or delete them first", slug,
                         (long long) n_children);
         ok = false;
      }
      if (ok) {
         bson_append_iter(&pf, "categoryIds", -1, &it);
         BSON_APPEND_DOCUMENT_BEGIN(&pull, "$pull", &inner);
         bson_append_iter(&inner, "categoryIds", -1, &it);
         bson_append_iter(&inner, "categoryTree", -1, &it);
         bson_append_document_end(&pull, &inner);
         ok = flora_store_update_many(txn, PRODUCTS, &pf, &pull, NULL, NULL, error) &&
              flora_store_delete_one(txn, CATEGORIES, &filter, NULL, NULL, error);
      }
      bson_destroy(&pull);
      bson_destroy(&pf);
      goto cleanup;
   }
   bson_destroy(&doc);
   if (!build_category(txn, ctx->input, &existing, &doc, ctx->problems, error)) {
      goto cleanup;
   }
   if (!flora_store_replace_one(txn, CATEGORIES, &filter, &doc, NULL, NULL, error)) {
      flora__shop_map_duplicate(error, "a category");
      goto cleanup;
   }
   ok = refresh_descendants(txn, &doc, error);
   if (ok) {
      bson_iter_init_find(&it, &doc, "_id");
      ok = refresh_products(txn, bson_iter_oid(&it), error);
   }
   if (ok && ctx->out) {
      bson_destroy(ctx->out);
      bson_copy_to(&doc, ctx->out);
   }
cleanup:
   bson_destroy(&existing);
   bson_destroy(&doc);
   bson_destroy(&filter);
   return ok;
}

bool
flora_catalog_upsert_category(flora_store_t *store, const bson_t *input, bson_t *problems, bool *created,
                              flora_error_t *error)
{
   category_ctx_t ctx = {.input = input, .problems = problems};
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(input);
   ok = flora_store_with_transaction(store, category_txn, &ctx, error);
   if (created) {
      *created = ok && ctx.created;
   }
   return ok;
}

bool
flora_catalog_update_category(flora_store_t *store, const char *slug, const bson_t *patch, bson_t *problems,
                              bson_t *out, flora_error_t *error)
{
   category_ctx_t ctx = {.input = patch, .slug = slug, .problems = problems, .out = out};

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(slug);
   if (out) {
      bson_init(out);
   }
   return flora_store_with_transaction(store, category_txn, &ctx, error);
}

bool
flora_catalog_delete_category(flora_store_t *store, const char *slug, flora_error_t *error)
{
   bson_t empty = BSON_INITIALIZER;
   category_ctx_t ctx = {.input = &empty, .slug = slug, .remove = true};
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(slug);
   ok = flora_store_with_transaction(store, category_txn, &ctx, error);
   bson_destroy(&empty);
   return ok;
}
