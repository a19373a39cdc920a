"""Scripted incidents: ``--incident conversion-dip@10m``, ``--incident silence@5m+2m``.

The form is ``<name>@<after>[+<lasting>]``; durations are a number and a unit (``s``, ``m``,
``h``), counted in wall time from the start of the run. Without ``+<lasting>`` an incident
lasts until the end of the run, except ``silence`` which lasts 2 minutes.

- ``conversion-dip``: deals closing during it are mostly lost (win rate falls to a fifth);
- ``churn-spike``: customers churn about 150 times as often, and complain 3 times as often;
- ``lead-backlog``: leads stop being touched (new ones pile up past the response SLA);
- ``silence``: no event at all; steps of deals in progress resume when it ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


class IncidentKind(StrEnum):
    CONVERSION_DIP = "conversion-dip"
    CHURN_SPIKE = "churn-spike"
    LEAD_BACKLOG = "lead-backlog"
    SILENCE = "silence"


DEFAULT_SILENCE = timedelta(minutes=2)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


class _Clock(Protocol):
    def event_time(self, wall: datetime) -> datetime: ...


@dataclass(frozen=True)
class Incident:
    """An incident in event time: from ``starts``, until ``ends`` (None: for good)."""

    kind: IncidentKind
    starts: datetime
    ends: datetime | None = None

    def active(self, at: datetime) -> bool:
        return self.starts <= at and (self.ends is None or at < self.ends)


@dataclass(frozen=True)
class IncidentSpec:
    """An incident as given on the command line: when, in wall time after the start."""

    kind: IncidentKind
    after: timedelta
    lasting: timedelta | None = None

    def resolve(self, clock: _Clock, wall_start: datetime) -> Incident:
        """The incident in the event time of ``clock``, for a run started at ``wall_start``."""
        starts = wall_start + self.after
        ends = None if self.lasting is None else starts + self.lasting
        return Incident(
            self.kind,
            clock.event_time(starts),
            None if ends is None else clock.event_time(ends),
        )

    def status(self, elapsed: timedelta) -> str:
        """``conversion-dip active``, ``silence in 3m``, ``silence over``, ``elapsed`` after
        the start of the run: for progress lines."""
        if elapsed < self.after:
            return f"{self.kind} in {_short(self.after - elapsed)}"
        if self.lasting is None or elapsed < self.after + self.lasting:
            return f"{self.kind} active"
        return f"{self.kind} over"

    def __str__(self) -> str:
        lasting = "" if self.lasting is None else f"+{_short(self.lasting)}"
        return f"{self.kind}@{_short(self.after)}{lasting}"


def parse_duration(text: str) -> timedelta:
    """``90s``, ``10m``, ``1.5h``."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"expected a duration such as 90s, 10m or 1.5h, got {text!r}")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


def parse_incident(text: str) -> IncidentSpec:
    """``conversion-dip@10m``, ``silence@5m+90s`` -> an IncidentSpec."""
    name, at, when = text.strip().partition("@")
    if not at:
        raise ValueError(f"expected <name>@<after>, e.g. conversion-dip@10m, got {text!r}")
    try:
        kind = IncidentKind(name)
    except ValueError:
        known = ", ".join(kind.value for kind in IncidentKind)
        raise ValueError(f"unknown incident {name!r}: expected one of {known}") from None
    after, plus, lasting = when.partition("+")
    duration = parse_duration(lasting) if plus else None
    if duration is not None and duration <= timedelta(0):
        raise ValueError(f"an incident must last a positive time, got {text!r}")
    if duration is None and kind is IncidentKind.SILENCE:
        duration = DEFAULT_SILENCE
    return IncidentSpec(kind, parse_duration(after), duration)


def _short(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"
