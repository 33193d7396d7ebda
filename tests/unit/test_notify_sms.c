/* SMS segment counting (table), quiet hours in the shop's time zone, the per-number rate
 * limit, and the e-mail header encoders. */
#include "flora_test.h"

#include <sodium.h>

#include "flora/migrate.h"
#include "flora/notify.h"

static void
test_segments(void **state)
{
   static const struct {
      const char *text;
      bool gsm7;
      size_t units;
      size_t segments;
   } cases[] = {
      {"", true, 0, 0},
      {"Hello", true, 5, 1},
      {"Price: 5\xe2\x82\xac", true, 10, 1},             /* EURO SIGN: extension, 2 septets */
      {"{[x]}", true, 9, 1},                               /* four extension characters */
      {"Caf\xc3\xa9 \xc3\x9c" "ber @ 10$", true, 15, 1},  /* é, Ü, @, $ are in the basic set */
      {"a`b", false, 3, 1},                                /* ` is not GSM-7 */
      {"\xc3\xaf", false, 1, 1},                           /* ï is not GSM-7 */
      {"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", false, 6, 1}, /* Привет */
      {"\xf0\x9f\x8c\xb9", false, 2, 1},                   /* 🌹: a surrogate pair */
      {"Флора: заказ FL-2026-000123 принят, сумма 3 050,00 ₽.", false, 53, 1},
   };
   char buf[1024];

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      flora_sms_segments_t s;
      flora_error_t error = {0};

      assert_true(flora_sms_count_segments(cases[i].text, &s, &error));
      if (s.gsm7 != cases[i].gsm7 || s.units != cases[i].units || s.segments != cases[i].segments) {
         fail_msg("case %zu \"%s\": got gsm7=%d units=%zu segments=%zu", i, cases[i].text, s.gsm7,
                  s.units, s.segments);
      }
   }
   /* boundaries: 160/161 and 306/307 GSM-7; 70/71 and 134/135 UCS-2 */
   {
      static const struct {
         const char *unit;
         size_t count;
         size_t segments;
      } edges[] = {
         {"a", 160, 1}, {"a", 161, 2}, {"a", 306, 2}, {"a", 307, 3},
         {"\xd1\x8f", 70, 1}, {"\xd1\x8f", 71, 2}, {"\xd1\x8f", 134, 2}, {"\xd1\x8f", 135, 3},
         {"\xe2\x82\xac", 80, 1}, {"\xe2\x82\xac", 81, 2}, /* 160 / 162 septets */
      };

      for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
         flora_sms_segments_t s;
         size_t len = strlen(edges[i].unit);

         buf[0] = '\0';
         for (size_t k = 0; k < edges[i].count; k++) {
            memcpy(buf + k * len, edges[i].unit, len + 1);
         }
         assert_true(flora_sms_count_segments(buf, &s, NULL));
         if (s.segments != edges[i].segments) {
            fail_msg("edge %zu: %zu x \"%s\" gives %zu segments", i, edges[i].count, edges[i].unit,
                     s.segments);
         }
      }
   }
   {
      flora_sms_segments_t s;
      flora_error_t error = {0};

      assert_false(flora_sms_count_segments("abc\xff", &s, &error));
      assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
   }
}

static flora_config_t *
config_with(const char *const *kv)
{
   flora_config_t *config = NULL;
   flora_error_t error = {0};

   assert_true(flora_config_load(&config, NULL, &error));
   for (size_t i = 0; kv[i]; i += 2) {
      if (!flora_config_set(config, kv[i], kv[i + 1], "test", &error)) {
         fail_msg("%s: %s", kv[i], error.message);
      }
   }
   return config;
}

static int64_t
iso_ms(const char *iso)
{
   bson_t *b;
   char json[128];
   bson_iter_t it;
   int64_t ms;

   snprintf(json, sizeof json, "{'d': {'$date': '%s'}}", iso);
   b = J(json);
   assert_true(bson_iter_init_find(&it, b, "d"));
   ms = bson_iter_date_time(&it);
   bson_destroy(b);
   return ms;
}

