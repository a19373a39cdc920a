"""The simulator against a real Kafka: what it says it sent is what the topics hold."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.connections.kafka import kafka_options
from streams.contracts.reference import REFERENCE_MODELS, reference_key
from streams.ingest.validate import InvalidEvent, Limits, validate
from streams.settings import Settings
from streams.simulator import command
from streams.topics import INPUT_TOPICS, REFERENCE_TOPICS
from tests.support import REPO, eventually, settings_env

TOPIC_MODELS = dict(REFERENCE_MODELS.values())
SUMMARY_TOPIC_LINE = re.compile(r"^    (\S+)\s+(\d+)$")


def summary_topics(out: str) -> dict[str, int]:
    """The "per topic:" block of the simulator's summary."""
    block = out.split("  per topic:\n", 1)[1].split("\n  per event type", 1)[0]
    return {
        match[1]: int(match[2])
        for line in block.splitlines()
        if (match := SUMMARY_TOPIC_LINE.match(line))
    }


async def read_all(settings: Settings, topics: list[str]) -> list[tuple[str, bytes, bytes]]:
    """Every message of the (logical) ``topics``, as (topic, key, value), read to the end."""
    consumer = AIOKafkaConsumer(
        **kafka_options(settings).client,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [  # the topics were created with settings.topic_partitions (ensure_topics)
            TopicPartition(settings.topic(topic), partition)
            for topic in topics
            for partition in range(settings.topic_partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        messages: list[tuple[str, bytes, bytes]] = []
        deadline = time.monotonic() + 60
        behind = [tp for tp in partitions if ends[tp] > 0]
        while behind:
            assert time.monotonic() < deadline, "could not read the topics to their end"
            batches = await consumer.getmany(timeout_ms=500)
            for tp, batch in batches.items():
                topic = tp.topic.removeprefix(settings.topic_prefix)
                messages.extend((topic, m.key or b"", m.value or b"") for m in batch)
            behind = [tp for tp in behind if await consumer.position(tp) < ends[tp]]
        return messages
    finally:
        await consumer.stop()


def test_what_the_simulator_sends_is_what_the_topics_hold(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--count", "300", "--clock", "always-open", "--rate", "1000"])

    assert command.run(settings, args) == 0

    out = capsys.readouterr().out
    assert re.search(r"^simulate: 300 events in .* stopped by count$", out, re.MULTILINE), out
    expected = summary_topics(out)
    topics = [spec.name for spec in INPUT_TOPICS + REFERENCE_TOPICS]
    messages = asyncio.run(read_all(settings, topics))
    assert Counter(topic for topic, _, _ in messages) == Counter(expected)
    assert sum(n for topic, n in expected.items() if not topic.startswith("ref.")) == 300

    limits = Limits(
        max_bytes=settings.max_event_bytes, currency=settings.currency, rates={},
        future_s=settings.future_tolerance_s,
    )  # fmt: skip
    valid = 0
    for topic, key, value in messages:
        assert key
        if topic.startswith("ref."):
            model = TOPIC_MODELS[topic].model_validate_json(value)
            assert reference_key(model).encode() == key
            continue
        try:
            validate(value, topic, limits, time.time())
        except InvalidEvent:
            continue  # dead-letter-bound on purpose; its key is its source event's
        event = orjson.loads(value)
        assert key.decode() == event.get("account_id") or event.get("lead_id") or event["channel"]
        valid += 1
    assert valid > 250


def test_sigterm_stops_the_simulator_cleanly(settings: Settings, tmp_path: Path) -> None:
    script = (
        "import argparse, sys\n"
        "from streams.settings import Settings\n"
        "from streams.simulator import command\n"
        "parser = argparse.ArgumentParser()\n"
        "command.add_arguments(parser)\n"
        "sys.exit(command.run(Settings(), parser.parse_args(sys.argv[1:])))\n"
    )
    log = tmp_path / "simulate.log"
    env = settings_env(settings) | {"PYTHONUNBUFFERED": "1"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", script, "--clock", "always-open", "--rate", "200"],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        eventually(lambda: b"simulate: " in log.read_bytes() or process.poll() is not None)
        assert process.poll() is None, log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    out = log.read_text()
    assert "stopped by signal" in out, out
    sent = summary_topics(out)
    messages = asyncio.run(read_all(settings, sorted(sent)))
    assert Counter(topic for topic, _, _ in messages) == Counter(sent)  # all flushed
