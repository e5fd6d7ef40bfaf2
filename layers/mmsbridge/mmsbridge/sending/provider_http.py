"""HTTP to the provider with requests: one POST per call, every outcome a ProviderResult; media preflight
through media_check.py.

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

from mmsbridge.sending.media_check import MediaPreflight, media_problem
from mmsbridge.sending.provider_xml import (
    MAX_RESPONSE_BYTES,
    ProviderResult,
    TransportFailure,
    parse_response,
    transport_failure_result,
)

__all__ = ["ProviderClient", "ProviderReply", "check_api_url", "media_problem"]

CONNECT_TIMEOUT_S: Final = 3.05
READ_TIMEOUT_S: Final = 10.0
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


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
        media: MediaPreflight | None = None,
    ) -> None:
        self.api_url = check_api_url(api_url)
        self._session = session or requests.Session()
        self._timeout = timeout
        self.media = media or MediaPreflight()

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

    def preflight(self, url: str, *, until: float | None = None) -> tuple[str, str] | None:
        """Check a media URL as the provider will fetch it, public hosts only (media_check.py). None
        when it looks fetchable; else (kind, reason) with kind "transient" (worth retrying) or "permanent".
        `until`: time.monotonic() by which the check must be done."""
        return self.media.check(url, until=until)


def _connection_failure(error: requests.exceptions.ConnectionError) -> TransportFailure:
    """Refused or unresolvable: the request never left. A connection dropped mid-answer: it may have."""
    text = repr(error)
    never_sent = ("NewConnectionError", "NameResolutionError", "Failed to establish", "ConnectTimeout")
    if any(marker in text for marker in never_sent):
        return TransportFailure.CONNECT_ERROR
    return TransportFailure.CONNECTION_LOST
