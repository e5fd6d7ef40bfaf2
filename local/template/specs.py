"""The resolved stack and what the local stack needs from it, typed.

:class:`LocalStack` holds every resource whose Condition holds, with a deterministic local physical name
and its properties resolved. Its views (:meth:`~LocalStack.queues`, :meth:`~LocalStack.buckets`,
:meth:`~LocalStack.tables`, :meth:`~LocalStack.secrets`, :meth:`~LocalStack.functions`,
:meth:`~LocalStack.rest_apis`, :meth:`~LocalStack.event_buses`, :meth:`~LocalStack.event_rules`) turn those
properties into the calls that create the resources on moto and the settings the handlers run with, so the
template stays the single source of truth.
"""

import copy
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from local.template import TemplateError
from local.template.intrinsics import UnresolvedRef, opt_str, to_bool, to_int, to_str

IMPLICIT_REST_API_ID = "ServerlessRestApi"


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    physical_name: str
    properties: dict[str, Any]  # resolved (raw, after Globals, when condition_met is False)
    condition_met: bool = True
    ref: Any = None  # what `!Ref LogicalId` gives (queue URL, bucket name, layer ARN ...)
    arn: str | None = None
    condition: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # raw


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    attributes: dict[str, str]  # CreateQueue Attributes
    url: str = ""
    arn: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BucketSpec:
    logical_id: str
    name: str
    versioning: bool
    properties: dict[str, Any]
    # PutBucketEncryption's ServerSideEncryptionConfiguration from BucketEncryption; None: the service default
    encryption: dict[str, Any] | None = None


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    name: str
    create_table_kwargs: dict[str, Any]  # boto3 dynamodb.create_table(**kwargs)
    ttl_attribute: str | None = None
    pitr: bool = False
    stream_view_type: str | None = None  # StreamSpecification's, when the table has a stream


@dataclass(frozen=True)
class SecretSpec:
    logical_id: str
    name: str
    secret_string: str | None = None  # the template's SecretString, when it gives the value
    generate: dict[str, Any] | None = None  # GenerateSecretString's options, when the value is generated
    description: str = ""


@dataclass(frozen=True)
class LayerSpec:
    logical_id: str
    content_uri: Path


@dataclass(frozen=True)
class ApiEvent:
    name: str
    path: str
    method: str  # upper-case, "ANY" for any
    rest_api_id: str  # logical id of the AWS::Serverless::Api, or "ServerlessRestApi" (implicit)


@dataclass(frozen=True)
class SqsEvent:
    name: str
    queue_logical_id: str | None  # None when the queue is not in this template
    queue_name: str
    batch_size: int = 10
    maximum_batching_window_s: int = 0
    function_response_types: list[str] = field(default_factory=list)
    maximum_concurrency: int | None = None
    enabled: bool = True
    filter_criteria: dict[str, Any] | None = None


@dataclass(frozen=True)
class DynamoDBEvent:
    """A ``Type: DynamoDB`` event: a stream event source mapping's settings (Lambda's defaults when absent:
    -1 is "no limit" for the retry attempts and the record age)."""

    name: str
    stream_arn: str
    table_logical_id: str | None  # the table whose stream it is, when that table is in this template
    starting_position: str = "TRIM_HORIZON"  # or LATEST
    batch_size: int = 100
    maximum_batching_window_s: int = 0
    function_response_types: list[str] = field(default_factory=list)
    bisect_batch_on_function_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    parallelization_factor: int = 1
    on_failure_destination: str | None = None  # DestinationConfig.OnFailure.Destination (an ARN)
    on_failure_queue_logical_id: str | None = None  # that destination, when it is a queue of this template
    enabled: bool = True
    filter_criteria: dict[str, Any] | None = None


@dataclass(frozen=True)
class OtherEvent:
    """Any other SAM event source (Schedule, S3, SNS, HttpApi ...), kept so nothing is lost."""

    name: str
    type: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_uri: Path | None  # absolute; None for image or S3-hosted code
    handler: str | None
    runtime: str | None
    architectures: list[str]
    memory_size: int
    timeout: int
    environment: dict[str, str]
    layers: list[LayerSpec]
    events: list[ApiEvent | SqsEvent | DynamoDBEvent | OtherEvent]
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventBusSpec:
    logical_id: str
    name: str
    arn: str


@dataclass(frozen=True)
class RuleTarget:
    id: str
    arn: str
    input: str | None = None
    input_path: str | None = None


