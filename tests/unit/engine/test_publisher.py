"""The publisher counts a cell's active reps from its shards: a rep seen by two entity
partitions once, a retracted rep out, and the rolling windows' reps distinct over minutes;
and what a flush published that its table does not know is never left behind by a crash.

The publisher runs on plain dicts for tables (its write-back reads them like faust tables)
and a read model that is only staged, never flushed: no broker, no Redis.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError

from streams.engine import publisher as publisher_module
from streams.engine.delivery import Delivery, SendFailed, Sends
from streams.engine.failures import StageFailures
from streams.engine.publisher import Publisher
from streams.ingest.reference_cache import ReferenceCache
from streams.kpi.cells import cell_key, split_cell_key
from streams.kpi.rep_sets import shard_pair
from streams.kpi.windows import CellWindows, Graces, Retention
from streams.observability.kpi_gauges import fold
from streams.serving.read_model import ReadModel

ZONE = ZoneInfo("Europe/Paris")
WINDOWS = CellWindows(ZONE)
T0 = 1_774_000_000_000  # 2026-03-20, a Friday
Q = 0


def publisher(
    cells: dict[str, Any] | None = None,
    send_updates: Any = None,
    sends: Sends | None = None,
    base: dict[str, Any] | None = None,
    marks: dict[str, Any] | None = None,
) -> Publisher:
    return Publisher(
        cells={} if cells is None else cells, base={} if base is None else base,
        marks={} if marks is None else marks, send_updates=send_updates,
        read_model=ReadModel(cast(Any, None), "sp:"), reference=ReferenceCache(),
        windows=WINDOWS, graces=Graces(), retention=Retention(), entity_partitions=2,
        lead_sla_ms=60_000, currency="EUR", sends=cast(Sends, sends),
        failures=StageFailures("publisher", cast(Any, None), Counter()),
        wall_ms=lambda: T0,  # the windows of T0 are not history
    )  # fmt: skip


def shard(kind: str, at_ms: int, rep: str) -> str:
    dim, key = shard_pair("team", "Nord", rep)
    return cell_key(kind, WINDOWS.span(kind, at_ms)[0], dim, key)


def parent(kind: str, at_ms: int) -> str:
    return cell_key(kind, WINDOWS.span(kind, at_ms)[0], "team", "Nord")


def apply(pub: Publisher, offset: int, message: dict[str, Any]) -> None:
    for table in pub.tables:
        table.partition = Q
    pub._index(Q, offset)  # as ``process`` does
    pub.high[Q] = offset
    pub._apply(Q, offset, orjson.dumps(message))


def partial(ep: int, cells: list[tuple[str, int, dict[str, Any]]]) -> dict[str, Any]:
    return {"p": ep, "cells": [list(c) for c in cells], "ts": None}


def denominator(pub: Publisher, kind: str, at_ms: int) -> Any:
    pub._publish_changed()
    start = WINDOWS.span(kind, at_ms)[0]
    raw = pub.read_model.hashes[(f"sp:kpi:revenue_per_rep:{kind}:{start}:team", "Nord")]
    return orjson.loads(raw)["denominator"]


def test_reps_seen_by_two_entity_partitions_count_once_and_retract() -> None:
    pub = publisher()
    day = parent("day", T0)
    apply(pub, 0, partial(0, [(day, 1, {"calls": 2})]))
    apply(pub, 1, partial(0, [(shard("day", T0, "ana"), 1, {"reps": {"ana": 1}})]))
    apply(pub, 2, partial(0, [(shard("day", T0, "bo"), 1, {"reps": {"bo": 1}})]))
    apply(pub, 3, partial(1, [(day, 1, {"calls": 1})]))
    apply(pub, 4, partial(1, [(shard("day", T0, "ana"), 1, {"reps": {"ana": 1}})]))
    assert denominator(pub, "day", T0) == "2"  # ana, bo: not 3
    # bo's only event is retracted (a correction moved it): the partial without bo
    apply(pub, 5, partial(0, [(shard("day", T0, "bo"), 2, {})]))
    assert denominator(pub, "day", T0) == "1"
    stored = pub.cells.get(shard("day", T0, "ana"))
    assert stored is not None
    assert stored["n"] == 1
    # shards are never published as KPIs
    assert not [name for name, _ in pub.read_model.hashes if "#reps" in name and ":kpi:" in name]


def test_rolling_windows_count_a_rep_once_over_its_minutes() -> None:
    pub = publisher()
    later = T0 + 5 * 60_000
    offset = 0
    for at_ms, rep in ((T0, "ana"), (later, "ana"), (later, "bo")):
        for cell, components in (
            (parent("minute", at_ms), {"orders": 1, "rev_c": 3000}),
            (shard("minute", at_ms, rep), {"reps": {rep: 1}}),
        ):
            stored = pub.cells.get(cell)
            merged = dict(stored["parts"]["0"]["c"]) if stored else {}
            for name, value in components.items():
                if isinstance(value, dict):
                    merged[name] = {**merged.get(name, {}), **value}
                else:
                    merged[name] = merged.get(name, 0) + value
            apply(pub, offset, partial(0, [(cell, offset, merged)]))
            offset += 1
    for ep in (0, 1):
        apply(pub, offset, {"wm": ep, "t": later + 1_000, "e": later + 1_000})
        offset += 1
    rolling = {
        c.kind: c.values["revenue_per_rep"]
        for c in pub.gauge_cells([Q], cap=50)
        if c.dimension == "team" and c.kind in ("15m", "1h")
    }
    assert rolling["1h"].denominator == 2  # ana twice, bo: two reps, not 3
    assert rolling["1h"].numerator == 90
    # the minute shards are staged for Redis: the API's rolling windows read them
    pub._publish_changed()
    staged = [name for name, _ in pub.read_model.hashes if name.startswith("sp:cell:minute:")]
    assert any(name.endswith(":team#reps") for name in staged)


class _Event:
    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition, offset=0)


class _Stream:
    async def ack(self, event: Any) -> None:
        return None


class _Killed(BaseException):
    """kill -9 at this point of the flush: nothing after it runs."""


def _sending(sent: list[dict[str, Any]], failing: list[bool] | None = None) -> tuple[Any, Sends]:
    """A ``send_updates`` that records what reached Kafka (or fails every send while
    ``failing[0]``), and its delivery."""
    failed: list[SendFailed] = []

    async def no_buffer() -> None:
        return None

    async def send_updates(records: list[tuple[bytes, bytes]]) -> list[Any]:
        futures = []
        for _, value in records:
            future = asyncio.get_running_loop().create_future()
            if failing and failing[0]:
                future.set_exception(KafkaTimeoutError("broker unreachable"))
            else:
                sent.append(orjson.loads(value))
                future.set_result(None)
            futures.append(future)
        return futures

    return send_updates, Delivery(no_buffer, timeout_s=1.0, on_failure=failed.append).sends("p")


def _redis(
    pub: Publisher,
    written: dict[Any, Any],
    killed: bool = False,
    removed: list[tuple[str, str, str]] | None = None,
) -> None:
    """Redis as a dict of what the read model wrote, its deletes applied (and recorded in
    ``removed``); ``killed``: the worker dies as the write is sent (Redis has it, nothing
    after it runs)."""

    async def flush() -> bool:
        written.update(pub.read_model.hashes)
        pub.read_model.hashes.clear()
        if killed:
            raise _Killed
        return True

    async def removals() -> bool:
        for op, key, field in pub.read_model.removals:
            if op == "hdel":
                written.pop((key, field), None)
        if removed is not None:
            removed.extend(pub.read_model.removals)
        pub.read_model.removals = []
        return True

    async def nothing_lost(partitions: Any) -> list[int]:
        return []

    pub.read_model.flush = flush  # type: ignore[method-assign]
    pub.read_model.flush_removals = removals  # type: ignore[method-assign]
    pub.read_model.lost = nothing_lost  # type: ignore[method-assign]


def _close(pub: Publisher, offset: int) -> None:
    for ep in (0, 1):  # stream time past the minute's grace: it closes, final
        apply(pub, offset + ep, {"wm": ep, "t": T0 + 3_600_000, "e": T0 + 3_600_000})


def test_a_final_whose_record_failed_is_sent_again_by_the_next_owner() -> None:
    """A window closes and its final record does not reach Kafka: the worker stops, the
    markers that closed it unacked. The publisher that gets them again, on the same tables,
    sends the final record: its table says final, so no marker closes the window again,
    and no partial of it comes again (those were acked by an earlier flush)."""
    tables: dict[str, dict[str, Any]] = {"cells": {}, "base": {}, "marks": {}}
    minute = parent("minute", T0)

    async def first() -> None:
        failing = [False]
        send_updates, sends = _sending([], failing)
        pub = publisher(send_updates=send_updates, sends=sends, **tables)
        _redis(pub, {})
        apply(pub, 0, partial(0, [(minute, 0, {"orders": 1, "rev_c": 100})]))
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()  # the partial's values published, the partial acked
        failing[0] = True
        _close(pub, 1)
        pub.pending.append((_Stream(), _Event(Q)))
        with pytest.raises(SendFailed):
            await pub.flush()

    async def again() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        send_updates, sends = _sending(sent)
        pub = publisher(send_updates=send_updates, sends=sends, **tables)
        _redis(pub, {})
        _close(pub, 1)  # the markers again: they were not acked
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()
        return sent

    asyncio.run(first())
    sent = asyncio.run(again())
    orders = [r for r in sent if r["kpi"] == "orders" and r["window"]["kind"] == "minute"]
    assert orders, f"no final record sent again: {sent}"
    assert all(r["final"] for r in orders), sent


def test_a_value_published_then_retracted_in_another_batch_is_not_left_behind() -> None:
    """kill -9 once Redis has a flush's values: the next owner applies the same messages and
    later ones in one batch, in which a value published by the dead flush is retracted.
    The published value must not stay in Redis, never final (the kill -9 test saw a cell's
    lead response time left so): the table knew it before Redis did."""
    tables: dict[str, dict[str, Any]] = {"cells": {}, "base": {}, "marks": {}}
    minute = parent("minute", T0)
    redis: dict[Any, Any] = {}
    first_message = partial(0, [(minute, 0, {"orders": 1, "rev_c": 100, "calls": 1})])

    async def killed() -> None:
        send_updates, sends = _sending([])
        pub = publisher(send_updates=send_updates, sends=sends, **tables)
        _redis(pub, redis, killed=True)
        apply(pub, 0, first_message)
        pub.pending.append((None, _Event(Q)))
        with pytest.raises(_Killed):
            await pub.flush()

    async def next_owner() -> None:
        send_updates, sends = _sending([])
        pub = publisher(send_updates=send_updates, sends=sends, **tables)
        _redis(pub, redis)
        apply(pub, 0, first_message)  # redelivered: nothing was acked
        apply(pub, 1, partial(0, [(minute, 1, {"orders": 1, "rev_c": 100})]))  # no call
        _close(pub, 2)
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()

    asyncio.run(killed())
    calls = (f"sp:kpi:calls:minute:{WINDOWS.span('minute', T0)[0]}:team", "Nord")
    assert calls in redis, "the first flush did not publish the calls: the test tests nothing"
    asyncio.run(next_owner())
    records = {name: orjson.loads(raw) for name, raw in redis.items() if ":kpi:" in name[0]}
    open_ = {name: r for name, r in records.items() if not r["final"]}
    assert not open_, f"left in Redis, never final: {open_}"


def test_the_gauges_fold_from_the_book_as_from_every_keys_cell() -> None:
    """``other`` from the gauge book's sums (what a scrape reads with many keys) equals
    ``other`` folded from every key's current cell, partials replaced and retracted too."""
    pub = publisher()
    offset = 0
    for n in range(30):
        rep = f"rep-{n:02d}"
        for kind in ("day", "month"):
            cell = cell_key(kind, WINDOWS.span(kind, T0)[0], "rep", rep)
            for ep in (0, 1):  # two entity partitions' partials
                components = {"orders": 1 + n % 4, "rev_c": 1000 * (n % 7), "lost": ep + n % 3}
                apply(pub, offset, partial(ep, [(cell, offset, components)]))
                offset += 1
    # partials replaced: rep-05's revenue moves, rep-06's partial of ep 1 is emptied
    for rep, components in (("rep-05", {"orders": 9, "rev_c": 99_000}), ("rep-06", {})):
        for kind in ("day", "month"):
            cell = cell_key(kind, WINDOWS.span(kind, T0)[0], "rep", rep)
            apply(pub, offset, partial(1, [(cell, offset, components)]))
            offset += 1
    for ep in (0, 1):
        apply(pub, offset, {"wm": ep, "t": T0 + 60_000, "e": T0 + 60_000})
        offset += 1
    pub._publish_changed()
    gauges = pub.gauge_cells([Q], cap=4)
    everyone = [
        found
        for (kind, dim, key), (start, cell) in pub.latest[Q].items()
        if dim == "rep" and (found := pub._current_cell(Q, cell)) is not None
    ]
    expected = {
        (c.kind, c.key): (c.cell, c.values) for c in fold(everyone, cap=4) if c.dimension == "rep"
    }
    got = {(c.kind, c.key): (c.cell, c.values) for c in gauges if c.dimension == "rep"}
    assert got == expected
    assert ("month", "rep-05") in got  # the most revenue this month
    assert len([k for k in got if k[0] == "month"]) == 5  # 4 kept and other


