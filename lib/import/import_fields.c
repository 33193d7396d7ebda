/* Field converters shared by the catalog importers (lib/import/import_private.h): money,
 * counts, florists' composition and size texts, photo lists, occasion tags. Inputs are
 * valid UTF-8 (the parsers check each record first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unictype.h>
#include <unistr.h>

#include "flora/text.h"
#include "import/import_private.h"

#define MONEY_MAX_UNITS 1000000000LL /* 10^9 roubles: far above any bouquet (schema bound) */
#define FLOWER_MAX_CHARS 100         /* products schema: composition[].flower maxlength */
#define COMPOSITION_MAX 100          /* products schema: variants[].composition maxlength */
#define STEMS_MAX 10000

static bool
is_space_uc(ucs4_t uc)
{
   return uc_is_property_white_space(uc) || uc == 0xFEFF || uc == 0x200B;
}

char *
flora__import_trim(const char *text)
{
   const uint8_t *s = (const uint8_t *) text;
   const uint8_t *start = s;
   const uint8_t *end = s + strlen(text);
   ucs4_t uc;
   char *out;

   while (start < end) {
      int k = u8_mbtouc(&uc, start, (size_t) (end - start));

      if (!is_space_uc(uc)) {
         break;
      }
      start += k;
   }
   while (end > start) {
      const uint8_t *prev = u8_prev(&uc, end, start);

      if (!prev || !is_space_uc(uc)) {
         break;
      }
      end = prev;
   }
   out = malloc((size_t) (end - start) + 1);
   if (!out) {
      return NULL;
   }
   memcpy(out, start, (size_t) (end - start));
   out[end - start] = '\0';
   return out;
}

void
flora__import_add_error(bson_t *errors, const char *ref, const char *reason)
{
   char idx[16];
   const char *key;
   bson_t item;

   bson_uint32_to_string(bson_count_keys(errors), &key, idx, sizeof idx);
   BSON_APPEND_DOCUMENT_BEGIN(errors, key, &item);
   BSON_APPEND_UTF8(&item, "ref", ref);
   BSON_APPEND_UTF8(&item, "reason", reason);
   bson_append_document_end(errors, &item);
}

/* Length of a digit-group separator at p (space, U+00A0, U+202F, U+2009), else 0. */
static size_t
group_separator(const char *p)
{
   static const char *const seps[] = {" ", "\xc2\xa0", "\xe2\x80\xaf", "\xe2\x80\x89", "'"};

   for (size_t i = 0; i < sizeof seps / sizeof seps[0]; i++) {
      size_t n = strlen(seps[i]);

      if (strncmp(p, seps[i], n) == 0) {
         return n;
      }
   }
   return 0;
}

/* Removes a currency suffix ("₽", "руб.", "руб", "р.", "RUB") and the blanks before it,
 * in place. */
static void
strip_currency_suffix(char *s)
{
   static const char *const suffixes[] = {"\xe2\x82\xbd", "руб.", "руб", "р.", "RUB", "RUR"};
   size_t len = strlen(s);

   for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
      size_t n = strlen(suffixes[i]);

      if (len >= n && strcmp(s + len - n, suffixes[i]) == 0) {
         len -= n;
         while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
            len--;
         }
         s[len] = '\0';
         return;
      }
   }
}

