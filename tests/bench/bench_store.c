/* Benchmark of the embedded engine against plain SQL on plain SQLite, in one process.
 *
 * 100,000 product-like documents {sku (unique), price, categoryId, stock, name}: insert
 * rate, point lookups by the unique indexed sku, a price range sorted by price with limit
 * 24, and conditional updates ({sku, stock >= 1} $inc -1). Each beside the same operation
 * in SQL on a table with columns and indexes (WAL, synchronous=NORMAL, prepared
 * statements). Prints figures; asserts nothing about time.
 *
 * Usage: bench_store [N] [DIR]   (defaults 100000, /tmp). Build Release for real figures:
 *   cmake -S . -B build/rel -DCMAKE_BUILD_TYPE=Release -DFLORA_SANITIZE=OFF */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "flora/store.h"

static double
now_s(void)
{
   struct timespec ts;
   clock_gettime(CLOCK_MONOTONIC, &ts);
   return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
die(const char *what, const char *msg)
{
   fprintf(stderr, "bench_store: %s: %s\n", what, msg);
   exit(1);
}

static uint32_t rng = 2463534242u;

static uint32_t
next_rand(void)
{
   rng ^= rng << 13;
   rng ^= rng >> 17;
   rng ^= rng << 5;
   return rng;
}

static void
report(const char *what, int n, double flora_s, double sql_s)
{
   printf("%-34s %9.0f ops/s  | plain SQL %9.0f ops/s  | flora/sql time %5.2fx\n", what,
          n / flora_s, n / sql_s, flora_s / sql_s);
}

static void
remove_files(const char *path)
{
   char p[1100];
   unlink(path);
   snprintf(p, sizeof p, "%s-wal", path);
   unlink(p);
   snprintf(p, sizeof p, "%s-shm", path);
   unlink(p);
}

static void
sql_exec(sqlite3 *db, const char *sql)
{
   char *err = NULL;
   if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
      die(sql, err ? err : "?");
   }
}

