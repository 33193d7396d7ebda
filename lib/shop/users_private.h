/* Internals shared by the account files (lib/shop/users*.c, rate_limit.c). Not installed. */
#ifndef FLORA_USERS_PRIVATE_H
#define FLORA_USERS_PRIVATE_H

#include <bson/bson.h>
#include <sodium.h>
#include <stdbool.h>

#include "flora/config.h"
#include "flora/error.h"
#include "flora/schema.h"
#include "flora/store.h"
#include "flora/users.h"

/* Input schemas of the account operations (strict; not collections). */
extern const flora_schema_t flora__users_register_input;
extern const flora_schema_t flora__users_profile_input;

/* A new random token (32 bytes, base64url) and its hex SHA-256. */
bool flora__users_new_token(char token[FLORA_TOKEN_SIZE], char hash[65], flora_error_t *error);

/* Argon2id hash of password with the configured cost. */
bool flora__users_hash_password(const flora_config_t *config, const char *password,
                                char out[crypto_pwhash_STRBYTES], flora_error_t *error);

/* A VALIDATION problem at path unless password is 8 to 128 characters of UTF-8. */
bool flora__users_check_password(const char *path, const char *password, bson_t *problems,
                                 flora_error_t *error);

/* The stored user document by _id (with passwordHash: internal use only). */
bool flora__users_find(flora_store_t *store, const bson_oid_t *user_id, bson_t *out, bool *found,
                       flora_error_t *error);

/* *out (initialised here) = user without passwordHash. */
void flora__users_public_view(const bson_t *user, bson_t *out);

/* Deletes every session of the user except keep_hash (NULL or "": all). */
bool flora__users_end_sessions(flora_store_t *store, const bson_oid_t *user_id,
                               const char *keep_hash, flora_error_t *error);

#endif
