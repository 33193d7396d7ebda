/* Update documents: compile once into a path tree, apply to many documents.
 *
 * The semantics follow the MongoDB manual ("Update Operators", "Field Update
 * Operators", "Array Update Operators", "The positional $ operator", "$[]",
 * "$[<identifier>]") and the structure of the server's update subsystem: the paths of an
 * update form a tree (one node per path component) in which two operators touching the
 * same path or a path and its prefix conflict (code 40). At apply time the children of a
 * level are visited in field-name order (numeric names numerically), so fields an update
 * creates are appended to their parent in that order, while existing fields keep their
 * place. A path whose prefix is missing is created as nested documents (an array index
 * pads the array with nulls); a path through a scalar is not viable (code 28). */
#include "query_private.h"
#include "update_private.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MongoDB refuses to pad an array beyond this many elements (path_support.cpp). */
#define MAX_ARRAY_PADDING 1500000

/* ---- the mutable value tree ---------------------------------------------------------- */

void
flora__mval_init_borrowed(mval_t *mv, const bson_value_t *v)
{
   memset(mv, 0, sizeof *mv);
   mv->kind = MV_VALUE;
   mv->value = *v;
}

void
flora__mval_init_copy(mval_t *mv, const bson_value_t *v)
{
   memset(mv, 0, sizeof *mv);
   mv->kind = MV_VALUE;
   bson_value_copy(v, &mv->value);
   mv->owned = true;
}

void
flora__mval_init_doc(mval_t *mv)
{
   memset(mv, 0, sizeof *mv);
   mv->kind = MV_DOC;
   mv->value.value_type = BSON_TYPE_EOD;
}

void
flora__mval_init_null(mval_t *mv)
{
   memset(mv, 0, sizeof *mv);
   mv->kind = MV_VALUE;
   mv->value.value_type = BSON_TYPE_NULL;
}

void
flora__mval_clear(mval_t *mv)
{
   for (size_t i = 0; i < mv->len; i++) {
      bson_free(mv->fields[i].key);
      flora__mval_clear(&mv->fields[i].val);
   }
   bson_free(mv->fields);
   if (mv->owned) {
      bson_value_destroy(&mv->value);
   }
   flora__mval_init_null(mv);
}

void
flora__mval_move(mval_t *dst, mval_t *src)
{
   flora__mval_clear(dst);
   *dst = *src;
   flora__mval_init_null(src);
}

void
flora__mval_expand(mval_t *mv)
{
   bson_iter_t it;
   bson_type_t t = mv->value.value_type;

   if (mv->kind != MV_VALUE || (t != BSON_TYPE_DOCUMENT && t != BSON_TYPE_ARRAY)) {
      return;
   }
   mv->kind = t == BSON_TYPE_DOCUMENT ? MV_DOC : MV_ARRAY;
   if (!bson_iter_init_from_data(&it, mv->value.value.v_doc.data, mv->value.value.v_doc.data_len)) {
      return;
   }
   while (bson_iter_next(&it)) {
      mval_t *slot = flora__mval_push(mv, mv->kind == MV_DOC ? bson_iter_key(&it) : NULL);
      flora__mval_init_borrowed(slot, bson_iter_value(&it));
   }
}

bson_type_t
flora__mval_type(const mval_t *mv)
{
   switch (mv->kind) {
   case MV_DOC:
      return BSON_TYPE_DOCUMENT;
   case MV_ARRAY:
      return BSON_TYPE_ARRAY;
   default:
      return mv->value.value_type;
   }
}

void
flora__mval_append(bson_t *dst, const char *key, int key_len, const mval_t *mv)
{
   bson_t child;
   char buf[16];
   const char *k;

   switch (mv->kind) {
   case MV_DOC:
      bson_append_document_begin(dst, key, key_len, &child);
      for (size_t i = 0; i < mv->len; i++) {
         flora__mval_append(&child, mv->fields[i].key, -1, &mv->fields[i].val);
      }
      bson_append_document_end(dst, &child);
      break;
   case MV_ARRAY:
      bson_append_array_begin(dst, key, key_len, &child);
      for (size_t i = 0; i < mv->len; i++) {
         size_t kl = bson_uint32_to_string((uint32_t) i, &k, buf, sizeof buf);
         flora__mval_append(&child, k, (int) kl, &mv->fields[i].val);
      }
      bson_append_array_end(dst, &child);
      break;
   default:
      bson_append_value(dst, key, key_len, &mv->value);
      break;
   }
}

void
flora__mval_value(const mval_t *mv, bson_t *tmp, bson_value_t *out)
{
   char buf[16];
   const char *k;

   bson_init(tmp);
   if (mv->kind == MV_VALUE) {
      *out = mv->value;
      return;
   }
   for (size_t i = 0; i < mv->len; i++) {
      if (mv->kind == MV_DOC) {
         flora__mval_append(tmp, mv->fields[i].key, -1, &mv->fields[i].val);
      } else {
         size_t kl = bson_uint32_to_string((uint32_t) i, &k, buf, sizeof buf);
         flora__mval_append(tmp, k, (int) kl, &mv->fields[i].val);
      }
   }
   memset(out, 0, sizeof *out);
   out->value_type = mv->kind == MV_DOC ? BSON_TYPE_DOCUMENT : BSON_TYPE_ARRAY;
   out->value.v_doc.data = (uint8_t *) bson_get_data(tmp);
   out->value.v_doc.data_len = tmp->len;
}

mval_t *
flora__mval_push(mval_t *container, const char *key)
{
   mfield_t *f;

   if (container->len == container->cap) {
      container->cap = container->cap ? container->cap * 2 : 8;
      container->fields = bson_realloc(container->fields, container->cap * sizeof *container->fields);
   }
   f = &container->fields[container->len++];
   f->key = key ? bson_strdup(key) : NULL;
   flora__mval_init_null(&f->val);
   return &f->val;
}

void
flora__mval_remove(mval_t *container, size_t i)
{
   bson_free(container->fields[i].key);
   flora__mval_clear(&container->fields[i].val);
   memmove(&container->fields[i], &container->fields[i + 1],
           (container->len - i - 1) * sizeof *container->fields);
   container->len--;
}

void
flora__mval_set_array(mval_t *mv, const bson_t *arr)
{
   flora__mval_clear(mv);
   mv->value.value_type = BSON_TYPE_ARRAY;
   mv->value.value.v_doc.data = bson_malloc(arr->len);
   memcpy(mv->value.value.v_doc.data, bson_get_data(arr), arr->len);
   mv->value.value.v_doc.data_len = arr->len;
   mv->owned = true;
}

/* ---- messages ------------------------------------------------------------------------ */

void
flora__update_value_json(const bson_value_t *v, char *buf, size_t size)
{
   bson_t tmp = BSON_INITIALIZER;
   char *json;
   size_t len;

   bson_append_value(&tmp, "v", 1, v);
   json = bson_as_relaxed_extended_json(&tmp, &len);
   /* strip the wrapper: { "v" : X } */
   if (json && len > 10) {
      snprintf(buf, size, "%.*s", (int) (len - 10), json + 8);
   } else {
      snprintf(buf, size, "?");
   }
   bson_free(json);
   bson_destroy(&tmp);
}

static void
mval_json(const mval_t *mv, char *buf, size_t size)
{
   bson_t tmp;
   bson_value_t v;

   flora__mval_value(mv, &tmp, &v);
   flora__update_value_json(&v, buf, size);
   bson_destroy(&tmp);
}

void
flora__update_describe_id(const mval_t *root, char *buf, size_t size)
{
   char json[256];

   for (size_t i = 0; root->kind == MV_DOC && i < root->len; i++) {
      if (strcmp(root->fields[i].key, "_id") == 0) {
         mval_json(&root->fields[i].val, json, sizeof json);
         snprintf(buf, size, "_id: %s", json);
         return;
      }
   }
   snprintf(buf, size, "no id");
}

/* ---- compiled form ------------------------------------------------------------------- */

typedef enum { N_OBJECT, N_ARRAY, N_LEAF } node_kind_t;

typedef struct unode unode_t;

typedef struct uchild {
   char *name; /* N_OBJECT: field name; N_ARRAY: identifier ("" for $[]) */
   unode_t *node;
} uchild_t;

struct unode {
   node_kind_t kind;
   uchild_t *children;
   size_t n_children;
   unode_t *positional; /* N_OBJECT: the `$` child */
   leaf_t leaf;
};

