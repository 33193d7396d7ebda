/* Zones: geometry (haversine distance, point in polygon with holes and boundaries) and
 * the zones file: complete validation, then one transaction replacing every zone. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "delivery/delivery_private.h"
#include "flora/schema.h"

#define EARTH_RADIUS_KM 6371.0088
#define DEG2RAD (M_PI / 180.0)
#define EDGE_EPSILON 1e-12

double
flora_delivery_distance_km(double lat1, double lon1, double lat2, double lon2)
{
   double p1 = lat1 * DEG2RAD, p2 = lat2 * DEG2RAD;
   double dp = (lat2 - lat1) * DEG2RAD, dl = (lon2 - lon1) * DEG2RAD;
   double a = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2);

   if (a > 1.0) {
      a = 1.0;
   }
   return 2.0 * EARTH_RADIUS_KM * asin(sqrt(a));
}

uint32_t
flora__delivery_count(const bson_t *array)
{
   bson_iter_t it;
   uint32_t n = 0;

   if (bson_iter_init(&it, array)) {
      while (bson_iter_next(&it)) {
         n++;
      }
   }
   return n;
}

bool
flora__delivery_problems_fail(const bson_t *collected, bson_t *problems, const char *what,
                              flora_error_t *error)
{
   bson_iter_t it, p;
   const char *path = "", *reason = "";
   uint32_t n = flora__delivery_count(collected);

   if (bson_iter_init(&it, collected) && bson_iter_next(&it) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
       bson_iter_recurse(&it, &p)) {
      while (bson_iter_next(&p)) {
         if (strcmp(bson_iter_key(&p), "path") == 0) {
            path = bson_iter_utf8(&p, NULL);
         } else if (strcmp(bson_iter_key(&p), "reason") == 0) {
            reason = bson_iter_utf8(&p, NULL);
         }
      }
   }
   if (n > 1) {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID,
                      "%s: %s: %s (and %u more problems)", what, path, reason, n - 1);
   } else {
      flora_error_set(error, FLORA_DOMAIN_VALIDATION, FLORA_ERR_INVALID, "%s: %s: %s", what, path,
                      reason);
   }
   if (problems && bson_iter_init(&it, collected)) {
      while (bson_iter_next(&it)) {
         char key[16];
         const char *k;

         bson_uint32_to_string(flora__delivery_count(problems), &k, key, sizeof key);
         bson_append_iter(problems, k, -1, &it);
      }
   }
   return false;
}

/* ---- geometry ---------------------------------------------------------------------- */

static bool
position(const bson_iter_t *pos, double *lon, double *lat)
{
   bson_iter_t c;
   double v[2];
   int n = 0;

   if (!BSON_ITER_HOLDS_ARRAY(pos) || !bson_iter_recurse(pos, &c)) {
      return false;
   }
   while (bson_iter_next(&c)) {
      if (!BSON_ITER_HOLDS_NUMBER(&c)) {
         return false;
      }
      if (n < 2) {
         v[n] = bson_iter_as_double(&c);
      }
      n++;
   }
   if (n < 2 || n > 3) {
      return false;
   }
   *lon = v[0];
   *lat = v[1];
   return true;
}

/* 1 inside, 0 outside, 2 on the boundary, -1 malformed. Even-odd ray casting (W. R.
 * Franklin's PNPOLY) with an explicit on-segment test first. */
static int
ring_locate(bson_iter_t *ring, double x, double y)
{
   bson_iter_t it;
   double px = 0, py = 0;
   bool first = true, inside = false;

   if (!BSON_ITER_HOLDS_ARRAY(ring) || !bson_iter_recurse(ring, &it)) {
      return -1;
   }
   while (bson_iter_next(&it)) {
      double qx, qy;

      if (!position(&it, &qx, &qy)) {
         return -1;
      }
      if (first) {
         first = false;
      } else {
         double cross = (qx - px) * (y - py) - (qy - py) * (x - px);

         if (fabs(cross) <= EDGE_EPSILON && x >= fmin(px, qx) - EDGE_EPSILON &&
             x <= fmax(px, qx) + EDGE_EPSILON && y >= fmin(py, qy) - EDGE_EPSILON &&
             y <= fmax(py, qy) + EDGE_EPSILON) {
            return 2;
         }
         if (((qy > y) != (py > y)) && (x < (px - qx) * (y - qy) / (py - qy) + qx)) {
            inside = !inside;
         }
      }
      px = qx;
      py = qy;
   }
   return inside ? 1 : 0;
}

