/* Slot and pricing rules: the rules file (docs/delivery.md, "Rules file"), validated
 * completely, stored as the one document {_id: "rules"} of `delivery_rules`, with built-in
 * defaults until one is loaded. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "delivery/delivery_private.h"
#include "flora/schema.h"

#define RULES_ID "rules"

static const char *const default_rules_json =
   "{\"slots\": ["
   "{\"id\": \"09-12\", \"start\": \"09:00\", \"end\": \"12:00\", \"capacity\": 20},"
   "{\"id\": \"12-15\", \"start\": \"12:00\", \"end\": \"15:00\", \"capacity\": 20},"
   "{\"id\": \"15-18\", \"start\": \"15:00\", \"end\": \"18:00\", \"capacity\": 20},"
   "{\"id\": \"18-21\", \"start\": \"18:00\", \"end\": \"21:00\", \"capacity\": 20}],"
   "\"exactTime\": {\"enabled\": true, \"from\": \"09:00\", \"to\": \"21:00\", "
   "\"surcharge\": 50000, \"capacity\": 10},"
   "\"sameDayCutoff\": \"18:00\", \"leadTimeMinutes\": 120, \"horizonDays\": 30,"
   "\"blockedDates\": [],"
   "\"holidays\": ["
   "{\"name\": \"valentines_day\", \"from\": \"02-13\", \"to\": \"02-14\", \"surcharge\": 30000, "
   "\"capacity\": 40},"
   "{\"name\": \"womens_day\", \"from\": \"03-07\", \"to\": \"03-08\", \"surcharge\": 30000, "
   "\"capacity\": 40}],"
   "\"night\": {\"from\": \"22:00\", \"to\": \"08:00\", \"surcharge\": 50000}}";

static void
prob(bson_t *problems, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
prob(bson_t *problems, const char *path, const char *fmt, ...)
{
   char reason[300];
   va_list ap;

   va_start(ap, fmt);
   vsnprintf(reason, sizeof reason, fmt, ap);
   va_end(ap);
   flora_schema_problem(problems, path, reason);
}

static bool
sub_doc(const bson_iter_t *it, bson_t *out)
{
   const uint8_t *data;
   uint32_t len;

   if (!BSON_ITER_HOLDS_DOCUMENT(it)) {
      return false;
   }
   bson_iter_document(it, &len, &data);
   return bson_init_static(out, data, len);
}

/* Reads an optional whole number in [min, max]; keeps *out when absent. */
static void
get_int(const bson_t *doc, const char *key, const char *path, int64_t min, int64_t max,
        int64_t *out, bson_t *problems)
{
   bson_iter_t it;
   double d;

   if (!bson_iter_init_find(&it, doc, key)) {
      return;
   }
   if (BSON_ITER_HOLDS_INT(&it)) {
      d = (double) bson_iter_as_int64(&it);
   } else if (BSON_ITER_HOLDS_DOUBLE(&it) && floor(bson_iter_double(&it)) == bson_iter_double(&it)) {
      d = bson_iter_double(&it);
   } else {
      prob(problems, path, "must be a whole number");
      return;
   }
   if (d < (double) min || d > (double) max) {
      prob(problems, path, "must be from %lld to %lld", (long long) min, (long long) max);
      return;
   }
   *out = (int64_t) d;
}

static void
get_time(const bson_t *doc, const char *key, const char *path, bool allow_24, int *out,
         bson_t *problems)
{
   bson_iter_t it;

   if (!bson_iter_init_find(&it, doc, key)) {
      return;
   }
   if (!BSON_ITER_HOLDS_UTF8(&it) ||
       !flora__delivery_parse_hhmm(bson_iter_utf8(&it, NULL), allow_24, out)) {
      prob(problems, path, "must be a time HH:MM (00:00-%s)", allow_24 ? "24:00" : "23:59");
   }
}