typedef struct array_filter {
   char *id;
   flora_matcher_t *matcher;
   bool used;
} array_filter_t;

struct flora_update {
   bool replacement;
   bson_t *doc; /* the replacement document */
   unode_t *root;
   array_filter_t *filters;
   size_t n_filters;
   size_t max_depth;
};

static void
node_destroy(unode_t *node)
{
   if (!node) {
      return;
   }
   for (size_t i = 0; i < node->n_children; i++) {
      bson_free(node->children[i].name);
      node_destroy(node->children[i].node);
   }
   bson_free(node->children);
   node_destroy(node->positional);
   if (node->kind == N_LEAF) {
      if (node->leaf.value.value_type != BSON_TYPE_EOD) {
         bson_value_destroy(&node->leaf.value);
      }
      bson_free(node->leaf.from);
      for (size_t i = 0; i < node->leaf.n_from; i++) {
         bson_free(node->leaf.from_comps[i]);
      }
      bson_free(node->leaf.from_comps);
      flora__update_leaf_clear_array(&node->leaf);
   }
   bson_free(node);
}

void
flora_update_destroy(flora_update_t *update)
{
   if (!update) {
      return;
   }
   bson_destroy(update->doc);
   node_destroy(update->root);
   for (size_t i = 0; i < update->n_filters; i++) {
      bson_free(update->filters[i].id);
      flora_matcher_destroy(update->filters[i].matcher);
   }
   bson_free(update->filters);
   bson_free(update);
}

bool
flora_update_is_replacement(const flora_update_t *update)
{
   FLORA_ASSERT_ARG(update);
   return update->replacement;
}

/* A path component that indexes an array: decimal digits only, no sign (the server's
 * parseUnsignedBase10Integer). */
static bool
parse_index(const char *s, size_t *out)
{
   size_t v = 0;

   if (!*s) {
      return false;
   }
   for (const char *p = s; *p; p++) {
      if (*p < '0' || *p > '9' || v > (SIZE_MAX - 9) / 10) {
         return false;
      }
      v = v * 10 + (size_t) (*p - '0');
   }
   *out = v;
   return true;
}

/* Children order, the server's cmpPathsAndArrayIndexes: names that are numbers without a
 * leading zero compare as numbers, everything else by bytes. */
static int
child_cmp(const char *a, const char *b)
{
   size_t la = strlen(a), lb = strlen(b);

   if (!la || !lb || a[0] < '0' || a[0] > '9' || b[0] < '0' || b[0] > '9' ||
       (a[0] == '0' && la > 1) || (b[0] == '0' && lb > 1)) {
      return strcmp(a, b);
   }
   if (la != lb) {
      return la < lb ? -1 : 1;
   }
   return strcmp(a, b);
}

static bool
is_array_id(const char *comp)
{
   size_t n = strlen(comp);
   return n >= 3 && comp[0] == '$' && comp[1] == '[' && comp[n - 1] == ']';
}

typedef struct path {
   char **comps;
   size_t n;
} path_t;

static void
path_clear(path_t *p)
{
   for (size_t i = 0; i < p->n; i++) {
      bson_free(p->comps[i]);
   }
   bson_free(p->comps);
   p->comps = NULL;
   p->n = 0;
}

static void
path_split(const char *dotted, path_t *p)
{
   const char *s = dotted;
   size_t n = 1;

   for (const char *q = dotted; *q; q++) {
      n += *q == '.';
   }
   p->comps = bson_malloc0(n * sizeof *p->comps);
   p->n = 0;
   for (;;) {
      const char *dot = strchr(s, '.');
      size_t len = dot ? (size_t) (dot - s) : strlen(s);
      p->comps[p->n++] = bson_strndup(s, len);
      if (!dot) {
         break;
      }
      s = dot + 1;
   }
}

/* Validates an update path (fieldchecker in the server). */
static bool
check_path(const char *dotted, const path_t *p, flora_error_t *error)
{
   int positional = 0;

   if (!*dotted) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_EMPTY_FIELD_NAME,
                      "An empty update path is not valid.");
      return false;
   }
   for (size_t i = 0; i < p->n; i++) {
      const char *c = p->comps[i];
      if (!*c) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_EMPTY_FIELD_NAME,
                         "The update path '%s' contains an empty field name, which is not allowed.",
                         dotted);
         return false;
      }
      if (strcmp(c, "$") == 0) {
         if (i == 0) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                            "Cannot have positional (i.e. '$') element in the first component in "
                            "path '%s'",
                            dotted);
            return false;
         }
         if (++positional > 1) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                            "Too many positional (i.e. '$') elements found in path '%s'", dotted);
            return false;
         }
      } else if (is_array_id(c)) {
         if (i == 0) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                            "Cannot have array filter identifier (i.e. '$[<id>]') element in the "
                            "first component in path '%s'",
                            dotted);
            return false;
         }
      } else if (c[0] == '$') {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_DOLLAR_PREFIXED,
                         "The dollar ($) prefixed field '%s' in '%s' is not valid for storage.", c,
                         dotted);
         return false;
      }
   }
   return true;
}

static bool
is_dynamic(const path_t *p)
{
   for (size_t i = 0; i < p->n; i++) {
      if (strcmp(p->comps[i], "$") == 0 || is_array_id(p->comps[i])) {
         return true;
      }
   }
   return false;
}

static unode_t *
node_new(node_kind_t kind)
{
   unode_t *n = bson_malloc0(sizeof *n);
   n->kind = kind;
   n->leaf.value.value_type = BSON_TYPE_EOD;
   return n;
}

static void
conflict(const char *dotted, const path_t *p, size_t upto, flora_error_t *error)
{
   char prefix[512] = "";
   size_t off = 0;

   for (size_t i = 0; i <= upto && i < p->n; i++) {
      int w = snprintf(prefix + off, sizeof prefix - off, "%s%s", i ? "." : "", p->comps[i]);
      if (w < 0 || (size_t) w >= sizeof prefix - off) {
         break;
      }
      off += (size_t) w;
   }
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_CONFLICTING_UPDATE,
                   "Updating the path '%s' would create a conflict at '%s'", dotted, prefix);
}

static array_filter_t *
find_filter(flora_update_t *u, const char *id, size_t id_len)
{
   for (size_t i = 0; i < u->n_filters; i++) {
      if (strlen(u->filters[i].id) == id_len && strncmp(u->filters[i].id, id, id_len) == 0) {
         return &u->filters[i];
      }
   }
   return NULL;
}

/* Inserts the leaf at the path into the tree; takes the leaf node on success. */
static bool
tree_insert(flora_update_t *u, const char *dotted, const path_t *p, unode_t *leaf,
            flora_error_t *error)
{
   unode_t *node = u->root;

   if (p->n > u->max_depth) {
      u->max_depth = p->n;
   }
   for (size_t i = 0; i < p->n; i++) {
      const char *comp = p->comps[i];
      bool last = i + 1 == p->n;
      node_kind_t want = last ? N_LEAF : (is_array_id(p->comps[i + 1]) ? N_ARRAY : N_OBJECT);
      unode_t **slot = NULL;
      const char *name = comp;
      size_t name_len = strlen(comp);

      if (node->kind == N_ARRAY) {
         name = comp + 2;
         name_len -= 3;
         if (name_len > 0) {
            array_filter_t *f = find_filter(u, name, name_len);
            if (!f) {
               flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                               "No array filter found for identifier '%.*s' in path '%s'",
                               (int) name_len, name, dotted);
               return false;
            }
            f->used = true;
         }
      } else if (strcmp(comp, "$") == 0) {
         slot = &node->positional;
      }
      if (!slot) {
         size_t lo = 0, hi = node->n_children;
         char *key = bson_strndup(name, name_len);
         /* binary search for the insertion point */
         while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            int c = child_cmp(node->children[mid].name, key);
            if (c == 0) {
               lo = mid;
               hi = mid;
               break;
            }
            if (c < 0) {
               lo = mid + 1;
            } else {
               hi = mid;
            }
         }
         if (lo < node->n_children && child_cmp(node->children[lo].name, key) == 0) {
            bson_free(key);
            slot = &node->children[lo].node;
         } else {
            node->children =
               bson_realloc(node->children, (node->n_children + 1) * sizeof *node->children);
            memmove(&node->children[lo + 1], &node->children[lo],
                    (node->n_children - lo) * sizeof *node->children);
            node->children[lo].name = key;
            node->children[lo].node = NULL;
            node->n_children++;
            slot = &node->children[lo].node;
         }
      }
      if (*slot) {
         if (last || (*slot)->kind == N_LEAF || (*slot)->kind != want) {
            conflict(dotted, p, i, error);
            return false;
         }
         node = *slot;
         continue;
      }
      *slot = last ? leaf : node_new(want);
      node = *slot;
   }
   return true;
}

