"""``salespulse worker``: create the topics, then run the Faust worker."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import faust

from streams.app import build_app
from streams.settings import Settings
from streams.stack.prometheus import register_target
from streams.stack.state import StackRecord
from streams.topics import ensure_topics
from streams.web_access import announce, bind_host


class Worker(faust.Worker):
    """Faust's worker, which also says at start where the web server listens and whether it
    needs a token (``streams.web_access.announce``), once logging is set up."""

    def __init__(self, app: faust.App, settings: Settings, **options: Any) -> None:
        super().__init__(app, **options)
        self._settings = settings

    async def on_first_start(self) -> None:
        await super().on_first_start()  # sets up logging
        announce(self._settings)


def run_worker(settings: Settings) -> None:
    """Run one worker until SIGINT/SIGTERM. Start more (other web ports) to scale out."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings))
    app = build_app(settings)
    target = None
    stack = StackRecord.load(settings.home)
    if stack is not None and stack.settings().get("kafka_bootstrap") == settings.kafka_bootstrap:
        # Running against `salespulse stack up`: let its Prometheus scrape this worker.
        target = register_target(
            stack.path.parent, f"worker-{settings.web_port}",
            f"{bind_host(settings)}:{settings.web_port}",
        )  # fmt: skip
    try:
        Worker(app, settings, loop=loop, loglevel=settings.log_level).execute_from_commandline()
    finally:
        if target is not None:
            with contextlib.suppress(OSError):
                target.unlink()
