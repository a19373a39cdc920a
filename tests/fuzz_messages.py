"""Invalid input messages for the fuzz test, each with the dead-letter reason it must get (pure).

``bad_message(rng, kind, base, max_bytes)`` turns a valid event ``base`` (a dict, as a
producer sends it on its own topic) into one broken message of ``kind``: random bytes, bad
UTF-8, deep JSON, JSON that is no object, a missing field, a wrong type, a huge string (past
``max_bytes``, or in an id under it), a date before 1900, an unknown type, the wrong topic;
with arbitrary headers or none. All randomness comes from ``rng``, so a corpus made from
``random.Random(seed)`` is the same on every run (``corpus``);
tests/unit/ingest/test_fuzz_messages.py holds every kind to its reason with hypothesis
driving the random source and the bases.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from streams.contracts.events import TOPIC_OF_TYPE
from streams.topics import INPUT_TOPICS

Headers = list[tuple[str, bytes]]
INPUT_NAMES = [spec.name for spec in INPUT_TOPICS]
ENVELOPE_FIELDS = ("event_id", "occurred_at", "source")  # required by every event type


@dataclass(frozen=True)
class BadMessage:
    topic: str  # logical input topic
    key: bytes | None
    value: bytes
    headers: Headers
    reason: str  # the dead-letter reason it must get
    kind: str


def _random_bytes(rng: random.Random, base: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    raw = rng.randbytes(rng.randint(0, 300))
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw, "not_json"
    return raw + b"\x00", "not_json"  # a rare valid JSON text ("7"): trailing NUL breaks it


def _bad_utf8(rng: random.Random, base: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    text = orjson.dumps(base)
    at = text.index(b'"event_id":"') + len(b'"event_id":"')
    bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28", b"\x80"])
    return text[:at] + bad + text[at:], "not_json"


def _deep_json(rng: random.Random, base: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    opening, closing = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    # past any parser's nesting limit (orjson: 1024), under max_bytes
    depth = rng.randint(1100, max(1100, (max_bytes - 10) // len(opening + closing)))
    return opening * depth + b"1" + closing * depth, "not_json"


def _not_an_object(rng: random.Random, base: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    depth = rng.randint(0, 200)
    inner: Any = rng.choice([base, rng.randint(-(2**60), 2**60), "x" * rng.randint(0, 50), None])
    for _ in range(depth):
        inner = [inner]
    if not depth and isinstance(inner, dict):
        inner = [inner]
    return orjson.dumps(inner), "not_an_object"


def _missing_field(rng: random.Random, base: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    event = copy.deepcopy(base)
    del event[rng.choice(ENVELOPE_FIELDS)]
    return orjson.dumps(event), "missing_field"


WRONG_VALUES: Sequence[Callable[[random.Random], Any]] = (
    lambda rng: [rng.randint(0, 9)],
    lambda rng: {"nested": {"deeper": [rng.random()]}},
)


def _wrong_type(rng: random.Random, base: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    event = copy.deepcopy(base)
    event[rng.choice(ENVELOPE_FIELDS)] = rng.choice(WRONG_VALUES)(rng)
    return orjson.dumps(event), "wrong_type"


def _too_large(rng: random.Random, base: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    event = copy.deepcopy(base)
    event["note"] = "".join(rng.choice("abcé€𝄞 ") for _ in range(64)) * (
        rng.randint(max_bytes, 3 * max_bytes) // 64 + 1
    )
    return orjson.dumps(event), "too_large"


def _huge_id(rng: random.Random, base: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    event = copy.deepcopy(base)
    event["event_id"] = "id-" + "z" * rng.randint(200, max(200, max_bytes // 2 - 400))
    return orjson.dumps(event), "invalid_value"  # ids are at most 200 characters


def _out_of_calendar(rng: random.Random, base: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    event = copy.deepcopy(base)
    year = rng.choice([1, rng.randint(2, 1899)])
    offset = rng.choice(["+14:00", "Z", "-12:00", "+05:30"])
    event["occurred_at"] = f"{year:04d}-01-01T00:{rng.randint(0, 59):02d}:00{offset}"
    return orjson.dumps(event), "invalid_value"  # year 1 at +14:00 starts its day in year 0


def _unknown_type(rng: random.Random, base: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    event = copy.deepcopy(base)
    event["type"] = rng.choice(["order.won", "", "ORDER.PLACED", 42, None, ["order.placed"]])
    return orjson.dumps(event), "unknown_type"


KINDS: dict[str, Callable[[random.Random, dict[str, Any], int], tuple[bytes, str]]] = {
    "random_bytes": _random_bytes,
    "bad_utf8": _bad_utf8,
    "deep_json": _deep_json,
    "not_an_object": _not_an_object,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "too_large": _too_large,
    "huge_id": _huge_id,
    "unknown_type": _unknown_type,
    "out_of_calendar": _out_of_calendar,
    "wrong_topic": lambda rng, base, max_bytes: (orjson.dumps(base), "wrong_topic"),
}


def _headers(rng: random.Random) -> Headers:
    """None at all half the time (what the simulator sends), else arbitrary ones."""
    if rng.random() < 0.5:
        return []
    return [(f"h{n}", rng.randbytes(rng.randint(0, 20))) for n in range(rng.randint(1, 3))]


def bad_message(rng: random.Random, kind: str, base: dict[str, Any], max_bytes: int) -> BadMessage:
    """A broken copy of ``base`` of ``kind``, on its own topic (another one for wrong_topic,
    any input topic for the kinds that are not an event at all)."""
    value, reason = KINDS[kind](rng, base, max_bytes)
    own = TOPIC_OF_TYPE[base["type"]]
    if kind == "wrong_topic":
        topic = rng.choice([name for name in INPUT_NAMES if name != own])
    elif reason in ("not_json", "not_an_object"):
        topic = rng.choice(INPUT_NAMES)
    else:
        topic = own
    key = rng.choice([None, b"", rng.randbytes(8), str(base.get("account_id", "k")).encode()])
    return BadMessage(topic, key, value, _headers(rng), reason, kind)


def corpus(
    seed: int, count: int, bases: Sequence[dict[str, Any]], max_bytes: int
) -> list[BadMessage]:
    """``count`` bad messages, the same for the same arguments on every run."""
    rng = random.Random(seed)
    kinds = sorted(KINDS)
    return [bad_message(rng, rng.choice(kinds), rng.choice(bases), max_bytes) for _ in range(count)]
