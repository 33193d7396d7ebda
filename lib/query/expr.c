/* The aggregation expression language: compile once into a tree, evaluate many times.
 *
 * Semantics follow the MongoDB manual, "Aggregation Pipeline Operators"
 * (www.mongodb.com/docs/manual/reference/operator/aggregation/) and the behaviour of
 * mongod's ExpressionFieldPath/ExpressionAdd/... (null or missing arithmetic operands give
 * null; int32 results that overflow widen to int64, int64 ones to double; decimal128 wins
 * over every other numeric type). Decimal128 arithmetic uses Intel's decimal
 * floating-point library (libbidgcc, the implementation mongod itself uses), so results
 * keep MongoDB's exponents ("42.13" + 10 = "52.13", "-0.0" + 10 = "10.0"). Named time
 * zones come from ICU's time zone database (thread-safe, unlike TZ + localtime_r). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bid_conf.h>
#include <bid_functions.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "flora/query.h"
#include "query/expr_private.h"
#include "query/query_private.h"

#define MAX_VARS 64
#define VAR_ROOT 0
#define VAR_NOW (-2)
#define VAR_REMOVE (-3)

enum kind { K_LITERAL, K_PATH, K_OBJECT, K_ARRAY, K_OP };

enum op {
   OP_ADD, OP_SUBTRACT, OP_MULTIPLY, OP_DIVIDE, OP_MOD, OP_ABS, OP_CEIL, OP_FLOOR, OP_ROUND,
   OP_TRUNC, OP_EQ, OP_NE, OP_GT, OP_GTE, OP_LT, OP_LTE, OP_CMP, OP_AND, OP_OR, OP_NOT,
   OP_COND, OP_IFNULL, OP_SWITCH, OP_CONCAT, OP_TOLOWER, OP_TOUPPER, OP_SUBSTRCP,
   OP_SUBSTRBYTES, OP_STRLENCP, OP_STRLENBYTES, OP_SPLIT, OP_TRIM, OP_LTRIM, OP_RTRIM,
   OP_SIZE, OP_ARRAYELEMAT, OP_FIRST, OP_LAST, OP_IN, OP_FILTER, OP_MAP, OP_SLICE,
   OP_ISARRAY, OP_REDUCE, OP_CONCATARRAYS, OP_REVERSEARRAY, OP_TOSTRING, OP_TOINT, OP_TOLONG,
   OP_TO_DOUBLE, OP_TO_DECIMAL, OP_TOBOOL, OP_TYPE, OP_ISNUMBER, OP_YEAR, OP_MONTH,
   OP_DAYOFMONTH, OP_HOUR, OP_MINUTE, OP_SECOND, OP_MILLISECOND, OP_DAYOFWEEK, OP_DAYOFYEAR,
   OP_DATETOSTRING, OP_MERGEOBJECTS, OP_OBJECTTOARRAY, OP_ARRAYTOOBJECT, OP_LET, OP_SUM,
   OP_AVG, OP_MIN, OP_MAX, OP_WEEK, OP_ISOWEEK, OP_ISOWEEKYEAR, OP_ISODAYOFWEEK, OP_SQRT,
   OP_POW, OP_EXP, OP_LN, OP_LOG10, OP_LOG, OP_SETUNION, OP_SETINTERSECTION, OP_SETDIFFERENCE,
   OP_SETEQUALS, OP_SETISSUBSET, OP_ANYELEMENTTRUE, OP_ALLELEMENTSTRUE, OP_INDEXOFARRAY,
   OP_RANGE, OP_STRCASECMP,
};

/* How an operator's argument is written. */
enum form {
   F_ARGS,     /* {$op: [a, b, ...]} or {$op: a} */
   F_SPECIAL,  /* named arguments, compiled by its own function */
};

typedef struct op_info {
   const char *name;
   enum op op;
   enum form form;
   int min, max; /* argument counts for F_ARGS; max -1 = unbounded */
} op_info_t;

static const op_info_t OPS[] = {
   {"$add", OP_ADD, F_ARGS, 0, -1},
   {"$subtract", OP_SUBTRACT, F_ARGS, 2, 2},
   {"$multiply", OP_MULTIPLY, F_ARGS, 0, -1},
   {"$divide", OP_DIVIDE, F_ARGS, 2, 2},
   {"$mod", OP_MOD, F_ARGS, 2, 2},
   {"$abs", OP_ABS, F_ARGS, 1, 1},
   {"$ceil", OP_CEIL, F_ARGS, 1, 1},
   {"$floor", OP_FLOOR, F_ARGS, 1, 1},
   {"$round", OP_ROUND, F_ARGS, 1, 2},
   {"$trunc", OP_TRUNC, F_ARGS, 1, 2},
   {"$eq", OP_EQ, F_ARGS, 2, 2},
   {"$ne", OP_NE, F_ARGS, 2, 2},
   {"$gt", OP_GT, F_ARGS, 2, 2},
   {"$gte", OP_GTE, F_ARGS, 2, 2},
   {"$lt", OP_LT, F_ARGS, 2, 2},
   {"$lte", OP_LTE, F_ARGS, 2, 2},
   {"$cmp", OP_CMP, F_ARGS, 2, 2},
   {"$and", OP_AND, F_ARGS, 0, -1},
   {"$or", OP_OR, F_ARGS, 0, -1},
   {"$not", OP_NOT, F_ARGS, 1, 1},
   {"$cond", OP_COND, F_SPECIAL, 3, 3},
   {"$ifNull", OP_IFNULL, F_ARGS, 2, -1},
   {"$switch", OP_SWITCH, F_SPECIAL, 0, 0},
   {"$concat", OP_CONCAT, F_ARGS, 0, -1},
   {"$toLower", OP_TOLOWER, F_ARGS, 1, 1},
   {"$toUpper", OP_TOUPPER, F_ARGS, 1, 1},
   {"$substrCP", OP_SUBSTRCP, F_ARGS, 3, 3},
   {"$substrBytes", OP_SUBSTRBYTES, F_ARGS, 3, 3},
   {"$substr", OP_SUBSTRBYTES, F_ARGS, 3, 3},
   {"$strLenCP", OP_STRLENCP, F_ARGS, 1, 1},
   {"$strLenBytes", OP_STRLENBYTES, F_ARGS, 1, 1},
   {"$split", OP_SPLIT, F_ARGS, 2, 2},
   {"$trim", OP_TRIM, F_SPECIAL, 0, 0},
   {"$ltrim", OP_LTRIM, F_SPECIAL, 0, 0},
   {"$rtrim", OP_RTRIM, F_SPECIAL, 0, 0},
   {"$size", OP_SIZE, F_ARGS, 1, 1},
   {"$arrayElemAt", OP_ARRAYELEMAT, F_ARGS, 2, 2},
   {"$first", OP_FIRST, F_ARGS, 1, 1},
   {"$last", OP_LAST, F_ARGS, 1, 1},
   {"$in", OP_IN, F_ARGS, 2, 2},
   {"$filter", OP_FILTER, F_SPECIAL, 0, 0},
   {"$map", OP_MAP, F_SPECIAL, 0, 0},
   {"$slice", OP_SLICE, F_ARGS, 2, 3},
   {"$isArray", OP_ISARRAY, F_ARGS, 1, 1},
   {"$reduce", OP_REDUCE, F_SPECIAL, 0, 0},
   {"$concatArrays", OP_CONCATARRAYS, F_ARGS, 0, -1},
   {"$reverseArray", OP_REVERSEARRAY, F_ARGS, 1, 1},
   {"$toString", OP_TOSTRING, F_ARGS, 1, 1},
   {"$toInt", OP_TOINT, F_ARGS, 1, 1},
   {"$toLong", OP_TOLONG, F_ARGS, 1, 1},
   {"$toDouble", OP_TO_DOUBLE, F_ARGS, 1, 1},
   {"$toDecimal", OP_TO_DECIMAL, F_ARGS, 1, 1},
   {"$toBool", OP_TOBOOL, F_ARGS, 1, 1},
   {"$type", OP_TYPE, F_ARGS, 1, 1},
   {"$isNumber", OP_ISNUMBER, F_ARGS, 1, 1},
   {"$year", OP_YEAR, F_SPECIAL, 0, 0},
   {"$month", OP_MONTH, F_SPECIAL, 0, 0},
   {"$dayOfMonth", OP_DAYOFMONTH, F_SPECIAL, 0, 0},
   {"$hour", OP_HOUR, F_SPECIAL, 0, 0},
   {"$minute", OP_MINUTE, F_SPECIAL, 0, 0},
   {"$second", OP_SECOND, F_SPECIAL, 0, 0},
   {"$millisecond", OP_MILLISECOND, F_SPECIAL, 0, 0},
   {"$dayOfWeek", OP_DAYOFWEEK, F_SPECIAL, 0, 0},
   {"$dayOfYear", OP_DAYOFYEAR, F_SPECIAL, 0, 0},
   {"$week", OP_WEEK, F_SPECIAL, 0, 0},
   {"$isoWeek", OP_ISOWEEK, F_SPECIAL, 0, 0},
   {"$isoWeekYear", OP_ISOWEEKYEAR, F_SPECIAL, 0, 0},
   {"$isoDayOfWeek", OP_ISODAYOFWEEK, F_SPECIAL, 0, 0},
   {"$sqrt", OP_SQRT, F_ARGS, 1, 1},
   {"$pow", OP_POW, F_ARGS, 2, 2},
   {"$exp", OP_EXP, F_ARGS, 1, 1},
   {"$ln", OP_LN, F_ARGS, 1, 1},
   {"$log10", OP_LOG10, F_ARGS, 1, 1},
   {"$log", OP_LOG, F_ARGS, 2, 2},
   {"$setUnion", OP_SETUNION, F_ARGS, 0, -1},
   {"$setIntersection", OP_SETINTERSECTION, F_ARGS, 0, -1},
   {"$setDifference", OP_SETDIFFERENCE, F_ARGS, 2, 2},
   {"$setEquals", OP_SETEQUALS, F_ARGS, 2, -1},
   {"$setIsSubset", OP_SETISSUBSET, F_ARGS, 2, 2},
   {"$anyElementTrue", OP_ANYELEMENTTRUE, F_ARGS, 1, 1},
   {"$allElementsTrue", OP_ALLELEMENTSTRUE, F_ARGS, 1, 1},
   {"$indexOfArray", OP_INDEXOFARRAY, F_ARGS, 2, 4},
   {"$range", OP_RANGE, F_ARGS, 2, 3},
   {"$strcasecmp", OP_STRCASECMP, F_ARGS, 2, 2},
   {"$dateToString", OP_DATETOSTRING, F_SPECIAL, 0, 0},
   {"$mergeObjects", OP_MERGEOBJECTS, F_ARGS, 0, -1},
   {"$objectToArray", OP_OBJECTTOARRAY, F_ARGS, 1, 1},
   {"$arrayToObject", OP_ARRAYTOOBJECT, F_ARGS, 1, 1},
   {"$let", OP_LET, F_SPECIAL, 0, 0},
   {"$sum", OP_SUM, F_ARGS, 0, -1},
   {"$avg", OP_AVG, F_ARGS, 0, -1},
   {"$min", OP_MIN, F_ARGS, 0, -1},
   {"$max", OP_MAX, F_ARGS, 0, -1},
};

struct flora__expr {
   enum kind kind;
   enum op op;
   const char *op_name;
   bson_value_t literal;  /* K_LITERAL */
   int var;               /* K_PATH: VAR_ROOT, VAR_NOW, VAR_REMOVE or a slot >= 1 */
   char **parts;          /* K_PATH: components after the variable */
   size_t nparts;
   flora__expr_t **args;  /* K_OBJECT values, K_ARRAY elements, K_OP arguments (NULL =
                           * an absent optional argument) */
   size_t nargs;
   char **names;          /* K_OBJECT field names */
   int slot, slot2;       /* variables bound by $filter/$map/$reduce/$let */
};

typedef struct scope {
   const char *names[MAX_VARS];
   size_t n;
} scope_t;

struct flora__expr_cache {
   char zone[128];  /* the zone of cal, "" when none */
   UCalendar *cal;
};

typedef struct ctx {
   const bson_value_t *vars[MAX_VARS + 1];
   int64_t now_ms;
   flora__expr_cache_t *cache;
} ctx_t;

/* ---- small value helpers ------------------------------------------------------------ */

static void
set_missing(bson_value_t *v)
{
   memset(v, 0, sizeof *v);
   v->value_type = BSON_TYPE_EOD;
}

static void
set_null(bson_value_t *v)
{
   memset(v, 0, sizeof *v);
   v->value_type = BSON_TYPE_NULL;
}

static void
set_bool(bson_value_t *v, bool b)
{
   memset(v, 0, sizeof *v);
   v->value_type = BSON_TYPE_BOOL;
   v->value.v_bool = b;
}

static void
set_int32(bson_value_t *v, int32_t i)
{
   memset(v, 0, sizeof *v);
   v->value_type = BSON_TYPE_INT32;
   v->value.v_int32 = i;
}

static void
set_int64(bson_value_t *v, int64_t i)
{
   memset(v, 0, sizeof *v);
   v->value_type = BSON_TYPE_INT64;
   v->value.v_int64 = i;
}

static void
set_int_or_long(bson_value_t *v, int64_t i)
{
   if (i >= INT32_MIN && i <= INT32_MAX) {
      set_int32(v, (int32_t) i);
   } else {
      set_int64(v, i);
   }
}

static void
set_double(bson_value_t *v, double d)
{
   memset(v, 0, sizeof *v);
   v->value_type = BSON_TYPE_DOUBLE;
   v->value.v_double = d;
}

static void
set_date(bson_value_t *v, int64_t ms)
{
   memset(v, 0, sizeof *v);
   v->value_type = BSON_TYPE_DATE_TIME;
   v->value.v_datetime = ms;
}

static void
set_string_n(bson_value_t *v, const char *s, size_t len)
{
   memset(v, 0, sizeof *v);
   v->value_type = BSON_TYPE_UTF8;
   v->value.v_utf8.str = bson_malloc(len + 1);
   memcpy(v->value.v_utf8.str, s, len);
   v->value.v_utf8.str[len] = '\0';
   v->value.v_utf8.len = (uint32_t) len;
}

static void
set_string(bson_value_t *v, const char *s)
{
   set_string_n(v, s, strlen(s));
}

/* Takes ownership of *b's buffer as a document or array value; b is destroyed. */
static void
set_from_bson(bson_value_t *v, bson_t *b, bool is_array)
{
   uint32_t len = 0;
   uint8_t *data = bson_destroy_with_steal(b, true, &len);

   memset(v, 0, sizeof *v);
   v->value_type = is_array ? BSON_TYPE_ARRAY : BSON_TYPE_DOCUMENT;
   v->value.v_doc.data = data;
   v->value.v_doc.data_len = len;
}

static void
copy_value(bson_value_t *dst, const bson_value_t *src)
{
   if (src->value_type == BSON_TYPE_EOD) {
      set_missing(dst);
   } else {
      bson_value_copy(src, dst);
   }
}

static bool
is_nullish(const bson_value_t *v)
{
   return v->value_type == BSON_TYPE_EOD || v->value_type == BSON_TYPE_NULL ||
          v->value_type == BSON_TYPE_UNDEFINED;
}

static bool
is_array(const bson_value_t *v)
{
   return v->value_type == BSON_TYPE_ARRAY;
}

static bool
is_doc(const bson_value_t *v)
{
   return v->value_type == BSON_TYPE_DOCUMENT;
}

/* A read-only bson_t over a document or array value. */
static bool
value_bson(const bson_value_t *v, bson_t *out)
{
   return bson_init_static(out, v->value.v_doc.data, v->value.v_doc.data_len);
}

static uint32_t
array_len(const bson_value_t *v)
{
   bson_t b;
   bson_iter_t it;
   uint32_t n = 0;

   if (value_bson(v, &b) && bson_iter_init(&it, &b)) {
      while (bson_iter_next(&it)) {
         n++;
      }
   }
   return n;
}

static const char *
type_name(const bson_value_t *v)
{
   if (v->value_type == BSON_TYPE_EOD) {
      return "missing";
   }
   return flora_value_type_name(v->value_type);
}

void
flora__value_append(bson_t *doc, const char *key, int key_len, const bson_value_t *v)
{
   if (v->value_type != BSON_TYPE_EOD) {
      bson_append_value(doc, key, key_len, v);
   }
}

/* Appends v to an array under the next index. Missing becomes null, as MongoDB does for
 * array expressions. */
static void
array_push(bson_t *arr, uint32_t *idx, const bson_value_t *v)
{
   char buf[16];
   const char *key;
   size_t klen = bson_uint32_to_string((*idx)++, &key, buf, sizeof buf);

   if (v->value_type == BSON_TYPE_EOD) {
      bson_append_null(arr, key, (int) klen);
   } else {
      bson_append_value(arr, key, (int) klen, v);
   }
}

