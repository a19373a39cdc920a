"""The ingest watermark waits for partitions with a backlog and lets quiet ones go."""

from __future__ import annotations

from streams.engine.watermark import Watermark


def test_the_slowest_partition_with_work_left_holds_the_watermark() -> None:
    caught_up = {("calls", 0): False, ("emails", 0): False}
    mark = Watermark(3.0, lambda t, p, o: caught_up[(t, p)])
    for source, at in ((("calls", 0), 5_000), (("emails", 0), 1_000)):
        mark.read(*source, offset=0, now=0.0)
        mark.observe(*source, at_ms=at)
    sources = [("calls", 0), ("emails", 0)]
    assert mark.value(sources, now=10.0) == 1_000  # emails still has a backlog, quiet or not
    caught_up[("emails", 0)] = True
    assert mark.value(sources, now=1.0) == 1_000  # caught up, but not quiet for 3 s yet
    assert mark.value(sources, now=10.0) == 5_000  # caught up and quiet: it no longer holds it


def test_an_assigned_partition_with_a_backlog_not_read_yet_holds_the_watermark() -> None:
    # The CRM replay failure: the fetch order gave one partition's whole backlog (up to the
    # end of 2017) before the first message of another (from 2016), which then looked late.
    caught_up = {("opps", 0): False, ("opps", 1): False, ("orders", 0): True}
    mark = Watermark(3.0, lambda t, p, o: caught_up[(t, p)])
    sources = list(caught_up)
    mark.read("opps", 0, offset=0, now=0.0)
    mark.observe("opps", 0, at_ms=9_000)
    assert mark.value(sources, now=1.0) is None  # opps[1] has a backlog: nothing known yet
    mark.read("opps", 1, offset=0, now=1.0)
    mark.observe("opps", 1, at_ms=2_000)
    assert mark.value(sources, now=1.0) == 2_000  # orders[0] is empty: it holds nothing


def test_the_watermark_never_goes_back() -> None:
    caught_up = {("calls", 0): True, ("calls", 1): False}
    mark = Watermark(3.0, lambda t, p, o: caught_up[(t, p)])
    mark.read("calls", 0, offset=0, now=0.0)
    mark.observe("calls", 0, at_ms=8_000)
    assert mark.value([("calls", 0)], now=10.0) == 8_000
    # A partition assigned later with older events: held where it was, not moved back.
    assert mark.value([("calls", 0), ("calls", 1)], now=10.0) == 8_000
    mark.read("calls", 1, offset=0, now=10.0)
    mark.observe("calls", 1, at_ms=1_000)
    assert mark.value([("calls", 0), ("calls", 1)], now=10.0) == 8_000
    assert mark.value([], now=10.0) == 8_000  # rebalancing: nothing new to say


def test_all_quiet_needs_every_assigned_partition_caught_up() -> None:
    caught_up = {("calls", 0): True, ("spend", 0): False}
    mark = Watermark(3.0, lambda t, p, o: caught_up[(t, p)])
    mark.read("calls", 0, offset=4, now=mark.started)
    sources = [("calls", 0), ("spend", 0)]
    assert not mark.all_quiet(sources, now=mark.started + 10)  # spend not fetched yet
    caught_up[("spend", 0)] = True
    assert mark.all_quiet(sources, now=mark.started + 10)
    assert not mark.all_quiet(sources, now=mark.started + 1)  # too early to tell


def test_no_known_assignment_is_not_quiet() -> None:
    mark = Watermark(3.0, lambda t, p, o: True)
    assert not mark.all_quiet([], now=mark.started + 100)  # starting or rebalancing
