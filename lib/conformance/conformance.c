/* The OpenDocDB CTS runner and its reply comparison (include/flora/conformance.h). */
#include "flora/conformance.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flora/query.h"
#include "flora/store.h"

#define FIXTURE_SUFFIX ".fixture.json"
#define DB_PLACEHOLDER "{{.Database}}"
#define DEFAULT_URI "sqlite::memory:"

/* ---- comparison ----------------------------------------------------------------------- */

static const char *
type_name(bson_type_t type)
{
   const char *name = flora_value_type_name(type);

   return name ? name : "unknown";
}

/* The canonical Extended JSON of one value, shortened, into buf. */
static void
describe(const bson_iter_t *it, char *buf, size_t len)
{
   bson_t tmp = BSON_INITIALIZER;
   char *json;
   const char *start;
   size_t n;

   bson_append_iter(&tmp, "v", 1, it);
   json = bson_as_canonical_extended_json(&tmp, NULL);
   bson_destroy(&tmp);
   if (!json) {
      snprintf(buf, len, "%s ?", type_name(bson_iter_type(it)));
      return;
   }
   start = strstr(json, "\"v\" : ");
   start = start ? start + 6 : json;
   n = strlen(start);
   if (n >= 2 && strcmp(start + n - 2, " }") == 0) {
      n -= 2;
   }
   if (n > 120) {
      snprintf(buf, len, "%.117s...", start);
   } else {
      snprintf(buf, len, "%.*s", (int) n, start);
   }
   bson_free(json);
}

static bool
doubles_equal(double a, double b)
{
   if (isnan(a) || isnan(b)) {
      return isnan(a) && isnan(b);
   }
   return a == b && signbit(a) == signbit(b);
}

static bool compare_docs(const bson_t *actual, const bson_t *expected, bool is_array,
                         const char *path, char *diff, size_t diff_len);

static void
child_path(char *out, size_t len, const char *path, const char *key)
{
   if (path[0]) {
      snprintf(out, len, "%s.%s", path, key);
   } else {
      snprintf(out, len, "%s", key);
   }
}

static void
view(const bson_iter_t *it, bson_t *out)
{
   const uint8_t *data = NULL;
   uint32_t len = 0;

   if (BSON_ITER_HOLDS_ARRAY(it)) {
      bson_iter_array(it, &len, &data);
   } else {
      bson_iter_document(it, &len, &data);
   }
   if (!data || !bson_init_static(out, data, len)) {
      bson_init(out);
   }
}

