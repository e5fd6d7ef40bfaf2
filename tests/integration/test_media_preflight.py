"""The media preflight on real sockets: what it refuses to reach, how it connects, and its time budget.

Every test reaches loopback only. Two guards make sure of it: `socket.getaddrinfo` answers names the test
crafted (and numeric addresses and `localhost`), never a real DNS query, and `socket.socket.connect` fails
the test for any address off loopback. A preflight that looked a name up twice, or connected to an address
it refused, would meet them. Where a test needs a host the preflight may fetch, 127.0.0.1 stands in for a
public address (`loopback_as_public`); the refusal tests keep the real policy.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from local.simulator import ProviderSimulator
from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.media_check import MediaPreflight, refused_address, why_not_public
from mmsbridge.sending.results import Disposition
from mmsbridge.sending.sender import _CALL_BUDGET_S
from tests.integration.test_sender import API_KEY, Harness, calls, inline_mms, message, run
from tests.media_hosts import (
    MEDIA_HOST,
    Certificates,
    loopback_as_public,
    loopback_preflight,
    make_certificates,
    media_host,
    server_context,
)

OK = (200, {"Content-Type": "image/jpeg", "Content-Length": "2048"})
REBIND_HOST = "rebind.example.test"
STRANGER = "stranger.example.test"  # resolves to 127.0.0.1 too, but the certificate does not name it


# ---- guards: crafted DNS, loopback-only connections ------------------------------------------------------


class Dns:
    """Answers for `socket.getaddrinfo`: a list of addresses, or a function giving one per lookup."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str] | Callable[[], list[str]]] = {}
        self.lookups: list[str] = []

    def count(self, host: str) -> int:
        return self.lookups.count(host)


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> Dns:
    crafted = Dns()
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        crafted.lookups.append(host)
        if host in crafted.answers:
            given = crafted.answers[host]
            addresses = given() if callable(given) else given
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port, 0, 0))
                if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
                for a in addresses
            ]
        if host == "localhost":  # /etc/hosts
            return real(host, port, family, type, proto, flags)
        # A numeric address is parsed, never sent to a resolver; any other name fails here.
        return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return crafted


@pytest.fixture(autouse=True)
def connections(monkeypatch) -> list[tuple[str, int]]:
    """Every address a client socket connected to; anything off loopback fails the test instead."""
    made: list[tuple[str, int]] = []
    real_connect = socket.socket.connect

    def connect(self, address):
        host = ipaddress.ip_address(str(address[0]).split("%")[0])
        if not host.is_loopback:
            raise AssertionError(f"a connection to {address} was attempted")
        made.append((str(address[0]), int(address[1])))
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return made


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    names = [MEDIA_HOST, REBIND_HOST, "localhost", "127.0.0.1"]
    return make_certificates(tmp_path_factory.mktemp("media-tls"), names)


@pytest.fixture
def host(certificates):
    with media_host(certificates) as server:
        server.answers["ok.jpg"] = OK
        yield server


@pytest.fixture
def preflight(certificates, dns) -> MediaPreflight:
    """127.0.0.1 as a public host; MEDIA_HOST, REBIND_HOST and STRANGER resolve to it."""
    for name in (MEDIA_HOST, STRANGER):
        dns.answers[name] = ["127.0.0.1"]
    return loopback_preflight(certificates)


def strict(certificates) -> MediaPreflight:
    """The real address policy, trusting the test CA."""
    return MediaPreflight(ca_bundle=str(certificates.ca))


# ---- a fetchable URL --------------------------------------------------------------------------------


def test_a_fetchable_url_is_fetched_from_the_checked_address_under_its_own_name(
    preflight, host, dns, connections
):
    assert preflight.check(f"https://{MEDIA_HOST}:{host.port}/ok.jpg") is None
    assert host.seen == [("HEAD", "/ok.jpg", f"{MEDIA_HOST}:{host.port}")]
    assert host.sni == [MEDIA_HOST]
    assert connections == [("127.0.0.1", host.port)]
    assert dns.count(MEDIA_HOST) == 1


