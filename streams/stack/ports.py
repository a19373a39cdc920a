"""Ports on 127.0.0.1: pick free ones, or check that a configured one is free."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from streams.stack.errors import StackError

HOST = "127.0.0.1"
RECENT_S = 120.0
"""How long a port handed out stays promised to whoever asked for it."""


def free_port() -> int:
    """A port that nothing listens on right now (the kernel's choice).

    Test processes side by side (``make test``: the main suite as ``pytest -n 2``, the
    secured run beside it) each take, in every process they start too, only ports of their
    own class (``_port_class``): a port is free when chosen and bound later (by Kafka, a
    worker), and the kernel may hand it meanwhile to another test process. The class is
    ``port // 2`` modulo the number of classes: Linux gives ``bind`` odd ports first (even
    ones go to ``connect``), so the port itself modulo 2 would leave one process none.

    Nor is a port handed out in the last ``RECENT_S`` by a salespulse process handed out
    again (``_recently_handed_out``): the kernel may offer it again before it is bound."""
    residue, classes = _port_class()
    with _recently_handed_out() as promised:
        for _ in range(1_000):
            with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
                sock.bind((HOST, 0))
                port = int(sock.getsockname()[1])
            if port // 2 % classes == residue and port not in promised:
                promised.add(port)
                return port
    raise StackError(
        f"no free port on {HOST} of class {residue} of {classes} in 1,000 tries "
        f"({PORT_CLASS_VARIABLE}, PYTEST_XDIST_WORKER, PYTEST_XDIST_WORKER_COUNT): "
        "run fewer test processes side by side"
    )


def registry_path() -> Path:
    """The ports salespulse processes of this user handed out lately, on this machine."""
    return Path(tempfile.gettempdir()) / f"salespulse-ports-{os.getuid()}"


@contextlib.contextmanager
def _recently_handed_out() -> Iterator[set[int]]:
    """The ports handed out in the last ``RECENT_S`` by any salespulse process of this user
    (``registry_path``, locked meanwhile); the ports added to the set are recorded.

    A port is free when chosen and bound later, by another process often (a test picks a
    worker's web port, then ``stack up`` picks Kafka's and Prometheus's in a subprocess),
    and ``bind`` to port 0 may give the same port again meanwhile: Kafka got it, and the
    worker could not listen (seen once in a `make test` run). Without the registry (a
    file that cannot be written), the kernel's choice alone."""
    path = registry_path()
    try:
        handle = path.open("a+")
    except OSError:
        yield set()
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        now = time.time()
        handle.seek(0)
        recent: dict[int, float] = {}
        for line in handle.read().splitlines():
            port, _, at = line.partition(" ")
            with contextlib.suppress(ValueError):
                if now - float(at) < RECENT_S:
                    recent[int(port)] = float(at)
        promised = set(recent)
        yield promised
        recent.update((port, now) for port in promised - recent.keys())
        handle.seek(0)
        handle.truncate()
        handle.write("".join(f"{port} {at}\n" for port, at in recent.items()))


# "first/classes": this process's ports are of class ``first`` (plus its pytest-xdist worker
# number) of ``classes``. Not a SALESPULSE_* variable: tests that start the CLI pass it their
# own SALESPULSE_* variables only, and the processes it starts must keep the class.
PORT_CLASS_VARIABLE = "TEST_PORT_CLASS"


def _port_class() -> tuple[int, int]:
    """(this process's class, how many classes there are).

    ``TEST_PORT_CLASS=first/classes`` gives it: ``first`` plus the pytest-xdist worker's
    number (gw0, gw1...), so ``make test`` gives its main suite's two processes classes 0
    and 1 of 3 and the secured run beside them class 2. Without it, under pytest-xdist, the
    worker's number of the worker count; else (0, 1), any port. The variables pass to the
    processes the tests start."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    xdist = worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 0
    number, processes = (int(worker[2:]), int(count)) if xdist else (0, 1)
    given = os.environ.get(PORT_CLASS_VARIABLE, "")
    if not given:
        return number % processes, processes
    first, _, classes = given.partition("/")
    if not (first.isdigit() and classes.isdigit() and int(first) + processes <= int(classes)):
        raise StackError(
            f"{PORT_CLASS_VARIABLE}={given!r}: expected first/classes, with first + the number "
            f"of pytest-xdist processes ({processes}) at most classes (e.g. 0/3 for "
            "`pytest -n 2` beside a run with 2/3), or unset it"
        )
    return int(first) + number, int(classes)


def port_in_use(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
        return False


def claim_port(port: int, service: str, setting: str) -> int:
    """``port`` if free (0 picks a free one); else a StackError that names the fix."""
    if port == 0:
        return free_port()
    if port_in_use(port):
        raise StackError(
            f"{service}: port {port} on {HOST} is already in use. Stop whatever listens there "
            f"(`ss -ltnp 'sport = :{port}'` shows it), or set {setting}=0 to let salespulse "
            "pick a free port."
        )
    return port
