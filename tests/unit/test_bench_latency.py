"""The latency bench's reading of Redis: an order is seen once its rep's revenue includes it."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from bench.latency import Waiting, order_event, rep_of


def revenue(value: str | None) -> bytes:
    return orjson.dumps({"value": value, "numerator": value, "denominator": None})


def test_an_order_is_seen_once_its_rep_s_revenue_holds_as_many_orders() -> None:
    waiting = Waiting()
    for at in (0.0, 0.1, 0.2):
        waiting.add("day1", "bench-lat-0", at)
    waiting.add("day1", "bench-lat-1", 0.15)
    assert waiting.to_ask() == [("day1", ["bench-lat-0", "bench-lat-1"])]
    assert waiting.seen("day1", "bench-lat-0", None, 0.3) == []  # nothing published yet
    assert waiting.seen("day1", "bench-lat-0", revenue(None), 0.3) == []
    seen = waiting.seen("day1", "bench-lat-0", revenue("200.00"), 0.5)  # the first two
    assert [round(ms) for ms in seen] == [500, 400]
    assert waiting.missing() == 2
    assert waiting.seen("day1", "bench-lat-0", revenue("200.00"), 0.9) == []  # not the third
    assert [round(ms) for ms in waiting.seen("day1", "bench-lat-1", revenue("100.00"), 1.0)] == [
        850
    ]
    assert waiting.to_ask() == [("day1", ["bench-lat-0"])]


def test_a_new_day_counts_its_orders_from_one() -> None:
    waiting = Waiting()
    waiting.add("day1", "bench-lat-0", 0.0)
    waiting.add("day2", "bench-lat-0", 1.0)  # past midnight: a new hash, a new count
    assert [round(ms) for ms in waiting.seen("day2", "bench-lat-0", revenue("100.00"), 1.2)] == [
        200
    ]
    assert waiting.missing() == 1


def test_a_rep_s_orders_share_one_kafka_key() -> None:
    now = datetime.now(UTC)
    keys = {order_event(i, now, rep_of(i, 40), f"bench-acct-{i % 40}")[0] for i in (3, 43)}
    assert keys == {b"bench-acct-3"}
    assert rep_of(43, 40) == "bench-lat-3"