def test_the_answer_is_still_checked_as_the_provider_needs_it(preflight, host):
    host.answers["octet.jpg"] = (200, {"Content-Type": "application/octet-stream", "Content-Length": "9"})
    host.answers["busy.jpg"] = (503, {})
    host.answers["slow-down.jpg"] = (429, {})
    base = f"https://{MEDIA_HOST}:{host.port}"
    assert preflight.check(f"{base}/octet.jpg")[0] == "permanent"
    assert preflight.check(f"{base}/gone.jpg") == ("permanent", "HTTP 404")
    assert preflight.check(f"{base}/busy.jpg") == ("transient", "HTTP 503")
    assert preflight.check(f"{base}/slow-down.jpg") == ("transient", "HTTP 429")


# ---- https only -------------------------------------------------------------------------------------


def test_http_is_refused_before_any_lookup_or_connection(preflight, host, dns, connections):
    kind, reason = preflight.check(f"http://{MEDIA_HOST}:{host.port}/ok.jpg")
    assert kind == "permanent"
    assert "not https" in reason
    assert dns.lookups == []
    assert connections == []


# ---- addresses that are not public ------------------------------------------------------------------


def test_localhost_is_refused_as_loopback(certificates, host, connections):
    # A server listens there and its certificate names localhost: only the address policy stands between.
    kind, reason = strict(certificates).check(f"https://localhost:{host.port}/ok.jpg")
    assert kind == "permanent"
    assert "127.0.0.1" in reason
    assert "loopback" in reason
    assert connections == []
    assert host.connections == 0


REFUSED = [
    ("127.0.0.53", "loopback"),
    ("10.0.0.5", "private"),
    ("172.16.3.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "the instance metadata service"),
    ("169.254.170.2", "the container credentials endpoint"),
    ("169.254.10.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "not globally routable"),
    ("198.18.0.1", "not globally routable"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fd00:ec2::254", "the instance metadata service"),
    ("fc00::1", "unique local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, which is loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254, which is link-local"),
    ("::ffff:10.1.2.3", "IPv4-mapped form of 10.1.2.3, which is private"),
    ("::127.0.0.1", "IPv4-compatible form of 127.0.0.1, which is loopback"),
    ("::8.8.8.8", "IPv4-compatible address"),
    ("::ffff:0:a00:1", "IPv4-translated form of 10.0.0.1, which is private"),
    ("64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254, which is link-local"),
    ("64:ff9b:1::1", "not globally routable"),
    ("2002:7f00:1::1", "6to4 address of 127.0.0.1, which is loopback"),
    ("2002:a9fe:a9fe::1", "6to4 address of 169.254.169.254, which is link-local"),
    ("2002:808:808::1", "not globally routable"),  # 6to4 is refused even around a public address
    # Teredo: server 65.54.227.120, client 192.168.1.1 (stored inverted: 3f57:fefe).
    ("2001:0:4136:e378:8000:63bf:3f57:fefe", "Teredo address (client) of 192.168.1.1, which is private"),
]


@pytest.mark.parametrize(("address", "why"), REFUSED, ids=[a for a, _ in REFUSED])
def test_a_name_resolving_to_an_address_that_is_not_public_is_refused(
    certificates, dns, connections, address, why
):
    dns.answers["media.attacker.test"] = [address]
    kind, reason = strict(certificates).check("https://media.attacker.test/photo.jpg")
    assert kind == "permanent"
    assert why in reason
    assert address in reason or str(ipaddress.ip_address(address)) in reason
    assert connections == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://169.254.169.254/latest/meta-data/x.jpg", "the instance metadata service"),
        ("https://[fd00:ec2::254]/latest/x.jpg", "the instance metadata service"),
        ("https://[::1]:8443/x.jpg", "loopback"),
        ("https://[::ffff:7f00:1]/x.jpg", "loopback"),
        ("https://2130706433/x.jpg", "loopback"),  # 127.0.0.1 as one number
        ("https://0x7f.1/x.jpg", "loopback"),
        ("https://10.1/x.jpg", "private"),  # 10.0.0.1
    ],
)
def test_address_literals_in_any_spelling_are_refused(certificates, connections, url, why):
    kind, reason = strict(certificates).check(url)
    assert (kind, why in reason) == ("permanent", True), reason
    assert connections == []


def test_one_refused_address_among_public_ones_refuses_the_url(preflight, host, dns, connections):
    for answer in (["127.0.0.1", "10.0.0.1"], ["10.0.0.1", "127.0.0.1"], ["127.0.0.1", "::1"]):
        dns.answers[MEDIA_HOST] = answer
        kind, reason = preflight.check(f"https://{MEDIA_HOST}:{host.port}/ok.jpg")
        assert kind == "permanent", answer
        assert "not a public address" in reason
    assert connections == []
    assert host.connections == 0


def test_the_lambda_runtime_api_host_is_refused_whatever_the_policy(
    preflight, host, connections, monkeypatch
):
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", f"127.0.0.1:{host.port}")
    kind, reason = preflight.check(f"https://{MEDIA_HOST}:{host.port}/ok.jpg")
    assert kind == "permanent"
    assert "the Lambda runtime API's host" in reason
    assert connections == []


def test_the_metadata_services_are_refused_by_name_even_when_everything_counts_as_public():
    everything = lambda _address: None  # noqa: E731
    for address in ("169.254.169.254", "fd00:ec2::254", "fd00:ec2::254%eth0"):
        assert refused_address(ipaddress.ip_address(address), routable=everything, env={}) is not None


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.215.14", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address):
    assert why_not_public(ipaddress.ip_address(address)) is None
    assert refused_address(ipaddress.ip_address(address), env={}) is None


# ---- no redirect, no second lookup --------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://metadata.attacker.test/latest/meta-data/",
        "/elsewhere/ok.jpg",
    ],
)
def test_a_redirect_is_reported_not_followed(preflight, host, dns, connections, location):
    dns.answers["metadata.attacker.test"] = ["169.254.169.254"]
    host.answers["moved.jpg"] = (302, {"Location": location})
    kind, reason = preflight.check(f"https://{MEDIA_HOST}:{host.port}/moved.jpg")
    assert kind == "permanent"
    assert reason.startswith(f"HTTP 302 redirect to {location}")
    assert "not followed" in reason
    assert host.seen == [("HEAD", "/moved.jpg", f"{MEDIA_HOST}:{host.port}")]
    assert dns.lookups == [MEDIA_HOST]
    assert connections == [("127.0.0.1", host.port)]


