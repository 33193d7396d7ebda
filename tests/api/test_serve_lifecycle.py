"""`flora serve` as an operator sees it: configuration, readiness, graceful stop, logs."""
import http.client
import json
import signal
import threading
import time
import unittest

from floratest import ADMIN_TOKEN, Flora


class Lifecycle(unittest.TestCase):
    def test_sigterm_drains_and_exits_zero(self):
        flora = Flora({"FLORA_LOG_LEVEL": "info"})
        try:
            flora.start()
            results = []
            stop = threading.Event()

            def client():
                while not stop.is_set():
                    try:
                        status, _, body = flora.request("GET", "/api/v1/products?pageSize=5", timeout=10)
                        results.append(status)
                        # a request arriving on a kept-alive connection after draining
                        # began is refused cleanly (nothing ran), never cut off
                        refused = status == 503 and body["error"]["code"] == "unavailable"
                        if status != 200 and not refused:
                            results.append(("bad", status, body))
                    except (ConnectionError, http.client.HTTPException, OSError):
                        if not stop.is_set():
                            results.append("refused")
                        return

            threads = [threading.Thread(target=client) for _ in range(6)]
            for t in threads:
                t.start()
            time.sleep(1.0)
            t0 = time.time()
            code = flora.stop(signal.SIGTERM, timeout=30)
            elapsed = time.time() - t0
            stop.set()
            for t in threads:
                t.join(10)
            self.assertEqual(code, 0, flora.log())
            self.assertLess(elapsed, 15)
            self.assertGreater(results.count(200), 10)
            self.assertFalse([r for r in results if isinstance(r, tuple)], results[:5])
            log = flora.log()
            self.assertIn("listening", log)
            # one structured line per request, with a request id
            self.assertRegex(log, r"request_id|\"request_id\"")
        finally:
            flora.close()

    def test_readyz_and_request_id(self):
        flora = Flora()
        try:
            flora.start()
            status, _, body = flora.request("GET", "/readyz")
            self.assertEqual(status, 200, body)
            status, headers, _ = flora.request("GET", "/healthz", headers={"X-Request-Id": "abc-123"})
            self.assertEqual(headers.get("x-request-id"), "abc-123")
            status, headers, _ = flora.request("GET", "/healthz", headers={"X-Request-Id": "bad id <script>"})
            self.assertNotEqual(headers.get("x-request-id"), "bad id <script>")
            self.assertTrue(headers.get("x-request-id"))
            status, _, text = flora.request("GET", "/metrics")
            self.assertEqual(status, 200)
            self.assertIn("flora_http_requests_total", text)
            self.assertIn("flora_http_request_duration_seconds_bucket", text)
        finally:
            flora.close()


class Configuration(unittest.TestCase):
    def test_config_masks_secrets(self):
        flora = Flora()
        try:
            out = flora.run("config").stdout
            self.assertIn("http.admin_token", out)
            self.assertNotIn(ADMIN_TOKEN, out)
            self.assertIn("store.uri", out)
        finally:
            flora.close()

    def test_bad_configuration_fails_naming_the_key(self):
        flora = Flora({"FLORA_HTTP_PORT": "99999"})
        try:
            res = flora.run("config", check=False)
            self.assertNotEqual(res.returncode, 0)
            self.assertIn("http.port", res.stderr + res.stdout)
        finally:
            flora.close()

    def test_unknown_command_is_a_usage_error(self):
        flora = Flora()
        try:
            res = flora.run("frobnicate", check=False)
            self.assertEqual(res.returncode, 2)
            self.assertIn("unknown command", res.stderr)
        finally:
            flora.close()


if __name__ == "__main__":
    unittest.main()
