/* Slots (capacity sold by one conditional update per reservation) and the quote. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "delivery/delivery_private.h"
#include "flora/log.h"

#define LOG_DOMAIN "delivery"
#define SLOTS "delivery_slots"
#define EXACT_ID "exact"

typedef struct day {
   int year, month, day;
   int32_t days;
   int weekday;
   bool blocked;
   const flora__holiday_t *holiday;
   flora__civil_t now_local;
   int32_t today;
} day_t;

static void
append_hhmm(bson_t *doc, const char *key, int minutes)
{
   char buf[32];

   snprintf(buf, sizeof buf, "%02d:%02d", minutes / 60, minutes % 60);
   BSON_APPEND_UTF8(doc, key, buf);
}

static const char *
idx(uint32_t i, char *buf, size_t len)
{
   const char *k;

   bson_uint32_to_string(i, &k, buf, len);
   return k;
}

static bool
parse_day(const flora__rules_t *r, const char *date, day_t *d, flora_error_t *error)
{
   if (!date || !flora__delivery_parse_date(date, &d->year, &d->month, &d->day)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "date: must be a calendar date YYYY-MM-DD");
      return false;
   }
   d->days = flora__delivery_days(d->year, d->month, d->day);
   d->weekday = flora__delivery_weekday(d->days);
   d->blocked = flora__delivery_rules_blocked(r, d->days);
   d->holiday = flora__delivery_rules_holiday(r, d->month, d->day);
   return true;
}

/* The date as seen at now_ms: in the past or beyond the horizon is a VALIDATION error. */
static bool
open_day(const flora__rules_t *r, const char *tz, const char *date, int64_t now_ms, day_t *d,
         flora_error_t *error)
{
   if (!parse_day(r, date, d, error) || !flora__delivery_to_local(tz, now_ms, &d->now_local, error)) {
      return false;
   }
   d->today = flora__delivery_days(d->now_local.year, d->now_local.month, d->now_local.day);
   if (d->days < d->today) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "date: %s is in the past (today is %04d-%02d-%02d in %s)", date,
                      d->now_local.year, d->now_local.month, d->now_local.day, tz);
      return false;
   }
   if (d->days > d->today + r->horizon_days) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "date: %s is beyond the booking horizon of %d days", date, r->horizon_days);
      return false;
   }
   return true;
}

/* NULL when a window [start, end) of the day can still be sold at now_ms, else the reason. */
static const char *
timing(const flora__rules_t *r, const char *tz, const day_t *d, int start, int64_t now_ms,
       flora_error_t *error, bool *failed)
{
   int64_t start_ms = 0;

   *failed = false;
   if (d->blocked) {
      return "date_blocked";
   }
   if (d->days == d->today && d->now_local.minute >= r->cutoff) {
      return "past_cutoff";
   }
   if (!flora__delivery_to_utc(tz, d->year, d->month, d->day, start, &start_ms, error)) {
      *failed = true;
      return NULL;
   }
   if (start_ms < now_ms + (int64_t) r->lead_minutes * 60000) {
      return "past_cutoff";
   }
   return NULL;
}

static int
window_capacity(const flora__slot_rule_t *s, const day_t *d)
{
   return d->holiday && d->holiday->capacity >= 0 ? d->holiday->capacity : s->capacity;
}

static void
slot_key(char *buf, size_t len, const char *date, const char *slot)
{
   snprintf(buf, len, "%s/%s", date, slot);
}

/* reserved count of (date, slot) */
static bool
reserved_of(flora_store_t *store, const char *date, const char *slot, int64_t *reserved,
            flora_error_t *error)
{
   char key[64];
   bson_t filter = BSON_INITIALIZER, doc;
   bson_iter_t it;
   bool found = false, ok;

   slot_key(key, sizeof key, date, slot);
   BSON_APPEND_UTF8(&filter, "_id", key);
   ok = flora_store_find_one(store, SLOTS, &filter, NULL, &doc, &found, error);
   *reserved = 0;
   if (ok && found && bson_iter_init_find(&it, &doc, "reserved") && BSON_ITER_HOLDS_NUMBER(&it)) {
      *reserved = bson_iter_as_int64(&it);
   }
   bson_destroy(&filter);
   bson_destroy(&doc);
   return ok;
}

