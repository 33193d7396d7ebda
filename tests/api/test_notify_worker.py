"""Notifications end to end: the real `flora worker` (and `flora serve` with the worker
inside) against a real SMTP server on loopback (aiosmtpd, tests/fakes/smtp_server.py) and
fakes of SMS.ru and Twilio (tests/fakes/sms_provider.py).

Must hold: the SMTP server down then up -> the message arrives exactly once; a provider
answering 500 -> retried, then delivered; the worker SIGKILLed in the middle of a batch ->
after a restart every message is delivered, and only the one in flight may arrive twice
(neither SMTP nor these SMS APIs deduplicate: docs/notifications.md)."""
import email
import email.policy
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from floratest import Flora, SOURCE_DIR, free_port

FAKES = os.path.join(SOURCE_DIR, "tests", "fakes")
SMTP_USER, SMTP_PASSWORD = "flora", "секрет-pw"
TWILIO_SID, TWILIO_TOKEN = "AC" + "1" * 32, "twilio-token"
SMSRU_API_ID = "smsru-api-id"

try:
    import aiosmtpd  # noqa: F401
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False


def wait_for(predicate, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class SmtpFake:
    def __init__(self, folder, port, delay=0.0):
        self.folder, self.port, self.delay, self.proc = folder, port, delay, None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(FAKES, "smtp_server.py"), "--port", str(self.port),
             "--dir", self.folder, "--user", SMTP_USER, "--password", SMTP_PASSWORD,
             "--delay", str(self.delay)], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError("SMTP fake did not start: %r" % line)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        if self.proc:
            self.proc.stdout.close()
        self.proc = None

    def messages(self):
        out = []
        for path in sorted(glob.glob(os.path.join(self.folder, "*.eml"))):
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            with open(path[:-4] + ".json") as f:
                msg.envelope = json.load(f)
            out.append(msg)
        return out


