"""Who and what the simulated sales floor has: reps in teams and regions, products, accounts,
monthly revenue targets. Pure and deterministic: the same seed and rep count give the same
world, record for record.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from streams.contracts.reference import Account, Product, Rep, Target, TargetScope

REGIONS = ("Île-de-France", "Nord-Est", "Sud", "Ouest")
TEAM_SIZE = 7  # reps per team, on average (teams of 6 to 8)

FIRST_NAMES = (
    "Amélie", "Bastien", "Camille", "Damien", "Élodie", "Farid", "Gaëlle", "Hugo", "Inès",
    "Julien", "Karima", "Léo", "Manon", "Nicolas", "Océane", "Pierre", "Quentin", "Rania",
    "Sophie", "Thomas", "Ulysse", "Valentine", "William", "Yasmine", "Zoé", "Antoine", "Chloé",
    "Mehdi", "Lucie", "Sacha", "Nadia", "Olivier", "Aïcha", "Baptiste", "Claire", "Dylan",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet",
    "François", "Martinez", "Legrand", "Garnier", "Faure", "Rousseau", "Blanc", "Guerin", "Haddad",
)  # fmt: skip
CITIES = {  # teams are named after a city of their region
    "Île-de-France": ("Paris", "Versailles", "Créteil", "Nanterre"),
    "Nord-Est": ("Lille", "Strasbourg", "Reims", "Nancy"),
    "Sud": ("Lyon", "Marseille", "Toulouse", "Nice"),
    "Ouest": ("Nantes", "Rennes", "Bordeaux", "Brest"),
}
SECTORS = {
    "retail": 14, "manufacturing": 14, "healthcare": 10, "finance": 9, "logistics": 10,
    "public sector": 6, "hospitality": 8, "education": 5, "energy": 5, "technology": 12,
    "construction": 7,
}  # fmt: skip
_STEMS = (
    "Alt", "Bel", "Cor", "Dar", "Ev", "Fal", "Gal", "Hel", "Ir", "Jur", "Kor", "Lum",
    "Mar", "Nor", "Or", "Pal", "Quen", "Riv", "Sol", "Tal", "Ur", "Val", "Ver", "Zen",
)  # fmt: skip
_ENDINGS = ("a", "is", "ex", "on", "ia", "eo", "ys", "ium", "ane", "ora")
_SUFFIXES = ("SA", "SAS", "Group", "Industries", "Conseil", "Services", "& Fils", "Solutions")


class ProductKind(StrEnum):
    SOFTWARE = "software"
    HARDWARE = "hardware"
    SERVICE = "service"


@dataclass(frozen=True)
class _CatalogEntry:
    product_id: str
    name: str
    series: str
    list_price: int
    kind: ProductKind
    quantity: tuple[int, int]
    cost_ratio: float
    weight: float
    aliases: tuple[str, ...] = ()


CATALOG = (
    _CatalogEntry("PLS-ESS", "Pulse Essentials", "Pulse", 480, ProductKind.SOFTWARE, (5, 60),
                  0.22, 3.0, ("PULSE-ESS", "PLSESS")),
    _CatalogEntry("PLS-PRO", "Pulse Professional", "Pulse", 1150, ProductKind.SOFTWARE, (5, 40),
                  0.25, 3.0, ("PULSE-PRO",)),
    _CatalogEntry("PLS-ENT", "Pulse Enterprise", "Pulse", 2900, ProductKind.SOFTWARE, (10, 50),
                  0.28, 1.0, ("PULSE-ENT", "PLS-ENTERPRISE")),
    _CatalogEntry("BCN-STD", "Beacon Analytics", "Beacon", 7800, ProductKind.SOFTWARE, (1, 3),
                  0.30, 1.5),
    _CatalogEntry("BCN-ADV", "Beacon Advanced", "Beacon", 18500, ProductKind.SOFTWARE, (1, 2),
                  0.30, 0.6, ("BEACON-ADV",)),
    _CatalogEntry("FRG-100", "Forge Terminal 100", "Forge", 640, ProductKind.HARDWARE, (2, 40),
                  0.58, 2.0, ("FORGE-100", "FRG100")),
    _CatalogEntry("FRG-500", "Forge Terminal 500", "Forge", 1490, ProductKind.HARDWARE, (1, 25),
                  0.55, 1.2),
    _CatalogEntry("FRG-DCK", "Forge Dock", "Forge", 129, ProductKind.HARDWARE, (2, 60),
                  0.45, 1.0, ("FORGE-DOCK",)),
    _CatalogEntry("SVC-ONB", "Onboarding package", "Services", 2400, ProductKind.SERVICE, (1, 1),
                  0.55, 0.0),
    _CatalogEntry("SVC-TRN", "Training day", "Services", 1350, ProductKind.SERVICE, (1, 5),
                  0.60, 0.0, ("TRAINING-DAY",)),
)  # fmt: skip
_ALWAYS_SOLD = ("PLS-PRO", "FRG-100", "SVC-ONB")  # one of each kind, whatever the seed


@dataclass(frozen=True)
class RepProfile:
    """A rep and how they work."""

    rep: Rep
    skill: float  # multiplies the win probability of their deals
    pace: float  # relative share of the leads and accounts they handle
    response: float  # multiplies their lead response delays (below 1: faster)


@dataclass(frozen=True)
class Team:
    name: str
    manager: str
    region: str
    rep_ids: tuple[str, ...]


@dataclass(frozen=True)
class ProductProfile:
    """A product and how it sells."""

    product: Product
    kind: ProductKind
    quantity: tuple[int, int]  # per order line, both included
    cost_ratio: float  # unit cost / list price
    weight: float  # how often it is the main product of a deal (0: only as an add-on)
    appeal: float  # multiplies the win probability


@dataclass(frozen=True)
class AccountProfile:
    """An account, the rep who owns it, and whether it was a customer before the run."""

    account: Account
    owner: str
    customer: bool
    contract_value: Decimal  # yearly, what a churn loses


@dataclass(frozen=True)
class World:
    seed: int
    regions: tuple[str, ...]
    teams: tuple[Team, ...]
    reps: tuple[RepProfile, ...]  # active reps first, then former ones
    products: tuple[ProductProfile, ...]
    accounts: tuple[AccountProfile, ...]

    @property
    def active_reps(self) -> tuple[RepProfile, ...]:
        return tuple(profile for profile in self.reps if profile.rep.active)

    def region_of(self, rep_id: str) -> str:
        return next(p.rep.region or "" for p in self.reps if p.rep.rep_id == rep_id)


def build_world(seed: int, reps: int) -> World:
    """The floor of ``reps`` active reps for ``seed``; a few former reps come along."""
    if reps < 1:
        raise ValueError("a floor needs at least one rep")
    rng = random.Random(f"salespulse-world:{seed}")
    team_count = max(1, round(reps / TEAM_SIZE))
    regions = REGIONS[: min(rng.choice((3, 4)), team_count)]
    names = _unique_people(rng, reps + math.ceil(reps / 15) + team_count)
    managers, names = names[:team_count], names[team_count:]
    team_names = [_team_name(regions, i) for i in range(team_count)]

    profiles: list[RepProfile] = []
    members: list[list[str]] = [[] for _ in range(team_count)]
    for index, name in enumerate(names):
        rep_id = f"rep-{index + 1:03d}"
        active = index < reps
        team = index % team_count
        members[team].append(rep_id)
        rep = Rep(
            rep_id=rep_id,
            name=name,
            team=team_names[team],
            manager=managers[team],
            region=regions[team % len(regions)],
            active=active,
        )
        profiles.append(
            RepProfile(
                rep=rep,
                skill=min(max(rng.lognormvariate(0.0, 0.32), 0.45), 1.8),
                pace=rng.uniform(0.7, 1.3),
                response=min(max(rng.lognormvariate(0.0, 0.35), 0.5), 2.0),
            )
        )
    teams = tuple(
        Team(team_names[i], managers[i], regions[i % len(regions)], tuple(members[i]))
        for i in range(team_count)
    )
    working = [profile for profile in profiles if profile.rep.active]
    products = _products(rng)
    accounts = tuple(
        draw_account(rng, f"acct-{n:04d}", working, customer=rng.random() < 0.55)
        for n in range(1, max(150, reps * 8) + 1)
    )
    return World(seed, regions, teams, tuple(profiles), products, accounts)


def draw_account(
    rng: random.Random, account_id: str, reps: Sequence[RepProfile], *, customer: bool
) -> AccountProfile:
    """A new account, owned by one of ``reps`` (chosen by pace), in the owner's region."""
    owner = rng.choices(reps, weights=[rep.pace for rep in reps])[0]
    employees = int(min(max(rng.lognormvariate(math.log(180), 1.4), 3), 60_000))
    name = f"{rng.choice(_STEMS)}{rng.choice(_ENDINGS)} {rng.choice(_SUFFIXES)}"
    account = Account(
        account_id=account_id,
        name=name,
        sector=rng.choices(list(SECTORS), weights=list(SECTORS.values()))[0],
        region=owner.rep.region,
        employees=employees,
    )
    yearly = 2_000 + min(employees, 5_000) * rng.uniform(15, 45)
    return AccountProfile(account, owner.rep.rep_id, customer, Decimal(round(yearly, -2)))


