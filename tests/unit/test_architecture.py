"""Folders are the architecture: imports point one way (STYLE 1)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("graph", "ingest", "clustering", "matching", "api")
# who may import whom (besides itself)
ALLOWED = {
    "graph": set(),
    "ingest": {"graph"},
    "clustering": {"graph"},
    "matching": {"graph"},
    "api": {"graph", "ingest", "clustering", "matching"},
}


def imported_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for n in names:
            top = n.split(".")[0]
            if top in PARTS:
                found.add(top)
    return found


def test_every_part_exists() -> None:
    for part in PARTS + ("seeds", "tests"):
        assert (ROOT / part).is_dir(), part


def test_imports_point_one_way() -> None:
    bad = []
    for part in PARTS:
        for f in sorted((ROOT / part).rglob("*.py")):
            for other in imported_parts(f) - {part}:
                if other not in ALLOWED[part]:
                    bad.append(f"{f.relative_to(ROOT)} imports {other}")
    assert bad == []


def test_the_checker_sees_a_reversed_edge(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("from api.app import create_app\nimport matching.team\n", encoding="utf-8")
    assert imported_parts(f) == {"api", "matching"}
