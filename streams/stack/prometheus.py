"""A local ``prometheus`` (Debian package) with the project's scrape config."""

from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import SecretStr

from streams.stack.errors import StackError
from streams.stack.ports import HOST
from streams.stack.process import ProcessRecord, log_tail, spawn

READY_TIMEOUT_S = 30.0
WORKER_JOB = "salespulse"
TARGETS_DIR = "prometheus-targets"
TOKEN_FILE = "web-token"  # the workers' SALESPULSE_WEB_TOKEN, sent when scraping them


def render_config(
    source: Path, run_dir: Path, port: int, alertmanager: str | None = None,
    web_token: SecretStr | None = None,
) -> Path:  # fmt: skip
    """The project's ``prometheus.yml`` rewritten for this machine.

    Only the addresses change: the ``salespulse`` job reads its targets from JSON files in
    ``<run_dir>/prometheus-targets/`` (one per local worker, see ``register_target``), the
    self-scrape job points at the real port, rule files become absolute paths, and alerts go
    to the local Alertmanager at ``alertmanager`` (host:port; when None, ``alerting`` is kept).
    With ``web_token`` (the workers' SALESPULSE_WEB_TOKEN) the ``salespulse`` job sends it as
    ``Authorization: Bearer``, read from ``<run_dir>/web-token`` (mode 0600); without, it sends
    none.
    """
    run_dir = run_dir.resolve()  # Prometheus runs in run_dir and resolves paths from there
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    config["rule_files"] = [
        str((source.parent / rule).resolve()) for rule in config.get("rule_files") or []
    ]
    for job in config.get("scrape_configs", []):
        if job["job_name"] == WORKER_JOB:
            job.pop("static_configs", None)
            job["file_sd_configs"] = [
                {"files": [str(run_dir / TARGETS_DIR / "*.json")], "refresh_interval": "5s"}
            ]
            job.pop("authorization", None)
            if web_token is not None:
                credentials = write_token(run_dir / TOKEN_FILE, web_token)
                job["authorization"] = {"type": "Bearer", "credentials_file": str(credentials)}
        elif job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [f"{HOST}:{port}"]}]
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    (run_dir / TARGETS_DIR).mkdir(exist_ok=True)
    rendered = run_dir / "prometheus.yml"
    rendered.write_text(yaml.safe_dump(config, sort_keys=False))
    return rendered


def write_token(path: Path, token: SecretStr) -> Path:
    """``token`` in ``path``, readable by this user only (0600, also when it existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.get_secret_value().encode())
    finally:
        os.close(fd)
    return path


def scrape_token_problem(run_dir: Path, token: SecretStr | None) -> str | None:
    """Why the Prometheus of the stack in ``run_dir`` would get 401 from a worker with
    ``token`` (None when it would not: the worker has no token, or the stack sends it)."""
    if token is None:
        return None
    try:
        sent: str | None = (run_dir / TOKEN_FILE).read_text()
    except OSError:
        sent = None
    if sent == token.get_secret_value():
        return None
    which = "no token" if sent is None else "another token"
    return (
        f"the local stack's Prometheus sends {which}: this worker will refuse its scrapes "
        "(401). Restart the stack with this SALESPULSE_WEB_TOKEN set: "
        "`salespulse stack down && salespulse stack up`"
    )


def register_target(run_dir: Path, name: str, address: str) -> Path:
    """Make the local Prometheus scrape a worker at ``address`` (host:port)."""
    path = run_dir / TARGETS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps([{"targets": [address], "labels": {"instance_name": name}}]))
    tmp.replace(path)  # atomic: Prometheus never reads half a file
    return path


def start_prometheus(
    run_dir: Path, source: Path, port: int, *, die_with_parent: bool,
    alertmanager: str | None = None, web_token: SecretStr | None = None,
) -> ProcessRecord:  # fmt: skip
    """Start prometheus on ``port`` and return once ``/-/ready`` answers 200."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise StackError(
            "prometheus is not installed: run `apt-get install -y prometheus` as root "
            "(`make install` does it when run as root)."
        )
    if not source.is_file():
        raise StackError(f"the project's Prometheus config {source} is missing.")
    run_dir = run_dir.resolve()
    config = render_config(source, run_dir, port, alertmanager, web_token)
    log = run_dir / "prometheus.log"
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={run_dir / 'prometheus-data'}",
        f"--web.listen-address={HOST}:{port}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=2d",
    ]
    process = spawn(argv, log, cwd=run_dir, die_with_parent=die_with_parent)
    url = f"http://{HOST}:{port}/-/ready"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not process.alive():
            raise StackError(f"prometheus exited during start-up:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return process
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    process.stop()
    raise StackError(f"prometheus did not become ready at {url}:\n{log_tail(log)}")
