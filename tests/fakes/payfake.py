#!/usr/bin/env python3
"""Contract-faithful fakes of Stripe, PayPal and YooKassa for Flora's payment tests.

One loopback HTTP server with state. Stripe and PayPal requests are validated against the
providers' published OpenAPI documents (the trimmed copies in
$FLORA_SHARED_DIR/providers/prism, read-only); a request the contract refuses gets the
provider's 400 answer and is recorded as a violation. YooKassa follows its API reference
(yookassa.ru/developers/api: payments, capture, cancel, refunds, the receipt object).
All three implement idempotency keys (Stripe Idempotency-Key, PayPal-Request-Id,
YooKassa Idempotence-Key): the same key returns the stored answer, so a retry never
creates a second object.

Test control (not part of any provider's API), under /_control:
  POST /_control/faults   [{"match": "POST /v1/payment_intents", "status": 500,
                            "delay": 0, "after": false, "times": 1}]
        status: answer this instead of processing; with "after": true the request is
        processed first and then answered late by `delay` seconds (a timeout after the
        provider accepted) or, with "drop": true, the connection is closed unanswered.
  POST /_control/act      {"provider": "stripe", "action": "confirm", "id": ...}
        the buyer's side: stripe confirm, paypal approve, yookassa pay
  POST /_control/cert     PEM body: the certificate served at /v1/notifications/certs/CERT-1
  GET  /_control/log      every request: method, path, idempotency header, status, violations
  GET  /_control/state    counts of objects per provider since the last reset, violations
  POST /_control/reset    clears the log and faults (objects stay)
Usage: payfake.py [--port N]  (prints "PORT <n>" on stdout when listening)
"""
import argparse
import base64
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import uuid
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema

LOCK = threading.RLock()
STATE = {}


def reset():
    STATE.clear()
    STATE.update({
        "pi": {}, "re": {}, "pp_orders": {}, "pp_refunds": {}, "yk": {}, "yk_refunds": {},
        "idem": {}, "faults": [], "log": [], "tokens": set(), "token_count": 0, "cert": "",
    })


reset()

STRIPE_KEY = "sk_test_flora"
PAYPAL_ID, PAYPAL_SECRET = "flora-client", "flora-secret"
YK_SHOP, YK_SECRET = "123456", "test_flora"

# ---- contracts -------------------------------------------------------------------------

SPECS = {}


def load_specs():
    shared = os.environ.get("FLORA_SHARED_DIR")
    if not shared:
        return
    prism = os.path.join(shared, "providers", "prism")
    try:
        import yaml
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        with open(os.path.join(prism, "stripe-payments-strict.yaml"), encoding="utf-8") as f:
            SPECS["stripe"] = yaml.load(f, Loader=loader)
    except (OSError, ImportError) as e:
        print("payfake: no Stripe spec:", e, file=sys.stderr)
    try:
        with open(os.path.join(prism, "paypal-payments.json"), encoding="utf-8") as f:
            SPECS["paypal"] = json.load(f)
    except OSError as e:
        print("payfake: no PayPal spec:", e, file=sys.stderr)


def find_operation(spec, method, path):
    for template, item in spec.get("paths", {}).items():
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(rx, path) and method.lower() in item:
            return item[method.lower()]
    return None


def resolve(spec, schema):
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 20:
        node = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
        seen += 1
    return schema


def coerce(spec, value, schema):
    """Form values are strings: turn them into what the schema's types say (Stripe's
    deepObject encoding: a[b]=c, a[0]=x)."""
    schema = resolve(spec, schema)
    if not isinstance(schema, dict):
        return value
    for key in ("anyOf", "oneOf"):
        if key in schema:
            for alt in schema[key]:
                v = coerce(spec, value, alt)
                try:
                    jsonschema.validate(v, with_components(spec, alt))
                    return v
                except jsonschema.ValidationError:
                    continue
            return value
    t = schema.get("type")
    if isinstance(value, str):
        if t == "integer" and re.fullmatch(r"-?\d+", value):
            return int(value)
        if t == "boolean" and value in ("true", "false"):
            return value == "true"
        if t == "object" and value == "":
            return {}
        return value
    if isinstance(value, dict):
        if t == "array" or (t is None and all(k.isdigit() for k in value)):
            items = schema.get("items", {})
            return [coerce(spec, value[k], items) for k in sorted(value, key=int)]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", {})
        return {k: coerce(spec, v, props.get(k, extra if isinstance(extra, dict) else {}))
                for k, v in value.items()}
    return value


