/* Webhook verification: Stripe's HMAC signature, PayPal's RSA signature, IP allowlists
 * (include/flora/pay.h). Crypto is OpenSSL's; CRC32 is zlib's. */
#include "flora/pay.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <zlib.h>

#define SHA256_LEN 32

static bool
unauthorized(flora_error_t *error, const char *what)
{
   flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_UNAUTHORIZED,
                   "webhook signature: %s", what);
   return false;
}

static int
hexval(char c)
{
   if (c >= '0' && c <= '9') {
      return c - '0';
   }
   if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
   }
   if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
   }
   return -1;
}

/* Decodes exactly 64 hex digits (len) into out[32]. */
static bool
hex32(const char *s, size_t len, unsigned char out[SHA256_LEN])
{
   if (len != 2 * SHA256_LEN) {
      return false;
   }
   for (size_t i = 0; i < SHA256_LEN; i++) {
      int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

      if (hi < 0 || lo < 0) {
         return false;
      }
      out[i] = (unsigned char) (hi << 4 | lo);
   }
   return true;
}

bool
flora_pay_stripe_verify(const char *header, const char *body, size_t body_len,
                        const char *secret, int64_t now_s, int64_t tolerance_s, int64_t *t_out,
                        flora_error_t *error)
{
   const char *p;
   bool have_t = false;
   int64_t t = 0;
   const char *v1[16];
   size_t v1_len[16];
   size_t n_v1 = 0;
   char prefix[32];
   int prefix_len;
   unsigned char mac[SHA256_LEN];
   EVP_MAC *hmac = NULL;
   EVP_MAC_CTX *ctx = NULL;
   OSSL_PARAM params[2];
   size_t out_len = 0;
   bool ok = false;

   if (!secret || !*secret) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "pay.stripe.webhook_secret is not set");
      return false;
   }
   if (!header || !*header) {
      return unauthorized(error, "no Stripe-Signature header");
   }
   /* "t=...,v1=...,v1=...,v0=..." : items separated by ',', key=value. */
   p = header;
   while (*p) {
      const char *item = p, *eq, *end;

      end = strchr(item, ',');
      if (!end) {
         end = item + strlen(item);
      }
      eq = memchr(item, '=', (size_t) (end - item));
      if (eq) {
         size_t klen = (size_t) (eq - item);

         if (klen == 1 && item[0] == 't') {
            char buf[24];
            size_t vlen = (size_t) (end - eq - 1);
            char *stop = NULL;
            long long v;

            if (vlen == 0 || vlen >= sizeof buf) {
               return unauthorized(error, "malformed timestamp");
            }
            memcpy(buf, eq + 1, vlen);
            buf[vlen] = '\0';
            errno = 0;
            v = strtoll(buf, &stop, 10);
            if (errno || *stop || !isdigit((unsigned char) buf[0])) {
               return unauthorized(error, "malformed timestamp");
            }
            t = v;
            have_t = true;
         } else if (klen == 2 && memcmp(item, "v1", 2) == 0 && n_v1 < 16) {
            v1[n_v1] = eq + 1;
            v1_len[n_v1] = (size_t) (end - eq - 1);
            n_v1++;
         }
      }
      p = *end ? end + 1 : end;
   }
   if (!have_t) {
      return unauthorized(error, "no timestamp in Stripe-Signature");
   }
   if (n_v1 == 0) {
      return unauthorized(error, "no v1 signature in Stripe-Signature");
   }
   if (tolerance_s > 0 && (now_s - t > tolerance_s || t - now_s > tolerance_s)) {
      return unauthorized(error, "timestamp outside the tolerance");
   }
   prefix_len = snprintf(prefix, sizeof prefix, "%" PRId64 ".", t);
   hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
   ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
   params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *) "SHA256", 0);
   params[1] = OSSL_PARAM_construct_end();
   if (!ctx || !EVP_MAC_init(ctx, (const unsigned char *) secret, strlen(secret), params) ||
       !EVP_MAC_update(ctx, (const unsigned char *) prefix, (size_t) prefix_len) ||
       (body_len && !EVP_MAC_update(ctx, (const unsigned char *) body, body_len)) ||
       !EVP_MAC_final(ctx, mac, &out_len, sizeof mac) || out_len != SHA256_LEN) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_SYSTEM, "HMAC-SHA256 failed");
      goto cleanup;
   }
   for (size_t i = 0; i < n_v1; i++) {
      unsigned char expected[SHA256_LEN];

      if (hex32(v1[i], v1_len[i], expected) && CRYPTO_memcmp(expected, mac, SHA256_LEN) == 0) {
         ok = true;
      }
   }
   if (!ok) {
      unauthorized(error, "no v1 signature matches");
      goto cleanup;
   }
   if (t_out) {
      *t_out = t;
   }
