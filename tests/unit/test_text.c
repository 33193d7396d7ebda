/* Text analysis (lib/text/text.c): word splitting, folding, stemming, errors, threads. */
#include "flora_test.h"

#include <pthread.h>

#include "flora/text.h"

static char *
joined(const char *text, const char *language)
{
   flora_error_t err = {0};
   char *s = flora_text_terms_joined(text, strlen(text), language, &err);

   if (!s) {
      fail_msg("terms of \"%s\" failed: %s", text, err.message);
   }
   return s;
}

/* (text, language, expected terms joined by spaces) */
static const struct {
   const char *text;
   const char *language;
   const char *expected;
} term_cases[] = {
   /* Russian inflections meet at one stem. */
   {"Розы", "russian", "роз"},
   {"розой", "russian", "роз"},
   {"роза", "ru", "роз"},
   {"РОЗАМИ", "russian", "роз"},
   /* English plural and singular meet. */
   {"Roses", "english", "rose"},
   {"rose", "en", "rose"},
   /* Mixed scripts: each word by its own script's stemmer; digits kept. */
   {"Роза Red Naomi 25 шт", "russian", "роз red naomi 25 шт"},
   {"Tulips and пионы", "english", "tulip and пион"},
   /* ё folds to е before stemming: both spellings give one term. */
   {"Ёлка", "russian", "елк"},
   {"елка", "russian", "елк"},
   {"зелёный зеленый", "russian", "зелен зелен"},
   /* Decomposed ё (е + U+0308) is normalised first. */
   {"зел\xd0\xb5\xcc\x88ный", "russian", "зелен"},
   /* Punctuation, symbols and emoji are not words. */
   {"Розы!!! 🌹🌷 — «букет», (пионы)...", "russian", "роз букет пион"},
   {"🌹 ✨ —", "russian", ""},
   {"", "russian", ""},
   /* Numbers stay whole (UAX #29 keeps 5,990 and 5.5 together). */
   {"5990 5,990 5.5", "russian", "5990 5,990 5.5"},
   /* "none" folds case and never stems. */
   {"Розы Roses", "none", "розы roses"},
   /* Other scripts are folded, not stemmed. */
   {"ΑΓΆΠΗ", "russian", "αγάπη"},
};

static void
test_terms_table(void **state)
{
   (void) state;
   for (size_t i = 0; i < sizeof term_cases / sizeof term_cases[0]; i++) {
      char *got = joined(term_cases[i].text, term_cases[i].language);

      int differ = strcmp(got, term_cases[i].expected);

      if (differ) {
         print_error("case %zu \"%s\" (%s): got \"%s\", expected \"%s\"\n", i,
                     term_cases[i].text, term_cases[i].language, got, term_cases[i].expected);
      }
      free(got);
      assert_int_equal(differ, 0);
   }
}

typedef struct collected {
   char terms[16][64];
   size_t positions[16];
   size_t n;
   size_t stop_after;
} collected_t;

static bool
collect(void *ctx, const char *term, size_t position)
{
   collected_t *c = ctx;

   assert_true(c->n < 16);
   snprintf(c->terms[c->n], sizeof c->terms[c->n], "%s", term);
   c->positions[c->n] = position;
   c->n++;
   return c->stop_after == 0 || c->n < c->stop_after;
}

static void
test_positions_and_stop(void **state)
{
   const char *text = "Букет: 15 роз, 🌹 и эвкалипт";
   collected_t c = {.n = 0};
   flora_error_t err = {0};

   (void) state;
   assert_true(flora_text_terms(text, strlen(text), "russian", collect, &c, &err));
   assert_int_equal(c.n, 5);
   assert_string_equal(c.terms[0], "букет");
   assert_string_equal(c.terms[1], "15");
   assert_string_equal(c.terms[2], "роз");
   assert_string_equal(c.terms[3], "и");
   assert_string_equal(c.terms[4], "эвкалипт");
   for (size_t i = 0; i < c.n; i++) {
      assert_int_equal(c.positions[i], i);
   }

   /* The callback stops the walk. */
   memset(&c, 0, sizeof c);
   c.stop_after = 2;
   assert_true(flora_text_terms(text, strlen(text), "russian", collect, &c, &err));
   assert_int_equal(c.n, 2);

   /* len is honoured: no NUL needed, nothing read past it. */
   memset(&c, 0, sizeof c);
   assert_true(flora_text_terms("розы пионы", strlen("розы"), "russian", collect, &c, &err));
   assert_int_equal(c.n, 1);
   assert_string_equal(c.terms[0], "роз");
}

