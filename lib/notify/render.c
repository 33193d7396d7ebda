/* The template renderer and money formatting (include/flora/notify.h). The renderer is a
 * deliberately tiny subset of Mustache/Handlebars ({{name}}, {{#each}}, {{#if}}/{{else}})
 * written here because rendering notifications is the feature itself; what makes it safe
 * is strictness: an unknown variable or tag is an error, so every template is checked by
 * rendering it in a test. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flora/notify.h"

#define MAX_SCOPES 8
#define NBSP "\xc2\xa0"

bool
flora_notify_format_money(int64_t minor, const char *currency, char *out, size_t out_len)
{
   uint64_t v = minor < 0 ? (uint64_t) 0 - (uint64_t) minor : (uint64_t) minor;
   uint64_t units = v / 100;
   unsigned cents = (unsigned) (v % 100);
   char digits[32];
   char grouped[96];
   const char *sign = "";
   size_t nd, g = 0;
   int n;

   FLORA_ASSERT_ARG(out);
   n = snprintf(digits, sizeof digits, "%" PRIu64, units);
   nd = (size_t) n;
   for (size_t i = 0; i < nd; i++) {
      if (i > 0 && (nd - i) % 3 == 0) {
         memcpy(grouped + g, NBSP, 2);
         g += 2;
      }
      grouped[g++] = digits[i];
   }
   grouped[g] = '\0';
   if (!currency || strcmp(currency, "RUB") == 0) {
      sign = "\xe2\x82\xbd"; /* U+20BD RUBLE SIGN */
   } else if (strcmp(currency, "USD") == 0) {
      sign = "$";
   } else if (strcmp(currency, "EUR") == 0) {
      sign = "\xe2\x82\xac";
   } else {
      sign = currency;
   }
   n = snprintf(out, out_len, "%s%s,%02u" NBSP "%s", minor < 0 ? "-" : "", grouped, cents, sign);
   return n > 0 && (size_t) n < out_len;
}

/* ---- the renderer ----------------------------------------------------------------- */

typedef struct render_ctx {
   bson_t scopes[MAX_SCOPES]; /* static views; [0] is vars */
   size_t n_scopes;
   bool html;
   bson_string_t *out;
   flora_error_t *error;
} render_ctx_t;

static bool
lookup(render_ctx_t *rc, const char *name, size_t name_len, bson_iter_t *value)
{
   char key[128];

   if (name_len == 0 || name_len >= sizeof key) {
      return false;
   }
   memcpy(key, name, name_len);
   key[name_len] = '\0';
   for (size_t i = rc->n_scopes; i > 0; i--) {
      if (bson_iter_init_find(value, &rc->scopes[i - 1], key)) {
         return true;
      }
   }
   return false;
}

static void
append_escaped(render_ctx_t *rc, const char *s, size_t len)
{
   if (!rc->html) {
      bson_string_append_printf(rc->out, "%.*s", (int) len, s);
      return;
   }
   for (size_t i = 0; i < len; i++) {
      switch (s[i]) {
      case '&': bson_string_append(rc->out, "&amp;"); break;
      case '<': bson_string_append(rc->out, "&lt;"); break;
      case '>': bson_string_append(rc->out, "&gt;"); break;
      case '"': bson_string_append(rc->out, "&quot;"); break;
      case '\'': bson_string_append(rc->out, "&#39;"); break;
      default: bson_string_append_c(rc->out, s[i]); break;
      }
   }
}

static bool
truthy(const bson_iter_t *v)
{
   switch (bson_iter_type(v)) {
   case BSON_TYPE_BOOL: return bson_iter_bool(v);
   case BSON_TYPE_UTF8: {
      uint32_t len = 0;
      bson_iter_utf8(v, &len);
      return len > 0;
   }
   case BSON_TYPE_INT32: return bson_iter_int32(v) != 0;
   case BSON_TYPE_INT64: return bson_iter_int64(v) != 0;
   case BSON_TYPE_ARRAY: {
      bson_iter_t child;
      return bson_iter_recurse(v, &child) && bson_iter_next(&child);
   }
   default: return false;
   }
}

/* Finds the tag that closes the block opened just before p ("each" or "if"), honouring
 * nesting; *else_at receives a top-level {{else}} (if blocks), or NULL. */
static bool
find_close(const char *p, const char *end, const char *kind, const char **close_at,
           const char **after_close, const char **else_at, const char **after_else)
{
   int depth = 0;

   *else_at = NULL;
   *after_else = NULL;
   while (p < end) {
      const char *open = strstr(p, "{{");
      const char *shut;
      size_t len;

      if (!open || open >= end) {
         return false;
      }
      shut = strstr(open + 2, "}}");
      if (!shut || shut >= end) {
         return false;
      }
      len = (size_t) (shut - open - 2);
      if (open[2] == '#') {
         depth++;
      } else if (open[2] == '/') {
         if (depth == 0) {
            if (len - 1 != strlen(kind) || strncmp(open + 3, kind, len - 1) != 0) {
               return false;
            }
            *close_at = open;
            *after_close = shut + 2;
            return true;
         }
         depth--;
      } else if (depth == 0 && len == 4 && strncmp(open + 2, "else", 4) == 0) {
         *else_at = open;
         *after_else = shut + 2;
      }
      p = shut + 2;
   }
   return false;
}

static bool render_range(render_ctx_t *rc, const char *p, const char *end);

