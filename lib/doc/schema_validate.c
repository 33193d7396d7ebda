/* Schema validation: see include/flora/schema.h (flora_schema_validate).
 *
 * One pass over the document reports every failing path. Paths are built in a stack
 * buffer; nothing is allocated for a valid document except what libbson's iterators
 * need (nothing). Patterns are compiled once per pattern string and cached. */
#include "doc/schema_private.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <unistr.h>

#define PATH_MAX_LEN 512
#define REASON_MAX_LEN 256

/* ---- types ---------------------------------------------------------------------- */

uint32_t
flora__schema_type_bit(bson_type_t type)
{
   switch (type) {
   case BSON_TYPE_UTF8:
      return FLORA_T_STRING;
   case BSON_TYPE_INT32:
      return FLORA_T_INT32;
   case BSON_TYPE_INT64:
      return FLORA_T_INT64;
   case BSON_TYPE_DOUBLE:
      return FLORA_T_DOUBLE;
   case BSON_TYPE_DECIMAL128:
      return FLORA_T_DECIMAL;
   case BSON_TYPE_BOOL:
      return FLORA_T_BOOL;
   case BSON_TYPE_DATE_TIME:
      return FLORA_T_DATE;
   case BSON_TYPE_OID:
      return FLORA_T_OBJECTID;
   case BSON_TYPE_DOCUMENT:
      return FLORA_T_DOCUMENT;
   case BSON_TYPE_ARRAY:
      return FLORA_T_ARRAY;
   case BSON_TYPE_NULL:
      return FLORA_T_NULL;
   case BSON_TYPE_BINARY:
      return FLORA_T_BINARY;
   default:
      return 0;
   }
}

bool
flora__schema_type_accepts(uint32_t types, bson_type_t type)
{
   uint32_t bit = flora__schema_type_bit(type);

   if (bit == FLORA_T_INT32 && (types & FLORA_T_INT64)) {
      return true;
   }
   return bit != 0 && (types & bit) != 0;
}

const char *
flora__schema_bson_type_name(uint32_t bit)
{
   switch (bit) {
   case FLORA_T_STRING:
      return "string";
   case FLORA_T_INT32:
      return "int";
   case FLORA_T_INT64:
      return "long";
   case FLORA_T_DOUBLE:
      return "double";
   case FLORA_T_DECIMAL:
      return "decimal";
   case FLORA_T_BOOL:
      return "bool";
   case FLORA_T_DATE:
      return "date";
   case FLORA_T_OBJECTID:
      return "objectId";
   case FLORA_T_DOCUMENT:
      return "object";
   case FLORA_T_ARRAY:
      return "array";
   case FLORA_T_NULL:
      return "null";
   case FLORA_T_BINARY:
      return "binData";
   default:
      return NULL;
   }
}

/* "a string", "an integer or null", ...: the words of a type mask for messages. */
static void
describe_types(uint32_t types, char *buf, size_t len)
{
   static const struct {
      uint32_t bits;
      const char *words;
   } names[] = {
      {FLORA_T_STRING, "a string"},
      {FLORA_T_NUMBER, "a number"},
      {FLORA_T_INT, "an integer"},
      {FLORA_T_INT32, "a 32-bit integer"},
      {FLORA_T_INT64, "an integer"},
      {FLORA_T_DOUBLE, "a double"},
      {FLORA_T_DECIMAL, "a decimal"},
      {FLORA_T_BOOL, "a boolean"},
      {FLORA_T_DATE, "a date"},
      {FLORA_T_OBJECTID, "an ObjectId"},
      {FLORA_T_DOCUMENT, "an object"},
      {FLORA_T_ARRAY, "an array"},
      {FLORA_T_BINARY, "binary data"},
      {FLORA_T_NULL, "null"},
   };
   const char *parts[sizeof names / sizeof names[0]];
   size_t n = 0;
   size_t used = 0;
   uint32_t left = types;

   for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      if ((left & names[i].bits) == names[i].bits) {
         parts[n++] = names[i].words;
         left &= ~names[i].bits;
      }
   }
   buf[0] = '\0';
   for (size_t i = 0; i < n && used < len; i++) {
      const char *sep = i == 0 ? "" : (i + 1 == n ? " or " : ", ");
      int w = snprintf(buf + used, len - used, "%s%s", sep, parts[i]);
      if (w < 0) {
         break;
      }
      used += (size_t) w;
   }
}

