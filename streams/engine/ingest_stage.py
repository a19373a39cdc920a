"""The ingest stage: validate each input event, dead-letter what is invalid, join the
reference data, and route one item per role to the entity partitions (``routing.py``); its
flush sends what it routed, one message per entity partition (``outbox.py``), checks the
sends, then acks the inputs. No faust here: ``streams.app`` hands it each message (topic,
partition, offset, timestamp) and value, and acks through the sources it is given.

Every event carries the cluster watermark as the ingest saw it (``w``), from a view of this
worker's input partitions cached for up to 20 ms (``streams.engine.watermark.clock``): the
ingest routes hundreds of events in 20 ms, so a partition's first event must not wait, and
the view follows at once a partition that held or set the watermark (``moved``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from streams.contracts.enriched import EnrichedEvent
from streams.engine.delivery import Sends
from streams.engine.failures import Send
from streams.engine.outbox import Outbox
from streams.engine.routing import partition_of, roles
from streams.engine.watermark.clock import ClusterView, ClusterWatermark, Source, Watermark
from streams.ingest.enrich import dimensions
from streams.ingest.reference_cache import ReferenceCache
from streams.ingest.validate import InvalidEvent, Limits, validate
from streams.kpi.facts import item_of
from streams.observability.metrics import PipelineStats

FULL = 5000
"""Input events routed and not flushed that make the ingest flush at once."""

VIEW_TTL_S = 0.02
"""How long a cached view of this worker's input partitions is used."""


class Message(Protocol):
    """What the ingest reads of an input message (faust's ``Message`` has it)."""

    topic: str
    partition: int
    offset: int
    timestamp: float


class Acks(Protocol):
    """Where an input event is acked once what it caused is in Kafka (faust's stream)."""

    async def ack(self, event: Any) -> Any: ...


SendEntities = Callable[[bytes, dict[str, Any], int], Awaitable[Any]]
"""Sends (key, value, partition) to ``internal.entities``; awaited, it gives the send's
future (faust's ``Topic.send``)."""


