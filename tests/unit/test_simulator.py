"""The sales-floor simulator, without Kafka: world, hours, clocks, incidents, the floor."""

from __future__ import annotations

import argparse
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contracts.reference import REFERENCE_MODELS, Target, TargetScope, reference_key
from streams.ingest.validate import DeadLetterReason, InvalidEvent, Limits, validate
from streams.settings import Settings
from streams.simulator import command
from streams.simulator.clock import AcceleratedClock, AlwaysOpenClock, RealClock, parse_clock
from streams.simulator.floor import FloorConfig, floor
from streams.simulator.hours import BusinessHours
from streams.simulator.incidents import Incident, IncidentKind, IncidentSpec, parse_incident
from streams.simulator.produce import Options, plan
from streams.simulator.summary import Summary
from streams.simulator.timeline import REFERENCE, Flaws, Record
from streams.simulator.world import build_world

PARIS = ZoneInfo("Europe/Paris")
MONDAY = datetime(2024, 6, 3, 0, 0, tzinfo=PARIS)
TUESDAY_9 = datetime(2024, 6, 4, 9, 0, tzinfo=PARIS)
LIMITS = Limits(max_bytes=65_536, currency="EUR", rates={}, future_s=300)
TOPIC_MODELS = dict(REFERENCE_MODELS.values())  # "ref.reps" -> Rep, ...
TOUCHES = ("call.logged", "email.sent", "meeting.held")


def records(
    start: datetime = TUESDAY_9, *, seed: int = 7, reps: int = 40, **config: Any
) -> Iterator[Record]:
    config.setdefault("hours", BusinessHours(PARIS))
    return floor(build_world(seed, reps), start, FloorConfig(**config), seed)


def until(stream: Iterator[Record], end: datetime) -> list[Record]:
    return list(itertools.takewhile(lambda record: record.emitted_at < end, stream))


def events(batch: list[Record]) -> list[Record]:
    return [record for record in batch if record.kind != REFERENCE]


def valid_first_sends(batch: list[Record]) -> list[tuple[Record, dict[str, Any]]]:
    return [
        (record, orjson.loads(record.value))
        for record in events(batch)
        if record.invalid is None and not record.duplicate
    ]


@cache
def first_20k() -> list[Record]:
    return list(itertools.islice(records(peak_rate=50.0), 20_000))


@cache
def business_week() -> list[Record]:
    """A week from Monday 00:00 under the real clock's hours, at a low rate."""
    return until(records(MONDAY, peak_rate=0.3), MONDAY + timedelta(days=7))


@cache
def two_days(kind: IncidentKind | None) -> list[Record]:
    """Tuesday and Wednesday; the incident (if any) starts on Wednesday at 00:00."""
    start = datetime(2024, 6, 4, 0, 0, tzinfo=PARIS)
    incidents = () if kind is None else (Incident(kind, start + timedelta(days=1)),)
    return until(records(start, peak_rate=1.0, incidents=incidents), start + timedelta(days=2))


def in_business_hours(at: datetime) -> bool:
    local = at.astimezone(PARIS)
    return local.weekday() < 5 and time(8, 30) <= local.time() < time(18, 30)


# --- determinism ---


def test_same_seed_and_start_give_the_same_records_bytes_included() -> None:
    first = list(itertools.islice(records(), 5000))
    again = list(itertools.islice(records(), 5000))
    assert first == again
    assert len({record.value for record in events(first)}) > 4000


def test_another_seed_or_start_gives_another_floor() -> None:
    ours = {record.value for record in events(list(itertools.islice(records(), 3000)))}
    seed_8 = {r.value for r in events(list(itertools.islice(records(seed=8), 3000)))}
    later = TUESDAY_9 + timedelta(hours=1)
    other_start = {r.value for r in events(list(itertools.islice(records(later), 3000)))}
    assert not ours & seed_8
    assert not ours & other_start  # ids are unique to a run: a second run is not deduplicated


def test_the_world_is_deterministic() -> None:
    assert build_world(7, 40) == build_world(7, 40)
    assert build_world(7, 40) != build_world(8, 40)


# --- validity ---


