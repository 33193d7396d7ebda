/* Aggregation pipelines: see include/flora/query.h.
 *
 * Stage semantics follow the MongoDB manual, "Aggregation Stages"
 * (www.mongodb.com/docs/manual/reference/operator/aggregation-pipeline/) and the recorded
 * answers of real MongoDB in the OpenDocDB corpus. A pipeline is compiled once (every
 * expression into a tree, every filter into a matcher) and then run over materialised
 * document lists, one stage after another. Stages and expression operators that are not
 * listed in docs/query.md fail at compile time with code 2, never with another answer. */
#include <string.h>
#include <sys/types.h>

#include "flora/query.h"
#include "query/expr_private.h"
#include "query/query_private.h"

enum stage_kind {
   ST_MATCH,
   ST_PROJECT, /* $project, $addFields/$set, $unset */
   ST_GROUP,
   ST_SORT,
   ST_SKIP,
   ST_LIMIT,
   ST_UNWIND,
   ST_LOOKUP,
   ST_COUNT,
   ST_REPLACEROOT,
   ST_FACET,
};

/* ---- projection trees ($project, $addFields, $unset) -------------------------------- */

enum pmode { PM_INCLUDE, PM_EXCLUDE, PM_ADD };
enum pkind { PK_INCLUDE, PK_EXCLUDE, PK_COMPUTED, PK_NESTED };

typedef struct pnode {
   char *name;
   enum pkind kind;
   flora__expr_t *expr;
   struct pnode **kids;
   size_t nkids;
   bool has_computed; /* this subtree computes something */
} pnode_t;

/* ---- $group ----------------------------------------------------------------------- */

enum acc_op { AC_SUM, AC_AVG, AC_MIN, AC_MAX, AC_FIRST, AC_LAST, AC_PUSH, AC_ADDTOSET, AC_COUNT };

typedef struct acc_spec {
   char *name;
   enum acc_op op;
   flora__expr_t *expr; /* NULL for $count */
} acc_spec_t;

typedef struct stage {
   enum stage_kind kind;
   const char *name;
   /* $match filter / $sort spec (what flora_pipeline_prefix lends). On the heap: a bson_t
    * that has grown points into itself, so it cannot live in the realloc'd stage array. */
   bson_t *spec;
   flora_matcher_t *matcher;
   flora_sort_t *sort;
   /* projection */
   pnode_t *proj;
   enum pmode pmode;
   /* $group, $replaceRoot */
   flora__expr_t *expr;
   acc_spec_t *accs;
   size_t naccs;
   /* $skip, $limit */
   int64_t n;
   /* $unwind */
   char **parts;
   size_t nparts;
   char *index_field;
   bool preserve;
   /* $lookup */
   char *from, *local_field, *foreign_field, *as;
   flora__path_t local_path;
   struct flora_pipeline *sub;
   /* $count */
   char *count_field;
   /* $facet */
   char **facet_names;
   struct flora_pipeline **facets;
   size_t nfacets;
} stage_t;

struct flora_pipeline {
   stage_t *stages;
   size_t n;
};

static void
pnode_destroy(pnode_t *n)
{
   if (!n) {
      return;
   }
   for (size_t i = 0; i < n->nkids; i++) {
      pnode_destroy(n->kids[i]);
   }
   bson_free(n->kids);
   flora__expr_destroy(n->expr);
   bson_free(n->name);
   bson_free(n);
}

static void
stage_clear(stage_t *s)
{
   bson_destroy(s->spec);
   flora_matcher_destroy(s->matcher);
   flora_sort_destroy(s->sort);
   pnode_destroy(s->proj);
   flora__expr_destroy(s->expr);
   for (size_t i = 0; i < s->naccs; i++) {
      bson_free(s->accs[i].name);
      flora__expr_destroy(s->accs[i].expr);
   }
   bson_free(s->accs);
   for (size_t i = 0; i < s->nparts; i++) {
      bson_free(s->parts[i]);
   }
   bson_free(s->parts);
   bson_free(s->index_field);
   bson_free(s->from);
   bson_free(s->local_field);
   bson_free(s->foreign_field);
   bson_free(s->as);
   flora__path_clear(&s->local_path);
   flora_pipeline_destroy(s->sub);
   bson_free(s->count_field);
   for (size_t i = 0; i < s->nfacets; i++) {
      bson_free(s->facet_names[i]);
      flora_pipeline_destroy(s->facets[i]);
   }
   bson_free(s->facet_names);
   bson_free(s->facets);
}

void
flora_pipeline_destroy(flora_pipeline_t *pipeline)
{
   if (!pipeline) {
      return;
   }
   for (size_t i = 0; i < pipeline->n; i++) {
      stage_clear(&pipeline->stages[i]);
   }
   bson_free(pipeline->stages);
   bson_free(pipeline);
}

static stage_t *
add_stage(flora_pipeline_t *p, enum stage_kind kind, const char *name)
{
   stage_t *s;

   p->stages = bson_realloc(p->stages, (p->n + 1) * sizeof *p->stages);
   s = &p->stages[p->n++];
   memset(s, 0, sizeof *s);
   s->spec = bson_new();
   s->kind = kind;
   s->name = name;
   return s;
}

static bool
fail(flora_error_t *error, uint32_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool
fail(flora_error_t *error, uint32_t code, const char *fmt, ...)
{
   char msg[400];
   va_list ap;

   va_start(ap, fmt);
   vsnprintf(msg, sizeof msg, fmt, ap);
   va_end(ap);
   flora_error_set(error, FLORA_DOMAIN_STORE, code, "%s", msg);
   return false;
}

static const char *
type_name(const bson_value_t *v)
{
   return v->value_type == BSON_TYPE_EOD ? "missing" : flora_value_type_name(v->value_type);
}

static bool
is_number(const bson_value_t *v)
{
   return flora__value_is_number(v);
}

/* ---- projection compile ------------------------------------------------------------- */

static pnode_t *
pnode_child(pnode_t *parent, const char *name, size_t len)
{
   pnode_t *k;

   for (size_t i = 0; i < parent->nkids; i++) {
      if (strlen(parent->kids[i]->name) == len && memcmp(parent->kids[i]->name, name, len) == 0) {
         return parent->kids[i];
      }
   }
   k = bson_malloc0(sizeof *k);
   k->name = bson_strndup(name, len);
   k->kind = PK_NESTED;
   parent->kids = bson_realloc(parent->kids, (parent->nkids + 1) * sizeof *parent->kids);
   parent->kids[parent->nkids++] = k;
   return k;
}

/* Adds the leaf for dotted path (relative to root) with kind; the leaf takes expr. */
static bool
pnode_add(pnode_t *root, const char *path, enum pkind kind, flora__expr_t *expr,
          flora_error_t *error)
{
   pnode_t *n = root;
   const char *p = path;

   for (;;) {
      const char *dot = strchr(p, '.');
      size_t len = dot ? (size_t) (dot - p) : strlen(p);
      if (len == 0) {
         flora__expr_destroy(expr);
         return fail(error, 40352, "FieldPath cannot be constructed with empty string");
      }
      if (p[0] == '$') {
         flora__expr_destroy(expr);
         return fail(error, 16410, "FieldPath field names may not start with '$'. Consider "
                                   "using $getField or $setField.");
      }
      n = pnode_child(n, p, len);
      if (!dot) {
         if (n->kind != PK_NESTED || n->nkids > 0 || n->expr) {
            flora__expr_destroy(expr);
            return fail(error, 31250, "Path collision at %s", path);
         }
         n->kind = kind;
         n->expr = expr;
         return true;
      }
      if (n->kind != PK_NESTED) {
         flora__expr_destroy(expr);
         return fail(error, 31250, "Path collision at %s", path);
      }
      p = dot + 1;
   }
}

static bool
pnode_finish(pnode_t *n)
{
   n->has_computed = n->kind == PK_COMPUTED;
   for (size_t i = 0; i < n->nkids; i++) {
      if (pnode_finish(n->kids[i])) {
         n->has_computed = true;
      }
   }
   return n->has_computed;
}

/* Parses a $project ($addFields when add) spec into root, with prefix for nesting.
 * *incl / *excl count inclusions and exclusions of fields other than top-level _id. */
static bool
parse_projection(pnode_t *root, const bson_t *spec, const char *prefix, bool add, int *incl,
                 int *excl, int *computed, bool *id_excluded, flora_error_t *error)
{
   bson_iter_t it;

   bson_iter_init(&it, spec);
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      const bson_value_t *v = bson_iter_value(&it);
      char *path = prefix ? bson_strdup_printf("%s.%s", prefix, key) : bson_strdup(key);
      bool is_id = strcmp(path, "_id") == 0;
      bool ok = true;

      if (!add && (BSON_ITER_HOLDS_BOOL(&it) || is_number(v))) {
         bool on = bson_iter_as_bool(&it);
         if (is_id) {
            *id_excluded = !on;
         } else if (on) {
            (*incl)++;
         } else {
            (*excl)++;
         }
         ok = pnode_add(root, path, on ? PK_INCLUDE : PK_EXCLUDE, NULL, error);
      } else if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
         bson_t sub;
         bson_iter_t first;
         const uint8_t *data;
         uint32_t len;
         bson_iter_document(&it, &len, &data);
         bson_init_static(&sub, data, len);
         if (bson_iter_init(&first, &sub) && bson_iter_next(&first) &&
             bson_iter_key(&first)[0] == '$') {
            flora__expr_t *e = flora__expr_compile(v, error);
            ok = e && pnode_add(root, path, PK_COMPUTED, e, error);
            (*computed)++;
         } else if (bson_empty(&sub) && add) {
            /* $addFields {f: {}} sets f to an empty document */
            flora__expr_t *e = flora__expr_compile(v, error);
            ok = e && pnode_add(root, path, PK_COMPUTED, e, error);
            (*computed)++;
         } else if (bson_empty(&sub)) {
            ok = fail(error, 51270, "An empty sub-projection is not a valid value. Found "
                                    "empty object at path %s",
                      path);
         } else {
            ok = parse_projection(root, &sub, path, add, incl, excl, computed, id_excluded, error);
         }
      } else {
         flora__expr_t *e = flora__expr_compile(v, error);
         ok = e && pnode_add(root, path, PK_COMPUTED, e, error);
         (*computed)++;
      }
      bson_free(path);
      if (!ok) {
         return false;
      }
   }
   return true;
}

