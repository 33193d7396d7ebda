/* `flora docs schema [OUTDIR]`: writes the schema reference, one <collection>.md per shop
 * schema (flora_schema_markdown) and a README.md index, into OUTDIR (default docs/schema,
 * relative to the working directory). Pages it generated earlier for collections that no
 * longer exist are removed; files it did not generate are left alone. The output depends
 * only on the schemas, so tests/unit/test_schema_docs.c can compare the committed pages with
 * a fresh run. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flora/schema.h"
#include "flora/shop.h"

#define DEFAULT_DIR "docs/schema"
#define BANNER "<!-- Generated from lib/shop/*.c by `flora docs schema`; do not edit. -->\n"

/* mkdir -p. */
static bool
make_dirs(const char *dir, flora_error_t *error)
{
   char path[4096];
   int n = snprintf(path, sizeof path, "%s", dir);

   if (n < 0 || (size_t) n >= sizeof path) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_INVALID, "%s: path too long", dir);
      return false;
   }
   for (char *p = path + 1; *p; p++) {
      if (*p != '/') {
         continue;
      }
      *p = '\0';
      if (mkdir(path, 0777) != 0 && errno != EEXIST) {
         flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "mkdir %s: %s", path,
                         strerror(errno));
         return false;
      }
      *p = '/';
   }
   if (mkdir(path, 0777) != 0 && errno != EEXIST) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "mkdir %s: %s", path,
                      strerror(errno));
      return false;
   }
   return true;
}

/* Writes text to dir/name through a temporary file and rename(), so a reader never sees
 * half a page. */
static bool
write_file(const char *dir, const char *name, const char *text, flora_error_t *error)
{
   char path[4096], tmp[4200];
   FILE *f = NULL;
   size_t len = strlen(text);
   bool ok = false;
   int n = snprintf(path, sizeof path, "%s/%s", dir, name);

   if (n < 0 || (size_t) n >= sizeof path) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_INVALID, "%s/%s: path too long", dir, name);
      return false;
   }
   snprintf(tmp, sizeof tmp, "%s.tmp", path);
   f = fopen(tmp, "wb");
   if (!f) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "%s: %s", tmp, strerror(errno));
      return false;
   }
   if (fwrite(text, 1, len, f) != len) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "%s: %s", tmp, strerror(errno));
      fclose(f);
      goto cleanup;
   }
   if (fclose(f) != 0) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "%s: %s", tmp, strerror(errno));
      goto cleanup;
   }
   if (rename(tmp, path) != 0) {
      flora_error_set(error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "rename %s: %s", path,
                      strerror(errno));
      goto cleanup;
   }
   ok = true;
cleanup:
   if (!ok) {
      unlink(tmp);
   }
   return ok;
}

static void
put_escaped(FILE *f, const char *s)
{
   for (; s && *s; s++) {
      if (*s == '|') {
         fputs("\\|", f);
      } else {
         fputc(*s == '\n' ? ' ' : *s, f);
      }
   }
}

/* The index page (caller frees with free()), or NULL when out of memory. */
static char *
readme(const flora_schema_t *const *schemas)
{
   char *buf = NULL;
   size_t len = 0;
   FILE *f = open_memstream(&buf, &len);

   if (!f) {
      return NULL;
   }
   fputs(BANNER, f);
   fputs("# Schema reference\n\n"
         "One page per collection, generated from the schemas in `lib/shop/`. The schemas are "
         "the single source of truth: Flora's validation, the MongoDB `$jsonSchema` "
         "validators, the indexes both engines create and these pages all come from them. "
         "To change a page, change the schema and run `flora docs schema`.\n\n"
         "| Collection | Fields | Indexes | Description |\n|---|---|---|---|\n",
         f);
   for (size_t i = 0; schemas[i]; i++) {
      size_t n_fields = 0, n_indexes = 0;
      for (const flora_field_t *fl = schemas[i]->fields; fl && fl->path; fl++) {
         n_fields++;
      }
      for (const flora_index_decl_t *d = schemas[i]->indexes; d && d->name; d++) {
         n_indexes++;
      }
      fprintf(f, "| [`%s`](%s.md) | %zu | %zu | ", schemas[i]->collection,
              schemas[i]->collection, n_fields, n_indexes);
      put_escaped(f, schemas[i]->description);
      fputs(" |\n", f);
   }
   if (fclose(f) != 0) {
      free(buf);
      return NULL;
   }
   return buf;
}

