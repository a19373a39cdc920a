"""The worker's tables as faust keeps them (Faust glue): RocksDB stores with a changelog
topic each.

``FaustTables`` is the ``streams.engine.writeback.TableIO`` the worker's stages use:
- a read goes straight to the store, as ``table.get`` finds it (the same partition lookup,
  the same codec) without faust's mapping layers and their KeyError per miss (a twentieth of
  a replaying worker's samples in py-spy);
- ``write_all`` writes each partition's pending keys in the context of one of its events
  (faust writes a key on the partition of the event being processed; the flush has none,
  so it sets one of the events it is about to ack), straight to the stores, and hands back
  their changelog records (``Changelog``), which the flush sends and confirms before it
  acks. Nothing is acked before its writes are in Kafka, so a crash before the flush loses
  nothing: the events are redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import faust
import orjson
from faust.stores import rocksdb as faust_rocksdb
from faust.stores.base import SerializedStore
from faust.streams import _current_event
from faust.types import FutureMessage

from streams.codec import CODEC
from streams.engine.delivery import Sends
from streams.engine.faust.batch_send import send_to_partitions
from streams.engine.writeback import WriteBack, release, write_pending


class TrackedTable(faust.Table):
    """faust's table, whose changelog records are kept in ``sent`` for the flush to check."""

    sent: Sends | None = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        future: FutureMessage = super().send_changelog(*args, **kwargs)
        if self.sent is not None:
            self.sent.add(future)
        return future


def store_reader(table: Any) -> Callable[[str], Any]:
    """A function giving ``table``'s value of a key, or None: from its store when the store
    encodes (RocksDB), else through ``table.get`` (faust's in-memory store).

    A store of ``str`` keys and plain values in our codec (``streams.codec``: every table of
    the worker) is read with orjson directly: the same bytes as faust's serializer registry
    makes and reads, without its layers, the codec's copy of a key kept for nothing, and
    the ``KeyError`` faust raises and catches per value looking for a model's namespace
    (values here are plain JSON, never a faust model)."""
    plain: SerializedStore | None = None  # the store, once known to be one of plain JSON

    def read(key: str) -> Any:
        nonlocal plain
        if plain is None:
            store = getattr(table, "data", None)
            if not isinstance(store, SerializedStore):
                return table.get(key)
            if not _plain_json(store):
                raw = store._get(store._encode_key(key))
                return None if raw is None else store._decode_value(raw)
            plain = store
        raw = plain._get(orjson.dumps(key))
        return None if raw is None else orjson.loads(raw)

    return read


def _plain_json(store: SerializedStore) -> bool:
    """Whether ``store`` keeps ``str`` keys and untyped values in our orjson codec."""
    return (
        store.key_type is str
        and store.value_type is None
        and store.key_serializer == CODEC
        and store.value_serializer == CODEC
    )


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


@contextlib.contextmanager
def _in_event(event: Any) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def write_all(tables: Iterable[WriteBack], events: Iterable[Any]) -> Changelog:
    """Write the pending keys of each partition in the context of one of its events, to
    the tables' stores; their changelog records are returned, for the flush to send
    (``Changelog.send``) then, once they are in Kafka, to record as persisted."""
    tables = list(tables)
    changelog = Changelog(tables)
    write_pending(tables, events, changelog.write, _in_event)
    return changelog


class FaustTables:
    """``TableIO`` of faust tables (``streams.engine.writeback``)."""

    def reader(self, table: Any) -> Callable[[str], Any]:
        return store_reader(table)

    def outside_events(self) -> contextlib.AbstractContextManager[None]:
        return outside_events()

    def write_all(self, tables: Iterable[WriteBack], events: Iterable[Any]) -> Changelog:
        return write_all(tables, events)

    def keys(self, table: Any, partition: int, prefixes: tuple[str, ...]) -> list[str]:
        """The keys of ``partition``'s store starting with one of ``prefixes`` (a seek to
        each: ``prefixed_keys``); a table on another store (``memory://``, for tests) is
        scanned whole."""
        store = getattr(table, "data", None)
        dbs = getattr(store, "_dbs", None)
        if dbs is None or not isinstance(store, SerializedStore) or not _plain_json(store):
            return [key for key in list(table.keys()) if key.startswith(prefixes)]
        db = dbs.get(partition)
        if db is None:
            return []
        return [key for prefix in prefixes for key in prefixed_keys(db, prefix)]


def prefixed_keys(db: Any, prefix: str) -> list[str]:
    """The ``str`` keys of a store of our JSON codec starting with ``prefix``, in key order,
    read from a seek to it: the store keeps a key as its JSON text, so the encoded prefix,
    less its closing quote, starts exactly those keys (and a prefix ending in a separator
    never matches a longer field: ``minute|10|`` is not a start of ``minute|100|``)."""
    start = orjson.dumps(prefix)[:-1]
    out: list[str] = []
    it = db.iter()
    it.seek(start)
    while it.valid():
        raw = it.key()
        if not raw.startswith(start):
            break
        out.append(orjson.loads(raw))
        it.next()
    return out


KEYS_PER_WRITE = 1_000
"""Keys per RocksDB write batch at ``persist``: what a batch copies stays small."""


