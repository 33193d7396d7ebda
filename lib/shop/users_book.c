/* The address book, favourites and the administration of users (include/flora/users.h).
 * Every bound is in the filter of the one update that adds (DESIGN.md section 3). */
#include <stdio.h>
#include <string.h>

#include "flora/contact.h"
#include "flora/shop.h"
#include "flora/users.h"
#include "shop/shop_private.h"
#include "shop/users_private.h"

#define USERS "users"
#define PRODUCTS "products"

/* ---- address input --------------------------------------------------------------- */

static const flora_field_t address_input_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "label", .types = FLORA_T_STRING, .maxlength = 50},
   {FLORA_FIELD_DEFAULTS, .path = "recipientName", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 100},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 32},
   {FLORA_FIELD_DEFAULTS, .path = "text", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 500},
   {FLORA_FIELD_DEFAULTS, .path = "lat", .types = FLORA_T_NUMBER, .has_min = true, .min = -90,
    .has_max = true, .max = 90},
   {FLORA_FIELD_DEFAULTS, .path = "lon", .types = FLORA_T_NUMBER, .has_min = true, .min = -180,
    .has_max = true, .max = 180},
   {FLORA_FIELD_DEFAULTS, .path = "isDefault", .types = FLORA_T_BOOL},
   {NULL},
};

/* POST /api/v1/me/addresses body. */
static const flora_schema_t address_input = {
   .collection = "address",
   .description = "an address of the address book",
   .fields = address_input_fields,
   .strict = true,
};

/* The same fields, none required (PATCH). */
static const flora_field_t address_patch_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "label", .types = FLORA_T_STRING, .maxlength = 50},
   {FLORA_FIELD_DEFAULTS, .path = "recipientName", .types = FLORA_T_STRING, .minlength = 1,
    .maxlength = 100},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING, .minlength = 1, .maxlength = 32},
   {FLORA_FIELD_DEFAULTS, .path = "text", .types = FLORA_T_STRING, .minlength = 1, .maxlength = 500},
   {FLORA_FIELD_DEFAULTS, .path = "lat", .types = FLORA_T_NUMBER, .has_min = true, .min = -90,
    .has_max = true, .max = 90},
   {FLORA_FIELD_DEFAULTS, .path = "lon", .types = FLORA_T_NUMBER, .has_min = true, .min = -180,
    .has_max = true, .max = 180},
   {FLORA_FIELD_DEFAULTS, .path = "isDefault", .types = FLORA_T_BOOL},
   {NULL},
};

static const flora_schema_t address_patch = {
   .collection = "address",
   .description = "changes to an address",
   .fields = address_patch_fields,
   .strict = true,
};

/* Validates input against schema and normalises its phone; copies the accepted fields into
 * *fields (initialised here) with the phone in E.164. Every problem goes to problems. */
static bool
read_address(const flora_schema_t *schema, const bson_t *input, bson_t *problems, bson_t *fields,
             flora_error_t *error)
{
   bson_t local = BSON_INITIALIZER;
   bson_t *p = problems ? problems : &local;
   flora_error_t ignored = {0};
   bson_iter_t it;
   char phone[32] = "";
   bool ok;

   bson_init(fields);
   flora_schema_validate(schema, input, p, &ignored);
   if (bson_iter_init_find(&it, input, "phone") && BSON_ITER_HOLDS_UTF8(&it) &&
       strlen(bson_iter_utf8(&it, NULL)) <= 32) {
      flora_error_t why = {0};

      if (!flora_phone_normalize(bson_iter_utf8(&it, NULL), phone, sizeof phone, &why)) {
         flora_schema_problem(p, "phone", why.message);
      }
   }
   ok = bson_empty(p);
   if (!ok) {
      char message[300];
      bson_iter_t pi;

      snprintf(message, sizeof message, "invalid address");
      if (bson_iter_init(&pi, p) && bson_iter_next(&pi) && BSON_ITER_HOLDS_DOCUMENT(&pi)) {
         bson_iter_t f;
         const char *path = "", *reason = "";

         bson_iter_recurse(&pi, &f);
         while (bson_iter_next(&f)) {
            if (strcmp(bson_iter_key(&f), "path") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
               path = bson_iter_utf8(&f, NULL);
            } else if (strcmp(bson_iter_key(&f), "reason") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
               reason = bson_iter_utf8(&f, NULL);
            }
         }
         snprintf(message, sizeof message, "%s: %s", path, reason);
      }
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "%s", message);
   } else if (bson_iter_init(&it, input)) {
      while (bson_iter_next(&it)) {
         if (strcmp(bson_iter_key(&it), "phone") == 0) {
            BSON_APPEND_UTF8(fields, "phone", phone);
         } else {
            bson_append_iter(fields, bson_iter_key(&it), -1, &it);
         }
      }
   }
   bson_destroy(&local);
   return ok;
}

