/* Accounts, sessions and password resets (include/flora/users.h). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "flora/contact.h"
#include "flora/outbox.h"
#include "flora/shop.h"
#include "flora/users.h"
#include "shop/shop_private.h"
#include "shop/users_private.h"

#define USERS "users"
#define SESSIONS "sessions"
#define RESETS "password_resets"
#define TOKEN_BYTES 32
#define PASSWORD_MIN 8
#define PASSWORD_MAX 128

/* ---- roles and tokens ------------------------------------------------------------ */

const char *
flora_role_name(flora_role_t role)
{
   switch (role) {
   case FLORA_ROLE_CUSTOMER:
      return "customer";
   case FLORA_ROLE_MANAGER:
      return "manager";
   case FLORA_ROLE_ADMIN:
      return "admin";
   case FLORA_ROLE_NONE:
      break;
   }
   return "none";
}

bool
flora_role_parse(const char *name, flora_role_t *out)
{
   static const flora_role_t all[] = {FLORA_ROLE_CUSTOMER, FLORA_ROLE_MANAGER, FLORA_ROLE_ADMIN};

   FLORA_ASSERT_ARG(name);
   FLORA_ASSERT_ARG(out);
   for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
      if (strcmp(name, flora_role_name(all[i])) == 0) {
         *out = all[i];
         return true;
      }
   }
   return false;
}

void
flora_users_token_hash(const char *token, char out[65])
{
   unsigned char digest[crypto_hash_sha256_BYTES];

   FLORA_ASSERT_ARG(token);
   FLORA_ASSERT_ARG(out);
   crypto_hash_sha256(digest, (const unsigned char *) token, strlen(token));
   sodium_bin2hex(out, 65, digest, sizeof digest);
}

bool
flora__users_new_token(char token[FLORA_TOKEN_SIZE], char hash[65], flora_error_t *error)
{
   unsigned char raw[TOKEN_BYTES];

   if (sodium_init() < 0) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "libsodium failed to initialise");
      return false;
   }
   randombytes_buf(raw, sizeof raw);
   sodium_bin2base64(token, FLORA_TOKEN_SIZE, raw, sizeof raw,
                     sodium_base64_VARIANT_URLSAFE_NO_PADDING);
   sodium_memzero(raw, sizeof raw);
   flora_users_token_hash(token, hash);
   return true;
}

/* Code points of valid UTF-8 text (bytes that are not continuation bytes). */
static size_t
utf8_chars(const char *s)
{
   size_t n = 0;

   for (; *s; s++) {
      if (((unsigned char) *s & 0xC0) != 0x80) {
         n++;
      }
   }
   return n;
}

/* ---- passwords ------------------------------------------------------------------- */

static void
pwhash_params(const flora_config_t *config, unsigned long long *ops, size_t *mem)
{
   *ops = (unsigned long long) flora_config_int(config, "auth.argon2_opslimit");
   *mem = (size_t) flora_config_int(config, "auth.argon2_memlimit");
}

bool
flora__users_check_password(const char *path, const char *password, bson_t *problems,
                            flora_error_t *error)
{
   size_t chars;

   if (!bson_utf8_validate(password, strlen(password), false)) {
      return flora__shop_invalid(problems, error, path, "must be valid UTF-8");
   }
   chars = utf8_chars(password);
   if (chars < PASSWORD_MIN || chars > PASSWORD_MAX) {
      return flora__shop_invalid(problems, error, path, "must be 8 to 128 characters");
   }
   return true;
}

bool
flora__users_hash_password(const flora_config_t *config, const char *password,
                           char out[crypto_pwhash_STRBYTES], flora_error_t *error)
{
   unsigned long long ops;
   size_t mem;

   if (sodium_init() < 0) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "libsodium failed to initialise");
      return false;
   }
   pwhash_params(config, &ops, &mem);
   /* libsodium: crypto_pwhash_str uses Argon2id (crypto_pwhash_ALG_DEFAULT since 1.0.15). */
   if (crypto_pwhash_str_alg(out, password, strlen(password), ops, mem,
                             crypto_pwhash_ALG_ARGON2ID13) != 0) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM,
                      "password hashing failed (out of memory for auth.argon2_memlimit?)");
      return false;
   }
   return true;
}

