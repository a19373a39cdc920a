"""Whether what a stage sent reached Kafka, checked once per flush before it acks.

A send is a future: aiokafka's for a message a stage sends, faust's ``FutureMessage`` for
a changelog record of a table write. When the broker does not acknowledge it within the
producer's request timeout (``SALESPULSE_KAFKA_REQUEST_TIMEOUT_S``), the future fails, and
faust's ``producer.flush()`` returns all the same. So each stage keeps the futures of what
it sent since its last flush (``Sends``: its own sends, and through
``streams.engine.faust.tables.TrackedTable`` the changelog records faust makes for its
table writes), and its flush, before it acks, waits
for them and looks at each once (``Sends.confirm``).

One that failed stops the worker: nothing is acked anymore, by any stage (faust does not
always hold its commit at an unacked offset: with nothing committed yet on a partition it
commits the first run of acked offsets wherever it starts, and it lets an unacked message
at the committed offset itself pass; so a later ack could commit past the failed flush),
its local tables (written, their changelog records maybe not) are marked to be rebuilt
(``mark_tables_stale``), and the worker crashes with the cause and the fix.
Started again, it removes the marked tables before faust opens them (``rebuild_if_stale``),
so faust restores them from their changelogs (what reached Kafka), and resumes from the
committed offsets; the offset marks make the redelivered events count once.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

from aiokafka.errors import KafkaError

from streams.directories import UnusableDirectory

log = logging.getLogger(__name__)

STALE_TABLES = "tables-behind-changelog"
"""The file in the worker's data directory that makes its next start rebuild its tables."""


class SendFailed(RuntimeError):
    """A send of a stage failed: the worker stops before any offset past it is committed."""


def failure_text(
    stage: str, failed: int, total: int, error: BaseException, timeout_s: float
) -> str:
    return (
        f"{stage}: {failed} of the {total} messages sent since its last flush did not reach "
        f"Kafka ({type(error).__name__}: {error}). The broker was unreachable for longer "
        f"than SALESPULSE_KAFKA_REQUEST_TIMEOUT_S={timeout_s:g} s (faust's "
        "producer_request_timeout). The worker stops without committing their offsets: "
        "restart it (compose does) once the broker is back: it rebuilds its tables from "
        "their changelogs, resumes from the last committed offsets, and the offset marks "
        "make the redelivered events count once. "
        "Raise SALESPULSE_KAFKA_REQUEST_TIMEOUT_S to ride out longer outages"
    )


class Delivery:
    """The worker's verdict on its sends: the first failure stops it, and no stage acks
    after it (``check``)."""

    def __init__(
        self,
        flush: Callable[[], Awaitable[None]],
        timeout_s: float,
        on_failure: Callable[[SendFailed], None],
        refused: tuple[type[BaseException], ...] = (KafkaError,),
    ) -> None:
        self.flush = flush  # faust's buffer and producer flushed: every batch done
        self.timeout_s = timeout_s
        self.on_failure = on_failure
        # What a send raises when the producer refuses it at once (the worker adds faust's
        # ProducerSendError): a failed send, not a bug.
        self.refused = refused
        self.failure: SendFailed | None = None

    def sends(self, stage: str) -> Sends:
        return Sends(self, stage)

    def check(self) -> None:
        """Raise the failure, if a send of any stage failed: nothing is acked after it."""
        if self.failure is not None:
            raise self.failure

    def fail(self, stage: str, failed: int, total: int, error: BaseException) -> NoReturn:
        if self.failure is None:
            text = failure_text(stage, failed, total, error, self.timeout_s)
            self.failure = SendFailed(text)
            self.on_failure(self.failure)
        raise self.failure

    async def confirm(self, stage: str, futures: list[asyncio.Future[Any]]) -> None:
        """Return once every future is a send in Kafka; else stop the worker (``fail``)."""
        self.check()
        await self.flush()
        waiting = [future for future in futures if not future.done()]
        if waiting:  # changelog records faust's buffer had not handed to aiokafka yet
            await asyncio.wait(waiting, timeout=self.timeout_s)
        failed, first = 0, None
        for future in futures:
            error = _error_of(future)
            if error is not None:
                failed += 1
                first = error if first is None else first
        if first is not None:
            self.fail(stage, failed, len(futures), first)
        self.check()


def _error_of(future: asyncio.Future[Any]) -> BaseException | None:
    if not future.done():
        return TimeoutError("not sent within the request timeout")
    if future.cancelled():
        return asyncio.CancelledError("the send was cancelled")
    return future.exception()  # retrieved: asyncio does not log it again


class Sends:
    """The futures of one stage's sends since its last flush (the stage's lock held)."""

    def __init__(self, delivery: Delivery, stage: str) -> None:
        self.delivery, self.stage = delivery, stage
        self.futures: list[asyncio.Future[Any]] = []
        self.confirming = asyncio.Lock()

    def add(self, future: asyncio.Future[Any]) -> None:
        self.futures.append(future)

    async def send(self, sending: Awaitable[Any]) -> None:
        """Await a send (``topic.send(...)``, ``producer.send(...)``) and keep its future.
        One refused at once (the broker unreachable for the request timeout) fails now."""
        try:
            self.futures.append(await sending)
        except self.delivery.refused as exc:
            self.delivery.fail(self.stage, 1, len(self.futures) + 1, exc)

    async def send_all(self, sending: Awaitable[list[asyncio.Future[Any]]]) -> None:
        """``send``, for a call that sends many (``streams.engine.faust.batch_send``)."""
        try:
            self.futures.extend(await sending)
        except self.delivery.refused as exc:
            self.delivery.fail(self.stage, 1, len(self.futures) + 1, exc)

    async def confirm(self) -> None:
        """Every send since the last confirm is in Kafka (else ``SendFailed``). One at a
        time: a flush that returns has seen every send taken before its own checked."""
        async with self.confirming:
            futures, self.futures = self.futures, []
            await self.delivery.confirm(self.stage, futures)


def mark_tables_stale(data_dir: Path, tabledir: Path, failure: SendFailed) -> None:
    """The local tables may hold writes whose changelog records failed: have the next start
    rebuild them (``rebuild_if_stale``). Unable to say so, log what to do by hand."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / STALE_TABLES).write_text(f"{failure}\n")
    except OSError as exc:
        log.error(
            "could not mark the tables to be rebuilt (%s): remove %s before starting the "
            "worker again, so it restores its tables from their changelogs",
            exc,
            tabledir,
        )


def rebuild_if_stale(data_dir: Path, tabledir: Path) -> str | None:
    """Remove the local tables if a failed send marked them (faust then restores them from
    their changelogs when it opens them); the warning saying so, or None if not marked.
    ``UnusableDirectory`` (the fix named) if they cannot be removed."""
    marker = data_dir / STALE_TABLES
    if not marker.exists():
        return None
    reason = marker.read_text(errors="replace").strip()
    try:
        shutil.rmtree(tabledir)
    except FileNotFoundError:
        pass  # none yet: nothing local to distrust
    except OSError as exc:
        raise UnusableDirectory(
            f"the last run stopped on a failed send and its tables must be rebuilt, but "
            f"{tabledir} cannot be removed ({exc.strerror or exc}): remove it by hand, or "
            f"give this user write access to it, then start the worker again"
        ) from None
    marker.unlink()
    return (
        f"the last run stopped on a failed send ({reason[:300]}): its tables may hold writes "
        f"whose changelog records never reached Kafka, so they are rebuilt from their "
        f"changelogs ({tabledir} removed; restoring takes a while on large tables)"
    )
