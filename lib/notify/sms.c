/* SMS: segment counting, the SMS.ru and Twilio providers, quiet hours and the per-number
 * rate limit (include/flora/notify.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>
#include <unistr.h>

#include "flora/notify.h"
#include "notify/notify_private.h"

/* ---- segments ----------------------------------------------------------------------- */

/* 3GPP TS 23.038 section 6.2.1: the default alphabet's characters outside printable ASCII
 * (which is all in it except ` and the extension characters below). */
static const ucs4_t gsm_basic_extra[] = {
   0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x00D8, 0x00F8,
   0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3,
   0x0398, 0x039E, 0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6,
   0x00D1, 0x00DC, 0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0, '\n', '\r',
};
/* Section 6.2.1.1, the extension table: ESC + character, two septets each. */
static const char gsm_extension[] = "^{}\\[~]|\f";

static int
gsm_septets(ucs4_t c)
{
   if (c == 0x20AC) { /* EURO SIGN, in the extension table */
      return 2;
   }
   if (c < 0x80 && c != 0 && strchr(gsm_extension, (int) c)) {
      return 2;
   }
   if (c >= 0x20 && c < 0x7F && c != '`') {
      return 1;
   }
   for (size_t i = 0; i < sizeof gsm_basic_extra / sizeof gsm_basic_extra[0]; i++) {
      if (gsm_basic_extra[i] == c) {
         return 1;
      }
   }
   return 0;
}

bool
flora_sms_count_segments(const char *utf8, flora_sms_segments_t *out, flora_error_t *error)
{
   const uint8_t *s = (const uint8_t *) utf8;
   size_t n = strlen(utf8);
   size_t septets = 0, utf16 = 0;
   bool gsm = true;

   FLORA_ASSERT_ARG(utf8);
   FLORA_ASSERT_ARG(out);
   if (u8_check(s, n) != NULL) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "SMS text is not valid UTF-8");
      return false;
   }
   for (size_t i = 0; i < n;) {
      ucs4_t c;
      int len = u8_mbtouc(&c, s + i, n - i);
      int sep = gsm_septets(c);

      i += (size_t) len;
      utf16 += c >= 0x10000 ? 2 : 1;
      if (sep == 0) {
         gsm = false;
      }
      septets += (size_t) sep;
   }
   out->gsm7 = gsm;
   out->units = gsm ? septets : utf16;
   if (out->units == 0) {
      out->segments = 0;
   } else if (gsm) {
      out->segments = out->units <= 160 ? 1 : (out->units + 152) / 153;
   } else {
      out->segments = out->units <= 70 ? 1 : (out->units + 66) / 67;
   }
   return true;
}

/* ---- providers --------------------------------------------------------------------- */

