/* Schemas of the delivery collections (include/flora/delivery.h, docs/delivery.md). Money:
 * int64 kopecks; coordinates WGS84 degrees in GeoJSON order [lon, lat]. */
#include "flora/shop.h"

#define MONEY_MAX 100000000000.0
#define DATE_PATTERN "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

/* ---- delivery_zones ---------------------------------------------------------------- */

static const flora_field_t coord_item = {
   FLORA_FIELD_DEFAULTS, .path = "[]", .types = FLORA_T_DOUBLE | FLORA_T_INT, .has_min = true,
   .min = -180, .has_max = true, .max = 180,
};

static const flora_field_t location_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "id", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 31, .description = "shop location id from the zones file"},
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true,
    .maxlength = 200, .description = "shop location name"},
   {FLORA_FIELD_DEFAULTS, .path = "point", .types = FLORA_T_ARRAY, .required = true,
    .minlength = 2, .maxlength = 2, .items = &coord_item,
    .description = "the shop's position [lon, lat]: distances are measured from here"},
   {NULL},
};

static const flora_field_t ring_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "innerKm", .types = FLORA_T_DOUBLE, .required = true,
    .has_min = true, .min = 0, .description = "inner radius, km (0 for a disc)"},
   {FLORA_FIELD_DEFAULTS, .path = "outerKm", .types = FLORA_T_DOUBLE, .required = true,
    .has_min = true, .min = 0, .description = "outer radius, km"},
   {NULL},
};

static const flora_field_t zone_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "name", .types = FLORA_T_STRING, .required = true,
    .maxlength = 200, .description = "display name"},
   {FLORA_FIELD_DEFAULTS, .path = "priority", .types = FLORA_T_INT32, .required = true,
    .has_min = true, .min = 0, .description = "position in the file: the first zone that covers a point wins"},
   {FLORA_FIELD_DEFAULTS, .path = "location", .types = FLORA_T_DOCUMENT, .required = true,
    .fields = location_fields, .strict = true, .description = "the shop location the zone belongs to"},
   {FLORA_FIELD_DEFAULTS, .path = "polygon", .types = FLORA_T_DOCUMENT,
    .description = "GeoJSON Polygon or MultiPolygon (RFC 7946), validated on load; or ring"},
   {FLORA_FIELD_DEFAULTS, .path = "ring", .types = FLORA_T_DOCUMENT, .fields = ring_fields,
    .strict = true, .description = "a radius ring around the location's point; or polygon"},
   {FLORA_FIELD_DEFAULTS, .path = "basePrice", .types = FLORA_T_INT, .required = true,
    .has_min = true, .min = 0, .has_max = true, .max = MONEY_MAX, .description = "kopecks"},
   {FLORA_FIELD_DEFAULTS, .path = "perKmPrice", .types = FLORA_T_INT, .required = true,
    .has_min = true, .min = 0, .has_max = true, .max = MONEY_MAX,
    .description = "kopecks per km beyond perKmBeyondKm"},
   {FLORA_FIELD_DEFAULTS, .path = "perKmBeyondKm", .types = FLORA_T_DOUBLE, .required = true,
    .has_min = true, .min = 0, .description = "km included in the base price"},
   {FLORA_FIELD_DEFAULTS, .path = "minOrder", .types = FLORA_T_INT, .required = true,
    .has_min = true, .min = 0, .has_max = true, .max = MONEY_MAX,
    .description = "smallest order subtotal delivered, kopecks"},
   {FLORA_FIELD_DEFAULTS, .path = "freeFrom", .types = FLORA_T_INT | FLORA_T_NULL, .required = true,
    .has_min = true, .min = 0, .has_max = true, .max = MONEY_MAX,
    .description = "subtotal from which base and distance are free, kopecks; null: never"},
   {FLORA_FIELD_DEFAULTS, .path = "maxDistanceKm", .types = FLORA_T_DOUBLE, .required = true,
    .has_min = true, .min = 0, .description = "farthest delivery from the location, km"},
   {NULL},
};

static const flora_index_decl_t zone_indexes[] = {
   {.name = "priority_1", .keys_json = "{\"priority\": 1}",
    .serves = "the quote reads the zones in file order"},
   {NULL},
};

const flora_schema_t flora_schema_delivery_zones = {
   .collection = "delivery_zones",
   .description = "Delivery zones per shop location (_id: the zone id of the file): a polygon or "
                  "a radius ring with its prices. "
                  "Replaced as a whole, in one transaction, by `flora delivery zones load FILE`.",
   .fields = zone_fields,
   .strict = true,
   .indexes = zone_indexes,
};

/* ---- delivery_rules ---------------------------------------------------------------- */

