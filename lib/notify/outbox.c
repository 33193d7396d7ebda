/* The transactional outbox: flora_outbox_enqueue (include/flora/outbox.h). */
#include "flora/outbox.h"

#include <string.h>
#include <time.h>

#include "flora/schema.h"
#include "flora/shop.h"
#include "notify/notify_private.h"

/* The events and the channels each one is sent on (every pair has templates for every
 * locale: tests/unit/test_notify_templates.c renders them all). */
static const struct {
   const char *event;
   bool email;
   bool sms;
} event_channels[] = {
   {FLORA_EVENT_ORDER_CREATED, true, true},
   {FLORA_EVENT_ORDER_PAID, true, false},
   {FLORA_EVENT_ORDER_STATUS_CHANGED, true, true},
   {FLORA_EVENT_ORDER_DELIVERED, true, true},
   {FLORA_EVENT_USER_PASSWORD_RESET, true, true},
   {FLORA_EVENT_REVIEW_APPROVED, true, false},
};

#define N_EVENTS (sizeof event_channels / sizeof event_channels[0])

const char *
flora__notify_event_name(size_t i)
{
   return i < N_EVENTS ? event_channels[i].event : NULL;
}

bool
flora__notify_event_known(const char *event)
{
   for (size_t i = 0; i < N_EVENTS; i++) {
      if (strcmp(event_channels[i].event, event) == 0) {
         return true;
      }
   }
   return false;
}

bool
flora__notify_has_channel(const char *event, const char *channel)
{
   for (size_t i = 0; i < N_EVENTS; i++) {
      if (strcmp(event_channels[i].event, event) == 0) {
         return strcmp(channel, "email") == 0 ? event_channels[i].email
                                              : strcmp(channel, "sms") == 0 && event_channels[i].sms;
      }
   }
   return false;
}

int64_t
flora__notify_now_ms(void)
{
   struct timespec ts;

   clock_gettime(CLOCK_REALTIME, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
append_delivery(bson_t *array, uint32_t index, const char *channel, const char *to)
{
   bson_t d;
   char key[16];
   const char *k;

   bson_uint32_to_string(index, &k, key, sizeof key);
   bson_append_document_begin(array, k, -1, &d);
   BSON_APPEND_UTF8(&d, "channel", channel);
   BSON_APPEND_UTF8(&d, "to", to);
   BSON_APPEND_UTF8(&d, "status", "pending");
   BSON_APPEND_INT32(&d, "attempts", 0);
   BSON_APPEND_NULL(&d, "lastError");
   BSON_APPEND_NULL(&d, "providerId");
   BSON_APPEND_NULL(&d, "sentAt");
   bson_append_document_end(array, &d);
}

bool
flora_outbox_enqueue(flora_store_t *txn, const char *event, const bson_t *payload,
                     const char *dedupe_key, flora_error_t *error)
{
   bson_t doc = BSON_INITIALIZER;
   bson_t prepared = BSON_INITIALIZER;
   bson_t deliveries;
   bson_t existing = BSON_INITIALIZER;
   bson_t *filter = NULL;
   bson_iter_t it, to;
   const char *email = NULL, *phone = NULL, *locale = "ru";
   uint32_t n = 0;
   bool found = false;
   bool ok = false;
   int64_t now = flora__notify_now_ms();

   FLORA_ASSERT_ARG(txn);
   FLORA_ASSERT_ARG(event);
   FLORA_ASSERT_ARG(payload);

   if (!flora__notify_event_known(event)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "event: unknown notification event \"%s\"", event);
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, payload, "to") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
       !bson_iter_recurse(&it, &to)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "payload.to: the recipients document is required");
      goto cleanup;
   }
   while (bson_iter_next(&to)) {
      const char *key = bson_iter_key(&to);

      if (!BSON_ITER_HOLDS_UTF8(&to)) {
         continue;
      }
      if (strcmp(key, "email") == 0) {
         email = bson_iter_utf8(&to, NULL);
      } else if (strcmp(key, "phone") == 0) {
         phone = bson_iter_utf8(&to, NULL);
      } else if (strcmp(key, "locale") == 0) {
         locale = bson_iter_utf8(&to, NULL);
      }
   }
   if (strcmp(locale, "ru") != 0 && strcmp(locale, "en") != 0) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "payload.to.locale: \"%s\" is not one of ru, en", locale);
      goto cleanup;
   }
   if ((!email || !*email) && (!phone || !*phone)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "payload.to: neither an e-mail address nor a phone number");
      goto cleanup;
   }

   if (dedupe_key) {
      filter = BCON_NEW("dedupeKey", BCON_UTF8(dedupe_key));
      if (!flora_store_find_one(txn, "outbox", filter, NULL, &existing, &found, error)) {
         goto cleanup;
      }
      if (found) {
         ok = true; /* already enqueued: a no-op by contract */
         goto cleanup;
      }
   }

   BSON_APPEND_UTF8(&doc, "event", event);
   BSON_APPEND_DOCUMENT(&doc, "payload", payload);
   BSON_APPEND_UTF8(&doc, "locale", locale);
   if (dedupe_key) {
      BSON_APPEND_UTF8(&doc, "dedupeKey", dedupe_key);
   }
   BSON_APPEND_UTF8(&doc, "status", "pending");
   BSON_APPEND_INT32(&doc, "attempts", 0);
   BSON_APPEND_DATE_TIME(&doc, "nextAttemptAt", now);
   BSON_APPEND_NULL(&doc, "leaseOwner");
   BSON_APPEND_NULL(&doc, "leaseExpiresAt");
   BSON_APPEND_NULL(&doc, "lastError");
   BSON_APPEND_ARRAY_BEGIN(&doc, "deliveries", &deliveries);
   if (email && *email && flora__notify_has_channel(event, "email")) {
      append_delivery(&deliveries, n++, "email", email);
   }
   if (phone && *phone && flora__notify_has_channel(event, "sms")) {
      append_delivery(&deliveries, n++, "sms", phone);
   }
   bson_append_array_end(&doc, &deliveries);
   BSON_APPEND_NULL(&doc, "sentAt");
   if (n == 0) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "payload.to: event %s has no template for the recipients given", event);
      goto cleanup;
   }

   if (!flora_schema_prepare_insert(&flora_schema_outbox, &doc, now, &prepared, error) ||
       !flora_schema_validate(&flora_schema_outbox, &prepared, NULL, error)) {
      goto cleanup;
   }
   ok = flora_store_insert_one(txn, "outbox", &prepared, NULL, NULL, error);
   if (!ok) {
      flora_error_prefix(error, "enqueueing %s", event);
   }
cleanup:
   if (filter) {
      bson_destroy(filter);
   }
   bson_destroy(&existing);
   bson_destroy(&prepared);
   bson_destroy(&doc);
   return ok;
}
