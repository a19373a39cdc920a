"""The secured local broker (``stack up --secure``): a SASL_SSL listener with one SCRAM user.

The user and its password (generated per stack) are created when the storage is formatted;
TLS uses the stack's own CA (``streams.stack.certs``), read by Kafka as PEM files.

The listener also takes SASL PLAIN (inside TLS) for the same user: librdkafka before 2.6.1
(kcat on Debian 12 has 2.0.2) cannot SCRAM-authenticate to Kafka 4, which checks the nonce
strictly (confluentinc/librdkafka#4895). salespulse's own clients use SCRAM-SHA-512.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from pydantic import SecretStr

from streams.connections.kafka import KafkaAccess, SaslMechanism
from streams.stack.certs import TlsFiles

MECHANISM: SaslMechanism = "SCRAM-SHA-512"
USERNAME = "salespulse"


@dataclass(frozen=True)
class BrokerSecurity:
    """The SCRAM user and the TLS files of one secured broker."""

    tls: TlsFiles
    username: str = USERNAME
    # url-safe characters only: the password goes in a JAAS line and an --add-scram argument.
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    def scram_credential(self) -> str:
        """kafka-storage's ``--add-scram`` value creating the user."""
        return f"{MECHANISM}=[name={self.username},password={self.password}]"

    def broker_properties(self) -> list[str]:
        """server.properties lines of the SASL_SSL listener (the broker logs in as the user)."""
        keystore = self.tls.directory / "server-keystore.pem"  # key then certificate
        if not keystore.is_file():
            keystore.touch(mode=0o600)
            keystore.write_text(self.tls.server_key.read_text() + self.tls.server_cert.read_text())
        login = f'username="{self.username}" password="{self.password}"'
        scram = f"org.apache.kafka.common.security.scram.ScramLoginModule required {login};"
        plain = "org.apache.kafka.common.security.plain.PlainLoginModule required "
        plain += f'{login} user_{self.username}="{self.password}";'
        return [
            f"sasl.enabled.mechanisms={MECHANISM},PLAIN",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config={scram}",
            f"listener.name.sasl_ssl.plain.sasl.jaas.config={plain}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.tls.ca}",
        ]

    def access(self, bootstrap: str) -> KafkaAccess:
        """How the launcher's own clients (readiness, admin) connect."""
        return KafkaAccess(
            bootstrap,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism=MECHANISM,
            kafka_username=self.username,
            kafka_password=SecretStr(self.password),
            kafka_ca_file=self.tls.ca,
        )
