"""streams.stack.prometheus: the repo's prometheus.yml rewritten for a local run dir."""

from __future__ import annotations

import copy
import fnmatch
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from pydantic import SecretStr

from streams.stack.prometheus import register_target, render_config, scrape_token_problem
from tests.support import REPO

REPO_CONFIG = Path(__file__).resolve().parents[2] / "prometheus" / "prometheus.yml"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def job(config: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [j for j in config["scrape_configs"] if j["job_name"] == name]
    return found


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


@pytest.mark.parametrize("port", [9090, 19090, 65535])
def test_salespulse_job_reads_file_sd_targets_from_the_run_dir(run_dir: Path, port: int) -> None:
    rendered = load(render_config(REPO_CONFIG, run_dir, port))
    worker = job(rendered, "salespulse")
    assert "static_configs" not in worker
    (file_sd,) = worker["file_sd_configs"]
    (pattern,) = file_sd["files"]
    assert Path(pattern).is_absolute()
    assert Path(pattern).parent == run_dir / "prometheus-targets"
    assert Path(pattern).name.endswith(".json")
    assert (run_dir / "prometheus-targets").is_dir()
    # the rest of the job is the repo's, but for compose's token (this stack has none)
    original = job(load(REPO_CONFIG), "salespulse")
    assert {k: v for k, v in worker.items() if k != "file_sd_configs"} == {
        k: v for k, v in original.items() if k not in ("static_configs", "authorization")
    }


@pytest.mark.parametrize("port", [9090, 19090, 65535])
def test_prometheus_job_scrapes_itself_on_the_real_port(run_dir: Path, port: int) -> None:
    rendered = load(render_config(REPO_CONFIG, run_dir, port))
    assert job(rendered, "prometheus")["static_configs"] == [{"targets": [f"127.0.0.1:{port}"]}]


def test_everything_but_the_addresses_is_preserved(run_dir: Path) -> None:
    source = load(REPO_CONFIG)
    rendered = load(render_config(REPO_CONFIG, run_dir, 19090))
    assert rendered["global"] == source["global"]
    assert rendered["global"]["scrape_interval"] == "5s"
    assert [j["job_name"] for j in rendered["scrape_configs"]] == [
        j["job_name"] for j in source["scrape_configs"]
    ]
    assert set(rendered) == set(source) | {"rule_files"}


def test_rendered_file_lives_in_the_run_dir_and_rerendering_is_stable(run_dir: Path) -> None:
    first = render_config(REPO_CONFIG, run_dir, 19090)
    text = first.read_text()
    second = render_config(REPO_CONFIG, run_dir, 19090)
    assert first == second == run_dir / "prometheus.yml"
    assert second.read_text() == text
    assert REPO_CONFIG.read_text() != text  # the source itself is never rewritten


def write_source(directory: Path, config: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


SOURCE: dict[str, Any] = {
    "global": {"scrape_interval": "15s", "evaluation_interval": "30s", "external_labels": {
        "site": "lab"}},
    "rule_files": ["rules/salespulse.yml", "/etc/prometheus/absolute.yml", "../shared/*.yml"],
    "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["am:9093"]}]}]},
    "scrape_configs": [
        {"job_name": "salespulse", "scrape_interval": "1s", "metrics_path": "/metrics",
         "static_configs": [{"targets": ["worker:6066", "worker2:6066"]}]},
        {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
        {"job_name": "node", "static_configs": [{"targets": ["node:9100"]}]},
    ],
}  # fmt: skip


def test_rule_files_become_absolute_relative_to_the_source(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_source(tmp_path / "conf" / "prometheus", SOURCE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the source file, not to the working directory
    rendered = load(render_config(source, run_dir, 19090))
    conf = (tmp_path / "conf").resolve()
    assert rendered["rule_files"] == [
        str(conf / "prometheus" / "rules" / "salespulse.yml"),
        "/etc/prometheus/absolute.yml",
        str(conf / "shared" / "*.yml"),
    ]


def test_other_jobs_and_sections_are_kept_verbatim(tmp_path: Path, run_dir: Path) -> None:
    source = write_source(tmp_path / "conf", SOURCE)
    rendered = load(render_config(source, run_dir, 19090))
    assert rendered["global"] == SOURCE["global"]
    assert rendered["alerting"] == SOURCE["alerting"]
    assert job(rendered, "node") == job(SOURCE, "node")
    worker = job(rendered, "salespulse")
    assert worker["scrape_interval"] == "1s"
    assert worker["metrics_path"] == "/metrics"
    assert "static_configs" not in worker
    assert list(rendered) == list(SOURCE)  # same key order: a readable diff against the repo


def test_alerts_go_to_the_local_alertmanager(tmp_path: Path, run_dir: Path) -> None:
    source = write_source(tmp_path / "conf", SOURCE)
    rendered = load(render_config(source, run_dir, 19090, "127.0.0.1:19093"))
    assert rendered["alerting"] == {
        "alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:19093"]}]}]
    }
    assert rendered["global"] == SOURCE["global"]


