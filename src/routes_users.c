/* Account routes: registration, sessions, password reset, the profile, the address book,
 * favourites and the administration of users; thin adapters over include/flora/users.h,
 * documented in docs/openapi.json.
 *
 * Client JSON never reaches a store filter: handlers take strings and ids out of the body
 * after checking it. A body with an operator ("$..." key) anywhere, or an object or array
 * where a string belongs ({"email": {"$ne": null}}), is refused with 400 naming the field;
 * other wrong types, over-long strings and unknown fields are 422 with every failing field.
 * Log-in, registration and reset requests are rate-limited per e-mail and per client
 * address (auth.rate_limit_*; 429 with Retry-After). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "app.h"
#include "flora/contact.h"
#include "flora/schema.h"
#include "flora/users.h"
#include "http.h"

/* ---- bodies ---------------------------------------------------------------------- */

static const flora_field_t login_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "email", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 254},
   {FLORA_FIELD_DEFAULTS, .path = "password", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 1024},
   {NULL},
};
static const flora_schema_t login_input = {.collection = "login", .fields = login_fields, .strict = true};

static const flora_field_t register_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "email", .types = FLORA_T_STRING},
   {FLORA_FIELD_DEFAULTS, .path = "password", .types = FLORA_T_STRING},
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING},
   {NULL},
};
/* Only for the operator check; the library validates registrations fully. */
static const flora_schema_t register_shape = {.collection = "register", .fields = register_fields};

static const flora_field_t profile_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING | FLORA_T_NULL},
   {NULL},
};
static const flora_schema_t profile_shape = {.collection = "profile", .fields = profile_fields};

static const flora_field_t reset_request_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "email", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 254},
   {NULL},
};
static const flora_schema_t reset_request_input = {
   .collection = "password-reset", .fields = reset_request_fields, .strict = true};

static const flora_field_t reset_confirm_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "token", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 128},
   {FLORA_FIELD_DEFAULTS, .path = "password", .types = FLORA_T_STRING, .required = true,
    .minlength = 8, .maxlength = 128},
   {NULL},
};
static const flora_schema_t reset_confirm_input = {
   .collection = "password-reset-confirm", .fields = reset_confirm_fields, .strict = true};

static const flora_field_t password_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "currentPassword", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 1024},
   {FLORA_FIELD_DEFAULTS, .path = "newPassword", .types = FLORA_T_STRING, .required = true,
    .minlength = 8, .maxlength = 128},
   {NULL},
};
static const flora_schema_t password_input = {
   .collection = "password", .fields = password_fields, .strict = true};

static const flora_field_t address_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "label", .types = FLORA_T_STRING},
   {FLORA_FIELD_DEFAULTS, .path = "recipientName", .types = FLORA_T_STRING},
   {FLORA_FIELD_DEFAULTS, .path = "phone", .types = FLORA_T_STRING},
   {FLORA_FIELD_DEFAULTS, .path = "text", .types = FLORA_T_STRING},
   {NULL},
};
static const flora_schema_t address_shape = {.collection = "address", .fields = address_fields};

static const char *const role_names[] = {"customer", "manager", "admin", NULL};
static const flora_field_t role_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "role", .types = FLORA_T_STRING, .required = true,
    .enum_values = role_names},
   {NULL},
};
static const flora_schema_t role_input = {.collection = "role", .fields = role_fields, .strict = true};

/* Can plain JSON make this type? The others (ObjectId, date, regex, binary, decimal, ...)
 * come only from Extended JSON wrappers such as {"$regex": ...}, which are operators too. */
static bool
plain_json_type(bson_type_t type)
{
   switch (type) {
   case BSON_TYPE_UTF8:
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
   case BSON_TYPE_DOUBLE:
   case BSON_TYPE_BOOL:
   case BSON_TYPE_NULL:
   case BSON_TYPE_DOCUMENT:
   case BSON_TYPE_ARRAY:
      return true;
   default:
      return false;
   }
}

/* Finds a "$..." key, or a value only Extended JSON can make, anywhere in the document
 * (path into where[]). */
static bool
find_operator(const bson_t *doc, const char *prefix, char *where, size_t where_len)
{
   bson_iter_t it;

   if (!bson_iter_init(&it, doc)) {
      return false;
   }
   while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it);
      char path[256];

      snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", key);
      if (key[0] == '$' || !plain_json_type(bson_iter_type(&it))) {
         snprintf(where, where_len, "%s", path);
         return true;
      }
      if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
         const uint8_t *data;
         uint32_t len;
         bson_t child;

         if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_iter_document(&it, &len, &data);
         } else {
            bson_iter_array(&it, &len, &data);
         }
         if (bson_init_static(&child, data, len) && find_operator(&child, path, where, where_len)) {
            return true;
         }
      }
   }
   return false;
}

