"""``salespulse stack up|down|status``: what people type."""

from __future__ import annotations

import shutil

from streams.settings import Settings
from streams.stack import launcher
from streams.stack.kafka import KAFKA_VERSION, ensure_jars
from streams.stack.process import ProcessRecord
from streams.stack.state import StackRecord, cache_dir


def run(action: str, settings: Settings, *, secure: bool = False) -> int:
    run_dir = settings.home / "stack"
    if action == "fetch":
        libs = ensure_jars(cache_dir())
        print(f"Kafka {KAFKA_VERSION} broker jars ready in {libs}")
        return 0
    if action == "up":
        record = StackRecord.load(settings.home)
        if record is None:
            record = start_stack(settings, secure=secure)
            print("stack is up; `salespulse worker` and the other commands find it by itself.")
        elif _secured(record) != secure:
            now, wanted = ("secured", "plain") if _secured(record) else ("plain", "secured")
            print(f"stack is already up, {now}: `salespulse stack down` first for a {wanted} one.")
            _print_status(record)
            return 1
        else:
            print("stack is already up.")
        _print_status(record)
        return 0
    if action == "down":
        record = StackRecord.read(run_dir)
        if record is None:
            print("stack is not up.")
            return 0
        launcher.down(record)
        print(f"stack stopped; {run_dir} removed.")
        return 0
    record = StackRecord.read(run_dir)
    if record is None:
        print("stack is not up: `salespulse stack up` starts it.")
        return 1
    _print_status(record)
    return 0 if record.alive() else 1


def start_stack(
    settings: Settings,
    owner: ProcessRecord | None = None,
    die_with_parent: bool = False,
    *,
    secure: bool = False,
) -> StackRecord:
    """A new local stack in ``<home>/stack``, with the configured ports (``secure``: Kafka
    over SASL_SSL, see ``launcher.up``)."""
    for stale in settings.home.glob("worker-*"):
        # Worker state belongs to the cluster it was built from; a new stack is empty.
        shutil.rmtree(stale, ignore_errors=True)
    return launcher.up(
        settings.home / "stack",
        ports=launcher.Ports(
            kafka=settings.stack_kafka_port,
            redis=settings.stack_redis_port,
            prometheus=settings.stack_prometheus_port,
            alertmanager=settings.stack_alertmanager_port,
        ),
        owner=owner,
        die_with_parent=die_with_parent,
        web_token=settings.web_token,  # its Prometheus scrapes workers that need it
        secure=secure,
    )


def _secured(record: StackRecord) -> bool:
    return record.settings().get("kafka_security_protocol", "PLAINTEXT") != "PLAINTEXT"


def _print_status(record: StackRecord) -> None:
    for service in record.services.values():
        state = "up" if service.process.alive() else "DOWN"
        print(f"  {service.name:<13} {state:<5} {service.address:<22} pid {service.process.pid:<8}"
              f" log {service.log}")  # fmt: skip
    if not record.alive():
        print("  some services are down: `salespulse stack down && salespulse stack up`.")
    for name, value in record.settings().items():
        if name.endswith("password"):
            value = f"(in {record.path}, readable by you only)"
        print(f"  SALESPULSE_{name.upper()}={value}")
