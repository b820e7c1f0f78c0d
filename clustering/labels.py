"""Capability labels: reps clustered by their capability profiles, each cluster named by what sets
it apart. Three swappable stages, sequenced by :func:`cluster_reps`:

featurize
    :class:`ProfileFeaturizer`. Per sales skill, the score's deviation from the skill's population
    prior in level units (0 where the rep has no evidence: no evidence is no deviation), then,
    scaled by ``mix_weight``, the square root of the skill's share of the rep's evidence weight
    (the Hellinger embedding of the rep's behaviour mix); PCA to at most ``n_components`` dims.
    Every skill is on the same L0–L4 scale, so nothing is standardised.
cluster
    :func:`cluster_points`. Identical rows are collapsed into one point carrying their
    multiplicity (exact duplicates make HDBSCAN's core distances 0 and its lambdas infinite), so
    identical profiles always get the same outcome; HDBSCAN runs on the distinct points; a profile
    shared by at least ``min_cluster_size`` reps that HDBSCAN left as noise is a cluster of its own.
name
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import hdbscan
import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from graph.errors import CapmapError, NotEnoughData

log = logging.getLogger(__name__)

Profiles = Mapping[str, Mapping[str, float]]


class InvalidProfile(CapmapError, ValueError):
    """A rep's profile holds a value clustering cannot use (NaN, infinity, a negative weight)."""


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


# -- cluster ---------------------------------------------------------------------------------------


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


# -- name ------------------------------------------------------------------------------------------


def c_tf_idf(docs: Mapping[int, Mapping[str, float]]) -> dict[int, list[tuple[str, float]]]:
    """Class-based TF-IDF (BERTopic's c-TF-IDF): tf(t, c) · log(1 + A / f(t)).

    ``A`` is the average number of tokens per class and ``f(t)`` the frequency of ``t`` over all
    classes. Returns, per class, its terms by decreasing weight.

    >>> c_tf_idf({0: {"x": 2, "s": 2}, 1: {"y": 2, "s": 2}})[0][0][0]
    'x'
    """
    total: Counter[str] = Counter()
    for c in docs.values():
        total.update(c)
    avg = sum(sum(c.values()) for c in docs.values()) / max(1, len(docs))
    out = {}
    for k, c in docs.items():
        n = sum(c.values()) or 1
        w = {t: (v / n) * math.log(1 + avg / total[t]) for t, v in c.items() if total[t] > 0}
        out[k] = sorted(w.items(), key=lambda x: (-x[1], x[0]))
    return out


