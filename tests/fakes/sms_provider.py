"""A fake of the two SMS providers' send APIs, on loopback, following their published
documentation (standard library only):

- SMS.ru, https://sms.ru/api/send: POST (or GET) /sms/send with api_id, to (digits, the
  number in international format), msg, json=1; answers
  {"status": "OK", "status_code": 100, "sms": {"<to>": {"status": "OK", "status_code": 100,
  "sms_id": "..."}}, "balance": ...}; a wrong api_id gets {"status": "ERROR",
  "status_code": 200, "status_text": ...}.
- Twilio, https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource:
  POST /2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP Basic auth AccountSid:AuthToken,
  form fields To (E.164), From or MessagingServiceSid, Body; answers 201 with the Message
  resource ({"sid": "SM...", "status": "queued", ...}); bad credentials 401 and bad fields
  400 with {"code", "message", "more_info", "status"}.

    python3 sms_provider.py --port P --log FILE [--fail-first N] [--api-id ID]
                            [--account-sid AC...] [--auth-token TOKEN]

The first N well-formed requests are answered 500 (a provider outage). Every request is
appended to FILE as one JSON line {provider, outcome: accepted|failed|rejected, fields,
reason?}. Prints "ready" once listening."""
import argparse
import base64
import http.server
import json
import re
import secrets
import sys
import threading
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--api-id", default="test-api-id")
    ap.add_argument("--account-sid", default="AC" + "0" * 32)
    ap.add_argument("--auth-token", default="test-auth-token")
    args = ap.parse_args()
    lock = threading.Lock()
    state = {"failures_left": args.fail_first}

    def record(entry):
        with lock, open(args.log, "a") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def take_failure():
        with lock:
            if state["failures_left"] > 0:
                state["failures_left"] -= 1
                return True
        return False

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def form(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n).decode("utf-8")
            ctype = self.headers.get("Content-Type", "")
            if not ctype.startswith("application/x-www-form-urlencoded"):
                return None
            return {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

        def do_GET(self):
            self.answer(404, {"error": "not found"})

        def do_POST(self):
            path = urllib.parse.urlparse(self.path).path
            fields = self.form()
            if path == "/sms/send":
                return self.smsru(fields)
            m = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages\.json", path)
            if m:
                return self.twilio(m.group(1), fields)
            self.answer(404, {"error": "not found"})

        def smsru(self, fields):
            problems = []
            if fields is None:
                problems.append("not a form")
                fields = {}
            if fields.get("api_id") != args.api_id:
                record({"provider": "smsru", "outcome": "rejected", "fields": fields,
                        "reason": "api_id"})
                return self.answer(200, {"status": "ERROR", "status_code": 200,
                                         "status_text": "Неправильный api_id"})
            if not re.fullmatch(r"[1-9][0-9]{6,14}", fields.get("to", "")):
                problems.append("to must be digits in international format")
            if not fields.get("msg"):
                problems.append("msg is required")
            if fields.get("json") != "1":
                problems.append("json=1 is expected")
            if problems:
                record({"provider": "smsru", "outcome": "rejected", "fields": fields,
                        "reason": "; ".join(problems)})
                return self.answer(200, {"status": "OK", "status_code": 100, "sms": {
                    fields.get("to", ""): {"status": "ERROR", "status_code": 202,
                                           "status_text": "; ".join(problems)}}})
            if take_failure():
                record({"provider": "smsru", "outcome": "failed", "fields": fields})
                return self.answer(500, {"status": "ERROR", "status_code": 500})
            sms_id = "%06d-%d" % (secrets.randbelow(10 ** 6), secrets.randbelow(10 ** 9))
            record({"provider": "smsru", "outcome": "accepted", "fields": fields, "id": sms_id})
            self.answer(200, {"status": "OK", "status_code": 100, "sms": {
                fields["to"]: {"status": "OK", "status_code": 100, "sms_id": sms_id}},
                "balance": 100.5})

        def twilio(self, sid, fields):
            auth = self.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(
                ("%s:%s" % (args.account_sid, args.auth_token)).encode()).decode()
            if sid != args.account_sid or auth != expected:
                record({"provider": "twilio", "outcome": "rejected", "fields": fields or {},
                        "reason": "auth"})
                return self.answer(401, {"code": 20003, "message": "Authenticate",
                                         "more_info": "https://www.twilio.com/docs/errors/20003",
                                         "status": 401})
            problems = []
            fields = fields or {}
            if not re.fullmatch(r"\+[1-9][0-9]{6,14}", fields.get("To", "")):
                problems.append("To must be E.164")
            if not fields.get("From") and not fields.get("MessagingServiceSid"):
                problems.append("From or MessagingServiceSid is required")
            if not fields.get("Body"):
                problems.append("Body is required")
            if problems:
                record({"provider": "twilio", "outcome": "rejected", "fields": fields,
                        "reason": "; ".join(problems)})
                return self.answer(400, {"code": 21211, "message": "; ".join(problems),
                                         "more_info": "https://www.twilio.com/docs/errors/21211",
                                         "status": 400})
            if take_failure():
                record({"provider": "twilio", "outcome": "failed", "fields": fields})
                return self.answer(500, {"code": 20500, "message": "Internal Server Error",
                                         "status": 500})
            msid = "SM" + secrets.token_hex(16)
            record({"provider": "twilio", "outcome": "accepted", "fields": fields, "id": msid})
            self.answer(201, {"sid": msid, "account_sid": sid, "to": fields["To"],
                              "from": fields.get("From"), "body": fields["Body"],
                              "status": "queued", "num_segments": "1", "direction": "outbound-api",
                              "api_version": "2010-04-01"})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
