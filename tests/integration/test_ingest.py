"""Ingest on a real broker: every class of bad input reaches the dead letters with its reason
while the worker keeps counting; a duplicate counts once, also across a restart; reference
misses and unknown fields are counted."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson

from streams.connections.redis import sync_redis_client
from streams.contracts.reference import Rep
from streams.settings import Settings
from streams.topics import ensure_topics
from tests.kafka_tools import header, kcat_consume, kcat_produce, needs_kcat, worker_metric
from tests.support import eventually, revenue_by_rep, running_worker

pytestmark = needs_kcat


def order(rep_id: str, amount: str, at: datetime, **changes: object) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "order.placed",
        "occurred_at": at.isoformat(),
        "source": "test",
        "schema_version": 1,
        "order_id": f"ord-{uuid.uuid4().hex[:8]}",
        "account_id": "acct-1",
        "rep_id": rep_id,
        "amount": amount,
        "currency": "EUR",
        "lines": [{"product_id": "widget", "quantity": 1, "unit_price": amount}],
        **changes,
    }


def revenue(settings: Settings, day: datetime) -> dict[str, Decimal]:
    return revenue_by_rep(settings, day.date())


def test_each_bad_input_class_is_dead_lettered_and_the_worker_keeps_going(
    tmp_path: Path, settings: Settings
) -> None:
    settings = settings.model_copy(update={"max_event_bytes": 2048})
    asyncio.run(ensure_topics(settings))
    now = datetime.now(settings.zone)
    naive = order("rep-a", "1.00", now)
    naive["occurred_at"] = now.replace(tzinfo=None).isoformat()
    missing = order("rep-a", "1.00", now)
    del missing["rep_id"]
    wrong_type = order("rep-a", "1.00", now)
    wrong_type["amount"] = [1]
    bad: dict[str, tuple[str, bytes]] = {
        "not_json": ("sales.orders", b"{not json"),
        "not_an_object": ("sales.orders", b"[1, 2]"),
        "unknown_type": ("sales.orders", orjson.dumps(order("rep-a", "1", now, type="order.won"))),
        "wrong_topic": ("sales.calls", orjson.dumps(order("rep-a", "1.00", now))),
        "missing_field": ("sales.orders", orjson.dumps(missing)),
        "wrong_type": ("sales.orders", orjson.dumps(wrong_type)),
        "naive_timestamp": ("sales.orders", orjson.dumps(naive)),
        "invalid_value": ("sales.orders", orjson.dumps(order("rep-a", "-5.00", now))),
        "unsupported_currency": (
            "sales.orders", orjson.dumps(order("rep-a", "1.00", now, currency="GBP")),
        ),
        "too_large": (
            "sales.orders", orjson.dumps(order("rep-a", "1.00", now, note="x" * 4000)),
        ),
    }  # fmt: skip
    with running_worker(settings, tmp_path / "worker.log"):
        kcat_produce(settings, "sales.orders", "acct-1", orjson.dumps(order("rep-a", "10.00", now)))
        for topic, raw in bad.values():
            kcat_produce(settings, topic, "acct-1", raw)
        kcat_produce(settings, "sales.orders", "acct-1", orjson.dumps(order("rep-a", "5.50", now)))

        eventually(lambda: revenue(settings, now) == {"rep-a": Decimal("15.50")})
        dead = eventually(
            lambda: len(d := kcat_consume(settings, "sales.deadletter")) >= len(bad) and d
        )
        assert len(dead) == len(bad)
        by_reason = {header(message, "reason"): message for message in dead}
        assert set(by_reason) == set(bad)
        for reason, (topic, raw) in bad.items():
            message = by_reason[reason]
            assert message["payload"] == raw.decode(), reason  # the original bytes, untouched
            assert header(message, "source_topic") == settings.topic(topic)
            assert header(message, "source_partition").isdigit()
            assert header(message, "source_offset").isdigit()
            assert header(message, "detail")
            assert worker_metric(settings, "salespulse_dead_letters_total", reason=reason) == 1
        assert "rep_id" in header(by_reason["missing_field"], "detail")
        assert "2048" in header(by_reason["too_large"], "detail")


def test_future_dated_events_are_dead_lettered_and_move_nothing(
    tmp_path: Path, settings: Settings
) -> None:
    asyncio.run(ensure_topics(settings))
    now = datetime.now(settings.zone)
    future = {
        "2099": order("rep-f", "500.00", datetime(2099, 1, 1, 9, tzinfo=settings.zone)),
        "tomorrow": order("rep-f", "7.00", now + timedelta(days=1)),
    }
    with running_worker(settings, tmp_path / "worker.log"):
        kcat_produce(settings, "sales.orders", "acct-1", orjson.dumps(order("rep-f", "10.00", now)))
        eventually(lambda: revenue(settings, now) == {"rep-f": Decimal("10.00")})
        for event in future.values():
            kcat_produce(settings, "sales.orders", "acct-1", orjson.dumps(event))
        dead = eventually(lambda: len(d := kcat_consume(settings, "sales.deadletter")) >= 2 and d)
        assert {header(m, "reason") for m in dead} == {"future_dated"}, dead
        assert sorted(m["payload"] for m in dead) == sorted(
            orjson.dumps(e).decode() for e in future.values()
        )
        assert all("ahead of this worker's clock" in header(m, "detail") for m in dead)
        # An order of now, after them, is on time: the watermark did not move to 2099.
        later = now + timedelta(seconds=1)
        kcat_produce(
            settings, "sales.orders", "acct-1", orjson.dumps(order("rep-f", "5.50", later))
        )
        eventually(lambda: revenue(settings, now) == {"rep-f": Decimal("15.50")})
        assert worker_metric(settings, "salespulse_dead_letters_total", reason="future_dated") == 2
        assert worker_metric(settings, "salespulse_late_events_total") == 0
        client = sync_redis_client(settings)
        # Stream time reaches Redis with a publisher flush after the entity stage's marker,
        # which may come after the values (a stage flushes as soon as its input is drained).
        stream_ms = eventually(
            lambda: client.zscore(f"{settings.redis_prefix}stream_time", "global")
        )
        assert stream_ms <= (later.timestamp() + 60) * 1000
        windows = client.keys(f"{settings.redis_prefix}kpi:revenue:day:*:global")
        days = {
            datetime.fromtimestamp(int(k.split(b":")[-2]), settings.zone).date() for k in windows
        }
        assert days == {now.date()}, days  # no 2099 window, none for tomorrow


def test_duplicate_counts_once_across_a_restart(tmp_path: Path, settings: Settings) -> None:
    asyncio.run(ensure_topics(settings))
    now = datetime.now(settings.zone)
    first = orjson.dumps(order("rep-d", "100.00", now))
    with running_worker(settings, tmp_path / "worker-1.log"):
        kcat_produce(settings, "sales.orders", "acct-1", first)
        kcat_produce(settings, "sales.orders", "acct-1", first)  # a retry upstream
        eventually(lambda: revenue(settings, now) == {"rep-d": Decimal("100.00")})
        eventually(lambda: worker_metric(settings, "salespulse_duplicate_events_total") == 1)
    # The same worker started again (same state dir), as after a deploy or a crash.
    # Known problem, not covered here: a worker restarted on an EMPTY state dir (restoring
    # only from the changelog) sometimes stalls or misses seen ids in faust-streaming 0.15.3's
    # recovery (reproduced 2 times in 6); see the README's known limits.
    restarted = settings
    with running_worker(restarted, tmp_path / "worker-2.log"):
        kcat_produce(settings, "sales.orders", "acct-1", first)  # replayed after the restart
        later = now + timedelta(seconds=1)
        kcat_produce(
            settings, "sales.orders", "acct-1", orjson.dumps(order("rep-d", "1.00", later))
        )
        eventually(lambda: worker_metric(restarted, "salespulse_events_applied_total",
                                         type="order.placed") >= 1)  # fmt: skip
        eventually(lambda: worker_metric(restarted, "salespulse_duplicate_events_total") == 1)
        eventually(lambda: revenue(settings, now) == {"rep-d": Decimal("101.00")})
        applied = worker_metric(restarted, "salespulse_events_applied_total", type="order.placed")
        assert applied == 1


def test_reference_misses_and_unknown_fields_are_counted(
    tmp_path: Path, settings: Settings
) -> None:
    asyncio.run(ensure_topics(settings))
    rep = Rep(rep_id="rep-known", name="Ana", team="North", region="Paris")
    kcat_produce(settings, "ref.reps", rep.rep_id, rep.model_dump_json().encode())
    now = datetime.now(settings.zone)
    with running_worker(settings, tmp_path / "worker.log"):
        with_extras = order("rep-known", "3.00", now, coupon="X", campaign="Y")
        kcat_produce(settings, "sales.orders", "acct-1", orjson.dumps(with_extras))
        kcat_produce(
            settings, "sales.orders", "acct-2", orjson.dumps(order("rep-ghost", "4.00", now))
        )
        eventually(lambda: revenue(settings, now) == {"rep-known": Decimal("3.00"),
                                                      "rep-ghost": Decimal("4.00")})  # fmt: skip
        assert worker_metric(settings, "salespulse_reference_misses_total", kind="rep") == 1
        # No product and no account reference data was loaded: both orders miss them.
        assert worker_metric(settings, "salespulse_reference_misses_total", kind="product") == 2
        assert worker_metric(settings, "salespulse_reference_misses_total", kind="account") == 2
        assert worker_metric(settings, "salespulse_unknown_fields_total", type="order.placed") == 2


def test_seen_ids_past_every_retention_are_swept_and_a_late_copy_changes_nothing(
    tmp_path: Path, settings: Settings
) -> None:
    """Dedup covers what can still be applied, no more: once every window of an order is past
    its retention (a day here), its id is swept, and so are its partial cells and, no event for
    its account in the entity horizon (a day), the account's summary; a copy of it then is expired, not a
    duplicate, and changes no KPI."""

    day = 86_400.0
    short = {"retention_minute_s": 3600.0, "retention_day_s": day, "retention_calendar_s": day}
    short["entity_horizon_s"] = day
    settings = settings.model_copy(update=short)
    asyncio.run(ensure_topics(settings))
    zone = settings.zone
    january = datetime(2025, 1, 15, 10, 0, tzinfo=zone)
    may = datetime(2025, 5, 20, 10, 0, tzinfo=zone)  # Q1 ended + a day of retention: past
    # acct-jan orders in January only: its summary goes a day of event time after that
    old = orjson.dumps(order("rep-s", "10.00", january, account_id="acct-jan"))
    client = sync_redis_client(settings)
    january_day = int(datetime(2025, 1, 15, tzinfo=zone).timestamp())
    with running_worker(settings, tmp_path / "worker.log"):
        kcat_produce(settings, "sales.orders", "acct-1", old)
        # January is history: its windows are published when they close, once the idle
        # worker's stream time moves to the wall clock (``idle_close_s``).
        eventually(
            lambda: revenue(settings, january) == {"rep-s": Decimal("10.00")},
            timeout=settings.idle_close_s + 60,
        )
        assert worker_metric(settings, "salespulse_seen_ids_purged_total") == 0
        assert worker_metric(settings, "salespulse_partial_cells_purged_total") == 0
        assert worker_metric(settings, "salespulse_entity_summaries_purged_total") == 0
        # Orders in May, on several accounts (every input partition): event time moves on.
        for n in range(8):
            may_order = order("rep-s", "1.00", may + timedelta(minutes=n), account_id=f"acct-{n}")
            kcat_produce(settings, "sales.orders", f"acct-{n}", orjson.dumps(may_order))
        eventually(lambda: revenue(settings, may) == {"rep-s": Decimal("8.00")})
        # January's windows go (past their retention), and its seen ids with them.
        eventually(
            lambda: not client.exists(f"{settings.redis_prefix}kpi:revenue:day:{january_day}:rep")
        )
        eventually(lambda: worker_metric(settings, "salespulse_seen_ids_purged_total") >= 1)
        # and the entity stage's partial cells of them: at least the five windows of the
        # global cell (the rep, team, region and product cells too)
        eventually(lambda: worker_metric(settings, "salespulse_partial_cells_purged_total") >= 5)
        # and acct-jan's summary: no event for it in the entity horizon (a day of event time)
        eventually(lambda: worker_metric(settings, "salespulse_entity_summaries_purged_total") >= 1)
        expired_before = worker_metric(
            settings, "salespulse_expired_events_total", kind="quarter", role="event"
        )

        kcat_produce(settings, "sales.orders", "acct-1", old)  # the January order once more
        eventually(
            lambda: (
                worker_metric(
                    settings, "salespulse_expired_events_total", kind="quarter", role="event"
                )
                == expired_before + 1
            )
        )
        old_id = orjson.loads(old)["event_id"]
        late = [
            m for m in kcat_consume(settings, "sales.late")
            if orjson.loads(str(m["payload"]))["event_id"] == old_id
        ]  # fmt: skip
        assert len(late) == 1, late
        assert header(late[0], "late_kinds") == "minute,day,week,month,quarter"
        assert worker_metric(settings, "salespulse_duplicate_events_total") == 0
        applied = worker_metric(settings, "salespulse_events_applied_total", type="order.placed")
        assert applied == 9  # January's order once, May's eight: the copy is not applied
        assert revenue(settings, may) == {"rep-s": Decimal("8.00")}
        assert not client.exists(f"{settings.redis_prefix}kpi:revenue:day:{january_day}:rep")
