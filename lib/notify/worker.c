/* The outbox worker, and the operations on the outbox (include/flora/notify.h).
 *
 * One message at a time is claimed with a lease by one findAndModify, so two workers never
 * hold the same message; a worker that dies leaves a lease that expires and is reclaimed.
 * Each channel delivery is marked sent right after its provider accepted it (one update
 * guarded by our lease), so a retry resends only what was not accepted. The remaining
 * window - the provider accepted, the process died before the mark - is why delivery is
 * at-least-once (docs/notifications.md). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "flora/log.h"
#include "flora/notify.h"
#include "notify/notify_private.h"

struct flora_notify_worker {
   flora_store_t *store;
   const flora_config_t *config;
   char owner[160];
};

bool
flora_notify_worker_new(flora_notify_worker_t **out, flora_store_t *store,
                        const flora_config_t *config, flora_error_t *error)
{
   flora_notify_worker_t *w;
   char host[64] = "localhost";

   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(config);
   *out = NULL;
   if (sodium_init() < 0) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "libsodium failed to initialise");
      return false;
   }
   if (!flora__notify_curl_init(error)) {
      return false;
   }
   w = calloc(1, sizeof *w);
   if (!w) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      return false;
   }
   gethostname(host, sizeof host - 1);
   host[sizeof host - 1] = '\0';
   w->store = store;
   w->config = config;
   snprintf(w->owner, sizeof w->owner, "%s:%ld:%08" PRIx32, host, (long) getpid(),
            randombytes_random());
   *out = w;
   return true;
}

void
flora_notify_worker_destroy(flora_notify_worker_t *worker)
{
   free(worker);
}

/* Exponential backoff with jitter: the cap doubles from retry_base_ms per attempt up to
 * retry_max_ms, and the delay is uniform in [cap/2, cap] ("equal jitter"), so retries of
 * many messages spread out without ever retrying at once. */
static int64_t
backoff_ms(const flora_config_t *config, int64_t attempts)
{
   int64_t base = flora_config_int(config, "notify.retry_base_ms");
   int64_t max = flora_config_int(config, "notify.retry_max_ms");
   int64_t cap = base;
   uint32_t half;

   for (int64_t i = 1; i < attempts && cap < max; i++) {
      cap *= 2;
   }
   if (cap > max) {
      cap = max;
   }
   half = (uint32_t) (cap / 2 > UINT32_MAX - 1 ? UINT32_MAX - 1 : cap / 2);
   return cap - half + (int64_t) randombytes_uniform(half + 1);
}

/* Events whose SMS may wait for the end of the quiet hours. */
static bool
can_wait(const char *event)
{
   return strcmp(event, FLORA_EVENT_ORDER_STATUS_CHANGED) == 0 ||
          strcmp(event, FLORA_EVENT_ORDER_DELIVERED) == 0 ||
          strcmp(event, FLORA_EVENT_REVIEW_APPROVED) == 0;
}

static const char *
doc_str(const bson_t *doc, const char *dotted)
{
   bson_iter_t it, v;

   if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, dotted, &v) &&
       BSON_ITER_HOLDS_UTF8(&v)) {
      return bson_iter_utf8(&v, NULL);
   }
   return NULL;
}

/* One update of the message we hold; false (and a log line) when the lease was lost. */
static bool
update_held(flora_notify_worker_t *w, const bson_oid_t *id, bson_t *update, flora_error_t *error)
{
   bson_t *filter = BCON_NEW("_id", BCON_OID(id), "leaseOwner", BCON_UTF8(w->owner), "status",
                             BCON_UTF8("sending"));
   bson_t reply = BSON_INITIALIZER;
   bson_iter_t it;
   bool ok;

   ok = flora_store_update_one(w->store, "outbox", filter, update, NULL, &reply, error);
   if (ok && (!bson_iter_init_find(&it, &reply, "matchedCount") || bson_iter_as_int64(&it) != 1)) {
      char hex[25];

      bson_oid_to_string(id, hex);
      FLORA_LOG_WARN("notify", "lease lost before the update", "id", hex);
   }
   bson_destroy(filter);
   bson_destroy(&reply);
   return ok;
}

