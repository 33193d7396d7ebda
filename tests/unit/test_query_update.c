/* Update operators (include/flora/query.h, "updates").
 *
 * Most cases are data: tests/data/update/ (one JSON file per operator), each an array of cases
 *   {"name", "doc", "update", "arrayFilters"?, "insert"?, "positional"?, "now"?,
 *    "expected"? (the new document, compared byte for byte, field order included),
 *    "modified"? (default: expected differs from doc), "error"? (the STORE code),
 *    "message"? (part of the error message), "phase"? ("compile" or "apply": where the
 *    error must appear)}
 * and for flora_update_upsert_seed: {"name", "seed": filter, "expected" | "error"}.
 * The OpenDocDB corpus (real MongoDB's answers) is replayed too when ../shared is present. */
#include "flora_test.h"

#include <dirent.h>

#include "flora/query.h"

static char *
read_file(const char *path, size_t *len)
{
   FILE *f = fopen(path, "rb");
   char *buf;
   long n;

   if (!f) {
      return NULL;
   }
   fseek(f, 0, SEEK_END);
   n = ftell(f);
   fseek(f, 0, SEEK_SET);
   buf = malloc((size_t) n + 1);
   if (fread(buf, 1, (size_t) n, f) != (size_t) n) {
      n = 0;
   }
   buf[n] = '\0';
   fclose(f);
   *len = (size_t) n;
   return buf;
}

/* libbson's JSON reader takes any {"$type": ...} for the legacy binary syntax, so query
 * operators named $type are read under TYPE_KEY and renamed afterwards. */
#define TYPE_KEY "$$type"

static void
rename_type_keys(const bson_t *in, bson_t *out)
{
   bson_iter_t it;

   bson_iter_init(&it, in);
   while (bson_iter_next(&it)) {
      const char *key = strcmp(bson_iter_key(&it), TYPE_KEY) == 0 ? "$type" : bson_iter_key(&it);
      if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
         bson_t sub, child;
         const uint8_t *data;
         uint32_t len;
         if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_iter_document(&it, &len, &data);
            bson_init_static(&sub, data, len);
            bson_append_document_begin(out, key, -1, &child);
            rename_type_keys(&sub, &child);
            bson_append_document_end(out, &child);
         } else {
            bson_iter_array(&it, &len, &data);
            bson_init_static(&sub, data, len);
            bson_append_array_begin(out, key, -1, &child);
            rename_type_keys(&sub, &child);
            bson_append_array_end(out, &child);
         }
      } else {
         bson_append_value(out, key, -1, bson_iter_value(&it));
      }
   }
}

/* Parses JSON text (with "$type" keys allowed; single quotes read as double quotes when
 * quotes is true, for C literals). */
static bson_t *
parse_json(const char *text, bool quotes, const char *what)
{
   size_t len = strlen(text), n = 0;
   char *copy = malloc(len * 2 + 1);
   bson_error_t err;
   bson_t *raw, *b;

   for (const char *p = text; *p; p++) {
      if (strncmp(p, "\"$type\"", 7) == 0) {
         memcpy(copy + n, "\"" TYPE_KEY "\"", 8);
         n += 8;
         p += 6;
      } else {
         copy[n++] = quotes && *p == '\'' ? '"' : *p;
      }
   }
   copy[n] = '\0';
   raw = bson_new_from_json((const uint8_t *) copy, -1, &err);
   free(copy);
   if (!raw) {
      fail_msg("bad JSON in %s: %s", what, err.message);
   }
   b = bson_new();
   rename_type_keys(raw, b);
   bson_destroy(raw);
   return b;
}

/* Parses a JSON file whose top level is an array or an object: wrapped as {"cases": ...}. */
static bson_t *
load_json(const char *path)
{
   size_t len = 0;
   char *text = read_file(path, &len);
   char *wrapped;
   bson_t *b;

   if (!text) {
      fail_msg("cannot read %s", path);
      return NULL;
   }
   wrapped = malloc(len + 16);
   snprintf(wrapped, len + 16, "{\"cases\": %s}", text);
   free(text);
   b = parse_json(wrapped, false, path);
   free(wrapped);
   return b;
}

