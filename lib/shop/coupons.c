/* Coupons: admin CRUD, judging and counting uses (include/flora/coupons.h). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "flora/coupons.h"
#include "flora/schema.h"
#include "flora/shop.h"
#include "shop/orders_private.h"
#include "shop/shop_private.h"

#define COUPONS "coupons"
#define REDEMPTIONS "coupon_redemptions"

const char *
flora_coupon_reason_name(flora_coupon_reason_t reason)
{
   switch (reason) {
   case FLORA_COUPON_OK:
      return "ok";
   case FLORA_COUPON_UNKNOWN:
      return "unknown";
   case FLORA_COUPON_INACTIVE:
      return "inactive";
   case FLORA_COUPON_NOT_YET_VALID:
      return "not_yet_valid";
   case FLORA_COUPON_EXPIRED:
      return "expired";
   case FLORA_COUPON_BELOW_MINIMUM:
      return "below_minimum";
   case FLORA_COUPON_LIMIT_REACHED:
      return "limit_reached";
   case FLORA_COUPON_ALREADY_USED:
      return "already_used";
   case FLORA_COUPON_NOT_APPLICABLE:
      return "not_applicable";
   }
   return "unknown";
}

static const char *
reason_message(flora_coupon_reason_t reason)
{
   switch (reason) {
   case FLORA_COUPON_OK:
      return "the coupon applies";
   case FLORA_COUPON_UNKNOWN:
      return "no coupon has this code";
   case FLORA_COUPON_INACTIVE:
      return "the coupon is switched off";
   case FLORA_COUPON_NOT_YET_VALID:
      return "the coupon is not valid yet";
   case FLORA_COUPON_EXPIRED:
      return "the coupon has expired";
   case FLORA_COUPON_BELOW_MINIMUM:
      return "the order is below the coupon's minimum amount";
   case FLORA_COUPON_LIMIT_REACHED:
      return "the coupon has been used as many times as it may be";
   case FLORA_COUPON_ALREADY_USED:
      return "you have already used this coupon";
   case FLORA_COUPON_NOT_APPLICABLE:
      return "the coupon does not apply to these items";
   }
   return "";
}

bool
flora__coupon_code_normalize(const char *code, char *out, size_t out_len)
{
   size_t n = strlen(code);

   if (n == 0 || n > 40 || n + 1 > out_len) {
      return false;
   }
   for (size_t i = 0; i < n; i++) {
      unsigned char c = (unsigned char) code[i];

      if (!(isascii(c) && (isalnum(c) || c == '_' || c == '-'))) {
         return false;
      }
      out[i] = (char) toupper(c);
   }
   out[n] = '\0';
   return true;
}

static int64_t
field_int(const bson_t *doc, const char *key, int64_t def)
{
   bson_iter_t it;

   return bson_iter_init_find(&it, doc, key) ? flora__iter_int64(&it, def) : def;
}

static bool
array_has_oid(const bson_t *doc, const char *key, const bson_oid_t *oid)
{
   bson_iter_t it, arr;

   if (!bson_iter_init_find(&it, doc, key) || !bson_iter_recurse(&it, &arr)) {
      return false;
   }
   while (bson_iter_next(&arr)) {
      if (BSON_ITER_HOLDS_OID(&arr) && bson_oid_equal(bson_iter_oid(&arr), oid)) {
         return true;
      }
   }
   return false;
}

static bool
array_empty(const bson_t *doc, const char *key)
{
   bson_iter_t it, arr;

   return !bson_iter_init_find(&it, doc, key) || !bson_iter_recurse(&it, &arr) || !bson_iter_next(&arr);
}

/* Is the line (productId, categoryTree) within the coupon's restriction? */
static bool
line_eligible(const bson_t *coupon, const bson_t *line)
{
   bson_iter_t it, arr;

   if (bson_iter_init_find(&it, line, "productId") && BSON_ITER_HOLDS_OID(&it) &&
       array_has_oid(coupon, "productIds", bson_iter_oid(&it))) {
      return true;
   }
   if (bson_iter_init_find(&it, line, "categoryTree") && bson_iter_recurse(&it, &arr)) {
      while (bson_iter_next(&arr)) {
         if (BSON_ITER_HOLDS_OID(&arr) && array_has_oid(coupon, "categoryIds", bson_iter_oid(&arr))) {
            return true;
         }
      }
   }
   return false;
}

