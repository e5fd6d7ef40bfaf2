"""The files: template.yaml as a mapping (short-form tags in long form), samconfig.toml's parameters."""

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from local.template import TemplateError

# CloudFormation's short-form tags: !Ref and !Condition keep their name, the others are Fn::<tag>.
_FUNCTION_TAGS = (
    "Sub", "GetAtt", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or", "FindInMap",
    "Base64", "GetAZs", "ImportValue", "Cidr", "Transform", "Length", "ToJsonString",
)  # fmt: skip
_TAGS = {"Ref": "Ref", "Condition": "Condition"} | {tag: f"Fn::{tag}" for tag in _FUNCTION_TAGS}


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


def read_samconfig(path: Path, config_env: str) -> tuple[dict[str, str], str | None]:
    """samconfig.toml's ``[<config_env>]`` parameter_overrides and stack_name (deploy's over global's)."""
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
