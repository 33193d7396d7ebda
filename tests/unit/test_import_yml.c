/* Yandex Market YML import (lib/import/import_yml.c) on our own fixtures: categories with
 * parents (and broken ones), offers good and bad, HTML descriptions, encodings, XXE. */
#include "flora_test.h"

#include "flora/import.h"
#include "import/import_private.h"

#define MAX_RECORDS 64

typedef struct item {
   char ref[64];
   bson_t *input; /* NULL for an error */
   char error[512];
} item_t;

typedef struct seen {
   item_t categories[MAX_RECORDS];
   size_t n_categories;
   item_t products[MAX_RECORDS];
   size_t n_products;
} seen_t;

static void
keep(item_t *it, const char *ref, const bson_t *input, const flora_error_t *record_error)
{
   snprintf(it->ref, sizeof it->ref, "%s", ref);
   it->input = input ? bson_copy(input) : NULL;
   snprintf(it->error, sizeof it->error, "%s", record_error ? record_error->message : "");
}

static bool
on_category(void *ctx, const char *ref, const bson_t *input, const flora_error_t *record_error)
{
   seen_t *s = ctx;

   assert_true(s->n_categories < MAX_RECORDS);
   keep(&s->categories[s->n_categories++], ref, input, record_error);
   return true;
}

static bool
on_product(void *ctx, const char *ref, const bson_t *input, const flora_error_t *record_error)
{
   seen_t *s = ctx;

   assert_true(s->n_products < MAX_RECORDS);
   keep(&s->products[s->n_products++], ref, input, record_error);
   return true;
}

static void
seen_free(seen_t *s)
{
   for (size_t i = 0; i < s->n_categories; i++) {
      if (s->categories[i].input) {
         bson_destroy(s->categories[i].input);
      }
   }
   for (size_t i = 0; i < s->n_products; i++) {
      if (s->products[i].input) {
         bson_destroy(s->products[i].input);
      }
   }
   free(s);
}

static const char *
fixture(const char *name)
{
   static char path[4096];
   const char *src = getenv("FLORA_SOURCE_DIR");

   snprintf(path, sizeof path, "%s/tests/data/import/%s", src ? src : ".", name);
   return path;
}

static seen_t *
parse(const char *name, bool *ok, flora_error_t *error)
{
   seen_t *s = calloc(1, sizeof *s);
   flora_import_options_t options = FLORA_IMPORT_OPTIONS_INIT;
   flora__import_handler_t handler = {on_category, on_product, s};

   *ok = flora__import_yml(fixture(name), &options, &handler, error);
   return s;
}

/* Compares a record's input with the expected JSON (single quotes), whole. */
static void
expect_input(const item_t *it, const char *ref, const char *json)
{
   bson_t *want = J(json);

   assert_string_equal(it->ref, ref);
   if (!it->input) {
      fail_msg("%s failed: %s", ref, it->error);
   }
   assert_bson_equal(it->input, want);
   bson_destroy(want);
}

static void
expect_error(const item_t *it, const char *ref, const char *reason)
{
   assert_string_equal(it->ref, ref);
   assert_null(it->input);
   if (!strstr(it->error, reason)) {
      fail_msg("%s: reason \"%s\" lacks \"%s\"", ref, it->error, reason);
   }
}

static void
test_categories(void **state)
{
   flora_error_t error = {0};
   bool ok;
   seen_t *s = parse("shop.yml", &ok, &error);

   (void) state;
   if (!ok) {
      fail_msg("%s", error.message);
   }
   assert_int_equal(s->n_categories, 9);
   /* problems found while reading come first, then parents before children */
   expect_error(&s->categories[0], "category 30", "parentId 99 is not a category of the feed");
   expect_input(&s->categories[1], "category 1", "{'slug': 'bukety', 'name': 'Букеты', 'sortOrder': 1}");
   expect_input(&s->categories[2], "category 11",
                "{'slug': 'tiulpany', 'name': 'Тюльпаны', 'parentSlug': 'bukety', 'sortOrder': 2}");
   expect_input(&s->categories[3], "category 2", "{'slug': 'podarki', 'name': 'Подарки', 'sortOrder': 3}");
   /* a second "Розы" gets the id in its slug */
   expect_input(&s->categories[4], "category 20",
                "{'slug': 'rozy-20', 'name': 'Розы', 'parentSlug': 'podarki', 'sortOrder': 4}");
   expect_error(&s->categories[5], "category 50", "its parent category 30 was not imported");
   /* listed before its parent in the feed, handed over after it */
   expect_input(&s->categories[6], "category 10",
                "{'slug': 'rozy', 'name': 'Розы', 'parentSlug': 'bukety', 'sortOrder': 0}");
   expect_error(&s->categories[7], "category 40", "cycle");
   expect_error(&s->categories[8], "category 41", "cycle");
   seen_free(s);
}

