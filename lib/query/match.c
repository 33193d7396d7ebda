/* Query filters: MongoDB's query operators compiled once into a tree, evaluated with
 * libbson iterators and no allocation per match. See include/flora/query.h.
 *
 * Sources: MongoDB manual "Query and Projection Operators" (each operator's page) and
 * "Comparison/Sort Order"; error texts and codes follow the server's
 * (src/mongo/db/matcher/expression_parser.cpp) where this engine reports the same problem;
 * answers agree with the OpenDocDB corpus recorded from real MongoDB. */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "query/query_private.h"

/* MongoDB's codes for regex problems (error_codes: "Regular expression is invalid",
 * "invalid flag in regex options", "options set in both $regex and $options"). */
#define ERR_REGEX_INVALID 51091
#define ERR_REGEX_FLAG 51108
#define ERR_REGEX_OPTIONS_TWICE 51075

typedef enum op {
   /* logical: children */
   OP_AND,
   OP_OR,
   OP_NOR,
   OP_NOT,
   OP_TRUE,
   OP_FALSE,
   /* predicates on one value */
   OP_EQ,
   OP_GT,
   OP_GTE,
   OP_LT,
   OP_LTE,
   OP_IN,
   OP_EXISTS,
   OP_TYPE,
   OP_REGEX,
   OP_SIZE,
   OP_MOD,
   OP_ELEMMATCH_OBJ, /* kids[0]: a filter over the element (a document) */
   OP_ELEMMATCH_VAL, /* kids[0]: predicates over the element itself */
} op_t;

/* Bits of OP_TYPE's mask: BSON type codes 1..19, then minKey, maxKey. */
#define TYPE_BIT_MINKEY 20
#define TYPE_BIT_MAXKEY 21

typedef struct node node_t;
struct node {
   op_t op;
   bool has_path;
   flora__path_t path; /* predicates at field level */
   node_t **kids;
   size_t nkids;
   bson_value_t value;   /* EQ and comparisons; EQ also for $all entries */
   bool has_value;
   bson_value_t *values; /* IN: the non-regex entries, sorted */
   size_t nvalues;
   bool in_has_null;
   flora__regex_t *regexes; /* IN: regex entries; REGEX: regexes[0] */
   size_t nregexes;
   uint32_t type_mask; /* TYPE */
   bool type_number;   /* TYPE "number" */
   int64_t a, b;       /* MOD divisor/remainder, SIZE length */
};

struct flora_matcher {
   node_t *root;
   char *text_search; /* $text.$search, or NULL */
};

static void node_destroy(node_t *n);

static node_t *
node_new(op_t op)
{
   node_t *n = bson_malloc0(sizeof *n);

   n->op = op;
   return n;
}

static void
node_add(node_t *parent, node_t *kid)
{
   parent->kids = bson_realloc(parent->kids, (parent->nkids + 1) * sizeof *parent->kids);
   parent->kids[parent->nkids++] = kid;
}

static void
node_destroy(node_t *n)
{
   if (!n) {
      return;
   }
   for (size_t i = 0; i < n->nkids; i++) {
      node_destroy(n->kids[i]);
   }
   bson_free(n->kids);
   if (n->has_path) {
      flora__path_clear(&n->path);
   }
   if (n->has_value) {
      bson_value_destroy(&n->value);
   }
   for (size_t i = 0; i < n->nvalues; i++) {
      bson_value_destroy(&n->values[i]);
   }
   bson_free(n->values);
   for (size_t i = 0; i < n->nregexes; i++) {
      flora__regex_clear(&n->regexes[i]);
   }
   bson_free(n->regexes);
   bson_free(n);
}

/* ---- regular expressions ------------------------------------------------------------ */

static bool
regex_unsupported(const char *pattern, const char *what, flora_error_t *error)
{
   flora_error_set(error, FLORA_DOMAIN_STORE, ERR_REGEX_INVALID,
                   "Regular expression is invalid: %s is not supported by this engine in /%s/",
                   what, pattern);
   return false;
}

static int
hexval(char c)
{
   if (c >= '0' && c <= '9') {
      return c - '0';
   }
   if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
   }
   if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
   }
   return -1;
}

/* Appends a literal character c (outside or inside a bracket expression). */
static void
put_literal(bson_string_t *out, char c, bool in_bracket)
{
   if (in_bracket) {
      if (c == ']' || c == '^' || c == '-' || c == '[') {
         char sym[8] = {'[', '.', c, '.', ']', '\0'};

         bson_string_append(out, sym);
      } else {
         bson_string_append_c(out, c);
      }
      return;
   }
   if (strchr(".[]()*+?{}|^$\\", c) && c != '\0') {
      bson_string_append_c(out, '\\');
   }
   bson_string_append_c(out, c);
}

/* True when p starts a valid PCRE quantifier {n}, {n,}, {n,m}; *len gets its length. */
static bool
is_quantifier(const char *p, size_t *len)
{
   const char *q = p + 1;

   if (!isdigit((unsigned char) *q)) {
      return false;
   }
   while (isdigit((unsigned char) *q)) {
      q++;
   }
   if (*q == ',') {
      q++;
      while (isdigit((unsigned char) *q)) {
         q++;
      }
   }
   if (*q != '}') {
      return false;
   }
   *len = (size_t) (q - p) + 1;
   return true;
}

/* PCRE to POSIX ERE, see query_private.h. The POSIX engine runs without REG_NEWLINE (so a
 * negated class matches a newline, as in PCRE); '.', '^' and '$' are rewritten instead. */
