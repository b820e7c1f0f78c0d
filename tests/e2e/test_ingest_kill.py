"""A real `capmap ingest --format events` killed mid-file (SIGKILL) leaves a consistent SQLite
store — whole units only, no event without its PERFORMED edge — and a rerun completes it into
exactly the store one clean run writes, without duplicates."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import SEEDS
from graph import schema
from graph.sqlite_store import SqliteStore

BIN = Path(sys.executable).parent
N_EVENTS = 8000
UNIT = 100
TEXTS = ["王主任您好，我们公司成立于2008年，已通过ISO 13485认证。", "您目前最大的痛点是什么？",
         "Our ROI model shows a 14-month payback.", "Have you heard of our service? Why not start with one plant?",
         "好的，收到。"]


def make_events(path: Path) -> int:
    """N_EVENTS valid events of every kind, plus a duplicate every 997 and a bad record every 1009."""
    n_lines = 0
    with path.open("w", encoding="utf-8") as f:
        for i in range(N_EVENTS):
            rep, deal = f"rep-{i % 40}", f"D-{i % 200}"
            rec: dict[str, Any]
            if i % 50 == 7:
                rec = {"id": f"r{i}", "rep": rep, "type": "rating", "at": f"2024-03-{1 + i % 28:02d}",
                       "rating": {"skill": "capmap:closing", "level": i % 5, "rater": ("self", "manager", "peer")[i % 3]}}
            elif i % 50 == 9:
                rec = {"id": f"s{i}", "rep": rep, "type": "stage_change", "at": 45321.5 + i % 30, "deal": deal,
                       "stage_from": "Engaging", "stage_to": ("Won", "Lost")[i % 2]}
            else:
                rec = {"id": f"m{i}", "rep": rep, "type": ("chat", "email", "call")[i % 3], "deal": deal,
                       "at": f"2024-01-{1 + i % 28:02d}T10:{i % 60:02d}:00+08:00", "text": TEXTS[i % len(TEXTS)]}
            line = json.dumps(rec, ensure_ascii=False) + "\n"
            f.write(line)
            n_lines += 1
            if i % 997 == 0:
                f.write(line)
                n_lines += 1
            if i % 1009 == 0:
                f.write(json.dumps({"id": f"bad{i}", "rep": rep, "type": "fax", "at": "2024-01-01"}) + "\n")
                n_lines += 1
    return n_lines


def ingest(path: Path, store: Path, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CAPMAP_STORE": f"sqlite:///{store}", "CAPMAP_OUT_DIR": str(out), "CAPMAP_SEEDS_DIR": str(SEEDS)}
    env.pop("CAPMAP_DEFAULT_TZ", None)
    return subprocess.Popen([str(BIN / "capmap"), "ingest", "--format", "events", str(path), "--no-text-coder", "--json",
                             "--unit-size", str(UNIT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def summary(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def n_events(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as con:
            return int(con.execute("SELECT count(*) FROM nodes WHERE label = 'Event'").fetchone()[0])
    except sqlite3.Error:  # not created yet, or busy
        return 0


def dump(db: Path) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    with sqlite3.connect(db) as con:
        nodes = con.execute("SELECT label, id, props FROM nodes ORDER BY label, id").fetchall()
        edges = con.execute("SELECT type, src, dst, key, props FROM edges ORDER BY type, src, dst, key").fetchall()
    return nodes, edges


def orphans(db: Path) -> dict[str, int]:
    """Events without their rep, evidence without its event (what a half-written unit leaves)."""
    with sqlite3.connect(db) as con:
        q = {
            "event_without_rep": "SELECT count(*) FROM nodes n WHERE n.label = 'Event' AND NOT EXISTS "
                                 "(SELECT 1 FROM nodes r WHERE r.label = 'Rep' "
                                 "AND r.id = json_extract(n.props, '$.rep_id'))",
            "evidence_without_event": "SELECT count(*) FROM nodes n WHERE n.label = 'Evidence' AND NOT EXISTS "
                                      "(SELECT 1 FROM nodes v WHERE v.label = 'Event' "
                                      "AND v.id = json_extract(n.props, '$.event_id'))",
        }
        return {k: int(con.execute(sql).fetchone()[0]) for k, sql in q.items()}


def test_killed_mid_file_then_rerun_equals_one_clean_run(tmp_path: Path) -> None:
    src = tmp_path / "events.jsonl"
    make_events(src)
    clean_db, killed_db = tmp_path / "clean.sqlite", tmp_path / "killed.sqlite"
    clean = ingest(src, clean_db, tmp_path / "out-clean")
    victim = ingest(src, killed_db, tmp_path / "out-killed")
    deadline = time.monotonic() + 300
    while victim.poll() is None and time.monotonic() < deadline:
        if n_events(killed_db) >= N_EVENTS // 4:  # well into the file; the next unit is being read, coded or written
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    victim.wait(timeout=60)
    if victim.returncode != -signal.SIGKILL:
        pytest.fail(f"the import ended (rc {victim.returncode}) before it could be killed mid-file; make the file bigger")
    clean_summary = summary(clean)

    at_kill = n_events(killed_db)
    assert N_EVENTS // 4 <= at_kill < N_EVENTS, at_kill
    assert at_kill % UNIT == 0, f"{at_kill} events: a unit was half written"
    assert orphans(killed_db) == {"event_without_rep": 0, "evidence_without_event": 0}

    rerun = summary(ingest(src, killed_db, tmp_path / "out-killed"))
    assert clean_summary["accepted"] == rerun["accepted"] == N_EVENTS
    assert clean_summary["duplicates"] == rerun["duplicates"] == 9
    assert clean_summary["rejected"] == rerun["rejected"] == 8
    assert rerun["unchanged"] == at_kill and clean_summary["unchanged"] == 0
    assert orphans(killed_db) == {"event_without_rep": 0, "evidence_without_event": 0}

    clean_nodes, clean_edges = dump(clean_db)
    nodes, edges = dump(killed_db)
    by_label = lambda rows: {lb: sum(1 for r in rows if r[0] == lb) for lb in {r[0] for r in rows}}  # noqa: E731
    assert by_label(nodes) == by_label(clean_nodes)
    assert by_label(edges) == by_label(clean_edges)
    assert by_label(nodes)["Event"] == N_EVENTS
    store = SqliteStore(killed_db)
    assert store.count_edges(schema.PERFORMED) == N_EVENTS  # implied by every event's rep_id
    store.close()
    assert nodes == clean_nodes and edges == clean_edges  # the same store, property for property
    rejects = [(tmp_path / d / "rejects-events.jsonl").read_text(encoding="utf-8") for d in ("out-clean", "out-killed")]
    assert rejects[0] == rejects[1] and rejects[0].count("\n") == 8


def test_cli_summary_rejects_file_and_header_error(tmp_path: Path) -> None:
    env = {**os.environ, "CAPMAP_STORE": f"sqlite:///{tmp_path / 's.sqlite'}", "CAPMAP_OUT_DIR": str(tmp_path / "out")}
    bad = tmp_path / "bad.jsonl"
    good = (SEEDS / "examples" / "events.jsonl").read_text(encoding="utf-8")
    bad.write_text(good + '{"id": "x", "rep": "zw", "type": "chat", "at": "31/01/2024"}\n', encoding="utf-8")
    p = subprocess.run([str(BIN / "capmap"), "ingest", "--format", "events", str(bad), "--no-text-coder", "--json",
                        "--tz", "UTC"], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads(p.stdout.strip().splitlines()[-1])
    rejects_file = tmp_path / "out" / "rejects-events.jsonl"
    assert (s["accepted"], s["rejected"], s["duplicates"], s["rejects_file"]) == (11, 1, 0, str(rejects_file))
    row = json.loads(rejects_file.read_text(encoding="utf-8"))
    assert (row["file"], row["line"], row["field"]) == (str(bad), 12, "at")

    dup = tmp_path / "dup.csv"
    dup.write_text("id,rep,type,at,text,text\nx,zw,chat,2024-01-30,a,b\n", encoding="utf-8")
    p = subprocess.run([str(BIN / "capmap"), "ingest", "--format", "events", str(dup), "--no-text-coder", "--json"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2
    err = json.loads(p.stdout.strip().splitlines()[-1])
    assert err["type"] == "InputError"
    assert err["error"].startswith(f"{dup}:1: field 'text' duplicate column name in the header (columns 5 and 6)")
