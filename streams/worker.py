"""``salespulse worker``: create the topics, then run the Faust worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import faust

from streams.app import build_app
from streams.connections.redis import RedisUnreachable, check_redis
from streams.settings import Settings
from streams.stack.prometheus import register_target, scrape_token_problem
from streams.stack.state import StackRecord
from streams.topics import ensure_topics
from streams.web_access import announce, bind_host

log = logging.getLogger(__name__)


class Worker(faust.Worker):
    """Faust's worker, which also says at start where the web server listens and whether it
    needs a token (``streams.web_access.announce``), once logging is set up, and ``warnings``
    about its setting."""

    def __init__(
        self, app: faust.App, settings: Settings, warnings: list[str], **options: Any
    ) -> None:
        super().__init__(app, **options)
        self._settings = settings
        self._warnings = warnings

    async def on_first_start(self) -> None:
        await super().on_first_start()  # sets up logging
        announce(self._settings)
        for warning in self._warnings:
            log.warning("%s", warning)


def run_worker(settings: Settings) -> None:
    """Run one worker until SIGINT/SIGTERM. Start more (other web ports) to scale out."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(check_redis(settings))  # refused: stops, naming the setting
    except RedisUnreachable as exc:
        log.warning("%s. Starting anyway: the read model is written once Redis answers.", exc)
    loop.run_until_complete(ensure_topics(settings))
    app = build_app(settings)
    target = None
    warnings = []
    stack = StackRecord.load(settings.home)
    if stack is not None and stack.settings().get("kafka_bootstrap") == settings.kafka_bootstrap:
        # Running against `salespulse stack up`: let its Prometheus scrape this worker.
        target = register_target(
            stack.path.parent, f"worker-{settings.web_port}",
            f"{bind_host(settings)}:{settings.web_port}",
        )  # fmt: skip
        problem = scrape_token_problem(stack.path.parent, settings.web_token)
        warnings += [] if problem is None else [problem]
    try:
        Worker(
            app, settings, warnings, loop=loop, loglevel=settings.log_level
        ).execute_from_commandline()
    finally:
        if target is not None:
            with contextlib.suppress(OSError):
                target.unlink()
