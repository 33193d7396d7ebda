/* Cross-file internals of lib/notify (STYLE.md: flora__notify_*). */
#ifndef FLORA_NOTIFY_PRIVATE_H
#define FLORA_NOTIFY_PRIVATE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flora/error.h"

/* Wall clock, milliseconds since the epoch (UTC). */
int64_t flora__notify_now_ms(void);

/* The i-th known event name (0-based), or NULL past the end. */
const char *flora__notify_event_name(size_t i);
bool flora__notify_event_known(const char *event);
/* Whether event is sent on channel ("email" or "sms"). */
bool flora__notify_has_channel(const char *event, const char *channel);

#endif