def monthly_targets(
    world: World, months: Sequence[str], monthly_revenue: Decimal, currency: str
) -> tuple[Target, ...]:
    """Revenue targets for each period (a month "2024-06" or a quarter "2024-Q2"): per active
    rep, per team (its reps'), and global.

    ``monthly_revenue`` is what the whole floor is expected to book in the period; a rep's share
    follows their pace (territory), not their skill, so the best reps beat their targets.
    """
    rng = random.Random(f"salespulse-targets:{world.seed}")
    active = world.active_reps
    weights = [rep.pace * rng.uniform(0.9, 1.2) for rep in active]
    total_weight = sum(weights)
    targets: list[Target] = []
    for month in months:
        per_rep = {
            rep.rep.rep_id: _hundreds(monthly_revenue * Decimal(weight / total_weight))
            for rep, weight in zip(active, weights, strict=True)
        }
        for rep_id, amount in per_rep.items():
            targets.append(_target(TargetScope.REP, rep_id, month, amount, currency))
        team_totals = []
        for team in world.teams:
            total = sum((per_rep[r] for r in team.rep_ids if r in per_rep), Decimal(0))
            if total:
                team_totals.append(total)
                targets.append(_target(TargetScope.TEAM, team.name, month, total, currency))
        total = sum(team_totals, Decimal(0))
        targets.append(_target(TargetScope.GLOBAL, "all", month, total, currency))
    return tuple(targets)


