/* The schema layer (include/flora/schema.h): validation against the cases in
 * tests/data/schema/validate.json, defaults and timestamps, the generated $jsonSchema
 * (compared with tests/data/schema/products.jsonschema.json and evaluated on every
 * validation case), index specifications and the Markdown page. */
#include "flora_test.h"

#include <math.h>
#include <regex.h>

#include <unistr.h>

#include "flora/schema.h"

/* ---- the test schema: every feature ----------------------------------------------- */

static const char *const statuses[] = {"draft", "active", "archived", NULL};

static bool
even_length(const bson_iter_t *value, char *reason, size_t reason_len)
{
   uint32_t len = 0;

   bson_iter_utf8(value, &len);
   if (len % 2 != 0) {
      snprintf(reason, reason_len, "must have an even number of characters");
      return false;
   }
   return true;
}

static bool
published_when_active(const bson_t *doc, bson_t *problems)
{
   bson_iter_t it;

   if (bson_iter_init_find(&it, doc, "status") && BSON_ITER_HOLDS_UTF8(&it) &&
       strcmp(bson_iter_utf8(&it, NULL), "active") == 0 &&
       (!bson_iter_init_find(&it, doc, "publishedAt") || BSON_ITER_HOLDS_NULL(&it))) {
      flora_schema_problem(problems, "publishedAt", "is required when status is active");
      return false;
   }
   return true;
}

static const flora_field_t variant_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "sku", .types = FLORA_T_STRING, .required = true,
    .pattern = "^[A-Z0-9-]+$", .pattern_hint = "an SKU (A-Z, 0-9, -)", .description = "Stock keeping unit."},
   {FLORA_FIELD_DEFAULTS, .path = "price", .types = FLORA_T_INT64, .required = true, .has_min = true,
    .min = 1, .has_max = true, .max = 10000000, .description = "Price in kopecks."},
   {FLORA_FIELD_DEFAULTS, .path = "stock", .types = FLORA_T_INT32, .has_min = true, .min = 0,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "0", .description = "Units in stock."},
   {.path = NULL},
};

static const flora_field_t variant_item = {
   FLORA_FIELD_DEFAULTS, .types = FLORA_T_DOCUMENT, .fields = variant_fields, .strict = true,
   .description = "One variant.",
};

static const flora_field_t rating_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "avg", .types = FLORA_T_NUMBER, .has_min = true, .min = 0,
    .has_max = true, .max = 5, .default_kind = FLORA_DEFAULT_VALUE, .default_json = "0"},
   {FLORA_FIELD_DEFAULTS, .path = "count", .types = FLORA_T_INT64, .has_min = true, .min = 0,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "{\"$numberLong\": \"0\"}"},
   {.path = NULL},
};

static const flora_field_t tag_item = {
   FLORA_FIELD_DEFAULTS, .types = FLORA_T_STRING, .minlength = 1, .maxlength = 10,
};

static const flora_field_t product_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true, .minlength = 1,
    .maxlength = 20, .description = "Display name."},
   {FLORA_FIELD_DEFAULTS, .path = "slug", .types = FLORA_T_STRING, .required = true,
    .pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", .pattern_hint = "a URL slug", .description = "URL | key."},
   {FLORA_FIELD_DEFAULTS, .path = "status", .types = FLORA_T_STRING, .enum_values = statuses,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "\"draft\""},
   {FLORA_FIELD_DEFAULTS, .path = "price", .types = FLORA_T_INT64, .required = true, .has_min = true,
    .min = 0},
   {FLORA_FIELD_DEFAULTS, .path = "weight", .types = FLORA_T_NUMBER | FLORA_T_NULL, .has_min = true,
    .min = 0.5, .has_max = true, .max = 100.5},
   {FLORA_FIELD_DEFAULTS, .path = "tags", .types = FLORA_T_ARRAY, .maxlength = 3, .items = &tag_item,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]"},
   {FLORA_FIELD_DEFAULTS, .path = "variants", .types = FLORA_T_ARRAY, .required = true, .minlength = 1,
    .items = &variant_item},
   {FLORA_FIELD_DEFAULTS, .path = "rating", .types = FLORA_T_DOCUMENT, .fields = rating_fields,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "{}"},
   {FLORA_FIELD_DEFAULTS, .path = "categoryId", .types = FLORA_T_OBJECTID,
    .ref_collection = "categories", .ref_field = "_id"},
   {FLORA_FIELD_DEFAULTS, .path = "publishedAt", .types = FLORA_T_DATE | FLORA_T_NULL, .has_min = true,
    .min = 1577836800000.0},
   {FLORA_FIELD_DEFAULTS, .path = "code", .types = FLORA_T_STRING, .validate = even_length},
   {FLORA_FIELD_DEFAULTS, .path = "token", .types = FLORA_T_OBJECTID,
    .default_kind = FLORA_DEFAULT_OBJECTID},
   {FLORA_FIELD_DEFAULTS, .path = "firstSeen", .types = FLORA_T_DATE, .default_kind = FLORA_DEFAULT_NOW},
   {.path = NULL},
};