class IngestStage:
    def __init__(
        self,
        *,
        logical: Mapping[str, str],
        limits: Limits,
        reference: ReferenceCache,
        stats: PipelineStats,
        watermark: Watermark,
        cluster: ClusterWatermark,
        assigned_inputs: Callable[[], list[Source]],
        partitions: int,
        sends: Sends,
        send_entities: SendEntities,
        dead_letter: Send,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logical, self.limits, self.reference, self.stats = logical, limits, reference, stats
        self.watermark, self.cluster, self.assigned_inputs = watermark, cluster, assigned_inputs
        self.partitions, self.sends, self.send_entities = partitions, sends, send_entities
        self.dead_letter, self.clock, self.monotonic = dead_letter, clock, monotonic
        self.outbox = Outbox()
        self.pending: list[tuple[Acks, Any]] = []  # routed, acked at the next flush
        self.sending = asyncio.Lock()  # a heartbeat never overtakes items routed before it
        self._view: tuple[float, bool | None, ClusterView | None] = (0.0, None, None)

    # --- the watermark's view of this worker's input partitions --------------------------

    def local_view(self, capped: bool) -> ClusterView:
        """This worker's input partitions now, for the cluster watermark of an event."""
        when, was_capped, view = self._view
        now = self.monotonic()
        if view is None or now - when >= VIEW_TTL_S or was_capped != capped:
            view = self.watermark.view(self.assigned_inputs(), capped, now)
            self._view = (now, capped, view)
        return view

    def moved(self, topic: str, partition: int) -> None:
        """A message of ``topic[partition]`` was routed: the cached view follows it if it may
        have moved the watermark (the partition held it or set it); a view up to 20 ms old
        is otherwise fine (the watermark only lags). The partition setting it is followed
        without looking at the others while it stays below the runner-up."""
        when, capped, view = self._view
        name = f"{topic}/{partition}"
        if view is None or name in view.holding:
            self._view = (0.0, capped, view)
        elif name == view.slowest:
            newest = None if capped else self.watermark.newest.get((topic, partition))
            advanced = None if newest is None else view.advanced(name, newest)
            if advanced is None:  # capped, or past the runner-up: seen again in full
                self._view = (0.0, capped, view)
            else:
                self._view = (when, capped, advanced)

    # --- one event ------------------------------------------------------------------------

    async def route(self, message: Message, value: bytes) -> None:
        """Validate, dead-letter, join and route one input event to its entities.

        The watermark hears of the message only once all of it is routed: a route cut short
        (a rebalance cancels it) leaves the partition behind, as it really is."""
        topic, partition, offset = message.topic, message.partition, message.offset
        try:
            valid = validate(value, self.logical[topic], self.limits, self.clock())
        except InvalidEvent as exc:
            self.stats.dead_letters[exc.reason] += 1
            await self.dead_letter(
                topic.encode(),
                value,
                [
                    ("reason", exc.reason.encode()),
                    ("detail", exc.detail.encode()[:2000]),
                    ("source_topic", topic.encode()),
                    ("source_partition", str(partition).encode()),
                    ("source_offset", str(offset).encode()),
                ],
            )
            self.watermark.read(topic, partition, offset)
            self.moved(topic, partition)
            return
        item = valid.event
        self.stats.event(self.logical[topic], item.type, item.occurred_at.timestamp())
        if valid.unknown_fields:
            self.stats.unknown_fields[item.type] += len(valid.unknown_fields)
        dims = dimensions(item, self.reference)
        for miss in dims.misses:
            self.stats.reference_misses[miss] += 1
        # The history item (offset and lateness are set by the entity stage) and the event as
        # sent to sales.late if it turns out late: computed once here, not once per role.
        history_item = item_of(EnrichedEvent(event=item, dims=dims), -1, ())  # type: ignore[arg-type]
        w = self.cluster.current(self.local_view)
        src = f"{topic}/{partition}/{offset}"
        for role, key in roles(item):
            routed: dict[str, Any] = {
                "role": role, "key": key, "item": history_item, "w": w, "src": src
            }  # fmt: skip
            if role == "event":  # the copy sales.late gets if it is late: once per event
                routed |= {"event": item.model_dump(mode="json"), "ts": message.timestamp}
            self.outbox.add(partition_of(role, key, self.partitions), routed)
        self.watermark.read(topic, partition, offset)
        self.watermark.observe(topic, partition, round(item.occurred_at.timestamp() * 1000))
        self.moved(topic, partition)

    def routed(self, source: Acks, event: Any) -> None:
        """``event`` (of ``source``) is routed: acked once what it caused is in Kafka."""
        self.pending.append((source, event))

    def full(self) -> bool:
        return len(self.pending) >= FULL

    # --- flush -----------------------------------------------------------------------------

    async def send_routed(self, heartbeat: int | None = None) -> None:
        """What the ingest routed, one message per entity partition (and per 250 items);
        then, if given, a watermark heartbeat to every entity partition."""
        async with self.sending:
            for partition, items in self.outbox.drain():
                await self.sends.send(self.send_entities(b"__batch__", {"items": items}, partition))
            if heartbeat is not None:
                for partition in range(self.partitions):
                    await self.sends.send(
                        self.send_entities(b"__wm__", {"wm": heartbeat}, partition)
                    )

    async def flush(self) -> None:
        """Send what was routed, check every send is in Kafka (or the worker stops: no ack),
        let the watermark's cut include it, then ack the inputs."""
        pending = list(self.pending)
        self.pending.clear()
        checkpoint = self.watermark.checkpoint()  # what was routed: in the outbox, sent below
        await self.send_routed()
        await self.sends.confirm()
        self.watermark.flushed(checkpoint)  # what other workers may hear of (cluster watermark)
        for source, event in pending:
            await source.ack(event)
