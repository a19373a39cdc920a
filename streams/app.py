"""Build the Faust app from settings: topics, tables, agents and web views (thin glue).

Nothing is wired at import time; ``build_app(settings)`` does it all, so tests and several
workers can each build their own.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from streams.events import InvalidEvent, OrderPlaced, decode_order
from streams.metrics import PipelineCollector, PipelineStats
from streams.read_model import RevenueReadModel
from streams.revenue import add_amount, business_day, revenue_key
from streams.settings import Settings

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"  # aiohttp refuses a charset parameter here


def build_app(settings: Settings) -> faust.App:
    """A Faust app computing today's revenue per rep from ``sales.orders``."""
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
    zone = settings.zone
    stats = PipelineStats()
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(PipelineCollector(stats))

    orders_topic = app.topic(
        settings.topic("sales.orders"), key_serializer="raw", value_serializer="raw"
    )
    by_rep_topic = app.topic(
        settings.topic("internal.orders-by-rep"), key_serializer="raw", value_serializer="raw"
    )
    deadletter_topic = app.topic(
        settings.topic("sales.deadletter"), key_serializer="raw", value_serializer="raw"
    )
    revenue = app.Table(
        "revenue-by-rep-day", default=None, key_type=str, value_type=str,
        partitions=settings.topic_partitions,
    )  # fmt: skip
    redis_client = aioredis.from_url(settings.redis_url)
    read_model = RevenueReadModel(redis_client, settings.redis_prefix)

    @app.agent(orders_topic, name="ingest-orders")
    async def ingest_orders(stream: faust.StreamT[Any]) -> None:
        """Validate orders; valid ones go on keyed by rep, invalid ones to the dead letters."""
        async for event in stream.events():
            message = event.message
            try:
                order = decode_order(event.value, settings.currency)
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
            stats.event(message.topic, order.type, order.occurred_at.timestamp())
            await by_rep_topic.send(key=order.rep_id.encode(), value=event.value)

    @app.agent(by_rep_topic, name="revenue-by-rep")
    async def count_revenue(stream: faust.StreamT[Any]) -> None:
        """Add each order to its rep's revenue for the order's business day."""
        async for raw in stream:
            order = OrderPlaced.model_validate_json(raw)  # validated upstream
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