static bool
compile_project(stage_t *s, const bson_value_t *arg, bool add, flora_error_t *error)
{
   bson_t spec;
   int incl = 0, excl = 0, computed = 0;
   bool id_excluded = false, id_only;

   if (arg->value_type != BSON_TYPE_DOCUMENT) {
      return fail(error, add ? 40272 : 15969, "%s specification must be an object", s->name);
   }
   flora__value_as_doc(arg, &spec);
   if (bson_empty(&spec)) {
      return fail(error, add ? 40177 : 51272,
                  add ? "Invalid $addFields :: caused by :: specification must have at least "
                        "one field"
                      : "Invalid $project :: caused by :: projection specification must have "
                        "at least one field");
   }
   s->proj = bson_malloc0(sizeof *s->proj);
   s->proj->kind = PK_NESTED;
   if (!parse_projection(s->proj, &spec, NULL, add, &incl, &excl, &computed, &id_excluded,
                         error)) {
      return false;
   }
   /* {_id: 1} alone is an inclusion projection, {_id: 0} alone an exclusion */
   id_only = incl == 0 && excl == 0 && computed == 0 && !id_excluded;
   if (add) {
      s->pmode = PM_ADD;
   } else if (excl > 0 && (incl > 0 || computed > 0)) {
      return fail(error, incl > 0 ? 31254 : 31310,
                  incl > 0 ? "Invalid $project :: caused by :: Cannot do exclusion in inclusion "
                             "projection"
                           : "Invalid $project :: caused by :: Cannot use expression other than "
                             "$meta in exclusion projection");
   } else if (incl > 0 || computed > 0 || id_only) {
      s->pmode = PM_INCLUDE;
      if (!id_excluded) {
         /* _id is kept unless excluded (output keeps the input's field order) */
         bool has_id = false;
         for (size_t i = 0; i < s->proj->nkids; i++) {
            has_id = has_id || strcmp(s->proj->kids[i]->name, "_id") == 0;
         }
         if (!has_id) {
            pnode_t *id = pnode_child(s->proj, "_id", 3);
            id->kind = PK_INCLUDE;
         }
      }
   } else {
      s->pmode = PM_EXCLUDE;
   }
   pnode_finish(s->proj);
   return true;
}

static bool
compile_unset(stage_t *s, const bson_value_t *arg, flora_error_t *error)
{
   bson_t arr;
   bson_iter_t it;

   s->proj = bson_malloc0(sizeof *s->proj);
   s->proj->kind = PK_NESTED;
   s->pmode = PM_EXCLUDE;
   if (arg->value_type == BSON_TYPE_UTF8) {
      return pnode_add(s->proj, arg->value.v_utf8.str, PK_EXCLUDE, NULL, error);
   }
   if (arg->value_type != BSON_TYPE_ARRAY) {
      return fail(error, 31002, "$unset specification must be a string or an array");
   }
   flora__value_as_doc(arg, &arr);
   bson_iter_init(&it, &arr);
   if (bson_empty(&arr)) {
      return fail(error, 31119, "$unset specification must be a string or an array with at "
                                "least one field");
   }
   while (bson_iter_next(&it)) {
      if (!BSON_ITER_HOLDS_UTF8(&it)) {
         return fail(error, 31120, "$unset specification must be a string or an array containing "
                                   "only string values");
      }
      if (!pnode_add(s->proj, bson_iter_utf8(&it, NULL), PK_EXCLUDE, NULL, error)) {
         return false;
      }
   }
   return true;
}

/* ---- projection apply ----------------------------------------------------------------- */

/* An ordered list of fields with owned values; names are borrowed (input or spec). */
typedef struct olist {
   const char **names;
   bson_value_t *vals;
   size_t n, cap;
} olist_t;

static void
olist_push(olist_t *l, const char *name, bson_value_t *v /* taken */)
{
   if (l->n == l->cap) {
      l->cap = l->cap ? l->cap * 2 : 8;
      l->names = bson_realloc(l->names, l->cap * sizeof *l->names);
      l->vals = bson_realloc(l->vals, l->cap * sizeof *l->vals);
   }
   l->names[l->n] = name;
   l->vals[l->n++] = *v;
}

static ssize_t
olist_find(const olist_t *l, const char *name)
{
   for (size_t i = 0; i < l->n; i++) {
      if (strcmp(l->names[i], name) == 0) {
         return (ssize_t) i;
      }
   }
   return -1;
}

/* Sets name to v (taken), replacing in place; a missing v removes the field. */
static void
olist_set(olist_t *l, const char *name, bson_value_t *v)
{
   ssize_t i = olist_find(l, name);

   if (i >= 0) {
      bson_value_destroy(&l->vals[i]);
      if (v->value_type == BSON_TYPE_EOD) {
         memmove(&l->names[i], &l->names[i + 1], (l->n - (size_t) i - 1) * sizeof *l->names);
         memmove(&l->vals[i], &l->vals[i + 1], (l->n - (size_t) i - 1) * sizeof *l->vals);
         l->n--;
      } else {
         l->vals[i] = *v;
      }
   } else if (v->value_type != BSON_TYPE_EOD) {
      olist_push(l, name, v);
   }
}

static void
olist_clear(olist_t *l)
{
   for (size_t i = 0; i < l->n; i++) {
      bson_value_destroy(&l->vals[i]);
   }
   bson_free(l->names);
   bson_free(l->vals);
   memset(l, 0, sizeof *l);
}

static void
olist_build(olist_t *l, bson_t *out)
{
   for (size_t i = 0; i < l->n; i++) {
      flora__value_append(out, l->names[i], -1, &l->vals[i]);
   }
   olist_clear(l);
}

static void
take_bson(bson_value_t *v, bson_t *b, bool is_array)
{
   uint32_t len = 0;
   uint8_t *data = bson_destroy_with_steal(b, true, &len);

   memset(v, 0, sizeof *v);
   v->value_type = is_array ? BSON_TYPE_ARRAY : BSON_TYPE_DOCUMENT;
   v->value.v_doc.data = data;
   v->value.v_doc.data_len = len;
}

