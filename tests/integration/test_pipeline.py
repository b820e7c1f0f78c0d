"""The main job end to end on a real-data slice: the same figures on both stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api import jobs
from api.demo import run_demo
from api.settings import Settings
from conftest import _neo4j_store
from graph import schema
from graph.model import Run
from graph.sqlite_store import SqliteStore
from graph.store import ChangeSet

SAME = ("n_reps", "n_skills", "n_deals", "n_events", "n_evidence", "n_capabilities", "n_labels", "n_outliers",
        "labels", "team", "growth_path", "coder", "ingest", "capability_run")


def _same(summary: dict) -> dict:  # type: ignore[type-arg]
    """The figures both stores must agree on (each run's rejects files by name: the out folders differ)."""
    out = {k: summary[k] for k in SAME}
    out["ingest"] = {src: {**r, "rejects_file": r["rejects_file"] and Path(r["rejects_file"]).name}
                     for src, r in summary["ingest"].items()}
    return out


def _settings(slice_dirs: dict[str, Path], out: Path) -> Settings:
    return Settings(seeds_dir=slice_dirs["seeds"], data_dir=slice_dirs["data"], out_dir=out,
                    min_cluster_size=5, min_evidence_for_clustering=5)


@pytest.mark.neo4j
def test_main_job_gives_the_same_summary_on_both_stores(slice_dirs: dict[str, Path], tmp_path: Path,
                                                        neo4j_server: object) -> None:
    lite = SqliteStore(tmp_path / "a.sqlite")
    a = run_demo(lite, _settings(slice_dirs, tmp_path / "a"))
    lite.close()
    neo = _neo4j_store(neo4j_server)
    b = run_demo(neo, _settings(slice_dirs, tmp_path / "b"))
    neo.close()  # type: ignore[attr-defined]
    assert (a["store"], b["store"]) == ("sqlite", "neo4j")
    assert _same(a) == _same(b)
    assert (tmp_path / "a" / "rejects-xapi.jsonl").read_text(encoding="utf-8") == (
        tmp_path / "b" / "rejects-xapi.jsonl").read_text(encoding="utf-8")
    assert a["team"]["members"] and a["n_evidence"] > 1000
    assert json.loads((tmp_path / "b" / "demo-summary.json").read_text(encoding="utf-8"))["store"] == "neo4j"


def test_a_stale_scoring_run_does_not_change_the_labels(slice_dirs: dict[str, Path], tmp_path: Path) -> None:
    """Regression: clustering read the priors of the Run whose id sorted last, not of the run
    it was given, so an old run left in the store changed the labels."""
    st = SqliteStore(tmp_path / "s.sqlite")
    run_demo(st, _settings(slice_dirs, tmp_path / "out"))
    run_id = st.list_nodes(schema.RUN, where={"kind": "capabilities"})[0]["id"]
    before = jobs.cluster_labels(st, run_id, 5, 5, 0)
    skills = {e.dst for e in st.list_edges(schema.HAS_CAPABILITY)}
    stale = {"priors": {s: 0.0 for s in skills}}
    st.apply(ChangeSet().add_nodes([Run(id="run:cap:zzzzzzzzzzzz", kind="capabilities", manifest_json=json.dumps(stale))]))
    after = jobs.cluster_labels(st, run_id, 5, 5, 0)
    assert after == before
    assert jobs.cluster_labels(st, "run:cap:zzzzzzzzzzzz", 5, 5, 0) != before
    st.close()
