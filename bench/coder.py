"""Benchmark of the text coder against a plain TF-IDF + logistic-regression baseline.

On PersuasionForGood's 300 annotated dialogues (the persuader's sentence units; the 10
persuasion strategies plus non-strategy), both are cross-validated in the same run with the
same folds, grouped by dialogue. Prints progress to stderr; a per-class report, a reliability
table, library versions, seconds per fit and units coded per second (``predict_proba`` on each
test fold, one BLAS thread) to stdout; and, as its last line, one JSON object.

Run from the repository root::

    python bench/coder.py [--folds 5] [--repeats 1] [--seed 0]

``--repeats N`` adds N-1 further groupings of the dialogues (shuffled grouped k-fold) and reports
each figure's median over the N groupings beside the figure of the standard unshuffled one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/coder.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from api.jobs import training_units  # noqa: E402
from ingest.codebook import load_codebook  # noqa: E402
from ingest.coders import TextCoder, Unit  # noqa: E402

TARGET_MACRO_F1 = 0.62
ISSUE_BASELINE = {"macro_f1": 0.536, "accuracy": 0.689}  # the issue's own measurement of a plain baseline


def progress(msg: str) -> None:
    print(f"[bench/coder] {msg}", file=sys.stderr, flush=True)


class Baseline:
    """Plain TF-IDF (word 1–2-grams) + logistic regression on the unit's text alone."""

    def __init__(self) -> None:
        self.pipe: Pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                            LogisticRegression(C=10.0, max_iter=3000))

    def fit(self, units: Sequence[Unit], labels: Sequence[str]) -> Baseline:
        self.pipe.fit([u.text for u in units], list(labels))
        self.classes_ = [str(c) for c in self.pipe.classes_]
        return self

    def predict_proba(self, units: Sequence[Unit]) -> np.ndarray:
        return np.asarray(self.pipe.predict_proba([u.text for u in units]))


def live(u: Unit) -> Unit:
    """The unit as coded live: the other party's next reply is not known yet."""
    return replace(u, next_text="")


def legacy(u: Unit) -> Unit:
    """The unit with only the context the loaders passed before this coder (text, previous
    utterance, turn, place in turn): what the coder sees if a loader is not updated."""
    return Unit(u.text, u.prev_text, u.turn, u.index_in_turn)


