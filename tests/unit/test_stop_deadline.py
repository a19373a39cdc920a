"""A worker still stopping after the deadline dumps what it waits on and exits."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

import pytest

from streams.cli import stop_deadline


def test_past_the_deadline_it_dumps_then_exits_with_status_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done = threading.Event()
    calls: list[object] = []

    def exit_now(status: int) -> None:
        calls.append(status)
        done.set()

    with caplog.at_level(logging.CRITICAL, logger=stop_deadline.__name__):
        stop_deadline.arm(0.05, exit_now=exit_now, dump=lambda: calls.append("dump"))
        assert done.wait(5)
    assert calls == ["dump", 1]
    assert "did not stop within" in caplog.text


def test_a_stop_in_time_cancels_it() -> None:
    calls: list[int] = []
    timer = stop_deadline.arm(0.2, exit_now=calls.append, dump=lambda: None)
    timer.cancel()
    timer.join(1)
    assert not timer.is_alive()
    assert calls == []


async def test_the_dump_lists_the_tasks_of_the_worker_s_loop() -> None:
    """The deadline runs in its own thread: the tasks it lists are those of the worker's
    loop, each with where it waits."""

    async def waiting_on_a_commit() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(waiting_on_a_commit(), name="stuck-commit")
    await asyncio.sleep(0)
    out = io.StringIO()
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(stop_deadline.dump_stacks, loop, out)
    task.cancel()
    text = out.getvalue()
    assert "TASKS OF THE WORKER'S EVENT LOOP" in text
    assert "stuck-commit" in text
    assert "waiting_on_a_commit" in text
