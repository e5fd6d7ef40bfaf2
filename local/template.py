"""Read a SAM / CloudFormation template into a fully resolved, local-only description of the stack.

``load_stack(template.yaml, samconfig.toml)`` returns a :class:`LocalStack`: every resource that the
template's Conditions keep, with SAM ``Globals`` merged in, a deterministic local physical name, and
its properties with all intrinsic functions resolved against the stack's parameters. Typed views
(:meth:`LocalStack.queues`, :meth:`~LocalStack.buckets`, :meth:`~LocalStack.tables`,
:meth:`~LocalStack.secrets`, :meth:`~LocalStack.functions`, :meth:`~LocalStack.rest_apis`) turn those
properties into what the local stack needs to create the resources on moto and to run the handlers,
so that the template stays the single source of truth.

Nothing here talks to AWS or moto: it is pure data transformation (stdlib + PyYAML).

Values the template cannot know locally (``!ImportValue``, attributes of SAM's implicit resources
such as ``ServerlessRestApi``, ``!GetAtt Api.RootResourceId`` ...) do not fail the load: they become
placeholder strings ``"<unresolved:...>"`` and are listed in :attr:`LocalStack.unresolved`, so only
code that actually uses them is affected. Template errors (bad YAML, unknown condition, invalid
parameter value, out-of-range ``Fn::Select`` ...) raise :class:`TemplateError` naming the place.

Queue URLs: ``!Ref Queue`` and ``!GetAtt Queue.QueueUrl`` are formed with ``queue_url_format``, a
``str.format`` pattern over ``{region}``, ``{account_id}``, ``{name}``, ``{partition}`` and
``{url_suffix}`` (or a callable ``name -> url``). The default,
``https://sqs.{region}.{url_suffix}/{account_id}/{name}``, is the URL that in-process moto returns
from CreateQueue; for a moto server pass e.g. ``"http://127.0.0.1:5000/{account_id}/{name}"``.

Secrets (a local difference): ``!Ref Secret`` gives the secret's *name*, where CloudFormation gives its
ARN. A real secret's ARN ends in a random 6-character suffix that only Secrets Manager (or moto) picks at
creation, so an ARN formed here would name no secret; GetSecretValue accepts the name as well as the ARN,
so a function given the name reads the same secret. ``!GetAtt Secret.Arn``-style ARNs stay suffix-less.
"""

import base64
import copy
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_QUEUE_URL_FORMAT",
    "DEFAULT_STACK_NAME",
    "UNRESOLVED_PREFIX",
    "ApiEvent",
    "BucketSpec",
    "FunctionSpec",
    "LayerSpec",
    "LocalStack",
    "OtherEvent",
    "QueueSpec",
    "Resource",
    "RestApiSpec",
    "SecretSpec",
    "SqsEvent",
    "TableSpec",
    "TemplateError",
    "UnresolvedRef",
    "contains_unresolved",
    "load_stack",
    "load_template",
    "parse_parameter_overrides",
]

DEFAULT_QUEUE_URL_FORMAT = "https://sqs.{region}.{url_suffix}/{account_id}/{name}"
DEFAULT_STACK_NAME = "sam-app"
UNRESOLVED_PREFIX = "<unresolved:"
IMPLICIT_REST_API_ID = "ServerlessRestApi"

# A stream ARN carries a creation timestamp that only the service knows; locally use a fixed label.
_STREAM_LABEL = "1970-01-01T00:00:00.000"


class TemplateError(ValueError):
    """The template, samconfig.toml or a parameter value is invalid (message names the place)."""


# --------------------------------------------------------------------------------------------------
# YAML loading
# --------------------------------------------------------------------------------------------------

