/* Strict JSON checks with Jansson (include/flora/json.h). */
#include <stdio.h>
#include <string.h>

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

/* Depth-first search for a '$' key; path receives the dotted path of the first one. */
static bool
find_dollar_key(json_t *node, char *path, size_t path_len, size_t used, int depth, size_t *field_len)
{
   if (depth > 200) {
      return false;
   }
   if (json_is_object(node)) {
      const char *key;
      json_t *value;

      json_object_foreach (node, key, value) {
         int n;
         size_t next;

         if (key[0] == '$') {
            /* path: the whole key path; *field_len: the field holding the operator (the
             * key itself at the top) */
            *field_len = used ? used : strlen(key);
            snprintf(path + used, path_len - used, "%s%s", used ? "." : "", key);
            return true;
         }
         n = snprintf(path + used, path_len - used, "%s%s", used ? "." : "", key);
         next = n < 0 ? used : used + (size_t) n;
         if (next >= path_len) {
            next = path_len - 1;
         }
         if (find_dollar_key(value, path, path_len, next, depth + 1, field_len)) {
            return true;
         }
         path[used] = '\0';
      }
   } else if (json_is_array(node)) {
      size_t i;
      json_t *value;

      json_array_foreach (node, i, value) {
         int n = snprintf(path + used, path_len - used, "%s%zu", used ? "." : "", i);
         size_t next = n < 0 ? used : used + (size_t) n;

         if (next >= path_len) {
            next = path_len - 1;
         }
         if (find_dollar_key(value, path, path_len, next, depth + 1, field_len)) {
            return true;
         }
         path[used] = '\0';
      }
   }
   return false;
}

bool
flora_json_find_dollar_key(const char *text, size_t len, char *field, size_t field_size, char *key_path,
                           size_t key_path_size)
{
   json_error_t jerr;
   json_t *root;
   char path[512] = "";
   size_t field_len = 0;
   bool found;

   FLORA_ASSERT_ARG(field && field_size > 0);
   FLORA_ASSERT_ARG(key_path && key_path_size > 0);
   field[0] = key_path[0] = '\0';
   root = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
   if (!root) {
      return false;
   }
   found = find_dollar_key(root, path, sizeof path, 0, 0, &field_len);
   json_decref(root);
   if (found) {
      snprintf(key_path, key_path_size, "%s", path);
      snprintf(field, field_size, "%.*s", (int) field_len, path);
   }
   return found;
}
