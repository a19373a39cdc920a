"""How far the worker got, read from the broker, never from the worker.

The worker's consumer group (its group id is the app id) commits the offsets of what it has
processed: an input offset once what the event caused is in Kafka, an ``internal.entities``
offset once the cells it caused are sent, an ``internal.cells`` offset once Redis and
``kpi.updates`` have it. So at one instant, every watched partition's committed offset at its
end offset means nothing is in flight anywhere: the pipeline is drained.

Reading committed offsets (one OffsetFetch to the group coordinator) and end offsets (one
ListOffsets per broker, from a group-less consumer) costs the broker a little and the worker
nothing: it is never asked anything. The worker's start is seen the same way, from the group's
description (DescribeGroups): the group is Stable with a member holding an assignment.

The pure part (``Snapshot``, ``Drain``) decides; ``OffsetWatch`` reads the broker.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.connections.kafka import kafka_options
from streams.settings import Settings
from streams.topics import INPUT_TOPICS, ensure_topics

POLL_S = 0.5  # the least time between two reads of the broker
STAGES = ("inputs", "internal.entities", "internal.cells")

TP = tuple[str, int]  # (full topic name, partition)


def watched_topics(settings: Settings) -> dict[str, str]:
    """Full topic name -> the stage it feeds (``inputs`` for every input topic)."""
    topics = {settings.topic(spec.name): "inputs" for spec in INPUT_TOPICS}
    topics[settings.topic("internal.entities")] = "internal.entities"
    topics[settings.topic("internal.cells")] = "internal.cells"
    return topics


@dataclass(frozen=True)
class Snapshot:
    """Committed offsets (read first) and end offsets (read right after) of the watched
    partitions. ``None``: the group has committed nothing there yet."""

    at: float  # monotonic, when the committed offsets were read
    committed: dict[TP, int | None]
    ends: dict[TP, int]

    def lag(self, tp: TP) -> int:
        end = self.ends.get(tp, 0)
        done = self.committed.get(tp)
        return max(0, end - (done if done is not None else 0))

    def drained(self) -> bool:
        """Every watched partition committed up to its end offset.

        The committed offsets are read before the ends, so a record sent in between shows
        up as lag: a snapshot may wrongly say "not yet", never wrongly "drained".
        """
        return all(self.lag(tp) == 0 for tp in self.ends)

    def lag_by_stage(self, stages: dict[str, str]) -> dict[str, int]:
        out = {stage: 0 for stage in STAGES}
        for tp in self.ends:
            stage = stages.get(tp[0])
            if stage is not None:
                out[stage] = out.get(stage, 0) + self.lag(tp)
        return out

    def committed_total(self, stages: dict[str, str], stage: str) -> int:
        return sum(
            offset or 0
            for tp, offset in self.committed.items()
            if stages.get(tp[0]) == stage and offset is not None
        )

    def inputs_drained(self, stages: dict[str, str]) -> bool:
        return all(self.lag(tp) == 0 for tp in self.ends if stages.get(tp[0]) == "inputs")


@dataclass
class Drain:
    """The done decision over successive snapshots.

    Done once a snapshot is drained and, ``quiet_s`` or more later, another one is too with
    the input topics drained at every snapshot in between. The finish time is the first
    drained snapshot's: stage markers keep trickling into the internal topics, so snapshots
    in between may show a record or two in flight, which is not work left from the backlog.
    """

    stages: dict[str, str]
    quiet_s: float = 2.0
    first_drained: float | None = None
    finished: float | None = field(default=None)

    def observe(self, snap: Snapshot) -> bool:
        """True once done; ``finished`` then holds when the pipeline drained (monotonic)."""
        if self.finished is not None:
            return True
        if not snap.inputs_drained(self.stages):
            self.first_drained = None  # new input, or not there yet: start over
            return False
        if not snap.drained():
            return False
        if self.first_drained is None:
            self.first_drained = snap.at
            return False
        if snap.at - self.first_drained >= self.quiet_s:
            self.finished = self.first_drained
            return True
        return False


def describe(snap: Snapshot, stages: dict[str, str], expected_inputs: int | None = None) -> str:
    """One progress line: what the group committed, and the lag of each stage."""
    lag = snap.lag_by_stage(stages)
    done = snap.committed_total(stages, "inputs")
    of = f"/{expected_inputs:,}" if expected_inputs is not None else ""
    return (
        f"inputs committed {done:,}{of}; lag: inputs {lag['inputs']:,}, "
        f"entities {lag['internal.entities']:,}, cells {lag['internal.cells']:,}"
    )


def group_started(groups: Iterable[tuple[object, ...]]) -> bool:
    """From DescribeGroups' groups (error, id, state, protocol type, protocol, members, ...):
    the group is Stable and a member holds a non-empty assignment."""
    for group in groups:
        state, members = group[2], group[5]
        if state == "Stable" and any(member[4] for member in members):  # type: ignore[attr-defined]
            return True
    return False


class OffsetWatch:
    """Reads the worker's group state and offsets from the broker (not from the worker)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stages = watched_topics(settings)
        kafka = kafka_options(settings).client
        self.admin = AIOKafkaAdminClient(**kafka)
        self.consumer = AIOKafkaConsumer(**kafka, group_id=None, enable_auto_commit=False)
        self.partitions: list[TopicPartition] = []
        self.coordinator: int | None = None
        self.polls = 0

    async def start(self) -> None:
        await ensure_topics(self.settings)  # as the worker would at its start: same specs
        await self.admin.start()
        await self.consumer.start()
        for topic in sorted(self.stages):
            found = self.consumer.partitions_for_topic(topic)
            if not found:
                await self.consumer._client.force_metadata_update()
                found = self.consumer.partitions_for_topic(topic) or set()
            self.partitions += [TopicPartition(topic, p) for p in sorted(found)]
        if not self.partitions:
            raise RuntimeError("no partitions found for the watched topics")

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def _coordinator(self) -> int:
        if self.coordinator is None:
            self.coordinator = await self.admin.find_coordinator(self.settings.app_id)
        return self.coordinator

    async def started(self) -> bool:
        """The worker's group is Stable and holds an assignment."""
        self.polls += 1
        try:
            responses = await self.admin.describe_consumer_groups(
                [self.settings.app_id], group_coordinator_id=await self._coordinator()
            )
        except Exception:
            self.coordinator = None
            return False
        return any(group_started(response.groups) for response in responses)

    async def snapshot(self) -> Snapshot:
        self.polls += 1
        at = time.monotonic()
        offsets = await self.admin.list_consumer_group_offsets(
            self.settings.app_id,
            group_coordinator_id=await self._coordinator(),
            partitions=self.partitions,
        )
        ends = await self.consumer.end_offsets(self.partitions)
        committed: dict[TP, int | None] = {}
        for tp in self.partitions:
            meta = offsets.get(tp)
            committed[(tp.topic, tp.partition)] = (
                meta.offset if meta is not None and meta.offset >= 0 else None
            )
        return Snapshot(
            at=at, committed=committed, ends={(tp.topic, tp.partition): ends[tp] for tp in ends}
        )
