"""The one settings class of salespulse.

Every value comes, highest priority first, from:

1. an explicit argument (``Settings(kafka_bootstrap=...)``),
2. an environment variable with the ``SALESPULSE_`` prefix (``SALESPULSE_KAFKA_BOOTSTRAP``),
3. a ``.env`` file in the working directory,
4. the addresses recorded by ``salespulse stack up`` (so the worker and every other command
   find the local stack with no extra settings),
5. the defaults below.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from streams.business_hours import parse_business_hours
from streams.connections.kafka import (
    SASL_PROTOCOLS,
    TLS_PROTOCOLS,
    SaslMechanism,
    SecurityProtocol,
)
from streams.stack.state import StackRecord, default_home

REDIS_SCHEMES = ("redis", "rediss", "unix")
MIN_TOKEN_CHARS = 16


class StackRecordSource(PydanticBaseSettingsSource):
    """Service addresses recorded by ``salespulse stack up``, below env vars in priority."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ returns the whole mapping at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        home = self.current_state.get("home") or default_home()
        record = StackRecord.load(Path(home))
        return record.settings() if record else {}


class Settings(BaseSettings):
    """Settings of a salespulse process (worker, simulator, CLI)."""

    model_config = SettingsConfigDict(
        env_prefix="SALESPULSE_",
        env_file=".env",
        extra="ignore",
        hide_input_in_errors=True,  # the input holds passwords; messages name what is wrong
    )

    # Where the local stack records its state and the worker keeps its RocksDB data.
    home: Path = Field(default_factory=default_home)

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = Field(
        default="",
        description="Prefix of every topic name (tests use it to isolate runs).",
    )
    topic_partitions: int = Field(default=4, ge=1, le=1024)
    topic_replication: int = Field(default=1, ge=1)
    kafka_session_timeout_s: float = Field(
        default=10.0, ge=6.0, description="a dead worker's partitions move after this long"
    )
    kafka_request_timeout_s: float = Field(
        default=1200.0,
        gt=0,
        description="a send the broker has not acknowledged after this long fails",
    )
    """faust's ``producer_request_timeout``: how long a worker's sends wait for a broker that
    is away. A send that fails stops the worker before it commits an offset past it
    (``streams.engine.delivery``); the worker restarted resumes from the committed offsets.
    Longer rides out longer broker outages; the default is faust's, 20 minutes."""

    # Kafka security (streams.connections.kafka applies it to every Kafka client)
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ca_file: Path | None = Field(
        default=None, description="PEM CA the broker's certificate is checked against"
    )
    kafka_cert_file: Path | None = Field(default=None, description="PEM client certificate")
    kafka_key_file: Path | None = Field(default=None, description="PEM key of kafka_cert_file")

    # Redis read model
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "sp:"

    # Redis security (README "Secured Redis"): a rediss:// URL is TLS. The credentials go
    # here or in the URL (rediss://user:password@host:port/0), not both.
    redis_username: str | None = Field(default=None, description="ACL user; none: default")
    redis_password: SecretStr | None = None
    redis_ca_file: Path | None = Field(
        default=None, description="CA that signed Redis' certificate; none: the system's CAs"
    )
    redis_cert_file: Path | None = Field(
        default=None, description="client certificate, for a Redis that asks for one"
    )
    redis_key_file: Path | None = Field(default=None, description="key of redis_cert_file")

    # Prometheus (read by `stack status` and the tests; workers are scraped, they never push)
    prometheus_url: str = "http://127.0.0.1:9090"
    # Alertmanager: the TV wallboard shows its firing alerts as a banner (none when it does
    # not answer); `salespulse stack up` sets it to the local one.
    alertmanager_url: str = "http://127.0.0.1:9093"

    # Faust worker
    app_id: str = "salespulse"
    store: str = "rocksdb://"
    data_dir: Path | None = Field(
        default=None,
        description="RocksDB state of this worker; default <home>/worker-<web_port>.",
    )
    web_host: str = Field(
        default="127.0.0.1",
        description="address the web server binds; without web_token only a loopback one",
    )
    web_port: int = Field(default=6066, ge=1, le=65535)
    # HTTP access (streams.serving.web_access): /health and /ready are always open.
    web_token: SecretStr | None = Field(
        default=None,
        description="required as `Authorization: Bearer <token>` on every other path; "
        "unset: the web server listens on 127.0.0.1 only",
    )
    web_tv_token: SecretStr | None = Field(
        default=None,
        description="read-only token for wall screens: accepted only as ?token= on /tv and "
        "the stream and snapshot the page reads (never on /api or /metrics)",
    )
    ready_max_lag: int = Field(
        default=1000,
        ge=0,
        description="/ready: messages a worker may have left to process and still be ready",
    )
    log_level: str = "info"

    # Local stack (`salespulse stack up`): 0 picks a free port on 127.0.0.1
    stack_kafka_port: int = Field(default=0, ge=0, le=65535)
    stack_redis_port: int = Field(default=0, ge=0, le=65535)
    stack_prometheus_port: int = Field(default=0, ge=0, le=65535)
    stack_alertmanager_port: int = Field(default=0, ge=0, le=65535)

    # Ingest
    max_event_bytes: int = Field(default=65_536, ge=256, description="larger: dead-lettered")
    future_tolerance_s: float = Field(
        default=300,
        ge=0,
        description="an event dated further ahead of the worker's clock is dead-lettered",
    )

    # KPI engine (docs/kpi-definitions.md)
    grace_minute_s: float = Field(
        default=600, ge=0, description="minute buckets take events this late"
    )
    grace_calendar_s: float = Field(default=86_400, ge=0, description="days to quarters: this late")
    idle_close_s: float = Field(
        default=60,
        gt=0,
        description="a partition idle this long moves its stream time to wall time",
    )
    lead_sla_s: float = Field(
        default=3600, gt=0, description="leads_waiting: older than this, untouched"
    )
    retention_minute_s: float = Field(default=2 * 86_400, gt=0)
    retention_day_s: float = Field(default=90 * 86_400, gt=0)
    retention_calendar_s: float = Field(
        default=3 * 366 * 86_400, gt=0, description="weeks to quarters"
    )
    entity_horizon_s: float = Field(
        default=3 * 366 * 86_400,
        gt=0,
        description="an entity (lead, account, opportunity) with no event for this long, in "
        "event time, is forgotten: its summary is swept, and a later event starts it afresh",
    )
    engine_flush_interval_s: float = Field(default=0.5, gt=0, le=60)
    stream_buffer_messages: int = Field(
        default=256,
        ge=16,
        description="messages each agent may have waiting (faust's stream_buffer_maxsize)",
    )
    poll_records: int = Field(
        default=10_000,
        ge=1,
        description="records one fetch hands the agents at once (faust's "
        "broker_max_poll_records, unlimited by default: in a backlog, tens of thousands of "
        "fetched input records waited in memory for the ingest)",
    )
    fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=1500,
        description=(
            "how long the broker may hold a fetch with no data: a partition drained meanwhile "
            "waits for it (streams.engine.faust.fetch_wait; faust's own is 1,500)"
        ),
    )
    producer_linger_ms: float = Field(
        default=5.0, ge=0, le=1000, description="how long sends wait to fill a batch"
    )
    store_memory_mb: int = Field(
        default=64,
        ge=8,
        description="RocksDB memory of the worker, all its tables and partitions together "
        "(one block cache; the memtables are charged to it and flushed past half of it)",
    )
    table_cache_keys: int = Field(
        default=10_000,
        ge=0,
        description="table values kept decoded in memory per table (LRU), 0: none",
    )
    metrics_key_cap: int = Field(
        default=50, ge=1, description="/metrics: keys per dimension, the rest as key=other"
    )

    # Business
    business_tz: str = "Europe/Paris"
    business_hours: str = Field(
        default="Mon-Fri 08:00-19:00",
        description="when the floor works, in the business time zone (alerts use it)",
    )
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    fx_rates: dict[str, Decimal] = Field(
        default_factory=dict,
        description="reporting-currency units per unit of another currency, "
        'e.g. SALESPULSE_FX_RATES=\'{"USD": "0.92"}\'',
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            StackRecordSource(settings_cls),
            file_secret_settings,
        )

    @field_validator("business_tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}: set SALESPULSE_BUSINESS_TZ to an IANA name "
                "such as Europe/Paris"
            ) from exc
        return value

    @field_validator("web_token", "web_tv_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # an empty variable is no token
        if len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"a web token needs at least {MIN_TOKEN_CHARS} characters: make one with "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return value

    @model_validator(mode="after")
    def _tv_token_needs_token(self) -> Settings:
        if self.web_tv_token is not None and self.web_token is None:
            raise ValueError(
                "SALESPULSE_WEB_TV_TOKEN is set without SALESPULSE_WEB_TOKEN, so nothing would "
                "be guarded: set SALESPULSE_WEB_TOKEN too, or unset SALESPULSE_WEB_TV_TOKEN"
            )
        tv, full = self.web_tv_token, self.web_token
        if tv is not None and full is not None and tv.get_secret_value() == full.get_secret_value():
            raise ValueError(
                "SALESPULSE_WEB_TV_TOKEN equals SALESPULSE_WEB_TOKEN: the read-only token goes "
                "in wall screens' URLs, so give it a value of its own"
            )
        return self

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_business_hours(value)  # the message names the expected form
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if (scheme := urlsplit(value).scheme) not in REDIS_SCHEMES:
            raise ValueError(
                f"SALESPULSE_REDIS_URL starts with {scheme or 'no scheme'!r}, not a Redis URL: "
                "set it to redis://host:6379/0, or rediss://host:6380/0 for TLS"
            )
        return value

    @field_validator("redis_ca_file", "redis_cert_file", "redis_key_file")
    @classmethod
    def _readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not value.is_file():
            variable = f"SALESPULSE_{str(info.field_name).upper()}"
            raise ValueError(f"{variable}={value}: no such file: set it to a PEM file")
        return value

    @model_validator(mode="after")
    def _redis_security(self) -> Settings:
        url = urlsplit(self.redis_url)
        if (self.redis_cert_file is None) != (self.redis_key_file is None):
            given, missing = ("CERT", "KEY") if self.redis_key_file is None else ("KEY", "CERT")
            raise ValueError(
                f"SALESPULSE_REDIS_{given}_FILE is set without SALESPULSE_REDIS_{missing}_FILE: "
                "set both (the client certificate and its key) or neither"
            )
        files = [
            name for name in ("redis_ca_file", "redis_cert_file", "redis_key_file")
            if getattr(self, name) is not None
        ]  # fmt: skip
        if files and url.scheme != "rediss":
            variables = ", ".join(f"SALESPULSE_{name.upper()}" for name in files)
            raise ValueError(
                f"{variables} only apply to TLS: set SALESPULSE_REDIS_URL to a rediss:// URL "
                f"(it is {url.scheme}://), or unset them"
            )
        for part, name in ((url.username, "username"), (url.password, "password")):
            if part and getattr(self, f"redis_{name}") is not None:
                raise ValueError(
                    f"SALESPULSE_REDIS_URL has a {name} and SALESPULSE_REDIS_{name.upper()} is "
                    "set too: keep one of them"
                )
        return self

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        protocol = self.kafka_security_protocol
        if protocol in SASL_PROTOCOLS and not (self.kafka_username and self.kafka_password):
            raise ValueError(
                f"SALESPULSE_KAFKA_SECURITY_PROTOCOL={protocol} needs credentials: set "
                "SALESPULSE_KAFKA_USERNAME and SALESPULSE_KAFKA_PASSWORD (of a "
                f"{self.kafka_sasl_mechanism} user of the broker)"
            )
        files = {"CA": self.kafka_ca_file, "CERT": self.kafka_cert_file}
        files["KEY"] = self.kafka_key_file
        given = [name for name, path in files.items() if path is not None]
        if given and protocol not in TLS_PROTOCOLS:
            raise ValueError(
                f"SALESPULSE_KAFKA_{given[0]}_FILE is only used over TLS: set "
                "SALESPULSE_KAFKA_SECURITY_PROTOCOL to SSL or SASL_SSL, or unset it"
            )
        if (self.kafka_cert_file is None) != (self.kafka_key_file is None):
            raise ValueError(
                "a client certificate needs its key: set both SALESPULSE_KAFKA_CERT_FILE and "
                "SALESPULSE_KAFKA_KEY_FILE (PEM files), or neither"
            )
        for name, path in files.items():
            if path is not None and not path.is_file():
                raise ValueError(
                    f"SALESPULSE_KAFKA_{name}_FILE={path} is not a file: set it to the path of "
                    "an existing PEM file"
                )
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The business time zone."""
        return ZoneInfo(self.business_tz)

    @property
    def worker_data_dir(self) -> Path:
        """RocksDB directory of this worker: one per worker, so two never share it."""
        return self.data_dir or self.home / f"worker-{self.web_port}"

    def environment(self) -> dict[str, str]:
        """The ``SALESPULSE_*`` variables that give a subprocess exactly these settings."""
        values = self.model_dump(mode="json", exclude_none=True)
        for name in values:
            if isinstance(secret := getattr(self, name), SecretStr):
                values[name] = secret.get_secret_value()  # dumped as "**********"
        return {
            f"SALESPULSE_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
            for name, value in values.items()
        }

    def topic(self, name: str) -> str:
        """Full name of a logical topic (``sales.orders`` -> ``<prefix>sales.orders``)."""
        return f"{self.topic_prefix}{name}"
