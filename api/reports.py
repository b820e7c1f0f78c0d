"""Reports people would rather look at than read: a rep's radar chart against a target with the
evidence table behind it (PNG + HTML), and a 2-D map of reps coloured by capability label (PNG).

Charts are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global state).
Skill names are written in English: the CJK fonts needed for the Chinese names are not
installed everywhere, and a chart of empty boxes is worse than an English one.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.projections.polar import PolarAxes
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from api import views
from graph import schema
from graph.errors import NotEnoughData
from graph.model import Capability
from graph.store import GraphStore

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("out") / "reports"
TARGET_COLOUR, REP_COLOUR = "#d62728", "#1f77b4"


@dataclass(frozen=True)
class Axis:
    skill_id: str
    name: str
    target: float
    score: float | None  # None: no evidence
    low: float | None = None
    high: float | None = None
    required: bool = True


def _file_stem(node_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", node_id).strip("_")


def _short(name: str, limit: int = 22) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def radar_axes(store: GraphStore, rep_id: str, target_id: str | None, max_axes: int = 12) -> tuple[str, list[Axis]]:
    """The skills to draw and the target's name: a role's or scenario's requirements (skills the
    rep is assessed on first, then by weight), or without a target the rep's sales skills against
    the population mean of the capability run."""
    names = {s["id"]: str(s.get("name", s["id"])) for s in store.iter_nodes(schema.SKILL)}
    caps = {c.skill_id: c for c in views.capabilities_of(store, rep_id)}
    if target_id:
        label = schema.ROLE if target_id.startswith("onet-role:") else schema.SCENARIO
        node = views.require_node(store, label, target_id)
        required = views.role_requirements(store, target_id)
        required.sort(key=lambda r: (r[0] not in caps, -r[2], r[0]))
        targets = [(s, float(lv)) for s, lv, _ in required]
        title = f"{node.get('name', target_id)} ({target_id})"
    else:
        run = views.require_node(store, schema.RUN, next(iter(caps.values())).run_id) if caps else None
        priors = json.loads(run["manifest_json"]).get("priors", {}) if run else {}
        targets = [(s, float(priors.get(s, 2.0))) for s in _by_evidence(caps, 5)]
        title = "population mean of the capability run"
    if len(targets) < 3:  # too few spokes for a radar: add the rep's best-evidenced skills, not required
        n_required = len(targets)
        targets += [(s, 0.0) for s in _by_evidence(caps, 5) if s not in dict(targets)][: 5 - len(targets)]
    else:
        n_required = len(targets)
    axes = []
    for i, (s, lv) in enumerate(targets[:max_axes]):
        c: Capability | None = caps.get(s)
        axes.append(Axis(s, names.get(s, s), lv, c.score if c else None, c.low if c else None, c.high if c else None,
                         required=i < n_required or target_id is None))
    return title, axes


def _by_evidence(caps: dict[str, Capability], at_least: int) -> list[str]:
    """The rep's capmap sales skills by evidence count, then (when fewer than ``at_least``) the
    broader skills their evidence rolls up to."""
    order = sorted(caps, key=lambda s: (not s.startswith("capmap:"), -caps[s].n_evidence, s))
    sales = [s for s in order if s.startswith("capmap:")]
    return sales if len(sales) >= at_least else order[: max(at_least, len(sales))]


def draw_radar(axes: Sequence[Axis], rep_name: str, target_name: str, path: Path, target_label: str = "target level") -> Path:
    """A radar chart (L0–L4) of the rep's scores with their bands against the target levels."""
    if len(axes) < 3:
        raise NotEnoughData(f"a radar chart needs at least 3 skills; {len(axes)} to draw for {rep_name}")
    n = len(axes)
    theta = np.linspace(0, 2 * math.pi, n, endpoint=False)
    closed = np.append(theta, theta[0])

    def ring(values: Sequence[float]) -> np.ndarray:
        return np.append(np.asarray(values, dtype=float), values[0])

    fig = Figure(figsize=(11, 8.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = cast(PolarAxes, fig.add_subplot(projection="polar"))
    ax.set_theta_offset(math.pi / 2)
    ax.set_theta_direction(-1)
    ax.set_ylim(0, 4)
    ax.set_yticks([1, 2, 3, 4])
    ax.set_yticklabels(["L1", "L2", "L3", "L4"], fontsize=8, color="#555555")
    ax.set_rlabel_position(180 / n)  # between the first two spokes
    ax.set_xticks(theta)
    ax.set_xticklabels([_short(a.name) + ("\n(no evidence)" if a.score is None else "")
                        + ("" if a.required else "\n(not required)") for a in axes], fontsize=9)
    ax.tick_params(axis="x", pad=12)
    ax.plot(closed, ring([a.target for a in axes]), color=TARGET_COLOUR, lw=2, ls="--", marker="D", ms=5, label=target_label)
    nan = float("nan")  # no evidence: the rep's line breaks there instead of dropping to L0
    ax.plot(closed, ring([nan if a.score is None else a.score for a in axes]), color=REP_COLOUR, lw=2, marker="o",
            label="rep score")
    ax.fill_between(closed, ring([nan if a.low is None else a.low for a in axes]),
                    ring([nan if a.high is None else a.high for a in axes]),
                    color=REP_COLOUR, alpha=0.18, label="rep uncertainty band")
    missing = [i for i, a in enumerate(axes) if a.score is None]
    if missing:
        ax.plot(theta[missing], [0.0] * len(missing), ls="none", marker="x", ms=9, mew=2, color="#7f7f7f",
                label="no evidence")
    fig.suptitle("\n".join([rep_name, *textwrap.wrap(f"against {target_name}", 80)]), fontsize=12)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.05), fontsize=9, frameon=False)
    fig.text(0.01, 0.01, "levels L0–L4; band = score ± 1.96·σ/√(k + n_eff)", fontsize=8, color="#555555")
    fig.subplots_adjust(left=0.14, right=0.74, top=0.84, bottom=0.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _evidence_rows(store: GraphStore, caps: Sequence[Capability], names: dict[str, str], limit: int) -> list[str]:
    rows = []
    for cap in sorted(caps, key=lambda c: (-c.n_evidence, c.skill_id)):
        items = views.evidence_contributions(store, cap)
        for ev, _w, share in items[:limit]:
            cells = [ev.get("code", ""), names.get(cap.skill_id, cap.skill_id), f"L{ev.get('level', '')}",
                     f"{float(ev.get('confidence', 0)):.2f}", f"{float(ev.get('credibility', 0)):.2f}", ev.get("coder", ""),
                     ev.get("reason", ""), f"{share:.1%}"]
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        if len(items) > limit:
            rows.append(f'<tr><td colspan="8" class="more">… and {len(items) - limit} more items on '
                        f"{html.escape(names.get(cap.skill_id, cap.skill_id))}</td></tr>")
    return rows


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #ccc;padding:4px 8px;font-size:13px;vertical-align:top}th{background:#f2f2f2;text-align:left}
td.more{color:#666;font-style:italic}img{max-width:100%}"""


def write_rep_html(store: GraphStore, rep: dict[str, Any], target_name: str, axes: Sequence[Axis], png: Path,
                   path: Path, limit_per_skill: int = 100) -> Path:
    """An HTML page: the chart, each capability against the target, and the evidence behind each
    capability with how much every item counted."""
    names = {s["id"]: str(s.get("name", s["id"])) for s in store.iter_nodes(schema.SKILL)}
    caps = views.capabilities_of(store, rep["id"])
    target = {a.skill_id: a.target for a in axes}
    cap_rows = []
    for c in sorted(caps, key=lambda c: (c.skill_id not in target, c.skill_id)):
        t = target.get(c.skill_id)
        cells = [names.get(c.skill_id, c.skill_id), f"L{c.level}", f"{c.score:.2f}", f"{c.low:.2f}–{c.high:.2f}",
                 str(c.n_evidence), "yes" if c.low_data else "", "" if t is None else f"{t:.1f}",
                 "" if t is None else f"{max(0.0, t - c.score):.2f}"]
        cap_rows.append("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>")
    direct = [c for c in caps if store.count_nodes(schema.EVIDENCE, where={"rep_id": rep["id"], "skill_id": c.skill_id})]
    ev_rows = _evidence_rows(store, direct, names, limit_per_skill)
    title = f"{rep.get('name', rep['id'])} ({rep['id']})"
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>capmap — {html.escape(title)}</title><style>{_CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Function: {html.escape(str(rep.get('function', '')))}. Compared with: {html.escape(target_name)}.</p>
<img src="{html.escape(png.name)}" alt="radar chart of {html.escape(title)}">
<h2>Capabilities</h2>
<table><tr><th>skill</th><th>level</th><th>score</th><th>band</th><th>evidence</th><th>low data</th><th>target</th><th>gap</th></tr>
{''.join(cap_rows)}</table>
<h2>Evidence</h2>
<p>Every coded observation behind the capabilities; <em>contribution</em> is the item's share of the skill's total
weight (confidence × credibility × recency), as the capability run weighed it.</p>
<table><tr><th>code</th><th>skill</th><th>level</th><th>confidence</th><th>credibility</th><th>coder</th><th>reason</th>
<th>contribution</th></tr>
{''.join(ev_rows)}</table>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path


def rep_report(store: GraphStore, rep_id: str, target_id: str | None = None, out_dir: Path = DEFAULT_OUT,
               max_axes: int = 12) -> dict[str, str]:
    """Write ``rep-<id>.png`` (radar against the target) and ``rep-<id>.html`` (capabilities and
    evidence); return their paths. Raises NotFound for an unknown rep or target."""
    rep = views.require_node(store, schema.REP, rep_id)
    target_name, axes = radar_axes(store, rep_id, target_id, max_axes)
    stem = f"rep-{_file_stem(rep_id)}" + (f"-vs-{_file_stem(target_id)}" if target_id else "")
    png = draw_radar(axes, f"{rep.get('name', rep_id)} ({rep_id})", target_name, Path(out_dir) / f"{stem}.png",
                     "required level" if target_id else "population mean")
    page = write_rep_html(store, rep, target_name, axes, png, Path(out_dir) / f"{stem}.html")
    return {"rep": rep_id, "target": target_id or "population", "png": str(png), "html": str(page)}


def rep_profiles(store: GraphStore, min_evidence: int = 10) -> tuple[list[str], list[str], np.ndarray]:
    """Reps with at least ``min_evidence`` items on capmap's sales skills, those skills, and the
    score matrix (a missing score takes the capability run's population mean)."""
    profiles: dict[str, dict[str, float]] = {}
    n_ev: dict[str, int] = {}
    run_id = None
    for e in store.list_edges(schema.HAS_CAPABILITY):
        if e.dst.startswith("capmap:"):
            profiles.setdefault(e.src, {})[e.dst] = float(e.props["score"])
            n_ev[e.src] = n_ev.get(e.src, 0) + int(e.props["n_evidence"])
            run_id = run_id or e.props.get("run_id")
    run = store.get_node(schema.RUN, run_id) if run_id else None
    priors = json.loads(run["manifest_json"]).get("priors", {}) if run else {}
    reps = sorted(r for r in profiles if n_ev[r] >= min_evidence)
    skills = sorted({s for r in reps for s in profiles[r]})
    X = np.array([[profiles[r].get(s, priors.get(s, 2.0)) for s in skills] for r in reps], dtype=float)
    return reps, skills, X


def labels_map(store: GraphStore, out_dir: Path = DEFAULT_OUT, min_evidence: int = 10, seed: int = 0) -> dict[str, Any]:
    """Write ``labels-map.png``: reps projected on the first two principal components of their
    standardised sales-skill scores, coloured by capability label (reps in none grey), with the
    skills that pull hardest along the axes drawn as arrows."""
    reps, skills, X = rep_profiles(store, min_evidence)
    if len(reps) < 3 or len(skills) < 2:
        raise NotEnoughData(f"{len(reps)} reps with ≥ {min_evidence} evidence items: too few to map")
    label_of: dict[str, str] = {}
    for e in store.list_edges(schema.IN_LABEL):
        label_of.setdefault(e.src, e.dst)
    labels = {x["id"]: x for x in store.iter_nodes(schema.CAPABILITY_LABEL) if x.get("kind", "profile") != "emergent"}
    Z = StandardScaler().fit_transform(X)
    pca = PCA(n_components=2, random_state=seed).fit(Z)
    P = pca.transform(Z)
    names = {s["id"]: str(s.get("name", s["id"])) for s in store.get_nodes(schema.SKILL, skills).values()}
    path = Path(out_dir) / "labels-map.png"
    _draw_map(P, reps, label_of, labels, pca, skills, names, path)
    counts: dict[str, int] = {}
    for r in reps:
        counts[label_of.get(r, "")] = counts.get(label_of.get(r, ""), 0) + 1
    return {"png": str(path), "n_reps": len(reps), "n_labels": len([k for k in counts if k]),
            "n_unlabelled": counts.get("", 0), "explained_variance": [round(float(v), 4) for v in pca.explained_variance_ratio_]}


def _draw_map(P: np.ndarray, reps: Sequence[str], label_of: dict[str, str], labels: dict[str, dict[str, Any]],
              pca: PCA, skills: Sequence[str], names: dict[str, str], path: Path) -> None:
    fig = Figure(figsize=(12, 8.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(reps):
        lid = label_of.get(r, "")
        groups.setdefault(lid if lid in labels else "", []).append(i)
    other = groups.pop("", [])
    if other:
        ax.scatter(P[other, 0], P[other, 1], s=14, c="#bbbbbb", alpha=0.6, label=f"no label / outlier ({len(other)})")
    palette = [f"C{i}" for i in range(10)] + ["#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
    for k, (lid, idx) in enumerate(sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))):
        ax.scatter(P[idx, 0], P[idx, 1], s=26, color=palette[k % len(palette)], alpha=0.85, edgecolors="white", lw=0.4,
                   label=f"{_short(str(labels[lid].get('name', lid)), 60)} ({len(idx)})")
    load = pca.components_.T * np.sqrt(pca.explained_variance_)
    top = np.argsort(-np.hypot(load[:, 0], load[:, 1]))[:6]
    scale = 0.8 * np.abs(P).max() / max(1e-9, float(np.abs(load[top]).max()))
    groups_by_angle: list[list[int]] = []  # skills pulling the same way (within 10°) share one label
    for j in sorted(top, key=lambda j: math.atan2(load[j, 1], load[j, 0])):
        ang = math.degrees(math.atan2(load[j, 1], load[j, 0]))
        last = groups_by_angle[-1][-1] if groups_by_angle else None
        if last is not None and abs(ang - math.degrees(math.atan2(load[last, 1], load[last, 0]))) < 10:
            groups_by_angle[-1].append(j)
        else:
            groups_by_angle.append([j])
    for g in groups_by_angle:
        for j in g:
            x, y = load[j] * scale
            ax.annotate("", xy=(x, y), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "#444444", "lw": 1})
        tip = max(g, key=lambda j: float(np.hypot(*load[j])))
        x, y = load[tip] * scale * 1.05
        ax.text(x, y, "\n".join(names.get(skills[j], skills[j]) for j in g), fontsize=8, color="#222222",
                ha="left" if x >= 0 else "right", va="center",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#999999", "alpha": 0.8})
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"principal component 1 ({ev[0]:.0%} of variance)")
    ax.set_ylabel(f"principal component 2 ({ev[1]:.0%} of variance)")
    ax.set_title(f"Reps by capability label: PCA of standardised sales-skill scores ({len(reps)} reps)\n"
                 "arrows: the skills that pull hardest along the two axes", fontsize=11)
    ax.axhline(0, color="#dddddd", lw=0.8, zorder=0)
    ax.axvline(0, color="#dddddd", lw=0.8, zorder=0)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False, title="label (reps)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
