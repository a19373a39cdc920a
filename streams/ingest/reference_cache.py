"""Reference data held by every worker: reps, products (with aliases), accounts, targets.

Pure: ``apply`` takes one record of a ``ref.*`` topic (a tombstone deletes); the lookups
answer from memory. ``reference_feed`` keeps it filled from Kafka.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from streams.contracts.reference import Account, Product, Rep, Target

log = logging.getLogger(__name__)

KINDS = ("reps", "products", "accounts", "targets")
_MODELS: dict[str, type[BaseModel]] = {
    "reps": Rep, "products": Product, "accounts": Account, "targets": Target,
}  # fmt: skip


@dataclass
class ReferenceCache:
    reps: dict[str, Rep] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    invalid_records: int = 0
    _aliases: dict[str, str] = field(default_factory=dict)  # alias -> product_id
    # (scope, key, period) -> cents of the first such target; None: to build again
    _target_cents: dict[tuple[str, str, str], int] | None = None

    def apply(self, kind: str, key: str, value: bytes | None) -> None:
        """Apply one record of ``ref.<kind>``; an invalid one is logged and counted, not fatal."""
        table: dict[str, object] = getattr(self, kind)
        if value is None:
            table.pop(key, None)
        else:
            try:
                table[key] = _MODELS[kind].model_validate_json(value)
            except ValidationError as exc:
                self.invalid_records += 1
                log.warning("ignoring invalid ref.%s record %r: %s", kind, key, exc)
                return
        if kind == "targets":
            self._target_cents = None  # built again at the next lookup
        if kind == "products":
            self._aliases = {
                alias: product.product_id
                for product in self.products.values()
                for alias in product.aliases
            }

    def rep(self, rep_id: str) -> Rep | None:
        return self.reps.get(rep_id)

    def product_id(self, raw: str) -> str | None:
        """The catalogue id of a product named by its id or one of its aliases."""
        if raw in self.products:
            return raw
        return self._aliases.get(raw)

    def account(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    def target_cents(self, scope: str, key: str, period: str) -> int | None:
        """The revenue target of a scope (rep, team, global), key and period, in cents (a
        dict lookup: the publisher asks for every month and quarter cell it publishes)."""
        if self._target_cents is None:
            index: dict[tuple[str, str, str], int] = {}
            for target in self.targets.values():
                triple = (target.scope.value, target.key, target.period)
                index.setdefault(triple, int(target.amount * 100))
            self._target_cents = index
        return self._target_cents.get((scope, key, period))
