/* Array update operators: $push (with $each, $slice, $sort, $position), $addToSet (with
 * $each), $pull (a value or a condition), $pullAll and $pop.
 *
 * Semantics from the MongoDB manual ("Array Update Operators" and each operator's page):
 * - $push appends; with $each the values are inserted at $position (negative counts from
 *   the end), then the whole array is sorted by $sort (1/-1: by value in BSON order; a
 *   document {field: 1/-1}: by those fields of document elements, a missing field or a
 *   non-document element sorting as null), then trimmed by $slice (>= 0 keeps the first
 *   N, < 0 the last N).
 * - $addToSet appends each value not already present (BSON equality, numbers by value).
 * - $pull removes the elements equal to a value; a condition document whose first field
 *   is not an operator is a query matched against document elements; an operator
 *   document (or a regex) is applied to each element's value.
 * - $pullAll removes the elements equal to any of the listed values; $pop removes the
 *   first (-1) or last (1) element.
 * On a missing field $push and $addToSet create the array, the others do nothing. A
 * non-array field is an error (code 2). */
#include "update_private.h"

#include <stdio.h>
#include <string.h>

/* The key under which $pull wraps elements for an operator condition. */
#define PULL_KEY "v"

static void
push_value(bson_value_t **list, size_t *len, const bson_value_t *v)
{
   *list = bson_realloc(*list, (*len + 1) * sizeof **list);
   bson_value_copy(v, &(*list)[*len]);
   (*len)++;
}

void
flora__update_leaf_clear_array(leaf_t *leaf)
{
   for (size_t i = 0; i < leaf->n_each; i++) {
      bson_value_destroy(&leaf->each[i]);
   }
   bson_free(leaf->each);
   leaf->each = NULL;
   leaf->n_each = 0;
   bson_destroy(leaf->sort_pattern);
   leaf->sort_pattern = NULL;
   flora_matcher_destroy(leaf->pull_matcher);
   leaf->pull_matcher = NULL;
}

static bool
integral(const bson_iter_t *it, int64_t *out)
{
   double d;

   switch (bson_iter_type(it)) {
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
      *out = bson_iter_as_int64(it);
      return true;
   case BSON_TYPE_DOUBLE:
      d = bson_iter_double(it);
      if (d != d || d < -9.2e18 || d > 9.2e18 || (double) (int64_t) d != d) {
         return false;
      }
      *out = (int64_t) d;
      return true;
   case BSON_TYPE_DECIMAL128: {
      _Decimal128 x;
      bson_decimal128_t b;
      bson_iter_decimal128(it, &b);
      memcpy(&x, &b, sizeof x);
      if (x != x || x < -9.2e18DL || x > 9.2e18DL || (_Decimal128) (int64_t) x != x) {
         return false;
      }
      *out = (int64_t) x;
      return true;
   }
   default:
      return false;
   }
}

static bool
parse_sort(leaf_t *leaf, const bson_iter_t *it, flora_error_t *error)
{
   int64_t dir;
   bson_iter_t child;
   const uint8_t *data;
   uint32_t len;

   if (bson_iter_type(it) != BSON_TYPE_DOCUMENT) {
      if (!integral(it, &dir) || (dir != 1 && dir != -1)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "The $sort is invalid: use 1/-1 to sort the whole element, or "
                         "{field:1/-1} to sort embedded fields");
         return false;
      }
      leaf->sort = 1;
      leaf->sort_dir = (int) dir;
      return true;
   }
   bson_iter_recurse(it, &child);
   if (!bson_iter_next(&child)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The $sort pattern is empty when it should be a set of fields.");
      return false;
   }
   do {
      const char *key = bson_iter_key(&child);
      if (!*key || key[0] == '.' || key[strlen(key) - 1] == '.' || strstr(key, "..")) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "The $sort field is a dotted field but has an empty part: %s", key);
         return false;
      }
      if (!integral(&child, &dir) || (dir != 1 && dir != -1)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "The $sort element value must be either 1 or -1");
         return false;
      }
   } while (bson_iter_next(&child));
   bson_iter_document(it, &len, &data);
   leaf->sort = 2;
   leaf->sort_pattern = bson_new_from_data(data, len);
   return true;
}

