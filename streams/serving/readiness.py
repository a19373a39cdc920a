"""``GET /health`` (the process is alive) and ``GET /ready`` (it is doing its share), for
orchestrators; neither needs a token (streams.serving.web_access).

``/ready`` answers 200 only when the worker has partitions assigned, is not rebalancing or
recovering its tables, has every assigned partition's end offset and is at most
``SALESPULSE_READY_MAX_LAG`` messages behind in them together, and Redis answered its last PING;
503 otherwise, with the reasons. It does no I/O: the consumer's positions and end offsets are
what faust already keeps in memory, and Redis is PINGed by a timer (``RedisCheck``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PING_TIMEOUT_S = 2.0

Behind = list[tuple[str, int, int | None]]
"""(topic, partition, messages not yet processed, None when its end offset is unknown)"""


@dataclass(frozen=True)
class WorkerState:
    """What ``/ready`` judges: read from the worker when asked."""

    assigned: int  # partitions assigned to this worker
    behind: Behind  # per assigned partition of the pipeline's topics
    rebalancing: bool
    recovering: bool  # faust is restoring tables from their changelogs
    redis_error: str | None  # why the last PING failed, None when it answered


def not_ready(state: WorkerState, max_lag: int) -> list[str]:
    """Why the worker is not ready (empty: it is)."""
    reasons = []
    if state.assigned == 0:
        reasons.append("no partition assigned yet (joining its consumer group)")
    if state.rebalancing:
        reasons.append("rebalancing")
    if state.recovering:
        reasons.append("recovering tables from their changelogs")
    unknown = [f"{t}/{p}" for t, p, n in state.behind if n is None]
    if unknown:
        reasons.append(f"end offset not known yet: {', '.join(sorted(unknown))}")
    total = sum(n for _, _, n in state.behind if n is not None)
    if total > max_lag:
        reasons.append(
            f"catching up: {total} messages behind (ready at {max_lag}, SALESPULSE_READY_MAX_LAG)"
        )
    if state.redis_error is not None:
        reasons.append(f"redis: {state.redis_error}")
    return reasons


class RedisCheck:
    """The last answer of Redis to a PING (``ping`` runs on a timer)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self.error: str | None = "not PINGed yet"

    async def ping(self) -> None:
        try:
            await asyncio.wait_for(self._client.ping(), PING_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            error = f"no answer to PING ({type(exc).__name__})"
            if self.error != error:
                log.warning("readiness: Redis does not answer PING: %s", exc)
            self.error = error
        else:
            if self.error is not None and self.error != "not PINGed yet":
                log.info("readiness: Redis answers PING again")
            self.error = None


def register_health(
    app: faust.App, state: Callable[[], WorkerState], redis_check: RedisCheck, max_lag: int
) -> None:
    """Add ``/health`` and ``/ready`` to the worker's web server, and the Redis PING timer."""

    @app.timer(interval=1.0)
    async def ping_redis() -> None:
        await redis_check.ping()

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "alive"})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        now = state()
        reasons = not_ready(now, max_lag)
        if reasons:
            return web.json({"ready": False, "reasons": reasons}, status=503)
        behind = sum(n or 0 for _, _, n in now.behind)
        return web.json({"ready": True, "assigned_partitions": now.assigned, "behind": behind})