/* ---- number and date formatting ------------------------------------------------- */

void
flora__schema_format_number(double value, char *buf, size_t len)
{
   snprintf(buf, len, "%.15g", value);
   if (strtod(buf, NULL) != value) {
      snprintf(buf, len, "%.17g", value);
   }
}

void
flora__schema_format_date(int64_t ms, char *buf, size_t len)
{
   int64_t secs = ms / 1000;
   int64_t frac = ms % 1000;
   time_t t;
   struct tm tm;

   if (frac < 0) {
      frac += 1000;
      secs -= 1;
   }
   t = (time_t) secs;
   if (!gmtime_r(&t, &tm)) {
      snprintf(buf, len, "%" PRId64 " ms", ms);
      return;
   }
   snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) frac);
}

/* ---- the pattern cache ------------------------------------------------------------ */

/* Patterns live in static tables, so there are few of them; a list keyed by the pattern's
 * address, filled under a mutex and never freed (it lives as long as the tables). */
typedef struct regex_entry {
   struct regex_entry *next;
   const char *pattern; /* borrowed from the static table */
   bool ok;
   char reason[128];
   regex_t re;
} regex_entry_t;

static pthread_mutex_t regex_lock = PTHREAD_MUTEX_INITIALIZER;
static regex_entry_t *regex_cache;

const regex_t *
flora__schema_regex(const char *pattern, char *reason, size_t reason_len)
{
   regex_entry_t *e;
   const regex_t *result = NULL;

   pthread_mutex_lock(&regex_lock);
   /* Keyed by the pattern's address: it lives in a static table, so the address is
    * stable, and a pointer comparison keeps the lookup cheap on every validated string. */
   for (e = regex_cache; e; e = e->next) {
      if (e->pattern == pattern) {
         break;
      }
   }
   if (!e) {
      e = bson_malloc0(sizeof *e);
      e->pattern = pattern;
      int rc = regcomp(&e->re, pattern, REG_EXTENDED | REG_NOSUB);
      e->ok = rc == 0;
      if (!e->ok) {
         regerror(rc, &e->re, e->reason, sizeof e->reason);
      }
      e->next = regex_cache;
      regex_cache = e;
   }
   if (e->ok) {
      result = &e->re;
   } else if (reason) {
      snprintf(reason, reason_len, "%s", e->reason);
   }
   pthread_mutex_unlock(&regex_lock);
   return result;
}

/* ---- problems --------------------------------------------------------------------- */

void
flora_schema_problem(bson_t *problems, const char *path, const char *reason)
{
   char key[16];
   const char *k;
   bson_t item;

   FLORA_ASSERT_ARG(problems);
   FLORA_ASSERT_ARG(path);
   FLORA_ASSERT_ARG(reason);
   bson_uint32_to_string(bson_count_keys(problems), &k, key, sizeof key);
   bson_append_document_begin(problems, k, -1, &item);
   BSON_APPEND_UTF8(&item, "path", path);
   BSON_APPEND_UTF8(&item, "reason", reason);
   bson_append_document_end(problems, &item);
}

/* ---- the walk --------------------------------------------------------------------- */

typedef struct walk {
   bson_t *problems;
   char path[PATH_MAX_LEN];
   size_t path_len;
} walk_t;

/* Appends ".segment" (or "segment" at the top) to the path; returns the old length to
 * restore with pop(). A path too long for the buffer is truncated (messages only). */
static size_t
push(walk_t *w, const char *segment)
{
   size_t old = w->path_len;
   size_t len = strlen(segment);
   size_t room = sizeof w->path - 1 - old; /* memcpy, not snprintf: this runs per field */

   if (old > 0 && room > 0) {
      w->path[w->path_len++] = '.';
      room--;
   }
   len = BSON_MIN(len, room);
   memcpy(w->path + w->path_len, segment, len);
   w->path_len += len;
   w->path[w->path_len] = '\0';
   return old;
}

static void
pop(walk_t *w, size_t old)
{
   w->path_len = old;
   w->path[old] = '\0';
}

