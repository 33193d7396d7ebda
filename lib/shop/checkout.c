/* Checkout: one transaction turns a cart (or a list of SKUs) into an order
 * (include/flora/orders.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "flora/contact.h"
#include "flora/delivery.h"
#include "flora/orders.h"
#include "flora/outbox.h"
#include "flora/schema.h"
#include "flora/shop.h"
#include "shop/orders_private.h"
#include "shop/shop_private.h"

#define PRODUCTS "products"
#define ORDERS "orders"
#define COUPONS "coupons"
#define CARTS "carts"
#define COUNTERS "counters"
#define USERS "users"

/* ---- helpers shared by the write path -------------------------------------------- */

int64_t
flora__iter_int64(const bson_iter_t *it, int64_t def)
{
   if (BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it) || BSON_ITER_HOLDS_DOUBLE(it)) {
      return bson_iter_as_int64(it);
   }
   return def;
}

size_t
flora__utf8_length(const char *s)
{
   size_t n = 0;

   for (; *s; s++) {
      if (((unsigned char) *s & 0xC0) != 0x80) {
         n++;
      }
   }
   return n;
}

bool
flora__reject_operators(const bson_t *doc, const char *prefix, flora_error_t *error)
{
   bson_iter_t it;

   if (!bson_iter_init(&it, doc)) {
      return true;
   }
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      char path[256];

      snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
      if (key[0] == '$' || BSON_ITER_HOLDS_REGEX(&it)) {
         /* libbson's Extended JSON reader turns {"$regex": ...} into a BSON regex. */
         flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "%s: operators are not allowed in client data", path);
         return false;
      }
      if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
         const uint8_t *data;
         uint32_t len;
         bson_t sub;

         if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_iter_document(&it, &len, &data);
         } else {
            bson_iter_array(&it, &len, &data);
         }
         if (bson_init_static(&sub, data, len) && !flora__reject_operators(&sub, path, error)) {
            return false;
         }
      }
   }
   return true;
}

static const char *
string_of(const bson_t *doc, const char *dotted)
{
   bson_iter_t it, f;

   return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, dotted, &f) && BSON_ITER_HOLDS_UTF8(&f)
             ? bson_iter_utf8(&f, NULL)
             : NULL;
}

bool
flora__delivery_price(flora_store_t *store, const flora_config_t *config, int64_t subtotal, const bson_t *delivery,
                      bson_t *quote, int64_t *price, flora_error_t *error)
{
   bson_t request = BSON_INITIALIZER, empty = BSON_INITIALIZER, opts = BSON_INITIALIZER;
   bson_iter_t it, f;
   int64_t zones = 0;
   const char *s;
   bool ok = false;

   bson_init(quote);
   *price = flora_config_int(config, "delivery.flat_fee");
   BSON_APPEND_INT64(&opts, "limit", 1);
   if (!flora_store_count_documents(store, "delivery_zones", &empty, &opts, &zones, error)) {
      goto cleanup;
   }
   if (zones == 0) {
      ok = true;
      goto cleanup;
   }
   if ((s = string_of(delivery, "address.text"))) {
      BSON_APPEND_UTF8(&request, "address", s);
   }
   bson_iter_init(&it, delivery);
   if (bson_iter_find_descendant(&it, "address.lat", &f)) {
      bson_append_iter(&request, "lat", -1, &f);
   }
   bson_iter_init(&it, delivery);
   if (bson_iter_find_descendant(&it, "address.lon", &f)) {
      bson_append_iter(&request, "lon", -1, &f);
   }
   BSON_APPEND_INT64(&request, "subtotal", subtotal);
   if ((s = string_of(delivery, "date"))) {
      BSON_APPEND_UTF8(&request, "date", s);
   }
   if ((s = string_of(delivery, "slot.id"))) {
      BSON_APPEND_UTF8(&request, "slot", s);
   } else if ((s = string_of(delivery, "slot.exactTime"))) {
      BSON_APPEND_UTF8(&request, "exactTime", s);
   }
   bson_destroy(quote);
   if (!flora_delivery_quote(store, config, &request, quote, error)) {
      if (error && error->domain == FLORA_DOMAIN_VALIDATION) {
         flora_error_prefix(error, "delivery");
      }
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, quote, "deliverable") || !bson_iter_as_bool(&it)) {
      s = string_of(quote, "reason");
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT, "delivery: %s", s ? s : "not deliverable");
      goto cleanup;
   }
   *price = bson_iter_init_find(&it, quote, "price") ? flora__iter_int64(&it, 0) : 0;
   ok = true;
cleanup:
   if (!ok) {
      bson_reinit(quote);
   }
   bson_destroy(&request);
   bson_destroy(&empty);
   bson_destroy(&opts);
   return ok;
}

bool
flora__delivery_slot(flora_store_t *txn, const bson_t *delivery, bool release, flora_error_t *error)
{
   const char *date = string_of(delivery, "date"), *slot = string_of(delivery, "slot.id");

   if (!bson_has_field(delivery, "quote") || !date) {
      return true;
   }
   if (!slot) {
      slot = "exact";
   }
   return release ? flora_delivery_release_slot(txn, date, slot, error)
                  : flora_delivery_reserve_slot(txn, date, slot, error);
}

