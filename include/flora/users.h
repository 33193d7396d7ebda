/* Users, sessions, password resets and authentication rate limits (DESIGN.md sections 3
 * and 5). Document shapes: docs/schema/users.md, sessions.md, password_resets.md and
 * rate_limits.md (generated from lib/shop/users_schema.c).
 *
 * Passwords are hashed with Argon2id through libsodium's crypto_pwhash_str (the encoded
 * string holds the algorithm, salt and parameters; libsodium documentation, "Password
 * hashing"); the cost comes from the configuration keys auth.argon2_opslimit and
 * auth.argon2_memlimit (defaults crypto_pwhash_OPSLIMIT_INTERACTIVE and
 * crypto_pwhash_MEMLIMIT_INTERACTIVE).
 *
 * Tokens (sessions, password resets) are 32 random bytes (randombytes_buf) encoded as
 * base64url without padding (RFC 4648 section 5): 43 characters, given to the client once.
 * The store keeps only their SHA-256 (crypto_hash_sha256) as 64 lowercase hex digits.
 * Sessions and resets expire through TTL indexes on expiresAt, and every lookup also
 * checks expiresAt, since TTL sweeps lag (MongoDB manual, "TTL Indexes": the monitor runs
 * every 60 seconds).
 *
 * Client data never reaches a store filter: every function takes the values it filters by
 * as C strings or ObjectIds. Public views of a user (every `out` below) never contain
 * passwordHash.
 *
 * Errors: VALIDATION (with {path, reason} problems appended to `problems` when given, HTTP
 * 422), SHOP FLORA_ERR_UNAUTHORIZED (bad credentials or token, 401), FLORA_ERR_NOT_FOUND,
 * FLORA_ERR_CONFLICT (a duplicate e-mail or phone, a full address book), FLORA_ERR_RATE_LIMITED
 * (429), and the store's. Every `bson_t *out` is initialised by the callee and destroyed by
 * the caller; it may be NULL when the caller does not want it. */
#ifndef FLORA_USERS_H
#define FLORA_USERS_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/config.h"
#include "flora/error.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum flora_role {
   FLORA_ROLE_NONE = 0, /* anonymous */
   FLORA_ROLE_CUSTOMER,
   FLORA_ROLE_MANAGER,
   FLORA_ROLE_ADMIN,
} flora_role_t;

/* Who is making a request. */
typedef struct flora_principal {
   flora_role_t role;     /* NONE: anonymous */
   bool has_user;         /* false for the configured admin token (ops bootstrap) */
   bson_oid_t user_id;
   char session_hash[65]; /* hex SHA-256 of the session token, for logout ("" without one) */
} flora_principal_t;

#define FLORA_USERS_MAX_ADDRESSES 10
#define FLORA_USERS_MAX_FAVOURITES 100
/* Room for a token: 43 characters and the NUL. */
#define FLORA_TOKEN_SIZE 64

/* "customer", "manager", "admin" ("none" for FLORA_ROLE_NONE). */
const char *flora_role_name(flora_role_t role);
/* Parses "customer" | "manager" | "admin"; false for anything else. */
bool flora_role_parse(const char *name, flora_role_t *out);

/* Hex SHA-256 of a token into out[65]. */
void flora_users_token_hash(const char *token, char out[65]);

/* ---- accounts -------------------------------------------------------------------- */

/* Creates a user from input {email, password, name, phone?} (strict: unknown fields are
 * problems) with the given role. The e-mail is normalised (flora_email_normalize), the
 * phone to E.164 (flora_phone_normalize); the password (8 to 128 characters) is hashed.
 * CONFLICT naming "email" or "phone" when another user has it (unique indexes). *out: the
 * public view of the new user. */
bool flora_users_create(flora_store_t *store, const flora_config_t *config, const bson_t *input,
                        flora_role_t role, bson_t *problems, bson_t *out, flora_error_t *error);

/* Checks the credentials and opens a session of auth.session_ttl_s seconds: the token goes
 * to token[FLORA_TOKEN_SIZE] (shown once), *user_out gets the public view. A wrong password
 * and an unknown e-mail give the same UNAUTHORIZED error after the same work (an unknown
 * e-mail hashes the password anyway). Records lastLoginAt. A hash made with other
 * parameters than the configured ones is re-hashed on success (crypto_pwhash_str_needs_rehash). */
bool flora_users_login(flora_store_t *store, const flora_config_t *config, const char *email,
                       const char *password, char token[FLORA_TOKEN_SIZE], bson_t *user_out,
                       flora_error_t *error);

/* Deletes the session with this token hash (hex SHA-256); deleting a missing one succeeds. */
bool flora_users_logout(flora_store_t *store, const char *session_hash, flora_error_t *error);

/* Resolves a session token into *out: the user's current role (so a demotion takes effect
 * at once), user id and session hash. *found is false (and *out anonymous) for an unknown
 * or expired token, or a session whose user is gone. */
bool flora_users_session_resolve(flora_store_t *store, const char *token, flora_principal_t *out,
                                 bool *found, flora_error_t *error);

