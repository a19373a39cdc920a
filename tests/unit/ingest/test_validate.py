"""streams.ingest.validate: each bad input gets its reason; valid ones are normalised."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from streams.contracts.events import OrderPlaced
from streams.ingest.validate import DeadLetterReason as R
from streams.ingest.validate import InvalidEvent, Limits, validate

LIMITS = Limits(max_bytes=4096, currency="EUR", rates={"USD": Decimal("0.9")})


def order(**changes: Any) -> dict[str, Any]:
    event = {
        "event_id": "e-1",
        "type": "order.placed",
        "occurred_at": "2026-03-29T01:30:00+01:00",
        "source": "crm",
        "order_id": "o-1",
        "account_id": "a-1",
        "rep_id": "r-1",
        "amount": "100.10",
        "currency": "EUR",
        "lines": [{"product_id": "p-1", "quantity": 2, "unit_price": "50.05", "unit_cost": "20"}],
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not ...}


def reason_of(raw: bytes, topic: str = "sales.orders") -> tuple[R, str]:
    with pytest.raises(InvalidEvent) as failure:
        validate(raw, topic, LIMITS)
    return failure.value.reason, failure.value.detail


@pytest.mark.parametrize(
    ("raw", "topic", "reason", "in_detail"),
    [
        (b"x" * 5000, "sales.orders", R.TOO_LARGE, "4096"),
        (b"{oops", "sales.orders", R.NOT_JSON, ""),
        (b'"a string"', "sales.orders", R.NOT_AN_OBJECT, "str"),
        (orjson.dumps(order(type="order.won")), "sales.orders", R.UNKNOWN_TYPE, "order.won"),
        (orjson.dumps(order(type=...)), "sales.orders", R.UNKNOWN_TYPE, "None"),
        (orjson.dumps(order()), "sales.calls", R.WRONG_TOPIC, "sales.orders"),
        (orjson.dumps(order(rep_id=...)), "sales.orders", R.MISSING_FIELD, "rep_id"),
        (orjson.dumps(order(amount={"v": 1})), "sales.orders", R.WRONG_TYPE, "amount"),
        (orjson.dumps(order(occurred_at="2026-03-29T01:30:00")), "sales.orders",
         R.NAIVE_TIMESTAMP, "occurred_at"),
        (orjson.dumps(order(amount="-1")), "sales.orders", R.INVALID_VALUE, "amount"),
        (orjson.dumps(order(amount="1.001")), "sales.orders", R.INVALID_VALUE, "amount"),
        (orjson.dumps(order(currency="eur")), "sales.orders", R.INVALID_VALUE, "currency"),
        (orjson.dumps(order(currency="XYZ")), "sales.orders", R.INVALID_VALUE, "ISO 4217"),
        (orjson.dumps(order(currency="GBP")), "sales.orders", R.UNSUPPORTED_CURRENCY,
         "SALESPULSE_FX_RATES"),
        (orjson.dumps(order(lines=[{"product_id": "p", "quantity": 0, "unit_price": "1"}])),
         "sales.orders", R.INVALID_VALUE, "lines.0.quantity"),
        (orjson.dumps(order(schema_version=99)), "sales.orders", R.INVALID_VALUE,
         "schema_version"),
    ],
)  # fmt: skip
def test_bad_input_reason(raw: bytes, topic: str, reason: R, in_detail: str) -> None:
    got, detail = reason_of(raw, topic)
    assert got == reason
    assert in_detail in detail


def test_valid_order_keeps_its_values_and_reports_unknown_fields() -> None:
    valid = validate(orjson.dumps(order(coupon="X", beta=1)), "sales.orders", LIMITS)
    assert isinstance(valid.event, OrderPlaced)
    assert valid.event.amount == Decimal("100.10")
    assert valid.event.occurred_at.utcoffset() is not None
    assert valid.unknown_fields == ("beta", "coupon")


def test_foreign_currency_is_converted_to_the_cent() -> None:
    raw = orjson.dumps(order(currency="USD", amount="100.15"))
    event = validate(raw, "sales.orders", LIMITS).event
    assert isinstance(event, OrderPlaced)
    assert event.currency == "EUR"
    assert event.amount == Decimal("90.14")  # 90.135 rounded half to even
    assert event.lines[0].unit_price == Decimal("45.0450")
    assert event.lines[0].unit_cost == Decimal("18.0000")


@pytest.mark.parametrize(
    ("topic", "event"),
    [
        ("sales.calls", {"type": "call.logged", "call_id": "c", "rep_id": "r",
                         "direction": "outbound", "outcome": "connected", "duration_s": 30}),
        ("sales.emails", {"type": "email.sent", "email_id": "m", "rep_id": "r"}),
    ],
)  # fmt: skip
def test_activity_needs_a_lead_or_an_account(topic: str, event: dict[str, Any]) -> None:
    envelope = {"event_id": "e", "occurred_at": "2026-01-05T10:00:00Z", "source": "t"}
    reason, detail = reason_of(orjson.dumps(envelope | event), topic)
    assert reason == R.INVALID_VALUE
    assert "lead_id or account_id" in detail
    valid = validate(orjson.dumps(envelope | event | {"lead_id": "l"}), topic, LIMITS)
    assert valid.event.type == event["type"]


# --- future-dated events -------------------------------------------------------------------

FUTURE = Limits(max_bytes=4096, currency="EUR", rates={}, future_s=300)
AT = 1_774_744_200.0  # 2026-03-29T01:30:00+01:00, the order's occurred_at


@pytest.mark.parametrize("ahead_s", [0.0, -86_400.0, 299.0, 300.0])
def test_an_event_within_the_tolerance_is_valid(ahead_s: float) -> None:
    raw = orjson.dumps(order())
    assert validate(raw, "sales.orders", FUTURE, AT - ahead_s).event.event_id == "e-1"


@pytest.mark.parametrize(
    ("occurred_at", "says"),
    [("2099-01-01T00:00:00+00:00", "73 years"), ("2026-03-30T01:30:00+01:00", "24 hours"),
     ("2026-03-29T01:35:01+01:00", "5 minutes")],
)  # fmt: skip
def test_an_event_dated_past_the_tolerance_is_future_dated(occurred_at: str, says: str) -> None:
    raw = orjson.dumps(order(occurred_at=occurred_at))
    with pytest.raises(InvalidEvent) as failure:
        validate(raw, "sales.orders", FUTURE, AT)
    assert failure.value.reason is R.FUTURE_DATED
    assert says in failure.value.detail
    assert "SALESPULSE_FUTURE_TOLERANCE_S" in failure.value.detail


def test_without_a_clock_or_a_tolerance_the_date_is_not_judged() -> None:
    raw = orjson.dumps(order(occurred_at="2099-01-01T00:00:00+00:00"))
    assert validate(raw, "sales.orders", FUTURE).event.event_id == "e-1"
    assert validate(raw, "sales.orders", LIMITS, AT).event.event_id == "e-1"


@pytest.mark.parametrize(
    "occurred_at",
    ["0001-01-01T00:00:00+14:00", "1899-12-31T23:59:59+00:00", "9999-12-31T23:00:00-10:00"],
)
def test_a_date_outside_the_windows_calendar_is_an_invalid_value(occurred_at: str) -> None:
    """Year 1 at +14:00 starts its day in year 0: the entity stage raised on it."""
    got, detail = reason_of(orjson.dumps(order(occurred_at=occurred_at)))
    assert got is R.INVALID_VALUE
    assert "fix the event's date" in detail


def test_the_calendar_bounds_themselves_are_valid() -> None:
    for occurred_at in ("1900-01-01T00:00:00+00:00", "9998-12-31T23:59:59+00:00"):
        raw = orjson.dumps(order(occurred_at=occurred_at))
        assert validate(raw, "sales.orders", LIMITS).event.event_id == "e-1"
