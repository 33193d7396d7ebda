/* Templates: every event in every locale renders with a full sample order (no unresolved
 * placeholder), values are HTML-escaped, money is formatted as the shop shows it, and the
 * renderer refuses what it does not understand. */
#include "flora_test.h"

#include "flora/notify.h"
#include "notify/notify_private.h"

static bson_t *
sample_order(void)
{
   char path[4096];
   const char *src = getenv("FLORA_SOURCE_DIR");
   bson_json_reader_t *reader;
   bson_error_t err;
   bson_t *doc = bson_new();

   snprintf(path, sizeof path, "%s/tests/data/notify/sample_order.json", src ? src : "..");
   reader = bson_json_reader_new_from_file(path, &err);
   if (!reader) {
      fail_msg("%s: %s", path, err.message);
   }
   assert_int_equal(bson_json_reader_read(reader, doc, &err), 1);
   bson_json_reader_destroy(reader);
   return doc;
}

static void
test_every_template_renders(void **state)
{
   static const char *const locales[] = {"ru", "en"};
   bson_t *order = sample_order();
   bson_t *payload = J("{'name': 'Анна', 'resetUrl': 'https://flora.example/reset?t=abc&x=1',"
                       " 'productName': 'Букет «Нежность»', 'to': {'email': 'anna@example.ru'}}");
   size_t rendered = 0;

   (void) state;
   for (size_t e = 0; flora__notify_event_name(e); e++) {
      const char *event = flora__notify_event_name(e);

      for (size_t l = 0; l < 2; l++) {
         flora_notify_rendered_t r;
         flora_error_t error = {0};
         bson_t vars;
         const char *parts[4];

         if (!flora_notify_build_vars(event, locales[l], "Флора", payload, order, &vars, &error)) {
            fail_msg("%s/%s vars: %s", event, locales[l], error.message);
         }
         if (!flora_notify_render(event, locales[l], &vars, &r, &error)) {
            fail_msg("%s/%s: %s", event, locales[l], error.message);
         }
         parts[0] = r.subject;
         parts[1] = r.text;
         parts[2] = r.html;
         parts[3] = r.sms;
         for (size_t p = 0; p < 4; p++) {
            if (parts[p] && (strstr(parts[p], "{{") || strstr(parts[p], "}}"))) {
               fail_msg("%s/%s part %zu keeps a placeholder: %s", event, locales[l], p, parts[p]);
            }
         }
         assert_true(strlen(r.subject) > 0 && strlen(r.text) > 0 && strlen(r.html) > 0);
         /* an SMS template exists exactly for the events sent by SMS */
         assert_int_equal(r.sms != NULL, flora__notify_has_channel(event, "sms"));
         assert_true(flora__notify_has_channel(event, "email"));
         if (strncmp(event, "order.", 6) == 0) {
            assert_non_null(strstr(r.subject, "FL-2026-000123"));
            /* the customer's name is escaped in HTML and verbatim in text */
            assert_non_null(strstr(r.html, "Анна &lt;Смирнова&gt; &amp; Co"));
            assert_null(strstr(r.html, "<Смирнова>"));
            assert_non_null(strstr(r.text, "Анна <Смирнова> & Co"));
         }
         if (strcmp(event, "order.created") == 0) {
            assert_non_null(strstr(r.text, "3\xc2\xa0" "050,00\xc2\xa0\xe2\x82\xbd"));
            assert_non_null(strstr(r.text, "\xc3\x97 2: 300,00\xc2\xa0\xe2\x82\xbd"));
            assert_non_null(strstr(r.text, "09:00\xe2\x80\x93" "12:00"));
            assert_non_null(strstr(r.text, l == 0 ? "14.02.2026" : "14 Feb 2026"));
            assert_non_null(strstr(r.html, "С праздником! &lt;3"));
            assert_non_null(strstr(r.text, l == 0 ? "Скидка: -100,00" : "Discount: -100,00"));
         }
         if (strcmp(event, "order.status_changed") == 0) {
            assert_non_null(strstr(r.subject, l == 0 ? "передан курьеру" : "out for delivery"));
         }
         if (strcmp(event, "user.password_reset") == 0) {
            assert_non_null(strstr(r.html, "href=\"https://flora.example/reset?t=abc&amp;x=1\""));
            assert_non_null(strstr(r.text, "https://flora.example/reset?t=abc&x=1"));
         }
         flora_notify_rendered_clear(&r);
         bson_destroy(&vars);
         rendered++;
      }
   }
   assert_int_equal(rendered, 12);
   bson_destroy(payload);
   bson_destroy(order);
}