def test_redis_holds_each_kpis_last_record_and_only_changed_kpis_are_rewritten() -> None:
    """Redis gets the KPIs a publication sends to kpi.updates, no more: a partial that
    moves only the calls rewrites the calls' KPIs, not the revenue's. Whatever the flushes,
    each KPI field in Redis is its last kpi.updates record (value, final, revision)."""
    day = parent("day", T0)
    start = WINDOWS.span("day", T0)[0]
    sent: list[dict[str, Any]] = []
    redis: dict[Any, Any] = {}
    written: list[set[str]] = []

    async def run() -> None:
        send_updates, sends = _sending(sent)
        pub = publisher(send_updates=send_updates, sends=sends)
        _redis(pub, redis)
        flush = pub.read_model.flush

        async def noting() -> bool:
            written.append({name.split(":")[2] for name, _ in pub.read_model.hashes
                            if name.startswith("sp:kpi:")})  # fmt: skip
            return await flush()

        pub.read_model.flush = noting  # type: ignore[method-assign]
        steps = [
            {"orders": 1, "rev_c": 10_000, "calls": 1},
            {"orders": 1, "rev_c": 10_000, "calls": 2},  # only the calls move
            {"orders": 2, "rev_c": 25_000, "calls": 2},  # only the orders and revenue
        ]
        for offset, components in enumerate(steps):
            apply(pub, offset, partial(0, [(day, offset, components)]))
            pub.pending.append((_Stream(), _Event(Q)))
            await pub.flush()
        for ep in (0, 1):  # past the day's grace: final, every KPI
            apply(pub, 10 + ep, {"wm": ep, "t": T0 + 3 * 86_400_000, "e": T0 + 3 * 86_400_000})
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()

    asyncio.run(run())
    every = written[0]
    assert {"calls", "revenue"} <= every, written
    assert ("calls" in written[1], "revenue" in written[1]) == (True, False), written
    assert ("revenue" in written[2], "calls" in written[2]) == (True, False), written
    assert written[3] == every, "the final record of every KPI goes to Redis"
    last = {r["kpi"]: r for r in sent if r["dimension"] == "team"}
    assert set(last) == every
    for kpi, record in last.items():
        held = orjson.loads(redis[(f"sp:kpi:{kpi}:day:{start}:team", "Nord")])
        assert held == {name: record[name] for name in held}, kpi
        assert (held["final"], held["revision"]) == (True, record["revision"]), kpi


