"""A loopback HTTP server for provider fakes: records every request (method, path, headers,
body) and lets the test steer it. Control endpoints live under /__ (not part of any
provider's API):
  GET  /__requests           the recorded requests, oldest first
  POST /__reset              forget them and go back to mode "ok"
  POST /__mode {"mode": m}   ok | slow (sleep 5 s before answering) | error500 | garbage
Run: python3 <fake>.py  -> prints "PORT <n>" on stdout once listening."""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.mode = "ok"


def serve(routes):
    """routes: {(method, path): handler(headers, body_json) -> (status, body_dict)}."""
    state = State()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path == "/__requests":
                with state.lock:
                    return self.reply(200, state.requests)
            if self.path == "/__reset":
                with state.lock:
                    state.requests = []
                    state.mode = "ok"
                return self.reply(200, {})
            if self.path == "/__mode":
                with state.lock:
                    state.mode = json.loads(raw)["mode"]
                return self.reply(200, {})
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = {"__not_json__": raw.decode("utf-8", "replace")}
            with state.lock:
                state.requests.append({"method": method, "path": self.path,
                                       "headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": body})
                mode = state.mode
            if mode == "slow":
                time.sleep(5)
            if mode == "error500":
                return self.reply(500, {"detail": "Internal Server Error"})
            if mode == "garbage":
                return self.reply(200, b"<html>not json</html>")
            handler = routes.get((method, self.path.split("?")[0]))
            if not handler:
                return self.reply(404, {"detail": "Not found"})
            status, out = handler(self.headers, body)
            return self.reply(status, out)

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)
