"""Ingest + coding throughput on the real data, embedded store and Neo4j; batched vs per-row.

Run from the repository root: ``python bench/ingest.py [--repeat 3] [--neo4j-uri bolt://...]``.
Without ``--neo4j-uri`` it starts a Neo4j 5.26 for the run (tests/neo4j_server.py). Prints each
figure beside its baseline measured in the same run, and one JSON object as its last line.

Figures:
- ``embedded_events_per_s`` / ``neo4j_events_per_s``: behaviour events ingested, validated,
  coded (text coder + rules) and written per second, over PersuasionForGood (bundled) and the
  CRM data (when the data folder is present) — the median of ``--repeat`` runs, each into an
  empty store; the text coder is trained once beforehand (not timed).
- ``batched_vs_per_row``: on Neo4j, the time to write the same event rows one statement per
  row (the baseline) divided by the time of the store's batched ``UNWIND`` writes.

The Neo4j this starts is sized for a bulk import on a small machine (``NEO4J_SERVER``: a fixed
2 GiB heap, half of it young generation, with the throughput collector; a page cache that
holds the whole store). A server
in use is warm, while a JVM just started compiles its hot paths during the first import (about
half the speed): ``--neo4j-warmup N`` (default 1) runs N ingests before the timed ones, each
printed and reported (``neo4j_warmup_events_per_s``) but not counted; ``--neo4j-warmup 0``
times a cold server.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from api import jobs  # noqa: E402
from api.settings import Settings  # noqa: E402
from graph import schema  # noqa: E402
from graph.sqlite_store import SqliteStore  # noqa: E402
from graph.store import ChangeSet, GraphStore  # noqa: E402

TARGETS = {"embedded_events_per_s": 20000, "neo4j_events_per_s": 5000, "batched_vs_per_row": 20}
# the throughput (parallel) collector costs the server less time than G1 on an import's
# short-lived garbage (its CPU time about 15 % lower here); a fixed heap is never resized; a
# young generation of 1 GiB holds the state of several units' transactions, so a unit's objects
# die young instead of being copied (6-9 young collections per import instead of about 32,
# their pauses 0.15-0.3 s instead of 0.5-0.7 s)
NEO4J_SERVER: dict[str, Any] = {"heap": "2g", "heap_initial": "2g", "pagecache": "1g",
                "jvm_options": ["-XX:-UseG1GC", "-XX:+UseParallelGC", "-Xmn1g"]}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def timed_ingest(store: GraphStore, settings: Settings, coder: object) -> tuple[float, int]:
    jobs.load_reference(store, settings.seeds_dir)  # reference data: not behaviour events, not timed
    codebook = jobs.codebook_for(store, settings.seeds_dir)
    t = time.perf_counter()
    jobs.ingest_sources(store, settings.seeds_dir, settings.data_dir, codebook, coder)  # type: ignore[arg-type]
    return time.perf_counter() - t, store.count_nodes(schema.EVENT)


def neo4j_store(uri: str, user: str, password: str):  # type: ignore[no-untyped-def]
    from neo4j import GraphDatabase

    from graph.neo4j_store import Neo4jStore

    driver = GraphDatabase.driver(uri, auth=(user, password))
    driver.execute_query("MATCH (n) DETACH DELETE n", database_="neo4j")
    return Neo4jStore(driver, database="neo4j", owns_driver=True)


def batched_vs_per_row(store, n: int = 2000) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Seconds to write n event rows batched, and one statement (and transaction) per row."""
    rows = [{"id": f"bench:{i}", "rep_id": f"r{i % 50}", "type": "utterance", "source": "transcript",
             "text": f"bench event {i}"} for i in range(n)]
    # both ways run the same statement: plan it once beforehand, so neither figure includes that
    store.apply(ChangeSet().add_rows(schema.EVENT, [{**rows[0], "id": "bench:plan"}]))
    t = time.perf_counter()
    store.apply(ChangeSet().add_rows(schema.EVENT, rows))
    batched = time.perf_counter() - t
    rows2 = [{**r, "id": r["id"] + ":row"} for r in rows]
    t = time.perf_counter()
    for r in rows2:
        store.apply(ChangeSet().add_rows(schema.EVENT, [r]))
    per_row = time.perf_counter() - t
    return batched, per_row


