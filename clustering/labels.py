"""Capability labels: reps clustered by their capability profiles, each cluster named by what sets
it apart. Three swappable stages, each in its own module, sequenced by :func:`cluster_reps`:

featurize (:mod:`clustering.featurize`)
    :class:`ProfileFeaturizer`. Per sales skill, the score's deviation from the skill's population
    prior in level units (0 where the rep has no evidence: no evidence is no deviation), then,
    scaled by ``mix_weight``, the square root of the skill's share of the rep's evidence weight
    (the Hellinger embedding of the rep's behaviour mix); PCA to at most ``n_components`` dims.
    Every skill is on the same L0–L4 scale, so nothing is standardised.
cluster (:mod:`clustering.points`)
    :func:`cluster_points`. Identical rows are collapsed into one point carrying their
    multiplicity (exact duplicates make HDBSCAN's core distances 0 and its lambdas infinite), so
    identical profiles always get the same outcome; HDBSCAN runs on the distinct points; a profile
    shared by at least ``min_cluster_size`` reps that HDBSCAN left as noise is a cluster of its own.
name (:mod:`clustering.naming`)
    :func:`name_clusters`. Class-based TF-IDF (BERTopic's c-TF-IDF) over behaviour codes and over
    skills (each rep's evidence weight × score on the skill).

Reps are sorted by id and identical profiles grouped before anything is computed, so the same
profiles give the same labels whatever the input order. New reps are placed in the fitted labels
without refitting by :func:`assign_reps` (``hdbscan.approximate_predict``), and
:func:`label_stability` measures how far the labels survive resampling.

Why this feature space and these settings: measured with :func:`label_stability` (5 pairs) on two
versions of the demo data, reps with at least 10 evidence items on capmap's 12 sales skills
(A: 555 reps; B: 626 reps, after other ingest changes), as labels / outlier share / ARI::

    features, HDBSCAN settings (eom unless said)          A                   B
    before: prior-filled scores standardised, PCA 8,      2 / 87 % / 0.38*    3 / 80 % / 0.56*
      min_samples 5
    deviations, not standardised, PCA 8, min_samples 5    3 / 54 % / 0.70     3 / 47 % / 0.66
    deviations, min_samples 1                             3 / 30 % / 0.72     3 / 31 % / 0.74
    deviations ⊕ 0.15 · evidence mix, min_samples 5       3 / 34 % / 0.78     3 / 46 % / 0.72
    deviations ⊕ 0.15 · evidence mix, min_samples 1       3 / 18 % / 0.84     3 / 26 % / 0.78   (chosen)
    deviations ⊕ 0.3 · evidence mix, min_samples 1        2 /  1 % / 0.30     3 /  7 % / 0.89
    chosen, leaf selection                                7 / 66 % / 0.43     6 / 66 % / 0.34
    chosen, PCA 5 | PCA 12                                ARI 0.74 | 0.69     ARI 0.57 | 0.85
    (* the code before took no multiplicity: each resample's distinct reps)

Standardising let the skills whose scores barely vary (shrinkage noise around the prior) weigh as
much as the others, and made the result hinge on the prior used to fill missing skills (with a
stale run's priors the same data gave 7 labels and 57 % outliers). ``min_samples`` above 1
smooths a small cohort into one chain that never splits into two parts of ``min_cluster_size``,
and HDBSCAN (``allow_single_cluster=False``) then calls everyone noise: on the 70-persuader +
30-CRM-agent test slice (86 reps with 5+ items, ``min_cluster_size=5``) every rep was noise with
``min_samples=5``; now 6 labels, 20 % outliers, ARI 0.63. ``leaf`` fragments the persuaders into
small unstable groups; a mix weight of 0.3 lets the mix swallow the level differences on A.
The three labels on the demo data: CRM agents (pipeline management and closing), and persuaders
evidenced above, and below, the population (building credibility first, then product knowledge
or needs discovery).
Limits: the persuaders' profiles are a continuum, so the outlier share moves with who is
eligible (A with 5+ items: 63 %; with 20+: 51 %).
"""


from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import hdbscan
import numpy as np
from sklearn.metrics import adjusted_rand_score