cleanup:
   EVP_MAC_CTX_free(ctx);
   EVP_MAC_free(hmac);
   return ok;
}

char *
flora_pay_paypal_signed_payload(const char *transmission_id, const char *transmission_time,
                                const char *webhook_id, const char *body, size_t body_len)
{
   uLong crc = crc32(0L, Z_NULL, 0);

   /* zlib's crc32 takes uInt lengths: feed large bodies in pieces. */
   while (body_len > 0) {
      uInt chunk = body_len > (size_t) 0x40000000 ? 0x40000000u : (uInt) body_len;

      crc = crc32(crc, (const Bytef *) body, chunk);
      body += chunk;
      body_len -= chunk;
   }
   return bson_strdup_printf("%s|%s|%s|%lu", transmission_id ? transmission_id : "",
                             transmission_time ? transmission_time : "",
                             webhook_id ? webhook_id : "", (unsigned long) crc);
}

bool
flora_pay_paypal_verify(const char *transmission_id, const char *transmission_time,
                        const char *webhook_id, const char *auth_algo,
                        const char *signature_b64, const char *cert_pem, size_t cert_len,
                        const char *body, size_t body_len, flora_error_t *error)
{
   BIO *bio = NULL;
   X509 *cert = NULL;
   EVP_PKEY *key = NULL;
   EVP_MD_CTX *md = NULL;
   unsigned char *sig = NULL;
   char *payload = NULL;
   int sig_len, padding = 0;
   size_t b64_len;
   bool ok = false;

   if (!transmission_id || !transmission_time || !signature_b64 || !cert_pem) {
      return unauthorized(error, "PayPal transmission headers missing");
   }
   if (!webhook_id || !*webhook_id) {
      flora_error_set(error, FLORA_DOMAIN_CONFIG, FLORA_ERR_INVALID,
                      "pay.paypal.webhook_id is not set");
      return false;
   }
   if (!auth_algo || strcasecmp(auth_algo, "SHA256withRSA") != 0) {
      return unauthorized(error, "PAYPAL-AUTH-ALGO is not SHA256withRSA");
   }
   bio = BIO_new_mem_buf(cert_pem, (int) cert_len);
   cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
   if (!cert) {
      unauthorized(error, "the certificate is not PEM X.509");
      goto cleanup;
   }
   if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0 ||
       X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
      unauthorized(error, "the certificate is not valid now");
      goto cleanup;
   }
   key = X509_get_pubkey(cert);
   if (!key) {
      unauthorized(error, "the certificate has no public key");
      goto cleanup;
   }
   b64_len = strlen(signature_b64);
   if (b64_len == 0 || b64_len % 4 != 0 || b64_len > 4096) {
      unauthorized(error, "PAYPAL-TRANSMISSION-SIG is not base64");
      goto cleanup;
   }
   sig = malloc(b64_len);
   if (!sig) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      goto cleanup;
   }
   sig_len = EVP_DecodeBlock(sig, (const unsigned char *) signature_b64, (int) b64_len);
   if (sig_len < 0) {
      unauthorized(error, "PAYPAL-TRANSMISSION-SIG is not base64");
      goto cleanup;
   }
   /* EVP_DecodeBlock counts the padding bytes as zeros: drop them. */
   padding = (signature_b64[b64_len - 1] == '=') + (signature_b64[b64_len - 2] == '=');
   sig_len -= padding;
   payload = flora_pay_paypal_signed_payload(transmission_id, transmission_time, webhook_id,
                                             body, body_len);
   md = EVP_MD_CTX_new();
   if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1) {
      flora_error_set(error, FLORA_DOMAIN_PROVIDER, FLORA_ERR_SYSTEM, "RSA verify setup failed");
      goto cleanup;
   }
   if (EVP_DigestVerify(md, sig, (size_t) sig_len, (const unsigned char *) payload,
                        strlen(payload)) != 1) {
      unauthorized(error, "the RSA signature does not match");
      goto cleanup;
   }
   ok = true;
cleanup:
   EVP_MD_CTX_free(md);
   bson_free(payload);
   free(sig);
   EVP_PKEY_free(key);
   X509_free(cert);
   BIO_free(bio);
   return ok;
}

