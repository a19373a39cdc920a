"""prometheus/rules and prometheus/tests: promtool checks the rules and runs their unit tests.

The rules' contract (names, thresholds, what to do) is in docs/alerts.md; the metrics they read
are in docs/metrics.md. promtool comes with the Debian ``prometheus`` package
(scripts/install-system-deps.sh).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.stack.prometheus import render_config

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (apt-get install prometheus, see scripts/install-system-deps.sh)",
)

# Dashboards and alert routing use these names: renaming one is a breaking change.
RECORDING_RULES = {
    "salespulse:win_rate:ratio_1h",
    "salespulse:win_rate:closed_1h",
    "salespulse:win_rate:ratio_month",
    "salespulse:win_rate:closed_month",
    "salespulse:churn:rate10m",
    "salespulse:churn:rate10m:baseline",
    "salespulse:events:rate5m",
    "salespulse:dead_letters:ratio_rate5m",
    "salespulse:consumer_lag:messages",
    "salespulse:kpi:ratio",
}
ALERTS = {
    "SalespulseWinRateDip",
    "SalespulseChurnSpike",
    "SalespulseRevenueBehindTarget",
    "SalespulseTeamRevenueBehindTarget",
    "SalespulseLeadsWaiting",
    "SalespulseNoEvents",
    "SalespulseDeadLetterRate",
    "SalespulseStageErrors",
    "SalespulseConsumerLag",
    "SalespulseWorkerDown",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"promtool {' '.join(result.args[1:])} exited {result.returncode}:\n{result.stdout}{result.stderr}"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def rules() -> list[dict[str, Any]]:
    return [
        rule for path in RULE_FILES for group in load(path)["groups"] for rule in group["rules"]
    ]


def test_the_rule_and_test_files_exist() -> None:
    assert {p.name for p in RULE_FILES} >= {
        "salespulse-recording.yml",
        "salespulse-alerts.yml",
    }
    assert TEST_FILES, "no promtool test file in prometheus/tests/"


@needs_promtool
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, output(result)


@needs_promtool
def test_promtool_check_config_loads_every_rule_file(tmp_path: Path) -> None:
    # Rule paths are relative to the config file (as in docker compose, where the folder is
    # mounted at /etc/salespulse/prometheus), so the repo's folder is checked as it is, but for
    # the worker's token: compose's secret /run/secrets/web-token, a file here (promtool
    # wants it to exist).
    folder = tmp_path / "prometheus"
    shutil.copytree(CONFIG.parent, folder)
    config = load(CONFIG)
    (worker,) = [job for job in config["scrape_configs"] if job["job_name"] == "salespulse"]
    assert worker["authorization"]["credentials_file"] == "/run/secrets/web-token"
    worker["authorization"]["credentials_file"] = str(tmp_path / "web-token")
    (tmp_path / "web-token").write_text("a-token-for-promtool-only")
    (folder / CONFIG.name).write_text(yaml.safe_dump(config, sort_keys=False))
    result = promtool("check", "config", str(folder / CONFIG.name))
    assert result.returncode == 0, output(result)
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout, output(result)


@needs_promtool
@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, output(result)


def globbed(config: dict[str, Any], base: Path) -> set[Path]:
    return {
        match.resolve()
        for pattern in config.get("rule_files") or []
        for match in (base / pattern).parent.glob((base / pattern).name)
    }


def test_rule_files_are_loaded_by_compose_and_by_the_local_stack(tmp_path: Path) -> None:
    expected = {p.resolve() for p in RULE_FILES}
    assert globbed(load(CONFIG), CONFIG.parent) == expected  # compose: relative to the config
    rendered = render_config(CONFIG, tmp_path, 19090)  # local stack: made absolute
    assert all(Path(p).is_absolute() for p in load(rendered)["rule_files"])
    assert globbed(load(rendered), tmp_path) == expected


def test_rule_names_are_the_contract() -> None:
    assert {r["record"] for r in rules() if "record" in r} == RECORDING_RULES
    assert {r["alert"] for r in rules() if "alert" in r} == ALERTS


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_has_severity_summary_description_and_docs(name: str) -> None:
    (rule,) = [r for r in rules() if r.get("alert") == name]
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()
    assert rule.get("for"), f"{name} has no `for`"
    assert f"## {name}" in (PROMETHEUS_DIR.parent / "docs" / "alerts.md").read_text()


def unit_tests() -> list[dict[str, Any]]:
    return [test for path in TEST_FILES for test in load(path)["tests"]]


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_alert_is_tested_firing_and_not_firing(name: str) -> None:
    cases = [
        c for t in unit_tests() for c in t.get("alert_rule_test", []) if c["alertname"] == name
    ]
    firing = [c for c in cases if c.get("exp_alerts")]
    assert firing, f"no promtool test where {name} fires"
    assert all(a.get("exp_annotations") for c in firing for a in c["exp_alerts"]), name
    assert [c for c in cases if not c.get("exp_alerts")], f"no promtool test where {name} is quiet"


@pytest.mark.parametrize("name", sorted(RECORDING_RULES))
def test_every_recording_rule_value_is_tested(name: str) -> None:
    exprs = [c["expr"] for t in unit_tests() for c in t.get("promql_expr_test", [])]
    assert [e for e in exprs if name in METRIC_NAME.findall(e)], f"no promql_expr_test reads {name}"
