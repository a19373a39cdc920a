"""A worker that has begun to stop exits within a deadline, whatever faust waits on.

After a crash in a long broker outage (its sends expired), faust's consumer thread can die
with a call pending (a commit of acked offsets): faust's consumer then waits on it forever
while stopping, and the worker never exits, so its supervisor (compose's ``restart:
unless-stopped``, systemd, Kubernetes) never starts it again. Past the deadline the worker
writes every thread's and task's stack to its log (what it waited on), then exits with
status 1. What it did not commit is read again by the next worker, as after a kill -9, and
its local tables are rebuilt from their changelogs (``streams.engine.delivery``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

from mode.utils.logging import cry

log = logging.getLogger(__name__)

STOP_DEADLINE_S = 30.0
"""A worker stops in a few seconds; one still stopping after this is stuck."""


def arm(
    deadline_s: float = STOP_DEADLINE_S,
    exit_now: Callable[[int], object] = os._exit,
    dump: Callable[[], None] = lambda: cry(file=sys.stderr),
) -> threading.Timer:
    """Start the deadline (a daemon thread: it never holds a process that exits); ``cancel``
    it if the stop ends in time."""

    def expired() -> None:
        log.critical(
            "the worker did not stop within %.0f s (faust's consumer waits on a call its "
            "Kafka thread will never answer, after a broker outage): exiting with status 1, "
            "what it waited on follows; its next start reads again what it did not commit",
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