static bool
render_block(render_ctx_t *rc, const char *tag, size_t tag_len, const char *body,
             const char *end, const char **next)
{
   bool is_each = tag_len > 5 && strncmp(tag, "#each ", 6) == 0;
   bool is_if = tag_len > 3 && strncmp(tag, "#if ", 4) == 0;
   const char *name = tag + (is_each ? 6 : 4);
   size_t name_len = tag_len - (size_t) (name - tag);
   const char *close_at, *after_close, *else_at, *after_else;
   bson_iter_t v;

   if (!is_each && !is_if) {
      flora_error_set(rc->error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "template: unknown block {{%.*s}}", (int) tag_len, tag);
      return false;
   }
   if (!find_close(body, end, is_each ? "each" : "if", &close_at, &after_close, &else_at,
                   &after_else) ||
       (is_each && else_at)) {
      flora_error_set(rc->error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "template: {{%.*s}} is not closed", (int) tag_len, tag);
      return false;
   }
   *next = after_close;
   if (!lookup(rc, name, name_len, &v)) {
      flora_error_set(rc->error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "template: missing variable \"%.*s\"", (int) name_len, name);
      return false;
   }
   if (is_if) {
      if (truthy(&v)) {
         return render_range(rc, body, else_at ? else_at : close_at);
      }
      return else_at ? render_range(rc, after_else, close_at) : true;
   }
   if (!BSON_ITER_HOLDS_ARRAY(&v)) {
      flora_error_set(rc->error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "template: \"%.*s\" is not a list", (int) name_len, name);
      return false;
   }
   {
      bson_iter_t el;

      if (!bson_iter_recurse(&v, &el)) {
         return false;
      }
      while (bson_iter_next(&el)) {
         const uint8_t *data;
         uint32_t len;
         bool ok;

         if (!BSON_ITER_HOLDS_DOCUMENT(&el) || rc->n_scopes >= MAX_SCOPES) {
            flora_error_set(rc->error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                            "template: elements of \"%.*s\" must be documents (nested at most %d)",
                            (int) name_len, name, MAX_SCOPES - 1);
            return false;
         }
         bson_iter_document(&el, &len, &data);
         if (!bson_init_static(&rc->scopes[rc->n_scopes], data, len)) {
            return false;
         }
         rc->n_scopes++;
         ok = render_range(rc, body, close_at);
         rc->n_scopes--;
         if (!ok) {
            return false;
         }
      }
   }
   return true;
}

static bool
render_value(render_ctx_t *rc, const char *name, size_t name_len)
{
   bson_iter_t v;
   char num[32];

   if (!lookup(rc, name, name_len, &v)) {
      flora_error_set(rc->error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "template: missing variable \"%.*s\"", (int) name_len, name);
      return false;
   }
   switch (bson_iter_type(&v)) {
   case BSON_TYPE_UTF8: {
      uint32_t len = 0;
      const char *s = bson_iter_utf8(&v, &len);
      append_escaped(rc, s, len);
      return true;
   }
   case BSON_TYPE_INT32:
      snprintf(num, sizeof num, "%" PRId32, bson_iter_int32(&v));
      append_escaped(rc, num, strlen(num));
      return true;
   case BSON_TYPE_INT64:
      snprintf(num, sizeof num, "%" PRId64, bson_iter_int64(&v));
      append_escaped(rc, num, strlen(num));
      return true;
   default:
      flora_error_set(rc->error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "template: \"%.*s\" is not a string or an integer", (int) name_len, name);
      return false;
   }
}

static bool
render_range(render_ctx_t *rc, const char *p, const char *end)
{
   while (p < end) {
      const char *open = strstr(p, "{{");
      const char *shut;
      const char *tag;
      size_t tag_len;

      if (!open || open >= end) {
         bson_string_append_printf(rc->out, "%.*s", (int) (end - p), p);
         return true;
      }
      bson_string_append_printf(rc->out, "%.*s", (int) (open - p), p);
      shut = strstr(open + 2, "}}");
      if (!shut || shut >= end) {
         flora_error_set(rc->error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "template: unterminated {{ near \"%.20s\"", open);
         return false;
      }
      tag = open + 2;
      tag_len = (size_t) (shut - tag);
      while (tag_len > 0 && tag[0] == ' ') {
         tag++;
         tag_len--;
      }
      while (tag_len > 0 && tag[tag_len - 1] == ' ') {
         tag_len--;
      }
      if (tag_len > 0 && tag[0] == '#') {
         if (!render_block(rc, tag, tag_len, shut + 2, end, &p)) {
            return false;
         }
         continue;
      }
      if (tag_len == 0 || tag[0] == '/' || (tag_len == 4 && strncmp(tag, "else", 4) == 0)) {
         flora_error_set(rc->error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "template: unexpected {{%.*s}}", (int) tag_len, tag);
         return false;
      }
      if (!render_value(rc, tag, tag_len)) {
         return false;
      }
      p = shut + 2;
   }
   return true;
}

bool
flora_notify_render_template(const char *tmpl, const bson_t *vars, bool html, char **out,
                             flora_error_t *error)
{
   render_ctx_t rc;
   bool ok;

   FLORA_ASSERT_ARG(tmpl);
   FLORA_ASSERT_ARG(vars);
   FLORA_ASSERT_ARG(out);
   *out = NULL;
   memset(&rc, 0, sizeof rc);
   if (!bson_init_static(&rc.scopes[0], bson_get_data(vars), vars->len)) {
      return false;
   }
   rc.n_scopes = 1;
   rc.html = html;
   rc.out = bson_string_new(NULL);
   rc.error = error;
   ok = render_range(&rc, tmpl, tmpl + strlen(tmpl));
   if (ok) {
      *out = strdup(rc.out->str);
      if (!*out) {
         flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
         ok = false;
      }
   }
   bson_string_free(rc.out, true);
   return ok;
}
