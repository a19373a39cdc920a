"""A private certificate authority for the secured local stack (``stack up --secure``).

``openssl`` (Debian package, on every machine with Python) makes, in ``<run_dir>/tls``:

- ``ca.pem`` / ``ca.key``: a throwaway CA; clients trust ``ca.pem`` (``SALESPULSE_*_CA_FILE``);
- ``server.pem`` / ``server.key``: a certificate for ``localhost`` and ``127.0.0.1`` signed by
  it, used by the broker's SSL listener and by redis-server's TLS port;
- ``client.pem`` / ``client.key``: a client certificate signed by the same CA, for mutual TLS.

Keys are unencrypted PEM (Kafka reads them with ``ssl.keystore.type=PEM``), readable by the
owner only. Nothing here is for production: a real cluster comes with its own CA.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streams.stack.errors import StackError

DAYS = 30
HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA and the signed certificates of one stack are."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise StackError(
            "openssl is needed to make the secured stack's certificates: install it "
            "(`apt-get install -y openssl` as root)."
        )
    out = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise StackError(f"openssl {args[0]} failed ({out.returncode}): {out.stderr.strip()}")


def _signed(files: TlsFiles, name: str, usage: str) -> None:
    work = files.directory
    san = ",".join(f"IP:{host}" if host[0].isdigit() else f"DNS:{host}" for host in HOSTS)
    ext = work / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
        "-subj", f"/CN=salespulse-{name}", "-out", f"{name}.csr", cwd=work,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", str(DAYS), "-sha256", "-extfile", ext.name,
        "-out", f"{name}.pem", cwd=work,
    )  # fmt: skip
    (work / f"{name}.csr").unlink()
    ext.unlink()


def make_certificates(run_dir: Path) -> TlsFiles:
    """A CA and its server and client certificates in ``run_dir/tls`` (made once)."""
    files = TlsFiles(run_dir.resolve() / "tls")
    if files.client_cert.is_file():
        return files
    files.directory.mkdir(parents=True, exist_ok=True)
    files.directory.chmod(0o700)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-subj", "/CN=salespulse local CA", "-days", str(DAYS), "-out", "ca.pem",
        cwd=files.directory,
    )  # fmt: skip
    _signed(files, "server", "serverAuth")
    _signed(files, "client", "clientAuth")
    for key in files.directory.glob("*.key"):
        key.chmod(0o600)
    return files