static const flora_index_decl_t product_indexes[] = {
   {.name = "slug_unique", .keys_json = "{\"slug\": 1}", .unique = true, .serves = "product page by slug"},
   {.name = "category_price", .keys_json = "{\"categoryId\": 1, \"price\": -1}",
    .serves = "category listing sorted by price"},
   {.name = "published", .keys_json = "{\"publishedAt\": -1}",
    .partial_filter_json = "{\"status\": \"active\"}", .serves = "newest active products"},
   {.name = "code_unique", .keys_json = "{\"code\": 1}", .unique = true, .sparse = true},
   {.name = "first_seen_ttl", .keys_json = "{\"firstSeen\": 1}", .expire_after_seconds = 86400},
   {.name = "search", .keys_json = "{\"name\": \"text\", \"tags\": \"text\"}",
    .weights_json = "{\"name\": 10, \"tags\": 2}", .default_language = "russian",
    .serves = "catalog search"},
   {.name = NULL},
};

static const flora_schema_t products = {
   .collection = "products",
   .description = "Products of the test shop.",
   .fields = product_fields,
   .strict = true,
   .timestamps = true,
   .indexes = product_indexes,
   .validate = published_when_active,
};

static const flora_field_t plain_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "n", .types = FLORA_T_INT},
   {.path = NULL},
};

static const flora_schema_t plain = {.collection = "plain", .fields = plain_fields};

/* ---- helpers ---------------------------------------------------------------------- */

static bson_t *
load_json_file(const char *name)
{
   const char *src = getenv("FLORA_SOURCE_DIR");
   char path[4096];
   bson_t *doc;
   bson_error_t err;
   FILE *f;
   char *text = NULL;
   size_t len = 0;

   if (!src) {
      fail_msg("FLORA_SOURCE_DIR is not set: run this test through ctest");
   }
   snprintf(path, sizeof path, "%s/tests/data/schema/%s", src, name);
   f = fopen(path, "rb");
   if (!f) {
      fail_msg("cannot open %s", path);
   }
   FILE *mem = open_memstream(&text, &len);
   char buf[4096];
   size_t n;
   while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
      fwrite(buf, 1, n, mem);
   }
   fclose(f);
   fclose(mem);
   doc = bson_new_from_json((const uint8_t *) text, (ssize_t) len, &err);
   if (!doc) {
      fail_msg("%s: %s", path, err.message);
   }
   free(text);
   return doc;
}

/* A sub-document or sub-array of an iterator's value, borrowed. */
static void
sub(const bson_iter_t *it, bson_t *out)
{
   uint32_t len;
   const uint8_t *data;

   if (BSON_ITER_HOLDS_ARRAY(it)) {
      bson_iter_array(it, &len, &data);
   } else {
      assert_true(BSON_ITER_HOLDS_DOCUMENT(it));
      bson_iter_document(it, &len, &data);
   }
   assert_true(bson_init_static(out, data, len));
}

static bool
in_array(const bson_t *arr, const char *s)
{
   bson_iter_t it;

   if (!arr || !bson_iter_init(&it, arr)) {
      return false;
   }
   while (bson_iter_next(&it)) {
      if (BSON_ITER_HOLDS_UTF8(&it) && strcmp(bson_iter_utf8(&it, NULL), s) == 0) {
         return true;
      }
   }
   return false;
}

/* base with patch's keys set and remove's keys left out. */
static void
patched(const bson_t *base, const bson_t *patch, const bson_t *remove, bson_t *out)
{
   bson_iter_t it, p;

   bson_init(out);
   bson_iter_init(&it, base);
   while (bson_iter_next(&it)) {
      const char *k = bson_iter_key(&it);
      if (in_array(remove, k)) {
         continue;
      }
      if (patch && bson_iter_init_find(&p, patch, k)) {
         bson_append_iter(out, k, -1, &p);
      } else {
         bson_append_iter(out, k, -1, &it);
      }
   }
   if (patch && bson_iter_init(&p, patch)) {
      while (bson_iter_next(&p)) {
         if (!bson_has_field(base, bson_iter_key(&p))) {
            bson_append_iter(out, bson_iter_key(&p), -1, &p);
         }
      }
   }
}

/* ---- a $jsonSchema evaluator (MongoDB's semantics for the keywords Flora emits) ---- */

static const char *
bson_type_alias(bson_type_t t)
{
   switch (t) {
   case BSON_TYPE_UTF8: return "string";
   case BSON_TYPE_INT32: return "int";
   case BSON_TYPE_INT64: return "long";
   case BSON_TYPE_DOUBLE: return "double";
   case BSON_TYPE_DECIMAL128: return "decimal";
   case BSON_TYPE_BOOL: return "bool";
   case BSON_TYPE_DATE_TIME: return "date";
   case BSON_TYPE_OID: return "objectId";
   case BSON_TYPE_DOCUMENT: return "object";
   case BSON_TYPE_ARRAY: return "array";
   case BSON_TYPE_NULL: return "null";
   case BSON_TYPE_BINARY: return "binData";
   default: return "other";
   }
}

static bool
is_number(const bson_iter_t *v)
{
   bson_type_t t = bson_iter_type(v);
   return t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64 || t == BSON_TYPE_DOUBLE ||
          t == BSON_TYPE_DECIMAL128;
}

