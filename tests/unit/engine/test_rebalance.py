"""After a rebalance, partitions with nothing committed go back to their earliest offset."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import faust
from aiokafka.structs import TopicPartition as AioTP
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.engine.rebalance import DRAIN_SOURCE_SHA256, Consumer, left_unsought

ACKED = {"sales.orders", "internal.entities"}


def test_partitions_with_nothing_committed_are_left_unsought_by_aiokafka() -> None:
    committed = {
        TP("sales.orders", 1): None,  # never committed: the two-worker failure
        TP("sales.orders", 0): 0,  # aiokafka seeks only above 0
        TP("sales.orders", 2): 7,
        TP("internal.entities", 3): None,
        TP("app-cells-changelog", 0): None,  # table recovery positions changelogs
    }
    assert left_unsought(committed, ACKED.__contains__) == [
        TP("internal.entities", 3),
        TP("sales.orders", 0),
        TP("sales.orders", 1),
    ]


async def test_seek_to_committed_sends_them_back_to_their_earliest_offset(
    monkeypatch: Any,
) -> None:
    committed = {TP("sales.orders", 0): None, TP("sales.orders", 1): 7}
    seeks: list[tuple[TP, int]] = []

    async def faust_seek_to_committed(self: Any) -> dict[TP, int | None]:
        return committed

    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", faust_seek_to_committed)
    consumer: Any = object.__new__(Consumer)  # no broker: only the seek logic
    consumer.positioned, consumer.positionings = {}, 0
    topics = type("Topics", (), {"acks_enabled_for": staticmethod(ACKED.__contains__)})
    consumer.app = type("App", (), {"topics": topics()})()

    async def earliest_offsets(*tps: TP) -> dict[TP, int]:
        return {tp: 3 for tp in tps}  # retention removed the first 3

    async def position(tp: TP) -> int:
        return 12  # where the fetcher was: past what faust dropped

    async def seek(tp: TP, offset: int) -> None:
        seeks.append((tp, offset))

    rewinds: list[int] = []
    consumer.transport = type(
        "Transport", (), {"on_rewind": staticmethod(lambda: rewinds.append(1))}
    )()
    consumer.earliest_offsets, consumer.position, consumer._seek = earliest_offsets, position, seek
    assert await consumer.seek_to_committed() == committed
    assert seeks == [(TP("sales.orders", 0), 3)]
    assert rewinds == [1]  # the fetcher was past the start: salespulse_rebalance_rewinds_total
    # Where each was positioned, for the stages' offset guards.
    assert consumer.positioned == {TP("sales.orders", 0): (1, 3), TP("sales.orders", 1): (1, 7)}


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
            yield (
                TP("marketing.spend", 1),
                SimpleNamespace(offset=offset, topic="t", key=None, value=None),
            )

    async def callback(message: Any) -> None:
        nonlocal rebalanced
        if message.offset == 1 and not rebalanced:
            rebalanced = True
            consumer.suspend_flow.set()  # stop_flow
            consumer._read_offset[TP("marketing.spend", 1)] = None  # seek back to 0
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
    consumer, fetcher = _drain_consumer([[0, 1, 2], [0, 1, 2]])
    await asyncio.wait_for(Consumer._drain_messages(consumer, fetcher), 5)
    assert consumer.handed == [0, 0, 1, 2]
    assert consumer._read_offset[TP("marketing.spend", 1)] == 2


def test_the_fetch_loop_copied_is_the_installed_faust_s() -> None:
    source = inspect.getsource(faust_consumer.Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == DRAIN_SOURCE_SHA256, (
        f"faust-streaming {faust.__version__} has another fetch loop than the one "
        "streams/engine/rebalance.py's Consumer._drain_messages copies (0.15.3): read "
        "faust/transport/consumer.py's _drain_messages again, port the change (mark a "
        "message read only once handed) and update DRAIN_SOURCE_SHA256"
    )


def test_the_fetch_position_is_read_from_aiokafka_s_state_without_the_consumer_thread() -> None:
    """``await consumer.position(tp)`` runs in faust's consumer thread and waits for a valid
    position (forever during a broker outage, and that thread then never stops): the
    offset guard's net reads the state instead, None when there is no valid one."""
    states = {
        AioTP("sales.orders", 0): SimpleNamespace(has_valid_position=True, position=42),
        AioTP("sales.orders", 1): SimpleNamespace(has_valid_position=False, position=None),
    }
    assignment = SimpleNamespace(state_value=states.get)
    aio = SimpleNamespace(
        _subscription=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment))
    )
    consumer: Any = object.__new__(Consumer)
    consumer._thread = SimpleNamespace(_ensure_consumer=lambda: aio)
    assert consumer.fetch_position(TP("sales.orders", 0)) == 42
    assert consumer.fetch_position(TP("sales.orders", 1)) is None  # awaiting a reset
    assert consumer.fetch_position(TP("sales.orders", 2)) is None  # not assigned
    aio._subscription.subscription = None  # unsubscribed (stopping)
    assert consumer.fetch_position(TP("sales.orders", 0)) is None
