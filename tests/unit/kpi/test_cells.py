"""Cells add up, subtract back to nothing, and diff only what changed."""

from __future__ import annotations

from typing import Any

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


def test_a_map_of_a_cell_not_owned_is_replaced_so_its_other_holders_keep_theirs() -> None:
    stored = {"open_leads": {"1": 1}, "n": 1}
    merged = dict(stored)  # a shallow copy, as a stage makes of a stored cell
    add_cell(merged, {"open_leads": {"2": 1}, "n": 1})
    assert merged == {"open_leads": {"1": 1, "2": 1}, "n": 2}
    assert stored == {"open_leads": {"1": 1}, "n": 1}


def test_an_owned_accumulator_adds_to_its_maps_in_place_and_never_keeps_the_other_s() -> None:
    total: dict[str, Any] = {}
    first = {"open_leads": {"1": 1}}
    add_cell(total, first, owned=True)
    leads = total["open_leads"]
    assert leads is not first["open_leads"]  # a map added is copied, not kept
    add_cell(total, {"open_leads": {"2": 1}}, owned=True)
    assert total["open_leads"] is leads == {"1": 1, "2": 1}  # the same map, added to
    assert first == {"open_leads": {"1": 1}}
    add_cell(total, {"open_leads": {"1": 1, "2": 1}}, -1, owned=True)
    assert total == {}  # what becomes zero is dropped, maps included


def test_owned_or_not_the_sums_are_the_same() -> None:
    cells = [{"a": 1, "m": {"x": 1, "y": 2}}, {"m": {"x": -1, "z": 3}}, {"a": -1, "m": {"y": 1}}]
    owned: dict[str, Any] = {}
    copied: dict[str, Any] = {}
    for cell in cells:
        add_cell(owned, cell, owned=True)
        add_cell(copied, cell)
    assert owned == copied == {"m": {"y": 3, "z": 3}} == merge(cells)
