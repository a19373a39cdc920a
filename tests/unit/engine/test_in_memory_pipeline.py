"""The engine's three stages, in memory (``tests/harness.py``), against the reference.

The ingest stage, the entity stage and the publisher run as the worker wires them, over
in-memory topics and dict tables: no broker, no Redis. The simulated floor brings
duplicates, out-of-order events, invalid messages and events three days late, over the night
the clocks go forward in Paris; every KPI of every minute, day, week, month and quarter
window must equal ``tests/reference/``, with one final record per window on
``kpi.updates``, and every output record must keep its contract (``schemas/``). The same
checks run on a real broker in ``tests/integration/kpi/test_reference_simulator.py``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from streams.settings import Settings
from tests.harness import InMemoryPipeline, run_in_memory
from tests.kpi_tools import Message, admitted, mismatches, reference_results, simulator_stream
from tests.output_contracts import dead_letter_errors, kpi_update_errors, late_errors

START = datetime(2026, 3, 28, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
KINDS = ("minute", "day", "week", "month", "quarter")
# Idle closing after half a second: the run lasts seconds, not the minute a worker waits.
SETTINGS = Settings().model_copy(update={"idle_close_s": 0.5})


@pytest.fixture(scope="module")
def floor() -> tuple[list[Message], list[Message]]:
    return simulator_stream(SETTINGS, START, events=3000)


@pytest.fixture(scope="module")
def pipeline(floor: tuple[list[Message], list[Message]]) -> InMemoryPipeline:
    reference, stream = floor
    return run_in_memory(SETTINGS, reference, stream)


def _problems(engine: dict, reference: list[Message], stream: list[Message]) -> list[str]:
    expected = reference_results(SETTINGS, reference, stream, now=datetime.now(ZoneInfo("UTC")))
    assert sum(1 for key in expected if key[1] == "day" and key[0] == "revenue") > 0
    return mismatches(engine, expected, KINDS)


def test_every_kpi_equals_the_reference(
    floor: tuple[list[Message], list[Message]], pipeline: InMemoryPipeline
) -> None:
    problems = _problems(pipeline.results(), *floor)
    summary = Counter(p.split(",")[0] + "," + p.split(",")[1] for p in problems)
    assert not problems, (
        f"{len(problems)} differences {summary.most_common(20)}, first ones:\n"
        + "\n".join(problems[:25])
    )


def test_one_final_record_per_window_then_only_corrections(pipeline: InMemoryPipeline) -> None:
    engine = pipeline.results()
    finals: dict[str, set[tuple[int, str]]] = defaultdict(set)
    corrections: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for record in pipeline.updates.records():
        assert record.key is not None
        update = orjson.loads(record.value)
        if update["final"]:
            found = corrections if update["correction"] else finals
            found[record.key.decode()].add((update["revision"], str(update["value"])))
    final_windows = {k: v for k, v in finals.items() if not k.startswith("lead_conversion_rate/")}
    assert final_windows, "no final record on kpi.updates"
    repeated = {k: v for k, v in final_windows.items() if len(v) != 1}
    assert not repeated, f"windows with more than one final record: {list(repeated.items())[:5]}"
    # every window of the read model is final
    open_windows = [k for k, record in engine.items() if k[1] != "live" and not record["final"]]
    assert not open_windows, open_windows[:5]
    for k, v in corrections.items():
        kpi, kind, start, dim, key = k.split("/", 4)
        stored = engine[(kpi, kind, int(datetime.fromisoformat(start).timestamp()), dim, key)]
        assert stored["final"], f"a correction of a window that is not final: {k}"
        closing = min((min(r for r, _ in f) for w, f in finals.items()
                       if w.split("/", 1)[1] == k.split("/", 1)[1]), default=None)  # fmt: skip
        assert closing is None or min(r for r, _ in v) > closing, (k, v, closing)
    assert not any(k.split("/")[1] == "minute" for k in corrections), "minutes are past retention"


def test_late_and_invalid_events_reach_their_topics_in_contract(
    floor: tuple[list[Message], list[Message]], pipeline: InMemoryPipeline
) -> None:
    _, stream = floor
    late = pipeline.late.envelopes()
    dead = pipeline.deadletter.envelopes()
    # what the reference leaves out of a window past its retention: on sales.late, once each
    left_out = sorted(a.event.event_id for a in admitted(SETTINGS, stream) if a.late_for)
    assert left_out, "the floor has 3-day-old events"
    assert sorted(orjson.loads(str(m["payload"]))["event_id"] for m in late) == left_out
    # the invalid messages: every message the reference does not admit, duplicates aside
    valid = admitted(SETTINGS, stream, retention=False)
    assert dead, "the floor has invalid messages"
    assert len(dead) == len(stream) - len(valid) - pipeline.stats.duplicates.total()
    # kpi.updates: one record of each shape (KPI, window kind, final, correction, null value);
    # the integration test validates every record of its floor
    shapes: dict[tuple[str, str, bool, bool, bool], dict[str, Any]] = {}
    for envelope in pipeline.updates.envelopes():
        update = orjson.loads(str(envelope["payload"]))
        shape = (update["kpi"], update["window"]["kind"], update["final"], update["correction"],
                 update["value"] is None)  # fmt: skip
        shapes.setdefault(shape, envelope)
    assert len({kpi for kpi, *_ in shapes}) > 30, "most KPIs on kpi.updates"
    updates = list(shapes.values())
    errors = kpi_update_errors(updates, SETTINGS) + late_errors(late) + dead_letter_errors(dead)
    assert not errors, f"{len(errors)} records break their contract:\n" + "\n".join(errors[:20])


def test_batches_and_partitions_change_no_value(floor: tuple[list[Message], list[Message]]) -> None:
    """One entity partition and batches of 7 messages: every value equals the reference
    too, as with the other tests' four partitions and batches of 500 (a round's batch is
    what faust hands an agent between flushes)."""
    reference, stream = floor
    other = run_in_memory(SETTINGS, reference, stream[:1500], partitions=1, batch=7)
    assert not _problems(other.results(), reference, stream[:1500])


@pytest.mark.parametrize(
    ("batch", "crash_at"),
    [(300, (0, 3, 4)), (137, (5, 11, 17, 23)), (250, tuple(range(0, 31, 2)))],
)
def test_a_worker_killed_after_its_flushes_changes_nothing(
    floor: tuple[list[Message], list[Message]], batch: int, crash_at: tuple[int, ...]
) -> None:
    """kill -9 in memory: at each round of ``crash_at`` the worker dies once its stages
    flushed (table writes, sends) and before any offset is committed; a new one reads the
    whole round again, over the tables and topics it left (the last case: every other round
    lost, the worker restarted 16 times). Every KPI equals the reference; sales.late still
    has each left-out event once."""
    reference, stream = floor
    pipeline = run_in_memory(SETTINGS, reference, stream, batch=batch, crash_at=crash_at)
    assert pipeline.crashes == len(crash_at)
    problems = _problems(pipeline.results(), reference, stream)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    late = [orjson.loads(record.value)["event_id"] for record in pipeline.late.records()]
    assert sorted(late) == sorted(
        a.event.event_id for a in admitted(SETTINGS, stream) if a.late_for
    )