_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "Sub",
            "GetAtt",
            "Join",
            "Select",
            "Split",
            "If",
            "Equals",
            "Not",
            "And",
            "Or",
            "FindInMap",
            "Base64",
            "GetAZs",
            "ImportValue",
            "Cidr",
            "Transform",
            "Length",
            "ToJsonString",
        )
    },
}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader with CloudFormation short-form tags, no timestamps and duplicate-key detection."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# CloudFormation keeps `2010-09-09` a string: drop the YAML 1.1 timestamp resolver.
_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if suffix not in _TAGS:
        raise yaml.constructor.ConstructorError(
            None, None, f"unknown CloudFormation tag !{suffix}", node.start_mark
        )
    key = _TAGS[suffix]
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if key == "Fn::GetAtt":
            lid, dot, attr = str(value).partition(".")
            if not dot or not lid or not attr:
                raise yaml.constructor.ConstructorError(
                    None, None, f"!GetAtt {value!r} must look like LogicalId.Attribute", node.start_mark
                )
            value = [lid, attr]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(template_path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template (YAML or JSON) with short-form tags in long form."""
    path = Path(template_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read template: {exc}") from exc
    try:
        doc = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass  # nosec B506
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        context = exc.context or ""
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            context += f" (from line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        detail = "; ".join(part for part in (context, exc.problem or "") if part)
        raise TemplateError(f"{where}: invalid YAML: {detail}") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise TemplateError(f"{path}: a template must be a mapping, got {type(doc).__name__}")
    resources = doc.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise TemplateError(f"{path}: the template needs a non-empty 'Resources' mapping")
    for section in ("Parameters", "Conditions", "Mappings", "Outputs", "Globals"):
        if section in doc and not isinstance(doc[section], dict):
            raise TemplateError(f"{path}: '{section}' must be a mapping")
    return doc


# --------------------------------------------------------------------------------------------------
# Public result types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnresolvedRef:
    """A reference that cannot be resolved locally; ``placeholder`` stands in for its value."""

    location: str  # e.g. "Resources.Fn.Properties.Environment.Variables.API_ID"
    expression: str  # e.g. "Fn::GetAtt:MyApi.RootResourceId"
    reason: str
    placeholder: str


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
    events: list[ApiEvent | SqsEvent | OtherEvent]
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RestApiSpec:
    logical_id: str
    stage_name: str
    binary_media_types: list[str]
    properties: dict[str, Any]
    implicit: bool = False


def contains_unresolved(value: Any) -> bool:
    """True if a resolved value (or anything nested in it) holds an unresolved placeholder."""
    if isinstance(value, str):
        return UNRESOLVED_PREFIX in value
    if isinstance(value, Mapping):
        return any(contains_unresolved(k) or contains_unresolved(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(contains_unresolved(v) for v in value)
    return False


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
        deps: dict[str, set[str]] = {}
        for res in self._of_type("AWS::SQS::Queue"):
            attrs = _queue_attributes(res)
            tags = {str(t["Key"]): _to_str(t["Value"]) for t in res.properties.get("Tags") or []}
            specs[res.logical_id] = QueueSpec(
                res.logical_id, res.physical_name, attrs, str(res.ref), res.arn or "", tags
            )
            dlq_arn = _redrive_target(res.properties.get("RedrivePolicy"))
            dlq = self.find_logical_id(dlq_arn, ["AWS::SQS::Queue"]) if dlq_arn else None
            deps[res.logical_id] = {dlq} if dlq and dlq != res.logical_id else set()
        ordered: dict[str, QueueSpec] = {}

        def visit(lid: str, trail: tuple[str, ...]) -> None:
            if lid in ordered:
                return
            if lid in trail:
                raise TemplateError(f"Resources.{lid}: RedrivePolicy cycle {' -> '.join((*trail, lid))}")
            for dep in sorted(deps[lid]):
                visit(dep, (*trail, lid))
            ordered[lid] = specs[lid]

        for lid in specs:
            visit(lid, ())
        return ordered

    def tables(self) -> dict[str, TableSpec]:
        out = {}
        for res in self._of_type("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            out[res.logical_id] = _table_spec(res)
        return out

    def secrets(self) -> dict[str, SecretSpec]:
        """``AWS::SecretsManager::Secret`` resources (``!Ref`` gives the name locally: module docstring)."""
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
                secret_string=_opt_str(props.get("SecretString")),
                generate=dict(generate) if generate is not None else None,
                description=_to_str(props.get("Description")),
            )
        return out

    def functions(self) -> dict[str, FunctionSpec]:
        """``AWS::Serverless::Function`` resources (plain ``AWS::Lambda::Function`` is not covered)."""
        return {r.logical_id: self._function_spec(r) for r in self._of_type("AWS::Serverless::Function")}

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
            out[IMPLICIT_REST_API_ID] = RestApiSpec(
                spec.logical_id, spec.stage_name, spec.binary_media_types, spec.properties, implicit=True
            )
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
        environment = {str(k): _to_str(v) for k, v in variables.items()}
        layers = []
        for arn in props.get("Layers") or []:
            lid = self.find_logical_id(_to_str(arn), ["AWS::Serverless::LayerVersion"])
            uri = self.resources[lid].properties.get("ContentUri") if lid else None
            if lid and isinstance(uri, str):
                layers.append(LayerSpec(lid, _local_path(self.template_dir, uri)))
        events: list[ApiEvent | SqsEvent | OtherEvent] = []
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
            handler=_opt_str(props.get("Handler")),
            runtime=_opt_str(props.get("Runtime")),
            architectures=[_to_str(a) for a in architectures],
            memory_size=_to_int(props.get("MemorySize", 128), f"{where}.MemorySize"),
            timeout=_to_int(props.get("Timeout", 3), f"{where}.Timeout"),
            environment=environment,
            layers=layers,
            events=events,
            properties=props,
        )

    def _event(self, name: str, event: Any, where: str) -> ApiEvent | SqsEvent | OtherEvent:
        if not isinstance(event, Mapping) or "Type" not in event:
            raise TemplateError(f"{where}: an event needs a 'Type'")
        etype = str(event["Type"])
        props = event.get("Properties") or {}
        if etype == "Api":
            api = props.get("RestApiId")
            api_id = IMPLICIT_REST_API_ID
            if api is not None:
                api_id = self.find_logical_id(_to_str(api)) or _to_str(api)
            return ApiEvent(
                name, _to_str(props.get("Path", "")), _to_str(props.get("Method", "")).upper(), api_id
            )
        if etype == "SQS":
            if "Queue" not in props:
                raise TemplateError(f"{where}.Properties: an SQS event needs 'Queue'")
            queue = _to_str(props["Queue"])
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
                batch_size=_to_int(props.get("BatchSize", 10), f"{where}.Properties.BatchSize"),
                maximum_batching_window_s=_to_int(
                    props.get("MaximumBatchingWindowInSeconds", 0),
                    f"{where}.Properties.MaximumBatchingWindowInSeconds",
                ),
                function_response_types=[_to_str(t) for t in props.get("FunctionResponseTypes") or []],
                maximum_concurrency=(
                    None
                    if concurrency is None
                    else _to_int(concurrency, f"{where}.Properties.ScalingConfig.MaximumConcurrency")
                ),
                enabled=_to_bool(props.get("Enabled", True), f"{where}.Properties.Enabled"),
                filter_criteria=props.get("FilterCriteria"),
            )
        return OtherEvent(name, etype, dict(props))


# --------------------------------------------------------------------------------------------------
# View helpers
# --------------------------------------------------------------------------------------------------


def _local_path(base: Path, uri: str) -> Path:
    return Path(os.path.normpath(base / uri))


def _opt_str(value: Any) -> str | None:
    return None if value is None else _to_str(value)


def _to_str(value: Any) -> str:
    """CloudFormation's string form of a resolved value (lists join with commas)."""
    if value is _NO_VALUE or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(_to_str(v) for v in value)
    return json.dumps(value, separators=(",", ":"))


def _to_int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise TemplateError(f"{where}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise TemplateError(f"{where}: expected an integer, got {value!r}")


def _to_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TemplateError(f"{where}: expected true or false, got {value!r}")


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
            attrs[key] = str(_to_int(props[key], f"{where}.{key}"))
    for key in _QUEUE_BOOL_ATTRS:
        if props.get(key) is not None:
            flag = _to_bool(props[key], f"{where}.{key}")
            if key == "FifoQueue" and not flag:
                continue  # SQS: omit for a standard queue
            attrs[key] = "true" if flag else "false"
    for key in _QUEUE_STR_ATTRS:
        if props.get(key) is not None:
            attrs[key] = _to_str(props[key])
    redrive = props.get("RedrivePolicy")
    if isinstance(redrive, Mapping):
        policy: dict[str, Any] = {}
        if "deadLetterTargetArn" in redrive:
            policy["deadLetterTargetArn"] = _to_str(redrive["deadLetterTargetArn"])
        if "maxReceiveCount" in redrive:
            policy["maxReceiveCount"] = _to_int(
                redrive["maxReceiveCount"], f"{where}.RedrivePolicy.maxReceiveCount"
            )
        attrs["RedrivePolicy"] = json.dumps(policy)
    elif redrive is not None:
        attrs["RedrivePolicy"] = _to_str(redrive)
    allow = props.get("RedriveAllowPolicy")
    if isinstance(allow, Mapping):
        attrs["RedriveAllowPolicy"] = json.dumps(dict(allow))
    elif allow is not None:
        attrs["RedriveAllowPolicy"] = _to_str(allow)
    return attrs


def _bucket_encryption(encryption: Any) -> dict[str, Any] | None:
    """CloudFormation's BucketEncryption in the shape PutBucketEncryption takes (its rule's default is named
    ApplyServerSideEncryptionByDefault there)."""
    if not isinstance(encryption, Mapping):
        return None
    rules = []
    for rule in encryption.get("ServerSideEncryptionConfiguration") or []:
        default = rule.get("ServerSideEncryptionByDefault") or {}
        applied: dict[str, Any] = {"SSEAlgorithm": _to_str(default.get("SSEAlgorithm"))}
        if default.get("KMSMasterKeyID"):
            applied["KMSMasterKeyID"] = _to_str(default["KMSMasterKeyID"])
        mapped: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": applied}
        if rule.get("BucketKeyEnabled") is not None:
            mapped["BucketKeyEnabled"] = _to_bool(rule["BucketKeyEnabled"], "BucketKeyEnabled")
        rules.append(mapped)
    return {"Rules": rules} if rules else None


def _redrive_target(redrive: Any) -> str | None:
    if isinstance(redrive, str):
        try:
            redrive = json.loads(redrive)
        except ValueError:
            return None
    if isinstance(redrive, Mapping) and redrive.get("deadLetterTargetArn") is not None:
        return _to_str(redrive["deadLetterTargetArn"])
    return None


_SIMPLE_TABLE_TYPES = {"String": "S", "Number": "N", "Binary": "B"}


def _throughput(value: Any, where: str) -> dict[str, int]:
    return {
        key: _to_int(value[key], f"{where}.{key}")
        for key in ("ReadCapacityUnits", "WriteCapacityUnits")
        if key in value
    }


def _table_spec(res: Resource) -> TableSpec:
    props = res.properties
    where = f"Resources.{res.logical_id}.Properties"
    kwargs: dict[str, Any] = {"TableName": res.physical_name}
    if res.type == "AWS::Serverless::SimpleTable":
        pk = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        ptype = _to_str(pk.get("Type", "String"))
        if ptype not in _SIMPLE_TABLE_TYPES:
            raise TemplateError(f"{where}.PrimaryKey.Type must be String, Number or Binary, got {ptype!r}")
        kwargs["KeySchema"] = [{"AttributeName": _to_str(pk["Name"]), "KeyType": "HASH"}]
        kwargs["AttributeDefinitions"] = [
            {"AttributeName": _to_str(pk["Name"]), "AttributeType": _SIMPLE_TABLE_TYPES[ptype]}
        ]
    else:
        for key in ("KeySchema", "AttributeDefinitions"):
            if key not in props:
                raise TemplateError(f"{where}: an AWS::DynamoDB::Table needs '{key}'")
            kwargs[key] = [dict(item) for item in props[key]]
    throughput = props.get("ProvisionedThroughput")
    billing = _to_str(props.get("BillingMode") or ("PROVISIONED" if throughput else "PAY_PER_REQUEST"))
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
            "StreamViewType": _to_str(stream["StreamViewType"]),
        }
    sse = props.get("SSESpecification")
    if sse and "SSEEnabled" in sse:
        mapped: dict[str, Any] = {
            "Enabled": _to_bool(sse["SSEEnabled"], f"{where}.SSESpecification.SSEEnabled")
        }
        if sse.get("SSEType"):
            mapped["SSEType"] = _to_str(sse["SSEType"])
        if sse.get("KMSMasterKeyId"):
            mapped["KMSMasterKeyId"] = _to_str(sse["KMSMasterKeyId"])
        kwargs["SSESpecification"] = mapped
    if props.get("TableClass"):
        kwargs["TableClass"] = _to_str(props["TableClass"])
    if props.get("DeletionProtectionEnabled") is not None:
        kwargs["DeletionProtectionEnabled"] = _to_bool(
            props["DeletionProtectionEnabled"], f"{where}.DeletionProtectionEnabled"
        )
    if props.get("Tags"):
        tags = props["Tags"]
        if isinstance(tags, Mapping):  # SimpleTable: a plain map
            tags = [{"Key": k, "Value": v} for k, v in tags.items()]
        kwargs["Tags"] = [{"Key": _to_str(t["Key"]), "Value": _to_str(t["Value"])} for t in tags]
    ttl = props.get("TimeToLiveSpecification") or {}
    ttl_attribute = None
    if ttl and _to_bool(ttl.get("Enabled", False), f"{where}.TimeToLiveSpecification.Enabled"):
        ttl_attribute = _to_str(ttl.get("AttributeName"))
    pitr_spec = props.get("PointInTimeRecoverySpecification") or {}
    pitr = _to_bool(
        pitr_spec.get("PointInTimeRecoveryEnabled", False),
        f"{where}.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled",
    )
    return TableSpec(res.logical_id, res.physical_name, kwargs, ttl_attribute, pitr)


def _rest_api_spec(logical_id: str, props: Mapping[str, Any], stage: Any) -> RestApiSpec:
    if stage is None:
        raise TemplateError(f"Resources.{logical_id}.Properties: an AWS::Serverless::Api needs 'StageName'")
    media = [_to_str(m).replace("~1", "/") for m in props.get("BinaryMediaTypes") or []]
    return RestApiSpec(logical_id, _to_str(stage), media, dict(props))


# --------------------------------------------------------------------------------------------------
# samconfig.toml and parameter_overrides
# --------------------------------------------------------------------------------------------------


def _tokenize(text: str) -> list[str]:
    """Split on whitespace outside quotes, dropping the quotes; a backslash escapes space, quotes, itself."""
    tokens: list[str] = []
    current: list[str] = []
    in_token = False
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in " \"'\\":
            current.append(text[i + 1])
            in_token = True
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = None
            else:
                current.append(ch)
        elif ch in "\"'":
            quote = ch
            in_token = True
        elif ch.isspace():
            if in_token:
                tokens.append("".join(current))
                current, in_token = [], False
        else:
            current.append(ch)
            in_token = True
        i += 1
    if quote:
        raise TemplateError(f"parameter_overrides: unterminated {quote} quote in {text!r}")
    if in_token:
        tokens.append("".join(current))
    return tokens


_LONG_FORM = re.compile(r"ParameterKey=([^,]+),ParameterValue=(.*)", re.DOTALL)


def parse_parameter_overrides(value: str | list[str] | tuple[str, ...]) -> dict[str, str]:
    """Parse SAM CLI ``parameter_overrides``: ``'A=1 B="x y"'`` or ``["A=1", 'B="x y"']``.

    Both ``Key=Value`` and ``ParameterKey=Key,ParameterValue=Value`` are accepted; single or double
    quotes group whitespace, a backslash escapes a following space, quote or backslash (any other
    backslash is kept, so Windows paths survive). Later keys win. A token that is not ``Key=Value``
    is an error (SAM CLI would silently drop it).
    """
    items = [value] if isinstance(value, str) else list(value)
    result: dict[str, str] = {}
    for item in items:
        if not isinstance(item, str):
            raise TemplateError(f"parameter_overrides: expected strings, got {item!r}")
        for token in _tokenize(item):
            long_form = _LONG_FORM.fullmatch(token)
            if long_form:
                key, val = long_form.group(1), long_form.group(2)
            else:
                key, eq, val = token.partition("=")
                if not eq or not key:
                    raise TemplateError(
                        f"parameter_overrides: {token!r} is not Key=Value (quote values that contain spaces)"
                    )
            result[key] = val
    return result


def _read_samconfig(path: Path, config_env: str) -> tuple[dict[str, str], str | None]:
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read samconfig: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: invalid TOML: {exc}") from exc
    env = data.get(config_env)
    if not isinstance(env, dict):
        envs = sorted(k for k, v in data.items() if isinstance(v, dict))
        raise TemplateError(f"{path}: no [{config_env}] environment (found: {', '.join(envs) or 'none'})")
    merged: dict[str, Any] = {}
    for command in ("global", "deploy"):  # deploy's values win over global's, as in SAM CLI
        section = env.get(command, {})
        params = section.get("parameters", {}) if isinstance(section, dict) else {}
        if isinstance(params, dict):
            merged.update(params)
    overrides = merged.get("parameter_overrides")
    try:
        parsed = parse_parameter_overrides(overrides) if overrides is not None else {}
    except TemplateError as exc:
        raise TemplateError(f"{path} [{config_env}]: {exc}") from None
    stack = merged.get("stack_name")
    return parsed, (str(stack) if stack is not None else None)


# --------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------


def _is_list_type(ptype: str) -> bool:
    return ptype == "CommaDelimitedList" or ptype.startswith("List<")


def _param_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_to_str(v) for v in value)
    return _to_str(value)


