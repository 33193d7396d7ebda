/* The notification templates per event and locale, and the variables they are filled
 * with (include/flora/notify.h). Russian is the default locale. Every template is
 * rendered for every event and locale by tests/unit/test_notify_templates.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flora/notify.h"
#include "notify/notify_private.h"

/* ---- shared fragments -------------------------------------------------------------- */

#define RU_ITEMS_TEXT                                                                       \
   "{{#each items}}- {{name}} ({{variant}}) \xc3\x97 {{quantity}}: {{lineTotal}}\n{{/each}}" \
   "Товары: {{subtotal}}\n{{#if hasDiscount}}Скидка: {{discount}}\n{{/if}}"                 \
   "Доставка: {{deliveryPrice}}\nИтого: {{total}}\n"
#define EN_ITEMS_TEXT                                                                       \
   "{{#each items}}- {{name}} ({{variant}}) \xc3\x97 {{quantity}}: {{lineTotal}}\n{{/each}}" \
   "Items: {{subtotal}}\n{{#if hasDiscount}}Discount: {{discount}}\n{{/if}}"                \
   "Delivery: {{deliveryPrice}}\nTotal: {{total}}\n"
#define RU_DELIVERY_TEXT                                                                    \
   "Доставка: {{deliveryDate}}, {{deliverySlot}}\nПолучатель: {{recipientName}}, "          \
   "{{recipientPhone}}\nАдрес: {{address}}\n{{#if hasCardMessage}}Текст открытки: "          \
   "{{cardMessage}}\n{{/if}}"
#define EN_DELIVERY_TEXT                                                                    \
   "Delivery: {{deliveryDate}}, {{deliverySlot}}\nRecipient: {{recipientName}}, "           \
   "{{recipientPhone}}\nAddress: {{address}}\n{{#if hasCardMessage}}Card message: "          \
   "{{cardMessage}}\n{{/if}}"

#define HTML_HEAD                                                                           \
   "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{{shopName}}</title></head>" \
   "<body style=\"font-family: sans-serif\">\n<h1>{{shopName}}</h1>\n"
#define HTML_FOOT "</body></html>\n"
#define RU_ITEMS_HTML                                                                       \
   "<table>\n{{#each items}}<tr><td>{{name}} ({{variant}})</td><td>\xc3\x97 {{quantity}}</td>" \
   "<td>{{lineTotal}}</td></tr>\n{{/each}}<tr><td colspan=\"2\">Товары</td><td>{{subtotal}}"  \
   "</td></tr>\n{{#if hasDiscount}}<tr><td colspan=\"2\">Скидка</td><td>{{discount}}</td>"   \
   "</tr>\n{{/if}}<tr><td colspan=\"2\">Доставка</td><td>{{deliveryPrice}}</td></tr>\n"        \
   "<tr><td colspan=\"2\"><b>Итого</b></td><td><b>{{total}}</b></td></tr>\n</table>\n"
#define EN_ITEMS_HTML                                                                       \
   "<table>\n{{#each items}}<tr><td>{{name}} ({{variant}})</td><td>\xc3\x97 {{quantity}}</td>" \
   "<td>{{lineTotal}}</td></tr>\n{{/each}}<tr><td colspan=\"2\">Items</td><td>{{subtotal}}"   \
   "</td></tr>\n{{#if hasDiscount}}<tr><td colspan=\"2\">Discount</td><td>{{discount}}</td>" \
   "</tr>\n{{/if}}<tr><td colspan=\"2\">Delivery</td><td>{{deliveryPrice}}</td></tr>\n"        \
   "<tr><td colspan=\"2\"><b>Total</b></td><td><b>{{total}}</b></td></tr>\n</table>\n"
#define RU_DELIVERY_HTML                                                                    \
   "<p>Доставка: {{deliveryDate}}, {{deliverySlot}}<br>Получатель: {{recipientName}}, "     \
   "{{recipientPhone}}<br>Адрес: {{address}}{{#if hasCardMessage}}<br>Текст открытки: "      \
   "{{cardMessage}}{{/if}}</p>\n"
#define EN_DELIVERY_HTML                                                                    \
   "<p>Delivery: {{deliveryDate}}, {{deliverySlot}}<br>Recipient: {{recipientName}}, "      \
   "{{recipientPhone}}<br>Address: {{address}}{{#if hasCardMessage}}<br>Card message: "      \
   "{{cardMessage}}{{/if}}</p>\n"

