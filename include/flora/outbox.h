/* The transactional outbox (DESIGN.md section 4): a notification is written in the same
 * transaction as the change it reports, and a worker (include/flora/notify.h) delivers it
 * later with retries, so a notification is never lost when the change commits and never
 * sent when it rolls back.
 *
 * Collection `outbox` (schema lib/notify/notify_schema.c, reference docs/schema/outbox.md):
 *   {_id, event, payload, dedupeKey?, status: pending|sending|sent|failed|dead, attempts,
 *    nextAttemptAt, leaseOwner, leaseExpiresAt, lastError, deliveries: [{channel:
 *    "email"|"sms", to, status: pending|sent|failed|deferred, attempts, lastError,
 *    providerId, sentAt}], createdAt, updatedAt, sentAt}
 * One message fans out to its channel deliveries, embedded in the message: the worker marks
 * each channel sent as soon as its provider accepted it, so a retry of one channel never
 * resends another. */
#ifndef FLORA_OUTBOX_H
#define FLORA_OUTBOX_H

#include <bson/bson.h>
#include <stdbool.h>

#include "flora/error.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The events the outbox knows; any other name is refused (VALIDATION error). */
#define FLORA_EVENT_ORDER_CREATED "order.created"
#define FLORA_EVENT_ORDER_PAID "order.paid"
#define FLORA_EVENT_ORDER_STATUS_CHANGED "order.status_changed"
#define FLORA_EVENT_ORDER_DELIVERED "order.delivered"
#define FLORA_EVENT_USER_PASSWORD_RESET "user.password_reset"
#define FLORA_EVENT_REVIEW_APPROVED "review.approved"

/* Writes one outbox message for event into txn (a transaction handle from
 * flora_store_with_transaction, or a store for a single write), status pending and due
 * now. payload is copied into the message; its `to` document names the recipients:
 *   order events:        {orderId: ObjectId, number, status, to: {email?, phone?, locale}}
 *   user.password_reset: {userId?, resetUrl, name?, to: {email?, phone?, locale}}
 *   review.approved:     {productName, name?, to: {email?, locale}}
 * `to.email` and `to.phone` must already be normalised (include/flora/contact.h: they are
 * checked when the customer enters them); each present one gives a delivery on its channel
 * (email, sms). locale is "ru" (default when absent) or "en".
 * dedupe_key (may be NULL) is unique across the outbox: a second enqueue with the same key
 * writes nothing and succeeds (e.g. "order.paid:<orderId>" makes a repeated webhook
 * harmless). On MongoDB a duplicate key inside a transaction aborts it, so the check is
 * made by a read in the same transaction before the insert; the unique index stays the
 * guarantee.
 * Errors: VALIDATION for an unknown event, a payload without `to` or without any
 * recipient, or a bad locale; STORE errors from the write. */
bool flora_outbox_enqueue(flora_store_t *txn, const char *event, const bson_t *payload,
                          const char *dedupe_key, flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
