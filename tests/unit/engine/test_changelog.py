"""Table writes made in one batch per flush: stores and changelog records as faust's own.

``write_all`` hands a table's changelog records to the producer in one loop; once the
flush has confirmed them, each table partition's store gets them with its persisted offset
in one write batch (never before: a store is never ahead of its changelog). Checked on a real faust table and
RocksDB store (no broker: the producer is a stand-in that records what it is given): the
bytes are the ones faust's own changelog path makes, the store holds the values, deletes
are tombstones, and the persisted offset is the largest confirmed one.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.streams import _current_event
from faust.types import TP

from streams.codec import register_codec
from streams.engine.faust.tables import store_reader, write_all
from streams.engine.writeback import WriteBack


class Batch:
    """An aiokafka batch's stand-in: holds ``capacity`` records, then is full."""

    def __init__(self, capacity: int) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []
        self.capacity = capacity

    def append(self, *, key: bytes, value: bytes | None, timestamp: Any) -> Any:
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()


class RecordingProducer:
    """faust's producer and its aiokafka producer in one: batches succeed at increasing
    offsets per (topic, partition), those holding a key of ``fail_keys`` fail."""

    def __init__(self, fail_keys: set[bytes] = frozenset(), capacity: int = 1000) -> None:  # type: ignore[assignment]
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []
        self.batches: list[int] = []  # records per batch sent
        self.fail_keys = fail_keys
        self.capacity = capacity

    def _ensure_producer(self) -> RecordingProducer:
        return self

    def create_batch(self) -> Batch:
        return Batch(self.capacity)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        base = sum(1 for t, _, _, p in self.sent if (t, p) == (topic, partition))
        self.sent += [(topic, key, value, partition) for key, value in batch.records]
        self.batches.append(len(batch.records))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if any(key in self.fail_keys for key, _ in batch.records):
            future.set_exception(RuntimeError("not acknowledged"))
        else:
            future.set_result(SimpleNamespace(offset=100 + base))
        return future


class Sends:
    def __init__(self) -> None:
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, sending: Any) -> None:
        self.futures.append(await sending)

    async def send_all(self, sending: Any) -> None:
        self.futures.extend(await sending)


