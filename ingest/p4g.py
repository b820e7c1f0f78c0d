"""PersuasionForGood (Wang et al., ACL 2019) as reps, engagements and behaviour events.

Each persuader (``B3`` of ``full_info.csv``, role ``B4 = 0``) is a Rep; each dialogue is an
engagement (a Deal) that is *won* when the persuadee's actual donation ``B6`` is above 0; each
persuader turn is a behaviour event with its text and turn order. Turns are coded sentence by
sentence: the 300 annotated dialogues carry a human label per sentence (coder
``annotation``); the others are coded by the trained :class:`~ingest.coders.TextCoder` and the
codebook's rules.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field, replace
from operator import itemgetter
from pathlib import Path

import numpy as np

from graph import schema
from graph.errors import InputError
from graph.model import Deal, Event, Evidence, Rep, Scenario, make
from graph.store import ChangeSet
from ingest.codebook import Codebook
from ingest.coders import NON_STRATEGY, TextCoder, Unit
from ingest.csvio import read_rows
from ingest.evidence import RuleCoder, evidence_for, outcome_level, union_pattern
from ingest.records import P4GAnnotatedRow, P4GDialogRow, P4GInfoRow, p4g_started_at, validate
from ingest.report import IngestReport
from ingest.text import sentence_units
from ingest.units import collect, event_units

log = logging.getLogger(__name__)

SCENARIO = Scenario(
    id="scn:p4g:individual-donor|first-contact|nonprofit",
    customer_type="individual donor",
    stage="first contact to commitment",
    industry="nonprofit",
    name="Charity donation ask to an individual (PersuasionForGood)",
)
MIN_TEXT_CONFIDENCE = 0.35


@dataclass
class AnnotatedUnit:
    dialogue: str
    turn: int
    text: str
    label: str
    prev_text: str
    index_in_turn: int


@dataclass
class P4GData:
    """What the files hold, validated: per-dialogue persuader, donation and turns."""

    persuader: dict[str, str] = field(default_factory=dict)
    donation: dict[str, float | None] = field(default_factory=dict)
    turns: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)  # (turn, role, text)
    annotated: dict[str, list[AnnotatedUnit]] = field(default_factory=dict)
    bad_info: dict[str, int] = field(default_factory=dict)  # dialogue -> line of its rejected persuader row
    report: IngestReport = field(default_factory=lambda: IngestReport("p4g"))


def read_annotated(path: Path, report: IngestReport | None = None) -> list[AnnotatedUnit]:
    """Persuader sentence units of the annotated dialogues with their label and context."""
    report = report or IngestReport("p4g-annotated")
    units: list[AnnotatedUnit] = []
    last_other: dict[str, str] = {}
    pos: dict[tuple[str, int], int] = defaultdict(int)
    for rec in read_rows(path, required=("B2", "B4", "Turn", "Unit", "er_label_1")):
        row = validate(P4GAnnotatedRow, rec, str(path))
        if isinstance(row, InputError):
            report.reject(row)
            continue
        if row.B4 == 1:
            key = row.B2
            prev = last_other.get(key, "")
            # consecutive persuadee units of one turn form one context
            last_other[key] = (prev + " " + row.Unit).strip() if pos.get((key, -row.Turn - 1)) else row.Unit
            pos[(key, -row.Turn - 1)] = 1
            continue
        k = (row.B2, row.Turn)
        units.append(
            AnnotatedUnit(row.B2, row.Turn, row.Unit, row.er_label_1 or NON_STRATEGY, last_other.get(row.B2, ""), pos[k])
        )
        pos[k] += 1
    return units


def coder_label(label: str, classes: Iterable[str]) -> str:
    """The text coder's class for an annotation label: itself if a class, else non-strategy."""
    return label if label in set(classes) else NON_STRATEGY