def test_dns_rebinding_cannot_move_the_connection(certificates, host, dns, connections):
    """The name answers 127.0.0.1 (public here) once, then a private address: the check and the connection
    use the first answer, and the name is looked up once."""
    answers = iter([["127.0.0.1"]])
    dns.answers[REBIND_HOST] = lambda: next(answers, ["10.0.0.1"])
    assert loopback_preflight(certificates).check(f"https://{REBIND_HOST}:{host.port}/ok.jpg") is None
    assert dns.count(REBIND_HOST) == 1
    assert connections == [("127.0.0.1", host.port)]
    assert host.seen == [("HEAD", "/ok.jpg", f"{REBIND_HOST}:{host.port}")]


# ---- TLS: the certificate must be valid for the URL's host ------------------------------------------------


def test_a_certificate_from_an_untrusted_ca_is_refused(certificates, host, dns):
    dns.answers[MEDIA_HOST] = ["127.0.0.1"]
    kind, reason = MediaPreflight(routable=loopback_as_public).check(
        f"https://{MEDIA_HOST}:{host.port}/ok.jpg"
    )
    assert kind == "permanent"
    assert "certificate does not verify" in reason
    assert host.seen == []


def test_a_certificate_for_another_name_is_refused(preflight, host):
    kind, reason = preflight.check(f"https://{STRANGER}:{host.port}/ok.jpg")
    assert kind == "permanent"
    assert f"does not verify for {STRANGER}" in reason
    assert "mismatch" in reason.lower()
    assert host.sni == [STRANGER]
    assert host.seen == []


# ---- the budget ---------------------------------------------------------------------------------------


HOLD_S = (
    20.0  # how long the slow servers keep going: far beyond any budget here, so only the budget stops a check
)