static const char *
tz_of(const flora_config_t *config, flora_error_t *error)
{
   const char *tz = flora_config_string(config, "shop.timezone");

   return flora__delivery_tz_check(tz, error) ? tz : NULL;
}

/* ---- reserve / release ----------------------------------------------------------------- */

static bool
capacity_for(flora_store_t *store, const char *date, const char *slot_id, int *capacity,
             const char **why, flora_error_t *error)
{
   flora__rules_t *r = bson_malloc0(sizeof *r);
   day_t d = {0};
   bool ok = false;

   *why = NULL;
   if (!slot_id || !*slot_id) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "slot: is required");
      goto cleanup;
   }
   if (!flora__delivery_rules_load(store, r, error) || !parse_day(r, date, &d, error)) {
      goto cleanup;
   }
   if (strcmp(slot_id, EXACT_ID) == 0) {
      if (!r->exact_enabled) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "slot: exact-time delivery is not offered");
         goto cleanup;
      }
      *capacity = r->exact_capacity;
   } else {
      const flora__slot_rule_t *s = flora__delivery_rules_slot(r, slot_id);

      if (!s) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "slot: unknown delivery window %s", slot_id);
         goto cleanup;
      }
      *capacity = window_capacity(s, &d);
      if (!(s->weekdays & (1u << (d.weekday - 1)))) {
         *why = "slot_not_offered";
      }
   }
   if (d.blocked) {
      *why = "date_blocked";
   }
   ok = true;
cleanup:
   bson_free(r);
   return ok;
}

bool
flora_delivery_reserve_slot(flora_store_t *txn, const char *date, const char *slot_id,
                            flora_error_t *error)
{
   char key[64];
   int capacity = 0;
   const char *why = NULL;
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, opts = BSON_INITIALIZER;
   bson_t reply, child, lt;
   bson_iter_t it;
   bool ok = false;

   FLORA_ASSERT_ARG(txn);
   bson_init(&reply);
   if (!capacity_for(txn, date, slot_id, &capacity, &why, error)) {
      goto cleanup;
   }
   if (why) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT, "slot full: %s %s (%s)", date,
                      slot_id, why);
      goto cleanup;
   }
   slot_key(key, sizeof key, date, slot_id);
   /* 1: the document exists (an upsert by _id equality, which MongoDB retries itself on a
    *    concurrent duplicate-key race); */
   BSON_APPEND_UTF8(&filter, "_id", key);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$setOnInsert", &child);
   BSON_APPEND_UTF8(&child, "date", date);
   BSON_APPEND_UTF8(&child, "slot", slot_id);
   BSON_APPEND_INT32(&child, "reserved", 0);
   bson_append_document_end(&update, &child);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &child);
   BSON_APPEND_INT32(&child, "capacity", capacity);
   bson_append_document_end(&update, &child);
   BSON_APPEND_BOOL(&opts, "upsert", true);
   if (!flora_store_update_one(txn, SLOTS, &filter, &update, &opts, NULL, error)) {
      goto cleanup;
   }
   /* 2: the one conditional update that enforces the limit. */
   BSON_APPEND_DOCUMENT_BEGIN(&filter, "reserved", &lt);
   BSON_APPEND_INT32(&lt, "$lt", capacity);
   bson_append_document_end(&filter, &lt);
   bson_reinit(&update);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &child);
   BSON_APPEND_INT32(&child, "reserved", 1);
   bson_append_document_end(&update, &child);
   bson_destroy(&reply);
   if (!flora_store_update_one(txn, SLOTS, &filter, &update, NULL, &reply, error)) {
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, &reply, "matchedCount") || bson_iter_as_int64(&it) != 1) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                      "slot full: %s %s has no capacity left (%d)", date, slot_id, capacity);
      goto cleanup;
   }
   ok = true;
cleanup:
   bson_destroy(&filter);
   bson_destroy(&update);
   bson_destroy(&opts);
   bson_destroy(&reply);
   return ok;
}