def read_p4g(data_dir: Path) -> P4GData:
    """Read and validate the PersuasionForGood files in ``data_dir``; bad records are reported."""
    data = P4GData()
    info = data_dir / "full_info.csv"
    info_seen: dict[tuple[str, int], tuple[int, object]] = {}  # (dialogue, role) -> (line, B3 or B6)
    for rec in read_rows(info, required=("B2", "B3", "B4", "B6")):
        row = validate(P4GInfoRow, rec, str(info))
        if isinstance(row, InputError):
            data.report.reject(row)
            if rec.row.get("B2") and rec.row.get("B4", "").strip() == "0":
                data.bad_info[rec.row["B2"].strip()] = rec.line
            continue
        # one row per dialogue and role: a repeat is a duplicate, a differing one is refused
        role = "persuader" if row.B4 == 0 else "persuadee"
        field, value = ("B3", row.B3) if row.B4 == 0 else ("B6", row.B6)
        if data.report.repeated(info_seen, (row.B2, row.B4), value, str(info), rec.line, field,
                                f"the {role} of dialogue {row.B2!r}"):
            continue
        if row.B4 == 0:
            data.persuader[row.B2] = row.B3
        else:
            data.donation[row.B2] = row.B6
    dialog = data_dir / "full_dialog.csv"
    turn_seen: dict[tuple[str, int, int], tuple[int, str]] = {}  # (dialogue, turn, role) -> (line, text)
    for rec in read_rows(dialog, required=("B2", "B4", "Turn", "Unit")):
        turn = validate(P4GDialogRow, rec, str(dialog))
        if isinstance(turn, InputError):
            data.report.reject(turn)
            continue
        if turn.B2 not in data.persuader:
            bad = data.bad_info.get(turn.B2)
            why = (f"dialogue {turn.B2!r}: its persuader row in full_info.csv (line {bad}) was rejected" if bad
                   else f"dialogue {turn.B2!r} has no persuader in full_info.csv")
            data.report.reject(InputError(str(dialog), rec.line, "B2", why))
            continue
        role = "persuader" if turn.B4 == 0 else "persuadee"
        if data.report.repeated(turn_seen, (turn.B2, turn.Turn, turn.B4), turn.Unit, str(dialog), rec.line, "Unit",
                                f"turn {turn.Turn} of the {role} of dialogue {turn.B2!r}"):
            continue  # one row per dialogue, turn and role
        data.turns.setdefault(turn.B2, []).append((turn.Turn, turn.B4, turn.Unit))
    ann = data_dir / "annotated_300_dialog.csv"
    if ann.is_file():
        for u in read_annotated(ann, data.report):
            data.annotated.setdefault(u.dialogue, []).append(u)
    return data


DIALOGUES_PER_CHUNK = 100  # dialogues coded and written together: about 1,500 events


def load_p4g(
    data_dir: str | Path,
    codebook: Codebook,
    coder: TextCoder | None,
    skill_names: dict[str, tuple[str, str]],
) -> tuple[list[ChangeSet], IngestReport]:
    """Build the units that load PersuasionForGood: reps and deals, then events with evidence."""
    return collect(iter_p4g(data_dir, codebook, coder, skill_names))


def iter_p4g(
    data_dir: str | Path,
    codebook: Codebook,
    coder: TextCoder | None,
    skill_names: dict[str, tuple[str, str]],
    chunk: int = DIALOGUES_PER_CHUNK,
    *,
    data: P4GData | None = None,
    shard: tuple[int, int] = (0, 1),
) -> Generator[ChangeSet, None, IngestReport]:
    """Yield the units that load PersuasionForGood as they are coded: first the reps, deals and
    their edges, then events with their evidence, ``chunk`` dialogues at a time (coding is per
    sentence, so the chunking changes nothing in what is written). Returns the report.

    ``data`` is the files as :func:`read_p4g` read them (read here if not given). Shard ``(k,
    n)`` yields only every n-th chunk of dialogues from the k-th, and shard 0 alone the reps and
    deals, so n shards, e.g. in n worker processes, yield between them the units of one whole
    import. Shard 0's report carries the files' rejected records; the others' report only what
    they coded (:meth:`IngestReport.merge` adds them up).
    """
    k, n = shard
    if not 0 <= k < n:
        raise ValueError(f"shard {shard!r}: want (k, n) with 0 <= k < n")
    if data is None:
        data = read_p4g(Path(data_dir))
    else:  # a report of its own (the files' rejects counted once, by shard 0): ``data`` is shared
        data = replace(data, report=IngestReport(data.report.source).merge(data.report) if k == 0
                       else IngestReport(data.report.source))
    report = data.report
    dialogues = sorted(data.turns)
    started_at = {dlg: p4g_started_at(dlg) for dlg in dialogues}
    if k == 0:
        yield _reps_and_deals(data, dialogues, started_at)
    for i in range(k * chunk, len(dialogues), n * chunk):
        events, evidence = _code_dialogues(data, dialogues[i : i + chunk], started_at, codebook, coder, skill_names)
        yield from event_units(events, _dedupe(evidence))
    return report


