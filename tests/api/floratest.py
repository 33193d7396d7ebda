"""Test harness for the `flora` binary: a private data folder, migrations, imports, and a
server on a free loopback port, driven over HTTP with the standard library only."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BINARY = os.environ.get("FLORA_BINARY", "")
SOURCE_DIR = os.environ.get("FLORA_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED_DIR = os.environ.get("FLORA_SHARED_DIR", os.path.join(SOURCE_DIR, "..", "shared"))
ADMIN_TOKEN = "test-admin-token-0123456789"


def shared_path(*parts):
    """A file under ../shared, or None (a fresh clone has no ../shared)."""
    path = os.path.join(SHARED_DIR, *parts)
    return path if os.path.exists(path) else None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Flora:
    """One flora installation: a data folder, its store, and optionally a running server."""

    def __init__(self, extra_env=None):
        if not BINARY or not os.path.exists(BINARY):
            raise unittest.SkipTest("FLORA_BINARY is not set (run through ctest)")
        self.dir = tempfile.mkdtemp(prefix="flora-test-")
        self.env = dict(os.environ)
        self.env.update({
            "FLORA_STORE_URI": "sqlite:" + os.path.join(self.dir, "flora.db"),
            "FLORA_HTTP_ADMIN_TOKEN": ADMIN_TOKEN,
            "FLORA_LOG_LEVEL": "warn",
        })
        self.env.update(extra_env or {})
        self.proc = None
        self.port = None
        self.stderr_path = os.path.join(self.dir, "serve.log")

    def run(self, *args, check=True, timeout=300):
        """Runs `flora ARGS`; returns the CompletedProcess (text mode)."""
        res = subprocess.run([BINARY, *args], env=self.env, capture_output=True, text=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError("flora %s exited %d\nstdout: %s\nstderr: %s"
                                 % (" ".join(args), res.returncode, res.stdout, res.stderr))
        return res

    def start(self, *args):
        self.run("migrate", "up")
        self.port = free_port()
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([BINARY, "serve", "--port", str(self.port), *args], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("flora serve exited %d: %s" % (self.proc.returncode, self.log()))
            try:
                status, _, _ = self.request("GET", "/healthz")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("flora serve did not answer /healthz: " + self.log())

    def log(self):
        try:
            with open(self.stderr_path) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, admin=False, raw=None, timeout=30):
        """(status, headers dict with lower-case names, parsed JSON or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if admin:
            hdrs["Authorization"] = "Bearer " + ADMIN_TOKEN
        try:
            conn.request(method, path, body=data, headers=hdrs)
            res = conn.getresponse()
            payload = res.read()
            rh = {k.lower(): v for k, v in res.getheaders()}
        finally:
            conn.close()
        ctype = rh.get("content-type", "")
        if payload and ctype.startswith("application/json"):
            return res.status, rh, json.loads(payload.decode("utf-8"))
        return res.status, rh, payload.decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the server; returns its exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
            raise AssertionError("flora serve did not stop within %ds: %s" % (timeout, self.log()))
        finally:
            self.stderr.close()
        self.proc = None
        return code

    def close(self):
        if self.proc:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
