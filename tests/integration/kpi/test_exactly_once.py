"""Effects exactly once: kill -9 during a replay, and two workers, give the reference's values.

Both run on a real broker. The killed worker restarts on its own state directory (see the
README's known problem with empty state directories in faust-streaming 0.15.3).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from streams.settings import Settings
from streams.stack.ports import free_port
from streams.stack.process import spawn
from tests.kafka_tools import needs_kcat, worker_metric
from tests.kpi_tools import (
    admitted,
    late_copies_from,
    mismatches,
    produce,
    reference_results,
    settled,
    simulator_stream,
    wait_for_stream_time,
)
from tests.support import REPO, running_worker, salespulse, settings_env

pytestmark = needs_kcat

START = datetime(2026, 3, 30, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
KINDS = ("minute", "day", "week", "month", "quarter")


def _engine_settings(settings: Settings) -> Settings:
    # Idle closing at 15 s: with two workers, one may wait that long for the other's input.
    # Default retention: the floor's 3-day-old copies are left out of minute buckets (2 days)
    # and correct the day windows (90 days), which were final.
    return settings.model_copy(update={"idle_close_s": 15.0})


def _check(
    settings: Settings, reference: list, stream: list, engine: dict, skip: tuple[str, ...] = ()
) -> None:
    expected = reference_results(settings, reference, stream, now=datetime.now(ZoneInfo("UTC")))
    expected = {k: v for k, v in expected.items() if k[0] not in skip}
    engine = {k: v for k, v in engine.items() if k[0] not in skip}
    problems = mismatches(engine, expected, KINDS)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])


@pytest.mark.timeout(600)  # four worker starts and a settle on a shared machine
def test_kill_9_at_random_points_changes_nothing(tmp_path: Path, settings: Settings) -> None:
    settings = _engine_settings(settings)
    reference, stream = simulator_stream(settings, START, events=2000, seed=5)
    produce(settings, reference + stream)
    rng = random.Random(20261123)
    log = tmp_path / "worker.log"
    kills = 0
    for _ in range(3):  # start, let it work a random while, kill -9 mid-way
        process = spawn(
            salespulse("worker"), log, cwd=REPO, env=settings_env(settings), die_with_parent=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if worker_metric(settings, "salespulse_events_applied_total") > 0:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        time.sleep(rng.uniform(0.2, 2.5))
        os.killpg(process.pid, signal.SIGKILL)  # kill -9: no shutdown, no final commit
        while process.alive():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(process.pid, os.WNOHANG)
            time.sleep(0.05)
        kills += 1
    assert kills == 3
    with running_worker(settings, tmp_path / "worker-final.log"):
        engine = settled(settings)  # every window closed, one final record each
    _check(settings, reference, stream, engine)


def test_two_workers_give_the_same_values_as_the_reference(
    tmp_path: Path, settings: Settings
) -> None:
    settings = _engine_settings(settings)
    second = settings.model_copy(update={"web_port": free_port(), "data_dir": tmp_path / "w2"})
    reference, stream = simulator_stream(settings, START, events=1500, seed=9)
    # The three-day-old copies (and the events after them) arrive once the floor before them
    # is under way, as late events do: lateness is judged against the cluster watermark,
    # which hears of each worker's partitions once per tick, so copies sent in the same
    # burst as the whole floor would be late or not depending on which worker read them how
    # soon (``late_copies_from``).
    cut = late_copies_from(stream)
    head, tail = stream[:cut], stream[cut:]
    with (
        running_worker(settings, tmp_path / "worker-1.log"),
        running_worker(second, tmp_path / "worker-2.log"),
    ):
        produce(settings, reference + head)
        wait_for_stream_time(settings, START)
        produce(settings, tail)
        engine = settled(settings)
        shares = [worker_metric(s, "salespulse_events_applied_total") for s in (settings, second)]
    assert all(share > 0 for share in shares), f"one worker did nothing: {shares}"
    _check(settings, reference, stream, engine)
    # Each worker exports its own share of the counters: their sum is the whole floor.
    counted = admitted(settings, stream)
    assert sum(shares) == len(counted), f"applied {shares} (sum) != {len(counted)} counted events"
