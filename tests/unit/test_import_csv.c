/* CSV catalog import (lib/import/import_csv.c, import_fields.c): the Flowwow export read
 * with the built-in mapping, our own fixtures for bad rows, and the field converters. */
#include "flora_test.h"

#include "flora/import.h"
#include "import/import_private.h"

/* ---- collecting records ------------------------------------------------------------- */

#define MAX_RECORDS 512

typedef struct records {
   size_t n;
   char ref[MAX_RECORDS][32];
   bson_t *input[MAX_RECORDS]; /* NULL for an error */
   char error[MAX_RECORDS][512];
} records_t;

static void
collect(void *ctx, const char *ref, const bson_t *input, const flora_error_t *record_error)
{
   records_t *r = ctx;

   assert_true(r->n < MAX_RECORDS);
   snprintf(r->ref[r->n], sizeof r->ref[r->n], "%s", ref);
   r->input[r->n] = input ? bson_copy(input) : NULL;
   snprintf(r->error[r->n], sizeof r->error[r->n], "%s", record_error ? record_error->message : "");
   if (input) {
      assert_null(record_error);
   } else {
      assert_non_null(record_error);
   }
   r->n++;
}

static records_t *
parse(const char *path, const char *const *mapping, flora_error_t *error, bool *ok)
{
   records_t *r = calloc(1, sizeof *r);
   flora_import_options_t options = FLORA_IMPORT_OPTIONS_INIT;

   options.mapping = mapping;
   *ok = flora_import_parse_file(path, &options, collect, r, error);
   return r;
}

static void
records_free(records_t *r)
{
   for (size_t i = 0; r && i < r->n; i++) {
      if (r->input[i]) {
         bson_destroy(r->input[i]);
      }
   }
   free(r);
}

static const char *
fixture(const char *name)
{
   static char path[4096];
   const char *src = getenv("FLORA_SOURCE_DIR");

   snprintf(path, sizeof path, "%s/tests/data/import/%s", src ? src : ".", name);
   return path;
}

/* The record with this ref, or fails. */
static size_t
find_ref(const records_t *r, const char *ref)
{
   for (size_t i = 0; i < r->n; i++) {
      if (strcmp(r->ref[i], ref) == 0) {
         return i;
      }
   }
   fail_msg("no record %s", ref);
   return 0;
}

static size_t
find_name(const records_t *r, const char *name, size_t nth)
{
   for (size_t i = 0; i < r->n; i++) {
      bson_iter_t it;

      if (r->input[i] && bson_iter_init_find(&it, r->input[i], "name") &&
          strcmp(bson_iter_utf8(&it, NULL), name) == 0 && nth-- == 0) {
         return i;
      }
   }
   fail_msg("no record named %s", name);
   return 0;
}

static const char *
str_at(const bson_t *doc, const char *dotted)
{
   bson_iter_t it, found;

   if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, dotted, &found) ||
       !BSON_ITER_HOLDS_UTF8(&found)) {
      fail_msg("%s is not a string", dotted);
   }
   return bson_iter_utf8(&found, NULL);
}

static int64_t
int_at(const bson_t *doc, const char *dotted)
{
   bson_iter_t it, found;

   if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, dotted, &found)) {
      fail_msg("%s is missing", dotted);
   }
   if (BSON_ITER_HOLDS_INT32(&found)) {
      return bson_iter_int32(&found);
   }
   if (BSON_ITER_HOLDS_INT64(&found)) {
      return bson_iter_int64(&found);
   }
   fail_msg("%s is not an integer", dotted);
   return 0;
}

static bool
is_null_at(const bson_t *doc, const char *dotted)
{
   bson_iter_t it, found;

   return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, dotted, &found) &&
          BSON_ITER_HOLDS_NULL(&found);
}

static bool
has_at(const bson_t *doc, const char *dotted)
{
   bson_iter_t it, found;

   return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, dotted, &found);
}

static uint32_t
len_at(const bson_t *doc, const char *dotted)
{
   bson_iter_t it, found, items;
   uint32_t n = 0;

   if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, dotted, &found) ||
       !BSON_ITER_HOLDS_ARRAY(&found) || !bson_iter_recurse(&found, &items)) {
      fail_msg("%s is not an array", dotted);
   }
   while (bson_iter_next(&items)) {
      n++;
   }
   return n;
}

