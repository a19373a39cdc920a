"""faust's fetch path, mended: every message fetched from aiokafka reaches the agents,
also when a rebalance or a pause cuts a batch (streams/engine/faust/fetch_loop.py)."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
from collections import defaultdict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP

from streams.engine.faust.fetch_loop import (
    DRAIN_SOURCE_SHA256,
    GETMANY_SOURCE_SHA256,
    THREAD_GETMANY_SOURCE_SHA256,
    Resumed,
    left_behind,
    start,
)
from streams.engine.faust.rebalance import Consumer

SPEND, ORDERS = TP("marketing.spend", 1), TP("sales.orders", 0)


@pytest.mark.parametrize(
    ("owner", "name", "digest"),
    [
        (faust_consumer.Consumer, "_drain_messages", DRAIN_SOURCE_SHA256),
        (faust_consumer.Consumer, "getmany", GETMANY_SOURCE_SHA256),
        (AIOKafkaConsumerThread, "getmany", THREAD_GETMANY_SOURCE_SHA256),
    ],
)
def test_the_loops_copied_are_the_installed_faust_s(owner: Any, name: str, digest: str) -> None:
    source = inspect.getsource(getattr(owner, name))
    assert hashlib.sha256(source.encode()).hexdigest() == digest, (
        f"faust-streaming {faust.__version__} has another {owner.__name__}.{name} than the one "
        "streams/engine/faust/fetch_loop.py copies (0.15.3): read faust/transport/consumer.py "
        "again, port the change (module docstring) and update the digest"
    )


def test_left_behind_only_where_the_position_is_still_after_the_batch() -> None:
    dropped = {SPEND: 1, ORDERS: 40, TP("sales.orders", 1): 5}
    fetched_to = {SPEND: 2, ORDERS: 44, TP("sales.orders", 1): 9}
    position = {
        SPEND: 3,  # right after the batch: nothing moved it, the messages are lost
        ORDERS: 38,  # a rebalance's seek to the committed offset: they are read again
        TP("sales.orders", 1): None,  # being reset (a reassignment): read again
    }
    assert left_behind(dropped, fetched_to, position) == {SPEND: 1}


def _record(offset: int) -> Any:
    return SimpleNamespace(offset=offset)


def _getmany_consumer(
    records: dict[TP, list[Any]], positions: dict[TP, int], on_yield: Callable[[Any], None]
) -> tuple[Any, list[tuple[TP, int]]]:
    """A Consumer with no broker: its fetch returns ``records`` once, aiokafka's positions
    are ``positions``; ``on_yield`` runs for every message yielded (to stage a rebalance)."""
    seeks: list[tuple[TP, int]] = []
    consumer: Any = object.__new__(Consumer)
    consumer.flow_active = True
    consumer._stopped, consumer._crashed = asyncio.Event(), asyncio.Event()  # should_stop
    consumer._buffered_partitions = set()
    consumer.app = SimpleNamespace(
        consumer_generation_id=1, monitor=SimpleNamespace(track_tp_end_offset=lambda tp, o: 0)
    )
    consumer.scheduler = DefaultSchedulingStrategy()
    consumer.highwater = lambda tp: 100
    consumer.log = SimpleNamespace(dev=lambda *args: None, warning=lambda *args: None)

    def to_message(tp: TP, record: Any) -> Any:
        on_yield(record)
        return record

    consumer._to_message = to_message

    async def wait_next_records(timeout: float) -> Any:  # noqa: ASYNC109 (faust's signature)
        return records, set(records)

    consumer._wait_next_records = wait_next_records
    states = {
        tp: SimpleNamespace(has_valid_position=True, position=offset)
        for tp, offset in positions.items()
    }

    def seek(tp: TP, offset: int) -> None:
        seeks.append((tp, offset))
        states[tp].position = offset

    assignment = SimpleNamespace(state_value=states.get)
    aio = SimpleNamespace(
        _subscription=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment)),
        seek=seek,
    )

    # faust's consumer thread: its seek is aiokafka's (no thread loop here: done at once)
    consumer._thread = SimpleNamespace(_ensure_consumer=lambda: aio, seek=seek)
    return consumer, seeks


def _first_of(hooks: list[Callable[[Any], None]]) -> Callable[[Any], None]:
    return lambda record: hooks[0](record)


async def _yielded(consumer: Any, getmany: Any) -> list[tuple[TP, int]]:
    return [(tp, message.offset) async for tp, message in getmany(consumer, timeout=1.0)]


@pytest.mark.parametrize("cut", ["flow suspended", "generation changed"])
async def test_a_batch_cut_by_a_rebalance_is_fetched_again(cut: str) -> None:
    """A batch of two partitions is cut after 2 messages: faust's getmany drops the rest
    with aiokafka's positions past them (nothing reads them again); here the fetcher is
    sought back to the first message not yielded of each partition."""
    records = {SPEND: [_record(0), _record(1), _record(2)], ORDERS: [_record(7), _record(8)]}
    positions = {SPEND: 3, ORDERS: 9}  # aiokafka moved past what it handed faust

    def staged(consumer: Any) -> Callable[[Any], None]:
        seen = 0

        def on_yield(record: Any) -> None:
            nonlocal seen
            seen += 1
            if seen == 2:  # a rebalance starts while the agents take the second message
                if cut == "flow suspended":
                    consumer.flow_active = False
                else:
                    consumer.app.consumer_generation_id = 2

        return on_yield

    for getmany, expected_seeks in [
        (faust_consumer.Consumer.getmany, []),  # faust's: offsets 1-2 and 8 are lost
        (Consumer.getmany, [(SPEND, 1), (ORDERS, 8)]),
    ]:
        hooks: list[Callable[[Any], None]] = []
        consumer, seeks = _getmany_consumer(records, dict(positions), _first_of(hooks))
        hooks.append(staged(consumer))
        # Round robin between topics: spend 0, orders 7, then the cut.
        assert await _yielded(consumer, getmany) == [(SPEND, 0), (ORDERS, 7)]
        assert sorted(seeks) == expected_seeks, getmany


async def test_a_partition_paused_meanwhile_is_fetched_again_unless_sought_already() -> None:
    """Messages of a partition no longer active (paused by a rebalance) are skipped. Where
    the rebalance already sought the partition back (its position moved), nothing more is
    done; where nothing moved it, it is sought back to its first skipped message."""
    records = {SPEND: [_record(4), _record(5)], ORDERS: [_record(10), _record(11)]}
    consumer, seeks = _getmany_consumer(records, {SPEND: 6, ORDERS: 3}, lambda record: None)

    async def wait_next_records(timeout: float) -> Any:  # noqa: ASYNC109
        return records, set()  # both paused once fetched

    consumer._wait_next_records = wait_next_records
    reported: list[int] = []
    consumer.transport = SimpleNamespace(on_refetch=lambda: reported.append(1))
    assert await _yielded(consumer, Consumer.getmany) == []
    assert seeks == [(SPEND, 4)]  # ORDERS is at 3: a seek to its committed offset ran
    assert consumer.refetched == 1
    assert reported == [1]  # salespulse_fetch_refetches_total


async def test_a_whole_batch_yielded_seeks_nothing() -> None:
    records = {SPEND: [_record(0), _record(1)], ORDERS: [_record(7)]}
    consumer, seeks = _getmany_consumer(records, {SPEND: 2, ORDERS: 8}, lambda record: None)
    yielded = await _yielded(consumer, Consumer.getmany)
    assert yielded == [(SPEND, 0), (ORDERS, 7), (SPEND, 1)]
    assert seeks == []


async def test_what_a_batch_holds_of_a_partition_sought_meanwhile_is_not_handed() -> None:
    """While the agents take the batch's first message, a stage's guard seeks
    ``marketing.spend/1`` back to 0 (``Consumer._seek``). faust's getmany goes on handing
    offsets 1-2 fetched before the seek (they raise its read offset, and the copies read
    again from 0 are dropped below it); here they are skipped, the other partition is
    handed whole, and nothing is fetched again on top of the seek."""
    records = {SPEND: [_record(0), _record(1), _record(2)], ORDERS: [_record(7), _record(8)]}
    for getmany, expected in [
        (faust_consumer.Consumer.getmany, [(SPEND, 0), (ORDERS, 7), (SPEND, 1), (ORDERS, 8),
                                           (SPEND, 2)]),
        (Consumer.getmany, [(SPEND, 0), (ORDERS, 7), (ORDERS, 8)]),
    ]:  # fmt: skip
        hooks: list[Callable[[Any], None]] = []
        consumer, seeks = _getmany_consumer(records, {SPEND: 3, ORDERS: 9}, _first_of(hooks))
        consumer._thread.seek = lambda tp, offset, into=seeks: into.append((tp, offset))
        guard_seeks: list[Any] = []

        def on_yield(record: Any, consumer: Any = consumer, done: list[Any] = guard_seeks) -> None:
            if not done:  # the guard's seek, made while the first message is handed
                done.append(asyncio.ensure_future(consumer._seek(SPEND, 0)))

        hooks.append(on_yield)
        yielded = []
        async for tp, message in getmany(consumer, timeout=1.0):
            yielded.append((tp, message.offset))
            await asyncio.sleep(0)  # the agents take it: the seek runs
        assert yielded == expected, getmany
        assert seeks == [(SPEND, 0)]  # the guard's seek only: no refetch on top of it


async def test_a_batch_fetched_before_a_requested_seek_ran_is_not_handed() -> None:
    """A seek waits for the consumer thread's next turn (``seek_in_thread``); a batch that
    thread fetched before that turn still comes from before the seek. Its records of the
    partition are skipped from the moment the seek is requested, not from when it ran (in
    a loop run, ``sales.calls/1`` offset 7 was handed right after a rewind to 0)."""
    records = {SPEND: [_record(7), _record(8)], ORDERS: [_record(3)]}
    consumer, seeks = _getmany_consumer(records, {SPEND: 9, ORDERS: 4}, lambda record: None)
    turns: list[Callable[[], None]] = []  # the consumer thread's queue: its turn has not come
    consumer._thread.thread_loop = SimpleNamespace(
        is_closed=lambda: False, is_running=lambda: True, call_soon_threadsafe=turns.append
    )
    consumer.__dict__["fetched_seeks"] = {}  # the batch: fetched with no seek made
    consumer.seek_in_thread(SPEND, 0)
    yielded = [(tp, message.offset) async for tp, message in consumer.getmany(timeout=1.0)]
    assert yielded == [(ORDERS, 3)]
    assert len(turns) == 1  # the seek itself is still to run in the thread
    assert seeks == []
    turns[0]()
    assert seeks == [(SPEND, 0)]


def _drain_consumer(batches: list[list[int]]) -> tuple[Any, Any]:
    """A Consumer with no broker whose ``getmany`` hands ``batches`` of offsets of
    ``marketing.spend/1``, one batch per call; its callback hands a message at once while
    the flow is active. Handing offset 1 the first time, it meets a rebalance: the flow is
    suspended and faust's seek back to 0 resets the read offset (both done by the rebalance
    while the loop waits on the full stream queue), and the message is never handed."""
    consumer: Any = object.__new__(Consumer)
    consumer._loop = asyncio.get_running_loop()
    consumer._stopped, consumer._crashed = asyncio.Event(), asyncio.Event()
    consumer._read_offset = defaultdict(lambda: None)
    consumer.diag = SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None)
    consumer._commit_every = None
    consumer.log = SimpleNamespace(dev=lambda *args: None)
    topics = type("Topics", (), {"acks_enabled_for": staticmethod(lambda topic: True)})
    consumer.app = type("App", (), {"topics": topics()})()
    consumer.suspend_flow = asyncio.Event()
    consumer.handed = []
    fetcher: Any = type("Fetcher", (), {})()
    fetcher._stopped = asyncio.Event()
    calls = iter(range(len(batches) + 1))
    rebalanced = False

    async def getmany(timeout: float) -> Any:  # noqa: ASYNC109 (faust's signature)
        call = next(calls)
        if call == len(batches):
            fetcher._stopped.set()
            return
        consumer.suspend_flow.clear()  # the rebalance is over: the flow resumes
        for offset in batches[call]:
            yield SPEND, SimpleNamespace(offset=offset, topic="t", key=None, value=None)

    async def callback(message: Any) -> None:
        nonlocal rebalanced
        if message.offset == 1 and not rebalanced:
            rebalanced = True
            consumer.suspend_flow.set()  # stop_flow
            consumer._read_offset[SPEND] = None  # seek back to 0
        if consumer.suspend_flow.is_set():
            await asyncio.Event().wait()  # the stream queue stays full: cut off
        consumer.handed.append(message.offset)

    async def no_sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    consumer.getmany, consumer.callback, consumer.sleep = getmany, callback, no_sleep
    return consumer, fetcher


async def test_a_message_cut_off_by_a_suspended_flow_is_not_marked_read() -> None:
    """Offsets 0-2 are fetched, 0 is handed, then a rebalance cuts 1 and 2 off and seeks
    the partition back to 0: the fetcher reads 0-2 again, and all are handed. faust's own
    loop marked 1 and 2 read though never handed (``set_read_offset`` after
    ``wait_first`` whoever won), so it dropped the re-read 0 and 1 below that mark."""
    for drain, handed in [
        (faust_consumer.Consumer._drain_messages, [0, 2]),
        (Consumer._drain_messages, [0, 0, 1, 2]),
    ]:
        consumer, fetcher = _drain_consumer([[0, 1, 2], [0, 1, 2]])
        await asyncio.wait_for(drain(consumer, fetcher), 5)
        assert consumer.handed == handed, drain
    assert consumer._read_offset[SPEND] == 2


async def test_messages_handed_at_once_are_not_raced_and_are_marked_read() -> None:
    """A handing that completes without waiting (the stream's queue has room) makes no task:
    faust's loop made four per message (``wait_first``)."""
    created: list[Any] = []
    loop = asyncio.get_running_loop()

    def factory(loop: Any, coro: Any, **kwargs: Any) -> Any:
        created.append(getattr(coro, "__qualname__", repr(coro)))
        return asyncio.Task(coro, loop=loop, **kwargs)

    for drain, fewest, most in [
        (faust_consumer.Consumer._drain_messages, 4 * 50, None),
        (Consumer._drain_messages, 0, 0),
    ]:
        consumer, fetcher = _drain_consumer([list(range(2, 52))])  # offset 1 never comes
        created.clear()
        loop.set_task_factory(factory)
        try:
            await asyncio.wait_for(drain(consumer, fetcher), 5)
        finally:
            loop.set_task_factory(None)
        assert consumer.handed == list(range(2, 52))
        assert consumer._read_offset[SPEND] == 51
        races = [name for name in created if not name.endswith("_drain_messages")]
        assert len(races) >= fewest, drain
        assert most is None or len(races) <= most, (drain, races)


async def test_a_handing_that_waits_goes_on_where_it_stopped_and_is_marked_read() -> None:
    """The stream's queue is full when offset 0 comes: its handing waits until the agent
    takes one, then completes, and the message is marked read; the next is handed at once."""
    consumer, fetcher = _drain_consumer([[0]])
    room = asyncio.Event()
    steps: list[str] = []

    async def callback(message: Any) -> None:
        steps.append(f"put {message.offset}")
        if message.offset == 0:
            await room.wait()
        consumer.handed.append(message.offset)

    consumer.callback = callback
    draining = asyncio.create_task(Consumer._drain_messages(consumer, fetcher))
    for _ in range(5):
        await asyncio.sleep(0)
    assert consumer.handed == []
    assert steps == ["put 0"]
    room.set()
    await asyncio.wait_for(draining, 5)
    assert consumer.handed == [0]
    assert consumer._read_offset[SPEND] == 0


async def test_a_resumed_handing_passes_on_values_exceptions_and_cancellation() -> None:
    """What ``start`` leaves is driven as the coroutine's own task would have been."""

    async def handing(box: asyncio.Future[int], log: list[str]) -> int:
        try:
            return await box + 1
        except ValueError:
            log.append("caught")
            raise
        finally:
            log.append("finally")

    async def at_once() -> str:
        return "done"

    coro = at_once()
    assert start(coro) is None
    assert coro.cr_frame is None  # ran to its end, never to be awaited again

    loop = asyncio.get_running_loop()
    for outcome in ("value", "error", "cancel"):
        box: asyncio.Future[int] = loop.create_future()
        log: list[str] = []
        resumed = start(handing(box, log))
        assert isinstance(resumed, Resumed)
        assert log == []
        task = asyncio.ensure_future(resumed)
        await asyncio.sleep(0)
        if outcome == "value":
            box.set_result(41)
            assert await task == 42
            assert log == ["finally"]
        elif outcome == "error":
            box.set_exception(ValueError("bad"))
            with pytest.raises(ValueError, match="bad"):
                await task
            assert log == ["caught", "finally"]
        else:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert log == ["finally"]
            assert box.cancelled()


def test_the_fetch_position_is_read_from_aiokafka_s_subscription_state() -> None:
    """What the offset guards' net compares with the offset a stage expects
    (``GuardedStage.resume_silent``): aiokafka's position, None where it is not valid, not
    assigned, or unsubscribed."""
    consumer, _ = _getmany_consumer({}, {SPEND: 3}, lambda record: None)
    assert consumer.fetch_position(SPEND) == 3
    assert consumer.fetch_position(ORDERS) is None  # not assigned
    aio = consumer._thread._ensure_consumer()
    aio._subscription.subscription.assignment.state_value(SPEND).has_valid_position = False
    assert consumer.fetch_position(SPEND) is None  # being reset
    aio._subscription.subscription = None
    assert consumer.fetch_position(SPEND) is None  # unsubscribed: stopping


def test_a_seek_runs_in_the_consumer_thread_and_is_counted_there() -> None:
    """aiokafka runs in faust's consumer thread: its ``seek`` called from the event loop's
    thread deleted buffered records the consumer thread was iterating (a ``KeyError`` in
    ``fetched_records`` crashed the worker). The seek, and its count, run in that thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        consumer: Any = object.__new__(Consumer)
        ran: list[tuple[TP, int, int | None, int | None]] = []
        done = threading.Event()

        def seek(tp: TP, offset: int) -> None:
            ran.append((tp, offset, threading.get_ident(), consumer.__dict__["seeks"].get(tp)))
            done.set()

        consumer._thread = SimpleNamespace(thread_loop=loop, seek=seek)
        consumer.seek_in_thread(SPEND, 4)
        assert done.wait(5)
        assert ran == [(SPEND, 4, thread.ident, 1)]  # counted there, before aiokafka seeks
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def test_a_batch_notes_the_seeks_made_before_the_consumer_thread_fetched_it() -> None:
    """A seek that runs in the consumer thread right after a batch was fetched, while the
    batch travels to the fetch loop, makes the batch's records of its partition stale: the
    batch's count of seeks is taken in that thread, as it is fetched."""
    consumer: Any = object.__new__(Consumer)
    consumer.__dict__["seeks"] = {SPEND: 2}
    aio = SimpleNamespace(_max_poll_records=10)

    async def fetch_records(aio: Any, partitions: Any, **limits: Any) -> Any:
        return {SPEND: [_record(5)]}

    async def call_thread(fetch: Any) -> Any:
        records = await fetch()
        consumer.__dict__["seeks"][SPEND] = 3  # the thread's next turn: a guard's seek
        return records

    consumer._thread = SimpleNamespace(
        _ensure_consumer=lambda: aio, _fetch_records=fetch_records, call_thread=call_thread
    )
    assert await consumer._getmany({SPEND}, 1.0) == {SPEND: [_record(5)]}
    assert consumer.__dict__["fetched_seeks"] == {SPEND: 2}
