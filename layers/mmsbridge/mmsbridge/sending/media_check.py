"""Media preflight: HEAD an MMS's media URL as the provider will fetch it, reaching public hosts only.

The URLs come from whoever puts requests on the send queue, and the sender runs outside a VPC, where the
instance metadata service (169.254.169.254, fd00:ec2::254), the Lambda runtime API (AWS_LAMBDA_RUNTIME_API,
127.0.0.1:9001) and whatever listens on loopback answer. A check therefore:

- takes https URLs only: a plain http answer can be altered on the way, and its certificate-less host cannot
  be tied to the name in the URL;
- resolves the host once and refuses the URL when any address it resolves to is not globally routable
  (`refused_address`). One bad answer among good ones refuses: which one a later lookup returns (a retry's,
  the provider's) is up to whoever controls the name's DNS;
- connects to an address it checked, never looking the name up again (a DNS-rebinding answer cannot swap
  it), and sends the URL's host name in the Host header and in SNI, verifying the certificate for that name;
- follows no redirect: a 3xx is reported with its Location;
- works against one wall-clock deadline (`until`, time.monotonic) that bounds DNS, connect, TLS and the
  answer; the sender gives every URL of one request the same deadline.

Every outcome is None (fetchable) or (kind, reason). "permanent": the URL itself is wrong (not https, an
address refused, a certificate that does not verify for the host, a redirect, an answer the provider would
refuse); "transient": trying again later may help (the deadline passed, DNS failed, the connection was
refused or dropped, HTTP 5xx, 408 or 429). No proxy settings apply: the check connects directly, as the
provider does.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import certifi

__all__ = [
    "BUDGET_S",
    "MEDIA_TYPES",
    "MediaPreflight",
    "media_problem",
    "refused_address",
    "system_resolve",
    "why_not_public",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Problem = tuple[str, str]

BUDGET_S: Final = 5.0  # every media URL of one request, DNS to the last header, when the caller sets none
USER_AGENT: Final = "mmsbridge-media-preflight"
_REASON_MAX: Final = 200  # characters of a server-supplied value (a Location) kept in a reason

# What the provider accepts as media (docs/provider-protocol.md §5.4); application/octet-stream is refused on
# purpose.
MEDIA_TYPES: Final = frozenset(
    {
        "image/gif",
        "image/jpeg",
        "image/jpg",
        "image/png",
        "audio/mpeg",
        "audio/mp3",
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "video/3gpp",
        "video/mp4",
        "video/mpeg",
        "video/avi",
        "video/x-msvideo",
        "video/x-ms-wmv",
        "text/plain",
        "text/vcard",
        "text/x-vcard",
        "text/calendar",
        "application/pdf",
        "application/vnd.apple.pkpass",
    }
)

# Named so a refusal says what the URL reached for; every one of them is also refused as not routable.
_NAMED_ENDPOINTS: Final[Mapping[IPAddress, str]] = {
    ipaddress.ip_address("169.254.169.254"): "the instance metadata service",
    ipaddress.ip_address("fd00:ec2::254"): "the instance metadata service",
    ipaddress.ip_address("169.254.170.2"): "the container credentials endpoint",
}
_RFC1918: Final = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_SHARED: Final = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_IPV4_COMPATIBLE: Final = ipaddress.ip_network("::/96")  # deprecated, RFC 4291 §2.5.5.1
_IPV4_TRANSLATED: Final = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT, RFC 2765
_NAT64: Final = ipaddress.ip_network(
    "64:ff9b::/96"
)  # RFC 6052: a NAT64 gateway connects to the embedded IPv4
_UNIQUE_LOCAL: Final = ipaddress.ip_network("fc00::/7")
_SITE_LOCAL: Final = ipaddress.ip_network("fec0::/10")  # deprecated, yet is_global calls it global
_LOW32: Final = 0xFFFFFFFF


def _ipv4_refusal(address: ipaddress.IPv4Address) -> str | None:
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address in _SHARED:
        return "carrier-grade NAT (shared address space)"
    if address.is_multicast:  # is_global is True for most of 224.0.0.0/4
        return "multicast"
    if any(address in network for network in _RFC1918):
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "special-purpose, not globally routable"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, by the form that carries them."""
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    low = ipaddress.IPv4Address(int(address) & _LOW32)
    if address.ipv4_mapped is not None:
        found.append(("the IPv4-mapped form", address.ipv4_mapped))
    elif address in _IPV4_TRANSLATED:
        found.append(("the IPv4-translated form", low))
    elif address in _NAT64:
        found.append(("the NAT64 form", low))
    elif address in _IPV4_COMPATIBLE and int(address) > 1:  # :: and ::1 are themselves
        found.append(("the IPv4-compatible form", low))
    if address.sixtofour is not None:
        found.append(("a 6to4 address", address.sixtofour))
    if address.teredo is not None:
        server, client = address.teredo
        found += [("a Teredo address (server)", server), ("a Teredo address (client)", client)]
    return found


