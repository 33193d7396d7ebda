/* Values, document helpers and path walking (lib/query/value.c, docs.c, document.c). */
#include "flora_test.h"

#include "flora/query.h"
#include "query/query_private.h"

/* Compares the values of field "a" of two documents. */
static int
cmp_json(const char *ja, const char *jb)
{
   bson_t *a = J(ja), *b = J(jb);
   bson_iter_t ia, ib;
   int c;

   assert_true(bson_iter_init_find(&ia, a, "a"));
   assert_true(bson_iter_init_find(&ib, b, "a"));
   c = flora_value_compare(bson_iter_value(&ia), bson_iter_value(&ib));
   bson_destroy(a);
   bson_destroy(b);
   return c;
}

static const struct {
   const char *a;
   const char *b;
   int want; /* -1, 0, 1 */
} compare_cases[] = {
   /* numbers across types */
   {"{'a': 1}", "{'a': {'$numberLong': '1'}}", 0},
   {"{'a': 1}", "{'a': 1.0}", 0},
   {"{'a': 1}", "{'a': {'$numberDecimal': '1.000'}}", 0},
   {"{'a': {'$numberDecimal': '1E+2'}}", "{'a': 100}", 0},
   {"{'a': {'$numberDecimal': '0.1'}}", "{'a': 0.1}", -1}, /* 0.1 as a double is larger */
   {"{'a': {'$numberDecimal': '0.5'}}", "{'a': 0.5}", 0},
   {"{'a': {'$numberDecimal': '-2.5'}}", "{'a': -2}", -1},
   {"{'a': {'$numberDecimal': '46.1'}}", "{'a': {'$numberLong': '46'}}", 1},
   {"{'a': {'$numberDecimal': '-0.0'}}", "{'a': 0}", 0},
   {"{'a': {'$numberDouble': '-0.0'}}", "{'a': {'$numberDouble': '0.0'}}", 0},
   {"{'a': {'$numberDouble': 'NaN'}}", "{'a': {'$numberDouble': 'NaN'}}", 0},
   {"{'a': {'$numberDouble': 'NaN'}}", "{'a': {'$numberDecimal': 'NaN'}}", 0},
   {"{'a': {'$numberDouble': 'NaN'}}", "{'a': {'$numberDouble': '-Infinity'}}", -1},
   {"{'a': {'$numberDecimal': 'NaN'}}", "{'a': {'$numberLong': '-9223372036854775808'}}", -1},
   {"{'a': {'$numberDouble': 'Infinity'}}", "{'a': {'$numberDecimal': 'Infinity'}}", 0},
   {"{'a': {'$numberDouble': 'Infinity'}}", "{'a': {'$numberLong': '9223372036854775807'}}", 1},
   {"{'a': {'$numberDecimal': '-Infinity'}}", "{'a': -1e308}", -1},
   /* int64 beyond 2^53 against doubles: exact */
   {"{'a': {'$numberLong': '9007199254740993'}}", "{'a': 9007199254740992.0}", 1},
   {"{'a': {'$numberLong': '9223372036854775807'}}", "{'a': 9223372036854775807.0}", -1},
   {"{'a': {'$numberLong': '-9223372036854775808'}}", "{'a': -9223372036854775808.0}", 0},
   {"{'a': 2}", "{'a': 2.5}", -1},
   {"{'a': -2}", "{'a': -2.5}", 1},
   {"{'a': {'$numberDecimal': '9999999999999999999999999999999999'}}",
    "{'a': {'$numberDecimal': '9999999999999999999999999999999998'}}", 1},
   {"{'a': {'$numberDecimal': '1E-6176'}}", "{'a': 0}", 1},
   {"{'a': {'$numberDecimal': '1E+6144'}}", "{'a': 1.7976931348623157e308}", 1},
   /* type order */
   {"{'a': {'$minKey': 1}}", "{'a': null}", -1},
   {"{'a': null}", "{'a': -1e308}", -1},
   {"{'a': 1e308}", "{'a': ''}", -1},
   {"{'a': 'b'}", "{'a': {'$symbol': 'b'}}", 0},
   {"{'a': 'ab'}", "{'a': 'b'}", -1},
   {"{'a': 'a'}", "{'a': 'ab'}", -1},
   {"{'a': 'B'}", "{'a': 'a'}", -1},
   {"{'a': 'zzz'}", "{'a': {}}", -1},
   {"{'a': {'z': 1}}", "{'a': []}", -1},
   {"{'a': [99]}", "{'a': {'$binary': {'base64': '', 'subType': '00'}}}", -1},
   {"{'a': {'$binary': {'base64': 'KgAN', 'subType': '00'}}}",
    "{'a': {'$oid': '000102030405060708091011'}}", -1},
   {"{'a': {'$oid': 'ffffffffffffffffffffffff'}}", "{'a': false}", -1},
   {"{'a': true}", "{'a': {'$date': {'$numberLong': '-5'}}}", -1},
   {"{'a': {'$date': {'$numberLong': '1'}}}", "{'a': {'$timestamp': {'t': 0, 'i': 0}}}", -1},
   {"{'a': {'$timestamp': {'t': 9, 'i': 9}}}",
    "{'a': {'$regularExpression': {'pattern': 'a', 'options': ''}}}", -1},
   {"{'a': {'$regularExpression': {'pattern': 'a', 'options': ''}}}", "{'a': {'$maxKey': 1}}", -1},
   {"{'a': false}", "{'a': true}", -1},
   {"{'a': {'$timestamp': {'t': 1, 'i': 2}}}", "{'a': {'$timestamp': {'t': 1, 'i': 1}}}", 1},
   {"{'a': {'$binary': {'base64': 'AQ==', 'subType': '80'}}}",
    "{'a': {'$binary': {'base64': 'AgI=', 'subType': '00'}}}", -1}, /* shorter first */
   {"{'a': {'$regularExpression': {'pattern': 'a', 'options': 'i'}}}",
    "{'a': {'$regularExpression': {'pattern': 'a', 'options': ''}}}", 1},
   /* documents: type of field first, then name, then value; prefix first */
   {"{'a': {'x': 1}}", "{'a': {'x': 1}}", 0},
   {"{'a': {'x': 1}}", "{'a': {'x': 1.0}}", 0},
   {"{'a': {'x': 1}}", "{'a': {'x': 1, 'y': 1}}", -1},
   {"{'a': {'x': 'a'}}", "{'a': {'a': 1}}", 1},
   {"{'a': {'b': 1}}", "{'a': {'a': 2}}", 1},
   {"{'a': {'x': 1, 'y': 1}}", "{'a': {'y': 1, 'x': 1}}", -1},
   {"{'a': {}}", "{'a': {'x': null}}", -1},
   /* arrays: element by element */
   {"{'a': [1, 2]}", "{'a': [1, 3]}", -1},
   {"{'a': [1, 2]}", "{'a': [1]}", 1},
   {"{'a': []}", "{'a': [null]}", -1},
   {"{'a': [1, 'x']}", "{'a': [1, 2]}", 1},
   {"{'a': [[1]]}", "{'a': [1]}", 1},
};

