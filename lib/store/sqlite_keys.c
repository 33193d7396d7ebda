/* Order-preserving key encoding of BSON values for the embedded engine's indexes.
 *
 * memcmp order of two encodings equals the BSON comparison order (MongoDB manual,
 * "Comparison/Sort Order", and flora_value_compare): a class byte first (MinKey < undefined
 * < null < numbers < strings/symbols < documents < arrays < binary < ObjectId < bool <
 * date < timestamp < regex < DBPointer < code < code with scope < MaxKey, the canonical
 * type order of mongo/src/mongo/bson/bsontypes.cpp), then the value:
 *   numbers   int32, int64, double and decimal128 of equal value encode identically: a
 *             sub-byte (0 NaN, 1 a number), the IEEE double as a sortable big-endian
 *             integer, then a tie-break for int64 values a double cannot hold exactly
 *             (0x01 + 8 bytes when below the double, 0x02 equal, 0x03 + 8 bytes above).
 *   strings   bytes with 0x00 escaped as 00 FF, terminated by 00 01.
 *   documents per element: class byte, name (as a string), value payload; then 00.
 *   arrays    per element: class byte and payload; then 00.
 *   binary    4-byte length, subtype, bytes (MongoDB orders by length first).
 * Every encoding is prefix-free, so a compound key is the concatenation of its fields,
 * and a descending field is its encoding with every byte inverted. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_private.h"

void
flora__sqlite_buf_append(sq_buf_t *buf, const void *data, size_t len)
{
   if (buf->len + len > buf->cap) {
      size_t cap = buf->cap ? buf->cap * 2 : 64;
      while (cap < buf->len + len) {
         cap *= 2;
      }
      buf->data = bson_realloc(buf->data, cap);
      buf->cap = cap;
   }
   if (len) {
      memcpy(buf->data + buf->len, data, len);
   }
   buf->len += len;
}

void
flora__sqlite_buf_byte(sq_buf_t *buf, uint8_t byte)
{
   flora__sqlite_buf_append(buf, &byte, 1);
}

void
flora__sqlite_buf_free(sq_buf_t *buf)
{
   if (buf) {
      bson_free(buf->data);
      buf->data = NULL;
      buf->len = buf->cap = 0;
   }
}

uint8_t
flora__sqlite_key_type_byte(bson_type_t type)
{
   switch (type) {
   case BSON_TYPE_MINKEY: return 0x02;
   case BSON_TYPE_UNDEFINED: return 0x04; /* below null, as MongoDB 8 orders it */
   case BSON_TYPE_EOD:
   case BSON_TYPE_NULL: return 0x06;
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DOUBLE:
   case BSON_TYPE_DECIMAL128: return 0x10;
   case BSON_TYPE_UTF8:
   case BSON_TYPE_SYMBOL: return 0x14;
   case BSON_TYPE_DOCUMENT: return 0x18;
   case BSON_TYPE_ARRAY: return 0x1C;
   case BSON_TYPE_BINARY: return 0x20;
   case BSON_TYPE_OID: return 0x24;
   case BSON_TYPE_BOOL: return 0x28;
   case BSON_TYPE_DATE_TIME: return 0x2C;
   case BSON_TYPE_TIMESTAMP: return 0x30;
   case BSON_TYPE_REGEX: return 0x34;
   case BSON_TYPE_DBPOINTER: return 0x38;
   case BSON_TYPE_CODE: return 0x3C;
   case BSON_TYPE_CODEWSCOPE: return 0x40;
   case BSON_TYPE_MAXKEY: return 0x7F;
   default: return 0x06;
   }
}

static void
put_u64(sq_buf_t *buf, uint64_t v)
{
   uint8_t b[8];
   for (int i = 0; i < 8; i++) {
      b[i] = (uint8_t) (v >> (56 - 8 * i));
   }
   flora__sqlite_buf_append(buf, b, 8);
}

