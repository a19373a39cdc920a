"""History loaded into a running deployment: late events correct the windows they belong to.

A worker serves a live floor (its last eight days up to now, the last part produced while it
runs, for two minutes). Then the three weeks before, of the same sales team (another run of
the simulator: its own accounts, leads and event ids), are loaded, as a team does when it
imports last quarter's history into salespulse: written to a dump of the topics (reference
records, then events, invalid messages included) and sent by the real ``salespulse replay
--dump`` command, a subprocess. With the default settings:

- every window equals the reference over all events: the history's minute buckets are past
  their retention (2 days of event time) and left out, its days, weeks and months counted;
- today's values are what they were without the import (but those an account's earlier
  orders decide, new customers or repeat purchases, which the history rightly changes);
- the final windows the history falls in get corrections on ``kpi.updates``: ``final`` still
  true, ``correction`` true, a higher revision;
- the events past a retention are on ``sales.late`` once each and counted by kind.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from streams.engine.publisher import REVISABLE_AFTER_FINAL
from streams.settings import Settings
from streams.simulator.produce import Options
from tests.kafka_tools import kcat_consume, needs_kcat, worker_metric
from tests.kpi_tools import (
    Message,
    admitted,
    applied,
    event_time,
    floor_messages,
    mismatches,
    produce,
    reference_results,
    settled,
    wait_for_stream_time,
    write_dump,
)
from tests.support import REPO, eventually, running_worker, salespulse, settings_env

pytestmark = needs_kcat

KINDS = ("minute", "day", "week", "month", "quarter")
# What an account's earlier orders decide (its first order, customers at window start): the
# history's orders, by the same accounts (the world of one seed), rightly change them today.
ACCOUNT_HISTORY_KPIS = (
    "churn_rate", "retention_rate", "ltv", "new_customers", "repeat_purchase_rate", "cac",
)  # fmt: skip
LIVE_S = 120  # the live floor's last part, produced while the worker runs


def _floor(settings: Settings, start: datetime, until: datetime) -> tuple[list, list[Message]]:
    options = Options(rate=0.003, clock="always-open", seed=31)
    return floor_messages(settings, options, start, until=until)


def _finals(settings: Settings) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """Per record key, the revisions of its final records and of its corrections."""
    finals: dict[str, set[int]] = defaultdict(set)
    corrections: dict[str, set[int]] = defaultdict(set)
    for message in kcat_consume(settings, "kpi.updates"):
        record = orjson.loads(str(message["payload"]))
        if record["final"]:
            found = corrections if record["correction"] else finals
            found[str(message["key"])].add(record["revision"])
    return finals, corrections


def _replay_dump(settings: Settings, tmp_path: Path, messages: list[Message]) -> None:
    """``salespulse replay --dump`` of ``messages``, a subprocess of this checkout; it must
    say it sent every one."""
    dump = tmp_path / "history.jsonl"
    assert write_dump(dump, messages) == len(messages)
    done = subprocess.run(
        salespulse("replay", "--dump", str(dump)), env=settings_env(settings), cwd=REPO,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0, output
    total = re.search(r"^\s+total\s+(\d+)$", done.stdout, re.MULTILINE)
    assert total is not None, output
    assert int(total.group(1)) == len(messages), output


@pytest.mark.timeout(900)  # two minutes of live floor, idle closing twice, settling
def test_history_loaded_into_a_live_deployment_corrects_its_windows(
    tmp_path: Path, settings: Settings
) -> None:
    # The default settings: retention, graces, and idle closing after 60 s (the live floor
    # is never idle that long, so its windows close on its own events, not the wall clock).
    assert settings.idle_close_s == Settings().idle_close_s
    now = datetime.now(settings.zone)
    wall_midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    reference, live = _floor(
        settings, wall_midnight - timedelta(days=8), now - timedelta(minutes=1)
    )
    # The floor's day: that of its newest event (before the opening, yesterday's).
    newest_live = max(t for _, _, v in live if (t := event_time(v)) is not None)
    midnight = newest_live.astimezone(settings.zone).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    history_reference, history = _floor(
        # ends two days before the floor's day: every event of it is past the minute
        # buckets' retention (2 days of event time) by a day or more, whichever of the
        # engine's watermark or the reference's newest event it is judged against (they
        # differ by the spread of the partitions' newest events: minutes)
        settings,
        midnight - timedelta(days=22),
        midnight - timedelta(days=2),
    )
    assert len(live) > 500
    assert len(history) > 1000
    arrived = live + history
    counted = admitted(settings, arrived)
    live_events = len(admitted(settings, live, retention=False))
    live_part = max(len(live) // 10, 50)
    with running_worker(settings, tmp_path / "worker.log"):
        produce(settings, reference + live[:-live_part])
        tail, chunks = live[len(live) - live_part :], 12
        size = -(-len(tail) // chunks)
        for n in range(chunks):  # the floor goes on for two minutes, in order
            produce(settings, tail[n * size : (n + 1) * size])
            time.sleep(LIVE_S / chunks)
        eventually(lambda: applied(settings) == live_events, timeout=240, interval=1)
        # Idle: windows close on the wall clock, every past day and last week final.
        wait_for_stream_time(
            settings, datetime.now(settings.zone) - timedelta(minutes=1), timeout=300
        )
        before = settled(settings, final=False, quiet_s=5)
        finals_before, corrections_before = _finals(settings)
        assert finals_before, "no window was final before the import"
        assert not corrections_before, "corrections before any late event"

        # the import: reference data, then events, by `salespulse replay --dump`
        _replay_dump(settings, tmp_path, history_reference + history)
        eventually(lambda: applied(settings) == len(counted), timeout=300, interval=1)
        wait_for_stream_time(
            settings, datetime.now(settings.zone) - timedelta(minutes=1), timeout=300
        )
        after = settled(settings, final=False, quiet_s=5)
        finals, corrections = _finals(settings)
        late_metric = worker_metric(
            settings, "salespulse_late_events_total", kind="day", role="event"
        )
        expired = worker_metric(
            settings, "salespulse_expired_events_total", kind="minute", role="event"
        )
        late_copies = kcat_consume(settings, "sales.late")

    # Every window as the reference computes it over all events, in arrival order, but the
    # minute buckets of the live floor's first days, since removed (past their retention).
    everything = reference + history_reference
    expected = reference_results(settings, everything, arrived, now=datetime.now(settings.zone))
    newest = max(a.event.occurred_at for a in counted).timestamp()
    expected = {
        k: v for k, v in expected.items()
        if k[1] != "minute" or k[2] + 60 + settings.retention_minute_s > newest
    }  # fmt: skip
    # The open month's and quarter's pacing moves with the clock (refreshed every minute).
    pacing = [k for k in expected if k[0] == "target_pacing" and k[2] > newest - 93 * 86_400]
    open_pacing = {
        k for k in pacing if k[1] in ("month", "quarter") and k in after and not after[k]["final"]
    }
    expected = {k: v for k, v in expected.items() if k not in open_pacing}
    after = {k: v for k, v in after.items() if k not in open_pacing}
    problems = mismatches(after, expected, KINDS)
    summary = Counter(",".join(p.split(",")[:2]) for p in problems).most_common(20)
    assert not problems, f"{len(problems)} differences {summary}:\n" + "\n".join(problems[:25])
    history_days = {
        k[2]
        for k in expected
        if k[1] == "day" and k[2] < (midnight - timedelta(days=9)).timestamp()
    }
    assert len(history_days) >= 10, "the history's own days are in the read model"

    # Today's values are those of the live floor alone. "Today" is the floor's newest day
    # with values of its own: in the first half hour after midnight in Paris, the floor's
    # newest day holds only the day's marketing spend (recorded at 00:00), whose only KPI,
    # the CAC, is one the history rightly changes; then the day before is compared.
    alone = reference_results(settings, reference, live, now=datetime.now(settings.zone))
    own_days = {
        k[2] for k in alone if k[1] == "day" and k[0] not in ACCOUNT_HISTORY_KPIS
    }  # fmt: skip
    today = max(own_days, default=0)
    assert today >= int((midnight - timedelta(days=1)).timestamp()), (
        "the live floor has nothing of its own on its newest day or the day before",
        sorted(own_days)[-3:],
    )

    def of_today(results: dict) -> dict:
        return {
            k: v for k, v in results.items() if k[1] == "day" and k[2] == today
            and k[0] not in ACCOUNT_HISTORY_KPIS
        }  # fmt: skip

    problems = mismatches(of_today(after), of_today(alone), ("day",))
    assert not problems, "today changed with the import:\n" + "\n".join(problems[:25])
    assert not mismatches(of_today(before), of_today(alone), ("day",))

    # The final windows the history fell in were corrected, with higher revisions.
    assert corrections, "no correction on kpi.updates"
    # A window's revision is shared by its KPIs (a KPI first seen in a correction has no
    # final record of its own): compared per window, with its closing revision, that of its
    # first final record of a KPI other than a cohort KPI. A cohort KPI's revisions after
    # the closing are final records too, not corrections: a window that closed with no value
    # yet (an entity's contribution that moved out of it before the closing: it happens, as
    # batches fall) and then got late events, and conversions of its leads, has a cohort
    # KPI's final record after its corrections, and no closing record at all.
    final_revisions: dict[str, int] = {}
    for k, v in finals.items():
        kpi, window = k.split("/", 1)
        if kpi not in REVISABLE_AFTER_FINAL:
            final_revisions[window] = min(final_revisions.get(window, min(v)), *v)
    for k, v in corrections.items():
        kpi, kind, start, dim, key = k.split("/", 4)
        record = after[(kpi, kind, int(datetime.fromisoformat(start).timestamp()), dim, key)]
        assert record["final"], f"a correction of a window that is not final: {k}"
        # (a window that closed with no value yet has no final record to compare with)
        closed = final_revisions.get(k.split("/", 1)[1])
        assert closed is None or min(v) > closed, (k, v, closed)
    # every day the live floor and the history share was final before the import
    shared = {(midnight - timedelta(days=n)).date().isoformat() for n in range(3, 9)}
    final_days = {k.split("/")[2][:10] for k in finals_before if k.split("/")[1] == "day"}
    assert shared <= final_days, sorted(final_days)
    corrected_days = {k.split("/")[2][:10] for k in corrections if k.split("/")[1] == "day"}
    assert shared <= corrected_days, sorted(corrected_days)
    assert not any(k.split("/")[1] == "minute" for k in corrections)

    # Past the minute buckets' retention: on sales.late once per event, counted by kind.
    left_out = [a for a in counted if a.late_for]
    assert len(left_out) > 500
    assert all(a.late_for == {"minute"} for a in left_out)
    ids = sorted(orjson.loads(str(m["payload"]))["event_id"] for m in late_copies)
    assert ids == sorted(a.event.event_id for a in left_out)
    assert expired == len(left_out)
    assert late_metric > 0  # later than the day's grace, and applied (corrections)
