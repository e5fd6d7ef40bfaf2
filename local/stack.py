"""The local stack: moto for AWS, the template's resources created in it, the real handlers in-process,
and the REST API's routes on loopback, all derived from template.yaml and samconfig.toml [local]."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local.gateway import Gateway, Route
from local.moto import LOCAL_CREDENTIALS, MotoServer
from local.runtime import LocalFunction, patched_environ
from local.sqs_mapping import SqsEventSourceMapping, mappings_from_stack
from local.template import ApiEvent, LocalStack, load_stack

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
DEFAULT_ENDPOINTS_FILE = ROOT / ".local" / "endpoints.json"


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
) -> LocalStack:
    """template.yaml with samconfig.toml's [local] parameters, queue URLs as the moto server forms them."""
    return load_stack(
        template,
        samconfig,
        config_env="local",
        overrides=overrides,
        queue_url_format=f"{endpoint_url}/{{account_id}}/{{name}}",
    )


def provision(stack: LocalStack, endpoint_url: str) -> None:
    """Create the template's buckets, queues (dead-letter queues first) and tables in moto."""
    with patched_environ(aws_environment(endpoint_url, stack.region)):
        s3 = boto3.client("s3")
        sqs = boto3.client("sqs")
        dynamodb = boto3.client("dynamodb")
    for bucket in stack.buckets().values():
        s3.create_bucket(Bucket=bucket.name)
        if bucket.versioning:
            s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
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


def load_functions(stack: LocalStack, endpoint_url: str) -> dict[str, LocalFunction]:
    """Import every function's handler with the environment the template gives it."""
    base = aws_environment(endpoint_url, stack.region)
    functions = {}
    for spec in stack.functions().values():
        functions[spec.logical_id] = LocalFunction(
            logical_id=spec.logical_id,
            name=spec.name,
            code_uri=spec.code_uri,
            handler=spec.handler,
            environment={**base, **spec.environment},
            layer_paths=[layer.content_uri for layer in spec.layers],
            memory_mb=int(spec.memory_size or 128),
            timeout_s=float(spec.timeout or 3),
            region=stack.region,
            account_id=stack.account_id,
        )
    return functions


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
    mappings: list[SqsEventSourceMapping] = field(default_factory=list)
    endpoints_file: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def postback_url(self) -> str:
        return f"{self.gateway.base_url}/postback"

    def endpoints(self) -> dict[str, Any]:
        return {
            "postback_url": self.postback_url,
            "api_url": self.gateway.base_url,
            "aws_endpoint_url": self.endpoint_url,
            "region": self.stack.region,
            "stack_name": self.stack.stack_name,
            "pid": os.getpid(),
            "buckets": {b.logical_id: b.name for b in self.stack.buckets().values()},
            "queues": {q.logical_id: q.url for q in self.stack.queues().values()},
            "tables": {t.logical_id: t.name for t in self.stack.tables().values()},
            "functions": {f.logical_id: f.name for f in self.stack.functions().values()},
            "routes": [f"{r.method} {r.resource}" for r in self.gateway.routes],
            "event_source_mappings": [m.status() for m in self.mappings],
            **self.extras,
        }

    def write_endpoints(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.endpoints(), indent=2) + "\n")
        temporary.replace(path)  # readers never see a half-written file
        self.endpoints_file = path

    def stop(self) -> None:
        for mapping in self.mappings:
            mapping.signal_stop()  # all at once: each may be inside a 1 s long poll
        for mapping in self.mappings:
            mapping.stop()
        self.gateway.stop()
        if self.moto:
            self.moto.stop()
        if self.endpoints_file and self.endpoints_file.exists():
            self.endpoints_file.unlink()


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
) -> RunningStack:
    """Start moto (unless an endpoint is given), create the resources, load the handlers, serve the API."""
    moto = None
    if aws_endpoint_url is None:
        log_path = (log_dir / "moto.log") if log_dir else None
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)
        moto = MotoServer(port=moto_port, host=host, log_path=log_path).start()
        aws_endpoint_url = moto.endpoint_url
    mappings: list[SqsEventSourceMapping] = []
    try:
        stack = load_local_stack(aws_endpoint_url, template=template, samconfig=samconfig)
        # Clients made in this process (the local stack's own, and the handlers') all talk to moto.
        os.environ.update(aws_environment(aws_endpoint_url, stack.region))
        provision(stack, aws_endpoint_url)
        functions = load_functions(stack, aws_endpoint_url)
        routes, binary = api_routes(stack, functions)
        stage = next((api.stage_name for api in stack.rest_apis().values()), "local")
        gateway = Gateway(
            routes, host=host, port=port, stage=stage, binary_media_types=binary, account_id=stack.account_id
        ).start()
        mappings = mappings_from_stack(stack, functions)
        for mapping in mappings:
            mapping.start()
    except BaseException:
        for mapping in mappings:
            mapping.stop()
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
    )
    if endpoints_file:
        running.write_endpoints(endpoints_file)
    print(f"mmsbridge local stack '{stack.stack_name}' is up", file=sys.stderr)
    return running
