/* Query planning and execution of the embedded engine over its index tables.
 *
 * For a filter the planner collects, per top-level field (and inside top-level $and),
 * equality / $in points and $gt/$gte/$lt/$lte ranges (type-bracketed: {price: {$gt: 5}}
 * scans only the numbers above 5), then picks the index whose leading fields have the
 * most equality predicates, then a range, then serves the sort. The chosen index table is
 * searched by its primary key (key >= lo AND key < hi) joined to the collection by rid.
 * The matcher ALWAYS re-checks every fetched document: an index only narrows the
 * candidates, so correctness never depends on the planner. explain reports the plan in
 * MongoDB's shape plus SQLite's EXPLAIN QUERY PLAN of the statement used. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/query_private.h"
#include "store/sqlite_private.h"

#define MAX_INTERVALS 512

void
flora__sqlite_rows_free(sq_rows_t *rows)
{
   for (size_t i = 0; i < rows->len; i++) {
      bson_destroy(rows->items[i].doc);
   }
   bson_free(rows->items);
   memset(rows, 0, sizeof *rows);
}

static void
rows_push(sq_rows_t *rows, int64_t rid, bson_t *doc, double score)
{
   if (rows->len == rows->cap) {
      rows->cap = rows->cap ? rows->cap * 2 : 32;
      rows->items = bson_realloc(rows->items, sizeof *rows->items * rows->cap);
   }
   rows->items[rows->len].rid = rid;
   rows->items[rows->len].doc = doc;
   rows->items[rows->len].score = score;
   rows->len++;
}

/* ---- predicates ------------------------------------------------------------------------ */

typedef struct pred {
   const char *field;
   /* equality points (borrowed values), or a range */
   bson_value_t *points;
   size_t n_points;
   bool is_range;
   bool has_lo, lo_incl, has_hi, hi_incl;
   bson_value_t lo, hi;
   bool has_null; /* a point is null: a sparse index cannot serve it */
} pred_t;

typedef struct preds {
   pred_t *items;
   size_t len, cap;
} preds_t;

static void
preds_free(preds_t *ps)
{
   for (size_t i = 0; i < ps->len; i++) {
      bson_free(ps->items[i].points);
   }
   bson_free(ps->items);
}

static pred_t *
pred_for(preds_t *ps, const char *field)
{
   for (size_t i = 0; i < ps->len; i++) {
      if (strcmp(ps->items[i].field, field) == 0) {
         return &ps->items[i];
      }
   }
   if (ps->len == ps->cap) {
      ps->cap = ps->cap ? ps->cap * 2 : 8;
      ps->items = bson_realloc(ps->items, sizeof *ps->items * ps->cap);
   }
   memset(&ps->items[ps->len], 0, sizeof ps->items[0]);
   ps->items[ps->len].field = field;
   return &ps->items[ps->len++];
}

/* Values an index key can be looked up by (arrays and regexes match differently). */
static bool
indexable_point(const bson_value_t *v)
{
   return v->value_type != BSON_TYPE_ARRAY && v->value_type != BSON_TYPE_REGEX;
}

static bool
rangeable(const bson_value_t *v)
{
   return indexable_point(v) && v->value_type != BSON_TYPE_MINKEY &&
          v->value_type != BSON_TYPE_MAXKEY && v->value_type != BSON_TYPE_NULL &&
          v->value_type != BSON_TYPE_UNDEFINED && v->value_type != BSON_TYPE_DOCUMENT &&
          !(v->value_type == BSON_TYPE_DOUBLE && isnan(v->value.v_double));
}

static bool
is_operator_doc(const bson_value_t *v)
{
   bson_t d;
   bson_iter_t it;
   if (v->value_type != BSON_TYPE_DOCUMENT ||
       !bson_init_static(&d, v->value.v_doc.data, v->value.v_doc.data_len) ||
       !bson_iter_init(&it, &d) || !bson_iter_next(&it)) {
      return false;
   }
   return bson_iter_key(&it)[0] == '$';
}

static void
set_points(pred_t *p, const bson_value_t *vals, size_t n)
{
   if (p->n_points || p->is_range) {
      return; /* the first constraint wins: any one of them gives a superset */
   }
   p->points = bson_malloc(sizeof *p->points * (n ? n : 1));
   for (size_t i = 0; i < n; i++) {
      p->points[i] = vals[i];
      if (vals[i].value_type == BSON_TYPE_NULL || vals[i].value_type == BSON_TYPE_UNDEFINED) {
         p->has_null = true;
      }
   }
   p->n_points = n;
}

