"""The image classifier: trained with scikit-learn on labelled embeddings, run with onnxruntime.

A standardising logistic regression over the image embedding (``image_features.EMBEDDING_DIM``
floats): small, quick to train, calibrated enough for its probability to serve as the class score,
and converted exactly by skl2onnx. It is exported to ONNX because onnxruntime is the one runtime the
platform's inference uses (the live scorer runs its policy the same way), so no pickled
scikit-learn object ever has to be loaded from the lake. The ONNX model carries its classes, the
embedding's feature version and length in its metadata, so a model file alone is enough to run it,
and a model trained on another embedding version is refused instead of answering nonsense.

Training is deterministic (a fixed solver, no randomness), and so is the export: the same training
data gives byte-identical ONNX models and the same ``version``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import polars as pl
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from arbiter.platform.enrich.image_features import (
    EMBEDDING_DIM,
    FEATURE_VERSION,
    embedding_matrix,
    image_features,
    image_records,
)
from arbiter.platform.sources.listings_sim import simulate_listings

INPUT = "embedding"
# Regularisation: measured on held-out source photos (``image_evaluate``), C from 0.1 to 1 differ
# by about a point of accuracy; balanced weights keep the rare classes (documents) from vanishing.
C = 1.0
MAX_ITER = 5000
TARGET_OPSET = 17


class ClassifierMismatch(ValueError):
    """A model was trained on another embedding (version or length) than this code computes."""


def train_classifier(embeddings: np.ndarray, labels: Sequence[str]) -> Pipeline:
    """A fitted scikit-learn pipeline (standardise, then logistic regression) predicting ``labels``.

    Raises ``ValueError`` when the embeddings are not ``EMBEDDING_DIM`` wide, lengths differ, or
    fewer than two classes are given."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[1] != EMBEDDING_DIM:
        raise ValueError(f"embeddings: expected shape (n, {EMBEDDING_DIM}), got {embeddings.shape}")
    if len(labels) != len(embeddings):
        raise ValueError(f"{len(labels)} labels for {len(embeddings)} embeddings")
    if len(set(labels)) < 2:
        raise ValueError(f"need at least two classes to train, got {sorted(set(labels))}")
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=C, max_iter=MAX_ITER, class_weight="balanced")),
        ]
    )
    return model.fit(embeddings, np.asarray(labels, dtype=object))


def export_onnx(model: Pipeline) -> bytes:
    """``model`` as ONNX bytes: input ``embedding`` (float32, n x EMBEDDING_DIM), outputs ``label``
    and ``probabilities`` (n x classes, in ``classes`` order); metadata names the classes and the
    embedding it was trained on."""
    onnx_model = convert_sklearn(
        model,
        name="image_classifier",
        initial_types=[(INPUT, FloatTensorType([None, EMBEDDING_DIM]))],
        options={id(model.named_steps["classify"]): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    classes = [str(c) for c in model.named_steps["classify"].classes_]
    metadata = {"classes": json.dumps(classes), "feature_version": FEATURE_VERSION, "embedding_dim": str(EMBEDDING_DIM)}
    onnx.helper.set_model_props(onnx_model, metadata)
    return onnx_model.SerializeToString()


class OnnxClassifier:
    """An exported image classifier, run with onnxruntime on one thread (predictable latency,
    and the cores are left to feature extraction).

    ``version`` identifies the exact model (a hash of its bytes), for lineage in ``image_features``.
    Raises ``ClassifierMismatch`` for a model of another embedding and ``ValueError`` for bytes that
    are no such model."""

    def __init__(self, model: bytes | str | Path):
        self.model_bytes = model if isinstance(model, bytes) else Path(model).read_bytes()
        try:
            proto = onnx.load_from_string(self.model_bytes)
        except Exception as exc:  # protobuf raises its own DecodeError, among others
            raise ValueError(f"image classifier: not an ONNX model ({exc})") from exc
        metadata = {p.key: p.value for p in proto.metadata_props}
        if "classes" not in metadata:
            raise ValueError("image classifier: the ONNX model names no classes (not made by export_onnx)")
        if metadata.get("feature_version") != FEATURE_VERSION or metadata.get("embedding_dim") != str(EMBEDDING_DIM):
            raise ClassifierMismatch(
                f"image classifier trained on embedding {metadata.get('feature_version')!r} "
                f"({metadata.get('embedding_dim')} dims); this code computes {FEATURE_VERSION!r} ({EMBEDDING_DIM} dims)"
            )
        self.classes: list[str] = json.loads(metadata["classes"])
        self.version = "imgcls-" + hashlib.sha256(self.model_bytes).hexdigest()[:12]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(self.model_bytes, options, providers=["CPUExecutionProvider"])

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per embedding, columns in ``classes`` order."""
        batch = np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        return self._session.run(["probabilities"], {INPUT: batch})[0]

    def predict(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The most probable class of each embedding and its probability."""
        probabilities = self.predict_proba(embeddings)
        best = probabilities.argmax(axis=1)
        return [self.classes[i] for i in best], probabilities[np.arange(len(best)), best].astype(np.float64)

    def save(self, path: str | Path) -> Path:
        """Write the ONNX model to ``path`` (for outside tools; the lake keeps the bytes)."""
        Path(path).write_bytes(self.model_bytes)
        return Path(path)


def labelled_embeddings(
    features: pl.DataFrame, truth: pl.DataFrame, label: str = "category"
) -> tuple[np.ndarray, list[str]]:
    """The embeddings of ``features`` and their ``label`` from ``truth`` (joined on venue and
    listing_id; listings without a truth row are left out)."""
    joined = features.select("venue", "listing_id", "embedding").join(
        truth.select("venue", "listing_id", label), on=["venue", "listing_id"], how="inner", maintain_order="left"
    )
    return embedding_matrix(joined), joined.get_column(label).to_list()


def train_onnx_classifier(features: pl.DataFrame, truth: pl.DataFrame, label: str = "category") -> OnnxClassifier:
    """Train on the labelled listings (``labelled_embeddings``), export, and load for onnxruntime."""
    embeddings, labels = labelled_embeddings(features, truth, label)
    return OnnxClassifier(export_onnx(train_classifier(embeddings, labels)))


def train_on_simulator(seed: int = 0) -> OnnxClassifier:
    """The classifier trained on every listing of the listings simulator (``simulate_listings(seed)``,
    categories as labels): the embedded default, which needs no data but the bundled photographs."""
    simulated = simulate_listings(seed)
    features, _ = image_features(image_records(simulated.listings, simulated.images))
    return train_onnx_classifier(features, simulated.truth)