/* ---- views ----------------------------------------------------------------------- */

void
flora__users_public_view(const bson_t *user, bson_t *out)
{
   static const char *const hidden[] = {"passwordHash", NULL};

   bson_init(out);
   flora__shop_copy_except(user, out, hidden);
}

static bool
oid_of(const bson_t *doc, const char *field, bson_oid_t *out)
{
   bson_iter_t it;

   if (!bson_iter_init_find(&it, doc, field) || !BSON_ITER_HOLDS_OID(&it)) {
      return false;
   }
   bson_oid_copy(bson_iter_oid(&it), out);
   return true;
}

static const char *
string_of(const bson_t *doc, const char *field)
{
   bson_iter_t it;

   if (!bson_iter_init_find(&it, doc, field) || !BSON_ITER_HOLDS_UTF8(&it)) {
      return NULL;
   }
   return bson_iter_utf8(&it, NULL);
}

bool
flora__users_find(flora_store_t *store, const bson_oid_t *user_id, bson_t *out, bool *found,
                  flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bool ok;

   BSON_APPEND_OID(&filter, "_id", user_id);
   ok = flora_store_find_one(store, USERS, &filter, NULL, out, found, error);
   bson_destroy(&filter);
   return ok;
}

bool
flora_users_get(flora_store_t *store, const bson_oid_t *user_id, bson_t *out, bool *found,
                flora_error_t *error)
{
   bson_t user;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(found);
   ok = flora__users_find(store, user_id, &user, found, error);
   if (out) {
      if (ok && *found) {
         flora__users_public_view(&user, out);
      } else {
         bson_init(out);
      }
   }
   bson_destroy(&user);
   return ok;
}

/* ---- creating users -------------------------------------------------------------- */

/* What a client sends to register (strict: anything else is a problem). */
static const flora_field_t create_input_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "email", .types = FLORA_T_STRING, .required = true,
    .minlength = 3, .maxlength = 254},
   {FLORA_FIELD_DEFAULTS, .path = "password", .types = FLORA_T_STRING, .required = true,
    .minlength = PASSWORD_MIN, .maxlength = PASSWORD_MAX},
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 100},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING, .minlength = 1, .maxlength = 32},
   {NULL},
};

const flora_schema_t flora__users_register_input = {
   .collection = "register",
   .description = "POST /api/v1/auth/register body",
   .fields = create_input_fields,
   .strict = true,
};

static const flora_field_t profile_input_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .minlength = 1, .maxlength = 100},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING | FLORA_T_NULL,
    .minlength = 1, .maxlength = 32},
   {NULL},
};

const flora_schema_t flora__users_profile_input = {
   .collection = "profile",
   .description = "PATCH /api/v1/me body",
   .fields = profile_input_fields,
   .strict = true,
};

/* Normalises the e-mail at path into out[255]; a problem when it is not an address. */
static bool
normalize_email(const char *path, const char *email, char out[255], bson_t *problems,
                flora_error_t *error)
{
   flora_error_t why = {0};

   if (!flora_email_normalize(email, out, 255, &why)) {
      return flora__shop_invalid(problems, error, path, why.message);
   }
   return true;
}

static bool
normalize_phone(const char *path, const char *phone, char out[32], bson_t *problems,
                flora_error_t *error)
{
   flora_error_t why = {0};

   if (!flora_phone_normalize(phone, out, 32, &why)) {
      return flora__shop_invalid(problems, error, path, why.message);
   }
   return true;
}

