"""GuardedStage (streams.engine.faust.rebalance): what a stage does with the guard's verdicts. A
gap sought back in vain is gone past only on the broker's word that it holds no message:
never because the seeks did not bring its messages in time (they would be lost)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.engine.faust.gaps import OffsetGuard
from streams.engine.faust.rebalance import GuardedStage

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


def test_a_silent_partition_of_the_stage_s_topics_is_sought_back_through_faust_s_seek() -> None:
    """Offsets 0-2 of the stage's own partition were lost with nothing after them (the
    highwater is 3, fetched to 3, nothing handed): once silent for ``silent_s`` it is sought
    back to 0 through ``consumer.seek`` (which resets faust's read offset) and counted as a
    gap; not while messages wait in the stage's queue (the agent is busy), nor while the
    fetcher has not handed faust the messages (faust's flow control left the partition out
    of the fetch). A partition of another stage's topic, silent too, is left to that
    stage."""
    other = TP("t.internal.entities", 0)
    consumer, gaps = Consumer(), []
    consumer.positioned[other] = (1, 0)
    consumer.highwater = {PART: 3, other: 5}.get  # type: ignore[attr-defined]
    fetched_to = {PART: 0, other: 5}  # the fetcher has not handed faust offset 0 yet

    consumer.fetch_position = fetched_to.get  # type: ignore[attr-defined]
    app = SimpleNamespace(consumer=consumer, should_stop=False)
    consumer.should_stop = False  # type: ignore[attr-defined]
    guarded = GuardedStage(app, "publisher", gaps.append, Probe(), frozenset({PART.topic}))  # type: ignore[arg-type]
    guarded.guard = OffsetGuard(silent_s=0.0)
    queued = [1]  # messages wait in the stage's stream queue: the agent is busy
    iterated = SimpleNamespace(queue=SimpleNamespace(empty=lambda: not queued))
    root = SimpleNamespace(_root=None, _subscribers=[iterated])  # faust's topic channel
    guarded.watch(SimpleNamespace(channel=SimpleNamespace(_root=root, queue=None)))
    fetched_to[PART] = 3  # fetched, but they wait in the queue: not lost
    for _ in range(3):
        asyncio.run(guarded.resume_silent())
    assert consumer.seeks == []
    fetched_to[PART] = 0
    queued.clear()
    asyncio.run(guarded.resume_silent())  # the clocks start
    assert consumer.seeks == []
    asyncio.run(guarded.resume_silent())  # silent, but not fetched yet: it waits
    assert consumer.seeks == []
    fetched_to[PART] = 3  # offsets 0-2 fetched, none handed: lost
    asyncio.run(guarded.resume_silent())
    assert consumer.seeks == [0]
    assert gaps == ["publisher"]
    app.should_stop = True  # a crash after expired sends: no call to the consumer thread
    asyncio.run(guarded.resume_silent())
    asyncio.run(guarded.resume_silent())
    assert consumer.seeks == [0]


def test_each_rebalance_s_first_unpositioned_drop_is_logged_and_its_clock_starts_anew(
    caplog: Any, monkeypatch: Any
) -> None:
    """Messages handed before faust positions the partition are dropped (read again after
    the seek). The first of each rebalance says so; once positioned, the partition's
    "not positioned for 30 s" clock is forgotten, so a later rebalance starts it afresh
    (it used to run on from the first rebalance, and warned at once)."""
    clock = [0.0]
    monkeypatch.setattr("streams.engine.faust.rebalance.time.monotonic", lambda: clock[0])
    guarded, consumer, _ = stage(Probe(False))  # the gap at offset 3 holds messages
    del consumer.positioned[PART]
    with caplog.at_level("INFO", logger="streams.engine.faust.rebalance"):
        assert admit(guarded, 0) is None
        assert admit(guarded, 1) is None  # the same rebalance: not logged again
        clock[0] = 5.0
        consumer.positioned[PART] = (1, 0)
        assert admit(guarded, 3) is None  # positioned: a gap (sought back), not a drop
        clock[0] = 100.0
        del consumer.positioned[PART]  # the next rebalance, long after
        assert admit(guarded, 2) is None
    drops = [r.getMessage() for r in caplog.records if "not positioned since" in r.getMessage()]
    assert len(drops) == 2, drops
    assert "offset 0" in drops[0]
    assert "offset 2" in drops[1]
    assert not [r for r in caplog.records if "for 30 s" in r.getMessage()]


def test_run_hands_the_admitted_events_in_order_and_flushes_when_full() -> None:
    """A stage's agent loop: an event past a gap is not handed (sought back instead); the
    others go to the stage in order, each recorded done, and the stage flushes when full."""
    guarded, consumer, _ = stage(Probe(False))
    handed: list[int] = []
    flushes: list[list[int]] = []

    class Staged:
        def full(self) -> bool:
            return len(handed) % 2 == 0

        async def flush(self) -> None:
            flushes.append(list(handed))

    class Manual:
        async def events(self) -> Any:
            for offset in (0, 1, 5, 2):  # 5: offsets 2 to 4 missing, sought back to 2
                yield event(offset)

    channel = SimpleNamespace(_root=None, _subscribers=[])
    stream = SimpleNamespace(channel=channel, noack=Manual)

    async def handle(manual: Any, handed_event: Any) -> None:
        assert isinstance(manual, Manual)
        handed.append(handed_event.message.offset)

    asyncio.run(guarded.run(stream, handle, Staged()))
    assert handed == [0, 1, 2]
    assert flushes == [[0, 1]]
    assert consumer.seeks == [2]
    assert guarded.queue_empty is not None  # watched: the checkpoint can ask
    assert guarded.queue_empty()
