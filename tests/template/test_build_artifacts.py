"""`sam build`'s output (.aws-sam/build, made by `make template-check` before the tests): byte-code the Lambda
runtime uses as it is, no runtime-provided package bundled, handlers that import from the artifact alone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bench import artifacts

STACK = artifacts.load_stack()
ARTIFACTS = artifacts.artifacts(artifacts.BUILD_DIR, STACK)
FUNCTIONS = sorted(ARTIFACTS)
ROOTS = sorted({root for artifact in ARTIFACTS.values() for root in artifact.roots})
LAMBDA_CACHE_TAG = "cpython-313"  # the python3.13 runtime's
# PEP 552 flags in a .pyc header: bit 0 hash-based (else timestamp-checked), bit 1 check the source's hash.
HASH_BASED, CHECK_SOURCE = 0b01, 0b10
LAYERS = [root for root in ROOTS if root.name == "python"]

pytestmark = pytest.mark.skipif(
    not artifacts.built(artifacts.BUILD_DIR, STACK),
    reason=f"no sam build output in {artifacts.BUILD_DIR}: `make template-check` (or `make test`) makes it",
)


def sources(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)


@pytest.mark.parametrize(
    "root", ROOTS, ids=[root.relative_to(artifacts.BUILD_DIR).as_posix() for root in ROOTS]
)
def test_every_module_has_byte_code_valid_whatever_the_timestamps(root):
    modules = sources(root)
    assert modules, f"{root} holds no Python source"
    problems = []
    for source in modules:
        cached = source.parent / "__pycache__" / f"{source.stem}.{LAMBDA_CACHE_TAG}.pyc"
        if not cached.is_file():
            problems.append(f"{source}: no {cached.name}")
            continue
        header = cached.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        if header[:4] != importlib.util.MAGIC_NUMBER:
            problems.append(f"{cached}: byte-code for another Python version")
        elif flags != HASH_BASED:
            kind = "checked-hash" if flags & CHECK_SOURCE else "timestamp-checked"
            problems.append(f"{cached}: {kind} (flags {flags:#04b}), not unchecked-hash")
        elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
            problems.append(f"{cached}: compiled from another version of {source.name}")
    assert not problems, "\n".join(problems[:20])


def test_runtime_provided_packages_are_not_bundled():
    bundled = [
        f"{root}/{package}"
        for root in ROOTS
        for package in artifacts.RUNTIME_ONLY
        if (root / package).exists() or any(root.glob(f"{package}-*.dist-info"))
    ]
    assert not bundled, f"the Lambda runtime provides these; a bundled copy would shadow it: {bundled}"


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.parent.name for layer in LAYERS])
def test_the_layer_is_built_for_the_lambda_platform(layer):
    extensions = sorted(path.name for path in layer.rglob("*.so"))
    assert all("aarch64" in name for name in extensions), extensions
    assert not (layer / "bin").exists(), "console scripts from the build machine have no use on Lambda"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Each function as Lambda extracts it from the deploy zip: every file dated 1980."""
    where = tmp_path_factory.mktemp("deployed")
    return {lid: artifacts.deployed(ARTIFACTS[lid], where / lid) for lid in FUNCTIONS}


@pytest.mark.parametrize("lid", FUNCTIONS)
def test_handler_imports_from_byte_code_alone_after_the_zip_changed_every_timestamp(deployed, lid):
    artifact = deployed[lid]
    probe = artifacts.cold_import(artifact, checked=True)  # fails on any network call at import
    assert probe.compiled == [], f"compiled from source despite the byte-code: {probe.compiled[:10]}"
    for module in ("app", "mmsbridge", "aws_lambda_powertools"):
        assert probe.from_artifact(module), (
            f"{module} came from {probe.modules.get(module)}, not the artifact"
        )
    assert probe.outside_lambda() == [], "imported packages that neither the artifact nor Lambda provides"


def test_the_probe_sees_compilation_when_byte_code_is_unusable(tmp_path):
    stripped = artifacts.deployed(ARTIFACTS["StaleMessagesFunction"], tmp_path, byte_code=False)
    probe = artifacts.cold_import(stripped, checked=True)
    compiled = {Path(path).name for path in probe.compiled}
    assert {"app.py", "state_table.py", "logger.py"} <= compiled


def test_the_ingest_path_stays_lean(deployed):
    probe = artifacts.cold_import(deployed["IngestFunction"], checked=True)
    avoidable = [name for name in probe.heavy() if name not in artifacts.UNAVOIDABLE]
    assert avoidable == [], f"the ingest imports what it never uses: {avoidable}"
    assert "aws_xray_sdk" not in probe.modules