/* Validation error with the problems in one message, after every check has run. */
static bool
fail_problems(const bson_t *problems, flora_error_t *error)
{
   bson_iter_t it;
   char message[400] = "";
   size_t used = 0;

   if (bson_iter_init(&it, problems)) {
      while (bson_iter_next(&it) && used + 1 < sizeof message) {
         bson_iter_t p;
         const char *path = "", *reason = "";
         int n;

         if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &p)) {
            continue;
         }
         while (bson_iter_next(&p)) {
            if (strcmp(bson_iter_key(&p), "path") == 0 && BSON_ITER_HOLDS_UTF8(&p)) {
               path = bson_iter_utf8(&p, NULL);
            } else if (strcmp(bson_iter_key(&p), "reason") == 0 && BSON_ITER_HOLDS_UTF8(&p)) {
               reason = bson_iter_utf8(&p, NULL);
            }
         }
         n = snprintf(message + used, sizeof message - used, "%s%s: %s", used ? "; " : "", path,
                      reason);
         if (n < 0) {
            break;
         }
         used += (size_t) n < sizeof message - used ? (size_t) n : sizeof message - used - 1;
      }
   }
   flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "%s",
                   message[0] ? message : "invalid input");
   return false;
}

bool
flora__users_validate_input(const flora_schema_t *schema, const bson_t *input, bson_t *problems,
                            flora_error_t *error)
{
   bson_t local = BSON_INITIALIZER;
   bson_t *p = problems ? problems : &local;
   bool ok = flora_schema_validate(schema, input, p, error);

   bson_destroy(&local);
   return ok;
}

bool
flora_users_create(flora_store_t *store, const flora_config_t *config, const bson_t *input,
                   flora_role_t role, bson_t *problems, bson_t *out, flora_error_t *error)
{
   bson_t local = BSON_INITIALIZER;
   bson_t *p = problems ? problems : &local;
   bson_t doc = BSON_INITIALIZER;
   bson_t prepared = BSON_INITIALIZER;
   char email[255] = "";
   char phone[32] = "";
   char hash[crypto_pwhash_STRBYTES] = "";
   const char *s;
   bool ok = false;
   flora_error_t ignored = {0};

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(input);
   FLORA_ASSERT_ARG(role != FLORA_ROLE_NONE);
   if (out) {
      bson_init(out);
   }
   /* Every problem at once: the schema's, then the e-mail's and the phone's form. */
   flora_schema_validate(&flora__users_register_input, input, p, &ignored);
   s = string_of(input, "email");
   if (s && utf8_chars(s) <= 254) {
      normalize_email("email", s, email, p, &ignored);
   }
   s = string_of(input, "phone");
   if (s && strlen(s) <= 32) {
      normalize_phone("phone", s, phone, p, &ignored);
   }
   if (!bson_empty(p)) {
      fail_problems(p, error);
      goto cleanup;
   }
   if (!flora__users_hash_password(config, string_of(input, "password"), hash, error)) {
      goto cleanup;
   }
   BSON_APPEND_UTF8(&doc, "email", email);
   if (phone[0]) {
      BSON_APPEND_UTF8(&doc, "phone", phone);
   }
   BSON_APPEND_UTF8(&doc, "name", string_of(input, "name"));
   BSON_APPEND_UTF8(&doc, "role", flora_role_name(role));
   BSON_APPEND_UTF8(&doc, "passwordHash", hash);
   bson_destroy(&prepared);
   if (!flora_schema_prepare_insert(&flora_schema_users, &doc, flora__shop_now_ms(), &prepared,
                                    error) ||
       !flora_schema_validate(&flora_schema_users, &prepared, p, error)) {
      goto cleanup;
   }
   if (!flora_store_insert_one(store, USERS, &prepared, NULL, NULL, error)) {
      flora__shop_map_duplicate(error, "a user");
      goto cleanup;
   }
   if (out) {
      bson_destroy(out);
      flora__users_public_view(&prepared, out);
   }
   ok = true;
cleanup:
   sodium_memzero(hash, sizeof hash);
   bson_destroy(&doc);
   bson_destroy(&prepared);
   bson_destroy(&local);
   return ok;
}

