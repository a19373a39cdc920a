"""The simulated sales floor: a pure, seeded stream of what a sales team's systems emit.

``floor(world, start, config, seed)`` yields ``Record``s in emission order, forever: first
the reference records (reps, products, accounts, targets), then events. No wall clock, no
I/O: the same world, start, config and seed give the same records, bytes included.

Two Poisson processes follow the business hours: leads arriving, and activity on customer
accounts. A lead is touched after a response delay (minutes, sometimes hours: past the 1 h
SLA), a few more times, and some leads become an opportunity, on a new account (announced on
``ref.accounts``) or a known one. An opportunity is quoted (sometimes twice) and closes once:
won (``order.placed`` with lines and unit costs) or lost (with a reason); some stall. Orders
are followed now and then by a cancellation, a complaint, a survey answer. Customers churn at
a low hazard; marketing spend is committed per channel at the start of each day or week. Reps
differ in skill (win rate), pace (volume) and response speed. The numbers are in ``funnel``;
the flaws of real sources (duplicates, late events, malformed messages) in ``timeline``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from streams.contracts.common import Channel
from streams.contracts.reference import Target
from streams.simulator import deals, funnel, history
from streams.simulator.deals import CENT, Line
from streams.simulator.hours import BusinessHours
from streams.simulator.incidents import Incident, IncidentKind
from streams.simulator.timeline import Action, Flaws, Record, Timeline
from streams.simulator.world import (
    AccountProfile,
    RepProfile,
    World,
    draw_account,
    monthly_targets,
    months_from,
    quarter_of,
)


@dataclass(frozen=True)
class FloorConfig:
    hours: BusinessHours
    peak_rate: float = 50.0  # event messages per second of event time at activity level 1
    currency: str = "EUR"
    flaws: Flaws = field(default_factory=Flaws)
    incidents: tuple[Incident, ...] = ()
    reference: bool = True
    history: bool = False  # book the quarter so far and start with a pipeline (see history)
    target_months: int = 3  # months of targets, from the month of the start
    max_bytes: int = 65_536  # a too-large message is just over this
    foreign_currencies: tuple[str, ...] = ("GBP", "USD", "CHF")  # no rate configured for them

    def __post_init__(self) -> None:
        if not self.peak_rate > 0:
            raise ValueError("peak_rate must be positive")
        if not self.foreign_currencies or self.currency in self.foreign_currencies:
            raise ValueError("foreign_currencies must not include the reporting currency")

    @property
    def valid_events_per_second(self) -> float:
        return self.peak_rate * self.flaws.valid_share


def floor(world: World, start: datetime, config: FloorConfig, seed: int) -> Iterator[Record]:
    """The records of ``world``'s floor from ``start`` (event time) on, in emission order."""
    timeline = Timeline(
        start=start,
        hours=config.hours,
        flaws=config.flaws,
        incidents=config.incidents,
        seed=seed,
        max_bytes=config.max_bytes,
        foreign_currencies=config.foreign_currencies,
    )
    sales = _SalesFloor(world, config, timeline)
    return timeline.run_from(sales.reference_records() if config.reference else ())


@dataclass(slots=True)
class _Lead:
    lead_id: str
    rep: RepProfile
    channel: Channel
    account_id: str | None
    last: float  # event time of its latest step


@dataclass(slots=True)
class _Deal:
    opportunity_id: str
    account_id: str
    rep: RepProfile
    lead: _Lead | None
    lines: list[Line]
    channel: Channel | None
    last: float
    quote_id: str | None = None
    closed: bool = False
    quoted: bool = False  # quoted before the start (a pipeline deal): wins as a quoted one


@dataclass(slots=True)
class _Order:
    order_id: str
    account_id: str
    rep: RepProfile
    amount: Decimal
    last: float


