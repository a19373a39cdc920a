"""A secured Redis: a real redis-server started here with ``requirepass`` and a TLS-only port
(``streams.stack.redis.start_redis`` with the certificates of ``streams.stack.certs``).

The read model is written and read back through the client the settings make; a client
without the password, with a wrong one, or without the CA is refused, and the error names
the setting to fix, in the library and at the worker's start.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from streams.connections.redis import RedisRefused, check_redis, redis_client
from streams.kpi.values import Context
from streams.serving.read_model import ReadModel, read_revenue_day
from streams.settings import Settings
from streams.stack.certs import TlsFiles, make_certificates
from streams.stack.ports import free_port
from streams.stack.process import ProcessRecord
from streams.stack.redis import AUTH_CONFIG, start_redis
from tests.support import REPO, running_worker, salespulse, settings_env

PASSWORD = 'c0rrect "horse" battery'  # quotes and spaces: the config file must quote them


@dataclass
class SecureRedis:
    url: str
    tls: TlsFiles
    process: ProcessRecord


@pytest.fixture(scope="module")
def secure_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRedis]:
    run_dir = tmp_path_factory.mktemp("secure-redis")
    tls = make_certificates(run_dir)
    port = free_port()
    process = start_redis(run_dir, port, die_with_parent=True, password=PASSWORD, tls=tls)
    try:
        yield SecureRedis(f"rediss://127.0.0.1:{port}/0", tls, process)
    finally:
        process.stop()


def secure_settings(server: SecureRedis, home: Path, **overrides: object) -> Settings:
    """Settings of one test against ``server``: its URL, password and CA, own key prefix."""
    values: dict[str, object] = {
        "redis_url": server.url,
        "redis_password": PASSWORD,
        "redis_ca_file": server.tls.ca,
        "redis_prefix": f"t{uuid.uuid4().hex[:10]}:",
        "home": home,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def test_read_model_is_written_and_read_back_over_tls_with_auth(
    secure_redis: SecureRedis, tmp_path: Path
) -> None:
    settings = secure_settings(secure_redis, tmp_path)
    day = date(2026, 3, 2)
    start = int(datetime.combine(day, datetime.min.time(), settings.zone).timestamp())
    writer = redis_client(settings)
    model = ReadModel(writer, settings.redis_prefix)
    for rep, revenue in (("rep-a", "120.50"), ("rep-b", "80")):
        model.stage_cell(
            f"day|{start}|rep|{rep}", {}, {"final": False, "rev": 1},
            Context(kind="day", dimension="rep"), {"revenue": [revenue, revenue, None]},
            partition=0,
        )  # fmt: skip
    try:
        assert await model.flush(), "the read model could not write to the secured Redis"
    finally:
        await writer.aclose()
    reader = redis_client(settings)  # a new connection: AUTH and TLS again
    try:
        totals = await read_revenue_day(reader, settings.redis_prefix, day, settings.zone)
    finally:
        await reader.aclose()
    assert totals == {"rep-a": Decimal("120.50"), "rep-b": Decimal("80")}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"redis_password": None}, "requires a password (NOAUTH): set SALESPULSE_REDIS_PASSWORD"),
        ({"redis_password": "wrong"}, "refused the credentials (WRONGPASS)"),
        ({"redis_ca_file": None}, "not trusted"),  # the system's CAs: none signed it
        ({"redis_ca_file": "OTHER_CA"}, "not trusted"),
        ({"redis_ca_file": "OTHER_CA"}, "set SALESPULSE_REDIS_CA_FILE to the CA"),
    ],
)
async def test_a_refused_client_is_told_which_setting_to_fix(
    secure_redis: SecureRedis, tmp_path: Path, overrides: dict[str, object], named: str
) -> None:
    if overrides.get("redis_ca_file") == "OTHER_CA":
        overrides = {"redis_ca_file": make_certificates(tmp_path / "other").ca}
    settings = secure_settings(secure_redis, tmp_path, **overrides)
    with pytest.raises(RedisRefused) as refused:
        await check_redis(settings)
    assert named in str(refused.value)
    assert PASSWORD not in str(refused.value)


KPI = ("kpi", "revenue", "--window", "day")


@pytest.mark.parametrize(
    ("command", "overrides", "named"),
    [
        (("worker",), {"redis_password": None}, "set SALESPULSE_REDIS_PASSWORD"),
        (KPI, {"redis_password": "wrong"}, "WRONGPASS"),
        (KPI, {"redis_url": "CLOSED_PORT"}, "set SALESPULSE_REDIS_URL to a running Redis"),
    ],
)
def test_the_cli_refused_by_redis_exits_naming_the_setting(
    secure_redis: SecureRedis,
    tmp_path: Path,
    command: tuple[str, ...],
    overrides: dict[str, object],
    named: str,
) -> None:
    if overrides.get("redis_url") == "CLOSED_PORT":
        overrides = {"redis_url": f"rediss://127.0.0.1:{free_port()}/0"}
    # Redis is checked first: the worker never contacts this Kafka address.
    settings = secure_settings(secure_redis, tmp_path, kafka_bootstrap="127.0.0.1:9", **overrides)
    done = subprocess.run(
        salespulse(*command), env=settings_env(settings), cwd=REPO,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert named in done.stderr
    assert "Traceback" not in done.stderr


def test_the_password_file_is_readable_by_its_owner_only(secure_redis: SecureRedis) -> None:
    config = secure_redis.tls.directory.parent / AUTH_CONFIG
    assert config.stat().st_mode & 0o077 == 0, oct(config.stat().st_mode)


def test_a_worker_whose_redis_does_not_answer_starts_and_says_so(
    settings: Settings, tmp_path: Path
) -> None:
    """Unreachable is not refused: the worker runs (the read model is written once Redis
    answers) and its log names the setting."""
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    log = tmp_path / "worker.log"
    with running_worker(down, log):  # returns once the worker owns partitions
        text = log.read_text()
    assert "did not answer" in text
    assert "set SALESPULSE_REDIS_URL to a running Redis" in text
