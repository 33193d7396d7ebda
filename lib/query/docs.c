/* A growable list of owned documents: see include/flora/query.h. */
#include "query/query_private.h"

static void
reserve_one(flora_docs_t *docs)
{
   if (docs->len < docs->cap) {
      return;
   }
   docs->cap = docs->cap ? docs->cap * 2 : 16;
   docs->items = bson_realloc(docs->items, docs->cap * sizeof *docs->items);
}

void
flora_docs_append_copy(flora_docs_t *docs, const bson_t *doc)
{
   FLORA_ASSERT_ARG(docs);
   FLORA_ASSERT_ARG(doc);
   reserve_one(docs);
   docs->items[docs->len++] = bson_copy(doc);
}

void
flora_docs_append_owned(flora_docs_t *docs, bson_t *doc)
{
   FLORA_ASSERT_ARG(docs);
   FLORA_ASSERT_ARG(doc);
   reserve_one(docs);
   docs->items[docs->len++] = doc;
}

void
flora_docs_clear(flora_docs_t *docs)
{
   if (!docs) {
      return;
   }
   for (size_t i = 0; i < docs->len; i++) {
      bson_destroy(docs->items[i]);
   }
   bson_free(docs->items);
   docs->items = NULL;
   docs->len = 0;
   docs->cap = 0;
}
