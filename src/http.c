/* Helpers of the HTTP edge that need no server: error answers and JSON bodies (src/http.h). */
#include "http.h"

#include <stdlib.h>
#include <string.h>

#include "flora/json.h"
#include "flora/log.h"

bool
flora_http_error(flora_http_response_t *res, int status, const char *code, const char *field,
                 const char *message, const bson_t *details)
{
   bson_t err;

   FLORA_ASSERT_ARG(res);
   FLORA_ASSERT_ARG(code);
   FLORA_ASSERT_ARG(message);
   bson_reinit(&res->body);
   res->body_is_array = false;
   free(res->raw);
   res->raw = NULL;
   res->raw_len = 0;
   res->content_type = NULL;
   res->status = status;
   BSON_APPEND_DOCUMENT_BEGIN(&res->body, "error", &err);
   BSON_APPEND_UTF8(&err, "code", code);
   BSON_APPEND_UTF8(&err, "message", message);
   if (field) {
      BSON_APPEND_UTF8(&err, "field", field);
   }
   if (details) {
      BSON_APPEND_ARRAY(&err, "details", details);
   }
   bson_append_document_end(&res->body, &err);
   return true;
}

/* The "code" of an error answer for a status (and a few specific errors). */
static const char *
code_name(const flora_error_t *error, int status)
{
   if (error->domain != FLORA_DOMAIN_STORE && error->code == FLORA_ERR_OUT_OF_STOCK) {
      return "out_of_stock";
   }
   if (error->domain == FLORA_DOMAIN_STORE && error->code == FLORA_STORE_DUPLICATE_KEY) {
      return "duplicate_key";
   }
   switch (status) {
   case 400:
      return "invalid_argument";
   case 401:
      return "unauthorized";
   case 403:
      return "forbidden";
   case 404:
      return "not_found";
   case 409:
      return "conflict";
   case 413:
      return "payload_too_large";
   case 422:
      return "validation_failed";
   case 429:
      return "rate_limited";
   case 503:
      return "unavailable";
   default:
      return "internal";
   }
}

bool
flora_http_fail(flora_http_response_t *res, const flora_error_t *error)
{
   int status;

   FLORA_ASSERT_ARG(res);
   FLORA_ASSERT_ARG(error);
   status = flora_error_http_status(error);
   if (status >= 500 && status != 503) {
      /* The cause stays in the log; the client learns only that it was ours. */
      char code[16];

      snprintf(code, sizeof code, "%u", error->code);
      FLORA_LOG_ERROR("http", "internal error", "error_domain",
                      flora_error_domain_name(error->domain), "error_code", code, "error",
                      error->message);
      return flora_http_error(res, status, "internal", NULL, "internal error", NULL);
   }
   return flora_http_error(res, status, code_name(error, status), NULL, error->message, NULL);
}

bool
flora_http_body_json(const flora_http_request_t *req, bson_t *out, flora_error_t *error)
{
   bson_error_t berr = {0};
   bson_json_reader_t *reader = NULL;
   size_t i = 0;
   int r;

   FLORA_ASSERT_ARG(req);
   FLORA_ASSERT_ARG(out);
   bson_init(out);
   while (req->body && i < req->body_len &&
          (req->body[i] == ' ' || req->body[i] == '\t' || req->body[i] == '\r' ||
           req->body[i] == '\n')) {
      i++;
   }
   if (!req->body || i == req->body_len) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "request body is empty (a JSON object is required)");
      return false;
   }
   if (req->body_len > (size_t) SSIZE_MAX) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_TOO_LARGE, "request body is too large");
      return false;
   }
   if (!bson_utf8_validate(req->body, req->body_len, false)) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "request body is not valid UTF-8 (RFC 8259 section 8.1)");
      return false;
   }
   if (req->body[i] != '{') {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "request body must be a JSON object");
      return false;
   }
   if (!flora_json_check_strict(req->body, req->body_len, error)) {
      flora_error_prefix(error, "request body is not valid JSON");
      return false;
   }
   /* One reader for the object and a second read that must find nothing after it. */
   reader = bson_json_data_reader_new(false, 0);
   bson_json_data_reader_ingest(reader, (const uint8_t *) req->body, req->body_len);
   r = bson_json_reader_read(reader, out, &berr);
   if (r == 1) {
      bson_t extra = BSON_INITIALIZER;

      r = bson_json_reader_read(reader, &extra, &berr) == 0 ? 1 : 2;
      bson_destroy(&extra);
   }
   bson_json_reader_destroy(reader);
   if (r != 1) {
      bson_reinit(out);
      if (r == 2) {
         flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "request body has data after the JSON object");
      } else {
         flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                         "request body is not valid JSON: %s", berr.message);
      }
      return false;
   }
   return true;
}
