"""Ports on 127.0.0.1: pick free ones, or check that a configured one is free."""

from __future__ import annotations

import contextlib
import os
import socket

from streams.stack.errors import StackError

HOST = "127.0.0.1"


def free_port() -> int:
    """A port that nothing listens on right now (the kernel's choice).

    Test processes side by side (``make test``: the main suite as ``pytest -n 2``, the
    secured run beside it) each take, in every process they start too, only ports of their
    own class (``_port_class``): a port is free when chosen and bound later (by Kafka, a
    worker), and the kernel may hand it meanwhile to another test process. The class is
    ``port // 2`` modulo the number of classes: Linux gives ``bind`` odd ports first (even
    ones go to ``connect``), so the port itself modulo 2 would leave one process none."""
    residue, classes = _port_class()
    for _ in range(1_000):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port // 2 % classes == residue:
            return port
    raise StackError(
        f"no free port on {HOST} of class {residue} of {classes} in 1,000 tries "
        f"({PORT_CLASS_VARIABLE}, PYTEST_XDIST_WORKER, PYTEST_XDIST_WORKER_COUNT): "
        "run fewer test processes side by side"
    )


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
