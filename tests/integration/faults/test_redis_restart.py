"""Redis stopped for 30 s while a floor is produced, then started again, empty (the stack's
Redis keeps nothing on disk): the worker keeps consuming meanwhile and ``/ready`` says Redis is down; once Redis is back
the worker writes the whole read model again, within seconds. Every KPI then equals the
reference, and every final window is on ``kpi.updates``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from streams.settings import Settings
from streams.stack.state import StackRecord
from tests.fault_tools import (
    KINDS,
    PacedFloor,
    missing_finals,
    readiness,
    recovery,
    restart_service,
    right_again,
    stop_service,
)
from tests.kafka_tools import needs_kcat, worker_metric
from tests.kpi_tools import engine_results, mismatches, reference_results, settled
from tests.kpi_tools import simulator_stream as floor
from tests.support import Services, eventually, running_worker

pytestmark = needs_kcat

START = datetime(2026, 4, 6, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
OUTAGE_S = 30.0


def test_redis_restarted_empty_gets_the_whole_read_model_back(
    tmp_path: Path, stack: tuple[StackRecord, Services], fault_settings: Settings
) -> None:
    settings = fault_settings.model_copy(update={"idle_close_s": 3.0})
    record = stack[0]
    reference, stream = floor(settings, START, events=900, seed=13)
    with running_worker(settings, tmp_path / "worker.log") as worker:
        sending = PacedFloor(settings, reference, stream, rate=30).start()
        sending.wait_sent(len(stream) // 4)
        eventually(lambda: any(r["final"] for r in engine_results(settings).values()))
        stop_service(record, "redis")
        applied_before = worker_metric(settings, "salespulse_events_applied_total")
        time.sleep(OUTAGE_S)
        assert worker.alive(), "the worker died while Redis was down"
        applied_during = worker_metric(settings, "salespulse_events_applied_total")
        assert applied_during > applied_before, "the worker stopped consuming without Redis"
        status, answer = readiness(settings)
        assert status == 503, answer
        assert any(reason.startswith("redis: ") for reason in answer["reasons"]), answer
        restart_service(record, "redis")
        back = time.monotonic()
        ready_at = eventually(lambda: readiness(settings)[0] == 200 and time.monotonic())
        print(f"/ready answered 200 again {ready_at - back:.1f} s after Redis's return")
        sending.join()
        expected = reference_results(settings, reference, stream, now=datetime.now(UTC))
        right_at = right_again(settings, expected, since=back)
        fault = f"Redis down {OUTAGE_S:.0f} s ({applied_during - applied_before:.0f} applied)"
        last = {"its return": back, "the floor's last message": sending.delivered_at}
        print(recovery(fault, right_at, last))
        engine = settled(settings)
    problems = mismatches(engine, expected, KINDS)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    lost = missing_finals(settings, engine)
    assert not lost, f"{len(lost)} finals missing from kpi.updates:\n" + "\n".join(lost[:25])