static void
field_preds(preds_t *ps, const char *field, const bson_value_t *v)
{
   pred_t *p;
   bson_t d;
   bson_iter_t it;

   if (field[0] == '$') {
      return;
   }
   if (!is_operator_doc(v)) {
      if (indexable_point(v)) {
         set_points(pred_for(ps, field), v, 1);
      }
      return;
   }
   if (!bson_init_static(&d, v->value.v_doc.data, v->value.v_doc.data_len) ||
       !bson_iter_init(&it, &d)) {
      return;
   }
   while (bson_iter_next(&it)) {
      const char *op = bson_iter_key(&it);
      const bson_value_t *a = bson_iter_value(&it);
      if (strcmp(op, "$eq") == 0 && indexable_point(a)) {
         set_points(pred_for(ps, field), a, 1);
      } else if (strcmp(op, "$in") == 0 && a->value_type == BSON_TYPE_ARRAY) {
         bson_t arr;
         bson_iter_t ai;
         bson_value_t *vals = NULL;
         size_t n = 0;
         bool ok = true;
         if (bson_init_static(&arr, a->value.v_doc.data, a->value.v_doc.data_len) &&
             bson_iter_init(&ai, &arr)) {
            while (bson_iter_next(&ai)) {
               if (!indexable_point(bson_iter_value(&ai))) {
                  ok = false;
                  break;
               }
               vals = bson_realloc(vals, sizeof *vals * (n + 1));
               vals[n++] = *bson_iter_value(&ai);
            }
         }
         if (ok && n > 0 && n <= MAX_INTERVALS) {
            set_points(pred_for(ps, field), vals, n);
         }
         bson_free(vals);
      } else if ((strcmp(op, "$gte") == 0 || strcmp(op, "$lte") == 0) &&
                 (a->value_type == BSON_TYPE_NULL)) {
         set_points(pred_for(ps, field), a, 1); /* $gte/$lte null: exactly null/missing */
      } else if ((strcmp(op, "$gt") == 0 || strcmp(op, "$gte") == 0) && rangeable(a)) {
         p = pred_for(ps, field);
         if (!p->n_points && !p->has_lo &&
             (!p->has_hi || flora__sqlite_key_type_byte(p->hi.value_type) ==
                               flora__sqlite_key_type_byte(a->value_type))) {
            p->is_range = true;
            p->has_lo = true;
            p->lo_incl = op[3] == 'e';
            p->lo = *a;
         }
      } else if ((strcmp(op, "$lt") == 0 || strcmp(op, "$lte") == 0) && rangeable(a)) {
         p = pred_for(ps, field);
         if (!p->n_points && !p->has_hi &&
             (!p->has_lo || flora__sqlite_key_type_byte(p->lo.value_type) ==
                               flora__sqlite_key_type_byte(a->value_type))) {
            p->is_range = true;
            p->has_hi = true;
            p->hi_incl = op[3] == 'e';
            p->hi = *a;
         }
      }
   }
}

static void
collect_preds(preds_t *ps, const bson_t *filter)
{
   bson_iter_t it;
   if (!bson_iter_init(&it, filter)) {
      return;
   }
   while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);
      if (strcmp(k, "$and") == 0 && BSON_ITER_HOLDS_ARRAY(&it)) {
         bson_iter_t ai;
         if (bson_iter_recurse(&it, &ai)) {
            while (bson_iter_next(&ai)) {
               if (BSON_ITER_HOLDS_DOCUMENT(&ai)) {
                  const uint8_t *data;
                  uint32_t len;
                  bson_t sub;
                  bson_iter_document(&ai, &len, &data);
                  if (bson_init_static(&sub, data, len)) {
                     collect_preds(ps, &sub);
                  }
               }
            }
         }
      } else {
         field_preds(ps, k, bson_iter_value(&it));
      }
   }
}

static const pred_t *
find_pred(const preds_t *ps, const char *field)
{
   for (size_t i = 0; i < ps->len; i++) {
      if (strcmp(ps->items[i].field, field) == 0 && (ps->items[i].n_points || ps->items[i].is_range)) {
         return &ps->items[i];
      }
   }
   return NULL;
}

/* ---- plans -------------------------------------------------------------------------------- */

typedef struct interval {
   sq_buf_t lo; /* inclusive; empty: unbounded */
   sq_buf_t hi; /* exclusive */
   bool has_hi;
} interval_t;

typedef struct plan {
   sq_index_t *ix;     /* NULL: collection scan */
   size_t n_eq;        /* leading fields with equality points */
   size_t n_single;    /* leading fields with exactly one point */
   bool range;         /* a range on field n_eq */
   bool sort_served;
   bool desc;          /* scan ORDER BY key DESC */
   interval_t *iv;
   size_t n_iv;
   int score;
} plan_t;

static void
plan_clear(plan_t *p)
{
   for (size_t i = 0; i < p->n_iv; i++) {
      flora__sqlite_buf_free(&p->iv[i].lo);
      flora__sqlite_buf_free(&p->iv[i].hi);
   }
   bson_free(p->iv);
   memset(p, 0, sizeof *p);
}

/* Whether the filter restates the partial index's expression (so every match is indexed). */
static bool
partial_covered(const sq_index_t *ix, const bson_t *filter)
{
   bson_iter_t pi, fi;
   if (!ix->partial_spec) {
      return true;
   }
   if (!bson_iter_init(&pi, ix->partial_spec)) {
      return false;
   }
   while (bson_iter_next(&pi)) {
      const bson_value_t *pv = bson_iter_value(&pi);
      const bson_value_t *fv;
      if (!bson_iter_init_find(&fi, filter, bson_iter_key(&pi))) {
         return false;
      }
      fv = bson_iter_value(&fi);
      if (flora_value_compare(pv, fv) != 0) {
         return false;
      }
   }
   return true;
}

