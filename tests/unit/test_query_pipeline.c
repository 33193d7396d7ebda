/* Aggregation pipelines (lib/query/pipeline.c).
 *
 * test_stage_cases runs tests/data/pipeline/stages.json: each case has input `docs`, a
 * `pipeline`, optional `foreign` collections for $lookup ({name: [docs]}) and `now`, and
 * either the expected output `expect` (compared field order included) or an error `code`
 * (at compile or run time).
 *
 * test_opendocdb_aggregation replays the OpenDocDB corpus recorded from real MongoDB
 * (../shared/conformance/opendocdb-cts/aggregation) over its fixtures: pipelines made only
 * of supported stages must give MongoDB's documents (field order ignored, as the corpus
 * states); pipelines using an unsupported stage ($out, $bucket, $currentOp) must fail to
 * compile with code 2. */
#include <dirent.h>

#include "flora_test.h"

#include "flora/query.h"

/* libbson's JSON parser reads a "$type" key as legacy extended JSON (binary subtype), so
 * the corpus' {$type: ...} operators are hidden from it under PLACEHOLDER and renamed
 * back after parsing. */
#define PLACEHOLDER "$flora_test_type"

static void
rename_type_keys(const bson_t *in, bson_t *out)
{
   bson_iter_t it;

   bson_iter_init(&it, in);
   while (bson_iter_next(&it)) {
      const char *key = strcmp(bson_iter_key(&it), PLACEHOLDER) == 0 ? "$type" : bson_iter_key(&it);
      if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
         bson_t sub, child;
         const uint8_t *data;
         uint32_t len;
         bool arr = BSON_ITER_HOLDS_ARRAY(&it);
         if (arr) {
            bson_iter_array(&it, &len, &data);
            bson_append_array_begin(out, key, -1, &child);
         } else {
            bson_iter_document(&it, &len, &data);
            bson_append_document_begin(out, key, -1, &child);
         }
         bson_init_static(&sub, data, len);
         rename_type_keys(&sub, &child);
         if (arr) {
            bson_append_array_end(out, &child);
         } else {
            bson_append_document_end(out, &child);
         }
      } else {
         bson_append_iter(out, key, -1, &it);
      }
   }
}

static char *
read_text(const char *path, const char *prefix, const char *suffix)
{
   FILE *f = fopen(path, "rb");
   size_t plen = strlen(prefix), slen = strlen(suffix);
   char *buf;
   long len;

   if (!f) {
      fail_msg("cannot open %s", path);
   }
   fseek(f, 0, SEEK_END);
   len = ftell(f);
   fseek(f, 0, SEEK_SET);
   buf = malloc(plen + (size_t) len + slen + 1);
   memcpy(buf, prefix, plen);
   assert_int_equal(fread(buf + plen, 1, (size_t) len, f), (size_t) len);
   memcpy(buf + plen + (size_t) len, suffix, slen + 1);
   fclose(f);
   return buf;
}

static bson_t *
parse_json_text(const char *path, const char *prefix, const char *suffix)
{
   char *text = read_text(path, prefix, suffix);
   bson_string_t *s = bson_string_new(NULL);
   bson_error_t err;
   bson_t *raw, *doc;

   for (const char *p = text; *p;) {
      const char *hit = strstr(p, "\"$type\"");
      if (!hit) {
         bson_string_append(s, p);
         break;
      }
      bson_string_append_printf(s, "%.*s\"" PLACEHOLDER "\"", (int) (hit - p), p);
      p = hit + 7;
   }
   raw = bson_new_from_json((const uint8_t *) s->str, (ssize_t) s->len, &err);
   if (!raw) {
      fail_msg("bad JSON in %s: %s", path, err.message);
   }
   doc = bson_new();
   rename_type_keys(raw, doc);
   bson_destroy(raw);
   bson_string_free(s, true);
   free(text);
   return doc;
}

static bson_t *
load_json_file(const char *path)
{
   return parse_json_text(path, "", "");
}

