"""Media hosts for the media preflight's tests: a throwaway CA and a loopback HTTPS server answering HEAD.

Tests reach loopback only. The preflight refuses loopback, so a test that needs a host the preflight may fetch
gives it `loopback_as_public`: 127.0.0.1 stands in for a public address, and every other address keeps the
real policy.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mmsbridge.sending.media_check import IPAddress, MediaPreflight, why_not_public

LOOPBACK = ipaddress.ip_address("127.0.0.1")
MEDIA_HOST = "media.example.test"  # the name the certificate is issued for; tests resolve it themselves


def loopback_as_public(address: IPAddress) -> str | None:
    return None if address == LOOPBACK else why_not_public(address)


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA to trust
    chain: Path  # the server's certificate
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificates(directory: Path, names: list[str], *, prefix: str = "media") -> Certificates:
    """A CA and a server certificate it signs for `names` (DNS names, or IP addresses) valid for a day."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{prefix} test CA"))
        .issuer_name(_name(f"{prefix} test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = Certificates(
        directory / f"{prefix}-ca.pem", directory / f"{prefix}.pem", directory / f"{prefix}.key"
    )
    paths.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def server_context(certificates: Certificates) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.chain, certificates.key)
    return context


@dataclass
class MediaHost:
    """An HTTPS server on 127.0.0.1 answering HEAD /<name> with what `answers` holds for the name (404
    otherwise), and keeping every request it read (method, path, Host header) and every SNI name."""

    port: int
    answers: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)  # seconds to wait before answering for a name
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)  # the server name each handshake asked for
    connections: int = 0


@contextmanager
def media_host(certificates: Certificates) -> Iterator[MediaHost]:
    context = server_context(certificates)
    host = MediaHost(port=0)
    context.sni_callback = lambda _socket, name, _context: host.sni.append(name)

    class Handler(http.server.BaseHTTPRequestHandler):
        def setup(self) -> None:
            host.connections += 1
            self.request.settimeout(5)
            # The handshake happens on the connection's own thread: a client that stalls holds no other.
            self.request = context.wrap_socket(self.request, server_side=True)
            super().setup()

        def do_HEAD(self) -> None:
            host.seen.append(("HEAD", self.path, self.headers.get("Host")))
            name = self.path.lstrip("/")
            time.sleep(host.delays.get(name, 0.0))
            status, headers = host.answers.get(name, (404, {}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

        def do_GET(self) -> None:
            host.seen.append(("GET", self.path, self.headers.get("Host")))
            self.send_response(405)
            self.end_headers()

        def handle(self) -> None:
            with contextlib.suppress(OSError, ssl.SSLError):  # a client may hang up mid-answer
                super().handle()

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass

    server = Server(("127.0.0.1", 0), Handler)
    host.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()


def loopback_preflight(certificates: Certificates, **changes: object) -> MediaPreflight:
    """A preflight that trusts the test CA and takes 127.0.0.1 for a public address."""
    return MediaPreflight(**{"routable": loopback_as_public, "ca_bundle": str(certificates.ca), **changes})
