"""The simulator's HTTP face: the API URL (POST only) and the JSON control API under `/_sim/`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

from local.simulator.faults import Fault
from local.simulator.protocol import MAX_REQUEST_BYTES, ApiError, failure_response

if TYPE_CHECKING:
    from local.simulator.server import ProviderSimulator

__all__ = ["Answer", "SimulatorHandler"]

CONTROL_PREFIX: Final = "/_sim/"
MAX_CONTROL_BYTES: Final = 1024 * 1024
_INBOUND_KINDS: Final = ("sms_mo", "mms_mo", "subscribe", "unsubscribe", "raw")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    drop: bool = False  # close the connection without answering
    delay_s: float = 0.0  # answer this much later
    headers: tuple[tuple[str, str], ...] = ()  # besides Content-Type and Content-Length (Retry-After)


class ControlError(ValueError):
    """A control request the simulator cannot carry out: HTTP 400 with the message."""


class SimulatorHandler(BaseHTTPRequestHandler):
    simulator: ProviderSimulator
    protocol_version = "HTTP/1.1"
    server_version = "SkycoreSimulator/1.3"

    @classmethod
    def bound_to(cls, simulator: ProviderSimulator) -> type[SimulatorHandler]:
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
            status, result = control(self.simulator, self.command, route, self.path, payload)
        except (ControlError, ValueError, TypeError, RuntimeError) as error:
            status, result = 400, {"error": str(error)}
        self._send_json(status, result)


# ---------------------------------------------------------------------------------------- control API


def control(
    simulator: ProviderSimulator, method: str, route: str, raw_path: str, payload: Any
) -> tuple[int, object]:
    """One `/_sim/<route>` call: (HTTP status, JSON result)."""
    query = parse_qs(urlsplit(raw_path).query)
    match method, route.strip("/"):
        case "GET", "health":
            return 200, {"ok": True, "api_url": simulator.api_url}
        case "GET", "log":
            since = int(query.get("since", ["0"])[0])
            entries = simulator.log(since)
            return 200, {"entries": entries, "last_seq": entries[-1]["seq"] if entries else since}
        case "GET", "stats":
            return 200, simulator.stats()
        case "GET", "faults":
            return 200, {"faults": simulator.faults()}
        case "POST", "faults":
            return 200, {"faults": _set_faults(simulator, payload)}
        case "DELETE", "faults":
            simulator.clear_faults()
            return 200, {"faults": []}
        case "POST", "reset":
            simulator.reset()
            return 200, {"ok": True}
        case "GET", "config":
            return 200, _config(simulator)
        case "POST", "config":
            _configure(simulator, payload)
            return 200, _config(simulator)
        case "POST", "inbound":
            return 200, _inbound(simulator, payload)
        case "POST", "templates":
            _object(payload)
            simulator.add_template(
                str(payload.get("mms_id", "")),
                ready_in_s=float(payload.get("ready_in_s", 0.0)),
                outcome=payload.get("outcome", "N003"),
                slides=payload.get("slides"),
            )
            return 200, {
                "mms_id": str(payload["mms_id"]),
                "state": simulator.template_state(str(payload["mms_id"])),
            }
    return 404, {"error": f"no control route {method} /_sim/{route}"}


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ControlError("the body must be a JSON object")
    return payload


def _set_faults(simulator: ProviderSimulator, payload: Any) -> list[dict[str, Any]]:
    """Body: one fault object, or {"faults": [...], "clear": bool, "seed": int}."""
    payload = _object(payload)
    if "kind" in payload:
        payload = {"faults": [payload]}
    faults = [Fault.from_json(item) for item in payload.get("faults", [])]  # all valid before any is applied
    if payload.get("clear"):
        simulator.clear_faults()
    if "seed" in payload:
        simulator.reseed_faults(payload["seed"])
    for fault in faults:
        simulator.add_fault(fault)
    return simulator.faults()


def _config(simulator: ProviderSimulator) -> dict[str, Any]:
    return {
        "api_url": simulator.api_url,
        "postback_url": simulator.postback_url,
        "mo_postback_url": simulator.mo_postback_url,
        "throughput_per_s": simulator.throughput_per_s,
        "min_interval_s": simulator.min_interval_s,
        "request_quota": simulator.request_quota,
        "postbacks": asdict(simulator.postback_settings),
    }


def _configure(simulator: ProviderSimulator, payload: Any) -> None:
    payload = _object(payload)
    unknown = set(payload) - {
        "postback_url",
        "mo_postback_url",
        "throughput_per_s",
        "min_interval_s",
        "request_quota",
        "postbacks",
    }
    if unknown:
        raise ControlError(f"unknown config fields: {sorted(unknown)}")
    if "postbacks" in payload:
        simulator.configure_postbacks(**_object(payload["postbacks"]))
    if "throughput_per_s" in payload:
        simulator.throughput_per_s = payload["throughput_per_s"]
    if "min_interval_s" in payload:
        simulator.min_interval_s = payload["min_interval_s"]
    if "request_quota" in payload:
        simulator.request_quota = payload["request_quota"]
    if "postback_url" in payload:
        simulator.postback_url = payload["postback_url"]
    if "mo_postback_url" in payload:
        simulator.mo_postback_url = payload["mo_postback_url"]


def _inbound(simulator: ProviderSimulator, payload: Any) -> dict[str, Any]:
    """Body: {"kind": "sms_mo" | "mms_mo" | "subscribe" | "unsubscribe" | "raw", ...fields}."""
    payload = dict(_object(payload))
    kind = payload.pop("kind", None)
    if kind not in _INBOUND_KINDS:
        raise ControlError(f"kind must be one of {_INBOUND_KINDS}")
    if "from" in payload:
        payload["from_"] = payload.pop("from")
    if kind == "sms_mo":
        return simulator.inject_sms_mo(**payload)
    if kind == "mms_mo":
        return simulator.inject_mms_mo(**payload)
    if kind == "raw":
        return simulator.inject_postback(str(payload.get("body", "")).encode("utf-8"))
    return simulator.inject_subscription(**payload, subscribed=kind == "subscribe")
