"""Faust's Kafka transport, with the seek after a rebalance made to lose nothing, and the
stages' offset guards over it (``GuardedStage``, glue for ``streams.engine.faust.gaps``).

When a rebalance suspends the flow, faust-streaming 0.15 drops what is in flight to its
agents (queued in their streams, or waiting to be queued) and then seeks every partition
back to its committed offset, so that it is read again. aiokafka's ``seek_to_committed``
only seeks where the committed offset is above 0: a partition with nothing committed yet
(a new topic, a first run) stays where the fetcher was, past the dropped messages, and
they are never read. Here such a partition goes back to its earliest offset, which is
what ``auto_offset_reset="earliest"`` would have given it; what it re-reads is
deduplicated downstream (offset marks and event ids). The consumer also records where it
positioned each partition, from which each stage's guard expects every offset in order:
faust loses messages in other ways too: its fetch path around a rebalance is mended in
``streams.engine.faust.fetch_loop`` (docs/engine.md, known problems).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.engine.faust.fetch_loop import HandedOnlyFetch
from streams.engine.faust.fetch_wait import FAUST_FETCH_MAX_WAIT_MS, ConsumerThread
from streams.engine.faust.gap_probe import GapProbe
from streams.engine.faust.gaps import OffsetGuard, Verdict
from streams.observability.metrics import PipelineStats

log = logging.getLogger(__name__)


def left_unsought(committed: Mapping[TP, int | None], acked: Callable[[str], bool]) -> list[TP]:
    """The partitions of acked topics (an agent's input: not a table changelog, which
    table recovery positions itself) that ``seek_to_committed`` left where they were:
    nothing committed, or 0."""
    return sorted(tp for tp, offset in committed.items() if not offset and acked(tp.topic))


class Consumer(HandedOnlyFetch, faust_aiokafka.Consumer):
    """faust's aiokafka consumer; ``seek_to_committed`` also seeks partitions with nothing
    committed (module docstring), its fetch path hands every message fetched
    (``HandedOnlyFetch``), and ``positioned`` says where each partition of an agent's
    topic was sought after the last rebalance: (a number per positioning, the offset), for
    the stages' offset guards (``streams.engine.faust.gaps``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.positioned: dict[TP, tuple[int, int]] = {}
        self.positionings = 0

    def _new_consumer_thread(self) -> ConsumerThread:
        """faust's thread, its fetches held at most the transport's ``fetch_max_wait_ms``
        (``streams.engine.faust.fetch_wait``)."""
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _seek(self, partition: TP, offset: int) -> None:
        """Every seek of faust's (``seek``) and of the rewind below: the fetch loop skips
        what a batch fetched before it holds of ``partition`` (``HandedOnlyFetch.sought``)."""
        self.seek_in_thread(partition, offset)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self.positioned.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        acked = self.app.topics.acks_enabled_for
        self.positionings += 1
        token = self.positionings
        for tp, offset in committed.items():
            if offset and acked(tp.topic):
                self.positioned[tp] = (token, offset)
        rewind = left_unsought(committed, acked)
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
                # faust's ``seek``, which resets the read offset with it: what the fetcher
                # reads again from ``start`` is not dropped below the read offset of messages
                # handed before (faust resets it only once every partition is sought).
                await self.seek(tp, start)
                self.positioned[tp] = (token, start)
        return committed


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`Consumer`; ``on_rewind`` is called for every
    partition sent back past what the fetcher had read, ``on_refetch`` for every partition
    sought back to records fetched but not handed (``streams.engine.faust.fetch_loop``);
    its consumer's fetches are held at most ``fetch_max_wait_ms``
    (``streams.engine.faust.fetch_wait``)."""

    Consumer = Consumer
    fetch_max_wait_ms = FAUST_FETCH_MAX_WAIT_MS
    on_rewind: Callable[[], None] = staticmethod(lambda: None)
    on_refetch: Callable[[], None] = staticmethod(lambda: None)


def install(
    app: Any, stats: PipelineStats, fetch_max_wait_ms: int = FAUST_FETCH_MAX_WAIT_MS
) -> None:
    """Give ``app`` this transport (before anything has created faust's own); rewinds and
    refetches are counted in ``stats``; fetches are held at most ``fetch_max_wait_ms``."""
    if app._transport is not None:
        raise RuntimeError("install the transport before the app creates its own")
    transport = Transport(app.conf.broker_consumer, app)
    transport.fetch_max_wait_ms = fetch_max_wait_ms

    def rewound() -> None:
        stats.rebalance_rewinds += 1

    def refetched() -> None:
        stats.refetches += 1

    transport.on_rewind = rewound
    transport.on_refetch = refetched
    app.transport = transport


class GuardedStage:
    """A stage's offset guard over faust's consumer (``streams.engine.faust.gaps``): ``admit``
    says whether to process an event (seeking its partition back over a gap), ``done``
    records it processed."""

    def __init__(
        self, app: Any, stage: str, on_gap: Callable[[str], None], probe: GapProbe,
        topics: frozenset[str] = frozenset(),
    ) -> None:  # fmt: skip
        self.app, self.stage, self.on_gap, self.probe = app, stage, on_gap, probe
        self.topics = topics  # the stage's input topics (physical names)
        self.guard = OffsetGuard()
        self.unpositioned_since: dict[TP, float] = {}
        # Whether the stage's stream queue is empty (``watch``): None until its agent runs.
        self.queue_empty: Callable[[], bool] | None = None

    def watch(self, stream: Any) -> None:
        """Called by the stage's agent once it reads its stream: a partition is judged
        silent (``resume_silent``) only while nothing waits in that stream's queue, so a
        stage that is busy, or not reading yet, does not have its partitions sought back.
        The queue is that of the clone faust iterates (``aiter(stream.channel)``: one of
        the subscribers of the topic's root channel), not ``stream.channel``'s own."""
        channel = stream.channel
        root = channel._root if channel._root is not None else channel

        def empty() -> bool:
            return all(subscriber.queue.empty() for subscriber in list(root._subscribers))

        self.queue_empty = empty

    async def run(
        self, stream: Any, handle: Callable[[Any, Any], Awaitable[None]], staged: Any
    ) -> None:
        """A stage's agent: each event of ``stream`` the guard admits goes to ``handle``
        (the manual-ack stream, the event: acked by the stage's flush once what it caused is
        in Kafka), and ``staged`` flushes when ``full()`` (else the checkpoint's timer)."""
        self.watch(stream)
        manual = stream.noack()
        async for event in manual.events():
            positioned = await self.admit(event)
            if positioned is None:
                continue  # read again (streams.engine.faust.gaps)
            await handle(manual, event)
            self.done(event, positioned)
            if staged.full():
                await staged.flush()

    async def admit(self, event: Any) -> tuple[int, int] | None:
        """The partition's positioning when the event is to be processed, else None."""
        message = event.message
        tp = TP(message.topic, message.partition)
        consumer = self.app.consumer
        positioned = consumer.positioned.get(tp)
        now = time.monotonic()
        verdict = self.guard.check(tp, message.offset, positioned, now)
        if positioned is not None:
            self.unpositioned_since.pop(tp, None)
        if verdict is Verdict.PROCESS:
            return positioned
        if positioned is None:  # before faust's seek after a rebalance: read again after it
            if tp not in self.unpositioned_since:
                log.info(
                    "%s: %s/%s offset %s and what follows until faust positions it are "
                    "read again: not positioned since the rebalance",
                    self.stage, tp.topic, tp.partition, message.offset,
                )  # fmt: skip
            since = self.unpositioned_since.setdefault(tp, now)
            if now - since > 30:
                self.unpositioned_since[tp] = now
                log.warning(
                    "%s: %s/%s has not been positioned since the last rebalance for 30 s: "
                    "its messages wait (faust's seek to committed offsets has not run)",
                    self.stage, tp.topic, tp.partition,
                )  # fmt: skip
            return None
        expected = self.guard.expected(tp, positioned)
        if verdict in (Verdict.SEEK, Verdict.STUCK) and expected is not None:
            empty = await self.probe.empty(tp.topic, tp.partition, expected, message.offset)
            if empty:  # a transactional producer's markers, or compaction: nothing lost
                log.info(
                    "%s: %s/%s offsets %s to %s hold no message: going on",
                    self.stage, tp.topic, tp.partition, expected, message.offset - 1,
                )  # fmt: skip
                self.guard.accept(tp)
                return positioned
            if verdict is Verdict.STUCK:  # the broker holds them (or cannot say): never skip
                log.error(
                    "%s: %s/%s offsets %s to %s did not come after %d seeks back, and the "
                    "broker %s: seeking back again (the partition waits rather than lose "
                    "them)",
                    self.stage, tp.topic, tp.partition, expected, message.offset - 1,
                    self.guard.tries,
                    "holds messages there" if empty is False else "could not say what is there",
                )  # fmt: skip
            else:
                log.warning(
                    "%s: %s/%s offset %s came when %s was expected (a message lost on its way "
                    "here): seeking back to %s",
                    self.stage, tp.topic, tp.partition, message.offset, expected, expected,
                )  # fmt: skip
            self.on_gap(self.stage)
            await consumer.seek(tp, expected)
            return None
        return None  # past a gap already sought back

    async def retry(self) -> None:
        """Seek again the partitions whose awaited offset has not come (on a timer)."""
        consumer = self.app.consumer
        for key, offset in self.guard.due(consumer.positioned, time.monotonic()):
            tp = cast(TP, key)
            log.warning(
                "%s: %s/%s offset %s still not here: seeking back to it again",
                self.stage, tp.topic, tp.partition, offset,
            )  # fmt: skip
            try:
                await consumer.seek(tp, offset)
            except Exception:  # revoked meanwhile: its next owner reads it
                log.exception("%s: could not seek %s/%s", self.stage, tp.topic, tp.partition)

    async def resume_silent(self) -> None:
        """Seek back the partitions that hold unread messages yet hand none
        (``OffsetGuard.silent``) while the stage's queue is empty (``watch``), and whose
        fetch position is past the offset expected: the fetcher handed faust those messages,
        and none reached the stage, so they were lost on the way (a partition faust's flow
        control left out of the fetch under a backlog is still at that offset: it waits).
        Through ``consumer.seek``, which also resets faust's read offset, so the messages
        read again are not dropped below it."""
        if self.app.should_stop or self.app.consumer.should_stop:
            return  # stopping (a crash after expired sends): no call to the consumer thread
        if self.queue_empty is None or not self.queue_empty():
            return  # the agent is not reading yet, or messages wait for it: not lost
        consumer = self.app.consumer

        def highwater(tp: TP) -> int | None:
            try:
                return cast(int | None, consumer.highwater(tp))
            except Exception:  # revoked meanwhile
                return None

        mine = {tp: p for tp, p in consumer.positioned.items() if tp.topic in self.topics}
        for key, offset in self.guard.silent(mine, highwater, time.monotonic()):
            tp = cast(TP, key)
            fetched_to = consumer.fetch_position(tp)  # never a call to the consumer thread
            if fetched_to is None or fetched_to <= offset:
                # The fetcher has not handed faust the messages yet: the partition waits
                # (faust's flow control took it out of the fetch under a backlog), not lost.
                continue
            log.warning(
                "%s: %s/%s: offsets %s to %s were fetched but none came to the stage for "
                "%.0f s (lost on their way): seeking back to %s",
                self.stage, tp.topic, tp.partition, offset, fetched_to - 1,
                self.guard.silent_s, offset,
            )  # fmt: skip
            self.on_gap(self.stage)
            try:
                await consumer.seek(tp, offset)
            except Exception:  # revoked meanwhile: its next owner reads it
                log.exception("%s: could not seek %s/%s", self.stage, tp.topic, tp.partition)

    def done(self, event: Any, positioned: tuple[int, int]) -> None:
        message = event.message
        self.guard.done(TP(message.topic, message.partition), message.offset, positioned)
