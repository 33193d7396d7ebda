/* URL slugs from UTF-8 text (include/flora/catalog.h, flora_catalog_slugify). */
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "flora/catalog.h"

/* Russian transliteration as in Russian passports since 2013 (ICAO Doc 9303 table as
 * adopted by Order of the FMS No. 320, 2012), lower case. Index: code point - 0x430 for
 * а..я; ё (0x451) handled apart. */
static const char *const cyrillic_lower[32] = {
   "a", "b", "v", "g", "d", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p",
   "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "ie", "y", "", "e", "iu", "ia",
};

static const char *
transliterate(ucs4_t c, char ascii[2])
{
   if (c >= 0x410 && c <= 0x42F) {
      c += 0x20; /* upper to lower case */
   }
   if (c >= 0x430 && c <= 0x44F) {
      return cyrillic_lower[c - 0x430];
   }
   if (c == 0x451 || c == 0x401) {
      return "e";
   }
   if (c < 0x80 && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      ascii[0] = (char) c;
      ascii[1] = '\0';
      return ascii;
   }
   if (c >= 'A' && c <= 'Z') {
      ascii[0] = (char) (c - 'A' + 'a');
      ascii[1] = '\0';
      return ascii;
   }
   return NULL; /* a separator */
}

char *
flora_catalog_slugify(const char *text, size_t max_len, flora_error_t *error)
{
   const uint8_t *p;
   size_t len;
   char *out;
   size_t n = 0;
   bool pending_hyphen = false;

   FLORA_ASSERT_ARG(text);
   FLORA_ASSERT_ARG(max_len > 0);
   len = strlen(text);
   if (u8_check((const uint8_t *) text, len)) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "text is not valid UTF-8");
      return NULL;
   }
   out = malloc(max_len + 1);
   if (!out) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      return NULL;
   }
   p = (const uint8_t *) text;
   while (*p) {
      ucs4_t c;
      char ascii[2];
      const char *piece;
      size_t piece_len;
      int step = u8_mbtouc(&c, p, len - (size_t) (p - (const uint8_t *) text));

      p += step;
      piece = transliterate(c, ascii);
      if (!piece) {
         pending_hyphen = n > 0;
         continue;
      }
      piece_len = strlen(piece);
      if (piece_len == 0) {
         continue; /* ь leaves no trace */
      }
      if (n + (pending_hyphen ? 1 : 0) + piece_len > max_len) {
         break;
      }
      if (pending_hyphen) {
         out[n++] = '-';
         pending_hyphen = false;
      }
      memcpy(out + n, piece, piece_len);
      n += piece_len;
   }
   out[n] = '\0';
   if (n == 0) {
      free(out);
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "no letters or digits to make a slug from");
      return NULL;
   }
   return out;
}
