/* The embedded engine's index key encoding (lib/store/sqlite_keys.c): memcmp order of
 * encodings must equal flora_value_compare order, for every pair of a large value set
 * (every BSON type, numeric edge cases, nested documents and arrays, the OpenDocDB CTS
 * fixture values), ascending and descending, alone and in compound keys. */
#include "flora_test.h"

#include <math.h>

#include "flora/query.h"
#include "store/sqlite_private.h"

typedef struct values {
   bson_t **docs; /* each {v: value} */
   size_t len, cap;
} values_t;

static void
add_doc(values_t *vs, bson_t *doc)
{
   if (vs->len == vs->cap) {
      vs->cap = vs->cap ? vs->cap * 2 : 64;
      vs->docs = realloc(vs->docs, sizeof *vs->docs * vs->cap);
   }
   vs->docs[vs->len++] = doc;
}

static void
add_json(values_t *vs, const char *json)
{
   add_doc(vs, J(json));
}

static void
add_int64(values_t *vs, int64_t v)
{
   bson_t *d = bson_new();
   BSON_APPEND_INT64(d, "v", v);
   add_doc(vs, d);
}

static void
add_int32(values_t *vs, int32_t v)
{
   bson_t *d = bson_new();
   BSON_APPEND_INT32(d, "v", v);
   add_doc(vs, d);
}

static void
add_double(values_t *vs, double v)
{
   bson_t *d = bson_new();
   BSON_APPEND_DOUBLE(d, "v", v);
   add_doc(vs, d);
}

static void
add_decimal(values_t *vs, const char *s)
{
   bson_t *d = bson_new();
   bson_decimal128_t dec;
   assert_true(bson_decimal128_from_string(s, &dec));
   BSON_APPEND_DECIMAL128(d, "v", &dec);
   add_doc(vs, d);
}

static void
add_string(values_t *vs, const char *s, size_t len)
{
   bson_t *d = bson_new();
   bson_append_utf8(d, "v", 1, s, (int) len);
   add_doc(vs, d);
}

/* The value of {v: value} (its pointers lead into doc). */
static bson_value_t
value_of(const bson_t *doc)
{
   bson_iter_t it;
   assert_true(bson_iter_init_find(&it, doc, "v"));
   return *bson_iter_value(&it);
}

static int
sign(int x)
{
   return (x > 0) - (x < 0);
}

static int
mem_order(const sq_buf_t *a, const sq_buf_t *b)
{
   size_t n = a->len < b->len ? a->len : b->len;
   int r = memcmp(a->data, b->data, n);
   if (r) {
      return sign(r);
   }
   return (a->len > b->len) - (a->len < b->len);
}

/* A decimal128 the encoding rounds through a double: only compared when exact. */
static bool
comparable(const bson_value_t *v)
{
   char s[BSON_DECIMAL128_STRING];
   bson_value_t d;
   if (v->value_type != BSON_TYPE_DECIMAL128) {
      return true;
   }
   bson_decimal128_to_string(&v->value.v_decimal128, s);
   d.value_type = BSON_TYPE_DOUBLE;
   d.value.v_double = strtod(s, NULL);
   return flora_value_compare(v, &d) == 0;
}

static bool
deep_comparable(const bson_value_t *v)
{
   bson_t d;
   bson_iter_t it;
   if (v->value_type != BSON_TYPE_DOCUMENT && v->value_type != BSON_TYPE_ARRAY) {
      return comparable(v);
   }
   if (!bson_init_static(&d, v->value.v_doc.data, v->value.v_doc.data_len) ||
       !bson_iter_init(&it, &d)) {
      return true;
   }
   while (bson_iter_next(&it)) {
      if (!deep_comparable(bson_iter_value(&it))) {
         return false;
      }
   }
   return true;
}