flora_coupon_reason_t
flora__coupon_judge(const bson_t *coupon, const bson_t *lines, int64_t subtotal, int64_t delivery_price,
                    int64_t customer_uses, int64_t now_ms, int64_t *discount)
{
   bson_iter_t it;
   int64_t eligible = subtotal, value = field_int(coupon, "value", 0), cap;
   const char *kind = "";

   *discount = 0;
   if (!bson_iter_init_find(&it, coupon, "active") || !bson_iter_as_bool(&it)) {
      return FLORA_COUPON_INACTIVE;
   }
   if (bson_iter_init_find(&it, coupon, "validFrom") && BSON_ITER_HOLDS_DATE_TIME(&it) &&
       bson_iter_date_time(&it) > now_ms) {
      return FLORA_COUPON_NOT_YET_VALID;
   }
   if (bson_iter_init_find(&it, coupon, "validUntil") && BSON_ITER_HOLDS_DATE_TIME(&it) &&
       bson_iter_date_time(&it) <= now_ms) {
      return FLORA_COUPON_EXPIRED;
   }
   if (bson_iter_init_find(&it, coupon, "usageLimit") && !BSON_ITER_HOLDS_NULL(&it) &&
       field_int(coupon, "uses", 0) >= flora__iter_int64(&it, INT64_MAX)) {
      return FLORA_COUPON_LIMIT_REACHED;
   }
   if (customer_uses >= field_int(coupon, "perCustomerLimit", 1)) {
      return FLORA_COUPON_ALREADY_USED;
   }
   if (subtotal < field_int(coupon, "minSubtotal", 0)) {
      return FLORA_COUPON_BELOW_MINIMUM;
   }
   if (!array_empty(coupon, "productIds") || !array_empty(coupon, "categoryIds")) {
      bson_iter_t li;

      eligible = 0;
      if (lines && bson_iter_init(&li, lines)) {
         while (bson_iter_next(&li)) {
            const uint8_t *d;
            uint32_t len;
            bson_t line;

            if (!BSON_ITER_HOLDS_DOCUMENT(&li)) {
               continue;
            }
            bson_iter_document(&li, &len, &d);
            bson_init_static(&line, d, len);
            if (line_eligible(coupon, &line)) {
               eligible += field_int(&line, "lineTotal", 0);
            }
         }
      }
      if (eligible == 0) {
         return FLORA_COUPON_NOT_APPLICABLE;
      }
   }
   if (bson_iter_init_find(&it, coupon, "kind") && BSON_ITER_HOLDS_UTF8(&it)) {
      kind = bson_iter_utf8(&it, NULL);
   }
   if (strcmp(kind, "percent") == 0) {
      *discount = eligible * value / 100;
   } else if (strcmp(kind, "fixed") == 0) {
      *discount = value < eligible ? value : eligible;
   } else if (strcmp(kind, "free_delivery") == 0) {
      *discount = delivery_price;
   }
   cap = field_int(coupon, "maxDiscount", -1);
   if (cap >= 0 && *discount > cap) {
      *discount = cap;
   }
   return FLORA_COUPON_OK;
}

bool
flora__coupon_customer_uses(flora_store_t *store, const bson_oid_t *coupon_id, const char *customer_key,
                            int64_t *uses, flora_error_t *error)
{
   bson_t *filter = BCON_NEW("couponId", BCON_OID(coupon_id), "customerKey", BCON_UTF8(customer_key));
   bson_t doc;
   bool found = false, ok;

   ok = flora_store_find_one(store, REDEMPTIONS, filter, NULL, &doc, &found, error);
   *uses = found ? field_int(&doc, "count", 0) : 0;
   bson_destroy(&doc);
   bson_destroy(filter);
   return ok;
}

static int64_t
matched(const bson_t *reply)
{
   bson_iter_t it;

   return bson_iter_init_find(&it, reply, "matchedCount") ? flora__iter_int64(&it, 0) : 0;
}