static bool
compare_values(const bson_iter_t *a, const bson_iter_t *e, const char *path, char *diff,
               size_t diff_len)
{
   const bson_value_t *va = bson_iter_value((bson_iter_t *) a);
   const bson_value_t *ve = bson_iter_value((bson_iter_t *) e);
   bool equal = false;

   if (va->value_type != ve->value_type) {
      goto different;
   }
   switch (ve->value_type) {
   case BSON_TYPE_DOCUMENT:
   case BSON_TYPE_ARRAY: {
      bson_t da, de;

      view(a, &da);
      view(e, &de);
      return compare_docs(&da, &de, ve->value_type == BSON_TYPE_ARRAY, path, diff, diff_len);
   }
   case BSON_TYPE_DOUBLE:
      equal = doubles_equal(va->value.v_double, ve->value.v_double);
      break;
   case BSON_TYPE_DECIMAL128: {
      char sa[BSON_DECIMAL128_STRING], se[BSON_DECIMAL128_STRING];

      bson_decimal128_to_string(&va->value.v_decimal128, sa);
      bson_decimal128_to_string(&ve->value.v_decimal128, se);
      equal = strcmp(sa, se) == 0;
      break;
   }
   case BSON_TYPE_INT32:
      equal = va->value.v_int32 == ve->value.v_int32;
      break;
   case BSON_TYPE_INT64:
      equal = va->value.v_int64 == ve->value.v_int64;
      break;
   case BSON_TYPE_BOOL:
      equal = va->value.v_bool == ve->value.v_bool;
      break;
   case BSON_TYPE_DATE_TIME:
      equal = va->value.v_datetime == ve->value.v_datetime;
      break;
   case BSON_TYPE_UTF8:
      equal = va->value.v_utf8.len == ve->value.v_utf8.len &&
              memcmp(va->value.v_utf8.str, ve->value.v_utf8.str, ve->value.v_utf8.len) == 0;
      break;
   case BSON_TYPE_SYMBOL:
      equal = va->value.v_symbol.len == ve->value.v_symbol.len &&
              memcmp(va->value.v_symbol.symbol, ve->value.v_symbol.symbol,
                     ve->value.v_symbol.len) == 0;
      break;
   case BSON_TYPE_CODE:
      equal = va->value.v_code.code_len == ve->value.v_code.code_len &&
              memcmp(va->value.v_code.code, ve->value.v_code.code, ve->value.v_code.code_len) ==
                 0;
      break;
   case BSON_TYPE_OID:
      equal = bson_oid_equal(&va->value.v_oid, &ve->value.v_oid);
      break;
   case BSON_TYPE_BINARY:
      equal = va->value.v_binary.subtype == ve->value.v_binary.subtype &&
              va->value.v_binary.data_len == ve->value.v_binary.data_len &&
              (ve->value.v_binary.data_len == 0 ||
               memcmp(va->value.v_binary.data, ve->value.v_binary.data,
                      ve->value.v_binary.data_len) == 0);
      break;
   case BSON_TYPE_REGEX:
      equal = strcmp(va->value.v_regex.regex, ve->value.v_regex.regex) == 0 &&
              strcmp(va->value.v_regex.options ? va->value.v_regex.options : "",
                     ve->value.v_regex.options ? ve->value.v_regex.options : "") == 0;
      break;
   case BSON_TYPE_TIMESTAMP:
      equal = va->value.v_timestamp.timestamp == ve->value.v_timestamp.timestamp &&
              va->value.v_timestamp.increment == ve->value.v_timestamp.increment;
      break;
   case BSON_TYPE_DBPOINTER:
      equal = va->value.v_dbpointer.collection_len == ve->value.v_dbpointer.collection_len &&
              memcmp(va->value.v_dbpointer.collection, ve->value.v_dbpointer.collection,
                     ve->value.v_dbpointer.collection_len) == 0 &&
              bson_oid_equal(&va->value.v_dbpointer.oid, &ve->value.v_dbpointer.oid);
      break;
   case BSON_TYPE_CODEWSCOPE: {
      bson_t sa, se;

      equal = va->value.v_codewscope.code_len == ve->value.v_codewscope.code_len &&
              memcmp(va->value.v_codewscope.code, ve->value.v_codewscope.code,
                     ve->value.v_codewscope.code_len) == 0 &&
              bson_init_static(&sa, va->value.v_codewscope.scope_data,
                               va->value.v_codewscope.scope_len) &&
              bson_init_static(&se, ve->value.v_codewscope.scope_data,
                               ve->value.v_codewscope.scope_len) &&
              compare_docs(&sa, &se, false, path, diff, diff_len);
      break;
   }
   case BSON_TYPE_NULL:
   case BSON_TYPE_UNDEFINED:
   case BSON_TYPE_MINKEY:
   case BSON_TYPE_MAXKEY:
      equal = true;
      break;
   default:
      equal = false;
      break;
   }
   if (equal) {
      return true;
   }
different: {
   char da[160], de[160];

   describe(a, da, sizeof da);
   describe(e, de, sizeof de);
   snprintf(diff, diff_len, "%s: expected %s %s, got %s %s", path[0] ? path : "(reply)",
            type_name(ve->value_type), de, type_name(va->value_type), da);
}
   return false;
}

