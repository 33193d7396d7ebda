/* Internals of lib/delivery shared between its files. */
#ifndef FLORA_DELIVERY_PRIVATE_H
#define FLORA_DELIVERY_PRIVATE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/config.h"
#include "flora/delivery.h"

#define FLORA__DELIVERY_MAX_SLOTS 32
#define FLORA__DELIVERY_MAX_HOLIDAYS 64
#define FLORA__DELIVERY_MAX_BLOCKED 366
#define FLORA__DELIVERY_ID_MAX 32

/* A civil date and time in the shop's zone; weekday 1 = Monday .. 7 = Sunday. */
typedef struct flora__civil {
   int year, month, day;
   int minute; /* minutes since local midnight */
   int weekday;
} flora__civil_t;

typedef struct flora__slot_rule {
   char id[FLORA__DELIVERY_ID_MAX];
   int start, end; /* minutes since local midnight; end may be 1440 */
   int capacity;
   unsigned weekdays; /* bit (d - 1) for ISO weekday d */
} flora__slot_rule_t;

typedef struct flora__holiday {
   char name[64];
   int from_md, to_md; /* month * 100 + day; from > to wraps over the new year */
   int64_t surcharge;
   int capacity; /* per window on those dates; -1 keeps the window's own */
} flora__holiday_t;

typedef struct flora__rules {
   flora__slot_rule_t slots[FLORA__DELIVERY_MAX_SLOTS];
   size_t n_slots;
   bool exact_enabled;
   int exact_start, exact_end, exact_capacity;
   int64_t exact_surcharge;
   int cutoff;       /* same-day orders only before this local minute */
   int lead_minutes; /* a slot starts no sooner than now + lead */
   int horizon_days; /* latest bookable date: today + horizon */
   int32_t blocked[FLORA__DELIVERY_MAX_BLOCKED]; /* days since 1970-01-01 */
   size_t n_blocked;
   flora__holiday_t holidays[FLORA__DELIVERY_MAX_HOLIDAYS];
   size_t n_holidays;
   bool night_enabled;
   int night_start, night_end;
   int64_t night_surcharge;
} flora__rules_t;

/* ---- civil time (delivery_time.c) ------------------------------------------------- */

/* "YYYY-MM-DD" with a real calendar day; false otherwise. */
bool flora__delivery_parse_date(const char *s, int *year, int *month, int *day);
/* "HH:MM", 00:00..23:59 (24:00 too when allow_24). */
bool flora__delivery_parse_hhmm(const char *s, bool allow_24, int *minutes);
/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
int32_t flora__delivery_days(int year, int month, int day);
/* ISO weekday (1 = Monday) of a day number. */
int flora__delivery_weekday(int32_t days);
/* Checks an IANA zone name against ICU's data. CONFIG error when unknown. */
bool flora__delivery_tz_check(const char *tz, flora_error_t *error);
/* UTC instant -> local civil time in tz (ICU ucal). */
bool flora__delivery_to_local(const char *tz, int64_t utc_ms, flora__civil_t *out,
                              flora_error_t *error);
/* Local civil time (date and minute of day, 1440 = next midnight) in tz -> UTC instant.
 * A time repeated by a DST fall-back is its first occurrence; a time skipped by a
 * spring-forward moves to the first valid time after the gap. */
bool flora__delivery_to_utc(const char *tz, int year, int month, int day, int minute,
                            int64_t *utc_ms, flora_error_t *error);

/* ---- rules (delivery_rules.c) ------------------------------------------------------ */

bool flora__delivery_rules_from_bson(const bson_t *doc, flora__rules_t *rules, bson_t *problems);
void flora__delivery_rules_to_bson(const flora__rules_t *rules, bson_t *out);
/* Stored rules or the defaults. */
bool flora__delivery_rules_load(flora_store_t *store, flora__rules_t *rules, flora_error_t *error);
const flora__slot_rule_t *flora__delivery_rules_slot(const flora__rules_t *rules, const char *id);
const flora__holiday_t *flora__delivery_rules_holiday(const flora__rules_t *rules, int month,
                                                      int day);
bool flora__delivery_rules_blocked(const flora__rules_t *rules, int32_t days);
bool flora__delivery_rules_night(const flora__rules_t *rules, int start, int end);

/* ---- problems (delivery_zones.c) --------------------------------------------------- */

/* Turns collected problems into a VALIDATION error (first problem, plus a count) and
 * copies them to the caller's problems array when not NULL. Returns false. */
bool flora__delivery_problems_fail(const bson_t *collected, bson_t *problems, const char *what,
                                   flora_error_t *error);
/* Number of elements of an array document. */
uint32_t flora__delivery_count(const bson_t *array);

/* ---- external providers (delivery_providers.c) ------------------------------------- */

/* Prices a courier delivery from (from_lat, from_lon) to (lat, lon) with the configured
 * courier service (delivery.courier). *price in kopecks. PROVIDER errors for timeouts,
 * transport errors and non-2xx answers; CONFIG when none is configured. */
bool flora__delivery_courier_price(const flora_config_t *config, double from_lat, double from_lon,
                                   double lat, double lon, int64_t *price, double *distance_km,
                                   flora_error_t *error);

#endif
