"""The shortcuts of the hot path give what the plain definitions give.

``contribution`` computes an entity's facts once per distinct set of items its kinds leave
out, ``change`` fans out only the facts two histories do not share, and ``add_cell`` adds
counts inline: all checked here against the plain versions (facts per kind, the difference
of two contributions, ``add_component`` per component) on random entities and cells.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.kpi.cells import Cell, Cells, add_component, cell_key, diff
from streams.kpi.facts import Item, change, contribution, role_facts
from streams.kpi.windows import CELL_KINDS, LIVE, CellWindows
from tests.unit.kpi.test_summaries import WINDOWS, entity


def plain_contribution(role: str, history: list[Item], windows: CellWindows) -> Cells:
    """The definition: every kind's facts computed for that kind."""
    out: Cells = {}
    kinds = (*CELL_KINDS, LIVE) if role == "lead" else CELL_KINDS
    for kind in kinds:
        for at_ms, pairs, components in role_facts(role, history, kind):
            start = windows.span(kind, at_ms)[0]
            for dim, key in pairs:
                target = out.setdefault(cell_key(kind, start, dim, key), {})
                for name, value in components.items():
                    add_component(target, name, value)
    return out


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["account", "lead", "opportunity"]).flatmap(
    lambda role: st.tuples(st.just(role), entity(role))
))  # fmt: skip
def test_contribution_equals_the_per_kind_definition(drawn: tuple[str, list[Item]]) -> None:
    role, items = drawn
    history = [{**item, "o": o} for o, item in enumerate(items)]
    assert contribution(role, history, WINDOWS) == plain_contribution(role, history, WINDOWS)
    for item in history:  # the event role: one item at a time
        event = [item]
        assert contribution("event", event, WINDOWS) == plain_contribution("event", event, WINDOWS)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["account", "lead", "opportunity", "event"]).flatmap(
        lambda role: st.tuples(
            st.just(role), entity(role if role != "event" else "account"), st.randoms()
        )
    )
)
def test_change_equals_the_difference_of_the_contributions(
    drawn: tuple[str, list[Item], Any],
) -> None:
    """Any two histories of an entity: a prefix and the whole (an item added), or two
    random selections (items dropped, added, in another order)."""
    role, items, rand = drawn
    history = [{**item, "o": o} for o, item in enumerate(items)]
    pairs = [(history[:-1], history), (history, history[:-1])]
    for _ in range(3):
        pairs.append((rand.sample(history, rand.randint(0, len(history))),
                      rand.sample(history, rand.randint(0, len(history)))))  # fmt: skip
    for before, after in pairs:
        expected = diff(contribution(role, after, WINDOWS), contribution(role, before, WINDOWS))
        assert change(role, before, after, WINDOWS) == expected


def test_a_repeat_order_changes_one_fact() -> None:
    """An account's first order and a repeat: only the repeat is fanned out."""
    first: Item = {
        "t": 1_774_000_000_000,
        "id": "o1",
        "x": "order.placed",
        "late": [],
        "o": 0,
        "p": [["global", "all"], ["rep", "ana"]],
        "pv": {},
        "a": 100,
        "q": False,
    }
    repeat: Item = {**first, "t": first["t"] + 60_000, "id": "o2", "o": 1}  # fmt: skip
    got = change("account", [first], [first, repeat], WINDOWS)
    assert {tuple(cell) for cell in got.values()} == {("repeat",)}
    assert len(got) == 2 * 5  # global and rep, in each of the five kinds


def test_some_entities_leave_out_items_for_some_kinds_only() -> None:
    """The case the shortcut must not merge: kinds leaving out different items."""
    history: list[Item] = [
        {"t": 1_774_000_000_000, "id": "a", "x": "lead.created", "late": ["minute"],
         "p": [["global", "all"]], "pv": {}, "o": 0},
        {"t": 1_774_000_060_000, "id": "b", "x": "call.logged", "late": [], "ok": True,
         "p": [["global", "all"], ["rep", "ana"]], "pv": {}, "o": 1},
    ]  # fmt: skip
    got = contribution("lead", history, WINDOWS)
    assert got == plain_contribution("lead", history, WINDOWS)
    # The minute kind leaves the lead out, so it has no response time; the day kind has one.
    assert not any(key.startswith("minute|") and "resp_n" in cell for key, cell in got.items())
    assert any(key.startswith("day|") and "resp_n" in cell for key, cell in got.items())


components = st.dictionaries(
    st.sampled_from(["calls", "rev_c", "reps", "sk"]),
    st.one_of(
        st.integers(-3, 3),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(-2, 2), max_size=3),
    ),
    max_size=4,
)


def consistent(cell: dict[str, Any]) -> Cell:
    """Counts stay counts and maps stay maps per name (as in the engine's cells)."""
    return {k: v for k, v in cell.items() if isinstance(v, dict) == (k in ("reps", "sk"))}


@settings(max_examples=300, deadline=None)
@given(components, components, st.sampled_from([1, -1]))
def test_add_cell_equals_add_component_for_each(
    target: dict[str, Any], other: dict[str, Any], sign: int
) -> None:
    from streams.kpi.cells import add_cell

    target, other = consistent(target), consistent(other)
    expected = dict(target)
    for name, value in other.items():
        add_component(expected, name, value, sign)
    got = dict(target)
    add_cell(got, other, sign)
    assert got == expected
