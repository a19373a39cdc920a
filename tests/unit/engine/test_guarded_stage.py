"""GuardedStage (streams.engine.rebalance): what a stage does with the guard's verdicts. A
gap sought back in vain is gone past only on the broker's word that it holds no message:
never because the seeks did not bring its messages in time (they would be lost)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.engine.gaps import OffsetGuard
from streams.engine.rebalance import GuardedStage

PART = TP("t.internal.cells", 0)


class Probe:
    """The broker's answers, in order: whether a gap holds no message (None: cannot say)."""

    def __init__(self, *answers: bool | None) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[int, int]] = []

    async def empty(self, topic: str, partition: int, expected: int, handed: int) -> bool | None:
        self.asked.append((expected, handed))
        return self.answers.pop(0)


class Consumer:
    def __init__(self) -> None:
        self.positioned = {PART: (1, 0)}
        self.seeks: list[int] = []

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append(offset)


def event(offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(topic=PART.topic, partition=0, offset=offset))


def stage(probe: Probe) -> tuple[GuardedStage, Consumer, list[str]]:
    consumer, gaps = Consumer(), []
    guarded = GuardedStage(SimpleNamespace(consumer=consumer), "publisher", gaps.append, probe)  # type: ignore[arg-type]
    guarded.guard = OffsetGuard(retry_s=0.0, tries=1)  # stuck at the second look
    return guarded, consumer, gaps


def admit(guarded: GuardedStage, offset: int) -> tuple[int, int] | None:
    return asyncio.run(guarded.admit(event(offset)))


def test_a_gap_holding_messages_is_sought_back_again_however_many_tries() -> None:
    guarded, consumer, gaps = stage(Probe(False, False, False, False))
    guarded.done(event(0), (1, 0))
    for _ in range(4):  # seek, stuck (the broker: messages there), seek, stuck...
        assert admit(guarded, 9) is None  # offset 9 is never processed past 1-8
    assert consumer.seeks == [1, 1, 1, 1]
    assert len(gaps) == 4


def test_a_stuck_gap_the_broker_cannot_see_into_is_not_skipped_either() -> None:
    guarded, consumer, _ = stage(Probe(False, None))
    guarded.done(event(0), (1, 0))
    assert admit(guarded, 9) is None
    assert admit(guarded, 9) is None
    assert consumer.seeks == [1, 1]


def test_a_stuck_gap_the_broker_says_is_empty_is_gone_past() -> None:
    probe = Probe(False, True)
    guarded, consumer, _ = stage(probe)
    guarded.done(event(0), (1, 0))
    assert admit(guarded, 9) is None
    assert admit(guarded, 9) == (1, 0)  # compaction or markers: offset 9 is processed
    assert probe.asked == [(1, 9), (1, 9)]
    assert consumer.seeks == [1]
