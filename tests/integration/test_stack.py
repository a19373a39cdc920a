"""The local stack: real services answer, and each start-up failure names its fix."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import urllib.request
from pathlib import Path

import orjson
import pytest

from streams.connections.redis import sync_redis_client
from streams.settings import Settings
from streams.stack import StackError, launcher
from streams.stack.kafka import KAFKA_VERSION, ensure_jars, metadata_round_trip, start_broker
from streams.stack.ports import free_port
from streams.stack.state import cache_dir
from tests.support import REPO, Services, eventually, salespulse


def test_services_answer(services: Services, settings: Settings) -> None:
    assert asyncio.run(metadata_round_trip(settings))
    assert sync_redis_client(settings).ping()
    if services.prometheus_url is None:
        pytest.skip("no Prometheus in this session")
    with urllib.request.urlopen(f"{services.prometheus_url}/api/v1/status/config") as response:
        config = orjson.loads(response.read())["data"]["yaml"]
    assert "job_name: salespulse" in config
    assert "file_sd_configs" in config  # the project's config, rewritten for local workers
    if services.alertmanager_url is None:
        pytest.skip("no Alertmanager in this session")
    with urllib.request.urlopen(f"{services.alertmanager_url}/api/v2/status") as response:
        routing = orjson.loads(response.read())["config"]["original"]
    assert "group_by:" in routing  # prometheus/alertmanager.yml
    assert "salespulse-alerts" in routing  # its webhook
    if services.run_dir is not None:  # the session's own Prometheus sends to it

        def alertmanagers() -> list[str]:
            url = f"{services.prometheus_url}/api/v1/alertmanagers"
            with urllib.request.urlopen(url) as answer:
                active = orjson.loads(answer.read())["data"]["activeAlertmanagers"]
            return [a["url"] for a in active]

        address = services.alertmanager_url.removeprefix("http://")
        # Prometheus discovers it a few seconds after its start
        eventually(alertmanagers, timeout=30)
        assert alertmanagers() == [f"http://{address}/api/v2/alerts"]


@pytest.fixture
def busy_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_port_in_use_names_the_setting(tmp_path: Path, busy_port: int) -> None:
    with pytest.raises(StackError) as failure:
        launcher.up(tmp_path / "run", services=["redis"], ports=launcher.Ports(redis=busy_port))
    message = str(failure.value)
    assert f"port {busy_port}" in message
    assert "SALESPULSE_STACK_REDIS_PORT=0" in message


def test_broker_that_fails_to_start_shows_its_log(tmp_path: Path, busy_port: int) -> None:
    # The broker's own port is taken after it was chosen (a race with another program).
    with pytest.raises(StackError) as failure:
        start_broker(tmp_path, cache_dir(), busy_port, free_port(), die_with_parent=True)
    message = str(failure.value)
    assert "exited during start-up" in message
    assert "Address already in use" in message  # the tail of the broker's own log


def test_missing_java_names_the_fix(tmp_path: Path) -> None:
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    env = {**os.environ, "PATH": str(empty_path), "SALESPULSE_HOME": str(tmp_path / "home")}
    env = {k: v for k, v in env.items() if k not in ("SALESPULSE_KAFKA_BOOTSTRAP", "JAVA_HOME")}
    done = subprocess.run(
        salespulse("stack", "up"), env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "Java 17+" in done.stderr
    assert "apt-get install -y openjdk-17-jre-headless" in done.stderr
    assert "Traceback" not in done.stderr


def test_old_java_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(StackError, match=r"needs Java 17\+.*is Java 11"):
        start_broker(tmp_path, cache_dir(), free_port(), free_port(), die_with_parent=True)


def test_unreachable_maven_central_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Maven home with an empty local repository whose only mirror refuses connections.
    m2 = tmp_path / "home" / ".m2"
    m2.mkdir(parents=True)
    (m2 / "settings.xml").write_text(
        "<settings><mirrors><mirror><id>closed</id><mirrorOf>*</mirrorOf>"
        f"<url>http://127.0.0.1:{free_port()}/maven2</url></mirror></mirrors></settings>"
    )
    monkeypatch.setenv("MAVEN_OPTS", f"-Duser.home={tmp_path / 'home'}")
    with pytest.raises(StackError) as failure:
        ensure_jars(tmp_path / "cache")
    message = str(failure.value)
    assert "could not fetch the Kafka" in message
    assert "Maven Central is reachable" in message
    # No half-filled cache is left to be taken for a complete one.
    assert not (tmp_path / "cache" / f"kafka-{KAFKA_VERSION}" / "libs").exists()