def _reps_and_deals(data: P4GData, dialogues: list[str], started_at: dict[str, str | None]) -> ChangeSet:
    """The unit of the persuaders, the dialogues as deals, and who worked on which."""
    reps: dict[str, Rep] = {}
    deals: list[Deal] = []
    for dlg in dialogues:
        rep_id = f"p4g:{data.persuader[dlg]}"
        reps.setdefault(rep_id, Rep(id=rep_id, name=f"Persuader {data.persuader[dlg]}", function="sales", source="p4g"))
        donation = data.donation.get(dlg)
        at = started_at[dlg]
        deals.append(
            Deal(id=f"p4g:{dlg}", name=f"Donation ask {dlg}", stage="closed" if donation is not None else "open",
                 outcome=_outcome(donation), value=donation, scenario_id=SCENARIO.id, engaged_at=at, closed_at=at,
                 source="p4g")
        )
    change = ChangeSet().add_nodes([SCENARIO]).add_nodes(list(reps.values())).add_nodes(deals)
    change.add_edges(schema.WORKED_ON, schema.REP, schema.DEAL,
                     [{"src": f"p4g:{data.persuader[d.id.removeprefix('p4g:')]}", "dst": d.id, "role": "persuader"}
                      for d in deals])
    return change


def _outcome(donation: float | None) -> str:
    return "open" if donation is None else ("won" if donation > 0 else "lost")


def _code_dialogues(
    data: P4GData, dialogues: list[str], started_at: dict[str, str | None], codebook: Codebook,
    coder: TextCoder | None, skill_names: dict[str, tuple[str, str]],
) -> tuple[list[Event], list[Evidence]]:
    """The persuader turns of ``dialogues`` as events, with their evidence (annotation where a
    human labelled the dialogue, else rules and the text coder); ``started_at`` holds each
    dialogue's start time."""
    report = data.report
    events: list[Event] = []
    evidence: list[Evidence] = []
    rule_only = [c for c in RuleCoder(codebook).codes if c.rule_coded]
    any_rule = union_pattern(rule_only)  # one search skips the units no rule matches (most)
    pending: list[tuple[Event, Unit, tuple[int, int], str]] = []  # for the text coder
    for dlg in dialogues:
        rep_id = f"p4g:{data.persuader[dlg]}"
        outcome = _outcome(data.donation.get(dlg))
        at = started_at[dlg]
        prev_other, prev_own_turn = "", ""
        gold = _by_turn(data.annotated[dlg]) if dlg in data.annotated else None
        seen_turns: set[int] = set()
        rows = sorted(data.turns[dlg], key=itemgetter(0, 1))  # by turn, then role
        n_turns = rows[-1][0] + 1
        reply: dict[int, str] = {}  # the persuadee's answer in each turn: context the coder was trained with
        for t, role, txt in rows:
            if role == 1:
                reply[t] = (reply.get(t, "") + " " + txt).strip()
        for turn, role, text in rows:
            if role == 1:
                prev_other = text
                continue
            if turn in seen_turns:
                report.duplicates += 1
                continue
            seen_turns.add(turn)
            # events and units are made from every field in order, without __init__ (ingest.units.make)
            ev = make(Event, {"id": f"p4g:{dlg}:{turn}", "rep_id": rep_id, "type": "utterance", "source": "transcript",
                              "at": at, "deal_id": f"p4g:{dlg}", "text": text, "turn": turn, "attrs_json": None})
            events.append(ev)
            report.accepted += 1
            if gold is not None:
                evidence.extend(_gold_evidence(ev, gold.get(turn, []), codebook, outcome, skill_names))
                continue
            spans = sentence_units(text)
            texts = [text[a:b] for a, b in spans]
            next_text = reply.get(turn, "")
            for i, span in enumerate(spans):
                unit_text = texts[i]
                unit = make(Unit, {"text": unit_text, "prev_text": prev_other, "turn": turn, "index_in_turn": i,
                                   "next_text": next_text, "prev_own_text": texts[i - 1] if i else "",
                                   "next_own_text": texts[i + 1] if i + 1 < len(texts) else "",
                                   "prev_turn_text": prev_own_turn, "dialogue_turns": n_turns, "dialogue": dlg})
                pending.append((ev, unit, span, outcome))
                if not any_rule.search(unit_text):
                    continue
                for code in rule_only:
                    if any(p.search(unit_text) for p in code.patterns):
                        level, why = outcome_level(code, unit_text, outcome)
                        evidence.append(evidence_for(ev, code, level=level, confidence=0.7, coder="rules", why=why,
                                                     codebook=codebook, skill_names=skill_names, text=text, span=span))
            prev_own_turn = text
    if coder is not None and pending:
        evidence.extend(_text_evidence(coder, pending, codebook, skill_names))
    return events, evidence


