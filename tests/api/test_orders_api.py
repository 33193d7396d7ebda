"""Cart, checkout, orders, coupons and reviews over HTTP on the real binary, and the
SIGKILL test: flora killed in the middle of a stream of checkouts leaves no half-written
order, and stock plus ordered quantities equal the starting stock."""
import random
import re
import signal
import threading
import time
import unittest
import uuid

from floratest import Flora
from test_openapi import load_doc, resolve, validator_for

DOC = load_doc()
TEMPLATES = [(re.compile("^" + re.sub(r"{\w+}", "[^/]+", t) + "$"), t) for t in DOC["paths"]]


def check_documented(testcase, method, path, status, headers, payload):
    """Every answer of these routes validates against docs/openapi.json."""
    path = path.split("?")[0]
    matches = [t for rx, t in TEMPLATES if rx.match(path)]
    # A literal segment wins over a {parameter} ("by-number" vs "{id}").
    matches.sort(key=lambda t: t.count("{"))
    testcase.assertTrue(matches, "undocumented path " + path)
    op = DOC["paths"][matches[0]].get(method.lower())
    testcase.assertIsNotNone(op, (method, matches[0]))
    testcase.assertIn(str(status), op["responses"], (method, matches[0], status, payload))
    content = resolve(DOC, op["responses"][str(status)]).get("content")
    if content and headers.get("content-type", "").startswith("application/json"):
        validator_for(DOC, content["application/json"]["schema"]).validate(payload)

FEE = 50000  # delivery.flat_fee default


def checkout_body(sku, qty=1, email="anna@example.com", coupon=None, **extra):
    body = {
        "customer": {"name": "Анна", "email": email, "phone": "+7 916 123-45-67"},
        "items": [{"sku": sku, "quantity": qty}],
        "delivery": {"address": {"text": "Москва, Тверская 1"}, "date": "2026-12-30", "slot": "09-12",
                     "cardMessage": "С любовью", "callFirst": True},
    }
    if coupon:
        body["couponCode"] = coupon
    body.update(extra)
    return body


class OrdersApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.flora = Flora()
        cls.flora.start()

    @classmethod
    def tearDownClass(cls):
        cls.flora.close()

    def req(self, method, path, body=None, token=None, cart=None, admin=False, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if cart:
            h["X-Cart-Token"] = cart
        status, rh, payload = self.flora.request(method, path, body=body, headers=h, admin=admin)
        if not path.startswith("/api/v1/auth") and not path.startswith("/api/v1/admin/products"):
            check_documented(self, method, path, status, rh, payload)
        return status, rh, payload

    def product(self, sku, stock, price=100000):
        status, _, body = self.req("POST", "/api/v1/admin/products", admin=True, body={
            "sku": sku, "name": "Букет " + sku,
            "variants": [{"sku": sku + "-M", "name": "M", "price": price, "stock": stock}]})
        self.assertEqual(status, 201, body)
        return body

    def stock(self, slug):
        status, _, body = self.req("GET", "/api/v1/products/" + slug)
        self.assertEqual(status, 200, body)
        return body["variants"][0]["stock"]

    def user(self, email):
        status, _, body = self.req("POST", "/api/v1/auth/register",
                                   body={"email": email, "password": "correct horse battery", "name": "Покупатель"})
        self.assertIn(status, (200, 201), body)
        status, _, body = self.req("POST", "/api/v1/auth/login",
                                   body={"email": email, "password": "correct horse battery"})
        self.assertEqual(status, 200, body)
        return body["token"]

    def test_guest_cart_checkout_idempotency_and_privacy(self):
        p = self.product("G1", 5)
        status, _, cart = self.req("POST", "/api/v1/cart/items", body={"sku": "G1-M", "quantity": 2})
        self.assertEqual(status, 201, cart)
        token = cart["cartToken"]
        self.assertGreaterEqual(len(token), 16)
        status, _, cart = self.req("GET", "/api/v1/cart", cart=token)
        self.assertEqual(cart["subtotal"], 200000)
        body = checkout_body("G1-M", 1)
        del body["items"]  # the cart's lines
        key = {"Idempotency-Key": str(uuid.uuid4())}
        status, headers, order = self.req("POST", "/api/v1/checkout", body=body, cart=token, headers=key)
        self.assertEqual(status, 201, order)
        self.assertRegex(order["number"], r"^FL-\d{4}-\d{6}$")
        self.assertEqual(order["totals"], {"subtotal": 200000, "discount": 0, "delivery": FEE, "total": 200000 + FEE})
        self.assertEqual(order["items"][0]["name"], "Букет G1")
        self.assertEqual(order["delivery"]["recipient"]["phone"], "+79161234567")
        self.assertEqual(headers["location"], "/api/v1/orders/" + order["_id"])
        # The retry answers the same order, and takes no stock.
        status, _, again = self.req("POST", "/api/v1/checkout", body=body, cart=token, headers=key)
        self.assertEqual(status, 200, again)
        self.assertEqual(again["_id"], order["_id"])
        self.assertEqual(self.stock(p["slug"]), 3)
        # The owner sees it; anyone else gets 404.
        status, _, mine = self.req("GET", "/api/v1/orders/" + order["_id"], cart=token)
        self.assertEqual(status, 200, mine)
        status, _, _ = self.req("GET", "/api/v1/orders/" + order["_id"], cart="x" * 43)
        self.assertEqual(status, 404)
        status, _, _ = self.req("GET", "/api/v1/orders/" + order["_id"])
        self.assertEqual(status, 404)
        status, _, page = self.req("GET", "/api/v1/orders", cart=token)
        self.assertEqual([o["_id"] for o in page["items"]], [order["_id"]])
        # The guest cancels before payment: stock comes back, once.
        status, _, cancelled = self.req("POST", "/api/v1/orders/%s/cancel" % order["_id"], cart=token)
        self.assertEqual(status, 200, cancelled)
        self.assertEqual(cancelled["status"], "cancelled")
        status, _, body = self.req("POST", "/api/v1/orders/%s/cancel" % order["_id"], cart=token)
        self.assertEqual(status, 409, body)
        self.assertEqual(self.stock(p["slug"]), 5)

    def test_out_of_stock_names_the_sku(self):
        self.product("OOS", 1)
        status, _, body = self.req("POST", "/api/v1/checkout", body=checkout_body("OOS-M", 3))
        self.assertEqual(status, 409, body)
        self.assertEqual(body["error"]["code"], "out_of_stock")
        self.assertIn("OOS-M", body["error"]["message"])
        self.assertEqual(body["error"]["details"][0]["available"], 1)
        self.assertEqual(body["error"]["details"][0]["requested"], 3)

    def test_bad_input(self):
        self.product("BAD", 5)
        status, _, body = self.req("POST", "/api/v1/checkout",
                                   body={"customer": {"name": "A", "email": {"$ne": None}}, "items": []})
        self.assertEqual(status, 400, body)
        self.assertIn("customer.email", body["error"]["message"])
        status, _, body = self.req("POST", "/api/v1/checkout", body={
            "customer": {"name": 7, "email": "x"}, "items": [{"sku": "BAD-M", "quantity": -1}],
            "delivery": {"address": {"text": "a" * 501}, "date": "tomorrow", "slot": "09-12",
                         "cardMessage": "ы" * 501}, "unknown": True})
        self.assertEqual(status, 422, body)
        paths = {d["path"] for d in body["error"]["details"]}
        for p in ("customer.name", "customer.email", "items.0.quantity", "delivery.address.text", "delivery.date",
                  "delivery.cardMessage", "unknown"):
            self.assertIn(p, paths)
        status, _, body = self.req("POST", "/api/v1/cart/items", body={"sku": "BAD-M", "quantity": 0, "x": 1})
        self.assertEqual(status, 422, body)
        self.assertEqual({d["path"] for d in body["error"]["details"]}, {"quantity", "x"})
        status, _, body = self.req("POST", "/api/v1/coupons/validate", body={"code": {"$regex": "."}})
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["field"], "code")
        status, _, body = self.req("POST", "/api/v1/checkout", body=checkout_body("BAD-M", 1, coupon={"$ne": None}))
        self.assertEqual(status, 400, body)
        self.assertIn("couponCode.$ne", body["error"]["message"])

    def test_tokenless_guest_retry_finds_the_first_order(self):
        p = self.product("TL", 5)
        email = "tl-%s@example.com" % uuid.uuid4().hex[:8]
        key = {"Idempotency-Key": str(uuid.uuid4())}
        body = checkout_body("TL-M", 1, email=email)
        status, _, first = self.req("POST", "/api/v1/checkout", body=body, headers=key)
        self.assertEqual(status, 201, first)
        # The retry has no X-Cart-Token either, and the e-mail in another case.
        retry = checkout_body("TL-M", 1, email=email)
        status, _, again = self.req("POST", "/api/v1/checkout", body=retry, headers=key)
        self.assertEqual(status, 200, again)
        self.assertEqual(again["_id"], first["_id"])
        # The token answered is the one that sees the order.
        self.assertEqual(again["cartToken"], first["cartToken"])
        status, _, mine = self.req("GET", "/api/v1/orders/" + first["_id"], cart=again["cartToken"])
        self.assertEqual(status, 200, mine)
        self.assertEqual(self.stock(p["slug"]), 4)
        # Another guest e-mail with the same key is another customer: a new order.
        status, _, other = self.req("POST", "/api/v1/checkout",
                                    body=checkout_body("TL-M", 1, email="x" + email), headers=key)
        self.assertEqual(status, 201, other)
        self.assertNotEqual(other["_id"], first["_id"])

    def test_idempotency_key_reused_with_another_request(self):
        self.product("RU", 5)
        alice = self.user("ru-%s@example.com" % uuid.uuid4().hex[:8])
        key = {"Idempotency-Key": str(uuid.uuid4())}
        status, _, first = self.req("POST", "/api/v1/checkout", body=checkout_body("RU-M", 1), token=alice,
                                    headers=key)
        self.assertEqual(status, 201, first)
        # The same request with its keys in another order is the same request.
        body = checkout_body("RU-M", 1)
        reordered = dict(reversed(list(body.items())))
        status, _, again = self.req("POST", "/api/v1/checkout", body=reordered, token=alice, headers=key)
        self.assertEqual(status, 200, again)
        self.assertEqual(again["_id"], first["_id"])
        status, _, body = self.req("POST", "/api/v1/checkout", body=checkout_body("RU-M", 2), token=alice,
                                   headers=key)
        self.assertEqual(status, 422, body)
        self.assertEqual(body["error"]["code"], "idempotency_key_reused")
        status, _, page = self.req("GET", "/api/v1/orders", token=alice)
        self.assertEqual(page["total"], 1)

    def test_manager_lifecycle_and_customer_orders(self):
        p = self.product("MGR", 10)
        alice = self.user("alice-%s@example.com" % uuid.uuid4().hex[:8])
        bob = self.user("bob-%s@example.com" % uuid.uuid4().hex[:8])
        status, _, order = self.req("POST", "/api/v1/checkout", body=checkout_body("MGR-M", 2), token=alice)
        self.assertEqual(status, 201, order)
        oid = order["_id"]
        status, _, _ = self.req("GET", "/api/v1/orders/" + oid, token=bob)
        self.assertEqual(status, 404)
        status, _, page = self.req("GET", "/api/v1/orders", token=bob)
        self.assertEqual(page["total"], 0)
        status, _, page = self.req("GET", "/api/v1/orders", token=alice)
        self.assertEqual(page["total"], 1)
        # Customers cannot reach the manager routes.
        status, _, _ = self.req("GET", "/api/v1/admin/orders", token=alice)
        self.assertEqual(status, 403)
        status, _, body = self.req("POST", "/api/v1/admin/orders/%s/status" % oid, admin=True,
                                   body={"status": "delivered"})
        self.assertEqual(status, 409, body)
        for s in ("paid", "assembling", "ready"):
            status, _, body = self.req("POST", "/api/v1/admin/orders/%s/status" % oid, admin=True,
                                       body={"status": s, "note": "ok"})
            self.assertEqual(status, 200, body)
        self.assertEqual([h["status"] for h in body["statusHistory"]],
                         ["pending_payment", "paid", "assembling", "ready"])
        self.assertEqual(body["statusHistory"][-1]["actor"], "admin")
        status, _, body = self.req("POST", "/api/v1/admin/orders/%s/status" % oid, admin=True, body={"status": "nope"})
        self.assertEqual(status, 422, body)
        status, _, page = self.req("GET", "/api/v1/admin/orders?status=ready&sort=delivery", admin=True)
        self.assertEqual(status, 200, page)
        self.assertIn(oid, [o["_id"] for o in page["items"]])
        status, _, page = self.req("GET", "/api/v1/admin/orders?deliveryDate=2026-12-30&pageSize=1", admin=True)
        self.assertEqual(page["pageSize"], 1)
        status, _, body = self.req("GET", "/api/v1/admin/orders?bogus=1", admin=True)
        self.assertEqual(status, 400)
        status, _, byn = self.req("GET", "/api/v1/admin/orders/by-number/" + order["number"], admin=True)
        self.assertEqual(byn["_id"], oid)
        # The customer can no longer cancel a ready order.
        status, _, body = self.req("POST", "/api/v1/orders/%s/cancel" % oid, token=alice)
        self.assertEqual(status, 409, body)
        self.assertEqual(self.stock(p["slug"]), 8)

    def test_coupons_validate_and_checkout(self):
        self.product("CPN", 50, price=300000)
        status, _, body = self.req("POST", "/api/v1/admin/coupons", admin=True, body={
            "code": "Flowers15", "kind": "percent", "value": 15, "minSubtotal": 500000, "maxDiscount": 100000,
            "usageLimit": 100})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["code"], "FLOWERS15")
        status, _, body = self.req("POST", "/api/v1/admin/coupons", admin=True,
                                   body={"code": "flowers15", "kind": "fixed", "value": 1})
        self.assertEqual(status, 409, body)
        status, _, body = self.req("POST", "/api/v1/admin/coupons", admin=True,
                                   body={"code": "x!", "kind": "percent", "value": 101, "usageLimit": "ten"})
        self.assertEqual(status, 422, body)
        self.assertEqual({"code", "value", "usageLimit"} - {d["path"] for d in body["error"]["details"]}, set())
        cases = [({"code": "nope", "subtotal": 900000}, "unknown", 0),
                 ({"code": "flowers15", "subtotal": 100000}, "below_minimum", 0),
                 ({"code": "FLOWERS15", "items": [{"sku": "CPN-M", "quantity": 2}]}, "ok", 90000),
                 ({"code": "flowers15", "subtotal": 10000000}, "ok", 100000)]
        for req, reason, discount in cases:
            status, _, body = self.req("POST", "/api/v1/coupons/validate", body=req)
            self.assertEqual(status, 200, body)
            self.assertEqual((body["reason"], body["discount"]), (reason, discount), req)
        status, _, order = self.req("POST", "/api/v1/checkout", body=checkout_body("CPN-M", 2, coupon="flowers15"))
        self.assertEqual(status, 201, order)
        self.assertEqual(order["totals"]["discount"], 90000)
        self.assertEqual(order["totals"]["total"], 600000 - 90000 + FEE)
        status, _, body = self.req("POST", "/api/v1/checkout", body=checkout_body("CPN-M", 2, coupon="flowers15"))
        self.assertEqual(status, 409, body)
        self.assertIn("already_used", body["error"]["message"])
        # The limit is per customer: a signed-in user and a guest with the user's e-mail are one.
        email = "cpn-%s@example.com" % uuid.uuid4().hex[:8]
        carol = self.user(email)
        status, _, order = self.req("POST", "/api/v1/checkout", token=carol,
                                    body=checkout_body("CPN-M", 2, email="other@example.com", coupon="flowers15"))
        self.assertEqual(status, 201, order)
        status, _, body = self.req("POST", "/api/v1/checkout",
                                   body=checkout_body("CPN-M", 2, email=email, coupon="flowers15"))
        self.assertEqual(status, 409, body)
        self.assertIn("already_used", body["error"]["message"])
        status, _, body = self.req("POST", "/api/v1/coupons/validate", token=carol,
                                   body={"code": "flowers15", "subtotal": 900000})
        self.assertEqual(body["reason"], "already_used", body)
        status, _, body = self.req("PATCH", "/api/v1/admin/coupons/FLOWERS15", admin=True, body={"active": False})
        self.assertEqual(status, 200, body)
        status, _, body = self.req("POST", "/api/v1/coupons/validate", body={"code": "flowers15", "subtotal": 900000})
        self.assertEqual(body["reason"], "inactive")
        status, _, body = self.req("DELETE", "/api/v1/admin/coupons/flowers15", admin=True)
        self.assertEqual(status, 204)

    def test_reviews(self):
        p = self.product("RVW", 5)
        carol = self.user("carol-%s@example.com" % uuid.uuid4().hex[:8])
        status, _, review = self.req("POST", "/api/v1/reviews", token=carol,
                                     body={"productSlug": p["slug"], "rating": 5, "text": "Чудесно"})
        self.assertEqual(status, 201, review)
        self.assertEqual(review["status"], "pending")
        self.assertFalse(review["verifiedPurchase"])
        status, _, body = self.req("POST", "/api/v1/reviews", token=carol, body={"productSlug": p["slug"], "rating": 4})
        self.assertEqual(status, 409, body)
        status, _, body = self.req("POST", "/api/v1/reviews", token=carol, body={"productSlug": p["slug"], "rating": 0,
                                                                               "photos": ["ftp://x"]})
        self.assertEqual(status, 422, body)
        status, _, body = self.req("POST", "/api/v1/reviews", body={"productSlug": p["slug"], "rating": 5})
        self.assertEqual(status, 401, body)
        status, _, page = self.req("GET", "/api/v1/products/%s/reviews" % p["slug"])
        self.assertEqual(page["total"], 0)
        status, _, body = self.req("POST", "/api/v1/admin/reviews/%s/moderation" % review["_id"], admin=True,
                                   body={"status": "approved"})
        self.assertEqual(status, 200, body)
        status, _, page = self.req("GET", "/api/v1/products/%s/reviews" % p["slug"])
        self.assertEqual(page["total"], 1)
        self.assertEqual(page["rating"], {"average": 5.0, "count": 1, "histogram": [0, 0, 0, 0, 1]})
        status, _, queue = self.req("GET", "/api/v1/admin/reviews?status=pending", admin=True)
        self.assertEqual(status, 200, queue)
        status, _, _ = self.req("DELETE", "/api/v1/reviews/" + review["_id"], token=carol)
        self.assertEqual(status, 204)
        status, _, page = self.req("GET", "/api/v1/products/%s/reviews" % p["slug"])
        self.assertEqual(page["rating"]["count"], 0)