static bool
send_smsru(const flora_config_t *config, const char *to, const char *text, char *provider_id,
           size_t provider_id_len, flora_error_t *error)
{
   const char *api_id = flora_config_string(config, "notify.smsru_api_id");
   const char *from = flora_config_string(config, "notify.smsru_from");
   long timeout = (long) flora_config_int(config, "notify.smtp_timeout_s");
   flora__notify_http_t res = {0};
   CURL *esc = NULL;
   char *form = NULL;
   char url[1200];
   bson_t *reply = NULL;
   bson_iter_t it, sms;
   bool ok = false;

   if (!*api_id) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "notify.smsru_api_id is not set");
      return false;
   }
   if (!flora__notify_curl_init(error)) {
      return false;
   }
   esc = curl_easy_init();
   /* https://sms.ru/api/send: "to" is the number in international format without "+". */
   form = esc ? flora__notify_form_append(NULL, esc, "api_id", api_id) : NULL;
   form = form ? flora__notify_form_append(form, esc, "to", to[0] == '+' ? to + 1 : to) : NULL;
   form = form ? flora__notify_form_append(form, esc, "msg", text) : NULL;
   form = form ? flora__notify_form_append(form, esc, "json", "1") : NULL;
   if (form && *from) {
      form = flora__notify_form_append(form, esc, "from", from);
   }
   if (!form) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      goto cleanup;
   }
   snprintf(url, sizeof url, "%s/sms/send", flora_config_string(config, "notify.smsru_url"));
   if (!flora__notify_http_post_form(url, form, NULL, NULL, timeout, &res, error)) {
      flora_error_prefix(error, "SMS.ru");
      goto cleanup;
   }
   if (res.status != 200) { /* 5xx, 429 and the rest: the service, not this message */
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                      "SMS.ru answered HTTP %ld", res.status);
      goto cleanup;
   }
   reply = bson_new_from_json((const uint8_t *) res.body, (ssize_t) res.body_len, NULL);
   if (!reply || !bson_iter_init_find(&it, reply, "status") || !BSON_ITER_HOLDS_UTF8(&it)) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                      "SMS.ru answered something that is not its JSON reply");
      goto cleanup;
   }
   if (strcmp(bson_iter_utf8(&it, NULL), "OK") != 0) {
      /* A request-level error (bad api_id, no funds, service unavailable): the account or
       * the service, not this message; retried until an operator fixes it. */
      const char *text_status = NULL;
      if (bson_iter_init_find(&it, reply, "status_text") && BSON_ITER_HOLDS_UTF8(&it)) {
         text_status = bson_iter_utf8(&it, NULL);
      }
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE, "SMS.ru refused: %s",
                      text_status ? text_status : "status ERROR");
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, reply, "sms") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
       !bson_iter_recurse(&it, &sms) || !bson_iter_next(&sms) || !BSON_ITER_HOLDS_DOCUMENT(&sms)) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                      "SMS.ru reply has no per-number result");
      goto cleanup;
   }
   {
      bson_iter_t r;
      const char *status = NULL, *sms_id = NULL, *status_text = NULL;

      bson_iter_recurse(&sms, &r);
      while (bson_iter_next(&r)) {
         if (!BSON_ITER_HOLDS_UTF8(&r)) {
            continue;
         }
         if (strcmp(bson_iter_key(&r), "status") == 0) {
            status = bson_iter_utf8(&r, NULL);
         } else if (strcmp(bson_iter_key(&r), "sms_id") == 0) {
            sms_id = bson_iter_utf8(&r, NULL);
         } else if (strcmp(bson_iter_key(&r), "status_text") == 0) {
            status_text = bson_iter_utf8(&r, NULL);
         }
      }
      if (!status || strcmp(status, "OK") != 0) {
         flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_INVALID,
                         "SMS.ru refused the number: %s", status_text ? status_text : "ERROR");
         goto cleanup;
      }
      snprintf(provider_id, provider_id_len, "%s", sms_id ? sms_id : "");
   }
   ok = true;
cleanup:
   if (reply) {
      bson_destroy(reply);
   }
   flora__notify_http_clear(&res);
   free(form);
   curl_easy_cleanup(esc);
   return ok;
}

