from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from arbiter.platform.sources.simulator import SimulatorConfig, instruments, simulate_hour

HOUR = datetime(2026, 11, 20, 3, tzinfo=UTC)
CFG = SimulatorConfig(rate_scale=0.2)


def test_each_hour_is_deterministic_and_hours_differ():
    a, b = simulate_hour(HOUR, CFG), simulate_hour(HOUR, CFG)
    assert a.raw.equals(b.raw) and a.truth.equals(b.truth)
    assert not simulate_hour(HOUR + timedelta(hours=1), CFG).raw.equals(a.raw)
    assert not simulate_hour(HOUR, SimulatorConfig(seed=8, rate_scale=0.2)).raw.equals(a.raw)


def _mid(raw: pl.DataFrame, venue: str, native: str) -> pl.Series:
    rows = raw.filter((pl.col("venue") == venue) & (pl.col("market") == "spot") & (pl.col("native_symbol") == native))
    return (rows["bid_px"].cast(pl.Float64, strict=False) + rows["ask_px"].cast(pl.Float64, strict=False)) / 2


def test_prices_are_continuous_across_hours():
    end = _mid(simulate_hour(HOUR, CFG).raw, "binance", "BTCUSDT").drop_nulls()[-20:].median()
    start = _mid(simulate_hour(HOUR + timedelta(hours=1), CFG).raw, "binance", "BTCUSDT").drop_nulls()[:20].median()
    assert abs(start / end - 1) < 0.003


def test_venues_speak_their_own_dialects():
    raw = simulate_hour(HOUR, CFG).raw
    natives = set(raw["native_symbol"].cast(pl.String))
    assert {"BTCUSDT", "BTC-USDT", "XBT/USDT"} <= natives
    kraken = raw.filter(pl.col("venue") == "kraken")
    assert kraken["event_time"].null_count() == kraken.height and kraken["update_id"].null_count() == kraken.height
    coinbase = raw.filter(pl.col("venue") == "coinbase")
    assert set(coinbase["event_time_unit"].cast(pl.String)) == {"us"}


def test_injected_faults_are_present():
    raw = simulate_hour(HOUR, SimulatorConfig()).raw
    with_ids = raw.filter(pl.col("update_id").is_not_null())
    assert with_ids.select(pl.struct("venue", "market", "native_symbol", "update_id").is_duplicated().any()).item()
    assert (raw["ask_px"] == "").any()  # corrupt messages
    gaps = (
        raw.filter(pl.col("venue") == "binance")
        .group_by("market", "native_symbol")
        .agg(pl.col("recv_ns").sort().diff().max().alias("gap"))
    )
    assert (gaps["gap"] > 5e9).any()  # an outage of several seconds


def test_dislocations_are_ground_truth_and_visible_in_prices():
    hour = simulate_hour(HOUR, SimulatorConfig())
    assert hour.truth.height > 0
    w = hour.truth.filter(kind="persistent").sort("magnitude_bps", descending=True).row(0, named=True)
    lo, hi = w["start"], w["end"]
    raw = hour.raw.with_columns(
        t=pl.col("recv_ns").cast(pl.Datetime("ns", "UTC")),
        mid=(pl.col("bid_px").cast(pl.Float64, strict=False) + pl.col("ask_px").cast(pl.Float64, strict=False)) / 2,
    )
    base = {"BTC": "BTC", "ETH": "ETH", "SOL": "SOL"}[w["base"]]
    inside = raw.filter(
        (pl.col("t") > lo + timedelta(milliseconds=300))
        & (pl.col("t") < hi)
        & pl.col("native_symbol").cast(pl.String).str.contains(base.replace("BTC", "(BTC|XBT)"))
    )
    moved = inside.filter((pl.col("venue") == w["venue"]) & (pl.col("market") == w["market"]))["mid"].median()
    others = inside.filter((pl.col("venue") != w["venue"]) & (pl.col("market") == "spot"))["mid"].median()
    gap_bps = (moved / others - 1) * 1e4
    assert np.sign(gap_bps) == w["direction"] and abs(gap_bps) > w["magnitude_bps"] * 0.5


