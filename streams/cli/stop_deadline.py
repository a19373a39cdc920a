"""A worker that has begun to stop exits within a deadline, whatever faust waits on.

After a crash in a long broker outage (its sends expired), faust's Kafka thread can die
while faust's consumer, stopping, still waits on it (the call was not identified; most
likely its commit of acked offsets): the worker never exits, so its supervisor (compose's ``restart:
unless-stopped``, systemd, Kubernetes) never starts it again. Past the deadline the worker
writes every thread's and task's stack to its log (what it waited on), then exits with
status 1. What it did not commit is read again by the next worker, as after a kill -9, and
its local tables are rebuilt from their changelogs (``streams.engine.delivery``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from mode.utils.logging import cry

log = logging.getLogger(__name__)

STOP_DEADLINE_S = 30.0
"""A worker stops in a few seconds; one still stopping after this is stuck."""


def dump_stacks(loop: asyncio.AbstractEventLoop | None, file: TextIO) -> None:
    """Every thread's stack (mode's ``cry``), then the stack of every task of ``loop``, the
    worker's event loop: ``cry`` lists only the tasks of the thread it runs in, and the
    deadline runs in its own."""
    cry(file=file)
    if loop is None:
        return
    tasks = asyncio.all_tasks(loop)
    print(f"TASKS OF THE WORKER'S EVENT LOOP ({len(tasks)})", file=file)
    for task in tasks:
        print(f"  {task!r}", file=file)
        task.print_stack(limit=12, file=file)


def arm(
    deadline_s: float = STOP_DEADLINE_S,
    exit_now: Callable[[int], object] = os._exit,
    dump: Callable[[], None] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> threading.Timer:
    """Start the deadline (a daemon thread: it never holds a process that exits); ``cancel``
    it if the stop ends in time. ``dump`` writes what the worker waits on (by default
    :func:`dump_stacks` of ``loop`` to stderr, the worker's log)."""
    if dump is None:
        dump = lambda: dump_stacks(loop, sys.stderr)  # noqa: E731

    def expired() -> None:
        log.critical(
            "the worker did not stop within %.0f s: exiting with status 1; what it waited "
            "on follows (after a broker outage, faust's consumer may wait on its dead Kafka "
            "thread); its next start reads again what it did not commit",
            deadline_s,
        )
        try:
            dump()
        finally:
            for handler in logging.getLogger().handlers:
                handler.flush()
            sys.stderr.flush()
            exit_now(1)

    timer = threading.Timer(deadline_s, expired)
    timer.daemon = True
    timer.start()
    return timer