static bool
parse_md(const char *s, int *md)
{
   int y, m, d;
   char buf[16];

   if (!s || strlen(s) != 5) {
      return false;
   }
   snprintf(buf, sizeof buf, "2000-%s", s); /* a leap year: 02-29 is a valid rule */
   if (!flora__delivery_parse_date(buf, &y, &m, &d)) {
      return false;
   }
   *md = m * 100 + d;
   return true;
}

static void
check_unknown(const bson_t *doc, const char *prefix, const char *const *known, bson_t *problems)
{
   bson_iter_t it;

   bson_iter_init(&it, doc);
   while (bson_iter_next(&it)) {
      bool ok = false;
      char path[128];

      for (size_t i = 0; known[i]; i++) {
         ok = ok || strcmp(known[i], bson_iter_key(&it)) == 0;
      }
      if (!ok) {
         snprintf(path, sizeof path, "%s%s", prefix, bson_iter_key(&it));
         prob(problems, path, "unknown field");
      }
   }
}

static void
parse_slots(bson_iter_t *arr_it, flora__rules_t *r, bson_t *problems)
{
   static const char *const known[] = {"id", "start", "end", "capacity", "weekdays", NULL};
   bson_iter_t arr;

   r->n_slots = 0;
   if (!BSON_ITER_HOLDS_ARRAY(arr_it) || !bson_iter_recurse(arr_it, &arr)) {
      prob(problems, "slots", "must be an array of windows");
      return;
   }
   while (bson_iter_next(&arr)) {
      flora__slot_rule_t *s = &r->slots[r->n_slots];
      char p[160], pre[64];
      bson_t sd;
      bson_iter_t it;
      int64_t cap = 20;

      snprintf(pre, sizeof pre, "slots.%s.", bson_iter_key(&arr));
      if (r->n_slots == FLORA__DELIVERY_MAX_SLOTS) {
         prob(problems, "slots", "at most %d windows", FLORA__DELIVERY_MAX_SLOTS);
         return;
      }
      if (!sub_doc(&arr, &sd)) {
         snprintf(p, sizeof p, "slots.%s", bson_iter_key(&arr));
         prob(problems, p, "must be an object {id, start, end, capacity, weekdays?}");
         continue;
      }
      check_unknown(&sd, pre, known, problems);
      memset(s, 0, sizeof *s);
      s->start = s->end = -1;
      snprintf(p, sizeof p, "%sid", pre);
      if (!bson_iter_init_find(&it, &sd, "id") || !BSON_ITER_HOLDS_UTF8(&it) ||
          bson_iter_utf8_len_unsafe(&it) == 0 ||
          strlen(bson_iter_utf8(&it, NULL)) >= sizeof s->id ||
          strcmp(bson_iter_utf8(&it, NULL), "exact") == 0) {
         prob(problems, p, "is required: a short name such as \"09-12\" (not \"exact\")");
      } else {
         snprintf(s->id, sizeof s->id, "%s", bson_iter_utf8(&it, NULL));
         for (size_t i = 0; i < r->n_slots; i++) {
            if (strcmp(r->slots[i].id, s->id) == 0) {
               prob(problems, p, "duplicate window id %s", s->id);
            }
         }
      }
      snprintf(p, sizeof p, "%sstart", pre);
      get_time(&sd, "start", p, false, &s->start, problems);
      if (s->start < 0) {
         prob(problems, p, "is required");
      }
      snprintf(p, sizeof p, "%send", pre);
      get_time(&sd, "end", p, true, &s->end, problems);
      if (s->end < 0) {
         prob(problems, p, "is required");
      } else if (s->start >= 0 && s->end <= s->start) {
         prob(problems, p, "must be after start (a window does not cross midnight)");
      }
      snprintf(p, sizeof p, "%scapacity", pre);
      get_int(&sd, "capacity", p, 0, 100000, &cap, problems);
      s->capacity = (int) cap;
      s->weekdays = 0x7f;
      if (bson_iter_init_find(&it, &sd, "weekdays")) {
         bson_iter_t w;

         snprintf(p, sizeof p, "%sweekdays", pre);
         s->weekdays = 0;
         if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &w)) {
            prob(problems, p, "must be an array of ISO weekdays 1 (Monday) .. 7 (Sunday)");
         } else {
            while (bson_iter_next(&w)) {
               if (!BSON_ITER_HOLDS_INT(&w) || bson_iter_as_int64(&w) < 1 ||
                   bson_iter_as_int64(&w) > 7) {
                  prob(problems, p, "must be an array of ISO weekdays 1 (Monday) .. 7 (Sunday)");
                  break;
               }
               s->weekdays |= 1u << (bson_iter_as_int64(&w) - 1);
            }
         }
      }
      r->n_slots++;
   }
}