/* Sort spec fields (with directions) matched against the index after its equality prefix. */
static bool
sort_served_by(const sq_index_t *ix, size_t n_single, bool range_used, const bson_t *sort,
               bool *desc)
{
   for (size_t p = 0; p <= n_single && p < ix->n_fields; p++) {
      bson_iter_t it;
      size_t i = p;
      int rel = 0;
      bool ok = bson_iter_init(&it, sort);
      while (ok && bson_iter_next(&it)) {
         int d;
         if (!BSON_ITER_HOLDS_NUMBER(&it) || i >= ix->n_fields ||
             strcmp(bson_iter_key(&it), ix->fields[i]) != 0) {
            ok = false;
            break;
         }
         d = bson_iter_as_double(&it) < 0 ? -1 : 1;
         d *= ix->dirs[i];
         if (rel == 0) {
            rel = d;
         } else if (rel != d) {
            ok = false;
         }
         i++;
      }
      if (ok && rel != 0) {
         /* a multikey index with a range orders documents by the element in range, not by
          * the array's smallest (or largest) element as MongoDB's sort does */
         if (ix->multikey && range_used) {
            return false;
         }
         *desc = rel < 0;
         return true;
      }
   }
   return false;
}

static void
evaluate(sq_index_t *ix, const preds_t *ps, const sq_query_t *q, plan_t *out)
{
   memset(out, 0, sizeof *out);
   out->ix = ix;
   size_t combos = 1;
   bool counting_single = true;
   for (size_t f = 0; f < ix->n_fields; f++) {
      const pred_t *p = find_pred(ps, ix->fields[f]);
      if (!p) {
         break;
      }
      if (p->n_points) {
         if (ix->sparse && p->has_null) {
            break;
         }
         if (combos * p->n_points > MAX_INTERVALS) {
            break;
         }
         combos *= p->n_points;
         out->n_eq++;
         if (counting_single && p->n_points == 1) {
            out->n_single++;
         } else {
            counting_single = false;
         }
         continue;
      }
      out->range = true;
      break;
   }
   out->score = (int) out->n_eq * 4 + (out->range ? 2 : 0);
   if (out->n_eq == ix->n_fields && ix->unique) {
      out->score += 8;
   }
   if (ix->sparse && out->score == 0) {
      out->score = -1; /* documents without the field are not in a sparse index */
      return;
   }
   if (q->sort && sort_served_by(ix, out->n_single, out->range, q->sort, &out->desc)) {
      out->sort_served = true;
      out->score += 1;
   }
}

/* Component bounds of a range in the index's byte space: lo (inclusive unless lo_after)
 * and hi (exclusive unless hi_after, then successor). */
static void
range_bounds(const pred_t *pin, int dir, bool one_sided, sq_buf_t *lo, bool *lo_after, sq_buf_t *hi,
             bool *hi_after)
{
   pred_t one = *pin;
   const pred_t *p = &one;
   if (one_sided && one.has_lo && one.has_hi) {
      /* multikey: {a: {$gt: 1, $lt: 2}} holds when one element is above 1 and another
       * below 2, so the two bounds cannot be intersected (MongoDB does the same) */
      one.has_hi = false;
   }
   uint8_t r = flora__sqlite_key_type_byte(p->has_lo ? p->lo.value_type : p->hi.value_type);
   bool desc = dir < 0;
   const bson_value_t *first = desc ? (p->has_hi ? &p->hi : NULL) : (p->has_lo ? &p->lo : NULL);
   const bson_value_t *second = desc ? (p->has_lo ? &p->lo : NULL) : (p->has_hi ? &p->hi : NULL);
   bool first_incl = desc ? p->hi_incl : p->lo_incl;
   bool second_incl = desc ? p->lo_incl : p->hi_incl;
   uint8_t rb = desc ? (uint8_t) ~r : r;

   if (first) {
      flora__sqlite_key_append(lo, first, desc);
      *lo_after = !first_incl;
   } else {
      flora__sqlite_buf_byte(lo, rb);
      *lo_after = false;
   }
   if (second) {
      flora__sqlite_key_append(hi, second, desc);
      *hi_after = second_incl;
   } else {
      flora__sqlite_buf_byte(hi, rb);
      *hi_after = true;
   }
}

static int
buf_cmp(const sq_buf_t *x, const sq_buf_t *y)
{
   size_t n = x->len < y->len ? x->len : y->len;
   int r = n ? memcmp(x->data, y->data, n) : 0;
   if (r) {
      return r;
   }
   return x->len < y->len ? -1 : x->len > y->len;
}

static int
iv_cmp(const void *a, const void *b)
{
   return buf_cmp(&((const interval_t *) a)->lo, &((const interval_t *) b)->lo);
}

