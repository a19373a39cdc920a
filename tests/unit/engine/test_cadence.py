"""When a stage flushes: on its clock, or as soon as its input is drained with messages
waiting, at most every gap, and never sooner than its last flush can afford
(streams.engine.cadence)."""

from __future__ import annotations

import pytest

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


def test_a_long_flush_puts_off_the_next_for_its_duration_over_the_share() -> None:
    cadence = Cadence(every_s=0.5, gap_s=0.05, share=0.25, max_s=4.0)
    cadence.flushed(10.0, 10.3)  # 0.3 s: the next is 1.2 s after its start at the earliest
    assert cadence.afford_s == pytest.approx(1.2)
    assert not cadence.due(10.5, waiting=True, drained=False)  # the clock waits too
    assert not cadence.due(11.19, waiting=True, drained=True)
    assert cadence.due(11.21, waiting=True, drained=True)
    assert cadence.due(11.21, waiting=False, drained=False)  # past the clock as well


def test_the_wait_is_at_most_max_s_and_a_short_flush_changes_nothing() -> None:
    cadence = Cadence(every_s=0.5, gap_s=0.05, share=0.25, max_s=4.0)
    cadence.flushed(0.0, 5.0)  # 5 s over 0.25 would be 20 s
    assert not cadence.due(3.99, waiting=False, drained=False)
    assert cadence.due(4.0, waiting=False, drained=False)
    cadence.flushed(4.0, 4.005)  # an idle floor's flush: the gap and the clock as before
    assert not cadence.due(4.04, waiting=True, drained=True)
    assert cadence.due(4.06, waiting=True, drained=True)
    assert cadence.due(4.51, waiting=False, drained=False)


def test_a_share_outside_zero_to_one_is_refused() -> None:
    for share in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="share must be in"):
            Cadence(every_s=0.5, share=share)