static double
number(const bson_iter_t *v)
{
   if (BSON_ITER_HOLDS_DECIMAL128(v)) {
      bson_decimal128_t d;
      char s[BSON_DECIMAL128_STRING];
      bson_iter_decimal128(v, &d);
      bson_decimal128_to_string(&d, s);
      return strtod(s, NULL);
   }
   return bson_iter_as_double(v);
}

static bool js_valid(const bson_t *schema, const bson_iter_t *v);

static bool
js_object_valid(const bson_t *schema, const bson_t *obj)
{
   bson_iter_t k, it, props_it, p;
   bson_t props = BSON_INITIALIZER, req, ps;
   bool have_props = false, closed = false;

   if (bson_iter_init_find(&k, schema, "required")) {
      sub(&k, &req);
      bson_iter_init(&it, &req);
      while (bson_iter_next(&it)) {
         if (!bson_has_field(obj, bson_iter_utf8(&it, NULL))) {
            return false;
         }
      }
   }
   if (bson_iter_init_find(&props_it, schema, "properties")) {
      sub(&props_it, &props);
      have_props = true;
   }
   closed = bson_iter_init_find(&k, schema, "additionalProperties") && !bson_iter_bool(&k);
   bson_iter_init(&it, obj);
   while (bson_iter_next(&it)) {
      if (have_props && bson_iter_init_find(&p, &props, bson_iter_key(&it))) {
         sub(&p, &ps);
         if (!js_valid(&ps, &it)) {
            return false;
         }
      } else if (closed) {
         return false;
      }
   }
   return true;
}

static bool
js_valid(const bson_t *schema, const bson_iter_t *v)
{
   bson_iter_t k, e;
   bson_type_t t = bson_iter_type(v);
   const char *alias = bson_type_alias(t);

   if (bson_iter_init_find(&k, schema, "bsonType")) {
      bool match = false;
      if (BSON_ITER_HOLDS_UTF8(&k)) {
         match = strcmp(bson_iter_utf8(&k, NULL), alias) == 0;
      } else {
         bson_t arr;
         sub(&k, &arr);
         match = in_array(&arr, alias);
      }
      if (!match) {
         return false;
      }
   }
   if (bson_iter_init_find(&k, schema, "enum")) {
      bool match = false;
      bson_iter_recurse(&k, &e);
      while (bson_iter_next(&e)) {
         if (t == BSON_TYPE_NULL && BSON_ITER_HOLDS_NULL(&e)) {
            match = true;
         } else if (t == BSON_TYPE_UTF8 && BSON_ITER_HOLDS_UTF8(&e) &&
                    strcmp(bson_iter_utf8(&e, NULL), bson_iter_utf8(v, NULL)) == 0) {
            match = true;
         }
      }
      if (!match) {
         return false;
      }
   }
   if (is_number(v)) {
      /* MongoDB orders NaN below every number: it fails minimum, passes maximum. */
      double x = number(v);
      if (bson_iter_init_find(&k, schema, "minimum") && (isnan(x) || x < number(&k))) {
         return false;
      }
      if (bson_iter_init_find(&k, schema, "maximum") && !isnan(x) && x > number(&k)) {
         return false;
      }
   }
   if (t == BSON_TYPE_UTF8) {
      uint32_t len;
      const char *s = bson_iter_utf8(v, &len);
      size_t chars = u8_mbsnlen((const uint8_t *) s, len);
      if (bson_iter_init_find(&k, schema, "minLength") && chars < (size_t) bson_iter_as_int64(&k)) {
         return false;
      }
      if (bson_iter_init_find(&k, schema, "maxLength") && chars > (size_t) bson_iter_as_int64(&k)) {
         return false;
      }
      if (bson_iter_init_find(&k, schema, "pattern")) {
         regex_t re;
         assert_int_equal(regcomp(&re, bson_iter_utf8(&k, NULL), REG_EXTENDED | REG_NOSUB), 0);
         int rc = regexec(&re, s, 0, NULL, 0);
         regfree(&re);
         if (rc != 0) {
            return false;
         }
      }
   }
   if (t == BSON_TYPE_ARRAY) {
      bson_t arr, items;
      bool has_items = bson_iter_init_find(&k, schema, "items");
      uint32_t count;
      sub(v, &arr);
      count = bson_count_keys(&arr);
      if (has_items) {
         sub(&k, &items);
      }
      if (bson_iter_init_find(&k, schema, "minItems") && count < bson_iter_as_int64(&k)) {
         return false;
      }
      if (bson_iter_init_find(&k, schema, "maxItems") && count > bson_iter_as_int64(&k)) {
         return false;
      }
      if (has_items) {
         bson_iter_init(&e, &arr);
         while (bson_iter_next(&e)) {
            if (!js_valid(&items, &e)) {
               return false;
            }
         }
      }
   }
   if (t == BSON_TYPE_DOCUMENT) {
      bson_t obj;
      sub(v, &obj);
      return js_object_valid(schema, &obj);
   }
   return true;
}

