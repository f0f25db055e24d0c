"""What every REST parser shares: the response it reads, the rows it yields, field conversions
that fail loudly with the field's name, and the batch that turns rows into contract frames while
counting every raw record (row, quarantined or absorbed) and every field it did not know."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, unquote, urlsplit

import polars as pl

from arbiter.platform.normalise import canonical_symbol
from arbiter.platform.schema import CONTRACT

NS_PER_S = 1_000_000_000


# Coinbase names the product in the path: /products/BTC-USD/book, .../market/products/BTC-USD/candles.
_PRODUCT_IN_PATH = re.compile(r"/products/([^/?]+)/")


@dataclass(frozen=True)
class RestResponse:
    """One response as its parser reads it: which venue endpoint answered, the bytes, when they
    arrived, and the request's parameters (from the URL's query, plus any the snapshot named)."""

    venue: str  # binance, coinbase, kraken, kraken_futures
    endpoint: str  # the venue's endpoint, by its short name (see each venue module's PARSERS)
    body: bytes
    fetched_at: int  # UTC ns when the response arrived: the receive time of what it holds
    params: Mapping[str, str] = field(default_factory=dict)  # request parameters, e.g. symbol
    origin: str = ""  # the URL (without secrets) or the file it came from

    @classmethod
    def of(cls, venue: str, endpoint: str, body: bytes, fetched_at: int, origin: str, meta: Mapping[str, str]):
        """Parameters come from the origin URL's query, then the snapshot's own ``meta`` (which
        wins: a file has no URL, so ``arbiter ingest --symbol`` puts the symbol there)."""
        params = dict(parse_qsl(urlsplit(origin).query)) if "?" in origin else {}
        product = _PRODUCT_IN_PATH.search(urlsplit(origin).path)
        if product:
            params.setdefault("product_id", unquote(product.group(1)))
        params.update({k: v for k, v in meta.items() if k in ("symbol", "interval", "granularity")})
        return cls(venue, endpoint, body, fetched_at, params, origin)

    def json(self):
        """The body with every JSON number that has a fraction kept as its decimal text, so no
        price or timestamp is rounded before we choose how to read it."""
        return json.loads(self.body, parse_float=str)

    def requested_symbol(self) -> str:
        """The canonical symbol the request named: for the endpoints whose answer does not say
        (Binance trades, depth and klines; Coinbase books and candles). ``FieldError`` when
        neither the URL nor the snapshot names one, so each record is quarantined saying so."""
        native = self.params.get("symbol") or self.params.get("product_id") or self.params.get("pair")
        if not native:
            raise FieldError("symbol", "missing_field")
        return symbol_of(native)


class FieldError(ValueError):
    """A required field is missing, null or unparseable."""

    def __init__(self, name: str, reason: str):
        self.field, self.reason = name, reason
        super().__init__(f"field {name!r}: {reason}")


def get(record: Mapping, key: str, name: str | None = None):
    value = record.get(key) if isinstance(record, Mapping) else None
    if value is None or value == "":
        raise FieldError(name or key, "missing_field")
    return value


def num(value, name: str) -> float:
    """A venue's decimal (string or number) as float64; formatting it at the instrument's
    precision gives the venue's decimal back."""
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError, TypeError):
        raise FieldError(name, "unparseable") from None


def opt_num(value, name: str) -> float | None:
    return None if value is None or value == "" else num(value, name)


