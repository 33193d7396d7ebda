/* E-mail over SMTP with libcurl (include/flora/notify.h): the MIME structure comes from
 * curl's mime API (curl_mime_*), the headers from RFC 5322 and RFC 2047. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "flora/notify.h"
#include "notify/notify_private.h"

static bool
is_plain_ascii(const char *s)
{
   for (; *s; s++) {
      if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7E) {
         return false;
      }
   }
   return true;
}

/* RFC 2047 section 2: an encoded-word is at most 75 characters; "=?UTF-8?B?" + "?=" is 12,
 * so 63 characters of base64 remain: 45 bytes of UTF-8 (60 characters), cut between whole
 * characters (section 5: "each 'encoded-word' MUST represent an integral number of
 * characters"). */
#define WORD_BYTES 45

bool
flora_email_encode_words(const char *utf8, char **out)
{
   size_t n = strlen(utf8);
   bson_string_t *s;

   FLORA_ASSERT_ARG(out);
   if (is_plain_ascii(utf8)) {
      *out = strdup(utf8);
      return *out != NULL;
   }
   s = bson_string_new(NULL);
   for (size_t i = 0; i < n;) {
      size_t take = 0;
      char b64[sodium_base64_ENCODED_LEN(WORD_BYTES, sodium_base64_VARIANT_ORIGINAL)];

      while (i + take < n) {
         size_t clen = 1;
         unsigned char c = (unsigned char) utf8[i + take];

         if (c >= 0xF0) {
            clen = 4;
         } else if (c >= 0xE0) {
            clen = 3;
         } else if (c >= 0xC0) {
            clen = 2;
         }
         if (take + clen > WORD_BYTES) {
            break;
         }
         take += clen;
      }
      if (take == 0 || i + take > n) {
         take = n - i < WORD_BYTES ? n - i : WORD_BYTES;
      }
      sodium_bin2base64(b64, sizeof b64, (const unsigned char *) utf8 + i, take,
                        sodium_base64_VARIANT_ORIGINAL);
      bson_string_append_printf(s, "%s=?UTF-8?B?%s?=", i == 0 ? "" : "\r\n ", b64);
      i += take;
   }
   *out = strdup(s->str);
   bson_string_free(s, true);
   return *out != NULL;
}

