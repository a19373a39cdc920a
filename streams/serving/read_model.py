"""The Redis read model: the latest KPI values, written absolute, in one pipeline per flush.

Key layout (``<p>`` is ``SALESPULSE_REDIS_PREFIX``, default ``sp:``; ``<start>`` is the window
start in Unix seconds; kinds are ``minute``, ``day``, ``week``, ``month``, ``quarter`` and
``live`` (start 0)):

- ``<p>kpi:<kpi>:<kind>:<start>:<dimension>``: hash, field = dimension key (``all`` for
  global), value = JSON ``{"value", "numerator", "denominator", "final", "revision"}``
  (decimal strings or null);
- ``<p>lb:<kpi>:<kind>:<start>:<dimension>``: sorted set, the leaderboard: member = key,
  score = value (keys with a null value are left out, and leave it when theirs turns null);
- ``<p>cell:<kind>:<start>:<dimension>``: hash, field = key, value = JSON of the merged cell
  (the additive components every KPI of the window is computed from, used by the API for
  rolling windows) with its ``final``, ``revision`` and context;
- ``<p>stream_time``: sorted set, scores in ms that only move forward: ``global``, the
  newest stream time of the publisher partitions, and ``q<n>``, that of partition ``n``
  (``internal.cells``): every window of its keys whose end + grace is behind it is closed
  and has its final values here (a window that is history has no values before it closes,
  so their being final does not say that none is left to close; this does);
- ``<p>complete:<q>``: present while Redis holds every value of publisher partition ``q``
  (``internal.cells``). Redis keeps nothing on disk: after a restart (or a FLUSHALL) it is
  missing, and the worker owning ``q`` writes all of ``q``'s values again
  (``Publisher.flush``), then sets it in the same pipeline.

Every write sets an absolute value (HSET, ZADD of the value), never an increment, so a message
replayed after a crash rewrites the same value instead of counting twice. Windows past their
retention are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis.typing import EncodableT

from streams.kpi.cells import Cell, split_cell_key
from streams.kpi.values import Context
from streams.serving import redis_batch

log = logging.getLogger(__name__)


def as_text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def partition_member(partition: int) -> str:
    """The ``<p>stream_time`` member of publisher partition ``partition``."""
    return f"q{partition}"


def closed_through(scores: Mapping[bytes, float], partitions: int) -> int | None:
    """From ``<p>stream_time``'s members and scores: the stream time every one of the
    ``partitions`` publisher partitions has reached (each window of every key ending before
    it, grace included, is closed and final here), or None while one has none yet."""
    times = [scores.get(partition_member(q).encode()) for q in range(partitions)]
    return None if None in times else int(min(t for t in times if t is not None))


class ReadModel:
    """Collects the latest values between flushes and writes them to Redis in a pipeline."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.hashes: dict[tuple[str, str], str] = {}  # (key, field) -> JSON text
        self.scores: dict[tuple[str, str], float | None] = {}  # None: leaves the board
        self.removals: list[tuple[str, str, str]] = []  # (op, key, field)
        self.partition_ms: dict[int, int] = {}  # publisher partition -> its stream time
        self.completed: set[int] = set()  # publisher partitions written whole: mark them
        self.staged: dict[int, set[str]] = {}  # publisher partition -> cells staged of it
        self.script: Any = None  # redis_batch.SCRIPT, registered with the client at first use

    def _script(self) -> Any:
        if self.script is None:
            self.script = self.client.register_script(redis_batch.SCRIPT)
        return self.script

    def stage_cell(
        self, cell: str, merged: Cell, stored: Mapping[str, Any], ctx: Context,
        texts: Mapping[str, list[str | None]], *, partition: int,
    ) -> None:  # fmt: skip
        """Stage a cell of publisher ``partition`` and its KPIs' ``[value, numerator,
        denominator]`` decimal texts."""
        self.staged.setdefault(partition, set()).add(cell)
        kind, start, dim, key = split_cell_key(cell)
        p = self.prefix
        final, revision = bool(stored["final"]), int(stored["rev"])
        context = {"customers_at_start": ctx.customers_at_start, "target_c": ctx.target_c}
        self.hashes[(f"{p}cell:{kind}:{start}:{dim}", key)] = orjson.dumps(
            {"c": merged, "final": final, "revision": revision, "ctx": context}
        ).decode()
        for kpi, (value, numerator, denominator) in texts.items():
            record = {
                "value": value, "numerator": numerator, "denominator": denominator,
                "final": final, "revision": revision,
            }  # fmt: skip
            self.hashes[(f"{p}kpi:{kpi}:{kind}:{start}:{dim}", key)] = orjson.dumps(record).decode()
            if dim != "global":  # a value gone null leaves the leaderboard (None: ZREM)
                board = (f"{p}lb:{kpi}:{kind}:{start}:{dim}", key)
                self.scores[board] = None if value is None else float(value)

    def remove(self, cell: str, kpis: Iterable[str]) -> None:
        """Remove a cell's values, and what is staged of them: a window closed and removed
        in one flush (event time jumped past its retention) must not be written back."""
        kind, start, dim, key = split_cell_key(cell)
        p = self.prefix
        self.removals.append(("hdel", f"{p}cell:{kind}:{start}:{dim}", key))
        for kpi in kpis:
            self.removals.append(("hdel", f"{p}kpi:{kpi}:{kind}:{start}:{dim}", key))
            self.removals.append(("zrem", f"{p}lb:{kpi}:{kind}:{start}:{dim}", key))
        self.unstage(cell, kpis)

    def unstage(self, cell: str, kpis: Iterable[str]) -> None:
        """Drop what is staged of a cell's values (a cell Redis never had, removed before a
        flush wrote it, needs nothing else)."""
        kind, start, dim, key = split_cell_key(cell)
        p = self.prefix
        self.hashes.pop((f"{p}cell:{kind}:{start}:{dim}", key), None)
        for kpi in kpis:
            self.hashes.pop((f"{p}kpi:{kpi}:{kind}:{start}:{dim}", key), None)
            self.scores.pop((f"{p}lb:{kpi}:{kind}:{start}:{dim}", key), None)

    def drop(self, partitions: Iterable[int], kpis: Iterable[str]) -> None:
        """A rebalance took ``partitions``: what is staged of their cells is not written.
        Their events' acks were dropped and their next owner publishes their values again;
        writing ours after a failed flush, once Redis is back, could overwrite the newer
        values it wrote meanwhile. Removals stay (a window past retention is gone for every
        owner)."""
        names = tuple(kpis)
        for q in partitions:
            for cell in self.staged.pop(q, ()):
                self.unstage(cell, names)
            self.completed.discard(q)
            self.partition_ms.pop(q, None)

    async def lost(self, partitions: Iterable[int]) -> list[int]:
        """The ``partitions`` whose values Redis may not hold (no ``complete`` mark: Redis
        restarted empty); none while Redis does not answer (the flush retries then)."""
        wanted = sorted(partitions)
        if not wanted:
            return []
        try:
            marks = await self.client.mget([f"{self.prefix}complete:{q}" for q in wanted])
        except RedisError:
            return []
        return [q for q, mark in zip(wanted, marks, strict=True) if mark is None]

    def complete(self, partition: int) -> None:
        """Every value of ``partition`` is staged: mark it complete once they are written."""
        self.completed.add(partition)

    def stream_time(self, ms: int, partition: int) -> None:
        """Publisher partition ``partition``'s stream time is ``ms``: written with the values
        staged with it (its windows closed by it among them)."""
        if ms > self.partition_ms.get(partition, -1):
            self.partition_ms[partition] = ms

    async def flush_removals(self) -> bool:
        """Remove the cells staged for removal (windows past their retention); False (and
        kept for the next try) if Redis failed. The publisher calls it before its table
        forgets those cells: a crash in between leaves them in the table, removed again."""
        if not self.removals:
            return True
        removals, self.removals = self.removals, []
        pipe = self.client.pipeline(transaction=False)
        # One command per Redis key (a window's KPI for every key of a dimension), not one
        # per field; and many commands per call (``redis_batch``).
        grouped = _grouped(((o, k), f) for o, k, f in removals)
        await redis_batch.queue(pipe, self._script(), ((o, k, f) for (o, k), f in grouped.items()))
        try:
            await pipe.execute()
        except RedisError as exc:
            log.warning("Redis write failed (%s); retrying at the next flush", exc)
            self.removals = removals + self.removals
            return False
        return True

    async def flush(self) -> bool:
        """Write what is staged (removals first, so a window removed and written again is
        written); False (and everything kept for the next try) if Redis failed."""
        if not await self.flush_removals():
            return False
        staged = self.hashes or self.scores or self.completed
        if not (staged or self.partition_ms):
            return True
        hashes, scores = self.hashes, self.scores
        self.hashes, self.scores = {}, {}
        completed, self.completed = self.completed, set()
        partition_ms, self.partition_ms = self.partition_ms, {}
        staged_cells, self.staged = self.staged, {}
        pipe = self.client.pipeline(transaction=False)
        # One command per Redis key (a window's KPI for every key of a dimension), not one
        # per field; and many commands per call (``redis_batch``).
        commands: list[redis_batch.Command] = [
            ("hset", key, list(chain.from_iterable(mapping.items())))
            for key, mapping in _by_field(hashes).items()
        ]
        leaderboards: dict[str, list[EncodableT]] = {}
        unranked: dict[str, list[EncodableT]] = {}  # members whose value is now null
        for (key, member), score in scores.items():
            if score is None:
                unranked.setdefault(key, []).append(member)
            else:
                leaderboards.setdefault(key, []).extend((repr(score), member))
        commands.extend(("zadd", key, members) for key, members in leaderboards.items())
        commands.extend(("zrem", key, members) for key, members in unranked.items())
        await redis_batch.queue(pipe, self._script(), commands)  # queued: nothing sent yet
        if partition_ms:
            times = {partition_member(q): ms for q, ms in partition_ms.items()}
            times["global"] = max(partition_ms.values())
            pipe.zadd(f"{self.prefix}stream_time", times, gt=True)
        for partition in completed:  # after its values, in the same pipeline
            pipe.set(f"{self.prefix}complete:{partition}", 1)
        try:
            await pipe.execute()
        except RedisError as exc:  # keep the values for the next flush, newest first
            log.warning("Redis write failed (%s); retrying at the next flush", exc)
            self.hashes = {**hashes, **self.hashes}
            self.scores = {**scores, **self.scores}
            self.completed |= completed
            for q, cells in staged_cells.items():
                self.staged.setdefault(q, set()).update(cells)
            for q, ms in partition_ms.items():
                self.stream_time(ms, q)
            return False
        return True


def _grouped(pairs: Iterable[tuple[tuple[str, str], str]]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for group, field in pairs:
        out.setdefault(group, []).append(field)
    return out


def _by_field(
    values: Mapping[tuple[str, str], EncodableT],
) -> dict[str, dict[EncodableT, EncodableT]]:
    out: dict[str, dict[EncodableT, EncodableT]] = {}
    for (key, field), value in values.items():
        out.setdefault(key, {})[field] = value
    return out


async def read_revenue_day(
    client: aioredis.Redis, prefix: str, day: date, zone: ZoneInfo
) -> dict[str, Decimal]:
    """Revenue per rep of a business day, as published (the demo's ticker)."""
    start = int(datetime.combine(day, datetime.min.time(), zone).timestamp())
    raw = await client.hgetall(f"{prefix}kpi:revenue:day:{start}:rep")
    return {as_text(k): Decimal(orjson.loads(v)["value"]) for k, v in raw.items()}