bool
flora__coupon_redeem(flora_store_t *txn, const bson_t *coupon, const char *customer_key, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, reply, *update = NULL, *rfilter = NULL, *opts = NULL;
   bson_iter_t it, id;
   int64_t now = flora__shop_now_ms();
   bool ok = false;

   bson_init(&reply);
   if (!bson_iter_init_find(&id, coupon, "_id") || !BSON_ITER_HOLDS_OID(&id)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_INVALID, "coupon without an _id");
      goto cleanup;
   }
   /* The global limit: one conditional update. */
   bson_append_iter(&filter, "_id", -1, &id);
   if (bson_iter_init_find(&it, coupon, "usageLimit") && !BSON_ITER_HOLDS_NULL(&it)) {
      bson_t lt;

      BSON_APPEND_DOCUMENT_BEGIN(&filter, "uses", &lt);
      BSON_APPEND_INT64(&lt, "$lt", flora__iter_int64(&it, 0));
      bson_append_document_end(&filter, &lt);
   }
   update = BCON_NEW("$inc", "{", "uses", BCON_INT32(1), "}", "$set", "{", "updatedAt", BCON_DATE_TIME(now), "}");
   bson_destroy(&reply);
   if (!flora_store_update_one(txn, COUPONS, &filter, update, NULL, &reply, error)) {
      goto cleanup;
   }
   if (matched(&reply) == 0) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                      "couponCode: limit_reached: the coupon has been used as many times as it may be");
      goto cleanup;
   }
   /* The per-customer limit: a conditional upsert of the customer's counter; at the limit
    * the filter misses, the upsert inserts a second counter and the unique index refuses. */
   bson_destroy(update);
   rfilter = BCON_NEW("couponId", BCON_OID(bson_iter_oid(&id)), "customerKey", BCON_UTF8(customer_key), "count",
                      "{", "$lt", BCON_INT64(field_int(coupon, "perCustomerLimit", 1)), "}");
   update = BCON_NEW("$inc", "{", "count", BCON_INT32(1), "}", "$set", "{", "updatedAt", BCON_DATE_TIME(now), "}",
                     "$setOnInsert", "{", "createdAt", BCON_DATE_TIME(now), "}");
   opts = BCON_NEW("upsert", BCON_BOOL(true));
   if (!flora_store_update_one(txn, REDEMPTIONS, rfilter, update, opts, NULL, error)) {
      if (error && error->domain == FLORA_DOMAIN_STORE && error->code == FLORA_STORE_DUPLICATE_KEY) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                         "couponCode: already_used: you have already used this coupon");
      }
      goto cleanup;
   }
   ok = true;
cleanup:
   bson_destroy(&filter);
   bson_destroy(&reply);
   if (update) {
      bson_destroy(update);
   }
   if (rfilter) {
      bson_destroy(rfilter);
   }
   if (opts) {
      bson_destroy(opts);
   }
   return ok;
}

bool
flora__coupon_release(flora_store_t *txn, const bson_oid_t *coupon_id, const char *customer_key,
                      flora_error_t *error)
{
   int64_t now = flora__shop_now_ms();
   bson_t *f1 = BCON_NEW("_id", BCON_OID(coupon_id), "uses", "{", "$gt", BCON_INT32(0), "}");
   bson_t *u1 = BCON_NEW("$inc", "{", "uses", BCON_INT32(-1), "}", "$set", "{", "updatedAt", BCON_DATE_TIME(now), "}");
   bson_t *f2 = BCON_NEW("couponId", BCON_OID(coupon_id), "customerKey", BCON_UTF8(customer_key), "count", "{",
                         "$gt", BCON_INT32(0), "}");
   bson_t *u2 = BCON_NEW("$inc", "{", "count", BCON_INT32(-1), "}", "$set", "{", "updatedAt", BCON_DATE_TIME(now), "}");
   bool ok = flora_store_update_one(txn, COUPONS, f1, u1, NULL, NULL, error) &&
             flora_store_update_one(txn, REDEMPTIONS, f2, u2, NULL, NULL, error);

   bson_destroy(f1);
   bson_destroy(u1);
   bson_destroy(f2);
   bson_destroy(u2);
   return ok;
}

/* ---- admin --------------------------------------------------------------------------- */

/* An RFC 3339 string as a date, parsed by libbson's Extended JSON reader. */
static bool
parse_date(const char *s, int64_t *ms)
{
   char json[96];
   bson_t *doc;
   bson_iter_t it;
   bool ok = false;

   if (strlen(s) < 10 || strlen(s) > 40 || strspn(s, "0123456789-:.TZtz+") != strlen(s)) {
      return false;
   }
   snprintf(json, sizeof json, "{\"d\": {\"$date\": \"%s\"}}", s);
   doc = bson_new_from_json((const uint8_t *) json, -1, NULL);
   if (doc && bson_iter_init_find(&it, doc, "d") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
      *ms = bson_iter_date_time(&it);
      ok = true;
   }
   if (doc) {
      bson_destroy(doc);
   }
   return ok;
}

