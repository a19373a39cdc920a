"""``GET /api/kpis/{kpi}/history`` and ``salespulse kpi --history`` on a real worker.

Twelve days of a simulated floor (duplicates, out-of-order and invalid messages) crossing a
month end, produced before the worker starts, with the default retention settings: the floor
starts four days before the first day of last month, so its day windows are inside the
90-day day retention whatever the date the test runs. Every KPI's series by day, week and
month, by every dimension it has, must equal the reference implementation (tests/reference/)
for every window of the range, with the empty windows around the floor present and empty.
"""

from __future__ import annotations

import csv
import subprocess
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson

from streams.kpi.catalog import KPIS
from streams.kpi.values import Context, applies
from streams.serving.history import label
from streams.settings import Settings
from streams.simulator.produce import Options
from tests.kpi_tools import (
    api_get,
    event_time,
    floor_messages,
    get_history,
    history_mismatches,
    produce,
    reference_results,
    settled,
    wait_for_stream_time,
)
from tests.support import REPO, running_worker, salespulse, settings_env

DAYS = 12


def floor_start(settings: Settings) -> datetime:
    """09:00 four days before the first day of last month (business time)."""
    this_month = datetime.now(settings.zone).date().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    return datetime.combine(last_month - timedelta(days=4), time(9), settings.zone)


def _status(settings: Settings, kpi: str, **params: str) -> tuple[int, Any]:
    return api_get(settings, f"/api/kpis/{kpi}/history", **params)


