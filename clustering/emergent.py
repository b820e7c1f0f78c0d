"""Emergent capabilities: cluster what won engagements say that the codebook does not explain,
and propose each cluster as a new capability label for a human to approve or reject.

featurize (TF-IDF over sentence units → TruncatedSVD → unit length, so Euclidean k-means is
spherical, i.e. cosine) → cluster (k-means, k chosen by the silhouette on a seeded sample) →
name (class-based TF-IDF over each cluster's terms, the BERTopic way) → compare (units of lost
engagements assigned to the same clusters: how much more often won engagements say it).

k-means rather than HDBSCAN here: short utterances in a reduced TF-IDF space have few dense
cores, and HDBSCAN leaves most of them as noise; every proposal still needs a human's approval,
and the seeded k-means keeps a rerun on the same data giving the same proposals. How k is
chosen: the silhouette on a seeded sample picks it within ``k_range``. On short texts the
silhouette keeps creeping up with k (0.08 at k = 4 to 0.15 at k = 12 and 0.24 at k = 30 on
PersuasionForGood), so the upper end of the range is what really bounds k; it is set to what a
reviewer can judge in one sitting (12 clusters, of which only those more common in won than in
lost engagements become proposals). Every k's silhouette is kept in ``silhouettes_`` and in the
run's manifest, so the choice is visible.

References
----------
Grootendorst, M. (2022). BERTopic: neural topic modeling with a class-based TF-IDF procedure.
arXiv:2203.05794.
Rousseeuw, P. J. (1987). Silhouettes. J. Comput. Appl. Math. 20.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from clustering.labels import c_tf_idf
from graph.errors import NotEnoughData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextUnit:
    """One sentence unit of an engagement: its id, the rep who said it, and the text."""

    id: str
    rep_id: str
    text: str


@dataclass(frozen=True)
class Proposal:
    """A proposed emergent capability: what its units say, who says it, and how often."""

    id: str
    index: int
    name: str
    top_terms: tuple[str, ...]
    examples: tuple[str, ...]
    member_reps: tuple[str, ...]  # reps with the most units in the cluster, most first
    n_units: int
    n_reps: int
    n_lost_units: int
    lift: float  # share of won units in this cluster / share of lost units in it

    @property
    def explanation(self) -> str:
        return (f"{self.n_units} unexplained sentences of {self.n_reps} reps in won engagements say this "
                f"({', '.join(self.top_terms[:5])}); {self.lift:.2f}× as common as in lost engagements")


class EmergentTopics(BaseEstimator):
    """TF-IDF → TruncatedSVD → k-means over text units, following the estimator contract.

    Parameters
    ----------
    n_components:
        Dimensions kept by the SVD (DESIGN: keep the clustering space small).
    k_range:
        Candidate numbers of clusters; the one with the highest silhouette is kept.
    min_df, max_df:
        Document-frequency bounds of the TF-IDF vocabulary.
    silhouette_sample:
        Units sampled (seeded) to score each k.
    random_state:
        Seed of the SVD, the sample and k-means.
    """

    def __init__(self, n_components: int = 40, k_range: tuple[int, int] = (4, 12), min_df: int = 5,
                 max_df: float = 0.3, silhouette_sample: int = 3000, random_state: int = 0) -> None:
        self.n_components = n_components
        self.k_range = k_range
        self.min_df = min_df
        self.max_df = max_df
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return normalize(self.svd_.transform(self.vectorizer_.transform(texts)))

    def fit(self, texts: Sequence[str]) -> EmergentTopics:
        # one thread: on 2 cores k-means' OpenMP threads and OpenBLAS's oversubscribe (~10× slower)
        with threadpool_limits(1):
            return self._fit(texts)

    def _fit(self, texts: Sequence[str]) -> EmergentTopics:
        if len(texts) < self.k_range[0] * 5:
            raise NotEnoughData(f"{len(texts)} text units are too few to propose emergent capabilities "
                                f"(at least {self.k_range[0] * 5} needed)")
        self.vectorizer_ = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), min_df=self.min_df,
                                           max_df=self.max_df, sublinear_tf=True, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z']+\b")
        X = self.vectorizer_.fit_transform(texts)
        n_comp = max(2, min(self.n_components, X.shape[1] - 1, X.shape[0] - 1))
        self.svd_ = TruncatedSVD(n_components=n_comp, random_state=self.random_state).fit(X)
        Z = normalize(self.svd_.transform(X))
        rng = np.random.default_rng(self.random_state)
        sample = rng.choice(len(Z), size=min(len(Z), self.silhouette_sample), replace=False)
        self.silhouettes_: dict[int, float] = {}
        best: tuple[float, int, KMeans] | None = None
        n_distinct = len(np.unique(np.round(Z, 8), axis=0))
        if n_distinct < 3:
            raise NotEnoughData(f"the {len(texts)} text units say only {n_distinct} different things")
        k_max = min(self.k_range[1], len(Z) // 5, n_distinct - 1)  # never more clusters than distinct points
        for k in range(min(self.k_range[0], k_max), k_max + 1):
            km = KMeans(n_clusters=k, n_init=10, random_state=self.random_state).fit(Z)
            s = float(silhouette_score(Z[sample], km.labels_[sample], random_state=self.random_state))
            self.silhouettes_[k] = round(s, 4)
            if best is None or s > best[0]:
                best = (s, k, km)
        assert best is not None
        self.silhouette_, self.k_, self.kmeans_ = best
        self.labels_ = self.kmeans_.labels_.copy()
        self.centroid_distance_ = np.linalg.norm(Z - self.kmeans_.cluster_centers_[self.labels_], axis=1)
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=int)
        with threadpool_limits(1):
            return self.kmeans_.predict(self._embed(texts))

    def terms(self, texts: Sequence[str], labels: np.ndarray) -> dict[int, list[tuple[str, float]]]:
        """Each cluster's terms by class-based TF-IDF over its units' analysed tokens."""
        analyse = self.vectorizer_.build_analyzer()
        vocab = self.vectorizer_.vocabulary_
        docs: dict[int, Counter[str]] = {k: Counter() for k in range(self.k_)}
        for text, k in zip(texts, labels, strict=True):
            docs[int(k)].update(t for t in analyse(text) if t in vocab)
        return c_tf_idf(docs)


def propose_labels(
    won: Sequence[TextUnit],
    lost: Sequence[TextUnit] = (),
    *,
    n_terms: int = 8,
    n_examples: int = 3,
    n_member_reps: int = 10,
    min_units: int = 20,
    min_reps: int = 5,
    min_words: int = 4,
    min_lift: float = 1.1,
    model: EmergentTopics | None = None,
) -> tuple[list[Proposal], EmergentTopics]:
    """Propose emergent capabilities from the unexplained units of won engagements.

    Units with fewer than ``min_words`` words (greetings, thanks) are left out. A cluster
    becomes a proposal when it holds at least ``min_units`` units from at least ``min_reps``
    reps (a behaviour of one or two people is not a capability) and is at least ``min_lift``
    times as common among won units as among ``lost`` units (assigned to the fitted clusters):
    what won and lost engagements say alike is small talk, not a capability.
    Proposal ids hash the top terms, so a rerun on the same data gives the same ids.

    Raises
    ------
    NotEnoughData
        If there are too few units to cluster.
    """
    keep = [u for u in won if len(u.text.split()) >= min_words]
    lost_keep = [u for u in lost if len(u.text.split()) >= min_words]
    model = (model or EmergentTopics()).fit([u.text for u in keep])
    terms = model.terms([u.text for u in keep], model.labels_)
    lost_labels = model.predict([u.text for u in lost_keep])
    lost_counts = Counter(int(k) for k in lost_labels)
    out = []
    for k in range(model.k_):
        idx = np.flatnonzero(model.labels_ == k)
        reps = Counter(keep[i].rep_id for i in idx)
        share_won = len(idx) / len(keep)
        share_lost = (lost_counts.get(k, 0) + 1) / (len(lost_keep) + model.k_)  # add-one: never divide by 0
        lift = share_won / share_lost if lost_keep else 1.0
        if len(idx) < min_units or len(reps) < min_reps or (lost_keep and lift < min_lift):
            continue
        top = tuple(t for t, _ in terms[k][:n_terms])
        closest = idx[np.argsort(model.centroid_distance_[idx], kind="stable")]
        examples = tuple(dict.fromkeys(" ".join(keep[i].text.split()) for i in closest))[:n_examples]
        pid = "label:emergent:" + hashlib.sha256("|".join(top).encode()).hexdigest()[:12]
        out.append(Proposal(pid, k, "Emergent: " + " / ".join(top[:3]), top, examples,
                            tuple(r for r, _ in sorted(reps.items(), key=lambda x: (-x[1], x[0]))[:n_member_reps]),
                            len(idx), len(reps), lost_counts.get(k, 0), round(lift, 4)))
    out.sort(key=lambda p: (-p.lift, p.id))
    return out, model
