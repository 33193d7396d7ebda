/* Flora errors: one small struct passed last, in the manner of libbson's bson_error_t.
 *
 * Every fallible function returns bool (or a pointer, NULL on failure) and takes
 * `flora_error_t *error` as its last parameter. On failure it fills *error (when error is
 * not NULL); on success *error is left untouched. A caller that adds context does so with
 * flora_error_prefix(), which keeps the deeper message (STYLE.md: propagate, don't mask).
 *
 * The registry of domains and codes is this header; docs/errors.md describes each. In the
 * STORE domain the codes are MongoDB's server error codes where MongoDB has one
 * (source: mongo/src/mongo/base/error_codes.yml), so a shop caller checks 11000 for a
 * duplicate key on either engine. */
#ifndef FLORA_ERROR_H
#define FLORA_ERROR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flora_error {
   uint32_t domain; /* FLORA_DOMAIN_* */
   uint32_t code;   /* FLORA_ERR_* or, in FLORA_DOMAIN_STORE, a MongoDB error code */
   char message[504];
} flora_error_t;

enum flora_error_domain {
   FLORA_DOMAIN_NONE = 0,
   FLORA_DOMAIN_STORE = 1,      /* document store; codes are MongoDB's (below) */
   FLORA_DOMAIN_VALIDATION = 2, /* schema validation of client data (HTTP 422) */
   FLORA_DOMAIN_INPUT = 3,      /* malformed input: JSON, query parameters, files (HTTP 400) */
   FLORA_DOMAIN_CONFIG = 4,     /* configuration */
   FLORA_DOMAIN_IO = 5,         /* files, sockets, processes */
   FLORA_DOMAIN_SHOP = 6,       /* business rules: not found, conflict, out of stock, ... */
   FLORA_DOMAIN_PROVIDER = 7,   /* an external provider (payments, SMS, e-mail, geocoder) */
};

/* STORE domain codes: MongoDB's numbers (error_codes.yml). */
enum flora_store_code {
   FLORA_STORE_INTERNAL = 1,              /* InternalError */
   FLORA_STORE_BAD_VALUE = 2,             /* BadValue: unknown/unsupported operator, bad argument */
   FLORA_STORE_NO_SUCH_KEY = 4,           /* NoSuchKey */
   FLORA_STORE_FAILED_TO_PARSE = 9,       /* FailedToParse: malformed command or value */
   FLORA_STORE_TYPE_MISMATCH = 14,        /* TypeMismatch: e.g. $inc on a string */
   FLORA_STORE_ILLEGAL_OPERATION = 20,    /* IllegalOperation */
   FLORA_STORE_NAMESPACE_NOT_FOUND = 26,  /* NamespaceNotFound */
   FLORA_STORE_INDEX_NOT_FOUND = 27,      /* IndexNotFound */
   FLORA_STORE_PATH_NOT_VIABLE = 28,      /* PathNotViable: $set through a scalar */
   FLORA_STORE_CONFLICTING_UPDATE = 40,   /* ConflictingUpdateOperators */
   FLORA_STORE_NAMESPACE_EXISTS = 48,     /* NamespaceExists */
   FLORA_STORE_INVALID_ID_FIELD = 53,     /* InvalidIdField */
   FLORA_STORE_NOT_SINGLE_VALUE = 54,     /* NotSingleValueField */
   FLORA_STORE_DOLLAR_PREFIXED = 52,      /* DollarPrefixedFieldName */
   FLORA_STORE_EMPTY_FIELD_NAME = 56,     /* EmptyFieldName */
   FLORA_STORE_IMMUTABLE_FIELD = 66,      /* ImmutableField: changing _id */
   FLORA_STORE_INVALID_OPTIONS = 72,      /* InvalidOptions */
   FLORA_STORE_INDEX_OPTIONS_CONFLICT = 85,
   FLORA_STORE_INDEX_KEY_SPECS_CONFLICT = 86,
   FLORA_STORE_WRITE_CONFLICT = 112,      /* WriteConflict: transient, retried */
   FLORA_STORE_COMMAND_NOT_FOUND = 59,    /* CommandNotFound */
   FLORA_STORE_DOCUMENT_VALIDATION = 121, /* DocumentValidationFailure */
   FLORA_STORE_LOCK_TIMEOUT = 24,         /* LockTimeout: database busy, transient */
   FLORA_STORE_NO_SUCH_TRANSACTION = 251,
   FLORA_STORE_OVERFLOW = 15,             /* Overflow: nesting too deep, number overflow */
   FLORA_STORE_BSON_TOO_LARGE = 10334,    /* BSONObjectTooLarge: over 16 MiB */
   FLORA_STORE_DUPLICATE_KEY = 11000,     /* DuplicateKey */
   FLORA_STORE_CONNECTION = 6,            /* HostUnreachable: engine unreachable */
   FLORA_STORE_COMMAND_NOT_SUPPORTED = 115,  /* CommandNotSupported: engine lacks the command */
};

/* Codes of the other domains. */
enum flora_code {
   FLORA_ERR_INVALID = 1,     /* a value is malformed or out of range */
   FLORA_ERR_NOT_FOUND = 2,   /* the thing named does not exist */
   FLORA_ERR_CONFLICT = 3,    /* state forbids it (HTTP 409) */
   FLORA_ERR_TOO_LARGE = 4,   /* over a configured limit (HTTP 413) */
   FLORA_ERR_UNAUTHORIZED = 5,/* missing or bad credentials (HTTP 401) */
   FLORA_ERR_FORBIDDEN = 6,   /* authenticated but not allowed (HTTP 403) */
   FLORA_ERR_UNAVAILABLE = 7, /* a dependency is down (HTTP 503) */
   FLORA_ERR_SYSTEM = 8,      /* an OS call failed; message has strerror */
   FLORA_ERR_OUT_OF_STOCK = 9,/* a conditional stock update found too little (HTTP 409) */
   FLORA_ERR_RATE_LIMITED = 10, /* HTTP 429 */
};

/* Contract checks (programming errors, not runtime ones): abort with the location. */
#define FLORA_ASSERT_ARG(x)                                                              \
   do {                                                                                  \
      if (!(x)) {                                                                        \
         flora__assert_fail(#x, __FILE__, __LINE__, __func__);                           \
      }                                                                                  \
   } while (0)
void flora__assert_fail(const char *expr, const char *file, int line, const char *func)
   __attribute__((noreturn));

/* Fills *error (no-op when error is NULL). printf-style, truncated to fit message[]. */
void flora_error_set(flora_error_t *error, uint32_t domain, uint32_t code, const char *fmt, ...)
   __attribute__((format(printf, 4, 5)));

/* Prepends "context: " to error->message, keeping domain, code and the deeper message. */
void flora_error_prefix(flora_error_t *error, const char *fmt, ...)
   __attribute__((format(printf, 2, 3)));

/* Clears *error to domain NONE, code 0, empty message. */
void flora_error_clear(flora_error_t *error);

/* True for errors a caller may retry as a whole (a transaction that lost a write
 * conflict, a busy database): MongoDB's TransientTransactionError label. */
bool flora_error_is_transient(const flora_error_t *error);

/* The HTTP status an API route answers for this error (400, 404, 409, 413, 422, 500, 503...). */
int flora_error_http_status(const flora_error_t *error);

/* A stable lowercase name for the domain ("store", "validation", ...). */
const char *flora_error_domain_name(uint32_t domain);

#ifdef __cplusplus
}
#endif
#endif