@dataclass(frozen=True)
class EventRuleSpec:
    logical_id: str
    name: str
    event_bus_name: str  # "default" when the rule names no bus
    event_pattern: dict[str, Any] | None
    schedule_expression: str | None
    enabled: bool
    targets: list[RuleTarget]
    description: str = ""


@dataclass(frozen=True)
class RestApiSpec:
    logical_id: str
    stage_name: str
    binary_media_types: list[str]
    properties: dict[str, Any]
    implicit: bool = False


@dataclass(frozen=True)
class LocalStack:
    stack_name: str
    region: str
    account_id: str
    parameters: dict[str, str | list[str]]
    resources: dict[str, Resource]  # only resources whose Condition holds
    outputs: dict[str, Any] = field(default_factory=dict)
    unresolved: list[UnresolvedRef] = field(default_factory=list)
    inactive_resources: dict[str, Resource] = field(default_factory=dict)  # Condition false
    partition: str = "aws"
    template_dir: Path = Path(".")
    api_globals: dict[str, Any] = field(default_factory=dict)  # resolved Globals.Api

    # ---- lookups ----------------------------------------------------------------------------

    def find_logical_id(self, value: str, types: Iterable[str] | None = None) -> str | None:
        """Logical id whose Ref value, ARN or physical name equals ``value`` (optionally by type)."""
        wanted = set(types) if types is not None else None
        for res in self.resources.values():
            if wanted is not None and res.type not in wanted:
                continue
            if value in (res.ref, res.arn, res.physical_name):
                return res.logical_id
        return None

    def _of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types]

    # ---- views ------------------------------------------------------------------------------

    def buckets(self) -> dict[str, BucketSpec]:
        out = {}
        for res in self._of_type("AWS::S3::Bucket"):
            status = (res.properties.get("VersioningConfiguration") or {}).get("Status")
            out[res.logical_id] = BucketSpec(
                res.logical_id,
                res.physical_name,
                status == "Enabled",
                res.properties,
                _bucket_encryption(res.properties.get("BucketEncryption")),
            )
        return out

    def queues(self) -> dict[str, QueueSpec]:
        """Queues by logical id, ordered so that a dead-letter queue precedes the queues using it."""
        specs = {}
        dead_letter_queue: dict[str, str | None] = {}
        for res in self._of_type("AWS::SQS::Queue"):
            attrs = _queue_attributes(res)
            tags = {str(t["Key"]): to_str(t["Value"]) for t in res.properties.get("Tags") or []}
            specs[res.logical_id] = QueueSpec(
                res.logical_id, res.physical_name, attrs, str(res.ref), res.arn or "", tags
            )
            dlq_arn = _redrive_target(res.properties.get("RedrivePolicy"))
            dlq = self.find_logical_id(dlq_arn, ["AWS::SQS::Queue"]) if dlq_arn else None
            dead_letter_queue[res.logical_id] = dlq if dlq != res.logical_id else None
        ordered: dict[str, QueueSpec] = {}

        def visit(lid: str, trail: tuple[str, ...]) -> None:
            if lid in ordered:
                return
            if lid in trail:
                raise TemplateError(f"Resources.{lid}: RedrivePolicy cycle {' -> '.join((*trail, lid))}")
            dlq = dead_letter_queue[lid]
            if dlq:
                visit(dlq, (*trail, lid))
            ordered[lid] = specs[lid]

        for lid in specs:
            visit(lid, ())
        return ordered

    def tables(self) -> dict[str, TableSpec]:
        return {
            r.logical_id: _table_spec(r)
            for r in self._of_type("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
        }

    def secrets(self) -> dict[str, SecretSpec]:
        """``AWS::SecretsManager::Secret`` resources (``!Ref`` gives the name: local.template.intrinsics)."""
        out = {}
        for res in self._of_type("AWS::SecretsManager::Secret"):
            props = res.properties
            where = f"Resources.{res.logical_id}.Properties"
            generate = props.get("GenerateSecretString")
            if generate is not None and not isinstance(generate, Mapping):
                raise TemplateError(f"{where}.GenerateSecretString must be a mapping")
            if generate is not None and props.get("SecretString") is not None:
                raise TemplateError(f"{where}: SecretString and GenerateSecretString exclude each other")
            out[res.logical_id] = SecretSpec(
                logical_id=res.logical_id,
                name=res.physical_name,
                secret_string=opt_str(props.get("SecretString")),
                generate=dict(generate) if generate is not None else None,
                description=to_str(props.get("Description")),
            )
        return out

    def functions(self) -> dict[str, FunctionSpec]:
        """``AWS::Serverless::Function`` resources (plain ``AWS::Lambda::Function`` is not covered)."""
        return {r.logical_id: self._function_spec(r) for r in self._of_type("AWS::Serverless::Function")}

    def event_buses(self) -> dict[str, EventBusSpec]:
        """``AWS::Events::EventBus`` resources (``!Ref`` gives the name, as in CloudFormation)."""
        return {
            r.logical_id: EventBusSpec(r.logical_id, r.physical_name, r.arn or "")
            for r in self._of_type("AWS::Events::EventBus")
        }

    def event_rules(self) -> dict[str, EventRuleSpec]:
        """``AWS::Events::Rule`` resources, on the bus they name (by name or ARN), else ``default``."""
        out = {}
        for res in self._of_type("AWS::Events::Rule"):
            props = res.properties
            where = f"Resources.{res.logical_id}.Properties"
            bus = to_str(props.get("EventBusName") or "default")
            if bus.startswith("arn:"):
                bus = bus.rsplit("/", 1)[-1]
            pattern = props.get("EventPattern")
            if isinstance(pattern, str):
                try:
                    pattern = json.loads(pattern)
                except ValueError as error:
                    raise TemplateError(f"{where}.EventPattern is not JSON: {error}") from None
            if pattern is not None and not isinstance(pattern, Mapping):
                raise TemplateError(f"{where}.EventPattern must be a mapping")
            targets = []
            for i, target in enumerate(props.get("Targets") or []):
                if not isinstance(target, Mapping) or "Id" not in target or "Arn" not in target:
                    raise TemplateError(f"{where}.Targets[{i}]: a target needs 'Id' and 'Arn'")
                targets.append(
                    RuleTarget(
                        to_str(target["Id"]),
                        to_str(target["Arn"]),
                        opt_str(target.get("Input")),
                        opt_str(target.get("InputPath")),
                    )
                )
            out[res.logical_id] = EventRuleSpec(
                logical_id=res.logical_id,
                name=res.physical_name,
                event_bus_name=bus,
                event_pattern=dict(pattern) if pattern is not None else None,
                schedule_expression=opt_str(props.get("ScheduleExpression")),
                enabled=to_str(props.get("State") or "ENABLED") == "ENABLED",
                targets=targets,
                description=to_str(props.get("Description")),
            )
        return out

    def rest_apis(self) -> dict[str, RestApiSpec]:
        """``AWS::Serverless::Api`` resources, plus SAM's implicit ``ServerlessRestApi`` when used."""
        out = {}
        for res in self._of_type("AWS::Serverless::Api"):
            out[res.logical_id] = _rest_api_spec(
                res.logical_id, res.properties, res.properties.get("StageName")
            )
        uses_implicit = any(
            isinstance(ev, ApiEvent) and ev.rest_api_id == IMPLICIT_REST_API_ID
            for fn in self.functions().values()
            for ev in fn.events
        )
        if uses_implicit and IMPLICIT_REST_API_ID not in out:
            spec = _rest_api_spec(IMPLICIT_REST_API_ID, self.api_globals, "Prod")
            out[IMPLICIT_REST_API_ID] = replace(spec, implicit=True)
        return out

    # ---- function details -------------------------------------------------------------------

    def _function_spec(self, res: Resource) -> FunctionSpec:
        props = res.properties
        where = f"Resources.{res.logical_id}.Properties"
        code_uri: Path | None = None
        if props.get("PackageType", "Zip") == "Zip" and "InlineCode" not in props:
            uri = props.get("CodeUri", ".")
            if isinstance(uri, str):
                code_uri = _local_path(self.template_dir, uri)
        variables = (props.get("Environment") or {}).get("Variables") or {}
        if not isinstance(variables, Mapping):
            raise TemplateError(f"{where}.Environment.Variables must be a mapping")
        environment = {str(k): to_str(v) for k, v in variables.items()}
        layers = []
        for arn in props.get("Layers") or []:
            lid = self.find_logical_id(to_str(arn), ["AWS::Serverless::LayerVersion"])
            uri = self.resources[lid].properties.get("ContentUri") if lid else None
            if lid and isinstance(uri, str):
                layers.append(LayerSpec(lid, _local_path(self.template_dir, uri)))
        events: list[ApiEvent | SqsEvent | DynamoDBEvent | OtherEvent] = []
        raw_events = props.get("Events") or {}
        if not isinstance(raw_events, Mapping):
            raise TemplateError(f"{where}.Events must be a mapping")
        for name, event in raw_events.items():
            events.append(self._event(str(name), event, f"{where}.Events.{name}"))
        architectures = props.get("Architectures") or ["x86_64"]
        return FunctionSpec(
            logical_id=res.logical_id,
            name=res.physical_name,
            code_uri=code_uri,
            handler=opt_str(props.get("Handler")),
            runtime=opt_str(props.get("Runtime")),
            architectures=[to_str(a) for a in architectures],
            memory_size=to_int(props.get("MemorySize", 128), f"{where}.MemorySize"),
            timeout=to_int(props.get("Timeout", 3), f"{where}.Timeout"),
            environment=environment,
            layers=layers,
            events=events,
            properties=props,
        )

    def _event(self, name: str, event: Any, where: str) -> ApiEvent | SqsEvent | DynamoDBEvent | OtherEvent:
        if not isinstance(event, Mapping) or "Type" not in event:
            raise TemplateError(f"{where}: an event needs a 'Type'")
        etype = str(event["Type"])
        props = event.get("Properties") or {}
        if etype == "Api":
            api = props.get("RestApiId")
            api_id = IMPLICIT_REST_API_ID
            if api is not None:
                api_id = self.find_logical_id(to_str(api)) or to_str(api)
            return ApiEvent(
                name, to_str(props.get("Path", "")), to_str(props.get("Method", "")).upper(), api_id
            )
        if etype == "SQS":
            if "Queue" not in props:
                raise TemplateError(f"{where}.Properties: an SQS event needs 'Queue'")
            queue = to_str(props["Queue"])
            qlid = self.find_logical_id(queue, ["AWS::SQS::Queue"])
            qname = (
                self.resources[qlid].physical_name if qlid else queue.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
            )
            scaling = props.get("ScalingConfig") or {}
            concurrency = scaling.get("MaximumConcurrency")
            return SqsEvent(
                name=name,
                queue_logical_id=qlid,
                queue_name=qname,
                batch_size=to_int(props.get("BatchSize", 10), f"{where}.Properties.BatchSize"),
                maximum_batching_window_s=to_int(
                    props.get("MaximumBatchingWindowInSeconds", 0),
                    f"{where}.Properties.MaximumBatchingWindowInSeconds",
                ),
                function_response_types=[to_str(t) for t in props.get("FunctionResponseTypes") or []],
                maximum_concurrency=(
                    None
                    if concurrency is None
                    else to_int(concurrency, f"{where}.Properties.ScalingConfig.MaximumConcurrency")
                ),
                enabled=to_bool(props.get("Enabled", True), f"{where}.Properties.Enabled"),
                filter_criteria=props.get("FilterCriteria"),
            )
        if etype == "DynamoDB":
            return self._dynamodb_event(name, props, f"{where}.Properties")
        return OtherEvent(name, etype, dict(props))

    def _dynamodb_event(self, name: str, props: Mapping[str, Any], where: str) -> DynamoDBEvent:
        if "Stream" not in props:
            raise TemplateError(f"{where}: a DynamoDB event needs 'Stream'")
        stream_arn = to_str(props["Stream"])
        table_arn = stream_arn.split("/stream/", 1)[0]
        table = self.find_logical_id(table_arn, ["AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"])
        position = to_str(props.get("StartingPosition", "TRIM_HORIZON"))
        if position not in ("TRIM_HORIZON", "LATEST"):
            raise TemplateError(f"{where}.StartingPosition: TRIM_HORIZON or LATEST, got {position!r}")
        on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        destination = opt_str(on_failure)
        queue = self.find_logical_id(destination, ["AWS::SQS::Queue"]) if destination else None

        def number(key: str, default: int) -> int:
            return to_int(props.get(key, default), f"{where}.{key}")

        return DynamoDBEvent(
            name=name,
            stream_arn=stream_arn,
            table_logical_id=table,
            starting_position=position,
            batch_size=number("BatchSize", 100),
            maximum_batching_window_s=number("MaximumBatchingWindowInSeconds", 0),
            function_response_types=[to_str(t) for t in props.get("FunctionResponseTypes") or []],
            bisect_batch_on_function_error=to_bool(
                props.get("BisectBatchOnFunctionError", False), f"{where}.BisectBatchOnFunctionError"
            ),
            maximum_retry_attempts=number("MaximumRetryAttempts", -1),
            maximum_record_age_s=number("MaximumRecordAgeInSeconds", -1),
            parallelization_factor=number("ParallelizationFactor", 1),
            on_failure_destination=destination,
            on_failure_queue_logical_id=queue,
            enabled=to_bool(props.get("Enabled", True), f"{where}.Enabled"),
            filter_criteria=props.get("FilterCriteria"),
        )


def _local_path(base: Path, uri: str) -> Path:
    return Path(os.path.normpath(base / uri))


_QUEUE_INT_ATTRS = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsDataKeyReusePeriodSeconds",
)
_QUEUE_BOOL_ATTRS = ("FifoQueue", "ContentBasedDeduplication", "SqsManagedSseEnabled")
_QUEUE_STR_ATTRS = ("KmsMasterKeyId", "DeduplicationScope", "FifoThroughputLimit")


