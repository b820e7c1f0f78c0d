"""The ``capmap`` command line: demo, ingest, score, cluster, team, growth, serve.

Every command takes ``--json``: it then prints one JSON object as its last line.
"""

from __future__ import annotations

import json
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from api.bootstrap import build_store
from api.settings import Settings
from graph.errors import CapmapError, ConfigError, InputError

app = typer.Typer(add_completion=False, help="capmap: an evidenced capability map, deal squads and growth paths.")


@app.callback()
def _check_environment() -> None:
    # a bad setting is named before any work starts, not after minutes of it
    from ingest.parallel import worker_count

    try:
        worker_count()
    except CapmapError as e:
        # the command's options are not parsed yet (click hands them to the command only after
        # this): --json on the command line still asks for the error as the JSON last line
        _fail(e, "--json" in sys.argv[1:])


console = Console(stderr=True)


def _setup(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)], force=True)


def _settings(store: Optional[str], data_dir: Optional[Path]) -> Settings:
    kw: dict[str, Any] = {}
    if store:
        kw["store"] = store
    if data_dir:
        kw["data_dir"] = data_dir
    return Settings(**kw)


def _emit(obj: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


def _fail(e: CapmapError, as_json: bool) -> None:
    console.print(f"[red]error:[/red] {e}")
    _emit({"error": str(e), "type": type(e).__name__}, as_json)
    raise typer.Exit(2)


StoreOpt = Annotated[Optional[str], typer.Option("--store", help="sqlite:///path (default out/capmap.sqlite) or bolt://host:7687")]
DataOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="folder with non-bundled data (crm_sales_opportunities/)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object as the last line")]


@app.command()
def demo(store: StoreOpt = None, data_dir: DataOpt = None, as_json: JsonOpt = False,
         quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False) -> None:
    """Run the whole main job on the bundled real data (plus --data-dir) and print a summary."""
    from api.demo import run_demo

    _setup(not quiet)
    settings = _settings(store, data_dir)
    try:
        st = build_store(settings)
        try:
            summary = run_demo(st, settings)
        finally:
            st.close()
    except CapmapError as e:
        _fail(e, as_json)
        return
    _print_summary(summary, settings)
    _emit(summary, as_json)


def _print_summary(s: dict[str, Any], settings: Settings) -> None:
    out = Console()
    out.rule("[bold]capmap demo[/bold]")
    t = Table(show_header=False, box=None)
    for k in ("n_reps", "n_skills", "n_deals", "n_events", "n_evidence", "n_capabilities", "n_labels", "n_outliers"):
        t.add_row(k, f"{s[k]:,}")
    t.add_row("store", s["store"])
    if s.get("coder"):
        t.add_row("text coder (5-fold by dialogue)", f"macro-F1 {s['coder']['macro_f1']:.3f}, accuracy {s['coder']['accuracy']:.3f}")
    t.add_row("elapsed", f"{s['elapsed_s']} s")
    out.print(t)
    if s.get("ingest"):
        out.print("[bold]Imported[/bold] (each source's records)")
    for name, r in (s.get("ingest") or {}).items():
        line = f"  {name}: accepted {r['accepted']:,}, rejected {r['rejected']:,}, duplicates {r['duplicates']:,}"
        out.print(escape(line + (f" (every rejected record: {r['rejects_file']})" if r.get("rejects_file") else "")))
    if s["labels"]:
        share, ari = s.get("outlier_share"), s.get("label_stability_ari")
        extra = "" if share is None else f": {share:.0%} of clustered reps are outliers"
        extra += "" if ari is None else f", stability ARI {ari:.2f} between seeded bootstrap refits"
        out.print(f"[bold]Capability labels[/bold]{escape(extra)}")
        for lb in s["labels"]:
            out.print(escape(f"  {lb['name']}  ({lb['n_members']} reps; codes: {', '.join(lb['top_codes'])})"))
    bundles = s.get("scenario_bundles") or []
    found = [b for b in bundles if b.get("required")]
    if bundles:
        out.print(f"[bold]Scenario bundles[/bold]: {len(found)} of {len(bundles)} scenarios have skills that separate won from lost")
        for b in found:
            out.print(escape(f"  {b['name']}: {b['explanation']}"))
    emergent = s.get("emergent_labels") or {}
    if emergent.get("proposals"):
        out.print(f"[bold]Emergent capabilities proposed for review[/bold] ({emergent['n_proposals']}; `capmap labels approve|reject ID`)")
        for p in emergent["proposals"]:
            out.print(escape(f"  {p['id']}: {p['name']} — {p['n_reps']} reps, {p['lift']:.2f}× as common in won engagements"))
    team = s["team"]
    out.print(f"[bold]Deal squad[/bold] for {team['deal_name'] or 'the scenario'} ({team['deal']}): coverage {team['coverage']:.0%}")
    for m in team["members"]:
        out.print(escape(f"  • {m['name']} [{m['role']}] covers {', '.join(m.get('covers_names') or m['covers'])}"))
        for r in m["evidence"]:
            out.print(escape(f"      – {r}"))
    if team["uncovered"]:
        out.print(f"  uncovered: {', '.join(team['uncovered'])}")
    gp = s["growth_path"]
    if gp:
        weeks = f"{gp['weeks']} week" + ("s" if gp["weeks"] != 1 else "")
        out.print(f"[bold]Growth path[/bold] for {gp['rep']} towards {gp['target']}: {gp['total_hours']} h over {weeks} at {gp['hours_per_week']} h/week")
        if gp.get("unassessed"):
            out.print(f"  {len(gp['unassessed'])} of the target's required skills have no evidence yet, so no gap is claimed for them")
        for st in gp["steps"]:
            when = f"week {st['weeks'][0]}" if st["weeks"][0] == st["weeks"][1] else f"weeks {st['weeks'][0]}–{st['weeks'][1]}"
            out.print(f"  {when}: {st['skill_name']} L{st['from_level']} → L{st['to_level']} "
                      f"({st['hours']} h: {', '.join(st['resources']) or 'expert session to arrange'})")
    out.print(f"Summary written to {Path(settings.out_dir) / 'demo-summary.json'}")


