"""The local stack: moto for AWS, the template's resources created in it, the real handlers in-process,
the REST API's routes on loopback, the SQS and DynamoDB stream event source mappings, and the provider
simulator the sender talks to, all derived from template.yaml and samconfig.toml [local]; plus, local-only,
a rule on the stack's event bus to a queue to watch its events on."""

from __future__ import annotations

import errno
import json
import os
import secrets
import socket
import string
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local.gateway import Gateway, Route
from local.moto import LOCAL_CREDENTIALS, MotoServer
from local.runtime import LocalFunction, patched_environ
from local.simulator import ProviderSimulator
from local.sqs_mapping import DEFAULT_POLLER_LIMIT, SqsEventSourceMapping, mappings_from_stack
from local.stream_mapping import StreamEventSourceMapping, stream_mappings_from_stack
from local.template.resolve import load_stack
from local.template.specs import ApiEvent, FunctionSpec, LocalStack, SecretSpec, SqsEvent

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
DEFAULT_ENDPOINTS_FILE = ROOT / ".local" / "endpoints.json"
DEFAULT_SIMULATOR_PORT = 8089
# Containers for an API-triggered function: requests in flight at once on a laptop (each container imports
# the handler afresh on first use, as a Lambda cold start does).
API_CONTAINERS = 8
SIMULATOR_HOST = "127.0.0.1"  # the provider stand-in never leaves loopback, whatever the API's host
# Templates the simulated account already has, READY, so that sendSavedMMS works out of the box.
SIMULATOR_TEMPLATES = ("48213", "50000")
# The sender's contract: the environment variable naming the secret that holds the provider's API key.
API_KEY_SECRET_VARIABLE = "PROVIDER_API_KEY_SECRET"  # noqa: S105 - a variable's name, not a secret  # nosec B105
# The ingest's: the variable naming the secret that holds the postback URL's token, {"current": ...}.
POSTBACK_TOKEN_SECRET_VARIABLE = "POSTBACK_TOKEN_SECRET"  # noqa: S105 - a variable's name  # nosec B105
# The watch: a local-only rule on the stack's bus, sending every mmsbridge event (source "mmsbridge",
# docs/events.md) to a queue that `python -m ops events` reads. The bus is the template's output EventBusName,
# else its only AWS::Events::EventBus.
WATCH_SOURCE = "mmsbridge"
WATCH_SUFFIX = "-events-watch"
EVENT_BUS_OUTPUT = "EventBusName"


def aws_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """What a process needs to talk to the local AWS: moto's endpoint and dummy credentials."""
    return {
        **LOCAL_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def load_local_stack(
    endpoint_url: str,
    *,
    template: Path = TEMPLATE,
    samconfig: Path = SAMCONFIG,
    overrides: dict[str, str] | None = None,
    stack_name: str | None = None,
) -> LocalStack:
    """template.yaml with samconfig.toml's [local] parameters, queue URLs as the moto server forms them;
    `stack_name` (default samconfig's) names every resource, so several stacks can share one moto."""
    return load_stack(
        template,
        samconfig,
        config_env="local",
        stack_name=stack_name,
        overrides=overrides,
        queue_url_format=f"{endpoint_url}/{{account_id}}/{{name}}",
    )


def initial_secret_value(secret: SecretSpec) -> str:
    """The template's SecretString, else a random value as GenerateSecretString would make one.

    Locally the generated value is always letters and digits (which satisfies every Exclude* option) of
    PasswordLength (default 32); with SecretStringTemplate and GenerateStringKey it goes into that JSON.
    """
    if secret.secret_string is not None:
        return secret.secret_string
    options = secret.generate or {}
    length = int(options.get("PasswordLength", 32))
    alphabet = string.ascii_letters + string.digits
    value = "".join(secrets.choice(alphabet) for _ in range(length))
    if options.get("SecretStringTemplate") and options.get("GenerateStringKey"):
        document = json.loads(str(options["SecretStringTemplate"]))
        document[str(options["GenerateStringKey"])] = value
        return json.dumps(document)
    return value


def provision(stack: LocalStack, endpoint_url: str) -> None:
    """Create the template's buckets, queues (dead-letter queues first), tables and secrets in moto."""
    with patched_environ(aws_environment(endpoint_url, stack.region)):
        s3 = boto3.client("s3")
        sqs = boto3.client("sqs")
        dynamodb = boto3.client("dynamodb")
        secretsmanager = boto3.client("secretsmanager")
    for bucket in stack.buckets().values():
        s3.create_bucket(Bucket=bucket.name)
        if bucket.versioning:
            s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
        if bucket.encryption:
            s3.put_bucket_encryption(Bucket=bucket.name, ServerSideEncryptionConfiguration=bucket.encryption)
    queues = sorted(stack.queues().values(), key=lambda q: "RedrivePolicy" in q.attributes)
    for queue in queues:
        url = sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)["QueueUrl"]
        if url != queue.url:
            raise RuntimeError(
                f"queue {queue.logical_id}: moto answered {url}, the template resolved {queue.url}"
            )
    for table in stack.tables().values():
        dynamodb.create_table(**table.create_table_kwargs)
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
    for secret in stack.secrets().values():
        description = {"Description": secret.description} if secret.description else {}
        value = initial_secret_value(secret)
        secretsmanager.create_secret(Name=secret.name, SecretString=value, **description)
    provision_events(stack, endpoint_url)