def _queue_attributes(res: Resource) -> dict[str, str]:
    props = res.properties
    where = f"Resources.{res.logical_id}.Properties"
    attrs: dict[str, str] = {}
    for key in _QUEUE_INT_ATTRS:
        if props.get(key) is not None:
            attrs[key] = str(to_int(props[key], f"{where}.{key}"))
    for key in _QUEUE_BOOL_ATTRS:
        if props.get(key) is not None:
            flag = to_bool(props[key], f"{where}.{key}")
            if key == "FifoQueue" and not flag:
                continue  # SQS: omit for a standard queue
            attrs[key] = "true" if flag else "false"
    for key in _QUEUE_STR_ATTRS:
        if props.get(key) is not None:
            attrs[key] = to_str(props[key])
    redrive = props.get("RedrivePolicy")
    if isinstance(redrive, Mapping):
        policy: dict[str, Any] = {}
        if "deadLetterTargetArn" in redrive:
            policy["deadLetterTargetArn"] = to_str(redrive["deadLetterTargetArn"])
        if "maxReceiveCount" in redrive:
            policy["maxReceiveCount"] = to_int(
                redrive["maxReceiveCount"], f"{where}.RedrivePolicy.maxReceiveCount"
            )
        attrs["RedrivePolicy"] = json.dumps(policy)
    elif redrive is not None:
        attrs["RedrivePolicy"] = to_str(redrive)
    allow = props.get("RedriveAllowPolicy")
    if isinstance(allow, Mapping):
        attrs["RedriveAllowPolicy"] = json.dumps(dict(allow))
    elif allow is not None:
        attrs["RedriveAllowPolicy"] = to_str(allow)
    return attrs


