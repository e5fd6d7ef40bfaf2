"""The local gateway refuses a request body over API Gateway's 10 MiB payload limit as API Gateway does: 413
`{"message":"Request Too Long"}`, before the function is invoked, by its Content-Length alone or once its
chunks pass the limit. A body of exactly 10 MiB reaches the function whole. Over real HTTP on loopback."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from local.gateway import API_GATEWAY_PAYLOAD_LIMIT, Gateway, Route

MIB = 1024 * 1024
LIMIT = 10 * MIB  # API Gateway's, for REST APIs


def test_the_limit_is_api_gateways():
    assert API_GATEWAY_PAYLOAD_LIMIT == LIMIT


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, event: dict) -> dict:
        raw = event["body"] or ""
        self.bodies.append(base64.b64decode(raw) if event["isBase64Encoded"] else raw.encode())
        return {"statusCode": 200, "body": json.dumps({"received": len(self.bodies[-1])})}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(recorder) -> Iterator[Gateway]:
    started = Gateway([Route.of("POST", "/postback/{token}", recorder)], binary_media_types=("*/*",)).start()
    try:
        yield started
    finally:
        started.stop()


def exchange(gateway: Gateway, *parts: bytes, closes: bool = False) -> tuple[int, bytes]:
    """Send the raw request `parts` on one connection and read the answer's status and body; with `closes`,
    the gateway must then close the connection (what it has not read of the request is never read)."""
    host, port = gateway.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        for part in parts:
            sock.sendall(part)
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = response.status, response.read()
        if closes:
            assert sock.recv(1) == b""
        return answer


def head(**headers: str) -> bytes:
    lines = ["POST /postback/t0ken HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/xml"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


TOO_LONG = b'{"message":"Request Too Long"}'


def test_a_body_of_exactly_10_mib_reaches_the_function(gateway, recorder):
    body = bytes(range(256)) * (LIMIT // 256)
    status, answer = exchange(gateway, head(Content_Length=str(len(body))), body)
    assert (status, json.loads(answer)) == (200, {"received": LIMIT})
    assert recorder.bodies == [body]


def test_a_content_length_one_byte_over_is_refused_before_the_body_is_read(gateway, recorder):
    # Only the headers are sent: the answer comes without waiting for a single byte of the body.
    status, answer = exchange(gateway, head(Content_Length=str(LIMIT + 1)), closes=True)
    assert (status, answer) == (413, TOO_LONG)
    assert recorder.bodies == []


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_chunks_up_to_10_mib_reach_the_function(gateway, recorder):
    pieces = [bytes([n]) * MIB for n in range(10)]
    status, answer = exchange(
        gateway, head(Transfer_Encoding="chunked"), *(chunk(p) for p in pieces), b"0\r\n\r\n"
    )
    assert (status, json.loads(answer)) == (200, {"received": LIMIT})
    assert recorder.bodies == [b"".join(pieces)]


def test_a_chunk_that_passes_10_mib_is_refused(gateway, recorder):
    pieces = [bytes([n]) * MIB for n in range(10)]
    # Ten full chunks, then the size line of one more byte: refused before that byte is read.
    status, answer = exchange(
        gateway, head(Transfer_Encoding="chunked"), *(chunk(p) for p in pieces), b"1\r\n", closes=True
    )
    assert (status, answer) == (413, TOO_LONG)
    assert recorder.bodies == []


def test_one_chunk_declared_over_10_mib_is_refused_at_its_size_line(gateway, recorder):
    size = f"{LIMIT + 1:x}\r\n".encode()
    status, answer = exchange(gateway, head(Transfer_Encoding="chunked"), size, closes=True)
    assert (status, answer) == (413, TOO_LONG)
    assert recorder.bodies == []
