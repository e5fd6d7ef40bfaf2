"""The ingest decision, pure: who may post, what body is admitted, where its bytes are archived.

The ingest never parses XML and never refuses an admitted body for its content: a malformed postback is
stored like any other, for the consumer to quarantine. Refusals happen before anything is stored.

Who may post: a source address in the allowed networks (the provider's, which every customer of the
provider shares) and the postback URL's token (which only this account's postback URL holds), checked by
a callable the caller gives (mmsbridge.ingest.tokens).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from mmsbridge.config import Env, SettingError
from mmsbridge.ingest.tokens import DEFAULT_MAX_AGE_S, DEFAULT_RECHECK_S, TokenUnavailable

type Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_METADATA_VALUE_LIMIT = 256


class Refusal(Enum):
    """Why a request was refused, with the HTTP answer it gets. Nothing is stored for any of them."""

    # The third item keeps each member distinct: ADDRESS and TOKEN give the same answer (a refused caller
    # learns nothing) but must not be one member, or a wrong token would be counted as a wrong address.
    ADDRESS = (403, "Forbidden", "address")
    TOKEN = (403, "Forbidden", "token")
    # The token could not be checked (its secret unreadable or malformed): the provider retries a 503.
    TOKEN_UNAVAILABLE = (503, "Temporarily unavailable; retry", "token-unavailable")
    EMPTY_BODY = (400, "Empty body", "empty")
    BAD_ENCODING = (400, "Body is not valid base64", "encoding")
    TOO_LARGE = (413, "Body too large", "size")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]

    @property
    def metric_name(self) -> str:
        return "Refused" + "".join(part.title() for part in self.name.split("_"))

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.name.lower())


class Outcome(StrEnum):
    """How the ingest answered a request: the `outcome` field of its log line."""

    ACCEPTED = "accepted"
    UNAVAILABLE = "unavailable"  # admitted, but not stored: 503, the provider retries
    ADDRESS = "address"
    TOKEN = "token"  # noqa: S105 - an outcome, not a token  # nosec B105
    TOKEN_UNAVAILABLE = "token_unavailable"  # noqa: S105 - an outcome, not a token  # nosec B105
    EMPTY_BODY = "empty_body"
    BAD_ENCODING = "bad_encoding"
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class IngestSettings:
    allowed_networks: tuple[Network, ...]
    token_secret: str  # the name or ARN of the secret holding the postback URL's token, never the token
    token_max_age_s: float
    token_recheck_s: float
    max_body_bytes: int
    archive_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestSettings:
        """Read the settings the template passes as environment variables. Fails loudly on bad values."""
        read = Env(env)
        try:
            cidrs = read.items("ALLOWED_SOURCE_CIDRS")
            networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
        except ValueError as error:
            raise SettingError(f"ALLOWED_SOURCE_CIDRS: {error}") from None
        max_age = read.number("POSTBACK_TOKEN_MAX_AGE_S", DEFAULT_MAX_AGE_S)
        recheck = read.number("POSTBACK_TOKEN_RECHECK_S", DEFAULT_RECHECK_S)
        if not 0 <= recheck <= max_age:
            raise SettingError("0 <= POSTBACK_TOKEN_RECHECK_S <= POSTBACK_TOKEN_MAX_AGE_S")
        return cls(
            allowed_networks=networks,
            token_secret=read.text("POSTBACK_TOKEN_SECRET").strip(),
            token_max_age_s=max_age,
            token_recheck_s=recheck,
            max_body_bytes=read.integer("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, minimum=1),
            archive_prefix=read.text("ARCHIVE_PREFIX", "raw/"),
        )


@dataclass(frozen=True, slots=True)
class ReceivedPostback:
    """An admitted request: the exact bytes received and the facts about their arrival."""

    body: bytes
    sha256: str
    source_ip: str
    request_id: str
    content_type: str
    received_at: datetime

    def archive_key(self, prefix: str) -> str:
        """Content-addressed: a provider retry of the same postback lands on the same key."""
        return f"{prefix}{self.sha256}.xml"

    def archive_metadata(self) -> dict[str, str]:
        return {
            "received-at": self.received_at.isoformat(),
            "source-ip": self.source_ip,
            "request-id": self.request_id,
            "content-type": self.content_type,
            "sha256": self.sha256,
        }


def admit(
    event: Mapping[str, Any],
    settings: IngestSettings,
    now: datetime,
    token_accepted: Callable[[str], bool],
) -> ReceivedPostback | Refusal:
    """Decide on an API Gateway REST proxy event: the admitted postback, or why it is refused.

    `token_accepted` says whether the URL's token is one the account accepts (PostbackTokens.accepts); it is
    asked only for a request from an allowed address that carries a token."""
    context = event.get("requestContext") or {}
    source_ip = str((context.get("identity") or {}).get("sourceIp") or "")
    if not _address_allowed(source_ip, settings.allowed_networks):
        return Refusal.ADDRESS
    given = str((event.get("pathParameters") or {}).get("token") or "")
    if not given:
        return Refusal.TOKEN
    try:
        if not token_accepted(given):
            return Refusal.TOKEN
    except TokenUnavailable:
        return Refusal.TOKEN_UNAVAILABLE
    raw = event.get("body") or ""
    # A base64 text is 4/3 of its bytes: refuse an oversized body before decoding it.
    encoded = bool(event.get("isBase64Encoded"))
    if encoded and len(raw) > (settings.max_body_bytes + 2) // 3 * 4:
        return Refusal.TOO_LARGE
    try:
        body = base64.b64decode(raw, validate=True) if encoded else raw.encode("utf-8")
    except (binascii.Error, ValueError):
        return Refusal.BAD_ENCODING
    if not body:
        return Refusal.EMPTY_BODY
    if len(body) > settings.max_body_bytes:
        return Refusal.TOO_LARGE
    return ReceivedPostback(
        body=body,
        sha256=hashlib.sha256(body).hexdigest(),
        source_ip=source_ip,
        request_id=_metadata_safe(str(context.get("requestId") or "")),
        content_type=_metadata_safe(_header(event, "content-type")),
        received_at=now,
    )


def _address_allowed(source_ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _header(event: Mapping[str, Any], name: str) -> str:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value or "")
    return ""


def _metadata_safe(value: str) -> str:
    """S3 metadata travels in HTTP headers: printable ASCII only, bounded length."""
    cleaned = "".join(ch if " " <= ch <= "~" else "?" for ch in value)
    return cleaned[:_METADATA_VALUE_LIMIT]


def http_response(status: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """An API Gateway proxy response with a small JSON body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def refusal_response(refusal: Refusal) -> dict[str, Any]:
    return http_response(refusal.status, {"message": refusal.message})


def accepted_response(postback: ReceivedPostback) -> dict[str, Any]:
    return http_response(200, {"status": "accepted", "sha256": postback.sha256})


def unavailable_response() -> dict[str, Any]:
    return http_response(503, {"message": "Temporarily unavailable; retry"})
