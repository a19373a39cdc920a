"""The floor as a going concern (``FloorConfig.history``, ``simulate --history``): what
it booked from the start of the quarter until yesterday, and the deals already in its pipeline
at the start, so that from the first minute the month's and the quarter's attainment and
pacing, and the win rate, read as those of a team that has been at work all along.

- Past days: one order per active rep and week of this month (and per earlier month of the
  quarter), dated on its last open day in business hours, worth the rep's share of what the
  floor books in that time (its expected bookings times the busy time), give or take a quarter.
  Sent at once before the live events (a few hundred orders: the engine takes them in seconds).
  Each book comes with lost deals of the same rep, as many per order as the floor loses per
  order it wins (``losses_per_order``), so that the month's win rate reads as the floor's own
  from the first minute, not as a hundred past orders without a loss.
- Pipeline: deals opened before the start close in the first hours (won or lost with the
  floor's own win probabilities) at the rate the floor's own deals will close at once warmed up,
  fading as they do; without them the first hour would only see webshop orders: 100 % won.

Today's busy hours before the start are booked too, on the month's latest open day before
today (so that today's figures are the live floor's alone); on the month's first open day, at
today's opening.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from streams.simulator.hours import BusinessHours
from streams.simulator.world import RepProfile, World, quarter_start

# What the floor promises a wallboard from the first minutes (the README's simulator section;
# checked by tests/unit/test_simulator_realism.py and the wallboard test): pacing on the
# month's target within this band, and the win rate within this many points of the floor's own
# (``funnel.expected_win_rate``).
PACING_BAND = (0.7, 1.3)
WIN_RATE_SPREAD = 0.12

# Share of the floor's steady deal closes still missing after ``busy`` seconds of busy time:
# most deals close within a few hours of their lead, some take days (funnel.CLOSE_DELAYS).
PIPELINE = ((0.6, 1.5 * 3600.0), (0.4, 15 * 3600.0))  # (share, time constant)
PIPELINE_SECONDS = 40 * 3600.0  # after this much busy time the pipeline is left alone
P_PIPELINE_QUOTED = 0.9  # pipeline deals that were quoted (their win probability)
DAY_NOISE = (0.75, 1.25)  # a rep's day, against their expected share


def losses_per_order(win_rate: float) -> float:
    """Lost deals per won order on a floor whose win rate is ``win_rate``."""
    return (1 - win_rate) / win_rate


def draw_count(rng: random.Random, mean: float) -> int:
    """A whole number whose expectation is ``mean``: its floor, and one more now and then."""
    whole = math.floor(mean)
    return whole + (rng.random() < mean - whole)


def pipeline_share(busy_seconds: float) -> float:
    """Share of the steady deal-close rate the pipeline makes up after ``busy_seconds``."""
    return sum(share * math.exp(-busy_seconds / scale) for share, scale in PIPELINE)


def past_days(hours: BusinessHours, start: float) -> Iterator[tuple[date, float]]:
    """(day, busy seconds) of each open day from the start of the quarter until yesterday."""
    today = datetime.fromtimestamp(start, hours.zone).date()
    day = quarter_start(today)
    while day < today:
        if day.weekday() in hours.open_days:
            yield day, hours.integral(_midnight(day, hours), _midnight(day + timedelta(1), hours))
        day += timedelta(days=1)


def _books(days: list[tuple[date, float]], today: date) -> list[tuple[date, float]]:
    """Days summed into books: per week this month, per month before; each dated on its last
    day (few orders, so that the engine takes the past in seconds)."""
    books: dict[tuple[int, int, int], tuple[date, float]] = {}
    for day, busy in days:
        if (day.year, day.month) == (today.year, today.month):
            key = (1, *day.isocalendar()[:2])
        else:
            key = (0, day.year, day.month)
        last, total = books.get(key, (day, 0.0))
        books[key] = (max(last, day), total + busy)
    return sorted(books.values())


def _midnight(day: date, hours: BusinessHours) -> float:
    return datetime.combine(day, time(0), tzinfo=hours.zone).timestamp()


def past_orders(
    world: World, hours: BusinessHours, start: float, bookings_per_s: Decimal, rng: random.Random
) -> list[tuple[float, RepProfile, Decimal]]:
    """(event time, rep, amount) of the orders of the past days, oldest first."""
    reps = world.active_reps
    weights = [rep.pace * rep.skill for rep in reps]
    total = sum(weights)
    today = datetime.fromtimestamp(start, hours.zone).date()
    this_morning = hours.integral(_midnight(today, hours), start)
    days = list(past_days(hours, start))
    in_month = [day for day, _ in days if day.month == today.month]
    # today's hours before the start: on the month's latest open day, or today at opening
    days.append((in_month[-1] if in_month else today, this_morning))
    orders = []
    for day, busy in _books(days, today):
        opens = datetime.combine(day, hours.opens, tzinfo=hours.zone).timestamp()
        closes = datetime.combine(day, hours.closes, tzinfo=hours.zone).timestamp()
        if day == today:
            closes = opens = min(opens, start - 1.0)
        day_bookings = bookings_per_s * Decimal(busy)
        for rep, weight in zip(reps, weights, strict=True):
            amount = day_bookings * Decimal(weight / total * rng.uniform(*DAY_NOISE))
            when = opens + (closes - opens) * rng.uniform(0.1, 0.95)
            if amount >= Decimal("0.01"):
                orders.append((when, rep, amount.quantize(Decimal("0.01"))))
    orders.sort(key=lambda order: order[0])
    return orders
