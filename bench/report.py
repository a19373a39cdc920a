"""The figures of one run: printed as a short report and written as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
LOGS_KEPT = 10
"""Runs whose worker and replay logs are kept (``bench/results/logs/<start>/``)."""


def run_logs(started_at: str, results: Path = RESULTS, kept: int = LOGS_KEPT) -> Path:
    """A new folder for this run's logs, named for its start (UTC, sortable), the
    ``kept`` latest runs' folders kept: a run that stalled can be read after the next."""
    root = results / "logs"
    root.mkdir(parents=True, exist_ok=True)
    folder = root / started_at.replace(":", "")
    n = 1
    while folder.exists():  # two runs started in one second
        n += 1
        folder = root / f"{started_at.replace(':', '')}-{n}"
    folder.mkdir()
    for old in sorted(p for p in root.iterdir() if p.is_dir())[:-kept]:
        for path in old.iterdir():
            path.unlink()
        old.rmdir()
    return folder


def _num(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


def _failed(part: dict[str, Any]) -> str | None:
    if "skipped" in part:
        return f"skipped: {part['skipped']}"
    if "error" in part:
        return f"FAILED: {part['error'].splitlines()[0]}"
    return None


def throughput_lines(size: str, run: dict[str, Any]) -> list[str]:
    head = f"{int(size):,} events:"
    if (why := _failed(run)) is not None:
        return [f"{head} {why}"]
    b, bare, pipe = run["backlog"], run["bare"], run["pipeline"]
    scrape = run.get("metrics_scrape") or {}
    return [
        f"{head} {b['valid']:,} valid, {b['invalid']:,} invalid, {b['duplicates']:,} duplicates "
        f"+ {b['reference']:,} reference records, produced in {b['seconds']:.1f} s",
        f"  bare aiokafka consume+decode: {bare['events_per_s']:>10,.0f} events/s",
        f"  full pipeline (1 worker):     {pipe['events_per_s']:>10,.0f} events/s  "
        f"ratio {pipe['ratio_to_bare']:.4f}  ({pipe['seconds']:.1f} s from the group's "
        f"assignment, {pipe['seconds_from_spawn']:.1f} s from spawn)",
        f"  worker peak RSS (VmHWM):      {_num(run.get('peak_rss_mb'), ' MB'):>13}",
        f"  one /metrics scrape after:    {_num(scrape.get('ms'), ' ms', 1):>13}"
        + (f"  ({scrape['bytes']:,} bytes)" if scrape.get("bytes") else ""),
    ]


def lines(r: dict[str, Any]) -> list[str]:
    out = [f"bench of {r['started_at']} on {r['host']} ({r.get('total_seconds', 0):.0f} s)", ""]
    for size, run in r.get("throughput", {}).items():
        out += throughput_lines(size, run)
    if not r.get("throughput"):
        out.append("throughput: skipped (--sizes empty)")
    lat = r.get("latency") or {}
    if (why := _failed(lat)) is not None:
        out.append(f"latency: {why}")
    elif lat:
        never = f", {lat['missing']:,} never seen" if lat["missing"] else ""
        out.append(
            f"produce -> Redis at {lat['rate']:g}/s for {lat['seconds']:g} s: "
            f"p50 {_num(lat['p50_ms'], ' ms')}, p99 {_num(lat['p99_ms'], ' ms')}, "
            f"max {_num(lat['max_ms'], ' ms')} (n={lat['sent']:,}{never}); worker CPU "
            f"{_num(lat.get('worker_cpu_s_per_s'), ' s/s', 2)} while they flowed"
        )
        if idle := lat.get("idle_ms"):
            out.append(
                f"produce -> Redis on the idle floor, one order at a time: "
                f"{', '.join(f'{ms:.0f}' for ms in idle)} ms"
            )
    crm = r.get("crm") or {}
    if (why := _failed(crm)) is not None:
        out.append(f"CRM replay: {why}")
    elif crm:
        out.append(
            f"CRM replay: settled in {crm['seconds']:.1f} s from the group's assignment "
            f"({crm['kpi_records']:,} KPI records, all final), peak RSS "
            f"{_num(crm.get('peak_rss_mb'), ' MB')}"
        )
    out += ["", "summary:"]
    summary: dict[str, Any] = r.get("summary", {})
    missing: dict[str, str] = r.get("summary_missing", {})
    width = max((len(k) for k in summary), default=0)
    for key, value in summary.items():
        shown = "null" if value is None else f"{value:,}"
        why = f"  ({missing[key]})" if key in missing else ""
        out.append(f"  {key:<{width}}  {shown}{why}")
    return out


def write(r: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "latest.json"
    path.write_text(json.dumps(r, indent=2) + "\n")
    return path
