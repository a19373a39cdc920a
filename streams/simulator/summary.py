"""What a simulator run sent: counts per topic, per event type, per dead-letter reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from streams.simulator.incidents import IncidentSpec
from streams.simulator.timeline import REFERENCE, Record


@dataclass
class Summary:
    topics: Counter[str] = field(default_factory=Counter)  # every message, by logical topic
    types: Counter[str] = field(default_factory=Counter)  # first sends of valid events
    invalid: Counter[str] = field(default_factory=Counter)  # by the reason they must fail with
    reference: int = 0
    events: int = 0  # event messages: valid, re-sent and invalid ones
    duplicates: int = 0
    out_of_order: int = 0
    elapsed: float = 0.0  # seconds
    stopped_by: str = ""  # count, duration, signal

    def add(self, record: Record) -> None:
        self.topics[record.topic] += 1
        if record.kind == REFERENCE:
            self.reference += 1
            return
        self.events += 1
        if record.invalid is not None:
            self.invalid[record.invalid.value] += 1
        elif record.duplicate:
            self.duplicates += 1
        else:
            self.types[record.kind] += 1
            self.out_of_order += record.out_of_order

    @property
    def dead_letter_bound(self) -> int:
        return sum(self.invalid.values())

    def progress(self, elapsed: float, incidents: Sequence[IncidentSpec]) -> str:
        """``simulate: 1500 events (48.9/s), 12 dead-letter-bound, incidents: ...``"""
        statuses = [spec.status(timedelta(seconds=elapsed)) for spec in incidents]
        return (
            f"simulate: {self.events} events ({self.events / max(elapsed, 1e-9):.1f}/s), "
            f"{self.dead_letter_bound} dead-letter-bound, incidents: "
            f"{', '.join(statuses) or 'none'}"
        )

    def render(self) -> str:
        """The end-of-run summary (the lines under "per topic:" are ``<topic> <count>``)."""
        rate = self.events / max(self.elapsed, 1e-9)
        lines = [
            f"simulate: {self.events} events in {self.elapsed:.1f} s ({rate:.1f}/s) and "
            f"{self.reference} reference records; stopped by {self.stopped_by}",
            "  per topic:",
            *(f"    {topic:<28} {n:>9}" for topic, n in sorted(self.topics.items())),
            "  per event type (first sends of valid events):",
            *(f"    {kind:<28} {n:>9}" for kind, n in sorted(self.types.items())),
            f"  dead-letter-bound: {self.dead_letter_bound}"
            + (f" ({_listing(self.invalid)})" if self.invalid else ""),
            f"  duplicates re-sent: {self.duplicates}, out of order: {self.out_of_order}",
        ]
        return "\n".join(lines)


def _listing(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
