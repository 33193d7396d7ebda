/* Delivery pricing and time slots (issue 6; DESIGN.md sections 3 and 4; docs/delivery.md).
 *
 * Zones: per shop location, GeoJSON polygons (with holes) and radius rings around the
 * location's point, each with a base price, a per-km price beyond a distance, a minimum
 * order, a free-delivery threshold and a maximum distance. Loaded from a zones file
 * (flora_delivery_zones_load_json), stored in `delivery_zones`.
 * Rules: time slots per weekday, the exact-time option, capacities, cut-off, lead time,
 * horizon, blocked dates, holidays and the night surcharge, loaded from a rules file
 * (flora_delivery_rules_load_json), stored in `delivery_rules`; built-in defaults until
 * one is loaded. Slot capacity is sold in `delivery_slots`, one document per date and slot.
 * All civil times are in the shop's time zone (config shop.timezone), converted with ICU.
 *
 * Money is int64 kopecks. Coordinates are WGS84 degrees, GeoJSON order [lon, lat].
 * Outputs (`bson_t *out`, `quote`) are initialised by the callee on success and failure;
 * the caller destroys them. Errors: INPUT (bad file/JSON), VALIDATION (a field of a request
 * or file is invalid: the message names it), SHOP CONFLICT ("slot full"), and the store's. */
#ifndef FLORA_DELIVERY_H
#define FLORA_DELIVERY_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flora/config.h"
#include "flora/error.h"
#include "flora/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Great-circle distance in km between two WGS84 points (degrees) by the haversine formula
 * on a sphere of the mean Earth radius R1 = 6371.0088 km (IUGG mean radius; H. Moritz,
 * "Geodetic Reference System 1980", Journal of Geodesy 74 (2000) 128-133, and the
 * haversine formula of R. W. Sinnott, "Virtues of the Haversine", Sky and Telescope 68:2
 * (1984) 159). Error against the ellipsoid is below 0.5 %. */
double flora_delivery_distance_km(double lat1, double lon1, double lat2, double lon2);

/* Whether point (lon, lat) lies in a GeoJSON Polygon or MultiPolygon geometry document
 * ({type, coordinates}). A point on any edge (outer ring or hole) or vertex counts as inside;
 * a point strictly inside a hole is outside. Planar test in lon/lat degrees (right for
 * city-sized zones; rings across the 180th meridian are not supported). *inside is set;
 * false with an INPUT error when geometry is not a valid polygon. */
bool flora_delivery_geometry_contains(const bson_t *geometry, double lon, double lat,
                                      bool *inside, flora_error_t *error);

/* Validates a zones file document completely (docs/delivery.md, "Zones file") and writes
 * the zone documents of `delivery_zones` into *zones (an array document). On failure:
 * VALIDATION error "zone <id>: <field>: <reason>" (the first problem) and, when problems
 * is not NULL (an initialised empty array document), every problem as {path, reason}. */
bool flora_delivery_zones_parse(const bson_t *file, bson_t *zones, bson_t *problems,
                                flora_error_t *error);

/* Parses and validates a zones file (JSON text of len bytes) and
 * replaces every zone in `delivery_zones` in one transaction; a bad file changes nothing.
 * *n_zones (may be NULL) gets the count loaded. */
bool flora_delivery_zones_load_json(flora_store_t *store, const char *json, size_t len,
                                    bson_t *problems, int64_t *n_zones, flora_error_t *error);

/* Validates a rules document (docs/delivery.md, "Rules file") and writes it, with every
 * default filled in, into *rules. Errors as flora_delivery_zones_parse ("<field>: ..."). */
bool flora_delivery_rules_parse(const bson_t *file, bson_t *rules, bson_t *problems,
                                flora_error_t *error);

/* Parses and validates a rules file (JSON text) and stores it as the one document of
 * `delivery_rules` (replacing the previous one); a bad file changes nothing. */
bool flora_delivery_rules_load_json(flora_store_t *store, const char *json, size_t len,
                                    bson_t *problems, flora_error_t *error);

