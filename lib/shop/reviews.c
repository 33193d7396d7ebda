/* Reviews and the products' rating summaries (include/flora/reviews.h). */
#include <stdio.h>
#include <string.h>

#include "flora/outbox.h"
#include "flora/reviews.h"
#include "flora/schema.h"
#include "flora/shop.h"
#include "flora/users.h"
#include "shop/orders_private.h"
#include "shop/shop_private.h"

#define REVIEWS "reviews"
#define PRODUCTS "products"
#define ORDERS "orders"

static const char *const review_statuses[] = {"pending", "approved", "rejected", NULL};

static const char *
doc_string(const bson_t *doc, const char *key)
{
   bson_iter_t it;

   return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

/* Adds delta (+1/-1) reviews of `rating` stars to the product's summary and recomputes
 * the average from the histogram, in txn. A deleted product has nothing to keep. */
static bool
summary_adjust(flora_store_t *txn, const bson_oid_t *product_id, int rating, int delta, flora_error_t *error)
{
   char hist[32];
   bson_t *filter, *update, *opts, after;
   bson_iter_t it, h;
   bool found = false, ok;

   if (rating < 1 || rating > 5) {
      return true;
   }
   snprintf(hist, sizeof hist, "rating.histogram.%d", rating - 1);
   filter = BCON_NEW("_id", BCON_OID(product_id));
   update = BCON_NEW("$inc", "{", "rating.count", BCON_INT32(delta), hist, BCON_INT32(delta), "}");
   opts = BCON_NEW("returnDocument", BCON_UTF8("after"));
   ok = flora_store_find_one_and_update(txn, PRODUCTS, filter, update, opts, &after, &found, error);
   bson_destroy(update);
   if (ok && found) {
      int64_t count = 0, sum = 0;
      int star = 1;

      bson_iter_init(&it, &after);
      if (bson_iter_find_descendant(&it, "rating.histogram", &h) && bson_iter_recurse(&h, &it)) {
         while (bson_iter_next(&it) && star <= 5) {
            count += flora__iter_int64(&it, 0);
            sum += flora__iter_int64(&it, 0) * star++;
         }
      }
      update = BCON_NEW("$set", "{", "rating.average", BCON_DOUBLE(count > 0 ? (double) sum / (double) count : 0.0),
                        "}");
      ok = flora_store_update_one(txn, PRODUCTS, filter, update, NULL, NULL, error);
      bson_destroy(update);
   }
   bson_destroy(&after);
   bson_destroy(filter);
   bson_destroy(opts);
   return ok;
}

/* Checks {rating, text, photos} of input (create: rating required) into out. */
static void
check_fields(const bson_t *input, bool create, bson_t *out, bson_t *problems)
{
   bson_iter_t it;

   bson_iter_init(&it, input);
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);

      if (strcmp(key, "rating") == 0) {
         if (!(BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) || bson_iter_as_int64(&it) < 1 ||
             bson_iter_as_int64(&it) > 5) {
            flora_schema_problem(problems, "rating", "must be a whole number from 1 to 5");
         } else {
            BSON_APPEND_INT32(out, "rating", (int32_t) bson_iter_as_int64(&it));
         }
      } else if (strcmp(key, "text") == 0) {
         if (!BSON_ITER_HOLDS_UTF8(&it)) {
            flora_schema_problem(problems, "text", "must be a string");
         } else if (flora__utf8_length(bson_iter_utf8(&it, NULL)) > 5000) {
            flora_schema_problem(problems, "text", "must be at most 5000 characters");
         } else {
            bson_append_iter(out, "text", -1, &it);
         }
      } else if (strcmp(key, "photos") == 0) {
         if (!BSON_ITER_HOLDS_ARRAY(&it)) {
            flora_schema_problem(problems, "photos", "must be an array of URLs");
         } else {
            bson_append_iter(out, "photos", -1, &it);
         }
      } else if (!create || (strcmp(key, "productId") != 0 && strcmp(key, "productSlug") != 0)) {
         flora_schema_problem(problems, key, "unknown field");
      }
   }
   if (create && !bson_has_field(input, "rating")) {
      flora_schema_problem(problems, "rating", "is required");
   }
}