def _sum_docs(docs: Mapping[str, Mapping[str, float]], reps: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in reps:
        for t, v in docs.get(r, {}).items():
            out[t] = out.get(t, 0.0) + v
    return out


QUALIFIERS = ((0.05, "Strong in", "擅长"), (-0.05, "Focused on", "专注于"), (-math.inf, "Developing", "待提升"))
"""Name prefix by the members' mean deviation from the prior on the two top skills (level units)."""


def name_clusters(
    members: Mapping[int, Sequence[str]], codes: Mapping[str, Mapping[str, float]],
    skill_mass: Mapping[str, Mapping[str, float]], deviation: Mapping[str, Mapping[str, float]],
    skill_names: Mapping[str, tuple[str, str]], n_top: int = 3,
) -> dict[int, tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """Name each cluster: ``{index: (name, name_zh, top_skills, top_codes)}``.

    Top codes and top skills are the cluster's first terms by c-TF-IDF over its members' codes and
    over their skills (a skill counts the rep's evidence weight × score on it). The name joins the
    two top skills, prefixed by how the members stand on them (:data:`QUALIFIERS`); a name two
    clusters would share gets its third skill, or a number.
    """
    by_code = c_tf_idf({c: _sum_docs(codes, reps) for c, reps in members.items()})
    by_skill = c_tf_idf({c: _sum_docs(skill_mass, reps) for c, reps in members.items()})
    out: dict[int, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {}
    used: Counter[str] = Counter()
    for c in sorted(members):
        top_sk = tuple(t for t, _ in by_skill[c][:n_top])
        devs = [deviation[r][s] for r in members[c] for s in top_sk[:2] if s in deviation.get(r, {})]
        mean_dev = math.fsum(devs) / len(devs) if devs else 0.0
        _, q_en, q_zh = next(q for q in QUALIFIERS if mean_dev >= q[0])
        shown = list(top_sk[:2])
        en = f"{q_en} " + " & ".join(skill_names.get(s, (s, s))[0] for s in shown)
        if used[en] and len(top_sk) > 2:
            shown.append(top_sk[2])
            en = f"{q_en} " + " & ".join(skill_names.get(s, (s, s))[0] for s in shown)
        zh = q_zh + "、".join(skill_names.get(s, (s, s))[1] for s in shown)
        used[en] += 1
        if used[en] > 1:
            en, zh = f"{en} ({used[en]})", f"{zh}（{used[en]}）"
        out[c] = (en, zh, top_sk, tuple(t for t, _ in by_code[c][:n_top]))
    return out


# -- the pipeline ---------------------------------------------------------------------------------


def _group_identical(reps: Sequence[str], profiles: Profiles, weights: Profiles | None,
                     multiplicity: Mapping[str, int] | None) -> tuple[list[list[str]], list[int]]:
    """Reps with identical profiles (scores and weights), in order of their first rep; group sizes."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for r in reps:
        w = (weights or {}).get(r, {})
        key = tuple(sorted((s, float(v), float(w.get(s, 1.0))) for s, v in profiles[r].items()))
        groups.setdefault(key, []).append(r)
    out = list(groups.values())
    return out, [sum((multiplicity or {}).get(r, 1) for r in g) for g in out]


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
    n = sum((multiplicity or {}).get(r, 1) for r in reps)
    if n < min_cluster_size:
        extra = f" ({len(excluded)} more without evidence)" if excluded else ""
        raise NotEnoughData(f"{n} reps with evidence{extra}; clustering needs at least "
                            f"min_cluster_size={min_cluster_size}")
    groups, mult = _group_identical(reps, profiles, weights, multiplicity)
    heads = {g[0]: profiles[g[0]] for g in groups}
    head_w = {g[0]: weights[g[0]] for g in groups if g[0] in weights} if weights is not None else None
    feat = ProfileFeaturizer(mix_weight, n_components, random_state=seed)
    order = sorted(heads)  # the featurizer's row order
    pos = {r: i for i, r in enumerate(order)}
    row_mult = [0] * len(order)
    for g, m in zip(groups, mult, strict=True):
        row_mult[pos[g[0]]] = m
    X = feat.fit_raw(heads, head_w, fill, row_mult)
    pts = cluster_points(feat.reduce(X), multiplicity=row_mult, min_cluster_size=min_cluster_size,
                         min_samples=min_samples, cluster_selection_method=cluster_selection_method,
                         cluster_selection_epsilon=cluster_selection_epsilon, method=method)
    assignment: dict[str, int] = {}
    probability: dict[str, float] = {}
    for g in groups:
        i = pos[g[0]]
        for r in g:
            assignment[r], probability[r] = int(pts.labels[i]), round(float(pts.probabilities[i]), 4)
    params = {"min_cluster_size": min_cluster_size, "min_samples": min_samples, "mix_weight": mix_weight,
              "cluster_selection_method": cluster_selection_method, "n_components": n_components,
              "cluster_selection_epsilon": cluster_selection_epsilon, "method": method, "seed": seed}
    res = Clustering(sorted(assignment), assignment, probability, skills=list(feat.skills_), excluded=excluded,
                     feature_names=list(feat.feature_names_), featurizer=feat, points=pts, params=params)
    res.labels = _labels(res, X, row_mult, pos, groups, profiles, weights, codes or {}, skill_names or {})
    return res


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