bool
flora__find_page(flora_store_t *store, const char *collection, const bson_t *filter, const bson_t *sort,
                 int64_t page, int64_t page_size, bson_t *out, flora_error_t *error)
{
   bson_t opts = BSON_INITIALIZER, items;
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   int64_t total = 0, n = 0;
   char idx[16];
   const char *k;
   bool ok = false;

   bson_init(out);
   if (page < 1) {
      page = 1;
   }
   if (page_size < 1) {
      page_size = 20;
   }
   if (!flora_store_count_documents(store, collection, filter, NULL, &total, error)) {
      goto cleanup;
   }
   if (sort) {
      BSON_APPEND_DOCUMENT(&opts, "sort", sort);
   }
   BSON_APPEND_INT64(&opts, "skip", (page - 1) * page_size);
   BSON_APPEND_INT64(&opts, "limit", page_size);
   if (!flora_store_find(store, collection, filter, &opts, &cursor, error)) {
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN(out, "items", &items);
   while (flora_cursor_next(cursor, &doc)) {
      bson_uint32_to_string((uint32_t) n++, &k, idx, sizeof idx);
      BSON_APPEND_DOCUMENT(&items, k, doc);
   }
   bson_append_array_end(out, &items);
   if (flora_cursor_error(cursor, error)) {
      goto cleanup;
   }
   BSON_APPEND_INT64(out, "total", total);
   BSON_APPEND_INT64(out, "page", page);
   BSON_APPEND_INT64(out, "pageSize", page_size);
   BSON_APPEND_INT64(out, "pages", (total + page_size - 1) / page_size);
   ok = true;
cleanup:
   if (!ok) {
      bson_reinit(out);
   }
   flora_cursor_destroy(cursor);
   bson_destroy(&opts);
   return ok;
}

void
flora_customer_key(const flora_customer_t *customer, char *out, size_t out_len)
{
   FLORA_ASSERT_ARG(customer);
   FLORA_ASSERT_ARG(out);
   if (customer->has_user) {
      char hex[25];

      bson_oid_to_string(&customer->user_id, hex);
      snprintf(out, out_len, "user:%s", hex);
   } else {
      snprintf(out, out_len, "guest:%s", customer->guest_token ? customer->guest_token : "");
   }
}

/* ---- lines ------------------------------------------------------------------------- */

/* The variant with this SKU inside a product document. */
static bool
find_variant(const bson_t *product, const char *sku, bson_t *variant)
{
   bson_iter_t it, vs;

   if (!bson_iter_init_find(&it, product, "variants") || !bson_iter_recurse(&it, &vs)) {
      return false;
   }
   while (bson_iter_next(&vs)) {
      bson_iter_t f;
      const uint8_t *data;
      uint32_t len;

      if (!BSON_ITER_HOLDS_DOCUMENT(&vs) || !bson_iter_recurse(&vs, &f) || !bson_iter_find(&f, "sku") ||
          !BSON_ITER_HOLDS_UTF8(&f) || strcmp(bson_iter_utf8(&f, NULL), sku) != 0) {
         continue;
      }
      bson_iter_document(&vs, &len, &data);
      return bson_init_static(variant, data, len);
   }
   return false;
}

static int64_t
doc_int(const bson_t *doc, const char *key, int64_t def)
{
   bson_iter_t it;

   return bson_iter_init_find(&it, doc, key) ? flora__iter_int64(&it, def) : def;
}

/* Keeps products.inStock equal to "some variant has stock" after a stock change. */
static bool
fix_in_stock(flora_store_t *txn, const bson_t *product, flora_error_t *error)
{
   bson_iter_t it, vs;
   bool in_stock = false, ok = true;

   if (bson_iter_init_find(&it, product, "variants") && bson_iter_recurse(&it, &vs)) {
      while (bson_iter_next(&vs)) {
         bson_iter_t s;

         if (BSON_ITER_HOLDS_DOCUMENT(&vs) && bson_iter_recurse(&vs, &s) && bson_iter_find(&s, "stock")) {
            in_stock = in_stock || flora__iter_int64(&s, 0) > 0;
         }
      }
   }
   if (!bson_iter_init_find(&it, product, "inStock") || !BSON_ITER_HOLDS_BOOL(&it) ||
       bson_iter_bool(&it) != in_stock) {
      bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set;

      bson_iter_init_find(&it, product, "_id");
      bson_append_iter(&filter, "_id", -1, &it);
      BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
      BSON_APPEND_BOOL(&set, "inStock", in_stock);
      bson_append_document_end(&update, &set);
      ok = flora_store_update_one(txn, PRODUCTS, &filter, &update, NULL, NULL, error);
      bson_destroy(&filter);
      bson_destroy(&update);
   }
   return ok;
}

/* Takes qty of sku in one conditional update; *product receives the product after. */
static bool
take_stock(flora_store_t *txn, const char *sku, int32_t qty, bson_t *product, bool *taken,
           flora_error_t *error)
{
   bson_t *filter, *update, *opts;
   bool ok;

   filter = BCON_NEW("active", BCON_BOOL(true), "variants", "{", "$elemMatch", "{", "sku", BCON_UTF8(sku),
                     "stock", "{", "$gte", BCON_INT32(qty), "}", "}", "}");
   update = BCON_NEW("$inc", "{", "variants.$.stock", BCON_INT32(-qty), "popularity", BCON_INT32(qty), "}",
                     "$set", "{", "updatedAt", BCON_DATE_TIME(flora__shop_now_ms()), "}");
   opts = BCON_NEW("returnDocument", BCON_UTF8("after"));
   ok = flora_store_find_one_and_update(txn, PRODUCTS, filter, update, opts, product, taken, error) &&
        (!*taken || fix_in_stock(txn, product, error));
   bson_destroy(filter);
   bson_destroy(update);
   bson_destroy(opts);
   return ok;
}

static void
append_line(bson_t *lines, uint32_t n, const bson_t *product, const bson_t *variant, const char *sku,
            int32_t qty)
{
   bson_t line;
   bson_iter_t it, img;
   char idx[16];
   const char *k;
   int64_t price = doc_int(variant, "price", 0);

   bson_uint32_to_string(n, &k, idx, sizeof idx);
   BSON_APPEND_DOCUMENT_BEGIN(lines, k, &line);
   if (bson_iter_init_find(&it, product, "_id")) {
      bson_append_iter(&line, "productId", -1, &it);
   }
   BSON_APPEND_UTF8(&line, "sku", sku);
   if (bson_iter_init_find(&it, product, "name") && BSON_ITER_HOLDS_UTF8(&it)) {
      bson_append_iter(&line, "name", -1, &it);
   }
   if (bson_iter_init_find(&it, variant, "name") && BSON_ITER_HOLDS_UTF8(&it)) {
      bson_append_iter(&line, "variant", -1, &it);
   }
   BSON_APPEND_INT64(&line, "unitPrice", price);
   BSON_APPEND_INT32(&line, "quantity", qty);
   if (bson_iter_init_find(&it, product, "images") && bson_iter_recurse(&it, &img) && bson_iter_next(&img) &&
       BSON_ITER_HOLDS_DOCUMENT(&img) && bson_iter_recurse(&img, &it) && bson_iter_find(&it, "url") &&
       BSON_ITER_HOLDS_UTF8(&it)) {
      bson_append_iter(&line, "image", -1, &it);
   }
   BSON_APPEND_INT64(&line, "lineTotal", price * qty);
   if (bson_iter_init_find(&it, product, "categoryTree")) {
      bson_append_iter(&line, "categoryTree", -1, &it);
   }
   bson_append_document_end(lines, &line);
}

static void
out_of_stock_problem(bson_t *problems, const char *sku, int64_t available, int32_t requested)
{
   bson_t p;
   char idx[16];
   const char *k;

   if (!problems) {
      return;
   }
   bson_uint32_to_string(bson_count_keys(problems), &k, idx, sizeof idx);
   BSON_APPEND_DOCUMENT_BEGIN(problems, k, &p);
   BSON_APPEND_UTF8(&p, "path", "items");
   BSON_APPEND_UTF8(&p, "reason", "out of stock");
   BSON_APPEND_UTF8(&p, "sku", sku);
   BSON_APPEND_INT64(&p, "available", available);
   BSON_APPEND_INT32(&p, "requested", requested);
   bson_append_document_end(problems, &p);
}

bool
flora__lines_resolve(flora_store_t *store, const bson_t *items, bool take, bson_t *lines, int64_t *subtotal,
                     bson_t *problems, flora_error_t *error)
{
   bson_iter_t it;
   uint32_t n = 0;
   bool ok = true;

   bson_init(lines);
   *subtotal = 0;
   if (!bson_iter_init(&it, items)) {
      return true;
   }
   while (bson_iter_next(&it)) {
      bson_iter_t f;
      const char *sku = NULL;
      int32_t qty = 0;
      bson_t product, variant;
      bool found = false;
      char path[48];

      if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &f)) {
         while (bson_iter_next(&f)) {
            if (strcmp(bson_iter_key(&f), "sku") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
               sku = bson_iter_utf8(&f, NULL);
            } else if (strcmp(bson_iter_key(&f), "quantity") == 0) {
               qty = (int32_t) flora__iter_int64(&f, 0);
            }
         }
      }
      snprintf(path, sizeof path, "items.%s.sku", bson_iter_key(&it));
      if (!sku || qty < 1) {
         ok = flora__shop_invalid(problems, error, path, "a line needs a sku and a quantity >= 1");
         continue;
      }
      if (take) {
         if (!take_stock(store, sku, qty, &product, &found, error)) {
            bson_destroy(&product);
            bson_reinit(lines);
            return false;
         }
         if (!found) {
            bson_t probe = BSON_INITIALIZER;
            bson_t *filter = BCON_NEW("variants.sku", BCON_UTF8(sku));
            bool exists = false, active = false;
            int64_t left = 0;

            bson_destroy(&product);
            bson_destroy(&probe);
            ok = flora_store_find_one(store, PRODUCTS, filter, NULL, &probe, &exists, error);
            bson_destroy(filter);
            if (ok && exists) {
               bson_iter_t a;

               active = bson_iter_init_find(&a, &probe, "active") && bson_iter_as_bool(&a);
               if (find_variant(&probe, sku, &variant)) {
                  left = doc_int(&variant, "stock", 0);
               }
            }
            bson_destroy(&probe);
            if (!ok) {
               bson_reinit(lines);
               return false;
            }
            if (!exists || !active) {
               ok = flora__shop_invalid(problems, error, path, "no product in the catalog has this SKU");
               continue;
            }
            out_of_stock_problem(problems, sku, left, qty);
            flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_OUT_OF_STOCK,
                            "out of stock: %s has %" PRId64 " left, %d asked", sku, left, qty);
            bson_reinit(lines);
            return false;
         }
      } else {
         bson_t *filter = BCON_NEW("variants.sku", BCON_UTF8(sku), "active", BCON_BOOL(true));

         ok = flora_store_find_one(store, PRODUCTS, filter, NULL, &product, &found, error) && ok;
         bson_destroy(filter);
         if (!found) {
            bson_destroy(&product);
            if (error && error->domain == FLORA_DOMAIN_STORE) {
               bson_reinit(lines);
               return false;
            }
            ok = flora__shop_invalid(problems, error, path, "no product in the catalog has this SKU");
            continue;
         }
      }
      if (!find_variant(&product, sku, &variant)) {
         bson_destroy(&product);
         ok = flora__shop_invalid(problems, error, path, "no product in the catalog has this SKU");
         continue;
      }
      append_line(lines, n++, &product, &variant, sku, qty);
      *subtotal += doc_int(&variant, "price", 0) * qty;
      bson_destroy(&product);
   }
   if (!ok) {
      bson_reinit(lines);
   }
   return ok;
}