def _resolve_parameters(
    decls: Mapping[str, Any], sources: list[tuple[str, Mapping[str, str]]]
) -> dict[str, str | list[str]]:
    for source, values in sources:
        unknown = sorted(set(values) - set(decls))
        if unknown:
            declared = ", ".join(sorted(decls)) or "none"
            raise TemplateError(
                f"{source}: unknown parameter(s) {', '.join(unknown)} (the template declares: {declared})"
            )
    resolved: dict[str, str | list[str]] = {}
    for name, decl in decls.items():
        where = f"Parameters.{name}"
        if not isinstance(decl, Mapping) or "Type" not in decl:
            raise TemplateError(f"{where}: a parameter needs a 'Type'")
        origin, raw = "Default", decl.get("Default")
        for source, values in sources:
            if name in values:
                origin, raw = source, values[name]
        if raw is None:
            raise TemplateError(f"{where}: no value (no Default, not in samconfig or overrides)")
        ptype = str(decl["Type"])
        text = _param_text(raw)
        value: str | list[str] = [s.strip() for s in text.split(",")] if _is_list_type(ptype) else text
        _validate_parameter(name, decl, ptype, value, f"{where} (value from {origin})")
        resolved[name] = value
    return resolved


def _validate_parameter(
    name: str, decl: Mapping[str, Any], ptype: str, value: str | list[str], where: str
) -> None:
    hint = f" ({decl['ConstraintDescription']})" if decl.get("ConstraintDescription") else ""
    items = value if isinstance(value, list) else [value]
    numeric = ptype in ("Number", "List<Number>")
    allowed = [_to_str(v) for v in decl.get("AllowedValues") or []]
    pattern = decl.get("AllowedPattern")
    for item in items:
        if allowed and item not in allowed:
            raise TemplateError(f"{where}: {item!r} is not one of the AllowedValues {allowed}{hint}")
        if pattern is not None and not re.fullmatch(str(pattern), item):
            raise TemplateError(f"{where}: {item!r} does not match AllowedPattern {pattern!r}{hint}")
        if numeric:
            try:
                number = float(item)
            except ValueError:
                raise TemplateError(f"{where}: {item!r} is not a number{hint}") from None
            if "MinValue" in decl and number < float(decl["MinValue"]):
                raise TemplateError(f"{where}: {item} is below MinValue {decl['MinValue']}{hint}")
            if "MaxValue" in decl and number > float(decl["MaxValue"]):
                raise TemplateError(f"{where}: {item} is above MaxValue {decl['MaxValue']}{hint}")
    if isinstance(value, str):
        if "MinLength" in decl and len(value) < int(decl["MinLength"]):
            raise TemplateError(f"{where}: {value!r} is shorter than MinLength {decl['MinLength']}{hint}")
        if "MaxLength" in decl and len(value) > int(decl["MaxLength"]):
            raise TemplateError(f"{where}: {value!r} is longer than MaxLength {decl['MaxLength']}{hint}")