static bool
bool_field(const bson_t *doc, const char *name)
{
   bson_iter_t it;

   return bson_iter_init_find(&it, doc, name) && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
}

/* Runs update (timestamps added) on the user matching filter; *out the user after. */
static bool
update_user(flora_store_t *store, const bson_t *filter, const bson_t *update, bson_t *user,
            bool *found, flora_error_t *error)
{
   bson_t prepared;
   bson_t opts = BSON_INITIALIZER;
   bool ok;

   BSON_APPEND_UTF8(&opts, "returnDocument", "after");
   ok = flora_schema_prepare_update(&flora_schema_users, update, flora__shop_now_ms(), &prepared,
                                    error);
   if (ok) {
      ok = flora_store_find_one_and_update(store, USERS, filter, &prepared, &opts, user, found,
                                           error);
   } else {
      bson_init(user);
      *found = false;
   }
   bson_destroy(&prepared);
   bson_destroy(&opts);
   return ok;
}

/* Clears isDefault on every address of the user but keep_id. */
static bool
clear_other_defaults(flora_store_t *store, const bson_oid_t *user_id, const bson_oid_t *keep_id,
                     flora_error_t *error)
{
   bson_t *filter = BCON_NEW("_id", BCON_OID(user_id));
   bson_t *update = BCON_NEW("$set", "{", "addresses.$[other].isDefault", BCON_BOOL(false), "}");
   bson_t *opts = BCON_NEW("arrayFilters", "[", "{", "other._id", "{", "$ne", BCON_OID(keep_id),
                           "}", "}", "]");
   bson_t prepared;
   bool ok = flora_schema_prepare_update(&flora_schema_users, update, flora__shop_now_ms(),
                                         &prepared, error) &&
             flora_store_update_one(store, USERS, filter, &prepared, opts, NULL, error);

   bson_destroy(&prepared);
   bson_destroy(filter);
   bson_destroy(update);
   bson_destroy(opts);
   return ok;
}

/* The address with this id in the user's document, copied into *out. */
static bool
find_address(const bson_t *user, const bson_oid_t *address_id, bson_t *out)
{
   bson_iter_t it, arr;

   if (!bson_iter_init_find(&it, user, "addresses") || !BSON_ITER_HOLDS_ARRAY(&it) ||
       !bson_iter_recurse(&it, &arr)) {
      return false;
   }
   while (bson_iter_next(&arr)) {
      const uint8_t *data;
      uint32_t len;
      bson_t addr;
      bson_iter_t id;

      if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) {
         continue;
      }
      bson_iter_document(&arr, &len, &data);
      if (!bson_init_static(&addr, data, len)) {
         continue;
      }
      if (bson_iter_init_find(&id, &addr, "_id") && BSON_ITER_HOLDS_OID(&id) &&
          bson_oid_equal(bson_iter_oid(&id), address_id)) {
         bson_copy_to(&addr, out);
         return true;
      }
   }
   return false;
}