/* Reads a JSON array file (a fixture) as documents. */
static void
load_json_array(const char *path, flora_docs_t *out)
{
   bson_t *wrapped = parse_json_text(path, "{\"a\": ", "}");
   bson_iter_t it, arr;

   assert_true(bson_iter_init_find(&it, wrapped, "a"));
   bson_iter_recurse(&it, &arr);
   while (bson_iter_next(&arr)) {
      bson_t d;
      const uint8_t *data;
      uint32_t dl;
      bson_iter_document(&arr, &dl, &data);
      bson_init_static(&d, data, dl);
      flora_docs_append_copy(out, &d);
   }
   bson_destroy(wrapped);
}

/* Foreign collections for $lookup: name -> documents. */
typedef struct foreign {
   const char *names[4];
   flora_docs_t docs[4];
   size_t n;
   int calls;
} foreign_t;

/* The lookup callback an engine provides: {field: value} evaluated with the matcher. */
static bool
lookup_cb(void *ctx, const char *collection, const char *field, const bson_value_t *value,
          flora_docs_t *out, flora_error_t *error)
{
   foreign_t *fc = ctx;
   bson_t filter = BSON_INITIALIZER;
   flora_matcher_t *m;

   fc->calls++;
   bson_append_value(&filter, field, -1, value);
   m = flora_matcher_new(&filter, error);
   bson_destroy(&filter);
   if (!m) {
      return false;
   }
   for (size_t i = 0; i < fc->n; i++) {
      if (strcmp(fc->names[i], collection) != 0) {
         continue;
      }
      for (size_t j = 0; j < fc->docs[i].len; j++) {
         if (flora_matcher_match(m, fc->docs[i].items[j], NULL)) {
            flora_docs_append_copy(out, fc->docs[i].items[j]);
         }
      }
   }
   flora_matcher_destroy(m);
   return true;
}

static void
docs_from_array(bson_iter_t *it, flora_docs_t *out)
{
   bson_iter_t arr;

   bson_iter_recurse(it, &arr);
   while (bson_iter_next(&arr)) {
      bson_t d;
      const uint8_t *data;
      uint32_t len;
      assert_true(BSON_ITER_HOLDS_DOCUMENT(&arr));
      bson_iter_document(&arr, &len, &data);
      bson_init_static(&d, data, len);
      flora_docs_append_copy(out, &d);
   }
}

static void
array_of_iter(bson_iter_t *it, bson_t *out)
{
   const uint8_t *data;
   uint32_t len;

   bson_iter_array(it, &len, &data);
   bson_init_static(out, data, len);
}

static bson_t *
docs_as_array(const flora_docs_t *docs)
{
   bson_t *arr = bson_new();

   for (size_t i = 0; i < docs->len; i++) {
      char key[16];
      snprintf(key, sizeof key, "%u", (unsigned) i);
      bson_append_document(arr, key, -1, docs->items[i]);
   }
   return arr;
}

