"""Two workers share a floor; one is killed with -9 mid-stream, then a third is started: the
survivor and the newcomer take its partitions over, and every KPI equals the reference, every
final window on ``kpi.updates``."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from streams.settings import Settings
from streams.stack.ports import free_port
from streams.stack.state import StackRecord
from tests.fault_tools import KINDS, PacedFloor, missing_finals, recovery, right_again
from tests.kafka_tools import needs_kcat, worker_metric
from tests.kpi_tools import engine_results, mismatches, reference_results, settled
from tests.kpi_tools import simulator_stream as floor
from tests.support import Services, eventually, running_worker

pytestmark = needs_kcat

START = datetime(2026, 4, 20, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))


def test_a_worker_killed_mid_floor_is_taken_over(
    tmp_path: Path, stack: tuple[StackRecord, Services], fault_settings: Settings
) -> None:
    # Idle closing at 15 s: with two workers, one may wait that long for the other's input.
    first = fault_settings.model_copy(update={"idle_close_s": 15.0})
    second, third = (
        first.model_copy(update={"web_port": free_port(), "data_dir": tmp_path / name})
        for name in ("w2", "w3")
    )
    reference, stream = floor(first, START, events=1200, seed=23)
    with contextlib.ExitStack() as workers:
        workers.enter_context(running_worker(first, tmp_path / "worker-1.log"))
        victim = workers.enter_context(running_worker(second, tmp_path / "worker-2.log"))
        eventually(
            lambda: all(worker_metric(s, "salespulse_assigned_partitions") > 0
                        for s in (first, second)),
            timeout=90,
        )  # fmt: skip
        sending = PacedFloor(first, reference, stream, rate=30).start()
        sending.wait_sent(len(stream) // 3)
        eventually(lambda: worker_metric(second, "salespulse_events_applied_total") > 0)
        eventually(lambda: any(r["final"] for r in engine_results(first).values()))
        os.killpg(victim.pid, signal.SIGKILL)  # kill -9: no shutdown, no final commit
        killed = time.monotonic()
        eventually(lambda: not victim.alive(), timeout=20)
        workers.enter_context(running_worker(third, tmp_path / "worker-3.log"))
        joined = time.monotonic()
        sending.join()
        expected = reference_results(first, reference, stream, now=datetime.now(UTC))
        right_at = right_again(first, expected, since=killed)
        moments = {"the kill": killed, "the third worker's start": joined}
        moments["the floor's last message"] = sending.delivered_at
        print(recovery("kill -9 of one of two workers", right_at, moments))
        engine = settled(first)
        shares = [worker_metric(s, "salespulse_events_applied_total") for s in (first, third)]
    assert all(share > 0 for share in shares), f"a survivor did nothing: {shares}"
    problems = mismatches(engine, expected, KINDS)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    lost = missing_finals(first, engine)
    assert not lost, f"{len(lost)} finals missing from kpi.updates:\n" + "\n".join(lost[:25])