typedef struct run_ctx {
   const bson_t *root;
   int64_t now_ms;
   flora_lookup_fn lookup;
   void *lookup_ctx;
   flora__expr_cache_t *cache;
} run_ctx_t;

static pnode_t *
find_kid(const pnode_t *n, const char *name)
{
   for (size_t i = 0; i < n->nkids; i++) {
      if (strcmp(n->kids[i]->name, name) == 0) {
         return n->kids[i];
      }
   }
   return NULL;
}

static bool apply_value(const pnode_t *node, enum pmode mode, const bson_value_t *v,
                        const run_ctx_t *rc, bson_value_t *out, flora_error_t *error);

/* Projects in (NULL = an absent or non-document value) into *out (initialised by the
 * caller). */
static bool
apply_doc(const pnode_t *node, enum pmode mode, const bson_t *in, const run_ctx_t *rc, bson_t *out,
          flora_error_t *error)
{
   olist_t l = {0};
   bson_iter_t it;

   if (in && bson_iter_init(&it, in)) {
      while (bson_iter_next(&it)) {
         const char *key = bson_iter_key(&it);
         const pnode_t *kid = find_kid(node, key);
         bson_value_t v;
         if (!kid) {
            if (mode == PM_INCLUDE) {
               continue;
            }
            bson_value_copy(bson_iter_value(&it), &v);
            olist_push(&l, key, &v);
            continue;
         }
         switch (kid->kind) {
         case PK_INCLUDE:
            bson_value_copy(bson_iter_value(&it), &v);
            olist_push(&l, key, &v);
            break;
         case PK_EXCLUDE:
            break;
         case PK_COMPUTED:
            if (mode == PM_ADD) {
               bson_value_copy(bson_iter_value(&it), &v);
               olist_push(&l, key, &v);
            }
            break;
         case PK_NESTED:
            if (!apply_value(kid, mode, bson_iter_value(&it), rc, &v, error)) {
               olist_clear(&l);
               return false;
            }
            if (v.value_type != BSON_TYPE_EOD) {
               olist_push(&l, key, &v);
            }
            break;
         }
      }
   }
   for (size_t i = 0; i < node->nkids; i++) {
      const pnode_t *kid = node->kids[i];
      bson_value_t v;
      if (kid->kind == PK_COMPUTED) {
         if (!flora__expr_eval(kid->expr, rc->root, rc->now_ms, rc->cache, &v, error)) {
            olist_clear(&l);
            return false;
         }
         olist_set(&l, kid->name, &v);
      } else if (kid->kind == PK_NESTED && kid->has_computed && olist_find(&l, kid->name) < 0) {
         bson_t sub = BSON_INITIALIZER;
         if (!apply_doc(kid, mode, NULL, rc, &sub, error)) {
            bson_destroy(&sub);
            olist_clear(&l);
            return false;
         }
         take_bson(&v, &sub, false);
         olist_push(&l, kid->name, &v);
      }
   }
   olist_build(&l, out);
   return true;
}

static bool
apply_value(const pnode_t *node, enum pmode mode, const bson_value_t *v, const run_ctx_t *rc,
            bson_value_t *out, flora_error_t *error)
{
   memset(out, 0, sizeof *out);
   out->value_type = BSON_TYPE_EOD;
   if (v->value_type == BSON_TYPE_DOCUMENT) {
      bson_t in, sub = BSON_INITIALIZER;
      flora__value_as_doc(v, &in);
      if (!apply_doc(node, mode, &in, rc, &sub, error)) {
         bson_destroy(&sub);
         return false;
      }
      take_bson(out, &sub, false);
      return true;
   }
   if (v->value_type == BSON_TYPE_ARRAY) {
      bson_t in, arr = BSON_INITIALIZER;
      bson_iter_t it;
      uint32_t idx = 0;
      flora__value_as_doc(v, &in);
      bson_iter_init(&it, &in);
      while (bson_iter_next(&it)) {
         bson_value_t r;
         char buf[16];
         const char *key;
         size_t klen;
         if (mode == PM_INCLUDE && !BSON_ITER_HOLDS_DOCUMENT(&it) && !BSON_ITER_HOLDS_ARRAY(&it)) {
            /* an inclusion drops scalars in arrays before computing (ProjectionNode) */
            continue;
         }
         if (!apply_value(node, mode, bson_iter_value(&it), rc, &r, error)) {
            bson_destroy(&arr);
            return false;
         }
         if (r.value_type != BSON_TYPE_EOD) {
            klen = bson_uint32_to_string(idx++, &key, buf, sizeof buf);
            bson_append_value(&arr, key, (int) klen, &r);
         }
         bson_value_destroy(&r);
      }
      take_bson(out, &arr, true);
      return true;
   }
   if (mode == PM_EXCLUDE || (mode == PM_ADD && !node->has_computed)) {
      bson_value_copy(v, out);
      return true;
   }
   if (node->has_computed) {
      bson_t sub = BSON_INITIALIZER;
      if (!apply_doc(node, mode, NULL, rc, &sub, error)) {
         bson_destroy(&sub);
         return false;
      }
      take_bson(out, &sub, false);
   }
   return true;
}

/* ---- stage compile ------------------------------------------------------------------ */

static const struct {
   const char *name;
   enum acc_op op;
} ACCS[] = {
   {"$sum", AC_SUM},     {"$avg", AC_AVG},   {"$min", AC_MIN},   {"$max", AC_MAX},
   {"$first", AC_FIRST}, {"$last", AC_LAST}, {"$push", AC_PUSH}, {"$addToSet", AC_ADDTOSET},
   {"$count", AC_COUNT},
};

static bool
compile_group(stage_t *s, const bson_value_t *arg, flora_error_t *error)
{
   bson_t spec;
   bson_iter_t it;
   bool has_id = false;

   if (arg->value_type != BSON_TYPE_DOCUMENT) {
      return fail(error, 15947, "a group's fields must be specified in an object");
   }
   flora__value_as_doc(arg, &spec);
   bson_iter_init(&it, &spec);
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      bson_t acc;
      bson_iter_t ai;
      acc_spec_t *a;
      const char *opname;
      size_t k;

      if (strcmp(key, "_id") == 0) {
         if (has_id) {
            return fail(error, 16406, "duplicate field name specified in object literal: _id");
         }
         has_id = true;
         s->expr = flora__expr_compile(bson_iter_value(&it), error);
         if (!s->expr) {
            return false;
         }
         continue;
      }
      if (strchr(key, '.')) {
         return fail(error, 40235, "The field name '%s' cannot contain '.'", key);
      }
      if (key[0] == '$') {
         return fail(error, 40236, "The field name '%s' cannot be an operator name", key);
      }
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         return fail(error, 40234, "The field '%s' must be an accumulator object", key);
      }
      flora__value_as_doc(bson_iter_value(&it), &acc);
      if (bson_count_keys(&acc) != 1) {
         return fail(error, 40238, "The field '%s' must specify one accumulator", key);
      }
      bson_iter_init(&ai, &acc);
      bson_iter_next(&ai);
      opname = bson_iter_key(&ai);
      for (k = 0; k < sizeof ACCS / sizeof ACCS[0]; k++) {
         if (strcmp(ACCS[k].name, opname) == 0) {
            break;
         }
      }
      if (k == sizeof ACCS / sizeof ACCS[0]) {
         return fail(error, FLORA_STORE_BAD_VALUE, "unsupported accumulator %s", opname);
      }
      s->accs = bson_realloc(s->accs, (s->naccs + 1) * sizeof *s->accs);
      a = &s->accs[s->naccs++];
      memset(a, 0, sizeof *a);
      a->name = bson_strdup(key);
      a->op = ACCS[k].op;
      if (a->op == AC_COUNT) {
         bson_t empty;
         if (!BSON_ITER_HOLDS_DOCUMENT(&ai) || !flora__value_as_doc(bson_iter_value(&ai), &empty) ||
             !bson_empty(&empty)) {
            return fail(error, FLORA_STORE_BAD_VALUE, "$count takes no arguments, i.e. $count:{}");
         }
         continue;
      }
      if (BSON_ITER_HOLDS_ARRAY(&ai)) {
         return fail(error, 40237, "The %s accumulator is a unary operator", opname);
      }
      a->expr = flora__expr_compile(bson_iter_value(&ai), error);
      if (!a->expr) {
         return false;
      }
   }
   if (!has_id) {
      return fail(error, 15955, "a group specification must include an _id");
   }
   return true;
}

