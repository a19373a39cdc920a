"""An event joined with its dimensions: what the ingest hands the KPI stages.

The ingest builds it (``streams.ingest.enrich``); the KPI maths (``streams.kpi.facts``) reads
it. It lives here, beside the events, so that the KPI maths imports no ingest code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streams.contracts.events import Event


class Dimensions(BaseModel):
    """What an event is counted under (None: the event doesn't carry that dimension)."""

    model_config = ConfigDict(frozen=True)

    rep: str | None = None
    team: str | None = None
    region: str | None = None
    products: tuple[str, ...] = ()
    line_products: tuple[str, ...] = ()  # the product of each order line, in line order
    channel: str | None = None
    sector: str | None = None
    misses: tuple[str, ...] = Field(default=(), exclude=True)  # "rep", "product", "account"


class EnrichedEvent(BaseModel):
    """A valid, first-seen event with its dimensions: what the KPI stages consume."""

    model_config = ConfigDict(frozen=True)

    event: Event
    dims: Dimensions
