/* See response_cache.h. A chained hash table plus a doubly linked LRU list, one mutex. */
#include "response_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A body shared by the cache and the responses sending it; freed by its last holder. */
typedef struct shared_body {
   atomic_int refs;
   size_t len;
   char data[];
} shared_body_t;

static void
body_release(shared_body_t *b)
{
   if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
      free(b);
   }
}

typedef struct entry {
   char *key;
   uint64_t hash;
   int64_t versions[FLORA_CACHE_MAX_VERSIONS];
   size_t n_versions;
   shared_body_t *body;
   size_t len;
   struct entry *next_in_bucket;
   struct entry *prev_lru, *next_lru; /* head = most recent */
} entry_t;

struct flora_response_cache {
   pthread_mutex_t lock;
   entry_t **buckets;
   size_t n_buckets;
   entry_t *lru_head, *lru_tail;
   size_t entries, max_entries;
   size_t bytes, max_bytes;
   uint64_t hits, misses;
};

static uint64_t
hash_key(const char *s)
{
   uint64_t h = 1469598103934665603ull; /* FNV-1a */

   for (; *s; s++) {
      h = (h ^ (unsigned char) *s) * 1099511628211ull;
   }
   return h;
}

flora_response_cache_t *
flora_response_cache_new(size_t max_entries, size_t max_bytes)
{
   flora_response_cache_t *c;

   if (max_entries == 0) {
      return NULL;
   }
   c = calloc(1, sizeof *c);
   if (!c) {
      return NULL;
   }
   c->n_buckets = 1;
   while (c->n_buckets < max_entries * 2) {
      c->n_buckets <<= 1;
   }
   c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
   if (!c->buckets) {
      free(c);
      return NULL;
   }
   c->max_entries = max_entries;
   c->max_bytes = max_bytes;
   pthread_mutex_init(&c->lock, NULL);
   return c;
}

static void
lru_unlink(flora_response_cache_t *c, entry_t *e)
{
   if (e->prev_lru) {
      e->prev_lru->next_lru = e->next_lru;
   } else {
      c->lru_head = e->next_lru;
   }
   if (e->next_lru) {
      e->next_lru->prev_lru = e->prev_lru;
   } else {
      c->lru_tail = e->prev_lru;
   }
   e->prev_lru = e->next_lru = NULL;
}

static void
lru_push_front(flora_response_cache_t *c, entry_t *e)
{
   e->next_lru = c->lru_head;
   e->prev_lru = NULL;
   if (c->lru_head) {
      c->lru_head->prev_lru = e;
   }
   c->lru_head = e;
   if (!c->lru_tail) {
      c->lru_tail = e;
   }
}

static entry_t **
find_slot(flora_response_cache_t *c, const char *key, uint64_t h)
{
   entry_t **slot = &c->buckets[h & (c->n_buckets - 1)];

   while (*slot && ((*slot)->hash != h || strcmp((*slot)->key, key) != 0)) {
      slot = &(*slot)->next_in_bucket;
   }
   return slot;
}

static void
remove_entry(flora_response_cache_t *c, entry_t *e)
{
   entry_t **slot = find_slot(c, e->key, e->hash);

   *slot = e->next_in_bucket;
   lru_unlink(c, e);
   c->entries--;
   c->bytes -= e->len;
   free(e->key);
   body_release(e->body);
   free(e);
}

void
flora_response_cache_destroy(flora_response_cache_t *cache)
{
   if (!cache) {
      return;
   }
   while (cache->lru_head) {
      remove_entry(cache, cache->lru_head);
   }
   free(cache->buckets);
   pthread_mutex_destroy(&cache->lock);
   free(cache);
}

bool
flora_response_cache_get(flora_response_cache_t *cache, const char *key, const int64_t *versions,
                         size_t n_versions, const char **body, size_t *len, void **handle)
{
   entry_t *e;
   bool hit = false;

   if (!cache || n_versions > FLORA_CACHE_MAX_VERSIONS) {
      return false;
   }
   pthread_mutex_lock(&cache->lock);
   e = *find_slot(cache, key, hash_key(key));
   if (e && e->n_versions == n_versions &&
       memcmp(e->versions, versions, n_versions * sizeof *versions) == 0) {
      atomic_fetch_add(&e->body->refs, 1);
      *body = e->body->data;
      *len = e->body->len;
      *handle = e->body;
      lru_unlink(cache, e);
      lru_push_front(cache, e);
      hit = true;
   }
   if (hit) {
      cache->hits++;
   } else {
      cache->misses++;
   }
   pthread_mutex_unlock(&cache->lock);
   return hit;
}

void
flora_response_cache_release(void *handle)
{
   body_release(handle);
}

void
flora_response_cache_put(flora_response_cache_t *cache, const char *key, const int64_t *versions,
                         size_t n_versions, const char *body, size_t len)
{
   entry_t *e, **slot;
   uint64_t h;

   if (!cache || n_versions > FLORA_CACHE_MAX_VERSIONS || len > cache->max_bytes / 4) {
      return;
   }
   e = calloc(1, sizeof *e);
   if (!e) {
      return;
   }
   e->key = strdup(key);
   e->body = malloc(sizeof *e->body + (len ? len : 1));
   if (!e->key || !e->body) {
      free(e->key);
      free(e->body);
      free(e);
      return;
   }
   atomic_init(&e->body->refs, 1); /* the entry's own reference */
   e->body->len = len;
   memcpy(e->body->data, body, len);
   e->len = len;
   e->n_versions = n_versions;
   memcpy(e->versions, versions, n_versions * sizeof *versions);
   h = e->hash = hash_key(key);
   pthread_mutex_lock(&cache->lock);
   slot = find_slot(cache, key, h);
   if (*slot) {
      remove_entry(cache, *slot);
      slot = find_slot(cache, key, h);
   }
   e->next_in_bucket = NULL;
   *slot = e;
   lru_push_front(cache, e);
   cache->entries++;
   cache->bytes += len;
   while (cache->lru_tail && (cache->entries > cache->max_entries || cache->bytes > cache->max_bytes)) {
      remove_entry(cache, cache->lru_tail);
   }
   pthread_mutex_unlock(&cache->lock);
}

void
flora_response_cache_stats(flora_response_cache_t *cache, uint64_t *hits, uint64_t *misses)
{
   *hits = *misses = 0;
   if (!cache) {
      return;
   }
   pthread_mutex_lock(&cache->lock);
   *hits = cache->hits;
   *misses = cache->misses;
   pthread_mutex_unlock(&cache->lock);
}
