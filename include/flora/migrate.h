/* Schema migrations: versioned, ordered changes to the database, each applied once.
 *
 * A migration has an id that orders it ("0001_create_collections"), a description, an up
 * function and (optionally) a down function, and the schemas it applies. Applying one
 * records {_id: id, checksum, appliedAt} in the `migrations` collection. The checksum is
 * the SHA-256 (libsodium crypto_hash_sha256) of the migration's definition: its id, its
 * description and the canonical Extended JSON of the $jsonSchema validator and the index
 * specifications of every schema it applies. An applied migration whose definition has
 * changed since (checksum mismatch) is an error: ship a new migration instead.
 *
 * Two processes never migrate at once: `up` and `down` hold a lock document
 * {_id: "lock", owner, expiresAt} in the `migrations` collection, taken with one atomic
 * conditional upsert that fails while another owner holds an unexpired lock (code 24,
 * LockTimeout). An expired lock (its holder died) is taken over.
 *
 * Errors: the store's (STORE domain), and for the migrations themselves: a checksum
 * mismatch, an applied migration this program does not know, or a down without a down
 * function (STORE domain, code 2 BadValue, naming the migration). */
#ifndef FLORA_MIGRATE_H
#define FLORA_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flora/error.h"
#include "flora/schema.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The collection that records applied migrations and holds the lock. */
#define FLORA_MIGRATIONS_COLLECTION "migrations"

typedef struct flora_migration {
   const char *id;          /* orders the migrations (byte order): "0001_create_collections" */
   const char *description; /* one line */
   /* Applies the change. Must be safe to run again after a crash half-way (the record is
    * written only after up returns true). */
   bool (*up)(flora_store_t *store, flora_error_t *error);
   /* Reverts it, or NULL when it cannot be reverted. */
   bool (*down)(flora_store_t *store, flora_error_t *error);
   /* The schemas whose validators and indexes it applies (part of the checksum), or NULL. */
   const flora_schema_t *const *(*schemas)(void);
} flora_migration_t;

/* The migrations built into Flora (lib/migrate/migrations.c), NULL-terminated, in
 * ascending id order. Static data. */
const flora_migration_t *const *flora_migrate_list(void);

/* Writes the migration's checksum as 64 lowercase hex digits and a NUL into out. */
bool flora_migration_checksum(const flora_migration_t *migration, char out[65],
                              flora_error_t *error);

/* Reports progress: action is "applied" or "reverted". */
typedef void (*flora_migrate_progress_fn)(void *ctx, const flora_migration_t *migration,
                                          const char *action);

typedef struct flora_migrate_options {
   int version;                /* FLORA_MIGRATE_OPTIONS_VERSION */
   const char *owner;          /* lock owner; NULL: "<hostname>:<pid>" */
   int lock_ttl_s;             /* how long a taken lock lasts (renewed per migration); default 600 */
   flora_migrate_progress_fn progress; /* may be NULL */
   void *progress_ctx;
} flora_migrate_options_t;

#define FLORA_MIGRATE_OPTIONS_VERSION 1
#define FLORA_MIGRATE_OPTIONS_INIT {FLORA_MIGRATE_OPTIONS_VERSION, NULL, 600, NULL, NULL}

typedef struct flora_migration_status {
   const char *id;             /* borrowed from the migration or the record's copy below */
   const flora_migration_t *migration; /* NULL for an applied id this program does not know */
   bool applied;
   int64_t applied_at_ms;      /* when applied (ms since the epoch), else 0 */
   bool checksum_mismatch;     /* applied with another definition */
   char checksum[65];          /* the definition's checksum now ("" when unknown) */
   char unknown_id[128];       /* the id when migration is NULL */
} flora_migration_status_t;

/* One entry per migration of list (NULL-terminated, ascending ids) and then one per
 * applied id not in list, in id order. *out is allocated (free with free()); *n_out is its
 * length. Takes no lock. */
bool flora_migrate_status(flora_store_t *store, const flora_migration_t *const *list,
                          flora_migration_status_t **out, size_t *n_out, flora_error_t *error);

/* Applies every pending migration of list in id order under the lock. Refuses to start
 * when an applied migration's checksum differs or an applied id is unknown. *n_applied
 * (may be NULL) receives how many were applied, also on failure. options may be NULL. */
bool flora_migrate_up(flora_store_t *store, const flora_migration_t *const *list,
                      const flora_migrate_options_t *options, size_t *n_applied,
                      flora_error_t *error);

/* Reverts the last `steps` applied migrations (newest first) under the lock, removing
 * their records. *n_reverted (may be NULL) receives how many were reverted. */
bool flora_migrate_down(flora_store_t *store, const flora_migration_t *const *list, size_t steps,
                        const flora_migrate_options_t *options, size_t *n_reverted,
                        flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