bool
flora__import_parse_money(const char *text, int64_t *out, char *reason, size_t reason_len)
{
   char *s = flora__import_trim(text);
   const char *p;
   int64_t units = 0;
   int64_t cents = 0;
   int decimals = 0;
   int digits = 0;
   bool ok = false;

   if (!s) {
      snprintf(reason, reason_len, "out of memory");
      return false;
   }
   strip_currency_suffix(s);
   p = s;
   if (*p == '\0') {
      snprintf(reason, reason_len, "is empty");
      goto cleanup;
   }
   if (*p == '-' || strncmp(p, "\xe2\x88\x92", 3) == 0) {
      snprintf(reason, reason_len, "is negative: \"%s\"", text);
      goto cleanup;
   }
   if (*p == '+') {
      p++;
   }
   while (*p) {
      size_t sep;

      if (*p >= '0' && *p <= '9') {
         units = units * 10 + (*p - '0');
         digits++;
         if (units > MONEY_MAX_UNITS) {
            snprintf(reason, reason_len, "is too large: \"%s\"", text);
            goto cleanup;
         }
         p++;
         continue;
      }
      sep = group_separator(p);
      if (sep && digits > 0 && p[sep] >= '0' && p[sep] <= '9') {
         p += sep;
         continue;
      }
      break;
   }
   if (digits == 0) {
      snprintf(reason, reason_len, "is not a number: \"%s\"", text);
      goto cleanup;
   }
   if (*p == '.' || *p == ',') {
      p++;
      while (*p >= '0' && *p <= '9') {
         if (decimals == 2) {
            snprintf(reason, reason_len, "has more than two decimals: \"%s\"", text);
            goto cleanup;
         }
         cents = cents * 10 + (*p - '0');
         decimals++;
         p++;
      }
      if (decimals == 0) {
         snprintf(reason, reason_len, "is not a number: \"%s\"", text);
         goto cleanup;
      }
      if (decimals == 1) {
         cents *= 10;
      }
   }
   if (*p != '\0') {
      snprintf(reason, reason_len, "is not a number: \"%s\"", text);
      goto cleanup;
   }
   *out = units * 100 + cents;
   ok = true;

cleanup:
   free(s);
   return ok;
}

bool
flora__import_parse_count(const char *text, int32_t *out, char *reason, size_t reason_len)
{
   char *s = flora__import_trim(text);
   int64_t n = 0;
   bool ok = false;

   if (!s) {
      snprintf(reason, reason_len, "out of memory");
      return false;
   }
   if (s[0] == '\0') {
      snprintf(reason, reason_len, "is empty");
      goto cleanup;
   }
   for (const char *p = s; *p; p++) {
      if (*p < '0' || *p > '9') {
         snprintf(reason, reason_len, "is not a whole number >= 0: \"%s\"", text);
         goto cleanup;
      }
      n = n * 10 + (*p - '0');
      if (n > 1000000) {
         snprintf(reason, reason_len, "is over 1000000: \"%s\"", text);
         goto cleanup;
      }
   }
   *out = (int32_t) n;
   ok = true;

cleanup:
   free(s);
   return ok;
}

/* ---- composition ----------------------------------------------------------------- */

static bool
is_lower(ucs4_t uc)
{
   return (uc >= 'a' && uc <= 'z') || (uc >= 0x430 && uc <= 0x44F) || uc == 0x451;
}

static bool
is_upper(ucs4_t uc)
{
   return (uc >= 'A' && uc <= 'Z') || (uc >= 0x410 && uc <= 0x42F) || uc == 0x401;
}

/* Cuts s (valid UTF-8) to at most max characters, on a character boundary. */
static void
cut_chars(char *s, size_t max)
{
   const uint8_t *p = (const uint8_t *) s;
   size_t n = 0;
   ucs4_t uc;

   while (*p) {
      if (n == max) {
         *(char *) p = '\0';
         return;
      }
      p += u8_mbtouc(&uc, p, strlen((const char *) p));
      n++;
   }
}

