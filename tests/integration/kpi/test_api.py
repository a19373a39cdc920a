"""``GET /api/kpis``, ``GET /api/kpis/{kpi}`` and ``salespulse kpi`` on a real worker.

The answers are checked against the reference implementation (tests/reference/), not
against the engine's own records: calendar windows by several dimensions, rolling windows
merged from minute buckets, the live ``leads_waiting``, and the 400s naming what is valid.
"""

from __future__ import annotations

import subprocess
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from streams.kpi.catalog import KPIS
from streams.settings import Settings
from tests.kpi_tools import (
    Key,
    api_get,
    event_time,
    mismatches,
    produce,
    reference_results,
    settled,
    simulator_stream,
)
from tests.reference.kpis import rolling
from tests.support import REPO, running_worker, salespulse, settings_env

START = datetime(2026, 3, 30, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))


def _same(got: float | None, want: Decimal | float | None, rel: str = "1e-6") -> bool:
    """Equal to ``rel`` (relative); the p90 sketch's bound is 1%."""
    if got is None or want is None:
        return got is None and want is None
    return abs(Decimal(str(got)) - Decimal(str(want))) <= Decimal(rel) * max(
        Decimal(1), abs(Decimal(str(want)))
    )


def test_the_api_and_the_kpi_command_answer_as_the_reference(
    tmp_path: Path, settings: Settings
) -> None:
    # Default retention: the floor is in March, months before the wall clock, and retention
    # counts event time only.
    settings = settings.model_copy(update={"idle_close_s": 3.0})
    reference, stream = simulator_stream(settings, START, events=1200, seed=21, late=0)
    produce(settings, reference + stream)
    with running_worker(settings, tmp_path / "worker.log"):
        settled(settings)
        expected = reference_results(settings, reference, stream, now=datetime.now(ZoneInfo("UTC")))

        status, listing = api_get(settings, "/api/kpis")
        assert status == 200
        assert [k["id"] for k in listing["kpis"]] == list(KPIS)
        assert {k["id"]: k["unit"] for k in listing["kpis"]}["revenue"] == settings.currency

        # Calendar windows: every KPI of the month, by each dimension it has, compared as
        # the engine's records are (tests/kpi_tools.mismatches).
        month_start = int(datetime(2026, 3, 1, tzinfo=settings.zone).timestamp())
        answers: dict[Key, dict[str, Any]] = {}
        for kpi in KPIS.values():
            if kpi.id in ("leads_waiting", "target_pacing"):  # live; depends on stream time
                continue
            for dim in kpi.dimensions:
                status, answer = api_get(
                    settings, f"/api/kpis/{kpi.id}", window="month", at="2026-03-30", by=dim
                )
                assert status == 200, answer
                assert answer["window"]["start"] == "2026-03-01T00:00:00+01:00"
                for v in answer["values"]:
                    answers[(kpi.id, "month", month_start, dim, v["key"])] = {
                        name: None if v[name] is None else str(v[name])
                        for name in ("value", "numerator", "denominator")
                    }
        assert len(answers) > 200, f"only {len(answers)} values answered"
        wanted = {
            k: r
            for k, r in expected.items()
            if k[2] == month_start and k[0] not in ("leads_waiting", "target_pacing")
        }
        problems = mismatches(answers, wanted, ("month",))
        assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:20])

        # Rolling windows, merged from the minute buckets.
        checked = 0
        times = sorted(t for _, _, value in stream if (t := event_time(value)) is not None)
        for at in (times[len(times) // 3], times[-1]):
            for kpi, window, dim in (
                ("calls", "15m", "global"),
                ("revenue", "1h", "rep"),
                ("win_rate", "24h", "team"),
                ("call_connect_rate", "1h", "region"),
                # distinct reps over many minutes: from the minute shards, not a sum
                ("revenue_per_rep", "24h", "team"),
                ("revenue_per_rep", "1h", "global"),
            ):
                status, answer = api_get(
                    settings, f"/api/kpis/{kpi}", window=window, at=at.isoformat(), by=dim
                )
                assert status == 200, answer
                for v in answer["values"]:
                    want = rolling(expected, kpi, window, at, dim, v["key"])
                    assert _same(v["value"], want.value), (kpi, window, at, v, want)
                    checked += 1
        assert checked > 20, f"only {checked} rolling values to compare"

        # The live KPI: its window is the stream time, in the business time zone.
        status, answer = api_get(settings, "/api/kpis/leads_waiting")
        assert status == 200, answer
        assert answer["window"]["kind"] == "live"
        assert datetime.fromisoformat(answer["window"]["start"]).year >= 2026

        # Bad queries: 400, naming what is valid.
        for params, path, named in (
            ({}, "/api/kpis/revenu", "revenue"),
            ({"window": "year"}, "/api/kpis/revenue", "quarter"),
            ({"by": "country"}, "/api/kpis/revenue", "region"),
            ({"by": "product"}, "/api/kpis/calls", "team"),
            ({"at": "yesterday"}, "/api/kpis/revenue", "2017-03-15"),
        ):
            status, answer = api_get(settings, path, **params)
            assert status == 400, (path, params, answer)
            assert named in answer["error"], answer

        # The command prints the same answer (JSON) and a table.
        args = ["kpi", "revenue", "--window", "month", "--at", "2026-03", "--by", "rep"]
        env = settings_env(settings)
        run = subprocess.run(
            [*salespulse(*args, "--json")], cwd=REPO, env=env, capture_output=True, timeout=60
        )
        assert run.returncode == 0, run.stderr.decode()
        _, api = api_get(settings, "/api/kpis/revenue", window="month", at="2026-03", by="rep")
        assert orjson.loads(run.stdout) == api
        table = subprocess.run(
            [*salespulse(*args)], cwd=REPO, env=env, capture_output=True, timeout=60, text=True
        )
        assert table.returncode == 0, table.stderr
        top = api["values"][0]
        assert top["key"] in table.stdout


def test_the_live_kpi_answers_before_any_event(tmp_path: Path, settings: Settings) -> None:
    with running_worker(settings, tmp_path / "worker.log"):
        status, answer = api_get(settings, "/api/kpis/leads_waiting")
    assert status == 200, answer
    assert answer["values"] == []
