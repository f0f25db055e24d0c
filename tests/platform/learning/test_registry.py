"""The policy registry and the champion's history, in a real local lake read back by DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from arbiter.platform.lake import Lake
from arbiter.platform.learning import registry
from arbiter.platform.sql import connect

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def policy(onnx: bytes, role: str = "challenger") -> registry.PolicyRecord:
    return registry.PolicyRecord(
        onnx=onnx,
        training_run="run-1",
        role=role,
        fold=3,
        seed=0,
        algorithm="ppo",
        feature_spec=["net_spread_bps", "buy_age_ms"],
        normalisation={"mean": [1.0, 2.0], "scale": [1.0, 1.0]},
        execution={"notional": 10_000.0, "sizes": [0.5, 1.0]},
        hyperparameters={"learning_rate": 0.001},
        train_start=T0,
        train_end=T0 + timedelta(hours=3),
        holdout_start=T0 + timedelta(hours=3, minutes=1),
        holdout_end=T0 + timedelta(hours=4),
        training_partitions=["date=2026-01-01/hour=00"],
        code_version="abc",
        metrics={"steps_per_s": 9000.0},
    )


def test_a_policy_round_trips_with_its_onnx_beside_it(tmp_path):
    lake = Lake(str(tmp_path))
    stored = policy(b"onnx-bytes-1")
    version = registry.save_policy(lake, stored)
    back = registry.load_policy(lake, version)
    assert back.onnx == b"onnx-bytes-1" and back.feature_spec == stored.feature_spec
    assert back.normalisation == stored.normalisation and back.holdout_end == stored.holdout_end
    assert (tmp_path / "policies" / f"version={version}" / "policy.onnx").read_bytes() == b"onnx-bytes-1"
    con = connect(lake)  # the history is a table like every other, and the .onnx is not read as one
    assert con.execute("select version, role, algorithm from policies").fetchall() == [(version, "challenger", "ppo")]
    with pytest.raises(registry.RegistryError, match="not in the registry"):
        registry.load_policy(lake, "nope")


def test_promotions_and_rollbacks_walk_the_history(tmp_path):
    lake = Lake(str(tmp_path))
    assert registry.champion(lake) is None
    with pytest.raises(registry.RegistryError, match="no champion"):
        registry.rollback(lake, "test")
    a, b, c = (registry.save_policy(lake, policy(bytes([i]) * 8)) for i in range(3))
    registry.record(lake, registry.Decision("first", a, a, None, "first policy", decided_at=T0))
    registry.record(lake, registry.Decision("promote", b, b, a, "beat a", decided_at=T0 + timedelta(hours=1)))
    registry.record(lake, registry.Decision("keep", b, c, None, "c lost", decided_at=T0 + timedelta(hours=2)))
    assert registry.champion(lake) == b
    back = registry.rollback(lake, "b misbehaves")
    assert (back.action, back.champion_version, back.previous_version) == ("rollback", a, b)
    assert registry.champion(lake) == a
    with pytest.raises(registry.RegistryError, match="no predecessor"):
        registry.rollback(lake, "again")  # a was the first champion
    assert registry.history(lake).get_column("action").to_list() == ["first", "promote", "keep", "rollback"]