/* ---- sessions -------------------------------------------------------------------- */

static bool
open_session(flora_store_t *store, const flora_config_t *config, const bson_oid_t *user_id,
             char token[FLORA_TOKEN_SIZE], flora_error_t *error)
{
   char hash[65];
   int64_t now = flora__shop_now_ms();
   int64_t ttl_ms = flora_config_int(config, "auth.session_ttl_s") * 1000;
   bson_t doc = BSON_INITIALIZER;
   bson_t prepared;
   bool ok;

   if (!flora__users_new_token(token, hash, error)) {
      bson_destroy(&doc);
      return false;
   }
   BSON_APPEND_UTF8(&doc, "tokenHash", hash);
   BSON_APPEND_OID(&doc, "userId", user_id);
   BSON_APPEND_DATE_TIME(&doc, "expiresAt", now + ttl_ms);
   ok = flora_schema_prepare_insert(&flora_schema_sessions, &doc, now, &prepared, error) &&
        flora_store_insert_one(store, SESSIONS, &prepared, NULL, NULL, error);
   bson_destroy(&prepared);
   bson_destroy(&doc);
   if (!ok) {
      sodium_memzero(token, FLORA_TOKEN_SIZE);
      token[0] = '\0';
   }
   return ok;
}

bool
flora_users_login(flora_store_t *store, const flora_config_t *config, const char *email,
                  const char *password, char token[FLORA_TOKEN_SIZE], bson_t *user_out,
                  flora_error_t *error)
{
   char normalized[255] = "";
   char dummy[crypto_pwhash_STRBYTES];
   flora_error_t ignored = {0};
   bson_t user = BSON_INITIALIZER;
   bson_t update = BSON_INITIALIZER;
   bson_t filter = BSON_INITIALIZER;
   bson_t set;
   const char *hash = NULL;
   bool found = false;
   bool ok = false;
   bool match = false;
   bson_oid_t id;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(email);
   FLORA_ASSERT_ARG(password);
   FLORA_ASSERT_ARG(token);
   token[0] = '\0';
   if (user_out) {
      bson_init(user_out);
   }
   if (flora_email_normalize(email, normalized, sizeof normalized, &ignored)) {
      bson_destroy(&user);
      if (!flora__shop_find_by_string(store, USERS, "email", normalized, &user, &found, error)) {
         goto cleanup;
      }
   }
   hash = found ? string_of(&user, "passwordHash") : NULL;
   if (hash && strlen(password) <= 4096) {
      match = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
   } else {
      /* The same work as a verification, so timing does not tell whether the e-mail is
       * known (the result is thrown away). */
      flora__users_hash_password(config, strlen(password) <= 4096 ? password : "", dummy,
                                 &ignored);
      sodium_memzero(dummy, sizeof dummy);
   }
   if (!match || !oid_of(&user, "_id", &id)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_UNAUTHORIZED,
                      "wrong e-mail or password");
      goto cleanup;
   }
   BSON_APPEND_OID(&filter, "_id", &id);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   BSON_APPEND_DATE_TIME(&set, "lastLoginAt", flora__shop_now_ms());
   {
      unsigned long long ops;
      size_t mem;

      pwhash_params(config, &ops, &mem);
      if (crypto_pwhash_str_needs_rehash(hash, ops, mem) != 0) {
         char fresh[crypto_pwhash_STRBYTES];

         if (flora__users_hash_password(config, password, fresh, &ignored)) {
            BSON_APPEND_UTF8(&set, "passwordHash", fresh);
         }
         sodium_memzero(fresh, sizeof fresh);
      }
   }
   bson_append_document_end(&update, &set);
   {
      bson_t prepared;
      bool updated = flora_schema_prepare_update(&flora_schema_users, &update,
                                                 flora__shop_now_ms(), &prepared, error) &&
                     flora_store_update_one(store, USERS, &filter, &prepared, NULL, NULL, error);

      bson_destroy(&prepared);
      if (!updated) {
         goto cleanup;
      }
   }
   if (!open_session(store, config, &id, token, error)) {
      goto cleanup;
   }
   if (user_out) {
      bson_destroy(user_out);
      flora__users_public_view(&user, user_out);
   }
   ok = true;
