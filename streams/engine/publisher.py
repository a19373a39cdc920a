"""The publisher: merges the entity partitions' partial cells, closes windows, publishes.

It consumes ``internal.cells`` (keyed by dimension and key, so every window of a dimension
key is on one partition) with manual acks:

- a cell message (a batch of cells of one dimension key) replaces one entity partition's
  partial of each cell (absolute, with that
  partition's offset mark: an older or repeated partial changes nothing); the merged cell's
  KPI values are recomputed and the changed ones published. A new partial of a window that is
  already final (a late event: the entity stage applies it while the window is retained) is
  a *correction*: its changed values are published again, ``final`` still true, with a
  higher revision and ``correction`` true; so are the later final windows of its key whose
  customers at start it changed;
- a stream-time marker from entity partition ``ep`` updates this partition's view of stream
  time; the *global* stream time is the minimum over all entity partitions. A window whose
  end + grace is behind it gets its one ``final`` record. Windows older than their retention
  are removed, judged in *event time* (the newest watermark of the events, which the wall
  clock never moves): an idle floor closes its windows on the wall clock, never deletes them.

A window that is history (past its end + grace on the wall clock: a replay, an import) is
published when it closes, not before (``_history``).

Publishing stages ``kpi.updates`` records and Redis writes; ``flush`` removes the expired
windows from Redis, writes the tables (in Kafka), then sends the records and the Redis writes
(one pipeline), then acks the messages they came from (a window removed in the batch that
published it leaves the table only once its records are in Kafka: ``_hold``). A message
redelivered after a crash is published again with the same revision: absolute values, so
nothing counts twice.

The table knows what was published before anything is: each published cell keeps ``po``,
the offset of the last message applied when it was published. A partition's next owner
(this worker after a restart, or another) publishes again, every value, each cell whose
``po`` is at or after the first offset it gets: the flush that published it may have died
before its records or Redis writes went out. Publishing first and writing the table after
left values behind: a value a dead flush published, retracted by messages the next owner
applied in one batch, stayed in Redis and ``kpi.updates``, never final.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from streams import json_bytes
from streams.engine.delivery import Sends
from streams.engine.failures import Origin, StageFailures
from streams.engine.gauge_book import GaugeBook
from streams.engine.writeback import (
    PLAIN_TABLES,
    Deferred,
    TableIO,
    abandon,
    all_or_nothing,
)
from streams.ingest.reference_cache import ReferenceCache
from streams.kpi import rep_sets
from streams.kpi.catalog import KPIS, unit_of
from streams.kpi.cells import (
    Cell,
    add_cell,
    cell_key,
    count_of,
    merge,
    split_cell_key,
    window_prefix,
)
from streams.kpi.rep_sets import parent_of
from streams.kpi.values import CALENDAR, Context, Value, decimal_text, value_of, values_of
from streams.kpi.windows import LIVE, MINUTE, CellWindows, Graces, Retention
from streams.observability.kpi_gauges import OTHER, CurrentCell, fold_kept
from streams.serving.read_model import ReadModel

log = logging.getLogger(__name__)

ROLLING_GAUGES = {"15m": 15, "1h": 60}  # rolling windows the KPI gauges export, in minutes
ROLLING_DIMENSIONS = ("global", "team", "region", "channel")  # few keys: cheap at scrape time
ROLLING_KEEP = 61  # minute cells kept in memory per key (the newest)
FLUSH_MESSAGES = 5_000  # the agent flushes once this many messages are pending, or
FLUSH_CELLS = 10_000  # cells changed (each is published with its changed KPIs at the flush), or
FLUSH_RECORDS = 20_000  # kpi.updates records staged (windows closed)
PUBLISH_CELLS = 1_000  # cells a flush publishes per step (records and Redis writes held at once)
REVISABLE_AFTER_FINAL = ("lead_conversion_rate",)  # a cohort KPI: revised as leads convert


def merged_cell(stored: dict[str, Any]) -> Cell:
    """A cell's entity partitions' partials added up, with its active reps counted from its
    shards (``rep_sets``)."""
    merged = merge(part["c"] for part in stored["parts"].values())
    if reps := sum(stored.get("rs", {}).values()):
        merged[rep_sets.COUNT] = reps
    return merged


def _is_minute_shard(cell: str) -> bool:
    kind, _, dim, _ = split_cell_key(cell)
    return kind == MINUTE and rep_sets.is_shard(dim)


def target_period(kind: str, start_s: int, zone: ZoneInfo) -> str | None:
    local = datetime.fromtimestamp(start_s, zone)
    if kind == "month":
        return f"{local.year}-{local.month:02d}"
    if kind == "quarter":
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    return None


class Publisher:
    def __init__(
        self,
        *,
        cells: Any,
        base: Any,
        marks: Any,
        send_updates: Callable[[list[tuple[bytes, bytes]]], Awaitable[list[Any]]],
        read_model: ReadModel,
        reference: ReferenceCache,
        windows: CellWindows,
        graces: Graces,
        retention: Retention,
        entity_partitions: int,
        lead_sla_ms: int,
        currency: str,
        sends: Sends,
        failures: StageFailures,
        observe_latency: Callable[[float], None] = lambda seconds: None,
        cache_size: int = 0,
        table_io: TableIO = PLAIN_TABLES,
        wall_ms: Callable[[], float] = lambda: time.time() * 1000,
    ) -> None:
        # Writes wait for the flush, after Redis and kpi.updates have what they caused: a
        # crash before it leaves the tables as they were, and the events are redelivered.
        self.table_io = table_io  # how its tables are read and written (faust's in the worker)
        self.cells = Deferred(cells, cache_size, table_io.reader(cells))
        self.base = Deferred(base, cache_size, table_io.reader(base))
        self.marks = Deferred(marks, 0, table_io.reader(marks))
        self.tables = (self.cells, self.base, self.marks)
        # kpi.updates records (key, value) -> their send futures (streams.engine.faust.batch_send)
        self.send_updates = send_updates
        self.read_model = read_model
        self.reference = reference
        self.windows, self.graces = windows, graces
        self.retention = retention
        self.entity_partitions = entity_partitions
        self.lead_sla_ms = lead_sla_ms
        self.currency = currency
        self.sends = sends  # what it sent for the events not acked yet (and its changelogs)
        self.observe_latency = observe_latency
        self.wall_ms = wall_ms  # the wall clock, in ms: what is history (``_history``)
        self.tz = str(windows.zone)
        self.closing: dict[int, list[tuple[int, str]]] = {}  # q -> heap of (close ms, cell)
        # q -> heap of (expiry ms, kind, start) of the windows it has cells of, each once (the
        # set): the cells of a window past its retention are found in the table then
        # (``_on_marker``, ``_expire``). A heap entry per cell grew with every cell the
        # retention kept (two days of minute cells: ~2.7 entries per event).
        self.expiring: dict[int, list[tuple[int, str, int]]] = {}
        self.expiring_windows: dict[int, set[tuple[str, int]]] = {}
        self.refreshable: dict[int, set[str]] = {}  # q -> live and target cells to re-evaluate
        self.refreshed_at: dict[int, int] = {}
        self.stream_ms: dict[int, int | None] = {}  # q -> its stream time (``global_ms``)
        # q -> (kind, dim, key) -> (start, cell) of its newest calendar or live window: what
        # the KPI gauges of /metrics read (streams.observability.kpi_gauges)
        self.latest: dict[int, dict[tuple[str, str, str], tuple[int, str]]] = {}
        # q -> (dim, key) -> {start: cell} of its last hour of minute cells (rolling gauges)
        self.minutes: dict[int, dict[tuple[str, str], dict[int, str]]] = {}
        self.latency: list[float] = []  # Kafka timestamps of the inputs of pending partials
        # q -> cells with new partials since the flush -> whether to publish every KPI (a
        # redelivery: what was published then may not have reached Redis)
        self.changed: dict[int, dict[str, bool]] = {}
        self.corrections: dict[int, set[str]] = {}  # q -> final cells changed since the flush
        self.shards_changed: dict[int, set[str]] = {}  # q -> minute rep shards, for Redis
        self.records: list[tuple[bytes, bytes]] = []
        # q -> cells removed past their retention with records not sent yet -> their last
        # value: the table keeps it until the records are in Kafka (``_flush_step``)
        self.removing: dict[int, dict[str, dict[str, Any]]] = {}
        self.pending: list[tuple[Any, Any]] = []
        self.high: dict[int, int] = {}  # q -> the offset of the message being applied, or last
        self.lock = asyncio.Lock()
        self.failures = failures  # messages it could not apply, for sales.deadletter
        self.book = GaugeBook()  # what a scrape of the KPI gauges needs, kept as cells change

    # --- index of this worker's cells, per publisher partition ---------------------------

    def _index(self, q: int, first: int | None = None) -> None:
        """Index ``q``'s cells from the table, at its first message (offset ``first``)
        since this worker got it. A cell its table says was published at or after ``first``
        was published by a flush that may not have sent it (its messages were not acked):
        it is published again, every value (``po``, in the module docstring)."""
        if q in self.closing:
            return
        self.stream_ms.pop(q, None)  # read again from the table (another owner may have moved it)
        self.closing[q], self.expiring[q], self.refreshable[q] = [], [], set()
        self.expiring_windows[q] = set()
        self.latest[q], self.minutes[q] = {}, {}
        self.book.forget(q)
        bases: set[tuple[str, str, str]] = set()
        again = self.changed.setdefault(q, {})
        for cell, stored in self.cells.items():
            if stored.get("q") == q:
                self._track(q, cell, stored)
                if first is not None and stored.get("po", -1) >= first:
                    again[cell] = True
                kind, start, dim, key = split_cell_key(cell)
                if kind != MINUTE and not rep_sets.is_shard(dim):
                    self.book.add(q, (kind, start, dim), merged_cell(stored))
                    revenue = stored["v"].get("revenue")
                    if kind == "month" and revenue and revenue[0] is not None:
                        self.book.month_revenue(q, dim, key, start, Decimal(revenue[0]))
                    if kind in CALENDAR:
                        bases.add((kind, dim, key))
        for kind, dim, key in bases:
            for start, n in (self.base.get(f"{kind}|{dim}|{key}") or {}).items():
                self.book.base_moved(q, kind, dim, int(start), n)

    def _track(self, q: int, cell: str, stored: dict[str, Any]) -> None:
        kind, start, dim, key = split_cell_key(cell)
        if rep_sets.is_shard(dim):  # never published: kept for its parent, then removed
            if kind == MINUTE and parent_of(dim, key)[0] in ROLLING_DIMENSIONS:
                self._track_minute(q, dim, key, start, cell)
            if kind != LIVE:
                self._expires(q, kind, start)
            return
        if kind == MINUTE:
            if dim in ROLLING_DIMENSIONS:
                self._track_minute(q, dim, key, start, cell)
        else:
            newest = self.latest[q].get((kind, dim, key))
            if newest is None or newest[0] < start:
                self.latest[q][(kind, dim, key)] = (start, cell)
            self.book.opened(q, (kind, start, dim), key)
        if kind == LIVE:
            self.refreshable[q].add(cell)
            return
        end = self.windows.span(kind, start * 1000)[1]
        if not stored.get("final"):
            heapq.heappush(self.closing[q], (end * 1000 + self.graces.of(kind), cell))
            if kind in ("month", "quarter") and dim in ("global", "rep", "team"):
                self.refreshable[q].add(cell)
        self._expires(q, kind, start)

    def _expires(self, q: int, kind: str, start: int) -> None:
        """The window (``kind``, ``start``) of ``q`` has cells: it expires past its retention."""
        window = (kind, start)
        if window not in self.expiring_windows[q]:
            self.expiring_windows[q].add(window)
            end = self.windows.span(kind, start * 1000)[1]
            heapq.heappush(self.expiring[q], (end * 1000 + self.retention.of(kind), kind, start))

    def _track_minute(self, q: int, dim: str, key: str, start: int, cell: str) -> None:
        recent = self.minutes[q].setdefault((dim, key), {})
        recent[start] = cell
        if len(recent) > ROLLING_KEEP:
            for old in sorted(recent)[: len(recent) - ROLLING_KEEP]:
                del recent[old]

    def global_ms(self, q: int) -> int | None:
        """``q``'s stream time: the smallest of its entity partitions' marks (None until each
        has sent one). Kept until a marker moves it (``_on_marker``) or ``q``'s index goes
        (``_unindex``: a rebalance, or a message whose writes were undone): publishing a
        cell asks for it, thousands of times per flush."""
        if q in self.stream_ms:
            return self.stream_ms[q]
        seen = self.marks.get(str(q)) or {}
        now = None if len(seen) < self.entity_partitions else min(int(t) for t in seen.values())
        self.stream_ms[q] = now
        return now

    def event_ms(self, q: int) -> int | None:
        """The cluster's event time: the newest watermark any entity partition received."""
        seen = self.marks.get(f"{q}:e") or {}
        return max((int(t) for t in seen.values()), default=None)

    def _expired(self, cell: str, event_now: int | None) -> bool:
        kind, start, _, _ = split_cell_key(cell)
        return self.windows.gone(kind, start, event_now, self.retention)

    def status(self) -> dict[int, str]:
        """Per publisher partition indexed here: stream time and windows left to close."""
        out = {}
        for q in sorted(self.closing):
            due = self.closing[q][0][0] if self.closing[q] else None
            out[q] = (
                f"t={self.global_ms(q)} marks={len(self.marks.get(str(q)) or {})} "
                f"open={len(self.closing[q])} next_close={due}"
            )
        return out

    def gauge_cells(self, partitions: list[int], cap: int) -> list[CurrentCell]:
        """What the KPI gauges export for ``partitions``: per dimension, the ``cap`` keys with
        the most revenue this month, in the current windows (those holding stream time),
        with their published values; ``other`` for the rest, from the gauge book's sums (no
        other key's cell is read: a scrape costs the same with 100,000 reps); then the
        rolling windows (few keys), folded the same way."""
        nows = {q: t for q in partitions if q in self.latest and (t := self.global_ms(q))}
        kept = self.book.kept({q: self.windows.span("month", t)[0] for q, t in nows.items()}, cap)
        out: list[CurrentCell] = []
        for q, now in nows.items():
            for table in self.tables:
                table.partition = q  # the reads below are of q's cells (cached as such)
            current = {kind: self.windows.span(kind, now)[0] for kind in CALENDAR}
            current[LIVE] = 0
            shown: dict[tuple[str, str], list[CurrentCell]] = {}
            for dim, keys in kept.items():
                for key in keys:
                    for kind, start in current.items():
                        newest = self.latest[q].get((kind, dim, key))
                        if newest is not None and newest[0] == start:
                            found = self._current_cell(q, newest[1])
                            if found is not None:
                                out.append(found)
                                shown.setdefault((kind, dim), []).append(found)
            for (kind, start, dim), count in self.book.windows(q):
                mine = shown.get((kind, dim), [])
                if current.get(kind) == start and count > len(mine):
                    out.append(self._other(q, kind, start, dim, mine, now))
            out.extend(self._rolling(q, now))
        return fold_kept(out, kept)

    def _current_cell(self, q: int, cell: str) -> CurrentCell | None:
        stored = self.cells.get(cell)
        if stored is None:
            return None
        kind, _, dim, key = split_cell_key(cell)
        values = {
            kpi: Value(*(None if t is None else Decimal(t) for t in texts))
            for kpi, texts in stored["v"].items()
        }
        rep = self.reference.rep(key) if dim == "rep" else None
        return CurrentCell(  # the published values, not recomputed
            kind=kind,
            dimension=dim,
            key=key,
            name=rep.name if rep else "",
            values=values,
            cell=merged_cell(stored),
            ctx=self.context(cell, q),
        )

    def _other(
        self, q: int, kind: str, start: int, dim: str, kept: list[CurrentCell], now: int
    ) -> CurrentCell:
        """The keys of a window and dimension not ``kept``, as one: every key's cells
        added up (the gauge book) minus the kept ones'. A target is per key: none."""
        cell = self.book.total(q, (kind, start, dim))
        for c in kept:
            add_cell(cell, c.cell, -1, owned=True)  # the book's total: a copy
        customers = None
        if kind in CALENDAR:
            customers = self.book.customers_before(q, kind, dim, start) - sum(
                c.ctx.customers_at_start or 0 for c in kept
            )
        end = self.windows.span(kind, start * 1000)[1] if kind != LIVE else 0
        ctx = Context(
            kind=kind, dimension=dim, start_s=start, end_s=end, customers_at_start=customers,
            target_c=None, stream_ms=now, lead_sla_ms=self.lead_sla_ms,
        )  # fmt: skip
        return CurrentCell(kind, dim, OTHER, "", values_of(cell, ctx), cell, ctx)

    def _rolling(self, q: int, now: int) -> Iterator[CurrentCell]:
        """The rolling windows ending with the minute of stream time, merged from minutes.
        A parent's active reps are counted from its shards merged over the same minutes (a
        sum of per-minute counts would count a rep once per minute)."""
        last = now // 60_000 * 60
        merged: dict[tuple[str, str, str], Cell] = {}
        reps: Counter[tuple[str, str, str]] = Counter()
        for (dim, key), recent in list(self.minutes[q].items()):
            for kind, minutes in ROLLING_GAUGES.items():
                starts = [s for s in recent if last - (minutes - 1) * 60 <= s <= last]
                parts = [self.cells.get(recent[s]) for s in starts]
                cell = merge(
                    p["c"]
                    for stored in parts
                    if stored is not None
                    for p in stored["parts"].values()
                )
                if not cell:
                    continue
                if rep_sets.is_shard(dim):
                    reps[(kind, *parent_of(dim, key))] += rep_sets.active(cell)
                else:
                    merged[(kind, dim, key)] = cell
        for (kind, dim, key), cell in merged.items():
            cell.pop(rep_sets.COUNT, None)
            if reps[(kind, dim, key)]:
                cell[rep_sets.COUNT] = reps[(kind, dim, key)]
            ctx = Context(kind=MINUTE, dimension=dim, stream_ms=now)
            yield CurrentCell(kind, dim, key, "", values_of(cell, ctx), cell, ctx)

    def stream_seconds(self, partitions: list[int]) -> float | None:
        """Stream time (the smallest over ``partitions``), Unix seconds."""
        known = [t for t in (self.global_ms(q) for q in partitions) if t is not None]
        return min(known) / 1000 if known else None

    # --- one message ---------------------------------------------------------------------

    def revoke(self, partitions: set[int]) -> None:
        """A rebalance took ``partitions``: what was not flushed of them (table writes, acks,
        Redis writes kept after a failed flush) is dropped, their next owner reads them again
        from the committed offsets, and the index of their cells is rebuilt from the table if
        they come back (their owner meanwhile may have added cells). Called with the lock
        held."""
        writebacks = [table.writeback for table in self.tables]
        self.pending = abandon(writebacks, self.pending, partitions)
        self.read_model.drop(partitions, KPIS)
        self.failures.revoke(partitions)
        for q in partitions:
            self._unindex(q)
            self.refreshed_at.pop(q, None)
            self.changed.pop(q, None)
            self.corrections.pop(q, None)
            self.shards_changed.pop(q, None)
            self.removing.pop(q, None)
            self.high.pop(q, None)

    def _unindex(self, q: int) -> None:
        """Forget the index of ``q``'s cells (and its gauge book): rebuilt from the table at
        its next message."""
        for index in (
            self.closing, self.expiring, self.expiring_windows, self.refreshable, self.latest,
            self.minutes,
        ):  # fmt: skip
            index.pop(q, None)
        self.stream_ms.pop(q, None)
        self.book.forget(q)

    async def process(self, stream: Any, event: Any) -> None:
        q, o = event.message.partition, event.message.offset
        # Not while a flush is under way: it writes the tables' pending writes of the events
        # it acks, and only theirs.
        async with self.lock:
            for table in self.tables:
                table.partition = q
            self._index(q, o)
            self.high[q] = o
            try:
                # All of the message's table writes, or none: a failed one can be sent again.
                with all_or_nothing(table.writeback for table in self.tables):
                    self._apply(q, o, event.value)
            except Exception as exc:  # a bug must not stop the stage: to the dead letters
                log.exception("publisher: could not apply offset %s of partition %s", o, q)
                self._unindex(q)  # its writes are undone: the index is built again from them
                value = event.value
                raw = value if isinstance(value, bytes) else json_bytes.dumps(value)
                self.failures.add(q, Origin(event.message.topic, q, o), raw, exc)
            self.pending.append((stream, event))

    def _apply(self, q: int, o: int, raw: Any) -> None:
        value = orjson.loads(raw) if isinstance(raw, bytes) else raw
        if "wm" in value:
            self._on_marker(q, int(value["wm"]), int(value["t"]), value.get("e"))
        else:
            if value.get("ts") is not None:
                self.latency.append(float(value["ts"]))
            for cell, mark, components in value["cells"]:
                self._on_partial(q, o, cell, str(value["p"]), mark, components)

    def _on_partial(
        self, q: int, o: int, cell: str, part: str, mark: int, components: dict[str, Any]
    ) -> None:
        stored = self.cells.get(cell)
        fresh = stored is None
        if stored is None:
            if self._expired(cell, self.event_ms(q)):
                return  # removed past its retention (or never kept): not opened again
            stored = {"parts": {}, "rev": 0, "final": False, "v": {}, "q": q, "o": -1}
        redelivered = o <= stored["o"]
        if not redelivered:
            previous = stored["parts"].get(part)
            if previous is None or mark >= previous["m"]:
                if stored["final"] and (previous is None or previous["c"] != components):
                    self.corrections.setdefault(q, set()).add(cell)
                stored = {
                    **stored,
                    "parts": {**stored["parts"], part: {"m": mark, "c": components}},
                }
                self._book_delta(q, cell, components, None if previous is None else previous["c"])
            stored["o"] = o
        kind, start, dim, key = split_cell_key(cell)
        if rep_sets.is_shard(dim):
            self._on_shard(q, cell, stored, fresh)
            return
        if kind in CALENDAR:
            self._update_base(q, kind, dim, key, start, stored)
        self.cells[cell] = stored
        # Published once per flush, however many partials it got meanwhile (``_publish_changed``).
        changed = self.changed.setdefault(q, {})
        changed[cell] = changed.get(cell, False) or redelivered
        if fresh:
            self._track(q, cell, stored)

    def _book_delta(
        self, q: int, cell: str, new: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        """A partial of ``cell`` replaced: the gauge book's sum of its window moves."""
        kind, start, dim, _ = split_cell_key(cell)
        if kind == MINUTE or rep_sets.is_shard(dim):
            return
        self.book.add(q, (kind, start, dim), new)
        if old:
            self.book.add(q, (kind, start, dim), old, -1)

    def _on_shard(self, q: int, cell: str, stored: dict[str, Any], fresh: bool) -> None:
        """A shard of a cell's active reps changed: its count goes to the parent cell (same
        publisher partition: ``rep_sets.routing_target``), which is published again if it
        moved. Minute shards go to Redis at the flush (the API's rolling windows)."""
        kind, start, dim, key = split_cell_key(cell)
        count = rep_sets.active(merge(part["c"] for part in stored["parts"].values()))
        if count != stored.get("n", 0):
            if kind != MINUTE:
                window = (kind, start, parent_of(dim, key)[0])
                self.book.add(q, window, {rep_sets.COUNT: count - stored.get("n", 0)})
            stored = {**stored, "n": count}
            self._count_reps(q, cell_key(kind, start, *parent_of(dim, key)), key, count)
        self.cells[cell] = stored
        if kind == MINUTE:
            self.shards_changed.setdefault(q, set()).add(cell)
        if fresh:
            self._track(q, cell, stored)

    def _count_reps(self, q: int, parent: str, shard: str, count: int) -> None:
        stored = self.cells.get(parent)
        fresh = stored is None
        if stored is None:
            if self._expired(parent, self.event_ms(q)):
                return
            stored = {"parts": {}, "rev": 0, "final": False, "v": {}, "q": q, "o": -1}
        counts = dict(stored.get("rs") or {})
        name = shard.rpartition("#")[2]
        if count:
            counts[name] = count
        else:
            counts.pop(name, None)
        stored = {**stored, "rs": counts}
        self.cells[parent] = stored
        changed = self.changed.setdefault(q, {})
        changed[parent] = changed.get(parent, False)
        if stored["final"]:
            self.corrections.setdefault(q, set()).add(parent)
        if fresh:
            self._track(q, parent, stored)

    def _stage_shard(self, q: int, cell: str, stored: dict[str, Any]) -> None:
        merged = merge(part["c"] for part in stored["parts"].values())
        ctx = Context(kind=MINUTE, dimension=split_cell_key(cell)[2])
        self.read_model.stage_cell(cell, merged, stored, ctx, {}, partition=q)

    def _update_base(
        self, q: int, kind: str, dim: str, key: str, start: int, stored: dict[str, Any]
    ) -> None:
        """The customer base's change in this window, kept per kind: a window's customers at
        start are the sum over the earlier windows of its kind (each kind leaves out the
        events past its retention, so each has its own base)."""
        total = sum(count_of(part["c"], "base") for part in stored["parts"].values())
        name = f"{kind}|{dim}|{key}"
        base = dict(self.base.get(name) or {})
        if base.get(str(start), 0) != total:
            self.book.base_moved(q, kind, dim, start, total - base.get(str(start), 0))
            if total:
                base[str(start)] = total
            else:
                base.pop(str(start), None)
            self.base[name] = base
            self._base_moved(q, kind, dim, key, start)

    def _base_moved(self, q: int, kind: str, dim: str, key: str, start: int) -> None:
        """The windows of (kind, dim, key) after ``start`` have other customers at start:
        re-evaluated at the flush (published if a value changed; a final one corrected).
        On time, ``start`` is the newest window and there are none: this walks windows only
        for an out-of-order first order or churn."""
        newest = self.latest[q].get((kind, dim, key))
        changed = self.changed.setdefault(q, {})
        at = start
        while newest is not None and at < newest[0]:
            at = self.windows.span(kind, at * 1000)[1]  # the next window's start
            later = cell_key(kind, at, dim, key)
            stored = self.cells.get(later)
            if stored is not None:
                changed.setdefault(later, False)
                if stored["final"]:
                    self.corrections.setdefault(q, set()).add(later)

    def _on_marker(self, q: int, ep: int, t: int, event_t: int | None) -> None:
        seen = dict(self.marks.get(str(q)) or {})
        if seen.get(str(ep), -1) < t:
            seen[str(ep)] = t
            self.marks[str(q)] = seen
            self.stream_ms.pop(q, None)
        events = dict(self.marks.get(f"{q}:e") or {})
        if event_t is not None and events.get(str(ep), -1) < event_t:
            events[str(ep)] = event_t
            self.marks[f"{q}:e"] = events
        now = self.global_ms(q)  # closes what is due even when it did not move (a restart)
        if now is None:
            return
        self.read_model.stream_time(now, q)
        closing = self.closing[q]
        while closing and closing[0][0] <= now:
            _, cell = heapq.heappop(closing)
            stored = self.cells.get(cell)
            if stored is not None and not stored["final"]:
                self._close(q, cell, stored)
        expiring, event_now = self.expiring[q], self.event_ms(q)
        due: list[str] = []  # the windows past their retention, oldest first
        while expiring and event_now is not None and expiring[0][0] <= event_now:
            _, kind, start = heapq.heappop(expiring)
            self.expiring_windows[q].discard((kind, start))
            due.append(window_prefix(kind, start))
        if due:  # their cells, from the table: one read for them all
            by_window: dict[str, list[str]] = {prefix: [] for prefix in due}
            for cell in self.cells.keys_with(self.table_io, q, tuple(due)):
                of_kind, of_start, _ = cell.split("|", 2)
                by_window[window_prefix(of_kind, int(of_start))].append(cell)
            for cells in by_window.values():
                for cell in sorted(cells):
                    self._expire(q, cell)
        if now - self.refreshed_at.get(q, 0) >= 60_000:
            self.refreshed_at[q] = now
            wall = self.wall_ms()
            for cell in list(self.refreshable[q]):
                if self._history(cell, wall):
                    continue  # its closing publishes every value
                kind, start, dim, key = split_cell_key(cell)
                period = target_period(kind, start, self.windows.zone)
                if period is not None and self.reference.target_cents(dim, key, period) is None:
                    continue  # no target: its pacing is null whatever the time
                stored = self.cells.get(cell)
                if stored is not None:
                    self._publish(q, cell, stored)

    def _expire(self, q: int, cell: str) -> None:
        """``cell``, of a window past its retention in event time, leaves the table and
        Redis (what it had to publish first goes out)."""
        gone = self.cells.get(cell)
        if gone is None or gone.get("q") != q:
            return  # removed already, or another partition's (a table kept as one mapping)
        kind, start, dim, _ = split_cell_key(cell)
        shard = rep_sets.is_shard(dim)
        if not gone["final"] and not shard:
            # Past its retention in event time before stream time closed it (the
            # smallest entity partition's mark lags the newest in a fast replay: a
            # CRM replay left 95,000 minute and 5,000 day KPI windows with updates
            # and no final record): no event can change it, so it closes now.
            self._close(q, cell, gone)
            gone = self.cells.get(cell)
        elif not shard and (force := self.changed.get(q, {}).get(cell)) is not None:
            # What it was to publish goes out before it goes: a correction, or its
            # values again for a next owner (``po``: the flush that published them
            # may have died before they went out).
            correction = cell in self.corrections.get(q, ())
            self._publish(q, cell, gone, force=force, correction=correction)
            gone = self.cells.get(cell)
        if not shard and self.cells.unflushed(cell):
            # Published since the last flush: the flush writes it as published, and
            # deletes it only once its records are in Kafka (``_flush_step``).
            self.removing.setdefault(q, {})[cell] = gone
        if kind != MINUTE and not shard:
            self.book.removed(q, (kind, start, dim), merged_cell(gone))
        # The KPIs it ever published (``v`` only grows, and Redis has no other of its
        # fields), not the whole catalogue: two Redis ops per KPI removed.
        kpis = () if shard else tuple(gone["v"])
        if self.cells.persisted(cell) is None:
            # Opened since the last flush: Redis never had it (a flush writes Redis
            # after the table), nothing to delete there.
            self.read_model.unstage(cell, kpis)
        else:
            self.read_model.remove(cell, kpis)
        del self.cells[cell]
        self.shards_changed.get(q, set()).discard(cell)
        self.changed.get(q, {}).pop(cell, None)
        self.corrections.get(q, set()).discard(cell)

    def _close(self, q: int, cell: str, stored: dict[str, Any]) -> None:
        """``cell``'s window is closed: its final record, with every value."""
        self._publish(q, cell, {**stored, "final": True}, force=True, bump=True)
        self.refreshable[q].discard(cell)
        self.changed.get(q, {}).pop(cell, None)  # its final record has every value
        self.corrections.get(q, set()).discard(cell)

    # --- values and records --------------------------------------------------------------

    def context(self, cell: str, q: int) -> Context:
        kind, start, dim, key = split_cell_key(cell)
        end = self.windows.span(kind, start * 1000)[1] if kind != LIVE else 0
        customers = None
        if kind in CALENDAR:
            base = self.base.get(f"{kind}|{dim}|{key}") or {}
            customers = sum(n for day, n in base.items() if int(day) < start)
        target = None
        period = target_period(kind, start, self.windows.zone)
        if period is not None and dim in ("global", "rep", "team"):
            target = self.reference.target_cents(dim, key, period)
        return Context(
            kind=kind, dimension=dim, start_s=start, end_s=end, customers_at_start=customers,
            target_c=target, stream_ms=self.global_ms(q), lead_sla_ms=self.lead_sla_ms,
        )  # fmt: skip

    def _publish(
        self, q: int, cell: str, stored: dict[str, Any], force: bool = False, bump: bool = False,
        correction: bool = False,
    ) -> None:  # fmt: skip
        merged = merged_cell(stored)
        ctx = self.context(cell, q)
        values = values_of(merged, ctx)
        for kpi in stored["v"]:  # published before, inputs retracted since: publish it emptied
            if kpi not in values:
                values[kpi] = value_of(kpi, merged, ctx)
        texts = {
            kpi: [decimal_text(v.value), decimal_text(v.numerator), decimal_text(v.denominator)]
            for kpi, v in values.items()
        }
        was_final = stored["final"] and not bump and not correction
        changed = {
            kpi for kpi, text in texts.items()
            if stored["v"].get(kpi) != text and (not was_final or kpi in REVISABLE_AFTER_FINAL)
        }  # fmt: skip
        if was_final and not changed and not force:
            return
        if changed or bump:
            stored = {**stored, "rev": stored["rev"] + 1, "v": {**stored["v"], **texts}}
        publish = set(texts) if (force or bump) else changed
        if publish:  # the table knows it, before the records and Redis have it (``flush``)
            stored = {**stored, "po": self.high.get(q, -1)}
        self.cells[cell] = stored
        if not publish:
            return
        kind, start, dim, key = split_cell_key(cell)
        if kind == "month" and (revenue := values.get("revenue")) is not None:
            self.book.month_revenue(q, dim, key, start, revenue.value or Decimal(0))
        # Redis gets what kpi.updates gets: the KPIs whose values changed (every one when
        # forced or final); the others' fields hold their last published values already.
        shown = texts if len(publish) == len(texts) else {k: texts[k] for k in publish}
        self.read_model.stage_cell(cell, merged, stored, ctx, shown, partition=q)
        # A correction: a final window's values revised by late events (not the closing, nor
        # a cohort KPI's revision as its leads convert, which on-time events bring too).
        corrects = correction and bool(changed - set(REVISABLE_AFTER_FINAL)) and not bump
        self._records(
            kind, start, ctx.end_s, dim, key, stored, {k: texts[k] for k in publish}, corrects
        )

    def _records(
        self, kind: str, start: int, end: int, dim: str, key: str, stored: dict[str, Any],
        texts: dict[str, list[str | None]], correction: bool = False,
    ) -> None:  # fmt: skip
        window = {
            "kind": kind,
            "start": datetime.fromtimestamp(start, self.windows.zone).isoformat(),
            "end": datetime.fromtimestamp(end, self.windows.zone).isoformat(),
            "tz": self.tz,
        }
        computed_at = datetime.now(UTC).isoformat()
        for kpi, (value, numerator, denominator) in texts.items():
            record = {
                "kpi": kpi, "window": window, "dimension": dim, "key": key,
                "value": value, "numerator": numerator,
                "denominator": denominator, "unit": unit_of(kpi, self.currency),
                "final": bool(stored["final"]), "revision": stored["rev"],
                "correction": correction, "computed_at": computed_at,
            }  # fmt: skip
            record_key = f"{kpi}/{kind}/{window['start']}/{dim}/{key}".encode()
            self.records.append((record_key, json_bytes.dumps(record)))

    def full(self) -> bool:
        """Enough waits for the flush that the agent should flush now, not at the next tick:
        what a flush holds (records, Redis writes, table writes) is bounded by this."""
        changed = sum(len(cells) for cells in self.changed.values())
        return (
            len(self.pending) >= FLUSH_MESSAGES
            or changed >= FLUSH_CELLS
            or len(self.records) >= FLUSH_RECORDS
        )

    def _publish_changed(self, limit: int = PUBLISH_CELLS) -> None:
        """Up to ``limit`` of the cells that got partials since the last flush, each
        published once (the minute shards all at once: a Redis write each); the others stay
        in ``changed`` for the flush's next step."""
        shards, self.shards_changed = self.shards_changed, {}
        wall = self.wall_ms()
        for q, names in shards.items():
            for table in self.tables:
                table.partition = q
            for cell in names:
                stored = self.cells.get(cell)
                if stored is not None:
                    self._stage_shard(q, cell, stored)
        for q in list(self.changed):
            cells = self.changed[q]
            for table in self.tables:
                table.partition = q
            corrected = self.corrections.get(q, set())
            while cells and limit > 0:
                cell, force = cells.popitem()
                limit -= 1
                correction = cell in corrected
                corrected.discard(cell)
                stored = self.cells.get(cell)
                if stored is None or (not stored["final"] and self._history(cell, wall)):
                    continue  # history: its closing publishes every value
                self._publish(q, cell, stored, force=force, correction=correction)
            if cells:
                return
            del self.changed[q]
            self.corrections.pop(q, None)

    def _history(self, cell: str, wall_ms: float) -> bool:
        """Whether ``cell``'s window is history: past its end and grace on the wall clock.
        Until it closes, it changes only because a backlog (a replay, an import, a worker
        catching up) is being applied, and its values then are partial: it is published
        when it closes (every value, ``_close``), and its corrections after, not before. On
        a live floor stream time follows the wall clock and closes a window as it becomes
        history, so this changes nothing there; a CRM replay (2016-2017) published each
        window once or twice before its final record: ~470,000 of its ~750,000 records."""
        kind, start, _, _ = split_cell_key(cell)
        if kind == LIVE:
            return False
        return self.windows.span(kind, start * 1000)[1] * 1000 + self.graces.of(kind) < wall_ms

    def _rewrite(self, lost: list[int]) -> None:
        """Stage every value of the ``lost`` partitions for Redis as last published: Redis
        lost them (it restarted empty); one pass over the table for all of them.
        ``kpi.updates`` has them already: nothing is sent there."""
        wanted, cells = set(lost), Counter[int]()
        for cell, stored in self.cells.items():
            q = stored.get("q")
            if q in wanted and stored["v"]:
                for table in self.tables:
                    table.partition = q
                merged = merged_cell(stored)
                ctx = self.context(cell, q)
                self.read_model.stage_cell(cell, merged, stored, ctx, stored["v"], partition=q)
                cells[q] += 1
            elif q in wanted and _is_minute_shard(cell):  # the API's rolling windows read it
                self._stage_shard(q, cell, stored)
        for q in lost:
            if (now := self.global_ms(q)) is not None:
                self.read_model.stream_time(now, q)
            self.read_model.complete(q)
            say = log.warning if cells[q] else log.info  # a new deployment has none yet
            say(
                "Redis has no values of partition %s (a new deployment, or Redis restarted "
                "empty): writing its %s cells",
                q,
                cells[q],
            )

    async def flush(self) -> None:
        """Publish what changed since the last flush, then ack its messages. A flush of many
        cells (a backlog: ``FLUSH_CELLS``, each published once however many partials it got)
        goes in steps of ``PUBLISH_CELLS``, each step its tables, records and Redis writes in
        that order, so what it holds at once stays bounded; the messages are acked once every
        step is done. A crash between steps acks nothing: the next owner applies the
        messages again and publishes every cell they touch (``changed``: redelivered)."""
        async with self.lock:
            # Reads every partition's keys: faust would look only in the store of the event
            # being processed when the flush runs from an agent (streams.engine.writeback).
            with self.table_io.outside_events():
                if lost := await self.read_model.lost(self.closing):
                    self._rewrite(lost)
                while True:
                    if not await self._flush_step():
                        return  # kept (nothing acked) for the next flush
                    if not self.changed:
                        break
                pending, self.pending = self.pending, []
                latency, self.latency = self.latency, []
                failed = await self.failures.send_pending()
                await self.sends.confirm()  # records in Kafka before offsets commit
                self.failures.count(failed)
                now = time.time()
                for ts in latency:
                    self.observe_latency(now - ts)
                for stream, event in pending:
                    await stream.ack(event)

    async def _flush_step(self) -> bool:
        """Publish up to ``PUBLISH_CELLS`` changed cells: their table writes, then their
        records, then Redis; False if Redis failed (what is staged is kept for the next try)."""
        self._publish_changed(PUBLISH_CELLS)
        # Windows past their retention leave Redis before the table forgets them: a crash
        # between the two leaves them in the table, and they expire again.
        if not await self.read_model.flush_removals():
            return False
        records, self.records = self.records, []
        removing = self._hold(self.removing)
        self.removing = {}
        # The table first, in Kafka, then what it says was published (``po``): after a crash
        # anywhere below, the next owner of the partition publishes again every cell this
        # flush published (its messages were not acked), from the table, so nothing published
        # stays unknown to it: a value published then retracted by messages it applies in
        # another batch is published emptied, and a window it closed gets its final record
        # again.
        changelog = self.table_io.write_all(
            (table.writeback for table in self.tables), (e for _, e in self.pending)
        )
        await changelog.send(self.sends)
        await self.sends.confirm()  # a failed send stops the worker: nothing acked
        changelog.persist()
        await self.sends.send_all(self.send_updates(records))
        if removing:
            await self.sends.confirm()  # their records in Kafka: the table may forget them
            for q, cells in removing.items():
                self.cells.partition = q
                for cell in cells:
                    del self.cells[cell]
            changelog = self.table_io.write_all(
                (self.cells.writeback,), (e for _, e in self.pending)
            )
            await changelog.send(self.sends)
            await self.sends.confirm()
            changelog.persist()
        return await self.read_model.flush()  # acked once Redis has the values

    def _hold(self, removing: dict[int, dict[str, dict[str, Any]]]) -> dict[int, list[str]]:
        """The removed cells whose records this flush sends, written to the table as they
        were published instead of deleted: a window closed (or corrected, or published again
        for a next owner) and removed past its retention in one batch was deleted from the
        table before its records went out, and a worker killed between the two lost them for
        good (no cell left for its successor to publish again, ``po``). A cell whose
        deletion a failed message undid (``all_or_nothing``) is left as it is."""
        held: dict[int, list[str]] = {}
        for q, cells in removing.items():
            for cell, stored in cells.items():
                if self.cells.undelete(q, cell, stored):
                    held.setdefault(q, []).append(cell)
        return held