static int
address_count(const bson_t *user)
{
   bson_iter_t it, arr;
   int n = 0;

   if (bson_iter_init_find(&it, user, "addresses") && BSON_ITER_HOLDS_ARRAY(&it) &&
       bson_iter_recurse(&it, &arr)) {
      while (bson_iter_next(&arr)) {
         n++;
      }
   }
   return n;
}

bool
flora_users_address_add(flora_store_t *store, const bson_oid_t *user_id, const bson_t *input,
                        bson_t *problems, bson_t *out, flora_error_t *error)
{
   bson_t fields = BSON_INITIALIZER;
   bson_t address = BSON_INITIALIZER;
   bson_t filter = BSON_INITIALIZER;
   bson_t update = BSON_INITIALIZER;
   bson_t user = BSON_INITIALIZER;
   bson_t child, push;
   bson_oid_t address_id;
   char bound[32];
   bool found = false;
   bool ok = false;
   bool make_default;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(input);
   if (out) {
      bson_init(out);
   }
   bson_destroy(&fields);
   if (!read_address(&address_input, input, problems, &fields, error)) {
      goto cleanup;
   }
   bson_oid_init(&address_id, NULL);
   BSON_APPEND_OID(&address, "_id", &address_id);
   {
      static const char *const skip[] = {"isDefault", NULL};

      flora__shop_copy_except(&fields, &address, skip);
   }
   make_default = bool_field(&fields, "isDefault");
   /* The first address is the default whatever the input says: "addresses.0" missing. */
   BSON_APPEND_OID(&filter, "_id", user_id);
   snprintf(bound, sizeof bound, "addresses.%d", FLORA_USERS_MAX_ADDRESSES - 1);
   BSON_APPEND_DOCUMENT_BEGIN(&filter, bound, &child);
   BSON_APPEND_BOOL(&child, "$exists", false);
   bson_append_document_end(&filter, &child);
   BSON_APPEND_BOOL(&address, "isDefault", make_default);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$push", &push);
   BSON_APPEND_DOCUMENT(&push, "addresses", &address);
   bson_append_document_end(&update, &push);
   bson_destroy(&user);
   if (!update_user(store, &filter, &update, &user, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      bool exists = false;
      bson_t probe;

      if (!flora__users_find(store, user_id, &probe, &exists, error)) {
         bson_destroy(&probe);
         goto cleanup;
      }
      bson_destroy(&probe);
      if (exists) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                         "addresses: the address book is full (at most %d)",
                         FLORA_USERS_MAX_ADDRESSES);
      } else {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no such user");
      }
      goto cleanup;
   }
   if (make_default || address_count(&user) == 1) {
      bson_t fix = BSON_INITIALIZER;
      bson_t set;
      bson_t *fix_filter = BCON_NEW("_id", BCON_OID(user_id), "addresses._id",
                                    BCON_OID(&address_id));

      BSON_APPEND_DOCUMENT_BEGIN(&fix, "$set", &set);
      BSON_APPEND_BOOL(&set, "addresses.$.isDefault", true);
      bson_append_document_end(&fix, &set);
      bson_destroy(&user);
      ok = clear_other_defaults(store, user_id, &address_id, error) &&
           update_user(store, fix_filter, &fix, &user, &found, error);
      bson_destroy(&fix);
      bson_destroy(fix_filter);
      if (!ok) {
         goto cleanup;
      }
      ok = false;
   }
   if (out) {
      bson_destroy(out);
      bson_init(out);
      if (!find_address(&user, &address_id, out)) {
         bson_copy_to(&address, out);
      }
   }
   ok = true;
cleanup:
   bson_destroy(&fields);
   bson_destroy(&address);
   bson_destroy(&filter);
   bson_destroy(&update);
   bson_destroy(&user);
   return ok;
}

