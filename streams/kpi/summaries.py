"""An entity's compact summary: the items of its history that can still change its numbers.

``streams.kpi.facts`` derives an entity's contribution from its history of items. Most items
of a long-lived entity stop mattering: an account's tenth order is a repeat purchase and
stays one whatever arrives later (the first order can only move earlier), a lead's second
touch never becomes its first response, a lead created after an account's first order never
converts. Such an item adds a fixed amount to the cells, or nothing, whatever arrives next,
so dropping it from the history changes no delta to come: ``contribution(kept + future) -
contribution(kept + future - new)`` is the same with or without it.

``summarize`` keeps, per cell kind (each kind leaves out the items late for it):

- ``account``: the first order, the leads up to it (they convert), the churns before it and
  the first churn after it; everything while there is no order;
- ``lead``: the first ``lead.created``, the touches before it and its first touch after it;
  every touch while there is no lead (also for ``live``, which sees every item);
- ``opportunity``: the first opening and every order (each order's cycle is measured from the
  opening, which may still move earlier; an opportunity has a handful of orders).

It also keeps every item at or past ``keep_from``, the first offset that may be delivered
again (the partition's committed offset), and judges what is needed among the items before
it only: a redelivered message recomputes its delta from the items before it by offset
(``streams.engine.entity_stage``), which must be those it had the first time. So an
entity's summary holds a few items whatever its age.

What is needed is closed under appending: the items ``essential`` keeps of a list, followed
by later items, keep what the whole list followed by them keeps (a first order, the leads
up to it, the churns around it: whatever these were, the kept ones still hold them). So the
stage's work per new event does not grow with the items kept since the last commit either:
``extend`` adds an item to a summary without judging it again while ``keep_from`` has not
moved, and ``step`` gives an item's delta from the essential items before it, which the
previous ``step`` returned.
"""

from __future__ import annotations

from collections.abc import Callable

from streams.kpi.cells import Cells
from streams.kpi.facts import TOUCHES, Item, change, first_of
from streams.kpi.windows import CELL_KINDS, LIVE, CellWindows


def _of(items: list[Item], kind: str) -> Callable[[str], list[Item]]:
    kept = [i for i in items if kind not in i["late"]]
    return lambda event_type: [i for i in kept if i["x"] == event_type]


def _account_needs(items: list[Item], kind: str) -> list[Item]:
    of = _of(items, kind)
    first = first_of(of("order.placed"))
    if first is None:
        return of("lead.created") + of("contract.churned")
    at = first["t"]
    churns = of("contract.churned")
    after = first_of(c for c in churns if c["t"] >= at)
    return [
        first,
        *(lead for lead in of("lead.created") if lead["t"] <= at),
        *(c for c in churns if c["t"] < at),
        *([after] if after is not None else []),
    ]


def _lead_needs(items: list[Item], kind: str) -> list[Item]:
    of = _of(items, kind)
    touches = [t for x in TOUCHES for t in of(x)]
    lead = first_of(of("lead.created"))
    if lead is None:
        return touches
    at = lead["t"]
    touch = first_of(t for t in touches if t["t"] >= at)
    return [lead, *(t for t in touches if t["t"] < at), *([touch] if touch is not None else [])]


def _opportunity_needs(items: list[Item], kind: str) -> list[Item]:
    of = _of(items, kind)
    opened = first_of(of("opportunity.opened"))
    return [*([opened] if opened is not None else []), *of("order.placed")]


_NEEDS = {"account": _account_needs, "lead": _lead_needs, "opportunity": _opportunity_needs}
_KNOWN = {
    "account": {"order.placed", "lead.created", "contract.churned"},
    "lead": {"lead.created", *TOUCHES},
    "opportunity": {"opportunity.opened", "order.placed"},
}


def _needed(role: str, items: list[Item]) -> set[int]:
    """The ids of the items of ``items`` some cell kind needs (``_NEEDS``)."""
    needs = _NEEDS[role]
    kinds: tuple[str, ...] = (*CELL_KINDS, LIVE) if role == "lead" else CELL_KINDS
    if not any(item["late"] for item in items):
        kinds = kinds[:1]  # nothing late for any kind: every kind keeps the same items
    return {id(item) for kind in kinds for item in needs(items, kind)}


def summarize(role: str, history: list[Item], keep_from: int | None) -> list[Item]:
    """The items of ``history`` that can still change the entity's contribution, and those
    at or past offset ``keep_from`` (None: keep everything), in their order."""
    if role not in _NEEDS or keep_from is None:
        return history
    # Judged among the items that cannot come again only: a message redelivered recomputes
    # its delta from the items before it, which must be the ones it had the first time.
    needed = _needed(role, [item for item in history if item["o"] < keep_from])
    return [
        item
        for item in history
        if id(item) in needed or item["o"] >= keep_from or item["x"] not in _KNOWN[role]
    ]


def extend(
    role: str, summary: list[Item], item: Item, keep_from: int | None, judged_at: int | None
) -> list[Item]:
    """``summarize(role, summary + [item], keep_from)`` for a ``summary`` made with
    ``keep_from=judged_at`` and an ``item`` at or past ``keep_from``: when ``keep_from`` has
    not moved, the items before it are those already judged, and the item is kept as it is."""
    if judged_at == keep_from and (keep_from is None or item["o"] >= keep_from):
        return [*summary, item]
    return summarize(role, [*summary, item], keep_from)


def essential(role: str, items: list[Item]) -> list[Item]:
    """The items of ``items`` that can still change the entity's contribution, judged among
    all of them: a delta over these is the delta over all of ``items``."""
    if role not in _NEEDS:
        return items
    needed = _needed(role, items)
    return [item for item in items if id(item) in needed or item["x"] not in _KNOWN[role]]


def delta_of(role: str, history: list[Item], o: int, windows: CellWindows) -> Cells:
    """What the items at position ``o`` of an entity's ``history`` add to its cells, given
    the items before it by position (out of order in event time or not)."""
    before = essential(role, [item for item in history if item["o"] < o])
    new = [item for item in history if item["o"] == o]
    return change(role, before, before + new, windows)


def step(
    role: str, before: list[Item], item: Item, windows: CellWindows
) -> tuple[Cells, list[Item]]:
    """What ``item``, after every item of the entity by position, adds to its cells, given
    ``before``, the essential items before it (``essential`` of them, or what the previous
    ``step`` returned); and the essential items with it, for the next one."""
    with_it = [*before, item]
    return change(role, before, with_it, windows), essential(role, with_it)