/* ---- compile ------------------------------------------------------------------------- */

static const struct {
   const char *name;
   op_kind_t op;
} OPERATORS[] = {
   {"$set", OP_SET},           {"$unset", OP_UNSET},         {"$inc", OP_INC},
   {"$mul", OP_MUL},           {"$min", OP_MIN},             {"$max", OP_MAX},
   {"$rename", OP_RENAME},     {"$setOnInsert", OP_SET_ON_INSERT},
   {"$currentDate", OP_CURRENT_DATE},
   {"$push", OP_PUSH},         {"$addToSet", OP_ADD_TO_SET}, {"$pull", OP_PULL},
   {"$pullAll", OP_PULL_ALL},  {"$pop", OP_POP},             {"$bit", OP_BIT},
};

static bool
is_number(bson_type_t t)
{
   return t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64 || t == BSON_TYPE_DOUBLE ||
          t == BSON_TYPE_DECIMAL128;
}

static bool
parse_current_date(leaf_t *leaf, const bson_iter_t *it, flora_error_t *error)
{
   bson_iter_t child;
   bool found = false;

   if (BSON_ITER_HOLDS_BOOL(it)) {
      return true;
   }
   if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "%s is not valid type for $currentDate. Please use a boolean ('true') or a "
                      "$type expression ({$type: 'timestamp/date'}).",
                      bson_iter_type(it) == BSON_TYPE_UTF8 ? "string" : "the value");
      return false;
   }
   while (bson_iter_next(&child)) {
      if (strcmp(bson_iter_key(&child), "$type") != 0) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "Unrecognized $currentDate option: %s", bson_iter_key(&child));
         return false;
      }
      if (BSON_ITER_HOLDS_UTF8(&child)) {
         const char *s = bson_iter_utf8(&child, NULL);
         if (strcmp(s, "date") == 0) {
            leaf->timestamp = false;
            found = true;
         } else if (strcmp(s, "timestamp") == 0) {
            leaf->timestamp = true;
            found = true;
         }
      }
   }
   if (!found) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The '$type' string field is required to be 'date' or 'timestamp': "
                      "{$currentDate: {field : {$type: 'date'}}}");
      return false;
   }
   return true;
}

/* $bit: {field: {and|or|xor: int32|int64, ...}}, at least one (bit_node.cpp). */
static bool
parse_bit(const bson_iter_t *it, flora_error_t *error)
{
   bson_iter_t child;
   bool any = false;

   if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The $bit modifier is not compatible with a %s. You must pass in an "
                      "embedded document: {$bit: {field: {and/or/xor: #}}",
                      type_name(bson_iter_type(it)));
      return false;
   }
   while (bson_iter_next(&child)) {
      const char *key = bson_iter_key(&child);
      if (strcmp(key, "and") != 0 && strcmp(key, "or") != 0 && strcmp(key, "xor") != 0) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "The $bit modifier only supports 'and', 'or', and 'xor', not '%s' which "
                         "is an unknown operator",
                         key);
         return false;
      }
      if (!BSON_ITER_HOLDS_INT32(&child) && !BSON_ITER_HOLDS_INT64(&child)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "The $bit modifier field must be an Integer(32/64 bit); a '%s' is not "
                         "supported here",
                         type_name(bson_iter_type(&child)));
         return false;
      }
      any = true;
   }
   if (!any) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "You must pass in at least one bitwise operation. The format is: {$bit: "
                      "{field: {and/or/xor: #}}");
      return false;
   }
   return true;
}

static bool
parse_rename(flora_update_t *u, const char *from, const bson_iter_t *it, flora_error_t *error)
{
   path_t pf = {NULL, 0}, pt = {NULL, 0};
   unode_t *leaf = NULL, *placeholder = NULL;
   const char *to;
   size_t lf, lt;
   bool ok = false;

   if (!BSON_ITER_HOLDS_UTF8(it)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The 'to' field for $rename must be a string: %s", from);
      goto cleanup;
   }
   to = bson_iter_utf8(it, NULL);
   if (strcmp(from, to) == 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The source and target field for $rename must differ: %s: \"%s\"", from, to);
      goto cleanup;
   }
   lf = strlen(from);
   lt = strlen(to);
   if ((lf < lt && strncmp(from, to, lf) == 0 && to[lf] == '.') ||
       (lt < lf && strncmp(from, to, lt) == 0 && from[lt] == '.')) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The source and target field for $rename must not be on the same path: "
                      "%s: \"%s\"",
                      from, to);
      goto cleanup;
   }
   path_split(from, &pf);
   path_split(to, &pt);
   if (!check_path(from, &pf, error) || !check_path(to, &pt, error)) {
      goto cleanup;
   }
   if (is_dynamic(&pf)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The source field for $rename may not be dynamic: %s", from);
      goto cleanup;
   }
   if (is_dynamic(&pt)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The destination field for $rename may not be dynamic: %s", to);
      goto cleanup;
   }
   placeholder = node_new(N_LEAF);
   placeholder->leaf.op = OP_PLACEHOLDER;
   placeholder->leaf.op_name = "$rename";
   if (!tree_insert(u, from, &pf, placeholder, error)) {
      goto cleanup;
   }
   placeholder = NULL;
   leaf = node_new(N_LEAF);
   leaf->leaf.op = OP_RENAME;
   leaf->leaf.op_name = "$rename";
   leaf->leaf.from = bson_strdup(from);
   leaf->leaf.from_comps = pf.comps;
   leaf->leaf.n_from = pf.n;
   pf.comps = NULL;
   pf.n = 0;
   if (!tree_insert(u, to, &pt, leaf, error)) {
      goto cleanup;
   }
   leaf = NULL;
   ok = true;
cleanup:
   node_destroy(leaf);
   node_destroy(placeholder);
   path_clear(&pf);
   path_clear(&pt);
   return ok;
}

static bool
parse_field(flora_update_t *u, op_kind_t op, const char *op_name, const bson_iter_t *it,
            flora_error_t *error)
{
   const char *field = bson_iter_key(it);
   path_t p = {NULL, 0};
   unode_t *leaf = NULL;
   bool ok = false;
   char json[256];

   if (op == OP_RENAME) {
      return parse_rename(u, field, it, error);
   }
   path_split(field, &p);
   if (!check_path(field, &p, error)) {
      goto cleanup;
   }
   leaf = node_new(N_LEAF);
   leaf->leaf.op = op;
   leaf->leaf.op_name = op_name;
   switch (op) {
   case OP_INC:
   case OP_MUL:
      if (!is_number(bson_iter_type(it))) {
         flora__update_value_json(bson_iter_value((bson_iter_t *) it), json, sizeof json);
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_TYPE_MISMATCH,
                         "Cannot %s with non-numeric argument: {%s: %s}",
                         op == OP_INC ? "increment" : "multiply", field, json);
         goto cleanup;
      }
      break;
   case OP_CURRENT_DATE:
      if (!parse_current_date(&leaf->leaf, it, error)) {
         goto cleanup;
      }
      break;
   case OP_BIT:
      if (!parse_bit(it, error)) {
         goto cleanup;
      }
      break;
   case OP_PUSH:
   case OP_ADD_TO_SET:
   case OP_PULL:
   case OP_PULL_ALL:
   case OP_POP:
      if (!flora__update_parse_array_op(&leaf->leaf, field, it, error)) {
         goto cleanup;
      }
      break;
   default:
      break;
   }
   if (leaf->leaf.value.value_type == BSON_TYPE_EOD) {
      bson_value_copy(bson_iter_value((bson_iter_t *) it), &leaf->leaf.value);
   }
   if (!tree_insert(u, field, &p, leaf, error)) {
      goto cleanup;
   }
   leaf = NULL;
   ok = true;
cleanup:
   node_destroy(leaf);
   path_clear(&p);
   return ok;
}

static bool
valid_identifier(const char *id)
{
   if (!(id[0] >= 'a' && id[0] <= 'z')) {
      return false;
   }
   for (const char *p = id; *p; p++) {
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) {
         return false;
      }
   }
   return true;
}