/* polygon: array of rings (outer first, then holes). 1 in, 0 out, -1 malformed. */
static int
polygon_contains(bson_iter_t *polygon, double x, double y)
{
   bson_iter_t rings;
   int index = 0;

   if (!BSON_ITER_HOLDS_ARRAY(polygon) || !bson_iter_recurse(polygon, &rings)) {
      return -1;
   }
   while (bson_iter_next(&rings)) {
      int where = ring_locate(&rings, x, y);

      if (where < 0) {
         return -1;
      }
      if (where == 2) {
         return 1; /* on the outer ring or on a hole's edge: the zone's boundary */
      }
      if (index == 0 && where == 0) {
         return 0;
      }
      if (index > 0 && where == 1) {
         return 0; /* strictly inside a hole */
      }
      index++;
   }
   return index > 0 ? 1 : -1;
}

bool
flora_delivery_geometry_contains(const bson_t *geometry, double lon, double lat, bool *inside,
                                 flora_error_t *error)
{
   bson_iter_t type, coords, polys;
   int r = -1;

   FLORA_ASSERT_ARG(geometry);
   FLORA_ASSERT_ARG(inside);
   *inside = false;
   if (bson_iter_init_find(&type, geometry, "type") && BSON_ITER_HOLDS_UTF8(&type) &&
       bson_iter_init_find(&coords, geometry, "coordinates")) {
      const char *t = bson_iter_utf8(&type, NULL);

      if (strcmp(t, "Polygon") == 0) {
         r = polygon_contains(&coords, lon, lat);
      } else if (strcmp(t, "MultiPolygon") == 0 && BSON_ITER_HOLDS_ARRAY(&coords) &&
                 bson_iter_recurse(&coords, &polys)) {
         r = 0;
         while (r == 0 && bson_iter_next(&polys)) {
            r = polygon_contains(&polys, lon, lat);
         }
      }
   }
   if (r < 0) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID,
                      "not a GeoJSON Polygon or MultiPolygon");
      return false;
   }
   *inside = r == 1;
   return true;
}

/* ---- the zones file ---------------------------------------------------------------- */

typedef struct checker {
   bson_t problems;
   char prefix[160]; /* "zones.3" */
   char label[96];   /* "zone inner: " */
} checker_t;

static void
problem(checker_t *c, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
problem(checker_t *c, const char *field, const char *fmt, ...)
{
   char path[256], reason[400], msg[300];
   va_list ap;

   va_start(ap, fmt);
   vsnprintf(msg, sizeof msg, fmt, ap);
   va_end(ap);
   snprintf(path, sizeof path, "%s%s%s", c->prefix, *c->prefix && *field ? "." : "", field);
   snprintf(reason, sizeof reason, "%s%s", c->label, msg);
   flora_schema_problem(&c->problems, path, reason);
}

static bool
valid_id(const char *s)
{
   size_t n = strlen(s);

   if (n == 0 || n >= FLORA__DELIVERY_ID_MAX) {
      return false;
   }
   for (size_t i = 0; i < n; i++) {
      char ch = s[i];

      if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_')) {
         return false;
      }
   }
   return true;
}

/* A whole non-negative number of kopecks (int32/int64, or a double with no fraction). */
static bool
money(checker_t *c, const bson_t *doc, const char *field, bool required, int64_t *out)
{
   bson_iter_t it;
   double d;

   if (!bson_iter_init_find(&it, doc, field) || BSON_ITER_HOLDS_NULL(&it)) {
      if (required) {
         problem(c, field, "is required (whole kopecks >= 0)");
      }
      return false;
   }
   d = BSON_ITER_HOLDS_DOUBLE(&it) ? bson_iter_double(&it) : 0.5;
   if (BSON_ITER_HOLDS_INT(&it)) {
      *out = bson_iter_as_int64(&it);
   } else if (d == floor(d) && fabs(d) < 1e15) {
      *out = (int64_t) d;
   } else {
      problem(c, field, "must be a whole number of kopecks");
      return false;
   }
   if (*out < 0) {
      problem(c, field, "must not be negative");
      return false;
   }
   return true;
}