static void
problem(walk_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
problem(walk_t *w, const char *fmt, ...)
{
   char reason[REASON_MAX_LEN];
   va_list ap;

   va_start(ap, fmt);
   vsnprintf(reason, sizeof reason, fmt, ap);
   va_end(ap);
   flora_schema_problem(w->problems, w->path, reason);
}

/* Exact comparison of an int64 with a double bound: -1, 0 or 1. */
static int
cmp_int_double(int64_t v, double bound)
{
   if (isnan(bound)) {
      return 1;
   }
   if (bound >= 9223372036854775808.0) {
      return -1;
   }
   if (bound < -9223372036854775808.0) {
      return 1;
   }
   double fl = floor(bound);
   int64_t b = (int64_t) fl;
   if (v < b) {
      return -1;
   }
   if (v > b) {
      return 1;
   }
   return fl == bound ? 0 : -1;
}

static void
check_number(walk_t *w, const flora_field_t *f, const bson_iter_t *it)
{
   char text[40];
   bool is_int = false;
   int64_t iv = 0;
   double dv = 0;
   bool below = false, above = false;

   switch (bson_iter_type(it)) {
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
      is_int = true;
      iv = bson_iter_as_int64(it);
      break;
   case BSON_TYPE_DOUBLE:
      dv = bson_iter_double(it);
      break;
   case BSON_TYPE_DECIMAL128: {
      bson_decimal128_t dec;
      char str[BSON_DECIMAL128_STRING];
      bson_iter_decimal128(it, &dec);
      bson_decimal128_to_string(&dec, str);
      dv = strtod(str, NULL); /* "Infinity", "-Infinity" and "NaN" parse too */
      break;
   }
   default:
      return;
   }
   if (f->has_min) {
      below = is_int ? cmp_int_double(iv, f->min) < 0 : !(dv >= f->min);
   }
   if (f->has_max) {
      above = is_int ? cmp_int_double(iv, f->max) > 0 : !(dv <= f->max);
   }
   if (below) {
      flora__schema_format_number(f->min, text, sizeof text);
      problem(w, "must be >= %s", text);
   }
   if (above) {
      flora__schema_format_number(f->max, text, sizeof text);
      problem(w, "must be <= %s", text);
   }
}

static void
check_date(walk_t *w, const flora_field_t *f, const bson_iter_t *it)
{
   char text[40];
   int64_t ms = bson_iter_date_time(it);

   if (f->has_min && cmp_int_double(ms, f->min) < 0) {
      flora__schema_format_date((int64_t) f->min, text, sizeof text);
      problem(w, "must be >= %s", text);
   }
   if (f->has_max && cmp_int_double(ms, f->max) > 0) {
      flora__schema_format_date((int64_t) f->max, text, sizeof text);
      problem(w, "must be <= %s", text);
   }
}

static void
check_enum(walk_t *w, const flora_field_t *f, const char *s, uint32_t len)
{
   char list[REASON_MAX_LEN - 20];
   size_t used = 0;

   for (const char *const *e = f->enum_values; *e; e++) {
      if (strlen(*e) == len && memcmp(*e, s, len) == 0) {
         return;
      }
   }
   list[0] = '\0';
   for (const char *const *e = f->enum_values; *e && used < sizeof list; e++) {
      int n = snprintf(list + used, sizeof list - used, "%s%s", e == f->enum_values ? "" : ", ", *e);
      if (n < 0) {
         break;
      }
      used += (size_t) n;
   }
   problem(w, "must be one of: %s", list);
}

static void
check_string(walk_t *w, const flora_field_t *f, const bson_iter_t *it)
{
   uint32_t len = 0;
   const char *s = bson_iter_utf8(it, &len);
   size_t chars;

   if (u8_check((const uint8_t *) s, len) != NULL) {
      problem(w, "must be valid UTF-8");
      return;
   }
   chars = u8_mbsnlen((const uint8_t *) s, len);
   if (f->minlength >= 0 && chars < (size_t) f->minlength) {
      problem(w, "must be at least %" PRId64 " character%s", f->minlength,
              f->minlength == 1 ? "" : "s");
   }
   if (f->maxlength >= 0 && chars > (size_t) f->maxlength) {
      problem(w, "must be at most %" PRId64 " character%s", f->maxlength,
              f->maxlength == 1 ? "" : "s");
   }
   if (f->enum_values) {
      check_enum(w, f, s, len);
   }
   if (f->pattern) {
      char reason[128];
      const regex_t *re = flora__schema_regex(f->pattern, reason, sizeof reason);
      if (!re) {
         problem(w, "cannot be checked: the schema's pattern does not compile (%s)", reason);
      } else if (strlen(s) != len || regexec(re, s, 0, NULL, 0) != 0) {
         /* An embedded NUL never matches: regexec sees C strings. */
         problem(w, "must match %s", f->pattern_hint ? f->pattern_hint : f->pattern);
      }
   }
}

static void walk_fields(walk_t *w, const flora_field_t *fields, bool strict, bool top,
                        const flora_schema_t *schema, const bson_t *doc);

static void
check_value(walk_t *w, const flora_field_t *f, const bson_iter_t *it)
{
   bson_type_t type = bson_iter_type(it);
   char words[160];

   if (!flora__schema_type_accepts(f->types, type)) {
      describe_types(f->types, words, sizeof words);
      problem(w, "must be %s", words);
      return;
   }
   switch (type) {
   case BSON_TYPE_NULL:
      return; /* allowed by the mask; nothing else applies to null */
   case BSON_TYPE_UTF8:
      check_string(w, f, it);
      break;
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DOUBLE:
   case BSON_TYPE_DECIMAL128:
      check_number(w, f, it);
      break;
   case BSON_TYPE_DATE_TIME:
      check_date(w, f, it);
      break;
   case BSON_TYPE_DOCUMENT:
      if (f->fields) {
         uint32_t len;
         const uint8_t *data;
         bson_t sub;
         bson_iter_document(it, &len, &data);
         if (bson_init_static(&sub, data, len)) {
            walk_fields(w, f->fields, f->strict, false, NULL, &sub);
         }
      }
      break;
   case BSON_TYPE_ARRAY: {
      bson_iter_t child;
      uint32_t count = 0;
      if (bson_iter_recurse(it, &child)) {
         while (bson_iter_next(&child)) {
            if (f->items) {
               size_t old = push(w, bson_iter_key(&child));
               check_value(w, f->items, &child);
               pop(w, old);
            }
            count++;
         }
      }
      if (f->minlength >= 0 && count < (uint64_t) f->minlength) {
         problem(w, "must have at least %" PRId64 " item%s", f->minlength,
                 f->minlength == 1 ? "" : "s");
      }
      if (f->maxlength >= 0 && count > (uint64_t) f->maxlength) {
         problem(w, "must have at most %" PRId64 " item%s", f->maxlength,
                 f->maxlength == 1 ? "" : "s");
      }
      break;
   }
   default:
      break;
   }
   if (f->validate) {
      char reason[REASON_MAX_LEN];
      reason[0] = '\0';
      if (!f->validate(it, reason, sizeof reason)) {
         problem(w, "%s", reason[0] ? reason : "is invalid");
      }
   }
}

static const flora_field_t timestamp_field = {
   FLORA_FIELD_DEFAULTS,
   .path = "timestamp",
   .types = FLORA_T_DATE,
};

/* The index of the declared field named key, or n when none. */
static size_t
field_index(const flora_field_t *fields, size_t n, const char *key)
{
   for (size_t i = 0; i < n; i++) {
      if (fields[i].path[0] == key[0] && strcmp(fields[i].path, key) == 0) {
         return i;
      }
   }
   return n;
}

/* Fields found in the one pass over the document; lists longer than this look the rest
 * up with bson_iter_init_find. */
#define INDEXED_FIELDS 64

static void
walk_fields(walk_t *w, const flora_field_t *fields, bool strict, bool top,
            const flora_schema_t *schema, const bson_t *doc)
{
   static const char *const ts_names[] = {FLORA__SCHEMA_CREATED_AT, FLORA__SCHEMA_UPDATED_AT};
   bson_iter_t it;
   /* Where each field's element starts (bson_iter_t cannot form arrays: it is
    * over-aligned); 0 means absent, as no element starts at offset 0. */
   uint32_t at[INDEXED_FIELDS] = {0}, key_len[INDEXED_FIELDS];
   uint32_t ts_at[2] = {0, 0}, ts_key_len[2];
   size_t n = 0, unknown = 0;

   while (fields && fields[n].path) {
      n++;
   }
   /* One pass: where each declared field is, implicit timestamps, unknown keys. */
   if (bson_iter_init(&it, doc)) {
      while (bson_iter_next(&it)) {
         const char *key = bson_iter_key(&it);
         size_t i = field_index(fields, n, key);
         if (i < n) {
            if (i < INDEXED_FIELDS && at[i] == 0) {
               at[i] = bson_iter_offset(&it);
               key_len[i] = bson_iter_key_len(&it);
            }
         } else if (top && strcmp(key, "_id") == 0) {
            continue;
         } else if (top && schema->timestamps && (strcmp(key, ts_names[0]) == 0 ||
                                                  strcmp(key, ts_names[1]) == 0)) {
            size_t k = strcmp(key, ts_names[0]) == 0 ? 0 : 1;
            if (ts_at[k] == 0) {
               ts_at[k] = bson_iter_offset(&it);
               ts_key_len[k] = bson_iter_key_len(&it);
            }
         } else {
            unknown++;
         }
      }
   }
   for (size_t i = 0; i < n; i++) {
      const flora_field_t *f = &fields[i];
      size_t old = push(w, f->path);
      bool here = i < INDEXED_FIELDS
                     ? at[i] != 0 && bson_iter_init_from_data_at_offset(
                                        &it, bson_get_data(doc), doc->len, at[i], key_len[i])
                     : bson_iter_init_find(&it, doc, f->path);
      if (here) {
         check_value(w, f, &it);
      } else if (f->required) {
         problem(w, "is required");
      }
      pop(w, old);
   }
   for (size_t i = 0; i < 2; i++) {
      if (ts_at[i] != 0 && bson_iter_init_from_data_at_offset(&it, bson_get_data(doc), doc->len,
                                                               ts_at[i], ts_key_len[i])) {
         size_t old = push(w, ts_names[i]);
         check_value(w, &timestamp_field, &it);
         pop(w, old);
      }
   }
   if (!strict || unknown == 0 || !bson_iter_init(&it, doc)) {
      return;
   }
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      if (field_index(fields, n, key) < n ||
          (top && (strcmp(key, "_id") == 0 ||
                   (schema->timestamps &&
                    (strcmp(key, ts_names[0]) == 0 || strcmp(key, ts_names[1]) == 0))))) {
         continue;
      }
      size_t old = push(w, key);
      problem(w, "unknown field");
      pop(w, old);
   }
}