static bool
translate_regex(const char *p, bool opt_m, bool opt_s, bool opt_x, bson_string_t *out,
                flora_error_t *error)
{
   const char *pattern = p;
   bool in_bracket = false;
   bool bracket_start = false;

   while (*p) {
      char c = *p;

      if (in_bracket) {
         if (c == ']' && !bracket_start) {
            in_bracket = false;
            bson_string_append_c(out, ']');
            p++;
            continue;
         }
         bracket_start = false;
         if (c == '[' && p[1] == ':') {
            const char *end = strstr(p + 2, ":]");

            if (!end) {
               return regex_unsupported(pattern, "an unterminated character class", error);
            }
            bson_string_append_printf(out, "%.*s", (int) (end + 2 - p), p);
            p = end + 2;
            continue;
         }
         if (c == '\\') {
            char n = p[1];

            switch (n) {
            case 'd':
               bson_string_append(out, "0-9");
               break;
            case 'w':
               bson_string_append(out, "[:alnum:]_");
               break;
            case 's':
               bson_string_append(out, "[:space:]");
               break;
            case 't':
               bson_string_append_c(out, '\t');
               break;
            case 'n':
               bson_string_append_c(out, '\n');
               break;
            case 'r':
               bson_string_append_c(out, '\r');
               break;
            case 'f':
               bson_string_append_c(out, '\f');
               break;
            case 'v':
               bson_string_append_c(out, '\v');
               break;
            case 'b':
               bson_string_append_c(out, '\b');
               break;
            case 'x':
               if (hexval(p[2]) < 0 || hexval(p[3]) < 0) {
                  return regex_unsupported(pattern, "\\x without two hex digits", error);
               }
               put_literal(out, (char) (hexval(p[2]) * 16 + hexval(p[3])), true);
               p += 2;
               break;
            case '\0':
               return regex_unsupported(pattern, "a trailing backslash", error);
            default:
               if (isalnum((unsigned char) n)) {
                  char what[32];

                  snprintf(what, sizeof what, "the escape \\%c in a class", n);
                  return regex_unsupported(pattern, what, error);
               }
               put_literal(out, n, true);
               break;
            }
            p += 2;
            continue;
         }
         bson_string_append_c(out, c);
         p++;
         continue;
      }
      if (opt_x && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')) {
         p++;
         continue;
      }
      if (opt_x && c == '#') {
         while (*p && *p != '\n') {
            p++;
         }
         continue;
      }
      switch (c) {
      case '\\': {
         char n = p[1];

         switch (n) {
         case 'd':
            bson_string_append(out, "[0-9]");
            break;
         case 'D':
            bson_string_append(out, "[^0-9]");
            break;
         case 'w':
         case 'W':
         case 's':
         case 'S':
         case 'b':
         case 'B':
            bson_string_append_c(out, '\\');
            bson_string_append_c(out, n);
            break;
         case 'A':
            bson_string_append(out, "\\`");
            break;
         case 'z':
            bson_string_append(out, "\\'");
            break;
         case 'Z':
            bson_string_append(out, "(\n?\\')");
            break;
         case 't':
            bson_string_append_c(out, '\t');
            break;
         case 'n':
            bson_string_append_c(out, '\n');
            break;
         case 'r':
            bson_string_append_c(out, '\r');
            break;
         case 'f':
            bson_string_append_c(out, '\f');
            break;
         case 'v':
            bson_string_append_c(out, '\v');
            break;
         case 'x':
            if (hexval(p[2]) < 0 || hexval(p[3]) < 0) {
               return regex_unsupported(pattern, "\\x without two hex digits", error);
            }
            put_literal(out, (char) (hexval(p[2]) * 16 + hexval(p[3])), false);
            p += 2;
            break;
         case '\0':
            return regex_unsupported(pattern, "a trailing backslash", error);
         default:
            if (isalnum((unsigned char) n)) {
               char what[32];

               snprintf(what, sizeof what, "the escape \\%c", n);
               return regex_unsupported(pattern, what, error);
            }
            put_literal(out, n, false);
            break;
         }
         p += 2;
         continue;
      }
      case '[':
         in_bracket = true;
         bracket_start = true;
         bson_string_append_c(out, '[');
         p++;
         if (*p == '^') {
            bson_string_append_c(out, '^');
            p++;
         }
         continue;
      case '.':
         bson_string_append(out, opt_s ? "." : "[^\n]");
         p++;
         continue;
      case '^':
         /* m: also just after a newline (the newline itself may be consumed: only the
          * yes/no answer matters) */
         bson_string_append(out, opt_m ? "(^|\n)" : "^");
         p++;
         continue;
      case '$':
         /* PCRE: the end, or before a final newline; m: before any newline */
         bson_string_append(out, opt_m ? "($|\n)" : "(\n?$)");
         p++;
         continue;
      case '(':
         if (p[1] == '?') {
            if (p[2] == ':') {
               bson_string_append_c(out, '(');
               p += 3;
               continue;
            }
            return regex_unsupported(pattern, "a (? group (lookaround, inline flags, names)",
                                     error);
         }
         bson_string_append_c(out, '(');
         p++;
         continue;
      case '*':
      case '+':
      case '?':
         bson_string_append_c(out, c);
         p++;
         if (*p == '?') {
            p++; /* lazy: same answer for a yes/no match */
         } else if (*p == '+') {
            return regex_unsupported(pattern, "a possessive quantifier", error);
         }
         continue;
      case '{': {
         size_t len = 0;

         if (is_quantifier(p, &len)) {
            bson_string_append_printf(out, "%.*s", (int) len, p);
            p += len;
            if (*p == '?') {
               p++;
            } else if (*p == '+') {
               return regex_unsupported(pattern, "a possessive quantifier", error);
            }
         } else {
            bson_string_append(out, "\\{");
            p++;
         }
         continue;
      }
      case '}':
         bson_string_append(out, "\\}");
         p++;
         continue;
      default:
         bson_string_append_c(out, c);
         p++;
         continue;
      }
   }
   if (in_bracket) {
      return regex_unsupported(pattern, "an unterminated [", error);
   }
   return true;
}

