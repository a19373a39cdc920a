"""The Grafana dashboards of grafana/dashboards/, read as data, and the metrics contract.

Shared by the static checks (tests/unit/test_dashboards.py) and by integration tests that run
every panel query against a real Prometheus: ``panel_queries()`` gives each query with the
Grafana variables replaced by values Prometheus accepts.

The contract is docs/metrics.md: the metric tables, the label values it lists, and the naming
table that turns a KPI of ``streams.kpi.catalog.KPIS`` into its gauge name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from streams.kpi.catalog import KPIS, MONEY, Kpi
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
METRICS_DOC = REPO / "docs" / "metrics.md"
PROMETHEUS_RULES = REPO / "prometheus" / "rules"
DATASOURCE_UID = "salespulse-prometheus"

# Values for the Grafana variables: the dashboards' own and Grafana's built-in ones.
SUBSTITUTIONS: dict[str, str] = {
    "window": "day",
    "team": ".+",
    "rep": ".+",
    "__rate_interval": "1m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
GRAFANA_BUILTIN_VARIABLES = frozenset(name for name in SUBSTITUTIONS if name.startswith("__"))

# $name, ${name}, ${name:format}, [[name]]
VARIABLE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)(?::[\w-]+)?\]\]")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
METRIC_NAME = re.compile(r"(?<![\w:])(salespulse_[A-Za-z0-9_]+)(?![\w:])")
RULE_NAME = re.compile(r"(?<![\w:])(salespulse:[A-Za-z0-9_:]+)")
SELECTOR = re.compile(r"(?<![\w:])(salespulse_[A-Za-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


# --- dashboards ---------------------------------------------------------------------------


def dashboard_paths() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def load_dashboards() -> dict[str, dict[str, Any]]:
    """File name -> dashboard (raises on invalid JSON)."""
    return {path.name: json.loads(path.read_text()) for path in dashboard_paths()}


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Panels, including those folded inside rows."""
    found = []
    for panel in panels:
        found.append(panel)
        found.extend(all_panels(panel.get("panels") or []))
    return found


