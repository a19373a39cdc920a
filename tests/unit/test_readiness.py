"""streams.serving.readiness: why a worker is not ready (pure)."""

from __future__ import annotations

from streams.serving.readiness import WorkerState, not_ready

READY = WorkerState(
    assigned=4,
    behind=[("sales.orders", 0, 0), ("sales.calls", 1, 3), ("internal.cells", 0, 0)],
    rebalancing=False,
    recovering=False,
    redis_error=None,
)


def with_(**changes: object) -> WorkerState:
    return WorkerState(**{**READY.__dict__, **changes})  # type: ignore[arg-type]


def test_assigned_caught_up_and_redis_answering_is_ready() -> None:
    assert not_ready(READY, max_lag=10) == []


def test_each_reason_is_named() -> None:
    assert not_ready(with_(assigned=0, behind=[]), 10) == [
        "no partition assigned yet (joining its consumer group)"
    ]
    assert not_ready(with_(rebalancing=True), 10) == ["rebalancing"]
    assert not_ready(with_(recovering=True), 10) == ["recovering tables from their changelogs"]
    assert not_ready(with_(redis_error="no answer to PING (ConnectionError)"), 10) == [
        "redis: no answer to PING (ConnectionError)"
    ]


def test_behind_more_than_the_allowed_lag_is_catching_up() -> None:
    behind = [("sales.orders", 0, 600), ("sales.calls", 1, 500)]
    assert not_ready(with_(behind=behind), max_lag=1100) == []
    (reason,) = not_ready(with_(behind=behind), max_lag=1099)
    assert reason.startswith("catching up: 1100 messages behind")
    assert "SALESPULSE_READY_MAX_LAG" in reason


def test_a_partition_whose_end_is_unknown_is_not_caught_up() -> None:
    behind = [("sales.orders", 1, None), ("sales.orders", 0, 0), ("sales.calls", 0, None)]
    assert not_ready(with_(behind=behind), 10) == [
        "end offset not known yet: sales.calls/0, sales.orders/1"
    ]


def test_several_reasons_at_once() -> None:
    state = with_(assigned=0, behind=[], redis_error="not PINGed yet")
    assert len(not_ready(state, 10)) == 2
