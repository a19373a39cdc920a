"""How every Kafka client of salespulse connects: address and security, from the settings.

``kafka_options`` is the one place the settings (``SALESPULSE_KAFKA_*``) become client options:
``.client`` are the keyword arguments of any aiokafka client (producer, consumer, admin), and
``.broker_credentials()`` the faust app's ``broker_credentials`` derived from the same values.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
TLS_PROTOCOLS = ("SSL", "SASL_SSL")
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


class KafkaSettings(Protocol):
    """The settings a Kafka client reads (``streams.settings.Settings`` has them all)."""

    @property
    def kafka_bootstrap(self) -> str: ...
    @property
    def kafka_security_protocol(self) -> SecurityProtocol: ...
    @property
    def kafka_sasl_mechanism(self) -> SaslMechanism: ...
    @property
    def kafka_username(self) -> str | None: ...
    @property
    def kafka_password(self) -> SecretStr | None: ...
    @property
    def kafka_ca_file(self) -> Path | None: ...
    @property
    def kafka_cert_file(self) -> Path | None: ...
    @property
    def kafka_key_file(self) -> Path | None: ...


@dataclass(frozen=True)
class KafkaAccess:
    """Kafka settings without the rest: what the stack launcher and tests connect with."""

    kafka_bootstrap: str
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ca_file: Path | None = None
    kafka_cert_file: Path | None = None
    kafka_key_file: Path | None = None

    def security_values(self) -> dict[str, str]:
        """The security settings given, as settings values (password in clear: keep private)."""
        values = {}
        for name, value in vars(self).items():
            if name != "kafka_bootstrap" and value is not None:
                plain = value.get_secret_value() if isinstance(value, SecretStr) else value
                values[name] = str(plain)
        return values


@dataclass(frozen=True)
class KafkaOptions:
    """Options of the Kafka clients of one process."""

    client: dict[str, Any]  # keyword arguments of AIOKafkaProducer/Consumer/AdminClient

    @property
    def broker_url(self) -> str:
        """The faust app's ``broker`` (security goes in ``broker_credentials``)."""
        return f"kafka://{self.client['bootstrap_servers']}"

    def broker_credentials(self) -> CredentialsT | None:
        """The faust app's ``broker_credentials``: the same protocol, SASL and TLS context."""
        from faust.auth import SASLCredentials, SSLCredentials  # faust is slow to import

        protocol = self.client["security_protocol"]
        context: ssl.SSLContext | None = self.client.get("ssl_context")
        if protocol in SASL_PROTOCOLS:
            # faust picks SASL_SSL when given a context, SASL_PLAINTEXT when not.
            return SASLCredentials(
                username=self.client["sasl_plain_username"],
                password=self.client["sasl_plain_password"],
                ssl_context=context,
                mechanism=self.client["sasl_mechanism"],
            )
        if protocol == "SSL":
            return SSLCredentials(context)
        return None


def kafka_options(settings: KafkaSettings) -> KafkaOptions:
    """The client options of ``settings``: bootstrap servers, protocol, SASL and TLS."""
    protocol = settings.kafka_security_protocol
    client: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": protocol,
    }
    if protocol in SASL_PROTOCOLS:
        password = settings.kafka_password
        client["sasl_mechanism"] = settings.kafka_sasl_mechanism
        client["sasl_plain_username"] = settings.kafka_username
        client["sasl_plain_password"] = None if password is None else password.get_secret_value()
    if protocol in TLS_PROTOCOLS:
        client["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ca_file,
            certfile=settings.kafka_cert_file,
            keyfile=settings.kafka_key_file,
        )
    return KafkaOptions(client)
