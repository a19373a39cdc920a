"""What a deal sells: order lines, prices after discount, unit costs. Pure helpers on a seeded
random generator, shared by the floor and by its calibration (expected order values).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from streams.simulator.world import ProductKind, ProductProfile

CENT = Decimal("0.01")
P_ALIAS = 0.12  # a line names its product by an alias (old code, other spelling)
P_COST_KNOWN = 0.92  # lines whose unit cost the ERP knows (margin counts only those)
P_SERVICE_ADD_ON = 0.35  # software deals that also sell onboarding or training
P_DOCK_ADD_ON = 0.25  # hardware orders that also take docks


@dataclass(frozen=True)
class Line:
    product: ProductProfile
    product_id: str  # as the source wrote it: the catalogue id or an alias
    quantity: int
    unit_price: Decimal
    unit_cost: Decimal | None

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity

    def payload(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "product_id": self.product_id,
            "quantity": self.quantity,
            "unit_price": str(self.unit_price),
        }
        if self.unit_cost is not None:
            line["unit_cost"] = str(self.unit_cost)
        return line


def total(lines: Sequence[Line]) -> Decimal:
    return sum((line.amount for line in lines), Decimal(0)).quantize(CENT)


def product_name(rng: random.Random, product: ProductProfile) -> str:
    """The catalogue id, or now and then one of its aliases."""
    aliases = product.product.aliases
    return rng.choice(aliases) if aliases and rng.random() < P_ALIAS else product.product.product_id


def line(rng: random.Random, product: ProductProfile, quantity: int, discount: float) -> Line:
    list_price = product.product.list_price or Decimal(0)
    unit_price = (list_price * Decimal(1 - discount)).quantize(CENT)
    unit_cost = None
    if rng.random() < P_COST_KNOWN:
        unit_cost = (list_price * Decimal(product.cost_ratio * rng.uniform(0.95, 1.05))).quantize(
            CENT
        )
    return Line(product, product_name(rng, product), quantity, unit_price, unit_cost)


def deal_lines(rng: random.Random, products: Sequence[ProductProfile]) -> list[Line]:
    """The lines of a negotiated deal: a main product at a discount, maybe add-ons."""
    mains = [p for p in products if p.weight > 0]
    main = rng.choices(mains, weights=[p.weight for p in mains])[0]
    lines = [line(rng, main, rng.randint(*main.quantity), rng.uniform(0.0, 0.18))]
    services = [p for p in products if p.kind is ProductKind.SERVICE]
    if main.kind is ProductKind.SOFTWARE and services and rng.random() < P_SERVICE_ADD_ON:
        service = rng.choice(services)
        lines.append(line(rng, service, rng.randint(*service.quantity), 0.0))
    lines.extend(_docks(rng, products, main))
    return lines


def webshop_lines(rng: random.Random, products: Sequence[ProductProfile]) -> list[Line]:
    """A webshop basket: hardware at list price."""
    hardware = [p for p in products if p.kind is ProductKind.HARDWARE]
    main = rng.choices(hardware, weights=[p.weight for p in hardware])[0]
    low, high = main.quantity
    lines = [line(rng, main, rng.randint(1, min(high, max(low, 10))), 0.0)]
    lines.extend(_docks(rng, products, main))
    return lines


def discounted(lines: Sequence[Line], discount: float) -> list[Line]:
    """The same lines after a further discount (a revised quote)."""
    return [
        Line(
            line.product,
            line.product_id,
            line.quantity,
            (line.unit_price * Decimal(1 - discount)).quantize(CENT),
            line.unit_cost,
        )
        for line in lines
    ]


def _docks(
    rng: random.Random, products: Sequence[ProductProfile], main: ProductProfile
) -> list[Line]:
    docks = [p for p in products if p.product.product_id == "FRG-DCK" and p is not main]
    if main.kind is ProductKind.HARDWARE and docks and rng.random() < P_DOCK_ADD_ON:
        return [line(rng, docks[0], rng.randint(*docks[0].quantity), 0.0)]
    return []
