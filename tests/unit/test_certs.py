"""The secured stack's private CA: real openssl, checked with Python's own TLS verification."""

from __future__ import annotations

import ssl
from pathlib import Path

from streams.stack.certs import make_certificates


def test_certificates_verify_against_their_ca_for_localhost(tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files.server_cert, files.server_key)
    server.load_verify_locations(files.ca)
    client = ssl.create_default_context(cafile=str(files.ca))
    client.load_cert_chain(files.client_cert, files.client_key)
    # A full handshake in memory: the client checks the host name against the SAN.
    for host in ("localhost", "127.0.0.1"):
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        c = client.wrap_bio(c_in, c_out, server_hostname=host)
        s = server.wrap_bio(s_in, s_out, server_side=True)
        done = {"c": False, "s": False}
        for _ in range(10):
            for name, side, out, peer_in in (("c", c, c_out, s_in), ("s", s, s_out, c_in)):
                if not done[name]:
                    try:
                        side.do_handshake()
                        done[name] = True
                    except ssl.SSLWantReadError:
                        pass
                peer_in.write(out.read())
            if all(done.values()):
                break
        assert done == {"c": True, "s": True}, host
    assert oct(files.server_key.stat().st_mode & 0o777) == "0o600"


def test_certificates_are_made_once(tmp_path: Path) -> None:
    first = make_certificates(tmp_path).ca.read_bytes()
    assert make_certificates(tmp_path).ca.read_bytes() == first
