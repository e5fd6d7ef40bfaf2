"""Runs a function's real handler in this process, the way the Lambda runtime would: each container is one
import of the handler module with the function's environment (its cold start), then serves one invocation
at a time. A function has up to `max_containers` containers, so that many invocations run in parallel."""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
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


@dataclass
class _Container:
    """One import of the handler module: its own module globals (clients, caches, cold-start flags)."""

    index: int  # creation order; the first container is 0
    module: ModuleType
    handler: Callable[[Any, Any], Any]


class LocalFunction:
    """One function of the template, imported from its CodeUri with its environment.

    Concurrent invocations run in parallel up to `max_containers`, each in a container of its own (a
    separate import of the module under a unique name); further callers wait for a free container (where
    Lambda would throttle them). The first container is imported at construction, so that a broken handler
    fails the load; the others when first needed. The layers' packages (`mmsbridge`) are ordinary imports,
    shared by all containers (in Lambda each container has its own copy).
    """

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
        max_containers: int = 1,
    ) -> None:
        if max_containers < 1:
            raise ValueError(f"{logical_id}: max_containers must be at least 1, got {max_containers}")
        self.logical_id = logical_id
        self.name = name
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.region = region
        self.account_id = account_id
        self.max_containers = max_containers
        self.environment = {
            **environment,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        }
        for layer in layer_paths:
            if str(layer) not in sys.path:
                sys.path.append(str(layer))
        module_path, _, self._attribute = handler.rpartition(".")
        self._path = code_uri / (module_path.replace(".", "/") + ".py")
        self._containers: list[_Container] = []
        self._idle: list[_Container] = []
        self._starting = 0  # containers being imported (they count towards max_containers)
        self._numbers = itertools.count()  # names each container's module uniquely
        self._available = threading.Condition()
        first = self._new_container(next(self._numbers))
        self._containers.append(first)
        self._idle.append(first)

    @property
    def module(self) -> ModuleType:
        """The first container's module (tests reach its clients through it)."""
        return self._containers[0].module

    @property
    def modules(self) -> list[ModuleType]:
        """Every container's module, in the order the containers were created."""
        with self._available:
            return [container.module for container in self._containers]

    def _new_container(self, number: int) -> _Container:
        """Import the handler module afresh (a cold start); `number` makes its module name unique."""
        unique_name = f"_mmsbridge_function_{self.logical_id}" + (f"_{number}" if number else "")
        spec = importlib.util.spec_from_file_location(unique_name, self._path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load the handler module {self._path}")
        module = importlib.util.module_from_spec(spec)
        # Handlers read their configuration at import time: import under the function's environment.
        with patched_environ(self.environment):
            sys.modules[unique_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(unique_name, None)
                raise
        return _Container(number, module, getattr(module, self._attribute))

    def _acquire(self) -> _Container:
        """A free container: the oldest idle one, else a new one below the maximum, else wait for one."""
        with self._available:
            while not self._idle and len(self._containers) + self._starting >= self.max_containers:
                self._available.wait()
            if self._idle:
                # Oldest first: serial callers always get the first container (`.module`).
                oldest = min(self._idle, key=lambda container: container.index)
                self._idle.remove(oldest)
                return oldest
            self._starting += 1
            number = next(self._numbers)
        try:
            container = self._new_container(number)  # outside the lock: an import takes a while
        except BaseException:
            with self._available:
                self._starting -= 1
                self._available.notify()
            raise
        with self._available:
            self._starting -= 1
            self._containers.append(container)
        return container

    def _release(self, container: _Container) -> None:
        with self._available:
            self._idle.append(container)
            self._available.notify()

    def invoke(self, event: Any) -> Any:
        """One invocation in a free container; beyond `max_containers` concurrent callers wait."""
        container = self._acquire()
        try:
            context = LambdaContext(
                function_name=self.name,
                memory_limit_in_mb=self.memory_mb,
                timeout_s=self.timeout_s,
                region=self.region,
                account_id=self.account_id,
            )
            # No lock held here: invocations of different containers run in parallel.
            return container.handler(event, context)
        finally:
            self._release(container)
