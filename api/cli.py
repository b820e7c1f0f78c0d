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
from graph.errors import CapmapError

app = typer.Typer(add_completion=False, help="capmap: an evidenced capability map, deal squads and growth paths.")
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
    if s["labels"]:
        out.print("[bold]Capability labels[/bold]")
        for lb in s["labels"]:
            out.print(f"  {lb['name']}  ({lb['n_members']} reps; codes: {', '.join(lb['top_codes'])})")
    team = s["team"]
    out.print(f"[bold]Deal squad[/bold] for {team['deal_name'] or 'the scenario'} ({team['deal']}): coverage {team['coverage']:.0%}")
    for m in team["members"]:
        out.print(escape(f"  • {m['name']} [{m['role']}] covers {', '.join(m['covers'])}"))
        for r in m["evidence"]:
            out.print(escape(f"      – {r}"))
    if team["uncovered"]:
        out.print(f"  uncovered: {', '.join(team['uncovered'])}")
    gp = s["growth_path"]
    if gp:
        out.print(f"[bold]Growth path[/bold] for {gp['rep']} towards {gp['target']}: {gp['total_hours']} h over {gp['weeks']} weeks at {gp['hours_per_week']} h/week")
        for st in gp["steps"]:
            out.print(f"  weeks {st['weeks'][0]}–{st['weeks'][1]}: {st['skill_name']} L{st['from_level']} → L{st['to_level']} "
                      f"({st['hours']} h: {', '.join(st['resources']) or 'expert session to arrange'})")
    out.print(f"Summary written to {Path(settings.out_dir) / 'demo-summary.json'}")


class Format(StrEnum):
    p4g = "p4g"
    onet = "onet"
    crm = "crm"
    xapi = "xapi"
    seeds = "seeds"


@app.command()
def ingest(path: Annotated[Path, typer.Argument(help="file or folder to import")],
           fmt: Annotated[Format, typer.Option("--format", help="what PATH holds")],
           store: StoreOpt = None, as_json: JsonOpt = False,
           no_coder: Annotated[bool, typer.Option("--no-text-coder", help="code with rules only (faster)")] = False,
           rejects: Annotated[Optional[Path], typer.Option("--rejects", help="where to write the rejects report (JSON lines)")] = None,
           ) -> None:
    """Import one source into the store; bad records are reported, the valid rest is kept."""
    from api import jobs
    from ingest.catalogue import load_catalogue, load_skills
    from ingest.crm import load_crm
    from ingest.onet import load_onet
    from ingest.p4g import load_p4g
    from ingest.report import IngestReport
    from ingest.units import apply_all
    from ingest.xapi import load_xapi

    _setup(False)
    settings = _settings(store, None)
    try:
        st = build_store(settings)
        try:
            seeds = settings.seeds_dir
            if fmt is Format.onet:
                change, report = load_onet(path)
                units = [change]
            elif fmt is Format.seeds:
                units = [load_skills(path / "skills.json"), load_catalogue(path / "learning_resources.json")]
                report = IngestReport("seeds", accepted=sum(u.n_rows for u in units))
            else:
                if st.count_nodes("Skill") == 0:
                    jobs.load_reference(st, seeds)
                codebook = jobs.codebook_for(st, seeds)
                names = jobs.skill_names(st)
                if fmt is Format.p4g:
                    coder = None if no_coder else jobs.train_coder(seeds, codebook, settings.seed, evaluate=False)[0]
                    units, report = load_p4g(path, codebook, coder, names)
                elif fmt is Format.crm:
                    units, report = load_crm(path, codebook, names)
                else:
                    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
                    units, report = load_xapi(files, codebook, names)
            apply_all(st, units)
        finally:
            st.close()
    except CapmapError as e:
        _fail(e, as_json)
        return
    rej = None
    if report.rejects:
        rej = str(report.write_rejects(rejects or Path(settings.out_dir) / f"rejects-{report.source}.jsonl"))
        for bad in report.rejects[:10]:
            console.print(f"[yellow]rejected[/yellow] {escape(str(bad))}")
    summary = report.summary(rej)
    console.print(f"{report.source}: accepted {report.accepted}, rejected {report.rejected}, duplicates {report.duplicates}")
    _emit(summary, as_json)


@app.command()
def serve(store: StoreOpt = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve GraphQL (GraphiQL explorer at /graphql) and /health."""
    import uvicorn

    from api.app import create_app

    _setup(True)
    st = build_store(_settings(store, None))
    uvicorn.run(create_app(st), host=host, port=port, log_level="info")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