def test_the_book_says_which_dislocations_persist():
    """Persistent dislocations are backed by size on the side pushing them; fleeting ones by size on
    the side closing them, and they are over within half a second."""
    hours = [simulate_hour(HOUR + timedelta(hours=h), SimulatorConfig()) for h in range(3)]
    agree = {"persistent": [], "fleeting": []}
    for hour in hours:
        raw = hour.raw.with_columns(
            pl.col("recv_ns").alias("t"),
            bid_qty=pl.col("bid_qty").cast(pl.Float64, strict=False),
            ask_qty=pl.col("ask_qty").cast(pl.Float64, strict=False),
        )
        for w in hour.truth.filter(pl.col("kind") != "phantom").iter_rows(named=True):
            lo, hi = (int(w[k].timestamp() * 1e9) for k in ("start", "end"))
            native = "XBT" if w["base"] == "BTC" and w["venue"] == "kraken" else w["base"]
            inside = raw.filter(
                (pl.col("venue") == w["venue"])
                & (pl.col("market") == w["market"])
                & pl.col("native_symbol").cast(pl.String).str.starts_with(native)
                & pl.col("t").is_between(lo + 5_000_000, hi + 20_000_000)
            )
            imbalance = ((inside["bid_qty"] - inside["ask_qty"]) / (inside["bid_qty"] + inside["ask_qty"])).mean()
            if imbalance is not None:
                agree[w["kind"]].append(np.sign(imbalance) == w["direction"])
        durations = hour.truth.filter(kind="fleeting").select((pl.col("end") - pl.col("start")).dt.total_milliseconds())
        assert durations.to_series().max() <= 400
    assert np.mean(agree["persistent"]) > 0.75 and np.mean(agree["fleeting"]) < 0.25


def test_phantoms_are_a_held_back_feed_whose_quotes_arrive_old():
    hour = simulate_hour(HOUR, SimulatorConfig())
    phantoms = hour.truth.filter(kind="phantom")
    assert phantoms.height > 0
    w = phantoms.row(0, named=True)
    lo, hi = (int(w[k].timestamp() * 1e9) for k in ("start", "end"))
    unit = {"ms": 1_000_000, "us": 1_000}
    venue = hour.raw.filter(
        (pl.col("venue") == w["venue"])
        & (pl.col("market") == w["market"])
        & pl.col("native_symbol").cast(pl.String).str.starts_with(w["base"])
    ).with_columns(event_ns=pl.col("event_time") * pl.col("event_time_unit").cast(pl.String).replace_strict(unit))
    assert venue.filter(pl.col("recv_ns").is_between(lo + 300_000_000, hi - 1)).height == 0  # nothing arrives
    burst = venue.filter(pl.col("event_ns").is_between(lo, hi - 1))
    assert burst.height > 0 and (burst["recv_ns"] >= hi).all()  # then it all comes, late
    assert (burst["recv_ns"] - burst["event_ns"]).max() > 1_000_000_000


def test_stored_prices_format_back_to_the_venue_strings():
    """Float64 parsed from the venue's decimals, formatted at the instrument's precision, is the original text."""
    raw = simulate_hour(HOUR, CFG).raw.filter(pl.col("ask_px") != "")
    ref = instruments(CFG).select("venue", "market", "base", "price_precision", "size_precision")
    sample = raw.with_columns(
        base=pl.col("native_symbol").cast(pl.String).str.extract(r"^(BTC|XBT|ETH|SOL)").replace({"XBT": "BTC"}),
        venue=pl.col("venue").cast(pl.String),
        market=pl.col("market").cast(pl.String),
    ).join(ref, on=["venue", "market", "base"])
    assert sample.height == raw.height
    for row in sample.iter_rows(named=True):
        p, s = row["price_precision"], row["size_precision"]
        if not row["bid_px"].startswith("9" + row["ask_px"][:1]):  # skip the deliberately crossed corruptions
            assert f"{float(row['bid_px']):.{p}f}" == row["bid_px"]
        assert f"{float(row['ask_px']):.{p}f}" == row["ask_px"]
        assert f"{float(row['bid_qty']):.{s}f}" == row["bid_qty"]
