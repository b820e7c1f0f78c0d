"""capmap's jobs, sequenced: ingest → code → score → cluster. The orchestrator only sequences;
each stage lives in its own part (ingest/, clustering/, matching/). The label jobs live in
api/label_jobs.py, the scenario bundle and emergent capability jobs in api/bundle_jobs.py, what
jobs share in api/job_common.py; every public name is importable from here too."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GroupKFold

from api.bundle_jobs import BUNDLE_FEATURES as BUNDLE_FEATURES
from api.bundle_jobs import compute_scenario_bundles as compute_scenario_bundles
from api.bundle_jobs import outcome_codes as outcome_codes
from api.bundle_jobs import propose_emergent_labels as propose_emergent_labels
from api.bundle_jobs import unexplained_units as unexplained_units
from api.job_common import run_manifest, skill_names
from api.label_jobs import LABEL_KIND as LABEL_KIND
from api.label_jobs import STABILITY_DEFINITION as STABILITY_DEFINITION
from api.label_jobs import LabelInputs as LabelInputs
from api.label_jobs import approve_label as approve_label
from api.label_jobs import cluster_labels as cluster_labels
from api.label_jobs import label_inputs as label_inputs
from api.label_jobs import measure_label_stability as measure_label_stability
from api.label_jobs import reject_label as reject_label
from api.label_jobs import rename_label as rename_label
from api.label_jobs import review_label as review_label
from clustering.scoring import ScoringParams, reference_time, score_capabilities
from graph import schema
from graph.model import Run
from graph.store import ChangeSet, GraphStore
from ingest import parallel
from ingest.catalogue import load_catalogue, load_skills
from ingest.codebook import Codebook, load_codebook
from ingest.coders import TextCoder, Unit
from ingest.crm import iter_crm
from ingest.onet import load_onet
from ingest.p4g import AnnotatedUnit, coder_label, iter_p4g, read_annotated, read_p4g
from ingest.report import IngestReport
from ingest.units import apply_all
from ingest.xapi import load_xapi

log = logging.getLogger(__name__)


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
    rejects_dir: Path | None = None,
) -> dict[str, dict[str, object]]:
    """Load every behaviour source there is; return each source's report summary. With
    ``rejects_dir``, each source's rejected records go to ``rejects-<source>.jsonl`` there
    (named in its summary), and a file left by an earlier import without rejects is removed."""
    p4g_dir = p4g_dir or seeds / "persuasionforgood"
    crm = crm_dir or (data_dir / "crm_sales_opportunities" if data_dir else None)
    # Each source is read and coded in worker processes while this one writes the units as they
    # come (ingest.parallel); the workers also encode the units for the store (checking every
    # row), which leaves this process little more than the writes. Sources write disjoint nodes
    # and implied relationships don't depend on arrival order, so the order of units doesn't
    # matter. One producer per worker, as a producer more than there are workers costs more than
    # it gives (on 2 CPUs a shard per CPU beside the CRM's took about 8 % more CPU time): the CRM
    # export starts first, in one; PersuasionForGood, most of the coding, in one shard of its
    # dialogues per worker left (at least one). Several shards inherit what was read here
    # meanwhile; a single shard reads it itself, leaving this process only the writes. The CRM's
    # is the shorter job and runs at a lower priority than the shards, so the coding that ends
    # the import is never held up by it (on 2 CPUs about 8 % more events/s). BLAS and OpenMP run
    # one thread each, here and in the workers.
    with parallel.one_thread_each():
        reports = _ingest_in_workers(store, seeds, codebook, coder, p4g_dir, crm, xapi_paths)
    return {name: report.summary(None if rejects_dir is None else report.settle_rejects(
        Path(rejects_dir) / f"rejects-{name}.jsonl")) for name, report in reports.items()}


def _ingest_in_workers(
    store: GraphStore, seeds: Path, codebook: Codebook, coder: TextCoder | None, p4g_dir: Path, crm: Path | None,
    xapi_paths: list[Path] | None,
) -> dict[str, IngestReport]:
    names = skill_names(store)
    out: dict[str, IngestReport] = {}
    producers: list[parallel.Producer[Any, Any]] = []
    if crm is not None and (crm / "sales_pipeline.csv").is_file():
        producers += parallel.start([("crm", parallel.mapped(partial(iter_crm, crm, codebook, names), store.prepare))],
                                    niceness=parallel.FILLER_NICENESS)
    else:
        log.warning("no CRM data folder (crm_sales_opportunities/) found; CRM deals are skipped")
    p4g: list[parallel.Producer[Any, Any]] = []
    try:
        shards = max(1, parallel.worker_count() - len(producers))
        data = read_p4g(p4g_dir) if shards > 1 else None
        p4g = parallel.start(
            [(f"p4g-{k}", parallel.mapped(partial(iter_p4g, p4g_dir, codebook, coder, names, data=data,
                                                  shard=(k, shards)), store.prepare)) for k in range(shards)],
            joining=producers,
        )
        apply_all(store, parallel.interleave(p4g + producers))
    finally:  # e.g. unreadable files: stop the workers already started
        for p in p4g + producers:
            p.close()
    report = IngestReport("p4g")
    for p in p4g:
        assert isinstance(p.result, IngestReport)
        report.merge(p.result)
    out["p4g"] = report
    for p in producers:
        assert isinstance(p.result, IngestReport)
        out[p.name] = p.result
    paths = xapi_paths if xapi_paths is not None else sorted((seeds / "xapi").glob("*.json"))
    if paths:
        units, rep = load_xapi(paths, codebook, names, store=store)
        apply_all(store, units)
        out["xapi"] = rep
    return out


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
    manifest = run_manifest(kind, asdict(params), evidence, codebook_version)
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
