/* Delivery pricing: geometry at the edges (boundary, vertex, hole), haversine, the zones
 * and rules files (complete validation; a bad file never replaces a good one), and the quote
 * as a table: zones, minimum order, free-delivery threshold, per-km beyond a distance,
 * holidays, night and exact-time surcharges, cut-offs across midnight, DST in
 * Europe/Berlin and Moscow's 2014 change. Fixtures: tests/data/delivery/. Real district
 * boundaries of Moscow from ../shared/geo (skipped when absent). */
#include "flora_test.h"

#include <math.h>

#include "delivery/delivery_private.h"
#include "flora/config.h"
#include "flora/delivery.h"
#include "flora/migrate.h"
#include "flora/shop.h"
#include "flora/store.h"

typedef struct fixture {
   flora_store_t *store;
   flora_config_t *config;
} fixture_t;

static char *
slurp(const char *path, size_t *len)
{
   FILE *f = fopen(path, "rb");
   char *data;
   long n;

   if (!f) {
      fail_msg("cannot open %s", path);
   }
   fseek(f, 0, SEEK_END);
   n = ftell(f);
   fseek(f, 0, SEEK_SET);
   data = malloc((size_t) n + 1);
   assert_int_equal(fread(data, 1, (size_t) n, f), (size_t) n);
   data[n] = '\0';
   fclose(f);
   *len = (size_t) n;
   return data;
}

static char *
data_file(const char *name, size_t *len)
{
   char path[4096];
   const char *src = getenv("FLORA_SOURCE_DIR");

   snprintf(path, sizeof path, "%s/tests/data/delivery/%s", src ? src : "../..", name);
   return slurp(path, len);
}

static void
load(flora_store_t *store, const char *name, bool zones)
{
   flora_error_t error = {0};
   size_t len;
   char *json = data_file(name, &len);
   bool ok = zones ? flora_delivery_zones_load_json(store, json, len, NULL, NULL, &error)
                   : flora_delivery_rules_load_json(store, json, len, NULL, &error);

   if (!ok) {
      fail_msg("loading %s: %s", name, error.message);
   }
   free(json);
}

static int
setup(void **state)
{
   fixture_t *fx = calloc(1, sizeof *fx);
   flora_error_t error = {0};

   assert_true(flora_store_open(&fx->store, "sqlite::memory:", NULL, &error));
   assert_true(flora_migrate_up(fx->store, flora_migrate_list(), NULL, NULL, &error));
   flora_shop_attach_schemas(fx->store);
   assert_true(flora_config_load(&fx->config, NULL, &error));
   assert_true(flora_config_set(fx->config, "shop.timezone", "Europe/Moscow", "test", &error));
   load(fx->store, "zones.json", true);
   load(fx->store, "rules.json", false);
   *state = fx;
   return 0;
}

static int
teardown(void **state)
{
   fixture_t *fx = *state;

   flora_config_destroy(fx->config);
   flora_store_close(fx->store);
   free(fx);
   return 0;
}

