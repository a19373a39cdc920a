"""The ingest stage without a broker: what it routes of a valid event, what it dead-letters,
and its flush: sends first, checked, then the watermark's cut, then the acks
(streams/engine/ingest_stage.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import orjson

from streams.contracts.examples import EVENT_EXAMPLES
from streams.engine.ingest_stage import FULL, IngestStage
from streams.engine.routing import partition_of
from streams.engine.watermark.clock import ClusterWatermark, Watermark
from streams.ingest.reference_cache import ReferenceCache
from streams.ingest.validate import Limits
from streams.observability.metrics import PipelineStats

PARTITIONS = 4
ORDER = EVENT_EXAMPLES["order.placed"]
NOW = 1_800_000_000.0  # well after every example's time


class Recorder:
    """The stage's sends and acks, in the order they happen."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.cut: list[dict[Any, Any]] = []  # the watermark's delivered cut at each confirm
        self.watermark: Watermark | None = None

    async def send(self, sending: Any) -> None:
        self.log.append(("send", *await sending))

    async def confirm(self) -> None:
        self.log.append(("confirm",))
        if self.watermark is not None:
            self.cut.append(dict(self.watermark.delivered))

    async def ack(self, event: Any) -> None:
        self.log.append(("ack", event))

    async def dead_letter(self, key: bytes, value: bytes, headers: Any) -> None:
        self.log.append(("dead letter", key, dict(headers)))


def ingest_stage(recorder: Recorder) -> IngestStage:
    async def send_entities(key: bytes, value: dict[str, Any], partition: int) -> Any:
        return key, partition, value

    return IngestStage(
        logical={"t.sales.orders": "sales.orders"},
        limits=Limits(100_000, "EUR", {"USD": Decimal("0.9")}),
        reference=ReferenceCache(),
        stats=PipelineStats(),
        watermark=Watermark(60.0, lambda topic, partition, offset: False),
        cluster=ClusterWatermark(),
        assigned_inputs=lambda: [("t.sales.orders", 0)],
        partitions=PARTITIONS,
        sends=recorder,  # type: ignore[arg-type]
        send_entities=send_entities,
        dead_letter=recorder.dead_letter,
        clock=lambda: NOW,
    )


def message(offset: int) -> Any:
    return SimpleNamespace(topic="t.sales.orders", partition=0, offset=offset, timestamp=NOW)


def test_a_valid_event_is_routed_once_per_role_to_its_entity_partition() -> None:
    stage = ingest_stage(Recorder())
    asyncio.run(stage.route(message(7), orjson.dumps(ORDER)))
    routed = {
        (item["role"], item["key"]): partition
        for partition, items in stage.outbox.items.items()
        for item in items
    }
    expected = [
        ("event", ORDER["event_id"]),
        ("account", ORDER["account_id"]),
        ("opportunity", ORDER["opportunity_id"]),
    ]
    assert routed == {(role, key): partition_of(role, key, PARTITIONS) for role, key in expected}
    items = [item for items in stage.outbox.items.values() for item in items]
    assert {item["src"] for item in items} == {"t.sales.orders/0/7"}
    (event,) = [item for item in items if item["role"] == "event"]
    assert event["event"]["order_id"] == ORDER["order_id"]
    assert event["ts"] == NOW
    assert all("event" not in item for item in items if item["role"] != "event")
    assert stage.watermark.offset[("t.sales.orders", 0)] == 7
    assert stage.watermark.newest[("t.sales.orders", 0)] > 0


def test_an_invalid_event_is_dead_lettered_with_its_reason_and_routes_nothing() -> None:
    recorder = Recorder()
    stage = ingest_stage(recorder)
    asyncio.run(stage.route(message(3), b'{"type": "order.placed"'))
    ((what, key, headers),) = recorder.log
    assert (what, key) == ("dead letter", b"t.sales.orders")
    assert headers["reason"]
    assert headers["source_offset"] == b"3"
    assert headers["source_topic"] == b"t.sales.orders"
    assert headers["source_partition"] == b"0"
    assert stage.outbox.count == 0
    assert stage.watermark.offset[("t.sales.orders", 0)] == 3  # read: the partition moves on


def test_the_flush_sends_checks_then_acks_and_the_watermark_cut_follows_it() -> None:
    recorder = Recorder()
    stage = ingest_stage(recorder)
    recorder.watermark = stage.watermark

    async def run() -> None:
        for offset in (1, 2):
            await stage.route(message(offset), orjson.dumps(ORDER))
            stage.routed(recorder, f"event {offset}")
        await stage.flush()

    asyncio.run(run())
    kinds = [entry[0] for entry in recorder.log]
    sends = kinds.count("send")
    assert kinds == ["send"] * sends + ["confirm", "ack", "ack"]
    assert [entry[1] for entry in recorder.log if entry[0] == "ack"] == ["event 1", "event 2"]
    batches = [entry for entry in recorder.log if entry[0] == "send"]
    assert sends == len({partition for _, _, partition, _ in batches})  # one per partition
    assert sum(len(value["items"]) for _, _, _, value in batches) == 6  # 2 events x 3 roles
    assert stage.pending == []
    assert stage.outbox.count == 0
    # Other workers hear of what was routed only once it is in Kafka.
    assert recorder.cut == [{}]
    assert stage.watermark.delivered[("t.sales.orders", 0)][0] == 2


def test_a_heartbeat_follows_what_was_routed_to_every_entity_partition() -> None:
    recorder = Recorder()
    stage = ingest_stage(recorder)

    async def run() -> None:
        await stage.route(message(1), orjson.dumps(ORDER))
        await stage.send_routed(heartbeat=123)

    asyncio.run(run())
    keys = [entry[1] for entry in recorder.log]
    first_mark = keys.index(b"__wm__")
    assert set(keys[:first_mark]) == {b"__batch__"}
    assert first_mark > 0
    marks = recorder.log[first_mark:]
    assert sorted(entry[2] for entry in marks) == list(range(PARTITIONS))
    assert all(entry[1:4:2] == (b"__wm__", {"wm": 123}) for entry in marks)


def test_it_is_full_at_the_threshold() -> None:
    stage = ingest_stage(Recorder())
    for n in range(FULL - 1):
        stage.routed(Recorder(), n)
    assert not stage.full()
    stage.routed(Recorder(), FULL)
    assert stage.full()
