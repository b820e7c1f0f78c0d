"""Incremental recompute vs full recompute of the capability map, on the real data.

``python bench/capmap.py [--repeat 5] [--share 0.01]``: builds the map on the embedded store
(PersuasionForGood + CRM when present), then times a full recompute (the baseline) and, after
adding ``share`` new events with evidence, the incremental recompute of the reps those events
touch. New events arrive as engagements do: a seeded sample of reps each gets one new
engagement of ``--burst`` events (a call's segments, a thread's messages), so 1 % of the
events touches about 1 % × (events per rep) / burst of the reps. Prints each figure beside its baseline and one JSON
object as its last line (``incremental_vs_full``: median incremental seconds / median full
seconds; target ≤ 0.10).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from api import jobs  # noqa: E402
from api.settings import Settings  # noqa: E402
from clustering.scoring import ScoringParams  # noqa: E402
from graph import schema  # noqa: E402
from graph.model import Event, Evidence  # noqa: E402
from graph.sqlite_store import SqliteStore  # noqa: E402
from ingest.units import apply_all, event_units  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--share", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--burst", type=int, default=10, help="events per new engagement")
    args = ap.parse_args()
    settings = Settings()
    st = SqliteStore(Path(tempfile.mkdtemp(prefix="capmap-bench-")) / "b.sqlite")
    jobs.load_reference(st, settings.seeds_dir)
    cb = jobs.codebook_for(st, settings.seeds_dir)
    jobs.ingest_sources(st, settings.seeds_dir, settings.data_dir, cb, None)
    params = ScoringParams()
    n_events = st.count_nodes(schema.EVENT)
    full = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        jobs.recompute_capabilities(st, params, cb.version)
        full.append(time.perf_counter() - t)
    rng = random.Random(args.seed)
    reps = sorted(r["id"] for r in st.iter_nodes(schema.REP) if r.get("function") == "sales")
    skills = sorted(cb.skills())
    n_new = max(1, round(n_events * args.share))
    inc = []
    for k in range(args.repeat):
        events, evidence = [], []
        for i in range(n_new):
            if i % args.burst == 0:
                rep = rng.choice(reps)
            ev = Event(id=f"bench:{k}:{i}", rep_id=rep, type="call", source="call", at="2017-12-31T00:00:00Z",
                       text="bench event")
            events.append(ev)
            evidence.append(Evidence(id=f"ev:bench:{k}:{i}", event_id=ev.id, rep_id=rep, skill_id=rng.choice(skills),
                                     code="bench", level=rng.randint(1, 4), confidence=0.8, credibility=0.9,
                                     coder="bench", codebook_version=cb.version, reason="bench", at=ev.at))
        units = event_units(events, evidence)
        apply_all(st, units)
        touched = jobs.touched_reps(units)
        t = time.perf_counter()
        jobs.recompute_capabilities(st, params, cb.version, reps=touched)
        inc.append(time.perf_counter() - t)
        print(f"run {k + 1}: {n_new} new events touching {len(touched)} reps: incremental {inc[-1]:.3f} s; "
              f"full {full[k]:.3f} s", file=sys.stderr)
    ratio = statistics.median(inc) / statistics.median(full)
    print(f"incremental_vs_full {ratio:.3f} (incremental median {statistics.median(inc):.3f} s vs full recompute "
          f"median {statistics.median(full):.3f} s as baseline; target ≤ 0.10)", file=sys.stderr)
    print(json.dumps({"n_events": n_events, "n_new_events": n_new, "full_s": round(statistics.median(full), 4),
                      "incremental_s": round(statistics.median(inc), 4), "incremental_vs_full": round(ratio, 4),
                      "repeat": args.repeat, "target": 0.10}))


if __name__ == "__main__":
    main()
