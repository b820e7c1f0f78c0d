from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from clustering.labels import (
    InvalidProfile,
    ProfileFeaturizer,
    assign_reps,
    c_tf_idf,
    check_profiles,
    cluster_reps,
    label_stability,
)
from clustering.lineage import PreviousLabel, align, match_labels, new_label_id
from graph.errors import CapmapError, NotEnoughData

NAMES = {"a": ("Alpha", "甲"), "b": ("Beta", "乙"), "c": ("Gamma", "丙")}


def blobs(n: int = 40, seed: int = 1) -> tuple[dict[str, dict[str, float]], dict[str, Counter[str]]]:
    """Two groups of reps: strong in a (even) or in b (odd), each with its own code."""
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
    res = cluster_reps(p, c, NAMES, {}, min_cluster_size=10)
    assert len(res.labels) == 2 and res.outlier_share == 0.0
    assert sorted(lb.top_skills[0] for lb in res.labels) == ["a", "b"]
    for lb in res.labels:
        hi = lb.top_skills[0]
        assert lb.top_codes[0] == f"code-{hi}"
        assert lb.name.startswith(f"Strong in {NAMES[hi][0]} & ") and lb.name_zh.startswith(f"擅长{NAMES[hi][1]}、")
        assert len(lb.members) == 20 and all(res.assignment[r] == lb.index for r in lb.members)
        assert len(lb.centroid) == len(res.feature_names) == 6  # score:a..c, mix:a..c
    assert res.feature_names[:3] == ["score:a", "score:b", "score:c"]


def test_same_labels_whatever_the_input_order() -> None:
    p, c = blobs()
    first = cluster_reps(p, c, NAMES, {}, min_cluster_size=10)
    keys = list(p)
    for seed in (7, 8, 9):
        random.Random(seed).shuffle(keys)
        shuffled = cluster_reps({k: p[k] for k in keys}, {k: c[k] for k in reversed(keys)}, NAMES, {}, min_cluster_size=10)
        assert shuffled.assignment == first.assignment and shuffled.probability == first.probability
        assert shuffled.labels == first.labels


def test_seeded_runs_repeat() -> None:
    p, c = blobs(60, seed=3)
    a = cluster_reps(p, c, NAMES, {}, min_cluster_size=10, seed=5)
    b = cluster_reps(p, c, NAMES, {}, min_cluster_size=10, seed=5)
    assert a.assignment == b.assignment and a.labels == b.labels and a.params["seed"] == 5


def test_too_few_reps_is_a_clear_error() -> None:
    p, c = blobs(4)
    with pytest.raises(NotEnoughData, match="4 reps with evidence; clustering needs at least min_cluster_size=5"):
        cluster_reps(p, c, NAMES, {}, min_cluster_size=5)


def test_too_few_reps_counts_those_without_evidence_apart() -> None:
    p, c = blobs(4)
    p["r900"] = {}
    with pytest.raises(NotEnoughData, match=r"4 reps with evidence \(1 more without evidence\)"):
        cluster_reps(p, c, NAMES, {}, min_cluster_size=5)


