"""streams.kpi.catalog matches the product definition in ../shared/design/kpi-catalog.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.kpi.catalog import ALL_DIMENSIONS, KPIS, Shape, unit_of

CATALOG = Path(__file__).resolve().parents[3].parent / "shared" / "design" / "kpi-catalog.md"


def catalogue_ids() -> set[str]:
    """KPI ids in the tables of the KPI sections of the catalogue."""
    text = CATALOG.read_text()
    kpi_part = text[text.index("## The KPIs") : text.index("## Outputs")]
    ids: set[str] = set()
    for line in kpi_part.splitlines():
        if match := re.match(r"^\| ((?:`[a-z_0-9]+`(?:, )?)+) \|", line):
            ids |= set(re.findall(r"`([a-z_0-9]+)`", match.group(1)))
        # "`<id>_p90`" rows and "`target_pacing` = ..." are defined inside other rows
        if "avg and p90" in line and (match := re.match(r"^\| `([a-z_]+)`", line)):
            ids.add(f"{match.group(1)}_p90")
        ids |= set(re.findall(r"`(target_pacing)`", line))
    return ids


@pytest.mark.skipif(not CATALOG.is_file(), reason=f"the product catalogue is not at {CATALOG}")
def test_every_catalogue_kpi_is_defined_and_nothing_else() -> None:
    assert set(KPIS) == catalogue_ids()


def test_definitions_are_usable() -> None:
    for kpi in KPIS.values():
        assert kpi.dimensions[0] == "global", kpi.id
        assert set(kpi.dimensions) <= set(ALL_DIMENSIONS), kpi.id
        assert kpi.description.endswith("."), kpi.id
        if kpi.shape is Shape.P90:
            assert kpi.id.endswith("_p90")
            assert kpi.id.removesuffix("_p90") in KPIS
        if kpi.unit == "ratio":
            assert kpi.shape is Shape.RATIO, kpi.id


def test_money_kpis_state_the_configured_currency_and_others_their_own_unit() -> None:
    assert unit_of("revenue", "CHF") == "CHF"
    assert unit_of("net_revenue", "USD") == "USD"
    assert unit_of("win_rate", "CHF") == "ratio"
    assert unit_of("calls", "CHF") == "count"
