"""Helpers of the KPI tests: streams to send, the engine's published values, comparisons."""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.connections.kafka import kafka_options
from streams.connections.redis import sync_redis_client
from streams.contracts.reference import REFERENCE_MODELS
from streams.ingest.validate import Limits
from streams.replay.dump import dump_line
from streams.serving.read_model import closed_through
from streams.settings import Settings
from streams.simulator.incidents import IncidentKind, IncidentSpec
from streams.simulator.produce import Options, plan
from streams.topics import ensure_topics
from tests.kafka_tools import worker_metric
from tests.reference.arrivals import Arrival, admit
from tests.reference.kpis import RefData, Result, compute

Message = tuple[str, bytes, bytes]  # (logical topic, key, value)
Key = tuple[str, str, int, str, str]


def event_time(value: bytes) -> datetime | None:
    """The event time of a valid event message; None for the floor's invalid ones (those
    dated a century ahead included: future-dated, dead-lettered)."""
    try:
        moment = datetime.fromisoformat(orjson.loads(value)["occurred_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if moment.tzinfo is None or moment > datetime.now(UTC) + timedelta(days=365):
        return None
    return moment


def floor_messages(
    settings: Settings, options: Options, start: datetime, *, events: int | None = None,
    until: datetime | None = None,
) -> tuple[list[Message], list[Message]]:  # fmt: skip
    """(reference records, event messages) of the simulator from ``start``: ``events``
    messages, or those emitted before ``until`` (event time)."""
    _, records = plan(settings, options, start)
    reference: list[Message] = []
    stream: list[Message] = []
    for record in records:
        if record.kind == "reference":
            reference.append((record.topic, record.key, record.value))
            continue
        if until is not None and record.emitted_at >= until:
            break
        stream.append((record.topic, record.key, record.value))
        if events is not None and len(stream) >= events:
            break
    return reference, stream


AHEAD_OF_THE_WALL_CLOCK = 5 * 86_400.0
"""``future_tolerance_s`` for a worker fed a ``next_morning`` floor: it is up to three and a
half days ahead of the wall clock (Friday evening to Monday's 09:00, then the morning), and the
default tolerance (5 minutes) would dead-letter all of it as future-dated."""


def next_morning(settings: Settings) -> datetime:
    """09:00 of the next weekday at least an hour ahead, in the business time zone.

    Ahead of wall time, so that idle closing (which moves stream time up to wall time once
    every partition is caught up and quiet) leaves stream time on a simulated morning."""
    day = datetime.now(settings.zone) + timedelta(hours=1)
    while True:
        start = day.replace(hour=9, minute=0, second=0, microsecond=0)
        if start.weekday() < 5 and start >= datetime.now(settings.zone) + timedelta(hours=1):
            return start
        day += timedelta(days=1)


def morning_with_a_dip(
    settings: Settings, after_dip: timedelta = timedelta(0)
) -> tuple[list[Message], list[Message]]:
    """(reference records and events until 12:00, events of ``after_dip`` from 12:00) of the
    simulator from the next weekday's 09:00 (``next_morning``), accelerated x60, rate 40,
    seed 3, a going concern (``--history``): two hours of a normal morning, then the
    ``conversion-dip`` incident from 11:00 to 12:00. ``SalespulseWinRateDip`` compares the last
    hour with the month: the month so far and the morning are the month, the dip the last
    hour, and after an hour more the last hour is the floor's own again.

    ``settings`` must take events that far ahead (``AHEAD_OF_THE_WALL_CLOCK``)."""
    if settings.future_tolerance_s < AHEAD_OF_THE_WALL_CLOCK:
        raise ValueError(
            "the morning is ahead of the wall clock: give the settings "
            "future_tolerance_s=AHEAD_OF_THE_WALL_CLOCK"
        )
    start = next_morning(settings)
    dip = IncidentSpec(IncidentKind.CONVERSION_DIP, timedelta(minutes=2), timedelta(minutes=1))
    options = Options(rate=40, seed=3, clock="accelerated:60", incidents=(dip,), history=True)
    dip_ends = start + timedelta(hours=3)
    reference, stream = floor_messages(settings, options, start, until=dip_ends + after_dip)
    split = next(
        (i for i, (_, _, v) in enumerate(stream) if (t := event_time(v)) and t >= dip_ends),
        len(stream),
    )
    return reference + stream[:split], stream[split:]


def simulator_stream(
    settings: Settings, start: datetime, events: int, seed: int = 11, late: int = 15
) -> tuple[list[Message], list[Message]]:
    """(reference records, event messages) of a simulated floor from ``start``.

    The floor brings duplicates, out-of-order events and invalid messages; ``late`` copies of
    calls and orders (new ids) three days in the past are added near the end, late for the
    minute and day windows.
    """
    options = Options(rate=0.05, clock="always-open", seed=seed)
    reference, stream = floor_messages(settings, options, start, events=events)
    copies: list[Message] = []
    for topic, key, value in stream:
        if len(copies) >= late or topic not in ("sales.calls", "sales.orders"):
            continue
        try:
            payload = orjson.loads(value)
            moment = datetime.fromisoformat(payload["occurred_at"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        payload["event_id"] = f"{payload['event_id']}-late"
        payload["occurred_at"] = (moment - timedelta(days=3)).isoformat()
        copies.append((topic, key, orjson.dumps(payload)))
    return reference, stream[:-50] + copies + stream[-50:]


def late_copies_from(stream: list[Message]) -> int:
    """Where ``simulator_stream``'s three-day-old copies begin in its stream. Tests send the
    floor before them first, then (once it is under way, as late events arrive) the copies
    and the events after them: sent in one burst, a copy read before the cluster watermark
    knows every input partition is judged with no watermark, so on time for windows an
    arrival-order reference has it late for (docs/engine.md, "The cluster watermark")."""
    for index, (_, _, value) in enumerate(stream):
        try:
            payload = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(payload, dict) and str(payload.get("event_id", "")).endswith("-late"):
            return index
    raise ValueError("the stream has no late copies (simulator_stream's late=0?)")


def ref_data(reference: Iterable[Message]) -> RefData:
    by_topic = {topic: model for topic, model in REFERENCE_MODELS.values()}
    reps, products, accounts, targets = {}, {}, {}, []
    for topic, _, value in reference:
        record = by_topic[topic].model_validate_json(value)
        if topic == "ref.reps":
            reps[record.rep_id] = record  # type: ignore[attr-defined]
        elif topic == "ref.products":
            products[record.product_id] = record  # type: ignore[attr-defined]
        elif topic == "ref.accounts":
            accounts[record.account_id] = record  # type: ignore[attr-defined]
        else:
            targets.append(record)
    return RefData(reps=reps, products=products, accounts=accounts, targets=targets)


def limits_of(settings: Settings) -> Limits:
    return Limits(
        settings.max_event_bytes, settings.currency, dict(settings.fx_rates),
        future_s=settings.future_tolerance_s,
    )  # fmt: skip


def admitted(settings: Settings, stream: list[Message], *, retention: bool = True) -> list[Arrival]:
    """The events of ``stream`` the reference counts (valid, not duplicates), each with the
    kinds it is left out of: past the settings' retention (none with ``retention`` False)."""
    forever = 1e12
    return admit(
        [(topic, value) for topic, _, value in stream], limits=limits_of(settings),
        tz=settings.zone,
        horizon_minute_s=settings.retention_minute_s if retention else forever,
        horizon_day_s=settings.retention_day_s if retention else forever,
        horizon_calendar_s=settings.retention_calendar_s if retention else forever,
    )  # fmt: skip


def reference_results(
    settings: Settings, reference: list[Message], stream: list[Message], now: datetime
) -> dict[Key, Result]:
    return compute(
        [(topic, value) for topic, _, value in stream], ref_data(reference),
        limits=limits_of(settings),
        tz=settings.business_tz, lead_sla_s=settings.lead_sla_s, now=now,
        # late events correct their windows while they are retained (docs/kpi-definitions.md)
        horizon_minute_s=settings.retention_minute_s, horizon_day_s=settings.retention_day_s,
        horizon_calendar_s=settings.retention_calendar_s,
    )  # fmt: skip


async def _produce(settings: Settings, messages: list[Message]) -> None:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(**kafka_options(settings).client, acks="all")
    await producer.start()
    try:
        for topic, key, value in messages:
            await producer.send(settings.topic(topic), value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def produce(settings: Settings, messages: list[Message]) -> None:
    """Send ``messages`` in order (per partition order is what the engine sees)."""
    asyncio.run(_produce(settings, messages))


def write_dump(path: Path, messages: Iterable[Message]) -> int:
    """Write ``messages`` as a dump ``salespulse replay --dump`` sends as they are, in this
    order (streams/replay/dump.py); returns how many it wrote."""
    written = 0
    with path.open("wb") as handle:
        for topic, key, value in messages:
            handle.write(dump_line(topic, key, value) + b"\n")
            written += 1
    return written


def engine_results(settings: Settings) -> dict[Key, dict[str, Any]]:
    """Every KPI record of the Redis read model."""
    client = sync_redis_client(settings)
    out: dict[Key, dict[str, Any]] = {}
    for name in client.scan_iter(match=f"{settings.redis_prefix}kpi:*", count=1000):
        _, kpi, kind, start, dim = name.decode()[len(settings.redis_prefix) :].split(":", 4)
        for field, raw in client.hgetall(name).items():
            out[(kpi, kind, int(start), dim, field.decode())] = orjson.loads(raw)
    return out


def stream_time_ms(settings: Settings) -> int | None:
    score = sync_redis_client(settings).zscore(f"{settings.redis_prefix}stream_time", "global")
    return None if score is None else int(score)


def closed_through_ms(settings: Settings) -> int | None:
    """The stream time every publisher partition has reached (``<p>stream_time``'s
    ``q<n>``): each window of every key ending before it, grace included, is final in Redis."""
    key = f"{settings.redis_prefix}stream_time"
    scores = dict(sync_redis_client(settings).zrange(key, 0, -1, withscores=True))
    return closed_through(scores, settings.topic_partitions)


def wait_for_stream_time(settings: Settings, at: datetime, timeout: float = 120.0) -> None:
    """Until every publisher partition's stream time (every entity partition's, as that
    partition has it) reaches ``at``: the windows behind it, grace included, are closed and
    in Redis (a window that is history has no values before it closes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ms = closed_through_ms(settings)
        if ms is not None and ms >= at.timestamp() * 1000:
            return
        time.sleep(0.2)
    raise AssertionError(
        f"stream time did not reach {at.isoformat()} in {timeout:.0f} s: every partition's "
        f"is {closed_through_ms(settings)} ms, the newest {stream_time_ms(settings)} ms"
    )


def applied(settings: Settings) -> float:
    return worker_metric(settings, "salespulse_events_applied_total")


def settled(
    settings: Settings, timeout: float = 240.0, final: bool = True, quiet_s: float = 3.0
) -> dict[Key, dict[str, Any]]:
    """The engine's values once (``final``) every window is final and nothing changed for
    ``quiet_s``. Every window: every publisher partition's stream time has reached the wall
    clock of the call, for a window that is history is published only when it closes
    (``Publisher._history``): the records in Redis being final does not say that none is
    left to close."""
    deadline, began_ms = time.monotonic() + timeout, time.time() * 1000
    last: dict[Key, dict[str, Any]] | None = None
    while time.monotonic() < deadline:
        current = engine_results(settings)
        done = current and (
            not final
            or (
                (closed_through_ms(settings) or 0) >= began_ms
                and all(r["final"] for k, r in current.items() if k[1] != "live")
            )
        )
        if done and current == last:
            return current
        last = current
        time.sleep(quiet_s)
    open_windows = sorted(k for k, r in (last or {}).items() if k[1] != "live" and not r["final"])
    shown = "".join(f"\n  {k}: {(last or {})[k]}" for k in open_windows[:10])
    raise AssertionError(
        f"the engine did not settle in {timeout:.0f} s: {len(last or {})} records, "
        f"{len(open_windows)} not final, stream time {stream_time_ms(settings)}{shown}"
    )


def _close(a: Decimal | None, b: Decimal | None, rel: Decimal) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= rel * max(abs(a), abs(b), Decimal(1))


def _dec(x: Any) -> Decimal | None:
    return None if x is None else Decimal(str(x))


def mismatches(
    engine: Mapping[Key, Mapping[str, Any]], reference: Mapping[Key, Result],
    kinds: Iterable[str], dims: Iterable[str] | None = None,
    context: Mapping[Key, Result] | None = None,
) -> list[str]:  # fmt: skip
    """Differences between the engine's records and the reference, for ``kinds``
    (``context``: the whole reference, when ``reference`` is a part of it)."""
    kinds, wanted = set(kinds), None if dims is None else set(dims)
    problems: list[str] = []
    exact, loose = Decimal("1e-9"), Decimal("0.0101")
    for key, want in reference.items():
        if key[1] not in kinds or (wanted is not None and key[3] not in wanted):
            continue
        got = engine.get(key)
        if got is None:
            if _dec(want.numerator) in (None, Decimal(0)) and want.value in (None, 0):
                continue  # an empty value the engine has no cell for
            churn = (context or reference).get(("churn_rate", *key[1:]))
            if key[0] in ("retention_rate", "ltv") and churn and not churn.numerator:
                continue  # no churn and no activity: the engine has no cell for that key
            problems.append(f"missing {key}: reference {want}")
            continue
        p90 = key[0].endswith("_p90")
        checks = [
            ("value", _dec(got["value"]), _dec(want.value), loose if p90 else exact),
            ("denominator", _dec(got["denominator"]), _dec(want.denominator), exact),
        ]
        if not p90:
            checks.append(("numerator", _dec(got["numerator"]), _dec(want.numerator), exact))
        for name, g, w, rel in checks:
            if not _close(g, w, rel):
                problems.append(f"{key} {name}: engine {g} != reference {w}")
    for key, got in engine.items():
        if key[1] not in kinds or key in reference:
            continue
        if wanted is not None and key[3] not in wanted:
            continue
        if _dec(got["numerator"]) not in (None, Decimal(0)):
            problems.append(f"extra {key}: engine {got}")
    return problems


def api_get(settings: Settings, path: str, **params: str) -> tuple[int, Any]:
    """(HTTP status, JSON answer) of ``GET path`` on the worker's web server."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    url = f"http://127.0.0.1:{settings.web_port}{path}{query}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def get_history(settings: Settings, kpi: str, **params: str) -> dict[str, Any]:
    """``GET /api/kpis/{kpi}/history`` of the worker on ``settings.web_port`` (200 expected)."""
    url = (
        f"http://127.0.0.1:{settings.web_port}/api/kpis/{kpi}/history"
        f"?{urllib.parse.urlencode(params)}"
    )
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            answer: dict[str, Any] = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"GET {url}: {exc.code} {exc.read()[:500]!r}") from exc
    return answer


def history_mismatches(
    answer: Mapping[str, Any], reference: Mapping[Key, Result],
    labels: tuple[str, str] | None = None,
) -> list[str]:  # fmt: skip
    """Differences between a ``GET /api/kpis/{kpi}/history`` answer and the reference.

    The points must be the windows of the answer's range, consecutive (each starts where the
    previous one ends), and every window's values must be the reference's for that KPI,
    window kind, dimension (and key, if the answer is for one key), compared as
    ``mismatches`` compares the engine's records: a window the reference has values for and
    the answer leaves empty is "missing", values the reference does not have are "extra".
    ``labels``: the first and last windows asked (``("2016-10", "2017-12")``).
    """
    kpi, kind, dim, only = (
        answer["kpi"],
        answer["window"]["kind"],
        answer["dimension"],
        answer["key"],
    )
    points = answer["points"]
    problems: list[str] = []
    if labels is not None and [p["label"] for p in points[:1] + points[-1:]] != list(labels):
        problems.append(f"{kpi}/{kind}/{dim}: windows {answer['window']} asked {labels}")
    if len(points) != answer["window"]["count"]:
        problems.append(
            f"{kpi}/{kind}/{dim}: {len(points)} points, count {answer['window']['count']}"
        )
    if not points:
        return [*problems, f"{kpi}/{kind}/{dim}: no points"]
    if (
        points[0]["start"] != answer["window"]["start"]
        or points[-1]["end"] != answer["window"]["end"]
    ):
        problems.append(f"{kpi}/{kind}/{dim}: points do not span {answer['window']}")
    for before, after in itertools.pairwise(points):
        if before["end"] != after["start"]:
            problems.append(
                f"{kpi}/{kind}/{dim}: gap between {before['label']} and {after['label']}"
            )
    starts = {int(datetime.fromisoformat(p["start"]).timestamp()) for p in points}
    got: dict[Key, dict[str, Any]] = {}
    for point in points:
        start = int(datetime.fromisoformat(point["start"]).timestamp())
        for v in point["values"]:
            if only is not None and v["key"] != only:
                problems.append(f"{kpi}/{kind}/{dim} {point['label']}: key {v['key']} asked {only}")
            got[(kpi, kind, start, dim, v["key"])] = v
    wanted = {
        key: result
        for key, result in reference.items()
        if key[0] == kpi and key[1] == kind and key[3] == dim and key[2] in starts
        and (only is None or key[4] == only)
    }  # fmt: skip
    return problems + mismatches(got, wanted, (kind,), (dim,), context=reference)
