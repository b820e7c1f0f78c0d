"""CRM Sales Opportunities (Maven Analytics; fictitious; licence unknown, so read from a data
directory and never bundled): agents and managers as reps, accounts, products, deals with
stage, dates, value and outcome, and their stage changes as behaviour events.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Generator, Sequence
from functools import lru_cache
from pathlib import Path

from graph import schema
from graph.errors import InputError
from graph.model import Account, Deal, Event, Evidence, Rep, Scenario, make
from graph.store import ChangeSet
from ingest.codebook import Code, Codebook
from ingest.csvio import read_rows
from ingest.evidence import evidence_for
from ingest.records import CrmAccountRow, CrmPipelineRow, CrmProductRow, CrmTeamRow, validate
from ingest.report import IngestReport
from ingest.units import EVENTS_PER_UNIT, collect, event_units

FILES = ("sales_teams.csv", "accounts.csv", "products.csv", "sales_pipeline.csv")
_OUTCOMES = {"Won": "won", "Lost": "lost"}  # a deal at any other stage is open
_STAGES = ("Engaging", "Won", "Lost")  # the stage changes a deal's row can hold (_stage_events)


@lru_cache(maxsize=65536)
def slug(text: str) -> str:
    """A stable id fragment for a name: its letters and digits in any script, lower-cased and
    NFKC-normalised (full-width Ｇ is G), runs of anything else as one hyphen. Empty when the
    name has no letter or digit, which callers refuse.

    >>> slug("Moses Frase"), slug("GTX Plus Basic"), slug("王 伟"), slug("李娜"), slug("ＧＴＸ  Pro"), slug("—")
    ('moses-frase', 'gtx-plus-basic', '王-伟', '李娜', 'gtx-pro', '')
    """
    return _NOT_ALNUM.sub("-", unicodedata.normalize("NFKC", text).lower()).strip("-")


_NOT_ALNUM = re.compile(r"[\W_]+")  # for ASCII names the same fragments as [^a-z0-9]+ always gave


def _no_id(path: Path, line: int, field: str, value: str) -> InputError:
    return InputError(str(path), line, field, f"{value!r} has no letter or digit to make an id of")


@lru_cache(maxsize=4096)
def _product_key(name: str) -> str:
    return re.sub(r"\s+", "", name).lower()


def _stage_events(row: CrmPipelineRow, rep_id: str, deal_id: str) -> list[tuple[str, Event]]:
    """The deal's stage changes (the stage reached, its event): engaging, then won or lost."""
    out = []
    if row.engage_date:
        out.append(("Engaging", make(Event, {  # every field, in order: made without __init__
            "id": f"{deal_id}:engaging", "rep_id": rep_id, "type": "stage_change", "source": "crm",
            "at": f"{row.engage_date.isoformat()}T00:00:00Z", "deal_id": deal_id,
            "text": f"{row.opportunity_id} → Engaging ({row.product})", "turn": None, "attrs_json": None})))
    if row.deal_stage in ("Won", "Lost") and row.close_date:
        value = f", value {row.close_value:g}" if row.close_value is not None else ""
        out.append((row.deal_stage, make(Event, {
            "id": f"{deal_id}:{row.deal_stage.lower()}", "rep_id": rep_id, "type": "stage_change", "source": "crm",
            "at": f"{row.close_date.isoformat()}T00:00:00Z", "deal_id": deal_id,
            "text": f"{row.opportunity_id} → {row.deal_stage} ({row.product}{value})", "turn": None,
            "attrs_json": None})))
    return out