/* Evaluates {$jsonSchema: S} on doc. */
static bool
json_schema_accepts(const bson_t *validator, const bson_t *doc)
{
   bson_iter_t it;
   bson_t s;

   assert_true(bson_iter_init_find(&it, validator, "$jsonSchema"));
   sub(&it, &s);
   return js_object_valid(&s, doc) && bson_iter_init_find(&it, &s, "bsonType") &&
          strcmp(bson_iter_utf8(&it, NULL), "object") == 0;
}

/* ---- validation ------------------------------------------------------------------- */

static void
test_validate_cases(void **state)
{
   bson_t *file = load_json_file("validate.json");
   bson_t base, cases, c, doc, expected, validator;
   bson_iter_t it, f;
   flora_error_t error;
   int n = 0;

   (void) state;
   assert_true(flora_schema_json_schema(&products, &validator, NULL));
   assert_true(bson_iter_init_find(&it, file, "base"));
   sub(&it, &base);
   assert_true(bson_iter_init_find(&it, file, "cases"));
   sub(&it, &cases);
   bson_iter_init(&it, &cases);
   while (bson_iter_next(&it)) {
      bson_t patch, remove, problems = BSON_INITIALIZER;
      bool have_patch = false, have_remove = false, js_expected, ok;
      const char *name;

      sub(&it, &c);
      assert_true(bson_iter_init_find(&f, &c, "name"));
      name = bson_iter_utf8(&f, NULL);
      if (bson_iter_init_find(&f, &c, "doc")) {
         bson_t d;
         sub(&f, &d);
         bson_copy_to(&d, &doc);
      } else {
         if (bson_iter_init_find(&f, &c, "patch")) {
            sub(&f, &patch);
            have_patch = true;
         }
         if (bson_iter_init_find(&f, &c, "remove")) {
            sub(&f, &remove);
            have_remove = true;
         }
         patched(&base, have_patch ? &patch : NULL, have_remove ? &remove : NULL, &doc);
      }
      assert_true(bson_iter_init_find(&f, &c, "problems"));
      sub(&f, &expected);

      memset(&error, 0, sizeof error);
      ok = flora_schema_validate(&products, &doc, &problems, &error);
      print_message("case: %s\n", name);
      assert_bson_equal(&problems, &expected);
      assert_int_equal(ok, bson_empty(&expected));
      if (!ok) {
         assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
         assert_int_equal(error.code, FLORA_ERR_INVALID);
      } else {
         assert_int_equal(error.domain, FLORA_DOMAIN_NONE); /* untouched on success */
      }

      js_expected = bson_empty(&expected);
      if (bson_iter_init_find(&f, &c, "jsonschema_valid")) {
         js_expected = bson_iter_bool(&f);
      }
      if (json_schema_accepts(&validator, &doc) != js_expected) {
         fail_msg("case %s: the generated $jsonSchema %s the document", name,
                  js_expected ? "refuses" : "accepts");
      }
      bson_destroy(&problems);
      bson_destroy(&doc);
      n++;
   }
   assert_true(n >= 25);
   bson_destroy(&validator);
   bson_destroy(file);
}

static void
test_validate_message_and_append(void **state)
{
   bson_t *doc = J("{'price': 'x'}");
   bson_t *expected = J("[{'path': 'earlier', 'reason': 'kept'},"
                        " {'path': 'name', 'reason': 'is required'},"
                        " {'path': 'slug', 'reason': 'is required'},"
                        " {'path': 'price', 'reason': 'must be an integer'},"
                        " {'path': 'variants', 'reason': 'is required'}]");
   bson_t problems = BSON_INITIALIZER;
   flora_error_t error = {0};

   (void) state;
   flora_schema_problem(&problems, "earlier", "kept");
   assert_false(flora_schema_validate(&products, doc, &problems, &error));
   assert_bson_equal(&problems, expected);
   assert_string_equal(error.message, "name: is required; slug: is required; price: must be an "
                                      "integer; variants: is required");
   /* problems may be NULL; the error still says everything. */
   memset(&error, 0, sizeof error);
   assert_false(flora_schema_validate(&products, doc, NULL, &error));
   assert_int_equal(flora_error_http_status(&error), 422);
   bson_destroy(&problems);
   bson_destroy(expected);
   bson_destroy(doc);
}

static void
test_validate_message_truncated(void **state)
{
   bson_t doc = BSON_INITIALIZER;
   flora_error_t error = {0};
   char key[32];

   (void) state;
   BSON_APPEND_UTF8(&doc, "name", "n");
   BSON_APPEND_UTF8(&doc, "slug", "s");
   BSON_APPEND_INT32(&doc, "price", 1);
   for (int i = 0; i < 100; i++) {
      snprintf(key, sizeof key, "unknown_field_%03d", i);
      BSON_APPEND_INT32(&doc, key, i);
   }
   assert_false(flora_schema_validate(&products, &doc, NULL, &error));
   assert_true(strlen(error.message) == sizeof error.message - 1);
   assert_string_equal(error.message + strlen(error.message) - 3, "...");
   assert_true(strncmp(error.message, "variants: is required; unknown_field_000: unknown field; ",
                       57) == 0);
   bson_destroy(&doc);
}

