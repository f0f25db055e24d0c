"""Small PNG plots for materialisation metadata, where a person would rather look than read.

Rendered with matplotlib's Agg backend (no screen needed) at a size that keeps the event log
light; ``markdown_image`` embeds one in Markdown, which the Dagster UI shows inline.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

MAX_POINTS = 2_000  # per line: enough to see the shape, small enough to render in milliseconds


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def mid_by_market(quotes: pl.DataFrame, title: str) -> bytes:
    """Mid price per (venue, market) over time, one panel per symbol."""
    frame = quotes.filter(pl.col("bid").is_not_null() & pl.col("ask").is_not_null()).select(
        "ts", "venue", "market", "symbol", mid=(pl.col("bid") + pl.col("ask")) / 2
    )
    symbols = sorted(frame.get_column("symbol").unique().cast(pl.String).to_list())[:6]
    fig, axes = plt.subplots(len(symbols) or 1, 1, figsize=(7, 2.2 * max(1, len(symbols))), squeeze=False)
    for ax, symbol in zip(axes[:, 0], symbols, strict=False):
        one = frame.filter(pl.col("symbol") == symbol)
        for (venue, market), line in one.sort("ts").group_by(["venue", "market"], maintain_order=True):
            step = max(1, line.height // MAX_POINTS)
            ax.plot(line["ts"][::step].to_list(), line["mid"][::step].to_list(), lw=0.8, label=f"{venue} {market}")
        ax.set_title(symbol, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def counts_bar(counts: dict[str, int], title: str) -> bytes:
    """Horizontal bars, largest first (quarantine reasons, rows per table)."""
    items = sorted(counts.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6, 0.35 * max(3, len(items)) + 0.8))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#c0504d")
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:,}", va="center", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    return _png(fig)


def markdown_image(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
