"""``load_stack``: template.yaml resolved for one stack into a :class:`~local.template.specs.LocalStack`.

The steps: parameter values (the template's Defaults, samconfig.toml, overrides) checked against their
declarations; SAM ``Globals`` merged into the resources they apply to; Conditions evaluated; then every
resource whose Condition holds, and every output, resolved by :mod:`local.template.intrinsics`.
"""

import copy
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from local.template import TemplateError
from local.template.intrinsics import NO_VALUE, Resolver, is_intrinsic, to_str
from local.template.load import load_template, read_samconfig
from local.template.names import generated_name, partition_of
from local.template.specs import LocalStack, Resource

# The queue URL in-process moto answers; the local stack passes the moto server's.
DEFAULT_QUEUE_URL_FORMAT = "https://sqs.{region}.{url_suffix}/{account_id}/{name}"
DEFAULT_STACK_NAME = "sam-app"
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_LOGICAL_ID = re.compile(r"[A-Za-z0-9]+")


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
    ``DEFAULT_STACK_NAME``. ``queue_url_format`` forms queue URLs (:mod:`local.template.intrinsics`).
    """
    template_path = Path(template_path)
    doc = load_template(template_path)
    sources: list[tuple[str, Mapping[str, str]]] = []
    sam_stack: str | None = None
    if samconfig_path is not None:
        sam_values, sam_stack = read_samconfig(Path(samconfig_path), config_env)
        sources.append((f"{samconfig_path} [{config_env}] parameter_overrides", sam_values))
    if overrides:
        sources.append(("overrides", {str(k): v for k, v in overrides.items()}))
    stack = stack_name or sam_stack or DEFAULT_STACK_NAME
    if not _STACK_NAME.fullmatch(stack):
        raise TemplateError(f"stack name {stack!r} is invalid: [A-Za-z][A-Za-z0-9-]*, at most 128 characters")
    declarations = doc.get("Parameters") or {}
    parameters = _resolve_parameters(declarations, sources)
    globals_section = doc.get("Globals") or {}
    partition, url_suffix = partition_of(region)
    resolver = Resolver(
        resources=_with_globals(doc["Resources"], globals_section),
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
    for name, decl in declarations.items():
        if str(decl["Type"]).startswith("AWS::SSM::Parameter::Value<"):
            parameters[name] = resolver.placeholder(
                f"SSM:{to_str(parameters[name])}",
                "SSM-typed parameters are not looked up locally",
                f"Parameters.{name}",
            )
    for name in resolver.conditions:
        resolver.condition(name, "Conditions")
    for lid, res in resolver.resources.items():
        cond = res.get("Condition")
        resolver.active[lid] = cond is None or resolver.condition(cond, f"Resources.{lid}.Condition")
    resources = {lid: _resource(resolver, lid, res) for lid, res in resolver.resources.items()}
    api_globals = resolver.resolve(globals_section.get("Api") or {}, "Globals.Api")
    return LocalStack(
        stack_name=stack,
        region=region,
        account_id=account_id,
        parameters=parameters,
        resources={lid: r for lid, r in resources.items() if r.condition_met},
        outputs=_outputs(resolver, doc.get("Outputs") or {}),
        unresolved=list(resolver.unresolved.values()),
        inactive_resources={lid: r for lid, r in resources.items() if not r.condition_met},
        partition=partition,
        template_dir=Path(os.path.abspath(template_path.parent)),
        api_globals=api_globals if isinstance(api_globals, dict) else {},
    )


def _resource(resolver: Resolver, lid: str, res: dict[str, Any]) -> Resource:
    """The resource resolved; one whose Condition is false keeps its raw properties and a generated name."""
    cond = res.get("Condition")
    metadata = res.get("Metadata") if isinstance(res.get("Metadata"), dict) else {}
    if not resolver.active[lid]:
        name = generated_name(res["Type"], resolver.stack_name, lid)
        return Resource(lid, res["Type"], name, res["Properties"], False, None, None, cond, metadata)
    props = resolver.resolve(res["Properties"], f"Resources.{lid}.Properties")
    return Resource(
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


def _outputs(resolver: Resolver, outputs: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, output in outputs.items():
        where = f"Outputs.{name}"
        if not isinstance(output, dict) or "Value" not in output:
            raise TemplateError(f"{where}: an output needs a 'Value'")
        if output.get("Condition") is not None and not resolver.condition(output["Condition"], where):
            continue
        value = resolver.resolve(output["Value"], f"{where}.Value")
        if value is not NO_VALUE:
            values[name] = value
    return values


# ---- parameters ----------------------------------------------------------------------------------


def _is_list_type(ptype: str) -> bool:
    return ptype == "CommaDelimitedList" or ptype.startswith("List<")


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
        text = to_str(raw)
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
    allowed = [to_str(v) for v in decl.get("AllowedValues") or []]
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


# ---- SAM Globals ---------------------------------------------------------------------------------

_GLOBALS_TARGETS = {
    "Function": "AWS::Serverless::Function",
    "Api": "AWS::Serverless::Api",
    "HttpApi": "AWS::Serverless::HttpApi",
    "SimpleTable": "AWS::Serverless::SimpleTable",
    "LayerVersion": "AWS::Serverless::LayerVersion",
    "StateMachine": "AWS::Serverless::StateMachine",
    "CapacityProvider": "AWS::Serverless::CapacityProvider",
}


def _merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's rule: maps merge key-wise, lists concatenate (globals first), anything else: local wins."""
    g_map = isinstance(global_value, dict) and not is_intrinsic(global_value)
    l_map = isinstance(local_value, dict) and not is_intrinsic(local_value)
    if g_map and l_map:
        merged = copy.deepcopy(global_value)
        for key, value in local_value.items():
            merged[key] = _merge_globals(merged[key], value) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return copy.deepcopy(global_value) + local_value
    return local_value


def _with_globals(
    resources: Mapping[Any, Any], globals_section: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The template's resources, checked, each with a copy of its properties and its Globals merged in."""
    for key in globals_section:
        if key not in _GLOBALS_TARGETS:
            raise TemplateError(f"Globals.{key}: not a SAM Globals section ({', '.join(_GLOBALS_TARGETS)})")
    merged: dict[str, dict[str, Any]] = {}
    for lid, res in resources.items():
        if not isinstance(lid, str) or not _LOGICAL_ID.fullmatch(lid):
            if isinstance(lid, str) and lid.startswith("Fn::ForEach::"):
                raise TemplateError(f"Resources.{lid}: Fn::ForEach is not supported locally")
            raise TemplateError(f"Resources.{lid}: a logical id must be alphanumeric")
        if not isinstance(res, dict) or not isinstance(res.get("Type"), str):
            raise TemplateError(f"Resources.{lid}: a resource must be a mapping with a string 'Type'")
        props = res.get("Properties") or {}
        if not isinstance(props, dict):
            raise TemplateError(f"Resources.{lid}.Properties must be a mapping")
        props = copy.deepcopy(props)
        for section, rtype in _GLOBALS_TARGETS.items():
            if res["Type"] == rtype and isinstance(globals_section.get(section), dict):
                props = _merge_globals(globals_section[section], props)
        merged[lid] = dict(res, Properties=props)
    return merged
