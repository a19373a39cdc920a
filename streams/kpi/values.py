"""KPI values from a merged cell: value, numerator and denominator of every KPI (pure).

The rules are docs/kpi-definitions.md. A KPI is reported for a cell when its dimension is
one of the KPI's, the window kind suits it, and at least one of its inputs is present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from streams.kpi import sketch
from streams.kpi.catalog import KPIS
from streams.kpi.cells import Component, count_of, members_of
from streams.kpi.rep_sets import distinct_reps
from streams.kpi.windows import LIVE

CALENDAR = ("day", "week", "month", "quarter")
TARGET_KINDS = ("month", "quarter")
_HUNDRED = Decimal(100)
_MS_PER_S = Decimal(1000)
_MS_PER_DAY = Decimal(86_400_000)


@dataclass(frozen=True)
class Value:
    value: Decimal | None
    numerator: Decimal | None
    denominator: Decimal | None


@dataclass(frozen=True)
class Context:
    """What a cell alone does not know: the customer base, the target, stream time."""

    kind: str
    dimension: str
    start_s: int = 0
    end_s: int = 0
    customers_at_start: int | None = None  # calendar windows: customers at window start
    target_c: int | None = None  # month and quarter windows of a scope with a target
    stream_ms: int | None = None  # current stream time (pacing, leads waiting)
    lead_sla_ms: int = 3_600_000


_PRECISION = Decimal("1e-10")


def decimal_text(value: Decimal | None) -> str | None:
    """A value as the decimal text of records: exact money and counts, ratios to 10 places."""
    if value is None:
        return None
    text = format(value.quantize(_PRECISION).normalize(), "f")
    return "0" if text in ("-0", "") else text


def _ratio(num: Decimal | int | None, den: Decimal | int | None) -> Value:
    if num is None or den is None:
        return Value(None, _dec(num), _dec(den))
    n, d = Decimal(num), Decimal(den)
    return Value(n / d if d else None, n, d)


def _dec(x: Decimal | int | None) -> Decimal | None:
    return None if x is None else Decimal(x)


def _count(n: int | Decimal) -> Value:
    return Value(Decimal(n), Decimal(n), None)


def _money(c: int) -> Decimal:
    return Decimal(c) / _HUNDRED


def _p90(sk: Mapping[str, int], scale: Decimal = Decimal(1)) -> Value:
    q = sketch.quantile(sk, 0.9)
    n = sketch.count(sk)
    return Value(None if q is None else Decimal(repr(q)) * scale, None, Decimal(n))


# KPI id -> components whose presence makes the KPI reported
INPUTS: dict[str, tuple[str, ...]] = {
    "calls": ("calls",),
    "call_connect_rate": ("calls",),
    "emails": ("emails",),
    "meetings": ("meetings",),
    "leads_created": ("leads",),
    "lead_response_seconds": ("resp_n",),
    "lead_response_seconds_p90": ("resp_sk",),
    "leads_waiting": ("open_leads",),
    "quotes_sent": ("quotes",),
    "quote_value": ("quotes",),
    "opportunities_opened": ("opps",),
    "orders": ("orders",),
    "revenue": ("orders",),
    "net_revenue": ("orders", "cancels"),
    "average_deal_size": ("orders",),
    "margin": ("costed_c",),
    "margin_ratio": ("costed_c",),
    "win_rate": ("orders", "lost"),
    "quote_conversion_rate": ("quotes", "quoted"),
    "lead_conversion_rate": ("leads", "lead_conv"),
    "sales_cycle_days": ("cyc_n",),
    "sales_cycle_days_p90": ("cyc_sk",),
    "new_customers": ("new_cust",),
    "revenue_per_rep": ("orders", "reps", "nrep"),
    "target_attainment": ("orders", "reps", "nrep", "quotes", "opps", "lost"),
    "target_pacing": ("orders", "reps", "nrep", "quotes", "opps", "lost"),
    "cancellations": ("cancels",),
    "cancelled_revenue": ("cancels",),
    "churned_customers": ("churned",),
    "churn_rate": ("churn_n", "base", "orders", "churned", "new_cust"),
    "retention_rate": ("churn_n", "base", "orders", "churned", "new_cust"),
    "repeat_purchase_rate": ("orders",),
    "complaints": ("complaints",),
    "complaint_ratio": ("complaints", "orders"),
    "nps": ("nps_n",),
    "cac": ("spend_c", "new_cust"),
    "ltv": ("churn_n",),
}
assert INPUTS.keys() == KPIS.keys(), "every catalogue KPI has its inputs"


def applies(kpi: str, ctx: Context) -> bool:
    """Whether ``kpi`` is reported for cells of this kind and dimension at all."""
    if ctx.dimension not in KPIS[kpi].dimensions:
        return False
    if kpi == "leads_waiting":
        return ctx.kind == LIVE
    if ctx.kind == LIVE:
        return False
    if kpi in ("churn_rate", "retention_rate", "ltv"):
        return ctx.kind in CALENDAR
    if kpi in ("target_attainment", "target_pacing"):
        return ctx.kind in TARGET_KINDS  # without a target: revenue over null
    return True


def _elapsed(ctx: Context) -> Decimal | None:
    if ctx.stream_ms is None or ctx.end_s <= ctx.start_s:
        return None
    done = (Decimal(ctx.stream_ms) / _MS_PER_S - ctx.start_s) / (ctx.end_s - ctx.start_s)
    return min(max(done, Decimal(0)), Decimal(1))


def value_of(kpi: str, cell: Mapping[str, Component], ctx: Context) -> Value:
    """One KPI of a merged cell (call ``applies`` first)."""
    c = lambda name: count_of(cell, name)  # noqa: E731
    rev = _money(c("rev_c"))
    match kpi:
        case "calls" | "emails" | "meetings" | "orders" | "cancellations" | "complaints":
            return _count(c({"cancellations": "cancels"}.get(kpi, kpi)))
        case "churned_customers":
            return _count(c("churned"))
        case "call_connect_rate":
            return _ratio(c("calls_ok"), c("calls"))
        case "leads_created":
            return _count(c("leads"))
        case "lead_response_seconds":
            return _ratio(Decimal(c("resp_ms")) / _MS_PER_S, c("resp_n"))
        case "lead_response_seconds_p90":
            return _p90(members_of(cell, "resp_sk"))
        case "leads_waiting":
            limit = None if ctx.stream_ms is None else ctx.stream_ms - ctx.lead_sla_ms
            open_leads = members_of(cell, "open_leads")
            n = sum(k for t, k in open_leads.items() if limit is not None and int(t) <= limit)
            return _count(n)
        case "quotes_sent":
            return _count(c("quotes"))
        case "quote_value":
            return _count(_money(c("quote_c")))
        case "opportunities_opened":
            return _count(c("opps"))
        case "revenue":
            return _count(rev)
        case "net_revenue":
            return _count(rev - _money(c("cancel_c")))
        case "average_deal_size":
            return _ratio(rev, c("orders"))
        case "margin":
            return _count(_money(c("margin_c")))
        case "margin_ratio":
            return _ratio(_money(c("margin_c")), _money(c("costed_c")))
        case "win_rate":
            return _ratio(c("orders"), c("orders") + c("lost"))
        case "quote_conversion_rate":
            return _ratio(c("quoted"), c("quotes"))
        case "lead_conversion_rate":
            return _ratio(c("lead_conv"), c("leads"))
        case "sales_cycle_days":
            return _ratio(Decimal(c("cyc_ms")) / _MS_PER_DAY, c("cyc_n"))
        case "sales_cycle_days_p90":
            return _p90(members_of(cell, "cyc_sk"))
        case "new_customers":
            return _count(c("new_cust"))
        case "revenue_per_rep":
            return _ratio(rev, distinct_reps(cell))
        case "target_attainment":
            return _ratio(rev, None if ctx.target_c is None else _money(ctx.target_c))
        case "target_pacing":
            elapsed = _elapsed(ctx)
            if ctx.target_c is None or elapsed is None:
                return _ratio(rev, None)
            return _ratio(rev, _money(ctx.target_c) * elapsed)
        case "cancelled_revenue":
            return _count(_money(c("cancel_c")))
        case "churn_rate":
            return _ratio(c("churn_n"), ctx.customers_at_start)
        case "retention_rate":
            base = ctx.customers_at_start
            return _ratio(None if base is None else base - c("churn_n"), base)
        case "repeat_purchase_rate":
            return _ratio(c("repeat"), c("orders"))
        case "complaint_ratio":
            return _ratio(c("complaints"), c("orders"))
        case "nps":
            return _ratio(100 * (c("nps_pro") - c("nps_det")), c("nps_n"))
        case "cac":
            return _ratio(_money(c("spend_c")), c("new_cust"))
        case "ltv":
            costed = c("costed_c")
            if not costed:
                return _ratio(None, c("churn_n"))
            return _ratio(rev * Decimal(c("margin_c")) / Decimal(costed), c("churn_n"))
    raise KeyError(f"unknown KPI {kpi!r}")


def values_of(cell: Mapping[str, Component], ctx: Context) -> dict[str, Value]:
    """Every KPI reported for a merged cell."""
    out: dict[str, Value] = {}
    for kpi, inputs in INPUTS.items():
        if applies(kpi, ctx) and any(name in cell for name in inputs):
            out[kpi] = value_of(kpi, cell, ctx)
    return out