int
flora__agg_compare(const bson_value_t *a, const bson_value_t *b)
{
   bool am = a->value_type == BSON_TYPE_EOD, bm = b->value_type == BSON_TYPE_EOD;

   if (am || bm) {
      return am && bm ? 0 : (am ? -1 : 1);
   }
   return flora_value_compare(a, b);
}

bool
flora__agg_truthy(const bson_value_t *v)
{
   switch (v->value_type) {
   case BSON_TYPE_EOD:
   case BSON_TYPE_NULL:
   case BSON_TYPE_UNDEFINED:
      return false;
   case BSON_TYPE_BOOL:
      return v->value.v_bool;
   case BSON_TYPE_INT32:
      return v->value.v_int32 != 0;
   case BSON_TYPE_INT64:
      return v->value.v_int64 != 0;
   case BSON_TYPE_DOUBLE:
      return v->value.v_double != 0.0;
   case BSON_TYPE_DECIMAL128: {
      BID_UINT128 x;
      x.w[0] = v->value.v_decimal128.low;
      x.w[1] = v->value.v_decimal128.high;
      return !bid128_isZero(x);
   }
   default:
      return true;
   }
}

static uint64_t
hash_bytes(uint64_t h, const void *p, size_t n)
{
   const uint8_t *b = p;

   for (size_t i = 0; i < n; i++) {
      h ^= b[i];
      h *= 1099511628211ULL; /* FNV-1a */
   }
   return h;
}

uint64_t
flora__agg_hash(const bson_value_t *v)
{
   uint64_t h = 14695981039346656037ULL;
   int rank;

   if (v->value_type == BSON_TYPE_EOD || v->value_type == BSON_TYPE_UNDEFINED) {
      rank = flora_value_type_rank(BSON_TYPE_NULL);
      return hash_bytes(h, &rank, sizeof rank);
   }
   rank = flora_value_type_rank(v->value_type);
   h = hash_bytes(h, &rank, sizeof rank);
   switch (v->value_type) {
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DOUBLE:
   case BSON_TYPE_DECIMAL128: {
      double d = flora__number_to_double(v);
      if (d == 0.0) {
         d = 0.0; /* -0.0 equals 0.0 */
      }
      if (isnan(d)) {
         d = NAN;
      }
      return hash_bytes(h, &d, sizeof d);
   }
   case BSON_TYPE_UTF8:
      return hash_bytes(h, v->value.v_utf8.str, v->value.v_utf8.len);
   case BSON_TYPE_SYMBOL:
      return hash_bytes(h, v->value.v_symbol.symbol, v->value.v_symbol.len);
   case BSON_TYPE_DOCUMENT:
   case BSON_TYPE_ARRAY: {
      bson_t b;
      bson_iter_t it;
      if (value_bson(v, &b) && bson_iter_init(&it, &b)) {
         while (bson_iter_next(&it)) {
            uint64_t eh;
            if (v->value_type == BSON_TYPE_DOCUMENT) {
               h = hash_bytes(h, bson_iter_key(&it), bson_iter_key_len(&it));
            }
            eh = flora__agg_hash(bson_iter_value(&it));
            h = hash_bytes(h, &eh, sizeof eh);
         }
      }
      return h;
   }
   case BSON_TYPE_OID:
      return hash_bytes(h, v->value.v_oid.bytes, 12);
   case BSON_TYPE_BOOL:
      return hash_bytes(h, &v->value.v_bool, 1);
   case BSON_TYPE_DATE_TIME:
      return hash_bytes(h, &v->value.v_datetime, 8);
   case BSON_TYPE_TIMESTAMP:
      h = hash_bytes(h, &v->value.v_timestamp.timestamp, 4);
      return hash_bytes(h, &v->value.v_timestamp.increment, 4);
   case BSON_TYPE_BINARY:
      return hash_bytes(h, v->value.v_binary.data, v->value.v_binary.data_len);
   default:
      return h;
   }
}

/* ---- decimal128 through libbid ------------------------------------------------------ */

static BID_UINT128
bid_of(bson_decimal128_t d)
{
   BID_UINT128 x;
   x.w[0] = d.low;
   x.w[1] = d.high;
   return x;
}

static void
set_bid(bson_value_t *v, BID_UINT128 x)
{
   memset(v, 0, sizeof *v);
   v->value_type = BSON_TYPE_DECIMAL128;
   v->value.v_decimal128.low = x.w[0];
   v->value.v_decimal128.high = x.w[1];
}

/* A number as a decimal, as MongoDB converts it: integers exactly, doubles rounded to 15
 * significant digits (Decimal128(double, kRoundTo15Digits)). */
static BID_UINT128
bid_from_number(const bson_value_t *v)
{
   _IDEC_flags fl = 0;
   char buf[64];

   switch (v->value_type) {
   case BSON_TYPE_INT32:
      return bid128_from_int32(v->value.v_int32);
   case BSON_TYPE_INT64:
      return bid128_from_int64(v->value.v_int64);
   case BSON_TYPE_DECIMAL128:
      return bid_of(v->value.v_decimal128);
   default: {
      double d = v->value.v_double;
      if (isnan(d)) {
         snprintf(buf, sizeof buf, "NaN");
      } else if (isinf(d)) {
         snprintf(buf, sizeof buf, d > 0 ? "Infinity" : "-Infinity");
      } else {
         snprintf(buf, sizeof buf, "%.14e", d);
      }
      return bid128_from_string(buf, BID_ROUNDING_TO_NEAREST, &fl);
   }
   }
}

static double
bid_to_double(BID_UINT128 x)
{
   _IDEC_flags fl = 0;
   return bid128_to_binary64(x, BID_ROUNDING_TO_NEAREST, &fl);
}

/* ---- sums ---------------------------------------------------------------------------- */

void
flora__sum_init(flora__sum_t *sum)
{
   memset(sum, 0, sizeof *sum);
}

static void
sum_add_double(flora__sum_t *s, double x)
{
   /* Neumaier's compensated summation. */
   double t = s->d + x;
   if (!isfinite(t)) {
      /* infinities and NaN: compensation is meaningless (and would turn inf into NaN) */
      s->d = t;
      return;
   }
   if (fabs(s->d) >= fabs(x)) {
      s->d_comp += (s->d - t) + x;
   } else {
      s->d_comp += (x - t) + s->d;
   }
   s->d = t;
}

void
flora__sum_add(flora__sum_t *s, const bson_value_t *v)
{
   int t;

   s->count++;
   switch (v->value_type) {
   case BSON_TYPE_INT32:
      t = 0;
      break;
   case BSON_TYPE_INT64:
      t = 1;
      break;
   case BSON_TYPE_DOUBLE:
      t = 2;
      break;
   default:
      t = 3;
      break;
   }
   if (t > s->type) {
      s->type = t;
   }
   if (t == 3) {
      _IDEC_flags fl = 0;
      BID_UINT128 x = bid_of(v->value.v_decimal128);
      if (s->has_dec) {
         x = bid128_add(bid_of(s->dec), x, BID_ROUNDING_TO_NEAREST, &fl);
      }
      s->dec.low = x.w[0];
      s->dec.high = x.w[1];
      s->has_dec = true;
      return;
   }
   if (t > s->nd_type) {
      s->nd_type = t;
   }
   s->nd_count++;
   if (t <= 1) {
      int64_t i = t == 0 ? v->value.v_int32 : v->value.v_int64;
      if (!s->long_overflowed && __builtin_add_overflow(s->l, i, &s->l)) {
         s->long_overflowed = true;
      }
      sum_add_double(s, (double) i);
   } else {
      sum_add_double(s, v->value.v_double);
   }
}

static double
sum_double(const flora__sum_t *s)
{
   return isfinite(s->d) ? s->d + s->d_comp : s->d;
}

/* The non-decimal part of the sum, typed as MongoDB types it. */
static void
sum_nondecimal_value(const flora__sum_t *s, bson_value_t *out)
{
   if (s->nd_type == 0 && !s->long_overflowed) {
      set_int_or_long(out, s->l);
   } else if (s->nd_type == 1 && !s->long_overflowed) {
      set_int64(out, s->l);
   } else {
      set_double(out, sum_double(s));
   }
}

void
flora__sum_value(const flora__sum_t *s, bson_value_t *out)
{
   if (s->has_dec) {
      BID_UINT128 acc = bid_of(s->dec);
      if (s->nd_count > 0) {
         bson_value_t nd;
         _IDEC_flags fl = 0;
         sum_nondecimal_value(s, &nd);
         acc = bid128_add(acc, bid_from_number(&nd), BID_ROUNDING_TO_NEAREST, &fl);
      }
      set_bid(out, acc);
      return;
   }
   sum_nondecimal_value(s, out);
}

void
flora__sum_mean(const flora__sum_t *s, bson_value_t *out)
{
   if (s->count == 0) {
      set_null(out);
      return;
   }
   if (s->type == 3) {
      bson_value_t total;
      _IDEC_flags fl = 0;
      flora__sum_value(s, &total);
      set_bid(out, bid128_div(bid_of(total.value.v_decimal128), bid128_from_int64(s->count),
                              BID_ROUNDING_TO_NEAREST, &fl));
      return;
   }
   if (s->nd_type <= 1 && !s->long_overflowed) {
      set_double(out, (double) s->l / (double) s->count);
   } else {
      set_double(out, (sum_double(s)) / (double) s->count);
   }
}

/* ---- compile ------------------------------------------------------------------------- */

static flora__expr_t *compile(const bson_value_t *spec, scope_t *sc, flora_error_t *error);

static flora__expr_t *
node_new(enum kind kind)
{
   flora__expr_t *e = bson_malloc0(sizeof *e);
   e->kind = kind;
   e->var = VAR_ROOT;
   return e;
}

void
flora__expr_destroy(flora__expr_t *e)
{
   if (!e) {
      return;
   }
   if (e->kind == K_LITERAL) {
      bson_value_destroy(&e->literal);
   }
   for (size_t i = 0; i < e->nparts; i++) {
      bson_free(e->parts[i]);
   }
   bson_free(e->parts);
   for (size_t i = 0; i < e->nargs; i++) {
      flora__expr_destroy(e->args[i]);
      if (e->names) {
         bson_free(e->names[i]);
      }
   }
   bson_free(e->args);
   bson_free(e->names);
   bson_free(e);
}

static void
add_arg(flora__expr_t *e, flora__expr_t *arg)
{
   e->args = bson_realloc(e->args, (e->nargs + 1) * sizeof *e->args);
   e->args[e->nargs++] = arg;
}

static flora__expr_t *
literal_node(const bson_value_t *v)
{
   flora__expr_t *e = node_new(K_LITERAL);
   copy_value(&e->literal, v);
   return e;
}

static flora__expr_t *
compile_path(const char *s, uint32_t len, scope_t *sc, flora_error_t *error)
{
   flora__expr_t *e = node_new(K_PATH);
   const char *p = s + 1, *end = s + len;
   char *first = NULL;

   if (len >= 2 && s[1] == '$') {
      /* a variable: $$name[.path] */
      const char *dot = memchr(s + 2, '.', len - 2);
      size_t nlen = (size_t) ((dot ? dot : end) - (s + 2));
      first = bson_strndup(s + 2, nlen);
      if (strcmp(first, "ROOT") == 0 || strcmp(first, "CURRENT") == 0) {
         e->var = VAR_ROOT;
      } else if (strcmp(first, "NOW") == 0) {
         e->var = VAR_NOW;
      } else if (strcmp(first, "REMOVE") == 0) {
         e->var = VAR_REMOVE;
      } else {
         size_t i;
         e->var = -1;
         for (i = sc->n; i > 0; i--) {
            if (strcmp(sc->names[i - 1], first) == 0) {
               e->var = (int) i;
               break;
            }
         }
         if (e->var < 0) {
            flora_error_set(error, FLORA_DOMAIN_STORE, 17276, "Use of undefined variable: %s",
                            first);
            goto fail;
         }
      }
      p = dot ? dot + 1 : end;
      if (dot && p == end) {
         flora_error_set(error, FLORA_DOMAIN_STORE, 15998,
                         "FieldPath field names may not be empty strings.");
         goto fail;
      }
   } else if (len == 1) {
      flora_error_set(error, FLORA_DOMAIN_STORE, 16872, "'$' by itself is not a valid FieldPath");
      goto fail;
   }
   while (p < end) {
      const char *dot = memchr(p, '.', (size_t) (end - p));
      size_t n = (size_t) ((dot ? dot : end) - p);
      if (n == 0 || (dot && dot + 1 == end)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, 15998,
                         "FieldPath field names may not be empty strings.");
         goto fail;
      }
      if (*p == '$') {
         flora_error_set(error, FLORA_DOMAIN_STORE, 16410,
                         "FieldPath field names may not start with '$'.");
         goto fail;
      }
      e->parts = bson_realloc(e->parts, (e->nparts + 1) * sizeof *e->parts);
      e->parts[e->nparts++] = bson_strndup(p, n);
      p = dot ? dot + 1 : end;
   }
   bson_free(first);
   return e;
fail:
   bson_free(first);
   flora__expr_destroy(e);
   return NULL;
}

static const op_info_t *
find_op(const char *name)
{
   for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
      if (strcmp(OPS[i].name, name) == 0) {
         return &OPS[i];
      }
   }
   return NULL;
}

/* Compiles the value of an iterator into a new argument of e (NULL value = absent). */
static bool
add_compiled(flora__expr_t *e, const bson_value_t *v, scope_t *sc, flora_error_t *error)
{
   flora__expr_t *a = NULL;

   if (v) {
      a = compile(v, sc, error);
      if (!a) {
         return false;
      }
   }
   add_arg(e, a);
   return true;
}

/* The named fields of an operator's object argument: fills vals[i] for names[i] (NULL when
 * absent); an unknown field is error `code` "<op> found an unknown argument: <name>". */
static bool
named_args(const char *op, const bson_value_t *arg, const char *const *names, size_t n,
           const bson_value_t **vals, bson_value_t *store, int code, flora_error_t *error)
{
   bson_t b;
   bson_iter_t it;

   for (size_t i = 0; i < n; i++) {
      vals[i] = NULL;
   }
   if (!is_doc(arg)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, code, "%s only supports an object as its argument",
                      op);
      return false;
   }
   value_bson(arg, &b);
   bson_iter_init(&it, &b);
   while (bson_iter_next(&it)) {
      size_t i;
      for (i = 0; i < n; i++) {
         if (strcmp(bson_iter_key(&it), names[i]) == 0) {
            store[i] = *bson_iter_value(&it);
            vals[i] = &store[i];
            break;
         }
      }
      if (i == n) {
         flora_error_set(error, FLORA_DOMAIN_STORE, code, "%s found an unknown argument: %s", op,
                         bson_iter_key(&it));
         return false;
      }
   }
   return true;
}

static bool
push_var(scope_t *sc, const bson_value_t *name, const char *op, int *slot, flora_error_t *error)
{
   const char *s;

   if (name->value_type != BSON_TYPE_UTF8) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_FAILED_TO_PARSE,
                      "%s: variable name must be a string", op);
      return false;
   }
   s = name->value.v_utf8.str;
   if (!s[0] || !(islower((unsigned char) s[0]) || (unsigned char) s[0] >= 0x80) ||
       strlen(s) != name->value.v_utf8.len) {
      flora_error_set(error, FLORA_DOMAIN_STORE, 16867,
                      "'%s' starts with an invalid character for a user variable name", s);
      return false;
   }
   for (const char *p = s; *p; p++) {
      if (!(isalnum((unsigned char) *p) || *p == '_' || (unsigned char) *p >= 0x80)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, 16868,
                         "'%s' contains an invalid character for a variable name: '%c'", s, *p);
         return false;
      }
   }
   if (sc->n >= MAX_VARS) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "%s: more than %d nested variables", op, MAX_VARS);
      return false;
   }
   sc->names[sc->n++] = s;
   *slot = (int) sc->n;
   return true;
}

