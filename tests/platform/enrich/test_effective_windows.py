"""Effective windows as announcements state them, on cases written for this test: the formats
venues use, zones, windows with a start and an end, with a start only, and with none."""

import re
from datetime import UTC, datetime

import pytest

from arbiter.platform.enrich.offline_extract import extract
from arbiter.platform.enrich.stated_times import NS, stated_times


def _window(title: str, body: str, event_type: str) -> tuple[str | None, str | None]:
    """(start, end) of the first ``event_type`` event, as "YYYY-MM-DD HH:MM" in UTC."""
    event = next(e for e in extract("d", title, body, "venue") if e.event_type == event_type)
    return tuple(t and t.strftime("%Y-%m-%d %H:%M") for t in (event.effective_start, event.effective_end))


@pytest.mark.parametrize(
    ("title", "body", "event_type", "start", "end"),
    [
        (  # Binance: start, then a stated length
            "Wallet Maintenance for Tron (TRC20) - 2026-02-11",
            "Binance will perform wallet maintenance for Tron (TRC20) at 2026-02-11 07:00 (UTC). The maintenance "
            "will take about one hour.",
            "maintenance",
            "2026-02-11 07:00",
            "2026-02-11 08:00",
        ),
        (  # from ... to ..., both in Binance's format
            "Notice",
            "Deposits and withdrawals on Ethereum (ERC20) will be suspended from 2026-02-24 02:00 (UTC) to "
            "2026-02-24 04:30 (UTC).",
            "deposit_withdrawal_suspension",
            "2026-02-24 02:00",
            "2026-02-24 04:30",
        ),
        (  # a start only: "at ... (UTC)"
            "Binance Will List Example (EXM)",
            "Binance will list Example (EXM) and open trading for the EXM/USDT pair at 2025-12-16 03:00 (UTC).",
            "listing",
            "2025-12-16 03:00",
            None,
        ),
        (  # "approximately 1 hour"
            "Scheduled system maintenance",
            "Spot trading will be unavailable during scheduled maintenance starting at 2026-03-05 01:00 (UTC), "
            "lasting approximately 1 hour.",
            "maintenance",
            "2026-03-05 01:00",
            "2026-03-05 02:00",
        ),
        (  # a date only: "on 2026-03-12"
            "Binance Margin Will Delist ARDR on 2026-03-12",
            "Binance Margin will delist ARDR as a borrowable asset on 2026-03-12.",
            "delisting",
            "2026-03-12 00:00",
            None,
        ),
        (  # ISO 8601 with Z and with an offset
            "Network upgrade",
            "The Kava network upgrade starts at 2026-03-12T08:00:00Z. Deposits of KAVA are paused from "
            "2026-03-12T15:30:00+08:00 until 2026-03-12T18:00:00+08:00.",
            "deposit_suspension",
            "2026-03-12 07:30",
            "2026-03-12 10:00",
        ),
        (  # UTC+8: both times take the zone stated after the second
            "OKX system upgrade notice",
            "OKX will perform a system upgrade from 2026-03-21 07:00 to 2026-03-21 09:00 (UTC+8).",
            "maintenance",
            "2026-03-20 23:00",
            "2026-03-21 01:00",
        ),
        (  # OKX style: clock first, then the date
            "OKX to delist ZKJ spot trading pairs",
            "OKX will delist the ZKJ/USDT spot trading pair at 8:00 am UTC on Mar 18, 2026.",
            "delisting",
            "2026-03-18 08:00",
            None,
        ),
        (  # Kraken style: a date and a range of bare clocks
            "Scheduled maintenance: Cardano (ADA) funding gateway",
            "ADA deposits and withdrawals will be temporarily unavailable on 24 March 2026 between 10:00 and 12:00 "
            "UTC while we carry out scheduled maintenance.",
            "deposit_withdrawal_suspension",
            "2026-03-24 10:00",
            "2026-03-24 12:00",
        ),
        (  # Coinbase style: US Eastern time, daylight saving in force (EDT, UTC-4)
            "Coinbase will suspend trading for ARPA",
            "Coinbase will suspend trading for ARPA (ARPA) on March 25, 2026, on or around 4:00 PM ET.",
            "delisting",
            "2026-03-25 20:00",
            None,
        ),
        (  # Bybit style: an hour with AM/PM, and a stated end in the next sentence
            "SUI deposits paused",
            "Deposits of SUI on the Sui network have been paused since Mar 19, 2026, 6AM UTC. We expect deposits to "
            "resume by Mar 19, 2026, 9:30 AM UTC.",
            "deposit_suspension",
            "2026-03-19 06:00",
            "2026-03-19 09:30",
        ),
        (  # a completed maintenance states only when it ended
            "Binance Futures Temporary System Maintenance Complete",
            "Binance Futures has completed system maintenance and will resume all trading activity at "
            "2025-11-17 08:55 (UTC).",
            "maintenance",
            None,
            "2025-11-17 08:55",
        ),
        (  # no time stated at all
            "Wallet Maintenance for Entire Platform",
            "We are performing wallet maintenance. Withdrawals will reopen once the maintenance is complete.",
            "maintenance",
            None,
            None,
        ),
    ],
)
def test_effective_window(title, body, event_type, start, end):
    assert _window(title, body, event_type) == (start, end)


def _times(text: str) -> list[str]:
    starts = [0, *(m.end() for m in re.finditer(r"(?<=[.!?])\s+", text))]
    return [datetime.fromtimestamp(t.ns // NS, UTC).strftime("%Y-%m-%d %H:%M") for t in stated_times(text, starts)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Starts at 2025-09-01-13:00 (UTC).", ["2025-09-01 13:00"]),
        ("From 23:00 to 01:00 UTC on 2026-04-02.", ["2026-04-01 23:00", "2026-04-02 01:00"]),
        ("On 2026-04-01 from 23:00 to 01:00 (UTC+8).", ["2026-04-01 15:00", "2026-04-01 17:00"]),
        ("At 9AM PT on January 12, 2026.", ["2026-01-12 17:00"]),  # PST in winter
        ("At 14:00 (GMT-5) on 3 Feb 2026 and at 10:00 SGT on 2026-02-04.", ["2026-02-03 19:00", "2026-02-04 02:00"]),
        ("Version 1.6.4 at block 3,012,000, 24/7, on 2026-13-45 10:00 and March 12 at 10:00.", []),
    ],
)
def test_stated_times(text, expected):
    assert _times(text) == expected