bool
flora_delivery_release_slot(flora_store_t *txn, const char *date, const char *slot_id,
                            flora_error_t *error)
{
   char key[64];
   int y, m, d;
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, child;
   bool ok;

   FLORA_ASSERT_ARG(txn);
   if (!date || !flora__delivery_parse_date(date, &y, &m, &d)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "date: must be a calendar date YYYY-MM-DD");
      return false;
   }
   if (!slot_id || !*slot_id || strlen(slot_id) >= FLORA__DELIVERY_ID_MAX) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "slot: is required");
      return false;
   }
   slot_key(key, sizeof key, date, slot_id);
   BSON_APPEND_UTF8(&filter, "_id", key);
   BSON_APPEND_DOCUMENT_BEGIN(&filter, "reserved", &child);
   BSON_APPEND_INT32(&child, "$gt", 0);
   bson_append_document_end(&filter, &child);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &child);
   BSON_APPEND_INT32(&child, "reserved", -1);
   bson_append_document_end(&update, &child);
   ok = flora_store_update_one(txn, SLOTS, &filter, &update, NULL, NULL, error);
   bson_destroy(&filter);
   bson_destroy(&update);
   return ok;
}

/* ---- the day's slots ----------------------------------------------------------------------- */

static bool
append_slots(flora_store_t *store, const flora__rules_t *r, const char *tz, const day_t *d,
             const char *date, int64_t now_ms, bool detailed, bson_t *arr, flora_error_t *error)
{
   char kb[16];
   uint32_t n = 0;

   for (size_t i = 0; i < r->n_slots; i++) {
      const flora__slot_rule_t *s = &r->slots[i];
      const char *why = NULL;
      bool failed = false;
      int64_t reserved = 0, remaining;
      int cap = window_capacity(s, d);
      bson_t doc;

      if (!(s->weekdays & (1u << (d->weekday - 1)))) {
         if (!detailed) {
            continue;
         }
         why = "slot_not_offered";
      }
      if (!why) {
         why = timing(r, tz, d, s->start, now_ms, error, &failed);
      }
      if (failed || !reserved_of(store, date, s->id, &reserved, error)) {
         return false;
      }
      remaining = cap - reserved > 0 ? cap - reserved : 0;
      if (!why && remaining == 0) {
         why = "slot_full";
      }
      const char *key = idx(n++, kb, sizeof kb);

      BSON_APPEND_DOCUMENT_BEGIN(arr, key, &doc);
      BSON_APPEND_UTF8(&doc, "id", s->id);
      append_hhmm(&doc, "start", s->start);
      append_hhmm(&doc, "end", s->end);
      if (detailed) {
         bson_t sur, e;
         uint32_t k = 0;

         BSON_APPEND_INT32(&doc, "capacity", cap);
         BSON_APPEND_INT64(&doc, "reserved", reserved);
         BSON_APPEND_INT64(&doc, "remaining", remaining);
         BSON_APPEND_BOOL(&doc, "available", why == NULL);
         if (why) {
            BSON_APPEND_UTF8(&doc, "reason", why);
         }
         BSON_APPEND_ARRAY_BEGIN(&doc, "surcharges", &sur);
         if (d->holiday && d->holiday->surcharge > 0) {
            key = idx(k++, kb, sizeof kb);
            BSON_APPEND_DOCUMENT_BEGIN(&sur, key, &e);
            BSON_APPEND_UTF8(&e, "kind", "holiday");
            BSON_APPEND_INT64(&e, "amount", d->holiday->surcharge);
            bson_append_document_end(&sur, &e);
         }
         if (flora__delivery_rules_night(r, s->start, s->end) && r->night_surcharge > 0) {
            key = idx(k++, kb, sizeof kb);
            BSON_APPEND_DOCUMENT_BEGIN(&sur, key, &e);
            BSON_APPEND_UTF8(&e, "kind", "night");
            BSON_APPEND_INT64(&e, "amount", r->night_surcharge);
            bson_append_document_end(&sur, &e);
         }
         bson_append_array_end(&doc, &sur);
      } else {
         BSON_APPEND_INT64(&doc, "remaining", remaining);
         BSON_APPEND_BOOL(&doc, "available", why == NULL);
      }
      bson_append_document_end(arr, &doc);
   }
   return true;
}