static bool
compile_special(flora__expr_t *e, const op_info_t *info, const bson_value_t *arg, scope_t *sc,
                flora_error_t *error)
{
   const bson_value_t *v[6];
   bson_value_t its[6];

   switch (info->op) {
   case OP_COND:
      if (is_array(arg)) {
         bson_t b;
         bson_iter_t it;
         uint32_t n = array_len(arg);
         if (n != 3) {
            flora_error_set(error, FLORA_DOMAIN_STORE, 16020,
                            "Expression $cond takes exactly 3 arguments. %u were passed in.", n);
            return false;
         }
         value_bson(arg, &b);
         bson_iter_init(&it, &b);
         while (bson_iter_next(&it)) {
            if (!add_compiled(e, bson_iter_value(&it), sc, error)) {
               return false;
            }
         }
         return true;
      } else {
         static const char *const names[] = {"if", "then", "else"};
         if (!is_doc(arg)) {
            flora_error_set(error, FLORA_DOMAIN_STORE, 16020,
                            "Expression $cond takes exactly 3 arguments. 1 were passed in.");
            return false;
         }
         if (!named_args("$cond", arg, names, 3, v, its, 17083, error)) {
            return false;
         }
         for (int i = 0; i < 3; i++) {
            if (!v[i]) {
               flora_error_set(error, FLORA_DOMAIN_STORE, 17080 + i,
                               "Missing '%s' parameter to $cond", names[i]);
               return false;
            }
            if (!add_compiled(e, v[i], sc, error)) {
               return false;
            }
         }
         return true;
      }
   case OP_SWITCH: {
      static const char *const names[] = {"branches", "default"};
      bson_t b;
      bson_iter_t it;
      if (!named_args("$switch", arg, names, 2, v, its, 40067, error)) {
         return false;
      }
      if (!v[0] || !is_array(v[0])) {
         flora_error_set(error, FLORA_DOMAIN_STORE, 40061,
                         "$switch expected an array for 'branches'");
         return false;
      }
      if (array_len(v[0]) == 0) {
         flora_error_set(error, FLORA_DOMAIN_STORE, 40068,
                         "$switch requires at least one branch.");
         return false;
      }
      value_bson(v[0], &b);
      bson_iter_init(&it, &b);
      while (bson_iter_next(&it)) {
         static const char *const bn[] = {"case", "then"};
         const bson_value_t *bv[2];
         bson_value_t bits[2];
         if (!named_args("$switch", bson_iter_value(&it), bn, 2, bv, bits, 40063, error)) {
            return false;
         }
         if (!bv[0] || !bv[1]) {
            flora_error_set(error, FLORA_DOMAIN_STORE, bv[0] ? 40065 : 40064,
                            "$switch requires each branch have a '%s' expression",
                            bv[0] ? "then" : "case");
            return false;
         }
         if (!add_compiled(e, bv[0], sc, error) || !add_compiled(e, bv[1], sc, error)) {
            return false;
         }
      }
      /* last argument: default (NULL when absent) */
      return add_compiled(e, v[1], sc, error);
   }
   case OP_TRIM:
   case OP_LTRIM:
   case OP_RTRIM: {
      static const char *const names[] = {"input", "chars"};
      if (!named_args(info->name, arg, names, 2, v, its, 50696, error)) {
         return false;
      }
      if (!v[0]) {
         flora_error_set(error, FLORA_DOMAIN_STORE, 50695, "%s requires an 'input' parameter",
                         info->name);
         return false;
      }
      return add_compiled(e, v[0], sc, error) && add_compiled(e, v[1], sc, error);
   }
   case OP_FILTER:
   case OP_MAP: {
      static const char *const fnames[] = {"input", "as", "cond", "limit"};
      static const char *const mnames[] = {"input", "as", "in"};
      bool filter = info->op == OP_FILTER;
      const bson_value_t *as;
      size_t saved = sc->n;
      bool ok;
      if (!named_args(info->name, arg, filter ? fnames : mnames, filter ? 4 : 3, v, its,
                      filter ? 28647 : 16879, error)) {
         return false;
      }
      if (!v[0] || !v[2]) {
         flora_error_set(error, FLORA_DOMAIN_STORE, filter ? 28648 : 16880,
                         "Missing '%s' parameter to %s", !v[0] ? "input" : (filter ? "cond" : "in"),
                         info->name);
         return false;
      }
      if (!add_compiled(e, v[0], sc, error)) {
         return false;
      }
      if (v[1]) {
         as = v[1];
      } else {
         static const bson_value_t this_name = {
            .value_type = BSON_TYPE_UTF8, .value.v_utf8 = {(char *) "this", 4}};
         as = &this_name;
      }
      if (!push_var(sc, as, info->name, &e->slot, error)) {
         return false;
      }
      ok = add_compiled(e, v[2], sc, error);
      sc->n = saved;
      if (!ok) {
         return false;
      }
      return !filter || add_compiled(e, v[3], sc, error);
   }
   case OP_REDUCE: {
      static const char *const names[] = {"input", "initialValue", "in"};
      static const bson_value_t value_name = {
         .value_type = BSON_TYPE_UTF8, .value.v_utf8 = {(char *) "value", 5}};
      static const bson_value_t this_name = {
         .value_type = BSON_TYPE_UTF8, .value.v_utf8 = {(char *) "this", 4}};
      size_t saved = sc->n;
      bool ok;
      if (!named_args("$reduce", arg, names, 3, v, its, 40076, error)) {
         return false;
      }
      if (!v[0] || !v[1] || !v[2]) {
         flora_error_set(error, FLORA_DOMAIN_STORE, 40077 + (!v[0] ? 0 : !v[1] ? 1 : 2),
                         "$reduce requires '%s' to be specified",
                         !v[0] ? "input" : !v[1] ? "initialValue" : "in");
         return false;
      }
      if (!add_compiled(e, v[0], sc, error) || !add_compiled(e, v[1], sc, error)) {
         return false;
      }
      if (!push_var(sc, &value_name, "$reduce", &e->slot, error) ||
          !push_var(sc, &this_name, "$reduce", &e->slot2, error)) {
         sc->n = saved;
         return false;
      }
      ok = add_compiled(e, v[2], sc, error);
      sc->n = saved;
      return ok;
   }
   case OP_LET: {
      static const char *const names[] = {"vars", "in"};
      size_t saved = sc->n;
      bson_t b;
      bson_iter_t it;
      bool ok = true;
      int first_slot = -1;
      if (!named_args("$let", arg, names, 2, v, its, 16875, error)) {
         return false;
      }
      if (!v[0] || !v[1] || !is_doc(v[0])) {
         flora_error_set(error, FLORA_DOMAIN_STORE, !v[1] ? 16877 : 16876,
                         "Missing '%s' parameter to $let", !v[1] ? "in" : "vars");
         return false;
      }
      /* the variables' expressions see the outer scope only */
      value_bson(v[0], &b);
      bson_iter_init(&it, &b);
      while (bson_iter_next(&it)) {
         if (!add_compiled(e, bson_iter_value(&it), sc, error)) {
            return false;
         }
      }
      bson_iter_init(&it, &b);
      while (ok && bson_iter_next(&it)) {
         bson_value_t name = {.value_type = BSON_TYPE_UTF8};
         int slot;
         name.value.v_utf8.str = (char *) bson_iter_key(&it);
         name.value.v_utf8.len = bson_iter_key_len(&it);
         ok = push_var(sc, &name, "$let", &slot, error);
         if (first_slot < 0) {
            first_slot = slot;
         }
      }
      e->slot = first_slot;
      ok = ok && add_compiled(e, v[1], sc, error);
      sc->n = saved;
      return ok;
   }
   case OP_DATETOSTRING: {
      static const char *const names[] = {"date", "format", "timezone", "onNull"};
      if (!named_args("$dateToString", arg, names, 4, v, its, 18534, error)) {
         return false;
      }
      if (!v[0]) {
         flora_error_set(error, FLORA_DOMAIN_STORE, 18628,
                         "Missing 'date' parameter to $dateToString");
         return false;
      }
      for (int i = 0; i < 4; i++) {
         if (!add_compiled(e, v[i], sc, error)) {
            return false;
         }
      }
      return true;
   }
   default: {
      /* date parts: {$year: <date>} | {$year: [<date>]} | {$year: {date, timezone}} */
      static const char *const names[] = {"date", "timezone"};
      bson_t b;
      bson_iter_t it;
      if (is_doc(arg)) {
         value_bson(arg, &b);
         if (bson_iter_init(&it, &b) && bson_iter_next(&it) && bson_iter_key(&it)[0] != '$') {
            if (!named_args(info->name, arg, names, 2, v, its, 40535, error)) {
               return false;
            }
            if (!v[0]) {
               flora_error_set(error, FLORA_DOMAIN_STORE, 40539,
                               "missing 'date' argument to %s", info->name);
               return false;
            }
            return add_compiled(e, v[0], sc, error) && add_compiled(e, v[1], sc, error);
         }
      }
      if (is_array(arg)) {
         if (array_len(arg) != 1) {
            flora_error_set(error, FLORA_DOMAIN_STORE, 16020,
                            "Expression %s takes exactly 1 arguments. %u were passed in.",
                            info->name, array_len(arg));
            return false;
         }
         value_bson(arg, &b);
         bson_iter_init(&it, &b);
         bson_iter_next(&it);
         return add_compiled(e, bson_iter_value(&it), sc, error) &&
                add_compiled(e, NULL, sc, error);
      }
      return add_compiled(e, arg, sc, error) && add_compiled(e, NULL, sc, error);
   }
   }
}

static flora__expr_t *
compile_op(const char *name, const bson_value_t *arg, scope_t *sc, flora_error_t *error)
{
   const op_info_t *info = find_op(name);
   flora__expr_t *e;

   if (strcmp(name, "$literal") == 0) {
      return literal_node(arg);
   }
   if (!info) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "unsupported expression operator %s", name);
      return NULL;
   }
   e = node_new(K_OP);
   e->op = info->op;
   e->op_name = info->name;
   if (info->form == F_SPECIAL) {
      if (!compile_special(e, info, arg, sc, error)) {
         goto fail;
      }
   } else {
      uint32_t n;
      if (is_array(arg)) {
         bson_t b;
         bson_iter_t it;
         value_bson(arg, &b);
         bson_iter_init(&it, &b);
         while (bson_iter_next(&it)) {
            if (!add_compiled(e, bson_iter_value(&it), sc, error)) {
               goto fail;
            }
         }
      } else if (!add_compiled(e, arg, sc, error)) {
         goto fail;
      }
      n = (uint32_t) e->nargs;
      if ((int) n < info->min || (info->max >= 0 && (int) n > info->max)) {
         if (info->min == info->max) {
            flora_error_set(error, FLORA_DOMAIN_STORE, 16020,
                            "Expression %s takes exactly %d arguments. %u were passed in.",
                            info->name, info->min, n);
         } else if (info->max < 0) {
            flora_error_set(error, FLORA_DOMAIN_STORE, 16020,
                            "Expression %s takes at least %d arguments, but %u were passed in.",
                            info->name, info->min, n);
         } else {
            flora_error_set(error, FLORA_DOMAIN_STORE, 16020,
                            "Expression %s takes at least %d arguments, and at most %d, but %u "
                            "were passed in.",
                            info->name, info->min, info->max, n);
         }
         goto fail;
      }
   }
   return e;
fail:
   flora__expr_destroy(e);
   return NULL;
}

static flora__expr_t *
compile_object(const bson_value_t *spec, scope_t *sc, flora_error_t *error)
{
   bson_t b;
   bson_iter_t it;
   flora__expr_t *e = NULL;
   uint32_t nfields = 0;
   const char *first = NULL;

   value_bson(spec, &b);
   bson_iter_init(&it, &b);
   while (bson_iter_next(&it)) {
      if (nfields++ == 0) {
         first = bson_iter_key(&it);
      }
   }
   if (first && first[0] == '$') {
      if (nfields != 1) {
         char *json = bson_as_relaxed_extended_json(&b, NULL);
         flora_error_set(error, FLORA_DOMAIN_STORE, 15983,
                         "an expression specification must contain exactly one field, the name "
                         "of the expression. Found %u fields in %s",
                         nfields, json ? json : "");
         bson_free(json);
         return NULL;
      }
      bson_iter_init(&it, &b);
      bson_iter_next(&it);
      return compile_op(first, bson_iter_value(&it), sc, error);
   }
   e = node_new(K_OBJECT);
   bson_iter_init(&it, &b);
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      if (key[0] == '$') {
         flora_error_set(error, FLORA_DOMAIN_STORE, 16410,
                         "FieldPath field names may not start with '$'. Consider using "
                         "$getField or $setField.");
         goto fail;
      }
      if (strchr(key, '.')) {
         flora_error_set(error, FLORA_DOMAIN_STORE, 16412,
                         "FieldPath field names may not contain '.'. Consider using $getField or "
                         "$setField.");
         goto fail;
      }
      if (!add_compiled(e, bson_iter_value(&it), sc, error)) {
         goto fail;
      }
      e->names = bson_realloc(e->names, e->nargs * sizeof *e->names);
      e->names[e->nargs - 1] = bson_strdup(key);
   }
   return e;
fail:
   flora__expr_destroy(e);
   return NULL;
}

static flora__expr_t *
compile(const bson_value_t *spec, scope_t *sc, flora_error_t *error)
{
   if (spec->value_type == BSON_TYPE_UTF8 && spec->value.v_utf8.len > 0 &&
       spec->value.v_utf8.str[0] == '$') {
      return compile_path(spec->value.v_utf8.str, spec->value.v_utf8.len, sc, error);
   }
   if (is_doc(spec)) {
      return compile_object(spec, sc, error);
   }
   if (is_array(spec)) {
      flora__expr_t *e = node_new(K_ARRAY);
      bson_t b;
      bson_iter_t it;
      value_bson(spec, &b);
      bson_iter_init(&it, &b);
      while (bson_iter_next(&it)) {
         if (!add_compiled(e, bson_iter_value(&it), sc, error)) {
            flora__expr_destroy(e);
            return NULL;
         }
      }
      return e;
   }
   return literal_node(spec);
}

flora__expr_t *
flora__expr_compile(const bson_value_t *spec, flora_error_t *error)
{
   scope_t sc = {{NULL}, 0};

   FLORA_ASSERT_ARG(spec);
   return compile(spec, &sc, error);
}

/* ---- evaluation ---------------------------------------------------------------------- */

static bool eval(const flora__expr_t *e, ctx_t *c, bson_value_t *out, flora_error_t *error);

static bool
fail_code(flora_error_t *error, uint32_t code, const char *fmt, ...)
   __attribute__((format(printf, 3, 4)));

static bool
fail_code(flora_error_t *error, uint32_t code, const char *fmt, ...)
{
   char msg[400];
   va_list ap;

   va_start(ap, fmt);
   vsnprintf(msg, sizeof msg, fmt, ap);
   va_end(ap);
   flora_error_set(error, FLORA_DOMAIN_STORE, code, "%s", msg);
   return false;
}

/* Applies path components [i, n) to v (ExpressionFieldPath::evaluatePath: arrays map over
 * their document elements, dropping the ones where the rest of the path is missing). */
static void
path_from(const bson_value_t *v, char *const *parts, size_t n, size_t i, bson_value_t *out)
{
   bson_t b;
   bson_iter_t it;

   if (i == n) {
      copy_value(out, v);
      return;
   }
   if (is_doc(v)) {
      value_bson(v, &b);
      if (bson_iter_init_find(&it, &b, parts[i])) {
         path_from(bson_iter_value(&it), parts, n, i + 1, out);
      } else {
         set_missing(out);
      }
      return;
   }
   if (is_array(v)) {
      bson_t arr = BSON_INITIALIZER;
      uint32_t idx = 0;
      value_bson(v, &b);
      bson_iter_init(&it, &b);
      while (bson_iter_next(&it)) {
         bson_value_t r;
         if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
            continue;
         }
         path_from(bson_iter_value(&it), parts, n, i, &r);
         if (r.value_type != BSON_TYPE_EOD) {
            array_push(&arr, &idx, &r);
         }
         bson_value_destroy(&r);
      }
      set_from_bson(out, &arr, true);
      return;
   }
   set_missing(out);
}

static int
num_kind(const bson_value_t *v)
{
   switch (v->value_type) {
   case BSON_TYPE_INT32:
      return 0;
   case BSON_TYPE_INT64:
      return 1;
   case BSON_TYPE_DOUBLE:
      return 2;
   case BSON_TYPE_DECIMAL128:
      return 3;
   default:
      return -1;
   }
}

static int64_t
as_i64(const bson_value_t *v)
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
   case BSON_TYPE_DOUBLE:
      return v->value.v_double;
   default:
      return bid_to_double(bid_of(v->value.v_decimal128));
   }
}

enum arith { AR_SUB, AR_MUL };

/* a op b for two numbers with MongoDB's result typing. */
static void
arith(enum arith op, const bson_value_t *a, const bson_value_t *b, bson_value_t *out)
{
   int ka = num_kind(a), kb = num_kind(b), k = ka > kb ? ka : kb;

   if (k == 3) {
      _IDEC_flags fl = 0;
      BID_UINT128 x = bid_from_number(a), y = bid_from_number(b);
      set_bid(out, op == AR_SUB ? bid128_sub(x, y, BID_ROUNDING_TO_NEAREST, &fl)
                                : bid128_mul(x, y, BID_ROUNDING_TO_NEAREST, &fl));
   } else if (k == 2) {
      double x = as_double(a), y = as_double(b);
      set_double(out, op == AR_SUB ? x - y : x * y);
   } else {
      int64_t x = as_i64(a), y = as_i64(b), r;
      bool ovf = op == AR_SUB ? __builtin_sub_overflow(x, y, &r) : __builtin_mul_overflow(x, y, &r);
      if (ovf) {
         set_double(out, op == AR_SUB ? (double) x - (double) y : (double) x * (double) y);
      } else if (k == 0) {
         set_int_or_long(out, r);
      } else {
         set_int64(out, r);
      }
   }
}

