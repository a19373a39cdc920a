"""Session fixtures: the real services every integration test runs against.

By default the session starts its own Kafka, Redis, Alertmanager and Prometheus (which sends
its alerts to that Alertmanager), as ``salespulse stack up`` does (``streams.stack``), in
``<home>/test-stacks/<pid>``; they die with the session even if it is killed, and stacks left
by an interrupted session are stopped at the next start. Under ``pytest -n`` (``make test``
runs the main suite as two processes, and the secured run beside them:
``scripts/run-tests.sh``) each process starts its own stack and takes its own ports
(``streams.stack.ports.free_port``). Each service given by its variable
(``SALESPULSE_KAFKA_BOOTSTRAP``, ``SALESPULSE_REDIS_URL``, ``SALESPULSE_ALERTMANAGER_URL``,
``SALESPULSE_PROMETHEUS_URL``) is used instead of starting one. The session's own Prometheus
sends a token of the session (``Services.web_token``) to the workers it scrapes.

``SALESPULSE_TEST_SECURE=1`` starts the stack as ``salespulse stack up --secure`` does: every
test's clients then reach Kafka over SASL_SSL (SCRAM) and Redis over TLS with a password,
with the settings the stack records.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.settings import Settings
from streams.stack import launcher
from streams.stack.process import current_process
from streams.stack.state import default_home
from tests.support import Services, isolated_settings


def pytest_configure(config: pytest.Config) -> None:
    # A run started in the background (`make test &`, nohup, a CI runner that does so) inherits
    # SIGINT ignored, and so would every process the tests start: then the tests that press
    # Ctrl-C on a child (test_demo, test_interrupt) wait for nothing, and the child keeps
    # running beside the rest of the session. Give the session, and through it its children,
    # the Ctrl-C a terminal gives.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    kafka = os.environ.get("SALESPULSE_KAFKA_BOOTSTRAP")
    redis_url = os.environ.get("SALESPULSE_REDIS_URL")
    prometheus = os.environ.get("SALESPULSE_PROMETHEUS_URL")
    alertmanager = os.environ.get("SALESPULSE_ALERTMANAGER_URL")
    given = {
        "kafka": kafka, "redis": redis_url, "alertmanager": alertmanager, "prometheus": prometheus
    }  # fmt: skip
    wanted = [name for name, url in given.items() if not url]
    # The session's Prometheus sends this token to every worker it scrapes: workers without a
    # token ignore it, workers with it (tests of HTTP access) are scraped.
    web_token = secrets.token_urlsafe(24)
    root = default_home() / "test-stacks"
    for stale in launcher.stop_orphaned_test_stacks(root):
        print(f"stopped a test stack left by an interrupted run: {stale}")
    record = launcher.up(
        root / str(os.getpid()),
        services=wanted,
        owner=current_process(),
        die_with_parent=True,
        progress=lambda line: None,
        web_token=SecretStr(web_token),
        secure=os.environ.get("SALESPULSE_TEST_SECURE") == "1",
    )
    local = record.settings()
    security = {
        k: v for k, v in local.items()
        if k.startswith(("kafka_", "redis_")) and k not in ("kafka_bootstrap", "redis_url")
    }  # fmt: skip
    try:
        yield Services(
            kafka_bootstrap=kafka or local["kafka_bootstrap"],
            redis_url=redis_url or local["redis_url"],
            prometheus_url=prometheus or local.get("prometheus_url"),
            alertmanager_url=alertmanager or local.get("alertmanager_url"),
            run_dir=Path(record.run_dir),
            web_token=None if prometheus else web_token,
            security=security,
        )
    finally:
        launcher.down(record)


@pytest.fixture
def settings(services: Services, tmp_path: Path) -> Settings:
    """Settings isolated to this test: own topics, consumer group, Redis keys, state dir."""
    return isolated_settings(services, tmp_path)
