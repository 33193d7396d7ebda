/* Contact details as customers type them: e-mail addresses and phone numbers, checked and
 * normalised when they are entered (registration, checkout), never at sending time.
 *
 * E-mail: the practical subset of RFC 5321/5322 that mail systems accept: local part of
 * 1-64 characters from the dot-atom set (RFC 5322 section 3.2.3; no quoted strings), no
 * leading, trailing or double dots; a domain of 1-253 characters, at least two labels of
 * 1-63 letters, digits and hyphens (not at the ends; RFC 1035 section 2.3.1), or an
 * internationalised domain in UTF-8; total at most 254 characters (RFC 5321 section 4.5.3.1
 * and errata 1690). Normalised to lower case (the local part too: the shop treats addresses
 * case-insensitively, as every major provider does).
 *
 * Phone: E.164 (ITU-T E.164: "+" and at most 15 digits). Russian numbers are accepted in the
 * forms people write: 8XXXXXXXXXX, 7XXXXXXXXXX, +7XXXXXXXXXX, XXXXXXXXXX (ten digits
 * starting with 9, a mobile number), with spaces, brackets, dots and hyphens
 * ("+7 (916) 123-45-67", "8 916 123 45 67"); other countries need the leading "+". */
#ifndef FLORA_CONTACT_H
#define FLORA_CONTACT_H

#include <stdbool.h>
#include <stddef.h>

#include "flora/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes the normalised address into out[out_len] (at least 255 bytes for any valid
 * address). false with a VALIDATION error whose message says what is wrong. */
bool flora_email_normalize(const char *input, char *out, size_t out_len, flora_error_t *error);

/* Writes the E.164 form ("+79161234567") into out[out_len] (at least 17 bytes). false with
 * a VALIDATION error whose message says what is wrong. */
bool flora_phone_normalize(const char *input, char *out, size_t out_len, flora_error_t *error);

/* True when e164 (already normalised) is a Russian number (+7, 10 national digits). */
bool flora_phone_is_russian(const char *e164);

#ifdef __cplusplus
}
#endif
#endif
