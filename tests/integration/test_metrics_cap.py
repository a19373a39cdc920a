"""Many distinct reps: /metrics keeps at most SALESPULSE_METRICS_KEY_CAP keys per dimension
(+ ``other``) on a worker, a scrape stays small and quick, and the worker's memory stays
bounded.

100,000 reps (issue #13), each logging one call now (to an account, so the call has one role:
its own counts; an order per rep made the publisher's work ten times larger for nothing this
test needs). With no revenue, the ranking is by key: rep-000000 to rep-000049 keep their own
series, the others are ``other``, whose call count is the sum of theirs.

Before 2026-12-03 a worker died near 13,000 active reps per entity partition: the global,
team and region cells held the set of their active reps, and a partial message past Kafka's
1 MB killed the entity stage (now shard cells: streams/kpi/rep_sets.py). And a scrape read
every key's current cell: 18.5 s at 30,000 reps, past 30 s at 100,000 (now a running sum:
streams/engine/gauge_book.py).
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.kpi.catalog import KPIS
from streams.settings import Settings
from tests.kafka_tools import needs_kcat, worker_metric
from tests.kpi_tools import Message, produce
from tests.support import eventually, running_worker

pytestmark = needs_kcat

REPS = 100_000
# What the worker may reach (VmHWM): 953 MB measured on 2026-12-03 (86 MB at start), 1,364 MB
# with faust's RocksDB buffers and a 100,000-key cache per table (a worker holding every rep's
# cells decoded); the rest grows ~9 MB per 1,000 reps (the publisher's index of its windows,
# memory the allocator keeps: docs/engine.md, "What a flush holds, and memory").
RSS_BOUND_MB = 1200
# A scrape holds at most cap+1 keys for each dimension, window and KPI, whatever the reps
# (series_bound); in bytes, 2 MB: without the cap, 10,000 reps would need at least
# 10,000 x 7 windows x 2 KPIs (calls, connect rate) lines of ~100 bytes, 14 MB.
SCRAPE_BOUND = 2_000_000
# Prometheus gives up on a scrape after its scrape_timeout (10 s by default), and the worker
# answers its API on the same event loop: a scrape must answer well within it whatever the
# reps. It reads the kept keys and running sums (0.1 s at 10,000 reps); reading every key's
# cell took 18.5 s at 30,000 reps.
SCRAPE_SECONDS = 5.0
DIMENSIONS = 7
WINDOWS = 7


def calls(at: datetime) -> list[Message]:
    out: list[Message] = []
    for n in range(REPS):
        account = f"acct-{n % 500}"
        event = {
            "event_id": str(uuid.uuid4()), "type": "call.logged", "occurred_at": at.isoformat(),
            "source": "test", "schema_version": 1, "account_id": account, "call_id": f"c-{n}",
            "rep_id": f"rep-{n:06d}", "direction": "outbound",
            "outcome": "connected" if n % 2 else "no_answer", "duration_s": 60,
        }  # fmt: skip
        out.append(("sales.calls", account.encode(), orjson.dumps(event)))
    return out


def month_rep_calls(page: bytes) -> dict[str, float]:
    """``salespulse_calls`` of the month by rep key in a scrape."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(page.decode()):
        for sample in family.samples:
            labels = sample.labels
            if (sample.name, labels.get("window"), labels.get("dimension")) == (
                "salespulse_calls", "month", "rep"
            ):  # fmt: skip
                out[labels["key"]] = sample.value
    return out


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024


def scrape(settings: Settings) -> bytes:
    url = f"http://127.0.0.1:{settings.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


@pytest.mark.timeout(2400)  # 100,000 calls through the whole engine: ~12 min here
def test_a_hundred_thousand_reps_stay_within_the_key_cap_and_memory_bound(
    tmp_path: Path, settings: Settings
) -> None:
    cap = settings.metrics_key_cap
    now = datetime.now(settings.zone)
    messages = calls(now)
    with running_worker(settings, tmp_path / "worker.log") as process:
        started_mb = peak_rss_mb(process.pid)
        produce(settings, messages)
        # Every call applied and merged by the publisher, in every dimension: the floor's
        # count, and the reps' (kept and other) summed.
        eventually(
            lambda: worker_metric(
                settings, "salespulse_calls", window="month", dimension="global"
            ) == REPS,
            timeout=1500, interval=5,
        )  # fmt: skip
        eventually(lambda: sum(month_rep_calls(scrape(settings)).values()) == REPS, timeout=600)
        began = time.monotonic()
        page = scrape(settings)
        scrape_s = time.monotonic() - began
        peak_mb = peak_rss_mb(process.pid)
        assert process.alive()

    keys: dict[str, set[str]] = defaultdict(set)
    series = 0
    for family in text_string_to_metric_families(page.decode()):
        for sample in family.samples:
            if "dimension" in sample.labels:
                series += 1
                keys[sample.labels["dimension"]].add(sample.labels["key"])
    rep_calls = month_rep_calls(page)
    print(
        f"scrape {len(page)} bytes, {series} KPI series, in {scrape_s:.1f} s; VmHWM "
        f"{peak_mb:.0f} MB (at start {started_mb:.0f} MB)"
    )
    assert len(keys["rep"]) == cap + 1, len(keys["rep"])
    assert all(len(found - {"other"}) <= cap for found in keys.values()), {
        d: len(k) for d, k in keys.items()
    }
    assert set(rep_calls) == {f"rep-{n:06d}" for n in range(cap)} | {"other"}
    assert rep_calls["other"] == REPS - cap
    series_bound = DIMENSIONS * WINDOWS * (cap + 1) * 3 * len(KPIS)
    assert series < series_bound, (series, series_bound)
    assert len(page) < SCRAPE_BOUND, len(page)
    assert scrape_s < SCRAPE_SECONDS, scrape_s
    assert peak_mb < RSS_BOUND_MB, peak_mb