bool
flora__regex_init(flora__regex_t *re, const char *pattern, const char *options,
                  flora_error_t *error)
{
   bool opt_i = false, opt_m = false, opt_s = false, opt_x = false;
   bson_string_t *posix = NULL;
   int flags = REG_EXTENDED | REG_NOSUB;
   int rc;
   bool ok = false;

   memset(re, 0, sizeof *re);
   options = options ? options : "";
   for (const char *o = options; *o; o++) {
      switch (*o) {
      case 'i':
         opt_i = true;
         break;
      case 'm':
         opt_m = true;
         break;
      case 's':
         opt_s = true;
         break;
      case 'x':
         opt_x = true;
         break;
      case 'u':
         break;
      default:
         flora_error_set(error, FLORA_DOMAIN_STORE, ERR_REGEX_FLAG,
                         "invalid flag in regex options: %c", *o);
         return false;
      }
   }
   posix = bson_string_new(NULL);
   if (!translate_regex(pattern, opt_m, opt_s, opt_x, posix, error)) {
      goto cleanup;
   }
   flags |= opt_i ? REG_ICASE : 0;
   rc = regcomp(&re->re, posix->str, flags);
   if (rc != 0) {
      char msg[128];

      regerror(rc, &re->re, msg, sizeof msg);
      flora_error_set(error, FLORA_DOMAIN_STORE, ERR_REGEX_INVALID,
                      "Regular expression is invalid: %s in /%s/", msg, pattern);
      goto cleanup;
   }
   re->compiled = true;
   re->pattern = bson_strdup(pattern);
   re->options = bson_strdup(options);
   ok = true;
cleanup:
   bson_string_free(posix, true);
   return ok;
}

bool
flora__regex_match(const flora__regex_t *re, const char *s, size_t len)
{
   regmatch_t m[1];

   m[0].rm_so = 0;
   m[0].rm_eo = (regoff_t) len;
   return regexec(&re->re, s, 1, m, REG_STARTEND) == 0;
}

void
flora__regex_clear(flora__regex_t *re)
{
   if (!re) {
      return;
   }
   if (re->compiled) {
      regfree(&re->re);
   }
   bson_free(re->pattern);
   bson_free(re->options);
   memset(re, 0, sizeof *re);
}

/* ---- evaluation ---------------------------------------------------------------------- */

static bool match_doc(const node_t *n, const bson_t *doc, int *index);
static bool eval_value(const node_t *n, const bson_iter_t *v, int *elem_index);

static bool
is_nan_value(const bson_value_t *v)
{
   if (v->value_type == BSON_TYPE_DOUBLE) {
      return isnan(v->value.v_double);
   }
   if (v->value_type == BSON_TYPE_DECIMAL128) {
      return ((v->value.v_decimal128.high >> 58) & 0x1f) == 0x1f;
   }
   return false;
}

static const bson_value_t null_value = {.value_type = BSON_TYPE_NULL};

/* $eq/$gt/... on one value, following MongoDB's ComparisonMatchExpression: types must
 * bracket (except MinKey/MaxKey operands), NaN only equals NaN. */
static bool
compare_op(op_t op, const bson_value_t *v, const bson_value_t *rhs)
{
   int rv = flora_value_type_rank(v->value_type);
   int rr = flora_value_type_rank(rhs->value_type);
   int c;

   if (rv != rr) {
      if (rhs->value_type == BSON_TYPE_MINKEY) {
         return op == OP_GT || op == OP_GTE;
      }
      if (rhs->value_type == BSON_TYPE_MAXKEY) {
         return op == OP_LT || op == OP_LTE;
      }
      return false;
   }
   if (rv == flora_value_type_rank(BSON_TYPE_INT32)) {
      bool nv = is_nan_value(v), nr = is_nan_value(rhs);

      if (nv || nr) {
         return nv && nr && (op == OP_EQ || op == OP_GTE || op == OP_LTE);
      }
   }
   c = flora_value_compare(v, rhs);
   switch (op) {
   case OP_EQ:
      return c == 0;
   case OP_GT:
      return c > 0;
   case OP_GTE:
      return c >= 0;
   case OP_LT:
      return c < 0;
   case OP_LTE:
      return c <= 0;
   default:
      return false;
   }
}

static bool
regex_matches_value(const flora__regex_t *re, const bson_value_t *v)
{
   switch (v->value_type) {
   case BSON_TYPE_UTF8:
      return flora__regex_match(re, v->value.v_utf8.str, v->value.v_utf8.len);
   case BSON_TYPE_SYMBOL:
      return flora__regex_match(re, v->value.v_symbol.symbol, v->value.v_symbol.len);
   case BSON_TYPE_REGEX:
      return strcmp(v->value.v_regex.regex, re->pattern) == 0 &&
             strcmp(v->value.v_regex.options ? v->value.v_regex.options : "", re->options) == 0;
   default:
      return false;
   }
}

static int
value_cmp_qsort(const void *a, const void *b)
{
   return flora_value_compare(a, b);
}

static bool
in_matches(const node_t *n, const bson_value_t *v)
{
   size_t lo = 0, hi = n->nvalues;

   while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = flora_value_compare(v, &n->values[mid]);

      if (c == 0) {
         /* compare() puts NaN equal to NaN and numbers by value: $eq's answer too. */
         return true;
      }
      if (c < 0) {
         hi = mid;
      } else {
         lo = mid + 1;
      }
   }
   for (size_t i = 0; i < n->nregexes; i++) {
      if (regex_matches_value(&n->regexes[i], v)) {
         return true;
      }
   }
   return false;
}

static uint32_t
type_bit(bson_type_t t)
{
   if (t == BSON_TYPE_MINKEY) {
      return 1u << TYPE_BIT_MINKEY;
   }
   if (t == BSON_TYPE_MAXKEY) {
      return 1u << TYPE_BIT_MAXKEY;
   }
   if ((int) t >= 1 && (int) t <= 19) {
      return 1u << (int) t;
   }
   return 0;
}

static bool
elem_match(const node_t *n, const bson_iter_t *v, int *elem_index)
{
   bson_iter_t it;
   int k = 0;

   if (!BSON_ITER_HOLDS_ARRAY(v) || !bson_iter_recurse(v, &it)) {
      return false;
   }
   while (bson_iter_next(&it)) {
      bool ok;

      if (n->op == OP_ELEMMATCH_OBJ) {
         bson_t sub;
         const bson_value_t *ev = bson_iter_value(&it);

         ok = flora__value_as_doc(ev, &sub) && match_doc(n->kids[0], &sub, NULL);
      } else {
         ok = eval_value(n->kids[0], &it, NULL);
      }
      if (ok) {
         if (elem_index) {
            *elem_index = k;
         }
         return true;
      }
      k++;
   }
   return false;
}

