"""An entity's summary gives every delta its whole history gives, and stays small.

Random entities (events of every type the role sees, out of order, with ties, late for
random window kinds) are applied one message at a time twice: once keeping the whole
history, once keeping only the summary. Every delta must be the same, and so must a
redelivered message's; and so must the stage's ``delta_of``, which computes it over the
essential items before the message only, and its ``step``, which carries those essential
items from one message to the next. A summary ``extend``ed while the committed offset stays
is the summary made again.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.kpi.cells import Cells, add_cell, diff
from streams.kpi.facts import Item, contribution
from streams.kpi.summaries import delta_of, essential, extend, step, summarize
from streams.kpi.windows import CELL_KINDS, CellWindows

WINDOWS = CellWindows(ZoneInfo("Europe/Paris"))
DAY_MS = 86_400_000
T0 = 1_774_000_000_000

TYPES = {
    "account": ["order.placed", "order.placed", "lead.created", "contract.churned"],
    "lead": ["lead.created", "call.logged", "email.sent", "meeting.held"],
    "opportunity": ["opportunity.opened", "order.placed", "order.placed"],
}


@st.composite
def entity(draw: Any, role: str) -> list[Item]:
    """The items of one entity in arrival order (offsets are set when they are applied)."""
    n = draw(st.integers(1, 14))
    items = []
    for i in range(n):
        kind = draw(st.sampled_from(TYPES[role]))
        item: Item = {
            "t": T0 + draw(st.integers(0, 40)) * DAY_MS // 4,  # ties, and several months
            "id": f"e{i}",
            "x": kind,
            "late": sorted(draw(st.sets(st.sampled_from(CELL_KINDS), max_size=2))),
            "p": [["global", "all"], ["rep", draw(st.sampled_from(["ana", "bo"]))]],
            "pv": {"p1": 100 * (i + 1)} if kind == "order.placed" else {},
        }
        if kind == "order.placed":
            item |= {"a": 100 * (i + 1), "q": i % 2 == 0}
        if kind == "call.logged":
            item["ok"] = True
        items.append(item)
    return items


def delta(role: str, history: list[Item], o: int) -> Cells:
    """What the message at offset ``o`` changes, from a history by offset (the stage's way)."""
    upto = [i for i in history if i["o"] <= o]
    before = [i for i in history if i["o"] < o]
    return diff(contribution(role, upto, WINDOWS), contribution(role, before, WINDOWS))


def check(role: str, arrivals: list[Item], commits: list[int]) -> list[Item]:
    full: list[Item] = []
    summary: list[Item] = []
    keep_from = 0
    judged_at: int | None = -1
    carried: list[Item] = []  # the stage's essential items, from one message to the next
    total: Cells = {}
    for o, item in enumerate(arrivals):
        item = {**item, "o": o}
        full.append(item)
        before = summary
        summary = [*summary, item]
        assert delta(role, summary, o) == delta(role, full, o), f"offset {o}"
        # The stage's way: over the essential items before it, however many are kept.
        assert delta_of(role, full, o, WINDOWS) == delta(role, full, o), f"offset {o}"
        assert delta_of(role, summary, o, WINDOWS) == delta(role, full, o), f"offset {o}"
        stepped, carried = step(role, carried, item, WINDOWS)
        assert stepped == delta(role, full, o), f"offset {o}"
        assert carried == essential(role, full), f"offset {o}"
        for key, cell in delta(role, summary, o).items():
            add_cell(total.setdefault(key, {}), cell)
        # The stage's summary: extended, judged again only when the committed offset moves.
        committed = max(keep_from, min(o, commits[o % len(commits)]))  # never goes back
        extended = extend(role, before, item, committed, judged_at)
        assert extended == summarize(role, summary, committed), f"offset {o}"
        keep_from = max(committed, min(o + 1, commits[o % len(commits)]))
        summary = summarize(role, summary, keep_from)
        judged_at = keep_from
        for redelivered in (i for i in summary if i["o"] >= keep_from):  # may come again
            assert delta(role, summary, redelivered["o"]) == delta(role, full, redelivered["o"])
            got = delta_of(role, summary, redelivered["o"], WINDOWS)
            assert got == delta(role, full, redelivered["o"])
    expected = contribution(role, full, WINDOWS)
    assert {k: v for k, v in total.items() if v} == expected
    return summarize(role, summary, len(arrivals))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(TYPES)).flatmap(lambda r: st.tuples(st.just(r), entity(r))),
       st.lists(st.integers(0, 16), min_size=1, max_size=5))  # fmt: skip
def test_the_summary_gives_the_deltas_of_the_whole_history(
    case: tuple[str, list[Item]], commits: list[int]
) -> None:
    role, arrivals = case
    check(role, arrivals, commits)


def test_an_account_keeps_its_first_orders_not_its_repeats() -> None:
    orders: list[Item] = [
        {"t": T0 + n * DAY_MS, "id": f"o{n}", "x": "order.placed", "late": [],
         "p": [["global", "all"]], "pv": {}, "a": 100, "q": False}
        for n in range(200)
    ]  # fmt: skip
    kept = check("account", orders[::-1][:50] + orders[:150], [10**9])
    assert [i["id"] for i in kept] == ["o0"]


def test_a_lead_keeps_its_creation_and_first_touch() -> None:
    lead: Item = {"t": T0, "id": "l", "x": "lead.created", "late": [], "p": [["global", "all"]],
                  "pv": {}}  # fmt: skip
    calls: list[Item] = [
        {"t": T0 + n * 60_000, "id": f"c{n}", "x": "call.logged", "late": [], "ok": True,
         "p": [["global", "all"]], "pv": {}}
        for n in range(1, 100)
    ]  # fmt: skip
    kept = check("lead", [calls[5], lead, *calls], [10**9])
    assert sorted(i["id"] for i in kept) == ["c1", "l"]


def test_nothing_is_dropped_before_the_committed_offset_is_known() -> None:
    items: list[Item] = [
        {"t": T0 + n, "id": f"o{n}", "x": "order.placed", "late": [], "p": [], "pv": {},
         "a": 1, "q": False, "o": n}
        for n in range(5)
    ]  # fmt: skip
    assert summarize("account", items, None) == items
    assert summarize("account", items, 3) == [items[0], items[3], items[4]]