static void
build_intervals(plan_t *pl, const preds_t *ps)
{
   sq_index_t *ix = pl->ix;
   size_t combos = 1;
   const pred_t **eq = bson_malloc0(sizeof *eq * (pl->n_eq + 1));

   for (size_t f = 0; f < pl->n_eq; f++) {
      eq[f] = find_pred(ps, ix->fields[f]);
      combos *= eq[f]->n_points;
   }
   pl->iv = bson_malloc0(sizeof *pl->iv * combos);
   for (size_t k = 0; k < combos; k++) {
      sq_buf_t prefix = SQ_BUF_INIT;
      interval_t *iv = &pl->iv[pl->n_iv];
      size_t rest = k;
      for (size_t f = 0; f < pl->n_eq; f++) {
         size_t idx = rest % eq[f]->n_points;
         rest /= eq[f]->n_points;
         flora__sqlite_key_append(&prefix, &eq[f]->points[idx], ix->dirs[f] < 0);
      }
      if (pl->range) {
         const pred_t *p = find_pred(ps, ix->fields[pl->n_eq]);
         sq_buf_t lo = SQ_BUF_INIT, hi = SQ_BUF_INIT;
         bool lo_after, hi_after;
         range_bounds(p, ix->dirs[pl->n_eq], ix->multikey, &lo, &lo_after, &hi, &hi_after);
         flora__sqlite_buf_append(&iv->lo, prefix.data, prefix.len);
         flora__sqlite_buf_append(&iv->lo, lo.data, lo.len);
         if (lo_after) {
            sq_buf_t s = SQ_BUF_INIT;
            flora__sqlite_key_successor(iv->lo.data, iv->lo.len, &s);
            flora__sqlite_buf_free(&iv->lo);
            iv->lo = s;
         }
         flora__sqlite_buf_append(&iv->hi, prefix.data, prefix.len);
         flora__sqlite_buf_append(&iv->hi, hi.data, hi.len);
         iv->has_hi = true;
         if (hi_after) {
            sq_buf_t s = SQ_BUF_INIT;
            iv->has_hi = flora__sqlite_key_successor(iv->hi.data, iv->hi.len, &s);
            flora__sqlite_buf_free(&iv->hi);
            iv->hi = s;
         }
         flora__sqlite_buf_free(&lo);
         flora__sqlite_buf_free(&hi);
      } else if (pl->n_eq > 0) {
         flora__sqlite_buf_append(&iv->lo, prefix.data, prefix.len);
         iv->has_hi = flora__sqlite_key_successor(prefix.data, prefix.len, &iv->hi);
      }
      flora__sqlite_buf_free(&prefix);
      /* skip duplicate points ($in: [1, 1.0]) and empty ranges */
      if (iv->has_hi && buf_cmp(&iv->lo, &iv->hi) >= 0) {
         flora__sqlite_buf_free(&iv->lo);
         flora__sqlite_buf_free(&iv->hi);
         memset(iv, 0, sizeof *iv);
         continue;
      }
      pl->n_iv++;
   }
   qsort(pl->iv, pl->n_iv, sizeof *pl->iv, iv_cmp);
   {
      size_t out = 0;
      for (size_t i = 0; i < pl->n_iv; i++) {
         if (out > 0 && buf_cmp(&pl->iv[out - 1].lo, &pl->iv[i].lo) == 0) {
            flora__sqlite_buf_free(&pl->iv[i].lo);
            flora__sqlite_buf_free(&pl->iv[i].hi);
            continue;
         }
         pl->iv[out++] = pl->iv[i];
      }
      pl->n_iv = out;
   }
   bson_free(eq);
}

static bool
hint_matches(const sq_index_t *ix, const sq_query_t *q)
{
   bson_iter_t it;
   bson_t key;
   const uint8_t *data;
   uint32_t len;
   if (q->hint_name) {
      return strcmp(q->hint_name, ix->name) == 0;
   }
   if (!bson_iter_init_find(&it, ix->spec, "key") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
      return false;
   }
   bson_iter_document(&it, &len, &data);
   return bson_init_static(&key, data, len) && bson_equal(&key, q->hint);
}

static bool
is_natural_hint(const sq_query_t *q)
{
   return (q->hint && bson_has_field(q->hint, "$natural")) ||
          (q->hint_name && strcmp(q->hint_name, "$natural") == 0);
}

static bool
choose_plan(sq_coll_t *coll, const sq_query_t *q, plan_t *best, flora_error_t *error)
{
   preds_t ps = {0};
   bool hinted = (q->hint || q->hint_name) && !is_natural_hint(q);
   bool found_hint = false;

   memset(best, 0, sizeof *best);
   if (is_natural_hint(q)) {
      return true;
   }
   collect_preds(&ps, q->filter);
   if (hinted && ((q->hint_name && strcmp(q->hint_name, "_id_") == 0) ||
                  (q->hint && bson_count_keys(q->hint) == 1 && bson_has_field(q->hint, "_id")))) {
      hinted = false; /* the _id index is the collection table's own: a scan in _id order is
                         not kept, the collection scan serves it */
   }
   for (size_t i = 0; i < coll->n_indexes; i++) {
      sq_index_t *ix = coll->indexes[i];
      plan_t cand;
      if (ix->text) {
         continue;
      }
      if (hinted) {
         if (!hint_matches(ix, q)) {
            continue;
         }
         found_hint = true;
         evaluate(ix, &ps, q, &cand);
         if (cand.score < 0) {
            cand.score = 0;
         }
         *best = cand;
         best->score = 1000;
         break;
      }
      if (!partial_covered(ix, q->filter)) {
         continue;
      }
      evaluate(ix, &ps, q, &cand);
      if (cand.score > 0 && cand.score > best->score) {
         *best = cand;
      }
   }
   if (hinted && !found_hint) {
      preds_free(&ps);
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "error processing query: planner returned error :: caused by :: hint "
                      "provided does not correspond to an existing index");
      return false;
   }
   if (best->ix) {
      build_intervals(best, &ps);
   }
   preds_free(&ps);
   return true;
}