/* One value (v NULL: missing). elem_index receives the element an $elemMatch matched. */
static bool
eval_value(const node_t *n, const bson_iter_t *v, int *elem_index)
{
   const bson_value_t *val = v ? bson_iter_value((bson_iter_t *) v) : NULL;

   switch (n->op) {
   case OP_AND:
      for (size_t i = 0; i < n->nkids; i++) {
         if (!eval_value(n->kids[i], v, elem_index)) {
            return false;
         }
      }
      return true;
   case OP_OR:
      for (size_t i = 0; i < n->nkids; i++) {
         if (eval_value(n->kids[i], v, elem_index)) {
            return true;
         }
      }
      return false;
   case OP_NOR:
      for (size_t i = 0; i < n->nkids; i++) {
         if (eval_value(n->kids[i], v, NULL)) {
            return false;
         }
      }
      return true;
   case OP_NOT:
      return !eval_value(n->kids[0], v, NULL);
   case OP_TRUE:
      return true;
   case OP_FALSE:
      return false;
   case OP_EQ:
   case OP_GT:
   case OP_GTE:
   case OP_LT:
   case OP_LTE:
      return compare_op(n->op, val ? val : &null_value, &n->value);
   case OP_IN:
      if (!val) {
         return n->in_has_null;
      }
      return in_matches(n, val);
   case OP_EXISTS:
      return val != NULL;
   case OP_TYPE:
      if (!val) {
         return false;
      }
      if (n->type_number && flora__value_is_number(val)) {
         return true;
      }
      return (n->type_mask & type_bit(val->value_type)) != 0;
   case OP_REGEX:
      return val && regex_matches_value(&n->regexes[0], val);
   case OP_SIZE: {
      bson_iter_t it;
      int64_t count = 0;

      if (!val || val->value_type != BSON_TYPE_ARRAY || !bson_iter_recurse(v, &it)) {
         return false;
      }
      while (bson_iter_next(&it)) {
         count++;
      }
      return count == n->a;
   }
   case OP_MOD: {
      int64_t x;

      if (!val || !flora__value_is_number(val) || !flora__number_trunc_int64(val, &x)) {
         return false;
      }
      if (n->a == -1) {
         return n->b == 0;
      }
      return x % n->a == n->b;
   }
   case OP_ELEMMATCH_OBJ:
   case OP_ELEMMATCH_VAL:
      return v && elem_match(n, v, elem_index);
   default:
      return false;
   }
}

typedef struct {
   const node_t *node;
   bool matched;
   int index;
} leaf_ctx_t;

static bool
leaf_visit(void *ctx, flora__visit_kind_t kind, const bson_iter_t *value, int array_index)
{
   leaf_ctx_t *c = ctx;
   int elem = -1;

   (void) kind;
   if (eval_value(c->node, value, &elem)) {
      c->matched = true;
      c->index = array_index >= 0 ? array_index : elem;
      return false;
   }
   return true;
}

static int
walk_flags(const node_t *n)
{
   /* $size, $elemMatch and $exists look at arrays as a whole (MongoDB's
    * shouldExpandLeafArray() is false for them). */
   switch (n->op) {
   case OP_SIZE:
   case OP_ELEMMATCH_OBJ:
   case OP_ELEMMATCH_VAL:
   case OP_EXISTS:
      return 0;
   default:
      return FLORA__WALK_EXPAND_LEAF;
   }
}

static bool
match_doc(const node_t *n, const bson_t *doc, int *index)
{
   if (n->has_path) {
      leaf_ctx_t c = {n, false, -1};

      flora__path_walk(&n->path, doc, walk_flags(n), leaf_visit, &c);
      if (c.matched && index && c.index >= 0) {
         *index = c.index;
      }
      return c.matched;
   }
   switch (n->op) {
   case OP_AND:
      for (size_t i = 0; i < n->nkids; i++) {
         if (!match_doc(n->kids[i], doc, index)) {
            return false;
         }
      }
      return true;
   case OP_OR:
      for (size_t i = 0; i < n->nkids; i++) {
         if (match_doc(n->kids[i], doc, index)) {
            return true;
         }
      }
      return false;
   case OP_NOR:
      for (size_t i = 0; i < n->nkids; i++) {
         if (match_doc(n->kids[i], doc, NULL)) {
            return false;
         }
      }
      return true;
   case OP_NOT:
      return !match_doc(n->kids[0], doc, NULL);
   case OP_FALSE:
      return false;
   default:
      return true;
   }
}

/* ---- compilation --------------------------------------------------------------------- */

typedef struct {
   char *text_search;
   int depth;
} compile_ctx_t;

static node_t *compile_filter(compile_ctx_t *cc, const bson_t *filter, bool top,
                              flora_error_t *error);
static node_t *compile_ops(compile_ctx_t *cc, const char *path, const bson_t *ops,
                           flora_error_t *error);

static bool
bad(flora_error_t *error, const char *fmt, const char *arg)
{
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, fmt, arg);
   return false;
}

/* Makes n a field-level predicate on path (when path is not NULL). */
static bool
attach_path(node_t *n, const char *path, flora_error_t *error)
{
   if (!path) {
      return true;
   }
   if (!flora__path_init(&n->path, path, error)) {
      return false;
   }
   n->has_path = true;
   return true;
}

static node_t *
leaf(op_t op, const char *path, flora_error_t *error)
{
   node_t *n = node_new(op);

   if (!attach_path(n, path, error)) {
      node_destroy(n);
      return NULL;
   }
   return n;
}

static node_t *
wrap_not(node_t *kid)
{
   node_t *n;

   if (!kid) {
      return NULL;
   }
   n = node_new(OP_NOT);
   node_add(n, kid);
   return n;
}

static bool
is_operator_doc(const bson_value_t *v)
{
   bson_t d;
   bson_iter_t it;

   if (v->value_type != BSON_TYPE_DOCUMENT || !flora__value_as_doc(v, &d) ||
       !bson_iter_init(&it, &d) || !bson_iter_next(&it)) {
      return false;
   }
   /* a DBRef ({$ref, $id[, $db]}) is a value, not operators */
   return bson_iter_key(&it)[0] == '$' && strcmp(bson_iter_key(&it), "$ref") != 0 &&
          strcmp(bson_iter_key(&it), "$id") != 0 && strcmp(bson_iter_key(&it), "$db") != 0;
}