def _bucket_encryption(encryption: Any) -> dict[str, Any] | None:
    """CloudFormation's BucketEncryption in the shape PutBucketEncryption takes (its rule's default is named
    ApplyServerSideEncryptionByDefault there)."""
    if not isinstance(encryption, Mapping):
        return None
    rules = []
    for rule in encryption.get("ServerSideEncryptionConfiguration") or []:
        default = rule.get("ServerSideEncryptionByDefault") or {}
        applied: dict[str, Any] = {"SSEAlgorithm": to_str(default.get("SSEAlgorithm"))}
        if default.get("KMSMasterKeyID"):
            applied["KMSMasterKeyID"] = to_str(default["KMSMasterKeyID"])
        mapped: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": applied}
        if rule.get("BucketKeyEnabled") is not None:
            mapped["BucketKeyEnabled"] = to_bool(rule["BucketKeyEnabled"], "BucketKeyEnabled")
        rules.append(mapped)
    return {"Rules": rules} if rules else None


def _redrive_target(redrive: Any) -> str | None:
    if isinstance(redrive, str):
        try:
            redrive = json.loads(redrive)
        except ValueError:
            return None
    if isinstance(redrive, Mapping) and redrive.get("deadLetterTargetArn") is not None:
        return to_str(redrive["deadLetterTargetArn"])
    return None


