"""The KPI query API's HTTP routes on the worker's web server: ``GET /api/kpis``,
``GET /api/kpis/{kpi}`` (``streams.serving.api``) and ``GET /api/kpis/{kpi}/history``
(``streams.serving.history``). A bad query is a 400 naming what is valid."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import faust
import redis.asyncio as aioredis

from streams.serving.api import QueryError, catalogue, query
from streams.serving.history import history
from streams.settings import Settings


def register_api(app: faust.App, settings: Settings, client: aioredis.Redis) -> None:
    """Add the API views to the worker's web server."""

    @app.page("/api/kpis")
    async def list_kpis(web: Any, request: Any) -> Any:
        return web.json({"currency": settings.currency, "kpis": catalogue(settings.currency)})

    async def answer(web: Any, asked: Awaitable[dict[str, Any]]) -> Any:
        try:
            return web.json(await asked)
        except QueryError as exc:  # a bad query: 400, naming what is valid
            return web.json({"error": str(exc)}, status=400)

    @app.page("/api/kpis/{kpi}")
    async def get_kpi(web: Any, request: Any, kpi: str) -> Any:
        params = request.query
        return await answer(web, query(
            client, settings, kpi, params.get("window"), params.get("at"), params.get("by"),
            params.get("key"),
        ))  # fmt: skip

    @app.page("/api/kpis/{kpi}/history")
    async def get_history(web: Any, request: Any, kpi: str) -> Any:
        params = request.query
        return await answer(web, history(
            client, settings, kpi, params.get("window"), params.get("from"), params.get("to"),
            params.get("by"), params.get("key"),
        ))  # fmt: skip
