"""``salespulse worker``: create the topics, then run the Faust worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import faust

from streams.app import build_app
from streams.cli import collector, stop_deadline
from streams.connections.redis import RedisUnreachable, check_redis
from streams.engine.delivery import rebuild_if_stale
from streams.observability.log_repeats import RepeatFilter, limit_repeats
from streams.serving.redis_batch import SCRIPT
from streams.serving.web_access import announce, bind_host
from streams.settings import Settings
from streams.stack.prometheus import register_target, scrape_token_problem
from streams.stack.state import StackRecord
from streams.topics import ensure_topics

log = logging.getLogger(__name__)


class Worker(faust.Worker):
    """Faust's worker, which also says at start where the web server listens and whether it
    needs a token (``streams.serving.web_access.announce``), once logging is set up, and
    ``warnings`` about its setting; its log holds back repeated warnings and errors
    (``streams.observability.log_repeats``: a broker outage made thousands a second).
    Once it begins to stop, it exits within ``stop_deadline.STOP_DEADLINE_S``."""

    def __init__(
        self, app: faust.App, settings: Settings, warnings: list[str], **options: Any
    ) -> None:
        super().__init__(app, **options)
        self._settings = settings
        self._warnings = warnings
        self.repeat_filters: list[RepeatFilter] = []
        self.stop_deadline: threading.Timer | None = None

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        self.repeat_filters = limit_repeats(logger)

    @faust.Service.timer(1.0)
    async def _summarise_repeats(self) -> None:
        self.flush_repeats()

    def flush_repeats(self, *, everything: bool = False) -> None:
        """Log the summaries of held-back repeats that are due (``everything``: all)."""
        for repeat_filter in self.repeat_filters:
            repeat_filter.flush(everything=everything)

    async def on_stop(self) -> None:
        """Called as the worker begins to stop (a signal, or a crash): the deadline starts."""
        if self.stop_deadline is None:
            self.stop_deadline = stop_deadline.arm(loop=self.loop)
        await super().on_stop()

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
        loop.run_until_complete(check_redis(settings, (SCRIPT,)))  # refused: stops, naming it
    except RedisUnreachable as exc:
        log.warning("%s. Starting anyway: the read model is written once Redis answers.", exc)
    loop.run_until_complete(ensure_topics(settings))
    app = build_app(settings)
    # After a failed send, the local tables may be ahead of their changelogs: removed here,
    # before faust opens them, they are restored from the changelogs.
    rebuilt = rebuild_if_stale(settings.worker_data_dir, app.conf.tabledir)
    target = None
    warnings = [] if rebuilt is None else [rebuilt]
    stack = StackRecord.load(settings.home)
    if stack is not None and stack.settings().get("kafka_bootstrap") == settings.kafka_bootstrap:
        # Running against `salespulse stack up`: let its Prometheus scrape this worker.
        target = register_target(
            stack.path.parent, f"worker-{settings.web_port}",
            f"{bind_host(settings)}:{settings.web_port}",
        )  # fmt: skip
        problem = scrape_token_problem(stack.path.parent, settings.web_token)
        warnings += [] if problem is None else [problem]
    worker = Worker(app, settings, warnings, loop=loop, loglevel=settings.log_level)
    collector.tune()  # after everything that lives as long as the process is built
    try:
        worker.execute_from_commandline()
    finally:
        if worker.stop_deadline is not None:
            worker.stop_deadline.cancel()
        worker.flush_repeats(everything=True)
        if target is not None:
            with contextlib.suppress(OSError):
                target.unlink()
