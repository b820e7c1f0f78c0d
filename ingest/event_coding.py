"""Coding native events into evidence: the codebook's rules, event-type and stage-change codes,
the optional text coder on English sentence units, and ratings. The loader is
:mod:`ingest.events`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graph.model import Event, Evidence
from ingest.codebook import Codebook
from ingest.coders import NON_STRATEGY, TextCoder, Unit
from ingest.event_schema import EventIn, RatingIn
from ingest.evidence import RuleCoder, evidence_for, upgraded_level
from ingest.text import is_chinese, sentence_units, snippet

TEXT_TYPES = frozenset({"call", "email", "chat", "proposal_edit", "nps"})
RULE_CONFIDENCE = 0.7
MIN_TEXT_CONFIDENCE = 0.35
_RATER_ZH = {"self": "自评", "manager": "上级评价", "peer": "同事评价"}


@dataclass(frozen=True)
class _Accepted:
    line: int
    rec: EventIn
    event: Event
    props: dict[str, Any]  # extra node properties: tz_assumed, lang, stages, rating, content_sha…


def _digest(obj: Any, h: Any, depth: int = 0) -> None:
    """Feed ``obj``'s learned state to ``h`` in an order that does not depend on the process
    (pickle's does: set order and object ids vary), so a retrained coder changes the fingerprint."""
    if depth > 8:
        return
    if isinstance(obj, np.ndarray):
        h.update(repr(obj.tolist()).encode() if obj.dtype == object else obj.tobytes())
    elif obj is None or isinstance(obj, (str, int, float, bool, np.generic)):
        h.update(repr(obj).encode())
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _digest(x, h, depth + 1)
    elif isinstance(obj, (set, frozenset)):
        for x in sorted(obj, key=repr):
            _digest(x, h, depth + 1)
    elif isinstance(obj, dict):
        for k in sorted(obj, key=repr):
            h.update(repr(k).encode())
            _digest(obj[k], h, depth + 1)
    elif hasattr(obj, "__dict__") and not callable(obj):  # public state only: private attributes are caches
        h.update(type(obj).__name__.encode())
        _digest({k: v for k, v in vars(obj).items() if not k.startswith("_")}, h, depth + 1)
    else:
        h.update(type(obj).__name__.encode())


@dataclass
class EventCoding:
    """What coding an event needs: the codebook, skill names, the optional text coder."""

    codebook: Codebook
    skill_names: dict[str, tuple[str, str]]
    coder: TextCoder | None = None
    rules: RuleCoder = field(init=False)
    skill_by_name: dict[str, set[str]] = field(init=False)
    fingerprint: str = field(init=False)
    """Changes when the codebook, its credibility weights or the text coder change: events
    imported again are then coded again."""

    def __post_init__(self) -> None:
        self.rules = RuleCoder(self.codebook)
        self.skill_by_name = {}
        for sid, (en, zh) in self.skill_names.items():
            for name in {sid, en, zh}:
                self.skill_by_name.setdefault(name.casefold(), set()).add(sid)
        cb = self.codebook
        parts = [cb.version, sorted(cb.sources.items()),
                 [(c.code, c.skill, c.level, c.polarity, [p.pattern for p in c.patterns],
                   [(u.pattern.pattern, u.level) for u in c.upgrades], c.event_type, c.event_stage)
                  for c in cb.codes.values()]]
        h = hashlib.sha256(json.dumps(parts, default=str).encode())
        if self.coder is not None:
            _digest(self.coder, h)
        self.fingerprint = h.hexdigest()[:16]

    def skill_id(self, name: str) -> str:
        """The skill a rating names (id, English or Chinese name); ValueError if none or several."""
        ids = self.skill_by_name.get(name.casefold(), set())
        if len(ids) != 1:
            raise ValueError(f"skill {name!r} is {'ambiguous: ' + ', '.join(sorted(ids)) if ids else 'not a known skill'}"
                             "; use the skill id")
        return next(iter(ids))

    def code(self, items: list[_Accepted]) -> list[Evidence]:
        """Evidence of a unit's events, one item per id (the most confident when coders agree)."""
        out: dict[str, Evidence] = {}
        pending: list[tuple[Event, Unit, tuple[int, int]]] = []
        for it in items:
            for x in self._code_event(it, pending):
                if x.id not in out or x.confidence > out[x.id].confidence:
                    out[x.id] = x
        if self.coder is not None and pending:
            for x in self._text_coder(pending):
                if x.id not in out or x.confidence > out[x.id].confidence:
                    out[x.id] = x
        return list(out.values())

    def _code_event(self, it: _Accepted, pending: list[tuple[Event, Unit, tuple[int, int]]]) -> list[Evidence]:
        ev, rec, cb = it.event, it.rec, self.codebook
        kw: dict[str, Any] = {"codebook": cb, "skill_names": self.skill_names}
        out: list[Evidence] = []
        if rec.rating is not None:
            return [self._rating_evidence(ev, rec.rating, it.props["rating_skill"], rec.lang)]
        for code in cb.event_codes(rec.type):
            if code.event_verbs or (code.event_stage and code.event_stage.casefold() != (rec.stage_to or "").casefold()):
                continue
            out.append(evidence_for(ev, code, level=code.level, confidence=1.0, coder="rules", text=ev.text, **kw))
        if rec.type in TEXT_TYPES and ev.text:
            text = ev.text
            for i, span in enumerate(sentence_units(text)):
                unit = text[span[0]:span[1]]
                for code in self.rules.match(unit):
                    level, why = upgraded_level(code, unit)
                    out.append(evidence_for(ev, code, level=level, confidence=RULE_CONFIDENCE, coder="rules",
                                            text=text, span=span, why=why, **kw))
                if not is_chinese(unit):
                    pending.append((ev, Unit(unit, "", ev.turn or 0, i), span))
        return out

    def _text_coder(self, pending: list[tuple[Event, Unit, tuple[int, int]]]) -> list[Evidence]:
        assert self.coder is not None
        out = []
        proba = self.coder.predict_proba([p[1] for p in pending])
        for (ev, unit, span), row in zip(pending, proba, strict=True):
            best = int(row.argmax())
            label = self.coder.classes_[best]
            if label == NON_STRATEGY or label not in self.codebook.codes or row[best] < MIN_TEXT_CONFIDENCE:
                continue
            code = self.codebook.codes[label]
            level, why = upgraded_level(code, unit.text)
            out.append(evidence_for(ev, code, level=level, confidence=float(row[best]), coder="text", text=ev.text,
                                    span=span, why=why, codebook=self.codebook, skill_names=self.skill_names))
        return out

    def _rating_evidence(self, ev: Event, rating: RatingIn, skill: str, lang: str | None) -> Evidence:
        en, zh = self.skill_names.get(skill, (skill, skill))
        cred = self.codebook.credibility(ev.source)
        coder = f"rating:{rating.rater}"
        quote = snippet(ev.text or "")
        if lang == "zh" or is_chinese(quote):
            reason = f"{_RATER_ZH[rating.rater]} → {zh} L{rating.level}" + (f"：“{quote}”" if quote else "")
            reason += f"（{coder}，可信度 {cred:.2f}）"
        else:
            reason = f"{rating.rater} rating → {en} L{rating.level}" + (f': "{quote}"' if quote else "")
            reason += f" ({coder}, credibility {cred:.2f})"
        return Evidence(id=f"ev:{ev.id}:rating", event_id=ev.id, rep_id=ev.rep_id, skill_id=skill, code="rating",
                        level=rating.level, confidence=1.0, credibility=cred, coder=coder,
                        codebook_version=self.codebook.version, reason=reason, at=ev.at)
