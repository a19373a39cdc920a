"""An entity with no event for the horizon (event time) is swept from the entity stage's
table; one with recent events stays, even when its summary holds only old items."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import rocksdict

from streams.engine.entity_stage import EntityStage, idle_entity
from streams.engine.sweep import Sweep
from streams.engine.writeback import WriteBack
from streams.kpi.windows import CellWindows

DAY = 86_400_000
T0 = 1_774_000_000_000
HORIZON = 365 * DAY


def test_idle_after_the_horizon_from_the_latest_event() -> None:
    old_item = {"t": T0, "x": "order.placed"}
    entity = {"h": [old_item], "m": 9, "l": T0 + 200 * DAY}  # later orders, not kept
    assert not idle_entity(entity, T0 + 200 * DAY + HORIZON, HORIZON)  # the horizon itself
    assert idle_entity(entity, T0 + 200 * DAY + HORIZON + 1, HORIZON)
    # Written before ``l`` was kept: its latest item's time.
    legacy = {"h": [old_item, {"t": T0 + 5 * DAY, "x": "lead.created"}], "m": 3}
    assert not idle_entity(legacy, T0 + 5 * DAY + HORIZON, HORIZON)
    assert idle_entity(legacy, T0 + 5 * DAY + HORIZON + 1, HORIZON)
    assert not idle_entity({"h": [], "m": 0}, T0 + 10 * HORIZON, HORIZON)  # nothing to judge


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Any]:
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    opened = rocksdict.Rdict(str(tmp_path / "p0"), options=options)
    yield opened
    opened.close()


def table_on(db: Any) -> Any:
    """A table of partition 0 on ``db`` (a RocksDB store, as faust opens it), as the
    stage and the sweep read it."""

    def get(key: str) -> Any:
        raw = db.get(orjson.dumps(key))
        return None if raw is None else orjson.loads(raw)

    return SimpleNamespace(data=SimpleNamespace(_dbs={0: db}), get=get)


def order(n: int, at_ms: int, o: int) -> dict[str, Any]:
    return {
        "t": at_ms, "o": o, "id": f"o{n}", "x": "order.placed", "late": [],
        "p": [["global", "all"]], "pv": {"p1": 100}, "a": 100, "q": False,
    }  # fmt: skip


def test_an_account_ordering_again_is_kept_and_swept_a_horizon_after_its_last_order(
    db: Any,
) -> None:
    """Its second order is a repeat purchase, left out of its summary (only the first order
    can still change its numbers): the summary's items are a year old when it orders, yet
    it is kept until a horizon after that second order."""
    stage = EntityStage.__new__(EntityStage)  # only what entity summaries use
    stage.entities = WriteBack(table_on(db))
    stage.windows = CellWindows(ZoneInfo("Europe/Paris"))
    stage.committed = lambda p: 1_000  # both orders committed: none redelivered
    stage.essentials = {}
    stage.entity_horizon_ms = HORIZON
    sweep = Sweep(stage.entities, stage._entity_idle)

    def flush() -> None:  # the flush's write_all, to the store the sweep reads
        for key, value in stage.entities.dirty.pop(0, {}).items():
            if value is None:
                db.delete(orjson.dumps(key))
            else:
                db.put(orjson.dumps(key), orjson.dumps(value))

    second = T0 + 300 * DAY
    stage._entity_delta(0, "account", "acct-1", order(1, T0, 10), 10)
    stage._entity_delta(0, "account", "acct-1", order(2, second, 11), 11)
    flush()
    stored = orjson.loads(db[orjson.dumps("account:acct-1")])
    assert [item["t"] for item in stored["h"]] == [T0]  # the repeat order is not kept
    assert stored["l"] == second

    assert sweep.step(0, second + HORIZON) == 0  # a year past the first order: kept
    flush()
    assert orjson.dumps("account:acct-1") in db
    sweep.passes.clear()  # a new pass at once (the sweep passes once a day of event time)
    assert sweep.step(0, second + HORIZON + DAY) == 1
    flush()
    assert orjson.dumps("account:acct-1") not in db


def lead_item(n: int, event_type: str, at_ms: int, o: int) -> dict[str, Any]:
    return {
        "t": at_ms, "o": o, "id": f"l{n}", "x": event_type, "late": [],
        "p": [["global", "all"], ["rep", "ana"]],
    }  # fmt: skip


def test_a_lead_forgotten_while_waiting_leaves_the_live_cells(db: Any, tmp_path: Path) -> None:
    """Two leads wait; one is then touched. Past the horizon both are swept: the one still
    waiting leaves ``open_leads`` of the live cells (leads_waiting), in the flush that
    deletes it, and the live cells are sent again; the windows keep their values."""
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    cells_db = rocksdict.Rdict(str(tmp_path / "cells"), options=options)
    try:
        stage = EntityStage.__new__(EntityStage)
        stage.entities, stage.cells = WriteBack(table_on(db)), WriteBack(table_on(cells_db))
        stage.windows = CellWindows(ZoneInfo("Europe/Paris"))
        stage.committed = lambda p: 1_000
        stage.essentials = {}
        stage.entity_horizon_ms = HORIZON
        stage.dirty = {}
        sweep = Sweep(stage.entities, stage._entity_idle, stage._forget_entity)

        def apply(role: str, key: str, item: dict[str, Any]) -> None:
            staged: dict[str, Any] = {}
            stage._stage_cells(
                0, item["o"], stage._entity_delta(0, role, key, item, item["o"]), staged
            )
            stage._write_cells(0, staged)

        def flush() -> None:
            for writeback, store in ((stage.entities, db), (stage.cells, cells_db)):
                for key, value in writeback.dirty.pop(0, {}).items():
                    if value is None:
                        store.delete(orjson.dumps(key))
                    else:
                        store.put(orjson.dumps(key), orjson.dumps(value))

        apply("lead", "lead-1", lead_item(1, "lead.created", T0, 10))
        apply("lead", "lead-2", lead_item(2, "lead.created", T0 + DAY, 11))
        apply("lead", "lead-2", lead_item(3, "call.logged", T0 + 2 * DAY, 12))
        flush()
        live = "0|live|0|global|all"
        assert orjson.loads(cells_db[orjson.dumps(live)])["c"] == {"open_leads": {str(T0): 1}}
        stage.dirty = {}

        assert sweep.step(0, T0 + 2 * DAY + HORIZON + 1) == 2  # both leads idle
        assert stage.dirty == {0: {"live|0|global|all", "live|0|rep|ana"}}
        flush()
        # empty, its mark unchanged (the last item applied to it: lead-2's touch)
        assert orjson.loads(cells_db[orjson.dumps(live)]) == {"c": {}, "m": 12}
        # lead-2's response time stays in its day's cells
        response = [
            orjson.loads(value)["c"] for key, value in cells_db.items()
            if orjson.loads(key).startswith("0|day|") and "resp_n" in orjson.loads(value)["c"]
        ]  # fmt: skip
        assert [cell["resp_n"] for cell in response] == [1, 1]  # global and rep
    finally:
        cells_db.close()
