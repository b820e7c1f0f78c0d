"""capmap's graph: the domain model and the stores. Imports no other capmap part."""

from graph.errors import CapmapError
from graph.sqlite_store import SqliteStore
from graph.store import ChangeSet, Edge, GraphStore

__all__ = ["CapmapError", "ChangeSet", "Edge", "GraphStore", "SqliteStore"]