def test_history_answers_as_the_reference_for_every_window(
    tmp_path: Path, settings: Settings
) -> None:
    settings = settings.model_copy(update={"idle_close_s": 3.0})
    start = floor_start(settings)
    options = Options(rate=0.0025, clock="always-open", seed=17)
    reference, stream = floor_messages(settings, options, start, until=start + timedelta(days=DAYS))
    times = sorted(t for _, _, value in stream if (t := event_time(value)) is not None)
    first_day = times[0].astimezone(settings.zone).date()
    last_day = times[-1].astimezone(settings.zone).date()
    assert first_day.month != last_day.month, "the floor must cross a month end"
    age = (datetime.now(settings.zone).date() - first_day).days
    assert age < 88, f"the floor starts {age} days ago: past the default 90-day day retention"
    produce(settings, reference + stream)
    # Two empty days on each side: the answer must still have them, empty.
    since, until = first_day - timedelta(days=2), last_day + timedelta(days=2)
    bounds = {
        "day": (since.isoformat(), until.isoformat()),
        "week": (label("week", since - timedelta(days=since.weekday())), until.isoformat()),
        "month": (f"{since:%Y-%m}", f"{until:%Y-%m}"),
    }
    produced = datetime.now(UTC)
    with running_worker(settings, tmp_path / "worker.log"):
        # The floor's windows are long closed, but this quarter is not over: wait until the
        # worker is idle (stream time then follows the wall clock) and its values stay put.
        wait_for_stream_time(settings, produced, timeout=240)
        settled(settings, final=False, quiet_s=5)
        expected = reference_results(settings, reference, stream, now=datetime.now(UTC))

        # Every KPI, every dimension, by day, week and month.
        problems: list[str] = []
        answered = 0
        for kpi in KPIS.values():
            if kpi.id in ("leads_waiting", "target_pacing"):  # live; depends on stream time
                continue
            for kind, (since_text, until_text) in bounds.items():
                for dim in kpi.dimensions:
                    if not applies(kpi.id, Context(kind=kind, dimension=dim)):
                        continue
                    answer = get_history(
                        settings, kpi.id, window=kind, by=dim, **{"from": since_text},
                        to=until_text,
                    )  # fmt: skip
                    problems += history_mismatches(answer, expected)
                    answered += sum(len(p["values"]) for p in answer["points"])
        assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
        assert answered > 2000, f"only {answered} values answered"

        # A regular axis: every day of the range, the empty ones included.
        revenue = get_history(
            settings, "revenue", window="day", **{"from": since.isoformat()}, to=until.isoformat()
        )
        labels = [p["label"] for p in revenue["points"]]
        assert labels == [
            (since + timedelta(days=i)).isoformat() for i in range((until - since).days + 1)
        ]
        assert [p["values"] for p in revenue["points"][:2]] == [[], []]
        assert [p["values"] for p in revenue["points"][-2:]] == [[], []]
        busy = [p for p in revenue["points"] if p["values"]]
        assert len(busy) >= DAYS - 1, labels
        assert all(p["values"][0]["final"] for p in busy)
        assert revenue["window"]["count"] == len(labels)
        assert (revenue["kpi"], revenue["unit"], revenue["dimension"]) == (
            "revenue",
            settings.currency,
            "global",
        )

        # One key: the same values as the by-rep series, for that key only.
        by_rep = get_history(settings, "revenue", window="week", by="rep", **{"from": since.isoformat()}, to=until.isoformat())  # fmt: skip
        rep = by_rep["keys"][0]
        one = get_history(settings, "revenue", window="week", by="rep", key=rep, **{"from": since.isoformat()}, to=until.isoformat())  # fmt: skip
        assert [p["values"] for p in one["points"]] == [
            [v for v in p["values"] if v["key"] == rep] for p in by_rep["points"]
        ]
        assert not history_mismatches(one, expected)

        # Default range: the 12 windows ending with the one of the current stream time.
        status, recent = _status(settings, "orders", window="month")
        assert status == 200, recent
        assert recent["window"]["count"] == 12
        assert any(p["values"] for p in recent["points"]), "the floor's months are recent"

        # Bad queries: 400, naming what is valid.
        for params, kpi, named in (
            ({"window": "1h"}, "revenue", "day, week, month, quarter"),
            ({"window": "year"}, "revenue", "quarter"),
            ({"window": "month", "from": "2017-13"}, "revenue", "2017-03"),
            ({"window": "quarter", "to": "2017-03"}, "revenue", "2017-Q1"),
            ({"window": "day", "from": "2016-01-01", "to": "2017-12-31"}, "revenue", "at most 400"),
            ({"window": "month", "from": "2017-12", "to": "2017-01"}, "revenue", "after"),
            ({"by": "product"}, "calls", "team"),
            ({}, "revenu", "revenue"),
            ({}, "leads_waiting", "live"),
        ):
            status, answer = _status(settings, kpi, **params)
            assert status == 400, (kpi, params, answer)
            assert named in answer["error"], answer

        # The command: the same answer as JSON, a table, and CSV.
        env = settings_env(settings)
        args = ["kpi", "revenue", "--history", "--window", "day", "--by", "rep"]
        args += ["--from", since.isoformat(), "--to", until.isoformat()]
        run = subprocess.run(
            salespulse(*args, "--json"), cwd=REPO, env=env, capture_output=True, timeout=60
        )
        assert run.returncode == 0, run.stderr.decode()
        api = get_history(settings, "revenue", window="day", by="rep", **{"from": since.isoformat()}, to=until.isoformat())  # fmt: skip
        assert orjson.loads(run.stdout) == api
        path = tmp_path / "revenue.csv"
        table = subprocess.run(
            [*salespulse(*args, "--csv", str(path))], cwd=REPO, env=env, capture_output=True,
            timeout=60, text=True,
        )  # fmt: skip
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[1].split()[0] == "day"
        assert lines[1].split()[1:] == api["keys"]  # one column per rep
        assert [line.split()[0] for line in lines[2 : 2 + len(labels)]] == labels
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == sum(max(1, len(p["values"])) for p in api["points"])
        from_csv = {(r["window"], r["key"]): r["value"] for r in rows if r["key"]}
        from_api = {
            (p["label"], v["key"]): repr(v["value"]) for p in api["points"] for v in p["values"]
        }
        assert from_csv == from_api
        assert {r["window"] for r in rows} == set(labels)  # empty days are rows too

        wrong = subprocess.run(
            salespulse("kpi", "revenue", "--history", "--window", "1h"), cwd=REPO, env=env,
            capture_output=True, timeout=60, text=True,
        )  # fmt: skip
        assert wrong.returncode == 2
        assert "calendar windows" in wrong.stderr
