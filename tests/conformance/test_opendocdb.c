/* The OpenDocDB compatibility suite on the embedded engine (DESIGN.md section 2): every case
 * passes, except those of the suites below, which exercise operators outside what
 * include/flora/query.h claims and must then be refused as unsupported (never answered
 * differently). Needs ../shared/conformance/opendocdb-cts (FLORA_SHARED_DIR). */
#include "flora_test.h"

#include "flora/conformance.h"

/* Suites (path prefixes) whose cases may be UNSUPPORTED, and why. */
static const struct {
   const char *prefix;
   const char *why;
} allowed_unsupported[] = {
   {"query/geospatial/", "geospatial operators and 2dsphere indexes"},
   {"query/bitwise/", "$bitsAllClear, $bitsAllSet, $bitsAnyClear, $bitsAnySet"},
   {"update/bitwise/", "$bit"},
   {"query/evaluation/where.json", "$where (JavaScript)"},
   {"query/evaluation/expr.json", "$expr"},
   {"query/evaluation/jsonSchema.json", "$jsonSchema in queries"},
   {"aggregation/stages/bucket.json", "$bucket"},
   {"aggregation/stages/out.json", "$out"},
   {"aggregation/stages/currentOp.json", "$currentOp (collection-less aggregate)"},
   {"aggregation/stages/lookup.json", "$lookup with a pipeline"},
};

typedef struct tally {
   int failures;
   int stray_unsupported;
} tally_t;

static bool
allowed(const char *path)
{
   for (size_t i = 0; i < sizeof allowed_unsupported / sizeof allowed_unsupported[0]; i++) {
      if (strncmp(path, allowed_unsupported[i].prefix, strlen(allowed_unsupported[i].prefix)) ==
          0) {
         return true;
      }
   }
   return false;
}

static void
report(void *ctx, flora_conformance_outcome_t outcome, const char *path, const char *name,
       const char *detail)
{
   tally_t *t = ctx;

   switch (outcome) {
   case FLORA_CONFORMANCE_PASS:
      break;
   case FLORA_CONFORMANCE_FAIL:
      t->failures++;
      print_message("FAIL %s %s: %s\n", path, name, detail);
      break;
   case FLORA_CONFORMANCE_UNSUPPORTED:
      if (!allowed(path)) {
         t->stray_unsupported++;
         print_message("UNSUPPORTED (not allowed) %s %s: %s\n", path, name, detail);
      }
      break;
   }
}

static void
test_opendocdb_embedded(void **state)
{
   const char *shared = flora_test_shared_dir();
   char dir[4096];
   flora_conformance_totals_t totals;
   flora_error_t error = {0};
   tally_t t = {0, 0};

   (void) state;
   if (!shared) {
      flora_skip("FLORA_SHARED_DIR is not set or ../shared is absent");
   }
   snprintf(dir, sizeof dir, "%s/conformance/opendocdb-cts", shared);
   if (!flora_conformance_run(dir, "sqlite::memory:", report, &t, &totals, &error)) {
      fail_msg("conformance run: %s", error.message);
   }
   print_message("%zu passed, %zu failed, %zu unsupported\n", totals.passed, totals.failed,
                 totals.unsupported);
   assert_true(totals.passed > 0);
   assert_int_equal(totals.failed, 0);
   assert_int_equal(t.failures, 0);
   assert_int_equal(t.stray_unsupported, 0);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_opendocdb_embedded),
   };

   return cmocka_run_group_tests_name("opendocdb conformance", tests, NULL, NULL);
}