static void
append_stem(bson_t *arr, size_t *n, const char *flower, int64_t stems)
{
   char idx[16];
   const char *key;
   char *name;
   bson_t item;

   if (*n >= COMPOSITION_MAX) {
      return;
   }
   name = flora__import_trim(flower);
   if (!name) {
      return;
   }
   /* trailing punctuation left by the florist ("Эвкалипт." or "Лента -") */
   for (size_t len = strlen(name); len > 0 && strchr(".,:-", name[len - 1]); len--) {
      name[len - 1] = '\0';
   }
   {
      char *again = flora__import_trim(name);

      free(name);
      name = again;
   }
   if (!name || name[0] == '\0') {
      free(name);
      return;
   }
   cut_chars(name, FLOWER_MAX_CHARS);
   bson_uint32_to_string((uint32_t) *n, &key, idx, sizeof idx);
   BSON_APPEND_DOCUMENT_BEGIN(arr, key, &item);
   BSON_APPEND_UTF8(&item, "flower", name);
   if (stems >= 1 && stems <= STEMS_MAX) {
      BSON_APPEND_INT32(&item, "stems", (int32_t) stems);
   } else {
      BSON_APPEND_NULL(&item, "stems");
   }
   bson_append_document_end(arr, &item);
   (*n)++;
   free(name);
}

/* Ends-with on bytes; returns the length matched or 0. */
static size_t
ends_with(const char *s, size_t len, const char *suffix)
{
   size_t n = strlen(suffix);

   return len >= n && memcmp(s + len - n, suffix, n) == 0 ? n : 0;
}

/* Removes the first of suffixes that s[0..*len) ends with (and shortens *len). */
static bool
strip_any(const char *s, size_t *len, const char *const *suffixes)
{
   for (size_t i = 0; suffixes[i]; i++) {
      size_t k = ends_with(s, *len, suffixes[i]);

      if (k > 0) {
         *len -= k;
         return true;
      }
   }
   return false;
}

static void
strip_blanks(const char *s, size_t *len)
{
   while (*len > 0 && s[*len - 1] == ' ') {
      (*len)--;
   }
}

/* Parses one part "Роза - 5 шт" into name and count. *stems is -1 without a count. The
 * name is written into the part (shortened in place). */
static void
parse_part(char *part, int64_t *stems)
{
   static const char *const units[] = {"шт.", "шт", "pcs", NULL};
   static const char *const dashes[] = {"-", "\xe2\x80\x93", "\xe2\x80\x94", ":", NULL};
   size_t len = strlen(part);
   size_t digits_end;
   bool unit;
   int64_t n = 0;
   int64_t scale = 1;

   *stems = -1;
   unit = strip_any(part, &len, units);
   strip_blanks(part, &len);
   digits_end = len;
   while (len > 0 && part[len - 1] >= '0' && part[len - 1] <= '9' && digits_end - len < 6) {
      n += (part[len - 1] - '0') * scale;
      scale *= 10;
      len--;
   }
   if (len == digits_end || (len > 0 && part[len - 1] >= '0' && part[len - 1] <= '9')) {
      return; /* no count, or a number too long to be one */
   }
   strip_blanks(part, &len);
   if (!strip_any(part, &len, dashes) && !unit) {
      return; /* "Роза 40": a size or a variety, not a count */
   }
   strip_blanks(part, &len);
   if (len == 0) {
      return;
   }
   part[len] = '\0';
   *stems = n;
}

/* Appends the words of a part glued together by a scraper, split where a lower-case
 * letter is directly followed by a capital ("СвечаНобилис" -> "Свеча", "Нобилис"). */
static void
append_glued(bson_t *arr, size_t *n, const char *part)
{
   const uint8_t *s = (const uint8_t *) part;
   size_t len = strlen(part);
   size_t start = 0;
   size_t i = 0;
   ucs4_t prev = 0;

   while (i < len) {
      ucs4_t uc;
      int k = u8_mbtouc(&uc, s + i, len - i);

      if (i > start && is_lower(prev) && is_upper(uc)) {
         char *piece = strndup(part + start, i - start);

         if (piece) {
            append_stem(arr, n, piece, -1);
            free(piece);
         }
         start = i;
      }
      prev = uc;
      i += (size_t) k;
   }
   append_stem(arr, n, part + start, -1);
}

