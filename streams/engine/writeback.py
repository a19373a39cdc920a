"""Table writes held in memory until the flush, so that a cell touched by a thousand events
between two flushes is written (and sent to its changelog) once.

Faust writes a table key on the partition of the event being processed; the flush has no
such event, so it sets, for each partition, one of the (not yet acked) events it is about to
ack as the current event while it writes that partition's keys. Nothing is acked before its
writes are in Kafka, so a crash before the flush loses nothing: the events are redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from faust.stores.base import SerializedStore
from faust.streams import _current_event
from faust.types import TP

from streams.engine.faust.batch_send import send_to_partitions

_MISSING = object()


class WriteBack:
    """A table's pending writes, by partition; reads see them before the table.

    With ``cache_size``, the values last read or written (misses too) are kept in a bounded
    LRU cache, so a hot key is not read back from RocksDB and decoded for every event. Only
    this worker writes its partitions, through ``write_all``, which updates the cache; a
    revoked partition's entries are dropped (``abandon``), as its next owner may write it.
    """

    def __init__(self, table: Any, cache_size: int = 0) -> None:
        self.table = table
        self.dirty: dict[int, dict[str, Any]] = {}
        self.cache_size = cache_size
        self.cache: OrderedDict[str, tuple[int, Any]] = OrderedDict()  # key -> (partition, value)
        # While one message is applied (``all_or_nothing``): the pending writes it replaced.
        self.journal: list[tuple[int, str, Any]] | None = None

    def get(self, partition: int, key: str) -> Any:
        pending = self.dirty.get(partition)
        if pending is not None and key in pending:
            return pending[key]
        return self.stored(partition, key)

    def read(self, key: str) -> Any:
        """The table's value of ``key``, or None: straight from its store when the store
        encodes (RocksDB), as ``table.get`` finds it (the same partition lookup, the same
        codec) without faust's mapping layers and their KeyError per miss (a twentieth of
        a replaying worker's samples in py-spy)."""
        store = getattr(self.table, "data", None)
        if not isinstance(store, SerializedStore):
            return self.table.get(key)
        raw = store._get(store._encode_key(key))
        return None if raw is None else store._decode_value(raw)

    def stored(self, partition: int, key: str) -> Any:
        """The table's value of ``key`` (of ``partition``), from the cache when it is there."""
        if not self.cache_size:
            return self.read(key)
        cached = self.cache.get(key, _MISSING)
        if cached is _MISSING:
            value = self.read(key)
            self._remember(partition, key, value)
            return value
        self.cache.move_to_end(key)
        return cached[1]  # type: ignore[index]

    def _remember(self, partition: int, key: str, value: Any) -> None:
        if self.cache_size:
            self.cache[key] = (partition, value)
            self.cache.move_to_end(key)
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)

    def forget(self, partitions: set[int]) -> None:
        for key in [k for k, (p, _) in self.cache.items() if p in partitions]:
            del self.cache[key]

    def set(self, partition: int, key: str, value: Any) -> None:
        pending = self.dirty.setdefault(partition, {})
        if self.journal is not None:
            self.journal.append((partition, key, pending.get(key, _MISSING)))
        pending[key] = value

    def delete(self, partition: int, key: str) -> None:
        self.set(partition, key, None)

    def rollback(self) -> None:
        """Undo the writes made since the journal was opened (``all_or_nothing``)."""
        for partition, key, before in reversed(self.journal or []):
            pending = self.dirty[partition]
            if before is _MISSING:
                del pending[key]
            else:
                pending[key] = before
            if not pending:
                del self.dirty[partition]
        self.journal = None

    def items(self) -> Iterable[tuple[str, Any]]:
        """Every key of the table with its latest value (pending writes included)."""
        pending = {k: v for writes in self.dirty.values() for k, v in writes.items()}
        for key, value in self.table.items():
            if key not in pending:
                yield key, value
        yield from ((k, v) for k, v in pending.items() if v is not None)


@contextlib.contextmanager
def outside_events() -> Iterator[None]:
    """Table reads outside the current event's partition: faust reads a key only in the
    store of the event being processed, when there is one, so a flush run from an agent
    (its buffer full) read the keys of every other partition as absent (a publisher read
    its other partition's stream time as unknown and published target pacing as null).
    Without an event, faust looks for the key in every partition's store."""
    token = _current_event.set(None)
    try:
        yield
    finally:
        _current_event.reset(token)


def write_all(tables: Iterable[WriteBack], events: Iterable[Any]) -> Changelog:
    """Write the pending keys of each partition in the context of one of its events, to
    the tables' stores; their changelog records are returned, for the flush to send
    (``Changelog.send``) then, once they are in Kafka, to record as persisted."""
    by_partition = {event.message.partition: event for event in events}
    tables = list(tables)
    changelog = Changelog()
    for partition, event in by_partition.items():
        token = _current_event.set(weakref.ref(event))
        try:
            for writeback in tables:
                for key, value in writeback.dirty.pop(partition, {}).items():
                    if value is None and writeback.read(key) is None:
                        pass  # nothing to delete
                    else:
                        changelog.write(writeback.table, partition, key, value)
                    writeback._remember(partition, key, value)
        finally:
            _current_event.reset(token)
    leftovers = [p for writeback in tables for p in writeback.dirty]
    if leftovers:
        raise RuntimeError(f"pending table writes without an event to write them: {leftovers}")
    return changelog


