/* The HTTP server of `flora serve`: libmicrohttpd (https://www.gnu.org/software/libmicrohttpd/)
 * with its own polling threads (a thread pool of http.threads workers, epoll on Linux),
 * HTTP/1.1 keep-alive and an inactivity timeout. What it does with each request is
 * described in src/http.h; the details:
 *
 *   - the path is split at '/' and each segment percent-decoded (RFC 3986 section 2.1) on
 *     its own, so "%2F" inside a {param} stays inside it; malformed escapes or %00 in the
 *     path or the query answer 400;
 *   - the first route in table order whose pattern and method match serves the request
 *     (HEAD is served by a GET route); no pattern matches: 404; a pattern matches but not
 *     the method: 405 with Allow;
 *   - admin routes: no admin token configured 503, no "Authorization: Bearer" 401 (with
 *     WWW-Authenticate), a wrong token 403; tokens compared in constant time;
 *   - a body longer than max_body_bytes: 413. An answer known from the headers (413 by
 *     Content-Length, 404, 405, 401, ...) goes out before the body is read when the client
 *     sent "Expect: 100-continue" or announced more than max(16 MiB, max_body_bytes);
 *     otherwise the body is read and dropped first, so clients that send the whole body
 *     before reading the answer get it, and the connection stays usable;
 *   - the handler's answer is serialised as relaxed Extended JSON of its API view
 *     (src/json_view.h: ObjectIds, dates and decimals as strings); a handler that returns
 *     false, or an answer that cannot be serialised, is a 500 without internals (the cause
 *     is logged with the request id);
 *   - every answer carries X-Request-Id; one log line per request (domain "http") and the
 *     request metrics (src/metrics.h) are recorded when the request completes.
 *
 * Stopping: flora_server_stop stops accepting connections (MHD_quiesce_daemon), lets the
 * requests in flight finish for up to shutdown_timeout_s seconds (their answers carry
 * "Connection: close"), then closes every connection. */
#ifndef FLORA_SRC_SERVER_H
#define FLORA_SRC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flora/config.h"
#include "flora/error.h"
#include "http.h"

typedef struct flora_server flora_server_t;

typedef struct flora_server_options {
   const char *bind;         /* numeric IPv4 or IPv6 address, e.g. "127.0.0.1", "::" */
   int port;                 /* 0: a free port, see flora_server_port */
   int threads;              /* worker threads, >= 1 */
   size_t max_body_bytes;    /* larger bodies get 413 */
   int connection_timeout_s; /* inactivity timeout of a connection */
   int shutdown_timeout_s;   /* how long flora_server_stop waits for requests in flight */
   const char *admin_token;  /* NULL or "": no ops token (users sign in with sessions) */
   bool log_requests;        /* one log line per request */
} flora_server_options_t;

/* Fills *options from the http.* and log.requests keys of config. The strings are
 * borrowed from config. */
void flora_server_options_from_config(flora_server_options_t *options,
                                      const flora_config_t *config);

/* Starts listening and serving routes (a table terminated by an entry with method NULL,
 * borrowed until flora_server_stop; flora_http_routes() in the program) with app handed
 * to every handler (borrowed; app->metrics may be NULL). Copies what it needs of options.
 * *out is owned by the caller (flora_server_stop). Errors: IO domain, FLORA_ERR_INVALID
 * for a bad address, FLORA_ERR_SYSTEM when the socket cannot be bound (message names the
 * address and the reason). */
bool flora_server_start(flora_server_t **out, flora_app_t *app, const flora_route_t *routes,
                        const flora_server_options_t *options, flora_error_t *error);

/* The TCP port the server listens on (the one chosen by the system when options.port was 0). */
uint16_t flora_server_port(const flora_server_t *server);

/* Stops accepting, waits for the requests in flight (up to shutdown_timeout_s), closes
 * every connection and frees the server. NULL is a no-op. */
void flora_server_stop(flora_server_t *server);

#endif
