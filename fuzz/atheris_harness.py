"""Coverage-guided fuzzing of one target with atheris (libFuzzer), seeded from the provider fixtures.

    python -m fuzz.atheris_harness TARGET [libFuzzer options] CORPUS_DIR

TARGET is one of HARNESSES. The mmsbridge and defusedxml modules are instrumented, so libFuzzer keeps
inputs that reach new code in them. A broken contract or an unexpected exception stops the run with the
input saved as a crash file (libFuzzer's -artifact_prefix).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports(include=["mmsbridge", "defusedxml"]):
    from fuzz import targets

STATUSES = (200, 200, 200, 200, 201, 204, 302, 400, 403, 404, 429, 500, 503, 99, 600)


def postback(data: bytes) -> None:
    targets.postback(data)


def send_request(data: bytes) -> None:
    """The queue body as the sender reads it, and its JSON value through both validators."""
    targets.send_request_json(data)
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError):
        return
    targets.send_request(payload)


def provider_response(data: bytes) -> None:
    """Byte 0 picks the HTTP status, byte 1 whether an API key is to be redacted; the rest is the body."""
    if len(data) < 2:
        return
    api_key = targets.API_KEY if data[1] & 1 else None
    targets.provider_response(data[2:], STATUSES[data[0] % len(STATUSES)], api_key)


HARNESSES: dict[str, Callable[[bytes], None]] = {
    "postback": postback,
    "send-request": send_request,
    "provider-response": provider_response,
}


def seeds(target: str) -> list[bytes]:
    if target == "postback":
        return targets.postback_seeds()
    if target == "send-request":
        return targets.send_request_seeds()
    # Status 200, key redaction on: the samples as the sender receives them.
    return [b"\x00\x01" + seed for seed in targets.response_seeds()]


def main() -> None:
    target = sys.argv[1]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], HARNESSES[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
