"""The entity stage: dedup, lateness, entity histories and the partial KPI cells (Faust glue).

It consumes ``internal.entities`` with manual acks: batch messages of routed items, each
item in the partition of its ``role:entity`` (``streams.engine.routing``), and watermark
heartbeats. Item ``i`` of the message at offset ``o`` of partition ``p`` is applied at
position ``o * SLOTS + i`` (``streams.engine.outbox.position``), and it writes, each in one
table value carrying the position mark of the last item applied to it:

- ``entity-seen[role:event_id]``: the offset of the first copy, its event time and the window
  kinds it was late for (a second copy at another offset is a duplicate; the same offset, a
  redelivery). Kept while a copy could still change a window: once the partition's event
  time is past the retention of every window of the event, a copy would be left out of all
  of them anyway, and the id is swept (``streams.engine.sweep``): dedup covers exactly what
  can still be applied, and the table holds the ids of the longest retention (3 years of
  event time by default), no more;
- ``entities[role:key]``: the entity's summary: the items of its history that can still
  change its numbers, and those that may be redelivered (``streams.kpi.summaries``), and
  the event time of its latest event (``l``). An entity with no event for the horizon
  (``entity_horizon_ms``, ``SALESPULSE_ENTITY_HORIZON_S``, about 3 years of event time by
  default) is swept (:func:`idle_entity`): a later event for it starts it afresh;
- ``cells[p|cell]``: this partition's partial sum of the cell;
- ``stream-time[p]``: the partition's stream time: the largest ingest watermark received
  (``streams.engine.watermark.clock``), moved to wall time when the partition is idle (``t``, the
  clock windows close on), and that largest watermark alone (``e``, event time: what
  retention is measured in; wall time never moves it, so an idle floor deletes nothing).

A redelivered message (after a crash, offsets are only committed once flushed) finds marks
at or past its items' positions and changes nothing it already changed, so effects are
exactly once. The delta an item brings is recomputed from the entity's summary by position,
so a redelivery also re-dirties the cells it touched and they are sent again. ``flush``
sends the dirty cells' absolute partials to ``internal.cells`` (keyed by dimension and
key), then this partition's stream time to every publisher partition, and only then acks
the events: the publisher never learns a stream time before the cells that precede it.

A rebalance abandons what was not flushed (``revoke``): the partitions' pending writes,
acks and counts are dropped, an event dequeued before the rebalance is not applied after
it, and the partitions' next owner (this worker or another) reads them again from the
committed offsets. So no worker writes state for a partition it no longer owns, and the
counters (applied, duplicates, late) count what was flushed: each event once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from streams import json_bytes
from streams.engine.delivery import Sends
from streams.engine.failures import Origin, StageFailures
from streams.engine.outbox import cell_chunks, position
from streams.engine.sweep import Sweep
from streams.engine.writeback import (
    PLAIN_TABLES,
    TableIO,
    WriteBack,
    abandon,
    all_or_nothing,
)
from streams.kpi.cells import Cells, add_cell, split_cell_key
from streams.kpi.facts import contribution
from streams.kpi.rep_sets import is_shard, presence, presence_moved, routing_target
from streams.kpi.summaries import delta_of, essential, extend, step
from streams.kpi.windows import CELL_KINDS, LIVE, CellWindows, Graces, Retention
from streams.observability.metrics import PipelineStats

log = logging.getLogger(__name__)

StagedCells = dict[str, list[Any]]
"""Per cell, what the messages of a partition since its last flush add: [its mark (as the
flush found it, then the position of the last item added), whether an item was added, the
sum of their deltas, whether an item was already in it (a redelivery: sent again)]."""

FLUSH_ITEMS = 5_000  # routed items applied, or
FLUSH_CELLS = 10_000  # partial cells changed: the agent flushes then (``full``)
ESSENTIALS_KEPT = 10_000  # entities whose essential items stay in memory (``_entity_delta``)
MARK_EVERY_S = 5.0  # a stream time marker per entity partition at least this often
MARK_MOVED_S = 1.0  # and at most this often while it moves


class Topic(Protocol):
    """Where the stage sends (faust's ``Topic`` has it): awaited, ``send`` gives the send's
    future, which the flush confirms (``streams.engine.delivery``)."""

    async def send(
        self, *, key: bytes | None = None, value: bytes | None = None,
        partition: int | None = None, headers: list[tuple[str, bytes]] | None = None,
    ) -> Any: ...  # fmt: skip


LateCopy = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers for sales.late


def idle_entity(entity: Any, event_now: int, horizon_ms: int) -> bool:
    """Whether an entity's summary (``entities`` value) had no event for ``horizon_ms`` at
    event time ``event_now``: its latest event's time (``l``; a summary written before
    ``l`` was kept: its latest item's), the summary's items being only those that can
    still change its numbers, often old ones."""
    latest = entity.get("l")
    if latest is None:
        latest = max((int(item["t"]) for item in entity.get("h", ())), default=None)
    return latest is not None and event_now - latest > horizon_ms


class EntityStage:
    def __init__(
        self,
        *,
        seen: Any,
        entities: Any,
        cells: Any,
        stream_time: Any,
        cells_topic: Topic,
        late_topic: Topic,
        windows: CellWindows,
        graces: Graces,
        retention: Retention,
        idle_close_s: float,
        publisher_partitions: int,
        stats: PipelineStats,
        assigned: Callable[[], list[int]],
        caught_up: Callable[[int, int | None], bool],
        committed: Callable[[int], int | None],
        upstream_quiet: Callable[[], bool],
        sends: Sends,
        failures: StageFailures,
        read_source: Callable[[str, int, int], Awaitable[bytes | None]],
        cache_size: int = 0,
        entity_horizon_ms: int = 3 * 366 * 86_400_000,
        table_io: TableIO = PLAIN_TABLES,
    ) -> None:
        self.table_io = table_io  # how its tables are read and written (faust's in the worker)

        def writeback(table: Any, cached: int = cache_size) -> WriteBack:
            return WriteBack(table, cached, table_io.reader(table))

        self.seen, self.entities = writeback(seen), writeback(entities)
        self.cells, self.stream_time = writeback(cells), writeback(stream_time, 0)
        self.tables = (self.seen, self.entities, self.cells, self.stream_time)
        self.seen_sweep = Sweep(self.seen, self._forgettable)
        self.cells_sweep = Sweep(self.cells, self._cell_gone)
        self.entity_horizon_ms = entity_horizon_ms
        self.entities_sweep = Sweep(self.entities, self._entity_idle, self._forget_entity)
        self.cells_topic, self.late_topic = cells_topic, late_topic
        self.windows, self.graces, self.retention = windows, graces, retention
        self.idle_close_s = idle_close_s
        self.publisher_partitions = publisher_partitions
        self.stats = stats
        self.assigned = assigned
        self.caught_up = caught_up
        self.committed = committed  # partition -> its committed offset (the next to read)
        self.upstream_quiet = upstream_quiet
        self.offsets: dict[int, int] = {}  # partition -> last offset processed
        self.sends = sends  # what it sent for the events not acked yet (and its changelogs)
        self.dirty: dict[int, set[str]] = {}  # p -> cells to send at the flush
        # p -> what its messages since the last flush add to each cell, written by the flush
        # (``_write_cells``): a cell read and written once per flush, not once per message
        self.staging: dict[int, StagedCells] = {}
        self.pending: list[tuple[Any, Any]] = []  # (stream, event) to ack after the flush
        self.pending_items = 0  # items of the pending messages
        self.last_event_wall: dict[int, float] = {}
        self.marked: dict[int, tuple[int, float]] = {}  # p -> (stream ms sent, when)
        self.oldest_input: float | None = None  # Kafka timestamp of the oldest pending input
        self.started = time.monotonic()
        self.lock = asyncio.Lock()
        self.epoch = 0  # rebalances seen: an event dequeued in an earlier one is not applied
        # per partition, the counts of what is not flushed yet: (counter name, label) -> n
        self.counts: dict[int, Counter[tuple[str, Any]]] = {}
        self.staged: list[tuple[str, Any]] = []  # the counts of the item being applied
        self.failures = failures
        self.read_source = read_source  # (topic, partition, offset) -> the input's bytes
        # role:key -> (the entity's mark, its essential items as of that mark): what the
        # next item's delta is computed from (``_entity_delta``). A cache: whatever it lacks
        # is worked out from the entity's summary; bounded, and dropped at a rebalance.
        self.essentials: dict[str, tuple[int, list[dict[str, Any]]]] = {}

    # --- stream time ---------------------------------------------------------------------

    def _idle_now_ms(self, partition: int) -> int | None:
        """Wall time in ms when the partition has been idle long enough to close on it.

        Only a partition with nothing left to read, while every input partition of the
        cluster is routed and quiet too, is idle: one with a backlog (a replay, a restart)
        is waiting its turn.
        """
        last = self.last_event_wall.get(partition, self.started)
        if time.monotonic() - last < self.idle_close_s:
            return None
        if self.caught_up(partition, self.offsets.get(partition)) and self.upstream_quiet():
            return int(time.time() * 1000)
        return None

    def stream_ms(self, partition: int) -> int | None:
        """The partition's stream time, moved to wall time when it is idle."""
        stored = self.stream_time.get(partition, str(partition))
        persisted = None if stored is None else int(stored["t"])
        idle = self._idle_now_ms(partition)
        if idle is None:
            return persisted
        return idle if persisted is None else max(persisted, idle)

    def status(self) -> dict[int, str]:
        """Per assigned partition, why its stream time is where it is (for the status log)."""
        now = time.monotonic()
        out = {}
        for p in self.assigned():
            quiet_s = now - self.last_event_wall.get(p, self.started)
            out[p] = (
                f"t={self.stream_ms(p)} last={self.offsets.get(p)} quiet={quiet_s:.0f}s "
                f"caught_up={self.caught_up(p, self.offsets.get(p))}"
            )
        return out

    # --- one message ---------------------------------------------------------------------

    async def process(self, stream: Any, event: Any) -> None:
        message = event.message
        p, o = message.partition, message.offset
        epoch = self.epoch
        async with self.lock:
            if epoch != self.epoch:
                return  # dequeued before a rebalance: read again from the committed offset
            heartbeat = isinstance(event.value, dict) and "wm" in event.value
            if heartbeat:
                self._advance(p, position(o, 0), event.value["wm"])
            else:
                self.pending_items += len(event.value["items"])
                staged = self.staging.setdefault(p, {})
                for index, routed in enumerate(event.value["items"]):
                    await self._apply_or_dead_letter(message, position(o, index), routed, staged)
            if not heartbeat:  # a watermark heartbeat is no activity: the partition stays idle
                self.last_event_wall[p] = time.monotonic()
            self.offsets[p] = o
            self.pending.append((stream, event))

    async def _apply_or_dead_letter(
        self, message: Any, o: int, routed: Any, staged: StagedCells
    ) -> None:
        """Apply one routed item, all of it or nothing: an item that raises (a bug must not
        stop the stage) leaves no write behind and goes to sales.deadletter at the flush
        (``streams.engine.failures``), as the input event it came from (or, routed before
        items named it, as the internal.entities message)."""
        p = message.partition
        try:
            with all_or_nothing(self.tables):
                late_copy, delta = self._apply(p, o, routed)
                if delta:
                    self._stage_cells(p, o, delta, staged)
        except Exception as exc:
            self.staged.clear()
            log.exception("entity stage: could not apply position %s of partition %s", o, p)
            src, value = routed.get("src"), None
            if src:
                source = Origin.parse(src)
                value = await self.read_source(source.topic, source.partition, source.offset)
            else:
                source = Origin(message.topic, p, message.offset)
            if value is None:  # gone from the broker (or no src): the event as validated
                value = json_bytes.dumps(routed.get("event") or routed.get("item"))
            self.failures.add(p, source, value, exc, role=str(routed.get("role")))
            return
        counts = self.counts.setdefault(p, Counter())
        for counted in self.staged:
            counts[counted] += 1
        self.staged.clear()
        if late_copy is not None:
            key, value, headers = late_copy
            await self.sends.send(self.late_topic.send(key=key, value=value, headers=headers))

    def _advance(self, p: int, o: int, watermark: int | None) -> None:
        """The partition's stream time moves to ``watermark`` (never back)."""
        stored = self.stream_time.get(p, str(p))
        if stored is None or stored["m"] < o:
            current = self.stream_ms(p)
            newest = max(x for x in (current, watermark, -1) if x is not None)
            event = self.event_ms(p)
            if watermark is not None and (event is None or watermark > event):
                event = watermark
            self.stream_time.set(p, str(p), {"t": newest, "e": event, "m": o})

    def event_ms(self, partition: int) -> int | None:
        """The partition's event time: the largest watermark it received (never wall time)."""
        stored = self.stream_time.get(partition, str(partition))
        return None if stored is None else stored.get("e")

    def _apply(self, p: int, o: int, value: Any) -> tuple[LateCopy | None, Cells | None]:
        """Apply one routed item (its table writes stay pending until the flush). Returned:
        the copy for sales.late it calls for, if any, and what it adds to the partial cells,
        both the caller's to send and stage once it succeeded."""
        role = value["role"]
        late_copy: LateCopy | None = None
        # The ingest validated the event once and sent its history item: no second parse here.
        base = value["item"]
        event_type = base["x"]
        seen_key = f"{role}:{base['id']}"
        seen = self.seen.get(p, seen_key)
        if seen is not None and seen["o"] != o:
            # The same input message routed again (the ingest restarted before its offset
            # was committed) is not a duplicate, just nothing new; another message is.
            src = value.get("src")
            if role == "event" and src != seen.get("src") and src not in seen.get("d", ()):
                # Counted once per copy: a copy routed twice (its input read again after a
                # rebalance or a crash) keeps its source, remembered here.
                self.seen.set(p, seen_key, {**seen, "d": [*seen.get("d", ()), src][-8:]})
                self._count(p, "duplicates", event_type)
            return None, None
        ts = value.get("ts")
        if ts is not None and (self.oldest_input is None or ts < self.oldest_input):
            self.oldest_input = ts
        at_ms = int(base["t"])
        watermark = value.get("w")
        if seen is None:
            # Lateness is judged against the watermark the message carries and this
            # partition's stream time (the largest watermark its messages carried, kept in
            # the stream-time table, or wall time when it is idle). The table survives a
            # restart, when the ingest's watermark starts from nothing; and a message
            # redelivered after a crash meets the same stored time as the first time (the
            # table is restored to the flush its offsets came after) or has its answer in
            # the seen table. Every worker's watermark is the cluster's, so a fast worker
            # does not push it past a slow one's events (docs/engine.md).
            #
            # An event late for a kind (its window closed) is applied all the same: the
            # window's final values are corrected. Only the kinds whose window is past its
            # retention, in event time (the wall clock never moves it), leave it out, and
            # those are what the seen table remembers as ``late``.
            persisted = self.stream_ms(p)
            current = max((x for x in (watermark, persisted) if x is not None), default=None)
            event_now = max(
                (x for x in (watermark, self.event_ms(p)) if x is not None), default=None
            )
            late = self.windows.late_kinds(at_ms, event_now, self.retention)
            self.seen.set(
                p, seen_key, {"o": o, "t": at_ms, "late": list(late), "src": value.get("src")}
            )
            for kind in self.windows.late_kinds(at_ms, current, self.graces):
                self._count(p, "late", (kind, role))
            for kind in late:
                self._count(p, "expired", (kind, role))
            if late and role == "event":  # once per event, not once per role
                late_copy = (
                    f"{role}:{value['key']}".encode(),
                    json_bytes.dumps(value["event"]),
                    [("late_kinds", ",".join(late).encode()), ("role", role.encode())],
                )
        else:
            late = tuple(seen["late"])
        self._advance(p, o, watermark)
        if len(late) == len(CELL_KINDS):
            return late_copy, None  # past every window's retention: no window, no entity
        if role == "event" and seen is None:  # not again for a redelivery of the same offset
            self._count(p, "applied", event_type)
        item = {**base, "o": o, "late": sorted(late)}
        if role == "event":
            delta = contribution(role, [item], self.windows)
        else:
            delta = self._entity_delta(p, role, value["key"], item, o)
        return late_copy, delta

    def full(self) -> bool:
        """Enough waits for the flush that the agent should flush now, not at the next tick:
        what a flush holds in memory (table writes, their changelog records, partials) is
        bounded by this, whatever the backlog."""
        staged = sum(len(cells) for cells in self.staging.values())
        return self.pending_items >= FLUSH_ITEMS or staged >= FLUSH_CELLS

    def _count(self, p: int, counter: str, label: Any) -> None:
        """Counted for ``p`` once the item being applied succeeded (``staged``)."""
        self.staged.append((counter, label))

    def revoke(self, partitions: set[int]) -> None:
        """A rebalance took ``partitions`` (all of this worker's, with Kafka's eager
        protocol): what was not flushed of them is dropped (module docstring). Called with
        the lock held, so no flush is half done."""
        self.epoch += 1
        self.pending = abandon(self.tables, self.pending, partitions)
        self.pending_items = 0  # a flush threshold, not a count that must be exact
        self.seen_sweep.forget(partitions)
        self.cells_sweep.forget(partitions)
        self.entities_sweep.forget(partitions)
        self.failures.revoke(partitions)
        self.essentials.clear()  # the tables are read again from their changelogs
        for p in partitions:
            self.dirty.pop(p, None)
            self.staging.pop(p, None)
            self.counts.pop(p, None)
            self.offsets.pop(p, None)

    def _cell_gone(self, name: str, partial: Any, event_now: int) -> bool:
        """A partial cell (``p|cell``) whose window is past its retention: the publisher
        removed the cell and opens it no more, and no event is applied to that window."""
        kind, start, _, _ = split_cell_key(name.split("|", 1)[1])
        return self.windows.gone(kind, start, event_now, self.retention)

    def _forgettable(self, key: str, seen: Any, event_now: int) -> bool:
        """A seen id whose every window is past its retention at ``event_now`` (ids seen
        before event times were kept in the table are kept)."""
        at_ms = seen.get("t")
        if at_ms is None:
            return False
        return len(self.windows.late_kinds(at_ms, event_now, self.retention)) == len(CELL_KINDS)

    def _entity_idle(self, name: str, entity: Any, event_now: int) -> bool:
        return idle_entity(entity, event_now, self.entity_horizon_ms)

    def _forget_entity(self, p: int, name: str, entity: Any) -> None:
        """An entity swept (idle for the horizon): a lead still waiting for its first touch
        leaves the live cells (``open_leads``, what ``leads_waiting`` counts), as a lead
        never seen; the windows it counted in keep their values. Written with the sweep's
        deletion, in the same flush, and sent with it (the cell is dirty)."""
        role = name.split(":", 1)[0]
        if role != "lead":
            return  # only leads are in the live cells
        delta = contribution(role, list(entity.get("h", ())), self.windows)
        dirty = self.dirty.setdefault(p, set())
        for cell, components in delta.items():
            if split_cell_key(cell)[0] != LIVE:
                continue
            key = f"{p}|{cell}"
            current = self.cells.get(p, key)
            if current is None:
                continue
            merged = dict(current["c"])
            add_cell(merged, components, -1)
            self.cells.set(p, key, {"c": merged, "m": current["m"]})
            dirty.add(cell)

    def _entity_delta(self, p: int, role: str, key: str, item: dict[str, Any], o: int) -> Cells:
        """What ``item`` (at position ``o``) adds to its entity's cells, and the entity's
        summary with it: a few items whatever its age (``streams.kpi.summaries``), what may
        be redelivered included. A new item's work does not grow with the items kept: its
        delta comes from the essential items before it, kept from the entity's last item
        (``essentials``), and the summary is judged again only when the committed offset
        moved."""
        name = f"{role}:{key}"
        entity = self.entities.get(p, name) or {"h": [], "m": -1}
        if entity["m"] >= o:  # a redelivery: from the items before it by position
            return delta_of(role, entity["h"], o, self.windows)
        committed = self.committed(p)
        keep_from = None if committed is None else position(committed, 0)
        summary = extend(role, entity["h"], item, keep_from, entity.get("k", -1))
        latest = max(int(item["t"]), entity.get("l", -1))
        self.entities.set(p, name, {"h": summary, "m": o, "l": latest, "k": keep_from})
        cached = self.essentials.pop(name, None)
        if cached is not None and cached[0] == entity["m"]:
            before = cached[1]
        else:
            before = essential(role, entity["h"])
        delta, after = step(role, before, item, self.windows)
        if len(self.essentials) >= ESSENTIALS_KEPT:
            self.essentials.clear()
        self.essentials[name] = (o, after)
        return delta

    def _stage_cells(self, p: int, o: int, delta: Cells, staged: StagedCells) -> None:
        """Add an item's delta to what the partition's messages since the last flush add to
        each cell: the cells table is read and written once per cell per flush
        (``_write_cells``), not once per item or message. An item adds to a cell only past
        the cell's mark, as when each item wrote the table: the mark the flush found, then
        the position of the last item staged (a message read again before the flush, after a
        seek, finds its items there)."""
        for cell, components in delta.items():
            entry = staged.get(cell)
            if entry is None:
                current = self.cells.get(p, f"{p}|{cell}")
                entry = staged[cell] = [-1 if current is None else current["m"], False, {}, False]
            if entry[0] < o:
                add_cell(entry[2], components, owned=True)  # the flush's own sums
                entry[0], entry[1] = o, True
            else:
                entry[3] = True

    def _write_cells(self, p: int, staged: StagedCells) -> None:
        """One table write per cell the partition's messages added to since the last flush,
        marked with its last item's position; the cell is sent at the flush (dirty), but a
        rep shard only when a rep came in or went out (``rep_sets.presence``, all the
        publisher reads of it: a rep's every event sent its team's, region's and the global
        shards of five windows)."""
        dirty = self.dirty.setdefault(p, set())
        for cell, (mark, added, total, resent) in staged.items():
            # An item already in it (a redelivery) has the cell sent again, as the flush
            # that wrote it may have died before its partials went out: also when later
            # items, staged with it, leave a shard's reps as they were.
            if not added:
                dirty.add(cell)
                continue
            name = f"{p}|{cell}"
            current = self.cells.get(p, name)
            before = current["c"] if current is not None else {}
            merged = dict(before)
            add_cell(merged, total)
            self.cells.set(p, name, {"c": merged, "m": mark})
            shard = is_shard(cell.split("|", 3)[2])
            if resent or not shard or presence_moved(before, merged, total):
                dirty.add(cell)

    # --- flush ---------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write the tables, send dirty partials, then stream times, then ack."""
        async with self.lock:
            # Reads every partition's keys: faust would look only in the store of the event
            # being processed when the flush runs from an agent (streams.engine.writeback).
            with self.table_io.outside_events():
                # What the messages since the last flush add to the partial cells, one write
                # per cell; first, as the sweeps below read and write cells.
                staging, self.staging = self.staging, {}
                for p, staged in staging.items():
                    self._write_cells(p, staged)
                # Expired seen ids, partial cells and idle entities, a few per flush, of the
                # partitions this flush writes; first, as a lead forgotten leaves the live
                # cells, which this flush sends.
                for p in {event.message.partition for _, event in self.pending}:
                    event_now = self.event_ms(p)
                    self.stats.seen_purged += self.seen_sweep.step(p, event_now)
                    self.stats.cells_purged += self.cells_sweep.step(p, event_now)
                    self.stats.entities_purged += self.entities_sweep.step(p, event_now)
                pending, self.pending = self.pending, []
                self.pending_items = 0
                dirty, self.dirty = self.dirty, {}
                counts, self.counts = self.counts, {}
                oldest, self.oldest_input = self.oldest_input, None
                # Stream times go to the publishers when they moved (at most every MARK_MOVED_S),
                # and every MARK_EVERY_S anyway (a restarted publisher learns them): not a marker
                # per partition per flush, which kept internal.cells busy on an idle floor.
                wall = time.monotonic()
                marks: dict[int, tuple[int, int | None]] = {}
                for p in self.assigned():
                    ms = self.stream_ms(p)
                    sent = self.marked.get(p)
                    if ms is not None and (
                        sent is None
                        or (sent[0] != ms and wall - sent[1] >= MARK_MOVED_S)
                        or wall - sent[1] >= MARK_EVERY_S
                    ):
                        marks[p] = (ms, self.event_ms(p))
                        self.marked[p] = (ms, wall)
                partials: list[tuple[bytes, bytes]] = []
                for p, names in dirty.items():
                    batches: dict[str, list[list[Any]]] = {}
                    for cell in names:
                        stored = self.cells.get(p, f"{p}|{cell}")
                        if stored is not None:
                            _, _, dim, key = split_cell_key(cell)
                            components = presence(stored["c"]) if is_shard(dim) else stored["c"]
                            batches.setdefault(routing_target(dim, key), []).append(
                                [cell, stored["m"], components]
                            )
                    for target, cells in batches.items():
                        for chunk in cell_chunks(cells):
                            message = {"p": p, "cells": chunk, "ts": oldest}
                            partials.append((target.encode(), json_bytes.dumps(message)))
                changelog = self.table_io.write_all(self.tables, (event for _, event in pending))
                await changelog.send(self.sends)
                for target_key, partial in partials:
                    await self.sends.send(self.cells_topic.send(key=target_key, value=partial))
                for p, (ms, event_ms) in marks.items():
                    marker = json_bytes.dumps({"wm": p, "t": ms, "e": event_ms})
                    for q in range(self.publisher_partitions):
                        marking = self.cells_topic.send(key=b"__wm__", value=marker, partition=q)
                        await self.sends.send(marking)
                failed = await self.failures.send_pending()
                await self.sends.confirm()  # all in Kafka before an offset is committed, or a stop
                changelog.persist()
                self.failures.count(failed)
                for partition_counts in counts.values():
                    for (counter, label), n in partition_counts.items():
                        getattr(self.stats, counter)[label] += n
                for stream, event in pending:
                    await stream.ack(event)
