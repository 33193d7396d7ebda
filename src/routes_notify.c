/* Notification operations for managers: the outbox by status, and resending a failed or
 * dead-lettered notification (include/flora/notify.h). Documented in docs/openapi.json. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "flora/notify.h"
#include "http.h"

static bool
parse_page(const char *s, int64_t max, int64_t *out)
{
   char *end = NULL;
   long long v;

   errno = 0;
   v = strtoll(s, &end, 10);
   if (errno || !*s || *end || v < 1 || v > max) {
      return false;
   }
   *out = v;
   return true;
}

static bool
list_notifications(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   static const char *const statuses[] = {"pending", "sending", "sent", "failed", "dead"};
   const char *status = flora_http_query(req, "status");
   const char *page_s = flora_http_query(req, "page");
   const char *size_s = flora_http_query(req, "pageSize");
   int64_t page = 1, page_size = 50;
   flora_error_t error = {0};
   bson_t out;
   bool known = status == NULL;

   for (size_t i = 0; status && i < sizeof statuses / sizeof statuses[0]; i++) {
      known = known || strcmp(status, statuses[i]) == 0;
   }
   if (!known) {
      return flora_http_error(res, 400, "invalid_argument", "status",
                              "must be one of pending, sending, sent, failed, dead", NULL);
   }
   if (page_s && !parse_page(page_s, 1000000, &page)) {
      return flora_http_error(res, 400, "invalid_argument", "page",
                              "must be a whole number from 1", NULL);
   }
   if (size_s && !parse_page(size_s, 200, &page_size)) {
      return flora_http_error(res, 400, "invalid_argument", "pageSize",
                              "must be a whole number from 1 to 200", NULL);
   }
   if (!flora_notify_list(app->store, status, page, page_size, &out, &error)) {
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   bson_destroy(&res->body);
   bson_steal(&res->body, &out);
   return true;
}

static bool
resend_notification(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   const char *id_s = flora_http_param(req, "id");
   flora_error_t error = {0};
   bson_oid_t id;
   bson_t out;

   if (!id_s || !bson_oid_is_valid(id_s, strlen(id_s)) || strlen(id_s) != 24) {
      return flora_http_error(res, 404, "not_found", "id", "no notification has this id", NULL);
   }
   bson_oid_init_from_string(&id, id_s);
   if (!flora_notify_resend(app->store, &id, &out, &error)) {
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   bson_destroy(&res->body);
   bson_steal(&res->body, &out);
   return true;
}

/* Manager routes: managers and admins (src/http.h FLORA_AUTH_MANAGER). */
const flora_route_t flora_routes_notify[] = {
   {"GET", "/api/v1/admin/notifications", "admin.notifications.list", FLORA_AUTH_MANAGER,
    list_notifications},
   {"POST", "/api/v1/admin/notifications/{id}/resend", "admin.notifications.resend",
    FLORA_AUTH_MANAGER, resend_notification},
   {NULL, NULL, NULL, 0, NULL},
};