def test_a_flush_of_many_cells_publishes_them_in_steps_each_table_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flush of more changed cells than ``PUBLISH_CELLS`` goes in steps: each step's cells
    are in the table (with what was published, ``po``) before their records and Redis
    writes, every cell is published once, and the messages are acked after the last step
    only. A crash at a later step acks nothing: a next owner publishes every cell again."""
    monkeypatch.setattr(publisher_module, "PUBLISH_CELLS", 10)
    start = WINDOWS.span("day", T0)[0]
    teams = [f"T{i:02d}" for i in range(25)]
    message = partial(0, [(cell_key("day", start, "team", t), 0, {"orders": 1}) for t in teams])
    tables: dict[str, dict[str, Any]] = {"cells": {}, "base": {}, "marks": {}}
    steps: list[set[str]] = []  # the teams each Redis write had
    unknown: list[str] = []  # cells written to Redis or sent before the table had them
    acked: list[int] = []

    def in_table(team: str) -> bool:
        stored = tables["cells"].get(cell_key("day", start, "team", team))
        return stored is not None and stored.get("po") == 0

    class Acking:
        async def ack(self, event: Any) -> None:
            acked.append(len(steps))

    async def run(crash_at: int | None) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        send_updates, sends = _sending(sent)

        async def sending(records: list[tuple[bytes, bytes]]) -> list[Any]:
            unknown.extend(k.decode() for k, v in records if not in_table(orjson.loads(v)["key"]))
            return await send_updates(records)

        pub = publisher(send_updates=sending, sends=sends, **tables)
        _redis(pub, {})

        async def flush() -> bool:
            step = {key for (name, key) in pub.read_model.hashes if name.startswith("sp:cell:")}
            unknown.extend(team for team in step if not in_table(team))
            steps.append(step)
            pub.read_model.hashes.clear()
            if len(steps) == crash_at:
                raise _Killed
            return True

        pub.read_model.flush = flush  # type: ignore[method-assign]
        apply(pub, 0, message)
        pub.pending.append((Acking(), _Event(Q)))
        await pub.flush()
        return sent

    with pytest.raises(_Killed):
        asyncio.run(run(crash_at=2))
    assert (len(steps), acked) == (2, [])
    steps.clear()
    sent = asyncio.run(run(crash_at=None))  # the next owner: the message again
    assert [len(step) for step in steps] == [10, 10, 5]
    assert set().union(*steps) == set(teams)
    assert acked == [3], "acked before the last step"
    orders = Counter(r["key"] for r in sent if r["kpi"] == "orders")
    assert orders == Counter(teams), orders  # each cell's records once
    assert not unknown, f"published before the table had them: {unknown[:3]}"


def test_a_redis_failure_between_steps_acks_nothing_and_the_next_flush_writes_it_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis fails at the second step of a flush: the flush stops there and acks nothing;
    the failed step's writes stay staged, and the next flush (Redis back) writes them with
    the cells left, then acks. Each cell's records go out once."""
    monkeypatch.setattr(publisher_module, "PUBLISH_CELLS", 10)
    start = WINDOWS.span("day", T0)[0]
    teams = [f"T{i:02d}" for i in range(25)]
    message = partial(0, [(cell_key("day", start, "team", t), 0, {"orders": 1}) for t in teams])
    acked: list[int] = []
    writes: list[set[str]] = []  # the teams each successful Redis write had
    sent: list[dict[str, Any]] = []
    send_updates, sends = _sending(sent)
    pub = publisher(send_updates=send_updates, sends=sends, cells={}, base={}, marks={})
    _redis(pub, {})
    calls = [0]

    async def flush() -> bool:
        calls[0] += 1
        if calls[0] == 2:
            return False  # staged writes kept, as ReadModel.flush does on a Redis error
        writes.append({k for (n, k) in pub.read_model.hashes if n.startswith("sp:cell:")})
        pub.read_model.hashes.clear()
        return True

    class Acking:
        async def ack(self, event: Any) -> None:
            acked.append(calls[0])

    pub.read_model.flush = flush  # type: ignore[method-assign]
    apply(pub, 0, message)
    pub.pending.append((Acking(), _Event(Q)))

    async def main() -> None:
        await pub.flush()
        assert (calls[0], acked) == (2, []), "acked though Redis failed"
        await pub.flush()

    asyncio.run(main())
    assert [len(w) for w in writes] == [10, 15], writes  # the failed step's 10 with the last 5
    assert set().union(*writes) == set(teams)
    assert acked == [3], "not acked once, after the last write"
    orders = Counter(r["key"] for r in sent if r["kpi"] == "orders")
    assert orders == Counter(teams), orders


