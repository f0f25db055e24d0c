"""What venues do not publish in their public market data, as configuration: base-tier trading
fees per venue and market type, and withdrawal fees per venue and asset.

Kraken publishes its spot fee tiers (AssetPairs) and those are used instead. A fee that nobody
configured stays null in ``instruments``; it is never invented.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fees:
    maker: float
    taker: float


# Each venue's entry (lowest-volume) tier, as a fraction of notional.
FEES: dict[tuple[str, str], Fees] = {
    ("binance", "spot"): Fees(maker=0.001, taker=0.001),
    ("binance", "linear_perp"): Fees(maker=0.0002, taker=0.0005),
    ("coinbase", "spot"): Fees(maker=0.004, taker=0.006),
    ("kraken_futures", "linear_perp"): Fees(maker=0.0002, taker=0.0005),
    ("kraken_futures", "inverse_perp"): Fees(maker=0.0002, taker=0.0005),
}

# (venue, asset) -> withdrawal fee in units of the asset. Empty by default: these change often
# and per network, so they are configured by whoever trades, not guessed here.
WITHDRAW_FEES: dict[tuple[str, str], float] = {}


def fees(venue: str, market: str) -> Fees | None:
    return FEES.get((venue, market))