/* Copies client fields into out, converting codes, dates and ids. */
static void
normalize_input(const bson_t *input, bool with_code, bson_t *out, bson_t *problems)
{
   bson_iter_t it;

   bson_iter_init(&it, input);
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);

      if (strcmp(key, "code") == 0) {
         char code[48];

         if (!with_code) {
            flora_schema_problem(problems, "code", "cannot be changed (create a new coupon)");
         } else if (!BSON_ITER_HOLDS_UTF8(&it)) {
            flora_schema_problem(problems, "code", "must be a string");
         } else if (!flora__coupon_code_normalize(bson_iter_utf8(&it, NULL), code, sizeof code)) {
            flora_schema_problem(problems, "code", "must be 1-40 latin letters, digits, _ or -");
         } else {
            BSON_APPEND_UTF8(out, "code", code);
         }
      } else if (strcmp(key, "uses") == 0 || strcmp(key, "_id") == 0 || strcmp(key, "createdAt") == 0 ||
                 strcmp(key, "updatedAt") == 0) {
         flora_schema_problem(problems, key, "is read-only");
      } else if ((strcmp(key, "validFrom") == 0 || strcmp(key, "validUntil") == 0) && BSON_ITER_HOLDS_UTF8(&it)) {
         int64_t ms;

         if (parse_date(bson_iter_utf8(&it, NULL), &ms)) {
            BSON_APPEND_DATE_TIME(out, key, ms);
         } else {
            flora_schema_problem(problems, key, "must be an RFC 3339 date-time");
         }
      } else if ((strcmp(key, "productIds") == 0 || strcmp(key, "categoryIds") == 0) && BSON_ITER_HOLDS_ARRAY(&it)) {
         bson_iter_t arr;
         bson_t ids;

         bson_iter_recurse(&it, &arr);
         BSON_APPEND_ARRAY_BEGIN(out, key, &ids);
         while (bson_iter_next(&arr)) {
            char path[64];

            snprintf(path, sizeof path, "%s.%s", key, bson_iter_key(&arr));
            if (BSON_ITER_HOLDS_UTF8(&arr) && bson_oid_is_valid(bson_iter_utf8(&arr, NULL), strlen(bson_iter_utf8(&arr, NULL))) &&
                strlen(bson_iter_utf8(&arr, NULL)) == 24) {
               bson_oid_t oid;

               bson_oid_init_from_string(&oid, bson_iter_utf8(&arr, NULL));
               BSON_APPEND_OID(&ids, bson_iter_key(&arr), &oid);
            } else if (BSON_ITER_HOLDS_OID(&arr)) {
               bson_append_iter(&ids, bson_iter_key(&arr), -1, &arr);
            } else {
               flora_schema_problem(problems, path, "must be a 24-digit hex id");
            }
         }
         bson_append_array_end(out, &ids);
      } else {
         bson_append_iter(out, key, -1, &it);
      }
   }
}

/* Rules across fields that the schema cannot state. */
static void
check_rules(const bson_t *coupon, bson_t *problems)
{
   bson_iter_t it, until;
   const char *kind = bson_iter_init_find(&it, coupon, "kind") && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
   int64_t value = field_int(coupon, "value", 0);

   if (strcmp(kind, "percent") == 0 && (value < 1 || value > 100)) {
      flora_schema_problem(problems, "value", "a percent coupon needs a value from 1 to 100");
   } else if (strcmp(kind, "fixed") == 0 && value < 1) {
      flora_schema_problem(problems, "value", "a fixed coupon needs a value of at least 1 kopeck");
   }
   if (bson_iter_init_find(&it, coupon, "validFrom") && BSON_ITER_HOLDS_DATE_TIME(&it) &&
       bson_iter_init_find(&until, coupon, "validUntil") && BSON_ITER_HOLDS_DATE_TIME(&until) &&
       bson_iter_date_time(&until) <= bson_iter_date_time(&it)) {
      flora_schema_problem(problems, "validUntil", "must be after validFrom");
   }
}

static bool
validate_coupon(const bson_t *doc, bson_t *problems, flora_error_t *error)
{
   bson_t p = BSON_INITIALIZER;
   bson_iter_t it;
   bool ok;

   flora_schema_validate(&flora_schema_coupons, doc, &p, NULL);
   check_rules(doc, &p);
   ok = bson_empty(&p);
   if (!ok) {
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
         if (problems) {
            flora_schema_problem(problems, path, reason);
         }
      }
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "the coupon is invalid");
   }
   bson_destroy(&p);
   return ok;
}

