"""Payments over HTTP on the real binary, against the loopback provider fakes
(tests/fakes/payfake.py, which checks Stripe's and PayPal's requests against their
published OpenAPI documents): starting a payment for a checked-out order, the owner-only
payment routes, Stripe webhooks (verified, applied once even when delivered concurrently,
forged and stale ones refused), manager refunds, `flora payments reconcile`, and every
answer validated against docs/openapi.json."""
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.request
import uuid

from floratest import Flora, SOURCE_DIR, SHARED_DIR
from test_openapi import load_doc, resolve, validator_for

FAKE = os.path.join(SOURCE_DIR, "tests", "fakes", "payfake.py")
SECRET = "whsec_api_test"


def start_fake():
    if not os.path.isdir(os.path.join(SHARED_DIR, "providers", "prism")):
        raise unittest.SkipTest("FLORA_SHARED_DIR has no providers/prism: the providers' contracts are needed")
    proc = subprocess.Popen([sys.executable, FAKE, "--port", "0"], stdout=subprocess.PIPE,
                            env=dict(os.environ, FLORA_SHARED_DIR=SHARED_DIR), text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise AssertionError("the payment fake did not start")
    return proc, "http://127.0.0.1:%d" % int(line.split()[1])


def stripe_signature(body, t, secret=SECRET):
    mac = hmac.new(secret.encode(), ("%d." % t).encode() + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)


class PaymentsApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake, cls.fake_url = start_fake()
        specs = cls.fake_call_static(cls.fake_url, "/_control/state")["specs"]
        if specs != ["paypal", "stripe"]:
            cls.fake.terminate()
            cls.fake.wait(timeout=10)
            cls.fake.stdout.close()
            raise unittest.SkipTest("the fake could not load Stripe's and PayPal's OpenAPI documents "
                                    "(Stripe's needs python3-yaml): loaded %s" % specs)
        cls.doc = load_doc()
        cls.flora = Flora({
            "FLORA_PAY_STRIPE_API_BASE": cls.fake_url,
            "FLORA_PAY_STRIPE_SECRET_KEY": "sk_test_flora",
            "FLORA_PAY_STRIPE_WEBHOOK_SECRET": SECRET,
            "FLORA_PAY_YOOKASSA_API_BASE": cls.fake_url,
            "FLORA_PAY_YOOKASSA_SHOP_ID": "123456",
            "FLORA_PAY_YOOKASSA_SECRET_KEY": "test_flora",
            "FLORA_PAY_YOOKASSA_ALLOWED_IPS": "127.0.0.1",
            "FLORA_PAY_HTTP_TIMEOUT_MS": "3000",
        })
        try:
            cls.flora.start()
        except BaseException:
            cls.fake.kill()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.flora.close()
        cls.fake.terminate()
        cls.fake.wait(timeout=10)
        cls.fake.stdout.close()

    # ---- helpers ---------------------------------------------------------------------

    @staticmethod
    def fake_call_static(url, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(urllib.request.Request(url + path, data=data), timeout=10) as r:
            return json.loads(r.read())

    def fake_call(self, path, body=None):
        return self.fake_call_static(self.fake_url, path, body)

    def req(self, method, path, body=None, cart=None, admin=False, headers=None, raw=None):
        h = dict(headers or {})
        if cart:
            h["X-Cart-Token"] = cart
        return self.flora.request(method, path, body=body, headers=h, admin=admin, raw=raw)

    def check(self, method, template, path, expected, body=None, cart=None, admin=False, headers=None,
              raw=None):
        status, hdrs, payload = self.req(method, path, body=body, cart=cart, admin=admin, headers=headers,
                                         raw=raw)
        self.assertEqual(status, expected, payload)
        response = resolve(self.doc, self.doc["paths"][template][method.lower()]["responses"][str(status)])
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema:
            validator_for(self.doc, schema).validate(payload)
        return payload

    def order(self, sku):
        status, _, body = self.req("POST", "/api/v1/admin/products", admin=True, body={
            "sku": sku, "name": "Букет " + sku,
            "variants": [{"sku": sku + "-M", "name": "M", "price": 150000, "stock": 10}]})
        self.assertEqual(status, 201, body)
        status, _, cart = self.req("POST", "/api/v1/cart/items", body={"sku": sku + "-M", "quantity": 2})
        self.assertEqual(status, 201, cart)
        token = cart["cartToken"]
        status, _, order = self.req("POST", "/api/v1/checkout", cart=token,
                                    headers={"Idempotency-Key": str(uuid.uuid4())}, body={
            "customer": {"name": "Анна", "email": "anna@example.com", "phone": "+7 916 123-45-67"},
            "delivery": {"address": {"text": "Москва, Тверская 1"}, "date": "2026-12-30", "slot": "09-12"}})
        self.assertEqual(status, 201, order)
        return order, token

    def order_status(self, order, token):
        status, _, body = self.req("GET", "/api/v1/orders/" + order["_id"], cart=token)
        self.assertEqual(status, 200, body)
        return body["status"]

    def stripe_hook(self, event_id, pi, amount, t=None, secret=SECRET, currency="rub"):
        body = json.dumps({"id": event_id, "object": "event", "type": "payment_intent.succeeded",
                           "data": {"object": {"id": pi, "object": "payment_intent", "amount": amount,
                                               "amount_capturable": 0, "amount_received": amount,
                                               "currency": currency, "status": "succeeded"}}}).encode()
        t = int(time.time()) if t is None else t
        return self.req("POST", "/webhooks/stripe", raw=body,
                        headers={"Stripe-Signature": stripe_signature(body, t, secret),
                                 "Content-Type": "application/json"})

    # ---- tests -----------------------------------------------------------------------

    def test_stripe_payment_webhooks_and_refund(self):
        order, token = self.order("PAY1")
        number = order["number"]
        total = order["totals"]["total"]
        path = "/api/v1/orders/%s/payments" % number
        tmpl = "/api/v1/orders/{number}/payments"
        # Only the order's owner may start or see its payments.
        self.check("POST", tmpl, path, 404, body={"provider": "stripe"})
        self.check("POST", tmpl, path, 404, body={"provider": "stripe"}, cart="y" * 43)
        self.check("POST", tmpl, path, 400, body={"provider": "bitcoin"}, cart=token)
        self.check("POST", tmpl, path, 400, body={}, cart=token)
        started = self.check("POST", tmpl, path, 201, body={"provider": "stripe"}, cart=token)
        self.assertTrue(started["client"]["clientSecret"].startswith("pi_"))
        self.assertEqual(started["amount"], total)
        self.assertEqual(started["currency"], "RUB")
        again = self.check("POST", tmpl, path, 201, body={"provider": "stripe"}, cart=token)
        self.assertEqual(again["paymentId"], started["paymentId"])
        listed = self.check("GET", tmpl, path, 200, cart=token)
        self.assertEqual(len(listed["items"]), 1)
        pi = listed["items"][0]["providerPaymentId"]
        self.assertEqual(self.fake_call("/_control/state")["violations"], [])

        # Forged, stale, wrong amount: nothing changes.
        status, _, body = self.stripe_hook("evt_f1", pi, total, secret="whsec_forged")
        self.assertEqual(status, 400, body)
        status, _, body = self.stripe_hook("evt_f2", pi, total, t=int(time.time()) - 400)
        self.assertEqual(status, 400, body)
        status, _, body = self.req("POST", "/webhooks/stripe", raw=b"{not json",
                                   headers={"Stripe-Signature": stripe_signature(b"{not json", int(time.time()))})
        self.assertEqual(status, 400, body)
        status, _, ack = self.stripe_hook("evt_m1", pi, total - 1)
        self.assertEqual((status, ack["outcome"]), (200, "rejected"), ack)
        self.assertEqual(self.order_status(order, token), "pending_payment")

        # The buyer pays (Stripe.js confirms); the same success is delivered four times at
        # once: applied once.
        self.fake_call("/_control/act", {"provider": "stripe", "action": "confirm", "id": pi})
        results = []

        def deliver():
            results.append(self.stripe_hook("evt_ok", pi, total))

        threads = [threading.Thread(target=deliver) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outcomes = sorted(r[2]["outcome"] for r in results)
        self.assertEqual([r[0] for r in results], [200] * 4, results)
        self.assertEqual(outcomes, ["applied", "duplicate", "duplicate", "duplicate"])
        validator_for(self.doc, {"$ref": "#/components/schemas/WebhookAck"}).validate(results[0][2])
        self.assertEqual(self.order_status(order, token), "paid")

        # Manager refunds: above captured is refused before anything is sent.
        pid = started["paymentId"]
        rtmpl = "/api/v1/admin/payments/{id}/refund"
        self.check("POST", rtmpl, "/api/v1/admin/payments/%s/refund" % pid, 401, body={"amount": 1})
        self.check("POST", rtmpl, "/api/v1/admin/payments/%s/refund" % pid, 409, body={"amount": total + 1},
                   admin=True)
        self.assertEqual(self.fake_call("/_control/state")["stripe_refunds"], 0)
        self.check("POST", rtmpl, "/api/v1/admin/payments/%s/refund" % pid, 400, body={"amount": "10"},
                   admin=True)
        after = self.check("POST", rtmpl, "/api/v1/admin/payments/%s/refund" % pid, 200, body={"amount": 10000},
                           admin=True)
        self.assertEqual((after["status"], after["amountRefunded"]), ("partially_refunded", 10000))
        got = self.check("GET", "/api/v1/admin/payments/{id}", "/api/v1/admin/payments/" + pid, 200, admin=True)
        self.assertNotIn("providerRequests", got)
        self.check("GET", "/api/v1/admin/payments/{id}", "/api/v1/admin/payments/" + "0" * 24, 404, admin=True)
        self.check("POST", "/api/v1/admin/payments/{id}/cancel", "/api/v1/admin/payments/%s/cancel" % pid, 409,
                   admin=True)
        self.check("POST", "/api/v1/admin/payments/{id}/capture", "/api/v1/admin/payments/%s/capture" % pid, 409,
                   admin=True)
        self.assertEqual(self.fake_call("/_control/state")["violations"], [])

    def test_customer_cancel_refunds_the_paid_order(self):
        # The fake counts objects since its last reset; the other tests count from zero.
        self.addCleanup(self.fake_call, "/_control/reset", {})
        order, token = self.order("PAYC")
        total = order["totals"]["total"]
        path = "/api/v1/orders/%s/payments" % order["number"]
        started = self.check("POST", "/api/v1/orders/{number}/payments", path, 201, body={"provider": "stripe"},
                             cart=token)
        listed = self.check("GET", "/api/v1/orders/{number}/payments", path, 200, cart=token)
        pi = listed["items"][0]["providerPaymentId"]
        self.fake_call("/_control/act", {"provider": "stripe", "action": "confirm", "id": pi})
        status, _, ack = self.stripe_hook("evt_paid_" + pi, pi, total)
        self.assertEqual((status, ack["outcome"]), (200, "applied"), ack)
        self.assertEqual(self.order_status(order, token), "paid")
        refunds = self.fake_call("/_control/state")["stripe_refunds"]
        cancelled = self.check("POST", "/api/v1/orders/{id}/cancel", "/api/v1/orders/%s/cancel" % order["_id"], 200,
                               cart=token)
        self.assertEqual(cancelled["status"], "cancelled")
        self.assertEqual(cancelled["payment"]["amountRefunded"], total)
        self.assertTrue(any("refunded" in h.get("note", "") for h in cancelled["statusHistory"]),
                        cancelled["statusHistory"])
        got = self.check("GET", "/api/v1/admin/payments/{id}", "/api/v1/admin/payments/" + started["paymentId"], 200,
                         admin=True)
        self.assertEqual((got["status"], got["amountRefunded"]), ("refunded", total))
        self.assertEqual(self.fake_call("/_control/state")["stripe_refunds"], refunds + 1)
        # A second cancel is refused and refunds nothing more.
        self.check("POST", "/api/v1/orders/{id}/cancel", "/api/v1/orders/%s/cancel" % order["_id"], 409, cart=token)
        self.assertEqual(self.fake_call("/_control/state")["stripe_refunds"], refunds + 1)

    def test_yookassa_payment_and_notification(self):
        order, token = self.order("PAY2")
        path = "/api/v1/orders/%s/payments" % order["number"]
        started = self.check("POST", "/api/v1/orders/{number}/payments", path, 201, body={"provider": "yookassa"},
                             cart=token)
        self.assertIn("yoomoney.ru", started["client"]["confirmationUrl"])
        listed = self.check("GET", "/api/v1/orders/{number}/payments", path, 200, cart=token)
        ypid = listed["items"][0]["providerPaymentId"]
        self.fake_call("/_control/act", {"provider": "yookassa", "action": "pay", "id": ypid})
        ack = self.check("POST", "/webhooks/yookassa", "/webhooks/yookassa", 200, body={
            "type": "notification", "event": "payment.succeeded", "object": {"id": ypid, "status": "succeeded"}})
        self.assertEqual(ack["outcome"], "applied")
        self.assertEqual(self.order_status(order, token), "paid")
        self.check("POST", "/webhooks/yookassa", "/webhooks/yookassa", 400, body={"type": "notification"})
        # Starting another payment of a paid order is a conflict.
        self.check("POST", "/api/v1/orders/{number}/payments", path, 409, body={"provider": "stripe"}, cart=token)

    def test_reconcile_command(self):
        order, token = self.order("PAY3")
        path = "/api/v1/orders/%s/payments" % order["number"]
        self.check("POST", "/api/v1/orders/{number}/payments", path, 201, body={"provider": "stripe"}, cart=token)
        pi = self.check("GET", "/api/v1/orders/{number}/payments", path, 200, cart=token)["items"][0]["providerPaymentId"]
        self.fake_call("/_control/act", {"provider": "stripe", "action": "confirm", "id": pi})
        out = self.flora.run("payments", "reconcile").stdout
        self.assertRegex(out, r"checked \d+, repaired [1-9]")
        self.assertEqual(self.order_status(order, token), "paid")
        self.assertEqual(self.flora.run("payments", "bogus", check=False).returncode, 2)


if __name__ == "__main__":
    unittest.main()
