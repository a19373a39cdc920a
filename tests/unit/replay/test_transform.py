"""streams.replay: mapping expressions, normalisation, skips, local dates, stable ids."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from streams.ingest.validate import Limits
from streams.replay.mapping import MappingError, load_mapping
from streams.replay.transform import (
    Output,
    Skip,
    files_of,
    in_replay_order,
    local_time,
    transform_file,
)

PARIS = ZoneInfo("Europe/Paris")
LIMITS = Limits(65536, "EUR", {})

MAPPING: dict[str, Any] = {
    "name": "shop",
    "constants": {"currency": "EUR"},
    "sources": [
        {
            "file": "orders*.csv",
            "normalise": {"product": {"GTXPro": "GTX Pro"}},
            "records": [
                {
                    "event": "order.placed",
                    "when": {"status": ["paid", "shipped"]},
                    "require": ["day"],
                    "id": "{order}",
                    "occurred_at": "{day}",
                    "key": ["{account}", "{order}"],
                    "fields": {
                        "order_id": "ord-{order}",
                        "account_id": "{account}",
                        "rep_id": "{seller}",
                        "amount": "{total}",
                        "currency": "{const.currency}",
                        "channel": {"lookup": {"W": "web", "P": "partner"}, "from": "{via}",
                                    "default": "other"},
                        "lines": [{"product_id": "{product}", "quantity": 1, "unit_price": "{total}"}],
                    },
                },
            ],
        }
    ],
}  # fmt: skip

CSV = """order,account,seller,total,day,status,product,via
1,acme,ana,100.50,2026-10-25,paid,GTXPro,W
2,acme,ana,20,2026-03-29,shipped,MG,P
3,bolt,bob,5,,paid,MG,W
4,bolt,bob,7,2026-01-02,cancelled,MG,W
5,,bob,9,2026-01-03,paid,MG,X
6,bolt,bob,-1,2026-01-04,paid,MG,W
7,bolt,bob,3,2026-01-05T23:30:00,paid,MG,W
"""


def run(tmp_path: Path, mapping: dict[str, Any] = MAPPING, text: str = CSV) -> list[Output | Skip]:
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    (tmp_path / "orders-2026.csv").write_text(text)
    loaded = load_mapping(tmp_path / "mapping.yaml")
    return [
        item
        for source, path in files_of(loaded, [tmp_path])
        for _line, item in transform_file(loaded, source, path, PARIS, LIMITS)
    ]


def test_rows_become_valid_events_or_skips_with_reasons(tmp_path: Path) -> None:
    items = run(tmp_path)
    sent = [i for i in items if isinstance(i, Output)]
    skips = {i.where: i.reason for i in items if isinstance(i, Skip)}
    assert [o.value["order_id"] for o in sent] == ["ord-1", "ord-2", "ord-7"]  # 4: not paid
    first = sent[0].value
    assert first["occurred_at"] == "2026-10-25T00:00:00+02:00"  # local midnight, summer time
    assert sent[1].value["occurred_at"] == "2026-03-29T00:00:00+01:00"  # DST day, winter
    assert sent[2].value["occurred_at"] == "2026-01-05T23:30:00+01:00"  # naive datetime: local
    assert first["lines"][0]["product_id"] == "GTX Pro"  # normalised
    assert (first["channel"], sent[1].value["channel"]) == ("web", "partner")
    assert first["amount"] == "100.50"
    assert sent[0].key == "acme"
    assert skips["orders-2026.csv line 4"] == "day is empty"
    assert skips["orders-2026.csv line 6"].startswith("missing_field")  # no account: required
    assert skips["orders-2026.csv line 7"].startswith("invalid_value")  # negative amount
    assert len(skips) == 3


def test_event_ids_are_stable_and_distinct(tmp_path: Path) -> None:
    first = [i.value["event_id"] for i in run(tmp_path) if isinstance(i, Output)]
    again = [i.value["event_id"] for i in run(tmp_path) if isinstance(i, Output)]
    assert first == again
    assert len(set(first)) == len(first)
    renamed = {**MAPPING, "name": "shop-2"}
    other = [i.value["event_id"] for i in run(tmp_path, renamed) if isinstance(i, Output)]
    assert not set(other) & set(first)  # ids belong to the mapping


def test_unknown_column_names_the_column_and_the_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"orders-2026.csv line 2: no column 'seller'"):
        run(tmp_path, text=CSV.replace("seller", "vendor"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event": "order.won"}, "unknown event type 'order.won'"),
        ({"id": None}, "`id`, `occurred_at` and `key` are required"),
        ({"reference": "reps"}, "either `reference: KIND` or `event: TYPE`"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_mappings_are_refused_with_the_reason(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    rule = {**MAPPING["sources"][0]["records"][0], **change}
    rule = {k: v for k, v in rule.items() if v is not None}
    mapping = {**MAPPING, "sources": [{**MAPPING["sources"][0], "records": [rule]}]}
    with pytest.raises(MappingError, match=message):
        run(tmp_path, mapping)


def test_reference_records_and_their_keys(tmp_path: Path) -> None:
    mapping = {
        "name": "team",
        "sources": [{"file": "reps.csv", "records": [{"reference": "reps", "fields": {
            "rep_id": "{agent}", "name": "{agent}", "team": "{manager}", "region": "{office}"}}]}],
    }  # fmt: skip
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    (tmp_path / "reps.csv").write_text("agent,manager,office\nAna,Zoe,Central\nBob,,East\n")
    loaded = load_mapping(tmp_path / "mapping.yaml")
    items = [
        i
        for s, p in files_of(loaded, [tmp_path])
        for _, i in transform_file(loaded, s, p, PARIS, LIMITS)
    ]
    assert [(i.topic, i.key, i.value.get("team")) for i in items if isinstance(i, Output)] == [
        ("ref.reps", "Ana", "Zoe"), ("ref.reps", "Bob", None),
    ]  # fmt: skip


def test_naive_time_in_the_spring_forward_gap_moves_to_the_real_time() -> None:
    moment = local_time("2017-03-26T02:30:00", PARIS)
    assert moment.isoformat() == "2017-03-26T03:30:00+02:00"
    assert local_time("2017-10-29T02:30:00+01:00", PARIS).utcoffset() == timedelta(hours=1)


def test_replay_order_is_references_then_events_by_event_time() -> None:
    def event(at: str, label: str) -> Output:
        return Output("sales.orders", "k", {"occurred_at": at}, label)

    reference = Output("ref.reps", "ana", {"rep_id": "ana"}, "ref.reps")
    items: list[Output | Skip] = [
        event("2017-03-01T00:00:00+01:00", "late-dated row"),
        reference,
        event("2016-10-20T00:00:00+02:00", "early"),
        Skip("x line 2", "order.placed", "day is empty"),
        event("2016-10-20T00:00:00+02:00", "early, second"),
    ]
    ordered = in_replay_order(items)
    assert [getattr(i, "label", None) for i in ordered] == [
        "ref.reps", "order.placed", "early", "early, second", "late-dated row",
    ]  # fmt: skip
