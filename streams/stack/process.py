"""Background service processes: start them, find them again by recorded pid, stop them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has finished: it only waits for its parent to reap it
        return None
    return int(fields[19])


@dataclass
class ProcessRecord:
    """A process we started: its pid plus its start time, so a reused pid is never mistaken."""

    pid: int
    start_ticks: int

    @classmethod
    def of(cls, pid: int) -> ProcessRecord:
        """A record of the running process ``pid`` (not alive if there is none)."""
        return cls(pid=pid, start_ticks=_start_ticks(pid) or -1)

    def alive(self) -> bool:
        return _start_ticks(self.pid) == self.start_ticks

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it outlives ``timeout`` seconds."""
        if not self.alive():
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                _reap(self.pid)
                if not self.alive():
                    return
                time.sleep(0.05)


def current_process() -> ProcessRecord:
    """This process, as a record other processes can check for liveness."""
    return ProcessRecord.of(os.getpid())


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _die_with(parent: int) -> Callable[[], None]:
    def arm() -> None:  # pragma: no cover - runs in the child between fork and exec
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


def spawn(
    argv: Sequence[str],
    log: Path,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = False,
) -> ProcessRecord:
    """Start ``argv`` in its own session, output to ``log``, and record it.

    ``die_with_parent`` makes the kernel kill the service when the process that started it
    dies, even by SIGKILL (a test session that was killed leaves no broker behind).
    """
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with(os.getpid()) if die_with_parent else None,
        )
    ticks = _start_ticks(proc.pid)
    if ticks is None:  # exited at once: keep a record that is simply not alive
        proc.wait()
        ticks = -1
    return ProcessRecord(pid=proc.pid, start_ticks=ticks)


def log_tail(log: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a service log, for error messages."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return f"(no log at {log})"
    return "\n".join(text.splitlines()[-lines:])