static node_t *
compile_regex(const char *path, const char *pattern, const char *options, flora_error_t *error)
{
   node_t *n = leaf(OP_REGEX, path, error);

   if (!n) {
      return NULL;
   }
   n->regexes = bson_malloc0(sizeof *n->regexes);
   if (!flora__regex_init(&n->regexes[0], pattern, options, error)) {
      node_destroy(n);
      return NULL;
   }
   n->nregexes = 1;
   return n;
}

static node_t *
compile_eq(const char *path, const bson_value_t *v, flora_error_t *error)
{
   node_t *n;

   if (v->value_type == BSON_TYPE_UNDEFINED) {
      bad(error, "%s", "cannot compare to undefined");
      return NULL;
   }
   if (v->value_type == BSON_TYPE_REGEX) {
      return compile_regex(path, v->value.v_regex.regex, v->value.v_regex.options, error);
   }
   n = leaf(OP_EQ, path, error);
   if (n) {
      bson_value_copy(v, &n->value);
      n->has_value = true;
   }
   return n;
}

static node_t *
compile_in(const char *path, const char *name, const bson_value_t *arg, flora_error_t *error)
{
   bson_t arr;
   bson_iter_t it;
   node_t *n;

   if (arg->value_type != BSON_TYPE_ARRAY || !flora__value_as_doc(arg, &arr)) {
      bad(error, "%s needs an array", name);
      return NULL;
   }
   n = leaf(OP_IN, path, error);
   if (!n) {
      return NULL;
   }
   n->values = bson_malloc0((bson_count_keys(&arr) + 1) * sizeof *n->values);
   n->regexes = bson_malloc0((bson_count_keys(&arr) + 1) * sizeof *n->regexes);
   bson_iter_init(&it, &arr);
   while (bson_iter_next(&it)) {
      const bson_value_t *v = bson_iter_value(&it);

      if (is_operator_doc(v)) {
         bad(error, "cannot nest $ under %s", name);
         node_destroy(n);
         return NULL;
      }
      if (v->value_type == BSON_TYPE_REGEX) {
         if (!flora__regex_init(&n->regexes[n->nregexes], v->value.v_regex.regex,
                                v->value.v_regex.options, error)) {
            node_destroy(n);
            return NULL;
         }
         n->nregexes++;
         continue;
      }
      if (v->value_type == BSON_TYPE_UNDEFINED) {
         bad(error, "%s", "cannot compare to undefined");
         node_destroy(n);
         return NULL;
      }
      if (v->value_type == BSON_TYPE_NULL) {
         n->in_has_null = true;
      }
      bson_value_copy(v, &n->values[n->nvalues++]);
   }
   qsort(n->values, n->nvalues, sizeof *n->values, value_cmp_qsort);
   return n;
}

static const struct {
   const char *name;
   int code;
} type_aliases[] = {
   {"double", 1},   {"string", 2},     {"object", 3},     {"array", 4},
   {"binData", 5},  {"undefined", 6},  {"objectId", 7},   {"bool", 8},
   {"date", 9},     {"null", 10},      {"regex", 11},     {"dbPointer", 12},
   {"javascript", 13}, {"symbol", 14}, {"javascriptWithScope", 15},
   {"int", 16},     {"timestamp", 17}, {"long", 18},      {"decimal", 19},
   {"minKey", -1},  {"maxKey", 127},
};

static bool
add_type(node_t *n, const bson_value_t *v, flora_error_t *error)
{
   int64_t code;

   if (v->value_type == BSON_TYPE_UTF8) {
      if (strcmp(v->value.v_utf8.str, "number") == 0) {
         n->type_number = true;
         return true;
      }
      for (size_t i = 0; i < sizeof type_aliases / sizeof type_aliases[0]; i++) {
         if (strcmp(v->value.v_utf8.str, type_aliases[i].name) == 0) {
            n->type_mask |= type_bit((bson_type_t) (type_aliases[i].code == -1    ? BSON_TYPE_MINKEY
                                                    : type_aliases[i].code == 127 ? BSON_TYPE_MAXKEY
                                                                                  : type_aliases[i].code));
            return true;
         }
      }
      return bad(error, "Unknown type name alias: %s", v->value.v_utf8.str);
   }
   if (!flora__value_is_number(v) || !flora__number_as_int64(v, &code)) {
      return bad(error, "%s", "type must be represented as a number or a string");
   }
   if (code == -1 || code == 127 || (code >= 1 && code <= 19)) {
      n->type_mask |= type_bit(code == -1    ? BSON_TYPE_MINKEY
                               : code == 127 ? BSON_TYPE_MAXKEY
                                             : (bson_type_t) code);
      return true;
   }
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                   "Invalid numerical type code: %lld", (long long) code);
   return false;
}

static node_t *
compile_type(const char *path, const bson_value_t *arg, flora_error_t *error)
{
   node_t *n = leaf(OP_TYPE, path, error);
   bson_t arr;
   bson_iter_t it;

   if (!n) {
      return NULL;
   }
   if (arg->value_type == BSON_TYPE_ARRAY && flora__value_as_doc(arg, &arr)) {
      bson_iter_init(&it, &arr);
      while (bson_iter_next(&it)) {
         if (!add_type(n, bson_iter_value(&it), error)) {
            node_destroy(n);
            return NULL;
         }
      }
      return n;
   }
   if (!add_type(n, arg, error)) {
      node_destroy(n);
      return NULL;
   }
   return n;
}

static node_t *
compile_mod(const char *path, const bson_value_t *arg, flora_error_t *error)
{
   bson_t arr;
   bson_iter_t it;
   int64_t parts[2];
   int count = 0;
   node_t *n;

   if (arg->value_type != BSON_TYPE_ARRAY || !flora__value_as_doc(arg, &arr)) {
      bad(error, "%s", "malformed mod, needs to be an array");
      return NULL;
   }
   bson_iter_init(&it, &arr);
   while (bson_iter_next(&it)) {
      const bson_value_t *v = bson_iter_value(&it);

      if (count == 2) {
         bad(error, "%s", "malformed mod, too many elements");
         return NULL;
      }
      if (!flora__value_is_number(v)) {
         bad(error, "%s",
             count == 0 ? "malformed mod, divisor not a number"
                        : "malformed mod, remainder not a number");
         return NULL;
      }
      if (!flora__number_trunc_int64(v, &parts[count])) {
         bad(error, "%s",
             count == 0 ? "malformed mod, divisor value is invalid"
                        : "malformed mod, remainder value is invalid");
         return NULL;
      }
      count++;
   }
   if (count < 2) {
      bad(error, "%s", "malformed mod, not enough elements");
      return NULL;
   }
   if (parts[0] == 0) {
      bad(error, "%s", "divisor cannot be 0");
      return NULL;
   }
   n = leaf(OP_MOD, path, error);
   if (n) {
      n->a = parts[0];
      n->b = parts[1];
   }
   return n;
}

