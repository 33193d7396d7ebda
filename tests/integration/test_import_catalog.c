/* Catalog import into a real store (the embedded engine, migrated): the demo catalog, our
 * CSV and YML fixtures, the Flowwow export when ../shared has it; re-imports, stock kept,
 * dry runs, the default category, and the `flora import catalog` command itself. */
#include "flora_test.h"

#include <unistd.h>

#include "cli.h"
#include "flora/catalog.h"
#include "flora/config.h"
#include "flora/import.h"
#include "flora/migrate.h"
#include "flora/shop.h"
#include "flora/store.h"

static const char *
source_path(const char *relative)
{
   static char path[4][4096];
   static int slot;
   const char *src = getenv("FLORA_SOURCE_DIR");

   slot = (slot + 1) % 4;
   snprintf(path[slot], sizeof path[slot], "%s/%s", src ? src : ".", relative);
   return path[slot];
}

static int
setup(void **state)
{
   flora_store_t *store = NULL;
   flora_error_t error = {0};

   if (!flora_store_open(&store, "sqlite::memory:", NULL, &error)) {
      fail_msg("open: %s", error.message);
   }
   flora_shop_attach_schemas(store);
   if (!flora_migrate_up(store, flora_migrate_list(), NULL, NULL, &error)) {
      fail_msg("migrate: %s", error.message);
   }
   *state = store;
   return 0;
}

static int
teardown(void **state)
{
   flora_store_close(*state);
   return 0;
}

static void
import_ok(flora_store_t *store, const char *path, const flora_import_options_t *options,
          flora_import_report_t *report)
{
   flora_error_t error = {0};

   flora_import_report_init(report);
   if (!flora_import_catalog_file(store, path, options, report, &error)) {
      fail_msg("import %s: %s", path, error.message);
   }
}

static void
print_errors(const flora_import_report_t *report)
{
   char *json = flora_test_str(&report->errors);

   print_message("errors: %s\n", json);
   bson_free(json);
}

static int64_t
count(flora_store_t *store, const char *collection, const char *filter_json)
{
   bson_t *filter = J(filter_json);
   int64_t n = -1;
   flora_error_t error = {0};

   assert_true(flora_store_count_documents(store, collection, filter, NULL, &n, &error));
   bson_destroy(filter);
   return n;
}

static int64_t
variant_stock(flora_store_t *store, const char *variant_sku)
{
   int32_t stock = -1;
   flora_error_t error = {0};

   /* adding 0 reads the stock through the catalog's own path */
   if (!flora_catalog_adjust_stock(store, variant_sku, 0, &stock, &error)) {
      fail_msg("stock of %s: %s", variant_sku, error.message);
   }
   return stock;
}

static void
test_demo_catalog(void **state)
{
   flora_store_t *store = *state;
   flora_import_report_t report;
   bson_t product;
   bool found = false;
   flora_error_t error = {0};
   bson_iter_t it;

   import_ok(store, source_path("demo/catalog.json"), NULL, &report);
   if (report.failed > 0 || bson_count_keys(&report.errors) > 0) {
      print_errors(&report);
   }
   assert_int_equal(report.categories, 9);
   assert_int_equal(report.records, 32);
   assert_int_equal(report.created, 32);
   assert_int_equal(report.failed, 0);
   assert_int_equal(bson_count_keys(&report.errors), 0);
   flora_import_report_cleanup(&report);
   assert_int_equal(count(store, "products", "{}"), 32);
   assert_int_equal(count(store, "categories", "{}"), 9);

   /* the derived fields are the catalog's */
   assert_true(flora_catalog_get_product(store, "krasnye-rozy-ekvador", &product, &found, &error));
   assert_true(found);
   assert_true(bson_iter_init_find(&it, &product, "price"));
   assert_int_equal(bson_iter_as_int64(&it), 549000);
   assert_true(bson_iter_init_find(&it, &product, "categoryTree"));
   {
      bson_iter_t tree;
      int n = 0;

      assert_true(bson_iter_recurse(&it, &tree));
      while (bson_iter_next(&tree)) {
         n++;
      }
      assert_int_equal(n, 2); /* rozy and its parent bukety */
   }
   bson_destroy(&product);

   /* the same file again: nothing changes */
   import_ok(store, source_path("demo/catalog.json"), NULL, &report);
   assert_int_equal(report.records, 32);
   assert_int_equal(report.created, 0);
   assert_int_equal(report.updated, 0);
   assert_int_equal(report.unchanged, 32);
   assert_int_equal(report.categories, 9);
   flora_import_report_cleanup(&report);
   assert_int_equal(count(store, "products", "{}"), 32);
}