def opt_int(value, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (ValueError, TypeError):
        raise FieldError(name, "unparseable") from None


def decimals(step) -> int:
    """Decimal places of a step such as ``"0.01000000"`` (2) or ``"1"`` (0)."""
    exponent = Decimal(str(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def ms_to_ns(value, name: str) -> int:
    try:
        return int(value) * 1_000_000
    except (ValueError, TypeError):
        raise FieldError(name, "unparseable") from None


def seconds_to_ns(value, name: str) -> int:
    """Epoch seconds with a fraction (``1762795433.9717445``), exactly, via its decimal text."""
    try:
        return int(Decimal(str(value)) * NS_PER_S)
    except (InvalidOperation, ValueError, TypeError):
        raise FieldError(name, "unparseable") from None


def iso_to_ns(value, name: str) -> int:
    """ISO-8601 UTC (``2026-04-07T00:28:58.544778Z``), keeping up to nanosecond digits."""
    try:
        text = str(value).rstrip("Z").replace("+00:00", "")
        whole, _, fraction = text.partition(".")
        seconds = int(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
        return seconds * NS_PER_S + int((fraction + "000000000")[:9])
    except (ValueError, TypeError):
        raise FieldError(name, "unparseable") from None


# Bar intervals by their length, largest unit first: 60 s -> "1m", 14400 s -> "4h".
_UNITS = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def interval_name(seconds: int) -> str:
    """A bar length in the usual short form (``1m``, ``15m``, ``1h``, ``1d``, ``1w``)."""
    if seconds <= 0:
        raise FieldError("interval", "unparseable")
    unit, size = next((u, n) for u, n in _UNITS if seconds % n == 0)
    return f"{seconds // size}{unit}"


def symbol_of(native: str) -> str:
    try:
        return canonical_symbol(native)
    except ValueError:
        raise FieldError("symbol", "unknown_symbol") from None


@dataclass
class Batch:
    """Rows parsed from one response, per contract table, plus the records that failed.

    Every raw record passes through ``add`` (a row or a quarantined record) or ``absorb`` (no row,
    for a stated reason), and ``records`` counts them, so a parser that skipped a record without
    saying why shows up as a mismatch against the response's own record count.
    """

    source: str
    partition: str
    rows: dict[str, list[dict]] = field(
        default_factory=lambda: {"quotes": [], "trades": [], "bars": [], "instruments": []}
    )
    rejected: list[dict] = field(default_factory=list)
    records: int = 0
    absorbed: Counter = field(default_factory=Counter)
    ignored_fields: Counter = field(default_factory=Counter)  # "<record>.<field>" -> times seen

    def add(self, table: str, element, build: Callable[[], dict]) -> None:
        """Append ``build()`` to ``table``, or quarantine ``element`` with the failing field."""
        self.records += 1
        try:
            self.rows[table].append(build())
        except FieldError as exc:
            self.reject(table, element, exc.reason, exc.field)
        except (IndexError, KeyError, TypeError, AttributeError, ValueError):  # unlike the venue's layout
            self.reject(table, element, "malformed_record", None)

    def add_all(self, table: str, elements: Iterable, build: Callable[[object], dict]) -> None:
        for element in elements:
            self.add(table, element, lambda e=element: build(e))

    def absorb(self, reason: str) -> None:
        """One raw record that yields no row, for ``reason`` (e.g. an index ticker is no market)."""
        self.records += 1
        self.absorbed[reason] += 1

    def drift(self, record: str, element, known: Collection[str] | int) -> None:
        """Count the fields of ``element`` the parser does not know (schema drift): keys outside
        ``known`` for an object, positions past ``known`` for an array. They are ignored, never
        an error, and the count tells when a venue changed its layout."""
        if isinstance(element, Mapping) and not isinstance(known, int):
            for key in element:
                if key not in known:
                    self.ignored_fields[f"{record}.{key}"] += 1
        elif isinstance(element, list) and isinstance(known, int):
            for position in range(known, len(element)):
                self.ignored_fields[f"{record}[{position}]"] += 1

    def reject(self, table: str, element, reason: str, field_name: str | None) -> None:
        raw = element if isinstance(element, bytes) else json.dumps(element, separators=(",", ":")).encode()
        self.rejected.append(
            {
                "target": table,
                "source": self.source,
                "partition": self.partition,
                "reason": reason,
                "field": field_name,
                "raw": raw,
            }
        )

    def frames(self) -> dict[str, pl.DataFrame]:
        """Non-empty tables as frames in the contract, ``quarantine`` included (timestamps given as
        integer nanoseconds become UTC datetimes)."""
        out = {}
        for table, rows in {**self.rows, "quarantine": self.rejected}.items():
            if not rows:
                continue
            schema = pl.from_arrow(CONTRACT[table].empty_table()).schema
            times = [name for name, dtype in schema.items() if isinstance(dtype, pl.Datetime)]
            frame = pl.DataFrame(rows, schema={**schema, **dict.fromkeys(times, pl.Int64)})
            out[table] = frame.with_columns(pl.col(times).cast(pl.Datetime("ns", "UTC")))
        return out


def quote_row(
    response: RestResponse,
    *,
    market: str,
    symbol: str,
    channel: str,
    bid,
    ask,
    bid_size=None,
    ask_size=None,
    seq: int | None = None,
    ts: int | None = None,
) -> dict:
    """A ``quotes`` row. Without a venue time ``ts`` is the receive time, and ``ts_source`` says so."""
    return {
        "ts": ts if ts is not None else response.fetched_at,
        "ts_source": "venue" if ts is not None else "receive",
        "recv_ts": response.fetched_at,
        "venue": response.venue,
        "market": market,
        "symbol": symbol,
        "channel": channel,
        "bid": opt_num(bid, "bid"),
        "ask": opt_num(ask, "ask"),
        "bid_size": opt_num(bid_size, "bid_size"),
        "ask_size": opt_num(ask_size, "ask_size"),
        "seq": seq,
    }


def trade_row(
    response: RestResponse, *, market: str, symbol: str, ts: int, price, size, side: str | None, trade_id
) -> dict:
    return {
        "ts": ts,
        "ts_source": "venue",
        "recv_ts": response.fetched_at,
        "venue": response.venue,
        "market": market,
        "symbol": symbol,
        "price": num(price, "price"),
        "size": num(size, "size"),
        "side": side,
        "trade_id": str(trade_id),
    }


def instrument_row(
    venue: str,
    *,
    market: str,
    symbol: str,
    tick,
    step,
    valid_from: int,
    min_notional=None,
    maker: float | None = None,
    taker: float | None = None,
    settle: str | None = None,
    contract_size: float | None = None,
) -> dict:
    """An ``instruments`` row: precision is the number of decimals of the tick and lot steps."""
    from arbiter.platform import venues

    base, quote = symbol.split("-")
    configured = venues.fees(venue, market)
    return {
        "venue": venue,
        "market": market,
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle,
        "contract_size": contract_size,
        "price_precision": decimals(tick),
        "size_precision": decimals(step),
        "tick_size": num(tick, "tick_size"),
        "lot_size": num(step, "lot_size"),
        "min_notional": opt_num(min_notional, "min_notional"),
        "maker_fee": maker if maker is not None else (configured.maker if configured else None),
        "taker_fee": taker if taker is not None else (configured.taker if configured else None),
        "withdraw_fee": venues.WITHDRAW_FEES.get((venue, base)),
        "valid_from": valid_from,
    }


def bar_row(
    response: RestResponse,
    *,
    market: str,
    symbol: str,
    interval: str,
    ts: int,
    open_,
    high,
    low,
    close,
    volume,
    quote_volume=None,
    trade_count=None,
) -> dict:
    """A ``bars`` row; ``ts`` is the bar's open time as the venue states it."""
    return {
        "ts": ts,
        "ts_source": "venue",
        "recv_ts": response.fetched_at,
        "venue": response.venue,
        "market": market,
        "symbol": symbol,
        "interval": interval,
        "open": num(open_, "open"),
        "high": num(high, "high"),
        "low": num(low, "low"),
        "close": num(close, "close"),
        "volume": num(volume, "volume"),
        "quote_volume": opt_num(quote_volume, "quote_volume"),
        "trade_count": opt_int(trade_count, "trade_count"),
    }


def best_level(levels) -> tuple:
    """The first (best) ``(price, size, ...)`` level of a book side; (None, None) when it is empty."""
    return tuple(levels[0]) if levels else (None, None)


def book_top_row(response: RestResponse, book, *, market: str, symbol: str, seq: int | None = None) -> dict:
    """A ``rest_book`` quote from the best levels of a book whose sides are ``[[price, size, ...]]``."""
    bid, ask = best_level(get(book, "bids", "bid")), best_level(get(book, "asks", "ask"))
    return quote_row(
        response,
        market=market,
        symbol=symbol,
        channel="rest_book",
        bid=bid[0],
        bid_size=bid[1],
        ask=ask[0],
        ask_size=ask[1],
        seq=seq,
    )
