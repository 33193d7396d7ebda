/* Users, sessions, password resets and rate limits on the embedded engine
 * (include/flora/users.h): each test gets a fresh sqlite::memory: store with the
 * migrations applied and the schemas attached, and the cheapest Argon2id parameters. */
#include "flora_test.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "flora/catalog.h"
#include "flora/config.h"
#include "flora/migrate.h"
#include "flora/shop.h"
#include "flora/store.h"
#include "flora/users.h"

typedef struct fixture {
   flora_store_t *store;
   flora_config_t *config;
} fixture_t;

static int
setup(void **state)
{
   fixture_t *f = calloc(1, sizeof *f);
   flora_error_t error = {0};

   if (!flora_config_load(&f->config, NULL, &error) ||
       !flora_config_set(f->config, "auth.argon2_opslimit", "1", "test", &error) ||
       !flora_config_set(f->config, "auth.argon2_memlimit", "8192", "test", &error) ||
       !flora_store_open(&f->store, "sqlite::memory:", NULL, &error) ||
       !flora_migrate_up(f->store, flora_migrate_list(), NULL, NULL, &error)) {
      fail_msg("setup: %s", error.message);
   }
   flora_shop_attach_schemas(f->store);
   *state = f;
   return 0;
}

static int
teardown(void **state)
{
   fixture_t *f = *state;

   flora_store_close(f->store);
   flora_config_destroy(f->config);
   free(f);
   return 0;
}

/* Creates a customer; returns its id. */
static bson_oid_t
make_user(fixture_t *f, const char *json)
{
   bson_t *input = J(json);
   bson_t out;
   bson_t problems = BSON_INITIALIZER;
   flora_error_t error = {0};
   bson_iter_t it;
   bson_oid_t id;

   if (!flora_users_create(f->store, f->config, input, FLORA_ROLE_CUSTOMER, &problems, &out,
                           &error)) {
      fail_msg("create %s: %s", json, error.message);
   }
   assert_true(bson_iter_init_find(&it, &out, "_id"));
   bson_oid_copy(bson_iter_oid(&it), &id);
   assert_false(bson_has_field(&out, "passwordHash"));
   bson_destroy(&out);
   bson_destroy(&problems);
   bson_destroy(input);
   return id;
}

static void
login_ok(fixture_t *f, const char *email, const char *password, char token[FLORA_TOKEN_SIZE])
{
   flora_error_t error = {0};
   bson_t user;

   if (!flora_users_login(f->store, f->config, email, password, token, &user, &error)) {
      fail_msg("login %s: %s", email, error.message);
   }
   assert_false(bson_has_field(&user, "passwordHash"));
   assert_int_equal(strlen(token), 43);
   bson_destroy(&user);
}

static bool
resolves(fixture_t *f, const char *token, flora_principal_t *p)
{
   flora_error_t error = {0};
   bool found = false;

   assert_true(flora_users_session_resolve(f->store, token, p, &found, &error));
   return found;
}

/* Sets expiresAt of every document of collection to one second ago. */
static void
expire_all(fixture_t *f, const char *collection)
{
   bson_t *filter = J("{}");
   bson_t *update =
      BCON_NEW("$set", "{", "expiresAt", BCON_DATE_TIME((int64_t) time(NULL) * 1000 - 1000), "}");
   flora_error_t error = {0};

   assert_true(flora_store_update_many(f->store, collection, filter, update, NULL, NULL, &error));
   bson_destroy(filter);
   bson_destroy(update);
}

