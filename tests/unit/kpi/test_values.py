"""KPI values from cells: ratios carry numerator and denominator, zero denominators are null."""

from __future__ import annotations

from decimal import Decimal

from streams.kpi.values import Context, applies, value_of, values_of

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