typedef struct message_ctx {
   const bson_t *doc;
   bson_oid_t id;
   char hex[25];
   const char *event;
   const char *locale;
   bson_t payload;
   bson_t vars;
   bool have_vars;
   flora_notify_rendered_t rendered;
   bool rendered_ok;
   flora_error_t render_error;
} message_ctx_t;

/* Loads the order (order events), builds the variables and renders every part once. */
static bool
render_message(flora_notify_worker_t *w, message_ctx_t *m)
{
   bson_t order = BSON_INITIALIZER;
   bool have_order = false;
   bool ok = false;

   if (strncmp(m->event, "order.", 6) == 0) {
      bson_iter_t it;
      bson_t *filter;

      if (!bson_iter_init_find(&it, &m->payload, "orderId") || !BSON_ITER_HOLDS_OID(&it)) {
         flora_error_set(&m->render_error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "payload.orderId: required by %s", m->event);
         goto cleanup;
      }
      filter = BCON_NEW("_id", BCON_OID(bson_iter_oid(&it)));
      ok = flora_store_find_one(w->store, "orders", filter, NULL, &order, &have_order,
                                &m->render_error);
      bson_destroy(filter);
      if (!ok) {
         goto cleanup; /* a store error: worth a retry */
      }
      ok = false;
      if (!have_order) {
         flora_error_set(&m->render_error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND,
                         "order %s not found", doc_str(&m->payload, "number")
                                                 ? doc_str(&m->payload, "number") : "?");
         goto cleanup;
      }
   }
   m->have_vars = flora_notify_build_vars(m->event, m->locale,
                                          flora_config_string(w->config, "notify.shop_name"),
                                          &m->payload, have_order ? &order : NULL, &m->vars,
                                          &m->render_error);
   if (!m->have_vars) {
      bson_destroy(&m->vars);
      goto cleanup;
   }
   ok = flora_notify_render(m->event, m->locale, &m->vars, &m->rendered, &m->render_error);
cleanup:
   bson_destroy(&order);
   m->rendered_ok = ok;
   return ok;
}

static bool
send_email(flora_notify_worker_t *w, message_ctx_t *m, uint32_t index, const char *to,
           char *provider_id, size_t provider_id_len, flora_error_t *error)
{
   const char *from = flora_config_string(w->config, "notify.from_address");
   const char *at = strchr(from, '@');
   const char *name = NULL;
   bson_iter_t it;
   flora_email_t email = {0};

   if (bson_iter_init_find(&it, &m->vars, "customerName") || bson_iter_init_find(&it, &m->vars, "name")) {
      name = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
   }
   /* RFC 5322 section 3.6.4: a unique id; derived from the outbox id and the delivery so
    * a resend after a crash carries the same Message-ID and can be deduplicated. */
   snprintf(provider_id, provider_id_len, "<%s.%" PRIu32 "@%s>", m->hex, index,
            at ? at + 1 : "flora.invalid");
   email.to = to;
   email.to_name = name;
   email.subject = m->rendered.subject;
   email.text = m->rendered.text;
   email.html = m->rendered.html;
   email.message_id = provider_id;
   return flora_email_send(w->config, &email, error);
}

typedef enum outcome { SENT, FAILED, PERMANENT, DEFERRED } outcome_t;

