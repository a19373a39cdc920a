"""A local ``prometheus-alertmanager`` (Debian package) with the project's routing config."""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from streams.stack.errors import StackError
from streams.stack.ports import HOST
from streams.stack.process import ProcessRecord, log_tail, spawn

READY_TIMEOUT_S = 30.0
BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's name


def start_alertmanager(
    run_dir: Path, config: Path, port: int, *, die_with_parent: bool
) -> ProcessRecord:
    """Start Alertmanager on ``port`` with ``config``; return once ``/-/ready`` answers 200.

    Clustering is off (a single local instance: no gossip port to claim).
    """
    binary = next((found for name in BINARIES if (found := shutil.which(name))), None)
    if binary is None:
        raise StackError(
            "Alertmanager is not installed: run `apt-get install -y prometheus-alertmanager` "
            "as root (`make install` does it when run as root)."
        )
    if not config.is_file():
        raise StackError(f"the project's Alertmanager config {config} is missing.")
    run_dir = run_dir.resolve()
    log = run_dir / "alertmanager.log"
    argv = [
        binary,
        f"--config.file={config.resolve()}",
        f"--storage.path={run_dir / 'alertmanager-data'}",
        f"--web.listen-address={HOST}:{port}",
        "--cluster.listen-address=",
    ]
    process = spawn(argv, log, cwd=run_dir, die_with_parent=die_with_parent)
    url = f"http://{HOST}:{port}/-/ready"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not process.alive():
            raise StackError(f"alertmanager exited during start-up:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return process
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    process.stop()
    raise StackError(f"alertmanager did not become ready at {url}:\n{log_tail(log)}")
