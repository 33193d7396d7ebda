/* Sort specs: MongoDB's sort order over documents. See include/flora/query.h.
 *
 * Source: MongoDB manual, "cursor.sort()" (sort keys of array fields: the smallest element
 * ascending, the largest descending; an empty array sorts below null; missing equals null)
 * and "Comparison/Sort Order"; {$meta: "textScore"} sorts by relevance, highest first.
 * The text score is read from FLORA__TEXT_SCORE_FIELD (query_private.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query/query_private.h"

typedef struct sort_key {
   flora__path_t path;
   int dir;         /* 1 or -1 */
   bool text_score; /* {$meta: "textScore"} */
} sort_key_t;

struct flora_sort {
   sort_key_t *keys;
   size_t n;
};

/* What one key of one document sorts by. */
typedef enum { KEY_MINKEY_BELOW, KEY_EMPTY_ARRAY, KEY_NULL, KEY_VALUE, KEY_SCORE } key_kind_t;

typedef struct key_value {
   key_kind_t kind;
   bson_value_t value; /* KEY_VALUE: borrowed from the document */
   double score;
} key_value_t;

static bool
parse_direction(const bson_iter_t *it, sort_key_t *key, flora_error_t *error)
{
   const bson_value_t *v = bson_iter_value((bson_iter_t *) it);
   int64_t d;

   if (v->value_type == BSON_TYPE_DOCUMENT) {
      bson_t meta;
      bson_iter_t m;

      if (flora__value_as_doc(v, &meta) && bson_count_keys(&meta) == 1 &&
          bson_iter_init_find(&m, &meta, "$meta") && BSON_ITER_HOLDS_UTF8(&m) &&
          strcmp(bson_iter_utf8(&m, NULL), "textScore") == 0) {
         key->text_score = true;
         key->dir = -1;
         return true;
      }
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "invalid $sort key for field '%s': only {$meta: \"textScore\"} is "
                      "supported as a document",
                      bson_iter_key(it));
      return false;
   }
   if (flora__value_is_number(v) && flora__number_as_int64(v, &d) && (d == 1 || d == -1)) {
      key->dir = (int) d;
      return true;
   }
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                   "$sort key ordering must be 1 (for ascending) or -1 (for descending): "
                   "field '%s'",
                   bson_iter_key(it));
   return false;
}

flora_sort_t *
flora_sort_new(const bson_t *spec, flora_error_t *error)
{
   flora_sort_t *s = NULL;
   bson_iter_t it;

   FLORA_ASSERT_ARG(spec);
   s = bson_malloc0(sizeof *s);
   s->keys = bson_malloc0((bson_count_keys(spec) + 1) * sizeof *s->keys);
   if (!bson_iter_init(&it, spec)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "corrupt sort spec");
      goto fail;
   }
   while (bson_iter_next(&it)) {
      sort_key_t *key = &s->keys[s->n];
      const char *name = bson_iter_key(&it);

      if (name[0] == '$') {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "FieldPath field names may not start with '$': %s", name);
         goto fail;
      }
      if (!parse_direction(&it, key, error)) {
         goto fail;
      }
      if (!flora__path_init(&key->path, name, error)) {
         goto fail;
      }
      s->n++;
   }
   return s;
fail:
   flora_sort_destroy(s);
   return NULL;
}

void
flora_sort_destroy(flora_sort_t *sort)
{
   if (!sort) {
      return;
   }
   for (size_t i = 0; i < sort->n; i++) {
      flora__path_clear(&sort->keys[i].path);
   }
   bson_free(sort->keys);
   bson_free(sort);
}

static int
key_rank(const key_value_t *k)
{
   if (k->kind == KEY_VALUE) {
      /* MongoDB's sort key of an empty array is undefined: the two sort together. */
      return k->value.value_type == BSON_TYPE_MINKEY      ? 0
             : k->value.value_type == BSON_TYPE_UNDEFINED ? 1
                                                          : 3;
   }
   return k->kind == KEY_EMPTY_ARRAY ? 1 : 2;
}

static int
key_compare(const key_value_t *a, const key_value_t *b)
{
   int ra, rb;

   if (a->kind == KEY_SCORE) {
      return (a->score > b->score) - (a->score < b->score);
   }
   /* MinKey < [] and undefined < null/missing < everything else. */
   ra = key_rank(a);
   rb = key_rank(b);
   if (ra == 3 && rb == 3) {
      return flora_value_compare(&a->value, &b->value);
   }
   if (ra == 3 && flora_value_type_rank(a->value.value_type) ==
                     flora_value_type_rank(BSON_TYPE_NULL)) {
      ra = 2;
   }
   if (rb == 3 && flora_value_type_rank(b->value.value_type) ==
                     flora_value_type_rank(BSON_TYPE_NULL)) {
      rb = 2;
   }
   return (ra > rb) - (ra < rb);
}

