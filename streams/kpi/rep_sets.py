"""Active reps of a global, team or region cell, kept as shards of a bounded size (pure).

``revenue_per_rep`` divides by the distinct reps with an event in the window and dimension key.
Kept as one exact set ``{"reps": {rep: n}}`` in the cell itself, a cell of 100,000 reps weighed
7.5 MB in every message, table record and changelog record that carried it, past Kafka's 1 MB:
the worker crashed near 13,000 active reps per entity partition (docs/engine.md).

So the set is split over ``SHARDS`` *shard cells* by a hash of the rep id: the shard of
``kind|start|team|Nord`` holding rep ``r`` is ``kind|start|team#reps|Nord#<shard of r>``. A rep is
always in the same shard, so shards add up across entity partitions like any cell, and the
distinct count of the whole is the sum of the shards' counts. Shards travel with their parent:
the same ``internal.cells`` key (``routing_target``), so the publisher partition that owns a
cell owns its shards and keeps the parent's count (component ``nrep``) from them. Shards are
never published as KPIs; minute shards go to Redis for the API's rolling windows (distinct reps
over many minutes cannot be a sum of per-minute counts).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from streams.kpi.cells import Component, members_of

SHARDS = 64
"""Shards per cell: at 100,000 active reps, ~1,600 reps (~25 KB) a shard. Never changed on a
running deployment: a rep's shard must stay where its earlier events put it."""

DIMENSIONS = ("global", "team", "region")
"""The dimensions whose cells count active reps (those ``revenue_per_rep`` is reported for)."""

MARK = "#reps"  # suffix of a shard's dimension
COUNT = "nrep"  # the parent cell's component: its distinct active reps (publisher-side)
MEMBERS = "reps"  # a shard's component: {rep: events}


def shard_of(rep: str) -> int:
    """The shard of ``rep``: the same on every worker, forever (CRC-32)."""
    return zlib.crc32(rep.encode()) % SHARDS


def shard_pair(dim: str, key: str, rep: str) -> list[str]:
    """The ``[dimension, key]`` of the shard of ``(dim, key)`` that holds ``rep``."""
    return [f"{dim}{MARK}", f"{key}#{shard_of(rep)}"]


def is_shard(dim: str) -> bool:
    return dim.endswith(MARK)


def parent_of(dim: str, key: str) -> tuple[str, str]:
    """The ``(dimension, key)`` a cell is published under: its own, or its parent's."""
    if not is_shard(dim):
        return dim, key
    return dim[: -len(MARK)], key.rpartition("#")[0]


def routing_target(dim: str, key: str) -> str:
    """The ``internal.cells`` key of a cell: ``dim|key`` of its parent."""
    parent_dim, parent_key = parent_of(dim, key)
    return f"{parent_dim}|{parent_key}"


def active(cell: Mapping[str, Component]) -> int:
    """The distinct reps of a merged shard (a rep whose events were all retracted is out)."""
    return sum(1 for n in members_of(cell, MEMBERS).values() if n > 0)


def presence(cell: Mapping[str, Component]) -> dict[str, Component]:
    """What the publisher needs of a shard: its reps with an event, each as 1 (their event
    counts are the entity stage's, to retract them; the distinct count reads only this)."""
    reps = members_of(cell, MEMBERS)
    present = {rep: 1 for rep, n in reps.items() if n > 0}
    return {MEMBERS: present} if present else {}


def presence_moved(
    before: Mapping[str, Component], after: Mapping[str, Component], delta: Mapping[str, Component]
) -> bool:
    """Whether adding ``delta`` to a shard (``before`` -> ``after``) put a rep in or out:
    only then does its ``presence`` change (the reps ``delta`` names are the only ones that
    can have moved)."""
    old, new, moved = (_members(cell) for cell in (before, after, delta))
    return any((old.get(rep, 0) > 0) != (new.get(rep, 0) > 0) for rep in moved)


def _members(cell: Mapping[str, Component]) -> Mapping[str, int]:
    value = cell.get(MEMBERS)
    return value if isinstance(value, dict) else {}


def distinct_reps(cell: Mapping[str, Component]) -> int:
    """The active reps of a merged cell: its own set if it has one, else its count."""
    if MEMBERS in cell:
        return active(cell)
    value = cell.get(COUNT, 0)
    return value if isinstance(value, int) else 0
