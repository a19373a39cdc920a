"""kcat (an independent Kafka client) and metrics helpers for the integration tests."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

import orjson
import pytest

from streams.connections.kafka import kafka_options
from streams.settings import Settings
from tests import support

needs_kcat = pytest.mark.skipif(
    shutil.which("kcat") is None,
    reason="kcat is not installed: `make install` as root installs it (apt-get install kcat)",
)


@functools.cache
def _scram_works() -> bool:
    """Whether kcat's librdkafka can SCRAM-authenticate to Kafka 4: 2.6.1 and later only
    (confluentinc/librdkafka#4895; Debian 12's kcat has librdkafka 2.0.2)."""
    out = subprocess.run(["kcat", "-V"], capture_output=True, text=True, check=False, timeout=30)
    found = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    return found is not None and tuple(map(int, found.groups())) >= (2, 6, 1)


def kcat(settings: Settings) -> list[str]:
    """kcat's argv for the broker of ``settings``, with its security as librdkafka options.

    An older kcat authenticates with PLAIN instead of SCRAM (inside TLS: the secured local
    stack takes both for its user, streams.stack.broker_security)."""
    options = {"security.protocol": settings.kafka_security_protocol.lower()}
    if settings.kafka_security_protocol.startswith("SASL_"):
        mechanism = settings.kafka_sasl_mechanism
        scram_fails = mechanism.startswith("SCRAM") and not _scram_works()
        options["sasl.mechanisms"] = "PLAIN" if scram_fails else mechanism
        options["sasl.username"] = str(settings.kafka_username)
        if settings.kafka_password is not None:
            options["sasl.password"] = settings.kafka_password.get_secret_value()
    files = {
        "ssl.ca.location": settings.kafka_ca_file,
        "ssl.certificate.location": settings.kafka_cert_file,
        "ssl.key.location": settings.kafka_key_file,
    }
    options.update({name: str(path) for name, path in files.items() if path is not None})
    return ["kcat", "-b", settings.kafka_bootstrap, *(f"-X{k}={v}" for k, v in options.items())]


def kcat_produce(settings: Settings, topic: str, key: str, value: bytes) -> None:
    """Produce one message with kcat (the value must not contain a newline)."""
    subprocess.run(
        [*kcat(settings), "-t", settings.topic(topic), "-P", "-K", "\t"],
        input=key.encode() + b"\t" + value + b"\n",
        check=True,
        timeout=30,
    )


def kcat_consume(settings: Settings, topic: str) -> list[dict[str, object]]:
    """Every message of ``topic`` so far, as kcat's JSON envelopes (key, payload, headers)."""
    out = subprocess.run(
        [*kcat(settings), "-t", settings.topic(topic), "-C", "-e", "-J", "-o", "beginning", "-q"],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    return [orjson.loads(line) for line in out.stdout.splitlines() if line.strip()]


def header(message: dict[str, object], name: str) -> str:
    """A header of a kcat JSON envelope (headers come as a flat [k1, v1, k2, v2] list)."""
    flat = message["headers"]
    assert isinstance(flat, list)
    return str(dict(zip(flat[::2], flat[1::2], strict=True))[name])


def worker_metric(settings: Settings, name: str, **labels: str) -> float:
    """A sample of the worker's /metrics (0 when absent)."""
    return support.worker_metric(settings.web_port, name, **labels)


async def create_topic(settings: Settings, topic: str) -> None:
    """Create ``topic`` (its full name) with one partition, with the settings' Kafka access."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # slow import, few tests need it

    admin = AIOKafkaAdminClient(**kafka_options(settings).client)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
