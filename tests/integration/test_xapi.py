"""xAPI statements on both stores: identity mapping, resends and conflicts, voiding across
imports in either order, rejects named by file, statement and field, idempotence and order
independence — on the bundled samples (seeds/xapi) and the examples (seeds/examples)."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from api import jobs
from conftest import SEEDS
from graph import schema
from graph.model import Rep
from graph.store import ChangeSet, GraphStore
from ingest.catalogue import load_skills
from ingest.codebook import Codebook, load_codebook
from ingest.report import IngestReport
from ingest.units import apply_all
from ingest.xapi import VOID_EVENT, load_xapi, read_statements

SAMPLES = sorted((SEEDS / "xapi").glob("*.json"))
EXAMPLES = SEEDS / "examples" / "xapi"
IDENTITY = SEEDS / "examples" / "identity_map.json"
TARGET = "4f644a9e-9d6f-4e4b-bee3-16a56cf19408"  # 01-learning.json[4], voided by 02-voiding.json
VOIDER = "b1c9d153-bde2-4ce8-a3b6-27f05b186dd3"
CONFLICT = "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"  # two different statements in the bundled samples
LABELS = (schema.REP, schema.EVENT, schema.EVIDENCE)
RELS = (schema.PERFORMED, schema.EVIDENCES)

Env = tuple[GraphStore, Codebook, dict[str, tuple[str, str]]]


def _setup(store: GraphStore) -> None:
    store.apply(load_skills(SEEDS / "skills.json"))
    store.apply(ChangeSet().add_nodes([
        Rep(id="crm:anna-snelling", name="Anna Snelling", function="sales", source="crm"),
        Rep(id="crm:cecily-lampkin", name="Cecily Lampkin", function="sales", source="crm"),
    ]))


@pytest.fixture
def env(store: GraphStore) -> Env:
    """The store with capmap's skills and two CRM reps, the codebook and the skill names."""
    _setup(store)
    return store, load_codebook(SEEDS / "codebook" / "bec-v1.json"), jobs.skill_names(store)


def run(env: Env, paths: list[Path], identity: Any = None) -> IngestReport:
    store, codebook, names = env
    units, report = load_xapi(paths, codebook, names, identity, store=store)
    apply_all(store, units)
    return report


def write(path: Path, statements: Any) -> Path:
    path.write_text(json.dumps(statements, ensure_ascii=False), encoding="utf-8")
    return path


def snapshot(store: GraphStore) -> dict[str, Any]:
    out: dict[str, Any] = {lb: sorted(store.iter_nodes(lb), key=lambda r: r["id"]) for lb in LABELS}
    out.update({r: [e.row() for e in store.list_edges(r)] for r in RELS})
    return out


def wipe(store: GraphStore) -> None:
    for label in schema.NODE_LABELS:
        ids = [r["id"] for r in store.iter_nodes(label)]
        if ids:
            store.apply(ChangeSet(delete_nodes=[(label, ids)]))
    _setup(store)


def event(store: GraphStore, sid: str) -> dict[str, Any]:
    row = store.get_node(schema.EVENT, f"xapi:{sid}")
    assert row is not None, sid
    return row


def evidence_of(store: GraphStore, sid: str) -> list[dict[str, Any]]:
    return store.list_nodes(schema.EVIDENCE, where={"event_id": f"xapi:{sid}"})


def where(report: IngestReport) -> list[tuple[str, int | None, str | None]]:
    return [(Path(e.file).name, e.line, e.field) for e in report.rejects]