static void
test_validate_invalid_utf8(void **state)
{
   bson_t doc = BSON_INITIALIZER, problems = BSON_INITIALIZER;
   bson_t *expected = J("[{'path': 'name', 'reason': 'must be valid UTF-8'},"
                        " {'path': 'slug', 'reason': 'must match a URL slug'}]");
   bson_t arr;

   (void) state;
   bson_append_utf8(&doc, "name", -1, "Ros\xff", 4);
   bson_append_utf8(&doc, "slug", -1, "a\0b", 3); /* an embedded NUL never matches */
   BSON_APPEND_INT32(&doc, "price", 1);
   bson_append_array_begin(&doc, "variants", -1, &arr);
   bson_t v;
   bson_append_document_begin(&arr, "0", -1, &v);
   BSON_APPEND_UTF8(&v, "sku", "A");
   BSON_APPEND_INT32(&v, "price", 1);
   bson_append_document_end(&arr, &v);
   bson_append_array_end(&doc, &arr);
   assert_false(flora_schema_validate(&products, &doc, &problems, NULL));
   assert_bson_equal(&problems, expected);
   bson_destroy(expected);
   bson_destroy(&problems);
   bson_destroy(&doc);
}

static void
test_validate_lenient_schema(void **state)
{
   bson_t *ok_doc = J("{'n': 3, 'anything': 'else'}");
   bson_t *bad = J("{'n': 1.5}");
   bson_t *big = J("{'n': {'$numberLong': '9007199254740993'}}");
   bson_t problems = BSON_INITIALIZER;

   (void) state;
   assert_true(flora_schema_validate(&plain, ok_doc, NULL, NULL));
   assert_true(flora_schema_validate(&plain, big, NULL, NULL));
   assert_false(flora_schema_validate(&plain, bad, &problems, NULL));
   bson_t *expected = J("[{'path': 'n', 'reason': 'must be an integer'}]");
   assert_bson_equal(&problems, expected);
   bson_destroy(expected);
   bson_destroy(&problems);
   bson_destroy(ok_doc);
   bson_destroy(bad);
   bson_destroy(big);
}

/* Bounds on int64 values compare exactly, not through a double. */
static const flora_field_t exact_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "n", .types = FLORA_T_INT64, .has_max = true,
    .max = 9007199254740992.0},
   {FLORA_FIELD_DEFAULTS, .path = "m", .types = FLORA_T_INT64, .has_min = true, .min = 0.5},
   {.path = NULL},
};
static const flora_schema_t exact = {.collection = "exact", .fields = exact_fields};

static void
test_validate_exact_int_bounds(void **state)
{
   bson_t *at = J("{'n': {'$numberLong': '9007199254740992'}, 'm': 1}");
   bson_t *over = J("{'n': {'$numberLong': '9007199254740993'}, 'm': 0}");
   bson_t problems = BSON_INITIALIZER;
   bson_t *expected = J("[{'path': 'n', 'reason': 'must be <= 9007199254740992'},"
                        " {'path': 'm', 'reason': 'must be >= 0.5'}]");

   (void) state;
   assert_true(flora_schema_validate(&exact, at, NULL, NULL));
   assert_false(flora_schema_validate(&exact, over, &problems, NULL));
   assert_bson_equal(&problems, expected);
   bson_destroy(expected);
   bson_destroy(&problems);
   bson_destroy(at);
   bson_destroy(over);
}

/* ---- prepare ---------------------------------------------------------------------- */

#define NOW_MS INT64_C(1700000000000)
#define NOW_JSON "{'$date': {'$numberLong': '1700000000000'}}"

/* Asserts out's field `key` has BSON type t and removes it from *doc (for generated ids). */
static void
take_field(bson_t *doc, const char *key, bson_type_t t)
{
   bson_iter_t it;
   bson_t rest = BSON_INITIALIZER;

   assert_true(bson_iter_init_find(&it, doc, key));
   assert_int_equal(bson_iter_type(&it), t);
   bson_copy_to_excluding_noinit(doc, &rest, key, NULL);
   bson_destroy(doc);
   bson_copy_to(&rest, doc);
   bson_destroy(&rest);
}

static void
test_prepare_insert_defaults(void **state)
{
   bson_t *doc = J("{'name': 'Tulips', 'variants': [{'sku': 'T-1', 'price': 5}, 'junk',"
                   " {'sku': 'T-2', 'price': 6, 'stock': 2}], 'rating': {'avg': 4}}");
   bson_t *expected = J("{'name': 'Tulips', 'variants': [{'sku': 'T-1', 'price': 5, 'stock': 0},"
                        " 'junk', {'sku': 'T-2', 'price': 6, 'stock': 2}],"
                        " 'rating': {'avg': 4, 'count': {'$numberLong': '0'}},"
                        " 'status': 'draft', 'tags': [], 'firstSeen': " NOW_JSON ","
                        " 'createdAt': " NOW_JSON ", 'updatedAt': " NOW_JSON "}");
   bson_t out;
   bson_iter_t it;

   (void) state;
   assert_true(flora_schema_prepare_insert(&products, doc, NOW_MS, &out, NULL));
   assert_true(bson_iter_init(&it, &out) && bson_iter_next(&it));
   assert_string_equal(bson_iter_key(&it), "_id"); /* first */
   take_field(&out, "_id", BSON_TYPE_OID);
   take_field(&out, "token", BSON_TYPE_OID);
   assert_bson_equal(&out, expected);
   bson_destroy(&out);
   bson_destroy(expected);
   bson_destroy(doc);
}