class Event:
    """What faust's store reads of the current event: its message's partition."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


def event_of(partition: int) -> Any:
    return Event(partition)


@pytest.fixture
def table(tmp_path: Path) -> Any:
    app = faust.App("changelog-test", broker="kafka://127.0.0.1:1", store="rocksdb://",
                    datadir=str(tmp_path))  # fmt: skip
    created: Any = app.Table("cells", default=None, key_type=str)
    codec = register_codec()
    created.key_serializer = created.value_serializer = codec
    return created


def stored(table: Any, partition: int, key: str) -> Any:
    event = event_of(partition)
    token = _current_event.set(weakref.ref(event))
    try:
        return table.data.get(key)
    finally:
        _current_event.reset(token)


async def test_records_and_store_are_faust_s_own_bytes(table: Any) -> None:
    producer = RecordingProducer()
    table.app.producer = producer
    writeback = WriteBack(table, read=store_reader(table))
    writeback.set(1, "1|day|0|global|all", {"c": {"calls": 2}, "m": 7})
    writeback.set(3, "3|day|0|rep|ana", {"c": {"reps": {"ana": 1}}, "m": 9})
    events = [event_of(1), event_of(3)]

    changelog = write_all([writeback], events)
    sends = Sends()
    await changelog.send(sends)

    topic = table.changelog_topic
    name = topic.get_topic_name()
    expected = []
    for p, key, value in [(1, "1|day|0|global|all", {"c": {"calls": 2}, "m": 7}),
                          (3, "3|day|0|rep|ana", {"c": {"reps": {"ana": 1}}, "m": 9})]:  # fmt: skip
        key_bytes, _ = topic.prepare_key(key, table.key_serializer)
        value_bytes, _ = topic.prepare_value(value, table.value_serializer)
        expected.append((name, key_bytes, value_bytes, p))
        assert stored(table, p, key) is None  # not before Kafka has the record
    assert sorted(producer.sent) == sorted(expected)
    assert len(sends.futures) == 2
    assert table.data.persisted_offset(TP(name, 1)) is None

    changelog.persist()  # the flush confirmed the records: the store gets them
    assert stored(table, 1, "1|day|0|global|all") == {"c": {"calls": 2}, "m": 7}
    assert stored(table, 3, "3|day|0|rep|ana") == {"c": {"reps": {"ana": 1}}, "m": 9}
    assert table.data.persisted_offset(TP(name, 1)) == 100
    assert table.data.persisted_offset(TP(name, 3)) == 100


async def test_deletes_are_tombstones_and_absent_keys_send_nothing(table: Any) -> None:
    producer = RecordingProducer()
    table.app.producer = producer
    writeback = WriteBack(table, read=store_reader(table))
    writeback.set(0, "a", {"m": 1})
    changelog = write_all([writeback], [event_of(0)])
    await changelog.send(Sends())
    changelog.persist()
    assert stored(table, 0, "a") == {"m": 1}
    writeback.delete(0, "a")
    writeback.delete(0, "never-written")
    changelog = write_all([writeback], [event_of(0)])
    await changelog.send(Sends())
    assert stored(table, 0, "a") == {"m": 1}  # until the tombstone is confirmed
    changelog.persist()

    assert [(key, value) for _, key, value, _ in producer.sent[1:]] == [(b'"a"', None)]
    assert stored(table, 0, "a") is None


async def test_the_persisted_offset_is_the_last_record_of_the_batches(table: Any) -> None:
    name = table.changelog_topic.get_topic_name()
    producer = RecordingProducer(capacity=2)
    table.app.producer = producer
    writeback = WriteBack(table, read=store_reader(table))
    # batches of two: (a, b) at 100-101, (c, d) at 102-103, (e) at 104
    for key in ("a", "b", "c", "d", "e"):
        writeback.set(0, key, {"m": 1})
    changelog = write_all([writeback], [event_of(0)])
    sends = Sends()
    await changelog.send(sends)
    assert producer.batches == [2, 2, 1]
    assert len(sends.futures) == 3
    assert [key for _, key, _, _ in producer.sent] == [b'"a"', b'"b"', b'"c"', b'"d"', b'"e"']
    changelog.persist()
    assert table.data.persisted_offset(TP(name, 0)) == 104
    assert [stored(table, 0, key) for key in "abcde"] == [{"m": 1}] * 5


async def test_a_table_partition_whose_records_did_not_all_reach_kafka_is_left_as_it_was(
    table: Any,
) -> None:
    """Its store is never ahead of its changelog: a restore brings what reached Kafka."""
    name = table.changelog_topic.get_topic_name()
    producer = RecordingProducer(fail_keys={b'"e"'}, capacity=2)
    table.app.producer = producer
    writeback = WriteBack(table, read=store_reader(table))
    for p, keys in ((0, "abcde"), (1, "fg")):
        for key in keys:
            writeback.set(p, key, {"m": 1})
    changelog = write_all([writeback], [event_of(0), event_of(1)])
    await changelog.send(Sends())
    changelog.persist()
    assert table.data.persisted_offset(TP(name, 0)) is None
    assert [stored(table, 0, key) for key in "abcde"] == [None] * 5
    assert table.data.persisted_offset(TP(name, 1)) == 101  # its batch reached Kafka
    assert [stored(table, 1, key) for key in "fg"] == [{"m": 1}] * 2


async def test_one_batch_per_table_partition(table: Any) -> None:
    producer = RecordingProducer()
    table.app.producer = producer
    writeback = WriteBack(table, read=store_reader(table))
    for p in (0, 1):
        for key in ("a", "b", "c"):
            writeback.set(p, f"{p}|{key}", {"m": 1})
    changelog = write_all([writeback], [event_of(0), event_of(1)])
    await changelog.send(Sends())
    assert producer.batches == [3, 3]
    assert sorted({p for _, _, _, p in producer.sent}) == [0, 1]
    changelog.persist()
    name = table.changelog_topic.get_topic_name()
    assert table.data.persisted_offset(TP(name, 0)) == 102
    assert table.data.persisted_offset(TP(name, 1)) == 102


async def test_reads_from_the_store_find_what_table_get_finds(table: Any) -> None:
    """``store_reader`` (a WriteBack's ``read`` in the worker) skips faust's mapping layers,
    not its lookup: in an event's partition, outside any event (every partition), present,
    absent and deleted keys."""
    table.app.producer = RecordingProducer()
    writeback = WriteBack(table, read=store_reader(table))
    writeback.set(1, "one", {"c": {"calls": 2}})
    writeback.set(3, "three", {"c": {"reps": {"é": 1}}})
    writeback.set(3, "gone", {"m": 1})

    async def flush(*partitions: int) -> None:
        changelog = write_all([writeback], [event_of(p) for p in partitions])
        await changelog.send(Sends())
        changelog.persist()

    await flush(1, 3)
    writeback.delete(3, "gone")
    await flush(3)
    keys = ("one", "three", "gone", "never")
    outside = {key: writeback.read(key) for key in keys}
    assert outside == {key: table.get(key) for key in keys}
    assert outside == {"one": {"c": {"calls": 2}}, "three": {"c": {"reps": {"é": 1}}},
                       "gone": None, "never": None}  # fmt: skip
    for partition in (1, 3):
        token = _current_event.set(weakref.ref(event := event_of(partition)))
        try:
            assert {k: writeback.read(k) for k in keys} == {k: table.get(k) for k in keys}
            assert writeback.read("one" if partition == 1 else "three") is not None
        finally:
            _current_event.reset(token)
        del event


async def test_a_read_while_the_flush_waits_for_kafka_finds_its_writes(table: Any) -> None:
    """The store gets the flush's writes at ``persist``; a read before (a /metrics scrape
    while the flush awaits the broker) of a key the cache dropped finds them in the
    write-back, not the store's old value, and does not cache the old value for later."""
    table.app.producer = RecordingProducer()
    writeback = WriteBack(table, cache_size=1, read=store_reader(table))
    writeback.set(1, "1|day|0|global|all", {"c": {"calls": 1}, "m": 3})
    changelog = write_all([writeback], [event_of(1)])
    await changelog.send(Sends())
    changelog.persist()
    writeback.set(1, "1|day|0|global|all", {"c": {"calls": 2}, "m": 5})
    writeback.set(1, "1|day|0|rep|ana", {"c": {"calls": 1}, "m": 5})  # the cache keeps this
    changelog = write_all([writeback], [event_of(1)])
    await changelog.send(Sends())
    assert stored(table, 1, "1|day|0|global|all") == {"c": {"calls": 1}, "m": 3}  # not yet
    assert writeback.get(1, "1|day|0|global|all") == {"c": {"calls": 2}, "m": 5}
    changelog.persist()
    assert writeback.get(1, "1|day|0|global|all") == {"c": {"calls": 2}, "m": 5}