def test_bundled_samples_twice_change_nothing(env: Env) -> None:
    store = env[0]
    first = run(env, SAMPLES)
    assert (first.accepted, first.rejected, first.duplicates) == (203, 2, 1)  # 206 statements
    # the ADL stmtBank's stmt1 and the spec's simple example share an id but differ: neither is kept
    assert where(first) == [("adl_xapiwrapper_stmtBank.json", 1, "id"), ("datasim_spec_example_simple.json", 0, "id")]
    assert all(CONFLICT in e.reason for e in first.rejects)
    assert store.get_node(schema.EVENT, f"xapi:{CONFLICT}") is None
    # stmtBank's stmt7 is the spec's long example, with whitespace and no LRS fields changed: a resend
    assert event(store, "6690e6c9-3ef0-4ed3-8b37-7f3964730bee")["rep_id"] == \
        "xapi:" + hashlib.sha1(b"mailto:teampb@example.com").hexdigest()[:12]
    counts = {lb: store.count_nodes(lb) for lb in LABELS} | {r: store.count_edges(r) for r in RELS}
    assert counts == {schema.REP: 9 + 2, schema.EVENT: 203, schema.EVIDENCE: 20,
                      schema.PERFORMED: 203, schema.EVIDENCES: 20}
    assert store.count_nodes(schema.REP, where={"source": "xapi", "function": "learner"}) == 9
    before = snapshot(store)
    second = run(env, SAMPLES)
    assert (second.accepted, second.rejected, second.duplicates) == (0, 2, 204)
    assert snapshot(store) == before


def test_same_store_whatever_the_input_order(env: Env, tmp_path: Path) -> None:
    store = env[0]
    files = [*SAMPLES, EXAMPLES / "01-learning.json", EXAMPLES / "02-voiding.json"]
    run(env, files, IDENTITY)
    ordered = snapshot(store)
    statements = [raw for f in files for _, raw in read_statements(f)[0]]
    random.Random(7).shuffle(statements)
    shuffled = [write(tmp_path / f"part{i}.json", statements[i::3]) for i in (2, 0, 1)]
    wipe(store)
    report = run(env, shuffled, IDENTITY)
    assert (report.accepted, report.rejected, report.duplicates) == (209, 2, 1)
    assert snapshot(store) == ordered
    assert len(ordered[schema.EVENT]) == 209 and len(ordered[schema.EVIDENCE]) == 24


@pytest.mark.parametrize("first", ["target", "voiding"])
def test_voiding_across_imports_in_either_order(env: Env, first: str) -> None:
    store = env[0]
    learning, voiding = EXAMPLES / "01-learning.json", EXAMPLES / "02-voiding.json"
    order = [learning, voiding] if first == "target" else [voiding, learning]
    r1 = run(env, [order[0]], IDENTITY)
    if first == "target":
        assert r1.accepted == 5 and len(evidence_of(store, TARGET)) == 1
        assert event(store, TARGET)["voided"] is False
    else:  # remembered: an event of type xapi-void holding the target's id
        assert r1.accepted == 1 and store.get_node(schema.EVENT, f"xapi:{TARGET}") is None
    r2 = run(env, [order[1]], IDENTITY)
    assert r2.accepted == (1 if first == "target" else 5) and r2.rejected == 0
    target, void = event(store, TARGET), event(store, VOIDER)
    assert (target["voided"], target["voided_by"], target["rep_id"]) == (True, VOIDER, "crm:anna-snelling")
    assert (void["type"], void["voids"]) == (VOID_EVENT, TARGET)
    assert evidence_of(store, TARGET) == []
    assert store.list_edges(schema.EVIDENCES, src=f"xapi:{TARGET}") == []
    assert store.count_nodes(schema.EVENT) == 6 and store.count_nodes(schema.EVIDENCE) == 4
    assert store.count_edges(schema.PERFORMED) == 6 and store.count_edges(schema.EVIDENCES) == 4
    both = snapshot(store)
    wipe(store)
    run(env, [learning, voiding], IDENTITY)  # both in one import
    assert snapshot(store) == both


def test_an_interrupted_voiding_is_finished_by_a_rerun(env: Env) -> None:
    store, codebook, names = env
    run(env, [EXAMPLES / "01-learning.json"], IDENTITY)
    units, _ = load_xapi([EXAMPLES / "02-voiding.json"], codebook, names, IDENTITY, store=store)
    apply_all(store, units[:-1])  # killed before the unit that voids the stored target
    assert event(store, TARGET)["voided"] is False and len(evidence_of(store, TARGET)) == 1
    report = run(env, [EXAMPLES / "02-voiding.json"], IDENTITY)
    assert (report.accepted, report.duplicates) == (0, 1)
    assert event(store, TARGET)["voided"] is True and evidence_of(store, TARGET) == []


