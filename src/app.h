/* The running program's shared state, handed to every route handler. */
#ifndef FLORA_SRC_APP_H
#define FLORA_SRC_APP_H

#include <stdatomic.h>

#include "flora/config.h"
#include "flora/pay.h"
#include "flora/store.h"

typedef struct flora_metrics flora_metrics_t;
typedef struct flora_response_cache flora_response_cache_t;

struct flora_app {
   const flora_config_t *config; /* effective configuration (include/flora/config.h) */
   flora_store_t *store;
   flora_metrics_t *metrics;     /* src/metrics.h */
   flora_response_cache_t *cache; /* src/response_cache.h; NULL: off */
   atomic_bool draining;         /* set on SIGTERM: /readyz answers 503 */
   flora_pay_t *pay;             /* payments service (include/flora/pay.h); NULL: routes answer 503 */
};

#endif
