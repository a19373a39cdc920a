"""End to end: an order produced by kcat (an independent client) shows up in Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson

from streams.connections.redis import sync_redis_client
from streams.settings import Settings
from streams.topics import ensure_topics
from tests.kafka_tools import header, kcat_consume, kcat_produce, needs_kcat
from tests.support import eventually, revenue_by_rep, running_worker

pytestmark = needs_kcat


def order(rep_id: str, amount: str, occurred_at: datetime, **extra: object) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "order.placed",
            "occurred_at": occurred_at.isoformat(),
            "source": "kcat",
            "schema_version": 1,
            "order_id": f"ord-{uuid.uuid4().hex[:8]}",
            "account_id": "acct-1",
            "rep_id": rep_id,
            "amount": amount,
            "currency": "EUR",
            **extra,
        }
    )


def test_order_from_kcat_becomes_todays_revenue_in_redis(
    settings: Settings, tmp_path: Path
) -> None:
    asyncio.run(ensure_topics(settings))
    now = datetime.now(settings.zone)
    expected = {"rep-ana": Decimal("1299.99"), "rep-bob": Decimal("17.00")}

    def revenue() -> dict[str, Decimal]:
        return revenue_by_rep(settings, now.date())

    with running_worker(settings, tmp_path / "worker.log"):
        kcat_produce(settings, "sales.orders", "acct-1", order("rep-ana", "1200.50", now))
        kcat_produce(settings, "sales.orders", "acct-2", order("rep-ana", "99.49", now))
        kcat_produce(settings, "sales.orders", "acct-3", order("rep-bob", "10.00", now))
        # Not countable: must reach the dead letters, and must not stop the worker.
        kcat_produce(settings, "sales.orders", "acct-4", b"this is not json")
        usd = order("rep-bob", "5.00", now, currency="USD")
        kcat_produce(settings, "sales.orders", "acct-5", usd)
        kcat_produce(settings, "sales.orders", "acct-6", order("rep-bob", "7.00", now))

        eventually(lambda: revenue() == expected, timeout=60)
        assert revenue() == expected
        client = sync_redis_client(settings)
        start = int(datetime.combine(now.date(), datetime.min.time(), settings.zone).timestamp())
        leaderboard = client.zrevrange(
            f"{settings.redis_prefix}lb:revenue:day:{start}:rep", 0, -1, withscores=True
        )
        assert leaderboard == [(b"rep-ana", 1299.99), (b"rep-bob", 17.0)]

        dead = eventually(lambda: len(d := kcat_consume(settings, "sales.deadletter")) == 2 and d)
        by_reason = {header(m, "reason"): m for m in dead}
        assert set(by_reason) == {"not_json", "unsupported_currency"}
        assert by_reason["not_json"]["payload"] == "this is not json"
        assert by_reason["unsupported_currency"]["payload"] == usd.decode()
        assert header(by_reason["not_json"], "source_topic") == settings.topic("sales.orders")
        assert header(by_reason["not_json"], "source_offset").isdigit()