def test_a_voiding_statement_cannot_be_voided(env: Env, tmp_path: Path) -> None:
    store = env[0]
    void = json.loads((EXAMPLES / "02-voiding.json").read_text(encoding="utf-8"))
    void_of_void = {**copy.deepcopy(void), "id": "c0a80101-0000-4000-8000-000000000001",
                    "object": {"objectType": "StatementRef", "id": VOIDER}}
    report = run(env, [EXAMPLES / "01-learning.json", write(tmp_path / "v.json", [void, void_of_void])], IDENTITY)
    assert (report.accepted, report.rejected) == (7, 0)
    assert "voided" not in event(store, VOIDER) and event(store, TARGET)["voided"] is True


def test_resend_is_a_no_op_and_a_different_statement_under_its_id_is_rejected(env: Env, tmp_path: Path) -> None:
    store = env[0]
    original = json.loads((EXAMPLES / "01-learning.json").read_text(encoding="utf-8"))[0]
    run(env, [write(tmp_path / "a.json", [original])], IDENTITY)
    before = snapshot(store)
    # what an LRS may add or re-serialise (xAPI 1.0.3 Data 2.3.1) does not make it another statement
    resent = copy.deepcopy(original)
    resent.update(timestamp="2024-03-04T02:15:00.000Z", stored="2024-03-04T02:15:01Z", version="1.0.0",
                  authority={"objectType": "Agent", "account": {"homePage": "https://lrs.example.com", "name": "lrs"}})
    resent["verb"]["display"] = {"en-GB": "completed", "zh-CN": "完成"}
    resent["object"]["definition"]["name"] = {"en-US": "Consultative selling 101 (2024 edition)"}
    resent["actor"]["mbox"] = "mailto:anna.snelling@EXAMPLE.com"
    untimed = {k: v for k, v in original.items() if k != "timestamp"}
    report = run(env, [write(tmp_path / "b.json", [resent, untimed])], IDENTITY)
    assert (report.accepted, report.rejected, report.duplicates) == (0, 0, 2)
    assert snapshot(store) == before
    changed = copy.deepcopy(original)
    changed["result"]["completion"] = False
    later = {**copy.deepcopy(original), "timestamp": "2024-03-04T10:15:01+08:00"}
    report = run(env, [write(tmp_path / "c.json", [changed, later])], IDENTITY)
    assert (report.accepted, report.duplicates) == (0, 0)
    assert where(report) == [("c.json", 0, "id"), ("c.json", 1, "id")]
    assert all(original["id"] in e.reason and "already stored" in e.reason for e in report.rejects)
    assert snapshot(store) == before


def test_different_statements_under_one_id_in_one_import_are_all_rejected(env: Env, tmp_path: Path) -> None:
    store = env[0]
    original = json.loads((EXAMPLES / "01-learning.json").read_text(encoding="utf-8"))[0]
    other = {**copy.deepcopy(original), "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"}}
    report = run(env, [write(tmp_path / "a.json", [original, other, original])], IDENTITY)
    assert where(report) == [("a.json", 0, "id"), ("a.json", 1, "id"), ("a.json", 2, "id")]
    assert "a.json[0], a.json[1], a.json[2]" in report.rejects[0].reason
    assert store.count_nodes(schema.EVENT) == 0


