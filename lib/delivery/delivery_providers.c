/* External services of delivery, over libcurl with JSON by libbson:
 *
 * Geocoder "dadata": DaData address suggestions, POST {url} (default
 *   https://suggestions.dadata.ru/suggestions/api/4_1/rs/suggest/address) with headers
 *   Content-Type: application/json, Accept: application/json, Authorization: Token <key>
 *   and body {"query": <address>, "count": 1}; the answer {"suggestions": [{"value",
 *   "unrestricted_value", "data": {"geo_lat": "55.75", "geo_lon": "37.62", ...}}]}, where
 *   geo_lat/geo_lon are decimal strings or null. Source: https://dadata.ru/api/suggest/address/
 *   Results (found or not) are cached in `geocode_cache` (TTL index: 30 days).
 *
 * Courier "yandex": Yandex Delivery (Express) price check, POST {url} (default
 *   https://b2b.taxi.yandex.net/b2b/cargo/integration/v2/check-price) with headers
 *   Authorization: Bearer <OAuth token>, Accept-Language: ru, Content-Type: application/json
 *   and body {"route_points": [{"coordinates": [lon, lat]}, {"coordinates": [lon, lat]}],
 *   "requirements": {"taxi_class": "courier"}}; the answer {"price": "250.00",
 *   "currency_rules": {"code": "RUB", ...}, "distance_meters": 4520.1, "eta": 15, ...}.
 *   Source: https://yandex.ru/support/delivery-profile/ru/api/express/openapi/IntegrationV2CheckPrice
 *
 * Every call has the configured timeout; a timeout, a transport error or a non-2xx answer
 * is a PROVIDER FLORA_ERR_UNAVAILABLE error (the quote then falls back). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "delivery/delivery_private.h"
#include "flora/text.h"

#define CACHE "geocode_cache"
#define MAX_ANSWER (1 << 20)

typedef struct buffer {
   char *data;
   size_t len;
   bool too_large;
} buffer_t;

static size_t
collect(char *ptr, size_t size, size_t nmemb, void *ctx)
{
   buffer_t *b = ctx;
   size_t n = size * nmemb;

   if (b->len + n > MAX_ANSWER) {
      b->too_large = true;
      return 0;
   }
   b->data = bson_realloc(b->data, b->len + n + 1);
   memcpy(b->data + b->len, ptr, n);
   b->len += n;
   b->data[b->len] = '\0';
   return n;
}

/* POSTs body (JSON) to url; *answer is the parsed JSON object of a 2xx answer. */
static bool
post_json(const char *provider, const char *url, const char *auth_header, const char *extra_header,
          const bson_t *body, int64_t timeout_ms, bson_t *answer, flora_error_t *error)
{
   CURL *curl = curl_easy_init();
   struct curl_slist *headers = NULL;
   buffer_t buf = {0};
   char *json = bson_as_relaxed_extended_json(body, NULL);
   long status = 0;
   CURLcode rc;
   bson_error_t berr;
   bool ok = false;

   bson_init(answer);
   if (!curl || !json) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_SYSTEM, "%s: cannot start a request",
                      provider);
      goto cleanup;
   }
   headers = curl_slist_append(headers, "Content-Type: application/json");
   headers = curl_slist_append(headers, "Accept: application/json");
   headers = curl_slist_append(headers, auth_header);
   if (extra_header) {
      headers = curl_slist_append(headers, extra_header);
   }
   curl_easy_setopt(curl, CURLOPT_URL, url);
   curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
   curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
   curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(json));
   curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
   curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms);
   curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
   curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
   curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
   curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
   rc = curl_easy_perform(curl);
   if (rc != CURLE_OK) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE, "%s: %s%s", provider,
                      curl_easy_strerror(rc), buf.too_large ? " (answer over 1 MiB)" : "");
      goto cleanup;
   }
   curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
   if (status < 200 || status > 299) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                      "%s: HTTP %ld: %.200s", provider, status, buf.data ? buf.data : "");
      goto cleanup;
   }
   bson_destroy(answer);
   if (!buf.data || !bson_init_from_json(answer, buf.data, (ssize_t) buf.len, &berr)) {
      bson_init(answer);
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                      "%s: the answer is not a JSON object: %s", provider,
                      buf.data ? berr.message : "empty body");
      goto cleanup;
   }
   ok = true;
cleanup:
   curl_slist_free_all(headers);
   if (curl) {
      curl_easy_cleanup(curl);
   }
   bson_free(json);
   bson_free(buf.data);
   return ok;
}