typedef struct template_set {
   const char *event;
   const char *locale;
   const char *subject;
   const char *text;
   const char *html;
   const char *sms; /* NULL: the event sends no SMS */
} template_set_t;

static const template_set_t templates[] = {
   /* order.created */
   {"order.created", "ru", "Заказ {{number}} принят \xe2\x80\x94 {{shopName}}",
    "Здравствуйте, {{customerName}}!\n\nМы приняли ваш заказ {{number}}.\n\n" RU_ITEMS_TEXT
    "\n" RU_DELIVERY_TEXT "\n{{shopName}}\n",
    HTML_HEAD "<p>Здравствуйте, {{customerName}}!</p>\n<p>Мы приняли ваш заказ "
              "<b>{{number}}</b>.</p>\n" RU_ITEMS_HTML RU_DELIVERY_HTML HTML_FOOT,
    "{{shopName}}: заказ {{number}} принят, сумма {{total}}. Доставка {{deliveryDate}} "
    "{{deliverySlot}}."},
   {"order.created", "en", "Order {{number}} received \xe2\x80\x94 {{shopName}}",
    "Hello {{customerName}},\n\nwe have received your order {{number}}.\n\n" EN_ITEMS_TEXT
    "\n" EN_DELIVERY_TEXT "\n{{shopName}}\n",
    HTML_HEAD "<p>Hello {{customerName}},</p>\n<p>we have received your order "
              "<b>{{number}}</b>.</p>\n" EN_ITEMS_HTML EN_DELIVERY_HTML HTML_FOOT,
    "{{shopName}}: order {{number}} received, total {{total}}. Delivery {{deliveryDate}} "
    "{{deliverySlot}}."},
   /* order.paid */
   {"order.paid", "ru", "Заказ {{number}} оплачен",
    "Здравствуйте, {{customerName}}!\n\nОплата заказа {{number}} на сумму {{total}} "
    "получена. Флористы соберут букет к {{deliveryDate}}.\n\n" RU_ITEMS_TEXT "\n{{shopName}}\n",
    HTML_HEAD "<p>Здравствуйте, {{customerName}}!</p>\n<p>Оплата заказа <b>{{number}}</b> на "
              "сумму <b>{{total}}</b> получена. Флористы соберут букет к "
              "{{deliveryDate}}.</p>\n" RU_ITEMS_HTML HTML_FOOT,
    NULL},
   {"order.paid", "en", "Order {{number}} is paid",
    "Hello {{customerName}},\n\nwe have received the payment of {{total}} for order "
    "{{number}}. Our florists will have it ready for {{deliveryDate}}.\n\n" EN_ITEMS_TEXT
    "\n{{shopName}}\n",
    HTML_HEAD "<p>Hello {{customerName}},</p>\n<p>we have received the payment of "
              "<b>{{total}}</b> for order <b>{{number}}</b>. Our florists will have it ready "
              "for {{deliveryDate}}.</p>\n" EN_ITEMS_HTML HTML_FOOT,
    NULL},
   /* order.status_changed */
   {"order.status_changed", "ru", "Заказ {{number}}: {{statusLabel}}",
    "Здравствуйте, {{customerName}}!\n\nСтатус заказа {{number}}: {{statusLabel}}.\n\n"
    RU_DELIVERY_TEXT "\n{{shopName}}\n",
    HTML_HEAD "<p>Здравствуйте, {{customerName}}!</p>\n<p>Статус заказа <b>{{number}}</b>: "
              "<b>{{statusLabel}}</b>.</p>\n" RU_DELIVERY_HTML HTML_FOOT,
    "{{shopName}}: заказ {{number}} \xe2\x80\x94 {{statusLabel}}."},
   {"order.status_changed", "en", "Order {{number}}: {{statusLabel}}",
    "Hello {{customerName}},\n\norder {{number}} is now: {{statusLabel}}.\n\n" EN_DELIVERY_TEXT
    "\n{{shopName}}\n",
    HTML_HEAD "<p>Hello {{customerName}},</p>\n<p>order <b>{{number}}</b> is now: "
              "<b>{{statusLabel}}</b>.</p>\n" EN_DELIVERY_HTML HTML_FOOT,
    "{{shopName}}: order {{number}} \xe2\x80\x94 {{statusLabel}}."},
   /* order.delivered */
   {"order.delivered", "ru", "Заказ {{number}} доставлен",
    "Здравствуйте, {{customerName}}!\n\nЗаказ {{number}} доставлен: получатель "
    "{{recipientName}}, {{address}}.\nСпасибо, что выбрали {{shopName}}!\n",
    HTML_HEAD "<p>Здравствуйте, {{customerName}}!</p>\n<p>Заказ <b>{{number}}</b> доставлен: "
              "получатель {{recipientName}}, {{address}}.</p>\n<p>Спасибо, что выбрали "
              "{{shopName}}!</p>\n" HTML_FOOT,
    "{{shopName}}: заказ {{number}} доставлен. Спасибо!"},
   {"order.delivered", "en", "Order {{number}} delivered",
    "Hello {{customerName}},\n\norder {{number}} has been delivered to {{recipientName}}, "
    "{{address}}.\nThank you for choosing {{shopName}}!\n",
    HTML_HEAD "<p>Hello {{customerName}},</p>\n<p>order <b>{{number}}</b> has been delivered to "
              "{{recipientName}}, {{address}}.</p>\n<p>Thank you for choosing "
              "{{shopName}}!</p>\n" HTML_FOOT,
    "{{shopName}}: order {{number}} delivered. Thank you!"},
   /* user.password_reset */
   {"user.password_reset", "ru", "Восстановление пароля \xe2\x80\x94 {{shopName}}",
    "Здравствуйте{{#if name}}, {{name}}{{/if}}!\n\nЧтобы задать новый пароль, откройте "
    "ссылку:\n{{resetUrl}}\n\nЕсли вы не запрашивали смену пароля, просто проигнорируйте "
    "это письмо.\n{{shopName}}\n",
    HTML_HEAD "<p>Здравствуйте{{#if name}}, {{name}}{{/if}}!</p>\n<p>Чтобы задать новый "
              "пароль, откройте <a href=\"{{resetUrl}}\">ссылку</a>.</p>\n<p>Если вы не "
              "запрашивали смену пароля, просто проигнорируйте это письмо.</p>\n" HTML_FOOT,
    "{{shopName}}: ссылка для смены пароля {{resetUrl}}"},
   {"user.password_reset", "en", "Password reset \xe2\x80\x94 {{shopName}}",
    "Hello{{#if name}} {{name}}{{/if}},\n\nto set a new password, open this link:\n"
    "{{resetUrl}}\n\nIf you did not ask for it, ignore this message.\n{{shopName}}\n",
    HTML_HEAD "<p>Hello{{#if name}} {{name}}{{/if}},</p>\n<p>to set a new password, open "
              "<a href=\"{{resetUrl}}\">this link</a>.</p>\n<p>If you did not ask for it, "
              "ignore this message.</p>\n" HTML_FOOT,
    "{{shopName}}: password reset link {{resetUrl}}"},
   /* review.approved */
   {"review.approved", "ru", "Ваш отзыв опубликован \xe2\x80\x94 {{shopName}}",
    "Здравствуйте{{#if name}}, {{name}}{{/if}}!\n\nВаш отзыв о товаре «{{productName}}» "
    "опубликован. Спасибо!\n{{shopName}}\n",
    HTML_HEAD "<p>Здравствуйте{{#if name}}, {{name}}{{/if}}!</p>\n<p>Ваш отзыв о товаре "
              "«{{productName}}» опубликован. Спасибо!</p>\n" HTML_FOOT,
    NULL},
   {"review.approved", "en", "Your review is published \xe2\x80\x94 {{shopName}}",
    "Hello{{#if name}} {{name}}{{/if}},\n\nyour review of \"{{productName}}\" is published. "
    "Thank you!\n{{shopName}}\n",
    HTML_HEAD "<p>Hello{{#if name}} {{name}}{{/if}},</p>\n<p>your review of "
              "\"{{productName}}\" is published. Thank you!</p>\n" HTML_FOOT,
    NULL},
};