static outcome_t
deliver(flora_notify_worker_t *w, message_ctx_t *m, uint32_t index, const char *channel,
        const char *to, int64_t *defer_until, int32_t *segments, char *provider_id,
        size_t provider_id_len, flora_error_t *error)
{
   bool is_sms = strcmp(channel, "sms") == 0;

   *segments = -1;
   if (is_sms && can_wait(m->event)) {
      bool quiet = false;
      int64_t ends = 0;

      if (!flora_sms_quiet_hours(w->config, flora__notify_now_ms(), &quiet, &ends, error)) {
         return FAILED;
      }
      if (quiet) {
         *defer_until = ends;
         return DEFERRED;
      }
   }
   if (!m->rendered_ok) {
      *error = m->render_error;
      return error->domain == FLORA_DOMAIN_STORE ? FAILED : PERMANENT;
   }
   if (is_sms) {
      flora_sms_segments_t seg;
      bool allowed = false;
      int64_t retry_at = 0;

      if (!m->rendered.sms) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "%s has no SMS template", m->event);
         return PERMANENT;
      }
      if (!flora_sms_count_segments(m->rendered.sms, &seg, error)) {
         return PERMANENT;
      }
      *segments = (int32_t) seg.segments;
      if (!flora_sms_rate_take(w->store, w->config, to, flora__notify_now_ms(), &allowed,
                               &retry_at, error)) {
         return FAILED;
      }
      if (!allowed) {
         FLORA_LOG_INFO("notify", "sms rate limited", "id", m->hex);
         *defer_until = retry_at;
         return DEFERRED;
      }
      if (!flora_sms_send(w->config, to, m->rendered.sms, provider_id, provider_id_len, error)) {
         return error->domain == FLORA_DOMAIN_PROVIDER && error->code == FLORA_ERR_INVALID
                   ? PERMANENT
                   : FAILED;
      }
      return SENT;
   }
   if (!send_email(w, m, index, to, provider_id, provider_id_len, error)) {
      return error->domain == FLORA_DOMAIN_PROVIDER && error->code == FLORA_ERR_INVALID
                ? PERMANENT
                : FAILED;
   }
   return SENT;
}

static bool
process(flora_notify_worker_t *w, const bson_t *doc, flora_error_t *error)
{
   message_ctx_t m;
   bson_iter_t it, deliveries;
   int64_t attempts = 0;
   int64_t max_attempts = flora_config_int(w->config, "notify.max_attempts");
   int64_t defer_until = INT64_MAX;
   bool any_failed = false, any_permanent = false, all_sent = true;
   char last_error[600] = "";
   bson_t *update = NULL;
   int64_t now;
   bool ok = true;

   memset(&m, 0, sizeof m);
   m.doc = doc;
   bson_init(&m.payload);
   if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it)) {
      return true; /* not ours to understand; the schema makes it impossible */
   }
   bson_oid_copy(bson_iter_oid(&it), &m.id);
   bson_oid_to_string(&m.id, m.hex);
   m.event = doc_str(doc, "event") ? doc_str(doc, "event") : "";
   m.locale = doc_str(doc, "locale") ? doc_str(doc, "locale") : "ru";
   if (bson_iter_init_find(&it, doc, "attempts")) {
      attempts = bson_iter_as_int64(&it);
   }
   if (bson_iter_init_find(&it, doc, "payload") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      const uint8_t *data;
      uint32_t len;

      bson_iter_document(&it, &len, &data);
      bson_destroy(&m.payload);
      bson_init_static(&m.payload, data, len);
   }
   render_message(w, &m);

   if (!bson_iter_init_find(&it, doc, "deliveries") || !bson_iter_recurse(&it, &deliveries)) {
      goto finish;
   }
   for (uint32_t index = 0; bson_iter_next(&deliveries); index++) {
      bson_t d;
      const uint8_t *data;
      uint32_t len;
      const char *status, *channel, *to;
      char provider_id[200] = "";
      char key[64];
      int32_t segments = -1;
      flora_error_t err = {0};
      outcome_t outcome;
      bson_t *set;

      if (!BSON_ITER_HOLDS_DOCUMENT(&deliveries)) {
         continue;
      }
      bson_iter_document(&deliveries, &len, &data);
      bson_init_static(&d, data, len);
      status = doc_str(&d, "status");
      channel = doc_str(&d, "channel");
      to = doc_str(&d, "to");
      if (status && strcmp(status, "sent") == 0) {
         continue;
      }
      if (!channel || !to) {
         continue;
      }
      outcome = deliver(w, &m, index, channel, to, &defer_until, &segments, provider_id,
                        sizeof provider_id, &err);
      if (outcome == DEFERRED) {
         all_sent = false;
         continue;
      }
      now = flora__notify_now_ms();
      set = bson_new();
      snprintf(key, sizeof key, "deliveries.%" PRIu32 ".status", index);
      BSON_APPEND_UTF8(set, key, outcome == SENT ? "sent" : "failed");
      snprintf(key, sizeof key, "deliveries.%" PRIu32 ".lastError", index);
      if (outcome == SENT) {
         BSON_APPEND_NULL(set, key);
         snprintf(key, sizeof key, "deliveries.%" PRIu32 ".providerId", index);
         BSON_APPEND_UTF8(set, key, provider_id);
         snprintf(key, sizeof key, "deliveries.%" PRIu32 ".sentAt", index);
         BSON_APPEND_DATE_TIME(set, key, now);
      } else {
         BSON_APPEND_UTF8(set, key, err.message);
         snprintf(last_error, sizeof last_error, "%s: %s", channel, err.message);
      }
      if (segments >= 0) {
         snprintf(key, sizeof key, "deliveries.%" PRIu32 ".segments", index);
         BSON_APPEND_INT32(set, key, segments);
      }
      BSON_APPEND_DATE_TIME(set, "updatedAt", now);
      snprintf(key, sizeof key, "deliveries.%" PRIu32 ".attempts", index);
      update = BCON_NEW("$set", BCON_DOCUMENT(set), "$inc", "{", key, BCON_INT32(1), "}");
      bson_destroy(set);
      ok = update_held(w, &m.id, update, error);
      bson_destroy(update);
      update = NULL;
      if (!ok) {
         goto cleanup;
      }
      if (outcome == SENT) {
         FLORA_LOG_INFO("notify", "delivered", "id", m.hex, "event", m.event, "channel", channel,
                        "providerId", provider_id);
      } else {
         all_sent = false;
         any_failed = true;
         any_permanent = any_permanent || outcome == PERMANENT;
         FLORA_LOG_WARN("notify", "delivery failed", "id", m.hex, "event", m.event, "channel",
                        channel, "permanent", outcome == PERMANENT ? "true" : "false", "error",
                        err.message);
      }
   }