/* ms of a UTC civil time */
static int64_t
utc(int y, int mo, int d, int h, int mi)
{
   return ((int64_t) flora__delivery_days(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000;
}

/* ---- geometry -------------------------------------------------------------------------- */

static void
test_haversine(void **state)
{
   (void) state;
   /* one degree of a great circle on the mean sphere: 2 pi R / 360 */
   assert_true(fabs(flora_delivery_distance_km(0, 0, 0, 1) - 111.19508023) < 1e-6);
   assert_true(fabs(flora_delivery_distance_km(0, 0, 1, 0) - 111.19508023) < 1e-6);
   assert_true(flora_delivery_distance_km(55.7558, 37.6176, 55.7558, 37.6176) == 0.0);
   /* antipodes: half the circumference */
   assert_true(fabs(flora_delivery_distance_km(0, 0, 0, 180) - M_PI * 6371.0088) < 1e-6);
   /* Moscow (Red Square) to St Petersburg (Palace Square): about 634 km */
   assert_true(fabs(flora_delivery_distance_km(55.7539, 37.6208, 59.9390, 30.3158) - 634.4) < 1.0);
}

static void
test_point_in_polygon(void **state)
{
   static const struct {
      double lon, lat;
      bool inside;
      const char *what;
   } cases[] = {
      {37.605, 55.745, true, "inside, off the hole"},
      {37.62, 55.75, false, "strictly inside the hole"},
      {37.60, 55.75, true, "on the outer west edge"},
      {37.62, 55.74, true, "on the outer south edge"},
      {37.64, 55.76, true, "on the north-east vertex"},
      {37.615, 55.75, true, "on the hole's west edge (the zone's boundary)"},
      {37.62, 55.752, true, "on the hole's north edge"},
      {37.625, 55.748, true, "on a hole vertex"},
      {37.5999, 55.75, false, "just west of the edge"},
      {37.6401, 55.75, false, "just east of the edge"},
      {37.62, 55.7601, false, "just north"},
      {37.6151, 55.75, false, "just inside the hole"},
   };
   bson_t *square = J("{'type': 'Polygon', 'coordinates': ["
                      "[[37.60, 55.74], [37.64, 55.74], [37.64, 55.76], [37.60, 55.76], [37.60, 55.74]],"
                      "[[37.615, 55.748], [37.625, 55.748], [37.625, 55.752], [37.615, 55.752], [37.615, 55.748]]]}");
   bson_t *multi = J("{'type': 'MultiPolygon', 'coordinates': ["
                     "[[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],"
                     "[[[2, 2], [3, 2], [3, 3], [2, 3], [2, 2]]]]}");
   bson_t *bad = J("{'type': 'Point', 'coordinates': [1, 2]}");
   flora_error_t error = {0};
   bool inside;

   (void) state;
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      assert_true(flora_delivery_geometry_contains(square, cases[i].lon, cases[i].lat, &inside, &error));
      if (inside != cases[i].inside) {
         fail_msg("%s (%g, %g): expected %s", cases[i].what, cases[i].lon, cases[i].lat,
                  cases[i].inside ? "inside" : "outside");
      }
   }
   assert_true(flora_delivery_geometry_contains(multi, 2.5, 2.5, &inside, &error));
   assert_true(inside);
   assert_true(flora_delivery_geometry_contains(multi, 1.5, 1.5, &inside, &error));
   assert_false(inside);
   assert_true(flora_delivery_geometry_contains(multi, 1, 0.5, &inside, &error));
   assert_true(inside);
   assert_false(flora_delivery_geometry_contains(bad, 1, 2, &inside, &error));
   bson_destroy(square);
   bson_destroy(multi);
   bson_destroy(bad);
}

/* ---- files ------------------------------------------------------------------------------ */

static void
test_bad_zones_file_names_zone_and_field(void **state)
{
   fixture_t *fx = *state;
   flora_error_t error = {0};
   bson_t problems = BSON_INITIALIZER;
   size_t len;
   char *json = data_file("bad_zones.json", &len);
   char *all;
   int64_t count = -1;

   assert_false(flora_delivery_zones_load_json(fx->store, json, len, &problems, NULL, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
   all = bson_as_relaxed_extended_json(&problems, NULL);
   /* every problem of every zone, each with its zone and field */
   assert_non_null(strstr(all, "zone open: a linear ring must be closed"));
   assert_non_null(strstr(all, "zones.0.polygon.coordinates.0"));
   assert_non_null(strstr(all, "zone lat: latitude 95 is out of range"));
   assert_non_null(strstr(all, "zones.1.polygon.coordinates.0.0"));
   assert_non_null(strstr(all, "zone short: a linear ring needs at least 4 positions"));
   assert_non_null(strstr(all, "zones.3.basePrice"));
   assert_non_null(strstr(all, "zone negative: must not be negative"));
   assert_non_null(strstr(all, "zone nowhere: no location has id warehouse"));
   assert_non_null(strstr(all, "zone nowhere: must be greater than innerKm"));
   assert_non_null(strstr(all, "zones.4.ring.outerKm"));
   assert_non_null(strstr(error.message, "zone open"));
   bson_free(all);
   free(json);
   /* the good zones are still there */
   assert_true(flora_store_count_documents(fx->store, "delivery_zones", NULL, NULL, &count, &error));
   assert_int_equal(count, 3);
   /* not JSON at all */
   assert_false(flora_delivery_zones_load_json(fx->store, "{\"zones\": [", 11, NULL, NULL, &error));
   assert_int_equal(error.domain, FLORA_DOMAIN_INPUT);
   assert_true(flora_store_count_documents(fx->store, "delivery_zones", NULL, NULL, &count, &error));
   assert_int_equal(count, 3);
   bson_destroy(&problems);
}

static void
test_bad_rules_file(void **state)
{
   fixture_t *fx = *state;
   static const struct {
      const char *json;
      const char *field;
   } cases[] = {
      {"{'slots': [{'id': '09-12', 'start': '12:00', 'end': '09:00'}]}", "slots.0.end"},
      {"{'slots': [{'id': '09-12', 'start': '25:00', 'end': '26:00'}]}", "slots.0.start"},
      {"{'slots': [{'id': 'a', 'start': '09:00', 'end': '10:00', 'capacity': -1}]}", "slots.0.capacity"},
      {"{'slots': [{'id': 'a', 'start': '09:00', 'end': '10:00', 'weekdays': [0]}]}", "slots.0.weekdays"},
      {"{'slots': []}", "slots"},
      {"{'blockedDates': ['2027-02-30']}", "blockedDates.0"},
      {"{'holidays': [{'name': 'x', 'from': '02-30', 'to': '03-01'}]}", "holidays.0.from"},
      {"{'holidays': [{'name': 'x', 'from': '02-13', 'to': '02-14', 'surcharge': -5}]}", "holidays.0.surcharge"},
      {"{'night': {'from': '22:00', 'to': '22:00'}}", "night.to"},
      {"{'horizonDays': 1000}", "horizonDays"},
      {"{'exactTime': {'from': '21:00', 'to': '09:00'}}", "exactTime.to"},
      {"{'colour': 'red'}", "colour"},
   };
   bson_t rules;

   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_t *file = J(cases[i].json);
      flora_error_t error = {0};
      char expect[64];

      assert_false(flora_delivery_rules_parse(file, &rules, NULL, &error));
      snprintf(expect, sizeof expect, "rules file: %s: ", cases[i].field);
      if (strncmp(error.message, expect, strlen(expect)) != 0) {
         fail_msg("%s: expected %s..., got %s", cases[i].json, expect, error.message);
      }
      bson_destroy(&rules);
      bson_destroy(file);
   }
   {
      flora_error_t error = {0};
      bson_iter_t it;

      /* a bad file leaves the loaded rules in place */
      assert_false(flora_delivery_rules_load_json(fx->store, "{\"slots\": []}", 13, NULL, &error));
      assert_true(flora_delivery_rules_get(fx->store, &rules, &error));
      assert_true(bson_iter_init_find(&it, &rules, "slots"));
      {
         const uint8_t *data;
         uint32_t len;
         bson_t slots;

         bson_iter_array(&it, &len, &data);
         bson_init_static(&slots, data, len);
         assert_int_equal(flora__delivery_count(&slots), 5);
      }
      bson_destroy(&rules);
   }
}

/* ---- the quote as a table ------------------------------------------------------------------ */

typedef struct quote_case {
   const char *name;
   int now[5]; /* UTC y, m, d, h, min */
   const char *request;
   bool deliverable;
   const char *reason; /* NULL when deliverable */
   int64_t price;
   const char *zone;          /* NULL: not checked */
   const char *surcharges;    /* JSON of breakdown.surcharges, NULL: not checked */
   int64_t discount;
} quote_case_t;

/* 2027-02-10 is a Wednesday; Moscow is UTC+3 all year */
#define WED_0900_MSK utc(2027, 2, 10, 6, 0)
#define WED {2027, 2, 10, 6, 0}
#define SQ "'lat': 55.745, 'lon': 37.605"  /* square zone, 1.4366 km from the shop */
#define HOLE "'lat': 55.75, 'lon': 37.62"  /* inside the square's hole: ring10, 0.66 km */
#define EDGE "'lat': 55.75, 'lon': 37.60"  /* on the square's west edge */
#define KM15 "'lat': 55.7558, 'lon': 37.8576"  /* far ring, 15.017 km */
#define KM30 "'lat': 55.7558, 'lon': 38.0926"  /* far ring, 29.72 km > maxDistanceKm 25 */
#define KM50 "'lat': 55.7558, 'lon': 38.4176"  /* outside every zone */

static const quote_case_t quote_cases[] = {
   /* zones: base + per km beyond 1 km: 30000 + round(3000 * 0.437) = 31311 */
   {"square zone, per km beyond 1 km", WED,
    "{" SQ ", 'subtotal': 200000, 'date': '2027-02-11', 'slot': '12-15'}", true, NULL, 31311,
    "square", "[]", 0},
   {"a point on the boundary is inside", WED,
    "{" EDGE ", 'subtotal': 200000, 'date': '2027-02-11', 'slot': '12-15'}", true, NULL, -1,
    "square", NULL, 0},
   {"a hole falls through to the next zone", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-11', 'slot': '12-15'}", true, NULL, 50000,
    "ring10", "[]", 0},
   {"far ring: 90000 + 5000 * 5.017 km", WED,
    "{" KM15 ", 'subtotal': 300000, 'date': '2027-02-11', 'slot': '12-15'}", true, NULL, 115085,
    "far", "[]", 0},
   {"inside a ring but beyond its maximum distance", WED,
    "{" KM30 ", 'subtotal': 300000, 'date': '2027-02-11', 'slot': '12-15'}", false,
    "beyond_max_distance", 0, NULL, NULL, 0},
   {"outside every zone", WED,
    "{" KM50 ", 'subtotal': 300000, 'date': '2027-02-11', 'slot': '12-15'}", false,
    "outside_zones", 0, NULL, NULL, 0},
   /* thresholds */
   {"one kopeck below the minimum order", WED,
    "{" SQ ", 'subtotal': 149999, 'date': '2027-02-11', 'slot': '12-15'}", false,
    "below_minimum_order", 31311, "square", NULL, 0},
   {"exactly the minimum order", WED,
    "{" SQ ", 'subtotal': 150000, 'date': '2027-02-11', 'slot': '12-15'}", true, NULL, 31311,
    "square", NULL, 0},
   {"one kopeck below free delivery", WED,
    "{" SQ ", 'subtotal': 499999, 'date': '2027-02-11', 'slot': '12-15'}", true, NULL, 31311,
    "square", NULL, 0},
   {"free delivery from the threshold", WED,
    "{" SQ ", 'subtotal': 500000, 'date': '2027-02-11', 'slot': '12-15'}", true, NULL, 0,
    "square", "[]", 31311},
   {"free delivery does not cover surcharges", WED,
    "{" SQ ", 'subtotal': 500000, 'date': '2027-02-11', 'exactTime': '14:30'}", true, NULL, 50000,
    "square", "[{'kind': 'exact_time', 'amount': 50000}]", 31311},
   /* holidays: 13-14 February and 7-8 March */
   {"the day before the holiday range", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-12', 'slot': '12-15'}", true, NULL, 50000,
    NULL, "[]", 0},
   {"first day of the Valentine's range", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-13', 'slot': '12-15'}", true, NULL, 80000,
    NULL, "[{'kind': 'holiday', 'amount': 30000}]", 0},
   {"14 February", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-14', 'slot': '12-15'}", true, NULL, 80000,
    NULL, "[{'kind': 'holiday', 'amount': 30000}]", 0},
   {"8 March", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-03-08', 'slot': '12-15'}", true, NULL, 80000,
    NULL, "[{'kind': 'holiday', 'amount': 30000}]", 0},
   {"9 March is over", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-03-09', 'slot': '12-15'}", true, NULL, 50000,
    NULL, "[]", 0},
   /* night and exact time */
   {"a window reaching into the night", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-11', 'slot': '20-23'}", true, NULL, 90000,
    NULL, "[{'kind': 'night', 'amount': 40000}]", 0},
   {"a window ending as the night starts", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-11', 'slot': '18-21'}", true, NULL, 50000,
    NULL, "[]", 0},
   {"exact time", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-11', 'exactTime': '14:30'}", true, NULL, 100000,
    NULL, "[{'kind': 'exact_time', 'amount': 50000}]", 0},
   {"exact time on a holiday", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-14', 'exactTime': '10:00'}", true, NULL, 130000,
    NULL, "[{'kind': 'exact_time', 'amount': 50000}, {'kind': 'holiday', 'amount': 30000}]", 0},
   {"exact time outside its hours", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-11', 'exactTime': '23:30'}", false,
    "exact_time_unavailable", -1, NULL, NULL, 0},
   /* dates and windows */
   {"a blocked date", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-20', 'slot': '12-15'}", false, "date_blocked",
    -1, NULL, NULL, 0},
   {"a window not offered on Sundays", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-14', 'slot': '18-21'}", false,
    "slot_not_offered", -1, NULL, NULL, 0},
   /* cut-offs: lead time 120 min, same-day cut-off 18:00, all in Moscow time */
   {"today, the window starts before now + lead", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-10', 'slot': '09-12'}", false, "past_cutoff",
    -1, NULL, NULL, 0},
   {"today, the window starts at now + 3 h", WED,
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-10', 'slot': '12-15'}", true, NULL, 50000,
    NULL, NULL, 0},
   {"today, exactly now + lead", {2027, 2, 10, 7, 0},
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-10', 'slot': '12-15'}", true, NULL, 50000,
    NULL, NULL, 0},
   {"today, one minute late", {2027, 2, 10, 7, 1},
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-10', 'slot': '12-15'}", false, "past_cutoff",
    -1, NULL, NULL, 0},
   {"today after the same-day cut-off", {2027, 2, 10, 15, 0},
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-10', 'slot': '20-23'}", false, "past_cutoff",
    -1, NULL, NULL, 0},
   {"23:30 Moscow: tomorrow morning is open", {2027, 2, 10, 20, 30},
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-11', 'slot': '09-12'}", true, NULL, 50000,
    NULL, NULL, 0},
   {"00:30 Moscow (still the 10th in UTC): today is the 11th, 09-12 is open", {2027, 2, 10, 21, 30},
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-11', 'slot': '09-12'}", true, NULL, 50000,
    NULL, NULL, 0},
   {"07:30 Moscow: 09-12 needs 2 h", {2027, 2, 11, 4, 30},
    "{" HOLE ", 'subtotal': 200000, 'date': '2027-02-11', 'slot': '09-12'}", false, "past_cutoff",
    -1, NULL, NULL, 0},
};

static void
check_quote(fixture_t *fx, const quote_case_t *c)
{
   bson_t *req = J(c->request);
   bson_t quote;
   flora_error_t error = {0};
   bson_iter_t it;

   if (!flora_delivery_quote_at(fx->store, fx->config, req,
                                utc(c->now[0], c->now[1], c->now[2], c->now[3], c->now[4]),
                                &quote, &error)) {
      fail_msg("%s: %s", c->name, error.message);
   }
   {
      char *s = bson_as_relaxed_extended_json(&quote, NULL);
      bool deliverable = bson_iter_init_find(&it, &quote, "deliverable") && bson_iter_bool(&it);
      const char *reason = bson_iter_init_find(&it, &quote, "reason") ? bson_iter_utf8(&it, NULL) : NULL;
      int64_t price = bson_iter_init_find(&it, &quote, "price") ? bson_iter_as_int64(&it) : -2;

      if (deliverable != c->deliverable || (c->reason && (!reason || strcmp(reason, c->reason) != 0)) ||
          (!c->reason && reason) || (c->price >= 0 && price != c->price)) {
         fail_msg("%s: got %s", c->name, s);
      }
      if (c->zone && (!bson_iter_init_find(&it, &quote, "zone") || !BSON_ITER_HOLDS_UTF8(&it) ||
                      strcmp(bson_iter_utf8(&it, NULL), c->zone) != 0)) {
         fail_msg("%s: zone: got %s", c->name, s);
      }
      if (c->surcharges) {
         bson_t *expect = J(c->surcharges);
         bson_iter_t b;
         const uint8_t *data;
         uint32_t len;
         bson_t got;

         assert_true(bson_iter_init(&it, &quote) && bson_iter_find_descendant(&it, "breakdown.surcharges", &b));
         bson_iter_array(&b, &len, &data);
         bson_init_static(&got, data, len);
         {
            /* relaxed JSON: int32 in the expectation equals the quote's int64 */
            char *g = bson_as_relaxed_extended_json(&got, NULL);
            char *e = bson_as_relaxed_extended_json(expect, NULL);
            bool same = strcmp(g, e) == 0;

            bson_free(g);
            bson_free(e);
            if (!same) {
               fail_msg("%s: surcharges: got %s", c->name, s);
            }
         }
         bson_destroy(expect);
      }
      if (c->discount && (!bson_iter_init(&it, &quote) ||
                          !bson_iter_find_descendant(&it, "breakdown.discount", &it) ||
                          bson_iter_as_int64(&it) != c->discount)) {
         fail_msg("%s: discount: got %s", c->name, s);
      }
      bson_free(s);
   }
   bson_destroy(&quote);
   bson_destroy(req);
}

static void
test_quote_table(void **state)
{
   for (size_t i = 0; i < sizeof quote_cases / sizeof quote_cases[0]; i++) {
      check_quote(*state, &quote_cases[i]);
   }
}

static void
test_quote_bad_input(void **state)
{
   fixture_t *fx = *state;
   static const struct {
      const char *request;
      const char *field;
   } cases[] = {
      {"{'lat': 91, 'lon': 37.6, 'subtotal': 1, 'date': '2027-02-11'}", "lat"},
      {"{'lat': -90.5, 'lon': 37.6, 'subtotal': 1, 'date': '2027-02-11'}", "lat"},
      {"{'lat': 55.7, 'lon': 181, 'subtotal': 1, 'date': '2027-02-11'}", "lon"},
      {"{'lat': 55.7, 'subtotal': 1, 'date': '2027-02-11'}", "lon"},
      {"{'subtotal': 1, 'date': '2027-02-11'}", "lat"},
      {"{'lat': 55.7, 'lon': 37.6, 'date': '2027-02-11'}", "subtotal"},
      {"{'lat': 55.7, 'lon': 37.6, 'subtotal': -1, 'date': '2027-02-11'}", "subtotal"},
      {"{'lat': 55.7, 'lon': 37.6, 'subtotal': 1}", "date"},
      {"{'lat': 55.7, 'lon': 37.6, 'subtotal': 1, 'date': '2027-02-30'}", "date"},
      {"{'lat': 55.7, 'lon': 37.6, 'subtotal': 1, 'date': '11.02.2027'}", "date"},
      {"{'lat': 55.7, 'lon': 37.6, 'subtotal': 1, 'date': '2027-02-09'}", "date"},
      {"{'lat': 55.7, 'lon': 37.6, 'subtotal': 1, 'date': '2027-03-13'}", "date"},
      {"{'lat': 55.7, 'lon': 37.6, 'subtotal': 1, 'date': '2027-02-11', 'slot': '10-11'}", "slot"},
      {"{'lat': 55.7, 'lon': 37.6, 'subtotal': 1, 'date': '2027-02-11', 'exactTime': '25:00'}", "exactTime"},
      {"{'lat': 55.7, 'lon': 37.6, 'subtotal': 1, 'date': '2027-02-11', 'slot': '09-12', 'exactTime': '10:00'}", "exactTime"},
      {"{'lat': 55.7, 'lon': 37.6, 'subtotal': 1, 'date': '2027-02-11', 'colour': 'red'}", "colour"},
   };

   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      bson_t *req = J(cases[i].request);
      bson_t quote;
      flora_error_t error = {0};
      char expect[64];

      assert_false(flora_delivery_quote_at(fx->store, fx->config, req, WED_0900_MSK, &quote, &error));
      assert_int_equal(error.domain, FLORA_DOMAIN_VALIDATION);
      snprintf(expect, sizeof expect, "%s: ", cases[i].field);
      if (strncmp(error.message, expect, strlen(expect)) != 0) {
         fail_msg("%s: expected %s..., got %s", cases[i].request, expect, error.message);
      }
      assert_true(bson_empty(&quote));
      bson_destroy(&quote);
      bson_destroy(req);
   }
   /* the horizon's last day is fine */
   {
      bson_t *req = J("{'lat': 55.75, 'lon': 37.62, 'subtotal': 200000, 'date': '2027-03-12'}");
      bson_t quote;
      flora_error_t error = {0};

      assert_true(flora_delivery_quote_at(fx->store, fx->config, req, WED_0900_MSK, &quote, &error));
      bson_destroy(&quote);
      bson_destroy(req);
   }
}

static void
test_quote_slot_full_and_holiday_capacity(void **state)
{
   fixture_t *fx = *state;
   flora_error_t error = {0};
   bson_t *req = J("{'lat': 55.75, 'lon': 37.62, 'subtotal': 200000, 'date': '2027-02-11', 'slot': '12-15'}");
   bson_t *exact = J("{'lat': 55.75, 'lon': 37.62, 'subtotal': 200000, 'date': '2027-02-11', 'exactTime': '16:00'}");
   bson_t *holiday = J("{'lat': 55.75, 'lon': 37.62, 'subtotal': 200000, 'date': '2027-02-14', 'slot': '12-15'}");
   bson_t quote;
   bson_iter_t it;

   for (int i = 0; i < 3; i++) {
      assert_true(flora_delivery_reserve_slot(fx->store, "2027-02-11", "12-15", &error));
   }
   assert_true(flora_delivery_quote_at(fx->store, fx->config, req, WED_0900_MSK, &quote, &error));
   assert_true(bson_iter_init_find(&it, &quote, "reason"));
   assert_string_equal(bson_iter_utf8(&it, NULL), "slot_full");
   assert_true(bson_iter_init(&it, &quote) && bson_iter_find_descendant(&it, "slots.1.remaining", &it));
   assert_int_equal(bson_iter_as_int64(&it), 0);
   bson_destroy(&quote);
   /* the exact-time pool (5) is separate */
   assert_true(flora_delivery_quote_at(fx->store, fx->config, exact, WED_0900_MSK, &quote, &error));
   assert_false(bson_iter_init_find(&it, &quote, "reason"));
   bson_destroy(&quote);
   for (int i = 0; i < 5; i++) {
      assert_true(flora_delivery_reserve_slot(fx->store, "2027-02-11", "exact", &error));
   }
   assert_false(flora_delivery_reserve_slot(fx->store, "2027-02-11", "exact", &error));
   assert_true(flora_delivery_quote_at(fx->store, fx->config, exact, WED_0900_MSK, &quote, &error));
   assert_true(bson_iter_init_find(&it, &quote, "reason"));
   assert_string_equal(bson_iter_utf8(&it, NULL), "slot_full");
   bson_destroy(&quote);
   /* on 14 February the holiday's capacity (6) replaces the window's (3) */
   for (int i = 0; i < 6; i++) {
      assert_true(flora_delivery_reserve_slot(fx->store, "2027-02-14", "12-15", &error));
      assert_true(flora_delivery_quote_at(fx->store, fx->config, holiday, WED_0900_MSK, &quote, &error));
      assert_true(bson_iter_init_find(&it, &quote, "deliverable"));
      assert_true(bson_iter_bool(&it) == (i < 5));
      bson_destroy(&quote);
   }
   assert_false(flora_delivery_reserve_slot(fx->store, "2027-02-14", "12-15", &error));
   bson_destroy(req);
   bson_destroy(exact);
   bson_destroy(holiday);
}

static void
test_holiday_ranges(void **state)
{
   static const struct {
      int month, day;
      const char *holiday; /* NULL: none */
   } cases[] = {
      {12, 29, NULL}, {12, 30, "new_year"}, {12, 31, "new_year"}, {1, 1, "new_year"},
      {1, 2, "new_year"}, {1, 3, NULL}, {2, 12, NULL}, {2, 13, "valentines_day"},
      {2, 14, "valentines_day"}, {2, 15, NULL}, {3, 7, "womens_day"}, {3, 8, "womens_day"},
      {3, 9, NULL},
   };
   bson_t *file = J("{'holidays': ["
                    "{'name': 'new_year', 'from': '12-30', 'to': '01-02', 'surcharge': 10000},"
                    "{'name': 'valentines_day', 'from': '02-13', 'to': '02-14', 'surcharge': 30000},"
                    "{'name': 'womens_day', 'from': '03-07', 'to': '03-08', 'surcharge': 30000}]}");
   flora__rules_t *r = calloc(1, sizeof *r);
   bson_t problems = BSON_INITIALIZER;

   (void) state;
   assert_true(flora__delivery_rules_from_bson(file, r, &problems));
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      const flora__holiday_t *h = flora__delivery_rules_holiday(r, cases[i].month, cases[i].day);

      if ((h == NULL) != (cases[i].holiday == NULL) ||
          (h && strcmp(h->name, cases[i].holiday) != 0)) {
         fail_msg("%02d-%02d: expected %s, got %s", cases[i].month, cases[i].day,
                  cases[i].holiday ? cases[i].holiday : "none", h ? h->name : "none");
      }
   }
   /* night hours wrap midnight: 22:00-08:00 */
   assert_true(flora__delivery_rules_night(r, 21 * 60, 22 * 60 + 1));
   assert_false(flora__delivery_rules_night(r, 21 * 60, 22 * 60));
   assert_true(flora__delivery_rules_night(r, 7 * 60 + 59, 8 * 60));
   assert_false(flora__delivery_rules_night(r, 8 * 60, 12 * 60));
   bson_destroy(&problems);
   bson_destroy(file);
   free(r);
}