static bool
int_arg(const char *stage, const bson_value_t *v, int64_t *out, flora_error_t *error)
{
   if (!is_number(v)) {
      return fail(error, strcmp(stage, "$skip") == 0 ? 15972 : 15957,
                  strcmp(stage, "$skip") == 0 ? "Argument to $skip must be a number"
                                               : "the limit must be specified as a number");
   }
   if (!flora__number_as_int64(v, out)) {
      return fail(error, strcmp(stage, "$skip") == 0 ? 15972 : 15957,
                  "invalid argument to %s stage: Cannot represent as a 64-bit integer", stage);
   }
   return true;
}

static bool
split_path(stage_t *s, const char *path, flora_error_t *error)
{
   const char *p = path;

   for (;;) {
      const char *dot = strchr(p, '.');
      size_t len = dot ? (size_t) (dot - p) : strlen(p);
      if (len == 0) {
         return fail(error, 15998, "FieldPath field names may not be empty strings.");
      }
      if (p[0] == '$') {
         return fail(error, 16410, "FieldPath field names may not start with '$'.");
      }
      s->parts = bson_realloc(s->parts, (s->nparts + 1) * sizeof *s->parts);
      s->parts[s->nparts++] = bson_strndup(p, len);
      if (!dot) {
         return true;
      }
      p = dot + 1;
   }
}

static bool
compile_unwind(stage_t *s, const bson_value_t *arg, flora_error_t *error)
{
   const char *path = NULL;

   if (arg->value_type == BSON_TYPE_UTF8) {
      path = arg->value.v_utf8.str;
   } else if (arg->value_type == BSON_TYPE_DOCUMENT) {
      bson_t spec;
      bson_iter_t it;
      flora__value_as_doc(arg, &spec);
      bson_iter_init(&it, &spec);
      while (bson_iter_next(&it)) {
         const char *key = bson_iter_key(&it);
         if (strcmp(key, "path") == 0) {
            if (!BSON_ITER_HOLDS_UTF8(&it)) {
               return fail(error, 28808, "expected a string as the path for $unwind stage, got %s",
                           type_name(bson_iter_value(&it)));
            }
            path = bson_iter_utf8(&it, NULL);
         } else if (strcmp(key, "includeArrayIndex") == 0) {
            const char *f;
            if (!BSON_ITER_HOLDS_UTF8(&it)) {
               return fail(error, 28810,
                           "expected a non-empty string for the includeArrayIndex option to "
                           "$unwind stage");
            }
            f = bson_iter_utf8(&it, NULL);
            if (!f[0]) {
               return fail(error, 28810,
                           "expected a non-empty string for the includeArrayIndex option to "
                           "$unwind stage");
            }
            if (f[0] == '$') {
               return fail(error, 28822,
                           "includeArrayIndex option to $unwind stage should not be prefixed "
                           "with a '$': %s",
                           f);
            }
            bson_free(s->index_field);
            s->index_field = bson_strdup(f);
         } else if (strcmp(key, "preserveNullAndEmptyArrays") == 0) {
            if (!BSON_ITER_HOLDS_BOOL(&it)) {
               return fail(error, 28809,
                           "expected a boolean for the preserveNullAndEmptyArrays option to "
                           "$unwind stage");
            }
            s->preserve = bson_iter_bool(&it);
         } else {
            return fail(error, 28811, "unrecognized option to $unwind stage: %s", key);
         }
      }
      if (!path) {
         return fail(error, 28812, "no path specified to $unwind stage");
      }
   } else {
      return fail(error, 15981,
                  "expected either a string or an object as specification for $unwind stage, "
                  "got %s",
                  type_name(arg));
   }
   if (path[0] != '$') {
      return fail(error, 28818, "path option to $unwind stage should be prefixed with a '$': %s",
                  path);
   }
   return split_path(s, path + 1, error);
}

static bool
check_field_name(const char *stage, const char *f, flora_error_t *error)
{
   if (!f[0]) {
      return fail(error, 40352, "FieldPath cannot be constructed with empty string (in %s)", stage);
   }
   if (f[0] == '$') {
      return fail(error, 16410, "FieldPath field names may not start with '$' (in %s)", stage);
   }
   return true;
}

static flora_pipeline_t *compile_pipeline(const bson_t *pipeline, flora_error_t *error);

static bool
compile_lookup(stage_t *s, const bson_value_t *arg, flora_error_t *error)
{
   bson_t spec;
   bson_iter_t it;

   if (arg->value_type != BSON_TYPE_DOCUMENT) {
      return fail(error, FLORA_STORE_FAILED_TO_PARSE,
                  "the $lookup specification must be an Object, but found %s", type_name(arg));
   }
   flora__value_as_doc(arg, &spec);
   bson_iter_init(&it, &spec);
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      char **slot = NULL;
      if (strcmp(key, "pipeline") == 0) {
         bson_t sub;
         if (!BSON_ITER_HOLDS_ARRAY(&it)) {
            return fail(error, FLORA_STORE_FAILED_TO_PARSE,
                        "$lookup argument 'pipeline' must be an array, is type %s",
                        type_name(bson_iter_value(&it)));
         }
         flora__value_as_doc(bson_iter_value(&it), &sub);
         s->sub = compile_pipeline(&sub, error);
         if (!s->sub) {
            return false;
         }
         continue;
      }
      if (strcmp(key, "from") == 0) {
         slot = &s->from;
      } else if (strcmp(key, "localField") == 0) {
         slot = &s->local_field;
      } else if (strcmp(key, "foreignField") == 0) {
         slot = &s->foreign_field;
      } else if (strcmp(key, "as") == 0) {
         slot = &s->as;
      } else {
         return fail(error, FLORA_STORE_BAD_VALUE, "unsupported $lookup option %s", key);
      }
      if (!BSON_ITER_HOLDS_UTF8(&it)) {
         return fail(error, FLORA_STORE_FAILED_TO_PARSE,
                     "$lookup argument '%s' must be a string, found %s", key,
                     type_name(bson_iter_value(&it)));
      }
      bson_free(*slot);
      *slot = bson_strdup(bson_iter_utf8(&it, NULL));
   }
   if (!s->from || !s->as || !s->local_field || !s->foreign_field) {
      if (s->from && s->as && !s->local_field && !s->foreign_field && s->sub) {
         return fail(error, FLORA_STORE_BAD_VALUE,
                     "unsupported $lookup form: 'pipeline' without localField/foreignField");
      }
      return fail(error, FLORA_STORE_FAILED_TO_PARSE,
                  "$lookup requires 'from', 'localField', 'foreignField' and 'as'");
   }
   if (!check_field_name("$lookup", s->as, error) ||
       !flora__path_init(&s->local_path, s->local_field, error)) {
      return false;
   }
   return split_path(s, s->as, error);
}

static bool
compile_count(stage_t *s, const bson_value_t *arg, flora_error_t *error)
{
   const char *f;

   if (arg->value_type != BSON_TYPE_UTF8) {
      return fail(error, 40156, "the count field must be a non-empty string");
   }
   f = arg->value.v_utf8.str;
   if (!f[0]) {
      return fail(error, 40157, "the count field must be a non-empty string");
   }
   if (f[0] == '$') {
      return fail(error, 40158, "the count field cannot be a $-prefixed path");
   }
   if (strchr(f, '.')) {
      return fail(error, 40160, "the count field cannot contain '.'");
   }
   s->count_field = bson_strdup(f);
   return true;
}

static bool
compile_replace_root(stage_t *s, const bson_value_t *arg, bool with, flora_error_t *error)
{
   if (!with) {
      bson_t spec;
      bson_iter_t it;
      const bson_value_t *root = NULL;
      if (arg->value_type != BSON_TYPE_DOCUMENT) {
         return fail(error, 40228, "expected an object as specification for $replaceRoot stage, "
                                   "got %s",
                     type_name(arg));
      }
      flora__value_as_doc(arg, &spec);
      bson_iter_init(&it, &spec);
      while (bson_iter_next(&it)) {
         if (strcmp(bson_iter_key(&it), "newRoot") != 0) {
            return fail(error, 40415, "BSON field '$replaceRoot.%s' is an unknown field.",
                        bson_iter_key(&it));
         }
         root = bson_iter_value(&it);
         s->expr = flora__expr_compile(root, error);
         if (!s->expr) {
            return false;
         }
      }
      if (!root) {
         return fail(error, 40414, "BSON field '$replaceRoot.newRoot' is missing but a required "
                                   "field");
      }
      return true;
   }
   s->expr = flora__expr_compile(arg, error);
   return s->expr != NULL;
}

