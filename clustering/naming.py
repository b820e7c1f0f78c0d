"""The name stage of capability labels (:mod:`clustering.labels`): :func:`name_clusters`, by
class-based TF-IDF (BERTopic's c-TF-IDF, :func:`c_tf_idf`) over behaviour codes and over skills
(each rep's evidence weight × score on the skill).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence


def c_tf_idf(docs: Mapping[int, Mapping[str, float]]) -> dict[int, list[tuple[str, float]]]:
    """Class-based TF-IDF (BERTopic's c-TF-IDF): tf(t, c) · log(1 + A / f(t)).

    ``A`` is the average number of tokens per class and ``f(t)`` the frequency of ``t`` over all
    classes. Returns, per class, its terms by decreasing weight.

    >>> c_tf_idf({0: {"x": 2, "s": 2}, 1: {"y": 2, "s": 2}})[0][0][0]
    'x'
    """
    total: Counter[str] = Counter()
    for c in docs.values():
        total.update(c)
    avg = sum(sum(c.values()) for c in docs.values()) / max(1, len(docs))
    out = {}
    for k, c in docs.items():
        n = sum(c.values()) or 1
        w = {t: (v / n) * math.log(1 + avg / total[t]) for t, v in c.items() if total[t] > 0}
        out[k] = sorted(w.items(), key=lambda x: (-x[1], x[0]))
    return out


def _sum_docs(docs: Mapping[str, Mapping[str, float]], reps: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in reps:
        for t, v in docs.get(r, {}).items():
            out[t] = out.get(t, 0.0) + v
    return out


QUALIFIERS = ((0.05, "Strong in", "擅长"), (-0.05, "Focused on", "专注于"), (-math.inf, "Developing", "待提升"))
"""Name prefix by the members' mean deviation from the prior on the two top skills (level units)."""


def name_clusters(
    members: Mapping[int, Sequence[str]], codes: Mapping[str, Mapping[str, float]],
    skill_mass: Mapping[str, Mapping[str, float]], deviation: Mapping[str, Mapping[str, float]],
    skill_names: Mapping[str, tuple[str, str]], n_top: int = 3,
) -> dict[int, tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """Name each cluster: ``{index: (name, name_zh, top_skills, top_codes)}``.

    Top codes and top skills are the cluster's first terms by c-TF-IDF over its members' codes and
    over their skills (a skill counts the rep's evidence weight × score on it). The name joins the
    two top skills, prefixed by how the members stand on them (:data:`QUALIFIERS`); a name two
    clusters would share gets its third skill, or a number.
    """
    by_code = c_tf_idf({c: _sum_docs(codes, reps) for c, reps in members.items()})
    by_skill = c_tf_idf({c: _sum_docs(skill_mass, reps) for c, reps in members.items()})
    out: dict[int, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {}
    used: Counter[str] = Counter()
    for c in sorted(members):
        top_sk = tuple(t for t, _ in by_skill[c][:n_top])
        devs = [deviation[r][s] for r in members[c] for s in top_sk[:2] if s in deviation.get(r, {})]
        mean_dev = math.fsum(devs) / len(devs) if devs else 0.0
        _, q_en, q_zh = next(q for q in QUALIFIERS if mean_dev >= q[0])
        shown = list(top_sk[:2])
        en = f"{q_en} " + " & ".join(skill_names.get(s, (s, s))[0] for s in shown)
        if used[en] and len(top_sk) > 2:
            shown.append(top_sk[2])
            en = f"{q_en} " + " & ".join(skill_names.get(s, (s, s))[0] for s in shown)
        zh = q_zh + "、".join(skill_names.get(s, (s, s))[1] for s in shown)
        used[en] += 1
        if used[en] > 1:
            en, zh = f"{en} ({used[en]})", f"{zh}（{used[en]}）"
        out[c] = (en, zh, top_sk, tuple(t for t, _ in by_code[c][:n_top]))
    return out