int
main(int argc, char **argv)
{
   int n = argc > 1 ? (int) strtol(argv[1], NULL, 10) : 100000;
   const char *dir = argc > 2 ? argv[2] : "/tmp";
   char flora_path[1024], sql_path[1024], uri[1100];
   flora_store_t *store = NULL;
   flora_error_t err;
   sqlite3 *db = NULL;
   sqlite3_stmt *st;
   double t0, tf, ts;
   const int batch = 1000;
   const int lookups = n < 20000 ? n : 20000;
   const int ranges = 2000;
   const int updates = n < 20000 ? n : 20000;
   char sku[32], name[64];
   bson_t **docs;

   if (n < batch) {
      n = batch;
   }
   snprintf(flora_path, sizeof flora_path, "%s/flora-bench-store.db", dir);
   snprintf(sql_path, sizeof sql_path, "%s/flora-bench-plain.db", dir);
   snprintf(uri, sizeof uri, "sqlite:%s", flora_path);
   remove_files(flora_path);
   remove_files(sql_path);
   printf("bench_store: %d products, SQLite %s, files in %s\n", n, sqlite3_libversion(), dir);

   /* ---- setup -------------------------------------------------------------------------- */
   {
      flora_store_options_t o = FLORA_STORE_OPTIONS_INIT;
      bson_t *specs = bson_new(), a, b, c, k;
      o.ttl_sweep_interval_s = 0;
      o.pool_size = 2;
      if (!flora_store_open(&store, uri, &o, &err)) {
         die("open", err.message);
      }
      BSON_APPEND_DOCUMENT_BEGIN(specs, "0", &a);
      BSON_APPEND_DOCUMENT_BEGIN(&a, "key", &k);
      BSON_APPEND_INT32(&k, "sku", 1);
      bson_append_document_end(&a, &k);
      BSON_APPEND_BOOL(&a, "unique", true);
      bson_append_document_end(specs, &a);
      BSON_APPEND_DOCUMENT_BEGIN(specs, "1", &b);
      BSON_APPEND_DOCUMENT_BEGIN(&b, "key", &k);
      BSON_APPEND_INT32(&k, "price", 1);
      bson_append_document_end(&b, &k);
      bson_append_document_end(specs, &b);
      BSON_APPEND_DOCUMENT_BEGIN(specs, "2", &c);
      BSON_APPEND_DOCUMENT_BEGIN(&c, "key", &k);
      BSON_APPEND_INT32(&k, "categoryId", 1);
      BSON_APPEND_INT32(&k, "price", 1);
      bson_append_document_end(&c, &k);
      bson_append_document_end(specs, &c);
      if (!flora_store_create_indexes(store, "products", specs, &err)) {
         die("create indexes", err.message);
      }
      bson_destroy(specs);
   }
   if (sqlite3_open(sql_path, &db) != SQLITE_OK) {
      die("open plain", sqlite3_errmsg(db));
   }
   sql_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                "CREATE TABLE products(id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, "
                "price INTEGER NOT NULL, category_id INTEGER NOT NULL, stock INTEGER NOT NULL, "
                "name TEXT NOT NULL);"
                "CREATE INDEX products_price ON products(price);"
                "CREATE INDEX products_cat_price ON products(category_id, price);");

   /* ---- inserts (batches of 1000, one transaction each) ------------------------------------ */
   docs = calloc((size_t) batch, sizeof *docs);
   t0 = now_s();
   for (int i = 0; i < n; i += batch) {
      for (int j = 0; j < batch; j++) {
         int id = i + j;
         snprintf(sku, sizeof sku, "SKU-%07d", id);
         snprintf(name, sizeof name, "Bouquet %d of roses", id);
         docs[j] = bson_new();
         BSON_APPEND_UTF8(docs[j], "sku", sku);
         BSON_APPEND_INT64(docs[j], "price", 50000 + (int64_t) (id * 7919 % 1000000));
         BSON_APPEND_INT32(docs[j], "categoryId", id % 50);
         BSON_APPEND_INT32(docs[j], "stock", 1000000);
         BSON_APPEND_UTF8(docs[j], "name", name);
      }
      if (!flora_store_insert_many(store, "products", (const bson_t *const *) docs, (size_t) batch,
                                   NULL, NULL, &err)) {
         die("insert_many", err.message);
      }
      for (int j = 0; j < batch; j++) {
         bson_destroy(docs[j]);
      }
   }
   tf = now_s() - t0;
   free(docs);
   t0 = now_s();
   if (sqlite3_prepare_v2(db, "INSERT INTO products(sku, price, category_id, stock, name) "
                              "VALUES (?, ?, ?, ?, ?)",
                          -1, &st, NULL) != SQLITE_OK) {
      die("prepare", sqlite3_errmsg(db));
   }
   for (int i = 0; i < n; i += batch) {
      sql_exec(db, "BEGIN");
      for (int j = 0; j < batch; j++) {
         int id = i + j;
         snprintf(sku, sizeof sku, "SKU-%07d", id);
         snprintf(name, sizeof name, "Bouquet %d of roses", id);
         sqlite3_bind_text(st, 1, sku, -1, SQLITE_TRANSIENT);
         sqlite3_bind_int64(st, 2, 50000 + (int64_t) (id * 7919 % 1000000));
         sqlite3_bind_int(st, 3, id % 50);
         sqlite3_bind_int(st, 4, 1000000);
         sqlite3_bind_text(st, 5, name, -1, SQLITE_TRANSIENT);
         if (sqlite3_step(st) != SQLITE_DONE) {
            die("insert", sqlite3_errmsg(db));
         }
         sqlite3_reset(st);
      }
      sql_exec(db, "COMMIT");
   }
   sqlite3_finalize(st);
   ts = now_s() - t0;
   report("insert (batches of 1000)", n, tf, ts);

   /* ---- point lookups by sku ------------------------------------------------------------------ */
   {
      long found_f = 0, found_s = 0;
      rng = 12345;
      t0 = now_s();
      for (int i = 0; i < lookups; i++) {
         bson_t *f = bson_new(), out;
         bool found = false;
         snprintf(sku, sizeof sku, "SKU-%07d", (int) (next_rand() % (uint32_t) n));
         BSON_APPEND_UTF8(f, "sku", sku);
         if (!flora_store_find_one(store, "products", f, NULL, &out, &found, &err)) {
            die("find_one", err.message);
         }
         found_f += found;
         bson_destroy(&out);
         bson_destroy(f);
      }
      tf = now_s() - t0;
      rng = 12345;
      sqlite3_prepare_v2(db, "SELECT id, sku, price, category_id, stock, name FROM products "
                             "WHERE sku = ?",
                         -1, &st, NULL);
      t0 = now_s();
      for (int i = 0; i < lookups; i++) {
         snprintf(sku, sizeof sku, "SKU-%07d", (int) (next_rand() % (uint32_t) n));
         sql_exec(db, "BEGIN");
         sqlite3_bind_text(st, 1, sku, -1, SQLITE_TRANSIENT);
         while (sqlite3_step(st) == SQLITE_ROW) {
            found_s += sqlite3_column_int64(st, 2) > 0;
            (void) sqlite3_column_text(st, 5);
         }
         sqlite3_reset(st);
         sql_exec(db, "COMMIT");
      }
      ts = now_s() - t0;
      sqlite3_finalize(st);
      if (found_f != lookups || found_s != lookups) {
         die("lookups", "not every sku was found");
      }
      report("find_one by unique sku", lookups, tf, ts);
   }

   /* ---- price range sorted, limit 24 ------------------------------------------------------------ */
   {
      long rows_f = 0, rows_s = 0;
      bson_t *opts = bson_new(), sort;
      BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
      BSON_APPEND_INT32(&sort, "price", 1);
      bson_append_document_end(opts, &sort);
      BSON_APPEND_INT64(opts, "limit", 24);
      rng = 777;
      t0 = now_s();
      for (int i = 0; i < ranges; i++) {
         int64_t lo = 50000 + (int64_t) (next_rand() % 990000);
         bson_t *f = bson_new(), r;
         flora_cursor_t *c = NULL;
         const bson_t *doc;
         BSON_APPEND_DOCUMENT_BEGIN(f, "price", &r);
         BSON_APPEND_INT64(&r, "$gte", lo);
         BSON_APPEND_INT64(&r, "$lt", lo + 5000);
         bson_append_document_end(f, &r);
         if (!flora_store_find(store, "products", f, opts, &c, &err)) {
            die("find", err.message);
         }
         while (flora_cursor_next(c, &doc)) {
            rows_f++;
         }
         flora_cursor_destroy(c);
         bson_destroy(f);
      }
      tf = now_s() - t0;
      bson_destroy(opts);
      rng = 777;
      sqlite3_prepare_v2(db, "SELECT id, sku, price, category_id, stock, name FROM products "
                             "WHERE price >= ? AND price < ? ORDER BY price LIMIT 24",
                         -1, &st, NULL);
      t0 = now_s();
      for (int i = 0; i < ranges; i++) {
         int64_t lo = 50000 + (int64_t) (next_rand() % 990000);
         sql_exec(db, "BEGIN");
         sqlite3_bind_int64(st, 1, lo);
         sqlite3_bind_int64(st, 2, lo + 5000);
         while (sqlite3_step(st) == SQLITE_ROW) {
            (void) sqlite3_column_text(st, 5);
            rows_s++;
         }
         sqlite3_reset(st);
         sql_exec(db, "COMMIT");
      }
      ts = now_s() - t0;
      sqlite3_finalize(st);
      if (rows_f != rows_s) {
         die("range", "the two sides returned different row counts");
      }
      report("price range, sort, limit 24", ranges, tf, ts);
   }

   /* ---- conditional updates ------------------------------------------------------------------------ */
   {
      bson_t *u = bson_new(), inc;
      long mod_f = 0, mod_s = 0;
      BSON_APPEND_DOCUMENT_BEGIN(u, "$inc", &inc);
      BSON_APPEND_INT32(&inc, "stock", -1);
      bson_append_document_end(u, &inc);
      rng = 4242;
      t0 = now_s();
      for (int i = 0; i < updates; i++) {
         bson_t *f = bson_new(), g, reply;
         bson_iter_t it;
         snprintf(sku, sizeof sku, "SKU-%07d", (int) (next_rand() % (uint32_t) n));
         BSON_APPEND_UTF8(f, "sku", sku);
         BSON_APPEND_DOCUMENT_BEGIN(f, "stock", &g);
         BSON_APPEND_INT32(&g, "$gte", 1);
         bson_append_document_end(f, &g);
         if (!flora_store_update_one(store, "products", f, u, NULL, &reply, &err)) {
            die("update_one", err.message);
         }
         if (bson_iter_init_find(&it, &reply, "modifiedCount")) {
            mod_f += bson_iter_as_int64(&it);
         }
         bson_destroy(&reply);
         bson_destroy(f);
      }
      tf = now_s() - t0;
      bson_destroy(u);
      rng = 4242;
      sqlite3_prepare_v2(db, "UPDATE products SET stock = stock - 1 WHERE sku = ? AND stock >= 1",
                         -1, &st, NULL);
      t0 = now_s();
      for (int i = 0; i < updates; i++) {
         snprintf(sku, sizeof sku, "SKU-%07d", (int) (next_rand() % (uint32_t) n));
         sql_exec(db, "BEGIN IMMEDIATE");
         sqlite3_bind_text(st, 1, sku, -1, SQLITE_TRANSIENT);
         if (sqlite3_step(st) != SQLITE_DONE) {
            die("update", sqlite3_errmsg(db));
         }
         mod_s += sqlite3_changes(db);
         sqlite3_reset(st);
         sql_exec(db, "COMMIT");
      }
      ts = now_s() - t0;
      sqlite3_finalize(st);
      if (mod_f != updates || mod_s != updates) {
         die("updates", "not every conditional update applied");
      }
      report("update_one {sku, stock>=1} $inc", updates, tf, ts);
   }

   sqlite3_close(db);
   flora_store_close(store);
   remove_files(flora_path);
   remove_files(sql_path);
   return 0;
}