def test_a_window_opened_and_gone_between_two_flushes_costs_redis_nothing() -> None:
    """A replay's event time can open a minute window, close it and pass its retention
    between two flushes: Redis never had it (a flush writes Redis after the table), so
    nothing is written or deleted there; its final records still go to kpi.updates. A
    window a flush wrote gets its deletes when it goes: every field it wrote, and none for
    a KPI it never had (a delete per catalogue KPI was 75 Redis ops per window gone)."""
    sent: list[dict[str, Any]] = []
    redis: dict[Any, Any] = {}
    removed: list[tuple[str, str, str]] = []
    first_ms, second_ms = T0, T0 + 86_400_000
    gone_ms = T0 + 4 * 86_400_000  # past the second's retention too (2 days)
    first, second = (
        cell_key("minute", WINDOWS.span("minute", at)[0], "team", "Nord")
        for at in (first_ms, second_ms)
    )

    def marks(pub: Publisher, offset: int, at_ms: int) -> None:
        for ep in (0, 1):
            apply(pub, offset + ep, {"wm": ep, "t": at_ms, "e": at_ms})

    async def run() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]], set[Any]]:
        send_updates, sends = _sending(sent)
        pub = publisher(send_updates=send_updates, sends=sends)
        _redis(pub, redis, removed=removed)
        apply(pub, 0, partial(0, [(first, 0, {"orders": 1, "rev_c": 10_000})]))
        marks(pub, 1, first_ms + 3 * 86_400_000)  # closed and past retention: one batch
        apply(pub, 3, partial(0, [(second, 3, {"orders": 2, "rev_c": 30_000})]))
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()  # the second is written (Redis, table); the first never was
        before, fields = list(removed), set(redis)
        marks(pub, 4, gone_ms)
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()
        return before, removed[len(before) :], fields

    before, after, fields = asyncio.run(run())
    start = WINDOWS.span("minute", first_ms)[0]
    assert before == [], "deletes sent for a window Redis never had"
    assert not [key for key, _ in redis if f":minute:{start}:" in key]
    finals = {r["kpi"] for r in sent if r["final"] and r["window"]["kind"] == "minute"
              and r["value"] is not None and r["key"] == "Nord"}  # fmt: skip
    assert {"orders", "revenue"} <= finals
    second_start = WINDOWS.span("minute", second_ms)[0]
    assert ("hdel", f"sp:kpi:revenue:minute:{second_start}:team", "Nord") in after
    assert ("hdel", f"sp:cell:minute:{second_start}:team", "Nord") in after
    written = {key for key in fields if f":minute:{second_start}:" in key[0]}
    assert written
    assert not written & redis.keys(), f"left in Redis: {sorted(written & redis.keys())}"
    kpis = {key[0].split(":")[2] for key in written if key[0].startswith("sp:kpi:")}
    named = {key.split(":")[2] for _, key, _ in after if not key.startswith("sp:cell:")}
    assert named == kpis, f"ops for KPIs the window never had: {sorted(named - kpis)}"


