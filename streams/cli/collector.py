"""How often CPython's cyclic garbage collector runs in the worker (``salespulse worker``).

The worker holds hundreds of thousands of small containers (the decoded table values its
caches keep, the indexes) and makes millions more that die young (a message's items,
deltas, staged sums), almost none in reference cycles. With CPython's default thresholds,
(700, 10, 10), a collection ran every 700 new containers, and each tenth of those every
7,000 and each hundredth a full one, over every live object: in the in-memory harness, 9.3 s
of a 20,000-event run's 31 s of CPU were the collector's (``gc.callbacks``), 8,228
collections. Every 50,000 containers instead: 2.9 s, 70 collections, the run 22-26 s.
Cyclic garbage (tracebacks, futures) waits longer to be collected; reference counting frees
everything else at once, as before.

``gc.freeze`` moves what exists once the app is built (modules, faust's and pydantic's
objects: ~150,000) out of every later collection.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def tune() -> None:
    """Collect less often; leave the objects that live for the whole process out of it."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    gc.freeze()
