/* Strict JSON checks with Jansson (include/flora/json.h). */
#include <jansson.h>

#include "flora/json.h"

bool
flora_json_check_strict(const char *text, size_t len, flora_error_t *error)
{
   json_error_t jerr;
   json_t *root;

   FLORA_ASSERT_ARG(text || len == 0);
   /* JSON_REJECT_DUPLICATES: duplicate keys; JSON_DECODE_ANY: the caller decides about
    * the top-level type; without JSON_ALLOW_NUL, "\u0000" is refused. Jansson reports
    * "too big integer" / "real number overflow" for numbers out of range. */
   root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
   if (!root) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "line %d, column %d: %s",
                      jerr.line, jerr.column, jerr.text);
      return false;
   }
   json_decref(root);
   return true;
}