cleanup:
   bson_destroy(&user);
   bson_destroy(&update);
   bson_destroy(&filter);
   return ok;
}

bool
flora_users_logout(flora_store_t *store, const char *session_hash, flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bool ok;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(session_hash);
   BSON_APPEND_UTF8(&filter, "tokenHash", session_hash);
   ok = flora_store_delete_one(store, SESSIONS, &filter, NULL, NULL, error);
   bson_destroy(&filter);
   return ok;
}

bool
flora_users_session_resolve(flora_store_t *store, const char *token, flora_principal_t *out,
                            bool *found, flora_error_t *error)
{
   char hash[65];
   bson_t filter = BSON_INITIALIZER;
   bson_t session = BSON_INITIALIZER;
   bson_t user = BSON_INITIALIZER;
   bson_t cond;
   bson_oid_t user_id;
   bool have = false;
   bool ok = false;
   const char *role_name;
   flora_role_t role;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(token);
   FLORA_ASSERT_ARG(out);
   FLORA_ASSERT_ARG(found);
   memset(out, 0, sizeof *out);
   *found = false;
   if (strlen(token) >= FLORA_TOKEN_SIZE) {
      ok = true; /* not one of ours */
      goto cleanup;
   }
   flora_users_token_hash(token, hash);
   BSON_APPEND_UTF8(&filter, "tokenHash", hash);
   /* The TTL sweep lags: an expired session that is still stored does not count. */
   BSON_APPEND_DOCUMENT_BEGIN(&filter, "expiresAt", &cond);
   BSON_APPEND_DATE_TIME(&cond, "$gt", flora__shop_now_ms());
   bson_append_document_end(&filter, &cond);
   bson_destroy(&session);
   if (!flora_store_find_one(store, SESSIONS, &filter, NULL, &session, &have, error)) {
      goto cleanup;
   }
   if (!have || !oid_of(&session, "userId", &user_id)) {
      ok = true;
      goto cleanup;
   }
   bson_destroy(&user);
   if (!flora__users_find(store, &user_id, &user, &have, error)) {
      goto cleanup;
   }
   role_name = have ? string_of(&user, "role") : NULL;
   if (role_name && flora_role_parse(role_name, &role)) {
      out->role = role;
      out->has_user = true;
      bson_oid_copy(&user_id, &out->user_id);
      memcpy(out->session_hash, hash, sizeof out->session_hash);
      *found = true;
   }
   ok = true;
cleanup:
   bson_destroy(&filter);
   bson_destroy(&session);
   bson_destroy(&user);
   return ok;
}

bool
flora__users_end_sessions(flora_store_t *store, const bson_oid_t *user_id, const char *keep_hash,
                          flora_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bool ok;

   BSON_APPEND_OID(&filter, "userId", user_id);
   if (keep_hash && keep_hash[0]) {
      bson_t ne;

      BSON_APPEND_DOCUMENT_BEGIN(&filter, "tokenHash", &ne);
      BSON_APPEND_UTF8(&ne, "$ne", keep_hash);
      bson_append_document_end(&filter, &ne);
   }
   ok = flora_store_delete_many(store, SESSIONS, &filter, NULL, NULL, error);
   bson_destroy(&filter);
   return ok;
}