def test_identity_map_attaches_events_to_existing_reps(env: Env) -> None:
    store = env[0]
    report = run(env, [EXAMPLES / "01-learning.json"], IDENTITY)
    assert (report.accepted, report.rejected) == (5, 0)
    anna = {e.dst for e in store.list_edges(schema.PERFORMED, src="crm:anna-snelling")}
    assert anna == {f"xapi:{s}" for s in ("5822d6a2-5895-445b-89d3-ac64ef92b13f",  # mbox
                                          "d107f02e-78b3-45b8-a017-07882376ac67",  # WeCom account
                                          TARGET)}
    cecily = event(store, "a74d248c-3aca-4241-ad2c-3587e4f423b3")  # known only by the SHA1 of her mbox
    assert cecily["rep_id"] == "crm:cecily-lampkin"
    anna_rep = store.get_node(schema.REP, "crm:anna-snelling")
    assert anna_rep is not None and (anna_rep["name"], anna_rep["source"]) == ("Anna Snelling", "crm")
    learners = store.list_nodes(schema.REP, where={"source": "xapi"})
    assert [(r["name"], r["function"]) for r in learners] == [("李雷", "learner")]
    assert {x["rep_id"] for x in store.iter_nodes(schema.EVIDENCE)} == {
        "crm:anna-snelling", "crm:cecily-lampkin", learners[0]["id"]}


def test_identity_map_added_later_re_attributes_events(env: Env) -> None:
    store = env[0]
    run(env, [EXAMPLES / "01-learning.json"])
    learner = "xapi:" + hashlib.sha1(b"mailto:anna.snelling@example.com").hexdigest()[:12]
    assert event(store, TARGET)["rep_id"] == learner
    report = run(env, [EXAMPLES / "01-learning.json"], IDENTITY)
    assert (report.accepted, report.duplicates) == (4, 1)  # 李雷 is still unmapped
    assert event(store, TARGET)["rep_id"] == "crm:anna-snelling"
    assert store.list_edges(schema.PERFORMED, src=learner) == []
    assert {x["rep_id"] for x in evidence_of(store, TARGET)} == {"crm:anna-snelling"}
    assert store.count_nodes(schema.EVENT) == 5 and store.count_edges(schema.PERFORMED) == 5
    assert store.count_nodes(schema.EVIDENCE) == 5 and store.count_edges(schema.EVIDENCES) == 5


def test_identity_entry_naming_a_missing_rep_is_rejected(env: Env, tmp_path: Path) -> None:
    store = env[0]
    identity = {"mailto:anna.snelling@example.com": "crm:nobody", "account:wecom|annasnelling": "crm:anna-snelling",
                "mailto:cecily.lampkin@example.com": "crm:cecily-lampkin"}
    report = run(env, [EXAMPLES / "01-learning.json"], write(tmp_path / "ids.json", identity))
    assert where(report) == [
        ("ids.json", None, "account:wecom|annasnelling"),  # homePage is not an IRL
        ("ids.json", None, "mailto:anna.snelling@example.com"),
        ("01-learning.json", 0, "actor"), ("01-learning.json", 4, "actor"),
    ]
    assert "crm:nobody" in report.rejects[1].reason and "not in the store" in report.rejects[1].reason
    assert "mailto:anna.snelling@example.com" in report.rejects[2].reason
    assert report.accepted == 3  # the WeCom statement (unmapped), Cecily's and 李雷's
    assert event(store, "a74d248c-3aca-4241-ad2c-3587e4f423b3")["rep_id"] == "crm:cecily-lampkin"


def test_rejects_name_file_statement_and_field(env: Env) -> None:
    store = env[0]
    report = run(env, [EXAMPLES / "03-rejected.jsonl"])
    assert where(report) == [("03-rejected.jsonl", 1, "actor"), ("03-rejected.jsonl", 2, "actor.account.homePage"),
                             ("03-rejected.jsonl", 3, "actor.account.name"), ("03-rejected.jsonl", 4, "timestamp"),
                             ("03-rejected.jsonl", 5, "object.objectType")]
    reasons = [e.reason for e in report.rejects]
    assert "exactly one identifier" in reasons[0] and "mbox, openid" in reasons[0]
    assert "absolute IRL" in reasons[1] and "'wecom'" in reasons[1]
    assert "non-empty" in reasons[2]
    assert "no time zone" in reasons[3]
    assert "StatementRef" in reasons[4]
    assert report.accepted == 0 and store.count_nodes(schema.EVENT) == 0 and store.count_nodes(schema.REP) == 2


