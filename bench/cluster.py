"""Capability-label clustering at scale, and the hdbscan package against scikit-learn's HDBSCAN.

Run from the repository root: ``python bench/cluster.py [--n 100000] [--n-small 20000] [--repeat 3]``.
Prints each figure beside its baseline measured in the same run (or its target), and one JSON
object as its last line.

Synthetic reps: ``--skills`` (30) sales skills; each rep has evidence on 10–30 of them, drawn
around one of 12 archetypes (strong on 5 focus skills, where its evidence falls 4× as often; score
= the archetype's level + N(0, 0.3), clipped to L0–L4; evidence weight Gamma(2, 1.5)), and two
behaviour codes of its archetype. Same seed, same reps.

Figures:
- ``seconds_100k``: wall-clock seconds of ``cluster_reps`` (featurize → PCA to 10 dims → hdbscan's
  Borůvka k-d tree with prediction data → name) on ``--n`` reps; target ≤ 60 s on 2 cores. Then
  1,000 more reps of the same archetypes are placed by ``assign_reps`` (no refit), timed.
  Beside it, the HDBSCAN stage alone on the same reduced features, as capmap runs it and with
  the settings before (``min_samples=5``, hdbscan's default 4 core-distance jobs) as the baseline.
- ``sklearn_vs_hdbscan``: on ``--n-small`` reps' reduced features (the same matrix for both),
  the median seconds of scikit-learn's HDBSCAN divided by the hdbscan package's (with prediction
  data, as capmap runs it), same parameters; > 1 means hdbscan is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import hdbscan  # noqa: E402
import numpy as np  # noqa: E402

from clustering.labels import CLUSTER_METHODS, ProfileFeaturizer, assign_reps, cluster_reps  # noqa: E402

TARGET_SECONDS_100K = 60.0
DESIGN_RATIO = "2–5× (DESIGN.md)"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def synthetic(n: int, n_skills: int = 30, n_types: int = 12, seed: int = 0, prefix: str = "r") -> tuple[
        dict[str, dict[str, float]], dict[str, dict[str, float]], dict[str, Counter[str]]]:
    """``n`` reps around ``n_types`` archetypes, each with evidence on 10–30 of ``n_skills`` skills.

    An archetype is strong (L3–L3.8) on its 5 focus skills and L1–L2.5 elsewhere; its reps' evidence
    falls 4× as often on the focus skills."""
    rng = np.random.default_rng(seed)
    skills = [f"capmap:s{j:02d}" for j in range(n_skills)]
    focus = np.array([rng.choice(n_skills, min(5, n_skills), replace=False) for _ in range(n_types)])
    levels = rng.uniform(1.0, 2.5, (n_types, n_skills))
    pick = np.ones((n_types, n_skills))
    for t in range(n_types):
        levels[t, focus[t]] = rng.uniform(3.0, 3.8, len(focus[t]))
        pick[t, focus[t]] = 4.0
    pick /= pick.sum(axis=1, keepdims=True)
    kind = rng.integers(0, n_types, n)
    k = rng.integers(min(10, n_skills), min(30, n_skills) + 1, n)
    noise = rng.normal(0, 0.3, (n, n_skills))
    weight = rng.gamma(2.0, 1.5, (n, n_skills))
    profiles, weights, codes = {}, {}, {}
    for i in range(n):
        cols = rng.choice(n_skills, k[i], replace=False, p=pick[kind[i]])
        rid = f"{prefix}{i:06d}"
        profiles[rid] = {skills[j]: float(np.clip(levels[kind[i], j] + noise[i, j], 0, 4)) for j in cols}
        weights[rid] = {skills[j]: float(weight[i, j]) for j in cols}
        codes[rid] = Counter({f"code-{kind[i]}-a": 3, f"code-{kind[i]}-b": 1})
    return profiles, weights, codes


def time_full(n: int, args: argparse.Namespace) -> dict[str, Any]:
    every, weights, codes = synthetic(n + 1000, args.skills, seed=args.seed)
    ids = sorted(every)
    profiles = {r: every[r] for r in ids[:n]}
    new = {r: every[r] for r in ids[n:]}  # 1,000 more reps of the same archetypes, assigned afterwards
    t = time.perf_counter()
    res = cluster_reps(profiles, codes, None, None, weights=weights, min_cluster_size=args.min_cluster_size,
                       n_components=10, seed=args.seed)
    secs = time.perf_counter() - t
    t = time.perf_counter()
    got = assign_reps(res, new, weights)
    assign_s = time.perf_counter() - t
    assert res.points is not None and res.featurizer is not None
    F = np.unique(np.round(res.featurizer.transform(profiles, weights), 10), axis=0)
    stage = {}
    for name, fit in (("hdbscan_stage_s", lambda: CLUSTER_METHODS["hdbscan"](F, args.min_cluster_size, 1, "eom", 0.0)),
                      ("baseline_hdbscan_stage_s", lambda: hdbscan.HDBSCAN(  # the settings before: min_samples 5,
                          min_cluster_size=args.min_cluster_size, min_samples=5, prediction_data=True).fit(F))):  # 4 jobs
        if name.startswith("baseline") and args.no_baseline:
            continue
        t = time.perf_counter()
        fit()
        stage[name] = round(time.perf_counter() - t, 2)
    return {"n": n, "seconds": round(secs, 2), **stage, "n_labels": len(res.labels), "outlier_share": res.outlier_share,
            "n_distinct_points": res.points.n_distinct, "dims": res.featurizer.pca_.n_components_ if res.featurizer and
            res.featurizer.pca_ else None, "assign_1000_s": round(assign_s, 3),
            "assigned_share": round(sum(v >= 0 for v in got.assignment.values()) / len(got.assignment), 4)}


def time_methods(n: int, args: argparse.Namespace) -> dict[str, Any]:
    profiles, weights, _ = synthetic(n, args.skills, seed=args.seed)
    feat = ProfileFeaturizer(n_components=10, random_state=args.seed).fit(profiles, weights)
    F = np.unique(np.round(feat.transform(profiles, weights), 10), axis=0)
    secs: dict[str, list[float]] = {m: [] for m in ("hdbscan", "sklearn")}
    for _ in range(args.repeat):
        for m in secs:
            t = time.perf_counter()
            CLUSTER_METHODS[m](F, args.min_cluster_size, 1, "eom", 0.0)
            secs[m].append(time.perf_counter() - t)
    med = {m: statistics.median(v) for m, v in secs.items()}
    return {"n": len(F), "hdbscan_s": round(med["hdbscan"], 2), "sklearn_s": round(med["sklearn"], 2),
            "runs": {m: [round(x, 2) for x in v] for m, v in secs.items()},
            "sklearn_vs_hdbscan": round(med["sklearn"] / med["hdbscan"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--n-small", type=int, default=20_000)
    ap.add_argument("--skills", type=int, default=30)
    ap.add_argument("--min-cluster-size", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-baseline", action="store_true", help="skip the HDBSCAN stage with the previous settings")
    args = ap.parse_args()
    CLUSTER_METHODS["hdbscan"](np.random.default_rng(0).normal(size=(500, 10)), 10, 1, "eom", 0.0)  # warm-up
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    small = time_methods(args.n_small, args)
    log(f"{small['n']:,} reps, 10 dims, min_cluster_size {args.min_cluster_size}, min_samples 1 (median of {args.repeat}):"
        f" hdbscan {small['hdbscan_s']} s vs scikit-learn {small['sklearn_s']} s (baseline)"
        f" → sklearn_vs_hdbscan {small['sklearn_vs_hdbscan']} (expected {DESIGN_RATIO})")
    full = time_full(args.n, args)
    log(f"{full['n']:,} reps × {args.skills} skills (10–30 observed each) → {full['dims']} dims:"
        f" seconds_100k {full['seconds']} s (target ≤ {TARGET_SECONDS_100K:.0f} s); {full['n_labels']} labels,"
        f" {full['outlier_share']:.1%} outliers; 1,000 new reps assigned in {full['assign_1000_s']} s")
    if "baseline_hdbscan_stage_s" in full:
        log(f"  HDBSCAN stage alone: {full['hdbscan_stage_s']} s (min_samples 1, 1 core-distance job) vs"
            f" {full['baseline_hdbscan_stage_s']} s (baseline: the settings before, min_samples 5, 4 jobs)")
    import scipy
    import sklearn

    out = {"seconds_100k": full["seconds"], "target_seconds_100k": TARGET_SECONDS_100K,
           "sklearn_vs_hdbscan": small["sklearn_vs_hdbscan"], "full": full, "small": small,
           "params": {"min_cluster_size": args.min_cluster_size, "min_samples": 1, "n_components": 10,
                      "skills": args.skills, "seed": args.seed},
           "machine": {"cpus": os.cpu_count(), "load_1min_at_start": load},
           "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                        "scikit-learn": sklearn.__version__, "hdbscan": getattr(hdbscan, "__version__", None)
                        or _dist_version("hdbscan")}}
    print(json.dumps(out))


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