/* A number as milliseconds to add to a date (doubles and decimals rounded). */
static bool
millis_of(const bson_value_t *v, int64_t *ms, flora_error_t *error)
{
   double d;

   if (num_kind(v) <= 1) {
      *ms = as_i64(v);
      return true;
   }
   d = as_double(v);
   if (!isfinite(d) || d >= 9.2233720368547758e18 || d < -9.2233720368547758e18) {
      return fail_code(error, FLORA_STORE_OVERFLOW, "date overflow in $add");
   }
   *ms = llround(d);
   return true;
}

static bool
op_add(const bson_value_t *vals, size_t n, bson_value_t *out, flora_error_t *error)
{
   flora__sum_t s;
   bool has_date = false, null = false;
   int64_t date = 0;

   flora__sum_init(&s);
   for (size_t i = 0; i < n; i++) {
      const bson_value_t *v = &vals[i];
      if (is_nullish(v)) {
         null = true;
      } else if (v->value_type == BSON_TYPE_DATE_TIME) {
         if (has_date) {
            return fail_code(error, 16612, "only one date allowed in an $add expression");
         }
         has_date = true;
         date = v->value.v_datetime;
      } else if (num_kind(v) >= 0) {
         flora__sum_add(&s, v);
      } else {
         return fail_code(error, 16554, "$add only supports numeric or date types, not %s",
                          type_name(v));
      }
   }
   if (null) {
      set_null(out);
      return true;
   }
   if (has_date) {
      bson_value_t total;
      int64_t ms = 0;
      flora__sum_value(&s, &total);
      if (!millis_of(&total, &ms, error)) {
         return false;
      }
      if (__builtin_add_overflow(date, ms, &ms)) {
         return fail_code(error, FLORA_STORE_OVERFLOW, "date overflow in $add");
      }
      set_date(out, ms);
      return true;
   }
   flora__sum_value(&s, out);
   return true;
}

static bool
op_subtract(const bson_value_t *a, const bson_value_t *b, bson_value_t *out, flora_error_t *error)
{
   if (is_nullish(a) || is_nullish(b)) {
      set_null(out);
      return true;
   }
   if (a->value_type == BSON_TYPE_DATE_TIME) {
      int64_t ms;
      if (b->value_type == BSON_TYPE_DATE_TIME) {
         if (__builtin_sub_overflow(a->value.v_datetime, b->value.v_datetime, &ms)) {
            return fail_code(error, FLORA_STORE_OVERFLOW, "date overflow in $subtract");
         }
         set_int64(out, ms);
         return true;
      }
      if (num_kind(b) < 0) {
         return fail_code(error, 16613, "can't $subtract %s from a date", type_name(b));
      }
      if (!millis_of(b, &ms, error)) {
         return false;
      }
      if (__builtin_sub_overflow(a->value.v_datetime, ms, &ms)) {
         return fail_code(error, FLORA_STORE_OVERFLOW, "date overflow in $subtract");
      }
      set_date(out, ms);
      return true;
   }
   if (num_kind(a) < 0 || num_kind(b) < 0) {
      return fail_code(error, 16556, "can't $subtract %s from %s", type_name(b), type_name(a));
   }
   arith(AR_SUB, a, b, out);
   return true;
}

static bool
op_multiply(const bson_value_t *vals, size_t n, bson_value_t *out, flora_error_t *error)
{
   bson_value_t acc;
   bool null = false;

   set_int32(&acc, 1);
   for (size_t i = 0; i < n; i++) {
      bson_value_t next;
      if (is_nullish(&vals[i])) {
         null = true;
         continue;
      }
      if (num_kind(&vals[i]) < 0) {
         return fail_code(error, 16555, "$multiply only supports numeric types, not %s",
                          type_name(&vals[i]));
      }
      arith(AR_MUL, &acc, &vals[i], &next);
      acc = next;
   }
   if (null) {
      set_null(out);
   } else {
      *out = acc;
   }
   return true;
}

static bool
op_divide(const bson_value_t *a, const bson_value_t *b, bson_value_t *out, flora_error_t *error)
{
   if (is_nullish(a) || is_nullish(b)) {
      set_null(out);
      return true;
   }
   if (num_kind(a) < 0 || num_kind(b) < 0) {
      return fail_code(error, 16609, "$divide only supports numeric types, not %s and %s",
                       type_name(a), type_name(b));
   }
   if (!flora__agg_truthy(b)) {
      return fail_code(error, FLORA_STORE_BAD_VALUE, "can't $divide by zero");
   }
   if (num_kind(a) == 3 || num_kind(b) == 3) {
      _IDEC_flags fl = 0;
      set_bid(out, bid128_div(bid_from_number(a), bid_from_number(b), BID_ROUNDING_TO_NEAREST, &fl));
   } else {
      set_double(out, as_double(a) / as_double(b));
   }
   return true;
}

static bool
op_mod(const bson_value_t *a, const bson_value_t *b, bson_value_t *out, flora_error_t *error)
{
   int k;

   if (is_nullish(a) || is_nullish(b)) {
      set_null(out);
      return true;
   }
   if (num_kind(a) < 0 || num_kind(b) < 0) {
      return fail_code(error, 16611, "$mod only supports numeric types, not %s and %s",
                       type_name(a), type_name(b));
   }
   if (!flora__agg_truthy(b)) {
      return fail_code(error, 16610, "can't $mod by zero");
   }
   k = num_kind(a) > num_kind(b) ? num_kind(a) : num_kind(b);
   if (k == 3) {
      _IDEC_flags fl = 0;
      set_bid(out, bid128_fmod(bid_from_number(a), bid_from_number(b), &fl));
   } else if (k == 2) {
      set_double(out, fmod(as_double(a), as_double(b)));
   } else {
      int64_t x = as_i64(a), y = as_i64(b);
      int64_t r = y == -1 ? 0 : x % y;
      if (k == 0) {
         set_int32(out, (int32_t) r);
      } else {
         set_int64(out, r);
      }
   }
   return true;
}

static bool
op_unary_math(const flora__expr_t *e, const bson_value_t *a, bson_value_t *out,
              flora_error_t *error)
{
   _IDEC_flags fl = 0;

   if (is_nullish(a)) {
      set_null(out);
      return true;
   }
   if (num_kind(a) < 0) {
      return fail_code(error, 28765, "%s only supports numeric types, not %s", e->op_name,
                       type_name(a));
   }
   switch (num_kind(a)) {
   case 0:
   case 1:
      if (e->op == OP_ABS) {
         int64_t i = as_i64(a);
         if (a->value_type == BSON_TYPE_INT64 && i == INT64_MIN) {
            return fail_code(error, 28680, "can't take $abs of long long min");
         }
         if (a->value_type == BSON_TYPE_INT32) {
            set_int_or_long(out, i < 0 ? -i : i);
         } else {
            set_int64(out, i < 0 ? -i : i);
         }
      } else {
         *out = *a;
      }
      return true;
   case 2: {
      double d = a->value.v_double;
      set_double(out, e->op == OP_ABS ? fabs(d) : e->op == OP_CEIL ? ceil(d) : floor(d));
      return true;
   }
   default: {
      BID_UINT128 x = bid_of(a->value.v_decimal128);
      set_bid(out, e->op == OP_ABS    ? bid128_abs(x)
                   : e->op == OP_CEIL ? bid128_round_integral_positive(x, &fl)
                                      : bid128_round_integral_negative(x, &fl));
      return true;
   }
   }
}

static BID_UINT128
bid_pow10(int p)
{
   char buf[16];
   _IDEC_flags fl = 0;

   snprintf(buf, sizeof buf, "1E%d", p);
   return bid128_from_string(buf, BID_ROUNDING_TO_NEAREST, &fl);
}

/* $round (half to even, as the manual states) and $trunc to `place` decimal places. */
static bool
op_round(const flora__expr_t *e, const bson_value_t *vals, size_t n, bson_value_t *out,
         flora_error_t *error)
{
   int64_t place = 0;
   _IDEC_flags fl = 0;
   BID_UINT128 x, scale;
   const bson_value_t *a = &vals[0];

   if (is_nullish(a) || (n > 1 && is_nullish(&vals[1]))) {
      set_null(out);
      return true;
   }
   if (num_kind(a) < 0) {
      return fail_code(error, 51081, "%s only supports numeric types, not %s", e->op_name,
                       type_name(a));
   }
   if (n > 1 && (!flora__number_as_int64(&vals[1], &place) || place < -20 || place > 100)) {
      return fail_code(error, 51083,
                       "Cannot apply %s with precision value %s value must be in [-20, 100]",
                       e->op_name, type_name(&vals[1]));
   }
   if (num_kind(a) <= 1 && place >= 0) {
      *out = *a;
      return true;
   }
   if (num_kind(a) == 2) {
      char buf[64];
      double d = a->value.v_double;
      if (!isfinite(d)) {
         *out = *a;
         return true;
      }
      snprintf(buf, sizeof buf, "%.33e", d); /* kRoundTo34Digits */
      x = bid128_from_string(buf, BID_ROUNDING_TO_NEAREST, &fl);
   } else {
      x = bid_from_number(a);
   }
   scale = bid_pow10((int) place);
   x = bid128_mul(x, scale, BID_ROUNDING_TO_NEAREST, &fl);
   x = e->op == OP_ROUND ? bid128_round_integral_nearest_even(x, &fl)
                         : bid128_round_integral_zero(x, &fl);
   x = bid128_div(x, scale, BID_ROUNDING_TO_NEAREST, &fl);
   switch (num_kind(a)) {
   case 0:
      set_int_or_long(out, bid128_to_int64_int(x, &fl));
      break;
   case 1:
      set_int64(out, bid128_to_int64_int(x, &fl));
      break;
   case 2:
      set_double(out, bid_to_double(x));
      break;
   default:
      set_bid(out, x);
      break;
   }
   return true;
}

/* ---- dates --------------------------------------------------------------------------- */

typedef struct civil {
   int64_t year;
   int month, day, hour, minute, second, millis, wday /* 0 = Sunday */, yday /* 0-based */;
} civil_t;

static int64_t
floor_div(int64_t a, int64_t b)
{
   int64_t q = a / b;
   return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible
 * Low-Level Date Algorithms"). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
   int64_t era, yoe, doy, doe;

   y -= m <= 2;
   era = floor_div(y, 400);
   yoe = y - era * 400;
   doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
   doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
   return era * 146097 + doe - 719468;
}

