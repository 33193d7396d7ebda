/* Documents: storability checks, plain dotted lookups and the implicit-array path walk
 * shared by filters, projection, sort and updates. See include/flora/query.h and
 * query_private.h.
 *
 * Limits from the MongoDB manual, "MongoDB Limits and Thresholds": BSON documents at most
 * 16 MiB, at most 100 levels of nesting; field names not empty and not `$`-prefixed
 * (server error codes EmptyFieldName 56, DollarPrefixedFieldName 52, Overflow 15,
 * BSONObjectTooLarge 10334 from error_codes.yml). */
#include <string.h>

#include "query/query_private.h"

#define MAX_DOC_SIZE (16 * 1024 * 1024)
#define MAX_DEPTH 100

/* ---- storability ------------------------------------------------------------------- */

static bool
is_dbref_name(const char *key)
{
   return strcmp(key, "$ref") == 0 || strcmp(key, "$id") == 0 || strcmp(key, "$db") == 0;
}

static bool
check_level(bson_iter_t *it, int depth, bool in_array, const char *parent,
            flora_error_t *error)
{
   while (bson_iter_next(it)) {
      const char *key = bson_iter_key(it);
      bson_iter_t child;

      if (!in_array) {
         if (key[0] == '\0') {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_EMPTY_FIELD_NAME,
                            "field names cannot be empty%s%s", parent ? ": in " : "",
                            parent ? parent : "");
            return false;
         }
         if (key[0] == '$' && (depth == 1 || !is_dbref_name(key))) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_DOLLAR_PREFIXED,
                            "the dollar ($) prefixed field '%s' is not valid for storage", key);
            return false;
         }
      }
      if (BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) {
         if (depth + 1 > MAX_DEPTH) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_OVERFLOW,
                            "document exceeds maximum nesting depth of %d", MAX_DEPTH);
            return false;
         }
         if (!bson_iter_recurse(it, &child)) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                            "field '%s' holds corrupt BSON", key);
            return false;
         }
         if (!check_level(&child, depth + 1, BSON_ITER_HOLDS_ARRAY(it), key, error)) {
            return false;
         }
      }
   }
   if (it->err_off != 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "corrupt BSON document");
      return false;
   }
   return true;
}

bool
flora_document_check_storable(const bson_t *doc, flora_error_t *error)
{
   bson_iter_t it;

   FLORA_ASSERT_ARG(doc);
   if (doc->len > MAX_DOC_SIZE) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BSON_TOO_LARGE,
                      "object to insert too large: size in bytes %u, max size %d", doc->len,
                      MAX_DOC_SIZE);
      return false;
   }
   if (!bson_iter_init(&it, doc)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "corrupt BSON document");
      return false;
   }
   return check_level(&it, 1, false, NULL, error);
}

/* ---- plain lookups ----------------------------------------------------------------- */

bool
flora__iter_find_child(const bson_iter_t *container, const char *key, size_t len,
                       bson_iter_t *out)
{
   bson_iter_t child;

   if (!BSON_ITER_HOLDS_DOCUMENT(container) && !BSON_ITER_HOLDS_ARRAY(container)) {
      return false;
   }
   if (!bson_iter_recurse(container, &child)) {
      return false;
   }
   while (bson_iter_next(&child)) {
      if (bson_iter_key_len(&child) == len && memcmp(bson_iter_key(&child), key, len) == 0) {
         *out = child;
         return true;
      }
   }
   return false;
}

static bool
find_in_doc(const bson_t *doc, const char *key, size_t len, bson_iter_t *out)
{
   bson_iter_t it;

   if (!bson_iter_init(&it, doc)) {
      return false;
   }
   while (bson_iter_next(&it)) {
      if (bson_iter_key_len(&it) == len && memcmp(bson_iter_key(&it), key, len) == 0) {
         *out = it;
         return true;
      }
   }
   return false;
}

bool
flora_document_get_path(const bson_t *doc, const char *path, bson_iter_t *out)
{
   const char *p = path;
   bson_iter_t cur;
   bool first = true;

   FLORA_ASSERT_ARG(doc);
   FLORA_ASSERT_ARG(path);
   FLORA_ASSERT_ARG(out);
   for (;;) {
      const char *dot = strchr(p, '.');
      size_t len = dot ? (size_t) (dot - p) : strlen(p);
      bson_iter_t next;

      if (first) {
         if (!find_in_doc(doc, p, len, &next)) {
            return false;
         }
         first = false;
      } else if (!flora__iter_find_child(&cur, p, len, &next)) {
         return false;
      }
      cur = next;
      if (!dot) {
         *out = cur;
         return true;
      }
      p = dot + 1;
   }
}

/* ---- paths ------------------------------------------------------------------------- */

