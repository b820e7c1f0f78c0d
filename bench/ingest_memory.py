"""Peak memory of a streaming import, 100k vs 1M events (issue: flat within 20 %).

``python bench/ingest_memory.py [--sizes 100000 1000000] [--text-coder]``: writes synthetic
native-schema JSONL files (a seeded mix of Chinese and English chats, calls, e-mails, NPS
comments, CRM stage changes and ratings over 2,000 reps), imports each into an empty embedded
store in a fresh process, and reports that process's peak resident memory (ru_maxrss) and its
events/s. The smaller size is the baseline; the last line is one JSON object with
``peak_rss_mb_100k``, ``peak_rss_mb_1m`` and their ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TEXTS = [
    ("chat", "王主任您好，我们公司成立于2008年，已通过ISO 13485认证。"),
    ("chat", "您目前最大的痛点是什么？是设备故障率还是感控流程？"),
    ("chat", "可以先在ICU小范围试点三个月，您看今天能定下来吗？"),
    ("call", "Have you ever heard of our service programme? It cut downtime by 30% at a peer hospital."),
    ("email", "Would you like to sign the order this week so the installation can start in March?"),
    ("call", "May I ask why the budget was moved? What is holding you back?"),
    ("nps", "服务响应很快，工程师很专业。"),
]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from api import jobs
from graph.sqlite_store import SqliteStore
from ingest.events import EventCoding, ingest_events
seeds = Path(sys.argv[1]) / "seeds"
st = SqliteStore(sys.argv[3])
jobs.load_reference(st, seeds)
cb = jobs.codebook_for(st, seeds)
coder = jobs.train_coder(seeds, cb, evaluate=False)[0] if sys.argv[4] == "1" else None
t = time.perf_counter()
report = ingest_events(sys.argv[2], st, EventCoding(cb, jobs.skill_names(st), coder=coder))
secs = time.perf_counter() - t
print(json.dumps({"accepted": report.accepted, "rejected": report.rejected, "seconds": secs,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_events(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            rep = f"rep{rng.randrange(2000):04d}"
            kind = rng.random()
            if kind < 0.75:
                typ, text = rng.choice(TEXTS)
                ev = {"id": f"e{i}", "rep": rep, "type": typ, "at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T09:{i % 60:02d}:00+08:00",
                      "deal": f"D{rng.randrange(20000)}", "text": text}
            elif kind < 0.9:
                ev = {"id": f"e{i}", "rep": rep, "type": "stage_change", "at": "2025-03-01T10:00:00Z",
                      "deal": f"D{rng.randrange(20000)}", "stage_from": "Engaging", "stage_to": rng.choice(["Won", "Lost"])}
            else:
                ev = {"id": f"e{i}", "rep": rep, "type": "rating", "at": "2025-03-01T10:00:00Z",
                      "rating": {"skill": "capmap:closing", "level": rng.randrange(5), "rater": rng.choice(["self", "manager", "peer"])}}
            f.write(json.dumps(ev, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--text-coder", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="capmap-mem-"))
    out: dict[str, object] = {}
    for n in args.sizes:
        src = tmp / f"events-{n}.jsonl"
        write_events(src, n)
        p = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(src), str(tmp / f"s{n}.sqlite"),
                            "1" if args.text_coder else "0"], capture_output=True, text=True, check=True)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        label = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}m"
        out[f"peak_rss_mb_{label}"] = round(r["peak_rss_mb"], 1)
        out[f"events_per_s_{label}"] = round(r["accepted"] / r["seconds"])
        print(f"{n:>9,} events: peak RSS {r['peak_rss_mb']:.1f} MB, {r['accepted'] / r['seconds']:,.0f} events/s "
              f"(accepted {r['accepted']:,}, rejected {r['rejected']:,})", file=sys.stderr)
        src.unlink()
    if "peak_rss_mb_100k" in out and "peak_rss_mb_1m" in out:
        out["rss_1m_vs_100k"] = round(float(out["peak_rss_mb_1m"]) / float(out["peak_rss_mb_100k"]), 3)  # type: ignore[arg-type]
        print(f"peak RSS 1M vs 100k (baseline): {out['rss_1m_vs_100k']} (target ≤ 1.20)", file=sys.stderr)
    out["text_coder"] = args.text_coder
    print(json.dumps(out))


if __name__ == "__main__":
    main()