static bool
send_twilio(const flora_config_t *config, const char *to, const char *text, char *provider_id,
            size_t provider_id_len, flora_error_t *error)
{
   const char *sid = flora_config_string(config, "notify.twilio_account_sid");
   const char *token = flora_config_string(config, "notify.twilio_auth_token");
   const char *from = flora_config_string(config, "notify.twilio_from");
   long timeout = (long) flora_config_int(config, "notify.smtp_timeout_s");
   flora__notify_http_t res = {0};
   CURL *esc = NULL;
   char *form = NULL;
   char url[1200];
   bson_t *reply = NULL;
   bson_iter_t it;
   bool ok = false;

   if (!*sid || !*token || !*from) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "notify.twilio_account_sid, twilio_auth_token and twilio_from must be set");
      return false;
   }
   if (!flora__notify_curl_init(error)) {
      return false;
   }
   esc = curl_easy_init();
   form = esc ? flora__notify_form_append(NULL, esc, "To", to) : NULL;
   /* A Messaging Service SID (MG...) goes in MessagingServiceSid instead of From. */
   form = form ? flora__notify_form_append(form, esc,
                                           strncmp(from, "MG", 2) == 0 ? "MessagingServiceSid"
                                                                       : "From",
                                           from)
               : NULL;
   form = form ? flora__notify_form_append(form, esc, "Body", text) : NULL;
   if (!form) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      goto cleanup;
   }
   snprintf(url, sizeof url, "%s/2010-04-01/Accounts/%s/Messages.json",
            flora_config_string(config, "notify.twilio_url"), sid);
   if (!flora__notify_http_post_form(url, form, sid, token, timeout, &res, error)) {
      flora_error_prefix(error, "Twilio");
      goto cleanup;
   }
   reply = res.body ? bson_new_from_json((const uint8_t *) res.body, (ssize_t) res.body_len, NULL)
                    : NULL;
   if (res.status != 200 && res.status != 201) {
      const char *message = NULL;

      if (reply && bson_iter_init_find(&it, reply, "message") && BSON_ITER_HOLDS_UTF8(&it)) {
         message = bson_iter_utf8(&it, NULL);
      }
      flora_error_set(error, FLORA_DOMAIN_PROVIDER,
                      res.status >= 500 || res.status == 429 || res.status == 401
                         ? FLORA_ERR_UNAVAILABLE
                         : FLORA_ERR_INVALID,
                      "Twilio answered HTTP %ld: %s", res.status, message ? message : "");
      goto cleanup;
   }
   if (!reply || !bson_iter_init_find(&it, reply, "sid") || !BSON_ITER_HOLDS_UTF8(&it)) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                      "Twilio's reply has no message sid");
      goto cleanup;
   }
   snprintf(provider_id, provider_id_len, "%s", bson_iter_utf8(&it, NULL));
   ok = true;
cleanup:
   if (reply) {
      bson_destroy(reply);
   }
   flora__notify_http_clear(&res);
   free(form);
   curl_easy_cleanup(esc);
   return ok;
}

bool
flora_sms_send(const flora_config_t *config, const char *to, const char *text, char *provider_id,
               size_t provider_id_len, flora_error_t *error)
{
   const char *provider;

   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(to);
   FLORA_ASSERT_ARG(text);
   FLORA_ASSERT_ARG(provider_id);
   provider = flora_config_string(config, "notify.sms_provider");
   provider_id[0] = '\0';
   if (strcmp(provider, "smsru") == 0) {
      return send_smsru(config, to, text, provider_id, provider_id_len, error);
   }
   if (strcmp(provider, "twilio") == 0) {
      return send_twilio(config, to, text, provider_id, provider_id_len, error);
   }
   flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                   "no SMS provider configured (notify.sms_provider)");
   return false;
}

/* ---- quiet hours ------------------------------------------------------------------- */

bool
flora_sms_quiet_hours(const flora_config_t *config, int64_t now_ms, bool *quiet,
                      int64_t *ends_at_ms, flora_error_t *error)
{
   const char *tz = flora_config_string(config, "shop.timezone");
   int start = (int) flora_config_int(config, "notify.quiet_hours_start");
   int end = (int) flora_config_int(config, "notify.quiet_hours_end");
   UChar utz[128], canonical[128];
   UErrorCode status = U_ZERO_ERROR;
   UCalendar *cal = NULL;
   UBool system_id = 0;
   int hour;
   bool ok = false;

   *quiet = false;
   *ends_at_ms = now_ms;
   if (start == end) {
      return true;
   }
   u_uastrncpy(utz, tz, (int32_t) (sizeof utz / sizeof utz[0]) - 1);
   utz[sizeof utz / sizeof utz[0] - 1] = 0;
   ucal_getCanonicalTimeZoneID(utz, -1, canonical, 128, &system_id, &status);
   if (U_FAILURE(status) || !system_id) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "shop.timezone: \"%s\" is not a time zone ICU knows", tz);
      return false;
   }
   cal = ucal_open(utz, -1, "en_US_POSIX", UCAL_GREGORIAN, &status);
   if (U_FAILURE(status)) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID, "ICU calendar: %s",
                      u_errorName(status));
      goto cleanup;
   }
   ucal_setMillis(cal, (UDate) now_ms, &status);
   hour = ucal_get(cal, UCAL_HOUR_OF_DAY, &status);
   *quiet = start < end ? (hour >= start && hour < end) : (hour >= start || hour < end);
   if (*quiet) {
      ucal_set(cal, UCAL_HOUR_OF_DAY, end);
      ucal_set(cal, UCAL_MINUTE, 0);
      ucal_set(cal, UCAL_SECOND, 0);
      ucal_set(cal, UCAL_MILLISECOND, 0);
      if ((int64_t) ucal_getMillis(cal, &status) <= now_ms) {
         ucal_add(cal, UCAL_DATE, 1, &status);
      }
      *ends_at_ms = (int64_t) ucal_getMillis(cal, &status);
   }
   if (U_FAILURE(status)) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID, "ICU calendar: %s",
                      u_errorName(status));
      goto cleanup;
   }
   ok = true;