static void
test_csv_fixture_and_stock(void **state)
{
   flora_store_t *store = *state;
   flora_import_options_t options = FLORA_IMPORT_OPTIONS_INIT;
   flora_import_report_t report;
   bson_iter_t it, item;
   int32_t stock = 0;
   flora_error_t error = {0};
   char sumerki_sku[64] = "";
   bson_t doc;
   bool found = false;
   bson_t *filter = J("{'name': 'Букет «Сумерки»'}");

   options.default_stock = 7;
   import_ok(store, source_path("tests/data/import/bad_rows.csv"), &options, &report);
   assert_int_equal(report.records, 11);
   assert_int_equal(report.created, 3);
   assert_int_equal(report.failed, 8);
   assert_int_equal(bson_count_keys(&report.errors), 8);
   /* each error names its line and reason */
   assert_true(bson_iter_init(&it, &report.errors) && bson_iter_next(&it) &&
               bson_iter_recurse(&it, &item) && bson_iter_find(&item, "ref"));
   assert_string_equal(bson_iter_utf8(&item, NULL), "line 3");
   flora_import_report_cleanup(&report);

   assert_true(flora_store_find_one(store, "products", filter, NULL, &doc, &found, &error));
   assert_true(found);
   assert_true(bson_iter_init_find(&it, &doc, "sku"));
   snprintf(sumerki_sku, sizeof sumerki_sku, "%s", bson_iter_utf8(&it, NULL));
   bson_destroy(&doc);
   bson_destroy(filter);

   /* a new variant without a stock column gets the default stock ... */
   assert_int_equal(variant_stock(store, sumerki_sku), 7);
   /* ... and a sale is not undone by a re-import that gives no stock */
   assert_true(flora_catalog_adjust_stock(store, sumerki_sku, -3, &stock, &error));
   assert_int_equal(stock, 4);
   import_ok(store, source_path("tests/data/import/bad_rows.csv"), &options, &report);
   assert_int_equal(report.created, 0);
   assert_int_equal(report.unchanged, 3);
   assert_int_equal(report.failed, 8);
   flora_import_report_cleanup(&report);
   assert_int_equal(variant_stock(store, sumerki_sku), 4);
}

static void
test_yml_fixture(void **state)
{
   flora_store_t *store = *state;
   flora_import_report_t report;

   import_ok(store, source_path("tests/data/import/shop.yml"), NULL, &report);
   assert_int_equal(report.categories, 5);
   assert_int_equal(report.records, 9);
   assert_int_equal(report.created, 3);
   assert_int_equal(report.failed, 6);
   /* 6 offers and 4 categories */
   assert_int_equal(bson_count_keys(&report.errors), 10);
   flora_import_report_cleanup(&report);
   assert_int_equal(count(store, "categories", "{'slug': 'rozy-20'}"), 1);
   assert_int_equal(count(store, "products", "{'sku': '1001', 'variants.0.stock': 4}"), 1);
   assert_int_equal(count(store, "products", "{'sku': '1006', 'inStock': false}"), 1);
   /* the offer in "Розы" is under "Букеты" too */
   assert_int_equal(count(store, "products", "{'sku': '1001', 'categoryTree': {'$size': 2}}"), 1);

   import_ok(store, source_path("tests/data/import/shop.yml"), NULL, &report);
   assert_int_equal(report.created, 0);
   assert_int_equal(report.unchanged, 3);
   flora_import_report_cleanup(&report);
}

