"""The ingest watermark waits for partitions with a backlog and lets quiet ones go."""

from __future__ import annotations

from streams.engine.watermark import Watermark


def test_the_slowest_partition_with_work_left_holds_the_watermark() -> None:
    caught_up = {("calls", 0): False, ("emails", 0): False}
    mark = Watermark(3.0, lambda t, p, o: caught_up[(t, p)])
    for source, at in ((("calls", 0), 5_000), (("emails", 0), 1_000)):
        mark.read(*source, offset=0, now=0.0)
        mark.observe(*source, at_ms=at)
    assert mark.value(now=10.0) == 1_000  # emails still has a backlog, long quiet or not
    caught_up[("emails", 0)] = True
    assert mark.value(now=1.0) == 1_000  # caught up, but not quiet for 3 s yet
    assert mark.value(now=10.0) == 5_000  # caught up and quiet: it no longer holds it


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