static void
parse_holidays(bson_iter_t *arr_it, flora__rules_t *r, bson_t *problems)
{
   static const char *const known[] = {"name", "from", "to", "surcharge", "capacity", NULL};
   bson_iter_t arr;

   r->n_holidays = 0;
   if (!BSON_ITER_HOLDS_ARRAY(arr_it) || !bson_iter_recurse(arr_it, &arr)) {
      prob(problems, "holidays", "must be an array of {name, from, to, surcharge, capacity?}");
      return;
   }
   while (bson_iter_next(&arr)) {
      flora__holiday_t *h = &r->holidays[r->n_holidays];
      char p[160], pre[64];
      bson_t hd;
      bson_iter_t it;
      int64_t surcharge = 0, cap = -1;

      snprintf(pre, sizeof pre, "holidays.%s.", bson_iter_key(&arr));
      if (r->n_holidays == FLORA__DELIVERY_MAX_HOLIDAYS) {
         prob(problems, "holidays", "at most %d holidays", FLORA__DELIVERY_MAX_HOLIDAYS);
         return;
      }
      if (!sub_doc(&arr, &hd)) {
         snprintf(p, sizeof p, "holidays.%s", bson_iter_key(&arr));
         prob(problems, p, "must be an object");
         continue;
      }
      check_unknown(&hd, pre, known, problems);
      memset(h, 0, sizeof *h);
      snprintf(p, sizeof p, "%sname", pre);
      if (!bson_iter_init_find(&it, &hd, "name") || !BSON_ITER_HOLDS_UTF8(&it)) {
         prob(problems, p, "is required");
      } else {
         snprintf(h->name, sizeof h->name, "%s", bson_iter_utf8(&it, NULL));
      }
      snprintf(p, sizeof p, "%sfrom", pre);
      if (!bson_iter_init_find(&it, &hd, "from") || !BSON_ITER_HOLDS_UTF8(&it) ||
          !parse_md(bson_iter_utf8(&it, NULL), &h->from_md)) {
         prob(problems, p, "is required: a day of the year MM-DD");
      }
      snprintf(p, sizeof p, "%sto", pre);
      if (!bson_iter_init_find(&it, &hd, "to") || !BSON_ITER_HOLDS_UTF8(&it) ||
          !parse_md(bson_iter_utf8(&it, NULL), &h->to_md)) {
         prob(problems, p, "is required: a day of the year MM-DD (before from: wraps the new year)");
      }
      snprintf(p, sizeof p, "%ssurcharge", pre);
      get_int(&hd, "surcharge", p, 0, INT64_C(100000000000), &surcharge, problems);
      snprintf(p, sizeof p, "%scapacity", pre);
      get_int(&hd, "capacity", p, 0, 100000, &cap, problems);
      h->surcharge = surcharge;
      h->capacity = (int) cap;
      r->n_holidays++;
   }
}