#define N_TEMPLATES (sizeof templates / sizeof templates[0])

static const struct {
   const char *status;
   const char *ru;
   const char *en;
} status_labels[] = {
   {"pending_payment", "ожидает оплаты", "awaiting payment"},
   {"paid", "оплачен", "paid"},
   {"assembling", "собираем букет", "being arranged"},
   {"ready", "готов", "ready"},
   {"out_for_delivery", "передан курьеру", "out for delivery"},
   {"delivered", "доставлен", "delivered"},
   {"cancelled", "отменён", "cancelled"},
   {"refunded", "деньги возвращены", "refunded"},
};

static const char *const months_en[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* ---- variables --------------------------------------------------------------------- */

static const char *
get_str(const bson_t *doc, const char *dotted)
{
   bson_iter_t it, v;

   if (doc && bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, dotted, &v) &&
       BSON_ITER_HOLDS_UTF8(&v)) {
      return bson_iter_utf8(&v, NULL);
   }
   return NULL;
}

static bool
get_int(const bson_t *doc, const char *dotted, int64_t *out)
{
   bson_iter_t it, v;

   if (doc && bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, dotted, &v) &&
       (BSON_ITER_HOLDS_INT32(&v) || BSON_ITER_HOLDS_INT64(&v))) {
      *out = bson_iter_as_int64(&v);
      return true;
   }
   return false;
}

