"""streams.observability.kpi_gauges: metric names, the key cap with ``other``, and the exported samples."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from streams.kpi.catalog import KPIS
from streams.kpi.values import Context, values_of
from streams.observability.kpi_gauges import OTHER, CurrentCell, KpiCollector, fold, metric_name


@pytest.mark.parametrize(
    ("kpi", "name"),
    [
        ("calls", "salespulse_calls"),
        ("revenue", "salespulse_revenue_eur"),
        ("average_deal_size", "salespulse_average_deal_size_eur"),
        ("win_rate", "salespulse_win_rate_ratio"),
        ("margin_ratio", "salespulse_margin_ratio"),
        ("lead_response_seconds", "salespulse_lead_response_seconds"),
        ("lead_response_seconds_p90", "salespulse_lead_response_p90_seconds"),
        ("sales_cycle_days", "salespulse_sales_cycle_seconds"),
        ("sales_cycle_days_p90", "salespulse_sales_cycle_p90_seconds"),
        ("nps", "salespulse_nps_score"),
        ("leads_waiting", "salespulse_leads_waiting"),
    ],
)
def test_names_follow_prometheus_conventions(kpi: str, name: str) -> None:
    assert metric_name(KPIS[kpi], "EUR") == name


def test_every_kpi_has_its_own_metric_name() -> None:
    names = [metric_name(kpi, "USD") for kpi in KPIS.values()]
    assert len(set(names)) == len(names)
    assert "salespulse_revenue_usd" in names


def rep_cell(key: str, kind: str, orders: int, lost: int, revenue_c: int) -> CurrentCell:
    cell = {"orders": orders, "lost": lost, "rev_c": revenue_c}
    ctx = Context(kind=kind, dimension="rep")
    return CurrentCell(kind, "rep", key, f"Rep {key}", values_of(cell, ctx), cell, ctx)


def test_keys_beyond_the_cap_fold_into_other_as_one_whole() -> None:
    cells = [
        rep_cell("a", "month", orders=1, lost=0, revenue_c=900_00),
        rep_cell("b", "month", orders=1, lost=3, revenue_c=100_00),
        rep_cell("c", "month", orders=3, lost=0, revenue_c=300_00),
    ]
    folded = {c.key: c for c in fold(cells, cap=1)}
    assert set(folded) == {"a", OTHER}  # a has the most revenue this month
    other = folded[OTHER]
    # The win rate of b and c together (4 won of 7), not the mean of 1/4 and 3/3 (0.625):
    assert other.values["win_rate"].value == Decimal(4) / Decimal(7)
    assert other.values["revenue"].value == Decimal(400)
    assert other.name == ""


def test_the_same_keys_are_kept_in_every_window() -> None:
    cells = [
        rep_cell("a", "month", 1, 0, 900_00),
        rep_cell("b", "month", 1, 0, 100_00),
        rep_cell("b", "day", 5, 0, 500_00),  # b leads today, a leads the month
        rep_cell("a", "day", 1, 0, 100_00),
    ]
    kept = {(c.kind, c.key) for c in fold(cells, cap=1)}
    assert kept == {("month", "a"), ("month", OTHER), ("day", "a"), ("day", OTHER)}


def samples(cells: list[CurrentCell], cap: int = 50) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda key_cap: fold(cells, key_cap), "EUR", cap))
    out = {}
    for family in registry.collect():
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_gauges_and_their_summable_parts() -> None:
    got = samples([rep_cell("a", "day", orders=3, lost=1, revenue_c=1234_56)])
    labels = (("dimension", "rep"), ("key", "a"), ("name", "Rep a"), ("window", "day"))
    assert got[("salespulse_revenue_eur", labels)] == pytest.approx(1234.56)
    assert got[("salespulse_win_rate_ratio", labels)] == pytest.approx(0.75)
    assert got[("salespulse_orders", labels)] == 3
    parts = (("dimension", "rep"), ("key", "a"), ("kpi", "win_rate"), ("window", "day"))
    assert got[("salespulse_kpi_numerator", parts)] == 3
    assert got[("salespulse_kpi_denominator", parts)] == 4
    assert not [k for k in got if k[0] == "salespulse_calls"]  # no input, no series


def test_days_are_exported_in_seconds() -> None:
    ctx = Context(kind="day", dimension="global")
    cell = {"cyc_n": 2, "cyc_ms": 3 * 86_400_000}  # two deals, 3 days of cycle in all
    got = samples([CurrentCell("day", "global", "all", "", values_of(cell, ctx), cell, ctx)])
    labels = (("dimension", "global"), ("key", "all"), ("name", ""), ("window", "day"))
    assert got[("salespulse_sales_cycle_seconds", labels)] == pytest.approx(1.5 * 86_400)
    parts = (
        ("dimension", "global"),
        ("key", "all"),
        ("kpi", "sales_cycle_days"),
        ("window", "day"),
    )
    assert got[("salespulse_kpi_numerator", parts)] == pytest.approx(3 * 86_400)
    assert got[("salespulse_kpi_denominator", parts)] == 2
