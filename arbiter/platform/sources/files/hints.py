"""What a file may not say about itself — venue, market, symbol, interval, table — and where each
comes from: the file's content first, then its name and path, then the caller's explicit
arguments, then what the format implies; when none says, an error names the missing one and the
flag that supplies it. An explicit argument that contradicts the file is an error too, never
silently overridden either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from arbiter.platform.normalise import KNOWN_BASES, UnknownSymbol, canonical_symbol
from arbiter.platform.schema import MARKET_TYPES

# Venues a path segment or file-name word may name (``/data/binance/...``, ``kraken-trades.csv``).
KNOWN_VENUES = ("binance", "kraken", "kraken_futures", "coinbase", "bybit", "okx", "bitmex", "deribit", "bitstamp")
# Path words that name a market type: data.binance.vision's ``spot/``, ``futures/um/``, ``futures/cm/``.
MARKET_WORDS = {
    "spot": "spot",
    "um": "linear_perp",
    "usdm": "linear_perp",
    "cm": "inverse_perp",
    "coinm": "inverse_perp",
    **{m: m for m in MARKET_TYPES},
}
TABLES = ("quotes", "trades", "bars", "documents", "listings")
FLAGS = {
    "venue": "--venue",
    "market": "--market",
    "symbol": "--symbol",
    "kind": "--kind",
    "interval": "interval= (or name the file PAIR_<minutes>.csv)",
}


class FileFeedError(ValueError):
    """A file cannot be read as a whole; the message names source, partition and file."""


class UnrecognisedFile(FileFeedError):
    pass


class MissingHint(FileFeedError):
    """Neither the file's content, its name nor the caller says a venue, market, symbol, ..."""


class UnknownField(FileFeedError):
    """A column map names a field that the file does not have."""


def parse_column_map(text: str) -> dict[str, str]:
    """``"listing_id=id,title=title"`` (the ``--map`` syntax: ours=the file's) as a dict."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    bad = [item for item in pairs if len(item) != 2 or not item[0].strip() or not item[1].strip()]
    if bad:
        raise ValueError(f"--map entry {'='.join(bad[0])!r} is not COLUMN=FIELD")
    return {ours.strip(): theirs.strip() for ours, theirs in pairs}


@dataclass(frozen=True)
class FileHints:
    """The caller's explicit arguments (the CLI's ``--venue``, ``--market``, ``--symbol``,
    ``--kind``, ``--map``); ``interval`` names a bar interval a file cannot tell."""

    venue: str | None = None
    market: str | None = None
    symbol: str | None = None
    kind: str | None = None
    interval: str | None = None
    column_map: Mapping[str, str] = field(default_factory=dict)  # our column -> the file's field

    @classmethod
    def from_meta(cls, meta: Mapping[str, str], defaults: FileHints | None = None) -> FileHints:
        """Hints recorded in a snapshot's ``meta`` (keys ``venue``, ``market``, ``symbol``, ``kind``,
        ``interval``, ``map`` as ``COLUMN=FIELD,...``), over ``defaults`` where it records none."""
        base = defaults or cls()
        given = {key: meta[key] for key in ("venue", "market", "symbol", "kind", "interval") if meta.get(key)}
        column_map = parse_column_map(meta["map"]) if meta.get("map") else base.column_map
        return replace(base, **given, column_map=column_map)

    def __post_init__(self):
        if self.market is not None and self.market not in MARKET_TYPES:
            raise ValueError(f"--market {self.market!r} is not one of {', '.join(MARKET_TYPES)}")
        if self.kind is not None and self.kind not in TABLES:
            raise ValueError(f"--kind {self.kind!r} is not one of {', '.join(TABLES)}")


def interval_label(seconds: int) -> str:
    """A bar length as Binance spells intervals (``1s``, ``15m``, ``4h``, ``1d``, ``1w``, ``1M``), the
    one vocabulary of ``bars.interval``; 28 to 31 days is one calendar month."""
    if 28 * 86400 <= seconds <= 31 * 86400:
        return "1M"
    for unit, length in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % length == 0:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def symbol_or_none(native: str | None) -> str | None:
    """Canonical ``BASE-QUOTE`` of a native symbol, or None when it does not split."""
    if not native:
        return None
    try:
        return canonical_symbol(native)
    except UnknownSymbol:
        return None


@dataclass(frozen=True)
class FileContext:
    """One file being parsed: where it came from, when, and what the caller said about it."""

    source: str
    partition: str
    origin: str  # path or object key; ``archive.zip!member.csv`` for a member of a zip
    received_at: int  # UTC ns
    hints: FileHints = field(default_factory=FileHints)

    @property
    def name(self) -> str:
        """The file's own name: the last path segment of the innermost member."""
        return re.split(r"[/\\!]", self.origin)[-1]

    def words(self) -> list[str]:
        """Lower-case path segments and name words (split on ``- _ .``), outermost first."""
        segments = [s.lower() for s in re.split(r"[/\\!]", self.origin) if s]
        return segments + [w for s in segments for w in re.split(r"[-_. ]", s) if w]

    def venue_in_path(self) -> str | None:
        words = self.words()
        return next((v for v in KNOWN_VENUES if v in words), None)

    def market_in_path(self) -> str | None:
        words = self.words()
        return next((market for word, market in MARKET_WORDS.items() if word in words), None)

    def symbol_in_name(self) -> str | None:
        """The first word of the file name that is a symbol of a well-known base asset
        (``btcusdt-trades.parquet``; not ``prices_eur.csv``, whose "PRICES" is no asset)."""
        stem = self.name.split(".")[0]
        symbols = filter(None, map(symbol_or_none, re.split(r"[- ]", stem)))
        return next((s for s in symbols if s.split("-")[0] in KNOWN_BASES), None)

    def error(self, kind: type[FileFeedError], message: str) -> FileFeedError:
        return kind(f"source {self.source!r}, partition {self.partition!r}, file {self.origin!r}: {message}")

    def resolve(
        self, what: str, *, content: str | None = None, name: str | None = None, default: str | None = None
    ) -> str:
        """``what`` (venue, market, symbol, interval, kind) from content, name, explicit hint, default.

        Raises ``FileFeedError`` when the explicit hint contradicts the file, ``MissingHint`` when
        nothing says.
        """
        explicit = getattr(self.hints, what)
        if what == "symbol" and explicit:
            explicit = symbol_or_none(explicit) or explicit.upper()
        found = content or name
        if explicit and found and explicit != found:
            said = "content" if content else "name"
            raise self.error(
                FileFeedError, f"{FLAGS[what]} {explicit!r} contradicts the file's {said}, which says {found!r}"
            )
        value = found or explicit or default
        if not value:
            raise self.error(MissingHint, f"no {what}: the file does not say it; pass {FLAGS[what]}")
        return value