def test_every_record_validates_unless_meant_to_fail_and_then_fails_with_its_reason() -> None:
    reasons: Counter[DeadLetterReason] = Counter()
    event_ids: set[str] = set()
    for record in events(first_20k()):
        if record.invalid is None:
            valid = validate(record.value, record.topic, LIMITS, datetime.now(UTC).timestamp())
            assert valid.event.type == record.kind
            assert valid.event.occurred_at == record.event_time
            if not record.duplicate:
                assert valid.event.event_id not in event_ids
                event_ids.add(valid.event.event_id)
        else:
            with pytest.raises(InvalidEvent) as failure:
                validate(record.value, record.topic, LIMITS, datetime.now(UTC).timestamp())
            assert failure.value.reason is record.invalid, failure.value.detail
            reasons[failure.value.reason] += 1
    assert set(reasons) == set(DeadLetterReason)


def test_reference_records_validate_and_are_keyed_by_their_id() -> None:
    refs = [record for record in first_20k() if record.kind == REFERENCE]
    models: dict[str, list[Any]] = defaultdict(list)
    for record in refs:
        model = TOPIC_MODELS[record.topic].model_validate_json(record.value)
        assert reference_key(model).encode() == record.key
        models[record.topic].append(model)
    reps, products = models["ref.reps"], models["ref.products"]
    assert len([rep for rep in reps if rep.active]) == 40
    assert all(rep.team and rep.region and rep.manager for rep in reps)
    assert 6 <= len(products) <= 10
    assert all(p.series and p.list_price for p in products)
    assert any(p.aliases for p in products)
    accounts = models["ref.accounts"]
    assert len(accounts) >= 150
    assert all(a.sector and a.region and a.employees for a in accounts)
    # The first reference records come before any event.
    first_event = next(i for i, record in enumerate(first_20k()) if record.kind != REFERENCE)
    assert first_event >= len(reps) + len(products) + 150


def test_targets_cover_reps_teams_and_the_floor_and_add_up() -> None:
    targets: list[Target] = [
        Target.model_validate_json(record.value)
        for record in first_20k()
        if record.topic == "ref.targets"
    ]
    world = build_world(7, 40)
    assert {t.period for t in targets} == {"2024-06", "2024-07", "2024-08", "2024-Q2", "2024-Q3"}
    global_of = {t.period: t.amount for t in targets if t.scope is TargetScope.GLOBAL}
    # Q3 is July to September: more than July and August, less than three Augusts.
    assert global_of["2024-07"] + global_of["2024-08"] < global_of["2024-Q3"]
    assert global_of["2024-Q3"] < 3 * max(global_of["2024-07"], global_of["2024-08"])
    june = {(t.scope, t.key): t.amount for t in targets if t.period == "2024-06"}
    active = {rep.rep.rep_id for rep in world.active_reps}
    assert {key for scope, key in june if scope is TargetScope.REP} == active
    for team in world.teams:
        members = sum((june[TargetScope.REP, r] for r in team.rep_ids if r in active), Decimal(0))
        assert june[TargetScope.TEAM, team.name] == members
    teams = sum((v for (scope, _), v in june.items() if scope is TargetScope.TEAM), Decimal(0))
    assert june[TargetScope.GLOBAL, "all"] == teams


def test_a_months_revenue_is_of_the_order_of_its_target() -> None:
    batch = business_week()
    revenue = sum(
        (Decimal(e["amount"]) for _, e in valid_first_sends(batch) if e["type"] == "order.placed"),
        Decimal(0),
    )
    june = next(
        Target.model_validate_json(record.value)
        for record in batch
        if record.topic == "ref.targets" and b'"global"' in record.value
    )
    # A week is about a quarter of June's busy time (it has 20 working days).
    assert 0.5 < float(revenue * 20 / 5) / float(june.amount) < 1.5


@pytest.mark.parametrize("reps", [12, 40, 100])
def test_reps_work_in_teams_of_6_to_8_across_3_or_4_regions(reps: int) -> None:
    world = build_world(3, reps)
    assert len(world.active_reps) == reps
    for team in world.teams:
        working = [r for r in world.reps if r.rep.team == team.name and r.rep.active]
        assert 6 <= len(working) <= 8
        assert all(r.rep.region == team.region and r.rep.manager == team.manager for r in working)
    if len(world.teams) >= 4:
        assert 3 <= len(world.regions) <= 4
    assert len({rep.rep.rep_id for rep in world.reps}) == len(world.reps)
    assert world.reps[6].rep.rep_id == "rep-007"
    assert max(rep.skill for rep in world.reps) > 1.3 * min(rep.skill for rep in world.reps)


# --- the funnel ---


