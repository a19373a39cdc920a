"""The broker stopped for longer than the worker's request timeout (5 s here, down 20 s)
while a floor is produced: the sends of a flush expire, so the worker stops before any
offset past it is committed, naming the cause and the fix in its log. Started again on the
same data directory once the broker is back, it rebuilds its tables from their changelogs
(they may hold writes whose changelog records expired) and resumes from the committed
offsets: every KPI equals the reference, every final window is on ``kpi.updates``. Then a
worker on a fresh data directory, with Redis emptied, restores every table from the
changelogs and writes the read model from them alone: every KPI is still right (a changelog
lagging its table, issue #13, would show here)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from streams.settings import Settings
from streams.stack.state import StackRecord
from tests.fault_tools import (
    KINDS,
    PacedFloor,
    missing_finals,
    recovery,
    restart_service,
    right_again,
    stop_service,
    stopped_within,
)
from tests.kafka_tools import needs_kcat
from tests.kpi_tools import Key, engine_results, mismatches, reference_results, settled
from tests.kpi_tools import simulator_stream as floor
from tests.reference.kpis import Result
from tests.support import Services, eventually, running_worker

pytestmark = needs_kcat

START = datetime(2026, 4, 27, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
REQUEST_TIMEOUT_S = 5.0
OUTAGE_S = 20.0


def test_sends_expired_in_a_long_broker_outage_stop_the_worker_and_lose_nothing(
    tmp_path: Path, stack: tuple[StackRecord, Services], fault_settings: Settings
) -> None:
    settings = fault_settings.model_copy(
        update={"idle_close_s": 3.0, "kafka_request_timeout_s": REQUEST_TIMEOUT_S}
    )
    record = stack[0]
    reference, stream = floor(settings, START, events=900, seed=29)
    first_log = tmp_path / "worker-1.log"
    with running_worker(settings, first_log) as first:
        sending = PacedFloor(settings, reference, stream, rate=30).start()
        sending.wait_sent(len(stream) // 4)
        eventually(lambda: any(r["final"] for r in engine_results(settings).values()))
        stop_service(record, "kafka")
        time.sleep(OUTAGE_S)
        restart_service(record, "kafka")
        back = time.monotonic()
        # Checked last: a worker that goes on is stopped here, and the numbers then show
        # what it lost.
        stopped = stopped_within(first, timeout=60)
    # Restarted as compose's `restart: unless-stopped` would: same settings, same data.
    second_log = tmp_path / "worker-2.log"
    with running_worker(settings, second_log):
        sending.join()
        expected = reference_results(settings, reference, stream, now=datetime.now(UTC))
        right_at = right_again(settings, expected, since=back)
        print(recovery(f"broker down {OUTAGE_S:.0f} s", right_at, {"its restart": back}))
        engine = settled(settings)
    assert_right(settings, engine, expected)
    assert stopped, "the worker went on after its sends expired"
    first_words = first_log.read_text(errors="replace")
    assert "SALESPULSE_KAFKA_REQUEST_TIMEOUT_S" in first_words, first_words[-3000:]
    restarted = second_log.read_text(errors="replace")
    assert "rebuilt from their changelogs" in restarted, restarted[:3000]
    # Whoever takes these partitions later (a rebalance, a lost disk) restores them from the
    # changelogs. Redis restarted empty makes that worker write every value from its
    # restored tables (it would keep the right ones already there otherwise).
    stop_service(record, "redis")
    restart_service(record, "redis")
    fresh = settings.model_copy(update={"data_dir": tmp_path / "fresh-data"})
    with running_worker(fresh, tmp_path / "worker-3.log"):
        right_again(fresh, expected, since=time.monotonic())
        restored = settled(fresh)
    assert_right(fresh, restored, expected)


def assert_right(
    settings: Settings, engine: dict[Key, dict[str, Any]], expected: dict[Key, Result]
) -> None:
    """Every KPI of ``engine`` (Redis) equals the reference; every final is on kpi.updates."""
    problems = mismatches(engine, expected, KINDS)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    lost = missing_finals(settings, engine)
    assert not lost, f"{len(lost)} finals missing from kpi.updates:\n" + "\n".join(lost[:25])
