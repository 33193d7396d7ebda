/* Migrations: status, up and down over the store (include/flora/migrate.h). */
#include "flora/migrate.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOCK_ID "lock"

static int64_t
now_ms(void)
{
   struct timespec ts;

   clock_gettime(CLOCK_REALTIME, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
check_order(const flora_migration_t *const *list)
{
   FLORA_ASSERT_ARG(list);
   for (size_t i = 0; list[i]; i++) {
      FLORA_ASSERT_ARG(list[i]->id && list[i]->up);
      FLORA_ASSERT_ARG(i == 0 || strcmp(list[i - 1]->id, list[i]->id) < 0);
   }
}

/* ---- checksums ------------------------------------------------------------------------ */

static void
hash_string(crypto_hash_sha256_state *st, const char *s)
{
   crypto_hash_sha256_update(st, (const unsigned char *) (s ? s : ""), s ? strlen(s) : 0);
   crypto_hash_sha256_update(st, (const unsigned char *) "", 1); /* separator: NUL */
}

static bool
hash_document(crypto_hash_sha256_state *st, const bson_t *doc, flora_error_t *error)
{
   size_t len = 0;
   char *json = bson_as_canonical_extended_json(doc, &len);

   if (!json) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "cannot render a schema definition as JSON");
      return false;
   }
   crypto_hash_sha256_update(st, (const unsigned char *) json, len);
   crypto_hash_sha256_update(st, (const unsigned char *) "", 1);
   bson_free(json);
   return true;
}

bool
flora_migration_checksum(const flora_migration_t *migration, char out[65], flora_error_t *error)
{
   crypto_hash_sha256_state st;
   unsigned char digest[crypto_hash_sha256_BYTES];
   const flora_schema_t *const *schemas;

   FLORA_ASSERT_ARG(migration);
   FLORA_ASSERT_ARG(out);
   out[0] = '\0';
   if (sodium_init() < 0) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL,
                      "libsodium failed to initialise");
      return false;
   }
   crypto_hash_sha256_init(&st);
   hash_string(&st, migration->id);
   hash_string(&st, migration->description);
   schemas = migration->schemas ? migration->schemas() : NULL;
   for (size_t i = 0; schemas && schemas[i]; i++) {
      bson_t json_schema, specs;
      bool ok;

      hash_string(&st, schemas[i]->collection);
      ok = flora_schema_json_schema(schemas[i], &json_schema, error) &&
           hash_document(&st, &json_schema, error);
      bson_destroy(&json_schema);
      if (!ok) {
         return false;
      }
      ok = flora_schema_index_specs(schemas[i], &specs, error) &&
           hash_document(&st, &specs, error);
      bson_destroy(&specs);
      if (!ok) {
         return false;
      }
   }
   crypto_hash_sha256_final(&st, digest);
   sodium_bin2hex(out, 65, digest, sizeof digest);
   return true;
}

/* ---- records ------------------------------------------------------------------------------ */

typedef struct record {
   char id[128];
   char checksum[65];
   int64_t applied_at_ms;
} record_t;

typedef struct records {
   record_t *items;
   size_t len;
} records_t;

/* Every applied record, ascending by id. */
static bool
read_records(flora_store_t *store, records_t *out, flora_error_t *error)
{
   bson_t *filter = BCON_NEW("_id", "{", "$ne", BCON_UTF8(LOCK_ID), "}");
   bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   bson_iter_t it;
   size_t cap = 0;
   bool ok = false;

   out->items = NULL;
   out->len = 0;
   if (!flora_store_find(store, FLORA_MIGRATIONS_COLLECTION, filter, opts, &cursor, error)) {
      goto cleanup;
   }
   while (flora_cursor_next(cursor, &doc)) {
      record_t *r;

      if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it)) {
         continue;
      }
      if (out->len == cap) {
         cap = cap ? cap * 2 : 16;
         out->items = realloc(out->items, cap * sizeof *out->items);
         if (!out->items) {
            abort();
         }
      }
      r = &out->items[out->len++];
      memset(r, 0, sizeof *r);
      snprintf(r->id, sizeof r->id, "%s", bson_iter_utf8(&it, NULL));
      if (bson_iter_init_find(&it, doc, "checksum") && BSON_ITER_HOLDS_UTF8(&it)) {
         snprintf(r->checksum, sizeof r->checksum, "%s", bson_iter_utf8(&it, NULL));
      }
      if (bson_iter_init_find(&it, doc, "appliedAt") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
         r->applied_at_ms = bson_iter_date_time(&it);
      }
   }
   if (flora_cursor_error(cursor, error)) {
      goto cleanup;
   }
   ok = true;
