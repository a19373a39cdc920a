"""The Redis read model: absolute values, written in one pipeline per flush.

Key layout (first slice):

- ``<prefix>revenue:day:<YYYY-MM-DD>``: hash, field = rep_id, value = revenue (decimal string)
- ``<prefix>revenue:day:<YYYY-MM-DD>:leaderboard``: sorted set, member = rep_id, score = revenue

Writes are absolute (HSET / ZADD of the total), never increments, so replaying a message after
a crash rewrites the same value instead of counting it twice.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def revenue_day_key(prefix: str, day: date) -> str:
    return f"{prefix}revenue:day:{day.isoformat()}"


class RevenueReadModel:
    """Collects the latest totals between flushes and writes them to Redis in a pipeline."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._pending: dict[tuple[date, str], str] = {}

    def stage(self, day: date, rep_id: str, total: str) -> None:
        """Remember the latest total; only the last one per key is written."""
        self._pending[(day, rep_id)] = total

    async def flush(self) -> int:
        """Write what is pending; on a Redis error keep it for the next flush."""
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        pipe = self._client.pipeline(transaction=False)
        for (day, rep_id), total in batch.items():
            key = revenue_day_key(self._prefix, day)
            pipe.hset(key, rep_id, total)
            pipe.zadd(f"{key}:leaderboard", {rep_id: float(Decimal(total))})
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("Redis write failed, retrying at next flush: %s", exc)
            for staged, total in batch.items():
                self._pending.setdefault(staged, total)  # a newer total staged since wins
            return 0
        return len(batch)


async def read_revenue_day(client: aioredis.Redis, prefix: str, day: date) -> dict[str, Decimal]:
    """Revenue of each rep on ``day``, as written by the worker."""
    raw = await client.hgetall(revenue_day_key(prefix, day))
    return {_text(k): Decimal(_text(v)) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
