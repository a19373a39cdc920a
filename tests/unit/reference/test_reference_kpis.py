"""tests.reference: the reference KPIs on small event lists, against hand-computed numbers.

The expected numbers below were worked out by hand from docs/kpi-definitions.md (comments
show the arithmetic), not read back from the code.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from streams.contracts.events import TOPIC_OF_TYPE
from streams.contracts.reference import Account, Product, Rep, Target, TargetScope
from streams.ingest.validate import Limits
from tests.reference.kpis import Key, RefData, Result, Results, compute, rolling
from tests.reference.windows import window_end, window_start

REF_TZ = ZoneInfo("Europe/Paris")
LIMITS = Limits(max_bytes=65_536, currency="EUR", rates={"USD": Decimal("0.9")})

REF = RefData(
    reps={
        "ana": Rep(rep_id="ana", name="Ana", team="North", region="Paris"),
        "bob": Rep(rep_id="bob", name="Bob", team="North", region="Lyon"),
        "cy": Rep(rep_id="cy", name="Cy", team="South", region="Nice"),
    },
    products={
        "P1": Product(product_id="P1", name="Pulse", aliases=["P-ONE"]),
        "P2": Product(product_id="P2", name="Beacon"),
    },
    accounts={
        "acme": Account(account_id="acme", sector="tech", region="Lille"),
        "beta": Account(account_id="beta", sector="retail", region="Nice"),
        "gamma": Account(account_id="gamma", sector="tech", region="Brest"),
    },
    targets=[
        Target(
            scope=TargetScope.REP,
            key="ana",
            period="2017-03",
            amount=Decimal("1000.00"),
            currency="EUR",
        ),
        Target(
            scope=TargetScope.GLOBAL,
            key="all",
            period="2017-03",
            amount=Decimal("4000.00"),
            currency="EUR",
        ),
        Target(
            scope=TargetScope.TEAM,
            key="North",
            period="2017-Q1",
            amount=Decimal("3000.00"),
            currency="EUR",
        ),
    ],
)

_ids = itertools.count()
Message = tuple[str, bytes]


def msg(type_: str, at: str, *, eid: str | None = None, **fields: Any) -> Message:
    payload = {
        "event_id": eid or f"ev-{next(_ids)}",
        "type": type_,
        "occurred_at": at,
        "source": "test",
        "schema_version": 1,
        **fields,
    }
    return TOPIC_OF_TYPE[type_], orjson.dumps(payload)


def line(product: str, quantity: int, price: str, cost: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"product_id": product, "quantity": quantity, "unit_price": price}
    if cost is not None:
        out["unit_cost"] = cost
    return out


def order(
    at: str, account: str = "acme", rep: str = "ana", amount: str = "100.00", **kw: Any
) -> Message:
    return msg("order.placed", at, order_id=f"o-{next(_ids)}", account_id=account, rep_id=rep,
               amount=amount, currency="EUR", **kw)  # fmt: skip


def call(at: str, rep: str = "ana", outcome: str = "connected", **kw: Any) -> Message:
    kw.setdefault("account_id", "acme")
    return msg("call.logged", at, call_id=f"c-{next(_ids)}", rep_id=rep, direction="outbound",
               outcome=outcome, duration_s=60, **kw)  # fmt: skip


def email(at: str, rep: str, **kw: Any) -> Message:
    return msg("email.sent", at, email_id=f"m-{next(_ids)}", rep_id=rep, **kw)


def lead(at: str, lead_id: str, channel: str = "web", **kw: Any) -> Message:
    return msg("lead.created", at, lead_id=lead_id, channel=channel, **kw)


def churn(at: str, account: str, **kw: Any) -> Message:
    return msg("contract.churned", at, account_id=account, reason="gone", **kw)


def ts(text: str) -> int:
    """Epoch seconds of an RFC 3339 time."""
    return int(datetime.fromisoformat(text).timestamp())


def run(*messages: Message, **kw: Any) -> Results:
    return compute(list(messages), REF, limits=LIMITS, **kw)


def get(
    results: Results, kpi: str, kind: str, start: str, dim: str = "global", key: str = "all"
) -> Result:
    return results[(kpi, kind, ts(start), dim, key)]


def keys_of(results: Results, kpi: str, kind: str) -> set[Key]:
    return {k for k in results if k[0] == kpi and k[1] == kind}


MARCH = "2017-03-01T00:00:00+01:00"
Q1 = "2017-01-01T00:00:00+01:00"


def test_duplicates_count_once_and_invalid_messages_are_skipped() -> None:
    results = run(
        order("2017-03-06T10:00:00+01:00", amount="100.00", eid="dup"),
        order("2017-03-06T10:05:00+01:00", amount="999.00", eid="dup"),  # duplicate: ignored
        order("2017-03-06T10:06:00+01:00", amount="-5.00", eid="bad"),  # invalid: skipped
        ("sales.calls", orjson.dumps({"type": "order.placed"})),  # wrong topic and incomplete
        order("2017-03-06T10:07:00+01:00", amount="50.00", eid="bad"),  # first *valid* "bad"
    )
    day = "2017-03-06T00:00:00+01:00"
    assert get(results, "revenue", "day", day) == Result(Decimal("150.00"), Decimal("150.00"), None)
    assert get(results, "orders", "day", day).value == 2
    # the minute bucket of the duplicate has nothing
    assert ("orders", "minute", ts("2017-03-06T10:05:00+01:00"), "global", "all") not in results


def test_dst_spring_forward_day_lasts_23_hours() -> None:
    results = run(
        order("2017-03-26T12:00:00+02:00", amount="10.00"),
        order("2017-03-26T23:30:00+02:00", amount="20.00"),  # still the 26th, local
        order("2017-03-27T00:30:00+02:00", amount="40.00"),
    )
    days = {k[2]: results[k].value for k in keys_of(results, "revenue", "day")}
    assert days == {
        ts("2017-03-25T23:00:00+00:00"): Decimal("30.00"),  # local midnight of the 26th
        ts("2017-03-26T22:00:00+00:00"): Decimal("40.00"),
    }
    start = ts("2017-03-25T23:00:00+00:00")
    assert window_end("day", start, REF_TZ) - start == 23 * 3600
    # the 26th is a Sunday: the ISO week started on Monday the 20th, at +01:00
    weeks = {k[2]: results[k].value for k in keys_of(results, "revenue", "week")}
    assert weeks == {
        ts("2017-03-20T00:00:00+01:00"): Decimal("30.00"),
        ts("2017-03-27T00:00:00+02:00"): Decimal("40.00"),
    }


def test_dst_autumn_day_lasts_25_hours() -> None:
    start = window_start("day", datetime.fromisoformat("2017-10-29T12:00:00+01:00"), REF_TZ)
    assert start == ts("2017-10-29T00:00:00+02:00")
    assert window_end("day", start, REF_TZ) - start == 25 * 3600


def test_week_month_quarter_boundaries() -> None:
    results = run(
        order("2017-03-31T23:30:00+02:00", amount="10.00"),  # Friday, March, Q1
        order("2017-04-01T00:30:00+02:00", amount="20.00"),  # Saturday, April, Q2
        order("2017-04-03T00:00:00+02:00", amount="40.00"),  # Monday: a new week
    )

    def revenue(kind: str) -> dict[int, Any]:
        return {k[2]: results[k].value for k in keys_of(results, "revenue", kind)}

    assert revenue("week") == {
        ts("2017-03-27T00:00:00+02:00"): Decimal("30.00"),
        ts("2017-04-03T00:00:00+02:00"): Decimal("40.00"),
    }
    assert revenue("month") == {
        ts(MARCH): Decimal("10.00"),
        ts("2017-04-01T00:00:00+02:00"): Decimal("60.00"),
    }
    assert revenue("quarter") == {
        ts(Q1): Decimal("10.00"),
        ts("2017-04-01T00:00:00+02:00"): Decimal("60.00"),
    }


def test_late_for_minute_but_not_for_day() -> None:
    results = run(
        order("2017-03-06T10:00:00+01:00", amount="1.00"),
        order("2017-03-06T10:20:00+01:00", amount="2.00"),
        # arrives at stream time 10:20 >= end of its minute (10:06) + 10 min: late for minute
        order("2017-03-06T10:05:00+01:00", amount="4.00"),
        # 10:20 < 10:19 + 1 min + 10 min: in time for minute
        order("2017-03-06T10:19:00+01:00", amount="8.00"),
    )
    minutes = {k[2]: results[k].value for k in keys_of(results, "revenue", "minute")}
    assert minutes == {
        ts("2017-03-06T10:00:00+01:00"): Decimal("1.00"),
        ts("2017-03-06T10:19:00+01:00"): Decimal("8.00"),
        ts("2017-03-06T10:20:00+01:00"): Decimal("2.00"),
    }
    assert get(results, "revenue", "day", "2017-03-06T00:00:00+01:00").value == Decimal("15.00")


def test_late_first_order_is_no_context_for_its_kind() -> None:
    results = run(
        order("2017-03-03T09:00:00+01:00", amount="30.00"),
        # stream time 03-03 09:00 >= end of its day (03-02 00:00) + 1 day: late for day (and
        # minute), in time for week (ends 03-06), month and quarter
        order("2017-03-01T09:00:00+01:00", amount="10.00"),
    )
    days = {k[2]: results[k].value for k in keys_of(results, "new_customers", "day")}
    assert days == {ts("2017-03-03T00:00:00+01:00"): 1}  # the day kind never saw the 1st
    assert {k[2] for k in keys_of(results, "orders", "day")} == {ts("2017-03-03T00:00:00+01:00")}
    week = "2017-02-27T00:00:00+01:00"
    assert get(results, "new_customers", "week", week).value == 1
    assert get(results, "repeat_purchase_rate", "week", week) == Result(0.5, 1, 2)


def test_first_order_is_by_event_time_not_arrival() -> None:
    results = run(
        order("2017-03-10T10:00:00+01:00", amount="20.00"),
        order("2017-03-09T10:00:00+01:00", amount="10.00"),  # earlier, arrives second
    )
    days = {k[2]: results[k].value for k in keys_of(results, "new_customers", "day")}
    assert days == {ts("2017-03-09T00:00:00+01:00"): 1}
    assert get(results, "repeat_purchase_rate", "day", "2017-03-10T00:00:00+01:00") == Result(
        1.0, 1, 1
    )
    assert get(results, "repeat_purchase_rate", "day", "2017-03-09T00:00:00+01:00") == Result(
        0.0, 0, 1
    )
    # late for minute (stream time 03-10 >> 03-09 10:11): the minute kind's first order is the 10th's
    minutes = {k[2]: results[k].value for k in keys_of(results, "new_customers", "minute")}
    assert minutes == {ts("2017-03-10T10:00:00+01:00"): 1}


LEAD_EVENTS = (  # in event-time order but for the 08:59 call (not late: 09:00 < 08:59 + 11 min)
    order("2017-03-01T10:00:00+01:00", account="beta", rep="cy"),  # beta's first: before L2
    lead("2017-03-06T09:00:00+01:00", "L1", rep_id="ana", account_id="acme"),
    call("2017-03-06T08:59:00+01:00", "ana", lead_id="L1"),  # before t0: not a touch
    email("2017-03-06T09:10:00+01:00", "bob", lead_id="L1"),  # first touch: 600 s, bob's
    call("2017-03-06T09:20:00+01:00", "ana", lead_id="L1"),
    lead("2017-03-06T09:30:00+01:00", "L2", channel="referral", rep_id="ana", account_id="beta"),
    lead("2017-03-06T09:45:00+01:00", "L3", account_id="gamma"),  # no rep, never touched
    call("2017-03-06T10:30:00+01:00", "ana", lead_id="L2"),  # 3600 s, ana's
    order("2017-03-07T10:00:00+01:00", account="acme"),  # acme's first: after L1 -> converted
    order("2017-03-08T10:00:00+01:00", account="beta", rep="cy"),
)


def test_lead_response_attributed_to_the_first_touch() -> None:
    results = run(*LEAD_EVENTS)
    day = "2017-03-06T00:00:00+01:00"
    assert get(results, "lead_response_seconds", "day", day) == Result(2100.0, 4200.0, 2)
    assert get(results, "lead_response_seconds", "day", day, "rep", "bob") == Result(
        600.0, 600.0, 1
    )
    assert get(results, "lead_response_seconds", "day", day, "rep", "ana") == Result(
        3600.0, 3600.0, 1
    )
    assert get(results, "lead_response_seconds", "day", day, "team", "North").denominator == 2
    # p90 of [600, 3600]: sorted[floor(0.9 * 1)] = sorted[0]
    assert get(results, "lead_response_seconds_p90", "day", day) == Result(600.0, None, 2)
    minute = "2017-03-06T10:30:00+01:00"
    assert get(results, "lead_response_seconds", "minute", minute) == Result(3600.0, 3600.0, 1)


def test_lead_conversion_by_the_leads_window_and_dims() -> None:
    results = run(*LEAD_EVENTS)
    day = "2017-03-06T00:00:00+01:00"
    assert get(results, "lead_conversion_rate", "day", day) == Result(1 / 3, 1, 3)
    assert get(results, "lead_conversion_rate", "day", day, "channel", "web") == Result(0.5, 1, 2)
    assert get(results, "lead_conversion_rate", "day", day, "channel", "referral") == Result(
        0.0, 0, 1
    )
    assert get(results, "lead_conversion_rate", "day", day, "rep", "ana") == Result(0.5, 1, 2)
    assert get(results, "lead_conversion_rate", "day", day, "region", "Brest") == Result(0.0, 0, 1)
    assert get(results, "leads_created", "month", MARCH, "channel", "web").value == 2


def test_leads_waiting_at_stream_time() -> None:
    # default now = latest event, 03-08: only L3 is untouched
    results = run(*LEAD_EVENTS)
    live = {(k[3], k[4]): results[k].value for k in results if k[0] == "leads_waiting"}
    assert live[("global", "all")] == 1
    assert live[("channel", "web")] == 1
    assert live[("channel", "referral")] == 0
    assert live[("region", "Brest")] == 1  # L3 has no rep: the account's region
    assert all(k[1:3] == ("live", 0) for k in results if k[0] == "leads_waiting")
    # at 10:15 with a 30 min SLA: L2 (09:30, touched only at 10:30) and L3 (09:45) wait
    early = run(
        *LEAD_EVENTS, now=datetime.fromisoformat("2017-03-06T10:15:00+01:00"), lead_sla_s=1800
    )
    assert early[("leads_waiting", "live", 0, "global", "all")].value == 2
    assert early[("leads_waiting", "live", 0, "rep", "ana")].value == 1


CHURN_EVENTS = (
    order("2017-01-10T10:00:00+01:00", account="acme", rep="ana"),
    order("2017-01-20T10:00:00+01:00", account="beta", rep="cy"),
    order("2017-02-05T10:00:00+01:00", account="gamma", rep="ana", amount="200.00",
          lines=[line("P1", 2, "100.00", "30.00")]),  # margin 200 - 60 = 140
    churn("2017-02-14T10:00:00+01:00", "acme", rep_id="bob"),
    churn("2017-02-15T10:00:00+01:00", "delta"),  # never ordered: not a customer
    churn("2017-03-03T10:00:00+01:00", "gamma"),
)  # fmt: skip
FEB = "2017-02-01T00:00:00+01:00"


def test_churn_rate_against_customers_at_window_start() -> None:
    results = run(*CHURN_EVENTS)
    # February: customers at start acme, beta; acme churns
    assert get(results, "churn_rate", "month", FEB) == Result(0.5, 1, 2)
    assert get(results, "retention_rate", "month", FEB) == Result(0.5, 1, 2)
    assert get(results, "churn_rate", "month", FEB, "rep", "ana") == Result(
        1.0, 1, 1
    )  # owner, not bob
    assert get(results, "churn_rate", "month", FEB, "rep", "cy") == Result(0.0, 0, 1)
    assert get(results, "churn_rate", "month", FEB, "sector", "tech") == Result(1.0, 1, 1)
    assert ("churn_rate", "month", ts(FEB), "rep", "bob") not in results
    # March: beta and gamma at start (acme churned before); gamma churns
    assert get(results, "churn_rate", "month", MARCH) == Result(0.5, 1, 2)
    # January: nobody at start, no churn: no record
    assert ("churn_rate", "month", ts(Q1), "global", "all") not in results
    # Q1: nobody at start, two customers churn: den 0, value null
    assert get(results, "churn_rate", "quarter", Q1) == Result(None, 2, 0)
    assert get(results, "churned_customers", "month", FEB).value == 2  # counts delta too
    assert get(results, "churned_customers", "month", FEB, "rep", "bob").value == 1
    assert not keys_of(results, "churn_rate", "minute")


def test_ltv_is_revenue_times_margin_ratio_over_churned() -> None:
    results = run(*CHURN_EVENTS)
    # February: revenue 200, margin ratio 140 / 200, churned 1 -> 140
    assert get(results, "ltv", "month", FEB) == Result(Decimal(140), Decimal(140), 1)
    assert get(results, "ltv", "month", FEB, "sector", "tech").value == Decimal(140)
    # retail: beta is a customer at start, no order with known cost in February
    assert get(results, "ltv", "month", FEB, "sector", "retail") == Result(None, None, 0)
    assert get(results, "ltv", "month", MARCH).numerator is None


def test_product_dimension_uses_line_values() -> None:
    results = run(
        order("2017-03-06T10:00:00+01:00", amount="100.00", lines=[
            line("P-ONE", 3, "10.0050", "4.0000"),  # alias of P1: 30.015, cost 12
            line("P1", 1, "5.0000", "1.0000"),  # 5, cost 1
            line("P2", 2, "32.5000", "20.0000"),  # 65, cost 40
        ]),
        order("2017-03-06T11:00:00+01:00", account="beta", amount="57.00", lines=[
            line("P2", 1, "50.0000"),  # no cost: margin unknown
            line("ZZ", 1, "7.0000"),  # unknown product: its raw id
        ]),
        order("2017-03-06T12:00:00+01:00", account="gamma", amount="3.00"),  # no lines
    )  # fmt: skip
    day = "2017-03-06T00:00:00+01:00"
    # P1: 30.015 + 5 = 35.015 -> 35.02 (half to even); P2: 65 + 50
    assert get(results, "revenue", "day", day, "product", "P1").value == Decimal("35.02")
    assert get(results, "revenue", "day", day, "product", "P2").value == Decimal("115.00")
    assert get(results, "revenue", "day", day, "product", "ZZ").value == Decimal("7.00")
    assert get(results, "revenue", "day", day).value == Decimal("160.00")
    assert get(results, "orders", "day", day, "product", "P1").value == 1  # once per product
    assert get(results, "orders", "day", day, "product", "P2").value == 2
    assert get(results, "orders", "day", day).value == 3
    assert {k[4] for k in keys_of(results, "orders", "day") if k[3] == "product"} == {
        "P1",
        "P2",
        "ZZ",
    }
    assert get(results, "average_deal_size", "day", day, "product", "P2") == Result(
        Decimal("57.50"), Decimal("115.00"), 2
    )


def test_margin_only_over_orders_with_known_cost() -> None:
    results = run(
        order("2017-03-06T10:00:00+01:00", amount="100.00", lines=[
            line("P1", 1, "35.0000", "13.0000"), line("P2", 2, "32.5000", "20.0000"),
        ]),  # margin 100 - 53 = 47; P1 35 - 13 = 22; P2 65 - 40 = 25
        order("2017-03-06T11:00:00+01:00", amount="57.00", lines=[
            line("P2", 1, "50.0000"), line("P1", 1, "7.0000", "1.0000"),
        ]),  # one line without cost: the whole order's cost is unknown
    )  # fmt: skip
    day = "2017-03-06T00:00:00+01:00"
    assert get(results, "margin", "day", day).value == Decimal("47.00")
    assert get(results, "margin_ratio", "day", day) == Result(
        Decimal("0.47"), Decimal("47.00"), Decimal("100.00")
    )
    assert get(results, "margin", "day", day, "product", "P1").value == Decimal("22.00")
    assert get(results, "margin_ratio", "day", day, "product", "P2") == Result(
        Decimal(25) / Decimal(65), Decimal("25.00"), Decimal("65.00")
    )
    assert get(results, "revenue", "day", day).value == Decimal("157.00")


def lost(at: str, rep: str, **kw: Any) -> Message:
    return msg("opportunity.lost", at, opportunity_id=f"op-{next(_ids)}", rep_id=rep, **kw)


def test_win_rate_counts_orders_and_losses_by_their_own_time() -> None:
    results = run(
        order("2017-03-06T10:00:00+01:00", rep="ana", lines=[line("P1", 1, "100.0000")]),
        order("2017-03-06T11:00:00+01:00", rep="cy"),
        lost("2017-03-06T12:00:00+01:00", "ana", product_id="P-ONE"),
        lost("2017-03-06T13:00:00+01:00", "bob"),
        lost("2017-03-07T09:00:00+01:00", "ana"),  # another day
    )
    day = "2017-03-06T00:00:00+01:00"
    assert get(results, "win_rate", "day", day) == Result(0.5, 2, 4)
    assert get(results, "win_rate", "day", day, "rep", "ana") == Result(0.5, 1, 2)
    assert get(results, "win_rate", "day", day, "rep", "bob") == Result(0.0, 0, 1)
    assert get(results, "win_rate", "day", day, "product", "P1") == Result(0.5, 1, 2)
    assert get(results, "win_rate", "day", day, "team", "North") == Result(1 / 3, 1, 3)
    assert get(results, "win_rate", "month", MARCH) == Result(0.4, 2, 5)


def test_nps_promoters_minus_detractors() -> None:
    scores = [10, 9, 8, 7, 6, 0, 3]  # 2 promoters, 3 detractors, 7 answers
    results = run(*(
        msg("nps.answered", "2017-03-06T10:00:00+01:00", account_id="beta", score=s) for s in scores
    ))  # fmt: skip
    day = "2017-03-06T00:00:00+01:00"
    assert get(results, "nps", "day", day) == Result(-100 / 7, -100, 7)
    assert get(results, "nps", "day", day, "sector", "retail").denominator == 7
    assert ("nps", "day", ts(day), "region", "Nice") in results  # no rep: the account's region


def spend(at: str, channel: str, amount: str) -> Message:
    return msg("spend.recorded", at, channel=channel, amount=amount, currency="EUR",
               period={"start": "2017-03-01", "end": "2017-03-07"})  # fmt: skip


def test_cac_is_spend_over_new_customers() -> None:
    results = run(
        spend("2017-03-09T06:00:00+01:00", "paid_search", "2500.00"),
        spend("2017-03-09T06:00:00+01:00", "web", "500.00"),
        order("2017-03-09T10:00:00+01:00", account="acme", channel="paid_search"),
        order("2017-03-09T11:00:00+01:00", account="acme", channel="paid_search"),  # not new
        order("2017-03-09T12:00:00+01:00", account="beta", channel="web"),
        order("2017-03-09T13:00:00+01:00", account="gamma"),  # new, no channel
        spend("2017-03-09T14:00:00+01:00", "social", "100.00"),  # no new customer: null
    )
    day = "2017-03-09T00:00:00+01:00"
    # 3100 of spend, 3 new customers (acme, beta, gamma)
    assert get(results, "cac", "day", day) == Result(Decimal("3100.00") / 3, Decimal("3100.00"), 3)
    assert get(results, "cac", "day", day, "channel", "paid_search") == Result(
        Decimal(2500), Decimal("2500.00"), 1
    )
    assert get(results, "cac", "day", day, "channel", "web") == Result(
        Decimal(500), Decimal("500.00"), 1
    )
    assert get(results, "cac", "day", day, "channel", "social") == Result(
        None, Decimal("100.00"), 0
    )


def test_revenue_per_rep_counts_distinct_reps_with_any_event() -> None:
    results = run(
        order("2017-03-06T10:00:00+01:00", rep="ana", amount="100.00"),
        call("2017-03-06T10:30:00+01:00", "ana"),
        email("2017-03-06T11:00:00+01:00", "bob", account_id="acme"),
        order("2017-03-06T12:00:00+01:00", rep="cy", account="beta", amount="300.00"),
        msg("nps.answered", "2017-03-06T13:00:00+01:00", account_id="acme", score=9),  # no rep
    )
    day = "2017-03-06T00:00:00+01:00"
    assert get(results, "revenue_per_rep", "day", day) == Result(
        Decimal(400) / 3, Decimal("400.00"), 3
    )
    assert get(results, "revenue_per_rep", "day", day, "team", "North") == Result(
        Decimal(50), Decimal("100.00"), 2
    )
    assert get(results, "revenue_per_rep", "day", day, "team", "South") == Result(
        Decimal(300), Decimal("300.00"), 1
    )
    assert get(results, "revenue_per_rep", "day", day, "region", "Lyon") == Result(
        Decimal(0), Decimal("0.00"), 1
    )
    assert not [k for k in results if k[0] == "revenue_per_rep" and k[3] == "rep"]


def test_target_attainment_and_pacing_for_a_month() -> None:
    results = run(
        order("2017-03-10T10:00:00+01:00", rep="ana", amount="250.00"),
        order("2017-03-20T10:00:00+01:00", rep="bob", amount="750.00"),
        now=datetime.fromisoformat("2017-03-16T00:00:00+01:00"),
    )
    assert get(results, "target_attainment", "month", MARCH, "rep", "ana") == Result(
        Decimal("0.25"), Decimal("250.00"), Decimal("1000.00")
    )
    assert get(results, "target_attainment", "month", MARCH).value == Decimal("0.25")  # 1000 / 4000
    assert get(results, "target_attainment", "month", MARCH, "team", "North") == Result(
        None, Decimal("1000.00"), None
    )
    assert get(results, "target_attainment", "quarter", Q1, "team", "North").value == Decimal(1) / 3
    assert not keys_of(results, "target_attainment", "day")
    # 15 days of March elapsed out of 31 days less the DST hour: 360 h / 743 h
    pacing = get(results, "target_pacing", "month", MARCH, "rep", "ana")
    assert pacing.numerator == Decimal("250.00")
    assert pacing.denominator == Decimal(1000) * 360 / 743
    assert get(results, "target_pacing", "month", MARCH, "rep", "bob") == Result(
        None, Decimal("750.00"), None
    )
    assert math.isclose(float(pacing.value or 0), 0.25 * 743 / 360, rel_tol=1e-12)


def test_sales_cycle_average_and_p90() -> None:
    messages = [
        msg(
            "opportunity.opened",
            "2017-03-01T12:00:00+01:00",
            opportunity_id=f"opp{k}",
            rep_id="ana",
        )
        for k in range(1, 11)
    ]
    # cycles of 1..10 days
    messages += [
        order(f"2017-03-{1 + k:02d}T12:00:00+01:00", opportunity_id=f"opp{k}") for k in range(1, 11)
    ]
    messages.append(
        order("2017-03-19T12:00:00+01:00", opportunity_id="after")
    )  # opened after: no cycle
    messages.append(
        msg("opportunity.opened", "2017-03-20T12:00:00+01:00", opportunity_id="after", rep_id="ana")
    )
    messages.append(order("2017-03-20T13:00:00+01:00", opportunity_id="unknown"))
    results = run(*messages)
    assert get(results, "sales_cycle_days", "month", MARCH) == Result(5.5, 55.0, 10)
    # sorted(1..10)[floor(0.9 * 9)] = sorted[8] = 9
    assert get(results, "sales_cycle_days_p90", "month", MARCH) == Result(9.0, None, 10)


def test_rolling_windows_merge_minute_buckets() -> None:
    results = run(
        call("2017-03-06T09:59:00+01:00", outcome="no_answer"),
        call("2017-03-06T10:00:00+01:00"),
        call("2017-03-06T10:05:00+01:00", outcome="voicemail"),
        call("2017-03-06T10:14:00+01:00"),
        call("2017-03-06T10:15:00+01:00", "bob"),
        order("2017-03-06T10:15:00+01:00", rep="cy", amount="10.00"),
    )
    at = datetime.fromisoformat("2017-03-06T10:14:30+01:00")  # buckets 10:00 .. 10:14
    assert rolling(results, "calls", "15m", at, "global", "all") == Result(3, 3, None)
    assert rolling(results, "call_connect_rate", "15m", at, "global", "all") == Result(2 / 3, 2, 3)
    later = datetime.fromisoformat("2017-03-06T10:15:00+01:00")  # buckets 10:01 .. 10:15
    assert rolling(results, "calls", "15m", later, "rep", "ana") == Result(2, 2, None)
    assert rolling(results, "calls", "1h", later, "global", "all") == Result(5, 5, None)
    # distinct reps over the hour: ana, bob, cy (not 5 per-minute reps added up)
    assert rolling(results, "revenue_per_rep", "1h", later, "global", "all").denominator == 3
    assert rolling(results, "calls", "15m", at, "rep", "nobody") == Result(None, None, None)


def test_rolling_p90_uses_raw_values() -> None:
    messages: list[Message] = []
    for k in range(1, 12):  # 11 leads answered after k minutes, touches in different buckets
        messages.append(lead(f"2017-03-06T09:{k:02d}:00+01:00", f"R{k}", rep_id="ana"))
        messages.append(call(f"2017-03-06T09:{2 * k:02d}:00+01:00", lead_id=f"R{k}"))
    results = run(*messages)
    at = datetime.fromisoformat("2017-03-06T09:30:00+01:00")
    # sorted(60..660)[floor(0.9 * 10)] = sorted[9] = 600
    assert rolling(results, "lead_response_seconds_p90", "1h", at, "global", "all") == Result(
        600.0, None, 11
    )


def test_lateness_respects_the_horizon_settings() -> None:
    first = order("2017-03-06T10:20:00+01:00", amount="2.00")
    then = order("2017-03-06T10:05:00+01:00", amount="4.00")
    wide = run(first, then, horizon_minute_s=3600)
    assert ("revenue", "minute", ts("2017-03-06T10:05:00+01:00"), "global", "all") in wide
    narrow = run(first, then)
    assert ("revenue", "minute", ts("2017-03-06T10:05:00+01:00"), "global", "all") not in narrow


@pytest.mark.parametrize("kind", ["15m", "1h", "24h"])
def test_rolling_refuses_calendar_only_kpis(kind: str) -> None:
    results = run(*CHURN_EVENTS)
    with pytest.raises(ValueError, match="minute"):
        rolling(results, "churn_rate", kind, datetime.fromisoformat(FEB), "global", "all")


def test_quotes_cancellations_and_complaints() -> None:
    at = "2017-03-06T10:00:00+01:00"
    results = run(
        msg(
            "quote.sent",
            at,
            quote_id="q1",
            account_id="acme",
            rep_id="ana",
            amount="500.00",
            currency="EUR",
        ),
        msg(
            "quote.sent",
            at,
            quote_id="q2",
            account_id="beta",
            rep_id="bob",
            amount="300.00",
            currency="EUR",
        ),
        order(at, account="acme", rep="ana", amount="400.00", quote_id="q1"),
        order(at, account="beta", rep="cy", amount="100.00"),  # no quote
        msg(
            "order.cancelled",
            at,
            account_id="acme",
            rep_id="ana",
            amount="150.00",
            currency="EUR",
            reason="x",
        ),
        msg("order.cancelled", at, account_id="beta", amount="20.00", currency="EUR", reason="x"),
        msg("complaint.filed", at, complaint_id="k1", account_id="acme", reason="x"),
        msg("complaint.filed", at, complaint_id="k2", account_id="beta", rep_id="cy", reason="x"),
    )
    day = "2017-03-06T00:00:00+01:00"
    assert get(results, "quotes_sent", "day", day).value == 2
    assert get(results, "quote_value", "day", day).value == Decimal("800.00")
    assert get(results, "quote_value", "day", day, "sector", "retail").value == Decimal("300.00")
    assert get(results, "quote_conversion_rate", "day", day) == Result(0.5, 1, 2)
    assert get(results, "quote_conversion_rate", "day", day, "rep", "bob") == Result(0.0, 0, 1)
    assert ("quote_conversion_rate", "day", ts(day), "rep", "cy") not in results
    # 400 + 100 - 150 - 20
    assert get(results, "net_revenue", "day", day).value == Decimal("330.00")
    assert get(results, "net_revenue", "day", day, "rep", "ana").value == Decimal("250.00")
    # cy's order (Nice) and beta's rep-less cancellation (account region Nice)
    assert get(results, "net_revenue", "day", day, "region", "Nice").value == Decimal("80.00")
    assert get(results, "cancellations", "day", day).value == 2
    assert get(results, "cancelled_revenue", "day", day).value == Decimal("170.00")
    assert get(results, "complaint_ratio", "day", day) == Result(1.0, 2, 2)
    assert get(results, "complaint_ratio", "day", day, "rep", "ana") == Result(0.0, 0, 1)
    assert get(results, "complaint_ratio", "day", day, "region", "Lille") == Result(None, 1, 0)
    assert get(results, "complaints", "day", day, "sector", "tech").value == 1


def test_customer_boundaries_at_a_window_start() -> None:
    results = run(
        order("2017-02-10T10:00:00+01:00", account="acme"),
        churn("2017-03-01T00:00:00+01:00", "acme"),  # at March's start: still a customer then
        order(
            "2017-04-01T00:00:00+02:00", account="beta", rep="cy"
        ),  # first order at April's start
        order("2017-05-02T10:00:00+02:00", account="gamma"),
    )
    assert get(results, "churn_rate", "month", MARCH) == Result(1.0, 1, 1)
    # April: acme churned before, beta's first order is not before the start: no customer
    assert ("churn_rate", "month", ts("2017-04-01T00:00:00+02:00"), "global", "all") not in results
    assert get(results, "churn_rate", "month", "2017-05-01T00:00:00+02:00") == Result(0.0, 0, 1)
    assert get(
        results, "retention_rate", "month", "2017-05-01T00:00:00+02:00", "rep", "cy"
    ) == Result(1.0, 1, 1)