/* ---- the Flowwow export --------------------------------------------------------------- */

static const char *
flowwow_path(void)
{
   static char path[4096];
   const char *shared = flora_test_shared_dir();

   if (!shared) {
      return NULL;
   }
   snprintf(path, sizeof path, "%s/catalog/flowwow/catalog.csv", shared);
   return path;
}

static void
test_flowwow(void **state)
{
   const char *path = flowwow_path();
   flora_error_t error = {0};
   records_t *r;
   size_t discounted = 0, videos = 0, no_height = 0, unstructured = 0, new_year = 0;
   bool ok;
   size_t i;

   (void) state;
   if (!path) {
      flora_skip("FLORA_SHARED_DIR with catalog/flowwow/catalog.csv is not available");
   }
   r = parse(path, NULL, &error, &ok);
   assert_true(ok);
   /* SOURCE.txt: 128 bouquets, all well-formed */
   assert_int_equal(r->n, 128);
   for (i = 0; i < r->n; i++) {
      if (!r->input[i]) {
         fail_msg("%s failed: %s", r->ref[i], r->error[i]);
      }
   }
   /* SKUs are unique; every product has one variant "Стандарт" in RUB */
   for (i = 0; i < r->n; i++) {
      const bson_t *p = r->input[i];

      for (size_t j = 0; j < i; j++) {
         assert_string_not_equal(str_at(p, "sku"), str_at(r->input[j], "sku"));
      }
      assert_int_equal(strncmp(str_at(p, "sku"), "FW-", 3), 0);
      assert_string_equal(str_at(p, "sku"), str_at(p, "variants.0.sku"));
      assert_int_equal(len_at(p, "variants"), 1);
      assert_string_equal(str_at(p, "variants.0.name"), "Стандарт");
      assert_string_equal(str_at(p, "currency"), "RUB");
      assert_string_equal(str_at(p, "source.format"), "csv");
      assert_false(has_at(p, "variants.0.stock")); /* the file has no stock column */
      assert_null(strstr(str_at(p, "description"), "; "));
      discounted += !is_null_at(p, "variants.0.compareAtPrice");
      no_height += is_null_at(p, "variants.0.heightCm");
      for (uint32_t k = 0; k < len_at(p, "images"); k++) {
         char key[32];

         snprintf(key, sizeof key, "images.%u.kind", k);
         videos += strcmp(str_at(p, key), "video") == 0;
      }
      if (len_at(p, "variants.0.composition") == 0 ||
          is_null_at(p, "variants.0.composition.0.stems")) {
         unstructured++;
      }
      for (uint32_t k = 0; k < len_at(p, "tags"); k++) {
         char key[16];

         snprintf(key, sizeof key, "tags.%u", k);
         assert_string_equal(str_at(p, key), "new_year");
         new_year++;
      }
   }
   assert_int_equal(discounted, 18); /* SOURCE.txt: 18 rows have a discount price */
   assert_int_equal(videos, 19);     /* SOURCE.txt: 19 .mp4 videos */
   /* 24 rows say "Нет данных на сайте"; one of them has its size in the composition column */
   assert_int_equal(no_height, 23);
   assert_int_equal(unstructured, 8); /* SOURCE.txt: 8 unstructured compositions */
   assert_int_equal(new_year, 7);     /* the names that say "Новогодн..." */

   /* the first row, field by field */
   i = find_ref(r, "line 2");
   {
      const bson_t *p = r->input[i];

      assert_string_equal(str_at(p, "name"), "Авторский букет с пионовидными Розами и Гортензией");
      assert_int_equal(strlen(str_at(p, "sku")), strlen("FW-") + 10);
      assert_non_null(strstr(str_at(p, "description"),
                             "ажурной Гортензии, пионовидных кустовых Роз, кружевной Эустомы"));
      assert_int_equal(int_at(p, "variants.0.price"), 599000);
      assert_true(is_null_at(p, "variants.0.compareAtPrice"));
      assert_int_equal(len_at(p, "variants.0.composition"), 9);
      assert_string_equal(str_at(p, "variants.0.composition.0.flower"), "Гортензия");
      assert_int_equal(int_at(p, "variants.0.composition.0.stems"), 3);
      assert_string_equal(str_at(p, "variants.0.composition.1.flower"), "Роза кустовая пионовидная");
      assert_int_equal(int_at(p, "variants.0.composition.1.stems"), 5);
      assert_string_equal(str_at(p, "variants.0.composition.8.flower"), "Лента атласная");
      assert_int_equal(int_at(p, "variants.0.composition.8.stems"), 1);
      assert_int_equal(int_at(p, "variants.0.heightCm"), 45);
      assert_int_equal(int_at(p, "variants.0.widthCm"), 30);
      assert_int_equal(len_at(p, "images"), 6);
      assert_string_equal(str_at(p, "images.0.kind"), "image");
      assert_int_equal(strncmp(str_at(p, "images.0.url"), "https://content2.flowwow-images.com/", 36), 0);
      assert_int_equal(len_at(p, "tags"), 0);
      assert_false(has_at(p, "categorySlugs"));
      assert_string_equal(str_at(p, "source.ref"), "line 2");
   }
   /* the discount row */
   i = find_name(r, "Пионовидные кустовые Розы Бомбастик 19 шт", 0);
   assert_int_equal(int_at(r->input[i], "variants.0.price"), 594200);
   assert_int_equal(int_at(r->input[i], "variants.0.compareAtPrice"), 699000);
   assert_string_equal(str_at(r->input[i], "variants.0.composition.0.flower"), "Кустовая пионовидная роза");
   assert_int_equal(int_at(r->input[i], "variants.0.composition.0.stems"), 19);
   /* an unstructured composition is kept as one entry without a count */
   i = find_name(r, "7 Воздушных шариков", 0);
   assert_int_equal(len_at(r->input[i], "variants.0.composition"), 1);
   assert_string_equal(str_at(r->input[i], "variants.0.composition.0.flower"), "Набор шаров");
   assert_true(is_null_at(r->input[i], "variants.0.composition.0.stems"));
   assert_true(is_null_at(r->input[i], "variants.0.heightCm"));
   assert_true(is_null_at(r->input[i], "variants.0.widthCm"));
   /* words glued by the scraper are split at the capitals */
   i = find_name(r, "Новогодняя композиция из Нобилиса со свечей в коробке", 0);
   assert_int_equal(len_at(r->input[i], "variants.0.composition"), 7);
   assert_string_equal(str_at(r->input[i], "variants.0.composition.0.flower"), "Хлопок");
   assert_string_equal(str_at(r->input[i], "variants.0.composition.3.flower"), "Новогодний декор");
   /* a repeated name with other content is another product: "-2", "-3" in file order */
   {
      size_t a = find_name(r, "Цветы в коробке", 0), b = find_name(r, "Цветы в коробке", 1);
      const char *sa = str_at(r->input[a], "sku"), *sb = str_at(r->input[b], "sku");

      assert_int_equal(strncmp(sa, sb, strlen(sa)), 0);
      assert_string_equal(sb + strlen(sa), "-2");
      assert_string_equal(str_at(r->input[find_name(r, "Цветы в коробке", 3)], "sku") + strlen(sa), "-4");
   }
   /* a reading of the same file gives the same SKUs (stable across re-imports) */
   {
      records_t *again = parse(path, NULL, &error, &ok);

      assert_true(ok);
      assert_int_equal(again->n, r->n);
      for (i = 0; i < r->n; i++) {
         assert_bson_equal(again->input[i], r->input[i]);
      }
      records_free(again);
   }
   records_free(r);
}

