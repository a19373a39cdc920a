"""The figures of one run: printed as a short table and written as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"


def lines(r: dict[str, Any]) -> list[str]:
    b, bare, pipe = r["backlog"], r["bare"], r["pipeline"]
    out = [
        f"bench: {b['events']:,} events ({b['valid']:,} valid, {b['invalid']:,} invalid, "
        f"{b['duplicates']:,} duplicates) + {b['reference']:,} reference records, "
        f"produced in {b['seconds']:.1f} s",
        f"bare aiokafka consume+decode: {bare['events_per_s']:>9,.0f} events/s",
        f"full pipeline (1 worker):     {pipe['events_per_s']:>9,.0f} events/s  "
        f"(ratio {pipe['ratio_to_bare']:.3f}; {pipe['seconds']:.1f} s from start of "
        f"consumption, {pipe['seconds_from_spawn']:.1f} s from spawn)",
    ]
    rss = r.get("worker_peak_rss_mb")
    out.append(f"worker peak RSS:              {rss:>9,.0f} MB" if rss else "worker peak RSS: n/a")
    if "probe_seconds" in r:
        out.append(
            f"Redis caught up with the backlog:  {r['probe_seconds']:>5.1f} s after the last "
            "event was applied (probe order)"
        )
    lat = r.get("latency")
    if lat:
        out.append(
            f"produce -> Redis latency at {lat['rate']:g}/s for {lat['seconds']:g} s: "
            f"p50 {_ms(lat['p50_ms'])}, p99 {_ms(lat['p99_ms'])}, max {_ms(lat['max_ms'])} "
            f"(n={lat['seen']:,}" + (f", {lat['missing']:,} never seen)" if lat["missing"] else ")")
        )
    return out


def write(r: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "latest.json"
    path.write_text(json.dumps(r, indent=2) + "\n")
    return path
