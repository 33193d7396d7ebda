/* Find projections: inclusion or exclusion of (dotted) fields, $slice, $elemMatch, the
 * positional `path.$` and {$meta: "textScore"}. See include/flora/query.h.
 *
 * Source: MongoDB manual "Project Fields to Return from Query", "$ (projection)",
 * "$elemMatch (projection)", "$slice (projection)", "$meta"; behaviour of MongoDB 4.4+
 * (document order kept, nested specs {a: {b: 1}} equal to {"a.b": 1}, embedded documents
 * in arrays projected element by element, scalars in arrays dropped by an inclusion).
 * Error codes are the server's where it has one (31250 path collision, 31253/31254 mixed
 * inclusion and exclusion, 31276 more than one positional, 16410 `$`-prefixed name). */
#include <string.h>

#include "query/query_private.h"

#define ERR_PATH_COLLISION 31250
#define ERR_INCLUSION_IN_EXCLUSION 31253
#define ERR_EXCLUSION_IN_INCLUSION 31254
#define ERR_TWO_POSITIONALS 31276
#define ERR_DOLLAR_FIELD 16410

typedef enum paction {
   PA_NONE, /* an intermediate node: its children say what to do */
   PA_INCLUDE,
   PA_EXCLUDE,
   PA_SLICE,
   PA_ELEMMATCH,
   PA_POSITIONAL,
   PA_META,
} paction_t;

typedef struct pnode pnode_t;
struct pnode {
   char *name;
   paction_t action;
   int64_t skip; /* $slice [skip, limit]; has_skip false: $slice n */
   int64_t limit;
   bool has_skip;
   flora_matcher_t *elem_match; /* {name: {$elemMatch: ...}} */
   pnode_t **kids;
   size_t nkids;
};

struct flora_projection {
   pnode_t root;
   bool inclusion;
   bool empty;
   bool positional;
   bool meta;
};

typedef struct apply_ctx {
   const flora_projection_t *p;
   const bson_t *top;
   int positional_index;
   flora_error_t *error;
   bool failed;
} apply_ctx_t;

static void
pnode_clear(pnode_t *n)
{
   for (size_t i = 0; i < n->nkids; i++) {
      pnode_clear(n->kids[i]);
      bson_free(n->kids[i]);
   }
   bson_free(n->kids);
   bson_free(n->name);
   flora_matcher_destroy(n->elem_match);
   memset(n, 0, sizeof *n);
}

static pnode_t *
pnode_find(const pnode_t *parent, const char *name, size_t len)
{
   for (size_t i = 0; i < parent->nkids; i++) {
      if (strlen(parent->kids[i]->name) == len && memcmp(parent->kids[i]->name, name, len) == 0) {
         return parent->kids[i];
      }
   }
   return NULL;
}

static pnode_t *
pnode_add(pnode_t *parent, const char *name, size_t len)
{
   pnode_t *n = bson_malloc0(sizeof *n);

   n->name = bson_strndup(name, len);
   parent->kids = bson_realloc(parent->kids, (parent->nkids + 1) * sizeof *parent->kids);
   parent->kids[parent->nkids++] = n;
   return n;
}

/* The leaf node for dotted path, created; fails on a collision with another spec entry. */
static pnode_t *
insert_path(pnode_t *root, const char *path, flora_error_t *error)
{
   flora__path_t parts;
   pnode_t *cur = root;

   if (!flora__path_init(&parts, path, error)) {
      return NULL;
   }
   for (size_t i = 0; i < parts.n; i++) {
      pnode_t *next = pnode_find(cur, parts.parts[i], parts.part_lens[i]);
      bool last = i + 1 == parts.n;

      if (next && (next->action != PA_NONE || last)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, ERR_PATH_COLLISION, "Path collision at %s",
                         path);
         flora__path_clear(&parts);
         return NULL;
      }
      if (!next) {
         next = pnode_add(cur, parts.parts[i], parts.part_lens[i]);
      }
      cur = next;
   }
   flora__path_clear(&parts);
   return cur;
}

typedef struct parse_state {
   bool has_include; /* non-_id inclusion, $elemMatch or positional */
   bool has_exclude; /* non-_id exclusion */
} parse_state_t;

