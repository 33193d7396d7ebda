/* Civil time in the shop's zone through ICU's calendar (unicode/ucal.h): conversions
 * between UTC instants and local date/time that are right across midnight and DST
 * changes, without touching the process-wide TZ (setenv("TZ") is not thread-safe). */
#include <stdio.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "delivery/delivery_private.h"

bool
flora__delivery_parse_date(const char *s, int *year, int *month, int *day)
{
   static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
   int y = 0, m = 0, d = 0, dim;

   if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') {
      return false;
   }
   for (int i = 0; i < 10; i++) {
      if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) {
         return false;
      }
   }
   y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
   m = (s[5] - '0') * 10 + (s[6] - '0');
   d = (s[8] - '0') * 10 + (s[9] - '0');
   if (y < 1970 || m < 1 || m > 12 || d < 1) {
      return false;
   }
   dim = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
   if (d > dim) {
      return false;
   }
   *year = y;
   *month = m;
   *day = d;
   return true;
}

bool
flora__delivery_parse_hhmm(const char *s, bool allow_24, int *minutes)
{
   int h, m;

   if (!s || strlen(s) != 5 || s[2] != ':') {
      return false;
   }
   for (int i = 0; i < 5; i++) {
      if (i != 2 && (s[i] < '0' || s[i] > '9')) {
         return false;
      }
   }
   h = (s[0] - '0') * 10 + (s[1] - '0');
   m = (s[3] - '0') * 10 + (s[4] - '0');
   if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24))) {
      return false;
   }
   *minutes = h * 60 + m;
   return true;
}

int32_t
flora__delivery_days(int year, int month, int day)
{
   /* http://howardhinnant.github.io/date_algorithms.html#days_from_civil */
   int y = year - (month <= 2);
   int era = (y >= 0 ? y : y - 399) / 400;
   unsigned yoe = (unsigned) (y - era * 400);
   unsigned doy = (unsigned) ((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1);
   unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

   return (int32_t) (era * 146097 + (int) doe - 719468);
}

int
flora__delivery_weekday(int32_t days)
{
   /* 1970-01-01 was a Thursday (ISO 4). */
   int w = (int) ((days % 7 + 7) % 7); /* 0 = Thursday */
   return (w + 3) % 7 + 1;
}

static bool
open_calendar(const char *tz, UCalendar **out, flora_error_t *error)
{
   UChar zone[128];
   UErrorCode status = U_ZERO_ERROR;
   int32_t len = 0;

   u_strFromUTF8(zone, (int32_t) (sizeof zone / sizeof zone[0]), &len, tz, -1, &status);
   if (U_FAILURE(status)) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID, "shop.timezone: bad name %s",
                      tz);
      return false;
   }
   *out = ucal_open(zone, len, "en_US_POSIX", UCAL_GREGORIAN, &status);
   if (U_FAILURE(status)) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "shop.timezone: ICU cannot open %s: %s", tz, u_errorName(status));
      return false;
   }
   /* A repeated wall time is its first occurrence; a skipped one the first valid after. */
   ucal_setAttribute(*out, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
   ucal_setAttribute(*out, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_NEXT_VALID);
   return true;
}

bool
flora__delivery_tz_check(const char *tz, flora_error_t *error)
{
   UChar zone[128], canon[128];
   UErrorCode status = U_ZERO_ERROR;
   int32_t len = 0;
   UBool system = 0;

   u_strFromUTF8(zone, (int32_t) (sizeof zone / sizeof zone[0]), &len, tz, -1, &status);
   if (U_SUCCESS(status)) {
      ucal_getCanonicalTimeZoneID(zone, len, canon, (int32_t) (sizeof canon / sizeof canon[0]),
                                  &system, &status);
   }
   if (U_FAILURE(status) || !system) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "shop.timezone: %s is not an IANA time zone ICU knows", tz);
      return false;
   }
   return true;
}

bool
flora__delivery_to_local(const char *tz, int64_t utc_ms, flora__civil_t *out, flora_error_t *error)
{
   UCalendar *cal = NULL;
   UErrorCode status = U_ZERO_ERROR;
   int dow;

   if (!open_calendar(tz, &cal, error)) {
      return false;
   }
   ucal_setMillis(cal, (UDate) utc_ms, &status);
   out->year = ucal_get(cal, UCAL_YEAR, &status);
   out->month = ucal_get(cal, UCAL_MONTH, &status) + 1;
   out->day = ucal_get(cal, UCAL_DATE, &status);
   out->minute = ucal_get(cal, UCAL_HOUR_OF_DAY, &status) * 60 + ucal_get(cal, UCAL_MINUTE, &status);
   dow = ucal_get(cal, UCAL_DAY_OF_WEEK, &status); /* UCAL_SUNDAY = 1 */
   out->weekday = dow == UCAL_SUNDAY ? 7 : dow - 1;
   ucal_close(cal);
   if (U_FAILURE(status)) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "ICU cannot convert an instant to %s: %s", tz, u_errorName(status));
      return false;
   }
   return true;
}

bool
flora__delivery_to_utc(const char *tz, int year, int month, int day, int minute, int64_t *utc_ms,
                       flora_error_t *error)
{
   UCalendar *cal = NULL;
   UErrorCode status = U_ZERO_ERROR;
   UDate ms;

   if (!open_calendar(tz, &cal, error)) {
      return false;
   }
   ucal_clear(cal);
   ucal_setDateTime(cal, year, month - 1, day, 0, 0, 0, &status);
   if (minute >= 1440) {
      /* the next local midnight: add a calendar day, not 24 hours */
      ucal_add(cal, UCAL_DATE, 1, &status);
      minute -= 1440;
   }
   ucal_set(cal, UCAL_HOUR_OF_DAY, minute / 60);
   ucal_set(cal, UCAL_MINUTE, minute % 60);
   ms = ucal_getMillis(cal, &status);
   ucal_close(cal);
   if (U_FAILURE(status)) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "ICU cannot convert a local time in %s: %s", tz, u_errorName(status));
      return false;
   }
   *utc_ms = (int64_t) ms;
   return true;
}
