"""The flush order: one loop flushes the pipeline's stages, in the pipeline's order, each when
its cadence says (``streams.engine.cadence``). No faust here: ``streams.app`` wires the stages
in.

The order is the pipeline's: the ingest (routed items sent, then its inputs acked), the entity
stage (tables, partial cells sent, then its input acked), the publisher (Redis and
``kpi.updates``, then its input acked). A stage flushes only what it has processed, and each
flush finishes (its sends confirmed, its acks given) before the next stage's starts, so what a
stage reads from the one before it is already in Kafka.

A flush that finds the producer stopping (``stopping``: faust's ``NotReady``) ends the round:
what it did not flush is not acked, so it is read again after the restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from streams.engine.cadence import Cadence

log = logging.getLogger(__name__)


@dataclass
class Flushing:
    """One stage as the checkpoint sees it."""

    name: str
    cadence: Cadence
    flush: Callable[[], Awaitable[None]]
    waiting: Callable[[], bool]  # messages processed and not flushed
    drained: Callable[[], bool]  # its stream queue is empty


class Checkpoint:
    """Flushes ``stages`` in their order, each when due."""

    def __init__(
        self,
        stages: Sequence[Flushing],
        stopping: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not stages:
            raise ValueError("a checkpoint needs the stages it flushes")
        self.stages, self.stopping, self.clock = list(stages), stopping, clock

    @property
    def tick_s(self) -> float:
        """How often the loop asks the stages whether they are due."""
        return min(stage.cadence.tick_s for stage in self.stages)

    async def round(self) -> list[str]:
        """Flush every stage that is due, in order; the names of those flushed."""
        flushed: list[str] = []
        try:
            for stage in self.stages:
                if stage.cadence.due(self.clock(), stage.waiting(), stage.drained()):
                    began = self.clock()
                    stage.cadence.flushed(began)
                    await stage.flush()
                    stage.cadence.flushed(began, self.clock())  # its cost: the next waits
                    flushed.append(stage.name)
        except self.stopping:  # what was not flushed is not acked, so redelivered
            log.info("flush skipped: the producer is stopping")
        return flushed

    async def run(self, should_stop: Callable[[], bool]) -> None:
        """Rounds until ``should_stop`` (a loop, not faust's ``app.timer``: a flush longer
        than the tick is no "overlapping" warning)."""
        while not should_stop():
            await asyncio.sleep(self.tick_s)
            await self.round()
