"""Table write-back: pending writes first, then a bounded cache, then the table."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from streams.engine.writeback import (
    PLAIN_TABLES,
    Deferred,
    WriteBack,
    abandon,
    all_or_nothing,
    release,
    write_pending,
)


class CountingTable(dict[str, Any]):
    """A table that counts its reads (a RocksDB read and decode each, in the engine)."""

    reads = 0

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.reads += 1
        return super().get(key, default)


def test_hot_keys_and_misses_are_read_from_the_table_once() -> None:
    table = CountingTable(a=1)
    writeback = WriteBack(table, cache_size=10)
    assert [writeback.get(0, "a") for _ in range(3)] == [1, 1, 1]
    assert [writeback.get(0, "missing") for _ in range(3)] == [None, None, None]
    assert table.reads == 2


def test_the_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    table = CountingTable({f"k{n}": n for n in range(5)})
    writeback = WriteBack(table, cache_size=2)
    for key in ("k0", "k1", "k0", "k2"):  # k1 is the least recently used when k2 comes
        writeback.get(0, key)
    assert len(writeback.cache) == 2
    reads = table.reads
    writeback.get(0, "k0")
    assert table.reads == reads
    writeback.get(0, "k1")
    assert table.reads == reads + 1


def test_pending_writes_win_and_a_revoked_partition_is_read_again() -> None:
    table = CountingTable(a=1)
    writeback = WriteBack(table, cache_size=10)
    writeback.get(3, "a")
    writeback.set(3, "a", 2)
    assert writeback.get(3, "a") == 2
    abandon([writeback], [], {3})  # a rebalance: the next owner may have written it
    assert writeback.get(3, "a") == 1
    assert table.reads == 2


def test_without_a_cache_every_read_goes_to_the_table() -> None:
    table = CountingTable(a=1)
    writeback = WriteBack(table)
    writeback.get(0, "a")
    writeback.get(0, "a")
    assert table.reads == 2


def test_a_failed_message_leaves_none_of_its_writes_and_a_good_one_all() -> None:
    seen, cells = WriteBack({}), WriteBack({})
    seen.set(0, "event:a", {"o": 1})  # an earlier message's writes, pending

    def apply_half() -> None:
        with all_or_nothing([seen, cells]):
            seen.set(0, "event:a", {"o": 2})
            seen.set(1, "event:b", {"o": 2})
            cells.delete(0, "c1")
            raise ZeroDivisionError("applying it failed half way")

    with pytest.raises(ZeroDivisionError):
        apply_half()
    assert seen.dirty == {0: {"event:a": {"o": 1}}}
    assert cells.dirty == {}
    with all_or_nothing([seen, cells]):
        seen.set(1, "event:b", {"o": 3})
        cells.set(0, "c1", {"m": 3})
    assert seen.dirty == {0: {"event:a": {"o": 1}}, 1: {"event:b": {"o": 3}}}
    assert cells.dirty == {0: {"c1": {"m": 3}}}
    assert seen.journal is None
    assert cells.journal is None


class EventOf:
    """The event a flush writes a partition's keys with (only its partition is read)."""

    def __init__(self, partition: int) -> None:
        self.message = type("Message", (), {"partition": partition})()


def test_a_flush_s_writes_are_read_until_the_table_has_them() -> None:
    """The worker's stores get a flush's writes once Kafka has their changelog records: a
    read meanwhile (a /metrics scrape while the flush awaits the broker) of a key the cache
    no longer holds (the flush wrote more keys than it keeps) must not find the table's old
    value, nor cache it for the reads after the store has the new one."""
    table = CountingTable({"a": {"o": 1}, "b": {"o": 1}, "c": {"o": 1}})
    writeback = WriteBack(table, cache_size=2)
    for key in ("a", "b", "c"):
        writeback.set(0, key, {"o": 2})
    held: list[tuple[str, Any]] = []  # written to the table once "Kafka confirmed" them
    write_pending(
        [writeback], [EventOf(0)],
        lambda _table, _partition, key, value: held.append((key, value)),
        lambda _event: contextlib.nullcontext(),
    )  # fmt: skip
    assert "a" not in writeback.cache  # the cache keeps 2 of the 3 written
    assert writeback.get(0, "a") == {"o": 2}  # before the store has it
    table.update(held)  # persisted
    assert [writeback.get(0, key) for key in ("a", "b", "c")] == [{"o": 2}] * 3
    deferred = Deferred(table, cache_size=1)
    deferred["a"] = {"o": 3}
    deferred["b"] = {"o": 3}
    write_pending(
        [deferred.writeback], [EventOf(0)], lambda *_: None,
        lambda _event: contextlib.nullcontext(),
    )  # fmt: skip
    assert deferred.get("a") == {"o": 3}  # not the table's {"o": 2}: not persisted yet
    assert dict(deferred.items())["a"] == {"o": 3}


