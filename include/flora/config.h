/* Configuration: one table of keys (name, environment variable, type, bounds, default,
 * secret flag, help), in the manner of redis config.c. Values come from, in rising
 * precedence: the table's defaults, a configuration file (`key = value` lines, `#`
 * comments; path from --config or FLORA_CONFIG), and environment variables (the key
 * upper-cased with dots as underscores and a FLORA_ prefix: store.uri -> FLORA_STORE_URI).
 * Every value is checked against its type and bounds when loaded; a bad value fails the
 * load naming the key, the source (file:line or the variable) and the reason.
 * `flora config` prints the effective configuration with secrets masked, and
 * `flora config --example` the example file generated from the table. */
#ifndef FLORA_CONFIG_H
#define FLORA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "flora/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flora_config flora_config_t;

/* Loads defaults, then file (may be NULL: none), then the environment. *out is owned by
 * the caller (flora_config_destroy). Errors: CONFIG domain, FLORA_ERR_INVALID. */
bool flora_config_load(flora_config_t **out, const char *file, flora_error_t *error);

/* Sets one key from a string as if it came from source (e.g. "--port"); checked like the
 * others. Code FLORA_ERR_NOT_FOUND for an unknown key. */
bool flora_config_set(flora_config_t *config, const char *key, const char *value,
                      const char *source, flora_error_t *error);

/* A copy of config with the same values and sources (e.g. for a command that applies its
 * own flags with flora_config_set). *out is owned by the caller. Errors: CONFIG domain,
 * FLORA_ERR_SYSTEM when out of memory. */
bool flora_config_copy(flora_config_t **out, const flora_config_t *config, flora_error_t *error);

void flora_config_destroy(flora_config_t *config);

/* Typed getters; asserting (a programming error) on an unknown key or a wrong type. The
 * string is borrowed from config. */
const char *flora_config_string(const flora_config_t *config, const char *key);
int64_t flora_config_int(const flora_config_t *config, const char *key);
bool flora_config_bool(const flora_config_t *config, const char *key);

/* Prints every key = value with its source; secrets masked as "***" (set) or "" (unset). */
void flora_config_print(const flora_config_t *config, FILE *out);
/* Prints the example configuration file: each key's help, type, bounds and default. */
void flora_config_print_example(FILE *out);

#ifdef __cplusplus
}
#endif
#endif