static bool
number(checker_t *c, const bson_t *doc, const char *field, bool required, double *out)
{
   bson_iter_t it;

   if (!bson_iter_init_find(&it, doc, field) || BSON_ITER_HOLDS_NULL(&it)) {
      if (required) {
         problem(c, field, "is required (a number >= 0)");
      }
      return false;
   }
   if (!BSON_ITER_HOLDS_NUMBER(&it) || !isfinite(bson_iter_as_double(&it))) {
      problem(c, field, "must be a number");
      return false;
   }
   *out = bson_iter_as_double(&it);
   if (*out < 0) {
      problem(c, field, "must not be negative");
      return false;
   }
   return true;
}

static const char *
string_field(checker_t *c, const bson_t *doc, const char *field, bool required)
{
   bson_iter_t it;

   if (!bson_iter_init_find(&it, doc, field)) {
      if (required) {
         problem(c, field, "is required");
      }
      return NULL;
   }
   if (!BSON_ITER_HOLDS_UTF8(&it)) {
      problem(c, field, "must be a string");
      return NULL;
   }
   return bson_iter_utf8(&it, NULL);
}

static bool
check_point(checker_t *c, bson_iter_t *it, const char *field, double *lon, double *lat)
{
   if (!position(it, lon, lat)) {
      problem(c, field, "must be a position [longitude, latitude]");
      return false;
   }
   if (*lon < -180 || *lon > 180) {
      problem(c, field, "longitude %g is out of range [-180, 180]", *lon);
      return false;
   }
   if (*lat < -90 || *lat > 90) {
      problem(c, field, "latitude %g is out of range [-90, 90]", *lat);
      return false;
   }
   return true;
}

static void
check_ring(checker_t *c, bson_iter_t *ring, const char *path)
{
   bson_iter_t it;
   double fx = 0, fy = 0, lx = 0, ly = 0;
   uint32_t n = 0;
   bool ok = true;

   if (!BSON_ITER_HOLDS_ARRAY(ring) || !bson_iter_recurse(ring, &it)) {
      problem(c, path, "a linear ring must be an array of positions");
      return;
   }
   while (bson_iter_next(&it)) {
      char p[200];
      double x, y;

      snprintf(p, sizeof p, "%s.%u", path, n);
      if (!check_point(c, &it, p, &x, &y)) {
         ok = false;
      } else if (n == 0) {
         fx = x;
         fy = y;
      }
      lx = x;
      ly = y;
      n++;
   }
   if (n < 4) {
      problem(c, path, "a linear ring needs at least 4 positions (RFC 7946 3.1.6), has %u", n);
   } else if (ok && (fx != lx || fy != ly)) {
      problem(c, path, "a linear ring must be closed: the last position must equal the first "
                       "(RFC 7946 3.1.6)");
   }
}

static void
check_polygon_coords(checker_t *c, bson_iter_t *poly, const char *path)
{
   bson_iter_t rings;
   uint32_t n = 0;

   if (!BSON_ITER_HOLDS_ARRAY(poly) || !bson_iter_recurse(poly, &rings)) {
      problem(c, path, "polygon coordinates must be an array of linear rings");
      return;
   }
   while (bson_iter_next(&rings)) {
      char p[200];

      snprintf(p, sizeof p, "%s.%u", path, n++);
      check_ring(c, &rings, p);
   }
   if (n == 0) {
      problem(c, path, "a polygon needs an outer ring");
   }
}

static void
check_geometry(checker_t *c, bson_iter_t *geom)
{
   bson_t doc;
   bson_iter_t type, coords, polys;
   const uint8_t *data;
   uint32_t len;
   const char *t;

   if (!BSON_ITER_HOLDS_DOCUMENT(geom)) {
      problem(c, "polygon", "must be a GeoJSON Polygon or MultiPolygon object");
      return;
   }
   bson_iter_document(geom, &len, &data);
   bson_init_static(&doc, data, len);
   if (!bson_iter_init_find(&type, &doc, "type") || !BSON_ITER_HOLDS_UTF8(&type)) {
      problem(c, "polygon.type", "is required: Polygon or MultiPolygon");
      return;
   }
   t = bson_iter_utf8(&type, NULL);
   if (!bson_iter_init_find(&coords, &doc, "coordinates")) {
      problem(c, "polygon.coordinates", "is required");
      return;
   }
   if (strcmp(t, "Polygon") == 0) {
      check_polygon_coords(c, &coords, "polygon.coordinates");
   } else if (strcmp(t, "MultiPolygon") == 0) {
      uint32_t n = 0;

      if (!BSON_ITER_HOLDS_ARRAY(&coords) || !bson_iter_recurse(&coords, &polys)) {
         problem(c, "polygon.coordinates", "must be an array of polygons");
         return;
      }
      while (bson_iter_next(&polys)) {
         char p[64];

         snprintf(p, sizeof p, "polygon.coordinates.%u", n++);
         check_polygon_coords(c, &polys, p);
      }
      if (n == 0) {
         problem(c, "polygon.coordinates", "a MultiPolygon needs at least one polygon");
      }
   } else {
      problem(c, "polygon.type", "must be Polygon or MultiPolygon, not %s", t);
   }
}