bool
flora__lines_restock(flora_store_t *txn, const bson_t *order, flora_error_t *error)
{
   bson_iter_t it, items;

   if (!bson_iter_init_find(&it, order, "items") || !bson_iter_recurse(&it, &items)) {
      return true;
   }
   while (bson_iter_next(&items)) {
      bson_iter_t f;
      bson_t filter = BSON_INITIALIZER;
      bson_t *update;
      const char *sku = NULL;
      int32_t qty = 0;
      bool ok;

      if (!BSON_ITER_HOLDS_DOCUMENT(&items) || !bson_iter_recurse(&items, &f)) {
         continue;
      }
      while (bson_iter_next(&f)) {
         if (strcmp(bson_iter_key(&f), "productId") == 0) {
            bson_append_iter(&filter, "_id", -1, &f);
         } else if (strcmp(bson_iter_key(&f), "sku") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
            sku = bson_iter_utf8(&f, NULL);
         } else if (strcmp(bson_iter_key(&f), "quantity") == 0) {
            qty = (int32_t) flora__iter_int64(&f, 0);
         }
      }
      if (!sku || qty < 1) {
         bson_destroy(&filter);
         continue;
      }
      BSON_APPEND_UTF8(&filter, "variants.sku", sku);
      /* A product deleted since the order has nothing to restock (matchedCount 0). */
      update = BCON_NEW("$inc", "{", "variants.$.stock", BCON_INT32(qty), "popularity", BCON_INT32(-qty), "}",
                        "$set", "{", "inStock", BCON_BOOL(true), "updatedAt",
                        BCON_DATE_TIME(flora__shop_now_ms()), "}");
      ok = flora_store_update_one(txn, PRODUCTS, &filter, update, NULL, NULL, error);
      bson_destroy(&filter);
      bson_destroy(update);
      if (!ok) {
         return false;
      }
   }
   return true;
}

/* ---- input ------------------------------------------------------------------------- */

static bool
has_only(const bson_t *doc, const char *prefix, const char *const *known, bson_t *problems)
{
   bson_iter_t it;
   bool ok = true;

   bson_iter_init(&it, doc);
   while (bson_iter_next(&it)) {
      bool hit = false;

      for (size_t i = 0; known[i]; i++) {
         hit = hit || strcmp(known[i], bson_iter_key(&it)) == 0;
      }
      if (!hit) {
         char path[160];

         snprintf(path, sizeof path, "%s%s", prefix, bson_iter_key(&it));
         flora_schema_problem(problems, path, "unknown field");
         ok = false;
      }
   }
   return ok;
}

/* A string field: NULL when absent (problem when required) or invalid (problem). */
static const char *
string_field(const bson_t *doc, const char *prefix, const char *key, bool required, size_t max_chars,
             bson_t *problems)
{
   bson_iter_t it;
   char path[160];
   const char *s;

   snprintf(path, sizeof path, "%s%s", prefix, key);
   if (!bson_iter_init_find(&it, doc, key) || BSON_ITER_HOLDS_NULL(&it)) {
      if (required) {
         flora_schema_problem(problems, path, "is required");
      }
      return NULL;
   }
   if (!BSON_ITER_HOLDS_UTF8(&it)) {
      flora_schema_problem(problems, path, "must be a string");
      return NULL;
   }
   s = bson_iter_utf8(&it, NULL);
   if (required && !*s) {
      flora_schema_problem(problems, path, "must not be empty");
      return NULL;
   }
   if (flora__utf8_length(s) > max_chars) {
      char reason[64];

      snprintf(reason, sizeof reason, "must be at most %zu characters", max_chars);
      flora_schema_problem(problems, path, reason);
      return NULL;
   }
   return s;
}

static bool
sub_document(const bson_t *doc, const char *key, bson_t *out)
{
   bson_iter_t it;
   const uint8_t *data;
   uint32_t len;

   if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
      return false;
   }
   bson_iter_document(&it, &len, &data);
   return bson_init_static(out, data, len);
}

static bool
bool_field(const bson_t *doc, const char *prefix, const char *key, bool *out, bson_t *problems)
{
   bson_iter_t it;

   *out = false;
   if (!bson_iter_init_find(&it, doc, key)) {
      return true;
   }
   if (!BSON_ITER_HOLDS_BOOL(&it)) {
      char path[160];

      snprintf(path, sizeof path, "%s%s", prefix, key);
      flora_schema_problem(problems, path, "must be true or false");
      return false;
   }
   *out = bson_iter_bool(&it);
   return true;
}