static void
civil_from_ms(int64_t ms, civil_t *c)
{
   int64_t days = floor_div(ms, 86400000), rem = ms - days * 86400000;
   int64_t z = days + 719468, era = floor_div(z, 146097), doe = z - era * 146097;
   int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
   int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;

   c->day = (int) (doy - (153 * mp + 2) / 5 + 1);
   c->month = (int) (mp < 10 ? mp + 3 : mp - 9);
   c->year = yoe + era * 400 + (c->month <= 2);
   c->hour = (int) (rem / 3600000);
   c->minute = (int) (rem / 60000 % 60);
   c->second = (int) (rem / 1000 % 60);
   c->millis = (int) (rem % 1000);
   c->wday = (int) (((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
   c->yday = (int) (days - days_from_civil(c->year, 1, 1));
}

flora__expr_cache_t *
flora__expr_cache_new(void)
{
   return bson_malloc0(sizeof(flora__expr_cache_t));
}

void
flora__expr_cache_destroy(flora__expr_cache_t *cache)
{
   if (!cache) {
      return;
   }
   if (cache->cal) {
      ucal_close(cache->cal);
   }
   bson_free(cache);
}

/* The offset of a named Olson zone ("Europe/Moscow") at instant ms, from ICU's time zone
 * database (ICU calendars are independent objects, so this is thread-safe, unlike the C
 * library's TZ/localtime_r). The calendar is kept in cache for the next document. */
static bool
named_zone_offset(const char *name, int64_t ms, flora__expr_cache_t *cache, int64_t *offset_ms,
                  flora_error_t *error)
{
   UChar zid[128], canon[128];
   int32_t len = 0;
   UBool is_system = 0;
   UErrorCode st = U_ZERO_ERROR;
   UCalendar *cal = NULL;
   int32_t zone, dst;

   if (cache && cache->cal && strcmp(cache->zone, name) == 0) {
      cal = cache->cal;
   } else {
      u_strFromUTF8(zid, (int32_t) (sizeof zid / sizeof zid[0]), &len, name, -1, &st);
      if (U_SUCCESS(st)) {
         ucal_getCanonicalTimeZoneID(zid, len, canon, (int32_t) (sizeof canon / sizeof canon[0]),
                                     &is_system, &st);
      }
      if (U_FAILURE(st) || !is_system) {
         return fail_code(error, 40485, "unrecognized time zone identifier: \"%s\"", name);
      }
      cal = ucal_open(zid, len, "en_US_POSIX", UCAL_GREGORIAN, &st);
      if (U_SUCCESS(st) && cache && strlen(name) < sizeof cache->zone) {
         if (cache->cal) {
            ucal_close(cache->cal);
         }
         cache->cal = cal;
         snprintf(cache->zone, sizeof cache->zone, "%s", name);
      }
   }
   if (U_SUCCESS(st)) {
      ucal_setMillis(cal, (UDate) ms, &st);
   }
   zone = U_SUCCESS(st) ? ucal_get(cal, UCAL_ZONE_OFFSET, &st) : 0;
   dst = U_SUCCESS(st) ? ucal_get(cal, UCAL_DST_OFFSET, &st) : 0;
   if (!cache || cal != cache->cal) {
      ucal_close(cal);
   }
   if (U_FAILURE(st)) {
      return fail_code(error, FLORA_STORE_INTERNAL, "time zone \"%s\": %s", name,
                       u_errorName(st));
   }
   *offset_ms = (int64_t) zone + dst;
   return true;
}

/* The offset from UTC at instant ms of a time zone argument: an Olson name
 * ("Europe/Moscow", "UTC") or a fixed offset "+03", "+0300", "+03:00" (MongoDB manual,
 * "$dateToString", timezone). */
static bool
zone_offset(const bson_value_t *tz, int64_t ms, flora__expr_cache_t *cache, int64_t *offset_ms,
            flora_error_t *error)
{
   const char *s;
   int sign, h = 0, m = 0;
   size_t len;

   if (tz->value_type != BSON_TYPE_UTF8) {
      return fail_code(error, 40517, "timezone must evaluate to a string, found %s",
                       type_name(tz));
   }
   s = tz->value.v_utf8.str;
   len = tz->value.v_utf8.len;
   if (strlen(s) != len) {
      return fail_code(error, 40485, "unrecognized time zone identifier: \"%s\"", s);
   }
   if ((s[0] == '+' || s[0] == '-') && len >= 3 && isdigit((unsigned char) s[1]) &&
       isdigit((unsigned char) s[2])) {
      sign = s[0] == '-' ? -1 : 1;
      h = (s[1] - '0') * 10 + (s[2] - '0');
      if (len == 3) {
         m = 0;
      } else if (len == 5 && isdigit((unsigned char) s[3]) && isdigit((unsigned char) s[4])) {
         m = (s[3] - '0') * 10 + (s[4] - '0');
      } else if (len == 6 && s[3] == ':' && isdigit((unsigned char) s[4]) &&
                 isdigit((unsigned char) s[5])) {
         m = (s[4] - '0') * 10 + (s[5] - '0');
      } else {
         return fail_code(error, 40485, "unrecognized time zone identifier: \"%s\"", s);
      }
      if (m > 59) {
         return fail_code(error, 40485, "unrecognized time zone identifier: \"%s\"", s);
      }
      *offset_ms = (int64_t) sign * (h * 60 + m) * 60000;
      return true;
   }
   return named_zone_offset(s, ms, cache, offset_ms, error);
}

/* The date of a date-like value (date, timestamp, ObjectId), or an error. */
static bool
date_of(const char *op, const bson_value_t *v, int64_t *ms, flora_error_t *error)
{
   switch (v->value_type) {
   case BSON_TYPE_DATE_TIME:
      *ms = v->value.v_datetime;
      return true;
   case BSON_TYPE_TIMESTAMP:
      *ms = (int64_t) v->value.v_timestamp.timestamp * 1000;
      return true;
   case BSON_TYPE_OID:
      *ms = (int64_t) bson_oid_get_time_t(&v->value.v_oid) * 1000;
      return true;
   default:
      return fail_code(error, 16006, "can't convert from BSON type %s to Date (in %s)",
                       type_name(v), op);
   }
}

static int
iso_weeks_in_year(int64_t y)
{
   int64_t p = (y + floor_div(y, 4) - floor_div(y, 100) + floor_div(y, 400)) % 7;
   int64_t q = ((y - 1) + floor_div(y - 1, 4) - floor_div(y - 1, 100) + floor_div(y - 1, 400)) % 7;
   p = (p + 7) % 7;
   q = (q + 7) % 7;
   return (p == 4 || q == 3) ? 53 : 52;
}

static void
iso_week(const civil_t *c, int64_t *iso_year, int *week)
{
   int wd = c->wday == 0 ? 7 : c->wday;
   int w = (c->yday + 1 - wd + 10) / 7;

   *iso_year = c->year;
   if (w < 1) {
      *iso_year = c->year - 1;
      w = iso_weeks_in_year(*iso_year);
   } else if (w > iso_weeks_in_year(c->year)) {
      *iso_year = c->year + 1;
      w = 1;
   }
   *week = w;
}

/* Formats ms (already shifted into the zone) with MongoDB's $dateToString specifiers. */
static bool
format_date(const char *fmt, size_t flen, int64_t ms, int64_t offset_ms, bson_value_t *out,
            flora_error_t *error)
{
   bson_string_t *str = bson_string_new(NULL);
   civil_t c;
   int offset_min = (int) (offset_ms / 60000);

   civil_from_ms(ms, &c);
   for (size_t i = 0; i < flen; i++) {
      char ch = fmt[i];
      int64_t iy;
      int wk;
      if (ch != '%') {
         bson_string_append_c(str, ch);
         continue;
      }
      if (i + 1 >= flen) {
         bson_string_free(str, true);
         return fail_code(error, 18535, "Unmatched '%%' at end of format string");
      }
      ch = fmt[++i];
      switch (ch) {
      case 'Y':
      case 'G':
         iy = c.year;
         if (ch == 'G') {
            iso_week(&c, &iy, &wk);
         }
         if (iy < 0 || iy > 9999) {
            bson_string_free(str, true);
            return fail_code(error, 18537,
                             "Could not convert date to string: date component was outside "
                             "the supported range of 0-9999: %" PRId64,
                             iy);
         }
         bson_string_append_printf(str, "%04d", (int) iy);
         break;
      case 'm':
         bson_string_append_printf(str, "%02d", c.month);
         break;
      case 'd':
         bson_string_append_printf(str, "%02d", c.day);
         break;
      case 'H':
         bson_string_append_printf(str, "%02d", c.hour);
         break;
      case 'M':
         bson_string_append_printf(str, "%02d", c.minute);
         break;
      case 'S':
         bson_string_append_printf(str, "%02d", c.second);
         break;
      case 'L':
         bson_string_append_printf(str, "%03d", c.millis);
         break;
      case 'j':
         bson_string_append_printf(str, "%03d", c.yday + 1);
         break;
      case 'w':
         bson_string_append_printf(str, "%d", c.wday + 1);
         break;
      case 'u':
         bson_string_append_printf(str, "%d", c.wday == 0 ? 7 : c.wday);
         break;
      case 'U':
         bson_string_append_printf(str, "%02d", (c.yday + 7 - c.wday) / 7);
         break;
      case 'V':
         iso_week(&c, &iy, &wk);
         bson_string_append_printf(str, "%02d", wk);
         break;
      case 'z':
         bson_string_append_printf(str, "%c%02d%02d", offset_min < 0 ? '-' : '+',
                                   abs(offset_min) / 60, abs(offset_min) % 60);
         break;
      case 'Z':
         bson_string_append_printf(str, "%c%d", offset_min < 0 ? '-' : '+', abs(offset_min));
         break;
      case '%':
         bson_string_append_c(str, '%');
         break;
      default:
         bson_string_free(str, true);
         return fail_code(error, 18536, "Invalid format character '%%%c' in format string", ch);
      }
   }
   set_string_n(out, str->str, str->len);
   bson_string_free(str, true);
   return true;
}

static bool
op_date_part(const flora__expr_t *e, ctx_t *c, bson_value_t *out, flora_error_t *error)
{
   bson_value_t d, tz;
   int64_t offset = 0;
   int64_t ms = 0;
   civil_t cv;
   bool ok = false;

   set_missing(&tz);
   if (!eval(e->args[0], c, &d, error)) {
      return false;
   }
   if (e->args[1] && !eval(e->args[1], c, &tz, error)) {
      goto cleanup;
   }
   if (is_nullish(&d) || (e->args[1] && is_nullish(&tz))) {
      set_null(out);
      ok = true;
      goto cleanup;
   }
   if (!date_of(e->op_name, &d, &ms, error) ||
       (e->args[1] && !zone_offset(&tz, ms, c->cache, &offset, error))) {
      goto cleanup;
   }
   civil_from_ms(ms + offset, &cv);
   switch (e->op) {
   case OP_YEAR:
      set_int32(out, (int32_t) cv.year);
      break;
   case OP_MONTH:
      set_int32(out, cv.month);
      break;
   case OP_DAYOFMONTH:
      set_int32(out, cv.day);
      break;
   case OP_HOUR:
      set_int32(out, cv.hour);
      break;
   case OP_MINUTE:
      set_int32(out, cv.minute);
      break;
   case OP_SECOND:
      set_int32(out, cv.second);
      break;
   case OP_MILLISECOND:
      set_int32(out, cv.millis);
      break;
   case OP_DAYOFWEEK:
      set_int32(out, cv.wday + 1);
      break;
   case OP_WEEK:
      set_int32(out, (cv.yday + 7 - cv.wday) / 7);
      break;
   case OP_ISOWEEK:
   case OP_ISOWEEKYEAR: {
      int64_t iy;
      int wk;
      iso_week(&cv, &iy, &wk);
      set_int32(out, e->op == OP_ISOWEEK ? wk : (int32_t) iy);
      break;
   }
   case OP_ISODAYOFWEEK:
      set_int32(out, cv.wday == 0 ? 7 : cv.wday);
      break;
   default:
      set_int32(out, cv.yday + 1);
      break;
   }
   ok = true;
cleanup:
   bson_value_destroy(&d);
   bson_value_destroy(&tz);
   return ok;
}

static bool
op_date_to_string(const flora__expr_t *e, ctx_t *c, bson_value_t *out, flora_error_t *error)
{
   bson_value_t v[4];
   int64_t offset = 0;
   int64_t ms = 0;
   bool ok = false;
   static const char def[] = "%Y-%m-%dT%H:%M:%S.%LZ";

   for (int i = 0; i < 4; i++) {
      set_missing(&v[i]);
   }
   for (int i = 0; i < 4; i++) {
      if (e->args[i] && !eval(e->args[i], c, &v[i], error)) {
         goto cleanup;
      }
   }
   if (e->args[1] && !is_nullish(&v[1]) && v[1].value_type != BSON_TYPE_UTF8) {
      fail_code(error, 18533, "$dateToString requires that 'format' be a string, found: %s",
                type_name(&v[1]));
      goto cleanup;
   }
   if (is_nullish(&v[0])) {
      if (e->args[3]) {
         copy_value(out, &v[3]);
      } else {
         set_null(out);
      }
      ok = true;
      goto cleanup;
   }
   if ((e->args[1] && is_nullish(&v[1])) || (e->args[2] && is_nullish(&v[2]))) {
      set_null(out);
      ok = true;
      goto cleanup;
   }
   if (!date_of("$dateToString", &v[0], &ms, error) ||
       (e->args[2] && !zone_offset(&v[2], ms, c->cache, &offset, error))) {
      goto cleanup;
   }
   if (e->args[1]) {
      ok = format_date(v[1].value.v_utf8.str, v[1].value.v_utf8.len, ms + offset, offset, out,
                       error);
   } else {
      ok = format_date(def, sizeof def - 1, ms + offset, offset, out, error);
   }
cleanup:
   for (int i = 0; i < 4; i++) {
      bson_value_destroy(&v[i]);
   }
   return ok;
}

/* ---- strings and conversions --------------------------------------------------------- */

/* A double as mongod's StringBuilder writes it: printf's "%g", six significant digits
 * (mongo/bson/util/builder.h). */
static void
format_double(double d, char *buf, size_t len)
{
   snprintf(buf, len, "%g", d);
}

static void
format_iso_date(int64_t ms, char *buf, size_t len)
{
   civil_t c;

   civil_from_ms(ms, &c);
   snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int) c.year, c.month, c.day,
            c.hour, c.minute, c.second, c.millis);
}

/* Value::coerceToString: numbers, dates, timestamps and strings; null/missing give "". */
static bool
coerce_string(const char *op, const bson_value_t *v, bson_value_t *out, flora_error_t *error)
{
   char buf[128];

   switch (v->value_type) {
   case BSON_TYPE_EOD:
   case BSON_TYPE_NULL:
   case BSON_TYPE_UNDEFINED:
      set_string(out, "");
      return true;
   case BSON_TYPE_UTF8:
      copy_value(out, v);
      return true;
   case BSON_TYPE_SYMBOL:
      set_string_n(out, v->value.v_symbol.symbol, v->value.v_symbol.len);
      return true;
   case BSON_TYPE_INT32:
      snprintf(buf, sizeof buf, "%" PRId32, v->value.v_int32);
      break;
   case BSON_TYPE_INT64:
      snprintf(buf, sizeof buf, "%" PRId64, v->value.v_int64);
      break;
   case BSON_TYPE_DOUBLE:
      format_double(v->value.v_double, buf, sizeof buf);
      break;
   case BSON_TYPE_DECIMAL128:
      bson_decimal128_to_string(&v->value.v_decimal128, buf);
      break;
   case BSON_TYPE_DATE_TIME: {
      /* Value::coerceToString: seconds precision, no zone letter */
      civil_t c;
      civil_from_ms(v->value.v_datetime, &c);
      snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", (int) c.year, c.month, c.day,
               c.hour, c.minute, c.second);
      break;
   }
   case BSON_TYPE_TIMESTAMP:
      snprintf(buf, sizeof buf, "Timestamp(%u, %u)", v->value.v_timestamp.timestamp,
               v->value.v_timestamp.increment);
      break;
   default:
      return fail_code(error, 16007, "can't convert from BSON type %s to String (in %s)",
                       type_name(v), op);
   }
   set_string(out, buf);
   return true;
}

static bool
conversion_error(flora_error_t *error, const bson_value_t *v, const char *target)
{
   return fail_code(error, 241,
                    "Unsupported conversion from %s to %s in $convert with no onError value",
                    type_name(v), target);
}

static bool
op_to_string(const bson_value_t *v, bson_value_t *out, flora_error_t *error)
{
   char buf[32];

   switch (v->value_type) {
   case BSON_TYPE_BOOL:
      set_string(out, v->value.v_bool ? "true" : "false");
      return true;
   case BSON_TYPE_OID:
      bson_oid_to_string(&v->value.v_oid, buf);
      set_string(out, buf);
      return true;
   case BSON_TYPE_DOUBLE: {
      /* $convert's performFormatDouble: names for the special values, else "%g" */
      double d = v->value.v_double;
      if (isnan(d)) {
         set_string(out, "NaN");
      } else if (isinf(d)) {
         set_string(out, d > 0 ? "Infinity" : "-Infinity");
      } else if (d == 0.0 && signbit(d)) {
         set_string(out, "-0");
      } else {
         format_double(d, buf, sizeof buf);
         set_string(out, buf);
      }
      return true;
   }
   case BSON_TYPE_DATE_TIME:
      format_iso_date(v->value.v_datetime, buf, sizeof buf);
      set_string(out, buf);
      return true;
   case BSON_TYPE_UTF8:
   case BSON_TYPE_SYMBOL:
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DECIMAL128:
      return coerce_string("$toString", v, out, error);
   default:
      return conversion_error(error, v, "string");
   }
}

/* Integral conversions ($toInt, $toLong). */
static bool
op_to_integer(bool to_long, const bson_value_t *v, bson_value_t *out, flora_error_t *error)
{
   const char *target = to_long ? "long" : "int";
   int64_t lo = to_long ? INT64_MIN : INT32_MIN, hi = to_long ? INT64_MAX : INT32_MAX;
   int64_t r = 0;

   switch (v->value_type) {
   case BSON_TYPE_BOOL:
      r = v->value.v_bool;
      break;
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
      r = as_i64(v);
      if (r < lo || r > hi) {
         return fail_code(error, 241,
                          "Conversion would overflow target type in $convert with no onError "
                          "value: %" PRId64,
                          r);
      }
      break;
   case BSON_TYPE_DOUBLE:
   case BSON_TYPE_DECIMAL128: {
      double d = as_double(v);
      if (isnan(d) || isinf(d)) {
         return fail_code(error, 241,
                          "Attempt to convert %s value to integer type in $convert with no "
                          "onError value",
                          isnan(d) ? "NaN" : "infinity");
      }
      if (v->value_type == BSON_TYPE_DECIMAL128) {
         _IDEC_flags fl = 0;
         r = bid128_to_int64_int(bid_of(v->value.v_decimal128), &fl);
         if (fl & BID_INVALID_EXCEPTION) {
            r = d < 0 ? INT64_MIN : INT64_MAX;
            fl = 1;
         }
         if (fl == 1 || r < lo || r > hi) {
            return fail_code(error, 241,
                             "Conversion would overflow target type in $convert with no "
                             "onError value");
         }
      } else {
         d = trunc(d);
         if (d < (double) lo || d >= -(double) lo) {
            return fail_code(error, 241,
                             "Conversion would overflow target type in $convert with no "
                             "onError value: %g",
                             d);
         }
         r = (int64_t) d;
      }
      break;
   }
   case BSON_TYPE_DATE_TIME:
      if (!to_long) {
         return conversion_error(error, v, target);
      }
      r = v->value.v_datetime;
      break;
   case BSON_TYPE_UTF8: {
      const char *s = v->value.v_utf8.str;
      char *end = NULL;
      long long ll;
      if (!s[0] || isspace((unsigned char) s[0]) || strlen(s) != v->value.v_utf8.len) {
         return fail_code(error, 241,
                          "Failed to parse number '%s' in $convert with no onError value", s);
      }
      errno = 0;
      ll = strtoll(s, &end, 10);
      if (*end != '\0') {
         return fail_code(error, 241,
                          "Failed to parse number '%s' in $convert with no onError value: Bad "
                          "digit \"%c\" while parsing %s",
                          s, *end, s);
      }
      if (errno == ERANGE || ll < lo || ll > hi) {
         return fail_code(error, 241,
                          "Failed to parse number '%s' in $convert with no onError value: "
                          "Overflow",
                          s);
      }
      r = ll;
      break;
   }
   default:
      return conversion_error(error, v, target);
   }
   if (to_long) {
      set_int64(out, r);
   } else {
      set_int32(out, (int32_t) r);
   }
   return true;
}

static bool
op_to_double(const bson_value_t *v, bson_value_t *out, flora_error_t *error)
{
   switch (v->value_type) {
   case BSON_TYPE_BOOL:
      set_double(out, v->value.v_bool ? 1.0 : 0.0);
      return true;
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DOUBLE:
   case BSON_TYPE_DECIMAL128:
      set_double(out, as_double(v));
      return true;
   case BSON_TYPE_DATE_TIME:
      set_double(out, (double) v->value.v_datetime);
      return true;
   case BSON_TYPE_UTF8: {
      const char *s = v->value.v_utf8.str;
      char *end = NULL;
      double d;
      if (!s[0] || isspace((unsigned char) s[0]) || strlen(s) != v->value.v_utf8.len) {
         return fail_code(error, 241,
                          "Failed to parse number '%s' in $convert with no onError value", s);
      }
      d = strtod(s, &end);
      if (*end != '\0' || strpbrk(s, "xX")) {
         return fail_code(error, 241,
                          "Failed to parse number '%s' in $convert with no onError value: Did "
                          "not consume whole string.",
                          s);
      }
      set_double(out, d);
      return true;
   }
   default:
      return conversion_error(error, v, "double");
   }
}

static bool
op_to_decimal(const bson_value_t *v, bson_value_t *out, flora_error_t *error)
{
   switch (v->value_type) {
   case BSON_TYPE_BOOL:
      set_bid(out, bid128_from_int32(v->value.v_bool ? 1 : 0));
      return true;
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DOUBLE:
   case BSON_TYPE_DECIMAL128:
      set_bid(out, bid_from_number(v));
      return true;
   case BSON_TYPE_DATE_TIME:
      set_bid(out, bid128_from_int64(v->value.v_datetime));
      return true;
   case BSON_TYPE_UTF8: {
      bson_decimal128_t d;
      if (!bson_decimal128_from_string(v->value.v_utf8.str, &d) ||
          strlen(v->value.v_utf8.str) != v->value.v_utf8.len) {
         return fail_code(error, 241,
                          "Failed to parse number '%s' in $convert with no onError value",
                          v->value.v_utf8.str);
      }
      memset(out, 0, sizeof *out);
      out->value_type = BSON_TYPE_DECIMAL128;
      out->value.v_decimal128 = d;
      return true;
   }
   default:
      return conversion_error(error, v, "decimal");
   }
}

