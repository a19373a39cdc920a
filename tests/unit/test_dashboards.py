"""Static checks of the Grafana dashboards in grafana/dashboards/.

Each check is a function returning the problems it finds, so that
``test_every_check_catches_its_breakage`` can prove it fails on a broken copy of the dashboards.
What is checked: JSON, fixed and unique uids, the three expected dashboards, the layout, the
datasource of every panel and query, refIds and expressions, Grafana variables, PromQL syntax
(``promtool``), the metric names, labels and label values against docs/metrics.md and the KPI
catalogue, and the units of money, ratio and seconds panels.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.kpi.catalog import KPIS
from tests.dashboards import (
    DASHBOARDS_DIR,
    DATASOURCE_UID,
    GRAFANA_BUILTIN_VARIABLES,
    backticked,
    dashboard_paths,
    kpi_metric_name,
    load_dashboards,
    matched_values,
    metric_names,
    metrics_contract,
    panel_queries,
    panels_of,
    recorded_rules,
    rule_names,
    selectors,
    strip_strings,
    substitute,
    targets_of,
    unit_kind,
    variables_used,
)

Dashboards = dict[str, dict[str, Any]]

EXPECTED = {
    "salespulse-sales-floor": "Sales floor",
    "salespulse-team-drilldown": "Team and rep drill-down",
    "salespulse-pipeline-health": "Pipeline health",
}
UID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # Grafana uids: at most 40 characters
GRID_WIDTH = 24
MIN_SCHEMA_VERSION = 39
PROMETHEUS_LABELS = {"job", "instance"}
UNITS = {"money": "currencyEUR", "ratio": "percentunit", "seconds": "s", "days": "s"}
LABEL_VALUES_QUERY = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\s*\)")
PROMTOOL = shutil.which("promtool") or (
    "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
)


def where(name: str, panel: dict[str, Any], target: dict[str, Any] | None = None) -> str:
    text = f"{name}: panel {panel.get('id')} {panel.get('title')!r}"
    return text if target is None else f"{text} target {target.get('refId')}"


def datasource_uid(ref: Any) -> Any:
    return ref.get("uid") if isinstance(ref, dict) else ref


def template_variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list((dashboard.get("templating") or {}).get("list") or [])


def variable_query(variable: dict[str, Any]) -> str:
    query = variable.get("query")
    return str(query.get("query", "") if isinstance(query, dict) else query or "")


# --- the checks ---------------------------------------------------------------------------


def check_dashboards(dashboards: Dashboards) -> list[str]:
    """Fixed, unique uids and titles; read-only; a recent schema; no database id."""
    problems = []
    seen: dict[str, dict[Any, str]] = {"uid": {}, "title": {}}
    for name, dashboard in dashboards.items():
        uid = dashboard.get("uid")
        if not isinstance(uid, str) or not UID.fullmatch(uid):
            problems.append(f"{name}: uid {uid!r} is not a fixed uid ({UID.pattern})")
        for key in ("uid", "title"):
            value = dashboard.get(key)
            if not value:
                problems.append(f"{name}: no {key}")
            elif value in seen[key]:
                problems.append(f"{name}: {key} {value!r} also used by {seen[key][value]}")
            else:
                seen[key][value] = name
        if dashboard.get("editable") is not False:
            problems.append(f"{name}: `editable` must be false (the files are the source)")
        if not isinstance(dashboard.get("schemaVersion"), int) or (
            dashboard["schemaVersion"] < MIN_SCHEMA_VERSION
        ):
            problems.append(f"{name}: schemaVersion {dashboard.get('schemaVersion')!r} < 39")
        if dashboard.get("id") is not None:
            problems.append(f"{name}: `id` must be null or absent (Grafana assigns it)")
    return problems


def check_expected_dashboards(dashboards: Dashboards) -> list[str]:
    problems = []
    titles = {d.get("uid"): d.get("title") for d in dashboards.values()}
    for uid, title in EXPECTED.items():
        if uid not in titles:
            problems.append(f"no dashboard with uid {uid!r}")
        elif titles[uid] != title:
            problems.append(f"dashboard {uid}: title {titles[uid]!r}, expected {title!r}")
    for name, dashboard in dashboards.items():
        if dashboard.get("uid") == "salespulse-sales-floor":
            if dashboard.get("refresh") != "10s":
                problems.append(f"{name}: refresh {dashboard.get('refresh')!r}, expected 10s")
            if (dashboard.get("time") or {}).get("from") != "now-6h":
                problems.append(f"{name}: time range {dashboard.get('time')}, expected now-6h")
        if dashboard.get("uid") == "salespulse-team-drilldown":
            names = {v.get("name") for v in template_variables(dashboard)}
            if missing := {"window", "team", "rep"} - names:
                problems.append(f"{name}: template variables {sorted(missing)} missing")
    return problems


def check_layout(dashboards: Dashboards) -> list[str]:
    """Unique integer panel ids; integer gridPos inside the 24 columns; no overlaps."""
    problems = []
    for name, dashboard in dashboards.items():
        ids: set[Any] = set()
        boxes: list[tuple[str, int, int, int, int]] = []
        for panel in panels_of(dashboard):
            here = where(name, panel)
            pid = panel.get("id")
            if not isinstance(pid, int) or isinstance(pid, bool):
                problems.append(f"{here}: id must be an integer")
            elif pid in ids:
                problems.append(f"{here}: duplicate panel id")
            ids.add(pid)
            grid = panel.get("gridPos") or {}
            if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
                problems.append(f"{here}: gridPos needs integer h, w, x, y: {grid}")
                continue
            x, y, w, h = grid["x"], grid["y"], grid["w"], grid["h"]
            if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > GRID_WIDTH:
                problems.append(f"{here}: gridPos {grid} is outside the {GRID_WIDTH} columns")
            for other, ox, oy, ow, oh in boxes:
                if x < ox + ow and ox < x + w and y < oy + oh and oy < y + h:
                    problems.append(f"{here}: gridPos {grid} overlaps {other}")
            boxes.append((here, x, y, w, h))
    return problems


def check_datasources(dashboards: Dashboards) -> list[str]:
    """Every panel, query and query variable on the provisioned Prometheus, by uid."""
    problems = []
    for name, dashboard in dashboards.items():
        for panel in panels_of(dashboard):
            uid = datasource_uid(panel.get("datasource"))
            if uid != DATASOURCE_UID:
                problems.append(f"{where(name, panel)}: datasource {uid!r}, not {DATASOURCE_UID}")
            for target in panel.get("targets") or []:
                uid = datasource_uid(target.get("datasource"))
                if uid != DATASOURCE_UID:
                    problems.append(
                        f"{where(name, panel, target)}: datasource {uid!r}, not {DATASOURCE_UID}"
                    )
        for variable in template_variables(dashboard):
            if variable.get("type") != "query":
                continue
            uid = datasource_uid(variable.get("datasource"))
            if uid != DATASOURCE_UID:
                problems.append(
                    f"{name}: variable {variable.get('name')}: datasource {uid!r}, "
                    f"not {DATASOURCE_UID}"
                )
    return problems


def check_targets(dashboards: Dashboards) -> list[str]:
    """Every panel but a row has queries; every query a unique refId and a non-empty expr."""
    problems = []
    for name, dashboard in dashboards.items():
        for panel in panels_of(dashboard):
            targets = panel.get("targets") or []
            if panel.get("type") == "row":
                if targets:
                    problems.append(f"{where(name, panel)}: a row has no queries")
                continue
            if not targets:
                problems.append(f"{where(name, panel)}: no targets")
            ref_ids = [t.get("refId") for t in targets]
            if not all(isinstance(r, str) and r for r in ref_ids) or len(set(ref_ids)) != len(
                ref_ids
            ):
                problems.append(f"{where(name, panel)}: refIds missing or not unique: {ref_ids}")
            for target in targets:
                expr = target.get("expr")
                if not isinstance(expr, str) or not expr.strip():
                    problems.append(f"{where(name, panel, target)}: empty expr")
    return problems


def check_variables(dashboards: Dashboards) -> list[str]:
    """Every variable an expression uses is defined, and panel_queries() has a value for it."""
    problems = []
    for name, dashboard in dashboards.items():
        defined = {v.get("name") for v in template_variables(dashboard)}
        for variable in template_variables(dashboard):
            if variable.get("type") == "query":
                match = LABEL_VALUES_QUERY.fullmatch(variable_query(variable).strip())
                if match is None:
                    problems.append(
                        f"{name}: variable {variable.get('name')}: query "
                        f"{variable_query(variable)!r} is not label_values(<selector>, <label>)"
                    )
        for panel, target in targets_of(dashboard):
            expr = str(target.get("expr") or "")
            for variable in variables_used(expr) - defined - GRAFANA_BUILTIN_VARIABLES:
                problems.append(f"{where(name, panel, target)}: ${variable} is not defined")
            try:
                substitute(expr)
            except KeyError as exc:
                problems.append(f"{where(name, panel, target)}: {exc.args[0]}")
    return problems


def promql_expressions(dashboards: Dashboards, variables: bool = True) -> dict[str, str]:
    """where -> PromQL (variables substituted), panel queries and query variables' selectors."""
    exprs = {}
    for name, dashboard in dashboards.items():
        for panel, target in targets_of(dashboard):
            try:
                exprs[where(name, panel, target)] = substitute(str(target.get("expr") or ""))
            except KeyError:
                continue  # check_variables reports it
        for variable in template_variables(dashboard):
            match = LABEL_VALUES_QUERY.fullmatch(variable_query(variable).strip())
            if variables and variable.get("type") == "query" and match:
                exprs[f"{name}: variable {variable.get('name')}"] = substitute(match["selector"])
    return exprs


