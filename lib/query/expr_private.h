/* The aggregation expression language (lib/query/expr.c), used by the pipeline stages in
 * lib/query/pipeline.c. Not installed.
 *
 * An expression is compiled once into a tree (flora__expr_compile) and evaluated many
 * times without reparsing (flora__expr_eval). Values produced by evaluation are owned
 * bson_value_t's (free with bson_value_destroy); "missing" (no value, as an absent field)
 * is represented by value_type BSON_TYPE_EOD. Semantics: MongoDB manual, "Aggregation
 * Pipeline Operators" (www.mongodb.com/docs/manual/reference/operator/aggregation/). */
#ifndef FLORA_EXPR_PRIVATE_H
#define FLORA_EXPR_PRIVATE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/error.h"

typedef struct flora__expr flora__expr_t;

/* Compiles an expression (a field path "$a.b", a variable "$$ROOT", a literal, an
 * operator document {$op: args}, an expression object {f: expr, ...} or an array of
 * expressions). Unknown or unsupported operators fail with code 2 ("unsupported
 * expression operator $foo"); malformed arguments with MongoDB's code for the case. */
flora__expr_t *flora__expr_compile(const bson_value_t *spec, flora_error_t *error);
void flora__expr_destroy(flora__expr_t *expr);

/* Evaluates expr with $$ROOT = $$CURRENT = root and $$NOW = now_ms. *out receives an owned
 * value (BSON_TYPE_EOD when the result is missing). Runtime errors (e.g. $divide by zero,
 * $add of a string) fail with MongoDB's code and message. */
bool flora__expr_eval(const flora__expr_t *expr, const bson_t *root, int64_t now_ms,
                      bson_value_t *out, flora_error_t *error);

/* Appends v under key unless v is missing (EOD). */
void flora__value_append(bson_t *doc, const char *key, int key_len, const bson_value_t *v);

/* Comparison as the aggregation language does it: missing sorts below null, then
 * flora_value_compare. */
int flora__agg_compare(const bson_value_t *a, const bson_value_t *b);

/* A hash consistent with flora__agg_compare() == 0 (numbers of different types that
 * compare equal hash the same). Missing hashes as null. */
uint64_t flora__agg_hash(const bson_value_t *v);

/* MongoDB's truthiness: false, null, missing, undefined and numeric zero are false. */
bool flora__agg_truthy(const bson_value_t *v);

/* ---- numeric accumulation, shared by $add and the $sum/$avg accumulators ------------ */

/* A running sum with MongoDB's widening: int32 totals that overflow become int64, int64
 * totals that overflow become double, and any decimal128 input makes the result a
 * decimal128. Non-numeric values are the caller's business (not added). */
typedef struct flora__sum {
   int type;            /* widest input: 0 int32, 1 int64, 2 double, 3 decimal */
   bool long_overflowed; /* the exact int64 total overflowed: use the double total */
   int64_t l;           /* exact integer total while !long_overflowed */
   double d;            /* double total (Neumaier-compensated) of every non-decimal input */
   double d_comp;
   bson_decimal128_t dec; /* decimal total of the decimal inputs (valid when has_dec) */
   bool has_dec;
   int64_t count;       /* numbers added */
   int nd_type;         /* widest non-decimal input: 0 int32, 1 int64, 2 double */
   int64_t nd_count;    /* non-decimal numbers added */
} flora__sum_t;

void flora__sum_init(flora__sum_t *sum);
/* v must be int32, int64, double or decimal128. */
void flora__sum_add(flora__sum_t *sum, const bson_value_t *v);
/* The total as MongoDB types it: int32 when every input was int32 and it fits, else int64
 * while exact, else double; decimal128 when any input was. An empty sum is int32 0. */
void flora__sum_value(const flora__sum_t *sum, bson_value_t *out);
/* The mean (double, or decimal128 when any input was), or null when count is 0. */
void flora__sum_mean(const flora__sum_t *sum, bson_value_t *out);

#endif