def with_components(spec, schema):
    s = dict(schema) if isinstance(schema, dict) else {}
    s["components"] = spec.get("components", {})
    return s


def parse_form(body):
    out = {}
    for key, value in urllib.parse.parse_qsl(body, keep_blank_values=True, strict_parsing=False):
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def validate(provider, method, path, body, content_type):
    """Returns a list of violations of the provider's contract (empty when valid)."""
    spec = SPECS.get(provider)
    if spec is None:
        return []
    op = find_operation(spec, method, path)
    if op is None:
        return ["%s %s is not an operation of the %s contract" % (method, path, provider)]
    rb = op.get("requestBody")
    if not rb:
        return []
    content = rb.get("content", {})
    if provider == "stripe":
        media = content.get("application/x-www-form-urlencoded")
        if not media:
            return []
        if body and not content_type.startswith("application/x-www-form-urlencoded"):
            return ["content type %s is not form-encoded" % content_type]
        schema = media.get("schema", {})
        instance = coerce(spec, parse_form(body), schema)
    else:
        media = content.get("application/json")
        if not media:
            return []
        try:
            instance = json.loads(body or "null")
        except ValueError as e:
            return ["body is not JSON: %s" % e]
        schema = media.get("schema", {})
        if instance is None and not rb.get("required"):
            return []
    validator = jsonschema.Draft7Validator(with_components(spec, schema))
    return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(body)", e.message)
            for e in validator.iter_errors(instance)]


# ---- helpers ---------------------------------------------------------------------------

def oid(prefix):
    return prefix + uuid.uuid4().hex[:24]


def decimal_value(text, places):
    if not isinstance(text, str) or not re.fullmatch(r"\d+(\.\d+)?", text):
        raise ValueError("amount value %r is not a decimal string" % (text,))
    d = Decimal(text)
    if d.as_tuple().exponent < -places:
        raise ValueError("amount value %r has more than %d decimals" % (text, places))
    return d


class Answer(Exception):
    def __init__(self, status, body):
        super().__init__(status)
        self.status, self.body = status, body


def stripe_error(status, message, code=None, should_retry=None):
    body = {"error": {"type": "invalid_request_error", "message": message}}
    if code:
        body["error"]["code"] = code
    return Answer(status, body)


# ---- Stripe ----------------------------------------------------------------------------

