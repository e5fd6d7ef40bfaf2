"""The deployment artifacts as `sam build` makes them, and a function's cold import from them.

template.yaml builds the shared layer and every function with `BuildMethod: makefile`: the Makefiles ship
unchecked hash-based byte-code (PEP 552), which the Lambda runtime uses whatever the files' timestamps. A
deploy zip gives every file a 1980 timestamp and /var/task and /opt are read-only, so byte-code checked
against timestamps would be compiled again on every cold start. `deployed` copies artifacts as they land on
Lambda (zip timestamps, optionally without byte-code); `cold_import` imports a handler from such a copy in a
fresh interpreter, with the function's directory and its layers first on sys.path as /var/task and
/opt/python are, and the environment the template gives the function.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from local import stack as local_stack
from local.template.specs import LocalStack

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".aws-sam" / "build"
# Nothing listens here. The functions' environment names endpoints, and no AWS call happens at import.
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"
# The timestamp sam's deploy zips give every file (zipfile's default, 1980-01-01).
ZIP_EPOCH = 315532800
# What the Lambda Python runtime provides; a layer must not bundle boto3, botocore or s3transfer.
RUNTIME_PACKAGES = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3"})
RUNTIME_ONLY = ("boto3", "botocore", "s3transfer")
# Modules a handler should not import without need: X-Ray (Tracer's SDK), pydantic (Powertools' parser),
# the sender's HTTP client, the consumer's XML parser, and Powertools utilities the ingest does not use.
HEAVY = (
    "aws_xray_sdk",
    "pydantic",
    "requests",
    "defusedxml",
    "aws_lambda_powertools.tracing.tracer",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.data_classes",
)
# Powertools' own package __init__ imports the Tracer module (X-Ray itself stays unimported until a Tracer is
# created), so it comes with Logger and Metrics; every other heavy module stays off the ingest path.
UNAVOIDABLE = frozenset({"aws_lambda_powertools.tracing.tracer"})

_PROBE = """
import sys, time
roots = {roots!r}
compiled = []
def audit(event, args):
    if event == "compile" and isinstance(args[1], str) and args[1].startswith(roots):
        compiled.append(args[1])
    elif event in ("socket.connect", "socket.getaddrinfo"):
        raise RuntimeError(f"{{event}} {{args}} while importing the handler")
{audit}
sys.path[:0] = {paths!r}
before = set(sys.modules)
wall, cpu = time.perf_counter(), time.process_time()
import app
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
import json
files = {{name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}}
new = {{name: files[name] for name in files if name not in before}}
print(json.dumps({{"wall_s": wall, "cpu_s": cpu, "compiled": compiled, "modules": new}}))
"""
_IMPORT_TIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


@dataclass(frozen=True)
class Artifact:
    """One function as deployed: its code directory (/var/task), its layers' python/ (/opt/python)."""

    logical_id: str
    code: Path
    layers: tuple[Path, ...]
    environment: dict[str, str]

    @property
    def roots(self) -> tuple[Path, ...]:
        return (self.code, *self.layers)


@dataclass(frozen=True)
class ColdImport:
    wall_s: float
    cpu_s: float
    compiled: list[str]  # artifact source files compiled during the import (recorded when checked)
    modules: dict[str, str | None]  # module -> file, for every module the import loaded
    import_time: list[
        tuple[str, int, float, float]
    ]  # -X importtime rows: module, depth, self s, cumulative s
    roots: tuple[Path, ...]

    def from_artifact(self, name: str) -> bool:
        file = self.modules.get(name)
        return bool(file) and file.startswith(tuple(str(root) for root in self.roots))

    def heavy(self) -> list[str]:
        return [name for name in HEAVY if name in self.modules]

    def outside_lambda(self) -> list[str]:
        """Third-party packages loaded from this interpreter's site-packages that Lambda would not have."""
        site = (sysconfig.get_path("purelib"), sysconfig.get_path("platlib"))
        return sorted(
            {
                name.split(".")[0]
                for name, file in self.modules.items()
                if file and file.startswith(site) and name.split(".")[0] not in RUNTIME_PACKAGES
            }
        )

    def split_s(self) -> dict[str, float]:
        """Import time (self times) split into the artifact's modules, the handler module's body (which
        creates the AWS clients) and what the runtime provides (the standard library, boto3)."""
        parts = {"artifact_modules": 0.0, "handler_body": 0.0, "runtime_modules": 0.0}
        for name, _depth, self_s, _cumulative in self.import_time:
            if name == "app":
                parts["handler_body"] += self_s
            elif self.from_artifact(name):
                parts["artifact_modules"] += self_s
            else:
                parts["runtime_modules"] += self_s
        return parts