class Format(StrEnum):
    p4g = "p4g"
    onet = "onet"
    crm = "crm"
    xapi = "xapi"
    seeds = "seeds"
    events = "events"


@app.command()
def ingest(path: Annotated[Path, typer.Argument(help="file or folder to import")],
           fmt: Annotated[Format, typer.Option("--format", help="what PATH holds")],
           store: StoreOpt = None, as_json: JsonOpt = False,
           no_coder: Annotated[bool, typer.Option("--no-text-coder", help="code with rules only (faster)")] = False,
           rejects: Annotated[Optional[Path], typer.Option("--rejects", help="where to write the rejects report (JSON lines)")] = None,
           tz: Annotated[str, typer.Option("--tz", envvar="CAPMAP_DEFAULT_TZ",
                                           help="events: IANA zone of timestamps written without one")] = "Asia/Shanghai",
           identity: Annotated[Optional[Path], typer.Option("--identity", help="events, xapi: identity map (events: JSON or CSV identity,rep; xapi: JSON)")] = None,
           unit_size: Annotated[int, typer.Option("--unit-size", min=1, help="events: events per transaction")] = 2000,
           ) -> None:
    """Import one source into the store; bad records are reported, the valid rest is kept."""
    from api import jobs
    from ingest.catalogue import load_catalogue, load_skills
    from ingest.crm import load_crm
    from ingest.onet import load_onet
    from ingest.p4g import load_p4g
    from ingest.units import apply_all
    from ingest.xapi import load_xapi

    _setup(False)
    settings = _settings(store, None)
    if identity is not None and fmt not in (Format.events, Format.xapi):
        _fail(ConfigError(f"--identity applies to --format events and xapi, not {fmt.value}"), as_json)
    try:
        if not path.exists():
            raise InputError(str(path), None, None, "file or folder not found")
        # known writable before anything is imported: a failure after the import had committed
        # would report an import that happened as failed, and lose the rejects
        rejects = _writable(rejects or Path(settings.out_dir) / f"rejects-{fmt.value}.jsonl")
        st = build_store(settings)
        try:
            seeds = settings.seeds_dir
            if fmt is Format.onet:
                change, report = load_onet(path)
                # capmap's skills and catalogue link to O*NET elements: (re)apply them after, so
                # the result does not depend on which was imported first
                units = [change, load_skills(seeds / "skills.json"), load_catalogue(seeds / "learning_resources.json")]
            elif fmt is Format.seeds:
                change, report = load_onet(path / "onet")
                units = [change, load_skills(path / "skills.json"), load_catalogue(path / "learning_resources.json")]
                report.source = "seeds"
            else:
                if any(st.get_node("Skill", s) is None for s in ("capmap:closing", "onet:2.B.1.c")):
                    jobs.load_reference(st, seeds)  # the codebook's skills must exist before coding
                codebook = jobs.codebook_for(st, seeds)
                names = jobs.skill_names(st)
                if fmt is Format.p4g:
                    coder = None if no_coder else jobs.train_coder(seeds, codebook, settings.seed, evaluate=False)[0]
                    units, report = load_p4g(path, codebook, coder, names)
                elif fmt is Format.crm:
                    units, report = load_crm(path, codebook, names)
                elif fmt is Format.events:
                    coder = None if no_coder else jobs.train_coder(seeds, codebook, settings.seed, evaluate=False)[0]
                    report = _ingest_events(st, path, codebook, names, coder, tz, identity, unit_size, rejects)
                    units = []
                else:
                    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
                    units, report = load_xapi(files, codebook, names, identity, store=st)
            apply_all(st, units)
        finally:
            st.close()
    except CapmapError as e:
        _fail(e, as_json)
        return
    rej = report.settle_rejects(rejects)
    if rej is not None:
        for bad in report.rejects[:10]:
            console.print(f"[yellow]rejected[/yellow] {escape(str(bad))}")
        if report.rejected > 10:
            console.print(f"… and {report.rejected - 10} more")
        console.print(f"every rejected record, with file, line, field and reason: {escape(rej)}")
    summary = report.summary(rej)
    console.print(f"{report.source}: accepted {report.accepted}, rejected {report.rejected}, duplicates {report.duplicates}")
    if report.accepted:
        console.print("run `capmap score` to refresh the capability map with what was imported")
    _emit(summary, as_json)


