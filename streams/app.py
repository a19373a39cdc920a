"""Build the Faust app from settings: topics, tables, agents and web views (thin glue).

Nothing is wired at import time; ``build_app(settings)`` does it all, so tests and several
workers can each build their own.

Flow (docs/engine.md)::

  input topics -> ingest (validate, dead-letter, reference join, route by role)
    -> internal.entities (key role:entity) -> entity stage (dedup, lateness, histories,
       partial cells; streams.engine.entity_stage)
    -> internal.cells (key dimension|key) -> publisher (merge partials, close windows;
       streams.engine.publisher) -> kpi.updates + Redis read model
  The watermark is the cluster's: every worker publishes cuts of its input partitions to
  internal.progress and reads everyone's (streams.engine.watermark: clock.py, exchange.py).
  /api/kpis (streams.serving.api) answers from Redis, /metrics from in-memory counters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import NotReady, ProducerSendError
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from streams.business_hours import parse_business_hours
from streams.codec import register_codec
from streams.connections.kafka import kafka_options
from streams.connections.redis import redis_client
from streams.engine.cadence import Cadence
from streams.engine.checkpoint import Checkpoint, Flushing
from streams.engine.delivery import Delivery, SendFailed, Sends, mark_tables_stale
from streams.engine.entity_stage import EntityStage
from streams.engine.failures import Send, StageFailures
from streams.engine.faust.app import SalesApp
from streams.engine.faust.batch_send import send_records
from streams.engine.faust.gap_probe import GapProbe
from streams.engine.faust.rebalance import GuardedStage
from streams.engine.faust.rebalance import install as install_transport
from streams.engine.faust.stores import BUDGET_OPTION, store_url
from streams.engine.faust.tables import FaustTables, TrackedTable
from streams.engine.ingest_stage import IngestStage
from streams.engine.publisher import Publisher
from streams.engine.watermark.clock import (
    ClusterWatermark,
    Progress,
    Source,
    Watermark,
    tick,
)
from streams.engine.watermark.exchange import ProgressExchange
from streams.ingest.reference_cache import ReferenceCache
from streams.ingest.reference_feed import follow_reference
from streams.ingest.validate import Limits
from streams.kpi.windows import CellWindows, Graces, Retention
from streams.observability.kpi_gauges import KpiCollector
from streams.observability.metrics import PipelineCollector, PipelineStats
from streams.serving.read_model import ReadModel
from streams.serving.readiness import RedisCheck, WorkerState, register_health
from streams.serving.tv import register_tv
from streams.serving.web_access import Access, bind_host, middleware
from streams.serving.web_api import register_api
from streams.settings import Settings
from streams.topics import INPUT_TOPICS, INTERNAL_TOPICS

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"  # aiohttp refuses a charset parameter here

BATCHES_WAITING = 16
"""Messages of ``internal.entities`` and ``internal.cells`` a stage may have waiting. Each is
a batch (up to 250 routed items, ~250 KB as JSON, or partial cells), held decoded as it
waits: faust's ``stream_buffer_messages`` (256, sized for single input events) let a stage
that falls behind the ingest hold 256 of them. 16 batches are 4,000 items, most of a
flush (``entity_stage.FLUSH_ITEMS``)."""

# What each table's RocksDB store (one per table and partition) may hold in memory. Faust's
# defaults are up to 3 write buffers of 64 MB (keys written stay in memory until one is full:
# 35 MB at 10,000 reps, 80 MB at 20,000, growing with the reps) and a 2 GB block cache. With
# these, a store's memtables are at most 2 x 4 MB; its block cache and memtables are also
# counted in the worker's one budget, SALESPULSE_STORE_MEMORY_MB for all its stores together
# (streams/engine/faust/stores.py; docs/engine.md, "What a flush holds, and memory").
STORE_MEMORY = {
    "write_buffer_size": 4 * 1024**2,
    "max_write_buffer_number": 2,
    "block_cache_size": 8 * 1024**2,
    "block_cache_compressed_size": 8 * 1024**2,
}


def build_app(settings: Settings) -> faust.App:
    """A Faust app computing every KPI of the catalogue from the input topics."""
    kafka = kafka_options(settings)
    app = SalesApp(
        settings.app_id,
        broker=kafka.broker_url,
        broker_credentials=kafka.broker_credentials(),
        store=store_url(settings.store),
        datadir=str(settings.worker_data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        consumer_auto_offset_reset="earliest",
        # Messages an agent may have waiting: the entity stage's hold up to 250 routed items
        # each, so faust's 4,096 could hold ~1 GB in a backlog.
        stream_buffer_maxsize=settings.stream_buffer_messages,
        # What one fetch hands on: unbounded, a backlog's input records waited in memory
        # (tracemalloc two minutes into a 200,000-event backlog: 27 MB in 95,563 blocks
        # where aiokafka hands records out, plus their keys and values; docs/engine.md says
        # why not fewer than 10,000). A partition's fetch stays faust's 1 MB: an internal
        # batch message may come close to it.
        broker_max_poll_records=settings.poll_records,
        # Sends gather for a few ms into large batches: the pipeline sends tens of thousands
        # of records a second (kpi.updates, changelogs), and one produce request each was a
        # quarter of the worker's CPU (py-spy).
        producer_linger=settings.producer_linger_ms / 1000,
        producer_max_batch_size=256 * 1024,
        web_enabled=True,
        web_bind=bind_host(settings),  # a loopback address only, without a token
        web_host=bind_host(settings),
        web_port=settings.web_port,
        web_in_thread=False,
        # Every path but /health and /ready needs the token, when one is set.
        web_application_options={"middlewares": [middleware(Access.of(settings))]},
        # Acks are manual and come after a flush: unflushed events are simply redelivered,
        # so a stop or rebalance need not wait for them (the offset marks make that safe).
        stream_wait_empty=False,
        # A worker killed without leaving its group holds its partitions until this expires.
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_s / 3),
        # A send not acknowledged after this long fails (streams.engine.delivery).
        producer_request_timeout=settings.kafka_request_timeout_s,
        Table=TrackedTable,  # its changelog records are checked by the flush (below)
    )

    async def delivered() -> None:
        """Table changelogs (buffered by Faust) and sent messages are all sent or failed."""
        await app.producer.buffer.flush()
        await app.producer.flush()

    def stop(failure: SendFailed) -> None:
        """A send failed: the worker stops, no offset committed past it, its tables rebuilt
        from their changelogs at the next start (streams.engine.delivery)."""
        mark_tables_stale(settings.worker_data_dir, app.conf.tabledir, failure)
        log.critical("%s", failure)
        crashing.append(asyncio.ensure_future(app.crash(failure)))

    crashing: list[asyncio.Future[None]] = []

    # Each stage's sends since its flush, checked before it acks (streams.engine.delivery).
    delivery = Delivery(
        delivered, settings.kafka_request_timeout_s, stop, refused=(KafkaError, ProducerSendError)
    )
    ingest_sends, stage_sends, publisher_sends = (
        delivery.sends(name) for name in ("ingest", "entity stage", "publisher")
    )

    limits = Limits(
        settings.max_event_bytes, settings.currency, dict(settings.fx_rates),
        future_s=settings.future_tolerance_s,
    )  # fmt: skip
    stats = PipelineStats()
    # What faust drops in a rebalance is read again (streams.engine.faust.rebalance).
    install_transport(app, stats, settings.fetch_max_wait_ms)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    reference = ReferenceCache()
    reference_ready = asyncio.Event()
    exchange_ready = asyncio.Event()  # the first cut with this worker's input partitions
    logical = {settings.topic(spec.name): spec.name for spec in INPUT_TOPICS}
    windows = CellWindows(settings.zone)
    watermark = Watermark(settings.idle_close_s, lambda t, p, o: _caught_up(app, t, p, o))
    cluster = ClusterWatermark()
    exchange = ProgressExchange(kafka.client, settings.topic("internal.progress"), list(logical))
    graces = Graces(int(settings.grace_minute_s * 1000), int(settings.grace_calendar_s * 1000))
    retention = Retention(
        int(settings.retention_minute_s * 1000),
        int(settings.retention_day_s * 1000),
        int(settings.retention_calendar_s * 1000),
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw")

    def batch_topic(name: str, value_serializer: Any) -> faust.TopicT:
        """An internal topic of batch messages, ``BATCHES_WAITING`` of them waiting at most
        (faust's ``app.topic`` takes ``maxsize`` and drops it, 0.15.3: ``faust.Topic``
        keeps it)."""
        return faust.Topic(
            app,
            topics=[settings.topic(name)],
            key_serializer="raw",
            value_serializer=value_serializer,
            maxsize=BATCHES_WAITING,
        )

    inputs = app.topic(*logical, key_serializer="raw", value_serializer="raw")
    deadletter_topic = raw_topic("sales.deadletter")
    late_topic = raw_topic("sales.late")
    updates_topic = raw_topic("kpi.updates")
    codec = register_codec()
    entities_topic = batch_topic("internal.entities", codec)
    cells_topic = batch_topic("internal.cells", "raw")
    progress_topic = raw_topic("internal.progress")
    client = redis_client(settings)
    read_model = ReadModel(client, settings.redis_prefix)

    def send_deadletter(sends: Sends) -> Send:
        async def send(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
            await sends.send(deadletter_topic.send(key=key, value=value, headers=headers))

        return send

    probe = GapProbe(kafka.client)
    ingest_stage = IngestStage(
        logical=logical,
        limits=limits,
        reference=reference,
        stats=stats,
        watermark=watermark,
        cluster=cluster,
        assigned_inputs=lambda: _assigned_inputs(app, logical),
        partitions=settings.topic_partitions,
        sends=ingest_sends,
        send_entities=lambda key, value, partition: entities_topic.send(
            key=key, value=value, partition=partition
        ),
        dead_letter=send_deadletter(ingest_sends),
    )

    def table(name: str, sends: Sends) -> Any:
        # orjson for keys and values (changelog records and RocksDB): faust's json codec
        # was a fifth of the worker's memory at the CRM replay's peak, and slow.
        # A copy: faust's store pops keys from the dict it is given.
        options = {**STORE_MEMORY, BUDGET_OPTION: settings.store_memory_mb * 1024**2}
        created: Any = app.Table(name, default=None, key_type=str, options=options)
        created.key_serializer = created.value_serializer = codec  # before its store exists
        created.sent = sends  # its changelog records, checked by the stage's flush
        return created

    stage = EntityStage(
        seen=table("entity-seen", stage_sends),
        entities=table("entities", stage_sends),
        cells=table("cells", stage_sends),
        stream_time=table("stream-time", stage_sends),
        cells_topic=cells_topic,
        late_topic=late_topic,
        windows=windows,
        graces=graces,
        retention=retention,
        idle_close_s=settings.idle_close_s,
        publisher_partitions=settings.topic_partitions,
        stats=stats,
        assigned=lambda: _assigned(app, settings.topic("internal.entities")),
        caught_up=lambda p, o: _caught_up(app, settings.topic("internal.entities"), p, o),
        committed=lambda p: _committed(app, (settings.topic("internal.entities"), p)),
        upstream_quiet=lambda: cluster.quiet,
        sends=stage_sends,
        failures=StageFailures("entity-stage", send_deadletter(stage_sends), stats.stage_errors),
        read_source=probe.value_at,
        cache_size=settings.table_cache_keys,
        entity_horizon_ms=int(settings.entity_horizon_s * 1000),
        table_io=FaustTables(),
    )
    publisher = Publisher(
        cells=table("published-cells", publisher_sends),
        base=table("customer-base", publisher_sends),
        marks=table("publisher-stream-time", publisher_sends),
        # Straight to aiokafka, in batches (streams.engine.faust.batch_send): faust's Topic.send
        # machinery per record, then aiokafka's, were most of what publishing cost.
        send_updates=lambda records: send_records(app, updates_topic.get_topic_name(), records),
        read_model=read_model,
        reference=reference,
        windows=windows,
        graces=graces,
        retention=retention,
        entity_partitions=settings.topic_partitions,
        lead_sla_ms=int(settings.lead_sla_s * 1000),
        currency=settings.currency,
        sends=publisher_sends,
        failures=StageFailures("publisher", send_deadletter(publisher_sends), stats.stage_errors),
        observe_latency=stats.latency.observe,
        cache_size=settings.table_cache_keys,
        table_io=FaustTables(),
    )
    hours = parse_business_hours(settings.business_hours)
    physical = {
        settings.topic(name): name
        for name in (*logical.values(), *(t.name for t in INTERNAL_TOPICS))
    }
    cells_partitions = lambda: _assigned(app, settings.topic("internal.cells"))  # noqa: E731
    registry.register(
        PipelineCollector(
            stats,
            assigned=lambda: _assigned_count(app),
            lag=lambda: _lag(app, physical),
            stream_time=lambda: publisher.stream_seconds(cells_partitions()),
            business_hours=lambda: hours.contains(datetime.now(settings.zone)),
        )
    )
    registry.register(
        KpiCollector(
            lambda cap: publisher.gauge_cells(cells_partitions(), cap),
            settings.currency,
            settings.metrics_key_cap,
        )
    )

    @app.task
    async def reference_data() -> None:
        await follow_reference(settings, reference, reference_ready)

    # Each stage processes every offset of its partitions in order (streams.engine.faust.gaps).
    def gap_sought(stage_name: str) -> None:
        stats.gaps_sought[stage_name] += 1

    ingest_guard = GuardedStage(app, "ingest", gap_sought, probe, frozenset(logical))
    stage_guard = GuardedStage(
        app, "entity-stage", gap_sought, probe, frozenset({settings.topic("internal.entities")})
    )
    publisher_guard = GuardedStage(
        app, "publisher", gap_sought, probe, frozenset({settings.topic("internal.cells")})
    )

    @app.task
    async def gap_probe() -> None:
        """The broker reader the offset guards ask whether a gap holds messages."""
        await probe.start()
        try:
            await asyncio.Event().wait()
        finally:
            await probe.stop()

    @app.timer(interval=1.0)
    async def retry_gaps() -> None:
        for guarded in (ingest_guard, stage_guard, publisher_guard):
            await guarded.retry()
            await guarded.resume_silent()

    async def route(manual: Any, event: Any) -> None:
        await ingest_stage.route(event.message, event.value)
        ingest_stage.routed(manual, event)  # acked by the flush, once what it caused is sent

    @app.agent(inputs, name="ingest")
    async def ingest(stream: faust.StreamT[Any]) -> None:
        """Validate, dead-letter, join and route every input event to its entities."""
        await reference_ready.wait()
        # Not before the cluster watermark knows this worker's partitions and the others'
        # cuts: an event routed earlier would carry no watermark (never late).
        await exchange_ready.wait()
        log.info("reference data and cluster watermark ready: counting input events")
        await ingest_guard.run(stream, route, ingest_stage)

    @app.agent(entities_topic, name="entity-stage")
    async def entity_stage(stream: faust.StreamT[Any]) -> None:
        """Dedup, lateness, entity histories and partial cells; acked once flushed."""
        await stage_guard.run(stream, stage.process, stage)

    @app.agent(cells_topic, name="publisher")
    async def publish(stream: faust.StreamT[Any]) -> None:
        """Merge partial cells, close windows, publish to kpi.updates and Redis."""
        await publisher_guard.run(stream, publisher.process, publisher)

    # The flush order, one loop for the three stages (streams.engine.checkpoint); each
    # flushes once its input is drained, else on the clock (streams.engine.cadence).
    def drained(guarded: GuardedStage) -> Callable[[], bool]:
        return lambda: guarded.queue_empty is not None and guarded.queue_empty()

    def waiting(staged: IngestStage | EntityStage | Publisher) -> Callable[[], bool]:
        return lambda: bool(staged.pending)

    every_s = settings.engine_flush_interval_s
    stages: list[tuple[str, IngestStage | EntityStage | Publisher, GuardedStage]] = [
        ("ingest", ingest_stage, ingest_guard),
        ("entity stage", stage, stage_guard),
        ("publisher", publisher, publisher_guard),
    ]
    flushing = [
        Flushing(name, Cadence(every_s), staged.flush, waiting(staged), drained(guarded))
        for name, staged, guarded in stages
    ]
    flush_order = Checkpoint(flushing, stopping=(NotReady,))

    @app.task
    async def flush() -> None:
        await flush_order.run(lambda: bool(app.should_stop))

    entities_name, cells_name = (
        settings.topic("internal.entities"),
        settings.topic("internal.cells"),
    )

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """A rebalance (faust has stopped the flow): the entity stage and the publisher drop
        what they have not flushed of the revoked partitions, once a flush under way is
        done; their next owner reads them again from the committed offsets
        (streams.engine.entity_stage). The ingest keeps its pending acks: what it routed is
        in Kafka once its next flush is done."""
        revoked: set[TP] = args[0]
        async with stage.lock:
            stage.revoke({tp.partition for tp in revoked if tp.topic == entities_name})
        async with publisher.lock:
            publisher.revoke({tp.partition for tp in revoked if tp.topic == cells_name})

    published: dict[Source, Progress] = {}
    heartbeat_sent: dict[str, int] = {}

    async def exchange_tick(republish: bool) -> None:
        """Take this worker's cut (as of the last flush: what it routed before is in Kafka),
        publish it, read everyone's and the input end offsets, move the cluster watermark;
        when it moves, every entity partition hears of it (a heartbeat): stream time follows
        the watermark without events too (a burst is over, its slowest partitions turn
        quiet)."""
        now = time.monotonic()
        cut = {
            source: watermark.progress(source, _committed(app, source), now)
            for source in _assigned_inputs(app, logical)
        }
        for source, record in cut.items():
            if republish or published.get(source) != record:
                await progress_topic.send(key=exchange.key(source), value=record.encode())
                published[source] = record
        records = await exchange.poll()
        sources = await exchange.sources()
        ends = await exchange.ends()  # read after the cut: events since then are seen
        if not sources:
            raise RuntimeError("no input partition in the broker's metadata yet")
        tick(watermark, cluster, cut, records, sources, ends)
        if cut and not exchange_ready.is_set():
            log.info("cluster watermark: first cut taken (%s)", cluster.view.describe())
            exchange_ready.set()
        if cluster.last is not None and cluster.last != heartbeat_sent.get("wm"):
            await ingest_stage.send_routed(heartbeat=cluster.last)  # after what it routed
            heartbeat_sent["wm"] = cluster.last

    @app.task
    async def watermark_exchange() -> None:
        """The cluster watermark, one tick every flush interval (streams.engine.watermark.clock)."""
        await exchange.start()
        ticks = 0
        try:
            while True:
                ticks += 1
                try:  # all cuts again every ~5 s: a partition back from another worker
                    await exchange_tick(republish=ticks % 10 == 1)
                except NotReady:  # stopping
                    pass
                except Exception:  # not worth a crash: the watermark holds until next tick
                    log.exception("watermark exchange: tick failed, the watermark holds")
                await asyncio.sleep(settings.engine_flush_interval_s)
        finally:
            await exchange.stop()

    @app.timer(interval=10.0)
    async def status() -> None:
        """Where stream time stands and why: the first thing to read when windows stay open."""
        log.info(
            "status: watermark=%s (%s) entity partitions %s publisher %s",
            cluster.last,
            cluster.view.describe(),
            stage.status(),
            publisher.status(),
        )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), content_type=METRICS_CONTENT_TYPE)

    def worker_state() -> WorkerState:
        return WorkerState(
            assigned=_assigned_count(app),
            behind=_behind(app, physical),
            rebalancing=bool(app.rebalancing),
            recovering=bool(app.in_recovery),
            redis_error=redis_check.error,
        )

    redis_check = RedisCheck(client)
    register_health(app, worker_state, redis_check, settings.ready_max_lag)
    register_api(app, settings, client)
    register_tv(app, settings, client, reference)
    return app


def _assigned(app: faust.App, topic: str) -> list[int]:
    """Partitions of ``topic`` assigned to this worker right now."""
    try:
        return sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)
    except Exception:  # no consumer yet, or between rebalances
        return []


def _assigned_inputs(app: faust.App, inputs: dict[str, str]) -> list[tuple[str, int]]:
    try:
        return [(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in inputs]
    except Exception:
        return []


def _committed(app: faust.App, source: Source) -> int | None:
    """The group's committed offset of an input partition (Kafka's: the next to read)."""
    try:
        return app.consumer._committed_offset.get(TP(*source))  # type: ignore[attr-defined]
    except Exception:  # no consumer yet, or between rebalances
        return None


def _caught_up(app: faust.App, topic: str, partition: int, processed: int | None) -> bool:
    """Whether this worker has processed everything known to be in ``topic[partition]``."""
    tp = TP(topic, partition)
    try:
        highwater = app.consumer.highwater(tp)
    except Exception:  # no consumer yet, or between rebalances
        return False
    if highwater is None:
        return False
    if processed is None:  # nothing processed since start: caught up if committed at the end
        if highwater == 0:
            return True
        # Faust keeps Kafka's meaning: the committed offset is the next one to read.
        committed = app.consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
        return committed is not None and committed >= highwater
    return processed + 1 >= highwater


def _lag(app: faust.App, physical: dict[str, str]) -> list[tuple[str, int, int]]:
    """(logical topic, partition, messages behind the committed offset) per assigned partition
    whose end is known."""
    return [(topic, p, behind) for topic, p, behind in _behind(app, physical) if behind is not None]


def _behind(app: faust.App, physical: dict[str, str]) -> list[tuple[str, int, int | None]]:
    """(logical topic, partition, messages behind the committed offset or None while its end
    is not known) per assigned partition of the pipeline's topics (not table changelogs).
    From what the consumer keeps in memory: no request to Kafka."""
    out: list[tuple[str, int, int | None]] = []
    try:
        assignment = list(app.consumer.assignment())
    except Exception:  # no consumer yet, or between rebalances
        return out
    for tp in assignment:
        if tp.topic not in physical:
            continue  # table changelogs
        try:
            highwater = app.consumer.highwater(tp)
        except Exception:
            highwater = None
        if highwater is None:
            out.append((physical[tp.topic], tp.partition, None))
            continue
        committed = app.consumer._committed_offset.get(tp) or 0  # type: ignore[attr-defined]
        out.append((physical[tp.topic], tp.partition, max(0, highwater - committed)))
    return out


def _assigned_count(app: faust.App) -> int:
    """Partitions assigned to this worker right now (0 before it joined its group)."""
    try:
        return len(app.consumer.assignment())
    except Exception:
        return 0
