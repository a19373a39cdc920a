"""streams.stack.process: start services, recognise them by pid + start time, stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.stack.process import ProcessRecord, current_process, log_tail, spawn

REPO = Path(__file__).resolve().parents[2]


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture
def started() -> Iterator[list[ProcessRecord]]:
    """Records of processes a test started; whatever is still running is stopped after it."""
    records: list[ProcessRecord] = []
    yield records
    for record in records:
        record.stop(timeout=2.0)


@pytest.mark.parametrize(
    "argv",
    [["sleep", "30"], [sys.executable, "-c", "import time; time.sleep(30)"]],
    ids=["sleep", "python"],
)
def test_spawned_process_is_alive_until_stopped(
    tmp_path: Path, started: list[ProcessRecord], argv: list[str]
) -> None:
    record = spawn(argv, tmp_path / "svc.log", cwd=tmp_path)
    started.append(record)
    assert record.pid > 0
    assert record.start_ticks > 0
    assert record.alive()
    assert ProcessRecord.of(record.pid) == record
    record.stop(timeout=5.0)
    assert not record.alive()
    assert not Path(f"/proc/{record.pid}").exists() or not ProcessRecord.of(record.pid).alive()


def test_stop_kills_a_process_that_ignores_sigterm(
    tmp_path: Path, started: list[ProcessRecord]
) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    code += "print('ready', flush=True); time.sleep(60)"
    log = tmp_path / "stubborn.log"
    record = spawn([sys.executable, "-c", code], log, cwd=tmp_path)
    started.append(record)
    assert eventually(lambda: "ready" in log_tail(log))
    begin = time.monotonic()
    record.stop(timeout=0.5)
    assert not record.alive()
    assert time.monotonic() - begin < 5.0


def test_stop_signals_the_whole_process_group(tmp_path: Path, started: list[ProcessRecord]) -> None:
    code = textwrap.dedent(
        """
        import subprocess, time
        child = subprocess.Popen(["sleep", "60"])
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    log = tmp_path / "tree.log"
    record = spawn([sys.executable, "-c", code], log, cwd=tmp_path)
    started.append(record)
    assert eventually(lambda: log_tail(log).strip().isdigit())
    grandchild = ProcessRecord.of(int(log_tail(log).strip()))
    assert grandchild.alive()
    record.stop(timeout=5.0)
    assert eventually(lambda: not grandchild.alive())


def test_record_with_wrong_start_time_is_not_alive(tmp_path: Path) -> None:
    me = current_process()
    assert me.pid == os.getpid()
    assert me.alive()
    for ticks in (me.start_ticks + 1, me.start_ticks - 1, -1):
        assert not ProcessRecord(pid=os.getpid(), start_ticks=ticks).alive()


def test_stop_never_signals_a_pid_whose_start_time_differs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "killpg", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    me = current_process()
    ProcessRecord(pid=me.pid, start_ticks=me.start_ticks + 1).stop(timeout=0.1)
    assert sent == []


def test_stop_with_a_recycled_pid_leaves_the_new_process_running(
    tmp_path: Path, started: list[ProcessRecord]
) -> None:
    # The pid of a live session leader, recorded as if an earlier process had held it.
    real = spawn(["sleep", "30"], tmp_path / "svc.log", cwd=tmp_path)
    started.append(real)
    stale = ProcessRecord(pid=real.pid, start_ticks=real.start_ticks - 1)
    stale.stop(timeout=0.2)
    time.sleep(0.2)
    assert real.alive()


def test_record_of_a_missing_pid_is_not_alive() -> None:
    record = ProcessRecord.of(2**22 + 1)  # above the kernel's pid_max limit
    assert record.start_ticks == -1
    assert not record.alive()
    record.stop(timeout=0.1)  # nothing to stop: returns at once