def test_stream_time_follows_the_markers_and_is_read_again_when_the_index_goes() -> None:
    """``global_ms`` is kept between markers (every publication asks for it); a marker
    moves it, and a partition whose index goes (a rebalance, undone writes) reads it from
    its table again."""
    pub = publisher()
    apply(pub, 0, {"wm": 0, "t": T0 + 1_000, "e": T0 + 1_000})
    assert pub.global_ms(Q) is None  # one entity partition of two has sent a marker
    apply(pub, 1, {"wm": 1, "t": T0 + 500, "e": T0 + 500})
    assert pub.global_ms(Q) == T0 + 500
    apply(pub, 2, {"wm": 1, "t": T0 + 2_000, "e": T0 + 2_000})
    assert pub.global_ms(Q) == T0 + 1_000
    pub.marks[str(Q)] = {"0": T0 + 5_000, "1": T0 + 6_000}  # what another owner wrote
    pub._unindex(Q)
    assert pub.global_ms(Q) == T0 + 5_000


def test_a_window_closed_with_no_value_gets_corrections_then_a_plain_cohort_revision() -> None:
    """Late events open a day long past its grace: the next markers close it. If what it
    holds then feeds no KPI of its own (repeat purchases without their orders), it closes
    with no record. What comes next for it is corrections (final, ``correction`` true),
    and a revision of the cohort KPI alone (its leads converting) is a final record that
    is not a correction, at a revision above theirs: a window can have corrections and no
    closing record (``tests/integration/kpi/test_corrections.py`` compares with the closing
    revision only where there is one)."""
    sent: list[dict[str, Any]] = []
    send_updates, sends = _sending(sent)
    pub = publisher(send_updates=send_updates, sends=sends)
    _redis(pub, {})
    day = parent("day", T0)
    later = T0 + 3 * 86_400_000  # past the day's end and its grace (a day)

    async def step(offset: int, message: dict[str, Any]) -> list[dict[str, Any]]:
        start = len(sent)
        apply(pub, offset, message)
        for ep in (0, 1):
            apply(pub, offset, {"wm": ep, "t": later, "e": later})
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()
        return [r for r in sent[start:] if r["window"]["kind"] == "day"]

    async def run() -> None:
        closed = await step(0, partial(0, [(day, 0, {"repeat": 1})]))
        assert pub.cells.get(day)["final"], "the day did not close"
        assert closed == [], "a record for a window that closed with no value"
        corrected = await step(1, partial(1, [(day, 0, {"quotes": 2, "leads": 2})]))
        assert {r["kpi"] for r in corrected} >= {"quotes_sent", "leads_created"}
        assert all(r["final"] and r["correction"] for r in corrected), corrected
        (converted,) = await step(
            2, partial(1, [(day, 1, {"quotes": 2, "leads": 2, "lead_conv": 1})])
        )
        assert converted["kpi"] == "lead_conversion_rate", converted
        assert converted["final"], converted
        assert not converted["correction"], converted
        assert converted["revision"] > max(r["revision"] for r in corrected)

    asyncio.run(run())


