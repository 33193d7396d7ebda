/* Internals shared by lib/query: dotted paths with MongoDB's implicit array traversal,
 * numeric helpers and the text-score convention. Not installed. */
#ifndef FLORA_QUERY_PRIVATE_H
#define FLORA_QUERY_PRIVATE_H

#include <bson/bson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flora/error.h"
#include "flora/query.h"

/* ---- text score ---------------------------------------------------------------------
 *
 * How an engine passes a document's $text relevance score to sort and projection: it
 * appends a double field named FLORA__TEXT_SCORE_FIELD ("\x01textScore") at the top level
 * of each result copy before sorting/projecting (never to what it stores). No MongoDB
 * client writes a name starting with a control character, so it does not collide with
 * user data in practice. {$meta: "textScore"} sort keys read it (missing = 0.0), a
 * projection {f: {$meta: "textScore"}} writes it under the name f, and every projection
 * (and flora__text_score_strip) removes it from its output. */
#define FLORA__TEXT_SCORE_FIELD "\x01textScore"

/* The score the engine attached to doc, or 0.0. */
double flora__text_score(const bson_t *doc);

/* Copies doc into *out (initialised by the callee) without the score field. */
void flora__text_score_strip(const bson_t *doc, bson_t *out);

/* ---- numbers ------------------------------------------------------------------------ */

/* True for int32, int64, double and decimal128. */
bool flora__value_is_number(const bson_value_t *v);

/* The value as a double (decimal128 is rounded; NaN stays NaN). v must be a number. */
double flora__number_to_double(const bson_value_t *v);

/* Compares two numbers of any numeric type by value, exactly for int32/int64/double
 * (including 2^53 and beyond) and for decimal128 against integers; a double is widened
 * to 34 significant digits before it meets a decimal128 (as MongoDB does). NaN equals
 * NaN and sorts below every number; -0.0 equals 0.0. */
int flora__number_compare(const bson_value_t *a, const bson_value_t *b);

/* The value as an int64 when it is a number with an exact integral value that fits
 * (e.g. 3, 3.0, NumberDecimal("3.00")); false otherwise. */
bool flora__number_as_int64(const bson_value_t *v, int64_t *out);

/* The value truncated toward zero to an int64, saturating at INT64_MIN/INT64_MAX (as
 * MongoDB's $mod and $slice arguments are); false for NaN and infinities. v must be a
 * number. */
bool flora__number_trunc_int64(const bson_value_t *v, int64_t *out);

/* ---- paths ---------------------------------------------------------------------------
 *
 * A dotted path split once at compile time. Walking it over a document follows MongoDB's
 * implicit array traversal (manual "Query an Array of Embedded Documents"): when a
 * component lands on an array and more components follow, the walk continues into every
 * element that is a document; when the next component is a non-negative decimal number
 * ("0", "12") it also continues into the array element at that index. Elements that are
 * not documents end their branch silently. Arrays nested directly in arrays are not
 * flattened (only reachable by an index component). */
typedef struct flora__path {
   char *dotted;          /* the whole path, owned */
   char **parts;          /* components, owned */
   size_t *part_lens;     /* strlen of each component */
   int *part_index;       /* the component as an array index, or -1 */
   size_t n;
} flora__path_t;

/* Splits path at dots. Fails with code 2 (BadValue) for an empty path or an empty
 * component ("a..b", ".a", "a."). On failure *out is left empty (safe to clear). */
bool flora__path_init(flora__path_t *out, const char *path, flora_error_t *error);
void flora__path_clear(flora__path_t *path);

/* What a walk reports for each place the path reaches. */
typedef enum flora__visit_kind {
   /* The value at the end of the path (arrays included, as a whole). */
   FLORA__VISIT_VALUE,
   /* An element of an array found at the end of the path (only with
    * FLORA__WALK_EXPAND_LEAF; reported before the array itself as a whole). */
   FLORA__VISIT_ELEMENT,
   /* The path ends nowhere on this branch: a component is absent from a document, or a
    * component follows a scalar. value is NULL. */
   FLORA__VISIT_MISSING,
} flora__visit_kind_t;

