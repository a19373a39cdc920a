"""The offset guards ask the broker whether a gap in a partition's offsets holds messages:
a transactional producer's commit markers leave offsets unused, a lost message does not."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from streams.connections.kafka import kafka_options
from streams.engine.faust.gap_probe import GapProbe
from streams.settings import Settings
from tests.kafka_tools import create_topic


async def _probe(settings: Settings) -> list[bool | None]:
    topic = settings.topic("sales.orders")
    kafka = kafka_options(settings).client
    await create_topic(settings, topic)
    producer = AIOKafkaProducer(**kafka, transactional_id=f"{topic}-probe-test")
    await producer.start()
    try:
        for n in range(2):  # each transaction: one message, then its commit marker
            async with producer.transaction():
                await producer.send_and_wait(topic, f"order {n}".encode(), partition=0)
    finally:
        await producer.stop()
    # Offsets: 0 order 0, 1 marker, 2 order 1, 3 marker.
    probe = GapProbe(kafka)
    await probe.start()
    try:
        return [
            await probe.empty(topic, 0, expected=1, handed=2),  # only a marker between
            await probe.empty(topic, 0, expected=0, handed=2),  # order 0 was lost
            await probe.empty(topic, 0, expected=3, handed=4),  # nothing at or after 3
        ]
    finally:
        await probe.stop()


def test_a_gap_of_commit_markers_is_empty_and_a_lost_message_is_not(settings: Settings) -> None:
    assert asyncio.run(_probe(settings)) == [True, False, None]
