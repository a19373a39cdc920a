"""Faust's Kafka transport, with the seek after a rebalance made to lose nothing.

When a rebalance suspends the flow, faust-streaming 0.15 drops what is in flight to its
agents (queued in their streams, or waiting to be queued) and then seeks every partition
back to its committed offset, so that it is read again. aiokafka's ``seek_to_committed``
only seeks where the committed offset is above 0: a partition with nothing committed yet
(a new topic, a first run) stays where the fetcher was, past the dropped messages, and
they are never read. Here such a partition goes back to its earliest offset, which is
what ``auto_offset_reset="earliest"`` would have given it; what it re-reads is
deduplicated downstream (offset marks and event ids).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.metrics import PipelineStats

log = logging.getLogger(__name__)


def left_unsought(committed: Mapping[TP, int | None], acked: Callable[[str], bool]) -> list[TP]:
    """The partitions of acked topics (an agent's input: not a table changelog, which
    table recovery positions itself) that ``seek_to_committed`` left where they were:
    nothing committed, or 0."""
    return sorted(tp for tp, offset in committed.items() if not offset and acked(tp.topic))


class Consumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer; ``seek_to_committed`` also seeks partitions with nothing
    committed (module docstring)."""

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        rewind = left_unsought(committed, self.app.topics.acks_enabled_for)
        if rewind:
            earliest = await self.earliest_offsets(*rewind)
            for tp in rewind:
                position = await self.position(tp)
                start = earliest.get(tp) or 0
                if position is not None and position > start:
                    cast(Transport, self.transport).on_rewind()
                    log.info(
                        "%s/%s has no committed offset and was at %s after a rebalance: "
                        "back to its earliest offset %s (what faust dropped is read again)",
                        tp.topic, tp.partition, position, start,
                    )  # fmt: skip
                await self._seek(tp, start)
        return committed


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`Consumer`; ``on_rewind`` is called for every
    partition sent back past what the fetcher had read."""

    Consumer = Consumer
    on_rewind: Callable[[], None] = staticmethod(lambda: None)


def install(app: Any, stats: PipelineStats) -> None:
    """Give ``app`` this transport (before anything has created faust's own); rewinds are
    counted in ``stats``."""
    if app._transport is not None:
        raise RuntimeError("install the transport before the app creates its own")
    transport = Transport(app.conf.broker_consumer, app)

    def rewound() -> None:
        stats.rebalance_rewinds += 1

    transport.on_rewind = rewound
    app.transport = transport
