"""The floor's timeline: actions scheduled in event time, and the records they emit, with the
flaws of real sources (duplicates, late events, malformed messages) and silences.

Pure and deterministic: one seeded random generator, a heap ordered by (time, sequence).
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from streams.contracts.events import SCHEMA_VERSION, TOPIC_OF_TYPE
from streams.contracts.reference import Account, Product, Rep, Target, reference_key
from streams.ingest.validate import DeadLetterReason
from streams.simulator.hours import BusinessHours
from streams.simulator.incidents import Incident, IncidentKind
from streams.simulator.invalid import make_invalid

NAMESPACE = uuid.UUID("6f1b1c52-3f0e-4c4a-9a57-5b0d7f2b9e01")
REFERENCE = "reference"  # Record.kind of reference records

P_AFTER_HOURS = 0.03  # steps done out of hours (when the floor has any out-of-hours life)

Action = Callable[..., None]
Reference = Rep | Product | Account | Target


class Record(NamedTuple):
    """One message of the floor, and what it is meant to be."""

    event_time: datetime  # occurred_at (reference records, spoiled messages: when emitted)
    topic: str  # logical topic
    key: bytes
    value: bytes
    emitted_at: datetime  # in event time; never decreases along the stream
    kind: str  # event type (for a spoiled message, the one it was made from), or "reference"
    invalid: DeadLetterReason | None = None  # the reason the ingest must reject it with
    duplicate: bool = False  # a re-send of an earlier record: same key, same bytes
    out_of_order: bool = False  # event time a few minutes before its emission
    backfill: bool = False  # the floor's past (history): sent at once, like reference records


@dataclass(frozen=True)
class Flaws:
    """How often the floor's sources misbehave, as shares of all event messages."""

    duplicate_share: float = 0.01
    out_of_order_share: float = 0.02
    # For each of invalid_reasons (11): 4 % in all, under SalespulseDeadLetterRate's 5 % (at
    # 5 % the floor sat on the threshold: the alert went pending on a simulated floor, 5.005 %).
    invalid_share: float = 0.0036
    invalid_reasons: tuple[DeadLetterReason, ...] = tuple(DeadLetterReason)
    late_by: tuple[float, float] = (90.0, 600.0)  # seconds an out-of-order event is late
    resent_after: tuple[float, float] = (2.0, 180.0)  # seconds before a duplicate is re-sent

    def __post_init__(self) -> None:
        shares = (self.duplicate_share, self.out_of_order_share, self.invalid_share)
        if min(shares) < 0 or self.duplicate_share + self.invalid_total >= 0.5:
            raise ValueError("flaw shares must be >= 0, and duplicates + invalid below half")

    @property
    def invalid_total(self) -> float:
        return self.invalid_share * len(self.invalid_reasons)

    @property
    def valid_share(self) -> float:
        """Share of event messages that are first sends of valid events."""
        return 1.0 - self.invalid_total - self.duplicate_share


