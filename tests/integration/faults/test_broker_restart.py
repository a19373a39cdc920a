"""The broker stopped for 20 s while a floor is produced, then started again (same data
directory, same port): the producer and the worker wait it out, and every KPI then equals the
reference, every final window on ``kpi.updates``. Meanwhile the worker logs its first
connection error, then summaries of the repeats, not the thousands of lines a second
aiokafka writes (streams.observability.log_repeats)."""

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
    log_since,
    missing_finals,
    most_repeated,
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
# Held back (streams.observability.log_repeats), the repeats are one line per message template per 10 s: in
# a 20 s outage each of the ~8 templates of aiokafka and faust is logged once and summed up
# twice at most, with the worker's status line every 10 s: under 2 lines a second (36 lines
# in 22 s when measured). Without it 208 to 3,500 lines a second were measured, so a bound
# of 10 leaves room for a few more templates and is far below any flood.
MAX_OUTAGE_LINES_PER_S = 10.0
CONNECTION_ERROR = "Unable connect to node with id"


def test_broker_restarted_mid_floor_loses_nothing(
    tmp_path: Path, stack: tuple[StackRecord, Services], fault_settings: Settings
) -> None:
    settings = fault_settings.model_copy(update={"idle_close_s": 3.0})
    record = stack[0]
    reference, stream = floor(settings, START, events=900, seed=17)
    log = tmp_path / "worker.log"
    with running_worker(settings, log) as worker:
        sending = PacedFloor(settings, reference, stream, rate=30).start()
        sending.wait_sent(len(stream) // 4)
        eventually(lambda: any(r["final"] for r in engine_results(settings).values()))
        down, logged_before = time.monotonic(), log.stat().st_size
        stop_service(record, "kafka")
        time.sleep(OUTAGE_S)
        assert worker.alive(), "the worker died while the broker was down"
        outage_log, outage_s = log_since(log, logged_before), time.monotonic() - down
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
    lines = outage_log.splitlines()
    rate = len(lines) / outage_s
    print(f"worker log during the outage: {len(lines)} lines in {outage_s:.1f} s")
    assert rate < MAX_OUTAGE_LINES_PER_S, (
        f"the worker logged {rate:.0f} lines/s while the broker was down "
        f"({len(lines)} in {outage_s:.0f} s), most repeated: {most_repeated(lines)}"
    )
    firsts = [line for line in lines if CONNECTION_ERROR in line and "[repeated" not in line]
    assert firsts, f"no {CONNECTION_ERROR!r} line in the outage's log:\n{outage_log[-3000:]}"
    assert any(CONNECTION_ERROR in line and "[repeated" in line for line in lines), (
        f"no summary of the repeated {CONNECTION_ERROR!r}:\n{outage_log[-3000:]}"
    )