static bool
compare_docs(const bson_t *actual, const bson_t *expected, bool is_array, const char *path,
             char *diff, size_t diff_len)
{
   bson_iter_t ie, ia;
   char sub[512];
   uint32_t n_expected = 0, n_actual = bson_count_keys(actual);

   if (!bson_iter_init(&ie, expected)) {
      snprintf(diff, diff_len, "%s: the expected document is not valid BSON", path);
      return false;
   }
   if (is_array) {
      if (!bson_iter_init(&ia, actual)) {
         snprintf(diff, diff_len, "%s: the reply is not valid BSON", path);
         return false;
      }
      while (bson_iter_next(&ie)) {
         child_path(sub, sizeof sub, path, bson_iter_key(&ie));
         if (!bson_iter_next(&ia)) {
            snprintf(diff, diff_len, "%s: expected %u elements, got %u", path[0] ? path : "(reply)",
                     bson_count_keys(expected), n_actual);
            return false;
         }
         if (!compare_values(&ia, &ie, sub, diff, diff_len)) {
            return false;
         }
      }
      if (bson_iter_next(&ia)) {
         snprintf(diff, diff_len, "%s: expected %u elements, got %u", path[0] ? path : "(reply)",
                  bson_count_keys(expected), n_actual);
         return false;
      }
      return true;
   }
   while (bson_iter_next(&ie)) {
      n_expected++;
      child_path(sub, sizeof sub, path, bson_iter_key(&ie));
      if (!bson_iter_init_find(&ia, actual, bson_iter_key(&ie))) {
         snprintf(diff, diff_len, "%s: missing", sub);
         return false;
      }
      if (!compare_values(&ia, &ie, sub, diff, diff_len)) {
         return false;
      }
   }
   if (n_actual != n_expected && bson_iter_init(&ia, actual)) {
      while (bson_iter_next(&ia)) {
         if (!bson_has_field(expected, bson_iter_key(&ia))) {
            char value[160];

            child_path(sub, sizeof sub, path, bson_iter_key(&ia));
            describe(&ia, value, sizeof value);
            snprintf(diff, diff_len, "%s: unexpected field (%s)", sub, value);
            return false;
         }
      }
      snprintf(diff, diff_len, "%s: expected %u fields, got %u", path[0] ? path : "(reply)",
               n_expected, n_actual);
      return false;
   }
   return true;
}

bool
flora_conformance_compare(const bson_t *actual, const bson_t *expected, char *diff,
                          size_t diff_len)
{
   char scratch[8];

   FLORA_ASSERT_ARG(actual);
   FLORA_ASSERT_ARG(expected);
   if (!diff || diff_len == 0) {
      diff = scratch;
      diff_len = sizeof scratch;
   }
   diff[0] = '\0';
   return compare_docs(actual, expected, false, "", diff, diff_len);
}

/* ---- files ------------------------------------------------------------------------------ */

typedef struct paths {
   char **items;
   size_t len, cap;
} paths_t;

static void
paths_add(paths_t *p, const char *path)
{
   if (p->len == p->cap) {
      p->cap = p->cap ? p->cap * 2 : 32;
      p->items = bson_realloc(p->items, p->cap * sizeof *p->items);
   }
   p->items[p->len++] = bson_strdup(path);
}

static void
paths_free(paths_t *p)
{
   for (size_t i = 0; i < p->len; i++) {
      bson_free(p->items[i]);
   }
   bson_free(p->items);
   p->items = NULL;
   p->len = p->cap = 0;
}

static int
compare_strings(const void *a, const void *b)
{
   return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool
ends_with(const char *s, const char *suffix)
{
   size_t n = strlen(s), m = strlen(suffix);

   return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Collects suite files (relative paths) under root/rel, recursively. */
static bool
collect_suites(const char *root, const char *rel, paths_t *out, flora_error_t *error)
{
   char dir_path[4096], child_rel[4096], child_abs[4096];
   DIR *dir;
   struct dirent *entry;
   struct stat st;
   int n;

   n = snprintf(dir_path, sizeof dir_path, "%s%s%s", root, rel[0] ? "/" : "", rel);
   if (n < 0 || (size_t) n >= sizeof dir_path) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_INVALID, "path too long under %s", root);
      return false;
   }
   dir = opendir(dir_path);
   if (!dir) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_NOT_FOUND, "cannot open %s: %s",
                      dir_path, strerror(errno));
      return false;
   }
   while ((entry = readdir(dir)) != NULL) {
      if (entry->d_name[0] == '.') {
         continue;
      }
      n = snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, rel[0] ? "/" : "", entry->d_name);
      if (n < 0 || (size_t) n >= sizeof child_rel) {
         continue;
      }
      n = snprintf(child_abs, sizeof child_abs, "%s/%s", root, child_rel);
      if (n < 0 || (size_t) n >= sizeof child_abs || stat(child_abs, &st) != 0) {
         continue;
      }
      if (S_ISDIR(st.st_mode)) {
         if (!collect_suites(root, child_rel, out, error)) {
            closedir(dir);
            return false;
         }
      } else if (S_ISREG(st.st_mode) && ends_with(entry->d_name, ".json") &&
                 !ends_with(entry->d_name, FIXTURE_SUFFIX)) {
         paths_add(out, child_rel);
      }
   }
   closedir(dir);
   return true;
}

