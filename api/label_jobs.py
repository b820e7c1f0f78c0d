"""Capability label jobs: cluster the reps' profiles into labels (clustering/labels.py) whose ids
are kept across runs (clustering/lineage.py), measure how stable they are, and record HR's
decisions on a label (rename, approve, reject). :mod:`api.jobs` re-exports every public name."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from api.job_common import run_manifest, skill_names
from clustering.labels import Clustering, cluster_reps, label_stability
from clustering.lineage import MAX_DISTANCE, Lineage, PreviousLabel, match_labels
from graph import schema
from graph.errors import InputError, NotEnoughData, NotFound
from graph.model import CapabilityLabel, Run
from graph.store import ChangeSet, GraphStore

log = logging.getLogger(__name__)


LABEL_KIND = "profile"


@dataclass(frozen=True)
class LabelInputs:
    """What clustering reads from the store: the profiles of reps with enough evidence, their
    evidence weights and codes, the priors of the scoring run, and who is left out."""

    profiles: dict[str, dict[str, float]]
    weights: dict[str, dict[str, float]]
    codes: dict[str, Counter[str]]
    priors: dict[str, float]
    low_evidence: list[str]  # reps with some evidence, fewer than min_evidence items
    no_evidence: list[str]  # reps without any evidence on capmap's sales skills


def label_inputs(store: GraphStore, capability_run: str, min_evidence: int) -> LabelInputs:
    """Profiles on capmap's sales skills (``capmap:*``) of the reps with at least ``min_evidence``
    evidence items; ``capability_run`` names the scoring run whose priors fill missing scores."""
    profiles: dict[str, dict[str, float]] = defaultdict(dict)
    weights: dict[str, dict[str, float]] = defaultdict(dict)
    n_ev: Counter[str] = Counter()
    for e in store.list_edges(schema.HAS_CAPABILITY):
        if e.dst.startswith("capmap:"):
            profiles[e.src][e.dst] = float(e.props["score"])
            weights[e.src][e.dst] = float(e.props.get("weight", 1.0))
            n_ev[e.src] += int(e.props["n_evidence"])
    eligible = {r: p for r, p in profiles.items() if n_ev[r] >= min_evidence}
    codes: dict[str, Counter[str]] = defaultdict(Counter)
    for ev in store.iter_nodes(schema.EVIDENCE):
        if ev["rep_id"] in eligible:
            codes[ev["rep_id"]][ev["code"]] += 1
    run = store.get_node(schema.RUN, capability_run)
    if run is None:
        raise NotFound(schema.RUN, capability_run)
    priors = json.loads(run["manifest_json"]).get("priors", {})
    no_evidence = sorted({r["id"] for r in store.iter_nodes(schema.REP)} - set(profiles))
    return LabelInputs(eligible, {r: weights[r] for r in eligible}, dict(codes), priors,
                       sorted(set(profiles) - set(eligible)), no_evidence)


def _carried(old: dict[str, Any] | None) -> dict[str, Any]:
    """What a label keeps from the previous run's label whose id it keeps: HR's decisions."""
    if old is None:
        return {}
    keep = {k: old[k] for k in ("approved", "status", "renamed", "reviewed_by", "reviewed_at") if old.get(k) is not None}
    if old.get("renamed") or old.get("approved"):
        keep.update({k: old[k] for k in ("name", "name_zh") if old.get(k) is not None})
    return keep


def cluster_labels(store: GraphStore, capability_run: str, min_evidence: int, min_cluster_size: int, seed: int,
                   *, max_distance: float = MAX_DISTANCE) -> dict[str, Any]:
    """Cluster reps with enough evidence on capmap's sales skills; write labels, IN_LABEL and a Run.

    A label keeps the id of the previous run's profile label whose centroid is within
    ``max_distance`` (clustering/lineage.py), and with it HR's rename and approval; unmatched
    previous labels are deleted (the run's manifest records them as retired, with the label they
    merged into). Emergent labels are not touched. Too few reps: nothing is written and the result
    says why in ``message``."""
    inputs = label_inputs(store, capability_run, min_evidence)
    out: dict[str, Any] = {"n_labels": 0, "n_outliers": 0, "outlier_share": 0.0, "n_clustered": 0,
                           "excluded_low_evidence": len(inputs.low_evidence), "excluded_no_evidence": len(inputs.no_evidence)}
    try:
        res = cluster_reps(inputs.profiles, inputs.codes, skill_names(store), inputs.priors, weights=inputs.weights,
                           min_cluster_size=min_cluster_size, seed=seed)
    except NotEnoughData as e:
        log.warning("clustering skipped: %s", e)
        return {**out, "message": f"clustering skipped, previous labels kept: {e}"}
    previous = {x["id"]: x for x in store.iter_nodes(schema.CAPABILITY_LABEL) if x.get("kind", LABEL_KIND) == LABEL_KIND}
    lineage = _match_previous(res, previous, max_distance)
    ids = [lineage.id_of(li.index) for li in res.labels]
    retired = _retired(lineage, previous, ids)
    key = json.dumps([sorted(res.assignment.items()), ids, sorted(previous), res.params], sort_keys=True)
    run_id = "run:labels:" + hashlib.sha256(key.encode()).hexdigest()[:12]
    labels = _label_nodes(res, lineage, previous, run_id)
    manifest = _labels_manifest(inputs, res, lineage, retired, capability_run, min_evidence)
    _write_labels(store, res, ids, sorted(set(previous) - set(ids)), labels, run_id, manifest)
    return {**out, "run_id": run_id, "n_labels": len(labels), "n_outliers": len(res.outliers),
            "outlier_share": res.outlier_share, "n_clustered": len(res.rep_ids), "lineage": lineage.counts(),
            "labels": [{"id": lb.id, "name": lb.name, "n_members": lb.n_members, "top_codes": list(lb.top_codes),
                        "top_skills": list(lb.top_skills), "approved": lb.approved,
                        "event": json.loads(lb.lineage_json)["event"]} for lb in labels],
            "retired": retired}


def _match_previous(res: Clustering, previous: dict[str, dict[str, Any]], max_distance: float) -> Lineage:
    """Match the run's labels to the previous run's labels stored with a centroid."""
    return match_labels([PreviousLabel(i, tuple(x.get("centroid") or ()), tuple(x.get("feature_names") or ()))
                         for i, x in previous.items() if x.get("centroid")],
                        [li.centroid for li in res.labels], res.feature_names, [li.members for li in res.labels],
                        max_distance=max_distance)


def _retired(lineage: Lineage, previous: dict[str, dict[str, Any]], ids: list[str]) -> list[dict[str, Any]]:
    """The previous labels whose id no label of the run keeps: those lineage retired, then those
    stored without a centroid."""
    return [json.loads(e.to_json()) for e in lineage.retired] + [
        {"label_id": i, "event": "retired", "reason": "stored without a centroid"}
        for i, x in sorted(previous.items()) if not x.get("centroid") and i not in ids]


def _labels_manifest(inputs: LabelInputs, res: Clustering, lineage: Lineage, retired: list[dict[str, Any]],
                     capability_run: str, min_evidence: int) -> dict[str, Any]:
    return {"kind": "labels", "capability_run": capability_run, "min_evidence": min_evidence, "params": res.params,
            "versions": run_manifest("labels", {}, [], "")["versions"], "n_clustered": len(res.rep_ids),
            "n_outliers": len(res.outliers), "outlier_share": res.outlier_share,
            "excluded": {"low_evidence": len(inputs.low_evidence), "no_evidence": len(inputs.no_evidence)},
            "input_hash": hashlib.sha256(json.dumps([inputs.profiles, inputs.weights, inputs.priors],
                                                    sort_keys=True).encode()).hexdigest(),
            "lineage": [json.loads(e.to_json()) for e in lineage.entries if e.event != "retired"] + retired}


def _write_labels(store: GraphStore, res: Clustering, ids: list[str], gone: list[str], labels: list[CapabilityLabel],
                  run_id: str, manifest: dict[str, Any]) -> None:
    """One change: every clustered rep's IN_LABEL edges replaced, the ``gone`` labels deleted, the
    run and its labels written."""
    in_label = sorted({e.src for e in store.list_edges(schema.IN_LABEL)} | set(res.rep_ids))
    change = ChangeSet(delete_edges=[(schema.IN_LABEL, schema.REP, in_label)] if in_label else [],
                       delete_nodes=[(schema.CAPABILITY_LABEL, gone)] if gone else [])
    change.add_nodes([Run(id=run_id, kind="labels", started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          manifest_json=json.dumps(manifest, sort_keys=True))])
    change.add_nodes(labels)
    change.add_edges(schema.IN_LABEL, schema.REP, schema.CAPABILITY_LABEL,
                     [{"src": r, "dst": ids[k], "probability": res.probability[r]}
                      for r, k in sorted(res.assignment.items()) if k >= 0])
    store.apply(change)


def _label_nodes(res: Clustering, lineage: Lineage, previous: dict[str, dict[str, Any]], run_id: str) -> list[CapabilityLabel]:
    """The run's labels, each with its lineage entry and what it keeps of the label whose id it keeps."""
    out = []
    for li in res.labels:
        entry = lineage.entry_of(li.index)
        row: dict[str, Any] = {
            "id": entry.label_id, "name": li.name, "name_zh": li.name_zh, "auto_name": li.name, "auto_name_zh": li.name_zh,
            "top_skills": li.top_skills, "top_codes": li.top_codes, "n_members": len(li.members), "run_id": run_id,
            "kind": LABEL_KIND, "centroid": li.centroid, "feature_names": tuple(res.feature_names),
            "lineage_json": entry.to_json(),
            "mean_probability": round(sum(res.probability[r] for r in li.members) / len(li.members), 4)}
        out.append(CapabilityLabel(**{**row, **_carried(previous.get(entry.label_id))}))
    return out


