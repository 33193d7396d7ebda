/* Schemas of the accounts: users (with an embedded, bounded address book and favourites),
 * sessions, password_resets and rate_limits (include/flora/users.h). Tokens are stored as
 * their SHA-256 only; sessions, resets and rate-limit windows expire through TTL indexes
 * on expiresAt (MongoDB manual, "TTL Indexes"). */
#include "flora/shop.h"
#include "flora/users.h"

#define E164_PATTERN "^\\+[1-9][0-9]{6,14}$"
#define E164_HINT "E.164: + and 7 to 15 digits"
#define HASH_PATTERN "^[0-9a-f]{64}$"
#define HASH_HINT "64 lowercase hex digits (SHA-256)"

static const char *const roles[] = {"customer", "manager", "admin", NULL};

/* ---- users ----------------------------------------------------------------------- */

static const flora_field_t address_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "_id", .types = FLORA_T_OBJECTID, .required = true,
    .description = "address id (for PATCH/DELETE /api/v1/me/addresses/{id})"},
   {FLORA_FIELD_DEFAULTS, .path = "label", .types = FLORA_T_STRING, .maxlength = 50,
    .description = "the customer's name for it: \"home\", \"mum\""},
   {FLORA_FIELD_DEFAULTS, .path = "recipientName", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 100, .description = "who receives the flowers"},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING, .required = true,
    .pattern = E164_PATTERN, .pattern_hint = E164_HINT, .description = "recipient's phone, E.164"},
   {FLORA_FIELD_DEFAULTS, .path = "text", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 500, .description = "the address as written (city, street, flat, entrance, floor)"},
   {FLORA_FIELD_DEFAULTS, .path = "lat", .types = FLORA_T_NUMBER, .has_min = true, .min = -90,
    .has_max = true, .max = 90, .description = "latitude, WGS 84 degrees"},
   {FLORA_FIELD_DEFAULTS, .path = "lon", .types = FLORA_T_NUMBER, .has_min = true, .min = -180,
    .has_max = true, .max = 180, .description = "longitude, WGS 84 degrees"},
   {FLORA_FIELD_DEFAULTS, .path = "isDefault", .types = FLORA_T_BOOL, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "false",
    .description = "the default delivery address (at most one)"},
   {NULL},
};

static const flora_field_t address_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOCUMENT, .fields = address_fields,
   .strict = true,
};

static const flora_field_t favourite_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_OBJECTID, .ref_collection = "products",
   .ref_field = "_id",
};

