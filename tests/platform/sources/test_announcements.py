"""Simulated announcements: deterministic per (seed, hour), every stated window equal to the truth,
and the transfer windows of a handcrafted case."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import polars as pl
import pytest

from arbiter.platform.normalise import canonical_asset
from arbiter.platform.schema import DOCUMENTS, conform
from arbiter.platform.sources import web_pages
from arbiter.platform.sources.announcements import (
    EVENT_TYPES,
    TRUTH_SCHEMA,
    WINDOW_SCHEMA,
    AnnouncementConfig,
    simulate_announcements,
    transfer_windows,
)
from arbiter.platform.sources.base import RawSnapshot
from arbiter.platform.sources.web.text import content_id

START = datetime(2026, 1, 5, tzinfo=UTC)
NETWORK_NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "SOL": "Solana"}
MONTH = simulate_announcements(START, hours=24 * 30)

# The three ways the simulated venues write a time, parsed independently of the generator.
STATED = (
    (re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}) \(UTC\)"), "%Y-%m-%d %H:%M"),
    (re.compile(r"([A-Z][a-z]+ \d{1,2}, \d{4} at \d{2}:\d{2}) UTC"), "%B %d, %Y at %H:%M"),
    (re.compile(r"(\d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}) UTC"), "%d %b %Y %H:%M"),
)


def stated_times(text: str) -> list[datetime]:
    """Every time the text states, in the order it states them."""
    times = []
    for pattern, fmt in STATED:
        times += [(m.start(), datetime.strptime(m.group(1), fmt).replace(tzinfo=UTC)) for m in pattern.finditer(text)]
    return [when for _, when in sorted(times)]


def test_the_same_seed_and_hour_give_the_same_announcements():
    again = simulate_announcements(START, hours=24 * 30)
    assert again.documents.equals(MONTH.documents) and again.truth.equals(MONTH.truth)
    # Each hour stands alone: generating a day hour by hour gives the same as all at once.
    day = simulate_announcements(START, hours=24)
    hourly = [simulate_announcements(START.replace(hour=h)) for h in range(24)]
    assert pl.concat([h.documents for h in hourly]).equals(day.documents)
    assert pl.concat([h.truth for h in hourly]).equals(day.truth)
    other = simulate_announcements(START, hours=24 * 30, cfg=AnnouncementConfig(seed=8))
    assert not other.documents["doc_id"].equals(MONTH.documents["doc_id"])


def test_a_few_documents_a_day_of_every_kind_in_the_contract():
    documents, truth = MONTH.documents, MONTH.truth
    conform(documents, DOCUMENTS, name="documents", partition="sim")
    assert truth.schema == pl.Schema(TRUTH_SCHEMA)
    assert 3 <= documents.height / 30 <= 15
    assert set(truth["event_type"]) == set(EVENT_TYPES)
    assert set(truth["venue"]) == set(documents["source"]) == {"binance", "coinbase", "kraken"}
    assert set(truth["asset"]) == {"BTC", "ETH", "SOL"}
    assert documents["doc_id"].n_unique() == documents.height
    assert truth["doc_id"].sort().equals(documents["doc_id"].sort())
    for row in documents.iter_rows(named=True):
        assert row["doc_id"] == content_id(row["title"], row["body"])
    assert len(set(documents["title"])) > 40  # varied wording, not one sentence with other numbers


def test_every_stated_window_parses_back_to_the_truth():
    documents = MONTH.documents.join(MONTH.truth, on="doc_id", maintain_order="left")
    for row in documents.iter_rows(named=True):
        expected = [row["start"]] if row["end"] is None else [row["start"], row["end"]]
        assert stated_times(row["body"]) == expected, row["body"]
        # The asset is named the venue's way (Kraken's XBT), or only its network is ("Ethereum (ERC20)").
        codes = {canonical_asset(code) for code in re.findall(r"\b(XBT|BTC|ETH|SOL)\b", row["title"] + row["body"])}
        assert codes <= {row["asset"]} and (codes or NETWORK_NAMES[row["asset"]] in row["body"]), row["body"]
        if row["event_type"] in ("deposit_suspension", "withdrawal_suspension", "deposit_withdrawal_suspension"):
            assert row["start"] <= row["announced"] < row["end"]  # announced once it had begun
        else:
            assert row["announced"] < row["start"]  # announced ahead
        if row["symbol"] is not None:  # the pair, as BTC/EUR, BTC-EUR or Kraken's XBT/EUR
            base, quote = row["symbol"].split("-")
            pair = re.search(rf"\b([A-Z]+)[/-]{quote}\b", row["body"])
            assert pair and canonical_asset(pair.group(1)) == base, row["body"]


def test_simulated_documents_read_back_through_the_feed_adapter():
    lines = [
        json.dumps({"title": r["title"], "body": r["body"], "published_at": r["ts"].isoformat()})
        for r in MONTH.documents.iter_rows(named=True)
    ]
    snapshot = RawSnapshot("binance", "sim.jsonl", "\n".join(lines).encode(), received_at=0)
    parsed = web_pages.parse(snapshot, "sim")
    assert (
        parsed.frames["documents"]
        .select("ts", "doc_id", "title", "body")
        .equals(MONTH.documents.select("ts", "doc_id", "title", "body"))
    )


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def truth(*events: tuple) -> pl.DataFrame:
    rows = [
        {
            "venue": venue,
            "asset": asset,
            "network": None,
            "symbol": symbol,
            "event_type": event_type,
            "start": start,
            "end": end,
            "announced": at(1, 0),
            "doc_id": f"d{i}",
        }
        for i, (venue, asset, event_type, start, end, symbol) in enumerate(events)
    ]
    return pl.DataFrame(rows, schema=TRUTH_SCHEMA)


def test_transfer_windows_of_a_handcrafted_case():
    events = truth(
        # Overlapping maintenance and withdrawal suspension: withdrawals blocked 10:00-13:00.
        ("binance", "BTC", "maintenance", at(10, 10), at(10, 12), None),
        ("binance", "BTC", "withdrawal_suspension", at(10, 11), at(10, 13), None),
        # Back-to-back deposit suspensions join; after a gap, a window starts anew.
        ("binance", "BTC", "deposit_suspension", at(10, 13), at(10, 14), None),
        ("binance", "BTC", "deposit_suspension", at(10, 14), at(10, 15), None),
        ("binance", "BTC", "deposit_suspension", at(11, 9), at(11, 9, 30), None),
        ("kraken", "ETH", "network_upgrade", at(12, 9), at(12, 10), None),
        ("kraken", "ETH", "deposit_withdrawal_suspension", at(12, 20), at(12, 21), None),
        # Listing and delisting a pair move no funds; delisting the asset stops deposits for good.
        ("coinbase", "SOL", "listing", at(9, 12), None, "SOL-EUR"),
        ("coinbase", "SOL", "delisting", at(9, 12), None, "SOL-GBP"),
        ("coinbase", "SOL", "deposit_suspension", at(20, 23), at(21, 1), None),
        ("coinbase", "SOL", "delisting", at(21, 0), None, None),
    )
    got = transfer_windows(events).sort("venue", "asset", "direction", "start")
    expected = pl.DataFrame(
        [
            ("binance", "BTC", "deposit", at(10, 10), at(10, 12)),
            ("binance", "BTC", "deposit", at(10, 13), at(10, 15)),
            ("binance", "BTC", "deposit", at(11, 9), at(11, 9, 30)),
            ("binance", "BTC", "withdrawal", at(10, 10), at(10, 13)),
            ("coinbase", "SOL", "deposit", at(20, 23), None),
            ("kraken", "ETH", "deposit", at(12, 9), at(12, 10)),
            ("kraken", "ETH", "deposit", at(12, 20), at(12, 21)),
            ("kraken", "ETH", "withdrawal", at(12, 9), at(12, 10)),
            ("kraken", "ETH", "withdrawal", at(12, 20), at(12, 21)),
        ],
        schema=WINDOW_SCHEMA,
        orient="row",
    )
    assert got.equals(expected), got


def test_transfer_windows_of_nothing_is_empty_and_typed():
    got = transfer_windows(truth(("binance", "BTC", "listing", at(9, 12), None, "BTC-EUR")))
    assert got.height == 0 and got.schema == pl.Schema(WINDOW_SCHEMA)


def test_the_simulator_has_no_announcements_before_its_origin():
    with pytest.raises(ValueError, match="2026-01-01"):
        simulate_announcements(datetime(2025, 12, 31, tzinfo=UTC))