def provision_events(stack: LocalStack, endpoint_url: str) -> None:
    """The template's event buses, and its rules with their targets (moto delivers to SQS targets inside
    PutEvents; it ignores InputPath)."""
    with patched_environ(aws_environment(endpoint_url, stack.region)):
        events = boto3.client("events")
    for bus in stack.event_buses().values():
        if bus.name != "default":
            events.create_event_bus(Name=bus.name)
    for rule in stack.event_rules().values():
        settings: dict[str, Any] = {
            "Name": rule.name,
            "EventBusName": rule.event_bus_name,
            "State": "ENABLED" if rule.enabled else "DISABLED",
        }
        if rule.event_pattern is not None:
            settings["EventPattern"] = json.dumps(rule.event_pattern)
        if rule.schedule_expression:
            settings["ScheduleExpression"] = rule.schedule_expression
        if rule.description:
            settings["Description"] = rule.description
        events.put_rule(**settings)
        targets = []
        for target in rule.targets:
            entry = {"Id": target.id, "Arn": target.arn}
            if target.input is not None:
                entry["Input"] = target.input
            if target.input_path is not None:
                entry["InputPath"] = target.input_path
            targets.append(entry)
        if targets:
            events.put_targets(Rule=rule.name, EventBusName=rule.event_bus_name, Targets=targets)


def event_bus_name(stack: LocalStack) -> str | None:
    """The bus the stack's events go to: its output EventBusName, else its only event bus."""
    named = stack.outputs.get(EVENT_BUS_OUTPUT)
    if isinstance(named, str) and named:
        return named
    buses = list(stack.event_buses().values())
    return buses[0].name if len(buses) == 1 else None


@dataclass(frozen=True)
class EventsWatch:
    """The local-only rule on the stack's bus and the queue it sends mmsbridge's events to."""

    bus_name: str
    rule_name: str
    queue_url: str

    def endpoints(self) -> dict[str, str]:
        return {
            "event_bus_name": self.bus_name,
            "events_watch_rule": self.rule_name,
            "events_watch_queue_url": self.queue_url,
        }


def add_events_watch(stack: LocalStack, endpoint_url: str) -> EventsWatch | None:
    """A queue, `<stack>-events-watch`, and a rule of the same name on the stack's bus sending it every event
    whose source is mmsbridge (the bus is created when the template names one it does not create). None when
    the template has no bus."""
    bus = event_bus_name(stack)
    if bus is None:
        return None
    with patched_environ(aws_environment(endpoint_url, stack.region)):
        events = boto3.client("events")
        sqs = boto3.client("sqs")
    if bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus)
    name = f"{stack.stack_name}{WATCH_SUFFIX}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name=name,
        EventBusName=bus,
        EventPattern=json.dumps({"source": [WATCH_SOURCE]}),
        Description="local only: every mmsbridge event, to the watch queue (python -m ops events)",
    )
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "watch-queue", "Arn": queue_arn}])
    return EventsWatch(bus, name, queue_url)