class _SalesFloor:
    """What happens on the floor: the actions the timeline runs."""

    def __init__(self, world: World, config: FloorConfig, timeline: Timeline) -> None:
        self.world = world
        self.config = config
        self.currency = config.currency
        self.timeline = timeline
        self.rng = timeline.rng
        self.hours = config.hours
        self.lead_rate, self.account_rate = funnel.arrival_rates(config.valid_events_per_second)
        self.reps = {profile.rep.rep_id: profile for profile in world.reps}
        self.active_reps = world.active_reps
        self.owner: dict[str, RepProfile] = {}
        self.contract: dict[str, Decimal] = {}
        self.customers: list[str] = []
        self.is_customer: set[str] = set()
        self.prospects: list[str] = []
        self.gone: dict[str, float] = {}  # churned account -> when it may come back
        for profile in world.accounts:
            self._know(profile)
        t0 = timeline.start
        timeline.at(self.hours.next_arrival(t0, self.lead_rate, self.rng), self._lead_arrives)
        self.warm = True  # the lead funnel is still filling up (see funnel.WARM_UP)
        self._account_acts(t0, first=True)
        self._schedule_churn(t0)
        if config.history:
            self.pipeline_rate = funnel.deal_closes(config.valid_events_per_second)
            timeline.at(self.hours.next_arrival(t0, self.pipeline_rate, self.rng), self._pipeline)
        today = timeline.dt(t0).date()
        timeline.at(t0, self._spend, today, 1)
        timeline.at(t0, self._spend, today - timedelta(days=today.weekday()), 7)

    # --- reference data and accounts ---

    def reference_records(self) -> Iterator[Record]:
        t0 = self.timeline.start
        bookings = funnel.expected_bookings(self.world, self.config.valid_events_per_second)
        targets: list[Target] = []
        months = months_from(self.timeline.dt(t0).date(), self.config.target_months + 1)
        quarters: dict[str, Decimal] = {}
        for month, following in itertools.pairwise(months):
            revenue = bookings * Decimal(self._busy(month, following))
            targets.extend(monthly_targets(self.world, [month], revenue.quantize(CENT),
                                           self.currency))  # fmt: skip
        for month in months[:-1]:
            quarter = quarter_of(month)
            if quarter not in quarters:
                first = date.fromisoformat(f"{quarter[:4]}-{int(quarter[-1]) * 3 - 2:02d}-01")
                span = months_from(first, 4)
                quarters[quarter] = bookings * Decimal(self._busy(span[0], span[3]))
        for quarter, revenue in quarters.items():
            targets.extend(
                monthly_targets(self.world, [quarter], revenue.quantize(CENT), self.currency)
            )
        for profile in self.world.reps:
            yield self.timeline.reference(t0, "ref.reps", profile.rep)
        for product in self.world.products:
            yield self.timeline.reference(t0, "ref.products", product.product)
        for account in self.world.accounts:
            yield self.timeline.reference(t0, "ref.accounts", account.account)
        for target in targets:
            yield self.timeline.reference(t0, "ref.targets", target)
        if self.config.history:
            yield from self._past(bookings)

    def _busy(self, month: str, following: str) -> float:
        """Busy seconds from the first of ``month`` to the first of ``following``."""
        start, end = (_midnight(date.fromisoformat(f"{m}-01"), self.hours.zone)
                      for m in (month, following))  # fmt: skip
        return self.hours.integral(start, end)

    def _past(self, bookings: Decimal) -> Iterator[Record]:
        """The orders (and lost deals) of the quarter so far (see ``history``), sent before the
        live floor."""
        rng = random.Random(f"salespulse-history:{self.world.seed}:{self.timeline.start!r}")
        owned: dict[str, list[str]] = {}
        for profile in self.world.accounts:
            owned.setdefault(profile.owner, []).append(profile.account.account_id)
        everyone = [profile.account.account_id for profile in self.world.accounts]
        losses = history.losses_per_order(funnel.expected_win_rate())
        for t, rep, amount in history.past_orders(
            self.world, self.hours, self.timeline.start, bookings, rng
        ):
            account_id = rng.choice(owned.get(rep.rep.rep_id) or everyone)
            yield self.timeline.past(
                t, "order.placed", "crm", order_id=self.timeline.id("past"),
                account_id=account_id, rep_id=rep.rep.rep_id, amount=str(amount),
                currency=self.currency,
            )  # fmt: skip
            for _ in range(history.draw_count(rng, losses)):
                product = rng.choice(self.world.products).product.product_id
                yield self.timeline.past(
                    t, "opportunity.lost", "crm", opportunity_id=self.timeline.id("past-opp"),
                    account_id=rng.choice(owned.get(rep.rep.rep_id) or everyone),
                    rep_id=rep.rep.rep_id, product_id=product,
                    reason=_pick(rng, funnel.LOSS_REASONS),
                )  # fmt: skip

    def _know(self, profile: AccountProfile) -> None:
        account_id = profile.account.account_id
        self.owner[account_id] = self.reps[profile.owner]
        self.contract[account_id] = profile.contract_value
        if profile.customer:
            self._become_customer(account_id)
        else:
            self.prospects.append(account_id)

    def _become_customer(self, account_id: str) -> None:
        if account_id not in self.is_customer:
            self.is_customer.add(account_id)
            self.customers.append(account_id)

    def _pick_account(self, pool: list[str], t: float) -> str | None:
        """An account of ``pool`` that has not churned recently (None if none found)."""
        for _ in range(8):
            if not pool:
                return None
            account_id = self.rng.choice(pool)
            if self.gone.get(account_id, 0.0) <= t:
                return account_id
        return None

    # --- leads ---

    def _lead_arrives(self, t: float) -> None:
        rng, timeline = self.rng, self.timeline
        timeline.at(self.hours.next_arrival(t, self.lead_rate, rng), self._lead_arrives)
        channel = _pick(rng, {c: spec.weight for c, spec in funnel.LEAD_CHANNELS.items()})
        account_id = None
        if rng.random() < funnel.P_LEAD_HAS_ACCOUNT:
            known = self.prospects if rng.random() < 0.7 else self.customers
            account_id = self._pick_account(known, t)
        if account_id is not None:
            rep = self.owner[account_id]
        else:
            rep = rng.choices(self.active_reps, weights=[r.pace for r in self.active_reps])[0]
        lead = _Lead(timeline.id("lead"), rep, channel, account_id, t)
        assigned = rng.random() < funnel.P_LEAD_ASSIGNED
        lead.last = timeline.emit(
            t, "lead.created", "crm", None, lead_id=lead.lead_id, account_id=account_id,
            rep_id=rep.rep.rep_id if assigned else None, channel=channel.value,
        )  # fmt: skip
        if rng.random() < funnel.P_NEVER_TOUCHED:
            return
        _, median, sigma = rng.choices(funnel.RESPONSE, weights=[r[0] for r in funnel.RESPONSE])[0]
        delay = timeline.later(t, median * rep.response, sigma, minimum=20.0)
        timeline.at(delay, self._first_touch, lead)

    def _held_by_backlog(self, t: float, action: Action, *args: object) -> bool:
        """During a lead backlog, work on leads waits for its end (or for good)."""
        incident = self.timeline.active(IncidentKind.LEAD_BACKLOG, t)
        if incident is None:
            return False
        if incident.ends is not None:
            resume = self.timeline.later(incident.ends.timestamp(), 600.0, 1.0)
            self.timeline.at(resume, action, *args)
        return True

    def _first_touch(self, t: float, lead: _Lead) -> None:
        if self._held_by_backlog(t, self._first_touch, lead):
            return
        rng = self.rng
        self._touch(t, _pick(rng, funnel.FIRST_TOUCH), lead.rep, lead=lead)
        qualify = funnel.LEAD_CHANNELS[lead.channel].qualify * math.sqrt(lead.rep.skill)
        qualifies = rng.random() < min(0.9, qualify)
        more = rng.randint(
            *(funnel.FOLLOW_UPS_QUALIFIED if qualifies else funnel.FOLLOW_UPS_UNQUALIFIED)
        )
        next_step = self.timeline.later(t, *funnel.FOLLOW_UP)
        self.timeline.at(next_step, self._follow_up, lead, more, qualifies)

    def _follow_up(self, t: float, lead: _Lead, remaining: int, qualifies: bool) -> None:
        if self._held_by_backlog(t, self._follow_up, lead, remaining, qualifies):
            return
        if remaining > 0:
            self._touch(t, _pick(self.rng, funnel.NEXT_TOUCH), lead.rep, lead=lead)
            next_step = self.timeline.later(t, *funnel.FOLLOW_UP)
            self.timeline.at(next_step, self._follow_up, lead, remaining - 1, qualifies)
        elif qualifies:
            self._qualify(t, lead)

    def _qualify(self, t: float, lead: _Lead) -> None:
        """The lead becomes an opportunity (on a new account if it had none)."""
        account_id = lead.account_id
        if account_id is None:
            account_id = lead.account_id = self.timeline.id("acct")
            profile = draw_account(self.rng, account_id, [lead.rep], customer=False)
            self._know(profile)
            if self.config.reference:
                new = self.timeline.reference(t, "ref.accounts", profile.account)
                self.timeline.out.append(new)
        if self.rng.random() < funnel.P_MEETING_BEFORE_OPPORTUNITY:
            self._touch(t, "meeting", lead.rep, lead=lead)
        lines = deals.deal_lines(self.rng, self.world.products)
        opportunity = self.timeline.id("opp")
        deal = _Deal(opportunity, account_id, lead.rep, lead, lines, lead.channel, lead.last)
        self._open(t, deal)

    def _touch(
        self, t: float, kind: str, rep: RepProfile, *, lead: _Lead | None = None,
        account_id: str | None = None,
    ) -> None:  # fmt: skip
        """A call, an email or a meeting, about a lead (and its account) or a customer."""
        rng, timeline = self.rng, self.timeline
        subject = {
            "rep_id": rep.rep.rep_id,
            "lead_id": None if lead is None else lead.lead_id,
            "account_id": account_id if lead is None else lead.account_id,
        }
        after = None if lead is None else lead.last
        if kind == "call":
            outcome = _pick(rng, funnel.CALL_OUTCOMES)
            if outcome == "connected":
                duration = int(min(5400, rng.lognormvariate(math.log(240), 0.8)))
            else:
                duration = rng.randint(15, 40) if outcome == "no_answer" else rng.randint(20, 75)
            inbound = rng.random() < funnel.P_INBOUND_CALL
            occurred = timeline.emit(
                t, "call.logged", "telephony", after, **subject, call_id=timeline.id("call"),
                direction="inbound" if inbound else "outbound", outcome=outcome,
                duration_s=duration,
            )  # fmt: skip
        elif kind == "email":
            occurred = timeline.emit(
                t, "email.sent", "mail", after, **subject, email_id=timeline.id("mail")
            )
        else:
            occurred = timeline.emit(
                t, "meeting.held", "crm", after, **subject, meeting_id=timeline.id("meet"),
                kind="prospect" if lead is not None else "customer",
            )  # fmt: skip
        if lead is not None:
            lead.last = max(lead.last, occurred)

    # --- opportunities, quotes, orders ---

    def _open(self, t: float, deal: _Deal) -> None:
        rng, timeline = self.rng, self.timeline
        deal.last = timeline.emit(
            t, "opportunity.opened", "crm", deal.last,
            opportunity_id=deal.opportunity_id, account_id=deal.account_id,
            lead_id=None if deal.lead is None else deal.lead.lead_id,
            rep_id=deal.rep.rep.rep_id, product_id=deals.product_name(rng, deal.lines[0].product),
            amount=str(deals.total(deal.lines)), currency=self.currency,
            channel=None if deal.channel is None else deal.channel.value,
        )  # fmt: skip
        if rng.random() < funnel.P_STALL:
            return
        if rng.random() < funnel.P_QUOTE:
            timeline.at(timeline.later(t, *funnel.QUOTE_DELAY), self._quote, deal, 0)
        else:
            timeline.at(timeline.later(t, *funnel.UNQUOTED_CLOSE), self._close, deal)

    def _quote(self, t: float, deal: _Deal, revision: int) -> None:
        rng, timeline = self.rng, self.timeline
        if revision:
            deal.lines = deals.discounted(deal.lines, rng.uniform(0.03, 0.07))
        deal.quote_id = timeline.id("quote")
        deal.last = timeline.emit(
            t, "quote.sent", "crm", deal.last, quote_id=deal.quote_id,
            opportunity_id=deal.opportunity_id, account_id=deal.account_id,
            rep_id=deal.rep.rep.rep_id, amount=str(deals.total(deal.lines)),
            currency=self.currency,
        )  # fmt: skip
        if revision == 0 and rng.random() < funnel.P_REVISED_QUOTE:
            timeline.at(timeline.later(t, *funnel.QUOTE_DELAY), self._quote, deal, 1)
            return
        delays = funnel.CLOSE_DELAYS
        _, median, sigma = rng.choices(delays, weights=[d[0] for d in delays])[0]
        timeline.at(timeline.later(t, median, sigma, minimum=60.0), self._close, deal)

    def _pipeline(self, t: float) -> None:
        """A deal opened before the start closes (see ``history``): thinned as it fades."""
        busy = self.hours.integral(self.timeline.start, t)
        if busy >= history.PIPELINE_SECONDS:
            return
        self.timeline.at(self.hours.next_arrival(t, self.pipeline_rate, self.rng), self._pipeline)
        rng = self.rng
        if rng.random() >= history.pipeline_share(busy):
            return
        pool = self.customers if rng.random() < 0.5 else self.prospects
        account_id = self._pick_account(pool, t)
        if account_id is None:
            return
        lines = deals.deal_lines(rng, self.world.products)
        deal = _Deal(self.timeline.id("opp"), account_id, self.owner[account_id], None, lines,
                     None, t, quoted=rng.random() < history.P_PIPELINE_QUOTED)  # fmt: skip
        self._close(t, deal)

    def win_probability(self, t: float, deal: _Deal) -> float:
        quoted = deal.quote_id is not None or deal.quoted
        base = funnel.WIN_QUOTED if quoted else funnel.WIN_UNQUOTED
        p = base * deal.rep.skill * deal.lines[0].product.appeal
        if self.timeline.active(IncidentKind.CONVERSION_DIP, t) is not None:
            p *= funnel.DIP_FACTOR
        return min(max(p, 0.02), 0.9)

    def _close(self, t: float, deal: _Deal) -> None:
        if deal.closed:  # pragma: no cover - a deal is only ever scheduled to close once
            raise AssertionError(f"{deal.opportunity_id} would close twice")
        deal.closed = True
        rng, timeline = self.rng, self.timeline
        if rng.random() < self.win_probability(t, deal):
            order = _Order(
                timeline.id("ord"), deal.account_id, deal.rep, deals.total(deal.lines), t
            )
            order.last = timeline.emit(
                t, "order.placed", "crm", deal.last, order_id=order.order_id,
                quote_id=deal.quote_id, opportunity_id=deal.opportunity_id,
                account_id=deal.account_id, rep_id=deal.rep.rep.rep_id, amount=str(order.amount),
                currency=self.currency, lines=[line.payload() for line in deal.lines],
                channel=None if deal.channel is None else deal.channel.value,
            )  # fmt: skip
            self._after_order(t, order)
            return
        dip = timeline.active(IncidentKind.CONVERSION_DIP, t) is not None
        with_amount = rng.random() < funnel.P_LOST_WITH_AMOUNT
        timeline.emit(
            t, "opportunity.lost", "crm", deal.last, opportunity_id=deal.opportunity_id,
            account_id=deal.account_id, lead_id=None if deal.lead is None else deal.lead.lead_id,
            rep_id=deal.rep.rep.rep_id, product_id=deal.lines[0].product.product.product_id,
            amount=str(deals.total(deal.lines)) if with_amount else None,
            currency=self.currency if with_amount else None,
            reason=_pick(rng, funnel.DIP_LOSS_REASONS if dip else funnel.LOSS_REASONS),
        )  # fmt: skip

    def _webshop_order(self, t: float, account_id: str) -> None:
        timeline = self.timeline
        lines = deals.webshop_lines(self.rng, self.world.products)
        rep = self.owner[account_id]
        order = _Order(timeline.id("web"), account_id, rep, deals.total(lines), t)
        order.last = timeline.emit(
            t, "order.placed", "webshop", None, order_id=order.order_id, account_id=account_id,
            rep_id=rep.rep.rep_id, amount=str(order.amount), currency=self.currency,
            lines=[line.payload() for line in lines], channel=Channel.WEB.value,
        )  # fmt: skip
        self._after_order(t, order)

    def _after_order(self, t: float, order: _Order) -> None:
        rng, timeline = self.rng, self.timeline
        self._become_customer(order.account_id)
        if rng.random() < funnel.P_CANCEL:
            timeline.at(timeline.later(t, *funnel.CANCEL_DELAY), self._cancel, order)
        if rng.random() < funnel.P_COMPLAINT:
            when = timeline.later(t, *funnel.COMPLAINT_DELAY)
            timeline.at(when, self._complaint, order.account_id, order)
        if rng.random() < funnel.P_SURVEY:
            timeline.at(timeline.later(t, *funnel.SURVEY_DELAY), self._survey, order.account_id)

    def _cancel(self, t: float, order: _Order) -> None:
        rng = self.rng
        amount = order.amount
        if rng.random() < funnel.P_PARTIAL_CANCEL:
            amount = max(CENT, (amount * Decimal(rng.uniform(0.2, 0.6))).quantize(CENT))
        self.timeline.emit(
            t, "order.cancelled", "erp", order.last, order_id=order.order_id,
            account_id=order.account_id, rep_id=order.rep.rep.rep_id, amount=str(amount),
            currency=self.currency, reason=rng.choice(funnel.CANCEL_REASONS),
        )  # fmt: skip

    def _complaint(self, t: float, account_id: str, order: _Order | None = None) -> None:
        self.timeline.emit(
            t, "complaint.filed", "helpdesk", None if order is None else order.last,
            complaint_id=self.timeline.id("cmp"), account_id=account_id,
            order_id=None if order is None else order.order_id,
            rep_id=self.owner[account_id].rep.rep_id,
            reason=self.rng.choice(funnel.COMPLAINT_REASONS),
        )  # fmt: skip

    def _survey(self, t: float, account_id: str) -> None:
        rng = self.rng
        rep = self.owner[account_id]
        detractors = funnel.DETRACTORS / math.sqrt(rep.skill)
        if self.timeline.active(IncidentKind.CHURN_SPIKE, t) is not None:
            detractors *= 2
        draw = rng.random()
        if draw < detractors:
            score = rng.choices(range(7), weights=(2, 1, 2, 3, 5, 8, 10))[0]
        elif draw < detractors + funnel.PASSIVES:
            score = rng.choice((7, 8))
        else:
            score = rng.choices((9, 10), weights=(3, 2))[0]
        self.timeline.emit(
            t, "nps.answered", "survey", None, account_id=account_id, rep_id=rep.rep.rep_id,
            score=score,
        )  # fmt: skip

    # --- customer accounts ---

    def _account_acts(self, t: float, first: bool = False) -> None:
        """One action on a customer account (and the next one scheduled).

        While the lead funnel fills up after the start, extra account actions keep the floor at
        its rate from the first minute (thinning: candidates at the highest rate, each kept
        with probability rate now / highest rate). The extra ones are calls, e-mails and
        meetings only: extra webshop orders (always won) would lift the early win rate well
        above the floor's own, and with it the month that ``SalespulseWinRateDip`` compares the
        last hour with.
        """
        rng, timeline = self.rng, self.timeline
        extra = funnel.EVENTS_PER_ACCOUNT_ACTION / funnel.EVENTS_PER_ACTIVITY
        highest = 1.0 + (funnel.warm_up_factor(0.0) - 1.0) * extra
        regular, kept = 1.0, 1.0
        if self.warm:  # this candidate was drawn at the highest rate
            busy = self.hours.integral(timeline.start, t)
            regular = 1.0 / highest
            kept = (1.0 + (funnel.warm_up_factor(busy) - 1.0) * extra) / highest
            self.warm = busy < funnel.WARM_UP_SECONDS
        rate = self.account_rate * (highest if self.warm else 1.0)
        timeline.at(self.hours.next_arrival(t, rate, rng), self._account_acts)
        draw = rng.random()
        if first or draw >= kept:
            return
        account_id = self._pick_account(self.customers, t)
        if account_id is None:
            return
        if draw >= regular:  # an extra one
            kind = _pick(rng, funnel.ACTIVITY_MIX)
            self._touch(t, kind, self.owner[account_id], account_id=account_id)
            return
        mix = dict(funnel.ACCOUNT_MIX)
        if timeline.active(IncidentKind.CHURN_SPIKE, t) is not None:
            mix["complaint"] *= funnel.COMPLAINT_SPIKE
        kind = _pick(rng, mix)
        rep = self.owner[account_id]
        if kind in ("call", "email", "meeting"):
            self._touch(t, kind, rep, account_id=account_id)
        elif kind == "upsell":
            if rng.random() < funnel.P_MEETING_BEFORE_UPSELL:
                self._touch(t, "meeting", rep, account_id=account_id)
            lines = deals.deal_lines(rng, self.world.products)
            self._open(t, _Deal(timeline.id("opp"), account_id, rep, None, lines, None, t))
        elif kind == "webshop":
            self._webshop_order(t, account_id)
        elif kind == "survey":
            self._survey(t, account_id)
        elif kind == "complaint":
            self._complaint(t, account_id)
        else:  # an order from before the run, cancelled: known by its account only
            share = Decimal(rng.uniform(0.05, 0.3))
            amount = max(CENT, (self.contract[account_id] * share).quantize(CENT))
            timeline.emit(
                t, "order.cancelled", "erp", None, account_id=account_id, rep_id=rep.rep.rep_id,
                amount=str(amount), currency=self.currency,
                reason=rng.choice(funnel.CANCEL_REASONS),
            )  # fmt: skip

    def _schedule_churn(self, t: float) -> None:
        """The next churn: a hazard per customer, drawn again when a churn spike starts or ends."""
        spike = self.timeline.active(IncidentKind.CHURN_SPIKE, t) is not None
        rate = len(self.customers) * funnel.CHURN_PER_BUSY_HOUR / 3600
        rate *= funnel.CHURN_SPIKE if spike else 1.0
        if rate <= 0:
            self.timeline.at(t + 3600.0, self._schedule_churn)
            return
        churn_at = self.hours.next_arrival(t, rate, self.rng)
        boundaries = [
            moment.timestamp()
            for incident in self.config.incidents
            if incident.kind is IncidentKind.CHURN_SPIKE
            for moment in (incident.starts, incident.ends)
            if moment is not None and t < moment.timestamp() < churn_at
        ]
        if boundaries:
            self.timeline.at(min(boundaries), self._schedule_churn)
        else:
            self.timeline.at(churn_at, self._churn)

    def _churn(self, t: float) -> None:
        self._schedule_churn(t)
        account_id = self._pick_account(self.customers, t)
        if account_id is None:
            return
        self.customers.remove(account_id)
        self.is_customer.discard(account_id)
        self.gone[account_id] = t + funnel.GONE_FOR
        self.timeline.emit(
            t, "contract.churned", "crm", None, account_id=account_id,
            rep_id=self.owner[account_id].rep.rep_id,
            amount=str(self.contract[account_id].quantize(CENT)), currency=self.currency,
            reason=_pick(self.rng, funnel.CHURN_REASONS),
        )  # fmt: skip

    # --- marketing spend ---

    def _spend(self, t: float, first: date, days: int) -> None:
        """Spend of the channels budgeted per ``days`` (1 or 7), for the period from ``first``,
        committed at its start (and for the current period at the start of the run)."""
        zone = self.hours.zone
        last = first + timedelta(days=days - 1)
        busy = self.hours.integral(_midnight(first, zone), _midnight(last + timedelta(1), zone))
        for channel, spec in funnel.LEAD_CHANNELS.items():
            if spec.spend_days != days or spec.cost_per_lead is None:
                continue
            leads = self.lead_rate * spec.weight * busy
            noise = self.rng.uniform(0.85, 1.15)
            self.timeline.emit(
                t, "spend.recorded", "ads", None, channel=channel.value,
                amount=str(Decimal(leads * spec.cost_per_lead * noise).quantize(CENT)),
                currency=self.currency,
                period={"start": first.isoformat(), "end": last.isoformat()},
            )  # fmt: skip
        following = first + timedelta(days=days)
        opens = datetime.combine(following, self.hours.opens, tzinfo=zone).timestamp()
        self.timeline.at(max(opens, t), self._spend, following, days)


K = TypeVar("K")


def _pick(rng: random.Random, weighted: Mapping[K, float]) -> K:
    return rng.choices(list(weighted), weights=list(weighted.values()))[0]


def _midnight(day: date, zone: ZoneInfo) -> float:
    return datetime.combine(day, time(0), tzinfo=zone).timestamp()