/* $facet: {name: [stages], ...}; each sub-pipeline runs over its own copy of the input
 * (codes from mongod's document_source_facet.cpp). */
static bool
compile_facet(stage_t *s, const bson_value_t *arg, flora_error_t *error)
{
   bson_t spec;
   bson_iter_t it;

   if (arg->value_type != BSON_TYPE_DOCUMENT || !flora__value_as_doc(arg, &spec) ||
       bson_empty(&spec)) {
      return fail(error, 40169, "the $facet specification must be a non-empty object");
   }
   bson_iter_init(&it, &spec);
   while (bson_iter_next(&it)) {
      const char *name = bson_iter_key(&it);
      bson_t sub;
      bson_iter_t st;
      flora_pipeline_t *fp;
      if (!check_field_name("$facet", name, error)) {
         return false;
      }
      if (strchr(name, '.')) {
         return fail(error, 16412, "FieldPath field names may not contain '.' (in $facet)");
      }
      if (!BSON_ITER_HOLDS_ARRAY(&it)) {
         return fail(error, 40170, "arguments to $facet must be arrays, %s is type %s", name,
                     type_name(bson_iter_value(&it)));
      }
      flora__value_as_doc(bson_iter_value(&it), &sub);
      bson_iter_init(&st, &sub);
      while (bson_iter_next(&st)) {
         bson_iter_t first;
         if (!BSON_ITER_HOLDS_DOCUMENT(&st)) {
            return fail(error, 40171,
                        "elements of arrays in $facet spec must be non-empty objects, %s "
                        "argument contained an element of type %s",
                        name, type_name(bson_iter_value(&st)));
         }
         if (bson_iter_recurse(&st, &first) && bson_iter_next(&first) &&
             strcmp(bson_iter_key(&first), "$facet") == 0) {
            return fail(error, 40600, "$facet is not allowed to be used within a $facet stage");
         }
      }
      fp = compile_pipeline(&sub, error);
      if (!fp) {
         return false;
      }
      s->facet_names = bson_realloc(s->facet_names, (s->nfacets + 1) * sizeof *s->facet_names);
      s->facets = bson_realloc(s->facets, (s->nfacets + 1) * sizeof *s->facets);
      s->facet_names[s->nfacets] = bson_strdup(name);
      s->facets[s->nfacets++] = fp;
   }
   return true;
}

static bool
compile_stage(flora_pipeline_t *p, const char *name, const bson_value_t *arg, flora_error_t *error)
{
   stage_t *s;
   bson_t doc;

   if (strcmp(name, "$match") == 0) {
      bson_t rest = BSON_INITIALIZER;
      bson_iter_t it;
      s = add_stage(p, ST_MATCH, "$match");
      if (arg->value_type != BSON_TYPE_DOCUMENT) {
         bson_destroy(&rest);
         return fail(error, 15959, "the match filter must be an expression in an object");
      }
      flora__value_as_doc(arg, &doc);
      bson_destroy(s->spec);
      s->spec = bson_copy(&doc);
      /* a top-level $expr is an aggregation expression, evaluated here; the rest of the
       * filter goes to the matcher (which refuses $expr elsewhere with code 2) */
      bson_iter_init(&it, &doc);
      while (bson_iter_next(&it)) {
         if (strcmp(bson_iter_key(&it), "$expr") == 0 && !s->expr) {
            s->expr = flora__expr_compile(bson_iter_value(&it), error);
            if (!s->expr) {
               bson_destroy(&rest);
               return false;
            }
         } else {
            bson_append_iter(&rest, NULL, 0, &it);
         }
      }
      s->matcher = flora_matcher_new(&rest, error);
      bson_destroy(&rest);
      return s->matcher != NULL;
   }
   if (strcmp(name, "$sort") == 0) {
      s = add_stage(p, ST_SORT, "$sort");
      if (arg->value_type != BSON_TYPE_DOCUMENT) {
         return fail(error, 15973, "the $sort key specification must be an object");
      }
      flora__value_as_doc(arg, &doc);
      if (bson_empty(&doc)) {
         return fail(error, 15976, "$sort stage must have at least one sort key");
      }
      bson_destroy(s->spec);
      s->spec = bson_copy(&doc);
      s->sort = flora_sort_new(s->spec, error);
      return s->sort != NULL;
   }
   if (strcmp(name, "$project") == 0) {
      return compile_project(add_stage(p, ST_PROJECT, "$project"), arg, false, error);
   }
   if (strcmp(name, "$addFields") == 0 || strcmp(name, "$set") == 0) {
      return compile_project(add_stage(p, ST_PROJECT, name[1] == 'a' ? "$addFields" : "$set"),
                             arg, true, error);
   }
   if (strcmp(name, "$unset") == 0) {
      return compile_unset(add_stage(p, ST_PROJECT, "$unset"), arg, error);
   }
   if (strcmp(name, "$group") == 0) {
      return compile_group(add_stage(p, ST_GROUP, "$group"), arg, error);
   }
   if (strcmp(name, "$skip") == 0) {
      s = add_stage(p, ST_SKIP, "$skip");
      if (!int_arg("$skip", arg, &s->n, error)) {
         return false;
      }
      if (s->n < 0) {
         return fail(error, 15956, "Argument to $skip cannot be negative");
      }
      return true;
   }
   if (strcmp(name, "$limit") == 0) {
      s = add_stage(p, ST_LIMIT, "$limit");
      if (!int_arg("$limit", arg, &s->n, error)) {
         return false;
      }
      if (s->n <= 0) {
         return fail(error, 15958, "the limit must be positive");
      }
      return true;
   }
   if (strcmp(name, "$unwind") == 0) {
      return compile_unwind(add_stage(p, ST_UNWIND, "$unwind"), arg, error);
   }
   if (strcmp(name, "$lookup") == 0) {
      return compile_lookup(add_stage(p, ST_LOOKUP, "$lookup"), arg, error);
   }
   if (strcmp(name, "$count") == 0) {
      return compile_count(add_stage(p, ST_COUNT, "$count"), arg, error);
   }
   if (strcmp(name, "$facet") == 0) {
      return compile_facet(add_stage(p, ST_FACET, "$facet"), arg, error);
   }
   if (strcmp(name, "$replaceRoot") == 0 || strcmp(name, "$replaceWith") == 0) {
      bool with = name[8] == 'W';
      return compile_replace_root(add_stage(p, ST_REPLACEROOT, with ? "$replaceWith" : "$replaceRoot"),
                                  arg, with, error);
   }
   if (strcmp(name, "$sortByCount") == 0) {
      /* {$group: {_id: <expr>, count: {$sum: 1}}}, {$sort: {count: -1}} (manual) */
      bson_t sort = BSON_INITIALIZER;
      bool ok;
      if (!(arg->value_type == BSON_TYPE_UTF8 && arg->value.v_utf8.str[0] == '$') &&
          arg->value_type != BSON_TYPE_DOCUMENT) {
         return fail(error, 40148,
                     "the sortByCount field must be specified as a string or as an object");
      }
      if (arg->value_type == BSON_TYPE_DOCUMENT) {
         bson_iter_t it;
         flora__value_as_doc(arg, &doc);
         if (!bson_iter_init(&it, &doc) || !bson_iter_next(&it) || bson_iter_key(&it)[0] != '$') {
            return fail(error, 40147, "the sortByCount field must be defined as a $-prefixed "
                                      "path or an expression inside an object");
         }
      }
      s = add_stage(p, ST_GROUP, "$sortByCount");
      s->expr = flora__expr_compile(arg, error);
      if (!s->expr) {
         return false;
      }
      s->accs = bson_malloc0(sizeof *s->accs);
      s->naccs = 1;
      s->accs[0].name = bson_strdup("count");
      s->accs[0].op = AC_COUNT;
      s = add_stage(p, ST_SORT, "$sortByCount");
      BSON_APPEND_INT32(&sort, "count", -1);
      bson_destroy(s->spec);
      s->spec = bson_copy(&sort);
      bson_destroy(&sort);
      s->sort = flora_sort_new(s->spec, error);
      ok = s->sort != NULL;
      return ok;
   }
   return fail(error, FLORA_STORE_BAD_VALUE, "unsupported aggregation stage %s", name);
}