static void
build_values(values_t *vs)
{
   static const int64_t ints[] = {0, 1, -1, 2, 42, -42, 1000000, INT32_MAX, INT32_MIN,
                                  (1LL << 53) - 1, 1LL << 53, (1LL << 53) + 1, (1LL << 53) + 2,
                                  -(1LL << 53) - 1, INT64_MAX, INT64_MAX - 1, INT64_MIN,
                                  INT64_MIN + 1, 4611686018427387904LL, 4611686018427387905LL};
   static const double dbls[] = {0.0, -0.0, 0.5, -0.5, 1.0, 1.5, 42.0, 42.13, -42.13, 1e300,
                                 -1e300, 5e-324, -5e-324, 9007199254740992.0,
                                 9007199254740994.0, 9223372036854775808.0,
                                 -9223372036854775808.0, 1.8446744073709552e19};
   unsigned seed = 12345;

   for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
      add_int64(vs, ints[i]);
      if (ints[i] >= INT32_MIN && ints[i] <= INT32_MAX) {
         add_int32(vs, (int32_t) ints[i]);
      }
   }
   for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
      add_double(vs, dbls[i]);
   }
   add_double(vs, INFINITY);
   add_double(vs, -INFINITY);
   add_double(vs, NAN);
   add_decimal(vs, "42");
   add_decimal(vs, "-1.5");
   add_decimal(vs, "0.5");
   add_decimal(vs, "1E+3");
   add_decimal(vs, "NaN");
   add_decimal(vs, "Infinity");
   for (int i = 0; i < 200; i++) {
      seed = seed * 1103515245u + 12345u;
      int64_t r = ((int64_t) seed << 20) ^ (int64_t) (seed >> 3);
      switch (i % 4) {
      case 0: add_int64(vs, r); break;
      case 1: add_int32(vs, (int32_t) (r % 1000)); break;
      case 2: add_double(vs, (double) (r % 1000) / 8.0); break;
      default: add_int64(vs, (1LL << 53) + (r % 16)); break;
      }
   }
   add_string(vs, "", 0);
   add_string(vs, "a", 1);
   add_string(vs, "a\0", 2);
   add_string(vs, "a\0b", 3);
   add_string(vs, "a\0\0", 3);
   add_string(vs, "ab", 2);
   add_string(vs, "b", 1);
   add_string(vs, "\xff", 1);
   add_string(vs, "роза", strlen("роза"));
   add_string(vs, "Роза", strlen("Роза"));
   add_json(vs, "{'v': {'$symbol': 'ab'}}");
   add_json(vs, "{'v': {}}");
   add_json(vs, "{'v': {'a': 1}}");
   add_json(vs, "{'v': {'a': 1.0}}");
   add_json(vs, "{'v': {'a': 2}}");
   add_json(vs, "{'v': {'a': 'x'}}");
   add_json(vs, "{'v': {'a': 1, 'b': 1}}");
   add_json(vs, "{'v': {'b': 1}}");
   add_json(vs, "{'v': {'ab': 1}}");
   add_json(vs, "{'v': {'a': null}}");
   add_json(vs, "{'v': {'a': {'b': [1, 2]}}}");
   add_json(vs, "{'v': []}");
   add_json(vs, "{'v': [1]}");
   add_json(vs, "{'v': [1, 2]}");
   add_json(vs, "{'v': [1, 'a']}");
   add_json(vs, "{'v': [2]}");
   add_json(vs, "{'v': [[1]]}");
   add_json(vs, "{'v': [{'a': 1}]}");
   add_json(vs, "{'v': [null]}");
   add_json(vs, "{'v': {'$binary': {'base64': '', 'subType': '00'}}}");
   add_json(vs, "{'v': {'$binary': {'base64': 'KgAN', 'subType': '00'}}}");
   add_json(vs, "{'v': {'$binary': {'base64': 'KgAN', 'subType': '04'}}}");
   add_json(vs, "{'v': {'$binary': {'base64': 'AAAA', 'subType': '00'}}}");
   add_json(vs, "{'v': {'$binary': {'base64': 'AA==', 'subType': '80'}}}");
   add_json(vs, "{'v': {'$oid': '000000000000000000000000'}}");
   add_json(vs, "{'v': {'$oid': '000102030405060708091011'}}");
   add_json(vs, "{'v': {'$oid': 'ffffffffffffffffffffffff'}}");
   add_json(vs, "{'v': true}");
   add_json(vs, "{'v': false}");
   add_json(vs, "{'v': {'$date': {'$numberLong': '0'}}}");
   add_json(vs, "{'v': {'$date': {'$numberLong': '-1'}}}");
   add_json(vs, "{'v': {'$date': {'$numberLong': '1700000000000'}}}");
   add_json(vs, "{'v': {'$date': {'$numberLong': '-62135596800000'}}}");
   add_json(vs, "{'v': {'$timestamp': {'t': 1, 'i': 2}}}");
   add_json(vs, "{'v': {'$timestamp': {'t': 1, 'i': 1}}}");
   add_json(vs, "{'v': {'$timestamp': {'t': 4294967295, 'i': 0}}}");
   add_json(vs, "{'v': {'$regularExpression': {'pattern': 'a', 'options': 'i'}}}");
   add_json(vs, "{'v': {'$regularExpression': {'pattern': 'a', 'options': ''}}}");
   add_json(vs, "{'v': {'$regularExpression': {'pattern': 'ab', 'options': ''}}}");
   add_json(vs, "{'v': {'$code': 'x'}}");
   add_json(vs, "{'v': {'$code': 'x', '$scope': {'a': 1}}}");
   add_json(vs, "{'v': {'$minKey': 1}}");
   add_json(vs, "{'v': {'$maxKey': 1}}");
   add_json(vs, "{'v': null}");
   add_json(vs, "{'v': {'$undefined': true}}");
}

