"""Reference data and the dimensions an event is counted under, re-derived from the spec.

- ``rep``: the event's ``rep_id`` (unknown reps kept under their raw id);
- ``team``/``region``: the event's own if it carries them, else the rep's (``ref.reps``);
  an event without ``rep_id`` takes ``region`` from its account (``ref.accounts``);
- ``sector``: the account's; ``channel``: the event's own;
- ``product``: an opportunity's ``product_id``, an order's line products, resolved to the
  catalogue id through ``ref.products`` ids and ``aliases`` (unknown raw ids kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from streams.contracts.events import Envelope
from streams.contracts.reference import Account, Product, Rep, Target

CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    """``amount`` rounded to the cent (half to even)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class RefData:
    reps: Mapping[str, Rep]
    products: Mapping[str, Product]
    accounts: Mapping[str, Account]
    targets: Sequence[Target]
    _aliases: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        aliases = {a: p.product_id for p in self.products.values() for a in p.aliases}
        object.__setattr__(self, "_aliases", aliases)

    def product_id(self, raw: str) -> str:
        """Catalogue id of the product named ``raw`` (its id or an alias), else ``raw``."""
        if raw in self.products:
            return raw
        return self._aliases.get(raw, raw)

    def target(self, scope: str, key: str, period: str) -> Decimal | None:
        for target in self.targets:
            if str(target.scope) == scope and target.key == key and target.period == period:
                return target.amount
        return None


Pair = tuple[str, str]
"""(dimension, key)."""


@dataclass(frozen=True)
class Dims:
    rep: str | None = None
    team: str | None = None
    region: str | None = None
    channel: str | None = None
    sector: str | None = None
    products: tuple[str, ...] = ()

    def pairs(self, *, products: bool = True) -> list[Pair]:
        """Every (dimension, key) of the event; the product ones only if ``products``."""
        out: list[Pair] = [("global", "all")]
        for name in ("rep", "team", "region", "channel", "sector"):
            value = getattr(self, name)
            if value is not None:
                out.append((name, value))
        if products:
            out.extend(("product", p) for p in self.products)
        return out


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def dims_of(event: Envelope, ref: RefData) -> Dims:
    rep_id: str | None = getattr(event, "rep_id", None)
    team: str | None = getattr(event, "team", None)
    region: str | None = getattr(event, "region", None)
    if rep_id is not None and (rep := ref.reps.get(rep_id)) is not None:
        team = team or rep.team
        region = region or rep.region
    sector = None
    account_id: str | None = getattr(event, "account_id", None)
    if account_id is not None and (account := ref.accounts.get(account_id)) is not None:
        sector = account.sector
        if rep_id is None:
            region = region or account.region
    raw = [line.product_id for line in getattr(event, "lines", None) or []]
    if (single := getattr(event, "product_id", None)) is not None:
        raw.append(single)
    channel = getattr(event, "channel", None)
    return Dims(
        rep=rep_id,
        team=team,
        region=region,
        channel=None if channel is None else str(channel),
        sector=sector,
        products=_unique(ref.product_id(p) for p in raw),
    )