/* ---- time zones ----------------------------------------------------------------------------- */

static void
test_civil_time_dst(void **state)
{
   flora_error_t error = {0};
   flora__civil_t c;
   int64_t ms;

   (void) state;
   /* Berlin, last Sunday of March 2026: 02:00 CET -> 03:00 CEST */
   assert_true(flora__delivery_to_utc("Europe/Berlin", 2026, 3, 29, 1 * 60 + 30, &ms, &error));
   assert_int_equal(ms, utc(2026, 3, 29, 0, 30));
   assert_true(flora__delivery_to_utc("Europe/Berlin", 2026, 3, 29, 3 * 60, &ms, &error));
   assert_int_equal(ms, utc(2026, 3, 29, 1, 0));
   /* 02:30 does not exist: the first valid time after the gap, 03:00 CEST */
   assert_true(flora__delivery_to_utc("Europe/Berlin", 2026, 3, 29, 2 * 60 + 30, &ms, &error));
   assert_int_equal(ms, utc(2026, 3, 29, 1, 0));
   /* last Sunday of October 2026: 03:00 CEST -> 02:00 CET; 02:30 happens twice, first wins */
   assert_true(flora__delivery_to_utc("Europe/Berlin", 2026, 10, 25, 2 * 60 + 30, &ms, &error));
   assert_int_equal(ms, utc(2026, 10, 25, 0, 30));
   assert_true(flora__delivery_to_utc("Europe/Berlin", 2026, 10, 25, 3 * 60, &ms, &error));
   assert_int_equal(ms, utc(2026, 10, 25, 2, 0));
   /* 24:00 is the next local midnight, a 23-hour day in March */
   assert_true(flora__delivery_to_utc("Europe/Berlin", 2026, 3, 29, 1440, &ms, &error));
   assert_int_equal(ms, utc(2026, 3, 29, 22, 0));
   assert_true(flora__delivery_to_local("Europe/Berlin", utc(2026, 3, 29, 1, 0), &c, &error));
   assert_int_equal(c.minute, 3 * 60);
   assert_int_equal(c.weekday, 7);
   /* Moscow: UTC+4 from 27 March 2011, UTC+3 again from 26 October 2014 02:00 */
   assert_true(flora__delivery_to_utc("Europe/Moscow", 2014, 10, 25, 12 * 60, &ms, &error));
   assert_int_equal(ms, utc(2014, 10, 25, 8, 0));
   assert_true(flora__delivery_to_utc("Europe/Moscow", 2014, 10, 27, 12 * 60, &ms, &error));
   assert_int_equal(ms, utc(2014, 10, 27, 9, 0));
   assert_true(flora__delivery_to_utc("Europe/Moscow", 2010, 7, 1, 12 * 60, &ms, &error));
   assert_int_equal(ms, utc(2010, 7, 1, 8, 0)); /* MSD, summer time of 2010 */
   assert_true(flora__delivery_to_utc("Europe/Moscow", 2027, 7, 1, 12 * 60, &ms, &error));
   assert_int_equal(ms, utc(2027, 7, 1, 9, 0));
   assert_false(flora__delivery_tz_check("Mars/Olympus_Mons", &error));
   assert_true(flora__delivery_tz_check("Europe/Berlin", &error));
}

