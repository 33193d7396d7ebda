/* Internals shared by update.c (compile, path tree, field operators) and update_array.c
 * (array operators). Not installed.
 *
 * An update is applied to a mutable value tree (mval_t) built lazily from the input
 * document: a sub-document stays a borrowed BSON value until an operator needs to walk
 * into it, then it is expanded into fields. The tree is serialised once at the end. */
#ifndef FLORA_UPDATE_PRIVATE_H
#define FLORA_UPDATE_PRIVATE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flora/error.h"
#include "flora/query.h"
#include "query_private.h"

/* MongoDB's name of a BSON type, for messages. */
static inline const char *
type_name(bson_type_t t)
{
   const char *n = flora_value_type_name(t);
   return n ? n : "unknown";
}

/* ---- the mutable value tree ---------------------------------------------------------- */

typedef enum { MV_VALUE, MV_DOC, MV_ARRAY } mv_kind_t;

typedef struct mval mval_t;
typedef struct mfield mfield_t;

struct mval {
   mv_kind_t kind;
   bson_value_t value; /* MV_VALUE: the value (a document or array not yet expanded);
                          MV_DOC/MV_ARRAY: the backing BSON the fields borrow from, if any */
   bool owned;         /* value was allocated for this node (bson_value_destroy) */
   mfield_t *fields;   /* MV_DOC/MV_ARRAY */
   size_t len;
   size_t cap;
};

struct mfield {
   char *key; /* owned; NULL for array elements */
   mval_t val;
};

/* A borrowed value: the node points at v (which must outlive the tree). */
void flora__mval_init_borrowed(mval_t *mv, const bson_value_t *v);
/* An owned deep copy of v. */
void flora__mval_init_copy(mval_t *mv, const bson_value_t *v);
/* An empty expanded document. */
void flora__mval_init_doc(mval_t *mv);
/* A null value. */
void flora__mval_init_null(mval_t *mv);
/* Frees what the node owns (not the node itself). */
void flora__mval_clear(mval_t *mv);
/* Replaces mv's content with src's, leaving src empty (a null). */
void flora__mval_move(mval_t *dst, mval_t *src);
/* Expands a document or array value into fields (no-op when already expanded or scalar). */
void flora__mval_expand(mval_t *mv);
/* The BSON type of the node. */
bson_type_t flora__mval_type(const mval_t *mv);
/* Appends the node under key to dst. */
void flora__mval_append(bson_t *dst, const char *key, int key_len, const mval_t *mv);
/* A bson_value_t for the node; expanded nodes are serialised into *tmp (initialised here,
 * destroy it after use; it is an empty static document otherwise). */
void flora__mval_value(const mval_t *mv, bson_t *tmp, bson_value_t *out);
/* Appends a field (document) or element (array, key NULL) and returns its slot. */
mval_t *flora__mval_push(mval_t *container, const char *key);
/* Removes the field/element at index i. */
void flora__mval_remove(mval_t *container, size_t i);
/* Replaces the node with an owned array holding the elements of arr. */
void flora__mval_set_array(mval_t *mv, const bson_t *arr);

/* ---- compiled operators -------------------------------------------------------------- */

typedef enum {
   OP_SET,
   OP_UNSET,
   OP_INC,
   OP_MUL,
   OP_MIN,
   OP_MAX,
   OP_RENAME,      /* at the destination path */
   OP_PLACEHOLDER, /* the source path of a $rename: only reserves the path */
   OP_SET_ON_INSERT,
   OP_CURRENT_DATE,
   OP_PUSH,
   OP_ADD_TO_SET,
   OP_PULL,
   OP_PULL_ALL,
   OP_POP,
   OP_BIT,
} op_kind_t;

typedef enum { PULL_EQUAL, PULL_OBJECT, PULL_WRAPPED } pull_kind_t;

typedef struct leaf {
   op_kind_t op;
   const char *op_name;
   bson_value_t value; /* owned copy of the operand */
   bool timestamp;     /* $currentDate */
   /* $push / $addToSet: the values to add (owned copies) */
   bson_value_t *each;
   size_t n_each;
   bool has_slice;
   int64_t slice;
   bool has_position;
   int64_t position;
   int sort; /* 0 none, 1 whole value, 2 pattern */
   int sort_dir;
   bson_t *sort_pattern;
   /* $pull */
   pull_kind_t pull_kind;
   flora_matcher_t *pull_matcher;
   /* $pop */
   int pop_dir;
   /* $rename: the source path, whole and split into components */
   char *from;
   char **from_comps;
   size_t n_from;
} leaf_t;

/* The state of one flora_update_apply call, as the array operators need it. */
typedef struct apply_ctx {
   mval_t root;
   const bson_t *orig;
   flora_error_t *error;
} apply_ctx_t;

/* Parses the operand of an array operator into *leaf. field is the path (for messages). */
bool flora__update_parse_array_op(leaf_t *leaf, const char *field, const bson_iter_t *operand,
                                  flora_error_t *error);
/* Frees what an array operator's leaf owns. */
void flora__update_leaf_clear_array(leaf_t *leaf);
/* Applies an array operator to an existing element target at path. */
bool flora__update_array_existing(apply_ctx_t *ctx, const leaf_t *leaf, mval_t *target,
                                  const char *path, flora_error_t *error);
/* The value an array operator creates at a missing path ($push/$addToSet); false (no
 * error) when the operator does nothing on a missing path. */
bool flora__update_array_create(const leaf_t *leaf, mval_t *out);

/* Writes "_id: <json>" (or "no id") of doc into buf for error messages. */
void flora__update_describe_id(const mval_t *root, char *buf, size_t size);
/* Relaxed JSON of a value into buf (truncated). */
void flora__update_value_json(const bson_value_t *v, char *buf, size_t size);

#endif