static bool
set_mode(parse_state_t *st, const char *path, bool include, flora_error_t *error)
{
   if (strcmp(path, "_id") == 0) {
      return true;
   }
   if (include && st->has_exclude) {
      flora_error_set(error, FLORA_DOMAIN_STORE, ERR_INCLUSION_IN_EXCLUSION,
                      "Cannot do inclusion on field %s in exclusion projection", path);
      return false;
   }
   if (!include && st->has_include) {
      flora_error_set(error, FLORA_DOMAIN_STORE, ERR_EXCLUSION_IN_INCLUSION,
                      "Cannot do exclusion on field %s in inclusion projection", path);
      return false;
   }
   if (include) {
      st->has_include = true;
   } else {
      st->has_exclude = true;
   }
   return true;
}

static bool
parse_slice(pnode_t *n, const char *path, const bson_value_t *arg, flora_error_t *error)
{
   bson_t arr;
   bson_iter_t it;
   int64_t v[2];
   int count = 0;

   if (flora__value_is_number(arg)) {
      if (!flora__number_trunc_int64(arg, &n->limit)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "$slice of field %s must be a finite number", path);
         return false;
      }
      return true;
   }
   if (arg->value_type != BSON_TYPE_ARRAY || !flora__value_as_doc(arg, &arr)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "$slice only supports numbers and [skip, limit] arrays (field %s)", path);
      return false;
   }
   bson_iter_init(&it, &arr);
   while (bson_iter_next(&it)) {
      if (count == 2 || !flora__value_is_number(bson_iter_value(&it)) ||
          !flora__number_trunc_int64(bson_iter_value(&it), &v[count])) {
         count = 3;
         break;
      }
      count++;
   }
   if (count != 2) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "$slice array argument of field %s must be [skip, limit] numbers", path);
      return false;
   }
   if (v[1] <= 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "$slice limit must be positive (field %s)", path);
      return false;
   }
   n->has_skip = true;
   n->skip = v[0];
   n->limit = v[1];
   return true;
}

static bool parse_spec(flora_projection_t *p, parse_state_t *st, const bson_t *spec,
                       const char *prefix, flora_error_t *error);

static bool
parse_operator(flora_projection_t *p, parse_state_t *st, const char *path, const bson_t *ops,
               flora_error_t *error)
{
   bson_iter_t it;
   const char *op;
   pnode_t *n;

   bson_iter_init(&it, ops);
   bson_iter_next(&it);
   op = bson_iter_key(&it);
   if (bson_count_keys(ops) != 1) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "projection operator object of field %s must have one field", path);
      return false;
   }
   if (strcmp(op, "$slice") == 0) {
      n = insert_path(&p->root, path, error);
      if (!n) {
         return false;
      }
      n->action = PA_SLICE;
      return parse_slice(n, path, bson_iter_value(&it), error);
   }
   if (strcmp(op, "$elemMatch") == 0) {
      bson_t filter = BSON_INITIALIZER;

      if (strchr(path, '.')) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "Cannot use $elemMatch projection on a nested field: %s", path);
         return false;
      }
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "elemMatch: Invalid argument, object required (field %s)", path);
         return false;
      }
      if (!set_mode(st, path, true, error)) {
         return false;
      }
      n = insert_path(&p->root, path, error);
      if (!n) {
         return false;
      }
      n->action = PA_ELEMMATCH;
      {
         bson_t inner;

         bson_append_document_begin(&filter, path, -1, &inner);
         bson_append_value(&inner, "$elemMatch", 10, bson_iter_value(&it));
         bson_append_document_end(&filter, &inner);
      }
      n->elem_match = flora_matcher_new(&filter, error);
      bson_destroy(&filter);
      return n->elem_match != NULL;
   }
   if (strcmp(op, "$meta") == 0) {
      if (!BSON_ITER_HOLDS_UTF8(&it) || strcmp(bson_iter_utf8(&it, NULL), "textScore") != 0) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "unsupported $meta for field %s: only \"textScore\"", path);
         return false;
      }
      if (strchr(path, '.')) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "$meta is supported on top-level fields only (field %s)", path);
         return false;
      }
      n = insert_path(&p->root, path, error);
      if (!n) {
         return false;
      }
      n->action = PA_META;
      p->meta = true;
      return true;
   }
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                   "unsupported projection operator %s on field %s", op, path);
   return false;
}