static const flora_field_t rules_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "slots", .types = FLORA_T_ARRAY, .required = true,
    .minlength = 1, .description = "delivery windows {id, start, end, capacity, weekdays}"},
   {FLORA_FIELD_DEFAULTS, .path = "exactTime", .types = FLORA_T_DOCUMENT | FLORA_T_NULL,
    .required = true, .description = "the exact-time option {enabled, from, to, surcharge, capacity}; null: off"},
   {FLORA_FIELD_DEFAULTS, .path = "sameDayCutoff", .types = FLORA_T_STRING, .required = true,
    .description = "same-day orders are taken until this local time HH:MM"},
   {FLORA_FIELD_DEFAULTS, .path = "leadTimeMinutes", .types = FLORA_T_INT32, .required = true,
    .has_min = true, .min = 0, .description = "preparation time before a window starts"},
   {FLORA_FIELD_DEFAULTS, .path = "horizonDays", .types = FLORA_T_INT32, .required = true,
    .has_min = true, .min = 0, .description = "how many days ahead a date can be booked"},
   {FLORA_FIELD_DEFAULTS, .path = "blockedDates", .types = FLORA_T_ARRAY, .required = true,
    .description = "dates with no delivery (YYYY-MM-DD)"},
   {FLORA_FIELD_DEFAULTS, .path = "holidays", .types = FLORA_T_ARRAY, .required = true,
    .description = "date ranges {name, from: MM-DD, to: MM-DD, surcharge, capacity?}"},
   {FLORA_FIELD_DEFAULTS, .path = "night", .types = FLORA_T_DOCUMENT | FLORA_T_NULL,
    .required = true, .description = "night hours {from, to, surcharge}; null: no night surcharge"},
   {FLORA_FIELD_DEFAULTS, .path = "loadedAt", .types = FLORA_T_DATE, .description = "when the file was loaded"},
   {NULL},
};

const flora_schema_t flora_schema_delivery_rules = {
   .collection = "delivery_rules",
   .description = "The slot and pricing rules (docs/delivery.md): one document {_id: \"rules\"}, replaced by "
                  "`flora delivery rules load FILE`; built-in defaults when absent.",
   .fields = rules_fields,
   .strict = true,
};

/* ---- delivery_slots ---------------------------------------------------------------- */

static const flora_field_t slot_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "date", .types = FLORA_T_STRING, .required = true,
    .pattern = DATE_PATTERN, .pattern_hint = "a date YYYY-MM-DD",
    .description = "delivery date in the shop's time zone"},
   {FLORA_FIELD_DEFAULTS, .path = "slot", .types = FLORA_T_STRING, .required = true,
    .minlength = 1, .maxlength = 31, .description = "window id, or \"exact\" for exact-time deliveries"},
   {FLORA_FIELD_DEFAULTS, .path = "capacity", .types = FLORA_T_INT32, .required = true,
    .has_min = true, .min = 0, .description = "capacity at the last reservation (the rules decide)"},
   {FLORA_FIELD_DEFAULTS, .path = "reserved", .types = FLORA_T_INT32, .required = true,
    .has_min = true, .min = 0,
    .description = "units sold; changed only by conditional $inc (never above capacity, never below 0)"},
   {NULL},
};

static const flora_index_decl_t slot_indexes[] = {
   {.name = "date_1", .keys_json = "{\"date\": 1}",
    .serves = "GET /api/v1/delivery/slots?date=...: a day's reservations"},
   {NULL},
};

const flora_schema_t flora_schema_delivery_slots = {
   .collection = "delivery_slots",
   .description = "Capacity sold per date and delivery window (_id: \"<date>/<slot>\"). A reservation is one "
                  "conditional update {reserved < capacity} with $inc, so a window is never "
                  "overbooked however many checkouts race for it.",
   .fields = slot_fields,
   .strict = true,
   .indexes = slot_indexes,
};

/* ---- geocode_cache ----------------------------------------------------------------- */

static const flora_field_t geocode_fields[] = {
   {FLORA_FIELD_DEFAULTS, .path = "address", .types = FLORA_T_STRING, .required = true,
    .maxlength = 500, .description = "the address as asked"},
   {FLORA_FIELD_DEFAULTS, .path = "provider", .types = FLORA_T_STRING, .required = true,
    .description = "the geocoder that answered"},
   {FLORA_FIELD_DEFAULTS, .path = "found", .types = FLORA_T_BOOL, .required = true,
    .description = "whether the geocoder knew coordinates"},
   {FLORA_FIELD_DEFAULTS, .path = "lat", .types = FLORA_T_DOUBLE, .has_min = true, .min = -90,
    .has_max = true, .max = 90, .description = "latitude"},
   {FLORA_FIELD_DEFAULTS, .path = "lon", .types = FLORA_T_DOUBLE, .has_min = true, .min = -180,
    .has_max = true, .max = 180, .description = "longitude"},
   {FLORA_FIELD_DEFAULTS, .path = "createdAt", .types = FLORA_T_DATE, .required = true,
    .description = "when it was asked; the TTL index removes it 30 days later"},
   {NULL},
};

static const flora_index_decl_t geocode_indexes[] = {
   {.name = "createdAt_ttl", .keys_json = "{\"createdAt\": 1}", .expire_after_seconds = 2592000,
    .serves = "cached answers expire after 30 days"},
   {NULL},
};

const flora_schema_t flora_schema_geocode_cache = {
   .collection = "geocode_cache",
   .description = "Geocoder answers (address -> coordinates; _id: the address with white space "
                  "collapsed, lower-cased), so a repeated address costs no "
                  "provider call.",
   .fields = geocode_fields,
   .strict = true,
   .indexes = geocode_indexes,
};