@pytest.mark.parametrize("kind", ["minute", "day"])
def test_a_window_past_its_retention_before_stream_time_closed_it_gets_its_final(
    kind: str,
) -> None:
    """In a fast replay the smallest entity partition's stream time (which closes windows)
    can lag the newest event time (which removes them past their retention) by days: a CRM
    replay left 95,000 minute and 5,000 day KPI windows with updates on kpi.updates and no
    final record. A window removed unclosed is closed first: no event can change it."""
    sent: list[dict[str, Any]] = []
    redis: dict[Any, Any] = {}
    start, end = WINDOWS.span(kind, T0)
    cell = cell_key(kind, start, "team", "Nord")
    gone_ms = end * 1000 + Retention().of(kind)  # event time: past its retention
    lagging_ms = end * 1000 - 1  # stream time: the window has not even ended

    async def run() -> Publisher:
        send_updates, sends = _sending(sent)
        pub = publisher(send_updates=send_updates, sends=sends)
        _redis(pub, redis)
        apply(pub, 0, partial(0, [(cell, 0, {"orders": 2, "rev_c": 30_000})]))
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()  # published, open
        for ep in (0, 1):
            apply(pub, 1 + ep, {"wm": ep, "t": lagging_ms, "e": gone_ms})
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()
        return pub

    pub = asyncio.run(run())
    updates = {r["kpi"] for r in sent if not r["final"]}
    finals = Counter(r["kpi"] for r in sent if r["final"])
    assert {"orders", "revenue"} <= updates
    assert updates <= finals.keys(), f"updates and no final: {sorted(updates - finals.keys())}"
    assert set(finals.values()) == {1}, finals
    assert next(r for r in sent if r["final"] and r["kpi"] == "revenue")["value"] == "300"
    assert pub.cells.get(cell) is None, "removed past its retention"
    assert not [key for key in redis if f":{kind}:{start}:" in key[0]], "left in Redis"


