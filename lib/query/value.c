/* BSON values: MongoDB's cross-type comparison order and numeric comparison across
 * int32/int64/double/decimal128. See include/flora/query.h and query_private.h.
 *
 * Sources: MongoDB manual "Comparison/Sort Order"; the canonical type numbers are those of
 * MongoDB's canonicalizeBSONType (src/mongo/bson/bsontypes.h), where the deprecated
 * undefined sorts apart from null (between MinKey and null) and, as in MongoDB 8.0, does not
 * equal null; decimal128 layout from the
 * IEEE 754-2008 BID encoding as used by BSON (bsonspec.org, libbson bson-decimal128.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "query/query_private.h"

__extension__ typedef unsigned __int128 u128;

/* A number as sign, coefficient and power-of-ten exponent. */
typedef struct dec {
   enum { DEC_FINITE, DEC_INF, DEC_NAN } kind;
   bool negative;
   u128 coeff; /* < 10^34 */
   int exp;
} dec_t;

int
flora_value_type_rank(bson_type_t type)
{
   switch (type) {
   case BSON_TYPE_MINKEY:
      return -1;
   case BSON_TYPE_UNDEFINED:
      return 0;
   case BSON_TYPE_EOD:
   case BSON_TYPE_NULL:
      return 5;
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DOUBLE:
   case BSON_TYPE_DECIMAL128:
      return 10;
   case BSON_TYPE_UTF8:
   case BSON_TYPE_SYMBOL:
      return 15;
   case BSON_TYPE_DOCUMENT:
      return 20;
   case BSON_TYPE_ARRAY:
      return 25;
   case BSON_TYPE_BINARY:
      return 30;
   case BSON_TYPE_OID:
      return 35;
   case BSON_TYPE_BOOL:
      return 40;
   case BSON_TYPE_DATE_TIME:
      return 45;
   case BSON_TYPE_TIMESTAMP:
      return 47;
   case BSON_TYPE_REGEX:
      return 50;
   case BSON_TYPE_DBPOINTER:
      return 55;
   case BSON_TYPE_CODE:
      return 60;
   case BSON_TYPE_CODEWSCOPE:
      return 65;
   case BSON_TYPE_MAXKEY:
      return 127;
   default:
      return 127;
   }
}

bool
flora__value_is_number(const bson_value_t *v)
{
   return v->value_type == BSON_TYPE_INT32 || v->value_type == BSON_TYPE_INT64 ||
          v->value_type == BSON_TYPE_DOUBLE || v->value_type == BSON_TYPE_DECIMAL128;
}

static u128
pow10_u128(int n)
{
   u128 r = 1;

   for (int i = 0; i < n; i++) {
      r *= 10;
   }
   return r;
}

static int
digits_u128(u128 v)
{
   int n = 0;

   while (v) {
      v /= 10;
      n++;
   }
   return n;
}

/* Decodes a BSON decimal128 (BID encoding). Non-canonical coefficients count as zero, as
 * the standard requires. */
static void
dec_from_decimal128(const bson_decimal128_t *d, dec_t *out)
{
   uint64_t high = d->high;
   uint64_t low = d->low;
   uint32_t comb = (uint32_t) ((high >> 58) & 0x1f);
   u128 max = pow10_u128(34);

   memset(out, 0, sizeof *out);
   out->negative = (high >> 63) != 0;
   if (comb == 0x1f) {
      out->kind = DEC_NAN;
      out->negative = false;
      return;
   }
   if (comb == 0x1e) {
      out->kind = DEC_INF;
      return;
   }
   out->kind = DEC_FINITE;
   if (((high >> 61) & 3) == 3) {
      /* 11 form: the coefficient would exceed 10^34 - 1, so it is zero. */
      out->exp = (int) ((high >> 47) & 0x3fff) - 6176;
      out->coeff = 0;
      return;
   }
   out->exp = (int) ((high >> 49) & 0x3fff) - 6176;
   out->coeff = ((u128) (high & 0x1ffffffffffffULL) << 64) | low;
   if (out->coeff >= max) {
      out->coeff = 0;
   }
}

static void
dec_from_int64(int64_t v, dec_t *out)
{
   memset(out, 0, sizeof *out);
   out->kind = DEC_FINITE;
   out->negative = v < 0;
   out->coeff = v < 0 ? (u128) (-(v + 1)) + 1 : (u128) v;
}

