/* Cross-file internals of lib/notify (STYLE.md: flora__notify_*). */
#ifndef FLORA_NOTIFY_PRIVATE_H
#define FLORA_NOTIFY_PRIVATE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "flora/error.h"

/* Wall clock, milliseconds since the epoch (UTC). */
int64_t flora__notify_now_ms(void);

/* The i-th known event name (0-based), or NULL past the end. */
const char *flora__notify_event_name(size_t i);
bool flora__notify_event_known(const char *event);
/* Whether event is sent on channel ("email" or "sms"). */
bool flora__notify_has_channel(const char *event, const char *channel);

/* libcurl's global initialisation, once per process (thread-safe). */
bool flora__notify_curl_init(flora_error_t *error);

/* An HTTP answer: status and body (malloc'd, NUL-terminated). */
typedef struct flora__notify_http {
   long status;
   char *body;
   size_t body_len;
} flora__notify_http_t;

/* POSTs an application/x-www-form-urlencoded body; user (may be NULL) selects Basic auth.
 * Any HTTP status is success (the caller judges it); transport errors are PROVIDER
 * UNAVAILABLE. *out is cleared by flora__notify_http_clear. */
bool flora__notify_http_post_form(const char *url, const char *form, const char *user,
                                  const char *password, long timeout_s,
                                  flora__notify_http_t *out, flora_error_t *error);
void flora__notify_http_clear(flora__notify_http_t *r);

/* Appends name=value (value URL-encoded with curl_easy_escape) to a malloc'd form string
 * (NULL to start); returns the new string or NULL when out of memory (form is freed). */
char *flora__notify_form_append(char *form, CURL *curl, const char *name, const char *value);

#endif
