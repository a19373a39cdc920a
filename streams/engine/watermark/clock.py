"""The watermark: how far in event time every input partition of the cluster has come (pure).

Kafka delivers the partitions of the input topics at different paces (a backlog of calls may
be read before the emails of the same hours), and with several workers each reads only its
share, so neither the largest event time seen nor one worker's own partitions say what is
still to come. The watermark is the *smallest* of the newest event times of every input
partition of the cluster, leaving out a partition only when its owner has routed everything
in it and it has been quiet for ``idle_s``; the entity stage judges lateness against it.

Each worker keeps a ``Watermark`` of the partitions it reads and, at every tick, takes a
*cut*: one ``Progress`` per partition (next offset to route, newest event time routed,
quiet), published only once everything routed before the cut is in Kafka. ``combine`` then
joins everyone's cuts with the partitions' end offsets read *after* the cut:

- a partition whose owner has not routed all of it (position < end) counts with the newest
  event time its owner reported, or, if its owner has routed nothing from it yet (just
  started, just assigned, still behind in the fetch order), holds the watermark: it could
  hold anything;
- a partition routed to its end counts too, unless its owner says it is quiet (or it never
  had an event), and then it is left out;
- a partition nobody has reported on holds the watermark, unless it is empty.

A partition reported quiet that received events since is caught by the end offsets, read
after the cut: it is no longer routed to its end, so it counts again. A watermark built this
way is never above the newest event time before any event still to be routed, in any
partition, whichever worker routes it. It never goes back (``ClusterWatermark``).

Between ticks, an event gets the other workers' partitions as of the last tick and this
worker's as of now (``Watermark.view``, with the consumer's fresh end offsets), so one
worker alone moves with every event as before. While another worker's partition is left
out as quiet, only this worker's events below the last snapshot's end offsets count: events
here that arrived after it may be younger than that partition's next ones. No I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import orjson

Source = tuple[str, int]  # (input topic, partition)
CaughtUp = Callable[[str, int, int | None], bool]
"""(topic, partition, last offset processed or None) -> nothing left to read there"""


@dataclass(frozen=True)
class Progress:
    """One input partition at a worker's cut."""

    position: int  # next offset to route: everything before it is routed and in Kafka
    newest: int | None  # newest event time (ms) routed from it since its owner started
    quiet: bool  # routed to its end (as its owner knew it) and without a message for idle_s

    def encode(self) -> bytes:
        return orjson.dumps({"p": self.position, "n": self.newest, "q": self.quiet})

    @classmethod
    def decode(cls, raw: bytes) -> Progress:
        value = orjson.loads(raw)
        return cls(position=int(value["p"]), newest=value["n"], quiet=bool(value["q"]))


