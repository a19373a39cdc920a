"""Fetched input messages that never reached the end of the ingest's route (pure).

faust-streaming 0.15 drops what is in flight to (or inside) an agent when a rebalance
suspends the flow, then seeks to the committed offset; a partition with none committed yet
stays where the fetcher was, past the dropped messages, and they are never read again
(docs/engine.md, known problems). Such a partition is sought back to the next offset to
route; redelivery changes nothing twice.
"""

from __future__ import annotations


def next_to_route(committed: int | None, routed: int | None, start: int) -> int:
    """The next offset of the partition to route: after the last one routed here, or the
    group's committed offset if another worker got further since; else the partition's
    ``start`` (its earliest offset)."""
    known = [x for x in (committed, None if routed is None else routed + 1) if x is not None]
    return max(known) if known else start


def seek_back_to(
    position: int | None, committed: int | None, routed: int | None, start: int
) -> int | None:
    """Where to seek a partition whose consumer fetch ``position`` is past the next offset to
    route (messages fetched and lost), or None when nothing was lost (still to be fetched)."""
    expected = next_to_route(committed, routed, start)
    if position is None or position <= expected:
        return None
    return expected