class Changelog:
    """A flush's table writes: their changelog records sent straight to the producer, as
    one batch, then, once confirmed, written to the stores.

    faust sends a changelog record per table write through a ``FutureMessage``, its
    producer buffer and a task that hands them one by one to aiokafka, and records each
    record's offset as persisted (a RocksDB write) when it is acknowledged: with a few
    records per event, that path was a fifth of the worker's CPU (py-spy). Here each key
    is encoded once, for its store and its record alike (the bytes faust writes to both),
    the records go to aiokafka as one batch per table partition
    (``streams.engine.faust.batch_send.send_to_partitions``), and once the flush has
    confirmed them, each table partition's store gets them, then its persisted offset
    (``persist``). Until 2026-12-06 the stores were written first: a
    worker killed before its records reached Kafka kept values in RocksDB that its
    changelog never had, so a worker restoring the partition later (a rebalance, a lost
    disk) missed them.

    A table whose store does not encode (faust's in-memory store) is written through
    faust, as before.
    """

    def __init__(self, writebacks: list[WriteBack]) -> None:
        self.writebacks = writebacks  # their ``flushing`` released at ``persist``
        self.records: list[tuple[Any, int, bytes, bytes | None]] = []
        self.sent: list[tuple[Any, int, asyncio.Future[Any], int]] = []

    def write(self, table: Any, partition: int, key: str, value: Any) -> None:
        """Keep the changelog record of ``key`` (None: delete it) in ``partition``; its store
        gets it at ``persist``, once the record is in Kafka. A table whose store does not
        encode (faust's in-memory store) is written through faust at once."""
        store = getattr(table, "data", None)
        if not isinstance(store, SerializedStore):
            if value is None:
                del table[key]
            else:
                table[key] = value
            return
        encoded = None if value is None else store._encode_value(value)
        self.records.append((table, partition, store._encode_key(key), encoded))

    async def send(self, sends: Any) -> None:
        """Send the records, one aiokafka batch per table partition; the batches' futures
        kept by ``sends`` (the flush confirms them)."""
        if self.records:
            await sends.send_all(self._send())

    async def _send(self) -> list[asyncio.Future[Any]]:
        tables: dict[tuple[str, int], Any] = {}
        topics: dict[int, str] = {}  # table -> its changelog topic, looked up once per flush
        records: list[tuple[str, int, bytes, bytes | None]] = []
        for table, partition, key, value in self.records:
            topic = topics.get(id(table))
            if topic is None:
                topic = topics[id(table)] = table.changelog_topic.get_topic_name()
            tables[(topic, partition)] = table
            records.append((topic, partition, key, value))
        app = self.records[0][0].app
        batches = await send_to_partitions(app, records)
        for topic, partition, future, count in batches:
            self.sent.append((tables[(topic, partition)], partition, future, count))
        return [future for _, _, future, _ in batches]

    def persist(self) -> None:
        """Once the flush confirmed the records: each table partition's store gets its
        writes (RocksDB write batches of ``KEYS_PER_WRITE`` keys), then its persisted offset
        (where faust resumes reading the changelog when it restores the table: the last
        record's, a batch's first offset plus its records but one). A store is never ahead
        of its changelog: killed before this, the next start restores what reached Kafka on
        top of the last flush's store (the messages are redelivered, and the offset marks
        make them count once); killed during it, the store holds part of what Kafka has,
        and the restore reads the rest again from the persisted offset. A table partition
        whose records did not all reach Kafka is left as it was (and its writes stay in the
        write-backs' ``flushing``); the others are released from it (``release``)."""
        confirmed: dict[tuple[Any, int], bool] = {}
        latest: dict[tuple[Any, int], int] = {}
        for table, partition, future, count in self.sent:
            ok = future.done() and not future.cancelled() and future.exception() is None
            confirmed[(table, partition)] = confirmed.get((table, partition), True) and ok
            if ok:
                offset = future.result().offset + count - 1
                latest[(table, partition)] = max(offset, latest.get((table, partition), -1))
        writes: dict[tuple[Any, int], list[tuple[bytes, bytes | None]]] = {}
        for table, partition, key, value in self.records:
            writes.setdefault((table, partition), []).append((key, value))
        for (table, partition), pairs in writes.items():
            if not confirmed.get((table, partition)):
                continue  # the restore brings what of it reached Kafka
            store = table.data
            db = store._db_for_partition(partition)
            for start in range(0, len(pairs), KEYS_PER_WRITE):
                batch = _write_batch(store)
                for key, value in pairs[start : start + KEYS_PER_WRITE]:
                    if value is None:
                        batch.delete(key)
                    else:
                        batch.put(key, value)
                        store._key_index[key] = partition  # as faust's own write: reads find it
                db.write(batch)
            db.put(store.offset_key, str(latest[(table, partition)]).encode())
        kept = {pair for pair, ok in confirmed.items() if not ok}
        self.records.clear()
        self.sent.clear()
        release(self.writebacks, kept)


def _write_batch(store: Any) -> Any:
    """An empty RocksDB write batch of ``store``'s binding (faust's choice: rocksdict, or
    python-rocksdb), taking bytes as faust writes them."""
    if store.use_rocksdict:
        return faust_rocksdb.rocksdict.WriteBatch(raw_mode=True)
    return faust_rocksdb.rocksdb.WriteBatch()
