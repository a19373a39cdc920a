"""The flush order: one loop flushes the stages in the pipeline's order, each when its cadence
says, each finished before the next begins (streams/engine/checkpoint.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from streams.engine.cadence import Cadence
from streams.engine.checkpoint import Checkpoint, Flushing


class Stopping(Exception):
    """Stands for faust's NotReady: the producer is stopping."""


def stage(
    name: str, log: list[str], *, waiting: bool = True, drained: bool = True,
    fails: type[Exception] | None = None,
) -> Flushing:  # fmt: skip
    async def flush() -> None:
        log.append(f"{name} begins")
        await asyncio.sleep(0)  # another task may run: the next stage must still wait
        if fails is not None:
            raise fails(name)
        log.append(f"{name} ends")

    return Flushing(name, Cadence(every_s=0.5, gap_s=0.05), flush, lambda: waiting, lambda: drained)


def clock_at(now: list[float]) -> Callable[[], float]:
    return lambda: now[0]


async def test_every_stage_due_flushes_in_order_each_finished_before_the_next() -> None:
    log: list[str] = []
    stages = [stage(name, log) for name in ("ingest", "entity stage", "publisher")]
    assert await Checkpoint(stages, clock=clock_at([100.0])).round() == [
        "ingest", "entity stage", "publisher"
    ]  # fmt: skip
    assert log == [
        "ingest begins", "ingest ends", "entity stage begins", "entity stage ends",
        "publisher begins", "publisher ends",
    ]  # fmt: skip


async def test_a_stage_not_due_is_passed_over() -> None:
    now = [100.0]
    log: list[str] = []
    busy = stage("entity stage", log, drained=False)  # messages still queued: batches grow
    idle = stage("publisher", log, waiting=False)  # nothing to flush: the clock only
    checkpoint = Checkpoint([stage("ingest", log), busy, idle], clock=clock_at(now))
    await checkpoint.round()  # the first flush of each
    now[0] = 100.06  # past the gap, before the clock
    assert await checkpoint.round() == ["ingest"]
    now[0] = 100.5  # the clock: every stage
    assert await checkpoint.round() == ["ingest", "entity stage", "publisher"]


async def test_a_stopping_producer_ends_the_round_and_the_rest_waits() -> None:
    log: list[str] = []
    stages = [stage("ingest", log), stage("entity stage", log, fails=Stopping),
              stage("publisher", log)]  # fmt: skip
    checkpoint = Checkpoint(stages, stopping=(Stopping,), clock=clock_at([100.0]))
    assert await checkpoint.round() == ["ingest"]
    assert "publisher begins" not in log  # not flushed, so not acked: read again


async def test_any_other_failure_is_raised() -> None:
    stages = [stage("ingest", [], fails=RuntimeError)]
    with pytest.raises(RuntimeError):
        await Checkpoint(stages, stopping=(Stopping,), clock=clock_at([100.0])).round()


async def test_the_loop_runs_rounds_until_told_to_stop() -> None:
    log: list[str] = []
    rounds = [0]

    def should_stop() -> bool:
        rounds[0] += 1
        return rounds[0] > 3

    checkpoint = Checkpoint([stage("ingest", log)])
    checkpoint.stages[0].cadence.every_s = 0.0  # due at every round
    checkpoint.stages[0].cadence.gap_s = 0.0
    checkpoint.stages[0].cadence.max_s = 0.0  # not put off for its flushes' duration
    await asyncio.wait_for(checkpoint.run(should_stop), 5)
    assert log.count("ingest ends") == 3


def test_a_checkpoint_has_stages() -> None:
    with pytest.raises(ValueError, match="needs the stages"):
        Checkpoint([])


async def test_a_long_flush_is_timed_and_puts_off_that_stage_only() -> None:
    now = [100.0]
    log: list[str] = []

    async def slow_flush() -> None:
        now[0] += 0.3  # the publisher's flush takes 0.3 s of the clock
        log.append("publisher flushed")

    slow = Flushing("publisher", Cadence(every_s=0.5, gap_s=0.05), slow_flush,
                    lambda: True, lambda: True)  # fmt: skip
    checkpoint = Checkpoint([stage("ingest", log), slow], clock=clock_at(now))
    assert await checkpoint.round() == ["ingest", "publisher"]
    assert slow.cadence.took_s == pytest.approx(0.3)
    now[0] = 100.5  # drained and past the gap: the ingest flushes; the publisher waits
    assert await checkpoint.round() == ["ingest"]
    now[0] = 101.21  # 1.2 s (0.3 s over the share, 0.25) after its flush began
    assert await checkpoint.round() == ["ingest", "publisher"]
