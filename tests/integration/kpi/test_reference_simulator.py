"""The engine against the reference implementation on a simulated floor (real broker).

The floor brings duplicates, out-of-order events, invalid messages and events three days
late; it starts on 2026-03-28, so it spans the night the clocks go forward in Paris.
Every KPI of every minute, day, week, month and quarter window and every dimension must
match, and every window must end with exactly one final record on ``kpi.updates``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from streams.settings import Settings
from tests.kafka_tools import kcat_consume, needs_kcat
from tests.kpi_tools import mismatches, produce, reference_results, settled, simulator_stream
from tests.output_contracts import dead_letter_errors, kpi_update_errors, late_errors
from tests.support import running_worker

pytestmark = needs_kcat

START = datetime(2026, 3, 28, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
KINDS = ("minute", "day", "week", "month", "quarter")


def test_simulated_floor_matches_the_reference(tmp_path: Path, settings: Settings) -> None:
    forever = 20 * 365 * 86_400.0  # keep every closed window, to compare them all
    settings = settings.model_copy(
        update={"idle_close_s": 3.0, "retention_minute_s": forever, "retention_day_s": forever}
    )
    reference, stream = simulator_stream(settings, START, events=3000)
    produce(settings, reference + stream)
    with running_worker(settings, tmp_path / "worker.log"):
        engine = settled(settings)
    expected = reference_results(settings, reference, stream, now=datetime.now(ZoneInfo("UTC")))
    problems = mismatches(engine, expected, KINDS)
    summary = Counter(p.split(",")[0] + "," + p.split(",")[1] for p in problems)
    assert not problems, (
        f"{len(problems)} differences {summary.most_common(20)}, first ones:\n"
        + "\n".join(problems[:25])
    )
    assert sum(1 for key in expected if key[1] == "day" and key[0] == "revenue") > 0

    finals: dict[str, set[str]] = defaultdict(set)
    for message in kcat_consume(settings, "kpi.updates"):
        record = orjson.loads(str(message["payload"]))
        if record["final"]:
            finals[str(message["key"])].add(f"{record['revision']}|{record['value']}")
    final_windows = {k: v for k, v in finals.items() if not k.startswith("lead_conversion_rate/")}
    assert final_windows, "no final record on kpi.updates"
    repeated = {k: v for k, v in final_windows.items() if len(v) != 1}
    assert not repeated, f"windows with more than one final record: {list(repeated.items())[:5]}"


def test_every_output_record_keeps_its_contract(tmp_path: Path, settings: Settings) -> None:
    """kpi.updates, sales.late and sales.deadletter against schemas/, on a floor with late,
    invalid and duplicate events, in another reporting currency than the default."""
    settings = settings.model_copy(update={"idle_close_s": 3.0, "currency": "CHF"})
    reference, stream = simulator_stream(settings, START, events=1500, seed=11)
    produce(settings, reference + stream)
    with running_worker(settings, tmp_path / "worker.log"):
        settled(settings)
    updates = kcat_consume(settings, "kpi.updates")
    late = kcat_consume(settings, "sales.late")
    dead = kcat_consume(settings, "sales.deadletter")
    assert updates, "nothing on kpi.updates"
    assert late, "nothing on sales.late (the floor has 3-day-old events)"
    assert dead, "nothing on sales.deadletter (the floor has invalid messages)"
    units = {orjson.loads(str(m["payload"]))["unit"] for m in updates}
    assert "CHF" in units, units
    assert "EUR" not in units, units
    errors = kpi_update_errors(updates, settings) + late_errors(late) + dead_letter_errors(dead)
    assert not errors, f"{len(errors)} records break their contract:\n" + "\n".join(errors[:20])