class KilledMidStream(unittest.TestCase):
    """SIGKILL in the middle of concurrent checkouts and cancellations."""

    START = 400

    def test_no_half_written_order_after_sigkill(self):
        flora = Flora()
        try:
            flora.start()
            status, _, product = flora.request("POST", "/api/v1/admin/products", admin=True, body={
                "sku": "KILL", "name": "Стойкий букет",
                "variants": [{"sku": "KILL-M", "name": "M", "price": 123400, "stock": self.START}]})
            self.assertEqual(status, 201, product)
            stop = threading.Event()
            done = []

            def client(n):
                rnd = random.Random(n)
                i = 0
                while not stop.is_set():
                    i += 1
                    token = "kill-client-%02d-%06d-abcdef" % (n, i)
                    try:
                        status, _, order = flora.request(
                            "POST", "/api/v1/checkout", body=checkout_body("KILL-M", rnd.randint(1, 3)),
                            headers={"X-Cart-Token": token}, timeout=10)
                        if status == 201 and rnd.random() < 0.3:
                            flora.request("POST", "/api/v1/orders/%s/cancel" % order["_id"],
                                          headers={"X-Cart-Token": token}, timeout=10)
                        done.append(status)
                    except (OSError, ValueError):
                        if stop.is_set():
                            return
                        time.sleep(0.01)

            threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
            for t in threads:
                t.start()
            deadline = time.time() + 20
            while len([s for s in done if s == 201]) < 15 and time.time() < deadline:
                time.sleep(0.05)
            flora.stop(sig=signal.SIGKILL)
            stop.set()
            for t in threads:
                t.join()
            self.assertGreaterEqual(len([s for s in done if s == 201]), 15, "the stream did not get going")

            flora.start()
            orders, page = [], 1
            while True:
                status, _, body = flora.request("GET", "/api/v1/admin/orders?pageSize=100&page=%d" % page, admin=True)
                self.assertEqual(status, 200, body)
                orders += body["items"]
                if page >= body["pages"]:
                    break
                page += 1
            self.assertGreater(len(orders), 0)
            ordered = 0
            numbers = set()
            for o in orders:
                self.assertTrue(o["items"], o)
                subtotal = sum(i["lineTotal"] for i in o["items"])
                for i in o["items"]:
                    self.assertEqual(i["lineTotal"], i["unitPrice"] * i["quantity"])
                t = o["totals"]
                self.assertEqual(t["subtotal"], subtotal)
                self.assertEqual(t["total"], t["subtotal"] - t["discount"] + t["delivery"])
                self.assertNotIn(o["number"], numbers)
                numbers.add(o["number"])
                if o["status"] != "cancelled":
                    ordered += sum(i["quantity"] for i in o["items"])
            status, _, now = flora.request("GET", "/api/v1/products/" + product["slug"])
            self.assertEqual(now["variants"][0]["stock"] + ordered, self.START)
            self.assertEqual(now["popularity"], ordered)
        finally:
            flora.close()


if __name__ == "__main__":
    unittest.main()