/* The fixture names (collection names) at the root of dir. */
static bool
collect_fixtures(const char *root, paths_t *out, flora_error_t *error)
{
   DIR *dir = opendir(root);
   struct dirent *entry;

   if (!dir) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_NOT_FOUND, "cannot open %s: %s", root,
                      strerror(errno));
      return false;
   }
   while ((entry = readdir(dir)) != NULL) {
      if (entry->d_name[0] != '.' && ends_with(entry->d_name, FIXTURE_SUFFIX)) {
         char name[256];
         size_t n = strlen(entry->d_name) - strlen(FIXTURE_SUFFIX);

         snprintf(name, sizeof name, "%.*s", (int) n, entry->d_name);
         paths_add(out, name);
      }
   }
   closedir(dir);
   if (out->len > 1) { /* qsort of an empty list would take a NULL base */
      qsort(out->items, out->len, sizeof *out->items, compare_strings);
   }
   return true;
}

static char *
read_file(const char *path, flora_error_t *error)
{
   FILE *f = fopen(path, "rb");
   char *buf = NULL;
   size_t len = 0, cap = 0, n;

   if (!f) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_NOT_FOUND, "cannot open %s: %s", path,
                      strerror(errno));
      return NULL;
   }
   do {
      if (cap - len < 65536) {
         cap = cap ? cap * 2 : 131072;
         buf = bson_realloc(buf, cap + 1);
      }
      n = fread(buf + len, 1, cap - len, f);
      len += n;
   } while (n > 0);
   if (ferror(f)) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "cannot read %s", path);
      bson_free(buf);
      fclose(f);
      return NULL;
   }
   fclose(f);
   buf[len] = '\0';
   return buf;
}

/* text with every occurrence of from replaced by to (new string). */
static char *
replace_all(const char *text, const char *from, const char *to)
{
   size_t from_len = strlen(from), to_len = strlen(to), count = 0;
   const char *p = text, *hit;
   char *out, *w;

   while ((hit = strstr(p, from)) != NULL) {
      count++;
      p = hit + from_len;
   }
   out = bson_malloc(strlen(text) + count * (to_len > from_len ? to_len - from_len : 0) + 1);
   w = out;
   p = text;
   while ((hit = strstr(p, from)) != NULL) {
      memcpy(w, p, (size_t) (hit - p));
      w += hit - p;
      memcpy(w, to, to_len);
      w += to_len;
      p = hit + from_len;
   }
   memcpy(w, p, strlen(p) + 1);
   return out;
}

/* Query operators that libbson's JSON reader takes for legacy Extended JSON ($type for
 * binary, $regex/$options for regular expressions) are renamed before parsing and renamed
 * back in the parsed document; the CTS itself uses only canonical v2 forms. */
static const char *const legacy_keys[][2] = {
   {"\"$type\"", "\"$flora_cts_type\""},
   {"\"$regex\"", "\"$flora_cts_regex\""},
   {"\"$options\"", "\"$flora_cts_options\""},
};

static const char *
restored_key(const char *key)
{
   for (size_t i = 0; i < sizeof legacy_keys / sizeof legacy_keys[0]; i++) {
      size_t n = strlen(legacy_keys[i][1]) - 2;

      if (strlen(key) == n && strncmp(key, legacy_keys[i][1] + 1, n) == 0) {
         return NULL; /* caller uses the index below */
      }
   }
   return key;
}

static void
restore_keys(const bson_t *src, bson_t *dst)
{
   bson_iter_t it;

   if (!bson_iter_init(&it, src)) {
      return;
   }
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      char original[32];

      if (!restored_key(key)) {
         for (size_t i = 0; i < sizeof legacy_keys / sizeof legacy_keys[0]; i++) {
            size_t n = strlen(legacy_keys[i][1]) - 2;

            if (strlen(key) == n && strncmp(key, legacy_keys[i][1] + 1, n) == 0) {
               snprintf(original, sizeof original, "%.*s", (int) (strlen(legacy_keys[i][0]) - 2),
                        legacy_keys[i][0] + 1);
               key = original;
            }
         }
      }
      if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
         bson_t child, sub;
         bool is_array = BSON_ITER_HOLDS_ARRAY(&it);

         view(&it, &sub);
         if (is_array) {
            bson_append_array_begin(dst, key, -1, &child);
            restore_keys(&sub, &child);
            bson_append_array_end(dst, &child);
         } else {
            bson_append_document_begin(dst, key, -1, &child);
            restore_keys(&sub, &child);
            bson_append_document_end(dst, &child);
         }
      } else {
         bson_append_iter(dst, key, -1, &it);
      }
   }
}