bool
flora_delivery_slots_list(flora_store_t *store, const flora_config_t *config, const char *date,
                          int64_t now_ms, bson_t *out, flora_error_t *error)
{
   flora__rules_t *r = bson_malloc0(sizeof *r);
   const char *tz;
   day_t d = {0};
   bson_t arr, ex;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(config);
   bson_init(out);
   if (!(tz = tz_of(config, error)) || !flora__delivery_rules_load(store, r, error) ||
       !open_day(r, tz, date, now_ms, &d, error)) {
      goto cleanup;
   }
   BSON_APPEND_UTF8(out, "date", date);
   BSON_APPEND_INT32(out, "weekday", d.weekday);
   BSON_APPEND_UTF8(out, "timezone", tz);
   BSON_APPEND_BOOL(out, "blocked", d.blocked);
   if (d.holiday) {
      BSON_APPEND_UTF8(out, "holiday", d.holiday->name);
   }
   BSON_APPEND_ARRAY_BEGIN(out, "slots", &arr);
   ok = append_slots(store, r, tz, &d, date, now_ms, true, &arr, error);
   bson_append_array_end(out, &arr);
   if (!ok) {
      goto cleanup;
   }
   if (r->exact_enabled) {
      int64_t reserved = 0;

      ok = reserved_of(store, date, EXACT_ID, &reserved, error);
      BSON_APPEND_DOCUMENT_BEGIN(out, "exactTime", &ex);
      append_hhmm(&ex, "from", r->exact_start);
      append_hhmm(&ex, "to", r->exact_end);
      BSON_APPEND_INT64(&ex, "surcharge", r->exact_surcharge);
      BSON_APPEND_INT32(&ex, "capacity", r->exact_capacity);
      BSON_APPEND_INT64(&ex, "remaining",
                        r->exact_capacity - reserved > 0 ? r->exact_capacity - reserved : 0);
      bson_append_document_end(out, &ex);
   } else {
      BSON_APPEND_NULL(out, "exactTime");
   }
cleanup:
   if (!ok) {
      bson_reinit(out);
   }
   bson_free(r);
   return ok;
}

/* ---- the quote ---------------------------------------------------------------------------- */

typedef struct request {
   bool has_point;
   double lat, lon;
   const char *address;
   int64_t subtotal;
   const char *date;
   const char *slot;
   const char *exact;
} request_t;

static bool
read_request(const bson_t *req, request_t *q, flora_error_t *error)
{
   bson_iter_t it;
   bool has_lat, has_lon;
   static const char *const known[] = {"address", "lat", "lon", "subtotal", "date", "slot",
                                       "exactTime", "options", NULL};

   memset(q, 0, sizeof *q);
   bson_iter_init(&it, req);
   while (bson_iter_next(&it)) {
      bool ok = false;

      for (size_t i = 0; known[i]; i++) {
         ok = ok || strcmp(known[i], bson_iter_key(&it)) == 0;
      }
      if (!ok) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "%s: unknown field",
                         bson_iter_key(&it));
         return false;
      }
   }
   has_lat = bson_iter_init_find(&it, req, "lat");
   if (has_lat) {
      if (!BSON_ITER_HOLDS_NUMBER(&it) || !(fabs(bson_iter_as_double(&it)) <= 90)) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "lat: must be a latitude in degrees from -90 to 90");
         return false;
      }
      q->lat = bson_iter_as_double(&it);
   }
   has_lon = bson_iter_init_find(&it, req, "lon");
   if (has_lon) {
      if (!BSON_ITER_HOLDS_NUMBER(&it) || !(fabs(bson_iter_as_double(&it)) <= 180)) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "lon: must be a longitude in degrees from -180 to 180");
         return false;
      }
      q->lon = bson_iter_as_double(&it);
   }
   if (has_lat != has_lon) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "%s: is required with %s",
                      has_lat ? "lon" : "lat", has_lat ? "lat" : "lon");
      return false;
   }
   q->has_point = has_lat;
   if (bson_iter_init_find(&it, req, "address")) {
      if (!BSON_ITER_HOLDS_UTF8(&it) || bson_iter_utf8_len_unsafe(&it) == 0 ||
          strlen(bson_iter_utf8(&it, NULL)) > 500) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "address: must be a non-empty string of at most 500 bytes");
         return false;
      }
      q->address = bson_iter_utf8(&it, NULL);
   }
   if (!q->has_point && !q->address) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "lat: coordinates (lat, lon) or an address are required");
      return false;
   }
   if (!bson_iter_init_find(&it, req, "subtotal") || !BSON_ITER_HOLDS_INT(&it) ||
       bson_iter_as_int64(&it) < 0) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "subtotal: is required: the order's value in whole kopecks >= 0");
      return false;
   }
   q->subtotal = bson_iter_as_int64(&it);
   if (!bson_iter_init_find(&it, req, "date") || !BSON_ITER_HOLDS_UTF8(&it)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "date: is required: YYYY-MM-DD in the shop's time zone");
      return false;
   }
   q->date = bson_iter_utf8(&it, NULL);
   if (bson_iter_init_find(&it, req, "slot")) {
      if (!BSON_ITER_HOLDS_UTF8(&it)) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "slot: must be a window id such as \"09-12\"");
         return false;
      }
      q->slot = bson_iter_utf8(&it, NULL);
   }
   if (bson_iter_init_find(&it, req, "exactTime")) {
      int m;

      if (!BSON_ITER_HOLDS_UTF8(&it) || !flora__delivery_parse_hhmm(bson_iter_utf8(&it, NULL), false, &m)) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "exactTime: must be a time HH:MM");
         return false;
      }
      q->exact = bson_iter_utf8(&it, NULL);
   }
   if (q->slot && q->exact) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "exactTime: give either slot or exactTime, not both");
      return false;
   }
   return true;
}