def test_the_shipped_config_sends_alerts_to_alertmanager() -> None:
    shipped = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    targets = shipped["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]  # the compose service


def test_source_without_rule_files(tmp_path: Path, run_dir: Path) -> None:
    config = copy.deepcopy(SOURCE)
    del config["rule_files"]
    rendered = load(render_config(write_source(tmp_path / "conf", config), run_dir, 19090))
    assert not rendered.get("rule_files")


def test_relative_run_dir_still_points_at_the_targets_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = Path("home") / "stack"
    relative.mkdir(parents=True)
    rendered_path = render_config(REPO_CONFIG, relative, 19090)
    (pattern,) = job(load(rendered_path), "salespulse")["file_sd_configs"][0]["files"]
    # How Prometheus reads it: relative paths are relative to the config file's directory.
    seen_by_prometheus = (tmp_path / rendered_path).parent / pattern
    assert seen_by_prometheus.parent.resolve() == (tmp_path / relative / "prometheus-targets")


@pytest.mark.parametrize(
    ("name", "address"),
    [("worker-6066", "127.0.0.1:6066"), ("worker-41234", "127.0.0.1:41234")],
)
def test_register_target_writes_file_sd_json(run_dir: Path, name: str, address: str) -> None:
    rendered = load(render_config(REPO_CONFIG, run_dir, 19090))
    path = register_target(run_dir, name, address)
    groups = orjson.loads(path.read_bytes())
    assert isinstance(groups, list)
    assert groups == [{"targets": [address], "labels": {"instance_name": name}}]
    (pattern,) = job(rendered, "salespulse")["file_sd_configs"][0]["files"]
    assert fnmatch.fnmatch(str(path), pattern)  # Prometheus will pick it up
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{name}.json"]  # no temp left


def test_register_target_replaces_the_previous_address(run_dir: Path) -> None:
    register_target(run_dir, "worker-a", "127.0.0.1:1111")
    register_target(run_dir, "worker-b", "127.0.0.1:2222")
    path = register_target(run_dir, "worker-a", "127.0.0.1:3333")
    assert orjson.loads(path.read_bytes())[0]["targets"] == ["127.0.0.1:3333"]
    targets = {
        p.name: orjson.loads(p.read_bytes())[0]["targets"]
        for p in (run_dir / "prometheus-targets").glob("*.json")
    }
    assert targets == {"worker-a.json": ["127.0.0.1:3333"], "worker-b.json": ["127.0.0.1:2222"]}


def test_register_target_before_render_creates_the_directory(tmp_path: Path) -> None:
    run = tmp_path / "not-yet"
    path = register_target(run, "w", "127.0.0.1:6066")
    assert path == run / "prometheus-targets" / "w.json"
    assert path.is_file()


WEB_TOKEN = SecretStr("the-workers-web-token-0123")


def test_with_a_web_token_the_worker_job_sends_it_from_a_private_file(run_dir: Path) -> None:
    rendered = load(render_config(REPO_CONFIG, run_dir, 19090, web_token=WEB_TOKEN))
    auth = job(rendered, "salespulse")["authorization"]
    assert auth == {"type": "Bearer", "credentials_file": str(run_dir / "web-token")}
    credentials = Path(auth["credentials_file"])
    assert credentials.read_text() == WEB_TOKEN.get_secret_value()
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert "authorization" not in job(rendered, "prometheus")  # Prometheus itself: no token


def test_a_token_file_left_readable_is_made_private_again(run_dir: Path) -> None:
    (run_dir / "web-token").write_text("old")
    (run_dir / "web-token").chmod(0o644)
    render_config(REPO_CONFIG, run_dir, 19090, web_token=WEB_TOKEN)
    assert stat.S_IMODE((run_dir / "web-token").stat().st_mode) == 0o600
    assert (run_dir / "web-token").read_text() == WEB_TOKEN.get_secret_value()


def test_without_a_web_token_no_authorization_is_sent(tmp_path: Path, run_dir: Path) -> None:
    config = copy.deepcopy(SOURCE)
    config["scrape_configs"][0]["authorization"] = {"credentials_file": "/run/secrets/x"}
    rendered = load(render_config(write_source(tmp_path / "conf", config), run_dir, 19090))
    assert "authorization" not in job(rendered, "salespulse")
    assert not (run_dir / "web-token").exists()


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
@pytest.mark.parametrize("web_token", [None, WEB_TOKEN], ids=["open", "with-a-token"])
def test_promtool_accepts_the_rendered_config(run_dir: Path, web_token: SecretStr | None) -> None:
    assert PROMTOOL is not None
    rendered = render_config(REPO_CONFIG, run_dir, 19090, web_token=web_token)
    register_target(run_dir, "worker-6066", "127.0.0.1:6066")
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(rendered)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shipped_alertmanager_config_is_valid_and_groups_per_alert_and_team() -> None:
    amtool = shutil.which("amtool")
    assert amtool, "amtool comes with Debian's prometheus-alertmanager: make install"
    config = REPO / "prometheus" / "alertmanager.yml"
    check = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    route = yaml.safe_load(config.read_text())["route"]
    assert route["group_by"] == ["alertname", "dimension", "key"]
    assert route["receiver"] == "webhook"


def test_a_worker_with_a_token_the_stack_does_not_send_is_told_how_to_fix_it(
    run_dir: Path,
) -> None:
    assert scrape_token_problem(run_dir, None) is None
    problem = scrape_token_problem(run_dir, WEB_TOKEN)
    assert problem is not None
    assert "sends no token" in problem
    assert "salespulse stack down && salespulse stack up" in problem
    render_config(REPO_CONFIG, run_dir, 19090, web_token=WEB_TOKEN)
    assert scrape_token_problem(run_dir, WEB_TOKEN) is None
    assert "sends another token" in str(scrape_token_problem(run_dir, SecretStr("x" * 20)))
