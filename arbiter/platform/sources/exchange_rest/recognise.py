"""Which venue endpoint a saved response body came from, told by its content.

Saved files get renamed and URLs get lost, so the body decides: each venue module declares a
``SIGNATURES`` table (endpoint -> predicate over the JSON) and the first predicate that holds
names the format, ``"<venue>/<endpoint>"``. Only the head of a body is needed: it is read as
*partial* JSON (everything up to where the bytes stop), and every signature looks at the keys and
first elements a response begins with, never at what comes last.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator

# One JSON token: a complete string, a number, a literal or punctuation. An unterminated string
# at the end of the head matches nothing, which ends the token stream there.
_TOKEN = re.compile(
    rb'\s*(?:("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(true|false|null)|([{}\[\]:,]))', re.DOTALL
)
HEAD_BYTES = 4096  # enough for every signature here, even in pretty-printed bodies


class _Truncated(Exception):
    """The head ended inside a value."""


def _tokens(head: bytes) -> Iterator[bytes]:
    at = 0
    while True:
        match = _TOKEN.match(head, at)
        if not match:
            return
        at = match.end()
        yield match.group(match.lastindex)


def partial_json(head: bytes):
    """The JSON value that ``head`` begins, with containers cut where the bytes end.

    ``{"a": [1, 2`` reads as ``{"a": [1, 2]}``; a key whose value is cut is left out. Returns None
    when ``head`` does not start with JSON at all.
    """
    tokens = _tokens(head.lstrip(b"\xef\xbb\xbf"))

    def take() -> bytes:
        token = next(tokens, None)
        if token is None:
            raise _Truncated
        return token

    def value(token: bytes, into: list):
        """Parse the value starting at ``token``, appending it to ``into`` even when cut short."""
        if token == b"{":
            obj: dict = {}
            into.append(obj)
            while (key := take()) != b"}":
                if key == b",":
                    continue
                take()  # the colon
                slot: list = []
                try:
                    value(take(), slot)
                finally:
                    if slot:
                        obj[json.loads(key)] = slot[0]
            return
        if token == b"[":
            items: list = []
            into.append(items)
            while (item := take()) != b"]":
                if item != b",":
                    value(item, items)
            return
        if token in (b"}", b"]", b":", b","):
            raise ValueError("not a JSON value")
        into.append(json.loads(token))

    out: list = []
    with contextlib.suppress(_Truncated, ValueError):
        value(take(), out)
    return out[0] if out else None


Signature = Callable[[object], bool]


def first(value):
    """The first element of a list, or None."""
    return value[0] if isinstance(value, list) and value else None


def has(value, *keys: str) -> bool:
    """``value`` is an object holding every one of ``keys``."""
    return isinstance(value, dict) and all(k in value for k in keys)


def recognise_body(head: bytes, signatures: dict[str, dict[str, Signature]]) -> str | None:
    """The first ``"<venue>/<endpoint>"`` whose signature holds for the partial JSON of ``head``."""
    body = partial_json(head[:HEAD_BYTES])
    if not isinstance(body, dict | list):
        return None
    for venue, table in signatures.items():
        for endpoint, holds in table.items():
            if holds(body):
                return f"{venue}/{endpoint}"
    return None
