"""streams.observability.log_repeats: repeated warnings and errors logged once, then summed up (pure: a
clock of the test's, records into a list)."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from streams.observability.log_repeats import RepeatFilter, RepeatLimiter, record_key

CONNECT = "Unable connect to node with id %s: %s"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Kept(logging.Handler):
    """The records a handler writes, as their messages."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name} {record.levelname} {record.getMessage()}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kept(clock: Clock) -> Kept:
    handler = Kept()
    handler.addFilter(RepeatFilter(handler, interval_s=10.0, clock=clock))
    return handler


def record(
    msg: str, *args: object, name: str = "aiokafka.client", level: int = logging.ERROR
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def connect_error(node: int = 1) -> logging.LogRecord:
    return record(CONNECT, node, "[Errno 111] Connect call failed ('127.0.0.1', 9092)")


def flush(handler: Kept, everything: bool = False) -> None:
    (repeat_filter,) = handler.filters
    assert isinstance(repeat_filter, RepeatFilter)
    repeat_filter.flush(everything=everything)


def test_the_first_passes_and_repeats_are_summed_up_once_per_interval(
    clock: Clock, kept: Kept
) -> None:
    first = "aiokafka.client ERROR Unable connect to node with id 1: [Errno 111] Connect call "
    first += "failed ('127.0.0.1', 9092)"
    for n in range(2500):  # 250 a second for 10 s
        clock.now = 1000.0 + n * 0.004
        kept.handle(connect_error())
    flush(kept)
    assert kept.messages == [first]  # 9.996 s: the interval has not ended
    clock.now = 1010.0
    flush(kept)
    assert kept.messages == [first, f"{first} [repeated 2499 more times in the last 10 s]"]
    kept.handle(connect_error())
    clock.now += 10.5
    flush(kept)
    assert kept.messages[2:] == [f"{first} [repeated 1 more times in the last 10 s]"]


def test_a_template_quiet_for_an_interval_is_logged_again_in_full(clock: Clock, kept: Kept) -> None:
    kept.handle(connect_error())
    clock.now += 10.0
    flush(kept)  # none held back: no summary, the template is forgotten
    kept.handle(connect_error(2))
    assert len(kept.messages) == 2
    assert "with id 2" in kept.messages[1]
    assert "[repeated" not in kept.messages[1]


def test_the_summary_says_the_latest_repeat(clock: Clock, kept: Kept) -> None:
    for node in (1, 2, 3):
        kept.handle(connect_error(node))
    clock.now += 12.0
    flush(kept)
    assert len(kept.messages) == 2
    assert "with id 3" in kept.messages[1]
    assert kept.messages[1].endswith("[repeated 2 more times in the last 12 s]")


def test_info_and_debug_always_pass(kept: Kept) -> None:
    for _ in range(5):
        kept.handle(record("status: watermark=%s", 17, name="streams.app", level=logging.INFO))
    assert len(kept.messages) == 5


def test_loggers_levels_and_templates_are_counted_apart(clock: Clock, kept: Kept) -> None:
    distinct = [
        connect_error(),
        record(CONNECT, 1, "refused", name="aiokafka.conn"),
        record(CONNECT, 1, "refused", level=logging.WARNING),
        record("Unable to update metadata from %s", [1]),
        record("%s", "Redis does not answer", name="streams.cli.worker", level=logging.WARNING),
        record("%s", "a second, other warning", name="streams.cli.worker", level=logging.WARNING),
    ]
    for item in distinct * 3:
        kept.handle(item)
    assert len(kept.messages) == len(distinct)
    clock.now += 10.0
    kept.handle(record("status: watermark=%s", 17, name="streams.app", level=logging.INFO))
    summaries = kept.messages[len(distinct) : -1]  # written before the record that found them due
    assert len(summaries) == len(distinct)
    assert all(s.endswith("[repeated 2 more times in the last 10 s]") for s in summaries)
    assert kept.messages[-1] == "streams.app INFO status: watermark=17"


def test_at_shutdown_every_held_back_repeat_is_summed_up(clock: Clock, kept: Kept) -> None:
    kept.handle(connect_error())
    kept.handle(connect_error())
    clock.now += 3.0
    flush(kept)
    assert len(kept.messages) == 1
    flush(kept, everything=True)
    assert kept.messages[1].endswith("[repeated 1 more times in the last 3 s]")


def test_the_first_keeps_its_traceback_and_summaries_have_none(clock: Clock) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    repeat_filter = RepeatFilter(handler, interval_s=10.0, clock=clock)
    handler.addFilter(repeat_filter)
    try:
        raise ConnectionRefusedError(111, "Connect call failed")
    except ConnectionRefusedError:
        for _ in range(3):
            handler.handle(
                logging.LogRecord(
                    "streams.test",
                    logging.ERROR,
                    __file__,
                    1,
                    "could not connect",
                    None,
                    sys.exc_info(),
                )
            )
    clock.now += 10.0
    repeat_filter.flush()
    text = stream.getvalue()
    assert text.count("Traceback") == 1
    assert "ConnectionRefusedError: [Errno 111] Connect call failed" in text
    assert text.splitlines()[-1] == "could not connect [repeated 2 more times in the last 10 s]"


def test_a_key_is_the_template_or_the_message_but_its_numbers() -> None:
    assert record_key(connect_error(1)) == record_key(connect_error(2))
    assert record_key(record("%s", "a")) != record_key(record("%s", "b"))
    assert record_key(record("%r: %d", "a", 1)) != record_key(record("%r: %d", "b", 1))
    assert record_key(record("%s", "a 1")) == record_key(record("%s", "a 2"))
    full = "producer buffer full size {}"  # faust logs it formatted
    assert record_key(record(full.format(530))) == record_key(record(full.format(1600)))
    assert record_key(record(full.format(530))) != record_key(record("producer flush took 0.1"))


def test_the_limiter_forgets_a_key_quiet_for_an_interval() -> None:
    limiter = RepeatLimiter(interval_s=10.0)
    key = ("x", logging.ERROR, "boom")
    assert limiter.admit(key, record("boom"), now=0.0)
    assert not limiter.admit(key, record("boom"), now=1.0)
    (summary,) = limiter.due(now=10.0)
    assert (summary.held, summary.seconds) == (1, 10.0)
    assert not limiter.admit(key, record("boom"), now=15.0)  # a new interval began at 10
    assert len(limiter.due(now=20.0)) == 1
    assert limiter.due(now=30.0) == []  # quiet from 20 to 30: forgotten
    assert limiter.admit(key, record("boom"), now=31.0)
