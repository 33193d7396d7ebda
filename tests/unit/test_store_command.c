/* flora_store_command, the MongoDB command adapter, and the CTS comparison it is judged by.
 * The command scenarios are CTS-format files under tests/data/store_command (fixtures at the
 * root, suites in commands/), run on the embedded engine by the conformance runner: a new
 * case needs no new C. */
#include "flora_test.h"

#include "flora/conformance.h"
#include "flora/store.h"

/* ---- comparison ---------------------------------------------------------------------- */

static const struct {
   const char *actual;
   const char *expected;
   bool equal;
   const char *diff; /* a substring of the difference, when not equal */
} compare_cases[] = {
   {"{'a': 1, 'b': 2}", "{'b': 2, 'a': 1}", true, NULL},
   {"{'a': [1, 2]}", "{'a': [2, 1]}", false, "a.0: expected int"},
   {"{'a': {'$numberInt': '1'}}", "{'a': {'$numberLong': '1'}}", false, "expected long"},
   {"{'a': {'$numberInt': '52'}}", "{'a': {'$numberDouble': '52.0'}}", false, "expected double"},
   {"{'a': {'$numberDouble': '-0.0'}}", "{'a': {'$numberDouble': '0.0'}}", false, "a:"},
   {"{'a': {'$numberDouble': 'NaN'}}", "{'a': {'$numberDouble': 'NaN'}}", true, NULL},
   {"{'a': {'$numberDecimal': '1.0'}}", "{'a': {'$numberDecimal': '1.00'}}", false, "decimal"},
   {"{'a': {'$numberDecimal': '-0'}}", "{'a': {'$numberDecimal': '-0'}}", true, NULL},
   {"{'a': 1}", "{'a': 1, 'b': 2}", false, "b: missing"},
   {"{'a': 1, 'c': 3}", "{'a': 1}", false, "c: unexpected field"},
   {"{'x': {'y': [{'z': 'q', 'w': 1}]}}", "{'x': {'y': [{'w': 1, 'z': 'q'}]}}", true, NULL},
   {"{'x': [1]}", "{'x': [1, 2]}", false, "x: expected 2 elements, got 1"},
   {"{'r': {'$regularExpression': {'pattern': 'a', 'options': 'i'}}}",
    "{'r': {'$regularExpression': {'pattern': 'a', 'options': ''}}}", false, "regex"},
   {"{'d': {'$date': {'$numberLong': '5'}}}", "{'d': {'$date': {'$numberLong': '5'}}}", true,
    NULL},
   {"{'b': {'$binary': {'base64': 'KgAN', 'subType': '00'}}}",
    "{'b': {'$binary': {'base64': 'KgAN', 'subType': '80'}}}", false, "binary"},
};

static void
test_compare(void **state)
{
   (void) state;
   for (size_t i = 0; i < sizeof compare_cases / sizeof compare_cases[0]; i++) {
      bson_t *a = J(compare_cases[i].actual);
      bson_t *e = J(compare_cases[i].expected);
      char diff[512];
      bool equal = flora_conformance_compare(a, e, diff, sizeof diff);

      if (equal != compare_cases[i].equal) {
         fail_msg("case %zu: %s vs %s: expected %s (%s)", i, compare_cases[i].actual,
                  compare_cases[i].expected, compare_cases[i].equal ? "equal" : "different",
                  diff);
      }
      if (!equal && !strstr(diff, compare_cases[i].diff)) {
         fail_msg("case %zu: difference '%s' lacks '%s'", i, diff, compare_cases[i].diff);
      }
      bson_destroy(a);
      bson_destroy(e);
   }
}

/* ---- command scenarios ----------------------------------------------------------------- */

static void
report(void *ctx, flora_conformance_outcome_t outcome, const char *path, const char *name,
       const char *detail)
{
   int *bad = ctx;

   if (outcome != FLORA_CONFORMANCE_PASS) {
      (*bad)++;
      print_message("%s %s %s: %s\n", outcome == FLORA_CONFORMANCE_FAIL ? "FAIL" : "UNSUPPORTED",
                    path, name, detail);
   }
}

static void
test_command_scenarios(void **state)
{
   const char *src = getenv("FLORA_SOURCE_DIR");
   char dir[4096];
   flora_conformance_totals_t totals;
   flora_error_t error = {0};
   int bad = 0;

   (void) state;
   snprintf(dir, sizeof dir, "%s/tests/data/store_command", src ? src : ".");
   if (!flora_conformance_run(dir, "sqlite::memory:", report, &bad, &totals, &error)) {
      fail_msg("run: %s", error.message);
   }
   assert_true(totals.passed >= 30);
   assert_int_equal(totals.failed, 0);
   assert_int_equal(totals.unsupported, 0);
   assert_int_equal(bad, 0);
}

/* A reply is always initialised; errors come back in MongoDB's shape and in *error. */
static void
test_command_errors(void **state)
{
   flora_store_t *store = NULL;
   flora_error_t error = {0};
   bson_t *empty = J("{}");
   bson_t *bad_db = J("{'ping': 1, '$db': 5}");
   bson_t *bad_coll = J("{'find': 5}");
   bson_t reply;
   bson_iter_t it;

   (void) state;
   assert_true(flora_store_open(&store, "sqlite::memory:", NULL, &error));
   assert_false(flora_store_command(store, empty, &reply, &error));
   assert_int_equal(error.code, FLORA_STORE_FAILED_TO_PARSE);
   assert_true(bson_iter_init_find(&it, &reply, "ok") && BSON_ITER_HOLDS_DOUBLE(&it));
   assert_true(bson_iter_double(&it) == 0.0);
   bson_destroy(&reply);
   assert_false(flora_store_command(store, bad_db, &reply, &error));
   assert_int_equal(error.code, 73);
   bson_destroy(&reply);
   assert_false(flora_store_command(store, bad_coll, NULL, &error));
   assert_int_equal(error.code, 73);
   assert_true(bson_iter_init_find(&it, bad_coll, "find"));
   bson_destroy(empty);
   bson_destroy(bad_db);
   bson_destroy(bad_coll);
   flora_store_close(store);
}

static void
test_code_names(void **state)
{
   (void) state;
   assert_string_equal(flora_store_code_name(11000), "DuplicateKey");
   assert_string_equal(flora_store_code_name(2), "BadValue");
   assert_string_equal(flora_store_code_name(121), "DocumentValidationFailure");
   assert_string_equal(flora_store_code_name(59), "CommandNotFound");
   assert_string_equal(flora_store_code_name(51024), "Location51024");
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compare),
      cmocka_unit_test(test_command_scenarios),
      cmocka_unit_test(test_command_errors),
      cmocka_unit_test(test_code_names),
   };

   return cmocka_run_group_tests_name("store command", tests, NULL, NULL);
}
