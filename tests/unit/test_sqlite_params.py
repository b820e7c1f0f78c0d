"""The SQLite store's statement parameters: the fast path for plain rows gives exactly what the
general path (``values.node_props`` / ``values.edge_row`` then the JSON) gives, and every other
row is still converted or refused naming the record and property."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from graph import model
from graph.errors import StoreError
from graph.sqlite_store import SqliteStore, _dumps_both
from graph.store import ChangeSet
from graph.values import edge_row, node_props, plain_nulls


def _general(label: str, row: dict[str, object]) -> tuple[object, ...]:
    """The parameters as the general path makes them (the reference for the fast path)."""
    from graph import schema

    node_id, props = node_props(label, row)
    columns = tuple(props.get(c) for c in schema.INDEXED_PROPS.get(label, ()))
    return (label, node_id, *_dumps_both(props), *columns)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], False),
        (["a", True, False, 0, -(2**63), 2**63 - 1, 1.5, -0.0], False),
        (["a", None], True),
        ([math.nan], None),
        ([math.inf, None], None),
        ([2**63], None),
        ([-(2**63) - 1], None),
        ([np.float64(1.0)], None),  # numpy scalars are converted, so not plain
        ([np.int64(1)], None),
        ([("a",)], None),
        ([["a"]], None),
        ([{"a": 1}], None),
        ([datetime(2024, 1, 2, tzinfo=UTC)], None),
    ],
)
def test_plain_nulls(values: list[object], expected: bool | None) -> None:
    assert plain_nulls(values) is expected


def test_plain_node_rows_give_the_exact_parameters() -> None:
    rows = [
        {"id": "e1", "rep_id": "r1", "type": "utterance", "source": "crm", "turn": 3, "w": 0.25, "ok": True},
        {"id": "e2", "rep_id": "r2", "deal_id": None, "source": "p4g", "text": "héllo \"q\" \n"},
    ]
    params = SqliteStore._node_params("Event", rows)
    assert params == [
        ("Event", "e1", '{"ok":true,"rep_id":"r1","source":"crm","turn":3,"type":"utterance","w":0.25}',
         '{"ok":true,"rep_id":"r1","source":"crm","turn":3,"type":"utterance","w":0.25}', "r1", None, "crm"),
        ("Event", "e2", '{"deal_id":null,"rep_id":"r2","source":"p4g","text":"héllo \\"q\\" \\n"}',
         '{"rep_id":"r2","source":"p4g","text":"héllo \\"q\\" \\n"}', "r2", None, "p4g"),
    ]
    assert params == [_general("Event", r) for r in rows]
    assert rows[0]["id"] == "e1" and "id" in rows[1]  # the caller's rows are left alone


def test_model_rows_give_the_same_parameters_either_way() -> None:
    ev = model.Event(id="p4g:d:0", rep_id="p4g:u", type="utterance", source="transcript", at="2018-08-27T04:37:28Z",
                     deal_id="p4g:d", text="Hi", turn=0)
    x = model.Evidence(id="ev:p4g:d:0:c:0", event_id=ev.id, rep_id="p4g:u", skill_id="capmap:s", code="c", level=1,
                       confidence=0.9938, credibility=0.9, span_start=0, span_end=2)
    label = model.CapabilityLabel(id="l1", top_skills=("a", "b"), centroid=(0.5, 1.0))
    change = ChangeSet().add_nodes([ev, x, label])
    for lab, rows in change.nodes.items():
        assert SqliteStore._node_params(lab, rows) == [_general(lab, r) for r in rows]
    (evidence,) = SqliteStore._node_params("Evidence", change.nodes["Evidence"])
    assert evidence[1] == "ev:p4g:d:0:c:0" and evidence[4:] == ("p4g:u", "capmap:s", "p4g:d:0")
    assert '"weight":0.8944' in evidence[2] and evidence[2] is evidence[3]


def test_rows_to_convert_take_the_general_path() -> None:
    tz = timezone(timedelta(hours=2))
    rows = [
        {"id": "r1", "function": ("a", "b"), "n": np.int64(3), "f": np.float32(0.5)},
        {"id": "r2", "at": datetime(2024, 1, 2, 12, 0, tzinfo=tz), "naive": datetime(2024, 1, 2), "x": None},
    ]
    params = SqliteStore._node_params("Rep", rows)
    assert params == [
        ("Rep", "r1", '{"f":0.5,"function":["a","b"],"n":3}', '{"f":0.5,"function":["a","b"],"n":3}', '["a","b"]'),
        ("Rep", "r2", '{"at":"2024-01-02T10:00:00Z","naive":"2024-01-02T00:00:00Z","x":null}',
         '{"at":"2024-01-02T10:00:00Z","naive":"2024-01-02T00:00:00Z"}', None),
    ]


@pytest.mark.parametrize("bad", [math.nan, -math.inf, 2**63, -(2**63) - 1, {"a": 1}, [1, None], object()])
def test_bad_node_values_are_refused_naming_the_row_and_property(bad: object) -> None:
    with pytest.raises(StoreError, match=r"Rep 'r1' property 'x'"):
        SqliteStore._node_params("Rep", [{"id": "r0", "x": 1}, {"id": "r1", "x": bad}])


@pytest.mark.parametrize("row", [{"x": 1}, {"id": ""}, {"id": 7}, {"id": None}])
def test_a_node_row_without_a_string_id_is_refused(row: dict[str, object]) -> None:
    with pytest.raises(StoreError, match=r"Rep row without a string id"):
        SqliteStore._node_params("Rep", [row])


def test_a_string_orjson_refuses_is_a_store_error() -> None:
    with pytest.raises(StoreError, match=r"a property value cannot be stored"):
        SqliteStore._node_params("Rep", [{"id": "r1", "name": "\ud800"}])
    with pytest.raises(StoreError, match=r"a property value cannot be stored"):
        SqliteStore._edge_params("REPORTS_TO", "Rep", "Rep", [{"src": "a", "dst": "b", "note": "\ud800"}])


def test_edge_parameters() -> None:
    rows = [
        {"src": "a", "dst": "b"},
        {"src": "a", "dst": "c", "key": "k", "w": 0.5, "gone": None},
        {"src": 1, "dst": "d", "n": np.int64(2)},  # converted: the ends as strings, numpy as int
    ]
    params = SqliteStore._edge_params("WORKED_ON", "Rep", "Deal", rows)
    assert params == [
        ("WORKED_ON", "a", "b", "", "Rep", "Deal", "{}", "{}"),
        ("WORKED_ON", "a", "c", "k", "Rep", "Deal", '{"gone":null,"w":0.5}', '{"w":0.5}'),
        ("WORKED_ON", "1", "d", "", "Rep", "Deal", '{"n":2}', '{"n":2}'),
    ]
    for row, p in zip(rows, params, strict=True):
        r = edge_row("WORKED_ON", row)
        assert p == ("WORKED_ON", r["src"], r["dst"], r["key"], "Rep", "Deal", *_dumps_both(r["props"]))
    assert rows[1]["key"] == "k"  # the caller's rows are left alone
    with pytest.raises(StoreError, match=r"WORKED_ON edge 'a'->'b' key '' property 'x'"):
        SqliteStore._edge_params("WORKED_ON", "Rep", "Deal", [{"src": "a", "dst": "b", "x": math.nan}])
    with pytest.raises(StoreError, match=r"edge row without src and dst"):
        SqliteStore._edge_params("WORKED_ON", "Rep", "Deal", [{"src": "a"}])


def test_a_prepared_change_writes_the_same_store_rows() -> None:
    store = SqliteStore(":memory:")
    change = ChangeSet().add_nodes([model.Rep(id="r1", name="Ann", function="sales", departments=("x",)),
                                    model.Deal(id="d1", name="D", outcome="won", value=10.0)])
    change.add_edges("WORKED_ON", "Rep", "Deal", [{"src": "r1", "dst": "d1", "role": "lead"}])
    store.apply(store.prepare(change))
    assert store.get_node("Rep", "r1") == {"id": "r1", "name": "Ann", "function": "sales", "source": "",
                                          "departments": ["x"]}
    assert store.list_nodes("Deal", where={"outcome": "won"})[0]["value"] == 10.0
    assert [e.props for e in store.list_edges("WORKED_ON")] == [{"role": "lead"}]
    store.close()
