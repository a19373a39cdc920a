"""Redis security settings: what is accepted, and each refusal names the variable to set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from streams.settings import Settings


@pytest.fixture(autouse=True)
def no_redis_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No SALESPULSE_* variable, no .env file and no stack record in reach."""
    for name in list(os.environ):
        if name.startswith("SALESPULSE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SALESPULSE_HOME", str(tmp_path / "home"))


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")  # read by the client, not by the settings
    return path


def test_rediss_with_credentials_and_files(pem: Path) -> None:
    settings = Settings(
        redis_url="rediss://redis.example:6380/1",
        redis_username="worker",
        redis_password="s3cret",  # type: ignore[arg-type]
        redis_ca_file=pem,
        redis_cert_file=pem,
        redis_key_file=pem,
    )
    assert settings.redis_password == SecretStr("s3cret")
    assert "s3cret" not in repr(settings)


def test_credentials_in_the_url_alone() -> None:
    settings = Settings(redis_url="redis://worker:s3cret@redis.example:6379/0")
    assert settings.redis_password is None


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"redis_url": "http://redis.example:6379"}, "starts with 'http', not a Redis URL"),
        ({"redis_cert_file": "PEM"}, "without SALESPULSE_REDIS_KEY_FILE"),
        ({"redis_key_file": "PEM"}, "without SALESPULSE_REDIS_CERT_FILE"),
        ({"redis_ca_file": "MISSING"}, "SALESPULSE_REDIS_CA_FILE="),
        ({"redis_key_file": "MISSING", "redis_cert_file": "PEM"}, "SALESPULSE_REDIS_KEY_FILE="),
        ({"redis_url": "redis://h:6379/0", "redis_ca_file": "PEM"}, "to a rediss:// URL"),
        ({"redis_url": "rediss://:pw@h:6380/0", "redis_password": "pw"}, "keep one of them"),
        ({"redis_url": "rediss://u:pw@h:6380/0", "redis_username": "u"}, "keep one of them"),
    ],
)
def test_refusals_name_the_variable(
    values: dict[str, str], named: str, pem: Path, tmp_path: Path
) -> None:
    given: dict[str, object] = {"redis_url": "rediss://redis.example:6380/0"}
    for name, value in values.items():
        given[name] = {"PEM": pem, "MISSING": tmp_path / "missing.pem"}.get(value, value)
    with pytest.raises(ValidationError) as raised:
        Settings(**given)  # type: ignore[arg-type]
    assert named in str(raised.value)


def test_a_missing_file_from_the_environment_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESPULSE_REDIS_URL", "rediss://redis.example:6380/0")
    monkeypatch.setenv("SALESPULSE_REDIS_CA_FILE", str(tmp_path / "nowhere.pem"))
    with pytest.raises(ValidationError, match=r"SALESPULSE_REDIS_CA_FILE=.*nowhere\.pem: no such"):
        Settings()


def test_environment_gives_a_subprocess_the_same_settings(
    pem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        redis_url="rediss://redis.example:6380/0",
        redis_password='pa ss"word',  # type: ignore[arg-type]
        redis_ca_file=pem,
        fx_rates={"USD": "0.92"},  # type: ignore[dict-item]
        topic_partitions=3,
    )
    env = settings.environment()
    assert env["SALESPULSE_REDIS_PASSWORD"] == 'pa ss"word'  # not "**********"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings


def test_a_refusal_does_not_show_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_REDIS_URL", "http://user:in-the-url@redis.example:6379/0")
    monkeypatch.setenv("SALESPULSE_REDIS_PASSWORD", "top-secret")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert "SALESPULSE_REDIS_URL" in str(raised.value)
    assert "top-secret" not in str(raised.value)
    assert "in-the-url" not in str(raised.value)
