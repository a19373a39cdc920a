"""What each event adds to the KPI cells: pure functions, no I/O, no Faust.

An event reaches the entity stage once per *role* it plays (``streams.engine.routing``):

- ``event``: every event, keyed by its own id; it adds what the event counts on its own
  (calls, revenue, quotes, complaints...).
- ``lead``: leads and the calls, emails and meetings that name a lead (lead response time,
  leads waiting).
- ``account``: orders, leads and churns of an account (new customers, repeat purchases,
  lead conversion, the customer base behind churn rate).
- ``opportunity``: openings and orders of an opportunity (sales cycle).

The entity roles keep the history of their entity and derive its contribution from the
whole history, in event-time order; a new event replaces the old contribution by the new one
(``change``: ``cells.diff`` of the two), so events arriving out of order give the same cells
as sorted ones. The rules are those of docs/kpi-definitions.md.

An item is the compact, JSON-ready record of one event kept in a history:
``{"o": offset, "t": ms, "id": event_id, "x": type, "late": [kinds], "p": [[dim, key]...],
"pv": {product: cents or 1}, ...}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from streams.contracts.enriched import EnrichedEvent
from streams.contracts.events import (
    CallLogged,
    CallOutcome,
    EmailSent,
    LeadCreated,
    MeetingHeld,
    NpsAnswered,
    OrderCancelled,
    OrderPlaced,
    QuoteSent,
    SpendRecorded,
)
from streams.kpi import rep_sets, sketch
from streams.kpi.cells import Cell, Cells, add_cell, cell_key
from streams.kpi.windows import CELL_KINDS, LIVE, CellWindows

Item = dict[str, Any]
Fact = tuple[int, list[list[str]], Cell]
"""(event time in ms, [[dimension, key]...], components to add to each of those cells)"""

ROLES = ("event", "lead", "account", "opportunity")
TOUCHES = ("call.logged", "email.sent", "meeting.held")
_CENT = Decimal("0.01")


def cents(amount: Decimal) -> int:
    return int((amount / _CENT).to_integral_value(ROUND_HALF_EVEN))


def item_of(enriched: EnrichedEvent, offset: int, late: Iterable[str]) -> Item:
    """The history item of an event (also what the ``event`` role counts from)."""
    event, dims = enriched.event, enriched.dims
    pairs = [["global", "all"]]
    for dim in ("rep", "team", "region", "channel", "sector"):
        value = getattr(dims, dim)
        if value is not None:
            pairs.append([dim, value])
    item: Item = {
        "o": offset,
        "t": round(event.occurred_at.timestamp() * 1000),
        "id": event.event_id,
        "x": event.type,
        "late": sorted(late),
        "p": pairs,
        "pv": {product: 1 for product in dims.products},
    }
    if isinstance(event, OrderPlaced):
        item["a"] = cents(event.amount)
        item["q"] = event.quote_id is not None
        values: dict[str, Decimal] = {}
        costs: dict[str, Decimal] = {}
        known = bool(event.lines) and all(line.unit_cost is not None for line in event.lines)
        for line, product in zip(event.lines, dims.line_products, strict=True):
            values[product] = values.get(product, Decimal(0)) + line.quantity * line.unit_price
            if line.unit_cost is not None:
                costs[product] = costs.get(product, Decimal(0)) + line.quantity * line.unit_cost
        item["pv"] = {product: cents(value) for product, value in values.items()}
        if known:
            item["m"] = item["a"] - cents(sum(costs.values(), Decimal(0)))
            item["pm"] = {p: item["pv"][p] - cents(costs[p]) for p in values}
    elif isinstance(event, QuoteSent | OrderCancelled | SpendRecorded):
        item["a"] = cents(event.amount)
    elif isinstance(event, CallLogged):
        item["ok"] = event.outcome is CallOutcome.CONNECTED
    elif isinstance(event, NpsAnswered):
        item["s"] = event.score
    lead_id = getattr(event, "lead_id", None)
    if isinstance(event, LeadCreated | CallLogged | EmailSent | MeetingHeld) and lead_id:
        item["lead"] = lead_id
    return item


def _rep_pairs(item: Item) -> list[list[str]]:
    return [pair for pair in item["p"] if pair[0] in ("global", "rep", "team", "region")]


def _product_facts(item: Item, cell: Cell, money: str | None = None) -> list[Fact]:
    """The cells of an item under the product dimension; ``money`` takes the line value."""
    facts: list[Fact] = []
    for product, value in item["pv"].items():
        own = dict(cell)
        if money is not None:
            own[money] = value
        facts.append((item["t"], [["product", product]], own))
    return facts


def event_facts(item: Item) -> list[Fact]:
    """What one event counts on its own (the ``event`` role)."""
    kind, t, pairs = item["x"], item["t"], item["p"]
    facts: list[Fact] = []
    rep_pairs = _rep_pairs(item)
    if kind == "call.logged":
        facts.append((t, rep_pairs, {"calls": 1, "calls_ok": int(item["ok"])}))
    elif kind == "email.sent":
        facts.append((t, rep_pairs, {"emails": 1}))
    elif kind == "meeting.held":
        facts.append((t, rep_pairs, {"meetings": 1}))
    elif kind == "lead.created":
        facts.append((t, pairs, {"leads": 1}))
    elif kind == "quote.sent":
        facts.append((t, pairs, {"quotes": 1, "quote_c": item["a"]}))
    elif kind == "opportunity.opened":
        facts.append((t, pairs, {"opps": 1}))
        facts += _product_facts(item, {"opps": 1})
    elif kind == "opportunity.lost":
        facts.append((t, pairs, {"lost": 1}))
        facts += _product_facts(item, {"lost": 1})
    elif kind == "order.placed":
        cell: Cell = {"orders": 1, "rev_c": item["a"], "quoted": int(item["q"])}
        if "m" in item:
            cell |= {"costed_c": item["a"], "margin_c": item["m"]}
        facts.append((t, pairs, cell))
        for product, value in item["pv"].items():
            own: Cell = {"orders": 1, "rev_c": value, "quoted": int(item["q"])}
            if "pm" in item:
                own |= {"costed_c": value, "margin_c": item["pm"][product]}
            facts.append((t, [["product", product]], own))
    elif kind == "order.cancelled":
        facts.append((t, pairs, {"cancels": 1, "cancel_c": item["a"]}))
    elif kind == "contract.churned":
        facts.append((t, pairs, {"churned": 1}))
    elif kind == "complaint.filed":
        facts.append((t, pairs, {"complaints": 1}))
    elif kind == "nps.answered":
        score = item["s"]
        facts.append(
            (t, pairs, {"nps_n": 1, "nps_pro": int(score >= 9), "nps_det": int(score <= 6)})
        )
    elif kind == "spend.recorded":
        facts.append((t, pairs, {"spend_c": item["a"]}))
    rep = next((key for dim, key in pairs if dim == "rep"), None)
    if rep is not None:  # the active reps of its global, team and region cells, as shards
        shards = [
            rep_sets.shard_pair(dim, key, rep) for dim, key in pairs if dim in rep_sets.DIMENSIONS
        ]
        facts.append((t, shards, {rep_sets.MEMBERS: {rep: 1}}))
    return facts


def first_of(items: Iterable[Item]) -> Item | None:
    """The earliest item (by event time, then id: the same answer in any arrival order)."""
    return min(items, key=lambda i: (i["t"], i["id"]), default=None)


def lead_facts(history: list[Item], live: bool) -> list[Fact]:
    """Response time of a lead's first touch, or the lead still waiting (``live``)."""
    lead = first_of(i for i in history if i["x"] == "lead.created")
    if lead is None:
        return []
    t0 = lead["t"]
    touch = first_of(i for i in history if i["x"] in TOUCHES and i["t"] >= t0)
    if live:
        if touch is not None:
            return []
        waiting = [p for p in lead["p"] if p[0] in ("global", "rep", "team", "region", "channel")]
        return [(0, waiting, {"open_leads": {str(t0): 1}})]
    if touch is None:
        return []
    ms = touch["t"] - t0
    cell: Cell = {"resp_ms": ms, "resp_n": 1, "resp_sk": sketch.add({}, ms / 1000)}
    return [(touch["t"], _rep_pairs(touch), cell)]


