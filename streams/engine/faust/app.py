"""faust's ``App``, with a producer buffer fit for this engine's flushes (Faust glue).

A table write hands its changelog record to faust's producer buffer; a task hands them one
by one to aiokafka. Two of faust's waits on that buffer cost more than the sends:

- before each message it delivers to an agent, faust waits for the buffer to drop under
  ``max_messages`` (100), with two log lines ("producer buffer full size ...", "producer
  flush took ...") per incoming message while a flush's records drain;
- ``flush()`` (every stage's flush calls it, through ``streams.engine.delivery``) waits for
  each message the task hands on, one ``asyncio.wait_for`` each: 8 % of the worker's CPU
  in a 20,000-event backlog (py-spy), as much as the entity stage's flush.

The stages write their tables only in their flushes, at most ``FLUSH_CELLS`` and
``FLUSH_ITEMS`` keys each, and each flush waits for all of its records before the next: the
buffer is bounded by that, so the first wait is set out of the way (``BUFFER_MESSAGES``),
and the second polls the buffer's size instead (``DrainingBuffer``). Order is unchanged: the
same task sends every record, first in, first out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.transport.producer import ProducerBuffer

BUFFER_MESSAGES = 200_000
"""Above every flush's changelog records (the stages' flush thresholds are 5,000 to 20,000
keys each): faust's wait for the buffer to ebb stays as a guard, never in the way."""

POLL_S = 0.001
STALLED_S = 0.1
"""``flush`` gives up when the buffer has not moved for this long, as faust's does (a send
stuck on an unreachable broker; ``streams.engine.delivery`` then waits for each record)."""


class DrainingBuffer(ProducerBuffer):
    """faust's producer buffer whose ``flush`` checks its size every millisecond instead of
    waking for every message sent."""

    max_messages = BUFFER_MESSAGES

    async def flush_atmost(self, max_messages: int | None) -> int:
        flushed = 0
        size = self.size
        loop = asyncio.get_running_loop()
        moved_at = loop.time()
        while size and (max_messages is None or flushed < max_messages):
            if self.state != "running":
                raise RuntimeError("Cannot flush: Producer not Running")
            await asyncio.sleep(POLL_S)
            now_size = self.size
            if now_size < size:
                flushed += size - now_size
                moved_at = loop.time()
            elif loop.time() - moved_at >= STALLED_S:
                break
            size = now_size
        return flushed


class SalesApp(faust.App):
    def _new_producer(self) -> Any:
        producer: Any = super()._new_producer()
        buffer = DrainingBuffer(loop=producer.loop, beacon=producer.beacon)
        buffer.app = producer.app
        producer.buffer = buffer
        return producer
