/* The text index of the embedded engine on SQLite FTS5 (https://sqlite.org/fts5.html).
 *
 * One FTS5 table per text index ("t_<hex collection>", rowid = the document's rid) with a
 * column per weighted field, holding the field's words as terms of flora_text_terms
 * (folded and stemmed in the index's default_language, include/flora/text.h). Like
 * MongoDB's text indexes it is sparse: a document without any indexed string has no row.
 * $text: {$search} follows MongoDB's syntax (manual "$text"): words are OR'ed, a
 * "quoted phrase" must appear (when phrases are given only they restrict the result), a
 * -word excludes. FTS5 finds the candidates; the textScore is MongoDB's own formula
 * (mongo/src/mongo/db/fts/fts_spec.cpp, _scoreStringV2) with the index weights, so scores
 * equal what MongoDB answers (the OpenDocDB corpus checks it), rather than FTS5's bm25. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flora/text.h"
#include "store/sqlite_private.h"

bool
flora__sqlite_text_create(sq_conn_t *conn, sq_coll_t *coll, sq_index_t *ix, flora_error_t *error)
{
   char sql[1024];
   size_t len;

   (void) coll;
   len = (size_t) snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE \"%s\" USING fts5(", ix->table);
   for (size_t i = 0; i < ix->n_fields && len < sizeof sql; i++) {
      len += (size_t) snprintf(sql + len, sizeof sql - len, "f%zu, ", i);
   }
   if (len >= sizeof sql - 64) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "too many text fields");
      return false;
   }
   snprintf(sql + len, sizeof sql - len, "tokenize = 'unicode61 remove_diacritics 0')");
   return flora__sqlite_exec(conn, sql, error);
}

typedef struct text_acc {
   sq_buf_t buf;
} text_acc_t;

static void
text_add(void *ctx, const bson_value_t *v)
{
   text_acc_t *acc = ctx;
   if (v->value_type == BSON_TYPE_UTF8) {
      if (acc->buf.len) {
         flora__sqlite_buf_byte(&acc->buf, ' ');
      }
      flora__sqlite_buf_append(&acc->buf, v->value.v_utf8.str, v->value.v_utf8.len);
   }
}

bool
flora__sqlite_text_write(sq_conn_t *conn, sq_coll_t *coll, sq_index_t *ix, int64_t rid,
                         const bson_t *old_doc, const bson_t *new_doc, flora_error_t *error)
{
   sqlite3_stmt *st;
   char **terms = NULL;
   bool any = false, ok = false;
   int rc;
   char sql[1024];
   size_t len;

   (void) coll;
   if (old_doc) {
      st = flora__sqlite_stmtf(conn, error, "DELETE FROM \"%s\" WHERE rowid = ?", ix->table);
      if (!st) {
         return false;
      }
      sqlite3_bind_int64(st, 1, rid);
      rc = sqlite3_step(st);
      sqlite3_reset(st);
      if (rc != SQLITE_DONE) {
         flora__sqlite_error(conn, rc, "text index delete", error);
         return false;
      }
   }
   if (!new_doc) {
      return true;
   }
   terms = bson_malloc0(sizeof *terms * ix->n_fields);
   for (size_t f = 0; f < ix->n_fields; f++) {
      text_acc_t acc = {SQ_BUF_INIT};
      flora__sqlite_path_values(new_doc, ix->fields[f], true, false, text_add, &acc, NULL);
      if (acc.buf.len) {
         terms[f] = flora_text_terms_joined((const char *) acc.buf.data, acc.buf.len, ix->language,
                                            error);
         flora__sqlite_buf_free(&acc.buf);
         if (!terms[f]) {
            goto cleanup;
         }
         any = any || terms[f][0] != '\0';
      }
   }
   if (!any) {
      ok = true;
      goto cleanup;
   }
   len = (size_t) snprintf(sql, sizeof sql, "INSERT INTO \"%s\"(rowid", ix->table);
   for (size_t f = 0; f < ix->n_fields && len < sizeof sql; f++) {
      len += (size_t) snprintf(sql + len, sizeof sql - len, ", f%zu", f);
   }
   if (len < sizeof sql) {
      len += (size_t) snprintf(sql + len, sizeof sql - len, ") VALUES (?");
   }
   for (size_t f = 0; f < ix->n_fields && len < sizeof sql; f++) {
      len += (size_t) snprintf(sql + len, sizeof sql - len, ", ?");
   }
   if (len < sizeof sql) {
      snprintf(sql + len, sizeof sql - len, ")");
   }
   st = flora__sqlite_stmt(conn, sql, error);
   if (!st) {
      goto cleanup;
   }
   sqlite3_bind_int64(st, 1, rid);
   for (size_t f = 0; f < ix->n_fields; f++) {
      sqlite3_bind_text(st, (int) f + 2, terms[f] ? terms[f] : "", -1, SQLITE_STATIC);
   }
   rc = sqlite3_step(st);
   sqlite3_reset(st);
   sqlite3_clear_bindings(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(conn, rc, "text index insert", error);
      goto cleanup;
   }
   ok = true;
cleanup:
   for (size_t f = 0; f < ix->n_fields; f++) {
      bson_free(terms[f]);
   }
   bson_free(terms);
   return ok;
}

/* ---- search ------------------------------------------------------------------------------- */

