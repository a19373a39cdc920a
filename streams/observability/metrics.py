"""Pipeline counters kept in plain dicts and exported by a Collector at scrape time.

The hot path only increments a dict entry; Prometheus objects are built when scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streams.ingest.validate import DeadLetterReason

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass
class Histogram:
    """Observations counted per bucket (upper bounds ``bounds``, then +Inf)."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


# Label values known in advance are exported at 0 from the start (a rate over a series that
# does not exist yet is no data, not 0: dashboards and alerts would show nothing).
REFERENCE_KINDS = ("rep", "product", "account")
LATE_KINDS = ("minute", "day", "week", "month", "quarter")
ROLES = ("event", "lead", "account", "opportunity")
STAGES = ("ingest", "entity-stage", "publisher")
APPLYING_STAGES = STAGES[1:]  # those after the ingest: a message they fail on is valid


def _zeros(keys: Iterable[Any]) -> Counter[Any]:
    return Counter(dict.fromkeys(keys, 0))


@dataclass
class PipelineStats:
    """What the worker has processed since it started."""

    events: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, type)
    dead_letters: Counter[str] = field(
        default_factory=lambda: _zeros(str(r) for r in DeadLetterReason)
    )
    duplicates: Counter[str] = field(default_factory=Counter)  # type
    unknown_fields: Counter[str] = field(default_factory=Counter)  # type
    reference_misses: Counter[str] = field(default_factory=lambda: _zeros(REFERENCE_KINDS))
    late: Counter[tuple[str, str]] = field(
        default_factory=lambda: _zeros((k, r) for k in LATE_KINDS for r in ROLES)
    )  # (window kind, role): closed windows corrected
    expired: Counter[tuple[str, str]] = field(
        default_factory=lambda: _zeros((k, r) for k in LATE_KINDS for r in ROLES)
    )  # (window kind, role): windows past their retention, left out
    applied: Counter[str] = field(default_factory=Counter)  # type: events counted by the engine
    # stage: valid messages it failed to apply, sent to sales.deadletter (streams.engine.failures)
    stage_errors: Counter[str] = field(default_factory=lambda: _zeros(APPLYING_STAGES))
    seen_purged: int = 0  # seen event ids swept, past the retention of all their windows
    cells_purged: int = 0  # entity-stage partial cells swept, past their window's retention
    entities_purged: int = 0  # entity summaries swept, no event for the entity horizon
    rebalance_rewinds: int = 0  # partitions with nothing committed sent back after a rebalance
    refetches: int = 0  # partitions sought back to records faust fetched but did not hand
    gaps_sought: Counter[str] = field(default_factory=lambda: _zeros(STAGES))  # stage
    last_event_timestamp: float | None = None
    latency: Histogram = field(default_factory=Histogram)  # input in Kafka -> published

    def event(self, topic: str, event_type: str, timestamp: float) -> None:
        self.events[(topic, event_type)] += 1
        if self.last_event_timestamp is None or timestamp > self.last_event_timestamp:
            self.last_event_timestamp = timestamp


Lag = Callable[[], list[tuple[str, int, int]]]
"""() -> (logical topic, partition, messages not yet processed) per assigned partition"""


class PipelineCollector(Collector):
    """Exports PipelineStats (and what the worker knows at scrape time) as ``salespulse_*``."""

    def __init__(
        self,
        stats: PipelineStats,
        assigned: Callable[[], int] | None = None,
        lag: Lag | None = None,
        stream_time: Callable[[], float | None] | None = None,
        business_hours: Callable[[], bool] | None = None,
    ) -> None:
        self._stats = stats
        self._assigned = assigned
        self._lag = lag
        self._stream_time = stream_time
        self._business_hours = business_hours

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
            "salespulse_late_events",
            "Event copies later than a window kind's grace: applied as corrections of the "
            "closed window.",
            labels=["kind", "role"],
        )
        for (kind, role), count in sorted(self._stats.late.items()):
            late.add_metric([kind, role], count)
        yield late
        expired = CounterMetricFamily(
            "salespulse_expired_events",
            "Event copies for a window kind past its retention: left out of it, the event "
            "copied to sales.late.",
            labels=["kind", "role"],
        )
        for (kind, role), count in sorted(self._stats.expired.items()):
            expired.add_metric([kind, role], count)
        yield expired
        yield _by_label(
            "salespulse_events_applied", "Events whose effects the KPI engine applied.",
            "type", self._stats.applied,
        )  # fmt: skip
        yield _by_label(
            "salespulse_stage_errors",
            "Valid messages a stage failed to apply, sent to sales.deadletter (see the log).",
            "stage", self._stats.stage_errors,
        )  # fmt: skip
        yield CounterMetricFamily(
            "salespulse_seen_ids_purged",
            "Seen event ids removed from the dedup table: past the retention of all their "
            "windows, a copy could change nothing.",
            value=self._stats.seen_purged,
        )  # fmt: skip
        yield CounterMetricFamily(
            "salespulse_partial_cells_purged",
            "Partial cells removed from the entity stage's table: their window is past its "
            "retention, removed from the read model, and takes no event.",
            value=self._stats.cells_purged,
        )  # fmt: skip
        yield CounterMetricFamily(
            "salespulse_entity_summaries_purged",
            "Entity summaries removed from the entity stage's table: no event for the entity "
            "in the horizon (SALESPULSE_ENTITY_HORIZON_S, event time).",
            value=self._stats.entities_purged,
        )  # fmt: skip
        yield _by_label(
            "salespulse_offset_gaps_sought",
            "Messages lost on their way to a stage (an offset skipped): partition sought back.",
            "stage", self._stats.gaps_sought,
        )  # fmt: skip
        yield CounterMetricFamily(
            "salespulse_rebalance_rewinds",
            "Partitions with nothing committed sent back to their earliest offset after a "
            "rebalance, past which faust had fetched (what it dropped is read again).",
            value=self._stats.rebalance_rewinds,
        )  # fmt: skip
        yield CounterMetricFamily(
            "salespulse_fetch_refetches",
            "Partitions sought back to records faust fetched but did not hand to the agents (a "
            "rebalance or a pause cut the batch): read again, not lost.",
            value=self._stats.refetches,
        )  # fmt: skip
        if self._assigned is not None:
            yield GaugeMetricFamily(
                "salespulse_assigned_partitions",
                "Topic partitions this worker consumes now (its share of the work).",
                value=self._assigned(),
            )
        latency = self._stats.latency
        yield HistogramMetricFamily(
            "salespulse_processing_latency_seconds",
            "Input message appended to Kafka -> its KPI changes published (per batch of "
            "cells: the age of its oldest input).",
            buckets=latency.cumulative(),
            sum_value=latency.total,
        )
        if self._lag is not None:
            lag = GaugeMetricFamily(
                "salespulse_consumer_lag_messages",
                "Messages not yet processed (and committed) in a partition assigned here.",
                labels=["topic", "partition"],
            )
            for topic, partition, behind in sorted(self._lag()):
                lag.add_metric([topic, str(partition)], behind)
            yield lag
        if self._stream_time is not None and (t := self._stream_time()) is not None:
            yield GaugeMetricFamily(
                "salespulse_stream_time_seconds",
                "The engine's stream time: windows close behind it (Unix seconds).",
                value=t,
            )
        if self._business_hours is not None:
            yield GaugeMetricFamily(
                "salespulse_business_hours",
                "1 during business hours (SALESPULSE_BUSINESS_HOURS in the business time "
                "zone), else 0.",
                value=1 if self._business_hours() else 0,
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
