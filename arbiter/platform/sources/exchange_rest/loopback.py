"""A real HTTP server on loopback that stands in for a venue: answers scripted per path (to inject
the faults venues and proxies produce), a fallback answer for everything else, and optionally the
venue's rate limit enforced the way a venue does (HTTP 429 once a sliding window is spent).

It ships with the package, not only the tests, because the ``rest_soak`` benchmark polls it; it
binds 127.0.0.1 on a free port and never anything else. It counts (and times) every request.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# An action is one of:
#   ("ok", body: bytes[, content_type[, headers]])      ("status", code[, headers: dict])
#   ("hang", seconds, then_action)            ("reset",)     ("truncate", body: bytes)
Action = tuple
# A fallback answer: (path, query) -> action, for paths that have no script.
Answer = Callable[[str, str], Action]


@dataclass
class WindowLimit:
    """``capacity`` units per sliding ``window_s``; a request costs ``cost(path, query)`` units.

    A request that would take the window past capacity is answered 429 (with ``Retry-After``)
    and is not counted against the window. ``used_header`` names a header reporting the units
    used in the window, as Binance's ``X-MBX-USED-WEIGHT-1M`` does.
    """

    capacity: float
    window_s: float
    cost: Callable[[str, str], float] = lambda path, query: 1.0
    used_header: str | None = None

    def __post_init__(self):
        self._spent: deque[tuple[float, float]] = deque()
        self._used = 0.0
        self.rejected = 0  # requests answered 429
        self.peak = 0.0  # the most units ever in one window
        self._lock = threading.Lock()

    def admit(self, path: str, query: str) -> tuple[bool, float, float]:
        """(admitted, units used in the window now, seconds until the request would fit)."""
        cost, now = self.cost(path, query), time.monotonic()
        with self._lock:
            while self._spent and self._spent[0][0] <= now - self.window_s:
                self._used -= self._spent.popleft()[1]
            if self._used + cost > self.capacity:
                self.rejected += 1
                freed, wait = self._used, 0.0
                for at, spent in self._spent:  # the oldest spending expires first
                    freed -= spent
                    wait = at + self.window_s - now
                    if freed + cost <= self.capacity:
                        break
                return False, self._used, wait
            self._spent.append((now, cost))
            self._used += cost
            self.peak = max(self.peak, self._used)
            return True, self._used, 0.0


class FaultServer:
    def __init__(self, answer: Answer | None = None, limit: WindowLimit | None = None):
        self.scripts: dict[str, list[Action]] = {}
        self.requests: dict[str, list[float]] = {}
        self.answer, self.limit = answer, limit
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a venue's front end does

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                path, _, query = self.path.partition("?")
                server.requests.setdefault(path, []).append(time.monotonic())
                extra: dict[str, str] = {}
                if server.limit is not None:
                    admitted, used, wait = server.limit.admit(path, query)
                    if server.limit.used_header:
                        extra[server.limit.used_header] = str(int(used))
                    if not admitted:
                        return self.act(("status", 429, {**extra, "Retry-After": str(max(1, math.ceil(wait)))}))
                script = server.scripts.get(path)
                if script:
                    action = script.pop(0) if len(script) > 1 else script[0]
                elif server.answer is not None:
                    action = server.answer(path, query)
                else:
                    action = ("status", 404)
                return self.act(action, extra)

            def act(self, action: Action, extra: dict[str, str] | None = None) -> None:
                kind = action[0]
                if kind == "hang":
                    time.sleep(action[1])
                    return self.act(action[2], extra)
                if kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    self.close_connection = True
                    return None
                if kind == "status":
                    self.send_response(action[1])
                    for k, v in {**(extra or {}), **(action[2] if len(action) > 2 else {})}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                body = action[1]
                self.send_response(200)
                self.send_header("Content-Type", action[2] if len(action) > 2 else "application/json")
                for k, v in {**(extra or {}), **(action[3] if len(action) > 3 else {})}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body) * (2 if kind == "truncate" else 1)))
                self.end_headers()
                self.wfile.write(body)
                if kind == "truncate":
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def script(self, path: str, *actions: Action) -> str:
        self.scripts[path] = list(actions)
        return self.url + path

    def count(self, path: str | None = None) -> int:
        """Requests seen for ``path``, or for all paths."""
        if path is None:
            return sum(len(times) for times in self.requests.values())
        return len(self.requests.get(path, []))

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