def test_bad_statements_among_good_ones(env: Env, tmp_path: Path) -> None:
    store = env[0]
    good = json.loads((EXAMPLES / "01-learning.json").read_text(encoding="utf-8"))
    bad: list[Any] = [
        {**good[0], "id": "not-a-uuid"},
        {"actor": {"objectType": "Group", "member": [{"mbox": "mailto:a@example.com"}]}, **{k: good[2][k] for k in ("verb", "object")}},
        {**good[2], "actor": {"mbox": "anna@example.com"}},
        {**good[2], "actor": {"mbox_sha1sum": "xyz"}},
        {**good[2], "object": {"objectType": "StatementRef", "id": "nope"}},
        {**good[2], "version": "0.95"},
        "not a statement",
    ]
    mixed = write(tmp_path / "mixed.json", [*bad, *good])
    (tmp_path / "broken.json").write_text('[{"actor": ', encoding="utf-8")
    report = run(env, [tmp_path / "broken.json", mixed], IDENTITY)
    assert where(report) == [("broken.json", 1, None), ("mixed.json", 0, "id"), ("mixed.json", 1, "actor"),
                             ("mixed.json", 2, "actor.mbox"), ("mixed.json", 3, "actor.mbox_sha1sum"),
                             ("mixed.json", 4, "object.id"), ("mixed.json", 5, "version"), ("mixed.json", 6, None)]
    assert "anonymous Group" in report.rejects[2].reason
    assert report.accepted == 5 and store.count_nodes(schema.EVENT) == 5


def test_xapi_2_0_fields_kept_and_timestamps_in_utc(env: Env) -> None:
    store = env[0]
    run(env, [EXAMPLES / "01-learning.json"], IDENTITY)
    v2 = event(store, "d107f02e-78b3-45b8-a017-07882376ac67")  # version 2.0.0, contextAgents, +08:00
    assert v2["at"] == "2024-03-05T08:40:12.250000Z"
    assert (v2["verb"], v2["text"]) == ("http://adlnet.gov/expapi/verbs/passed", "passed Negotiation module 3 quiz")
    assert event(store, "5822d6a2-5895-445b-89d3-ac64ef92b13f")["at"] == "2024-03-04T02:15:00.000000Z"
    assert event(store, "fa899916-d47d-443e-a077-60f559a1c10d")["text"] == "完成 促成成交技巧"
    assert [x["reason"] for x in evidence_of(store, "fa899916-d47d-443e-a077-60f559a1c10d")] == [
        "完成学习活动 → 持续学习 L2：“完成 促成成交技巧”（rules，置信度 1.00）"]


def test_mbox_domain_is_case_insensitive_and_the_local_part_is_not(env: Env, tmp_path: Path) -> None:
    store = env[0]
    base = json.loads((EXAMPLES / "01-learning.json").read_text(encoding="utf-8"))[2]
    mboxes = ["mailto:sam.lee@example.com", "MAILTO:sam.lee@EXAMPLE.COM", "mailto:Sam.Lee@example.com"]
    statements = [{**base, "id": f"c0a80101-0000-4000-8000-00000000000{i}", "actor": {"mbox": m}}
                  for i, m in enumerate(mboxes)]
    hashed = hashlib.sha1(b"mailto:sam.lee@example.com").hexdigest()
    statements.append({**base, "id": "c0a80101-0000-4000-8000-000000000009", "actor": {"mbox_sha1sum": hashed.upper()}})
    run(env, [write(tmp_path / "m.json", statements)])
    reps = [event(store, s["id"])["rep_id"] for s in statements]
    assert reps[0] == reps[1] == reps[3] == "xapi:" + hashed[:12]
    assert reps[2] != reps[0]
    assert store.count_nodes(schema.REP, where={"source": "xapi"}) == 2