static size_t
utf8_char_len(unsigned char c)
{
   return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

/* Decodes one code point at s (len bytes available). */
static uint32_t
utf8_decode(const unsigned char *s, size_t len, size_t *n)
{
   size_t k = utf8_char_len(s[0]);
   uint32_t cp;

   if (k > len) {
      k = 1;
   }
   *n = k;
   if (k == 1) {
      return s[0];
   }
   cp = s[0] & (0xFF >> (k + 1));
   for (size_t i = 1; i < k; i++) {
      cp = (cp << 6) | (s[i] & 0x3F);
   }
   return cp;
}

static bool
is_default_trim(uint32_t cp)
{
   return cp == 0 || cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || cp == 0xA0 || cp == 0x1680 ||
          (cp >= 0x2000 && cp <= 0x200A);
}

static bool
in_trim_set(uint32_t cp, const bson_value_t *chars)
{
   const unsigned char *s;
   size_t len, i = 0;

   if (!chars) {
      return is_default_trim(cp);
   }
   s = (const unsigned char *) chars->value.v_utf8.str;
   len = chars->value.v_utf8.len;
   while (i < len) {
      size_t n;
      if (utf8_decode(s + i, len - i, &n) == cp) {
         return true;
      }
      i += n;
   }
   return false;
}

static bool
op_trim(const flora__expr_t *e, const bson_value_t *in, const bson_value_t *chars,
        bson_value_t *out, flora_error_t *error)
{
   const unsigned char *s;
   size_t len, start = 0, end;

   if (is_nullish(in) || (chars && is_nullish(chars))) {
      set_null(out);
      return true;
   }
   if (in->value_type != BSON_TYPE_UTF8) {
      return fail_code(error, 50699, "%s requires its input to be a string, got %s instead.",
                       e->op_name, type_name(in));
   }
   if (chars && chars->value_type != BSON_TYPE_UTF8) {
      return fail_code(error, 50700,
                       "%s requires 'chars' to be a string, got %s instead.", e->op_name,
                       type_name(chars));
   }
   s = (const unsigned char *) in->value.v_utf8.str;
   len = in->value.v_utf8.len;
   end = len;
   if (e->op != OP_RTRIM) {
      while (start < len) {
         size_t n;
         uint32_t cp = utf8_decode(s + start, len - start, &n);
         if (!in_trim_set(cp, chars)) {
            break;
         }
         start += n;
      }
   }
   if (e->op != OP_LTRIM) {
      while (end > start) {
         size_t b = end - 1, n;
         uint32_t cp;
         while (b > start && (s[b] & 0xC0) == 0x80) {
            b--;
         }
         cp = utf8_decode(s + b, end - b, &n);
         if (!in_trim_set(cp, chars)) {
            break;
         }
         end = b;
      }
   }
   set_string_n(out, (const char *) s + start, end - start);
   return true;
}

/* An integral numeric argument (for $substr*, $slice, $arrayElemAt). */
static bool
int_arg(const bson_value_t *v, int64_t *out)
{
   return num_kind(v) >= 0 && flora__number_as_int64(v, out);
}

/* ---- objects ------------------------------------------------------------------------- */

/* An ordered field list whose values are borrowed; setting an existing name replaces its
 * value in place (MutableDocument::setField). */
typedef struct fields {
   const char **names;
   uint32_t *lens;
   const bson_value_t **vals;
   size_t n, cap;
} fields_t;

static void
fields_set(fields_t *f, const char *name, uint32_t len, const bson_value_t *v)
{
   for (size_t i = 0; i < f->n; i++) {
      if (f->lens[i] == len && memcmp(f->names[i], name, len) == 0) {
         f->vals[i] = v;
         return;
      }
   }
   if (f->n == f->cap) {
      f->cap = f->cap ? f->cap * 2 : 8;
      f->names = bson_realloc(f->names, f->cap * sizeof *f->names);
      f->lens = bson_realloc(f->lens, f->cap * sizeof *f->lens);
      f->vals = bson_realloc(f->vals, f->cap * sizeof *f->vals);
   }
   f->names[f->n] = name;
   f->lens[f->n] = len;
   f->vals[f->n++] = v;
}

static void
fields_build(fields_t *f, bson_value_t *out)
{
   bson_t doc = BSON_INITIALIZER;

   for (size_t i = 0; i < f->n; i++) {
      flora__value_append(&doc, f->names[i], (int) f->lens[i], f->vals[i]);
   }
   set_from_bson(out, &doc, false);
   bson_free(f->names);
   bson_free(f->lens);
   bson_free(f->vals);
   memset(f, 0, sizeof *f);
}

/* The elements of a document or array value (shallow: values point into v). Arrays of
 * bson_iter_t are avoided because libbson over-aligns that type. */
typedef struct elem {
   const char *key;
   uint32_t key_len;
   bson_value_t value;
} elem_t;

static size_t
collect_elems(const bson_value_t *v, elem_t **elems)
{
   bson_t b;
   bson_iter_t it;
   size_t n = 0, cap = 0;

   *elems = NULL;
   value_bson(v, &b);
   bson_iter_init(&it, &b);
   while (bson_iter_next(&it)) {
      if (n == cap) {
         cap = cap ? cap * 2 : 8;
         *elems = bson_realloc(*elems, cap * sizeof **elems);
      }
      (*elems)[n].key = bson_iter_key(&it);
      (*elems)[n].key_len = bson_iter_key_len(&it);
      (*elems)[n].value = *bson_iter_value(&it);
      n++;
   }
   return n;
}

static bool
op_merge_objects(const bson_value_t *vals, size_t n, bson_value_t *out, flora_error_t *error)
{
   fields_t f = {0};
   elem_t **all = bson_malloc0((n ? n : 1) * sizeof *all);
   bool ok = false;

   for (size_t i = 0; i < n; i++) {
      size_t cnt;
      if (is_nullish(&vals[i])) {
         continue;
      }
      if (!is_doc(&vals[i])) {
         fail_code(error, 40400, "$mergeObjects requires object inputs, but input is of type %s",
                   type_name(&vals[i]));
         goto cleanup;
      }
      cnt = collect_elems(&vals[i], &all[i]);
      for (size_t j = 0; j < cnt; j++) {
         fields_set(&f, all[i][j].key, all[i][j].key_len, &all[i][j].value);
      }
   }
   fields_build(&f, out);
   ok = true;
cleanup:
   for (size_t i = 0; i < n; i++) {
      bson_free(all[i]);
   }
   bson_free(all);
   if (!ok) {
      bson_free(f.names);
      bson_free(f.lens);
      bson_free(f.vals);
   }
   return ok;
}

static bool
op_object_to_array(const bson_value_t *v, bson_value_t *out, flora_error_t *error)
{
   bson_t b, arr = BSON_INITIALIZER;
   bson_iter_t it;
   uint32_t idx = 0;

   if (is_nullish(v)) {
      set_null(out);
      bson_destroy(&arr);
      return true;
   }
   if (!is_doc(v)) {
      bson_destroy(&arr);
      return fail_code(error, 40390, "$objectToArray requires a document input, found: %s",
                       type_name(v));
   }
   value_bson(v, &b);
   bson_iter_init(&it, &b);
   while (bson_iter_next(&it)) {
      bson_t kv;
      char buf[16];
      const char *key;
      size_t klen = bson_uint32_to_string(idx++, &key, buf, sizeof buf);
      bson_append_document_begin(&arr, key, (int) klen, &kv);
      bson_append_utf8(&kv, "k", 1, bson_iter_key(&it), (int) bson_iter_key_len(&it));
      bson_append_value(&kv, "v", 1, bson_iter_value(&it));
      bson_append_document_end(&arr, &kv);
   }
   set_from_bson(out, &arr, true);
   return true;
}

static bool
op_array_to_object(const bson_value_t *v, bson_value_t *out, flora_error_t *error)
{
   elem_t *elems = NULL;
   elem_t *kv = NULL;
   size_t n, nkv = 0;
   fields_t f = {0};
   bson_value_t *vals = NULL;
   bool ok = false;
   int form = -1; /* 0: [k, v] pairs, 1: {k, v} documents */

   if (is_nullish(v)) {
      set_null(out);
      return true;
   }
   if (!is_array(v)) {
      return fail_code(error, 40386, "$arrayToObject requires an array input, found: %s",
                       type_name(v));
   }
   n = collect_elems(v, &elems);
   vals = bson_malloc0((n ? n : 1) * sizeof *vals);
   for (size_t i = 0; i < n; i++) {
      const bson_value_t *ev = &elems[i].value;
      const bson_value_t *k = NULL, *val = NULL;
      bson_free(kv);
      kv = NULL;
      if (is_array(ev) && form != 1) {
         form = 0;
         nkv = collect_elems(ev, &kv);
         if (nkv != 2) {
            fail_code(error, 40397,
                      "$arrayToObject requires an array of size 2 arrays,found array of size: %zu",
                      nkv);
            goto cleanup;
         }
         k = &kv[0].value;
         val = &kv[1].value;
      } else if (is_doc(ev) && form != 0) {
         form = 1;
         nkv = collect_elems(ev, &kv);
         if (nkv != 2 || strcmp(kv[0].key, "k") != 0 ||
             strcmp(kv[1].key, "v") != 0) {
            if (nkv == 2 && strcmp(kv[0].key, "v") == 0 &&
                strcmp(kv[1].key, "k") == 0) {
               k = &kv[1].value;
               val = &kv[0].value;
            } else {
               fail_code(error, 40392,
                         "$arrayToObject requires an object keys of 'k' and 'v'. Found "
                         "incorrect number of keys:%zu",
                         nkv);
               goto cleanup;
            }
         } else {
            k = &kv[0].value;
            val = &kv[1].value;
         }
      } else {
         fail_code(error, 40398,
                   "Unrecognised input type format for $arrayToObject: %s", type_name(ev));
         goto cleanup;
      }
      if (k->value_type != BSON_TYPE_UTF8) {
         fail_code(error, form == 0 ? 40395 : 40394,
                   "$arrayToObject requires a consistent input format. Expected key to be a "
                   "string, found: %s",
                   type_name(k));
         goto cleanup;
      }
      if (strlen(k->value.v_utf8.str) != k->value.v_utf8.len) {
         fail_code(error, 4940400, "Key field cannot contain an embedded null byte");
         goto cleanup;
      }
      vals[i] = *val;
      fields_set(&f, k->value.v_utf8.str, k->value.v_utf8.len, &vals[i]);
   }
   fields_build(&f, out);
   ok = true;
cleanup:
   bson_free(kv);
   bson_free(elems);
   bson_free(vals);
   if (!ok) {
      bson_free(f.names);
      bson_free(f.lens);
      bson_free(f.vals);
   }
   return ok;
}

/* ---- arrays -------------------------------------------------------------------------- */

static bool
op_slice(const bson_value_t *vals, size_t n, bson_value_t *out, flora_error_t *error)
{
   int64_t pos = 0, count, len;
   elem_t *items = NULL;
   bson_t arr = BSON_INITIALIZER;
   uint32_t idx = 0;
   int64_t start, stop;

   for (size_t i = 0; i < n; i++) {
      if (is_nullish(&vals[i])) {
         set_null(out);
         bson_destroy(&arr);
         return true;
      }
   }
   if (!is_array(&vals[0])) {
      bson_destroy(&arr);
      return fail_code(error, 28724, "First argument to $slice must be an array, but is of type: %s",
                       type_name(&vals[0]));
   }
   if (!int_arg(&vals[1], n == 3 ? &pos : &count)) {
      bson_destroy(&arr);
      return fail_code(error, 28725, "Second argument to $slice must be a numeric value, but is "
                       "of type: %s", type_name(&vals[1]));
   }
   if (n == 3) {
      if (!int_arg(&vals[2], &count)) {
         bson_destroy(&arr);
         return fail_code(error, 28727, "Third argument to $slice must be numeric, but is of "
                          "type: %s", type_name(&vals[2]));
      }
      if (count <= 0) {
         bson_destroy(&arr);
         return fail_code(error, 28729, "Third argument to $slice must be positive: %" PRId64,
                          count);
      }
   }
   len = (int64_t) collect_elems(&vals[0], &items);
   if (n == 2) {
      if (count >= 0) {
         start = 0;
         stop = count < len ? count : len;
      } else {
         start = len + count < 0 ? 0 : len + count;
         stop = len;
      }
   } else {
      start = pos >= 0 ? (pos < len ? pos : len) : (len + pos < 0 ? 0 : len + pos);
      stop = count > len - start ? len : start + count;
   }
   for (int64_t i = start; i < stop; i++) {
      array_push(&arr, &idx, &items[i].value);
   }
   bson_free(items);
   set_from_bson(out, &arr, true);
   return true;
}

/* ---- more math ---------------------------------------------------------------------- */

/* $sqrt $exp $ln $log10: double results (decimal128 for a decimal argument). */
static bool
op_math1(const flora__expr_t *e, const bson_value_t *a, bson_value_t *out, flora_error_t *error)
{
   _IDEC_flags fl = 0;
   double d;

   if (is_nullish(a)) {
      set_null(out);
      return true;
   }
   if (num_kind(a) < 0) {
      return fail_code(error, 28765, "%s only supports numeric types, not %s", e->op_name,
                       type_name(a));
   }
   d = as_double(a);
   if (e->op == OP_SQRT && d < 0) {
      return fail_code(error, 28714, "$sqrt's argument must be greater than or equal to 0");
   }
   if ((e->op == OP_LN || e->op == OP_LOG10) && !(d > 0) && !isnan(d)) {
      return fail_code(error, e->op == OP_LN ? 28766 : 28761,
                       "%s's argument must be a positive number, but is %g", e->op_name, d);
   }
   if (num_kind(a) == 3) {
      BID_UINT128 x = bid_of(a->value.v_decimal128);
      set_bid(out, e->op == OP_SQRT  ? bid128_sqrt(x, BID_ROUNDING_TO_NEAREST, &fl)
                   : e->op == OP_EXP ? bid128_exp(x, BID_ROUNDING_TO_NEAREST, &fl)
                   : e->op == OP_LN  ? bid128_log(x, BID_ROUNDING_TO_NEAREST, &fl)
                                     : bid128_log10(x, BID_ROUNDING_TO_NEAREST, &fl));
      return true;
   }
   set_double(out, e->op == OP_SQRT  ? sqrt(d)
                   : e->op == OP_EXP ? exp(d)
                   : e->op == OP_LN  ? log(d)
                                     : log10(d));
   return true;
}

/* $log [number, base]. */
static bool
op_log(const bson_value_t *a, const bson_value_t *b, bson_value_t *out, flora_error_t *error)
{
   _IDEC_flags fl = 0;
   double x, base;

   if (is_nullish(a) || is_nullish(b)) {
      set_null(out);
      return true;
   }
   if (num_kind(a) < 0 || num_kind(b) < 0) {
      return fail_code(error, num_kind(a) < 0 ? 28756 : 28757,
                       "$log's %s argument must be numeric, not %s",
                       num_kind(a) < 0 ? "argument" : "base", type_name(num_kind(a) < 0 ? a : b));
   }
   x = as_double(a);
   base = as_double(b);
   if (!(x > 0) && !isnan(x)) {
      return fail_code(error, 28758, "$log's argument must be a positive number, but is %g", x);
   }
   if ((!(base > 0) || base == 1) && !isnan(base)) {
      return fail_code(error, 28759,
                       "$log's base must be a positive number not equal to 1, but is %g", base);
   }
   if (num_kind(a) == 3 || num_kind(b) == 3) {
      set_bid(out, bid128_div(bid128_log(bid_from_number(a), BID_ROUNDING_TO_NEAREST, &fl),
                              bid128_log(bid_from_number(b), BID_ROUNDING_TO_NEAREST, &fl),
                              BID_ROUNDING_TO_NEAREST, &fl));
   } else {
      set_double(out, log(x) / log(base));
   }
   return true;
}

/* $pow: integer powers stay integers while they fit (int32, then int64), as mongod does. */
static bool
op_pow(const bson_value_t *a, const bson_value_t *b, bson_value_t *out, flora_error_t *error)
{
   _IDEC_flags fl = 0;

   if (is_nullish(a) || is_nullish(b)) {
      set_null(out);
      return true;
   }
   if (num_kind(a) < 0 || num_kind(b) < 0) {
      return fail_code(error, num_kind(a) < 0 ? 28762 : 28763,
                       "$pow's %s must be numeric, not %s", num_kind(a) < 0 ? "base" : "exponent",
                       type_name(num_kind(a) < 0 ? a : b));
   }
   if (!flora__agg_truthy(a) && as_double(b) < 0) {
      return fail_code(error, 28764, "$pow cannot take a base of 0 and a negative exponent");
   }
   if (num_kind(a) == 3 || num_kind(b) == 3) {
      set_bid(out, bid128_pow(bid_from_number(a), bid_from_number(b), BID_ROUNDING_TO_NEAREST, &fl));
      return true;
   }
   if (num_kind(a) <= 1 && num_kind(b) <= 1) {
      int64_t base = as_i64(a), ex = as_i64(b), r = 1;
      bool both32 = num_kind(a) == 0 && num_kind(b) == 0, ovf = false;
      if (ex < 0) {
         if (base == 1 || base == -1) {
            r = (base == -1 && (ex % 2 != 0)) ? -1 : 1;
            if (both32) {
               set_int32(out, (int32_t) r);
            } else {
               set_int64(out, r);
            }
         } else {
            set_double(out, pow((double) base, (double) ex));
         }
         return true;
      }
      for (int64_t i = 0; i < ex && !ovf; i++) {
         ovf = __builtin_mul_overflow(r, base, &r);
         if (r == 0 || r == 1) {
            break; /* 0^n, 1^n */
         }
      }
      if (base == -1) {
         r = ex % 2 ? -1 : 1;
         ovf = false;
      }
      if (ovf) {
         set_double(out, pow((double) base, (double) ex));
      } else if (both32) {
         set_int_or_long(out, r);
      } else {
         set_int64(out, r);
      }
      return true;
   }
   set_double(out, pow(as_double(a), as_double(b)));
   return true;
}

/* ---- sets ---------------------------------------------------------------------------- */

static bool
set_has(const elem_t *items, size_t n, const bson_value_t *v)
{
   for (size_t i = 0; i < n; i++) {
      if (flora__agg_compare(&items[i].value, v) == 0) {
         return true;
      }
   }
   return false;
}

/* Every element of a (array value) is in b (array value). */
static bool
set_subset(const bson_value_t *a, const bson_value_t *b)
{
   elem_t *ea = NULL, *eb = NULL;
   size_t na = collect_elems(a, &ea), nb = collect_elems(b, &eb);
   bool ok = true;

   for (size_t i = 0; ok && i < na; i++) {
      ok = set_has(eb, nb, &ea[i].value);
   }
   bson_free(ea);
   bson_free(eb);
   return ok;
}

static bool
op_set(const flora__expr_t *e, const bson_value_t *v, size_t n, bson_value_t *out,
       flora_error_t *error)
{
   bool nullable = e->op == OP_SETUNION || e->op == OP_SETINTERSECTION ||
                   e->op == OP_SETDIFFERENCE;
   bson_t arr = BSON_INITIALIZER;
   uint32_t idx = 0;
   elem_t *seen = NULL;
   size_t nseen = 0, cap = 0;

   for (size_t i = 0; i < n; i++) {
      if (nullable && is_nullish(&v[i])) {
         bson_destroy(&arr);
         set_null(out);
         return true;
      }
      if (!is_array(&v[i])) {
         bson_destroy(&arr);
         return fail_code(error, e->op == OP_SETUNION ? 17043 : e->op == OP_SETINTERSECTION ? 17047
                                 : e->op == OP_SETDIFFERENCE ? 17048 : e->op == OP_SETEQUALS ? 17044
                                                                                             : 17046,
                          "All operands of %s must be arrays. One argument is of type: %s",
                          e->op_name, type_name(&v[i]));
      }
   }
   if (e->op == OP_SETEQUALS || e->op == OP_SETISSUBSET) {
      bool r = true;
      for (size_t i = 1; r && i < n; i++) {
         r = set_subset(&v[0], &v[i]) && (e->op == OP_SETISSUBSET || set_subset(&v[i], &v[0]));
      }
      bson_destroy(&arr);
      set_bool(out, r);
      return true;
   }
   for (size_t i = 0; i < (e->op == OP_SETUNION ? n : (n ? 1 : 0)); i++) {
      elem_t *items = NULL;
      size_t cnt = collect_elems(&v[i], &items);
      for (size_t j = 0; j < cnt; j++) {
         bool keep = !set_has(seen, nseen, &items[j].value);
         for (size_t k = 1; keep && e->op == OP_SETINTERSECTION && k < n; k++) {
            elem_t *other = NULL;
            size_t no = collect_elems(&v[k], &other);
            keep = set_has(other, no, &items[j].value);
            bson_free(other);
         }
         if (keep && e->op == OP_SETDIFFERENCE) {
            elem_t *other = NULL;
            size_t no = collect_elems(&v[1], &other);
            keep = !set_has(other, no, &items[j].value);
            bson_free(other);
         }
         if (keep) {
            if (nseen == cap) {
               cap = cap ? cap * 2 : 8;
               seen = bson_realloc(seen, cap * sizeof *seen);
            }
            seen[nseen++] = items[j];
            array_push(&arr, &idx, &items[j].value);
         }
      }
      bson_free(items);
   }
   bson_free(seen);
   set_from_bson(out, &arr, true);
   return true;
}

/* $sum $avg $min $max as expressions: over the elements of a single array operand, else
 * over the operands. Non-numbers are ignored by $sum/$avg, null and missing by $min/$max. */
static bool
op_array_acc(const flora__expr_t *e, const bson_value_t *v, size_t n, bson_value_t *out)
{
   elem_t *items = NULL;
   const bson_value_t *best = NULL;
   flora__sum_t sum;
   size_t count = n;

   flora__sum_init(&sum);
   if (n == 1 && is_array(&v[0])) {
      count = collect_elems(&v[0], &items);
   }
   for (size_t i = 0; i < count; i++) {
      const bson_value_t *x = items ? &items[i].value : &v[i];
      if (e->op == OP_SUM || e->op == OP_AVG) {
         if (num_kind(x) >= 0) {
            flora__sum_add(&sum, x);
         }
      } else if (!is_nullish(x)) {
         int c = best ? flora__agg_compare(x, best) : 0;
         if (!best || (e->op == OP_MIN ? c < 0 : c > 0)) {
            best = x;
         }
      }
   }
   if (e->op == OP_SUM) {
      flora__sum_value(&sum, out);
   } else if (e->op == OP_AVG) {
      flora__sum_mean(&sum, out);
   } else if (best) {
      copy_value(out, best);
   } else {
      set_null(out);
   }
   bson_free(items);
   return true;
}

/* Evaluates every argument of e into vals (owned; destroy with destroy_vals). */
static bool
eval_args(const flora__expr_t *e, ctx_t *c, bson_value_t *vals, flora_error_t *error)
{
   for (size_t i = 0; i < e->nargs; i++) {
      set_missing(&vals[i]);
   }
   for (size_t i = 0; i < e->nargs; i++) {
      if (e->args[i] && !eval(e->args[i], c, &vals[i], error)) {
         return false;
      }
   }
   return true;
}

static void
destroy_vals(bson_value_t *vals, size_t n)
{
   for (size_t i = 0; i < n; i++) {
      bson_value_destroy(&vals[i]);
   }
}

static bool
op_filter_map(const flora__expr_t *e, ctx_t *c, bson_value_t *out, flora_error_t *error)
{
   bson_value_t input, lim;
   bson_t b, arr = BSON_INITIALIZER;
   bson_iter_t it;
   uint32_t idx = 0;
   int64_t limit = -1;
   bool ok = false;
   bool filter = e->op == OP_FILTER;

   set_missing(&lim);
   if (!eval(e->args[0], c, &input, error)) {
      bson_destroy(&arr);
      return false;
   }
   if (is_nullish(&input)) {
      set_null(out);
      ok = true;
      goto cleanup;
   }
   if (!is_array(&input)) {
      fail_code(error, filter ? 28651 : 16883, "input to %s must be an array not %s", e->op_name,
                type_name(&input));
      goto cleanup;
   }
   if (filter && e->args[2]) {
      if (!eval(e->args[2], c, &lim, error)) {
         goto cleanup;
      }
      if (!is_nullish(&lim)) {
         if (!int_arg(&lim, &limit) || limit < 1 || limit > INT32_MAX) {
            fail_code(error, 327392,
                      "$filter: limit must be represented as a positive 32-bit integral value");
            goto cleanup;
         }
      }
   }
   value_bson(&input, &b);
   bson_iter_init(&it, &b);
   while (bson_iter_next(&it) && (limit < 0 || idx < (uint64_t) limit)) {
      bson_value_t r;
      c->vars[e->slot] = bson_iter_value(&it);
      if (!eval(e->args[1], c, &r, error)) {
         goto cleanup;
      }
      if (!filter) {
         array_push(&arr, &idx, &r);
      } else if (flora__agg_truthy(&r)) {
         array_push(&arr, &idx, bson_iter_value(&it));
      }
      bson_value_destroy(&r);
   }
   set_from_bson(out, &arr, true);
   bson_init(&arr);
   ok = true;
cleanup:
   bson_destroy(&arr);
   bson_value_destroy(&input);
   bson_value_destroy(&lim);
   return ok;
}

static bool
op_reduce(const flora__expr_t *e, ctx_t *c, bson_value_t *out, flora_error_t *error)
{
   bson_value_t input, acc;
   bson_t b;
   bson_iter_t it;

   set_missing(&acc);
   if (!eval(e->args[0], c, &input, error)) {
      return false;
   }
   if (is_nullish(&input)) {
      bson_value_destroy(&input);
      set_null(out);
      return true;
   }
   if (!is_array(&input)) {
      fail_code(error, 40080, "$reduce requires 'input' to be an array, found: %s",
                type_name(&input));
      bson_value_destroy(&input);
      return false;
   }
   if (!eval(e->args[1], c, &acc, error)) {
      bson_value_destroy(&input);
      return false;
   }
   value_bson(&input, &b);
   bson_iter_init(&it, &b);
   while (bson_iter_next(&it)) {
      bson_value_t next;
      c->vars[e->slot] = &acc;
      c->vars[e->slot2] = bson_iter_value(&it);
      if (!eval(e->args[2], c, &next, error)) {
         bson_value_destroy(&acc);
         bson_value_destroy(&input);
         return false;
      }
      bson_value_destroy(&acc);
      acc = next;
   }
   bson_value_destroy(&input);
   *out = acc;
   return true;
}

/* ---- the evaluator ------------------------------------------------------------------- */

static bool
eval_op_args(const flora__expr_t *e, ctx_t *c, const bson_value_t *v, size_t n, bson_value_t *out,
             flora_error_t *error)
{
   int cmp;

   switch (e->op) {
   case OP_ADD:
      return op_add(v, n, out, error);
   case OP_SUBTRACT:
      return op_subtract(&v[0], &v[1], out, error);
   case OP_MULTIPLY:
      return op_multiply(v, n, out, error);
   case OP_DIVIDE:
      return op_divide(&v[0], &v[1], out, error);
   case OP_MOD:
      return op_mod(&v[0], &v[1], out, error);
   case OP_ABS:
   case OP_CEIL:
   case OP_FLOOR:
      return op_unary_math(e, &v[0], out, error);
   case OP_ROUND:
   case OP_TRUNC:
      return op_round(e, v, n, out, error);
   case OP_EQ:
   case OP_NE:
   case OP_GT:
   case OP_GTE:
   case OP_LT:
   case OP_LTE:
   case OP_CMP:
      cmp = flora__agg_compare(&v[0], &v[1]);
      switch (e->op) {
      case OP_EQ:
         set_bool(out, cmp == 0);
         break;
      case OP_NE:
         set_bool(out, cmp != 0);
         break;
      case OP_GT:
         set_bool(out, cmp > 0);
         break;
      case OP_GTE:
         set_bool(out, cmp >= 0);
         break;
      case OP_LT:
         set_bool(out, cmp < 0);
         break;
      case OP_LTE:
         set_bool(out, cmp <= 0);
         break;
      default:
         set_int32(out, cmp < 0 ? -1 : cmp > 0 ? 1 : 0);
         break;
      }
      return true;
   case OP_NOT:
      set_bool(out, !flora__agg_truthy(&v[0]));
      return true;
   case OP_CONCAT: {
      bson_string_t *s;
      for (size_t i = 0; i < n; i++) {
         if (is_nullish(&v[i])) {
            set_null(out);
            return true;
         }
         if (v[i].value_type != BSON_TYPE_UTF8) {
            return fail_code(error, 16702, "$concat only supports strings, not %s",
                             type_name(&v[i]));
         }
      }
      s = bson_string_new(NULL);
      for (size_t i = 0; i < n; i++) {
         bson_string_append_printf(s, "%.*s", (int) v[i].value.v_utf8.len, v[i].value.v_utf8.str);
      }
      set_string_n(out, s->str, s->len);
      bson_string_free(s, true);
      return true;
   }
   case OP_TOLOWER:
   case OP_TOUPPER:
      if (!coerce_string(e->op_name, &v[0], out, error)) {
         return false;
      }
      for (uint32_t i = 0; i < out->value.v_utf8.len; i++) {
         char ch = out->value.v_utf8.str[i];
         if (e->op == OP_TOLOWER && ch >= 'A' && ch <= 'Z') {
            out->value.v_utf8.str[i] = (char) (ch - 'A' + 'a');
         } else if (e->op == OP_TOUPPER && ch >= 'a' && ch <= 'z') {
            out->value.v_utf8.str[i] = (char) (ch - 'a' + 'A');
         }
      }
      return true;
   case OP_SUBSTRCP:
   case OP_SUBSTRBYTES: {
      bson_value_t str;
      int64_t start, len;
      const unsigned char *s;
      size_t slen, b, bend;
      bool cp = e->op == OP_SUBSTRCP;
      if (!int_arg(&v[1], &start)) {
         return fail_code(error, cp ? 34450 : 16034,
                          "%s: starting index must be a numeric type (is BSON type %s)",
                          e->op_name, type_name(&v[1]));
      }
      if (!int_arg(&v[2], &len)) {
         return fail_code(error, cp ? 34452 : 16035,
                          "%s: length must be a numeric type (is BSON type %s)", e->op_name,
                          type_name(&v[2]));
      }
      if (cp && start < 0) {
         return fail_code(error, 34455,
                          "$substrCP: starting index must be non-negative (got: %" PRId64 ")",
                          start);
      }
      if (cp && len < 0) {
         return fail_code(error, 34454,
                          "$substrCP: length must be a nonnegative integer (got: %" PRId64 ")",
                          len);
      }
      if (!coerce_string(e->op_name, &v[0], &str, error)) {
         return false;
      }
      s = (const unsigned char *) str.value.v_utf8.str;
      slen = str.value.v_utf8.len;
      if (cp) {
         b = 0;
         for (int64_t i = 0; i < start && b < slen; i++) {
            b += utf8_char_len(s[b]);
         }
         b = b > slen ? slen : b;
         bend = b;
         for (int64_t i = 0; i < len && bend < slen; i++) {
            bend += utf8_char_len(s[bend]);
         }
         bend = bend > slen ? slen : bend;
      } else {
         b = start < 0 || (uint64_t) start > slen ? slen : (size_t) start;
         bend = len < 0 || (uint64_t) len > slen - b ? slen : b + (size_t) len;
         if ((b < slen && (s[b] & 0xC0) == 0x80) || (bend < slen && (s[bend] & 0xC0) == 0x80)) {
            bson_value_destroy(&str);
            return fail_code(error, 28656,
                             "$substrBytes: Invalid range, starting index is a UTF-8 "
                             "continuation byte.");
         }
      }
      set_string_n(out, (const char *) s + b, bend - b);
      bson_value_destroy(&str);
      return true;
   }
   case OP_STRLENCP:
   case OP_STRLENBYTES: {
      int64_t count = 0;
      if (v[0].value_type != BSON_TYPE_UTF8) {
         return fail_code(error, e->op == OP_STRLENCP ? 34471 : 34473,
                          "%s requires a string argument, found: %s", e->op_name,
                          type_name(&v[0]));
      }
      if (e->op == OP_STRLENBYTES) {
         count = v[0].value.v_utf8.len;
      } else {
         for (uint32_t i = 0; i < v[0].value.v_utf8.len; i++) {
            if ((v[0].value.v_utf8.str[i] & 0xC0) != 0x80) {
               count++;
            }
         }
      }
      set_int32(out, (int32_t) count);
      return true;
   }
   case OP_SPLIT: {
      bson_t arr = BSON_INITIALIZER;
      uint32_t idx = 0;
      const char *s, *d, *p, *end;
      size_t dlen;
      if (is_nullish(&v[0]) || is_nullish(&v[1])) {
         bson_destroy(&arr);
         set_null(out);
         return true;
      }
      if (v[0].value_type != BSON_TYPE_UTF8 || v[1].value_type != BSON_TYPE_UTF8) {
         bson_destroy(&arr);
         return fail_code(error, v[0].value_type != BSON_TYPE_UTF8 ? 40085 : 40086,
                          "$split requires an expression that evaluates to a string as a %s "
                          "argument, found: %s",
                          v[0].value_type != BSON_TYPE_UTF8 ? "first" : "second",
                          type_name(v[0].value_type != BSON_TYPE_UTF8 ? &v[0] : &v[1]));
      }
      if (v[1].value.v_utf8.len == 0) {
         bson_destroy(&arr);
         return fail_code(error, 40087, "$split requires a non-empty separator");
      }
      s = v[0].value.v_utf8.str;
      end = s + v[0].value.v_utf8.len;
      d = v[1].value.v_utf8.str;
      dlen = v[1].value.v_utf8.len;
      p = s;
      for (;;) {
         const char *hit = memmem(p, (size_t) (end - p), d, dlen);
         bson_value_t piece;
         set_string_n(&piece, p, (size_t) ((hit ? hit : end) - p));
         array_push(&arr, &idx, &piece);
         bson_value_destroy(&piece);
         if (!hit) {
            break;
         }
         p = hit + dlen;
      }
      set_from_bson(out, &arr, true);
      return true;
   }
   case OP_SIZE:
      if (!is_array(&v[0])) {
         return fail_code(error, 17124,
                          "The argument to $size must be an array. Type of argument was: %s",
                          type_name(&v[0]));
      }
      set_int32(out, (int32_t) array_len(&v[0]));
      return true;
   case OP_ARRAYELEMAT:
   case OP_FIRST:
   case OP_LAST: {
      int64_t i = e->op == OP_LAST ? -1 : 0;
      elem_t *items = NULL;
      int64_t len;
      if (is_nullish(&v[0]) || (e->op == OP_ARRAYELEMAT && is_nullish(&v[1]))) {
         set_null(out);
         return true;
      }
      if (!is_array(&v[0])) {
         return fail_code(error, 28689, "%s's %sargument must be an array, but is %s", e->op_name,
                          e->op == OP_ARRAYELEMAT ? "first " : "", type_name(&v[0]));
      }
      if (e->op == OP_ARRAYELEMAT) {
         if (num_kind(&v[1]) < 0) {
            return fail_code(error, 28690,
                             "$arrayElemAt's second argument must be a numeric value, but is %s",
                             type_name(&v[1]));
         }
         if (!int_arg(&v[1], &i) || i < INT32_MIN || i > INT32_MAX) {
            return fail_code(error, 28691,
                             "$arrayElemAt's second argument must be representable as a 32-bit "
                             "integer");
         }
      }
      len = (int64_t) collect_elems(&v[0], &items);
      if (i < 0) {
         i += len;
      }
      if (i < 0 || i >= len) {
         set_missing(out);
      } else {
         copy_value(out, &items[i].value);
      }
      bson_free(items);
      return true;
   }
   case OP_IN: {
      bson_t b;
      bson_iter_t it;
      bool found = false;
      if (!is_array(&v[1])) {
         return fail_code(error, 40081, "$in requires an array as a second argument, found: %s",
                          type_name(&v[1]));
      }
      value_bson(&v[1], &b);
      bson_iter_init(&it, &b);
      while (!found && bson_iter_next(&it)) {
         found = flora__agg_compare(&v[0], bson_iter_value(&it)) == 0;
      }
      set_bool(out, found);
      return true;
   }
   case OP_SLICE:
      return op_slice(v, n, out, error);
   case OP_ISARRAY:
      set_bool(out, is_array(&v[0]));
      return true;
   case OP_CONCATARRAYS: {
      bson_t arr = BSON_INITIALIZER;
      uint32_t idx = 0;
      for (size_t i = 0; i < n; i++) {
         if (is_nullish(&v[i])) {
            bson_destroy(&arr);
            set_null(out);
            return true;
         }
         if (!is_array(&v[i])) {
            bson_destroy(&arr);
            return fail_code(error, 28664, "$concatArrays only supports arrays, not %s",
                             type_name(&v[i]));
         }
      }
      for (size_t i = 0; i < n; i++) {
         bson_t b;
         bson_iter_t it;
         value_bson(&v[i], &b);
         bson_iter_init(&it, &b);
         while (bson_iter_next(&it)) {
            array_push(&arr, &idx, bson_iter_value(&it));
         }
      }
      set_from_bson(out, &arr, true);
      return true;
   }
   case OP_REVERSEARRAY: {
      bson_t arr = BSON_INITIALIZER;
      elem_t *items = NULL;
      uint32_t idx = 0;
      size_t len;
      if (is_nullish(&v[0])) {
         bson_destroy(&arr);
         set_null(out);
         return true;
      }
      if (!is_array(&v[0])) {
         bson_destroy(&arr);
         return fail_code(error, 34435,
                          "The argument to $reverseArray must be an array, but was of type: %s",
                          type_name(&v[0]));
      }
      len = collect_elems(&v[0], &items);
      for (size_t i = len; i > 0; i--) {
         array_push(&arr, &idx, &items[i - 1].value);
      }
      bson_free(items);
      set_from_bson(out, &arr, true);
      return true;
   }
   case OP_TOSTRING:
   case OP_TOINT:
   case OP_TOLONG:
   case OP_TO_DOUBLE:
   case OP_TO_DECIMAL:
   case OP_TOBOOL:
      if (is_nullish(&v[0])) {
         set_null(out);
         return true;
      }
      switch (e->op) {
      case OP_TOSTRING:
         return op_to_string(&v[0], out, error);
      case OP_TOINT:
         return op_to_integer(false, &v[0], out, error);
      case OP_TOLONG:
         return op_to_integer(true, &v[0], out, error);
      case OP_TO_DOUBLE:
         return op_to_double(&v[0], out, error);
      case OP_TO_DECIMAL:
         return op_to_decimal(&v[0], out, error);
      default:
         set_bool(out, flora__agg_truthy(&v[0]));
         return true;
      }
   case OP_TYPE:
      set_string(out, type_name(&v[0]));
      return true;
   case OP_ISNUMBER:
      set_bool(out, num_kind(&v[0]) >= 0);
      return true;
   case OP_MERGEOBJECTS:
      return op_merge_objects(v, n, out, error);
   case OP_OBJECTTOARRAY:
      return op_object_to_array(&v[0], out, error);
   case OP_ARRAYTOOBJECT:
      return op_array_to_object(&v[0], out, error);
   case OP_TRIM:
   case OP_LTRIM:
   case OP_RTRIM:
      return op_trim(e, &v[0], e->args[1] ? &v[1] : NULL, out, error);
   case OP_SUM:
   case OP_AVG:
   case OP_MIN:
   case OP_MAX:
      return op_array_acc(e, v, n, out);
   case OP_SQRT:
   case OP_EXP:
   case OP_LN:
   case OP_LOG10:
      return op_math1(e, &v[0], out, error);
   case OP_LOG:
      return op_log(&v[0], &v[1], out, error);
   case OP_POW:
      return op_pow(&v[0], &v[1], out, error);
   case OP_SETUNION:
   case OP_SETINTERSECTION:
   case OP_SETDIFFERENCE:
   case OP_SETEQUALS:
   case OP_SETISSUBSET:
      return op_set(e, v, n, out, error);
   case OP_ANYELEMENTTRUE:
   case OP_ALLELEMENTSTRUE: {
      elem_t *items = NULL;
      size_t cnt;
      bool any = false, all = true;
      if (!is_array(&v[0])) {
         return fail_code(error, e->op == OP_ANYELEMENTTRUE ? 17041 : 17040,
                          "%s's argument must be an array, but is %s", e->op_name,
                          type_name(&v[0]));
      }
      cnt = collect_elems(&v[0], &items);
      for (size_t i = 0; i < cnt; i++) {
         bool t = flora__agg_truthy(&items[i].value);
         any = any || t;
         all = all && t;
      }
      bson_free(items);
      set_bool(out, e->op == OP_ANYELEMENTTRUE ? any : all);
      return true;
   }
   case OP_INDEXOFARRAY: {
      elem_t *items = NULL;
      int64_t start = 0, stop, len;
      if (is_nullish(&v[0])) {
         set_null(out);
         return true;
      }
      if (!is_array(&v[0])) {
         return fail_code(error, 40090,
                          "$indexOfArray requires an array as a first argument, found: %s",
                          type_name(&v[0]));
      }
      if (n > 2 && (!int_arg(&v[2], &start) || start < 0)) {
         return fail_code(error, 40097,
                          "$indexOfArray requires a nonnegative integral starting index");
      }
      len = (int64_t) collect_elems(&v[0], &items);
      stop = len;
      if (n > 3 && (!int_arg(&v[3], &stop) || stop < 0)) {
         bson_free(items);
         return fail_code(error, 40097,
                          "$indexOfArray requires a nonnegative integral ending index");
      }
      if (stop > len) {
         stop = len;
      }
      set_int32(out, -1);
      for (int64_t i = start; i < stop; i++) {
         if (flora__agg_compare(&items[i].value, &v[1]) == 0) {
            set_int32(out, (int32_t) i);
            break;
         }
      }
      bson_free(items);
      return true;
   }
   case OP_RANGE: {
      int64_t from, to, step = 1;
      bson_t arr = BSON_INITIALIZER;
      uint32_t idx = 0;
      if (!int_arg(&v[0], &from) || from < INT32_MIN || from > INT32_MAX) {
         bson_destroy(&arr);
         return fail_code(error, 34443,
                          "$range requires a starting value that can be represented as a 32-bit "
                          "integer, found value: %s",
                          type_name(&v[0]));
      }
      if (!int_arg(&v[1], &to) || to < INT32_MIN || to > INT32_MAX) {
         bson_destroy(&arr);
         return fail_code(error, 34445,
                          "$range requires an ending value that can be represented as a 32-bit "
                          "integer, found value: %s",
                          type_name(&v[1]));
      }
      if (n > 2 && (!int_arg(&v[2], &step) || step < INT32_MIN || step > INT32_MAX)) {
         bson_destroy(&arr);
         return fail_code(error, 34447,
                          "$range requires a step value that can be represented as a 32-bit "
                          "integer, found value: %s",
                          type_name(&v[2]));
      }
      if (step == 0) {
         bson_destroy(&arr);
         return fail_code(error, 34449, "$range requires a non-zero step value");
      }
      for (int64_t i = from; step > 0 ? i < to : i > to; i += step) {
         bson_value_t iv;
         if (idx >= 10000000) {
            bson_destroy(&arr);
            return fail_code(error, FLORA_STORE_BAD_VALUE,
                             "$range would produce more than 10000000 elements");
         }
         set_int32(&iv, (int32_t) i);
         array_push(&arr, &idx, &iv);
      }
      set_from_bson(out, &arr, true);
      return true;
   }
   case OP_STRCASECMP: {
      bson_value_t x, y;
      int order = 0;
      if (!coerce_string("$strcasecmp", &v[0], &x, error)) {
         return false;
      }
      if (!coerce_string("$strcasecmp", &v[1], &y, error)) {
         bson_value_destroy(&x);
         return false;
      }
      for (uint32_t i = 0; order == 0; i++) {
         int cx = i < x.value.v_utf8.len ? (unsigned char) x.value.v_utf8.str[i] : -1;
         int cy = i < y.value.v_utf8.len ? (unsigned char) y.value.v_utf8.str[i] : -1;
         if (cx >= 'A' && cx <= 'Z') {
            cx += 'a' - 'A';
         }
         if (cy >= 'A' && cy <= 'Z') {
            cy += 'a' - 'A';
         }
         if (cx < 0 && cy < 0) {
            break;
         }
         order = cx < cy ? -1 : cx > cy ? 1 : 0;
      }
      bson_value_destroy(&x);
      bson_value_destroy(&y);
      set_int32(out, order);
      return true;
   }
   default:
      (void) c;
      return fail_code(error, FLORA_STORE_INTERNAL, "expression operator %s has no evaluator",
                       e->op_name);
   }
}

static bool
eval_op(const flora__expr_t *e, ctx_t *c, bson_value_t *out, flora_error_t *error)
{
   bson_value_t stack[8], *vals;
   bool ok;

   switch (e->op) {
   case OP_AND:
   case OP_OR: {
      bool want = e->op == OP_OR;
      for (size_t i = 0; i < e->nargs; i++) {
         bson_value_t v;
         bool t;
         if (!eval(e->args[i], c, &v, error)) {
            return false;
         }
         t = flora__agg_truthy(&v);
         bson_value_destroy(&v);
         if (t == want) {
            set_bool(out, want);
            return true;
         }
      }
      set_bool(out, !want);
      return true;
   }
   case OP_COND: {
      bson_value_t v;
      bool t;
      if (!eval(e->args[0], c, &v, error)) {
         return false;
      }
      t = flora__agg_truthy(&v);
      bson_value_destroy(&v);
      return eval(e->args[t ? 1 : 2], c, out, error);
   }
   case OP_IFNULL:
      for (size_t i = 0; i + 1 < e->nargs; i++) {
         if (!eval(e->args[i], c, out, error)) {
            return false;
         }
         if (!is_nullish(out)) {
            return true;
         }
         bson_value_destroy(out);
      }
      return eval(e->args[e->nargs - 1], c, out, error);
   case OP_SWITCH:
      for (size_t i = 0; i + 1 < e->nargs; i += 2) {
         bson_value_t v;
         bool t;
         if (!eval(e->args[i], c, &v, error)) {
            return false;
         }
         t = flora__agg_truthy(&v);
         bson_value_destroy(&v);
         if (t) {
            return eval(e->args[i + 1], c, out, error);
         }
      }
      if (!e->args[e->nargs - 1]) {
         return fail_code(error, 40066,
                          "$switch could not find a matching branch for an input, and no "
                          "default was specified.");
      }
      return eval(e->args[e->nargs - 1], c, out, error);
   case OP_FILTER:
   case OP_MAP:
      return op_filter_map(e, c, out, error);
   case OP_REDUCE:
      return op_reduce(e, c, out, error);
   case OP_LET: {
      size_t nv = e->nargs - 1;
      bson_value_t *lv = bson_malloc0((nv ? nv : 1) * sizeof *lv);
      const bson_value_t *saved[MAX_VARS + 1];
      memcpy(saved, c->vars, sizeof saved);
      ok = true;
      for (size_t i = 0; i < nv; i++) {
         set_missing(&lv[i]);
      }
      for (size_t i = 0; ok && i < nv; i++) {
         ok = eval(e->args[i], c, &lv[i], error);
      }
      for (size_t i = 0; ok && i < nv; i++) {
         c->vars[e->slot + (int) i] = &lv[i];
      }
      ok = ok && eval(e->args[nv], c, out, error);
      memcpy(c->vars, saved, sizeof saved);
      destroy_vals(lv, nv);
      bson_free(lv);
      return ok;
   }
   case OP_YEAR:
   case OP_MONTH:
   case OP_DAYOFMONTH:
   case OP_HOUR:
   case OP_MINUTE:
   case OP_SECOND:
   case OP_MILLISECOND:
   case OP_DAYOFWEEK:
   case OP_DAYOFYEAR:
   case OP_WEEK:
   case OP_ISOWEEK:
   case OP_ISOWEEKYEAR:
   case OP_ISODAYOFWEEK:
      return op_date_part(e, c, out, error);
   case OP_DATETOSTRING:
      return op_date_to_string(e, c, out, error);
   default:
      break;
   }
   vals = e->nargs <= 8 ? stack : bson_malloc(e->nargs * sizeof *vals);
   ok = eval_args(e, c, vals, error) && eval_op_args(e, c, vals, e->nargs, out, error);
   destroy_vals(vals, e->nargs);
   if (vals != stack) {
      bson_free(vals);
   }
   return ok;
}

static bool
eval(const flora__expr_t *e, ctx_t *c, bson_value_t *out, flora_error_t *error)
{
   set_missing(out);
   switch (e->kind) {
   case K_LITERAL:
      copy_value(out, &e->literal);
      return true;
   case K_PATH:
      if (e->var == VAR_REMOVE) {
         return true;
      }
      if (e->var == VAR_NOW) {
         bson_value_t now;
         set_date(&now, c->now_ms);
         path_from(&now, e->parts, e->nparts, 0, out);
         return true;
      }
      path_from(c->vars[e->var], e->parts, e->nparts, 0, out);
      return true;
   case K_OBJECT: {
      bson_t doc = BSON_INITIALIZER;
      for (size_t i = 0; i < e->nargs; i++) {
         bson_value_t v;
         if (!eval(e->args[i], c, &v, error)) {
            bson_destroy(&doc);
            return false;
         }
         flora__value_append(&doc, e->names[i], -1, &v);
         bson_value_destroy(&v);
      }
      set_from_bson(out, &doc, false);
      return true;
   }
   case K_ARRAY: {
      bson_t arr = BSON_INITIALIZER;
      uint32_t idx = 0;
      for (size_t i = 0; i < e->nargs; i++) {
         bson_value_t v;
         if (!eval(e->args[i], c, &v, error)) {
            bson_destroy(&arr);
            return false;
         }
         array_push(&arr, &idx, &v);
         bson_value_destroy(&v);
      }
      set_from_bson(out, &arr, true);
      return true;
   }
   default:
      return eval_op(e, c, out, error);
   }
}

bool
flora__expr_eval(const flora__expr_t *expr, const bson_t *root, int64_t now_ms,
                 flora__expr_cache_t *cache, bson_value_t *out, flora_error_t *error)
{
   ctx_t c;
   bson_value_t rootv;

   FLORA_ASSERT_ARG(expr);
   FLORA_ASSERT_ARG(root);
   FLORA_ASSERT_ARG(out);
   memset(&c, 0, sizeof c);
   memset(&rootv, 0, sizeof rootv);
   rootv.value_type = BSON_TYPE_DOCUMENT;
   rootv.value.v_doc.data = (uint8_t *) bson_get_data(root);
   rootv.value.v_doc.data_len = root->len;
   c.vars[VAR_ROOT] = &rootv;
   c.now_ms = now_ms;
   c.cache = cache;
   if (!eval(expr, &c, out, error)) {
      bson_value_destroy(out);
      set_missing(out);
      return false;
   }
   return true;
}
