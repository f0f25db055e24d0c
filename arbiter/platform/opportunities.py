"""Opportunities and what acting on them would really have earned: the reward signal.

An opportunity is a pair event (``features.pair_features``) whose net spread after both legs'
taker fees is above zero. Its outcome is the round trip an order sent at the decision would have
made: both legs fill ``latency`` later at the touch (buy the cheap leg at its ask, sell the rich
leg at its bid), and both are closed ``horizon`` after that (sell at the bid, buy back at the
ask), four taker fees paid. Fills are priced from each venue's book on the venue's own clock
(``ts``), not from what we had received by then: a quote that reached us late (a held-back feed)
is not a price anyone could have traded at. An outcome whose exit lies beyond the data is unknown
(null), never guessed; those rows wait for the next hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from arbiter.platform.schema import OPPORTUNITIES

MS = 1_000_000


@dataclass(frozen=True)
class OutcomeConfig:
    latency_ms: float = 250.0  # decision to both legs' fills
    horizon_ms: float = 15_000.0  # fills to the close of both legs


def _leg(side: str) -> list[pl.Expr]:
    """The (venue, market) of the leg bought (side="buy") or sold, from the pair's direction."""
    a_is = pl.col("direction") > 0 if side == "buy" else pl.col("direction") < 0
    return [
        pl.when(a_is).then(pl.col("venue_a")).otherwise(pl.col("venue_b")).alias("venue"),
        pl.when(a_is).then(pl.col("market_a")).otherwise(pl.col("market_b")).alias("market"),
    ]


def _fill(frame: pl.DataFrame, books: pl.DataFrame, side: str, at: str, prefix: str) -> pl.DataFrame:
    """Join the ``side`` leg's book as of time column ``at`` (venue clock), as ``<prefix>_<column>``."""
    legs = frame.with_columns(*_leg(side), _at=pl.col(at)).sort("_at")
    joined = legs.join_asof(
        books.rename({"ts": "_book_ts"}),
        left_on="_at",
        right_on="_book_ts",
        by=["venue", "market", "symbol"],
        check_sortedness=False,  # sorted by time above; Polars cannot check it within groups
    )
    renamed = {c: f"{prefix}_{c}" for c in ("bid", "ask", "bid_size", "ask_size", "_book_ts", "last_ts")}
    return joined.rename(renamed).drop("venue", "market", "_at")


def opportunities(
    pairs: pl.DataFrame, books: pl.DataFrame, fees: dict[tuple[str, str], float], config: OutcomeConfig
) -> pl.DataFrame:
    """The pair events with a positive net spread, with their realised outcome, in the contract's
    ``opportunities`` columns, in decision order.

    ``pairs`` is ``features.pair_features(...).frame``; ``books`` the quotes the features were
    computed from (``features.prepare_quotes(...).accepted``: venue, market, symbol, ts, bid, ask,
    bid_size, ask_size)."""
    candidates = pairs.filter(pl.col("net_spread_bps") > 0)
    latency, horizon = int(config.latency_ms * MS), int(config.horizon_ms * MS)
    books = (
        books.select("venue", "market", "symbol", "ts", "bid", "ask", "bid_size", "ask_size")
        .with_columns(pl.col("venue", "market", "symbol").cast(pl.String))
        .sort("ts")
        .with_columns(last_ts=pl.col("ts").max().over("venue", "market", "symbol"))
    )
    frame = candidates.with_columns(
        pl.col("venue_a", "market_a", "venue_b", "market_b", "symbol").cast(pl.String),
        entry_ts=pl.col("decision_ts") + pl.duration(nanoseconds=latency),
        exit_ts=pl.col("decision_ts") + pl.duration(nanoseconds=latency + horizon),
    )
    frame = _fill(frame, books, "buy", "entry_ts", "be")
    frame = _fill(frame, books, "sell", "entry_ts", "se")
    frame = _fill(frame, books, "buy", "exit_ts", "bx")
    frame = _fill(frame, books, "sell", "exit_ts", "sx")
    fee_of = {f"{v}|{m}": f for (v, m), f in fees.items()}
    buy_fee = pl.concat_str(*_leg("buy"), separator="|").replace_strict(fee_of, return_dtype=pl.Float64)
    sell_fee = pl.concat_str(*_leg("sell"), separator="|").replace_strict(fee_of, return_dtype=pl.Float64)
    # the data must reach past the exit on both legs, or the close is unknown
    known = (pl.col("bx_last_ts") >= pl.col("exit_ts")) & (pl.col("sx_last_ts") >= pl.col("exit_ts"))
    buy_entry, sell_entry = pl.col("be_ask"), pl.col("se_bid")
    buy_exit, sell_exit = pl.col("bx_bid"), pl.col("sx_ask")
    gross = 1e4 * ((sell_entry - buy_entry) + (buy_exit - sell_exit)) / buy_entry
    fees_bps = 1e4 * (buy_fee * (buy_entry + buy_exit) + sell_fee * (sell_entry + sell_exit)) / buy_entry
    frame = frame.with_columns(
        buy_entry=buy_entry,
        sell_entry=sell_entry,
        buy_exit=pl.when(known).then(buy_exit),
        sell_exit=pl.when(known).then(sell_exit),
        gross_pnl_bps=pl.when(known).then(gross),
        fees_bps=pl.when(known).then(fees_bps),
        net_pnl_bps=pl.when(known).then(gross - fees_bps),
        # the smaller displayed notional at the touch of the two fills (unknown if either size is)
        depth_notional=pl.when(pl.col("be_ask_size").is_not_null() & pl.col("se_bid_size").is_not_null()).then(
            pl.min_horizontal(pl.col("be_ask") * pl.col("be_ask_size"), pl.col("se_bid") * pl.col("se_bid_size"))
        ),
        latency_ms=pl.lit(float(config.latency_ms)),
        horizon_ms=pl.lit(float(config.horizon_ms)),
    )
    return frame.select(OPPORTUNITIES.names).sort("decision_ts", "pair", maintain_order=True)