def test_a_statement_dated_in_the_future_is_rejected(env: Env, tmp_path: Path) -> None:
    """Regression (a new user's review): one event dated 2204 became the anchor of every
    recency weight and weighed the whole map to nothing; it is refused at the boundary."""
    good = json.loads((EXAMPLES / "01-learning.json").read_text(encoding="utf-8"))[0]
    late = {**copy.deepcopy(good), "id": "0c5e0d55-5a1f-4f0c-9b3c-6a3e2f1d2b01", "timestamp": "2204-01-30T10:00:00Z"}
    report = run(env, [write(tmp_path / "late.json", [good, late])])
    assert where(report) == [("late.json", 1, "timestamp")]
    assert "in the future" in report.rejects[0].reason
    assert report.accepted == 1 and event(env[0], good["id"])


def test_a_key_given_twice_rejects_the_statement(env: Env, tmp_path: Path) -> None:
    """Regression: a statement with "actor" twice was attributed to the second actor."""
    good = json.loads((EXAMPLES / "01-learning.json").read_text(encoding="utf-8"))[0]
    text = json.dumps(good)
    twice = text.replace('"actor": {', '"actor": {"name": "Someone Else", "mbox": "mailto:else@example.com"}, "actor": {', 1)
    twice = twice.replace(good["id"], "0c5e0d55-5a1f-4f0c-9b3c-6a3e2f1d2b02")
    nested = text.replace('"mbox": ', '"mbox": "mailto:x@example.com", "mbox": ', 1).replace(
        good["id"], "0c5e0d55-5a1f-4f0c-9b3c-6a3e2f1d2b03")
    p = tmp_path / "twice.json"
    p.write_text(f"[{text}, {twice}, {nested}]", encoding="utf-8")
    report = run(env, [p])
    assert where(report) == [("twice.json", 1, "actor"), ("twice.json", 2, "actor.mbox")]
    assert report.accepted == 1 and "given twice" in report.rejects[0].reason


def test_the_cli_applies_the_identity_map(tmp_path: Path) -> None:
    """Regression (a new user's review): `capmap ingest --format xapi --identity MAP` ignored the
    map, so Anna Snelling's statements made a second rep instead of going to her CRM rep."""
    from typer.testing import CliRunner

    from api.cli import app
    from graph.sqlite_store import SqliteStore

    st = SqliteStore(tmp_path / "s.sqlite")
    _setup(st)
    st.close()
    args = ["ingest", str(EXAMPLES / "01-learning.json"), "--format", "xapi", "--store", f"sqlite:///{tmp_path / 's.sqlite'}",
            "--identity", str(IDENTITY), "--rejects", str(tmp_path / "rejects.jsonl"), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    st = SqliteStore(tmp_path / "s.sqlite")
    try:
        performers = {e["rep_id"] for e in st.iter_nodes(schema.EVENT)}
        assert "crm:anna-snelling" in performers and "crm:cecily-lampkin" in performers
        assert not [r for r in st.iter_nodes(schema.REP) if "Anna" in r.get("name", "") and r["id"] != "crm:anna-snelling"]
    finally:
        st.close()
    bad = CliRunner().invoke(app, [*args[:3], "crm", *args[4:]])
    assert bad.exit_code == 2 and "--identity applies to --format events and xapi, not crm" in bad.output


def test_an_lrs_statement_result_is_read_as_its_statements(env: Env, tmp_path: Path) -> None:
    """Regression (a new user's review): the LRS's own answer format, a StatementResult, was
    read as two bad statements ("statements" and "more")."""
    statements = json.loads((EXAMPLES / "01-learning.json").read_text(encoding="utf-8"))
    report = run(env, [write(tmp_path / "lrs.json", {"statements": statements, "more": ""})])
    wipe(env[0])
    _setup(env[0])
    plain = run(env, [EXAMPLES / "01-learning.json"])
    assert report.summary() == plain.summary() and report.accepted == len(statements) > 3