typedef struct location {
   const char *id;
   const char *name;
   double lon, lat;
} location_t;

#define MAX_LOCATIONS 64
#define MAX_ZONES 1000

static void
check_zone(checker_t *c, const bson_t *z, int priority, const location_t *locs, size_t n_locs,
           bson_t *out)
{
   const char *loc_id = string_field(c, z, "location", true);
   const char *name = string_field(c, z, "name", false);
   const location_t *loc = NULL;
   bson_iter_t poly, ring;
   bool has_poly = bson_iter_init_find(&poly, z, "polygon");
   bool has_ring = bson_iter_init_find(&ring, z, "ring");
   int64_t base = 0, per_km = 0, min_order = 0, free_from = -1;
   double beyond = 0, max_km = 0, inner = 0, outer = 0;
   bson_iter_t it;
   static const char *const known[] = {"id", "name", "location", "polygon", "ring", "basePrice",
                                       "perKmPrice", "perKmBeyondKm", "minOrder", "freeFrom",
                                       "maxDistanceKm", NULL};

   bson_iter_init(&it, z);
   while (bson_iter_next(&it)) {
      bool ok = false;

      for (size_t i = 0; known[i]; i++) {
         ok = ok || strcmp(known[i], bson_iter_key(&it)) == 0;
      }
      if (!ok) {
         problem(c, bson_iter_key(&it), "unknown field");
      }
   }
   for (size_t i = 0; loc_id && i < n_locs; i++) {
      if (strcmp(locs[i].id, loc_id) == 0) {
         loc = &locs[i];
      }
   }
   if (loc_id && !loc) {
      problem(c, "location", "no location has id %s", loc_id);
   }
   if (has_poly == has_ring) {
      problem(c, "polygon", "a zone has exactly one of polygon (GeoJSON) or ring {innerKm, outerKm}");
   } else if (has_poly) {
      check_geometry(c, &poly);
   } else if (!BSON_ITER_HOLDS_DOCUMENT(&ring)) {
      problem(c, "ring", "must be an object {innerKm, outerKm}");
   } else {
      bson_t rd;
      const uint8_t *data;
      uint32_t len;
      char saved[sizeof c->prefix];

      bson_iter_document(&ring, &len, &data);
      bson_init_static(&rd, data, len);
      memcpy(saved, c->prefix, sizeof saved);
      snprintf(c->prefix, sizeof c->prefix, "%.150s.ring", saved);
      if (!bson_iter_init_find(&it, &rd, "innerKm")) {
         inner = 0;
      } else if (!number(c, &rd, "innerKm", false, &inner)) {
         inner = -1;
      }
      if (number(c, &rd, "outerKm", true, &outer) && inner >= 0 && outer <= inner) {
         problem(c, "outerKm", "must be greater than innerKm (%g)", inner);
      }
      memcpy(c->prefix, saved, sizeof saved);
   }
   money(c, z, "basePrice", true, &base);
   if (!money(c, z, "perKmPrice", false, &per_km)) {
      per_km = 0;
   }
   if (!number(c, z, "perKmBeyondKm", false, &beyond)) {
      beyond = 0;
   }
   if (!money(c, z, "minOrder", false, &min_order)) {
      min_order = 0;
   }
   if (!money(c, z, "freeFrom", false, &free_from)) {
      free_from = -1;
   }
   if (number(c, z, "maxDistanceKm", true, &max_km) && max_km <= 0) {
      problem(c, "maxDistanceKm", "must be greater than 0");
   }
   if (!out) {
      return;
   }
   bson_init(out);
   bson_iter_init_find(&it, z, "id");
   BSON_APPEND_UTF8(out, "_id", bson_iter_utf8(&it, NULL));
   BSON_APPEND_UTF8(out, "name", name ? name : bson_iter_utf8(&it, NULL));
   BSON_APPEND_INT32(out, "priority", priority);
   if (loc) {
      bson_t ld, pt;

      BSON_APPEND_DOCUMENT_BEGIN(out, "location", &ld);
      BSON_APPEND_UTF8(&ld, "id", loc->id);
      BSON_APPEND_UTF8(&ld, "name", loc->name ? loc->name : loc->id);
      BSON_APPEND_ARRAY_BEGIN(&ld, "point", &pt);
      BSON_APPEND_DOUBLE(&pt, "0", loc->lon);
      BSON_APPEND_DOUBLE(&pt, "1", loc->lat);
      bson_append_array_end(&ld, &pt);
      bson_append_document_end(out, &ld);
   }
   if (has_poly) {
      bson_append_iter(out, "polygon", -1, &poly);
   } else {
      bson_t rd;

      BSON_APPEND_DOCUMENT_BEGIN(out, "ring", &rd);
      BSON_APPEND_DOUBLE(&rd, "innerKm", inner < 0 ? 0 : inner);
      BSON_APPEND_DOUBLE(&rd, "outerKm", outer);
      bson_append_document_end(out, &rd);
   }
   BSON_APPEND_INT64(out, "basePrice", base);
   BSON_APPEND_INT64(out, "perKmPrice", per_km);
   BSON_APPEND_DOUBLE(out, "perKmBeyondKm", beyond);
   BSON_APPEND_INT64(out, "minOrder", min_order);
   if (free_from >= 0) {
      BSON_APPEND_INT64(out, "freeFrom", free_from);
   } else {
      BSON_APPEND_NULL(out, "freeFrom");
   }
   BSON_APPEND_DOUBLE(out, "maxDistanceKm", max_km);
}

