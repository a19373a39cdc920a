"""What the ingest has routed and not sent yet: items grouped by destination partition (pure).

The ingest sends ``internal.entities`` one message per partition per flush, holding many
items (at most ``per_message``, to stay well under Kafka's message size), not one message
per event per role: the per-message cost of Kafka and faust is paid once per batch.

A batch message is ``{"items": [item, ...]}``; its item ``i`` at offset ``o`` is applied at
position ``o * SLOTS + i`` (``position``): the entity stage's exactly-once marks compare
positions where they compared offsets, so items of one message are told apart and a
redelivered message finds its items at the same positions.
"""

from __future__ import annotations

from typing import Any

SLOTS = 1 << 16
"""Positions per message offset: more than any batch message holds."""

PER_MESSAGE = 250
"""Items per batch message: ~250 KB, well under Kafka's default 1 MB message limit."""


def position(offset: int, index: int) -> int:
    """Where item ``index`` of the message at ``offset`` is applied (exactly-once marks)."""
    return offset * SLOTS + index


class Outbox:
    """Routed items by partition, in routing order, until ``drain``."""

    def __init__(self, per_message: int = PER_MESSAGE) -> None:
        if not 0 < per_message < SLOTS:
            raise ValueError(f"per_message must be between 1 and {SLOTS - 1}, not {per_message}")
        self.per_message = per_message
        self.items: dict[int, list[dict[str, Any]]] = {}
        self.count = 0

    def add(self, partition: int, item: dict[str, Any]) -> None:
        self.items.setdefault(partition, []).append(item)
        self.count += 1

    def drain(self) -> list[tuple[int, list[dict[str, Any]]]]:
        """``[(partition, items of one message)...]``, each partition's items in order; the
        outbox is empty afterwards."""
        items, self.items, self.count = self.items, {}, 0
        return [
            (partition, routed[start : start + self.per_message])
            for partition, routed in items.items()
            for start in range(0, len(routed), self.per_message)
        ]


CELL_ENTRIES = 20_000
"""Map entries (reps of a shard, sketch buckets, open leads by minute) per ``internal.cells``
message at most: ~15 bytes each, ~300 KB, well under Kafka's 1 MB whatever the reps."""


def cell_chunks(cells: list[list[Any]], limit: int = CELL_ENTRIES) -> list[list[list[Any]]]:
    """``[[cell key, mark, components]...]`` of one ``internal.cells`` key in messages of at
    most ``limit`` map entries (a cell is never split: a rep shard holds far fewer)."""
    chunks: list[list[list[Any]]] = [[]]
    weight = 0
    for entry in cells:
        size = sum(len(value) for value in entry[2].values() if isinstance(value, dict))
        if chunks[-1] and weight + size > limit:
            chunks.append([])
            weight = 0
        chunks[-1].append(entry)
        weight += size
    return chunks