static node_t *
compile_size(const char *path, const bson_value_t *arg, flora_error_t *error)
{
   int64_t size;
   node_t *n;

   if (!flora__value_is_number(arg)) {
      bad(error, "%s", "$size needs a number");
      return NULL;
   }
   if (!flora__number_as_int64(arg, &size)) {
      bad(error, "%s", "$size must be a whole number");
      return NULL;
   }
   if (size < 0) {
      bad(error, "%s", "$size may not be negative");
      return NULL;
   }
   n = leaf(OP_SIZE, path, error);
   if (n) {
      n->a = size;
   }
   return n;
}

/* An $elemMatch argument is a value form ({$gt: 1, ...}) when its first field is an
 * operator other than the logical ones, an object form (a filter over the elements)
 * otherwise (server: ElemMatchObjectMatchExpression / ElemMatchValueMatchExpression). */
static node_t *
compile_elem_match(compile_ctx_t *cc, const char *path, const bson_value_t *arg,
                   flora_error_t *error)
{
   bson_t sub;
   bson_iter_t it;
   node_t *n, *kid;
   bool value_form = false;

   if (arg->value_type != BSON_TYPE_DOCUMENT || !flora__value_as_doc(arg, &sub)) {
      bad(error, "%s", "$elemMatch needs an Object");
      return NULL;
   }
   if (bson_iter_init(&it, &sub) && bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);

      value_form = k[0] == '$' && strcmp(k, "$and") != 0 && strcmp(k, "$or") != 0 &&
                   strcmp(k, "$nor") != 0 && strcmp(k, "$comment") != 0;
   }
   cc->depth++;
   kid = value_form ? compile_ops(cc, NULL, &sub, error) : compile_filter(cc, &sub, false, error);
   cc->depth--;
   if (!kid) {
      return NULL;
   }
   n = leaf(value_form ? OP_ELEMMATCH_VAL : OP_ELEMMATCH_OBJ, path, error);
   if (!n) {
      node_destroy(kid);
      return NULL;
   }
   node_add(n, kid);
   return n;
}

static node_t *
compile_all(compile_ctx_t *cc, const char *path, const bson_value_t *arg, flora_error_t *error)
{
   bson_t arr;
   bson_iter_t it;
   node_t *n;

   if (arg->value_type != BSON_TYPE_ARRAY || !flora__value_as_doc(arg, &arr)) {
      bad(error, "%s", "$all needs an array");
      return NULL;
   }
   if (bson_count_keys(&arr) == 0) {
      return node_new(OP_FALSE);
   }
   n = node_new(OP_AND);
   bson_iter_init(&it, &arr);
   while (bson_iter_next(&it)) {
      const bson_value_t *v = bson_iter_value(&it);
      node_t *kid = NULL;
      bson_t d;
      bson_iter_t first;

      if (v->value_type == BSON_TYPE_DOCUMENT && flora__value_as_doc(v, &d) &&
          bson_iter_init(&first, &d) && bson_iter_next(&first) &&
          bson_iter_key(&first)[0] == '$') {
         if (strcmp(bson_iter_key(&first), "$elemMatch") != 0) {
            bad(error, "%s", "no $ expressions in $all");
            node_destroy(n);
            return NULL;
         }
         kid = compile_elem_match(cc, path, bson_iter_value(&first), error);
      } else {
         kid = compile_eq(path, v, error);
      }
      if (!kid) {
         node_destroy(n);
         return NULL;
      }
      node_add(n, kid);
   }
   return n;
}

static bool
is_unsupported_op(const char *name)
{
   static const char *const names[] = {
      "$where",        "$expr",          "$jsonSchema",    "$geoWithin",   "$geoIntersects",
      "$near",         "$nearSphere",    "$within",        "$box",         "$center",
      "$centerSphere", "$polygon",       "$geometry",      "$maxDistance", "$minDistance",
      "$bitsAllSet",   "$bitsAllClear",  "$bitsAnySet",    "$bitsAnyClear", "$sampleRate",
      "$uniqueDocs",   "$alwaysTrue",    "$alwaysFalse",
   };

   for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      if (strcmp(name, names[i]) == 0) {
         return true;
      }
   }
   return false;
}

static node_t *
unsupported(const char *name, flora_error_t *error)
{
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                   "unsupported query operator %s", name);
   return NULL;
}

/* {$regex: ..., $options: ...} within an operator document. */
static node_t *
compile_regex_op(const char *path, const bson_t *ops, flora_error_t *error)
{
   bson_iter_t it;
   const bson_value_t *re = NULL;
   const char *options = NULL;

   bson_iter_init(&it, ops);
   while (bson_iter_next(&it)) {
      if (strcmp(bson_iter_key(&it), "$regex") == 0) {
         re = bson_iter_value(&it);
      } else if (strcmp(bson_iter_key(&it), "$options") == 0) {
         if (!BSON_ITER_HOLDS_UTF8(&it)) {
            bad(error, "%s", "$options has to be a string");
            return NULL;
         }
         options = bson_iter_utf8(&it, NULL);
      }
   }
   if (!re) {
      bad(error, "%s", "$options needs a $regex");
      return NULL;
   }
   if (re->value_type == BSON_TYPE_REGEX) {
      const char *own = re->value.v_regex.options ? re->value.v_regex.options : "";

      if (options && options[0] && own[0]) {
         flora_error_set(error, FLORA_DOMAIN_STORE, ERR_REGEX_OPTIONS_TWICE,
                         "options set in both $regex and $options");
         return NULL;
      }
      return compile_regex(path, re->value.v_regex.regex, options && options[0] ? options : own,
                           error);
   }
   if (re->value_type != BSON_TYPE_UTF8) {
      bad(error, "%s", "$regex has to be a string");
      return NULL;
   }
   if (strlen(re->value.v_utf8.str) != re->value.v_utf8.len) {
      bad(error, "%s", "Regular expression cannot contain an embedded null byte");
      return NULL;
   }
   return compile_regex(path, re->value.v_utf8.str, options, error);
}

