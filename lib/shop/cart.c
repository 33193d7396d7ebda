/* Carts of signed-in customers and guests (include/flora/orders.h). A cart stores only
 * SKUs and quantities; the view adds names and current prices from the catalog. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "flora/orders.h"
#include "shop/orders_private.h"
#include "shop/shop_private.h"

#define CARTS "carts"
#define PRODUCTS "products"

void
flora_cart_new_token(char out[FLORA_CART_TOKEN_LEN + 1])
{
   unsigned char bytes[32];

   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(sodium_init() >= 0);
   randombytes_buf(bytes, sizeof bytes);
   sodium_bin2base64(out, FLORA_CART_TOKEN_LEN + 1, bytes, sizeof bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static bool
owner_filter(const flora_customer_t *customer, bson_t *filter, flora_error_t *error)
{
   if (customer->has_user) {
      return BSON_APPEND_OID(filter, "userId", &customer->user_id);
   }
   if (!customer->guest_token || strlen(customer->guest_token) < 16 || strlen(customer->guest_token) > 128) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "X-Cart-Token: a guest cart token has 16-128 characters");
      return false;
   }
   return BSON_APPEND_UTF8(filter, "guestToken", customer->guest_token);
}

/* The view of a stored cart: lines with catalog names and prices, and the subtotal. */
static bool
cart_view(flora_store_t *store, const bson_t *cart, bson_t *out, flora_error_t *error)
{
   bson_iter_t it, items;
   bson_t arr;
   int64_t subtotal = 0;
   uint32_t n = 0;

   BSON_APPEND_ARRAY_BEGIN(out, "items", &arr);
   if (cart && bson_iter_init_find(&it, cart, "items") && bson_iter_recurse(&it, &items)) {
      while (bson_iter_next(&items)) {
         bson_iter_t f, vs;
         const char *sku = NULL;
         int32_t qty = 0;
         bson_t product, line;
         bson_t *filter;
         bool found = false;
         char idx[16];
         const char *k;

         if (!BSON_ITER_HOLDS_DOCUMENT(&items) || !bson_iter_recurse(&items, &f)) {
            continue;
         }
         while (bson_iter_next(&f)) {
            if (strcmp(bson_iter_key(&f), "sku") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
               sku = bson_iter_utf8(&f, NULL);
            } else if (strcmp(bson_iter_key(&f), "quantity") == 0) {
               qty = (int32_t) flora__iter_int64(&f, 0);
            }
         }
         if (!sku) {
            continue;
         }
         filter = BCON_NEW("variants.sku", BCON_UTF8(sku), "active", BCON_BOOL(true));
         if (!flora_store_find_one(store, PRODUCTS, filter, NULL, &product, &found, error)) {
            bson_destroy(filter);
            bson_destroy(&product);
            bson_append_array_end(out, &arr);
            return false;
         }
         bson_destroy(filter);
         if (!found || !bson_iter_init_find(&it, &product, "variants") || !bson_iter_recurse(&it, &vs)) {
            bson_destroy(&product);
            continue;
         }
         while (bson_iter_next(&vs)) {
            bson_iter_t v;
            int64_t price = 0, stock = 0;
            const char *vname = "";
            bool match = false;

            if (!bson_iter_recurse(&vs, &v)) {
               continue;
            }
            while (bson_iter_next(&v)) {
               if (strcmp(bson_iter_key(&v), "sku") == 0 && BSON_ITER_HOLDS_UTF8(&v)) {
                  match = strcmp(bson_iter_utf8(&v, NULL), sku) == 0;
               } else if (strcmp(bson_iter_key(&v), "price") == 0) {
                  price = flora__iter_int64(&v, 0);
               } else if (strcmp(bson_iter_key(&v), "stock") == 0) {
                  stock = flora__iter_int64(&v, 0);
               } else if (strcmp(bson_iter_key(&v), "name") == 0 && BSON_ITER_HOLDS_UTF8(&v)) {
                  vname = bson_iter_utf8(&v, NULL);
               }
            }
            if (!match) {
               continue;
            }
            bson_uint32_to_string(n++, &k, idx, sizeof idx);
            BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &line);
            bson_iter_init_find(&it, &product, "_id");
            bson_append_iter(&line, "productId", -1, &it);
            BSON_APPEND_UTF8(&line, "sku", sku);
            BSON_APPEND_INT32(&line, "quantity", qty);
            if (bson_iter_init_find(&it, &product, "name")) {
               bson_append_iter(&line, "name", -1, &it);
            }
            BSON_APPEND_UTF8(&line, "variant", vname);
            BSON_APPEND_INT64(&line, "unitPrice", price);
            BSON_APPEND_INT64(&line, "lineTotal", price * qty);
            BSON_APPEND_INT64(&line, "available", stock);
            bson_append_document_end(&arr, &line);
            subtotal += price * qty;
            break;
         }
         bson_destroy(&product);
      }
   }
   bson_append_array_end(out, &arr);
   BSON_APPEND_INT64(out, "subtotal", subtotal);
   if (cart && bson_iter_init_find(&it, cart, "expiresAt")) {
      bson_append_iter(out, "expiresAt", -1, &it);
   }
   return true;
}