bool
flora_users_address_update(flora_store_t *store, const bson_oid_t *user_id,
                           const bson_oid_t *address_id, const bson_t *patch, bson_t *problems,
                           bson_t *out, flora_error_t *error)
{
   bson_t fields = BSON_INITIALIZER;
   bson_t update = BSON_INITIALIZER;
   bson_t user = BSON_INITIALIZER;
   bson_t *filter = NULL;
   bson_t set;
   bson_iter_t it;
   bool found = false;
   bool ok = false;
   bool make_default;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(address_id);
   FLORA_ASSERT_ARG(patch);
   if (out) {
      bson_init(out);
   }
   bson_destroy(&fields);
   if (!read_address(&address_patch, patch, problems, &fields, error)) {
      goto cleanup;
   }
   make_default = bool_field(&fields, "isDefault");
   filter = BCON_NEW("_id", BCON_OID(user_id), "addresses._id", BCON_OID(address_id));
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   if (bson_iter_init(&it, &fields)) {
      while (bson_iter_next(&it)) {
         char path[64];

         snprintf(path, sizeof path, "addresses.$.%s", bson_iter_key(&it));
         bson_append_iter(&set, path, -1, &it);
      }
   }
   bson_append_document_end(&update, &set);
   bson_destroy(&user);
   if (!update_user(store, filter, &update, &user, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no such address");
      goto cleanup;
   }
   if (make_default) {
      bson_t again;

      if (!clear_other_defaults(store, user_id, address_id, error) ||
          !flora__users_find(store, user_id, &again, &found, error)) {
         goto cleanup;
      }
      bson_destroy(&user);
      user = again;
   }
   if (out) {
      bson_destroy(out);
      bson_init(out);
      find_address(&user, address_id, out);
   }
   ok = true;
cleanup:
   bson_destroy(&fields);
   bson_destroy(&update);
   bson_destroy(&user);
   bson_destroy(filter);
   return ok;
}

bool
flora_users_address_delete(flora_store_t *store, const bson_oid_t *user_id,
                           const bson_oid_t *address_id, flora_error_t *error)
{
   bson_t *filter;
   bson_t *update;
   bson_t user;
   bool found = false;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(address_id);
   filter = BCON_NEW("_id", BCON_OID(user_id), "addresses._id", BCON_OID(address_id));
   update = BCON_NEW("$pull", "{", "addresses", "{", "_id", BCON_OID(address_id), "}", "}");
   ok = update_user(store, filter, update, &user, &found, error);
   if (ok && !found) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no such address");
      ok = false;
   }
   bson_destroy(&user);
   bson_destroy(filter);
   bson_destroy(update);
   return ok;
}

/* ---- favourites ------------------------------------------------------------------ */

bool
flora_users_favourite_add(flora_store_t *store, const bson_oid_t *user_id,
                          const bson_oid_t *product_id, flora_error_t *error)
{
   bson_t product;
   bson_t user = BSON_INITIALIZER;
   bson_t *pfilter = NULL;
   bson_t *filter = NULL;
   bson_t *update = NULL;
   char bound[32];
   bool found = false;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(product_id);
   pfilter = BCON_NEW("_id", BCON_OID(product_id));
   if (!flora_store_find_one(store, PRODUCTS, pfilter, NULL, &product, &found, error)) {
      bson_destroy(&product);
      goto cleanup;
   }
   bson_destroy(&product);
   if (!found) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no such product");
      goto cleanup;
   }
   /* Already there, or room for one more: one update whose filter holds the bound. */
   snprintf(bound, sizeof bound, "favourites.%d", FLORA_USERS_MAX_FAVOURITES - 1);
   filter = BCON_NEW("_id", BCON_OID(user_id), "$or", "[", "{", "favourites", BCON_OID(product_id),
                     "}", "{", bound, "{", "$exists", BCON_BOOL(false), "}", "}", "]");
   update = BCON_NEW("$addToSet", "{", "favourites", BCON_OID(product_id), "}");
   bson_destroy(&user);
   if (!update_user(store, filter, update, &user, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      bson_t probe;
      bool exists = false;

      if (!flora__users_find(store, user_id, &probe, &exists, error)) {
         bson_destroy(&probe);
         goto cleanup;
      }
      bson_destroy(&probe);
      if (exists) {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_CONFLICT,
                         "favourites: at most %d products", FLORA_USERS_MAX_FAVOURITES);
      } else {
         flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no such user");
      }
      goto cleanup;
   }
   ok = true;
