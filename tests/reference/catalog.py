"""What each KPI is published for (dimensions) and how its record is built (shape).

Written from docs/kpi-definitions.md, not taken from ``streams.kpi``.
"""

from __future__ import annotations

REP_DIMS = ("global", "rep", "team", "region")
LEAD_DIMS = (*REP_DIMS, "channel")
ACCOUNT_DIMS = (*REP_DIMS, "sector")
ALL_DIMS = ("global", "rep", "team", "region", "product", "channel", "sector")

COUNT, SUM, RATIO, P90, LIVE = "count", "sum", "ratio", "p90", "live"

_TABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "calls": (COUNT, REP_DIMS),
    "call_connect_rate": (RATIO, REP_DIMS),
    "emails": (COUNT, REP_DIMS),
    "meetings": (COUNT, REP_DIMS),
    "leads_created": (COUNT, LEAD_DIMS),
    "lead_response_seconds": (RATIO, REP_DIMS),
    "lead_response_seconds_p90": (P90, REP_DIMS),
    "leads_waiting": (LIVE, LEAD_DIMS),
    "quotes_sent": (COUNT, ACCOUNT_DIMS),
    "quote_value": (SUM, ACCOUNT_DIMS),
    "opportunities_opened": (COUNT, ALL_DIMS),
    "orders": (COUNT, ALL_DIMS),
    "revenue": (SUM, ALL_DIMS),
    "net_revenue": (SUM, ACCOUNT_DIMS),
    "average_deal_size": (RATIO, ALL_DIMS),
    "margin": (SUM, ALL_DIMS),
    "margin_ratio": (RATIO, ALL_DIMS),
    "win_rate": (RATIO, ALL_DIMS),
    "quote_conversion_rate": (RATIO, ACCOUNT_DIMS),
    "lead_conversion_rate": (RATIO, LEAD_DIMS),
    "sales_cycle_days": (RATIO, ALL_DIMS),
    "sales_cycle_days_p90": (P90, ALL_DIMS),
    "new_customers": (COUNT, ALL_DIMS),
    "revenue_per_rep": (RATIO, ("global", "team", "region")),
    "target_attainment": (RATIO, ("global", "rep", "team")),
    "target_pacing": (RATIO, ("global", "rep", "team")),
    "cancellations": (COUNT, ACCOUNT_DIMS),
    "cancelled_revenue": (SUM, ACCOUNT_DIMS),
    "churned_customers": (COUNT, ACCOUNT_DIMS),
    "churn_rate": (RATIO, ACCOUNT_DIMS),
    "retention_rate": (RATIO, ACCOUNT_DIMS),
    "repeat_purchase_rate": (RATIO, ALL_DIMS),
    "complaints": (COUNT, ACCOUNT_DIMS),
    "complaint_ratio": (RATIO, ACCOUNT_DIMS),
    "nps": (RATIO, ACCOUNT_DIMS),
    "cac": (RATIO, ("global", "channel")),
    "ltv": (RATIO, ("global", "region", "sector")),
}

SHAPES: dict[str, str] = {kpi: shape for kpi, (shape, _) in _TABLE.items()}
DIMENSIONS: dict[str, tuple[str, ...]] = {kpi: dims for kpi, (_, dims) in _TABLE.items()}
CALENDAR_ONLY = frozenset({"churn_rate", "retention_rate", "ltv"})
"""Calendar windows only (no minute buckets)."""
MONTH_QUARTER_ONLY = frozenset({"target_attainment", "target_pacing"})
"""Month and quarter windows only (targets exist for those periods)."""