bool
flora__delivery_rules_from_bson(const bson_t *doc, flora__rules_t *r, bson_t *problems)
{
   static const char *const known[] = {"_id", "slots", "exactTime", "sameDayCutoff",
                                       "leadTimeMinutes", "horizonDays", "blockedDates",
                                       "holidays", "night", "loadedAt", NULL};
   static const char *const exact_known[] = {"enabled", "from", "to", "surcharge", "capacity", NULL};
   static const char *const night_known[] = {"from", "to", "surcharge", NULL};
   bson_t *defaults;
   bson_error_t berr;
   bson_iter_t it;
   bson_t sub;
   uint32_t before = flora__delivery_count(problems);
   int64_t v;

   /* defaults first, then the document's values over them */
   memset(r, 0, sizeof *r);
   defaults = bson_new_from_json((const uint8_t *) default_rules_json, -1, &berr);
   FLORA_ASSERT_ARG(defaults != NULL);
   {
      bson_t ignored = BSON_INITIALIZER;

      bson_iter_init_find(&it, defaults, "slots");
      parse_slots(&it, r, &ignored);
      bson_iter_init_find(&it, defaults, "holidays");
      parse_holidays(&it, r, &ignored);
      bson_destroy(&ignored);
   }
   bson_destroy(defaults);
   r->exact_enabled = true;
   r->exact_start = 9 * 60;
   r->exact_end = 21 * 60;
   r->exact_surcharge = 50000;
   r->exact_capacity = 10;
   r->cutoff = 18 * 60;
   r->lead_minutes = 120;
   r->horizon_days = 30;
   r->night_enabled = true;
   r->night_start = 22 * 60;
   r->night_end = 8 * 60;
   r->night_surcharge = 50000;

   check_unknown(doc, "", known, problems);
   if (bson_iter_init_find(&it, doc, "slots")) {
      parse_slots(&it, r, problems);
      if (r->n_slots == 0 && flora__delivery_count(problems) == before) {
         prob(problems, "slots", "must have at least one window");
      }
   }
   if (bson_iter_init_find(&it, doc, "exactTime")) {
      if (BSON_ITER_HOLDS_NULL(&it)) {
         r->exact_enabled = false;
      } else if (!sub_doc(&it, &sub)) {
         prob(problems, "exactTime", "must be an object {enabled, from, to, surcharge, capacity}");
      } else {
         bson_iter_t e;

         check_unknown(&sub, "exactTime.", exact_known, problems);
         if (bson_iter_init_find(&e, &sub, "enabled")) {
            if (!BSON_ITER_HOLDS_BOOL(&e)) {
               prob(problems, "exactTime.enabled", "must be true or false");
            } else {
               r->exact_enabled = bson_iter_bool(&e);
            }
         }
         get_time(&sub, "from", "exactTime.from", false, &r->exact_start, problems);
         get_time(&sub, "to", "exactTime.to", true, &r->exact_end, problems);
         if (r->exact_end <= r->exact_start) {
            prob(problems, "exactTime.to", "must be after exactTime.from");
         }
         v = r->exact_surcharge;
         get_int(&sub, "surcharge", "exactTime.surcharge", 0, INT64_C(100000000000), &v, problems);
         r->exact_surcharge = v;
         v = r->exact_capacity;
         get_int(&sub, "capacity", "exactTime.capacity", 0, 100000, &v, problems);
         r->exact_capacity = (int) v;
      }
   }
   get_time(doc, "sameDayCutoff", "sameDayCutoff", true, &r->cutoff, problems);
   v = r->lead_minutes;
   get_int(doc, "leadTimeMinutes", "leadTimeMinutes", 0, 7 * 24 * 60, &v, problems);
   r->lead_minutes = (int) v;
   v = r->horizon_days;
   get_int(doc, "horizonDays", "horizonDays", 0, 366, &v, problems);
   r->horizon_days = (int) v;
   if (bson_iter_init_find(&it, doc, "blockedDates")) {
      bson_iter_t d;

      if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &d)) {
         prob(problems, "blockedDates", "must be an array of dates YYYY-MM-DD");
      } else {
         while (bson_iter_next(&d)) {
            int y, m, day;
            char p[48];

            snprintf(p, sizeof p, "blockedDates.%s", bson_iter_key(&d));
            if (!BSON_ITER_HOLDS_UTF8(&d) ||
                !flora__delivery_parse_date(bson_iter_utf8(&d, NULL), &y, &m, &day)) {
               prob(problems, p, "must be a date YYYY-MM-DD");
            } else if (r->n_blocked == FLORA__DELIVERY_MAX_BLOCKED) {
               prob(problems, p, "at most %d blocked dates", FLORA__DELIVERY_MAX_BLOCKED);
               break;
            } else {
               r->blocked[r->n_blocked++] = flora__delivery_days(y, m, day);
            }
         }
      }
   }
   if (bson_iter_init_find(&it, doc, "holidays")) {
      parse_holidays(&it, r, problems);
   }
   if (bson_iter_init_find(&it, doc, "night")) {
      if (BSON_ITER_HOLDS_NULL(&it)) {
         r->night_enabled = false;
      } else if (!sub_doc(&it, &sub)) {
         prob(problems, "night", "must be an object {from, to, surcharge} or null");
      } else {
         check_unknown(&sub, "night.", night_known, problems);
         get_time(&sub, "from", "night.from", false, &r->night_start, problems);
         get_time(&sub, "to", "night.to", false, &r->night_end, problems);
         if (r->night_start == r->night_end) {
            prob(problems, "night.to", "must differ from night.from");
         }
         v = r->night_surcharge;
         get_int(&sub, "surcharge", "night.surcharge", 0, INT64_C(100000000000), &v, problems);
         r->night_surcharge = v;
      }
   }
   return flora__delivery_count(problems) == before;
}

