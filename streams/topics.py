"""Every topic salespulse reads or writes: name, partitions and cleanup policy.

Topics are created on purpose (the local broker has auto-creation off), by the worker and the
simulator at start-up, so that partition counts and compaction are never left to chance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streams.connections.kafka import kafka_options
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the catalogue, by its logical name (without the settings' prefix)."""

    name: str
    key: str
    description: str
    compacted: bool = False


INPUT_TOPICS = (
    TopicSpec("sales.leads", "account_id or lead_id", "lead.created"),
    TopicSpec("sales.calls", "account_id or lead_id", "call.logged"),
    TopicSpec("sales.emails", "account_id or lead_id", "email.sent"),
    TopicSpec("sales.meetings", "account_id or lead_id", "meeting.held"),
    TopicSpec("sales.opportunities", "account_id", "opportunity.opened, opportunity.lost"),
    TopicSpec("sales.quotes", "account_id", "quote.sent"),
    TopicSpec("sales.orders", "account_id", "order.placed"),
    TopicSpec("sales.cancellations", "account_id", "order.cancelled, contract.churned"),
    TopicSpec("sales.complaints", "account_id", "complaint.filed"),
    TopicSpec("sales.feedback", "account_id", "nps.answered"),
    TopicSpec("marketing.spend", "channel", "spend.recorded"),
)
REFERENCE_TOPICS = (
    TopicSpec("ref.reps", "rep_id", "reps: name, team, manager, region", compacted=True),
    TopicSpec("ref.products", "product_id", "products, with aliases", compacted=True),
    TopicSpec("ref.accounts", "account_id", "accounts: sector, region", compacted=True),
    TopicSpec("ref.targets", "scope:key:period", "revenue targets", compacted=True),
)
OUTPUT_TOPICS = (
    TopicSpec("sales.deadletter", "source topic", "invalid input with its reason"),
    TopicSpec("sales.late", "role:entity", "events past a window kind's retention, with the kinds"),
    TopicSpec("kpi.updates", "kpi/window kind/window start/dimension/key", "KPI update records"),
)
INTERNAL_TOPICS = (
    TopicSpec("internal.entities", "role:entity key", "valid events routed to their entities"),
    TopicSpec("internal.cells", "dimension|key", "partial KPI cells of each entity partition"),
    TopicSpec(
        "internal.progress",
        "input topic/partition",
        "each input partition's progress (position, newest event time, quiet) for the "
        "cluster watermark",
        compacted=True,
    ),
)
ALL_TOPICS = INPUT_TOPICS + REFERENCE_TOPICS + OUTPUT_TOPICS + INTERNAL_TOPICS


async def ensure_topics(settings: Settings, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
    """Create the missing topics of ``specs``; returns the names it created.

    Safe to call from several workers at once: a topic another one just created is fine.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(**kafka_options(settings).client)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=settings.topic(spec.name),
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication,
                topic_configs={"cleanup.policy": "compact" if spec.compacted else "delete"},
            )
            for spec in specs
            if settings.topic(spec.name) not in existing
        ]
        if not missing:
            return []
        response = await admin.create_topics(missing)
        created = []
        for name, code, *_ in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TopicAlreadyExistsError.errno:
                raise RuntimeError(f"could not create topic {name}: Kafka error code {code}")
        log.info("created topics: %s", ", ".join(created))
        return created
    finally:
        await admin.close()
