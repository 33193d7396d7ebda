/* Structured logs: one line of logfmt (default) or JSON per event on stderr, with a level,
 * a per-module domain and key/value fields. The level is checked before anything is
 * formatted (redis serverLog). Thread-safe: each line is written with one write(2).
 *
 *   FLORA_LOG_INFO("http", "request", "id", rid, "status", "200");
 *
 * Fields are pairs of strings terminated by the macro; values are quoted and escaped as
 * the format requires. */
#ifndef FLORA_LOG_H
#define FLORA_LOG_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum flora_log_level {
   FLORA_LOG_LEVEL_DEBUG = 0,
   FLORA_LOG_LEVEL_INFO,
   FLORA_LOG_LEVEL_WARN,
   FLORA_LOG_LEVEL_ERROR,
   FLORA_LOG_LEVEL_OFF,
} flora_log_level_t;

/* Sets the threshold and format ("logfmt" or "json"). Defaults: info, logfmt. Returns
 * false for an unknown level or format name. */
bool flora_log_configure(const char *level, const char *format);
bool flora_log_enabled(flora_log_level_t level);

/* Writes one line: ts, level, domain, msg, then the NULL-terminated key/value pairs. */
void flora_log_write(flora_log_level_t level, const char *domain, const char *msg, ...);

#define FLORA_LOG_AT(lvl, domain, msg, ...)                                                   \
   do {                                                                                      \
      if (flora_log_enabled(lvl)) {                                                          \
         flora_log_write((lvl), (domain), (msg), ##__VA_ARGS__, (const char *) NULL);         \
      }                                                                                      \
   } while (0)
#define FLORA_LOG_DEBUG(domain, msg, ...) FLORA_LOG_AT(FLORA_LOG_LEVEL_DEBUG, domain, msg, ##__VA_ARGS__)
#define FLORA_LOG_INFO(domain, msg, ...) FLORA_LOG_AT(FLORA_LOG_LEVEL_INFO, domain, msg, ##__VA_ARGS__)
#define FLORA_LOG_WARN(domain, msg, ...) FLORA_LOG_AT(FLORA_LOG_LEVEL_WARN, domain, msg, ##__VA_ARGS__)
#define FLORA_LOG_ERROR(domain, msg, ...) FLORA_LOG_AT(FLORA_LOG_LEVEL_ERROR, domain, msg, ##__VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