def _writable(path: Path) -> Path:
    """``path`` if a file can be written there (its folder made if missing), else ConfigError."""
    if path.is_dir():
        raise ConfigError(f"--rejects {path}: is a folder; name a file, e.g. {path / 'rejects.jsonl'}")
    existed = path.exists()
    blocking = next((p for p in path.parents if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise ConfigError(f"--rejects {path}: {blocking} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as e:
        raise ConfigError(f"--rejects {path}: cannot write there ({e.strerror})") from None
    if not existed:
        path.unlink()
    return path


def _ingest_events(st: Any, path: Path, codebook: Any, names: dict[str, tuple[str, str]], coder: Any, tz: str,
                   identity: Optional[Path], unit_size: int, rejects: Path) -> Any:
    """Stream an event file into the store with a progress bar (bytes read / total)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from ingest.events import EventCoding, ingest_events, load_identity_map

    ids = load_identity_map(identity) if identity else None
    total = path.stat().st_size if path.is_file() else None
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task(path.name, total=total)
        return ingest_events(path, st, EventCoding(codebook, names, coder), identity=ids, default_tz=tz,
                             unit_size=unit_size, progress=lambda done: bar.update(task, completed=done),
                             rejects_path=rejects)


@app.command()
def score(store: StoreOpt = None, as_json: JsonOpt = False,
          reps: Annotated[Optional[list[str]], typer.Option("--rep", help="rescore only these reps (incremental)")] = None,
          ) -> None:
    """Recompute the capability map from the evidence in the store, then the capability labels.

    After an import, run it to refresh what GraphQL shows; with --rep, only those reps are
    rescored (against the last full run's priors) and labels are left as they are."""
    from api import jobs
    from clustering.scoring import ScoringParams

    _setup(False)
    settings = _settings(store, None)
    try:
        st = build_store(settings)
        try:
            version = jobs.codebook_for(st, settings.seeds_dir).version
            params = ScoringParams(half_life_days=settings.half_life_days, prior_strength=settings.prior_strength)
            run_id, n_caps = jobs.recompute_capabilities(st, params, version, reps=reps)
            out: dict[str, Any] = {"capability_run": run_id, "n_capabilities": n_caps}
            if not reps:
                labels = jobs.cluster_labels(st, run_id, settings.min_evidence_for_clustering,
                                             settings.min_cluster_size, settings.seed)
                out.update({k: labels.get(k) for k in ("n_labels", "n_outliers", "outlier_share", "message")})
        finally:
            st.close()
    except CapmapError as e:
        _fail(e, as_json)
        return
    console.print(escape(f"capability run {run_id}: {n_caps} capabilities"
                         + (f"; {out['n_labels']} labels, {out['n_outliers']} outliers" if "n_labels" in out else "")))
    _emit(out, as_json)


@app.command()
def serve(store: StoreOpt = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve GraphQL (GraphiQL explorer at /graphql) and /health."""
    import uvicorn

    from api.app import create_app

    _setup(True)
    settings = _settings(store, None)
    try:
        _require_store(settings)
        st = build_store(settings)
    except CapmapError as e:
        _fail(e, False)
        return
    uvicorn.run(create_app(st), host=host, port=port, log_level="info")


report_app = typer.Typer(help="Reports people would rather look at than read: PNG charts and HTML pages.")
app.add_typer(report_app, name="report")
labels_app = typer.Typer(help="Review capability labels: list them, approve or reject proposals.")
app.add_typer(labels_app, name="labels")
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="folder for the files (default out/reports)")]


def _require_store(settings: Settings) -> None:
    """Refuse an embedded store file that does not exist (a command that reads one would create
    it, empty, and answer from it as if all were well)."""
    if settings.store.startswith("sqlite:///") and not Path(settings.store[len("sqlite:///"):]).is_file():
        raise ConfigError(f"no store at {settings.store}: run `capmap demo` or `capmap ingest` first, "
                          "or name an existing store with --store")


def _with_store(store: Optional[str], as_json: bool, work: Any) -> Any:
    """Open an existing store, run ``work(store, settings)``, close it; a CapmapError exits with
    code 2."""
    _setup(False)
    settings = _settings(store, None)
    try:
        _require_store(settings)
        st = build_store(settings)
        try:
            return work(st, settings)
        finally:
            st.close()
    except CapmapError as e:
        _fail(e, as_json)


@report_app.command("rep")
def report_rep(rep_id: Annotated[str, typer.Argument(help="the rep's id, e.g. p4g:user_71")],
               target: Annotated[Optional[str], typer.Option("--target", help="a role (onet-role:…) or scenario id; "
                                                             "default: the population mean")] = None,
               out: OutOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """A rep's radar chart against a target (PNG) and the evidence behind it (HTML)."""
    from api.reports import rep_report

    res = _with_store(store, as_json, lambda st, s: rep_report(st, rep_id, target, out or Path(s.out_dir) / "reports"))
    console.print(f"wrote {res['png']} and {res['html']}")
    _emit(res, as_json)


@report_app.command("labels")
def report_labels(out: OutOpt = None, store: StoreOpt = None, as_json: JsonOpt = False,
                  min_evidence: Annotated[int, typer.Option("--min-evidence", help="reps with fewer sales-skill "
                                                            "evidence items are left out")] = 10) -> None:
    """A 2-D map (PCA) of reps coloured by capability label (PNG)."""
    from api.reports import labels_map

    res = _with_store(store, as_json, lambda st, s: labels_map(st, out or Path(s.out_dir) / "reports", min_evidence, s.seed))
    console.print(f"wrote {res['png']} ({res['n_reps']} reps, {res['n_labels']} labels, {res['n_unlabelled']} without)")
    _emit(res, as_json)


@labels_app.command("list")
def labels_list(kind: Annotated[Optional[str], typer.Option("--kind", help="profile or emergent")] = None,
                status: Annotated[Optional[str], typer.Option("--status", help="proposed, approved or rejected")] = None,
                store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Capability labels with their status (emergent proposals show their top terms)."""
    from graph import schema

    where = {k: v for k, v in (("kind", kind), ("status", status)) if v}
    rows = _with_store(store, as_json, lambda st, s: st.list_nodes(schema.CAPABILITY_LABEL, where=where or None))
    out = Console()
    for r in rows:
        terms = ", ".join(r.get("top_terms", [])[:5]) or ", ".join(r.get("top_codes", []))
        out.print(escape(f"{r['id']}  [{r.get('kind', 'profile')}/{r.get('status', 'proposed')}]  {r.get('name', '')}  ({terms})"))
    _emit({"labels": rows}, as_json)


def _review(label_id: str, decision: str, by: Optional[str], store: Optional[str], as_json: bool) -> None:
    from api.jobs import review_label

    row = _with_store(store, as_json, lambda st, s: review_label(st, label_id, decision, by))
    console.print(f"{row['id']}: {row['status']}")
    _emit(row, as_json)


ByOpt = Annotated[Optional[str], typer.Option("--by", help="who decides (recorded on the label)")]


@labels_app.command("approve")
def labels_approve(label_id: Annotated[str, typer.Argument(help="the label's id")], by: ByOpt = None,
                   store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Approve a proposed capability label."""
    _review(label_id, "approve", by, store, as_json)


@labels_app.command("reject")
def labels_reject(label_id: Annotated[str, typer.Argument(help="the label's id")], by: ByOpt = None,
                  store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Reject a proposed capability label (kept, marked rejected: a rerun that finds it again keeps it rejected)."""
    _review(label_id, "reject", by, store, as_json)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