bool
flora_coupons_create(flora_store_t *store, const bson_t *input, bson_t *problems, bson_t *out,
                     flora_error_t *error)
{
   bson_t draft = BSON_INITIALIZER, local = BSON_INITIALIZER;
   bson_t *probs = problems ? problems : &local;
   uint32_t before;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(input);
   FLORA_ASSERT_ARG(out);
   bson_init(out);
   if (!flora__reject_operators(input, "", error)) {
      goto cleanup;
   }
   before = bson_count_keys(probs);
   normalize_input(input, true, &draft, probs);
   bson_destroy(out);
   if (!flora_schema_prepare_insert(&flora_schema_coupons, &draft, flora__shop_now_ms(), out, error)) {
      bson_init(out);
      goto cleanup;
   }
   if (bson_count_keys(probs) != before) {
      validate_coupon(out, probs, error);
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "the coupon is invalid");
      goto cleanup;
   }
   if (!validate_coupon(out, probs, error)) {
      goto cleanup;
   }
   if (!flora_store_insert_one(store, COUPONS, out, NULL, NULL, error)) {
      flora__shop_map_duplicate(error, "a coupon");
      goto cleanup;
   }
   ok = true;
cleanup:
   if (!ok) {
      bson_reinit(out);
   }
   bson_destroy(&draft);
   bson_destroy(&local);
   return ok;
}

bool
flora_coupons_get(flora_store_t *store, const char *code, bson_t *out, bool *found, flora_error_t *error)
{
   char upper[48];

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(code);
   if (!flora__coupon_code_normalize(code, upper, sizeof upper)) {
      bson_init(out);
      *found = false;
      return true;
   }
   return flora__shop_find_by_string(store, COUPONS, "code", upper, out, found, error);
}

bool
flora_coupons_update(flora_store_t *store, const char *code, const bson_t *patch, bson_t *problems, bson_t *out,
                     flora_error_t *error)
{
   bson_t current, changes = BSON_INITIALIZER, merged = BSON_INITIALIZER, local = BSON_INITIALIZER, filter;
   bson_t *probs = problems ? problems : &local;
   bson_iter_t it;
   uint32_t before;
   bool found = false, ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(code);
   FLORA_ASSERT_ARG(patch);
   bson_init(out);
   bson_init(&filter);
   if (!flora_coupons_get(store, code, &current, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no coupon has code '%s'", code);
      goto cleanup;
   }
   if (!flora__reject_operators(patch, "", error)) {
      goto cleanup;
   }
   before = bson_count_keys(probs);
   normalize_input(patch, false, &changes, probs);
   bson_iter_init(&it, &current);
   while (bson_iter_next(&it)) {
      if (!bson_has_field(&changes, bson_iter_key(&it)) && strcmp(bson_iter_key(&it), "updatedAt") != 0) {
         bson_append_iter(&merged, bson_iter_key(&it), -1, &it);
      }
   }
   bson_iter_init(&it, &changes);
   while (bson_iter_next(&it)) {
      bson_append_iter(&merged, bson_iter_key(&it), -1, &it);
   }
   BSON_APPEND_DATE_TIME(&merged, "updatedAt", flora__shop_now_ms());
   if (bson_count_keys(probs) != before) {
      validate_coupon(&merged, probs, error);
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "the coupon is invalid");
      goto cleanup;
   }
   if (!validate_coupon(&merged, probs, error)) {
      goto cleanup;
   }
   bson_iter_init_find(&it, &current, "_id");
   bson_append_iter(&filter, "_id", -1, &it);
   /* uses is counted concurrently by checkouts: keep whatever it is now. */
   {
      bson_t set = BSON_INITIALIZER, update = BSON_INITIALIZER, opts = BSON_INITIALIZER;
      bool f2 = false;

      bson_iter_init(&it, &merged);
      while (bson_iter_next(&it)) {
         if (strcmp(bson_iter_key(&it), "_id") != 0 && strcmp(bson_iter_key(&it), "uses") != 0) {
            bson_append_iter(&set, bson_iter_key(&it), -1, &it);
         }
      }
      BSON_APPEND_DOCUMENT(&update, "$set", &set);
      BSON_APPEND_UTF8(&opts, "returnDocument", "after");
      bson_destroy(out);
      ok = flora_store_find_one_and_update(store, COUPONS, &filter, &update, &opts, out, &f2, error);
      bson_destroy(&set);
      bson_destroy(&update);
      bson_destroy(&opts);
   }
cleanup:
   if (!ok) {
      bson_reinit(out);
   }
   bson_destroy(&current);
   bson_destroy(&changes);
   bson_destroy(&merged);
   bson_destroy(&local);
   bson_destroy(&filter);
   return ok;
}

