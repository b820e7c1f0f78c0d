"""Scenario bundles: the skills whose presence separates won from lost deals of a scenario.

observe (one row per closed deal: the skills it shows, with an outcome-free level signal) →
test (Fisher's exact test per scenario × skill) → correct (Benjamini–Hochberg over every test
of the run) → select (significant, more common in won deals, enough support) → level (the
median level shown in the won deals that show the skill).

Two ways to observe a deal, chosen per scenario:

- ``"deal"``: the behaviour coded *in the deal itself* (its events' evidence);
- ``"rep"``: the skills the deal's reps brought to it (their evidence outside the deal, dated
  before it was engaged), for sources whose only in-deal behaviour is the outcome (CRM stage
  changes: every deal is Engaging, Won/Lost is the outcome). A deal "shows" a skill when that
  record's mean level is at or above the median over the scenario's closed deals.

Outcome leakage is excluded at the source: evidence of ``exclude_codes`` (the codes that *are*
the outcome, e.g. ``crm-won``/``crm-lost``) never counts for the deal it codes, and levels are
taken from ``base_levels`` (the codebook's level of each code, before the coder's outcome
upgrade "in an engagement that was won"), not from the stored, outcome-upgraded level.

References
----------
Fisher, R. A. (1922). On the interpretation of χ² from contingency tables. J. R. Stat. Soc. 85(1).
Benjamini, Y., Hochberg, Y. (1995). Controlling the false discovery rate. J. R. Stat. Soc. B 57(1).
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scipy.stats import fisher_exact

log = logging.getLogger(__name__)

FEATURES = ("deal", "rep")


@dataclass(frozen=True)
class DealObservation:
    """One closed deal as the bundle test sees it: the skills it shows and their level signal."""

    deal_id: str
    scenario_id: str
    won: bool
    skills: Mapping[str, int] = field(default_factory=dict)  # skill -> level shown (outcome-free)
    features: str = "deal"


@dataclass(frozen=True)
class SkillTest:
    """Fisher's exact test of one skill in one scenario: shown in ``a`` of ``n_won`` won deals and
    ``b`` of ``n_lost`` lost ones."""

    scenario_id: str
    skill_id: str
    n_won: int
    n_lost: int
    a: int
    b: int
    p: float
    q: float = 1.0
    level: int = 0
    selected: bool = False

    @property
    def support(self) -> float:
        """Share of won deals that show the skill."""
        return self.a / self.n_won if self.n_won else 0.0

    @property
    def support_lost(self) -> float:
        return self.b / self.n_lost if self.n_lost else 0.0

    @property
    def lift(self) -> float:
        """P(won | skill shown) / P(won); 0 when no deal shows it."""
        shown = self.a + self.b
        if not shown:
            return 0.0
        return (self.a / shown) / (self.n_won / (self.n_won + self.n_lost))

    def describe(self, name: str) -> str:
        return (f"{name} in {self.support:.0%} of won vs {self.support_lost:.0%} of lost "
                f"(lift {self.lift:.2f}, p = {_fmt(self.p)}, q = {_fmt(self.q)})")


@dataclass(frozen=True)
class Bundle:
    """A scenario's bundle: every test run for it, the selected skills, and why."""

    scenario_id: str
    n_won: int
    n_lost: int
    features: str
    tests: tuple[SkillTest, ...] = ()
    untestable: tuple[str, ...] = ()  # skills shown by all or by none of the deals
    explanation: str = ""

    @property
    def required(self) -> tuple[SkillTest, ...]:
        return tuple(t for t in self.tests if t.selected)


