"""The cluster stage of capability labels (:mod:`clustering.labels`): :func:`cluster_points`,
HDBSCAN over the distinct feature rows, each carrying its multiplicity; ``method=`` picks the
implementation from :data:`CLUSTER_METHODS`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import hdbscan
import numpy as np


def _fit_hdbscan(U: np.ndarray, mcs: int, ms: int, selection: str, eps: float) -> Any:
    # one core-distance job: on this 2-core machine joblib's workers cost more than they save
    return hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=ms, cluster_selection_method=selection,
                           cluster_selection_epsilon=eps, prediction_data=True, core_dist_n_jobs=1).fit(U)


def _fit_sklearn(U: np.ndarray, mcs: int, ms: int, selection: str, eps: float) -> Any:
    from sklearn.cluster import HDBSCAN

    return HDBSCAN(min_cluster_size=mcs, min_samples=ms, cluster_selection_method=selection,
                   cluster_selection_epsilon=eps, copy=True).fit(U)


CLUSTER_METHODS: dict[str, Callable[[np.ndarray, int, int, str, float], Any]] = {
    "hdbscan": _fit_hdbscan,  # keeps prediction data: new reps are assigned without refitting
    "sklearn": _fit_sklearn,  # scikit-learn's HDBSCAN, for comparison (bench/cluster.py)
}


@dataclass
class PointClustering:
    """Labels of the rows given to :func:`cluster_points`, and the fitted model."""

    labels: np.ndarray  # per row: 0..k-1, -1 for noise; 0 is the largest cluster
    probabilities: np.ndarray
    model: Any  # the fitted HDBSCAN, or None when no HDBSCAN could run (too few distinct points)
    label_map: dict[int, int]  # the model's label -> ours
    distinct: dict[bytes, tuple[int, float]]  # a distinct fitted row's bytes -> its label and probability
    n_distinct: int
    method: str


def cluster_points(
    F: np.ndarray, *, multiplicity: Sequence[int] | None = None, min_cluster_size: int = 15, min_samples: int = 1,
    cluster_selection_method: str = "eom", cluster_selection_epsilon: float = 0.0, method: str = "hdbscan",
) -> PointClustering:
    """HDBSCAN over the distinct rows of ``F``; each row counts ``multiplicity`` reps.

    Rows equal after rounding to 10 decimals are one point (HDBSCAN is not defined for exact
    duplicates). When there are fewer distinct points than ``min_cluster_size``, HDBSCAN cannot form
    a cluster and is not run. A point of multiplicity ≥ ``min_cluster_size`` left as noise becomes a
    cluster of its own (probability 1). Clusters are numbered by decreasing size, then first row.
    """
    mult = np.ones(len(F), dtype=np.intp) if multiplicity is None else np.asarray(multiplicity, dtype=np.intp)
    U, first, inverse = np.unique(np.round(F, 10) + 0.0, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    weight = np.bincount(inverse, weights=mult, minlength=len(U)).astype(np.intp)
    raw = np.full(len(U), -1, dtype=np.intp)
    prob = np.zeros(len(U))
    model = None
    if len(U) >= max(min_cluster_size, min_samples + 1):
        model = CLUSTER_METHODS[method](U, min_cluster_size, min_samples, cluster_selection_method,
                                        cluster_selection_epsilon)
        raw, prob = np.asarray(model.labels_, dtype=np.intp).copy(), np.asarray(model.probabilities_, dtype=float).copy()
    nxt = int(raw.max()) + 1 if len(raw) else 0
    for u in np.argsort(-weight, kind="stable"):
        if raw[u] == -1 and weight[u] >= min_cluster_size:
            raw[u], prob[u], nxt = nxt, 1.0, nxt + 1
    sizes = Counter({int(c): int(weight[raw == c].sum()) for c in set(raw.tolist()) if c >= 0})
    firsts = {c: int(first[raw == c].min()) for c in sizes}
    order = sorted(sizes, key=lambda c: (-sizes[c], firsts[c]))
    label_map = {c: i for i, c in enumerate(order)}
    ours = np.array([label_map.get(int(c), -1) for c in raw], dtype=np.intp)
    return PointClustering(labels=ours[inverse], probabilities=prob[inverse], model=model, label_map=label_map,
                           distinct={U[u].tobytes(): (int(ours[u]), float(prob[u])) for u in range(len(U))}, n_distinct=len(U),
                           method=method)