/* Parses the body and refuses operator injection (400). shape: the fields that must be
 * strings. False when the answer is already set. */
static bool
read_body(const flora_http_request_t *req, flora_http_response_t *res, const flora_schema_t *shape,
          bson_t *body)
{
   flora_error_t error = {0};
   char where[256];
   bson_iter_t it;

   if (!flora_http_body_json(req, body, &error)) {
      flora_http_fail(res, &error);
      return false;
   }
   for (const flora_field_t *f = shape->fields; f->path; f++) {
      if ((f->types & FLORA_T_STRING) && bson_iter_init_find(&it, body, f->path) &&
          (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it) ||
           !plain_json_type(bson_iter_type(&it)))) {
         flora_http_error(res, 400, "invalid_argument", f->path, "must be a string", NULL);
         bson_reinit(body); /* refused: nothing of it is kept (callers free only on success) */
         return false;
      }
   }
   if (find_operator(body, "", where, sizeof where)) {
      flora_http_error(res, 400, "invalid_argument", where,
                       "operators and Extended JSON ($-prefixed keys) are not allowed in request "
                       "bodies",
                       NULL);
      bson_reinit(body);
      return false;
   }
   return true;
}

/* 422 with every problem of body against schema; false when answered. */
static bool
validate_body(flora_http_response_t *res, const flora_schema_t *schema, const bson_t *body)
{
   flora_error_t error = {0};
   bson_t problems = BSON_INITIALIZER;
   bool ok = flora_schema_validate(schema, body, &problems, &error);

   if (!ok) {
      flora_http_error(res, 422, "validation_failed", NULL, error.message, &problems);
   }
   bson_destroy(&problems);
   return ok;
}

/* The answer to a failed library call: 422 with problems when there are some. */
static bool
fail(flora_http_response_t *res, const flora_error_t *error, const bson_t *problems)
{
   if (error->domain == FLORA_DOMAIN_VALIDATION && problems && !bson_empty(problems)) {
      return flora_http_error(res, 422, "validation_failed", NULL, error->message, problems);
   }
   return flora_http_fail(res, error);
}

static const char *
string_field(const bson_t *doc, const char *name)
{
   bson_iter_t it;

   return bson_iter_init_find(&it, doc, name) && BSON_ITER_HOLDS_UTF8(&it)
             ? bson_iter_utf8(&it, NULL)
             : NULL;
}

/* A path parameter that must be an ObjectId; 404 otherwise (no such thing). */
static bool
param_oid(const flora_http_request_t *req, flora_http_response_t *res, const char *name,
          bson_oid_t *out)
{
   const char *value = flora_http_param(req, name);

   if (!value || strlen(value) != 24 || !bson_oid_is_valid(value, 24)) {
      flora_http_error(res, 404, "not_found", name, "no such id", NULL);
      return false;
   }
   bson_oid_init_from_string(out, value);
   return true;
}

/* The signed-in user's id; 403 for the operator token, which has no user. */
static bool
need_user(const flora_http_request_t *req, flora_http_response_t *res, bson_oid_t *out)
{
   if (!req->principal.has_user) {
      flora_http_error(res, 403, "forbidden", NULL,
                       "this route needs a signed-in user (the operator token has no profile)",
                       NULL);
      return false;
   }
   bson_oid_copy(&req->principal.user_id, out);
   return true;
}

/* Counts an attempt of kind ("login", "register", "reset") per client address and, when
 * email is given, per e-mail; 429 with Retry-After when over. False when answered. */
static bool
rate_limit(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res,
           const char *kind, const char *email)
{
   int64_t window = flora_config_int(app->config, "auth.rate_limit_window_s");
   int64_t retry = 0;
   flora_error_t error = {0};
   char key[400];
   char normalized[255];
   flora_error_t ignored = {0};

   snprintf(key, sizeof key, "%s:ip:%s", kind, flora_http_client_address(req));
   if (!flora_rate_limit_hit(app->store, key,
                             flora_config_int(app->config, "auth.rate_limit_per_ip"), window,
                             &retry, &error)) {
      goto refused;
   }
   if (email) {
      if (!flora_email_normalize(email, normalized, sizeof normalized, &ignored)) {
         snprintf(normalized, sizeof normalized, "%.254s", email);
      }
      snprintf(key, sizeof key, "%s:email:%s", kind, normalized);
      if (!flora_rate_limit_hit(app->store, key,
                                flora_config_int(app->config, "auth.rate_limit_per_email"),
                                window, &retry, &error)) {
         goto refused;
      }
   }
   return true;
refused:
   flora_http_fail(res, &error);
   if (error.domain == FLORA_DOMAIN_SHOP && error.code == FLORA_ERR_RATE_LIMITED) {
      res->retry_after_s = retry > INT32_MAX ? INT32_MAX : (int) retry;
   }
   return false;
}