/* Sets passwordHash of the user (filter by _id). */
static bool
set_password(flora_store_t *store, const flora_config_t *config, const bson_oid_t *user_id,
             const char *password, flora_error_t *error)
{
   char hash[crypto_pwhash_STRBYTES];
   bson_t filter = BSON_INITIALIZER;
   bson_t update = BSON_INITIALIZER;
   bson_t prepared = BSON_INITIALIZER;
   bson_t reply = BSON_INITIALIZER;
   bson_t set;
   bool ok = false;
   bson_iter_t it;

   if (!flora__users_hash_password(config, password, hash, error)) {
      goto cleanup;
   }
   BSON_APPEND_OID(&filter, "_id", user_id);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   BSON_APPEND_UTF8(&set, "passwordHash", hash);
   bson_append_document_end(&update, &set);
   bson_destroy(&prepared);
   bson_destroy(&reply);
   if (!flora_schema_prepare_update(&flora_schema_users, &update, flora__shop_now_ms(), &prepared,
                                    error) ||
       !flora_store_update_one(store, USERS, &filter, &prepared, NULL, &reply, error)) {
      bson_init(&reply);
      goto cleanup;
   }
   if (!bson_iter_init_find(&it, &reply, "matchedCount") || bson_iter_as_int64(&it) == 0) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no such user");
      goto cleanup;
   }
   ok = true;
cleanup:
   sodium_memzero(hash, sizeof hash);
   bson_destroy(&filter);
   bson_destroy(&update);
   bson_destroy(&prepared);
   bson_destroy(&reply);
   return ok;
}

bool
flora_users_change_password(flora_store_t *store, const flora_config_t *config,
                            const bson_oid_t *user_id, const char *current_password,
                            const char *new_password, const char *keep_session_hash,
                            bson_t *problems, flora_error_t *error)
{
   bson_t user = BSON_INITIALIZER;
   const char *hash;
   bool found = false;
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(current_password);
   FLORA_ASSERT_ARG(new_password);
   if (!flora__users_check_password("newPassword", new_password, problems, error)) {
      goto cleanup;
   }
   bson_destroy(&user);
   if (!flora__users_find(store, user_id, &user, &found, error)) {
      goto cleanup;
   }
   hash = found ? string_of(&user, "passwordHash") : NULL;
   if (!hash || strlen(current_password) > 4096 ||
       crypto_pwhash_str_verify(hash, current_password, strlen(current_password)) != 0) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_UNAUTHORIZED,
                      "the current password is wrong");
      goto cleanup;
   }
   ok = set_password(store, config, user_id, new_password, error) &&
        flora__users_end_sessions(store, user_id, keep_session_hash, error);
cleanup:
   bson_destroy(&user);
   return ok;
}

/* ---- password reset -------------------------------------------------------------- */

/* One reset: the token record and its outbox message, written together. */
typedef struct reset_txn {
   const bson_t *reset;   /* the prepared password_resets document */
   const bson_t *payload; /* the user.password_reset message */
} reset_txn_t;

static bool
write_reset(flora_store_t *txn, void *ctx, flora_error_t *error)
{
   const reset_txn_t *r = ctx;

   return flora_store_insert_one(txn, RESETS, r->reset, NULL, NULL, error) &&
          flora_outbox_enqueue(txn, FLORA_EVENT_USER_PASSWORD_RESET, r->payload, NULL, error);
}