/* "path: reason; path: reason", truncated with "..." to fit message[]. */
static void
set_error(flora_error_t *error, const bson_t *problems)
{
   char msg[sizeof error->message];
   size_t used = 0;
   bson_iter_t it, item;
   bool truncated = false;

   msg[0] = '\0';
   if (bson_iter_init(&it, problems)) {
      while (bson_iter_next(&it)) {
         const char *path = "", *reason = "";
         if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &item)) {
            while (bson_iter_next(&item)) {
               if (BSON_ITER_HOLDS_UTF8(&item) && strcmp(bson_iter_key(&item), "path") == 0) {
                  path = bson_iter_utf8(&item, NULL);
               } else if (BSON_ITER_HOLDS_UTF8(&item) &&
                          strcmp(bson_iter_key(&item), "reason") == 0) {
                  reason = bson_iter_utf8(&item, NULL);
               }
            }
         }
         int n = snprintf(msg + used, sizeof msg - used, "%s%s: %s", used ? "; " : "", path,
                          reason);
         if (n < 0 || (size_t) n >= sizeof msg - used) {
            truncated = true;
            break;
         }
         used += (size_t) n;
      }
   }
   if (truncated) {
      memcpy(msg + sizeof msg - 4, "...", 4);
   }
   flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "%s", msg);
}

bool
flora_schema_validate(const flora_schema_t *schema, const bson_t *doc, bson_t *problems,
                      flora_error_t *error)
{
   walk_t w;
   bson_t found = BSON_INITIALIZER;
   bson_iter_t it;
   bool ok;

   FLORA_ASSERT_ARG(schema);
   FLORA_ASSERT_ARG(doc);
   w.problems = &found;
   w.path[0] = '\0';
   w.path_len = 0;
   walk_fields(&w, schema->fields, schema->strict, true, schema, doc);
   if (schema->validate) {
      schema->validate(doc, &found);
   }
   ok = bson_empty(&found);
   if (!ok) {
      set_error(error, &found);
      if (problems && bson_iter_init(&it, &found)) {
         char key[16];
         const char *k;
         uint32_t i = bson_count_keys(problems);
         while (bson_iter_next(&it)) {
            bson_uint32_to_string(i++, &k, key, sizeof key);
            bson_append_value(problems, k, -1, bson_iter_value(&it));
         }
      }
   }
   bson_destroy(&found);
   return ok;
}
