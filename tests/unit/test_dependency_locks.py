"""The dependency locks (tests/locks.py): every package pinned by version with its files' hashes, each lock
holding what its hand-edited `.in` file asks for (`make lock`), the layer's leaving out what the Lambda
runtime provides, and every install going through a lock with --require-hashes.
tests/template/test_layer_lock.py checks the built layer against its lock.
"""

from __future__ import annotations

import re

import pytest
from packaging.utils import canonicalize_name

from tests.locks import (
    LAYER,
    LAYER_LOCK,
    LOCKS,
    ROOT,
    direct_requirements,
    lock_problems,
    read_lock,
    runtime_provided,
)


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_every_locked_package_is_pinned_with_hashes(name):
    _, lock = LOCKS[name]
    locked = read_lock(lock)
    assert locked, f"{lock.relative_to(ROOT)} locks nothing"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("requests==2.34.2\n", "no sha256 hash"),
        ("requests>=2.34 \\\n    --hash=sha256:" + "a" * 64 + "\n", "not pinned"),
        ("requests==2.* --hash=sha256:" + "a" * 64 + "\n", "not pinned"),
        ("requests --hash=sha256:" + "a" * 64 + "\n", "not pinned"),
        ("requests==2.34.2 --hash=md5:" + "a" * 32 + "\n", "options other than"),
        ("requests @ https://example.invalid/r.whl --hash=sha256:" + "a" * 64 + "\n", "not pinned"),
        ("--index-url https://example.invalid/simple\n", "an option"),
        ("-e ./somewhere\n", "an option"),
    ],
    ids=["no-hash", "range", "wildcard", "unpinned", "md5", "url", "index", "editable"],
)
def test_the_lock_check_refuses_an_unpinned_or_unhashed_line(text, problem):
    sound = "idna==3.20 \\\n    --hash=sha256:" + "b" * 64 + "\n    # via requests\n"
    locked, problems = lock_problems(sound + text)
    assert len(problems) == 1, problems
    assert problem in problems[0]
    assert "idna" in locked
    assert lock_problems(sound) == ({"idna": locked["idna"]}, [])


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_each_lock_holds_what_its_in_file_asks_for(name):
    """`make lock` was run after the last change to the .in file (a pin moved there reaches the lock)."""
    source, lock = LOCKS[name]
    locked = read_lock(lock)
    stale = []
    for requirement in direct_requirements(source):
        pinned = locked.get(canonicalize_name(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned.version, prereleases=True):
            stale.append(f"{requirement} (lock: {pinned.version if pinned else 'absent'})")
    assert not stale, f"{lock.relative_to(ROOT)} is stale, run `make lock`: {stale}"


def test_the_layer_lock_leaves_out_what_the_lambda_runtime_provides():
    provided = runtime_provided()
    assert {"boto3", "botocore", "s3transfer", "jmespath"} <= provided
    bundled = provided & set(read_lock(LAYER_LOCK))
    assert not bundled, (
        f"the Lambda runtime provides these; the layer must not bundle them: {sorted(bundled)}"
    )


def test_the_layer_lock_holds_every_runtime_dependency():
    locked = set(read_lock(LAYER_LOCK))
    expected = {
        "aws-lambda-powertools",
        "defusedxml",
        "phonenumberslite",
        "requests",
        "urllib3",
        "certifi",
        "idna",
        "charset-normalizer",
        "typing-extensions",
    }
    assert expected <= locked, sorted(expected - locked)


def test_the_development_environment_has_the_layers_versions():
    """The tests run the packages the layer ships, at the same versions and from the same files."""
    development = read_lock(ROOT / "requirements-dev.txt")
    differ = [
        f"{name}: layer {pinned.version}, dev {development[name].version if name in development else '-'}"
        for name, pinned in read_lock(LAYER_LOCK).items()
        if name not in development
        or development[name].version != pinned.version
        or not set(pinned.hashes) <= set(development[name].hashes)
    ]
    assert not differ, differ


def test_every_install_goes_through_a_hashed_lock():
    makefiles = [ROOT / "Makefile", LAYER / "Makefile", ROOT / "functions" / "Makefile"]
    text = {path: path.read_text() for path in makefiles}
    locked_install = re.search(r"^PIP_LOCKED\s*:=\s*(.+)$", text[ROOT / "Makefile"], re.MULTILINE)
    assert locked_install, "the Makefile defines no PIP_LOCKED"
    assert "--require-hashes" in locked_install.group(1).split()
    unlocked = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path, content in text.items()
        for line in content.replace("\\\n", " ").splitlines()
        if re.search(r"\bpip install\b", line)
        and not line.lstrip().startswith("#")
        and "--require-hashes" not in line
        and "$(PIP_LOCKED)" not in line
    ]
    assert not unlocked, unlocked
    layer_install = next(
        line
        for line in text[LAYER / "Makefile"].replace("\\\n", " ").splitlines()
        if "pip install" in line and not line.lstrip().startswith("#")
    )
    assert "--requirement requirements.txt" in layer_install
    assert "--no-deps" in layer_install, "nothing outside the lock may get into the layer"