def test_the_funnel_is_coherent_in_emission_order_and_keys_are_as_documented() -> None:
    opened: dict[str, datetime] = {}
    quoted: dict[str, str] = {}  # quote -> opportunity
    closed: Counter[str] = Counter()
    created: dict[str, datetime] = {}
    ordered: set[str] = set()
    for record, event in valid_first_sends(two_days(None)):
        kind = event["type"]
        expected_key = event.get("account_id") or event.get("lead_id") or event["channel"]
        assert record.key == expected_key.encode()
        if kind == "lead.created":
            created[event["lead_id"]] = record.event_time
        elif kind in TOUCHES and "lead_id" in event:
            assert event["lead_id"] in created
            assert record.event_time >= created[event["lead_id"]]
        elif kind == "opportunity.opened":
            opened[event["opportunity_id"]] = record.event_time
        elif kind == "quote.sent":
            assert event["opportunity_id"] in opened
            quoted[event["quote_id"]] = event["opportunity_id"]
        elif kind in ("order.placed", "opportunity.lost"):
            ordered.add(event.get("order_id", ""))
            opportunity = event.get("opportunity_id")
            if opportunity is None:
                assert event["source"] == "webshop"
                continue
            assert opportunity in opened
            assert record.event_time > opened[opportunity]
            closed[opportunity] += 1
            if "quote_id" in event:
                assert quoted[event["quote_id"]] == opportunity
        elif kind in ("order.cancelled", "complaint.filed") and "order_id" in event:
            assert event["order_id"] in ordered
    assert closed
    assert max(closed.values()) == 1
    assert len(closed) < len(opened)  # some are still open or stalled