def read_secret(name: str, endpoint_url: str, region: str) -> str | None:
    """A secret's string from the local AWS, or None if there is no such secret."""
    with patched_environ(aws_environment(endpoint_url, region)):
        secretsmanager = boto3.client("secretsmanager")
    try:
        return secretsmanager.get_secret_value(SecretId=name)["SecretString"]
    except secretsmanager.exceptions.ResourceNotFoundException:
        return None


def containers_for(spec: FunctionSpec, limit: int = DEFAULT_POLLER_LIMIT) -> int:
    """As many containers as callers can invoke it at once: an API's concurrent requests (Lambda starts one
    per request in flight), or the busiest SQS mapping's pollers."""
    concurrency = [e.maximum_concurrency or 1 for e in spec.events if isinstance(e, SqsEvent) and e.enabled]
    if any(isinstance(e, ApiEvent) for e in spec.events):
        concurrency.append(API_CONTAINERS)
    return min(max(concurrency, default=1), limit)


def function_for(
    stack: LocalStack,
    logical_id: str,
    endpoint_url: str,
    *,
    environment: Mapping[str, str] | None = None,
    name_suffix: str = "",
    timeout_s: float | None = None,
    max_containers: int | None = None,
) -> LocalFunction:
    """The template's function as the local stack runs it: its handler, layers, memory, timeout and
    environment (plus `environment`), pointed at `endpoint_url`. The keyword arguments are for tests that
    need a variant: its own logical id suffix (its own containers), a shorter timeout, fewer containers."""
    spec = stack.functions()[logical_id]
    base = aws_environment(endpoint_url, stack.region)
    return LocalFunction(
        logical_id=spec.logical_id + name_suffix,
        name=spec.name,
        code_uri=spec.code_uri,
        handler=spec.handler,
        environment={**base, **spec.environment, **(environment or {})},
        layer_paths=[layer.content_uri for layer in spec.layers],
        memory_mb=int(spec.memory_size or 128),
        timeout_s=timeout_s if timeout_s is not None else float(spec.timeout or 3),
        region=stack.region,
        account_id=stack.account_id,
        max_containers=max_containers if max_containers is not None else containers_for(spec),
    )


def load_functions(stack: LocalStack, endpoint_url: str) -> dict[str, LocalFunction]:
    """Import every function's handler with the environment the template gives it."""
    return {logical_id: function_for(stack, logical_id, endpoint_url) for logical_id in stack.functions()}


def api_key_secret_name(stack: LocalStack) -> str | None:
    """The secret a function reads the provider's API key from (its PROVIDER_API_KEY_SECRET), if any."""
    for spec in stack.functions().values():
        if spec.environment.get(API_KEY_SECRET_VARIABLE):
            return spec.environment[API_KEY_SECRET_VARIABLE]
    return None


def postback_token_secret_name(stack: LocalStack) -> str | None:
    """The secret the ingest reads the postback URL's token from (its POSTBACK_TOKEN_SECRET), if any."""
    for spec in stack.functions().values():
        if spec.environment.get(POSTBACK_TOKEN_SECRET_VARIABLE):
            return spec.environment[POSTBACK_TOKEN_SECRET_VARIABLE]
    return None


def postback_token(stack: LocalStack, endpoint_url: str) -> str | None:
    """The postback URL's current token, from the secret in the local AWS (None without such a secret)."""
    name = postback_token_secret_name(stack)
    document = read_secret(name, endpoint_url, stack.region) if name else None
    if document is None:
        return None
    token = json.loads(document).get("current")
    return str(token) if token else None


def postback_path(stack: LocalStack, endpoint_url: str) -> str:
    """The path the provider posts to: /postback/<the current token>."""
    token = postback_token(stack, endpoint_url)
    if token is None:
        raise RuntimeError("the template gives the ingest no postback token secret")
    return f"/postback/{token}"


def start_simulator(stack: LocalStack, endpoint_url: str, *, port: int = 0) -> ProviderSimulator:
    """The provider simulator for this stack, started on loopback with no postback URL yet.

    Its API key is the value of the secret the sender reads (so the sender's calls authenticate), or a
    random one when the template has no such secret; its throughput is SendThroughputPerSecond.
    """
    secret = api_key_secret_name(stack)
    api_key = read_secret(secret, endpoint_url, stack.region) if secret else None
    throughput = stack.parameters.get("SendThroughputPerSecond")
    return ProviderSimulator(
        SIMULATOR_HOST,
        port,
        api_key=api_key or secrets.token_urlsafe(24),
        # The simulator counts whole calls per second; the template's parameter may be fractional.
        throughput_per_s=max(1, round(float(throughput))) if isinstance(throughput, str) else None,
        templates=SIMULATOR_TEMPLATES,  # given at construction, they survive the simulator's reset
    ).start()


