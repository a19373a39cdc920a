"""When a stage flushes: on its clock, or as soon as its input is drained with messages
waiting, at most every gap (streams.engine.cadence)."""

from __future__ import annotations

from streams.engine.cadence import Cadence


def test_the_clock_flushes_whether_or_not_messages_wait() -> None:
    cadence = Cadence(every_s=0.5, gap_s=0.05)
    assert cadence.due(0.0, waiting=False, drained=False)  # never flushed yet
    cadence.flushed(0.0)
    assert not cadence.due(0.49, waiting=False, drained=True)  # nothing waits: the clock
    assert not cadence.due(0.49, waiting=True, drained=False)  # busy: batches grow
    assert cadence.due(0.5, waiting=False, drained=False)  # markers, window closes


def test_a_drained_queue_with_messages_waiting_flushes_after_the_gap() -> None:
    cadence = Cadence(every_s=0.5, gap_s=0.05)
    cadence.flushed(10.0)
    assert not cadence.due(10.04, waiting=True, drained=True)
    assert cadence.due(10.05, waiting=True, drained=True)
    cadence.flushed(10.05)
    assert not cadence.due(10.06, waiting=True, drained=True)


def test_it_is_asked_at_the_gap_or_the_clock_whichever_is_shorter() -> None:
    assert Cadence(every_s=0.5, gap_s=0.05).tick_s == 0.05
    assert Cadence(every_s=0.02, gap_s=0.05).tick_s == 0.02