async def test_persist_lets_the_write_back_read_the_store_again(table: Any) -> None:
    """Once the store has a flush's writes, the write-back no longer holds them
    (``flushing``): reads find them in the store; a table partition whose records did not
    all reach Kafka keeps them, its store being left as it was."""
    table.app.producer = RecordingProducer(fail_keys={b'"b"'})
    writeback = WriteBack(table, cache_size=0, read=store_reader(table))
    writeback.set(0, "a", {"m": 1})
    writeback.set(1, "b", {"m": 1})
    changelog = write_all(iter([writeback]), [event_of(0), event_of(1)])
    await changelog.send(Sends())
    assert set(writeback.flushing) == {0, 1}
    changelog.persist()
    assert set(writeback.flushing) == {1}  # partition 1's batch failed
    assert stored(table, 0, "a") == {"m": 1}
    assert writeback.get(0, "a") == {"m": 1}  # from the store
    assert stored(table, 1, "b") is None
    assert writeback.get(1, "b") == {"m": 1}  # still from the write-back


async def test_a_store_of_our_codec_is_read_without_faust_s_serializers(
    table: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's tables (str keys, plain values, our codec) are read with orjson
    directly; a table in another codec still through faust's serializers, the same values."""
    table.app.producer = RecordingProducer()
    writeback = WriteBack(table, read=store_reader(table))
    writeback.set(0, "k", {"c": {"calls": 1, "reps": {"é": 1}}})
    changelog = write_all([writeback], [event_of(0)])
    await changelog.send(Sends())
    changelog.persist()

    def unused(*args: Any) -> Any:
        raise AssertionError("read through faust's serializers")

    monkeypatch.setattr(table.data, "_encode_key", unused)
    monkeypatch.setattr(table.data, "_decode_value", unused)
    assert writeback.read("k") == {"c": {"calls": 1, "reps": {"é": 1}}}
    assert writeback.read("absent") is None
    monkeypatch.undo()

    other: Any = faust.App("json-test", broker="kafka://127.0.0.1:1", store="rocksdb://",
                           datadir=str(tmp_path / "json")).Table("t", default=None)  # fmt: skip
    other.app.producer = RecordingProducer()
    encoded: list[str] = []
    encode = other.data._encode_key
    monkeypatch.setattr(other.data, "_encode_key", lambda key: encoded.append(key) or encode(key))
    json_writeback = WriteBack(other, read=store_reader(other))
    json_writeback.set(0, "k", {"v": 1})
    changelog = write_all([json_writeback], [event_of(0)])
    await changelog.send(Sends())
    changelog.persist()
    encoded.clear()
    assert json_writeback.read("k") == {"v": 1}
    assert encoded == ["k"]  # its reader went through faust's serializers
    assert other.get("k") == {"v": 1}
