"""The cluster watermark: every input partition, whichever worker reads it, bounds it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.watermark.clock import (
    ClusterView,
    ClusterWatermark,
    Progress,
    Watermark,
    combine,
    merge,
    tick,
)

CALLS0, CALLS1, EMAILS0, ORDERS0 = ("calls", 0), ("calls", 1), ("emails", 0), ("orders", 0)


def test_the_slowest_partition_with_work_left_holds_the_watermark() -> None:
    progress = {CALLS0: Progress(10, 5_000, False), EMAILS0: Progress(3, 1_000, False)}
    ends = {CALLS0: 10, EMAILS0: 20}
    view = combine([CALLS0, EMAILS0], progress, ends)
    assert (view.value, view.slowest, view.quiet) == (1_000, "emails/0", False)
    # Routed to its end but not quiet yet: it still counts.
    progress[EMAILS0] = Progress(20, 1_000, False)
    assert combine([CALLS0, EMAILS0], progress, ends).value == 1_000
    # Quiet (its owner saw nothing for idle_s): it no longer holds the others.
    progress[EMAILS0] = Progress(20, 1_000, True)
    assert combine([CALLS0, EMAILS0], progress, ends).value == 5_000


def test_a_partition_with_events_nothing_was_routed_from_holds_the_watermark() -> None:
    # The CRM replay failure: the fetch order gave one partition's whole backlog (up to the
    # end of 2017) before the first message of another (from 2016), which then looked late.
    progress = {CALLS0: Progress(500, 9_000, False), CALLS1: Progress(0, None, False)}
    ends = {CALLS0: 800, CALLS1: 300, ORDERS0: 0}
    view = combine([CALLS0, CALLS1, ORDERS0], progress, ends)
    assert (view.value, view.holding) == (None, ("calls/1",))
    progress[CALLS1] = Progress(1, 2_000, False)
    assert combine([CALLS0, CALLS1, ORDERS0], progress, ends).value == 2_000  # orders empty


def test_another_workers_partitions_bound_the_watermark() -> None:
    # The two-worker failure: worker A had read all of its partitions' burst while worker B
    # was still on the first events of its own; A's watermark ran ahead of B's events.
    a = {CALLS0: Progress(900, 90_000, False)}
    b = {CALLS1: Progress(12, 1_500, False)}
    ends = {CALLS0: 900, CALLS1: 800}
    assert combine([CALLS0, CALLS1], {**b, **a}, ends).value == 1_500
    # B has not reported yet: its partition has events, so it holds everything.
    view = combine([CALLS0, CALLS1], a, ends)
    assert (view.value, view.holding) == (None, ("calls/1",))
    # An empty partition nobody reported on holds nothing.
    assert combine([CALLS0, CALLS1], a, {**ends, CALLS1: 0}).value == 90_000


def test_a_quiet_partition_that_received_events_since_counts_again() -> None:
    # B reported calls/1 quiet, then a burst arrived there; the end offsets, read after the
    # cuts, show events B has not routed: it counts with what B reported, not left out.
    progress = {CALLS0: Progress(900, 90_000, False), CALLS1: Progress(40, 2_000, True)}
    assert combine([CALLS0, CALLS1], progress, {CALLS0: 900, CALLS1: 40}).value == 90_000
    assert combine([CALLS0, CALLS1], progress, {CALLS0: 900, CALLS1: 41}).value == 2_000
    # Quiet and empty since its owner started: it holds until its owner routes something.
    progress[CALLS1] = Progress(40, None, True)
    assert combine([CALLS0, CALLS1], progress, {CALLS0: 900, CALLS1: 41}).value is None


def test_unknown_end_offsets_hold_the_watermark() -> None:
    view = combine([CALLS0], {CALLS0: Progress(9, 5_000, False)}, {})
    assert (view.value, view.quiet, view.holding) == (None, False, ("calls/0",))


def test_everything_quiet_gives_the_newest_event_and_lets_windows_close() -> None:
    progress = {CALLS0: Progress(9, 5_000, True), CALLS1: Progress(4, 7_000, True)}
    ends = {CALLS0: 9, CALLS1: 4, EMAILS0: 0}
    view = combine([CALLS0, CALLS1, EMAILS0], progress, ends)
    assert (view.value, view.quiet) == (7_000, True)
    progress[CALLS1] = Progress(4, 7_000, False)  # one partition not quiet yet
    view = combine([CALLS0, CALLS1, EMAILS0], progress, ends)
    assert (view.value, view.quiet) == (7_000, False)
    # A partition with events and nobody's report is not quiet.
    assert not combine([CALLS0, CALLS1, EMAILS0], progress, {**ends, EMAILS0: 3}).quiet


def _at(value: int | None, quiet: bool = False, holding: tuple[str, ...] = ()) -> ClusterView:
    return ClusterView(holding, value, "calls/0" if value else None, value, quiet, False)


def test_the_cluster_watermark_never_goes_back() -> None:
    cluster = ClusterWatermark()
    assert not cluster.quiet
    assert cluster.last is None
    assert cluster.update(_at(8_000), _at(None))
    # A partition assigned later with older events: held where it was, not moved back.
    assert not cluster.update(_at(1_000), _at(None))
    assert not cluster.update(_at(None, holding=("calls/2",)), _at(None))
    assert cluster.last == 8_000
    assert cluster.update(_at(9_000, quiet=True), _at(None))
    assert (cluster.last, cluster.quiet) == (9_000, True)


def test_an_event_gets_this_workers_partitions_now_and_the_others_as_of_the_tick() -> None:
    cluster = ClusterWatermark()
    assert cluster.current(lambda capped: _at(5_000)) is None  # no tick yet: nothing known
    remote = combine([CALLS1], {CALLS1: Progress(10, 3_000, False)}, {CALLS1: 20})
    cluster.update(merge(remote, _at(4_000)), remote)  # the tick: this worker's cut at 4 s
    assert cluster.last == 3_000
    assert cluster.current(lambda capped: _at(5_000)) == 3_000  # the other worker holds it
    remote = combine([CALLS1], {CALLS1: Progress(20, 6_000, False)}, {CALLS1: 20})
    cluster.update(merge(remote, _at(4_000)), remote)
    assert cluster.current(lambda capped: _at(5_000)) == 5_000
    assert cluster.current(lambda capped: _at(5_500)) == 5_500  # moves with this worker's events
    held = combine([CALLS1], {}, {CALLS1: 20})
    cluster.update(merge(held, _at(9_000)), held)
    assert cluster.current(lambda capped: _at(9_000)) == 5_500  # nobody reported calls/1


def test_a_quiet_partition_of_another_worker_caps_this_workers_events_at_the_snapshot() -> None:
    # Worker B's calls/1 was quiet at the last snapshot. A burst now reaches every partition;
    # A must not count its burst events before the next snapshot shows B's new events.
    caught_up = {CALLS0: True}
    mark = Watermark(3.0, lambda t, p, o: caught_up[(t, p)])
    t0 = mark.started + 10
    mark.read(*CALLS0, offset=9, now=t0)
    mark.observe(*CALLS0, at_ms=1_000)
    mark.flushed(mark.checkpoint())
    cut = {CALLS0: mark.progress(CALLS0, committed=None, now=t0)}
    mark.snapshot({CALLS0: 10, CALLS1: 40}, cut)
    remote = combine([CALLS1], {CALLS1: Progress(40, 900, True)}, {CALLS1: 40})
    assert remote.excluded
    caught_up[CALLS0] = False  # the burst
    mark.read(*CALLS0, offset=10, now=t0 + 1)
    mark.observe(*CALLS0, at_ms=90_000)
    assert mark.view([CALLS0], capped=False, now=t0 + 1).value == 90_000
    assert mark.view([CALLS0], capped=True, now=t0 + 1).value == 1_000
    cluster = ClusterWatermark()
    cluster.update(merge(remote, combine([CALLS0], cut, {CALLS0: 10})), remote)
    assert cluster.current(lambda capped: mark.view([CALLS0], capped, now=t0 + 1)) == 1_000


def test_this_workers_partition_with_unread_events_and_nothing_routed_holds() -> None:
    caught_up = {CALLS0: False, EMAILS0: False, ORDERS0: True}
    mark = Watermark(3.0, lambda t, p, o: caught_up[(t, p)])
    now = mark.started + 10
    mark.read(*CALLS0, offset=0, now=now)
    mark.observe(*CALLS0, at_ms=9_000)
    sources = [CALLS0, EMAILS0, ORDERS0]
    assert mark.view(sources, capped=False, now=now).holding == ("emails/0",)
    mark.read(*EMAILS0, offset=0, now=now)
    mark.observe(*EMAILS0, at_ms=2_000)
    assert mark.view(sources, capped=False, now=now).value == 2_000  # orders is empty


def test_a_cut_reports_position_newest_and_quiet() -> None:
    caught_up = {CALLS0: False, EMAILS0: True, ORDERS0: True}
    mark = Watermark(3.0, lambda t, p, o: caught_up[(t, p)])
    t0 = mark.started
    mark.read(*CALLS0, offset=41, now=t0)
    mark.observe(*CALLS0, at_ms=5_000)
    mark.observe(*CALLS0, at_ms=4_000)  # out of order: the newest stays
    checkpoint = mark.checkpoint()
    # Routed but not flushed yet: other workers must not hear of it (it could be lost).
    assert mark.progress(CALLS0, committed=12, now=t0 + 10) == Progress(12, None, False)
    mark.flushed(checkpoint)
    assert mark.progress(CALLS0, committed=12, now=t0 + 10) == Progress(42, 5_000, False)
    caught_up[CALLS0] = True
    assert mark.progress(CALLS0, committed=12, now=t0 + 1) == Progress(42, 5_000, False)
    assert mark.progress(CALLS0, committed=12, now=t0 + 10) == Progress(42, 5_000, True)
    # Nothing routed since start: the group's committed offset (the next one to read).
    assert mark.progress(EMAILS0, committed=7, now=t0 + 10) == Progress(7, None, True)
    assert mark.progress(ORDERS0, committed=None, now=t0 + 10) == Progress(0, None, True)
    assert not mark.progress(ORDERS0, committed=None, now=t0 + 1).quiet  # just started


def test_a_cut_survives_the_topic() -> None:
    for record in (Progress(42, 5_000, False), Progress(0, None, True)):
        assert Progress.decode(record.encode()) == record


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 20)), max_size=40),
)
def test_following_the_slowest_partition_gives_the_view_seen_in_full(
    starts: list[int], events: list[tuple[int, int]]
) -> None:
    """The ingest follows the partition setting its view (``ClusterView.advanced``) instead
    of looking at every partition again: the same watermark, event after event."""
    watermark = Watermark(idle_s=3_600.0, caught_up=lambda topic, partition, offset: False)
    sources = [("calls", p) for p in range(len(starts))]
    for (topic, p), at in zip(sources, starts, strict=True):
        watermark.observe(topic, p, at)
    cached = watermark.view(sources, capped=False)
    for index, step in events:
        topic, p = sources[index % len(sources)]
        watermark.observe(topic, p, watermark.newest[(topic, p)] + step)
        name = f"{topic}/{p}"
        if name == cached.slowest:
            advanced = cached.advanced(name, watermark.newest[(topic, p)])
            cached = advanced or watermark.view(sources, capped=False)
        full = watermark.view(sources, capped=False)
        assert cached.value == full.value


def test_a_merged_view_knows_the_runner_up_of_both_sides() -> None:
    a = ClusterView((), 10, "calls/0", 40, False, False, 30)
    b = ClusterView((), 20, "emails/0", 25, False, False, 25)
    assert merge(a, b).runner_up == 20
    assert merge(a, ClusterView((), None, None, None, True, True)).runner_up == 30
    moved = merge(a, b).advanced("calls/0", 21)
    assert moved is None  # past emails/0: it may set the watermark now
    assert merge(a, b).advanced("calls/0", 15) == ClusterView(
        (), 15, "calls/0", 40, False, False, 20
    )


def test_the_same_views_are_merged_once() -> None:
    cluster = ClusterWatermark()
    remote = ClusterView((), 100, "calls/1", 100, False, False)
    cluster.update(ClusterView((), 40, "calls/0", 100, False, False), remote)
    local = ClusterView((), 50, "calls/0", 50, False, False)
    calls: list[bool] = []

    def view(capped: bool) -> ClusterView:
        calls.append(capped)
        return local

    assert cluster.current(view) == 50
    assert cluster.merged == (remote, local)
    assert cluster.current(view) == 50
    local = ClusterView((), 70, "calls/0", 70, False, False)
    assert cluster.current(view) == 70  # a new view is merged again


def test_a_tick_takes_this_workers_cut_and_the_other_workers_records() -> None:
    # Worker A reads calls/0; worker B reads calls/1 and has reported nothing yet.
    mark, cluster = Watermark(3.0, lambda t, p, o: False), ClusterWatermark()
    cut = {CALLS0: Progress(10, 4_000, False)}
    sources, ends = [CALLS0, CALLS1], {CALLS0: 10, CALLS1: 5}
    assert not tick(mark, cluster, cut, {}, sources, ends)  # calls/1 has events: it holds
    assert (cluster.last, cluster.view.holding) == (None, ("calls/1",))
    assert mark.boundary == {CALLS0: 10}
    assert mark.below == {CALLS0: 4_000}
    records = {CALLS1: Progress(5, 2_500, False)}
    assert tick(mark, cluster, cut, records, sources, ends)
    assert (cluster.last, cluster.view.slowest) == (2_500, "calls/1")
    assert cluster.remote.slowest == "calls/1"  # the other worker's part, apart
    # A record of this worker's own partition (its last run's) never overrides its cut.
    stale = {**records, CALLS0: Progress(2, 1_000, False)}
    assert tick(mark, cluster, cut, {**stale, CALLS1: Progress(5, 6_000, False)}, sources, ends)
    assert cluster.last == 4_000
