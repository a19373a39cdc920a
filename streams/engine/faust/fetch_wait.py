"""How long the broker may hold a fetch of aiokafka, which faust fixes at 1.5 s (Faust glue).

aiokafka sends one fetch request per broker for the partitions it has nothing buffered of,
and sends the next only once that one is answered. The broker answers when it has data for
any of them, or after ``fetch_max_wait_ms``. So while the partitions with data are still
buffered, a request for the idle ones (the other input topics, the quiet internal
partitions) is held the full wait, and a partition drained meanwhile waits for it: its next
events are fetched up to that long after they were produced. faust builds its worker's
consumer with ``fetch_max_wait_ms=1500`` whatever its settings
(``AIOKafkaConsumerThread._create_worker_consumer``).

Measured at 1,000 orders/s (``python -m bench.run``): orders were 1.2-2 s old when fetched,
fetches stalled for half a second at a time, and each of the pipeline's three hops paid it
(produce -> Redis p50 5.3 s). Here the wait is ``Settings.fetch_max_wait_ms`` (100 ms by
default): an idle worker sends about ten fetch requests a second per broker instead of one.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

FAUST_FETCH_MAX_WAIT_MS = 1500


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's aiokafka consumer thread, its worker consumer holding fetches at most the
    transport's ``fetch_max_wait_ms`` (``streams.engine.faust.rebalance.Transport``)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka passes it to its fetcher when the consumer starts, not before.
        consumer._fetch_max_wait_ms = getattr(
            transport, "fetch_max_wait_ms", FAUST_FETCH_MAX_WAIT_MS
        )
        return consumer