static bool
get_doc(const bson_t *c, const char *key, bson_t *out)
{
   bson_iter_t it;
   const uint8_t *data;
   uint32_t len;

   if (!bson_iter_init_find(&it, c, key) ||
       !(BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it))) {
      return false;
   }
   if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_iter_document(&it, &len, &data);
   } else {
      bson_iter_array(&it, &len, &data);
   }
   return bson_init_static(out, data, len);
}

static int64_t
get_int(const bson_t *c, const char *key, int64_t dflt)
{
   bson_iter_t it;
   return bson_iter_init_find(&it, c, key) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it)
                                                                           : dflt;
}

static const char *
get_str(const bson_t *c, const char *key)
{
   bson_iter_t it;
   return bson_iter_init_find(&it, c, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL)
                                                                         : NULL;
}

static bool
has(const bson_t *c, const char *key)
{
   bson_iter_t it;
   return bson_iter_init_find(&it, c, key);
}

/* The case's "message", when given, must be part of the error message. */
static bool
message_ok(const char *file, const char *name, const bson_t *c, const flora_error_t *error)
{
   const char *want = get_str(c, "message");

   if (want && !strstr(error->message, want)) {
      print_error("%s: %s: message \"%s\" lacks \"%s\"\n", file, name, error->message, want);
      return false;
   }
   return true;
}

/* Runs one case; returns false (after printing why) when it fails. */
static bool
run_case(const char *file, const bson_t *c)
{
   const char *name = get_str(c, "name");
   bson_t doc, update, filters, expected, seed, out;
   flora_update_t *u = NULL;
   flora_error_t error = {0};
   bool has_filters = get_doc(c, "arrayFilters", &filters);
   bool ok = false, modified = false, applied;
   int64_t want_error = get_int(c, "error", 0);
   const char *phase = get_str(c, "phase");
   bson_iter_t it;

   if (get_doc(c, "seed", &seed)) {
      applied = flora_update_upsert_seed(&seed, &out, &error);
      if (want_error) {
         if (applied || error.code != (uint32_t) want_error || !message_ok(file, name, c, &error)) {
            print_error("%s: %s: expected error %d, got %s (%u %s)\n", file, name, (int) want_error,
                        applied ? "success" : "error", error.code, error.message);
            bson_destroy(&out);
            return false;
         }
         bson_destroy(&out);
         return true;
      }
      if (!applied) {
         print_error("%s: %s: unexpected error %u %s\n", file, name, error.code, error.message);
         bson_destroy(&out);
         return false;
      }
      get_doc(c, "expected", &expected);
      ok = bson_equal(&out, &expected);
      if (!ok) {
         char *a = flora_test_str(&out), *e = flora_test_str(&expected);
         print_error("%s: %s:\n  actual:   %s\n  expected: %s\n", file, name, a, e);
         bson_free(a);
         bson_free(e);
      }
      bson_destroy(&out);
      return ok;
   }

   if (!get_doc(c, "doc", &doc) || !get_doc(c, "update", &update)) {
      print_error("%s: %s: case needs doc and update\n", file, name);
      return false;
   }
   u = flora_update_new(&update, has_filters ? &filters : NULL, &error);
   if (!u) {
      if (want_error && error.code == (uint32_t) want_error && error.domain == FLORA_DOMAIN_STORE &&
          (!phase || strcmp(phase, "compile") == 0) && message_ok(file, name, c, &error)) {
         return true;
      }
      print_error("%s: %s: compile failed: %u %s\n", file, name, error.code, error.message);
      return false;
   }
   if (want_error && phase && strcmp(phase, "compile") == 0) {
      print_error("%s: %s: expected a compile error %d\n", file, name, (int) want_error);
      flora_update_destroy(u);
      return false;
   }
   applied = flora_update_apply(u, &doc, bson_iter_init_find(&it, c, "insert") && bson_iter_as_bool(&it),
                                (int) get_int(c, "positional", -1), get_int(c, "now", 0), &out,
                                &modified, &error);
   if (want_error) {
      ok = !applied && error.code == (uint32_t) want_error && error.domain == FLORA_DOMAIN_STORE &&
           message_ok(file, name, c, &error);
      if (!ok) {
         print_error("%s: %s: expected error %d, got %s (%u %s)\n", file, name, (int) want_error,
                     applied ? "success" : "error", error.code, error.message);
      }
      ok = ok && bson_empty(&out);
      goto done;
   }
   if (!applied) {
      print_error("%s: %s: unexpected error %u %s\n", file, name, error.code, error.message);
      goto done;
   }
   if (!get_doc(c, "expected", &expected)) {
      print_error("%s: %s: case needs expected or error\n", file, name);
      goto done;
   }
   ok = bson_equal(&out, &expected);
   if (!ok) {
      char *a = flora_test_str(&out), *e = flora_test_str(&expected);
      print_error("%s: %s:\n  actual:   %s\n  expected: %s\n", file, name, a, e);
      bson_free(a);
      bson_free(e);
      goto done;
   }
   {
      bool want_modified = has(c, "modified") ? (bson_iter_init_find(&it, c, "modified") &&
                                                 bson_iter_as_bool(&it))
                                              : !bson_equal(&doc, &expected);
      if (modified != want_modified) {
         print_error("%s: %s: modified is %d, expected %d\n", file, name, modified, want_modified);
         ok = false;
      }
   }
done:
   bson_destroy(&out);
   flora_update_destroy(u);
   return ok;
}

