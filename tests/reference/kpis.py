"""Reference implementation of every KPI of docs/kpi-definitions.md, for the tests.

Plain Python over the raw messages, written from the specification only: nothing here comes
from ``streams.kpi`` or ``streams.engine`` (only the contracts and ``streams.ingest.validate``).
It is a second opinion on the engine, so where they disagree one of them is wrong.

``compute(messages, ref, limits=...)`` returns ``{(kpi, kind, window_start, dimension, key):
Result(value, numerator, denominator)}``; ``rolling(...)`` merges minute buckets.

Emission rule (which keys exist):

- kinds ``minute``, ``day``, ``week``, ``month``, ``quarter``, each computed from the events
  not left out of that kind (past its horizon, the engine's retention: those are no context
  either; an event later than the grace still counts, as a correction);
- a key exists when at least one event *contributed* to that KPI in that window and dimension
  key: an event counted, summed, sampled, or added to a ratio's numerator or denominator
  (e.g. any order contributes to ``complaint_ratio``'s denominator, an order without
  ``quote_id`` does not contribute to ``quote_conversion_rate``). Ratios with a zero
  denominator have value None;
- ``revenue_per_rep``: also every window/key where a rep had any event (numerator 0.00);
- ``target_attainment``/``target_pacing``: month and quarter windows only, where an order
  contributed revenue; denominator None (value None) when no target matches;
- ``churn_rate``, ``retention_rate``, ``ltv``: calendar kinds only, for every window from the
  first to the last event's window (of the kind's events) and every owner-dims key with
  customers at start > 0 or churned > 0;
- ``leads_waiting``: kind ``live``, window start 0, a key for every dimension key of a
  ``lead.created`` with t0 <= now (value possibly 0). It reads every counted event (lateness
  applies to windows, and this KPI is not windowed).

Decisions where the definitions leave room (see also the modules' docstrings):

- a lead is a ``lead.created`` event (two events with one ``lead_id`` are two leads);
- a customer stops being one at its first ``contract.churned`` with occurred_at >= its first
  order's; later orders do not make it a customer again; a churn at exactly a window start
  counts the account among that window's customers at start (it was not churned *before*);
- money is rounded to the cent half-to-even: an order's margin ``amount - sum(q*unit_cost)``,
  a product's line value ``sum(q*unit_price)`` and its margin ``line value - line cost``
  (unrounded parts, one rounding); ``cost known`` is judged on the whole order, also under
  ``product``;
- ``ltv`` numerator = revenue * margin / revenue-with-known-cost (exact Decimal), None when
  no order of the window and key has a known cost;
- ``target_pacing`` denominator = target * elapsed / window length, exact Decimal, elapsed
  clamped to [0, window length]; targets are looked up only for the window's own period
  (a quarter's target is not the sum of its months');
- ratio values: float for counts and seconds/days, Decimal when money is involved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from streams.contracts.events import CallLogged, EmailSent, Envelope, LeadCreated, MeetingHeld
from streams.ingest.validate import Limits
from tests.reference.arrivals import admit
from tests.reference.catalog import (
    CALENDAR_ONLY,
    COUNT,
    DIMENSIONS,
    MONTH_QUARTER_ONLY,
    P90,
    RATIO,
    SHAPES,
    SUM,
)
from tests.reference.dims import RefData, dims_of
from tests.reference.results import Key, Number, Result, Results, divide, p90, plus
from tests.reference.window_kpis import WindowKpis
from tests.reference.windows import KINDS

__all__ = ["Key", "RefData", "Result", "Results", "compute", "rolling"]

ROLLING_MINUTES = {"15m": 15, "1h": 60, "24h": 1440}


def _order(event: Envelope) -> tuple[datetime, str]:
    return (event.occurred_at, event.event_id)


def compute(
    messages: Iterable[tuple[str, bytes]],
    ref: RefData,
    *,
    limits: Limits,
    tz: str = "Europe/Paris",
    horizon_minute_s: float = 600,
    horizon_day_s: float = 86400,
    horizon_calendar_s: float = 86400,
    lead_sla_s: float = 3600,
    now: datetime | None = None,
) -> Results:
    """Every KPI record of ``messages`` (logical topic, raw value), given in arrival order."""
    zone = ZoneInfo(tz)
    arrivals = admit(
        messages,
        limits=limits,
        tz=zone,
        horizon_minute_s=horizon_minute_s,
        horizon_day_s=horizon_day_s,
        horizon_calendar_s=horizon_calendar_s,
    )
    if now is None and arrivals:
        now = max(a.event.occurred_at for a in arrivals)
    out = Results()
    for kind in KINDS:
        events = sorted((a.event for a in arrivals if kind not in a.late_for), key=_order)
        WindowKpis(kind, events, ref, zone, now).run(out)
    if now is not None:
        _leads_waiting(sorted((a.event for a in arrivals), key=_order), ref, now, lead_sla_s, out)
    return out


def _leads_waiting(
    events: list[Envelope], ref: RefData, now: datetime, sla_s: float, out: Results
) -> None:
    touch_times: dict[str, list[datetime]] = {}
    for e in events:
        if isinstance(e, CallLogged | EmailSent | MeetingHeld) and e.lead_id is not None:
            touch_times.setdefault(e.lead_id, []).append(e.occurred_at)
    counts: dict[tuple[str, str], int] = {}
    for e in events:
        if not isinstance(e, LeadCreated) or e.occurred_at > now:
            continue
        t0 = e.occurred_at
        waiting = t0 <= now - timedelta(seconds=sla_s) and not any(
            t0 <= t1 <= now for t1 in touch_times.get(e.lead_id, [])
        )
        for dim, key in dims_of(e, ref).pairs():
            if dim in DIMENSIONS["leads_waiting"]:
                counts[(dim, key)] = counts.get((dim, key), 0) + waiting
    for (dim, key), n in counts.items():
        out[("leads_waiting", "live", 0, dim, key)] = Result(n, n, None)


def rolling(
    results: Results, kpi: str, kind: str, at: datetime, dimension: str, key: str
) -> Result:
    """The ``kind`` (15m, 1h, 24h) rolling value ending with the minute bucket holding ``at``.

    Counts and sums add up; ratios and averages add numerators and denominators (the
    distinct reps of ``revenue_per_rep`` are united, not added); ``_p90`` is taken over the
    raw values of the buckets. No contributing bucket: ``Result(None, None, None)``.
    """
    shape = SHAPES[kpi]
    if kpi in CALENDAR_ONLY or kpi in MONTH_QUARTER_ONLY or shape not in (COUNT, SUM, RATIO, P90):
        raise ValueError(f"{kpi} has no minute buckets")
    last = math.floor(at.timestamp() / 60) * 60
    keys: list[Key] = [
        (kpi, "minute", last - 60 * i, dimension, key) for i in range(ROLLING_MINUTES[kind])
    ]
    keys = [k for k in keys if k in results]
    if not keys:
        return Result(None, None, None)
    if shape == P90:
        values = [v for k in keys for v in results.samples[k]]
        return Result(p90(values), None, len(values))
    num: Number = sum_of(results[k].numerator for k in keys)
    if shape in (COUNT, SUM):
        return Result(num, num, None)
    den: Number
    if kpi == "revenue_per_rep":
        den = len(frozenset().union(*(results.reps[k] for k in keys)))
    else:
        den = sum_of(results[k].denominator for k in keys)
    return Result(divide(num, den), num, den)


def sum_of(values: Iterable[Number | None]) -> Number:
    total: Number = 0
    for value in values:
        assert value is not None
        total = plus(total, value)
    return total
