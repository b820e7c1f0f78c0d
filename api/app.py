"""The FastAPI application factory: GraphQL (with the GraphiQL explorer) at /graphql, /health."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from strawberry.fastapi import GraphQLRouter

from api.graphql_schema import schema
from graph import schema as gs
from graph.errors import CapmapError, NotFound
from graph.store import GraphStore


def create_app(store: GraphStore) -> FastAPI:
    """Build the app around a ready store (the composition root builds the store)."""
    app = FastAPI(title="capmap", version="0.1.0")

    async def context() -> dict[str, Any]:
        return {"store": store}

    app.include_router(GraphQLRouter(schema, context_getter=context, graphql_ide="graphiql"), prefix="/graphql")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "store": store.name, "reps": store.count_nodes(gs.REP)}

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"error": str(exc)})

    @app.exception_handler(CapmapError)
    async def capmap_error(_: Request, exc: CapmapError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"error": str(exc), "type": type(exc).__name__})

    return app
