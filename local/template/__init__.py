"""template.yaml (and samconfig.toml's parameters) read into what the local stack creates and runs.

One module per step, each importing only the ones before it:

- :mod:`~local.template.load`: the files: the template's YAML with CloudFormation's short-form tags in
  long form, samconfig.toml's ``parameter_overrides``.
- :mod:`~local.template.names`: the physical name and the ARN each resource has locally.
- :mod:`~local.template.intrinsics`: Conditions, ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` and the other
  intrinsic functions evaluated against one stack; what is not known locally becomes a placeholder.
- :mod:`~local.template.specs`: the resolved stack (:class:`~local.template.specs.LocalStack`) and its
  typed views: queues, buckets, tables (and their streams), secrets, functions and their events (API,
  SQS, DynamoDB streams), REST APIs, event buses and rules.
- :mod:`~local.template.resolve`: ``load_stack``: parameters, SAM ``Globals``, then every resource and
  output resolved into a ``LocalStack``.

Nothing here talks to AWS or moto: stdlib and PyYAML.
"""


class TemplateError(ValueError):
    """The template, samconfig.toml or a parameter value is invalid (message names the place)."""