def stripe(method, path, form, headers):
    if headers.get("authorization") != "Bearer " + STRIPE_KEY:
        raise Answer(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
    m = re.fullmatch(r"/v1/payment_intents(?:/([A-Za-z0-9_]+))?(?:/(capture|cancel|confirm))?", path)
    if path == "/v1/refunds" and method == "POST":
        pi = STATE["pi"].get(form.get("payment_intent", ""))
        if not pi:
            raise stripe_error(404, "No such payment_intent", "resource_missing")
        amount = int(form.get("amount", pi["amount_received"] - pi["_refunded"]))
        if pi["status"] != "succeeded" or amount > pi["amount_received"] - pi["_refunded"]:
            raise stripe_error(400, "Refund amount exceeds the charge's unrefunded amount",
                               "amount_too_large")
        pi["_refunded"] += amount
        re_ = {"id": oid("re_"), "object": "refund", "amount": amount, "currency": pi["currency"],
               "payment_intent": pi["id"], "status": "succeeded", "created": int(time.time())}
        STATE["re"][re_["id"]] = re_
        return 200, re_
    if not m:
        raise stripe_error(404, "Unrecognized request URL")
    pid, action = m.group(1), m.group(2)
    if pid is None and method == "POST":
        pi = {"id": oid("pi_"), "object": "payment_intent", "amount": int(form["amount"]),
              "amount_capturable": 0, "amount_received": 0, "currency": form["currency"],
              "capture_method": form.get("capture_method", "automatic"),
              "status": "requires_payment_method", "metadata": form.get("metadata", {}),
              "description": form.get("description"), "livemode": False,
              "created": int(time.time()), "_refunded": 0}
        pi["client_secret"] = pi["id"] + "_secret_" + uuid.uuid4().hex[:16]
        STATE["pi"][pi["id"]] = pi
        return 200, pi
    pi = STATE["pi"].get(pid)
    if not pi:
        raise stripe_error(404, "No such payment_intent: '%s'" % pid, "resource_missing")
    if method == "GET" and not action:
        return 200, pi
    if action == "capture":
        if pi["status"] != "requires_capture":
            raise stripe_error(400, "This PaymentIntent could not be captured because it has a status of %s." % pi["status"], "payment_intent_unexpected_state")
        amount = int(form.get("amount_to_capture", pi["amount_capturable"]))
        if amount > pi["amount_capturable"]:
            raise stripe_error(400, "amount_to_capture is greater than amount_capturable")
        pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
        return 200, pi
    if action == "cancel":
        if pi["status"] in ("succeeded", "canceled"):
            raise stripe_error(400, "cannot cancel a %s PaymentIntent" % pi["status"], "payment_intent_unexpected_state")
        pi.update(status="canceled", amount_capturable=0)
        return 200, pi
    raise stripe_error(404, "Unrecognized request URL")


def public(obj):
    return {k: v for k, v in obj.items() if not k.startswith("_")}


# ---- PayPal ----------------------------------------------------------------------------

def paypal_error(status, name, message):
    return Answer(status, {"name": name, "message": message, "debug_id": uuid.uuid4().hex[:12],
                           "details": []})


def paypal(method, path, body, headers, raw):
    if path == "/v1/oauth2/token":
        auth = headers.get("authorization", "")
        want = "Basic " + base64.b64encode(("%s:%s" % (PAYPAL_ID, PAYPAL_SECRET)).encode()).decode()
        if auth != want or raw != "grant_type=client_credentials":
            raise Answer(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        tok = "A21AA" + uuid.uuid4().hex
        STATE["tokens"].add(tok)
        STATE["token_count"] += 1
        return 200, {"scope": "https://uri.paypal.com/services/payments/payment", "access_token": tok,
                     "token_type": "Bearer", "app_id": "APP-FLORA", "expires_in": 32400,
                     "nonce": uuid.uuid4().hex}
    if path.startswith("/v1/notifications/certs/"):
        return 200, STATE["cert"]
    auth = headers.get("authorization", "")
    if not auth.startswith("Bearer ") or auth[7:] not in STATE["tokens"]:
        raise Answer(401, {"error": "invalid_token", "error_description": "Token signature verification failed"})
    m = re.fullmatch(r"/v2/checkout/orders(?:/([A-Z0-9]+))?(?:/(capture))?", path)
    r = re.fullmatch(r"/v2/payments/captures/([A-Z0-9]+)/refund", path)
    if r:
        order = next((o for o in STATE["pp_orders"].values()
                      for c in o["purchase_units"][0].get("payments", {}).get("captures", [])
                      if c["id"] == r.group(1)), None)
        if not order:
            raise paypal_error(404, "RESOURCE_NOT_FOUND", "capture not found")
        cap = order["purchase_units"][0]["payments"]["captures"][0]
        amount = decimal_value(body["amount"]["value"], 2)
        if amount > Decimal(cap["amount"]["value"]) - order["_refunded"]:
            raise paypal_error(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
        order["_refunded"] += amount
        ref = {"id": "R" + uuid.uuid4().hex[:16].upper(), "status": "COMPLETED", "amount": body["amount"]}
        STATE["pp_refunds"][ref["id"]] = ref
        return 201, ref
    if not m:
        raise paypal_error(404, "RESOURCE_NOT_FOUND", "not found")
    oid_, action = m.group(1), m.group(2)
    if oid_ is None and method == "POST":
        unit = body["purchase_units"][0]
        decimal_value(unit["amount"]["value"], 2)
        order = {"id": uuid.uuid4().hex[:17].upper(), "intent": body["intent"], "status": "CREATED",
                 "purchase_units": [unit], "create_time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "_refunded": Decimal(0)}
        order["links"] = [
            {"href": "https://api-m.sandbox.paypal.com/v2/checkout/orders/" + order["id"], "rel": "self", "method": "GET"},
            {"href": "https://www.sandbox.paypal.com/checkoutnow?token=" + order["id"], "rel": "approve", "method": "GET"},
            {"href": "https://api-m.sandbox.paypal.com/v2/checkout/orders/" + order["id"] + "/capture", "rel": "capture", "method": "POST"},
        ]
        STATE["pp_orders"][order["id"]] = order
        return 201, order
    order = STATE["pp_orders"].get(oid_)
    if not order:
        raise paypal_error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.")
    if method == "GET" and not action:
        return 200, order
    if action == "capture":
        if order["status"] != "APPROVED":
            raise paypal_error(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")
        amount = order["purchase_units"][0]["amount"]
        cap = {"id": uuid.uuid4().hex[:17].upper(), "status": "COMPLETED",
               "amount": {"currency_code": amount["currency_code"], "value": amount["value"]}}
        order["purchase_units"][0]["payments"] = {"captures": [cap]}
        order["status"] = "COMPLETED"
        return 201, order
    raise paypal_error(404, "RESOURCE_NOT_FOUND", "not found")


def paypal_public(obj):
    return {k: v for k, v in obj.items() if not k.startswith("_")}


# ---- YooKassa --------------------------------------------------------------------------

def yk_error(status, code, description, parameter=None):
    body = {"type": "error", "id": str(uuid.uuid4()), "code": code, "description": description}
    if parameter:
        body["parameter"] = parameter
    return Answer(status, body)


def yk_amount(a, name):
    if not isinstance(a, dict) or set(a) != {"value", "currency"}:
        raise yk_error(400, "invalid_request", "%s must be {value, currency}" % name, name)
    if not re.fullmatch(r"[A-Z]{3}", a["currency"]):
        raise yk_error(400, "invalid_request", "bad currency", name + ".currency")
    try:
        return decimal_value(a["value"], 2)
    except ValueError as e:
        raise yk_error(400, "invalid_request", str(e), name + ".value")


def yk_check_receipt(receipt, total, currency):
    """The receipt object (yookassa.ru/developers/api#create_payment_receipt)."""
    allowed = {"customer", "items", "tax_system_code", "phone", "email", "internet", "timezone"}
    if set(receipt) - allowed:
        raise yk_error(400, "invalid_request", "unknown receipt fields %s" % sorted(set(receipt) - allowed), "receipt")
    cust = receipt.get("customer", {})
    if set(cust) - {"full_name", "inn", "email", "phone"}:
        raise yk_error(400, "invalid_request", "unknown customer fields", "receipt.customer")
    if not cust.get("email") and not cust.get("phone"):
        raise yk_error(400, "invalid_request", "customer email or phone is required", "receipt.customer")
    if cust.get("phone") and not re.fullmatch(r"\d{7,15}", cust["phone"]):
        raise yk_error(400, "invalid_request", "phone must be ITU-T E.164 digits", "receipt.customer.phone")
    items = receipt.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= 100:
        raise yk_error(400, "invalid_request", "receipt.items must have 1..100 items", "receipt.items")
    s = Decimal(0)
    for i, it in enumerate(items):
        p = "receipt.items[%d]" % i
        extra = set(it) - {"description", "quantity", "amount", "vat_code", "payment_subject",
                           "payment_mode", "measure", "country_of_origin_code", "excise",
                           "product_code", "supplier", "agent_type", "mark_mode"}
        if extra:
            raise yk_error(400, "invalid_request", "unknown item fields %s" % sorted(extra), p)
        d = it.get("description")
        if not isinstance(d, str) or not 1 <= len(d) <= 128:
            raise yk_error(400, "invalid_request", "description must be 1..128 characters", p + ".description")
        q = it.get("quantity")
        if isinstance(q, bool) or not isinstance(q, (int, float, str)) or Decimal(str(q)) <= 0:
            raise yk_error(400, "invalid_request", "quantity must be a positive number", p + ".quantity")
        a = yk_amount(it.get("amount"), p + ".amount")
        if it["amount"]["currency"] != currency:
            raise yk_error(400, "invalid_request", "item currency differs", p + ".amount.currency")
        if not isinstance(it.get("vat_code"), int) or not 1 <= it["vat_code"] <= 12:
            raise yk_error(400, "invalid_request", "vat_code must be an integer 1..12", p + ".vat_code")
        if it.get("payment_subject") not in ("commodity", "service", "job", "payment", "another"):
            raise yk_error(400, "invalid_request", "bad payment_subject", p + ".payment_subject")
        if it.get("payment_mode") not in ("full_prepayment", "full_payment", "partial_prepayment", "advance"):
            raise yk_error(400, "invalid_request", "bad payment_mode", p + ".payment_mode")
        s += a * Decimal(str(q))
    if s != total:
        raise yk_error(400, "invalid_request", "the receipt items add up to %s, the payment is %s" % (s, total), "receipt.items")


def yookassa(method, path, body, headers):
    want = "Basic " + base64.b64encode(("%s:%s" % (YK_SHOP, YK_SECRET)).encode()).decode()
    if headers.get("authorization") != want:
        raise yk_error(401, "invalid_credentials", "Authentication by given credentials failed")
    if method == "POST" and not headers.get("idempotence-key"):
        raise yk_error(400, "invalid_request", "Idempotence-Key header is required", "Idempotence-Key")
    if path == "/v3/refunds" and method == "POST":
        p = STATE["yk"].get(body.get("payment_id", ""))
        if not p:
            raise yk_error(404, "not_found", "payment not found", "payment_id")
        amount = yk_amount(body.get("amount"), "amount")
        if set(body) - {"payment_id", "amount", "description", "receipt", "sources", "deal"}:
            raise yk_error(400, "invalid_request", "unknown refund fields")
        if "receipt" in body:
            yk_check_receipt(body["receipt"], amount, body["amount"]["currency"])
        elif p.get("_receipt"):
            raise yk_error(400, "invalid_request", "receipt is required: the payment had one", "receipt")
        refunded = Decimal(p.get("refunded_amount", {}).get("value", "0"))
        if p["status"] != "succeeded" or amount > Decimal(p["amount"]["value"]) - refunded:
            raise yk_error(400, "invalid_request", "refund amount exceeds the payment's remainder", "amount")
        p["refunded_amount"] = {"value": "%.2f" % (refunded + amount), "currency": p["amount"]["currency"]}
        ref = {"id": str(uuid.uuid4()), "payment_id": p["id"], "status": "succeeded",
               "amount": body["amount"], "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
        STATE["yk_refunds"][ref["id"]] = ref
        return 200, ref
    m = re.fullmatch(r"/v3/payments(?:/([0-9a-f-]+))?(?:/(capture|cancel))?", path)
    if not m:
        raise yk_error(404, "not_found", "unknown path")
    pid, action = m.group(1), m.group(2)
    if pid is None and method == "POST":
        allowed = {"amount", "description", "receipt", "recipient", "payment_token", "payment_method_id",
                   "payment_method_data", "confirmation", "save_payment_method", "capture",
                   "client_ip", "metadata", "airline", "transfers", "deal", "merchant_customer_id",
                   "payment_order", "receiver"}
        if set(body) - allowed:
            raise yk_error(400, "invalid_request", "unknown fields %s" % sorted(set(body) - allowed))
        total = yk_amount(body.get("amount"), "amount")
        if total <= 0:
            raise yk_error(400, "invalid_request", "amount must be positive", "amount.value")
        conf = body.get("confirmation")
        if not isinstance(conf, dict) or conf.get("type") != "redirect" or not conf.get("return_url"):
            raise yk_error(400, "invalid_request", "confirmation redirect needs return_url", "confirmation")
        if "description" in body and len(body["description"]) > 128:
            raise yk_error(400, "invalid_request", "description is longer than 128", "description")
        if "capture" in body and not isinstance(body["capture"], bool):
            raise yk_error(400, "invalid_request", "capture must be boolean", "capture")
        if "receipt" in body:
            yk_check_receipt(body["receipt"], total, body["amount"]["currency"])
        pid = str(uuid.uuid4())
        p = {"id": pid, "status": "pending", "paid": False, "amount": body["amount"],
             "confirmation": {"type": "redirect", "return_url": conf["return_url"],
                              "confirmation_url": "https://yoomoney.ru/checkout/payments/v2/contract?orderId=" + pid},
             "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "description": body.get("description"),
             "metadata": body.get("metadata", {}), "recipient": {"account_id": YK_SHOP, "gateway_id": "1"},
             "refundable": False, "test": True, "_capture": body.get("capture", False),
             "_receipt": "receipt" in body}
        STATE["yk"][pid] = p
        return 200, p
    p = STATE["yk"].get(pid)
    if not p:
        raise yk_error(404, "not_found", "payment not found")
    if method == "GET" and not action:
        return 200, p
    if action == "capture":
        if p["status"] != "waiting_for_capture":
            raise yk_error(400, "invalid_request", "payment is %s" % p["status"])
        if body.get("amount"):
            amount = yk_amount(body["amount"], "amount")
            if amount > Decimal(p["amount"]["value"]):
                raise yk_error(400, "invalid_request", "capture above the payment", "amount")
            p["amount"] = body["amount"]
        p.update(status="succeeded", paid=True, refundable=True, captured_at=time.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        return 200, p
    if action == "cancel":
        if p["status"] not in ("pending", "waiting_for_capture"):
            raise yk_error(400, "invalid_request", "payment is %s" % p["status"])
        p.update(status="canceled", cancellation_details={"party": "merchant", "reason": "canceled_by_merchant"})
        return 200, p
    raise yk_error(404, "not_found", "unknown path")


# ---- the server ------------------------------------------------------------------------

def act(req):
    prov, action, id_ = req["provider"], req["action"], req["id"]
    if prov == "stripe":
        pi = STATE["pi"][id_]
        if action == "confirm":
            if pi["capture_method"] == "manual":
                pi.update(status="requires_capture", amount_capturable=pi["amount"])
            else:
                pi.update(status="succeeded", amount_received=pi["amount"])
        return public(pi)
    if prov == "paypal":
        o = STATE["pp_orders"][id_]
        o["status"] = "APPROVED"
        return paypal_public(o)
    p = STATE["yk"][id_]
    if action == "pay":
        p.update(paid=True, status="succeeded" if p["_capture"] else "waiting_for_capture")
        if p["_capture"]:
            p["refundable"] = True
    return public(p)


def default(o):
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, set):
        return sorted(o)
    raise TypeError(type(o))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, extra=None):
        if isinstance(body, str):
            data, ctype = body.encode(), "application/x-pem-file"
        else:
            data, ctype = json.dumps(body, default=default).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def handle_any(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        path = urllib.parse.urlsplit(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        if path.startswith("/_control"):
            return self.control(method, path, raw)
        provider = ("stripe" if path.startswith("/v1/payment_intents") or path.startswith("/v1/refunds")
                    else "yookassa" if path.startswith("/v3/") else "paypal")
        idem_header = {"stripe": "idempotency-key", "paypal": "paypal-request-id",
                       "yookassa": "idempotence-key"}[provider]
        key = headers.get(idem_header)
        entry = {"method": method, "path": path, "provider": provider, "key": key,
                 "stripe_version": headers.get("stripe-version"),
                 "content_type": headers.get("content-type", ""), "violations": [], "body": raw}
        with LOCK:
            STATE["log"].append(entry)
            fault = self.take_fault(method, path)
        if fault and not fault.get("after"):
            entry["status"] = fault.get("status", 500)
            if fault.get("delay"):
                time.sleep(fault["delay"])
            extra = {"Stripe-Should-Retry": fault["should_retry"]} if "should_retry" in fault else None
            return self.send(entry["status"], {"error": {"type": "api_error", "message": "injected fault"}}, extra)
        status, body = self.process(provider, method, path, raw, headers, key, entry)
        entry["status"] = status
        if fault and fault.get("after"):
            if fault.get("drop"):
                self.close_connection = True
                self.connection.shutdown(2)
                return
            time.sleep(fault.get("delay", 2))
        self.send(status, body)

    def take_fault(self, method, path):
        for f in STATE["faults"]:
            if f.get("times", 1) > 0 and ("%s %s" % (method, path)).startswith(f["match"]):
                f["times"] = f.get("times", 1) - 1
                return f
        return None

    def process(self, provider, method, path, raw, headers, key, entry):
        ctype = headers.get("content-type", "")
        if provider in ("stripe", "paypal") and path not in ("/v1/oauth2/token",) and \
                not path.startswith("/v1/notifications/certs/"):
            entry["violations"] = validate(provider, method, path, raw, ctype)
            if entry["violations"]:
                if provider == "stripe":
                    return 400, {"error": {"type": "invalid_request_error",
                                           "message": "; ".join(entry["violations"])[:500]}}
                return 400, {"name": "INVALID_REQUEST", "message": "; ".join(entry["violations"])[:500],
                             "details": []}
        with LOCK:
            if key and method == "POST":
                stored = STATE["idem"].get((provider, key))
                if stored:
                    if stored["request"] != (method, path, raw):
                        if provider == "stripe":
                            return 400, {"error": {"type": "idempotency_error", "message":
                                                   "Keys for idempotent requests can only be used with the same parameters they were first used with."}}
                        return 422, {"name": "UNPROCESSABLE_ENTITY", "message": "idempotency key reused with another request"}
                    entry["replayed"] = True
                    return stored["status"], stored["body"]
            try:
                if provider == "stripe":
                    status, body = stripe(method, path, parse_form(raw), headers)
                elif provider == "paypal":
                    data = json.loads(raw) if raw and ctype.startswith("application/json") else {}
                    status, body = paypal(method, path, data, headers, raw)
                else:
                    data = json.loads(raw) if raw else {}
                    status, body = yookassa(method, path, data, headers)
                body = public(body) if isinstance(body, dict) else body
                body = json.loads(json.dumps(body, default=default)) if isinstance(body, dict) else body
            except Answer as a:
                status, body = a.status, a.body
            except (KeyError, ValueError, TypeError) as e:
                status, body = 400, {"error": {"type": "invalid_request_error", "message": "bad request: %r" % (e,)}}
            if key and method == "POST" and status < 500:
                STATE["idem"][(provider, key)] = {"request": (method, path, raw), "status": status, "body": body}
            return status, body

    @staticmethod
    def counts():
        return {"stripe_intents": len(STATE["pi"]), "stripe_refunds": len(STATE["re"]),
                "paypal_orders": len(STATE["pp_orders"]), "paypal_refunds": len(STATE["pp_refunds"]),
                "paypal_tokens": STATE["token_count"], "yookassa_payments": len(STATE["yk"]),
                "yookassa_refunds": len(STATE["yk_refunds"])}

    def control(self, method, path, raw):
        with LOCK:
            if path == "/_control/faults" and method == "POST":
                STATE["faults"] = json.loads(raw)
                return self.send(200, {"ok": True})
            if path == "/_control/act" and method == "POST":
                return self.send(200, act(json.loads(raw)))
            if path == "/_control/cert" and method == "POST":
                STATE["cert"] = raw
                return self.send(200, {"ok": True})
            if path == "/_control/reset" and method == "POST":
                # Objects stay (a payment made earlier may still be reconciled); the log and
                # faults are cleared and the counts below start again from here.
                STATE["log"] = []
                STATE["faults"] = []
                STATE["baseline"] = self.counts()
                return self.send(200, {"ok": True})
            if path == "/_control/log":
                return self.send(200, {"log": STATE["log"]})
            if path == "/_control/state":
                base = STATE.get("baseline", {})
                out = {k: v - base.get(k, 0) for k, v in self.counts().items()}
                out["violations"] = [v for e in STATE["log"] for v in e["violations"]]
                out["specs"] = sorted(SPECS)
                return self.send(200, out)
        return self.send(404, {"error": "unknown control"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    load_specs()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
