"""faust-streaming 0.15.3's fetch path (``faust/transport/consumer.py``), copied with three
changes so that no message fetched from aiokafka is lost on its way to the agents.

faust hands messages to the agents in two loops: ``getmany`` takes a batch from
aiokafka's fetcher (whose position then moves past the batch) and yields it message by
message; ``_drain_messages`` hands each to the agents' streams. Around a rebalance both
let messages go:

1. ``getmany`` stops yielding when the flow is suspended or the consumer generation
   changes, and skips the messages of a partition that is paused meanwhile; what it did
   not yield is dropped while aiokafka's position stays past it. When no seek follows
   (faust seeks to the committed offsets only in some of these paths), those messages are
   never read, and when they were a partition's last nothing comes to show the gap (the
   stages' offset guards see gaps only when a later offset arrives). Here the fetcher is
   sought back to the first message not yielded, when its position is still right after
   the batch (no seek has moved it since): :func:`left_behind` says which. It seeks
   directly, as faust's own ``seek`` does.
2. ``_drain_messages`` marks a message read (faust's read offset, below which a message
   read again is dropped) even when a suspended flow won the race and the message was
   never handed; after the seek back, the copies read again were dropped. Here a message
   is marked read only once handed.
3. A seek (the offset guards', the rebalance rewind's) repositions aiokafka's fetcher, but
   ``getmany`` went on yielding what a batch fetched before it still held of that
   partition, past the offset sought: those raised faust's read offset again, so the copies
   the fetcher then read from the seek point were dropped below it, and the guard waited 3
   s to seek again. Here a partition sought since its batch was fetched has the rest of
   that batch skipped: as after a seek in any Kafka consumer, what comes next comes from
   the offset sought. A seek runs in faust's consumer thread (``seek_in_thread``), which
   notes the seeks made as it fetches each batch; the seek counts from the moment it is
   requested (``requested``), so a batch fetched before its turn in that thread is stale
   too.

4. (not a fix: the cost) faust races each message's handing against a suspended flow
   with ``wait_first``: four tasks and an ``asyncio.wait`` per message, about a tenth of
   the worker's CPU under a backlog. The handing (faust's ``on_message``: the message put
   on each agent's stream queue) almost always completes at once, so here it is started by
   hand (:func:`start`); only a handing that waits (a full queue) is raced, from where it
   stopped (:class:`Resumed`). A handing that completed at once is what the race would
   have given: its task finished in its first step.

Each copy carries the sha256 of the faust source it copies; a unit test fails when the
installed faust's differs, and names what to port.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Coroutine,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from types import CoroutineType
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.types import TP
from mode import Service

log = logging.getLogger(__name__)

DRAIN_SOURCE_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
"""sha256 of ``inspect.getsource`` of faust's ``Consumer._drain_messages`` (0.15.3)."""

GETMANY_SOURCE_SHA256 = "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e"
"""sha256 of ``inspect.getsource`` of faust's ``Consumer.getmany`` (0.15.3)."""

THREAD_GETMANY_SOURCE_SHA256 = "26fc5fc9f3b667e104f9657dbc49da3b3b6620d40cc9856761cbaf4da2172557"
"""sha256 of ``inspect.getsource`` of faust's ``AIOKafkaConsumerThread.getmany`` (0.15.3)."""


class Resumed:
    """A coroutine started by hand that then waited (:func:`start`): awaited, or made a
    task, it goes on from the future it waits on, exactly as the task driving it from the
    start would have (values, exceptions and cancellation are passed through)."""

    __slots__ = ("_coro", "_waits_on")

    def __init__(self, coro: Coroutine[Any, Any, Any], waits_on: Any) -> None:
        self._coro, self._waits_on = coro, waits_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._waits_on
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation, or what the awaited future threw
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def start(handing: Any) -> Awaitable[Any] | None:
    """Run ``handing`` (a coroutine) up to its first wait: None if it completed without
    one, else what goes on from there. Its exception, if it raises at once, propagates.
    Anything other than a coroutine is returned to be awaited as it is."""
    if not isinstance(handing, CoroutineType):
        return handing
    try:
        waits_on = handing.send(None)
    except StopIteration:
        return None
    return Resumed(handing, waits_on)