static void
test_stage_cases(void **state)
{
   char path[4096];
   const char *src = getenv("FLORA_SOURCE_DIR");
   bson_t *all;
   bson_iter_t it, cases;
   int failures = 0, n = 0;

   (void) state;
   snprintf(path, sizeof path, "%s/tests/data/pipeline/stages.json", src ? src : ".");
   all = load_json_file(path);
   assert_true(bson_iter_init_find(&it, all, "cases"));
   bson_iter_recurse(&it, &cases);
   while (bson_iter_next(&cases)) {
      bson_t c, pipeline;
      bson_iter_t f;
      const uint8_t *data;
      uint32_t len;
      const char *name = "?";
      flora_docs_t docs = FLORA_DOCS_INIT, out = FLORA_DOCS_INIT;
      foreign_t fc;
      flora_error_t error;
      flora_pipeline_t *p;
      int64_t now = 0;
      bool ok;

      memset(&fc, 0, sizeof fc);
      memset(&error, 0, sizeof error);
      n++;
      bson_iter_document(&cases, &len, &data);
      bson_init_static(&c, data, len);
      if (bson_iter_init_find(&f, &c, "name")) {
         name = bson_iter_utf8(&f, NULL);
      }
      if (bson_iter_init_find(&f, &c, "now")) {
         now = bson_iter_as_int64(&f);
      }
      if (bson_iter_init_find(&f, &c, "docs")) {
         docs_from_array(&f, &docs);
      }
      if (bson_iter_init_find(&f, &c, "foreign")) {
         bson_iter_t coll;
         bson_iter_recurse(&f, &coll);
         while (bson_iter_next(&coll) && fc.n < 4) {
            fc.names[fc.n] = bson_iter_key(&coll);
            docs_from_array(&coll, &fc.docs[fc.n]);
            fc.n++;
         }
      }
      assert_true(bson_iter_init_find(&f, &c, "pipeline"));
      array_of_iter(&f, &pipeline);
      p = flora_pipeline_new(&pipeline, &error);
      ok = p && flora_pipeline_run(p, 0, &docs, lookup_cb, &fc, now, &out, &error);
      if (bson_iter_init_find(&f, &c, "code")) {
         if (ok) {
            print_error("case %s: expected error %d, got success\n", name, bson_iter_int32(&f));
            failures++;
         } else if ((int32_t) error.code != bson_iter_int32(&f)) {
            print_error("case %s: expected error %d, got %u: %s\n", name, bson_iter_int32(&f),
                        error.code, error.message);
            failures++;
         }
      } else if (!ok) {
         print_error("case %s: unexpected error %u: %s\n", name, error.code, error.message);
         failures++;
      } else {
         bson_t want;
         bson_t *got = docs_as_array(&out);
         assert_true(bson_iter_init_find(&f, &c, "expect"));
         array_of_iter(&f, &want);
         if (!bson_equal(got, &want)) {
            char *g = bson_as_canonical_extended_json(got, NULL);
            char *w = bson_as_canonical_extended_json(&want, NULL);
            print_error("case %s:\n  got:  %s\n  want: %s\n", name, g, w);
            bson_free(g);
            bson_free(w);
            failures++;
         }
         bson_destroy(got);
      }
      flora_pipeline_destroy(p);
      flora_docs_clear(&docs);
      flora_docs_clear(&out);
      for (size_t i = 0; i < fc.n; i++) {
         flora_docs_clear(&fc.docs[i]);
      }
   }
   bson_destroy(all);
   print_message("%d pipeline cases, %d failed\n", n, failures);
   assert_int_equal(failures, 0);
   assert_true(n > 30);
}

/* A copy of doc with the fields of every embedded document sorted by name (arrays keep
 * their order), for the corpus' order-insensitive comparison. */
static void
normalize(const bson_t *doc, bson_t *out, bool is_array)
{
   bson_iter_t it;
   const char *keys[256];
   size_t n = 0;

   bson_iter_init(&it, doc);
   while (bson_iter_next(&it) && n < 256) {
      keys[n++] = bson_iter_key(&it);
   }
   if (!is_array) {
      for (size_t i = 1; i < n; i++) {
         for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
         }
      }
   }
   for (size_t i = 0; i < n; i++) {
      bson_iter_init_find(&it, doc, keys[i]);
      if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
         bson_t sub, child;
         const uint8_t *data;
         uint32_t len;
         bool arr = BSON_ITER_HOLDS_ARRAY(&it);
         if (arr) {
            bson_iter_array(&it, &len, &data);
            bson_append_array_begin(out, keys[i], -1, &child);
         } else {
            bson_iter_document(&it, &len, &data);
            bson_append_document_begin(out, keys[i], -1, &child);
         }
         bson_init_static(&sub, data, len);
         normalize(&sub, &child, arr);
         if (arr) {
            bson_append_array_end(out, &child);
         } else {
            bson_append_document_end(out, &child);
         }
      } else {
         bson_append_iter(out, keys[i], -1, &it);
      }
   }
}

static bool
pipeline_uses(const bson_t *pipeline, const char *stage)
{
   bson_iter_t it, s;

   bson_iter_init(&it, pipeline);
   while (bson_iter_next(&it)) {
      if (bson_iter_recurse(&it, &s) && bson_iter_next(&s) && strcmp(bson_iter_key(&s), stage) == 0) {
         return true;
      }
   }
   return false;
}