static bool
schema_problems(const bson_t *doc, bson_t *problems)
{
   bson_t p = BSON_INITIALIZER;
   bson_iter_t it;
   bool ok = flora_schema_validate(&flora_schema_reviews, doc, &p, NULL);

   bson_iter_init(&it, &p);
   while (bson_iter_next(&it)) {
      bson_iter_t f;
      const char *path = "", *reason = "";

      bson_iter_recurse(&it, &f);
      while (bson_iter_next(&f)) {
         if (strcmp(bson_iter_key(&f), "path") == 0) {
            path = bson_iter_utf8(&f, NULL);
         } else if (strcmp(bson_iter_key(&f), "reason") == 0) {
            reason = bson_iter_utf8(&f, NULL);
         }
      }
      flora_schema_problem(problems, path, reason);
   }
   bson_destroy(&p);
   return ok;
}

bool
flora_reviews_create(flora_store_t *store, const bson_oid_t *user_id, const char *author_name, const bson_t *input,
                     bson_t *problems, bson_t *out, flora_error_t *error)
{
   bson_t fields = BSON_INITIALIZER, draft = BSON_INITIALIZER, product, local = BSON_INITIALIZER;
   bson_t *probs = problems ? problems : &local;
   bson_t *filter = NULL;
   bson_iter_t it;
   bson_oid_t product_id;
   uint32_t before = bson_count_keys(probs);
   int64_t delivered = 0;
   bool found = false, ok = false;
   const char *s;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(input);
   bson_init(out);
   bson_init(&product);
   if (!flora__reject_operators(input, "", error)) {
      goto cleanup;
   }
   check_fields(input, true, &fields, probs);
   if ((s = doc_string(input, "productId"))) {
      if (strlen(s) != 24 || !bson_oid_is_valid(s, 24)) {
         flora_schema_problem(probs, "productId", "must be a 24-digit hex id");
      } else {
         bson_oid_t oid;

         bson_oid_init_from_string(&oid, s);
         filter = BCON_NEW("_id", BCON_OID(&oid));
      }
   } else if ((s = doc_string(input, "productSlug"))) {
      filter = BCON_NEW("slug", BCON_UTF8(s));
   } else {
      flora_schema_problem(probs, "productId", "is required (or productSlug)");
   }
   if (author_name && flora__utf8_length(author_name) > 120) {
      flora_schema_problem(probs, "authorName", "must be at most 120 characters");
   }
   if (bson_count_keys(probs) != before) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "the review is invalid");
      goto cleanup;
   }
   bson_destroy(&product);
   if (!flora_store_find_one(store, PRODUCTS, filter, NULL, &product, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "product: no such product");
      goto cleanup;
   }
   bson_iter_init_find(&it, &product, "_id");
   bson_oid_copy(bson_iter_oid(&it), &product_id);
   bson_destroy(filter);
   filter = BCON_NEW("userId", BCON_OID(user_id), "items.productId", BCON_OID(&product_id), "status",
                     BCON_UTF8("delivered"));
   if (!flora_store_count_documents(store, ORDERS, filter, NULL, &delivered, error)) {
      goto cleanup;
   }
   BSON_APPEND_OID(&draft, "productId", &product_id);
   BSON_APPEND_OID(&draft, "userId", user_id);
   if (author_name) {
      BSON_APPEND_UTF8(&draft, "authorName", author_name);
   }
   bson_iter_init(&it, &fields);
   while (bson_iter_next(&it)) {
      bson_append_iter(&draft, bson_iter_key(&it), -1, &it);
   }
   BSON_APPEND_UTF8(&draft, "status", "pending");
   BSON_APPEND_BOOL(&draft, "verifiedPurchase", delivered > 0);
   bson_destroy(out);
   if (!flora_schema_prepare_insert(&flora_schema_reviews, &draft, flora__shop_now_ms(), out, error)) {
      bson_init(out);
      goto cleanup;
   }
   if (!schema_problems(out, probs)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "the review is invalid");
      goto cleanup;
   }
   if (!flora_store_insert_one(store, REVIEWS, out, NULL, NULL, error)) {
      if (error && error->domain == FLORA_DOMAIN_STORE && error->code == FLORA_STORE_DUPLICATE_KEY) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                         "productId: you have already reviewed this product (edit your review instead)");
      }
      goto cleanup;
   }
   ok = true;