/* A decimal string ("55.7539") or a number. */
static bool
coordinate(const bson_iter_t *it, double *out)
{
   char *end = NULL;
   const char *s;

   if (BSON_ITER_HOLDS_NUMBER(it)) {
      *out = bson_iter_as_double(it);
      return isfinite(*out);
   }
   if (!BSON_ITER_HOLDS_UTF8(it)) {
      return false;
   }
   s = bson_iter_utf8(it, NULL);
   errno = 0;
   *out = strtod(s, &end);
   return *s && errno == 0 && *end == '\0' && isfinite(*out);
}

/* Cache key: the address case-folded (Unicode, flora_text_fold) with runs of white space
 * collapsed and trimmed. False on invalid UTF-8. */
static bool
cache_key(const char *address, char *out, size_t len)
{
   char *folded = flora_text_fold(address, strlen(address));
   size_t o = 0;
   bool space = false;

   if (!folded) {
      return false;
   }
   for (const char *p = folded; *p && o + 1 < len; p++) {
      if (isspace((unsigned char) *p)) {
         space = o > 0;
         continue;
      }
      if (space && o + 2 < len) {
         out[o++] = ' ';
      }
      space = false;
      out[o++] = *p;
   }
   out[o] = '\0';
   free(folded);
   return true;
}

bool
flora_delivery_geocode(flora_store_t *store, const flora_config_t *config, const char *address,
                       double *lat, double *lon, bool *found, flora_error_t *error)
{
   const char *provider = flora_config_string(config, "delivery.geocoder");
   char key[600], auth[1100];
   bson_t filter = BSON_INITIALIZER, cached, body = BSON_INITIALIZER, answer, doc = BSON_INITIALIZER;
   bson_iter_t it, f;
   bool hit = false, ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(address);
   *found = false;
   bson_init(&answer);
   bson_init(&cached);
   if (strcmp(provider, "dadata") != 0) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_UNAVAILABLE,
                      "delivery.geocoder is none: send lat and lon");
      goto cleanup;
   }
   if (!cache_key(address, key, sizeof key)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "address: is not valid UTF-8");
      goto cleanup;
   }
   BSON_APPEND_UTF8(&filter, "_id", key);
   bson_destroy(&cached);
   if (!flora_store_find_one(store, CACHE, &filter, NULL, &cached, &hit, error)) {
      goto cleanup;
   }
   if (hit) {
      *found = bson_iter_init_find(&it, &cached, "found") && bson_iter_as_bool(&it);
      if (*found) {
         bson_iter_init_find(&it, &cached, "lat");
         *lat = bson_iter_as_double(&it);
         bson_iter_init_find(&it, &cached, "lon");
         *lon = bson_iter_as_double(&it);
      }
      ok = true;
      goto cleanup;
   }
   BSON_APPEND_UTF8(&body, "query", address);
   BSON_APPEND_INT32(&body, "count", 1);
   snprintf(auth, sizeof auth, "Authorization: Token %s",
            flora_config_string(config, "delivery.geocoder_key"));
   bson_destroy(&answer);
   if (!post_json("dadata", flora_config_string(config, "delivery.geocoder_url"), auth, NULL, &body,
                  flora_config_int(config, "delivery.geocoder_timeout_ms"), &answer, error)) {
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, &answer, "suggestions") || !BSON_ITER_HOLDS_ARRAY(&it)) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                      "dadata: the answer has no suggestions array");
      goto cleanup;
   }
   if (bson_iter_init(&it, &answer) && bson_iter_find_descendant(&it, "suggestions.0.data.geo_lat", &f) &&
       coordinate(&f, lat) && bson_iter_init(&it, &answer) &&
       bson_iter_find_descendant(&it, "suggestions.0.data.geo_lon", &f) && coordinate(&f, lon) &&
       fabs(*lat) <= 90 && fabs(*lon) <= 180) {
      *found = true;
   }
   BSON_APPEND_UTF8(&doc, "_id", key);
   BSON_APPEND_UTF8(&doc, "address", address);
   BSON_APPEND_UTF8(&doc, "provider", provider);
   BSON_APPEND_BOOL(&doc, "found", *found);
   if (*found) {
      BSON_APPEND_DOUBLE(&doc, "lat", *lat);
      BSON_APPEND_DOUBLE(&doc, "lon", *lon);
   }
   BSON_APPEND_DATE_TIME(&doc, "createdAt", (int64_t) time(NULL) * 1000);
   {
      bson_t opts = BSON_INITIALIZER;

      BSON_APPEND_BOOL(&opts, "upsert", true);
      ok = flora_store_replace_one(store, CACHE, &filter, &doc, &opts, NULL, error);
      bson_destroy(&opts);
   }