def api_routes(stack: LocalStack, functions: dict[str, LocalFunction]) -> tuple[list[Route], tuple[str, ...]]:
    routes: list[Route] = []
    binary: set[str] = set()
    apis = stack.rest_apis()
    for spec in stack.functions().values():
        for api_event in (e for e in spec.events if isinstance(e, ApiEvent)):
            routes.append(Route.of(api_event.method, api_event.path, functions[spec.logical_id].invoke))
            api = apis.get(api_event.rest_api_id or "")
            if api:
                binary.update(api.binary_media_types)
    return routes, tuple(sorted(binary))


@dataclass
class RunningStack:
    """Everything `make run` started; `stop()` ends it in reverse order."""

    stack: LocalStack
    endpoint_url: str
    gateway: Gateway
    functions: dict[str, LocalFunction]
    moto: MotoServer | None = None
    mappings: list[SqsEventSourceMapping | StreamEventSourceMapping] = field(default_factory=list)
    endpoints_file: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    simulator: ProviderSimulator | None = None
    api_key_secret: str | None = None  # the secret holding the simulator's API key
    postback_path: str = "/postback"  # with the token: /postback/<token>
    events_watch: EventsWatch | None = None

    @property
    def postback_url(self) -> str:
        """The postback URL as the provider is given it, token included."""
        return f"{self.gateway.base_url}{self.postback_path}"

    def endpoints(self) -> dict[str, Any]:
        queues = self.stack.queues()
        send_queues = {
            key: queues[logical_id].url
            for key, logical_id in (("send_queue_url", "SendQueue"), ("send_dlq_url", "SendDLQ"))
            if logical_id in queues
        }
        simulator = {}
        if self.simulator:
            simulator["simulator"] = {
                "api_url": self.simulator.api_url,
                "control_url": f"{self.simulator.base_url}/_sim/",
                "api_key_secret": self.api_key_secret,
            }
        return {
            # The local token is in this file (written owner-only): the whole URL is what a local client
            # posts to, and the secret named next to it is where rotating it starts.
            "postback_url": self.postback_url,
            "postback_token_secret": postback_token_secret_name(self.stack),
            "api_url": self.gateway.base_url,
            "aws_endpoint_url": self.endpoint_url,
            "region": self.stack.region,
            "stack_name": self.stack.stack_name,
            "parameters": {name: str(value) for name, value in sorted(self.stack.parameters.items())},
            "pid": os.getpid(),
            "buckets": {b.logical_id: b.name for b in self.stack.buckets().values()},
            "queues": {q.logical_id: q.url for q in self.stack.queues().values()},
            "tables": {t.logical_id: t.name for t in self.stack.tables().values()},
            "functions": {f.logical_id: f.name for f in self.stack.functions().values()},
            "routes": [f"{r.method} {r.resource}" for r in self.gateway.routes],
            "event_source_mappings": [m.status() for m in self.mappings],
            **send_queues,
            **(self.events_watch.endpoints() if self.events_watch else {}),
            **simulator,
            **self.extras,
        }

    def write_endpoints(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        # Owner-only: the postback URL in it holds the local token.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(json.dumps(self.endpoints(), indent=2) + "\n")
        temporary.replace(path)  # readers never see a half-written file
        self.endpoints_file = path

    def stop(self) -> None:
        for mapping in self.mappings:
            mapping.signal_stop()  # all at once: each may be inside a 1 s long poll
        for mapping in self.mappings:
            mapping.stop()
        if self.simulator:
            self.simulator.stop()  # before the gateway: its postbacks go there
        self.gateway.stop()
        if self.moto:
            self.moto.stop()
        if self.endpoints_file and self.endpoints_file.exists():
            self.endpoints_file.unlink()


class PortInUse(RuntimeError):
    """A port the local stack was told to serve on is taken."""

    def __init__(self, what: str, host: str, port: int, option: str) -> None:
        super().__init__(
            f"{what} port {host}:{port} is already in use (another `make run`?): stop what holds it, or "
            f"choose another port with {option} N, or {option} 0 for a free one "
            f"(make run RUN_ARGS='{option} 0')"
        )


@contextmanager
def _serving_on(what: str, host: str, port: int, option: str) -> Iterator[None]:
    """Turns "address already in use" into a PortInUse that names the port and the option that sets it."""
    try:
        yield
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(what, host, port, option) from None
        raise


def _check_free(what: str, host: str, port: int, option: str) -> None:
    """For a server started in another process (moto), whose failure to bind shows only in its log."""
    if port == 0:
        return
    with _serving_on(what, host, port, option), socket.socket() as probe:
        probe.bind((host, port))


def start(
    *,
    host: str = "127.0.0.1",
    port: int = 3000,
    moto_port: int = 0,
    aws_endpoint_url: str | None = None,
    endpoints_file: Path | None = DEFAULT_ENDPOINTS_FILE,
    template: Path = TEMPLATE,
    samconfig: Path = SAMCONFIG,
    log_dir: Path | None = None,
    with_simulator: bool = True,
    simulator_port: int = DEFAULT_SIMULATOR_PORT,
) -> RunningStack:
    """Start moto (unless an endpoint is given), create the resources, start the provider simulator (port 0:
    a free one), load the handlers with ProviderApiUrl pointing at it, serve the API."""
    moto = None
    if aws_endpoint_url is None:
        log_path = (log_dir / "moto.log") if log_dir else None
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)
        _check_free("moto", host, moto_port, "--moto-port")
        moto = MotoServer(port=moto_port, host=host, log_path=log_path).start()
        aws_endpoint_url = moto.endpoint_url
    simulator: ProviderSimulator | None = None
    gateway: Gateway | None = None
    mappings: list[SqsEventSourceMapping | StreamEventSourceMapping] = []
    watch: EventsWatch | None = None
    try:
        stack = load_local_stack(aws_endpoint_url, template=template, samconfig=samconfig)
        # Clients made in this process (the local stack's own, and the handlers') all talk to moto.
        os.environ.update(aws_environment(aws_endpoint_url, stack.region))
        provision(stack, aws_endpoint_url)
        path = postback_path(stack, aws_endpoint_url)  # the token provisioning just generated
        if with_simulator:
            # The simulator needs the API key from a secret provisioning just made, and the functions need
            # the simulator's URL: load the template again with it (the resources are the same).
            with _serving_on("provider simulator", SIMULATOR_HOST, simulator_port, "--simulator-port"):
                simulator = start_simulator(stack, aws_endpoint_url, port=simulator_port)
            if "ProviderApiUrl" in stack.parameters:
                stack = load_local_stack(
                    aws_endpoint_url,
                    template=template,
                    samconfig=samconfig,
                    overrides={"ProviderApiUrl": simulator.api_url},
                )
        functions = load_functions(stack, aws_endpoint_url)
        routes, binary = api_routes(stack, functions)
        stage = next((api.stage_name for api in stack.rest_apis().values()), "local")
        with _serving_on("API", host, port, "--port"):
            gateway = Gateway(
                routes,
                host=host,
                port=port,
                stage=stage,
                binary_media_types=binary,
                account_id=stack.account_id,
            ).start()
        watch = add_events_watch(stack, aws_endpoint_url)
        mappings = [*mappings_from_stack(stack, functions), *stream_mappings_from_stack(stack, functions)]
        for mapping in mappings:
            mapping.start()
    except BaseException:
        for mapping in mappings:
            mapping.stop()
        if simulator:
            simulator.stop()
        if gateway:
            gateway.stop()
        if moto:
            moto.stop()
        raise
    running = RunningStack(
        stack=stack,
        endpoint_url=aws_endpoint_url,
        gateway=gateway,
        functions=functions,
        moto=moto,
        mappings=mappings,
        simulator=simulator,
        api_key_secret=api_key_secret_name(stack) if simulator else None,
        postback_path=path,
        events_watch=watch,
    )
    if simulator:
        simulator.postback_url = running.postback_url  # now that the gateway is up
    if endpoints_file:
        running.write_endpoints(endpoints_file)
    print(f"mmsbridge local stack '{stack.stack_name}' is up", file=sys.stderr)
    return running
