/* Text analysis for full-text search: Unicode word splitting (UAX #29, libunistring),
 * case folding, and Snowball stemming (libstemmer) for Russian and English, so that
 * "Розы", "розой" and "роза" meet at one term. Used by the embedded engine's text index
 * and by the catalog's search ranking.
 *
 * Languages: "russian", "english", "none" (fold case only), and MongoDB's two-letter
 * codes "ru", "en". A word in Cyrillic is stemmed with the Russian stemmer and a word in
 * Latin script with the English one when the language is russian or english (shop text
 * mixes both: "Роза Red Naomi"); "none" never stems. Digits-only words are kept as they
 * are. Stop words are not removed (bouquet names are short). */
#ifndef FLORA_TEXT_H
#define FLORA_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "flora/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Receives one term (NUL-terminated UTF-8, borrowed for the call) and its position
 * (0-based word index). Return false to stop. */
typedef bool (*flora_text_term_fn)(void *ctx, const char *term, size_t position);

/* Splits utf8[0..len) into words, folds case, stems, and calls fn for each term. Invalid
 * UTF-8 fails with an INPUT error. An unknown language fails with code 2 (STORE domain,
 * MongoDB's "language override unsupported" is 17262; we use BadValue). */
bool flora_text_terms(const char *utf8, size_t len, const char *language, flora_text_term_fn fn,
                      void *ctx, flora_error_t *error);

/* Convenience: the terms joined by single spaces into a new string (caller frees). */
char *flora_text_terms_joined(const char *utf8, size_t len, const char *language,
                              flora_error_t *error);

/* Lower-cases UTF-8 text (full Unicode case folding); caller frees. NULL on invalid UTF-8. */
char *flora_text_fold(const char *utf8, size_t len);

/* True when the language name is supported. */
bool flora_text_language_supported(const char *language);

#ifdef __cplusplus
}
#endif
#endif
