/* Money at the edge: minor units <-> providers' formats (include/flora/pay.h). */
#include "flora/pay.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct currency {
   const char *code;
   int exponent;
} currency_t;

/* ISO 4217 list one minor units (SIX), limited to what a flower shop might see; Stripe's
 * zero-decimal list agrees for JPY, KRW, VND, CLP, ISK, UGX is left out (Stripe treats it
 * specially). */
static const currency_t currencies[] = {
   {"RUB", 2}, {"USD", 2}, {"EUR", 2}, {"GBP", 2}, {"CHF", 2}, {"CNY", 2}, {"KZT", 2},
   {"BYN", 2}, {"UAH", 2}, {"AMD", 2}, {"GEL", 2}, {"TRY", 2}, {"AED", 2}, {"CAD", 2},
   {"AUD", 2}, {"PLN", 2}, {"CZK", 2}, {"SEK", 2}, {"NOK", 2}, {"DKK", 2}, {"INR", 2},
   {"JPY", 0}, {"KRW", 0}, {"VND", 0}, {"CLP", 0}, {"ISK", 0},
   {"BHD", 3}, {"KWD", 3}, {"JOD", 3}, {"OMR", 3}, {"TND", 3},
};

int
flora_money_exponent(const char *currency)
{
   if (!currency) {
      return -1;
   }
   for (size_t i = 0; i < sizeof currencies / sizeof currencies[0]; i++) {
      if (strcasecmp(currencies[i].code, currency) == 0) {
         return currencies[i].exponent;
      }
   }
   return -1;
}

static int64_t
pow10i(int e)
{
   int64_t p = 1;

   while (e-- > 0) {
      p *= 10;
   }
   return p;
}

bool
flora_money_format(int64_t minor, const char *currency, char *out, size_t out_len,
                   flora_error_t *error)
{
   int e;
   uint64_t mag, unit;
   int n;

   FLORA_ASSERT_ARG(out);
   e = flora_money_exponent(currency);
   if (e < 0) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "unknown currency \"%s\"",
                      currency ? currency : "");
      return false;
   }
   /* Magnitude without overflow for INT64_MIN. */
   mag = minor < 0 ? (uint64_t) (-(minor + 1)) + 1u : (uint64_t) minor;
   unit = (uint64_t) pow10i(e);
   if (e == 0) {
      n = snprintf(out, out_len, "%s%" PRIu64, minor < 0 ? "-" : "", mag);
   } else {
      n = snprintf(out, out_len, "%s%" PRIu64 ".%0*" PRIu64, minor < 0 ? "-" : "", mag / unit,
                   e, mag % unit);
   }
   if (n < 0 || (size_t) n >= out_len) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_TOO_LARGE,
                      "amount does not fit %zu bytes", out_len);
      return false;
   }
   return true;
}

bool
flora_money_parse(const char *text, const char *currency, const char *expected_currency,
                  int64_t *minor, flora_error_t *error)
{
   int e;
   const char *p;
   bool negative = false;
   uint64_t whole = 0, frac = 0;
   int n_whole = 0, n_frac = 0;
   uint64_t limit, total;

   FLORA_ASSERT_ARG(minor);
   e = flora_money_exponent(currency);
   if (e < 0) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "unknown currency \"%s\"",
                      currency ? currency : "");
      return false;
   }
   if (expected_currency && strcasecmp(currency, expected_currency) != 0) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "currency mismatch: got %s, expected %s", currency, expected_currency);
      return false;
   }
   if (!text) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "amount missing");
      return false;
   }
   p = text;
   if (*p == '-') {
      negative = true;
      p++;
   }
   limit = (uint64_t) INT64_MAX;
   while (isdigit((unsigned char) *p)) {
      if (whole > (limit - 9u) / 10u) {
         goto overflow;
      }
      whole = whole * 10u + (uint64_t) (*p - '0');
      n_whole++;
      p++;
   }
   if (*p == '.') {
      p++;
      while (isdigit((unsigned char) *p)) {
         if (n_frac >= e) {
            flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                            "amount \"%s\" has more than %d decimal places for %s", text, e,
                            currency);
            return false;
         }
         frac = frac * 10u + (uint64_t) (*p - '0');
         n_frac++;
         p++;
      }
      if (n_frac == 0) {
         goto malformed;
      }
   }
   if (*p != '\0' || n_whole == 0) {
      goto malformed;
   }
   for (int i = n_frac; i < e; i++) {
      frac *= 10u;
   }
   if (whole > (limit - frac) / (uint64_t) pow10i(e)) {
      goto overflow;
   }
   total = whole * (uint64_t) pow10i(e) + frac;
   *minor = negative ? -(int64_t) total : (int64_t) total;
   return true;

malformed:
   flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                   "amount \"%s\" is not a decimal number like \"2500.00\"", text);
   return false;
overflow:
   flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "amount \"%s\" is too large",
                   text);
   return false;
}

#define STRIPE_MAX_AMOUNT INT64_C(99999999) /* Stripe: "up to eight digits" */

bool
flora_money_to_stripe(int64_t minor, const char *currency, int64_t *amount,
                      char stripe_currency[4], flora_error_t *error)
{
   FLORA_ASSERT_ARG(amount);
   FLORA_ASSERT_ARG(stripe_currency);
   if (flora_money_exponent(currency) < 0 || strlen(currency) != 3) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "unknown currency \"%s\"",
                      currency ? currency : "");
      return false;
   }
   if (minor < 0 || minor > STRIPE_MAX_AMOUNT) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "amount %" PRId64 " is outside Stripe's range 0..%" PRId64, minor,
                      STRIPE_MAX_AMOUNT);
      return false;
   }
   for (int i = 0; i < 3; i++) {
      stripe_currency[i] = (char) tolower((unsigned char) currency[i]);
   }
   stripe_currency[3] = '\0';
   *amount = minor;
   return true;
}

bool
flora_money_from_stripe(int64_t amount, const char *stripe_currency, const char *expected_currency,
                        int64_t *minor, flora_error_t *error)
{
   FLORA_ASSERT_ARG(minor);
   if (flora_money_exponent(stripe_currency) < 0) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "unknown currency \"%s\"",
                      stripe_currency ? stripe_currency : "");
      return false;
   }
   if (expected_currency && strcasecmp(stripe_currency, expected_currency) != 0) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "currency mismatch: got %s, expected %s", stripe_currency,
                      expected_currency);
      return false;
   }
   if (amount < 0) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "negative amount %" PRId64, amount);
      return false;
   }
   *minor = amount;
   return true;
}
