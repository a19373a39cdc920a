"""bench.summary: the flat summary of a run and why a key is null (no broker)."""

from __future__ import annotations

from typing import Any

from bench import summary


def run(rate: float, bare: float, rss: float | None = 300.0, scrape: float = 12.5) -> dict:
    return {
        "backlog": {"events": 1},
        "bare": {"events_per_s": bare},
        "pipeline": {"events_per_s": rate, "seconds": 1.0},
        "peak_rss_mb": rss,
        "metrics_scrape": {"ms": scrape, "bytes": 1000},
    }


def latency(
    rate: float = 1000.0, seen: list[float] | None = None, missing: int = 0, reps: int = 40,
    idle: list[float] | None = None, cpu: float | None = 0.9834,
) -> dict:  # fmt: skip
    seen = [float(i) for i in range(1, 101)] if seen is None else seen
    return {
        "rate": rate, "reps": reps, "sent": len(seen) + missing, "missing": missing, "drain_timeout_s": 60.0,
        "p50_ms": summary.percentile(seen, missing, 0.5),
        "p99_ms": summary.percentile(seen, missing, 0.99),
        "idle_ms": [200.0, 170.04, 180.0] if idle is None else idle,
        "worker_cpu_s_per_s": cpu,
    }  # fmt: skip


def full() -> dict[str, Any]:
    return {
        "throughput": {"20000": run(500.0, 100_000.0), "200000": run(400.0, 80_000.0, 900.0)},
        "latency": latency(),
        "crm": {"seconds": 250.123, "peak_rss_mb": 3500.04, "kpi_records": 10},
    }


def test_every_key_is_there_exactly_once() -> None:
    got, missing = summary.build(full())
    assert list(got) == list(summary.KEYS)
    assert set(summary.KEYS) == {
        "ratio_to_bare_20k", "ratio_to_bare_200k", "events_per_s_20k", "events_per_s_200k",
        "peak_rss_mb_20k", "peak_rss_mb_200k", "latency_p50_ms_1000", "latency_p99_ms_1000",
        "latency_idle_p50_ms", "latency_worker_cpu_1000", "crm_replay_seconds", "crm_replay_peak_rss_mb", "metrics_scrape_ms",
    }  # fmt: skip
    assert missing == {}


def test_figures_of_a_full_run() -> None:
    got, _ = summary.build(full())
    assert got["ratio_to_bare_20k"] == 0.005
    assert got["ratio_to_bare_200k"] == 0.005
    assert got["events_per_s_20k"] == 500.0
    assert got["events_per_s_200k"] == 400.0
    assert got["peak_rss_mb_20k"] == 300.0
    assert got["peak_rss_mb_200k"] == 900.0
    assert got["latency_p50_ms_1000"] == 51.0  # nearest rank of 1..100
    assert got["latency_p99_ms_1000"] == 99.0
    assert got["latency_idle_p50_ms"] == 180.0  # the median of the idle orders
    assert got["latency_worker_cpu_1000"] == 0.983
    assert got["crm_replay_seconds"] == 250.12
    assert got["crm_replay_peak_rss_mb"] == 3500.0
    assert got["metrics_scrape_ms"] == 12.5


def test_a_quick_run_leaves_the_sizes_it_did_not_measure_null_with_a_reason() -> None:
    result = {"throughput": {"2000": run(500.0, 100_000.0)}, "latency": latency(rate=50.0),
              "crm": {"skipped": "--skip-crm"}}  # fmt: skip
    got, missing = summary.build(result)
    # The idle orders are one at a time whatever the steady rate: their figure stands.
    assert got.pop("latency_idle_p50_ms") == 180.0
    assert all(value is None for value in got.values())
    assert set(missing) == set(summary.KEYS) - {"latency_idle_p50_ms"}
    assert missing["latency_worker_cpu_1000"] == "latency measured at 50 events/s, not 1000"
    assert missing["events_per_s_20k"] == "the 20,000-event run was not run"
    assert missing["metrics_scrape_ms"] == "the 200,000-event run was not run"
    assert "50 events/s" in missing["latency_p99_ms_1000"]
    assert missing["crm_replay_seconds"] == "the CRM replay skipped: --skip-crm"


def test_latency_over_another_floor_size_is_null_with_a_reason() -> None:
    result = full()
    result["latency"] = latency(reps=30_000)  # a rep per event: no floor is like that
    got, missing = summary.build(result)
    assert got["latency_p99_ms_1000"] is None
    assert missing["latency_p99_ms_1000"] == "latency measured over 30000 reps, not 40 (a floor's)"


def test_a_failed_part_is_null_with_its_error_and_the_others_stand() -> None:
    result = full()
    result["throughput"]["200000"] = {"error": "the pipeline did not drain in 900 s\nlog..."}
    result["crm"] = {"skipped": "the CRM export is not at /x"}
    got, missing = summary.build(result)
    assert got["events_per_s_20k"] == 500.0
    assert got["ratio_to_bare_200k"] is None
    assert missing["ratio_to_bare_200k"] == (
        "the 200,000-event run failed: the pipeline did not drain in 900 s"
    )
    assert got["metrics_scrape_ms"] is None
    assert "failed" in missing["metrics_scrape_ms"]
    assert got["crm_replay_seconds"] is None
    assert "not at /x" in missing["crm_replay_peak_rss_mb"]


def test_latency_never_seen_counts_as_slowest() -> None:
    seen = [10.0] * 97
    assert summary.percentile(seen, 3, 0.5) == 10.0
    assert summary.percentile(seen, 3, 0.99) is None  # the 99th percentile was never seen
    assert summary.percentile([], 0, 0.5) is None
    result = full()
    result["latency"] = latency(seen=seen, missing=3)
    got, missing = summary.build(result)
    assert got["latency_p50_ms_1000"] == 10.0
    assert got["latency_p99_ms_1000"] is None
    assert missing["latency_p99_ms_1000"].startswith("3 of 100 events never reached Redis")


def test_an_unreadable_rss_is_null_with_a_reason() -> None:
    result = full()
    result["throughput"]["20000"] = run(500.0, 100_000.0, rss=None)
    got, missing = summary.build(result)
    assert got["peak_rss_mb_20k"] is None
    assert missing["peak_rss_mb_20k"] == "the worker's VmHWM could not be read"


def test_no_idle_order_or_no_cpu_time_is_null_with_a_reason() -> None:
    result = full()
    result["latency"] = latency(idle=[], cpu=None)
    got, missing = summary.build(result)
    assert got["latency_idle_p50_ms"] is None
    assert missing["latency_idle_p50_ms"] == "no idle order was measured"
    assert got["latency_worker_cpu_1000"] is None
    assert missing["latency_worker_cpu_1000"] == "the worker's CPU time could not be read"
    assert got["latency_p99_ms_1000"] == 99.0  # the steady figures stand
    assert got["crm_replay_seconds"] == 250.12


def test_a_latency_part_that_failed_leaves_the_crm_figures_standing() -> None:
    result = full()
    result["latency"] = {"error": "the worker exited\nlog..."}
    got, missing = summary.build(result)
    for key in ("latency_p50_ms_1000", "latency_idle_p50_ms", "latency_worker_cpu_1000"):
        assert got[key] is None
        assert missing[key] == "the latency part failed: the worker exited"
    assert got["crm_replay_seconds"] == 250.12
