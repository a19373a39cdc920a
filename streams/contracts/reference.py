"""Reference records, on compacted ``ref.*`` topics keyed by their id."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from streams.contracts.common import Currency, Id, Money

Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Reference(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Rep(_Reference):
    """A sales rep (``ref.reps``, key ``rep_id``)."""

    rep_id: Id
    name: Name
    team: Name | None = None
    manager: Name | None = None
    region: Name | None = None
    active: bool = True


class Product(_Reference):
    """A product (``ref.products``, key ``product_id``); aliases are other spellings of it."""

    product_id: Id
    name: Name
    series: Name | None = None
    list_price: Money | None = None
    aliases: list[Id] = Field(default_factory=list, max_length=100)


class Account(_Reference):
    """A customer or prospect account (``ref.accounts``, key ``account_id``)."""

    account_id: Id
    name: Name | None = None
    sector: Name | None = None
    region: Name | None = None
    employees: Annotated[int, Field(ge=0)] | None = None


class TargetScope(StrEnum):
    REP = "rep"
    TEAM = "team"
    GLOBAL = "global"


class Target(_Reference):
    """A revenue target (``ref.targets``, key ``<scope>:<key>:<period>``)."""

    scope: TargetScope
    key: Id = Field(description="rep_id, team name, or 'all' for the global scope")
    period: str = Field(
        pattern=r"^\d{4}-(0[1-9]|1[0-2]|Q[1-4])$",
        description="a month (2017-03) or a quarter (2017-Q1) in the business time zone",
    )
    amount: Money
    currency: Currency

    @property
    def record_key(self) -> str:
        return f"{self.scope}:{self.key}:{self.period}"


REFERENCE_MODELS: dict[str, tuple[str, type[_Reference]]] = {
    "reps": ("ref.reps", Rep),
    "products": ("ref.products", Product),
    "accounts": ("ref.accounts", Account),
    "targets": ("ref.targets", Target),
}
"""``salespulse ref load KIND``: kind -> (logical topic, model)."""


def reference_key(record: _Reference) -> str:
    """The compaction key of a reference record."""
    if isinstance(record, Target):
        return record.record_key
    for field in ("rep_id", "product_id", "account_id"):
        if (value := getattr(record, field, None)) is not None:
            return str(value)
    raise TypeError(f"no key for {type(record).__name__}")