def left_behind(
    dropped: Mapping[TP, int], fetched_to: Mapping[TP, int], position: Mapping[TP, int | None]
) -> dict[TP, int]:
    """The partitions to seek back, and where: those with messages fetched but not
    yielded (``dropped``: the first such offset) whose fetcher ``position`` is still right
    after the batch (``fetched_to``: the batch's last offset). Elsewhere a seek (a
    rebalance's, to the committed offsets) or a reassignment has moved the position since,
    at or below those messages (they were never handed, so never committed): they are
    read again without help; a partition with no valid position is being reset."""
    return {
        tp: first
        for tp, first in dropped.items()
        if position.get(tp) is not None and position.get(tp) == fetched_to[tp] + 1
    }


def _last_offsets(records: Mapping[TP, list[Any]]) -> dict[TP, int]:
    return {tp: batch[-1].offset for tp, batch in records.items() if batch}


def _first_per_partition(rest: Iterable[tuple[TP, Any]], into: dict[TP, int]) -> None:
    for tp, record in rest:
        into.setdefault(tp, record.offset)


def _position_in(assignment: Any, tp: TP) -> int | None:
    """The fetch position of ``tp`` in aiokafka's ``assignment``, None when not valid."""
    state = assignment.state_value(tp)
    return int(state.position) if state is not None and state.has_valid_position else None


def _nothing() -> None:
    return None


def _log_below(below: dict[TP, list[int]]) -> None:
    """Say which messages of a batch the drain dropped as already handed (below faust's
    read offset), then forget them."""
    for tp, (first, last, read) in sorted(below.items()):
        log.info(
            "%s/%s offsets %s to %s fetched again were not handed: below the read offset %s",
            tp.topic, tp.partition, first, last, read,
        )  # fmt: skip
    below.clear()


