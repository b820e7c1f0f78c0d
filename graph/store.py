"""The store port: the narrow interface both graph stores implement.

Rows are flat mappings of JSON-able values. A node row is keyed by ``id``; an edge row by
``(src, dst, key)`` within its relationship type (``key`` defaults to ``""``, so there is at
most one edge of a type between two nodes unless a key tells them apart). Every write goes
through :meth:`GraphStore.apply`, which applies a :class:`ChangeSet` atomically: all of it or
none of it. Upserts merge properties by id, so applying the same change twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from graph import schema
from graph.errors import StoreError
from graph.model import Node

Row = dict[str, Any]


def explicit_rel(rel_type: str) -> str:
    """``rel_type`` if a change may write or delete it; an implied relationship raises."""
    implied = schema.IMPLIED.get(schema.check_rel(rel_type))
    if implied is not None:
        ends = [p for p in (implied.src, implied.dst) if p != "id"]
        raise StoreError(
            f"{rel_type} relationships are implied by {implied.owner} nodes ({', '.join(ends)}); "
            f"write or delete the {implied.owner} node instead"
        )
    return rel_type


@dataclass(frozen=True)
class EdgeBatch:
    rel_type: str
    src_label: str
    dst_label: str
    rows: Sequence[Row]


@dataclass
class ChangeSet:
    """Writes to apply together, in this order: edge deletions, node deletions (with their
    edges), node upserts, edge upserts. Deleting then upserting replaces."""

    nodes: dict[str, list[Row]] = field(default_factory=dict)
    edges: list[EdgeBatch] = field(default_factory=list)
    delete_edges: list[tuple[str, str, list[str]]] = field(default_factory=list)
    """(rel_type, src_label, src ids): remove every edge of that type leaving those nodes.
    Implied relationships (``schema.IMPLIED``) are neither added nor deleted by a change."""
    delete_nodes: list[tuple[str, list[str]]] = field(default_factory=list)
    encoded: Any = None
    """Set by :meth:`GraphStore.prepare`: the rows checked and encoded for one store (``nodes``
    and ``edges`` are then empty); that store's ``apply`` writes them, any other refuses."""
    encoded_rows: int = 0

    def add_nodes(self, items: Sequence[Node]) -> ChangeSet:
        for item in items:
            self.nodes.setdefault(item.LABEL, []).append(item.to_row())
        return self

    def add_rows(self, label: str, rows: Sequence[Row]) -> ChangeSet:
        self.nodes.setdefault(schema.check_label(label), []).extend(rows)
        return self

    def add_edges(self, rel_type: str, src_label: str, dst_label: str, rows: Sequence[Row]) -> ChangeSet:
        explicit_rel(rel_type)
        schema.check_label(src_label)
        schema.check_label(dst_label)
        if rows:
            self.edges.append(EdgeBatch(rel_type, src_label, dst_label, list(rows)))
        return self

    def merge(self, other: ChangeSet) -> ChangeSet:
        if self.encoded is not None or other.encoded is not None:
            raise StoreError("a prepared change cannot be merged; merge the changes, then prepare")
        for label, rows in other.nodes.items():
            self.nodes.setdefault(label, []).extend(rows)
        self.edges.extend(other.edges)
        self.delete_edges.extend(other.delete_edges)
        self.delete_nodes.extend(other.delete_nodes)
        return self

    @property
    def n_rows(self) -> int:
        return sum(len(r) for r in self.nodes.values()) + sum(len(b.rows) for b in self.edges) + self.encoded_rows


@dataclass(frozen=True)
class Edge:
    rel_type: str
    src: str
    dst: str
    key: str
    props: Row

    def row(self) -> Row:
        return {"src": self.src, "dst": self.dst, "key": self.key, **self.props}


@runtime_checkable
class GraphStore(Protocol):
    """What every capmap store offers. See ``tests/integration/test_store_conformance.py``."""

    name: str

    def setup(self) -> None:
        """Create constraints and indexes; idempotent."""

    def apply(self, change: ChangeSet) -> None:
        """Apply every write in ``change`` in one transaction."""

    def prepare(self, change: ChangeSet) -> ChangeSet:
        """``change`` with its rows checked and encoded for this store, so :meth:`apply` has
        less to do. Pure (no I/O, no connection used): an import's worker process runs it."""

    def get_node(self, label: str, node_id: str) -> Row | None: ...

    def get_nodes(self, label: str, ids: Sequence[str]) -> dict[str, Row]: ...

    def list_nodes(
        self,
        label: str,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Row]:
        """Nodes of ``label`` whose properties equal ``where``, ordered by id."""

    def iter_nodes(self, label: str, where: Mapping[str, Any] | None = None, batch_size: int = 5000) -> Iterator[Row]: ...

    def count_nodes(self, label: str, where: Mapping[str, Any] | None = None) -> int: ...

    def list_edges(
        self,
        rel_type: str,
        src: str | None = None,
        dst: str | None = None,
        limit: int | None = None,
    ) -> list[Edge]:
        """Edges of ``rel_type``, optionally from ``src`` and/or to ``dst``, ordered."""

    def count_edges(self, rel_type: str) -> int: ...

    def neighbours(self, node_id: str, rel_type: str, direction: str = "out") -> list[tuple[Edge, Row]]:
        """Edges of ``rel_type`` at ``node_id`` with the node at their other end."""

    def close(self) -> None: ...