class Changelog:
    """Table writes made straight to the stores, their changelog records sent straight to
    the producer, as one batch.

    faust sends a changelog record per table write through a ``FutureMessage``, its
    producer buffer and a task that hands them one by one to aiokafka, and records each
    record's offset as persisted (a RocksDB write) when it is acknowledged: with a few
    records per event, that path was a fifth of the worker's CPU (py-spy). Here each key
    is encoded once, for its store and its record alike (the bytes faust writes to both),
    the records go to aiokafka as one batch per table partition
    (``streams.engine.faust.batch_send.send_to_partitions``), and once the flush has
    confirmed them, each table partition's persisted offset is written once: its last
    record's (``persist``). A
    crash in between leaves the persisted offsets behind what the stores hold: faust then
    reads the changelog again from there, which writes the same values again.

    A table whose store does not encode (faust's in-memory store) is written through
    faust, as before.
    """

    def __init__(self) -> None:
        self.records: list[tuple[Any, int, bytes, bytes | None]] = []
        self.sent: list[tuple[Any, int, asyncio.Future[Any], int]] = []

    def write(self, table: Any, partition: int, key: str, value: Any) -> None:
        """Write ``key`` (None: delete it) to ``table``'s store, in the current event's
        partition (``partition``), and keep its changelog record."""
        store = getattr(table, "data", None)
        if not isinstance(store, SerializedStore):
            if value is None:
                del table[key]
            else:
                table[key] = value
            return
        encoded_key = store._encode_key(key)
        if value is None:
            store._del(encoded_key)
            encoded = None
        else:
            encoded = store._encode_value(value)
            store._set(encoded_key, encoded)
        self.records.append((table, partition, encoded_key, encoded))

    async def send(self, sends: Any) -> None:
        """Send the records, one aiokafka batch per table partition; the batches' futures
        kept by ``sends`` (the flush confirms them)."""
        if self.records:
            await sends.send_all(self._send())

    async def _send(self) -> list[asyncio.Future[Any]]:
        tables: dict[tuple[str, int], Any] = {}
        records: list[tuple[str, int, bytes, bytes | None]] = []
        for table, partition, key, value in self.records:
            topic = table.changelog_topic.get_topic_name()
            tables[(topic, partition)] = table
            records.append((topic, partition, key, value))
        app = self.records[0][0].app
        batches = await send_to_partitions(app, records)
        for topic, partition, future, count in batches:
            self.sent.append((tables[(topic, partition)], partition, future, count))
        return [future for _, _, future, _ in batches]

    def persist(self) -> None:
        """Once the flush confirmed every record: each table partition's persisted offset
        (where faust resumes reading its changelog when it restores the table): the last
        record's, the batch's first offset plus its records but one."""
        latest: dict[tuple[Any, int], int] = {}
        for table, partition, future, count in self.sent:
            if future.done() and not future.cancelled() and future.exception() is None:
                offset = future.result().offset + count - 1
                if offset > latest.get((table, partition), -1):
                    latest[(table, partition)] = offset
        for (table, partition), offset in latest.items():
            topic = table.changelog_topic.get_topic_name()
            table.data.set_persisted_offset(TP(topic, partition), offset)
        self.sent.clear()


@contextlib.contextmanager
def all_or_nothing(tables: Iterable[WriteBack]) -> Iterator[None]:
    """The writes made to ``tables`` inside the block stay pending only if it ends normally:
    a message a stage fails to apply leaves no half of its effects behind (its seen id
    above all, or a copy sent again after the fix would count as a duplicate)."""
    tables = list(tables)
    for writeback in tables:
        writeback.journal = []
    try:
        yield
    except BaseException:
        for writeback in tables:
            writeback.rollback()
        raise
    for writeback in tables:
        writeback.journal = None


def abandon(
    tables: Iterable[WriteBack], pending: list[tuple[Any, Any]], partitions: set[int]
) -> list[tuple[Any, Any]]:
    """A rebalance took ``partitions``: their pending writes are dropped, and ``pending``
    (stream, event) is returned without their events, which their next owner reads again."""
    for writeback in tables:
        for partition in partitions:
            writeback.dirty.pop(partition, None)
        writeback.forget(partitions)
    return [(s, e) for s, e in pending if e.message.partition not in partitions]


class Deferred:
    """A table read and written as a mapping whose writes wait in a :class:`WriteBack` until
    ``write_all``, for a stage whose keys each live in one partition (``partition`` is set
    to the current event's before it reads or writes): reads see the pending writes first,
    then a bounded cache (``cache_size``), then the table."""

    def __init__(self, table: Any, cache_size: int = 0) -> None:
        self.writeback = WriteBack(table, cache_size)
        self.partition = 0

    def get(self, key: str) -> Any:
        for writes in self.writeback.dirty.values():
            if key in writes:
                return writes[key]
        return self.writeback.stored(self.partition, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.writeback.set(self.partition, key, value)

    def __delitem__(self, key: str) -> None:
        self.writeback.delete(self.partition, key)

    def items(self) -> Iterable[tuple[str, Any]]:
        return self.writeback.items()
