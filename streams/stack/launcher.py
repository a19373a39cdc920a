"""Bring the local stack up and down: one launcher for people and for tests.

A run directory holds one stack: the services' data, logs, rendered configs and the record
(``stack.json``). ``salespulse stack up`` uses ``<home>/stack``; each test session uses
``<home>/test-stacks/<pid>`` and starts its services so that they die with it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from streams.stack.alertmanager import start_alertmanager
from streams.stack.broker_security import BrokerSecurity
from streams.stack.certs import make_certificates
from streams.stack.errors import StackError
from streams.stack.kafka import start_broker
from streams.stack.ports import HOST, claim_port
from streams.stack.process import ProcessRecord
from streams.stack.prometheus import start_prometheus
from streams.stack.redis import redis_access, start_redis
from streams.stack.state import ServiceRecord, StackRecord, cache_dir, project_root

SERVICES = ("kafka", "redis", "alertmanager", "prometheus")  # Prometheus sends to Alertmanager


@dataclass
class Ports:
    """Requested ports; 0 means "pick a free one"."""

    kafka: int = 0
    redis: int = 0
    prometheus: int = 0
    alertmanager: int = 0


def alertmanager_config() -> Path:
    """The project's routing config, ``prometheus/alertmanager.yml`` in the checkout."""
    return prometheus_config().parent / "alertmanager.yml"


def prometheus_config() -> Path:
    """The project's scrape config, ``prometheus/prometheus.yml`` in the checkout."""
    root = project_root()
    if root is None:
        raise StackError(
            "the local Prometheus needs the project's prometheus/prometheus.yml: run salespulse "
            "from a checkout of the repository (pip install -e .)."
        )
    return root / "prometheus" / "prometheus.yml"


def up(
    run_dir: Path,
    *,
    services: Iterable[str] = SERVICES,
    ports: Ports | None = None,
    owner: ProcessRecord | None = None,
    die_with_parent: bool = False,
    progress: Callable[[str], None] = print,
    web_token: SecretStr | None = None,
    secure: bool = False,
) -> StackRecord:
    """Start the services in ``run_dir`` and record them; a failure stops what it started.

    ``web_token``: the workers' SALESPULSE_WEB_TOKEN, which Prometheus sends when scraping.
    ``secure``: Kafka's clients connect over SASL_SSL with a SCRAM user, and Redis serves TLS
    only and asks for a password (TLS from the stack's own CA, ``streams.stack.certs``); the
    record holds what a client needs."""
    ports = ports or Ports()
    run_dir = run_dir.resolve()  # services run with run_dir as working directory
    wanted = sorted(services, key=SERVICES.index) if set(services) <= set(SERVICES) else []
    wanted = wanted or list(services)
    unknown = set(wanted) - set(SERVICES)
    if unknown:
        raise StackError(f"unknown service(s) {sorted(unknown)}: choose from {SERVICES}")
    stop_stale(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = StackRecord(run_dir=str(run_dir), owner=owner)
    try:
        for name in wanted:
            alertmanager = record.services.get("alertmanager")
            record.services[name] = _start(
                name, run_dir, ports, die_with_parent, progress,
                None if alertmanager is None else alertmanager.address, web_token,
                secure=secure,
            )  # fmt: skip
            record.save()  # saved after each service, so an interrupted start is cleaned up
    except BaseException:
        down(record)
        raise
    return record


def _start(
    name: str,
    run_dir: Path,
    ports: Ports,
    die_with_parent: bool,
    progress: Callable[[str], None],
    alertmanager: str | None = None,
    web_token: SecretStr | None = None,
    *,
    secure: bool = False,
) -> ServiceRecord:
    process: ProcessRecord
    settings: dict[str, str] = {}
    if name == "kafka":
        port = claim_port(ports.kafka, "Kafka", "SALESPULSE_STACK_KAFKA_PORT")
        controller = claim_port(0, "Kafka controller", "")
        security = BrokerSecurity(make_certificates(run_dir)) if secure else None
        listener = "SASL_SSL" if security else "plaintext"
        progress(f"starting Kafka broker on {HOST}:{port} ({listener}) ...")
        process = start_broker(
            run_dir, cache_dir(), port, controller, die_with_parent=die_with_parent,
            security=security,
        )  # fmt: skip
        if security is not None:
            settings = security.access(f"{HOST}:{port}").security_values()
    elif name == "redis":
        port = claim_port(ports.redis, "Redis", "SALESPULSE_STACK_REDIS_PORT")
        tls = make_certificates(run_dir) if secure else None
        password = secrets.token_urlsafe(24) if secure else None
        progress(f"starting Redis on {HOST}:{port}{' (TLS, password)' if secure else ''} ...")
        process = start_redis(
            run_dir, port, die_with_parent=die_with_parent, password=password, tls=tls
        )
        if secure:
            access = redis_access(port, password, tls)
            settings = {"redis_url": access.url, "redis_password": str(password)}
            settings["redis_ca_file"] = str(access.ca_file)
    elif name == "alertmanager":
        port = claim_port(ports.alertmanager, "Alertmanager", "SALESPULSE_STACK_ALERTMANAGER_PORT")
        progress(f"starting Alertmanager on {HOST}:{port} ...")
        process = start_alertmanager(
            run_dir, alertmanager_config(), port, die_with_parent=die_with_parent
        )
    else:
        port = claim_port(ports.prometheus, "Prometheus", "SALESPULSE_STACK_PROMETHEUS_PORT")
        progress(f"starting Prometheus on {HOST}:{port} ...")
        process = start_prometheus(
            run_dir, prometheus_config(), port, die_with_parent=die_with_parent,
            alertmanager=alertmanager, web_token=web_token,
        )  # fmt: skip
    return ServiceRecord(
        name=name, address=f"{HOST}:{port}", process=process, log=str(run_dir / f"{name}.log"),
        settings=settings,
    )  # fmt: skip


def down(record: StackRecord, *, purge: bool = True) -> None:
    """Stop every recorded service (newest first); ``purge`` deletes the run directory."""
    for service in reversed(list(record.services.values())):
        service.process.stop()
    if purge:
        shutil.rmtree(record.run_dir, ignore_errors=True)


def stop_stale(run_dir: Path) -> bool:
    """Stop what an interrupted run left in ``run_dir`` (by its recorded pids) and wipe it."""
    if not run_dir.exists():
        return False
    record = StackRecord.read(run_dir)
    if record is not None:
        down(record, purge=False)
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


def _another_live_process(name: str) -> bool:
    """Whether ``name`` (a test stack's folder) is the pid of a live process other than this
    one: its session is starting the stack, and the record naming its owner comes later."""
    return name.isdigit() and int(name) != os.getpid() and ProcessRecord.of(int(name)).alive()


def stop_orphaned_test_stacks(root: Path) -> list[Path]:
    """Stop the test stacks under ``root`` whose test session is gone (killed, interrupted)."""
    cleaned = []
    for run_dir in sorted(root.glob("*")) if root.is_dir() else []:
        record = StackRecord.read(run_dir)
        owner = record.owner if record else None
        if owner is not None and owner.pid != os.getpid() and owner.alive():
            continue  # another test session is still using it
        if owner is None and _another_live_process(run_dir.name):
            continue  # a session starting its stack (``pytest -n``): no record saved yet
        stop_stale(run_dir)
        cleaned.append(run_dir)
    return cleaned