/* ---- our fixtures ----------------------------------------------------------------------- */

static void
test_bad_rows(void **state)
{
   /* (ref, substring of the reason, or NULL for a good record) */
   static const struct {
      const char *ref;
      const char *reason;
   } expected[] = {
      {"line 2", NULL},
      {"line 3", "price is not a number"},
      {"line 4", "name is empty"},
      {"line 5", "price is negative"},
      {"line 6", "discount price 3000.00 is above the full price 2500.00"},
      {"line 7", NULL}, /* a quoted description over two lines */
      {"line 9", "broken quoting"},
      {"line 10", NULL}, /* parsing resumes after the broken line */
      {"line 11", "has 2 fields, the header has 8"},
      {"line 12", "photo 1 is not an http(s) URL"},
      {"line 13", "stock is not a whole number"},
   };
   flora_error_t error = {0};
   bool ok;
   records_t *r = parse(fixture("bad_rows.csv"), NULL, &error, &ok);
   size_t i;

   (void) state;
   if (!ok) {
      fail_msg("parse failed: %s", error.message);
   }
   assert_int_equal(r->n, sizeof expected / sizeof expected[0]);
   for (i = 0; i < r->n; i++) {
      assert_string_equal(r->ref[i], expected[i].ref);
      if (expected[i].reason) {
         assert_null(r->input[i]);
         if (!strstr(r->error[i], expected[i].reason)) {
            fail_msg("%s: reason \"%s\" lacks \"%s\"", r->ref[i], r->error[i], expected[i].reason);
         }
      } else if (!r->input[i]) {
         fail_msg("%s failed: %s", r->ref[i], r->error[i]);
      }
   }

   /* the good ones, converted */
   {
      const bson_t *p = r->input[0];

      assert_int_equal(int_at(p, "variants.0.price"), 199000);
      assert_true(is_null_at(p, "variants.0.compareAtPrice"));
      assert_int_equal(int_at(p, "variants.0.stock"), 5);
      assert_int_equal(int_at(p, "variants.0.heightCm"), 40);
      assert_int_equal(int_at(p, "variants.0.widthCm"), 25);
      assert_string_equal(str_at(p, "variants.0.composition.0.flower"), "Тюльпан");
      assert_int_equal(int_at(p, "variants.0.composition.0.stems"), 15);
      assert_string_equal(str_at(p, "images.1.kind"), "video");
      assert_string_equal(str_at(p, "tags.0"), "march_8");
      /* not the Flowwow layout: "; " stays as written */
      assert_string_equal(str_at(p, "description"), "Нежный букет к 8 марта; с тюльпанами");
      assert_int_equal(strncmp(str_at(p, "sku"), "CSV-", 4), 0);
   }
   {
      const bson_t *p = r->input[5];

      assert_int_equal(int_at(p, "variants.0.price"), 299000);
      assert_int_equal(int_at(p, "variants.0.compareAtPrice"), 349050);
      assert_string_equal(str_at(p, "description"), "Свадебный букет\nв две строки");
      assert_string_equal(str_at(p, "tags.0"), "wedding");
      assert_int_equal(len_at(p, "variants.0.composition"), 2);
      assert_string_equal(str_at(p, "variants.0.composition.1.flower"), "Гипсофила");
      assert_int_equal(int_at(p, "variants.0.composition.1.stems"), 2);
      assert_true(is_null_at(p, "variants.0.heightCm"));
      assert_false(has_at(p, "variants.0.stock"));
   }
   records_free(r);
}

