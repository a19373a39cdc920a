"""streams.engine.delivery: a flush's sends are checked once; the first failure stops the
worker, and no stage acks after it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaTimeoutError, LeaderNotAvailableError
from faust.exceptions import ProducerSendError

from streams.engine.delivery import Delivery, SendFailed, TrackedTable


class Worker:
    """The delivery of a worker whose flushes are counted and whose stops are recorded."""

    def __init__(self, timeout_s: float = 1.0) -> None:
        self.flushes = 0
        self.stops: list[SendFailed] = []
        self.delivery = Delivery(self.flush, timeout_s, self.stops.append)

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