static void
answer_doc(flora_http_response_t *res, int status, const bson_t *doc)
{
   res->status = status;
   bson_destroy(&res->body);
   bson_copy_to(doc, &res->body);
}

/* ---- authentication ------------------------------------------------------------------ */

static bool
register_user(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t body, out = BSON_INITIALIZER, problems = BSON_INITIALIZER;

   if (read_body(req, res, &register_shape, &body) &&
       rate_limit(app, req, res, "register", string_field(&body, "email"))) {
      bson_destroy(&out);
      if (flora_users_create(app->store, app->config, &body, FLORA_ROLE_CUSTOMER, &problems, &out,
                             &error)) {
         answer_doc(res, 201, &out);
         res->location = strdup("/api/v1/me");
      } else {
         fail(res, &error, &problems);
      }
   }
   bson_destroy(&body);
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
login(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   char token[FLORA_TOKEN_SIZE] = "";
   bson_t body, user = BSON_INITIALIZER;

   if (read_body(req, res, &login_input, &body) && validate_body(res, &login_input, &body) &&
       rate_limit(app, req, res, "login", string_field(&body, "email"))) {
      bson_destroy(&user);
      if (flora_users_login(app->store, app->config, string_field(&body, "email"),
                            string_field(&body, "password"), token, &user, &error)) {
         BSON_APPEND_UTF8(&res->body, "token", token);
         BSON_APPEND_UTF8(&res->body, "tokenType", "Bearer");
         BSON_APPEND_INT64(&res->body, "expiresIn",
                           flora_config_int(app->config, "auth.session_ttl_s"));
         BSON_APPEND_DOCUMENT(&res->body, "user", &user);
      } else {
         flora_http_fail(res, &error);
      }
   }
   bson_destroy(&body);
   bson_destroy(&user);
   return true;
}

static bool
logout(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};

   if (req->principal.session_hash[0] &&
       !flora_users_logout(app->store, req->principal.session_hash, &error)) {
      return flora_http_fail(res, &error);
   }
   res->status = 204;
   return true;
}

static bool
reset_request(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   char token[FLORA_TOKEN_SIZE] = "";
   char email[255] = "";
   bson_oid_t user_id;
   bool issued = false;
   bson_t body;

   if (read_body(req, res, &reset_request_input, &body) &&
       validate_body(res, &reset_request_input, &body) &&
       rate_limit(app, req, res, "reset", string_field(&body, "email"))) {
      if (!flora_users_reset_request(app->store, app->config, string_field(&body, "email"),
                                     &issued, token, &user_id, email, &error)) {
         flora_http_fail(res, &error);
      } else {
         /* The same answer whether or not the address is known. */
         res->status = 202;
         BSON_APPEND_UTF8(&res->body, "status", "accepted");
         BSON_APPEND_UTF8(&res->body, "message",
                          "if an account has this e-mail, a reset link is on its way");
      }
   }
   sodium_memzero(token, sizeof token);
   bson_destroy(&body);
   return true;
}

static bool
reset_confirm(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_t body, problems = BSON_INITIALIZER;

   if (read_body(req, res, &reset_confirm_input, &body) &&
       validate_body(res, &reset_confirm_input, &body)) {
      if (flora_users_reset_confirm(app->store, app->config, string_field(&body, "token"),
                                    string_field(&body, "password"), &problems, &error)) {
         res->status = 204;
      } else {
         fail(res, &error, &problems);
      }
   }
   bson_destroy(&body);
   bson_destroy(&problems);
   return true;
}

/* ---- the signed-in user -------------------------------------------------------------- */

static bool
get_me(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id;
   bson_t user;
   bool found = false;

   if (!need_user(req, res, &id)) {
      return true;
   }
   if (!flora_users_get(app->store, &id, &user, &found, &error)) {
      bson_destroy(&user);
      return flora_http_fail(res, &error);
   }
   if (!found) {
      flora_http_error(res, 404, "not_found", NULL, "no such user", NULL);
   } else {
      answer_doc(res, 200, &user);
   }
   bson_destroy(&user);
   return true;
}