def panels_of(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    return all_panels(list(dashboard.get("panels") or []))


def targets_of(dashboard: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query of the dashboard."""
    for panel in panels_of(dashboard):
        for target in panel.get("targets") or []:
            yield panel, target


def variables_used(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in VARIABLE.finditer(text)}


def substitute(expr: str, values: Mapping[str, str] = SUBSTITUTIONS) -> str:
    """``expr`` with every Grafana variable replaced; KeyError names an unknown variable."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return VARIABLE.sub(value, expr)


def panel_queries(values: Mapping[str, str] = SUBSTITUTIONS) -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL ready to send) for every panel query."""
    queries = []
    for dashboard in load_dashboards().values():
        for panel, target in targets_of(dashboard):
            expr = str(target.get("expr") or "")
            queries.append(
                (str(dashboard["uid"]), str(panel.get("title")), substitute(expr, values))
            )
    return queries


def strip_strings(expr: str) -> str:
    return STRING.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    """The ``salespulse_*`` metric names an expression reads (label values excluded)."""
    return set(METRIC_NAME.findall(strip_strings(expr)))


def rule_names(expr: str) -> set[str]:
    """The ``salespulse:*`` recording rules an expression reads."""
    return set(RULE_NAME.findall(strip_strings(expr)))


def recorded_rules() -> set[str]:
    """The names recorded by the rule files of prometheus/rules/."""
    names = set()
    for path in sorted(PROMETHEUS_RULES.glob("*.y*ml")):
        data = yaml.safe_load(path.read_text()) or {}
        for group in data.get("groups") or []:
            names |= {str(r["record"]) for r in group.get("rules") or [] if "record" in r}
    return names


def selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """(metric, {label: (operator, value)}) for every ``salespulse_*{...}`` selector."""
    found = []
    for metric, body in SELECTOR.findall(expr):
        found.append((metric, {m[0]: (m[1], m[2]) for m in MATCHER.findall(body)}))
    return found


def matched_values(operator: str, value: str) -> set[str] | None:
    """The label values a matcher selects, or None when it is not a plain list of values."""
    if operator == "=":
        return {value}
    if operator == "=~" and re.fullmatch(r"[\w.-]+(\|[\w.-]+)*", value):
        return set(value.split("|"))
    return None


# --- docs/metrics.md ----------------------------------------------------------------------


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every table of a Markdown text, as rows keyed by the header cells."""
    tables: list[list[dict[str, str]]] = []
    lines: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            lines.append(line.strip())
            continue
        if len(lines) >= 2:
            split = [[c.strip() for c in row.strip("|").split("|")] for row in lines]
            header, rows = split[0], split[2:]
            tables.append([dict(zip(header, row, strict=False)) for row in rows])
        lines = []
    return tables


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@dataclass
class MetricsContract:
    """What docs/metrics.md promises."""

    metrics: dict[str, set[str]] = field(default_factory=dict)  # name -> labels
    patterns: list[str] = field(default_factory=list)  # e.g. process_*
    histograms: set[str] = field(default_factory=set)
    naming: dict[str, str] = field(default_factory=dict)  # KPI unit kind -> row's example cell
    kpi_labels: set[str] = field(default_factory=set)
    label_values: dict[str, set[str]] = field(default_factory=dict)  # window, dimension
    kpi_metrics: dict[str, str] = field(default_factory=dict)  # gauge name -> KPI id

    def documents(self, name: str) -> bool:
        if name in self.metrics or name in self.kpi_metrics:
            return True
        return any(
            name.endswith(suffix) and name.removesuffix(suffix) in self.histograms
            for suffix in HISTOGRAM_SUFFIXES
        )

    def labels_of(self, name: str) -> set[str] | None:
        """Labels documented for a metric (without Prometheus' job and instance)."""
        if name in self.kpi_metrics:
            return self.kpi_labels
        for suffix in HISTOGRAM_SUFFIXES:
            base = name.removesuffix(suffix)
            if name.endswith(suffix) and base in self.histograms:
                return self.metrics[base] | ({"le"} if suffix == "_bucket" else set())
        return self.metrics.get(name)


def unit_kind(kpi: Kpi) -> str:
    """The row of the naming table a KPI's unit falls under."""
    return "money" if kpi.unit == MONEY else kpi.unit


def kpi_metric_name(kpi: Kpi) -> str:
    """The gauge name of a KPI, by the naming table of docs/metrics.md."""
    kind = unit_kind(kpi)
    if kind == "count":
        return f"salespulse_{kpi.id}"
    if kind == "money":
        currency = Settings.model_fields["currency"].default  # the reporting currency
        return f"salespulse_{kpi.id}_{currency.lower()}"
    if kind == "ratio":
        return f"salespulse_{kpi.id.removesuffix('_ratio')}_ratio"
    if kind == "score":
        return f"salespulse_{kpi.id}_score"
    if kind in {"seconds", "days"}:  # days are exported in seconds
        base, p90 = kpi.id.removesuffix("_p90"), kpi.id.endswith("_p90")
        base = base.removesuffix(f"_{kind}")
        return f"salespulse_{base}{'_p90' if p90 else ''}_seconds"
    raise ValueError(f"KPI {kpi.id}: unit {kpi.unit!r} has no naming rule")


@cache
def metrics_contract() -> MetricsContract:
    text = METRICS_DOC.read_text()
    contract = MetricsContract()
    for table in markdown_tables(text):
        for row in table:
            if "metric" in row:  # the metric tables: metric | type | labels | meaning
                for name in backticked(row["metric"]):
                    labels = set(backticked(row.get("labels", "")))
                    if "*" in name:
                        contract.patterns.append(name)
                    else:
                        contract.metrics[name] = labels
                        if row.get("type", "").strip() == "histogram":
                            contract.histograms.add(name)
            elif "KPI unit" in row:  # the naming table: KPI unit | metric name | example
                kind = row["KPI unit"].split()[0]
                contract.naming[kind] = row.get("example", "")
    # The summable parts, documented in the prose as `salespulse_kpi_numerator{kpi,...}`.
    for name, labels in re.findall(r"`(salespulse_\w+)\{([\w,\s]+)\}`", text):
        contract.metrics[name] = {label.strip() for label in labels.split(",")}
    # The KPI gauges' labels and their values: "- `window`: `day`, ... or `live`;".
    for label, values in re.findall(r"^- `(\w+)`: (.*)$", text, flags=re.MULTILINE):
        contract.kpi_labels.add(label)
        if label in {"window", "dimension"}:
            contract.label_values[label] = set(backticked(values))
    contract.kpi_metrics = {kpi_metric_name(kpi): kpi.id for kpi in KPIS.values()}
    return contract