class SmsFake:
    def __init__(self, folder, fail_first=0):
        self.port = free_port()
        self.log = os.path.join(folder, "sms-%d.log" % self.port)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(FAKES, "sms_provider.py"), "--port", str(self.port),
             "--log", self.log, "--fail-first", str(fail_first), "--api-id", SMSRU_API_ID,
             "--account-sid", TWILIO_SID, "--auth-token", TWILIO_TOKEN],
            stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise AssertionError("SMS fake did not start")

    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def entries(self):
        try:
            with open(self.log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed (scripts/setup test)")
class NotifyWorker(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="flora-notify-")
        self.mail_dir = os.path.join(self.tmp, "mail")
        os.mkdir(self.mail_dir)
        self.smtp_port = free_port()
        self.smtp = SmtpFake(self.mail_dir, self.smtp_port)
        self.sms = None
        self.workers = []
        self.flora = None

    def tearDown(self):
        for w in self.workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        if self.flora:
            self.flora.close()
        self.smtp.stop()
        if self.sms:
            self.sms.stop()
        subprocess.run(["rm", "-rf", self.tmp])

    def make_flora(self, provider="twilio", fail_first=0, **extra):
        self.sms = SmsFake(self.tmp, fail_first)
        env = {
            "FLORA_NOTIFY_SMTP_URL": "smtp://127.0.0.1:%d" % self.smtp_port,
            "FLORA_NOTIFY_SMTP_TLS": "none",
            "FLORA_NOTIFY_SMTP_USER": SMTP_USER,
            "FLORA_NOTIFY_SMTP_PASSWORD": SMTP_PASSWORD,
            "FLORA_NOTIFY_SMTP_TIMEOUT_S": "5",
            "FLORA_NOTIFY_FROM_ADDRESS": "shop@flora.example",
            "FLORA_NOTIFY_FROM_NAME": "Флора — цветы",
            "FLORA_NOTIFY_SHOP_NAME": "Флора",
            "FLORA_NOTIFY_SMS_PROVIDER": provider,
            "FLORA_NOTIFY_TWILIO_URL": self.sms.url(),
            "FLORA_NOTIFY_TWILIO_ACCOUNT_SID": TWILIO_SID,
            "FLORA_NOTIFY_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "FLORA_NOTIFY_TWILIO_FROM": "+15005550006",
            "FLORA_NOTIFY_SMSRU_URL": self.sms.url(),
            "FLORA_NOTIFY_SMSRU_API_ID": SMSRU_API_ID,
            "FLORA_NOTIFY_RETRY_BASE_MS": "100",
            "FLORA_NOTIFY_RETRY_MAX_MS": "400",
            "FLORA_NOTIFY_POLL_INTERVAL_MS": "50",
            "FLORA_NOTIFY_QUIET_HOURS_START": "0",
            "FLORA_NOTIFY_QUIET_HOURS_END": "0",
            "FLORA_NOTIFY_SMS_RATE_LIMIT": "1000",
        }
        env.update({k: str(v) for k, v in extra.items()})
        self.flora = Flora(env)
        self.flora.run("migrate", "up")
        return self.flora

    def enqueue(self, n, name="Анна Смирнова", email_addr="anna@example.ru",
                phone="+79161234567", dedupe=None):
        to = {"locale": "ru"}
        if email_addr:
            to["email"] = email_addr
        if phone:
            to["phone"] = phone
        payload = {"name": name, "resetUrl": "https://flora.example/reset?t=%d&x=1" % n, "to": to}
        args = ["notify", "enqueue", "user.password_reset", "--payload",
                json.dumps(payload, ensure_ascii=False)]
        if dedupe:
            args += ["--dedupe", dedupe]
        self.flora.run(*args)

    def start_worker(self):
        log = open(os.path.join(self.tmp, "worker-%d.log" % len(self.workers)), "w")
        proc = subprocess.Popen([os.environ["FLORA_BINARY"], "worker"], env=self.flora.env,
                                stdout=subprocess.DEVNULL, stderr=log)
        log.close()
        self.workers.append(proc)
        return proc

    def outbox(self, status=None):
        path = "/api/v1/admin/notifications?pageSize=200" + ("&status=" + status if status else "")
        code, _, body = self.flora.request("GET", path, admin=True)
        self.assertEqual(code, 200, body)
        return body

    # ---- e-mail content --------------------------------------------------------------

    def test_email_and_sms_content(self):
        self.make_flora()
        self.smtp.start()
        self.enqueue(1)
        self.enqueue(1, dedupe="reset:1")
        self.enqueue(1, dedupe="reset:1")  # the same key: a no-op
        self.flora.run("worker", "--once")
        mails = self.smtp.messages()
        self.assertEqual(len(mails), 2)
        msg = mails[0]
        self.assertEqual(str(msg["Subject"]), "Восстановление пароля — Флора")
        self.assertTrue(msg["Subject"] is not None)
        with open(sorted(glob.glob(os.path.join(self.mail_dir, "*.eml")))[0], "rb") as f:
            raw = f.read()
        self.assertIn(b"=?UTF-8?B?", raw)  # RFC 2047 on the wire
        self.assertEqual(msg["From"].addresses[0].display_name, "Флора — цветы")
        self.assertEqual(msg["From"].addresses[0].addr_spec, "shop@flora.example")
        self.assertEqual(msg["To"].addresses[0].display_name, "Анна Смирнова")
        self.assertEqual(msg["To"].addresses[0].addr_spec, "anna@example.ru")
        self.assertRegex(str(msg["Message-ID"]), r"^<[0-9a-f]{24}\.0@flora\.example>$")
        self.assertIsNotNone(msg["Date"].datetime)
        self.assertEqual(msg["MIME-Version"], "1.0")
        self.assertEqual(msg.envelope["mail_from"], "shop@flora.example")
        self.assertEqual(msg.envelope["rcpt_tos"], ["anna@example.ru"])
        self.assertEqual(msg.envelope["login"], SMTP_USER)
        alt = [p for p in msg.walk() if p.get_content_type() == "multipart/alternative"]
        self.assertEqual(len(alt), 1)
        parts = [p.get_content_type() for p in alt[0].iter_parts()]
        self.assertEqual(parts, ["text/plain", "text/html"])
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        self.assertIn("Здравствуйте, Анна Смирнова!", text)
        self.assertIn("https://flora.example/reset?t=1&x=1", text)
        self.assertIn('href="https://flora.example/reset?t=1&amp;x=1"', html)
        self.assertEqual(msg.get_body(("plain",))["Content-Transfer-Encoding"], "quoted-printable")
        self.assertNotEqual(mails[0]["Message-ID"], mails[1]["Message-ID"])
        sms = [e for e in self.sms.entries()]
        self.assertEqual([e["outcome"] for e in sms], ["accepted", "accepted"], sms)
        self.assertEqual(sms[0]["provider"], "twilio")
        self.assertEqual(sms[0]["fields"]["To"], "+79161234567")
        self.assertEqual(sms[0]["fields"]["From"], "+15005550006")
        self.assertEqual(sms[0]["fields"]["Body"],
                         "Флора: ссылка для смены пароля https://flora.example/reset?t=1&x=1")
        self.flora.start()
        page = self.outbox("sent")
        self.assertEqual(page["total"], 2)
        for item in page["items"]:
            self.assertEqual([d["status"] for d in item["deliveries"]], ["sent", "sent"])
            self.assertTrue(item["deliveries"][1]["providerId"].startswith("SM"))
            self.assertEqual(item["deliveries"][1]["segments"], 1)  # UCS-2, 66 characters: one part

    # ---- must hold -------------------------------------------------------------------

    def test_smtp_down_then_up_exactly_once(self):
        self.make_flora(FLORA_NOTIFY_WORKER_IN_SERVE="true")
        self.flora.start()  # the worker runs inside serve; nothing listens on the SMTP port
        self.enqueue(7, phone=None)
        failed = wait_for(lambda: [m for m in self.outbox("failed")["items"] if m["attempts"] >= 2],
                          what="failed attempts while SMTP is down")
        self.assertIn("SMTP", failed[0]["lastError"])
        self.assertEqual(self.smtp.messages(), [])
        self.smtp.start()
        wait_for(lambda: self.outbox("sent")["total"] == 1, what="delivery after recovery")
        time.sleep(1.0)  # a duplicate would arrive within a few retry periods
        mails = self.smtp.messages()
        self.assertEqual(len(mails), 1)
        self.assertIn("t=7&x=1", mails[0].get_body(("plain",)).get_content())
        sent = self.outbox("sent")["items"][0]
        self.assertGreaterEqual(sent["attempts"], 3)
        self.assertIsNone(sent["leaseOwner"])
        # SIGTERM stops serve and its worker cleanly
        self.assertEqual(self.flora.stop(), 0)

    def test_provider_500_retried_then_delivered(self):
        for provider in ("smsru", "twilio"):
            with self.subTest(provider=provider):
                if self.flora:
                    self.flora.close()
                    self.sms.stop()
                self.make_flora(provider=provider, fail_first=2)
                self.enqueue(3, email_addr=None)
                worker = self.start_worker()
                wait_for(lambda: [e for e in self.sms.entries() if e["outcome"] == "accepted"],
                         what="SMS accepted after the 500s")
                time.sleep(0.8)
                worker.send_signal(signal.SIGTERM)
                self.assertEqual(worker.wait(timeout=30), 0)
                outcomes = [e["outcome"] for e in self.sms.entries()]
                self.assertEqual(outcomes, ["failed", "failed", "accepted"])
                fields = self.sms.entries()[-1]["fields"]
                if provider == "smsru":
                    self.assertEqual(fields["to"], "79161234567")
                    self.assertEqual(fields["json"], "1")
                    self.assertIn("t=3&x=1", fields["msg"])
                else:
                    self.assertEqual(fields["To"], "+79161234567")
                self.flora.start()
                item = self.outbox("sent")["items"][0]
                self.assertEqual(item["deliveries"][0]["attempts"], 3)
                self.flora.stop()

    def test_sigkill_mid_batch_then_restart(self):
        n = 24
        self.smtp = SmtpFake(self.mail_dir, self.smtp_port, delay=0.05)
        self.make_flora(FLORA_NOTIFY_LEASE_S=2, FLORA_NOTIFY_BATCH_SIZE=5)
        self.smtp.start()
        for i in range(n):
            self.enqueue(i)
        worker = self.start_worker()
        wait_for(lambda: len(self.smtp.messages()) >= 6, what="part of the batch")
        worker.kill()  # SIGKILL: no chance to release the lease
        worker.wait()
        delivered_before = len(self.smtp.messages())
        self.assertLess(delivered_before, n, "the worker finished before the kill; slow the fake")
        self.start_worker()
        wait_for(lambda: len({str(m["Message-ID"]) for m in self.smtp.messages()}) == n,
                 timeout=120, what="every message after the restart")
        wait_for(lambda: len([e for e in self.sms.entries() if e["outcome"] == "accepted"
                              and True]) >= n, timeout=60, what="every SMS")
        time.sleep(0.5)
        ids = [str(m["Message-ID"]) for m in self.smtp.messages()]
        duplicates = {i for i in ids if ids.count(i) > 1}
        # Only the message in flight at the kill may have been sent twice (SMTP has no
        # idempotency; the identical Message-ID lets the receiving side deduplicate).
        self.assertLessEqual(len(duplicates), 1, duplicates)
        bodies = [e["fields"]["Body"] for e in self.sms.entries() if e["outcome"] == "accepted"]
        self.assertEqual(len(set(bodies)), n)
        self.assertLessEqual(len(bodies) - n, 1)
        self.flora.start()
        self.assertEqual(self.outbox("sent")["total"], n)

    # ---- operations ------------------------------------------------------------------

    def test_dead_letter_list_and_resend(self):
        self.make_flora(FLORA_NOTIFY_WORKER_IN_SERVE="true", FLORA_NOTIFY_MAX_ATTEMPTS=2)
        self.flora.start()
        self.enqueue(9, phone=None)
        dead = wait_for(lambda: self.outbox("dead")["items"], what="dead letter")[0]
        self.assertEqual(dead["attempts"], 2)
        self.assertEqual(dead["deliveries"][0]["status"], "failed")
        code, _, body = self.flora.request("GET", "/api/v1/admin/notifications?status=nope", admin=True)
        self.assertEqual(code, 400)
        self.assertEqual(body["error"]["field"], "status")
        code, _, _ = self.flora.request("GET", "/api/v1/admin/notifications")
        self.assertEqual(code, 401)
        for role, expected in (("manager", 200), ("customer", 403)):
            email_addr = "%s@example.ru" % role
            res = subprocess.run([os.environ["FLORA_BINARY"], "users", "create", email_addr,
                                  "--role", role], env=dict(self.flora.env,
                                  FLORA_USER_PASSWORD="password-%s-1" % role),
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(res.returncode, 0, res.stderr)
            code, _, body = self.flora.request("POST", "/api/v1/auth/login",
                                               body={"email": email_addr,
                                                     "password": "password-%s-1" % role})
            self.assertEqual(code, 200, body)
            code, _, body = self.flora.request(
                "GET", "/api/v1/admin/notifications?status=dead",
                headers={"Authorization": "Bearer " + body["token"]})
            self.assertEqual(code, expected, body)
        code, _, _ = self.flora.request("POST", "/api/v1/admin/notifications/%s/resend" % ("0" * 24),
                                        admin=True)
        self.assertEqual(code, 404)
        self.smtp.start()
        code, _, body = self.flora.request(
            "POST", "/api/v1/admin/notifications/%s/resend" % dead["_id"], admin=True)
        self.assertEqual(code, 200, body)
        self.assertIn(body["status"], ("pending", "sending", "sent"))
        self.assertEqual(body["attempts"] if body["status"] == "pending" else 0, 0)
        wait_for(lambda: self.outbox("sent")["total"] == 1, what="delivery after resend")
        self.assertEqual(len(self.smtp.messages()), 1)
        code, _, body = self.flora.request(
            "POST", "/api/v1/admin/notifications/%s/resend" % dead["_id"], admin=True)
        self.assertEqual(code, 409, body)


class NotifyPreview(unittest.TestCase):
    def test_preview_from_order_file(self):
        flora = Flora({"FLORA_NOTIFY_SHOP_NAME": "Флора"})
        try:
            out = flora.run("notify", "preview", "order.created", "--order-file",
                            os.path.join(SOURCE_DIR, "tests", "data", "notify", "sample_order.json"),
                            "--locale", "en").stdout
            self.assertIn("Subject: Order FL-2026-000123 received — Флора", out)
            self.assertIn("Total: 3\u00a0050,00\u00a0\u20bd", out)
            self.assertIn("Анна &lt;Смирнова&gt; &amp; Co", out)
            self.assertIn("sms (2 segments, UCS-2, 89 units)", out)  # ₽ and – are not GSM-7
            bad = flora.run("notify", "preview", "order.created", check=False)
            self.assertEqual(bad.returncode, 2)
        finally:
            flora.close()


if __name__ == "__main__":
    unittest.main()