typedef struct zone_match {
   bool found;
   bool beyond;
   char id[FLORA__DELIVERY_ID_MAX];
   double km;
   int64_t base, per_km, min_order, free_from;
   double per_km_beyond;
   double near_lat, near_lon; /* the nearest shop location, for the courier */
   double near_km;
} zone_match_t;

static double
get_double(const bson_t *doc, const char *path)
{
   bson_iter_t it, f;

   if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &f) &&
       BSON_ITER_HOLDS_NUMBER(&f)) {
      return bson_iter_as_double(&f);
   }
   return 0;
}

static int64_t
get_int64(const bson_t *doc, const char *path, int64_t dflt)
{
   bson_iter_t it, f;

   if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &f) &&
       BSON_ITER_HOLDS_NUMBER(&f)) {
      return bson_iter_as_int64(&f);
   }
   return dflt;
}

static bool
match_zone(flora_store_t *store, double lat, double lon, zone_match_t *m, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
   flora_cursor_t *cursor = NULL;
   const bson_t *z;
   bool ok = false;

   memset(m, 0, sizeof *m);
   m->near_km = -1;
   BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
   BSON_APPEND_INT32(&sort, "priority", 1);
   bson_append_document_end(&opts, &sort);
   if (!flora_store_find(store, "delivery_zones", &filter, &opts, &cursor, error)) {
      goto cleanup;
   }
   while (flora_cursor_next(cursor, &z)) {
      double plat = get_double(z, "location.point.1"), plon = get_double(z, "location.point.0");
      double km = flora_delivery_distance_km(plat, plon, lat, lon);
      bool inside = false;
      bson_iter_t it;

      if (m->near_km < 0 || km < m->near_km) {
         m->near_km = km;
         m->near_lat = plat;
         m->near_lon = plon;
      }
      if (m->found) {
         continue;
      }
      if (bson_iter_init_find(&it, z, "polygon") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
         bson_t g;
         const uint8_t *data;
         uint32_t len;

         bson_iter_document(&it, &len, &data);
         bson_init_static(&g, data, len);
         if (!flora_delivery_geometry_contains(&g, lon, lat, &inside, error)) {
            goto cleanup;
         }
      } else {
         inside = km >= get_double(z, "ring.innerKm") && km <= get_double(z, "ring.outerKm");
      }
      if (!inside) {
         continue;
      }
      if (km > get_double(z, "maxDistanceKm")) {
         m->beyond = true;
         continue;
      }
      m->found = true;
      bson_iter_init_find(&it, z, "_id");
      snprintf(m->id, sizeof m->id, "%s", BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "");
      m->km = km;
      m->base = get_int64(z, "basePrice", 0);
      m->per_km = get_int64(z, "perKmPrice", 0);
      m->per_km_beyond = get_double(z, "perKmBeyondKm");
      m->min_order = get_int64(z, "minOrder", 0);
      m->free_from = get_int64(z, "freeFrom", -1);
   }
   ok = !flora_cursor_error(cursor, error);
cleanup:
   flora_cursor_destroy(cursor);
   bson_destroy(&filter);
   bson_destroy(&opts);
   return ok;
}

