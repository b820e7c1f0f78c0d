"""Shared fixtures: both stores (a real SQLite file, a real Neo4j server), real data slices."""

from __future__ import annotations

import csv
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SEEDS = ROOT / "seeds"
SHARED_DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(TESTS))

from graph.sqlite_store import SqliteStore  # noqa: E402


@pytest.fixture(scope="session")
def neo4j_server() -> Iterator[object]:
    """A real Neo4j 5.26 server for the whole session (started from Maven Central jars), or an
    external one named by CAPMAP_TEST_NEO4J_URI. In CI a Neo4j that cannot start fails the run."""
    uri = os.environ.get("CAPMAP_TEST_NEO4J_URI")
    if uri:
        class External:
            pass

        ext = External()
        ext.uri, ext.user = uri, os.environ.get("CAPMAP_TEST_NEO4J_USER", "neo4j")  # type: ignore[attr-defined]
        ext.password = os.environ.get("CAPMAP_TEST_NEO4J_PASSWORD", "neo4j")  # type: ignore[attr-defined]
        yield ext
        return
    from neo4j_server import Neo4jServer, Neo4jUnavailable

    try:
        server = Neo4jServer().start()
    except Neo4jUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Neo4j could not start in CI: {exc}")
        pytest.skip(f"Neo4j unavailable here: {exc}")
    yield server
    server.stop()


def _neo4j_store(server: object) -> object:
    from neo4j import GraphDatabase

    from graph.neo4j_store import Neo4jStore

    driver = GraphDatabase.driver(server.uri, auth=(server.user, server.password))  # type: ignore[attr-defined]
    driver.execute_query("MATCH (n) DETACH DELETE n", database_="neo4j")
    return Neo4jStore(driver, database="neo4j", owns_driver=True)


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """An empty store of each kind: a real SQLite file, and a real Neo4j database."""
    if request.param == "sqlite":
        st = SqliteStore(tmp_path / "store.sqlite")
    else:
        st = _neo4j_store(request.getfixturevalue("neo4j_server"))
    yield st
    st.close()  # type: ignore[attr-defined]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    st = SqliteStore(tmp_path / "store.sqlite")
    yield st
    st.close()


def _copy_rows(src: Path, dst: Path, keep) -> int:  # type: ignore[no-untyped-def]
    with src.open(newline="", encoding="utf-8") as f, dst.open("w", newline="", encoding="utf-8") as g:
        r = csv.reader(f)
        w = csv.writer(g, lineterminator="\n")
        header = next(r)
        w.writerow(header)
        n = 0
        for row in r:
            if keep(dict(zip(header, row, strict=False))):
                w.writerow(row)
                n += 1
    return n


def make_p4g_slice(dst: Path, n_annotated: int = 40, n_other: int = 30) -> Path:
    """A slice of PersuasionForGood: the first annotated dialogues and the first others."""
    src = SEEDS / "persuasionforgood"
    dst.mkdir(parents=True, exist_ok=True)
    with (src / "annotated_300_info.csv").open(encoding="utf-8") as f:
        ann = list(dict.fromkeys(r["B2"] for r in csv.DictReader(f)))[:n_annotated]
    with (src / "full_info.csv").open(encoding="utf-8") as f:
        others = [d for d in dict.fromkeys(r["B2"] for r in csv.DictReader(f)) if d not in set(ann)][:n_other]
    keep = set(ann) | set(others)
    _copy_rows(src / "full_info.csv", dst / "full_info.csv", lambda r: r["B2"] in keep)
    _copy_rows(src / "full_dialog.csv", dst / "full_dialog.csv", lambda r: r["B2"] in keep)
    _copy_rows(src / "annotated_300_dialog.csv", dst / "annotated_300_dialog.csv", lambda r: r["B2"] in set(ann))
    _copy_rows(src / "annotated_300_info.csv", dst / "annotated_300_info.csv", lambda r: r["B2"] in set(ann))
    return dst


def make_crm_slice(dst: Path, n_deals: int = 400) -> Path | None:
    src = SHARED_DATA / "crm_sales_opportunities"
    if not src.is_dir():
        return None
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("sales_teams.csv", "accounts.csv", "products.csv"):
        shutil.copy(src / name, dst / name)
    count = iter(range(10**9))
    _copy_rows(src / "sales_pipeline.csv", dst / "sales_pipeline.csv", lambda r: next(count) < n_deals)
    return dst


@pytest.fixture(scope="session")
def slice_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """seeds/ with a PersuasionForGood slice, and a data dir with a CRM slice (when present)."""
    base = tmp_path_factory.mktemp("slice")
    seeds = base / "seeds"
    shutil.copytree(SEEDS, seeds, ignore=shutil.ignore_patterns("persuasionforgood"))
    make_p4g_slice(seeds / "persuasionforgood")
    data = base / "data"
    make_crm_slice(data / "crm_sales_opportunities")
    return {"seeds": seeds, "data": data}