static void
test_invalid_utf8(void **state)
{
   static const char *const bad[] = {
      "\xff",                 /* never valid */
      "роз\xd0",              /* truncated sequence */
      "\xc0\xaf",             /* overlong '/' */
      "\xed\xa0\x80",         /* UTF-16 surrogate */
      "ok \xe2\x82 more",     /* truncated in the middle */
   };
   collected_t c = {.n = 0};

   (void) state;
   for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      flora_error_t err = {0};

      assert_false(flora_text_terms(bad[i], strlen(bad[i]), "russian", collect, &c, &err));
      assert_int_equal(err.domain, FLORA_DOMAIN_INPUT);
      assert_int_equal(err.code, FLORA_ERR_INVALID);
      assert_null(flora_text_terms_joined(bad[i], strlen(bad[i]), "none", &err));
      assert_null(flora_text_fold(bad[i], strlen(bad[i])));
   }
   assert_int_equal(c.n, 0);
}

static void
test_unknown_language(void **state)
{
   flora_error_t err = {0};
   collected_t c = {.n = 0};

   (void) state;
   assert_false(flora_text_terms("roses", 5, "klingon", collect, &c, &err));
   assert_int_equal(err.domain, FLORA_DOMAIN_STORE);
   assert_int_equal(err.code, FLORA_STORE_BAD_VALUE);
   assert_non_null(strstr(err.message, "klingon"));
   assert_false(flora_text_terms("roses", 5, NULL, collect, &c, &err));
   assert_int_equal(c.n, 0);

   assert_true(flora_text_language_supported("russian"));
   assert_true(flora_text_language_supported("english"));
   assert_true(flora_text_language_supported("ru"));
   assert_true(flora_text_language_supported("en"));
   assert_true(flora_text_language_supported("none"));
   assert_false(flora_text_language_supported("french"));
   assert_false(flora_text_language_supported(""));
   assert_false(flora_text_language_supported(NULL));
}

static void
test_fold(void **state)
{
   static const struct {
      const char *in;
      const char *out;
   } cases[] = {
      {"Роза RED Naomi", "роза red naomi"},
      {"ЁЛКА ёлка", "елка елка"},
      {"Straße", "strasse"}, /* full case folding, not just lower-casing */
      {"🌹 5 шт.", "🌹 5 шт."},
      {"", ""},
   };

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      char *f = flora_text_fold(cases[i].in, strlen(cases[i].in));

      assert_non_null(f);
      assert_string_equal(f, cases[i].out);
      free(f);
   }
}

/* Snowball stemmers are not thread-safe; each thread must get its own. Many threads stem
 * different words at once and must all see the single-threaded answers. */
#define THREADS 8
#define ROUNDS 400

static void *
stem_worker(void *arg)
{
   static const struct {
      const char *text;
      const char *expected;
   } words[] = {
      {"Розы розой роза", "роз роз роз"},
      {"Roses rose running", "rose rose run"},
      {"тюльпанами пионов хризантемы", "тюльпан пион хризантем"},
      {"Peonies tulips bouquets", "peoni tulip bouquet"},
   };
   intptr_t id = (intptr_t) arg;
   intptr_t bad = 0;

   for (int r = 0; r < ROUNDS; r++) {
      size_t w = (size_t) (id + r) % (sizeof words / sizeof words[0]);
      flora_error_t err = {0};
      char *got = flora_text_terms_joined(words[w].text, strlen(words[w].text), "russian", &err);

      if (!got || strcmp(got, words[w].expected) != 0) {
         bad++;
      }
      free(got);
   }
   return (void *) bad;
}

static void
test_threads(void **state)
{
   pthread_t threads[THREADS];

   (void) state;
   for (intptr_t i = 0; i < THREADS; i++) {
      assert_int_equal(pthread_create(&threads[i], NULL, stem_worker, (void *) i), 0);
   }
   for (int i = 0; i < THREADS; i++) {
      void *bad = NULL;

      assert_int_equal(pthread_join(threads[i], &bad), 0);
      assert_int_equal((intptr_t) bad, 0);
   }
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_terms_table),   cmocka_unit_test(test_positions_and_stop),
      cmocka_unit_test(test_invalid_utf8),  cmocka_unit_test(test_unknown_language),
      cmocka_unit_test(test_fold),          cmocka_unit_test(test_threads),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
