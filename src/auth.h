/* Authentication of HTTP requests: from "Authorization: Bearer <token>" to a principal
 * (include/flora/users.h), and the route auth levels (src/http.h). The server calls these
 * before a handler runs; handlers read req->principal. */
#ifndef FLORA_SRC_AUTH_H
#define FLORA_SRC_AUTH_H

#include <stdbool.h>

#include "flora/error.h"
#include "flora/store.h"
#include "flora/users.h"
#include "http.h"

typedef enum flora_auth_outcome {
   FLORA_AUTH_ANONYMOUS = 0, /* no Authorization header, or not a Bearer one */
   FLORA_AUTH_RESOLVED,      /* *principal is the session's user or the admin token */
   FLORA_AUTH_INVALID,       /* a bearer token that is neither: unknown, expired, revoked */
} flora_auth_outcome_t;

/* Resolves the Authorization header value (may be NULL) into *principal (anonymous unless
 * RESOLVED). admin_token (NULL or "": none) is compared in constant time. A session token
 * is looked up with flora_users_session_resolve. False only on a store error. */
bool flora_auth_resolve(flora_store_t *store, const char *admin_token, const char *authorization,
                        flora_principal_t *principal, flora_auth_outcome_t *outcome,
                        flora_error_t *error);

/* Does the principal's role satisfy the route's level? */
bool flora_auth_allows(flora_route_auth_t level, const flora_principal_t *principal);

/* Compares two secrets in constant time whatever their lengths (both hashed with BLAKE2b
 * and the digests compared with sodium_memcmp). */
bool flora_auth_token_equal(const char *a, const char *b);

#endif