def test_lead_response_runs_from_minutes_to_hours_some_beyond_the_sla() -> None:
    created: dict[str, datetime] = {}
    first_touch: dict[str, float] = {}
    for record, event in valid_first_sends(business_week()):
        if event["type"] == "lead.created":
            created[event["lead_id"]] = record.event_time
        elif event["type"] in TOUCHES and event.get("lead_id") in created:
            seconds = (record.event_time - created[event["lead_id"]]).total_seconds()
            first_touch.setdefault(event["lead_id"], seconds)
    delays = sorted(first_touch.values())
    median = delays[len(delays) // 2]
    beyond_sla = sum(delay > 3600 for delay in delays) / len(delays)
    assert 120 < median < 1800
    assert 0.08 < beyond_sla < 0.35
    assert 0.85 < len(first_touch) / len(created) < 0.99  # a few leads are never touched


def test_kpi_inputs_are_believable() -> None:
    batch = valid_first_sends(business_week())
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, event in batch:
        by_type[event["type"]].append(event)
    calls = by_type["call.logged"]
    connect_rate = sum(c["outcome"] == "connected" for c in calls) / len(calls)
    won = [o for o in by_type["order.placed"] if "opportunity_id" in o]
    win_rate = len(won) / (len(won) + len(by_type["opportunity.lost"]))
    scores = [a["score"] for a in by_type["nps.answered"]]
    nps = (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)
    complaint_ratio = len(by_type["complaint.filed"]) / len(by_type["order.placed"])
    costed = [o for o in by_type["order.placed"] if all("unit_cost" in x for x in o["lines"])]
    revenue = sum(Decimal(o["amount"]) for o in costed)
    cost = sum(Decimal(x["unit_cost"]) * x["quantity"] for o in costed for x in o["lines"])
    for order in by_type["order.placed"]:
        lines = sum(Decimal(x["unit_price"]) * x["quantity"] for x in order["lines"])
        assert Decimal(order["amount"]) == lines
    assert 0.3 < connect_rate < 0.55
    assert 0.3 < win_rate < 0.6
    assert -0.1 < nps < 0.5
    assert 0.02 < complaint_ratio < 0.15
    assert 0.3 < float((revenue - cost) / revenue) < 0.7
    assert len(costed) < len(by_type["order.placed"])  # some costs are unknown
    periods = [(s["channel"], s["period"]) for s in by_type["spend.recorded"]]
    daily = {channel for channel, period in periods if period["start"] == period["end"]}
    weekly = {channel for channel, period in periods if period["start"] != period["end"]}
    assert daily == {"paid_search", "social", "email"}
    assert weekly == {"event", "partner"}
    for kind in ("contract.churned", "order.cancelled", "quote.sent", "meeting.held"):
        assert by_type[kind], kind


def test_some_reps_win_more_than_others() -> None:
    won: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    for _, event in valid_first_sends(business_week()):
        won_deal = event["type"] == "order.placed" and "opportunity_id" in event
        if won_deal or event["type"] == "opportunity.lost":
            closed[event["rep_id"]] += 1
            won[event["rep_id"]] += won_deal
    rates = sorted(won[rep] / n for rep, n in closed.items() if n >= 30)
    assert len(rates) >= 20
    assert rates[-3] > 1.5 * rates[2]


def test_the_real_clock_floor_works_in_business_hours() -> None:
    sent = events(business_week())
    share = sum(in_business_hours(record.event_time) for record in sent) / len(sent)
    nights = [record for record in sent if record.event_time.astimezone(PARIS).hour < 6]
    assert share > 0.85
    assert nights  # a trickle, not nothing
    assert len(nights) < 0.02 * len(sent)


def test_the_floor_runs_at_the_requested_rate_in_busy_hours() -> None:
    sent = [
        record
        for record in events(business_week())
        if datetime(2024, 6, 5, 9, 30, tzinfo=PARIS)
        <= record.emitted_at
        < datetime(2024, 6, 5, 11, 30, tzinfo=PARIS)
    ]
    assert len(sent) / 7200 == pytest.approx(0.3, rel=0.2)


def test_the_floor_runs_at_its_rate_from_the_first_minutes() -> None:
    start = datetime(2024, 6, 4, 9, 30, tzinfo=PARIS)  # busiest level from 09:00
    for minutes in (5, 30):
        sent = events(until(records(start, peak_rate=10.0), start + timedelta(minutes=minutes)))
        assert len(sent) / (60 * minutes) == pytest.approx(10.0, rel=0.12), minutes


# --- flaws ---


def test_duplicates_are_resent_a_little_later_with_the_same_key_and_bytes() -> None:
    sent = events(first_20k())
    # A duplicate comes up to 3 minutes after its original: count the originals sent before
    # the last 3 minutes, and their duplicates.
    cutoff = sent[-1].emitted_at - timedelta(minutes=3)
    seen: dict[tuple[str, bytes, bytes], Record] = {}
    duplicates = 0
    for record in sent:
        key = (record.topic, record.key, record.value)
        if key in seen:
            assert record.duplicate
            delay = (record.emitted_at - seen[key].emitted_at).total_seconds()
            assert 0 < delay <= 180
            duplicates += seen[key].emitted_at < cutoff
        else:
            assert not record.duplicate
            seen[key] = record
    first_sends = sum(record.emitted_at < cutoff for record in seen.values())
    # A 1 % coin per message: within 4 standard deviations of it for this many messages (the
    # seeded draw moves whenever the floor draws anything else, e.g. a new dead-letter reason;
    # a fixed 0.2 point was 2 sigma, and a new reason's draw sat at 0.73 %).
    n = first_sends + duplicates
    assert duplicates / n == pytest.approx(0.01, abs=4 * (0.01 * 0.99 / n) ** 0.5), n


def test_out_of_order_events_are_a_few_minutes_late() -> None:
    sent = events(first_20k())
    newest = sent[0].event_time
    late = 0
    for record in sent:
        if record.invalid is not None or record.duplicate:
            continue
        lateness = (record.emitted_at - record.event_time).total_seconds()
        assert 0 <= lateness <= 600
        if record.event_time < newest - timedelta(seconds=60):
            late += 1
        newest = max(newest, record.event_time)
    assert late / len(sent) == pytest.approx(0.02, abs=0.004)


def test_each_dead_letter_reason_has_its_share() -> None:
    sent = events(first_20k())
    counts = Counter(record.invalid for record in sent if record.invalid is not None)
    for reason in DeadLetterReason:
        assert counts[reason] / len(sent) == pytest.approx(0.0036, abs=0.002), reason
    assert sum(counts.values()) / len(sent) < 0.045, "under SalespulseDeadLetterRate's 5 %"


def test_flaws_can_be_turned_off() -> None:
    clean = Flaws(duplicate_share=0, out_of_order_share=0, invalid_share=0)
    sent = events(list(itertools.islice(records(flaws=clean), 3000)))
    assert not any(r.invalid or r.duplicate or r.out_of_order for r in sent)


def test_no_reference_means_no_reference_records() -> None:
    batch = list(itertools.islice(records(reference=False, peak_rate=20), 3000))
    assert not [r for r in batch if r.topic.startswith("ref.")]


# --- incidents ---


def win_rate(batch: list[Record], start: datetime, end: datetime) -> float:
    won = lost = 0
    for record, event in valid_first_sends(batch):
        if start <= record.event_time < end:
            won += event["type"] == "order.placed" and "opportunity_id" in event
            lost += event["type"] == "opportunity.lost"
    return won / (won + lost)


def test_a_conversion_dip_lowers_the_win_rate() -> None:
    tuesday, wednesday = datetime(2024, 6, 4, tzinfo=PARIS), datetime(2024, 6, 5, tzinfo=PARIS)
    before = win_rate(two_days(IncidentKind.CONVERSION_DIP), tuesday, wednesday)
    during = win_rate(two_days(IncidentKind.CONVERSION_DIP), wednesday, wednesday + timedelta(1))
    normal = win_rate(two_days(None), wednesday, wednesday + timedelta(1))
    assert 0.3 < before < 0.6
    assert 0.3 < normal < 0.6
    assert during < 0.5 * before


def per_day(batch: list[Record], kind: str) -> tuple[int, int]:
    wednesday = datetime(2024, 6, 5, tzinfo=PARIS)
    days = [r.event_time >= wednesday for r, e in valid_first_sends(batch) if e["type"] == kind]
    return days.count(False), days.count(True)


def test_a_churn_spike_multiplies_churn() -> None:
    before, during = per_day(two_days(IncidentKind.CHURN_SPIKE), "contract.churned")
    assert during > 20 * max(before, 1)


def test_a_lead_backlog_stops_leads_being_touched() -> None:
    batch = two_days(IncidentKind.LEAD_BACKLOG)
    wednesday = datetime(2024, 6, 5, tzinfo=PARIS)
    touched_after = [
        e
        for record, e in valid_first_sends(batch)
        if e["type"] in TOUCHES and "lead_id" in e and record.emitted_at >= wednesday
    ]
    leads_before, leads_during = per_day(batch, "lead.created")
    assert not touched_after
    assert leads_during > 0.5 * leads_before  # leads keep coming: the backlog grows


def test_silence_means_no_message_until_it_ends() -> None:
    starts = TUESDAY_9 + timedelta(minutes=10)
    quiet = Incident(IncidentKind.SILENCE, starts, starts + timedelta(minutes=4))
    batch = until(records(peak_rate=5.0, incidents=(quiet,)), TUESDAY_9 + timedelta(minutes=30))
    assert quiet.ends is not None
    times = [record.emitted_at for record in events(batch)]
    assert not [t for t in times if quiet.starts <= t < quiet.ends]
    assert len([t for t in times if t >= quiet.ends]) > 1000


# --- hours and clocks ---


def test_work_waits_for_opening_hours() -> None:
    hours = BusinessHours(PARIS)
    friday_18 = datetime(2024, 6, 7, 18, 0, tzinfo=PARIS).timestamp()
    later = datetime.fromtimestamp(hours.after_work(friday_18, 3600), PARIS)
    assert later == datetime(2024, 6, 10, 9, 0, tzinfo=PARIS)
    saturday = datetime(2024, 6, 8, tzinfo=PARIS).timestamp()
    assert hours.integral(saturday, saturday + 86_400) == pytest.approx(86_400 * 0.03)
    assert hours.level(datetime(2024, 6, 4, 12, 30, tzinfo=PARIS).timestamp()) < 0.5
    assert hours.level(datetime(2024, 6, 4, 10, 0, tzinfo=PARIS).timestamp()) == 1.0


def test_business_hours_follow_dst() -> None:
    hours = BusinessHours(PARIS)
    # 2024-03-31: clocks go forward; the floor still opens at 08:30 local on Monday.
    sunday = datetime(2024, 3, 31, 12, 0, tzinfo=PARIS).timestamp()
    opens = datetime.fromtimestamp(hours.next_open(sunday), PARIS)
    assert opens == datetime(2024, 4, 1, 8, 30, tzinfo=PARIS)
    assert opens.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    "wall",
    [
        datetime(2024, 6, 4, 3, 0, tzinfo=PARIS),  # before the opening: still today
        datetime(2024, 6, 4, 14, 0, tzinfo=PARIS),
        datetime(2024, 6, 8, 23, 59, 59, tzinfo=PARIS),  # a Saturday, a second to midnight
        datetime(2024, 3, 31, 2, 30, tzinfo=UTC),  # DST night in Paris
    ],
)
def test_always_open_event_time_is_wall_time_on_an_open_floor(wall: datetime) -> None:
    clock = AlwaysOpenClock(PARIS)
    event = clock.event_time(wall)
    assert event == wall
    assert event.astimezone(PARIS).date() == wall.astimezone(PARIS).date()
    assert clock.wall_time(event) == wall
    assert clock.hours().is_open(event.timestamp())
    assert clock.hours().level(event.timestamp()) == 1.0