enum flora__walk_flags {
   FLORA__WALK_EXPAND_LEAF = 1 << 0, /* also visit the elements of a leaf array */
};

/* Called for each place reached. value is NULL for FLORA__VISIT_MISSING. array_index is
 * the index, in the FIRST array the walk went through on this branch (a middle array or,
 * for FLORA__VISIT_ELEMENT, the leaf array), of the element followed; -1 when no array
 * was crossed. Return false to stop the walk. */
typedef bool (*flora__path_visit_fn)(void *ctx, flora__visit_kind_t kind,
                                     const bson_iter_t *value, int array_index);

/* Walks path over doc, calling visit for each place reached, in document order.
 * Returns false when a visit stopped the walk, true when it ran to completion.
 * Allocates nothing. */
bool flora__path_walk(const flora__path_t *path, const bson_t *doc, int flags,
                      flora__path_visit_fn visit, void *ctx);

/* The same over a document or array value given by an iterator (BSON_TYPE_DOCUMENT or
 * BSON_TYPE_ARRAY; an array's fields are named "0", "1", ...), starting at component
 * `from`. array_index is passed through as the index of the first array crossed so far
 * (-1 for none). */
bool flora__path_walk_iter(const flora__path_t *path, size_t from, const bson_iter_t *container,
                           int array_index, int flags, flora__path_visit_fn visit, void *ctx);

/* Finds the field named key (len bytes, exact match) in the document or array that
 * *container (positioned on it) holds; on success *out is positioned on the field. */
bool flora__iter_find_child(const bson_iter_t *container, const char *key, size_t len,
                            bson_iter_t *out);

/* Parses a non-negative decimal array index ("0", "17"; no sign, no leading zeros other
 * than "0" itself, at most 9 digits); -1 otherwise. */
int flora__parse_index(const char *s, size_t len);

/* ---- regular expressions -------------------------------------------------------------
 *
 * MongoDB regexes are PCRE. libpcre2's headers are not in the project's package set, so
 * patterns are translated to POSIX extended regexes (glibc <regex.h>, with its GNU
 * extensions \w \W \s \S \b \B) with PCRE's meaning kept: \d \D become [0-9] / [^0-9]
 * (also inside brackets), lazy quantifiers (*? +? ?? {n,m}?) become greedy ones (same
 * match/no-match answer), (?:...) becomes (...), \A \z \Z anchor the subject, \t \n \r
 * \f \v \xHH are the characters, '.' does not match a newline unless option s is given,
 * '$' also matches before a final newline, option m makes ^ and $ match at line breaks,
 * option x drops unescaped whitespace and #-comments outside brackets, option i folds case
 * in the process locale (ASCII in "C"). Lookaround, backreferences, inline flags ((?i)),
 * possessive quantifiers, named groups and Unicode properties fail with code 51091
 * (MongoDB's "Regular expression is invalid"), never with a different answer. */
typedef struct flora__regex {
   regex_t re;
   char *pattern; /* as given, owned */
   char *options; /* as given, owned (sorted flag letters) */
   bool compiled;
} flora__regex_t;

/* Compiles pattern with MongoDB options ("imsx" letters; others fail with code 51108). */
bool flora__regex_init(flora__regex_t *re, const char *pattern, const char *options,
                       flora_error_t *error);
/* True when the regex matches somewhere in s[0..len) (s need not be NUL-terminated). */
bool flora__regex_match(const flora__regex_t *re, const char *s, size_t len);
void flora__regex_clear(flora__regex_t *re);

/* ---- misc --------------------------------------------------------------------------- */

/* The bson_t view of a document or array value (borrowed; no allocation). */
bool flora__value_as_doc(const bson_value_t *v, bson_t *out);

/* BSON type names as MongoDB's $type uses them ("double", "string", ..., "decimal"), or
 * NULL for an unknown type. */

#endif
