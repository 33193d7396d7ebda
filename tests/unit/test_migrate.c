/* Migrations: ordering, records, checksums, the lock, down, and the built-in list on the
 * embedded engine. */
#include "flora_test.h"

#include <time.h>

#include "flora/migrate.h"
#include "flora/shop.h"
#include "flora/store.h"

static flora_store_t *store;
static char trail[256]; /* which up/down steps ran, in order */

static void
note(const char *step)
{
   strncat(trail, step, sizeof trail - strlen(trail) - 1);
}

static bool
up_a(flora_store_t *s, flora_error_t *error)
{
   bson_t *doc = J("{'_id': 'a'}");
   bool ok = flora_store_insert_one(s, "things", doc, NULL, NULL, error);

   bson_destroy(doc);
   note("+a");
   return ok;
}

static bool
down_a(flora_store_t *s, flora_error_t *error)
{
   bson_t *filter = J("{'_id': 'a'}");
   bool ok = flora_store_delete_one(s, "things", filter, NULL, NULL, error);

   bson_destroy(filter);
   note("-a");
   return ok;
}

static bool
up_b(flora_store_t *s, flora_error_t *error)
{
   (void) s;
   (void) error;
   note("+b");
   return true;
}

static bool
down_b(flora_store_t *s, flora_error_t *error)
{
   (void) s;
   (void) error;
   note("-b");
   return true;
}

static bool
up_fails(flora_store_t *s, flora_error_t *error)
{
   (void) s;
   note("+c");
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE, "boom");
   return false;
}

static const flora_migration_t m_a = {"0001_a", "first", up_a, down_a, NULL};
static const flora_migration_t m_a_changed = {"0001_a", "first, edited", up_a, down_a, NULL};
static const flora_migration_t m_b = {"0002_b", "second", up_b, down_b, NULL};
static const flora_migration_t m_b_irreversible = {"0002_b", "second", up_b, NULL, NULL};
static const flora_migration_t m_c = {"0003_c", "third fails", up_fails, NULL, NULL};

static const flora_migration_t *const list_ab[] = {&m_a, &m_b, NULL};
static const flora_migration_t *const list_a[] = {&m_a, NULL};
static const flora_migration_t *const list_changed[] = {&m_a_changed, &m_b, NULL};
static const flora_migration_t *const list_irreversible[] = {&m_a, &m_b_irreversible, NULL};
static const flora_migration_t *const list_abc[] = {&m_a, &m_b, &m_c, NULL};

static int
setup(void **state)
{
   flora_error_t error = {0};

   (void) state;
   trail[0] = '\0';
   return flora_store_open(&store, "sqlite::memory:", NULL, &error) ? 0 : -1;
}

static int
teardown(void **state)
{
   (void) state;
   flora_store_close(store);
   store = NULL;
   return 0;
}

static flora_migrate_options_t
opts(const char *owner)
{
   flora_migrate_options_t o = FLORA_MIGRATE_OPTIONS_INIT;

   o.owner = owner;
   return o;
}

static int64_t
count(const char *coll, const char *filter_json)
{
   bson_t *filter = J(filter_json);
   flora_error_t error = {0};
   int64_t n = -1;

   if (!flora_store_count_documents(store, coll, filter, NULL, &n, &error)) {
      fail_msg("count: %s", error.message);
   }
   bson_destroy(filter);
   return n;
}

static void
test_checksum(void **state)
{
   char a[65], a2[65], changed[65];
   flora_error_t error = {0};

   (void) state;
   assert_true(flora_migration_checksum(&m_a, a, &error));
   assert_true(flora_migration_checksum(&m_a, a2, &error));
   assert_true(flora_migration_checksum(&m_a_changed, changed, &error));
   assert_int_equal(strlen(a), 64);
   assert_int_equal(strspn(a, "0123456789abcdef"), 64);
   assert_string_equal(a, a2);
   assert_string_not_equal(a, changed);
}

