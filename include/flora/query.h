/* MongoDB's query language evaluated on BSON documents, engine-agnostic.
 *
 * This is the semantics the embedded engine gives the store API (DESIGN.md section 2):
 * filters, update operators, projection, sort and the aggregation subset, all on libbson
 * values. Semantics follow the MongoDB manual (docs.mongodb.com/manual/reference/operator)
 * and the recorded answers of real MongoDB in the OpenDocDB corpus: type bracketing,
 * null versus missing, implicit array traversal on dotted paths, numeric equality across
 * int32/int64/double/decimal128, and BSON's cross-type sort order.
 *
 * Every compile function validates its whole input first and fails with a STORE-domain
 * error naming the problem: FLORA_STORE_BAD_VALUE (2) for an unknown operator or one this
 * engine does not support ("unsupported operator $where"), FLORA_STORE_FAILED_TO_PARSE (9)
 * for a malformed argument. An unsupported operator never yields a different answer.
 *
 * Ownership: compiled objects are owned by the caller and freed by their destroy function
 * (NULL is a harmless no-op). Compiled objects keep no pointer into the input documents
 * unless noted. They are immutable after compile and may be shared between threads. */
#ifndef FLORA_QUERY_H
#define FLORA_QUERY_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

#include "flora/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- values ---------------------------------------------------------------------- */

/* BSON comparison order across types (MongoDB manual, "Comparison/Sort Order"):
 * MinKey < null (and missing) < numbers (int32, int64, double, decimal128 compared by
 * value) < symbol, string < document < array < binary < ObjectId < bool < date <
 * timestamp < regex < MaxKey. Strings compare by bytes (simple collation). NaN sorts below
 * every other number and equals NaN. Documents compare field by field (type, name, value);
 * arrays element by element. Returns <0, 0 or >0. */
int flora_value_compare(const bson_value_t *a, const bson_value_t *b);

/* The canonical type rank used by the order above (equal ranks compare by value). */
int flora_value_type_rank(bson_type_t type);

/* MongoDB's alias of a BSON type, as $type and error messages name it ("double", "string",
 * "object", "array", "binData", "objectId", "bool", "date", "null", "regex", "int",
 * "timestamp", "long", "decimal", "minKey", "maxKey", ...; manual: "$type"); NULL for a
 * type that has none. A static string. */
const char *flora_value_type_name(bson_type_t type);

/* ---- a growable list of owned documents ------------------------------------------ */

typedef struct flora_docs {
   bson_t **items; /* each owned by the list */
   size_t len;
   size_t cap;
} flora_docs_t;

#define FLORA_DOCS_INIT {NULL, 0, 0}
/* Appends a copy of doc. */
void flora_docs_append_copy(flora_docs_t *docs, const bson_t *doc);
/* Appends doc itself, taking ownership (doc must come from bson_new()/bson_copy()). */
void flora_docs_append_owned(flora_docs_t *docs, bson_t *doc);
/* Frees every document and the array; leaves an empty list. */
void flora_docs_clear(flora_docs_t *docs);

/* ---- filters ---------------------------------------------------------------------- */

typedef struct flora_matcher flora_matcher_t;

/* Compiles a query filter. Supported: $eq $ne $gt $gte $lt $lte $in $nin $exists $type
 * $and $or $nor $not $regex (options i m s x) $options $elemMatch $all $size $mod
 * $comment, literal regex values, and $text (matched by the engine's text index, see
 * flora_matcher_text_search; the matcher itself treats it as true). Anything else: code 2.
 * Returns NULL on error. The filter need not outlive the matcher. */
flora_matcher_t *flora_matcher_new(const bson_t *filter, flora_error_t *error);
void flora_matcher_destroy(flora_matcher_t *matcher);

/* True when doc matches. When the filter's first matching array element matters
 * (positional `$` projection or update), *first_array_index receives its index along the
 * path tested, or -1 (pass NULL when not needed). */
bool flora_matcher_match(const flora_matcher_t *matcher, const bson_t *doc, int *first_array_index);

/* The $text search string of the filter ($text.$search), or NULL when there is none. */
const char *flora_matcher_text_search(const flora_matcher_t *matcher);

/* ---- sort -------------------------------------------------------------------------- */

typedef struct flora_sort flora_sort_t;

/* Compiles a sort spec {field: 1|-1, ...} (also {score: {$meta: "textScore"}}).
 * Array fields sort by their smallest (ascending) or largest (descending) element, as
 * MongoDB does. */
flora_sort_t *flora_sort_new(const bson_t *spec, flora_error_t *error);
void flora_sort_destroy(flora_sort_t *sort);
/* <0, 0, >0: the order of a and b under the spec. */
int flora_sort_compare(const flora_sort_t *sort, const bson_t *a, const bson_t *b);
/* Sorts the list in place (stable). */
void flora_sort_docs(const flora_sort_t *sort, flora_docs_t *docs);

/* ---- projection ------------------------------------------------------------------- */

typedef struct flora_projection flora_projection_t;

/* Compiles a find projection: inclusion or exclusion (not mixed, except _id), dotted
 * paths, $slice, $elemMatch, positional `path.$` and {$meta: "textScore"}. */