static bool
valid_date(const char *s)
{
   int y, m, d;
   static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

   if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') {
      return false;
   }
   for (int i = 0; i < 10; i++) {
      if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) {
         return false;
      }
   }
   y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
   m = (s[5] - '0') * 10 + (s[6] - '0');
   d = (s[8] - '0') * 10 + (s[9] - '0');
   if (y < 2000 || m < 1 || m > 12 || d < 1 || d > days[m - 1]) {
      return false;
   }
   return !(m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

static bool
valid_hhmm(const char *s)
{
   return strlen(s) == 5 && s[2] == ':' && s[0] >= '0' && s[0] <= '2' && s[1] >= '0' && s[1] <= '9' &&
          s[3] >= '0' && s[3] <= '5' && s[4] >= '0' && s[4] <= '9' && (s[0] - '0') * 10 + (s[1] - '0') < 24;
}

static void
phone_field(const char *raw, const char *path, bson_t *out, const char *key, bson_t *problems)
{
   char e164[32];
   flora_error_t err = {0};

   if (!flora_phone_normalize(raw, e164, sizeof e164, &err)) {
      flora_schema_problem(problems, path, err.message);
      return;
   }
   BSON_APPEND_UTF8(out, key, e164);
}

/* Checks the checkout input and writes the normalised parts: *customer {name, email,
 * phone?}, *delivery (order shape without price), *items ([{sku, quantity}] merged by SKU,
 * or empty when absent), *coupon_code ("" when none). */
static bool
check_input(const bson_t *input, bson_t *customer, bson_t *delivery, bson_t *items, bool *has_items,
            char *coupon_code, size_t code_len, bson_t *problems)
{
   static const char *const top[] = {"customer", "items", "delivery", "couponCode", NULL};
   static const char *const cust_keys[] = {"name", "email", "phone", NULL};
   static const char *const del_keys[] = {"recipient", "address", "date", "slot", "exactTime",
                                          "cardMessage", "anonymous", "callFirst", NULL};
   static const char *const rec_keys[] = {"name", "phone", NULL};
   static const char *const addr_keys[] = {"text", "lat", "lon", NULL};
   static const char *const line_keys[] = {"sku", "quantity", NULL};
   bson_t sub;
   bson_iter_t it;
   const char *s, *name = NULL, *phone = NULL;
   char email[256];
   bool flag;
   uint32_t before = bson_count_keys(problems);

   bson_init(customer);
   bson_init(delivery);
   bson_init(items);
   *has_items = false;
   coupon_code[0] = '\0';
   has_only(input, "", top, problems);

   /* customer */
   if (!sub_document(input, "customer", &sub)) {
      flora_schema_problem(problems, "customer", bson_has_field(input, "customer") ? "must be an object" : "is required");
   } else {
      has_only(&sub, "customer.", cust_keys, problems);
      name = string_field(&sub, "customer.", "name", true, 120, problems);
      if (name) {
         BSON_APPEND_UTF8(customer, "name", name);
      }
      s = string_field(&sub, "customer.", "email", true, 254, problems);
      if (s) {
         flora_error_t err = {0};

         if (flora_email_normalize(s, email, sizeof email, &err)) {
            BSON_APPEND_UTF8(customer, "email", email);
         } else {
            flora_schema_problem(problems, "customer.email", err.message);
         }
      }
      phone = string_field(&sub, "customer.", "phone", false, 40, problems);
      if (phone) {
         phone_field(phone, "customer.phone", customer, "phone", problems);
      }
   }

   /* items */
   if (bson_iter_init_find(&it, input, "items")) {
      bson_iter_t arr;
      uint32_t n = 0;
      struct {
         const char *sku;
         int64_t qty;
      } merged[FLORA__LINES_MAX];

      *has_items = true;
      if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr)) {
         flora_schema_problem(problems, "items", "must be an array of {sku, quantity}");
      } else {
         while (bson_iter_next(&arr)) {
            char prefix[48], path[64];
            const char *sku;
            bson_iter_t q;

            snprintf(prefix, sizeof prefix, "items.%s.", bson_iter_key(&arr));
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) {
               snprintf(path, sizeof path, "items.%s", bson_iter_key(&arr));
               flora_schema_problem(problems, path, "must be an object {sku, quantity}");
               continue;
            }
            {
               const uint8_t *data;
               uint32_t len;

               bson_iter_document(&arr, &len, &data);
               bson_init_static(&sub, data, len);
            }
            has_only(&sub, prefix, line_keys, problems);
            sku = string_field(&sub, prefix, "sku", true, 64, problems);
            snprintf(path, sizeof path, "%squantity", prefix);
            if (!bson_iter_init_find(&q, &sub, "quantity")) {
               flora_schema_problem(problems, path, "is required");
               continue;
            }
            if (!BSON_ITER_HOLDS_INT32(&q) && !BSON_ITER_HOLDS_INT64(&q)) {
               flora_schema_problem(problems, path, "must be a whole number");
               continue;
            }
            if (bson_iter_as_int64(&q) < 1 || bson_iter_as_int64(&q) > FLORA__QUANTITY_MAX) {
               flora_schema_problem(problems, path, "must be from 1 to 999");
               continue;
            }
            if (!sku) {
               continue;
            }
            {
               uint32_t j = 0;

               while (j < n && strcmp(merged[j].sku, sku) != 0) {
                  j++;
               }
               if (j == n) {
                  if (n == FLORA__LINES_MAX) {
                     flora_schema_problem(problems, "items", "at most 50 different SKUs");
                     break;
                  }
                  merged[n].sku = sku;
                  merged[n].qty = 0;
                  n++;
               }
               merged[j].qty += bson_iter_as_int64(&q);
               if (merged[j].qty > FLORA__QUANTITY_MAX) {
                  flora_schema_problem(problems, path, "at most 999 of one SKU");
               }
            }
         }
         if (n == 0 && bson_count_keys(problems) == before) {
            flora_schema_problem(problems, "items", "must not be empty");
         }
         for (uint32_t j = 0; j < n; j++) {
            bson_t line;
            char idx[16];
            const char *k;

            bson_uint32_to_string(j, &k, idx, sizeof idx);
            BSON_APPEND_DOCUMENT_BEGIN(items, k, &line);
            BSON_APPEND_UTF8(&line, "sku", merged[j].sku);
            BSON_APPEND_INT32(&line, "quantity", (int32_t) merged[j].qty);
            bson_append_document_end(items, &line);
         }
      }
   }

   /* delivery */
   if (!sub_document(input, "delivery", &sub)) {
      flora_schema_problem(problems, "delivery", bson_has_field(input, "delivery") ? "must be an object" : "is required");
   } else {
      bson_t rec, addr, doc;
      const char *slot, *exact;

      has_only(&sub, "delivery.", del_keys, problems);
      BSON_APPEND_DOCUMENT_BEGIN(delivery, "recipient", &doc);
      if (sub_document(&sub, "recipient", &rec)) {
         const char *rphone;

         has_only(&rec, "delivery.recipient.", rec_keys, problems);
         s = string_field(&rec, "delivery.recipient.", "name", true, 120, problems);
         if (s) {
            BSON_APPEND_UTF8(&doc, "name", s);
         }
         rphone = string_field(&rec, "delivery.recipient.", "phone", true, 40, problems);
         if (rphone) {
            phone_field(rphone, "delivery.recipient.phone", &doc, "phone", problems);
         }
      } else if (bson_has_field(&sub, "recipient")) {
         flora_schema_problem(problems, "delivery.recipient", "must be an object {name, phone}");
      } else {
         /* The buyer receives: their name and phone. */
         if (name) {
            BSON_APPEND_UTF8(&doc, "name", name);
         }
         if (phone) {
            /* Normalised above (a bad one is already a problem of customer.phone). */
            if (bson_iter_init_find(&it, customer, "phone")) {
               bson_append_iter(&doc, "phone", -1, &it);
            }
         } else if (sub_document(input, "customer", &rec)) {
            flora_schema_problem(problems, "customer.phone",
                                 "is required when delivery.recipient is not given");
         }
      }
      bson_append_document_end(delivery, &doc);

      BSON_APPEND_DOCUMENT_BEGIN(delivery, "address", &doc);
      if (!sub_document(&sub, "address", &addr)) {
         flora_schema_problem(problems, "delivery.address",
                              bson_has_field(&sub, "address") ? "must be an object {text, lat?, lon?}" : "is required");
      } else {
         has_only(&addr, "delivery.address.", addr_keys, problems);
         s = string_field(&addr, "delivery.address.", "text", true, 500, problems);
         if (s) {
            BSON_APPEND_UTF8(&doc, "text", s);
         }
         for (int c = 0; c < 2; c++) {
            const char *key = c == 0 ? "lat" : "lon";
            double lim = c == 0 ? 90.0 : 180.0;

            if (bson_iter_init_find(&it, &addr, key)) {
               char path[48];

               snprintf(path, sizeof path, "delivery.address.%s", key);
               if (!BSON_ITER_HOLDS_NUMBER(&it) || bson_iter_as_double(&it) < -lim ||
                   bson_iter_as_double(&it) > lim) {
                  flora_schema_problem(problems, path, c == 0 ? "must be a number from -90 to 90"
                                                              : "must be a number from -180 to 180");
               } else {
                  BSON_APPEND_DOUBLE(&doc, key, bson_iter_as_double(&it));
               }
            }
         }
      }
      bson_append_document_end(delivery, &doc);

      s = string_field(&sub, "delivery.", "date", true, 10, problems);
      if (s && !valid_date(s)) {
         flora_schema_problem(problems, "delivery.date", "must be a calendar date YYYY-MM-DD");
      } else if (s) {
         BSON_APPEND_UTF8(delivery, "date", s);
      }
      slot = string_field(&sub, "delivery.", "slot", false, 5, problems);
      exact = string_field(&sub, "delivery.", "exactTime", false, 5, problems);
      BSON_APPEND_DOCUMENT_BEGIN(delivery, "slot", &doc);
      if (slot && exact) {
         flora_schema_problem(problems, "delivery.slot", "give either slot or exactTime, not both");
      } else if (slot) {
         char start[6], end[6];

         if (strlen(slot) != 5 || slot[2] != '-' || slot[0] < '0' || slot[0] > '2' || slot[1] < '0' ||
             slot[1] > '9' || slot[3] < '0' || slot[3] > '2' || slot[4] < '0' || slot[4] > '9' ||
             strncmp(slot, slot + 3, 2) >= 0 || strncmp(slot + 3, "24", 2) > 0) {
            flora_schema_problem(problems, "delivery.slot", "must be a window HH-HH such as 09-12");
         } else {
            snprintf(start, sizeof start, "%.2s:00", slot);
            snprintf(end, sizeof end, "%.2s:00", slot + 3);
            BSON_APPEND_UTF8(&doc, "id", slot);
            BSON_APPEND_UTF8(&doc, "start", start);
            BSON_APPEND_UTF8(&doc, "end", end);
         }
      } else if (exact) {
         if (!valid_hhmm(exact)) {
            flora_schema_problem(problems, "delivery.exactTime", "must be a time HH:MM");
         } else {
            BSON_APPEND_UTF8(&doc, "exactTime", exact);
         }
      } else if (!bson_has_field(&sub, "slot") && !bson_has_field(&sub, "exactTime")) {
         flora_schema_problem(problems, "delivery.slot", "is required (or delivery.exactTime)");
      }
      bson_append_document_end(delivery, &doc);
      s = string_field(&sub, "delivery.", "cardMessage", false, 500, problems);
      if (s) {
         BSON_APPEND_UTF8(delivery, "cardMessage", s);
      }
      if (bool_field(&sub, "delivery.", "anonymous", &flag, problems)) {
         BSON_APPEND_BOOL(delivery, "anonymous", flag);
      }
      if (bool_field(&sub, "delivery.", "callFirst", &flag, problems)) {
         BSON_APPEND_BOOL(delivery, "callFirst", flag);
      }
   }

   s = string_field(input, "", "couponCode", false, 40, problems);
   if (s && !flora__coupon_code_normalize(s, coupon_code, code_len)) {
      flora_schema_problem(problems, "couponCode", "must be 1-40 latin letters, digits, _ or -");
   }
   return bson_count_keys(problems) == before;
}

