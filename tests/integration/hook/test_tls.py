"""The hook over real TLS on loopback: a CA bundle in `verify`, pooled connections, and the call deadline
enforced on a TLS socket too (the deadline wraps whatever socket urllib3 hands over)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.exceptions import PatsnapTransientError
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Vendor(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    trickle = threading.Event()
    hung_up = threading.Event()
    connections: set[int] = set()

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, body: bytes) -> None:
        Vendor.connections.add(id(self.connection))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not Vendor.trickle.is_set():
            self.wfile.write(body)
            return
        pause = threading.Event()
        try:
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                pause.wait(0.1)
        except OSError:
            Vendor.hung_up.set()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(json.dumps({"token": "tls-token", "expires_in": 1799}).encode())

    def do_GET(self) -> None:
        self._send(
            json.dumps({"data": [{"pn": "CN1A"}], "status": True, "error_code": 0}).encode() + b" " * 50
        )


@pytest.fixture
def tls_vendor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    cert, key = self_signed(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Vendor)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]  # hang-ups are the point
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    Vendor.trickle.clear()
    Vendor.hung_up.clear()
    Vendor.connections.clear()
    # Set in many corporate environments: requests lets it override a session's `verify`.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        json.dumps(
            {
                "conn_type": "patsnap",
                "host": f"https://127.0.0.1:{server.server_port}",
                "login": "tls-client",
                "password": "tls-secret",
                "extra": {"qps": 0, "max_retries": 0, "timeout": 1, "verify": str(cert)},
            }
        ),
    )
    yield str(cert)
    server.shutdown()
    server.server_close()


def test_calls_over_tls_verify_the_ca_bundle_and_reuse_the_connection(tls_vendor: str) -> None:
    hook = PatsnapHook()
    for _ in range(3):
        assert hook.call("GET", AWARD.path) == [{"pn": "CN1A"}]
    assert len(Vendor.connections) == 1  # token and three calls on one kept-alive TLS connection


def test_the_deadline_holds_on_a_tls_socket(tls_vendor: str) -> None:
    hook = PatsnapHook()
    hook.call("GET", AWARD.path)  # token fetched, connection open
    Vendor.trickle.set()
    with pytest.raises(PatsnapTransientError, match="no complete answer within timeout=1 s"):
        hook.call("GET", AWARD.path)
    # The body (about 110 bytes at 10 a second) would take 11 s: the client hung up long before.
    assert Vendor.hung_up.wait(15)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # what verify=false means
def test_verify_false_is_not_overridden_by_the_environment(
    tls_vendor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = json.loads(os.environ["AIRFLOW_CONN_PATSNAP_DEFAULT"])
    connection["extra"]["verify"] = False
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps(connection))
    assert PatsnapHook().call("GET", AWARD.path) == [{"pn": "CN1A"}]  # a self-signed certificate, accepted