static void
test_data_files(void **state)
{
   const char *src = getenv("FLORA_SOURCE_DIR");
   char dir[2048], path[4096];
   DIR *d;
   struct dirent *e;
   int failures = 0, count = 0, files = 0;

   (void) state;
   assert_non_null(src);
   snprintf(dir, sizeof dir, "%s/tests/data/update", src);
   d = opendir(dir);
   assert_non_null(d);
   while ((e = readdir(d))) {
      size_t n = strlen(e->d_name);
      bson_t *cases;
      bson_iter_t it, arr;

      if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) {
         continue;
      }
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      cases = load_json(path);
      files++;
      assert_true(bson_iter_init_find(&it, cases, "cases") && bson_iter_recurse(&it, &arr));
      while (bson_iter_next(&arr)) {
         bson_t c;
         const uint8_t *data;
         uint32_t len;
         bson_iter_document(&arr, &len, &data);
         assert_true(bson_init_static(&c, data, len));
         count++;
         if (!run_case(e->d_name, &c)) {
            failures++;
         }
      }
      bson_destroy(cases);
   }
   closedir(d);
   print_message("%d update cases in %d files, %d failed\n", count, files, failures);
   assert_true(files > 0);
   assert_int_equal(failures, 0);
}

/* ---- API-level tests ----------------------------------------------------------------- */

static void
test_replacement_flag(void **state)
{
   flora_error_t error;
   bson_t *a = J("{'a': 1}"), *b = J("{'$set': {'a': 1}}"), *empty = J("{}");
   flora_update_t *ua = flora_update_new(a, NULL, &error);
   flora_update_t *ub = flora_update_new(b, NULL, &error);
   flora_update_t *ue = flora_update_new(empty, NULL, &error);

   (void) state;
   assert_non_null(ua);
   assert_non_null(ub);
   assert_non_null(ue);
   assert_true(flora_update_is_replacement(ua));
   assert_false(flora_update_is_replacement(ub));
   assert_true(flora_update_is_replacement(ue));
   flora_update_destroy(ua);
   flora_update_destroy(ub);
   flora_update_destroy(ue);
   flora_update_destroy(NULL);
   bson_destroy(a);
   bson_destroy(b);
   bson_destroy(empty);
}

/* Compiled once, applied to many documents: the same object gives the same answers. */
static void
test_reuse(void **state)
{
   flora_error_t error;
   bson_t *upd = J("{'$inc': {'n': 1}, '$push': {'log': {'$each': [1], '$slice': -2}}}");
   flora_update_t *u = flora_update_new(upd, NULL, &error);
   bson_t *doc = J("{'_id': 1, 'n': 0}");
   bson_t cur, next;
   bool modified;

   (void) state;
   assert_non_null(u);
   bson_copy_to(doc, &cur);
   for (int i = 0; i < 5; i++) {
      assert_true(flora_update_apply(u, &cur, false, -1, 0, &next, &modified, &error));
      assert_true(modified);
      bson_destroy(&cur);
      bson_steal(&cur, &next);
   }
   {
      bson_t *want = J("{'_id': 1, 'n': 5, 'log': [1, 1]}");
      assert_bson_equal(&cur, want);
      bson_destroy(want);
   }
   bson_destroy(&cur);
   bson_destroy(doc);
   bson_destroy(upd);
   flora_update_destroy(u);
}