def iter_crm(
    data_dir: str | Path, codebook: Codebook, skill_names: dict[str, tuple[str, str]]
) -> Generator[ChangeSet, None, IngestReport]:
    """Yield the units that load the CRM export as they are made (see :mod:`ingest.parallel`):
    first the reps, accounts, scenarios and deals with their edges (and the deletion of stage
    events a corrected export no longer has), then the stage-change events with their evidence,
    :data:`ingest.units.EVENTS_PER_UNIT` at a time, each unit coded just before it is yielded.
    Events come in id order, so each unit's rows sit together in the stores' indexes (a unit of
    ids in file order touches most of an index's pages; in SQLite about 13 % more write time).
    Returns the report."""
    d = Path(data_dir)
    report = IngestReport("crm")
    reps: dict[str, Rep] = {}
    reports_to: list[dict[str, str]] = []
    path = d / "sales_teams.csv"
    for rec in read_rows(path, required=("sales_agent", "manager", "regional_office")):
        t = validate(CrmTeamRow, rec, str(path))
        if isinstance(t, InputError):
            report.reject(t)
            continue
        bad = next((f for f, v in (("sales_agent", t.sales_agent), ("manager", t.manager)) if not slug(v)), None)
        if bad is not None:
            report.reject(_no_id(path, rec.line, bad, getattr(t, bad)))
            continue
        mid = f"crm:{slug(t.manager)}"
        reps.setdefault(mid, Rep(id=mid, name=t.manager, function="sales-manager", office=t.regional_office, source="crm"))
        aid = f"crm:{slug(t.sales_agent)}"
        reps[aid] = Rep(id=aid, name=t.sales_agent, function="sales", team=t.manager, office=t.regional_office, source="crm")
        reports_to.append({"src": aid, "dst": mid})
        report.accepted += 1
    accounts: dict[str, Account] = {}
    path = d / "accounts.csv"
    for rec in read_rows(path, required=("account", "sector")):
        a = validate(CrmAccountRow, rec, str(path))
        if isinstance(a, InputError):
            report.reject(a)
            continue
        if not slug(a.account):
            report.reject(_no_id(path, rec.line, "account", a.account))
            continue
        accounts[a.account] = Account(id=f"crm:acct:{slug(a.account)}", name=a.account, sector=a.sector,
                                      revenue=a.revenue, employees=a.employees, office_location=a.office_location,
                                      parent=a.subsidiary_of)
        report.accepted += 1
    products: dict[str, CrmProductRow] = {}
    path = d / "products.csv"
    for rec in read_rows(path, required=("product", "series", "sales_price")):
        p = validate(CrmProductRow, rec, str(path))
        if isinstance(p, InputError):
            report.reject(p)
            continue
        products[_product_key(p.product)] = p
        report.accepted += 1

    deals: list[Deal] = []
    scenarios: dict[str, Scenario] = {}
    worked: list[dict[str, str]] = []
    seen: dict[str, tuple[int, CrmPipelineRow]] = {}  # opportunity -> its first line and row
    path = d / "sales_pipeline.csv"
    rows: list[tuple[CrmPipelineRow, CrmProductRow]] = []
    for rec in read_rows(path, required=("opportunity_id", "sales_agent", "product", "deal_stage")):
        r = validate(CrmPipelineRow, rec, str(path))
        if isinstance(r, InputError):
            report.reject(r)
            continue
        prod = products.get(_product_key(r.product))
        if prod is None:
            report.reject(InputError(str(path), rec.line, "product", f"unknown product {r.product!r} (not in products.csv)"))
            continue
        if r.account and r.account not in accounts:
            report.reject(InputError(str(path), rec.line, "account", f"unknown account {r.account!r} (not in accounts.csv)"))
            continue
        if r.deal_stage in ("Won", "Lost") and r.close_date is None:
            report.reject(InputError(str(path), rec.line, "close_date", f"a {r.deal_stage} deal needs a close_date"))
            continue
        if not slug(r.sales_agent):
            report.reject(_no_id(path, rec.line, "sales_agent", r.sales_agent))
            continue
        agent_id = f"crm:{slug(r.sales_agent)}"
        if reps and agent_id not in reps:
            report.reject(InputError(str(path), rec.line, "sales_agent",
                                     f"unknown sales agent {r.sales_agent!r} (not in sales_teams.csv)"))
            continue
        if report.repeated(seen, r.opportunity_id, r, str(path), rec.line, "opportunity_id", repr(r.opportunity_id)):
            continue
        rows.append((r, prod))
        report.accepted += 1

    rows.sort(key=lambda rp: f"crm:{rp[0].opportunity_id}:")  # the order of their events' ids
    staged: list[tuple[Event, CrmPipelineRow, CrmProductRow, str]] = []  # (event, row, product, stage)
    for r, prod in rows:
        product = prod.product
        rep_id = f"crm:{slug(r.sales_agent)}"
        if rep_id not in reps:
            reps[rep_id] = Rep(id=rep_id, name=r.sales_agent, function="sales", source="crm")
        deal_id = f"crm:{r.opportunity_id}"
        acct = accounts.get(r.account) if r.account else None
        scenario_id = None
        if acct is not None and acct.sector:
            series = prod.series
            scenario_id = f"scn:crm:{slug(acct.sector)}|{slug(series)}"
            scenarios.setdefault(scenario_id, Scenario(
                id=scenario_id, customer_type=f"B2B buyer of {series}", stage="engage to close",
                industry=acct.sector, name=f"{series} series to {acct.sector} accounts"))
        outcome = _OUTCOMES.get(r.deal_stage, "open")
        deals.append(make(Deal, {  # every field, in order: made without __init__
            "id": deal_id, "name": f"{product} for {r.account or 'unassigned account'}", "stage": r.deal_stage,
            "outcome": outcome, "value": r.close_value, "list_price": prod.sales_price, "product": product,
            "account_id": acct.id if acct else None, "scenario_id": scenario_id,
            "engaged_at": r.engage_date.isoformat() if r.engage_date else None,
            "closed_at": r.close_date.isoformat() if r.close_date else None, "source": "crm"}))
        worked.append({"src": rep_id, "dst": deal_id, "role": "sales"})
        staged.extend((ev, r, prod, stage) for stage, ev in _stage_events(r, rep_id, deal_id))
    change = ChangeSet().add_nodes(list(reps.values())).add_nodes(list(accounts.values()))
    change.add_nodes(list(scenarios.values()))
    # a deal's row is the whole record: a field the export left empty (a close date or value
    # after Won went back to Engaging) is written as null, which removes what an earlier
    # import stored (a new node simply has no such property)
    change.add_rows(schema.DEAL, [dict(vars(d)) for d in deals])
    change.add_edges(schema.REPORTS_TO, schema.REP, schema.REP, reports_to)
    change.add_edges(schema.WORKED_ON, schema.REP, schema.DEAL, worked)
    # a corrected export may move a deal from Won to Lost, back to open, or drop its engage
    # date: remove the stage events, and their evidence, that the deal's row no longer has
    stage_codes = _codes_by_stage(codebook)
    current = {ev.id for ev, _, _, _ in staged}
    stale = sorted((event_id, stage) for r, _ in rows for stage in _STAGES
                   if (event_id := f"crm:{r.opportunity_id}:{stage.lower()}") not in current)
    if stale:
        change.delete_nodes.append((schema.EVENT, [e for e, _ in stale]))
        change.delete_nodes.append((schema.EVIDENCE, [f"ev:{e}:{c.code}:0" for e, stage in stale
                                                      for c in stage_codes.get(stage, ())]))
    yield change
    for i in range(0, len(staged), EVENTS_PER_UNIT):
        chunk = staged[i : i + EVENTS_PER_UNIT]
        evidence = [x for ev, r, prod, stage in chunk
                    for x in _code_stage_event(ev, r, stage_codes.get(stage, ()), codebook, skill_names,
                                               prod.sales_price)]
        yield from event_units([ev for ev, _, _, _ in chunk], evidence)
    return report