/* ---- idempotency and the customer's coupon key ---------------------------------------- */

static int
key_cmp(const void *a, const void *b)
{
   return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* A copy of src with every document's keys in byte order (arrays keep their order), so two
 * requests that differ only in the order of their JSON keys are the same request. */
static void
sorted_copy(const bson_t *src, bool is_array, bson_t *out)
{
   bson_iter_t it;
   const char **keys = NULL;
   size_t n = 0, cap = 0;

   bson_iter_init(&it, src);
   while (bson_iter_next(&it)) {
      if (n == cap) {
         cap = cap ? cap * 2 : 16;
         keys = bson_realloc(keys, cap * sizeof *keys);
      }
      keys[n++] = bson_iter_key(&it); /* points into src, which outlives this call */
   }
   if (!is_array && n > 1) {
      qsort(keys, n, sizeof *keys, key_cmp);
   }
   for (size_t i = 0; i < n; i++) {
      if (!bson_iter_init_find(&it, src, keys[i])) {
         continue;
      }
      if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
         bool arr = BSON_ITER_HOLDS_ARRAY(&it);
         const uint8_t *d;
         uint32_t len;
         bson_t sub, child;

         if (arr) {
            bson_iter_array(&it, &len, &d);
            bson_append_array_begin(out, keys[i], -1, &child);
         } else {
            bson_iter_document(&it, &len, &d);
            bson_append_document_begin(out, keys[i], -1, &child);
         }
         bson_init_static(&sub, d, len);
         sorted_copy(&sub, arr, &child);
         if (arr) {
            bson_append_array_end(out, &child);
         } else {
            bson_append_document_end(out, &child);
         }
      } else {
         bson_append_iter(out, keys[i], -1, &it);
      }
   }
   bson_free(keys);
}

/* The request's fingerprint: SHA-256 (libsodium) of its canonical Extended JSON with the
 * keys sorted, as 64 hex digits. Stored with the Idempotency-Key, as Stripe does, so the
 * key reused with another body is refused instead of answering the first order. */
static void
request_fingerprint(const bson_t *input, char out[65])
{
   bson_t sorted = BSON_INITIALIZER;
   unsigned char digest[crypto_hash_sha256_BYTES];
   size_t len = 0;
   char *json;

   sorted_copy(input, false, &sorted);
   json = bson_as_canonical_extended_json(&sorted, &len);
   crypto_hash_sha256(digest, (const unsigned char *) json, len);
   sodium_bin2hex(out, 65, digest, sizeof digest);
   bson_free(json);
   bson_destroy(&sorted);
}

/* The order found under the key answers the retry only when it was made by the same
 * request; else SHOP INVALID "idempotency_key_reused: ..." (HTTP 422). An order stored
 * before fingerprints existed has none and is answered. */
static bool
same_request(const bson_t *order, const char *fingerprint, flora_error_t *error)
{
   bson_iter_t it;

   if (bson_iter_init_find(&it, order, "idempotencyFingerprint") && BSON_ITER_HOLDS_UTF8(&it) &&
       strcmp(bson_iter_utf8(&it, NULL), fingerprint) != 0) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_INVALID,
                      FLORA_CHECKOUT_KEY_REUSED ": this Idempotency-Key was used with a different "
                      "request; use a new key for a new checkout");
      return false;
   }
   return true;
}