/* ---- execution ------------------------------------------------------------------------------ */

typedef struct rid_set {
   int64_t *slots; /* 0 = empty (rids start at 1) */
   size_t cap, len;
} rid_set_t;

static bool
rid_set_add(rid_set_t *s, int64_t rid)
{
   size_t i;
   if ((s->len + 1) * 2 > s->cap) {
      rid_set_t n = {bson_malloc0(sizeof(int64_t) * (s->cap ? s->cap * 2 : 64)),
                     s->cap ? s->cap * 2 : 64, 0};
      for (size_t j = 0; j < s->cap; j++) {
         if (s->slots[j]) {
            rid_set_add(&n, s->slots[j]);
         }
      }
      bson_free(s->slots);
      *s = n;
   }
   i = (size_t) ((uint64_t) rid * 0x9E3779B97F4A7C15ULL) & (s->cap - 1);
   while (s->slots[i]) {
      if (s->slots[i] == rid) {
         return false;
      }
      i = (i + 1) & (s->cap - 1);
   }
   s->slots[i] = rid;
   s->len++;
   return true;
}

typedef struct exec {
   const flora_matcher_t *matcher;
   sq_rows_t *rows;
   size_t stop_after; /* 0: all */
   rid_set_t seen;
   bool dedupe;
   bool want_scores;
} exec_t;

/* Checks one candidate and keeps it when it matches; false when enough were found. */
static bool
consider(exec_t *ex, int64_t rid, const void *blob, int len, double score, bool has_score)
{
   bson_t doc;
   if (ex->dedupe && !rid_set_add(&ex->seen, rid)) {
      return true;
   }
   if (!bson_init_static(&doc, blob, (size_t) len)) {
      return true;
   }
   if (flora_matcher_match(ex->matcher, &doc, NULL)) {
      bson_t *copy;
      if (has_score && ex->want_scores) {
         copy = bson_copy(&doc);
         BSON_APPEND_DOUBLE(copy, FLORA__TEXT_SCORE_FIELD, score);
      } else {
         copy = bson_new_from_data(blob, (size_t) len);
      }
      rows_push(ex->rows, rid, copy, score);
      if (ex->stop_after && ex->rows->len >= ex->stop_after) {
         return false;
      }
   }
   return true;
}

static bool
step_rows(sq_conn_t *conn, sqlite3_stmt *st, exec_t *ex, flora_error_t *error)
{
   int rc;
   while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (!consider(ex, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                    sqlite3_column_bytes(st, 1), 0, false)) {
         sqlite3_reset(st);
         sqlite3_clear_bindings(st);
         return true;
      }
   }
   sqlite3_reset(st);
   sqlite3_clear_bindings(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(conn, rc, "query", error);
      return false;
   }
   return true;
}

static void
index_sql(const sq_coll_t *coll, const plan_t *pl, const interval_t *iv, char *sql, size_t len)
{
   snprintf(sql, len,
            "SELECT x.rid, c.doc FROM \"%s\" AS x CROSS JOIN \"%s\" AS c ON c.rid = x.rid%s%s%s "
            "ORDER BY x.key%s",
            pl->ix->table, coll->table, (iv && (iv->lo.len || iv->has_hi)) ? " WHERE" : "",
            (iv && iv->lo.len) ? " x.key >= ?1" : "",
            (iv && iv->has_hi) ? (iv->lo.len ? " AND x.key < ?2" : " x.key < ?2") : "",
            pl->desc ? " DESC" : "");
}

static bool
run_plan(sq_conn_t *conn, sq_coll_t *coll, const plan_t *pl, exec_t *ex, flora_error_t *error)
{
   char sql[1024];
   sqlite3_stmt *st;

   if (!pl->ix) {
      st = flora__sqlite_stmtf(conn, error, "SELECT rid, doc FROM \"%s\" ORDER BY rid", coll->table);
      return st && step_rows(conn, st, ex, error);
   }
   if (pl->n_iv == 0 && (pl->n_eq > 0 || pl->range)) {
      return true; /* every interval was empty */
   }
   if (pl->n_iv == 0) {
      index_sql(coll, pl, NULL, sql, sizeof sql);
      st = flora__sqlite_stmt(conn, sql, error);
      return st && step_rows(conn, st, ex, error);
   }
   for (size_t k = 0; k < pl->n_iv; k++) {
      size_t i = pl->desc ? pl->n_iv - 1 - k : k;
      const interval_t *iv = &pl->iv[i];
      size_t before = ex->rows->len;
      index_sql(coll, pl, iv, sql, sizeof sql);
      st = flora__sqlite_stmt(conn, sql, error);
      if (!st) {
         return false;
      }
      if (iv->lo.len) {
         sqlite3_bind_blob(st, 1, iv->lo.data, (int) iv->lo.len, SQLITE_STATIC);
      }
      if (iv->has_hi) {
         sqlite3_bind_blob(st, 2, iv->hi.data, (int) iv->hi.len, SQLITE_STATIC);
      }
      if (!step_rows(conn, st, ex, error)) {
         return false;
      }
      (void) before;
      if (ex->stop_after && ex->rows->len >= ex->stop_after) {
         break;
      }
   }
   return true;
}

