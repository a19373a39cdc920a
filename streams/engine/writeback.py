"""Table writes held in memory until the flush, so that a cell touched by a thousand events
between two flushes is written (and sent to its changelog) once.

A stage reads and writes its tables through a :class:`WriteBack` each (or a
:class:`Deferred`); at its flush, ``TableIO.write_all`` writes each partition's pending keys
to the tables and gives back what must reach Kafka before the stage acks (their changelog
records). How a table is read and written is the ``TableIO``'s: faust's RocksDB-backed
tables in the worker (``streams.engine.faust.tables.FaustTables``), plain mappings in the
in-memory harness and the unit tests (:class:`PlainTables`). Nothing here imports faust.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

_MISSING = object()


class Written(Protocol):
    """A flush's table writes, made: what must reach Kafka before its messages are acked."""

    async def send(self, sends: Any) -> None:
        """Send the writes' changelog records; their futures kept by ``sends``."""

    def persist(self) -> None:
        """Once ``sends`` confirmed them: record them as persisted, the tables written, and
        ``release`` the write-backs' ``flushing``."""


class TableIO(Protocol):
    """How a stage's tables are read and written."""

    def reader(self, table: Any) -> Callable[[str], Any]:
        """A function giving ``table``'s value of a key, or None."""

    def outside_events(self) -> contextlib.AbstractContextManager[None]:
        """A block whose reads find the keys of every partition (a flush's)."""

    def write_all(self, tables: Iterable[WriteBack], events: Iterable[Any]) -> Written:
        """Each partition's pending keys of ``tables`` written, with one of its ``events``
        (those the flush acks: a partition's keys are written in its event's context)."""

    def keys(self, table: Any, partition: int, prefixes: tuple[str, ...]) -> list[str]:
        """The keys of ``table`` starting with one of ``prefixes`` as its store has them
        (pending writes left out): ``partition``'s, or, for a table not kept per partition,
        every partition's (the caller tells them apart by value)."""


class WriteBack:
    """A table's pending writes, by partition; reads see them before the table.

    With ``cache_size``, the values last read or written (misses too) are kept in a bounded
    LRU cache, so a hot key is not read back from RocksDB and decoded for every event. Only
    this worker writes its partitions, through ``write_all``, which updates the cache; a
    revoked partition's entries are dropped (``abandon``), as its next owner may write it.
    ``read`` reads the table (``TableIO.reader``; ``table.get`` by default).

    ``flushing`` holds the last flush's writes until the tables have them (``release``), and
    reads see them before the cache and the table: the worker's stores get a flush's writes
    only once Kafka has their changelog
    records (``streams.engine.faust.tables.Changelog.persist``), and a read meanwhile (a
    ``/metrics`` scrape while the flush awaits the broker) of a key the cache no longer held
    (a flush writing more keys than the cache keeps) found the table's old value and
    cached it: every later read got that old value, and the next write of the key wrote it
    back over the flush's (a kill -9 test run lost partials so).
    """

    def __init__(
        self, table: Any, cache_size: int = 0, read: Callable[[str], Any] | None = None
    ) -> None:
        self.table = table
        self.read: Callable[[str], Any] = table.get if read is None else read
        self.dirty: dict[int, dict[str, Any]] = {}
        self.flushing: dict[int, dict[str, Any]] = {}  # partition -> writes not persisted yet
        self.cache_size = cache_size
        self.cache: OrderedDict[str, tuple[int, Any]] = OrderedDict()  # key -> (partition, value)
        # While one message is applied (``all_or_nothing``): the pending writes it replaced.
        self.journal: list[tuple[int, str, Any]] | None = None

    def get(self, partition: int, key: str) -> Any:
        for writes in (self.dirty.get(partition), self.flushing.get(partition)):
            if writes is not None and key in writes:
                return writes[key]
        return self.stored(partition, key)

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
        pending = {
            k: v for layer in (self.flushing, self.dirty) for writes in layer.values()
            for k, v in writes.items()
        }  # fmt: skip
        for key, value in self.table.items():
            if key not in pending:
                yield key, value
        yield from ((k, v) for k, v in pending.items() if v is not None)


def write_pending(
    tables: Iterable[WriteBack],
    events: Iterable[Any],
    write: Callable[[Any, int, str, Any], None],
    in_event: Callable[[Any], contextlib.AbstractContextManager[Any]],
) -> None:
    """Each partition's pending keys of ``tables`` handed to ``write`` (table, partition,
    key, value: None deletes it) inside ``in_event`` of one of its ``events``; a delete of
    an absent key is skipped. ``RuntimeError`` if a partition has writes and no event."""
    by_partition = {event.message.partition: event for event in events}
    tables = list(tables)
    for writeback in tables:
        writeback.flushing = {}  # the flush before was over before this one began
    for partition, event in by_partition.items():
        with in_event(event):
            for writeback in tables:
                writes = writeback.dirty.pop(partition, {})
                for key, value in writes.items():
                    if value is None and writeback.read(key) is None:
                        pass  # nothing to delete
                    else:
                        write(writeback.table, partition, key, value)
                    writeback._remember(partition, key, value)
                if writes:
                    writeback.flushing[partition] = writes  # read first until ``release``
    leftovers = [p for writeback in tables for p in writeback.dirty]
    if leftovers:
        raise RuntimeError(f"pending table writes without an event to write them: {leftovers}")


