"""streams.engine.delivery: a flush's sends are checked once; the first failure stops the
worker, and no stage acks after it; its tables are rebuilt at the next start."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaError, KafkaTimeoutError, LeaderNotAvailableError
from faust.exceptions import ProducerSendError

from streams.directories import UnusableDirectory
from streams.engine.delivery import Delivery, SendFailed, mark_tables_stale, rebuild_if_stale
from streams.engine.faust.tables import TrackedTable


class Worker:
    """The delivery of a worker whose flushes are counted and whose stops are recorded."""

    def __init__(self, timeout_s: float = 1.0) -> None:
        self.flushes = 0
        self.stops: list[SendFailed] = []
        refused = (KafkaError, ProducerSendError)  # as the worker's (streams.app)
        self.delivery = Delivery(self.flush, timeout_s, self.stops.append, refused)

    async def flush(self) -> None:
        self.flushes += 1


def sent(error: BaseException | None = None) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    if error is None:
        future.set_result("metadata")
    else:
        future.set_exception(error)
    return future


async def test_a_flush_whose_sends_all_reached_kafka_goes_on() -> None:
    worker = Worker()
    sends = worker.delivery.sends("publisher")
    for _ in range(3):
        await sends.send(asyncio.sleep(0, result=sent()))
    await sends.confirm()
    assert (worker.flushes, worker.stops, sends.futures) == (1, [], [])


async def test_one_failed_send_stops_the_worker_and_no_stage_acks_after_it() -> None:
    worker = Worker(timeout_s=5)
    stage, publisher = worker.delivery.sends("entity stage"), worker.delivery.sends("publisher")
    stage.add(sent())
    stage.add(sent(LeaderNotAvailableError()))  # a changelog record of its table writes
    stage.add(sent())
    publisher.add(sent())
    with pytest.raises(SendFailed) as raised:
        await stage.confirm()
    text = str(raised.value)
    assert "entity stage: 1 of the 3 messages" in text
    assert "SALESPULSE_KAFKA_REQUEST_TIMEOUT_S=5 s" in text
    assert "restart it" in text
    assert worker.stops == [raised.value]
    with pytest.raises(SendFailed):  # its own sends are fine, but it must not ack now
        await publisher.confirm()
    assert worker.stops == [raised.value]  # stopped once


async def test_a_send_still_unsettled_after_the_request_timeout_is_a_failure() -> None:
    worker = Worker(timeout_s=0.05)
    sends = worker.delivery.sends("ingest")
    sends.add(asyncio.get_running_loop().create_future())  # never handed to the broker
    with pytest.raises(SendFailed, match="not sent within the request timeout"):
        await sends.confirm()


async def test_a_send_refused_at_once_fails_at_once() -> None:
    worker = Worker()
    sends = worker.delivery.sends("ingest")

    async def refused() -> Any:
        raise ProducerSendError("Error while sending") from KafkaTimeoutError()

    with pytest.raises(SendFailed, match="ingest: 1 of the 1 messages"):
        await sends.send(refused())
    assert len(worker.stops) == 1


async def test_a_tables_changelog_records_are_kept_for_its_stage_flush(tmp_path: Path) -> None:
    app = faust.App("delivery-unit", datadir=str(tmp_path), store="memory://", Table=TrackedTable)
    table = app.Table("cells", default=None, key_type=str)
    sends = Worker().delivery.sends("entity stage")
    table.sent = sends
    record = table.send_changelog(0, "0|minute|1|global|all", {"c": {}, "m": 3})
    assert sends.futures == [record]  # what faust sends for a table write, in the flush's list


def test_tables_marked_stale_are_removed_once_at_the_next_start(tmp_path: Path) -> None:
    data_dir, tables = tmp_path / "worker-1", tmp_path / "worker-1" / "v1" / "tables"
    (tables / "cells-0.db").mkdir(parents=True)
    assert rebuild_if_stale(data_dir, tables) is None
    assert tables.exists()
    mark_tables_stale(data_dir, tables, SendFailed("entity stage: 1 of the 3 messages ..."))
    warning = rebuild_if_stale(data_dir, tables)
    assert warning is not None
    assert "entity stage: 1 of the 3 messages" in warning
    assert "rebuilt from their changelogs" in warning
    assert not tables.exists()
    (tables / "cells-0.db").mkdir(parents=True)  # restored by faust
    assert rebuild_if_stale(data_dir, tables) is None  # the mark went with the old ones
    assert tables.exists()


def test_tables_that_cannot_be_removed_stop_the_start_naming_the_fix(tmp_path: Path) -> None:
    tables = tmp_path / "v1" / "tables"
    tables.parent.mkdir()
    tables.write_text("not a directory")  # rmtree refuses it
    mark_tables_stale(tmp_path, tables, SendFailed("publisher: 2 of the 9 messages ..."))
    with pytest.raises(UnusableDirectory, match=r"cannot be removed .*: remove it by hand"):
        rebuild_if_stale(tmp_path, tables)
    assert (tmp_path / "tables-behind-changelog").exists()  # the next start tries again


def test_a_mark_that_cannot_be_written_logs_what_to_remove(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    mark_tables_stale(blocked / "worker-1", tmp_path / "tables", SendFailed("ingest: ..."))
    assert f"remove {tmp_path / 'tables'} before starting the worker again" in caplog.text