/* Splits "scheme://host[:port]/..." into scheme and authority (host:port). */
static bool
url_origin(const char *url, char *scheme, size_t scheme_len, char *authority, size_t auth_len)
{
   const char *sep = url ? strstr(url, "://") : NULL;
   const char *host, *end;

   if (!sep || (size_t) (sep - url) >= scheme_len) {
      return false;
   }
   memcpy(scheme, url, (size_t) (sep - url));
   scheme[sep - url] = '\0';
   host = sep + 3;
   end = host + strcspn(host, "/?#");
   if (end == host || (size_t) (end - host) >= auth_len || memchr(host, '@', (size_t) (end - host))) {
      return false;
   }
   memcpy(authority, host, (size_t) (end - host));
   authority[end - host] = '\0';
   return true;
}

bool
flora_pay_paypal_cert_url_allowed(const char *cert_url, const char *api_base)
{
   char s1[16], a1[256], s2[16], a2[256];

   if (!url_origin(cert_url, s1, sizeof s1, a1, sizeof a1) ||
       !url_origin(api_base, s2, sizeof s2, a2, sizeof a2)) {
      return false;
   }
   if (strcasecmp(s1, s2) != 0 || strcasecmp(a1, a2) != 0) {
      return false;
   }
   /* Plain http only for a loopback API base (the tests' fake). */
   return strcasecmp(s1, "https") == 0 || strncmp(a1, "127.0.0.1", 9) == 0 ||
          strncmp(a1, "[::1]", 5) == 0 || strncasecmp(a1, "localhost", 9) == 0;
}

/* Parses "addr[/prefix]" into family, 16 address bytes and prefix bits. */
static bool
parse_range(const char *text, size_t len, int *family, unsigned char addr[16], int *bits)
{
   char buf[64];
   char *slash;
   long prefix = -1;

   if (len == 0 || len >= sizeof buf) {
      return false;
   }
   memcpy(buf, text, len);
   buf[len] = '\0';
   slash = strchr(buf, '/');
   if (slash) {
      char *stop = NULL;

      *slash = '\0';
      errno = 0;
      prefix = strtol(slash + 1, &stop, 10);
      if (errno || *stop || slash[1] == '\0' || prefix < 0) {
         return false;
      }
   }
   memset(addr, 0, 16);
   if (inet_pton(AF_INET, buf, addr) == 1) {
      *family = AF_INET;
      *bits = prefix < 0 ? 32 : (int) prefix;
      return *bits <= 32;
   }
   if (inet_pton(AF_INET6, buf, addr) == 1) {
      static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

      *family = AF_INET6;
      *bits = prefix < 0 ? 128 : (int) prefix;
      if (*bits > 128) {
         return false;
      }
      if (memcmp(addr, mapped, 12) == 0 && *bits >= 96) {
         memmove(addr, addr + 12, 4);
         memset(addr + 4, 0, 12);
         *family = AF_INET;
         *bits -= 96;
      }
      return true;
   }
   return false;
}

static bool
prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
   int whole = bits / 8, rest = bits % 8;

   if (memcmp(a, b, (size_t) whole) != 0) {
      return false;
   }
   if (rest) {
      unsigned char mask = (unsigned char) (0xff << (8 - rest));

      return (a[whole] & mask) == (b[whole] & mask);
   }
   return true;
}

bool
flora_pay_ip_allowed(const char *ip, const char *ranges, bool *allowed, flora_error_t *error)
{
   int fam, bits;
   unsigned char addr[16];
   const char *p;

   FLORA_ASSERT_ARG(allowed);
   *allowed = false;
   if (!ip || !parse_range(ip, strlen(ip), &fam, addr, &bits) || strchr(ip, '/')) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "\"%s\" is not a numeric IP address", ip ? ip : "");
      return false;
   }
   p = ranges ? ranges : "";
   while (*p) {
      size_t len;
      int rfam, rbits;
      unsigned char raddr[16];

      p += strspn(p, ", \t");
      len = strcspn(p, ", \t");
      if (len == 0) {
         break;
      }
      if (!parse_range(p, len, &rfam, raddr, &rbits)) {
         flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "\"%.*s\" is not an address or CIDR range", (int) len, p);
         return false;
      }
      if (rfam == fam && prefix_equal(addr, raddr, rbits)) {
         *allowed = true;
      }
      p += len;
   }
   return true;
}
