"""The worker's garbage collector runs far less often (streams/cli/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams.cli import collector


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def collections_while_working() -> int:
    """Collections while a message's worth of short-lived containers comes and goes 200 times
    beside a cache of live ones (what the stages do)."""
    count = 0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal count
        count += phase == "start"

    cache = [{"c": {"calls": n}, "m": n} for n in range(50_000)]
    gc.callbacks.append(on_gc)
    try:
        for _ in range(200):
            staged = [{"cell": str(n), "c": {"calls": 1}} for n in range(1_000)]
            del staged
    finally:
        gc.callbacks.remove(on_gc)
    assert len(cache) == 50_000
    return count


@pytest.mark.usefixtures("restored")
def test_the_worker_collects_a_hundredth_as_often_and_leaves_its_start_out() -> None:
    gc.set_threshold(700, 10, 10)  # CPython's default
    default = collections_while_working()
    collector.tune()
    assert gc.get_freeze_count() > 0  # what existed is out of every collection
    tuned = collections_while_working()
    assert default >= 300, default
    assert tuned * 20 <= default, (tuned, default)
