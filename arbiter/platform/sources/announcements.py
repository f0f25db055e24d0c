"""Simulated exchange announcements for the embedded simulator, with the events they state as truth.

Each venue of the market simulator publishes a few announcements a day about the simulated
assets: wallet maintenance, network upgrades, deposit and withdrawal suspensions (planned ones
announced hours ahead, unplanned ones after they began), new trading pairs and delisted pairs.
The wording varies the way the real samples do (Binance's "Fellow Binancians", Coinbase's
status notes, Kraken's funding notices), each venue writes times in its own style, and every
window is stated in the text to the minute, so an extractor can be scored against the truth.

Like the market simulator, every hour is generated from ``(seed, hour)`` alone.
``transfer_windows`` turns the truth into the intervals when funds cannot move in or out of a venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from arbiter.platform import schema
from arbiter.platform.sources.simulator import ASSETS, HOUR_NS, NS, ORIGIN, VENUES, hour_index
from arbiter.platform.sources.web.text import content_id, normalise_text

MINUTE_NS = 60 * NS
# The contract's event types the simulator announces (every one but "other").
EVENT_TYPES = tuple(t for t in schema.EVENT_TYPES if t != "other")
# How often each event type is announced, relative to the others.
EVENT_WEIGHTS = (0.08, 0.12, 0.12, 0.08, 0.12, 0.30, 0.18)
# What each event blocks. A delisted pair leaves the asset transferable; an asset delisted from the
# venue altogether (no ``symbol``) stops taking deposits (withdrawals stay open for a grace period).
BLOCKS = {
    "deposit_suspension": ("deposit",),
    "withdrawal_suspension": ("withdrawal",),
    "deposit_withdrawal_suspension": ("deposit", "withdrawal"),
    "maintenance": ("deposit", "withdrawal"),
    "network_upgrade": ("deposit", "withdrawal"),
    "delisting": ("deposit",),
    "listing": (),
}
UNPLANNED = frozenset({"deposit_suspension", "withdrawal_suspension", "deposit_withdrawal_suspension"})

TRUTH_SCHEMA = {
    "venue": pl.String,
    "asset": pl.String,
    "network": pl.String,
    "symbol": pl.String,  # the pair a listing or delisting concerns; null when it is the asset itself
    "event_type": pl.String,
    "start": pl.Datetime("ns", "UTC"),
    "end": pl.Datetime("ns", "UTC"),  # null: open-ended (a listing, a delisting)
    "announced": pl.Datetime("ns", "UTC"),  # the document's ts: nobody knows of the event before it
    "doc_id": pl.String,
}
WINDOW_SCHEMA = {
    "venue": pl.String,
    "asset": pl.String,
    "direction": pl.String,  # deposit | withdrawal
    "start": pl.Datetime("ns", "UTC"),
    "end": pl.Datetime("ns", "UTC"),  # null: until further notice
}


@dataclass(frozen=True)
class Network:
    key: str  # bitcoin, ethereum, solana
    names: dict[str, str]  # how each venue names it


NETWORKS = {
    "BTC": Network("bitcoin", {"binance": "Bitcoin (BTC)", "coinbase": "Bitcoin", "kraken": "Bitcoin (XBT)"}),
    "ETH": Network("ethereum", {"binance": "Ethereum (ERC20)", "coinbase": "Ethereum", "kraken": "Ethereum (ETH)"}),
    "SOL": Network("solana", {"binance": "Solana (SOL)", "coinbase": "Solana", "kraken": "Solana (SOL)"}),
}
ASSET_NAMES = {"BTC": "Bitcoin", "ETH": "Ether", "SOL": "Solana"}
NEW_QUOTES = ("EUR", "USDC", "FDUSD", "TRY", "BRL", "GBP")


@dataclass(frozen=True)
class House:
    """How a venue writes: its name, its greeting and sign-off, its time format, its asset codes."""

    name: str
    greeting: str
    sign_off: str
    time_format: str  # strftime, and {day}: the day of the month without a leading zero
    asset_codes: dict[str, str]


HOUSES = {
    "binance": House(
        "Binance", "Fellow Binancians,", "Thank you for your support!\n\nBinance Team", "%Y-%m-%d %H:%M (UTC)", {}
    ),
    "coinbase": House("Coinbase", "", "We apologize for any inconvenience.", "%B {day}, %Y at %H:%M UTC", {}),
    "kraken": House(
        "Kraken",
        "Dear clients,",
        "Thank you for your patience.\n\nThe Kraken team",
        "%d %b %Y %H:%M UTC",
        {"BTC": "XBT"},
    ),
}

# (title, body) per event type; {start} and {end} are the only times a body states, in that order.
TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "maintenance": (
        (
            "Wallet Maintenance for {network} - {date}",
            "{greeting}\n\n{venue} will perform wallet maintenance for {network}. To support the wallet "
            "maintenance, deposits and withdrawals on {network} will be suspended starting from {start}, and "
            "be resumed when the maintenance is complete, expected at {end}.\n\nPlease note:\n\nThe trading of "
            "token(s) on the aforementioned network will not be impacted. {venue} will handle all technical "
            "requirements involved for all users.\n\n{sign_off}",
        ),
        (
            "Scheduled maintenance: {asset_name} ({asset}) sends and receives",
            "{greeting}\n\nWe will be performing scheduled maintenance on the {network} network from {start} to "
            "{end}. During this window, sending and receiving {asset} will be unavailable. Trading is not "
            "affected.\n\n{sign_off}",
        ),
        (
            "Funding gateway maintenance - {asset}",
            "{greeting}\n\nDeposits and withdrawals for {asset_name} ({asset}) will be unavailable from {start} "
            "until {end} while we perform scheduled maintenance on our {network} funding gateway. Trading will "
            "continue as normal.\n\n{sign_off}",
        ),
    ),
    "network_upgrade": (
        (
            "{venue} Will Support the {network} Network Upgrade & Hard Fork - {date}",
            "{greeting}\n\n{venue} will support the {network} network upgrade and hard fork to ensure the best "
            "user experience.\n\nThe network upgrade will take place at the block height of {height}. {venue} "
            "will suspend the deposits and withdrawals of token(s) on the {network} network starting from "
            "approximately {start}. Deposits and withdrawals are expected to reopen at {end}, once the upgraded "
            "network is deemed to be stable.\n\nPlease note:\n\nThe trading of token(s) on the aforementioned "
            "network will not be impacted.\n\n{sign_off}",
        ),
        (
            "Network Upgrade for {network} - {date}",
            "{greeting}\n\nThe {network} network upgrade will take place at block {height}. {venue} will suspend "
            "deposits and withdrawals of {asset} starting from {start} and resume them at {end}, when the "
            "upgrade is complete.\n\n{sign_off}",
        ),
        (
            "Upcoming {asset_name} network upgrade",
            "{greeting}\n\nIn support of the upcoming {network} network upgrade (block {height}), {asset} "
            "deposits and withdrawals will be paused between {start} and {end}. {asset} trading will remain "
            "available throughout.\n\n{sign_off}",
        ),
    ),
    "deposit_suspension": (
        (
            "{asset} deposits paused",
            "{greeting}\n\nDeposits of {asset_name} ({asset}) on the {network} network have been paused since "
            "{start} due to network congestion. We expect deposits to resume by {end}. Withdrawals and trading "
            "continue as normal.\n\n{sign_off}",
        ),
        (
            "{venue} Has Temporarily Suspended Deposits on the {network} Network",
            "{greeting}\n\n{venue} has temporarily suspended deposits on the {network} network since {start} "
            "while a node upgrade completes. Deposits are expected to reopen at {end}. Withdrawals are not "
            "affected.\n\n{sign_off}",
        ),
    ),
    "withdrawal_suspension": (
        (
            "{asset} withdrawals delayed",
            "{greeting}\n\nSince {start}, withdrawals of {asset} on the {network} network are delayed while we "
            "investigate an issue with a node provider. We expect withdrawals to resume by {end}. Deposits and "
            "trading are not affected. Your funds are safe.\n\n{sign_off}",
        ),
        (
            "{venue} Has Temporarily Suspended Withdrawals on the {network} Network",
            "{greeting}\n\n{venue} has temporarily suspended withdrawals on the {network} network since {start} "
            "due to high network congestion. Withdrawals are expected to resume at {end}.\n\n{sign_off}",
        ),
    ),
    "deposit_withdrawal_suspension": (
        (
            "{asset} funding delayed",
            "{greeting}\n\n{asset} deposits and withdrawals are temporarily disabled as of {start} due to a "
            "network issue. We anticipate funding to be restored by {end}. Client funds are safe and trading "
            "is unaffected.\n\n{sign_off}",
        ),
        (
            "Temporary Suspension of Deposits and Withdrawals on the {network} Network",
            "{greeting}\n\nDue to instability on the {network} network, deposits and withdrawals of {asset} "
            "have been suspended since {start}. They are expected to be reopened at {end}.\n\n{sign_off}",
        ),
    ),
    "listing": (
        (
            "{venue} Will Add {asset}/{quote} Spot Trading Pair",
            "{greeting}\n\n{venue} will open trading for the {asset}/{quote} spot trading pair at {start}. "
            "Spot Algo Orders will also be enabled for the aforementioned pair at that time.\n\n{sign_off}",
        ),
        (
            "{asset}-{quote} trading is launching",
            "{greeting}\n\nWe will launch {asset}-{quote} trading on {start}. Order books will start in "
            "post-only mode before full trading is enabled.\n\n{sign_off}",
        ),
        (
            "New trading pair: {asset}/{quote}",
            "{greeting}\n\nTrading for the new {asset}/{quote} pair opens on {start}. Funding for {asset} "
            "is already available.\n\n{sign_off}",
        ),
    ),
    "delisting": (
        (
            "Notice of Removal of Spot Trading Pairs - {date}",
            "{greeting}\n\nTo protect users and maintain a high quality trading market, {venue} will remove and "
            "cease trading on the following spot trading pair: {asset}/{quote} at {start}.\n\nPlease note: the "
            "delisting of a spot trading pair does not affect the availability of {asset} on {venue} Spot. "
            "Deposits and withdrawals of {asset} continue as usual.\n\n{sign_off}",
        ),
        (
            "{asset}-{quote} order book will be delisted",
            "{greeting}\n\nWe will delist the {asset}-{quote} order book on {start}. Open orders will be "
            "cancelled at that time. Your {asset} balance is not affected and can still be sent and "
            "received.\n\n{sign_off}",
        ),
    ),
}


@dataclass(frozen=True)
class AnnouncementConfig:
    seed: int = 7
    venues: tuple[str, ...] = tuple(dict.fromkeys(v.venue for v in VENUES))
    assets: tuple[str, ...] = tuple(a.base for a in ASSETS)
    per_day: float = 3.0  # announcements per venue per day


@dataclass(frozen=True)
class SimulatedAnnouncements:
    documents: pl.DataFrame  # the ``documents`` contract
    truth: pl.DataFrame  # TRUTH_SCHEMA: one event per document


def _round_up(ns: int, step_min: int) -> int:
    step = step_min * MINUTE_NS
    return -(-ns // step) * step


def _stated(ns: int, house: House) -> str:
    when = datetime.fromtimestamp(ns // NS, UTC)
    return when.strftime(house.time_format).replace("{day}", str(when.day))


def _event(rng: np.random.Generator, cfg: AnnouncementConfig, venue: str, published: int) -> tuple[dict, dict]:
    """One announcement (title, body) and the event it states, published at ``published`` (UTC ns)."""
    event_type = EVENT_TYPES[rng.choice(len(EVENT_TYPES), p=EVENT_WEIGHTS)]
    asset = cfg.assets[rng.integers(len(cfg.assets))]
    house, network = HOUSES[venue], NETWORKS[asset]
    symbol = None
    if event_type in UNPLANNED:  # announced once it has begun
        start = published // MINUTE_NS * MINUTE_NS - int(rng.integers(5, 46)) * MINUTE_NS
        end = _round_up(start + int(rng.integers(60, 361)) * MINUTE_NS, 15)
    elif event_type in ("maintenance", "network_upgrade"):  # announced hours or days ahead
        start = _round_up(published + int(rng.integers(2, 73)) * HOUR_NS, 30) - 5 * MINUTE_NS
        end = start + int(rng.integers(4, 25)) * 15 * MINUTE_NS
    else:  # a pair is listed within a day, delisted within a week
        lead_h = int(rng.integers(1, 25)) if event_type == "listing" else int(rng.integers(72, 169))
        start, end = _round_up(published + lead_h * HOUR_NS, 60), None
        symbol = f"{asset}-{NEW_QUOTES[rng.integers(len(NEW_QUOTES))]}"
    title, body = TEMPLATES[event_type][rng.integers(len(TEMPLATES[event_type]))]
    code = house.asset_codes.get(asset, asset)
    fields = {
        "venue": house.name,
        "greeting": house.greeting,
        "sign_off": house.sign_off,
        "network": network.names[venue],
        "asset": code,
        "asset_name": ASSET_NAMES[asset],
        "quote": symbol.split("-")[1] if symbol else "",
        "date": datetime.fromtimestamp(start // NS, UTC).strftime("%Y-%m-%d"),
        "height": f"{int(rng.integers(1_000_000, 90_000_000)):,}",
        "start": _stated(start, house),
        "end": _stated(end, house) if end is not None else "",
    }
    text = {"title": title.format(**fields), "body": normalise_text(body.format(**fields))}
    event = {
        "venue": venue,
        "asset": asset,
        "network": network.key,
        "symbol": symbol,
        "event_type": event_type,
        "start": start,
        "end": end,
        "announced": published,
    }
    return text, event


def simulate_announcements(
    start: datetime, hours: int = 1, cfg: AnnouncementConfig = AnnouncementConfig()
) -> SimulatedAnnouncements:
    """Every venue's announcements published in the ``hours`` beginning at ``start`` (UTC), deterministically.

    Raises ``ValueError`` for a start before the simulator's origin (2026-01-01T00:00Z).
    """
    first = hour_index(start)
    if first < 0:
        raise ValueError("the simulator starts at 2026-01-01T00:00Z")
    documents, truth = [], []
    for hour in range(first, first + hours):
        t0 = int(ORIGIN.timestamp()) * NS + hour * HOUR_NS
        for vi, venue in enumerate(cfg.venues):
            rng = np.random.default_rng([cfg.seed, 3, vi, hour])
            published = np.sort(rng.integers(0, HOUR_NS // NS, rng.poisson(cfg.per_day / 24))) * NS + t0
            for ts in published.tolist():
                text, event = _event(rng, cfg, venue, ts)
                doc_id = content_id(text["title"], text["body"])
                documents.append({"ts": ts, "source": venue, "doc_id": doc_id, **text, "url": None})
                truth.append({**event, "doc_id": doc_id})
    doc_schema = {"ts": pl.Int64, "source": pl.String, "doc_id": pl.String, "title": pl.String, "body": pl.String}
    docs = pl.DataFrame(documents, schema={**doc_schema, "url": pl.String}, orient="row")
    times = {name: pl.Int64 for name, dtype in TRUTH_SCHEMA.items() if isinstance(dtype, pl.Datetime)}
    events = pl.DataFrame(truth, schema={**TRUTH_SCHEMA, **times}, orient="row")
    return SimulatedAnnouncements(
        documents=docs.with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC"))).sort("ts", maintain_order=True),
        truth=events.with_columns(pl.col(list(times)).cast(pl.Datetime("ns", "UTC"))).sort(
            "announced", maintain_order=True
        ),
    )


def transfer_windows(truth: pl.DataFrame) -> pl.DataFrame:
    """Per venue, asset and direction (``deposit``/``withdrawal``), the merged intervals when funds
    cannot move; ``end`` null means until further notice. Moving an asset from venue A to venue B
    needs A's withdrawals and B's deposits open.

    Suspensions, maintenance and network upgrades block what they say; a delisting of the asset
    itself (``symbol`` null) stops deposits from its start; pair listings and delistings block
    nothing. The stated network is taken as the asset's route: an asset that also moves on other
    networks is blocked more often here than in reality. The windows are what happens, not what is
    known when: an event is known only from its ``announced`` time.
    """
    rules = pl.DataFrame(
        [(event, direction) for event, directions in BLOCKS.items() for direction in directions],
        schema={"event_type": pl.String, "direction": pl.String},
        orient="row",
    )
    blocking = truth.filter((pl.col("event_type") != "delisting") | pl.col("symbol").is_null())
    keys = ["venue", "asset", "direction"]
    forever = np.iinfo(np.int64).max  # an open end, while merging
    windows = (
        blocking.join(rules, on="event_type", maintain_order="left")
        .select(*keys, pl.col("start").cast(pl.Int64), pl.col("end").cast(pl.Int64).fill_null(forever))
        .sort([*keys, "start"])
    )
    # An interval starts a new window when it begins after every earlier interval of its key ended.
    reach = pl.col("end").cum_max().shift(1).over(keys)
    merged = (
        windows.with_columns(window=((pl.col("start") > reach) | reach.is_null()).cum_sum().over(keys))
        .group_by([*keys, "window"], maintain_order=True)
        .agg(pl.col("start").min(), pl.col("end").max())
        .with_columns(pl.when(pl.col("end") != forever).then(pl.col("end")).alias("end"))
    )
    return merged.select(list(WINDOW_SCHEMA)).cast(WINDOW_SCHEMA)
