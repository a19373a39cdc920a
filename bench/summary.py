"""The flat ``summary`` of a run, built from its detailed result (pure: unit tested).

Every key is always there; a key whose part was skipped or failed is None, and
``summary_missing`` says why.
"""

from __future__ import annotations

from typing import Any

from bench.latency import REPS as LATENCY_REPS

SIZES = {20_000: "20k", 200_000: "200k"}
LATENCY_RATE = 1000.0
KEYS = (
    "ratio_to_bare_20k",
    "ratio_to_bare_200k",
    "events_per_s_20k",
    "events_per_s_200k",
    "peak_rss_mb_20k",
    "peak_rss_mb_200k",
    "latency_p50_ms_1000",
    "latency_p99_ms_1000",
    "latency_idle_p50_ms",
    "latency_worker_cpu_1000",
    "crm_replay_seconds",
    "crm_replay_peak_rss_mb",
    "metrics_scrape_ms",
)


def percentile(seen_ms: list[float], missing: int, q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of the latencies, events never seen counting as
    slower than any seen one: None when the rank falls among those never seen."""
    total = len(seen_ms) + missing
    if total == 0:
        return None
    rank = min(total - 1, round(q * (total - 1)))
    if rank >= len(seen_ms):
        return None
    return sorted(seen_ms)[rank]


def _why(part: dict[str, Any] | None, what: str) -> str:
    if part is None:
        return f"{what} was not run"
    if "skipped" in part:
        return f"{what} skipped: {part['skipped']}"
    if "error" in part:
        return f"{what} failed: {part['error'].splitlines()[0]}"
    return f"{what}: no figure"


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _latency(
    lat: dict[str, Any] | None, summary: dict[str, float | None], missing: dict[str, str]
) -> None:
    steady = ("latency_p50_ms_1000", "latency_p99_ms_1000", "latency_worker_cpu_1000")
    if lat is None or "sent" not in lat:
        for key in (*steady, "latency_idle_p50_ms"):
            missing[key] = _why(lat, "the latency part")
        return
    # One order at a time on the idle floor: whatever the steady rate's options.
    summary["latency_idle_p50_ms"] = _round(percentile(lat.get("idle_ms") or [], 0, 0.5), 1)
    if summary["latency_idle_p50_ms"] is None:
        missing["latency_idle_p50_ms"] = "no idle order was measured"
    if lat["rate"] != LATENCY_RATE:
        for key in steady:
            missing[key] = f"latency measured at {lat['rate']:g} events/s, not {LATENCY_RATE:g}"
        return
    if lat.get("reps") != LATENCY_REPS:
        for key in steady:
            missing[key] = (
                f"latency measured over {lat.get('reps')} reps, not {LATENCY_REPS} (a floor's)"
            )
        return
    for name, key in (("p50_ms", "latency_p50_ms_1000"), ("p99_ms", "latency_p99_ms_1000")):
        summary[key] = _round(lat.get(name), 1)
        if summary[key] is None:
            missing[key] = (
                f"{lat['missing']:,} of {lat['sent']:,} events never reached Redis within "
                f"{lat['drain_timeout_s']:g} s of the last send: the quantile is among them"
            )
    # CPU seconds per second of the worker while the orders flowed: near 1, its event loop
    # (one thread) was saturated and the latency grew with its queue.
    summary["latency_worker_cpu_1000"] = _round(lat.get("worker_cpu_s_per_s"), 3)
    if summary["latency_worker_cpu_1000"] is None:
        missing["latency_worker_cpu_1000"] = "the worker's CPU time could not be read"


def build(result: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, str]]:
    """(summary, why each None key is None) from a run's result."""
    summary: dict[str, float | None] = dict.fromkeys(KEYS)
    missing: dict[str, str] = {}
    sizes: dict[str, dict[str, Any]] = result.get("throughput", {})

    for size, tag in SIZES.items():
        run = sizes.get(str(size))
        pipe = (run or {}).get("pipeline")
        bare = (run or {}).get("bare")
        if run is None or pipe is None or bare is None or "error" in run:
            why = _why(run, f"the {size:,}-event run")
            for key in (f"ratio_to_bare_{tag}", f"events_per_s_{tag}", f"peak_rss_mb_{tag}"):
                missing[key] = why
        else:
            summary[f"events_per_s_{tag}"] = _round(pipe["events_per_s"], 1)
            summary[f"ratio_to_bare_{tag}"] = _round(pipe["events_per_s"] / bare["events_per_s"], 5)
            summary[f"peak_rss_mb_{tag}"] = _round(run.get("peak_rss_mb"), 1)
            if summary[f"peak_rss_mb_{tag}"] is None:
                missing[f"peak_rss_mb_{tag}"] = "the worker's VmHWM could not be read"
    big = sizes.get("200000")
    scrape = (big or {}).get("metrics_scrape")
    if scrape and scrape.get("ms") is not None:
        summary["metrics_scrape_ms"] = _round(scrape["ms"], 1)
    elif big is not None and big.get("pipeline") is not None and scrape is not None:
        missing["metrics_scrape_ms"] = f"the scrape failed: {scrape.get('error')}"
    else:
        missing["metrics_scrape_ms"] = _why(big, "the 200,000-event run")

    _latency(result.get("latency"), summary, missing)

    crm = result.get("crm")
    if crm is None or "seconds" not in crm:
        for key in ("crm_replay_seconds", "crm_replay_peak_rss_mb"):
            missing[key] = _why(crm, "the CRM replay")
    else:
        summary["crm_replay_seconds"] = _round(crm["seconds"], 2)
        summary["crm_replay_peak_rss_mb"] = _round(crm.get("peak_rss_mb"), 1)
        if summary["crm_replay_peak_rss_mb"] is None:
            missing["crm_replay_peak_rss_mb"] = "the worker's VmHWM could not be read"
    return summary, missing