bool
flora_delivery_zones_parse(const bson_t *file, bson_t *zones, bson_t *problems, flora_error_t *error)
{
   checker_t c = {.prefix = "", .label = ""};
   location_t locs[MAX_LOCATIONS];
   size_t n_locs = 0;
   bson_iter_t it, arr;
   const char *ids[MAX_ZONES];
   size_t n_ids = 0;
   bool ok;

   FLORA_ASSERT_ARG(file);
   FLORA_ASSERT_ARG(zones);
   bson_init(zones);
   bson_init(&c.problems);
   bson_iter_init(&it, file);
   while (bson_iter_next(&it)) {
      if (strcmp(bson_iter_key(&it), "locations") != 0 && strcmp(bson_iter_key(&it), "zones") != 0) {
         problem(&c, bson_iter_key(&it), "unknown field (a zones file has locations and zones)");
      }
   }
   if (!bson_iter_init_find(&it, file, "locations") || !BSON_ITER_HOLDS_ARRAY(&it) ||
       !bson_iter_recurse(&it, &arr)) {
      problem(&c, "locations", "is required: an array of {id, name, point: [lon, lat]}");
   } else {
      while (bson_iter_next(&arr)) {
         bson_t ld;
         const uint8_t *data;
         uint32_t len;
         bson_iter_t pt;
         location_t *l = &locs[n_locs];

         snprintf(c.prefix, sizeof c.prefix, "locations.%s", bson_iter_key(&arr));
         if (n_locs == MAX_LOCATIONS) {
            problem(&c, "", "at most %d locations", MAX_LOCATIONS);
            break;
         }
         if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) {
            problem(&c, "", "must be an object");
            continue;
         }
         bson_iter_document(&arr, &len, &data);
         bson_init_static(&ld, data, len);
         l->id = string_field(&c, &ld, "id", true);
         l->name = string_field(&c, &ld, "name", false);
         if (l->id && !valid_id(l->id)) {
            problem(&c, "id", "must be 1-31 of A-Z a-z 0-9 _ -");
            l->id = NULL;
         }
         if (!bson_iter_init_find(&pt, &ld, "point")) {
            problem(&c, "point", "is required: [longitude, latitude]");
         } else if (check_point(&c, &pt, "point", &l->lon, &l->lat) && l->id) {
            n_locs++;
         }
      }
   }
   if (!bson_iter_init_find(&it, file, "zones") || !BSON_ITER_HOLDS_ARRAY(&it) ||
       !bson_iter_recurse(&it, &arr)) {
      snprintf(c.prefix, sizeof c.prefix, "%s", "");
      problem(&c, "zones", "is required: an array of zones");
   } else {
      int priority = 0;

      while (bson_iter_next(&arr)) {
         bson_t zd, out;
         const uint8_t *data;
         uint32_t len;
         const char *id;

         snprintf(c.prefix, sizeof c.prefix, "zones.%s", bson_iter_key(&arr));
         c.label[0] = '\0';
         if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) {
            problem(&c, "", "must be an object");
            continue;
         }
         bson_iter_document(&arr, &len, &data);
         bson_init_static(&zd, data, len);
         id = string_field(&c, &zd, "id", true);
         if (id && !valid_id(id)) {
            problem(&c, "id", "must be 1-31 of A-Z a-z 0-9 _ -");
            id = NULL;
         }
         if (!id) {
            continue;
         }
         snprintf(c.label, sizeof c.label, "zone %s: ", id);
         for (size_t i = 0; i < n_ids; i++) {
            if (strcmp(ids[i], id) == 0) {
               problem(&c, "id", "duplicate zone id");
            }
         }
         if (n_ids == MAX_ZONES) {
            problem(&c, "", "at most %d zones", MAX_ZONES);
            break;
         }
         ids[n_ids++] = id;
         check_zone(&c, &zd, priority, locs, n_locs, &out);
         {
            char key[16];
            const char *k;

            bson_uint32_to_string((uint32_t) priority, &k, key, sizeof key);
            BSON_APPEND_DOCUMENT(zones, k, &out);
         }
         bson_destroy(&out);
         priority++;
      }
      if (priority == 0 && bson_empty(&c.problems)) {
         c.prefix[0] = '\0';
         problem(&c, "zones", "must have at least one zone");
      }
   }
   ok = bson_empty(&c.problems);
   if (!ok) {
      bson_reinit(zones);
      flora__delivery_problems_fail(&c.problems, problems, "zones file", error);
   }
   bson_destroy(&c.problems);
   return ok;
}