from clustering.featurize import InvalidProfile as InvalidProfile
from clustering.featurize import ProfileFeaturizer, Profiles, check_profiles, fit_groups, group_identical
from clustering.naming import QUALIFIERS as QUALIFIERS
from clustering.naming import c_tf_idf as c_tf_idf
from clustering.naming import name_clusters
from clustering.points import CLUSTER_METHODS, PointClustering, cluster_points
from graph.errors import NotEnoughData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelInfo:
    """One cluster: its index in the run, names, what distinguishes it, members and centroid."""

    index: int
    name: str
    name_zh: str
    top_skills: tuple[str, ...]
    top_codes: tuple[str, ...]
    members: tuple[str, ...]
    centroid: tuple[float, ...] = ()
    """Mean of the members' features before PCA, in the order of ``Clustering.feature_names``."""


@dataclass
class Clustering:
    """What :func:`cluster_reps` found; keeps the fitted stages for :func:`assign_reps`."""

    rep_ids: list[str]
    """The reps clustered (sorted); excluded reps are in ``excluded`` instead."""
    assignment: dict[str, int]  # rep -> label index, -1 for an outlier
    probability: dict[str, float]
    labels: list[LabelInfo] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # rep -> why it was not clustered
    feature_names: list[str] = field(default_factory=list)
    featurizer: ProfileFeaturizer | None = None
    points: PointClustering | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def outliers(self) -> list[str]:
        return [r for r in self.rep_ids if self.assignment[r] == -1]

    @property
    def outlier_share(self) -> float:
        """Outliers over the reps clustered (0.0 when none was)."""
        return round(len(self.outliers) / len(self.rep_ids), 4) if self.rep_ids else 0.0


# -- preconditions -------------------------------------------------------------------------------


def _check_params(min_cluster_size: int, min_samples: int, mix_weight: float, n_components: int,
                  method: str, selection: str) -> None:
    if min_cluster_size < 2:
        raise ValueError(f"min_cluster_size must be at least 2, not {min_cluster_size}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1, not {min_samples}")
    if not (math.isfinite(mix_weight) and mix_weight >= 0):
        raise ValueError(f"mix_weight must be finite and non-negative, not {mix_weight}")
    if n_components < 1:
        raise ValueError(f"n_components must be at least 1, not {n_components}")
    if method not in CLUSTER_METHODS:
        raise ValueError(f"method must be one of {sorted(CLUSTER_METHODS)}, not {method!r}")
    if selection not in ("eom", "leaf"):
        raise ValueError(f"cluster_selection_method must be 'eom' or 'leaf', not {selection!r}")


# -- the pipeline ---------------------------------------------------------------------------------