def _fmt(x: float) -> str:
    return f"{x:.2g}" if x >= 0.001 else f"{x:.1e}"


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values), in the order given.

    ``q_(i) = min_{j ≥ i} p_(j) · m / j`` over the p-values sorted ascending, capped at 1; a test
    is significant at false discovery rate α when its q ≤ α.

    Examples
    --------
    >>> [round(q, 4) for q in benjamini_hochberg([0.01, 0.04, 0.03, 0.005])]
    [0.02, 0.04, 0.04, 0.02]
    >>> benjamini_hochberg([])
    []

    Notes
    -----
    O(m log m). Valid under independence or positive regression dependence of the tests.
    """
    m = len(pvalues)
    if any(not (0.0 <= p <= 1.0) or math.isnan(p) for p in pvalues):
        raise ValueError(f"p-values must lie in [0, 1]: {list(pvalues)!r}")
    order = sorted(range(m), key=lambda i: pvalues[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, pvalues[i] * m / rank)
        q[i] = min(1.0, running)
    return q


def deal_observations(
    deals: Iterable[Mapping[str, Any]],
    evidence: Iterable[Mapping[str, Any]],
    event_deal: Mapping[str, str],
    base_levels: Mapping[str, int],
    exclude_codes: Iterable[str] = (),
) -> list[DealObservation]:
    """Closed deals (won or lost, with a scenario) and the skills coded in their own events.

    ``event_deal`` maps event id → deal id. A skill's level signal in a deal is the highest base
    level (``base_levels[code]``, falling back to the stored level for a code not listed) of its
    positive, non-rejected evidence; evidence of ``exclude_codes`` is ignored.
    """
    closed = _closed(deals)
    excluded = set(exclude_codes)
    shown: dict[str, dict[str, int]] = defaultdict(dict)
    for ev in evidence:
        deal = event_deal.get(str(ev.get("event_id", "")))
        if deal not in closed or not _counts(ev, excluded):
            continue
        lv = int(base_levels.get(ev["code"], ev.get("level", 0)))
        skills = shown[deal]
        skills[ev["skill_id"]] = max(lv, skills.get(ev["skill_id"], 0))
    return [DealObservation(d, s, won, dict(shown.get(d, {})), "deal") for d, (s, won) in sorted(closed.items())]


def rep_observations(
    deals: Iterable[Mapping[str, Any]],
    evidence: Iterable[Mapping[str, Any]],
    event_deal: Mapping[str, str],
    deal_reps: Mapping[str, Sequence[str]],
    base_levels: Mapping[str, int],
) -> list[DealObservation]:
    """Closed deals and the skills their reps brought to them: the record *before* each deal.

    For each deal and skill, the mean base level of the deal's reps' evidence on that skill that
    is not coded on the deal itself and, when the deal has an ``engaged_at`` and the evidence an
    ``at``, is dated before the day the deal was engaged (undated evidence always counts). So a
    deal's own Won/Lost never counts for it, nor does anything that happened after it started;
    merely leaving the deal out would not do, as it biases a won deal's record down by a
    1/(n − 1) share of a win. A deal shows the skill when that mean is at or above the median
    over the scenario's closed deals (the upper half of records); its level signal is the mean
    rounded.

    Notes
    -----
    O(E log E + D · R · K · log E) with a prefix sum per rep × skill over its dated evidence.
    """
    closed = _closed(deals)
    start = {str(d["id"]): str(d.get("engaged_at") or "") for d in deals}
    items: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    own: dict[tuple[str, str, str], list[tuple[str, float]]] = defaultdict(list)  # (deal, rep, skill)
    for ev in evidence:
        if ev.get("state") == "rejected":
            continue  # every level signal counts here, a negative one (a lost deal at L1) too
        key = (str(ev["rep_id"]), str(ev["skill_id"]))
        item = (str(ev.get("at") or ""), float(base_levels.get(ev["code"], ev.get("level", 0))))
        items[key].append(item)
        deal = event_deal.get(str(ev.get("event_id", "")))
        if deal in closed:
            own[(deal, *key)].append(item)
    series = {}
    for key, xs in items.items():
        xs.sort()
        series[key] = ([t for t, _ in xs], list(itertools.accumulate((lv for _, lv in xs), initial=0.0)))
    skills_of: dict[str, set[str]] = defaultdict(set)
    for rep, skill in items:
        skills_of[rep].add(skill)
    raw: dict[str, dict[str, float]] = {}
    for d in closed:
        t0 = start.get(d, "")
        means: dict[str, float] = {}
        for rep in deal_reps.get(d, ()):
            for skill in skills_of.get(rep, ()):
                times, sums = series[(rep, skill)]
                k = bisect.bisect_left(times, t0) if t0 else len(times)
                total, n = sums[k], float(k)
                for at, lv in own.get((d, rep, skill), ()):
                    if not t0 or at < t0:
                        total, n = total - lv, n - 1
                if n > 0:
                    means[skill] = max(means.get(skill, 0.0), total / n)
        raw[d] = means
    return _median_split(closed, raw)


def _median_split(closed: Mapping[str, tuple[str, bool]], raw: Mapping[str, Mapping[str, float]]) -> list[DealObservation]:
    by_scenario: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for d, (s, _) in closed.items():
        for skill, v in raw[d].items():
            by_scenario[s][skill].append(v)
    medians = {s: {k: statistics.median(v) for k, v in per.items()} for s, per in by_scenario.items()}
    out = []
    for d, (s, won) in sorted(closed.items()):
        shown = {k: int(math.floor(v + 0.5)) for k, v in raw[d].items() if v >= medians[s][k]}
        out.append(DealObservation(d, s, won, shown, "rep"))
    return out


def _closed(deals: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, bool]]:
    return {str(d["id"]): (str(d["scenario_id"]), d["outcome"] == "won") for d in deals
            if d.get("scenario_id") and d.get("outcome") in ("won", "lost")}


def _counts(ev: Mapping[str, Any], excluded: set[str]) -> bool:
    return ev.get("state") != "rejected" and int(ev.get("polarity", 1)) > 0 and ev.get("code") not in excluded


def scenario_bundles(
    observations: Sequence[DealObservation],
    *,
    alpha: float = 0.05,
    min_support: float = 0.1,
    min_deals: int = 10,
    alternative: str = "two-sided",
    skill_name: Callable[[str], str] = str,
) -> list[Bundle]:
    """Test every scenario × skill, correct over all of them, and select each scenario's bundle.

    Parameters
    ----------
    observations:
        Closed deals with the skills they show (:func:`deal_observations`, :func:`rep_observations`).
    alpha:
        False discovery rate: a skill is selected when its Benjamini–Hochberg q ≤ ``alpha``.
    min_support:
        A selected skill is shown in at least this share of the won deals.
    min_deals:
        A scenario is tested only with at least this many won and this many lost deals.
    alternative:
        Passed to :func:`scipy.stats.fisher_exact`; with ``"two-sided"`` a skill is selected only
        when it is also more common in won deals (lift > 1).
    skill_name:
        Names skills in the explanations.

    Returns
    -------
    One :class:`Bundle` per scenario, sorted by scenario id.

    Raises
    ------
    ValueError
        If ``alpha`` or ``min_support`` is outside [0, 1].

    Examples
    --------
    >>> obs = [DealObservation(f"w{i}", "s", True, {"A": 2} if i < 9 else {}) for i in range(10)]
    >>> obs += [DealObservation(f"l{i}", "s", False, {"A": 2} if i < 1 else {}) for i in range(10)]
    >>> [(t.skill_id, t.a, t.b, round(t.lift, 2), t.level) for t in scenario_bundles(obs)[0].required]
    [('A', 9, 1, 1.8, 2)]

    Notes
    -----
    One 2×2 Fisher test per scenario × skill: O(S · K · n). Skills shown by every deal of a
    scenario or by none cannot separate anything; they are listed as untestable and left out of
    the correction. A scenario with too few deals is reported, not tested.
    """
    if not (0.0 <= alpha <= 1.0 and 0.0 <= min_support <= 1.0):
        raise ValueError(f"alpha ({alpha}) and min_support ({min_support}) must lie in [0, 1]")
    by_scenario: dict[str, list[DealObservation]] = defaultdict(list)
    for o in observations:
        by_scenario[o.scenario_id].append(o)
    raw: dict[str, list[SkillTest]] = {}
    untestable: dict[str, list[str]] = {}
    for sid, obs in sorted(by_scenario.items()):
        n_won = sum(o.won for o in obs)
        n_lost = len(obs) - n_won
        raw[sid], untestable[sid] = [], []
        if n_won < min_deals or n_lost < min_deals:
            continue
        for skill in sorted({k for o in obs for k in o.skills}):
            a = sum(1 for o in obs if o.won and skill in o.skills)
            b = sum(1 for o in obs if not o.won and skill in o.skills)
            if a + b in (0, n_won + n_lost):
                untestable[sid].append(skill)
                continue
            p = float(fisher_exact([[a, n_won - a], [b, n_lost - b]], alternative=alternative)[1])
            raw[sid].append(SkillTest(sid, skill, n_won, n_lost, a, b, p))
    flat = [t for sid in sorted(raw) for t in raw[sid]]
    qs = benjamini_hochberg([t.p for t in flat])
    tested = iter(zip(flat, qs, strict=True))
    bundles = []
    for sid, obs in sorted(by_scenario.items()):
        tests = []
        for _ in raw[sid]:
            t, q = next(tested)
            sel = q <= alpha and t.lift > 1.0 and t.support >= min_support
            lv = _median_level(obs, t.skill_id) if sel else 0
            tests.append(SkillTest(t.scenario_id, t.skill_id, t.n_won, t.n_lost, t.a, t.b, t.p, q, lv, sel))
        tests.sort(key=lambda t: (not t.selected, t.q, t.skill_id))
        won = sum(o.won for o in obs)
        bundle = Bundle(sid, won, len(obs) - won, obs[0].features, tuple(tests), tuple(untestable[sid]))
        bundles.append(_explained(bundle, alpha, min_deals, skill_name))
    return bundles


def _median_level(obs: Sequence[DealObservation], skill: str) -> int:
    levels = sorted(o.skills[skill] for o in obs if o.won and skill in o.skills)
    return int(math.floor(statistics.median(levels) + 0.5)) if levels else 0


_FEATURE_WORDS = {"deal": "behaviour coded in the deal",
                  "rep": "the rep's record before the deal (upper half of records)"}


def _explained(b: Bundle, alpha: float, min_deals: int, skill_name: Callable[[str], str]) -> Bundle:
    head = f"from {b.n_won} won vs {b.n_lost} lost deals, features: {_FEATURE_WORDS.get(b.features, b.features)}"
    if b.n_won < min_deals or b.n_lost < min_deals:
        why = f"not tested: fewer than {min_deals} won or lost deals"
    elif b.required:
        why = "; ".join(f"{t.describe(skill_name(t.skill_id))} → L{t.level}" for t in b.required)
    else:
        why = f"no skill separates won from lost at q ≤ {alpha:g}"
        if b.tests:
            why += f" (closest: {b.tests[0].describe(skill_name(b.tests[0].skill_id))})"
        if b.untestable:
            why += f"; shown by every deal or by none: {', '.join(skill_name(s) for s in b.untestable)}"
        elif not b.tests:
            why += "; no skill evidence on these deals"
    return Bundle(b.scenario_id, b.n_won, b.n_lost, b.features, b.tests, b.untestable, f"{head}: {why}")


def requires_rows(bundles: Iterable[Bundle], run_id: str) -> list[dict[str, Any]]:
    """REQUIRES edge rows (Scenario → Skill) for every selected skill, with its statistics.

    ``weight`` is the difference in how often won and lost deals show the skill (support in won
    minus support in lost), so a skill that separates more weighs more in team assembly.
    """
    rows = []
    for b in bundles:
        for t in b.required:
            rows.append({"src": b.scenario_id, "dst": t.skill_id, "level": t.level,
                         "weight": round(max(0.0, t.support - t.support_lost), 4), "support": round(t.support, 4),
                         "lift": round(t.lift, 4), "p": t.p, "q": t.q, "n_won": t.n_won, "n_lost": t.n_lost,
                         "features": b.features, "run_id": run_id, "source": "bundle"})
    return rows
