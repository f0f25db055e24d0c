"""Feature drift: a stable window passes, a shifted or emptied feature is flagged by name."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from arbiter.platform.learning.drift import feature_drift, psi


def window(n: int, seed: int, shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "net_spread_bps": rng.exponential(40.0, n) + shift,
            "buy_age_ms": rng.exponential(100.0, n),
            "can_move_funds": np.ones(n),
        }
    )


def test_same_distribution_is_stable_and_a_shift_is_flagged():
    columns = ["net_spread_bps", "buy_age_ms", "can_move_funds"]
    stable = feature_drift(window(5_000, 0), window(2_000, 1), columns, threshold=0.25)
    assert stable.drifted == [] and stable.worst.psi < 0.05
    shifted = feature_drift(window(5_000, 0), window(2_000, 1, shift=30.0), columns, threshold=0.25)
    assert shifted.drifted == ["net_spread_bps"] and shifted.worst.feature == "net_spread_bps"
    assert shifted.table().get_column("feature")[0] == "net_spread_bps"
    assert shifted.features[0].ks > 0.2 and shifted.features[0].ks_pvalue < 1e-6


def test_a_feature_arriving_empty_drifts():
    train = window(1_000, 0)
    recent = window(1_000, 1).with_columns(buy_age_ms=pl.lit(None, pl.Float64))
    assert "buy_age_ms" in feature_drift(train, recent, ["buy_age_ms"], threshold=0.25).drifted


def test_psi_by_hand_and_errors():
    train = np.repeat(np.arange(10.0), 100)  # ten equal deciles
    assert psi(train, train) == pytest.approx(0.0)
    half = np.concatenate([np.zeros(500), np.full(500, 9.0)])  # all mass in the two outer bins
    assert psi(train, half) > 1.0
    with pytest.raises(ValueError, match="recent window has 10 rows"):
        feature_drift(window(100, 0), window(10, 1), ["buy_age_ms"], threshold=0.25)
    with pytest.raises(ValueError, match="no column 'nope'"):
        feature_drift(window(100, 0), window(100, 1), ["nope"], threshold=0.25)
