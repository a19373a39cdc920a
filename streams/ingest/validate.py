"""Turn one raw input message into a valid event, or say exactly why not.

Pure: no Kafka, no Faust. The reasons are machine-readable (``DeadLetterReason``) and the
detail names the field, so whoever reads the dead-letter topic knows what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

import orjson
from pydantic import ValidationError

from streams.contracts.events import EVENT_MODELS, TOPIC_OF_TYPE, Envelope


class DeadLetterReason(StrEnum):
    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_TOPIC = "wrong_topic"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NAIVE_TIMESTAMP = "naive_timestamp"
    INVALID_VALUE = "invalid_value"
    UNSUPPORTED_CURRENCY = "unsupported_currency"
    FUTURE_DATED = "future_dated"


class InvalidEvent(ValueError):
    """A message that cannot be counted."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Valid:
    """A validated event, in the reporting currency, and the unknown fields it carried."""

    event: Envelope
    unknown_fields: tuple[str, ...]


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    currency: str
    rates: dict[str, Decimal]  # other currency -> reporting currency units per unit
    # how far ahead of the clock an event may be dated (None: not checked, e.g. a replay's
    # dry run, which has no clock to judge by)
    future_s: float | None = None


# Pydantic error types that mean "this field has the wrong JSON type".
_TYPE_ERRORS = {
    "string_type", "int_type", "int_parsing", "int_from_float", "float_type", "bool_type",
    "bool_parsing", "decimal_type", "decimal_parsing", "datetime_type", "datetime_parsing",
    "datetime_from_date_parsing", "date_type", "date_parsing", "date_from_datetime_parsing",
    "list_type", "dict_type", "model_type", "model_attributes_type", "none_required",
}  # fmt: skip


def validate(raw: bytes, topic: str, limits: Limits, now_s: float | None = None) -> Valid:
    """Validate a message read from logical ``topic``; raise InvalidEvent if it can't count.

    ``now_s`` is the reader's clock (Unix seconds): an event dated more than
    ``limits.future_s`` after it is refused, so it can neither move a watermark nor open a
    window that does not exist yet."""
    if len(raw) > limits.max_bytes:
        raise InvalidEvent(
            DeadLetterReason.TOO_LARGE,
            f"{len(raw)} bytes, the limit is {limits.max_bytes} (SALESPULSE_MAX_EVENT_BYTES)",
        )
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(DeadLetterReason.NOT_JSON, str(exc)) from exc
    if not isinstance(payload, dict):
        raise InvalidEvent(
            DeadLetterReason.NOT_AN_OBJECT, f"expected a JSON object, got {type(payload).__name__}"
        )
    event_type = payload.get("type")
    model = EVENT_MODELS.get(event_type) if isinstance(event_type, str) else None
    if model is None or not isinstance(event_type, str):
        raise InvalidEvent(
            DeadLetterReason.UNKNOWN_TYPE,
            f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_MODELS))}",
        )
    expected_topic = TOPIC_OF_TYPE[event_type]
    if topic != expected_topic:
        raise InvalidEvent(
            DeadLetterReason.WRONG_TOPIC, f"{event_type} belongs on {expected_topic}, not {topic}"
        )
    try:
        event = model.model_validate(payload)
    except ValidationError as exc:
        raise _invalid(exc) from exc
    _within_calendar(event.occurred_at)
    if now_s is not None and limits.future_s is not None:
        _not_ahead(event.occurred_at.timestamp(), now_s, limits.future_s)
    unknown = tuple(sorted(set(payload) - set(model.model_fields)))
    return Valid(to_reporting_currency(event, limits), unknown)


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _within_calendar(at: datetime) -> None:
    """A date the windows can hold: ``0001-01-01T00:00:00+14:00`` is valid RFC 3339, but its
    day starts in year 0, which Python's calendar does not have (the entity stage raised)."""
    if not EARLIEST <= at < LATEST:
        raise InvalidEvent(
            DeadLetterReason.INVALID_VALUE,
            f"occurred_at {at.isoformat()} is outside {EARLIEST.year}-{LATEST.year - 1}, the "
            "years the KPI windows cover: fix the event's date, then send it again",
        )


def _not_ahead(at_s: float, now_s: float, tolerance_s: float) -> None:
    ahead = at_s - now_s
    if ahead > tolerance_s:
        when = datetime.fromtimestamp(at_s, UTC).isoformat()
        raise InvalidEvent(
            DeadLetterReason.FUTURE_DATED,
            f"occurred_at {when} is {_duration(ahead)} ahead of this worker's clock; the "
            f"tolerance is {tolerance_s:g} s (SALESPULSE_FUTURE_TOLERANCE_S): fix the "
            "producer's clock or the event's date, then send it again",
        )


def _duration(seconds: float) -> str:
    for unit, size in (("years", 31_557_600), ("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _invalid(exc: ValidationError) -> InvalidEvent:
    errors = exc.errors(include_url=False)
    kinds = {err["type"] for err in errors}
    if "missing" in kinds:
        reason = DeadLetterReason.MISSING_FIELD
    elif "timezone_aware" in kinds:
        reason = DeadLetterReason.NAIVE_TIMESTAMP
    elif kinds & _TYPE_ERRORS:
        reason = DeadLetterReason.WRONG_TYPE
    else:
        reason = DeadLetterReason.INVALID_VALUE
    detail = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(event)'}: {err['msg']}" for err in errors
    )
    return InvalidEvent(reason, detail[:2000])


_CENT = Decimal("0.01")
_UNIT = Decimal("0.0001")
_MONEY_FIELDS = ("amount",)


def to_reporting_currency(event: Envelope, limits: Limits) -> Envelope:
    """The event with its amounts in the reporting currency, or InvalidEvent if no rate."""
    currency = vars(event).get("currency")  # not getattr: see ``enrich.dimensions``
    if currency is None or currency == limits.currency:
        return event
    rate = limits.rates.get(currency)
    if rate is None:
        raise InvalidEvent(
            DeadLetterReason.UNSUPPORTED_CURRENCY,
            f"amount in {currency}, the reporting currency is {limits.currency} and no rate is "
            f"set for {currency} (SALESPULSE_FX_RATES)",
        )
    changes: dict[str, Any] = {"currency": limits.currency}
    for name in _MONEY_FIELDS:
        if (value := getattr(event, name, None)) is not None:
            changes[name] = (value * rate).quantize(_CENT, rounding=ROUND_HALF_EVEN)
    if lines := getattr(event, "lines", None):
        changes["lines"] = [
            line.model_copy(
                update={
                    "unit_price": (line.unit_price * rate).quantize(_UNIT, ROUND_HALF_EVEN),
                    "unit_cost": None
                    if line.unit_cost is None
                    else (line.unit_cost * rate).quantize(_UNIT, ROUND_HALF_EVEN),
                }
            )
            for line in lines
        ]
    return event.model_copy(update=changes)