static void
append_hhmm(bson_t *doc, const char *key, int minutes)
{
   char buf[32];

   snprintf(buf, sizeof buf, "%02d:%02d", minutes / 60, minutes % 60);
   BSON_APPEND_UTF8(doc, key, buf);
}

void
flora__delivery_rules_to_bson(const flora__rules_t *r, bson_t *out)
{
   bson_t arr, d, w;
   char key[16];
   const char *k;

   bson_init(out);
   BSON_APPEND_ARRAY_BEGIN(out, "slots", &arr);
   for (size_t i = 0; i < r->n_slots; i++) {
      bson_uint32_to_string((uint32_t) i, &k, key, sizeof key);
      BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &d);
      BSON_APPEND_UTF8(&d, "id", r->slots[i].id);
      append_hhmm(&d, "start", r->slots[i].start);
      append_hhmm(&d, "end", r->slots[i].end);
      BSON_APPEND_INT32(&d, "capacity", r->slots[i].capacity);
      BSON_APPEND_ARRAY_BEGIN(&d, "weekdays", &w);
      for (int wd = 1, n = 0; wd <= 7; wd++) {
         if (r->slots[i].weekdays & (1u << (wd - 1))) {
            bson_uint32_to_string((uint32_t) n++, &k, key, sizeof key);
            BSON_APPEND_INT32(&w, k, wd);
         }
      }
      bson_append_array_end(&d, &w);
      bson_append_document_end(&arr, &d);
   }
   bson_append_array_end(out, &arr);
   if (r->exact_enabled) {
      BSON_APPEND_DOCUMENT_BEGIN(out, "exactTime", &d);
      BSON_APPEND_BOOL(&d, "enabled", true);
      append_hhmm(&d, "from", r->exact_start);
      append_hhmm(&d, "to", r->exact_end);
      BSON_APPEND_INT64(&d, "surcharge", r->exact_surcharge);
      BSON_APPEND_INT32(&d, "capacity", r->exact_capacity);
      bson_append_document_end(out, &d);
   } else {
      BSON_APPEND_NULL(out, "exactTime");
   }
   append_hhmm(out, "sameDayCutoff", r->cutoff);
   BSON_APPEND_INT32(out, "leadTimeMinutes", r->lead_minutes);
   BSON_APPEND_INT32(out, "horizonDays", r->horizon_days);
   BSON_APPEND_ARRAY_BEGIN(out, "blockedDates", &arr);
   for (size_t i = 0; i < r->n_blocked; i++) {
      /* civil_from_days (H. Hinnant) */
      int32_t z = r->blocked[i] + 719468;
      int32_t era = (z >= 0 ? z : z - 146096) / 146097;
      unsigned doe = (unsigned) (z - era * 146097);
      unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
      int y = (int) yoe + era * 400;
      unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
      unsigned mp = (5 * doy + 2) / 153;
      unsigned dd = doy - (153 * mp + 2) / 5 + 1;
      unsigned mm = mp < 10 ? mp + 3 : mp - 9;
      char buf[48];

      snprintf(buf, sizeof buf, "%04d-%02u-%02u", y + (mm <= 2), mm, dd);
      bson_uint32_to_string((uint32_t) i, &k, key, sizeof key);
      BSON_APPEND_UTF8(&arr, k, buf);
   }
   bson_append_array_end(out, &arr);
   BSON_APPEND_ARRAY_BEGIN(out, "holidays", &arr);
   for (size_t i = 0; i < r->n_holidays; i++) {
      const flora__holiday_t *h = &r->holidays[i];
      char buf[32];

      bson_uint32_to_string((uint32_t) i, &k, key, sizeof key);
      BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &d);
      BSON_APPEND_UTF8(&d, "name", h->name);
      snprintf(buf, sizeof buf, "%02d-%02d", h->from_md / 100, h->from_md % 100);
      BSON_APPEND_UTF8(&d, "from", buf);
      snprintf(buf, sizeof buf, "%02d-%02d", h->to_md / 100, h->to_md % 100);
      BSON_APPEND_UTF8(&d, "to", buf);
      BSON_APPEND_INT64(&d, "surcharge", h->surcharge);
      if (h->capacity >= 0) {
         BSON_APPEND_INT32(&d, "capacity", h->capacity);
      }
      bson_append_document_end(&arr, &d);
   }
   bson_append_array_end(out, &arr);
   if (r->night_enabled) {
      BSON_APPEND_DOCUMENT_BEGIN(out, "night", &d);
      append_hhmm(&d, "from", r->night_start);
      append_hhmm(&d, "to", r->night_end);
      BSON_APPEND_INT64(&d, "surcharge", r->night_surcharge);
      bson_append_document_end(out, &d);
   } else {
      BSON_APPEND_NULL(out, "night");
   }
}