static void
test_unterminated_quote(void **state)
{
   flora_error_t error = {0};
   bool ok;
   records_t *r = parse(fixture("unterminated.csv"), NULL, &error, &ok);

   (void) state;
   assert_true(ok);
   assert_int_equal(r->n, 2);
   assert_non_null(r->input[0]);
   assert_string_equal(r->ref[1], "line 3");
   assert_null(r->input[1]);
   assert_non_null(strstr(r->error[1], "unterminated quoted field"));
   records_free(r);
}

static void
test_header(void **state)
{
   static const char *const good_map[] = {"title=name", "cost=price", NULL};
   static const char *const unknown_field[] = {"title=name", "cost=cost", NULL};
   static const char *const unknown_column[] = {"titel=name", NULL};
   flora_error_t error = {0};
   bool ok;
   records_t *r;

   (void) state;
   /* no name column: the whole file fails, naming the columns */
   r = parse(fixture("wrong_header.csv"), NULL, &error, &ok);
   assert_false(ok);
   assert_int_equal(r->n, 0);
   assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
   assert_non_null(strstr(error.message, "no name column"));
   assert_non_null(strstr(error.message, "\"title\""));
   records_free(r);

   /* mapped */
   r = parse(fixture("wrong_header.csv"), good_map, &error, &ok);
   assert_true(ok);
   assert_int_equal(r->n, 1);
   assert_int_equal(int_at(r->input[0], "variants.0.price"), 70000);
   records_free(r);

   r = parse(fixture("wrong_header.csv"), unknown_field, &error, &ok);
   assert_false(ok);
   assert_non_null(strstr(error.message, "unknown field \"cost\""));
   records_free(r);

   r = parse(fixture("wrong_header.csv"), unknown_column, &error, &ok);
   assert_false(ok);
   assert_non_null(strstr(error.message, "no column \"titel\""));
   records_free(r);

   /* a missing file */
   r = parse(fixture("no_such_file.csv"), NULL, &error, &ok);
   assert_false(ok);
   assert_int_equal(error.domain, FLORA_DOMAIN_IO);
   assert_int_equal(error.code, FLORA_ERR_NOT_FOUND);
   records_free(r);
}