static flora_pipeline_t *
compile_pipeline(const bson_t *pipeline, flora_error_t *error)
{
   flora_pipeline_t *p = bson_malloc0(sizeof *p);
   bson_iter_t it;

   bson_iter_init(&it, pipeline);
   while (bson_iter_next(&it)) {
      bson_t stage;
      bson_iter_t si;
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         fail(error, FLORA_STORE_TYPE_MISMATCH, "Each element of the 'pipeline' array must be "
                                                "an object");
         goto fail;
      }
      flora__value_as_doc(bson_iter_value(&it), &stage);
      if (bson_count_keys(&stage) != 1) {
         fail(error, 40323, "A pipeline stage specification object must contain exactly one "
                            "field.");
         goto fail;
      }
      bson_iter_init(&si, &stage);
      bson_iter_next(&si);
      if (!compile_stage(p, bson_iter_key(&si), bson_iter_value(&si), error)) {
         goto fail;
      }
   }
   return p;
fail:
   flora_pipeline_destroy(p);
   return NULL;
}

flora_pipeline_t *
flora_pipeline_new(const bson_t *pipeline, flora_error_t *error)
{
   FLORA_ASSERT_ARG(pipeline);
   return compile_pipeline(pipeline, error);
}

size_t
flora_pipeline_prefix(const flora_pipeline_t *pipeline, const bson_t **match, const bson_t **sort)
{
   size_t i = 0;

   FLORA_ASSERT_ARG(pipeline);
   if (match) {
      *match = NULL;
   }
   if (sort) {
      *sort = NULL;
   }
   /* a $match with $expr is not lent: an engine's matcher cannot evaluate it */
   if (i < pipeline->n && pipeline->stages[i].kind == ST_MATCH && !pipeline->stages[i].expr) {
      if (match) {
         *match = pipeline->stages[i].spec;
      }
      i++;
   }
   /* a $sort produced by $sortByCount is not a user's leading $sort */
   if (i < pipeline->n && pipeline->stages[i].kind == ST_SORT &&
       strcmp(pipeline->stages[i].name, "$sort") == 0) {
      if (sort) {
         *sort = pipeline->stages[i].spec;
      }
      i++;
   }
   return i;
}

/* ---- stage run ------------------------------------------------------------------------ */

/* Copies in (NULL = empty) into out with the field at parts[i..n) set to v, or removed
 * when v is NULL. Missing intermediate documents are created; a non-document in the way
 * is replaced. */
static void
set_path(const bson_t *in, char *const *parts, size_t n, size_t i, const bson_value_t *v, bson_t *out)
{
   bson_iter_t it;
   bool done = false;

   if (in && bson_iter_init(&it, in)) {
      while (bson_iter_next(&it)) {
         const char *key = bson_iter_key(&it);
         if (strcmp(key, parts[i]) != 0 || done) {
            bson_append_iter(out, key, -1, &it);
            continue;
         }
         done = true;
         if (i + 1 == n) {
            if (v) {
               bson_append_value(out, key, -1, v);
            }
         } else if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_t sub, child;
            flora__value_as_doc(bson_iter_value(&it), &sub);
            bson_append_document_begin(out, key, -1, &child);
            set_path(&sub, parts, n, i + 1, v, &child);
            bson_append_document_end(out, &child);
         } else if (v) {
            bson_t child;
            bson_append_document_begin(out, key, -1, &child);
            set_path(NULL, parts, n, i + 1, v, &child);
            bson_append_document_end(out, &child);
         } else {
            bson_append_iter(out, key, -1, &it);
         }
      }
   }
   if (!done && v) {
      if (i + 1 == n) {
         bson_append_value(out, parts[i], -1, v);
      } else {
         bson_t child;
         bson_append_document_begin(out, parts[i], -1, &child);
         set_path(NULL, parts, n, i + 1, v, &child);
         bson_append_document_end(out, &child);
      }
   }
}

/* The value at a dotted path through documents only (no array traversal), or NULL. */
static bool
get_path(const bson_t *doc, char *const *parts, size_t n, bson_iter_t *out)
{
   bson_iter_t it, child;

   if (!bson_iter_init_find(&it, doc, parts[0])) {
      return false;
   }
   for (size_t i = 1; i < n; i++) {
      if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &child) ||
          !bson_iter_find(&child, parts[i])) {
         return false;
      }
      it = child;
   }
   *out = it;
   return true;
}

static bool
run_project(const stage_t *s, flora_docs_t *in, const run_ctx_t *base, flora_docs_t *out,
            flora_error_t *error)
{
   for (size_t i = 0; i < in->len; i++) {
      run_ctx_t rc = *base;
      bson_t *res = bson_new();
      rc.root = in->items[i];
      if (!apply_doc(s->proj, s->pmode, in->items[i], &rc, res, error)) {
         bson_destroy(res);
         return false;
      }
      flora_docs_append_owned(out, res);
   }
   return true;
}

static bool
run_replace_root(const stage_t *s, flora_docs_t *in, const run_ctx_t *rc, flora_docs_t *out,
                 flora_error_t *error)
{
   for (size_t i = 0; i < in->len; i++) {
      bson_value_t v;
      bson_t view;
      if (!flora__expr_eval(s->expr, in->items[i], rc->now_ms, rc->cache, &v, error)) {
         return false;
      }
      if (v.value_type != BSON_TYPE_DOCUMENT) {
         char *json = bson_as_relaxed_extended_json(in->items[i], NULL);
         fail(error, 40228,
              "'newRoot' expression must evaluate to an object, but resulting value was of type "
              "'%s'. Input document: %s",
              type_name(&v), json ? json : "");
         bson_free(json);
         bson_value_destroy(&v);
         return false;
      }
      flora__value_as_doc(&v, &view);
      flora_docs_append_copy(out, &view);
      bson_value_destroy(&v);
   }
   return true;
}

typedef struct acc_state {
   flora__sum_t sum;
   bson_value_t val; /* $min $max $first $last */
   bool has;
   bson_t *arr; /* $push $addToSet */
   uint32_t n;
} acc_state_t;

typedef struct group {
   bson_value_t key;
   acc_state_t *st;
} group_t;

static bool
array_contains(const bson_t *arr, const bson_value_t *v)
{
   bson_iter_t it;

   bson_iter_init(&it, arr);
   while (bson_iter_next(&it)) {
      if (flora__agg_compare(bson_iter_value(&it), v) == 0) {
         return true;
      }
   }
   return false;
}

static void
array_append(bson_t *arr, uint32_t *n, const bson_value_t *v)
{
   char buf[16];
   const char *key;
   size_t klen = bson_uint32_to_string((*n)++, &key, buf, sizeof buf);

   bson_append_value(arr, key, (int) klen, v);
}

static void
accumulate(const acc_spec_t *a, acc_state_t *st, bson_value_t *v /* taken */)
{
   static const bson_value_t one = {.value_type = BSON_TYPE_INT32, .value.v_int32 = 1};
   bool nullish = v->value_type == BSON_TYPE_EOD || v->value_type == BSON_TYPE_NULL ||
                  v->value_type == BSON_TYPE_UNDEFINED;

   switch (a->op) {
   case AC_COUNT:
      flora__sum_add(&st->sum, &one);
      break;
   case AC_SUM:
   case AC_AVG:
      if (is_number(v)) {
         flora__sum_add(&st->sum, v);
      }
      break;
   case AC_MIN:
   case AC_MAX:
      if (!nullish) {
         int c = st->has ? flora__agg_compare(v, &st->val) : 0;
         if (!st->has || (a->op == AC_MIN ? c < 0 : c > 0)) {
            bson_value_destroy(&st->val);
            st->val = *v;
            st->has = true;
            return;
         }
      }
      break;
   case AC_FIRST:
   case AC_LAST:
      if (!st->has || a->op == AC_LAST) {
         bson_value_destroy(&st->val);
         if (v->value_type == BSON_TYPE_EOD) {
            memset(&st->val, 0, sizeof st->val);
            st->val.value_type = BSON_TYPE_NULL;
         } else {
            st->val = *v;
         }
         st->has = true;
         return;
      }
      break;
   case AC_PUSH:
   case AC_ADDTOSET:
      if (!st->arr) {
         st->arr = bson_new();
      }
      if (v->value_type != BSON_TYPE_EOD && (a->op == AC_PUSH || !array_contains(st->arr, v))) {
         array_append(st->arr, &st->n, v);
      }
      break;
   }
   bson_value_destroy(v);
}

