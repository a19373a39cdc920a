"""streams.settings: priorities (argument > env > .env > stack record > default), validation."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import Settings
from streams.stack.process import ProcessRecord, current_process
from streams.stack.state import ServiceRecord, StackRecord

ADDRESSES = {
    "kafka": "127.0.0.1:39092",
    "redis": "127.0.0.1:36379",
    "prometheus": "127.0.0.1:39090",
}
FROM_RECORD = {
    "kafka_bootstrap": "127.0.0.1:39092",
    "redis_url": "redis://127.0.0.1:36379/0",
    "prometheus_url": "http://127.0.0.1:39090",
}
DEFAULTS = {
    "kafka_bootstrap": "127.0.0.1:9092",
    "redis_url": "redis://127.0.0.1:6379/0",
    "prometheus_url": "http://127.0.0.1:9090",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty SALESPULSE_HOME, no other SALESPULSE_* variable, and no .env file in reach."""
    for name in list(os.environ):
        if name.startswith("SALESPULSE_"):
            monkeypatch.delenv(name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("SALESPULSE_HOME", str(path))
    return path


def write_record(
    home: Path,
    process: ProcessRecord | None = None,
    services: tuple[str, ...] = ("kafka", "redis", "prometheus"),
) -> StackRecord:
    run_dir = home / "stack"
    run_dir.mkdir(parents=True, exist_ok=True)
    record = StackRecord(
        run_dir=str(run_dir),
        services={
            name: ServiceRecord(
                name=name,
                address=ADDRESSES[name],
                process=process or current_process(),
                log=str(run_dir / f"{name}.log"),
            )
            for name in services
        },
    )
    record.save()
    return record


def addresses(settings: Settings) -> dict[str, str]:
    return {name: getattr(settings, name) for name in FROM_RECORD}


def test_defaults_without_a_stack(home: Path) -> None:
    settings = Settings()
    assert settings.home == home
    assert addresses(settings) == DEFAULTS


def test_live_stack_record_provides_the_addresses(home: Path) -> None:
    write_record(home)
    assert addresses(Settings()) == FROM_RECORD


def test_record_with_only_some_services(home: Path) -> None:
    write_record(home, services=("kafka",))
    assert addresses(Settings()) == DEFAULTS | {"kafka_bootstrap": "127.0.0.1:39092"}


@pytest.mark.parametrize(
    ("variable", "field", "value"),
    [
        ("SALESPULSE_KAFKA_BOOTSTRAP", "kafka_bootstrap", "broker.example:9093"),
        ("SALESPULSE_REDIS_URL", "redis_url", "redis://cache.example:6380/2"),
        ("SALESPULSE_PROMETHEUS_URL", "prometheus_url", "http://prom.example:9091"),
    ],
)
def test_environment_wins_over_the_stack_record(
    home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, field: str, value: str
) -> None:
    write_record(home)
    monkeypatch.setenv(variable, value)
    assert addresses(Settings()) == FROM_RECORD | {field: value}


def test_dotenv_wins_over_the_stack_record(home: Path) -> None:
    write_record(home)
    Path(".env").write_text("SALESPULSE_REDIS_URL=redis://dotenv.example:6379/5\n")
    assert addresses(Settings()) == FROM_RECORD | {"redis_url": "redis://dotenv.example:6379/5"}


def test_argument_wins_over_environment_and_record(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_record(home)
    monkeypatch.setenv("SALESPULSE_KAFKA_BOOTSTRAP", "from-env:9092")
    assert Settings(kafka_bootstrap="from-arg:9092").kafka_bootstrap == "from-arg:9092"


def test_home_given_as_argument_is_where_the_record_is_read(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-home"
    write_record(other)
    assert addresses(Settings()) == DEFAULTS  # SALESPULSE_HOME has no record
    settings = Settings(home=other)
    assert settings.home == other
    assert addresses(settings) == FROM_RECORD


def test_record_of_a_dead_stack_is_ignored(home: Path) -> None:
    me = current_process()
    write_record(home, ProcessRecord(pid=me.pid, start_ticks=me.start_ticks + 1))
    assert addresses(Settings()) == DEFAULTS


def test_record_with_one_dead_service_is_ignored(home: Path) -> None:
    record = write_record(home)
    me = current_process()
    record.services["redis"].process = ProcessRecord(pid=me.pid, start_ticks=me.start_ticks + 1)
    record.save()
    assert addresses(Settings()) == DEFAULTS


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"run_dir": "x"}', b"\x00\xff"])
def test_corrupt_record_is_ignored(home: Path, content: bytes) -> None:
    (home / "stack").mkdir()
    (home / "stack" / "stack.json").write_bytes(content)
    assert addresses(Settings()) == DEFAULTS


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "", "europe/paris", "Europe/Paris ", "../../etc/passwd", "CEST+2"]
)
def test_unknown_business_tz_names_the_setting(
    home: Path, monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    monkeypatch.setenv("SALESPULSE_BUSINESS_TZ", zone)
    with pytest.raises(ValidationError, match="SALESPULSE_BUSINESS_TZ") as failure:
        Settings()
    assert failure.value.errors()[0]["loc"] == ("business_tz",)


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "UTC", "Asia/Kolkata"])
def test_known_business_tz(home: Path, monkeypatch: pytest.MonkeyPatch, zone: str) -> None:
    monkeypatch.setenv("SALESPULSE_BUSINESS_TZ", zone)
    settings = Settings()
    assert settings.business_tz == zone
    assert settings.zone.key == zone