/* Collects the top-level identifier of an array filter (through $and/$or/$nor). */
static bool
filter_identifier(bson_iter_t *it, char **id, flora_error_t *error)
{
   while (bson_iter_next(it)) {
      const char *key = bson_iter_key(it);
      if (key[0] == '$') {
         bson_iter_t arr, clause;
         if ((strcmp(key, "$and") == 0 || strcmp(key, "$or") == 0 || strcmp(key, "$nor") == 0) &&
             BSON_ITER_HOLDS_ARRAY(it) && bson_iter_recurse(it, &arr)) {
            while (bson_iter_next(&arr)) {
               if (BSON_ITER_HOLDS_DOCUMENT(&arr) && bson_iter_recurse(&arr, &clause) &&
                   !filter_identifier(&clause, id, error)) {
                  return false;
               }
            }
         }
         continue;
      }
      const char *dot = strchr(key, '.');
      size_t len = dot ? (size_t) (dot - key) : strlen(key);
      if (!*id) {
         *id = bson_strndup(key, len);
      } else if (strlen(*id) != len || strncmp(*id, key, len) != 0) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "Error parsing array filter :: caused by :: Expected a single top-level "
                         "field name, found '%s' and '%.*s'",
                         *id, (int) len, key);
         return false;
      }
   }
   return true;
}

static bool
parse_array_filters(flora_update_t *u, const bson_t *array_filters, flora_error_t *error)
{
   bson_iter_t it, child;
   uint32_t n = bson_count_keys(array_filters);

   u->filters = bson_malloc0((n ? n : 1) * sizeof *u->filters);
   if (!bson_iter_init(&it, array_filters)) {
      return true;
   }
   while (bson_iter_next(&it)) {
      char *id = NULL;
      bson_t filter;
      const uint8_t *data;
      uint32_t len;

      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "arrayFilters entries must be objects");
         return false;
      }
      bson_iter_document(&it, &len, &data);
      bson_iter_recurse(&it, &child);
      if (!filter_identifier(&child, &id, error)) {
         bson_free(id);
         return false;
      }
      if (!id) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "Cannot use an expression without a top-level field name in arrayFilters");
         return false;
      }
      if (!valid_identifier(id)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "Error parsing array filter :: caused by :: The top-level field name must "
                         "be an alphanumeric string beginning with a lowercase letter, found '%s'",
                         id);
         bson_free(id);
         return false;
      }
      if (find_filter(u, id, strlen(id))) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "Found multiple array filters with the same top-level field name %s", id);
         bson_free(id);
         return false;
      }
      u->filters[u->n_filters].id = id;
      if (!bson_init_static(&filter, data, len)) {
         return false;
      }
      u->filters[u->n_filters].matcher = flora_matcher_new(&filter, error);
      if (!u->filters[u->n_filters].matcher) {
         u->n_filters++;
         flora_error_prefix(error, "Error parsing array filter");
         return false;
      }
      u->n_filters++;
   }
   return true;
}

static bool
compile_replacement(flora_update_t *u, const bson_t *update, flora_error_t *error)
{
   bson_iter_t it;

   u->replacement = true;
   bson_iter_init(&it, update);
   while (bson_iter_next(&it)) {
      if (bson_iter_key(&it)[0] == '$') {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_DOLLAR_PREFIXED,
                         "The dollar ($) prefixed field '%s' in '%s' is not allowed in the context "
                         "of an update's replacement document. Consider using an aggregation "
                         "pipeline with $replaceWith.",
                         bson_iter_key(&it), bson_iter_key(&it));
         return false;
      }
   }
   u->doc = bson_copy(update);
   return true;
}

flora_update_t *
flora_update_new(const bson_t *update, const bson_t *array_filters, flora_error_t *error)
{
   flora_update_t *u = NULL;
   bson_iter_t it, fields;

   FLORA_ASSERT_ARG(update);
   u = bson_malloc0(sizeof *u);
   u->root = node_new(N_OBJECT);
   if (!bson_iter_init(&it, update)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "the update is not a valid BSON document");
      goto fail;
   }
   if (!bson_iter_next(&it) || bson_iter_key(&it)[0] != '$') {
      if (array_filters && !bson_empty(array_filters)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "arrayFilters may not be specified for replacement-style updates");
         goto fail;
      }
      if (!compile_replacement(u, update, error)) {
         goto fail;
      }
      return u;
   }
   if (array_filters && !parse_array_filters(u, array_filters, error)) {
      goto fail;
   }
   bson_iter_init(&it, update);
   while (bson_iter_next(&it)) {
      const char *name = bson_iter_key(&it);
      op_kind_t op = OP_SET;
      const char *op_name = NULL;

      for (size_t i = 0; i < sizeof OPERATORS / sizeof OPERATORS[0]; i++) {
         if (strcmp(name, OPERATORS[i].name) == 0) {
            op = OPERATORS[i].op;
            op_name = OPERATORS[i].name;
         }
      }
      if (!op_name) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "Unknown modifier: %s. Expected a valid update modifier or "
                         "pipeline-style update specified as an array",
                         name);
         goto fail;
      }
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "Modifiers operate on fields but we found another type instead. For "
                         "example: {$mod: {<field>: ...}} not {%s: ...}",
                         name);
         goto fail;
      }
      bson_iter_recurse(&it, &fields);
      while (bson_iter_next(&fields)) {
         if (!parse_field(u, op, op_name, &fields, error)) {
            goto fail;
         }
      }
   }
   for (size_t i = 0; i < u->n_filters; i++) {
      if (!u->filters[i].used) {
         char *json = bson_as_relaxed_extended_json(update, NULL);
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                         "The array filter for identifier '%s' was not used in the update %s",
                         u->filters[i].id, json ? json : "");
         bson_free(json);
         goto fail;
      }
   }
   return u;
fail:
   flora_update_destroy(u);
   return NULL;
}

/* ---- apply --------------------------------------------------------------------------- */

typedef struct run {
   apply_ctx_t ctx;
   const flora_update_t *u;
   bool is_insert;
   int positional_index;
   int64_t now_ms;
   const char **comps; /* the current path */
   char (*numbers)[24]; /* storage for numeric components, one per depth */
} run_t;

typedef struct resolved {
   mval_t *target; /* the element at the full path, or NULL */
   mval_t *parent; /* its container */
   size_t index;   /* its index in parent */
   mval_t *last;   /* the deepest existing element on the path */
   size_t found;   /* components found */
   bool viable;    /* the missing rest can be created under last */
} resolved_t;

static void
resolve(mval_t *root, const char *const *comps, size_t n, resolved_t *r)
{
   mval_t *cur = root;

   memset(r, 0, sizeof *r);
   for (size_t i = 0; i < n; i++) {
      size_t idx = 0;
      bool hit = false;

      flora__mval_expand(cur);
      if (cur->kind == MV_DOC) {
         for (size_t j = 0; j < cur->len; j++) {
            if (strcmp(cur->fields[j].key, comps[i]) == 0) {
               idx = j;
               hit = true;
               break;
            }
         }
         r->viable = true;
      } else if (cur->kind == MV_ARRAY) {
         r->viable = parse_index(comps[i], &idx);
         hit = r->viable && idx < cur->len;
      } else {
         r->viable = false;
      }
      if (!hit) {
         r->last = cur;
         return;
      }
      r->parent = cur;
      r->index = idx;
      cur = &cur->fields[idx].val;
      r->found++;
   }
   r->target = cur;
   r->last = cur;
   r->viable = true;
}

static void
join_path(const char *const *comps, size_t n, char *buf, size_t size)
{
   size_t off = 0;

   buf[0] = '\0';
   for (size_t i = 0; i < n; i++) {
      int w = snprintf(buf + off, size - off, "%s%s", i ? "." : "", comps[i]);
      if (w < 0 || (size_t) w >= size - off) {
         return;
      }
      off += (size_t) w;
   }
}

/* Creates comps (the missing rest of a path) under last, storing *value (moved) at the end. */
static bool
create_path(mval_t *last, const char *const *comps, size_t n, mval_t *value,
            flora_error_t *error)
{
   mval_t *cur = last;

   for (size_t i = 0; i < n; i++) {
      mval_t *slot;
      if (cur->kind == MV_ARRAY) {
         size_t idx = 0;
         parse_index(comps[i], &idx);
         if (idx > cur->len && idx - cur->len > MAX_ARRAY_PADDING) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                            "can't backfill array to larger than %d elements", MAX_ARRAY_PADDING);
            return false;
         }
         while (cur->len < idx) {
            flora__mval_push(cur, NULL);
         }
         slot = flora__mval_push(cur, NULL);
      } else {
         slot = flora__mval_push(cur, comps[i]);
      }
      if (i + 1 == n) {
         flora__mval_move(slot, value);
      } else {
         flora__mval_init_doc(slot);
      }
      cur = slot;
   }
   return true;
}

