"""Ports on 127.0.0.1: pick free ones, or check that a configured one is free."""

from __future__ import annotations

import contextlib
import os
import socket

from streams.stack.errors import StackError

HOST = "127.0.0.1"


def free_port() -> int:
    """A port that nothing listens on right now (the kernel's choice).

    Under ``pytest -n N`` (pytest-xdist, ``make test``), in its test processes and in every
    process they start, only ports of the test process's own class (see below) are
    taken: a port is free when chosen and bound later (by Kafka, a worker), and the kernel
    may hand it meanwhile to the other test process. The class is
    ``port // 2`` modulo N: Linux gives ``bind`` odd ports first (even ones go to
    ``connect``), so the port itself modulo 2 would leave one process none."""
    residue, classes = _port_class()
    for _ in range(1_000):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port // 2 % classes == residue:
            return port
    raise StackError(
        f"no free port on {HOST} of class {residue} of {classes} in 1,000 tries "
        "(PYTEST_XDIST_WORKER / PYTEST_XDIST_WORKER_COUNT): run pytest with fewer processes"
    )


def _port_class() -> tuple[int, int]:
    """(this test process's number, how many there are) under pytest-xdist, else (0, 1).
    Its variables pass to the processes the tests start (only ``SALESPULSE_*`` is replaced)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 0:
        return int(worker[2:]) % int(count), int(count)
    return 0, 1


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