def load_stack() -> LocalStack:
    return local_stack.load_local_stack(UNREACHABLE_ENDPOINT)


def artifacts(build_dir: Path, stack: LocalStack) -> dict[str, Artifact]:
    """Each function of the template as laid out in `build_dir` (sam build's layout)."""
    aws = local_stack.aws_environment(UNREACHABLE_ENDPOINT, stack.region)
    return {
        lid: Artifact(
            lid,
            build_dir / lid,
            tuple(build_dir / layer.logical_id / "python" for layer in spec.layers),
            {**aws, **spec.environment},
        )
        for lid, spec in stack.functions().items()
    }


def built(build_dir: Path, stack: LocalStack) -> bool:
    return all(root.is_dir() for artifact in artifacts(build_dir, stack).values() for root in artifact.roots)


def build(build_dir: Path, stack: LocalStack, python: str = sys.executable) -> None:
    """Run the template's build Makefiles into `build_dir` as `sam build` does, without the SAM CLI."""
    targets = {}
    for lid, spec in stack.functions().items():
        targets[lid] = spec.code_uri
        targets.update({layer.logical_id: layer.content_uri for layer in spec.layers})
    for lid, source in targets.items():
        metadata = stack.resources[lid].metadata
        if metadata.get("BuildMethod") != "makefile":
            raise ValueError(f"{lid}: BuildMethod is {metadata.get('BuildMethod')!r}, not makefile")
        makefile = (ROOT / metadata["ContextPath"] if "ContextPath" in metadata else source) / "Makefile"
        target = build_dir / lid
        shutil.rmtree(target, ignore_errors=True)
        variables = [f"ARTIFACTS_DIR={target}", f"BUILD_PYTHON={python}"]
        make = ["make", "--no-print-directory", "--silent", "--makefile", str(makefile), f"build-{lid}"]
        subprocess.run([*make, *variables], cwd=source, check=True)


def deployed(artifact: Artifact, destination: Path, *, byte_code: bool = True) -> Artifact:
    """A copy of the artifact as Lambda extracts it: every file with the zip's 1980 timestamp; without
    `byte_code`, with no __pycache__ at all (what the default build amounts to on Lambda)."""
    ignore = None if byte_code else shutil.ignore_patterns("__pycache__")
    roots = []
    for root in artifact.roots:
        # sam build's layout: <FunctionId>/ and <LayerId>/python/
        copy = destination / (root.parent.name if root.name == "python" else "") / root.name
        shutil.copytree(root, copy, ignore=ignore, symlinks=True)
        for directory, _dirs, files in os.walk(copy):
            for name in files:
                os.utime(Path(directory) / name, (ZIP_EPOCH, ZIP_EPOCH))
        roots.append(copy)
    return Artifact(artifact.logical_id, roots[0], tuple(roots[1:]), artifact.environment)


def cold_import(artifact: Artifact, *, checked: bool = False) -> ColdImport:
    """Import the handler module in a fresh interpreter that writes no byte-code (Lambda's code directories
    are read-only), under -X importtime. `checked` adds an audit hook (left out of timed runs) that records
    every artifact source compiled and fails the import on any network call."""
    roots = tuple(str(root) for root in artifact.roots)
    script = _PROBE.format(roots=roots, paths=list(roots), audit="sys.addaudithook(audit)" if checked else "")
    env = {**os.environ, **artifact.environment, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"{artifact.logical_id}: importing the handler failed:\n{result.stderr[-4000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    rows = []
    for line in result.stderr.splitlines():
        match = _IMPORT_TIME.match(line)
        if match:
            rows.append((match[4], len(match[3]) // 2, int(match[1]) / 1e6, int(match[2]) / 1e6))
    return ColdImport(
        report["wall_s"], report["cpu_s"], report["compiled"], report["modules"], rows, artifact.roots
    )
