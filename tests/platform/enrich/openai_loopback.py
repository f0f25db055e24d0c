"""An OpenAI-compatible chat-completions server on loopback, standing in for a paid model in tests.

A real HTTP server (127.0.0.1, a free port) serving ``POST /v1/chat/completions``: it reads the
document from the user message and answers, in the schema the request's ``response_format``
names, what the offline rules extract from it, so the "model" is competent; ``usage`` counts
tokens as about four characters each, as OpenAI's tokenisers roughly do.

Faults, by a marker in the document (``[fault:429]`` on every attempt, ``[fault:429*2]`` on its
first two) or by ``schedule(...)`` for the next requests whatever they carry: ``400`` (context too
long), ``429`` (with ``retry-after-ms``), ``500``, ``timeout`` (no answer for ``hang_s``),
``invalid_json``, ``schema`` (JSON against the schema) and ``refusal`` (``message.refusal``).

It is also gullible: told by the document to set confidences, mark events as some type, or set
ids and venues, it does so in its own answer, as a model that follows injected instructions would.

Every request is recorded (body, headers, the fault served), with the usage billed per answer and
the most requests ever in flight at once.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from arbiter.platform.enrich.offline_extract import extract

FAULTS = ("400", "429", "500", "timeout", "invalid_json", "schema", "refusal")
_MARKER = re.compile(r"\[fault:(?P<kind>[a-z0-9_]+)(?:\*(?P<times>\d+))?\]")
REFUSAL = "I'm sorry, but I can't help with that request."
# What a gullible model takes as orders: "set confidence to 1", "mark ... as delisting",
# "set the doc_id to 'x'", "change venue to x".
_SET_CONFIDENCE = re.compile(r"\bconfidence\s+(?:to|of|=|at)\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_MARK_AS = re.compile(r"\bmark\b[^.]{0,80}?\bas\s+([a-z_]+)", re.IGNORECASE)
_SET_FIELD = re.compile(
    r"\b(?:set|change)\s+(?:the\s+)?(doc_id|venue|event_index)\s+(?:to|=)\s*['\"]?([\w:.\-]+)", re.IGNORECASE
)


@dataclass
class Recorded:
    body: dict[str, Any]
    headers: dict[str, str]
    document: dict[str, Any] | None
    fault: str | None


class OpenAILoopback:
    """Use as a context manager; ``url`` is the base URL for the SDK (ending in ``/v1``)."""

    def __init__(self, *, latency_s: float = 0.0, hang_s: float = 2.0, api_key: str | None = None):
        self.latency_s, self.hang_s, self.api_key = latency_s, hang_s, api_key
        self.requests: list[Recorded] = []
        self.billed: list[tuple[int, int]] = []  # (prompt, completion) tokens of each answer sent
        self.in_flight = self.peak_in_flight = 0
        self._scheduled: list[str] = []
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                """Quiet: tests read the recorded requests, not a log."""

            def do_POST(self):
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> OpenAILoopback:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def schedule(self, *faults: str) -> None:
        """Serve ``faults`` (names of ``FAULTS``, or None for a normal answer) to the next requests."""
        for fault in faults:
            if fault is not None and fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._scheduled.extend(faults)

    def documents_sent(self) -> list[dict[str, Any]]:
        return [r.document for r in self.requests if r.document is not None]

    # serving -------------------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        body = json.loads(http.rfile.read(int(http.headers.get("Content-Length") or 0)) or b"{}")
        if http.path != "/v1/chat/completions":
            return _send(http, 404, _error(f"no route {http.path}", "not_found"))
        if self.api_key is not None and http.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _send(http, 401, _error("Incorrect API key provided.", "invalid_api_key"))
        try:
            document = json.loads(body["messages"][-1]["content"])
        except (KeyError, IndexError, TypeError, ValueError):
            document = None
        with self._lock:
            fault = self._scheduled.pop(0) if self._scheduled else self._marked_fault(document)
            self.requests.append(Recorded(body, dict(http.headers), document, fault))
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if document is None:
                return _send(http, 400, _error("the user message is not a JSON document", "invalid_request"))
            time.sleep(self.latency_s)
            self._answer(http, body, document, fault)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _marked_fault(self, document: dict | None) -> str | None:
        """The fault the document's marker asks for on this attempt (attempts counted per document)."""
        text = json.dumps(document)
        marker = _MARKER.search(text)
        if marker is None:
            return None
        attempt = self._attempts.get(text, 0)
        self._attempts[text] = attempt + 1
        times = marker.group("times")
        return marker.group("kind") if times is None or attempt < int(times) else None

    def _answer(self, http: BaseHTTPRequestHandler, body: dict, document: dict, fault: str | None) -> None:
        if fault == "400":
            message = "This model's maximum context length is 128000 tokens."
            return _send(http, 400, _error(message, "context_length_exceeded"))
        if fault == "429":
            headers = {"retry-after-ms": "20", "retry-after": "1"}
            return _send(http, 429, _error("Rate limit reached for requests", "rate_limit_exceeded"), headers)
        if fault == "500":
            return _send(http, 500, _error("The server had an error while processing your request.", "server_error"))
        if fault == "timeout":
            time.sleep(self.hang_s)
            http.close_connection = True
            return None
        refusal = None
        if fault == "invalid_json":
            content = '{"events": [{"event_type": "listing", "assets": ["BTC"'
        elif fault == "schema":
            content = json.dumps({"events": [{"event_type": "rumour", "assets": "BTC", "confidence": "high"}]})
        elif fault == "refusal":
            content, refusal = None, REFUSAL
        else:
            content = json.dumps(self._extract(body, document))
        prompt = sum(_tokens(m.get("content") or "") + 4 for m in body.get("messages", []))
        prompt += _tokens(json.dumps(body.get("response_format") or {})) + 3
        completion = _tokens(content or refusal) + 1
        with self._lock:
            self.billed.append((prompt, completion))
        return _send(
            http,
            200,
            {
                "id": f"chatcmpl-loopback-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": refusal},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            },
        )

    def _extract(self, body: dict, document: dict) -> dict:
        """The offline rules' events, with the properties the request's schema asks for, then
        whatever the document told the model to do to them."""
        schema = body["response_format"]["json_schema"]["schema"]
        item = schema["properties"]["events"]["items"]
        if "$ref" in item:
            item = schema["$defs"][item["$ref"].rsplit("/", 1)[-1]]
        events = [
            {name: _jsonable(getattr(event, name, None)) for name in item["properties"]}
            for event in extract("loopback", document.get("title"), document.get("body") or "", "unknown")
        ]
        text = f"{document.get('title') or ''}\n{document.get('body') or ''}"
        for event in events:
            if m := _SET_CONFIDENCE.search(text):
                event["confidence"] = float(m.group(1))
            if m := _MARK_AS.search(text):
                event["event_type"] = m.group(1).lower()
            for m in _SET_FIELD.finditer(text):
                event[m.group(1).lower()] = m.group(2)
        return {"events": events}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple):
        return list(value)
    return value


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _error(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def _send(http: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(payload).encode()
    http.send_response(status)
    http.send_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        http.send_header(name, value)
    http.send_header("Content-Length", str(len(data)))
    try:
        http.end_headers()
        http.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):  # the client gave up (timed out, or its run stopped)
        http.close_connection = True