bool
flora_customer_coupon_key(flora_store_t *store, const flora_customer_t *customer, const char *email, char *out,
                          size_t out_len, flora_error_t *error)
{
   bson_t user = BSON_INITIALIZER, filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
   bson_iter_t it;
   bool found = false, ok = true;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(customer);
   FLORA_ASSERT_ARG(out);
   if (customer->has_user) {
      BSON_APPEND_OID(&filter, "_id", &customer->user_id);
      BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
      BSON_APPEND_INT32(&proj, "email", 1);
      bson_append_document_end(&opts, &proj);
      bson_destroy(&user);
      ok = flora_store_find_one(store, USERS, &filter, &opts, &user, &found, error);
      if (ok && found && bson_iter_init_find(&it, &user, "email") && BSON_ITER_HOLDS_UTF8(&it)) {
         email = bson_iter_utf8(&it, NULL);
      }
   }
   if (ok) {
      snprintf(out, out_len, "email:%s", email ? email : "");
   }
   bson_destroy(&user);
   bson_destroy(&filter);
   bson_destroy(&opts);
   return ok;
}

/* ---- the transaction ---------------------------------------------------------------- */

typedef struct checkout_ctx {
   const flora_config_t *config;
   const flora_customer_t *customer;
   const bson_t *customer_doc;
   const bson_t *delivery;
   const bson_t *items; /* [{sku, quantity}] from the input, or NULL: the cart */
   const char *coupon_code;
   const char *idem_key;
   char idem_scope[300];    /* what the key is unique within: customerKey, or email:<e-mail> */
   char fingerprint[65];    /* SHA-256 (hex) of the canonical request */
   char customer_key[200];
   char coupon_key[300];
   bson_t *problems;
   bson_t order;       /* the order inserted */
   bool duplicate_key; /* the idempotency index refused the insert */
   bool replayed;      /* an order with the key exists: ctx->order is it */
   const bson_t *quote;    /* the delivery quote (empty: flat fee) */
   int64_t delivery_price;
   int64_t quoted_subtotal; /* the subtotal the quote was made for */
} checkout_ctx_t;

static bool
cart_filter(const flora_customer_t *customer, bson_t *filter)
{
   if (customer->has_user) {
      return BSON_APPEND_OID(filter, "userId", &customer->user_id);
   }
   return BSON_APPEND_UTF8(filter, "guestToken", customer->guest_token ? customer->guest_token : "");
}

/* The current year in the shop's time zone (config shop.timezone), by ICU's calendar:
 * an order placed at 01:00 on 1 January in Moscow is numbered in the new year. */
static bool
shop_year(const flora_config_t *config, int *year, flora_error_t *error)
{
   const char *tz = flora_config_string(config, "shop.timezone");
   UChar utz[128];
   UErrorCode status = U_ZERO_ERROR;
   UCalendar *cal;

   u_uastrncpy(utz, tz, (int32_t) (sizeof utz / sizeof utz[0]) - 1);
   utz[sizeof utz / sizeof utz[0] - 1] = 0;
   cal = ucal_open(utz, -1, "en_US_POSIX", UCAL_GREGORIAN, &status);
   if (U_SUCCESS(status)) {
      ucal_setMillis(cal, (UDate) flora__shop_now_ms(), &status);
      *year = ucal_get(cal, UCAL_YEAR, &status);
   }
   if (cal) {
      ucal_close(cal);
   }
   if (U_FAILURE(status)) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID, "shop.timezone: ICU calendar: %s",
                      u_errorName(status));
      return false;
   }
   return true;
}

static bool
next_number(flora_store_t *txn, const flora_config_t *config, char *out, size_t out_len, flora_error_t *error)
{
   char id[32];
   bson_t *filter, *update, *opts, doc;
   bool found = false, ok;
   int year = 0;

   if (!shop_year(config, &year, error)) {
      return false;
   }
   snprintf(id, sizeof id, "order:%04d", year);
   filter = BCON_NEW("_id", BCON_UTF8(id));
   update = BCON_NEW("$inc", "{", "seq", BCON_INT64(1), "}");
   opts = BCON_NEW("upsert", BCON_BOOL(true), "returnDocument", BCON_UTF8("after"));
   ok = flora_store_find_one_and_update(txn, COUNTERS, filter, update, opts, &doc, &found, error);
   if (ok) {
      snprintf(out, out_len, "FL-%04d-%06" PRId64, year, doc_int(&doc, "seq", 0));
   }
   bson_destroy(&doc);
   bson_destroy(filter);
   bson_destroy(update);
   bson_destroy(opts);
   return ok;
}

static bool
find_by_key(flora_store_t *store, const char *scope, const char *idem_key, bson_t *out, bool *found,
            flora_error_t *error)
{
   bson_t *filter = BCON_NEW("idempotencyKey", BCON_UTF8(idem_key), "idempotencyScope", BCON_UTF8(scope));
   bool ok = flora_store_find_one(store, ORDERS, filter, NULL, out, found, error);

   bson_destroy(filter);
   return ok;
}