static bool
is_no_data(const char *text)
{
   char *folded = flora_text_fold(text, strlen(text));
   bool no = folded && (strncmp(folded, "нет данных", strlen("нет данных")) == 0 ||
                        strcmp(folded, "-") == 0 || strcmp(folded, "n/a") == 0);

   free(folded);
   return no;
}

size_t
flora__import_append_composition(bson_t *doc, const char *key, const char *text)
{
   char *copy = flora__import_trim(text);
   char sep = ';';
   size_t n = 0;
   bson_t arr;
   char *p;

   BSON_APPEND_ARRAY_BEGIN(doc, key, &arr);
   if (!copy || copy[0] == '\0' || is_no_data(copy) || flora__import_looks_like_size(copy)) {
      goto done;
   }
   if (!strchr(copy, ';') && strchr(copy, ',')) {
      sep = ',';
   }
   p = copy;
   for (;;) {
      char *end = strchr(p, sep);
      char *part;
      int64_t stems = -1;

      if (end) {
         *end = '\0';
      }
      part = flora__import_trim(p);
      if (part && part[0] != '\0') {
         parse_part(part, &stems);
         if (stems >= 0) {
            append_stem(&arr, &n, part, stems);
         } else {
            append_glued(&arr, &n, part);
         }
      }
      free(part);
      if (!end) {
         break;
      }
      p = end + 1;
   }

done:
   bson_append_array_end(doc, &arr);
   free(copy);
   return n;
}

/* ---- sizes ----------------------------------------------------------------------- */

/* The number after word in folded text ("высота-45см" -> 45), 0 when none or out of
 * 1..1000. Only blanks, '-', ':', '=', en and em dashes may stand between. */
static int32_t
number_after(const char *folded, const char *word)
{
   const char *p = strstr(folded, word);
   int64_t n = 0;
   int digits = 0;

   if (!p) {
      return 0;
   }
   p += strlen(word);
   for (;;) {
      if (*p == ' ' || *p == '-' || *p == ':' || *p == '=') {
         p++;
      } else if (strncmp(p, "\xe2\x80\x93", 3) == 0 || strncmp(p, "\xe2\x80\x94", 3) == 0) {
         p += 3;
      } else {
         break;
      }
   }
   while (*p >= '0' && *p <= '9' && digits < 5) {
      n = n * 10 + (*p - '0');
      digits++;
      p++;
   }
   if (digits == 0 || n < 1 || n > 1000) {
      return 0;
   }
   return (int32_t) n;
}

void
flora__import_parse_size(const char *text, int32_t *h, int32_t *w)
{
   char *folded = flora_text_fold(text, strlen(text));

   *h = *w = 0;
   if (!folded) {
      return;
   }
   *h = number_after(folded, "высота");
   if (*h == 0) {
      *h = number_after(folded, "height");
   }
   *w = number_after(folded, "ширина");
   if (*w == 0) {
      *w = number_after(folded, "width");
   }
   free(folded);
}

bool
flora__import_looks_like_size(const char *text)
{
   int32_t h = 0, w = 0;
   char *folded = flora_text_fold(text, strlen(text));
   bool counted = folded && strstr(folded, "шт");

   free(folded);
   if (counted) {
      return false;
   }
   flora__import_parse_size(text, &h, &w);
   return h > 0 || w > 0;
}

/* ---- images ---------------------------------------------------------------------- */

static bool
is_video_url(const char *url, size_t len)
{
   static const char *const exts[] = {".mp4", ".mov", ".webm", ".m4v"};
   size_t path_len = strcspn(url, "?#");

   if (path_len > len) {
      path_len = len;
   }
   for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
      size_t n = strlen(exts[i]);

      if (path_len >= n && strncasecmp(url + path_len - n, exts[i], n) == 0) {
         return true;
      }
   }
   return false;
}