static void
append_money(bson_t *vars, const char *key, int64_t minor, const char *currency)
{
   char buf[64];

   flora_notify_format_money(minor, currency, buf, sizeof buf);
   BSON_APPEND_UTF8(vars, key, buf);
}

static bool
format_date(const char *iso, const char *locale, char *out, size_t out_len)
{
   int y = 0, m = 0, d = 0;
   char extra;

   if (!iso || sscanf(iso, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || m < 1 || m > 12 ||
       d < 1 || d > 31) {
      return false;
   }
   if (strcmp(locale, "en") == 0) {
      snprintf(out, out_len, "%d %s %04d", d, months_en[m - 1], y);
   } else {
      snprintf(out, out_len, "%02d.%02d.%04d", d, m, y);
   }
   return true;
}

static bool
order_vars(const char *locale, const bson_t *order, bson_t *vars, flora_error_t *error)
{
   const char *currency = get_str(order, "currency");
   const char *number = get_str(order, "number");
   const char *status = get_str(order, "status");
   const char *label = status;
   const char *exact = get_str(order, "delivery.slot.exactTime");
   const char *start = get_str(order, "delivery.slot.start");
   const char *end = get_str(order, "delivery.slot.end");
   const char *card = get_str(order, "delivery.cardMessage");
   int64_t subtotal = 0, discount = 0, delivery = 0, total = 0;
   char date[32], slot[64];
   bson_iter_t it, items;
   bson_t arr;
   uint32_t n = 0;

   if (!number || !status || !get_int(order, "totals.total", &total) ||
       !bson_iter_init_find(&it, order, "items") || !BSON_ITER_HOLDS_ARRAY(&it) ||
       !format_date(get_str(order, "delivery.date"), locale, date, sizeof date)) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "order: number, status, items, totals.total and delivery.date "
                      "(YYYY-MM-DD) are needed by the templates");
      return false;
   }
   get_int(order, "totals.subtotal", &subtotal);
   get_int(order, "totals.discount", &discount);
   get_int(order, "totals.delivery", &delivery);
   for (size_t i = 0; i < sizeof status_labels / sizeof status_labels[0]; i++) {
      if (strcmp(status_labels[i].status, status) == 0) {
         label = strcmp(locale, "en") == 0 ? status_labels[i].en : status_labels[i].ru;
      }
   }
   if (exact) {
      snprintf(slot, sizeof slot, "%s", exact);
   } else if (start && end) {
      snprintf(slot, sizeof slot, "%s\xe2\x80\x93%s", start, end); /* EN DASH */
   } else {
      snprintf(slot, sizeof slot, "%s", strcmp(locale, "en") == 0 ? "any time" : "в течение дня");
   }

   BSON_APPEND_UTF8(vars, "number", number);
   BSON_APPEND_UTF8(vars, "status", status);
   BSON_APPEND_UTF8(vars, "statusLabel", label);
   BSON_APPEND_UTF8(vars, "customerName", get_str(order, "customer.name") ? get_str(order, "customer.name") : "");
   BSON_APPEND_ARRAY_BEGIN(vars, "items", &arr);
   bson_iter_recurse(&it, &items);
   while (bson_iter_next(&items)) {
      bson_t item_doc, out_item;
      const uint8_t *data;
      uint32_t len;
      int64_t unit = 0, qty = 0, line = 0;
      char key[16];
      const char *k;

      if (!BSON_ITER_HOLDS_DOCUMENT(&items)) {
         continue;
      }
      bson_iter_document(&items, &len, &data);
      bson_init_static(&item_doc, data, len);
      get_int(&item_doc, "unitPrice", &unit);
      get_int(&item_doc, "quantity", &qty);
      if (!get_int(&item_doc, "lineTotal", &line)) {
         line = unit * qty;
      }
      bson_uint32_to_string(n++, &k, key, sizeof key);
      bson_append_document_begin(&arr, k, -1, &out_item);
      BSON_APPEND_UTF8(&out_item, "name", get_str(&item_doc, "name") ? get_str(&item_doc, "name") : "");
      BSON_APPEND_UTF8(&out_item, "variant",
                       get_str(&item_doc, "variant") ? get_str(&item_doc, "variant") : "");
      BSON_APPEND_INT64(&out_item, "quantity", qty);
      append_money(&out_item, "unitPrice", unit, currency);
      append_money(&out_item, "lineTotal", line, currency);
      bson_append_document_end(&arr, &out_item);
   }
   bson_append_array_end(vars, &arr);
   append_money(vars, "subtotal", subtotal, currency);
   append_money(vars, "discount", -discount, currency);
   BSON_APPEND_BOOL(vars, "hasDiscount", discount > 0);
   append_money(vars, "deliveryPrice", delivery, currency);
   append_money(vars, "total", total, currency);
   BSON_APPEND_UTF8(vars, "deliveryDate", date);
   BSON_APPEND_UTF8(vars, "deliverySlot", slot);
   BSON_APPEND_UTF8(vars, "recipientName", get_str(order, "delivery.recipient.name")
                                              ? get_str(order, "delivery.recipient.name") : "");
   BSON_APPEND_UTF8(vars, "recipientPhone", get_str(order, "delivery.recipient.phone")
                                               ? get_str(order, "delivery.recipient.phone") : "");
   BSON_APPEND_UTF8(vars, "address", get_str(order, "delivery.address.text")
                                        ? get_str(order, "delivery.address.text") : "");
   BSON_APPEND_UTF8(vars, "cardMessage", card ? card : "");
   BSON_APPEND_BOOL(vars, "hasCardMessage", card && *card);
   return true;
}

