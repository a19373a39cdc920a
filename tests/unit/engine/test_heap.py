"""The worker gives its freed C heap back (streams/engine/heap.py)."""

from __future__ import annotations

import asyncio
import random

import pytest

from streams.engine.heap import HeapTrim


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def test_freed_memory_between_live_objects_goes_back_to_the_system() -> None:
    heap = HeapTrim()
    if not heap.available:
        pytest.skip("not glibc: malloc_trim is glibc's (the worker then trims nothing)")
    rng = random.Random(3)
    kept, freed = [], []
    # Objects past pymalloc's 512 bytes, from malloc; one in five outlives the rest, as a
    # cache entry outlives a flush's messages, so the freed ones are not at the heap's top.
    for n in range(150_000):
        (kept if n % 5 == 0 else freed).append(bytearray(rng.choice((700, 1500, 3000))))
    freed.clear()
    before = rss_mb()
    assert asyncio.run(heap.trim_in_thread())
    after = rss_mb()
    assert before - after > 50, (before, after)
    assert heap.trims == 1
    assert heap.seconds > 0
    assert len(kept) == 30_000