def _by_turn(units: list[AnnotatedUnit]) -> dict[int, list[AnnotatedUnit]]:
    """Annotated units grouped by turn, each turn's in their order."""
    out: dict[int, list[AnnotatedUnit]] = {}
    for u in units:
        out.setdefault(u.turn, []).append(u)
    return out


def _text_evidence(
    coder: TextCoder, pending: list[tuple[Event, Unit, tuple[int, int], str]], codebook: Codebook,
    skill_names: dict[str, tuple[str, str]],
) -> list[Evidence]:
    """Evidence of the units the text coder codes: its most probable class per unit, when that
    class is a code and its probability reaches :data:`MIN_TEXT_CONFIDENCE`."""
    proba = coder.predict_proba([p[1] for p in pending])
    best = proba.argmax(axis=1)  # per unit, the first class of highest probability
    top = proba[np.arange(len(best)), best]
    out: list[Evidence] = []
    for (ev, unit, span, outcome), b, p in zip(pending, best.tolist(), top.tolist(), strict=True):
        label = coder.classes_[b]
        if label == NON_STRATEGY or label not in codebook.codes or p < MIN_TEXT_CONFIDENCE:
            continue
        code = codebook.codes[label]
        level, why = outcome_level(code, unit.text, outcome)
        out.append(evidence_for(ev, code, level=level, confidence=p, coder="text", codebook=codebook,
                                skill_names=skill_names, text=ev.text, span=span, why=why))
    return out


def _dedupe(items: list[Evidence]) -> list[Evidence]:
    """One evidence item per sentence and skill: when two codes of one sentence point at the same
    skill (e.g. "How much would you like to donate?" is both a proposition and an ask for the
    amount, both closing), the sentence counts once, at its strongest reading."""
    best: dict[tuple[str, int | None, str], Evidence] = {}
    for e in items:
        key = (e.event_id, e.span_start, e.skill_id)
        old = best.get(key)
        if old is None or (e.level, e.confidence, e.code) > (old.level, old.confidence, old.code):
            best[key] = e
    return sorted(best.values(), key=lambda e: e.id)


def _gold_evidence(
    ev: Event, units: list[AnnotatedUnit], codebook: Codebook, outcome: str, skill_names: dict[str, tuple[str, str]]
) -> list[Evidence]:
    out = []
    text = ev.text or ""
    cursor = 0
    for u in units:
        start = text.find(u.text.strip(), cursor)
        span = (start, start + len(u.text.strip())) if start >= 0 else None
        if span:
            cursor = span[1]
        code = codebook.codes.get(u.label)
        if code is None:
            continue
        level, why = outcome_level(code, u.text, outcome)
        out.append(evidence_for(ev, code, level=level, confidence=1.0, coder="annotation", codebook=codebook,
                                skill_names=skill_names, text=text if span else u.text, span=span, why=why,
                                credibility_source="transcript"))
    return out
