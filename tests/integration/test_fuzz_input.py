"""10,000 broken messages on every input topic, a simulated floor's valid events among them:
the worker never crashes nor restarts, every broken message is in sales.deadletter with the
reason it deserves (matched by topic, partition and offset), and the valid events are
counted exactly as the reference counts them.

The corpus (tests/fuzz_messages.py: random bytes, bad UTF-8, deep JSON, JSON that is no
object, missing fields, wrong types, huge strings past SALESPULSE_MAX_EVENT_BYTES and huge ids
under it, unknown types, wrong topics; arbitrary headers or none) is made from
``random.Random(SEED)`` over the floor's own events, so every run sends the same messages in
the same order; tests/unit/ingest/test_fuzz_messages.py holds each kind to its reason with
hypothesis.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.connections.kafka import kafka_options
from streams.ingest.validate import InvalidEvent, validate
from streams.settings import Settings
from streams.topics import ensure_topics
from tests.fuzz_messages import INPUT_NAMES, BadMessage, corpus
from tests.kafka_tools import needs_kcat, worker_metric
from tests.kpi_tools import (
    Message,
    late_copies_from,
    limits_of,
    mismatches,
    reference_results,
    settled,
    simulator_stream,
    wait_for_stream_time,
)
from tests.support import running_worker

pytestmark = needs_kcat

SEED = 20261203
COUNT = 10_000
MAX_BYTES = 8192  # the test's SALESPULSE_MAX_EVENT_BYTES: huge strings go up to 3x past it
START = datetime(2026, 3, 28, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
KINDS = ("minute", "day", "week", "month", "quarter")

Position = tuple[str, int, int]  # physical topic, partition, offset
Outgoing = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]


def interleaved(stream: list[Message], bad: list[BadMessage]) -> list[Outgoing | BadMessage]:
    """The floor's messages in their order, the broken ones in theirs, mixed (seeded)."""
    slots = [True] * len(stream) + [False] * len(bad)
    random.Random(SEED).shuffle(slots)
    valid, broken = iter(stream), iter(bad)
    out: list[Outgoing | BadMessage] = []
    for is_valid in slots:
        if is_valid:
            topic, key, value = next(valid)
            out.append((topic, key, value, []))
        else:
            out.append(next(broken))
    return out


def valid(settings: Settings, topic: str, value: bytes) -> bool:
    try:
        validate(value, topic, limits_of(settings), time.time())
    except InvalidEvent:
        return False
    return True


async def _send(settings: Settings, messages: list[Outgoing | BadMessage]) -> list[Position]:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        **kafka_options(settings).client, acks="all", max_request_size=1_000_000
    )
    await producer.start()
    try:
        futures = []
        for message in messages:
            if isinstance(message, BadMessage):
                topic, key, value, headers = (
                    message.topic, message.key, message.value, message.headers
                )  # fmt: skip
            else:
                topic, key, value, headers = message
            futures.append(
                await producer.send(settings.topic(topic), value=value, key=key, headers=headers)
            )
        await producer.flush()
        return [(m.topic, m.partition, m.offset) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


async def _dead_letters(settings: Settings) -> dict[Position, dict[str, str]]:
    """The headers of every dead letter, by the position of the message it holds (read with
    aiokafka: kcat's JSON output cannot carry binary values)."""
    topic = settings.topic("sales.deadletter")
    consumer = AIOKafkaConsumer(
        **kafka_options(settings).client, enable_auto_commit=False,
        auto_offset_reset="earliest", group_id=None,
    )  # fmt: skip
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        out: dict[Position, dict[str, str]] = {}
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    where = (
                        headers["source_topic"],
                        int(headers["source_partition"]),
                        int(headers["source_offset"]),
                    )
                    assert where not in out, f"dead-lettered twice: {where}"
                    out[where] = headers
        return out
    finally:
        await consumer.stop()


def test_fuzzed_input_is_dead_lettered_and_the_valid_events_between_are_counted(
    tmp_path: Path, settings: Settings
) -> None:
    settings = settings.model_copy(update={"idle_close_s": 3.0, "max_event_bytes": MAX_BYTES})
    reference, stream = simulator_stream(settings, START, events=1500)
    bases = [orjson.loads(value) for topic, _, value in stream if valid(settings, topic, value)]
    bad = corpus(SEED, COUNT, bases, MAX_BYTES)
    assert {message.topic for message in bad} == set(INPUT_NAMES)  # every input topic
    mixed = interleaved(stream, bad)
    # The floor's three-day-old copies, the events after them and the broken messages among
    # those are sent once the floor is under way (``late_copies_from``): sent in one burst, a
    # CI run failed (68 values of minute 09:00 on 2026-03-28, rep-020's order there counted
    # a repeat of its copy, which the engine judged with no watermark yet).
    split = [i for i, m in enumerate(mixed) if not isinstance(m, BadMessage)][
        late_copies_from(stream)
    ]
    positions = asyncio.run(
        _send(settings, [(t, k, v, []) for t, k, v in reference] + mixed[:split])
    )
    log = tmp_path / "worker.log"
    with running_worker(settings, log) as process:
        wait_for_stream_time(settings, START)
        positions += asyncio.run(_send(settings, mixed[split:]))
        engine = settled(settings, timeout=600)
        assert process.alive()
        dead_total = worker_metric(settings, "salespulse_dead_letters_total")
        stage_errors = worker_metric(settings, "salespulse_stage_errors_total")
    sent = positions[len(reference) :]
    text = log.read_text(errors="replace")
    assert "Crashed reason" not in text  # no agent crashed (faust would restart it)
    assert text.count("reference data and cluster watermark ready") == 1  # started once

    dead = asyncio.run(_dead_letters(settings))
    wrong: list[str] = []
    for message, where in zip(mixed, sent, strict=True):
        if not isinstance(message, BadMessage):
            continue
        letter = dead.get(where)
        if letter is None:
            wrong.append(f"{message.kind} at {where} not dead-lettered")
        elif letter["reason"] != message.reason:
            wrong.append(f"{message.kind} at {where}: {letter['reason']}, not {message.reason}")
    assert not wrong, f"{len(wrong)} broken messages mishandled, first ones:\n" + "\n".join(
        wrong[:20]
    )
    kinds = Counter(message.kind for message in bad)
    assert min(kinds.values()) > COUNT / len(kinds) / 2, kinds  # every kind well represented
    assert dead_total == len(dead)  # the floor's own invalid messages, and the 10,000
    assert stage_errors == 0

    expected = reference_results(settings, reference, stream, now=datetime.now(ZoneInfo("UTC")))
    problems = mismatches(engine, expected, KINDS)
    assert not problems, f"{len(problems)} differences, first ones:\n" + "\n".join(problems[:25])