cleanup:
   if (cal) {
      ucal_close(cal);
   }
   return ok;
}

/* ---- rate limit -------------------------------------------------------------------- */

bool
flora_sms_rate_take(flora_store_t *store, const flora_config_t *config, const char *phone,
                    int64_t now_ms, bool *allowed, int64_t *retry_at_ms, flora_error_t *error)
{
   int64_t limit = flora_config_int(config, "notify.sms_rate_limit");
   int64_t window_ms = flora_config_int(config, "notify.sms_rate_window_s") * 1000;
   int64_t start = now_ms - now_ms % window_ms;
   bson_t *filter = NULL, *update = NULL, *opts = NULL;
   bson_t reply = BSON_INITIALIZER;
   flora_error_t err = {0};
   bool ok = false;

   *allowed = false;
   *retry_at_ms = start + window_ms;
   for (int round = 0; round < 2 && !*allowed; round++) {
      bson_iter_t it;

      /* 1. a slot in the current window, under the limit */
      filter = BCON_NEW("_id", BCON_UTF8(phone), "windowStart", BCON_DATE_TIME(start), "count",
                        "{", "$lt", BCON_INT64(limit), "}");
      update = BCON_NEW("$inc", "{", "count", BCON_INT32(1), "}");
      bson_destroy(&reply);
      ok = flora_store_update_one(store, "sms_rate_limits", filter, update, NULL, &reply, error);
      bson_destroy(filter);
      bson_destroy(update);
      if (!ok) {
         goto cleanup;
      }
      if (bson_iter_init_find(&it, &reply, "matchedCount") && bson_iter_as_int64(&it) == 1) {
         *allowed = true;
         break;
      }
      /* 2. no window yet, or an old one: start the current window (upsert) */
      filter = BCON_NEW("_id", BCON_UTF8(phone), "windowStart", "{", "$lt", BCON_DATE_TIME(start),
                        "}");
      update = BCON_NEW("$set", "{", "windowStart", BCON_DATE_TIME(start), "count", BCON_INT32(1),
                        "expiresAt", BCON_DATE_TIME(start + window_ms), "}");
      opts = BCON_NEW("upsert", BCON_BOOL(true));
      bson_destroy(&reply);
      flora_error_clear(&err);
      ok = flora_store_update_one(store, "sms_rate_limits", filter, update, opts, &reply, &err);
      bson_destroy(filter);
      bson_destroy(update);
      bson_destroy(opts);
      if (ok) {
         *allowed = true;
         break;
      }
      if (err.domain != FLORA_DOMAIN_STORE || err.code != FLORA_STORE_DUPLICATE_KEY) {
         if (error) {
            *error = err;
         }
         goto cleanup;
      }
      /* the current window exists and is full, or another worker just started it: look
       * once more at step 1 */
   }
   ok = true;
cleanup:
   bson_destroy(&reply);
   return ok;
}
