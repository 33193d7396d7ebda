"""A real SMTP server on loopback for the notification tests: aiosmtpd (Debian's
python3-aiosmtpd) with AUTH (PLAIN/LOGIN, the user and password given), storing every
message it accepts as DIR/<n>.eml (written to a temporary name, then renamed) and its
envelope as DIR/<n>.json.

    python3 smtp_server.py --port P --dir DIR --user U --password PW [--delay SECONDS]

Prints "ready" on stdout once it accepts connections; stops on SIGTERM."""
import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import sys
import threading
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, folder, delay):
        self.folder = folder
        self.delay = delay
        self.lock = threading.Lock()
        self.counter = itertools.count(len([n for n in os.listdir(folder) if n.endswith(".eml")]))

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            n = next(self.counter)
        base = os.path.join(self.folder, "%06d-%d" % (n, os.getpid()))
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json", "w") as f:
            login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "login": login.decode() if login else None}, f)
        os.rename(base + ".tmp", base + ".eml")
        return "250 OK stored"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == args.user.encode()
              and auth_data.password == args.password.encode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    # AUTH without TLS is what this loopback test wants (Flora's notify.smtp_tls=none).
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    controller = Controller(Store(args.dir, args.delay), hostname="127.0.0.1", port=args.port,
                            authenticator=authenticator, auth_required=True,
                            auth_require_tls=False)
    controller.start()
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.is_set():
        time.sleep(0.05)
    controller.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