static void
test_prepare_insert_nested_default_and_timestamps(void **state)
{
   /* A missing `rating` gets its default {} and then its subfields' defaults; a given
    * createdAt and _id are kept (_id moved first); updatedAt is always now. */
   bson_t *doc = J("{'name': 'Lilies', 'createdAt': {'$date': {'$numberLong': '5'}},"
                   " 'updatedAt': {'$date': {'$numberLong': '6'}}, '_id': 7, 'status': 'active',"
                   " 'tags': ['a'], 'token': null, 'firstSeen': null, 'variants': []}");
   bson_t *expected = J("{'_id': 7, 'name': 'Lilies', 'createdAt': {'$date': {'$numberLong': '5'}},"
                        " 'status': 'active', 'tags': ['a'], 'token': null, 'firstSeen': null,"
                        " 'variants': [], 'rating': {'avg': 0, 'count': {'$numberLong': '0'}},"
                        " 'updatedAt': " NOW_JSON "}");
   bson_t out;

   (void) state;
   assert_true(flora_schema_prepare_insert(&products, doc, NOW_MS, &out, NULL));
   assert_bson_equal(&out, expected);
   bson_destroy(&out);
   bson_destroy(expected);
   bson_destroy(doc);
}

static void
test_prepare_insert_plain(void **state)
{
   bson_t *doc = J("{'n': 1}");
   bson_t out;
   bson_iter_t it;

   (void) state;
   assert_true(flora_schema_prepare_insert(&plain, doc, NOW_MS, &out, NULL));
   assert_int_equal(bson_count_keys(&out), 2); /* _id, n: no timestamps */
   assert_true(bson_iter_init_find(&it, &out, "_id") && BSON_ITER_HOLDS_OID(&it));
   bson_destroy(&out);
   bson_destroy(doc);
}

static const flora_field_t bad_default_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "x", .types = FLORA_T_INT, .default_kind = FLORA_DEFAULT_VALUE,
    .default_json = "not json"},
   {.path = NULL},
};
static const flora_schema_t bad_default = {.collection = "bad", .fields = bad_default_fields};

static void
test_prepare_insert_bad_default(void **state)
{
   bson_t *doc = J("{}");
   bson_t out;
   flora_error_t error = {0};

   (void) state;
   assert_false(flora_schema_prepare_insert(&bad_default, doc, NOW_MS, &out, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
   assert_non_null(strstr(error.message, "bad: field x: schema default not json"));
   assert_true(bson_empty(&out));
   bson_destroy(&out);
   bson_destroy(doc);
}

static void
test_prepare_update_cases(void **state)
{
   static const struct {
      const char *update, *expected;
   } cases[] = {
      {"{'$set': {'name': 'x'}}",
       "{'$set': {'name': 'x', 'updatedAt': " NOW_JSON "}, '$setOnInsert': {'createdAt': " NOW_JSON "}}"},
      {"{'$inc': {'price': 1}}",
       "{'$inc': {'price': 1}, '$set': {'updatedAt': " NOW_JSON "},"
       " '$setOnInsert': {'createdAt': " NOW_JSON "}}"},
      {"{'$setOnInsert': {'slug': 'a'}, '$set': {'name': 'x'}, '$push': {'tags': 't'}}",
       "{'$setOnInsert': {'slug': 'a', 'createdAt': " NOW_JSON "},"
       " '$set': {'name': 'x', 'updatedAt': " NOW_JSON "}, '$push': {'tags': 't'}}"},
      /* An update naming a timestamp keeps its own (ours would conflict: code 40). */
      {"{'$set': {'updatedAt': 1}}",
       "{'$set': {'updatedAt': 1}, '$setOnInsert': {'createdAt': " NOW_JSON "}}"},
      {"{'$currentDate': {'updatedAt': true}, '$unset': {'createdAt.x': ''}}",
       "{'$currentDate': {'updatedAt': true}, '$unset': {'createdAt.x': ''}}"},
      {"{'$set': {'createdAtX': 1}}",
       "{'$set': {'createdAtX': 1, 'updatedAt': " NOW_JSON "}, '$setOnInsert': {'createdAt': " NOW_JSON "}}"},
      /* A replacement keeps its createdAt and gets updatedAt. */
      {"{'name': 'x', 'updatedAt': 1, 'createdAt': 2}",
       "{'name': 'x', 'createdAt': 2, 'updatedAt': " NOW_JSON "}"},
      {"{}", "{'updatedAt': " NOW_JSON "}"},
   };

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_t *update = J(cases[i].update);
      bson_t *expected = J(cases[i].expected);
      bson_t out;
      print_message("update: %s\n", cases[i].update);
      assert_true(flora_schema_prepare_update(&products, update, NOW_MS, &out, NULL));
      assert_bson_equal(&out, expected);
      bson_destroy(&out);
      bson_destroy(expected);
      bson_destroy(update);
   }
}

static void
test_prepare_update_plain_and_errors(void **state)
{
   bson_t *update = J("{'$set': {'n': 1}}");
   bson_t *bad = J("{'$set': 5}");
   bson_t out;
   flora_error_t error = {0};

   (void) state;
   assert_true(flora_schema_prepare_update(&plain, update, NOW_MS, &out, NULL));
   assert_bson_equal(&out, update);
   bson_destroy(&out);
   assert_false(flora_schema_prepare_update(&products, bad, NOW_MS, &out, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_STORE);
   assert_int_equal(error.code, FLORA_STORE_FAILED_TO_PARSE);
   assert_true(bson_empty(&out));
   bson_destroy(&out);
   bson_destroy(bad);
   bson_destroy(update);
}

/* ---- $jsonSchema, indexes, docs --------------------------------------------------- */

static void
test_json_schema_expected(void **state)
{
   bson_t *expected = load_json_file("products.jsonschema.json");
   bson_t out;

   (void) state;
   assert_true(flora_schema_json_schema(&products, &out, NULL));
   assert_bson_equal(&out, expected);
   bson_destroy(&out);
   bson_destroy(expected);
}

/* Prepared documents (with _id, defaults and timestamps) pass both validators. */
static void
test_json_schema_accepts_prepared(void **state)
{
   bson_t *doc = J("{'name': 'Tulips', 'slug': 'tulips', 'price': 5, 'status': 'active',"
                   " 'publishedAt': {'$date': '2024-03-08T00:00:00Z'},"
                   " 'variants': [{'sku': 'T-1', 'price': 5}]}");
   bson_t out, validator;

   (void) state;
   assert_true(flora_schema_prepare_insert(&products, doc, NOW_MS, &out, NULL));
   assert_true(flora_schema_validate(&products, &out, NULL, NULL));
   assert_true(flora_schema_json_schema(&products, &validator, NULL));
   assert_true(json_schema_accepts(&validator, &out));
   bson_destroy(&validator);
   bson_destroy(&out);
   bson_destroy(doc);
}

/* enum applies to strings only; on a field that also takes numbers, the $jsonSchema leaves
 * it out (its enum would refuse the numbers) and says so in the description. */
static const char *const sizes[] = {"S", "M", "L", NULL};
static const flora_field_t size_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "size", .types = FLORA_T_STRING | FLORA_T_INT32 | FLORA_T_NULL,
    .enum_values = sizes, .has_max = true, .max = 100},
   {.path = NULL},
};
static const flora_schema_t sized = {.collection = "sized", .fields = size_fields};

