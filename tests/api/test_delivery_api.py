"""Delivery over HTTP: POST /api/v1/delivery/quote and GET /api/v1/delivery/slots with the
zones and rules of tests/data/delivery loaded by `flora delivery ... load`, bad input (422
naming the field), a bad zones file that changes nothing, and the external services against
their fakes (tests/fakes/, started here on loopback): DaData's geocoder and Yandex
Delivery's price check, with the requests they received, timeouts, 500s and fallbacks.
Responses are validated against docs/openapi.json."""
import datetime
import json
import os
import subprocess
import sys
import unittest
import urllib.request
from zoneinfo import ZoneInfo

from floratest import Flora, SOURCE_DIR
from test_openapi import load_doc, resolve, validator_for

DATA = os.path.join(SOURCE_DIR, "tests", "data", "delivery")
FAKES = os.path.join(SOURCE_DIR, "tests", "fakes")
HOLE = {"lat": 55.75, "lon": 37.62}       # ring10: 0.66 km from the shop, base 50000
SQUARE = {"lat": 55.745, "lon": 37.605}   # square: 30000 + 1311 per km beyond 1 km
KM50 = {"lat": 55.7558, "lon": 38.4176}   # outside every zone, 50.06 km


def moscow_day(offset):
    return (datetime.datetime.now(ZoneInfo("Europe/Moscow")).date()
            + datetime.timedelta(days=offset)).isoformat()


def plain_day(offset):
    """A day at least `offset` days ahead that is no holiday or blocked date of the fixture."""
    while True:
        day = moscow_day(offset)
        if day[5:] not in ("02-13", "02-14", "03-07", "03-08") and day != "2027-02-20":
            return day
        offset += 1