bool
flora_coupons_delete(flora_store_t *store, const char *code, flora_error_t *error)
{
   char upper[48];
   bson_t *filter;
   bson_t reply;
   bson_iter_t it;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(code);
   if (!flora__coupon_code_normalize(code, upper, sizeof upper)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no coupon has code '%s'", code);
      return false;
   }
   filter = BCON_NEW("code", BCON_UTF8(upper));
   ok = flora_store_delete_one(store, COUPONS, filter, NULL, &reply, error);
   if (ok && (!bson_iter_init_find(&it, &reply, "deletedCount") || bson_iter_as_int64(&it) == 0)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no coupon has code '%s'", upper);
      ok = false;
   }
   bson_destroy(&reply);
   bson_destroy(filter);
   return ok;
}

bool
flora_coupons_list(flora_store_t *store, int64_t page, int64_t page_size, bson_t *out, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bson_t *sort = BCON_NEW("code", BCON_INT32(1));
   bool ok;

   FLORA_ASSERT_ARG(store);
   ok = flora__find_page(store, COUPONS, &filter, sort, page, page_size, out, error);
   bson_destroy(&filter);
   bson_destroy(sort);
   return ok;
}

bool
flora_coupons_check(flora_store_t *store, const char *code, const bson_t *lines_in, int64_t subtotal,
                    const char *customer_key, int64_t delivery_price, int64_t now_ms, bson_t *result,
                    flora_error_t *error)
{
   bson_t coupon, lines = BSON_INITIALIZER, local = BSON_INITIALIZER;
   bson_iter_t it;
   bool found = false, ok = false;
   int64_t uses = 0, discount = 0;
   flora_coupon_reason_t reason = FLORA_COUPON_UNKNOWN;
   char upper[48];

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(code);
   FLORA_ASSERT_ARG(result);
   bson_init(result);
   bson_init(&coupon);
   if (now_ms == 0) {
      now_ms = flora__shop_now_ms();
   }
   if (lines_in) {
      bson_destroy(&lines);
      if (!flora__lines_resolve(store, lines_in, false, &lines, &subtotal, &local, error)) {
         goto cleanup;
      }
   }
   if (flora__coupon_code_normalize(code, upper, sizeof upper)) {
      bson_destroy(&coupon);
      if (!flora__shop_find_by_string(store, COUPONS, "code", upper, &coupon, &found, error)) {
         goto cleanup;
      }
   } else {
      snprintf(upper, sizeof upper, "%.40s", code);
   }
   if (found) {
      if (customer_key && bson_iter_init_find(&it, &coupon, "_id") &&
          !flora__coupon_customer_uses(store, bson_iter_oid(&it), customer_key, &uses, error)) {
         goto cleanup;
      }
      reason = flora__coupon_judge(&coupon, lines_in ? &lines : NULL, subtotal, delivery_price, uses, now_ms,
                                   &discount);
   }
   BSON_APPEND_UTF8(result, "code", upper);
   BSON_APPEND_BOOL(result, "applicable", reason == FLORA_COUPON_OK);
   BSON_APPEND_UTF8(result, "reason", flora_coupon_reason_name(reason));
   BSON_APPEND_UTF8(result, "message", reason_message(reason));
   if (found && bson_iter_init_find(&it, &coupon, "kind")) {
      bson_append_iter(result, "kind", -1, &it);
   }
   BSON_APPEND_INT64(result, "discount", discount);
   BSON_APPEND_INT64(result, "subtotal", subtotal);
   ok = true;
cleanup:
   if (!ok) {
      bson_reinit(result);
      if (error && error->domain == FLORA_DOMAIN_VALIDATION && !bson_empty(&local)) {
         bson_iter_t p, f;

         /* Name the first bad line in the message. */
         if (bson_iter_init(&p, &local) && bson_iter_next(&p) && bson_iter_recurse(&p, &f) &&
             bson_iter_find(&f, "path") && BSON_ITER_HOLDS_UTF8(&f)) {
            flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "%s: no product in the catalog has this SKU",
                            bson_iter_utf8(&f, NULL));
         }
      }
   }
   bson_destroy(&coupon);
   bson_destroy(&lines);
   bson_destroy(&local);
   return ok;
}
