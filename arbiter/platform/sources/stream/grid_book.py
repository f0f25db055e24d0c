"""Order books for replaying a whole recorded capture, one compiled loop per run of diffs.

In a capture every diff is known before the replay starts, so each price can be given its rank on
the capture's price grid up front (``GridDiffs``), and a book side becomes an array of sizes
indexed by rank (``GridBook``). Applying a run of diffs that follow each other is then one call
into a loop compiled by numba, which records the best bid and ask (rank and size) after every
diff: no Python step per level or per diff. Binance's 0 ms depth stream carries about 80 levels
per message (530k levels in the USD-M sample); the per-diff Python replay took about 12 µs a diff.

The venue's rules (which diff follows which, when to resync) stay with the handler; the book only
applies levels. A test holds ``GridBook`` equal to ``OrderBook`` on random diffs.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from arbiter.platform.sources.stream.books import NegativeSize, Top


class GridDiffs:
    """Every diff of one market in a capture, as flat arrays over the market's sorted price grid.

    ``bid_rank``/``bid_size`` (and the ask twins) hold each level's grid rank and size, diff
    after diff; ``bid_offsets[k]:bid_offsets[k + 1]`` are diff ``k``'s levels. Snapshots are
    diffs too (a ``GridBook.load_snapshot`` clears first), so one set of arrays serves both.
    """

    def __init__(
        self,
        grid: np.ndarray,
        bid_rank: np.ndarray,
        bid_size: np.ndarray,
        bid_offsets: np.ndarray,
        ask_rank: np.ndarray,
        ask_size: np.ndarray,
        ask_offsets: np.ndarray,
    ):
        if np.any(bid_size < 0) or np.any(ask_size < 0):
            raise NegativeSize("a level with a negative size")
        self.grid = grid
        self.bid_rank, self.bid_size, self.bid_offsets = bid_rank, bid_size, bid_offsets
        self.ask_rank, self.ask_size, self.ask_offsets = ask_rank, ask_size, ask_offsets

    @classmethod
    def build(
        cls,
        bid_prices: np.ndarray,
        bid_sizes: np.ndarray,
        bid_counts: np.ndarray,
        ask_prices: np.ndarray,
        ask_sizes: np.ndarray,
        ask_counts: np.ndarray,
        decimals: int | None = None,
    ) -> GridDiffs:
        """From each diff's level count and the levels' prices and sizes, diff after diff.

        With ``decimals`` (the venue's price decimals) the grid is every tick around the market
        (ranks are tick offsets: no sort of every level); without, or when the prices are not on
        that tick or spread too widely, the grid is the sorted distinct prices.
        """
        prices = np.concatenate([bid_prices, ask_prices])
        grid, ranks = _tick_grid(prices, decimals) if decimals is not None else (None, None)
        if grid is None:
            grid, ranks = np.unique(prices, return_inverse=True)
        split = len(bid_prices)

        def offsets(counts: np.ndarray) -> np.ndarray:
            return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

        return cls(
            grid,
            ranks[:split].astype(np.int64),
            np.asarray(bid_sizes, dtype=np.float64),
            offsets(bid_counts),
            ranks[split:].astype(np.int64),
            np.asarray(ask_sizes, dtype=np.float64),
            offsets(ask_counts),
        )

    def __len__(self) -> int:
        return len(self.bid_offsets) - 1


MAX_TICK_GRID = 262_144  # ticks in the dense part of a grid (2 MB per book side)
MAX_OUTLIERS = 0.05  # share of levels that may lie beyond it before the sorted-distinct grid is used


def _tick_grid(prices: np.ndarray, decimals: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(grid, ranks) over every tick within ``MAX_TICK_GRID`` of the median price, plus the
    distinct prices beyond (resting orders far from the market), without sorting every level.
    (None, None) when a price is not a whole number of ticks or too many lie beyond."""
    if not len(prices):
        return None, None
    scale = 10.0**decimals
    ticks = np.rint(prices * scale)
    if not np.array_equal(ticks / scale, prices) or ticks.max() > 2**53:
        return None, None
    ticks = ticks.astype(np.int64)
    low = int(ticks.min())
    # Venues pad prices past their tick (USD-M BTC: 0.10 written "61800.20"): step by the tick.
    step = max(int(np.gcd.reduce(ticks - low)), 1)
    steps = (ticks - low) // step
    start = max(0, int(np.median(steps)) - MAX_TICK_GRID // 2)
    stop = min(start + MAX_TICK_GRID, int(steps.max()) + 1)
    below, above = steps < start, steps >= stop
    if below.sum() + above.sum() > MAX_OUTLIERS * len(steps):
        return None, None
    inside = steps[~(below | above)]
    start, stop = int(inside.min()), int(inside.max()) + 1  # no wider than the prices in it
    far_below, far_above = np.unique(steps[below]), np.unique(steps[above])
    ranks = steps - start + len(far_below)
    ranks[below] = np.searchsorted(far_below, steps[below])
    ranks[above] = len(far_below) + (stop - start) + np.searchsorted(far_above, steps[above])
    grid_steps = np.concatenate([far_below, np.arange(start, stop), far_above])
    return (low + grid_steps * step) / scale, ranks


class Tops(NamedTuple):
    """The best bid and ask after each diff of a run: grid ranks (-1, or the grid's length, when a
    side is empty) and the sizes there (0.0 when empty)."""

    bid_rank: np.ndarray
    bid_size: np.ndarray
    ask_rank: np.ndarray
    ask_size: np.ndarray

    def __len__(self) -> int:
        return len(self.bid_rank)


class GridBook:
    """An ``OrderBook`` equivalent for replay: diffs are indices into a ``GridDiffs``."""

    def __init__(self, diffs: GridDiffs):
        self.diffs = diffs
        n = len(diffs.grid)
        self._bids = np.zeros(n)
        self._asks = np.zeros(n)
        self._best = np.array([-1, n], dtype=np.int64)  # best bid and ask ranks; -1 and n: none

    def load_snapshot(self, k: int) -> None:
        self._bids[:] = 0.0
        self._asks[:] = 0.0
        self._best[:] = (-1, len(self.diffs.grid))
        self.apply_diff(k)

    def apply_diff(self, k: int) -> None:
        self.apply_run(k, k + 1)

    def apply_run(self, start: int, stop: int) -> Tops:
        """Apply diffs ``start`` to ``stop - 1``, stopping after the first that crosses the book;
        the result's length says how many were applied."""
        d, n = self.diffs, max(stop - start, 0)
        tops = Tops(np.empty(n, np.int64), np.empty(n), np.empty(n, np.int64), np.empty(n))
        applied = _apply_run(
            self._bids,
            self._asks,
            self._best,
            d.bid_rank,
            d.bid_size,
            d.bid_offsets,
            d.ask_rank,
            d.ask_size,
            d.ask_offsets,
            start,
            stop,
            *tops,
        )
        return Tops(*(column[:applied] for column in tops))

    def best(self) -> tuple[int, float, int, float]:
        """The best bid and ask now, as one entry of ``Tops``: rank, size, rank, size."""
        b, a = int(self._best[0]), int(self._best[1])
        return b, self._bids[b] if b >= 0 else 0.0, a, self._asks[a] if a < len(self._asks) else 0.0

    def top(self) -> Top:
        grid = self.diffs.grid
        b, a = int(self._best[0]), int(self._best[1])
        has_bid, has_ask = b >= 0, a < len(grid)
        return Top(
            float(grid[b]) if has_bid else None,
            float(self._bids[b]) if has_bid else None,
            float(grid[a]) if has_ask else None,
            float(self._asks[a]) if has_ask else None,
        )


@numba.njit(cache=True, nogil=True)
def _apply_run(
    bids,
    asks,
    best,
    bid_rank,
    bid_size,
    bid_offsets,
    ask_rank,
    ask_size,
    ask_offsets,
    start,
    stop,
    out_bid,
    out_bid_size,
    out_ask,
    out_ask_size,
):
    """Apply diffs ``start:stop`` to the size arrays, keeping the best ranks in ``best``; after each
    diff, its best bid and ask ranks and sizes go to the ``out_`` arrays. Returns the diffs applied:
    it stops after one that leaves the best bid at or above the best ask (the grid is sorted by
    price)."""
    n = len(asks)
    best_bid, best_ask = best[0], best[1]
    applied = 0
    for k in range(start, stop):
        for i in range(bid_offsets[k], bid_offsets[k + 1]):
            rank = bid_rank[i]
            bids[rank] = bid_size[i]
            if bid_size[i] > 0.0 and rank > best_bid:
                best_bid = rank
        while best_bid >= 0 and bids[best_bid] == 0.0:  # emptied (or set and then removed): look lower
            best_bid -= 1
        for i in range(ask_offsets[k], ask_offsets[k + 1]):
            rank = ask_rank[i]
            asks[rank] = ask_size[i]
            if ask_size[i] > 0.0 and rank < best_ask:
                best_ask = rank
        while best_ask < n and asks[best_ask] == 0.0:
            best_ask += 1
        out_bid[applied] = best_bid
        out_bid_size[applied] = bids[best_bid] if best_bid >= 0 else 0.0
        out_ask[applied] = best_ask
        out_ask_size[applied] = asks[best_ask] if best_ask < n else 0.0
        applied += 1
        if best_bid >= 0 and best_ask < n and best_bid >= best_ask:
            break
    best[0], best[1] = best_bid, best_ask
    return applied
