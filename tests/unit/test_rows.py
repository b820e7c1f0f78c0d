"""Store rows of domain objects, and the property values both stores accept."""

from __future__ import annotations

import dataclasses
import math
from datetime import date

import numpy as np
import pytest

from graph import model
from graph.errors import StoreError
from graph.values import edge_row, node_row, props_of


def _node_types() -> list[type[model.Node]]:
    return [t for t in vars(model).values()
            if isinstance(t, type) and issubclass(t, model.Node) and t is not model.Node]


@pytest.mark.parametrize("cls", _node_types(), ids=lambda c: c.__name__)
def test_to_row_holds_the_fields_in_order_without_nulls(cls: type[model.Node]) -> None:
    node = cls(id="n1")
    fields = [f.name for f in dataclasses.fields(cls)]
    row = node.to_row()
    expected = [k for k in fields if getattr(node, k) is not None]
    assert list(row)[: len(expected)] == expected
    assert set(row) - set(fields) <= {"weight"}  # Evidence adds what its EVIDENCES edge carries
    assert not any(isinstance(v, tuple) for v in row.values())


def test_to_row_turns_tuples_into_lists() -> None:
    label = model.CapabilityLabel(id="l1", top_skills=("a", "b"), centroid=(0.5, 1.0), mean_probability=None)
    row = label.to_row()
    assert row["top_skills"] == ["a", "b"] and row["centroid"] == [0.5, 1.0]
    assert "mean_probability" not in row and "reviewed_by" not in row
    assert label.top_skills == ("a", "b")  # the node itself is unchanged


def test_props_of_converts_and_leaves_the_row_alone() -> None:
    row = {"id": "x", "n": np.int64(3), "f": np.float32(0.5), "d": date(2024, 1, 2), "t": ("a",), "s": "s", "b": True}
    props = props_of(row, ("id",), "Rep 'x'")
    assert props == {"n": 3, "f": 0.5, "d": "2024-01-02", "t": ["a"], "s": "s", "b": True}
    assert type(props["n"]) is int and row["n"] == np.int64(3) and "id" in row


@pytest.mark.parametrize("bad", [math.nan, math.inf, 2**63, {"a": 1}, [1, None], object()])
def test_bad_values_are_refused_naming_the_row_and_property(bad: object) -> None:
    with pytest.raises(StoreError, match=r"Rep 'r1' property 'x'"):
        node_row("Rep", {"id": "r1", "x": bad})
    with pytest.raises(StoreError, match=r"REPORTS_TO edge 'a'->'b' key '' property 'x'"):
        edge_row("REPORTS_TO", {"src": "a", "dst": "b", "x": bad})


def test_json_keys_given_twice_are_named_by_path() -> None:
    from ingest import jsonio

    assert jsonio.duplicate_key(jsonio.loads('{"a": 1, "b": {"c": [1, {"d": 1, "d": 2}]}}')) == "b.c.1.d"
    assert jsonio.duplicate_key(jsonio.loads('{"a": 1, "a": 2, "b": {"c": 1, "c": 3}}')) == "a"
    assert jsonio.loads('{"a": 1, "a": 2}')["a"] == 1  # the first kept while the record is refused
    assert jsonio.duplicate_key(jsonio.loads('{"a": {"b": 1}, "c": [{"b": 2}]}')) is None


def test_a_reason_quoting_a_huge_value_is_cut_in_the_middle() -> None:
    """Regression (a new user's review): a 1 MB text quoted in a reason made a 1 MB line on the
    console and in the rejects file."""
    from graph.errors import InputError

    e = InputError("big.jsonl", 7, "text", "bad value " + "x" * 1_000_000 + " END")
    assert len(e.reason) < 1100 and e.reason.startswith("bad value x") and e.reason.endswith("x END")
    assert "characters left out" in e.reason and len(str(e)) < 1200
    assert InputError("f", 1, None, "short").reason == "short"


def test_json_nested_too_deeply_is_a_decode_error_not_a_crash() -> None:
    import json

    from ingest import jsonio

    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        jsonio.loads('{"a":' * 100_000 + "1" + "}" * 100_000)
    deep = jsonio.loads('{"a":' * 900 + '{"b": 1, "b": 2}' + "}" * 900)
    assert jsonio.duplicate_key(deep) == "a." * 900 + "b"  # found without recursion
