"""A worker's local tables (RocksDB) are never ahead of their changelogs, even when it is
killed in the middle of a flush: every value a store holds is one its changelog topic has.

A store ahead of its changelog is right for the worker that wrote it, and wrong for every
worker that restores the partition from the changelog later (a rebalance, a lost disk):
the values the changelog never got are gone there, the seen ids with them (a copy of an
event sent again would count twice). Until 2026-12-06 a flush wrote its stores before its
changelog records reached Kafka; the worker here dies (as kill -9) at its first flush that
writes seen ids, before it sends their changelog records
(tests/integration/faulty_worker.py), and a worker started again on the same disk
finishes the stream.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson
from rocksdict import AccessType, Options, Rdict

from streams.settings import Settings
from streams.topics import ensure_topics
from tests.integration.test_ingest import order, revenue
from tests.kafka_tools import kcat, kcat_produce, needs_kcat
from tests.support import eventually, running_worker

pytestmark = needs_kcat

OFFSET_KEY = b"__faust\0offset__"  # faust's persisted offset, in each partition's store


def stores(settings: Settings) -> dict[tuple[str, int], dict[bytes, bytes]]:
    """Every key and value of each table partition's RocksDB store, by (table, partition)."""
    out = {}
    for path in sorted((settings.worker_data_dir / "v1" / "tables").glob("*.db")):
        table, _, partition = path.name.removesuffix(".db").rpartition("-")
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            out[(table, int(partition))] = {k: v for k, v in db.items() if k != OFFSET_KEY}
        finally:
            db.close()
    return out


def changelog(settings: Settings, table: str) -> dict[tuple[int, bytes], set[bytes]]:
    """Every value each key of ``table``'s changelog topic has had, by (partition, key)."""
    import subprocess

    topic = f"{settings.app_id}-{table}-changelog"
    out = subprocess.run(
        [*kcat(settings), "-t", topic, "-C", "-e", "-J", "-o", "beginning", "-q"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    values: dict[tuple[int, bytes], set[bytes]] = {}
    for line in out.stdout.splitlines():
        if line.strip():
            record = orjson.loads(line)
            if record["payload"] is not None:
                key = (int(record["partition"]), str(record["key"]).encode())
                values.setdefault(key, set()).add(str(record["payload"]).encode())
    return values


def test_a_worker_killed_before_its_changelog_records_leaves_no_store_ahead_of_them(
    tmp_path: Path, settings: Settings
) -> None:
    asyncio.run(ensure_topics(settings))
    now = datetime.now(settings.zone)
    dying = [sys.executable, "-m", "tests.integration.faulty_worker"]
    with running_worker(settings, tmp_path / "killed.log", [*dying, "killed-before-changelog",
                                                             "entity-seen"]) as process:  # fmt: skip
        for n, amount in enumerate(("10.00", "5.50", "2.25")):
            payload = orjson.dumps(order("rep-a", amount, now, account_id=f"acct-{n}"))
            kcat_produce(settings, "sales.orders", f"acct-{n}", payload)
        eventually(lambda: not process.alive(), timeout=120)  # died at that flush

    with running_worker(settings, tmp_path / "again.log"):  # the same disk, started again
        eventually(lambda: revenue(settings, now) == {"rep-a": Decimal("17.75")})
    local = stores(settings)  # stopped: its stores can be opened
    seen = {key for (table, _), keys in local.items() if table == "entity-seen" for key in keys}
    assert len(seen) >= 3, f"expected the seen ids of the 3 orders in the stores: {seen}"
    ahead = []
    for (table, partition), keys in local.items():
        recorded = changelog(settings, table)
        ahead += [
            f"{table}[{partition}] {key!r}"
            for key, value in keys.items()
            if value not in recorded.get((partition, key), set())
        ]
    assert not ahead, f"store values their changelog never had: {ahead[:10]}"
