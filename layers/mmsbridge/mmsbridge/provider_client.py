"""HTTP to the provider with requests: one POST per call, every outcome a ProviderResult; media preflight.

The API key travels only inside the request body. It never reaches a log line or an exception: requests'
exceptions name the URL (which holds no key) and the answer's values are scrubbed of it
(`parse_response(api_key=...)`). Redirects are not followed (a POST to a moved URL is a configuration
error), and the answer is read up to MAX_RESPONSE_BYTES + 1 bytes only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import urlsplit

import requests

from mmsbridge.provider_api import (
    MAX_RESPONSE_BYTES,
    ProviderResult,
    TransportFailure,
    parse_response,
    transport_failure_result,
)

__all__ = ["ProviderClient", "ProviderReply", "check_api_url", "media_problem"]

CONNECT_TIMEOUT_S: Final = 3.05
READ_TIMEOUT_S: Final = 10.0
PREFLIGHT_TIMEOUT_S: Final = (2.0, 3.0)
_LOOPBACK_NAMES: Final = frozenset({"localhost"})
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


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(url: str) -> str:
    """The API URL, or ValueError: https, or http to a loopback host only (the local simulator)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url
    raise ValueError("the provider API URL must be https (http only for a loopback host)")


@dataclass(frozen=True)
class ProviderReply:
    result: ProviderResult
    retry_after_s: float | None = None  # the provider's Retry-After, when it sent one


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds()) if moment.tzinfo else None


class ProviderClient:
    def __init__(
        self,
        api_url: str,
        session: requests.Session | None = None,
        *,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
    ) -> None:
        self.api_url = check_api_url(api_url)
        self._session = session or requests.Session()
        self._timeout = timeout

    def call(self, xml: bytes, *, api_key: str) -> ProviderReply:
        """POST one request document. Never raises for a network or protocol problem."""
        try:
            response = self._session.post(
                self.api_url,
                data=xml,
                headers={"Content-Type": "text/xml; charset=utf-8"},
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.ConnectTimeout:
            return ProviderReply(transport_failure_result(TransportFailure.CONNECT_TIMEOUT))
        except requests.exceptions.SSLError:
            return ProviderReply(transport_failure_result(TransportFailure.TLS_ERROR))
        except requests.exceptions.ReadTimeout:
            return ProviderReply(transport_failure_result(TransportFailure.READ_TIMEOUT))
        except requests.exceptions.ConnectionError as error:
            return ProviderReply(transport_failure_result(_connection_failure(error)))
        except requests.exceptions.RequestException:
            return ProviderReply(transport_failure_result(TransportFailure.CONNECTION_LOST))
        with response:
            try:
                body = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
            except requests.exceptions.ReadTimeout:
                return ProviderReply(transport_failure_result(TransportFailure.READ_TIMEOUT))
            except Exception:
                return ProviderReply(transport_failure_result(TransportFailure.CONNECTION_LOST))
            result = parse_response(body, http_status=response.status_code, api_key=api_key)
            return ProviderReply(result, _retry_after(response.headers.get("Retry-After")))

    def preflight(self, url: str) -> tuple[str, str] | None:
        """HEAD a media URL as the provider will fetch it. None when it looks fetchable; else (kind, reason)
        with kind "transient" (unreachable, 5xx: worth retrying) or "permanent"."""
        try:
            response = self._session.head(url, timeout=PREFLIGHT_TIMEOUT_S, allow_redirects=True)
        except requests.exceptions.RequestException as error:
            return "transient", f"unreachable ({type(error).__name__})"
        with response:
            return media_problem(response.status_code, response.headers)


def media_problem(
    status: int, headers: requests.structures.CaseInsensitiveDict | dict
) -> tuple[str, str] | None:
    """Pure check of a media HEAD answer (docs/provider-protocol.md §5.5): 2xx, a supported Content-Type, a
    Content-Length."""
    if 500 <= status <= 599:
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


def _connection_failure(error: requests.exceptions.ConnectionError) -> TransportFailure:
    """Refused or unresolvable: the request never left. A connection dropped mid-answer: it may have."""
    text = repr(error)
    never_sent = ("NewConnectionError", "NameResolutionError", "Failed to establish", "ConnectTimeout")
    if any(marker in text for marker in never_sent):
        return TransportFailure.CONNECT_ERROR
    return TransportFailure.CONNECTION_LOST
