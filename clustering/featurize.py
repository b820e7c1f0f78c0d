"""The featurize stage of capability labels (:mod:`clustering.labels` describes the feature space
and why it was chosen): the profile preconditions, :func:`check_profiles`; :class:`ProfileFeaturizer`;
and identical profiles grouped (:func:`group_identical`) and featurized once each (:func:`fit_groups`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from graph.errors import CapmapError

Profiles = Mapping[str, Mapping[str, float]]


class InvalidProfile(CapmapError, ValueError):
    """A rep's profile holds a value clustering cannot use (NaN, infinity, a negative weight)."""


# -- preconditions -------------------------------------------------------------------------------


def check_profiles(profiles: Profiles, weights: Profiles | None = None) -> tuple[list[str], dict[str, str]]:
    """Validate every score and weight; return the reps to cluster (sorted) and those excluded.

    A rep with no evidence (an empty profile, or weights that are all 0) is excluded, with the
    reason, not clustered.

    Raises
    ------
    InvalidProfile
        On a NaN or infinite score or weight, or a negative weight, naming the rep and skill.
    """
    if not (_all_finite(profiles) and (weights is None or _all_finite(weights, non_negative=True))):
        _raise_first_invalid(profiles, weights)
    keep, excluded = [], {}
    for rep in sorted(profiles):
        prof = profiles[rep]
        w = (weights or {}).get(rep, {})
        if not prof:
            excluded[rep] = "no evidence"
        elif weights is not None and sum(w.get(s, 0.0) for s in prof) <= 0:
            excluded[rep] = "no evidence (every evidence weight is 0)"
        else:
            keep.append(rep)
    return keep, excluded


def _all_finite(values: Profiles, non_negative: bool = False) -> bool:
    try:
        arr = np.fromiter((v for p in values.values() for v in p.values()), dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(arr).all() and (not non_negative or (arr >= 0).all()))


def _raise_first_invalid(profiles: Profiles, weights: Profiles | None) -> None:
    for rep in sorted(profiles):
        for skill in sorted(profiles[rep]):
            if not _finite(profiles[rep][skill]):
                raise InvalidProfile(f"rep {rep!r} has a non-finite score {profiles[rep][skill]!r} for skill {skill!r}; "
                                     "fix or drop that capability before clustering")
    for rep in sorted(weights or {}):
        w = (weights or {})[rep]
        for skill in sorted(w):
            if not _finite(w[skill]) or float(w[skill]) < 0:
                raise InvalidProfile(f"rep {rep!r} has an invalid evidence weight {w[skill]!r} for skill {skill!r}; "
                                     "weights must be finite and non-negative")


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


# -- featurize -------------------------------------------------------------------------------------