typedef struct expr {
   sq_text_terms_t *positive; /* distinct query terms that score */
   sq_buf_t words;    /* "a" OR "b" */
   sq_buf_t phrases;  /* "p q" AND "r" */
   sq_buf_t nots;     /* NOT "x" NOT "y" */
   sq_buf_t *cur;     /* where terms of the current piece go */
   size_t n_in_piece;
   bool phrase;
} expr_t;

static void
append_quoted(sq_buf_t *b, const char *term)
{
   flora__sqlite_buf_byte(b, '"');
   for (const char *p = term; *p; p++) {
      if (*p == '"') {
         flora__sqlite_buf_byte(b, '"');
      }
      flora__sqlite_buf_byte(b, (uint8_t) *p);
   }
   flora__sqlite_buf_byte(b, '"');
}

static bool
add_term(void *ctx, const char *term, size_t position)
{
   expr_t *e = ctx;
   (void) position;
   if (e->phrase || e->cur == &e->words) {
      bool seen = false;
      for (size_t i = 0; i < e->positive->len; i++) {
         seen = seen || strcmp(e->positive->items[i], term) == 0;
      }
      if (!seen) {
         e->positive->items = bson_realloc(e->positive->items,
                                           sizeof *e->positive->items * (e->positive->len + 1));
         e->positive->items[e->positive->len++] = bson_strdup(term);
      }
   }
   if (e->phrase) {
      /* a phrase: the terms inside one quoted FTS5 string, in order */
      if (e->n_in_piece++) {
         flora__sqlite_buf_byte(e->cur, ' ');
      }
      for (const char *p = term; *p; p++) {
         if (*p == '"') {
            flora__sqlite_buf_byte(e->cur, '"');
         }
         flora__sqlite_buf_byte(e->cur, (uint8_t) *p);
      }
      return true;
   }
   if (e->cur == &e->words) {
      if (e->words.len) {
         flora__sqlite_buf_append(&e->words, " OR ", 4);
      }
   } else {
      flora__sqlite_buf_append(&e->nots, " NOT ", 5);
   }
   append_quoted(e->cur, term);
   return true;
}

/* Builds the FTS5 MATCH expression; *empty when nothing positive was searched for. */
static bool
build_match(const char *search, const char *language, sq_buf_t *out, bool *empty,
            sq_text_terms_t *positive, flora_error_t *error)
{
   expr_t e;
   const char *p = search;
   bool ok = true;

   memset(&e, 0, sizeof e);
   e.positive = positive;
   *empty = true;
   while (ok && *p) {
      const char *start;
      if (*p == ' ' || *p == '\t' || *p == '\n') {
         p++;
         continue;
      }
      if (*p == '"') {
         const char *end = strchr(p + 1, '"');
         size_t n = end ? (size_t) (end - p - 1) : strlen(p + 1);
         sq_buf_t one = SQ_BUF_INIT;
         e.cur = &one;
         e.phrase = true;
         e.n_in_piece = 0;
         ok = flora_text_terms(p + 1, n, language, add_term, &e, error);
         if (ok && e.n_in_piece) {
            if (e.phrases.len) {
               flora__sqlite_buf_append(&e.phrases, " AND ", 5);
            }
            flora__sqlite_buf_byte(&e.phrases, '"');
            flora__sqlite_buf_append(&e.phrases, one.data, one.len);
            flora__sqlite_buf_byte(&e.phrases, '"');
         }
         flora__sqlite_buf_free(&one);
         p += n + 1 + (end ? 1 : 0);
         continue;
      }
      start = p;
      while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '"') {
         p++;
      }
      e.phrase = false;
      if (*start == '-' && p - start > 1) {
         e.cur = &e.nots;
         ok = flora_text_terms(start + 1, (size_t) (p - start - 1), language, add_term, &e, error);
      } else {
         e.cur = &e.words;
         ok = flora_text_terms(start, (size_t) (p - start), language, add_term, &e, error);
      }
   }
   if (ok) {
      sq_buf_t *pos = e.phrases.len ? &e.phrases : &e.words;
      out->len = 0;
      if (pos->len) {
         *empty = false;
         flora__sqlite_buf_byte(out, '(');
         flora__sqlite_buf_append(out, pos->data, pos->len);
         flora__sqlite_buf_byte(out, ')');
         flora__sqlite_buf_append(out, e.nots.data, e.nots.len);
      }
      flora__sqlite_buf_byte(out, '\0');
   }
   flora__sqlite_buf_free(&e.words);
   flora__sqlite_buf_free(&e.phrases);
   flora__sqlite_buf_free(&e.nots);
   return ok;
}

