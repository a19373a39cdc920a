"""Each stage processes every offset of a partition in order; a gap is sought back."""

from __future__ import annotations

from streams.engine.faust.gaps import OffsetGuard, Verdict

TP = ("sales.quotes", 1)


def test_nothing_is_processed_before_faust_positions_the_partition() -> None:
    guard = OffsetGuard()
    assert guard.check(TP, 0, positioned=None, now=0.0) is Verdict.SKIP
    assert guard.expected(TP, None) is None


def test_offsets_in_order_from_where_the_partition_was_positioned_are_processed() -> None:
    guard = OffsetGuard()
    positioned = (1, 5)  # sought to its committed offset 5
    for offset in (5, 6, 7):
        assert guard.check(TP, offset, positioned, now=0.0) is Verdict.PROCESS
        guard.done(TP, offset, positioned)
    assert guard.expected(TP, positioned) == 8
    assert guard.check(TP, 6, positioned, now=0.0) is Verdict.PROCESS  # a redelivery
    guard.done(TP, 6, positioned)
    assert guard.expected(TP, positioned) == 8  # does not move back


def test_a_lost_message_is_sought_back_and_what_follows_it_is_skipped_until_it_comes() -> None:
    # The two-worker failure: quotes/1 offset 3 never reached the ingest, 4 came after 2.
    guard = OffsetGuard(retry_s=3.0)
    positioned = (1, 0)
    for offset in (0, 1, 2):
        assert guard.check(TP, offset, positioned, now=0.0) is Verdict.PROCESS
        guard.done(TP, offset, positioned)
    assert guard.check(TP, 4, positioned, now=1.0) is Verdict.SEEK
    assert guard.expected(TP, positioned) == 3
    assert guard.check(TP, 5, positioned, now=1.5) is Verdict.SKIP  # already sought back
    assert guard.check(TP, 3, positioned, now=2.0) is Verdict.PROCESS
    guard.done(TP, 3, positioned)
    assert guard.check(TP, 4, positioned, now=2.0) is Verdict.PROCESS


def test_a_seek_undone_by_messages_already_fetched_is_repeated_then_the_broker_asked() -> None:
    guard = OffsetGuard(retry_s=3.0, tries=2)
    positioned = (1, 0)
    guard.done(TP, 0, positioned)
    assert guard.check(TP, 9, positioned, now=0.0) is Verdict.SEEK
    assert guard.check(TP, 9, positioned, now=2.9) is Verdict.SKIP
    assert guard.check(TP, 9, positioned, now=3.1) is Verdict.SEEK  # second try
    # Offsets 1-8 never come (a transactional producer's markers, say): the stage asks the
    # broker again (streams.engine.faust.rebalance.GuardedStage), then seeks again or goes on.
    assert guard.check(TP, 9, positioned, now=6.2) is Verdict.STUCK
    assert guard.check(TP, 9, positioned, now=6.3) is Verdict.SEEK  # sought back again
    guard.accept(TP)  # the broker said offsets 1-8 hold no message
    guard.done(TP, 9, positioned)
    assert guard.check(TP, 10, positioned, now=6.3) is Verdict.PROCESS


def test_a_new_positioning_after_a_rebalance_starts_from_where_faust_sought() -> None:
    guard = OffsetGuard()
    guard.done(TP, 40, (1, 0))
    # The partition went to another worker, which committed 90, and came back.
    assert guard.expected(TP, (2, 90)) == 90
    assert guard.check(TP, 41, (2, 90), now=0.0) is Verdict.PROCESS  # older: a redelivery
    assert guard.check(TP, 95, (2, 90), now=0.0) is Verdict.SEEK
    guard.done(TP, 95, (2, 90))  # (were it processed)
    # A stage done with an event of the earlier positioning changes nothing.
    guard.done(TP, 120, (1, 0))
    assert guard.expected(TP, (2, 90)) == 96