/* One operator of an operator document. path NULL: a predicate on one value (inside
 * $elemMatch's value form). */
static node_t *
compile_op(compile_ctx_t *cc, const char *path, const char *name, const bson_value_t *arg,
           const bson_t *ops, bool *regex_done, flora_error_t *error)
{
   if ((strcmp(name, "$eq") == 0 || strcmp(name, "$ne") == 0 || strcmp(name, "$gt") == 0 ||
        strcmp(name, "$gte") == 0 || strcmp(name, "$lt") == 0 || strcmp(name, "$lte") == 0) &&
       arg->value_type == BSON_TYPE_UNDEFINED) {
      bad(error, "%s", "cannot compare to undefined");
      return NULL;
   }
   if (strcmp(name, "$eq") == 0) {
      node_t *n = leaf(OP_EQ, path, error);

      if (n) {
         bson_value_copy(arg, &n->value);
         n->has_value = true;
      }
      return n;
   }
   if (strcmp(name, "$ne") == 0) {
      node_t *n = leaf(OP_EQ, path, error);

      if (n) {
         bson_value_copy(arg, &n->value);
         n->has_value = true;
      }
      return wrap_not(n);
   }
   if (strcmp(name, "$gt") == 0 || strcmp(name, "$gte") == 0 || strcmp(name, "$lt") == 0 ||
       strcmp(name, "$lte") == 0) {
      op_t op = name[1] == 'g' ? (name[3] == 'e' ? OP_GTE : OP_GT)
                               : (name[3] == 'e' ? OP_LTE : OP_LT);
      node_t *n;

      if (arg->value_type == BSON_TYPE_REGEX) {
         bad(error, "%s can't have regex as arg", name);
         return NULL;
      }
      n = leaf(op, path, error);
      if (n) {
         bson_value_copy(arg, &n->value);
         n->has_value = true;
      }
      return n;
   }
   if (strcmp(name, "$in") == 0) {
      return compile_in(path, name, arg, error);
   }
   if (strcmp(name, "$nin") == 0) {
      return wrap_not(compile_in(path, name, arg, error));
   }
   if (strcmp(name, "$exists") == 0) {
      node_t *n = leaf(OP_EXISTS, path, error);
      bool truthy;

      if (!n) {
         return NULL;
      }
      /* MongoDB uses the argument's truth value. */
      switch (arg->value_type) {
      case BSON_TYPE_BOOL:
         truthy = arg->value.v_bool;
         break;
      case BSON_TYPE_INT32:
      case BSON_TYPE_INT64:
      case BSON_TYPE_DOUBLE:
      case BSON_TYPE_DECIMAL128: {
         bson_value_t zero = {.value_type = BSON_TYPE_INT32};

         truthy = flora__number_compare(arg, &zero) != 0;
         break;
      }
      case BSON_TYPE_NULL:
      case BSON_TYPE_UNDEFINED:
      case BSON_TYPE_EOD:
         truthy = false;
         break;
      default:
         truthy = true;
         break;
      }
      return truthy ? n : wrap_not(n);
   }
   if (strcmp(name, "$type") == 0) {
      return compile_type(path, arg, error);
   }
   if (strcmp(name, "$regex") == 0 || strcmp(name, "$options") == 0) {
      if (*regex_done) {
         return node_new(OP_TRUE);
      }
      *regex_done = true;
      return compile_regex_op(path, ops, error);
   }
   if (strcmp(name, "$size") == 0) {
      return compile_size(path, arg, error);
   }
   if (strcmp(name, "$mod") == 0) {
      return compile_mod(path, arg, error);
   }
   if (strcmp(name, "$elemMatch") == 0) {
      return compile_elem_match(cc, path, arg, error);
   }
   if (strcmp(name, "$all") == 0) {
      return compile_all(cc, path, arg, error);
   }
   if (strcmp(name, "$not") == 0) {
      bson_t sub;
      node_t *kid;

      if (arg->value_type == BSON_TYPE_REGEX) {
         return wrap_not(
            compile_regex(path, arg->value.v_regex.regex, arg->value.v_regex.options, error));
      }
      if (arg->value_type != BSON_TYPE_DOCUMENT || !flora__value_as_doc(arg, &sub)) {
         bad(error, "%s", "$not needs a regex or a document");
         return NULL;
      }
      if (bson_empty(&sub)) {
         bad(error, "%s", "$not cannot be empty");
         return NULL;
      }
      if (!is_operator_doc(arg)) {
         bad(error, "%s", "$not needs a regex or a document of operators");
         return NULL;
      }
      kid = compile_ops(cc, path, &sub, error);
      return wrap_not(kid);
   }
   if (strcmp(name, "$comment") == 0 && path == NULL) {
      return node_new(OP_TRUE);
   }
   if (is_unsupported_op(name)) {
      return unsupported(name, error);
   }
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "unknown operator: %s",
                   name);
   return NULL;
}

/* An operator document {$gt: 1, $lt: 5} on path (or on one value when path is NULL). */
static node_t *
compile_ops(compile_ctx_t *cc, const char *path, const bson_t *ops, flora_error_t *error)
{
   bson_iter_t it;
   node_t *all = node_new(OP_AND);
   bool regex_done = false;

   if (cc->depth > 100) {
      bad(error, "%s", "exceeded depth limit of 100 when parsing the filter");
      node_destroy(all);
      return NULL;
   }
   bson_iter_init(&it, ops);
   while (bson_iter_next(&it)) {
      const char *name = bson_iter_key(&it);
      node_t *kid;

      if (name[0] != '$') {
         bad(error, "unknown operator: %s", name);
         node_destroy(all);
         return NULL;
      }
      cc->depth++;
      kid = compile_op(cc, path, name, bson_iter_value(&it), ops, &regex_done, error);
      cc->depth--;
      if (!kid) {
         node_destroy(all);
         return NULL;
      }
      node_add(all, kid);
   }
   if (all->nkids == 1) {
      node_t *only = all->kids[0];

      all->nkids = 0;
      node_destroy(all);
      return only;
   }
   return all;
}