static void
test_quiet_hours(void **state)
{
   static const char *const kv[] = {"shop.timezone", "Europe/Moscow", "notify.quiet_hours_start",
                                    "22", "notify.quiet_hours_end", "9", NULL};
   static const struct {
      const char *now;
      bool quiet;
      const char *ends; /* NULL: not quiet */
   } cases[] = {
      {"2026-11-30T12:00:00Z", false, NULL},                   /* 15:00 Moscow */
      {"2026-11-30T18:59:59Z", false, NULL},                   /* 21:59:59 */
      {"2026-11-30T19:00:00Z", true, "2026-12-01T06:00:00Z"},  /* 22:00 */
      {"2026-11-30T22:30:00Z", true, "2026-12-01T06:00:00Z"},  /* 01:30 next day */
      {"2026-12-01T05:59:59Z", true, "2026-12-01T06:00:00Z"},  /* 08:59:59 */
      {"2026-12-01T06:00:00Z", false, NULL},                   /* 09:00 */
   };
   flora_config_t *config = config_with(kv);
   static const char *const bad_kv[] = {"shop.timezone", "Mars/Olympus", NULL};
   flora_config_t *bad = config_with(bad_kv);
   bool quiet;
   int64_t ends;
   flora_error_t error = {0};

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      int64_t now = iso_ms(cases[i].now);

      assert_true(flora_sms_quiet_hours(config, now, &quiet, &ends, &error));
      if (quiet != cases[i].quiet) {
         fail_msg("case %zu (%s): quiet=%d", i, cases[i].now, quiet);
      }
      assert_true(ends == (cases[i].ends ? iso_ms(cases[i].ends) : now));
   }
   assert_false(flora_sms_quiet_hours(bad, iso_ms("2026-11-30T20:00:00Z"), &quiet, &ends, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_CONFIG);
   flora_config_destroy(bad);
   flora_config_destroy(config);
}

static void
test_rate_limit(void **state)
{
   static const char *const kv[] = {"notify.sms_rate_limit", "2", "notify.sms_rate_window_s",
                                    "3600", NULL};
   flora_config_t *config = config_with(kv);
   flora_store_t *store = NULL;
   flora_error_t error = {0};
   int64_t now = iso_ms("2026-11-30T12:10:00Z");
   int64_t retry_at = 0;
   bool allowed = false;

   (void) state;
   assert_true(flora_store_open(&store, "sqlite::memory:", NULL, &error));
   assert_true(flora_migrate_up(store, flora_migrate_list(), NULL, NULL, &error));
   assert_true(flora_sms_rate_take(store, config, "+79161234567", now, &allowed, &retry_at, &error));
   assert_true(allowed);
   assert_true(flora_sms_rate_take(store, config, "+79161234567", now + 1000, &allowed, &retry_at, &error));
   assert_true(allowed);
   assert_true(flora_sms_rate_take(store, config, "+79161234567", now + 2000, &allowed, &retry_at, &error));
   assert_false(allowed);
   assert_true(retry_at == iso_ms("2026-11-30T13:00:00Z"));
   /* another number has its own budget */
   assert_true(flora_sms_rate_take(store, config, "+79031234567", now, &allowed, &retry_at, &error));
   assert_true(allowed);
   /* the next window starts afresh */
   assert_true(flora_sms_rate_take(store, config, "+79161234567", iso_ms("2026-11-30T13:00:01Z"),
                                   &allowed, &retry_at, &error));
   assert_true(allowed);
   flora_store_close(store);
   flora_config_destroy(config);
}

static void
test_email_headers(void **state)
{
   static const char *const texts[] = {
      "Flora",
      "Заказ FL-2026-000123 принят \xe2\x80\x94 Флора",
      "Очень длинная тема письма о заказе с букетом из двадцати пяти роз и открыткой 🌹",
   };
   char date[40];

   (void) state;
   assert_int_equal(sodium_init() >= 0, 1);
   for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
      char *enc = NULL;
      char decoded[1024] = "";
      size_t dlen = 0;
      char *save = NULL;

      assert_true(flora_email_encode_words(texts[i], &enc));
      if (i == 0) {
         assert_string_equal(enc, "Flora");
         free(enc);
         continue;
      }
      for (char *word = strtok_r(enc, "\r\n ", &save); word; word = strtok_r(NULL, "\r\n ", &save)) {
         size_t wl = strlen(word), bin_len = 0;

         assert_true(wl <= 75);
         assert_true(strncmp(word, "=?UTF-8?B?", 10) == 0 && strcmp(word + wl - 2, "?=") == 0);
         word[wl - 2] = '\0';
         assert_int_equal(sodium_base642bin((unsigned char *) decoded + dlen, sizeof decoded - dlen,
                                            word + 10, wl - 12, NULL, &bin_len, NULL,
                                            sodium_base64_VARIANT_ORIGINAL),
                          0);
         /* every word holds whole characters: it never ends inside a UTF-8 sequence */
         assert_true(((unsigned char) decoded[dlen + bin_len - 1] & 0xC0) != 0xC0);
         dlen += bin_len;
      }
      decoded[dlen] = '\0';
      assert_string_equal(decoded, texts[i]);
      free(enc);
   }
   flora_email_date(0, date, sizeof date);
   assert_string_equal(date, "Thu, 01 Jan 1970 00:00:00 +0000");
   flora_email_date(iso_ms("2026-11-30T17:07:21Z"), date, sizeof date);
   assert_string_equal(date, "Mon, 30 Nov 2026 17:07:21 +0000");
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_segments),
      cmocka_unit_test(test_quiet_hours),
      cmocka_unit_test(test_rate_limit),
      cmocka_unit_test(test_email_headers),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
