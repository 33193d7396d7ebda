/* The program's route table: every area's table, concatenated (src/http.h). */
#include <pthread.h>
#include <stdlib.h>

#include "http.h"

static const flora_route_t *const tables[] = {flora_routes_ops, flora_routes_catalog,
                                              flora_routes_users,
                                              flora_routes_notify, flora_routes_orders,
                                              flora_routes_coupons, flora_routes_reviews,
                                              flora_routes_delivery,
                                              flora_routes_pay};

static flora_route_t *all_routes;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static size_t
table_length(const flora_route_t *t)
{
   size_t n = 0;

   while (t[n].method) {
      n++;
   }
   return n;
}

static void
build(void)
{
   size_t total = 0;
   size_t o = 0;

   for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
      total += table_length(tables[i]);
   }
   all_routes = calloc(total + 1, sizeof *all_routes);
   FLORA_ASSERT_ARG(all_routes != NULL);
   for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
      for (size_t j = 0; tables[i][j].method; j++) {
         all_routes[o++] = tables[i][j];
      }
   }
}

const flora_route_t *
flora_http_routes(void)
{
   pthread_once(&once, build);
   return all_routes;
}