/* The public view of a user; *found false when none. */
bool flora_users_get(flora_store_t *store, const bson_oid_t *user_id, bson_t *out, bool *found,
                     flora_error_t *error);

/* Applies {name?, phone? (string, or null to remove)} (strict). *out: the new public view.
 * NOT_FOUND, CONFLICT "phone". */
bool flora_users_update_profile(flora_store_t *store, const bson_oid_t *user_id, const bson_t *patch,
                                bson_t *problems, bson_t *out, flora_error_t *error);

/* Changes the password after checking the current one (UNAUTHORIZED when wrong) and deletes
 * every session of the user except the one with keep_session_hash (may be NULL: all). */
bool flora_users_change_password(flora_store_t *store, const flora_config_t *config,
                                 const bson_oid_t *user_id, const char *current_password,
                                 const char *new_password, const char *keep_session_hash,
                                 bson_t *problems, flora_error_t *error);

/* ---- password reset -------------------------------------------------------------- */

/* Issues a reset token valid for auth.reset_ttl_s seconds when a user has this e-mail:
 * *issued true, the token in token[FLORA_TOKEN_SIZE] and the user's id and normalised
 * e-mail in *user_id and email_out[255]. In the same transaction as the token record, an
 * outbox message "user.password_reset" (include/flora/outbox.h) is written with
 * {userId, resetUrl: auth.reset_url + token, name, to: {email, locale: "ru"}}; the
 * notification worker e-mails it. For an unknown or malformed
 * e-mail *issued is false and the call still succeeds, so a caller answers the same
 * either way. */
bool flora_users_reset_request(flora_store_t *store, const flora_config_t *config,
                               const char *email, bool *issued, char token[FLORA_TOKEN_SIZE],
                               bson_oid_t *user_id, char email_out[255], flora_error_t *error);

/* Uses a reset token once (one conditional update {tokenHash, usedAt: null, expiresAt >
 * now} -> usedAt: now), sets the new password and deletes every session of the user.
 * UNAUTHORIZED for an unknown, used or expired token; VALIDATION for a bad password. */
bool flora_users_reset_confirm(flora_store_t *store, const flora_config_t *config,
                               const char *token, const char *new_password, bson_t *problems,
                               flora_error_t *error);

/* ---- address book and favourites ------------------------------------------------- */

/* Adds {label?, recipientName, phone, text, lat?, lon?, isDefault?} (strict) with a new
 * _id; at most FLORA_USERS_MAX_ADDRESSES, enforced by the update's filter (CONFLICT when
 * full). The first address, or one with isDefault true, becomes the only default. *out:
 * the stored address. */
bool flora_users_address_add(flora_store_t *store, const bson_oid_t *user_id, const bson_t *input,
                             bson_t *problems, bson_t *out, flora_error_t *error);

/* Updates fields of one address (same fields, all optional). NOT_FOUND when the user has
 * no such address. *out: the stored address. */
bool flora_users_address_update(flora_store_t *store, const bson_oid_t *user_id,
                                const bson_oid_t *address_id, const bson_t *patch,
                                bson_t *problems, bson_t *out, flora_error_t *error);

/* Removes one address; NOT_FOUND when the user has no such address. */
bool flora_users_address_delete(flora_store_t *store, const bson_oid_t *user_id,
                                const bson_oid_t *address_id, flora_error_t *error);

/* Adds a product to the favourites (idempotent: $addToSet); the bound
 * FLORA_USERS_MAX_FAVOURITES is in the update's filter (CONFLICT when full). NOT_FOUND for
 * an unknown product. */
bool flora_users_favourite_add(flora_store_t *store, const bson_oid_t *user_id,
                               const bson_oid_t *product_id, flora_error_t *error);
/* Removes it (idempotent). */
bool flora_users_favourite_remove(flora_store_t *store, const bson_oid_t *user_id,
                                  const bson_oid_t *product_id, flora_error_t *error);

/* ---- administration -------------------------------------------------------------- */

/* One page of users, newest first: *out = {items: [public view...], total, page,
 * pageSize}. role FLORA_ROLE_NONE lists every role. page from 1, page_size 1..100. */
bool flora_users_list(flora_store_t *store, flora_role_t role, int64_t page, int64_t page_size,
                      bson_t *out, flora_error_t *error);

/* Sets a user's role; sessions keep working and carry the new role at once. *out: the new
 * public view. NOT_FOUND when none. */
bool flora_users_set_role(flora_store_t *store, const bson_oid_t *user_id, flora_role_t role,
                          bson_t *out, flora_error_t *error);

/* ---- rate limits ----------------------------------------------------------------- */

/* Counts one attempt under key (e.g. "login:email:a@b.ru") in a fixed window of window_s
 * seconds kept in the `rate_limits` collection (TTL on expiresAt): one conditional upsert
 * {key, expiresAt > now} $inc count. Over limit: RATE_LIMITED with *retry_after_s
 * (seconds until the window ends, at least 1). */
bool flora_rate_limit_hit(flora_store_t *store, const char *key, int64_t limit, int64_t window_s,
                          int64_t *retry_after_s, flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
