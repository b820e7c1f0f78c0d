"""Capability labels: HDBSCAN over rep profiles, each cluster named by what sets it apart.

featurize (skill scores → standardised → PCA) → cluster (hdbscan) → name (class-based TF-IDF
over behaviour codes, and the skills whose mean standardised score is highest in the cluster).
Reps are sorted by id first, so the same profiles give the same labels whatever the input order.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import hdbscan
import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from graph.errors import NotEnoughData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelInfo:
    index: int
    name: str
    name_zh: str
    top_skills: tuple[str, ...]
    top_codes: tuple[str, ...]
    members: tuple[str, ...]


@dataclass
class Clustering:
    rep_ids: list[str]
    assignment: dict[str, int]  # rep -> label index, -1 for an outlier
    probability: dict[str, float]
    labels: list[LabelInfo] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)

    @property
    def outliers(self) -> list[str]:
        return [r for r in self.rep_ids if self.assignment[r] == -1]


def profile_matrix(profiles: Mapping[str, Mapping[str, float]], skills: list[str], fill: Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    """Reps (sorted) × skills matrix; a missing score takes ``fill[skill]`` (the population prior)."""
    reps = sorted(profiles)
    X = np.array([[profiles[r].get(s, fill.get(s, 0.0)) for s in skills] for r in reps], dtype=np.float64)
    if not np.isfinite(X).all():
        i, j = map(int, np.argwhere(~np.isfinite(X))[0])
        raise ValueError(f"profile of rep {reps[i]!r} has a non-finite score for skill {skills[j]!r}")
    return reps, X


def c_tf_idf(docs: Mapping[int, Counter[str]]) -> dict[int, list[tuple[str, float]]]:
    """Class-based TF-IDF (BERTopic's c-TF-IDF): tf(t, c) · log(1 + A / f(t)).

    ``A`` is the average number of tokens per class and ``f(t)`` the frequency of ``t`` over all
    classes. Returns, per class, its terms by decreasing weight.
    """
    total: Counter[str] = Counter()
    for c in docs.values():
        total.update(c)
    avg = sum(sum(c.values()) for c in docs.values()) / max(1, len(docs))
    out = {}
    for k, c in docs.items():
        n = sum(c.values()) or 1
        w = {t: (v / n) * math.log(1 + avg / total[t]) for t, v in c.items()}
        out[k] = sorted(w.items(), key=lambda x: (-x[1], x[0]))
    return out


def cluster_reps(
    profiles: Mapping[str, Mapping[str, float]],
    codes: Mapping[str, Counter[str]],
    skill_names: Mapping[str, tuple[str, str]],
    fill: Mapping[str, float],
    min_cluster_size: int = 15,
    min_samples: int | None = 5,
    n_components: int = 8,
    random_state: int = 0,
) -> Clustering:
    """Cluster reps by their capability profiles and name each cluster.

    Raises
    ------
    NotEnoughData
        When there are fewer reps than ``min_cluster_size``.
    """
    skills = sorted({s for p in profiles.values() for s in p})
    if len(profiles) < min_cluster_size:
        raise NotEnoughData(
            f"{len(profiles)} reps with enough evidence; clustering needs at least min_cluster_size={min_cluster_size}"
        )
    reps, X = profile_matrix(profiles, skills, fill)
    observed = np.array([[s in profiles[r] for s in skills] for r in reps], dtype=bool)
    Z = StandardScaler().fit_transform(X)
    Z = np.nan_to_num(Z)
    k = min(n_components, Z.shape[1], Z.shape[0])
    F = PCA(n_components=k, random_state=random_state).fit_transform(Z) if k < Z.shape[1] else Z
    model = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, prediction_data=True)
    lab = model.fit_predict(F)
    prob = model.probabilities_
    result = Clustering(reps, {r: int(lab[i]) for i, r in enumerate(reps)},
                        {r: round(float(prob[i]), 4) for i, r in enumerate(reps)}, skills=skills)
    docs: dict[int, Counter[str]] = {}
    for i, r in enumerate(reps):
        if lab[i] >= 0:
            docs.setdefault(int(lab[i]), Counter()).update(codes.get(r, Counter()))
    ranked = c_tf_idf(docs)
    for c in sorted(docs):
        idx = np.where(lab == c)[0]
        # distinguish by skills the members were actually observed on, not by filled-in priors
        seen = observed[idx].mean(axis=0) >= 0.5
        mean_z = np.where(seen, Z[idx].mean(axis=0), -np.inf)
        order = [j for j in np.argsort(-mean_z, kind="stable") if seen[j]]
        top_sk = tuple(skills[j] for j in order[:3])
        top_codes = tuple(t for t, _ in ranked[c][:3])
        en = " & ".join(skill_names.get(s, (s, s))[0] for s in top_sk[:2])
        zh = "、".join(skill_names.get(s, (s, s))[1] for s in top_sk[:2])
        result.labels.append(LabelInfo(c, f"Strong in {en}", f"擅长{zh}", top_sk, top_codes, tuple(reps[j] for j in idx)))
    return result