# --------------------------------------------------------------------------------------------------
# Globals
# --------------------------------------------------------------------------------------------------

_GLOBALS_TARGETS = {
    "Function": "AWS::Serverless::Function",
    "Api": "AWS::Serverless::Api",
    "HttpApi": "AWS::Serverless::HttpApi",
    "SimpleTable": "AWS::Serverless::SimpleTable",
    "LayerVersion": "AWS::Serverless::LayerVersion",
    "StateMachine": "AWS::Serverless::StateMachine",
    "CapacityProvider": "AWS::Serverless::CapacityProvider",
}


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return isinstance(key, str) and (key in ("Ref", "Condition") or key.startswith("Fn::"))


def _merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's rule: maps merge key-wise, lists concatenate (globals first), anything else: local wins."""
    g_map = isinstance(global_value, dict) and not _is_intrinsic(global_value)
    l_map = isinstance(local_value, dict) and not _is_intrinsic(local_value)
    if g_map and l_map:
        merged = copy.deepcopy(global_value)
        for key, value in local_value.items():
            merged[key] = _merge_globals(merged[key], value) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return copy.deepcopy(global_value) + local_value
    return local_value


# --------------------------------------------------------------------------------------------------
# Physical names
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NameRule:
    prop: str | None
    max_len: int
    invalid: str  # regex of characters to replace with "-"
    lower: bool = False


