"""Result records, the result mapping, and the accumulator that builds them per window kind."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from tests.reference.catalog import COUNT, DIMENSIONS, P90, SHAPES, SUM
from tests.reference.dims import Pair

Key = tuple[str, str, int, str, str]
"""(kpi, kind, window_start_epoch_seconds, dimension, key)."""

Number = Decimal | float | int


@dataclass(frozen=True)
class Result:
    value: Decimal | float | None
    numerator: Decimal | float | int | None
    denominator: Decimal | float | int | None


class Results(dict[Key, Result]):
    """KPI records by key, plus what merging minute buckets needs beyond them.

    ``samples``: the raw values behind every ``_p90`` record; ``reps``: the distinct reps
    behind every ``revenue_per_rep`` denominator.
    """

    def __init__(self) -> None:
        super().__init__()
        self.samples: dict[Key, tuple[float, ...]] = {}
        self.reps: dict[Key, frozenset[str]] = {}


def divide(num: Number | None, den: Number | None) -> Decimal | float | None:
    """num / den; None when either is unknown or den is 0. Floats stay floats, money Decimal."""
    if num is None or den is None or den == 0:
        return None
    if isinstance(num, float) or isinstance(den, float):
        return float(num) / float(den)
    if isinstance(num, Decimal) or isinstance(den, Decimal):
        return Decimal(num) / Decimal(den)
    return num / den


def plus(a: Number, b: Number) -> Number:
    """a + b, keeping Decimal money exact (a float only meets ints and floats)."""
    if isinstance(a, float) or isinstance(b, float):
        return float(a) + float(b)
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(a) + Decimal(b)
    return a + b


def p90(values: Iterable[float]) -> float:
    ordered = sorted(values)
    return ordered[math.floor(0.9 * (len(ordered) - 1))]


class Accumulator:
    """Numerators, denominators and samples of one window kind, filtered by KPI dimensions."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.num: dict[Key, Number] = {}
        self.den: dict[Key, Number] = {}
        self.samples: dict[Key, list[float]] = {}
        self.reps: dict[Key, set[str]] = {}

    def keys(self, kpi: str, start: int, pairs: Iterable[Pair]) -> list[Key]:
        allowed = DIMENSIONS[kpi]
        return [(kpi, self.kind, start, dim, key) for dim, key in pairs if dim in allowed]

    def add(
        self, kpi: str, start: int, pairs: Iterable[Pair], num: Number, den: Number | None = None
    ) -> None:
        for key in self.keys(kpi, start, pairs):
            self.num[key] = plus(self.num[key], num) if key in self.num else num
            if den is not None:
                self.den[key] = plus(self.den[key], den) if key in self.den else den

    def sample(self, kpi: str, start: int, pairs: Iterable[Pair], value: float) -> None:
        for key in self.keys(kpi, start, pairs):
            self.samples.setdefault(key, []).append(value)

    def rep_seen(self, start: int, pairs: Iterable[Pair], rep_id: str) -> None:
        self.add("revenue_per_rep", start, pairs, Decimal("0.00"), 0)
        for key in self.keys("revenue_per_rep", start, pairs):
            self.reps.setdefault(key, set()).add(rep_id)

    def finish(self, out: Results) -> None:
        for key, num in self.num.items():
            shape = SHAPES[key[0]]
            if shape in (COUNT, SUM):
                out[key] = Result(num, num, None)
                continue
            den: Number = self.den.get(key, 0)
            if key[0] == "revenue_per_rep":
                reps = frozenset(self.reps.get(key, ()))
                out.reps[key] = reps
                den = len(reps)
            out[key] = Result(divide(num, den), num, den)
        for key, values in self.samples.items():
            assert SHAPES[key[0]] == P90
            out[key] = Result(p90(values), None, len(values))
            out.samples[key] = tuple(values)
