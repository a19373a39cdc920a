"""Which entities an event concerns, and where they live: the roles it plays (pure).

Each (role, key) pair becomes one item on ``internal.entities``, in the partition of
``role:key`` (``partition_of``) so that every event of an entity, and every duplicate of an
event, lands on the same partition. The ingest sends the items of a partition together, many
to a message (``streams.engine.outbox``).
"""

from __future__ import annotations

import zlib

from streams.contracts.events import (
    CallLogged,
    ContractChurned,
    EmailSent,
    Envelope,
    LeadCreated,
    MeetingHeld,
    OpportunityOpened,
    OrderPlaced,
)


def roles(event: Envelope) -> list[tuple[str, str]]:
    """``[(role, entity key)...]``; the ``event`` role (the event's own counts) comes first."""
    out = [("event", event.event_id)]
    if isinstance(event, LeadCreated):
        out.append(("lead", event.lead_id))
        if event.account_id is not None:
            out.append(("account", event.account_id))
    elif isinstance(event, CallLogged | EmailSent | MeetingHeld):
        if event.lead_id is not None:
            out.append(("lead", event.lead_id))
    elif isinstance(event, OrderPlaced):
        out.append(("account", event.account_id))
        if event.opportunity_id is not None:
            out.append(("opportunity", event.opportunity_id))
    elif isinstance(event, OpportunityOpened):
        out.append(("opportunity", event.opportunity_id))
    elif isinstance(event, ContractChurned):
        out.append(("account", event.account_id))
    return out


def message_key(role: str, key: str) -> bytes:
    return f"{role}:{key}".encode()


def partition_of(role: str, key: str, partitions: int) -> int:
    """The ``internal.entities`` partition of an entity: the same on every worker, forever
    (CRC-32 of ``role:key``; changing it would move entities away from their state)."""
    return zlib.crc32(message_key(role, key)) % partitions