typedef struct {
   int dir;
   key_value_t best;
   bool have;
} extract_ctx_t;

static void
offer(extract_ctx_t *c, const key_value_t *k)
{
   if (!c->have || key_compare(k, &c->best) * c->dir < 0) {
      c->best = *k;
      c->have = true;
   }
}

static bool
extract_visit(void *ctx, flora__visit_kind_t kind, const bson_iter_t *value, int array_index)
{
   extract_ctx_t *c = ctx;
   key_value_t k = {KEY_NULL, {0}, 0.0};

   (void) array_index;
   if (kind == FLORA__VISIT_MISSING) {
      offer(c, &k);
      return true;
   }
   if (kind == FLORA__VISIT_VALUE && BSON_ITER_HOLDS_ARRAY(value)) {
      uint32_t len = 0;
      const uint8_t *data = NULL;

      bson_iter_array(value, &len, &data);
      if (len <= 5) {
         k.kind = KEY_EMPTY_ARRAY;
         offer(c, &k);
      }
      /* a non-empty array's elements were offered one by one */
      return true;
   }
   k.kind = KEY_VALUE;
   k.value = *bson_iter_value((bson_iter_t *) value);
   offer(c, &k);
   return true;
}

static void
extract(const sort_key_t *key, const bson_t *doc, key_value_t *out)
{
   extract_ctx_t c = {key->dir, {KEY_NULL, {0}, 0.0}, false};

   if (key->text_score) {
      out->kind = KEY_SCORE;
      out->score = flora__text_score(doc);
      return;
   }
   flora__path_walk(&key->path, doc, FLORA__WALK_EXPAND_LEAF, extract_visit, &c);
   *out = c.best;
}

int
flora_sort_compare(const flora_sort_t *sort, const bson_t *a, const bson_t *b)
{
   FLORA_ASSERT_ARG(sort);
   FLORA_ASSERT_ARG(a);
   FLORA_ASSERT_ARG(b);
   for (size_t i = 0; i < sort->n; i++) {
      key_value_t ka, kb;
      int c;

      extract(&sort->keys[i], a, &ka);
      extract(&sort->keys[i], b, &kb);
      c = key_compare(&ka, &kb) * sort->keys[i].dir;
      if (c != 0) {
         return c;
      }
   }
   return 0;
}

typedef struct {
   const flora_sort_t *sort;
   const key_value_t *keys; /* n docs x sort->n keys */
} sort_run_t;

static int
compare_rows(const void *pa, const void *pb, void *arg)
{
   const sort_run_t *run = arg;
   size_t ia = *(const size_t *) pa;
   size_t ib = *(const size_t *) pb;
   size_t nk = run->sort->n;

   for (size_t i = 0; i < nk; i++) {
      int c = key_compare(&run->keys[ia * nk + i], &run->keys[ib * nk + i]) *
              run->sort->keys[i].dir;

      if (c != 0) {
         return c;
      }
   }
   return (ia > ib) - (ia < ib); /* stable */
}

void
flora_sort_docs(const flora_sort_t *sort, flora_docs_t *docs)
{
   key_value_t *keys = NULL;
   size_t *order = NULL;
   bson_t **sorted = NULL;
   sort_run_t run;

   FLORA_ASSERT_ARG(sort);
   FLORA_ASSERT_ARG(docs);
   if (docs->len < 2 || sort->n == 0) {
      return;
   }
   keys = bson_malloc(docs->len * sort->n * sizeof *keys);
   order = bson_malloc(docs->len * sizeof *order);
   sorted = bson_malloc(docs->len * sizeof *sorted);
   for (size_t d = 0; d < docs->len; d++) {
      order[d] = d;
      for (size_t k = 0; k < sort->n; k++) {
         extract(&sort->keys[k], docs->items[d], &keys[d * sort->n + k]);
      }
   }
   run.sort = sort;
   run.keys = keys;
   qsort_r(order, docs->len, sizeof *order, compare_rows, &run);
   for (size_t d = 0; d < docs->len; d++) {
      sorted[d] = docs->items[order[d]];
   }
   memcpy(docs->items, sorted, docs->len * sizeof *sorted);
   bson_free(sorted);
   bson_free(order);
   bson_free(keys);
}
