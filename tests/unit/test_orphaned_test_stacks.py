"""streams.stack.launcher.stop_orphaned_test_stacks: what an interrupted test session left is
cleaned, what a live session is starting (its record not saved yet) is not."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.stack.launcher import stop_orphaned_test_stacks
from streams.stack.process import ProcessRecord


@pytest.fixture
def other_session() -> Iterator[int]:
    """A live process that is not this one (another pytest process, under ``pytest -n``)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not ProcessRecord.of(child.pid).alive()
    return child.pid


def test_a_stack_a_live_session_is_starting_is_left_alone(
    tmp_path: Path, other_session: int
) -> None:
    starting = tmp_path / str(other_session)
    (starting / "kafka").mkdir(parents=True)  # started before its record is saved
    assert stop_orphaned_test_stacks(tmp_path) == []
    assert (starting / "kafka").is_dir()


def test_a_stack_without_record_of_a_gone_session_is_wiped(tmp_path: Path) -> None:
    gone = tmp_path / str(dead_pid())
    (gone / "kafka").mkdir(parents=True)
    assert stop_orphaned_test_stacks(tmp_path) == [gone]
    assert not gone.exists()


def test_a_folder_not_named_for_a_process_is_wiped(tmp_path: Path) -> None:
    stray = tmp_path / "leftover"
    stray.mkdir()
    assert stop_orphaned_test_stacks(tmp_path) == [stray]
    assert not stray.exists()
