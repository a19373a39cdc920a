"""A secured local stack (``stack up --secure``): Kafka over SASL_SSL with a SCRAM user, Redis
over TLS only with a password.

The module starts its own stack (Kafka and Redis) in a fresh home, as
``salespulse stack up --secure`` does there, whatever the session's stack is.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from streams.connections.kafka import KafkaAccess, kafka_options
from streams.connections.redis import sync_redis_client
from streams.settings import Settings
from streams.stack import launcher
from streams.stack.ports import free_port
from streams.stack.process import current_process, spawn
from streams.stack.state import StackRecord
from tests.kafka_tools import create_topic, kcat_consume, kcat_produce, needs_kcat
from tests.support import REPO, eventually, metric, salespulse, wait_http


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home whose ``stack/`` is a secured stack, as ``salespulse stack up --secure`` makes."""
    home = tmp_path_factory.mktemp("secure-home")
    record = launcher.up(
        home / "stack",
        services=["kafka", "redis"],
        owner=current_process(),
        die_with_parent=True,
        progress=lambda line: None,
        secure=True,
    )
    try:
        yield home
    finally:
        launcher.down(record)


@pytest.fixture
def recorded(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings any command started with only SALESPULSE_HOME reads (from the record)."""
    for name in list(os.environ):
        if name.startswith("SALESPULSE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SALESPULSE_HOME", str(home))
    return Settings(topic_prefix=f"t{uuid.uuid4().hex[:10]}.")


def only_home(home: Path, **more: str) -> dict[str, str]:
    """A subprocess environment whose only salespulse setting is the home (and ``more``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    return env | {"SALESPULSE_HOME": str(home)} | more


async def _round_trip(settings: Settings, values: list[bytes]) -> list[bytes]:
    kafka = kafka_options(settings).client
    topic = settings.topic("secured")
    await create_topic(settings, topic)
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, **kafka, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=10_000, max_records=len(values))
        return [message.value or b"" for batch in batches.values() for message in batch]
    finally:
        await consumer.stop()


def test_the_recorded_settings_produce_and_consume_over_sasl_ssl(recorded: Settings) -> None:
    assert recorded.kafka_security_protocol == "SASL_SSL"
    assert recorded.kafka_sasl_mechanism == "SCRAM-SHA-512"
    values = [f"sale {n}".encode() for n in range(3)]
    assert asyncio.run(_round_trip(recorded, values)) == values


@needs_kcat
def test_kcat_of_the_tests_uses_the_recorded_settings(recorded: Settings) -> None:
    asyncio.run(create_topic(recorded, recorded.topic("secured.kcat")))
    kcat_produce(recorded, "secured.kcat", "k1", b'{"n": 1}')
    assert [m["payload"] for m in kcat_consume(recorded, "secured.kcat")] == ['{"n": 1}']


async def _connect(settings: Settings, **changes: Any) -> None:
    """One connection to the broker (authenticated when SASL), with ``changes`` to the
    options: raises what the broker or TLS answered."""
    options = kafka_options(settings).client | changes
    host, port = options.pop("bootstrap_servers").rsplit(":", 1)
    conn = await create_conn(host, int(port), request_timeout_ms=10_000, **options)
    conn.close()


def test_a_client_with_the_recorded_settings_connects(recorded: Settings) -> None:
    asyncio.run(_connect(recorded))  # the refusals below are refusals of this client


def test_a_plaintext_client_is_refused(recorded: Settings) -> None:
    plain = {k: None for k in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password")}
    with pytest.raises(KafkaConnectionError, match="closed"):
        asyncio.run(_connect(recorded, security_protocol="PLAINTEXT", ssl_context=None, **plain))


def test_a_wrong_password_is_refused(recorded: Settings) -> None:
    with pytest.raises(SaslAuthenticationFailed, match="invalid credentials"):
        asyncio.run(_connect(recorded, sasl_plain_password="not-the-password"))


def test_a_broker_certificate_from_another_ca_is_refused(recorded: Settings) -> None:
    system_cas = kafka_options(KafkaAccess("x:1", "SSL")).client["ssl_context"]
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        asyncio.run(_connect(recorded, ssl_context=system_cas))


def test_the_recorded_redis_is_tls_with_a_password_and_refuses_a_plain_client(
    recorded: Settings,
) -> None:
    assert recorded.redis_url.startswith("rediss://")
    assert recorded.redis_password is not None
    assert recorded.redis_ca_file is not None
    assert sync_redis_client(recorded).ping()
    port = int(recorded.redis_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(redis.ConnectionError):  # plaintext on the TLS-only port
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping()
    no_password = recorded.model_copy(update={"redis_password": None})
    with pytest.raises(redis.AuthenticationError):
        sync_redis_client(no_password).ping()


def test_the_worker_connects_with_the_recorded_settings_alone(home: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    worker = spawn(
        salespulse("worker"), log, cwd=REPO, die_with_parent=True,
        env=only_home(home, SALESPULSE_WEB_PORT=str(port)),
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        # Partitions are assigned only after the group join over SASL_SSL.
        eventually(lambda: metric(wait_http(url, worker, log), "salespulse_assigned_partitions"))
    finally:
        worker.stop()


def test_stack_up_status_and_a_plain_up_say_what_is_running(home: Path) -> None:
    record = StackRecord.read(home / "stack")
    assert record is not None
    password = record.settings()["kafka_password"]
    status = subprocess.run(
        salespulse("stack", "status"), cwd=REPO, env=only_home(home),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "SALESPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL" in status.stdout
    assert "SALESPULSE_KAFKA_PASSWORD=(in " in status.stdout
    assert password not in status.stdout
    plain = subprocess.run(
        salespulse("stack", "up"), cwd=REPO, env=only_home(home),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert plain.returncode == 1
    assert "stack is already up, secured: `salespulse stack down` first" in plain.stdout