def calibration(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Top-label expected calibration error, multiclass Brier score and a reliability table."""
    conf, hit = proba.max(axis=1), proba.argmax(axis=1) == y
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y)), y] = 1.0
    table, ece = [], 0.0
    for b in range(bins):
        m = (conf > b / bins) & (conf <= (b + 1) / bins)
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - hit[m].mean())
            table.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": int(m.sum()),
                          "confidence": round(float(conf[m].mean()), 3), "accuracy": round(float(hit[m].mean()), 3)})
    return {"ece": round(float(ece), 4), "brier": round(float(((proba - onehot) ** 2).sum(axis=1).mean()), 4),
            "reliability": table}


def cross_validate(make: Callable[[], Any], units: list[Unit], y: np.ndarray, classes: list[str],
                   splits: list[tuple[np.ndarray, np.ndarray]], name: str,
                   variants: dict[str, Callable[[Unit], Unit]] | None = None) -> dict[str, Any]:
    """Out-of-fold probabilities (columns in ``classes`` order) and seconds per fit; each variant
    re-codes the test units after a transformation (the same fitted model)."""
    variants = variants or {}
    out = {k: np.zeros((len(y), len(classes))) for k in ["main", *variants]}
    fit_s, predict_s = [], []
    for f, (train, test) in enumerate(splits):
        t0 = time.perf_counter()
        model = make().fit([units[i] for i in train], [classes[k] for k in y[train]])
        fit_s.append(time.perf_counter() - t0)
        cols = np.array([classes.index(c) for c in model.classes_])
        test_units = [units[i] for i in test]
        t0 = time.perf_counter()
        out["main"][np.ix_(test, cols)] = model.predict_proba(test_units)
        predict_s.append(time.perf_counter() - t0)
        for key, fn in variants.items():
            out[key][np.ix_(test, cols)] = model.predict_proba([fn(u) for u in test_units])
        progress(f"{name}: fold {f + 1}/{len(splits)} fitted on {len(train)} units in {fit_s[-1]:.1f} s")
    return {"proba": out, "seconds_per_fit": float(np.mean(fit_s)), "units_per_second": len(y) / sum(predict_s)}


def scores(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = proba.argmax(axis=1)
    return {"macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
            "accuracy": round(float(accuracy_score(y, pred)), 4)}


def per_class(product: np.ndarray, baseline: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, Any]:
    labels = list(range(len(classes)))
    p = precision_recall_fscore_support(y, product.argmax(axis=1), labels=labels, zero_division=0)
    b = precision_recall_fscore_support(y, baseline.argmax(axis=1), labels=labels, zero_division=0)
    return {c: {"precision": round(float(p[0][k]), 3), "recall": round(float(p[1][k]), 3),
                "f1": round(float(p[2][k]), 3), "support": int(p[3][k]),
                "baseline_precision": round(float(b[0][k]), 3), "baseline_recall": round(float(b[1][k]), 3),
                "baseline_f1": round(float(b[2][k]), 3)} for k, c in enumerate(classes)}


def print_report(result: dict[str, Any]) -> None:
    print(f"PersuasionForGood persuader units: {result['n_units']} units, {result['n_dialogues']} dialogues, "
          f"{result['folds']}-fold cross-validation grouped by dialogue, {len(result['per_class'])} classes")
    print(f"versions: {json.dumps(result['versions'])}")
    print(f"{'class':<26}{'product P':>10}{'R':>7}{'F1':>7}   {'baseline P':>10}{'R':>7}{'F1':>7}{'support':>9}")
    for c, r in result["per_class"].items():
        print(f"{c:<26}{r['precision']:>10.3f}{r['recall']:>7.3f}{r['f1']:>7.3f}   "
              f"{r['baseline_precision']:>10.3f}{r['baseline_recall']:>7.3f}{r['baseline_f1']:>7.3f}{r['support']:>9}")
    print(f"{'macro-F1':<26}{result['macro_f1']:>24.4f}   {result['baseline_macro_f1']:>24.4f}")
    print(f"{'accuracy':<26}{result['accuracy']:>24.4f}   {result['baseline_accuracy']:>24.4f}")
    print(f"{'ECE (top label, 10 bins)':<26}{result['ece']:>24.4f}   {result['baseline_ece']:>24.4f}")
    print(f"{'Brier (multiclass)':<26}{result['brier']:>24.4f}   {result['baseline_brier']:>24.4f}")
    print(f"{'seconds per fit':<26}{result['seconds_per_fit']:>24.2f}   {result['baseline_seconds_per_fit']:>24.2f}")
    print(f"{'units coded per second':<26}{result['predict_units_per_second']:>24,}   "
          f"{result['baseline_predict_units_per_second']:>24,}")
    print(f"product coded live (no next reply): macro-F1 {result['macro_f1_live']:.4f}, "
          f"accuracy {result['accuracy_live']:.4f}")
    print(f"product on units with the old context only: macro-F1 {result['macro_f1_legacy_units']:.4f}, "
          f"accuracy {result['accuracy_legacy_units']:.4f}")
    print("product reliability (mean confidence vs accuracy per confidence bin):")
    for row in result["reliability"]:
        print(f"  {row['bin']}: n={row['n']:>5}  confidence {row['confidence']:.3f}  accuracy {row['accuracy']:.3f}")


def run(folds: int, repeats: int, seed: int) -> dict[str, Any]:
    codebook = load_codebook(ROOT / "seeds" / "codebook" / "bec-v1.json")
    classes = sorted(codebook.text_coder_classes)
    units, labels, groups = training_units(ROOT / "seeds" / "persuasionforgood" / "annotated_300_dialog.csv",
                                           codebook.text_coder_classes)
    y = np.array([classes.index(label) for label in labels])
    progress(f"{len(units)} units from {len(set(groups))} dialogues, {len(classes)} classes")
    groupings = [list(GroupKFold(folds).split(units, y, groups))]
    groupings += [list(GroupKFold(folds, shuffle=True, random_state=seed + r).split(units, y, groups))
                  for r in range(1, repeats)]
    runs = []
    for r, splits in enumerate(groupings):
        progress(f"grouping {r + 1}/{len(groupings)}")
        prod = cross_validate(lambda: TextCoder(random_state=seed), units, y, classes, splits, "product",
                              {"live": live, "legacy": legacy} if r == 0 else None)
        base = cross_validate(Baseline, units, y, classes, splits, "baseline")
        runs.append((prod, base))
    prod, base = runs[0]
    p, b = prod["proba"]["main"], base["proba"]["main"]
    cal, base_cal = calibration(p, y), calibration(b, y)
    result: dict[str, Any] = {
        **scores(p, y), **{f"baseline_{k}": v for k, v in scores(b, y).items()},
        "ece": cal["ece"], "brier": cal["brier"], "baseline_ece": base_cal["ece"], "baseline_brier": base_cal["brier"],
        "calibration": "top-label ECE over 10 equal-width confidence bins; multiclass Brier score",
        "n_units": len(units), "n_dialogues": len(set(groups)), "folds": folds,
        "seconds_per_fit": round(prod["seconds_per_fit"], 2), "baseline_seconds_per_fit": round(base["seconds_per_fit"], 2),
        "train_units_per_fit": round(len(units) * (folds - 1) / folds),
        "predict_units_per_second": round(prod["units_per_second"]),
        "baseline_predict_units_per_second": round(base["units_per_second"]),
        **{f"{k}_live": v for k, v in scores(prod["proba"]["live"], y).items()},
        **{f"{k}_legacy_units": v for k, v in scores(prod["proba"]["legacy"], y).items()},
        "per_class": per_class(p, b, y, classes),
        "reliability": cal["reliability"],
        "target_macro_f1": TARGET_MACRO_F1, "meets_target": scores(p, y)["macro_f1"] >= TARGET_MACRO_F1,
        "issue_baseline": ISSUE_BASELINE,
        "coder_params": vars(TextCoder(random_state=seed)),
        "baseline": "TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + LogisticRegression(C=10)",
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                     "scikit-learn": sklearn.__version__, "machine": platform.machine(), "cpus": os.cpu_count(), "blas_threads": 1},
    }
    if repeats > 1:
        per_run = [(scores(pr["proba"]["main"], y), scores(ba["proba"]["main"], y)) for pr, ba in runs]
        result["repeats"] = repeats
        for key in ("macro_f1", "accuracy"):
            result[f"median_{key}"] = round(float(np.median([s[0][key] for s in per_run])), 4)
            result[f"median_baseline_{key}"] = round(float(np.median([s[1][key] for s in per_run])), 4)
        result["runs"] = [{"product": s[0], "baseline": s[1]} for s in per_run]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="groupings of the dialogues (1: the standard one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    # one BLAS thread: on a small shared machine, threaded BLAS makes lbfgs (the baseline's and
    # the stack's solver) several times slower, and the timings noisy
    with threadpool_limits(limits=1, user_api="blas"):
        result = run(args.folds, args.repeats, args.seed)
    result["seconds_total"] = round(time.perf_counter() - t0, 1)
    print_report(result)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
