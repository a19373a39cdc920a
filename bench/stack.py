"""An isolated Kafka + Redis for one bench run, like the test sessions start theirs.

The run directory is ``<home>/bench-stacks/<pid>``; its services die with the bench even if it
is killed, and stacks left by an interrupted bench are stopped at the next start.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from streams.settings import Settings
from streams.stack import launcher
from streams.stack.ports import free_port
from streams.stack.process import current_process
from streams.stack.state import StackRecord, default_home


def start(say: Callable[[str], None]) -> StackRecord:
    root = default_home() / "bench-stacks"
    for stale in launcher.stop_orphaned_test_stacks(root):
        say(f"stopped a bench stack left by an interrupted run: {stale}")
    return launcher.up(
        root / str(os.getpid()),
        services=("kafka", "redis"),
        owner=current_process(),
        die_with_parent=True,
        progress=say,
    )


def stop(record: StackRecord) -> None:
    launcher.down(record)


def bench_settings(record: StackRecord) -> Settings:
    """Settings whose topics, consumer group, Redis keys and state belong to this run."""
    local = record.settings()
    run = uuid.uuid4().hex[:8]
    home = Path(record.run_dir) / "home"
    home.mkdir(parents=True, exist_ok=True)
    return Settings(
        kafka_bootstrap=local["kafka_bootstrap"],
        redis_url=local["redis_url"],
        prometheus_url="http://127.0.0.1:9",
        topic_prefix=f"b{run}.",
        redis_prefix=f"b{run}:",
        app_id=f"sp-bench-{run}",
        web_port=free_port(),
        home=home,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a salespulse subprocess needs to use exactly ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    for name, value in settings.model_dump(mode="json", exclude_none=True).items():
        env[f"SALESPULSE_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    for name in ("web_token", "web_tv_token"):  # dumped as "**********"
        secret = getattr(settings, name)
        if secret is not None:
            env[f"SALESPULSE_{name.upper()}"] = secret.get_secret_value()
    env["SALESPULSE_DATA_DIR"] = str(settings.worker_data_dir)
    return env