static void
acc_result(const acc_spec_t *a, acc_state_t *st, bson_t *doc)
{
   bson_value_t v;

   switch (a->op) {
   case AC_COUNT:
   case AC_SUM:
      flora__sum_value(&st->sum, &v);
      bson_append_value(doc, a->name, -1, &v);
      break;
   case AC_AVG:
      flora__sum_mean(&st->sum, &v);
      bson_append_value(doc, a->name, -1, &v);
      break;
   case AC_MIN:
   case AC_MAX:
   case AC_FIRST:
   case AC_LAST:
      if (st->has) {
         bson_append_value(doc, a->name, -1, &st->val);
      } else {
         bson_append_null(doc, a->name, -1);
      }
      break;
   case AC_PUSH:
   case AC_ADDTOSET:
      if (st->arr) {
         bson_append_array(doc, a->name, -1, st->arr);
      } else {
         bson_t empty = BSON_INITIALIZER;
         bson_append_array(doc, a->name, -1, &empty);
         bson_destroy(&empty);
      }
      break;
   }
}

static bool
run_group(const stage_t *s, flora_docs_t *in, const run_ctx_t *rc, flora_docs_t *out,
          flora_error_t *error)
{
   group_t *groups = NULL;
   size_t ngroups = 0, cap = 0;
   size_t *slots = NULL, nslots = 0;
   uint64_t *hashes = NULL;
   bool ok = false;

   for (size_t d = 0; d < in->len; d++) {
      bson_value_t key;
      uint64_t h;
      size_t g = SIZE_MAX, pos;

      if (!flora__expr_eval(s->expr, in->items[d], rc->now_ms, rc->cache, &key, error)) {
         goto cleanup;
      }
      if (key.value_type == BSON_TYPE_EOD) {
         key.value_type = BSON_TYPE_NULL;
      }
      h = flora__agg_hash(&key);
      if (ngroups * 2 >= nslots) {
         size_t ns = nslots ? nslots * 2 : 64;
         bson_free(slots);
         slots = bson_malloc(ns * sizeof *slots);
         for (size_t i = 0; i < ns; i++) {
            slots[i] = SIZE_MAX;
         }
         nslots = ns;
         for (size_t i = 0; i < ngroups; i++) {
            pos = hashes[i] & (nslots - 1);
            while (slots[pos] != SIZE_MAX) {
               pos = (pos + 1) & (nslots - 1);
            }
            slots[pos] = i;
         }
      }
      pos = h & (nslots - 1);
      while (slots[pos] != SIZE_MAX) {
         size_t i = slots[pos];
         if (hashes[i] == h && flora__agg_compare(&groups[i].key, &key) == 0) {
            g = i;
            break;
         }
         pos = (pos + 1) & (nslots - 1);
      }
      if (g == SIZE_MAX) {
         if (ngroups == cap) {
            cap = cap ? cap * 2 : 16;
            groups = bson_realloc(groups, cap * sizeof *groups);
            hashes = bson_realloc(hashes, cap * sizeof *hashes);
         }
         g = ngroups++;
         groups[g].key = key;
         groups[g].st = bson_malloc0((s->naccs ? s->naccs : 1) * sizeof *groups[g].st);
         for (size_t a = 0; a < s->naccs; a++) {
            flora__sum_init(&groups[g].st[a].sum);
         }
         hashes[g] = h;
         slots[pos] = g;
      } else {
         bson_value_destroy(&key);
      }
      for (size_t a = 0; a < s->naccs; a++) {
         bson_value_t v;
         memset(&v, 0, sizeof v);
         v.value_type = BSON_TYPE_EOD;
         if (s->accs[a].expr &&
             !flora__expr_eval(s->accs[a].expr, in->items[d], rc->now_ms, rc->cache, &v,
                               error)) {
            goto cleanup;
         }
         accumulate(&s->accs[a], &groups[g].st[a], &v);
      }
   }
   for (size_t g = 0; g < ngroups; g++) {
      bson_t *doc = bson_new();
      bson_append_value(doc, "_id", 3, &groups[g].key);
      for (size_t a = 0; a < s->naccs; a++) {
         acc_result(&s->accs[a], &groups[g].st[a], doc);
      }
      flora_docs_append_owned(out, doc);
   }
   ok = true;
cleanup:
   for (size_t g = 0; g < ngroups; g++) {
      bson_value_destroy(&groups[g].key);
      for (size_t a = 0; a < s->naccs; a++) {
         bson_value_destroy(&groups[g].st[a].val);
         bson_destroy(groups[g].st[a].arr);
      }
      bson_free(groups[g].st);
   }
   bson_free(groups);
   bson_free(hashes);
   bson_free(slots);
   return ok;
}

static void
unwind_emit(const stage_t *s, const bson_t *doc, const bson_value_t *elem, bool remove,
            int64_t index, flora_docs_t *out)
{
   bson_t *a = bson_new();

   if (elem || remove) {
      set_path(doc, s->parts, s->nparts, 0, elem, a);
   } else {
      bson_concat(a, doc);
   }
   if (s->index_field) {
      bson_value_t iv;
      bson_t *b = bson_new();
      char *parts[1];
      memset(&iv, 0, sizeof iv);
      if (index >= 0) {
         iv.value_type = BSON_TYPE_INT64;
         iv.value.v_int64 = index;
      } else {
         iv.value_type = BSON_TYPE_NULL;
      }
      parts[0] = s->index_field;
      set_path(a, parts, 1, 0, &iv, b);
      bson_destroy(a);
      a = b;
   }
   flora_docs_append_owned(out, a);
}

static bool
run_unwind(const stage_t *s, flora_docs_t *in, flora_docs_t *out)
{
   for (size_t d = 0; d < in->len; d++) {
      const bson_t *doc = in->items[d];
      bson_iter_t it;
      if (!get_path(doc, s->parts, s->nparts, &it) || BSON_ITER_HOLDS_NULL(&it) ||
          BSON_ITER_HOLDS_UNDEFINED(&it)) {
         if (s->preserve) {
            unwind_emit(s, doc, NULL, false, -1, out);
         }
         continue;
      }
      if (BSON_ITER_HOLDS_ARRAY(&it)) {
         bson_iter_t el;
         int64_t i = 0;
         bson_iter_recurse(&it, &el);
         while (bson_iter_next(&el)) {
            unwind_emit(s, doc, bson_iter_value(&el), false, i++, out);
         }
         if (i == 0 && s->preserve) {
            unwind_emit(s, doc, NULL, true, -1, out);
         }
         continue;
      }
      unwind_emit(s, doc, NULL, false, -1, out);
   }
   return true;
}

typedef struct local_values {
   bson_value_t *vals; /* owned copies */
   size_t n, cap;
} local_values_t;

static void
local_add(local_values_t *lv, const bson_value_t *v)
{
   for (size_t i = 0; i < lv->n; i++) {
      if (flora__agg_compare(&lv->vals[i], v) == 0 && lv->vals[i].value_type == v->value_type) {
         return;
      }
   }
   if (lv->n == lv->cap) {
      lv->cap = lv->cap ? lv->cap * 2 : 8;
      lv->vals = bson_realloc(lv->vals, lv->cap * sizeof *lv->vals);
   }
   bson_value_copy(v, &lv->vals[lv->n++]);
}

static bool
visit_local(void *ctx, flora__visit_kind_t kind, const bson_iter_t *value, int array_index)
{
   (void) array_index;
   if (kind == FLORA__VISIT_ELEMENT ||
       (kind == FLORA__VISIT_VALUE && !BSON_ITER_HOLDS_ARRAY(value))) {
      local_add(ctx, bson_iter_value((bson_iter_t *) value));
   }
   return true;
}

