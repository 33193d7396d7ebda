/* `flora notify preview|enqueue`:
 *   flora notify preview EVENT (--order NUMBER | --order-file FILE) [--payload JSON]
 *                        [--locale ru|en]
 *       renders the subject, text, HTML and SMS of EVENT for an order of the store (by
 *       number) or an order document in a JSON file, and prints them with the SMS's
 *       segment count;
 *   flora notify enqueue EVENT --payload JSON [--dedupe KEY]
 *       writes one outbox message by hand (include/flora/outbox.h), e.g. to re-send a
 *       notification the shop's code did not emit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flora/notify.h"
#include "flora/outbox.h"
#include "flora/shop.h"

static const char usage_text[] =
   "usage: flora notify preview EVENT (--order NUMBER | --order-file FILE) [--payload JSON] "
   "[--locale ru|en]\n"
   "       flora notify enqueue EVENT --payload JSON [--dedupe KEY]\n";

typedef struct args {
   const char *event;
   const char *order_number;
   const char *order_file;
   const char *payload;
   const char *locale;
   const char *dedupe;
} args_t;

static int
parse(int argc, char **argv, args_t *a)
{
   static const char *const flags[] = {"--order", "--order-file", "--payload", "--locale",
                                       "--dedupe"};

   memset(a, 0, sizeof *a);
   a->locale = "ru";
   if (argc < 3 || argv[2][0] == '-') {
      fputs(usage_text, stderr);
      return 2;
   }
   a->event = argv[2];
   for (int i = 3; i < argc; i += 2) {
      const char **slot[] = {&a->order_number, &a->order_file, &a->payload, &a->locale,
                             &a->dedupe};
      bool known = false;

      for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
         if (strcmp(argv[i], flags[f]) == 0 && i + 1 < argc) {
            *slot[f] = argv[i + 1];
            known = true;
         }
      }
      if (!known) {
         fprintf(stderr, "flora notify: bad option %s\n%s", argv[i], usage_text);
         return 2;
      }
   }
   return -1;
}

static bool
open_store(const flora_config_t *config, flora_store_t **store, flora_error_t *error)
{
   flora_store_options_t options = FLORA_STORE_OPTIONS_INIT;

   options.ttl_sweep_interval_s = 0;
   options.busy_timeout_ms = (int) flora_config_int(config, "store.busy_timeout_ms");
   if (!flora_store_open(store, flora_config_string(config, "store.uri"), &options, error)) {
      return false;
   }
   flora_shop_attach_schemas(*store);
   return true;
}

static bson_t *
parse_json(const char *what, const char *json)
{
   bson_error_t err;
   bson_t *doc = bson_new_from_json((const uint8_t *) json, -1, &err);

   if (!doc) {
      fprintf(stderr, "flora notify: %s is not a JSON object: %s\n", what, err.message);
   }
   return doc;
}

static bson_t *
read_json_file(const char *path)
{
   bson_error_t err;
   bson_json_reader_t *reader = bson_json_reader_new_from_file(path, &err);
   bson_t *doc;

   if (!reader) {
      fprintf(stderr, "flora notify: %s: %s\n", path, err.message);
      return NULL;
   }
   doc = bson_new();
   if (bson_json_reader_read(reader, doc, &err) != 1) {
      fprintf(stderr, "flora notify: %s: not a JSON document%s%s\n", path, err.message[0] ? ": " : "",
              err.message);
      bson_destroy(doc);
      doc = NULL;
   }
   bson_json_reader_destroy(reader);
   return doc;
}

static int
preview(const flora_config_t *config, const args_t *a)
{
   flora_store_t *store = NULL;
   bson_t *order = NULL, *payload = NULL;
   bson_t vars = BSON_INITIALIZER;
   flora_notify_rendered_t r = {0};
   flora_error_t error = {0};
   int rc = 1;

   if (a->order_file) {
      order = read_json_file(a->order_file);
      if (!order) {
         goto cleanup;
      }
   } else if (a->order_number) {
      /* The orders module (h-orders' flora_orders_get_by_number) owns this read once it
       * lands; the order document's shape is the one the contract fixes. */
      bson_t *filter = BCON_NEW("number", BCON_UTF8(a->order_number));
      bool found = false;

      order = bson_new();
      if (!open_store(config, &store, &error) ||
          !flora_store_find_one(store, "orders", filter, NULL, order, &found, &error)) {
         fprintf(stderr, "flora notify: %s\n", error.message);
         bson_destroy(filter);
         goto cleanup;
      }
      bson_destroy(filter);
      if (!found) {
         fprintf(stderr, "flora notify: no order %s\n", a->order_number);
         goto cleanup;
      }
   }
   payload = a->payload ? parse_json("--payload", a->payload) : bson_new();
   if (!payload) {
      rc = 2;
      goto cleanup;
   }
   bson_destroy(&vars);
   if (!flora_notify_build_vars(a->event, a->locale, flora_config_string(config, "notify.shop_name"),
                                payload, order, &vars, &error) ||
       !flora_notify_render(a->event, a->locale, &vars, &r, &error)) {
      fprintf(stderr, "flora notify: %s\n", error.message);
      goto cleanup;
   }
   printf("Subject: %s\n\n----- text/plain -----\n%s\n----- text/html -----\n%s\n", r.subject,
          r.text, r.html);
   if (r.sms) {
      flora_sms_segments_t seg = {0};

      flora_sms_count_segments(r.sms, &seg, NULL);
      printf("----- sms (%zu segment%s, %s, %zu units) -----\n%s\n", seg.segments,
             seg.segments == 1 ? "" : "s", seg.gsm7 ? "GSM-7" : "UCS-2", seg.units, r.sms);
   }
   rc = 0;
cleanup:
   flora_notify_rendered_clear(&r);
   bson_destroy(&vars);
   if (order) {
      bson_destroy(order);
   }
   if (payload) {
      bson_destroy(payload);
   }
   flora_store_close(store);
   return rc;
}

static int
enqueue(const flora_config_t *config, const args_t *a)
{
   flora_store_t *store = NULL;
   bson_t *payload = NULL;
   flora_error_t error = {0};
   int rc = 1;

   if (!a->payload) {
      fprintf(stderr, "flora notify enqueue: --payload is required\n%s", usage_text);
      return 2;
   }
   payload = parse_json("--payload", a->payload);
   if (!payload) {
      return 2;
   }
   if (!open_store(config, &store, &error) ||
       !flora_outbox_enqueue(store, a->event, payload, a->dedupe, &error)) {
      fprintf(stderr, "flora notify enqueue: %s\n", error.message);
      goto cleanup;
   }
   rc = 0;
cleanup:
   bson_destroy(payload);
   flora_store_close(store);
   return rc;
}

int
flora_cmd_notify(const flora_config_t *config, int argc, char **argv)
{
   args_t a;
   int rc;

   if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
      fputs(usage_text, stdout);
      return 0;
   }
   if (argc < 2) {
      fputs(usage_text, stderr);
      return 2;
   }
   rc = parse(argc, argv, &a);
   if (rc >= 0) {
      return rc;
   }
   if (strcmp(argv[1], "preview") == 0) {
      if (!a.order_number && !a.order_file && strncmp(a.event, "order.", 6) == 0) {
         fprintf(stderr, "flora notify preview: --order or --order-file is required\n");
         return 2;
      }
      return preview(config, &a);
   }
   if (strcmp(argv[1], "enqueue") == 0) {
      return enqueue(config, &a);
   }
   fprintf(stderr, "flora notify: unknown subcommand %s\n%s", argv[1], usage_text);
   return 2;
}
