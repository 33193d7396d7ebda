/* Schema validation and insert preparation over the shop's products schema: prints the
 * time per document. Asserts nothing about time (tests/bench convention).
 * Usage: bench_schema [ITERATIONS] (default 100000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flora/schema.h"
#include "flora/shop.h"

static const char product_json[] =
   "{\"sku\": \"RR-101\", \"slug\": \"red-roses-101\", \"name\": \"101 красная роза\","
   " \"description\": \"Букет из 101 красной розы\", \"categoryIds\": [], \"categoryTree\": [],"
   " \"variants\": [{\"sku\": \"RR-101-60\", \"name\": \"60 см\", \"price\": 1500000, \"stock\": 3,"
   "   \"composition\": [{\"flower\": \"роза\", \"stems\": 101}]},"
   "  {\"sku\": \"RR-101-80\", \"name\": \"80 см\", \"price\": 2100000, \"stock\": 1,"
   "   \"composition\": [{\"flower\": \"роза\", \"stems\": 101}]}],"
   " \"currency\": \"RUB\", \"price\": 1500000, \"inStock\": true, \"flowers\": [\"роза\"],"
   " \"flowerTerms\": [\"роз\"], \"images\": [{\"url\": \"https://cdn.example.com/rr101.jpg\","
   " \"kind\": \"image\"}], \"tags\": [\"valentines_day\", \"birthday\"], \"availableMonths\": [],"
   " \"rating\": {\"average\": 4.8, \"count\": 12, \"histogram\": [0, 0, 1, 1, 10]},"
   " \"popularity\": 40, \"active\": true}";

static double
elapsed_us(const struct timespec *a, const struct timespec *b)
{
   return (double) (b->tv_sec - a->tv_sec) * 1e6 + (double) (b->tv_nsec - a->tv_nsec) / 1e3;
}

int
main(int argc, char **argv)
{
   long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
   bson_error_t berr;
   bson_t *doc = bson_new_from_json((const uint8_t *) product_json, -1, &berr);
   flora_error_t error = {0};
   struct timespec a, b;

   if (!doc || n <= 0) {
      fprintf(stderr, "bench_schema: %s\n", doc ? "bad iteration count" : berr.message);
      return 1;
   }
   if (!flora_schema_validate(&flora_schema_products, doc, NULL, &error)) {
      fprintf(stderr, "bench_schema: the sample product is invalid: %s\n", error.message);
      return 1;
   }
   clock_gettime(CLOCK_MONOTONIC, &a);
   for (long i = 0; i < n; i++) {
      flora_schema_validate(&flora_schema_products, doc, NULL, NULL);
   }
   clock_gettime(CLOCK_MONOTONIC, &b);
   printf("validate products: %.2f us/doc (%ld docs, %u bytes each)\n", elapsed_us(&a, &b) / (double) n,
          n, doc->len);
   clock_gettime(CLOCK_MONOTONIC, &a);
   for (long i = 0; i < n; i++) {
      bson_t out;
      flora_schema_prepare_insert(&flora_schema_products, doc, 0, &out, NULL);
      bson_destroy(&out);
   }
   clock_gettime(CLOCK_MONOTONIC, &b);
   printf("prepare_insert products: %.2f us/doc\n", elapsed_us(&a, &b) / (double) n);
   bson_destroy(doc);
   return 0;
}