def test_a_revoked_partition_s_last_flush_is_read_from_the_table_again() -> None:
    table = CountingTable({"a": {"o": 1}})
    writeback = WriteBack(table, cache_size=0)
    writeback.set(4, "a", {"o": 2})
    write_pending(
        [writeback], [EventOf(4)], lambda *_: None, lambda _event: contextlib.nullcontext()
    )
    assert writeback.get(4, "a") == {"o": 2}
    abandon([writeback], [], {4})  # its next owner writes it from now on
    assert writeback.get(4, "a") == {"o": 1}


def test_once_the_tables_have_a_flush_s_writes_the_write_back_lets_them_go() -> None:
    """``flushing`` holds a flush's writes only until ``persist``: then the cache and the
    table answer (a flush of more keys than the cache keeps held them all until the next
    flush before, a replay's memory)."""
    table = CountingTable({"a": {"o": 1}})
    writeback = WriteBack(table, cache_size=1)
    for key in ("a", "b", "c"):
        writeback.set(0, key, {"o": 2})
    writeback.set(3, "d", {"o": 2})
    written = PLAIN_TABLES.write_all(iter([writeback]), [EventOf(0), EventOf(3)])
    assert set(writeback.flushing) == {0, 3}  # until the tables are said to have them
    written.persist()
    assert writeback.flushing == {}
    reads = table.reads
    assert [writeback.get(0, key) for key in ("a", "b", "c")] == [{"o": 2}] * 3
    assert table.reads > reads  # the cache keeps one key: the others come from the table
    assert writeback.get(3, "d") == {"o": 2}


def test_release_keeps_what_a_table_did_not_get() -> None:
    """A table partition whose changelog records did not all reach Kafka kept its old
    values: its writes are still read from ``flushing`` (the worker stops)."""
    table = CountingTable({"a": {"o": 1}})
    writeback = WriteBack(table, cache_size=0)
    writeback.set(0, "a", {"o": 2})
    writeback.set(1, "b", {"o": 2})
    write_pending(
        [writeback], [EventOf(0), EventOf(1)], lambda *_: None,
        lambda _event: contextlib.nullcontext(),
    )  # fmt: skip
    release([writeback], kept=[(table, 0)])
    assert set(writeback.flushing) == {0}
    assert writeback.get(0, "a") == {"o": 2}  # not the table's {"o": 1}
    assert writeback.get(1, "b") is None  # released: the table (never written here) answers


def test_persisted_leaves_out_the_writes_since_the_last_flush() -> None:
    """``persisted``: what the last flushes wrote (being written, or in the table), never a
    write pending since: the publisher asks it whether Redis may hold a cell."""
    table = CountingTable({"old": {"o": 1}})
    deferred = Deferred(table, cache_size=10)
    deferred["new"] = {"o": 1}
    deferred["old"] = {"o": 2}
    assert (deferred.persisted("new"), deferred.persisted("old")) == (None, {"o": 1})
    held: list[tuple[str, Any]] = []
    write_pending(
        [deferred.writeback], [EventOf(0)],
        lambda _table, _partition, key, value: held.append((key, value)),
        lambda _event: contextlib.nullcontext(),
    )  # fmt: skip
    assert (deferred.persisted("new"), deferred.persisted("old")) == ({"o": 1}, {"o": 2})
    table.update(held)
    release([deferred.writeback])
    del deferred["new"]  # pending: the table still has it
    assert deferred.persisted("new") == {"o": 1}
    assert deferred.get("new") is None