_SIMPLE_TABLE_TYPES = {"String": "S", "Number": "N", "Binary": "B"}


def _throughput(value: Any, where: str) -> dict[str, int]:
    return {
        key: to_int(value[key], f"{where}.{key}")
        for key in ("ReadCapacityUnits", "WriteCapacityUnits")
        if key in value
    }


def _table_spec(res: Resource) -> TableSpec:
    props = res.properties
    where = f"Resources.{res.logical_id}.Properties"
    kwargs: dict[str, Any] = {"TableName": res.physical_name}
    if res.type == "AWS::Serverless::SimpleTable":
        pk = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        ptype = to_str(pk.get("Type", "String"))
        if ptype not in _SIMPLE_TABLE_TYPES:
            raise TemplateError(f"{where}.PrimaryKey.Type must be String, Number or Binary, got {ptype!r}")
        kwargs["KeySchema"] = [{"AttributeName": to_str(pk["Name"]), "KeyType": "HASH"}]
        kwargs["AttributeDefinitions"] = [
            {"AttributeName": to_str(pk["Name"]), "AttributeType": _SIMPLE_TABLE_TYPES[ptype]}
        ]
    else:
        for key in ("KeySchema", "AttributeDefinitions"):
            if key not in props:
                raise TemplateError(f"{where}: an AWS::DynamoDB::Table needs '{key}'")
            kwargs[key] = [dict(item) for item in props[key]]
    throughput = props.get("ProvisionedThroughput")
    billing = to_str(props.get("BillingMode") or ("PROVISIONED" if throughput else "PAY_PER_REQUEST"))
    kwargs["BillingMode"] = billing
    if billing == "PROVISIONED":
        if not throughput:
            raise TemplateError(f"{where}: BillingMode PROVISIONED needs ProvisionedThroughput")
        kwargs["ProvisionedThroughput"] = _throughput(throughput, f"{where}.ProvisionedThroughput")

    def index(item: Mapping[str, Any], kind: str, i: int) -> dict[str, Any]:
        out = {k: copy.deepcopy(item[k]) for k in ("IndexName", "KeySchema", "Projection") if k in item}
        if (
            kind == "GlobalSecondaryIndexes"
            and billing == "PROVISIONED"
            and item.get("ProvisionedThroughput")
        ):
            out["ProvisionedThroughput"] = _throughput(
                item["ProvisionedThroughput"], f"{where}.{kind}[{i}].ProvisionedThroughput"
            )
        return out

    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(kind):
            kwargs[kind] = [index(item, kind, i) for i, item in enumerate(props[kind])]
    stream = props.get("StreamSpecification")
    if stream and stream.get("StreamViewType"):
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": to_str(stream["StreamViewType"]),
        }
    sse = props.get("SSESpecification")
    if sse and "SSEEnabled" in sse:
        mapped: dict[str, Any] = {
            "Enabled": to_bool(sse["SSEEnabled"], f"{where}.SSESpecification.SSEEnabled")
        }
        if sse.get("SSEType"):
            mapped["SSEType"] = to_str(sse["SSEType"])
        if sse.get("KMSMasterKeyId"):
            mapped["KMSMasterKeyId"] = to_str(sse["KMSMasterKeyId"])
        kwargs["SSESpecification"] = mapped
    if props.get("TableClass"):
        kwargs["TableClass"] = to_str(props["TableClass"])
    if props.get("DeletionProtectionEnabled") is not None:
        kwargs["DeletionProtectionEnabled"] = to_bool(
            props["DeletionProtectionEnabled"], f"{where}.DeletionProtectionEnabled"
        )
    if props.get("Tags"):
        tags = props["Tags"]
        if isinstance(tags, Mapping):  # SimpleTable: a plain map
            tags = [{"Key": k, "Value": v} for k, v in tags.items()]
        kwargs["Tags"] = [{"Key": to_str(t["Key"]), "Value": to_str(t["Value"])} for t in tags]
    ttl = props.get("TimeToLiveSpecification") or {}
    ttl_attribute = None
    if ttl and to_bool(ttl.get("Enabled", False), f"{where}.TimeToLiveSpecification.Enabled"):
        ttl_attribute = to_str(ttl.get("AttributeName"))
    pitr_spec = props.get("PointInTimeRecoverySpecification") or {}
    pitr = to_bool(
        pitr_spec.get("PointInTimeRecoveryEnabled", False),
        f"{where}.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled",
    )
    view = kwargs.get("StreamSpecification", {}).get("StreamViewType")
    return TableSpec(res.logical_id, res.physical_name, kwargs, ttl_attribute, pitr, view)


def _rest_api_spec(logical_id: str, props: Mapping[str, Any], stage: Any) -> RestApiSpec:
    if stage is None:
        raise TemplateError(f"Resources.{logical_id}.Properties: an AWS::Serverless::Api needs 'StageName'")
    media = [to_str(m).replace("~1", "/") for m in props.get("BinaryMediaTypes") or []]
    return RestApiSpec(logical_id, to_str(stage), media, dict(props))