/* True when the file at path starts with the generated-file banner. */
static bool
is_generated(const char *path)
{
   char line[sizeof BANNER];
   FILE *f = fopen(path, "rb");
   size_t n;

   if (!f) {
      return false;
   }
   n = fread(line, 1, sizeof line - 1, f);
   fclose(f);
   line[n] = '\0';
   return strcmp(line, BANNER) == 0;
}

static bool
is_current(const flora_schema_t *const *schemas, const char *name)
{
   size_t len = strlen(name);

   if (strcmp(name, "README.md") == 0) {
      return true;
   }
   for (size_t i = 0; schemas[i]; i++) {
      size_t c = strlen(schemas[i]->collection);
      if (len == c + 3 && strncmp(name, schemas[i]->collection, c) == 0 &&
          strcmp(name + c, ".md") == 0) {
         return true;
      }
   }
   return false;
}

/* Removes generated pages of collections that are gone; returns how many. */
static int
remove_stale(const char *dir, const flora_schema_t *const *schemas)
{
   DIR *d = opendir(dir);
   struct dirent *e;
   char path[4096];
   int removed = 0;

   if (!d) {
      return 0;
   }
   while ((e = readdir(d)) != NULL) {
      size_t len = strlen(e->d_name);
      if (len < 4 || strcmp(e->d_name + len - 3, ".md") != 0 || is_current(schemas, e->d_name)) {
         continue;
      }
      int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      if (n > 0 && (size_t) n < sizeof path && is_generated(path) && unlink(path) == 0) {
         removed++;
      }
   }
   closedir(d);
   return removed;
}

int
flora_cmd_docs(const flora_config_t *config, int argc, char **argv)
{
   const flora_schema_t *const *schemas = flora_shop_schemas();
   const char *dir = DEFAULT_DIR;
   flora_error_t error = {0};
   char name[300];
   char *text = NULL;
   size_t written = 0;
   int removed;

   (void) config;
   if (argc < 2 || argc > 3 || strcmp(argv[1], "schema") != 0) {
      fprintf(stderr, "usage: flora docs schema [OUTDIR]   (default OUTDIR: %s)\n", DEFAULT_DIR);
      return 2;
   }
   if (argc == 3) {
      dir = argv[2];
   }
   if (!make_dirs(dir, &error)) {
      goto fail;
   }
   for (size_t i = 0; schemas[i]; i++) {
      text = flora_schema_markdown(schemas[i]);
      if (!text) {
         flora_error_set(&error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
         goto fail;
      }
      snprintf(name, sizeof name, "%s.md", schemas[i]->collection);
      if (!write_file(dir, name, text, &error)) {
         goto fail;
      }
      free(text);
      text = NULL;
      written++;
   }
   text = readme(schemas);
   if (!text) {
      flora_error_set(&error, FLORA_DOMAIN_IO, FLORA_ERR_SYSTEM, "out of memory");
      goto fail;
   }
   if (!write_file(dir, "README.md", text, &error)) {
      goto fail;
   }
   free(text);
   written++;
   removed = remove_stale(dir, schemas);
   printf("flora docs: wrote %zu files to %s", written, dir);
   if (removed > 0) {
      printf(", removed %d stale page%s", removed, removed == 1 ? "" : "s");
   }
   printf("\n");
   return 0;
fail:
   free(text);
   fprintf(stderr, "flora docs: %s\n", error.message);
   return 1;
}