static void
test_current_date(void **state)
{
   flora_error_t error;
   bson_t *upd = parse_json(
      "{'$currentDate': {'d': true, 't': {\"$type\": 'timestamp'}, 'x': {\"$type\": 'date'}}}",
      true, "update");
   flora_update_t *u = flora_update_new(upd, NULL, &error);
   bson_t *doc = J("{'_id': 1}");
   bson_t out;
   bson_iter_t it;
   bool modified;

   (void) state;
   assert_non_null(u);
   assert_true(flora_update_apply(u, doc, false, -1, 1700000000123, &out, &modified, &error));
   assert_true(bson_iter_init_find(&it, &out, "d") && BSON_ITER_HOLDS_DATE_TIME(&it));
   assert_int_equal(bson_iter_date_time(&it), 1700000000123);
   assert_true(bson_iter_init_find(&it, &out, "t") && BSON_ITER_HOLDS_TIMESTAMP(&it));
   {
      uint32_t ts, inc;
      bson_iter_timestamp(&it, &ts, &inc);
      assert_int_equal(ts, 1700000000);
   }
   assert_true(bson_iter_init_find(&it, &out, "x") && BSON_ITER_HOLDS_DATE_TIME(&it));
   bson_destroy(&out);
   bson_destroy(doc);
   bson_destroy(upd);
   flora_update_destroy(u);
}

/* ---- a property: idempotent operators are idempotent ---------------------------------- */

static uint32_t rng_state = 12345;

static uint32_t
rng(uint32_t n)
{
   rng_state = rng_state * 1103515245u + 12345u;
   return (rng_state >> 16) % n;
}

static const char *const PATHS[] = {"a", "b", "a.b", "a.0", "a.1.x", "c.d.e", "a.$[]", "arr.$[]",
                                    "arr.2", "arr.0.k", "n", "s.t"};
static const char *const VALUES[] = {"1", "2.5", "'x'", "null", "{'k': 1}", "[1, 2]", "[]", "{}",
                                     "{'$numberLong': '7'}", "true"};
static const char *const DOCS[] = {
   "{'_id': 1}",
   "{'_id': 1, 'a': 1, 'b': 'x'}",
   "{'_id': 1, 'a': {'b': 1}, 'arr': [1, {'k': 2}, 3]}",
   "{'_id': 1, 'a': [1, {'x': 1}], 'n': 5, 's': {'t': [1, 1]}}",
   "{'_id': 1, 'c': {'d': null}, 'arr': [[1], {'k': 'v'}]}",
};

/* $set $unset $min $max $addToSet $pull $pullAll $rename $setOnInsert applied twice: the
 * second application changes nothing. Random (seeded) documents and updates; also checks
 * that every output is valid BSON. */
static void
test_idempotent_operators(void **state)
{
   static const char *const OPS[] = {"$set", "$unset", "$min", "$max", "$addToSet", "$pull",
                                     "$pullAll", "$rename", "$setOnInsert"};
   int applied = 0;

   (void) state;
   for (int round = 0; round < 3000; round++) {
      char json[512];
      const char *op = OPS[rng(sizeof OPS / sizeof OPS[0])];
      const char *path = PATHS[rng(sizeof PATHS / sizeof PATHS[0])];
      const char *value = VALUES[rng(sizeof VALUES / sizeof VALUES[0])];
      const char *path2 = PATHS[rng(sizeof PATHS / sizeof PATHS[0])];
      bson_t *doc = J(DOCS[rng(sizeof DOCS / sizeof DOCS[0])]), *upd;
      flora_update_t *u;
      flora_error_t error;
      bson_t once, twice;
      bool modified, insert = rng(2) == 0;

      if (strcmp(op, "$rename") == 0) {
         snprintf(json, sizeof json, "{'%s': {'%s': '%s'}}", op, path, path2);
      } else if (strcmp(op, "$pullAll") == 0) {
         snprintf(json, sizeof json, "{'%s': {'%s': [%s]}}", op, path, value);
      } else {
         snprintf(json, sizeof json, "{'%s': {'%s': %s, '%s': %s}}", op, path, value,
                  strcmp(path, path2) ? path2 : "zz", value);
      }
      upd = J(json);
      u = flora_update_new(upd, NULL, &error);
      if (u) {
         if (flora_update_apply(u, doc, insert, -1, 0, &once, &modified, &error)) {
            assert_true(bson_validate(&once, BSON_VALIDATE_NONE, NULL));
            if (!flora_update_apply(u, &once, insert, -1, 0, &twice, &modified, &error)) {
               fail_msg("%s on %s: second application failed: %s", json, flora_test_str(&once),
                        error.message);
            }
            if (modified || !bson_equal(&once, &twice)) {
               char *a = flora_test_str(&once), *b = flora_test_str(&twice);
               fail_msg("%s is not idempotent: %s then %s", json, a, b);
            }
            applied++;
            bson_destroy(&twice);
         }
         bson_destroy(&once);
         flora_update_destroy(u);
      }
      bson_destroy(upd);
      bson_destroy(doc);
   }
   print_message("%d random idempotent updates applied\n", applied);
   assert_true(applied > 500);
}

