"""Event contracts (first slice: the envelope and ``order.placed``).

Strict where it matters for the numbers: timezone-aware event times, Decimal money, an ISO
currency code. Unknown extra fields are ignored, so producers can add fields first.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

Id = Annotated[str, Field(min_length=1, max_length=200)]


class InvalidEvent(ValueError):
    """An input message that cannot be counted; ``reason`` is machine-readable."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Envelope(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Id
    type: str
    occurred_at: AwareDatetime
    source: Id
    schema_version: int = Field(default=1, ge=1)


class OrderPlaced(Envelope):
    """A won deal: ``order.placed`` on ``sales.orders``."""

    type: Literal["order.placed"]
    order_id: Id
    account_id: Id
    rep_id: Id
    amount: Decimal = Field(ge=0, max_digits=18, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


def decode_order(raw: bytes, currency: str) -> OrderPlaced:
    """Parse and validate one ``sales.orders`` message, or raise InvalidEvent."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("not_json", str(exc)) from exc
    if not isinstance(payload, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(payload).__name__}")
    if payload.get("type") != "order.placed":
        raise InvalidEvent("unknown_type", f"unexpected event type {payload.get('type')!r}")
    try:
        order = OrderPlaced.model_validate(payload)
    except ValidationError as exc:
        raise InvalidEvent("invalid_fields", _summary(exc)) from exc
    if order.currency != currency:
        raise InvalidEvent(
            "unsupported_currency",
            f"amount in {order.currency}, reporting currency is {currency} and no rate is set",
        )
    return order


def _summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
    )