static void
test_register_login_logout(void **state)
{
   fixture_t *f = *state;
   char token[FLORA_TOKEN_SIZE];
   flora_principal_t p;
   flora_error_t error = {0};
   bson_oid_t id = make_user(f, "{'email': 'Anna@Example.RU', 'password': 'roses-are-red', 'name': 'Anna'}");
   bson_t *filter = J("{}");
   bson_t stored;
   bool found;
   bson_iter_t it;

   /* Stored: normalised e-mail, an Argon2id hash, no token anywhere in clear. */
   assert_true(flora_store_find_one(f->store, "users", filter, NULL, &stored, &found, &error));
   assert_true(bson_iter_init_find(&it, &stored, "email"));
   assert_string_equal(bson_iter_utf8(&it, NULL), "anna@example.ru");
   assert_true(bson_iter_init_find(&it, &stored, "passwordHash"));
   assert_non_null(strstr(bson_iter_utf8(&it, NULL), "$argon2id$"));
   bson_destroy(&stored);

   login_ok(f, "ANNA@example.ru", "roses-are-red", token);
   assert_true(resolves(f, token, &p));
   assert_int_equal(p.role, FLORA_ROLE_CUSTOMER);
   assert_true(p.has_user);
   assert_true(bson_oid_equal(&p.user_id, &id));
   assert_true(flora_store_find_one(f->store, "sessions", filter, NULL, &stored, &found, &error));
   assert_true(bson_iter_init_find(&it, &stored, "tokenHash"));
   assert_string_not_equal(bson_iter_utf8(&it, NULL), token);
   assert_string_equal(bson_iter_utf8(&it, NULL), p.session_hash);
   bson_destroy(&stored);

   /* A demotion or promotion takes effect on the live session. */
   assert_true(flora_users_set_role(f->store, &id, FLORA_ROLE_MANAGER, NULL, &error));
   assert_true(resolves(f, token, &p));
   assert_int_equal(p.role, FLORA_ROLE_MANAGER);

   assert_true(flora_users_logout(f->store, p.session_hash, &error));
   assert_false(resolves(f, token, &p));
   assert_int_equal(p.role, FLORA_ROLE_NONE);
   assert_false(resolves(f, "not-a-token", &p));
   bson_destroy(filter);
}

static void
test_same_error_for_wrong_password_and_unknown_email(void **state)
{
   fixture_t *f = *state;
   char token[FLORA_TOKEN_SIZE];
   flora_error_t wrong = {0}, unknown = {0}, malformed = {0};

   make_user(f, "{'email': 'b@example.ru', 'password': 'tulips-in-may', 'name': 'B'}");
   assert_false(flora_users_login(f->store, f->config, "b@example.ru", "tulips-in-june", token,
                                  NULL, &wrong));
   assert_false(flora_users_login(f->store, f->config, "nobody@example.ru", "tulips-in-may",
                                  token, NULL, &unknown));
   assert_false(flora_users_login(f->store, f->config, "not an email", "tulips-in-may", token,
                                  NULL, &malformed));
   assert_int_equal(wrong.domain, FLORA_DOMAIN_SHOP);
   assert_int_equal(wrong.code, FLORA_ERR_UNAUTHORIZED);
   assert_int_equal(unknown.domain, wrong.domain);
   assert_int_equal(unknown.code, wrong.code);
   assert_string_equal(unknown.message, wrong.message);
   assert_string_equal(malformed.message, wrong.message);
   assert_string_equal(token, "");
}