def test_a_seek_back_is_repeated_on_a_timer_when_nothing_more_comes() -> None:
    # The partition's last message was the one past the gap: no later message will ask.
    guard = OffsetGuard(retry_s=3.0)
    positioned = {TP: (1, 0)}
    assert guard.check(TP, 1, positioned[TP], now=0.0) is Verdict.SEEK
    assert guard.due(positioned, now=2.0) == []
    assert guard.due(positioned, now=3.0) == [(TP, 0)]
    assert guard.due(positioned, now=4.0) == []
    assert guard.check(TP, 0, positioned[TP], now=4.5) is Verdict.PROCESS
    assert guard.due(positioned, now=9.0) == []  # it came


def test_a_partition_revoked_or_positioned_again_is_not_sought_by_the_timer() -> None:
    guard = OffsetGuard(retry_s=3.0)
    assert guard.check(TP, 7, (1, 0), now=0.0) is Verdict.SEEK
    assert guard.due({}, now=5.0) == []  # revoked: its next owner reads it
    assert guard.check(TP, 7, (1, 0), now=6.0) is Verdict.SEEK
    assert guard.due({TP: (2, 7)}, now=10.0) == []  # faust sought it to 7 since


def test_a_gap_the_broker_says_is_empty_is_accepted_at_once() -> None:
    # Offsets 1-8 are a transactional producer's commit markers: nothing to seek back for.
    guard = OffsetGuard(retry_s=3.0)
    positioned = (1, 0)
    guard.done(TP, 0, positioned)
    assert guard.check(TP, 9, positioned, now=0.0) is Verdict.SEEK
    guard.accept(TP)
    guard.done(TP, 9, positioned)
    assert guard.due({TP: positioned}, now=10.0) == []  # no seek back on the timer
    assert guard.check(TP, 10, positioned, now=10.0) is Verdict.PROCESS


def test_a_partition_whose_last_messages_were_lost_is_sought_back_once_silent() -> None:
    """faust marked offsets 0-2 read while its flow was suspended and never handed them;
    nothing later comes to show the gap. Positioned at 0 with a highwater of 3, silent for
    ``silent_s``: sought back to 0, then again only after another ``silent_s``."""
    guard = OffsetGuard(silent_s=10.0)
    positioned = {"tp": (1, 0)}
    ends = {"tp": 3}
    assert guard.silent(positioned, ends.get, now=0.0) == []  # its clock starts here
    assert guard.silent(positioned, ends.get, now=9.9) == []
    assert guard.silent(positioned, ends.get, now=10.0) == [("tp", 0)]
    assert guard.silent(positioned, ends.get, now=15.0) == []
    assert guard.silent(positioned, ends.get, now=20.0) == [("tp", 0)]


def test_a_partition_read_to_its_end_or_handing_messages_is_never_silent() -> None:
    guard = OffsetGuard(silent_s=10.0)
    positioned = {"tp": (1, 0)}
    guard.silent(positioned, {"tp": 2}.get, now=0.0)
    for offset, now in ((0, 4.0), (1, 8.0)):
        assert guard.check("tp", offset, positioned["tp"], now) is Verdict.PROCESS
        guard.done("tp", offset, positioned["tp"])
    assert guard.silent(positioned, {"tp": 2}.get, now=9.0) == []  # read to its end
    assert guard.silent(positioned, {"tp": 2}.get, now=300.0) == []  # idle for minutes
    # A message arrives after five idle minutes: the highwater moves before the stage has
    # it. Not silent: the clock starts now, and the message comes 3 s later.
    assert guard.silent(positioned, {"tp": 3}.get, now=301.0) == []
    assert guard.check("tp", 2, positioned["tp"], 304.0) is Verdict.PROCESS
    guard.done("tp", 2, positioned["tp"])
    assert guard.silent(positioned, {"tp": 3}.get, now=320.0) == []
    # Then two more, handed 8 s apart: silent only 10 s after the last one handed.
    assert guard.silent(positioned, {"tp": 5}.get, now=330.0) == []
    assert guard.check("tp", 3, positioned["tp"], 338.0) is Verdict.PROCESS
    guard.done("tp", 3, positioned["tp"])
    assert guard.silent(positioned, {"tp": 5}.get, now=347.9) == []
    assert guard.silent(positioned, {"tp": 5}.get, now=348.0) == [("tp", 4)]
    assert guard.silent({"tp": (2, 0)}, {"tp": 5}.get, now=400.0) == []  # positioned anew