static void
test_compare_table(void **state)
{
   (void) state;
   for (size_t i = 0; i < sizeof compare_cases / sizeof compare_cases[0]; i++) {
      int got = cmp_json(compare_cases[i].a, compare_cases[i].b);
      int back = cmp_json(compare_cases[i].b, compare_cases[i].a);

      got = (got > 0) - (got < 0);
      back = (back > 0) - (back < 0);
      if (got != compare_cases[i].want || back != -compare_cases[i].want) {
         fail_msg("compare(%s, %s) = %d (reverse %d), want %d", compare_cases[i].a,
                  compare_cases[i].b, got, back, compare_cases[i].want);
      }
   }
}

static void
test_type_rank(void **state)
{
   (void) state;
   assert_int_equal(flora_value_type_rank(BSON_TYPE_EOD), flora_value_type_rank(BSON_TYPE_NULL));
   assert_int_equal(flora_value_type_rank(BSON_TYPE_INT32),
                    flora_value_type_rank(BSON_TYPE_DECIMAL128));
   assert_int_equal(flora_value_type_rank(BSON_TYPE_UTF8), flora_value_type_rank(BSON_TYPE_SYMBOL));
   assert_true(flora_value_type_rank(BSON_TYPE_MINKEY) < flora_value_type_rank(BSON_TYPE_NULL));
   assert_true(flora_value_type_rank(BSON_TYPE_REGEX) < flora_value_type_rank(BSON_TYPE_MAXKEY));
   assert_true(flora_value_type_rank(BSON_TYPE_DOCUMENT) < flora_value_type_rank(BSON_TYPE_ARRAY));
}

