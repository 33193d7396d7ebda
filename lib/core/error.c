/* Error helpers: see include/flora/error.h. */
#include "flora/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
flora__assert_fail(const char *expr, const char *file, int line, const char *func)
{
   fprintf(stderr, "flora: assertion failed: %s (%s:%d, %s)\n", expr, file, line, func);
   abort();
}

void
flora_error_set(flora_error_t *error, uint32_t domain, uint32_t code, const char *fmt, ...)
{
   va_list ap;

   if (!error) {
      return;
   }
   error->domain = domain;
   error->code = code;
   va_start(ap, fmt);
   vsnprintf(error->message, sizeof error->message, fmt, ap);
   va_end(ap);
}

void
flora_error_prefix(flora_error_t *error, const char *fmt, ...)
{
   char prefix[sizeof error->message];
   char joined[sizeof error->message];
   va_list ap;

   if (!error) {
      return;
   }
   va_start(ap, fmt);
   vsnprintf(prefix, sizeof prefix, fmt, ap);
   va_end(ap);
   if (snprintf(joined, sizeof joined, "%s: %s", prefix, error->message) < 0) {
      return;
   }
   memcpy(error->message, joined, sizeof joined);
}

void
flora_error_clear(flora_error_t *error)
{
   if (error) {
      memset(error, 0, sizeof *error);
   }
}

bool
flora_error_is_transient(const flora_error_t *error)
{
   if (!error || error->domain != FLORA_DOMAIN_STORE) {
      return false;
   }
   return error->code == FLORA_STORE_WRITE_CONFLICT || error->code == FLORA_STORE_LOCK_TIMEOUT ||
          error->code == FLORA_STORE_NO_SUCH_TRANSACTION || error->code == FLORA_STORE_CONNECTION;
}

int
flora_error_http_status(const flora_error_t *error)
{
   if (!error) {
      return 500;
   }
   switch (error->domain) {
   case FLORA_DOMAIN_VALIDATION:
      return 422;
   case FLORA_DOMAIN_INPUT:
      return error->code == FLORA_ERR_TOO_LARGE ? 413 : 400;
   case FLORA_DOMAIN_STORE:
      switch (error->code) {
      case FLORA_STORE_DUPLICATE_KEY:
         return 409;
      case FLORA_STORE_DOCUMENT_VALIDATION:
         return 422;
      case FLORA_STORE_BAD_VALUE:
      case FLORA_STORE_FAILED_TO_PARSE:
      case FLORA_STORE_TYPE_MISMATCH:
      case FLORA_STORE_DOLLAR_PREFIXED:
      case FLORA_STORE_EMPTY_FIELD_NAME:
      case FLORA_STORE_OVERFLOW:
      case FLORA_STORE_BSON_TOO_LARGE:
         return 400;
      case FLORA_STORE_CONNECTION:
      case FLORA_STORE_LOCK_TIMEOUT:
      case FLORA_STORE_WRITE_CONFLICT:
         return 503;
      default:
         return 500;
      }
   default:
      break;
   }
   switch (error->code) {
   case FLORA_ERR_INVALID:
      return 400;
   case FLORA_ERR_NOT_FOUND:
      return 404;
   case FLORA_ERR_CONFLICT:
   case FLORA_ERR_OUT_OF_STOCK:
      return 409;
   case FLORA_ERR_TOO_LARGE:
      return 413;
   case FLORA_ERR_UNAUTHORIZED:
      return 401;
   case FLORA_ERR_FORBIDDEN:
      return 403;
   case FLORA_ERR_RATE_LIMITED:
      return 429;
   case FLORA_ERR_UNAVAILABLE:
      return 503;
   default:
      return 500;
   }
}

const char *
flora_error_domain_name(uint32_t domain)
{
   static const char *const names[] = {"none", "store", "validation", "input",
                                       "config", "io",    "shop",       "provider"};

   return domain < sizeof names / sizeof names[0] ? names[domain] : "unknown";
}
