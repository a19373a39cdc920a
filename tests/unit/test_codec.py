"""streams.codec: pydantic models through Faust's codec registry and back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from faust.serializers import codecs

from streams.codec import register_codec
from streams.contracts.enriched import Dimensions, EnrichedEvent
from streams.contracts.events import OrderPlaced


def test_enriched_event_round_trip_keeps_decimals_and_times_exact() -> None:
    name = register_codec()
    event = OrderPlaced(
        event_id="e", type="order.placed", source="t", order_id="o", account_id="a",
        rep_id="r", amount=Decimal("1234.05"), currency="EUR",
        occurred_at=datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    )  # fmt: skip
    original = EnrichedEvent(event=event, dims=Dimensions(rep="r", team="North", misses=("rep",)))
    raw = codecs.dumps(name, original)
    assert isinstance(raw, bytes)
    back = EnrichedEvent.model_validate(codecs.loads(name, raw))
    assert back.event == original.event
    assert back.event.amount == Decimal("1234.05")  # no float on the way
    assert back.dims == original.dims.model_copy(update={"misses": ()})
    assert b"misses" not in raw  # misses are counted at ingest, not shipped downstream