/* ---- arithmetic ---------------------------------------------------------------------- */

static int
num_rank(bson_type_t t)
{
   switch (t) {
   case BSON_TYPE_INT32:
      return 0;
   case BSON_TYPE_INT64:
      return 1;
   case BSON_TYPE_DOUBLE:
      return 2;
   default:
      return 3;
   }
}

static int64_t
as_int64(const bson_value_t *v)
{
   return v->value_type == BSON_TYPE_INT32 ? v->value.v_int32 : v->value.v_int64;
}

static double
as_double(const bson_value_t *v)
{
   switch (v->value_type) {
   case BSON_TYPE_INT32:
      return v->value.v_int32;
   case BSON_TYPE_INT64:
      return (double) v->value.v_int64;
   default:
      return v->value.v_double;
   }
}

/* Decimal128 arithmetic with the compiler's BID decimal floating point, which has the
 * same encoding as BSON's decimal128 (IEEE 754-2008 BID). A double operand is first
 * rounded to 15 significant digits, as the server does (Decimal128(double)). */
static _Decimal128
as_decimal(const bson_value_t *v)
{
   _Decimal128 d;
   bson_decimal128_t b;
   char buf[64];

   switch (v->value_type) {
   case BSON_TYPE_INT32:
      return (_Decimal128) v->value.v_int32;
   case BSON_TYPE_INT64:
      return (_Decimal128) v->value.v_int64;
   case BSON_TYPE_DOUBLE:
      snprintf(buf, sizeof buf, "%.15g", v->value.v_double);
      if (!bson_decimal128_from_string(buf, &b)) {
         bson_decimal128_from_string("NaN", &b);
      }
      memcpy(&d, &b, sizeof d);
      return d;
   default:
      memcpy(&d, &v->value.v_decimal128, sizeof d);
      return d;
   }
}

/* *out = cur (op) operand; false on int64 overflow. */
static bool
arith(bool mul, const bson_value_t *cur, const bson_value_t *operand, bson_value_t *out)
{
   int rank = num_rank(cur->value_type) > num_rank(operand->value_type)
                 ? num_rank(cur->value_type)
                 : num_rank(operand->value_type);

   memset(out, 0, sizeof *out);
   if (rank == 0) {
      int64_t r = mul ? (int64_t) cur->value.v_int32 * operand->value.v_int32
                      : (int64_t) cur->value.v_int32 + operand->value.v_int32;
      if (r >= INT32_MIN && r <= INT32_MAX) {
         out->value_type = BSON_TYPE_INT32;
         out->value.v_int32 = (int32_t) r;
      } else {
         out->value_type = BSON_TYPE_INT64;
         out->value.v_int64 = r;
      }
   } else if (rank == 1) {
      int64_t r;
      bool overflow = mul ? __builtin_mul_overflow(as_int64(cur), as_int64(operand), &r)
                          : __builtin_add_overflow(as_int64(cur), as_int64(operand), &r);
      if (overflow) {
         return false;
      }
      out->value_type = BSON_TYPE_INT64;
      out->value.v_int64 = r;
   } else if (rank == 2) {
      out->value_type = BSON_TYPE_DOUBLE;
      out->value.v_double = mul ? as_double(cur) * as_double(operand)
                                : as_double(cur) + as_double(operand);
   } else {
      _Decimal128 r = mul ? as_decimal(cur) * as_decimal(operand)
                          : as_decimal(cur) + as_decimal(operand);
      out->value_type = BSON_TYPE_DECIMAL128;
      memcpy(&out->value.v_decimal128, &r, sizeof r);
   }
   return true;
}

/* $bit over an int32/int64 value: int32 with int32 stays int32, otherwise int64. */
static void
bit_apply(const leaf_t *leaf, const bson_value_t *cur, bson_value_t *out)
{
   bson_iter_t it;

   *out = *cur;
   bson_iter_init_from_data(&it, leaf->value.value.v_doc.data, leaf->value.value.v_doc.data_len);
   while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);
      bool wide = out->value_type == BSON_TYPE_INT64 || BSON_ITER_HOLDS_INT64(&it);
      int64_t a = as_int64(out), b = bson_iter_as_int64(&it), res;
      res = k[0] == 'a' ? (a & b) : k[0] == 'o' ? (a | b) : (a ^ b);
      if (wide) {
         out->value_type = BSON_TYPE_INT64;
         out->value.v_int64 = res;
      } else {
         out->value_type = BSON_TYPE_INT32;
         out->value.v_int32 = (int32_t) res;
      }
   }
}

/* ---- leaves -------------------------------------------------------------------------- */

static void
set_scalar(mval_t *target, const bson_value_t *v)
{
   flora__mval_clear(target);
   flora__mval_init_borrowed(target, v);
}

static void
now_value(const run_t *r, const leaf_t *leaf, bson_value_t *out)
{
   memset(out, 0, sizeof *out);
   if (leaf->timestamp) {
      out->value_type = BSON_TYPE_TIMESTAMP;
      out->value.v_timestamp.timestamp = (uint32_t) (r->now_ms / 1000);
      out->value.v_timestamp.increment = 1;
   } else {
      out->value_type = BSON_TYPE_DATE_TIME;
      out->value.v_datetime = r->now_ms;
   }
}

static bool
update_existing(run_t *r, const leaf_t *leaf, resolved_t *res, const char *path)
{
   mval_t *target = res->target;
   flora_error_t *error = r->ctx.error;
   bson_value_t v, cur;
   bson_t tmp;
   char id[256], json[256];
   int cmp;

   switch (leaf->op) {
   case OP_SET:
   case OP_SET_ON_INSERT:
      set_scalar(target, &leaf->value);
      return true;
   case OP_UNSET:
      if (!res->parent) {
         return true;
      }
      if (res->parent->kind == MV_ARRAY) {
         flora__mval_clear(target);
      } else {
         flora__mval_remove(res->parent, res->index);
      }
      return true;
   case OP_INC:
   case OP_MUL:
      if (!is_number(flora__mval_type(target))) {
         flora__update_describe_id(&r->ctx.root, id, sizeof id);
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_TYPE_MISMATCH,
                         "Cannot apply %s to a value of non-numeric type. {%s} has the field '%s' "
                         "of non-numeric type %s",
                         leaf->op_name, id, strrchr(path, '.') ? strrchr(path, '.') + 1 : path,
                         type_name(flora__mval_type(target)));
         return false;
      }
      if (!arith(leaf->op == OP_MUL, &target->value, &leaf->value, &v)) {
         /* only integers overflow; the server prints the value as (NumberInt)/(NumberLong) */
         flora__update_describe_id(&r->ctx.root, id, sizeof id);
         if (target->value.value_type == BSON_TYPE_INT32) {
            snprintf(json, sizeof json, "(NumberInt)%" PRId32, target->value.value.v_int32);
         } else {
            snprintf(json, sizeof json, "(NumberLong)%" PRId64, target->value.value.v_int64);
         }
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "Failed to apply %s operations to current value (%s) for document {%s}",
                         leaf->op_name, json, id);
         return false;
      }
      flora__mval_clear(target);
      target->value = v;
      return true;
   case OP_BIT:
      if (flora__mval_type(target) != BSON_TYPE_INT32 &&
          flora__mval_type(target) != BSON_TYPE_INT64) {
         flora__update_describe_id(&r->ctx.root, id, sizeof id);
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "Cannot apply $bit to a value of non-integral type.%s has the field %s of "
                         "non-integer type %s",
                         id, strrchr(path, '.') ? strrchr(path, '.') + 1 : path,
                         type_name(flora__mval_type(target)));
         return false;
      }
      bit_apply(leaf, &target->value, &v);
      flora__mval_clear(target);
      target->value = v;
      return true;
   case OP_MIN:
   case OP_MAX:
      flora__mval_value(target, &tmp, &cur);
      cmp = flora_value_compare(&leaf->value, &cur);
      bson_destroy(&tmp);
      if ((leaf->op == OP_MIN && cmp < 0) || (leaf->op == OP_MAX && cmp > 0)) {
         set_scalar(target, &leaf->value);
      }
      return true;
   case OP_CURRENT_DATE:
      now_value(r, leaf, &v);
      flora__mval_clear(target);
      target->value = v;
      return true;
   default:
      return flora__update_array_existing(&r->ctx, leaf, target, path, error);
   }
}

