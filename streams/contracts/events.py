"""Every input event of ../shared/design/kpi-catalog.md, on its topic.

Strict where the numbers depend on it: timezone-aware times, Decimal money to the cent, ISO
currency codes, enums. Unknown extra fields are ignored (a producer may add fields before we
read them); the ingest counts them.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from streams.contracts.common import Channel, Currency, Id, Money, UnitPrice

SCHEMA_VERSION = 1


def _rfc3339_text(value: object) -> object:
    """Refuse Unix times: seconds or milliseconds would be a guess; RFC 3339 says which."""
    if isinstance(value, int | float):
        raise ValueError("expected an RFC 3339 date-time string with an offset, not a number")
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        raise ValueError("expected an RFC 3339 date-time string with an offset, not a number")
    return value


class Envelope(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="ignore", frozen=True, use_enum_values=False)

    event_id: Id = Field(description="Idempotency key: an event with a seen id counts once.")
    type: str = Field(description="Event type, the discriminator (e.g. order.placed).")
    occurred_at: Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)] = Field(
        description="Event time, RFC 3339 with an offset."
    )
    source: Id = Field(description="Producing system (crm, telephony, webshop, replay...).")
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)


class _LeadOrAccount(Envelope):
    """An activity about a lead or an account (at least one of them)."""

    lead_id: Id | None = None
    account_id: Id | None = None

    @model_validator(mode="after")
    def _needs_a_subject(self) -> Self:
        if self.lead_id is None and self.account_id is None:
            raise ValueError("lead_id or account_id is required")
        return self


class LeadCreated(Envelope):
    type: Literal["lead.created"]
    lead_id: Id
    account_id: Id | None = None
    rep_id: Id | None = None
    channel: Channel


class CallDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallOutcome(StrEnum):
    CONNECTED = "connected"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"


class CallLogged(_LeadOrAccount):
    type: Literal["call.logged"]
    call_id: Id
    rep_id: Id
    direction: CallDirection
    outcome: CallOutcome
    duration_s: int = Field(ge=0, le=86_400)


class EmailSent(_LeadOrAccount):
    type: Literal["email.sent"]
    email_id: Id
    rep_id: Id


class MeetingKind(StrEnum):
    PROSPECT = "prospect"
    CUSTOMER = "customer"


class MeetingHeld(_LeadOrAccount):
    type: Literal["meeting.held"]
    meeting_id: Id
    rep_id: Id
    kind: MeetingKind


class _Opportunity(Envelope):
    opportunity_id: Id
    account_id: Id | None = None
    lead_id: Id | None = None
    rep_id: Id
    product_id: Id | None = None
    amount: Money | None = None
    currency: Currency | None = None

    @model_validator(mode="after")
    def _amount_has_currency(self) -> Self:
        if self.amount is not None and self.currency is None:
            raise ValueError("currency is required with amount")
        return self


class OpportunityOpened(_Opportunity):
    type: Literal["opportunity.opened"]
    channel: Channel | None = None


class OpportunityLost(_Opportunity):
    type: Literal["opportunity.lost"]
    reason: Annotated[str, Field(max_length=500)] | None = None


class QuoteSent(Envelope):
    type: Literal["quote.sent"]
    quote_id: Id
    opportunity_id: Id | None = None
    account_id: Id
    rep_id: Id
    amount: Money
    currency: Currency


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    product_id: Id
    quantity: Annotated[int, Field(ge=1, le=1_000_000)]
    unit_price: UnitPrice
    unit_cost: UnitPrice | None = None


class OrderPlaced(Envelope):
    """A won deal (bookings)."""

    type: Literal["order.placed"]
    order_id: Id
    quote_id: Id | None = None
    opportunity_id: Id | None = None
    account_id: Id
    rep_id: Id
    amount: Money
    currency: Currency
    lines: list[OrderLine] = Field(default_factory=list, max_length=1000)
    channel: Channel | None = None


class OrderCancelled(Envelope):
    type: Literal["order.cancelled"]
    order_id: Id | None = None
    account_id: Id | None = None
    rep_id: Id | None = None
    amount: Money
    currency: Currency
    reason: Annotated[str, Field(max_length=500)]

    @model_validator(mode="after")
    def _needs_order_or_account(self) -> Self:
        if self.order_id is None and self.account_id is None:
            raise ValueError("order_id or account_id is required")
        return self


class ContractChurned(Envelope):
    type: Literal["contract.churned"]
    account_id: Id
    rep_id: Id | None = None
    amount: Money | None = None
    currency: Currency | None = None
    reason: Annotated[str, Field(max_length=500)]


class ComplaintFiled(Envelope):
    type: Literal["complaint.filed"]
    complaint_id: Id
    account_id: Id
    order_id: Id | None = None
    rep_id: Id | None = None
    reason: Annotated[str, Field(max_length=500)]


class NpsAnswered(Envelope):
    type: Literal["nps.answered"]
    account_id: Id
    rep_id: Id | None = None
    score: Annotated[int, Field(ge=0, le=10)]


class Period(BaseModel):
    """Local dates (business time zone), both included."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError("period end is before its start")
        return self


class SpendRecorded(Envelope):
    type: Literal["spend.recorded"]
    channel: Channel
    amount: Money
    currency: Currency
    period: Period


Event = Annotated[
    LeadCreated | CallLogged | EmailSent | MeetingHeld | OpportunityOpened | OpportunityLost
    | QuoteSent | OrderPlaced | OrderCancelled | ContractChurned | ComplaintFiled | NpsAnswered
    | SpendRecorded,
    Field(discriminator="type"),
]  # fmt: skip

EVENT_MODELS: dict[str, type[Envelope]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        LeadCreated, CallLogged, EmailSent, MeetingHeld, OpportunityOpened, OpportunityLost,
        QuoteSent, OrderPlaced, OrderCancelled, ContractChurned, ComplaintFiled, NpsAnswered,
        SpendRecorded,
    )
}  # fmt: skip
"""Event type -> model."""

TOPIC_OF_TYPE: dict[str, str] = {
    "lead.created": "sales.leads",
    "call.logged": "sales.calls",
    "email.sent": "sales.emails",
    "meeting.held": "sales.meetings",
    "opportunity.opened": "sales.opportunities",
    "opportunity.lost": "sales.opportunities",
    "quote.sent": "sales.quotes",
    "order.placed": "sales.orders",
    "order.cancelled": "sales.cancellations",
    "contract.churned": "sales.cancellations",
    "complaint.filed": "sales.complaints",
    "nps.answered": "sales.feedback",
    "spend.recorded": "marketing.spend",
}
"""Event type -> the (logical) topic it belongs on."""