bool
flora_notify_build_vars(const char *event, const char *locale, const char *shop_name,
                        const bson_t *payload, const bson_t *order, bson_t *vars,
                        flora_error_t *error)
{
   const char *name;

   FLORA_ASSERT_ARG(event);
   FLORA_ASSERT_ARG(locale);
   FLORA_ASSERT_ARG(vars);
   bson_init(vars);
   BSON_APPEND_UTF8(vars, "shopName", shop_name ? shop_name : "Flora");
   if (strncmp(event, "order.", 6) == 0) {
      if (!order) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "%s: the order is needed", event);
         return false;
      }
      return order_vars(locale, order, vars, error);
   }
   name = get_str(payload, "name");
   BSON_APPEND_UTF8(vars, "name", name ? name : "");
   if (strcmp(event, FLORA_EVENT_USER_PASSWORD_RESET) == 0) {
      const char *url = get_str(payload, "resetUrl");

      if (!url) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "payload.resetUrl: required by %s", event);
         return false;
      }
      BSON_APPEND_UTF8(vars, "resetUrl", url);
      return true;
   }
   if (strcmp(event, FLORA_EVENT_REVIEW_APPROVED) == 0) {
      const char *product = get_str(payload, "productName");

      if (!product) {
         flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                         "payload.productName: required by %s", event);
         return false;
      }
      BSON_APPEND_UTF8(vars, "productName", product);
      return true;
   }
   flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                   "event: unknown notification event \"%s\"", event);
   return false;
}

void
flora_notify_rendered_clear(flora_notify_rendered_t *r)
{
   if (!r) {
      return;
   }
   free(r->subject);
   free(r->text);
   free(r->html);
   free(r->sms);
   memset(r, 0, sizeof *r);
}

bool
flora_notify_render(const char *event, const char *locale, const bson_t *vars,
                    flora_notify_rendered_t *out, flora_error_t *error)
{
   const template_set_t *t = NULL;

   FLORA_ASSERT_ARG(event);
   FLORA_ASSERT_ARG(locale);
   FLORA_ASSERT_ARG(out);
   memset(out, 0, sizeof *out);
   for (size_t i = 0; i < N_TEMPLATES; i++) {
      if (strcmp(templates[i].event, event) == 0 && strcmp(templates[i].locale, locale) == 0) {
         t = &templates[i];
      }
   }
   if (!t) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "no templates for event \"%s\" in locale \"%s\"", event, locale);
      return false;
   }
   if (!flora_notify_render_template(t->subject, vars, false, &out->subject, error) ||
       !flora_notify_render_template(t->text, vars, false, &out->text, error) ||
       !flora_notify_render_template(t->html, vars, true, &out->html, error) ||
       (t->sms && !flora_notify_render_template(t->sms, vars, false, &out->sms, error))) {
      flora_error_prefix(error, "%s/%s", event, locale);
      flora_notify_rendered_clear(out);
      return false;
   }
   return true;
}