static bool
checkout_txn(flora_store_t *txn, void *data, flora_error_t *error)
{
   checkout_ctx_t *ctx = data;
   bson_t cart, cart_items = BSON_INITIALIZER, lines, coupon, draft = BSON_INITIALIZER;
   bson_t doc, arr;
   bson_iter_t it, li;
   const bson_t *items = ctx->items;
   int64_t subtotal = 0, delivery_price, discount = 0, now = flora__shop_now_ms();
   bool found = false, has_coupon = false, ok = false;
   char number[32], idx[16];
   const char *k, *kind = NULL;
   uint32_t n = 0;

   bson_init(&cart);
   bson_init(&lines);
   bson_init(&coupon);
   bson_reinit(&ctx->order);
   ctx->duplicate_key = false;
   ctx->replayed = false;
   if (ctx->idem_key) {
      /* Inside the transaction too: a retry that raced the first checkout answers with its
       * order instead of failing on the stock the first one took. */
      bson_destroy(&ctx->order);
      if (!find_by_key(txn, ctx->idem_scope, ctx->idem_key, &ctx->order, &ctx->replayed, error)) {
         goto cleanup;
      }
      if (ctx->replayed) {
         ok = same_request(&ctx->order, ctx->fingerprint, error);
         goto cleanup;
      }
   }
   if (!items) {
      bson_t filter = BSON_INITIALIZER;

      cart_filter(ctx->customer, &filter);
      bson_destroy(&cart);
      ok = flora_store_find_one(txn, CARTS, &filter, NULL, &cart, &found, error);
      bson_destroy(&filter);
      if (!ok) {
         goto cleanup;
      }
      ok = false;
      if (found && bson_iter_init_find(&it, &cart, "items") && BSON_ITER_HOLDS_ARRAY(&it)) {
         const uint8_t *d;
         uint32_t len;

         bson_destroy(&cart_items);
         bson_iter_array(&it, &len, &d);
         bson_init_static(&cart_items, d, len);
      }
      if (bson_empty(&cart_items)) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                         "items: the cart is empty and the request has no items");
         goto cleanup;
      }
      items = &cart_items;
   }
   bson_destroy(&lines);
   if (!flora__lines_resolve(txn, items, true, &lines, &subtotal, ctx->problems, error)) {
      goto cleanup;
   }
   delivery_price = ctx->delivery_price;
   if (!bson_empty(ctx->quote) && subtotal != ctx->quoted_subtotal) {
      /* A price changed between the quote and the stock taking; the quote may no longer
       * hold (a free-delivery threshold). The client retries. */
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                      "items: prices changed while ordering; please check the cart and retry");
      goto cleanup;
   }

   if (ctx->coupon_code[0]) {
      bson_t *filter = BCON_NEW("code", BCON_UTF8(ctx->coupon_code));
      int64_t uses = 0;
      flora_coupon_reason_t reason;

      bson_destroy(&coupon);
      ok = flora_store_find_one(txn, COUPONS, filter, NULL, &coupon, &has_coupon, error);
      bson_destroy(filter);
      if (!ok) {
         goto cleanup;
      }
      ok = false;
      if (has_coupon && bson_iter_init_find(&it, &coupon, "_id") &&
          !flora__coupon_customer_uses(txn, bson_iter_oid(&it), ctx->coupon_key, &uses, error)) {
         goto cleanup;
      }
      reason = has_coupon ? flora__coupon_judge(&coupon, &lines, subtotal, delivery_price, uses, now, &discount)
                          : FLORA_COUPON_UNKNOWN;
      if (reason != FLORA_COUPON_OK) {
         if (ctx->problems) {
            flora_schema_problem(ctx->problems, "couponCode", flora_coupon_reason_name(reason));
         }
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT, "couponCode: %s: %s does not apply",
                         flora_coupon_reason_name(reason), ctx->coupon_code);
         goto cleanup;
      }
      if (!flora__coupon_redeem(txn, &coupon, ctx->coupon_key, error)) {
         if (ctx->problems) {
            flora_schema_problem(ctx->problems, "couponCode",
                                 strstr(error->message, "already_used") ? "already_used" : "limit_reached");
         }
         goto cleanup;
      }
      if (bson_iter_init_find(&it, &coupon, "kind") && BSON_ITER_HOLDS_UTF8(&it)) {
         kind = bson_iter_utf8(&it, NULL);
      }
   }
   if (discount > subtotal + delivery_price) {
      discount = subtotal + delivery_price;
   }
   if (!next_number(txn, ctx->config, number, sizeof number, error)) {
      goto cleanup;
   }

   /* The order. */
   BSON_APPEND_UTF8(&draft, "number", number);
   if (ctx->customer->has_user) {
      BSON_APPEND_OID(&draft, "userId", &ctx->customer->user_id);
   } else if (ctx->customer->guest_token) {
      BSON_APPEND_UTF8(&draft, "guestToken", ctx->customer->guest_token);
   }
   BSON_APPEND_UTF8(&draft, "customerKey", ctx->customer_key);
   BSON_APPEND_DOCUMENT(&draft, "customer", ctx->customer_doc);
   BSON_APPEND_UTF8(&draft, "status", "pending_payment");
   BSON_APPEND_ARRAY_BEGIN(&draft, "statusHistory", &arr);
   BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &doc);
   BSON_APPEND_UTF8(&doc, "status", "pending_payment");
   BSON_APPEND_DATE_TIME(&doc, "at", now);
   BSON_APPEND_UTF8(&doc, "actor", ctx->customer_key[0] == 'u' ? ctx->customer_key : "system");
   bson_append_document_end(&arr, &doc);
   bson_append_array_end(&draft, &arr);
   BSON_APPEND_ARRAY_BEGIN(&draft, "items", &arr);
   bson_iter_init(&li, &lines);
   while (bson_iter_next(&li)) {
      static const char *const skip[] = {"categoryTree", NULL};
      const uint8_t *d;
      uint32_t len;
      bson_t line;

      bson_iter_document(&li, &len, &d);
      bson_init_static(&line, d, len);
      bson_uint32_to_string(n++, &k, idx, sizeof idx);
      BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &doc);
      flora__shop_copy_except(&line, &doc, skip);
      bson_append_document_end(&arr, &doc);
   }
   bson_append_array_end(&draft, &arr);
   BSON_APPEND_UTF8(&draft, "currency", flora_config_string(ctx->config, "shop.currency"));
   if (has_coupon) {
      BSON_APPEND_DOCUMENT_BEGIN(&draft, "coupon", &doc);
      bson_iter_init_find(&it, &coupon, "_id");
      bson_append_iter(&doc, "couponId", -1, &it);
      BSON_APPEND_UTF8(&doc, "code", ctx->coupon_code);
      BSON_APPEND_UTF8(&doc, "kind", kind ? kind : "fixed");
      BSON_APPEND_INT64(&doc, "discount", discount);
      BSON_APPEND_UTF8(&doc, "customerKey", ctx->coupon_key);
      bson_append_document_end(&draft, &doc);
   }
   BSON_APPEND_DOCUMENT_BEGIN(&draft, "totals", &doc);
   BSON_APPEND_INT64(&doc, "subtotal", subtotal);
   BSON_APPEND_INT64(&doc, "discount", discount);
   BSON_APPEND_INT64(&doc, "delivery", delivery_price);
   BSON_APPEND_INT64(&doc, "total", subtotal - discount + delivery_price);
   bson_append_document_end(&draft, &doc);
   BSON_APPEND_DOCUMENT_BEGIN(&draft, "delivery", &doc);
   bson_iter_init(&it, ctx->delivery);
   while (bson_iter_next(&it)) {
      bson_append_iter(&doc, bson_iter_key(&it), -1, &it);
      if (strcmp(bson_iter_key(&it), "slot") == 0) {
         BSON_APPEND_INT64(&doc, "price", delivery_price);
      }
   }
   if (!bson_empty(ctx->quote)) {
      BSON_APPEND_DOCUMENT(&doc, "quote", ctx->quote);
   }
   bson_append_document_end(&draft, &doc);
   {
      bson_iter_t d;
      const uint8_t *ddata;
      uint32_t len;
      bson_t delivery_doc;

      /* The slot's capacity, by one conditional update, in this transaction. */
      bson_iter_init_find(&d, &draft, "delivery");
      bson_iter_document(&d, &len, &ddata);
      bson_init_static(&delivery_doc, ddata, len);
      if (!flora__delivery_slot(txn, &delivery_doc, false, error)) {
         goto cleanup;
      }
   }
   if (ctx->idem_key) {
      BSON_APPEND_UTF8(&draft, "idempotencyKey", ctx->idem_key);
      BSON_APPEND_UTF8(&draft, "idempotencyScope", ctx->idem_scope);
      BSON_APPEND_UTF8(&draft, "idempotencyFingerprint", ctx->fingerprint);
   }
   if (!flora_schema_prepare_insert(&flora_schema_orders, &draft, now, &ctx->order, error)) {
      goto cleanup;
   }
   {
      bson_t p = BSON_INITIALIZER;

      ok = flora_schema_validate(&flora_schema_orders, &ctx->order, &p, error);
      if (!ok && ctx->problems) {
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
            flora_schema_problem(ctx->problems, path, reason);
         }
      }
      bson_destroy(&p);
      if (!ok) {
         goto cleanup;
      }
      ok = false;
   }
   if (!flora_store_insert_one(txn, ORDERS, &ctx->order, NULL, NULL, error)) {
      if (error && error->domain == FLORA_DOMAIN_STORE && error->code == FLORA_STORE_DUPLICATE_KEY &&
          strstr(error->message, "idempotencyScope")) {
         ctx->duplicate_key = true;
      }
      goto cleanup;
   }
   if (!flora__order_notify(txn, FLORA_EVENT_ORDER_CREATED, &ctx->order, error)) {
      goto cleanup;
   }
   if (!ctx->items && found) {
      bson_t filter = BSON_INITIALIZER;

      cart_filter(ctx->customer, &filter);
      ok = flora_store_delete_one(txn, CARTS, &filter, NULL, NULL, error);
      bson_destroy(&filter);
      if (!ok) {
         goto cleanup;
      }
   }
   ok = true;