static bool
parse_push(leaf_t *leaf, const bson_iter_t *it, flora_error_t *error)
{
   bson_iter_t child, each;

   if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child) ||
       !bson_iter_find(&child, "$each")) {
      push_value(&leaf->each, &leaf->n_each, bson_iter_value((bson_iter_t *) it));
      return true;
   }
   bson_iter_recurse(it, &child);
   while (bson_iter_next(&child)) {
      const char *key = bson_iter_key(&child);
      bson_iter_t dup = child;
      if (bson_iter_find(&dup, key)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "Only one %s is supported.", key);
         return false;
      }
      if (strcmp(key, "$each") == 0) {
         if (!BSON_ITER_HOLDS_ARRAY(&child)) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                            "The argument to $each in $push must be an array but it was of type: "
                            "%s",
                            type_name(bson_iter_type(&child)));
            return false;
         }
         bson_iter_recurse(&child, &each);
         while (bson_iter_next(&each)) {
            push_value(&leaf->each, &leaf->n_each, bson_iter_value(&each));
         }
      } else if (strcmp(key, "$slice") == 0) {
         if (!integral(&child, &leaf->slice)) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                            "The value for $slice must be an integer value but was given type: %s",
                            type_name(bson_iter_type(&child)));
            return false;
         }
         leaf->has_slice = true;
      } else if (strcmp(key, "$sort") == 0) {
         if (!parse_sort(leaf, &child, error)) {
            return false;
         }
      } else if (strcmp(key, "$position") == 0) {
         if (!integral(&child, &leaf->position)) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                            "The value for $position must be an integer value, not of type: %s",
                            type_name(bson_iter_type(&child)));
            return false;
         }
         leaf->has_position = true;
      } else {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "Unrecognized clause in $push: %s", key);
         return false;
      }
   }
   return true;
}

static bool
contains(const bson_value_t *list, size_t len, const bson_value_t *v)
{
   for (size_t i = 0; i < len; i++) {
      if (flora_value_compare(&list[i], v) == 0) {
         return true;
      }
   }
   return false;
}

static bool
parse_add_to_set(leaf_t *leaf, const bson_iter_t *it, flora_error_t *error)
{
   bson_iter_t child, each;

   if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child) ||
       !bson_iter_next(&child) || strcmp(bson_iter_key(&child), "$each") != 0) {
      push_value(&leaf->each, &leaf->n_each, bson_iter_value((bson_iter_t *) it));
      return true;
   }
   if (!BSON_ITER_HOLDS_ARRAY(&child)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_TYPE_MISMATCH,
                      "The argument to $each in $addToSet must be an array but it was of type %s",
                      type_name(bson_iter_type(&child)));
      return false;
   }
   bson_iter_recurse(&child, &each);
   if (bson_iter_next(&child)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "Found unexpected fields after $each in $addToSet: %s",
                      bson_iter_key(&child));
      return false;
   }
   while (bson_iter_next(&each)) {
      if (!contains(leaf->each, leaf->n_each, bson_iter_value(&each))) {
         push_value(&leaf->each, &leaf->n_each, bson_iter_value(&each));
      }
   }
   return true;
}

