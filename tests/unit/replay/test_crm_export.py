"""The shipped mapping on the real CRM export: exact counts, computed here independently."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from streams.contracts.events import EVENT_MODELS
from streams.ingest.validate import Limits
from streams.replay.mapping import load_mapping
from streams.replay.transform import Output, Skip, files_of, transform_file

REPO = Path(__file__).resolve().parents[3]
EXPORT = REPO.parent / "shared" / "datasets" / "crm-sales-opportunities"
MAPPING = REPO / "examples" / "crm-sales-opportunities" / "mapping.yaml"

pytestmark = pytest.mark.skipif(
    not (EXPORT / "sales_pipeline.csv").is_file(),
    reason=f"the CRM export is not at {EXPORT} (it is read from ../shared, never copied)",
)


def rows(name: str) -> list[dict[str, str]]:
    with (EXPORT / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def expected_counts() -> Counter[tuple[str, str]]:
    pipeline = rows("sales_pipeline.csv")
    return Counter({
        ("ref.reps", "ref.reps"): len(rows("sales_teams.csv")),
        ("ref.products", "ref.products"): len(rows("products.csv")),
        ("ref.accounts", "ref.accounts"): len(rows("accounts.csv")),
        ("sales.opportunities", "opportunity.opened"): sum(1 for r in pipeline if r["engage_date"]),
        ("sales.orders", "order.placed"): sum(1 for r in pipeline if r["deal_stage"] == "Won"),
        ("sales.opportunities", "opportunity.lost"): sum(1 for r in pipeline if r["deal_stage"] == "Lost"),
    })  # fmt: skip


def replay() -> list[Output | Skip]:
    mapping = load_mapping(MAPPING)
    return [
        item
        for source, path in files_of(mapping, [EXPORT])
        for _line, item in transform_file(
            mapping, source, path, ZoneInfo("Europe/Paris"), Limits(65536, "EUR", {})
        )
    ]


def test_exact_counts_per_topic_and_type() -> None:
    items = replay()
    got = Counter((i.topic, i.label) for i in items if isinstance(i, Output))
    assert got == expected_counts()
    skipped = Counter(i.reason for i in items if isinstance(i, Skip))
    no_date = sum(1 for r in rows("sales_pipeline.csv") if not r["engage_date"])
    assert skipped == Counter({"engage_date is empty": no_date})
    print(dict(got), dict(skipped))


def test_quirks_of_the_real_data_are_handled() -> None:
    items = [i for i in replay() if isinstance(i, Output)]
    products = {i.value.get("product_id") for i in items if i.label == "opportunity.opened"}
    assert "GTXPro" not in products
    assert "GTX Pro" in products
    sectors = {i.value["sector"] for i in items if i.label == "ref.accounts"}
    assert "technolgy" not in sectors
    assert "technology" in sectors
    catalogue = next(i for i in items if i.label == "ref.products" and i.key == "GTX Pro")
    assert catalogue.value["aliases"] == ["GTXPro"]
    engaging_without_account = [
        i for i in items if i.label == "opportunity.opened" and "account_id" not in i.value
    ]
    assert engaging_without_account  # counted, keyed by the opportunity
    assert all(i.key == i.value["opportunity_id"] for i in engaging_without_account)


def test_every_event_is_valid_and_a_second_replay_gives_the_same_ids() -> None:
    first = [i for i in replay() if isinstance(i, Output)]
    for item in first:
        if item.label in EVENT_MODELS:
            EVENT_MODELS[item.label].model_validate(item.value)
    ids = [i.value["event_id"] for i in first if "event_id" in i.value]
    assert len(ids) == len(set(ids))
    assert ids == [
        i.value["event_id"] for i in replay() if isinstance(i, Output) and "event_id" in i.value
    ]