def cluster_reps(
    profiles: Profiles,
    codes: Mapping[str, Mapping[str, float]] | None = None,
    skill_names: Mapping[str, tuple[str, str]] | None = None,
    fill: Mapping[str, float] | None = None,
    *,
    weights: Profiles | None = None,
    multiplicity: Mapping[str, int] | None = None,
    min_cluster_size: int = 15,
    min_samples: int = 1,
    cluster_selection_method: str = "eom",
    cluster_selection_epsilon: float = 0.0,
    mix_weight: float = 0.15,
    n_components: int = 8,
    method: str = "hdbscan",
    seed: int = 0,
) -> Clustering:
    """Cluster reps by their capability profiles and name each cluster.

    Parameters
    ----------
    profiles : ``{rep: {skill: score}}`` on the L0–L4 scale; a skill a rep has no evidence of is
        simply absent (it then sits at the prior: no deviation).
    codes : ``{rep: {code: count}}``, behaviour codes, for naming.
    skill_names : ``{skill: (name, name_zh)}``.
    fill : the population prior per skill (e.g. the scoring run's priors); else the observed mean.
    weights : ``{rep: {skill: evidence weight}}`` (Σ confidence × credibility × recency); without
        it every observed skill weighs 1 in the evidence mix.
    multiplicity : how many times each rep counts (default 1; a bootstrap draw's counts).
    min_cluster_size, min_samples, cluster_selection_method, cluster_selection_epsilon : HDBSCAN's.
    mix_weight, n_components : the feature space (:class:`ProfileFeaturizer`).
    method : ``"hdbscan"`` (keeps prediction data for :func:`assign_reps`) or ``"sklearn"``.
    seed : seeds the PCA (and nothing else is random).

    Returns
    -------
    Clustering
        Assignment (-1 for an outlier) and membership probability of every rep clustered, the
        labels (largest first), the reps excluded with the reason, and the fitted stages.

    Raises
    ------
    InvalidProfile
        A NaN or infinite score or weight, or a negative weight (naming the rep and skill).
    NotEnoughData
        Fewer reps with evidence than ``min_cluster_size``.
    ValueError
        A parameter out of range.

    Examples
    --------
    >>> p = {f"r{i:02d}": {"a": 3.0 if i < 6 else 1.0, "b": 1.0 if i < 6 else 3.0} for i in range(12)}
    >>> res = cluster_reps(p, min_cluster_size=5)
    >>> [len(lb.members) for lb in res.labels], res.outlier_share
    ([6, 6], 0.0)

    Notes
    -----
    Identical profiles are grouped first (one point, their count as multiplicity), so they share
    one outcome. HDBSCAN with the Borůvka k-d tree is about O(n log n) on ≤ 10 dimensions; PCA is
    O(n·d²); naming O(n·(codes + skills)). HDBSCAN is deterministic; only the PCA takes the seed.

    References
    ----------
    Campello, Moulavi, Sander (2013). Density-based clustering based on hierarchical density
    estimates. PAKDD. McInnes, Healy (2017). Accelerated hierarchical density based clustering.
    ICDMW. Grootendorst (2022). BERTopic, arXiv:2203.05794 (c-TF-IDF).
    """
    _check_params(min_cluster_size, min_samples, mix_weight, n_components, method, cluster_selection_method)
    reps, excluded = check_profiles(profiles, weights)
    _check_enough(reps, excluded, multiplicity, min_cluster_size)
    groups, mult = group_identical(reps, profiles, weights, multiplicity)
    feat = ProfileFeaturizer(mix_weight, n_components, random_state=seed)
    X, row_mult, pos = fit_groups(feat, groups, mult, profiles, weights, fill)
    pts = cluster_points(feat.reduce(X), multiplicity=row_mult, min_cluster_size=min_cluster_size,
                         min_samples=min_samples, cluster_selection_method=cluster_selection_method,
                         cluster_selection_epsilon=cluster_selection_epsilon, method=method)
    assignment, probability = _spread(groups, pos, pts)
    params = {"min_cluster_size": min_cluster_size, "min_samples": min_samples, "mix_weight": mix_weight,
              "cluster_selection_method": cluster_selection_method, "n_components": n_components,
              "cluster_selection_epsilon": cluster_selection_epsilon, "method": method, "seed": seed}
    res = Clustering(sorted(assignment), assignment, probability, skills=list(feat.skills_), excluded=excluded,
                     feature_names=list(feat.feature_names_), featurizer=feat, points=pts, params=params)
    res.labels = _labels(res, X, row_mult, pos, groups, profiles, weights, codes or {}, skill_names or {})
    return res


def _check_enough(reps: Sequence[str], excluded: Mapping[str, str], multiplicity: Mapping[str, int] | None,
                  min_cluster_size: int) -> None:
    n = sum((multiplicity or {}).get(r, 1) for r in reps)
    if n < min_cluster_size:
        extra = f" ({len(excluded)} more without evidence)" if excluded else ""
        raise NotEnoughData(f"{n} reps with evidence{extra}; clustering needs at least "
                            f"min_cluster_size={min_cluster_size}")


def _spread(groups: list[list[str]], pos: dict[str, int], pts: PointClustering,
            ) -> tuple[dict[str, int], dict[str, float]]:
    """Every rep's label and membership probability: those of its group's row."""
    assignment: dict[str, int] = {}
    probability: dict[str, float] = {}
    for g in groups:
        i = pos[g[0]]
        for r in g:
            assignment[r], probability[r] = int(pts.labels[i]), round(float(pts.probabilities[i]), 4)
    return assignment, probability


def _labels(res: Clustering, X: np.ndarray, row_mult: list[int], pos: dict[str, int],
            groups: list[list[str]], profiles: Profiles, weights: Profiles | None,
            codes: Mapping[str, Mapping[str, float]], names: Mapping[str, tuple[str, str]]) -> list[LabelInfo]:
    assert res.featurizer is not None
    members: dict[int, list[str]] = {}
    for r in res.rep_ids:
        if res.assignment[r] >= 0:
            members.setdefault(res.assignment[r], []).append(r)
    prior = dict(zip(res.featurizer.skills_, res.featurizer.prior_.tolist(), strict=True))
    dev = {r: {s: v - prior[s] for s, v in profiles[r].items() if s in prior} for rs in members.values() for r in rs}
    mass = {r: {s: (1.0 if weights is None else weights.get(r, {}).get(s, 0.0)) * max(v, 0.0)
                for s, v in profiles[r].items()} for rs in members.values() for r in rs}
    named = name_clusters(members, codes, mass, dev, names)
    head = {r: g[0] for g in groups for r in g}
    out = []
    for c in sorted(members):
        rows = sorted({pos[head[r]] for r in members[c]})
        w = np.array([row_mult[i] for i in rows], dtype=float)
        centroid = (X[rows] * w[:, None]).sum(axis=0) / w.sum()
        en, zh, top_sk, top_codes = named[c]
        out.append(LabelInfo(c, en, zh, top_sk, top_codes, tuple(members[c]),
                             tuple(round(float(v), 6) for v in centroid)))
    return out


