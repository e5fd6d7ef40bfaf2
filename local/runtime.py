"""Runs a function's real handler in this process, the way the Lambda runtime would: the module imported
once with the function's environment (its cold start), then one invocation at a time per container."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

_ENVIRON_LOCK = threading.RLock()


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `values` on top, restored afterwards (imports read configuration from it)."""
    with _ENVIRON_LOCK:
        saved = dict(os.environ)
        os.environ.update(values)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: float
    region: str
    account_id: str
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.invoked_function_arn = (
            f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    """One function of the template, imported from its CodeUri with its environment."""

    def __init__(
        self,
        *,
        logical_id: str,
        name: str,
        code_uri: Path,
        handler: str,
        environment: Mapping[str, str],
        layer_paths: list[Path],
        memory_mb: int,
        timeout_s: float,
        region: str,
        account_id: str,
    ) -> None:
        self.logical_id = logical_id
        self.name = name
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.region = region
        self.account_id = account_id
        self.environment = {
            **environment,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        }
        self._lock = threading.Lock()
        for layer in layer_paths:
            if str(layer) not in sys.path:
                sys.path.append(str(layer))
        module_path, _, attribute = handler.rpartition(".")
        self.module = self._import(code_uri / (module_path.replace(".", "/") + ".py"))
        self._handler = getattr(self.module, attribute)

    def _import(self, path: Path) -> ModuleType:
        unique_name = f"_mmsbridge_function_{self.logical_id}"
        spec = importlib.util.spec_from_file_location(unique_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load the handler module {path}")
        module = importlib.util.module_from_spec(spec)
        with patched_environ(self.environment):
            sys.modules[unique_name] = module
            spec.loader.exec_module(module)
        return module

    def invoke(self, event: Any) -> Any:
        """One invocation; concurrent callers wait, as they would for a container."""
        with self._lock:
            context = LambdaContext(
                function_name=self.name,
                memory_limit_in_mb=self.memory_mb,
                timeout_s=self.timeout_s,
                region=self.region,
                account_id=self.account_id,
            )
            return self._handler(event, context)
