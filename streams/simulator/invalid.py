"""Malformed messages, one kind per dead-letter reason, made from a real event of the floor.

Real sources send such things: a truncated export, a batch wrapped in an array, a newer schema,
a French decimal comma, a timestamp without its offset, a device clock a century ahead, an
order from the UK shop in GBP, a payload with an attachment. Each maker returns (logical
topic, bytes) and the ingest must reject the bytes with exactly that reason
(``streams.ingest.validate``).
"""

from __future__ import annotations

import base64
import random
from datetime import datetime
from typing import Any

import orjson

from streams.contracts.events import EVENT_MODELS, TOPIC_OF_TYPE
from streams.ingest.validate import DeadLetterReason

Payload = dict[str, Any]

UNKNOWN_TYPES = ("order.updated", "lead.qualified", "deal.won", "Order.Placed", "account.merged")


def make_invalid(
    reason: DeadLetterReason,
    event: Payload,
    topic: str,
    rng: random.Random,
    *,
    max_bytes: int,
    foreign_currency: str,
) -> tuple[str, bytes]:
    """``event`` (a valid payload on ``topic``) spoiled so that it fails with ``reason``.

    For ``UNSUPPORTED_CURRENCY`` the event must carry a ``currency``.
    """
    payload = dict(event)
    match reason:
        case DeadLetterReason.TOO_LARGE:
            payload["attachment"] = _blob(rng, max_bytes + rng.randint(16, 2048))
        case DeadLetterReason.NOT_JSON:
            return topic, _not_json(payload, rng)
        case DeadLetterReason.NOT_AN_OBJECT:
            if rng.random() < 0.5:
                return topic, orjson.dumps([payload])  # a batch where one event was expected
            return topic, orjson.dumps(orjson.dumps(payload).decode())  # JSON encoded twice
        case DeadLetterReason.UNKNOWN_TYPE:
            if rng.random() < 0.2:
                del payload["type"]
            else:
                payload["type"] = rng.choice(UNKNOWN_TYPES)
        case DeadLetterReason.WRONG_TOPIC:
            topics = sorted(set(TOPIC_OF_TYPE.values()) - {topic})
            return rng.choice(topics), orjson.dumps(payload)
        case DeadLetterReason.MISSING_FIELD:
            model = EVENT_MODELS[payload["type"]]
            required = [
                name
                for name, field in model.model_fields.items()
                if field.is_required() and name != "type" and name in payload
            ]
            del payload[rng.choice(required)]
        case DeadLetterReason.WRONG_TYPE:
            _wrong_type(payload, rng)
        case DeadLetterReason.NAIVE_TIMESTAMP:
            local = datetime.fromisoformat(payload["occurred_at"])
            payload["occurred_at"] = local.replace(tzinfo=None).isoformat(timespec="milliseconds")
        case DeadLetterReason.INVALID_VALUE:
            _invalid_value(payload, rng)
        case DeadLetterReason.UNSUPPORTED_CURRENCY:
            if "currency" not in payload:
                raise ValueError(f"{payload['type']} has no currency to change")
            payload["currency"] = foreign_currency
        case DeadLetterReason.FUTURE_DATED:  # a device whose clock is set a century ahead
            at = datetime.fromisoformat(payload["occurred_at"])
            payload["occurred_at"] = at.replace(year=at.year + 100).isoformat()
        case _:  # pragma: no cover - a new reason needs its maker here
            raise ValueError(f"no maker for {reason}")
    return topic, orjson.dumps(payload)


def _blob(rng: random.Random, size: int) -> str:
    block = base64.b64encode(rng.randbytes(3 * 256)).decode()
    return (block * (size // len(block) + 1))[:size]


def _not_json(payload: Payload, rng: random.Random) -> bytes:
    raw = orjson.dumps(payload)
    match rng.randrange(3):
        case 0:  # truncated in transit: a strict prefix of an object is never JSON
            return raw[: rng.randint(len(raw) // 3, len(raw) - 2)]
        case 1:  # a CSV line from an export job
            return ";".join(str(value) for value in payload.values()).encode()
        case _:  # a Python dict printed instead of serialized
            return repr(payload).encode()


def _wrong_type(payload: Payload, rng: random.Random) -> None:
    if "amount" in payload and payload["amount"] is not None and rng.random() < 0.6:
        units, _, cents = str(payload["amount"]).partition(".")
        payload["amount"] = f"{int(units):,}".replace(",", " ") + f",{cents or '00'}"
    elif "duration_s" in payload:
        minutes, seconds = divmod(int(payload["duration_s"]), 60)
        payload["duration_s"] = f"{minutes}m{seconds:02d}s"
    else:
        payload["event_id"] = rng.randint(10_000, 99_999_999)  # a numeric id from a database


def _invalid_value(payload: Payload, rng: random.Random) -> None:
    if "score" in payload:
        payload["score"] = rng.choice((11, 12, -1))
    elif "amount" in payload and payload["amount"] is not None and rng.random() < 0.5:
        payload["amount"] = f"-{payload['amount']}"
    elif "channel" in payload and payload["channel"] is not None and rng.random() < 0.5:
        payload["channel"] = rng.choice(("tv", "radio", "billboard"))
    else:
        payload["schema_version"] = 2  # a producer already on a newer schema