def test_default_business_tz_is_paris(home: Path) -> None:
    assert Settings().zone.key == "Europe/Paris"


@pytest.mark.parametrize(
    ("prefix", "name", "topic"),
    [
        ("", "sales.orders", "sales.orders"),
        ("t1a2b3.", "sales.orders", "t1a2b3.sales.orders"),
        ("staging-", "salespulse.dead-letters", "staging-salespulse.dead-letters"),
    ],
)
def test_topic_applies_the_prefix(
    home: Path, monkeypatch: pytest.MonkeyPatch, prefix: str, name: str, topic: str
) -> None:
    monkeypatch.setenv("SALESPULSE_TOPIC_PREFIX", prefix)
    assert Settings().topic(name) == topic
    assert Settings(topic_prefix=prefix).topic(name) == topic


@pytest.mark.parametrize("port", [6066, 6067, 41234])
def test_worker_data_dir_depends_on_web_port(home: Path, port: int) -> None:
    assert Settings(web_port=port).worker_data_dir == home / f"worker-{port}"


def test_two_workers_never_share_a_data_dir(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_WEB_PORT", "7001")
    first = Settings().worker_data_dir
    monkeypatch.setenv("SALESPULSE_WEB_PORT", "7002")
    assert Settings().worker_data_dir != first


def test_explicit_data_dir_wins(home: Path, tmp_path: Path) -> None:
    assert Settings(web_port=7000, data_dir=tmp_path / "db").worker_data_dir == tmp_path / "db"


@pytest.mark.parametrize(
    ("raw", "rates"),
    [
        ('{"USD": "0.92"}', {"USD": Decimal("0.92")}),
        ('{"USD": 0.92, "GBP": "1.17"}', {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}),
    ],
)
def test_fx_rates_from_the_environment_are_exact(
    home: Path, monkeypatch: pytest.MonkeyPatch, raw: str, rates: dict[str, Decimal]
) -> None:
    monkeypatch.setenv("SALESPULSE_FX_RATES", raw)
    assert Settings().fx_rates == rates


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SALESPULSE_CURRENCY", "eur"),
        ("SALESPULSE_WEB_PORT", "0"),
        ("SALESPULSE_WEB_PORT", "70000"),
        ("SALESPULSE_TOPIC_PARTITIONS", "0"),
        ("SALESPULSE_STACK_KAFKA_PORT", "-1"),
        ("SALESPULSE_MAX_EVENT_BYTES", "10"),
        ("SALESPULSE_ENGINE_FLUSH_INTERVAL_S", "0"),
    ],
)
def test_out_of_range_values_are_rejected(
    home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as failure:
        Settings()
    field = variable.removeprefix("SALESPULSE_").lower()
    assert [err["loc"] for err in failure.value.errors()] == [(field,)]


TOKEN = "a-web-token-of-24-chars!"
TV_TOKEN = "a-wall-screen-token-here"


def test_web_tokens_come_from_the_environment_and_stay_secret(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESPULSE_WEB_TOKEN", TOKEN)
    monkeypatch.setenv("SALESPULSE_WEB_TV_TOKEN", TV_TOKEN)
    settings = Settings()
    assert settings.web_token is not None
    assert settings.web_tv_token is not None
    assert settings.web_token.get_secret_value() == TOKEN
    assert settings.web_tv_token.get_secret_value() == TV_TOKEN
    assert TOKEN not in repr(settings)
    assert TV_TOKEN not in repr(settings)


def test_an_empty_web_token_is_no_token(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_WEB_TOKEN", "")
    assert Settings().web_token is None


def test_a_short_web_token_is_refused_with_how_to_make_one(home: Path) -> None:
    with pytest.raises(ValidationError, match=r"at least 16 characters.*secrets\.token_urlsafe"):
        Settings(web_token="short")


def test_a_tv_token_without_a_web_token_is_refused(home: Path) -> None:
    with pytest.raises(ValidationError, match="set SALESPULSE_WEB_TOKEN too"):
        Settings(web_tv_token=TV_TOKEN)


def test_the_tv_token_must_differ_from_the_web_token(home: Path) -> None:
    with pytest.raises(ValidationError, match="give it a value of its own"):
        Settings(web_token=TOKEN, web_tv_token=TOKEN)


def test_record_of_a_secured_stack_provides_its_kafka_security(home: Path) -> None:
    record = write_record(home, services=("kafka",))
    ca = home / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")  # only its existence is checked here
    record.services["kafka"].settings = {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_username": "salespulse",
        "kafka_password": "from-the-record",
        "kafka_ca_file": str(ca),
    }
    record.save()
    assert oct(record.path.stat().st_mode & 0o777) == "0o600"  # it holds a password
    settings = Settings()
    assert settings.kafka_bootstrap == ADDRESSES["kafka"]
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_username == "salespulse"
    assert settings.kafka_password is not None
    assert settings.kafka_password.get_secret_value() == "from-the-record"
    assert settings.kafka_ca_file == ca
