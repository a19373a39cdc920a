"""JSON bytes for what a worker keeps a while: ``orjson.dumps``, copied to bytes of their size.

orjson writes into a buffer of several KB and shrinks it to the JSON's length when done; with
glibc's allocator the shrunk block stays where the buffer was and the freed tail is too small
for the next buffer, so every result kept while more are made holds a page of memory of its
own, whatever its length: 200,000 table keys of ~35 bytes held 786 MB of RSS instead of 16 MB
(measured 2026-12-06, orjson 3.13, glibc 2.36). A flush keeps its table keys and values
(changelog records, until the stores have them), its ``kpi.updates`` records and its partial
cells until they are sent: at the peak of a CRM replay, memray counted 186 MB of such buffers
(docs/engine.md, "What a flush holds, and memory"). A copy costs ~0.4 us and frees the buffer
whole, for the next one to reuse. Bytes sent and dropped at once need no copy (the worker's
table reads encode their keys with plain orjson: ``streams.engine.faust.tables.store_reader``).
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    """``orjson.dumps(obj)`` in bytes of its own length (see the module's docstring)."""
    return memoryview(orjson.dumps(obj)).tobytes()
