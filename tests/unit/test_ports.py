"""streams.stack.ports: free ports on 127.0.0.1, and a clear error for a busy configured one."""

from __future__ import annotations

import contextlib
import pathlib
import socket
import time
from collections.abc import Iterator

import pytest

from streams.stack import ports
from streams.stack.errors import StackError
from streams.stack.ports import HOST, claim_port, free_port, port_in_use


def bind_and_listen(port: int, host: str = HOST, family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, port))
    sock.listen()
    return sock


def ports_in_time_wait() -> set[int]:
    """Local ports of IPv4 TCP sockets in TIME_WAIT (state 06 in /proc/net/tcp)."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return {int(row[1].rsplit(":", 1)[1], 16) for row in rows if row[3] == "06"}


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something listens on for the whole test."""
    with contextlib.closing(bind_and_listen(0)) as sock:
        yield sock.getsockname()[1]


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with contextlib.closing(bind_and_listen(port)) as sock:
        assert sock.getsockname() == (HOST, port)


def test_free_port_is_not_in_use() -> None:
    assert not port_in_use(free_port())


def test_claim_port_zero_picks_a_free_port() -> None:
    port = claim_port(0, "Kafka", "SALESPULSE_STACK_KAFKA_PORT")
    assert port != 0
    with contextlib.closing(bind_and_listen(port)):
        pass


def test_claim_port_keeps_a_free_configured_port() -> None:
    port = free_port()
    assert claim_port(port, "Redis", "SALESPULSE_STACK_REDIS_PORT") == port


@pytest.mark.parametrize(
    ("service", "setting"),
    [
        ("Kafka", "SALESPULSE_STACK_KAFKA_PORT"),
        ("Redis", "SALESPULSE_STACK_REDIS_PORT"),
        ("Prometheus", "SALESPULSE_STACK_PROMETHEUS_PORT"),
    ],
)
def test_claim_busy_port_names_the_port_and_the_setting(
    busy_port: int, service: str, setting: str
) -> None:
    assert port_in_use(busy_port)
    with pytest.raises(StackError) as failure:
        claim_port(busy_port, service, setting)
    message = str(failure.value)
    assert str(busy_port) in message
    assert f"{setting}=0" in message
    assert service in message


def test_a_listener_on_all_interfaces_makes_the_port_busy() -> None:
    with contextlib.closing(bind_and_listen(0, host="0.0.0.0")) as sock:
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=str(port)):
            claim_port(port, "Kafka", "SALESPULSE_STACK_KAFKA_PORT")


def test_a_dual_stack_ipv6_listener_makes_the_port_busy() -> None:
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
        sock.listen()
    except OSError as exc:
        pytest.skip(f"no dual-stack IPv6 here: {exc}")
    with contextlib.closing(sock):
        port = sock.getsockname()[1]
        assert port_in_use(port)


def test_a_port_freed_again_can_be_claimed() -> None:
    with contextlib.closing(bind_and_listen(0)) as sock:
        port = sock.getsockname()[1]
        assert port_in_use(port)
    assert claim_port(port, "Kafka", "SALESPULSE_STACK_KAFKA_PORT") == port


def test_a_port_in_time_wait_is_not_busy() -> None:
    """A service restarted on its old port must not be refused for a closed connection.

    Redis, Kafka and Prometheus listen with SO_REUSEADDR, so their TIME_WAIT leftovers do not
    stop them from binding again: the check must not refuse the port either.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((HOST, 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection((HOST, port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end stays in TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    assert port in ports_in_time_wait()  # the situation under test really arose
    assert claim_port(port, "Kafka", "SALESPULSE_STACK_KAFKA_PORT") == port


@pytest.mark.parametrize(("worker", "count"), [("gw0", "2"), ("gw1", "2"), ("gw2", "3")])
def test_test_processes_side_by_side_take_ports_of_their_own_class(
    monkeypatch: pytest.MonkeyPatch, worker: str, count: str
) -> None:
    """Two test processes (``pytest -n``) never pick the same port: each its residue."""
    monkeypatch.delenv("TEST_PORT_CLASS", raising=False)  # as `make test` sets it: not here
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", count)
    residue = int(worker[2:])
    ports = {free_port() for _ in range(40)}
    assert {port // 2 % int(count) for port in ports} == {residue}
    assert len(ports) > 1  # still the kernel's choice, not one port


def test_outside_xdist_every_port_may_be_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_PORT_CLASS", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert {free_port() // 2 % 2 for _ in range(200)} == {0, 1}


@pytest.mark.parametrize(
    ("given", "worker", "count", "residue"),
    [("0/3", "gw0", "2", 0), ("0/3", "gw1", "2", 1), ("2/3", None, None, 2)],
)
def test_a_given_port_class_sets_the_processes_apart_from_a_run_beside_them(
    monkeypatch: pytest.MonkeyPatch, given: str, worker: str | None, count: str | None,
    residue: int,
) -> None:  # fmt: skip
    """``make test``: the main suite's two processes (0/3) and the secured run (2/3)."""
    monkeypatch.setenv("TEST_PORT_CLASS", given)
    for name, value in (("PYTEST_XDIST_WORKER", worker), ("PYTEST_XDIST_WORKER_COUNT", count)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    ports = {free_port() for _ in range(40)}
    assert {port // 2 % 3 for port in ports} == {residue}
    assert len(ports) > 1


@pytest.mark.parametrize("given", ["2/3", "3", "a/b", "1/"])
def test_a_port_class_that_cannot_hold_the_processes_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("TEST_PORT_CLASS", given)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    with pytest.raises(StackError, match=r"TEST_PORT_CLASS=.*first/classes"):
        free_port()


class _Kernel:
    """``socket.socket`` whose ``bind`` to port 0 gives ``offers`` in turn."""

    def __init__(self, offers: list[int]) -> None:
        self.offers = offers

    def __call__(self, *args: object) -> _Kernel:
        return self

    def bind(self, address: tuple[str, int]) -> None:
        self.port = self.offers.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return (HOST, self.port)

    def close(self) -> None:
        pass


def test_a_port_handed_out_is_not_handed_out_again_before_it_is_bound(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    """The kernel offers a port again while whoever got it has not bound it yet (a test's
    worker port, then the ports of the ``stack up`` it runs): the second asker gets
    another one, in this process or in any other (the registry is a file)."""
    monkeypatch.delenv("TEST_PORT_CLASS", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setattr(ports, "registry_path", lambda: tmp_path / "ports")
    monkeypatch.setattr(ports.socket, "socket", _Kernel([40001, 40001, 40003, 40001, 40005]))
    assert free_port() == 40001
    assert free_port() == 40003
    (tmp_path / "ports").write_text(
        f"40001 {time.time() - ports.RECENT_S - 1}\n40005 {time.time()}\n"
    )
    assert free_port() == 40001  # promised too long ago: bound, or given up, by now
    with pytest.raises(IndexError):  # 40005 is another process's, the kernel has no more
        free_port()
