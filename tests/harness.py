"""The engine's three stages in memory: a testing source and sinks, no broker, no Redis.

``InMemoryPipeline`` wires the ingest stage, the entity stage and the publisher as
``streams.app.build_app`` wires them, over in-memory topics (one list of messages per
partition) and plain dict tables, and drives them as faust would: each stage reads what its
input topic holds, then flushes (sends, then acks); the cluster watermark ticks between
rounds as the exchange does for a single worker. What comes out is what the broker and Redis
would hold: the read model's values, ``kpi.updates``, ``sales.late`` and
``sales.deadletter``. So the stages' code (and ``streams/kpi/``) is checked against
``tests/reference/`` in a unit test (``tests/unit/engine/test_in_memory_pipeline.py``).

Not here: faust's consumer, rebalances, crashes and the real exchange between workers;
the integration tests run those on a real broker.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson

from streams.engine.delivery import Delivery, SendFailed, Sends
from streams.engine.entity_stage import EntityStage
from streams.engine.failures import StageFailures
from streams.engine.ingest_stage import IngestStage
from streams.engine.publisher import Publisher
from streams.engine.watermark.clock import ClusterWatermark, Source, Watermark, tick
from streams.ingest.reference_cache import ReferenceCache
from streams.kpi.windows import CellWindows, Graces, Retention
from streams.observability.metrics import PipelineStats
from streams.serving.read_model import ReadModel
from streams.settings import Settings
from streams.topics import INPUT_TOPICS
from tests.kpi_tools import Key, Message, limits_of

PREFIX = "sp:"


@dataclass
class Record:
    key: bytes | None
    value: Any
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: float = 0.0


@dataclass
class ConsumedMessage:
    """What the stages read of a faust message."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None


@dataclass(eq=False)
class Event:
    """A faust event: its message and decoded value (weakly referable, as faust's is)."""

    message: ConsumedMessage
    value: Any


