from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from clustering.labels import c_tf_idf, cluster_reps, profile_matrix
from graph.errors import NotEnoughData

NAMES = {"a": ("Alpha", "甲"), "b": ("Beta", "乙"), "c": ("Gamma", "丙")}


def blobs(n: int = 40, seed: int = 1) -> tuple[dict[str, dict[str, float]], dict[str, Counter[str]]]:
    rng = np.random.default_rng(seed)
    profiles, codes = {}, {}
    for i in range(n):
        hi = "a" if i % 2 == 0 else "b"
        profiles[f"r{i:03d}"] = {"a": (3.5 if hi == "a" else 1.0) + rng.normal(0, 0.1),
                                 "b": (3.5 if hi == "b" else 1.0) + rng.normal(0, 0.1),
                                 "c": 2.0 + rng.normal(0, 0.1)}
        codes[f"r{i:03d}"] = Counter({f"code-{hi}": 5, "shared": 5})
    return profiles, codes


def test_c_tf_idf_ranks_distinctive_terms_first() -> None:
    ranked = c_tf_idf({0: Counter({"x": 4, "shared": 4}), 1: Counter({"y": 4, "shared": 4})})
    assert ranked[0][0][0] == "x" and ranked[1][0][0] == "y"
    # tf 0.5 · log(1 + 8/4) for x; 0.5 · log(1 + 8/8) for shared
    assert ranked[0][0][1] == pytest.approx(0.5 * np.log(3))
    assert ranked[0][1][1] == pytest.approx(0.5 * np.log(2))


def test_two_groups_give_two_named_labels() -> None:
    p, c = blobs()
    res = cluster_reps(p, c, NAMES, {}, min_cluster_size=10, min_samples=3)
    assert len(res.labels) == 2
    tops = sorted(lb.top_skills[0] for lb in res.labels)
    assert tops == ["a", "b"]
    for lb in res.labels:
        assert lb.top_codes[0] == f"code-{lb.top_skills[0]}"
        assert lb.name == f"Strong in {NAMES[lb.top_skills[0]][0]} & {NAMES[lb.top_skills[1]][0]}"
        assert len(lb.members) == 20


def test_same_labels_whatever_the_input_order() -> None:
    p, c = blobs()
    first = cluster_reps(p, c, NAMES, {}, min_cluster_size=10, min_samples=3)
    keys = list(p)
    random.Random(7).shuffle(keys)
    shuffled = cluster_reps({k: p[k] for k in keys}, c, NAMES, {}, min_cluster_size=10, min_samples=3)
    assert shuffled.assignment == first.assignment
    assert [lb.members for lb in shuffled.labels] == [lb.members for lb in first.labels]


def test_too_few_reps_is_a_clear_error() -> None:
    p, c = blobs(4)
    with pytest.raises(NotEnoughData, match="4 reps"):
        cluster_reps(p, c, NAMES, {}, min_cluster_size=5)


def test_non_finite_score_names_rep_and_skill() -> None:
    with pytest.raises(ValueError, match="rep 'r2'.*skill 'b'"):
        profile_matrix({"r1": {"a": 1.0, "b": 2.0}, "r2": {"a": 1.0, "b": float("nan")}}, ["a", "b"], {})


def test_missing_score_takes_the_prior() -> None:
    reps, X = profile_matrix({"r1": {"a": 1.0}}, ["a", "b"], {"b": 2.5})
    assert reps == ["r1"] and X.tolist() == [[1.0, 2.5]]