bool
flora_users_reset_request(flora_store_t *store, const flora_config_t *config, const char *email,
                          bool *issued, char token[FLORA_TOKEN_SIZE], bson_oid_t *user_id,
                          char email_out[255], flora_error_t *error)
{
   char normalized[255] = "";
   char hash[65];
   char url[1200] = "";
   flora_error_t ignored = {0};
   bson_t user = BSON_INITIALIZER;
   bson_t doc = BSON_INITIALIZER;
   bson_t prepared = BSON_INITIALIZER;
   bson_t payload = BSON_INITIALIZER;
   bson_t to;
   reset_txn_t txn;
   const char *name;
   bool found = false;
   bool ok = false;
   int64_t now = flora__shop_now_ms();

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(email);
   FLORA_ASSERT_ARG(issued);
   FLORA_ASSERT_ARG(token);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(email_out);
   *issued = false;
   token[0] = '\0';
   email_out[0] = '\0';
   if (!flora_email_normalize(email, normalized, sizeof normalized, &ignored)) {
      ok = true;
      goto cleanup;
   }
   bson_destroy(&user);
   if (!flora__shop_find_by_string(store, USERS, "email", normalized, &user, &found, error)) {
      goto cleanup;
   }
   if (!found || !oid_of(&user, "_id", user_id)) {
      ok = true;
      goto cleanup;
   }
   if (!flora__users_new_token(token, hash, error)) {
      goto cleanup;
   }
   BSON_APPEND_UTF8(&doc, "tokenHash", hash);
   BSON_APPEND_OID(&doc, "userId", user_id);
   BSON_APPEND_DATE_TIME(&doc, "expiresAt", now + flora_config_int(config, "auth.reset_ttl_s") * 1000);
   bson_destroy(&prepared);
   if (!flora_schema_prepare_insert(&flora_schema_password_resets, &doc, now, &prepared, error)) {
      goto cleanup;
   }
   /* The message carries the link (the token is base64url: safe in a URL as it is). */
   snprintf(url, sizeof url, "%s%s", flora_config_string(config, "auth.reset_url"), token);
   BSON_APPEND_OID(&payload, "userId", user_id);
   BSON_APPEND_UTF8(&payload, "resetUrl", url);
   name = string_of(&user, "name");
   if (name) {
      BSON_APPEND_UTF8(&payload, "name", name);
   }
   BSON_APPEND_DOCUMENT_BEGIN(&payload, "to", &to);
   BSON_APPEND_UTF8(&to, "email", normalized);
   BSON_APPEND_UTF8(&to, "locale", "ru");
   bson_append_document_end(&payload, &to);
   txn.reset = &prepared;
   txn.payload = &payload;
   if (!flora_store_with_transaction(store, write_reset, &txn, error)) {
      goto cleanup;
   }
   snprintf(email_out, 255, "%s", normalized);
   *issued = true;
   ok = true;
cleanup:
   if (!ok || !*issued) {
      sodium_memzero(token, FLORA_TOKEN_SIZE);
      token[0] = '\0';
   }
   sodium_memzero(url, sizeof url);
   bson_destroy(&user);
   bson_destroy(&doc);
   bson_destroy(&prepared);
   bson_destroy(&payload);
   return ok;
}

bool
flora_users_reset_confirm(flora_store_t *store, const flora_config_t *config, const char *token,
                          const char *new_password, bson_t *problems, flora_error_t *error)
{
   char hash[65];
   bson_t filter = BSON_INITIALIZER;
   bson_t update = BSON_INITIALIZER;
   bson_t prepared = BSON_INITIALIZER;
   bson_t opts = BSON_INITIALIZER;
   bson_t reset = BSON_INITIALIZER;
   bson_t child;
   bson_oid_t user_id;
   bool found = false;
   bool ok = false;
   int64_t now = flora__shop_now_ms();

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(token);
   FLORA_ASSERT_ARG(new_password);
   if (!flora__users_check_password("password", new_password, problems, error)) {
      goto cleanup;
   }
   if (strlen(token) >= FLORA_TOKEN_SIZE) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_UNAUTHORIZED,
                      "the reset token is invalid, used or expired");
      goto cleanup;
   }
   flora_users_token_hash(token, hash);
   /* Single use: only the update that finds usedAt null (and the token unexpired) wins. */
   BSON_APPEND_UTF8(&filter, "tokenHash", hash);
   BSON_APPEND_NULL(&filter, "usedAt");
   BSON_APPEND_DOCUMENT_BEGIN(&filter, "expiresAt", &child);
   BSON_APPEND_DATE_TIME(&child, "$gt", now);
   bson_append_document_end(&filter, &child);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &child);
   BSON_APPEND_DATE_TIME(&child, "usedAt", now);
   bson_append_document_end(&update, &child);
   BSON_APPEND_UTF8(&opts, "returnDocument", "after");
   bson_destroy(&prepared);
   bson_destroy(&reset);
   if (!flora_schema_prepare_update(&flora_schema_password_resets, &update, now, &prepared,
                                    error)) {
      bson_init(&reset);
      goto cleanup;
   }
   if (!flora_store_find_one_and_update(store, RESETS, &filter, &prepared, &opts, &reset, &found,
                                        error)) {
      goto cleanup;
   }
   if (!found || !oid_of(&reset, "userId", &user_id)) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_UNAUTHORIZED,
                      "the reset token is invalid, used or expired");
      goto cleanup;
   }
   ok = set_password(store, config, &user_id, new_password, error) &&
        flora__users_end_sessions(store, &user_id, NULL, error);