bool
flora__sqlite_text_search(sq_conn_t *conn, sq_coll_t *coll, sq_index_t *ix, const char *search,
                          sq_rows_t *rows, sq_text_terms_t *terms, char **plan_sql,
                          flora_error_t *error)
{
   sq_buf_t match = SQ_BUF_INIT;
   char sql[1024];
   sqlite3_stmt *st;
   bool empty;
   bool ok = false;
   int rc;

   (void) coll;
   if (!build_match(search, ix->language, &match, &empty, terms, error)) {
      goto cleanup;
   }
   snprintf(sql, sizeof sql, "SELECT rowid FROM \"%s\" WHERE \"%s\" MATCH ?", ix->table, ix->table);
   if (plan_sql) {
      *plan_sql = bson_strdup(sql);
   }
   if (empty) {
      ok = true;
      goto cleanup;
   }
   st = flora__sqlite_stmt(conn, sql, error);
   if (!st) {
      goto cleanup;
   }
   sqlite3_bind_text(st, 1, (const char *) match.data, -1, SQLITE_STATIC);
   while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (rows->len == rows->cap) {
         rows->cap = rows->cap ? rows->cap * 2 : 32;
         rows->items = bson_realloc(rows->items, sizeof *rows->items * rows->cap);
      }
      rows->items[rows->len].rid = sqlite3_column_int64(st, 0);
      rows->items[rows->len].doc = NULL;
      rows->items[rows->len].score = 0;
      rows->len++;
   }
   sqlite3_reset(st);
   sqlite3_clear_bindings(st);
   if (rc != SQLITE_DONE) {
      flora__sqlite_error(conn, rc, "text search", error);
      goto cleanup;
   }
   ok = true;
cleanup:
   flora__sqlite_buf_free(&match);
   return ok;
}

void
flora__sqlite_text_terms_free(sq_text_terms_t *terms)
{
   for (size_t i = 0; i < terms->len; i++) {
      bson_free(terms->items[i]);
   }
   bson_free(terms->items);
   memset(terms, 0, sizeof *terms);
}

/* ---- MongoDB's score ------------------------------------------------------------------------ */

typedef struct string_terms {
   char **items;
   size_t len, cap;
} string_terms_t;

static bool
collect_term(void *ctx, const char *term, size_t position)
{
   string_terms_t *st = ctx;
   (void) position;
   if (st->len == st->cap) {
      st->cap = st->cap ? st->cap * 2 : 16;
      st->items = bson_realloc(st->items, sizeof *st->items * st->cap);
   }
   st->items[st->len++] = bson_strdup(term);
   return true;
}

typedef struct score_ctx {
   const sq_index_t *ix;
   const sq_text_terms_t *query;
   int weight;
   double score;
} score_ctx_t;

/* One string of one field, as mongo/src/mongo/db/fts/fts_spec.cpp _scoreStringV2 scores
 * it: for a term seen c times among n tokens, weight * (1 + 1/2 + ... + 1/2^(c-1)) *
 * (0.5 * c / n + 0.5), times 1.1 when the whole string is that term. */
static void
score_string(void *ctx, const bson_value_t *v)
{
   score_ctx_t *sc = ctx;
   string_terms_t st = {NULL, 0, 0};
   char *folded = NULL;

   if (v->value_type != BSON_TYPE_UTF8 ||
       !flora_text_terms(v->value.v_utf8.str, v->value.v_utf8.len, sc->ix->language, collect_term,
                         &st, NULL)) {
      goto cleanup;
   }
   folded = flora_text_fold(v->value.v_utf8.str, v->value.v_utf8.len);
   for (size_t q = 0; q < sc->query->len && st.len > 0; q++) {
      const char *term = sc->query->items[q];
      double freq = 0, exp = 0;
      size_t count = 0;
      for (size_t i = 0; i < st.len; i++) {
         if (strcmp(st.items[i], term) == 0) {
            exp = exp > 0 ? exp * 2 : 1;
            freq += 1 / exp;
            count++;
         }
      }
      if (count) {
         double coeff = 0.5 * (double) count / (double) st.len + 0.5;
         double adjustment = (folded && strcmp(folded, term) == 0) ? 1.1 : 1.0;
         sc->score += sc->weight * freq * coeff * adjustment;
      }
   }
cleanup:
   for (size_t i = 0; i < st.len; i++) {
      bson_free(st.items[i]);
   }
   bson_free(st.items);
   free(folded);
}

double
flora__sqlite_text_score(const sq_index_t *ix, const bson_t *doc, const sq_text_terms_t *query)
{
   score_ctx_t sc = {ix, query, 1, 0.0};
   for (size_t f = 0; f < ix->n_fields; f++) {
      sc.weight = ix->dirs[f];
      flora__sqlite_path_values(doc, ix->fields[f], true, false, score_string, &sc, NULL);
   }
   return sc.score;
}