def promtool_check(exprs: list[str], folder: Path) -> tuple[bool, str]:
    """``promtool check rules`` of the expressions written as recording rules."""
    assert PROMTOOL is not None
    rules = [{"record": f"dashboard_query_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = folder / "dashboard-queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    run = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    return run.returncode == 0, (run.stdout + run.stderr).strip()


def check_promql(dashboards: Dashboards, folder: Path) -> list[str]:
    exprs = promql_expressions(dashboards)
    if not exprs:
        return ["no PromQL expression found"]
    return promql_problems(list(exprs.items()), folder)


def promql_problems(exprs: list[tuple[str, str]], folder: Path) -> list[str]:
    """promtool on all the expressions at once, then on halves to name the culprits."""
    ok, output = promtool_check([expr for _, expr in exprs], folder)
    if ok:
        return []
    if len(exprs) == 1:
        here, expr = exprs[0]
        return [f"{here}: {expr!r} does not parse:\n{output}"]
    middle = len(exprs) // 2
    problems = promql_problems(exprs[:middle], folder) + promql_problems(exprs[middle:], folder)
    return problems or [f"promtool rejects the expressions together but no single one:\n{output}"]


def check_metric_names(dashboards: Dashboards) -> list[str]:
    """Every ``salespulse_*`` name is in docs/metrics.md; ``salespulse:*`` ones are recorded."""
    contract = metrics_contract()
    rules = recorded_rules()
    problems = []
    for name, expr in promql_expressions(dashboards).items():
        for metric in sorted(metric_names(expr)):
            if not contract.documents(metric):
                problems.append(f"{name}: {metric} is not documented in docs/metrics.md")
        for rule in sorted(rule_names(expr) - rules):
            problems.append(f"{name}: recording rule {rule} is not in prometheus/rules/")
    return problems


def check_selectors(dashboards: Dashboards) -> list[str]:
    """Labels are documented; KPI series are pinned to a window, dimension (and kpi) that exist.

    A query variable's selector (``label_values``) may span windows: only its labels and label
    values are checked.
    """
    problems = []
    panel_exprs = promql_expressions(dashboards, variables=False)
    for here, expr in promql_expressions(dashboards).items():
        for metric, matchers in selectors(expr):
            problems.extend(selector_problems(here, expr, metric, matchers, here in panel_exprs))
    return problems


def selector_problems(
    here: str, expr: str, metric: str, matchers: dict[str, tuple[str, str]], pin: bool
) -> list[str]:
    contract = metrics_contract()
    windows = contract.label_values["window"]
    problems = []
    labels = contract.labels_of(metric)
    if labels is not None and (unknown := set(matchers) - labels - PROMETHEUS_LABELS):
        problems.append(f"{here}: {metric}: labels {sorted(unknown)} are not documented")
    is_part = metric in {"salespulse_kpi_numerator", "salespulse_kpi_denominator"}
    if metric not in contract.kpi_metrics and not is_part:
        return problems
    values: dict[str, set[str]] = {}
    for label in ("kpi", "window", "dimension") if is_part else ("window", "dimension"):
        operator, value = matchers.get(label, ("", ""))
        found = matched_values(operator, value)
        if found is not None:
            values[label] = found
        elif pin or operator:
            problems.append(
                f"{here}: {metric} must select {label} with = or =~ a|b "
                f"(else series of every {label} are mixed): {expr!r}"
            )
    if bad := values.get("window", set()) - windows:
        problems.append(f"{here}: {metric}: window {sorted(bad)} not in {sorted(windows)}")
    if bad := values.get("dimension", set()) - contract.label_values["dimension"]:
        problems.append(f"{here}: {metric}: dimension {sorted(bad)} is not documented")
    for kpi_id in sorted(values.get("kpi") or {contract.kpi_metrics.get(metric, "")}):
        kpi = KPIS.get(kpi_id)
        if kpi is None:
            problems.append(f"{here}: {metric}: kpi {kpi_id!r} is not in the catalogue")
            continue
        if bad := values.get("dimension", set()) - set(kpi.dimensions):
            problems.append(
                f"{here}: {kpi_id} is not published for dimension {sorted(bad)} "
                f"(only {list(kpi.dimensions)})"
            )
        expected = allowed_windows(kpi_id, windows)
        if bad := values.get("window", set()) - expected:
            problems.append(
                f"{here}: {kpi_id} has no series for window {sorted(bad)} (only {sorted(expected)})"
            )
    return problems


def allowed_windows(kpi_id: str, windows: set[str]) -> set[str]:
    if kpi_id == "leads_waiting":
        return {"live"}  # the point-in-time KPI
    if kpi_id in {"target_attainment", "target_pacing"}:
        return {"month", "quarter"}  # targets exist per month and quarter only
    return windows - {"live"}


def expected_unit(expr: str) -> str | None:
    """The Grafana unit an expression's values are in, when it is money, a ratio or seconds."""
    contract = metrics_contract()
    kinds = set()
    plain = strip_strings(expr)
    for metric in metric_names(expr):
        if metric in contract.kpi_metrics:
            kinds.add(unit_kind(KPIS[contract.kpi_metrics[metric]]))
        elif metric == "salespulse_kpi_numerator" and "salespulse_kpi_denominator" in plain:
            for _, matchers in selectors(expr):
                found = matched_values(*matchers.get("kpi", ("", ""))) or set()
                kinds |= {unit_kind(KPIS[k]) for k in found if k in KPIS}
        elif metric.endswith("_seconds_bucket") and "histogram_quantile" in plain:
            kinds.add("seconds")
        elif metric.endswith("_seconds") and "time()" in plain:
            kinds.add("seconds")  # time() - a timestamp: an age
    units = {UNITS.get(kind) for kind in kinds}
    return units.pop() if len(units) == 1 else None


def panel_unit(panel: dict[str, Any], ref_id: Any) -> Any:
    """The unit of a query's values: the panel's, unless an override for its refId sets one."""
    field_config = panel.get("fieldConfig") or {}
    unit = (field_config.get("defaults") or {}).get("unit")
    for override in field_config.get("overrides") or []:
        matcher = override.get("matcher") or {}
        if matcher.get("id") == "byFrameRefID" and matcher.get("options") == ref_id:
            for prop in override.get("properties") or []:
                if prop.get("id") == "unit":
                    unit = prop.get("value")
    return unit


def check_units(dashboards: Dashboards) -> list[str]:
    """Money in currencyEUR, ratios in percentunit, seconds in s; no vector(0) under a ratio."""
    problems = []
    for name, dashboard in dashboards.items():
        for panel, target in targets_of(dashboard):
            try:
                expr = substitute(str(target.get("expr") or ""))
            except KeyError:
                continue
            wanted = expected_unit(expr)
            unit = panel_unit(panel, target.get("refId"))
            if wanted is not None and unit != wanted:
                problems.append(f"{where(name, panel, target)}: unit {unit!r}, expected {wanted}")
            if re.search(r"\bvector\s*\(", expr) and "percentunit" in {wanted, unit}:
                problems.append(
                    f"{where(name, panel, target)}: a ratio must not default to vector(0) "
                    "(no series means no denominator, not 0 %)"
                )
    return problems


def check_naming_table() -> list[str]:
    """The examples of the naming table of docs/metrics.md follow kpi_metric_name()."""
    contract = metrics_contract()
    problems = []
    kinds = {unit_kind(kpi) for kpi in KPIS.values()}
    if missing := kinds - contract.naming.keys():
        problems.append(f"docs/metrics.md: no naming rule for KPI units {sorted(missing)}")
    for kind, examples in contract.naming.items():
        for example in backticked(examples):
            if example not in contract.kpi_metrics:
                problems.append(
                    f"docs/metrics.md: example {example} ({kind}) is not the name of any KPI "
                    f"by the naming rules: {sorted(contract.kpi_metrics)}"
                )
    for kpi in KPIS.values():
        if not kpi_metric_name(kpi).startswith("salespulse_"):
            problems.append(f"KPI {kpi.id}: bad metric name {kpi_metric_name(kpi)}")
    return problems


# --- tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboards() -> Dashboards:
    return load_dashboards()


def test_dashboards_are_valid_json() -> None:
    paths = dashboard_paths()
    assert paths, f"no dashboards in {DASHBOARDS_DIR}"
    problems = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}: invalid JSON: {exc}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{path.name}: not a JSON object")
    assert not problems, "\n".join(problems)


def test_dashboards_have_fixed_unique_uids(dashboards: Dashboards) -> None:
    problems = check_dashboards(dashboards)
    assert not problems, "\n".join(problems)


def test_the_three_dashboards_exist(dashboards: Dashboards) -> None:
    problems = check_expected_dashboards(dashboards)
    assert not problems, "\n".join(problems)


def test_panels_have_stable_ids_and_a_layout(dashboards: Dashboards) -> None:
    problems = check_layout(dashboards)
    assert not problems, "\n".join(problems)


def test_every_panel_and_query_uses_the_prometheus_datasource(dashboards: Dashboards) -> None:
    problems = check_datasources(dashboards)
    assert not problems, "\n".join(problems)


def test_every_query_has_a_ref_id_and_an_expression(dashboards: Dashboards) -> None:
    problems = check_targets(dashboards)
    assert not problems, "\n".join(problems)


def test_grafana_variables_are_defined(dashboards: Dashboards) -> None:
    problems = check_variables(dashboards)
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed: PromQL not checked")
def test_expressions_parse_as_promql(dashboards: Dashboards, tmp_path: Path) -> None:
    problems = check_promql(dashboards, tmp_path)
    assert not problems, "\n".join(problems)


def test_metric_names_are_documented(dashboards: Dashboards) -> None:
    problems = check_metric_names(dashboards)
    assert not problems, "\n".join(problems)


def test_naming_table_matches_the_kpi_catalogue() -> None:
    problems = check_naming_table()
    assert not problems, "\n".join(problems)


def test_selectors_use_documented_labels_windows_and_dimensions(dashboards: Dashboards) -> None:
    problems = check_selectors(dashboards)
    assert not problems, "\n".join(problems)


def test_money_ratio_and_seconds_panels_have_their_unit(dashboards: Dashboards) -> None:
    problems = check_units(dashboards)
    assert not problems, "\n".join(problems)


def test_panel_queries_cover_every_query_without_variables(dashboards: Dashboards) -> None:
    queries = panel_queries()
    assert len(queries) == sum(1 for d in dashboards.values() for _ in targets_of(d))
    assert {uid for uid, _, _ in queries} == set(EXPECTED)
    leftovers = [(uid, title, expr) for uid, title, expr in queries if "$" in expr]
    assert not leftovers, f"variables left in: {leftovers}"


# --- each check fails on a broken dashboard -------------------------------------------------


def first_panel(dashboards: Dashboards, uid: str, title: str | None = None) -> dict[str, Any]:
    for dashboard in dashboards.values():
        if dashboard.get("uid") == uid:
            for panel in panels_of(dashboard):
                if panel.get("targets") and (title is None or panel.get("title") == title):
                    return panel
    raise LookupError(f"{uid}: no panel {title!r}")


def by_uid(dashboards: Dashboards, uid: str) -> dict[str, Any]:
    (found,) = [d for d in dashboards.values() if d.get("uid") == uid]
    return found


def set_expr(expr: str, title: str | None = None, uid: str = "salespulse-sales-floor"):
    def breaking(d: Dashboards) -> None:
        first_panel(d, uid, title)["targets"][0]["expr"] = expr

    return breaking


def set_field(key: str, value: Any, uid: str = "salespulse-sales-floor"):
    def breaking(d: Dashboards) -> None:
        by_uid(d, uid)[key] = value

    return breaking


def set_panel(key: str, value: Any, title: str | None = None):
    def breaking(d: Dashboards) -> None:
        first_panel(d, "salespulse-sales-floor", title)[key] = value

    return breaking


def set_target(key: str, value: Any):
    def breaking(d: Dashboards) -> None:
        first_panel(d, "salespulse-sales-floor")["targets"][0][key] = value

    return breaking


def duplicate_uid(d: Dashboards) -> None:
    by_uid(d, "salespulse-team-drilldown")["uid"] = "salespulse-sales-floor"


def overlap(d: Dashboards) -> None:
    panels = panels_of(by_uid(d, "salespulse-sales-floor"))
    panels[1]["gridPos"] = dict(panels[0]["gridPos"])


def second_target_same_ref_id(d: Dashboards) -> None:
    targets = first_panel(d, "salespulse-sales-floor")["targets"]
    targets.append({**targets[0]})


def variable_datasource(d: Dashboards) -> None:
    for variable in template_variables(by_uid(d, "salespulse-team-drilldown")):
        if variable.get("type") == "query":
            variable["datasource"] = {"type": "prometheus", "uid": "other"}


def percent_unit_on_money(d: Dashboards) -> None:
    panel = first_panel(d, "salespulse-sales-floor", "Revenue today")
    panel["fieldConfig"]["defaults"]["unit"] = "percentunit"


WIN_RATE = (
    'sum(salespulse_kpi_numerator{kpi="win_rate",window="day",dimension="global"})'
    ' / sum(salespulse_kpi_denominator{kpi="win_rate",window="day",dimension="global"})'
)

BREAKAGES: list[tuple[str, Callable[[Dashboards], None], Callable[..., list[str]]]] = [
    ("uid with a space", set_field("uid", "sales floor"), check_dashboards),
    ("duplicate uid", duplicate_uid, check_dashboards),
    ("editable", set_field("editable", True), check_dashboards),
    ("old schema", set_field("schemaVersion", 16), check_dashboards),
    ("wrong title", set_field("title", "Floor"), check_expected_dashboards),
    ("slow refresh", set_field("refresh", "1m"), check_expected_dashboards),
    ("duplicate panel id", set_panel("id", 2), check_layout),
    ("no gridPos", set_panel("gridPos", None), check_layout),
    ("too wide", set_panel("gridPos", {"h": 4, "w": 30, "x": 0, "y": 0}), check_layout),
    ("overlap", overlap, check_layout),
    ("panel datasource", set_panel("datasource", {"uid": "other"}), check_datasources),
    ("target datasource", set_target("datasource", None), check_datasources),
    ("variable datasource", variable_datasource, check_datasources),
    ("no refId", set_target("refId", ""), check_targets),
    ("same refId", second_target_same_ref_id, check_targets),
    ("empty expr", set_target("expr", "  "), check_targets),
    ("no targets", set_panel("targets", []), check_targets),
    ("undefined variable", set_expr('salespulse_calls{window="$period"}'), check_variables),
    ("unknown metric", set_expr('sum(salespulse_revenue{window="day"})'), check_metric_names),
    ("unknown ratio name", set_expr("salespulse_win_rate"), check_metric_names),
    ("unknown rule", set_expr("salespulse:win_rate:ratio"), check_metric_names),
    ("window not pinned", set_expr('sum(salespulse_calls{dimension="global"})'), check_selectors),
    (
        "no such window",
        set_expr('salespulse_calls{window="year",dimension="global"}'),
        check_selectors,
    ),
    (
        "kpi not pinned",
        set_expr('sum(salespulse_kpi_numerator{window="day",dimension="global"})'),
        check_selectors,
    ),
    (
        "unknown kpi",
        set_expr('salespulse_kpi_numerator{kpi="winrate",window="day",dimension="global"}'),
        check_selectors,
    ),
    (
        "dimension not published",
        set_expr('salespulse_calls{window="day",dimension="product"}'),
        check_selectors,
    ),
    (
        "daily target",
        set_expr('salespulse_target_pacing_ratio{window="day",dimension="global"}'),
        check_selectors,
    ),
    (
        "undocumented label",
        set_expr('sum by (topic) (rate(salespulse_events_total{topics="x"}[1m]))'),
        check_selectors,
    ),
    ("money unit", percent_unit_on_money, check_units),
    ("ratio with vector(0)", set_expr(f"({WIN_RATE}) or vector(0)", "Win rate today"), check_units),
    ("ratio unit", set_expr(WIN_RATE, "Revenue today"), check_units),
]


@pytest.mark.parametrize(
    ("breakage", "check"),
    [pytest.param(b, c, id=name) for name, b, c in BREAKAGES],
)
def test_every_check_catches_its_breakage(
    dashboards: Dashboards,
    breakage: Callable[[Dashboards], None],
    check: Callable[[Dashboards], list[str]],
) -> None:
    assert not check(dashboards), "the check fails on the real dashboards"
    broken = copy.deepcopy(dashboards)
    breakage(broken)
    assert check(broken), "the check did not notice the breakage"


def test_recorded_rules_are_allowed(dashboards: Dashboards) -> None:
    rules = sorted(recorded_rules())
    if not rules:
        pytest.skip("no recording rule in prometheus/rules/")
    changed = copy.deepcopy(dashboards)
    set_expr(f"{rules[0]} * 2")(changed)
    assert not check_metric_names(changed)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed: PromQL not checked")
@pytest.mark.parametrize(
    "expr",
    [
        'sum(salespulse_calls{window="day"}',  # unbalanced parenthesis
        "rate(salespulse_events_total)",  # rate needs a range vector
        'salespulse_calls{window="$window"} +',  # dangling operator
    ],
)
def test_promql_check_catches_invalid_expressions(
    dashboards: Dashboards, tmp_path: Path, expr: str
) -> None:
    broken = copy.deepcopy(dashboards)
    set_expr(expr)(broken)
    problems = check_promql(broken, tmp_path)
    assert problems
    assert any("Revenue today" in p for p in problems), problems