static bool
truth_of(const bson_value_t *v, bool *out)
{
   if (v->value_type == BSON_TYPE_BOOL) {
      *out = v->value.v_bool;
      return true;
   }
   if (flora__value_is_number(v)) {
      bson_value_t zero = {.value_type = BSON_TYPE_INT32};

      *out = flora__number_compare(v, &zero) != 0;
      return true;
   }
   return false;
}

static bool
parse_entry(flora_projection_t *p, parse_state_t *st, const char *path, const bson_iter_t *it,
            flora_error_t *error)
{
   const bson_value_t *v = bson_iter_value((bson_iter_t *) it);
   size_t len = strlen(path);
   bool include;
   pnode_t *n;

   if (v->value_type == BSON_TYPE_DOCUMENT) {
      bson_t sub;
      bson_iter_t first;

      flora__value_as_doc(v, &sub);
      if (bson_iter_init(&first, &sub) && bson_iter_next(&first) &&
          bson_iter_key(&first)[0] == '$') {
         return parse_operator(p, st, path, &sub, error);
      }
      if (bson_empty(&sub)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "An empty sub-projection is not a valid value. Found empty object at "
                         "path %s",
                         path);
         return false;
      }
      return parse_spec(p, st, &sub, path, error);
   }
   if (!truth_of(v, &include)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "projection of field %s must be 0, 1, true, false, $slice, $elemMatch or "
                      "$meta (literal values and expressions are not supported)",
                      path);
      return false;
   }
   if (len >= 2 && strcmp(path + len - 2, ".$") == 0) {
      char *base;

      if (!include) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "positional projection cannot be used in an exclusion projection: %s",
                         path);
         return false;
      }
      if (p->positional) {
         flora_error_set(error, FLORA_DOMAIN_STORE, ERR_TWO_POSITIONALS,
                         "Cannot specify more than one positional projection per query");
         return false;
      }
      base = bson_strndup(path, len - 2);
      if (strstr(base, ".$") || base[0] == '$') {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "the positional operator may only end a projection path: %s", path);
         bson_free(base);
         return false;
      }
      if (!set_mode(st, base, true, error)) {
         bson_free(base);
         return false;
      }
      n = insert_path(&p->root, base, error);
      bson_free(base);
      if (!n) {
         return false;
      }
      n->action = PA_POSITIONAL;
      p->positional = true;
      return true;
   }
   if (strstr(path, ".$") || strchr(path, '$') == path) {
      flora_error_set(error, FLORA_DOMAIN_STORE, ERR_DOLLAR_FIELD,
                      "FieldPath field names may not start with '$': %s", path);
      return false;
   }
   if (!set_mode(st, path, include, error)) {
      return false;
   }
   n = insert_path(&p->root, path, error);
   if (!n) {
      return false;
   }
   n->action = include ? PA_INCLUDE : PA_EXCLUDE;
   return true;
}

static bool
parse_spec(flora_projection_t *p, parse_state_t *st, const bson_t *spec, const char *prefix,
           flora_error_t *error)
{
   bson_iter_t it;

   if (!bson_iter_init(&it, spec)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "corrupt projection");
      return false;
   }
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      char *path;
      bool ok;

      if (key[0] == '$') {
         flora_error_set(error, FLORA_DOMAIN_STORE, ERR_DOLLAR_FIELD,
                         "FieldPath field names may not start with '$': %s", key);
         return false;
      }
      path = prefix ? bson_strdup_printf("%s.%s", prefix, key) : bson_strdup(key);
      ok = parse_entry(p, st, path, &it, error);
      bson_free(path);
      if (!ok) {
         return false;
      }
   }
   return true;
}