cleanup:
   bson_destroy(&filter);
   bson_destroy(&update);
   bson_destroy(&prepared);
   bson_destroy(&opts);
   bson_destroy(&reset);
   return ok;
}

/* ---- profile --------------------------------------------------------------------- */

bool
flora_users_update_profile(flora_store_t *store, const bson_oid_t *user_id, const bson_t *patch,
                           bson_t *problems, bson_t *out, flora_error_t *error)
{
   bson_t local = BSON_INITIALIZER;
   bson_t *p = problems ? problems : &local;
   bson_t filter = BSON_INITIALIZER;
   bson_t update = BSON_INITIALIZER;
   bson_t prepared = BSON_INITIALIZER;
   bson_t opts = BSON_INITIALIZER;
   bson_t user = BSON_INITIALIZER;
   bson_t set, unset;
   bson_iter_t it;
   char phone[32] = "";
   const char *name;
   bool remove_phone = false;
   bool found = false;
   bool ok = false;
   flora_error_t ignored = {0};

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(user_id);
   FLORA_ASSERT_ARG(patch);
   if (out) {
      bson_init(out);
   }
   flora_schema_validate(&flora__users_profile_input, patch, p, &ignored);
   if (bson_iter_init_find(&it, patch, "phone")) {
      if (BSON_ITER_HOLDS_NULL(&it)) {
         remove_phone = true;
      } else if (BSON_ITER_HOLDS_UTF8(&it) && strlen(bson_iter_utf8(&it, NULL)) <= 32) {
         normalize_phone("phone", bson_iter_utf8(&it, NULL), phone, p, &ignored);
      }
   }
   if (!bson_empty(p)) {
      fail_problems(p, error);
      goto cleanup;
   }
   name = string_of(patch, "name");
   BSON_APPEND_OID(&filter, "_id", user_id);
   BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
   if (name) {
      BSON_APPEND_UTF8(&set, "name", name);
   }
   if (phone[0]) {
      BSON_APPEND_UTF8(&set, "phone", phone);
   }
   bson_append_document_end(&update, &set);
   if (remove_phone) {
      BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
      BSON_APPEND_UTF8(&unset, "phone", "");
      bson_append_document_end(&update, &unset);
   }
   BSON_APPEND_UTF8(&opts, "returnDocument", "after");
   bson_destroy(&prepared);
   bson_destroy(&user);
   if (!flora_schema_prepare_update(&flora_schema_users, &update, flora__shop_now_ms(), &prepared,
                                    error)) {
      bson_init(&user);
      goto cleanup;
   }
   if (!flora_store_find_one_and_update(store, USERS, &filter, &prepared, &opts, &user, &found,
                                        error)) {
      flora__shop_map_duplicate(error, "a user");
      goto cleanup;
   }
   if (!found) {
      flora_error_set(error, FLORA_DOMAIN_SHOP, FLORA_ERR_NOT_FOUND, "no such user");
      goto cleanup;
   }
   if (out) {
      bson_destroy(out);
      flora__users_public_view(&user, out);
   }
   ok = true;
cleanup:
   bson_destroy(&local);
   bson_destroy(&filter);
   bson_destroy(&update);
   bson_destroy(&prepared);
   bson_destroy(&opts);
   bson_destroy(&user);
   return ok;
}