cleanup:
   flora_cursor_destroy(cursor);
   bson_destroy(filter);
   bson_destroy(opts);
   if (!ok) {
      free(out->items);
      out->items = NULL;
      out->len = 0;
   }
   return ok;
}

static const record_t *
find_record(const records_t *records, const char *id)
{
   for (size_t i = 0; i < records->len; i++) {
      if (strcmp(records->items[i].id, id) == 0) {
         return &records->items[i];
      }
   }
   return NULL;
}

static const flora_migration_t *
find_migration(const flora_migration_t *const *list, const char *id)
{
   for (size_t i = 0; list[i]; i++) {
      if (strcmp(list[i]->id, id) == 0) {
         return list[i];
      }
   }
   return NULL;
}

bool
flora_migrate_status(flora_store_t *store, const flora_migration_t *const *list,
                     flora_migration_status_t **out, size_t *n_out, flora_error_t *error)
{
   records_t records = {NULL, 0};
   flora_migration_status_t *st = NULL;
   size_t n_list = 0, n = 0;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(n_out);
   check_order(list);
   *out = NULL;
   *n_out = 0;
   if (!read_records(store, &records, error)) {
      goto cleanup;
   }
   while (list[n_list]) {
      n_list++;
   }
   st = calloc(n_list + records.len + 1, sizeof *st);
   if (!st) {
      abort();
   }
   for (size_t i = 0; i < n_list; i++) {
      const record_t *r = find_record(&records, list[i]->id);

      st[n].id = list[i]->id;
      st[n].migration = list[i];
      if (!flora_migration_checksum(list[i], st[n].checksum, error)) {
         goto cleanup;
      }
      if (r) {
         st[n].applied = true;
         st[n].applied_at_ms = r->applied_at_ms;
         st[n].checksum_mismatch = strcmp(r->checksum, st[n].checksum) != 0;
      }
      n++;
   }
   for (size_t i = 0; i < records.len; i++) {
      if (find_migration(list, records.items[i].id)) {
         continue;
      }
      snprintf(st[n].unknown_id, sizeof st[n].unknown_id, "%s", records.items[i].id);
      st[n].applied = true;
      st[n].applied_at_ms = records.items[i].applied_at_ms;
      n++;
   }
   /* The records come sorted by _id, so the unknown entries are in id order. */
   for (size_t i = n_list; i < n; i++) {
      st[i].id = st[i].unknown_id;
   }
   *out = st;
   *n_out = n;
   st = NULL;
   ok = true;
cleanup:
   free(st);
   free(records.items);
   return ok;
}

/* ---- the lock ------------------------------------------------------------------------------- */

typedef struct lock {
   char owner[256];
   int ttl_s;
   bool held;
} lock_t;

/* Takes or renews the lock with one conditional upsert: it matches the lock document only
 * when it has expired or is ours; otherwise the upsert's insert of _id "lock" collides
 * (11000) and the lock is reported as held. */
