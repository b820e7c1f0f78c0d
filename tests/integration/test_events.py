"""Native behaviour events (seeds/schema/event.schema.json): JSON lines and CSV as people export
them, coded into evidence, bad records named by file, line and field, the valid rest stored,
re-imports changing nothing — on both stores where the store matters."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from api import jobs
from conftest import SEEDS
from graph import schema
from graph.errors import ConfigError, InputError
from graph.model import Rep
from graph.store import ChangeSet
from ingest.catalogue import load_skills
from ingest.events import (
    CSV_COLUMNS,
    CSV_VALUES,
    EventCoding,
    EventIn,
    RatingIn,
    ingest_events,
    iter_event_units,
    load_identity_map,
    validate_event,
)
from ingest.report import IngestReport

EXAMPLES = SEEDS / "examples"
COUNTED = (schema.REP, schema.DEAL, schema.EVENT, schema.EVIDENCE)
EDGES = (schema.PERFORMED, schema.ABOUT, schema.EVIDENCES)


def counts(store: Any) -> dict[str, int]:
    out = {lb: store.count_nodes(lb) for lb in COUNTED}
    out.update({r: store.count_edges(r) for r in EDGES})
    return out


def make_coding(store: Any, coder: Any = None) -> EventCoding:
    store.apply(load_skills(SEEDS / "skills.json"))
    return EventCoding(jobs.codebook_for(store, SEEDS), jobs.skill_names(store), coder)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reasons(store: Any, event_id: str) -> list[str]:
    return sorted(x["reason"] for x in store.list_nodes(schema.EVIDENCE, where={"event_id": event_id}))


def chat(i: str, text: str = "您目前最大的痛点是什么？", **kw: Any) -> dict[str, Any]:
    return {"id": i, "rep": "crm:zhang-wei", "type": "chat", "at": "2024-01-30T12:00:00+08:00", "text": text, **kw}


# -- the examples, end to end ---------------------------------------------------------------------
def test_examples_are_coded_with_chinese_reasons(store: Any, tmp_path: Path) -> None:
    coding = make_coding(store)
    report = ingest_events(EXAMPLES / "events.jsonl", store, coding, identity=load_identity_map(EXAMPLES / "identity.json"),
                           rejects_path=tmp_path / "rejects.jsonl")
    assert report.summary(None) == {"source": "events", "accepted": 11, "rejected": 0, "duplicates": 0, "rejects_file": None,
                                    "unchanged": 0, "replaced": 0, "new_reps": 2, "new_deals": 2, "n_evidence": 13}
    assert not (tmp_path / "rejects.jsonl").exists()
    assert counts(store) == {schema.REP: 2, schema.DEAL: 2, schema.EVENT: 11, schema.EVIDENCE: 13,
                             schema.PERFORMED: 11, schema.ABOUT: 9, schema.EVIDENCES: 13}

    ev = store.get_node(schema.EVENT, "evt:chat:wecom-0001")
    assert (ev["rep_id"], ev["at"], ev["tz_assumed"], ev["lang"], ev["source_id"], ev["deal_id"], ev["turn"]) == (
        "rep:zhang-wei", "2024-01-30T02:02:11Z", "Asia/Shanghai", "zh", "wecom-0001", "OPP-2024-017", 1)
    assert json.loads(ev["attrs_json"]) == {"app": "wecom", "msgtype": "text", "roomid": "wr-icu"}
    assert reasons(store, "evt:chat:wecom-0001") == [
        "信誉诉求 → 建立信任 L3，引用了具体数据：“王主任您好，我们公司成立于2008年，已通过ISO 13485认证。”（rules，置信度 0.70）"]
    assert reasons(store, "evt:chat:wecom-0003") == [
        "提出成交请求 → 促成成交 L2：“可以先在ICU小范围试点三个月，您看今天能定下来吗？”（rules，置信度 0.70）",
        "登门槛 → 渐进承诺 L2：“可以先在ICU小范围试点三个月，您看今天能定下来吗？”（rules，置信度 0.70）"]
    assert store.get_node(schema.EVENT, "evt:chat:wecom-0003")["at"] == "2024-01-30T03:00:00Z"  # Unix ms, no zone assumed
    assert "tz_assumed" not in store.get_node(schema.EVENT, "evt:chat:wecom-0003")

    mail = store.get_node(schema.EVENT, "evt:email:<CAF1234@mail.example.com>")
    assert (mail["rep_id"], mail["at"], mail["source"]) == ("rep:li-na", "2024-01-31T14:15:00Z", "email")
    assert reasons(store, mail["id"]) == [
        'logical appeal → Value articulation L3, quantified: "Our ROI model shows a 14-month payback for your three plants." '
        "(rules, p=0.70)",
        'probes an objection → Objection handling L2: "May I ask why the pilot stalled last quarter?" (rules, p=0.70)']

    assert reasons(store, "evt:crm:OPP-2024-017/3") == ['won the deal → Closing L3: "OPP-2024-017: Engaging → Won" (rules, p=1.00)']
    assert store.get_node(schema.EVENT, "evt:crm:OPP-2024-017/3")["at"] == "2024-02-06T08:30:00Z"
    assert reasons(store, "evt:nps:nps-2024-02-0042") == [
        "方案说明 → 方案与产品知识 L2：“张经理报价清晰，交付周期也讲得很明白。”（rules，置信度 0.70）"]

    ratings = {x["coder"]: x for x in store.list_nodes(schema.EVIDENCE, where={"code": "rating"})}
    assert sorted(ratings) == ["rating:manager", "rating:self"]
    self_r, mgr = ratings["rating:self"], ratings["rating:manager"]
    assert (self_r["skill_id"], self_r["level"], self_r["credibility"], self_r["reason"]) == (
        "capmap:closing", 4, 0.3, "自评 → 促成成交 L4：“上半年签了三个大单。”（rating:self，可信度 0.30）")
    assert (mgr["skill_id"], mgr["level"], mgr["credibility"], mgr["event_id"]) == (
        "capmap:closing", 3, 0.7, "evt:manager_rating:review-2024H1-mgr-closing")
    edge = store.list_edges(schema.EVIDENCES, src="evt:self_rating:review-2024H1-self-closing")[0]
    assert (edge.dst, edge.props["weight"], edge.props["coder"]) == ("capmap:closing", 0.3, "rating:self")

    new_rep = store.get_node(schema.REP, "rep:zhang-wei")
    assert (new_rep["function"], new_rep["name"], new_rep["source"]) == ("unknown", "ZhangWei", "events")
    assert store.get_node(schema.DEAL, "OPP-2024-021")["outcome"] == "open"


def test_known_reps_and_deals_are_left_as_they_are(store: Any) -> None:
    coding = make_coding(store)
    store.apply(ChangeSet().add_nodes([Rep(id="rep:zhang-wei", name="张伟", function="sales", team="华东")]))
    report = ingest_events(EXAMPLES / "events.jsonl", store, coding, identity=load_identity_map(EXAMPLES / "identity.json"))
    assert (report.stats["new_reps"], report.stats["new_deals"]) == (1, 2)
    rep = store.get_node(schema.REP, "rep:zhang-wei")
    assert (rep["name"], rep["function"], rep["team"]) == ("张伟", "sales", "华东")


# -- idempotence, replacement, duplicates -----------------------------------------------------------
def test_importing_twice_changes_nothing_and_a_changed_event_is_replaced(store: Any, tmp_path: Path) -> None:
    coding = make_coding(store)
    ids = load_identity_map(EXAMPLES / "identity.json")
    ingest_events(EXAMPLES / "events.jsonl", store, coding, identity=ids, unit_size=3)
    first = counts(store)
    again = ingest_events(EXAMPLES / "events.jsonl", store, coding, identity=ids, unit_size=4)
    assert counts(store) == first
    assert (again.accepted, again.stats["unchanged"], again.stats["n_evidence"]) == (11, 11, 0)

    # the corrected export: wecom-0001 says something else now, and moved to another deal
    lines = (EXAMPLES / "events.jsonl").read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[0])
    rec.update(text="请问您明年的采购预算是多少？", deal="OPP-2024-099")
    fixed = write_jsonl(tmp_path / "fixed.jsonl", [rec, *lines[1:]])
    third = ingest_events(fixed, store, coding, identity=ids)
    assert (third.stats["unchanged"], third.stats["replaced"], third.stats["new_deals"]) == (10, 1, 1)
    assert reasons(store, "evt:chat:wecom-0001") == [
        "确认成交规模 → 促成成交 L2：“请问您明年的采购预算是多少？”（rules，置信度 0.70）",
        "需求询问 → 需求挖掘 L2：“请问您明年的采购预算是多少？”（rules，置信度 0.70）"]
    assert [e.dst for e in store.list_edges(schema.ABOUT, src="evt:chat:wecom-0001")] == ["OPP-2024-099"]
    assert counts(store) == {**first, schema.DEAL: 3, schema.EVIDENCE: 14, schema.EVIDENCES: 14}
    assert store.count_nodes(schema.EVIDENCE, where={"event_id": "evt:chat:wecom-0001", "code": "credibility-appeal"}) == 0


def test_bad_records_are_named_by_file_line_and_field_and_the_rest_is_kept(store: Any, tmp_path: Path) -> None:
    coding = make_coding(store)
    good = chat("c1")
    path = write_jsonl(tmp_path / "bad.jsonl", [
        good,                                                                   # 1 kept
        {k: v for k, v in chat("c2").items() if k != "at"},                     # 2 at missing
        chat("c3", type="fax"),                                                 # 3 type
        {**chat("c4"), "type": "rating", "rating": {"skill": "capmap:closing", "level": 7, "rater": "self"}},  # 4
        chat("c5", source="emial"),                                             # 5 source
        '{"id": "c6", "rep": "x",',                                             # 6 not JSON
        good,                                                                   # 7 duplicate
        chat("c1", text="另一条消息"),                                           # 8 same id, other content
        chat("c9", at="03/04/2024 10:00"),                                      # 9 ambiguous date
        chat("c10", txt="typo"),                                                # 10 unknown field
        {**chat("c11"), "type": "rating", "rating": {"skill": "Juggling", "level": 2, "rater": "peer"}},  # 11
        {**chat("c12"), "type": "stage_change", "deal": "D-1"},                 # 12 stage_to missing
        chat("c13", tz="Asia/Shangai", at="2024-01-30 12:00"),                  # 13 unknown zone
        "[1, 2]",                                                               # 14 not an object
        chat("c15", text="Our ROI model pays back in 14 months.", at="2024-01-30T04:00:00Z"),  # 15 kept
    ])
    rejects_path = tmp_path / "out" / "rejects-events.jsonl"
    report = ingest_events(path, store, coding, rejects_path=rejects_path)
    assert (report.accepted, report.rejected, report.duplicates) == (2, 12, 1)
    rows = [json.loads(line) for line in rejects_path.read_text(encoding="utf-8").splitlines()]
    assert [(Path(r["file"]).name, r["line"], r["field"]) for r in rows] == [
        ("bad.jsonl", 2, "at"), ("bad.jsonl", 3, "type"), ("bad.jsonl", 4, "rating.level"), ("bad.jsonl", 5, "source"),
        ("bad.jsonl", 6, None), ("bad.jsonl", 8, "id"), ("bad.jsonl", 9, "at"), ("bad.jsonl", 10, "txt"),
        ("bad.jsonl", 11, "rating.skill"), ("bad.jsonl", 12, "stage_to"), ("bad.jsonl", 13, "tz"), ("bad.jsonl", 14, None)]
    why = {r["line"]: r["reason"] for r in rows}
    assert why[2].startswith("Field required")
    assert "unknown source 'emial'" in why[5] and "self_rating" in why[5]
    assert why[6].startswith("is not JSON")
    assert why[8] == "id 'c1' (source chat) is also on line 1 with other content; lines 1 and 8 disagree"
    assert "day/month order is ambiguous" in why[9]
    assert why[10] == "unknown field; put source-specific fields under attrs"
    assert why[11] == "skill 'Juggling' is not a known skill; use the skill id"
    assert "'Asia/Shangai' is unknown" in why[13]
    assert all(r["reason"] for r in rows)
    assert sorted(e["id"] for e in store.list_nodes(schema.EVENT)) == ["evt:chat:c1", "evt:chat:c15"]
    assert store.get_node(schema.EVENT, "evt:chat:c1")["text"] == "您目前最大的痛点是什么？"  # the first line wins, not the last
    assert report.summary(str(rejects_path))["rejects_file"] == str(rejects_path)


def test_the_same_instant_is_one_string_and_the_zone_assumed_is_recorded(store: Any, tmp_path: Path) -> None:
    coding = make_coding(store)
    path = write_jsonl(tmp_path / "t.jsonl", [
        chat("a", at="2024-01-30T12:00:00+08:00"), chat("b", at="2024-01-30T04:00:00Z"),
        chat("c", at="2024-01-29T23:00:00-05:00"), chat("d", at=45321.5), chat("e", at="2024-01-30 12:00"),
        chat("f", at="2024-01-30 05:00", tz="Europe/Paris"), chat("g", at=1706587200000),
    ])
    ingest_events(path, store, coding)
    got = {e["source_id"]: (e["at"], e.get("tz_assumed")) for e in store.list_nodes(schema.EVENT)}
    noon = "2024-01-30T04:00:00Z"
    assert got == {"a": (noon, None), "b": (noon, None), "c": (noon, None), "d": (noon, "Asia/Shanghai"),
                   "e": (noon, "Asia/Shanghai"), "f": (noon, "Europe/Paris"), "g": (noon, None)}
    ingest_events(path, store, coding, default_tz="UTC")  # another default moves only the naive ones
    assert store.get_node(schema.EVENT, "evt:chat:e")["at"] == "2024-01-30T12:00:00Z"
    assert store.get_node(schema.EVENT, "evt:chat:a")["at"] == noon
    with pytest.raises(ConfigError, match="Mars/Base"):
        ingest_events(path, store, coding, default_tz="Mars/Base")


# -- CSV as people export it ---------------------------------------------------------------------
def test_gbk_csv_with_chinese_headers_end_to_end(store: Any) -> None:
    coding = make_coding(store)
    report = ingest_events(EXAMPLES / "events-gbk.csv", store, coding, identity=load_identity_map(EXAMPLES / "identity.json"))
    assert (report.accepted, report.rejected, report.stats["n_evidence"]) == (4, 0, 5)
    got = {e["source_id"]: (e["type"], e["source"], e["at"], e.get("tz_assumed")) for e in store.list_nodes(schema.EVENT)}
    assert got == {
        "dt-1001": ("chat", "chat", "2024-01-30T04:00:00Z", "Asia/Shanghai"),            # Excel serial 45321.5
        "dt-1002": ("email", "email", "2024-02-01T01:30:00Z", "Asia/Shanghai"),          # 2024/2/1 9:30
        "dt-1003": ("stage_change", "crm", "2024-02-03T06:00:00Z", "Asia/Shanghai"),     # 2024年2月3日 14:00
        "dt-1004": ("rating", "peer_rating", "2024-06-28T16:00:00Z", "Asia/Shanghai"),
    }
    assert reasons(store, "evt:chat:dt-1001") == [
        "逻辑诉求 → 价值阐述 L3，有量化数据：“我们的方案能帮您降本增效，预计每年节省20%的运维成本。”（rules，置信度 0.70）"]
    peer = store.get_node(schema.EVIDENCE, "ev:evt:peer_rating:dt-1004:rating")
    assert (peer["skill_id"], peer["level"], peer["credibility"], peer["coder"]) == ("capmap:needs-discovery", 2, 0.6, "rating:peer")
    assert peer["reason"] == "同事评价 → 需求挖掘 L2：“能主动挖掘客户需求， 但追问还不够深入。”（rating:peer，可信度 0.60）"
    assert store.get_node(schema.EVENT, "evt:peer_rating:dt-1004")["text"] == "能主动挖掘客户需求，\n但追问还不够深入。"
    assert reasons(store, "evt:crm:dt-1003") == [
        'opened an opportunity → Pipeline management L2: "OPP-2024-017: Prospecting → Engaging" (rules, p=1.00)']


def test_gbk_csv_rejects_point_at_the_record_first_line(sqlite_store: Any, tmp_path: Path) -> None:
    coding = make_coding(sqlite_store)
    p = tmp_path / "导出.csv"
    p.write_bytes(("编号,销售,类型,时间,内容,attrs.群名\r\n"
                   'a1,zw,聊天,2024-01-30 12:00,"第一行\n第二行",销售群\r\n'
                   "a2,zw,传真,2024-01-30 12:00,内容,销售群\r\n"
                   "a3,zw,聊天,30/01/2024,内容,销售群\r\n"
                   "a4,zw,聊天,45321.5,您说得对,销售群\r\n").encode("gb18030"))
    report = ingest_events(p, sqlite_store, coding)
    assert [(e.line, e.field) for e in report.rejects] == [(4, "type"), (5, "at")]
    assert "'传真'" in report.rejects[0].reason
    a1 = sqlite_store.get_node(schema.EVENT, "evt:chat:a1")
    assert (a1["text"], json.loads(a1["attrs_json"])) == ("第一行\n第二行", {"群名": "销售群"})
    assert reasons(sqlite_store, "evt:chat:a4") == ["赞赏客户 → 关系建立 L1：“您说得对”（rules，置信度 0.70）"]


def test_an_event_dated_in_the_future_is_rejected(sqlite_store: Any, tmp_path: Path) -> None:
    """Regression (a new user's review): one event dated 2204 was accepted, became the anchor
    of every recency weight and weighed the whole map to nothing. An event up to a day ahead of
    the clock (a clock or zone set wrong) is kept."""
    from datetime import UTC, datetime, timedelta

    coding = make_coding(sqlite_store)
    soon = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    p = tmp_path / "future.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [
        {"id": "f1", "rep": "zw", "type": "chat", "at": "2024-01-30T10:00:00Z", "text": "fine"},
        {"id": "f2", "rep": "zw", "type": "chat", "at": "2204-01-30T10:00:00Z", "text": "from the future"},
        {"id": "f3", "rep": "zw", "type": "chat", "at": soon, "text": "a clock two hours fast"},
    ]) + "\n", encoding="utf-8")
    report = ingest_events(p, sqlite_store, coding)
    assert (report.accepted, [(e.line, e.field) for e in report.rejects]) == (2, [(2, "at")])
    assert "2204-01-30T10:00:00Z is in the future" in report.rejects[0].reason
    assert sqlite_store.get_node(schema.EVENT, "evt:chat:f2") is None
    assert sqlite_store.get_node(schema.EVENT, "evt:chat:f3") is not None


def test_a_key_given_twice_rejects_its_record_never_last_one_wins(sqlite_store: Any, tmp_path: Path) -> None:
    """Regression (a new user's review): ``{"rep": "a", "rep": "b"}`` was silently rep b; an
    identity map naming two reps for one identity kept the second."""
    coding = make_coding(sqlite_store)
    p = tmp_path / "twice.jsonl"
    p.write_text('{"id": "t1", "rep": "zw", "type": "chat", "at": "2024-01-30T10:00:00Z", "text": "fine"}\n'
                 '{"id": "t2", "rep": "zw", "rep": "ls", "type": "chat", "at": "2024-01-30T10:00:00Z", "text": "x"}\n'
                 '{"id": "t3", "rep": "zw", "type": "rating", "at": "2024-01-30T10:00:00Z",'
                 ' "rating": {"skill": "capmap:closing", "level": 2, "level": 4, "by": "self"}}\n', encoding="utf-8")
    report = ingest_events(p, sqlite_store, coding)
    assert (report.accepted, [(e.line, e.field) for e in report.rejects]) == (1, [(2, "rep"), (3, "rating.level")])
    assert "given twice" in report.rejects[0].reason
    ids = tmp_path / "ids.csv"
    ids.write_text("identity,rep\nzw@example.com,rep:zw\nZW@example.com,rep:other\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_identity_map(ids)
    assert (e.value.line, e.value.field) == (3, "identity") and "line 2" in e.value.reason
    same = tmp_path / "ids.json"
    same.write_text('{"zw@example.com": "rep:zw", "zw@example.com": "rep:other"}', encoding="utf-8")
    with pytest.raises(InputError, match="given twice") as e:
        load_identity_map(same)
    assert e.value.field == "zw@example.com"


def test_a_quote_left_open_in_an_events_csv_is_reported_not_swallowed(sqlite_store: Any, tmp_path: Path) -> None:
    """Regression: the rows after an unclosed quote became one event's text (accepted 1,
    rejected 0); now the record is rejected naming its line, the rows before it kept."""
    coding = make_coding(sqlite_store)
    p = tmp_path / "open-quote.csv"
    p.write_text("id,rep,type,at,text\n"
                 "q1,zw,chat,2024-01-30 12:00,fine\n"
                 'q2,zw,chat,2024-01-30 12:01,"never closed\n'
                 + "".join(f"q{i},zw,chat,2024-01-30 12:02,row {i}\n" for i in range(3, 50)), encoding="utf-8")
    report = ingest_events(p, sqlite_store, coding)
    assert (report.accepted, [(e.line, e.field) for e in report.rejects]) == (1, [(3, None)])
    assert "never closed" in report.rejects[0].reason
    assert sqlite_store.get_node(schema.EVENT, "evt:chat:q1") is not None
    assert sqlite_store.get_node(schema.EVENT, "evt:chat:q2") is None


@pytest.mark.parametrize(("header", "field", "message"), [
    ("id,rep,type,at,text,text", "text", "duplicate column name in the header (columns 5 and 6)"),
    ("id,rep,type,at,编号", "编号", "columns 'id' and '编号' both give 'id'"),
    ("id,rep,type,at,Text,TEXT", "TEXT", "columns 'Text' and 'TEXT' both give 'text'"),
    ("id,rep,type,at,rating.level,评分等级", "评分等级", "both give 'rating.level'"),
    ("id,rep,type,at,txt", "txt", "unknown column"),
])
def test_csv_header_problems_stop_the_file_never_last_one_wins(
        sqlite_store: Any, tmp_path: Path, header: str, field: str, message: str) -> None:
    coding = make_coding(sqlite_store)
    p = tmp_path / "h.csv"
    n = header.count(",") + 1
    p.write_text(header + "\n" + ",".join(["x1", "zw", "chat", "2024-01-30T12:00:00Z", "一", "二"][:n]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        ingest_events(p, sqlite_store, coding)
    assert (exc.value.line, exc.value.field) == (1, field)
    assert sqlite_store.count_nodes(schema.EVENT) == 0


def test_excel_unicode_text_and_blank_trailing_columns(sqlite_store: Any, tmp_path: Path) -> None:
    coding = make_coding(sqlite_store)
    p = tmp_path / "unicode.txt"  # Excel "Unicode text": UTF-16 with a BOM, tab-separated
    p.write_bytes("id\trep\ttype\tat\ttext\t\t\r\nu1\tzw\tchat\t45321.5\t行业领先\t\t\r\n".encode("utf-16"))
    report = ingest_events(p, sqlite_store, coding)
    assert (report.accepted, report.rejected) == (1, 0)
    assert sqlite_store.get_node(schema.EVENT, "evt:chat:u1")["at"] == "2024-01-30T04:00:00Z"


# -- coders --------------------------------------------------------------------------------------
class FakeTextCoder:
    """Stands in for the trained TextCoder: says logical-appeal at 0.8 for every unit it sees."""

    classes_ = ["logical-appeal", "non-strategy"]

    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict_proba(self, units: list[Any]) -> np.ndarray:
        self.seen += [u.text for u in units]
        return np.array([[0.8, 0.2]] * len(units))


def test_text_coder_codes_english_sentence_units(sqlite_store: Any, tmp_path: Path) -> None:
    fake = FakeTextCoder()
    coding = make_coding(sqlite_store, fake)
    path = write_jsonl(tmp_path / "t.jsonl", [
        chat("en", text="Thanks for your time. Shall we meet on Friday?"), chat("zh", text="好的。周五见。"),
        {"id": "r", "rep": "zw", "type": "rating", "at": "2024-01-30", "text": "Good at closing.",
         "rating": {"skill": "Closing", "level": 2, "rater": "manager"}},
    ])
    ingest_events(path, sqlite_store, coding)
    assert fake.seen == ["Thanks for your time.", "Shall we meet on Friday?"]  # Chinese units and ratings are not sent
    ev = sqlite_store.list_nodes(schema.EVIDENCE, where={"event_id": "evt:chat:en"})
    assert [(x["coder"], x["code"], x["span_start"], x["confidence"]) for x in ev] == [
        ("text", "logical-appeal", 0, 0.8), ("text", "logical-appeal", 22, 0.8)]
    assert sqlite_store.count_nodes(schema.EVIDENCE, where={"event_id": "evt:chat:zh"}) == 0
    rating = sqlite_store.get_node(schema.EVIDENCE, "ev:evt:manager_rating:r:rating")
    assert rating["reason"] == 'manager rating → Closing L2: "Good at closing." (rating:manager, credibility 0.70)'


# -- streaming -----------------------------------------------------------------------------------
def test_units_are_written_as_the_file_is_read(sqlite_store: Any, tmp_path: Path) -> None:
    coding = make_coding(sqlite_store)
    path = write_jsonl(tmp_path / "s.jsonl", [chat(f"m{i}", text="行业领先" if i % 2 else "好的") for i in range(1000)])
    size = path.stat().st_size
    read: list[int] = [0]
    report = IngestReport("events")
    gen = iter_event_units(path, sqlite_store, coding, report, unit_size=100, progress=lambda n: read.__setitem__(0, n))
    first = next(gen)
    assert read[0] < size / 5  # the first unit comes before the file is read
    assert len(first.nodes[schema.EVENT]) == 100 and len(first.nodes[schema.EVIDENCE]) == 50
    sqlite_store.apply(first)
    rest = list(gen)
    assert len(rest) == 9 and read[0] == size
    for unit in rest:
        sqlite_store.apply(unit)
    assert (report.accepted, sqlite_store.count_nodes(schema.EVENT), sqlite_store.count_edges(schema.PERFORMED)) == (1000, 1000, 1000)


# -- the schema documents what the loader reads -----------------------------------------------------
def test_schema_is_valid_and_matches_the_loader() -> None:
    doc = json.loads((SEEDS / "schema" / "event.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(doc)
    assert set(doc["properties"]) == set(EventIn.model_fields)
    assert set(doc["properties"]["rating"]["properties"]) == set(RatingIn.model_fields)
    assert set(doc["required"]) == {n for n, f in EventIn.model_fields.items() if f.is_required()}
    assert doc["properties"]["type"]["enum"] == list(EventIn.model_fields["type"].annotation.__args__)  # type: ignore[union-attr]
    assert doc["x-csv"]["columns"] == CSV_COLUMNS and doc["x-csv"]["values"] == CSV_VALUES
    validator = jsonschema.Draft202012Validator(doc)
    for line in (EXAMPLES / "events.jsonl").read_text(encoding="utf-8").splitlines():
        assert not list(validator.iter_errors(json.loads(line))), line


@pytest.mark.parametrize("change", [
    {"at": None}, {"type": "fax"}, {"rating": {"skill": "capmap:closing", "level": 2, "rater": "self"}},
    {"type": "stage_change", "stage_to": "Won"}, {"type": "rating"}, {"turn": -1}, {"lang": "fr"}, {"txt": "x"},
])
def test_schema_and_loader_refuse_the_same_records(sqlite_store: Any, change: dict[str, Any]) -> None:
    coding = make_coding(sqlite_store)
    doc = json.loads((SEEDS / "schema" / "event.schema.json").read_text(encoding="utf-8"))
    rec = {k: v for k, v in {**chat("x"), **change}.items() if v is not None}
    assert list(jsonschema.Draft202012Validator(doc).iter_errors(rec))
    assert isinstance(validate_event(rec, "f", 1, {"sources": coding.codebook.sources, "default_tz": "UTC"}), InputError)


def test_a_new_coding_recodes_and_the_same_coding_skips(sqlite_store: Any) -> None:
    coding = make_coding(sqlite_store)
    ids = load_identity_map(EXAMPLES / "identity.json")
    ingest_events(EXAMPLES / "events.jsonl", sqlite_store, coding, identity=ids)
    # the text coder joins: every event is coded again, English sentences now by it too
    with_coder = EventCoding(coding.codebook, coding.skill_names, FakeTextCoder())  # type: ignore[arg-type]
    r = ingest_events(EXAMPLES / "events.jsonl", sqlite_store, with_coder, identity=ids)
    assert (r.stats["unchanged"], r.stats["replaced"]) == (0, 11)
    # 6 English sentences (call 2, e-mail 3, proposal 1); where the text coder (0.8) and a rule
    # (0.7) give one code to one sentence, the more confident stays: 13 - 2 + 6 evidence items
    assert sqlite_store.count_nodes(schema.EVIDENCE, where={"coder": "text"}) == 6
    assert sqlite_store.count_nodes(schema.EVIDENCE) == 17
    same = EventCoding(coding.codebook, coding.skill_names, FakeTextCoder())  # type: ignore[arg-type]
    assert same.fingerprint == with_coder.fingerprint != coding.fingerprint
    assert ingest_events(EXAMPLES / "events.jsonl", sqlite_store, same, identity=ids).stats["unchanged"] == 11
    # credibility weights are configuration: self-rating weighed 0.2 instead of 0.3
    cb = dataclasses.replace(coding.codebook, sources={**coding.codebook.sources, "self_rating": 0.2})
    r = ingest_events(EXAMPLES / "events.jsonl", sqlite_store, EventCoding(cb, coding.skill_names), identity=ids)
    assert r.stats["replaced"] == 11
    x = sqlite_store.get_node(schema.EVIDENCE, "ev:evt:self_rating:review-2024H1-self-closing:rating")
    assert (x["credibility"], x["reason"]) == (0.2, "自评 → 促成成交 L4：“上半年签了三个大单。”（rating:self，可信度 0.20）")
    assert sqlite_store.count_nodes(schema.EVIDENCE, where={"coder": "text"}) == 0
    assert sqlite_store.count_nodes(schema.EVIDENCE) == 13
