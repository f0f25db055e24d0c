"""Benchmarks: the measured figures. Each figure prints one JSON object per line on stdout:
``{"figure": NAME, "value": x, "unit": "...", ...details}``. Names are fixed and listed with
their units in benchmarks/README.md. Progress goes to stderr. Figures are medians of repeats.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable

from benchmarks import (
    capture_figures,
    cluster_figures,
    enrich_figures,
    image_figures,
    lake_figures,
    learning_figures,
    rest_soak,
)

# name -> function returning that figure's record (value, unit, details)
FIGURES: dict[str, Callable[[], dict]] = {
    "normalise_simulator_rows_per_s": lake_figures.normalise_simulator_rows_per_s,
    "lake_write_rows_per_s": lake_figures.lake_write_rows_per_s,
    "lake_read_rows_per_s": lake_figures.lake_read_rows_per_s,
    "duckdb_quantiles_10m_s": lake_figures.duckdb_quantiles_10m_s,
    "normalise_capture_msgs_per_s": capture_figures.normalise_capture_msgs_per_s,
    "rest_soak": rest_soak.rest_soak,
    "extract_offline_docs_per_s": enrich_figures.extract_offline_docs_per_s,
    "hdbscan_50k_s": cluster_figures.hdbscan_50k_s,
    "promap_f1": cluster_figures.promap_f1,
    "unseen_f1": cluster_figures.unseen_f1,
    "extract_model_accuracy": enrich_figures.extract_model_accuracy,
    "image_features_per_s": image_figures.image_features_per_s,
    "image_holdout_accuracy": image_figures.image_holdout_accuracy,
    "image_near_duplicate_f1": image_figures.image_near_duplicate_f1,
    "rl_train_steps_per_s": learning_figures.rl_train_steps_per_s,
    "policy_eval_1m_decisions_s": learning_figures.policy_eval_1m_decisions_s,
}


def run_figures(only: Iterable[str] | None = None) -> None:
    names = list(only) if only else list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(FIGURES)}")
    try:
        for name in names:
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            print(json.dumps({"figure": name, **FIGURES[name]()}), flush=True)
    finally:
        lake_figures.cleanup()
