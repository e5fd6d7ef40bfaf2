"""The postback queue's message format, shared by the ingest (writer) and the consumer (reader).

One JSON object per accepted postback. The raw bytes travel base64-encoded (exact, whatever they are)
when they fit; a larger body travels by its S3 key alone, so a message never exceeds the queue's limit.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

# 192 KiB of raw bytes is 256 KiB of base64: with the envelope's few hundred bytes that still fits 256 KiB
# minus headroom. Genuine postbacks are under 16 KiB, so only abnormal bodies go by reference.
INLINE_BODY_LIMIT = 190 * 1024
VERSION = 1


class EnvelopeError(ValueError):
    """A queue message that is not a postback envelope."""


@dataclass(frozen=True, slots=True)
class QueuedPostback:
    key: str
    sha256: str
    size: int
    received_at: str
    source_ip: str
    request_id: str
    body: bytes | None  # None: read it from the archive under `key`

    @property
    def inline(self) -> bool:
        return self.body is not None


def encode(
    *, key: str, sha256: str, body: bytes, received_at: datetime, source_ip: str, request_id: str
) -> str:
    message: dict[str, object] = {
        "v": VERSION,
        "key": key,
        "sha256": sha256,
        "size": len(body),
        "received_at": received_at.isoformat(),
        "source_ip": source_ip,
        "request_id": request_id,
    }
    if len(body) <= INLINE_BODY_LIMIT:
        message["body_b64"] = base64.b64encode(body).decode("ascii")
    return json.dumps(message, separators=(",", ":"))


def decode(message_body: str) -> QueuedPostback:
    try:
        message = json.loads(message_body)
        if not isinstance(message, dict) or message.get("v") != VERSION:
            raise EnvelopeError("not a version-1 postback envelope")
        encoded = message.get("body_b64")
        body = base64.b64decode(encoded, validate=True) if encoded is not None else None
        return QueuedPostback(
            key=str(message["key"]),
            sha256=str(message["sha256"]),
            size=int(message["size"]),
            received_at=str(message["received_at"]),
            source_ip=str(message.get("source_ip", "")),
            request_id=str(message.get("request_id", "")),
            body=body,
        )
    except EnvelopeError:
        raise
    except (ValueError, KeyError, TypeError) as error:
        raise EnvelopeError(f"malformed postback envelope: {error}") from error