cleanup:
   if (!ok) {
      bson_reinit(out);
   }
   if (filter) {
      bson_destroy(filter);
   }
   bson_destroy(&fields);
   bson_destroy(&draft);
   bson_destroy(&product);
   bson_destroy(&local);
   return ok;
}

typedef struct review_ctx {
   const bson_oid_t *id;
   const bson_oid_t *user_id;
   const bson_t *set;     /* update: the fields */
   const char *status;    /* moderate */
   const char *actor;
   bson_t review;         /* after (update, moderate) */
} review_ctx_t;

static int
doc_rating(const bson_t *doc)
{
   bson_iter_t it;

   return bson_iter_init_find(&it, doc, "rating") ? (int) flora__iter_int64(&it, 0) : 0;
}

static bool
doc_oid(const bson_t *doc, const char *key, bson_oid_t *out)
{
   bson_iter_t it;

   if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_OID(&it)) {
      return false;
   }
   bson_oid_copy(bson_iter_oid(&it), out);
   return true;
}

static bool
not_found(flora_error_t *error)
{
   flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no such review");
   return false;
}

static bool
update_txn(flora_store_t *txn, void *data, flora_error_t *error)
{
   review_ctx_t *ctx = data;
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, before, *opts;
   bson_iter_t it;
   bson_oid_t pid;
   bool found = false, ok = false;
   const char *status;

   bson_reinit(&ctx->review);
   BSON_APPEND_OID(&filter, "_id", ctx->id);
   BSON_APPEND_OID(&filter, "userId", ctx->user_id);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   bson_iter_init(&it, ctx->set);
   while (bson_iter_next(&it)) {
      bson_append_iter(&set, bson_iter_key(&it), -1, &it);
   }
   BSON_APPEND_UTF8(&set, "status", "pending");
   BSON_APPEND_DATE_TIME(&set, "updatedAt", flora__shop_now_ms());
   bson_append_document_end(&update, &set);
   opts = BCON_NEW("returnDocument", BCON_UTF8("before"));
   if (!flora_store_find_one_and_update(txn, REVIEWS, &filter, &update, opts, &before, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      not_found(error);
      goto cleanup;
   }
   status = doc_string(&before, "status");
   if (status && strcmp(status, "approved") == 0 && doc_oid(&before, "productId", &pid) &&
       !summary_adjust(txn, &pid, doc_rating(&before), -1, error)) {
      goto cleanup;
   }
   bson_destroy(&ctx->review);
   ok = flora_store_find_one(txn, REVIEWS, &filter, NULL, &ctx->review, &found, error);
cleanup:
   bson_destroy(&filter);
   bson_destroy(&update);
   bson_destroy(&before);
   bson_destroy(opts);
   return ok;
}

bool
flora_reviews_update(flora_store_t *store, const bson_oid_t *review_id, const bson_oid_t *user_id, const bson_t *patch,
                     bson_t *problems, bson_t *out, flora_error_t *error)
{
   bson_t fields = BSON_INITIALIZER, local = BSON_INITIALIZER;
   bson_t *probs = problems ? problems : &local;
   review_ctx_t ctx = {.id = review_id, .user_id = user_id, .set = &fields};
   uint32_t before = bson_count_keys(probs);
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(review_id);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(patch);
   bson_init(out);
   bson_init(&ctx.review);
   if (!flora__reject_operators(patch, "", error)) {
      goto cleanup;
   }
   check_fields(patch, false, &fields, probs);
   {
      bson_iter_t it, arr;

      if (bson_iter_init_find(&it, &fields, "photos") && bson_iter_recurse(&it, &arr)) {
         uint32_t n = 0;

         while (bson_iter_next(&arr)) {
            const char *u = BSON_ITER_HOLDS_UTF8(&arr) ? bson_iter_utf8(&arr, NULL) : "";
            char path[32];

            snprintf(path, sizeof path, "photos.%u", n++);
            if (!(strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0) || strlen(u) > 2000 ||
                strpbrk(u, " \t\r\n")) {
               flora_schema_problem(probs, path, "must be an http(s) URL");
            }
         }
         if (n > 10) {
            flora_schema_problem(probs, "photos", "at most 10 photos");
         }
      }
   }
   if (bson_count_keys(probs) != before) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "the review is invalid");
      goto cleanup;
   }
   if (!flora_store_with_transaction(store, update_txn, &ctx, error)) {
      goto cleanup;
   }
   bson_destroy(out);
   bson_copy_to(&ctx.review, out);
   ok = true;