/* ---- sort ------------------------------------------------------------------------------------ */

typedef struct sort_item {
   sq_row_t row;
   size_t pos;
} sort_item_t;

static int
sort_cmp(const void *a, const void *b, void *ctx)
{
   const sort_item_t *x = a, *y = b;
   int r = flora_sort_compare(ctx, x->row.doc, y->row.doc);
   if (r) {
      return r;
   }
   return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static bool
sort_rows(sq_rows_t *rows, const bson_t *spec, flora_error_t *error)
{
   flora_sort_t *s = flora_sort_new(spec, error);
   sort_item_t *items;
   if (!s) {
      return false;
   }
   items = bson_malloc(sizeof *items * (rows->len ? rows->len : 1));
   for (size_t i = 0; i < rows->len; i++) {
      items[i].row = rows->items[i];
      items[i].pos = i;
   }
   qsort_r(items, rows->len, sizeof *items, sort_cmp, s);
   for (size_t i = 0; i < rows->len; i++) {
      rows->items[i] = items[i].row;
   }
   bson_free(items);
   flora_sort_destroy(s);
   return true;
}

static void
apply_skip_limit(sq_rows_t *rows, int64_t skip, int64_t limit)
{
   size_t s = skip > 0 ? (size_t) skip : 0;
   size_t keep;
   if (s > rows->len) {
      s = rows->len;
   }
   for (size_t i = 0; i < s; i++) {
      bson_destroy(rows->items[i].doc);
   }
   if (s > 0) {
      memmove(rows->items, rows->items + s, sizeof *rows->items * (rows->len - s));
      rows->len -= s;
   }
   keep = limit > 0 && (size_t) limit < rows->len ? (size_t) limit : rows->len;
   for (size_t i = keep; i < rows->len; i++) {
      bson_destroy(rows->items[i].doc);
   }
   rows->len = keep;
}

/* ---- explain --------------------------------------------------------------------------------- */

static void
append_query_plan(sq_conn_t *conn, const char *sql, bson_t *engine)
{
   char eqp[1200];
   sqlite3_stmt *st = NULL;
   bson_t arr;
   uint32_t i = 0;

   BSON_APPEND_UTF8(engine, "sql", sql);
   snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
   BSON_APPEND_ARRAY_BEGIN(engine, "queryPlan", &arr);
   if (sqlite3_prepare_v2(conn->db, eqp, -1, &st, NULL) == SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) {
         char k[16];
         const char *key;
         bson_uint32_to_string(i++, &key, k, sizeof k);
         BSON_APPEND_UTF8(&arr, key, (const char *) sqlite3_column_text(st, 3));
      }
   }
   sqlite3_finalize(st);
   bson_append_array_end(engine, &arr);
}

static char *
value_text(const bson_value_t *v)
{
   bson_t one = BSON_INITIALIZER;
   char *json, *out;
   size_t n;
   bson_append_value(&one, "v", 1, v);
   json = bson_as_relaxed_extended_json(&one, NULL);
   bson_destroy(&one);
   /* '{ "v" : VALUE }' */
   n = json ? strlen(json) : 0;
   if (n < 10) {
      bson_free(json);
      return bson_strdup("?");
   }
   out = bson_strndup(json + 8, n - 10);
   bson_free(json);
   return out;
}