finish:
   now = flora__notify_now_ms();
   if (all_sent) {
      update = BCON_NEW("$set", "{", "status", BCON_UTF8("sent"), "sentAt", BCON_DATE_TIME(now),
                        "leaseOwner", BCON_NULL, "leaseExpiresAt", BCON_NULL, "lastError",
                        BCON_NULL, "updatedAt", BCON_DATE_TIME(now), "}");
   } else if (any_failed && (any_permanent || attempts >= max_attempts)) {
      update = BCON_NEW("$set", "{", "status", BCON_UTF8("dead"), "leaseOwner", BCON_NULL,
                        "leaseExpiresAt", BCON_NULL, "lastError", BCON_UTF8(last_error),
                        "updatedAt", BCON_DATE_TIME(now), "}");
      FLORA_LOG_ERROR("notify", "dead-lettered", "id", m.hex, "event", m.event, "error",
                      last_error);
   } else if (any_failed) {
      update = BCON_NEW("$set", "{", "status", BCON_UTF8("failed"), "nextAttemptAt",
                        BCON_DATE_TIME(now + backoff_ms(w->config, attempts)), "leaseOwner",
                        BCON_NULL, "leaseExpiresAt", BCON_NULL, "lastError", BCON_UTF8(last_error),
                        "updatedAt", BCON_DATE_TIME(now), "}");
   } else {
      /* only deferred (quiet hours, rate limit): not an attempt */
      update = BCON_NEW("$set", "{", "status", BCON_UTF8("pending"), "nextAttemptAt",
                        BCON_DATE_TIME(defer_until), "leaseOwner", BCON_NULL, "leaseExpiresAt",
                        BCON_NULL, "updatedAt", BCON_DATE_TIME(now), "}", "$inc", "{", "attempts",
                        BCON_INT32(-1), "}");
   }
   ok = update_held(w, &m.id, update, error);
