/* The OpenDocDB compatibility suite runner (DESIGN.md section 2, "Conformance").
 *
 * A CTS directory holds fixtures at its root (<collection>.fixture.json: an Extended JSON
 * array of documents) and test suites below it (any other *.json: an object of named cases
 * {request, response}, run in file order; format: the CTS README.upstream.md). For each
 * suite file the runner opens a fresh database (sqlite: a new store per file with every
 * collection dropped, so sqlite::memory: starts empty; mongodb: a new database name per
 * file, dropped afterwards), replaces {{.Database}} in the file, loads the fixtures whose
 * collection name the suite mentions, runs each request with flora_store_command() and
 * compares the reply with the recorded response (flora_conformance_compare).
 *
 * A case is UNSUPPORTED when the engine refused it with code 2 and a message containing
 * "unsupported" or "not supported" (as a command error or a write error), or when it
 * differs after an earlier UNSUPPORTED case of the same suite (the cases of a suite build on
 * each other); otherwise PASS or FAIL. */
#ifndef FLORA_CONFORMANCE_H
#define FLORA_CONFORMANCE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

#include "flora/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum flora_conformance_outcome {
   FLORA_CONFORMANCE_PASS = 0,
   FLORA_CONFORMANCE_FAIL,
   FLORA_CONFORMANCE_UNSUPPORTED,
} flora_conformance_outcome_t;

/* Called once per case: path is the suite file relative to the directory
 * ("query/comparison/eq.json"), name the case's name, detail the difference (FAIL), the
 * engine's message (UNSUPPORTED) or "" (PASS). All borrowed for the call. */
typedef void (*flora_conformance_report_fn)(void *ctx, flora_conformance_outcome_t outcome,
                                            const char *path, const char *name,
                                            const char *detail);

typedef struct flora_conformance_totals {
   size_t passed;
   size_t failed;
   size_t unsupported;
} flora_conformance_totals_t;

/* Runs every suite under dir against the store at uri (NULL: "sqlite::memory:"), calling
 * report (may be NULL) per case and adding up *totals (zeroed first). Returns false only
 * when the run itself cannot proceed (unreadable directory, a store that does not open, a
 * malformed suite file: IO, INPUT or STORE errors); failing cases are counted, not errors. */
bool flora_conformance_run(const char *dir, const char *uri, flora_conformance_report_fn report,
                           void *ctx, flora_conformance_totals_t *totals, flora_error_t *error);

/* Compares a reply with an expected response as the CTS does: documents ignore field
 * order, arrays keep it, and values must agree in BSON type and value (int32 52 is not
 * int64 52 nor double 52.0; -0.0 is not 0.0; NaN equals NaN; decimal128 by canonical
 * string). Returns true when equal; otherwise writes "path: expected X, got Y" into
 * diff[diff_len] (truncated). */
bool flora_conformance_compare(const bson_t *actual, const bson_t *expected, char *diff,
                               size_t diff_len);

#ifdef __cplusplus
}
#endif
#endif