static void
test_up_status_down(void **state)
{
   flora_migrate_options_t o = opts("test");
   flora_migration_status_t *st = NULL;
   flora_error_t error = {0};
   size_t n = 0, applied = 0, reverted = 0;
   char sum[65];

   (void) state;
   assert_true(flora_migrate_status(store, list_ab, &st, &n, &error));
   assert_int_equal(n, 2);
   assert_false(st[0].applied);
   assert_false(st[1].applied);
   free(st);

   if (!flora_migrate_up(store, list_ab, &o, &applied, &error)) {
      fail_msg("up: %s", error.message);
   }
   assert_int_equal(applied, 2);
   assert_string_equal(trail, "+a+b");
   assert_int_equal(count("things", "{}"), 1);
   assert_true(flora_migration_checksum(&m_a, sum, &error));
   {
      char filter[200];

      snprintf(filter, sizeof filter, "{'_id': '0001_a', 'checksum': '%s'}", sum);
      assert_int_equal(count(FLORA_MIGRATIONS_COLLECTION, filter), 1);
   }
   /* The lock is released: only the two records remain. */
   assert_int_equal(count(FLORA_MIGRATIONS_COLLECTION, "{}"), 2);

   /* Applied once: a second up does nothing. */
   assert_true(flora_migrate_up(store, list_ab, &o, &applied, &error));
   assert_int_equal(applied, 0);
   assert_string_equal(trail, "+a+b");

   assert_true(flora_migrate_status(store, list_ab, &st, &n, &error));
   assert_true(st[0].applied && st[1].applied);
   assert_false(st[0].checksum_mismatch);
   assert_true(st[0].applied_at_ms > 0);
   free(st);

   assert_true(flora_migrate_down(store, list_ab, 1, &o, &reverted, &error));
   assert_int_equal(reverted, 1);
   assert_string_equal(trail, "+a+b-b");
   assert_true(flora_migrate_down(store, list_ab, 5, &o, &reverted, &error));
   assert_int_equal(reverted, 1);
   assert_string_equal(trail, "+a+b-b-a");
   assert_int_equal(count("things", "{}"), 0);
   assert_int_equal(count(FLORA_MIGRATIONS_COLLECTION, "{}"), 0);
}

static void
test_refusals(void **state)
{
   flora_migrate_options_t o = opts("test");
   flora_migration_status_t *st = NULL;
   flora_error_t error = {0};
   size_t n = 0, applied = 0;

   (void) state;
   assert_true(flora_migrate_up(store, list_ab, &o, &applied, &error));

   /* A changed definition of an applied migration. */
   assert_false(flora_migrate_up(store, list_changed, &o, &applied, &error));
   assert_int_equal(error.code, FLORA_STORE_BAD_VALUE);
   assert_non_null(strstr(error.message, "0001_a"));
   assert_non_null(strstr(error.message, "checksum"));
   assert_true(flora_migrate_status(store, list_changed, &st, &n, &error));
   assert_true(st[0].checksum_mismatch);
   free(st);

   /* An applied migration this list does not know. */
   assert_true(flora_migrate_status(store, list_a, &st, &n, &error));
   assert_int_equal(n, 2);
   assert_null(st[1].migration);
   assert_string_equal(st[1].id, "0002_b");
   free(st);
   assert_false(flora_migrate_up(store, list_a, &o, &applied, &error));
   assert_non_null(strstr(error.message, "0002_b"));

   /* No down step. */
   assert_false(flora_migrate_down(store, list_irreversible, 1, &o, NULL, &error));
   assert_non_null(strstr(error.message, "cannot be reverted"));

   /* A failing up stops there, records nothing for it, and says which. */
   assert_false(flora_migrate_up(store, list_abc, &o, &applied, &error));
   assert_int_equal(applied, 0);
   assert_non_null(strstr(error.message, "migration 0003_c: boom"));
   assert_int_equal(count(FLORA_MIGRATIONS_COLLECTION, "{'_id': '0003_c'}"), 0);
   assert_int_equal(count(FLORA_MIGRATIONS_COLLECTION, "{'_id': 'lock'}"), 0);
}