flora_projection_t *
flora_projection_new(const bson_t *spec, flora_error_t *error)
{
   flora_projection_t *p;
   parse_state_t st = {false, false};

   FLORA_ASSERT_ARG(spec);
   p = bson_malloc0(sizeof *p);
   p->empty = bson_empty(spec);
   if (!parse_spec(p, &st, spec, NULL, error)) {
      flora_projection_destroy(p);
      return NULL;
   }
   p->inclusion = st.has_include;
   if (!st.has_include && !st.has_exclude) {
      /* Only _id, $slice or $meta entries: {_id: 1} alone includes just _id. */
      pnode_t *id = pnode_find(&p->root, "_id", 3);

      p->inclusion = id && id->action == PA_INCLUDE && p->root.nkids == 1;
   }
   if (p->inclusion && !pnode_find(&p->root, "_id", 3)) {
      pnode_add(&p->root, "_id", 3)->action = PA_INCLUDE;
   }
   return p;
}

void
flora_projection_destroy(flora_projection_t *projection)
{
   if (!projection) {
      return;
   }
   pnode_clear(&projection->root);
   bson_free(projection);
}

/* ---- applying --------------------------------------------------------------------------- */

static void
append_slice(const pnode_t *n, const char *key, size_t key_len, const bson_iter_t *value,
             bson_t *out)
{
   bson_iter_t it;
   bson_t arr;
   int64_t len = 0, from, count, k = 0, i = 0;
   char idx[16];
   const char *idx_key;

   if (!BSON_ITER_HOLDS_ARRAY(value) || !bson_iter_recurse(value, &it)) {
      bson_append_iter(out, key, (int) key_len, value);
      return;
   }
   while (bson_iter_next(&it)) {
      len++;
   }
   if (n->has_skip) {
      from = n->skip >= 0 ? n->skip : (len + n->skip < 0 ? 0 : len + n->skip);
      count = n->limit;
   } else if (n->limit >= 0) {
      from = 0;
      count = n->limit;
   } else {
      from = len + n->limit < 0 ? 0 : len + n->limit;
      count = len;
   }
   bson_iter_recurse(value, &it);
   bson_append_array_begin(out, key, (int) key_len, &arr);
   while (bson_iter_next(&it)) {
      if (i >= from && k < count) {
         size_t l = bson_uint32_to_string((uint32_t) k, &idx_key, idx, sizeof idx);

         bson_append_iter(&arr, idx_key, (int) l, &it);
         k++;
      }
      i++;
   }
   bson_append_array_end(out, &arr);
}

/* Appends [element at index] of the array value; false when there is no such element. */
static bool
append_one_element(const char *key, size_t key_len, const bson_iter_t *value, int index,
                   bson_t *out)
{
   bson_iter_t it;
   bson_t arr;
   int i = 0;

   if (index < 0 || !bson_iter_recurse(value, &it)) {
      return false;
   }
   while (bson_iter_next(&it)) {
      if (i == index) {
         bson_append_array_begin(out, key, (int) key_len, &arr);
         bson_append_iter(&arr, "0", 1, &it);
         bson_append_array_end(out, &arr);
         return true;
      }
      i++;
   }
   return false;
}

static void apply_level(apply_ctx_t *c, const pnode_t *node, const bson_iter_t *container,
                        bool is_array, bson_t *out);

/* Appends under key the projection of a document or array value by node's children. */
static void
append_projected(apply_ctx_t *c, const pnode_t *node, const char *key, size_t key_len,
                 const bson_iter_t *value, bson_t *out)
{
   bson_t child;

   if (BSON_ITER_HOLDS_DOCUMENT(value)) {
      bson_append_document_begin(out, key, (int) key_len, &child);
      apply_level(c, node, value, false, &child);
      bson_append_document_end(out, &child);
   } else {
      bson_append_array_begin(out, key, (int) key_len, &child);
      apply_level(c, node, value, true, &child);
      bson_append_array_end(out, &child);
   }
}

