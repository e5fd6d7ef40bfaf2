"""The simulator's HTTP face: the API URL (POST only) and the JSON control API under `/_sim/`.

Plumbing only: what a request means is the simulator's business. The handler reaches it through `Served`,
the few calls it makes, so this module depends on nothing of the server's (the server binds itself here).
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from local.simulator.protocol import MAX_REQUEST_BYTES, ApiError, failure_response

__all__ = ["CONTROL_PREFIX", "Answer", "Served", "SimulatorHandler"]

CONTROL_PREFIX: Final = "/_sim/"
MAX_CONTROL_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    drop: bool = False  # close the connection without answering
    delay_s: float = 0.0  # answer this much later
    headers: tuple[tuple[str, str], ...] = ()  # besides Content-Type and Content-Length (Retry-After)


class Served(Protocol):
    """What the handler needs from the simulator it serves (`ProviderSimulator` is one)."""

    @property
    def verbose(self) -> bool: ...

    @property
    def stopping(self) -> threading.Event: ...

    def is_api_path(self, path: str) -> bool: ...

    def handle_api_call(self, body: bytes | None, content_type: str, client: str) -> Answer:
        """One POST to the API URL; `body` None: unreadable."""
        ...

    def record_refused(self, method: str, client: str) -> None:
        """A call to the API URL with another method (answered 405 here)."""
        ...

    def control(self, method: str, route: str, raw_path: str, payload: Any) -> tuple[int, object]:
        """One `/_sim/<route>` call: (HTTP status, JSON result); raises ValueError, TypeError or
        RuntimeError for a request it cannot carry out (HTTP 400)."""
        ...


class SimulatorHandler(BaseHTTPRequestHandler):
    simulator: Served
    protocol_version = "HTTP/1.1"
    server_version = "SkycoreSimulator/1.3"

    @classmethod
    def bound_to(cls, simulator: Served) -> type[SimulatorHandler]:
        return type("BoundSimulatorHandler", (cls,), {"simulator": simulator})

    # -- plumbing -----------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        if self.simulator.verbose:
            sys.stderr.write(f"simulator {self.client_address[0]} {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One line per request, with the path only: a GET's query string could hold the API key."""
        self.log_message('"%s %s" %s', self.command, urlsplit(self.path).path, code)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a delay fault outlasting its timeout)

    def _send_json(self, status: int, payload: object) -> None:
        self._send(status, json.dumps(payload, indent=1).encode(), "application/json")

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None (connection to be closed) if it has no length or is over `limit`."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > limit:
            self.close_connection = True
            return None
        return self.rfile.read(int(length))

    # -- routing ------------------------------------------------------------------------------------------
    def do_POST(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def _route(self) -> None:
        path = urlsplit(self.path).path
        if self.simulator.is_api_path(path):
            self._api()
        elif path.startswith(CONTROL_PREFIX):
            self._control(path[len(CONTROL_PREFIX) :])
        else:
            self._send_json(404, {"error": "not found"})

    def _api(self) -> None:
        client = self.client_address[0]
        if self.command != "POST":
            # The project never uses GET: it would put the key into URLs and logs (docs/provider-protocol.md
            # §1).
            self.close_connection = True
            self.simulator.record_refused(self.command, client)
            body = failure_response(ApiError("E100", "Only POST is supported."))
            self._send(405, body, "text/xml; charset=utf-8", {"Allow": "POST"})
            return
        body = self._read_body(MAX_REQUEST_BYTES)  # None: answered E100 and logged like any other call
        answer = self.simulator.handle_api_call(body, self.headers.get("Content-Type", ""), client)
        if answer.delay_s:
            self.simulator.stopping.wait(answer.delay_s)
        if answer.drop:
            self.close_connection = True
            return
        self._send(answer.status, answer.body, answer.content_type, dict(answer.headers))

    def _control(self, route: str) -> None:
        body = self._read_body(MAX_CONTROL_BYTES) if self.command in ("POST", "PUT") else b""
        try:
            payload = json.loads(body) if body else {}
            status, result = self.simulator.control(self.command, route, self.path, payload)
        except (ValueError, TypeError, RuntimeError) as error:
            status, result = 400, {"error": str(error)}
        self._send_json(status, result)