cleanup:
   if (update) {
      bson_destroy(update);
   }
   if (m.have_vars) {
      bson_destroy(&m.vars);
   }
   flora_notify_rendered_clear(&m.rendered);
   bson_destroy(&m.payload);
   return ok;
}

static bool
claim(flora_notify_worker_t *w, bson_t *doc, bool *found, flora_error_t *error)
{
   int64_t now = flora__notify_now_ms();
   int64_t lease_ms = flora_config_int(w->config, "notify.lease_s") * 1000;
   bson_t *filter, *update, *opts;
   bool ok;

   filter = BCON_NEW("$or", "[",
                     "{", "status", "{", "$in", "[", BCON_UTF8("pending"), BCON_UTF8("failed"), "]",
                     "}", "nextAttemptAt", "{", "$lte", BCON_DATE_TIME(now), "}", "}",
                     "{", "status", BCON_UTF8("sending"), "leaseExpiresAt", "{", "$lte",
                     BCON_DATE_TIME(now), "}", "}",
                     "]");
   update = BCON_NEW("$set", "{", "status", BCON_UTF8("sending"), "leaseOwner",
                     BCON_UTF8(w->owner), "leaseExpiresAt", BCON_DATE_TIME(now + lease_ms),
                     "updatedAt", BCON_DATE_TIME(now), "}", "$inc", "{", "attempts",
                     BCON_INT32(1), "}");
   opts = BCON_NEW("sort", "{", "nextAttemptAt", BCON_INT32(1), "}", "returnDocument",
                   BCON_UTF8("after"));
   ok = flora_store_find_one_and_update(w->store, "outbox", filter, update, opts, doc, found,
                                        error);
   bson_destroy(filter);
   bson_destroy(update);
   bson_destroy(opts);
   return ok;
}

bool
flora_notify_worker_run_once(flora_notify_worker_t *worker, const atomic_bool *stop,
                             size_t *n_claimed, flora_error_t *error)
{
   int64_t batch = flora_config_int(worker->config, "notify.batch_size");
   size_t n = 0;
   bool ok = true;

   FLORA_ASSERT_ARG(worker);
   while ((int64_t) n < batch && !(stop && atomic_load(stop))) {
      bson_t doc;
      bool found = false;

      if (!claim(worker, &doc, &found, error)) {
         bson_destroy(&doc);
         ok = false;
         break;
      }
      if (!found) {
         bson_destroy(&doc);
         break;
      }
      n++;
      ok = process(worker, &doc, error);
      bson_destroy(&doc);
      if (!ok) {
         break;
      }
   }
   if (n_claimed) {
      *n_claimed = n;
   }
   return ok;
}

static void
sleep_ms(int64_t ms, const atomic_bool *stop)
{
   while (ms > 0 && !atomic_load(stop)) {
      int64_t step = ms < 50 ? ms : 50;
      struct timespec ts = {0, (long) step * 1000000L};

      nanosleep(&ts, NULL);
      ms -= step;
   }
}

void
flora_notify_worker_run(flora_notify_worker_t *worker, const atomic_bool *stop)
{
   int64_t poll = flora_config_int(worker->config, "notify.poll_interval_ms");

   FLORA_ASSERT_ARG(worker);
   FLORA_ASSERT_ARG(stop);
   FLORA_LOG_INFO("notify", "worker started", "owner", worker->owner);
   while (!atomic_load(stop)) {
      flora_error_t error = {0};
      size_t n = 0;

      if (!flora_notify_worker_run_once(worker, stop, &n, &error)) {
         FLORA_LOG_ERROR("notify", "worker batch failed", "error", error.message);
         sleep_ms(poll, stop);
      } else if (n == 0) {
         sleep_ms(poll, stop);
      }
   }
   FLORA_LOG_INFO("notify", "worker stopped", "owner", worker->owner);
}

/* ---- operations -------------------------------------------------------------------- */

