"""After a rebalance, partitions with nothing committed go back to their earliest offset."""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.engine.faust.rebalance import Consumer, left_unsought

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
    consumer.log = type("Log", (), {"dev": staticmethod(lambda *args: None)})()
    # Offsets up to 11 of sales.orders/0 were handed before the seek (and dropped by the
    # stages: not positioned yet); faust's read offset would drop their re-reads.
    consumer._read_offset = {TP("sales.orders", 0): 11}
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
    # Read again from 3: the read offset is reset with the seek, as faust's ``seek`` does.
    assert consumer._read_offset == {TP("sales.orders", 0): 3}
