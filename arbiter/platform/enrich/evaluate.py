"""How well an extractor reads announcements: event-type accuracy of each document's main event.

The labelled announcements carry one of four labels, coarser than the event types, and a label is
answered by any of several types: a network upgrade is announced with the suspension it causes,
and wallet maintenance is announced as maintenance or as the suspension it causes
(``LABEL_ANSWERS``). A document's main event is its most confident one; a document without any
event is a miss. The same function scores the offline rules and a language model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl

from arbiter.platform.enrich.events import SUSPENSIONS
from arbiter.platform.enrich.offline_extract import extract_frame

LABELLED_DIR = Path(__file__).parent / "labelled"
# The labelled sets every extractor is judged on: real Binance announcements, and announcements of
# the same kinds in other venues' styles that no rule was written against (name: file, venue).
LABELLED_SETS = {"binance_dev": ("binance_dev.jsonl", "binance"), "unseen": ("unseen.jsonl", "unknown")}

LABEL_ANSWERS: dict[str, frozenset[str]] = {
    "network_upgrade_suspension": frozenset({*SUSPENSIONS, "network_upgrade"}),
    "delisting": frozenset({"delisting"}),
    "listing": frozenset({"listing"}),
    "wallet_or_system_maintenance": frozenset({"maintenance", *SUSPENSIONS}),
}


def load_labelled(path: str | Path, venue: str = "unknown") -> pl.DataFrame:
    """A JSON-lines file of labelled announcements (``title``, ``body``, ``category``, optionally
    ``venue``) as ``documents`` columns plus ``category``; ``doc_id`` is the line number and
    ``source`` the line's venue, else ``venue``."""
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            record = json.loads(line)
            rows.append(
                {
                    "doc_id": f"{Path(path).name}:{number}",
                    "source": record.get("venue") or venue,
                    "title": record.get("title"),
                    "body": record["body"],
                    "category": record["category"],
                }
            )
    schema = {"doc_id": pl.String, "source": pl.String, "title": pl.String, "body": pl.String, "category": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


def main_events(events: pl.DataFrame) -> pl.DataFrame:
    """Each document's main event: its most confident one (on a tie, the lowest ``event_index``)."""
    ordered = events.sort(["doc_id", "confidence", "event_index"], descending=[False, True, False])
    return ordered.group_by("doc_id", maintain_order=True).first()


def evaluate(
    labelled: pl.DataFrame, extract: Callable[[pl.DataFrame], pl.DataFrame] = extract_frame
) -> dict[str, object]:
    """Accuracy of ``extract`` (``documents`` frame -> ``document_events`` frame) on ``labelled``
    (``documents`` columns plus ``category``): overall, per label, and the documents it missed.

    Raises ``ValueError`` for a label that is not one of ``LABEL_ANSWERS`` or a repeated ``doc_id``.
    """
    unknown = labelled.filter(~pl.col("category").is_in(list(LABEL_ANSWERS)))
    if unknown.height:
        row = unknown.row(0, named=True)
        raise ValueError(f"document {row['doc_id']!r}: unknown label {row['category']!r}")
    if labelled.get_column("doc_id").n_unique() != labelled.height:
        raise ValueError("labelled documents: doc_id is not unique")
    main = main_events(extract(labelled.drop("category"))).select("doc_id", predicted="event_type")
    answers = pl.DataFrame(
        [(label, kind, True) for label, kinds in LABEL_ANSWERS.items() for kind in sorted(kinds)],
        schema={"category": pl.String, "predicted": pl.String, "correct": pl.Boolean},
        orient="row",
    )
    scored = (
        labelled.join(main, on="doc_id", how="left", maintain_order="left")
        .join(answers, on=["category", "predicted"], how="left", maintain_order="left")
        .with_columns(pl.col("correct").fill_null(False))
    )
    by_label = {
        label: {"documents": group.height, "accuracy": round(group.get_column("correct").mean(), 4)}
        for (label,), group in scored.group_by("category", maintain_order=True)
    }
    misses = scored.filter(~pl.col("correct")).select("doc_id", "title", label="category", predicted="predicted")
    correct = int(scored.get_column("correct").sum())
    return {
        "accuracy": round(correct / scored.height, 4) if scored.height else None,
        "documents": scored.height,
        "correct": correct,
        "by_label": by_label,
        "misses": misses.to_dicts(),
    }


def labelled_sets() -> dict[str, pl.DataFrame]:
    """Every labelled set in ``LABELLED_SETS``, by name."""
    return {name: load_labelled(LABELLED_DIR / file, venue=venue) for name, (file, venue) in LABELLED_SETS.items()}


def labelled_accuracy(extract: Callable[[pl.DataFrame], pl.DataFrame]) -> dict[str, dict[str, object]]:
    """``evaluate`` of ``extract`` on every labelled set, by set name."""
    return {name: evaluate(labelled, extract) for name, labelled in labelled_sets().items()}
