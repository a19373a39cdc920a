"""The entity stage's delta for an item equals the one its entity's whole history gives.

The stage carries each entity's essential items from one item to the next in memory
(``EntityStage.essentials``) and extends its summary without judging it again while the
committed offset stays. Checked here on random entities applied one message at a time, with
the committed offset moving, messages redelivered, messages whose writes are rolled back
(dead-lettered), the cache dropped (a rebalance) and flushes, on a plain dict table.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.entity_stage import EntityStage
from streams.engine.outbox import position
from streams.engine.writeback import WriteBack
from streams.kpi.cells import Cells, diff
from streams.kpi.facts import Item, contribution
from streams.kpi.summaries import summarize
from tests.unit.kpi.test_summaries import TYPES, WINDOWS, entity

P = 0
KEY = "k1"

# What happens around each message: applied, applied and flushed, applied and rolled back,
# applied then the cache dropped, or applied and then delivered again.
EVENTS = st.sampled_from(["apply", "flush", "rollback", "rebalance", "redeliver"])


def whole(role: str, history: list[Item], o: int) -> Cells:
    upto = [i for i in history if i["o"] <= o]
    before = [i for i in history if i["o"] < o]
    return diff(contribution(role, upto, WINDOWS), contribution(role, before, WINDOWS))


def bare_stage(committed: list[int | None]) -> EntityStage:
    stage = EntityStage.__new__(EntityStage)  # only what the delta uses: no faust, no broker
    stage.entities = WriteBack({})
    stage.windows = WINDOWS
    stage.essentials = {}
    stage.committed = lambda p: committed[0]
    return stage


def flush(stage: EntityStage) -> None:
    for name, value in stage.entities.dirty.pop(P, {}).items():
        stage.entities.table[name] = value


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(TYPES)).flatmap(lambda r: st.tuples(st.just(r), entity(r))),
    st.lists(EVENTS, min_size=1, max_size=6),
    st.lists(st.integers(0, 16), min_size=1, max_size=5),
)
def test_every_delta_is_the_whole_historys(
    case: tuple[str, list[Item]], events: list[str], commits: list[int]
) -> None:
    role, arrivals = case
    committed: list[int | None] = [None]
    stage = bare_stage(committed)
    name = f"{role}:{KEY}"
    applied: list[Item] = []  # what the table holds, by offset
    for offset, base in enumerate(arrivals):
        o = position(offset, 0)
        item = {**base, "o": o}
        event = events[offset % len(events)]
        stage.entities.journal = [] if event == "rollback" else None
        got = stage._entity_delta(P, role, KEY, item, o)
        assert got == whole(role, [*applied, item], o), f"offset {offset}"
        if event == "rollback":  # the message is dead-lettered: its writes are undone
            stage.entities.rollback()
            continue
        stage.entities.journal = None
        applied.append(item)
        if event == "redeliver":  # read again before its offset was committed
            again = stage._entity_delta(P, role, KEY, item, o)
            assert again == whole(role, applied, o), f"offset {offset} again"
        if event == "rebalance":
            stage.essentials.clear()
        if event in ("flush", "rebalance"):
            flush(stage)
            committed[0] = max(committed[0] or 0, min(offset + 1, commits[offset % len(commits)]))
    stored = stage.entities.get(P, name)
    if stored is not None:  # the summary of everything applied, as judged at its last write
        assert stored["h"] == summarize(role, applied, stored["k"])


def test_a_new_item_does_not_judge_the_items_kept_again() -> None:
    """While the committed offset stays, the summary grows by the item and nothing is read
    but the essential items carried from the last one."""
    orders: list[Item] = [
        {"t": 1_774_000_000_000 + n, "id": f"o{n}", "x": "order.placed", "late": [],
         "p": [["global", "all"]], "pv": {}, "a": 100, "q": False}
        for n in range(50)
    ]  # fmt: skip
    stage = bare_stage([0])
    for n, order in enumerate(orders):
        stage._entity_delta(P, "account", KEY, {**order, "o": position(n, 0)}, position(n, 0))
    stored = stage.entities.get(P, f"account:{KEY}")
    assert len(stored["h"]) == 50  # none committed: every order may come again
    mark, carried = stage.essentials[f"account:{KEY}"]
    assert mark == position(49, 0)
    assert [i["id"] for i in carried] == ["o0"]  # the first order: the rest are repeats