/* The value a leaf creates at a missing path; false when it creates nothing. */
static bool
create_value(run_t *r, const leaf_t *leaf, mval_t *out)
{
   bson_value_t v;

   switch (leaf->op) {
   case OP_SET:
   case OP_SET_ON_INSERT:
   case OP_INC:
   case OP_MIN:
   case OP_MAX:
      flora__mval_init_borrowed(out, &leaf->value);
      return true;
   case OP_MUL:
      memset(&v, 0, sizeof v);
      v.value_type = leaf->value.value_type;
      if (v.value_type == BSON_TYPE_DECIMAL128) {
         bson_decimal128_from_string("0", &v.value.v_decimal128);
      }
      flora__mval_init_null(out);
      out->value = v;
      return true;
   case OP_CURRENT_DATE:
      now_value(r, leaf, &v);
      flora__mval_init_null(out);
      out->value = v;
      return true;
   case OP_BIT: {
      bson_value_t zero = {.value_type = BSON_TYPE_INT32};
      bit_apply(leaf, &zero, &v);
      flora__mval_init_null(out);
      out->value = v;
      return true;
   }
   default:
      return flora__update_array_create(leaf, out);
   }
}

static bool
apply_rename(run_t *r, const leaf_t *leaf, size_t n)
{
   const char *const *from = (const char *const *) leaf->from_comps;
   resolved_t src, dst;
   mval_t value;
   bson_t tmp;
   bson_value_t v;
   char id[256], path[512];
   bool ok = false;

   flora__mval_init_null(&value);
   resolve(&r->ctx.root, from, leaf->n_from, &src);
   if (!src.target && !src.viable) {
      /* a source that could never exist is an error, as for other updates */
      char json[256];
      mval_json(src.last, json, sizeof json);
      flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_PATH_NOT_VIABLE,
                      "cannot use the part (%s of %s) to traverse the element ({%s: %s})",
                      from[src.found], leaf->from, src.found ? from[src.found - 1] : "", json);
      goto cleanup;
   }
   if (!src.target) {
      ok = true;
      goto cleanup;
   }
   /* neither end may be inside an array */
   for (size_t i = 0; i < leaf->n_from; i++) {
      resolved_t pre;
      resolve(&r->ctx.root, from, i, &pre);
      if (pre.target && pre.target->kind == MV_ARRAY) {
         flora__update_describe_id(&r->ctx.root, id, sizeof id);
         flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "The source field cannot be an array element, '%s' in doc with %s has "
                         "an array field called '%s'",
                         leaf->from, id, i ? from[i - 1] : "");
         goto cleanup;
      }
   }
   resolve(&r->ctx.root, r->comps, n, &dst);
   for (size_t i = 0; i < dst.found && i < n; i++) {
      resolved_t pre;
      resolve(&r->ctx.root, r->comps, i, &pre);
      if (i > 0 && pre.target && pre.target->kind == MV_ARRAY) {
         join_path(r->comps, n, path, sizeof path);
         flora__update_describe_id(&r->ctx.root, id, sizeof id);
         flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "The destination field cannot be an array element, '%s' in doc with %s "
                         "has an array field called '%s'",
                         path, id, r->comps[i - 1]);
         goto cleanup;
      }
   }
   if (dst.last && dst.last->kind == MV_ARRAY && !dst.target) {
      join_path(r->comps, n, path, sizeof path);
      flora__update_describe_id(&r->ctx.root, id, sizeof id);
      flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The destination field cannot be an array element, '%s' in doc with %s has "
                      "an array field called '%s'",
                      path, id, dst.found ? r->comps[dst.found - 1] : "");
      goto cleanup;
   }
   /* copy the source's value, then write it at the destination, then remove the source */
   flora__mval_value(src.target, &tmp, &v);
   flora__mval_init_copy(&value, &v);
   bson_destroy(&tmp);
   if (dst.target) {
      bson_t cur_tmp;
      bson_value_t cur;
      bool same;
      /* an equal destination is left as it is (the server's SetElementNode) */
      flora__mval_value(dst.target, &cur_tmp, &cur);
      same = flora_value_compare(&value.value, &cur) == 0;
      bson_destroy(&cur_tmp);
      if (!same) {
         flora__mval_move(dst.target, &value);
      }
   } else if (!dst.viable) {
      char json[256];
      mval_json(dst.last, json, sizeof json);
      flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_PATH_NOT_VIABLE,
                      "Cannot create field '%s' in element {%s: %s}", r->comps[dst.found],
                      dst.found ? r->comps[dst.found - 1] : "", json);
      goto cleanup;
   } else if (!create_path(dst.last, r->comps + dst.found, n - dst.found, &value, r->ctx.error)) {
      goto cleanup;
   }
   resolve(&r->ctx.root, from, leaf->n_from, &src);
   if (src.target && src.parent) {
      flora__mval_remove(src.parent, src.index);
   }
   ok = true;
cleanup:
   flora__mval_clear(&value);
   return ok;
}

static bool
apply_leaf(run_t *r, const leaf_t *leaf, size_t n)
{
   resolved_t res;
   mval_t value;
   char path[512], json[256];

   if (leaf->op == OP_PLACEHOLDER || (leaf->op == OP_SET_ON_INSERT && !r->is_insert)) {
      return true;
   }
   if (leaf->op == OP_RENAME) {
      return apply_rename(r, leaf, n);
   }
   join_path(r->comps, n, path, sizeof path);
   resolve(&r->ctx.root, r->comps, n, &res);
   if (res.target) {
      return update_existing(r, leaf, &res, path);
   }
   if (leaf->op == OP_UNSET) {
      return true;
   }
   if (leaf->op == OP_PULL || leaf->op == OP_PULL_ALL || leaf->op == OP_POP) {
      /* nothing to remove from a missing array, but a path that could never exist is an
       * error for these operators (the server's checkViability) */
      if (!res.viable) {
         char taken[512];
         mval_json(res.last, json, sizeof json);
         join_path(r->comps, res.found, taken, sizeof taken);
         flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_PATH_NOT_VIABLE,
                         "Cannot use the part (%s) of (%s) to traverse the element ({%s: %s})",
                         r->comps[res.found], path, res.found ? r->comps[res.found - 1] : "",
                         json);
         return false;
      }
      return true;
   }
   if (!res.viable) {
      mval_json(res.last, json, sizeof json);
      flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_PATH_NOT_VIABLE,
                      "Cannot create field '%s' in element {%s: %s}", r->comps[res.found],
                      res.found ? r->comps[res.found - 1] : "", json);
      return false;
   }
   if (!create_value(r, leaf, &value)) {
      return true;
   }
   if (!create_path(res.last, r->comps + res.found, n - res.found, &value, r->ctx.error)) {
      flora__mval_clear(&value);
      return false;
   }
   flora__mval_clear(&value);
   return true;
}

/* Several tree nodes can address the same element: `$` and the index it matched, or two
 * array filters matching one element. Like the server (createUpdateNodeByMerging), their
 * subtrees are merged level by level; two operators meeting at one element conflict. */
static bool apply_nodes(run_t *r, const unode_t *const *nodes, size_t k, size_t depth);

typedef struct child_ref {
   const char *name;
   const unode_t *node;
   size_t seq;
} child_ref_t;

static int
child_ref_cmp(const void *a, const void *b)
{
   const child_ref_t *x = a, *y = b;
   int c = child_cmp(x->name, y->name);

   if (c) {
      return c;
   }
   return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool
conflict_here(run_t *r, size_t depth)
{
   char path[512];

   join_path(r->comps, depth, path, sizeof path);
   flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_CONFLICTING_UPDATE,
                   "Update created a conflict at '%s'", path);
   return false;
}