cleanup:
   bson_destroy(&cart);
   bson_destroy(&cart_items);
   bson_destroy(&lines);
   bson_destroy(&coupon);
   bson_destroy(&draft);
   return ok;
}

bool
flora_checkout(flora_store_t *store, const flora_config_t *config, const flora_customer_t *customer,
               const bson_t *input, const char *idempotency_key, bson_t *problems, bson_t *order, bool *replayed,
               flora_error_t *error)
{
   checkout_ctx_t ctx = {0};
   bson_t cust, delivery, items, local_problems = BSON_INITIALIZER, quote = BSON_INITIALIZER;
   bson_t *probs = problems ? problems : &local_problems;
   bool has_items = false, found = false, ok = false;
   char code[48];
   bson_iter_t it;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(customer);
   FLORA_ASSERT_ARG(input);
   FLORA_ASSERT_ARG(order);
   bson_init(order);
   bson_init(&ctx.order);
   if (replayed) {
      *replayed = false;
   }
   bson_init(&cust);
   bson_init(&delivery);
   bson_init(&items);
   if (!customer->has_user && (!customer->guest_token || strlen(customer->guest_token) < 16 ||
                               strlen(customer->guest_token) > 128)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_UNAUTHORIZED,
                      "a guest checkout needs the X-Cart-Token of its cart (16-128 characters)");
      goto cleanup;
   }
   if (!flora__reject_operators(input, "", error)) {
      goto cleanup;
   }
   if (idempotency_key && (!*idempotency_key || strlen(idempotency_key) > 200)) {
      flora__shop_invalid(probs, error, "Idempotency-Key", "must be 1-200 characters");
      goto cleanup;
   }
   flora_customer_key(customer, ctx.customer_key, sizeof ctx.customer_key);
   bson_destroy(&cust);
   bson_destroy(&delivery);
   bson_destroy(&items);
   if (!check_input(input, &cust, &delivery, &items, &has_items, code, sizeof code, probs)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "the checkout is invalid");
      goto cleanup;
   }
   if (!flora_customer_coupon_key(store, customer,
                                  bson_iter_init_find(&it, &cust, "email") && BSON_ITER_HOLDS_UTF8(&it)
                                     ? bson_iter_utf8(&it, NULL)
                                     : NULL,
                                  ctx.coupon_key, sizeof ctx.coupon_key, error)) {
      goto cleanup;
   }
   if (idempotency_key) {
      /* A user's key is theirs; a guest who came without X-Cart-Token gets a new token on
       * every call, so their key is scoped by the e-mail instead (the coupon key's form). */
      snprintf(ctx.idem_scope, sizeof ctx.idem_scope, "%s",
               customer->has_user || !customer->new_guest ? ctx.customer_key : ctx.coupon_key);
      request_fingerprint(input, ctx.fingerprint);
      if (!find_by_key(store, ctx.idem_scope, idempotency_key, order, &found, error)) {
         goto cleanup;
      }
      if (found) {
         ok = same_request(order, ctx.fingerprint, error);
         if (ok && replayed) {
            *replayed = true;
         }
         goto cleanup;
      }
   }
   ctx.config = config;
   ctx.customer = customer;
   ctx.customer_doc = &cust;
   ctx.delivery = &delivery;
   ctx.items = has_items ? &items : NULL;
   ctx.coupon_code = code;
   ctx.idem_key = idempotency_key;
   ctx.problems = probs;
   /* Price the delivery before the transaction (a quote may geocode): for the subtotal of
    * the lines as they are now; the transaction refuses when it finds another. */
   {
      bson_t cart, pre_lines, filter = BSON_INITIALIZER;
      const bson_t *pre_items = has_items ? &items : NULL;
      bson_t cart_items;
      bool have_cart = false;

      bson_init(&cart);
      bson_init(&cart_items);
      if (!pre_items) {
         cart_filter(customer, &filter);
         bson_destroy(&cart);
         if (!flora_store_find_one(store, CARTS, &filter, NULL, &cart, &have_cart, error)) {
            bson_destroy(&cart);
            bson_destroy(&filter);
            goto cleanup;
         }
         if (have_cart && bson_iter_init_find(&it, &cart, "items") && BSON_ITER_HOLDS_ARRAY(&it)) {
            const uint8_t *d;
            uint32_t len;

            bson_destroy(&cart_items);
            bson_iter_array(&it, &len, &d);
            bson_init_static(&cart_items, d, len);
         }
         pre_items = &cart_items;
      }
      ok = flora__lines_resolve(store, pre_items, false, &pre_lines, &ctx.quoted_subtotal, probs, error) &&
           flora__delivery_price(store, config, ctx.quoted_subtotal, &delivery, &quote, &ctx.delivery_price, error);
      bson_destroy(&pre_lines);
      bson_destroy(&cart_items);
      bson_destroy(&cart);
      bson_destroy(&filter);
      if (!ok) {
         if (error && error->domain == FLORA_DOMAIN_SHOP && strncmp(error->message, "delivery: ", 10) == 0) {
            flora_schema_problem(probs, "delivery", error->message + 10);
         } else if (error && error->domain == FLORA_DOMAIN_VALIDATION && strncmp(error->message, "delivery: ", 10) == 0) {
            /* "delivery: date: in the past" -> {path: "delivery.date", reason: "in the past"} */
            const char *field = error->message + 10, *colon = strstr(field, ": ");
            char path[64];

            if (colon && colon - field < 48) {
               snprintf(path, sizeof path, "delivery.%.*s", (int) (colon - field), field);
               flora_schema_problem(probs, path, colon + 2);
            } else {
               flora_schema_problem(probs, "delivery", field);
            }
         }
         goto cleanup;
      }
      ok = false;
      ctx.quote = &quote;
   }
   if (!flora_store_with_transaction(store, checkout_txn, &ctx, error)) {
      if (ctx.duplicate_key && idempotency_key) {
         /* A concurrent checkout with the same key won: its order is the answer. */
         bson_destroy(order);
         if (!find_by_key(store, ctx.idem_scope, idempotency_key, order, &found, error)) {
            goto cleanup;
         }
         if (found) {
            bson_reinit(probs);
            ok = same_request(order, ctx.fingerprint, error);
            if (ok && replayed) {
               *replayed = true;
            }
         }
      }
      goto cleanup;
   }
   if (replayed) {
      *replayed = ctx.replayed;
   }
   bson_destroy(order);
   bson_copy_to(&ctx.order, order);
   ok = true;
cleanup:
   bson_destroy(&ctx.order);
   bson_destroy(&cust);
   bson_destroy(&delivery);
   bson_destroy(&items);
   bson_destroy(&quote);
   bson_destroy(&local_problems);
   return ok;
}