void
flora_email_date(int64_t ms, char *out, size_t out_len)
{
   static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
   static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
   time_t t = (time_t) (ms / 1000);
   struct tm tm;

   gmtime_r(&t, &tm);
   snprintf(out, out_len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
            months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* "Display Name <addr>" with the name as encoded-words, or a quoted-string when ASCII. */
static char *
mailbox(const char *name, const char *addr)
{
   char *words = NULL;
   char *result = NULL;
   size_t len;

   if (!name || !*name) {
      len = strlen(addr) + 3;
      result = malloc(len);
      if (result) {
         snprintf(result, len, "<%s>", addr);
      }
      return result;
   }
   if (is_plain_ascii(name)) {
      bson_string_t *q = bson_string_new("\"");

      for (const char *p = name; *p; p++) {
         if (*p == '"' || *p == '\\') {
            bson_string_append_c(q, '\\');
         }
         bson_string_append_c(q, *p);
      }
      bson_string_append_printf(q, "\" <%s>", addr);
      result = strdup(q->str);
      bson_string_free(q, true);
      return result;
   }
   if (!flora_email_encode_words(name, &words)) {
      return NULL;
   }
   len = strlen(words) + strlen(addr) + 4;
   result = malloc(len);
   if (result) {
      snprintf(result, len, "%s <%s>", words, addr);
   }
   free(words);
   return result;
}

static struct curl_slist *
add_header(struct curl_slist *list, bool *ok, const char *name, const char *value)
{
   size_t len;
   char *line;
   struct curl_slist *next;

   if (!*ok || !value) {
      *ok = false;
      return list;
   }
   len = strlen(name) + strlen(value) + 3;
   line = malloc(len);
   if (!line) {
      *ok = false;
      return list;
   }
   snprintf(line, len, "%s: %s", name, value);
   next = curl_slist_append(list, line);
   free(line);
   if (!next) {
      *ok = false;
      return list;
   }
   return next;
}

bool
flora_email_send(const flora_config_t *config, const flora_email_t *email, flora_error_t *error)
{
   const char *url = flora_config_string(config, "notify.smtp_url");
   const char *tls = flora_config_string(config, "notify.smtp_tls");
   const char *user = flora_config_string(config, "notify.smtp_user");
   const char *from = flora_config_string(config, "notify.from_address");
   const char *from_name = flora_config_string(config, "notify.from_name");
   long timeout = (long) flora_config_int(config, "notify.smtp_timeout_s");
   CURL *curl = NULL;
   curl_mime *mime = NULL, *alt = NULL;
   curl_mimepart *part;
   struct curl_slist *headers = NULL, *rcpt = NULL, *part_headers = NULL;
   char *from_box = NULL, *to_box = NULL, *subject = NULL;
   char mail_from[300], rcpt_to[300], date[40];
   bool built = true;
   bool ok = false;
   CURLcode rc;
   long smtp_code = 0;

   FLORA_ASSERT_ARG(config);
   FLORA_ASSERT_ARG(email);
   FLORA_ASSERT_ARG(email->to && email->subject && email->text && email->html &&
                    email->message_id);
   if (!*url || !*from) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "e-mail is not configured (notify.smtp_url and notify.from_address)");
      return false;
   }
   if (strcmp(tls, "smtps") == 0 && strncmp(url, "smtps://", 8) != 0) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "notify.smtp_tls is smtps but notify.smtp_url is not an smtps:// URL");
      return false;
   }
   if (!flora__notify_curl_init(error)) {
      return false;
   }
   curl = curl_easy_init();
   if (!curl) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAVAILABLE, "curl_easy_init failed");
      return false;
   }
   from_box = mailbox(*from_name ? from_name : flora_config_string(config, "notify.shop_name"), from);
   to_box = mailbox(email->to_name, email->to);
   built = from_box && to_box && flora_email_encode_words(email->subject, &subject);
   flora_email_date(flora__notify_now_ms(), date, sizeof date);
   headers = add_header(headers, &built, "Date", date);
   headers = add_header(headers, &built, "From", from_box);
   headers = add_header(headers, &built, "To", to_box);
   headers = add_header(headers, &built, "Subject", subject);
   headers = add_header(headers, &built, "Message-ID", email->message_id);

   /* multipart/alternative: plain text first, HTML last (RFC 2046 section 5.1.4: the
    * preferred, richest part comes last) */
   mime = curl_mime_init(curl);
   alt = curl_mime_init(curl);
   if (!built || !mime || !alt) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory building the e-mail");
      goto cleanup;
   }
   part = curl_mime_addpart(alt);
   curl_mime_data(part, email->text, CURL_ZERO_TERMINATED);
   curl_mime_type(part, "text/plain; charset=utf-8");
   curl_mime_encoder(part, "quoted-printable");
   part = curl_mime_addpart(alt);
   curl_mime_data(part, email->html, CURL_ZERO_TERMINATED);
   curl_mime_type(part, "text/html; charset=utf-8");
   curl_mime_encoder(part, "quoted-printable");
   part = curl_mime_addpart(mime);
   curl_mime_subparts(part, alt);
   alt = NULL; /* owned by mime now */
   curl_mime_type(part, "multipart/alternative");
   part_headers = curl_slist_append(NULL, "Content-Disposition: inline");
   curl_mime_headers(part, part_headers, 1);
   part_headers = NULL;

   snprintf(mail_from, sizeof mail_from, "<%s>", from);
   snprintf(rcpt_to, sizeof rcpt_to, "<%s>", email->to);
   rcpt = curl_slist_append(NULL, rcpt_to);
   curl_easy_setopt(curl, CURLOPT_URL, url);
   curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
   curl_easy_setopt(curl, CURLOPT_USE_SSL,
                    strcmp(tls, "none") == 0 ? (long) CURLUSESSL_NONE : (long) CURLUSESSL_ALL);
   if (*user) {
      curl_easy_setopt(curl, CURLOPT_USERNAME, user);
      curl_easy_setopt(curl, CURLOPT_PASSWORD, flora_config_string(config, "notify.smtp_password"));
   }
   curl_easy_setopt(curl, CURLOPT_MAIL_FROM, mail_from);
   curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
   curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
   curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
   curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
   curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout < 10 ? timeout : 10L);
   curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
   rc = curl_easy_perform(curl);
   curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &smtp_code);
   if (rc != CURLE_OK) {
      /* 5xx replies to MAIL FROM / RCPT TO / DATA are permanent (RFC 5321 section 4.2.1);
       * connection trouble, timeouts and 4xx are worth another attempt. */
      bool permanent = smtp_code >= 500 && smtp_code < 600 && rc != CURLE_LOGIN_DENIED;

      flora_error_set(error, FLORA_DOMAIN_PROVIDER,
                      permanent ? FLORA_ERR_INVALID : FLORA_ERR_UNAVAILABLE,
                      "SMTP %s: %s (reply %ld)", url, curl_easy_strerror(rc), smtp_code);
      goto cleanup;
   }
   ok = true;
cleanup:
   curl_slist_free_all(headers);
   curl_slist_free_all(rcpt);
   curl_slist_free_all(part_headers);
   curl_mime_free(alt);
   curl_mime_free(mime);
   curl_easy_cleanup(curl);
   free(from_box);
   free(to_box);
   free(subject);
   return ok;
}