static void
test_semicolons_bom_crlf(void **state)
{
   flora_error_t error = {0};
   bool ok;
   records_t *r = parse(fixture("semicolon.csv"), NULL, &error, &ok);

   (void) state;
   if (!ok) {
      fail_msg("%s", error.message);
   }
   assert_int_equal(r->n, 2);
   assert_string_equal(str_at(r->input[0], "name"), "Роза «Алая»");
   assert_string_equal(str_at(r->input[0], "sku"), "R-1");
   assert_string_equal(str_at(r->input[0], "categorySlugs.0"), "rozy");
   assert_int_equal(int_at(r->input[0], "variants.0.stock"), 12);
   assert_int_equal(int_at(r->input[0], "variants.0.price"), 15000);
   assert_string_equal(str_at(r->input[0], "tags.0"), "birthday");
   assert_string_equal(str_at(r->input[0], "tags.1"), "valentines_day");
   assert_string_equal(str_at(r->input[1], "categorySlugs.0"), "roses-white");
   assert_false(has_at(r->input[1], "variants.0.stock"));
   assert_int_equal(len_at(r->input[1], "tags"), 0);
   records_free(r);
}

static void
test_default_category(void **state)
{
   flora_import_options_t options = FLORA_IMPORT_OPTIONS_INIT;
   flora_error_t error = {0};
   records_t *r = calloc(1, sizeof *r);

   (void) state;
   options.default_category = "bukety";
   assert_true(flora_import_parse_file(fixture("semicolon.csv"), &options, collect, r, &error));
   /* a record with its own category keeps it */
   assert_string_equal(str_at(r->input[0], "categorySlugs.0"), "rozy");
   records_free(r);

   r = calloc(1, sizeof *r);
   assert_true(flora_import_parse_file(fixture("bad_rows.csv"), &options, collect, r, &error));
   assert_string_equal(str_at(r->input[0], "categorySlugs.0"), "bukety");
   records_free(r);
}

/* ---- converters ------------------------------------------------------------------------- */

static void
test_money(void **state)
{
   static const struct {
      const char *text;
      int64_t kopecks; /* -1: rejected */
      const char *reason;
   } cases[] = {
      {"5990", 599000, NULL},
      {"5 990", 599000, NULL},
      {"5\xc2\xa0" "990", 599000, NULL},     /* no-break space */
      {"5\xe2\x80\xaf" "990", 599000, NULL}, /* narrow no-break space */
      {"5990.50", 599050, NULL},
      {"5990,50", 599050, NULL},
      {"5990,5", 599050, NULL},
      {" 5 990 ₽ ", 599000, NULL},
      {"5990 руб.", 599000, NULL},
      {"0", 0, NULL},
      {"1 000 000", 100000000, NULL},
      {"-5", -1, "negative"},
      {"\xe2\x88\x92" "5", -1, "negative"},
      {"abc", -1, "not a number"},
      {"", -1, "empty"},
      {"5990.505", -1, "more than two decimals"},
      {"1.2.3", -1, "not a number"},
      {"12abc", -1, "not a number"},
      {"5990.", -1, "not a number"},
      {" 990", 99000, NULL},
      {"5  990", -1, "not a number"}, /* two separators */
      {"10000000000", -1, "too large"},
   };

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      int64_t out = -7;
      char reason[200] = "";
      bool ok = flora__import_parse_money(cases[i].text, &out, reason, sizeof reason);

      if (cases[i].kopecks >= 0) {
         if (!ok || out != cases[i].kopecks) {
            fail_msg("\"%s\": got %d %lld (%s), expected %lld", cases[i].text, ok,
                     (long long) out, reason, (long long) cases[i].kopecks);
         }
      } else if (ok || !strstr(reason, cases[i].reason)) {
         fail_msg("\"%s\": expected a failure with \"%s\", got %d \"%s\"", cases[i].text,
                  cases[i].reason, ok, reason);
      }
   }
}

