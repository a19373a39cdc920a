"""Build the Faust app from settings: topics, tables, agents and web views (thin glue).

Nothing is wired at import time; ``build_app(settings)`` does it all, so tests and several
workers can each build their own.

Flow: every input topic -> ``ingest`` (validate, dead-letter, dedup, reference join) ->
``internal.orders-by-rep`` -> ``revenue-by-rep`` (table + Redis read model).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from streams.codec import register_codec
from streams.contracts.events import OrderPlaced
from streams.ingest.dedup import is_duplicate
from streams.ingest.enrich import EnrichedEvent, dimensions
from streams.ingest.reference_cache import ReferenceCache
from streams.ingest.reference_feed import follow_reference
from streams.ingest.validate import InvalidEvent, Limits, validate
from streams.metrics import PipelineCollector, PipelineStats
from streams.read_model import RevenueReadModel
from streams.revenue import add_amount, business_day, revenue_key
from streams.settings import Settings
from streams.topics import INPUT_TOPICS

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"  # aiohttp refuses a charset parameter here


def build_app(settings: Settings) -> faust.App:
    """A Faust app validating every input topic and computing revenue per rep and day."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.store,
        datadir=str(settings.worker_data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )
    codec = register_codec()
    zone = settings.zone
    limits = Limits(settings.max_event_bytes, settings.currency, dict(settings.fx_rates))
    horizon = float(settings.dedup_horizon_s)
    stats = PipelineStats()
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(PipelineCollector(stats, assigned=lambda: _assigned_partitions(app)))
    reference = ReferenceCache()
    reference_ready = asyncio.Event()
    logical = {settings.topic(spec.name): spec.name for spec in INPUT_TOPICS}

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw")

    inputs = app.topic(*logical, key_serializer="raw", value_serializer="raw")
    deadletter_topic = raw_topic("sales.deadletter")
    by_rep_topic = app.topic(
        settings.topic("internal.orders-by-rep"), key_serializer="raw", value_serializer=codec
    )
    # event_id -> event time (epoch s) of its first occurrence. Written in the context of the
    # source message, so it lives on the source partition: a duplicate keyed like its original
    # (a retry, a replay) is found across restarts, from the changelog.
    seen = app.Table("seen-events", default=None, key_type=str, value_type=float)
    revenue = app.Table("revenue-by-rep-day", default=None, key_type=str, value_type=str)
    redis_client = aioredis.from_url(settings.redis_url)
    read_model = RevenueReadModel(redis_client, settings.redis_prefix)

    @app.task
    async def reference_data() -> None:
        await follow_reference(settings, reference, reference_ready)

    @app.agent(inputs, name="ingest")
    async def ingest(stream: faust.StreamT[Any]) -> None:
        """Validate, dead-letter, dedup and join every input event."""
        await reference_ready.wait()
        log.info("reference data ready: counting input events")
        async for event in stream.events():
            message = event.message
            try:
                valid = validate(event.value, logical[message.topic], limits)
            except InvalidEvent as exc:
                stats.dead_letters[exc.reason] += 1
                await deadletter_topic.send(
                    key=message.topic.encode(),
                    value=event.value,
                    headers=[
                        ("reason", exc.reason.encode()),
                        ("detail", exc.detail.encode()[:2000]),
                        ("source_topic", message.topic.encode()),
                        ("source_partition", str(message.partition).encode()),
                        ("source_offset", str(message.offset).encode()),
                    ],
                )
                continue
            item = valid.event
            occurred = item.occurred_at.timestamp()
            if is_duplicate(seen.get(item.event_id), occurred, horizon):
                stats.duplicates[item.type] += 1
                continue
            seen[item.event_id] = occurred
            stats.event(logical[message.topic], item.type, occurred)
            if valid.unknown_fields:
                stats.unknown_fields[item.type] += len(valid.unknown_fields)
            dims = dimensions(item, reference)
            for miss in dims.misses:
                stats.reference_misses[miss] += 1
            if isinstance(item, OrderPlaced):
                enriched = EnrichedEvent(event=item, dims=dims)
                await by_rep_topic.send(key=item.rep_id.encode(), value=enriched)

    @app.agent(by_rep_topic, name="revenue-by-rep")
    async def count_revenue(stream: faust.StreamT[Any]) -> None:
        """Add each order to its rep's revenue for the order's business day."""
        async for value in stream:
            order = EnrichedEvent.model_validate(value).event
            if not isinstance(order, OrderPlaced):  # only orders are routed here
                continue
            day = business_day(order.occurred_at, zone)
            key = revenue_key(order.rep_id, day)
            total = add_amount(revenue.get(key), order.amount)
            revenue[key] = total
            read_model.stage(day, order.rep_id, total)

    @app.timer(interval=settings.redis_flush_interval_s)
    async def flush_read_model() -> None:
        await read_model.flush()

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), content_type=METRICS_CONTENT_TYPE)

    return app


def _assigned_partitions(app: faust.App) -> int:
    """Partitions assigned to this worker right now (0 before it joined its group)."""
    try:
        return len(app.consumer.assignment())
    except Exception:  # no consumer yet, or between rebalances
        return 0