static bool
parse_pull(leaf_t *leaf, const bson_iter_t *it, flora_error_t *error)
{
   bson_iter_t child;
   const uint8_t *data;
   uint32_t len;
   bson_t cond;
   bson_t wrapped = BSON_INITIALIZER;

   if (BSON_ITER_HOLDS_DOCUMENT(it)) {
      bson_iter_recurse(it, &child);
      if (!bson_iter_next(&child) || bson_iter_key(&child)[0] != '$') {
         /* a query on document elements ({} matches every document) */
         bson_iter_document(it, &len, &data);
         if (!bson_init_static(&cond, data, len)) {
            return false;
         }
         leaf->pull_kind = PULL_OBJECT;
         leaf->pull_matcher = flora_matcher_new(&cond, error);
         return leaf->pull_matcher != NULL;
      }
   }
   if (BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_REGEX(it)) {
      bson_append_value(&wrapped, PULL_KEY, -1, bson_iter_value((bson_iter_t *) it));
      leaf->pull_kind = PULL_WRAPPED;
      leaf->pull_matcher = flora_matcher_new(&wrapped, error);
      bson_destroy(&wrapped);
      return leaf->pull_matcher != NULL;
   }
   bson_destroy(&wrapped);
   leaf->pull_kind = PULL_EQUAL;
   return true;
}

bool
flora__update_parse_array_op(leaf_t *leaf, const char *field, const bson_iter_t *operand,
                             flora_error_t *error)
{
   int64_t dir;
   char json[256];

   switch (leaf->op) {
   case OP_PUSH:
      return parse_push(leaf, operand, error);
   case OP_ADD_TO_SET:
      return parse_add_to_set(leaf, operand, error);
   case OP_PULL:
      return parse_pull(leaf, operand, error);
   case OP_PULL_ALL:
      if (!BSON_ITER_HOLDS_ARRAY(operand)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "$pullAll requires an array argument but was given a %s",
                         type_name(bson_iter_type(operand)));
         return false;
      }
      return true;
   case OP_POP:
      if (!integral(operand, &dir)) {
         flora__update_value_json(bson_iter_value((bson_iter_t *) operand), json, sizeof json);
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "Expected a number in: %s: %s", field, json);
         return false;
      }
      if (dir != 1 && dir != -1) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "$pop expects 1 or -1, found: %lld", (long long) dir);
         return false;
      }
      leaf->pop_dir = (int) dir;
      return true;
   default:
      return true;
   }
}

/* ---- apply --------------------------------------------------------------------------- */

static const bson_value_t NULL_VALUE = {.value_type = BSON_TYPE_NULL};

/* The value at a dotted path of a document element, or null. */
static void
sort_key(const bson_value_t *elem, const char *path, bson_value_t *out)
{
   bson_t doc;
   bson_iter_t it, found;

   *out = NULL_VALUE;
   if (elem->value_type != BSON_TYPE_DOCUMENT ||
       !bson_init_static(&doc, elem->value.v_doc.data, elem->value.v_doc.data_len) ||
       !bson_iter_init(&it, &doc) || !bson_iter_find_descendant(&it, path, &found)) {
      return;
   }
   *out = *bson_iter_value(&found);
}

static int
sort_cmp(const leaf_t *leaf, const bson_value_t *a, const bson_value_t *b)
{
   bson_iter_t it;

   if (leaf->sort == 1) {
      return leaf->sort_dir * flora_value_compare(a, b);
   }
   bson_iter_init(&it, leaf->sort_pattern);
   while (bson_iter_next(&it)) {
      bson_value_t ka, kb;
      int c;
      sort_key(a, bson_iter_key(&it), &ka);
      sort_key(b, bson_iter_key(&it), &kb);
      c = flora_value_compare(&ka, &kb);
      if (c) {
         return bson_iter_as_int64(&it) < 0 ? -c : c;
      }
   }
   return 0;
}

/* Stable merge sort of pointers. */
static void
merge_sort(const leaf_t *leaf, const bson_value_t **v, const bson_value_t **tmp, size_t n)
{
   size_t mid, i, j, k;

   if (n < 2) {
      return;
   }
   mid = n / 2;
   merge_sort(leaf, v, tmp, mid);
   merge_sort(leaf, v + mid, tmp, n - mid);
   for (i = 0, j = mid, k = 0; i < mid || j < n;) {
      if (j >= n || (i < mid && sort_cmp(leaf, v[i], v[j]) <= 0)) {
         tmp[k++] = v[i++];
      } else {
         tmp[k++] = v[j++];
      }
   }
   memcpy(v, tmp, n * sizeof *v);
}