/* Payload fields left out of what staff see (BCON projection pairs). */
#define NOTIFY_SECRET_FIELDS "payload.resetUrl", BCON_INT32(0), "payload.token", BCON_INT32(0)

bool
flora_notify_list(flora_store_t *store, const char *status, int64_t page, int64_t page_size,
                  bson_t *out, flora_error_t *error)
{
   bson_t *filter = status ? BCON_NEW("status", BCON_UTF8(status)) : bson_new();
   bson_t *opts = NULL;
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   bson_t items;
   int64_t total = 0;
   uint32_t i = 0;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(page >= 1 && page_size >= 1);
   bson_init(out);
   if (!flora_store_count_documents(store, "outbox", filter, NULL, &total, error)) {
      goto cleanup;
   }
   /* Secrets a message carries for its recipient alone (the password reset link) are
    * never shown to staff: whoever reads the list must not be able to take over the
    * account the message is for. */
   opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "skip",
                   BCON_INT64((page - 1) * page_size), "limit", BCON_INT64(page_size),
                   "projection", "{", NOTIFY_SECRET_FIELDS, "}");
   if (!flora_store_find(store, "outbox", filter, opts, &cursor, error)) {
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN(out, "items", &items);
   while (flora_cursor_next(cursor, &doc)) {
      char key[16];
      const char *k;

      bson_uint32_to_string(i++, &k, key, sizeof key);
      BSON_APPEND_DOCUMENT(&items, k, doc);
   }
   bson_append_array_end(out, &items);
   if (flora_cursor_error(cursor, error)) {
      goto cleanup;
   }
   BSON_APPEND_INT64(out, "page", page);
   BSON_APPEND_INT64(out, "pageSize", page_size);
   BSON_APPEND_INT64(out, "total", total);
   ok = true;
cleanup:
   flora_cursor_destroy(cursor);
   bson_destroy(filter);
   if (opts) {
      bson_destroy(opts);
   }
   return ok;
}

bool
flora_notify_resend(flora_store_t *store, const bson_oid_t *id, bson_t *out, flora_error_t *error)
{
   int64_t now = flora__notify_now_ms();
   bson_t *filter = BCON_NEW("_id", BCON_OID(id), "status", "{", "$in", "[", BCON_UTF8("failed"),
                             BCON_UTF8("dead"), "]", "}");
   bson_t *update = BCON_NEW("$set", "{", "status", BCON_UTF8("pending"), "attempts",
                             BCON_INT32(0), "nextAttemptAt", BCON_DATE_TIME(now), "leaseOwner",
                             BCON_NULL, "leaseExpiresAt", BCON_NULL, "updatedAt",
                             BCON_DATE_TIME(now), "}");
   bson_t *opts = BCON_NEW("returnDocument", BCON_UTF8("after"), "projection", "{",
                           NOTIFY_SECRET_FIELDS, "}");
   bson_t *by_id = BCON_NEW("_id", BCON_OID(id));
   bson_t doc = BSON_INITIALIZER;
   bool found = false;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(id);
   if (out) {
      bson_init(out);
   }
   if (!flora_store_find_one_and_update(store, "outbox", filter, update, opts, &doc, &found,
                                        error)) {
      goto cleanup;
   }
   if (!found) {
      bson_destroy(&doc);
      if (!flora_store_find_one(store, "outbox", by_id, NULL, &doc, &found, error)) {
         goto cleanup;
      }
      flora_error_set(error, FLORA_DOMAIN_SHOP, found ? FLORA_ERR_CONFLICT : FLORA_ERR_NOT_FOUND,
                      found ? "only a failed or dead notification can be resent (it is %s)"
                            : "notification not found%s",
                      found && doc_str(&doc, "status") ? doc_str(&doc, "status") : "");
      goto cleanup;
   }
   if (out) {
      bson_destroy(out);
      bson_copy_to(&doc, out);
   }
   ok = true;
cleanup:
   bson_destroy(&doc);
   bson_destroy(filter);
   bson_destroy(update);
   bson_destroy(opts);
   bson_destroy(by_id);
   return ok;
}
