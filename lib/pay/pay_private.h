/* Internals shared by the files of lib/pay: the service struct, the HTTP client with retries,
 * BSON helpers and form encoding. */
#ifndef FLORA_PAY_PRIVATE_H
#define FLORA_PAY_PRIVATE_H

#include <pthread.h>

#include "flora/log.h"
#include "flora/pay.h"

#define FLORA_PAY_LOG "pay"

/* A cached bearer token (PayPal's OAuth2 client credentials). */
typedef struct flora__pay_token_cache {
   pthread_mutex_t lock;
   char *token;         /* NULL when none */
   int64_t expires_at_s; /* refreshed this many seconds before the provider's expiry */
   int64_t fetched;     /* how many tokens were fetched (tests and logs) */
} flora__pay_token_cache_t;

struct flora_pay {
   flora_store_t *store;
   const flora_config_t *config;
   const flora_pay_orders_t *orders;
   flora_pay_options_t options;
   flora__pay_token_cache_t token;
};

int64_t flora__pay_now(const flora_pay_t *pay);

typedef struct flora__pay_http_request {
   const char *provider;     /* for logs and messages */
   const char *method;       /* "GET", "POST" */
   const char *url;
   const char *content_type; /* NULL when no body */
   const char *body;
   size_t body_len;
   const char *headers[8];   /* extra "Name: value" lines, NULL-terminated */
   const char *userpwd;      /* "user:password" for Basic auth, or NULL */
   bool retry;               /* apply the retry policy (only with an idempotency key or a read) */
} flora__pay_http_request_t;

typedef struct flora__pay_http_response {
   long status;          /* final HTTP status */
   char *body;           /* NUL-terminated, owned */
   size_t body_len;
   bson_t *json;         /* parsed body when it is a JSON object, else NULL */
   int tries;            /* how many times the request was sent */
} flora__pay_http_response_t;

/* Sends the request; with req->retry, retries per flora_pay_retry_should with backoff.
 * Returns false (PROVIDER/UNAVAILABLE) only when no answer came on the last try; any
 * HTTP answer returns true with res->status set. res is zeroed by the callee. */
bool flora__pay_http(flora_pay_t *pay, const flora__pay_http_request_t *req,
                     flora__pay_http_response_t *res, flora_error_t *error);
void flora__pay_http_response_cleanup(flora__pay_http_response_t *res);

/* Fills *error from a non-2xx answer: >= 500 and 409 UNAVAILABLE, 401/403 UNAUTHORIZED,
 * other 4xx INVALID; the message names the provider, the status and its own message
 * (message_path into the JSON body, e.g. "error.message"). Returns false. */
bool flora__pay_http_fail(const flora__pay_http_response_t *res, const char *provider,
                          const char *message_path, flora_error_t *error);

/* The string / integer at a dotted path, or NULL / false. */
const char *flora__pay_str(const bson_t *doc, const char *path);
bool flora__pay_int64(const bson_t *doc, const char *path, int64_t *out);

/* Appends "key=value" (URL-escaped) to a form body, with '&' between pairs. */
void flora__pay_form_add(bson_string_t *form, const char *key, const char *value);

/* "<base><path>" into a new string (bson_free). */
char *flora__pay_url(const char *base, const char *path);

/* The config key pay.<provider>.<name>. */
const char *flora__pay_conf(const flora_pay_t *pay, const char *provider, const char *name);

/* "fmt" with one %s replaced by id, or NULL when id is empty or has a character outside
 * [A-Za-z0-9_-] (every provider's ids fit), so an id never reshapes a URL. bson_free. */
char *flora__pay_id_path(const char *fmt, const char *id);

/* Sets a result's strings (copies). */
void flora__pay_result_set(char **field, const char *value);

#endif