bool
flora_cart_get(flora_store_t *store, const flora_customer_t *customer, bson_t *out, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, cart;
   bool found = false, ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(customer);
   bson_init(out);
   bson_init(&cart);
   if (!owner_filter(customer, &filter, error)) {
      goto cleanup;
   }
   bson_destroy(&cart);
   if (!flora_store_find_one(store, CARTS, &filter, NULL, &cart, &found, error)) {
      goto cleanup;
   }
   ok = cart_view(store, found ? &cart : NULL, out, error);
cleanup:
   if (!ok) {
      bson_reinit(out);
   }
   bson_destroy(&filter);
   bson_destroy(&cart);
   return ok;
}

typedef struct cart_line {
   char sku[72];
   int64_t qty;
   bson_oid_t product_id;
} cart_line_t;

typedef struct cart_ctx {
   const flora_customer_t *customer;
   const char *sku;           /* set_item: the SKU; NULL for merge */
   int32_t quantity;
   bool add;
   const char *merge_token;   /* merge: the guest cart's token */
   int64_t ttl_s;
} cart_ctx_t;

static size_t
read_lines(const bson_t *cart, cart_line_t *lines, size_t max)
{
   bson_iter_t it, items;
   size_t n = 0;

   if (!bson_iter_init_find(&it, cart, "items") || !bson_iter_recurse(&it, &items)) {
      return 0;
   }
   while (bson_iter_next(&items) && n < max) {
      bson_iter_t f;

      if (!bson_iter_recurse(&items, &f)) {
         continue;
      }
      memset(&lines[n], 0, sizeof lines[n]);
      while (bson_iter_next(&f)) {
         if (strcmp(bson_iter_key(&f), "sku") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
            snprintf(lines[n].sku, sizeof lines[n].sku, "%s", bson_iter_utf8(&f, NULL));
         } else if (strcmp(bson_iter_key(&f), "quantity") == 0) {
            lines[n].qty = flora__iter_int64(&f, 0);
         } else if (strcmp(bson_iter_key(&f), "productId") == 0 && BSON_ITER_HOLDS_OID(&f)) {
            bson_oid_copy(bson_iter_oid(&f), &lines[n].product_id);
         }
      }
      if (lines[n].sku[0] && lines[n].qty > 0) {
         n++;
      }
   }
   return n;
}

static size_t
find_line(cart_line_t *lines, size_t n, const char *sku)
{
   for (size_t i = 0; i < n; i++) {
      if (strcmp(lines[i].sku, sku) == 0) {
         return i;
      }
   }
   return n;
}