_DEFAULT_RULE = _NameRule(None, 255, r"[^A-Za-z0-9_.-]")
_NAME_RULES = {
    "AWS::S3::Bucket": _NameRule("BucketName", 63, r"[^a-z0-9-]", lower=True),
    "AWS::SQS::Queue": _NameRule("QueueName", 80, r"[^A-Za-z0-9_-]"),
    "AWS::DynamoDB::Table": _NameRule("TableName", 255, r"[^A-Za-z0-9_.-]"),
    "AWS::Serverless::SimpleTable": _NameRule("TableName", 255, r"[^A-Za-z0-9_.-]"),
    "AWS::Serverless::Function": _NameRule("FunctionName", 64, r"[^A-Za-z0-9_-]"),
    "AWS::Lambda::Function": _NameRule("FunctionName", 64, r"[^A-Za-z0-9_-]"),
    "AWS::Serverless::LayerVersion": _NameRule("LayerName", 140, r"[^A-Za-z0-9_-]"),
    "AWS::Lambda::LayerVersion": _NameRule("LayerName", 140, r"[^A-Za-z0-9_-]"),
    "AWS::SNS::Topic": _NameRule("TopicName", 256, r"[^A-Za-z0-9_-]"),
    "AWS::Serverless::Api": _NameRule("Name", 255, r"[^A-Za-z0-9_.-]"),
    "AWS::ApiGateway::RestApi": _NameRule("Name", 255, r"[^A-Za-z0-9_.-]"),
    "AWS::IAM::Role": _NameRule("RoleName", 64, r"[^A-Za-z0-9_+=,.@-]"),
    "AWS::Logs::LogGroup": _NameRule("LogGroupName", 512, r"[^A-Za-z0-9_./#-]"),
    "AWS::SSM::Parameter": _NameRule("Name", 1011, r"[^A-Za-z0-9_./-]"),
    "AWS::SecretsManager::Secret": _NameRule("Name", 512, r"[^A-Za-z0-9_/+=.@-]"),
    "AWS::Events::Rule": _NameRule("Name", 64, r"[^A-Za-z0-9_.-]"),
    "AWS::Events::EventBus": _NameRule("Name", 256, r"[^A-Za-z0-9_./-]"),
    "AWS::Serverless::StateMachine": _NameRule("Name", 80, r"[^A-Za-z0-9_-]"),
    "AWS::StepFunctions::StateMachine": _NameRule("StateMachineName", 80, r"[^A-Za-z0-9_-]"),
    "AWS::Kinesis::Stream": _NameRule("Name", 128, r"[^A-Za-z0-9_.-]"),
}


def _fit(name: str, max_len: int, suffix: str = "") -> str:
    """Trim to ``max_len`` (suffix included) deterministically: prefix + "-" + 8 hex of its hash."""
    if len(name) + len(suffix) <= max_len:
        return name + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    keep = max_len - len(suffix) - len(digest) - 1
    return name[:keep].rstrip("-_.") + "-" + digest + suffix


def _generated_name(rtype: str, stack: str, logical_id: str, suffix: str = "") -> str:
    rule = _NAME_RULES.get(rtype, _DEFAULT_RULE)
    name = f"{stack}-{logical_id}"
    if rule.lower:
        name = name.lower()
    name = re.sub(rule.invalid, "-", name)
    if rtype == "AWS::S3::Bucket":
        name = name.strip("-")
        name = name if len(name) >= 3 else (name + "-bucket").strip("-")
    return _fit(name, rule.max_len, suffix)


# --------------------------------------------------------------------------------------------------
# Intrinsic resolution
# --------------------------------------------------------------------------------------------------


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")
_LOGICAL_ID = re.compile(r"[A-Za-z0-9]+")

_REF_IS_ARN = {
    "AWS::SNS::Topic",
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    "AWS::Serverless::StateMachine",
    "AWS::StepFunctions::StateMachine",
    "AWS::IAM::ManagedPolicy",
}


