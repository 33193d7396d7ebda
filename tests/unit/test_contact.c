/* E-mail and phone normalisation: table tests. */
#include "flora_test.h"

#include "flora/contact.h"

static void
test_email(void **state)
{
   static const struct {
      const char *in;
      const char *out; /* NULL: refused */
   } cases[] = {
      {"Anna.Petrova@Example.RU", "anna.petrova@example.ru"},
      {"  user+tag@mail.example.com ", "user+tag@mail.example.com"},
      {"o'brien@example.ie", "o'brien@example.ie"},
      {"a@b.co", "a@b.co"},
      {"почта@пример.рф", "почта@пример.рф"},
      {"", NULL},
      {"plainaddress", NULL},
      {"two@@example.com", NULL},
      {"a@b@example.com", NULL},
      {".dot@example.com", NULL},
      {"dot.@example.com", NULL},
      {"do..t@example.com", NULL},
      {"user@localhost", NULL},
      {"user@-example.com", NULL},
      {"user@example-.com", NULL},
      {"user@exa_mple.com", NULL},
      {"user name@example.com", NULL},
      {"\"quoted\"@example.com", NULL},
      {"user@example..com", NULL},
   };
   char out[256];

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      flora_error_t e = {0};
      bool ok = flora_email_normalize(cases[i].in, out, sizeof out, &e);

      if (cases[i].out) {
         if (!ok) {
            fail_msg("%s refused: %s", cases[i].in, e.message);
         }
         assert_string_equal(out, cases[i].out);
      } else {
         if (ok) {
            fail_msg("%s accepted as %s", cases[i].in, out);
         }
         assert_int_equal(e.domain, FLORA_DOMAIN_VALIDATION);
         assert_true(strlen(e.message) > 0);
      }
   }
   {
      char longer[300];
      flora_error_t e = {0};

      memset(longer, 'a', 70);
      strcpy(longer + 70, "@example.com");
      assert_false(flora_email_normalize(longer, out, sizeof out, &e));
   }
}

static void
test_phone(void **state)
{
   static const struct {
      const char *in;
      const char *out;
   } cases[] = {
      {"89161234567", "+79161234567"},
      {"8 (916) 123-45-67", "+79161234567"},
      {"+7 916 123 45 67", "+79161234567"},
      {"7-916-123-45-67", "+79161234567"},
      {"9161234567", "+79161234567"},
      {"+7 (495) 123-45-67", "+74951234567"},
      {"+44 20 7946 0958", "+442079460958"},
      {"+1 (415) 555-2671", "+14155552671"},
      {"", NULL},
      {"12345", NULL},
      {"4951234567", NULL},           /* ten digits, not a mobile: ambiguous */
      {"+7 916 123 45 6", NULL},      /* +7 with 9 national digits */
      {"+0 123 456 789", NULL},
      {"+1234567890123456", NULL},    /* 16 digits */
      {"8916abc4567", NULL},
      {"+7 916 123 45 67 ext 2", NULL},
      {"+79+161234567", NULL},
      {"+7 016 123 45 67", NULL},
   };
   char out[32];

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      flora_error_t e = {0};
      bool ok = flora_phone_normalize(cases[i].in, out, sizeof out, &e);

      if (cases[i].out) {
         if (!ok) {
            fail_msg("%s refused: %s", cases[i].in, e.message);
         }
         assert_string_equal(out, cases[i].out);
      } else if (ok) {
         fail_msg("%s accepted as %s", cases[i].in, out);
      }
   }
   assert_true(flora_phone_is_russian("+79161234567"));
   assert_false(flora_phone_is_russian("+442079460958"));
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_email),
      cmocka_unit_test(test_phone),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
