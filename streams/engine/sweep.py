"""Expired keys of a RocksDB-backed table removed a few at a time (the seen event ids, the
entity stage's partial cells).

A stage looks its keys up by id, never by age, so nothing points at the old ones: a sweep
walks each partition's RocksDB store in key order, ``budget`` keys per step from where the
last step stopped, and deletes (through the stage's ``WriteBack``, so the deletions reach
the changelog with the flush, like any write) the keys whose value ``expired`` says so. A
pass over a partition starts again only once its event time has moved on by ``repass_ms``
(a day) since the last pass started: an idle floor expires nothing and is not swept, and a
replay racing through months of event time sweeps ``budget`` keys per flush, no more.

Reads go to the store itself (faust's ``Store._dbs``: one RocksDB per partition), not to
the table's mapping API, which walks every partition and decodes every value at once. A
table on another store (``memory://``, for tests) is not swept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.engine.writeback import WriteBack

log = logging.getLogger(__name__)

OFFSET_KEY = b"__faust\0offset__"  # faust keeps a partition's changelog offset in its store


@dataclass
class _Pass:
    cursor: bytes | None = None  # the last key read; None: the pass starts at the first
    started_at: int | None = None  # event time (ms) when the pass started
    done_at: int | None = None  # event time the last completed pass started at


@dataclass
class Sweep:
    """Deletes the keys of ``writeback``'s table for which ``expired(key, value, now_ms)``;
    ``on_expired(partition, key, value)`` is called for each first (what else must go with it
    is written in the same flush)."""

    writeback: WriteBack
    expired: Callable[[str, Any, int], bool]
    on_expired: Callable[[int, str, Any], None] | None = None
    budget: int = 500
    repass_ms: int = 86_400_000
    passes: dict[int, _Pass] = field(default_factory=dict)
    warned: bool = False

    def _db(self, partition: int) -> Any:
        dbs = getattr(getattr(self.writeback.table, "data", None), "_dbs", None)
        if dbs is None:
            if not self.warned:
                log.warning("not a RocksDB store: expired keys of %s are kept", self.writeback)
                self.warned = True
            return None
        return dbs.get(partition)

    def step(self, partition: int, now_ms: int | None) -> int:
        """One step of the partition's pass at event time ``now_ms``: the keys deleted."""
        if now_ms is None:
            return 0
        state = self.passes.setdefault(partition, _Pass())
        if state.started_at is None:
            if state.done_at is not None and now_ms < state.done_at + self.repass_ms:
                return 0  # event time has hardly moved since the last pass
            state.started_at, state.cursor = now_ms, None
        db = self._db(partition)
        if db is None:
            return 0
        it = db.iter()
        if state.cursor is None:
            it.seek_to_first()
        else:
            it.seek(state.cursor)
            if it.valid() and it.key() == state.cursor:
                it.next()
        deleted = read = 0
        pending = self.writeback.dirty.get(partition, {})  # this flush's writes
        while it.valid() and read < self.budget:
            raw_key, raw_value = it.key(), it.value()
            state.cursor = raw_key
            read += 1
            it.next()
            if raw_key == OFFSET_KEY:
                continue
            key = orjson.loads(raw_key)
            # a write of this flush is the latest value; else the store's (written through)
            value = pending[key] if key in pending else orjson.loads(raw_value)
            if value is not None and self.expired(key, value, now_ms):
                if self.on_expired is not None:
                    self.on_expired(partition, key, value)
                self.writeback.delete(partition, key)
                deleted += 1
        if not it.valid():
            state.done_at, state.started_at, state.cursor = state.started_at, None, None
        return deleted

    def forget(self, partitions: set[int]) -> None:
        """A rebalance took ``partitions``: their next owner sweeps them."""
        for partition in partitions:
            self.passes.pop(partition, None)