def _ipv6_refusal(address: ipaddress.IPv6Address) -> str | None:
    for form, inner in _embedded_ipv4(address):
        why = _ipv4_refusal(inner)
        if why is not None:
            return f"{form} of {inner}, which is {why}"
    if address.ipv4_mapped is not None or address in _IPV4_TRANSLATED or address in _NAT64:
        return None  # the connection goes to the embedded IPv4 address, which passed
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return "an IPv4-compatible address (deprecated, not routed)"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address in _SITE_LOCAL:
        return "site-local"
    if address.is_multicast:  # is_global is True for ff0e::/16 and others
        return "multicast"
    if address in _UNIQUE_LOCAL:
        return "unique local (private)"
    if not address.is_global:
        return "special-purpose, not globally routable"
    if address.is_reserved:
        return "reserved"
    return None


def why_not_public(address: IPAddress) -> str | None:
    """None for an address on the public internet; else why not (loopback, private, link-local, carrier-grade
    NAT, multicast, reserved, unspecified, and the IPv6 forms that carry such an IPv4 address).
    `ipaddress`'s is_global alone lets multicast, site-local and IPv4-compatible/NAT64 forms through."""
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_refusal(address)
    return _ipv6_refusal(address)


def _runtime_api_address(env: Mapping[str, str]) -> IPAddress | None:
    value = env.get("AWS_LAMBDA_RUNTIME_API") or ""
    try:
        return ipaddress.ip_address(urlsplit(f"//{value}").hostname or "")
    except ValueError:
        return None