static bool
lock_take(flora_store_t *store, lock_t *lock, flora_error_t *error)
{
   int64_t now = now_ms();
   bson_t *filter = BCON_NEW("_id", BCON_UTF8(LOCK_ID), "$or", "[", "{", "expiresAt", "{",
                             "$lte", BCON_DATE_TIME(now), "}", "}", "{", "owner",
                             BCON_UTF8(lock->owner), "}", "]");
   bson_t *update = BCON_NEW("$set", "{", "owner", BCON_UTF8(lock->owner), "expiresAt",
                             BCON_DATE_TIME(now + (int64_t) lock->ttl_s * 1000), "}");
   bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
   bson_t *lock_filter = BCON_NEW("_id", BCON_UTF8(LOCK_ID));
   flora_error_t err;
   bool ok = false;

   flora_error_clear(&err);
   if (flora_store_update_one(store, FLORA_MIGRATIONS_COLLECTION, filter, update, opts, NULL,
                              &err)) {
      lock->held = true;
      ok = true;
   } else if (err.domain == FLORA_DOMAIN_STORE && err.code == FLORA_STORE_DUPLICATE_KEY) {
      bson_t holder;
      bool found = false;
      bson_iter_t it;
      const char *who = "another process";
      int64_t until = 0;

      if (flora_store_find_one(store, FLORA_MIGRATIONS_COLLECTION, lock_filter, NULL, &holder,
                               &found, NULL) &&
          found) {
         if (bson_iter_init_find(&it, &holder, "owner") && BSON_ITER_HOLDS_UTF8(&it)) {
            who = bson_iter_utf8(&it, NULL);
         }
         if (bson_iter_init_find(&it, &holder, "expiresAt") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
            until = bson_iter_date_time(&it);
         }
      }
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_LOCK_TIMEOUT,
                      "migrations are locked by %s for another %" PRId64 " s", who,
                      until > now ? (until - now + 999) / 1000 : 0);
      bson_destroy(&holder);
   } else {
      flora_error_prefix(&err, "taking the migrations lock");
      if (error) {
         *error = err;
      }
   }
   bson_destroy(filter);
   bson_destroy(update);
   bson_destroy(opts);
   bson_destroy(lock_filter);
   return ok;
}

static void
lock_release(flora_store_t *store, lock_t *lock)
{
   bson_t *filter;

   if (!lock->held) {
      return;
   }
   filter = BCON_NEW("_id", BCON_UTF8(LOCK_ID), "owner", BCON_UTF8(lock->owner));
   flora_store_delete_one(store, FLORA_MIGRATIONS_COLLECTION, filter, NULL, NULL, NULL);
   bson_destroy(filter);
   lock->held = false;
}

static void
lock_init(lock_t *lock, const flora_migrate_options_t *options)
{
   static const flora_migrate_options_t defaults = FLORA_MIGRATE_OPTIONS_INIT;
   char host[128] = "localhost";

   if (!options) {
      options = &defaults;
   }
   FLORA_ASSERT_ARG(options->version == FLORA_MIGRATE_OPTIONS_VERSION);
   memset(lock, 0, sizeof *lock);
   lock->ttl_s = options->lock_ttl_s > 0 ? options->lock_ttl_s : defaults.lock_ttl_s;
   if (options->owner) {
      snprintf(lock->owner, sizeof lock->owner, "%s", options->owner);
   } else {
      if (gethostname(host, sizeof host) != 0) {
         snprintf(host, sizeof host, "localhost");
      }
      host[sizeof host - 1] = '\0';
      snprintf(lock->owner, sizeof lock->owner, "%s:%ld", host, (long) getpid());
   }
}

static void
report(const flora_migrate_options_t *options, const flora_migration_t *m, const char *action)
{
   if (options && options->progress) {
      options->progress(options->progress_ctx, m, action);
   }
}

