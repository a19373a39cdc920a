"""streams.kpi.sketch: quantiles within the stated relative error; merging is exact."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.kpi.sketch import RELATIVE_ACCURACY, add, count, merge, quantile

durations = st.floats(min_value=0, max_value=3.2e7, allow_nan=False, allow_infinity=False)


def build(values: list[float]) -> dict[str, int]:
    sketch: dict[str, int] = {}
    for value in values:
        sketch = add(sketch, value)
    return sketch


def exact(values: list[float], q: float) -> float:
    return sorted(values)[math.floor(q * (len(values) - 1))]


@settings(max_examples=300)
@given(st.lists(durations, min_size=1, max_size=300), st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]))
def test_quantile_within_relative_accuracy(values: list[float], q: float) -> None:
    estimate = quantile(build(values), q)
    truth = exact(values, q)
    assert estimate is not None
    assert abs(estimate - truth) <= RELATIVE_ACCURACY * truth + 1e-9


@given(st.lists(durations, max_size=100), st.lists(durations, max_size=100))
def test_merge_equals_one_sketch_of_all_values(left: list[float], right: list[float]) -> None:
    assert merge([build(left), build(right)]) == build(left + right)
    assert count(merge([build(left), build(right)])) == len(left) + len(right)


def test_empty_zero_and_bad_values() -> None:
    assert quantile({}, 0.9) is None
    assert quantile(build([0, 0, 0]), 0.9) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        add({}, -1.0)
    with pytest.raises(ValueError, match="non-negative"):
        add({}, math.nan)
    with pytest.raises(ValueError, match="between 0 and 1"):
        quantile(build([1.0]), 1.5)


def test_p90_of_response_times() -> None:
    # 100 responses: 1..100 minutes; the lower-rank p90 is the 90th smallest value (90 min).
    values = [60.0 * minute for minute in range(1, 101)]
    assert quantile(build(values), 0.9) == pytest.approx(5400, rel=RELATIVE_ACCURACY)
    assert len(build(values)) < 100  # fewer buckets than values
