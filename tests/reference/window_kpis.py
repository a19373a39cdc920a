"""Every windowed KPI of one window kind, from the events that are not late for that kind.

``events`` are sorted by ``(occurred_at, event_id)``; entity rules (first order, first touch,
earliest opening, first churn) read that order, so an event late for the kind is no context.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from streams.contracts.events import (
    CallLogged,
    CallOutcome,
    ComplaintFiled,
    ContractChurned,
    EmailSent,
    Envelope,
    LeadCreated,
    MeetingHeld,
    NpsAnswered,
    OpportunityLost,
    OpportunityOpened,
    OrderCancelled,
    OrderPlaced,
    QuoteSent,
    SpendRecorded,
)
from tests.reference.catalog import DIMENSIONS
from tests.reference.dims import Dims, Pair, RefData, cents, dims_of
from tests.reference.results import Accumulator, Number, Result, Results, divide
from tests.reference.windows import (
    CALENDAR_KINDS,
    target_period,
    window_end,
    window_start,
    windows_between,
)

ZERO = Decimal("0.00")
TOUCHES = (CallLogged, EmailSent, MeetingHeld)


class WindowKpis:
    def __init__(
        self,
        kind: str,
        events: Sequence[Envelope],
        ref: RefData,
        tz: ZoneInfo,
        now: datetime | None,
    ) -> None:
        self.kind, self.events, self.ref, self.tz, self.now = kind, events, ref, tz, now
        self.acc = Accumulator(kind)
        self.dims: dict[str, Dims] = {e.event_id: dims_of(e, ref) for e in events}
        self.first_order: dict[str, OrderPlaced] = {}
        self.opened: dict[str, datetime] = {}
        self.touches: dict[str, list[Envelope]] = {}
        self.churns: dict[str, list[ContractChurned]] = {}
        for e in events:
            if isinstance(e, OrderPlaced):
                self.first_order.setdefault(e.account_id, e)
            elif isinstance(e, OpportunityOpened):
                self.opened.setdefault(e.opportunity_id, e.occurred_at)
            elif isinstance(e, TOUCHES) and e.lead_id is not None:
                self.touches.setdefault(e.lead_id, []).append(e)
            elif isinstance(e, ContractChurned):
                self.churns.setdefault(e.account_id, []).append(e)

    def start(self, at: datetime) -> int:
        return window_start(self.kind, at, self.tz)

    def run(self, out: Results) -> None:
        for event in self.events:
            self._event(event)
        self.acc.finish(out)
        if self.kind in ("month", "quarter"):
            self._targets(out)
        if self.kind in CALENDAR_KINDS and self.events:
            self._retention(out)

    def _event(self, e: Envelope) -> None:
        acc, w, d = self.acc, self.start(e.occurred_at), self.dims[e.event_id]
        pairs = d.pairs()
        if d.rep is not None:
            acc.rep_seen(w, pairs, d.rep)
        if isinstance(e, CallLogged):
            acc.add("calls", w, pairs, 1)
            acc.add("call_connect_rate", w, pairs, int(e.outcome == CallOutcome.CONNECTED), 1)
        elif isinstance(e, EmailSent):
            acc.add("emails", w, pairs, 1)
        elif isinstance(e, MeetingHeld):
            acc.add("meetings", w, pairs, 1)
        elif isinstance(e, LeadCreated):
            self._lead(e, w, pairs)
        elif isinstance(e, QuoteSent):
            acc.add("quotes_sent", w, pairs, 1)
            acc.add("quote_value", w, pairs, e.amount)
            acc.add("quote_conversion_rate", w, pairs, 0, 1)
        elif isinstance(e, OpportunityOpened):
            acc.add("opportunities_opened", w, pairs, 1)
        elif isinstance(e, OpportunityLost):
            acc.add("win_rate", w, pairs, 0, 1)
        elif isinstance(e, OrderPlaced):
            self._order(e, w, d)
        elif isinstance(e, OrderCancelled):
            acc.add("cancellations", w, pairs, 1)
            acc.add("cancelled_revenue", w, pairs, e.amount)
            acc.add("net_revenue", w, pairs, -e.amount)
        elif isinstance(e, ContractChurned):
            acc.add("churned_customers", w, pairs, 1)
        elif isinstance(e, ComplaintFiled):
            acc.add("complaints", w, pairs, 1)
            acc.add("complaint_ratio", w, pairs, 1, 0)
        elif isinstance(e, NpsAnswered):
            acc.add("nps", w, pairs, 100 * (e.score >= 9) - 100 * (e.score <= 6), 1)
        elif isinstance(e, SpendRecorded):
            acc.add("cac", w, pairs, e.amount, 0)

    def _lead(self, e: LeadCreated, w: int, pairs: list[Pair]) -> None:
        self.acc.add("leads_created", w, pairs, 1)
        first = self.first_order.get(e.account_id) if e.account_id is not None else None
        converted = first is not None and first.occurred_at >= e.occurred_at
        self.acc.add("lead_conversion_rate", w, pairs, int(converted), 1)
        touch = next(
            (t for t in self.touches.get(e.lead_id, []) if t.occurred_at >= e.occurred_at), None
        )
        if touch is not None:
            seconds = (touch.occurred_at - e.occurred_at).total_seconds()
            w1, touch_pairs = self.start(touch.occurred_at), self.dims[touch.event_id].pairs()
            self.acc.add("lead_response_seconds", w1, touch_pairs, seconds, 1)
            self.acc.sample("lead_response_seconds_p90", w1, touch_pairs, seconds)

    def _order(self, e: OrderPlaced, w: int, d: Dims) -> None:
        is_first = self.first_order[e.account_id] is e
        cost_known = bool(e.lines) and all(line.unit_cost is not None for line in e.lines)
        cycle = None
        t_open = self.opened.get(e.opportunity_id) if e.opportunity_id is not None else None
        if t_open is not None and t_open <= e.occurred_at:
            cycle = (e.occurred_at - t_open).total_seconds() / 86400
        order_margin = None
        if cost_known:
            cost = sum((line.quantity * (line.unit_cost or 0) for line in e.lines), Decimal(0))
            order_margin = cents(e.amount - cost)
        # (pairs, money, margin): the order as a whole, then one slice per product
        slices: list[tuple[list[Pair], Decimal, Decimal | None]] = [
            (d.pairs(products=False), e.amount, order_margin)
        ]
        for product in d.products:
            lines = [ln for ln in e.lines if self.ref.product_id(ln.product_id) == product]
            value = sum((ln.quantity * ln.unit_price for ln in lines), Decimal(0))
            cost = sum((ln.quantity * (ln.unit_cost or 0) for ln in lines), Decimal(0))
            margin = cents(value - cost) if cost_known else None
            slices.append(([("product", product)], cents(value), margin))
        acc = self.acc
        for pairs, money, margin in slices:
            acc.add("orders", w, pairs, 1)
            acc.add("revenue", w, pairs, money)
            acc.add("net_revenue", w, pairs, money)
            acc.add("average_deal_size", w, pairs, money, 1)
            acc.add("revenue_per_rep", w, pairs, money, 0)
            if margin is not None:
                acc.add("margin", w, pairs, margin)
                acc.add("margin_ratio", w, pairs, margin, money)
            acc.add("win_rate", w, pairs, 1, 1)
            if e.quote_id is not None:
                acc.add("quote_conversion_rate", w, pairs, 1, 0)
            acc.add("repeat_purchase_rate", w, pairs, int(not is_first), 1)
            if is_first:
                acc.add("new_customers", w, pairs, 1)
                acc.add("cac", w, pairs, ZERO, 1)
            acc.add("complaint_ratio", w, pairs, 0, 1)
            if cycle is not None:
                acc.add("sales_cycle_days", w, pairs, cycle, 1)
                acc.sample("sales_cycle_days_p90", w, pairs, cycle)
            if self.kind in ("month", "quarter"):
                acc.add("target_attainment", w, pairs, money, 0)
                acc.add("target_pacing", w, pairs, money, 0)

    def _targets(self, out: Results) -> None:
        for key in [k for k in out if k[0] == "target_attainment" and k[1] == self.kind]:
            _, kind, start, dim, dim_key = key
            revenue = out[key].numerator
            period = target_period(kind, start, self.tz)
            target = None if period is None else self.ref.target(dim, dim_key, period)
            out[key] = Result(divide(revenue, target), revenue, target)
            pacing = ("target_pacing", kind, start, dim, dim_key)
            den = None
            if target is not None and self.now is not None:
                elapsed, length = self._elapsed(start)
                den = target * elapsed / length
            out[pacing] = Result(divide(revenue, den), revenue, den)

    def _elapsed(self, start: int) -> tuple[Decimal, Decimal]:
        """(seconds of the window elapsed at ``now``, clamped to the window; its length)."""
        assert self.now is not None
        length = Decimal(window_end(self.kind, start, self.tz) - start)
        delta = self.now - datetime.fromtimestamp(start, UTC)
        micros = (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds
        return min(max(Decimal(micros) / 10**6, Decimal(0)), length), length

    def _retention(self, out: Results) -> None:
        first = self.start(self.events[0].occurred_at)
        starts = windows_between(self.kind, first, self.start(self.events[-1].occurred_at), self.tz)
        counts: dict[tuple[int, str, str], list[int]] = {}  # -> [customers at start, churned]
        for account, order in self.first_order.items():
            churn = next(
                (c for c in self.churns.get(account, []) if c.occurred_at >= order.occurred_at),
                None,
            )
            owner = self.dims[order.event_id].pairs(products=False)
            for start in starts:
                s = datetime.fromtimestamp(start, UTC)
                e = datetime.fromtimestamp(window_end(self.kind, start, self.tz), UTC)
                at_start = order.occurred_at < s and (churn is None or churn.occurred_at >= s)
                churned_in = churn is not None and s <= churn.occurred_at < e
                if at_start or churned_in:
                    for dim, key in owner:
                        row = counts.setdefault((start, dim, key), [0, 0])
                        row[0] += int(at_start)
                        row[1] += int(churned_in)
        for (start, dim, key), (customers, churned) in counts.items():
            if dim in DIMENSIONS["churn_rate"]:
                out[("churn_rate", self.kind, start, dim, key)] = Result(
                    divide(churned, customers), churned, customers
                )
                kept = customers - churned
                out[("retention_rate", self.kind, start, dim, key)] = Result(
                    divide(kept, customers), kept, customers
                )
            if dim in DIMENSIONS["ltv"]:
                num = self._revenue_x_margin_ratio(out, start, dim, key)
                out[("ltv", self.kind, start, dim, key)] = Result(
                    divide(num, churned), num, churned
                )

    def _revenue_x_margin_ratio(
        self, out: Results, start: int, dim: str, key: str
    ) -> Number | None:
        revenue = out.get(("revenue", self.kind, start, dim, key))
        ratio = out.get(("margin_ratio", self.kind, start, dim, key))
        if ratio is None or not ratio.denominator:
            return None
        assert isinstance(ratio.numerator, Decimal)
        assert isinstance(ratio.denominator, Decimal)
        money = ZERO if revenue is None else revenue.numerator
        assert isinstance(money, Decimal)
        return money * ratio.numerator / ratio.denominator
