"""Where the stack's resources are: the local stack's endpoints file, or a deployed stack's outputs.

Resolved once per command; everything else asks `Resources` for a client or a name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from mmsbridge.aws.state_table import StateTable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENDPOINTS_FILE = ROOT / ".local" / "endpoints.json"
# Any credentials do for moto; explicit ones keep a developer's real profile out of local calls.
LOCAL_CREDENTIALS = dict.fromkeys(("aws_access_key_id", "aws_secret_access_key"), "testing")
# Generous timeouts (an operator waits, a Lambda does not) and botocore's standard retries.
CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,
    retries={"mode": "standard", "max_attempts": 5},
    max_pool_connections=32,
)

# What each resource is called in the endpoints file (section, logical id) and in the stack's outputs.
RESOURCES = {
    "table": (("tables", "StateTable"), "StateTableName"),
    "bucket": (("buckets", "ArchiveBucket"), "ArchiveBucketName"),
    "queue": (("queues", "PostbackQueue"), "PostbackQueueUrl"),
    "dlq": (("queues", "PostbackDLQ"), "PostbackDLQUrl"),
    "send_queue": (("queues", "SendQueue"), "SendQueueUrl"),
    "send_dlq": (("queues", "SendDLQ"), "SendDLQUrl"),
}
COUNTRY_CODE_PARAMETER = "DefaultCountryCode"
OWN_NUMBERS_PARAMETER = "OwnNumbers"
# Endpoints-file keys read when the `queues` section does not name the resource.
TOP_LEVEL_KEYS = {"send_queue": "send_queue_url", "send_dlq": "send_dlq_url"}


class ConfigError(Exception):
    """The resources cannot be found or reached: exit code 2."""


@dataclass
class Resources:
    """The resources of one stack and clients for them, created on first use."""

    origin: str  # for messages: "endpoints file ..." or "stack ... in ..."
    names: dict[str, str]
    session: Any
    region: str | None
    client_options: dict[str, Any] = field(default_factory=dict)
    # The stack's DefaultCountryCode: numbers typed to the CLI are read as the sender reads them.
    default_country_code: str | None = None
    # The stack's OwnNumbers ("" when it has none: the consumer's own-number check is off); None when the
    # endpoints file lists no parameters, so nothing can be said.
    own_numbers: str | None = None
    # The local stack's events watch queue (a local-only rule on its bus); a deployed stack has none.
    events_watch_queue_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def name(self, resource: str) -> str:
        value = self.names.get(resource)
        if not value:
            source = RESOURCES[resource]
            in_file = ".".join(source[0])
            if resource in TOP_LEVEL_KEYS:
                in_file += f" or {TOP_LEVEL_KEYS[resource]}"
            raise ConfigError(
                f"{self.origin} does not name the {resource.replace('_', ' ')} "
                f"({in_file} in an endpoints file, output {source[1]} of a stack)"
            )
        return value

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.region, config=CLIENT_CONFIG, **self.client_options
            )
        return self._clients[service]

    @property
    def table(self) -> StateTable:
        return StateTable(self.client("dynamodb"), self.name("table"))

    @property
    def bucket(self) -> str:
        return self.name("bucket")

    @property
    def queue_url(self) -> str:
        return self.name("queue")

    @property
    def send_queue_url(self) -> str:
        return self.name("send_queue")

    @property
    def send_dlq_url(self) -> str:
        return self.name("send_dlq")


def resolve(
    *,
    endpoints_file: Path | None,
    stack: str | None,
    region: str | None,
    session: Any | None = None,
    default_endpoints_file: Path | None = None,
) -> Resources:
    """The stack named by --stack, else the endpoints file (given, or the local stack's default)."""
    if stack:
        return from_stack(stack, region=region, session=session or boto3.Session())
    if region:
        raise ConfigError("--region goes with --stack (an endpoints file names its own region)")
    if endpoints_file is None:
        default_endpoints_file = default_endpoints_file or DEFAULT_ENDPOINTS_FILE
        if not default_endpoints_file.exists():
            raise ConfigError(
                "no stack to talk to: start the local stack with `make run` (it writes "
                f"{_shown(default_endpoints_file)}), pass --endpoints-file PATH, "
                "or pass --stack NAME for a deployed stack"
            )
        endpoints_file = default_endpoints_file
    return from_endpoints_file(endpoints_file, session=session or boto3.Session())


def from_endpoints_file(path: Path, *, session: Any) -> Resources:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"endpoints file {path} does not exist (is `make run` running?)") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"endpoints file {path} is not readable JSON: {error}") from None
    if not isinstance(document, dict) or not document.get("aws_endpoint_url"):
        raise ConfigError(f"endpoints file {path} has no aws_endpoint_url")
    names = {}
    for resource, ((section, logical_id), _) in RESOURCES.items():
        value = (document.get(section) or {}).get(logical_id)
        if not (isinstance(value, str) and value) and resource in TOP_LEVEL_KEYS:
            value = document.get(TOP_LEVEL_KEYS[resource])
        if isinstance(value, str) and value:
            names[resource] = value
    return Resources(
        origin=f"endpoints file {path}",
        names=names,
        session=session,
        region=str(document.get("region") or "us-east-1"),
        client_options={"endpoint_url": document["aws_endpoint_url"], **LOCAL_CREDENTIALS},
        default_country_code=(document.get("parameters") or {}).get(COUNTRY_CODE_PARAMETER) or None,
        own_numbers=_own_numbers(document.get("parameters")),
        events_watch_queue_url=document.get("events_watch_queue_url") or None,
    )


def from_stack(name: str, *, region: str | None, session: Any) -> Resources:
    """The stack's outputs, read with the environment's credentials, region and endpoint."""
    try:
        cloudformation = session.client("cloudformation", region_name=region, config=CLIENT_CONFIG)
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except NoRegionError:
        raise ConfigError("no AWS region: pass --region or set AWS_REGION") from None
    except NoCredentialsError:
        raise ConfigError(
            "no AWS credentials in the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...)"
        ) from None
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message") or str(error)
        raise ConfigError(f"stack {name}: {message}") from None
    except BotoCoreError as error:
        raise ConfigError(f"stack {name}: {error}") from None
    if not stacks:
        raise ConfigError(f"stack {name} does not exist")
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs") or []}
    names = {resource: outputs[key] for resource, (_, key) in RESOURCES.items() if outputs.get(key)}
    resolved_region = region or cloudformation.meta.region_name
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters") or []}
    return Resources(
        origin=f"stack {name} in {resolved_region}",
        names=names,
        session=session,
        region=resolved_region,
        default_country_code=parameters.get(COUNTRY_CODE_PARAMETER) or None,
        own_numbers=_own_numbers(parameters),
    )


def _own_numbers(parameters: object) -> str | None:
    """A stack's OwnNumbers; "" for a stack deployed from a template without it (its consumer checks
    nothing), None without a parameter list to read it from."""
    if not isinstance(parameters, dict):
        return None
    value = parameters.get(OWN_NUMBERS_PARAMETER)
    return value if isinstance(value, str) else ""


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
