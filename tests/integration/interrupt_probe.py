"""Run by test_interrupt.py in a child pytest (not collected by the main run).

Brings the session stack up, writes where it lives, then waits to be interrupted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.support import Services


def test_wait_for_interrupt(services: Services) -> None:
    assert services.run_dir is not None
    Path(os.environ["PROBE_READY_FILE"]).write_text(str(services.run_dir))
    time.sleep(300)
