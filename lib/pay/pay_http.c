/* The providers' HTTP client: libcurl with timeouts, retries with backoff and jitter
 * (lib/pay/retry.c), JSON answers parsed with libbson. */
#include "pay_private.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct grow {
   char *data;
   size_t len;
   size_t cap;
   size_t limit;
} grow_t;

#define MAX_ANSWER_BYTES (8u << 20)

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
   grow_t *g = ud;
   size_t n = size * nmemb;

   if (g->len + n + 1 > g->limit) {
      return 0;
   }
   if (g->len + n + 1 > g->cap) {
      size_t cap = g->cap ? g->cap : 4096;
      char *d;

      while (cap < g->len + n + 1) {
         cap *= 2;
      }
      d = realloc(g->data, cap);
      if (!d) {
         return 0;
      }
      g->data = d;
      g->cap = cap;
   }
   memcpy(g->data + g->len, ptr, n);
   g->len += n;
   g->data[g->len] = '\0';
   return n;
}

typedef struct hdrs {
   char should_retry[8];
} hdrs_t;

static size_t
on_header(char *buf, size_t size, size_t nitems, void *ud)
{
   hdrs_t *h = ud;
   size_t n = size * nitems;
   static const char name[] = "stripe-should-retry:";

   if (n > sizeof name - 1 && strncasecmp(buf, name, sizeof name - 1) == 0) {
      const char *v = buf + sizeof name - 1;
      size_t vlen = n - (sizeof name - 1);

      while (vlen && (*v == ' ' || *v == '\t')) {
         v++;
         vlen--;
      }
      while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ')) {
         vlen--;
      }
      if (vlen < sizeof h->should_retry) {
         memcpy(h->should_retry, v, vlen);
         h->should_retry[vlen] = '\0';
      }
   }
   return n;
}

static void
default_sleep(void *ctx, int64_t ms)
{
   struct timespec ts = {(time_t) (ms / 1000), (long) (ms % 1000) * 1000000L};

   (void) ctx;
   while (nanosleep(&ts, &ts) != 0) {
   }
}

static double
jitter(void)
{
   /* Jitter needs no cryptographic randomness. */
   uint32_t r = (uint32_t) random();
   return (double) (r % 1000000u) / 1000000.0;
}

static bool
send_once(flora_pay_t *pay, const flora__pay_http_request_t *req, grow_t *body, hdrs_t *h,
          long *status, char errbuf[CURL_ERROR_SIZE])
{
   CURL *curl = curl_easy_init();
   struct curl_slist *list = NULL;
   CURLcode rc;

   if (!curl) {
      snprintf(errbuf, CURL_ERROR_SIZE, "curl_easy_init failed");
      return false;
   }
   errbuf[0] = '\0';
   curl_easy_setopt(curl, CURLOPT_URL, req->url);
   curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
   curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
   curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                    (long) flora_config_int(pay->config, "pay.http_timeout_ms"));
   curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                    (long) flora_config_int(pay->config, "pay.connect_timeout_ms"));
   curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
   curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
   curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
   curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
   curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
   curl_easy_setopt(curl, CURLOPT_HEADERDATA, h);
   curl_easy_setopt(curl, CURLOPT_USERAGENT, "flora/" FLORA_VERSION);
   if (req->userpwd) {
      curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
      curl_easy_setopt(curl, CURLOPT_USERPWD, req->userpwd);
   }
   list = curl_slist_append(list, "Accept: application/json");
   list = curl_slist_append(list, "Expect:");
   for (size_t i = 0; i < 8 && req->headers[i]; i++) {
      list = curl_slist_append(list, req->headers[i]);
   }
   if (req->content_type) {
      char ct[128];

      snprintf(ct, sizeof ct, "Content-Type: %s", req->content_type);
      list = curl_slist_append(list, ct);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
   }
   curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
   rc = curl_easy_perform(curl);
   if (rc == CURLE_OK) {
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
   } else if (!errbuf[0]) {
      snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
   }
   curl_slist_free_all(list);
   curl_easy_cleanup(curl);
   return rc == CURLE_OK;
}

