/* Reviews on a temporary sqlite FILE store: one per user per product, moderation, the
 * verified-purchase flag, and the product's rating summary under concurrent moderation. */
#include "flora_test.h"

#include <pthread.h>
#include <unistd.h>

#include "flora/catalog.h"
#include "flora/config.h"
#include "flora/migrate.h"
#include "flora/orders.h"
#include "flora/reviews.h"
#include "flora/shop.h"
#include "flora/users.h"

static flora_store_t *store;
static flora_config_t *config;
static char dir[64];
static char db_path[256];
static bson_oid_t product_id;

static int
setup(void **state)
{
   flora_error_t error = {0};
   flora_store_options_t options = FLORA_STORE_OPTIONS_INIT;
   char uri[300];
   bson_t *input, out, problems = BSON_INITIALIZER;
   bson_iter_t it;

   (void) state;
   snprintf(dir, sizeof dir, "/tmp/flora-reviews-XXXXXX");
   if (!mkdtemp(dir)) {
      fail_msg("mkdtemp failed");
   }
   snprintf(db_path, sizeof db_path, "%s/flora.db", dir);
   snprintf(uri, sizeof uri, "sqlite:%s", db_path);
   options.busy_timeout_ms = 60000;
   options.pool_size = 32;
   options.ttl_sweep_interval_s = 0;
   if (!flora_store_open(&store, uri, &options, &error) ||
       !flora_migrate_up(store, flora_migrate_list(), NULL, NULL, &error) ||
       !flora_config_load(&config, NULL, &error) ||
       !flora_config_set(config, "auth.argon2_memlimit", "8192", "test", &error) ||
       !flora_config_set(config, "auth.argon2_opslimit", "1", "test", &error)) {
      fail_msg("setup: %s", error.message);
   }
   input = J("{'sku': 'REV', 'name': 'Пионы', 'variants': [{'sku': 'REV-M', 'name': 'M', 'price': 100000, "
             "'stock': 100}]}");
   if (!flora_catalog_create_product(store, input, &problems, &out, &error)) {
      fail_msg("product: %s", error.message);
   }
   bson_iter_init_find(&it, &out, "_id");
   bson_oid_copy(bson_iter_oid(&it), &product_id);
   bson_destroy(&out);
   bson_destroy(input);
   bson_destroy(&problems);
   return 0;
}

static int
teardown(void **state)
{
   char path[300];

   (void) state;
   flora_store_close(store);
   flora_config_destroy(config);
   unlink(db_path);
   snprintf(path, sizeof path, "%s-wal", db_path);
   unlink(path);
   snprintf(path, sizeof path, "%s-shm", db_path);
   unlink(path);
   rmdir(dir);
   return 0;
}

static bson_t *
review_input(int rating)
{
   char hex[25], json[256];

   bson_oid_to_string(&product_id, hex);
   snprintf(json, sizeof json, "{'productId': '%s', 'rating': %d, 'text': 'Свежие, стоят неделю'}", hex, rating);
   return J(json);
}

static void
create_review(const bson_oid_t *user, int rating, bson_oid_t *review_id)
{
   bson_t *input = review_input(rating), out, problems = BSON_INITIALIZER;
   flora_error_t error = {0};
   bson_iter_t it;

   if (!flora_reviews_create(store, user, "Ольга", input, &problems, &out, &error)) {
      fail_msg("review: %s", error.message);
   }
   bson_iter_init_find(&it, &out, "_id");
   bson_oid_copy(bson_iter_oid(&it), review_id);
   bson_destroy(&out);
   bson_destroy(&problems);
   bson_destroy(input);
}

/* The product's rating: count, average and histogram, checked for agreement. */
static void
rating_of(int64_t *count, double *average, int64_t hist[5])
{
   bson_t *filter = BCON_NEW("_id", BCON_OID(&product_id)), doc;
   flora_error_t error = {0};
   bson_iter_t it, f;
   bool found = false;
   int64_t sum = 0, total = 0;

   assert_true(flora_store_find_one(store, "products", filter, NULL, &doc, &found, &error));
   assert_true(found);
   bson_iter_init(&it, &doc);
   assert_true(bson_iter_find_descendant(&it, "rating.count", &f));
   *count = bson_iter_as_int64(&f);
   bson_iter_init(&it, &doc);
   assert_true(bson_iter_find_descendant(&it, "rating.average", &f));
   *average = bson_iter_as_double(&f);
   for (int i = 0; i < 5; i++) {
      char path[32];

      snprintf(path, sizeof path, "rating.histogram.%d", i);
      bson_iter_init(&it, &doc);
      assert_true(bson_iter_find_descendant(&it, path, &f));
      hist[i] = bson_iter_as_int64(&f);
      total += hist[i];
      sum += hist[i] * (i + 1);
   }
   assert_int_equal(total, *count);
   if (total > 0 && (*average < (double) sum / (double) total - 1e-9 || *average > (double) sum / (double) total + 1e-9)) {
      fail_msg("average %f, histogram says %f", *average, (double) sum / (double) total);
   }
   bson_destroy(&doc);
   bson_destroy(filter);
}

