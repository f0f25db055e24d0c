"""Figures for enrichment: the offline extractor over 10,000 announcements and its quality, and the
configured language model's quality on the same labelled sets."""

from __future__ import annotations

import re
import statistics
import time
from datetime import date, timedelta

import polars as pl

from arbiter.platform.enrich.evaluate import evaluate, labelled_sets
from arbiter.platform.enrich.model_extract import model_accuracy
from arbiter.platform.enrich.offline_extract import extract_frame

REPEATS = 5
DOCUMENTS = 10_000
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})")




def _corpus(labelled: list[pl.DataFrame], n: int) -> pl.DataFrame:
    """``n`` documents: the labelled announcements over and over, each copy's ISO dates moved by
    its copy number in days, so no two documents are the same text."""
    samples = pl.concat([frame.drop("category") for frame in labelled]).rows(named=True)
    rows = []
    for i in range(n):
        sample, days = samples[i % len(samples)], timedelta(days=i // len(samples))

        def shift(m: re.Match, days: timedelta = days) -> str:
            try:
                return (date(int(m[1]), int(m[2]), int(m[3])) + days).isoformat()
            except ValueError:
                return m[0]

        title = _ISO_DATE.sub(shift, sample["title"] or "")
        rows.append({**sample, "doc_id": f"bench-{i}", "title": title, "body": _ISO_DATE.sub(shift, sample["body"])})
    return pl.DataFrame(rows)


def extract_offline_docs_per_s() -> dict:
    """``extract_frame`` (the offline rules) over 10,000 documents, to a ``document_events`` frame;
    details: the event-type accuracy of the main event on both labelled sets."""
    labelled = labelled_sets()
    documents = _corpus(list(labelled.values()), DOCUMENTS)
    times, events = [], 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        events = extract_frame(documents).height
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    quality = {name: evaluate(frame) for name, frame in labelled.items()}
    return {
        "value": round(DOCUMENTS / seconds),
        "unit": "docs/s",
        "documents": DOCUMENTS,
        "events": events,
        "median_s": round(seconds, 3),
        "target_s": 10.0,
        "repeats": REPEATS,
        **{f"accuracy_{name}": q["accuracy"] for name, q in quality.items()},
        **{f"documents_{name}": q["documents"] for name, q in quality.items()},
    }


def extract_model_accuracy() -> dict:
    """The configured language model's event-type accuracy of the main event on both labelled sets
    (``model_extract.model_accuracy``: every document sent, no cache), with its calls, tokens and
    cost; no value when no endpoint is configured."""
    figures = model_accuracy()
    if figures is None:
        return {"value": None, "unit": "fraction", "note": "no endpoint configured: set OPENAI_BASE_URL/OPENAI_API_KEY"}
    misses = figures.pop("misses")
    return {
        "value": min(figures["accuracy_binance_dev"], figures["accuracy_unseen"]),
        "unit": "fraction",
        **figures,
        "misses": {name: len(m) for name, m in misses.items()},
    }
