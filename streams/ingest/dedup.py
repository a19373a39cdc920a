"""Duplicate detection by ``event_id`` within a horizon of event time."""

from __future__ import annotations


def is_duplicate(previous: float | None, occurred: float, horizon_s: float) -> bool:
    """True if an event with the same id, at ``previous`` (epoch s), was seen within horizon.

    Both the original and a replay carry the same ``occurred_at``, so the distance is zero;
    an id reused by the source after the horizon counts as a new event.
    """
    return previous is not None and abs(occurred - previous) <= horizon_s