@pytest.mark.parametrize("kind", ["minute", "day"])
@pytest.mark.parametrize("closed_by", ["stream time", "its retention"])
def test_a_window_closed_and_removed_in_one_batch_keeps_its_final_through_a_kill(
    kind: str, closed_by: str
) -> None:
    """Markers close a window and pass its retention in one batch (a replay's event time
    runs days ahead of the flushes). The flush writes its table before its records: it
    deleted the window there, and a worker killed before the records went out left its
    successor no cell to publish again (``po``): the final record was lost for good. The
    table now keeps the window, as published, until its records are in Kafka; the next
    owner sends the final record (again, if it went out) and then removes it."""
    tables: dict[str, dict[str, Any]] = {"cells": {}, "base": {}, "marks": {}}
    start, end = WINDOWS.span(kind, T0)
    cell = cell_key(kind, start, "team", "Nord")
    gone_ms = end * 1000 + Retention().of(kind)  # event time: past its retention
    now_ms = gone_ms if closed_by == "stream time" else end * 1000 - 1

    def markers(pub: Publisher) -> None:
        for ep in (0, 1):
            apply(pub, 1 + ep, {"wm": ep, "t": now_ms, "e": gone_ms})

    async def killed(at: str, fresh: bool) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        send_updates, sends = _sending(sent)
        armed = [False]

        async def dies(records: list[tuple[bytes, bytes]]) -> list[Any]:
            if armed[0] and at == "records":
                raise _Killed  # the table written, the records not sent
            return await send_updates(records)

        pub = publisher(send_updates=dies, sends=sends, **tables)
        _redis(pub, {})
        apply(pub, 0, partial(0, [(cell, 0, {"orders": 2, "rev_c": 30_000})]))
        if not fresh:
            pub.pending.append((_Stream(), _Event(Q)))
            await pub.flush()  # published, open, acked
        markers(pub)
        pub.pending.append((_Stream(), _Event(Q)))
        armed[0] = True
        if at == "redis":
            _redis(pub, {}, killed=True)  # records and table deletion done, acks not
        with pytest.raises(_Killed):
            await pub.flush()
        return sent

    async def next_owner(fresh: bool) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        send_updates, sends = _sending(sent)
        pub = publisher(send_updates=send_updates, sends=sends, **tables)
        _redis(pub, {})
        if fresh:  # opened in the killed batch: its partial comes again too
            apply(pub, 0, partial(0, [(cell, 0, {"orders": 2, "rev_c": 30_000})]))
        markers(pub)  # again: they were not acked
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()
        return sent

    for at, fresh in itertools.product(("records", "redis"), (False, True)):
        tables = {"cells": {}, "base": {}, "marks": {}}
        before = asyncio.run(killed(at, fresh))
        after = asyncio.run(next_owner(fresh))
        finals = [r for r in before + after if r["final"] and r["kpi"] == "revenue"]
        assert finals, f"killed at {at} (opened in the batch: {fresh}): its final is lost"
        assert {(r["value"], r["revision"]) for r in finals} == {("300", finals[0]["revision"])}
        assert not [r for r in after if not r["final"]], after
        assert cell not in tables["cells"], f"killed at {at}: not removed by the next owner"


