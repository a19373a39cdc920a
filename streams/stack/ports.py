"""Ports on 127.0.0.1: pick free ones, or check that a configured one is free."""

from __future__ import annotations

import contextlib
import socket

from streams.stack.errors import StackError

HOST = "127.0.0.1"


def free_port() -> int:
    """A port that nothing listens on right now (the kernel's choice)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


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
