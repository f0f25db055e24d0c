"""What every REST parser shares: the response it reads, the rows it yields, field conversions
that fail loudly with the field's name, and the batch that turns rows into contract frames."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import polars as pl

from arbiter.platform.normalise import canonical_symbol
from arbiter.platform.schema import CONTRACT

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class RestResponse:
    """One response as received: the raw snapshot that parsers read and the lake keeps."""

    venue: str  # binance, coinbase, kraken, kraken_futures
    endpoint: str  # the venue's endpoint, by its short name (see PARSERS)
    body: bytes
    fetched_at: int  # UTC ns when the response arrived: the receive time of what it holds
    params: Mapping[str, str] = field(default_factory=dict)  # request parameters, e.g. symbol

    def json(self):
        """The body with every JSON number that has a fraction kept as its decimal text, so no
        price or timestamp is rounded before we choose how to read it."""
        return json.loads(self.body, parse_float=str)


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


def symbol_of(native: str) -> str:
    try:
        return canonical_symbol(native)
    except ValueError:
        raise FieldError("symbol", "unknown_symbol") from None


@dataclass
class Batch:
    """Rows parsed from one response, per contract table, plus the records that failed."""

    source: str
    partition: str
    rows: dict[str, list[dict]] = field(default_factory=lambda: {"quotes": [], "trades": [], "instruments": []})
    rejected: list[dict] = field(default_factory=list)

    def add(self, table: str, element, build: Callable[[], dict]) -> None:
        """Append ``build()`` to ``table``, or quarantine ``element`` with the failing field."""
        try:
            self.rows[table].append(build())
        except FieldError as exc:
            self.reject(table, element, exc.reason, exc.field)
        except (IndexError, KeyError, TypeError, AttributeError):  # shaped unlike the venue's layout
            self.reject(table, element, "malformed_record", None)

    def add_all(self, table: str, elements: Iterable, build: Callable[[object], dict]) -> None:
        for element in elements:
            self.add(table, element, lambda e=element: build(e))

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