/* The effective rules: the stored document, or the built-in defaults when none is stored
 * (four windows 09-12, 12-15, 15-18, 18-21 every day, capacity 20; see docs/delivery.md). */
bool flora_delivery_rules_get(flora_store_t *store, bson_t *rules, flora_error_t *error);

/* Quotes a delivery at the current time: flora_delivery_quote_at with now. */
bool flora_delivery_quote(flora_store_t *store, const flora_config_t *config,
                          const bson_t *request, bson_t *quote, flora_error_t *error);

/* Quotes a delivery as if the time were now_ms (ms since the Unix epoch, UTC).
 * request: {address?: string, lat?, lon?, subtotal: int64 kopecks, date: "YYYY-MM-DD"
 * (shop time zone), slot?: "09-12", exactTime?: "14:30", options?: {}}. Coordinates given
 * win over the address; an address is geocoded by the configured geocoder (with a cache).
 * quote: {deliverable, reason?, price, currency, breakdown: {base, distance, surcharges:
 * [{kind, amount}], discount}, zone, distanceKm, date, slot?, exactTime?, slots: [{id,
 * start, end, remaining, available}], quotedAt}. A request that cannot be delivered is
 * not an error: deliverable false with reason one of outside_zones, beyond_max_distance,
 * below_minimum_order, date_blocked, slot_not_offered, past_cutoff, slot_full,
 * exact_time_unavailable, address_not_found, geocoder_unavailable (docs/delivery.md).
 * Errors: VALIDATION naming the field (lat/lon out of range, no location, malformed or
 * past date, date beyond the horizon, unknown slot, bad exactTime, bad subtotal); store
 * errors. Neither a geocoder nor a courier failure is an error (fallbacks). */
bool flora_delivery_quote_at(flora_store_t *store, const flora_config_t *config,
                             const bson_t *request, int64_t now_ms, bson_t *quote,
                             flora_error_t *error);

/* The slots of one date (shop time zone) as seen at now_ms: *out = {date, weekday (1 =
 * Monday), blocked, holiday?, slots: [{id, start, end, capacity, reserved, remaining,
 * available, reason?, surcharges: [{kind, amount}]}], exactTime: {...}|null}.
 * Errors: VALIDATION "date: ..." for a malformed date, a past date or one beyond the
 * horizon. */
bool flora_delivery_slots_list(flora_store_t *store, const flora_config_t *config,
                               const char *date, int64_t now_ms, bson_t *out,
                               flora_error_t *error);

/* Reserves one unit of capacity of (date, slot_id) with one conditional update
 * ({reserved < capacity}); slot_id "exact" reserves the day's exact-time capacity.
 * Use inside the checkout transaction (txn) or on a store. Capacity comes from the
 * stored rules (holiday capacity on holiday dates). Errors: SHOP FLORA_ERR_CONFLICT
 * "slot full" (also for a blocked date or a slot not offered that weekday), VALIDATION
 * for a malformed date or an unknown slot id, the store's. */
bool flora_delivery_reserve_slot(flora_store_t *txn, const char *date, const char *slot_id,
                                 flora_error_t *error);

/* Releases one unit of (date, slot_id) on cancellation; never below zero (a release with
 * nothing reserved succeeds and changes nothing). Errors: VALIDATION for a malformed date
 * or slot id, the store's. */
bool flora_delivery_release_slot(flora_store_t *txn, const char *date, const char *slot_id,
                                 flora_error_t *error);

/* Geocodes an address with the configured geocoder (delivery.geocoder: none|dadata),
 * through the `geocode_cache` collection. *found false when the provider knows no
 * coordinates for it. Errors: PROVIDER FLORA_ERR_UNAVAILABLE for a timeout, a transport
 * error or a 5xx; CONFIG when no geocoder is configured. */
bool flora_delivery_geocode(flora_store_t *store, const flora_config_t *config,
                            const char *address, double *lat, double *lon, bool *found,
                            flora_error_t *error);

#ifdef __cplusplus
}
#endif
#endif
