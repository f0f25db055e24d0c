"""Trained models in the lake (the contract's ``models`` table), one partition per version.

A model is stored as its artifact's bytes (ONNX) with what it was trained on and how it scored,
under ``models/name=<name>/version=<version>``; the version is a hash of the bytes, so the same
model trained twice is one version and a row's version names exactly what produced it. The
newest version of a name is the one in use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from arbiter.platform.lake import Lake

TABLE = "models"


@dataclass(frozen=True)
class StoredModel:
    name: str
    version: str
    trained_at: datetime
    artifact: bytes
    trained_on: dict
    metrics: dict


def version_of(artifact: bytes) -> str:
    return hashlib.sha256(artifact).hexdigest()[:12]


def save(lake: Lake, name: str, artifact: bytes, *, trained_on: dict, metrics: dict) -> StoredModel:
    """Store ``artifact`` as a version of model ``name`` (replacing the same bytes stored before)."""
    model = StoredModel(name, version_of(artifact), datetime.now(UTC), artifact, trained_on, metrics)
    row = {
        "name": name,
        "version": model.version,
        "trained_at": model.trained_at,
        "format": "onnx",
        "artifact": artifact,
        "trained_on": json.dumps(trained_on, sort_keys=True, default=str),
        "metrics": json.dumps(metrics, sort_keys=True, default=str),
    }
    frame = pl.DataFrame([row]).with_columns(pl.col("trained_at").cast(pl.Datetime("ns", "UTC")))
    lake.write(TABLE, frame, {"name": name, "version": model.version})
    return model


def latest(lake: Lake, name: str) -> StoredModel | None:
    """The newest stored version of ``name``, or None when none is stored."""
    versions = [p for p in lake.partitions(TABLE) if p.get("name") == name]
    if not versions:
        return None
    rows = lake.read(TABLE, versions).sort("trained_at").row(-1, named=True)
    return StoredModel(
        name,
        rows["version"],
        rows["trained_at"],
        rows["artifact"],
        json.loads(rows["trained_on"]),
        json.loads(rows["metrics"]),
    )
