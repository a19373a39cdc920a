"""Faust's Kafka transport, with the seek after a rebalance made to lose nothing, and the
stages' offset guards over it (``GuardedStage``, glue for ``streams.engine.gaps``).

When a rebalance suspends the flow, faust-streaming 0.15 drops what is in flight to its
agents (queued in their streams, or waiting to be queued) and then seeks every partition
back to its committed offset, so that it is read again. aiokafka's ``seek_to_committed``
only seeks where the committed offset is above 0: a partition with nothing committed yet
(a new topic, a first run) stays where the fetcher was, past the dropped messages, and
they are never read. Here such a partition goes back to its earliest offset, which is
what ``auto_offset_reset="earliest"`` would have given it; what it re-reads is
deduplicated downstream (offset marks and event ids). The consumer also records where it
positioned each partition, from which each stage's guard expects every offset in order:
faust loses messages in other ways too (docs/engine.md, known problems).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, cast

from aiokafka.structs import TopicPartition as AioTP
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service

from streams.engine.gap_probe import GapProbe
from streams.engine.gaps import OffsetGuard, Verdict
from streams.observability.metrics import PipelineStats

log = logging.getLogger(__name__)


def left_unsought(committed: Mapping[TP, int | None], acked: Callable[[str], bool]) -> list[TP]:
    """The partitions of acked topics (an agent's input: not a table changelog, which
    table recovery positions itself) that ``seek_to_committed`` left where they were:
    nothing committed, or 0."""
    return sorted(tp for tp, offset in committed.items() if not offset and acked(tp.topic))


DRAIN_SOURCE_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
"""sha256 of ``inspect.getsource`` of faust's ``Consumer._drain_messages`` that
:meth:`Consumer._drain_messages` copies (faust-streaming 0.15.3): a test fails when an
installed faust has another loop, which must then be read again and the change ported."""


class Consumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer; ``seek_to_committed`` also seeks partitions with nothing
    committed (module docstring), and ``positioned`` says where each partition of an agent's
    topic was sought after the last rebalance: (a number per positioning, the offset), for
    the stages' offset guards (``streams.engine.gaps``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.positioned: dict[TP, tuple[int, int]] = {}
        self.positionings = 0

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
                await self._seek(tp, start)
                self.positioned[tp] = (token, start)
        return committed

    def fetch_position(self, tp: TP) -> int | None:
        """aiokafka's fetch position of ``tp`` (the next offset its fetcher hands faust),
        read from its subscription state without a call to the consumer thread; None when
        unknown. ``await self.position(tp)`` runs aiokafka's ``position`` in that thread,
        which waits for a valid position: during a broker outage it never returned, and the
        consumer thread, busy with it, never stopped (the worker hung on "Consumer:
        Stopping..." after its sends expired, in the broker-outage test)."""
        try:
            aio = self._thread._ensure_consumer()
            assignment = aio._subscription.subscription.assignment
            state = assignment.state_value(AioTP(tp.topic, tp.partition))
            return None if state is None or not state.has_valid_position else int(state.position)
        except Exception:  # not started, unsubscribed, revoked meanwhile: unknown
            return None

    async def _drain_messages(self, fetcher: Any) -> None:
        """faust-streaming 0.15.3's fetch loop (``faust.transport.consumer.Consumer.
        _drain_messages``, ``DRAIN_SOURCE_SHA256``), with one change: a message is marked
        read (faust's read offset, below which a re-read message is dropped) only once it
        was handed to the agents. faust marks it read also when a suspended flow (a
        rebalance) won the race and the message was never handed; after the seek back the
        re-read copies below that mark were dropped, and when they were a partition's last
        nothing came to show the gap (two workers' stream time held at
        ``marketing.spend/1`` for good, 1 exactly-once run in 4 under load, 2026-12-04)."""
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator[Any], getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            handing = callback(message)
                            waited = await self.wait_first(handing, self.suspend_flow.wait())
                            if handing in waited.done:  # the change: handed, not cut off
                                set_read_offset(tp, offset)
                        else:
                            self.log.dev("DROPPED MESSAGE ROFF %r", offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


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


class GuardedStage:
    """A stage's offset guard over faust's consumer (``streams.engine.gaps``): ``admit``
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

    async def admit(self, event: Any) -> tuple[int, int] | None:
        """The partition's positioning when the event is to be processed, else None."""
        message = event.message
        tp = TP(message.topic, message.partition)
        consumer = self.app.consumer
        positioned = consumer.positioned.get(tp)
        now = time.monotonic()
        verdict = self.guard.check(tp, message.offset, positioned, now)
        if verdict is Verdict.PROCESS:
            self.unpositioned_since.pop(tp, None)
            return positioned
        if positioned is None:  # before faust's seek after a rebalance: read again after it
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