static bool
write_cart(flora_store_t *txn, const flora_customer_t *customer, const cart_line_t *lines, size_t n, int64_t ttl_s,
           flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, arr, line, ins, opts = BSON_INITIALIZER;
   int64_t now = flora__shop_now_ms();
   bool ok;

   owner_filter(customer, &filter, NULL);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   BSON_APPEND_ARRAY_BEGIN(&set, "items", &arr);
   for (size_t i = 0; i < n; i++) {
      char idx[16];
      const char *k;

      bson_uint32_to_string((uint32_t) i, &k, idx, sizeof idx);
      BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &line);
      BSON_APPEND_OID(&line, "productId", &lines[i].product_id);
      BSON_APPEND_UTF8(&line, "sku", lines[i].sku);
      BSON_APPEND_INT32(&line, "quantity", (int32_t) lines[i].qty);
      bson_append_document_end(&arr, &line);
   }
   bson_append_array_end(&set, &arr);
   /* The TTL index removes a cart one second after expiresAt. */
   BSON_APPEND_DATE_TIME(&set, "expiresAt", now + ttl_s * 1000 - 1000);
   BSON_APPEND_DATE_TIME(&set, "updatedAt", now);
   bson_append_document_end(&update, &set);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$setOnInsert", &ins);
   BSON_APPEND_DATE_TIME(&ins, "createdAt", now);
   bson_append_document_end(&update, &ins);
   BSON_APPEND_BOOL(&opts, "upsert", true);
   ok = flora_store_update_one(txn, CARTS, &filter, &update, &opts, NULL, error);
   bson_destroy(&filter);
   bson_destroy(&update);
   bson_destroy(&opts);
   return ok;
}

static bool
load_cart(flora_store_t *txn, const flora_customer_t *customer, cart_line_t *lines, size_t *n,
          flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, cart;
   bool found = false, ok;

   *n = 0;
   if (!owner_filter(customer, &filter, error)) {
      bson_destroy(&filter);
      return false;
   }
   ok = flora_store_find_one(txn, CARTS, &filter, NULL, &cart, &found, error);
   if (ok && found) {
      *n = read_lines(&cart, lines, FLORA__LINES_MAX);
   }
   bson_destroy(&cart);
   bson_destroy(&filter);
   return ok;
}

static bool
set_item_txn(flora_store_t *txn, void *data, flora_error_t *error)
{
   cart_ctx_t *ctx = data;
   cart_line_t lines[FLORA__LINES_MAX];
   size_t n = 0, i;
   int64_t qty;

   if (!load_cart(txn, ctx->customer, lines, &n, error)) {
      return false;
   }
   i = find_line(lines, n, ctx->sku);
   qty = ctx->add && i < n ? lines[i].qty + ctx->quantity : ctx->quantity;
   if (qty > FLORA__QUANTITY_MAX) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "quantity: at most 999 of one SKU in a cart");
      return false;
   }
   if (qty == 0) {
      if (i < n) {
         memmove(&lines[i], &lines[i + 1], (n - i - 1) * sizeof lines[0]);
         n--;
      }
   } else {
      if (i == n) {
         bson_t *filter = BCON_NEW("variants.sku", BCON_UTF8(ctx->sku), "active", BCON_BOOL(true));
         bson_t product;
         bson_iter_t it;
         bool found = false, ok;

         if (n == FLORA__LINES_MAX) {
            bson_destroy(filter);
            flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "items: a cart holds at most 50 SKUs");
            return false;
         }
         ok = flora_store_find_one(txn, PRODUCTS, filter, NULL, &product, &found, error);
         bson_destroy(filter);
         if (ok && !found) {
            flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "sku: no product in the catalog has SKU '%s'",
                            ctx->sku);
            ok = false;
         }
         if (ok) {
            memset(&lines[n], 0, sizeof lines[n]);
            snprintf(lines[n].sku, sizeof lines[n].sku, "%s", ctx->sku);
            bson_iter_init_find(&it, &product, "_id");
            bson_oid_copy(bson_iter_oid(&it), &lines[n].product_id);
            n++;
         }
         bson_destroy(&product);
         if (!ok) {
            return false;
         }
      }
      lines[i].qty = qty;
   }
   return write_cart(txn, ctx->customer, lines, n, ctx->ttl_s, error);
}

