"""The broker stopped for 20 s while a floor is produced, then started again (same data
directory, same port): the producer and the worker wait it out, and every KPI then equals the
reference, every final window on ``kpi.updates``."""

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
    recovery,
    restart_service,
    right_again,
    stop_service,
)
from tests.kafka_tools import needs_kcat
from tests.kpi_tools import engine_results, mismatches, reference_results, settled
from tests.kpi_tools import simulator_stream as floor
from tests.support import Services, eventually, running_worker

pytestmark = needs_kcat

START = datetime(2026, 4, 13, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
OUTAGE_S = 20.0


def test_broker_restarted_mid_floor_loses_nothing(
    tmp_path: Path, stack: tuple[StackRecord, Services], fault_settings: Settings
) -> None:
    settings = fault_settings.model_copy(update={"idle_close_s": 3.0})
    record = stack[0]
    reference, stream = floor(settings, START, events=900, seed=17)
    with running_worker(settings, tmp_path / "worker.log") as worker:
        sending = PacedFloor(settings, reference, stream, rate=30).start()
        sending.wait_sent(len(stream) // 4)
        eventually(lambda: any(r["final"] for r in engine_results(settings).values()))
        stop_service(record, "kafka")
        time.sleep(OUTAGE_S)
        assert worker.alive(), "the worker died while the broker was down"
        restart_service(record, "kafka")
        back = time.monotonic()
        sending.join()
        expected = reference_results(settings, reference, stream, now=datetime.now(UTC))
        right_at = right_again(settings, expected, since=back)
        last = {"its restart": back, "the floor's last message": sending.delivered_at}
        print(recovery(f"broker down {OUTAGE_S:.0f} s", right_at, last))
        engine = settled(settings)
    problems = mismatches(engine, expected, KINDS)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    lost = missing_finals(settings, engine)
    assert not lost, f"{len(lost)} finals missing from kpi.updates:\n" + "\n".join(lost[:25])
