/* Authentication of HTTP requests (src/auth.h). */
#include "auth.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

bool
flora_auth_token_equal(const char *a, const char *b)
{
   unsigned char da[crypto_generichash_BYTES];
   unsigned char db[crypto_generichash_BYTES];

   FLORA_ASSERT_ARG(a);
   FLORA_ASSERT_ARG(b);
   crypto_generichash(da, sizeof da, (const unsigned char *) a, strlen(a), NULL, 0);
   crypto_generichash(db, sizeof db, (const unsigned char *) b, strlen(b), NULL, 0);
   return sodium_memcmp(da, db, sizeof da) == 0;
}

bool
flora_auth_resolve(flora_store_t *store, const char *admin_token, const char *authorization,
                   flora_principal_t *principal, flora_auth_outcome_t *outcome,
                   flora_error_t *error)
{
   const char *token;
   bool found = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(principal);
   FLORA_ASSERT_ARG(outcome);
   memset(principal, 0, sizeof *principal);
   *outcome = FLORA_AUTH_ANONYMOUS;
   /* RFC 6750 section 2.1: "Bearer" (case-insensitive scheme, RFC 9110 section 11.1). */
   if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
      return true;
   }
   token = authorization + 7;
   while (*token == ' ') {
      token++;
   }
   if (*token == '\0') {
      *outcome = FLORA_AUTH_INVALID;
      return true;
   }
   if (admin_token && admin_token[0] && flora_auth_token_equal(token, admin_token)) {
      principal->role = FLORA_ROLE_ADMIN;
      principal->has_user = false;
      *outcome = FLORA_AUTH_RESOLVED;
      return true;
   }
   if (!flora_users_session_resolve(store, token, principal, &found, error)) {
      return false;
   }
   *outcome = found ? FLORA_AUTH_RESOLVED : FLORA_AUTH_INVALID;
   return true;
}

bool
flora_auth_allows(flora_route_auth_t level, const flora_principal_t *principal)
{
   FLORA_ASSERT_ARG(principal);
   switch (level) {
   case FLORA_AUTH_NONE:
      return true;
   case FLORA_AUTH_CUSTOMER:
      return principal->role != FLORA_ROLE_NONE;
   case FLORA_AUTH_MANAGER:
      return principal->role == FLORA_ROLE_MANAGER || principal->role == FLORA_ROLE_ADMIN;
   case FLORA_AUTH_ADMIN:
      return principal->role == FLORA_ROLE_ADMIN;
   }
   return false;
}

const char *
flora_route_auth_name(flora_route_auth_t auth)
{
   switch (auth) {
   case FLORA_AUTH_NONE:
      return "public";
   case FLORA_AUTH_CUSTOMER:
      return "customer";
   case FLORA_AUTH_MANAGER:
      return "manager";
   case FLORA_AUTH_ADMIN:
      return "admin";
   }
   return "?";
}
