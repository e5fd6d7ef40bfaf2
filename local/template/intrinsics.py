"""CloudFormation's intrinsic functions and Conditions, evaluated against one stack.

:class:`Resolver` turns a resource's properties (after SAM ``Globals``) into plain values: ``Ref``,
``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::If``, ``Fn::FindInMap``,
``Fn::Base64``, ``Fn::GetAZs``, ``Fn::Length``, ``Fn::ToJsonString`` and the condition functions;
``AWS::NoValue`` drops the key or item that holds it.

Values the template cannot know locally (``!ImportValue``, attributes of SAM's implicit resources such
as ``ServerlessRestApi``, ``!GetAtt Api.RootResourceId`` ...) do not fail: they become placeholder
strings ``"<unresolved:...>"``, each recorded as an :class:`UnresolvedRef`, so only code that uses them
is affected. Template errors (unknown condition, out-of-range ``Fn::Select`` ...) raise
:class:`~local.template.TemplateError` naming the place.

Queue URLs: ``!Ref Queue`` and ``!GetAtt Queue.QueueUrl`` are formed with ``queue_url_format``, a
``str.format`` pattern over ``{region}``, ``{account_id}``, ``{name}``, ``{partition}`` and
``{url_suffix}`` (or a callable ``name -> url``): the URL the moto server answers from CreateQueue.

Secrets (a local difference): ``!Ref Secret`` gives the secret's *name*, where CloudFormation gives its
ARN. A real secret's ARN ends in a random 6-character suffix that only Secrets Manager (or moto) picks at
creation, so an ARN formed here would name no secret; GetSecretValue accepts the name as well as the ARN,
so a function given the name reads the same secret. ``!GetAtt Secret.Arn``-style ARNs stay suffix-less.
"""

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.template import TemplateError
from local.template.names import DEFAULT_RULE, NAME_RULES, arn_for, generated_name

UNRESOLVED_PREFIX = "<unresolved:"

# A stream ARN carries a creation timestamp that only the service knows; locally use a fixed label.
_STREAM_LABEL = "1970-01-01T00:00:00.000"
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")

# Types whose `!Ref` is their ARN (for the others it is the physical name, a queue's is its URL).
_REF_IS_ARN = {
    "AWS::SNS::Topic",
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    "AWS::Serverless::StateMachine",
    "AWS::StepFunctions::StateMachine",
    "AWS::IAM::ManagedPolicy",
}


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class UnresolvedRef:
    """A reference that cannot be resolved locally; ``placeholder`` stands in for its value."""

    location: str  # e.g. "Resources.Fn.Properties.Environment.Variables.API_ID"
    expression: str  # e.g. "Fn::GetAtt:MyApi.RootResourceId"
    reason: str
    placeholder: str


def contains_unresolved(value: Any) -> bool:
    """True if a resolved value (or anything nested in it) holds an unresolved placeholder."""
    if isinstance(value, str):
        return UNRESOLVED_PREFIX in value
    if isinstance(value, Mapping):
        return any(contains_unresolved(k) or contains_unresolved(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(contains_unresolved(v) for v in value)
    return False


def opt_str(value: Any) -> str | None:
    return None if value is None else to_str(value)


def to_str(value: Any) -> str:
    """CloudFormation's string form of a resolved value (lists join with commas)."""
    if value is NO_VALUE or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(to_str(v) for v in value)
    return json.dumps(value, separators=(",", ":"))


def to_int(value: Any, where: str) -> int:
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


def to_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TemplateError(f"{where}: expected true or false, got {value!r}")


def is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return isinstance(key, str) and (key in ("Ref", "Condition") or key.startswith("Fn::"))


@dataclass
class Resolver:
    """Intrinsic functions and Conditions evaluated for one stack (its parameters, region and names)."""

    resources: dict[str, dict[str, Any]]  # by logical id, properties after SAM Globals, unresolved
    parameters: dict[str, str | list[str]]
    conditions: Mapping[str, Any]
    mappings: Mapping[str, Any]
    stack_name: str
    region: str
    account_id: str
    partition: str
    url_suffix: str
    queue_url_format: str | Callable[[str], str]
    active: dict[str, bool] = field(default_factory=dict, init=False)  # logical id -> its Condition holds
    unresolved: dict[tuple[str, str], UnresolvedRef] = field(default_factory=dict, init=False)
    _condition_values: dict[str, bool] = field(default_factory=dict, init=False)
    _condition_stack: list[str] = field(default_factory=list, init=False)
    _names: dict[str, str] = field(default_factory=dict, init=False)
    _naming: list[str] = field(default_factory=list, init=False)

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
            "AWS::NoValue": NO_VALUE,
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
            return tuple(to_str(v) for v in value)
        return to_str(value)

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
        rule = NAME_RULES.get(rtype, DEFAULT_RULE)
        if rule.prop and props.get(rule.prop) is not None:
            given = self.resolve(props[rule.prop], f"{where}.{rule.prop}")
            if given is not NO_VALUE and given is not None and not contains_unresolved(given):
                return to_str(given)
        suffix = ""
        if rtype == "AWS::SQS::Queue" and self._flag(props, "FifoQueue", where):
            suffix = ".fifo"
        if rtype == "AWS::SNS::Topic" and self._flag(props, "FifoTopic", where):
            suffix = ".fifo"
        return generated_name(rtype, self.stack_name, logical_id, suffix)

    def _flag(self, props: Mapping[str, Any], key: str, where: str) -> bool:
        if props.get(key) is None:
            return False
        value = self.resolve(props[key], f"{where}.{key}")
        return value is not NO_VALUE and to_bool(value, f"{where}.{key}")

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
        return arn_for(
            self.resources[logical_id]["Type"],
            self.physical_name(logical_id),
            partition=self.partition,
            region=self.region,
            account_id=self.account_id,
            generic=generic,
        )

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
                if stream is not NO_VALUE:
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
            if is_intrinsic(node) and "Condition" not in node:
                key, arg = next(iter(node.items()))
                return self._intrinsic(key, arg, where)
            out = {}
            for key, value in node.items():
                resolved = self.resolve(value, f"{where}.{key}")
                if resolved is not NO_VALUE:
                    out[key] = resolved
            return out
        if isinstance(node, list):
            items = (self.resolve(v, f"{where}[{i}]") for i, v in enumerate(node))
            return [v for v in items if v is not NO_VALUE]
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
            return self._string(self.resolve(delimiter, here), key, where).join(to_str(v) for v in values)
        if key == "Fn::Select":
            index, values = self._args(key, arg, 2, where)
            index = to_int(self.resolve(index, here), here)
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
            region = to_str(region) or self.region
            return [f"{region}{zone}" for zone in "abc"]
        if key == "Fn::ImportValue":
            name = self.resolve(arg, here)
            return self.placeholder(
                f"Fn::ImportValue:{to_str(name)}", "exports of other stacks are not local", where
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
                return to_str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                lid, _, attr = name.partition(".")
                return to_str(self.get_att(lid, attr, where))
            return to_str(self.ref(name, where))

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
