/* Cursors: the public functions of include/flora/store.h over an engine's cursor ops, and
 * the two cursors every engine shares (a materialised list, a failed cursor). */
#include "store/store_private.h"

#include <string.h>

bool
flora_cursor_next(flora_cursor_t *cursor, const bson_t **doc)
{
   FLORA_ASSERT_ARG(cursor);
   FLORA_ASSERT_ARG(doc);
   *doc = NULL;
   if (cursor->failed) {
      return false;
   }
   return cursor->ops->next(cursor, doc);
}

bool
flora_cursor_error(const flora_cursor_t *cursor, flora_error_t *error)
{
   FLORA_ASSERT_ARG(cursor);
   if (!cursor->failed) {
      return false;
   }
   if (error) {
      *error = cursor->error;
   }
   return true;
}

void
flora_cursor_destroy(flora_cursor_t *cursor)
{
   if (!cursor) {
      return;
   }
   if (cursor->ops && cursor->ops->destroy) {
      cursor->ops->destroy(cursor);
   }
   bson_free(cursor);
}

/* ---- a cursor over a materialised list ------------------------------------------- */

typedef struct docs_cursor {
   flora_docs_t docs;
   size_t pos;
} docs_cursor_t;

static bool
docs_next(flora_cursor_t *cursor, const bson_t **doc)
{
   docs_cursor_t *impl = cursor->impl;

   if (impl->pos >= impl->docs.len) {
      return false;
   }
   *doc = impl->docs.items[impl->pos++];
   return true;
}

static void
docs_destroy(flora_cursor_t *cursor)
{
   docs_cursor_t *impl = cursor->impl;

   if (impl) {
      flora_docs_clear(&impl->docs);
      bson_free(impl);
   }
   cursor->impl = NULL;
}

static const flora_cursor_ops_t docs_ops = {docs_next, docs_destroy};

flora_cursor_t *
flora__cursor_from_docs(flora_docs_t *docs)
{
   flora_cursor_t *cursor = bson_malloc0(sizeof *cursor);
   docs_cursor_t *impl = bson_malloc0(sizeof *impl);

   FLORA_ASSERT_ARG(docs);
   impl->docs = *docs;
   docs->items = NULL;
   docs->len = 0;
   docs->cap = 0;
   cursor->ops = &docs_ops;
   cursor->impl = impl;
   return cursor;
}

/* ---- a cursor that has failed ---------------------------------------------------- */

static bool
failed_next(flora_cursor_t *cursor, const bson_t **doc)
{
   (void) cursor;
   (void) doc;
   return false;
}

static void
failed_destroy(flora_cursor_t *cursor)
{
   (void) cursor;
}

static const flora_cursor_ops_t failed_ops = {failed_next, failed_destroy};

flora_cursor_t *
flora__cursor_failed(const flora_error_t *error)
{
   flora_cursor_t *cursor = bson_malloc0(sizeof *cursor);

   FLORA_ASSERT_ARG(error);
   cursor->ops = &failed_ops;
   cursor->failed = true;
   cursor->error = *error;
   return cursor;
}