flora_projection_t *flora_projection_new(const bson_t *spec, flora_error_t *error);
void flora_projection_destroy(flora_projection_t *projection);
/* Writes the projected doc into *out (initialised by the callee). matcher is the query's
 * matcher (for positional projection; may be NULL otherwise). */
bool flora_projection_apply(const flora_projection_t *projection, const bson_t *doc,
                            const flora_matcher_t *matcher, bson_t *out, flora_error_t *error);

/* ---- updates ---------------------------------------------------------------------- */

typedef struct flora_update flora_update_t;

/* Compiles an update: either operators ($set $unset $inc $mul $min $max $rename
 * $setOnInsert $currentDate $push with $each/$slice/$sort/$position, $addToSet with $each,
 * $pull $pullAll $pop $bit; positional `$`, `$[]`, `$[<id>]` with array_filters) or a
 * replacement document (no operators). array_filters is the arrayFilters array (an array
 * document) or NULL. Conflicting paths (e.g. $set a and $inc a.b) fail with code 40. */
flora_update_t *flora_update_new(const bson_t *update, const bson_t *array_filters,
                                 flora_error_t *error);
void flora_update_destroy(flora_update_t *update);
bool flora_update_is_replacement(const flora_update_t *update);

/* Applies the update to doc, writing the new document to *out (initialised by the
 * callee). is_insert is true when the document is being created by an upsert (enables
 * $setOnInsert). positional_index is the first matching array index from the query
 * (flora_matcher_match), or -1. *modified says whether *out differs from doc. _id is
 * immutable (code 66). now_ms is the time for $currentDate (milliseconds since epoch). */
bool flora_update_apply(const flora_update_t *update, const bson_t *doc, bool is_insert,
                        int positional_index, int64_t now_ms, bson_t *out, bool *modified,
                        flora_error_t *error);

/* The seed of an upsert: the equality fields of the filter ({a: 1}, {a: {$eq: 1}},
 * $and of those; dotted paths become nested documents), as MongoDB builds it before
 * applying the update. *out is initialised by the callee. */
bool flora_update_upsert_seed(const bson_t *filter, bson_t *out, flora_error_t *error);

/* ---- aggregation ------------------------------------------------------------------ */

typedef struct flora_pipeline flora_pipeline_t;

/* Fetches the documents of another collection that the filter {field: {$eq: value}}
 * matches (for $lookup: query equality, so an array field matches by element, a null value
 * matches null and missing, and a regex value matches only an equal regex, as MongoDB's
 * $lookup does). Called once per distinct local value. Appends copies to *out (owned by
 * the caller); returns false with *error set on failure. */
typedef bool (*flora_lookup_fn)(void *ctx, const char *collection, const char *field,
                                const bson_value_t *value, flora_docs_t *out,
                                flora_error_t *error);

/* Compiles a pipeline (an array document of stages). Stages: $match $project $addFields
 * $set $unset $group ($sum $avg $min $max $first $last $push $addToSet, $count) $sort
 * $skip $limit $unwind (with includeArrayIndex, preserveNullAndEmptyArrays) $lookup
 * (localField/foreignField form, optionally with a sub-pipeline) $count $replaceRoot
 * $replaceWith $sortByCount $facet, a top-level $expr in $match, and the expression
 * operators listed in docs/query.md
 * (section "Aggregation"). Any other stage, accumulator or operator fails with code 2;
 * malformed stages with MongoDB's code (e.g. 15955 for $group without _id). Returns NULL
 * on error. */
flora_pipeline_t *flora_pipeline_new(const bson_t *pipeline, flora_error_t *error);
void flora_pipeline_destroy(flora_pipeline_t *pipeline);

/* The number of leading stages an engine may run itself with an index: a leading $match
 * (returned in *match, borrowed from the pipeline, or NULL) followed by $sort (in *sort, or
 * NULL). The engine then calls flora_pipeline_run with skip_stages set to what it ran. */
size_t flora_pipeline_prefix(const flora_pipeline_t *pipeline, const bson_t **match,
                             const bson_t **sort);

/* Runs the stages from skip_stages on over *docs (consumed; left empty) and writes the
 * result into *out (appended). lookup is called for $lookup stages (it must not be NULL
 * when the pipeline has one). now_ms serves $$NOW. Runtime errors (e.g. $divide by zero,
 * $add of a string) fail with MongoDB's code; *out is then left as it was. */
bool flora_pipeline_run(const flora_pipeline_t *pipeline, size_t skip_stages, flora_docs_t *docs,
                        flora_lookup_fn lookup, void *lookup_ctx, int64_t now_ms,
                        flora_docs_t *out, flora_error_t *error);

/* ---- documents -------------------------------------------------------------------- */

/* Checks a document to be stored: field names not empty, no top-level `$` prefix,
 * nesting at most 100 levels, at most 16 MiB (MongoDB's limits, manual "MongoDB Limits and
 * Thresholds"). Codes 56, 52, 15, 10334. */
bool flora_document_check_storable(const bson_t *doc, flora_error_t *error);

/* Looks up a dotted path without array traversal (a.0.b indexes arrays). */
bool flora_document_get_path(const bson_t *doc, const char *path, bson_iter_t *out);

#ifdef __cplusplus
}
#endif
#endif
