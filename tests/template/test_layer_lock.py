"""The shared layer as `sam build` made it (.aws-sam/build, by `make template-check` before the tests) against
its lock: exactly the locked packages at the locked versions, each one's dependencies bundled or provided by
the Lambda runtime, and nothing the runtime provides bundled."""

from __future__ import annotations

from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench import artifacts
from tests.locks import LAYER_LOCK, read_lock, runtime_provided

STACK = artifacts.load_stack()
LAYER = artifacts.BUILD_DIR / "SharedLayer" / "python"
# Where the layer runs: the python3.13 runtime on arm64 (template.yaml), for the dependencies' markers.
LAMBDA_MARKERS = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "implementation_version": "3.13.0",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "sys_platform": "linux",
    "os_name": "posix",
    "extra": "",
}

pytestmark = pytest.mark.skipif(
    not (artifacts.built(artifacts.BUILD_DIR, STACK) and LAYER.is_dir()),
    reason=f"no sam build output in {artifacts.BUILD_DIR}: `make template-check` (or `make test`) makes it",
)


def bundled() -> dict[str, tuple[str, Path]]:
    """The layer's distributions: canonical name -> (version, its .dist-info)."""
    found = {}
    for info in sorted(LAYER.glob("*.dist-info")):
        metadata = Parser().parsestr((info / "METADATA").read_text(encoding="utf-8"), headersonly=True)
        found[canonicalize_name(metadata["Name"])] = (metadata["Version"], info)
    return found


def test_the_layer_holds_exactly_the_locked_packages():
    locked = {name: pinned.version for name, pinned in read_lock(LAYER_LOCK).items()}
    installed = {name: version for name, (version, _) in bundled().items()}
    assert installed == locked, (
        f"not installed: {sorted(set(locked) - set(installed))}; not locked: "
        f"{sorted(set(installed) - set(locked))}; other versions: "
        f"{sorted(name for name in set(locked) & set(installed) if locked[name] != installed[name])}"
    )


def test_every_bundled_package_has_its_dependencies_on_lambda():
    """The build installs the lock with --no-deps: every dependency must be in the layer or the runtime."""
    layer = bundled()
    provided = runtime_provided()
    missing = []
    for name, (version, info) in layer.items():
        metadata = Parser().parsestr((info / "METADATA").read_text(encoding="utf-8"), headersonly=True)
        for line in metadata.get_all("Requires-Dist") or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(LAMBDA_MARKERS):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency in provided:
                continue
            if dependency not in layer:
                missing.append(f"{name} {version} needs {requirement}: not in the layer")
            elif not requirement.specifier.contains(layer[dependency][0], prereleases=True):
                missing.append(f"{name} {version} needs {requirement}: the layer has {layer[dependency][0]}")
    assert not missing, missing


def test_nothing_the_runtime_provides_is_bundled():
    provided = runtime_provided()
    shadowing = sorted(
        {name for name in bundled() if name in provided}
        | {path.name for path in LAYER.iterdir() if canonicalize_name(path.name) in provided}
    )
    assert not shadowing, f"the Lambda runtime provides these; a bundled copy would shadow it: {shadowing}"