/* A double widened to 34 significant digits (correctly rounded by the C library). */
static void
dec_from_double(double v, dec_t *out)
{
   char buf[64];
   const char *p;
   int e = 0;
   bool eneg = false;

   memset(out, 0, sizeof *out);
   if (isnan(v)) {
      out->kind = DEC_NAN;
      return;
   }
   out->negative = signbit(v) != 0;
   if (isinf(v)) {
      out->kind = DEC_INF;
      return;
   }
   out->kind = DEC_FINITE;
   if (v == 0.0) {
      return;
   }
   snprintf(buf, sizeof buf, "%.33e", fabs(v));
   for (p = buf; *p && *p != 'e'; p++) {
      if (*p >= '0' && *p <= '9') {
         out->coeff = out->coeff * 10 + (u128) (*p - '0');
      }
   }
   if (*p == 'e') {
      p++;
      if (*p == '-' || *p == '+') {
         eneg = *p == '-';
         p++;
      }
      for (; *p >= '0' && *p <= '9'; p++) {
         e = e * 10 + (*p - '0');
      }
   }
   out->exp = (eneg ? -e : e) - 33;
}

static void
dec_from_value(const bson_value_t *v, dec_t *out)
{
   switch (v->value_type) {
   case BSON_TYPE_INT32:
      dec_from_int64(v->value.v_int32, out);
      break;
   case BSON_TYPE_INT64:
      dec_from_int64(v->value.v_int64, out);
      break;
   case BSON_TYPE_DOUBLE:
      dec_from_double(v->value.v_double, out);
      break;
   default:
      dec_from_decimal128(&v->value.v_decimal128, out);
      break;
   }
}

static int
sign_of(int c)
{
   return (c > 0) - (c < 0);
}

/* Compares magnitudes of two finite non-zero decimals. */
static int
dec_cmp_magnitude(dec_t a, dec_t b)
{
   int da, db;

   while (a.coeff % 10 == 0) {
      a.coeff /= 10;
      a.exp++;
   }
   while (b.coeff % 10 == 0) {
      b.coeff /= 10;
      b.exp++;
   }
   da = digits_u128(a.coeff);
   db = digits_u128(b.coeff);
   if (da + a.exp != db + b.exp) {
      return da + a.exp < db + b.exp ? -1 : 1;
   }
   if (da < db) {
      a.coeff *= pow10_u128(db - da);
   } else if (db < da) {
      b.coeff *= pow10_u128(da - db);
   }
   return a.coeff < b.coeff ? -1 : a.coeff > b.coeff;
}

static int
dec_cmp(const dec_t *a, const dec_t *b)
{
   bool za, zb;
   int m;

   if (a->kind == DEC_NAN || b->kind == DEC_NAN) {
      return (a->kind != DEC_NAN) - (b->kind != DEC_NAN);
   }
   if (a->kind == DEC_INF || b->kind == DEC_INF) {
      int ra = a->kind == DEC_INF ? (a->negative ? -1 : 1) : 0;
      int rb = b->kind == DEC_INF ? (b->negative ? -1 : 1) : 0;

      if (ra != rb) {
         return ra < rb ? -1 : 1;
      }
      if (ra != 0) {
         return 0;
      }
   }
   za = a->coeff == 0;
   zb = b->coeff == 0;
   if (za && zb) {
      return 0;
   }
   if (za) {
      return b->negative ? 1 : -1;
   }
   if (zb) {
      return a->negative ? -1 : 1;
   }
   if (a->negative != b->negative) {
      return a->negative ? -1 : 1;
   }
   m = dec_cmp_magnitude(*a, *b);
   return a->negative ? -m : m;
}

static int
cmp_int64(int64_t a, int64_t b)
{
   return (a > b) - (a < b);
}

