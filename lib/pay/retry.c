/* Retry policy of provider calls (include/flora/pay.h). */
#include "flora/pay.h"

#include <strings.h>

bool
flora_pay_retry_should(bool network_error, long status, const char *should_retry)
{
   if (should_retry && strcasecmp(should_retry, "false") == 0) {
      return false;
   }
   if (should_retry && strcasecmp(should_retry, "true") == 0) {
      return true;
   }
   if (network_error) {
      return true;
   }
   return status == 409 || status >= 500;
}

int64_t
flora_pay_retry_delay_ms(const flora_pay_retry_t *retry, int n, double jitter01)
{
   int64_t delay;

   FLORA_ASSERT_ARG(retry);
   FLORA_ASSERT_ARG(n >= 1);
   delay = retry->initial_ms;
   for (int i = 1; i < n && delay < retry->max_ms; i++) {
      delay *= 2;
   }
   if (delay > retry->max_ms) {
      delay = retry->max_ms;
   }
   if (jitter01 < 0) {
      jitter01 = 0;
   }
   if (jitter01 >= 1) {
      jitter01 = 0.999999;
   }
   /* Stripe: sleep * (0.5 * (1 + random())), never below the initial delay's half. */
   delay = (int64_t) ((double) delay * (0.5 * (1.0 + jitter01)));
   if (delay < retry->initial_ms / 2) {
      delay = retry->initial_ms / 2;
   }
   return delay;
}