typedef struct approver {
   pthread_t thread;
   pthread_barrier_t *barrier;
   bson_oid_t review;
   bool ok;
   flora_error_t error;
} approver_t;

static void *
approve(void *arg)
{
   approver_t *a = arg;

   pthread_barrier_wait(a->barrier);
   a->ok = flora_reviews_moderate(store, &a->review, "approved", "manager:m", NULL, &a->error);
   return NULL;
}

static void
test_fifty_concurrent_approvals(void **state)
{
   enum { N = 50 };
   approver_t a[N];
   pthread_barrier_t barrier;
   int64_t count, hist[5], expect[5] = {0};
   double average;

   (void) state;
   for (int i = 0; i < N; i++) {
      bson_oid_t user;

      bson_oid_init(&user, NULL);
      create_review(&user, i % 5 + 1, &a[i].review);
      expect[i % 5]++;
   }
   pthread_barrier_init(&barrier, NULL, N);
   for (int i = 0; i < N; i++) {
      a[i].barrier = &barrier;
      assert_int_equal(pthread_create(&a[i].thread, NULL, approve, &a[i]), 0);
   }
   for (int i = 0; i < N; i++) {
      pthread_join(a[i].thread, NULL);
      if (!a[i].ok) {
         fail_msg("approval %d: %s", i, a[i].error.message);
      }
   }
   pthread_barrier_destroy(&barrier);
   rating_of(&count, &average, hist);
   assert_int_equal(count, 50);
   for (int i = 0; i < 5; i++) {
      assert_int_equal(hist[i], expect[i]);
   }
   assert_true(average > 2.999 && average < 3.001);

   /* The same review approved by 20 managers at once counts once. */
   {
      approver_t same[20];
      bson_oid_t user, review;

      bson_oid_init(&user, NULL);
      create_review(&user, 5, &review);
      pthread_barrier_init(&barrier, NULL, 20);
      for (int i = 0; i < 20; i++) {
         same[i] = (approver_t){.barrier = &barrier};
         bson_oid_copy(&review, &same[i].review);
         assert_int_equal(pthread_create(&same[i].thread, NULL, approve, &same[i]), 0);
      }
      for (int i = 0; i < 20; i++) {
         pthread_join(same[i].thread, NULL);
         assert_true(same[i].ok);
      }
      pthread_barrier_destroy(&barrier);
      rating_of(&count, &average, hist);
      assert_int_equal(count, 51);
      assert_int_equal(hist[4], expect[4] + 1);
   }
}