/* Fails when an applied migration changed or is unknown. */
static bool
check_applied(const flora_migration_status_t *st, size_t n, flora_error_t *error)
{
   for (size_t i = 0; i < n; i++) {
      if (st[i].applied && !st[i].migration) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "migration %s is applied but unknown to this program (a newer version "
                         "applied it)",
                         st[i].id);
         return false;
      }
      if (st[i].checksum_mismatch) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "migration %s was applied with another definition (checksum "
                         "mismatch): add a new migration instead of changing it",
                         st[i].id);
         return false;
      }
   }
   return true;
}

bool
flora_migrate_up(flora_store_t *store, const flora_migration_t *const *list,
                 const flora_migrate_options_t *options, size_t *n_applied, flora_error_t *error)
{
   flora_migration_status_t *st = NULL;
   size_t n = 0;
   lock_t lock;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   check_order(list);
   if (n_applied) {
      *n_applied = 0;
   }
   lock_init(&lock, options);
   if (!lock_take(store, &lock, error)) {
      return false;
   }
   if (!flora_migrate_status(store, list, &st, &n, error) || !check_applied(st, n, error)) {
      goto cleanup;
   }
   for (size_t i = 0; i < n; i++) {
      const flora_migration_t *m = st[i].migration;
      bson_t *record;
      bool inserted;

      if (!m || st[i].applied) {
         continue;
      }
      if (!lock_take(store, &lock, error)) {
         goto cleanup;
      }
      if (!m->up(store, error)) {
         flora_error_prefix(error, "migration %s", m->id);
         goto cleanup;
      }
      record = BCON_NEW("_id", BCON_UTF8(m->id), "checksum", BCON_UTF8(st[i].checksum),
                        "appliedAt", BCON_DATE_TIME(now_ms()));
      inserted = flora_store_insert_one(store, FLORA_MIGRATIONS_COLLECTION, record, NULL, NULL,
                                        error);
      bson_destroy(record);
      if (!inserted) {
         flora_error_prefix(error, "recording migration %s", m->id);
         goto cleanup;
      }
      if (n_applied) {
         (*n_applied)++;
      }
      report(options, m, "applied");
   }
   ok = true;
cleanup:
   free(st);
   lock_release(store, &lock);
   return ok;
}

bool
flora_migrate_down(flora_store_t *store, const flora_migration_t *const *list, size_t steps,
                   const flora_migrate_options_t *options, size_t *n_reverted,
                   flora_error_t *error)
{
   flora_migration_status_t *st = NULL;
   size_t n = 0, done = 0;
   lock_t lock;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   check_order(list);
   if (n_reverted) {
      *n_reverted = 0;
   }
   lock_init(&lock, options);
   if (!lock_take(store, &lock, error)) {
      return false;
   }
   if (!flora_migrate_status(store, list, &st, &n, error) || !check_applied(st, n, error)) {
      goto cleanup;
   }
   /* Every applied entry is known (check_applied), so the list part holds them in id
    * order: walk it backwards. */
   for (size_t i = n; i > 0 && done < steps; i--) {
      const flora_migration_t *m = st[i - 1].migration;
      bson_t *filter;
      bool deleted;

      if (!m || !st[i - 1].applied) {
         continue;
      }
      if (!m->down) {
         flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                         "migration %s cannot be reverted (it has no down step)", m->id);
         goto cleanup;
      }
      if (!lock_take(store, &lock, error)) {
         goto cleanup;
      }
      if (!m->down(store, error)) {
         flora_error_prefix(error, "reverting migration %s", m->id);
         goto cleanup;
      }
      filter = BCON_NEW("_id", BCON_UTF8(m->id));
      deleted = flora_store_delete_one(store, FLORA_MIGRATIONS_COLLECTION, filter, NULL, NULL,
                                       error);
      bson_destroy(filter);
      if (!deleted) {
         flora_error_prefix(error, "removing the record of migration %s", m->id);
         goto cleanup;
      }
      done++;
      if (n_reverted) {
         *n_reverted = done;
      }
      report(options, m, "reverted");
   }
   ok = true;
cleanup:
   free(st);
   lock_release(store, &lock);
   return ok;
}