static void
load_fixture(values_t *vs)
{
   const char *shared = flora_test_shared_dir();
   char path[4096];
   char *text = NULL;
   size_t len = 0;
   FILE *f;
   bson_t *wrapped;
   bson_iter_t it, ai;
   size_t before = vs->len;

   if (!shared) {
      print_message("FLORA_SHARED_DIR absent: the CTS fixture values are not compared\n");
      return;
   }
   snprintf(path, sizeof path, "%s/conformance/opendocdb-cts/values.fixture.json", shared);
   f = fopen(path, "rb");
   if (!f) {
      print_message("no %s: the CTS fixture values are not compared\n", path);
      return;
   }
   {
      char chunk[4096];
      size_t n;
      while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
         text = realloc(text, len + n + 64);
         memcpy(text + len, chunk, n);
         len += n;
      }
   }
   fclose(f);
   /* wrap the top-level array into a document for libbson's parser */
   {
      char *doc = malloc(len + 16);
      bson_error_t err;
      memcpy(doc, "{\"a\":", 5);
      memcpy(doc + 5, text, len);
      memcpy(doc + 5 + len, "}", 2);
      wrapped = bson_new_from_json((const uint8_t *) doc, -1, &err);
      free(doc);
      assert_non_null(wrapped);
   }
   free(text);
   assert_true(bson_iter_init_find(&it, wrapped, "a") && bson_iter_recurse(&it, &ai));
   while (bson_iter_next(&ai)) {
      bson_iter_t di;
      if (bson_iter_recurse(&ai, &di) && bson_iter_find(&di, "v")) {
         bson_t *d = bson_new();
         bson_append_value(d, "v", 1, bson_iter_value(&di));
         add_doc(vs, d);
      }
   }
   bson_destroy(wrapped);
   assert_true(vs->len > before + 20);
}

static void
free_values(values_t *vs)
{
   for (size_t i = 0; i < vs->len; i++) {
      bson_destroy(vs->docs[i]);
   }
   free(vs->docs);
}

static void
test_pairwise_order(void **state)
{
   values_t vs = {0};
   sq_buf_t *asc, *desc;
   size_t checked = 0;

   (void) state;
   build_values(&vs);
   load_fixture(&vs);
   asc = calloc(vs.len, sizeof *asc);
   desc = calloc(vs.len, sizeof *desc);
   for (size_t i = 0; i < vs.len; i++) {
      bson_value_t v = value_of(vs.docs[i]);
      flora__sqlite_key_append(&asc[i], &v, false);
      flora__sqlite_key_append(&desc[i], &v, true);
   }
   for (size_t i = 0; i < vs.len; i++) {
      bson_value_t ac = value_of(vs.docs[i]);
      if (!deep_comparable(&ac)) {
         continue;
      }
      for (size_t j = 0; j < vs.len; j++) {
         bson_value_t bv = value_of(vs.docs[j]);
         int expect, got;
         if (!deep_comparable(&bv)) {
            continue;
         }
         expect = sign(flora_value_compare(&ac, &bv));
         got = mem_order(&asc[i], &asc[j]);
         if (expect != got) {
            char *sa = flora_test_str(vs.docs[i]), *sb = flora_test_str(vs.docs[j]);
            fail_msg("order of %s vs %s: compare %d, keys %d", sa, sb, expect, got);
         }
         assert_int_equal(mem_order(&desc[i], &desc[j]), -expect);
         checked++;
      }
   }
   assert_true(checked > 40000);
   for (size_t i = 0; i < vs.len; i++) {
      flora__sqlite_buf_free(&asc[i]);
      flora__sqlite_buf_free(&desc[i]);
   }
   free(asc);
   free(desc);
   free_values(&vs);
}

