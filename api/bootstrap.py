"""The composition root: settings in, a ready store out. Nothing else opens a store."""

from __future__ import annotations

from urllib.parse import urlparse

from api.settings import Settings
from graph.errors import ConfigError
from graph.sqlite_store import SqliteStore
from graph.store import GraphStore


def build_store(settings: Settings) -> GraphStore:
    """Open the store named by ``settings.store``: ``sqlite:///path`` or ``bolt://``/``neo4j://``."""
    uri = settings.store
    scheme = urlparse(uri).scheme
    if scheme == "sqlite":
        path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
        if not path:
            raise ConfigError(f"store {uri!r}: write sqlite:///relative/or/absolute/path.sqlite")
        return SqliteStore(path)  # sqlite:///rel/path or sqlite:////abs/path
    if scheme in ("bolt", "neo4j", "bolt+s", "neo4j+s", "bolt+ssc", "neo4j+ssc"):
        from graph.neo4j_store import Neo4jStore

        return Neo4jStore.connect(uri, settings.neo4j_user, settings.neo4j_password.get_secret_value(),
                                  database=settings.neo4j_database, batch_size=settings.batch_size)
    raise ConfigError(f"store {uri!r}: the scheme must be sqlite, bolt or neo4j")