static void
apply_field(apply_ctx_t *c, const pnode_t *n, const char *key, size_t key_len,
            const bson_iter_t *value, bson_t *out)
{
   switch (n->action) {
   case PA_INCLUDE:
      bson_append_iter(out, key, (int) key_len, value);
      return;
   case PA_EXCLUDE:
   case PA_META:
      return;
   case PA_SLICE:
      append_slice(n, key, key_len, value, out);
      return;
   case PA_ELEMMATCH:
      /* appended after the other fields (flora_projection_apply) */
      return;
   case PA_POSITIONAL:
      if (!BSON_ITER_HOLDS_ARRAY(value)) {
         bson_append_iter(out, key, (int) key_len, value);
         return;
      }
      if (!append_one_element(key, key_len, value, c->positional_index, out) && !c->failed) {
         flora_error_set(c->error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "positional operator '.$' couldn't find a matching element in the "
                         "array (field %s)",
                         n->name);
         c->failed = true;
      }
      return;
   case PA_NONE:
      if (BSON_ITER_HOLDS_DOCUMENT(value) || BSON_ITER_HOLDS_ARRAY(value)) {
         append_projected(c, n, key, key_len, value, out);
      } else if (!c->p->inclusion) {
         bson_append_iter(out, key, (int) key_len, value);
      }
      return;
   }
}

/* Projects the fields of container (a document, or an array whose elements are projected
 * one by one) by node's children into out. */
static void
apply_level(apply_ctx_t *c, const pnode_t *node, const bson_iter_t *container, bool is_array,
            bson_t *out)
{
   bson_iter_t it;
   uint32_t k = 0;

   if (!bson_iter_recurse(container, &it)) {
      return;
   }
   while (bson_iter_next(&it)) {
      if (is_array) {
         char idx[16];
         const char *idx_key;
         size_t l = bson_uint32_to_string(k, &idx_key, idx, sizeof idx);

         if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
            append_projected(c, node, idx_key, l, &it, out);
            k++;
         } else if (!c->p->inclusion) {
            bson_append_iter(out, idx_key, (int) l, &it);
            k++;
         }
         continue;
      }
      {
         const pnode_t *n = pnode_find(node, bson_iter_key(&it), bson_iter_key_len(&it));

         if (n) {
            apply_field(c, n, bson_iter_key(&it), bson_iter_key_len(&it), &it, out);
         } else if (!c->p->inclusion) {
            bson_append_iter(out, bson_iter_key(&it), (int) bson_iter_key_len(&it), &it);
         }
      }
   }
}

bool
flora_projection_apply(const flora_projection_t *projection, const bson_t *doc,
                       const flora_matcher_t *matcher, bson_t *out, flora_error_t *error)
{
   apply_ctx_t c = {projection, doc, -1, error, false};
   bson_iter_t it;

   FLORA_ASSERT_ARG(projection);
   FLORA_ASSERT_ARG(doc);
   FLORA_ASSERT_ARG(out);
   bson_init(out);
   if (projection->positional) {
      if (!matcher) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "positional projection requires the query's filter");
         return false;
      }
      flora_matcher_match(matcher, doc, &c.positional_index);
   }
   if (!bson_iter_init(&it, doc)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "corrupt document");
      return false;
   }
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      uint32_t key_len = bson_iter_key_len(&it);
      const pnode_t *n;

      if (strcmp(key, FLORA__TEXT_SCORE_FIELD) == 0) {
         continue;
      }
      n = projection->empty ? NULL : pnode_find(&projection->root, key, key_len);
      if (n) {
         apply_field(&c, n, key, key_len, &it, out);
      } else if (!projection->inclusion) {
         bson_append_iter(out, key, (int) key_len, &it);
      }
   }
   if (projection->inclusion) {
      /* MongoDB 4.4+: an $elemMatch projection returns its field after the other included
       * fields, whatever the document's order (manual, "$elemMatch (projection)"). */
      for (size_t i = 0; i < projection->root.nkids; i++) {
         const pnode_t *n = projection->root.kids[i];
         int index = -1;

         if (n->action == PA_ELEMMATCH && bson_iter_init_find(&it, doc, n->name) &&
             BSON_ITER_HOLDS_ARRAY(&it) && flora_matcher_match(n->elem_match, doc, &index)) {
            append_one_element(n->name, strlen(n->name), &it, index, out);
         }
      }
   }
   if (projection->meta) {
      for (size_t i = 0; i < projection->root.nkids; i++) {
         const pnode_t *n = projection->root.kids[i];

         if (n->action == PA_META) {
            BSON_APPEND_DOUBLE(out, n->name, flora__text_score(doc));
         }
      }
   }
   if (c.failed) {
      bson_destroy(out);
      bson_init(out);
      return false;
   }
   return true;
}