static void
run_corpus_file(const char *path, foreign_t *fc, int *ran, int *failures)
{
   bson_t *file = load_json_file(path);
   bson_iter_t tc;

   bson_iter_init(&tc, file);
   while (bson_iter_next(&tc)) {
      bson_iter_t f, g;
      bson_t req, resp, pipeline, batch;
      const uint8_t *data;
      uint32_t len;
      flora_docs_t docs = FLORA_DOCS_INIT, out = FLORA_DOCS_INIT;
      flora_pipeline_t *p;
      flora_error_t error;
      const char *coll = NULL;
      bool unsupported;

      memset(&error, 0, sizeof error);
      assert_true(bson_iter_recurse(&tc, &f) && bson_iter_find(&f, "request"));
      bson_iter_document(&f, &len, &data);
      bson_init_static(&req, data, len);
      if (!bson_iter_init_find(&g, &req, "pipeline")) {
         continue; /* a find request (the second half of the $out scenario) */
      }
      array_of_iter(&g, &pipeline);
      if (bson_iter_init_find(&g, &req, "aggregate") && BSON_ITER_HOLDS_UTF8(&g)) {
         coll = bson_iter_utf8(&g, NULL);
      }
      unsupported = pipeline_uses(&pipeline, "$out") || pipeline_uses(&pipeline, "$bucket") ||
                    pipeline_uses(&pipeline, "$currentOp");
      p = flora_pipeline_new(&pipeline, &error);
      (*ran)++;
      if (unsupported) {
         if (p || error.code != 2) {
            print_error("%s %s: unsupported stage must fail with code 2 (got %u: %s)\n", path,
                        bson_iter_key(&tc), error.code, error.message);
            (*failures)++;
         }
         flora_pipeline_destroy(p);
         continue;
      }
      if (!p) {
         print_error("%s %s: compile failed: %s\n", path, bson_iter_key(&tc), error.message);
         (*failures)++;
         continue;
      }
      for (size_t i = 0; coll && i < fc->n; i++) {
         if (strcmp(fc->names[i], coll) == 0) {
            for (size_t j = 0; j < fc->docs[i].len; j++) {
               flora_docs_append_copy(&docs, fc->docs[i].items[j]);
            }
         }
      }
      assert_true(bson_iter_recurse(&tc, &f) && bson_iter_find(&f, "response"));
      bson_iter_document(&f, &len, &data);
      bson_init_static(&resp, data, len);
      assert_true(bson_iter_init_find(&g, &resp, "cursor"));
      {
         bson_iter_t fb;
         assert_true(bson_iter_recurse(&g, &fb) && bson_iter_find(&fb, "firstBatch"));
         array_of_iter(&fb, &batch);
      }
      if (!flora_pipeline_run(p, 0, &docs, lookup_cb, fc, 0, &out, &error)) {
         print_error("%s %s: run failed: %s\n", path, bson_iter_key(&tc), error.message);
         (*failures)++;
      } else {
         bson_t *got = docs_as_array(&out);
         bson_t gn = BSON_INITIALIZER, wn = BSON_INITIALIZER;
         normalize(got, &gn, true);
         normalize(&batch, &wn, true);
         if (!bson_equal(&gn, &wn)) {
            bson_iter_t ga, wa;
            bool more_g, more_w;
            bson_iter_init(&ga, &gn);
            bson_iter_init(&wa, &wn);
            print_error("%s %s: %u documents, MongoDB %u\n", path, bson_iter_key(&tc),
                        bson_count_keys(&gn), bson_count_keys(&wn));
            do {
               more_g = bson_iter_next(&ga);
               more_w = bson_iter_next(&wa);
               if (more_g && more_w &&
                   flora_value_compare(bson_iter_value(&ga), bson_iter_value(&wa)) == 0) {
                  bson_t x = BSON_INITIALIZER, y = BSON_INITIALIZER;
                  bson_append_value(&x, "v", 1, bson_iter_value(&ga));
                  bson_append_value(&y, "v", 1, bson_iter_value(&wa));
                  if (bson_equal(&x, &y)) {
                     bson_destroy(&x);
                     bson_destroy(&y);
                     continue;
                  }
                  bson_destroy(&x);
                  bson_destroy(&y);
               }
               if (more_g || more_w) {
                  bson_t x = BSON_INITIALIZER, y = BSON_INITIALIZER;
                  char *a, *b;
                  if (more_g) {
                     bson_append_value(&x, "got", 3, bson_iter_value(&ga));
                  }
                  if (more_w) {
                     bson_append_value(&y, "want", 4, bson_iter_value(&wa));
                  }
                  a = bson_as_canonical_extended_json(&x, NULL);
                  b = bson_as_canonical_extended_json(&y, NULL);
                  print_error("  %s\n  %s\n", a, b);
                  bson_free(a);
                  bson_free(b);
                  bson_destroy(&x);
                  bson_destroy(&y);
               }
            } while (more_g || more_w);
            (*failures)++;
         }
         bson_destroy(&gn);
         bson_destroy(&wn);
         bson_destroy(got);
      }
      flora_docs_clear(&docs);
      flora_docs_clear(&out);
      flora_pipeline_destroy(p);
   }
   bson_destroy(file);
}