cleanup:
   bson_destroy(&filter);
   bson_destroy(&cached);
   bson_destroy(&body);
   bson_destroy(&answer);
   bson_destroy(&doc);
   return ok;
}

/* "250.00" -> 25000 kopecks; at most two decimals. */
static bool
decimal_to_kopecks(const char *s, int64_t *out)
{
   int64_t v = 0;
   int decimals = -1;

   if (!s || !*s) {
      return false;
   }
   for (const char *p = s; *p; p++) {
      if (*p == '.' && decimals < 0) {
         decimals = 0;
         continue;
      }
      if (*p < '0' || *p > '9' || decimals >= 2 || v > INT64_MAX / 100) {
         return false;
      }
      v = v * 10 + (*p - '0');
      if (decimals >= 0) {
         decimals++;
      }
   }
   for (int i = decimals < 0 ? 0 : decimals; i < 2; i++) {
      v *= 10;
   }
   *out = v;
   return true;
}

bool
flora__delivery_courier_price(const flora_config_t *config, double from_lat, double from_lon,
                              double lat, double lon, int64_t *price, double *distance_km,
                              flora_error_t *error)
{
   const char *provider = flora_config_string(config, "delivery.courier");
   char auth[1100];
   bson_t body = BSON_INITIALIZER, answer, points, p, c, req;
   bson_iter_t it;
   bool ok = false;

   bson_init(&answer);
   if (strcmp(provider, "yandex") != 0) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_UNAVAILABLE, "delivery.courier is none");
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN(&body, "route_points", &points);
   BSON_APPEND_DOCUMENT_BEGIN(&points, "0", &p);
   BSON_APPEND_ARRAY_BEGIN(&p, "coordinates", &c);
   BSON_APPEND_DOUBLE(&c, "0", from_lon);
   BSON_APPEND_DOUBLE(&c, "1", from_lat);
   bson_append_array_end(&p, &c);
   bson_append_document_end(&points, &p);
   BSON_APPEND_DOCUMENT_BEGIN(&points, "1", &p);
   BSON_APPEND_ARRAY_BEGIN(&p, "coordinates", &c);
   BSON_APPEND_DOUBLE(&c, "0", lon);
   BSON_APPEND_DOUBLE(&c, "1", lat);
   bson_append_array_end(&p, &c);
   bson_append_document_end(&points, &p);
   bson_append_array_end(&body, &points);
   BSON_APPEND_DOCUMENT_BEGIN(&body, "requirements", &req);
   BSON_APPEND_UTF8(&req, "taxi_class", "courier");
   bson_append_document_end(&body, &req);
   snprintf(auth, sizeof auth, "Authorization: Bearer %s",
            flora_config_string(config, "delivery.courier_key"));
   bson_destroy(&answer);
   if (!post_json("yandex delivery", flora_config_string(config, "delivery.courier_url"), auth,
                  "Accept-Language: ru", &body, flora_config_int(config, "delivery.courier_timeout_ms"),
                  &answer, error)) {
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, &answer, "price") || !BSON_ITER_HOLDS_UTF8(&it) ||
       !decimal_to_kopecks(bson_iter_utf8(&it, NULL), price)) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                      "yandex delivery: the answer has no decimal price");
      goto cleanup;
   }
   {
      bson_iter_t cur;

      if (bson_iter_init(&it, &answer) &&
          bson_iter_find_descendant(&it, "currency_rules.code", &cur) && BSON_ITER_HOLDS_UTF8(&cur) &&
          strcmp(bson_iter_utf8(&cur, NULL), flora_config_string(config, "shop.currency")) != 0) {
         flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                         "yandex delivery: price in %s, not the shop's currency",
                         bson_iter_utf8(&cur, NULL));
         goto cleanup;
      }
   }
   *distance_km = 0;
   if (bson_iter_init_find(&it, &answer, "distance_meters") && BSON_ITER_HOLDS_NUMBER(&it)) {
      *distance_km = bson_iter_as_double(&it) / 1000.0;
   }
   ok = true;
cleanup:
   bson_destroy(&body);
   bson_destroy(&answer);
   return ok;
}