def account_facts(history: list[Item]) -> list[Fact]:
    """New customer, repeat orders, converted leads and the customer base of an account."""
    orders = sorted(
        (i for i in history if i["x"] == "order.placed"), key=lambda i: (i["t"], i["id"])
    )
    if not orders:
        return []
    first = orders[0]
    facts: list[Fact] = [(first["t"], first["p"], {"new_cust": 1})]
    facts += _product_facts(first, {"new_cust": 1})
    for order in orders[1:]:
        facts.append((order["t"], order["p"], {"repeat": 1}))
        facts += _product_facts(order, {"repeat": 1})
    for lead in history:
        if lead["x"] == "lead.created" and lead["t"] <= first["t"]:
            pairs = [p for p in lead["p"] if p[0] in ("global", "rep", "team", "region", "channel")]
            facts.append((lead["t"], pairs, {"lead_conv": 1}))
    owner = [p for p in first["p"] if p[0] in ("global", "rep", "team", "region", "sector")]
    facts.append((first["t"], owner, {"base": 1}))
    churn = first_of(i for i in history if i["x"] == "contract.churned" and i["t"] >= first["t"])
    if churn is not None:
        facts.append((churn["t"], owner, {"base": -1, "churn_n": 1}))
    return facts


def opportunity_facts(history: list[Item]) -> list[Fact]:
    """Sales cycle of each order of an opportunity whose opening is known."""
    opened = first_of(i for i in history if i["x"] == "opportunity.opened")
    if opened is None:
        return []
    facts: list[Fact] = []
    for order in history:
        if order["x"] == "order.placed" and order["t"] >= opened["t"]:
            ms = order["t"] - opened["t"]
            cell: Cell = {"cyc_ms": ms, "cyc_n": 1, "cyc_sk": sketch.add({}, ms / 86_400_000)}
            facts.append((order["t"], order["p"], cell))
            facts += _product_facts(order, cell)
    return facts


