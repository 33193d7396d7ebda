/* E-mail and phone normalisation (include/flora/contact.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <unistr.h>

#include "flora/contact.h"

static bool
invalid(flora_error_t *error, const char *reason)
{
   flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "%s", reason);
   return false;
}

/* RFC 5322 atext, plus UTF-8 (RFC 6531); "." is handled by the caller. */
static bool
is_atext(unsigned char c)
{
   return isalnum(c) || c >= 0x80 || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool
domain_ok(const char *d, size_t len)
{
   size_t label = 0, labels = 0;

   if (len == 0 || len > 253) {
      return false;
   }
   for (size_t i = 0; i <= len; i++) {
      unsigned char c = i < len ? (unsigned char) d[i] : '.';

      if (c == '.') {
         if (label == 0 || label > 63 || d[i - 1] == '-') {
            return false;
         }
         labels++;
         label = 0;
         continue;
      }
      if (label == 0 && c == '-') {
         return false;
      }
      if (!(isalnum(c) || c == '-' || c >= 0x80)) {
         return false;
      }
      label++;
   }
   return labels >= 2;
}

bool
flora_email_normalize(const char *input, char *out, size_t out_len, flora_error_t *error)
{
   const char *start, *end, *at;
   size_t len, local_len;

   FLORA_ASSERT_ARG(input);
   FLORA_ASSERT_ARG(out && out_len > 0);
   start = input;
   end = input + strlen(input);
   while (start < end && isspace((unsigned char) *start)) {
      start++;
   }
   while (end > start && isspace((unsigned char) end[-1])) {
      end--;
   }
   len = (size_t) (end - start);
   if (len == 0) {
      return invalid(error, "must not be empty");
   }
   if (len > 254) {
      return invalid(error, "must be at most 254 characters");
   }
   if (u8_check((const uint8_t *) start, len)) {
      return invalid(error, "must be valid UTF-8");
   }
   at = memchr(start, '@', len);
   if (!at || memchr(at + 1, '@', (size_t) (end - at - 1))) {
      return invalid(error, "must contain exactly one @");
   }
   local_len = (size_t) (at - start);
   if (local_len == 0 || local_len > 64) {
      return invalid(error, "the part before @ must be 1 to 64 characters");
   }
   for (size_t i = 0; i < local_len; i++) {
      unsigned char c = (unsigned char) start[i];

      if (c == '.') {
         if (i == 0 || i + 1 == local_len || start[i - 1] == '.') {
            return invalid(error, "the part before @ has a misplaced dot");
         }
      } else if (!is_atext(c)) {
         return invalid(error, "the part before @ has a character addresses cannot have");
      }
   }
   if (!domain_ok(at + 1, (size_t) (end - at - 1))) {
      return invalid(error, "the domain after @ is not a valid host name");
   }
   if (len + 1 > out_len) {
      return invalid(error, "is too long");
   }
   for (size_t i = 0; i < len; i++) {
      unsigned char c = (unsigned char) start[i];

      out[i] = (char) (c < 0x80 ? tolower(c) : c);
   }
   out[len] = '\0';
   return true;
}

bool
flora_phone_normalize(const char *input, char *out, size_t out_len, flora_error_t *error)
{
   char digits[32];
   size_t n = 0;
   bool plus = false;

   FLORA_ASSERT_ARG(input);
   FLORA_ASSERT_ARG(out && out_len >= 17);
   for (const char *p = input; *p; p++) {
      unsigned char c = (unsigned char) *p;

      if (isdigit(c)) {
         if (n + 1 >= sizeof digits) {
            return invalid(error, "has too many digits");
         }
         digits[n++] = (char) c;
      } else if (c == '+' && n == 0 && !plus) {
         plus = true;
      } else if (!(c == ' ' || c == '(' || c == ')' || c == '-' || c == '.' || c == '\t')) {
         return invalid(error, "may contain only digits, spaces, brackets, dots, hyphens and a leading +");
      }
   }
   digits[n] = '\0';
   if (n == 0) {
      return invalid(error, "must not be empty");
   }
   if (!plus) {
      /* Russian habits: 8XXXXXXXXXX (trunk prefix), 7XXXXXXXXXX, or 10 digits of a mobile */
      if (n == 11 && (digits[0] == '8' || digits[0] == '7')) {
         snprintf(out, out_len, "+7%s", digits + 1);
      } else if (n == 10 && digits[0] == '9') {
         snprintf(out, out_len, "+7%s", digits);
      } else {
         return invalid(error, "must be a Russian number (8 916 123-45-67) or start with + and a country code");
      }
   } else {
      if (digits[0] == '0') {
         return invalid(error, "country code cannot start with 0");
      }
      if (n < 8 || n > 15) {
         return invalid(error, "must have 8 to 15 digits after + (E.164)");
      }
      if (digits[0] == '7' && n != 11) {
         return invalid(error, "a +7 number has 10 digits after the country code");
      }
      snprintf(out, out_len, "+%s", digits);
   }
   if (out[1] == '7' && out[2] == '0') {
      return invalid(error, "a +7 number cannot start with 0 after the country code");
   }
   return true;
}

bool
flora_phone_is_russian(const char *e164)
{
   FLORA_ASSERT_ARG(e164);
   return strncmp(e164, "+7", 2) == 0 && strlen(e164) == 12;
}