static void
add_surcharge(bson_t *arr, uint32_t *n, const char *kind, int64_t amount, int64_t *sum)
{
   char kb[16];
   bson_t e;

   if (amount <= 0) {
      return;
   }
   const char *key = idx((*n)++, kb, sizeof kb);

   BSON_APPEND_DOCUMENT_BEGIN(arr, key, &e);
   BSON_APPEND_UTF8(&e, "kind", kind);
   BSON_APPEND_INT64(&e, "amount", amount);
   bson_append_document_end(arr, &e);
   *sum += amount;
}

bool
flora_delivery_quote_at(flora_store_t *store, const flora_config_t *config, const bson_t *request,
                        int64_t now_ms, bson_t *quote, flora_error_t *error)
{
   flora__rules_t *r = bson_malloc0(sizeof *r);
   request_t q;
   const char *tz;
   const char *reason = NULL;
   const char *zone = NULL;
   day_t d = {0};
   zone_match_t m;
   int64_t base = 0, distance = 0, discount = 0, surcharges = 0;
   double km = 0;
   int start = -1, end = -1;
   bson_t sur = BSON_INITIALIZER, slots = BSON_INITIALIZER, b, arr;
   uint32_t n_sur = 0;
   bool ok = false, located = true;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(request);
   bson_init(quote);
   if (!read_request(request, &q, error) || !(tz = tz_of(config, error)) ||
       !flora__delivery_rules_load(store, r, error) || !open_day(r, tz, q.date, now_ms, &d, error)) {
      goto cleanup;
   }
   if (q.slot) {
      const flora__slot_rule_t *s = flora__delivery_rules_slot(r, q.slot);

      if (!s) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "slot: unknown delivery window %s", q.slot);
         goto cleanup;
      }
      start = s->start;
      end = s->end;
   } else if (q.exact) {
      flora__delivery_parse_hhmm(q.exact, false, &start);
      end = start + 1;
   }

   /* where */
   if (!q.has_point) {
      bool found = false;
      flora_error_t gerr = {0};

      if (!flora_delivery_geocode(store, config, q.address, &q.lat, &q.lon, &found, &gerr)) {
         FLORA_LOG_WARN(LOG_DOMAIN, "geocoder failed", "error", gerr.message);
         reason = "geocoder_unavailable";
         located = false;
      } else if (!found) {
         reason = "address_not_found";
         located = false;
      }
   }
   if (located) {
      if (!match_zone(store, q.lat, q.lon, &m, error)) {
         goto cleanup;
      }
      if (m.found) {
         int64_t extra_m = 0;

         zone = m.id;
         km = m.km;
         base = m.base;
         if (km > m.per_km_beyond) {
            extra_m = llround((km - m.per_km_beyond) * 1000.0);
         }
         distance = (m.per_km * extra_m + 500) / 1000;
         if (m.free_from >= 0 && q.subtotal >= m.free_from) {
            discount = base + distance;
         }
         if (q.subtotal < m.min_order) {
            reason = "below_minimum_order";
         }
      } else if (strcmp(flora_config_string(config, "delivery.courier"), "none") != 0 &&
                 m.near_km >= 0) {
         flora_error_t cerr = {0};
         double ckm = 0;

         if (flora__delivery_courier_price(config, m.near_lat, m.near_lon, q.lat, q.lon, &base,
                                           &ckm, &cerr)) {
            zone = "courier";
            km = ckm > 0 ? ckm : flora_delivery_distance_km(m.near_lat, m.near_lon, q.lat, q.lon);
         } else {
            FLORA_LOG_WARN(LOG_DOMAIN, "courier service failed; not deliverable", "error",
                           cerr.message);
            reason = m.beyond ? "beyond_max_distance" : "outside_zones";
         }
      } else {
         reason = m.beyond ? "beyond_max_distance" : "outside_zones";
      }
   }

   /* when */
   BSON_APPEND_ARRAY_BEGIN(&slots, "slots", &arr);
   ok = append_slots(store, r, tz, &d, q.date, now_ms, false, &arr, error);
   bson_append_array_end(&slots, &arr);
   if (!ok) {
      goto cleanup;
   }
   ok = false;
   {
      const char *when = NULL;
      bool failed = false;

      if (d.blocked) {
         when = "date_blocked";
      } else if (q.slot) {
         const flora__slot_rule_t *s = flora__delivery_rules_slot(r, q.slot);
         int64_t reserved = 0;

         if (!(s->weekdays & (1u << (d.weekday - 1)))) {
            when = "slot_not_offered";
         } else if ((when = timing(r, tz, &d, s->start, now_ms, error, &failed)) == NULL && !failed) {
            if (!reserved_of(store, q.date, s->id, &reserved, error)) {
               goto cleanup;
            }
            if (reserved >= window_capacity(s, &d)) {
               when = "slot_full";
            }
         }
      } else if (q.exact) {
         int64_t reserved = 0;

         if (!r->exact_enabled || start < r->exact_start || start >= r->exact_end) {
            when = "exact_time_unavailable";
         } else if ((when = timing(r, tz, &d, start, now_ms, error, &failed)) == NULL && !failed) {
            if (!reserved_of(store, q.date, EXACT_ID, &reserved, error)) {
               goto cleanup;
            }
            if (reserved >= r->exact_capacity) {
               when = "slot_full";
            }
         }
      }
      if (failed) {
         goto cleanup;
      }
      if (!reason) {
         reason = when;
      }
   }
   BSON_APPEND_ARRAY_BEGIN(&sur, "surcharges", &arr);
   if (q.exact) {
      add_surcharge(&arr, &n_sur, "exact_time", r->exact_surcharge, &surcharges);
   }
   if (d.holiday) {
      add_surcharge(&arr, &n_sur, "holiday", d.holiday->surcharge, &surcharges);
   }
   if (start >= 0 && flora__delivery_rules_night(r, start, end)) {
      add_surcharge(&arr, &n_sur, "night", r->night_surcharge, &surcharges);
   }
   bson_append_array_end(&sur, &arr);

   BSON_APPEND_BOOL(quote, "deliverable", reason == NULL);
   if (reason) {
      BSON_APPEND_UTF8(quote, "reason", reason);
   }
   BSON_APPEND_INT64(quote, "price", base + distance + surcharges - discount);
   BSON_APPEND_UTF8(quote, "currency", flora_config_string(config, "shop.currency"));
   BSON_APPEND_DOCUMENT_BEGIN(quote, "breakdown", &b);
   BSON_APPEND_INT64(&b, "base", base);
   BSON_APPEND_INT64(&b, "distance", distance);
   {
      bson_iter_t it;

      bson_iter_init_find(&it, &sur, "surcharges");
      bson_append_iter(&b, "surcharges", -1, &it);
   }
   BSON_APPEND_INT64(&b, "discount", discount);
   bson_append_document_end(quote, &b);
   if (zone) {
      BSON_APPEND_UTF8(quote, "zone", zone);
   } else {
      BSON_APPEND_NULL(quote, "zone");
   }
   BSON_APPEND_DOUBLE(quote, "distanceKm", round(km * 1000.0) / 1000.0);
   if (located) {
      BSON_APPEND_DOUBLE(quote, "lat", q.lat);
      BSON_APPEND_DOUBLE(quote, "lon", q.lon);
   }
   BSON_APPEND_UTF8(quote, "date", q.date);
   if (q.slot) {
      BSON_APPEND_UTF8(quote, "slot", q.slot);
   }
   if (q.exact) {
      BSON_APPEND_UTF8(quote, "exactTime", q.exact);
   }
   {
      bson_iter_t it;

      bson_iter_init_find(&it, &slots, "slots");
      bson_append_iter(quote, "slots", -1, &it);
   }
   BSON_APPEND_DATE_TIME(quote, "quotedAt", now_ms);
   ok = true;
cleanup:
   if (!ok) {
      bson_reinit(quote);
   }
   bson_destroy(&sur);
   bson_destroy(&slots);
   bson_free(r);
   return ok;
}

bool
flora_delivery_quote(flora_store_t *store, const flora_config_t *config, const bson_t *request,
                     bson_t *quote, flora_error_t *error)
{
   struct timespec ts;

   clock_gettime(CLOCK_REALTIME, &ts);
   return flora_delivery_quote_at(store, config, request,
                                  (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000, quote, error);
}