class Topic:
    """An in-memory topic: one list of records per partition; a send gives a done future."""

    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.partitions: list[list[Record]] = [[] for _ in range(partitions)]

    def append(
        self, key: bytes | None, value: Any, partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> SimpleNamespace:  # fmt: skip
        """The record, appended; its (partition, offset), as a producer's record metadata."""
        if partition is None:  # by key, as a producer's partitioner (any fixed hash will do)
            partition = 0 if key is None else zlib.crc32(key) % len(self.partitions)
        records = self.partitions[partition]
        records.append(Record(key, value, list(headers or ()), time.time()))
        return SimpleNamespace(partition=partition, offset=len(records) - 1)

    async def send(
        self, key: bytes | None = None, value: Any = None, partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:  # fmt: skip
        """faust's ``Topic.send``, what the stages call of it: the send's future, done."""
        return sent(self.append(key, value, partition, headers))

    def records(self) -> list[Record]:
        return [record for records in self.partitions for record in records]

    def envelopes(self) -> list[dict[str, Any]]:
        """Every record as kcat's JSON envelope (``tests.kafka_tools.kcat_consume``): key and
        payload as text, headers as a flat [name, value, ...] list."""
        return [
            {
                "key": None if r.key is None else r.key.decode(),
                "payload": r.value.decode() if isinstance(r.value, bytes) else r.value,
                "headers": [x for name, value in r.headers for x in (name, value.decode())],
            }
            for r in self.records()
        ]


def sent(metadata: Any) -> asyncio.Future[Any]:
    """A send's future, done: the record is in the topic."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(metadata)
    return future


class Reader:
    """A stage's consumer of one topic: reads each partition from its committed offset and
    acks (commits) what the stage's flush acks."""

    def __init__(self, topic: Topic) -> None:
        self.topic = topic
        self.position = [0] * len(topic.partitions)
        self.committed: dict[int, int] = {}  # partition -> next offset to read
        self.acking = True  # False: acks are lost (the worker dies before it commits)

    def take(self, limit: int) -> list[Event]:
        """Up to ``limit`` unread messages, partition after partition, as faust events."""
        events: list[Any] = []
        for partition, records in enumerate(self.topic.partitions):
            while self.position[partition] < len(records) and len(events) < limit:
                offset = self.position[partition]
                record = records[offset]
                message = ConsumedMessage(
                    self.topic.name, partition, offset, record.timestamp, record.key
                )
                events.append(Event(message, record.value))
                self.position[partition] += 1
        return events

    async def ack(self, event: Any) -> None:
        if not self.acking:
            return
        message = event.message
        self.committed[message.partition] = max(
            self.committed.get(message.partition, 0), message.offset + 1
        )

    def rewind(self) -> None:
        """A new consumer: reading from the committed offsets."""
        self.position = [self.committed.get(p, 0) for p in range(len(self.position))]

    def caught_up(self, partition: int, offset: int | None) -> bool:
        """Whether ``offset`` (the last processed, None: nothing since start) is the end, as
        ``streams.app._caught_up`` says: with nothing processed, when committed at the end."""
        end = len(self.topic.partitions[partition])
        if offset is None:
            return end == 0 or self.committed.get(partition, 0) >= end
        return offset + 1 >= end


class InMemoryReadModel(ReadModel):
    """The read model, written to a dict (``store``: (Redis key, field) -> value) where the
    real one writes Redis."""

    def __init__(self, prefix: str) -> None:
        super().__init__(None, prefix)  # type: ignore[arg-type]
        self.store: dict[tuple[str, str], bytes] = {}

    async def lost(self, partitions: Any) -> list[int]:
        return []  # nothing restarts here

    async def flush_removals(self) -> bool:
        removals, self.removals = self.removals, []
        for op, key, member in removals:
            if op == "hdel":
                self.store.pop((key, member), None)
        return True

    async def flush(self) -> bool:
        await self.flush_removals()
        self.store.update(self.hashes)
        self.hashes, self.scores, self.staged = {}, {}, {}
        self.completed, self.partition_ms = set(), {}
        return True

    def results(self) -> dict[Key, dict[str, Any]]:
        """Every KPI record, keyed as ``tests.kpi_tools.engine_results`` keys Redis's."""
        out: dict[Key, dict[str, Any]] = {}
        for (name, member), raw in self.store.items():
            if name.startswith(f"{self.prefix}kpi:"):
                _, kpi, kind, start, dim = name[len(self.prefix) :].split(":", 4)
                out[(kpi, kind, int(start), dim, member)] = orjson.loads(raw)
        return out


class InMemoryPipeline:
    """The three stages over in-memory topics and dict tables (one worker, every partition).

    What a worker keeps across a crash (``crash``) lives here: the topics, the tables as the
    flushes wrote them, the committed offsets and the read model's store; ``_start`` builds
    what it keeps in memory only: the stages, their pending work and the watermark."""

    def __init__(self, settings: Settings, partitions: int = 4, batch: int = 500) -> None:
        self.settings, self.batch, self.partitions = settings, batch, partitions
        self.names = [spec.name for spec in INPUT_TOPICS]
        self.inputs = {name: Topic(name, 1) for name in self.names}  # one partition each
        self.input_readers = {name: Reader(topic) for name, topic in self.inputs.items()}
        self.entities = Topic("internal.entities", partitions)
        self.cells = Topic("internal.cells", partitions)
        self.late, self.deadletter = Topic("sales.late", 1), Topic("sales.deadletter", 1)
        self.updates = Topic("kpi.updates", 1)
        self.entity_reader, self.cells_reader = Reader(self.entities), Reader(self.cells)
        self.arrivals: list[tuple[str, int]] = []  # (input topic, offset), in produced order
        self.next_arrival = 0  # the next one the ingest reads
        self.tables: dict[str, dict[str, Any]] = {
            name: {}
            for name in ("seen", "entities", "cells", "stream_time", "published", "base", "marks")
        }  # fmt: skip
        self.stats = PipelineStats()
        self.reference = ReferenceCache()
        self.read_model = InMemoryReadModel(PREFIX)
        self.crashes = 0
        self._start()

    def _start(self) -> None:
        settings, partitions, tables = self.settings, self.partitions, self.tables

        async def delivered() -> None:
            return None

        def stop(failure: SendFailed) -> None:
            raise failure

        delivery = Delivery(delivered, 1.0, stop)
        ingest_sends, stage_sends, publisher_sends = (
            delivery.sends(name) for name in ("ingest", "entity stage", "publisher")
        )
        windows = CellWindows(settings.zone)
        graces = Graces(int(settings.grace_minute_s * 1000), int(settings.grace_calendar_s * 1000))
        retention = Retention(
            int(settings.retention_minute_s * 1000),
            int(settings.retention_day_s * 1000),
            int(settings.retention_calendar_s * 1000),
        )
        self.sources: list[Source] = [(name, 0) for name in self.names]
        self.watermark = Watermark(
            settings.idle_close_s,
            lambda t, p, o: self.input_readers[t].caught_up(p, o),
        )
        self.cluster = ClusterWatermark()

        def dead_letter(sends: Sends) -> Any:
            async def send(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
                await sends.send(self.deadletter.send(key=key, value=value, headers=headers))

            return send

        async def send_entities(key: bytes, value: dict[str, Any], partition: int) -> Any:
            # through the codec's bytes, as faust sends and reads them
            return sent(self.entities.append(key, orjson.loads(orjson.dumps(value)), partition))

        self.ingest = IngestStage(
            logical={name: name for name in self.names},
            limits=limits_of(settings),
            reference=self.reference,
            stats=self.stats,
            watermark=self.watermark,
            cluster=self.cluster,
            assigned_inputs=lambda: self.sources,
            partitions=partitions,
            sends=ingest_sends,
            send_entities=send_entities,
            dead_letter=dead_letter(ingest_sends),
        )

        async def read_source(topic: str, partition: int, offset: int) -> bytes | None:
            value = self.inputs[topic].partitions[partition][offset].value
            return value if isinstance(value, bytes) else None

        self.stage = EntityStage(
            seen=tables["seen"],
            entities=tables["entities"],
            cells=tables["cells"],
            stream_time=tables["stream_time"],
            cells_topic=self.cells,
            late_topic=self.late,
            windows=windows,
            graces=graces,
            retention=retention,
            idle_close_s=settings.idle_close_s,
            publisher_partitions=partitions,
            stats=self.stats,
            assigned=lambda: list(range(partitions)),
            caught_up=self.entity_reader.caught_up,
            committed=self.entity_reader.committed.get,
            upstream_quiet=lambda: self.cluster.quiet,
            sends=stage_sends,
            failures=StageFailures("entity-stage", dead_letter(stage_sends), Counter()),
            read_source=read_source,
        )

        async def send_updates(records: list[tuple[bytes, bytes]]) -> list[Any]:
            return [sent(self.updates.append(key, value)) for key, value in records]

        self.publisher = Publisher(
            cells=tables["published"],
            base=tables["base"],
            marks=tables["marks"],
            send_updates=send_updates,
            read_model=self.read_model,
            reference=self.reference,
            windows=windows,
            graces=graces,
            retention=retention,
            entity_partitions=partitions,
            lead_sla_ms=int(settings.lead_sla_s * 1000),
            currency=settings.currency,
            sends=publisher_sends,
            failures=StageFailures("publisher", dead_letter(publisher_sends), Counter()),
        )

    def crash(self) -> None:
        """kill -9: what the worker held in memory is gone (the stages' pending work, the
        watermark, what the read model had staged); the topics keep what was sent, the tables
        what the flushes wrote, Redis what was written. A new worker reads each partition
        again from its committed offset."""
        store = self.read_model.store
        self.read_model = InMemoryReadModel(PREFIX)
        self.read_model.store = store
        for reader in (*self.input_readers.values(), self.entity_reader, self.cells_reader):
            reader.rewind()
        committed = {
            name: reader.committed.get(0, 0) for name, reader in self.input_readers.items()
        }
        self.next_arrival = next(
            (i for i, (topic, offset) in enumerate(self.arrivals) if offset >= committed[topic]),
            len(self.arrivals),
        )
        self.crashes += 1
        self._start()

    # --- the source -------------------------------------------------------------------------

    def load_reference(self, records: list[Message]) -> None:
        """The ``ref.*`` records, as the reference feed applies them before events count."""
        for topic, key, value in records:
            if key is not None:
                self.reference.apply(topic.removeprefix("ref."), key.decode(), value)

    def produce(self, messages: list[Message]) -> None:
        """Events on their input topics, all in the broker before the worker reads them."""
        for topic, key, value in messages:
            self.arrivals.append((topic, self.inputs[topic].append(key, value).offset))

    # --- faust's part: read, process, flush --------------------------------------------------

    async def _tick(self) -> None:
        """The exchange's tick for a single worker (``exchange_tick`` in ``streams.app``):
        this worker's cut as of its last flush against the end offsets, then a heartbeat to
        every entity partition when the cluster watermark moved."""
        cut = {
            source: self.watermark.progress(source, self.input_readers[source[0]].committed.get(0))
            for source in self.sources
        }
        ends = {(name, 0): len(topic.partitions[0]) for name, topic in self.inputs.items()}
        if tick(self.watermark, self.cluster, cut, {}, self.sources, ends):
            await self.ingest.send_routed(heartbeat=self.cluster.last)

    async def _route(self, limit: int) -> int:
        """Up to ``limit`` input events, in the order they were produced, then the flush."""
        taken = 0
        while taken < limit and self.next_arrival < len(self.arrivals):
            topic, offset = self.arrivals[self.next_arrival]
            self.next_arrival += 1
            reader = self.input_readers[topic]
            (event,) = reader.take(1)
            assert event.message.offset == offset, "the ingest reads its inputs in order"
            await self.ingest.route(event.message, event.value)
            self.ingest.routed(reader, event)
            taken += 1
        if taken:
            await self.ingest.flush()
        return taken

    async def _process(self, reader: Reader, stage: EntityStage | Publisher) -> int:
        """What ``reader`` has unread (up to a batch), then the stage's flush: flushed each
        round, events or not, as the checkpoint's clock does (stream-time markers, closing)."""
        events = reader.take(self.batch)
        for event in events:
            await stage.process(reader, event)
        await stage.flush()
        return len(events)

    async def _round(self) -> int:
        moved = await self._route(self.batch)
        await self._tick()
        moved += await self._process(self.entity_reader, self.stage)
        moved += await self._process(self.cells_reader, self.publisher)
        return moved

    async def run(self, crash_at: Iterable[int] = ()) -> None:
        """Every produced event through the three stages, until nothing is left to read.

        At the rounds of ``crash_at`` the worker dies once every stage has flushed (its table
        writes and sends done) and before any of its offsets is committed: all of the
        round is read again by a new worker, the worst of what kill -9 can do."""
        crashes, rounds = set(crash_at), 0
        while True:
            crashing = rounds in crashes
            for reader in (*self.input_readers.values(), self.entity_reader, self.cells_reader):
                reader.acking = not crashing
            moved = await self._round()
            if crashing:
                self.crash()
            elif not moved:
                return
            rounds += 1

    async def settle(self, timeout_s: float = 60.0, every_s: float = 0.25) -> None:
        """Rounds on the wall clock until every window is final: the worker idle, its stream
        time moves to wall time once ``idle_close_s`` passed (``EntityStage.stream_ms``)."""
        deadline, began_s = time.monotonic() + timeout_s, time.time()
        while True:
            await self._round()
            results = self.results()
            # History is published when it closes (``Publisher._history``): final records
            # alone do not say every window closed, stream time past the wall clock does.
            stream_s = self.publisher.stream_seconds(list(self.publisher.closing))
            caught_up = stream_s is not None and stream_s >= began_s
            if caught_up and all(r["final"] for k, r in results.items() if k[1] != "live"):
                return
            if time.monotonic() > deadline:
                open_windows = sorted(k for k, r in results.items() if not r["final"])
                raise AssertionError(
                    f"not settled in {timeout_s:.0f} s: {len(open_windows)} windows open, "
                    f"watermark {self.cluster.last}, first {open_windows[:3]}"
                )
            await asyncio.sleep(every_s)

    # --- the sinks ----------------------------------------------------------------------------

    def results(self) -> dict[Key, dict[str, Any]]:
        return self.read_model.results()


def run_in_memory(
    settings: Settings, reference: list[Message], stream: list[Message], partitions: int = 4,
    batch: int = 500, settle: bool = True, crash_at: Iterable[int] = (),
) -> InMemoryPipeline:  # fmt: skip
    """``stream`` (after ``reference``) through the stages in memory, the worker killed at
    the rounds of ``crash_at``; the pipeline, drained and (``settle``) every window final."""
    pipeline = InMemoryPipeline(settings, partitions, batch)
    pipeline.load_reference(reference)
    pipeline.produce(stream)

    async def run() -> None:
        await pipeline.run(crash_at)
        if settle:
            await pipeline.settle()

    asyncio.run(run())
    return pipeline