def role_facts(role: str, history: list[Item], kind: str) -> list[Fact]:
    """The facts of one entity (or one event) for the cells of ``kind``."""
    if kind == LIVE:
        return lead_facts(history, live=True) if role == "lead" else []
    kept = [i for i in history if kind not in i["late"]]
    if role == "event":
        return [fact for item in kept for fact in event_facts(item)]
    if role == "lead":
        return lead_facts(kept, live=False)
    if role == "account":
        return account_facts(kept)
    if role == "opportunity":
        return opportunity_facts(kept)
    raise ValueError(f"unknown role {role!r}: expected one of {ROLES}")


def _facts_by_kind(role: str, history: list[Item]) -> list[tuple[str, list[Fact]]]:
    """The facts of ``history`` for the cells of each kind. A kind's facts depend on it only
    through the items it leaves out (late for it), and most often every kind leaves out the
    same (none): computed once per distinct set, the same list for those kinds."""
    kinds = (*CELL_KINDS, LIVE) if role == "lead" else CELL_KINDS
    facts_by_left_out: dict[tuple[int, ...], list[Fact]] = {}
    out: list[tuple[str, list[Fact]]] = []
    for kind in kinds:
        if kind == LIVE:
            out.append((kind, role_facts(role, history, kind)))
            continue
        left_out = tuple(n for n, item in enumerate(history) if kind in item["late"])
        cached = facts_by_left_out.get(left_out)
        if cached is None:
            cached = facts_by_left_out[left_out] = role_facts(role, history, kind)
        out.append((kind, cached))
    return out


def _fan_out(out: Cells, kind: str, facts: list[Fact], windows: CellWindows, sign: int = 1) -> None:
    """Each fact added (``sign`` 1) or taken (-1) to its cells of ``kind``."""
    for at_ms, pairs, components in facts:
        start = windows.span(kind, at_ms)[0]
        for dim, key in pairs:
            add_cell(
                out.setdefault(cell_key(kind, start, dim, key), {}), components, sign, owned=True
            )


def contribution(role: str, history: list[Item], windows: CellWindows) -> Cells:
    """Everything ``history`` adds to the cells of every kind, by cell key."""
    out: Cells = {}
    for kind, facts in _facts_by_kind(role, history):
        _fan_out(out, kind, facts, windows)
    return out


def _unmatched(new: list[Fact], old: list[Fact]) -> tuple[list[Fact], list[Fact]]:
    """The facts of ``new`` not in ``old`` and those of ``old`` not in ``new`` (multisets:
    an entity has a handful of facts)."""
    rest = list(old)
    added: list[Fact] = []
    for fact in new:
        for n, other in enumerate(rest):
            if other == fact:
                del rest[n]
                break
        else:
            added.append(fact)
    return added, rest


def change(role: str, before: list[Item], after: list[Item], windows: CellWindows) -> Cells:
    """``cells.diff(contribution(after), contribution(before))``: what replacing the
    entity's history ``before`` by ``after`` changes in its cells. Cells are sums of facts,
    so a fact both give changes nothing: only the facts that differ are fanned out over
    their windows and dimensions (an account's repeat order: one fact, not all of them
    twice)."""
    out: Cells = {}
    old = dict(_facts_by_kind(role, before))
    matched: dict[tuple[int, int], tuple[list[Fact], list[Fact]]] = {}
    for kind, facts in _facts_by_kind(role, after):
        pair = (id(facts), id(old[kind]))  # kinds leaving out the same items share lists
        if pair not in matched:
            matched[pair] = _unmatched(facts, old[kind])
        added, removed = matched[pair]
        _fan_out(out, kind, added, windows)
        _fan_out(out, kind, removed, windows, -1)
    return {key: cell for key, cell in out.items() if cell}


def dims_of(item: Mapping[str, Any]) -> dict[str, str]:
    return {dim: key for dim, key in item["p"]}
