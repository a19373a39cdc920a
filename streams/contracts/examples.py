"""One realistic, valid example of every published record, as JSON (used in schemas/ and tests).

They tell one story on the simulator's floor (Europe/Paris, EUR): a web lead of Valora
Solutions becomes an order of 4 Pulse Professional licences for rep-007 of team Sud Alpha,
followed by a complaint and an NPS answer; around it, a lost deal, a cancellation, a churn and
a week of paid-search spend. Times carry their offset (+01:00 until the DST change of
2026-03-29, +02:00 after); money is a decimal string.
"""

from __future__ import annotations

from typing import Any


def _event(event_id: str, type_: str, at: str, source: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": type_,
        "occurred_at": at,
        "source": source,
        "schema_version": 1,
        **fields,
    }


EVENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "lead.created": _event(
        "0b6f5a52-6a35-5f43-9d1c-3c1b8f2e7a01", "lead.created", "2026-03-02T09:15:00+01:00",
        "crm", lead_id="lead-4711", account_id="acct-0042", rep_id="rep-007", channel="web",
    ),
    "call.logged": _event(
        "5d2e8c11-94b7-5b0a-8e3f-6a4c2d9b1e02", "call.logged", "2026-03-02T09:32:10.250+01:00",
        "telephony", lead_id="lead-4711", account_id="acct-0042", call_id="call-99812",
        rep_id="rep-007", direction="outbound", outcome="connected", duration_s=312,
    ),
    "email.sent": _event(
        "a7c4f0e9-2b61-5d8e-b1a4-0f9e3c7d5a03", "email.sent", "2026-03-02T10:02:00+01:00",
        "mail", lead_id="lead-4711", email_id="mail-5531", rep_id="rep-007",
    ),
    "meeting.held": _event(
        "c3e9b7d2-5f08-5a6c-9d2b-8e1f4a6c3b04", "meeting.held", "2026-03-04T14:00:00+01:00",
        "crm", account_id="acct-0042", meeting_id="meet-220", rep_id="rep-007", kind="prospect",
    ),
    "opportunity.opened": _event(
        "1f8a6d3c-7e25-5b9f-a0c6-4d2e9b8f1a05", "opportunity.opened",
        "2026-03-04T15:10:00+01:00", "crm", opportunity_id="opp-310", account_id="acct-0042",
        lead_id="lead-4711", rep_id="rep-007", product_id="PLS-PRO", amount="4600.00",
        currency="EUR", channel="web",
    ),
    "opportunity.lost": _event(
        "9b2d4f6a-1c83-5e7d-b5f2-7a3c0e6d9b06", "opportunity.lost", "2026-03-20T11:00:00+01:00",
        "crm", opportunity_id="opp-311", account_id="acct-0077", rep_id="rep-012",
        product_id="BCN-STD", amount="7800.00", currency="EUR", reason="price",
    ),
    "quote.sent": _event(
        "e4a1c8b5-3d97-5f2e-8c6b-2f5d1a9e7c07", "quote.sent", "2026-03-09T16:45:00+01:00",
        "crm", quote_id="quote-88", opportunity_id="opp-310", account_id="acct-0042",
        rep_id="rep-007", amount="4600.00", currency="EUR",
    ),
    "order.placed": _event(
        "6c9e2a7f-8b14-5d3a-9f7e-1b6d4c2a8e08", "order.placed", "2026-03-16T10:20:00+01:00",
        "crm", order_id="order-1201", quote_id="quote-88", opportunity_id="opp-310",
        account_id="acct-0042", rep_id="rep-007", amount="4600.00", currency="EUR",
        lines=[{"product_id": "PLS-PRO", "quantity": 4, "unit_price": "1150.00",
                "unit_cost": "287.50"}],
        channel="web",
    ),
    "order.cancelled": _event(
        "2a5f9c4e-6d31-5b8a-a7d9-5c0e8f3b6a09", "order.cancelled", "2026-03-18T09:00:00+01:00",
        "erp", order_id="order-1188", account_id="acct-0031", rep_id="rep-003",
        amount="1280.00", currency="EUR", reason="budget frozen",
    ),
    "contract.churned": _event(
        "8d3b7e1a-4f62-5c9d-b8e4-9a2f6d1c5b10", "contract.churned", "2026-03-31T17:00:00+02:00",
        "crm", account_id="acct-0019", rep_id="rep-021", amount="12000.00", currency="EUR",
        reason="moved to a competitor",
    ),
    "complaint.filed": _event(
        "f1c6a9d4-2e78-5a3b-9c5f-3e8b7a2d4c11", "complaint.filed", "2026-03-17T11:30:00+01:00",
        "helpdesk", complaint_id="complaint-64", account_id="acct-0042",
        order_id="order-1201", rep_id="rep-007", reason="late delivery",
    ),
    "nps.answered": _event(
        "4e7b2c9a-5a16-5d4f-8b3e-6f1a9c7e2d12", "nps.answered", "2026-03-25T08:05:00+01:00",
        "survey", account_id="acct-0042", rep_id="rep-007", score=9,
    ),
    "spend.recorded": _event(
        "7a1d5e8b-9c43-5f6a-a2d7-8b4e3f9a1c13", "spend.recorded", "2026-03-09T06:00:00+01:00",
        "ads", channel="paid_search", amount="2500.00", currency="EUR",
        period={"start": "2026-03-02", "end": "2026-03-08"},
    ),
}  # fmt: skip
"""Event type -> a valid event of that type."""

REFERENCE_EXAMPLES: dict[str, dict[str, Any]] = {
    "reps": {"rep_id": "rep-007", "name": "Camille Dubois", "team": "Sud Alpha",
             "manager": "Julien Moreau", "region": "Sud", "active": True},
    "products": {"product_id": "PLS-PRO", "name": "Pulse Professional", "series": "Pulse",
                 "list_price": "1150.00", "aliases": ["PULSE-PRO"]},
    "accounts": {"account_id": "acct-0042", "name": "Valora Solutions",
                 "sector": "manufacturing", "region": "Sud", "employees": 240},
    "targets": {"scope": "rep", "key": "rep-007", "period": "2026-03", "amount": "42000.00",
                "currency": "EUR"},
}  # fmt: skip
"""Reference kind (``salespulse ref load KIND``) -> a valid record of that kind."""

KPI_UPDATE_EXAMPLE: dict[str, Any] = {
    "kpi": "win_rate",
    "window": {"kind": "month", "start": "2026-03-01T00:00:00+01:00",
               "end": "2026-04-01T00:00:00+02:00", "tz": "Europe/Paris"},
    "dimension": "rep",
    "key": "rep-007",
    "value": "0.4166666667",
    "numerator": "5",
    "denominator": "12",
    "unit": "ratio",
    "final": False,
    "revision": 17,
    "computed_at": "2026-03-16T10:20:01.250000+01:00",
}  # fmt: skip
"""A KPI update as the worker publishes it on ``kpi.updates``: rep-007's win rate so far in
March, right after the order above (5 won of 12 closed)."""
