"""Cells add up, subtract back to nothing, and diff only what changed."""

from __future__ import annotations

from streams.kpi.cells import add_cell, cell_key, diff, merge, split_cell_key


def test_merge_adds_counts_and_members() -> None:
    merged = merge([{"calls": 2, "reps": {"a": 1}}, {"calls": 3, "reps": {"a": 1, "b": 2}}])
    assert merged == {"calls": 5, "reps": {"a": 2, "b": 2}}


def test_subtracting_a_contribution_leaves_no_zero_behind() -> None:
    cell = {"orders": 1, "rev_c": 1050, "resp_sk": {"12": 1}}
    add_cell(cell, {"orders": 1, "rev_c": 1050, "resp_sk": {"12": 1}}, sign=-1)
    assert cell == {}


def test_diff_has_only_changed_cells() -> None:
    old = {"a": {"new_cust": 1}, "b": {"repeat": 1}}
    new = {"a": {"repeat": 1}, "b": {"repeat": 1}}
    assert diff(new, old) == {"a": {"repeat": 1, "new_cust": -1}}


def test_cell_keys_round_trip_keys_with_separators() -> None:
    key = cell_key("day", 1774738800, "team", "Sud|Alpha")
    assert split_cell_key(key) == ("day", 1774738800, "team", "Sud|Alpha")
