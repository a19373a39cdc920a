"""bench.progress: the done decision from committed and end offsets (no broker)."""

from __future__ import annotations

from bench.progress import Drain, Snapshot, describe, group_started

STAGES = {
    "b.sales.orders": "inputs",
    "b.sales.calls": "inputs",
    "b.internal.entities": "internal.entities",
    "b.internal.cells": "internal.cells",
}
ENDS = {
    ("b.sales.orders", 0): 100,
    ("b.sales.calls", 0): 50,
    ("b.internal.entities", 0): 300,
    ("b.internal.cells", 0): 40,
}


def snap(at: float, ends: dict | None = None, **committed: int | None) -> Snapshot:
    """Committed offsets by short name (orders, calls, entities, cells); default: at the end."""
    ends = dict(ENDS if ends is None else ends)
    names = {"orders": "b.sales.orders", "calls": "b.sales.calls",
             "entities": "b.internal.entities", "cells": "b.internal.cells"}  # fmt: skip
    done: dict[tuple[str, int], int | None] = dict(ends)
    for short, offset in committed.items():
        done[(names[short], 0)] = offset
    return Snapshot(at=at, committed=done, ends=ends)


def test_lag_counts_what_was_never_committed_from_zero() -> None:
    s = snap(0.0, orders=None, cells=30)
    assert s.lag(("b.sales.orders", 0)) == 100
    assert s.lag(("b.internal.cells", 0)) == 10
    assert s.lag_by_stage(STAGES) == {"inputs": 100, "internal.entities": 0, "internal.cells": 10}
    assert not s.drained()


def test_an_empty_partition_nobody_committed_is_drained() -> None:
    ends = {**ENDS, ("b.sales.calls", 1): 0}
    s = Snapshot(at=0.0, committed={**ENDS, ("b.sales.calls", 1): None}, ends=ends)
    assert s.drained()


def test_not_done_before_the_worker_committed_anything() -> None:
    drain = Drain(STAGES, quiet_s=2.0)
    for t in range(10):
        assert not drain.observe(snap(float(t), orders=None, calls=None, entities=None, cells=None))
    assert drain.finished is None


def test_inputs_done_but_later_stages_behind_is_not_done() -> None:
    drain = Drain(STAGES, quiet_s=1.0)
    for t in range(5):
        assert not drain.observe(snap(float(t), entities=250))
    assert drain.finished is None


def test_done_after_the_quiet_period_finished_at_the_first_drained_snapshot() -> None:
    drain = Drain(STAGES, quiet_s=2.0)
    assert not drain.observe(snap(0.0, orders=60, entities=100, cells=10))
    assert not drain.observe(snap(0.5, cells=30))
    assert not drain.observe(snap(1.0))  # drained: the candidate finish
    assert not drain.observe(snap(2.0))
    assert drain.observe(snap(3.0))
    assert drain.finished == 1.0
    assert drain.observe(snap(9.0, orders=0))  # done stays done


def test_a_stage_marker_in_flight_during_the_quiet_period_keeps_the_finish_time() -> None:
    drain = Drain(STAGES, quiet_s=2.0)
    assert not drain.observe(snap(1.0))
    marker = {**ENDS, ("b.internal.cells", 0): 41}  # a marker not yet committed
    assert not drain.observe(snap(2.0, ends=marker, cells=40))
    assert not drain.observe(snap(3.5, ends=marker, cells=40))  # quiet long enough, not drained
    assert drain.observe(snap(4.0, ends=marker, cells=41))
    assert drain.finished == 1.0


def test_new_input_during_the_quiet_period_starts_over() -> None:
    drain = Drain(STAGES, quiet_s=2.0)
    assert not drain.observe(snap(1.0))
    more = {**ENDS, ("b.sales.orders", 0): 120}
    assert not drain.observe(snap(2.0, ends=more, orders=100))  # new input: start over
    assert not drain.observe(snap(3.5, ends=more))
    assert drain.first_drained == 3.5
    assert not drain.observe(snap(5.0, ends=more))
    assert drain.observe(snap(5.5, ends=more))
    assert drain.finished == 3.5


def test_describe_says_committed_inputs_and_lag_per_stage() -> None:
    line = describe(snap(0.0, orders=40, entities=290), STAGES, expected_inputs=150)
    assert line == "inputs committed 90/150; lag: inputs 60, entities 10, cells 0"


def test_group_started_needs_stable_and_an_assignment() -> None:
    member = ("m1", "faust", "/127.0.0.1", b"meta", b"assignment")
    unassigned = ("m1", "faust", "/127.0.0.1", b"meta", b"")
    assert group_started([(0, "app", "Stable", "consumer", "faust", [member])])
    assert not group_started([(0, "app", "PreparingRebalance", "consumer", "faust", [member])])
    assert not group_started([(0, "app", "Stable", "consumer", "faust", [unassigned])])
    assert not group_started([(0, "app", "Empty", "consumer", "", [])])
    assert not group_started([])