class Watermark:
    """What this worker has routed from the input partitions it reads."""

    def __init__(self, idle_s: float, caught_up: CaughtUp) -> None:
        self.idle_s = idle_s
        self.caught_up = caught_up
        self.newest: dict[Source, int] = {}  # source partition -> max event time ms
        self.seen_at: dict[Source, float] = {}  # source partition -> monotonic time
        self.offset: dict[Source, int] = {}  # source partition -> last offset
        # The end offsets of the last tick's snapshot, and the newest event time below them:
        # what this worker may count while another worker's partition is left out as quiet.
        self.boundary: dict[Source, int] = {}
        self.below: dict[Source, int] = {}
        # (last offset, newest) per partition as of the last flush that put in Kafka every
        # message routed before it: all a cut may tell other workers.
        self.delivered: dict[Source, tuple[int, int | None]] = {}
        self.started = time.monotonic()

    def read(self, topic: str, partition: int, offset: int, now: float | None = None) -> None:
        """A message of ``topic[partition]`` was processed (valid or not)."""
        source = (topic, partition)
        self.seen_at[source] = time.monotonic() if now is None else now
        self.offset[source] = offset

    def observe(self, topic: str, partition: int, at_ms: int) -> None:
        """A valid event of ``topic[partition]`` happened at ``at_ms``."""
        source = (topic, partition)
        if at_ms > self.newest.get(source, -1):
            self.newest[source] = at_ms
        below = self.offset.get(source, 0) < self.boundary.get(source, 0)
        if below and at_ms > self.below.get(source, -1):
            self.below[source] = at_ms

    def checkpoint(self) -> dict[Source, tuple[int, int | None]]:
        """What was routed so far: take it before a flush, give it to ``flushed`` after."""
        return {source: (offset, self.newest.get(source)) for source, offset in self.offset.items()}

    def flushed(self, checkpoint: dict[Source, tuple[int, int | None]]) -> None:
        self.delivered = checkpoint

    def snapshot(self, ends: Mapping[Source, int], cut: Mapping[Source, Progress]) -> None:
        """The end offsets read after ``cut`` (this worker's partitions): what was routed
        before the cut is below them."""
        for source, record in cut.items():
            if source in ends:
                self.boundary[source] = ends[source]
                if record.newest is not None:
                    self.below[source] = max(record.newest, self.below.get(source, -1))

    def quiet(self, source: Source, now: float | None = None) -> bool:
        """Caught up and without a message for ``idle_s`` (and this worker up that long)."""
        now = time.monotonic() if now is None else now
        if now - self.started < self.idle_s:
            return False  # just started: the assignment may not even be known yet
        seen = self.seen_at.get(source)
        if seen is not None and now - seen < self.idle_s:
            return False
        return self.caught_up(source[0], source[1], self.offset.get(source))

    def progress(self, source: Source, committed: int | None, now: float | None = None) -> Progress:
        """The partition at this cut, as of the last flush; ``committed`` is the group's
        next offset to read, for a partition nothing was delivered from since start."""
        offset, newest = self.delivered.get(source, (None, None))
        position = offset + 1 if offset is not None else (committed or 0)
        return Progress(position, newest, self.quiet(source, now))

    def view(self, sources: list[Source], capped: bool, now: float | None = None) -> ClusterView:
        """This worker's ``sources`` right now, with fresh end offsets (the consumer's): a
        partition with unread events and nothing routed from it holds; one caught up and
        quiet is left out. ``capped``: only events below the last snapshot count (another
        worker's partition is left out as quiet as of that snapshot: later events here may
        be younger than its next ones)."""
        now = time.monotonic() if now is None else now
        newest_of = self.below if capped else self.newest
        active: list[tuple[int, str]] = []
        holding: list[str] = []
        newest: list[int] = []
        quiet = True
        for source in sources:
            at = newest_of.get(source)
            if at is not None:
                newest.append(at)
            caught_up = self.caught_up(source[0], source[1], self.offset.get(source))
            if at is None:
                if not caught_up:
                    holding.append(f"{source[0]}/{source[1]}")
                    quiet = False
            elif not self.quiet(source, now):
                quiet = False
                active.append((at, f"{source[0]}/{source[1]}"))
        return _view(active, holding, newest, quiet, excluded=False)


@dataclass(frozen=True)
class ClusterView:
    """Input partitions at one combination of cuts and end offsets."""

    holding: tuple[str, ...]  # partitions holding it: nothing can be said yet
    active: int | None  # the smallest newest event time of the partitions that count
    slowest: str | None  # the partition setting it
    newest: int | None  # the newest event time known of any partition
    quiet: bool  # every partition routed to its end and quiet: windows may close on wall time
    excluded: bool  # some partition is left out as quiet or empty
    runner_up: int | None = None  # the second smallest of the partitions that count, if any

    @property
    def value(self) -> int | None:
        """The watermark; None while a partition holds it."""
        if self.holding:
            return None
        return self.active if self.active is not None else self.newest

    def advanced(self, name: str, newest: int) -> ClusterView | None:
        """This view once partition ``name`` has routed events up to ``newest`` (its newest
        event time, never lower than before), without looking at the others again; None
        when that cannot be said so (it is not the slowest, or it passed the runner-up)."""
        if name != self.slowest or self.active is None:
            return None
        if self.runner_up is not None and newest > self.runner_up:
            return None  # another partition may set it now
        top = newest if self.newest is None else max(self.newest, newest)
        return replace(self, active=max(self.active, newest), newest=top)

    def describe(self) -> str:
        return f"holding={list(self.holding)[:5]} slowest={self.slowest} quiet={self.quiet}"


NOTHING_YET = ClusterView(("(no tick yet)",), None, None, None, False, False)


