"""One realistic, valid example of every published record (used in schemas/ and tests)."""

from __future__ import annotations

from typing import Any

_ENVELOPE = {"source": "crm", "schema_version": 1}


def _event(event_id: str, type_: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "occurred_at": at, **_ENVELOPE, **fields}


EVENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "lead.created": _event(
        "lead-4711-created", "lead.created", "2026-03-02T09:15:00+01:00",
        lead_id="lead-4711", account_id="acct-0042", rep_id="rep-007", channel="web",
    ),
    "call.logged": _event(
        "call-99812", "call.logged", "2026-03-02T09:32:10+01:00", call_id="call-99812",
        rep_id="rep-007", lead_id="lead-4711", account_id="acct-0042", direction="outbound",
        outcome="connected", duration_s=312,
    ),
    "email.sent": _event(
        "mail-5531", "email.sent", "2026-03-02T10:02:00+01:00", email_id="mail-5531",
        rep_id="rep-007", lead_id="lead-4711",
    ),
    "meeting.held": _event(
        "meet-220", "meeting.held", "2026-03-04T14:00:00+01:00", meeting_id="meet-220",
        rep_id="rep-007", account_id="acct-0042", kind="prospect",
    ),
    "opportunity.opened": _event(
        "opp-310-opened", "opportunity.opened", "2026-03-04T15:10:00+01:00",
        opportunity_id="opp-310", account_id="acct-0042", lead_id="lead-4711",
        rep_id="rep-007", product_id="GTX Pro", amount="4821.00", currency="EUR",
        channel="web",
    ),
    "opportunity.lost": _event(
        "opp-311-lost", "opportunity.lost", "2026-03-20T11:00:00+01:00",
        opportunity_id="opp-311", account_id="acct-0077", rep_id="rep-012",
        product_id="MG Advanced", amount="3393.00", currency="EUR", reason="price",
    ),
    "quote.sent": _event(
        "quote-88", "quote.sent", "2026-03-09T16:45:00+01:00", quote_id="quote-88",
        opportunity_id="opp-310", account_id="acct-0042", rep_id="rep-007", amount="4600.00",
        currency="EUR",
    ),
    "order.placed": _event(
        "order-1201", "order.placed", "2026-03-16T10:20:00+01:00", order_id="order-1201",
        quote_id="quote-88", opportunity_id="opp-310", account_id="acct-0042",
        rep_id="rep-007", amount="4600.00", currency="EUR", channel="web",
        lines=[{"product_id": "GTX Pro", "quantity": 1, "unit_price": "4600.00",
                "unit_cost": "2100.00"}],
    ),
    "order.cancelled": _event(
        "cancel-17", "order.cancelled", "2026-03-18T09:00:00+01:00", order_id="order-1188",
        account_id="acct-0031", rep_id="rep-003", amount="1054.00", currency="EUR",
        reason="budget frozen",
    ),
    "contract.churned": _event(
        "churn-5", "contract.churned", "2026-03-31T17:00:00+02:00", account_id="acct-0019",
        rep_id="rep-021", amount="12000.00", currency="EUR", reason="moved to a competitor",
    ),
    "complaint.filed": _event(
        "complaint-64", "complaint.filed", "2026-03-17T11:30:00+01:00",
        complaint_id="complaint-64", account_id="acct-0042", order_id="order-1201",
        rep_id="rep-007", reason="late delivery",
    ),
    "nps.answered": _event(
        "nps-930", "nps.answered", "2026-03-25T08:05:00+01:00", account_id="acct-0042",
        rep_id="rep-007", score=9,
    ),
    "spend.recorded": _event(
        "spend-2026-w10-web", "spend.recorded", "2026-03-09T00:00:00+01:00", channel="web",
        amount="2500.00", currency="EUR", period={"start": "2026-03-02", "end": "2026-03-08"},
    ),
}  # fmt: skip

REFERENCE_EXAMPLES: dict[str, dict[str, Any]] = {
    "reps": {"rep_id": "rep-007", "name": "Anna Snelling", "team": "Dustin Brinkmann",
             "manager": "Dustin Brinkmann", "region": "Central", "active": True},
    "products": {"product_id": "GTX Pro", "name": "GTX Pro", "series": "GTX",
                 "list_price": "4821.00", "aliases": ["GTXPro"]},
    "accounts": {"account_id": "acct-0042", "name": "Acme Corporation", "sector": "technology",
                 "region": "United States", "employees": 2822},
    "targets": {"scope": "rep", "key": "rep-007", "period": "2026-03", "amount": "60000.00",
                "currency": "EUR"},
}  # fmt: skip

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
