"""Plots of a walk-forward evaluation for materialisation metadata (PNG bytes, matplotlib Agg).

``cumulative_pnl``: each strategy's cumulative realised P&L over the pooled holdout, so a person
sees where a strategy earns or bleeds, not just the total. ``oracle_share_bars``: the share of the
oracle's P&L each strategy captured, per fold and pooled, so consistency across folds is visible.
Embed either with ``arbiter.platform.plots.markdown_image``.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from arbiter.platform.learning.metrics import Ledger
from arbiter.platform.learning.walk_forward import ORACLE, POOLED, STRATEGIES, Evaluation
from arbiter.platform.plots import MAX_POINTS, _png, markdown_image


def cumulative_pnl(ledgers: Mapping[str, Ledger], title: str = "pooled holdout: cumulative net P&L") -> bytes:
    """Cumulative P&L against decision time, one line per strategy (thinned to ``MAX_POINTS``)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for name, book in ledgers.items():
        if book.rows == 0:
            continue
        order = np.argsort(book.decision_ns, kind="stable")
        times = book.decision_ns[order].astype("datetime64[ns]")
        cumulative = np.cumsum(book.pnl[order])
        step = max(1, book.rows // MAX_POINTS)
        keep = np.unique(np.concatenate([np.arange(0, book.rows, step), [book.rows - 1]]))
        style = {"ls": "--", "color": "grey"} if name == ORACLE else {}
        ax.plot(times[keep], cumulative[keep], lw=1.0, label=name, **style)
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_ylabel("net P&L (quote)", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def oracle_share_bars(
    policy_evaluation: pl.DataFrame, window: str = "holdout", title: str = "share of oracle P&L captured"
) -> bytes:
    """Grouped bars: oracle_share per strategy (oracle itself left out: it is 1) per fold and pooled."""
    rows = policy_evaluation.filter(pl.col("window") == window)
    folds = sorted(set(rows["fold"].to_list()) - {POOLED}, key=int) + ([POOLED] if POOLED in rows["fold"] else [])
    strategies = [s for s in STRATEGIES if s != ORACLE and s in set(rows["strategy"].to_list())]
    width = 0.8 / max(1, len(strategies))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(folds))
    for i, strategy in enumerate(strategies):
        share = dict(rows.filter(pl.col("strategy") == strategy).select("fold", "oracle_share").iter_rows())
        heights = [share.get(f) if share.get(f) is not None else np.nan for f in folds]
        ax.bar(x + (i - (len(strategies) - 1) / 2) * width, heights, width, label=strategy)
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xticks(x, [f"fold {f}" if f != POOLED else POOLED for f in folds])
    ax.set_ylabel("oracle share", fontsize=8)
    ax.set_title(f"{title} ({window})", fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, ncol=3)
    return _png(fig)


def evaluation_markdown(evaluation: Evaluation) -> dict[str, str]:
    """Both plots of an evaluation as Markdown images, keyed for metadata."""
    return {
        "cumulative_pnl": markdown_image(cumulative_pnl(evaluation.holdout_ledgers), "cumulative P&L"),
        "oracle_share": markdown_image(oracle_share_bars(evaluation.policy_evaluation), "oracle share"),
    }