static bool
apply_object(run_t *r, const unode_t *const *nodes, size_t k, size_t depth)
{
   size_t total = 0, n = 0;
   child_ref_t *refs = NULL;
   const unode_t **group = NULL;
   bool ok = false, positional = false;

   for (size_t i = 0; i < k; i++) {
      total += nodes[i]->n_children + (nodes[i]->positional ? 1 : 0);
      positional = positional || nodes[i]->positional;
   }
   if (positional) {
      if (r->positional_index < 0) {
         flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "The positional operator did not find the match needed from the query.");
         return false;
      }
      snprintf(r->numbers[depth], sizeof r->numbers[depth], "%d", r->positional_index);
   }
   if (k == 1 && !positional) {
      /* the common case: children are already in order */
      for (size_t i = 0; i < nodes[0]->n_children; i++) {
         r->comps[depth] = nodes[0]->children[i].name;
         if (!apply_nodes(r, (const unode_t *const *) &nodes[0]->children[i].node, 1, depth + 1)) {
            return false;
         }
      }
      return true;
   }
   refs = bson_malloc0((total ? total : 1) * sizeof *refs);
   group = bson_malloc0((total ? total : 1) * sizeof *group);
   for (size_t i = 0; i < k; i++) {
      for (size_t c = 0; c < nodes[i]->n_children; c++) {
         refs[n].name = nodes[i]->children[c].name;
         refs[n].node = nodes[i]->children[c].node;
         refs[n].seq = n;
         n++;
      }
      if (nodes[i]->positional) {
         refs[n].name = r->numbers[depth];
         refs[n].node = nodes[i]->positional;
         refs[n].seq = n;
         n++;
      }
   }
   qsort(refs, n, sizeof *refs, child_ref_cmp);
   for (size_t i = 0; i < n;) {
      size_t j = i, g = 0;
      while (j < n && child_cmp(refs[j].name, refs[i].name) == 0) {
         group[g++] = refs[j++].node;
      }
      r->comps[depth] = refs[i].name;
      if (!apply_nodes(r, group, g, depth + 1)) {
         goto cleanup;
      }
      i = j;
   }
   ok = true;
cleanup:
   bson_free(refs);
   bson_free(group);
   return ok;
}

static bool
filter_matches(run_t *r, const char *id, const mval_t *elem)
{
   for (size_t i = 0; i < r->u->n_filters; i++) {
      if (strcmp(r->u->filters[i].id, id) == 0) {
         bson_t wrapped = BSON_INITIALIZER;
         bool m;
         /* the element is matched as the document {id: element} (the server's
          * ExpressionWithPlaceholder::matchesBSONElement) */
         flora__mval_append(&wrapped, id, -1, elem);
         m = flora_matcher_match(r->u->filters[i].matcher, &wrapped, NULL);
         bson_destroy(&wrapped);
         return m;
      }
   }
   return false;
}

static bool
apply_array(run_t *r, const unode_t *const *nodes, size_t k, size_t depth)
{
   resolved_t res;
   char path[512], json[256];
   size_t len, total = 0;
   const unode_t **matched = NULL;
   bool ok = false;

   resolve(&r->ctx.root, r->comps, depth, &res);
   join_path(r->comps, depth, path, sizeof path);
   if (!res.target) {
      flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "The path '%s' must exist in the document in order to apply array updates.",
                      path);
      return false;
   }
   flora__mval_expand(res.target);
   if (res.target->kind != MV_ARRAY) {
      mval_json(res.target, json, sizeof json);
      flora_error_set(r->ctx.error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "Cannot apply array updates to non-array element %s: %s",
                      r->comps[depth - 1], json);
      return false;
   }
   len = res.target->len;
   for (size_t i = 0; i < k; i++) {
      total += nodes[i]->n_children;
   }
   matched = bson_malloc0((total ? total : 1) * sizeof *matched);
   for (size_t e = 0; e < len; e++) {
      size_t n_matched = 0;
      /* an earlier element's update may have moved the array's storage: re-resolve */
      resolve(&r->ctx.root, r->comps, depth, &res);
      for (size_t i = 0; i < k; i++) {
         for (size_t c = 0; c < nodes[i]->n_children; c++) {
            const uchild_t *child = &nodes[i]->children[c];
            if (!child->name[0] || filter_matches(r, child->name, &res.target->fields[e].val)) {
               matched[n_matched++] = child->node;
            }
         }
      }
      if (n_matched == 0) {
         continue;
      }
      snprintf(r->numbers[depth], sizeof r->numbers[depth], "%zu", e);
      r->comps[depth] = r->numbers[depth];
      if (!apply_nodes(r, matched, n_matched, depth + 1)) {
         goto cleanup;
      }
   }
   ok = true;
cleanup:
   bson_free(matched);
   return ok;
}

static bool
apply_nodes(run_t *r, const unode_t *const *nodes, size_t k, size_t depth)
{
   for (size_t i = 1; i < k; i++) {
      if (nodes[i]->kind == N_LEAF || nodes[i]->kind != nodes[0]->kind) {
         return conflict_here(r, depth);
      }
   }
   if (k > 1 && nodes[0]->kind == N_LEAF) {
      return conflict_here(r, depth);
   }
   switch (nodes[0]->kind) {
   case N_OBJECT:
      return apply_object(r, nodes, k, depth);
   case N_ARRAY:
      return apply_array(r, nodes, k, depth);
   default:
      return apply_leaf(r, &nodes[0]->leaf, depth);
   }
}

static const mval_t *
find_id(const mval_t *root)
{
   for (size_t i = 0; root->kind == MV_DOC && i < root->len; i++) {
      if (strcmp(root->fields[i].key, "_id") == 0) {
         return &root->fields[i].val;
      }
   }
   return NULL;
}

/* An inserted document's _id may not be an array, a regex or undefined (MongoDB's
 * storage validation, code 53). */
static bool
check_id_type(bson_type_t t, flora_error_t *error)
{
   if (t == BSON_TYPE_ARRAY || t == BSON_TYPE_REGEX || t == BSON_TYPE_UNDEFINED) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INVALID_ID_FIELD,
                      "The '_id' value cannot be of type %s", type_name(t));
      return false;
   }
   return true;
}

static bool
apply_replacement(const flora_update_t *u, const bson_t *doc, bool is_insert, bson_t *out,
                  flora_error_t *error)
{
   bson_iter_t old_id, it;
   bool has_old = bson_iter_init_find(&old_id, doc, "_id");

   if (has_old) {
      bson_append_value(out, "_id", 3, bson_iter_value(&old_id));
   } else if (bson_iter_init_find(&it, u->doc, "_id")) {
      if (is_insert && !check_id_type(bson_iter_type(&it), error)) {
         return false;
      }
      bson_append_value(out, "_id", 3, bson_iter_value(&it));
   }
   bson_iter_init(&it, u->doc);
   while (bson_iter_next(&it)) {
      if (strcmp(bson_iter_key(&it), "_id") == 0) {
         if (has_old && flora_value_compare(bson_iter_value(&it), bson_iter_value(&old_id)) != 0) {
            char json[256];
            flora__update_value_json(bson_iter_value(&it), json, sizeof json);
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_IMMUTABLE_FIELD,
                            "After applying the update, the (immutable) field '_id' was found to "
                            "have been altered to _id: %s",
                            json);
            return false;
         }
         continue;
      }
      bson_append_value(out, bson_iter_key(&it), -1, bson_iter_value(&it));
   }
   return true;
}

/* _id may not change or disappear (MongoDB manual, "Field Order" and "_id Field"). */
static bool
check_id(const mval_t *root, const bson_t *doc, flora_error_t *error)
{
   bson_iter_t old_id;
   const mval_t *new_id;
   bson_t tmp;
   bson_value_t v;
   int cmp;
   char json[256];

   if (!bson_iter_init_find(&old_id, doc, "_id")) {
      return true;
   }
   new_id = find_id(root);
   if (!new_id) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_IMMUTABLE_FIELD,
                      "After applying the update, the '_id' (required and immutable) field was "
                      "found to have been removed");
      return false;
   }
   if (flora__mval_type(new_id) == BSON_TYPE_ARRAY) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_NOT_SINGLE_VALUE,
                      "After applying the update to the document, the (immutable) field '_id' was "
                      "found to be an array or array descendant.");
      return false;
   }
   /* any change is refused, even to an equal number of another type (the server compares
    * the element's bytes when the path itself is _id) */
   flora__mval_value(new_id, &tmp, &v);
   {
      bson_t a = BSON_INITIALIZER, b = BSON_INITIALIZER;
      bson_append_value(&a, "_id", 3, &v);
      bson_append_value(&b, "_id", 3, bson_iter_value(&old_id));
      cmp = bson_equal(&a, &b) ? 0 : 1;
      bson_destroy(&a);
      bson_destroy(&b);
   }
   if (cmp != 0) {
      flora__update_value_json(&v, json, sizeof json);
   }
   bson_destroy(&tmp);
   if (cmp != 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_IMMUTABLE_FIELD,
                      "After applying the update, the (immutable) field '_id' was found to have "
                      "been altered to _id: %s",
                      json);
      return false;
   }
   return true;
}

