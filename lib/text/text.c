/* Text analysis: see include/flora/text.h.
 *
 * Pipeline: validate UTF-8 (u8_check) -> normalise to NFC and apply full Unicode case
 * folding (u8_casefold, no language tailoring) -> fold 'ё' to 'е' (the Russian search
 * convention: shops and readers write both) -> split into words at UAX #29 word
 * boundaries (u8_wordbreaks; unicode.org/reports/tr29) -> keep the segments holding a
 * letter or a decimal digit (punctuation, spaces, emoji are dropped) -> stem letters with
 * Snowball (libstemmer; snowballstem.org/algorithms/russian and /english) chosen by the
 * script of the word's first letter.
 *
 * Snowball stemmer objects are not thread-safe (libstemmer.h), so each thread keeps its
 * own pair, created on first use and deleted by a pthread key destructor when the thread
 * exits. */
#include "flora/text.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libstemmer.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>
#include <uniwbrk.h>

typedef enum stem_mode {
   STEM_NONE,  /* fold only */
   STEM_BY_SCRIPT, /* Cyrillic -> russian, Latin -> english */
} stem_mode_t;

typedef struct thread_stemmers {
   struct sb_stemmer *russian;
   struct sb_stemmer *english;
} thread_stemmers_t;

static pthread_key_t stemmers_key;
static pthread_once_t stemmers_once = PTHREAD_ONCE_INIT;
static bool stemmers_key_ok;

static void
stemmers_destroy(void *p)
{
   thread_stemmers_t *s = p;

   if (!s) {
      return;
   }
   if (s->russian) {
      sb_stemmer_delete(s->russian);
   }
   if (s->english) {
      sb_stemmer_delete(s->english);
   }
   free(s);
}

static void
stemmers_key_create(void)
{
   stemmers_key_ok = pthread_key_create(&stemmers_key, stemmers_destroy) == 0;
}

/* This thread's stemmers, created on first use; NULL on failure (error set). */
static thread_stemmers_t *
thread_stemmers(flora_error_t *error)
{
   thread_stemmers_t *s = NULL;

   pthread_once(&stemmers_once, stemmers_key_create);
   if (!stemmers_key_ok) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL,
                      "text: cannot create the thread key for stemmers");
      return NULL;
   }
   s = pthread_getspecific(stemmers_key);
   if (s) {
      return s;
   }
   s = calloc(1, sizeof *s);
   if (!s) {
      goto fail;
   }
   s->russian = sb_stemmer_new("russian", "UTF_8");
   s->english = sb_stemmer_new("english", "UTF_8");
   if (!s->russian || !s->english || pthread_setspecific(stemmers_key, s) != 0) {
      goto fail;
   }
   return s;

fail:
   stemmers_destroy(s);
   flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL,
                   "text: cannot create the Snowball stemmers (out of memory)");
   return NULL;
}

static bool
parse_language(const char *language, stem_mode_t *mode)
{
   static const struct {
      const char *name;
      stem_mode_t mode;
   } languages[] = {
      {"russian", STEM_BY_SCRIPT}, {"ru", STEM_BY_SCRIPT}, {"english", STEM_BY_SCRIPT},
      {"en", STEM_BY_SCRIPT},      {"none", STEM_NONE},
   };

   if (!language) {
      return false;
   }
   for (size_t i = 0; i < sizeof languages / sizeof languages[0]; i++) {
      if (strcmp(language, languages[i].name) == 0) {
         *mode = languages[i].mode;
         return true;
      }
   }
   return false;
}

bool
flora_text_language_supported(const char *language)
{
   stem_mode_t mode;

   return parse_language(language, &mode);
}

/* 'ё' (U+0451, D1 91) -> 'е' (U+0435, D0 B5), in place: same length. Valid UTF-8 only, so
 * 0xD1 is always a lead byte. After case folding no 'Ё' (U+0401) remains. */
static void
fold_yo(uint8_t *s, size_t n)
{
   for (size_t i = 0; i + 1 < n; i++) {
      if (s[i] == 0xD1 && s[i + 1] == 0x91) {
         s[i] = 0xD0;
         s[i + 1] = 0xB5;
         i++;
      }
   }
}

/* Folded copy (NFC, case folding, ё -> е) of valid UTF-8; malloc'd, *out_len set; NULL on
 * out of memory. Never NUL-terminated by libunistring, so one byte is added. */
static uint8_t *
fold_valid(const uint8_t *s, size_t n, size_t *out_len)
{
   uint8_t *folded = NULL;
   uint8_t *terminated = NULL;
   size_t len = 0;

   folded = u8_casefold(s, n, NULL, UNINORM_NFC, NULL, &len);
   if (!folded) {
      return NULL;
   }
   terminated = realloc(folded, len + 1);
   if (!terminated) {
      free(folded);
      return NULL;
   }
   terminated[len] = '\0';
   fold_yo(terminated, len);
   *out_len = len;
   return terminated;
}

char *
flora_text_fold(const char *utf8, size_t len)
{
   size_t out_len = 0;

   FLORA_ASSERT_ARG(utf8 || len == 0);
   if (len == 0) {
      return calloc(1, 1);
   }
   if (u8_check((const uint8_t *) utf8, len) != NULL) {
      return NULL;
   }
   return (char *) fold_valid((const uint8_t *) utf8, len, &out_len);
}

typedef enum word_kind {
   WORD_SKIP,   /* no letter, no digit: punctuation, spaces, symbols, emoji */
   WORD_DIGITS, /* digits (and separators) only: kept as is */
   WORD_CYRILLIC,
   WORD_LATIN,
   WORD_OTHER, /* letters of another script: folded, not stemmed */
} word_kind_t;

