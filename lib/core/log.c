/* Structured logs: see include/flora/log.h.
 *
 * A line is built in memory and written to stderr with one write(2), so lines from
 * concurrent threads never interleave (POSIX: writes of at most PIPE_BUF bytes to a pipe
 * are atomic; to a file opened O_APPEND each write is appended whole). Timestamps are
 * RFC 3339 UTC with milliseconds ("2026-11-30T16:26:43.123Z"). Values keep their UTF-8;
 * bytes that are not valid UTF-8 become U+FFFD so a JSON line stays valid (RFC 8259
 * section 8.1). */
#include "flora/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum log_format {
   FORMAT_LOGFMT = 0,
   FORMAT_JSON,
} log_format_t;

static atomic_int threshold = FLORA_LOG_LEVEL_INFO;
static atomic_int format = FORMAT_LOGFMT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

bool
flora_log_configure(const char *level, const char *fmt)
{
   int lvl = -1;
   int f;

   if (!level || !fmt) {
      return false;
   }
   for (int i = 0; i < 4; i++) {
      if (strcmp(level, level_names[i]) == 0) {
         lvl = i;
      }
   }
   if (strcmp(level, "off") == 0) {
      lvl = FLORA_LOG_LEVEL_OFF;
   }
   if (strcmp(fmt, "logfmt") == 0) {
      f = FORMAT_LOGFMT;
   } else if (strcmp(fmt, "json") == 0) {
      f = FORMAT_JSON;
   } else {
      return false;
   }
   if (lvl < 0) {
      return false;
   }
   atomic_store(&threshold, lvl);
   atomic_store(&format, f);
   return true;
}

bool
flora_log_enabled(flora_log_level_t level)
{
   return (int) level >= atomic_load(&threshold) && level < FLORA_LOG_LEVEL_OFF;
}

/* A growable line: a stack buffer first, the heap past it. On allocation failure the line
 * is cut short rather than lost. */
typedef struct line {
   char *data;
   size_t len;
   size_t cap;
   bool heap;
   char stack[1024];
} line_t;

static void
put(line_t *l, const char *s, size_t n)
{
   if (l->len + n > l->cap) {
      size_t cap = l->cap * 2 > l->len + n ? l->cap * 2 : l->len + n;
      char *p = l->heap ? realloc(l->data, cap) : malloc(cap);

      if (!p) {
         return;
      }
      if (!l->heap) {
         memcpy(p, l->data, l->len);
      }
      l->data = p;
      l->cap = cap;
      l->heap = true;
   }
   memcpy(l->data + l->len, s, n);
   l->len += n;
}

static void
puts_(line_t *l, const char *s)
{
   put(l, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not one
 * (overlong forms, surrogates and values past U+10FFFF are invalid: RFC 3629 section 4). */
static size_t
utf8_sequence(const unsigned char *s, size_t n)
{
   size_t len;
   uint32_t cp;

   if (s[0] < 0x80) {
      return 1;
   } else if ((s[0] & 0xE0) == 0xC0) {
      len = 2;
      cp = s[0] & 0x1F;
   } else if ((s[0] & 0xF0) == 0xE0) {
      len = 3;
      cp = s[0] & 0x0F;
   } else if ((s[0] & 0xF8) == 0xF0) {
      len = 4;
      cp = s[0] & 0x07;
   } else {
      return 0;
   }
   if (len > n) {
      return 0;
   }
   for (size_t i = 1; i < len; i++) {
      if ((s[i] & 0xC0) != 0x80) {
         return 0;
      }
      cp = (cp << 6) | (s[i] & 0x3F);
   }
   if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
       cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return 0;
   }
   return len;
}

/* Appends s escaped for a double-quoted logfmt or JSON string (without the quotes). */
static void
put_escaped(line_t *l, const char *s)
{
   const unsigned char *p = (const unsigned char *) s;
   size_t n = strlen(s);

   while (n > 0) {
      size_t seq = utf8_sequence(p, n);
      char buf[8];

      if (seq == 0) {
         puts_(l, "\xEF\xBF\xBD"); /* U+FFFD REPLACEMENT CHARACTER */
         p++;
         n--;
         continue;
      }
      if (seq > 1) {
         put(l, (const char *) p, seq);
      } else if (*p == '"') {
         puts_(l, "\\\"");
      } else if (*p == '\\') {
         puts_(l, "\\\\");
      } else if (*p == '\n') {
         puts_(l, "\\n");
      } else if (*p == '\r') {
         puts_(l, "\\r");
      } else if (*p == '\t') {
         puts_(l, "\\t");
      } else if (*p < 0x20 || *p == 0x7F) {
         snprintf(buf, sizeof buf, "\\u%04x", *p);
         puts_(l, buf);
      } else {
         put(l, (const char *) p, 1);
      }
      p += seq;
      n -= seq;
   }
}

static bool
logfmt_bare(const char *s)
{
   if (*s == '\0') {
      return false;
   }
   for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
      if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7F) {
         return false;
      }
   }
   return true;
}