static const struct {
   const char *doc;
   bool ok;
   int64_t want;
} as_int64_cases[] = {
   {"{'a': 3}", true, 3},
   {"{'a': 3.0}", true, 3},
   {"{'a': 3.5}", false, 0},
   {"{'a': {'$numberDecimal': '3.00'}}", true, 3},
   {"{'a': {'$numberDecimal': '-3E+2'}}", true, -300},
   {"{'a': {'$numberDecimal': '3.01'}}", false, 0},
   {"{'a': {'$numberDecimal': '-9223372036854775808'}}", true, INT64_MIN},
   {"{'a': {'$numberDecimal': '9223372036854775808'}}", false, 0},
   {"{'a': {'$numberDouble': 'NaN'}}", false, 0},
   {"{'a': 9.3e18}", false, 0},
   {"{'a': {'$numberLong': '-7'}}", true, -7},
};

static void
test_number_as_int64(void **state)
{
   (void) state;
   for (size_t i = 0; i < sizeof as_int64_cases / sizeof as_int64_cases[0]; i++) {
      bson_t *d = J(as_int64_cases[i].doc);
      bson_iter_t it;
      int64_t v = 0;
      bool ok;

      assert_true(bson_iter_init_find(&it, d, "a"));
      ok = flora__number_as_int64(bson_iter_value(&it), &v);
      if (ok != as_int64_cases[i].ok || (ok && v != as_int64_cases[i].want)) {
         fail_msg("as_int64(%s) = %d/%lld", as_int64_cases[i].doc, ok, (long long) v);
      }
      bson_destroy(d);
   }
   {
      bson_t *d = J("{'a': {'$numberDecimal': '2.5'}}");
      bson_iter_t it;

      assert_true(bson_iter_init_find(&it, d, "a"));
      assert_true(flora__number_to_double(bson_iter_value(&it)) == 2.5);
      bson_destroy(d);
   }
}

static void
test_docs_list(void **state)
{
   flora_docs_t docs = FLORA_DOCS_INIT;
   bson_t *a = J("{'a': 1}");

   (void) state;
   for (int i = 0; i < 40; i++) {
      flora_docs_append_copy(&docs, a);
   }
   flora_docs_append_owned(&docs, J("{'b': 2}"));
   assert_int_equal(docs.len, 41);
   assert_true(docs.cap >= 41);
   assert_bson_equal(docs.items[0], a);
   assert_true(docs.items[0] != a);
   flora_docs_clear(&docs);
   assert_int_equal(docs.len, 0);
   assert_null(docs.items);
   flora_docs_clear(&docs);
   flora_docs_clear(NULL);
   bson_destroy(a);
}

static bson_t *
nested(int levels)
{
   /* {a: {a: ... {a: 1}}} with `levels` documents below the top one. */
   bson_t *inner = J("{'a': 1}");

   for (int i = 1; i < levels; i++) {
      bson_t *outer = bson_new();

      BSON_APPEND_DOCUMENT(outer, "a", inner);
      bson_destroy(inner);
      inner = outer;
   }
   {
      bson_t *top = bson_new();

      BSON_APPEND_DOCUMENT(top, "a", inner);
      bson_destroy(inner);
      return top;
   }
}