bool
flora__import_append_images(bson_t *doc, const char *key, const char *text, char *reason,
                            size_t reason_len)
{
   const char *p = text;
   size_t n = 0;
   bson_t arr;
   bool ok = true;

   BSON_APPEND_ARRAY_BEGIN(doc, key, &arr);
   while (*p) {
      size_t len;
      char idx[16];
      const char *k;
      bson_t item;

      p += strspn(p, "; \t\r\n,");
      if (*p == '\0') {
         break;
      }
      len = strcspn(p, "; \t\r\n");
      if (!((len > 7 && strncasecmp(p, "http://", 7) == 0) ||
            (len > 8 && strncasecmp(p, "https://", 8) == 0))) {
         snprintf(reason, reason_len, "photo %zu is not an http(s) URL: \"%.*s\"", n + 1,
                  (int) (len > 80 ? 80 : len), p);
         ok = false;
         break;
      }
      bson_uint32_to_string((uint32_t) n, &k, idx, sizeof idx);
      BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
      bson_append_utf8(&item, "url", -1, p, (int) len);
      BSON_APPEND_UTF8(&item, "kind", is_video_url(p, len) ? "video" : "image");
      bson_append_document_end(&arr, &item);
      n++;
      p += len;
   }
   bson_append_array_end(doc, &arr);
   return ok;
}

/* ---- tags ------------------------------------------------------------------------ */

size_t
flora__import_append_inferred_tags(bson_t *doc, const char *key, const char *const *texts,
                                   size_t n_texts)
{
   /* Phrases in folded text (ё already е). A phrase starting with a digit must not follow
    * another digit ("18 марта" is not 8 March). */
   static const struct {
      const char *phrase;
      const char *tag;
   } rules[] = {
      {"8 марта", "march_8"},           {"8-е марта", "march_8"},
      {"8 march", "march_8"},           {"женский день", "march_8"},
      {"свадьб", "wedding"},            {"свадебн", "wedding"},
      {"невест", "wedding"},            {"wedding", "wedding"},
      {"день рождения", "birthday"},    {"дня рождения", "birthday"},
      {"днем рождения", "birthday"},    {"дню рождения", "birthday"},
      {"birthday", "birthday"},         {"14 февраля", "valentines_day"},
      {"валентин", "valentines_day"},   {"valentine", "valentines_day"},
      {"день матери", "mothers_day"},   {"дню матери", "mothers_day"},
      {"дня матери", "mothers_day"},    {"mother's day", "mothers_day"},
      {"новый год", "new_year"},        {"новым годом", "new_year"},
      {"нового года", "new_year"},      {"новогодн", "new_year"},
      {"new year", "new_year"},
   };
   const char *found[sizeof rules / sizeof rules[0]];
   size_t n_found = 0;
   bson_t arr;

   for (size_t t = 0; t < n_texts; t++) {
      char *folded;

      if (!texts[t]) {
         continue;
      }
      folded = flora_text_fold(texts[t], strlen(texts[t]));
      if (!folded) {
         continue;
      }
      for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
         bool dup = false;
         bool digit_first = rules[r].phrase[0] >= '0' && rules[r].phrase[0] <= '9';
         const char *at = strstr(folded, rules[r].phrase);

         for (size_t i = 0; i < n_found; i++) {
            dup = dup || strcmp(found[i], rules[r].tag) == 0;
         }
         if (dup) {
            continue;
         }
         while (at) {
            if (!digit_first || at == folded || at[-1] < '0' || at[-1] > '9') {
               found[n_found++] = rules[r].tag;
               break;
            }
            at = strstr(at + 1, rules[r].phrase);
         }
      }
      free(folded);
   }
   BSON_APPEND_ARRAY_BEGIN(doc, key, &arr);
   for (size_t i = 0; i < n_found; i++) {
      char idx[16];
      const char *k;

      bson_uint32_to_string((uint32_t) i, &k, idx, sizeof idx);
      BSON_APPEND_UTF8(&arr, k, found[i]);
   }
   bson_append_array_end(doc, &arr);
   return n_found;
}
