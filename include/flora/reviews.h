/* Product reviews: one per user per product, moderated by managers (pending, approved,
 * rejected); a verified-purchase flag from the author's delivered orders. The product's
 * rating summary (products.rating: average, count, histogram of 1-5 stars) counts the
 * approved reviews: approving, rejecting an approved review, editing one (it goes back to
 * pending) and removing one change it with $inc on count and histogram and a recomputed
 * average, in the same transaction as the review's own conditional change, so concurrent
 * moderation never miscounts. Document shape: docs/schema/reviews.md.
 *
 * Errors and outputs follow include/flora/orders.h: VALIDATION with problems (422),
 * INPUT for operator injection (400), SHOP NOT_FOUND (404) and CONFLICT (409). */
#ifndef FLORA_REVIEWS_H
#define FLORA_REVIEWS_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/error.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates a pending review by user_id from {productId (hex) | productSlug, rating: 1-5,
 * text? (<= 5000 characters), photos?: [http(s) URL] (<= 10)}. author_name (may be NULL,
 * <= 120 characters) is shown with it. verifiedPurchase is true when the user has a
 * delivered order containing the product. CONFLICT when the user already reviewed it;
 * NOT_FOUND for an unknown product. *out: the stored review. */
bool flora_reviews_create(flora_store_t *store, const bson_oid_t *user_id, const char *author_name,
                          const bson_t *input, bson_t *problems, bson_t *out, flora_error_t *error);

/* The author edits {rating?, text?, photos?}; the review goes back to pending (an approved
 * one leaves the summary). NOT_FOUND unless user_id wrote it. */
bool flora_reviews_update(flora_store_t *store, const bson_oid_t *review_id, const bson_oid_t *user_id,
                          const bson_t *patch, bson_t *problems, bson_t *out, flora_error_t *error);

/* Removes a review: its author's (user_id) or, with user_id NULL, any (managers). An
 * approved one leaves the summary. NOT_FOUND when there is none to remove. */
bool flora_reviews_delete(flora_store_t *store, const bson_oid_t *review_id, const bson_oid_t *user_id,
                          flora_error_t *error);

/* Sets the moderation status ("pending", "approved", "rejected") with actor (e.g.
 * "manager:<id>"). Entering approved adds the rating to the summary and enqueues
 * "review.approved" for the author; leaving approved takes it out. Setting the status it
 * already has changes nothing. *out (may be NULL): the review after. */
bool flora_reviews_moderate(flora_store_t *store, const bson_oid_t *review_id, const char *status,
                            const char *actor, bson_t *out, flora_error_t *error);

/* A page of reviews, newest first: of one product (product_id, or NULL for all), with one
 * status (NULL: any). *out = {items, total, page, pageSize, pages}. */
bool flora_reviews_list(flora_store_t *store, const bson_oid_t *product_id, const char *status, int64_t page,
                        int64_t page_size, bson_t *out, flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
