"""Where the local stack lives on disk and what it records about itself.

The record (``<home>/stack/stack.json``) holds each service's address and the pid and start
time of its process. Other commands read the addresses from it; clean-up finds processes by
these pids (checked against their start time, so a recycled pid is never signalled), never by
process name.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.stack.process import ProcessRecord

RECORD_NAME = "stack.json"


def project_root() -> Path | None:
    """The checkout this package runs from (editable install), or None when installed."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "streams").is_dir() else None


def default_home() -> Path:
    """``$SALESPULSE_HOME``, else ``.salespulse/`` in the checkout, else in the working dir."""
    if env := os.environ.get("SALESPULSE_HOME"):
        return Path(env)
    return (project_root() or Path.cwd()) / ".salespulse"


def cache_dir() -> Path:
    """Downloads kept between runs (Kafka jars): ``.cache/`` in the checkout, git-ignored."""
    if env := os.environ.get("SALESPULSE_CACHE_DIR"):
        return Path(env)
    return (project_root() or Path.cwd()) / ".cache"


@dataclass
class ServiceRecord:
    """One running service of the stack."""

    name: str
    address: str
    process: ProcessRecord
    log: str
    # Settings values a client needs besides the address (a secured service's credentials
    # and CA); they override the address-derived ones of StackRecord.settings().
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class StackRecord:
    """What a running local stack wrote about itself."""

    run_dir: str
    owner: ProcessRecord | None = None  # a test session; None for `salespulse stack up`
    services: dict[str, ServiceRecord] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / RECORD_NAME

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.touch(mode=0o600)  # a secured stack records its passwords
        tmp.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))
        tmp.replace(self.path)

    @classmethod
    def read(cls, run_dir: Path) -> StackRecord | None:
        """The record in ``run_dir``, alive or not; None when there is none or it is corrupt."""
        try:
            raw: dict[str, Any] = orjson.loads((run_dir / RECORD_NAME).read_bytes())
            services = {
                name: ServiceRecord(
                    name=s["name"],
                    address=s["address"],
                    process=ProcessRecord(**s["process"]),
                    log=s["log"],
                    settings=dict(s.get("settings", {})),
                )
                for name, s in raw["services"].items()
            }
            owner = ProcessRecord(**raw["owner"]) if raw.get("owner") else None
            return cls(run_dir=raw["run_dir"], owner=owner, services=services)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def load(cls, home: Path) -> StackRecord | None:
        """The record of ``salespulse stack up`` under ``home`` if all its services are alive."""
        record = cls.read(home / "stack")
        if record and record.services and record.alive():
            return record
        return None

    def alive(self) -> bool:
        return all(s.process.alive() for s in self.services.values())

    def settings(self) -> dict[str, str]:
        """Settings values pointing at this stack's services."""
        values = {}
        if kafka := self.services.get("kafka"):
            values["kafka_bootstrap"] = kafka.address
        if redis := self.services.get("redis"):
            values["redis_url"] = f"redis://{redis.address}/0"
        if prometheus := self.services.get("prometheus"):
            values["prometheus_url"] = f"http://{prometheus.address}"
        if alertmanager := self.services.get("alertmanager"):
            values["alertmanager_url"] = f"http://{alertmanager.address}"
        for service in self.services.values():
            values.update(service.settings)
        return values
