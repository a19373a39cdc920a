"""KPI gauges for ``/metrics``: the current windows of this worker's share, built at scrape time.

The publisher says which cells are current and which keys are kept (``CurrentCell``,
``Publisher.gauge_cells``, from its gauge book: ``streams.engine.gauge_book``); this module
names the metrics (docs/metrics.md: base units, ``_ratio``, money with its currency), folds
what is not kept into ``other`` (computed from merged cells) and builds the metric families.
No Faust, no I/O: the Collector only calls the source it is given.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.kpi.catalog import KPIS, Kpi
from streams.kpi.cells import Cell, merge
from streams.kpi.values import Context, Value, values_of

OTHER = "other"
LABELS = ["window", "dimension", "key", "name"]
PART_LABELS = ["kpi", "window", "dimension", "key"]
DAY_S = Decimal(86_400)


@dataclass(frozen=True)
class CurrentCell:
    """One dimension key's cell in a current window, as the publisher holds it."""

    kind: str  # day, week, month, quarter or live
    dimension: str
    key: str
    name: str  # the rep's name for dimension rep, else ""
    values: Mapping[str, Value]  # as published
    cell: Cell  # merged components (to fold keys into "other")
    ctx: Context


def metric_name(kpi: Kpi, currency: str) -> str:
    """The gauge's name by Prometheus conventions (docs/metrics.md)."""
    base = kpi.id
    p90 = base.endswith("_p90")
    if p90:
        base = base.removesuffix("_p90")
    match kpi.unit:
        case "count":
            return f"salespulse_{base}"
        case "ratio":
            return f"salespulse_{base}" if base.endswith("_ratio") else f"salespulse_{base}_ratio"
        case "seconds" | "days":
            stem = base.removesuffix("_seconds").removesuffix("_days")
            return f"salespulse_{stem}_p90_seconds" if p90 else f"salespulse_{stem}_seconds"
        case "score":
            return f"salespulse_{base}_score"
        case _:  # money (catalog.MONEY): named after the reporting currency
            return f"salespulse_{base}_{currency.lower()}"


def _scale(kpi: Kpi) -> Decimal:
    return DAY_S if kpi.unit == "days" else Decimal(1)


def top_keys(revenue: Mapping[str, Decimal], cap: int) -> set[str]:
    """The ``cap`` keys with the most revenue this month, then by key (``other`` is never a
    key of its own): the keys a dimension shows."""
    keys = (k for k in revenue if k != OTHER)
    return set(heapq.nsmallest(cap, keys, key=lambda k: (-revenue[k], k)))


def fold(cells: list[CurrentCell], cap: int) -> list[CurrentCell]:
    """At most ``cap`` keys per dimension (``top_keys``, ranked by the cells' month
    revenue); the others folded into ``other`` (``fold_kept``). The publisher ranks from its
    gauge book instead of every cell (``Publisher.gauge_cells``)."""
    revenue: dict[str, dict[str, Decimal]] = {}
    for c in cells:
        keys = revenue.setdefault(c.dimension, {})
        value = c.values.get("revenue") if c.kind == "month" else None
        if value is not None and value.value is not None:
            keys[c.key] = value.value
        else:
            keys.setdefault(c.key, Decimal(0))
    return fold_kept(cells, {dim: top_keys(keys, cap) for dim, keys in revenue.items()})


def fold_kept(cells: list[CurrentCell], kept: Mapping[str, set[str]]) -> list[CurrentCell]:
    """The cells of the ``kept`` keys of each dimension; the others merged into one ``other``
    key per window, its values computed from the merged cells (a ratio of the whole, not an
    average of ratios). A target is per key, so ``other`` has none."""
    out: list[CurrentCell] = []
    folded: dict[tuple[str, str], list[CurrentCell]] = {}
    for c in cells:
        if c.key in kept.get(c.dimension, ()) and c.key != OTHER:
            out.append(c)
        else:
            folded.setdefault((c.kind, c.dimension), []).append(c)
    for (kind, dim), group in sorted(folded.items()):
        bases = [c.ctx.customers_at_start for c in group]
        ctx = replace(
            group[0].ctx,
            customers_at_start=None if None in bases else sum(b or 0 for b in bases),
            target_c=None,
        )
        cell = merge(c.cell for c in group)
        out.append(CurrentCell(kind, dim, OTHER, "", values_of(cell, ctx), cell, ctx))
    return out


def families(cells: Iterable[CurrentCell], currency: str) -> Iterator[Metric]:
    """One gauge family per KPI, then the summable numerators and denominators."""
    gauges = {
        kpi.id: GaugeMetricFamily(
            metric_name(kpi, currency),
            f"{kpi.description} Current window (label window), this worker's share.",
            labels=LABELS,
        )
        for kpi in KPIS.values()
    }
    numerator = GaugeMetricFamily(
        "salespulse_kpi_numerator",
        "A KPI's numerator in the current window, in the KPI's unit (sum across workers).",
        labels=PART_LABELS,
    )
    denominator = GaugeMetricFamily(
        "salespulse_kpi_denominator",
        "A KPI's denominator in the current window (sum across workers).",
        labels=PART_LABELS,
    )
    for c in cells:
        for kpi_id, v in sorted(c.values.items()):
            kpi = KPIS[kpi_id]
            scale = _scale(kpi)
            if v.value is not None:
                gauges[kpi_id].add_metric(
                    [c.kind, c.dimension, c.key, c.name], float(v.value * scale)
                )
            parts = [kpi_id, c.kind, c.dimension, c.key]
            if v.numerator is not None and v.denominator is not None:
                numerator.add_metric(parts, float(v.numerator * scale))
                denominator.add_metric(parts, float(v.denominator))
    yield from gauges.values()
    yield numerator
    yield denominator


class KpiCollector(Collector):
    """The KPI gauges, read from ``source`` when scraped: the current cells of this worker's
    share, at most ``key_cap`` keys per dimension and ``other`` (the publisher's
    ``gauge_cells``)."""

    def __init__(
        self, source: Callable[[int], list[CurrentCell]], currency: str, key_cap: int
    ) -> None:
        self._source = source
        self._currency = currency
        self._cap = key_cap

    def collect(self) -> Iterator[Metric]:
        yield from families(self._source(self._cap), self._currency)
