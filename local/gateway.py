"""The REST API's routes on loopback: each HTTP request becomes an API Gateway proxy event for the real
handler, and the handler's answer becomes the HTTP response. The caller's address in the event is the
socket's peer address, never a header."""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API_GATEWAY_PAYLOAD_LIMIT = 10 * 1024 * 1024  # REST APIs refuse larger requests with 413


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # "/postback/{token}"
    invoke: Callable[[dict[str, Any]], Any]
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, method: str, resource: str, invoke: Callable[[dict[str, Any]], Any]) -> Route:
        parts = []
        for segment in resource.strip("/").split("/"):
            match = re.fullmatch(r"\{(\w+)(\+?)\}", segment)
            if match:
                parts.append(f"(?P<{match[1]}>.+)" if match[2] else f"(?P<{match[1]}>[^/]+)")
            else:
                parts.append(re.escape(segment))
        return cls(method.upper(), resource, invoke, re.compile("^/" + "/".join(parts) + "$"))


class Gateway:
    def __init__(
        self,
        routes: list[Route],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "local",
        binary_media_types: tuple[str, ...] = (),
        account_id: str = "123456789012",
    ) -> None:
        self.routes = routes
        self.stage = stage
        self.binary_media_types = binary_media_types
        self.account_id = account_id
        gateway = self

        class Handler(_RequestHandler):
            owner = gateway

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Gateway:
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method in (method, "ANY"):
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def is_binary(self, content_type: str) -> bool:
        main = content_type.split(";")[0].strip().lower()
        for media in self.binary_media_types:
            if media == "*/*" or media == main or (media.endswith("/*") and main.startswith(media[:-1])):
                return True
        return False

    def event(
        self,
        *,
        method: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        route: Route,
        path_parameters: dict[str, str],
        host: str,
    ) -> dict[str, Any]:
        """The proxy event, in the shape `sam local generate-event apigateway aws-proxy` gives."""
        split = urlsplit(raw_path)
        query = parse_qs(split.query, keep_blank_values=True)
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in headers:
            single[name] = value
            multi.setdefault(name, []).append(value)
        binary = self.is_binary(single.get("Content-Type", single.get("content-type", "")))
        now = datetime.now(UTC)
        request_id = str(uuid.uuid4())
        return {
            "body": (base64.b64encode(body).decode() if binary else body.decode("utf-8", "replace")) or None,
            "resource": route.resource,
            "path": split.path,
            "httpMethod": method,
            "isBase64Encoded": binary,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "headers": single,
            "multiValueHeaders": multi,
            "requestContext": {
                "accountId": self.account_id,
                "resourceId": "local",
                "stage": self.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "path": f"/{self.stage}{split.path}",
                "resourcePath": route.resource,
                "httpMethod": method,
                "apiId": "local",
                "protocol": "HTTP/1.1",
                "domainName": host,
                "identity": {
                    "sourceIp": source_ip,
                    "userAgent": single.get("User-Agent", single.get("user-agent")),
                    "accountId": None,
                    "apiKey": None,
                    "caller": None,
                    "user": None,
                    "userArn": None,
                    "accessKey": None,
                    "cognitoIdentityId": None,
                    "cognitoIdentityPoolId": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                },
            },
        }


class _RequestHandler(BaseHTTPRequestHandler):
    owner: Gateway
    protocol_version = "HTTP/1.1"
    server_version = "mmsbridge-local-gateway"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"gateway {self.client_address[0]} {format % args}\n")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {"Content-Type": "application/json"}).items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None if it exceeds API Gateway's limit."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > API_GATEWAY_PAYLOAD_LIMIT:
                    self.close_connection = True
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > API_GATEWAY_PAYLOAD_LIMIT:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        started = time.perf_counter()
        try:
            body = self._read_body()
        except ValueError:
            self._send(400, b'{"message":"Bad request"}')
            return
        if body is None:
            self._send(413, b'{"message":"Request Too Long"}')
            return
        path = urlsplit(self.path).path
        matched = self.owner.match(self.command, path)
        if matched is None:
            # What API Gateway answers for a method or resource the API does not define.
            self._send(403, b'{"message":"Missing Authentication Token"}')
            return
        route, params = matched
        event = self.owner.event(
            method=self.command,
            raw_path=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            route=route,
            path_parameters=params,
            host=self.headers.get("Host", ""),
        )
        try:
            result = route.invoke(event)
            status = int(result.get("statusCode", 200))
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
            headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        except Exception:
            traceback.print_exc()
            status, data, headers = 502, json.dumps({"message": "Internal server error"}).encode(), None
        self._send(status, data, headers)
        self.log_message(
            '"%s %s" %d %.1f ms', self.command, route.resource, status, (time.perf_counter() - started) * 1000
        )

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged once, by _dispatch, with the route template (never the token-bearing path)."""