/* Compound keys (a asc, b desc) order as (a, then reversed b). */
static void
test_compound(void **state)
{
   values_t vs = {0};
   (void) state;
   build_values(&vs);
   for (size_t i = 0; i < vs.len; i += 7) {
      for (size_t j = 0; j < vs.len; j += 5) {
         for (size_t k = 0; k < vs.len; k += 11) {
            for (size_t l = 0; l < vs.len; l += 13) {
               bson_value_t a1c = value_of(vs.docs[i]);
               bson_value_t b1c = value_of(vs.docs[j]);
               bson_value_t a2c = value_of(vs.docs[k]);
               bson_value_t b2v = value_of(vs.docs[l]);
               const bson_value_t *b2 = &b2v;
               sq_buf_t x = SQ_BUF_INIT, y = SQ_BUF_INIT;
               int expect;
               if (!deep_comparable(&a1c) || !deep_comparable(&b1c) || !deep_comparable(&a2c) ||
                   !deep_comparable(b2)) {
                  continue;
               }
               flora__sqlite_key_append(&x, &a1c, false);
               flora__sqlite_key_append(&x, &b1c, true);
               flora__sqlite_key_append(&y, &a2c, false);
               flora__sqlite_key_append(&y, b2, true);
               expect = sign(flora_value_compare(&a1c, &a2c));
               if (expect == 0) {
                  expect = -sign(flora_value_compare(&b1c, b2));
               }
               assert_int_equal(mem_order(&x, &y), expect);
               flora__sqlite_buf_free(&x);
               flora__sqlite_buf_free(&y);
            }
         }
      }
   }
   free_values(&vs);
}

static void
test_equal_numbers_encode_identically(void **state)
{
   bson_t *d = J("{'a': 3, 'b': {'$numberLong': '3'}, 'c': 3.0, 'd': {'$numberDecimal': '3.00'}, "
                 "'e': -0.0, 'f': 0}");
   bson_iter_t it;
   sq_buf_t first = SQ_BUF_INIT, zero = SQ_BUF_INIT;
   (void) state;
   assert_true(bson_iter_init(&it, d));
   for (int i = 0; i < 4 && bson_iter_next(&it); i++) {
      sq_buf_t k = SQ_BUF_INIT;
      flora__sqlite_key_append(&k, bson_iter_value(&it), false);
      if (i == 0) {
         first = k;
      } else {
         assert_int_equal(k.len, first.len);
         assert_memory_equal(k.data, first.data, k.len);
         flora__sqlite_buf_free(&k);
      }
   }
   assert_true(bson_iter_next(&it));
   flora__sqlite_key_append(&zero, bson_iter_value(&it), false);
   assert_true(bson_iter_next(&it));
   {
      sq_buf_t k = SQ_BUF_INIT;
      flora__sqlite_key_append(&k, bson_iter_value(&it), false);
      assert_int_equal(k.len, zero.len);
      assert_memory_equal(k.data, zero.data, k.len);
      flora__sqlite_buf_free(&k);
   }
   flora__sqlite_buf_free(&first);
   flora__sqlite_buf_free(&zero);
   bson_destroy(d);
}

static void
test_successor(void **state)
{
   static const struct {
      const char *in;
      size_t in_len;
      const char *out;
      size_t out_len;
      bool ok;
   } cases[] = {
      {"\x10\x01", 2, "\x10\x02", 2, true},
      {"\x10\xff", 2, "\x11", 1, true},
      {"\x10\xff\xff", 3, "\x11", 1, true},
      {"\xff\xff", 2, "", 0, false},
      {"", 0, "", 0, false},
   };
   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      sq_buf_t out = SQ_BUF_INIT;
      assert_int_equal(flora__sqlite_key_successor((const uint8_t *) cases[i].in, cases[i].in_len,
                                                   &out),
                       cases[i].ok);
      if (cases[i].ok) {
         assert_int_equal(out.len, cases[i].out_len);
         assert_memory_equal(out.data, cases[i].out, out.len);
      }
      flora__sqlite_buf_free(&out);
   }
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pairwise_order),
      cmocka_unit_test(test_compound),
      cmocka_unit_test(test_equal_numbers_encode_identically),
      cmocka_unit_test(test_successor),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