def refused_address(
    address: IPAddress,
    *,
    routable: Callable[[IPAddress], str | None] = why_not_public,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """Why the preflight must not connect to `address`, or None. The metadata services and the Lambda runtime
    API's host are refused by name whatever `routable` says; `routable` (injectable, so a loopback test server
    can stand in for a public host) decides the rest."""
    address = _without_scope(address)
    if address in _NAMED_ENDPOINTS:
        return _NAMED_ENDPOINTS[address]
    if address == _runtime_api_address(os.environ if env is None else env):
        return "the Lambda runtime API's host"
    return routable(address)


def _without_scope(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(int(address))
    return address


def _same_address(host: str, address: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(host) == address
    except ValueError:
        return False


def system_resolve(host: str, port: int) -> list[str]:
    """Every IPv4 and IPv6 address `host` resolves to, in the resolver's order, each once."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


def media_problem(status: int, headers: Mapping[str, str] | http.client.HTTPMessage) -> Problem | None:
    """Pure check of a media HEAD answer (docs/provider-protocol.md §5.5): 2xx, a supported Content-Type, a
    Content-Length."""
    if 500 <= status <= 599 or status in (408, 429):
        return "transient", f"HTTP {status}"
    if not 200 <= status <= 299:
        return "permanent", f"HTTP {status}"
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type not in MEDIA_TYPES:
        return "permanent", f"Content-Type {content_type or '(none)'} is not a supported media type"
    length = headers.get("Content-Length")
    if length is None or not str(length).strip().isdigit():
        return "permanent", "no Content-Length (the provider may refuse chunked media)"
    if int(length) == 0:
        return "permanent", "Content-Length is 0"
    return None


class _Resolver(Protocol):
    def __call__(self, host: str, port: int) -> list[str]: ...


class _OutOfTime(TimeoutError):
    """The preflight's deadline passed."""


def _left(until: float) -> float:
    left = until - time.monotonic()
    if left <= 0:
        raise _OutOfTime
    return left


class _DeadlineSocket(ssl.SSLSocket):
    """A TLS socket whose every read and write waits at most until `until`: a per-call timeout alone would
    let a server that sends a byte now and then hold the check for as long as it likes."""

    until: float | None = None

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if self.until is not None:
            self.settimeout(_left(self.until))
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        if self.until is not None:
            self.settimeout(_left(self.until))
        return super().recv(buflen, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        if self.until is not None:
            self.settimeout(_left(self.until))
        super().sendall(data, flags)


class _PinnedConnection(http.client.HTTPSConnection):
    """HTTPS to one address already checked. The socket connects to `address`; SNI, the certificate's host
    name check and the Host header use the URL's host. Nothing here looks a name up."""

    def __init__(self, host: str, port: int, *, address: str, context: ssl.SSLContext, until: float) -> None:
        super().__init__(host, port, context=context)
        self._address = address
        self._until = until
        self.phase = "the connection"

    def connect(self) -> None:
        family = socket.AF_INET6 if ":" in self._address else socket.AF_INET
        sockaddr = (
            (self._address, self.port, 0, 0) if family == socket.AF_INET6 else (self._address, self.port)
        )
        raw = socket.socket(family, socket.SOCK_STREAM)
        try:
            raw.settimeout(_left(self._until))
            raw.connect(sockaddr)
            self.phase = "the TLS handshake"
            tls = self._context.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
        except BaseException:
            raw.close()
            raise
        try:
            tls.until = self._until
            tls.settimeout(_left(self._until))
            tls.do_handshake()  # one deadline for the whole handshake
        except BaseException:
            tls.close()
            raise
        self.sock = tls
        self.phase = "the answer"


def _failure(host: str, phase: str, error: Exception) -> Problem:
    if isinstance(error, TimeoutError):
        return "transient", f"the media preflight's time ran out during {phase}"
    if isinstance(error, ssl.SSLCertVerificationError):
        return "permanent", f"the TLS certificate does not verify for {host} ({error.verify_message})"
    return "transient", f"no usable answer ({type(error).__name__} during {phase})"


def _printable(text: str) -> str:
    kept = "".join(c if " " <= c <= "~" else "?" for c in text)
    return kept if len(kept) <= _REASON_MAX else kept[:_REASON_MAX] + "..."


class MediaPreflight:
    """HEAD one media URL at a time, each against the deadline its caller gives (see the module's docstring).

    resolve: host, port -> addresses (default `system_resolve`, run on a thread so the deadline bounds it).
    routable: address -> None or why it is not public (default `why_not_public`).
    ca_bundle: the CA certificates to trust (default certifi's, as for the provider's API).
    """

    def __init__(
        self,
        *,
        resolve: _Resolver = system_resolve,
        routable: Callable[[IPAddress], str | None] = why_not_public,
        ca_bundle: str | None = None,
        env: Mapping[str, str] | None = None,
        budget_s: float = BUDGET_S,
    ) -> None:
        self._resolve = resolve
        self._routable = routable
        self._ca_bundle = ca_bundle
        self._env = env
        self.budget_s = budget_s
        self._tls: ssl.SSLContext | None = None  # made at the first check: loading CAs costs a cold start

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context(cafile=self._ca_bundle or certifi.where())
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.sslsocket_class = _DeadlineSocket
            self._tls = context
        return self._tls

    def check(self, url: str, *, until: float | None = None) -> Problem | None:
        """None when `url` looks fetchable; else (kind, reason). `until`: time.monotonic() by which to be done
        (default: budget_s from now)."""
        if until is None:
            until = time.monotonic() + self.budget_s
        parts = urlsplit(url)
        if parts.scheme.lower() != "https":
            return "permanent", "not https: the media preflight fetches https URLs only"
        host = parts.hostname
        try:
            port = parts.port or 443
        except ValueError:
            return "permanent", "an invalid port"
        if not host:
            return "permanent", "no host"
        try:
            addresses = self._resolved(host, port, until)
        except TimeoutError:
            return "transient", "the media preflight's time ran out resolving the host"
        except (OSError, UnicodeError) as error:
            return "transient", f"{host} does not resolve ({type(error).__name__})"
        if not addresses:
            return "transient", f"{host} resolves to no address"
        for text in addresses:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                return "permanent", f"{host} resolves to an unreadable address"
            why = refused_address(address, routable=self._routable, env=self._env)
            if why is not None:
                named = f"{address} is" if _same_address(host, address) else f"{host} resolves to {address},"
                return "permanent", f"{named} not a public address ({why}); not fetched"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return self._head(host, port, [str(ipaddress.ip_address(a)) for a in addresses], target, until)

    def _resolved(self, host: str, port: int, until: float) -> list[str]:
        """The resolver's answer, or _OutOfTime: getaddrinfo takes no timeout, so it runs on a daemon thread
        that is left to finish on its own when the deadline passes first."""
        answer: dict[str, Any] = {}

        def lookup() -> None:
            try:
                answer["addresses"] = list(self._resolve(host, port))
            except BaseException as error:  # handed to the caller below
                answer["error"] = error

        thread = threading.Thread(target=lookup, name="media-preflight-dns", daemon=True)
        thread.start()
        thread.join(_left(until))
        if thread.is_alive():
            raise _OutOfTime
        if "error" in answer:
            raise answer["error"]
        return answer["addresses"]

    def _head(self, host: str, port: int, addresses: list[str], target: str, until: float) -> Problem | None:
        problem: Problem = "transient", "unreachable"
        for address in addresses:  # every one was checked; the next is tried when one refuses the connection
            connection = _PinnedConnection(host, port, address=address, context=self._context(), until=until)
            try:
                try:
                    connection.connect()
                except (OSError, ssl.SSLError) as error:
                    if isinstance(error, TimeoutError | ssl.SSLCertVerificationError):
                        return _failure(host, connection.phase, error)
                    problem = "transient", f"unreachable ({type(error).__name__} during {connection.phase})"
                    continue
                return self._answer(connection, target)
            except (OSError, http.client.HTTPException) as error:
                return _failure(host, connection.phase, error)
            finally:
                connection.close()
        return problem

    def _answer(self, connection: _PinnedConnection, target: str) -> Problem | None:
        connection.request(
            "HEAD", target, headers={"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
        )
        response = connection.getresponse()
        with response:
            if 300 <= response.status <= 399:
                location = _printable(response.headers.get("Location") or "(none)")
                return (
                    "permanent",
                    f"HTTP {response.status} redirect to {location}: redirects are not followed, "
                    "give the URL it points to",
                )
            return media_problem(response.status, response.headers)