class ProfileFeaturizer:
    """Profiles → features: score deviations from the prior ⊕ ``mix_weight`` · √(evidence share),
    reduced by PCA to at most ``n_components`` dimensions (scikit-learn estimator contract).

    Learned: ``skills_`` (sorted), ``prior_`` (per skill: ``prior[skill]``, else the mean observed
    score), ``feature_names_`` (``score:<skill>`` then ``mix:<skill>``), ``pca_`` (None when no
    reduction is needed).
    """

    def __init__(self, mix_weight: float = 0.15, n_components: int = 8, random_state: int = 0) -> None:
        self.mix_weight = mix_weight
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, profiles: Profiles, weights: Profiles | None = None, prior: Mapping[str, float] | None = None,
            multiplicity: Sequence[int] | None = None) -> ProfileFeaturizer:
        """Learn skills, priors and the PCA basis from ``profiles`` (each row counted
        ``multiplicity`` times in the PCA)."""
        self.fit_raw(profiles, weights, prior, multiplicity)
        return self

    def fit_raw(self, profiles: Profiles, weights: Profiles | None = None, prior: Mapping[str, float] | None = None,
                multiplicity: Sequence[int] | None = None) -> np.ndarray:
        """:meth:`fit`, and return the features before PCA (what label centroids are computed on)."""
        reps = sorted(profiles)
        self.skills_ = sorted({s for r in reps for s in profiles[r]})
        given = prior or {}
        sums: dict[str, list[float]] = {s: [] for s in self.skills_ if not (s in given and math.isfinite(given[s]))}
        for r in reps:
            for s, v in profiles[r].items():
                if s in sums:
                    sums[s].append(v)
        self.prior_ = np.array([float(given[s]) if s not in sums else math.fsum(sums[s]) / len(sums[s])
                                for s in self.skills_], dtype=np.float64)
        kinds = ("score", "mix") if self.mix_weight > 0 else ("score",)
        self.feature_names_ = [f"{k}:{s}" for k in kinds for s in self.skills_]
        X = self.raw(profiles, weights)
        k = min(self.n_components, X.shape[1], X.shape[0])
        self.pca_: PCA | None = None
        if k < X.shape[1] and X.shape[0] >= 2:
            rows = X if multiplicity is None else np.repeat(X, np.asarray(multiplicity, dtype=np.intp), axis=0)
            # the covariance route: n ≫ d here, and it is exact and deterministic (signs fixed by svd_flip)
            self.pca_ = PCA(n_components=k, svd_solver="covariance_eigh", random_state=self.random_state).fit(rows)
        return X

    def raw(self, profiles: Profiles, weights: Profiles | None = None) -> np.ndarray:
        """Reps (sorted) × ``feature_names_``, before PCA; skills not seen in ``fit`` are ignored."""
        reps = sorted(profiles)
        col = {s: j for j, s in enumerate(self.skills_)}
        n, d = len(reps), len(self.skills_)
        dev = np.zeros((n, d))
        mass = np.zeros((n, d))
        for i, r in enumerate(reps):
            w = (weights or {}).get(r)
            for s, v in profiles[r].items():
                j = col.get(s)
                if j is not None:
                    dev[i, j] = v - self.prior_[j]
                    mass[i, j] = 1.0 if w is None else w.get(s, 0.0)
        if self.mix_weight <= 0:
            return dev
        total = np.array([math.fsum(row) for row in mass])  # exact, so identical rows stay identical
        share = np.divide(mass, total[:, None], out=np.zeros_like(mass), where=total[:, None] > 0)
        return np.hstack([dev, self.mix_weight * np.sqrt(share)])

    def reduce(self, X: np.ndarray) -> np.ndarray:
        return X if self.pca_ is None else self.pca_.transform(X)

    def transform(self, profiles: Profiles, weights: Profiles | None = None) -> np.ndarray:
        return self.reduce(self.raw(profiles, weights))


# -- identical profiles ---------------------------------------------------------------------------


def group_identical(reps: Sequence[str], profiles: Profiles, weights: Profiles | None,
                    multiplicity: Mapping[str, int] | None) -> tuple[list[list[str]], list[int]]:
    """Reps with identical profiles (scores and weights), in order of their first rep; group sizes."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for r in reps:
        w = (weights or {}).get(r, {})
        key = tuple(sorted((s, float(v), float(w.get(s, 1.0))) for s, v in profiles[r].items()))
        groups.setdefault(key, []).append(r)
    out = list(groups.values())
    return out, [sum((multiplicity or {}).get(r, 1) for r in g) for g in out]


def fit_groups(feat: ProfileFeaturizer, groups: list[list[str]], mult: list[int], profiles: Profiles,
              weights: Profiles | None, fill: Mapping[str, float] | None,
              ) -> tuple[np.ndarray, list[int], dict[str, int]]:
    """Fit ``feat`` on one row per group of identical profiles (its first rep's; rows sorted by that
    rep), counted by the group's multiplicity; return the features before PCA, each row's
    multiplicity and each first rep's row."""
    heads = {g[0]: profiles[g[0]] for g in groups}
    head_w = {g[0]: weights[g[0]] for g in groups if g[0] in weights} if weights is not None else None
    order = sorted(heads)  # the featurizer's row order
    pos = {r: i for i, r in enumerate(order)}
    row_mult = [0] * len(order)
    for g, m in zip(groups, mult, strict=True):
        row_mult[pos[g[0]]] = m
    X = feat.fit_raw(heads, head_w, fill, row_mult)
    return X, row_mult, pos
