"""A window's cells found in a RocksDB store by key prefix (streams/engine/faust/tables.py):
what the publisher reads when a window passes its retention, instead of a heap entry per
cell kept in memory for days."""

from __future__ import annotations

from pathlib import Path

import orjson
import rocksdict

from streams.engine.faust.tables import prefixed_keys
from streams.kpi.cells import cell_key, window_prefix

OFFSET_KEY = b"__faust\0offset__"


def test_the_keys_of_one_window_and_only_them(tmp_path: Path) -> None:
    db = rocksdict.Rdict(str(tmp_path / "store"))
    try:
        window = [
            cell_key("minute", 10, "rep", "r-1"),
            cell_key("minute", 10, "region", "Île-de-France"),  # not ASCII: UTF-8 in the key
            cell_key("minute", 10, "team#reps", "Nord#7"),  # a rep shard of the window
        ]
        others = [
            cell_key("minute", 100, "rep", "r-1"),  # a longer start, same digits first
            cell_key("minute", 1, "rep", "r-1"),
            cell_key("day", 10, "rep", "r-1"),
            cell_key("minutes", 10, "rep", "r-1"),  # not a kind: a longer name, same start
        ]
        for key in [*others, *window]:
            db[orjson.dumps(key)] = orjson.dumps({"q": 0})
        db[OFFSET_KEY] = b"42"  # faust's own key in every store
        assert prefixed_keys(db, window_prefix("minute", 10)) == sorted(window, key=orjson.dumps)
        assert prefixed_keys(db, window_prefix("minute", 11)) == []
        assert prefixed_keys(db, window_prefix("quarter", 10)) == []
    finally:
        db.close()