static void
append_all(bson_t *arr, const bson_value_t *const *v, size_t n)
{
   char buf[16];
   const char *k;

   for (size_t i = 0; i < n; i++) {
      size_t kl = bson_uint32_to_string((uint32_t) i, &k, buf, sizeof buf);
      bson_append_value(arr, k, (int) kl, v[i]);
   }
}

/* The elements of the array value arr as borrowed values (caller frees the list). */
static const bson_value_t **
elements(const bson_value_t *arr, bson_value_t **storage, size_t *n)
{
   bson_iter_t it;
   const bson_value_t **list;
   size_t count = 0;

   *n = 0;
   if (bson_iter_init_from_data(&it, arr->value.v_doc.data, arr->value.v_doc.data_len)) {
      while (bson_iter_next(&it)) {
         count++;
      }
   }
   *storage = bson_malloc0((count ? count : 1) * sizeof **storage);
   list = bson_malloc0((count ? count : 1) * sizeof *list);
   if (bson_iter_init_from_data(&it, arr->value.v_doc.data, arr->value.v_doc.data_len)) {
      while (bson_iter_next(&it)) {
         (*storage)[*n] = *bson_iter_value(&it);
         list[*n] = &(*storage)[*n];
         (*n)++;
      }
   }
   return list;
}

/* $push into the existing elements (list of n): writes the new array into out. */
static void
push_into(const leaf_t *leaf, const bson_value_t **old, size_t n, bson_t *out)
{
   size_t total = n + leaf->n_each, pos = n, start = 0, count;
   const bson_value_t **v = bson_malloc0((total ? total : 1) * sizeof *v);
   const bson_value_t **tmp = bson_malloc0((total ? total : 1) * sizeof *tmp);

   if (leaf->has_position) {
      if (leaf->position >= 0) {
         pos = (uint64_t) leaf->position < n ? (size_t) leaf->position : n;
      } else {
         pos = (uint64_t) -leaf->position < n ? n - (size_t) -leaf->position : 0;
      }
   }
   for (size_t i = 0; i < pos; i++) {
      v[i] = old[i];
   }
   for (size_t i = 0; i < leaf->n_each; i++) {
      v[pos + i] = &leaf->each[i];
   }
   for (size_t i = pos; i < n; i++) {
      v[leaf->n_each + i] = old[i];
   }
   if (leaf->sort) {
      merge_sort(leaf, v, tmp, total);
   }
   count = total;
   if (leaf->has_slice) {
      if (leaf->slice >= 0) {
         count = (uint64_t) leaf->slice < total ? (size_t) leaf->slice : total;
      } else {
         count = (uint64_t) -leaf->slice < total ? (size_t) -leaf->slice : total;
         start = total - count;
      }
   }
   append_all(out, v + start, count);
   bson_free(v);
   bson_free(tmp);
}

bool
flora__update_array_create(const leaf_t *leaf, mval_t *out)
{
   bson_t arr = BSON_INITIALIZER;

   if (leaf->op != OP_PUSH && leaf->op != OP_ADD_TO_SET) {
      bson_destroy(&arr);
      return false;
   }
   flora__mval_init_null(out);
   if (leaf->op == OP_PUSH) {
      push_into(leaf, NULL, 0, &arr);
   } else {
      const bson_value_t **v = bson_malloc0((leaf->n_each ? leaf->n_each : 1) * sizeof *v);
      for (size_t i = 0; i < leaf->n_each; i++) {
         v[i] = &leaf->each[i];
      }
      append_all(&arr, v, leaf->n_each);
      bson_free(v);
   }
   flora__mval_set_array(out, &arr);
   bson_destroy(&arr);
   return true;
}

