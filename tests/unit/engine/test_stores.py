"""The worker's RocksDB stores share one memory budget (streams/engine/faust/stores.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import rocksdict
from faust.stores import by_url
from faust.stores.rocksdb import RocksDBOptions

from streams.engine.faust import stores

MB = 1024**2
STORES = 12
PER_STORE = 3 * MB + MB // 2  # under one memtable (4 MB): nothing flushes on its own
WRITE_BUFFERS = {"write_buffer_size": 4 * MB, "max_write_buffer_number": 2}


def memtables(dbs: list[Any]) -> int:
    return sum(db.property_int_value("rocksdb.cur-size-all-mem-tables") for db in dbs)


def fill(options: Any, tmp: Path) -> list[Any]:
    """Every store written in turn, as a flush writes every table of a stage."""
    dbs = [options.open(tmp / f"store-{i}") for i in range(STORES)]
    for n in range(PER_STORE // 1024):
        for i, db in enumerate(dbs):
            db[f"{i}-{n:08d}".encode()] = os.urandom(1024)
    return dbs


def settle(dbs: list[Any], limit: int) -> int:
    """Memtable bytes once background flushes are done (or 10 s have passed)."""
    deadline = time.monotonic() + 10
    while memtables(dbs) > limit and time.monotonic() < deadline:
        time.sleep(0.05)
    return memtables(dbs)


def close(dbs: list[Any]) -> None:
    for db in dbs:
        db.close()


def test_faust_options_give_each_store_its_own_memtables(tmp_path: Path) -> None:
    # What the budget is for: with faust's per-store options, 4 stores hold 4 memtables.
    dbs = fill(RocksDBOptions(**WRITE_BUFFERS, use_rocksdict=True), tmp_path)
    try:
        assert memtables(dbs) > STORES * PER_STORE * 0.9 > 2 * 8 * MB
    finally:
        close(dbs)


def test_the_stores_of_a_budget_keep_their_memtables_under_it(tmp_path: Path) -> None:
    budget = 8 * MB
    shared = stores.SharedMemory(budget)
    dbs = fill(stores.SharedMemoryOptions(shared, **WRITE_BUFFERS, use_rocksdict=True), tmp_path)
    try:
        # The write buffer manager flushes the store being written once the memtables pass
        # about half the budget: a soft limit (a flush is chosen at a write, in the store
        # written, and a store written no more keeps its memtable), measured at 3-18 MB
        # here, one limit for all the stores where faust's options hold 12 x 3.5 MB.
        half = STORES * PER_STORE // 2
        assert settle(dbs, half) <= half
    finally:
        close(dbs)


def test_the_stores_of_a_budget_read_through_one_cache(tmp_path: Path) -> None:
    # The memtables' charge left out of this cache (a manager of its own): the cache's usage
    # is the data blocks read.
    shared: Any = SimpleNamespace(
        cache=rocksdict.Cache(8 * MB), buffers=rocksdict.WriteBufferManager(64 * MB, False)
    )
    options = stores.SharedMemoryOptions(shared, **WRITE_BUFFERS, use_rocksdict=True)
    dbs = [options.open(tmp_path / f"store-{i}") for i in range(3)]
    try:
        for i, db in enumerate(dbs):
            for n in range(256):
                db[f"{i}-{n:04d}".encode()] = os.urandom(1024)
            db.flush()  # on disk: a read goes through the block cache
        before = shared.cache.get_usage()
        for i, db in enumerate(dbs):
            assert all(len(db[f"{i}-{n:04d}".encode()]) == 1024 for n in range(256))
        assert shared.cache.get_usage() - before >= 3 * 256 * 1024
    finally:
        close(dbs)


def test_one_budget_per_process_and_size() -> None:
    assert stores.shared_memory(16 * MB) is stores.shared_memory(16 * MB)
    assert stores.shared_memory(16 * MB) is not stores.shared_memory(32 * MB)


def test_a_rocksdb_url_opens_the_shared_store_and_others_stay_faust_s() -> None:
    url = stores.store_url("rocksdb://")
    assert url == f"{stores.SCHEME}://"
    assert by_url(url) is stores.Store
    assert stores.store_url("rocksdb:///var/tables") == f"{stores.SCHEME}:///var/tables"
    assert stores.store_url("memory://") == "memory://"
