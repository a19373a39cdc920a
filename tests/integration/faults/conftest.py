"""Each fault test has a Kafka broker and a Redis of its own, which it stops and restarts
(the session's stack is shared by every test), and settings pointing at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings
from streams.stack.state import StackRecord
from tests.fault_tools import own_stack
from tests.support import Services, isolated_settings


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[StackRecord, Services]]:
    with own_stack(tmp_path / "stack") as started:
        yield started


@pytest.fixture
def fault_settings(stack: tuple[StackRecord, Services], tmp_path: Path) -> Settings:
    return isolated_settings(stack[1], tmp_path)