def test_always_open_is_busy_at_night_and_at_weekends() -> None:
    clock = AlwaysOpenClock(PARIS)
    rate = 20.0
    for wall_start in (
        datetime(2024, 6, 4, 3, 0, tzinfo=PARIS),
        datetime(2024, 6, 8, 23, 55, tzinfo=PARIS),  # Saturday night, across midnight
    ):
        config: dict[str, Any] = {"hours": clock.hours(), "peak_rate": rate / clock.speed}
        stream = records(clock.event_time(wall_start), **config)
        wall_end = wall_start + timedelta(minutes=10)
        sent = events(until(stream, clock.event_time(wall_end)))
        assert all(wall_start <= clock.wall_time(r.emitted_at) < wall_end for r in sent)
        assert 0.8 * rate < len(sent) / 600 < 1.2 * rate  # per wall second, evenly


def test_always_open_work_waits_no_opening() -> None:
    hours = AlwaysOpenClock(PARIS).hours()
    night = datetime(2024, 6, 4, 23, 50, tzinfo=PARIS).timestamp()
    assert hours.next_open(night) == night
    assert hours.after_work(night, 1200) == pytest.approx(night + 1200, abs=1e-3)
    day = 24 * 3600
    assert hours.integral(night, night + 7 * day) == pytest.approx(7 * day, abs=1e-3)