static bool
run_lookup(const stage_t *s, flora_docs_t *in, const run_ctx_t *rc, flora_docs_t *out,
           flora_error_t *error)
{
   bool ok = true;

   FLORA_ASSERT_ARG(rc->lookup);
   for (size_t d = 0; ok && d < in->len; d++) {
      local_values_t lv = {0};
      flora_docs_t found = FLORA_DOCS_INIT, joined = FLORA_DOCS_INIT;
      bson_t arr = BSON_INITIALIZER;
      bson_value_t arrv;
      uint32_t n = 0;
      bson_t *res;

      flora__path_walk(&s->local_path, in->items[d], FLORA__WALK_EXPAND_LEAF, visit_local, &lv);
      if (lv.n == 0) {
         bson_value_t null;
         memset(&null, 0, sizeof null);
         null.value_type = BSON_TYPE_NULL;
         local_add(&lv, &null);
      }
      for (size_t i = 0; ok && i < lv.n; i++) {
         flora_docs_t batch = FLORA_DOCS_INIT;
         ok = rc->lookup(rc->lookup_ctx, s->from, s->foreign_field, &lv.vals[i], &batch, error);
         for (size_t j = 0; ok && j < batch.len; j++) {
            bool dup = false;
            for (size_t k = 0; !dup && lv.n > 1 && k < found.len; k++) {
               dup = bson_equal(found.items[k], batch.items[j]);
            }
            if (!dup) {
               flora_docs_append_owned(&found, batch.items[j]);
               batch.items[j] = NULL;
            }
         }
         for (size_t j = 0; j < batch.len; j++) {
            if (batch.items[j]) {
               bson_destroy(batch.items[j]);
            }
         }
         bson_free(batch.items);
      }
      if (ok && s->sub) {
         ok = flora_pipeline_run(s->sub, 0, &found, rc->lookup, rc->lookup_ctx, rc->now_ms, &joined,
                                 error);
      } else if (ok) {
         joined = found;
         found = (flora_docs_t) FLORA_DOCS_INIT;
      }
      for (size_t j = 0; ok && j < joined.len; j++) {
         bson_value_t dv;
         memset(&dv, 0, sizeof dv);
         dv.value_type = BSON_TYPE_DOCUMENT;
         dv.value.v_doc.data = (uint8_t *) bson_get_data(joined.items[j]);
         dv.value.v_doc.data_len = joined.items[j]->len;
         array_append(&arr, &n, &dv);
      }
      if (ok) {
         memset(&arrv, 0, sizeof arrv);
         arrv.value_type = BSON_TYPE_ARRAY;
         arrv.value.v_doc.data = (uint8_t *) bson_get_data(&arr);
         arrv.value.v_doc.data_len = arr.len;
         res = bson_new();
         set_path(in->items[d], s->parts, s->nparts, 0, &arrv, res);
         flora_docs_append_owned(out, res);
      }
      bson_destroy(&arr);
      flora_docs_clear(&found);
      flora_docs_clear(&joined);
      for (size_t i = 0; i < lv.n; i++) {
         bson_value_destroy(&lv.vals[i]);
      }
      bson_free(lv.vals);
   }
   return ok;
}

static bool
run_facet(const stage_t *s, flora_docs_t *in, const run_ctx_t *rc, flora_docs_t *out,
          flora_error_t *error)
{
   bson_t *doc = bson_new();

   for (size_t f = 0; f < s->nfacets; f++) {
      flora_docs_t copy = FLORA_DOCS_INIT, res = FLORA_DOCS_INIT;
      bson_t arr;
      uint32_t n = 0;
      for (size_t i = 0; i < in->len; i++) {
         flora_docs_append_copy(&copy, in->items[i]);
      }
      if (!flora_pipeline_run(s->facets[f], 0, &copy, rc->lookup, rc->lookup_ctx, rc->now_ms, &res,
                              error)) {
         flora_docs_clear(&copy);
         bson_destroy(doc);
         return false;
      }
      bson_append_array_begin(doc, s->facet_names[f], -1, &arr);
      for (size_t i = 0; i < res.len; i++) {
         bson_value_t dv;
         memset(&dv, 0, sizeof dv);
         dv.value_type = BSON_TYPE_DOCUMENT;
         dv.value.v_doc.data = (uint8_t *) bson_get_data(res.items[i]);
         dv.value.v_doc.data_len = res.items[i]->len;
         array_append(&arr, &n, &dv);
      }
      bson_append_array_end(doc, &arr);
      flora_docs_clear(&res);
   }
   flora_docs_append_owned(out, doc);
   return true;
}

static void
move_docs(flora_docs_t *from, flora_docs_t *to)
{
   for (size_t i = 0; i < from->len; i++) {
      flora_docs_append_owned(to, from->items[i]);
   }
   bson_free(from->items);
   memset(from, 0, sizeof *from);
}

bool
flora_pipeline_run(const flora_pipeline_t *pipeline, size_t skip_stages, flora_docs_t *docs,
                   flora_lookup_fn lookup, void *lookup_ctx, int64_t now_ms, flora_docs_t *out,
                   flora_error_t *error)
{
   flora_docs_t cur = FLORA_DOCS_INIT, next = FLORA_DOCS_INIT;
   run_ctx_t rc = {NULL, now_ms, lookup, lookup_ctx, NULL};
   bool ok = true;

   FLORA_ASSERT_ARG(pipeline);
   FLORA_ASSERT_ARG(docs);
   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(skip_stages <= pipeline->n);
   cur = *docs;
   memset(docs, 0, sizeof *docs);
   rc.cache = flora__expr_cache_new();
   for (size_t i = skip_stages; ok && i < pipeline->n; i++) {
      const stage_t *s = &pipeline->stages[i];
      switch (s->kind) {
      case ST_MATCH:
         for (size_t d = 0; ok && d < cur.len; d++) {
            bool keep = flora_matcher_match(s->matcher, cur.items[d], NULL);
            if (keep && s->expr) {
               bson_value_t v;
               ok = flora__expr_eval(s->expr, cur.items[d], now_ms, rc.cache, &v, error);
               keep = ok && flora__agg_truthy(&v);
               bson_value_destroy(&v);
            }
            if (keep) {
               flora_docs_append_owned(&next, cur.items[d]);
               cur.items[d] = NULL;
            }
         }
         break;
      case ST_SORT:
         flora_sort_docs(s->sort, &cur);
         move_docs(&cur, &next);
         break;
      case ST_SKIP:
      case ST_LIMIT:
         for (size_t d = 0; d < cur.len; d++) {
            bool keep = s->kind == ST_SKIP ? (int64_t) d >= s->n : (int64_t) d < s->n;
            if (keep) {
               flora_docs_append_owned(&next, cur.items[d]);
               cur.items[d] = NULL;
            }
         }
         break;
      case ST_PROJECT:
         ok = run_project(s, &cur, &rc, &next, error);
         break;
      case ST_REPLACEROOT:
         ok = run_replace_root(s, &cur, &rc, &next, error);
         break;
      case ST_GROUP:
         ok = run_group(s, &cur, &rc, &next, error);
         break;
      case ST_UNWIND:
         ok = run_unwind(s, &cur, &next);
         break;
      case ST_LOOKUP:
         ok = run_lookup(s, &cur, &rc, &next, error);
         break;
      case ST_FACET:
         ok = run_facet(s, &cur, &rc, &next, error);
         break;
      case ST_COUNT:
         if (cur.len > 0) {
            bson_t *doc = bson_new();
            if (cur.len <= INT32_MAX) {
               bson_append_int32(doc, s->count_field, -1, (int32_t) cur.len);
            } else {
               bson_append_int64(doc, s->count_field, -1, (int64_t) cur.len);
            }
            flora_docs_append_owned(&next, doc);
         }
         break;
      }
      /* documents not moved to next (filtered out, or transformed) are freed */
      for (size_t d = 0; d < cur.len; d++) {
         if (cur.items[d]) {
            bson_destroy(cur.items[d]);
         }
      }
      bson_free(cur.items);
      cur = next;
      memset(&next, 0, sizeof next);
   }
   if (ok) {
      move_docs(&cur, out);
   }
   flora_docs_clear(&cur);
   flora_docs_clear(&next);
   flora__expr_cache_destroy(rc.cache);
   return ok;
}
