"""The worker's freed C heap given back to the system (glibc's ``malloc_trim``).

glibc's malloc returns freed memory to the system only from the top of its heap. The worker
frees a lot in the middle of it: a flush's messages and table writes, Kafka fetches, RocksDB
blocks; long-lived objects (the tables' caches, the indexes) sit between them, so the heap
only grows. A memory probe of the worker over the bench's 200,000-event backlog (glibc's
``mallinfo2`` every 30 s) found 181 MB of its 308 MB malloc heap free and kept, and still
growing: most of the peak RSS above the 20,000-event run. ``malloc_trim(0)`` hands every free
page back (``madvise``) whatever its place in the heap; what stays in use is untouched.

It runs every ``TRIM_EVERY_S`` in a thread (ctypes releases the GIL for the call): over a
fragmented heap of ~500 MB it takes 30-80 ms. Not glibc (musl, macOS): nothing to do.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

TRIM_EVERY_S = 10.0


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class HeapTrim:
    """Trims the C heap when asked; ``trims`` and ``seconds`` say how often and how long."""

    def __init__(self) -> None:
        self.call = _malloc_trim()
        self.trims = 0
        self.seconds = 0.0

    @property
    def available(self) -> bool:
        return self.call is not None

    def trim(self) -> bool:
        """Give the free pages back; whether any was (False without glibc)."""
        if self.call is None:
            return False
        started = time.perf_counter()
        released = bool(self.call(0))
        self.trims += 1
        self.seconds += time.perf_counter() - started
        return released

    async def trim_in_thread(self) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, self.trim)
