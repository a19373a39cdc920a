"""The entity stage writes a partial cell once per flush, with the same values and marks
as writing it once per item.

An item adds its delta to a cell only past the cell's mark (the position of the last item
applied to it), so a message applied again after a crash changes nothing it changed. The
stage sums the deltas of a partition's messages per cell until the flush and writes each
cell once: checked here against the per-item rule on random messages, some applied twice
(before or after the flush that wrote them), on a plain dict table.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.entity_stage import EntityStage, StagedCells
from streams.engine.outbox import position
from streams.engine.writeback import WriteBack
from streams.kpi.cells import Cells, add_cell
from streams.kpi.rep_sets import presence

P = 2
CELLS = ["day|0|global|all", "day|0|rep|ana", "week|0|rep|bo"]

deltas = st.dictionaries(
    st.sampled_from(CELLS),
    st.fixed_dictionaries({"calls": st.integers(-2, 3)}, optional={"reps": st.just({"ana": 1})}),
    max_size=3,
)
messages = st.lists(st.lists(deltas, min_size=1, max_size=5), min_size=1, max_size=6)


def per_item(table: dict[str, Any], p: int, o: int, delta: Cells) -> None:
    """The rule, one item at a time (the stage's code before it staged per message)."""
    for cell, components in delta.items():
        name = f"{p}|{cell}"
        current = table.get(name)
        if current is None or current["m"] < o:
            merged = dict(current["c"]) if current is not None else {}
            add_cell(merged, components)
            table[name] = {"c": merged, "m": o}


def staged_stage() -> tuple[EntityStage, dict[str, Any]]:
    stage = EntityStage.__new__(EntityStage)  # only what staging uses: no faust, no broker
    table: dict[str, Any] = {}
    stage.cells = WriteBack(table)
    stage.dirty, stage.staging = {}, {}
    return stage, table


def apply_staged(stage: EntityStage, p: int, offset: int, items: list[Cells]) -> None:
    stage_message(stage.staging.setdefault(p, {}), stage, p, offset, items)
    flush(stage, p)


def stage_message(
    staged: StagedCells, stage: EntityStage, p: int, offset: int, items: list[Cells]
) -> None:
    for index, delta in enumerate(items):
        stage._stage_cells(p, position(offset, index), delta, staged)


def flush(stage: EntityStage, p: int) -> None:
    stage._write_cells(p, stage.staging.pop(p, {}))
    for name, value in stage.cells.dirty.pop(p, {}).items():  # the flush's write_all
        stage.cells.table[name] = value


@settings(max_examples=300, deadline=None)
@given(messages, st.lists(st.integers(0, 5), max_size=4))
def test_one_write_per_cell_per_message_equals_one_per_item(
    sent: list[list[Cells]], again: list[int]
) -> None:
    expected: dict[str, Any] = {}
    stage, got = staged_stage()
    # Messages at offsets 0..n-1, then some applied again (redelivered after a crash).
    order = list(range(len(sent))) + [o for o in again if o < len(sent)]
    for offset in order:
        for index, delta in enumerate(sent[offset]):
            per_item(expected, P, position(offset, index), delta)
        apply_staged(stage, P, offset, sent[offset])
        assert got == expected, f"after the message at offset {offset}"
    touched = {cell for items in sent for delta in items for cell in delta}
    assert stage.dirty.get(P, set()) == touched


@settings(max_examples=300, deadline=None)
@given(messages, st.lists(st.integers(0, 5), max_size=6), st.lists(st.booleans(), max_size=12))
def test_one_write_per_cell_per_flush_equals_one_per_item(
    sent: list[list[Cells]], again: list[int], flushes: list[bool]
) -> None:
    """Several messages staged before a flush writes them, some read again before it (a
    seek back) or after it (a crash): the values and marks of writing once per item."""
    expected: dict[str, Any] = {}
    stage, got = staged_stage()
    order = list(range(len(sent))) + [o for o in again if o < len(sent)]
    for step, offset in enumerate(order):
        for index, delta in enumerate(sent[offset]):
            per_item(expected, P, position(offset, index), delta)
        stage_message(stage.staging.setdefault(P, {}), stage, P, offset, sent[offset])
        if step < len(flushes) and flushes[step]:
            flush(stage, P)
            assert got == expected, f"after the flush at step {step}"
    flush(stage, P)
    assert got == expected


def test_a_redelivered_message_changes_nothing() -> None:
    stage, got = staged_stage()
    items: list[Cells] = [{CELLS[0]: {"calls": 1}}, {CELLS[0]: {"calls": 2}}]
    apply_staged(stage, P, 7, items)
    assert got == {f"{P}|{CELLS[0]}": {"c": {"calls": 3}, "m": position(7, 1)}}
    apply_staged(stage, P, 7, items)
    assert got == {f"{P}|{CELLS[0]}": {"c": {"calls": 3}, "m": position(7, 1)}}


def test_a_shard_redelivered_is_sent_again_with_new_items_in_the_same_flush() -> None:
    """A kill -9 can leave a flush's table writes in their changelogs and its partials
    unsent: the message read again must send its cells again, a rep shard too, even when a
    new message staged in the same flush leaves the shard's reps as they were (a kill -9
    test run lost a rep from a global minute shard so: active reps 2, not 3)."""
    stage, table = staged_stage()
    shard = "minute|0|global#reps|all#3"
    apply_staged(stage, P, 7, [{shard: {"reps": {"ana": 1}}}])
    stage.dirty.clear()  # the flush wrote the table, then died before sending: not sent
    staged = stage.staging.setdefault(P, {})
    stage_message(staged, stage, P, 7, [{shard: {"reps": {"ana": 1}}}])  # read again
    stage_message(staged, stage, P, 8, [{shard: {"reps": {"ana": 1}}}])  # ana again: no move
    flush(stage, P)
    assert stage.dirty.get(P) == {shard}
    assert table[f"{P}|{shard}"] == {"c": {"reps": {"ana": 2}}, "m": position(8, 0)}


SHARDS = ["day|0|team#reps|Nord#3", "minute|0|global#reps|all#3"]
shard_deltas = st.dictionaries(
    st.sampled_from(SHARDS),
    st.fixed_dictionaries(
        {"reps": st.dictionaries(st.sampled_from(["ana", "bo"]), st.integers(-2, 2), min_size=1)}
    ),
    max_size=2,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(shard_deltas, min_size=1, max_size=4), min_size=1, max_size=8))
def test_a_shard_is_sent_when_a_rep_comes_or_goes_and_the_publisher_sees_its_reps(
    sent: list[list[Cells]],
) -> None:
    """A rep shard is dirty (sent at the flush) only when its reps with an event changed,
    and what the flushes sent (``presence``) is always the table's reps with an event: a
    rep's every event no longer sends its shards, and the publisher misses no rep."""
    stage, table = staged_stage()
    seen_by_publisher: dict[str, Any] = {}
    for offset, items in enumerate(sent):
        before = {name: presence(value["c"]) for name, value in table.items()}
        apply_staged(stage, P, offset, items)
        dirty = stage.dirty.pop(P, set())
        for cell in dirty:  # the flush sends these
            seen_by_publisher[cell] = presence(table[f"{P}|{cell}"]["c"])
        after = {name: presence(value["c"]) for name, value in table.items()}
        moved = {name.split("|", 1)[1] for name in after if before.get(name, {}) != after[name]}
        assert dirty == moved, f"offset {offset}"
        for name, reps in after.items():
            cell = name.split("|", 1)[1]
            assert seen_by_publisher.get(cell, {}) == reps, f"offset {offset}: {cell}"