cleanup:
   bson_destroy(&user);
   bson_destroy(pfilter);
   bson_destroy(filter);
   bson_destroy(update);
   return ok;
}

bool
flora_users_favourite_remove(flora_store_t *store, const bson_oid_t *user_id,
                             const bson_oid_t *product_id, flora_error_t *error)
{
   bson_t *filter;
   bson_t *update;
   bson_t user;
   bool found = false;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(product_id);
   filter = BCON_NEW("_id", BCON_OID(user_id));
   update = BCON_NEW("$pull", "{", "favourites", BCON_OID(product_id), "}");
   ok = update_user(store, filter, update, &user, &found, error);
   if (ok && !found) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no such user");
      ok = false;
   }
   bson_destroy(&user);
   bson_destroy(filter);
   bson_destroy(update);
   return ok;
}

/* ---- administration -------------------------------------------------------------- */

bool
flora_users_list(flora_store_t *store, flora_role_t role, int64_t page, int64_t page_size,
                 bson_t *out, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bson_t *opts = NULL;
   bson_t items;
   flora_cursor_t *cursor = NULL;
   const bson_t *doc;
   int64_t total = 0;
   uint32_t i = 0;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(page >= 1 && page <= 1000000);
   FLORA_ASSERT_ARG(page_size >= 1 && page_size <= 100);
   bson_init(out);
   if (role != FLORA_ROLE_NONE) {
      BSON_APPEND_UTF8(&filter, "role", flora_role_name(role));
   }
   opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "skip",
                   BCON_INT64((page - 1) * page_size), "limit", BCON_INT64(page_size),
                   "projection", "{", "passwordHash", BCON_INT32(0), "}");
   if (!flora_store_count_documents(store, USERS, &filter, NULL, &total, error) ||
       !flora_store_find(store, USERS, &filter, opts, &cursor, error)) {
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN(out, "items", &items);
   while (flora_cursor_next(cursor, &doc)) {
      char key[16];
      const char *k;
      bson_t view;

      bson_uint32_to_string(i++, &k, key, sizeof key);
      flora__users_public_view(doc, &view);
      BSON_APPEND_DOCUMENT(&items, k, &view);
      bson_destroy(&view);
   }
   bson_append_array_end(out, &items);
   if (flora_cursor_error(cursor, error)) {
      goto cleanup;
   }
   BSON_APPEND_INT64(out, "total", total);
   BSON_APPEND_INT64(out, "page", page);
   BSON_APPEND_INT64(out, "pageSize", page_size);
   ok = true;
cleanup:
   if (!ok) {
      bson_reinit(out);
   }
   flora_cursor_destroy(cursor);
   bson_destroy(&filter);
   bson_destroy(opts);
   return ok;
}

bool
flora_users_set_role(flora_store_t *store, const bson_oid_t *user_id, flora_role_t role,
                     bson_t *out, flora_error_t *error)
{
   bson_t *filter;
   bson_t *update;
   bson_t user;
   bool found = false;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(role != FLORA_ROLE_NONE);
   if (out) {
      bson_init(out);
   }
   filter = BCON_NEW("_id", BCON_OID(user_id));
   update = BCON_NEW("$set", "{", "role", BCON_UTF8(flora_role_name(role)), "}");
   ok = update_user(store, filter, update, &user, &found, error);
   if (ok && !found) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no such user");
      ok = false;
   }
   if (ok && out) {
      bson_destroy(out);
      flora__users_public_view(&user, out);
   }
   bson_destroy(&user);
   bson_destroy(filter);
   bson_destroy(update);
   return ok;
}