def _view(
    active: list[tuple[int, str]], holding: list[str], newest: list[int], quiet: bool,
    excluded: bool,
) -> ClusterView:  # fmt: skip
    low = min(active) if active else (None, None)
    second = sorted(v for v, _ in active)[1] if len(active) > 1 else None
    return ClusterView(
        tuple(holding), low[0], low[1], max(newest) if newest else None, quiet, excluded, second
    )


def merge(a: ClusterView, b: ClusterView) -> ClusterView:
    """Two disjoint sets of partitions as one."""
    pairs = ((a.active, a.slowest), (b.active, b.slowest))
    actives = [(v, n or "") for v, n in pairs if v is not None]
    newest = [v for v in (a.newest, b.newest) if v is not None]
    view = _view(
        actives, [*a.holding, *b.holding], newest, a.quiet and b.quiet,
        excluded=a.excluded or b.excluded,
    )  # fmt: skip
    # The second smallest of both sides: each side's smallest and runner-up hold it.
    values = sorted(v for v in (a.active, a.runner_up, b.active, b.runner_up) if v is not None)
    return replace(view, runner_up=values[1] if len(values) > 1 else None)


def combine(
    sources: Iterable[Source], progress: Mapping[Source, Progress], ends: Mapping[Source, int]
) -> ClusterView:
    """``sources`` from each partition's latest ``progress`` and its end offset read after
    those cuts."""
    active: list[tuple[int, str]] = []
    holding: list[str] = []
    newest: list[int] = []
    quiet, excluded = True, False
    for source in sources:
        name = f"{source[0]}/{source[1]}"
        end, record = ends.get(source), progress.get(source)
        if record is not None and record.newest is not None:
            newest.append(record.newest)
        if end is None:  # end offset unknown: anything could be there
            holding.append(name)
            quiet = False
        elif record is None:
            if end > 0:  # events and no owner heard of yet
                holding.append(name)
                quiet = False
            else:
                excluded = True
        elif record.position < end:  # events its owner has not routed yet
            quiet = False
            if record.newest is None:
                holding.append(name)
            else:
                active.append((record.newest, name))
        elif not record.quiet and record.newest is not None:
            quiet = False
            active.append((record.newest, name))
        else:
            quiet = quiet and record.quiet
            excluded = True
    return _view(active, holding, newest, quiet, excluded)


class ClusterWatermark:
    """The cluster watermark: other workers' partitions as of the last tick, this worker's
    as of now; its value never goes back."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.view = NOTHING_YET  # every partition, at the last tick
        self.remote = NOTHING_YET  # the other workers' partitions, at the last tick
        self.merged: tuple[ClusterView, ClusterView] | None = None  # (remote, local) last taken

    @property
    def quiet(self) -> bool:
        return self.view.quiet

    def _take(self, value: int | None) -> bool:
        if value is not None and (self.last is None or value > self.last):
            self.last = value
            return True
        return False

    def update(self, view: ClusterView, remote: ClusterView) -> bool:
        """Takes the tick's views (every partition; the other workers'); whether it moved."""
        self.view, self.remote = view, remote
        return self._take(view.value)

    def current(self, local: Callable[[bool], ClusterView]) -> int | None:
        """The watermark for an event routed now: ``local(capped)`` is this worker's
        partitions now (``capped`` when another worker's partition is left out)."""
        if self.remote.holding:
            return self.last
        view = local(self.remote.excluded)
        if self.merged is None or self.merged[0] is not self.remote or self.merged[1] is not view:
            self._take(merge(self.remote, view).value)  # the same views: the same value
            self.merged = (self.remote, view)
        return self.last


def tick(
    watermark: Watermark,
    cluster: ClusterWatermark,
    cut: Mapping[Source, Progress],
    records: Mapping[Source, Progress],
    sources: Iterable[Source],
    ends: Mapping[Source, int],
) -> bool:
    """One exchange tick once its reads are done: this worker's ``cut`` (its partitions'
    progress, as of its last flush), the other workers' latest ``records``, every input
    partition (``sources``) and the end offsets read after the cut. Moves ``cluster``;
    whether its value moved."""
    watermark.snapshot(ends, cut)
    remote = combine([s for s in sources if s not in cut], records, ends)
    return cluster.update(merge(remote, combine(list(cut), cut, ends)), remote)
