/* The shop's orders module (include/flora/orders.h) as the payments service's order
 * functions. */
#include "flora/orders.h"
#include "flora/pay.h"

static const flora_pay_orders_t shop_orders = {
   .get = flora_orders_get,
   .get_by_number = flora_orders_get_by_number,
   .transition = flora_orders_transition,
   .record_payment = flora_orders_record_payment,
   .note = flora_orders_note,
};

const flora_pay_orders_t *
flora_pay_orders_shop(void)
{
   return &shop_orders;
}