def test_reps_without_evidence_are_excluded_and_reported() -> None:
    p, c = blobs()
    p["r900"] = {}  # no capability at all
    p["r901"] = {"a": 2.0, "b": 2.0}  # capabilities whose evidence weighs nothing
    weights = {r: {s: 1.0 for s in prof} for r, prof in p.items()}
    weights["r901"] = {"a": 0.0, "b": 0.0}
    res = cluster_reps(p, c, NAMES, {}, weights=weights, min_cluster_size=10)
    assert set(res.excluded) == {"r900", "r901"} and res.excluded["r900"] == "no evidence"
    assert "r900" not in res.assignment and "r901" not in res.assignment
    assert len(res.rep_ids) == 40 and len(res.labels) == 2


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_score_is_rejected_naming_rep_and_skill(bad: float) -> None:
    p, c = blobs()
    p["r007"]["b"] = bad
    with pytest.raises(InvalidProfile, match="rep 'r007'.*skill 'b'") as err:
        cluster_reps(p, c, NAMES, {}, min_cluster_size=10)
    assert isinstance(err.value, CapmapError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_bad_weight_is_rejected_naming_rep_and_skill(bad: float) -> None:
    p, _ = blobs()
    weights = {r: {s: 1.0 for s in prof} for r, prof in p.items()}
    weights["r012"]["c"] = bad
    with pytest.raises(InvalidProfile, match="rep 'r012'.*skill 'c'"):
        check_profiles(p, weights)


def test_identical_profiles_get_identical_outcomes() -> None:
    p, c = blobs()
    twin = dict(p["r000"])
    for i in range(12):
        p[f"t{i:02d}"] = dict(twin)
    res = cluster_reps(p, c, NAMES, {}, min_cluster_size=10)
    outcomes = {(res.assignment[r], res.probability[r]) for r in ["r000"] + [f"t{i:02d}" for i in range(12)]}
    assert len(outcomes) == 1 and next(iter(outcomes))[0] >= 0


def test_a_cohort_of_identical_profiles_is_not_all_noise() -> None:
    """Regression: identical or near-identical profiles (missing skills at the prior) made
    HDBSCAN call every rep an outlier on a 70 + 30 cohort."""
    rng = np.random.default_rng(0)
    p = {f"crm{i:02d}": {"closing": 2.3, "pipeline": 2.0} for i in range(30)}  # identical profiles
    for i in range(70):
        p[f"p4g{i:02d}"] = {"closing": 2.5 + rng.normal(0, 0.15), "credibility": 2.6 + rng.normal(0, 0.15),
                            "value": 2.5 + rng.normal(0, 0.15)}
    res = cluster_reps(p, None, None, {"closing": 2.5, "pipeline": 2.0, "credibility": 2.6, "value": 2.5},
                       min_cluster_size=5)
    crm = {res.assignment[f"crm{i:02d}"] for i in range(30)}
    assert len(crm) == 1 and crm != {-1}
    assert res.outlier_share < 0.5
    only_twins = cluster_reps({f"x{i}": {"a": 1.0} for i in range(8)}, min_cluster_size=5)
    assert [len(lb.members) for lb in only_twins.labels] == [8] and only_twins.probability["x0"] == 1.0


def test_new_reps_are_assigned_without_refitting() -> None:
    p, c = blobs()
    res = cluster_reps(p, c, NAMES, {}, min_cluster_size=10)
    assert res.points is not None
    model, before = res.points.model, dict(res.assignment)
    label_a = next(lb.index for lb in res.labels if lb.top_skills[0] == "a")
    new = {"n1": {"a": 3.45, "b": 1.02, "c": 2.01}, "n2": dict(p["r001"]), "n3": {}}
    got = assign_reps(res, new)
    assert got.assignment["n1"] == label_a and 0 < got.probability["n1"] <= 1
    assert (got.assignment["n2"], got.probability["n2"]) == (res.assignment["r001"], res.probability["r001"])
    assert got.excluded == {"n3": "no evidence"}
    assert res.points.model is model and res.assignment == before


def test_sklearn_method_clusters_but_cannot_assign() -> None:
    p, c = blobs()
    res = cluster_reps(p, c, NAMES, {}, min_cluster_size=10, method="sklearn")
    assert len(res.labels) == 2
    with pytest.raises(ValueError, match="prediction data"):
        assign_reps(res, {"n1": {"a": 3.5, "b": 1.0, "c": 2.0}})


@pytest.mark.parametrize("kw", [{"min_cluster_size": 1}, {"min_samples": 0}, {"mix_weight": -1.0},
                                {"n_components": 0}, {"method": "kmeans"}, {"cluster_selection_method": "top"}])
def test_bad_parameters_are_refused_first(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        cluster_reps({"r1": {"a": float("nan")}}, **kw)  # type: ignore[arg-type]


def test_featurizer_fills_missing_skills_with_no_deviation() -> None:
    f = ProfileFeaturizer(mix_weight=0.5, n_components=8).fit({"r1": {"a": 1.0}, "r2": {"a": 3.0, "b": 2.5}}, prior={"b": 2.0})
    X = f.raw({"r1": {"a": 1.0}, "r2": {"a": 3.0, "b": 2.5}})
    assert f.skills_ == ["a", "b"] and f.prior_.tolist() == [2.0, 2.0]  # a: the observed mean; b: the prior given
    assert X[:, :2].tolist() == [[-1.0, 0.0], [1.0, 0.5]]
    assert X[:, 2:].ravel().tolist() == pytest.approx([0.5, 0.0, 0.5 * np.sqrt(0.5), 0.5 * np.sqrt(0.5)])


def test_label_stability_of_clear_groups_is_one() -> None:
    p, _ = blobs(60)
    st = label_stability(p, {}, n_pairs=3, seed=1, min_cluster_size=10)
    assert st.ari == 1.0 and len(st.aris) == 3
    assert all(12 <= n <= 36 for n in st.n_common)  # about (1 - 1/e)² ≈ 40 % of the reps are drawn in both


# -- lineage ---------------------------------------------------------------------------------------

FEATS = ("score:a", "score:b")


def test_unchanged_centroids_keep_their_ids() -> None:
    prev = [PreviousLabel("label:x", (1.0, 0.0), FEATS), PreviousLabel("label:y", (0.0, 1.0), FEATS)]
    lin = match_labels(prev, [(0.0, 1.02), (1.0, 0.0)], FEATS, [("r2",), ("r1",)])
    assert [(e.index, e.label_id, e.event) for e in lin.entries] == [(0, "label:y", "matched"), (1, "label:x", "matched")]
    assert lin.retired == [] and lin.counts() == {"matched": 2}


def test_new_cluster_gets_an_id_from_its_members() -> None:
    lin = match_labels([PreviousLabel("label:x", (1.0, 0.0), FEATS)], [(1.0, 0.0), (-1.0, 0.0)], FEATS,
                       [("r1",), ("r3", "r2")])
    assert lin.entry_of(1).event == "new" and lin.id_of(1) == new_label_id(["r2", "r3"])
    assert lin.entry_of(1).nearest == "label:x" and lin.entry_of(1).distance == 2.0


def test_merge_and_split_are_recorded() -> None:
    prev = [PreviousLabel("label:x", (1.0, 0.0), FEATS), PreviousLabel("label:y", (1.08, 0.0), FEATS)]
    merged = match_labels(prev, [(1.04, 0.0)], FEATS, [("r1", "r2")])
    assert merged.entry_of(0).event == "merged" and merged.entry_of(0).sources == ("label:x", "label:y")
    assert [(e.label_id, e.into) for e in merged.retired] == [("label:y" if merged.id_of(0) == "label:x" else "label:x",
                                                              merged.id_of(0))]
    split = match_labels(prev[:1], [(0.96, 0.0), (1.05, 0.0)], FEATS, [("r1",), ("r2",)])
    events = sorted((e.event, e.label_id == "label:x", e.sources) for e in split.entries)
    assert events == [("split", False, ("label:x",)), ("split", True, ("label:x",))]


def test_far_previous_labels_retire() -> None:
    lin = match_labels([PreviousLabel("label:x", (1.0, 0.0), FEATS)], [(0.0, 1.0)], FEATS, [("r1",)])
    assert lin.entry_of(0).event == "new" and [(e.label_id, e.into) for e in lin.retired] == [("label:x", None)]


def test_hungarian_minimises_the_total_distance_greedy_does_not() -> None:
    feats = ("score:a",)
    prev = [PreviousLabel("label:p", (0.0,), feats), PreviousLabel("label:q", (0.09,), feats)]
    new = [(0.05,), (-0.04,)]
    hung = match_labels(prev, new, feats, [("r1",), ("r2",)])
    greedy = match_labels(prev, new, feats, [("r1",), ("r2",)], method="greedy")
    assert (hung.id_of(0), hung.id_of(1)) == ("label:q", "label:p")
    assert greedy.id_of(1) == "label:p" or greedy.id_of(0) == "label:p"


def test_centroids_over_different_features_are_aligned() -> None:
    assert align([1.0, 2.0], ["score:a", "mix:a"], ["mix:a", "score:b"]).tolist() == [2.0, 0.0]
    prev = [PreviousLabel("label:x", (1.0,), ("score:a",))]
    lin = match_labels(prev, [(1.0, 0.05)], ("score:a", "score:new"), [("r1",)])
    assert lin.id_of(0) == "label:x"


def test_lineage_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="method"):
        match_labels([], [], FEATS, [], method="magic")
    with pytest.raises(ValueError, match="centroids"):
        match_labels([], [(0.0, 0.0)], FEATS, [])