def test_history_gets_no_updates_its_final_record_is_its_first() -> None:
    """A window past its end and grace on the wall clock (a replay, an import) changes only
    because a backlog is applied: its values then are partial, and a CRM replay published
    each window once or twice before its final (~470,000 of ~750,000 records). It gets no
    update: its final record, with every value, is its first, and a late event after it is
    a correction as before. A window of today, in the same batch, gets its updates."""
    sent: list[dict[str, Any]] = []
    send_updates, sends = _sending(sent)
    pub = publisher(send_updates=send_updates, sends=sends)
    pub.wall_ms = lambda: T0 + 86_400_000 + 600_001  # the minute of T0 + a day is history
    redis: dict[Any, Any] = {}
    _redis(pub, redis)
    old, today = (parent("minute", at) for at in (T0, T0 + 86_400_000 + 600_000))

    async def flush(offset: int, message: dict[str, Any]) -> list[dict[str, Any]]:
        start = len(sent)
        apply(pub, offset, message)
        pub.pending.append((_Stream(), _Event(Q)))
        await pub.flush()
        return sent[start:]

    async def run() -> None:
        opened = await flush(0, partial(0, [(old, 0, {"orders": 1, "rev_c": 100}),
                                            (today, 0, {"orders": 2, "rev_c": 500})]))  # fmt: skip
        assert {r["window"]["start"] for r in opened} == {_start(today)}, opened
        assert not [key for key in redis if f":minute:{_start_s(old)}:" in key[0]]
        more = await flush(1, partial(1, [(old, 1, {"orders": 1, "rev_c": 200})]))
        assert more == [], "an update of history"
        closed = []
        for ep in (0, 1):  # stream time past the old minute's grace, not today's
            closed += await flush(2 + ep, {"wm": ep, "t": T0 + 3_600_000, "e": T0 + 3_600_000})
        revenue = [r for r in closed if r["kpi"] == "revenue"]
        assert [(r["window"]["start"], r["value"], r["final"]) for r in revenue] == [
            (_start(old), "3", True)
        ], closed
        corrected = await flush(4, partial(0, [(old, 4, {"orders": 2, "rev_c": 300})]))
        assert {(r["kpi"], r["value"]) for r in corrected} >= {("revenue", "5")}, corrected
        assert all(r["final"] and r["correction"] for r in corrected), corrected

    asyncio.run(run())


def _start_s(cell: str) -> int:
    return split_cell_key(cell)[1]


def _start(cell: str) -> str:
    return datetime.fromtimestamp(_start_s(cell), ZONE).isoformat()


def test_the_expiry_index_holds_a_window_once_however_many_cells_it_has() -> None:
    """The cells of a window past its retention are found in the table then: what stays in
    memory until then is one entry per window, not per cell (two days of minute cells were
    ~2.7 heap entries per event, growing for the whole retention)."""
    pub = publisher()
    minutes = [T0 + n * 60_000 for n in range(3)]
    offset = 0
    for at_ms in minutes:
        start = WINDOWS.span("minute", at_ms)[0]
        cells = [(cell_key("minute", start, "rep", f"r-{n}"), 0, {"calls": 1}) for n in range(50)]
        cells.append((shard("minute", at_ms, "ana"), 0, {"reps": {"ana": 1}}))
        apply(pub, offset, partial(0, cells))
        offset += 1
    assert len(pub.expiring[Q]) == len(minutes)
    # 50 rep cells, a shard and its parent (the team cell counting its reps) a minute
    assert len(pub.cells.writeback.dirty[Q]) == len(minutes) * 52
    # Past the retention of the first two minutes only: their cells, shards too, go.
    first_end = WINDOWS.span("minute", minutes[1])[1]
    gone_ms = first_end * 1000 + Retention().of("minute")
    for ep in (0, 1):
        apply(pub, offset, {"wm": ep, "t": gone_ms, "e": gone_ms})
        offset += 1
    kept = {split_cell_key(cell)[1] for cell, value in pub.cells.items()}
    assert kept == {WINDOWS.span("minute", minutes[2])[0]}
    assert len([cell for cell, _ in pub.cells.items()]) == 52
    assert len(pub.expiring[Q]) == 1