/* ---- the OpenDocDB corpus ------------------------------------------------------------ */

static bson_t *
load_fixture(const char *shared, const char *name)
{
   char path[4096];
   snprintf(path, sizeof path, "%s/conformance/opendocdb-cts/%s.fixture.json", shared, name);
   return load_json(path);
}

static const bson_t *
find_by_id(flora_docs_t *docs, const bson_value_t *id)
{
   for (size_t i = 0; i < docs->len; i++) {
      bson_iter_t it;
      if (bson_iter_init_find(&it, docs->items[i], "_id") &&
          flora_value_compare(bson_iter_value(&it), id) == 0) {
         return docs->items[i];
      }
   }
   return NULL;
}

/* Replays one CTS update file: runs the update over the fixture the way a store does
 * (match, apply, count), then checks n, nModified and every document of the find. */
static int
replay_cts(const char *shared, const char *rel)
{
   char path[4096];
   bson_t *file, req, resp, updates, upd, q, u, fixture_arr, find_resp, batch, projection_doc;
   const bson_t *projection = NULL;
   bson_iter_t it, step, ui;
   const char *coll;
   bson_t *fixture;
   flora_docs_t docs = FLORA_DOCS_INIT;
   int failures = 0;
   int64_t n = 0, n_modified = 0;

   snprintf(path, sizeof path, "%s/conformance/opendocdb-cts/update/%s", shared, rel);
   file = load_json(path);
   assert_true(bson_iter_init_find(&it, file, "cases"));
   bson_iter_recurse(&it, &step);
   /* step 1: the update */
   assert_true(bson_iter_next(&step));
   {
      bson_t s;
      const uint8_t *data;
      uint32_t len;
      bson_iter_document(&step, &len, &data);
      bson_init_static(&s, data, len);
      get_doc(&s, "request", &req);
      get_doc(&s, "response", &resp);
   }
   coll = get_str(&req, "update");
   fixture = load_fixture(shared, coll);
   get_doc(fixture, "cases", &fixture_arr);
   bson_iter_init(&it, &fixture_arr);
   while (bson_iter_next(&it)) {
      bson_t d;
      const uint8_t *data;
      uint32_t len;
      bson_iter_document(&it, &len, &data);
      bson_init_static(&d, data, len);
      flora_docs_append_copy(&docs, &d);
   }
   get_doc(&req, "updates", &updates);
   bson_iter_init(&ui, &updates);
   while (bson_iter_next(&ui)) {
      const uint8_t *data;
      uint32_t len;
      bson_t filters;
      bool has_filters, upsert, multi;
      flora_error_t error;
      flora_matcher_t *m;
      flora_update_t *cu;
      bool any = false;

      bson_iter_document(&ui, &len, &data);
      bson_init_static(&upd, data, len);
      get_doc(&upd, "q", &q);
      get_doc(&upd, "u", &u);
      has_filters = get_doc(&upd, "arrayFilters", &filters);
      upsert = bson_iter_init_find(&it, &upd, "upsert") && bson_iter_as_bool(&it);
      multi = bson_iter_init_find(&it, &upd, "multi") && bson_iter_as_bool(&it);
      m = flora_matcher_new(&q, &error);
      assert_non_null(m);
      cu = flora_update_new(&u, has_filters ? &filters : NULL, &error);
      if (!cu) {
         print_error("%s: compile: %s\n", rel, error.message);
         flora_matcher_destroy(m);
         failures++;
         continue;
      }
      for (size_t i = 0; i < docs.len; i++) {
         int pos = -1;
         bson_t out;
         bool modified;
         if (!flora_matcher_match(m, docs.items[i], &pos)) {
            continue;
         }
         any = true;
         n++;
         if (!flora_update_apply(cu, docs.items[i], false, pos, 0, &out, &modified, &error)) {
            print_error("%s: apply: %s\n", rel, error.message);
            failures++;
            bson_destroy(&out);
            continue;
         }
         if (modified) {
            n_modified++;
            bson_destroy(docs.items[i]);
            docs.items[i] = bson_copy(&out);
         }
         bson_destroy(&out);
         if (!multi) {
            break;
         }
      }
      if (!any && upsert) {
         bson_t seed, out;
         bool modified;
         assert_true(flora_update_upsert_seed(&q, &seed, &error));
         assert_true(flora_update_apply(cu, &seed, true, -1, 0, &out, &modified, &error));
         flora_docs_append_copy(&docs, &out);
         n++;
         bson_destroy(&seed);
         bson_destroy(&out);
      }
      flora_matcher_destroy(m);
      flora_update_destroy(cu);
   }
   if (get_int(&resp, "n", -1) != n || get_int(&resp, "nModified", -1) != n_modified) {
      print_error("%s: n %d nModified %d, expected %d %d\n", rel, (int) n, (int) n_modified,
                  (int) get_int(&resp, "n", -1), (int) get_int(&resp, "nModified", -1));
      failures++;
   }
   /* step 2: the find */
   assert_true(bson_iter_next(&step));
   {
      bson_t s, cursor, find_req;
      const uint8_t *data;
      uint32_t len;
      bson_iter_document(&step, &len, &data);
      bson_init_static(&s, data, len);
      get_doc(&s, "request", &find_req);
      if (get_doc(&find_req, "projection", &projection_doc)) {
         projection = &projection_doc;
      }
      get_doc(&s, "response", &find_resp);
      get_doc(&find_resp, "cursor", &cursor);
      get_doc(&cursor, "firstBatch", &batch);
   }
   if (projection) {
      /* the find projects its answer: project ours the same way */
      flora_error_t error;
      flora_projection_t *p = flora_projection_new(projection, &error);
      assert_non_null(p);
      for (size_t i = 0; i < docs.len; i++) {
         bson_t out;
         assert_true(flora_projection_apply(p, docs.items[i], NULL, &out, &error));
         bson_destroy(docs.items[i]);
         docs.items[i] = bson_copy(&out);
         bson_destroy(&out);
      }
      flora_projection_destroy(p);
   }
   bson_iter_init(&it, &batch);
   while (bson_iter_next(&it)) {
      bson_t want;
      const uint8_t *data;
      uint32_t len;
      bson_iter_t id;
      const bson_t *got;
      bson_iter_document(&it, &len, &data);
      bson_init_static(&want, data, len);
      bson_iter_init_find(&id, &want, "_id");
      got = find_by_id(&docs, bson_iter_value(&id));
      if (!got || !bson_equal(got, &want)) {
         char *a = got ? flora_test_str(got) : bson_strdup("(none)"), *e = flora_test_str(&want);
         print_error("%s:\n  actual:   %s\n  expected: %s\n", rel, a, e);
         bson_free(a);
         bson_free(e);
         failures++;
      }
   }
   flora_docs_clear(&docs);
   bson_destroy(fixture);
   bson_destroy(file);
   return failures;
}

static void
test_opendocdb(void **state)
{
   const char *shared = flora_test_shared_dir();
   static const char *files[] = {
      "field/set.json",        "field/unset.json",       "field/inc.json",
      "field/mul.json",        "field/min.json",         "field/rename.json",
      "field/setOnInsert.json", "array/push.json",       "array/addToSet.json",
      "array/pop.json",        "array/positional.json",  "array/positional-all.json",
      "array/positional-identifier.json", "bitwise/bit.json",
   };
   int failures = 0;

   (void) state;
   if (!shared) {
      flora_skip("../shared is absent (FLORA_SHARED_DIR): the OpenDocDB corpus is not replayed");
   }
   for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
      failures += replay_cts(shared, files[i]);
   }
   assert_int_equal(failures, 0);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_data_files),
      cmocka_unit_test(test_replacement_flag),
      cmocka_unit_test(test_reuse),
      cmocka_unit_test(test_current_date),
      cmocka_unit_test(test_idempotent_operators),
      cmocka_unit_test(test_opendocdb),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