static void
test_moderation_edits_removal_and_verified_purchase(void **state)
{
   flora_error_t error = {0};
   bson_t *input, *user_in, out, problems = BSON_INITIALIZER, order;
   bson_oid_t uid, review, other;
   bson_iter_t it;
   int64_t count, hist[5];
   double average;
   flora_customer_t customer = {.has_user = true};

   (void) state;
   user_in = J("{'email': 'olga@example.com', 'password': 'correct horse', 'name': 'Ольга'}");
   if (!flora_users_create(store, config, user_in, FLORA_ROLE_CUSTOMER, &problems, &out, &error)) {
      fail_msg("user: %s", error.message);
   }
   bson_iter_init_find(&it, &out, "_id");
   bson_oid_copy(bson_iter_oid(&it), &uid);
   bson_destroy(&out);
   bson_destroy(user_in);

   /* A delivered order of the product makes the review a verified purchase. */
   customer.user_id = uid;
   input = J("{'customer': {'name': 'Ольга', 'email': 'olga@example.com', 'phone': '+79161234567'}, "
             "'items': [{'sku': 'REV-M', 'quantity': 1}], "
             "'delivery': {'address': {'text': 'Москва'}, 'date': '2026-12-30', 'slot': '09-12'}}");
   assert_true(flora_checkout(store, config, &customer, input, NULL, &problems, &order, NULL, &error));
   bson_destroy(input);
   bson_iter_init_find(&it, &order, "_id");
   {
      static const char *const steps[] = {"paid", "assembling", "ready", "out_for_delivery", "delivered"};

      for (size_t i = 0; i < 5; i++) {
         assert_true(flora_orders_transition(store, bson_iter_oid(&it), steps[i], "manager:m", NULL, NULL, &error));
      }
   }
   bson_destroy(&order);
   input = review_input(4);
   assert_true(flora_reviews_create(store, &uid, "Ольга", input, &problems, &out, &error));
   bson_iter_init_find(&it, &out, "verifiedPurchase");
   assert_true(bson_iter_bool(&it));
   bson_iter_init_find(&it, &out, "_id");
   bson_oid_copy(bson_iter_oid(&it), &review);
   bson_destroy(&out);
   /* One per user per product. */
   assert_false(flora_reviews_create(store, &uid, NULL, input, &problems, &out, &error));
   assert_int_equal(flora_error_http_status(&error), 409);
   bson_destroy(&out);
   bson_destroy(input);

   /* Approve: summary and the author's notification. */
   assert_true(flora_reviews_moderate(store, &review, "approved", "manager:m", NULL, &error));
   rating_of(&count, &average, hist);
   assert_int_equal(count, 1);
   assert_int_equal(hist[3], 1);
   {
      bson_t *filter = J("{'event': 'review.approved', 'payload.to.email': 'olga@example.com'}");
      int64_t n = 0;

      assert_true(flora_store_count_documents(store, "outbox", filter, NULL, &n, &error));
      assert_int_equal(n, 1);
      bson_destroy(filter);
   }
   /* An edit goes back to moderation and leaves the summary. */
   input = J("{'rating': 2}");
   assert_true(flora_reviews_update(store, &review, &uid, input, &problems, &out, &error));
   bson_iter_init_find(&it, &out, "status");
   assert_string_equal(bson_iter_utf8(&it, NULL), "pending");
   bson_destroy(&out);
   bson_destroy(input);
   rating_of(&count, &average, hist);
   assert_int_equal(count, 0);
   assert_true(average == 0.0);
   assert_true(flora_reviews_moderate(store, &review, "approved", "manager:m", NULL, &error));
   rating_of(&count, &average, hist);
   assert_int_equal(hist[1], 1);
   /* Rejecting an approved review takes it out; approving again puts it back. */
   assert_true(flora_reviews_moderate(store, &review, "rejected", "manager:m", NULL, &error));
   rating_of(&count, &average, hist);
   assert_int_equal(count, 0);
   assert_true(flora_reviews_moderate(store, &review, "approved", "manager:m", NULL, &error));
   /* Someone else cannot edit or remove it. */
   bson_oid_init(&other, NULL);
   input = J("{'text': 'чужой'}");
   assert_false(flora_reviews_update(store, &review, &other, input, &problems, &out, &error));
   assert_int_equal(error.code, FLORA_ERR_NOT_FOUND);
   bson_destroy(&out);
   bson_destroy(input);
   assert_false(flora_reviews_delete(store, &review, &other, &error));
   /* Bad input: every field. */
   input = J("{'rating': 9, 'text': 5, 'photos': 'x', 'stars': 1}");
   bson_reinit(&problems);
   assert_false(flora_reviews_update(store, &review, &uid, input, &problems, &out, &error));
   assert_int_equal(bson_count_keys(&problems), 4);
   bson_destroy(&out);
   bson_destroy(input);
   input = J("{'rating': {'$gt': 0}}");
   assert_false(flora_reviews_update(store, &review, &uid, input, &problems, &out, &error));
   assert_int_equal(flora_error_http_status(&error), 400);
   bson_destroy(&out);
   bson_destroy(input);
   /* The author removes it: the summary follows. */
   assert_true(flora_reviews_delete(store, &review, &uid, &error));
   rating_of(&count, &average, hist);
   assert_int_equal(count, 0);
   assert_false(flora_reviews_delete(store, &review, NULL, &error));
   assert_int_equal(error.code, FLORA_ERR_NOT_FOUND);
   bson_destroy(&problems);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fifty_concurrent_approvals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_moderation_edits_removal_and_verified_purchase, setup, teardown),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
