/* The notification worker (include/flora/notify.h) in a thread of its own, for
 * `flora worker` and for `flora serve` when notify.worker_in_serve is true. */
#ifndef FLORA_SRC_WORKER_THREAD_H
#define FLORA_SRC_WORKER_THREAD_H

#include <stdbool.h>

#include "flora/config.h"
#include "flora/error.h"
#include "flora/store.h"

typedef struct flora_worker_thread flora_worker_thread_t;

/* Starts the worker loop in a new thread. store and config are borrowed and must outlive
 * the thread. *out is released by flora_worker_thread_stop. */
bool flora_worker_thread_start(flora_worker_thread_t **out, flora_store_t *store,
                               const flora_config_t *config, flora_error_t *error);

/* Asks the loop to stop, waits until the message in hand is finished (its lease is then
 * released by the final update) and frees everything. NULL is a no-op. */
void flora_worker_thread_stop(flora_worker_thread_t *thread);

#endif