static void
test_composition(void **state)
{
   /* (text, expected composition as JSON) */
   static const struct {
      const char *text;
      const char *json;
   } cases[] = {
      {"Гортензия - 3 шт; Роза кустовая - 5 шт; ",
       "{'c': [{'flower': 'Гортензия', 'stems': 3}, {'flower': 'Роза кустовая', 'stems': 5}]}"},
      {"Тюльпан — 25 шт.", "{'c': [{'flower': 'Тюльпан', 'stems': 25}]}"},
      {"Роза 7 шт, Гипсофила-2шт",
       "{'c': [{'flower': 'Роза', 'stems': 7}, {'flower': 'Гипсофила', 'stems': 2}]}"},
      {"Роза Эквадор 60", "{'c': [{'flower': 'Роза Эквадор 60', 'stems': null}]}"},
      {"Набор шаров", "{'c': [{'flower': 'Набор шаров', 'stems': null}]}"},
      {"СвечаНобилисШишки натуральные",
       "{'c': [{'flower': 'Свеча', 'stems': null}, {'flower': 'Нобилис', 'stems': null}, "
       "{'flower': 'Шишки натуральные', 'stems': null}]}"},
      {"Нет данных на сайте", "{'c': []}"},
      {"Высота - 22 см   Ширина - 18 см", "{'c': []}"},
      {"", "{'c': []}"},
      {"Роза - 0 шт", "{'c': [{'flower': 'Роза', 'stems': null}]}"},
      {"Роза - 99999 шт", "{'c': [{'flower': 'Роза', 'stems': null}]}"},
      {" - 5 шт", "{'c': [{'flower': '- 5 шт', 'stems': null}]}"},
   };

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_t got = BSON_INITIALIZER;
      bson_t *want = J(cases[i].json);

      flora__import_append_composition(&got, "c", cases[i].text);
      if (!bson_equal(&got, want)) {
         char *g = flora_test_str(&got);

         print_error("case %zu \"%s\": got %s\n", i, cases[i].text, g);
         bson_free(g);
         fail();
      }
      bson_destroy(&got);
      bson_destroy(want);
   }
}

static void
test_size_and_tags(void **state)
{
   static const struct {
      const char *text;
      int32_t h, w;
   } sizes[] = {
      {"Высота-45см; Ширина-30см", 45, 30},
      {"Высота - 22 см Ширина - 18 см", 22, 18},
      {"высота: 60 см", 60, 0},
      {"Height 50 cm, width 35 cm", 50, 35},
      {"Нет данных на сайте", 0, 0},
      {"Высота-0см; Ширина-5000см", 0, 0},
   };
   static const struct {
      const char *text;
      const char *json;
   } tags[] = {
      {"Букет на 8 марта", "{'t': ['march_8']}"},
      {"Поставка 18 марта", "{'t': []}"},
      {"Букет невесты", "{'t': ['wedding']}"},
      {"С днём рождения!", "{'t': ['birthday']}"},
      {"Новогодний букет и подарок ко дню матери", "{'t': ['mothers_day', 'new_year']}"},
      {"Розы к 14 февраля", "{'t': ['valentines_day']}"},
      {"Просто розы", "{'t': []}"},
   };

   (void) state;
   for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      int32_t h = -1, w = -1;

      flora__import_parse_size(sizes[i].text, &h, &w);
      if (h != sizes[i].h || w != sizes[i].w) {
         fail_msg("\"%s\": got %d x %d", sizes[i].text, h, w);
      }
   }
   for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
      bson_t got = BSON_INITIALIZER;
      bson_t *want = J(tags[i].json);
      const char *texts[] = {tags[i].text};

      flora__import_append_inferred_tags(&got, "t", texts, 1);
      if (!bson_equal(&got, want)) {
         char *g = flora_test_str(&got);

         print_error("\"%s\": got %s\n", tags[i].text, g);
         bson_free(g);
         fail();
      }
      bson_destroy(&got);
      bson_destroy(want);
   }
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flowwow),
      cmocka_unit_test(test_bad_rows),
      cmocka_unit_test(test_unterminated_quote),
      cmocka_unit_test(test_header),
      cmocka_unit_test(test_semicolons_bom_crlf),
      cmocka_unit_test(test_default_category),
      cmocka_unit_test(test_money),
      cmocka_unit_test(test_composition),
      cmocka_unit_test(test_size_and_tags),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
