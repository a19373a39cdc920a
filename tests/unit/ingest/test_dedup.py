"""streams.ingest.dedup: same id within the horizon is a duplicate."""

from __future__ import annotations

import pytest

from streams.ingest.dedup import is_duplicate

DAY = 86_400.0


@pytest.mark.parametrize(
    ("previous", "occurred", "horizon", "duplicate"),
    [
        (None, 1000.0, 7 * DAY, False),  # never seen
        (1000.0, 1000.0, 7 * DAY, True),  # a retry: same event time
        (1000.0, 1000.0 + 7 * DAY, 7 * DAY, True),  # at the horizon, inclusive
        (1000.0, 1000.0 + 7 * DAY + 1, 7 * DAY, False),  # id reused after the horizon
        (1000.0 + DAY, 1000.0, 7 * DAY, True),  # older copy arriving later
        (1000.0, 1000.0, 0.0, True),  # horizon 0 still catches exact replays
    ],
)
def test_is_duplicate(
    previous: float | None, occurred: float, horizon: float, duplicate: bool
) -> None:
    assert is_duplicate(previous, occurred, horizon) is duplicate
