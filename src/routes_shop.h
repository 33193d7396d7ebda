/* Helpers of the write path's routes (src/routes_orders.c, routes_coupons.c,
 * routes_reviews.c): who the customer is, query parameters, answers with details. */
#ifndef FLORA_SRC_ROUTES_SHOP_H
#define FLORA_SRC_ROUTES_SHOP_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/orders.h"
#include "http.h"

/* The X-Cart-Token header, when it is a plausible token (16-128 URL-safe characters). */
const char *flora_routes_cart_token(const flora_http_request_t *req);

/* The customer of a request: the signed-in user, else the guest of X-Cart-Token. false
 * when there is neither (the caller answers 401 or an empty result). token is borrowed. */
bool flora_routes_customer(const flora_http_request_t *req, flora_customer_t *out);

/* "manager:<id>", "user:<id>" or "admin" (the configured admin token) for history entries. */
void flora_routes_actor(const flora_http_request_t *req, char *out, size_t out_len);

/* Answers a library error: 422 with every problem, 409 with details (out of stock,
 * coupon), else flora_http_fail. problems may be NULL. Returns true. */
bool flora_routes_fail(flora_http_response_t *res, const flora_error_t *error, const bson_t *problems);

/* Parses a whole number in [min, max]; false otherwise. */
bool flora_routes_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Parses a 24-hex ObjectId; false otherwise. */
bool flora_routes_oid(const char *s, bson_oid_t *out);

/* Checks that every query parameter is in known (NULL-terminated); otherwise answers 400
 * naming the first unknown one and returns false. */
bool flora_routes_known_params(const flora_http_request_t *req, const char *const *known,
                               flora_http_response_t *res);

/* Moves doc into res->body with the given status. */
void flora_routes_answer(flora_http_response_t *res, int status, bson_t *doc);

#endif
