"""streams.ingest.enrich: dimensions from the event, then from reference data; misses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson

from streams.contracts.events import OrderLine, OrderPlaced
from streams.contracts.reference import Account, Product, Rep
from streams.ingest.enrich import dimensions
from streams.ingest.reference_cache import ReferenceCache


def cache() -> ReferenceCache:
    ref = ReferenceCache()
    for kind, key, record in (
        ("reps", "ana", Rep(rep_id="ana", name="Ana", team="North", region="Paris")),
        ("products", "GTX Pro", Product(product_id="GTX Pro", name="GTX Pro", aliases=["GTXPro"])),
        ("accounts", "acme", Account(account_id="acme", sector="technology", region="Lyon")),
    ):
        ref.apply(kind, key, record.model_dump_json().encode())
    return ref


def order(rep: str, account: str, products: list[str]) -> OrderPlaced:
    return OrderPlaced(
        event_id="e", type="order.placed", occurred_at=datetime(2026, 1, 5, tzinfo=UTC),
        source="t", order_id="o", account_id=account, rep_id=rep, amount=Decimal(10),
        currency="EUR",
        lines=[OrderLine(product_id=p, quantity=1, unit_price=Decimal(5)) for p in products],
    )  # fmt: skip


def test_known_references_give_team_region_sector_and_canonical_products() -> None:
    dims = dimensions(order("ana", "acme", ["GTXPro", "GTX Pro"]), cache())
    assert (dims.rep, dims.team, dims.region, dims.sector) == (
        "ana",
        "North",
        "Paris",
        "technology",
    )
    assert dims.products == ("GTX Pro",)  # the alias and the id are one product
    assert dims.misses == ()


def test_unknown_references_count_under_raw_keys_and_report_misses() -> None:
    dims = dimensions(order("ghost", "nobody", ["mystery"]), cache())
    assert dims.rep == "ghost"
    assert dims.team is None
    assert dims.products == ("mystery",)
    assert sorted(dims.misses) == ["account", "product", "rep"]


def test_tombstone_removes_a_reference() -> None:
    ref = cache()
    ref.apply("reps", "ana", None)
    assert dimensions(order("ana", "acme", []), ref).misses == ("rep",)


def test_invalid_reference_record_is_counted_not_fatal() -> None:
    ref = cache()
    ref.apply("reps", "bad", b'{"rep_id": ""}')
    assert ref.invalid_records == 1
    assert ref.rep("bad") is None
    assert ref.rep("ana") is not None


def test_targets_are_found_by_scope_key_and_period_as_they_change() -> None:
    ref = ReferenceCache()

    def target(key: str, period: str, amount: str) -> bytes:
        return orjson.dumps(
            {"scope": "rep", "key": key, "period": period, "amount": amount, "currency": "EUR"}
        )

    ref.apply("targets", "rep:ana:2026-03", target("ana", "2026-03", "1000.50"))
    ref.apply("targets", "rep:bo:2026-Q1", target("bo", "2026-Q1", "9000"))
    assert ref.target_cents("rep", "ana", "2026-03") == 100_050
    assert ref.target_cents("rep", "bo", "2026-Q1") == 900_000
    assert ref.target_cents("team", "ana", "2026-03") is None  # another scope
    ref.apply("targets", "rep:ana:2026-03", target("ana", "2026-03", "2000"))  # revised
    assert ref.target_cents("rep", "ana", "2026-03") == 200_000
    ref.apply("targets", "rep:ana:2026-03", None)  # deleted
    assert ref.target_cents("rep", "ana", "2026-03") is None
    assert ref.target_cents("rep", "bo", "2026-Q1") == 900_000
