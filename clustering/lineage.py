"""Stable capability-label ids: match a run's clusters to the previous run's labels by centroid
distance, and record what became of each — matched, merged, split, new, retired.

A label's centroid is the mean of its members' features before PCA (score deviations and the
weighted evidence mix, see :mod:`clustering.labels`), stored with the feature names, so two runs
whose skill sets differ are compared on the union of their features (a feature a run lacks is 0:
no deviation, no evidence). Measured on the demo data, a refit on a bootstrap resample moves a
label's centroid by 0.01–0.05 while distinct labels lie 0.12–0.35 apart; hence
``max_distance = 0.1``.

Events, for each new cluster ``j`` (``D`` the distance matrix, ``partner`` the optimal one-to-one
assignment restricted to pairs within ``max_distance``):

- ``matched``: ``j`` has a partner ``i``; it keeps ``i``'s id;
- ``merged``: as matched, and other previous labels have ``j`` as their nearest cluster within
  ``max_distance``: those ids retire ``into`` ``j``;
- ``split``: several clusters have the same previous label ``i`` as their nearest within
  ``max_distance``; the partner keeps ``i``'s id, the others get new ids;
- ``new``: no previous label within ``max_distance``; a new id.

A new id is ``label:`` + the first 12 hex digits of the SHA-256 of the sorted member ids, so the
same members always get the same id. Previous labels left without a partner are ``retired``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

MAX_DISTANCE = 0.1


@dataclass(frozen=True)
class PreviousLabel:
    """A label of the previous run, as stored: its id, centroid and the centroid's feature names."""

    id: str
    centroid: tuple[float, ...]
    feature_names: tuple[str, ...]


@dataclass(frozen=True)
class LineageEntry:
    """What happened to one label in a run."""

    label_id: str
    event: str  # matched | merged | split | new | retired
    index: int = -1  # the new cluster's index; -1 for a retired label
    sources: tuple[str, ...] = ()  # previous label ids this label comes from
    distance: float | None = None  # to the previous label whose id it keeps (or, for new, the nearest)
    nearest: str | None = None  # the nearest previous label (for new: even beyond max_distance)
    into: str | None = None  # retired: the label it merged into

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v not in (None, ())}, sort_keys=True)


@dataclass(frozen=True)
class Lineage:
    entries: tuple[LineageEntry, ...]

    def id_of(self, index: int) -> str:
        return next(e.label_id for e in self.entries if e.index == index and e.event != "retired")

    def entry_of(self, index: int) -> LineageEntry:
        return next(e for e in self.entries if e.index == index and e.event != "retired")

    @property
    def retired(self) -> list[LineageEntry]:
        return [e for e in self.entries if e.event == "retired"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.event] = out.get(e.event, 0) + 1
        return dict(sorted(out.items()))


def new_label_id(members: Iterable[str]) -> str:
    """``label:`` + 12 hex digits of the SHA-256 of the sorted member ids.

    >>> new_label_id(["b", "a"]) == new_label_id(["a", "b"])
    True
    """
    return "label:" + hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()[:12]


def align(centroid: Sequence[float], names: Sequence[str], to: Sequence[str]) -> np.ndarray:
    """``centroid`` (over ``names``) re-expressed over the features ``to``; absent features are 0.

    >>> align([1.0, 2.0], ["a", "b"], ["b", "c"]).tolist()
    [2.0, 0.0]
    """
    at = dict(zip(names, centroid, strict=True))
    return np.array([float(at.get(n, 0.0)) for n in to])


def _hungarian(cost: np.ndarray) -> list[tuple[int, int]]:
    rows, cols = linear_sum_assignment(cost)
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


def _greedy(cost: np.ndarray) -> list[tuple[int, int]]:
    pairs, used_r, used_c = [], set(), set()
    for flat in np.argsort(cost, axis=None, kind="stable"):
        i, j = divmod(int(flat), cost.shape[1])
        if i not in used_r and j not in used_c:
            pairs.append((i, j))
            used_r.add(i)
            used_c.add(j)
    return pairs


MATCH_METHODS: dict[str, Callable[[np.ndarray], list[tuple[int, int]]]] = {
    "hungarian": _hungarian,  # least total distance (scipy.optimize.linear_sum_assignment)
    "greedy": _greedy,  # closest pair first
}