static const struct {
   const char *doc;
   uint32_t code; /* 0: storable */
} storable_cases[] = {
   {"{'a': 1, 'b': {'c': [1, {'d': 2}]}}", 0},
   {"{'': 1}", FLORA_STORE_EMPTY_FIELD_NAME},
   {"{'a': {'': 1}}", FLORA_STORE_EMPTY_FIELD_NAME},
   {"{'a': [{'': 1}]}", FLORA_STORE_EMPTY_FIELD_NAME},
   {"{'$set': 1}", FLORA_STORE_DOLLAR_PREFIXED},
   {"{'$ref': 'x'}", FLORA_STORE_DOLLAR_PREFIXED},
   {"{'a': {'$gt': 1}}", FLORA_STORE_DOLLAR_PREFIXED},
   {"{'a': [{'$x': 1}]}", FLORA_STORE_DOLLAR_PREFIXED},
   {"{'a': {'$ref': 'c', '$id': 1, '$db': 'd'}}", 0},
   {"{'a$': 1, 'b.c': 2}", 0},
};

static void
test_check_storable(void **state)
{
   flora_error_t err;

   (void) state;
   for (size_t i = 0; i < sizeof storable_cases / sizeof storable_cases[0]; i++) {
      bson_t *d = J(storable_cases[i].doc);
      bool ok;

      flora_error_clear(&err);
      ok = flora_document_check_storable(d, &err);
      if (ok != (storable_cases[i].code == 0) ||
          (!ok && (err.code != storable_cases[i].code || err.domain != FLORA_DOMAIN_STORE))) {
         fail_msg("check_storable(%s) = %d code %u (%s)", storable_cases[i].doc, ok, err.code,
                  err.message);
      }
      bson_destroy(d);
   }
   {
      bson_t *ok100 = nested(99); /* top + 99 nested documents = 100 levels */
      bson_t *bad101 = nested(100);

      assert_true(flora_document_check_storable(ok100, &err));
      assert_false(flora_document_check_storable(bad101, &err));
      assert_int_equal(err.code, FLORA_STORE_OVERFLOW);
      bson_destroy(ok100);
      bson_destroy(bad101);
   }
   {
      size_t n = 16 * 1024 * 1024;
      char *big = malloc(n);
      bson_t *d = bson_new();

      memset(big, 'x', n - 1);
      big[n - 1] = '\0';
      assert_true(bson_append_utf8(d, "s", 1, big, (int) (n - 1)));
      assert_false(flora_document_check_storable(d, &err));
      assert_int_equal(err.code, FLORA_STORE_BSON_TOO_LARGE);
      bson_destroy(d);
      d = bson_new();
      assert_true(bson_append_utf8(d, "s", 1, big, (int) (n - 100)));
      assert_true(flora_document_check_storable(d, &err));
      bson_destroy(d);
      free(big);
   }
}

static const struct {
   const char *doc;
   const char *path;
   const char *want; /* {'v': value} or NULL when absent */
} get_path_cases[] = {
   {"{'a': {'b': 1}}", "a.b", "{'v': 1}"},
   {"{'a': [{'b': 1}, {'b': 2}]}", "a.1.b", "{'v': 2}"},
   {"{'a': [{'b': 1}, {'b': 2}]}", "a.b", NULL},
   {"{'a': [5, 6]}", "a.1", "{'v': 6}"},
   {"{'a': [5, 6]}", "a.2", NULL},
   {"{'a': {'0': 'zero'}}", "a.0", "{'v': 'zero'}"},
   {"{'a': 1}", "a.b", NULL},
   {"{'ab': 1}", "a", NULL},
   {"{'a': 1, 'A': 2}", "A", "{'v': 2}"},
   {"{'a': {'b': {'c': [1]}}}", "a.b.c", "{'v': [1]}"},
   {"{'a': {'b': {'c': [1]}}}", "a.b", "{'v': {'c': [1]}}"},
};

