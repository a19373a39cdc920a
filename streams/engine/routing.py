"""Which entities an event concerns: the roles it plays in the entity stage (pure).

Each (role, key) pair becomes one message on ``internal.entities``, keyed ``role:key`` so that
every event of an entity, and every duplicate of an event, lands on the same partition.
"""

from __future__ import annotations

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
