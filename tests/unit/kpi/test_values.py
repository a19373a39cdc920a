"""KPI values from cells: ratios carry numerator and denominator, zero denominators are null."""

from __future__ import annotations

from decimal import Decimal

from streams.kpi.values import Context, applies, decimal_text, value_of, values_of

DAY = Context(kind="day", dimension="global", start_s=0, end_s=86_400)


def test_ratio_with_zero_denominator_is_null_not_zero() -> None:
    v = value_of("call_connect_rate", {"emails": 3}, DAY)
    assert v.value is None
    assert v.numerator == 0
    assert v.denominator == 0


def test_average_deal_size_is_revenue_over_orders_in_currency_units() -> None:
    v = value_of("average_deal_size", {"orders": 4, "rev_c": 100_050}, DAY)
    assert (v.value, v.numerator, v.denominator) == (Decimal("250.125"), Decimal("1000.50"), 4)


def test_nps_and_churn_rate_use_their_context() -> None:
    nps = value_of("nps", {"nps_n": 4, "nps_pro": 2, "nps_det": 1}, DAY)
    assert nps.value == Decimal(25)
    churn = value_of(
        "churn_rate",
        {"churn_n": 2},
        Context(kind="month", dimension="global", customers_at_start=40),
    )
    assert churn.value == Decimal("0.05")


def test_which_kpis_a_cell_reports() -> None:
    assert not applies("churn_rate", Context(kind="minute", dimension="global"))
    assert not applies("calls", Context(kind="day", dimension="product"))
    assert set(values_of({"calls": 1, "calls_ok": 1}, DAY)) == {"calls", "call_connect_rate"}


# One cell holding every component, each a different number (a numerator taken for a
# denominator, or one component for another, shows), and its expected KPIs worked out by
# hand from the definitions (../shared/design/kpi-catalog.md): (value, numerator,
# denominator) as record texts.
RICH = {
    "calls": 10, "calls_ok": 4, "emails": 7, "meetings": 3, "leads": 8, "resp_n": 2,
    "resp_ms": 90_000, "quotes": 5, "quote_c": 250_000, "opps": 6, "orders": 4,
    "rev_c": 100_050, "cancels": 1, "cancel_c": 20_000, "margin_c": 30_000,
    "costed_c": 80_000, "lost": 2, "quoted": 3, "lead_conv": 2, "cyc_n": 2,
    "cyc_ms": 3 * 86_400_000, "new_cust": 2, "nrep": 3, "churned": 5, "churn_n": 2,
    "repeat": 1, "complaints": 9, "nps_n": 4, "nps_pro": 2, "nps_det": 1, "spend_c": 50_000,
}  # fmt: skip
MONTH = Context(
    kind="month", dimension="global", start_s=0, end_s=1_000, customers_at_start=40,
    target_c=200_000, stream_ms=250_000,
)  # fmt: skip  # a quarter of the window elapsed, a target of 2,000.00
EXPECTED = {
    "calls": ("10", "10", None),
    "call_connect_rate": ("0.4", "4", "10"),
    "emails": ("7", "7", None),
    "meetings": ("3", "3", None),
    "leads_created": ("8", "8", None),
    "lead_response_seconds": ("45", "90", "2"),
    "quotes_sent": ("5", "5", None),
    "quote_value": ("2500", "2500", None),
    "opportunities_opened": ("6", "6", None),
    "orders": ("4", "4", None),
    "revenue": ("1000.5", "1000.5", None),
    "net_revenue": ("800.5", "800.5", None),
    "average_deal_size": ("250.125", "1000.5", "4"),
    "margin": ("300", "300", None),
    "margin_ratio": ("0.375", "300", "800"),
    "win_rate": ("0.6666666667", "4", "6"),
    "quote_conversion_rate": ("0.6", "3", "5"),
    "lead_conversion_rate": ("0.25", "2", "8"),
    "sales_cycle_days": ("1.5", "3", "2"),
    "new_customers": ("2", "2", None),
    "revenue_per_rep": ("333.5", "1000.5", "3"),
    "target_attainment": ("0.50025", "1000.5", "2000"),
    "target_pacing": ("2.001", "1000.5", "500"),
    "cancellations": ("1", "1", None),
    "cancelled_revenue": ("200", "200", None),
    "churned_customers": ("5", "5", None),
    "churn_rate": ("0.05", "2", "40"),
    "retention_rate": ("0.95", "38", "40"),
    "repeat_purchase_rate": ("0.25", "1", "4"),
    "complaints": ("9", "9", None),
    "complaint_ratio": ("2.25", "9", "4"),
    "nps": ("25", "100", "4"),
    "cac": ("250", "500", "2"),
    "ltv": ("187.59375", "375.1875", "2"),
}


def test_every_kpi_of_a_cell_holding_every_component_as_worked_out_by_hand() -> None:
    texts = {}
    for kpi in EXPECTED:
        v = value_of(kpi, RICH, MONTH)
        texts[kpi] = (decimal_text(v.value), decimal_text(v.numerator), decimal_text(v.denominator))
    assert texts == EXPECTED


def test_leads_waiting_counts_the_open_leads_past_the_sla_at_stream_time() -> None:
    live = Context(kind="live", dimension="global", stream_ms=4_000_000, lead_sla_ms=3_600_000)
    cell = {"open_leads": {"100000": 2, "400000": 1, "400001": 4}}  # waiting since (ms)
    assert value_of("leads_waiting", cell, live).value == 3  # 400,000 is at the SLA: counted
    unknown = Context(kind="live", dimension="global")  # no stream time yet: none waits
    assert value_of("leads_waiting", cell, unknown).value == 0