/* Exact comparison of an int64 with a double; NaN below everything. */
static int
cmp_int64_double(int64_t i, double d)
{
   int64_t t;
   double frac;

   if (isnan(d)) {
      return 1;
   }
   if (d < -9223372036854775808.0) {
      return 1;
   }
   if (d >= 9223372036854775808.0) {
      return -1;
   }
   t = (int64_t) d;
   if (i != t) {
      return i < t ? -1 : 1;
   }
   frac = d - (double) t;
   return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int
cmp_double(double a, double b)
{
   if (isnan(a) || isnan(b)) {
      return (!isnan(a)) - (!isnan(b));
   }
   return (a > b) - (a < b);
}

int
flora__number_compare(const bson_value_t *a, const bson_value_t *b)
{
   bson_type_t ta = a->value_type;
   bson_type_t tb = b->value_type;
   dec_t da, db;

   if (ta == BSON_TYPE_DECIMAL128 || tb == BSON_TYPE_DECIMAL128) {
      dec_from_value(a, &da);
      dec_from_value(b, &db);
      return dec_cmp(&da, &db);
   }
   if (ta == BSON_TYPE_DOUBLE && tb == BSON_TYPE_DOUBLE) {
      return cmp_double(a->value.v_double, b->value.v_double);
   }
   if (ta == BSON_TYPE_DOUBLE) {
      int64_t ib = tb == BSON_TYPE_INT32 ? b->value.v_int32 : b->value.v_int64;
      return -cmp_int64_double(ib, a->value.v_double);
   }
   if (tb == BSON_TYPE_DOUBLE) {
      int64_t ia = ta == BSON_TYPE_INT32 ? a->value.v_int32 : a->value.v_int64;
      return cmp_int64_double(ia, b->value.v_double);
   }
   return cmp_int64(ta == BSON_TYPE_INT32 ? a->value.v_int32 : a->value.v_int64,
                    tb == BSON_TYPE_INT32 ? b->value.v_int32 : b->value.v_int64);
}

double
flora__number_to_double(const bson_value_t *v)
{
   char buf[BSON_DECIMAL128_STRING];

   switch (v->value_type) {
   case BSON_TYPE_INT32:
      return v->value.v_int32;
   case BSON_TYPE_INT64:
      return (double) v->value.v_int64;
   case BSON_TYPE_DOUBLE:
      return v->value.v_double;
   case BSON_TYPE_DECIMAL128:
      bson_decimal128_to_string(&v->value.v_decimal128, buf);
      if (strcmp(buf, "NaN") == 0) {
         return NAN;
      }
      if (strcmp(buf, "Infinity") == 0) {
         return INFINITY;
      }
      if (strcmp(buf, "-Infinity") == 0) {
         return -INFINITY;
      }
      return strtod(buf, NULL);
   default:
      return 0.0;
   }
}

bool
flora__number_as_int64(const bson_value_t *v, int64_t *out)
{
   dec_t d;
   u128 c;

   switch (v->value_type) {
   case BSON_TYPE_INT32:
      *out = v->value.v_int32;
      return true;
   case BSON_TYPE_INT64:
      *out = v->value.v_int64;
      return true;
   case BSON_TYPE_DOUBLE:
      if (!isfinite(v->value.v_double) || v->value.v_double != trunc(v->value.v_double) ||
          v->value.v_double < -9223372036854775808.0 ||
          v->value.v_double >= 9223372036854775808.0) {
         return false;
      }
      *out = (int64_t) v->value.v_double;
      return true;
   case BSON_TYPE_DECIMAL128:
      dec_from_decimal128(&v->value.v_decimal128, &d);
      if (d.kind != DEC_FINITE) {
         return false;
      }
      c = d.coeff;
      if (c == 0) {
         *out = 0;
         return true;
      }
      while (d.exp < 0) {
         if (c % 10 != 0) {
            return false;
         }
         c /= 10;
         d.exp++;
      }
      while (d.exp > 0) {
         if (c > ((u128) 1 << 64)) {
            return false;
         }
         c *= 10;
         d.exp--;
      }
      if (d.negative ? c > ((u128) 1 << 63) : c >= ((u128) 1 << 63)) {
         return false;
      }
      *out = d.negative ? (int64_t) (0 - (uint64_t) c) : (int64_t) c;
      return true;
   default:
      return false;
   }
}

bool
flora__number_trunc_int64(const bson_value_t *v, int64_t *out)
{
   dec_t d;
   u128 c;
   double x;

   switch (v->value_type) {
   case BSON_TYPE_INT32:
      *out = v->value.v_int32;
      return true;
   case BSON_TYPE_INT64:
      *out = v->value.v_int64;
      return true;
   case BSON_TYPE_DOUBLE:
      x = v->value.v_double;
      if (!isfinite(x)) {
         return false;
      }
      *out = x <= -9223372036854775808.0  ? INT64_MIN
             : x >= 9223372036854775808.0 ? INT64_MAX
                                          : (int64_t) x;
      return true;
   case BSON_TYPE_DECIMAL128:
      dec_from_decimal128(&v->value.v_decimal128, &d);
      if (d.kind != DEC_FINITE) {
         return false;
      }
      c = d.coeff;
      for (; d.exp < 0 && c != 0; d.exp++) {
         c /= 10;
      }
      for (; d.exp > 0 && c != 0 && c <= ((u128) 1 << 64); d.exp--) {
         c *= 10;
      }
      if (d.negative) {
         *out = c >= ((u128) 1 << 63) ? INT64_MIN : -(int64_t) c;
      } else {
         *out = c >= ((u128) 1 << 63) ? INT64_MAX : (int64_t) c;
      }
      return true;
   default:
      return false;
   }
}

static int
cmp_bytes(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
   int c = la && lb ? memcmp(a, b, la < lb ? la : lb) : 0;

   if (c != 0) {
      return sign_of(c);
   }
   return (la > lb) - (la < lb);
}

bool
flora__value_as_doc(const bson_value_t *v, bson_t *out)
{
   if (v->value_type != BSON_TYPE_DOCUMENT && v->value_type != BSON_TYPE_ARRAY) {
      return false;
   }
   return bson_init_static(out, v->value.v_doc.data, v->value.v_doc.data_len);
}

/* MongoDB's BSONObj::woCompare: element by element, by canonical type, then field name,
 * then value; a shorter object that is a prefix of the other sorts first. */
static int
cmp_docs(const uint8_t *da, uint32_t la, const uint8_t *db, uint32_t lb)
{
   bson_t a, b;
   bson_iter_t ia, ib;
   bool more_a, more_b;

   if (!bson_init_static(&a, da, la) || !bson_init_static(&b, db, lb) ||
       !bson_iter_init(&ia, &a) || !bson_iter_init(&ib, &b)) {
      return cmp_bytes(da, la, db, lb);
   }
   for (;;) {
      int c;

      more_a = bson_iter_next(&ia);
      more_b = bson_iter_next(&ib);
      if (!more_a || !more_b) {
         return more_a - more_b;
      }
      c = flora_value_type_rank(bson_iter_type(&ia)) - flora_value_type_rank(bson_iter_type(&ib));
      if (c != 0) {
         return sign_of(c);
      }
      c = strcmp(bson_iter_key(&ia), bson_iter_key(&ib));
      if (c != 0) {
         return sign_of(c);
      }
      c = flora_value_compare(bson_iter_value(&ia), bson_iter_value(&ib));
      if (c != 0) {
         return c;
      }
   }
}

static void
string_of(const bson_value_t *v, const char **s, uint32_t *len)
{
   if (v->value_type == BSON_TYPE_UTF8) {
      *s = v->value.v_utf8.str;
      *len = v->value.v_utf8.len;
   } else {
      *s = v->value.v_symbol.symbol;
      *len = v->value.v_symbol.len;
   }
}

int
flora_value_compare(const bson_value_t *a, const bson_value_t *b)
{
   int ra = flora_value_type_rank(a->value_type);
   int rb = flora_value_type_rank(b->value_type);
   int c;

   if (ra != rb) {
      return ra < rb ? -1 : 1;
   }
   switch (a->value_type) {
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DOUBLE:
   case BSON_TYPE_DECIMAL128:
      return flora__number_compare(a, b);
   case BSON_TYPE_UTF8:
   case BSON_TYPE_SYMBOL: {
      const char *sa, *sb;
      uint32_t la, lb;

      string_of(a, &sa, &la);
      string_of(b, &sb, &lb);
      return cmp_bytes((const uint8_t *) sa, la, (const uint8_t *) sb, lb);
   }
   case BSON_TYPE_DOCUMENT:
   case BSON_TYPE_ARRAY:
      return cmp_docs(a->value.v_doc.data, a->value.v_doc.data_len, b->value.v_doc.data,
                      b->value.v_doc.data_len);
   case BSON_TYPE_BINARY:
      /* MongoDB: length first, then subtype, then bytes. */
      if (a->value.v_binary.data_len != b->value.v_binary.data_len) {
         return a->value.v_binary.data_len < b->value.v_binary.data_len ? -1 : 1;
      }
      if (a->value.v_binary.subtype != b->value.v_binary.subtype) {
         return a->value.v_binary.subtype < b->value.v_binary.subtype ? -1 : 1;
      }
      if (a->value.v_binary.data_len == 0) {
         return 0; /* an empty binary may carry no data pointer */
      }
      return sign_of(memcmp(a->value.v_binary.data, b->value.v_binary.data,
                            a->value.v_binary.data_len));
   case BSON_TYPE_OID:
      return sign_of(bson_oid_compare(&a->value.v_oid, &b->value.v_oid));
   case BSON_TYPE_BOOL:
      return (int) a->value.v_bool - (int) b->value.v_bool;
   case BSON_TYPE_DATE_TIME:
      return cmp_int64(a->value.v_datetime, b->value.v_datetime);
   case BSON_TYPE_TIMESTAMP:
      if (a->value.v_timestamp.timestamp != b->value.v_timestamp.timestamp) {
         return a->value.v_timestamp.timestamp < b->value.v_timestamp.timestamp ? -1 : 1;
      }
      return (a->value.v_timestamp.increment > b->value.v_timestamp.increment) -
             (a->value.v_timestamp.increment < b->value.v_timestamp.increment);
   case BSON_TYPE_REGEX:
      c = strcmp(a->value.v_regex.regex, b->value.v_regex.regex);
      if (c != 0) {
         return sign_of(c);
      }
      return sign_of(strcmp(a->value.v_regex.options ? a->value.v_regex.options : "",
                            b->value.v_regex.options ? b->value.v_regex.options : ""));
   case BSON_TYPE_DBPOINTER:
      if (a->value.v_dbpointer.collection_len != b->value.v_dbpointer.collection_len) {
         return a->value.v_dbpointer.collection_len < b->value.v_dbpointer.collection_len ? -1
                                                                                            : 1;
      }
      c = memcmp(a->value.v_dbpointer.collection, b->value.v_dbpointer.collection,
                 a->value.v_dbpointer.collection_len);
      if (c != 0) {
         return sign_of(c);
      }
      return sign_of(bson_oid_compare(&a->value.v_dbpointer.oid, &b->value.v_dbpointer.oid));
   case BSON_TYPE_CODE:
      return cmp_bytes((const uint8_t *) a->value.v_code.code, a->value.v_code.code_len,
                       (const uint8_t *) b->value.v_code.code, b->value.v_code.code_len);
   case BSON_TYPE_CODEWSCOPE:
      c = cmp_bytes((const uint8_t *) a->value.v_codewscope.code, a->value.v_codewscope.code_len,
                    (const uint8_t *) b->value.v_codewscope.code, b->value.v_codewscope.code_len);
      if (c != 0) {
         return c;
      }
      return cmp_docs(a->value.v_codewscope.scope_data, a->value.v_codewscope.scope_len,
                      b->value.v_codewscope.scope_data, b->value.v_codewscope.scope_len);
   default:
      /* MinKey, MaxKey, null, undefined, missing: one value per rank. */
      return 0;
   }
}

const char *
flora_value_type_name(bson_type_t type)
{
   switch (type) {
   case BSON_TYPE_DOUBLE:
      return "double";
   case BSON_TYPE_UTF8:
      return "string";
   case BSON_TYPE_DOCUMENT:
      return "object";
   case BSON_TYPE_ARRAY:
      return "array";
   case BSON_TYPE_BINARY:
      return "binData";
   case BSON_TYPE_UNDEFINED:
      return "undefined";
   case BSON_TYPE_OID:
      return "objectId";
   case BSON_TYPE_BOOL:
      return "bool";
   case BSON_TYPE_DATE_TIME:
      return "date";
   case BSON_TYPE_NULL:
      return "null";
   case BSON_TYPE_REGEX:
      return "regex";
   case BSON_TYPE_DBPOINTER:
      return "dbPointer";
   case BSON_TYPE_CODE:
      return "javascript";
   case BSON_TYPE_SYMBOL:
      return "symbol";
   case BSON_TYPE_CODEWSCOPE:
      return "javascriptWithScope";
   case BSON_TYPE_INT32:
      return "int";
   case BSON_TYPE_TIMESTAMP:
      return "timestamp";
   case BSON_TYPE_INT64:
      return "long";
   case BSON_TYPE_DECIMAL128:
      return "decimal";
   case BSON_TYPE_MINKEY:
      return "minKey";
   case BSON_TYPE_MAXKEY:
      return "maxKey";
   default:
      return NULL;
   }
}

double
flora__text_score(const bson_t *doc)
{
   bson_iter_t it;

   if (bson_iter_init_find(&it, doc, FLORA__TEXT_SCORE_FIELD) && BSON_ITER_HOLDS_NUMBER(&it)) {
      return bson_iter_as_double(&it);
   }
   return 0.0;
}

void
flora__text_score_strip(const bson_t *doc, bson_t *out)
{
   bson_init(out);
   bson_copy_to_excluding_noinit(doc, out, FLORA__TEXT_SCORE_FIELD, NULL);
}