def versions() -> dict[str, str]:
    """Python's and the installed distributions' versions that the figures depend on."""
    out = {"python": platform.python_version()}
    for dist in ("numpy", "scikit-learn", "orjson", "neo4j", "neo4j-rust-ext"):
        out[dist] = importlib.metadata.version(dist)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--neo4j-uri")
    ap.add_argument("--neo4j-user", default="neo4j")
    ap.add_argument("--neo4j-password", default="neo4j")
    ap.add_argument("--no-neo4j", action="store_true")
    ap.add_argument("--neo4j-warmup", type=int, default=1,
                    help="ingests into Neo4j before the timed runs, reported but not counted (a server in use is warm)")
    args = ap.parse_args()
    settings = Settings()
    tmp = Path(tempfile.mkdtemp(prefix="capmap-bench-"))
    ref = SqliteStore(tmp / "ref.sqlite")
    jobs.load_reference(ref, settings.seeds_dir)
    coder, _ = jobs.train_coder(settings.seeds_dir, jobs.codebook_for(ref, settings.seeds_dir), evaluate=False)
    ref.close()
    out: dict[str, object] = {"data": {"p4g": True, "crm": bool(settings.data_dir and (settings.data_dir / "crm_sales_opportunities").is_dir())}}

    runs = []
    for i in range(args.repeat):
        st = SqliteStore(tmp / f"e{i}.sqlite")
        secs, n = timed_ingest(st, settings, coder)
        st.close()
        runs.append(n / secs)
        log(f"embedded run {i + 1}: {n} events in {secs:.2f} s = {n / secs:,.0f} events/s")
    out["n_events"] = n
    out["embedded_events_per_s"] = round(statistics.median(runs))
    log(f"embedded_events_per_s  {out['embedded_events_per_s']:>10,}   target ≥ {TARGETS['embedded_events_per_s']:,}")

    if not args.no_neo4j:
        server = None
        uri, user, pw = args.neo4j_uri, args.neo4j_user, args.neo4j_password
        if uri is None:
            from neo4j_server import Neo4jServer

            server = Neo4jServer(**NEO4J_SERVER).start()
            uri, user, pw = server.uri, server.user, server.password
        try:
            warm = []
            for i in range(args.neo4j_warmup):
                st = neo4j_store(uri, user, pw)
                secs, n = timed_ingest(st, settings, coder)
                st.close()
                warm.append(round(n / secs))
                log(f"neo4j warm-up {i + 1}: {n} events in {secs:.2f} s = {n / secs:,.0f} events/s (not counted)")
            out["neo4j_warmup_runs"] = args.neo4j_warmup
            out["neo4j_warmup_events_per_s"] = warm
            nruns = []
            for i in range(args.repeat):
                st = neo4j_store(uri, user, pw)
                secs, n = timed_ingest(st, settings, coder)
                nruns.append(n / secs)
                log(f"neo4j run {i + 1}: {n} events in {secs:.2f} s = {n / secs:,.0f} events/s")
                st.close()
            out["neo4j_events_per_s"] = round(statistics.median(nruns))
            out["neo4j_runs_events_per_s"] = [round(x) for x in nruns]
            if server is not None:
                out["neo4j_server"] = NEO4J_SERVER
            st = neo4j_store(uri, user, pw)
            b, p = batched_vs_per_row(st)
            st.close()
            out["neo4j_batched_s_2000_rows"] = round(b, 3)
            out["neo4j_per_row_s_2000_rows"] = round(p, 3)
            out["batched_vs_per_row"] = round(p / b, 1)
            log(f"neo4j_events_per_s     {out['neo4j_events_per_s']:>10,}   target ≥ {TARGETS['neo4j_events_per_s']:,}")
            log(f"2,000 rows: batched {b:.2f} s vs one statement per row {p:.2f} s (baseline): ratio {p / b:.1f}, target ≥ 20")
        finally:
            if server is not None:
                server.stop()
    out["versions"] = versions()
    out["targets"] = TARGETS
    print(json.dumps(out))


if __name__ == "__main__":
    main()
