"""streams.connections.kafka: the options every Kafka client gets, and their validation."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import AuthProtocol, SASLMechanism
from pydantic import SecretStr, ValidationError

from streams.cli import main
from streams.connections.kafka import KafkaAccess, kafka_options
from streams.settings import Settings
from streams.stack.certs import TlsFiles, make_certificates

BOOTSTRAP = "broker.example:9093"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No SALESPULSE_* variable, no .env, no stack record: only the arguments count."""
    for name in list(os.environ):
        if name.startswith("SALESPULSE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SALESPULSE_HOME", str(tmp_path))
    return tmp_path


def sasl(mechanism: str, protocol: str = "SASL_SSL", **more: object) -> KafkaAccess:
    return KafkaAccess(
        BOOTSTRAP,
        kafka_security_protocol=protocol,  # type: ignore[arg-type]
        kafka_sasl_mechanism=mechanism,  # type: ignore[arg-type]
        kafka_username="floor",
        kafka_password=SecretStr("s3cret"),
        **more,  # type: ignore[arg-type]
    )


def test_plaintext_is_the_bootstrap_alone(clean: Path) -> None:
    options = kafka_options(Settings(kafka_bootstrap=BOOTSTRAP))
    assert options.client == {"bootstrap_servers": BOOTSTRAP, "security_protocol": "PLAINTEXT"}
    assert options.broker_url == f"kafka://{BOOTSTRAP}"
    assert options.broker_credentials() is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_gives_credentials_and_a_verifying_context(tls: TlsFiles, mechanism: str) -> None:
    client = kafka_options(sasl(mechanism, kafka_ca_file=tls.ca)).client
    context = client.pop("ssl_context")
    assert client == {
        "bootstrap_servers": BOOTSTRAP,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "floor",
        "sasl_plain_password": "s3cret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "salespulse local CA"),),)
    ]


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_SSL", "SCRAM-SHA-256"), ("SASL_PLAINTEXT", "PLAIN")],
)
def test_faust_gets_the_same_sasl_options(tls: TlsFiles, protocol: str, mechanism: str) -> None:
    ca = {"kafka_ca_file": tls.ca} if protocol == "SASL_SSL" else {}
    options = kafka_options(sasl(mechanism, protocol, **ca))
    credentials = options.broker_credentials()
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol == AuthProtocol(protocol)
    assert credentials.mechanism == SASLMechanism(mechanism)
    # What faust's aiokafka transport passes to its own consumers and producers:
    faust_options = credentials_to_aiokafka_auth(credentials)
    ours = {k: v for k, v in options.client.items() if k != "bootstrap_servers"}
    assert faust_options == ours | {"ssl_context": ours.get("ssl_context")}


def test_ssl_with_a_client_certificate(tls: TlsFiles) -> None:
    access = KafkaAccess(
        BOOTSTRAP, kafka_security_protocol="SSL", kafka_ca_file=tls.ca,
        kafka_cert_file=tls.client_cert, kafka_key_file=tls.client_key,
    )  # fmt: skip
    options = kafka_options(access)
    assert set(options.client) == {"bootstrap_servers", "security_protocol", "ssl_context"}
    credentials = options.broker_credentials()
    assert isinstance(credentials, SSLCredentials)
    assert credentials.protocol == AuthProtocol.SSL
    assert credentials.context is options.client["ssl_context"]


def test_client_key_not_matching_its_certificate_is_refused(tls: TlsFiles) -> None:
    access = KafkaAccess(
        BOOTSTRAP, kafka_security_protocol="SSL", kafka_ca_file=tls.ca,
        kafka_cert_file=tls.client_cert, kafka_key_file=tls.server_key,
    )  # fmt: skip
    with pytest.raises(ssl.SSLError):
        kafka_options(access)


def test_security_values_are_the_settings_of_the_access(tls: TlsFiles, clean: Path) -> None:
    access = sasl("SCRAM-SHA-512", kafka_ca_file=tls.ca)
    values = access.security_values()
    assert values == {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_username": "floor",
        "kafka_password": "s3cret",
        "kafka_ca_file": str(tls.ca),
    }
    settings = Settings(kafka_bootstrap=BOOTSTRAP, **values)  # type: ignore[arg-type]
    assert kafka_options(settings).client.keys() == kafka_options(access).client.keys()


def test_password_from_the_environment_is_secret(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESPULSE_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("SALESPULSE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("SALESPULSE_KAFKA_USERNAME", "floor")
    monkeypatch.setenv("SALESPULSE_KAFKA_PASSWORD", "s3cret")
    settings = Settings()
    assert "s3cret" not in repr(settings)
    assert kafka_options(settings).client["sasl_plain_password"] == "s3cret"
    assert kafka_options(settings).client["sasl_mechanism"] == "SCRAM-SHA-256"


@pytest.mark.parametrize(
    ("values", "fix"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "set SALESPULSE_KAFKA_USERNAME and "
         "SALESPULSE_KAFKA_PASSWORD"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_username": "floor"},
         "SALESPULSE_KAFKA_PASSWORD"),
        ({"kafka_security_protocol": "SSL", "kafka_cert_file": "{client_cert}"},
         "set both SALESPULSE_KAFKA_CERT_FILE and SALESPULSE_KAFKA_KEY_FILE"),
        ({"kafka_security_protocol": "SSL", "kafka_key_file": "{client_key}"},
         "set both SALESPULSE_KAFKA_CERT_FILE and SALESPULSE_KAFKA_KEY_FILE"),
        ({"kafka_security_protocol": "SSL", "kafka_ca_file": "/nonexistent/ca.pem"},
         "SALESPULSE_KAFKA_CA_FILE=/nonexistent/ca.pem is not a file"),
        ({"kafka_ca_file": "{ca}"}, "set SALESPULSE_KAFKA_SECURITY_PROTOCOL to SSL or SASL_SSL"),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI",
          "kafka_username": "floor", "kafka_password": "x"}, "kafka_sasl_mechanism"),
    ],
)  # fmt: skip
def test_invalid_security_names_the_fix(
    clean: Path, tls: TlsFiles, values: dict[str, str], fix: str
) -> None:
    files = {"ca": tls.ca, "client_cert": tls.client_cert, "client_key": tls.client_key}
    given = {name: value.format(**files) for name, value in values.items()}
    with pytest.raises(ValidationError) as failure:
        Settings(**given)  # type: ignore[arg-type]
    assert fix in str(failure.value)


def test_the_command_names_the_variable_instead_of_a_traceback(
    clean: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SALESPULSE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SALESPULSE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-1")
    assert main(["stack", "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("salespulse: invalid settings:\n  SALESPULSE_KAFKA_SASL_MECHANISM: ")
    monkeypatch.setenv("SALESPULSE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    assert main(["stack", "status"]) == 2
    err = capsys.readouterr().err
    assert "  SALESPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs credentials: set " in err
    assert "Traceback" not in err
