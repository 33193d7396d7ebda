/* Delivery routes: thin adapters over include/flora/delivery.h; documented in
 * docs/openapi.json and docs/delivery.md.
 *   POST /api/v1/delivery/quote           the price of a delivery, or why it cannot be made
 *   GET  /api/v1/delivery/slots?date=...  one day's windows with their remaining capacity
 * A request the library refuses for a field (VALIDATION) answers 422 naming the field; a
 * delivery that cannot be made is a 200 quote with deliverable false and the reason. */
#include <string.h>
#include <time.h>

#include "app.h"
#include "flora/delivery.h"
#include "http.h"

/* 422 with the field named by the message's "field: reason" form. */
static bool
fail(flora_http_response_t *res, const flora_error_t *error)
{
   char field[64];
   const char *colon;
   bson_t details = BSON_INITIALIZER, item;
   size_t n;

   if (error->domain != FLORA_DOMAIN_VALIDATION) {
      return flora_http_fail(res, error);
   }
   colon = strstr(error->message, ": ");
   n = colon ? (size_t) (colon - error->message) : 0;
   if (n == 0 || n >= sizeof field) {
      return flora_http_fail(res, error);
   }
   memcpy(field, error->message, n);
   field[n] = '\0';
   BSON_APPEND_DOCUMENT_BEGIN(&details, "0", &item);
   BSON_APPEND_UTF8(&item, "path", field);
   BSON_APPEND_UTF8(&item, "reason", colon + 2);
   bson_append_document_end(&details, &item);
   flora_http_error(res, 422, "validation_failed", field, error->message, &details);
   bson_destroy(&details);
   return true;
}

static int64_t
now_ms(void)
{
   struct timespec ts;

   clock_gettime(CLOCK_REALTIME, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
quote(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t body, out;

   if (!flora_http_body_json(req, &body, &error)) {
      bson_destroy(&body);
      return flora_http_fail(res, &error);
   }
   if (!flora_delivery_quote_at(app->store, app->config, &body, now_ms(), &out, &error)) {
      bson_destroy(&body);
      bson_destroy(&out);
      return fail(res, &error);
   }
   bson_destroy(&body);
   bson_destroy(&res->body);
   bson_steal(&res->body, &out);
   return true;
}

static bool
slots(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   const char *date = flora_http_query(req, "date");
   bson_t out;

   if (!date) {
      return flora_http_error(res, 400, "invalid_argument", "date",
                              "date is required: YYYY-MM-DD in the shop's time zone", NULL);
   }
   if (!flora_delivery_slots_list(app->store, app->config, date, now_ms(), &out, &error)) {
      bson_destroy(&out);
      return fail(res, &error);
   }
   bson_destroy(&res->body);
   bson_steal(&res->body, &out);
   return true;
}

const flora_route_t flora_routes_delivery[] = {
   {"POST", "/api/v1/delivery/quote", "delivery.quote", FLORA_AUTH_NONE, quote},
   {"GET", "/api/v1/delivery/slots", "delivery.slots", FLORA_AUTH_NONE, slots},
   {NULL, NULL, NULL, FLORA_AUTH_NONE, NULL},
};
