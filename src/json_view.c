/* See json_view.h. */
#include "json_view.h"

#include <stdio.h>
#include <time.h>

static void
view_iter(bson_iter_t *it, bson_t *out)
{
   while (bson_iter_next(it)) {
      const char *key = bson_iter_key(it);

      switch (bson_iter_type(it)) {
      case BSON_TYPE_OID: {
         char hex[25];

         bson_oid_to_string(bson_iter_oid(it), hex);
         BSON_APPEND_UTF8(out, key, hex);
         break;
      }
      case BSON_TYPE_DATE_TIME: {
         int64_t ms = bson_iter_date_time(it);
         time_t secs = (time_t) (ms / 1000);
         int millis = (int) (ms % 1000);
         struct tm tm;
         char buf[96];

         if (millis < 0) {
            millis += 1000;
            secs -= 1;
         }
         gmtime_r(&secs, &tm);
         snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
         BSON_APPEND_UTF8(out, key, buf);
         break;
      }
      case BSON_TYPE_DECIMAL128: {
         bson_decimal128_t dec;
         char buf[BSON_DECIMAL128_STRING];

         bson_iter_decimal128(it, &dec);
         bson_decimal128_to_string(&dec, buf);
         BSON_APPEND_UTF8(out, key, buf);
         break;
      }
      case BSON_TYPE_DOCUMENT:
      case BSON_TYPE_ARRAY: {
         bson_iter_t child;
         bson_t sub;
         bool is_array = bson_iter_type(it) == BSON_TYPE_ARRAY;

         if (is_array) {
            BSON_APPEND_ARRAY_BEGIN(out, key, &sub);
         } else {
            BSON_APPEND_DOCUMENT_BEGIN(out, key, &sub);
         }
         if (bson_iter_recurse(it, &child)) {
            view_iter(&child, &sub);
         }
         if (is_array) {
            bson_append_array_end(out, &sub);
         } else {
            bson_append_document_end(out, &sub);
         }
         break;
      }
      default:
         bson_append_iter(out, key, -1, it);
         break;
      }
   }
}

void
flora_json_view(const bson_t *in, bson_t *out)
{
   bson_iter_t it;

   if (bson_iter_init(&it, in)) {
      view_iter(&it, out);
   }
}

char *
flora_json_view_string(const bson_t *in, bool is_array, size_t *len)
{
   bson_t view = BSON_INITIALIZER;
   char *json;

   flora_json_view(in, &view);
   json = is_array ? bson_array_as_json(&view, len) : bson_as_relaxed_extended_json(&view, len);
   bson_destroy(&view);
   return json;
}
