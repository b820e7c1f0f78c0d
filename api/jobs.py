"""capmap's jobs, sequenced: ingest → code → score → cluster. The orchestrator only sequences;
each stage lives in its own part (ingest/, clustering/, matching/)."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GroupKFold

from clustering.bundles import Bundle, deal_observations, rep_observations, requires_rows, scenario_bundles
from clustering.emergent import EmergentTopics, TextUnit, propose_labels
from clustering.labels import Clustering, cluster_reps, label_stability
from clustering.lineage import MAX_DISTANCE, Lineage, PreviousLabel, match_labels
from clustering.scoring import ScoringParams, reference_time, score_capabilities
from graph import schema
from graph.errors import InputError, NotEnoughData, NotFound
from graph.model import CapabilityLabel, Run
from graph.store import ChangeSet, GraphStore
from ingest.catalogue import load_catalogue, load_skills
from ingest.codebook import Codebook, load_codebook
from ingest.coders import TextCoder, Unit
from ingest.crm import load_crm
from ingest.onet import load_onet
from ingest.p4g import AnnotatedUnit, coder_label, load_p4g, read_annotated
from ingest.report import IngestReport
from ingest.text import sentence_units
from ingest.units import apply_all
from ingest.xapi import load_xapi

log = logging.getLogger(__name__)


def skill_names(store: GraphStore) -> dict[str, tuple[str, str]]:
    return {s["id"]: (str(s.get("name", s["id"])), str(s.get("name_zh") or s.get("name", s["id"])))
            for s in store.iter_nodes(schema.SKILL)}


def load_reference(store: GraphStore, seeds: Path) -> IngestReport:
    """Skills (O*NET and capmap's), role profiles and the learning catalogue."""
    change, report = load_onet(seeds / "onet")
    store.apply(change)
    store.apply(load_skills(seeds / "skills.json"))
    store.apply(load_catalogue(seeds / "learning_resources.json"))
    return report


def codebook_for(store: GraphStore, seeds: Path) -> Codebook:
    known = {s["id"] for s in store.iter_nodes(schema.SKILL)}
    return load_codebook(seeds / "codebook" / "bec-v1.json", known_skills=known or None)


@dataclass(frozen=True)
class CoderScore:
    macro_f1: float
    accuracy: float
    n_units: int
    n_dialogues: int
    folds: int


def training_units(annotated_csv: Path, classes: tuple[str, ...]) -> tuple[list[Unit], list[str], list[str]]:
    """The persuader's annotated units with the context :class:`TextCoder` uses, their coder
    classes and their dialogue ids. The persuadee's reply to turn ``t`` is the ``prev_text`` of
    the persuader's next turn (none after the persuader's last turn)."""
    annotated = read_annotated(annotated_csv)
    turns: dict[str, dict[int, list[AnnotatedUnit]]] = defaultdict(lambda: defaultdict(list))
    for u in annotated:
        turns[u.dialogue][u.turn].append(u)
    units, labels, groups = [], [], []
    for u in annotated:
        numbers = sorted(turns[u.dialogue])
        at = numbers.index(u.turn)
        own = turns[u.dialogue][u.turn]
        i = own.index(u)
        units.append(Unit(
            u.text, u.prev_text, u.turn, u.index_in_turn,
            next_text=turns[u.dialogue][numbers[at + 1]][0].prev_text if at + 1 < len(numbers) else "",
            prev_own_text=own[i - 1].text if i > 0 else "",
            next_own_text=own[i + 1].text if i + 1 < len(own) else "",
            prev_turn_text=" ".join(x.text for x in turns[u.dialogue][numbers[at - 1]]) if at > 0 else "",
            dialogue_turns=numbers[-1] + 1, dialogue=u.dialogue))
        labels.append(coder_label(u.label, classes))
        groups.append(u.dialogue)
    return units, labels, groups


def evaluate_coder(units: list[Unit], labels: list[str], groups: list[str], make: Any, folds: int = 5) -> CoderScore:
    """Grouped k-fold cross-validation (by dialogue): macro-F1 and accuracy over all folds."""
    y = np.array(labels)
    pred = np.empty(len(y), dtype=object)
    for tr, te in GroupKFold(n_splits=folds).split(units, y, groups):
        model = make().fit([units[i] for i in tr], y[tr].tolist())
        pred[te] = model.predict([units[i] for i in te])
    return CoderScore(round(float(f1_score(y, pred.astype(str), average="macro")), 4),
                      round(float(accuracy_score(y, pred.astype(str))), 4), len(y), len(set(groups)), folds)


def train_coder(seeds: Path, codebook: Codebook, seed: int = 0, evaluate: bool = True) -> tuple[TextCoder, CoderScore | None]:
    units, labels, groups = training_units(seeds / "persuasionforgood" / "annotated_300_dialog.csv",
                                           codebook.text_coder_classes)
    score = evaluate_coder(units, labels, groups, lambda: TextCoder(random_state=seed)) if evaluate else None
    return TextCoder(random_state=seed).fit(units, labels), score


def ingest_sources(
    store: GraphStore, seeds: Path, data_dir: Path | None, codebook: Codebook, coder: TextCoder | None,
    p4g_dir: Path | None = None, crm_dir: Path | None = None, xapi_paths: list[Path] | None = None,
) -> dict[str, dict[str, object]]:
    """Load every behaviour source there is; return each source's report summary."""
    names = skill_names(store)
    out: dict[str, dict[str, object]] = {}
    p4g_dir = p4g_dir or seeds / "persuasionforgood"
    units, rep = load_p4g(p4g_dir, codebook, coder, names)
    apply_all(store, units)
    out["p4g"] = rep.summary()
    crm = crm_dir or (data_dir / "crm_sales_opportunities" if data_dir else None)
    if crm is not None and (crm / "sales_pipeline.csv").is_file():
        units, rep = load_crm(crm, codebook, names)
        apply_all(store, units)
        out["crm"] = rep.summary()
    else:
        log.warning("no CRM data folder (crm_sales_opportunities/) found; CRM deals are skipped")
    paths = xapi_paths if xapi_paths is not None else sorted((seeds / "xapi").glob("*.json"))
    if paths:
        units, rep = load_xapi(paths, codebook, names, store=store)
        apply_all(store, units)
        out["xapi"] = rep.summary()
    return out


def _manifest(kind: str, params: dict[str, Any], evidence: list[dict[str, Any]], codebook_version: str) -> dict[str, Any]:
    import hdbscan
    import scipy
    import sklearn

    h = hashlib.sha256()
    for e in sorted(evidence, key=lambda e: e["id"]):
        h.update(f'{e["id"]}|{e["level"]}|{e["confidence"]}|{e["credibility"]}|{e.get("state")}|{e.get("at")}\n'.encode())
    return {"kind": kind, "params": params, "codebook_version": codebook_version, "input_hash": h.hexdigest(),
            "n_evidence": len(evidence),
            "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                         "scikit-learn": sklearn.__version__, "hdbscan": getattr(hdbscan, "__version__", "unknown")}}


def latest_full_run(store: GraphStore) -> dict[str, Any] | None:
    """The newest full capability run (its manifest holds the priors and the recency anchor)."""
    runs = store.list_nodes(schema.RUN, where={"kind": "capabilities"})
    return max(runs, key=lambda r: (r.get("started_at", ""), r["id"])) if runs else None


def recompute_capabilities(
    store: GraphStore, params: ScoringParams, codebook_version: str, reps: Sequence[str] | None = None
) -> tuple[str, int]:
    """Score rep × skill capabilities from the evidence in the store; write HAS_CAPABILITY and a Run.

    With ``reps`` (e.g. the reps an import touched) and a previous full run, only those reps are
    rescored, against the full run's population priors and recency anchor, so their figures are
    what a full run would give as long as the population has not moved; a full run (``reps``
    None) re-anchors both. Every run records a manifest: parameters, codebook and library
    versions, input hash, priors, anchor, and for an incremental run its parent run.
    """
    broader = {e.src: e.dst for e in store.list_edges(schema.BROADER)}
    base = latest_full_run(store) if reps is not None else None
    if base is None:
        evidence = list(store.iter_nodes(schema.EVIDENCE))
        kind, priors, ref_ts = "capabilities", None, reference_time(evidence)
    else:
        evidence = [e for r in sorted(set(reps or ())) for e in store.list_nodes(schema.EVIDENCE, where={"rep_id": r})]
        parent = json.loads(base["manifest_json"])
        kind, priors, ref_ts = "capabilities-incremental", parent["priors"], parent.get("ref_ts")
    manifest = _manifest(kind, asdict(params), evidence, codebook_version)
    if base is not None:
        manifest["parent_run"] = base["id"]
    run_id = ("run:cap:" if base is None else "run:capinc:") + hashlib.sha256(
        (manifest["input_hash"] + (base["id"] if base else "")).encode()).hexdigest()[:12]
    caps, priors = score_capabilities(evidence, broader, run_id, params, ref_ts=ref_ts, priors=priors)
    manifest["priors"], manifest["ref_ts"] = priors, ref_ts
    scored = sorted({e["rep_id"] for e in evidence} | set(reps or ()))
    change = ChangeSet(delete_edges=[(schema.HAS_CAPABILITY, schema.REP, scored)])
    change.add_nodes([Run(id=run_id, kind=kind, started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          manifest_json=json.dumps(manifest, sort_keys=True))])
    change.add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL, [c.to_edge() for c in caps])
    store.apply(change)
    return run_id, len(caps)


def touched_reps(units: Sequence[ChangeSet]) -> list[str]:
    """The reps whose events a set of import units writes (what an incremental recompute redoes)."""
    return sorted({r["rep_id"] for u in units for r in u.nodes.get(schema.EVENT, []) if r.get("rep_id")})


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
    lineage = match_labels([PreviousLabel(i, tuple(x.get("centroid") or ()), tuple(x.get("feature_names") or ()))
                            for i, x in previous.items() if x.get("centroid")],
                           [li.centroid for li in res.labels], res.feature_names, [li.members for li in res.labels],
                           max_distance=max_distance)
    ids = [lineage.id_of(li.index) for li in res.labels]
    retired = [json.loads(e.to_json()) for e in lineage.retired] + [
        {"label_id": i, "event": "retired", "reason": "stored without a centroid"}
        for i, x in sorted(previous.items()) if not x.get("centroid") and i not in ids]
    key = json.dumps([sorted(res.assignment.items()), ids, sorted(previous), res.params], sort_keys=True)
    run_id = "run:labels:" + hashlib.sha256(key.encode()).hexdigest()[:12]
    labels = _label_nodes(res, lineage, previous, run_id)
    manifest = {"kind": "labels", "capability_run": capability_run, "min_evidence": min_evidence, "params": res.params,
                "versions": _manifest("labels", {}, [], "")["versions"], "n_clustered": len(res.rep_ids),
                "n_outliers": len(res.outliers), "outlier_share": res.outlier_share,
                "excluded": {"low_evidence": len(inputs.low_evidence), "no_evidence": len(inputs.no_evidence)},
                "input_hash": hashlib.sha256(json.dumps([inputs.profiles, inputs.weights, inputs.priors],
                                                        sort_keys=True).encode()).hexdigest(),
                "lineage": [json.loads(e.to_json()) for e in lineage.entries if e.event != "retired"] + retired}
    in_label = sorted({e.src for e in store.list_edges(schema.IN_LABEL)} | set(res.rep_ids))
    gone = sorted(set(previous) - set(ids))
    change = ChangeSet(delete_edges=[(schema.IN_LABEL, schema.REP, in_label)] if in_label else [],
                       delete_nodes=[(schema.CAPABILITY_LABEL, gone)] if gone else [])
    change.add_nodes([Run(id=run_id, kind="labels", started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          manifest_json=json.dumps(manifest, sort_keys=True))])
    change.add_nodes(labels)
    change.add_edges(schema.IN_LABEL, schema.REP, schema.CAPABILITY_LABEL,
                     [{"src": r, "dst": ids[k], "probability": res.probability[r]}
                      for r, k in sorted(res.assignment.items()) if k >= 0])
    store.apply(change)
    return {**out, "run_id": run_id, "n_labels": len(labels), "n_outliers": len(res.outliers),
            "outlier_share": res.outlier_share, "n_clustered": len(res.rep_ids), "lineage": lineage.counts(),
            "labels": [{"id": lb.id, "name": lb.name, "n_members": lb.n_members, "top_codes": list(lb.top_codes),
                        "top_skills": list(lb.top_skills), "approved": lb.approved,
                        "event": json.loads(lb.lineage_json)["event"]} for lb in labels],
            "retired": retired}


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


# -- scenario bundles and emergent capabilities ------------------------------------------------

BUNDLE_FEATURES = {"crm": "rep"}
"""How a source's deals are observed for scenario bundles (default ``"deal"``): a CRM deal's only
in-deal behaviour is its stage changes (every deal is Engaging; Won/Lost *is* the outcome), so a
CRM deal is observed through its reps' skills outside it (see clustering/bundles.py)."""


def outcome_codes(codebook: Codebook) -> set[str]:
    """The codes that *are* a deal's outcome (stage changes to Won or Lost): never a predictor."""
    return {c.code for c in codebook.codes.values() if c.event_stage in ("Won", "Lost")}


def compute_scenario_bundles(
    store: GraphStore, codebook: Codebook, *, alpha: float = 0.05, min_support: float = 0.1, min_deals: int = 10,
    features_by_source: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Find each scenario's bundle from its won and lost deals; write REQUIRES edges and a Run.

    Presence features exclude the outcome: evidence of :func:`outcome_codes` never counts for the
    deal it codes, and levels are the codebook's base levels (before the coder's "in an engagement
    that was won" upgrade). Every Scenario's previous REQUIRES edges are replaced; a scenario
    where nothing is significant keeps none, and its explanation says why."""
    features = BUNDLE_FEATURES if features_by_source is None else features_by_source
    deals = [d for d in store.iter_nodes(schema.DEAL) if d.get("outcome") in ("won", "lost") and d.get("scenario_id")]
    event_deal = {e["id"]: e["deal_id"] for e in store.iter_nodes(schema.EVENT) if e.get("deal_id")}
    evidence = list(store.iter_nodes(schema.EVIDENCE))
    deal_reps: dict[str, list[str]] = defaultdict(list)
    for e in store.list_edges(schema.WORKED_ON):
        deal_reps[e.dst].append(e.src)
    base = {c.code: c.level for c in codebook.codes.values()}
    by_mode: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in deals:
        by_mode[features.get(str(d.get("source", "")), "deal")].append(d)
    obs = deal_observations(by_mode["deal"], evidence, event_deal, base, outcome_codes(codebook))
    obs += rep_observations(by_mode["rep"], evidence, event_deal, deal_reps, base)
    names = skill_names(store)
    bundles = scenario_bundles(obs, alpha=alpha, min_support=min_support, min_deals=min_deals,
                               skill_name=lambda s: names.get(s, (s, s))[0])
    params = {"alpha": alpha, "min_support": min_support, "min_deals": min_deals, "features_by_source": features,
              "test": "Fisher exact, two-sided", "correction": "Benjamini-Hochberg over all scenario x skill tests",
              "excluded_codes": sorted(outcome_codes(codebook)), "levels": "codebook base level"}
    manifest = _manifest("bundles", params, evidence, codebook.version)
    manifest["deals_hash"] = hashlib.sha256("".join(f"{d['id']}|{d['outcome']}|{d['scenario_id']}\n" for d in
                                                    sorted(deals, key=lambda d: d["id"])).encode()).hexdigest()
    run_id = "run:bundles:" + hashlib.sha256((manifest["input_hash"] + manifest["deals_hash"] +
                                              json.dumps(params, sort_keys=True)).encode()).hexdigest()[:12]
    scenarios = {s["id"]: s for s in store.iter_nodes(schema.SCENARIO)}
    out = [_bundle_summary(b, scenarios.get(b.scenario_id, {}), names) for b in bundles]
    manifest["bundles"] = out
    change = ChangeSet(delete_edges=[(schema.REQUIRES, schema.SCENARIO, sorted(scenarios))] if scenarios else [])
    change.add_nodes([Run(id=run_id, kind="bundles", started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          manifest_json=json.dumps(manifest, sort_keys=True))])
    rows = requires_rows(bundles, run_id)
    explained = {b.scenario_id: b for b in bundles}
    for r in rows:
        t = next(t for t in explained[r["src"]].required if t.skill_id == r["dst"])
        r["explanation"] = f"from {t.n_won} won vs {t.n_lost} lost; {t.describe(names.get(t.skill_id, (t.skill_id,))[0])}"
    change.add_edges(schema.REQUIRES, schema.SCENARIO, schema.SKILL, rows)
    store.apply(change)
    tested = [t for b in bundles for t in b.tests]
    return {"run_id": run_id, "alpha": alpha, "n_scenarios": len(bundles), "n_tests": len(tested),
            "n_required": len(rows), "bundles": out}


def _bundle_summary(b: Bundle, scenario: dict[str, Any], names: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return {"id": b.scenario_id, "name": scenario.get("name", b.scenario_id), "n_won": b.n_won, "n_lost": b.n_lost,
            "features": b.features,
            "required": [{"skill": t.skill_id, "skill_name": names.get(t.skill_id, (t.skill_id,))[0], "level": t.level,
                          "support": round(t.support, 4), "support_lost": round(t.support_lost, 4),
                          "lift": round(t.lift, 4), "p": t.p, "q": t.q} for t in b.required],
            "n_tests": len(b.tests), "explanation": b.explanation}


def unexplained_units(store: GraphStore, min_confidence: float = 0.5) -> dict[str, list[TextUnit]]:
    """Sentence units of utterances in won and in lost engagements that no evidence explains well:
    no evidence with at least ``min_confidence`` covers their span (non-strategy and low-confidence
    units). Returns ``{"won": [...], "lost": [...]}``."""
    outcome = {d["id"]: d["outcome"] for o in ("won", "lost") for d in store.iter_nodes(schema.DEAL, where={"outcome": o})}
    spans: dict[str, list[tuple[int | None, int | None]]] = defaultdict(list)
    for e in store.iter_nodes(schema.EVIDENCE):
        if float(e.get("confidence", 0.0)) >= min_confidence and e.get("state") != "rejected":
            spans[e["event_id"]].append((e.get("span_start"), e.get("span_end")))
    units: dict[str, list[TextUnit]] = {"won": [], "lost": []}
    for ev in store.iter_nodes(schema.EVENT):
        o = outcome.get(ev.get("deal_id") or "")
        text = ev.get("text") or ""
        if o is None or ev.get("type") != "utterance" or not text:
            continue
        raw = spans.get(ev["id"], [])
        if any(a is None or b is None for a, b in raw):
            continue  # evidence on the whole event: explained
        covered = [(int(a or 0), int(b or 0)) for a, b in raw]
        for a, b in sentence_units(text):
            if not any(s < b and a < t for s, t in covered):
                units[o].append(TextUnit(f"{ev['id']}:{a}", ev["rep_id"], text[a:b]))
    return units


def propose_emergent_labels(store: GraphStore, seed: int = 0, min_confidence: float = 0.5) -> dict[str, Any]:
    """Cluster what won engagements say that no code explains; store each cluster as a proposed
    emergent CapabilityLabel (``kind="emergent"``, ``status="proposed"``) for a human to review.

    A rerun replaces the proposals still awaiting review and keeps every human decision: a
    proposal approved or rejected before keeps its status when the same cluster comes back."""
    units = unexplained_units(store, min_confidence)
    try:
        proposals, model = propose_labels(units["won"], units["lost"], model=EmergentTopics(random_state=seed))
    except NotEnoughData as e:
        log.warning("emergent capabilities skipped: %s", e)
        return {"n_proposals": 0, "n_units_won": len(units["won"]), "n_units_lost": len(units["lost"]), "message": str(e)}
    h = hashlib.sha256("".join(f"{u.id}\n" for k in ("won", "lost") for u in units[k]).encode())
    run_id = f"run:emergent:{h.hexdigest()[:12]}"
    manifest = {"kind": "emergent", "params": {"seed": seed, "min_confidence": min_confidence, **model.get_params()},
                "k": model.k_, "silhouettes": model.silhouettes_, "n_units_won": len(units["won"]),
                "n_units_lost": len(units["lost"]), "proposals": [p.id for p in proposals]}
    old = {x["id"]: x for x in store.list_nodes(schema.CAPABILITY_LABEL, where={"kind": "emergent"})}
    kept = {i: x for i, x in old.items() if x.get("status") in ("approved", "rejected")}
    labels = [CapabilityLabel(id=p.id, name=p.name, name_zh="新兴能力：" + " / ".join(p.top_terms[:3]), kind="emergent",
                              status=kept.get(p.id, {}).get("status", "proposed"),
                              approved=kept.get(p.id, {}).get("status") == "approved",
                              top_terms=p.top_terms, examples=p.examples, member_reps=p.member_reps,
                              n_members=p.n_reps, run_id=run_id, explanation=p.explanation,
                              reviewed_by=kept.get(p.id, {}).get("reviewed_by"),
                              reviewed_at=kept.get(p.id, {}).get("reviewed_at")) for p in proposals]
    stale = sorted(set(old) - set(kept) - {p.id for p in proposals})
    change = ChangeSet(delete_nodes=[(schema.CAPABILITY_LABEL, stale)] if stale else [])
    change.add_nodes([Run(id=run_id, kind="emergent", started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          manifest_json=json.dumps(manifest, sort_keys=True))])
    change.add_nodes(labels)
    store.apply(change)
    return {"run_id": run_id, "n_units_won": len(units["won"]), "n_units_lost": len(units["lost"]), "k": model.k_,
            "silhouette": round(model.silhouette_, 4), "n_proposals": len(labels),
            "proposals": [{"id": lb.id, "name": lb.name, "status": lb.status, "top_terms": list(p.top_terms),
                           "n_units": p.n_units, "n_reps": p.n_reps, "lift": p.lift, "examples": list(p.examples)}
                          for lb, p in zip(labels, proposals, strict=True)]}


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