static void
test_unique_email_and_phone(void **state)
{
   fixture_t *f = *state;
   flora_error_t error = {0};
   bson_t problems = BSON_INITIALIZER;
   bson_t *dup_email = J("{'email': 'OLGA@example.ru', 'password': 'password-1', 'name': 'O2'}");
   bson_t *dup_phone =
      J("{'email': 'other@example.ru', 'password': 'password-1', 'name': 'O3', 'phone': '8 (916) 000-11-22'}");
   bson_t *bad = J("{'email': 'nope', 'password': 'short', 'name': '', 'phone': 'x', 'role': 'admin'}");

   make_user(f, "{'email': 'olga@example.ru', 'password': 'password-1', 'name': 'O', 'phone': '+7 916 000 11 22'}");
   /* Two users without a phone are fine (the phone index is partial). */
   make_user(f, "{'email': 'p1@example.ru', 'password': 'password-1', 'name': 'P1'}");
   make_user(f, "{'email': 'p2@example.ru', 'password': 'password-1', 'name': 'P2'}");

   assert_false(flora_users_create(f->store, f->config, dup_email, FLORA_ROLE_CUSTOMER, &problems,
                                   NULL, &error));
   assert_int_equal(error.code, FLORA_ERR_CONFLICT);
   assert_non_null(strstr(error.message, "email"));
   assert_false(flora_users_create(f->store, f->config, dup_phone, FLORA_ROLE_CUSTOMER, &problems,
                                   NULL, &error));
   assert_int_equal(error.code, FLORA_ERR_CONFLICT);
   assert_non_null(strstr(error.message, "phone"));

   /* Every failing field at once, including the unknown one. */
   assert_false(flora_users_create(f->store, f->config, bad, FLORA_ROLE_CUSTOMER, &problems, NULL,
                                   &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
   {
      char *s = flora_test_str(&problems);

      assert_non_null(strstr(s, "\"path\" : \"email\""));
      assert_non_null(strstr(s, "\"path\" : \"password\""));
      assert_non_null(strstr(s, "\"path\" : \"name\""));
      assert_non_null(strstr(s, "\"path\" : \"phone\""));
      assert_non_null(strstr(s, "\"path\" : \"role\""));
      bson_free(s);
   }
   bson_destroy(&problems);
   bson_destroy(dup_email);
   bson_destroy(dup_phone);
   bson_destroy(bad);
}

static void
test_session_expiry_checked_before_ttl_sweep(void **state)
{
   fixture_t *f = *state;
   char token[FLORA_TOKEN_SIZE];
   flora_principal_t p;
   int64_t count = 0;
   flora_error_t error = {0};
   bson_t *all = J("{}");

   make_user(f, "{'email': 'c@example.ru', 'password': 'password-1', 'name': 'C'}");
   login_ok(f, "c@example.ru", "password-1", token);
   assert_true(resolves(f, token, &p));
   expire_all(f, "sessions");
   /* Still stored (no sweep yet), but refused. */
   assert_true(flora_store_count_documents(f->store, "sessions", all, NULL, &count, &error));
   assert_int_equal(count, 1);
   assert_false(resolves(f, token, &p));
   bson_destroy(all);
}

static void
test_change_password_ends_other_sessions(void **state)
{
   fixture_t *f = *state;
   char a[FLORA_TOKEN_SIZE], b[FLORA_TOKEN_SIZE], c[FLORA_TOKEN_SIZE];
   flora_principal_t pa, pb;
   flora_error_t error = {0};
   bson_oid_t id = make_user(f, "{'email': 'd@example.ru', 'password': 'old-password', 'name': 'D'}");

   login_ok(f, "d@example.ru", "old-password", a);
   login_ok(f, "d@example.ru", "old-password", b);
   assert_true(resolves(f, a, &pa));
   assert_false(flora_users_change_password(f->store, f->config, &id, "wrong-password",
                                            "new-password", pa.session_hash, NULL, &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
   assert_false(flora_users_change_password(f->store, f->config, &id, "old-password", "short",
                                            pa.session_hash, NULL, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
   assert_true(flora_users_change_password(f->store, f->config, &id, "old-password",
                                           "new-password", pa.session_hash, NULL, &error));
   assert_true(resolves(f, a, &pa));
   assert_false(resolves(f, b, &pb));
   assert_false(flora_users_login(f->store, f->config, "d@example.ru", "old-password", c, NULL,
                                  &error));
   login_ok(f, "d@example.ru", "new-password", c);
}

static void
test_reset_token_single_use_and_expiry(void **state)
{
   fixture_t *f = *state;
   char token[FLORA_TOKEN_SIZE], session[FLORA_TOKEN_SIZE], email[255];
   flora_principal_t p;
   flora_error_t error = {0};
   bson_oid_t uid;
   bool issued = true;
   bson_oid_t id = make_user(f, "{'email': 'e@example.ru', 'password': 'first-password', 'name': 'E'}");

   /* An unknown address: success, nothing issued. */
   assert_true(flora_users_reset_request(f->store, f->config, "ghost@example.ru", &issued, token,
                                         &uid, email, &error));
   assert_false(issued);
   assert_string_equal(token, "");

   login_ok(f, "e@example.ru", "first-password", session);
   assert_true(flora_users_reset_request(f->store, f->config, "E@EXAMPLE.RU", &issued, token, &uid,
                                         email, &error));
   assert_true(issued);
   assert_true(bson_oid_equal(&uid, &id));
   assert_string_equal(email, "e@example.ru");
   {
      /* One outbox message (none for the unknown address), with the link and the address. */
      bson_t *all = J("{}");
      bson_t message;
      bool found = false;
      int64_t count = 0;
      bson_iter_t it, d;
      char path[128];

      assert_true(flora_store_count_documents(f->store, "outbox", all, NULL, &count, &error));
      assert_int_equal(count, 1);
      assert_true(flora_store_find_one(f->store, "outbox", all, NULL, &message, &found, &error));
      assert_true(bson_iter_init_find(&it, &message, "event"));
      assert_string_equal(bson_iter_utf8(&it, NULL), "user.password_reset");
      assert_true(bson_iter_init(&it, &message));
      assert_true(bson_iter_find_descendant(&it, "payload.to.email", &d));
      assert_string_equal(bson_iter_utf8(&d, NULL), "e@example.ru");
      assert_true(bson_iter_init(&it, &message));
      assert_true(bson_iter_find_descendant(&it, "payload.resetUrl", &d));
      snprintf(path, sizeof path, "reset-password?token=%s", token);
      assert_non_null(strstr(bson_iter_utf8(&d, NULL), path));
      bson_destroy(&message);
      bson_destroy(all);
   }
   assert_true(flora_users_reset_confirm(f->store, f->config, token, "second-password", NULL,
                                         &error));
   /* Used once: the second use fails, and the old sessions are gone. */
   assert_false(flora_users_reset_confirm(f->store, f->config, token, "third-password", NULL,
                                          &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
   assert_false(resolves(f, session, &p));
   login_ok(f, "e@example.ru", "second-password", session);

   /* An expired token (still stored: no sweep yet) is refused. */
   assert_true(flora_users_reset_request(f->store, f->config, "e@example.ru", &issued, token, &uid,
                                         email, &error));
   expire_all(f, "password_resets");
   assert_false(flora_users_reset_confirm(f->store, f->config, token, "fourth-password", NULL,
                                          &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
   assert_false(flora_users_reset_confirm(f->store, f->config, "made-up", "fourth-password", NULL,
                                          &error));
   assert_int_equal(error.code, FLORA_ERR_UNAUTHORIZED);
}

static void
test_address_book_bound_and_default(void **state)
{
   fixture_t *f = *state;
   flora_error_t error = {0};
   bson_t problems = BSON_INITIALIZER;
   bson_oid_t id = make_user(f, "{'email': 'g@example.ru', 'password': 'password-1', 'name': 'G'}");
   bson_oid_t first, last;
   bson_t user, out;
   bool found;
   bson_iter_t it;
   bson_t *bad = J("{'recipientName': '', 'phone': '123', 'text': 5, 'lat': 91, 'extra': 1}");

   for (int i = 0; i < FLORA_USERS_MAX_ADDRESSES; i++) {
      bson_t *a = J(i == 3 ? "{'recipientName': 'Mum', 'phone': '8 916 111 22 33', 'text': 'Tverskaya 1', 'isDefault': true}"
                           : "{'recipientName': 'Mum', 'phone': '+79161112233', 'text': 'Arbat 2', 'lat': 55.75, 'lon': 37.59}");

      if (!flora_users_address_add(f->store, &id, a, &problems, &out, &error)) {
         fail_msg("address %d: %s", i, error.message);
      }
      assert_true(bson_iter_init_find(&it, &out, "_id"));
      bson_oid_copy(bson_iter_oid(&it), i == 3 ? &first : &last);
      assert_true(bson_iter_init_find(&it, &out, "phone"));
      assert_string_equal(bson_iter_utf8(&it, NULL), "+79161112233");
      bson_destroy(&out);
      bson_destroy(a);
   }
   {
      bson_t *a = J("{'recipientName': 'One too many', 'phone': '+79161112233', 'text': 'x'}");

      assert_false(flora_users_address_add(f->store, &id, a, &problems, NULL, &error));
      assert_int_equal(error.code, FLORA_ERR_CONFLICT);
      bson_destroy(a);
   }
   /* Exactly one default: the one asked for. */
   assert_true(flora_users_get(f->store, &id, &user, &found, &error));
   {
      char *s = flora_test_str(&user);
      int defaults = 0;

      for (const char *p = s; (p = strstr(p, "\"isDefault\" : true")); p++) {
         defaults++;
      }
      assert_int_equal(defaults, 1);
      bson_free(s);
   }
   bson_destroy(&user);
   {
      bson_t *patch = J("{'isDefault': true, 'label': 'work'}");

      assert_true(flora_users_address_update(f->store, &id, &last, patch, NULL, &out, &error));
      assert_true(bson_iter_init_find(&it, &out, "label"));
      assert_string_equal(bson_iter_utf8(&it, NULL), "work");
      bson_destroy(&out);
      bson_destroy(patch);
   }
   assert_true(flora_users_get(f->store, &id, &user, &found, &error));
   {
      char *s = flora_test_str(&user);
      int defaults = 0;

      for (const char *p = s; (p = strstr(p, "\"isDefault\" : true")); p++) {
         defaults++;
      }
      assert_int_equal(defaults, 1);
      bson_free(s);
   }
   bson_destroy(&user);
   assert_true(flora_users_address_delete(f->store, &id, &first, &error));
   assert_false(flora_users_address_delete(f->store, &id, &first, &error));
   assert_int_equal(error.code, FLORA_ERR_NOT_FOUND);

   /* Every problem of a bad address at once. */
   bson_reinit(&problems);
   assert_false(flora_users_address_add(f->store, &id, bad, &problems, NULL, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
   assert_int_equal(bson_count_keys(&problems), 5);
   bson_destroy(bad);
   bson_destroy(&problems);
}

static void
test_favourites_bound(void **state)
{
   fixture_t *f = *state;
   flora_error_t error = {0};
   bson_oid_t id = make_user(f, "{'email': 'h@example.ru', 'password': 'password-1', 'name': 'H'}");
   bson_t *product = J("{'sku': 'FAV-1', 'name': 'Розы', 'variants': [{'sku': 'FAV-1-M', 'name': 'M', 'price': 100}]}");
   bson_t out, arr;
   bson_t update = BSON_INITIALIZER;
   bson_t filter = BSON_INITIALIZER;
   bson_oid_t pid, ghost;
   bson_iter_t it;
   bson_t user;
   bool found;

   assert_true(flora_catalog_create_product(f->store, product, NULL, &out, &error));
   assert_true(bson_iter_init_find(&it, &out, "_id"));
   bson_oid_copy(bson_iter_oid(&it), &pid);
   bson_destroy(&out);

   assert_true(flora_users_favourite_add(f->store, &id, &pid, &error));
   assert_true(flora_users_favourite_add(f->store, &id, &pid, &error)); /* idempotent */
   bson_oid_init(&ghost, NULL);
   assert_false(flora_users_favourite_add(f->store, &id, &ghost, &error));
   assert_int_equal(error.code, FLORA_ERR_NOT_FOUND);
   assert_true(flora_users_get(f->store, &id, &user, &found, &error));
   assert_true(bson_iter_init_find(&it, &user, "favourites"));
   {
      bson_iter_t a;
      int n = 0;

      bson_iter_recurse(&it, &a);
      while (bson_iter_next(&a)) {
         n++;
      }
      assert_int_equal(n, 1);
   }
   bson_destroy(&user);
   assert_true(flora_users_favourite_remove(f->store, &id, &pid, &error));

   /* Fill the list to its bound with other ids: the next one is refused, one already
    * there is still fine. */
   BSON_APPEND_OID(&filter, "_id", &id);
   {
      bson_t set;

      BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
      BSON_APPEND_ARRAY_BEGIN(&set, "favourites", &arr);
      for (int i = 0; i < FLORA_USERS_MAX_FAVOURITES; i++) {
         char key[16];
         const char *k;
         bson_oid_t o;

         bson_uint32_to_string((uint32_t) i, &k, key, sizeof key);
         bson_oid_init(&o, NULL);
         BSON_APPEND_OID(&arr, k, &o);
      }
      bson_append_array_end(&set, &arr);
      bson_append_document_end(&update, &set);
   }
   assert_true(flora_store_update_one(f->store, "users", &filter, &update, NULL, NULL, &error));
   assert_false(flora_users_favourite_add(f->store, &id, &pid, &error));
   assert_int_equal(error.code, FLORA_ERR_CONFLICT);
   bson_destroy(&update);
   bson_destroy(&filter);
   bson_destroy(product);
}

static void
test_rate_limit_window(void **state)
{
   fixture_t *f = *state;
   flora_error_t error = {0};
   int64_t retry = 0;

   for (int i = 0; i < 3; i++) {
      assert_true(flora_rate_limit_hit(f->store, "login:email:x@example.ru", 3, 60, &retry, &error));
   }
   assert_false(flora_rate_limit_hit(f->store, "login:email:x@example.ru", 3, 60, &retry, &error));
   assert_int_equal(error.code, FLORA_ERR_RATE_LIMITED);
   assert_true(retry >= 1 && retry <= 60);
   /* Another key has its own window. */
   assert_true(flora_rate_limit_hit(f->store, "login:email:y@example.ru", 3, 60, &retry, &error));
   /* An ended window that the TTL sweep has not removed yet starts over. */
   expire_all(f, "rate_limits");
   assert_true(flora_rate_limit_hit(f->store, "login:email:x@example.ru", 3, 60, &retry, &error));
   assert_true(flora_rate_limit_hit(f->store, "login:email:x@example.ru", 3, 60, &retry, &error));
}

static void
test_list_users_and_roles(void **state)
{
   fixture_t *f = *state;
   flora_error_t error = {0};
   bson_t out;
   bson_iter_t it;
   flora_role_t role;

   make_user(f, "{'email': 'k1@example.ru', 'password': 'password-1', 'name': 'K1'}");
   make_user(f, "{'email': 'k2@example.ru', 'password': 'password-1', 'name': 'K2'}");
   assert_true(flora_users_list(f->store, FLORA_ROLE_NONE, 1, 1, &out, &error));
   assert_true(bson_iter_init_find(&it, &out, "total"));
   assert_int_equal(bson_iter_as_int64(&it), 2);
   {
      char *s = flora_test_str(&out);

      assert_null(strstr(s, "passwordHash"));
      bson_free(s);
   }
   bson_destroy(&out);
   assert_true(flora_users_list(f->store, FLORA_ROLE_ADMIN, 1, 10, &out, &error));
   assert_true(bson_iter_init_find(&it, &out, "total"));
   assert_int_equal(bson_iter_as_int64(&it), 0);
   bson_destroy(&out);
   assert_true(flora_role_parse("manager", &role));
   assert_int_equal(role, FLORA_ROLE_MANAGER);
   assert_false(flora_role_parse("Admin", &role));
   assert_string_equal(flora_role_name(FLORA_ROLE_ADMIN), "admin");
}

/* ---- concurrency: the bounds hold with many writers (a file store, several threads) --- */

#define THREADS 4
#define PER_THREAD 6

typedef struct race {
   flora_store_t *store;
   bson_oid_t user_id;
   int added;    /* addresses added / rate-limit hits allowed */
   int refused;  /* CONFLICT / RATE_LIMITED */
   int other;    /* anything else */
   pthread_mutex_t lock;
} race_t;

static void
tally(race_t *r, bool ok, const flora_error_t *error, uint32_t refused_code)
{
   pthread_mutex_lock(&r->lock);
   if (ok) {
      r->added++;
   } else if (error->domain == FLORA_DOMAIN_SHOP && error->code == refused_code) {
      r->refused++;
   } else {
      r->other++;
      print_error("unexpected: %s\n", error->message);
   }
   pthread_mutex_unlock(&r->lock);
}

static void *
add_addresses(void *arg)
{
   race_t *r = arg;

   for (int i = 0; i < PER_THREAD; i++) {
      bson_t *a = J("{'recipientName': 'R', 'phone': '+79160000001', 'text': 'Moscow'}");
      flora_error_t error = {0};
      bool ok = flora_users_address_add(r->store, &r->user_id, a, NULL, NULL, &error);

      tally(r, ok, &error, FLORA_ERR_CONFLICT);
      bson_destroy(a);
   }
   return NULL;
}

static void *
hit_limit(void *arg)
{
   race_t *r = arg;

   for (int i = 0; i < PER_THREAD; i++) {
      flora_error_t error = {0};
      int64_t retry = 0;
      bool ok = flora_rate_limit_hit(r->store, "login:ip:203.0.113.7", 7, 60, &retry, &error);

      tally(r, ok, &error, FLORA_ERR_RATE_LIMITED);
   }
   return NULL;
}

static void
run_race(race_t *r, void *(*fn)(void *))
{
   pthread_t threads[THREADS];

   for (int i = 0; i < THREADS; i++) {
      assert_int_equal(pthread_create(&threads[i], NULL, fn, r), 0);
   }
   for (int i = 0; i < THREADS; i++) {
      pthread_join(threads[i], NULL);
   }
}

static void
test_bounds_hold_under_concurrency(void **state)
{
   fixture_t *f = *state;
   char dir[] = "/tmp/flora-users-XXXXXX";
   char uri[128], path[96];
   flora_error_t error = {0};
   race_t r = {0};
   fixture_t file = {.config = f->config};
   bson_t *input = J("{'email': 'race@example.ru', 'password': 'password-1', 'name': 'R'}");
   bson_t out;
   bson_iter_t it;

   assert_non_null(mkdtemp(dir));
   snprintf(uri, sizeof uri, "sqlite:%s/users.db", dir);
   if (!flora_store_open(&file.store, uri, NULL, &error) ||
       !flora_migrate_up(file.store, flora_migrate_list(), NULL, NULL, &error)) {
      fail_msg("file store: %s", error.message);
   }
   flora_shop_attach_schemas(file.store);
   assert_true(flora_users_create(file.store, f->config, input, FLORA_ROLE_CUSTOMER, NULL, &out,
                                  &error));
   assert_true(bson_iter_init_find(&it, &out, "_id"));
   bson_oid_copy(bson_iter_oid(&it), &r.user_id);
   bson_destroy(&out);
   r.store = file.store;
   pthread_mutex_init(&r.lock, NULL);

   run_race(&r, add_addresses);
   assert_int_equal(r.other, 0);
   assert_int_equal(r.added, FLORA_USERS_MAX_ADDRESSES);
   assert_int_equal(r.refused, THREADS * PER_THREAD - FLORA_USERS_MAX_ADDRESSES);

   r.added = r.refused = 0;
   run_race(&r, hit_limit);
   assert_int_equal(r.other, 0);
   assert_int_equal(r.added, 7);
   assert_int_equal(r.refused, THREADS * PER_THREAD - 7);

   pthread_mutex_destroy(&r.lock);
   flora_store_close(file.store);
   bson_destroy(input);
   snprintf(path, sizeof path, "%s/users.db", dir);
   unlink(path);
   snprintf(path, sizeof path, "%s/users.db-wal", dir);
   unlink(path);
   snprintf(path, sizeof path, "%s/users.db-shm", dir);
   unlink(path);
   rmdir(dir);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_register_login_logout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_same_error_for_wrong_password_and_unknown_email, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unique_email_and_phone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_session_expiry_checked_before_ttl_sweep, setup, teardown),
      cmocka_unit_test_setup_teardown(test_change_password_ends_other_sessions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reset_token_single_use_and_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_address_book_bound_and_default, setup, teardown),
      cmocka_unit_test_setup_teardown(test_favourites_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rate_limit_window, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_users_and_roles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bounds_hold_under_concurrency, setup, teardown),
   };

   return cmocka_run_group_tests_name("users", tests, NULL, NULL);
}
