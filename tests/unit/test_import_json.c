/* Flora JSON catalog import (lib/import/import_json.c) and the demo catalog the project
 * ships (demo/catalog.json). */
#include "flora_test.h"

#include "flora/import.h"
#include "import/import_private.h"

#define MAX_RECORDS 128

typedef struct item {
   char ref[48];
   bson_t *input;
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
source_path(const char *relative)
{
   static char path[4096];
   const char *src = getenv("FLORA_SOURCE_DIR");

   snprintf(path, sizeof path, "%s/%s", src ? src : ".", relative);
   return path;
}

static seen_t *
parse(const char *relative, bool *ok, flora_error_t *error)
{
   seen_t *s = calloc(1, sizeof *s);
   flora__import_handler_t handler = {on_category, on_product, s};

   *ok = flora__import_json(source_path(relative), NULL, &handler, error);
   return s;
}

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
test_small(void **state)
{
   flora_error_t error = {0};
   bool ok;
   seen_t *s = parse("tests/data/import/small.json", &ok, &error);

   (void) state;
   if (!ok) {
      fail_msg("%s", error.message);
   }
   /* parents before children; refs are positions in the file */
   assert_int_equal(s->n_categories, 6);
   expect_error(&s->categories[0], "category 2", "not an object");
   expect_input(&s->categories[1], "category 1", "{'slug': 'spring', 'name': 'Весна', 'sortOrder': 2}");
   /* a parent not in the file may be in the store: handed over as it is */
   expect_input(&s->categories[2], "category 5",
                "{'slug': 'elsewhere', 'name': 'Где-то', 'parentSlug': 'stored-before'}");
   expect_input(&s->categories[3], "category 0",
                "{'slug': 'spring-tulips', 'name': 'Весенние тюльпаны', 'parentSlug': 'spring'}");
   expect_error(&s->categories[4], "category 3", "cycle");
   expect_error(&s->categories[5], "category 4", "cycle");

   assert_int_equal(s->n_products, 3);
   expect_input(&s->products[0], "item 0",
                "{'sku': 'T-1', 'name': 'Тюльпаны «Апрель»', 'categorySlugs': ['spring-tulips'],"
                " 'variants': [{'sku': 'T-1-15', 'name': '15 шт', 'price': 199000, 'stock': 4,"
                "   'composition': [{'flower': 'Тюльпан', 'stems': 15}]}],"
                " 'tags': ['march_8'], 'availableMonths': [3, 4],"
                " 'source': {'format': 'json', 'ref': 'item 0'}}");
   expect_error(&s->products[1], "item 1", "not an object");
   /* Extended JSON is read as such; a given source is kept */
   expect_input(&s->products[2], "item 2",
                "{'sku': 'T-2', 'name': 'Тюльпаны «Май»',"
                " 'variants': [{'sku': 'T-2-25', 'name': '25 шт', 'price': {'$numberLong': '329000'}}],"
                " 'source': {'format': 'api', 'ref': 'admin'}}");
   seen_free(s);
}

static void
test_file_errors(void **state)
{
   static const struct {
      const char *file;
      const char *reason;
   } cases[] = {
      {"tests/data/import/invalid.json", "not valid JSON"},
      {"tests/data/import/unknown_key.json", "unknown top-level key \"product\""},
      {"tests/data/import/products_object.json", "\"products\" must be an array"},
      {"tests/data/import/no_such.json", "No such file"},
   };

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      flora_error_t error = {0};
      bool ok;
      seen_t *s = parse(cases[i].file, &ok, &error);

      assert_false(ok);
      assert_int_equal(s->n_products + s->n_categories, 0);
      if (!strstr(error.message, cases[i].reason)) {
         fail_msg("%s: \"%s\" lacks \"%s\"", cases[i].file, error.message, cases[i].reason);
      }
      seen_free(s);
   }
}

/* ---- the demo catalog ----------------------------------------------------------------- */

static bool
is_tag(const char *s)
{
   bool prev_sep = true;

   for (; *s; s++) {
      if ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')) {
         prev_sep = false;
      } else if (*s == '_' && !prev_sep) {
         prev_sep = true;
      } else {
         return false;
      }
   }
   return !prev_sep;
}

/* Every product of the demo: the fields the catalog requires, money as integers, variant
 * SKUs unique, images on the example domain, known tags. */