static word_kind_t
classify_word(const uint8_t *w, size_t n)
{
   const uint8_t *p = w;
   const uint8_t *end = w + n;
   bool digit = false;
   ucs4_t uc;
   int k;

   while (p < end) {
      k = u8_mbtouc(&uc, p, (size_t) (end - p));
      p += k;
      if (uc_is_property_alphabetic(uc)) {
         const uc_script_t *script = uc_script(uc);

         if (script && strcmp(script->name, "Cyrillic") == 0) {
            return WORD_CYRILLIC;
         }
         if (script && strcmp(script->name, "Latin") == 0) {
            return WORD_LATIN;
         }
         return WORD_OTHER;
      }
      if (uc_is_general_category(uc, UC_DECIMAL_DIGIT_NUMBER)) {
         digit = true;
      }
   }
   return digit ? WORD_DIGITS : WORD_SKIP;
}

bool
flora_text_terms(const char *utf8, size_t len, const char *language, flora_text_term_fn fn,
                 void *ctx, flora_error_t *error)
{
   stem_mode_t mode = STEM_NONE;
   thread_stemmers_t *stemmers = NULL;
   uint8_t *folded = NULL;
   char *breaks = NULL;
   char *word = NULL;
   size_t word_cap = 0;
   size_t n = 0;
   size_t position = 0;
   bool ok = false;

   FLORA_ASSERT_ARG(utf8 || len == 0);
   FLORA_ASSERT_ARG(fn);

   if (!parse_language(language, &mode)) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_BAD_VALUE,
                      "unsupported language: \"%s\" (supported: russian, english, ru, en, none)",
                      language ? language : "(null)");
      return false;
   }
   if (len == 0) {
      return true;
   }
   if (u8_check((const uint8_t *) utf8, len) != NULL) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "text is not valid UTF-8");
      return false;
   }
   if (mode == STEM_BY_SCRIPT) {
      stemmers = thread_stemmers(error);
      if (!stemmers) {
         return false;
      }
   }
   folded = fold_valid((const uint8_t *) utf8, len, &n);
   breaks = malloc(n ? n : 1);
   word_cap = n + 1;
   word = malloc(word_cap);
   if (!folded || !breaks || !word) {
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL, "text: out of memory");
      goto cleanup;
   }
   u8_wordbreaks(folded, n, breaks);

   for (size_t start = 0; start < n;) {
      size_t end = start + 1;
      struct sb_stemmer *stemmer = NULL;
      word_kind_t kind;

      while (end < n && !breaks[end]) {
         end++;
      }
      kind = classify_word(folded + start, end - start);
      if (kind != WORD_SKIP) {
         memcpy(word, folded + start, end - start);
         word[end - start] = '\0';
         if (mode == STEM_BY_SCRIPT && kind == WORD_CYRILLIC) {
            stemmer = stemmers->russian;
         } else if (mode == STEM_BY_SCRIPT && kind == WORD_LATIN) {
            stemmer = stemmers->english;
         }
         if (stemmer) {
            const sb_symbol *stem =
               sb_stemmer_stem(stemmer, (const sb_symbol *) word, (int) (end - start));
            int stem_len;

            if (!stem) {
               flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL,
                               "text: stemmer out of memory");
               goto cleanup;
            }
            stem_len = sb_stemmer_length(stemmer);
            if ((size_t) stem_len + 1 > word_cap) {
               char *grown = realloc(word, (size_t) stem_len + 1);

               if (!grown) {
                  flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL,
                                  "text: out of memory");
                  goto cleanup;
               }
               word = grown;
               word_cap = (size_t) stem_len + 1;
            }
            memcpy(word, stem, (size_t) stem_len);
            word[stem_len] = '\0';
         }
         if (word[0] != '\0') {
            if (!fn(ctx, word, position)) {
               break;
            }
            position++;
         }
      }
      start = end;
   }
   ok = true;

cleanup:
   free(folded);
   free(breaks);
   free(word);
   return ok;
}

typedef struct join_ctx {
   char *buf;
   size_t len;
   size_t cap;
   bool oom;
} join_ctx_t;

static bool
join_term(void *p, const char *term, size_t position)
{
   join_ctx_t *j = p;
   size_t tl = strlen(term);
   size_t need = j->len + tl + 2;

   (void) position;
   if (need > j->cap) {
      size_t cap = j->cap ? j->cap : 64;
      char *grown;

      while (cap < need) {
         cap *= 2;
      }
      grown = realloc(j->buf, cap);
      if (!grown) {
         j->oom = true;
         return false;
      }
      j->buf = grown;
      j->cap = cap;
   }
   if (j->len > 0) {
      j->buf[j->len++] = ' ';
   }
   memcpy(j->buf + j->len, term, tl);
   j->len += tl;
   j->buf[j->len] = '\0';
   return true;
}

char *
flora_text_terms_joined(const char *utf8, size_t len, const char *language,
                        flora_error_t *error)
{
   join_ctx_t j = {NULL, 0, 0, false};

   if (!flora_text_terms(utf8, len, language, join_term, &j, error)) {
      free(j.buf);
      return NULL;
   }
   if (j.oom) {
      free(j.buf);
      flora_error_set(error, FLORA_DOMAIN_STORE, FLORA_STORE_INTERNAL, "text: out of memory");
      return NULL;
   }
   if (!j.buf) {
      return calloc(1, 1);
   }
   return j.buf;
}