static void
test_get_path(void **state)
{
   (void) state;
   for (size_t i = 0; i < sizeof get_path_cases / sizeof get_path_cases[0]; i++) {
      bson_t *d = J(get_path_cases[i].doc);
      bson_iter_t it;
      bool found = flora_document_get_path(d, get_path_cases[i].path, &it);

      if (found != (get_path_cases[i].want != NULL)) {
         fail_msg("get_path(%s, %s) found=%d", get_path_cases[i].doc, get_path_cases[i].path,
                  found);
      }
      if (found) {
         bson_t got = BSON_INITIALIZER;
         bson_t *want = J(get_path_cases[i].want);

         bson_append_value(&got, "v", 1, bson_iter_value(&it));
         assert_bson_equal(&got, want);
         bson_destroy(&got);
         bson_destroy(want);
      }
      bson_destroy(d);
   }
}

/* Path walks render as "kind:value@index" items joined by spaces. */
typedef struct {
   char buf[1024];
} trace_t;

static bool
trace_visit(void *ctx, flora__visit_kind_t kind, const bson_iter_t *value, int array_index)
{
   trace_t *t = ctx;
   char item[256];
   const char *k = kind == FLORA__VISIT_VALUE ? "V" : kind == FLORA__VISIT_ELEMENT ? "E" : "M";
   char *json = NULL;

   if (value) {
      bson_t tmp = BSON_INITIALIZER;

      bson_append_value(&tmp, "v", 1, bson_iter_value((bson_iter_t *) value));
      json = bson_as_relaxed_extended_json(&tmp, NULL);
      bson_destroy(&tmp);
   }
   snprintf(item, sizeof item, "%s%s%s@%d", t->buf[0] ? " " : "", k, json ? json : "", array_index);
   strncat(t->buf, item, sizeof t->buf - strlen(t->buf) - 1);
   bson_free(json);
   return true;
}

static const struct {
   const char *doc;
   const char *path;
   int flags;
   const char *want;
} walk_cases[] = {
   {"{'a': 1}", "a", 0, "V{ \"v\" : 1 }@-1"},
   {"{'b': 1}", "a", 0, "M@-1"},
   {"{'a': 1}", "a.b", 0, "M@-1"},
   {"{'a': {'b': 2}}", "a.b", 0, "V{ \"v\" : 2 }@-1"},
   {"{'a': [1, 2]}", "a", FLORA__WALK_EXPAND_LEAF,
    "E{ \"v\" : 1 }@0 E{ \"v\" : 2 }@1 V{ \"v\" : [ 1, 2 ] }@-1"},
   {"{'a': [1, 2]}", "a", 0, "V{ \"v\" : [ 1, 2 ] }@-1"},
   {"{'a': [{'b': 1}, {'c': 1}, 7, {'b': [3]}]}", "a.b", FLORA__WALK_EXPAND_LEAF,
    "V{ \"v\" : 1 }@0 M@1 E{ \"v\" : 3 }@3 V{ \"v\" : [ 3 ] }@3"},
   {"{'a': [{'b': 1}, {'0': 'z'}]}", "a.0", 0,
    "V{ \"v\" : { \"b\" : 1 } }@-1 M@0 V{ \"v\" : \"z\" }@1"},
   {"{'a': [{'b': 1}, {'b': 2}]}", "a.1.b", 0, "V{ \"v\" : 2 }@-1 M@0 M@1"},
   {"{'a': [[{'b': 1}]]}", "a.b", 0, ""},
   {"{'a': [[{'b': 1}]]}", "a.0.b", 0, "V{ \"v\" : 1 }@0"},
   {"{'a': [{'b': [{'c': 1}, {'c': 2}]}, {'b': [{'c': 3}]}]}", "a.b.c", 0,
    "V{ \"v\" : 1 }@0 V{ \"v\" : 2 }@0 V{ \"v\" : 3 }@1"},
   {"{'a': []}", "a.b", 0, ""},
   {"{'a': {'b': null}}", "a.b", 0, "V{ \"v\" : null }@-1"},
};

static void
test_path_walk(void **state)
{
   (void) state;
   for (size_t i = 0; i < sizeof walk_cases / sizeof walk_cases[0]; i++) {
      bson_t *d = J(walk_cases[i].doc);
      flora__path_t path;
      trace_t t = {{0}};

      assert_true(flora__path_init(&path, walk_cases[i].path, NULL));
      assert_true(flora__path_walk(&path, d, walk_cases[i].flags, trace_visit, &t));
      if (strcmp(t.buf, walk_cases[i].want) != 0) {
         fail_msg("walk(%s, %s):\n  got  %s\n  want %s", walk_cases[i].doc, walk_cases[i].path,
                  t.buf, walk_cases[i].want);
      }
      flora__path_clear(&path);
      bson_destroy(d);
   }
}