int
flora__parse_index(const char *s, size_t len)
{
   int v = 0;

   if (len == 0 || len > 9 || (len > 1 && s[0] == '0')) {
      return -1;
   }
   for (size_t i = 0; i < len; i++) {
      if (s[i] < '0' || s[i] > '9') {
         return -1;
      }
      v = v * 10 + (s[i] - '0');
   }
   return v;
}

void
flora__path_clear(flora__path_t *path)
{
   if (!path) {
      return;
   }
   for (size_t i = 0; i < path->n; i++) {
      bson_free(path->parts[i]);
   }
   bson_free(path->parts);
   bson_free(path->part_lens);
   bson_free(path->part_index);
   bson_free(path->dotted);
   memset(path, 0, sizeof *path);
}

bool
flora__path_init(flora__path_t *out, const char *path, flora_error_t *error)
{
   size_t n = 1;
   const char *p;

   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(path);
   memset(out, 0, sizeof *out);
   if (path[0] == '\0') {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "field path cannot be empty");
      return false;
   }
   for (p = path; *p; p++) {
      n += *p == '.';
   }
   out->dotted = bson_strdup(path);
   out->parts = bson_malloc0(n * sizeof *out->parts);
   out->part_lens = bson_malloc0(n * sizeof *out->part_lens);
   out->part_index = bson_malloc0(n * sizeof *out->part_index);
   p = path;
   for (size_t i = 0; i < n; i++) {
      const char *dot = strchr(p, '.');
      size_t len = dot ? (size_t) (dot - p) : strlen(p);

      if (len == 0) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "field path '%s' has an empty component", path);
         out->n = i;
         flora__path_clear(out);
         return false;
      }
      out->parts[i] = bson_strndup(p, len);
      out->part_lens[i] = len;
      out->part_index[i] = flora__parse_index(p, len);
      out->n = i + 1;
      p = dot ? dot + 1 : p + len;
   }
   return true;
}

static bool walk_at(const flora__path_t *path, size_t next, const bson_iter_t *value,
                    int array_index, int flags, flora__path_visit_fn visit, void *ctx);

bool
flora__path_walk_iter(const flora__path_t *path, size_t from, const bson_iter_t *container,
                      int array_index, int flags, flora__path_visit_fn visit, void *ctx)
{
   bson_iter_t child;

   if (!flora__iter_find_child(container, path->parts[from], path->part_lens[from], &child)) {
      return visit(ctx, FLORA__VISIT_MISSING, NULL, array_index);
   }
   return walk_at(path, from + 1, &child, array_index, flags, visit, ctx);
}

/* value was reached by components [0, next). */
static bool
walk_at(const flora__path_t *path, size_t next, const bson_iter_t *value, int array_index,
        int flags, flora__path_visit_fn visit, void *ctx)
{
   bson_iter_t elems;

   if (next == path->n) {
      if ((flags & FLORA__WALK_EXPAND_LEAF) && BSON_ITER_HOLDS_ARRAY(value) &&
          bson_iter_recurse(value, &elems)) {
         int k = 0;

         while (bson_iter_next(&elems)) {
            if (!visit(ctx, FLORA__VISIT_ELEMENT, &elems, array_index >= 0 ? array_index : k)) {
               return false;
            }
            k++;
         }
      }
      return visit(ctx, FLORA__VISIT_VALUE, value, array_index);
   }
   if (BSON_ITER_HOLDS_DOCUMENT(value)) {
      return flora__path_walk_iter(path, next, value, array_index, flags, visit, ctx);
   }
   if (BSON_ITER_HOLDS_ARRAY(value)) {
      int k = 0;

      if (path->part_index[next] >= 0) {
         bson_iter_t at;

         if (flora__iter_find_child(value, path->parts[next], path->part_lens[next], &at)) {
            if (!walk_at(path, next + 1, &at, array_index, flags, visit, ctx)) {
               return false;
            }
         }
      }
      if (!bson_iter_recurse(value, &elems)) {
         return true;
      }
      while (bson_iter_next(&elems)) {
         if (BSON_ITER_HOLDS_DOCUMENT(&elems)) {
            if (!flora__path_walk_iter(path, next, &elems, array_index >= 0 ? array_index : k,
                                       flags, visit, ctx)) {
               return false;
            }
         }
         k++;
      }
      return true;
   }
   return visit(ctx, FLORA__VISIT_MISSING, NULL, array_index);
}

bool
flora__path_walk(const flora__path_t *path, const bson_t *doc, int flags,
                 flora__path_visit_fn visit, void *ctx)
{
   bson_iter_t child;

   FLORA_ASSERT_ARG(path);
   FLORA_ASSERT_ARG(doc);
   FLORA_ASSERT_ARG(visit);
   if (!find_in_doc(doc, path->parts[0], path->part_lens[0], &child)) {
      return visit(ctx, FLORA__VISIT_MISSING, NULL, -1);
   }
   return walk_at(path, 1, &child, -1, flags, visit, ctx);
}