@pytest.mark.parametrize(
    "argv",
    [["true"], ["false"], [sys.executable, "-c", "raise SystemExit(3)"]],
    ids=["true", "false", "python-exit-3"],
)
def test_process_that_exits_at_once_gives_a_dead_record(tmp_path: Path, argv: list[str]) -> None:
    record = spawn(argv, tmp_path / "svc.log", cwd=tmp_path)
    # It may still be running when spawn reads its start time; once it has exited (even as a
    # zombie nobody has reaped) the record is not alive.
    assert eventually(lambda: not record.alive())


def test_spawn_logs_output_appends_and_uses_cwd_and_env(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    log.write_text("earlier run\n")
    work = tmp_path / "work"
    work.mkdir()
    code = "import os, sys; print(os.getcwd()); print(os.environ['SP_X'], flush=True); "
    code += "print('oops', file=sys.stderr)"  # stderr goes to the same log
    env = {"SP_X": "hello", "PATH": os.environ.get("PATH", "")}
    record = spawn([sys.executable, "-c", code], log, cwd=work, env=env)
    assert eventually(lambda: not record.alive())
    assert eventually(lambda: "oops" in log.read_text())
    assert log.read_text().splitlines() == ["earlier run", str(work), "hello", "oops"]


def test_spawned_process_has_its_own_session(tmp_path: Path, started: list[ProcessRecord]) -> None:
    record = spawn(["sleep", "30"], tmp_path / "svc.log", cwd=tmp_path)
    started.append(record)
    assert os.getsid(record.pid) == record.pid
    assert os.getpgid(record.pid) == record.pid
    assert os.getpgid(record.pid) != os.getpgid(0)


@pytest.mark.parametrize(
    ("lines", "asked", "expected"),
    [
        (50, 5, [f"line {i}" for i in range(45, 50)]),
        (3, 30, ["line 0", "line 1", "line 2"]),
        (30, 30, [f"line {i}" for i in range(30)]),
        (0, 5, []),
    ],
)
def test_log_tail_returns_the_last_lines(
    tmp_path: Path, lines: int, asked: int, expected: list[str]
) -> None:
    log = tmp_path / "svc.log"
    log.write_text("".join(f"line {i}\n" for i in range(lines)))
    tail = log_tail(log, asked)
    assert (tail.split("\n") if tail else []) == expected


def test_log_tail_default_is_thirty_lines(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    log.write_text("\n".join(str(i) for i in range(100)))
    assert log_tail(log).splitlines() == [str(i) for i in range(70, 100)]


def test_log_tail_survives_binary_garbage_and_missing_files(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    log.write_bytes(b"ok\n\xff\xfe broken\nlast\n")
    assert log_tail(log, 2).splitlines()[-1] == "last"
    missing = tmp_path / "nope.log"
    assert str(missing) in log_tail(missing)


INTERMEDIATE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from streams.stack.process import spawn

    record = spawn(
        ["sleep", "60"], Path(sys.argv[1]), cwd=Path(sys.argv[2]),
        die_with_parent=sys.argv[3] == "1",
    )
    print(record.pid, record.start_ticks, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("die_with_parent", [True, False])
def test_die_with_parent(
    tmp_path: Path, started: list[ProcessRecord], die_with_parent: bool
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", INTERMEDIATE, str(tmp_path / "sleep.log"), str(tmp_path),
         "1" if die_with_parent else "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert parent.stdout is not None
        pid, ticks = (int(x) for x in parent.stdout.readline().split())
        child = ProcessRecord(pid=pid, start_ticks=ticks)
        started.append(child)
        assert child.alive()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        if die_with_parent:
            assert eventually(lambda: not child.alive(), timeout=5.0)
        else:  # the control: without it, the service outlives its starter
            time.sleep(0.5)
            assert child.alive()
    finally:
        with contextlib.suppress(ProcessLookupError):
            parent.kill()
        parent.wait(timeout=10)
        if parent.stdout:
            parent.stdout.close()