STABILITY_DEFINITION = (
    "mean adjusted Rand index over n_pairs pairs of bootstrap resamples of the reps with enough evidence "
    "(n draws with replacement, seeds [seed, pair, 0] and [seed, pair, 1]); each resample clustered with the "
    "job's settings (a rep drawn k times counts k times); compared on the reps drawn in both, outliers as one group")


def measure_label_stability(store: GraphStore, capability_run: str, min_evidence: int, min_cluster_size: int,
                            seed: int, n_pairs: int = 5) -> dict[str, Any]:
    """How stable the labels are under resampling (see ``clustering.labels.label_stability``)."""
    inputs = label_inputs(store, capability_run, min_evidence)
    st = label_stability(inputs.profiles, inputs.priors, weights=inputs.weights, n_pairs=n_pairs, seed=seed,
                         min_cluster_size=min_cluster_size)
    return {"ari": None if st.ari != st.ari else st.ari, "aris": list(st.aris), "n_common": list(st.n_common),
            "n_pairs": n_pairs, "definition": STABILITY_DEFINITION}


def rename_label(store: GraphStore, label_id: str, name: str, name_zh: str | None = None,
                 reviewer: str | None = None) -> dict[str, Any]:
    """HR names a capability label; the name is kept by later runs as long as the label's id is.

    Raises NotFound for an unknown label and InputError for a blank name."""
    name = name.strip()
    if not name:
        raise InputError("renameLabel", None, "name", "a label name must not be blank")
    if store.get_node(schema.CAPABILITY_LABEL, label_id) is None:
        raise NotFound(schema.CAPABILITY_LABEL, label_id)
    row: dict[str, Any] = {"id": label_id, "name": name, "renamed": True, "reviewed_by": reviewer,
                           "reviewed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if name_zh is not None and name_zh.strip():
        row["name_zh"] = name_zh.strip()
    store.apply(ChangeSet().add_rows(schema.CAPABILITY_LABEL, [row]))
    got = store.get_node(schema.CAPABILITY_LABEL, label_id)
    assert got is not None
    return got


def review_label(store: GraphStore, label_id: str, decision: str, reviewer: str | None = None) -> dict[str, Any]:
    """Record a human's decision on a capability label: ``"approve"`` or ``"reject"``.

    Raises NotFound for an unknown label and ValueError for another decision."""
    status = {"approve": "approved", "reject": "rejected"}.get(decision)
    if status is None:
        raise ValueError(f"decision must be 'approve' or 'reject', not {decision!r}")
    if store.get_node(schema.CAPABILITY_LABEL, label_id) is None:
        raise NotFound(schema.CAPABILITY_LABEL, label_id)
    row = {"id": label_id, "status": status, "approved": status == "approved", "reviewed_by": reviewer,
           "reviewed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    store.apply(ChangeSet().add_rows(schema.CAPABILITY_LABEL, [row]))
    got = store.get_node(schema.CAPABILITY_LABEL, label_id)
    assert got is not None
    return got


def approve_label(store: GraphStore, label_id: str, reviewer: str | None = None) -> dict[str, Any]:
    """Approve a (proposed) capability label; returns the label as stored."""
    return review_label(store, label_id, "approve", reviewer)


def reject_label(store: GraphStore, label_id: str, reviewer: str | None = None) -> dict[str, Any]:
    """Reject a (proposed) capability label; it stays stored, marked rejected, so a rerun keeps the decision."""
    return review_label(store, label_id, "reject", reviewer)
