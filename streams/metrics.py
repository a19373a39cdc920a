"""Pipeline counters kept in plain dicts and exported by a Collector at scrape time.

The hot path only increments a dict entry; Prometheus objects are built when scraped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass
class PipelineStats:
    """What the worker has processed since it started."""

    events: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, type)
    dead_letters: Counter[str] = field(default_factory=Counter)  # reason
    duplicates: Counter[str] = field(default_factory=Counter)  # type
    unknown_fields: Counter[str] = field(default_factory=Counter)  # type
    reference_misses: Counter[str] = field(default_factory=Counter)  # rep, product, account
    late: Counter[tuple[str, str]] = field(default_factory=Counter)  # (window kind, role)
    applied: Counter[str] = field(default_factory=Counter)  # type: events counted by the engine
    engine_errors: int = 0
    last_event_timestamp: float | None = None

    def event(self, topic: str, event_type: str, timestamp: float) -> None:
        self.events[(topic, event_type)] += 1
        if self.last_event_timestamp is None or timestamp > self.last_event_timestamp:
            self.last_event_timestamp = timestamp


class PipelineCollector(Collector):
    """Exports PipelineStats as ``salespulse_*`` metrics."""

    def __init__(self, stats: PipelineStats, assigned: Callable[[], int] | None = None) -> None:
        self._stats = stats
        self._assigned = assigned

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "salespulse_events", "Valid events processed.", labels=["topic", "type"]
        )
        for (topic, event_type), count in sorted(self._stats.events.items()):
            events.add_metric([topic, event_type], count)
        yield events
        dead = CounterMetricFamily(
            "salespulse_dead_letters", "Invalid messages sent to the dead-letter topic.",
            labels=["reason"],
        )  # fmt: skip
        for reason, count in sorted(self._stats.dead_letters.items()):
            dead.add_metric([reason], count)
        yield dead
        yield _by_label(
            "salespulse_duplicate_events", "Events seen again (same event_id) and counted once.",
            "type", self._stats.duplicates,
        )  # fmt: skip
        yield _by_label(
            "salespulse_unknown_fields", "Unknown fields ignored in valid events.",
            "type", self._stats.unknown_fields,
        )  # fmt: skip
        yield _by_label(
            "salespulse_reference_misses",
            "Events naming a rep, product or account missing from the reference data.",
            "kind", self._stats.reference_misses,
        )  # fmt: skip
        late = CounterMetricFamily(
            "salespulse_late_events", "Event copies late for a window kind (kept out of it).",
            labels=["kind", "role"],
        )  # fmt: skip
        for (kind, role), count in sorted(self._stats.late.items()):
            late.add_metric([kind, role], count)
        yield late
        yield _by_label(
            "salespulse_events_applied", "Events whose effects the KPI engine applied.",
            "type", self._stats.applied,
        )  # fmt: skip
        yield CounterMetricFamily(
            "salespulse_engine_errors", "Messages the KPI engine failed to apply (see the log).",
            value=self._stats.engine_errors,
        )  # fmt: skip
        if self._assigned is not None:
            yield GaugeMetricFamily(
                "salespulse_assigned_partitions",
                "Topic partitions this worker consumes now (its share of the work).",
                value=self._assigned(),
            )
        if self._stats.last_event_timestamp is not None:
            yield GaugeMetricFamily(
                "salespulse_last_event_timestamp_seconds",
                "Event time of the newest event processed (Unix seconds).",
                value=self._stats.last_event_timestamp,
            )


def _by_label(name: str, doc: str, label: str, counts: Counter[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family
