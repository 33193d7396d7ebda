/* Internals shared by the store's front (store.c) and its engines. Not installed. */
#ifndef FLORA_STORE_PRIVATE_H
#define FLORA_STORE_PRIVATE_H

#include <pthread.h>

#include "flora/query.h"
#include "flora/store.h"

/* An engine implements these on its own flora_store_t (whose `impl` it owns). store.c
 * checks arguments, fills defaults, calls the validator hook through
 * flora__store_validate(), and dispatches here. Output parameters follow store.h, except
 * that store.c always passes a non-NULL out/reply already initialised as an empty document
 * (the engine appends to it or re-initialises it, never destroys it), and filter/opts
 * arrive non-NULL (an empty document for "none"). Cursor structs are bson_malloc'd by the
 * engine; flora_cursor_destroy() calls ops->destroy and then bson_free()s the struct. */
typedef struct flora_store_engine {
   const char *name; /* "sqlite" | "mongodb" */
   bool (*ping)(flora_store_t *store, flora_error_t *error);
   void (*close)(flora_store_t *store);

   bool (*create_collection)(flora_store_t *store, const char *coll, const bson_t *opts,
                             flora_error_t *error);
   bool (*drop_collection)(flora_store_t *store, const char *coll, flora_error_t *error);
   bool (*list_collections)(flora_store_t *store, bson_t *out, flora_error_t *error);
   bool (*create_indexes)(flora_store_t *store, const char *coll, const bson_t *specs,
                          flora_error_t *error);
   bool (*list_indexes)(flora_store_t *store, const char *coll, bson_t *out, flora_error_t *error);
   bool (*drop_index)(flora_store_t *store, const char *coll, const char *name,
                      flora_error_t *error);

   /* docs already have _id (store.c adds it) and passed flora_document_check_storable. */
   bool (*insert)(flora_store_t *store, const char *coll, const bson_t *const *docs, size_t n,
                  bool ordered, bson_t *reply, flora_error_t *error);
   /* multi: update_many; replacement docs arrive with is_replacement set on the compiled
    * update. opts as given by the caller. */
   bool (*update)(flora_store_t *store, const char *coll, const bson_t *filter,
                  const bson_t *update, const bson_t *opts, bool multi, bson_t *reply,
                  flora_error_t *error);
   bool (*remove)(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
                  bool multi, bson_t *reply, flora_error_t *error);
   /* update NULL and remove false: invalid. remove true: find_one_and_delete. */
   bool (*find_and_modify)(flora_store_t *store, const char *coll, const bson_t *filter,
                           const bson_t *update, bool remove, const bson_t *opts, bson_t *out,
                           bool *found, flora_error_t *error);

   bool (*find)(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
                flora_cursor_t **out, flora_error_t *error);
   bool (*count)(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
                 int64_t *count, flora_error_t *error);
   bool (*distinct)(flora_store_t *store, const char *coll, const char *field,
                    const bson_t *filter, bson_t *out, flora_error_t *error);
   bool (*aggregate)(flora_store_t *store, const char *coll, const bson_t *pipeline,
                     const bson_t *opts, flora_cursor_t **out, flora_error_t *error);
   bool (*explain)(flora_store_t *store, const char *coll, const bson_t *filter, const bson_t *opts,
                   bson_t *out, flora_error_t *error);

   /* Run fn once inside one transaction (begin, fn, commit or abort). The retry loop on
    * transient errors is store.c's. `txn` handed to fn is an engine-made flora_store_t whose
    * `parent` is store and `in_txn` is true. */
   bool (*transaction)(flora_store_t *store, flora_txn_fn fn, void *ctx, flora_error_t *error);

   /* Optional: the change counter of a collection (flora_store_collection_version); NULL
    * when the engine cannot tell. */
   bool (*collection_versions)(flora_store_t *store, const char *const *colls, size_t n,
                               int64_t *versions, flora_error_t *error);

   /* Optional: a command the engine runs itself (mongodb passes everything through).
    * NULL means store.c's generic command adapter over the functions above. */
   bool (*command)(flora_store_t *store, const bson_t *command, bson_t *reply,
                   flora_error_t *error);
} flora_store_engine_t;

typedef struct flora_validator_entry {
   char *collection;
   flora_validate_fn fn;
   void *ctx;
   struct flora_validator_entry *next;
} flora_validator_entry_t;

struct flora_store {
   const flora_store_engine_t *engine;
   void *impl;                 /* engine state; for a txn handle, the engine's txn state */
   flora_store_t *parent;      /* the store a transaction handle belongs to, else NULL */
   bool in_txn;
   char *uri_masked;           /* owned (NULL on txn handles: use parent's) */
   flora_store_options_t options;
   pthread_rwlock_t validators_lock;
   flora_validator_entry_t *validators; /* only on the root store */
};

/* Engine constructors: fill store->engine and store->impl. uri is the full URI. */
bool flora__store_sqlite_open(flora_store_t *store, const char *uri, flora_error_t *error);
bool flora__store_mongo_open(flora_store_t *store, const char *uri, flora_error_t *error);

/* Runs the collection's validator hook (root store's) on doc. Engines call it for every
 * document they are about to write (after applying an update). Fails with code 121. */
bool flora__store_validate(flora_store_t *store, const char *coll, const bson_t *doc,
                           flora_error_t *error);

/* Cursors: an engine makes its cursors with these ops. */
typedef struct flora_cursor_ops {
   bool (*next)(flora_cursor_t *cursor, const bson_t **doc);
   void (*destroy)(flora_cursor_t *cursor); /* frees impl only */
} flora_cursor_ops_t;

struct flora_cursor {
   const flora_cursor_ops_t *ops;
   void *impl;
   bool failed;
   flora_error_t error;
};

/* A cursor over a materialised list; takes ownership of docs' contents (docs left empty). */
flora_cursor_t *flora__cursor_from_docs(flora_docs_t *docs);
/* A cursor that fails at once with *error. */
flora_cursor_t *flora__cursor_failed(const flora_error_t *error);

/* Milliseconds since the epoch (wall clock), for TTL and $currentDate. */
int64_t flora__store_now_ms(void);

#endif