static void
append_bounds(const plan_t *pl, const bson_t *filter, bson_t *stage)
{
   preds_t ps = {0};
   bson_t b;
   collect_preds(&ps, filter);
   BSON_APPEND_DOCUMENT_BEGIN(stage, "indexBounds", &b);
   for (size_t f = 0; f < pl->ix->n_fields; f++) {
      const pred_t *p = (f < pl->n_eq || (f == pl->n_eq && pl->range))
                           ? find_pred(&ps, pl->ix->fields[f])
                           : NULL;
      bson_t arr;
      uint32_t n = 0;
      char k[16];
      const char *key;
      BSON_APPEND_ARRAY_BEGIN(&b, pl->ix->fields[f], &arr);
      if (!p) {
         bson_uint32_to_string(n++, &key, k, sizeof k);
         BSON_APPEND_UTF8(&arr, key, pl->ix->dirs[f] > 0 ? "[MinKey, MaxKey]" : "[MaxKey, MinKey]");
      } else if (p->n_points) {
         for (size_t i = 0; i < p->n_points; i++) {
            char *t = value_text(&p->points[i]);
            char s[600];
            snprintf(s, sizeof s, "[%s, %s]", t, t);
            bson_uint32_to_string(n++, &key, k, sizeof k);
            BSON_APPEND_UTF8(&arr, key, s);
            bson_free(t);
         }
      } else {
         char *lo = p->has_lo ? value_text(&p->lo) : NULL;
         char *hi = p->has_hi ? value_text(&p->hi) : NULL;
         char s[1300];
         const char *lo_t = lo ? lo : (p->hi.value_type == BSON_TYPE_UTF8 ? "\"\"" : "-inf.0");
         const char *hi_t = hi ? hi : (p->lo.value_type == BSON_TYPE_UTF8 ? "{}" : "inf.0");
         if (pl->ix->dirs[f] > 0) {
            snprintf(s, sizeof s, "%s%s, %s%s", (lo && !p->lo_incl) ? "(" : "[", lo_t, hi_t,
                     (hi && !p->hi_incl) ? ")" : "]");
         } else {
            snprintf(s, sizeof s, "%s%s, %s%s", (hi && !p->hi_incl) ? "(" : "[", hi_t, lo_t,
                     (lo && !p->lo_incl) ? ")" : "]");
         }
         bson_uint32_to_string(n++, &key, k, sizeof k);
         BSON_APPEND_UTF8(&arr, key, s);
         bson_free(lo);
         bson_free(hi);
      }
      bson_append_array_end(&b, &arr);
   }
   bson_append_document_end(stage, &b);
   preds_free(&ps);
}

static void
build_explain(sq_engine_t *eng, sq_conn_t *conn, const char *coll_name, const sq_coll_t *coll,
              const plan_t *pl, const sq_index_t *text_ix, const char *text_sql,
              const sq_query_t *q, bson_t *out)
{
   bson_t qp, wp, in, in2, engine;
   char ns[512];
   char sql[1024] = "";
   bool sort_stage = q->sort && !(pl && pl->sort_served);

   snprintf(ns, sizeof ns, "%s.%s", eng->db_name, coll_name);
   BSON_APPEND_DOCUMENT_BEGIN(out, "queryPlanner", &qp);
   BSON_APPEND_UTF8(&qp, "namespace", ns);
   BSON_APPEND_DOCUMENT(&qp, "parsedQuery", q->filter);
   BSON_APPEND_DOCUMENT_BEGIN(&qp, "winningPlan", &wp);
   bson_t *target = &wp;
   if (sort_stage) {
      BSON_APPEND_UTF8(&wp, "stage", "SORT");
      BSON_APPEND_DOCUMENT(&wp, "sortPattern", q->sort);
      if (q->limit > 0) {
         BSON_APPEND_INT64(&wp, "limitAmount", q->limit);
      }
      BSON_APPEND_DOCUMENT_BEGIN(&wp, "inputStage", &in2);
      target = &in2;
   } else if (q->limit > 0) {
      BSON_APPEND_UTF8(&wp, "stage", "LIMIT");
      BSON_APPEND_INT64(&wp, "limitAmount", q->limit);
      BSON_APPEND_DOCUMENT_BEGIN(&wp, "inputStage", &in2);
      target = &in2;
   }
   if (!coll) {
      BSON_APPEND_UTF8(target, "stage", "EOF");
   } else if (text_ix) {
      BSON_APPEND_UTF8(target, "stage", "TEXT_MATCH");
      BSON_APPEND_UTF8(target, "indexName", text_ix->name);
      BSON_APPEND_DOCUMENT_BEGIN(target, "inputStage", &in);
      BSON_APPEND_UTF8(&in, "stage", "TEXT");
      BSON_APPEND_UTF8(&in, "indexName", text_ix->name);
      bson_append_document_end(target, &in);
   } else if (!pl->ix) {
      BSON_APPEND_UTF8(target, "stage", "COLLSCAN");
      BSON_APPEND_DOCUMENT(target, "filter", q->filter);
      BSON_APPEND_UTF8(target, "direction", "forward");
      snprintf(sql, sizeof sql, "SELECT rid, doc FROM \"%s\" ORDER BY rid", coll->table);
   } else {
      bson_iter_t it;
      BSON_APPEND_UTF8(target, "stage", "FETCH");
      BSON_APPEND_DOCUMENT(target, "filter", q->filter);
      BSON_APPEND_DOCUMENT_BEGIN(target, "inputStage", &in);
      BSON_APPEND_UTF8(&in, "stage", "IXSCAN");
      if (bson_iter_init_find(&it, pl->ix->spec, "key")) {
         bson_append_iter(&in, "keyPattern", -1, &it);
      }
      BSON_APPEND_UTF8(&in, "indexName", pl->ix->name);
      BSON_APPEND_BOOL(&in, "isMultiKey", pl->ix->multikey);
      BSON_APPEND_BOOL(&in, "isUnique", pl->ix->unique);
      BSON_APPEND_BOOL(&in, "isSparse", pl->ix->sparse);
      BSON_APPEND_BOOL(&in, "isPartial", pl->ix->partial != NULL);
      BSON_APPEND_UTF8(&in, "direction", pl->desc ? "backward" : "forward");
      append_bounds(pl, q->filter, &in);
      bson_append_document_end(target, &in);
      index_sql(coll, pl, pl->n_iv ? &pl->iv[0] : NULL, sql, sizeof sql);
   }
   if (target == &in2) {
      bson_append_document_end(&wp, &in2);
   }
   bson_append_document_end(&qp, &wp);
   BSON_APPEND_ARRAY(&qp, "rejectedPlans", &(bson_t) BSON_INITIALIZER);
   bson_append_document_end(out, &qp);
   BSON_APPEND_DOCUMENT_BEGIN(out, "engine", &engine);
   BSON_APPEND_UTF8(&engine, "name", "sqlite");
   BSON_APPEND_UTF8(&engine, "version", sqlite3_libversion());
   if (text_sql) {
      append_query_plan(conn, text_sql, &engine);
   } else if (sql[0]) {
      append_query_plan(conn, sql, &engine);
   }
   bson_append_document_end(out, &engine);
}

