"""Two processes ingesting overlapping data at once end with no duplicates, no failed batch,
and the same counts as one run — on SQLite and on Neo4j."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graph import schema

BIN = Path(sys.executable).parent
LABELS = (schema.REP, schema.DEAL, schema.EVENT, schema.EVIDENCE, schema.SKILL)


def _ingest(env: dict[str, str], path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN / "capmap"), "ingest", "--format", "p4g", str(path), "--no-text-coder", "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _env(kind: str, tmp: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {**os.environ, "CAPMAP_OUT_DIR": str(tmp / "out")}
    if kind == "sqlite":
        env["CAPMAP_STORE"] = f"sqlite:///{tmp / 'c.sqlite'}"
    else:
        srv = request.getfixturevalue("neo4j_server")
        env.update(CAPMAP_STORE=srv.uri, CAPMAP_NEO4J_USER=srv.user, CAPMAP_NEO4J_PASSWORD=srv.password)
    return env


def _open(kind: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    from api.bootstrap import build_store
    from api.settings import Settings

    return build_store(Settings(store=env["CAPMAP_STORE"], neo4j_user=env.get("CAPMAP_NEO4J_USER", "neo4j"),
                                neo4j_password=env.get("CAPMAP_NEO4J_PASSWORD", "neo4j")))


def _counts(kind: str, env: dict[str, str]) -> dict[str, int]:
    st = _open(kind, env)
    try:
        out = {lb: st.count_nodes(lb) for lb in LABELS}
        out[schema.EVIDENCES] = st.count_edges(schema.EVIDENCES)
        ids = [r["id"] for r in st.iter_nodes(schema.EVENT)]
        assert len(ids) == len(set(ids))
        return out
    finally:
        st.close()


def _wipe(kind: str, env: dict[str, str], tmp: Path, name: str) -> None:
    if kind == "sqlite":
        env["CAPMAP_STORE"] = f"sqlite:///{tmp / name}"
        return
    st = _open(kind, env)
    st._driver.execute_query("MATCH (n) DETACH DELETE n", database_="neo4j")  # type: ignore[attr-defined]
    st.close()


def _run_ok(procs: list[subprocess.Popen[str]]) -> None:
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert json.loads(out.strip().splitlines()[-1])["rejected"] == 0


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def test_two_concurrent_ingests_equal_one(kind: str, tmp_path: Path, slice_dirs: dict[str, Path],
                                          request: pytest.FixtureRequest) -> None:
    p4g = slice_dirs["seeds"] / "persuasionforgood"
    env = _env(kind, tmp_path, request)
    _wipe(kind, env, tmp_path, "one.sqlite")
    _run_ok([_ingest(env, p4g)])
    one = _counts(kind, env)
    _wipe(kind, env, tmp_path, "two.sqlite")
    _run_ok([_ingest(env, p4g), _ingest(env, p4g)])
    assert _counts(kind, env) == one
    assert one[schema.DEAL] == 70 and one[schema.EVENT] > 600 and one[schema.EVIDENCES] > 100
