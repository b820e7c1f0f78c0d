"""As a user would: the CLI runs the main job on a real-data slice, then GraphQL over HTTP
serves a rep's capability map with its evidence."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent


def _env(slice_dirs: dict[str, Path], tmp: Path) -> dict[str, str]:
    return {**os.environ, "CAPMAP_SEEDS_DIR": str(slice_dirs["seeds"]), "CAPMAP_DATA_DIR": str(slice_dirs["data"]),
            "CAPMAP_STORE": f"sqlite:///{tmp / 'e2e.sqlite'}", "CAPMAP_OUT_DIR": str(tmp / "out"),
            "CAPMAP_MIN_CLUSTER_SIZE": "5", "CAPMAP_MIN_EVIDENCE_FOR_CLUSTERING": "5"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_run(slice_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("e2e")
    env = _env(slice_dirs, tmp)
    p = subprocess.run([str(BIN / "capmap"), "demo", "--json", "-q"], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert json.loads((tmp / "out" / "demo-summary.json").read_text(encoding="utf-8")) == summary
    return summary, env


def test_demo_summary_on_a_slice(demo_run: tuple[dict, dict[str, str]]) -> None:
    s, _ = demo_run
    assert s["store"] == "sqlite"
    assert s["n_reps"] >= 70 and s["n_skills"] >= 35
    assert s["n_evidence"] > 300
    assert s["team"]["members"] and s["team"]["coverage"] > 0
    for m in s["team"]["members"]:
        assert m["covers"], m
    assert 0 < s["coder"]["macro_f1"] < 1 and 0 < s["coder"]["accuracy"] < 1
    assert s["coder"]["n_dialogues"] == 40 and s["coder"]["folds"] == 5
    # Regression (a new user's review): the demo counted rejected records but wrote them nowhere
    xapi = s["ingest"]["xapi"]
    assert xapi["rejected"] == 2 and Path(xapi["rejects_file"]).name == "rejects-xapi.jsonl"
    rejected = [json.loads(line) for line in Path(xapi["rejects_file"]).read_text(encoding="utf-8").splitlines()]
    assert len(rejected) == 2 and all(r["file"].endswith(".json") and r["reason"] for r in rejected)
    assert all(r["rejects_file"] is None for r in s["ingest"].values() if not r["rejected"])


def test_graphql_serves_a_capability_map_with_evidence(demo_run: tuple[dict, dict[str, str]]) -> None:
    s, env = demo_run
    rep = s["team"]["members"][0]["rep"]
    port = _free_port()
    proc = subprocess.Popen([str(BIN / "capmap"), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        health = httpx.get(base + "/health").json()
        assert health["status"] == "ok" and health["reps"] == s["n_reps"]
        q = """query($id: String!) { rep(id: $id) { id name capabilities { skillId level score low high nEvidence lowData
                 skill { name nameZh } evidence(first: 50) { code level confidence credibility coder reason eventId weight contribution } } } }"""
        r = httpx.post(base + "/graphql", json={"query": q, "variables": {"id": rep}}, timeout=30).json()
        assert "errors" not in r, r
        caps = r["data"]["rep"]["capabilities"]
        assert caps, r
        covered = s["team"]["members"][0]["covers"][0]
        cap = next(c for c in caps if c["skillId"] == covered)
        assert 0 <= cap["low"] <= cap["score"] <= cap["high"] <= 4
        assert cap["nEvidence"] >= len(cap["evidence"]) > 0
        for e in cap["evidence"]:
            assert e["reason"] and e["coder"] in ("annotation", "text", "rules") and 0 < e["confidence"] <= 1
            assert 0 < e["contribution"] <= 1 and e["weight"] <= e["confidence"] * e["credibility"] + 1e-9
        shares = [e["contribution"] for e in cap["evidence"]]
        assert shares == sorted(shares, reverse=True)
        if len(shares) == cap["nEvidence"]:  # every item shown: the shares add up to the whole
            assert abs(sum(shares) - 1.0) < 0.01
        ide = httpx.get(base + "/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 200 and "graphiql" in ide.text.lower()
        miss = httpx.post(base + "/graphql", json={"query": '{ growthPath(repId: "nobody", targetId: "onet-role:41-4011.00") { __typename ... on NotFoundError { message } } }'}).json()
        assert miss["data"]["growthPath"] == {"__typename": "NotFoundError", "message": "no Rep with id 'nobody'"}
        # regressions from a user's review: mistakes in a query are explained, not masked
        typo = httpx.post(base + "/graphql", json={"query": '{ rep(id: "x") { nme } }'}).json()
        assert "Did you mean 'name'?" in typo["errors"][0]["message"]
        for query, says in [
            ('{ reps(first: -1) { id } }', "first: -1; ask for 0 to 500"),
            ('{ reps(first: 10, offset: -5) { id } }', "offset: -5 is negative"),
            ('{ growthPath(repId: "' + rep + '", targetId: "onet-role:41-4011.00", hoursPerWeek: 0) { __typename } }',
             "hoursPerWeek: 0.0"),
            ('{ teamSuggestion(skills: [{skillId: "capmap:closing", level: 9}]) { __typename } }', "skills[0].level: 9"),
            ('{ teamSuggestion(skills: [{skillId: "capmap:closing", level: 2, weight: -1}]) { __typename } }',
             "skills[0].weight: -1.0 must be positive"),
            ('{ teamSuggestion(skills: []) { __typename } }', "skills: name at least one"),
        ]:
            got = httpx.post(base + "/graphql", json={"query": query}).json()
            assert says in got["errors"][0]["message"], (query, got)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