static void
test_offers(void **state)
{
   flora_error_t error = {0};
   bool ok;
   seen_t *s = parse("shop.yml", &ok, &error);

   (void) state;
   assert_true(ok);
   assert_int_equal(s->n_products, 9);
   expect_input(&s->products[0], "offer 1001",
                "{'sku': '1001', 'name': 'Букет «Июнь» из 15 пионов',"
                " 'description': 'Пышные пионы к дню рождения.\\n\\nДоставка за 2 часа.\\nОткрытка в подарок.',"
                " 'categorySlugs': ['rozy'],"
                " 'variants': [{'sku': 'JUNE-15', 'name': 'Стандарт', 'price': {'$numberLong': '749000'},"
                "   'compareAtPrice': {'$numberLong': '899000'}, 'stock': 4,"
                "   'composition': [{'flower': 'Пион', 'stems': 15}, {'flower': 'Эвкалипт', 'stems': 3}],"
                "   'heightCm': 50, 'widthCm': 35}],"
                " 'currency': 'RUB',"
                " 'images': [{'url': 'https://images.example.com/june-1.jpg', 'kind': 'image'},"
                "   {'url': 'https://images.example.com/june-2.jpg', 'kind': 'image'},"
                "   {'url': 'https://images.example.com/june.mp4', 'kind': 'video'}],"
                " 'tags': ['birthday'], 'source': {'format': 'yml', 'ref': 'offer 1001'}}");
   /* oldprice below the price is dropped; an invalid vendorCode leaves the offer id */
   expect_input(&s->products[1], "offer 1002",
                "{'sku': '1002', 'name': 'Тюльпаны микс', 'description': 'Весенние тюльпаны к 8 марта',"
                " 'categorySlugs': ['tiulpany'],"
                " 'variants': [{'sku': '1002', 'name': 'Стандарт', 'price': {'$numberLong': '199000'},"
                "   'compareAtPrice': null,"
                "   'composition': [{'flower': 'Тюльпан', 'stems': 25}, {'flower': 'Лента', 'stems': 1}],"
                "   'heightCm': null, 'widthCm': null}],"
                " 'currency': 'RUB',"
                " 'images': [{'url': 'https://images.example.com/tulips.jpg', 'kind': 'image'}],"
                " 'tags': ['march_8'], 'source': {'format': 'yml', 'ref': 'offer 1002'}}");
   expect_error(&s->products[2], "offer 1003", "price is not a number");
   expect_error(&s->products[3], "offer 1004", "no <price>");
   expect_error(&s->products[4], "offer 1005", "categoryId 777 is not a category of the feed");
   /* vendor.model offer, USD, not available: stock 0 */
   expect_input(&s->products[5], "offer 1006",
                "{'sku': '1006', 'name': 'Ваза Стекло Классика 30', 'description': '',"
                " 'categorySlugs': ['rozy-20'],"
                " 'variants': [{'sku': '1006', 'name': 'Стандарт', 'price': {'$numberLong': '120050'},"
                "   'compareAtPrice': null, 'stock': 0, 'composition': [], 'heightCm': null,"
                "   'widthCm': null}],"
                " 'currency': 'USD', 'images': [], 'tags': [],"
                " 'source': {'format': 'yml', 'ref': 'offer 1006'}}");
   expect_error(&s->products[6], "offer #7", "no id attribute");
   expect_error(&s->products[7], "offer 1008", "category 30 was not imported");
   expect_error(&s->products[8], "offer 1009", "currency JPY is not supported");
   seen_free(s);
}

/* External entities are neither read nor fetched (XXE): no file content leaks in. */
static void
test_xxe(void **state)
{
   flora_error_t error = {0};
   bool ok;
   seen_t *s = parse("xxe.yml", &ok, &error);

   (void) state;
   if (!ok) {
      /* refusing the whole file is also safe */
      assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
      seen_free(s);
      return;
   }
   assert_int_equal(s->n_products, 1);
   if (s->products[0].input) {
      char *json = flora_test_str(s->products[0].input);

      assert_null(strstr(json, "root:"));
      assert_null(strstr(json, "/bin/"));
      bson_free(json);
   }
   seen_free(s);
}

static void
test_file_errors(void **state)
{
   flora_error_t error = {0};
   bool ok;
   seen_t *s;

   (void) state;
   s = parse("not_yml.xml", &ok, &error);
   assert_false(ok);
   assert_non_null(strstr(error.message, "not a YML feed"));
   assert_int_equal(s->n_products, 0);
   seen_free(s);

   s = parse("malformed.yml", &ok, &error);
   assert_false(ok);
   assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
   /* the first error, where the damage is, not the last one at the end of the file */
   assert_non_null(strstr(error.message, "line 3: Opening and ending tag mismatch"));
   seen_free(s);

   s = parse("no_such.yml", &ok, &error);
   assert_false(ok);
   assert_int_equal(error.domain, FLORA_DOMAIN_IO);
   seen_free(s);
}

/* The declared encoding is honoured (Russian feeds are often windows-1251). */
static void
test_windows_1251(void **state)
{
   flora_error_t error = {0};
   bool ok;
   seen_t *s = parse("cp1251.yml", &ok, &error);
   bson_iter_t it;

   (void) state;
   if (!ok) {
      fail_msg("%s", error.message);
   }
   assert_int_equal(s->n_products, 1);
   assert_non_null(s->products[0].input);
   assert_true(bson_iter_init_find(&it, s->products[0].input, "name"));
   assert_string_equal(bson_iter_utf8(&it, NULL), "Роза");
   seen_free(s);
}

/* The public entry point detects YML by extension and by content. */
static void
count_products(void *ctx, const char *ref, const bson_t *input, const flora_error_t *record_error)
{
   (void) ref;
   (void) input;
   (void) record_error;
   (*(int *) ctx)++;
}

static void
test_detection(void **state)
{
   flora_error_t error = {0};
   flora_import_format_t format = FLORA_IMPORT_AUTO;
   int n = 0;

   (void) state;
   assert_true(flora__import_detect_format(fixture("shop.yml"), &format, &error));
   assert_int_equal(format, FLORA_IMPORT_YML);
   assert_true(flora__import_detect_format(fixture("bad_rows.csv"), &format, &error));
   assert_int_equal(format, FLORA_IMPORT_CSV);
   assert_true(flora_import_parse_file(fixture("shop.yml"), NULL, count_products, &n, &error));
   assert_int_equal(n, 9);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_categories),  cmocka_unit_test(test_offers),
      cmocka_unit_test(test_xxe),         cmocka_unit_test(test_file_errors),
      cmocka_unit_test(test_windows_1251), cmocka_unit_test(test_detection),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