static void
test_opendocdb_aggregation(void **state)
{
   const char *shared = flora_test_shared_dir();
   const char *subdirs[] = {"stages", "operators"};
   char path[4096];
   foreign_t fc;
   int ran = 0, failures = 0;

   (void) state;
   if (!shared) {
      flora_skip("FLORA_SHARED_DIR (../shared) is absent: the OpenDocDB corpus is not available");
   }
   memset(&fc, 0, sizeof fc);
   fc.names[0] = "values";
   fc.names[1] = "composites";
   fc.n = 2;
   snprintf(path, sizeof path, "%s/conformance/opendocdb-cts/values.fixture.json", shared);
   load_json_array(path, &fc.docs[0]);
   snprintf(path, sizeof path, "%s/conformance/opendocdb-cts/composites.fixture.json", shared);
   load_json_array(path, &fc.docs[1]);
   for (size_t d = 0; d < 2; d++) {
      DIR *dir;
      struct dirent *ent;
      snprintf(path, sizeof path, "%s/conformance/opendocdb-cts/aggregation/%s", shared, subdirs[d]);
      dir = opendir(path);
      assert_non_null(dir);
      while ((ent = readdir(dir)) != NULL) {
         char file[4600];
         size_t l = strlen(ent->d_name);
         if (l < 6 || strcmp(ent->d_name + l - 5, ".json") != 0) {
            continue;
         }
         snprintf(file, sizeof file, "%s/%s", path, ent->d_name);
         run_corpus_file(file, &fc, &ran, &failures);
      }
      closedir(dir);
   }
   for (size_t i = 0; i < fc.n; i++) {
      flora_docs_clear(&fc.docs[i]);
   }
   print_message("%d OpenDocDB aggregation cases, %d failed\n", ran, failures);
   assert_int_equal(failures, 0);
   assert_true(ran >= 10);
}

/* The prefix an engine may run with an index: a leading $match, then $sort. */
static void
test_prefix(void **state)
{
   bson_t *spec = J("[{'$match': {'a': 1}}, {'$sort': {'b': -1}}, {'$limit': 2}]");
   bson_t *spec2 = J("[{'$sortByCount': '$a'}]");
   bson_t *m_expect = J("{'a': 1}"), *s_expect = J("{'b': -1}");
   bson_t *in1 = J("{'_id': 1, 'a': 1, 'b': 1}"), *in2 = J("{'_id': 2, 'a': 1, 'b': 5}");
   const bson_t *m = NULL, *s = NULL;
   flora_error_t error;
   flora_pipeline_t *p = flora_pipeline_new(spec, &error);
   flora_docs_t docs = FLORA_DOCS_INIT, out = FLORA_DOCS_INIT;

   (void) state;
   assert_non_null(p);
   assert_int_equal(flora_pipeline_prefix(p, &m, &s), 2);
   assert_bson_equal(m, m_expect);
   assert_bson_equal(s, s_expect);
   /* the engine ran $match and $sort itself: only $limit remains */
   flora_docs_append_copy(&docs, in2);
   flora_docs_append_copy(&docs, in1);
   flora_docs_append_copy(&docs, in1);
   assert_true(flora_pipeline_run(p, 2, &docs, NULL, NULL, 0, &out, &error));
   assert_int_equal(docs.len, 0);
   assert_int_equal(out.len, 2);
   assert_bson_equal(out.items[0], in2);
   flora_pipeline_destroy(p);
   p = flora_pipeline_new(spec2, &error);
   assert_non_null(p);
   assert_int_equal(flora_pipeline_prefix(p, &m, &s), 0);
   assert_null(m);
   assert_null(s);
   flora_pipeline_destroy(p);
   flora_pipeline_destroy(NULL);
   flora_docs_clear(&out);
   bson_destroy(spec);
   bson_destroy(spec2);
   bson_destroy(m_expect);
   bson_destroy(s_expect);
   bson_destroy(in1);
   bson_destroy(in2);
}