/* logfmt keys are bare words: anything else becomes '_'. */
static void
put_logfmt_key(line_t *l, const char *key)
{
   if (*key == '\0') {
      puts_(l, "_");
      return;
   }
   for (const unsigned char *p = (const unsigned char *) key; *p; p++) {
      char c = (char) *p;

      if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7F) {
         c = '_';
      }
      put(l, &c, 1);
   }
}

static void
put_field(line_t *l, log_format_t fmt, bool first, const char *key, const char *value)
{
   if (!value) {
      value = "";
   }
   if (fmt == FORMAT_JSON) {
      puts_(l, first ? "\"" : ",\"");
      put_escaped(l, key);
      puts_(l, "\":\"");
      put_escaped(l, value);
      puts_(l, "\"");
      return;
   }
   if (!first) {
      puts_(l, " ");
   }
   put_logfmt_key(l, key);
   puts_(l, "=");
   if (logfmt_bare(value)) {
      puts_(l, value);
   } else {
      puts_(l, "\"");
      put_escaped(l, value);
      puts_(l, "\"");
   }
}

static void
format_time(char *buf, size_t size)
{
   struct timespec ts;
   struct tm tm;
   size_t n;

   clock_gettime(CLOCK_REALTIME, &ts);
   gmtime_r(&ts.tv_sec, &tm);
   n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
   snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void
flora_log_write(flora_log_level_t level, const char *domain, const char *msg, ...)
{
   line_t l = {0};
   log_format_t fmt = (log_format_t) atomic_load(&format);
   char ts[40];
   va_list ap;
   const char *key;
   size_t off = 0;
   int saved_errno = errno;

   if (level < FLORA_LOG_LEVEL_DEBUG || level >= FLORA_LOG_LEVEL_OFF) {
      return;
   }
   l.data = l.stack;
   l.cap = sizeof l.stack;
   format_time(ts, sizeof ts);
   if (fmt == FORMAT_JSON) {
      puts_(&l, "{");
   }
   put_field(&l, fmt, true, "ts", ts);
   put_field(&l, fmt, false, "level", level_names[level]);
   put_field(&l, fmt, false, "domain", domain);
   put_field(&l, fmt, false, "msg", msg);
   va_start(ap, msg);
   while ((key = va_arg(ap, const char *)) != NULL) {
      const char *value = va_arg(ap, const char *);

      put_field(&l, fmt, false, key, value);
   }
   va_end(ap);
   puts_(&l, fmt == FORMAT_JSON ? "}\n" : "\n");
   while (off < l.len) {
      ssize_t w = write(STDERR_FILENO, l.data + off, l.len - off);

      if (w < 0 && errno == EINTR) {
         continue;
      }
      if (w <= 0) {
         break;
      }
      off += (size_t) w;
   }
   if (l.heap) {
      free(l.data);
   }
   errno = saved_errno;
}