static void
check_demo_product(const item_t *it, const seen_t *s, char variant_skus[][64], size_t *n_variant_skus)
{
   bson_iter_t it_, v, f, arr;
   int n_variants = 0;
   bool has_sku = false, has_name = false, has_category = false;

   if (!it->input) {
      fail_msg("%s failed: %s", it->ref, it->error);
   }
   assert_true(bson_iter_init(&it_, it->input));
   while (bson_iter_next(&it_)) {
      const char *key = bson_iter_key(&it_);

      if (strcmp(key, "sku") == 0 || strcmp(key, "name") == 0 || strcmp(key, "slug") == 0 ||
          strcmp(key, "description") == 0) {
         assert_true(BSON_ITER_HOLDS_UTF8(&it_));
         assert_true(strlen(bson_iter_utf8(&it_, NULL)) > 0);
         has_sku = has_sku || strcmp(key, "sku") == 0;
         has_name = has_name || strcmp(key, "name") == 0;
      } else if (strcmp(key, "categorySlugs") == 0) {
         bool known = false;

         assert_true(bson_iter_recurse(&it_, &arr) && bson_iter_next(&arr));
         for (size_t c = 0; c < s->n_categories; c++) {
            bson_iter_t slug;

            known = known || (bson_iter_init_find(&slug, s->categories[c].input, "slug") &&
                              strcmp(bson_iter_utf8(&slug, NULL), bson_iter_utf8(&arr, NULL)) == 0);
         }
         if (!known) {
            fail_msg("%s: unknown category %s", it->ref, bson_iter_utf8(&arr, NULL));
         }
         has_category = true;
      } else if (strcmp(key, "variants") == 0) {
         assert_true(bson_iter_recurse(&it_, &arr));
         while (bson_iter_next(&arr)) {
            int64_t price = -1;

            n_variants++;
            assert_true(bson_iter_recurse(&arr, &v));
            while (bson_iter_next(&v)) {
               const char *vk = bson_iter_key(&v);

               if (strcmp(vk, "price") == 0 || strcmp(vk, "compareAtPrice") == 0) {
                  assert_true(BSON_ITER_HOLDS_INT32(&v) || BSON_ITER_HOLDS_INT64(&v));
                  if (strcmp(vk, "price") == 0) {
                     price = bson_iter_as_int64(&v);
                  } else {
                     assert_true(bson_iter_as_int64(&v) > price);
                  }
               } else if (strcmp(vk, "sku") == 0) {
                  for (size_t k = 0; k < *n_variant_skus; k++) {
                     assert_string_not_equal(variant_skus[k], bson_iter_utf8(&v, NULL));
                  }
                  assert_true(*n_variant_skus < 128);
                  snprintf(variant_skus[(*n_variant_skus)++], 64, "%s", bson_iter_utf8(&v, NULL));
               } else if (strcmp(vk, "stock") == 0 || strcmp(vk, "heightCm") == 0 ||
                          strcmp(vk, "widthCm") == 0) {
                  assert_true(BSON_ITER_HOLDS_INT32(&v) && bson_iter_int32(&v) >= 0);
               } else if (strcmp(vk, "composition") == 0) {
                  assert_true(BSON_ITER_HOLDS_ARRAY(&v) && bson_iter_recurse(&v, &f));
                  while (bson_iter_next(&f)) {
                     bson_iter_t stem;

                     assert_true(bson_iter_recurse(&f, &stem) && bson_iter_find(&stem, "flower"));
                     assert_true(bson_iter_recurse(&f, &stem) && bson_iter_find(&stem, "stems") &&
                                 bson_iter_int32(&stem) >= 1);
                  }
               } else {
                  assert_string_equal(vk, "name");
               }
            }
            assert_true(price > 0);
         }
      } else if (strcmp(key, "images") == 0) {
         assert_true(bson_iter_recurse(&it_, &arr));
         while (bson_iter_next(&arr)) {
            assert_true(bson_iter_recurse(&arr, &f) && bson_iter_find(&f, "url"));
            assert_int_equal(strncmp(bson_iter_utf8(&f, NULL), "https://images.example.com/", 27), 0);
         }
      } else if (strcmp(key, "tags") == 0) {
         assert_true(bson_iter_recurse(&it_, &arr));
         while (bson_iter_next(&arr)) {
            assert_true(is_tag(bson_iter_utf8(&arr, NULL)));
         }
      } else if (strcmp(key, "availableMonths") == 0) {
         assert_true(bson_iter_recurse(&it_, &arr));
         while (bson_iter_next(&arr)) {
            assert_true(bson_iter_int32(&arr) >= 1 && bson_iter_int32(&arr) <= 12);
         }
      } else if (strcmp(key, "currency") == 0) {
         assert_string_equal(bson_iter_utf8(&it_, NULL), "RUB");
      } else if (strcmp(key, "source") != 0) {
         fail_msg("%s: unexpected field %s", it->ref, key);
      }
   }
   assert_true(has_sku && has_name && has_category);
   assert_true(n_variants >= 1);
}

static void
test_demo_catalog(void **state)
{
   flora_error_t error = {0};
   bool ok;
   seen_t *s = parse("demo/catalog.json", &ok, &error);
   char (*variant_skus)[64] = calloc(128, 64);
   size_t n_variant_skus = 0;
   size_t seasonal = 0;

   (void) state;
   if (!ok) {
      fail_msg("%s", error.message);
   }
   assert_int_equal(s->n_categories, 9);
   for (size_t i = 0; i < s->n_categories; i++) {
      bson_iter_t it;

      if (!s->categories[i].input) {
         fail_msg("%s failed: %s", s->categories[i].ref, s->categories[i].error);
      }
      /* a parent is always handed over before its children */
      if (bson_iter_init_find(&it, s->categories[i].input, "parentSlug")) {
         bool before = false;

         for (size_t j = 0; j < i; j++) {
            bson_iter_t slug;

            before = before || (bson_iter_init_find(&slug, s->categories[j].input, "slug") &&
                                strcmp(bson_iter_utf8(&slug, NULL), bson_iter_utf8(&it, NULL)) == 0);
         }
         assert_true(before);
      }
   }
   assert_true(s->n_products >= 30);
   for (size_t i = 0; i < s->n_products; i++) {
      bson_iter_t it;

      check_demo_product(&s->products[i], s, variant_skus, &n_variant_skus);
      seasonal += bson_iter_init_find(&it, s->products[i].input, "availableMonths");
   }
   assert_true(seasonal > 0);
   assert_true(n_variant_skus > s->n_products); /* some products come in several sizes */
   free(variant_skus);
   seen_free(s);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_small),
      cmocka_unit_test(test_file_errors),
      cmocka_unit_test(test_demo_catalog),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
