"""Transport failures before the request reaches the provider, on real sockets: a name that does not resolve,
an https URL whose server speaks plain HTTP, and a server presenting an untrusted self-signed certificate.
Each is "never left" (TRANSIENT, not outcome-unknown): the provider client says so, and the sender, at most
once, hands the request back to be sent again (RETRY, `transient_retry`) instead of recording it
OUTCOME_UNKNOWN; the batch stops calling and its unsent records are deferred. The servers count what they
received: no request ever reached them.

The name is a reserved `.invalid` one, and resolution fails in this process (`socket.getaddrinfo` raises
`socket.gaierror` for it, as a resolver does): no DNS query leaves the machine. A refused connection and a
connection dropped after sending are tested in test_sender.py.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.provider_http import ProviderClient
from mmsbridge.sending.provider_xml import ErrorClass, TransportFailure
from mmsbridge.sending.results import Disposition
from tests.integration import test_sender as sender_tests
from tests.integration.test_sender import API_KEY, calls, message, run, sms

# The fixtures shared with test_sender.py, bound here (pytest finds a module's fixtures by attribute name).
simulator = sender_tests.simulator
harness = sender_tests.harness

API_PATH = "/API/wxml/1.3/"
UNRESOLVABLE = "provider.mmsbridge.invalid"  # RFC 2606: .invalid never resolves
DOCUMENT = b'<?xml version="1.0" encoding="UTF-8"?><REQUEST><ACTION>sendSMS</ACTION></REQUEST>'


@dataclass
class Seen:
    connections: int = 0
    handshakes: int = 0  # TLS handshakes completed
    posts: int = 0  # requests read to the end of their headers: the call reached the server


@pytest.fixture
def unresolvable(monkeypatch) -> list[str]:
    """`.invalid` names fail to resolve in this process, as the resolver would fail them; the names asked."""
    asked: list[str] = []
    resolve = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and host.rstrip(".").endswith(".invalid"):
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its name matches: only trust is missing), signed by its own key."""
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
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "self-signed.pem", directory / "self-signed.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@contextlib.contextmanager
def loopback_server(tls: ssl.SSLContext | None) -> Iterator[tuple[int, Seen]]:
    """An HTTP server on 127.0.0.1 (TLS with `tls`, plain HTTP without) answering any POST with an API
    failure, and counting connections, completed handshakes and requests read."""
    seen = Seen()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def setup(self) -> None:
            with lock:
                seen.connections += 1
            self.request.settimeout(5)
            if tls is not None:
                self.request = tls.wrap_socket(self.request, server_side=True)  # raises on a failed handshake
                with lock:
                    seen.handshakes += 1
            super().setup()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))  # all of it: no reset on close
            with lock:
                seen.posts += 1
            body = b"<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E503</ERRORCODE></RESPONSE>"
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def handle(self) -> None:
            with contextlib.suppress(OSError, ssl.SSLError):
                super().handle()

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a failed handshake: counted (no handshake), not printed

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port, seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def plain_http_server() -> Iterator[tuple[int, Seen]]:
    with loopback_server(None) as server:
        yield server


@pytest.fixture
def untrusted_tls_server(tmp_path) -> Iterator[tuple[int, Seen, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with loopback_server(context) as (port, seen):
        yield port, seen, cert


def assert_never_left(result, failure: TransportFailure) -> None:
    assert result.transport_error is failure
    assert result.error_class is ErrorClass.TRANSIENT
    assert result.outcome_unknown is False


def assert_handed_back_to_send_again(harness, table, simulator, api_url: str, code: str) -> None:
    """At most once, the sender hands the request back (RETRY) and stops the batch: not OUTCOME_UNKNOWN."""
    harness.api_url = api_url
    request = sms()
    results = run(harness.sender(), message(request), message(sms()))
    assert [(r.outcome, r.code) for r in results] == [("transient_retry", code), ("deferred", None)]
    assert {r.disposition for r in results} == {Disposition.RETRY}
    ledger = SendLedger(table).get(request["request_id"])
    assert ledger["status"] == "RETRY"
    assert int(ledger["transient_failures"]) == 1
    assert ledger["attempt_log"][-1]["outcome"] == "transient"
    assert calls(simulator) == 0


def test_a_name_that_does_not_resolve_never_left(harness, table, simulator, unresolvable):
    url = f"https://{UNRESOLVABLE}{API_PATH}"
    reply = ProviderClient(url, timeout=(1.0, 1.0)).call(DOCUMENT, api_key=API_KEY)
    assert_never_left(reply.result, TransportFailure.CONNECT_ERROR)
    assert unresolvable  # the failure was the name's resolution
    assert_handed_back_to_send_again(harness, table, simulator, url, "connect_error")


def test_an_https_url_whose_server_speaks_plain_http_never_left(harness, table, simulator, plain_http_server):
    port, seen = plain_http_server
    url = f"https://127.0.0.1:{port}{API_PATH}"
    reply = ProviderClient(url, timeout=(1.0, 2.0)).call(DOCUMENT, api_key=API_KEY)
    assert_never_left(reply.result, TransportFailure.TLS_ERROR)
    assert_handed_back_to_send_again(harness, table, simulator, url, "tls_error")
    assert seen.connections >= 2  # the client did connect, both times
    assert seen.posts == 0  # and no request reached the server: the TLS handshake failed first


def test_an_untrusted_self_signed_certificate_never_left(harness, table, simulator, untrusted_tls_server):
    port, seen, cert = untrusted_tls_server
    url = f"https://127.0.0.1:{port}{API_PATH}"
    reply = ProviderClient(url, timeout=(1.0, 2.0)).call(DOCUMENT, api_key=API_KEY)
    assert_never_left(reply.result, TransportFailure.TLS_ERROR)
    assert_handed_back_to_send_again(harness, table, simulator, url, "tls_error")
    assert seen.connections >= 2
    assert (seen.handshakes, seen.posts) == (0, 0)  # refused in the handshake: nothing was sent

    # The same server, its certificate trusted: the handshake completes and the request arrives. It was the
    # certificate, not the server, that stopped the calls above.
    trusting = requests.Session()
    trusting.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, wins over the session's own verify
    trusting.verify = str(cert)
    reply = ProviderClient(url, trusting, timeout=(1.0, 2.0)).call(DOCUMENT, api_key=API_KEY)
    assert reply.result.transport_error is None
    assert reply.result.error_code == "E503"
    assert (seen.handshakes, seen.posts) == (1, 1)
