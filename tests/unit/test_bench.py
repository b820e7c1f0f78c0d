"""The benchmark scripts' own helpers."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ingest_bench_reports_every_version() -> None:
    """It printed "?" for a library it does not even use (hdbscan) instead of the ones it does."""
    spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "ingest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    got = module.versions()
    assert set(got) == {"python", "numpy", "scikit-learn", "orjson", "neo4j", "neo4j-rust-ext"}
    assert all(re.fullmatch(r"\d+(\.\d+)+\S*", v) for v in got.values()), got
