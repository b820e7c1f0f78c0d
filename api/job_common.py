"""What capmap's jobs share: the skills' display names as stored, and the manifest every Run records."""

from __future__ import annotations

import hashlib
import platform
from typing import Any

import numpy as np

from graph import schema
from graph.store import GraphStore


def skill_names(store: GraphStore) -> dict[str, tuple[str, str]]:
    """``{skill id: (name, name_zh)}`` as stored; a missing name falls back to the id, a missing
    Chinese name to the English one."""
    return {s["id"]: (str(s.get("name", s["id"])), str(s.get("name_zh") or s.get("name", s["id"])))
            for s in store.iter_nodes(schema.SKILL)}


def run_manifest(kind: str, params: dict[str, Any], evidence: list[dict[str, Any]], codebook_version: str) -> dict[str, Any]:
    """A Run's manifest: its kind and parameters, the codebook version, a hash of the evidence it
    read, and the versions of Python and the numerical libraries."""
    import hdbscan
    import scipy
    import sklearn

    h = hashlib.sha256()
    for e in sorted(evidence, key=lambda e: e["id"]):
        h.update(f'{e["id"]}|{e["level"]}|{e["confidence"]}|{e["credibility"]}|{e.get("state")}|{e.get("at")}\n'.encode())
    return {"kind": kind, "params": params, "codebook_version": codebook_version, "input_hash": h.hexdigest(),
            "n_evidence": len(evidence),
            "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                         "scikit-learn": sklearn.__version__, "hdbscan": getattr(hdbscan, "__version__", "unknown")}}
