"""The ingest's outbox: one message per entity partition, in routing order, size-capped."""

from __future__ import annotations

import pytest

from streams.engine.outbox import SLOTS, Outbox, position
from streams.engine.routing import partition_of


def test_items_go_out_grouped_by_partition_in_routing_order_and_capped() -> None:
    outbox = Outbox(per_message=2)
    for n, partition in enumerate([0, 1, 0, 0, 1]):
        outbox.add(partition, {"n": n})
    assert outbox.count == 5
    assert outbox.drain() == [(0, [{"n": 0}, {"n": 2}]), (0, [{"n": 3}]), (1, [{"n": 1}, {"n": 4}])]
    assert outbox.drain() == []
    assert outbox.count == 0


def test_positions_of_items_never_collide_across_messages() -> None:
    assert position(3, SLOTS - 1) < position(4, 0)
    assert position(0, 0) == 0
    with pytest.raises(ValueError, match="per_message"):
        Outbox(per_message=SLOTS)


def test_an_entity_has_one_partition_on_every_worker() -> None:
    assert partition_of("account", "acct-1", 4) == partition_of("account", "acct-1", 4)
    spread = {partition_of("event", f"e-{n}", 4) for n in range(200)}
    assert spread == {0, 1, 2, 3}