bool
flora_delivery_rules_parse(const bson_t *file, bson_t *rules, bson_t *problems, flora_error_t *error)
{
   flora__rules_t *r = bson_malloc0(sizeof *r);
   bson_t collected = BSON_INITIALIZER;
   bool ok;

   FLORA_ASSERT_ARG(file);
   FLORA_ASSERT_ARG(rules);
   ok = flora__delivery_rules_from_bson(file, r, &collected);
   if (ok) {
      flora__delivery_rules_to_bson(r, rules);
   } else {
      bson_init(rules);
      flora__delivery_problems_fail(&collected, problems, "rules file", error);
   }
   bson_destroy(&collected);
   bson_free(r);
   return ok;
}

bool
flora_delivery_rules_load_json(flora_store_t *store, const char *json, size_t len, bson_t *problems,
                               flora_error_t *error)
{
   bson_error_t berr;
   bson_t *file = NULL;
   bson_t rules = BSON_INITIALIZER, filter = BSON_INITIALIZER, doc = BSON_INITIALIZER;
   bson_t opts = BSON_INITIALIZER;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(json);
   file = bson_new_from_json((const uint8_t *) json, (ssize_t) len, &berr);
   if (!file) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "rules file is not JSON: %s",
                      berr.message);
      goto cleanup;
   }
   bson_destroy(&rules);
   if (!flora_delivery_rules_parse(file, &rules, problems, error)) {
      goto cleanup;
   }
   BSON_APPEND_UTF8(&filter, "_id", RULES_ID);
   BSON_APPEND_UTF8(&doc, "_id", RULES_ID);
   bson_concat(&doc, &rules);
   BSON_APPEND_DATE_TIME(&doc, "loadedAt", (int64_t) time(NULL) * 1000);
   BSON_APPEND_BOOL(&opts, "upsert", true);
   ok = flora_store_replace_one(store, "delivery_rules", &filter, &doc, &opts, NULL, error);
