/* An in-process cache of rendered JSON responses for the hot storefront reads (catalog
 * listing, product page, category tree), validated by the store's collection versions
 * (flora_store_collection_version): an entry is served only while the versions it was
 * rendered at are still current, so a write by any thread or process invalidates it
 * without a message. Bounded by entry count and bytes, least recently used out first.
 * Thread-safe. With the mongodb engine (no versions) callers simply do not use it. */
#ifndef FLORA_SRC_RESPONSE_CACHE_H
#define FLORA_SRC_RESPONSE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct flora_response_cache flora_response_cache_t;

#define FLORA_CACHE_MAX_VERSIONS 4

/* A new cache holding at most max_entries responses and max_bytes of bodies; NULL when
 * max_entries is 0 (caching off) or out of memory. */
flora_response_cache_t *flora_response_cache_new(size_t max_entries, size_t max_bytes);
void flora_response_cache_destroy(flora_response_cache_t *cache);

/* On a hit (same key, same versions) returns true with the cached body in *body and *len,
 * shared, not copied: it stays valid until flora_response_cache_release(*handle), which
 * the caller must call exactly once (e.g. as libmicrohttpd's free callback). NULL cache:
 * always a miss. */
bool flora_response_cache_get(flora_response_cache_t *cache, const char *key, const int64_t *versions,
                              size_t n_versions, const char **body, size_t *len, void **handle);

/* Drops the reference a hit handed out. */
void flora_response_cache_release(void *handle);

/* Stores a copy of body under key at these versions, replacing an older entry. Bodies
 * larger than a quarter of max_bytes are not kept. NULL cache: no-op. */
void flora_response_cache_put(flora_response_cache_t *cache, const char *key, const int64_t *versions,
                              size_t n_versions, const char *body, size_t len);

/* Hits and misses so far (for /metrics). */
void flora_response_cache_stats(flora_response_cache_t *cache, uint64_t *hits, uint64_t *misses);

#endif