def release(tables: Iterable[WriteBack], kept: Iterable[tuple[Any, int]] = ()) -> None:
    """A flush's writes are in the tables (``Written.persist``): ``flushing`` lets them go,
    and reads find them in the cache or the tables, but for the (table, partition) pairs of
    ``kept``, whose table did not get them (their changelog records did not all reach
    Kafka: the worker stops, and they are read from ``flushing`` until then)."""
    kept_ids = {(id(table), partition) for table, partition in kept}  # tables: by identity
    for writeback in tables:
        for partition in list(writeback.flushing):
            if (id(writeback.table), partition) not in kept_ids:
                del writeback.flushing[partition]


class _WrittenInPlace:
    """The writes of ``PlainTables``: in the tables already, no changelog."""

    def __init__(self, tables: list[WriteBack]) -> None:
        self.tables = tables

    async def send(self, sends: Any) -> None:
        return None

    def persist(self) -> None:
        release(self.tables)


def _write_in_place(table: Any, partition: int, key: str, value: Any) -> None:
    if value is None:
        del table[key]
    else:
        table[key] = value


class PlainTables:
    """Tables that are mappings (the in-memory harness's dicts, unit tests): read with
    ``get``, written in place, no changelog."""

    def reader(self, table: Any) -> Callable[[str], Any]:
        return table.get

    def outside_events(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def write_all(self, tables: Iterable[WriteBack], events: Iterable[Any]) -> Written:
        tables = list(tables)
        write_pending(tables, events, _write_in_place, lambda event: contextlib.nullcontext())
        return _WrittenInPlace(tables)

    def keys(self, table: Any, partition: int, prefixes: tuple[str, ...]) -> list[str]:
        return [key for key in table if key.startswith(prefixes)]  # one pass for them all


PLAIN_TABLES = PlainTables()


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
            writeback.flushing.pop(partition, None)
        writeback.forget(partitions)
    return [(s, e) for s, e in pending if e.message.partition not in partitions]


class Deferred:
    """A table read and written as a mapping whose writes wait in a :class:`WriteBack` until
    ``write_all``, for a stage whose keys each live in one partition (``partition`` is set
    to the current event's before it reads or writes): reads see the pending writes first,
    then a bounded cache (``cache_size``), then the table."""

    def __init__(
        self, table: Any, cache_size: int = 0, read: Callable[[str], Any] | None = None
    ) -> None:
        self.writeback = WriteBack(table, cache_size, read)
        self.partition = 0

    def get(self, key: str) -> Any:
        for layer in (self.writeback.dirty, self.writeback.flushing):
            for writes in layer.values():
                if key in writes:
                    return writes[key]
        return self.writeback.stored(self.partition, key)

    def persisted(self, key: str) -> Any:
        """``key``'s value as the last flushes wrote it (being written, or in the table),
        leaving out the writes pending since: None for a key first written after them."""
        for writes in self.writeback.flushing.values():
            if key in writes:
                return writes[key]
        return self.writeback.stored(self.partition, key)

    def unflushed(self, key: str) -> bool:
        """Whether ``key`` was written since the last flush began (a pending write)."""
        return key in self.writeback.dirty.get(self.partition, {})

    def undelete(self, partition: int, key: str, value: Any) -> bool:
        """Write ``value`` instead of ``key``'s pending deletion, if one is pending (a
        rolled-back message may have undone it); whether it was."""
        pending = self.writeback.dirty.get(partition, {})
        if key not in pending or pending[key] is not None:
            return False
        pending[key] = value
        return True

    def __setitem__(self, key: str, value: Any) -> None:
        self.writeback.set(self.partition, key, value)

    def __delitem__(self, key: str) -> None:
        self.writeback.delete(self.partition, key)

    def items(self) -> Iterable[tuple[str, Any]]:
        return self.writeback.items()

    def keys_with(self, table_io: TableIO, partition: int, prefixes: tuple[str, ...]) -> set[str]:
        """The keys starting with one of ``prefixes`` that ``partition`` has, pending writes
        included (a deletion pending leaves its key in: ``get`` says None); one pass over
        the pending writes, whatever the number of prefixes."""
        keys = set(table_io.keys(self.writeback.table, partition, prefixes))
        for layer in (self.writeback.flushing, self.writeback.dirty):
            keys.update(key for key in layer.get(partition, ()) if key.startswith(prefixes))
        return keys