bool
flora_update_apply(const flora_update_t *update, const bson_t *doc, bool is_insert,
                   int positional_index, int64_t now_ms, bson_t *out, bool *modified,
                   flora_error_t *error)
{
   run_t r;
   bool ok = false;
   size_t depth;

   FLORA_ASSERT_ARG(update);
   FLORA_ASSERT_ARG(doc);
   FLORA_ASSERT_ARG(out);
   bson_init(out);
   if (modified) {
      *modified = false;
   }
   if (update->replacement) {
      if (!apply_replacement(update, doc, is_insert, out, error)) {
         bson_reinit(out);
         return false;
      }
      if (modified) {
         *modified = !bson_equal(out, doc);
      }
      return true;
   }
   memset(&r, 0, sizeof r);
   r.u = update;
   r.is_insert = is_insert;
   r.positional_index = positional_index;
   r.now_ms = now_ms;
   r.ctx.orig = doc;
   r.ctx.error = error;
   depth = update->max_depth + 1;
   r.comps = bson_malloc0(depth * sizeof *r.comps);
   r.numbers = bson_malloc0(depth * sizeof *r.numbers);
   flora__mval_init_null(&r.ctx.root);
   r.ctx.root.value.value_type = BSON_TYPE_DOCUMENT;
   r.ctx.root.value.value.v_doc.data = (uint8_t *) bson_get_data(doc);
   r.ctx.root.value.value.v_doc.data_len = doc->len;
   flora__mval_expand(&r.ctx.root);

   {
      const unode_t *root = update->root;
      if (!apply_nodes(&r, &root, 1, 0)) {
         goto cleanup;
      }
   }
   if (!check_id(&r.ctx.root, doc, error)) {
      goto cleanup;
   }
   {
      const mval_t *id = is_insert ? find_id(&r.ctx.root) : NULL;
      if (id && !check_id_type(flora__mval_type(id), error)) {
         goto cleanup;
      }
      if (id) {
         flora__mval_append(out, "_id", 3, id);
      }
      for (size_t i = 0; i < r.ctx.root.len; i++) {
         if (id && &r.ctx.root.fields[i].val == id) {
            continue;
         }
         flora__mval_append(out, r.ctx.root.fields[i].key, -1, &r.ctx.root.fields[i].val);
      }
   }
   if (modified) {
      *modified = !bson_equal(out, doc);
   }
   ok = true;
cleanup:
   if (!ok) {
      bson_reinit(out);
   }
   flora__mval_clear(&r.ctx.root);
   bson_free(r.comps);
   bson_free(r.numbers);
   return ok;
}

/* ---- upsert seed --------------------------------------------------------------------- */

typedef struct equality {
   const char *path;
   bson_value_t value;
} equality_t;

typedef struct equalities {
   equality_t *items;
   size_t len;
   size_t cap;
} equalities_t;

static void
add_equality(equalities_t *eq, const char *path, const bson_value_t *v)
{
   if (eq->len == eq->cap) {
      eq->cap = eq->cap ? eq->cap * 2 : 8;
      eq->items = bson_realloc(eq->items, eq->cap * sizeof *eq->items);
   }
   eq->items[eq->len].path = path;
   eq->items[eq->len].value = *v;
   eq->len++;
}

static void
collect_equalities(bson_iter_t *it, equalities_t *eq)
{
   while (bson_iter_next(it)) {
      const char *key = bson_iter_key(it);
      bson_iter_t child, clause;

      if (key[0] == '$') {
         bool single_or = false;
         if (strcmp(key, "$or") == 0 && BSON_ITER_HOLDS_ARRAY(it)) {
            bson_t arr;
            const uint8_t *data;
            uint32_t len;
            bson_iter_array(it, &len, &data);
            single_or = bson_init_static(&arr, data, len) && bson_count_keys(&arr) == 1;
         }
         if ((strcmp(key, "$and") == 0 || single_or) && BSON_ITER_HOLDS_ARRAY(it) &&
             bson_iter_recurse(it, &child)) {
            while (bson_iter_next(&child)) {
               if (BSON_ITER_HOLDS_DOCUMENT(&child) && bson_iter_recurse(&child, &clause)) {
                  collect_equalities(&clause, eq);
               }
            }
         }
         continue;
      }
      if (strstr(key, ".$") || strcmp(key, "$") == 0) {
         continue;
      }
      if (BSON_ITER_HOLDS_DOCUMENT(it) && bson_iter_recurse(it, &child) &&
          bson_iter_next(&child) && bson_iter_key(&child)[0] == '$') {
         do {
            const char *op = bson_iter_key(&child);
            bson_iter_t list;
            if (strcmp(op, "$eq") == 0) {
               add_equality(eq, key, bson_iter_value(&child));
            } else if ((strcmp(op, "$in") == 0 || strcmp(op, "$all") == 0) &&
                       BSON_ITER_HOLDS_ARRAY(&child) && bson_iter_recurse(&child, &list) &&
                       bson_iter_next(&list)) {
               /* a one-element $in or $all implies that equality */
               bson_iter_t only = list;
               if (!bson_iter_next(&list) && !BSON_ITER_HOLDS_REGEX(&only) &&
                   !(strcmp(op, "$all") == 0 && BSON_ITER_HOLDS_DOCUMENT(&only))) {
                  add_equality(eq, key, bson_iter_value(&only));
               }
            }
         } while (bson_iter_next(&child));
         continue;
      }
      if (BSON_ITER_HOLDS_REGEX(it)) {
         continue;
      }
      add_equality(eq, key, bson_iter_value(it));
   }
}

static int
equality_cmp(const void *a, const void *b)
{
   return strcmp(((const equality_t *) a)->path, ((const equality_t *) b)->path);
}

bool
flora_update_upsert_seed(const bson_t *filter, bson_t *out, flora_error_t *error)
{
   equalities_t eq = {NULL, 0, 0};
   mval_t root;
   bson_iter_t it;
   bool ok = false;

   FLORA_ASSERT_ARG(filter);
   FLORA_ASSERT_ARG(out);
   bson_init(out);
   flora__mval_init_doc(&root);
   if (bson_iter_init(&it, filter)) {
      collect_equalities(&it, &eq);
   }
   if (eq.len > 1) {
      qsort(eq.items, eq.len, sizeof *eq.items, equality_cmp);
   }
   for (size_t i = 0; i < eq.len; i++) {
      const char *p = eq.items[i].path;
      if (strncmp(p, "_id.", 4) == 0) {
         flora_error_set(error, FLORA_DOMAIN_STORE, 111,
                         "field at '_id' must be exactly specified, field at sub-path '%s' found",
                         p);
         goto cleanup;
      }
      for (size_t j = 0; j < i; j++) {
         const char *q = eq.items[j].path;
         size_t lq = strlen(q);
         if (strcmp(p, q) == 0) {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_NOT_SINGLE_VALUE,
                            "cannot infer query fields to set, path '%s' is matched twice", p);
            goto cleanup;
         }
         if (strncmp(p, q, lq) == 0 && p[lq] == '.') {
            flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_NOT_SINGLE_VALUE,
                            "cannot infer query fields to set, both paths '%s' and '%s' are "
                            "matched",
                            p, q);
            goto cleanup;
         }
      }
   }
   for (size_t pass = 0; pass < 2; pass++) {
      for (size_t i = 0; i < eq.len; i++) {
         path_t path = {NULL, 0};
         resolved_t res;
         mval_t value;
         bool is_id = strcmp(eq.items[i].path, "_id") == 0;

         if (is_id != (pass == 0)) {
            continue;
         }
         path_split(eq.items[i].path, &path);
         resolve(&root, (const char *const *) path.comps, path.n, &res);
         flora__mval_init_borrowed(&value, &eq.items[i].value);
         if (!res.target && res.viable) {
            create_path(res.last, (const char *const *) path.comps + res.found,
                        path.n - res.found, &value, error);
         }
         flora__mval_clear(&value);
         path_clear(&path);
      }
   }
   for (size_t i = 0; i < root.len; i++) {
      flora__mval_append(out, root.fields[i].key, -1, &root.fields[i].val);
   }
   ok = true;
cleanup:
   if (!ok) {
      bson_reinit(out);
   }
   flora__mval_clear(&root);
   bson_free(eq.items);
   return ok;
}