static node_t *
compile_logical(compile_ctx_t *cc, op_t op, const char *name, const bson_value_t *arg,
                flora_error_t *error)
{
   bson_t arr;
   bson_iter_t it;
   node_t *n;

   if (arg->value_type != BSON_TYPE_ARRAY || !flora__value_as_doc(arg, &arr) ||
       bson_empty(&arr)) {
      bad(error, "%s must be a nonempty array", name);
      return NULL;
   }
   n = node_new(op);
   bson_iter_init(&it, &arr);
   while (bson_iter_next(&it)) {
      bson_t sub;
      node_t *kid;

      if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !flora__value_as_doc(bson_iter_value(&it), &sub)) {
         bad(error, "%s", "$or/$and/$nor entries need to be full objects");
         node_destroy(n);
         return NULL;
      }
      cc->depth++;
      kid = compile_filter(cc, &sub, op == OP_AND && cc->depth == 1, error);
      cc->depth--;
      if (!kid) {
         node_destroy(n);
         return NULL;
      }
      node_add(n, kid);
   }
   return n;
}

static node_t *
compile_text(compile_ctx_t *cc, const bson_value_t *arg, bool top, flora_error_t *error)
{
   bson_t spec;
   bson_iter_t it;
   const char *search = NULL;

   if (!top) {
      bad(error, "%s", "$text is only allowed at the top level of the filter or in a top-level $and");
      return NULL;
   }
   if (cc->text_search) {
      bad(error, "%s", "Too many text expressions");
      return NULL;
   }
   if (arg->value_type != BSON_TYPE_DOCUMENT || !flora__value_as_doc(arg, &spec)) {
      bad(error, "%s", "$text expects an object");
      return NULL;
   }
   bson_iter_init(&it, &spec);
   while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);

      if (strcmp(k, "$search") == 0) {
         if (!BSON_ITER_HOLDS_UTF8(&it)) {
            bad(error, "%s", "$search requires a string value");
            return NULL;
         }
         search = bson_iter_utf8(&it, NULL);
      } else if (strcmp(k, "$language") == 0) {
         if (!BSON_ITER_HOLDS_UTF8(&it)) {
            bad(error, "%s", "$language requires a string value");
            return NULL;
         }
      } else if (strcmp(k, "$caseSensitive") == 0 || strcmp(k, "$diacriticSensitive") == 0) {
         if (!BSON_ITER_HOLDS_BOOL(&it)) {
            bad(error, "%s requires a boolean value", k);
            return NULL;
         }
      } else {
         bad(error, "extra fields in $text: %s", k);
         return NULL;
      }
   }
   if (!search) {
      bad(error, "%s", "$search required in $text");
      return NULL;
   }
   cc->text_search = bson_strdup(search);
   return node_new(OP_TRUE);
}

static node_t *
compile_filter(compile_ctx_t *cc, const bson_t *filter, bool top, flora_error_t *error)
{
   bson_iter_t it;
   node_t *all = node_new(OP_AND);

   if (cc->depth > 100) {
      bad(error, "%s", "exceeded depth limit of 100 when parsing the filter");
      node_destroy(all);
      return NULL;
   }
   if (!bson_iter_init(&it, filter)) {
      bad(error, "%s", "corrupt BSON filter");
      node_destroy(all);
      return NULL;
   }
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      const bson_value_t *v = bson_iter_value(&it);
      node_t *kid = NULL;

      if (key[0] == '$') {
         if (strcmp(key, "$and") == 0) {
            kid = compile_logical(cc, OP_AND, key, v, error);
         } else if (strcmp(key, "$or") == 0) {
            kid = compile_logical(cc, OP_OR, key, v, error);
         } else if (strcmp(key, "$nor") == 0) {
            kid = compile_logical(cc, OP_NOR, key, v, error);
         } else if (strcmp(key, "$comment") == 0) {
            kid = node_new(OP_TRUE);
         } else if (strcmp(key, "$text") == 0) {
            kid = compile_text(cc, v, top, error);
         } else if (is_unsupported_op(key)) {
            kid = unsupported(key, error);
         } else {
            bad(error, "unknown top level operator: %s", key);
         }
      } else if (is_operator_doc(v)) {
         bson_t ops;

         flora__value_as_doc(v, &ops);
         kid = compile_ops(cc, key, &ops, error);
      } else {
         kid = compile_eq(key, v, error);
      }
      if (!kid) {
         node_destroy(all);
         return NULL;
      }
      node_add(all, kid);
   }
   return all;
}

flora_matcher_t *
flora_matcher_new(const bson_t *filter, flora_error_t *error)
{
   compile_ctx_t cc = {NULL, 0};
   flora_matcher_t *m;
   node_t *root;

   FLORA_ASSERT_ARG(filter);
   root = compile_filter(&cc, filter, true, error);
   if (!root) {
      bson_free(cc.text_search);
      return NULL;
   }
   m = bson_malloc0(sizeof *m);
   m->root = root;
   m->text_search = cc.text_search;
   return m;
}

void
flora_matcher_destroy(flora_matcher_t *matcher)
{
   if (!matcher) {
      return;
   }
   node_destroy(matcher->root);
   bson_free(matcher->text_search);
   bson_free(matcher);
}

bool
flora_matcher_match(const flora_matcher_t *matcher, const bson_t *doc, int *first_array_index)
{
   int index = -1;
   bool ok;

   FLORA_ASSERT_ARG(matcher);
   FLORA_ASSERT_ARG(doc);
   ok = match_doc(matcher->root, doc, first_array_index ? &index : NULL);
   if (first_array_index) {
      *first_array_index = ok ? index : -1;
   }
   return ok;
}

const char *
flora_matcher_text_search(const flora_matcher_t *matcher)
{
   FLORA_ASSERT_ARG(matcher);
   return matcher->text_search;
}