class SlowServer:
    """A loopback server for one slowness: `stall` accepts and says nothing, so a TLS handshake never ends;
    `drip` completes the handshake, reads the request, then sends its answer a byte every 0.1 s. Either way it
    gives up after HOLD_S and counts that in `gave_up`: a check that came back while `gave_up` is still 0 was
    stopped by its own deadline, not by the server."""

    def __init__(self, mode: str, context: ssl.SSLContext | None = None) -> None:
        self.mode = mode
        self.context = context
        self.gave_up = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        until = time.monotonic() + HOLD_S
        raw.settimeout(HOLD_S)
        try:
            if self.mode == "stall":
                self.stop.wait(HOLD_S)
            else:
                assert self.context is not None
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(4096)
                    tls.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not self.stop.is_set() and time.monotonic() < until:
                        tls.sendall(b"X")
                        self.stop.wait(0.1)
        except (OSError, ssl.SSLError):
            pass
        finally:
            if not self.stop.is_set():
                self.gave_up += 1
            raw.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.listener.close()


@pytest.fixture
def stalling() -> Iterator[SlowServer]:
    server = SlowServer("stall")
    yield server
    server.close()


@pytest.fixture
def dripping(certificates) -> Iterator[SlowServer]:
    server = SlowServer("drip", server_context(certificates))
    yield server
    server.close()


def test_a_slow_resolver_runs_into_the_budget(certificates):
    """The resolver is still busy when the check comes back, at its deadline."""
    release = threading.Event()

    def slow(host: str, port: int) -> list[str]:
        release.wait(HOLD_S)
        return ["127.0.0.1"]

    checker = MediaPreflight(resolve=slow, routable=loopback_as_public, ca_bundle=str(certificates.ca))
    until = time.monotonic() + 0.3
    try:
        kind, reason = checker.check(f"https://{MEDIA_HOST}/ok.jpg", until=until)
        still_resolving = not release.is_set()
        assert time.monotonic() >= until - 0.05  # it waited for its deadline, no shorter timeout
    finally:
        release.set()
    assert (kind, reason) == ("transient", "the media preflight's time ran out resolving the host")
    assert still_resolving


def test_a_host_that_stalls_the_handshake_runs_into_the_budget(preflight, stalling):
    until = time.monotonic() + 0.3
    kind, reason = preflight.check(f"https://{MEDIA_HOST}:{stalling.port}/ok.jpg", until=until)
    assert time.monotonic() >= until - 0.05  # it waited for its deadline, no shorter timeout
    assert (kind, reason) == ("transient", "the media preflight's time ran out during the TLS handshake")
    assert stalling.gave_up == 0


def test_a_host_that_drips_its_answer_runs_into_the_budget(preflight, dripping):
    """Every read is quick, the answer never ends: only the deadline over all reads stops the check."""
    until = time.monotonic() + 0.5
    kind, reason = preflight.check(f"https://{MEDIA_HOST}:{dripping.port}/ok.jpg", until=until)
    assert time.monotonic() >= until - 0.05  # it waited for its deadline, no shorter timeout
    assert (kind, reason) == ("transient", "the media preflight's time ran out during the answer")
    assert dripping.gave_up == 0


def test_a_deadline_already_past_contacts_nobody(preflight, host, dns, connections):
    kind, reason = preflight.check(f"https://{MEDIA_HOST}:{host.port}/ok.jpg", until=time.monotonic() - 1)
    assert kind == "transient"
    assert "time ran out" in reason
    assert connections == []


# ---- in the sender ------------------------------------------------------------------------------------


def two_slides(first: str, second: str) -> dict:
    request = inline_mms(first)
    request["slides"].append({"image_url": second, "text": "And this"})
    return request


@pytest.fixture(scope="module")
def table(aws_stack, aws_clients):
    (spec,) = aws_stack.tables().values()
    return StateTable(aws_clients["dynamodb"], spec.name)


@pytest.fixture
def simulator():
    with ProviderSimulator(api_key=API_KEY, templates=["48213"]) as sim:
        yield sim


@pytest.fixture
def sending(table, simulator, preflight) -> Harness:
    """The sender's test harness (moto's table, the simulator) with the loopback media preflight."""
    return Harness(table, simulator, media=preflight)


