"""streams.contracts.events, as read by streams.ingest.validate: one ``order.placed`` message.

(``streams/events.py`` and its ``decode_order`` became ``streams.contracts.events`` plus
``streams.ingest.validate``; the single ``invalid_fields`` reason is now split into
``missing_field`` / ``naive_timestamp`` / ``wrong_type`` / ``invalid_value``.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from streams.contracts.events import EVENT_MODELS, TOPIC_OF_TYPE, OrderPlaced
from streams.ingest.validate import DeadLetterReason as R
from streams.ingest.validate import InvalidEvent, Limits, validate

TOPIC = "sales.orders"
LIMITS = Limits(max_bytes=65_536, currency="EUR", rates={})
DROP = object()


def order(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "evt-1",
        "type": "order.placed",
        "occurred_at": "2026-10-25T02:30:00+02:00",
        "source": "webshop",
        "order_id": "ord-1",
        "account_id": "acc-1",
        "rep_id": "rep-1",
        "amount": "1999.99",
        "currency": "EUR",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not DROP}


def rejected(raw: bytes) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as failure:
        validate(raw, TOPIC, LIMITS)
    return failure.value


@pytest.mark.parametrize(
    ("occurred_at", "instant"),
    [
        ("2026-10-25T02:30:00+02:00", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("2026-10-25T02:30:00+01:00", datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
        ("2026-10-24T22:30:00Z", datetime(2026, 10, 24, 22, 30, tzinfo=UTC)),
        ("2026-10-24T17:30:00-05:00", datetime(2026, 10, 24, 22, 30, tzinfo=UTC)),
    ],
)
def test_valid_order_keeps_the_instant_and_its_offset(occurred_at: str, instant: datetime) -> None:
    valid = validate(orjson.dumps(order(occurred_at=occurred_at)), TOPIC, LIMITS)
    event = valid.event
    assert isinstance(event, OrderPlaced)
    assert event.occurred_at == instant
    assert event.occurred_at.utcoffset() == datetime.fromisoformat(occurred_at).utcoffset()
    assert (event.event_id, event.order_id, event.account_id, event.rep_id) == (
        "evt-1",
        "ord-1",
        "acc-1",
        "rep-1",
    )
    assert event.amount == Decimal("1999.99")
    assert isinstance(event.amount, Decimal)
    assert event.currency == "EUR"
    assert valid.unknown_fields == ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", R.NOT_JSON),
        (b'{"type": "order.placed",', R.NOT_JSON),
        (b"", R.NOT_JSON),
        (b"\xff\xfe", R.NOT_JSON),
        (orjson.dumps([order()]), R.NOT_AN_OBJECT),
        (b"[]", R.NOT_AN_OBJECT),
        (b"42", R.NOT_AN_OBJECT),
        (b"null", R.NOT_AN_OBJECT),
        (b'"order.placed"', R.NOT_AN_OBJECT),
        (orjson.dumps(order(type="order.won")), R.UNKNOWN_TYPE),
        (orjson.dumps(order(type="ORDER.PLACED")), R.UNKNOWN_TYPE),
        (orjson.dumps(order(type=DROP)), R.UNKNOWN_TYPE),
        (orjson.dumps(order(type=["order.placed"])), R.UNKNOWN_TYPE),
    ],
)
def test_rejects_what_is_not_an_order(raw: bytes, reason: R) -> None:
    assert rejected(raw).reason == reason


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        *[({name: DROP}, R.MISSING_FIELD, name) for name in
          ("event_id", "occurred_at", "source", "order_id", "account_id", "rep_id", "amount",
           "currency")],
        ({"occurred_at": "2026-10-25T02:30:00"}, R.NAIVE_TIMESTAMP, "occurred_at"),
        ({"occurred_at": "2026-10-25"}, R.NAIVE_TIMESTAMP, "occurred_at"),
        ({"occurred_at": "yesterday"}, R.WRONG_TYPE, "occurred_at"),
        ({"amount": "-0.01"}, R.INVALID_VALUE, "amount"),
        ({"amount": -5}, R.INVALID_VALUE, "amount"),
        ({"amount": "10.001"}, R.INVALID_VALUE, "amount"),
        ({"amount": 0.1 + 0.2}, R.INVALID_VALUE, "amount"),  # 0.30000000000000004
        ({"amount": "NaN"}, R.INVALID_VALUE, "amount"),
        ({"amount": "Infinity"}, R.INVALID_VALUE, "amount"),
        ({"amount": "ten"}, R.WRONG_TYPE, "amount"),
        ({"currency": "eur"}, R.INVALID_VALUE, "currency"),
        ({"currency": "EURO"}, R.INVALID_VALUE, "currency"),
        ({"currency": "ABC"}, R.INVALID_VALUE, "currency"),
        ({"rep_id": ""}, R.INVALID_VALUE, "rep_id"),
        ({"rep_id": " rep-1"}, R.INVALID_VALUE, "rep_id"),
        ({"rep_id": 7}, R.WRONG_TYPE, "rep_id"),
    ],
)  # fmt: skip
def test_rejects_a_bad_field_and_names_it(changes: dict[str, Any], reason: R, field: str) -> None:
    failure = rejected(orjson.dumps(order(**changes)))
    assert failure.reason == reason
    assert failure.detail.startswith(f"{field}:")
    assert str(failure).startswith(f"{reason}: ")


@pytest.mark.parametrize("currency", ["USD", "GBP", "CHF"])
def test_rejects_another_currency_than_the_reporting_one(currency: str) -> None:
    failure = rejected(orjson.dumps(order(currency=currency)))
    assert failure.reason == R.UNSUPPORTED_CURRENCY
    assert currency in failure.detail
    assert "EUR" in failure.detail


def test_the_reporting_currency_is_a_setting_not_a_constant() -> None:
    usd = Limits(max_bytes=65_536, currency="USD", rates={})
    valid = validate(orjson.dumps(order(currency="USD")), TOPIC, usd)
    assert valid.event.currency == "USD"  # type: ignore[attr-defined]
    with pytest.raises(InvalidEvent) as failure:
        validate(orjson.dumps(order()), TOPIC, usd)
    assert failure.value.reason == R.UNSUPPORTED_CURRENCY


@pytest.mark.parametrize(
    "extra",
    [
        {"coupon": "SPRING"},
        {"coupon": None, "nested": {"a": [1, 2]}, "zz": 1.5},
        {"Amount": "-999"},  # keys are case-sensitive: this is not `amount`
    ],
)
def test_unknown_extra_fields_are_ignored(extra: dict[str, Any]) -> None:
    plain = validate(orjson.dumps(order()), TOPIC, LIMITS)
    valid = validate(orjson.dumps(order(**extra)), TOPIC, LIMITS)
    assert valid.event == plain.event
    assert set(valid.event.model_dump()) == set(plain.event.model_dump())
    assert valid.unknown_fields == tuple(sorted(extra))


def test_every_event_type_has_a_model_and_a_topic() -> None:
    assert set(EVENT_MODELS) == set(TOPIC_OF_TYPE)
    assert TOPIC_OF_TYPE["order.placed"] == TOPIC
    for event_type, model in EVENT_MODELS.items():
        assert model.model_fields["type"].annotation.__args__[0] == event_type  # type: ignore[union-attr]


def test_order_placed_accepts_offset_times_directly() -> None:
    event = OrderPlaced.model_validate(order(occurred_at="2026-03-29T03:30:00+02:00"))
    assert event.occurred_at.utcoffset() == timedelta(hours=2)
    assert event.occurred_at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