static bson_t *
parse_json(const char *text, const char *path, flora_error_t *error)
{
   bson_error_t err;
   bson_t *doc = NULL, *restored = NULL;
   char *renamed = bson_strdup(text);

   for (size_t i = 0; i < sizeof legacy_keys / sizeof legacy_keys[0]; i++) {
      char *next = replace_all(renamed, legacy_keys[i][0], legacy_keys[i][1]);

      bson_free(renamed);
      renamed = next;
   }
   doc = bson_new_from_json((const uint8_t *) renamed, -1, &err);
   bson_free(renamed);
   if (!doc) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "%s: bad Extended JSON: %s",
                      path, err.message);
      return NULL;
   }
   restored = bson_new();
   restore_keys(doc, restored);
   bson_destroy(doc);
   return restored;
}

/* ---- the runner ---------------------------------------------------------------------------- */

typedef struct runner {
   const char *dir;
   const char *uri;
   flora_conformance_report_fn report;
   void *ctx;
   flora_conformance_totals_t *totals;
   paths_t fixtures;
   flora_store_t *shared_store; /* mongodb: one store, a database per file */
   unsigned file_no;
} runner_t;

static void
emit(runner_t *r, flora_conformance_outcome_t outcome, const char *path, const char *name,
     const char *detail)
{
   switch (outcome) {
   case FLORA_CONFORMANCE_PASS:
      r->totals->passed++;
      break;
   case FLORA_CONFORMANCE_FAIL:
      r->totals->failed++;
      break;
   case FLORA_CONFORMANCE_UNSUPPORTED:
      r->totals->unsupported++;
      break;
   }
   if (r->report) {
      r->report(r->ctx, outcome, path, name, detail);
   }
}

static bool
says_unsupported(const char *msg)
{
   return msg && (strcasestr(msg, "unsupported") || strcasestr(msg, "not supported"));
}

/* "unsupported" refusals: {ok: 0, code: 2, errmsg: "...unsupported..."} or such a write
 * error. Writes the message into why. */
static bool
is_unsupported(const bson_t *reply, char *why, size_t why_len)
{
   bson_iter_t it, errors, we, field;
   int32_t code = 0;
   const char *msg = NULL;

   if (bson_iter_init_find(&it, reply, "code") && BSON_ITER_HOLDS_NUMBER(&it)) {
      code = (int32_t) bson_iter_as_int64(&it);
   }
   if (bson_iter_init_find(&it, reply, "errmsg") && BSON_ITER_HOLDS_UTF8(&it)) {
      msg = bson_iter_utf8(&it, NULL);
   }
   if (code == 2 && says_unsupported(msg)) {
      snprintf(why, why_len, "%s", msg);
      return true;
   }
   if (bson_iter_init_find(&it, reply, "writeErrors") && bson_iter_recurse(&it, &errors)) {
      while (bson_iter_next(&errors)) {
         if (!BSON_ITER_HOLDS_DOCUMENT(&errors) || !bson_iter_recurse(&errors, &we)) {
            continue;
         }
         code = 0;
         msg = NULL;
         while (bson_iter_next(&we)) {
            field = we;
            if (strcmp(bson_iter_key(&field), "code") == 0 && BSON_ITER_HOLDS_NUMBER(&field)) {
               code = (int32_t) bson_iter_as_int64(&field);
            } else if (strcmp(bson_iter_key(&field), "errmsg") == 0 &&
                       BSON_ITER_HOLDS_UTF8(&field)) {
               msg = bson_iter_utf8(&field, NULL);
            }
         }
         if (code == 2 && says_unsupported(msg)) {
            snprintf(why, why_len, "%s", msg);
            return true;
         }
      }
   }
   return false;
}

/* The reply without what a real server adds around the answer (cluster time, operation
 * time), when the recorded response has none of it. */
static void
strip_server_fields(const bson_t *reply, const bson_t *expected, bson_t *out)
{
   static const char *const extra[] = {"$clusterTime", "operationTime", "electionId", "opTime",
                                       NULL};
   bson_iter_t it;

   bson_init(out);
   if (!bson_iter_init(&it, reply)) {
      return;
   }
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      bool skip = false;

      for (const char *const *e = extra; *e; e++) {
         if (strcmp(*e, key) == 0 && !bson_has_field(expected, key)) {
            skip = true;
         }
      }
      if (!skip) {
         bson_append_iter(out, key, -1, &it);
      }
   }
}

