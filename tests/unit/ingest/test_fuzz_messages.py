"""The fuzz corpus's generator (tests/fuzz_messages.py) and the ingest's validation under fuzz:
every broken message gets exactly the reason the generator promises, and nothing a producer
can send makes ``validate`` raise anything but InvalidEvent."""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.contracts.events import TOPIC_OF_TYPE
from streams.contracts.examples import EVENT_EXAMPLES
from streams.ingest.validate import InvalidEvent, Limits, validate
from tests.fuzz_messages import INPUT_NAMES, KINDS, bad_message, corpus

LIMITS = Limits(8192, "EUR", {"USD": Decimal("0.9")}, future_s=300)

bases = st.sampled_from(sorted(EVENT_EXAMPLES)).map(lambda t: dict(EVENT_EXAMPLES[t]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def reason_of(raw: bytes, topic: str) -> str | None:
    try:
        validate(raw, topic, LIMITS, time.time())
    except InvalidEvent as exc:
        return str(exc.reason)
    return None


def test_the_examples_are_valid_on_their_topics() -> None:
    for event in EVENT_EXAMPLES.values():
        assert reason_of(orjson.dumps(event), TOPIC_OF_TYPE[event["type"]]) is None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), kind=st.sampled_from(sorted(KINDS)), base=bases)
def test_every_kind_gets_its_reason(rng: random.Random, kind: str, base: dict[str, Any]) -> None:
    message = bad_message(rng, kind, base, LIMITS.max_bytes)
    assert message.topic in INPUT_NAMES
    assert reason_of(message.value, message.topic) == message.reason, message


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=400), topic=st.sampled_from(INPUT_NAMES))
def test_random_bytes_are_refused_with_a_reason(raw: bytes, topic: str) -> None:
    reason_of(raw, topic)  # InvalidEvent or valid; any other exception fails the test


@settings(max_examples=300, deadline=None)
@given(base=bases, field=st.sampled_from(["event_id", "occurred_at", "amount", "lines",
                                          "rep_id", "account_id", "currency", "score"]),
       value=json_values)  # fmt: skip
def test_any_json_in_a_field_is_refused_or_valid(
    base: dict[str, Any], field: str, value: Any
) -> None:
    event = {**base, field: value}
    reason_of(json.dumps(event).encode(), TOPIC_OF_TYPE[base["type"]])  # big ints too


def test_the_corpus_is_the_same_for_the_same_seed() -> None:
    events = list(EVENT_EXAMPLES.values())
    first, again = corpus(7, 300, events, 8192), corpus(7, 300, events, 8192)
    assert first == again
    assert first != corpus(8, 300, events, 8192)
    assert {m.kind for m in first} == set(KINDS)
