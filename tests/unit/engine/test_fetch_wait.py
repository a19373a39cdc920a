"""The worker's consumer holds a fetch at most ``fetch_max_wait_ms``, not faust's 1.5 s."""

from __future__ import annotations

import inspect
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer

from streams.engine.faust.fetch_wait import FAUST_FETCH_MAX_WAIT_MS
from streams.engine.faust.rebalance import install
from streams.observability.metrics import PipelineStats


def worker_consumer(**options: Any) -> Any:
    """The aiokafka consumer faust would run (built, never started: no broker)."""
    app = faust.App("fetch-wait-test", broker="kafka://127.0.0.1:9", store="memory://")
    install(app, PipelineStats(), **options)
    consumer: Any = app.consumer
    return consumer._thread._create_worker_consumer(app.transport)


async def test_the_worker_consumer_holds_fetches_at_most_the_setting() -> None:
    assert worker_consumer(fetch_max_wait_ms=100)._fetch_max_wait_ms == 100
    assert worker_consumer()._fetch_max_wait_ms == FAUST_FETCH_MAX_WAIT_MS == 1500
    # aiokafka gives its fetcher the consumer's value when it starts: set before, it holds.
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(AIOKafkaConsumer.start)