/* Loads the fixture `name` into the suite's database. */
static bool
load_fixture(runner_t *r, flora_store_t *store, const char *db, const char *name, char *why,
             size_t why_len)
{
   char path[4096];
   flora_error_t err;
   char *text = NULL;
   bson_t *docs = NULL, cmd = BSON_INITIALIZER, reply;
   bson_iter_t it;
   bool ok = false;

   bson_init(&reply);
   flora_error_clear(&err);
   snprintf(path, sizeof path, "%s/%s%s", r->dir, name, FIXTURE_SUFFIX);
   text = read_file(path, &err);
   docs = text ? parse_json(text, path, &err) : NULL;
   if (!docs) {
      snprintf(why, why_len, "fixture %s: %s", name, err.message);
      goto cleanup;
   }
   BSON_APPEND_UTF8(&cmd, "insert", name);
   BSON_APPEND_ARRAY(&cmd, "documents", docs);
   BSON_APPEND_UTF8(&cmd, "$db", db);
   bson_destroy(&reply);
   if (!flora_store_command(store, &cmd, &reply, &err)) {
      snprintf(why, why_len, "fixture %s: %s", name, err.message);
      goto cleanup;
   }
   if (bson_iter_init_find(&it, &reply, "writeErrors")) {
      char *json = bson_as_relaxed_extended_json(&reply, NULL);

      snprintf(why, why_len, "fixture %s: %s", name, json ? json : "write errors");
      bson_free(json);
      goto cleanup;
   }
   ok = true;
cleanup:
   bson_free(text);
   if (docs) {
      bson_destroy(docs);
   }
   bson_destroy(&cmd);
   bson_destroy(&reply);
   return ok;
}

/* A store with an empty database for one suite file. */
static bool
suite_store(runner_t *r, flora_store_t **out, char *db, size_t db_len, flora_error_t *error)
{
   bson_t names;
   bson_iter_t it;

   r->file_no++;
   if (r->shared_store) {
      snprintf(db, db_len, "flora_cts_%ld_%u", (long) getpid(), r->file_no);
      *out = r->shared_store;
      return true;
   }
   /* The embedded engine has one database, named "flora" in its messages. */
   snprintf(db, db_len, "flora");
   if (!flora_store_open(out, r->uri, NULL, error)) {
      return false;
   }
   if (!flora_store_list_collections(*out, &names, error)) {
      bson_destroy(&names);
      flora_store_close(*out);
      *out = NULL;
      return false;
   }
   bson_iter_init(&it, &names);
   while (bson_iter_next(&it)) {
      if (BSON_ITER_HOLDS_UTF8(&it) &&
          !flora_store_drop_collection(*out, bson_iter_utf8(&it, NULL), error)) {
         bson_destroy(&names);
         flora_store_close(*out);
         *out = NULL;
         return false;
      }
   }
   bson_destroy(&names);
   return true;
}

static void
suite_done(runner_t *r, flora_store_t *store, const char *db)
{
   bson_t cmd = BSON_INITIALIZER;

   if (store == r->shared_store) {
      BSON_APPEND_INT32(&cmd, "dropDatabase", 1);
      BSON_APPEND_UTF8(&cmd, "$db", db);
      flora_store_command(store, &cmd, NULL, NULL);
      bson_destroy(&cmd);
      return;
   }
   bson_destroy(&cmd);
   flora_store_close(store);
}