def quarter_of(month: str) -> str:
    """ "2024-05" -> "2024-Q2"."""
    year, number = month.split("-")
    return f"{year}-Q{(int(number) - 1) // 3 + 1}"


def quarter_start(day: date) -> date:
    return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def months_from(start: date, count: int) -> list[str]:
    """``count`` months from the month of ``start``: ["2024-06", "2024-07", ...]."""
    year, month = start.year, start.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _team_name(regions: Sequence[str], index: int) -> str:
    """Teams are named after a city of their region: "Lyon", "Marseille", ... then "Lyon 2"."""
    rank, region = divmod(index, len(regions))
    cities = CITIES[regions[region]]
    name = cities[rank % len(cities)]
    return name if rank < len(cities) else f"{name} {rank // len(cities) + 1}"


def _target(scope: TargetScope, key: str, month: str, amount: Decimal, currency: str) -> Target:
    return Target(scope=scope, key=key, period=month, amount=amount, currency=currency)


def _hundreds(amount: Decimal) -> Decimal:
    return max(Decimal(100), amount.quantize(Decimal(100))).quantize(Decimal("0.01"))


def _unique_people(rng: random.Random, count: int) -> list[str]:
    pool = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
    if count > len(pool):
        pool += [f"{name} {n}" for n in range(2, count // len(pool) + 2) for name in pool]
    return rng.sample(pool, count)


def _products(rng: random.Random) -> tuple[ProductProfile, ...]:
    optional = [entry for entry in CATALOG if entry.product_id not in _ALWAYS_SOLD]
    chosen = {entry.product_id for entry in rng.sample(optional, rng.randint(3, len(optional)))}
    profiles = []
    for entry in CATALOG:
        if entry.product_id not in chosen and entry.product_id not in _ALWAYS_SOLD:
            continue
        digits = -1 if entry.list_price < 1000 else -2
        price = Decimal(round(entry.list_price * rng.uniform(0.92, 1.08), digits))
        product = Product(
            product_id=entry.product_id,
            name=entry.name,
            series=entry.series,
            list_price=price.quantize(Decimal("0.01")),
            aliases=list(entry.aliases),
        )
        appeal = rng.uniform(0.85, 1.15)
        profiles.append(
            ProductProfile(
                product, entry.kind, entry.quantity, entry.cost_ratio, entry.weight, appeal
            )
        )
    return tuple(profiles)