class Fake:
    """A provider fake on loopback: python3 tests/fakes/<script>."""

    def __init__(self, script):
        self.proc = subprocess.Popen([sys.executable, os.path.join(FAKES, script)], cwd=FAKES,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise AssertionError("fake %s did not start: %r" % (script, line))
        self.base = "http://127.0.0.1:%d" % int(line.split()[1])

    def control(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else (b"" if path != "/__requests" else None)
        req = urllib.request.Request(self.base + path, data=data,
                                     method="GET" if data is None else "POST")
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())

    def requests(self):
        return self.control("/__requests")

    def mode(self, mode):
        self.control("/__mode", {"mode": mode})

    def reset(self):
        self.control("/__reset", {})

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class DeliveryCase(unittest.TestCase):
    extra_env = {}

    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()
        cls.flora = Flora(extra_env=cls.extra_env_for())
        cls.flora.run("migrate", "up")
        cls.flora.run("delivery", "zones", "load", os.path.join(DATA, "zones.json"))
        cls.flora.run("delivery", "rules", "load", os.path.join(DATA, "rules.json"))
        cls.flora.start()

    @classmethod
    def extra_env_for(cls):
        return cls.extra_env

    @classmethod
    def tearDownClass(cls):
        cls.flora.close()

    def call(self, method, template, path, body=None, status=200):
        got, headers, payload = self.flora.request(method, path, body=body)
        self.assertEqual(got, status, payload)
        op = self.doc["paths"][template][method.lower()]
        response = resolve(self.doc, op["responses"][str(got)])
        schema = response["content"]["application/json"]["schema"]
        validator_for(self.doc, schema).validate(payload)
        return payload

    def quote(self, body, status=200):
        return self.call("POST", "/api/v1/delivery/quote", "/api/v1/delivery/quote", body, status)


class QuoteAndSlots(DeliveryCase):
    def test_quote_in_a_zone(self):
        day = plain_day(2)
        q = self.quote(dict(HOLE, subtotal=250000, date=day, slot="12-15"))
        self.assertTrue(q["deliverable"], q)
        self.assertEqual(q["zone"], "ring10")
        self.assertEqual(q["breakdown"]["base"], 50000)
        self.assertEqual(q["price"], 50000)
        self.assertEqual([s["id"] for s in q["slots"]][:3], ["09-12", "12-15", "15-18"])
        q = self.quote(dict(SQUARE, subtotal=600000, date=day, slot="12-15"))
        self.assertEqual((q["zone"], q["price"], q["breakdown"]["discount"]), ("square", 0, 31311))
        q = self.quote(dict(HOLE, subtotal=250000, date=day, exactTime="14:30"))
        self.assertEqual(q["breakdown"]["surcharges"], [{"kind": "exact_time", "amount": 50000}])

    def test_not_deliverable_is_200_with_reason(self):
        day = plain_day(2)
        q = self.quote(dict(KM50, subtotal=300000, date=day, slot="12-15"))
        self.assertEqual((q["deliverable"], q["reason"]), (False, "outside_zones"))
        q = self.quote(dict(HOLE, subtotal=100, date=day, slot="12-15"))
        self.assertEqual((q["deliverable"], q["reason"]), (False, "below_minimum_order"))
        q = self.quote(dict(HOLE, subtotal=250000, date=moscow_day(0), slot="09-12"))
        # 09-12 today: open only when it is before 07:00 in Moscow
        now = datetime.datetime.now(ZoneInfo("Europe/Moscow"))
        if now.hour >= 7:
            self.assertEqual((q["deliverable"], q["reason"]), (False, "past_cutoff"))

    def test_bad_input_names_the_field(self):
        day = plain_day(2)
        cases = [
            (dict(lat=91, lon=37.6, subtotal=1, date=day), "lat"),
            (dict(lat=55.7, lon=-181, subtotal=1, date=day), "lon"),
            (dict(lat=55.7, lon=37.6, date=day), "subtotal"),
            (dict(HOLE, subtotal=1, date="2026-02-30"), "date"),
            (dict(HOLE, subtotal=1, date="tomorrow"), "date"),
            (dict(HOLE, subtotal=1, date=moscow_day(-1)), "date"),
            (dict(HOLE, subtotal=1, date=moscow_day(31)), "date"),
            (dict(HOLE, subtotal=1, date=day, slot="10-11"), "slot"),
            (dict(HOLE, subtotal=1, date=day, exactTime="9am"), "exactTime"),
        ]
        for body, field in cases:
            err = self.quote(body, 422)
            self.assertEqual(err["error"]["field"], field, (body, err))
        status, _, err = self.flora.request("POST", "/api/v1/delivery/quote", raw=b"{not json",
                                            headers={"Content-Type": "application/json"})
        self.assertEqual(status, 400, err)

    def test_slots_of_a_day(self):
        day = plain_day(3)
        page = self.call("GET", "/api/v1/delivery/slots", "/api/v1/delivery/slots?date=" + day)
        self.assertEqual(page["date"], day)
        self.assertEqual(len([s for s in page["slots"] if s["id"] == "12-15"]), 1)
        slot = [s for s in page["slots"] if s["id"] == "12-15"][0]
        self.assertEqual((slot["capacity"], slot["remaining"], slot["available"]), (3, 3, True))
        self.call("GET", "/api/v1/delivery/slots", "/api/v1/delivery/slots", status=400)
        err = self.call("GET", "/api/v1/delivery/slots", "/api/v1/delivery/slots?date=2026-13-01",
                        status=422)
        self.assertEqual(err["error"]["field"], "date")
        self.call("GET", "/api/v1/delivery/slots", "/api/v1/delivery/slots?date=" + moscow_day(45),
                  status=422)

    def test_bad_zones_file_changes_nothing(self):
        res = self.flora.run("delivery", "zones", "load", os.path.join(DATA, "bad_zones.json"),
                             check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("zone open", res.stderr)
        self.assertIn("zone lat: latitude 95 is out of range", res.stderr)
        self.assertIn("nothing changed", res.stderr)
        q = self.quote(dict(HOLE, subtotal=250000, date=plain_day(2), slot="12-15"))
        self.assertEqual(q["zone"], "ring10")


class Geocoder(DeliveryCase):
    @classmethod
    def extra_env_for(cls):
        cls.fake = Fake("dadata_fake.py")
        return {"FLORA_DELIVERY_GEOCODER": "dadata",
                "FLORA_DELIVERY_GEOCODER_URL": cls.fake.base + "/suggestions/api/4_1/rs/suggest/address",
                "FLORA_DELIVERY_GEOCODER_KEY": "test-dadata-key",
                "FLORA_DELIVERY_GEOCODER_TIMEOUT_MS": "500"}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.fake.close()

    def setUp(self):
        self.fake.reset()

    def test_address_is_geocoded_once_then_cached(self):
        body = {"address": "Москва, Красная площадь, 1", "subtotal": 250000, "date": plain_day(2)}
        q = self.quote(body)
        self.assertTrue(q["deliverable"], q)
        self.assertEqual(q["zone"], "square")  # Red Square: north of the square's hole
        self.assertAlmostEqual(q["lat"], 55.75393, places=5)
        reqs = self.fake.requests()
        self.assertEqual(len(reqs), 1)
        r = reqs[0]
        self.assertEqual((r["method"], r["path"]), ("POST", "/suggestions/api/4_1/rs/suggest/address"))
        self.assertEqual(r["headers"]["authorization"], "Token test-dadata-key")
        self.assertEqual(r["headers"]["content-type"], "application/json")
        self.assertEqual(r["headers"]["accept"], "application/json")
        self.assertEqual(r["body"], {"query": "Москва, Красная площадь, 1", "count": 1})
        # the same address, spelt with other spaces and case: from the cache
        body["address"] = "москва,  Красная площадь, 1 "
        self.assertEqual(self.quote(body)["zone"], "square")
        self.assertEqual(len(self.fake.requests()), 1)

    def test_unknown_address_and_missing_coordinates(self):
        for address in ("Нигде, улица Несуществующая, 0", "Москва, деревня без координат"):
            q = self.quote({"address": address, "subtotal": 250000, "date": plain_day(2)})
            self.assertEqual((q["deliverable"], q["reason"]), (False, "address_not_found"), address)

    def test_timeout_and_500_fall_back_to_coordinates(self):
        for mode in ("slow", "error500", "garbage"):
            self.fake.mode(mode)
            q = self.quote({"address": "Москва, Фрунзенская набережная %s" % mode, "subtotal": 250000,
                            "date": plain_day(2)})
            self.assertEqual((q["deliverable"], q["reason"]), (False, "geocoder_unavailable"), mode)
            # coordinates given directly need no geocoder
            q = self.quote(dict(HOLE, address="Москва, Фрунзенская набережная %s" % mode,
                                subtotal=250000, date=plain_day(2)))
            self.assertTrue(q["deliverable"], q)
        self.assertEqual(len(self.fake.requests()), 3)


class Courier(DeliveryCase):
    @classmethod
    def extra_env_for(cls):
        cls.fake = Fake("yandex_delivery_fake.py")
        return {"FLORA_DELIVERY_COURIER": "yandex",
                "FLORA_DELIVERY_COURIER_URL": cls.fake.base + "/b2b/cargo/integration/v2/check-price",
                "FLORA_DELIVERY_COURIER_KEY": "test-yandex-token",
                "FLORA_DELIVERY_COURIER_TIMEOUT_MS": "500"}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.fake.close()

    def setUp(self):
        self.fake.reset()

    def test_outside_the_zones_the_courier_prices_it(self):
        q = self.quote(dict(KM50, subtotal=300000, date=plain_day(2), slot="12-15"))
        self.assertTrue(q["deliverable"], q)
        self.assertEqual(q["zone"], "courier")
        self.assertEqual(q["price"], 81000)  # the fake's 300 + 10 per started km, 51 km
        reqs = self.fake.requests()
        self.assertEqual(len(reqs), 1)
        r = reqs[0]
        self.assertEqual((r["method"], r["path"]), ("POST", "/b2b/cargo/integration/v2/check-price"))
        self.assertEqual(r["headers"]["authorization"], "Bearer test-yandex-token")
        self.assertEqual(r["headers"]["accept-language"], "ru")
        self.assertEqual(r["body"]["route_points"],
                         [{"coordinates": [37.6176, 55.7558]}, {"coordinates": [38.4176, 55.7558]}])
        self.assertEqual(r["body"]["requirements"], {"taxi_class": "courier"})
        # inside a zone the courier is not asked
        self.quote(dict(HOLE, subtotal=300000, date=plain_day(2), slot="12-15"))
        self.assertEqual(len(self.fake.requests()), 1)

    def test_courier_failures_mean_not_deliverable(self):
        for mode in ("slow", "error500", "garbage"):
            self.fake.mode(mode)
            q = self.quote(dict(KM50, subtotal=300000, date=plain_day(2), slot="12-15"))
            self.assertEqual((q["deliverable"], q["reason"]), (False, "outside_zones"), mode)
        self.assertEqual(len(self.fake.requests()), 3)


if __name__ == "__main__":
    unittest.main()