static bool
run_suite(runner_t *r, const char *rel, flora_error_t *error)
{
   char path[4096], db[128], why[1024];
   char *raw = NULL, *text = NULL;
   bson_t *suite = NULL;
   flora_store_t *store = NULL;
   bool fixtures_ok = true;
   char first_unsupported[256] = "";
   bson_iter_t it, field;
   bool ok = false;

   snprintf(path, sizeof path, "%s/%s", r->dir, rel);
   raw = read_file(path, error);
   if (!raw) {
      goto cleanup;
   }
   if (!suite_store(r, &store, db, sizeof db, error)) {
      goto cleanup;
   }
   text = replace_all(raw, DB_PLACEHOLDER, db);
   suite = parse_json(text, rel, error);
   if (!suite) {
      goto cleanup;
   }
   why[0] = '\0';
   for (size_t i = 0; i < r->fixtures.len && fixtures_ok; i++) {
      char quoted[300];

      snprintf(quoted, sizeof quoted, "\"%s\"", r->fixtures.items[i]);
      if (strstr(text, quoted)) {
         fixtures_ok = load_fixture(r, store, db, r->fixtures.items[i], why, sizeof why);
      }
   }
   bson_iter_init(&it, suite);
   while (bson_iter_next(&it)) {
      const char *name = bson_iter_key(&it);
      bson_t test_case, request, response, reply, compared;
      char diff[1024], unsupported[600];

      if (!fixtures_ok) {
         emit(r, FLORA_CONFORMANCE_FAIL, rel, name, why);
         continue;
      }
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
         emit(r, FLORA_CONFORMANCE_FAIL, rel, name, "malformed case (not a document)");
         continue;
      }
      view(&it, &test_case);
      if (!bson_iter_init_find(&field, &test_case, "request") ||
          !BSON_ITER_HOLDS_DOCUMENT(&field)) {
         emit(r, FLORA_CONFORMANCE_FAIL, rel, name, "malformed case (no request)");
         continue;
      }
      view(&field, &request);
      if (!bson_iter_init_find(&field, &test_case, "response") ||
          !BSON_ITER_HOLDS_DOCUMENT(&field)) {
         emit(r, FLORA_CONFORMANCE_FAIL, rel, name, "malformed case (no response)");
         continue;
      }
      view(&field, &response);
      flora_store_command(store, &request, &reply, NULL);
      if (is_unsupported(&reply, unsupported, sizeof unsupported)) {
         emit(r, FLORA_CONFORMANCE_UNSUPPORTED, rel, name, unsupported);
         if (!first_unsupported[0]) {
            snprintf(first_unsupported, sizeof first_unsupported, "%s", name);
         }
      } else {
         strip_server_fields(&reply, &response, &compared);
         if (flora_conformance_compare(&compared, &response, diff, sizeof diff)) {
            emit(r, FLORA_CONFORMANCE_PASS, rel, name, "");
         } else if (first_unsupported[0]) {
            /* The cases of a suite build on each other: after a step the engine refused,
             * a difference says nothing about the engine. */
            char note[1400];

            snprintf(note, sizeof note, "follows unsupported case %s (%.1000s)",
                     first_unsupported, diff);
            emit(r, FLORA_CONFORMANCE_UNSUPPORTED, rel, name, note);
         } else {
            emit(r, FLORA_CONFORMANCE_FAIL, rel, name, diff);
         }
         bson_destroy(&compared);
      }
      bson_destroy(&reply);
   }
   ok = true;
cleanup:
   if (store) {
      suite_done(r, store, db);
   }
   if (suite) {
      bson_destroy(suite);
   }
   bson_free(text);
   bson_free(raw);
   if (!ok) {
      flora_error_prefix(error, "%s", rel);
   }
   return ok;
}

bool
flora_conformance_run(const char *dir, const char *uri, flora_conformance_report_fn report,
                      void *ctx, flora_conformance_totals_t *totals, flora_error_t *error)
{
   runner_t r;
   paths_t suites = {NULL, 0, 0};
   bool ok = false;

   FLORA_ASSERT_ARG(dir);
   FLORA_ASSERT_ARG(totals);
   memset(totals, 0, sizeof *totals);
   memset(&r, 0, sizeof r);
   r.dir = dir;
   r.uri = uri ? uri : DEFAULT_URI;
   r.report = report;
   r.ctx = ctx;
   r.totals = totals;
   if (!collect_fixtures(dir, &r.fixtures, error) || !collect_suites(dir, "", &suites, error)) {
      goto cleanup;
   }
   if (suites.len > 1) {
      qsort(suites.items, suites.len, sizeof *suites.items, compare_strings);
   }
   if (strncmp(r.uri, "mongodb", 7) == 0 && !flora_store_open(&r.shared_store, r.uri, NULL, error)) {
      goto cleanup;
   }
   for (size_t i = 0; i < suites.len; i++) {
      if (!run_suite(&r, suites.items[i], error)) {
         goto cleanup;
      }
   }
   ok = true;
cleanup:
   flora_store_close(r.shared_store);
   paths_free(&suites);
   paths_free(&r.fixtures);
   return ok;
}