def load_crm(
    data_dir: str | Path, codebook: Codebook, skill_names: dict[str, tuple[str, str]]
) -> tuple[list[ChangeSet], IngestReport]:
    """:func:`iter_crm`'s units as a list, and the report."""
    return collect(iter_crm(data_dir, codebook, skill_names))


def _codes_by_stage(codebook: Codebook) -> dict[str, list[Code]]:
    """The codebook's stage-change codes by the stage they code, in codebook order."""
    out: dict[str, list[Code]] = {}
    for code in codebook.event_codes("stage_change"):
        if code.event_stage is not None:
            out.setdefault(code.event_stage, []).append(code)
    return out


def _code_stage_event(
    ev: Event, row: CrmPipelineRow, codes: Sequence[Code], codebook: Codebook,
    skill_names: dict[str, tuple[str, str]], list_price: float,
) -> list[Evidence]:
    """Evidence of the stage change ``ev`` by each of the ``codes`` of its stage."""
    out = []
    for code in codes:
        level, why = code.level, None
        up = code.value_upgrade
        if up and row.close_value is not None and list_price > 0 and row.close_value >= up["price_ratio"] * list_price:
            level, why = max(level, up["level"]), (up["why_en"], up["why_zh"])
        out.append(evidence_for(ev, code, level=level, confidence=1.0, coder="rules", codebook=codebook,
                                skill_names=skill_names, text=ev.text, why=why))
    return out
