"""The trained actor as ONNX, and scoring with onnxruntime.

``export_onnx`` writes one graph from RAW features to action scores: input ``features`` (float32,
batch x features, in ``feature_columns`` order, NaN for null), the normaliser inside the graph
(NaN -> the training mean, standardise, clip), then the actor: for PPO the policy network and its
action head (output: action logits), for DQN the q-network (output: q-values); output ``scores``
(batch x actions), the batch axis dynamic. The normaliser travels inside the model, so no scorer can
normalise differently from training. Metadata names the feature columns, the algorithm, the score
kind, the sizes of the actions and the normaliser, so the model is self-describing in the registry.

``PolicyScorer`` runs such bytes with onnxruntime in fixed-size chunks (batched: one session call per
chunk, not per row). ``torch_scores`` / ``onnx_parity`` compare the graph with the SB3 policy itself
(numpy normalisation, then the SB3 modules) on the same rows.

The exporter is torch's TorchScript-based one (``dynamo=False``): the dynamo exporter needs
onnxscript, which is not installed, and these small MLPs need nothing newer.
"""

from __future__ import annotations

import copy
import io
import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
from stable_baselines3 import PPO
from torch import nn

from arbiter.platform.learning.data import Normaliser
from arbiter.platform.learning.train import TrainedPolicy

INPUT = "features"
OUTPUT = "scores"
OPSET = 17
CHUNK_ROWS = 65_536  # rows per onnxruntime call: large enough to amortise the call, small enough for cache/memory


class _RawFeatureActor(nn.Module):
    """Raw features -> normalised (as ``Normaliser.apply``) -> the actor's scores."""

    def __init__(self, normaliser: Normaliser, actor: nn.Module):
        super().__init__()
        self.register_buffer("mean", torch.tensor(normaliser.mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(normaliser.std, dtype=torch.float32))
        self.clip = float(normaliser.clip)
        self.actor = actor

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        filled = torch.where(torch.isnan(features), self.mean, features)
        z = torch.clamp((filled - self.mean) / self.std, -self.clip, self.clip)
        return self.actor(z)


def _actor(trained: TrainedPolicy) -> nn.Module:
    """A copy of the scoring part of the SB3 policy, on CPU, in eval mode."""
    policy = trained.model.policy
    if isinstance(trained.model, PPO):
        # PPO's features extractor is a flatten (identity on batch x features)
        actor = nn.Sequential(policy.mlp_extractor.policy_net, policy.action_net)
    else:
        actor = policy.q_net.q_net
    return copy.deepcopy(actor).cpu().eval()


def score_kind(trained: TrainedPolicy) -> str:
    return "logits" if isinstance(trained.model, PPO) else "q_values"


def export_onnx(trained: TrainedPolicy) -> bytes:
    """The actor with its normaliser as ONNX bytes (see the module docstring)."""
    module = _RawFeatureActor(trained.normaliser, _actor(trained)).eval()
    example = torch.zeros((2, len(trained.feature_columns)), dtype=torch.float32)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(
        model,
        {
            "feature_columns": json.dumps(list(trained.feature_columns)),
            "algorithm": trained.config.algorithm,
            "score_kind": score_kind(trained),
            "sizes": json.dumps(list(trained.execution.sizes)),
            "normaliser": json.dumps(trained.normaliser.to_dict()),
        },
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


class PolicyScorer:
    """An exported policy run with onnxruntime (``intra_op_threads`` threads, default 1).

    ``scores`` are the actor's outputs (PPO logits or DQN q-values), ``actions`` their argmax (0 skip,
    k: take at ``sizes[k-1]``), ``confidence`` the largest softmax probability. For PPO that is the
    policy's probability of its chosen action; for DQN it is a softmax over q-values (in bps of full
    notional), a relative measure of how clearly one action wins, not a calibrated probability."""

    def __init__(self, onnx_bytes: bytes, intra_op_threads: int = 1, chunk_rows: int = CHUNK_ROWS):
        try:
            proto = onnx.load_from_string(onnx_bytes)
        except Exception as exc:  # protobuf raises its own DecodeError, among others
            raise ValueError(f"policy: not an ONNX model ({exc})") from exc
        metadata = {p.key: p.value for p in proto.metadata_props}
        if "feature_columns" not in metadata:
            raise ValueError("policy: the ONNX model names no feature columns (not made by export_onnx)")
        self.feature_columns: tuple[str, ...] = tuple(json.loads(metadata["feature_columns"]))
        self.algorithm = metadata.get("algorithm", "")
        self.score_kind = metadata.get("score_kind", "")
        self.sizes: tuple[float, ...] = tuple(json.loads(metadata.get("sizes", "[]")))
        self.chunk_rows = int(chunk_rows)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(intra_op_threads)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])

    def scores(self, features: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_columns):
            raise ValueError(
                f"policy: expects (rows, {len(self.feature_columns)}) features "
                f"({', '.join(self.feature_columns)}), got shape {x.shape}"
            )
        if x.shape[0] <= self.chunk_rows:
            return self._session.run([OUTPUT], {INPUT: x})[0]
        return np.concatenate(
            [
                self._session.run([OUTPUT], {INPUT: x[s : s + self.chunk_rows]})[0]
                for s in range(0, len(x), self.chunk_rows)
            ]
        )

    def actions(self, features: np.ndarray) -> np.ndarray:
        return self.scores(features).argmax(axis=1).astype(np.int64)

    def confidence(self, features: np.ndarray) -> np.ndarray:
        scores = self.scores(features).astype(np.float64)
        exp = np.exp(scores - scores.max(axis=1, keepdims=True))
        return (exp.max(axis=1) / exp.sum(axis=1)).astype(np.float32)


def torch_scores(trained: TrainedPolicy, features: np.ndarray) -> np.ndarray:
    """The same scores through torch and the SB3 policy itself (numpy normalisation)."""
    return trained.scores(features)


def onnx_parity(trained: TrainedPolicy, onnx_bytes: bytes, features: np.ndarray) -> float:
    """Largest absolute difference between onnxruntime and torch scores on ``features``."""
    ours = PolicyScorer(onnx_bytes).scores(features)
    theirs = torch_scores(trained, features)
    return float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)))) if len(ours) else 0.0