def test_the_sender_sends_what_passes_and_refuses_an_unsafe_url_for_good(sending, table, simulator, host):
    good = inline_mms(f"https://{MEDIA_HOST}:{host.port}/ok.jpg")
    metadata = two_slides(
        f"https://{MEDIA_HOST}:{host.port}/ok.jpg", "https://169.254.169.254/latest/meta-data/x.jpg"
    )
    plain = inline_mms(f"http://{MEDIA_HOST}:{host.port}/ok.jpg")
    results = run(sending.sender(media_preflight=True), *map(message, (good, metadata, plain)))
    assert [(r.outcome, r.disposition) for r in results] == [
        ("accepted", Disposition.DONE),
        ("rejected", Disposition.DONE),
        ("rejected", Disposition.DONE),
    ]
    (reason,) = SendLedger(table).get(metadata["request_id"])["reasons"]
    assert reason["field"] == "slides[1].image_url"
    assert "the instance metadata service" in reason["reason"]
    (reason,) = SendLedger(table).get(plain["request_id"])["reasons"]
    assert reason == {
        "field": "slides[0].image_url",
        "reason": "media preflight: not https: the media preflight fetches https URLs only",
    }
    assert calls(simulator) == 1


class Recording(MediaPreflight):
    """The preflight, keeping the deadline each check was given."""

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        self.untils: list[float | None] = []

    def check(self, url: str, *, until: float | None = None) -> tuple[str, str] | None:
        self.untils.append(until)
        return super().check(url, until=until)


@pytest.fixture
def recording(certificates) -> Recording:
    return Recording(routable=loopback_as_public, ca_bundle=str(certificates.ca))


def test_one_budget_covers_every_url_of_a_request_and_running_out_is_a_retry(
    table, simulator, preflight, recording, host, stalling
):
    """The first image answers, the second host stalls: both checks end at the same deadline, one budget
    after the request came up, and running out hands the request back."""
    request = two_slides(
        f"https://{MEDIA_HOST}:{host.port}/ok.jpg", f"https://{MEDIA_HOST}:{stalling.port}/ok.jpg"
    )
    sender = Harness(table, simulator, media=recording).sender(
        media_preflight=True, media_preflight_budget_s=0.5
    )
    before = time.monotonic()
    (result,) = run(sender, message(request))
    assert (result.outcome, result.disposition) == ("transient_retry", Disposition.RETRY)
    assert result.reason == "the media preflight's time ran out during the TLS handshake"
    assert host.seen == [("HEAD", "/ok.jpg", f"{MEDIA_HOST}:{host.port}")]
    first, second = recording.untils
    assert first == second
    assert first > before
    assert stalling.gave_up == 0
    ledger = SendLedger(table).get(request["request_id"])
    assert (ledger["status"], ledger["transient_failures"]) == ("RETRY", 1)
    assert calls(simulator) == 0


def test_the_budget_ends_before_the_time_the_call_needs(table, simulator, preflight, recording, host):
    """Three seconds before the call's reserved time: the preflight gets those three, not its 5 s."""
    request = inline_mms(f"https://{MEDIA_HOST}:{host.port}/ok.jpg")
    sender = Harness(table, simulator, media=recording).sender(media_preflight=True)
    before, now = time.monotonic(), time.time()
    report = sender.send_batch([message(request).record()], deadline=now + _CALL_BUDGET_S + 3.0)
    assert report.results[0].outcome == "accepted"
    (until,) = recording.untils
    # `before` and `now` are read together, and so are the sender's clock and its monotonic reading: the
    # time the claim took cancels out.
    assert before < until <= before + 3.0 + 0.5


def test_without_time_left_for_the_preflight_the_request_waits_unchecked(sending, table, simulator, host):
    request = inline_mms(f"https://{MEDIA_HOST}:{host.port}/ok.jpg")
    sender = sending.sender(media_preflight=True)
    report = sender.send_batch([message(request).record()], deadline=time.time() + _CALL_BUDGET_S + 0.1)
    (result,) = report.results
    assert (result.outcome, result.disposition) == ("deferred", Disposition.RETRY)
    assert host.connections == 0
    ledger = SendLedger(table).get(request["request_id"])
    assert ledger["status"] == "RETRY"
    assert int(ledger.get("transient_failures", 0)) == 0
    assert calls(simulator) == 0
