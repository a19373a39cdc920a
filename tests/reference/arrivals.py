"""Which messages count, and for which window kinds: validation, dedup, lateness.

In arrival order: an invalid message (dated in the future too) is skipped (it never marks an
``event_id`` as seen); a valid event whose ``event_id`` was seen before is a duplicate and
skipped. Stream time is one number: the largest ``occurred_at`` of the counted events that
arrived before. An event is left out of kind ``k`` when stream time >= end of its ``k``
window + the horizon of ``k`` (the engine's retention: a later event only corrects its
window). An event left out of every kind is not counted at all (not even in ``leads_waiting``,
which is not windowed): it is too old for anything to take it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from streams.contracts.events import Envelope
from streams.ingest.validate import InvalidEvent, Limits, validate
from tests.reference.windows import KINDS, MINUTE, window_end, window_start


@dataclass(frozen=True)
class Arrival:
    event: Envelope
    late_for: frozenset[str]


def admit(
    messages: Iterable[tuple[str, bytes]],
    *,
    limits: Limits,
    tz: ZoneInfo,
    horizon_minute_s: float,
    horizon_day_s: float,
    horizon_calendar_s: float,
) -> list[Arrival]:
    """The counted events in arrival order, each with the kinds it is left out of."""
    horizons = {MINUTE: horizon_minute_s, "day": horizon_day_s}
    seen: set[str] = set()
    stream_time: datetime | None = None
    out: list[Arrival] = []
    for topic, raw in messages:
        try:
            event = validate(raw, topic, limits, time.time()).event
        except InvalidEvent:
            continue
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        late: set[str] = set()
        if stream_time is not None:
            now = stream_time.timestamp()
            for kind in KINDS:
                horizon = horizons.get(kind, horizon_calendar_s)
                end = window_end(kind, window_start(kind, event.occurred_at, tz), tz)
                if now >= end + horizon:
                    late.add(kind)
        if len(late) < len(KINDS):  # past every horizon: no window takes it, nor any entity
            out.append(Arrival(event, frozenset(late)))
        if stream_time is None or event.occurred_at > stream_time:
            stream_time = event.occurred_at
    return out