cleanup:
   bson_destroy(&ctx.review);
   bson_destroy(&fields);
   bson_destroy(&local);
   return ok;
}

static bool
delete_txn(flora_store_t *txn, void *data, flora_error_t *error)
{
   review_ctx_t *ctx = data;
   bson_t filter = BSON_INITIALIZER, before;
   bson_oid_t pid;
   bool found = false, ok = false;
   const char *status;

   BSON_APPEND_OID(&filter, "_id", ctx->id);
   if (ctx->user_id) {
      BSON_APPEND_OID(&filter, "userId", ctx->user_id);
   }
   if (!flora_store_find_one_and_delete(txn, REVIEWS, &filter, NULL, &before, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      not_found(error);
      goto cleanup;
   }
   status = doc_string(&before, "status");
   ok = !(status && strcmp(status, "approved") == 0 && doc_oid(&before, "productId", &pid)) ||
        summary_adjust(txn, &pid, doc_rating(&before), -1, error);
cleanup:
   bson_destroy(&filter);
   bson_destroy(&before);
   return ok;
}

bool
flora_reviews_delete(flora_store_t *store, const bson_oid_t *review_id, const bson_oid_t *user_id,
                     flora_error_t *error)
{
   review_ctx_t ctx = {.id = review_id, .user_id = user_id};
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(review_id);
   bson_init(&ctx.review);
   ok = flora_store_with_transaction(store, delete_txn, &ctx, error);
   bson_destroy(&ctx.review);
   return ok;
}

/* "review.approved" for the author (skipped when the author's account is gone). */
static bool
notify_approved(flora_store_t *txn, const bson_t *review, flora_error_t *error)
{
   bson_oid_t uid, pid;
   bson_t user, product, payload = BSON_INITIALIZER, to;
   bool found_user = false, found_product = false, ok = true;
   const char *email, *name, *pname;
   char key[96], hex[25] = "";
   bson_iter_t it;

   bson_init(&user);
   bson_init(&product);
   if (!doc_oid(review, "userId", &uid) || !doc_oid(review, "productId", &pid)) {
      goto cleanup;
   }
   bson_destroy(&user);
   if (!flora_users_get(txn, &uid, &user, &found_user, error)) {
      ok = false;
      goto cleanup;
   }
   bson_destroy(&product);
   {
      bson_t *filter = BCON_NEW("_id", BCON_OID(&pid));

      ok = flora_store_find_one(txn, PRODUCTS, filter, NULL, &product, &found_product, error);
      bson_destroy(filter);
   }
   email = found_user ? doc_string(&user, "email") : NULL;
   pname = found_product ? doc_string(&product, "name") : NULL;
   if (!ok || !email || !pname) {
      goto cleanup;
   }
   name = doc_string(&user, "name");
   BSON_APPEND_UTF8(&payload, "productName", pname);
   if (name) {
      BSON_APPEND_UTF8(&payload, "name", name);
   }
   BSON_APPEND_DOCUMENT_BEGIN(&payload, "to", &to);
   BSON_APPEND_UTF8(&to, "email", email);
   BSON_APPEND_UTF8(&to, "locale", "ru");
   bson_append_document_end(&payload, &to);
   if (bson_iter_init_find(&it, review, "_id") && BSON_ITER_HOLDS_OID(&it)) {
      bson_oid_to_string(bson_iter_oid(&it), hex);
   }
   snprintf(key, sizeof key, "review.approved:%s", hex);
   ok = flora_outbox_enqueue(txn, FLORA_EVENT_REVIEW_APPROVED, &payload, key, error);
cleanup:
   bson_destroy(&user);
   bson_destroy(&product);
   bson_destroy(&payload);
   return ok;
}

static bool
moderate_txn(flora_store_t *txn, void *data, flora_error_t *error)
{
   review_ctx_t *ctx = data;
   bson_t filter = BSON_INITIALIZER, ne, before, *update, *opts;
   bson_oid_t pid;
   int64_t now = flora__shop_now_ms();
   bool found = false, ok = false, was_approved, now_approved;
   const char *status;

   bson_reinit(&ctx->review);
   /* The conditional change: only a review not yet in that status moves, so of two
    * concurrent approvals one counts. */
   BSON_APPEND_OID(&filter, "_id", ctx->id);
   BSON_APPEND_DOCUMENT_BEGIN(&filter, "status", &ne);
   BSON_APPEND_UTF8(&ne, "$ne", ctx->status);
   bson_append_document_end(&filter, &ne);
   update = BCON_NEW("$set", "{", "status", BCON_UTF8(ctx->status), "moderatedBy", BCON_UTF8(ctx->actor),
                     "moderatedAt", BCON_DATE_TIME(now), "updatedAt", BCON_DATE_TIME(now), "}");
   opts = BCON_NEW("returnDocument", BCON_UTF8("before"));
   if (!flora_store_find_one_and_update(txn, REVIEWS, &filter, update, opts, &before, &found, error)) {
      goto cleanup;
   }
   bson_destroy(&filter);
   bson_init(&filter);
   BSON_APPEND_OID(&filter, "_id", ctx->id);
   if (found) {
      status = doc_string(&before, "status");
      was_approved = status && strcmp(status, "approved") == 0;
      now_approved = strcmp(ctx->status, "approved") == 0;
      if (was_approved != now_approved && doc_oid(&before, "productId", &pid) &&
          !summary_adjust(txn, &pid, doc_rating(&before), now_approved ? 1 : -1, error)) {
         goto cleanup;
      }
      if (now_approved && !notify_approved(txn, &before, error)) {
         goto cleanup;
      }
   }
   bson_destroy(&ctx->review);
   if (!flora_store_find_one(txn, REVIEWS, &filter, NULL, &ctx->review, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      not_found(error);
      goto cleanup;
   }
   ok = true;
cleanup:
   bson_destroy(&filter);
   bson_destroy(&before);
   bson_destroy(update);
   bson_destroy(opts);
   return ok;
}

bool
flora_reviews_moderate(flora_store_t *store, const bson_oid_t *review_id, const char *status, const char *actor,
                       bson_t *out, flora_error_t *error)
{
   review_ctx_t ctx = {.id = review_id, .status = status, .actor = actor};
   bool known = false, ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(review_id);
   FLORA_ASSERT_ARG(status);
   FLORA_ASSERT_ARG(actor);
   if (out) {
      bson_init(out);
   }
   for (size_t i = 0; review_statuses[i]; i++) {
      known = known || strcmp(review_statuses[i], status) == 0;
   }
   if (!known) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "status: must be pending, approved or rejected");
      return false;
   }
   bson_init(&ctx.review);
   ok = flora_store_with_transaction(store, moderate_txn, &ctx, error);
   if (ok && out) {
      bson_destroy(out);
      bson_copy_to(&ctx.review, out);
   }
   bson_destroy(&ctx.review);
   return ok;
}

bool
flora_reviews_list(flora_store_t *store, const bson_oid_t *product_id, const char *status, int64_t page,
                   int64_t page_size, bson_t *out, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bson_t *sort = BCON_NEW("createdAt", BCON_INT32(-1), "_id", BCON_INT32(-1));
   bool ok;

   FLORA_ASSERT_ARG(store);
   if (product_id) {
      BSON_APPEND_OID(&filter, "productId", product_id);
   }
   if (status) {
      BSON_APPEND_UTF8(&filter, "status", status);
   }
   ok = flora__find_page(store, REVIEWS, &filter, sort, page, page_size, out, error);
   bson_destroy(&filter);
   bson_destroy(sort);
   return ok;
}