static const flora_field_t user_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "email", .types = FLORA_T_STRING, .required = true,
    .minlength = 3, .maxlength = 254,
    .description = "normalised to lower case (include/flora/contact.h); unique"},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING, .pattern = E164_PATTERN,
    .pattern_hint = E164_HINT, .description = "E.164; unique when present (absent otherwise)"},
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 100, .description = "display name"},
   {FLORA_FIELD_DEFAULTS, .path = "role", .types = FLORA_T_STRING, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "\"customer\"", .enum_values = roles,
    .description = "customer, manager (edits the catalog, handles orders) or admin"},
   {FLORA_FIELD_DEFAULTS, .path = "passwordHash", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 512,
    .description = "Argon2id encoded hash (libsodium crypto_pwhash_str); never leaves the store"},
   {FLORA_FIELD_DEFAULTS, .path = "addresses", .types = FLORA_T_ARRAY, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]",
    .maxlength = FLORA_USERS_MAX_ADDRESSES, .items = &address_item,
    .description = "address book (embedded, at most 10)"},
   {FLORA_FIELD_DEFAULTS, .path = "favourites", .types = FLORA_T_ARRAY, .required = true,
    .default_kind = FLORA_DEFAULT_VALUE, .default_json = "[]",
    .maxlength = FLORA_USERS_MAX_FAVOURITES, .items = &favourite_item,
    .description = "favourite product ids (at most 100)"},
   {FLORA_FIELD_DEFAULTS, .path = "lastLoginAt", .types = FLORA_T_DATE,
    .description = "last successful log-in"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t user_indexes[] = {
   {.name = "email_1", .keys_json = "{\"email\": 1}", .unique = true,
    .serves = "log-in and registration find a user by normalised e-mail; no two share one"},
   {.name = "phone_1", .keys_json = "{\"phone\": 1}", .unique = true,
    .partial_filter_json = "{\"phone\": {\"$type\": \"string\"}}",
    .serves = "no two users share a phone; users without one are not indexed"},
   {.name = "role_1_createdAt_-1", .keys_json = "{\"role\": 1, \"createdAt\": -1}",
    .serves = "GET /api/v1/admin/users?role=...: newest first"},
   {.name = "createdAt_-1", .keys_json = "{\"createdAt\": -1}",
    .serves = "GET /api/v1/admin/users: newest first"},
   {NULL},
};

const flora_schema_t flora_schema_users = {
   .collection = "users",
   .description = "Customers and staff. The address book and favourites are embedded and "
                  "bounded, since they are always read with the user; every bound is "
                  "enforced in the filter of the one update that adds to it.",
   .fields = user_fields,
   .strict = true,
   .timestamps = true,
   .indexes = user_indexes,
};

/* ---- sessions -------------------------------------------------------------------- */

static const flora_field_t session_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "tokenHash", .types = FLORA_T_STRING, .required = true,
    .pattern = HASH_PATTERN, .pattern_hint = HASH_HINT,
    .description = "SHA-256 of the token; the token itself is never stored"},
   {FLORA_FIELD_DEFAULTS, .path = "userId", .types = FLORA_T_OBJECTID, .required = true,
    .ref_collection = "users", .ref_field = "_id", .description = "whose session"},
   {FLORA_FIELD_DEFAULTS, .path = "expiresAt", .types = FLORA_T_DATE, .required = true,
    .description = "end of the session (checked at every lookup; the TTL index removes it)"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t session_indexes[] = {
   {.name = "tokenHash_1", .keys_json = "{\"tokenHash\": 1}", .unique = true,
    .serves = "every authenticated request resolves its bearer token"},
   {.name = "userId_1", .keys_json = "{\"userId\": 1}",
    .serves = "changing or resetting a password ends the user's other sessions"},
   {.name = "expiresAt_1", .keys_json = "{\"expiresAt\": 1}", .expire_after_seconds = 1,
    .serves = "TTL: expired sessions are removed"},
   {NULL},
};

const flora_schema_t flora_schema_sessions = {
   .collection = "sessions",
   .description = "Signed-in sessions. The client holds an opaque random token; the store "
                  "holds its SHA-256, the user and the expiry. The role is read from the "
                  "user at every request, so a demotion takes effect at once.",
   .fields = session_fields,
   .strict = true,
   .timestamps = true,
   .indexes = session_indexes,
};

/* ---- password resets ------------------------------------------------------------- */

static const flora_field_t reset_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "tokenHash", .types = FLORA_T_STRING, .required = true,
    .pattern = HASH_PATTERN, .pattern_hint = HASH_HINT,
    .description = "SHA-256 of the token sent to the user"},
   {FLORA_FIELD_DEFAULTS, .path = "userId", .types = FLORA_T_OBJECTID, .required = true,
    .ref_collection = "users", .ref_field = "_id", .description = "whose password"},
   {FLORA_FIELD_DEFAULTS, .path = "expiresAt", .types = FLORA_T_DATE, .required = true,
    .description = "the token is refused after this"},
   {FLORA_FIELD_DEFAULTS, .path = "usedAt", .types = FLORA_T_DATE | FLORA_T_NULL,
    .required = true, .default_kind = FLORA_DEFAULT_VALUE, .default_json = "null",
    .description = "set once by the conditional update that uses the token"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .description = "set on insert"},
   {FLORA_FIELD_DEFAULTS, .path = "updatedAt", .types = FLORA_T_DATE, .description = "set on every write"},
   {NULL},
};

static const flora_index_decl_t reset_indexes[] = {
   {.name = "tokenHash_1", .keys_json = "{\"tokenHash\": 1}", .unique = true,
    .serves = "POST /api/v1/auth/password-reset/confirm finds the token"},
   {.name = "expiresAt_1", .keys_json = "{\"expiresAt\": 1}", .expire_after_seconds = 1,
    .serves = "TTL: expired reset tokens are removed"},
   {NULL},
};

const flora_schema_t flora_schema_password_resets = {
   .collection = "password_resets",
   .description = "Password reset tokens: stored hashed, used at most once (a conditional "
                  "update on usedAt: null) and expiring.",
   .fields = reset_fields,
   .strict = true,
   .timestamps = true,
   .indexes = reset_indexes,
};

/* ---- rate limits ----------------------------------------------------------------- */

static const flora_field_t rate_limit_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "key", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 400,
    .description = "what is counted: \"login:email:<e-mail>\", \"login:ip:<address>\", ..."},
   {FLORA_FIELD_DEFAULTS, .path = "count", .types = FLORA_T_INT, .required = true,
    .has_min = true, .min = 0, .description = "attempts in the current window"},
   {FLORA_FIELD_DEFAULTS, .path = "expiresAt", .types = FLORA_T_DATE, .required = true,
    .description = "end of the window"},
   {NULL},
};

static const flora_index_decl_t rate_limit_indexes[] = {
   {.name = "key_1", .keys_json = "{\"key\": 1}", .unique = true,
    .serves = "one window per key: the counting upsert finds it, a second one cannot exist"},
   {.name = "expiresAt_1", .keys_json = "{\"expiresAt\": 1}", .expire_after_seconds = 1,
    .serves = "TTL: ended windows are removed"},
   {NULL},
};

const flora_schema_t flora_schema_rate_limits = {
   .collection = "rate_limits",
   .description = "Fixed-window counters of authentication attempts per e-mail and per "
                  "client address; one conditional upsert counts an attempt.",
   .fields = rate_limit_fields,
   .strict = true,
   .timestamps = false,
   .indexes = rate_limit_indexes,
};