class HandedOnlyFetch:
    """Mixin for faust's aiokafka ``Consumer`` (``streams.engine.faust.rebalance.Consumer``):
    faust's ``getmany`` and ``_drain_messages`` with the changes of the module
    docstring. ``refetched`` counts the partitions sought back by change 1, each also
    reported to the transport's ``on_refetch`` when it has one (a metric)."""

    refetched = 0

    def sought(self, tp: TP) -> None:
        """Record a seek of ``tp``, made at once (no await between this and the seek): what
        of ``tp`` a batch fetched before it still holds is not handed (change 3)."""
        seeks: dict[TP, int] = self.__dict__.setdefault("seeks", {})
        seeks[tp] = seeks.get(tp, 0) + 1

    def seek_in_thread(self, tp: TP, offset: int) -> None:
        """Seek aiokafka's fetcher in faust's consumer thread, where aiokafka runs. Called
        from the event loop's thread, aiokafka's ``seek`` deleted the fetcher's buffered
        records of ``tp`` while the consumer thread iterated them (``KeyError`` in
        ``Fetcher.fetched_records``: the fetcher crashed, and the worker with it). The seek
        is counted there too (``sought``), in order with the batches that thread fetches
        (``_getmany``). Not awaited: it runs at the thread's next turn."""
        thread = cast(Any, self)._thread
        loop = getattr(thread, "thread_loop", None)
        # Counted at once as well (``requested``): until the thread's turn, a batch that
        # thread fetches still comes from before the seek, and must count as stale.
        requested: dict[TP, int] = self.__dict__.setdefault("requested", {})
        requested[tp] = requested.get(tp, 0) + 1

        def seek() -> None:
            self.sought(tp)
            thread.seek(tp, offset)

        if loop is None or loop.is_closed() or not loop.is_running():
            seek()  # no consumer thread running (stopped, or a unit test): nothing races it
        else:
            loop.call_soon_threadsafe(seek)

    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109
        """faust's ``_getmany`` (``AIOKafkaConsumerThread.getmany``,
        ``THREAD_GETMANY_SOURCE_SHA256``), noting in the consumer thread, as the batch is
        fetched, how many seeks of each partition were made before it (``fetched_seeks``):
        a seek made after it makes the rest of the batch's records of its partition stale."""
        thread = cast(Any, self)._thread
        consumer = thread._ensure_consumer()
        seeks: dict[TP, int] = self.__dict__.setdefault("seeks", {})

        async def fetch() -> Any:
            records = await thread._fetch_records(
                consumer, active_partitions, timeout=timeout,
                max_records=consumer._max_poll_records,
            )  # fmt: skip
            self.__dict__["fetched_seeks"] = dict(seeks)
            return records

        return await thread.call_thread(fetch)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:  # noqa: ASYNC109
        """faust's ``getmany`` (``GETMANY_SOURCE_SHA256``); what it does not yield of a
        batch is fetched again (:meth:`_refetch`)."""
        this = cast(Any, self)
        records, active_partitions = await this._wait_next_records(timeout)
        generation_id = this.app.consumer_generation_id
        if records is None or this.should_stop:
            return

        records_it: Iterator[tuple[TP, Any]] = this.scheduler.iterate(records)
        to_message = this._to_message  # localize
        # The change (3): a partition sought since this batch was fetched has its records
        # here skipped: its fetcher reads again from where it was sought. Seeks requested,
        # not only those made: one waiting for the consumer thread's turn comes after it.
        requested: dict[TP, int] = self.__dict__.setdefault("requested", {})
        fetched_seeks = self.__dict__.pop("fetched_seeks", None)  # made as it was fetched
        if fetched_seeks is None:
            fetched_seeks = dict(self.__dict__.setdefault("seeks", {}))
        stale: dict[TP, list[int]] = {}
        dropped: dict[TP, int] = {}  # the change: first offset not yielded, per partition
        why: dict[TP, str] = {}  # and why, for the log
        if this.flow_active:
            for tp, record in records_it:
                if not this.flow_active:
                    dropped.setdefault(tp, record.offset)
                    why.setdefault(tp, "the flow was suspended")
                    break
                new_generation_id = this.app.consumer_generation_id
                if new_generation_id != generation_id:
                    this.log.dev(
                        "Generation id changed from %r to %r. Cancelling getmany.",
                        generation_id,
                        new_generation_id,
                    )
                    dropped.setdefault(tp, record.offset)
                    why.setdefault(tp, "the generation changed")
                    break
                if requested and requested.get(tp) != fetched_seeks.get(tp):
                    span = stale.get(tp)
                    if span is None:
                        stale[tp] = [record.offset, record.offset]
                    else:
                        span[1] = record.offset
                    continue
                if (
                    active_partitions is None
                    or tp in active_partitions
                    or tp in this._buffered_partitions
                ):
                    highwater_mark = this.highwater(tp)
                    this.app.monitor.track_tp_end_offset(tp, highwater_mark)
                    # convert timestamp to seconds from int milliseconds.
                    yield tp, to_message(tp, record)
                else:
                    dropped.setdefault(tp, record.offset)
                    why.setdefault(tp, "not fetched now (paused, or its stream queue full)")
            _first_per_partition(records_it, dropped)  # what a break left
            for tp, (first, last) in sorted(stale.items()):
                dropped.pop(tp, None)  # sought since: read again from there without help
                log.info(
                    "%s/%s offsets %s to %s, fetched before a seek of the partition, were not "
                    "handed: it is read again from where it was sought",
                    tp.topic, tp.partition, first, last,
                )  # fmt: skip
            if dropped:
                self._refetch(dropped, _last_offsets(records), why)
        else:
            this.log.dev("getmany called while flow not active. Seek back to committed offsets.")
            try:
                await this.perform_seek()
            except Exception as ex:
                this.log.warning(f"exception performing seek when flow not active {ex}")

    def _assignment(self) -> Any | None:
        """aiokafka's assignment (its subscription state), read without a call to the
        consumer thread (whose calls can wait on the broker); None when unsubscribed."""
        subscription = cast(Any, self)._thread._ensure_consumer()._subscription.subscription
        return subscription.assignment if subscription is not None else None

    def fetch_position(self, tp: TP) -> int | None:
        """aiokafka's fetch position of ``tp`` (the next offset its fetcher hands faust);
        None when unknown."""
        try:
            assignment = self._assignment()
            return None if assignment is None else _position_in(assignment, tp)
        except Exception:  # not started, unsubscribed, revoked meanwhile: unknown
            return None

    def _refetch(
        self, dropped: dict[TP, int], fetched_to: dict[TP, int], why: Mapping[TP, str] = {}
    ) -> None:
        """Seek the fetcher back to the messages of ``dropped`` (:func:`left_behind`), in the
        consumer thread (``seek_in_thread``: never through that thread's queue, whose calls
        can wait on the broker: the fetch loop must not wait behind them)."""
        try:
            assignment = self._assignment()
            if assignment is None:
                return  # unsubscribed (stopping): nothing is ours to read
            position = {tp: _position_in(assignment, tp) for tp in dropped}
            sought = left_behind(dropped, fetched_to, position)
            for tp in sorted(set(dropped) - set(sought)):
                log.info(
                    "%s/%s: offsets %s to %s were fetched but not handed (%s), and a seek has "
                    "moved the fetcher since (to %s): read again from there",
                    tp.topic, tp.partition, dropped[tp], fetched_to[tp],
                    why.get(tp, "a rebalance cut the batch"), position.get(tp),
                )  # fmt: skip
            for tp, offset in sorted(sought.items()):
                self.seek_in_thread(tp, offset)
                self.refetched += 1
                getattr(getattr(self, "transport", None), "on_refetch", _nothing)()
                log.info(
                    "%s/%s: offsets %s to %s were fetched but not handed (%s): fetching them "
                    "again",
                    tp.topic, tp.partition, offset, fetched_to[tp],
                    why.get(tp, "a rebalance cut the batch"),
                )  # fmt: skip
        except Exception:  # revoked or stopping meanwhile: its next owner reads it
            log.exception("could not seek back the messages faust dropped: %s", dropped)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover (a loop)
        """faust's ``_drain_messages`` (``DRAIN_SOURCE_SHA256``), marking a message read
        only once it was handed, racing only a handing that waits (module docstring, changes 2
        and 4)."""
        this = cast(Any, self)
        callback = this.callback
        getmany = this.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = this._read_offset.__getitem__
        set_read_offset = this._read_offset.__setitem__
        set_flag = this.diag.set_flag
        unset_flag = this.diag.unset_flag
        commit_every = this._commit_every
        acks_enabled_for = this.app.topics.acks_enabled_for
        requested: dict[TP, int] = self.__dict__.setdefault("requested", {})  # seek_in_thread
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        below: dict[TP, list[int]] = {}  # diagnosis: per batch, [first, last, read offset]
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator[Any], getmany(timeout=1.0))
                await this.sleep(0)
                if not this.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await this._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and this._n_acked >= commit_every:
                                this._n_acked = 0
                                await this.commit()
                            seeks_before = requested.get(tp)
                            # Change 4: handed at once, or raced from where it waited.
                            handing = start(callback(message))
                            if handing is not None:
                                waited = await this.wait_first(handing, this.suspend_flow.wait())
                            # Change 2: marked read once handed, not cut off, and only if no
                            # seek of its partition came meanwhile (the copies read again
                            # from the seek must not be dropped below it).
                            handed = handing is None or handing in waited.done
                            if handed and requested.get(tp) == seeks_before:
                                set_read_offset(tp, offset)
                        else:
                            dropped = below.get(tp)
                            if dropped is None:
                                below[tp] = [offset, offset, r_offset]
                            else:
                                dropped[1] = offset
                    if below:
                        _log_below(below)
                    unset_flag(CONSUMER_FETCHING)
        except this.consumer_stopped_errors:
            if this.transport.app.should_stop:
                this.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if this.transport.app.should_stop:
                this.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            this.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)