typedef struct replace_ctx {
   const bson_t *zones;
   int64_t count;
} replace_ctx_t;

static bool
replace_zones(flora_store_t *txn, void *ctx_, flora_error_t *error)
{
   replace_ctx_t *ctx = ctx_;
   bson_t empty = BSON_INITIALIZER;
   bson_iter_t it;
   bool ok;

   ctx->count = 0;
   ok = flora_store_delete_many(txn, "delivery_zones", &empty, NULL, NULL, error);
   bson_iter_init(&it, ctx->zones);
   while (ok && bson_iter_next(&it)) {
      bson_t z;
      const uint8_t *data;
      uint32_t len;

      bson_iter_document(&it, &len, &data);
      bson_init_static(&z, data, len);
      ok = flora_store_insert_one(txn, "delivery_zones", &z, NULL, NULL, error);
      ctx->count++;
   }
   bson_destroy(&empty);
   return ok;
}

bool
flora_delivery_zones_load_json(flora_store_t *store, const char *json, size_t len, bson_t *problems,
                               int64_t *n_zones, flora_error_t *error)
{
   bson_error_t berr;
   bson_t *file = NULL;
   bson_t zones = BSON_INITIALIZER;
   replace_ctx_t ctx = {.zones = &zones};
   bool ok = false;

   FLORA_ASSERT_ARG(store);
   FLORA_ASSERT_ARG(json);
   file = bson_new_from_json((const uint8_t *) json, (ssize_t) len, &berr);
   if (!file) {
      flora_error_set(error, FLORA_DOMAIN_INPUT, FLORA_ERR_INVALID, "zones file is not JSON: %s",
                      berr.message);
      goto cleanup;
   }
   bson_destroy(&zones);
   if (!flora_delivery_zones_parse(file, &zones, problems, error)) {
      goto cleanup;
   }
   ok = flora_store_with_transaction(store, replace_zones, &ctx, error);
   if (ok && n_zones) {
      *n_zones = ctx.count;
   }
cleanup:
   bson_destroy(file);
   bson_destroy(&zones);
   return ok;
}