cleanup:
   bson_destroy(file);
   bson_destroy(&rules);
   bson_destroy(&filter);
   bson_destroy(&doc);
   bson_destroy(&opts);
   return ok;
}

bool
flora__delivery_rules_load(flora_store_t *store, flora__rules_t *r, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, doc, ignored = BSON_INITIALIZER;
   bool found = false, ok;

   BSON_APPEND_UTF8(&filter, "_id", RULES_ID);
   ok = flora_store_find_one(store, "delivery_rules", &filter, NULL, &doc, &found, error);
   if (ok) {
      bson_t empty = BSON_INITIALIZER;

      if (!flora__delivery_rules_from_bson(found ? &doc : &empty, r, &ignored)) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "the stored delivery rules are invalid; load a rules file again");
         ok = false;
      }
      bson_destroy(&empty);
   }
   bson_destroy(&filter);
   bson_destroy(&doc);
   bson_destroy(&ignored);
   return ok;
}

bool
flora_delivery_rules_get(flora_store_t *store, bson_t *rules, flora_error_t *error)
{
   flora__rules_t *r = bson_malloc0(sizeof *r);
   bool ok;

   FLORA_ASSERT_ARG(store);
   ok = flora__delivery_rules_load(store, r, error);
   if (ok) {
      flora__delivery_rules_to_bson(r, rules);
   } else {
      bson_init(rules);
   }
   bson_free(r);
   return ok;
}

const flora__slot_rule_t *
flora__delivery_rules_slot(const flora__rules_t *r, const char *id)
{
   for (size_t i = 0; i < r->n_slots; i++) {
      if (strcmp(r->slots[i].id, id) == 0) {
         return &r->slots[i];
      }
   }
   return NULL;
}

const flora__holiday_t *
flora__delivery_rules_holiday(const flora__rules_t *r, int month, int day)
{
   int md = month * 100 + day;

   for (size_t i = 0; i < r->n_holidays; i++) {
      const flora__holiday_t *h = &r->holidays[i];
      bool in = h->from_md <= h->to_md ? (md >= h->from_md && md <= h->to_md)
                                       : (md >= h->from_md || md <= h->to_md);
      if (in) {
         return h;
      }
   }
   return NULL;
}

bool
flora__delivery_rules_blocked(const flora__rules_t *r, int32_t days)
{
   for (size_t i = 0; i < r->n_blocked; i++) {
      if (r->blocked[i] == days) {
         return true;
      }
   }
   return false;
}

static bool
night_minute(const flora__rules_t *r, int m)
{
   if (r->night_start > r->night_end) {
      return m >= r->night_start || m < r->night_end;
   }
   return m >= r->night_start && m < r->night_end;
}

bool
flora__delivery_rules_night(const flora__rules_t *r, int start, int end)
{
   if (!r->night_enabled) {
      return false;
   }
   /* a window is at night when any minute of [start, end) is; an exact time when its
    * minute is (end = start + 1) */
   for (int m = start; m < end; m++) {
      if (night_minute(r, m % 1440)) {
         return true;
      }
   }
   return false;
}