def match_labels(
    previous: Sequence[PreviousLabel], centroids: Sequence[Sequence[float]], feature_names: Sequence[str],
    members: Sequence[Sequence[str]], *, max_distance: float = MAX_DISTANCE, method: str = "hungarian",
) -> Lineage:
    """Give each new cluster an id, keeping a previous label's id when its centroid is within
    ``max_distance`` (Euclidean), and record the lineage.

    Parameters
    ----------
    previous : the previous run's labels (any order; sorted by id here).
    centroids, feature_names : the new clusters' centroids over ``feature_names``.
    members : each new cluster's member ids (for new ids).
    max_distance : the largest centroid move that keeps an id.
    method : ``"hungarian"`` (optimal one-to-one assignment) or ``"greedy"``.

    Returns
    -------
    Lineage
        One entry per new cluster (``index`` = its position) and one per retired previous label.

    Raises
    ------
    ValueError
        Unknown ``method``, a negative ``max_distance``, or ``members`` and ``centroids`` of
        different lengths.

    Examples
    --------
    >>> prev = [PreviousLabel("label:a", (0.0, 1.0), ("x", "y"))]
    >>> lin = match_labels(prev, [(0.02, 1.0), (1.0, 0.0)], ("x", "y"), [("r1",), ("r2",)])
    >>> [(e.event, e.label_id) for e in lin.entries]
    [('matched', 'label:a'), ('new', 'label:db77fd01af95')]

    Notes
    -----
    O(p·k·d) for the distances and O(max(p, k)³) for the assignment (p previous labels, k new
    clusters, d features). Pairs beyond ``max_distance`` cost more than any pair within, so the
    assignment never trades a close pair for a far one.

    References
    ----------
    Kuhn, H. W. (1955). The Hungarian method for the assignment problem. Naval Res. Logist. Q. 2.
    """
    if method not in MATCH_METHODS:
        raise ValueError(f"method must be one of {sorted(MATCH_METHODS)}, not {method!r}")
    if not max_distance >= 0:
        raise ValueError(f"max_distance must be non-negative, not {max_distance}")
    if len(members) != len(centroids):
        raise ValueError(f"{len(centroids)} centroids but {len(members)} member lists")
    prev = sorted(previous, key=lambda p: p.id)
    k = len(centroids)
    names = sorted(set(feature_names).union(*(p.feature_names for p in prev)))
    new = np.array([align(c, feature_names, names) for c in centroids]).reshape(k, len(names))
    old = np.array([align(p.centroid, p.feature_names, names) for p in prev]).reshape(len(prev), len(names))
    D = np.linalg.norm(old[:, None, :] - new[None, :, :], axis=2) if prev and k else np.zeros((len(prev), k))
    near = D <= max_distance
    cost = np.where(near, D, D + max_distance * 1e6 + 1.0)
    partner = {j: i for i, j in MATCH_METHODS[method](cost) if near[i, j]} if prev and k else {}
    nearest_new = {i: int(np.argmin(D[i])) for i in range(len(prev)) if k and near[i].any()}
    nearest_old = {j: int(np.argmin(D[:, j])) for j in range(k) if prev and near[:, j].any()}
    taken = {prev[i].id for i in partner.values()}
    entries: list[LineageEntry] = []
    for j in range(k):
        i = partner.get(j)
        if i is not None:
            merged = sorted({prev[x].id for x, y in nearest_new.items() if y == j} | {prev[i].id})
            split = sum(1 for y, x in nearest_old.items() if x == i) > 1
            event = "merged" if len(merged) > 1 else "split" if split else "matched"
            entries.append(LineageEntry(prev[i].id, event, j, tuple(merged) if event == "merged" else (prev[i].id,),
                                        round(float(D[i, j]), 6), prev[i].id))
            continue
        lid = new_label_id(members[j])
        while lid in taken:
            lid += "+"
        taken.add(lid)
        src = nearest_old.get(j)
        closest = int(np.argmin(D[:, j])) if prev else None
        entries.append(LineageEntry(lid, "split" if src is not None else "new", j,
                                    (prev[src].id,) if src is not None else (),
                                    None if closest is None else round(float(D[closest, j]), 6),
                                    None if closest is None else prev[closest].id))
    kept = {e.label_id for e in entries}
    for i, p in enumerate(prev):
        if p.id not in kept:
            jn = nearest_new.get(i)
            into = next(e.label_id for e in entries if e.index == jn) if jn is not None else None
            entries.append(LineageEntry(p.id, "retired", -1, (), None if jn is None else round(float(D[i, jn]), 6),
                                        None, into))
    return Lineage(tuple(entries))
