"""As a user would: the demo on a real-data slice reports scenario bundles and emergent proposals,
then ``capmap report`` writes charts and pages, and ``capmap labels`` reviews a proposal."""

from __future__ import annotations

import html
import json
import os
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo(slice_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, str], Path]:
    tmp = tmp_path_factory.mktemp("reports")
    env = {**os.environ, "CAPMAP_SEEDS_DIR": str(slice_dirs["seeds"]), "CAPMAP_DATA_DIR": str(slice_dirs["data"]),
           "CAPMAP_STORE": f"sqlite:///{tmp / 'e2e.sqlite'}", "CAPMAP_OUT_DIR": str(tmp / "out"),
           "CAPMAP_MIN_CLUSTER_SIZE": "5", "CAPMAP_MIN_EVIDENCE_FOR_CLUSTERING": "5"}
    p = subprocess.run([str(BIN / "capmap"), "demo", "--json", "-q"], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1]), env, tmp


def _capmap(env: dict[str, str], *args: str) -> dict:
    p = subprocess.run([str(BIN / "capmap"), *args, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_demo_summary_has_scenario_bundles_and_emergent_proposals(demo: tuple[dict, dict[str, str], Path]) -> None:
    s, _, _ = demo
    bundles = {b["id"]: b for b in s["scenario_bundles"]}
    p4g = bundles["scn:p4g:individual-donor|first-contact|nonprofit"]
    assert p4g["n_won"] + p4g["n_lost"] == 70 and p4g["features"] == "deal"
    for b in bundles.values():
        assert b["explanation"].startswith(f"from {b['n_won']} won vs {b['n_lost']} lost deals")
        assert b["name"] and all({"skill", "level", "lift", "q"} <= set(r) for r in b["required"])
        assert all(r["q"] <= 0.05 and r["lift"] > 1 for r in b["required"])
    assert {b["features"] for b in bundles.values() if b["id"].startswith("scn:crm:")} <= {"rep"}
    em = s["emergent_labels"]
    assert "n_proposals" in em and em["n_units_won"] > 0
    for prop in em.get("proposals", []):
        assert prop["status"] == "proposed" and prop["top_terms"] and prop["lift"] >= 1.1


def test_report_rep_writes_a_radar_png_and_an_html_page_with_the_evidence(demo: tuple[dict, dict[str, str], Path]) -> None:
    s, env, tmp = demo
    rep = s["growth_path"]["rep"] if s["growth_path"] else s["team"]["members"][0]["rep"]
    out = tmp / "reports"
    res = _capmap(env, "report", "rep", rep, "--target", "onet-role:41-4011.00", "--out", str(out))
    png, page = Path(res["png"]), Path(res["html"])
    assert png.parent == out and page.parent == out
    w, h = _png_size(png)
    assert w >= 800 and h >= 600 and png.stat().st_size > 30_000
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and f'src="{png.name}"' in text
    db = sqlite3.connect(tmp / "e2e.sqlite")
    reasons = [json.loads(p)["reason"] for (p,) in db.execute(
        "SELECT props FROM nodes WHERE label = 'Evidence' AND json_extract(props, '$.rep_id') = ?", (rep,))]
    assert reasons and all(html.escape(r) in text for r in reasons[:50])
    for col in ("code", "skill", "level", "confidence", "credibility", "coder", "reason", "contribution"):
        assert f"<th>{col}</th>" in text
    default = _capmap(env, "report", "rep", rep, "--out", str(out))  # against the population mean
    assert Path(default["png"]).read_bytes()[:8] == PNG_SIGNATURE and default["target"] == "population"


def test_report_labels_writes_a_map(demo: tuple[dict, dict[str, str], Path]) -> None:
    s, env, tmp = demo
    res = _capmap(env, "report", "labels", "--out", str(tmp / "reports"), "--min-evidence", "5")
    w, h = _png_size(Path(res["png"]))
    assert w >= 800 and Path(res["png"]).stat().st_size > 30_000
    assert res["n_reps"] >= 10 and res["n_labels"] == s["n_labels"]
    assert len(res["explained_variance"]) == 2


def test_an_unknown_rep_is_a_clear_error(demo: tuple[dict, dict[str, str], Path]) -> None:
    _, env, _ = demo
    p = subprocess.run([str(BIN / "capmap"), "report", "rep", "p4g:nobody", "--json"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"error": "no Rep with id 'p4g:nobody'", "type": "NotFound"}


def test_labels_approve_and_reject_from_the_command_line(demo: tuple[dict, dict[str, str], Path]) -> None:
    s, env, _ = demo
    labels = _capmap(env, "labels", "list")["labels"]
    assert len(labels) == s["n_labels"] + s["emergent_labels"]["n_proposals"]
    target = next((x["id"] for x in labels if x.get("kind") == "emergent"), labels[0]["id"])
    assert _capmap(env, "labels", "approve", target, "--by", "hr:e2e")["status"] == "approved"
    assert [x["id"] for x in _capmap(env, "labels", "list", "--status", "approved")["labels"]] == [target]
    row = _capmap(env, "labels", "reject", target)
    assert (row["status"], row["approved"]) == ("rejected", False)
