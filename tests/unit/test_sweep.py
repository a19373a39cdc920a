"""The sweep of expired keys over a real RocksDB store (rocksdict, as faust opens it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import rocksdict

from streams.engine.sweep import OFFSET_KEY, Sweep
from streams.engine.writeback import WriteBack

DAY = 86_400_000


@pytest.fixture
def dbs(tmp_path: Path) -> Iterator[dict[int, Any]]:
    opened = {}
    for partition in (0, 1):
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        opened[partition] = rocksdict.Rdict(str(tmp_path / f"p{partition}"), options=options)
    yield opened
    for db in opened.values():
        db.close()


def table_of(dbs: dict[int, Any]) -> Any:
    return SimpleNamespace(data=SimpleNamespace(_dbs=dbs), get=lambda key: None)


def put(db: Any, key: str, value: Any) -> None:
    db.put(orjson.dumps(key), orjson.dumps(value))


def expired_before(limit_ms: int) -> Any:
    """Expired: event time ``t`` more than ``limit_ms`` before now (no ``t``: kept)."""
    return lambda key, value, now: "t" in value and value["t"] < now - limit_ms


def deletions(writeback: WriteBack, partition: int) -> set[str]:
    return {k for k, v in writeback.dirty.get(partition, {}).items() if v is None}


def test_a_pass_deletes_the_expired_keys_of_its_partition_only(dbs: dict[int, Any]) -> None:
    for n in range(50):
        put(dbs[0], f"event:{n:03}", {"o": n, "t": n * DAY})
        put(dbs[1], f"event:{n:03}", {"o": n, "t": n * DAY})
    put(dbs[0], "event:legacy", {"o": 99})  # written before event times were kept
    dbs[0].put(OFFSET_KEY, b"1234")  # faust's own offset record: not JSON, never touched
    writeback = WriteBack(table_of(dbs))
    sweep = Sweep(writeback, expired_before(10 * DAY), budget=1000)
    assert sweep.step(0, 40 * DAY) == 30
    assert deletions(writeback, 0) == {f"event:{n:03}" for n in range(30)}
    assert 1 not in writeback.dirty


def test_steps_of_a_budget_resume_where_they_stopped(dbs: dict[int, Any]) -> None:
    for n in range(25):
        put(dbs[0], f"lead:{n:03}", {"t": 0})
    writeback = WriteBack(table_of(dbs))
    sweep = Sweep(writeback, expired_before(DAY), budget=10)
    assert [sweep.step(0, 5 * DAY) for _ in range(3)] == [10, 10, 5]
    assert len(deletions(writeback, 0)) == 25
    # the pass is done: nothing new until event time has moved on by a day
    assert sweep.step(0, 5 * DAY + 1000) == 0
    assert sweep.passes[0].started_at is None


def test_a_new_pass_once_event_time_moved_by_a_day(dbs: dict[int, Any]) -> None:
    put(dbs[0], "event:a", {"t": 10 * DAY})
    put(dbs[0], "event:c", {"t": 11 * DAY + DAY // 5})
    writeback = WriteBack(table_of(dbs))
    sweep = Sweep(writeback, expired_before(5 * DAY), budget=100)
    assert sweep.step(0, 16 * DAY) == 1  # a
    assert sweep.step(0, 16 * DAY + DAY // 2) == 0  # c has expired, but the pass was recent
    assert sweep.step(0, 17 * DAY) == 1  # c (a is deleted already: pending in this flush)
    assert deletions(writeback, 0) == {"event:a", "event:c"}


def test_a_pending_write_is_the_value_judged(dbs: dict[int, Any]) -> None:
    put(dbs[0], "event:a", {"t": 0})
    put(dbs[0], "event:b", {"t": 0})
    writeback = WriteBack(table_of(dbs))
    writeback.set(0, "event:a", {"t": 100 * DAY})  # rewritten in this flush: not expired
    writeback.delete(0, "event:b")  # deleted in this flush already
    sweep = Sweep(writeback, expired_before(DAY), budget=100)
    assert sweep.step(0, 50 * DAY) == 0
    assert writeback.dirty[0] == {"event:a": {"t": 100 * DAY}, "event:b": None}


def test_nothing_without_event_time_or_store(dbs: dict[int, Any]) -> None:
    put(dbs[0], "event:a", {"t": 0})
    writeback = WriteBack(table_of(dbs))
    assert Sweep(writeback, expired_before(0)).step(0, None) == 0
    assert Sweep(writeback, expired_before(0)).step(7, 10 * DAY) == 0  # not this worker's
    memory = WriteBack(SimpleNamespace(data={}, get=lambda key: None))
    assert Sweep(memory, expired_before(0)).step(0, 10 * DAY) == 0
    assert not writeback.dirty
    assert not memory.dirty


def test_a_revoked_partition_starts_over(dbs: dict[int, Any]) -> None:
    for n in range(20):
        put(dbs[0], f"event:{n:03}", {"t": 0})
    writeback = WriteBack(table_of(dbs))
    sweep = Sweep(writeback, expired_before(DAY), budget=5)
    sweep.step(0, 10 * DAY)
    sweep.forget({0})
    writeback.dirty.clear()  # the rebalance dropped the pending writes too
    assert sweep.step(0, 10 * DAY) == 5
    assert deletions(writeback, 0) == {f"event:{n:03}" for n in range(5)}