static void
test_json_schema_enum_multi_type(void **state)
{
   bson_t *expected = J("{'$jsonSchema': {'bsonType': 'object', 'title': 'sized', 'properties': {"
                        " '_id': {}, 'size': {'bsonType': ['string', 'int', 'null'],"
                        " 'description': '(checked by Flora, not by $jsonSchema: string enum)',"
                        " 'maximum': {'$numberLong': '100'}}}}}");
   static const struct {
      const char *doc;
      bool valid, js_valid;
   } cases[] = {
      {"{'size': 'M'}", true, true},   {"{'size': 40}", true, true},
      {"{'size': null}", true, true},  {"{'size': 'XL'}", false, true},
      {"{'size': 101}", false, false}, {"{'size': 1.5}", false, false},
   };
   bson_t out;

   (void) state;
   assert_true(flora_schema_json_schema(&sized, &out, NULL));
   assert_bson_equal(&out, expected);
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_t *doc = J(cases[i].doc);
      print_message("doc: %s\n", cases[i].doc);
      assert_int_equal(flora_schema_validate(&sized, doc, NULL, NULL), cases[i].valid);
      assert_int_equal(json_schema_accepts(&out, doc), cases[i].js_valid);
      bson_destroy(doc);
   }
   bson_destroy(&out);
   bson_destroy(expected);
}

static void
test_index_specs(void **state)
{
   bson_t *expected = J(
      "[{'key': {'slug': 1}, 'name': 'slug_unique', 'unique': true},"
      " {'key': {'categoryId': 1, 'price': -1}, 'name': 'category_price'},"
      " {'key': {'publishedAt': -1}, 'name': 'published',"
      "  'partialFilterExpression': {'status': 'active'}},"
      " {'key': {'code': 1}, 'name': 'code_unique', 'unique': true, 'sparse': true},"
      " {'key': {'firstSeen': 1}, 'name': 'first_seen_ttl', 'expireAfterSeconds': 86400},"
      " {'key': {'name': 'text', 'tags': 'text'}, 'name': 'search',"
      "  'weights': {'name': 10, 'tags': 2}, 'default_language': 'russian'}]");
   bson_t out;

   (void) state;
   assert_true(flora_schema_index_specs(&products, &out, NULL));
   assert_bson_equal(&out, expected);
   bson_destroy(&out);
   assert_true(flora_schema_index_specs(&plain, &out, NULL));
   assert_true(bson_empty(&out));
   bson_destroy(&out);
   bson_destroy(expected);
}