@given(st.integers(min_value=1_577_836_800, max_value=1_900_000_000))  # 2020 .. 2030
def test_always_open_is_never_ahead_and_never_on_another_day(seconds: int) -> None:
    clock = AlwaysOpenClock(PARIS)
    wall = datetime.fromtimestamp(seconds, UTC)
    event = clock.event_time(wall)
    assert clock.hours().is_open(event.timestamp())
    assert event <= wall  # a worker never sees it as dated in its future
    assert event.astimezone(PARIS).date() == wall.astimezone(PARIS).date()
    assert clock.event_time(wall + timedelta(seconds=1)) > event


@given(st.floats(min_value=0.5, max_value=10_000), st.integers(0, 10**7))
def test_accelerated_runs_factor_times_faster(factor: float, seconds: int) -> None:
    origin = datetime(2024, 6, 4, 14, 0, tzinfo=PARIS)
    clock = AcceleratedClock(PARIS, factor, origin)
    wall = origin + timedelta(seconds=seconds)
    event = clock.event_time(wall)
    assert (event - origin).total_seconds() == pytest.approx(seconds * factor, rel=1e-9, abs=1e-3)
    assert abs((clock.wall_time(event) - wall).total_seconds()) < 1e-3


def test_clocks_by_name() -> None:
    origin = datetime(2024, 6, 4, 14, 0, tzinfo=PARIS)
    real = parse_clock("real", zone=PARIS, origin=origin)
    assert isinstance(real, RealClock)
    assert real.event_time(origin) == origin == real.wall_time(origin)
    fast = parse_clock("accelerated:60", zone=PARIS, origin=origin)
    assert fast.event_time(origin + timedelta(minutes=1)) == origin + timedelta(hours=1)
    assert isinstance(parse_clock("always-open", zone=PARIS, origin=origin), AlwaysOpenClock)
    for bad in ("fast", "accelerated", "accelerated:0", "accelerated:-2", "accelerated:x"):
        with pytest.raises(ValueError, match=r"accelerated|unknown clock"):
            parse_clock(bad, zone=PARIS, origin=origin)


INCIDENT_CASES = [
    ("conversion-dip@10m", IncidentKind.CONVERSION_DIP, timedelta(minutes=10), None),
    ("churn-spike@1.5h", IncidentKind.CHURN_SPIKE, timedelta(hours=1.5), None),
    ("lead-backlog@30s+5m", IncidentKind.LEAD_BACKLOG, timedelta(seconds=30), timedelta(minutes=5)),
    ("silence@2m", IncidentKind.SILENCE, timedelta(minutes=2), timedelta(minutes=2)),
]