static bool
failing_lookup(void *ctx, const char *collection, const char *field, const bson_value_t *value,
               flora_docs_t *out, flora_error_t *error)
{
   (void) ctx;
   (void) field;
   (void) value;
   (void) out;
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_CONNECTION, "%s: engine unreachable",
                   collection);
   return false;
}

/* Errors from the engine's lookup and from expressions come back unchanged; the input is
 * consumed and *out is left as it was. */
static void
test_errors_propagate(void **state)
{
   bson_t *spec = J("[{'$lookup': {'from': 'users', 'localField': 'u', 'foreignField': '_id', 'as': 'x'}}]");
   bson_t *spec2 = J("[{'$set': {'d': {'$divide': ['$a', '$b']}}}]");
   bson_t *doc = J("{'_id': 1, 'u': 'u1', 'a': 1, 'b': 0}");
   bson_t *prior = J("{'kept': true}");
   flora_docs_t docs = FLORA_DOCS_INIT, out = FLORA_DOCS_INIT;
   flora_error_t error;
   flora_pipeline_t *p = flora_pipeline_new(spec, &error);

   (void) state;
   assert_non_null(p);
   flora_docs_append_copy(&out, prior);
   flora_docs_append_copy(&docs, doc);
   assert_false(flora_pipeline_run(p, 0, &docs, failing_lookup, NULL, 0, &out, &error));
   assert_int_equal(error.code, FLORA_STORE_CONNECTION);
   assert_string_equal(error.message, "users: engine unreachable");
   assert_int_equal(docs.len, 0);
   assert_int_equal(out.len, 1);
   assert_bson_equal(out.items[0], prior);
   flora_pipeline_destroy(p);

   p = flora_pipeline_new(spec2, &error);
   assert_non_null(p);
   flora_docs_append_copy(&docs, doc);
   assert_false(flora_pipeline_run(p, 0, &docs, NULL, NULL, 0, &out, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_STORE);
   assert_int_equal(error.code, FLORA_STORE_BAD_VALUE);
   assert_string_equal(error.message, "can't $divide by zero");
   assert_int_equal(out.len, 1);
   flora_pipeline_destroy(p);

   flora_docs_clear(&out);
   bson_destroy(spec);
   bson_destroy(spec2);
   bson_destroy(doc);
   bson_destroy(prior);
}

/* $$NOW is the now_ms the caller passes, the same for every document. */
static void
test_now(void **state)
{
   bson_t *spec = J("[{'$project': {'_id': 0, 'at': '$$NOW', 'age': {'$subtract': ['$$NOW', '$t']}}}]");
   bson_t *doc = J("{'t': {'$date': {'$numberLong': '1000'}}}");
   bson_t *want = J("{'at': {'$date': {'$numberLong': '5000'}}, 'age': {'$numberLong': '4000'}}");
   flora_docs_t docs = FLORA_DOCS_INIT, out = FLORA_DOCS_INIT;
   flora_error_t error;
   flora_pipeline_t *p = flora_pipeline_new(spec, &error);

   (void) state;
   assert_non_null(p);
   flora_docs_append_copy(&docs, doc);
   flora_docs_append_copy(&docs, doc);
   assert_true(flora_pipeline_run(p, 0, &docs, NULL, NULL, 5000, &out, &error));
   assert_int_equal(out.len, 2);
   assert_bson_equal(out.items[0], want);
   assert_bson_equal(out.items[1], want);
   flora_pipeline_destroy(p);
   flora_docs_clear(&out);
   bson_destroy(spec);
   bson_destroy(doc);
   bson_destroy(want);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stage_cases),
      cmocka_unit_test(test_opendocdb_aggregation),
      cmocka_unit_test(test_prefix),
      cmocka_unit_test(test_errors_propagate),
      cmocka_unit_test(test_now),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