bool
flora_cart_set_item(flora_store_t *store, const flora_customer_t *customer, const char *sku, int32_t quantity, bool add,
                    int64_t ttl_s, bson_t *out, flora_error_t *error)
{
   cart_ctx_t ctx = {.customer = customer, .sku = sku, .quantity = quantity, .add = add, .ttl_s = ttl_s};
   bson_t filter = BSON_INITIALIZER;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(customer);
   FLORA_ASSERT_ARG(sku);
   bson_init(out);
   if (!owner_filter(customer, &filter, error)) {
      bson_destroy(&filter);
      return false;
   }
   bson_destroy(&filter);
   if (!*sku || strlen(sku) > 64) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "sku: must be 1-64 characters");
      return false;
   }
   if (quantity < (add ? 1 : 0) || quantity > FLORA__QUANTITY_MAX) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "quantity: must be from %d to 999",
                      add ? 1 : 0);
      return false;
   }
   if (!flora_store_with_transaction(store, set_item_txn, &ctx, error)) {
      return false;
   }
   bson_destroy(out);
   return flora_cart_get(store, customer, out, error);
}

bool
flora_cart_clear(flora_store_t *store, const flora_customer_t *customer, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(customer);
   ok = owner_filter(customer, &filter, error) && flora_store_delete_one(store, CARTS, &filter, NULL, NULL, error);
   bson_destroy(&filter);
   return ok;
}

static bool
merge_txn(flora_store_t *txn, void *data, flora_error_t *error)
{
   cart_ctx_t *ctx = data;
   flora_customer_t guest = {.has_user = false, .guest_token = ctx->merge_token};
   cart_line_t mine[FLORA__LINES_MAX], theirs[FLORA__LINES_MAX];
   size_t n = 0, m = 0;
   bson_t filter = BSON_INITIALIZER;
   bool ok;

   if (!load_cart(txn, ctx->customer, mine, &n, error) || !load_cart(txn, &guest, theirs, &m, error)) {
      bson_destroy(&filter);
      return false;
   }
   if (m == 0) {
      bson_destroy(&filter);
      return true;
   }
   for (size_t j = 0; j < m; j++) {
      size_t i = find_line(mine, n, theirs[j].sku);

      if (i < n) {
         mine[i].qty = mine[i].qty + theirs[j].qty > FLORA__QUANTITY_MAX ? FLORA__QUANTITY_MAX : mine[i].qty + theirs[j].qty;
      } else if (n < FLORA__LINES_MAX) {
         mine[n++] = theirs[j];
      }
   }
   owner_filter(&guest, &filter, NULL);
   ok = write_cart(txn, ctx->customer, mine, n, ctx->ttl_s, error) &&
        flora_store_delete_one(txn, CARTS, &filter, NULL, NULL, error);
   bson_destroy(&filter);
   return ok;
}

bool
flora_cart_merge(flora_store_t *store, const char *guest_token, const bson_oid_t *user_id, int64_t ttl_s, bson_t *out,
                 flora_error_t *error)
{
   flora_customer_t user = {.has_user = true};
   cart_ctx_t ctx = {.customer = &user, .merge_token = guest_token, .ttl_s = ttl_s};

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(guest_token);
   FLORA_ASSERT_ARG(user_id);
   bson_init(out);
   bson_oid_copy(user_id, &user.user_id);
   if (strlen(guest_token) < 16 || strlen(guest_token) > 128) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "X-Cart-Token: a guest cart token has 16-128 characters");
      return false;
   }
   if (!flora_store_with_transaction(store, merge_txn, &ctx, error)) {
      return false;
   }
   bson_destroy(out);
   return flora_cart_get(store, &user, out, error);
}