@pytest.mark.parametrize(("text", "kind", "after", "lasting"), INCIDENT_CASES)
def test_incidents_are_parsed(
    text: str, kind: IncidentKind, after: timedelta, lasting: timedelta | None
) -> None:
    assert parse_incident(text) == IncidentSpec(kind, after, lasting)


@pytest.mark.parametrize("text", ["conversion-dip", "dip@10m", "silence@10", "silence@5m+0s"])
def test_bad_incidents_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected|unknown incident|positive"):
        parse_incident(text)


def test_incidents_start_at_a_wall_time_after_the_start() -> None:
    origin = datetime(2024, 6, 4, 14, 0, tzinfo=PARIS)
    clock = AcceleratedClock(PARIS, 60, origin)
    incident = parse_incident("silence@10m+1m").resolve(clock, origin)
    assert incident.starts == origin + timedelta(hours=10)
    assert incident.ends == origin + timedelta(hours=11)
    spec = parse_incident("conversion-dip@10m")
    assert spec.status(timedelta(minutes=4)) == "conversion-dip in 6m"
    assert spec.status(timedelta(minutes=11)) == "conversion-dip active"


# --- the command ---


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(argv)


def test_command_defaults_and_flags() -> None:
    defaults = command.options_from(parse())
    assert defaults == Options(reps=40, rate=50.0, seed=7, clock="real")
    given_ = command.options_from(parse(
        "--reps", "12", "--rate", "5", "--seed", "3", "--count", "100", "--duration", "9",
        "--clock", "accelerated:60", "--incident", "conversion-dip@10m",
        "--incident", "silence@1h", "--no-reference", "--history",
    ))  # fmt: skip
    assert (given_.reps, given_.rate, given_.seed) == (12, 5.0, 3)
    assert (given_.count, given_.duration, given_.clock) == (100, 9.0, "accelerated:60")
    assert not given_.reference
    assert given_.history
    assert [str(spec) for spec in given_.incidents] == ["conversion-dip@10m", "silence@1h+2m"]


@pytest.mark.parametrize(
    "argv", [("--clock", "sometimes"), ("--incident", "fire@1m"), ("--rate", "0"), ("--reps", "x")]
)
def test_command_refuses_bad_flags(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)
    assert "error" in capsys.readouterr().err


def test_plan_scales_the_floor_to_the_clock_and_avoids_configured_currencies(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path, fx_rates={"GBP": Decimal("1.17")})
    wall = datetime(2024, 6, 4, 3, 0, tzinfo=PARIS)
    clock, stream = plan(settings, Options(rate=10, clock="always-open"), wall)
    batch = list(itertools.islice(stream, 20_000))
    limits = Limits(max_bytes=65_536, currency="EUR", rates={"GBP": Decimal("1.17")}, future_s=300)
    currency_failures = [r for r in batch if r.invalid is DeadLetterReason.UNSUPPORTED_CURRENCY]
    assert currency_failures
    for record in currency_failures:
        with pytest.raises(InvalidEvent, match="unsupported_currency"):
            validate(record.value, record.topic, limits, datetime.now(UTC).timestamp())
    sent = events(batch)
    seconds = (clock.wall_time(sent[-1].emitted_at) - wall).total_seconds()
    assert len(sent) / seconds == pytest.approx(10, rel=0.35)  # per wall second, at night


def test_summary_counts_and_lines() -> None:
    summary = Summary()
    for record in first_20k()[:3000]:
        summary.add(record)
    sent = events(first_20k()[:3000])
    assert summary.events == len(sent)
    assert summary.reference + summary.events == 3000
    assert summary.dead_letter_bound == sum(r.invalid is not None for r in sent)
    assert sum(summary.types.values()) + summary.duplicates + summary.dead_letter_bound == len(sent)
    line = summary.progress(10.0, [parse_incident("conversion-dip@5s")])
    assert line == (
        f"simulate: {len(sent)} events ({len(sent) / 10:.1f}/s), "
        f"{summary.dead_letter_bound} dead-letter-bound, incidents: conversion-dip active"
    )
    assert "  per topic:" in summary.render()


def test_months_are_local() -> None:
    from streams.simulator.world import months_from

    assert months_from(date(2024, 11, 30), 3) == ["2024-11", "2024-12", "2025-01"]