class _Resolver:
    def __init__(
        self,
        *,
        resources: dict[str, dict[str, Any]],
        parameters: dict[str, str | list[str]],
        conditions: Mapping[str, Any],
        mappings: Mapping[str, Any],
        stack_name: str,
        region: str,
        account_id: str,
        partition: str,
        url_suffix: str,
        queue_url_format: str | Callable[[str], str],
    ) -> None:
        self.resources = resources
        self.parameters = parameters
        self.conditions = conditions
        self.mappings = mappings
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.partition = partition
        self.url_suffix = url_suffix
        self.queue_url_format = queue_url_format
        self.unresolved: dict[tuple[str, str], UnresolvedRef] = {}
        self._condition_values: dict[str, bool] = {}
        self._condition_stack: list[str] = []
        self._names: dict[str, str] = {}
        self._naming: list[str] = []
        self.active: dict[str, bool] = {}

    # ---- bookkeeping ----------------------------------------------------------------------------

    def placeholder(self, expression: str, reason: str, where: str) -> str:
        text = f"{UNRESOLVED_PREFIX}{expression}>"
        self.unresolved.setdefault((where, expression), UnresolvedRef(where, expression, reason, text))
        return text

    def pseudo(self) -> dict[str, Any]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:stack/"
                f"{self.stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": _NO_VALUE,
        }

    # ---- conditions -----------------------------------------------------------------------------

    def condition(self, name: Any, where: str) -> bool:
        if not isinstance(name, str):
            raise TemplateError(f"{where}: a condition name must be a string, got {name!r}")
        if name in self._condition_values:
            return self._condition_values[name]
        if name not in self.conditions:
            known = ", ".join(sorted(self.conditions)) or "none"
            raise TemplateError(f"{where}: unknown condition {name!r} (defined: {known})")
        if name in self._condition_stack:
            raise TemplateError(f"Conditions: cycle {' -> '.join([*self._condition_stack, name])}")
        self._condition_stack.append(name)
        try:
            value = self._eval_condition(self.conditions[name], f"Conditions.{name}")
        finally:
            self._condition_stack.pop()
        self._condition_values[name] = value
        return value

    def _eval_condition(self, expr: Any, where: str) -> bool:
        if isinstance(expr, bool):
            return expr
        if isinstance(expr, dict) and len(expr) == 1:
            key, arg = next(iter(expr.items()))
            if key == "Condition":
                return self.condition(arg, where)
            if key == "Fn::Equals":
                if not isinstance(arg, list) or len(arg) != 2:
                    raise TemplateError(f"{where}: Fn::Equals takes a list of two values")
                left, right = (self._comparable(self.resolve(v, where)) for v in arg)
                return left == right
            if key == "Fn::Not":
                if not isinstance(arg, list) or len(arg) != 1:
                    raise TemplateError(f"{where}: Fn::Not takes a list of one condition")
                return not self._eval_condition(arg[0], f"{where}.Fn::Not")
            if key in ("Fn::And", "Fn::Or"):
                if not isinstance(arg, list) or not 2 <= len(arg) <= 10:
                    raise TemplateError(f"{where}: {key} takes a list of 2 to 10 conditions")
                values = [self._eval_condition(c, f"{where}.{key}[{i}]") for i, c in enumerate(arg)]
                return all(values) if key == "Fn::And" else any(values)
        raise TemplateError(
            f"{where}: a condition must be Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition, got {expr!r}"
        )

    @staticmethod
    def _comparable(value: Any) -> Any:
        if isinstance(value, list):
            return tuple(_to_str(v) for v in value)
        return _to_str(value)

    # ---- resources ------------------------------------------------------------------------------

    def is_active(self, logical_id: str) -> bool:
        return self.active.get(logical_id, False)

    def physical_name(self, logical_id: str) -> str:
        if logical_id in self._names:
            return self._names[logical_id]
        if logical_id in self._naming:
            raise TemplateError(f"Resources: naming cycle {' -> '.join([*self._naming, logical_id])}")
        self._naming.append(logical_id)
        try:
            name = self._compute_name(logical_id)
        finally:
            self._naming.pop()
        self._names[logical_id] = name
        return name

    def _compute_name(self, logical_id: str) -> str:
        res = self.resources[logical_id]
        rtype = res["Type"]
        props = res.get("Properties") or {}
        where = f"Resources.{logical_id}.Properties"
        rule = _NAME_RULES.get(rtype, _DEFAULT_RULE)
        if rule.prop and props.get(rule.prop) is not None:
            given = self.resolve(props[rule.prop], f"{where}.{rule.prop}")
            if given is not _NO_VALUE and given is not None and not contains_unresolved(given):
                return _to_str(given)
        suffix = ""
        if rtype == "AWS::SQS::Queue" and self._flag(props, "FifoQueue", where):
            suffix = ".fifo"
        if rtype == "AWS::SNS::Topic" and self._flag(props, "FifoTopic", where):
            suffix = ".fifo"
        return _generated_name(rtype, self.stack_name, logical_id, suffix)

    def _flag(self, props: Mapping[str, Any], key: str, where: str) -> bool:
        if props.get(key) is None:
            return False
        value = self.resolve(props[key], f"{where}.{key}")
        return value is not _NO_VALUE and _to_bool(value, f"{where}.{key}")

    def _arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def queue_url(self, name: str) -> str:
        if callable(self.queue_url_format):
            return self.queue_url_format(name)
        return self.queue_url_format.format(
            region=self.region,
            account_id=self.account_id,
            name=name,
            partition=self.partition,
            url_suffix=self.url_suffix,
        )

    def ref_value(self, logical_id: str) -> Any:
        rtype = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        if rtype == "AWS::SQS::Queue":
            return self.queue_url(name)
        if rtype == "AWS::SecretsManager::Secret":
            return name  # a local difference: see the module docstring
        if rtype in _REF_IS_ARN:
            return self.arn(logical_id)
        return name

    def arn(self, logical_id: str, *, generic: bool = False) -> str | None:
        """The resource's ARN for known types; with ``generic``, an ARN-like string for any AWS type."""
        rtype = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        simple = {
            "AWS::S3::Bucket": lambda: self._arn("s3", name, region=False, account=False),
            "AWS::SQS::Queue": lambda: self._arn("sqs", name),
            "AWS::DynamoDB::Table": lambda: self._arn("dynamodb", f"table/{name}"),
            "AWS::Serverless::SimpleTable": lambda: self._arn("dynamodb", f"table/{name}"),
            "AWS::Serverless::Function": lambda: self._arn("lambda", f"function:{name}"),
            "AWS::Lambda::Function": lambda: self._arn("lambda", f"function:{name}"),
            "AWS::Serverless::LayerVersion": lambda: self._arn("lambda", f"layer:{name}:1"),
            "AWS::Lambda::LayerVersion": lambda: self._arn("lambda", f"layer:{name}:1"),
            "AWS::SNS::Topic": lambda: self._arn("sns", name),
            "AWS::IAM::Role": lambda: self._arn("iam", f"role/{name}", region=False),
            "AWS::IAM::ManagedPolicy": lambda: self._arn("iam", f"policy/{name}", region=False),
            "AWS::Logs::LogGroup": lambda: self._arn("logs", f"log-group:{name}:*"),
            "AWS::Serverless::StateMachine": lambda: self._arn("states", f"stateMachine:{name}"),
            "AWS::StepFunctions::StateMachine": lambda: self._arn("states", f"stateMachine:{name}"),
            "AWS::SecretsManager::Secret": lambda: self._arn("secretsmanager", f"secret:{name}"),
            "AWS::Events::Rule": lambda: self._arn("events", f"rule/{name}"),
            "AWS::Events::EventBus": lambda: self._arn("events", f"event-bus/{name}"),
            "AWS::Kinesis::Stream": lambda: self._arn("kinesis", f"stream/{name}"),
            "AWS::SSM::Parameter": lambda: self._arn("ssm", f"parameter/{name.lstrip('/')}"),
        }
        if rtype in simple:
            return simple[rtype]()
        parts = rtype.split("::")
        if generic and len(parts) == 3 and parts[0] == "AWS" and parts[1] != "Serverless":
            return self._arn(parts[1].lower(), f"{parts[2].lower()}/{name}")
        return None

    def get_att(self, logical_id: str, attribute: str, where: str) -> Any:
        expression = f"Fn::GetAtt:{logical_id}.{attribute}"
        if logical_id not in self.resources:
            return self.placeholder(expression, f"no resource {logical_id!r} in the template", where)
        if not self.is_active(logical_id):
            return self.placeholder(
                expression, f"resource {logical_id!r} is off (its Condition is false)", where
            )
        res = self.resources[logical_id]
        rtype = res["Type"]
        name = self.physical_name(logical_id)
        arn = self.arn(logical_id, generic=True)
        props = res.get("Properties") or {}
        value: Any = None
        if rtype == "AWS::S3::Bucket":
            value = {
                "Arn": arn,
                "DomainName": f"{name}.s3.{self.url_suffix}",
                "RegionalDomainName": f"{name}.s3.{self.region}.{self.url_suffix}",
                "DualStackDomainName": f"{name}.s3.dualstack.{self.region}.{self.url_suffix}",
                "WebsiteURL": f"http://{name}.s3-website-{self.region}.{self.url_suffix}",
            }.get(attribute)
        elif rtype == "AWS::SQS::Queue":
            value = {"Arn": arn, "QueueName": name, "QueueUrl": self.queue_url(name)}.get(attribute)
        elif rtype in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            if attribute == "Arn":
                value = arn
            elif attribute == "StreamArn" and props.get("StreamSpecification") is not None:
                stream = self.resolve(props["StreamSpecification"], f"Resources.{logical_id}.Properties")
                if stream is not _NO_VALUE:
                    value = f"{arn}/stream/{_STREAM_LABEL}"
        elif rtype == "AWS::SNS::Topic":
            value = {"TopicArn": arn, "TopicName": name}.get(attribute)
        elif rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            value = {"Arn": arn, "Name": name}.get(attribute)
        if value is None and arn is not None and attribute.endswith("Arn") and attribute != "StreamArn":
            value = arn
        if value is None:
            return self.placeholder(
                expression, f"attribute {attribute!r} of {rtype} is not known locally", where
            )
        return value

    def ref(self, name: Any, where: str) -> Any:
        if not isinstance(name, str):
            raise TemplateError(f"{where}: Ref takes a name, got {name!r}")
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            if not self.is_active(name):
                return self.placeholder(
                    f"Ref:{name}", f"resource {name!r} is off (its Condition is false)", where
                )
            return self.ref_value(name)
        reason = f"{name!r} is neither a parameter nor a resource of the template"
        if name.startswith("AWS::"):
            reason = f"pseudo parameter {name!r} is not known locally"
        return self.placeholder(f"Ref:{name}", reason, where)

    # ---- deep resolution ------------------------------------------------------------------------

    def resolve(self, node: Any, where: str) -> Any:
        if isinstance(node, dict):
            if _is_intrinsic(node) and "Condition" not in node:
                key, arg = next(iter(node.items()))
                return self._intrinsic(key, arg, where)
            out = {}
            for key, value in node.items():
                resolved = self.resolve(value, f"{where}.{key}")
                if resolved is not _NO_VALUE:
                    out[key] = resolved
            return out
        if isinstance(node, list):
            items = (self.resolve(v, f"{where}[{i}]") for i, v in enumerate(node))
            return [v for v in items if v is not _NO_VALUE]
        return node

    def _args(self, key: str, arg: Any, count: int | tuple[int, int], where: str) -> list[Any]:
        low, high = (count, count) if isinstance(count, int) else count
        if not isinstance(arg, list) or not low <= len(arg) <= high:
            size = str(low) if low == high else f"{low} to {high}"
            raise TemplateError(f"{where}: {key} takes a list of {size} arguments, got {arg!r}")
        return arg

    def _string(self, value: Any, key: str, where: str) -> str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise TemplateError(f"{where}: {key} expects a string here, got {value!r}")

    def _intrinsic(self, key: str, arg: Any, where: str) -> Any:
        here = f"{where}.{key}"
        if key == "Ref":
            return self.ref(self.resolve(arg, here) if isinstance(arg, dict) else arg, where)
        if key == "Fn::GetAtt":
            if isinstance(arg, str):
                lid, _, attr = arg.partition(".")
                arg = [lid, attr]
            lid, attr = self._args(key, arg, 2, where)
            attr = self.resolve(attr, here)
            return self.get_att(self._string(lid, key, where), self._string(attr, key, where), where)
        if key == "Fn::Sub":
            return self._sub(arg, where)
        if key == "Fn::Join":
            delimiter, values = self._args(key, arg, 2, where)
            values = self.resolve(values, here)
            if isinstance(values, str) and contains_unresolved(values):
                return values
            if not isinstance(values, list):
                raise TemplateError(f"{where}: Fn::Join needs a list to join, got {values!r}")
            return self._string(self.resolve(delimiter, here), key, where).join(_to_str(v) for v in values)
        if key == "Fn::Select":
            index, values = self._args(key, arg, 2, where)
            index = _to_int(self.resolve(index, here), here)
            values = self.resolve(values, here)
            if isinstance(values, str) and contains_unresolved(values):
                return values
            if not isinstance(values, list):
                raise TemplateError(f"{where}: Fn::Select needs a list, got {values!r}")
            if not 0 <= index < len(values):
                raise TemplateError(f"{where}: Fn::Select index {index} is out of range for {values!r}")
            return values[index]
        if key == "Fn::Split":
            delimiter, source = self._args(key, arg, 2, where)
            delimiter = self._string(self.resolve(delimiter, here), key, where)
            return self._string(self.resolve(source, here), key, where).split(delimiter)
        if key == "Fn::If":
            name, if_true, if_false = self._args(key, arg, 3, where)
            chosen = if_true if self.condition(name, where) else if_false
            return self.resolve(chosen, where)
        if key == "Fn::FindInMap":
            return self._find_in_map(arg, where)
        if key == "Fn::Base64":
            text = self._string(self.resolve(arg, here), key, where)
            return base64.b64encode(text.encode()).decode()
        if key == "Fn::GetAZs":
            region = self.resolve(arg, here)
            region = _to_str(region) or self.region
            return [f"{region}{zone}" for zone in "abc"]
        if key == "Fn::ImportValue":
            name = self.resolve(arg, here)
            return self.placeholder(
                f"Fn::ImportValue:{_to_str(name)}", "exports of other stacks are not local", where
            )
        if key == "Fn::Length":
            values = self.resolve(arg, here)
            if not isinstance(values, list):
                raise TemplateError(f"{where}: Fn::Length needs a list, got {values!r}")
            return len(values)
        if key == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg, here), separators=(",", ":"))
        if key in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._eval_condition({key: arg}, where)
        return self.placeholder(key, f"{key} is not evaluated locally", where)

    def _sub(self, arg: Any, where: str) -> str:
        here = f"{where}.Fn::Sub"
        variables: dict[str, Any] = {}
        if isinstance(arg, list):
            text, raw_vars = self._args("Fn::Sub", arg, 2, where)
            if not isinstance(raw_vars, dict):
                raise TemplateError(f"{where}: Fn::Sub's second argument must be a mapping")
            variables = {k: self.resolve(v, f"{here}.{k}") for k, v in raw_vars.items()}
            text = self.resolve(text, here)
        else:
            text = arg
        if not isinstance(text, str):
            raise TemplateError(f"{where}: Fn::Sub needs a string, got {text!r}")

        def substitute(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            name = inner.strip()
            if name in variables:
                return _to_str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                lid, _, attr = name.partition(".")
                return _to_str(self.get_att(lid, attr, where))
            return _to_str(self.ref(name, where))

        return _SUB_VAR.sub(substitute, text)

    def _find_in_map(self, arg: Any, where: str) -> Any:
        args = self._args("Fn::FindInMap", arg, (3, 4), where)
        keys = [self._string(self.resolve(a, where), "Fn::FindInMap", where) for a in args[:3]]
        mapping = self.mappings.get(keys[0])
        found = mapping.get(keys[1]) if isinstance(mapping, dict) else None
        if isinstance(found, dict) and keys[2] in found:
            return self.resolve(found[keys[2]], where)
        if len(args) == 4 and isinstance(args[3], dict) and "DefaultValue" in args[3]:
            return self.resolve(args[3]["DefaultValue"], where)
        raise TemplateError(f"{where}: Fn::FindInMap: no Mappings.{'.'.join(keys)}")


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------

_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")


def _partition(region: str) -> tuple[str, str]:
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


def load_stack(
    template_path: Path,
    samconfig_path: Path | None,
    *,
    config_env: str = "local",
    stack_name: str | None = None,
    region: str = "us-east-1",
    account_id: str = "123456789012",
    overrides: dict[str, str] | None = None,
    queue_url_format: str | Callable[[str], str] = DEFAULT_QUEUE_URL_FORMAT,
) -> LocalStack:
    """Load ``template_path`` and resolve it into a :class:`LocalStack`.

    Parameter values: the template's Defaults, then samconfig.toml's
    ``[<config_env>.global.parameters]`` / ``[<config_env>.deploy.parameters]`` ``parameter_overrides``
    (deploy wins), then ``overrides``. The stack name: ``stack_name``, else samconfig's, else
    ``DEFAULT_STACK_NAME``. ``queue_url_format`` forms queue URLs (see the module docstring).
    """
    template_path = Path(template_path)
    doc = load_template(template_path)
    sam_values: dict[str, str] = {}
    sam_stack: str | None = None
    if samconfig_path is not None:
        sam_values, sam_stack = _read_samconfig(Path(samconfig_path), config_env)
    stack = stack_name or sam_stack or DEFAULT_STACK_NAME
    if not _STACK_NAME.fullmatch(stack):
        raise TemplateError(f"stack name {stack!r} is invalid: [A-Za-z][A-Za-z0-9-]*, at most 128 characters")
    partition, url_suffix = _partition(region)
    sources: list[tuple[str, Mapping[str, str]]] = []
    if samconfig_path is not None:
        sources.append((f"{samconfig_path} [{config_env}] parameter_overrides", sam_values))
    if overrides:
        sources.append(("overrides", {str(k): v for k, v in overrides.items()}))
    parameters = _resolve_parameters(doc.get("Parameters") or {}, sources)

    globals_section = doc.get("Globals") or {}
    for key in globals_section:
        if key not in _GLOBALS_TARGETS:
            raise TemplateError(f"Globals.{key}: not a SAM Globals section ({', '.join(_GLOBALS_TARGETS)})")
    resources: dict[str, dict[str, Any]] = {}
    for lid, res in doc["Resources"].items():
        if not isinstance(lid, str) or not _LOGICAL_ID.fullmatch(lid):
            if isinstance(lid, str) and lid.startswith("Fn::ForEach::"):
                raise TemplateError(f"Resources.{lid}: Fn::ForEach is not supported locally")
            raise TemplateError(f"Resources.{lid}: a logical id must be alphanumeric")
        if not isinstance(res, dict) or not isinstance(res.get("Type"), str):
            raise TemplateError(f"Resources.{lid}: a resource must be a mapping with a string 'Type'")
        props = res.get("Properties") or {}
        if not isinstance(props, dict):
            raise TemplateError(f"Resources.{lid}.Properties must be a mapping")
        res = dict(res, Properties=copy.deepcopy(props))
        for section, rtype in _GLOBALS_TARGETS.items():
            if res["Type"] == rtype and isinstance(globals_section.get(section), dict):
                res["Properties"] = _merge_globals(globals_section[section], res["Properties"])
        resources[lid] = res

    resolver = _Resolver(
        resources=resources,
        parameters=parameters,
        conditions=doc.get("Conditions") or {},
        mappings=doc.get("Mappings") or {},
        stack_name=stack,
        region=region,
        account_id=account_id,
        partition=partition,
        url_suffix=url_suffix,
        queue_url_format=queue_url_format,
    )
    for name, decl in (doc.get("Parameters") or {}).items():
        if str(decl["Type"]).startswith("AWS::SSM::Parameter::Value<"):
            parameters[name] = resolver.placeholder(
                f"SSM:{_param_text(parameters[name])}",
                "SSM-typed parameters are not looked up locally",
                f"Parameters.{name}",
            )
    for name in doc.get("Conditions") or {}:
        resolver.condition(name, "Conditions")
    for lid, res in resources.items():
        cond = res.get("Condition")
        resolver.active[lid] = cond is None or resolver.condition(cond, f"Resources.{lid}.Condition")

    active: dict[str, Resource] = {}
    inactive: dict[str, Resource] = {}
    for lid, res in resources.items():
        cond = res.get("Condition")
        metadata = res.get("Metadata") if isinstance(res.get("Metadata"), dict) else {}
        if not resolver.active[lid]:
            name = _generated_name(res["Type"], stack, lid)
            inactive[lid] = Resource(
                lid, res["Type"], name, res["Properties"], False, None, None, cond, metadata
            )
            continue
        props = resolver.resolve(res["Properties"], f"Resources.{lid}.Properties")
        active[lid] = Resource(
            logical_id=lid,
            type=res["Type"],
            physical_name=resolver.physical_name(lid),
            properties=props if isinstance(props, dict) else {},
            condition_met=True,
            ref=resolver.ref_value(lid),
            arn=resolver.arn(lid),
            condition=cond,
            metadata=metadata,
        )

    outputs: dict[str, Any] = {}
    for name, output in (doc.get("Outputs") or {}).items():
        where = f"Outputs.{name}"
        if not isinstance(output, dict) or "Value" not in output:
            raise TemplateError(f"{where}: an output needs a 'Value'")
        if output.get("Condition") is not None and not resolver.condition(output["Condition"], where):
            continue
        value = resolver.resolve(output["Value"], f"{where}.Value")
        if value is not _NO_VALUE:
            outputs[name] = value

    api_globals = resolver.resolve(globals_section.get("Api") or {}, "Globals.Api")
    return LocalStack(
        stack_name=stack,
        region=region,
        account_id=account_id,
        parameters=parameters,
        resources=active,
        outputs=outputs,
        unresolved=list(resolver.unresolved.values()),
        inactive_resources=inactive,
        partition=partition,
        template_dir=Path(os.path.abspath(template_path.parent)),
        api_globals=api_globals if isinstance(api_globals, dict) else {},
    )