class Timeline:
    """Schedules actions in event time and emits their records, flaws included."""

    def __init__(
        self,
        *,
        start: datetime,
        hours: BusinessHours,
        flaws: Flaws,
        incidents: tuple[Incident, ...],
        seed: int,
        max_bytes: int,
        foreign_currencies: tuple[str, ...],
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.start = start.timestamp()
        self.hours = hours
        self.zone = hours.zone
        self.flaws = flaws
        self.incidents = incidents
        self.max_bytes = max_bytes
        self.foreign_currencies = foreign_currencies
        self.rng = random.Random(f"salespulse-floor:{seed}")
        self.run = uuid.uuid5(NAMESPACE, f"{seed}:{self.start!r}")
        self.tag = self.run.hex[:6]  # in business ids, so that two runs never share an id
        valid = flaws.valid_share
        self.p_duplicate = flaws.duplicate_share / valid
        self.p_invalid = flaws.invalid_total / valid
        self.p_late = min(1.0, flaws.out_of_order_share / valid)
        self.late_owed = 0  # late events drawn but not yet placed (no room before their cause)
        self.foreign_owed = 0  # unsupported-currency messages waiting for an event with money
        self.queue: list[tuple[float, int, Action, tuple[Any, ...]]] = []
        self.resend: list[tuple[float, int, Record]] = []
        self.seq = 0
        self.counters: dict[str, int] = {}
        self.out: list[Record] = []
        self.silences = [i for i in incidents if i.kind is IncidentKind.SILENCE]

    # --- time ---

    def run_from(self, first: Iterable[Record]) -> Iterator[Record]:
        """``first``, then the records of the scheduled actions, forever."""
        yield from first
        while self.queue:
            t, _, action, args = heapq.heappop(self.queue)
            while self.resend and self.resend[0][0] <= t:
                sent_at, _, record = heapq.heappop(self.resend)
                if (resume := self._silenced_until(sent_at)) is not None:
                    if resume < math.inf:
                        self._resend_at(resume + self.rng.uniform(0, 60), record)
                    continue
                yield record
            if (resume := self._silenced_until(t)) is not None:
                if resume == math.inf:
                    return
                self.at(resume + self.rng.uniform(0, 60), action, *args)
                continue
            action(t, *args)
            yield from self.out
            self.out.clear()

    def at(self, t: float, action: Action, *args: Any) -> None:
        """Run ``action(t, *args)`` at event time ``t``."""
        self.seq += 1
        heapq.heappush(self.queue, (t, self.seq, action, args))

    def later(self, t: float, median: float, sigma: float, minimum: float = 30.0) -> float:
        """A step about ``median`` seconds of opening hours after ``t`` (lognormal)."""
        delay = max(minimum, self.rng.lognormvariate(math.log(median), sigma))
        if self.hours.quiet_level > 0 and self.rng.random() < P_AFTER_HOURS:
            return t + delay
        return self.hours.after_work(t, delay)

    def active(self, kind: IncidentKind, t: float) -> Incident | None:
        at = self.dt(t)
        return next((i for i in self.incidents if i.kind is kind and i.active(at)), None)

    def dt(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, self.zone)

    def id(self, prefix: str) -> str:
        """A business id unique to this run: ``lead-3fa9c1-000042``."""
        return f"{prefix}-{self.tag}-{self._count(prefix):06d}"

    # --- records ---

    def emit(
        self, t: float, event_type: str, source: str, after: float | None, **fields: Any
    ) -> float:
        """Emit an event at ``t`` (maybe late, re-sent later, or with a spoiled message).

        ``after`` is the event time of the step it follows: a late event never goes before
        it. Fields that are None are left out. Returns the event time.
        """
        rng = self.rng
        occurred, late = t, False
        if rng.random() < self.p_late:
            self.late_owed += 1
        if self.late_owed:
            low, high = self.flaws.late_by
            room = high if after is None else min(high, t - after - 1.0)
            if room >= low:
                occurred, late = t - rng.uniform(low, room), True
                self.late_owed -= 1
        occurred_at = self.dt(occurred).isoformat(timespec="milliseconds")
        payload = {
            "event_id": str(uuid.uuid5(self.run, f"e{self._count('event')}")),
            "type": event_type,
            "occurred_at": occurred_at,
            "source": source,
            "schema_version": SCHEMA_VERSION,
            **{name: value for name, value in fields.items() if value is not None},
        }
        topic = TOPIC_OF_TYPE[event_type]
        key = str(payload.get("account_id") or payload.get("lead_id") or payload["channel"])
        record = Record(
            datetime.fromisoformat(occurred_at), topic, key.encode(), orjson.dumps(payload),
            self.dt(t), event_type, out_of_order=late,
        )  # fmt: skip
        self.out.append(record)
        if rng.random() < self.p_duplicate:
            again = record._replace(duplicate=True, out_of_order=False)
            self._resend_at(t + rng.uniform(*self.flaws.resent_after), again)
        if rng.random() < self.p_invalid:
            self._spoil(t, payload, topic, key, rng.choice(self.flaws.invalid_reasons))
        if self.foreign_owed and payload.get("currency") is not None:
            self.foreign_owed -= 1
            self._spoil(t, payload, topic, key, DeadLetterReason.UNSUPPORTED_CURRENCY)
        return occurred

    def past(self, t: float, event_type: str, source: str, **fields: Any) -> Record:
        """A clean event of the floor's past at ``t``, emitted at the start (no flaws)."""
        occurred_at = self.dt(t).isoformat(timespec="milliseconds")
        payload = {
            "event_id": str(uuid.uuid5(self.run, f"p{self._count('past')}")),
            "type": event_type,
            "occurred_at": occurred_at,
            "source": source,
            "schema_version": SCHEMA_VERSION,
            **{name: value for name, value in fields.items() if value is not None},
        }
        key = str(payload["account_id"]).encode()
        return Record(
            datetime.fromisoformat(occurred_at), TOPIC_OF_TYPE[event_type], key,
            orjson.dumps(payload), self.dt(self.start), event_type, backfill=True,
        )  # fmt: skip

    def reference(self, t: float, topic: str, model: Reference) -> Record:
        """A reference record (key: the model's compaction key, value: its JSON)."""
        at = self.dt(t)
        key = reference_key(model).encode()
        return Record(at, topic, key, model.model_dump_json().encode(), at, REFERENCE)

    def _spoil(
        self, t: float, payload: dict[str, Any], topic: str, key: str, reason: DeadLetterReason
    ) -> None:
        if reason is DeadLetterReason.UNSUPPORTED_CURRENCY and payload.get("currency") is None:
            self.foreign_owed += 1  # made from the next event that carries an amount
            return
        spoiled = dict(payload, event_id=str(uuid.uuid5(self.run, f"x{self._count('spoiled')}")))
        spoiled_topic, value = make_invalid(
            reason, spoiled, topic, self.rng, max_bytes=self.max_bytes,
            foreign_currency=self.rng.choice(self.foreign_currencies),
        )  # fmt: skip
        at = self.dt(t)
        record = Record(at, spoiled_topic, key.encode(), value, at, payload["type"], reason)
        self.out.append(record)

    def _resend_at(self, t: float, record: Record) -> None:
        self.seq += 1
        heapq.heappush(self.resend, (t, self.seq, record._replace(emitted_at=self.dt(t))))

    def _silenced_until(self, t: float) -> float | None:
        at = self.dt(t)
        for incident in self.silences:
            if incident.active(at):
                return math.inf if incident.ends is None else incident.ends.timestamp()
        return None

    def _count(self, name: str) -> int:
        n = self.counters.get(name, 0) + 1
        self.counters[name] = n
        return n
