"""Cluster ids that survive re-runs, and how much a clustering changed since the last one.

A clustering algorithm numbers its clusters afresh on every run, so the same group of listings (or
markets) could be cluster 3 today and cluster 17 tomorrow, and every feature keyed by cluster would
churn. ``stable_ids`` renames a new clustering's clusters after the previous run's: each new
cluster is paired with at most one previous cluster, choosing the pairing that maximises the total
Jaccard overlap of their members (the Hungarian method, ``scipy.optimize.linear_sum_assignment``,
solved separately on each group of clusters that share members, so it stays small at any scale).
A pair whose overlap is below ``min_jaccard`` is not a continuation; unpaired new clusters get ids
never used by the previous run.

``stability`` says how alike two clusterings of the same members are: the adjusted Rand index
(scikit-learn; 1 identical, about 0 no better than chance) and the mean Jaccard overlap of the
clusters ``stable_ids`` pairs up (unpaired clusters count 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import adjusted_rand_score

MIN_JACCARD = 0.2


def _members(frame: pl.DataFrame, key: Sequence[str], name: str) -> pl.DataFrame:
    """Clustered members: ``key`` as text (categorical and string keys then join) and the id."""
    clustered = frame.filter(pl.col("cluster_id").is_not_null())
    return clustered.select(*(pl.col(c).cast(pl.String) for c in key), pl.col("cluster_id").cast(pl.Int64).alias(name))


def matched_clusters(
    new: pl.DataFrame, previous: pl.DataFrame, key: Sequence[str], min_jaccard: float = MIN_JACCARD
) -> pl.DataFrame:
    """The pairing of ``new`` clusters with ``previous`` ones: columns ``new_id``, ``previous_id``,
    ``jaccard``, one row per pair whose overlap reaches ``min_jaccard``."""
    a, b = _members(new, key, "new_id"), _members(previous, key, "previous_id")
    sizes_a = a.group_by("new_id").len("size_new")
    sizes_b = b.group_by("previous_id").len("size_previous")
    overlap = (
        a.join(b, on=list(key))
        .group_by("new_id", "previous_id")
        .len("shared")
        .join(sizes_a, on="new_id")
        .join(sizes_b, on="previous_id")
        .with_columns(jaccard=pl.col("shared") / (pl.col("size_new") + pl.col("size_previous") - pl.col("shared")))
        .sort("new_id", "previous_id")
    )
    empty = pl.DataFrame(schema={"new_id": pl.Int64, "previous_id": pl.Int64, "jaccard": pl.Float64})
    if overlap.is_empty():
        return empty
    new_ids, new_index = np.unique(overlap["new_id"].to_numpy(), return_inverse=True)
    old_ids, old_index = np.unique(overlap["previous_id"].to_numpy(), return_inverse=True)
    jaccard = overlap["jaccard"].to_numpy()
    # Clusters sharing members form small groups; each group is one small assignment problem.
    n_new = len(new_ids)
    graph = coo_matrix((np.ones(len(jaccard)), (new_index, n_new + old_index)), shape=(n_new + len(old_ids),) * 2)
    _, group = connected_components(graph, directed=False)
    order = np.argsort(group[new_index], kind="stable")
    starts = np.unique(group[new_index][order], return_index=True)[1]
    pairs = []
    for rows in np.split(order, starts[1:]):
        local_new, inv_new = np.unique(new_index[rows], return_inverse=True)
        local_old, inv_old = np.unique(old_index[rows], return_inverse=True)
        matrix = np.zeros((len(local_new), len(local_old)))
        matrix[inv_new, inv_old] = jaccard[rows]
        for r, c in zip(*linear_sum_assignment(matrix, maximize=True), strict=True):
            if matrix[r, c] >= min_jaccard and matrix[r, c] > 0:
                pairs.append((int(new_ids[local_new[r]]), int(old_ids[local_old[c]]), float(matrix[r, c])))
    return pl.DataFrame(pairs, schema=empty.schema, orient="row").sort("new_id") if pairs else empty


def stable_ids(
    new: pl.DataFrame,
    previous: pl.DataFrame | None,
    key: Sequence[str] = ("venue", "listing_id"),
    min_jaccard: float = MIN_JACCARD,
) -> pl.DataFrame:
    """``new`` with ``cluster_id`` renamed after ``previous`` (both: ``key`` columns plus a nullable
    integer ``cluster_id``; null is noise and stays null).

    A new cluster paired with a previous one takes its id; the others get fresh ids above every id
    in ``previous``, numbered in the order of their first member by ``key``, so the same input gives
    the same ids. Without ``previous`` the clusters are numbered 0, 1, ... in that order.
    """
    key = list(key)
    paired = (
        matched_clusters(new, previous, key, min_jaccard)
        if previous is not None
        else pl.DataFrame(schema={"new_id": pl.Int64, "previous_id": pl.Int64, "jaccard": pl.Float64})
    )
    previous_max = previous["cluster_id"].max() if previous is not None and previous.height else None
    start = int(previous_max) + 1 if previous_max is not None else 0
    fresh = (
        _members(new, key, "new_id")
        .sort(key)
        .group_by("new_id", maintain_order=True)
        .first()
        .filter(~pl.col("new_id").is_in(paired["new_id"].implode()))
        .with_row_index("rank")
        .select("new_id", previous_id=(pl.col("rank").cast(pl.Int64) + start))
    )
    renaming = pl.concat([paired.select("new_id", "previous_id"), fresh])
    return (
        new.join(renaming, left_on="cluster_id", right_on="new_id", how="left", maintain_order="left")
        .with_columns(cluster_id=pl.col("previous_id").cast(pl.Int64))
        .drop("previous_id")
    )


def stability(
    new: pl.DataFrame, previous: pl.DataFrame, key: Sequence[str] = ("venue", "listing_id")
) -> dict[str, float | int]:
    """How alike two clusterings are on the members both contain (noise counts as one label per
    member, so two runs that agree on noise are alike): ``adjusted_rand``, ``matched_jaccard`` (mean
    over the union of both runs' clusters), ``members`` compared."""
    key = list(key)
    as_text = [pl.col(c).cast(pl.String) for c in key]
    both = new.select(*as_text, "cluster_id").join(
        previous.select(*as_text, "cluster_id"), on=key, suffix="_previous", how="inner"
    )
    if both.is_empty():
        return {"adjusted_rand": float("nan"), "matched_jaccard": float("nan"), "members": 0}
    # Each noise member its own singleton label, distinct from every cluster id.
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    labels = both.with_columns(
        a=pl.coalesce(pl.col("cluster_id").cast(pl.Int64).cast(pl.String), pl.lit("noise-") + row.cast(pl.String)),
        b=pl.coalesce(
            pl.col("cluster_id_previous").cast(pl.Int64).cast(pl.String), pl.lit("noise-") + row.cast(pl.String)
        ),
    )
    rand = float(adjusted_rand_score(labels["a"].to_list(), labels["b"].to_list()))
    pairs = matched_clusters(new, previous, key, min_jaccard=0.0)
    clusters = new["cluster_id"].drop_nulls().n_unique() + previous["cluster_id"].drop_nulls().n_unique() - pairs.height
    matched = float(pairs["jaccard"].sum() / clusters) if clusters else 1.0
    return {"adjusted_rand": rand, "matched_jaccard": matched, "members": both.height}