static void
test_money(void **state)
{
   static const struct {
      int64_t minor;
      const char *currency;
      const char *expected;
   } cases[] = {
      {250000, "RUB", "2\xc2\xa0" "500,00\xc2\xa0\xe2\x82\xbd"},
      {0, "RUB", "0,00\xc2\xa0\xe2\x82\xbd"},
      {5, "RUB", "0,05\xc2\xa0\xe2\x82\xbd"},
      {99999, "RUB", "999,99\xc2\xa0\xe2\x82\xbd"},
      {123456789, "RUB", "1\xc2\xa0" "234\xc2\xa0" "567,89\xc2\xa0\xe2\x82\xbd"},
      {-150, "RUB", "-1,50\xc2\xa0\xe2\x82\xbd"},
      {100000, "EUR", "1\xc2\xa0" "000,00\xc2\xa0\xe2\x82\xac"},
      {100, "GBP", "1,00\xc2\xa0GBP"},
      {INT64_MIN, "RUB", "-92\xc2\xa0" "233\xc2\xa0" "720\xc2\xa0" "368\xc2\xa0" "547\xc2\xa0" "758,08\xc2\xa0\xe2\x82\xbd"},
   };
   char buf[64];

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      assert_true(flora_notify_format_money(cases[i].minor, cases[i].currency, buf, sizeof buf));
      assert_string_equal(buf, cases[i].expected);
   }
   assert_false(flora_notify_format_money(250000, "RUB", buf, 6));
}

static void
test_renderer(void **state)
{
   static const struct {
      const char *tmpl;
      bool html;
      const char *expected; /* NULL: an error containing `error` */
      const char *error;
   } cases[] = {
      {"Hi {{name}}!", false, "Hi <b>&!", NULL},
      {"Hi {{ name }}!", true, "Hi &lt;b&gt;&amp;!", NULL},
      {"{{#each items}}[{{n}}:{{name}}]{{/each}}", false, "[1:<b>&][2:x]", NULL},
      {"{{#if yes}}A{{else}}B{{/if}}{{#if no}}C{{else}}D{{/if}}{{#if empty}}E{{/if}}", false, "AD", NULL},
      {"{{#each items}}{{#if n}}{{n}}{{/if}}{{/each}}", false, "12", NULL},
      {"{{count}}/{{big}}", false, "3/9000000000", NULL},
      {"{{missing}}", false, NULL, "missing variable \"missing\""},
      {"{{#if missing}}x{{/if}}", false, NULL, "missing variable \"missing\""},
      {"{{#each items}}x", false, NULL, "is not closed"},
      {"{{#each items}}x{{/if}}", false, NULL, "is not closed"},
      {"{{/each}}", false, NULL, "unexpected"},
      {"{{name", false, NULL, "unterminated"},
      {"{{#unless x}}{{/unless}}", false, NULL, "unknown block"},
      {"{{#each name}}{{/each}}", false, NULL, "is not a list"},
      {"{{yes}}", false, NULL, "is not a string"},
   };
   bson_t *vars = J("{'name': '<b>&', 'yes': true, 'no': false, 'empty': '', 'count': 3,"
                    " 'big': {'$numberLong': '9000000000'},"
                    " 'items': [{'n': 1}, {'n': 2, 'name': 'x'}]}");

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      char *out = NULL;
      flora_error_t error = {0};
      bool ok = flora_notify_render_template(cases[i].tmpl, vars, cases[i].html, &out, &error);

      if (cases[i].expected) {
         if (!ok) {
            fail_msg("case %zu: %s", i, error.message);
         }
         assert_string_equal(out, cases[i].expected);
      } else {
         assert_false(ok);
         assert_null(out);
         if (!strstr(error.message, cases[i].error)) {
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, error.message, cases[i].error);
         }
      }
      free(out);
   }
   bson_destroy(vars);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_template_renders),
      cmocka_unit_test(test_money),
      cmocka_unit_test(test_renderer),
   };
   return cmocka_run_group_tests(tests, NULL, NULL);
}
