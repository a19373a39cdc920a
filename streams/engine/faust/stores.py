"""RocksDB stores with one memory budget for the whole worker (Faust glue).

faust opens one RocksDB database per table and partition, each with its own block cache and
memtables: a worker with 7 tables on 4 partitions has 28 stores, and its RocksDB memory is 28
times each store's limits. Those limits are reached as the state grows: in the bench's
200,000-event backlog (2026-12-07) the stores' block caches held 88 MB and their memtables
33-48 MB at the end, still growing, out of 28 x (8 + 8 + 8) MB allowed; more partitions
would have allowed more.

Here every store of the worker shares one LRU block cache of ``budget_bytes`` and one write
buffer manager that charges the memtables to that cache and, once they pass half of it,
flushes the memtable of the store being written: one limit for the data blocks however many
tables and partitions the worker holds, and a soft one for the memtables (a store written no
more keeps its memtable until its next write). What does not fit is read from disk (the OS
page cache), which is what a cache miss already did.
"""

from __future__ import annotations

from typing import Any

import rocksdict
from faust.stores import STORES
from faust.stores import rocksdb as faust_rocksdb

SCHEME = "salespulse-rocksdb"
"""The store URL scheme of these stores (``store_url``)."""

BUDGET_OPTION = "memory_budget_bytes"
"""The table option (``app.Table(options=...)``) giving the worker's RocksDB budget."""


class SharedMemory:
    """One block cache and one write buffer manager, shared by the stores given them."""

    def __init__(self, budget_bytes: int) -> None:
        self.cache = rocksdict.Cache(budget_bytes)
        self.buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            budget_bytes // 2, False, self.cache
        )


_BUDGETS: dict[int, SharedMemory] = {}


def shared_memory(budget_bytes: int) -> SharedMemory:
    """The process's shared memory of that size (one per worker: one budget setting)."""
    if budget_bytes not in _BUDGETS:
        _BUDGETS[budget_bytes] = SharedMemory(budget_bytes)
    return _BUDGETS[budget_bytes]


class SharedMemoryOptions(faust_rocksdb.RocksDBOptions):
    """faust's RocksDB options, with the block cache and memtables of ``shared``."""

    def __init__(self, shared: SharedMemory, **options: Any) -> None:
        super().__init__(**options)
        self.shared = shared

    def as_options(self) -> Any:
        options = super().as_options()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(self.shared.cache)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.shared.buffers)
        return options


class Store(faust_rocksdb.Store):
    """faust's RocksDB store (rocksdict driver), its memory in the worker's shared budget
    (the table's ``memory_budget_bytes`` option; without it, faust's own per-store limits)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        budget = self.rocksdb_options.extra_options.get(BUDGET_OPTION)
        if budget is None:
            return
        if not self.use_rocksdict:
            raise RuntimeError(
                f"{SCHEME}:// needs faust's rocksdict driver: pip install "
                "'faust-streaming[rocksdict]' (pyproject.toml has it)"
            )
        options = {
            key: value for key, value in (self.options or {}).items() if key != BUDGET_OPTION
        }
        self.rocksdb_options = SharedMemoryOptions(
            shared_memory(int(budget)), **options, use_rocksdict=True
        )


def store_url(url: str) -> str:
    """The URL faust opens the tables with: a ``rocksdb://`` store shares one budget
    (``Store``); any other (``memory://``) is faust's own."""
    STORES.aliases[SCHEME] = f"{__name__}:Store"
    if url.startswith("rocksdb://"):
        return SCHEME + url[len("rocksdb") :]
    return url