# -- new reps, stability ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Assigned:
    """New reps placed in fitted labels: label index (-1 outlier) and membership probability."""

    assignment: dict[str, int]
    probability: dict[str, float]
    excluded: dict[str, str]


def assign_reps(clustering: Clustering, profiles: Profiles, weights: Profiles | None = None) -> Assigned:
    """Place new reps in the labels of ``clustering`` without refitting.

    A profile identical (after featurizing) to a fitted one gets that one's label; any other goes
    through ``hdbscan.approximate_predict`` on the fitted model, whose strength is the membership
    probability. Skills the fit never saw are ignored.

    Raises
    ------
    InvalidProfile
        As :func:`cluster_reps`.
    ValueError
        When ``clustering`` was fitted with a method that cannot predict (``"sklearn"``).
    """
    pts, feat = clustering.points, clustering.featurizer
    if pts is None or feat is None:
        raise ValueError("this clustering kept no fitted model to assign new reps with")
    if pts.model is not None and pts.method != "hdbscan":
        raise ValueError(f"method {pts.method!r} keeps no prediction data; refit with method='hdbscan'")
    reps, excluded = check_profiles(profiles, weights)
    if not reps:
        return Assigned({}, {}, excluded)
    F = np.round(feat.transform({r: profiles[r] for r in reps}, weights), 10) + 0.0
    labels = np.full(len(reps), -1, dtype=np.intp)
    prob = np.zeros(len(reps))
    todo = []
    for i, row in enumerate(F):
        known = pts.distinct.get(row.tobytes())
        if known is not None:
            labels[i], prob[i] = known
        else:
            todo.append(i)
    if todo and pts.model is not None:
        lab, strength = hdbscan.approximate_predict(pts.model, F[todo])
        for i, c, s in zip(todo, lab, strength, strict=True):
            labels[i] = pts.label_map.get(int(c), -1)
            prob[i] = float(s) if labels[i] >= 0 else 0.0
    return Assigned({r: int(labels[i]) for i, r in enumerate(reps)},
                    {r: round(float(prob[i]), 4) for i, r in enumerate(reps)}, excluded)


@dataclass(frozen=True)
class Stability:
    """Adjusted Rand index of the labels between pairs of seeded bootstrap fits."""

    ari: float  # the mean over pairs
    aris: tuple[float, ...]
    n_common: tuple[int, ...]  # reps drawn in both resamples of each pair


def label_stability(profiles: Profiles, fill: Mapping[str, float] | None = None, *, weights: Profiles | None = None,
                    n_pairs: int = 5, seed: int = 0, **params: Any) -> Stability:
    """How far the labels survive resampling: the mean adjusted Rand index over ``n_pairs`` pairs.

    For pair ``p`` two bootstrap resamples of the reps with evidence (sorted by id; ``n`` draws with
    replacement each) are drawn with ``numpy.random.default_rng([seed, p, 0])`` and
    ``default_rng([seed, p, 1])``; each is clustered by :func:`cluster_reps` with ``params`` (a rep
    drawn k times counts k times: its multiplicity); the ARI compares the two assignments of the reps
    drawn in both (about 40 % of them), outliers counting as one group. 1.0 means the same partition,
    about 0 a chance agreement. A pair where a resample cannot be clustered is skipped.
    """
    reps, _ = check_profiles(profiles, weights)
    aris, common = [], []
    for p in range(n_pairs):
        fits = []
        for side in (0, 1):
            draw = np.random.default_rng([seed, p, side]).integers(0, len(reps), len(reps))
            counts = Counter(reps[i] for i in draw.tolist())
            sub = {r: profiles[r] for r in counts}
            try:
                fits.append(cluster_reps(sub, None, None, fill, weights=weights, multiplicity=counts,
                                         seed=seed + p, **params).assignment)
            except NotEnoughData:
                break
        if len(fits) < 2:
            continue
        both = sorted(set(fits[0]) & set(fits[1]))
        aris.append(round(float(adjusted_rand_score([fits[0][r] for r in both], [fits[1][r] for r in both])), 4))
        common.append(len(both))
    mean = round(math.fsum(aris) / len(aris), 4) if aris else float("nan")
    return Stability(mean, tuple(aris), tuple(common))
