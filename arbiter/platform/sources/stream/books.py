"""Order books rebuilt from a snapshot plus diffs, and the top of book they yield.

``OrderBook`` is the book every venue handler keeps, live or in replay: a dict of price -> size
per side for O(1) updates, plus the side's prices in a sorted list (``bisect``), so the best level
and the best N (Kraken's checksum) are read without sorting. The venue rules — which diff follows
which, when to resync — live with the venue handlers; the book only applies levels.

``grid_book.GridBook`` is the same book for replaying a whole capture at once.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from typing import NamedTuple


class Top(NamedTuple):
    """Best bid and ask with their sizes; a side with no levels is None."""

    bid: float | None
    bid_size: float | None
    ask: float | None
    ask_size: float | None

    def crossed(self) -> bool:
        return self.bid is not None and self.ask is not None and self.bid >= self.ask


EMPTY_TOP = Top(None, None, None, None)
Levels = Iterable[tuple[float, float]]


class NegativeSize(ValueError):
    """A level with a negative size: the diff is malformed."""


class OrderBook:
    """Price levels per side; a level with size 0 is removed (every venue here means that by 0)."""

    __slots__ = ("_ask_prices", "_bid_prices", "asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self._bid_prices: list[float] = []  # ascending: the best bid is last
        self._ask_prices: list[float] = []  # ascending: the best ask is first

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()

    def load(self, bids: Levels, asks: Levels) -> None:
        """Replace the whole book with a snapshot's levels."""
        self.clear()
        self.apply(bids, asks)

    def apply(self, bids: Levels, asks: Levels) -> None:
        """Apply a diff's levels. Raises ``NegativeSize`` (the book is then partly updated: resync)."""
        _apply_side(self.bids, self._bid_prices, bids)
        _apply_side(self.asks, self._ask_prices, asks)

    def apply_diff(self, diff: tuple[Levels, Levels]) -> None:
        self.apply(*diff)

    def load_snapshot(self, snapshot: tuple[Levels, Levels]) -> None:
        self.load(*snapshot)

    def set_level(self, is_bid: bool, price: float, size: float) -> None:
        if is_bid:
            _apply_side(self.bids, self._bid_prices, ((price, size),))
        else:
            _apply_side(self.asks, self._ask_prices, ((price, size),))

    def top(self) -> Top:
        bid = self._bid_prices[-1] if self._bid_prices else None
        ask = self._ask_prices[0] if self._ask_prices else None
        return Top(
            bid,
            None if bid is None else self.bids[bid],
            ask,
            None if ask is None else self.asks[ask],
        )

    def best_bids(self, n: int) -> list[float]:
        """The ``n`` best bid prices, best first."""
        return self._bid_prices[: -n - 1 : -1] if n else []

    def best_asks(self, n: int) -> list[float]:
        return self._ask_prices[:n]

    def truncate(self, depth: int) -> tuple[list[float], list[float]]:
        """Keep the ``depth`` best levels per side (a venue that publishes a fixed depth drops the
        rest without telling); returns the prices dropped from the bid and ask sides."""
        dropped_bids = self._bid_prices[: max(0, len(self._bid_prices) - depth)]
        dropped_asks = self._ask_prices[depth:]
        for price in dropped_bids:
            del self.bids[price]
        for price in dropped_asks:
            del self.asks[price]
        del self._bid_prices[: len(dropped_bids)]
        del self._ask_prices[depth:]
        return dropped_bids, dropped_asks

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)


def _apply_side(levels: dict[float, float], prices: list[float], updates: Levels) -> None:
    for price, size in updates:
        if size > 0.0:
            if price not in levels:
                insort(prices, price)
            levels[price] = size
        elif size == 0.0:
            if levels.pop(price, None) is not None:
                del prices[bisect_left(prices, price)]
        else:
            raise NegativeSize(f"size {size} at price {price}")