bool
flora__pay_http(flora_pay_t *pay, const flora__pay_http_request_t *req,
                flora__pay_http_response_t *res, flora_error_t *error)
{
   int max_tries;

   FLORA_ASSERT_ARG(pay && req && res);
   memset(res, 0, sizeof *res);
   max_tries = 1 + (req->retry ? (int) flora_config_int(pay->config, "pay.max_retries") : 0);
   for (int attempt = 1;; attempt++) {
      grow_t body = {NULL, 0, 0, MAX_ANSWER_BYTES};
      hdrs_t h = {{0}};
      long status = 0;
      char errbuf[CURL_ERROR_SIZE];
      bool answered;
      bool again;

      answered = send_once(pay, req, &body, &h, &status, errbuf);
      res->tries = attempt;
      again = attempt < max_tries &&
              flora_pay_retry_should(!answered, status, h.should_retry[0] ? h.should_retry : NULL);
      FLORA_LOG_AT(again ? FLORA_LOG_LEVEL_WARN : FLORA_LOG_LEVEL_DEBUG, FLORA_PAY_LOG,
                   "provider call", "provider", req->provider, "method", req->method, "url",
                   req->url, "status", answered ? (status >= 500 ? "5xx" : "answered") : "no answer",
                   "error", answered ? "" : errbuf, "retry", again ? "yes" : "no");
      if (!again) {
         if (!answered) {
            free(body.data);
            flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                            "%s: %s %s: %s", req->provider, req->method, req->url, errbuf);
            return false;
         }
         res->status = status;
         res->body = body.data ? body.data : strdup("");
         res->body_len = body.len;
         if (res->body_len > 0) {
            bson_error_t berr;

            res->json = bson_new_from_json((const uint8_t *) res->body, (ssize_t) res->body_len,
                                           &berr);
         }
         return true;
      }
      free(body.data);
      {
         int64_t delay = flora_pay_retry_delay_ms(&pay->options.retry, attempt, jitter());

         (pay->options.retry.sleep ? pay->options.retry.sleep : default_sleep)(
            pay->options.retry.sleep_ctx, delay);
      }
   }
}

void
flora__pay_http_response_cleanup(flora__pay_http_response_t *res)
{
   if (!res) {
      return;
   }
   free(res->body);
   if (res->json) {
      bson_destroy(res->json);
   }
   memset(res, 0, sizeof *res);
}

bool
flora__pay_http_fail(const flora__pay_http_response_t *res, const char *provider,
                     const char *message_path, flora_error_t *error)
{
   const char *msg = res->json ? flora__pay_str(res->json, message_path) : NULL;
   uint32_t code;

   if (res->status >= 500 || res->status == 409 || res->status == 429) {
      code = FLORA_ERR_UNAVAILABLE;
   } else if (res->status == 401 || res->status == 403) {
      code = FLORA_ERR_UNAUTHORIZED;
   } else if (res->status == 404) {
      code = FLORA_ERR_NOT_FOUND;
   } else {
      code = FLORA_ERR_INVALID;
   }
   flora_error_set(error, FLORA_DOMAIN_PROVIDER, code, "%s answered %ld: %.300s", provider,
                   res->status, msg ? msg : (res->body ? res->body : ""));
   return false;
}

const char *
flora__pay_str(const bson_t *doc, const char *path)
{
   bson_iter_t it, child;

   if (!doc || !bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &child) ||
       !BSON_ITER_HOLDS_UTF8(&child)) {
      return NULL;
   }
   return bson_iter_utf8(&child, NULL);
}

bool
flora__pay_int64(const bson_t *doc, const char *path, int64_t *out)
{
   bson_iter_t it, child;

   if (!doc || !bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &child)) {
      return false;
   }
   if (BSON_ITER_HOLDS_INT32(&child)) {
      *out = bson_iter_int32(&child);
      return true;
   }
   if (BSON_ITER_HOLDS_INT64(&child)) {
      *out = bson_iter_int64(&child);
      return true;
   }
   return false;
}

void
flora__pay_form_add(bson_string_t *form, const char *key, const char *value)
{
   char *k = curl_easy_escape(NULL, key, 0);
   char *v = curl_easy_escape(NULL, value ? value : "", 0);

   if (form->len > 0) {
      bson_string_append_c(form, '&');
   }
   bson_string_append(form, k ? k : "");
   bson_string_append_c(form, '=');
   bson_string_append(form, v ? v : "");
   curl_free(k);
   curl_free(v);
}

char *
flora__pay_url(const char *base, const char *path)
{
   size_t n = strlen(base);

   while (n > 0 && base[n - 1] == '/') {
      n--;
   }
   return bson_strdup_printf("%.*s%s", (int) n, base, path);
}

const char *
flora__pay_conf(const flora_pay_t *pay, const char *provider, const char *name)
{
   char key[96];

   snprintf(key, sizeof key, "pay.%s.%s", provider, name);
   return flora_config_string(pay->config, key);
}

char *
flora__pay_id_path(const char *fmt, const char *id)
{
   if (!id || !*id || strlen(id) > 100) {
      return NULL;
   }
   for (const char *p = id; *p; p++) {
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '_' || *p == '-')) {
         return NULL;
      }
   }
   return bson_strdup_printf(fmt, id);
}

void
flora__pay_result_set(char **field, const char *value)
{
   bson_free(*field);
   *field = value ? bson_strdup(value) : NULL;
}

void
flora_pay_result_cleanup(flora_pay_result_t *result)
{
   if (!result) {
      return;
   }
   bson_free(result->provider_payment_id);
   bson_free(result->status);
   bson_free(result->currency);
   bson_free(result->capture_id);
   bson_free(result->refund_id);
   if (result->client.len) {
      bson_destroy(&result->client);
   }
   memset(result, 0, sizeof *result);
}

void
flora_pay_event_cleanup(flora_pay_event_t *event)
{
   if (!event) {
      return;
   }
   bson_free(event->event_id);
   bson_free(event->type);
   flora_pay_result_cleanup(&event->object);
   memset(event, 0, sizeof *event);
}
