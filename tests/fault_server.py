"""A real HTTP server on loopback whose answers are scripted per path, to inject the faults that
venues and proxies produce. It counts (and times) every request it sees."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# An action is one of:
#   ("ok", body: bytes[, content_type[, headers]])      ("status", code[, headers: dict])
#   ("hang", seconds, then_action)            ("reset",)     ("truncate", body: bytes)


class FaultServer:
    def __init__(self):
        self.scripts: dict[str, list[tuple]] = {}
        self.requests: dict[str, list[float]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                server.requests.setdefault(path, []).append(time.monotonic())
                script = server.scripts.get(path) or [("status", 404)]
                action = script.pop(0) if len(script) > 1 else script[0]
                self.act(action)

            def act(self, action: tuple) -> None:
                kind = action[0]
                if kind == "hang":
                    time.sleep(action[1])
                    return self.act(action[2])
                if kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    return None
                if kind == "status":
                    self.send_response(action[1])
                    for k, v in (action[2] if len(action) > 2 else {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                body = action[1]
                self.send_response(200)
                self.send_header("Content-Type", action[2] if len(action) > 2 else "application/json")
                for k, v in (action[3] if len(action) > 3 else {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body) * (2 if kind == "truncate" else 1)))
                self.end_headers()
                self.wfile.write(body)
                if kind == "truncate":
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def script(self, path: str, *actions: tuple) -> str:
        self.scripts[path] = list(actions)
        return self.url + path

    def count(self, path: str) -> int:
        return len(self.requests.get(path, []))

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
