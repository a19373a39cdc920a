"""The KPI catalogue of ../shared/design/kpi-catalog.md as data: id, unit, meaning, shape.

``shape`` says how the value is built, so that numerators and denominators can be merged
across windows and dimensions: ``count`` and ``sum`` add up; ``ratio`` is numerator /
denominator (null when the denominator is zero); ``average`` is sum / count; ``p90`` comes
from a mergeable sketch; ``live`` is a point-in-time gauge.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Shape(StrEnum):
    COUNT = "count"
    SUM = "sum"
    RATIO = "ratio"
    AVERAGE = "average"
    P90 = "p90"
    LIVE = "live"


ALL_DIMENSIONS = ("global", "rep", "team", "region", "product", "channel", "sector")
_REP = ("global", "rep", "team", "region")
_ACCOUNT = ("global", "rep", "team", "region", "sector")
_ORDER = ALL_DIMENSIONS


MONEY = "currency"
"""The unit of money KPIs in the catalogue: the configured reporting currency in records."""


def unit_of(kpi: str, currency: str) -> str:
    """The unit a record of ``kpi`` states: ``currency`` (ISO 4217) for money, else as catalogued."""
    unit = KPIS[kpi].unit
    return currency if unit == MONEY else unit


@dataclass(frozen=True)
class Kpi:
    id: str
    unit: str
    shape: Shape
    description: str
    dimensions: tuple[str, ...]


def _kpis() -> tuple[Kpi, ...]:
    money = MONEY  # the reporting currency, SALESPULSE_CURRENCY: see unit_of
    rows = [
        # Activity
        ("calls", "count", Shape.COUNT, "Calls logged.", _REP),
        ("call_connect_rate", "ratio", Shape.RATIO, "Connected calls / calls.", _REP),
        ("emails", "count", Shape.COUNT, "Emails sent.", _REP),
        ("meetings", "count", Shape.COUNT, "Meetings held.", _REP),
        ("leads_created", "count", Shape.COUNT, "Leads created.", ("global", "rep", "team", "region", "channel")),
        ("lead_response_seconds", "seconds", Shape.AVERAGE, "Average time from lead creation to its first call, email or meeting, in the window of the first touch.", _REP),
        ("lead_response_seconds_p90", "seconds", Shape.P90, "90th percentile of lead response time.", _REP),
        ("leads_waiting", "count", Shape.LIVE, "Leads older than the SLA with no touch yet.", ("global", "rep", "team", "region", "channel")),
        ("quotes_sent", "count", Shape.COUNT, "Quotes sent.", _ACCOUNT),
        ("quote_value", money, Shape.SUM, "Sum of quote amounts.", _ACCOUNT),
        ("opportunities_opened", "count", Shape.COUNT, "Opportunities opened.", _ORDER),
        # Sales
        ("orders", "count", Shape.COUNT, "Orders placed (won deals).", _ORDER),
        ("revenue", money, Shape.SUM, "Sum of order amounts (bookings).", _ORDER),
        ("net_revenue", money, Shape.SUM, "Revenue minus amounts cancelled in the window.", _ACCOUNT),
        ("average_deal_size", money, Shape.RATIO, "Revenue / orders (panier moyen).", _ORDER),
        ("margin", money, Shape.SUM, "Sum of amount - cost over orders whose cost is known.", _ORDER),
        ("margin_ratio", "ratio", Shape.RATIO, "Margin / revenue of the orders whose cost is known.", _ORDER),
        ("win_rate", "ratio", Shape.RATIO, "Won / (won + lost) for opportunities closed in the window (taux de conversion).", _ORDER),
        ("quote_conversion_rate", "ratio", Shape.RATIO, "Orders that reference a quote / quotes sent.", _ACCOUNT),
        ("lead_conversion_rate", "ratio", Shape.RATIO, "Leads whose account placed a first order / leads created, by the lead's window.", ("global", "rep", "team", "region", "channel")),
        ("sales_cycle_days", "days", Shape.AVERAGE, "Average close time - open time (or lead creation) of won opportunities.", _ORDER),
        ("sales_cycle_days_p90", "days", Shape.P90, "90th percentile of the sales cycle.", _ORDER),
        ("new_customers", "count", Shape.COUNT, "Accounts whose first order falls in the window.", _ORDER),
        ("revenue_per_rep", money, Shape.RATIO, "Revenue / reps with at least one event in the window.", ("global", "team", "region")),
        ("target_attainment", "ratio", Shape.RATIO, "Revenue / target of the scope and period.", ("global", "rep", "team")),
        ("target_pacing", "ratio", Shape.RATIO, "Attainment / elapsed fraction of the period.", ("global", "rep", "team")),
        # Retention
        ("cancellations", "count", Shape.COUNT, "Orders cancelled.", _ACCOUNT),
        ("cancelled_revenue", money, Shape.SUM, "Sum of cancelled amounts.", _ACCOUNT),
        ("churned_customers", "count", Shape.COUNT, "Contracts churned.", _ACCOUNT),
        ("churn_rate", "ratio", Shape.RATIO, "Churned customers / active customers at window start (taux d'attrition).", _ACCOUNT),
        ("retention_rate", "ratio", Shape.RATIO, "1 - churn rate.", _ACCOUNT),
        ("repeat_purchase_rate", "ratio", Shape.RATIO, "Orders from accounts that had ordered before / orders.", _ORDER),
        ("complaints", "count", Shape.COUNT, "Complaints filed.", _ACCOUNT),
        ("complaint_ratio", "ratio", Shape.RATIO, "Complaints / orders.", _ACCOUNT),
        ("nps", "score", Shape.RATIO, "% promoters (9-10) - % detractors (0-6), from -100 to 100.", _ACCOUNT),
        ("cac", money, Shape.RATIO, "Marketing spend / new customers.", ("global", "channel")),
        ("ltv", money, Shape.RATIO, "Average monthly revenue per customer x margin ratio / monthly churn rate.", ("global", "region", "sector")),
    ]  # fmt: skip
    return tuple(Kpi(*row) for row in rows)


KPIS: dict[str, Kpi] = {kpi.id: kpi for kpi in _kpis()}