static void
test_index_specs_errors(void **state)
{
   static const flora_index_decl_t bad_keys[] = {{.name = "k", .keys_json = "{nope"}, {.name = NULL}};
   static const flora_index_decl_t no_keys[] = {{.name = "k", .keys_json = "{}"}, {.name = NULL}};
   static const flora_index_decl_t bad_ttl[] = {
      {.name = "k", .keys_json = "{\"d\": 1}", .expire_after_seconds = INT64_C(3000000000)},
      {.name = NULL}};
   static const flora_index_decl_t bad_partial[] = {
      {.name = "k", .keys_json = "{\"d\": 1}", .partial_filter_json = "[1"}, {.name = NULL}};
   const flora_index_decl_t *decls[] = {bad_keys, no_keys, bad_ttl, bad_partial};
   const char *words[] = {"keys_json is not a JSON document", "no keys", "exceeds", "partial_filter_json"};

   (void) state;
   for (size_t i = 0; i < 4; i++) {
      flora_schema_t s = {.collection = "c", .indexes = decls[i]};
      flora_error_t error = {0};
      bson_t out;
      assert_false(flora_schema_index_specs(&s, &out, &error));
      assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
      if (!strstr(error.message, words[i]) || strncmp(error.message, "schema c: index k: ", 19) != 0) {
         fail_msg("unexpected message: %s", error.message);
      }
      assert_true(bson_empty(&out));
      bson_destroy(&out);
   }
}

static void
test_markdown(void **state)
{
   char *md = flora_schema_markdown(&products);
   static const char *const lines[] = {
      "<!-- Generated from lib/shop/*.c by `flora docs schema`; do not edit. -->\n# `products`\n",
      "| `_id` | any | yes | new ObjectId | | | The document's id. |\n",
      "| `name` | string | yes | | 1–20 characters | | Display name. |\n",
      "| `slug` | string | yes | | matches `^[a-z0-9]+(-[a-z0-9]+)*$` (a URL slug) | | URL \\| key. |\n",
      "| `status` | string | | `\"draft\"` | one of: `draft`, `active`, `archived` | | |\n",
      "| `weight` | int, long, double, decimal, null | | | 0.5 ≤ value ≤ 100.5 | | |\n",
      "| `tags[]` | string | | | 1–10 characters | | |\n",
      "| `variants` | array | yes | | at least 1 item | | |\n",
      "| `variants[]` | object | | | strict: unknown subfields refused | | One variant. |\n",
      "| `variants[].price` | long | yes | | 1 ≤ value ≤ 10000000 | | Price in kopecks. |\n",
      "| `rating.count` | long | | `{\"$numberLong\": \"0\"}` | ≥ 0 | | |\n",
      "| `categoryId` | objectId | | | | `categories._id` | |\n",
      "| `publishedAt` | date, null | | | ≥ 2020-01-01T00:00:00.000Z (Flora only) | | |\n",
      "| `code` | string | | | custom check (Flora only) | | |\n",
      "| `token` | objectId | | new ObjectId | | | |\n",
      "| `firstSeen` | date | | now | | | |\n",
      "| `createdAt` | date | | now | | | When the document was created (UTC). |\n",
      "| `slug_unique` | `{\"slug\": 1}` | unique | product page by slug |\n",
      "| `published` | `{\"publishedAt\": -1}` | partial: `{\"status\": \"active\"}` | newest active products |\n",
      "| `first_seen_ttl` | `{\"firstSeen\": 1}` | TTL: expires 86400 s after the indexed date | |\n",
      "| `search` | `{\"name\": \"text\", \"tags\": \"text\"}` | weights: `{\"name\": 10, \"tags\": 2}`; "
      "language: russian | catalog search |\n",
      "cannot be expressed in `$jsonSchema`",
   };

   (void) state;
   assert_non_null(md);
   assert_true(strncmp(md, lines[0], strlen(lines[0])) == 0);
   for (size_t i = 1; i < sizeof lines / sizeof lines[0]; i++) {
      if (!strstr(md, lines[i])) {
         fail_msg("missing from the page: %s\n---\n%s", lines[i], md);
      }
   }
   free(md);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validate_cases),
      cmocka_unit_test(test_validate_message_and_append),
      cmocka_unit_test(test_validate_message_truncated),
      cmocka_unit_test(test_validate_invalid_utf8),
      cmocka_unit_test(test_validate_lenient_schema),
      cmocka_unit_test(test_validate_exact_int_bounds),
      cmocka_unit_test(test_prepare_insert_defaults),
      cmocka_unit_test(test_prepare_insert_nested_default_and_timestamps),
      cmocka_unit_test(test_prepare_insert_plain),
      cmocka_unit_test(test_prepare_insert_bad_default),
      cmocka_unit_test(test_prepare_update_cases),
      cmocka_unit_test(test_prepare_update_plain_and_errors),
      cmocka_unit_test(test_json_schema_expected),
      cmocka_unit_test(test_json_schema_accepts_prepared),
      cmocka_unit_test(test_json_schema_enum_multi_type),
      cmocka_unit_test(test_index_specs),
      cmocka_unit_test(test_index_specs_errors),
      cmocka_unit_test(test_markdown),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