static void
test_dry_run_and_default_category(void **state)
{
   flora_store_t *store = *state;
   flora_import_options_t options = FLORA_IMPORT_OPTIONS_INIT;
   flora_import_report_t report;
   flora_error_t error = {0};

   options.dry_run = true;
   import_ok(store, source_path("demo/catalog.json"), &options, &report);
   assert_int_equal(report.records, 32);
   assert_int_equal(report.created, 32);
   flora_import_report_cleanup(&report);
   assert_int_equal(count(store, "products", "{}"), 0);
   assert_int_equal(count(store, "categories", "{}"), 0);

   /* a default category that does not exist fails the import before anything is read */
   options.dry_run = false;
   options.default_category = "no-such-category";
   flora_import_report_init(&report);
   assert_false(flora_import_catalog_file(store, source_path("tests/data/import/bad_rows.csv"),
                                          &options, &report, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_SHOP);
   assert_int_equal(error.code, FLORA_ERR_NOT_FOUND);
   flora_import_report_cleanup(&report);

   /* a file that cannot be read fails the call */
   options.default_category = NULL;
   flora_import_report_init(&report);
   assert_false(flora_import_catalog_file(store, source_path("tests/data/import/wrong_header.csv"),
                                          &options, &report, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
   flora_import_report_cleanup(&report);
}

static void
test_flowwow(void **state)
{
   flora_store_t *store = *state;
   flora_import_options_t options = FLORA_IMPORT_OPTIONS_INIT;
   flora_import_report_t report;
   flora_error_t error = {0};
   const char *shared = flora_test_shared_dir();
   char path[4096];
   bson_t *category = J("{'slug': 'flowwow', 'name': 'Flowwow'}");

   if (!shared) {
      bson_destroy(category);
      flora_skip("FLORA_SHARED_DIR with catalog/flowwow/catalog.csv is not available");
   }
   snprintf(path, sizeof path, "%s/catalog/flowwow/catalog.csv", shared);
   assert_true(flora_catalog_upsert_category(store, category, NULL, NULL, &error));
   bson_destroy(category);
   options.default_category = "flowwow";
   import_ok(store, path, &options, &report);
   if (report.failed) {
      print_errors(&report);
   }
   assert_int_equal(report.records, 128);
   assert_int_equal(report.created, 128);
   assert_int_equal(report.failed, 0);
   flora_import_report_cleanup(&report);
   assert_int_equal(count(store, "products", "{}"), 128);
   assert_int_equal(count(store, "products", "{'compareAtPrice': {'$ne': null}}"), 18);
   assert_int_equal(count(store, "products", "{'variants.0.stock': 10}"), 128);
   /* slugs of repeated names got suffixes from the catalog */
   assert_int_equal(count(store, "products", "{'name': 'Цветы в коробке'}"), 4);

   import_ok(store, path, &options, &report);
   assert_int_equal(report.unchanged, 128);
   assert_int_equal(report.created + report.updated, 0);
   flora_import_report_cleanup(&report);
   assert_int_equal(count(store, "products", "{}"), 128);
}

/* `flora import catalog` as the program runs it, on a store file of its own. */
static void
test_command(void **state)
{
   char db[] = "/tmp/flora-import-test-XXXXXX";
   char uri[128];
   flora_config_t *config = NULL;
   flora_error_t error = {0};
   int fd = mkstemp(db);
   char *demo = strdup(source_path("demo/catalog.json"));
   char *bad = strdup(source_path("tests/data/import/bad_rows.csv"));

   (void) state;
   assert_true(fd >= 0);
   close(fd);
   unlink(db);
   snprintf(uri, sizeof uri, "sqlite:%s", db);
   setenv("FLORA_STORE_URI", uri, 1);
   assert_true(flora_config_load(&config, NULL, &error));
   {
      char *ok_args[] = {"import", "catalog", demo, NULL};
      char *dry_args[] = {"import", "catalog", bad, "--dry-run", "--stock", "3", "--format", "csv", NULL};
      char *map_args[] = {"import", "catalog", bad, "--map", "name=name", NULL};
      char *missing[] = {"import", "catalog", "/nonexistent/catalog.json", NULL};
      char *no_file[] = {"import", "catalog", NULL};
      char *bad_format[] = {"import", "catalog", demo, "--format", "xls", NULL};
      char *bad_stock[] = {"import", "catalog", demo, "--stock", "-1", NULL};
      char *bad_option[] = {"import", "catalog", demo, "--frobnicate", NULL};
      char *not_catalog[] = {"import", "orders", demo, NULL};

      assert_int_equal(flora_cmd_import(config, 3, ok_args), 0);
      assert_int_equal(flora_cmd_import(config, 8, dry_args), 0);
      assert_int_equal(flora_cmd_import(config, 5, map_args), 0);
      assert_int_equal(flora_cmd_import(config, 3, missing), 1);
      assert_int_equal(flora_cmd_import(config, 2, no_file), 2);
      assert_int_equal(flora_cmd_import(config, 5, bad_format), 2);
      assert_int_equal(flora_cmd_import(config, 5, bad_stock), 2);
      assert_int_equal(flora_cmd_import(config, 4, bad_option), 2);
      assert_int_equal(flora_cmd_import(config, 3, not_catalog), 2);
   }
   flora_config_destroy(config);
   unsetenv("FLORA_STORE_URI");
   free(demo);
   free(bad);
   for (const char *suffix = ""; suffix; suffix = strcmp(suffix, "") == 0 ? "-wal" : strcmp(suffix, "-wal") == 0 ? "-shm" : NULL) {
      char f[160];

      snprintf(f, sizeof f, "%s%s", db, suffix);
      unlink(f);
   }
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_demo_catalog, setup, teardown),
      cmocka_unit_test_setup_teardown(test_csv_fixture_and_stock, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yml_fixture, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dry_run_and_default_category, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flowwow, setup, teardown),
      cmocka_unit_test(test_command),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