static void
test_path_init_errors(void **state)
{
   static const char *const bad[] = {"", "a..b", ".a", "a."};
   flora__path_t path;
   flora_error_t err;

   (void) state;
   for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      flora_error_clear(&err);
      assert_false(flora__path_init(&path, bad[i], &err));
      assert_int_equal(err.code, FLORA_STORE_BAD_VALUE);
      flora__path_clear(&path);
   }
   assert_true(flora__path_init(&path, "a.10.b", &err));
   assert_int_equal(path.n, 3);
   assert_int_equal(path.part_index[0], -1);
   assert_int_equal(path.part_index[1], 10);
   flora__path_clear(&path);
   assert_int_equal(flora__parse_index("01", 2), -1);
   assert_int_equal(flora__parse_index("0", 1), 0);
   assert_int_equal(flora__parse_index("-1", 2), -1);
   assert_int_equal(flora__parse_index("1234567890", 10), -1);
}

static bool
stop_at_second(void *ctx, flora__visit_kind_t kind, const bson_iter_t *value, int array_index)
{
   int *count = ctx;

   (void) kind;
   (void) value;
   (void) array_index;
   return ++*count < 2;
}

static void
test_path_walk_stops(void **state)
{
   bson_t *d = J("{'a': [{'b': 1}, {'b': 2}, {'b': 3}]}");
   flora__path_t path;
   int count = 0;

   (void) state;
   assert_true(flora__path_init(&path, "a.b", NULL));
   assert_false(flora__path_walk(&path, d, 0, stop_at_second, &count));
   assert_int_equal(count, 2);
   flora__path_clear(&path);
   flora__path_clear(NULL);
   bson_destroy(d);
}

static void
test_type_names(void **state)
{
   (void) state;
   assert_string_equal(flora_value_type_name(BSON_TYPE_DOUBLE), "double");
   assert_string_equal(flora_value_type_name(BSON_TYPE_INT32), "int");
   assert_string_equal(flora_value_type_name(BSON_TYPE_INT64), "long");
   assert_string_equal(flora_value_type_name(BSON_TYPE_DECIMAL128), "decimal");
   assert_string_equal(flora_value_type_name(BSON_TYPE_DOCUMENT), "object");
   assert_string_equal(flora_value_type_name(BSON_TYPE_OID), "objectId");
   assert_string_equal(flora_value_type_name(BSON_TYPE_DATE_TIME), "date");
   assert_string_equal(flora_value_type_name(BSON_TYPE_MAXKEY), "maxKey");
   assert_null(flora_value_type_name(BSON_TYPE_EOD));
}

static void
test_text_score(void **state)
{
   bson_t *d = bson_new();
   bson_t out;

   (void) state;
   BSON_APPEND_INT32(d, "a", 1);
   assert_true(flora__text_score(d) == 0.0);
   BSON_APPEND_DOUBLE(d, FLORA__TEXT_SCORE_FIELD, 1.5);
   assert_true(flora__text_score(d) == 1.5);
   flora__text_score_strip(d, &out);
   {
      bson_t *want = J("{'a': 1}");

      assert_bson_equal(&out, want);
      bson_destroy(want);
   }
   bson_destroy(&out);
   bson_destroy(d);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compare_table),   cmocka_unit_test(test_type_rank),
      cmocka_unit_test(test_number_as_int64), cmocka_unit_test(test_docs_list),
      cmocka_unit_test(test_check_storable),  cmocka_unit_test(test_get_path),
      cmocka_unit_test(test_path_walk),       cmocka_unit_test(test_path_init_errors),
      cmocka_unit_test(test_text_score),      cmocka_unit_test(test_path_walk_stops),
      cmocka_unit_test(test_type_names),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