static void
test_lock(void **state)
{
   flora_migrate_options_t o = opts("me");
   flora_error_t error = {0};
   size_t applied = 0;
   bson_t *held = BCON_NEW("_id", BCON_UTF8("lock"), "owner", BCON_UTF8("other-host:42"),
                           "expiresAt", BCON_DATE_TIME((int64_t) time(NULL) * 1000 + 600000));
   bson_t *filter = J("{'_id': 'lock'}");
   bson_t *expire = BCON_NEW("$set", "{", "expiresAt", BCON_DATE_TIME(1000), "}");

   (void) state;
   assert_true(flora_store_insert_one(store, FLORA_MIGRATIONS_COLLECTION, held, NULL, NULL,
                                      &error));
   assert_false(flora_migrate_up(store, list_ab, &o, &applied, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_STORE);
   assert_int_equal(error.code, FLORA_STORE_LOCK_TIMEOUT);
   assert_non_null(strstr(error.message, "other-host:42"));
   assert_string_equal(trail, "");
   assert_false(flora_migrate_down(store, list_ab, 1, &o, NULL, &error));
   assert_int_equal(error.code, FLORA_STORE_LOCK_TIMEOUT);

   /* The holder died: its lock expired and is taken over. */
   assert_true(flora_store_update_one(store, FLORA_MIGRATIONS_COLLECTION, filter, expire, NULL,
                                      NULL, &error));
   if (!flora_migrate_up(store, list_ab, &o, &applied, &error)) {
      fail_msg("up: %s", error.message);
   }
   assert_int_equal(applied, 2);
   assert_int_equal(count(FLORA_MIGRATIONS_COLLECTION, "{'_id': 'lock'}"), 0);
   bson_destroy(held);
   bson_destroy(filter);
   bson_destroy(expire);
}

static void
test_builtin_list(void **state)
{
   const flora_migration_t *const *list = flora_migrate_list();
   const flora_schema_t *const *schemas = flora_shop_schemas();
   flora_migrate_options_t o = opts("test");
   flora_error_t error = {0};
   size_t applied = 0;
   bson_t names, indexes, specs;

   (void) state;
   assert_non_null(list[0]);
   assert_string_equal(list[0]->id, "0001_create_collections");
   if (!flora_migrate_up(store, list, &o, &applied, &error)) {
      fail_msg("up: %s", error.message);
   }
   assert_true(applied >= 1);
   assert_true(flora_store_list_collections(store, &names, &error));
   for (size_t i = 0; schemas[i]; i++) {
      bson_iter_t it;
      bool found = false;

      bson_iter_init(&it, &names);
      while (bson_iter_next(&it)) {
         found = found || strcmp(bson_iter_utf8(&it, NULL), schemas[i]->collection) == 0;
      }
      if (!found) {
         fail_msg("collection %s was not created", schemas[i]->collection);
      }
      assert_true(flora_schema_index_specs(schemas[i], &specs, &error));
      assert_true(flora_store_list_indexes(store, schemas[i]->collection, &indexes, &error));
      assert_int_equal(bson_count_keys(&indexes), bson_count_keys(&specs) + 1);
      bson_destroy(&specs);
      bson_destroy(&indexes);
   }
   bson_destroy(&names);
   /* Reverting every migration drops them again. */
   assert_true(flora_migrate_down(store, list, applied, &o, NULL, &error));
   assert_true(flora_store_list_collections(store, &names, &error));
   assert_int_equal(bson_count_keys(&names), 1); /* migrations */
   bson_destroy(&names);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_checksum),
      cmocka_unit_test_setup_teardown(test_up_status_down, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
      cmocka_unit_test_setup_teardown(test_builtin_list, setup, teardown),
   };

   return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}