static void
test_lead_time_across_dst(void **state)
{
   fixture_t *fx = *state;
   static const char *rules =
      "{\"slots\": [{\"id\": \"03-06\", \"start\": \"03:00\", \"end\": \"06:00\", \"capacity\": 5}],"
      " \"leadTimeMinutes\": 150, \"night\": null, \"holidays\": []}";
   static const char *rules_oct =
      "{\"slots\": [{\"id\": \"03-06\", \"start\": \"03:00\", \"end\": \"06:00\", \"capacity\": 5}],"
      " \"leadTimeMinutes\": 180, \"night\": null, \"holidays\": []}";
   flora_error_t error = {0};
   bson_t *req_mar = J("{'lat': 55.75, 'lon': 37.62, 'subtotal': 200000, 'date': '2026-03-29', 'slot': '03-06'}");
   bson_t *req_oct = J("{'lat': 55.75, 'lon': 37.62, 'subtotal': 200000, 'date': '2026-10-25', 'slot': '03-06'}");
   bson_t quote;
   bson_iter_t it;

   assert_true(flora_config_set(fx->config, "shop.timezone", "Europe/Berlin", "test", &error));
   /* 00:30 CET + 150 min = 04:00 CEST (02:00Z): the 03:00 CEST window (01:00Z) is too late,
    * though 00:30 + 2:30 on the wall clock would be 03:00 */
   assert_true(flora_delivery_rules_load_json(fx->store, rules, strlen(rules), NULL, &error));
   assert_true(flora_delivery_quote_at(fx->store, fx->config, req_mar, utc(2026, 3, 28, 23, 30), &quote, &error));
   assert_true(bson_iter_init_find(&it, &quote, "reason"));
   assert_string_equal(bson_iter_utf8(&it, NULL), "past_cutoff");
   bson_destroy(&quote);
   /* 00:30 CEST + 180 min = 02:30 CET (01:30Z): the 03:00 CET window (02:00Z) is open,
    * though 00:30 + 3:00 on the wall clock would be 03:30 */
   assert_true(flora_delivery_rules_load_json(fx->store, rules_oct, strlen(rules_oct), NULL, &error));
   assert_true(flora_delivery_quote_at(fx->store, fx->config, req_oct, utc(2026, 10, 24, 22, 30), &quote, &error));
   assert_true(bson_iter_init_find(&it, &quote, "deliverable"));
   assert_true(bson_iter_bool(&it));
   bson_destroy(&quote);
   bson_destroy(req_mar);
   bson_destroy(req_oct);
}