/* ---- entry ----------------------------------------------------------------------------------- */

static sq_index_t *
text_index(sq_coll_t *coll)
{
   for (size_t i = 0; coll && i < coll->n_indexes; i++) {
      if (coll->indexes[i]->text) {
         return coll->indexes[i];
      }
   }
   return NULL;
}

static bool
run_text(sq_conn_t *conn, sq_coll_t *coll, sq_index_t *ix, const char *search, exec_t *ex,
         char **plan_sql, flora_error_t *error)
{
   sq_rows_t hits = {0};
   sq_text_terms_t terms = {NULL, 0};
   sqlite3_stmt *st;
   bool ok = flora__sqlite_text_search(conn, coll, ix, search, &hits, &terms, plan_sql, error);

   st = ok ? flora__sqlite_stmtf(conn, error, "SELECT doc FROM \"%s\" WHERE rid = ?", coll->table)
           : NULL;
   for (size_t i = 0; st && i < hits.len; i++) {
      sqlite3_bind_int64(st, 1, hits.items[i].rid);
      if (sqlite3_step(st) == SQLITE_ROW) {
         bson_t doc;
         double score = 0;
         bool more;
         if (ex->want_scores &&
             bson_init_static(&doc, sqlite3_column_blob(st, 0), (size_t) sqlite3_column_bytes(st, 0))) {
            score = flora__sqlite_text_score(ix, &doc, &terms);
         }
         more = consider(ex, hits.items[i].rid, sqlite3_column_blob(st, 0),
                         sqlite3_column_bytes(st, 0), score, true);
         sqlite3_reset(st);
         if (!more) {
            break;
         }
      } else {
         sqlite3_reset(st);
      }
   }
   if (ok && !st) {
      ok = false;
   }
   flora__sqlite_rows_free(&hits);
   flora__sqlite_text_terms_free(&terms);
   return ok;
}

bool
flora__sqlite_query(sq_engine_t *eng, sq_conn_t *conn, const char *coll_name,
                    const sq_query_t *q, const flora_matcher_t *matcher, sq_rows_t *rows,
                    bson_t *explain, flora_error_t *error)
{
   sq_catalog_t *cat = flora__sqlite_catalog(conn, error);
   sq_coll_t *coll;
   const char *search = flora_matcher_text_search(matcher);
   sq_index_t *tix = NULL;
   plan_t pl;
   exec_t ex;
   char *text_sql = NULL;
   bool ok = false;

   memset(&pl, 0, sizeof pl);
   memset(&ex, 0, sizeof ex);
   if (!cat) {
      return false;
   }
   coll = flora__sqlite_catalog_find(cat, coll_name);
   if (search) {
      tix = text_index(coll);
      if (!tix) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INDEX_NOT_FOUND,
                         "text index required for $text query");
         return false;
      }
   } else if (coll && !choose_plan(coll, q, &pl, error)) {
      return false;
   }
   ex.matcher = matcher;
   ex.rows = rows;
   ex.want_scores = q->want_scores;
   ex.dedupe = pl.ix && (pl.ix->multikey || pl.n_iv > 1);
   if (!q->sort || pl.sort_served) {
      if (q->limit > 0) {
         ex.stop_after = (size_t) (q->limit + q->skip);
      }
   }
   if (explain) {
      if (tix) {
         sq_rows_t tmp = {0};
         sq_text_terms_t terms = {NULL, 0};
         ok = flora__sqlite_text_search(conn, coll, tix, search, &tmp, &terms, &text_sql, error);
         flora__sqlite_rows_free(&tmp);
         flora__sqlite_text_terms_free(&terms);
      } else {
         ok = true;
      }
      if (ok) {
         build_explain(eng, conn, coll_name, coll, &pl, tix, text_sql, q, explain);
      }
      goto cleanup;
   }
   if (!coll) {
      ok = true;
      goto cleanup;
   }
   if (tix) {
      ok = run_text(conn, coll, tix, search, &ex, NULL, error);
   } else {
      ok = run_plan(conn, coll, &pl, &ex, error);
   }
   if (ok && q->sort && !pl.sort_served) {
      ok = sort_rows(rows, q->sort, error);
   }
   if (ok) {
      apply_skip_limit(rows, q->skip, q->limit);
   }
cleanup:
   bson_free(text_sql);
   bson_free(ex.seen.slots);
   plan_clear(&pl);
   return ok;
}
