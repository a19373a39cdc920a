"""The CRM export replayed into a fresh worker: seconds until every window is final.

Like tests/integration/kpi/test_reference_crm.py: ``salespulse replay --mapping
examples/crm-sales-opportunities/mapping.yaml <export>`` sends the export (2016-2017) before
the worker starts, with calendar retention at 20 years (the export is older than the default
3 years) and ``idle_close_s`` 10 s (once the input is idle that long, stream time moves to wall
time and every window closes). Settled, as ``tests/kpi_tools.py`` ``settled`` decides it: every
non-live KPI record in Redis is final and nothing changes for a quiet period; here that is only
asked of Redis once the group has committed everything (bench.progress), never of the worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bench.stack import settings_env
from streams.connections.redis import redis_client
from streams.serving.read_model import closed_through
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[1]
EXPORT = REPO.parent / "shared" / "datasets" / "crm-sales-opportunities"
MAPPING = REPO / "examples" / "crm-sales-opportunities" / "mapping.yaml"
TWENTY_YEARS_S = 20 * 365 * 86_400.0
IDLE_CLOSE_S = 10.0


def absent_reason(export: Path = EXPORT) -> str | None:
    """Why the CRM part cannot run, or None."""
    if not (export / "sales_pipeline.csv").is_file():
        return f"the CRM export is not at {export} (sales_pipeline.csv missing)"
    if not MAPPING.is_file():
        return f"the mapping {MAPPING} is missing"
    return None


def crm_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"retention_calendar_s": TWENTY_YEARS_S, "idle_close_s": IDLE_CLOSE_S}
    )


def replay(settings: Settings, log: Path, limit_s: float) -> float:
    """Run ``salespulse replay`` to the end; its seconds. Raises on failure."""
    salespulse = Path(sys.executable).parent / "salespulse"
    started = time.monotonic()
    with log.open("ab") as out:
        done = subprocess.run(
            [str(salespulse), "replay", "--mapping", str(MAPPING), str(EXPORT)],
            cwd=REPO, env=settings_env(settings), stdout=out, stderr=subprocess.STDOUT,
            timeout=limit_s, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"salespulse replay exited with {done.returncode} (see {log})")
    return time.monotonic() - started


class Finality:
    """Redis side of "settled": every publisher partition's stream time at the wall clock of
    the first look (a window that is history is published only when it closes: final
    records alone do not say none is left), KPI records present, every non-live one final,
    unchanged since the previous look at least ``quiet_s`` ago."""

    def __init__(self, settings: Settings, quiet_s: float) -> None:
        self.settings = settings
        self.quiet_s = quiet_s
        self.began_ms: float | None = None
        self.client = redis_client(settings)
        self.since: float | None = None
        self.digest: bytes | None = None
        self.records = 0
        self.open_windows = 0

    async def close(self) -> None:
        await self.client.aclose()

    async def look(self) -> tuple[bytes, int, int]:
        """(digest of every KPI record, records, non-live records not final)."""
        prefix = self.settings.redis_prefix
        digest = hashlib.blake2b(digest_size=16)
        records = open_windows = 0
        names = sorted([n async for n in self.client.scan_iter(match=f"{prefix}kpi:*", count=1000)])
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(name)
        for name, fields in zip(names, await pipe.execute(), strict=True):
            kind = name.decode()[len(prefix) :].split(":", 4)[2]
            digest.update(name)
            for field, raw in sorted(fields.items()):
                digest.update(field + b"=" + raw)
                records += 1
                if kind != "live" and not orjson.loads(raw).get("final"):
                    open_windows += 1
        return digest.digest(), records, open_windows

    async def settled(self) -> bool:
        if self.began_ms is None:
            self.began_ms = time.time() * 1000
        key = f"{self.settings.redis_prefix}stream_time"
        scores = dict(await self.client.zrange(key, 0, -1, withscores=True))
        closed_ms = closed_through(scores, self.settings.topic_partitions)
        digest, self.records, self.open_windows = await self.look()
        now = time.monotonic()
        if closed_ms is None or closed_ms < self.began_ms:
            self.since, self.digest = None, None
            return False
        if not self.records or self.open_windows:
            self.since, self.digest = None, None
            return False
        if digest != self.digest:
            self.since, self.digest = now, digest
            return False
        assert self.since is not None
        if now - self.since >= self.quiet_s:
            return True
        await asyncio.sleep(0)
        return False