/* ---- real districts ---------------------------------------------------------------------- */

static void
test_moscow_districts(void **state)
{
   fixture_t *fx = *state;
   const char *shared = flora_test_shared_dir();
   static const char *const wanted[] = {"Тверской", "Хамовники", "Якиманка", NULL};
   char path[4096];
   size_t len;
   char *json;
   bson_t *fc;
   bson_error_t berr;
   bson_iter_t it, feat;
   bson_t file = BSON_INITIALIZER, zones, locs, loc, point;
   uint32_t n = 0;
   flora_error_t error = {0};
   static const struct {
      double lat, lon;
      const char *zone;
      const char *what;
   } points[] = {
      {55.7539, 37.6208, "tverskoy", "Red Square"},
      {55.7579, 37.6110, "tverskoy", "Tverskaya street at Okhotny Ryad"},
      {55.7265, 37.5620, "khamovniki", "Novodevichy Convent"},
      {55.7158, 37.5537, "khamovniki", "Luzhniki stadium"},
      {55.7316, 37.6036, "yakimanka", "Krymsky Val at Gorky Park"},
      {55.7418, 37.6208, "yakimanka", "Tretyakov Gallery"},
   };

   if (!shared) {
      flora_skip("../shared is absent (FLORA_SHARED_DIR): no Moscow district boundaries");
   }
   snprintf(path, sizeof path, "%s/geo/moscow/municipal-districts.geojson", shared);
   json = slurp(path, &len);
   fc = bson_new_from_json((const uint8_t *) json, (ssize_t) len, &berr);
   free(json);
   assert_non_null(fc);
   BSON_APPEND_ARRAY_BEGIN(&file, "locations", &locs);
   BSON_APPEND_DOCUMENT_BEGIN(&locs, "0", &loc);
   BSON_APPEND_UTF8(&loc, "id", "center");
   BSON_APPEND_UTF8(&loc, "name", "Flora, Nikolskaya");
   BSON_APPEND_ARRAY_BEGIN(&loc, "point", &point);
   BSON_APPEND_DOUBLE(&point, "0", 37.6176);
   BSON_APPEND_DOUBLE(&point, "1", 55.7558);
   bson_append_array_end(&loc, &point);
   bson_append_document_end(&locs, &loc);
   bson_append_array_end(&file, &locs);
   BSON_APPEND_ARRAY_BEGIN(&file, "zones", &zones);
   assert_true(bson_iter_init_find(&it, fc, "features") && bson_iter_recurse(&it, &feat));
   while (bson_iter_next(&feat)) {
      bson_iter_t name, geom;

      if (!bson_iter_recurse(&feat, &name) || !bson_iter_find_descendant(&name, "properties.NAME", &geom)) {
         continue;
      }
      for (size_t w = 0; wanted[w]; w++) {
         if (strcmp(bson_iter_utf8(&geom, NULL), wanted[w]) == 0) {
            static const char *const ids[] = {"tverskoy", "khamovniki", "yakimanka"};
            bson_iter_t g;
            bson_t z;
            char key[8];

            snprintf(key, sizeof key, "%u", n++);
            BSON_APPEND_DOCUMENT_BEGIN(&zones, key, &z);
            BSON_APPEND_UTF8(&z, "id", ids[w]);
            BSON_APPEND_UTF8(&z, "name", wanted[w]);
            BSON_APPEND_UTF8(&z, "location", "center");
            bson_iter_recurse(&feat, &g);
            assert_true(bson_iter_find(&g, "geometry"));
            bson_append_iter(&z, "polygon", -1, &g);
            BSON_APPEND_INT32(&z, "basePrice", 30000 + 10000 * (int) w);
            BSON_APPEND_INT32(&z, "maxDistanceKm", 15);
            bson_append_document_end(&zones, &z);
         }
      }
   }
   bson_append_array_end(&file, &zones);
   assert_int_equal(n, 3);
   {
      bson_t parsed;

      if (!flora_delivery_zones_parse(&file, &parsed, NULL, &error)) {
         fail_msg("districts: %s", error.message);
      }
      bson_destroy(&parsed);
   }
   {
      char *text = bson_as_relaxed_extended_json(&file, &len);

      assert_true(flora_delivery_zones_load_json(fx->store, text, len, NULL, NULL, &error));
      bson_free(text);
   }
   for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
      char req[256];
      bson_t *r, quote;

      snprintf(req, sizeof req,
               "{'lat': %.6f, 'lon': %.6f, 'subtotal': 300000, 'date': '2027-02-11'}",
               points[i].lat, points[i].lon);
      r = J(req);
      assert_true(flora_delivery_quote_at(fx->store, fx->config, r, WED_0900_MSK, &quote, &error));
      if (!bson_iter_init_find(&it, &quote, "zone") || !BSON_ITER_HOLDS_UTF8(&it) ||
          strcmp(bson_iter_utf8(&it, NULL), points[i].zone) != 0) {
         char *s = bson_as_relaxed_extended_json(&quote, NULL);
         fail_msg("%s: expected %s, got %s", points[i].what, points[i].zone, s);
      }
      bson_destroy(&quote);
      bson_destroy(r);
   }
   bson_destroy(&file);
   bson_destroy(fc);
}

int
main(void)
{
   const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_haversine),
      cmocka_unit_test(test_point_in_polygon),
      cmocka_unit_test(test_civil_time_dst),
      cmocka_unit_test_setup_teardown(test_bad_zones_file_names_zone_and_field, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_rules_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quote_table, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quote_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quote_slot_full_and_holiday_capacity, setup, teardown),
      cmocka_unit_test(test_holiday_ranges),
      cmocka_unit_test_setup_teardown(test_lead_time_across_dst, setup, teardown),
      cmocka_unit_test_setup_teardown(test_moscow_districts, setup, teardown),
   };

   return cmocka_run_group_tests(tests, NULL, NULL);
}
