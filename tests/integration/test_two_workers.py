"""Two workers in one consumer group share the partitions and give the same numbers as one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson

from streams.settings import Settings
from streams.stack.ports import free_port
from streams.topics import ensure_topics
from tests.kafka_tools import kcat_produce, needs_kcat, worker_metric
from tests.support import eventually, revenue_by_rep, running_worker

pytestmark = needs_kcat


def test_two_workers_split_the_work_and_agree_with_the_totals(
    tmp_path: Path, settings: Settings
) -> None:
    asyncio.run(ensure_topics(settings))
    now = datetime.now(settings.zone)
    second = settings.model_copy(update={"web_port": free_port(), "data_dir": tmp_path / "w2"})
    expected: dict[str, Decimal] = {}

    def revenue() -> dict[str, Decimal]:
        return revenue_by_rep(settings, now.date())

    with (
        running_worker(settings, tmp_path / "worker-1.log"),
        running_worker(second, tmp_path / "worker-2.log"),
    ):
        # Both have joined the group and own partitions: the work is shared from the start.
        eventually(
            lambda: all(worker_metric(s, "salespulse_assigned_partitions") > 0
                        for s in (settings, second)),
            timeout=90,
        )  # fmt: skip
        for n in range(40):
            rep, account = f"rep-{n % 7}", f"acct-{n % 13}"
            amount = Decimal(n * 37 % 500) + Decimal("0.25")
            expected[rep] = expected.get(rep, Decimal(0)) + amount
            event = {
                "event_id": str(uuid.uuid4()), "type": "order.placed",
                "occurred_at": now.isoformat(), "source": "test", "order_id": f"o-{n}",
                "account_id": account, "rep_id": rep, "amount": str(amount), "currency": "EUR",
            }  # fmt: skip
            kcat_produce(settings, "sales.orders", account, orjson.dumps(event))
        eventually(lambda: revenue() == expected, timeout=90)

        # Applied (after dedup, counted once flushed): exactly the 40, split between them.
        # Ingested counts deliveries: an order routed again after a rebalance counts twice.
        def applied() -> list[float]:
            return [
                worker_metric(s, "salespulse_events_applied_total", type="order.placed")
                for s in (settings, second)
            ]

        eventually(lambda: sum(applied()) >= 40)  # counted once flushed, just after
        ingested = [
            worker_metric(s, "salespulse_events_total", type="order.placed")
            for s in (settings, second)
        ]
        assert sum(applied()) == 40, applied()
        assert all(count > 0 for count in ingested), ingested  # both workers took a share