static bool
pull_matches(const leaf_t *leaf, const bson_value_t *elem)
{
   bson_t doc;
   bool m;

   switch (leaf->pull_kind) {
   case PULL_EQUAL:
      return flora_value_compare(elem, &leaf->value) == 0;
   case PULL_OBJECT:
      return elem->value_type == BSON_TYPE_DOCUMENT &&
             bson_init_static(&doc, elem->value.v_doc.data, elem->value.v_doc.data_len) &&
             flora_matcher_match(leaf->pull_matcher, &doc, NULL);
   default:
      bson_init(&doc);
      bson_append_value(&doc, PULL_KEY, -1, elem);
      m = flora_matcher_match(leaf->pull_matcher, &doc, NULL);
      bson_destroy(&doc);
      return m;
   }
}

static bool
in_list(const bson_value_t *arr, const bson_value_t *elem)
{
   bson_iter_t it;

   if (!bson_iter_init_from_data(&it, arr->value.v_doc.data, arr->value.v_doc.data_len)) {
      return false;
   }
   while (bson_iter_next(&it)) {
      if (flora_value_compare(bson_iter_value(&it), elem) == 0) {
         return true;
      }
   }
   return false;
}

static bool
not_array(apply_ctx_t *ctx, const leaf_t *leaf, const mval_t *target, const char *path,
          flora_error_t *error)
{
   const char *type = type_name(flora__mval_type(target));
   char id[256];

   switch (leaf->op) {
   case OP_PUSH:
      flora__update_describe_id(&ctx->root, id, sizeof id);
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The field '%s' must be an array but is of type %s in document {%s}", path,
                      type, id);
      break;
   case OP_ADD_TO_SET:
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "Cannot apply $addToSet to non-array field. Field named '%s' has non-array "
                      "type %s",
                      strrchr(path, '.') ? strrchr(path, '.') + 1 : path, type);
      break;
   case OP_POP:
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_TYPE_MISMATCH,
                      "Path '%s' contains an element of non-array type '%s'", path, type);
      break;
   default:
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "Cannot apply $pull to a non-array value");
      break;
   }
   return false;
}

bool
flora__update_array_existing(apply_ctx_t *ctx, const leaf_t *leaf, mval_t *target,
                             const char *path, flora_error_t *error)
{
   bson_t tmp, arr = BSON_INITIALIZER;
   bson_value_t current, *storage = NULL;
   const bson_value_t **old = NULL, **keep = NULL;
   size_t n = 0, n_keep = 0;

   if (flora__mval_type(target) != BSON_TYPE_ARRAY) {
      bson_destroy(&arr);
      return not_array(ctx, leaf, target, path, error);
   }
   flora__mval_value(target, &tmp, &current);
   old = elements(&current, &storage, &n);
   keep = bson_malloc0((n + leaf->n_each + 1) * sizeof *keep);
   switch (leaf->op) {
   case OP_PUSH:
      push_into(leaf, old, n, &arr);
      break;
   case OP_ADD_TO_SET:
      for (size_t i = 0; i < n; i++) {
         keep[n_keep++] = old[i];
      }
      for (size_t i = 0; i < leaf->n_each; i++) {
         bool present = false;
         for (size_t j = 0; j < n && !present; j++) {
            present = flora_value_compare(old[j], &leaf->each[i]) == 0;
         }
         if (!present) {
            keep[n_keep++] = &leaf->each[i];
         }
      }
      append_all(&arr, keep, n_keep);
      break;
   case OP_PULL:
   case OP_PULL_ALL:
      for (size_t i = 0; i < n; i++) {
         bool drop = leaf->op == OP_PULL ? pull_matches(leaf, old[i]) : in_list(&leaf->value, old[i]);
         if (!drop) {
            keep[n_keep++] = old[i];
         }
      }
      append_all(&arr, keep, n_keep);
      break;
   default: /* OP_POP */
      if (n > 0) {
         append_all(&arr, leaf->pop_dir < 0 ? old + 1 : old, n - 1);
      }
      break;
   }
   flora__mval_set_array(target, &arr);
   bson_destroy(&arr);
   bson_destroy(&tmp);
   bson_free(storage);
   bson_free(old);
   bson_free(keep);
   return true;
}
