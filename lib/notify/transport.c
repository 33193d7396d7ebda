/* Shared HTTP plumbing of the SMS providers and libcurl's one-time initialisation. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify_private.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;

static void
init_curl(void)
{
   curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool
flora__notify_curl_init(flora_error_t *error)
{
   pthread_once(&curl_once, init_curl);
   if (curl_init_result != CURLE_OK) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE,
                      "libcurl failed to initialise: %s", curl_easy_strerror(curl_init_result));
      return false;
   }
   return true;
}

static size_t
collect(char *data, size_t size, size_t n, void *ctx)
{
   flora__notify_http_t *r = ctx;
   size_t len = size * n;

   if (r->body_len + len > 1024 * 1024) {
      return 0; /* a provider's answer is small; refuse a flood */
   }
   {
      char *grown = realloc(r->body, r->body_len + len + 1);

      if (!grown) {
         return 0;
      }
      r->body = grown;
   }
   memcpy(r->body + r->body_len, data, len);
   r->body_len += len;
   r->body[r->body_len] = '\0';
   return len;
}

bool
flora__notify_http_post_form(const char *url, const char *form, const char *user,
                             const char *password, long timeout_s, flora__notify_http_t *out,
                             flora_error_t *error)
{
   CURL *curl = NULL;
   CURLcode rc;
   bool ok = false;

   memset(out, 0, sizeof *out);
   if (!flora__notify_curl_init(error)) {
      return false;
   }
   curl = curl_easy_init();
   if (!curl) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE, "curl_easy_init failed");
      return false;
   }
   curl_easy_setopt(curl, CURLOPT_URL, url);
   curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
   curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
   curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout_s < 10 ? timeout_s : 10L);
   curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
   curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
   curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
   curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
   if (user) {
      curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
      curl_easy_setopt(curl, CURLOPT_USERNAME, user);
      curl_easy_setopt(curl, CURLOPT_PASSWORD, password ? password : "");
   }
   rc = curl_easy_perform(curl);
   if (rc != CURLE_OK) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE, "POST %s: %s", url,
                      curl_easy_strerror(rc));
      goto cleanup;
   }
   curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
   ok = true;
cleanup:
   curl_easy_cleanup(curl);
   if (!ok) {
      flora__notify_http_clear(out);
   }
   return ok;
}

void
flora__notify_http_clear(flora__notify_http_t *r)
{
   free(r->body);
   r->body = NULL;
   r->body_len = 0;
}

char *
flora__notify_form_append(char *form, CURL *curl, const char *name, const char *value)
{
   char *escaped = curl_easy_escape(curl, value, 0);
   size_t old = form ? strlen(form) : 0;
   size_t need = old + strlen(name) + (escaped ? strlen(escaped) : 0) + 3;
   char *grown;

   if (!escaped) {
      free(form);
      return NULL;
   }
   grown = realloc(form, need);
   if (!grown) {
      curl_free(escaped);
      free(form);
      return NULL;
   }
   snprintf(grown + old, need - old, "%s%s=%s", old ? "&" : "", name, escaped);
   curl_free(escaped);
   return grown;
}
