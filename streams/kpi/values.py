"""KPI values from a merged cell: value, numerator and denominator of every KPI (pure).

The rules are docs/kpi-definitions.md. A KPI is reported for a cell when its dimension is
one of the KPI's, the window kind suits it, and at least one of its inputs is present.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from typing import NamedTuple

from streams.kpi import sketch
from streams.kpi.catalog import KPIS
from streams.kpi.cells import Component, count_of, members_of
from streams.kpi.rep_sets import distinct_reps
from streams.kpi.windows import LIVE

CALENDAR = ("day", "week", "month", "quarter")
TARGET_KINDS = ("month", "quarter")
_MS_PER_S = Decimal(1000)
_MS_PER_DAY = Decimal(86_400_000)


class Value(NamedTuple):
    """One KPI of a cell (a tuple: a publisher flush builds hundreds of thousands)."""

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


@lru_cache(maxsize=16_384)
def decimal_text(value: Decimal | None) -> str | None:
    """A value as the decimal text of records: exact money and counts, ratios to 10 places.
    Equal values give the same text (``normalize``), so texts are cached by value: counts
    and amounts repeat across a flush's cells."""
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
    return Decimal(c).scaleb(-2)  # exact: cents to units


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


def _leads_waiting(cell: Mapping[str, Component], ctx: Context) -> Value:
    if ctx.stream_ms is None:
        return _count(0)
    limit = ctx.stream_ms - ctx.lead_sla_ms
    return _count(sum(k for t, k in members_of(cell, "open_leads").items() if int(t) <= limit))


def _target_pacing(cell: Mapping[str, Component], ctx: Context) -> Value:
    elapsed = _elapsed(ctx)
    if ctx.target_c is None or elapsed is None:
        return _ratio(_rev(cell), None)
    return _ratio(_rev(cell), _money(ctx.target_c) * elapsed)


def _retention_rate(cell: Mapping[str, Component], ctx: Context) -> Value:
    base = ctx.customers_at_start
    return _ratio(None if base is None else base - count_of(cell, "churn_n"), base)


def _ltv(cell: Mapping[str, Component], ctx: Context) -> Value:
    costed = count_of(cell, "costed_c")
    if not costed:
        return _ratio(None, count_of(cell, "churn_n"))
    ltv = _rev(cell) * Decimal(count_of(cell, "margin_c")) / Decimal(costed)
    return _ratio(ltv, count_of(cell, "churn_n"))


def _rev(cell: Mapping[str, Component]) -> Decimal:
    return _money(count_of(cell, "rev_c"))


def _counted(name: str) -> Callable[[Mapping[str, Component], Context], Value]:
    return lambda cell, ctx: _count(count_of(cell, name))


def _money_counted(name: str) -> Callable[[Mapping[str, Component], Context], Value]:
    return lambda cell, ctx: _count(_money(count_of(cell, name)))


def _ratio_of(num: str, den: str) -> Callable[[Mapping[str, Component], Context], Value]:
    return lambda cell, ctx: _ratio(count_of(cell, num), count_of(cell, den))


# KPI id -> its value from a merged cell and its context (docs/kpi-definitions.md)
RULES: dict[str, Callable[[Mapping[str, Component], Context], Value]] = {
    "calls": _counted("calls"),
    "call_connect_rate": _ratio_of("calls_ok", "calls"),
    "emails": _counted("emails"),
    "meetings": _counted("meetings"),
    "leads_created": _counted("leads"),
    "lead_response_seconds": lambda cell, ctx: _ratio(
        Decimal(count_of(cell, "resp_ms")) / _MS_PER_S, count_of(cell, "resp_n")
    ),
    "lead_response_seconds_p90": lambda cell, ctx: _p90(members_of(cell, "resp_sk")),
    "leads_waiting": _leads_waiting,
    "quotes_sent": _counted("quotes"),
    "quote_value": _money_counted("quote_c"),
    "opportunities_opened": _counted("opps"),
    "orders": _counted("orders"),
    "revenue": lambda cell, ctx: _count(_rev(cell)),
    "net_revenue": lambda cell, ctx: _count(_rev(cell) - _money(count_of(cell, "cancel_c"))),
    "average_deal_size": lambda cell, ctx: _ratio(_rev(cell), count_of(cell, "orders")),
    "margin": _money_counted("margin_c"),
    "margin_ratio": lambda cell, ctx: _ratio(
        _money(count_of(cell, "margin_c")), _money(count_of(cell, "costed_c"))
    ),
    "win_rate": lambda cell, ctx: _ratio(
        count_of(cell, "orders"), count_of(cell, "orders") + count_of(cell, "lost")
    ),
    "quote_conversion_rate": _ratio_of("quoted", "quotes"),
    "lead_conversion_rate": _ratio_of("lead_conv", "leads"),
    "sales_cycle_days": lambda cell, ctx: _ratio(
        Decimal(count_of(cell, "cyc_ms")) / _MS_PER_DAY, count_of(cell, "cyc_n")
    ),
    "sales_cycle_days_p90": lambda cell, ctx: _p90(members_of(cell, "cyc_sk")),
    "new_customers": _counted("new_cust"),
    "revenue_per_rep": lambda cell, ctx: _ratio(_rev(cell), distinct_reps(cell)),
    "target_attainment": lambda cell, ctx: _ratio(
        _rev(cell), None if ctx.target_c is None else _money(ctx.target_c)
    ),
    "target_pacing": _target_pacing,
    "cancellations": _counted("cancels"),
    "cancelled_revenue": _money_counted("cancel_c"),
    "churned_customers": _counted("churned"),
    "churn_rate": lambda cell, ctx: _ratio(count_of(cell, "churn_n"), ctx.customers_at_start),
    "retention_rate": _retention_rate,
    "repeat_purchase_rate": _ratio_of("repeat", "orders"),
    "complaints": _counted("complaints"),
    "complaint_ratio": _ratio_of("complaints", "orders"),
    "nps": lambda cell, ctx: _ratio(
        100 * (count_of(cell, "nps_pro") - count_of(cell, "nps_det")), count_of(cell, "nps_n")
    ),
    "cac": lambda cell, ctx: _ratio(_money(count_of(cell, "spend_c")), count_of(cell, "new_cust")),
    "ltv": _ltv,
}
assert RULES.keys() == KPIS.keys(), "every catalogue KPI has its rule"


def value_of(kpi: str, cell: Mapping[str, Component], ctx: Context) -> Value:
    """One KPI of a merged cell (call ``applies`` first)."""
    rule = RULES.get(kpi)
    if rule is None:
        raise KeyError(f"unknown KPI {kpi!r}")
    return rule(cell, ctx)


@cache
def reported(kind: str, dimension: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """The KPIs reported for cells of this kind and dimension, with their inputs."""
    ctx = Context(kind=kind, dimension=dimension)
    return tuple((kpi, frozenset(inputs)) for kpi, inputs in INPUTS.items() if applies(kpi, ctx))


def values_of(cell: Mapping[str, Component], ctx: Context) -> dict[str, Value]:
    """Every KPI reported for a merged cell."""
    present = cell.keys()
    return {
        kpi: value_of(kpi, cell, ctx)
        for kpi, inputs in reported(ctx.kind, ctx.dimension)
        if not present.isdisjoint(inputs)
    }
