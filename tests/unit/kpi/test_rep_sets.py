"""Active reps live in bounded shards that travel with their parent cell and add up to the
exact distinct count; no ``internal.cells`` message grows with the number of reps."""

from __future__ import annotations

from collections import defaultdict
from zoneinfo import ZoneInfo

import orjson

from streams.engine.outbox import cell_chunks
from streams.kpi import rep_sets
from streams.kpi.cells import Cell, add_cell, split_cell_key
from streams.kpi.facts import Item, contribution
from streams.kpi.values import Context, value_of
from streams.kpi.windows import CellWindows

WINDOWS = CellWindows(ZoneInfo("Europe/Paris"))
T0 = 1_774_000_000_000


def call(n: int, rep: str, team: str = "Nord#1") -> Item:
    pairs = [["global", "all"], ["rep", rep], ["team", team], ["region", "Paris"]]
    return {"o": n, "t": T0 + n, "id": f"e{n}", "x": "call.logged", "late": [], "p": pairs,
            "pv": {}, "ok": True}  # fmt: skip


def cells_of(items: list[Item]) -> dict[str, Cell]:
    out: dict[str, Cell] = {}
    for item in items:
        for key, cell in contribution("event", [item], WINDOWS).items():
            add_cell(out.setdefault(key, {}), cell)
    return out


def test_an_events_rep_goes_to_shards_of_its_global_team_and_region_cells() -> None:
    cells = cells_of([call(0, "ana")])
    for key, cell in cells.items():
        _, _, dim, k = split_cell_key(key)
        if rep_sets.is_shard(dim):
            assert cell == {"reps": {"ana": 1}}
            assert rep_sets.parent_of(dim, k)[0] in ("global", "team", "region")
        else:
            assert "reps" not in cell, key  # no parent holds a set that grows with reps
    shard_dims = {split_cell_key(k)[2] for k in cells if rep_sets.is_shard(split_cell_key(k)[2])}
    assert shard_dims == {"global#reps", "team#reps", "region#reps"}


def test_a_shard_travels_with_its_parent_whatever_the_key_holds() -> None:
    dim, key = rep_sets.shard_pair("team", "Nord#1|x", "ana")
    assert rep_sets.parent_of(dim, key) == ("team", "Nord#1|x")
    assert rep_sets.routing_target(dim, key) == rep_sets.routing_target("team", "Nord#1|x")
    assert rep_sets.routing_target("team", "Nord#1|x") == "team|Nord#1|x"
    assert rep_sets.parent_of("team", "Nord#1") == ("team", "Nord#1")


def test_shards_add_up_to_the_exact_distinct_count_and_stay_small() -> None:
    reps = [f"rep-{n:06d}" for n in range(100_000)]
    shards: dict[int, set[str]] = defaultdict(set)
    for rep in reps:
        shards[rep_sets.shard_of(rep)].add(rep)
    assert sum(len(members) for members in shards.values()) == len(set(reps))
    assert len(shards) == rep_sets.SHARDS
    assert max(len(members) for members in shards.values()) < 2_000  # ~1,560 on average


def test_revenue_per_rep_divides_by_the_count_or_by_the_set() -> None:
    ctx = Context(kind="day", dimension="team")
    from_count = value_of("revenue_per_rep", {"orders": 1, "rev_c": 9000, "nrep": 3}, ctx)
    from_set = value_of(
        "revenue_per_rep", {"orders": 1, "rev_c": 9000, "reps": {"a": 1, "b": 2, "c": 1}}, ctx
    )
    assert from_count == from_set
    assert from_count.denominator == 3
    retracted = {"orders": 1, "rev_c": 9000, "reps": {"a": 1, "b": 0}}
    assert rep_sets.distinct_reps(retracted) == 1


def test_no_message_of_forty_thousand_reps_nears_kafkas_limit() -> None:
    # one set in the global cell: ~75 bytes a rep over its 5 windows, 3 MB in one message
    items = [call(n, f"rep-{n:06d}") for n in range(40_000)]
    cells = cells_of(items)
    by_target: dict[str, list[list[object]]] = defaultdict(list)
    for key, cell in cells.items():
        _, _, dim, k = split_cell_key(key)
        by_target[rep_sets.routing_target(dim, k)].append([key, 1, cell])
    sizes = []
    for entries in by_target.values():
        chunks = cell_chunks(entries)
        assert [e for chunk in chunks for e in chunk] == entries  # all, once, in order
        sizes += [len(orjson.dumps({"p": 0, "cells": chunk, "ts": None})) for chunk in chunks]
    assert max(sizes) < 500_000  # Kafka's default message limit is 1 MB
    # every rep counted once per window of the global cell, over its shards
    day_shards = [
        c for k, c in cells.items() if k.startswith("day|") and "|global#reps|" in k
    ]  # fmt: skip
    assert sum(rep_sets.active(c) for c in day_shards) == 40_000


def test_small_cells_stay_in_one_message() -> None:
    entries: list[list[object]] = [[f"day|0|team|t{n}", 1, {"calls": 1}] for n in range(50)]
    assert cell_chunks(entries) == [entries]
    big: list[list[object]] = [
        ["a", 1, {"reps": {str(n): 1 for n in range(15)}}],
        ["b", 1, {"reps": {str(n): 1 for n in range(10)}}],
        ["c", 1, {"calls": 2}],
    ]
    assert cell_chunks(big, limit=20) == [[big[0]], [big[1], big[2]]]
