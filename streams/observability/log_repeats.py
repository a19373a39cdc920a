"""Repeated warnings and errors, logged once and then summed up.

While the broker is down aiokafka logs the same connection errors thousands of times a
second (``Unable connect to node with id 1: ...``, ``Unable to update metadata from [1]``).
A record at WARNING or above whose logger, level and message template (the message before
its arguments, see ``record_key``) was already logged is held back and counted; once per
``interval_s`` while they go on, one line says how many were held back, with the text of the
latest of them. A template quiet for a whole interval starts afresh: its next record is
logged as it is. Records below WARNING always pass, and the first of each run always passes
whole (with its traceback).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

REPEAT_INTERVAL_S = 10.0

Key = tuple[str, int, str]
"""(logger name, level, message template)"""

# A %-style placeholder: a template with no word besides these (``log.warning("%s", text)``)
# says nothing by itself, so its records are told apart by their whole message.
_PLACEHOLDER = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d+)?(\.(\*|\d+))?[diouxXeEfFgGcrsa%]")
_NUMBER = re.compile(r"\d+")
_SUMMARY = "_salespulse_repeat_summary"  # set on the summary records this module writes


@dataclass
class _Run:
    since: float  # start of the current interval
    held: int = 0  # records held back in it
    latest: logging.LogRecord | None = None


@dataclass(frozen=True)
class Summary:
    """``held`` records like ``latest`` were held back in the last ``seconds``."""

    latest: logging.LogRecord
    held: int
    seconds: float

    def record(self) -> logging.LogRecord:
        """The line saying so, from the latest one's logger, level and place."""
        latest = self.latest
        record = logging.LogRecord(
            latest.name, latest.levelno, latest.pathname, latest.lineno,
            "%s [repeated %d more times in the last %.0f s]",
            (latest.getMessage(), self.held, self.seconds), None, latest.funcName,
        )  # fmt: skip
        setattr(record, _SUMMARY, True)
        return record


def record_key(record: logging.LogRecord) -> Key:
    """What makes two records repeats of each other: their logger, level and template; for
    a message formatted before logging (an f-string: faust's ``producer buffer full size
    530``) or a template of placeholders only, the message with its numbers masked."""
    template = str(record.msg)
    if not record.args or not re.search(r"\w", _PLACEHOLDER.sub("", template)):
        template = _NUMBER.sub("#", record.getMessage())
    return record.name, record.levelno, template


class RepeatLimiter:
    """Which records of one output to log, and the summaries due (pure: times are given)."""

    def __init__(self, interval_s: float = REPEAT_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._runs: dict[Key, _Run] = {}

    def admit(self, key: Key, record: logging.LogRecord, now: float) -> bool:
        """Whether to log ``record`` now: the first of its key since that key went quiet."""
        run = self._runs.get(key)
        if run is None:
            self._runs[key] = _Run(since=now)
            return True
        run.held += 1
        run.latest = record
        return False

    def due(self, now: float, *, everything: bool = False) -> list[Summary]:
        """The summaries of the intervals that ended by ``now`` (``everything``: of every
        record held back, at shutdown); a key with none held in its interval is forgotten."""
        summaries = []
        for key, run in list(self._runs.items()):
            if not everything and now - run.since < self.interval_s:
                continue
            if run.latest is None:
                del self._runs[key]
                continue
            summaries.append(Summary(run.latest, run.held, now - run.since))
            self._runs[key] = _Run(since=now)
        return summaries


class RepeatFilter(logging.Filter):
    """On a handler: holds back the repeats among its warnings and errors
    (``RepeatLimiter``) and writes their summaries to it. Thread-safe (faust's consumer
    runs in a thread of its own)."""

    def __init__(
        self, handler: logging.Handler, interval_s: float = REPEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        super().__init__()
        self.handler = handler
        self.limiter = RepeatLimiter(interval_s)
        self.clock = clock
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SUMMARY, False):
            return True
        with self.lock:
            now = self.clock()
            summaries = self.limiter.due(now)
            passes = record.levelno < logging.WARNING or self.limiter.admit(
                record_key(record), record, now
            )
        self._write(summaries)
        return passes

    def flush(self, *, everything: bool = False) -> None:
        """Write the summaries due now (``everything``: all that are pending)."""
        with self.lock:
            summaries = self.limiter.due(self.clock(), everything=everything)
        self._write(summaries)

    def _write(self, summaries: list[Summary]) -> None:
        for summary in summaries:
            self.handler.handle(summary.record())


def limit_repeats(
    logger: logging.Logger, interval_s: float = REPEAT_INTERVAL_S
) -> list[RepeatFilter]:
    """A ``RepeatFilter`` on each handler of ``logger`` (the root logger: every record)."""
    filters = []
    for handler in logger.handlers:
        repeat_filter = RepeatFilter(handler, interval_s)
        handler.addFilter(repeat_filter)
        filters.append(repeat_filter)
    return filters