static void
put_u32(sq_buf_t *buf, uint32_t v)
{
   uint8_t b[4] = {(uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v};
   flora__sqlite_buf_append(buf, b, 4);
}

static void
put_string(sq_buf_t *buf, const char *s, size_t len)
{
   size_t start = 0;
   for (size_t i = 0; i < len; i++) {
      if (s[i] == '\0') {
         flora__sqlite_buf_append(buf, s + start, i - start);
         flora__sqlite_buf_byte(buf, 0x00);
         flora__sqlite_buf_byte(buf, 0xFF);
         start = i + 1;
      }
   }
   flora__sqlite_buf_append(buf, s + start, len - start);
   flora__sqlite_buf_byte(buf, 0x00);
   flora__sqlite_buf_byte(buf, 0x01);
}

/* The double as an unsigned integer whose order is the double's order. */
static uint64_t
double_bits(double d)
{
   uint64_t u;
   if (d == 0.0) {
      d = 0.0; /* -0 equals +0 */
   }
   memcpy(&u, &d, sizeof u);
   if (u & 0x8000000000000000ULL) {
      return ~u;
   }
   return u | 0x8000000000000000ULL;
}

static void
put_number(sq_buf_t *buf, double d, __int128 delta)
{
   if (isnan(d)) {
      flora__sqlite_buf_byte(buf, 0x00);
      return;
   }
   flora__sqlite_buf_byte(buf, 0x01);
   put_u64(buf, double_bits(d));
   if (delta == 0) {
      flora__sqlite_buf_byte(buf, 0x02);
   } else if (delta < 0) {
      flora__sqlite_buf_byte(buf, 0x01);
      put_u64(buf, (uint64_t) (int64_t) delta ^ 0x8000000000000000ULL);
   } else {
      flora__sqlite_buf_byte(buf, 0x03);
      put_u64(buf, (uint64_t) (int64_t) delta ^ 0x8000000000000000ULL);
   }
}

static void
put_int64(sq_buf_t *buf, int64_t v)
{
   double d = (double) v;
   /* d is v rounded to a double (|d| <= 2^63); the exact difference breaks the tie with
    * other integers and doubles rounding to the same d. */
   __int128 delta = (__int128) v - (__int128) d;
   put_number(buf, d, delta);
}

static void put_payload(sq_buf_t *buf, const bson_value_t *v);

static void
put_doc(sq_buf_t *buf, const uint8_t *data, uint32_t len, bool with_names)
{
   bson_t b;
   bson_iter_t it;

   if (bson_init_static(&b, data, len) && bson_iter_init(&it, &b)) {
      while (bson_iter_next(&it)) {
         const bson_value_t *ev = bson_iter_value(&it);
         flora__sqlite_buf_byte(buf, flora__sqlite_key_type_byte(ev->value_type));
         if (with_names) {
            put_string(buf, bson_iter_key(&it), bson_iter_key_len(&it));
         }
         put_payload(buf, ev);
      }
   }
   flora__sqlite_buf_byte(buf, 0x00);
}

static void
put_payload(sq_buf_t *buf, const bson_value_t *v)
{
   switch (v->value_type) {
   case BSON_TYPE_INT32: put_number(buf, (double) v->value.v_int32, 0); break;
   case BSON_TYPE_INT64: put_int64(buf, v->value.v_int64); break;
   case BSON_TYPE_DOUBLE: put_number(buf, v->value.v_double, 0); break;
   case BSON_TYPE_DECIMAL128: {
      char s[BSON_DECIMAL128_STRING];
      bson_decimal128_to_string(&v->value.v_decimal128, s);
      put_number(buf, strtod(s, NULL), 0);
      break;
   }
   case BSON_TYPE_UTF8: put_string(buf, v->value.v_utf8.str, v->value.v_utf8.len); break;
   case BSON_TYPE_SYMBOL: put_string(buf, v->value.v_symbol.symbol, v->value.v_symbol.len); break;
   case BSON_TYPE_DOCUMENT: put_doc(buf, v->value.v_doc.data, v->value.v_doc.data_len, true); break;
   case BSON_TYPE_ARRAY: put_doc(buf, v->value.v_doc.data, v->value.v_doc.data_len, false); break;
   case BSON_TYPE_BINARY:
      put_u32(buf, v->value.v_binary.data_len);
      flora__sqlite_buf_byte(buf, (uint8_t) v->value.v_binary.subtype);
      flora__sqlite_buf_append(buf, v->value.v_binary.data, v->value.v_binary.data_len);
      break;
   case BSON_TYPE_OID: flora__sqlite_buf_append(buf, v->value.v_oid.bytes, 12); break;
   case BSON_TYPE_BOOL: flora__sqlite_buf_byte(buf, v->value.v_bool ? 1 : 0); break;
   case BSON_TYPE_DATE_TIME:
      put_u64(buf, (uint64_t) v->value.v_datetime ^ 0x8000000000000000ULL);
      break;
   case BSON_TYPE_TIMESTAMP:
      put_u32(buf, v->value.v_timestamp.timestamp);
      put_u32(buf, v->value.v_timestamp.increment);
      break;
   case BSON_TYPE_REGEX:
      put_string(buf, v->value.v_regex.regex, strlen(v->value.v_regex.regex));
      put_string(buf, v->value.v_regex.options, strlen(v->value.v_regex.options));
      break;
   case BSON_TYPE_DBPOINTER:
      put_u32(buf, v->value.v_dbpointer.collection_len); /* length first, as MongoDB */
      flora__sqlite_buf_append(buf, v->value.v_dbpointer.collection,
                               v->value.v_dbpointer.collection_len);
      flora__sqlite_buf_append(buf, v->value.v_dbpointer.oid.bytes, 12);
      break;
   case BSON_TYPE_CODE: put_string(buf, v->value.v_code.code, v->value.v_code.code_len); break;
   case BSON_TYPE_CODEWSCOPE:
      put_string(buf, v->value.v_codewscope.code, v->value.v_codewscope.code_len);
      put_doc(buf, v->value.v_codewscope.scope_data, v->value.v_codewscope.scope_len, true);
      break;
   default: break; /* MinKey, MaxKey, null, undefined: the class byte says it all */
   }
}

void
flora__sqlite_key_append(sq_buf_t *buf, const bson_value_t *v, bool descending)
{
   size_t start = buf->len;

   flora__sqlite_buf_byte(buf, flora__sqlite_key_type_byte(v->value_type));
   put_payload(buf, v);
   if (descending) {
      for (size_t i = start; i < buf->len; i++) {
         buf->data[i] = (uint8_t) ~buf->data[i];
      }
   }
}

bool
flora__sqlite_key_successor(const uint8_t *key, size_t len, sq_buf_t *out)
{
   out->len = 0;
   while (len > 0 && key[len - 1] == 0xFF) {
      len--;
   }
   if (len == 0) {
      return false;
   }
   flora__sqlite_buf_append(out, key, len);
   out->data[len - 1]++;
   return true;
}
