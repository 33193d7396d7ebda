"""Accounts over HTTP on the real binary: registration, sessions, profile, address book,
favourites, roles guarding the catalog and the user admin, operator injection, validation,
rate limits. Responses are validated against docs/openapi.json."""
import os
import subprocess
import json
import re
import shutil
import tempfile
import unittest

from test_notify_worker import SMTP_PASSWORD, SMTP_USER, SmtpFake
from floratest import ADMIN_TOKEN, BINARY, SOURCE_DIR, Flora, free_port
from test_openapi import load_doc, resolve, validator_for

SMALL = os.path.join(SOURCE_DIR, "tests", "data", "catalog", "small.json")
CHEAP_ARGON2 = {"FLORA_AUTH_ARGON2_OPSLIMIT": "1", "FLORA_AUTH_ARGON2_MEMLIMIT": "8192"}
PER_EMAIL = 5


def bearer(token):
    return {"Authorization": "Bearer " + token}


class UsersApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()
        cls.flora = Flora(dict(CHEAP_ARGON2, FLORA_AUTH_RATE_LIMIT_PER_EMAIL=str(PER_EMAIL),
                               FLORA_AUTH_RATE_LIMIT_PER_IP="100000"))
        cls.flora.run("migrate", "up")
        cls.flora.run("import", "catalog", SMALL)
        env = dict(cls.flora.env, FLORA_USER_PASSWORD="admin-password-1")
        res = subprocess.run([BINARY, "users", "create", "Boss@Example.RU", "--role", "admin"],
                             env=env, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise AssertionError("users create: " + res.stderr)
        cls.flora.start()

    @classmethod
    def tearDownClass(cls):
        cls.flora.close()

    # -- helpers ---------------------------------------------------------------------

    def call(self, method, path, body=None, token=None, expect=None, template=None, raw=None,
             headers=None):
        """A request whose answer (when documented) must match docs/openapi.json."""
        hdrs = dict(headers or {})
        if token:
            hdrs.update(bearer(token))
        status, rh, payload = self.flora.request(method, path, body=body, headers=hdrs, raw=raw)
        if expect is not None:
            self.assertEqual(status, expect, (method, path, payload))
        op = self.doc["paths"].get(template or path, {}).get(method.lower())
        if op and str(status) in op["responses"]:
            response = resolve(self.doc, op["responses"][str(status)])
            content = response.get("content", {}).get("application/json")
            if content and isinstance(payload, (dict, list)):
                validator_for(self.doc, content["schema"]).validate(payload)
        return status, rh, payload

    def register(self, email, password="password-123", name="Тест", **extra):
        body = dict(email=email, password=password, name=name, **extra)
        return self.call("POST", "/api/v1/auth/register", body)

    def login(self, email, password="password-123", expect=200):
        _, _, body = self.call("POST", "/api/v1/auth/login", {"email": email, "password": password},
                               expect=expect)
        return body.get("token") if expect == 200 else body

    def admin_login(self):
        return self.login("boss@example.ru", "admin-password-1")

    def product_id(self):
        _, _, page = self.call("GET", "/api/v1/products", expect=200)
        slug = page["items"][0]["slug"]
        _, _, product = self.call("GET", "/api/v1/products/" + slug, expect=200)
        return product["_id"]

    # -- tests -----------------------------------------------------------------------

    def test_whole_flow(self):
        status, headers, user = self.register("Anna@Example.ru", phone="8 (916) 123-45-67")
        self.assertEqual(status, 201, user)
        self.assertEqual(user["email"], "anna@example.ru")
        self.assertEqual(user["phone"], "+79161234567")
        self.assertEqual(user["role"], "customer")
        self.assertNotIn("passwordHash", user)
        # The same e-mail in another case, the same phone in another form: 409.
        status, _, body = self.register("ANNA@example.RU")
        self.assertEqual(status, 409, body)
        self.assertIn("email", body["error"]["message"])
        status, _, body = self.register("anna2@example.ru", phone="+7 916 123 45 67")
        self.assertEqual(status, 409, body)
        self.assertIn("phone", body["error"]["message"])

        token = self.login("anna@EXAMPLE.ru")
        other = self.login("anna@example.ru")
        _, _, me = self.call("GET", "/api/v1/me", token=token, expect=200)
        self.assertEqual(me["email"], "anna@example.ru")
        self.assertIn("lastLoginAt", me)
        self.assertNotIn("passwordHash", me)
        _, _, me = self.call("PATCH", "/api/v1/me", {"name": "Анна", "phone": None}, token=token, expect=200)
        self.assertEqual(me["name"], "Анна")
        self.assertNotIn("phone", me)

        # Address book.
        _, _, a1 = self.call("POST", "/api/v1/me/addresses",
                             {"recipientName": "Ольга", "phone": "8 916 111-22-33", "text": "Москва, Тверская 1"},
                             token=token, expect=201)
        self.assertTrue(a1["isDefault"])
        _, _, a2 = self.call("POST", "/api/v1/me/addresses",
                             {"label": "work", "recipientName": "Ира", "phone": "+79161112234",
                              "text": "Москва, Арбат 2", "lat": 55.75, "lon": 37.59, "isDefault": True},
                             token=token, expect=201)
        _, _, book = self.call("GET", "/api/v1/me/addresses", token=token, expect=200)
        self.assertEqual([a["isDefault"] for a in book["items"]], [False, True])
        _, _, a1b = self.call("PATCH", "/api/v1/me/addresses/" + a1["_id"], {"text": "Москва, Тверская 3"},
                              token=token, expect=200, template="/api/v1/me/addresses/{id}")
        self.assertEqual(a1b["text"], "Москва, Тверская 3")
        self.call("DELETE", "/api/v1/me/addresses/" + a2["_id"], token=token, expect=204,
                  template="/api/v1/me/addresses/{id}")
        self.call("DELETE", "/api/v1/me/addresses/" + a2["_id"], token=token, expect=404,
                  template="/api/v1/me/addresses/{id}")
        self.call("DELETE", "/api/v1/me/addresses/not-an-id", token=token, expect=404,
                  template="/api/v1/me/addresses/{id}")

        # Favourites.
        pid = self.product_id()
        path = "/api/v1/me/favourites/" + pid
        self.call("PUT", path, token=token, expect=204, template="/api/v1/me/favourites/{productId}")
        self.call("PUT", path, token=token, expect=204, template="/api/v1/me/favourites/{productId}")
        _, _, fav = self.call("GET", "/api/v1/me/favourites", token=token, expect=200)
        self.assertEqual(fav["items"], [pid])
        self.call("PUT", "/api/v1/me/favourites/" + "0" * 24, token=token, expect=404,
                  template="/api/v1/me/favourites/{productId}")
        self.call("DELETE", path, token=token, expect=204, template="/api/v1/me/favourites/{productId}")
        _, _, fav = self.call("GET", "/api/v1/me/favourites", token=token, expect=200)
        self.assertEqual(fav["items"], [])

        # Changing the password ends the other sessions, not this one.
        self.call("POST", "/api/v1/me/password", {"currentPassword": "wrong-one", "newPassword": "new-password-1"},
                  token=token, expect=401)
        self.call("POST", "/api/v1/me/password", {"currentPassword": "password-123", "newPassword": "new-password-1"},
                  token=token, expect=204)
        self.call("GET", "/api/v1/me", token=other, expect=401)
        self.call("GET", "/api/v1/me", token=token, expect=200)
        self.login("anna@example.ru", "password-123", expect=401)
        self.login("anna@example.ru", "new-password-1")

        # Logging out ends the session.
        self.call("POST", "/api/v1/auth/logout", token=token, expect=204)
        self.call("GET", "/api/v1/me", token=token, expect=401)

    def test_protected_routes_need_a_valid_token(self):
        status, headers, body = self.call("GET", "/api/v1/me", expect=401)
        self.assertEqual(headers.get("www-authenticate"), "Bearer")
        self.assertEqual(body["error"]["code"], "unauthorized")
        self.call("GET", "/api/v1/me", token="not-a-real-token", expect=401)
        self.call("POST", "/api/v1/auth/logout", expect=401)
        # A public route ignores an unknown token.
        self.call("GET", "/api/v1/categories", token="not-a-real-token", expect=200)
        # The operator token is admin but has no profile.
        self.call("GET", "/api/v1/admin/users", token=ADMIN_TOKEN, expect=200)
        self.call("GET", "/api/v1/me", token=ADMIN_TOKEN, expect=403)

    def test_roles_guard_catalog_and_user_admin(self):
        self.register("mila@example.ru")
        token = self.login("mila@example.ru")
        new = {"sku": "ROLE-1", "name": "Ролевой букет",
               "variants": [{"sku": "ROLE-1-M", "name": "M", "price": 1000, "stock": 1}]}
        status, _, body = self.call("POST", "/api/v1/admin/products", new, token=token, expect=403)
        self.assertEqual(body["error"]["code"], "forbidden")
        self.call("GET", "/api/v1/admin/users", token=token, expect=403)

        admin = self.admin_login()
        _, _, page = self.call("GET", "/api/v1/admin/users?role=customer&pageSize=100", token=admin, expect=200,
                               template="/api/v1/admin/users")
        mila = [u for u in page["items"] if u["email"] == "mila@example.ru"][0]
        self.assertTrue(all("passwordHash" not in u for u in page["items"]))
        self.call("GET", "/api/v1/admin/users?role=boss", token=admin, expect=400, template="/api/v1/admin/users")
        role_path = "/api/v1/admin/users/%s/role" % mila["_id"]
        tmpl = "/api/v1/admin/users/{id}/role"
        self.call("PATCH", role_path, {"role": "emperor"}, token=admin, expect=422, template=tmpl)
        _, _, promoted = self.call("PATCH", role_path, {"role": "manager"}, token=admin, expect=200, template=tmpl)
        self.assertEqual(promoted["role"], "manager")
        # The live session carries the new role: a manager edits the catalog...
        self.call("POST", "/api/v1/admin/products", new, token=token, expect=201)
        self.call("DELETE", "/api/v1/admin/products/rolevoi-buket", token=token, expect=204,
                  template="/api/v1/admin/products/{slug}")
        # ...but does not administer users.
        self.call("GET", "/api/v1/admin/users", token=token, expect=403)
        self.call("PATCH", role_path, {"role": "customer"}, token=admin, expect=200, template=tmpl)
        self.call("POST", "/api/v1/admin/products", new, token=token, expect=403)
        self.call("PATCH", "/api/v1/admin/users/%s/role" % ("0" * 24), {"role": "admin"}, token=admin,
                  expect=404, template=tmpl)

    def test_operator_injection_is_refused(self):
        self.register("ivan@example.ru")
        for body, field in [
            ({"email": {"$ne": None}, "password": "x"}, "email"),
            ({"email": "ivan@example.ru", "password": {"$gt": ""}}, "password"),
            ({"email": ["ivan@example.ru"], "password": "x"}, "email"),
        ]:
            status, _, answer = self.call("POST", "/api/v1/auth/login", body, expect=400)
            self.assertEqual(answer["error"]["field"], field, answer)
            self.assertEqual(answer["error"]["code"], "invalid_argument", answer)
        # Extended JSON wrappers are operators too: {"$regex": ...} would parse as a regex.
        _, _, answer = self.call("POST", "/api/v1/auth/password-reset", {"email": {"$regex": ".*"}}, expect=400)
        self.assertEqual(answer["error"]["field"], "email")
        _, _, answer = self.call("POST", "/api/v1/auth/register",
                                 {"email": "y@example.ru", "password": "password-123", "name": "Y",
                                  "meta": {"when": {"$date": "2026-01-01T00:00:00Z"}}}, expect=400)
        self.assertEqual(answer["error"]["field"], "meta.when")
        _, _, answer = self.call("POST", "/api/v1/auth/register",
                                 {"email": "x@example.ru", "password": "password-123", "name": "X",
                                  "extra": {"$where": "1"}}, expect=400)
        self.assertEqual(answer["error"]["field"], "extra")
        token = self.login("ivan@example.ru")
        _, _, answer = self.call("POST", "/api/v1/me/addresses",
                                 {"recipientName": "A", "phone": "+79160000000", "text": {"$ne": ""}},
                                 token=token, expect=400)
        self.assertEqual(answer["error"]["field"], "text")

    def test_validation_lists_every_field(self):
        status, _, body = self.call("POST", "/api/v1/auth/register",
                                    {"email": 5, "password": "short", "name": "", "phone": "12",
                                     "bogus": True}, expect=422)
        paths = sorted(d["path"] for d in body["error"]["details"])
        self.assertEqual(paths, ["bogus", "email", "name", "password", "phone"])
        status, _, body = self.call("POST", "/api/v1/auth/login",
                                    {"email": "a" * 300, "password": 1, "remember": True}, expect=422)
        self.assertEqual(sorted(d["path"] for d in body["error"]["details"]),
                         ["email", "password", "remember"])
        self.call("POST", "/api/v1/auth/login", raw=b"not json",
                  headers={"Content-Type": "application/json"}, expect=400)

    def test_wrong_password_and_unknown_email_look_the_same(self):
        self.register("petr@example.ru")
        _, _, wrong = self.call("POST", "/api/v1/auth/login",
                                {"email": "petr@example.ru", "password": "not-his-password"}, expect=401)
        _, _, unknown = self.call("POST", "/api/v1/auth/login",
                                  {"email": "nobody@example.ru", "password": "not-his-password"}, expect=401)
        self.assertEqual(wrong, unknown)

    def test_reset_request_answers_the_same(self):
        self.register("vera@example.ru")
        _, _, known = self.call("POST", "/api/v1/auth/password-reset", {"email": "vera@example.ru"}, expect=202)
        _, _, unknown = self.call("POST", "/api/v1/auth/password-reset", {"email": "ghost@example.ru"}, expect=202)
        self.assertEqual(known, unknown)
        self.call("POST", "/api/v1/auth/password-reset/confirm",
                  {"token": "made-up-token", "password": "another-password"}, expect=401)

    def test_password_reset_through_the_outbox(self):
        self.register("nina@example.ru")
        session = self.login("nina@example.ru")
        self.call("POST", "/api/v1/auth/password-reset", {"email": "Nina@Example.ru"}, expect=202)
        # Staff see the message, never its link: the link would let them take the account.
        status, _, page = self.flora.request("GET", "/api/v1/admin/notifications?pageSize=200",
                                             headers=bearer(ADMIN_TOKEN))
        self.assertEqual(status, 200, page)
        mine = [m for m in page["items"]
                if m["event"] == "user.password_reset" and m["payload"]["to"]["email"] == "nina@example.ru"]
        self.assertEqual(len(mine), 1, page)
        self.assertNotIn("resetUrl", mine[0]["payload"])
        self.assertNotIn("token=", json.dumps(page))
        # The token reaches the user only by e-mail: deliver the outbox to an SMTP server.
        folder = tempfile.mkdtemp(prefix="flora-reset-mail-")
        smtp = SmtpFake(folder, free_port()).start()
        try:
            env = dict(self.flora.env)
            self.flora.env.update({
                "FLORA_NOTIFY_SMTP_URL": "smtp://127.0.0.1:%d" % smtp.port,
                "FLORA_NOTIFY_SMTP_TLS": "none",
                "FLORA_NOTIFY_SMTP_USER": SMTP_USER,
                "FLORA_NOTIFY_SMTP_PASSWORD": SMTP_PASSWORD,
                "FLORA_NOTIFY_FROM_ADDRESS": "shop@flora.example",
            })
            self.flora.run("worker", "--once")
            self.flora.env = env
            texts = [m.get_body(("plain",)).get_content() for m in smtp.messages()
                     if "nina@example.ru" in str(m["To"])]
        finally:
            smtp.stop()
            shutil.rmtree(folder, ignore_errors=True)
        self.assertEqual(len(texts), 1, texts)
        token = re.search(r"token=([A-Za-z0-9_-]+)", texts[0]).group(1)
        confirm = {"token": token, "password": "brand-new-password"}
        self.call("POST", "/api/v1/auth/password-reset/confirm", confirm, expect=204)
        self.call("POST", "/api/v1/auth/password-reset/confirm", confirm, expect=401)  # single use
        self.call("GET", "/api/v1/me", token=session, expect=401)  # sessions ended
        self.login("nina@example.ru", "password-123", expect=401)
        self.login("nina@example.ru", "brand-new-password")

    def test_login_rate_limit(self):
        self.register("target@example.ru")
        for _ in range(PER_EMAIL):
            self.login("target@example.ru", "guess-guess", expect=401)
        status, headers, body = self.call("POST", "/api/v1/auth/login",
                                          {"email": "TARGET@example.ru", "password": "password-123"},
                                          expect=429)
        self.assertEqual(body["error"]["code"], "rate_limited")
        self.assertGreaterEqual(int(headers["retry-after"]), 1)
        # Other addresses are not affected.
        self.register("bystander@example.ru")
        self.login("bystander@example.ru")


if __name__ == "__main__":
    unittest.main()
