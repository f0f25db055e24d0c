"""Normalisation: venue dialects in, the data contract out, rejected records kept in quarantine.

The contract is enforced at this boundary, the way NautilusTrader does it: re-sent duplicates,
late (out-of-order) messages, crossed books and unparseable fields are rejected loudly with a
reason and the offending field, and the original record is kept in ``quarantine``; nothing is
patched quietly and nothing is dropped silently. All of it is Polars expressions, no per-row
Python, because this runs over millions of rows per partition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

# Venue-specific spellings of assets, mapped at the edge to one vocabulary (as ccxt does).
ASSET_ALIASES = {"XBT": "BTC", "XDG": "DOGE", "XETH": "ETH", "XXBT": "BTC", "ZUSD": "USD", "ZEUR": "EUR"}
# Quote assets recognised at the end of a concatenated symbol (``BTCUSDT``).
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USD", "EUR", "GBP", "JPY", "BTC", "ETH", "BNB", "TRY")
# Assets that settle an ambiguous split: ``XBTUSD`` is XBT/USD, not XB/TUSD.
KNOWN_BASES = frozenset(
    {
        "BTC",
        "XBT",
        "ETH",
        "SOL",
        "XRP",
        "ADA",
        "DOGE",
        "XDG",
        "BNB",
        "DOT",
        "LTC",
        "LINK",
        "AVAX",
        "TRX",
        "BCH",
        "XLM",
        "ATOM",
        "UNI",
        "ETC",
        "FIL",
        "NEAR",
        "APT",
        "ARB",
        "OP",
        "SUI",
        "TON",
        "SHIB",
        "PEPE",
        "MATIC",
        "POL",
    }
)
_KRAKEN_LEGACY = re.compile(r"^([XZ][A-Z]{3})([XZ][A-Z]{3})$")  # XXBTZUSD


UNIT_NS = {"ms": 1_000_000, "us": 1_000, "ns": 1}
# Fixed vocabularies as Enums: choosing between Enum literals costs nothing per row, where
# building strings and casting them would cost more than the rest of the column work.
TS_SOURCE = pl.Enum(["venue", "receive"])
CHANNEL = pl.Enum(["book_ticker", "book_rebuild", "rest_ticker"])


class UnknownSymbol(ValueError):
    pass


def canonical_asset(code: str) -> str:
    code = code.upper()
    return ASSET_ALIASES.get(code, code)


def canonical_symbol(native: str) -> str:
    """A venue's market symbol as canonical ``BASE-QUOTE``.

    Handles ``BTC-USDT``, ``XBT/USDT``, ``BTC_USDT``, ``BTCUSDT`` and Kraken's legacy
    ``XXBTZUSD``. Raises ``UnknownSymbol`` when the split between base and quote is ambiguous.
    """
    s = native.strip().upper()
    for sep in ("-", "/", "_"):
        if sep in s:
            base, _, quote = s.partition(sep)
            return f"{canonical_asset(base)}-{canonical_asset(quote)}"
    legacy = _KRAKEN_LEGACY.match(s)
    if legacy and legacy.group(1) in ASSET_ALIASES and legacy.group(2) in ASSET_ALIASES:
        return f"{canonical_asset(legacy.group(1))}-{canonical_asset(legacy.group(2))}"
    splits = [(s[: -len(q)], q) for q in QUOTE_ASSETS if s.endswith(q) and len(s) > len(q)]
    if not splits:
        raise UnknownSymbol(f"cannot split {native!r} into base and quote")
    # A split whose base is a known asset wins; otherwise the longest quote asset.
    base, quote = next((sp for sp in splits if sp[0] in KNOWN_BASES), splits[0])
    return f"{canonical_asset(base)}-{canonical_asset(quote)}"


@dataclass(frozen=True)
class Normalised:
    rows: pl.DataFrame  # in the target table's contract
    quarantine: pl.DataFrame  # in the quarantine contract

    @property
    def reasons(self) -> dict[str, int]:
        counts = self.quarantine.group_by("reason").len().sort("reason")
        return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def _quarantine(
    rejected: pl.DataFrame, raw_columns: list[str], *, target: str, source: str, partition: str
) -> pl.DataFrame:
    """Rejected rows in the quarantine contract, each keeping its original record as JSON bytes."""
    return rejected.select(
        pl.lit(target).alias("target"),
        pl.lit(source).alias("source"),
        pl.lit(partition).alias("partition"),
        pl.col("_reason").alias("reason"),
        pl.col("_field").alias("field"),
        pl.struct(raw_columns).struct.json_encode().cast(pl.Binary).alias("raw"),
    )


def quotes_from_simulator(raw: pl.DataFrame, *, source: str = "simulator", partition: str = "") -> Normalised:
    """Simulator messages (venue dialects) → ``quotes`` rows plus quarantined rejects.

    Rules, in order of precedence for the reason recorded: unknown symbol, unparseable price or
    size, re-sent duplicate (an update id already received for the market), late message (an
    update id below one already received), crossed or locked book (bid >= ask). The whole frame
    carries only cheap boolean flags; reasons and fields are spelled out for the rejects alone.
    """
    market = ["venue", "market", "native_symbol"]
    prices = {"bid": "bid_px", "ask": "ask_px", "bid_size": "bid_qty", "ask_size": "ask_qty"}
    symbols = _symbol_map(raw.get_column("native_symbol"))
    # Element-wise (no join): rows keep their receive order, which the sequence rules depend on.
    frame = raw.with_columns(
        symbol=pl.col("native_symbol").replace_strict(symbols, default=None, return_dtype=pl.Categorical),
        _prior_max=pl.col("update_id").cum_max().shift(1).over(market),
        **{ours: pl.col(theirs).cast(pl.Float64, strict=False) for ours, theirs in prices.items()},
    )
    unparseable = {ours: pl.col(theirs).is_not_null() & pl.col(ours).is_null() for ours, theirs in prices.items()}
    frame = frame.with_columns(
        _unknown=pl.col("symbol").is_null(),
        _unparseable=pl.any_horizontal(unparseable.values()),
        _repeat=(pl.col("update_id") <= pl.col("_prior_max")).fill_null(False),  # re-send or late: rare
        _crossed=(pl.col("bid") >= pl.col("ask")).fill_null(False),
    )
    frame = frame.with_columns(_duplicate=_already_seen(frame, market))
    frame = frame.with_columns(_ok=~pl.any_horizontal("_unknown", "_unparseable", "_repeat", "_crossed"))

    recv_ts = pl.col("recv_ns").cast(pl.Datetime("ns", "UTC"))
    unit_ns = pl.col("event_time_unit").replace_strict(UNIT_NS, default=None, return_dtype=pl.Int64)
    has_event_time = pl.col("event_time").is_not_null()
    # Select the contract's columns before filtering: the raw text columns are not carried along.
    rows = (
        frame.select(
            ts=pl.when(has_event_time)
            .then((pl.col("event_time") * unit_ns).cast(pl.Datetime("ns", "UTC")))
            .otherwise(recv_ts),
            ts_source=pl.when(has_event_time).then(pl.lit("venue", TS_SOURCE)).otherwise(pl.lit("receive", TS_SOURCE)),
            recv_ts=recv_ts,
            venue="venue",
            market="market",
            symbol="symbol",
            channel=pl.lit("book_ticker", CHANNEL),
            bid="bid",
            ask="ask",
            bid_size="bid_size",
            ask_size="ask_size",
            seq="update_id",
            _ok="_ok",
        )
        .filter("_ok")
        .drop("_ok")
    )

    rejected = frame.filter(~pl.col("_ok")).with_columns(
        _reason=pl.when("_unknown")
        .then(pl.lit("unknown_symbol"))
        .when("_unparseable")
        .then(pl.lit("unparseable"))
        .when("_duplicate")
        .then(pl.lit("duplicate"))
        .when("_repeat")
        .then(pl.lit("out_of_order"))
        .otherwise(pl.lit("crossed_book")),
        _field=pl.when("_unknown")
        .then(pl.lit("symbol"))
        .when("_unparseable")
        .then(pl.coalesce([pl.when(bad).then(pl.lit(name)) for name, bad in unparseable.items()]))
        .when("_repeat")
        .then(pl.lit("seq"))
        .otherwise(pl.lit("bid")),
    )
    return Normalised(rows, _quarantine(rejected, raw.columns, target="quotes", source=source, partition=partition))


def _symbol_map(natives: pl.Series) -> dict[str, str | None]:
    """Each distinct native symbol with its canonical form (None where it cannot be split)."""
    mapping: dict[str, str | None] = {}
    for native in natives.unique().cast(pl.String).to_list():
        try:
            mapping[native] = canonical_symbol(native)
        except UnknownSymbol:
            mapping[native] = None
    return mapping


def _already_seen(frame: pl.DataFrame, market: list[str]) -> pl.Series:
    """True where the row's update id was already received earlier for the same market.

    Only rows flagged ``_repeat`` (id at or below the market's running maximum) can be re-sends,
    so the set-membership test runs on those ids alone instead of hashing every row.
    """
    repeated_ids = frame.filter("_repeat").get_column("update_id").unique()
    if repeated_ids.is_empty():
        return pl.repeat(False, frame.height, eager=True)
    candidates = frame.with_row_index("_row").filter(pl.col("update_id").is_in(repeated_ids.implode()))
    seen_before = candidates.filter(~pl.struct([*market, "update_id"]).is_first_distinct()).get_column("_row")
    return pl.repeat(False, frame.height, eager=True).scatter(seen_before, True)
