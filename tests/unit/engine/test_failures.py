"""streams.engine.failures: a stage's dead letters, their headers, revoke and count."""

from __future__ import annotations

import asyncio
from collections import Counter

from streams.engine.failures import STAGE_ERROR, Origin, StageFailures


def test_the_source_of_a_routed_item_is_parsed_from_its_src() -> None:
    assert Origin.parse("t1.sales.orders/3/18342") == Origin("t1.sales.orders", 3, 18342)


def test_a_failure_is_sent_at_the_flush_with_its_headers_and_counted_once_delivered() -> None:
    sent: list[tuple[bytes, bytes, dict[str, bytes]]] = []

    async def send(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        sent.append((key, value, dict(headers)))

    errors: Counter[str] = Counter()
    failures = StageFailures("entity-stage", send, errors)
    failures.add(0, Origin("sales.orders", 0, 7), b"{}", KeyError("rep"), role="account")
    failures.add(1, Origin("sales.calls", 1, 9), b"[]", ValueError("year 0"), role="event")
    failures.revoke({1})  # its next owner fails on it again and sends it
    assert errors == Counter()
    assert asyncio.run(failures.send_pending()) == 1
    failures.count(1)
    assert errors == Counter({"entity-stage": 1})
    ((key, value, headers),) = sent
    assert (key, value) == (b"sales.orders", b"{}")
    assert headers["reason"] == STAGE_ERROR.encode()
    assert headers["stage"] == b"entity-stage"
    assert headers["role"] == b"account"
    assert headers["error"] == b"KeyError: 'rep'"
    assert (headers["source_topic"], headers["source_partition"], headers["source_offset"]) == (
        b"sales.orders", b"0", b"7",
    )  # fmt: skip
    assert b"fix the worker" in headers["detail"]
    assert asyncio.run(failures.send_pending()) == 0  # sent once