static bool
patch_me(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id;
   bson_t body, out = BSON_INITIALIZER, problems = BSON_INITIALIZER;

   if (need_user(req, res, &id) && read_body(req, res, &profile_shape, &body)) {
      bson_destroy(&out);
      if (flora_users_update_profile(app->store, &id, &body, &problems, &out, &error)) {
         answer_doc(res, 200, &out);
      } else {
         fail(res, &error, &problems);
      }
      bson_destroy(&body);
   }
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
change_password(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id;
   bson_t body, problems = BSON_INITIALIZER;

   if (need_user(req, res, &id) && read_body(req, res, &password_input, &body)) {
      if (validate_body(res, &password_input, &body)) {
         if (flora_users_change_password(app->store, app->config, &id,
                                         string_field(&body, "currentPassword"),
                                         string_field(&body, "newPassword"),
                                         req->principal.session_hash, &problems, &error)) {
            res->status = 204;
         } else {
            fail(res, &error, &problems);
         }
      }
      bson_destroy(&body);
   }
   bson_destroy(&problems);
   return true;
}

/* ---- address book -------------------------------------------------------------------- */

/* Copies the array field of the user (addresses, favourites) into {items: [...]}. */
static bool
list_field(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res,
           const char *field)
{
   flora_error_t error = {0};
   bson_oid_t id;
   bson_t user;
   bool found = false;
   bson_iter_t it;

   if (!need_user(req, res, &id)) {
      return true;
   }
   if (!flora_users_get(app->store, &id, &user, &found, &error)) {
      bson_destroy(&user);
      return flora_http_fail(res, &error);
   }
   if (!found) {
      flora_http_error(res, 404, "not_found", NULL, "no such user", NULL);
   } else if (bson_iter_init_find(&it, &user, field) && BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_append_iter(&res->body, "items", -1, &it);
   } else {
      bson_t empty;

      BSON_APPEND_ARRAY_BEGIN(&res->body, "items", &empty);
      bson_append_array_end(&res->body, &empty);
   }
   bson_destroy(&user);
   return true;
}

static bool
list_addresses(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   return list_field(app, req, res, "addresses");
}

static bool
add_address(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id;
   bson_t body, out = BSON_INITIALIZER, problems = BSON_INITIALIZER;

   if (need_user(req, res, &id) && read_body(req, res, &address_shape, &body)) {
      bson_destroy(&out);
      if (flora_users_address_add(app->store, &id, &body, &problems, &out, &error)) {
         answer_doc(res, 201, &out);
      } else {
         fail(res, &error, &problems);
      }
      bson_destroy(&body);
   }
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
update_address(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id, address_id;
   bson_t body, out = BSON_INITIALIZER, problems = BSON_INITIALIZER;

   if (need_user(req, res, &id) && param_oid(req, res, "id", &address_id) &&
       read_body(req, res, &address_shape, &body)) {
      bson_destroy(&out);
      if (flora_users_address_update(app->store, &id, &address_id, &body, &problems, &out,
                                     &error)) {
         answer_doc(res, 200, &out);
      } else {
         fail(res, &error, &problems);
      }
      bson_destroy(&body);
   }
   bson_destroy(&out);
   bson_destroy(&problems);
   return true;
}

static bool
delete_address(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id, address_id;

   if (need_user(req, res, &id) && param_oid(req, res, "id", &address_id)) {
      if (flora_users_address_delete(app->store, &id, &address_id, &error)) {
         res->status = 204;
      } else {
         flora_http_fail(res, &error);
      }
   }
   return true;
}

/* ---- favourites ---------------------------------------------------------------------- */

static bool
list_favourites(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   return list_field(app, req, res, "favourites");
}

static bool
put_favourite(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id, product_id;

   if (need_user(req, res, &id) && param_oid(req, res, "productId", &product_id)) {
      if (flora_users_favourite_add(app->store, &id, &product_id, &error)) {
         res->status = 204;
      } else {
         flora_http_fail(res, &error);
      }
   }
   return true;
}

static bool
delete_favourite(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id, product_id;

   if (need_user(req, res, &id) && param_oid(req, res, "productId", &product_id)) {
      if (flora_users_favourite_remove(app->store, &id, &product_id, &error)) {
         res->status = 204;
      } else {
         flora_http_fail(res, &error);
      }
   }
   return true;
}

/* ---- administration ------------------------------------------------------------------ */

static bool
parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
   char *end = NULL;
   long long v;

   if (!s || !*s) {
      return false;
   }
   errno = 0;
   v = strtoll(s, &end, 10);
   if (errno || *end || v < min || v > max) {
      return false;
   }
   *out = v;
   return true;
}

typedef struct list_params {
   flora_role_t role;
   int64_t page;
   int64_t page_size;
   const char *bad;
   const char *reason;
} list_params_t;

static bool
list_param(void *ctx, const char *name, const char *value)
{
   list_params_t *p = ctx;

   if (strcmp(name, "role") == 0) {
      if (!flora_role_parse(value, &p->role)) {
         p->reason = "must be customer, manager or admin";
      }
   } else if (strcmp(name, "page") == 0) {
      if (!parse_int(value, 1, 1000000, &p->page)) {
         p->reason = "must be a whole number from 1";
      }
   } else if (strcmp(name, "pageSize") == 0) {
      if (!parse_int(value, 1, 100, &p->page_size)) {
         p->reason = "must be a whole number from 1 to 100";
      }
   } else {
      p->reason = "unknown parameter (known: role, page, pageSize)";
   }
   if (p->reason) {
      p->bad = name;
      return false;
   }
   return true;
}

static bool
list_users(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   list_params_t p = {.role = FLORA_ROLE_NONE, .page = 1, .page_size = 50};
   flora_error_t error = {0};
   bson_t out;

   flora_http_query_each(req, list_param, &p);
   if (p.bad) {
      return flora_http_error(res, 400, "invalid_argument", p.bad, p.reason, NULL);
   }
   if (!flora_users_list(app->store, p.role, p.page, p.page_size, &out, &error)) {
      bson_destroy(&out);
      return flora_http_fail(res, &error);
   }
   answer_doc(res, 200, &out);
   bson_destroy(&out);
   return true;
}

static bool
set_role(flora_app_t *app, const flora_http_request_t *req, flora_http_response_t *res)
{
   flora_error_t error = {0};
   bson_oid_t id;
   flora_role_t role;
   bson_t body, out = BSON_INITIALIZER;

   if (param_oid(req, res, "id", &id) && read_body(req, res, &role_input, &body)) {
      if (validate_body(res, &role_input, &body) &&
          flora_role_parse(string_field(&body, "role"), &role)) {
         bson_destroy(&out);
         if (flora_users_set_role(app->store, &id, role, &out, &error)) {
            answer_doc(res, 200, &out);
         } else {
            flora_http_fail(res, &error);
         }
      }
      bson_destroy(&body);
   }
   bson_destroy(&out);
   return true;
}

const flora_route_t flora_routes_users[] = {
   {"POST", "/api/v1/auth/register", "auth.register", FLORA_AUTH_NONE, register_user},
   {"POST", "/api/v1/auth/login", "auth.login", FLORA_AUTH_NONE, login},
   {"POST", "/api/v1/auth/logout", "auth.logout", FLORA_AUTH_CUSTOMER, logout},
   {"POST", "/api/v1/auth/password-reset", "auth.reset_request", FLORA_AUTH_NONE, reset_request},
   {"POST", "/api/v1/auth/password-reset/confirm", "auth.reset_confirm", FLORA_AUTH_NONE, reset_confirm},
   {"GET", "/api/v1/me", "me.get", FLORA_AUTH_CUSTOMER, get_me},
   {"PATCH", "/api/v1/me", "me.update", FLORA_AUTH_CUSTOMER, patch_me},
   {"POST", "/api/v1/me/password", "me.password", FLORA_AUTH_CUSTOMER, change_password},
   {"GET", "/api/v1/me/addresses", "me.addresses.list", FLORA_AUTH_CUSTOMER, list_addresses},
   {"POST", "/api/v1/me/addresses", "me.addresses.create", FLORA_AUTH_CUSTOMER, add_address},
   {"PATCH", "/api/v1/me/addresses/{id}", "me.addresses.update", FLORA_AUTH_CUSTOMER, update_address},
   {"DELETE", "/api/v1/me/addresses/{id}", "me.addresses.delete", FLORA_AUTH_CUSTOMER, delete_address},
   {"GET", "/api/v1/me/favourites", "me.favourites.list", FLORA_AUTH_CUSTOMER, list_favourites},
   {"PUT", "/api/v1/me/favourites/{productId}", "me.favourites.add", FLORA_AUTH_CUSTOMER, put_favourite},
   {"DELETE", "/api/v1/me/favourites/{productId}", "me.favourites.remove", FLORA_AUTH_CUSTOMER, delete_favourite},
   {"GET", "/api/v1/admin/users", "admin.users.list", FLORA_AUTH_ADMIN, list_users},
   {"PATCH", "/api/v1/admin/users/{id}/role", "admin.users.role", FLORA_AUTH_ADMIN, set_role},
   {NULL, NULL, NULL, FLORA_AUTH_NONE, NULL},
};
