"""The dependency locks as the tests read them: each `requirements*.txt` made by `make lock` from its
hand-edited `requirements*.in`, every package pinned by version with the sha256 hashes of its files.

The layer's lock (layers/mmsbridge/requirements.txt) is what the Lambda layer bundles; the development,
SAM CLI, scanner and fuzzing locks (requirements-*.txt) are the environments `make setup` and `make fuzz`
build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "mmsbridge"
LAYER_LOCK = LAYER / "requirements.txt"
LOCKS = {
    "layer": (LAYER / "requirements.in", LAYER_LOCK),
    **{
        name: (ROOT / f"requirements-{name}.in", ROOT / f"requirements-{name}.txt")
        for name in ("dev", "sam", "scan", "fuzz")
    },
}
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")
COMMENT = re.compile(r"(?:^|\s)#.*$")


@dataclass(frozen=True)
class Locked:
    name: str  # canonical (PEP 503)
    version: str
    hashes: tuple[str, ...]
    line: str


def logical_lines(text: str) -> list[str]:
    """A requirements file's lines as pip reads them: comments dropped, `\\` continuations joined."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = COMMENT.sub("", raw).rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            lines.append(" ".join(current.split()))
        current = ""
    if current.strip():
        lines.append(" ".join(current.split()))
    return lines


def lock_problems(text: str) -> tuple[dict[str, Locked], list[str]]:
    """The locked packages, and each line that is not `name==version` with at least one sha256 hash."""
    locked: dict[str, Locked] = {}
    problems = []
    for line in logical_lines(text):
        requirement, _, options = line.partition(" --")
        options = ("--" + options).split() if options else []
        if line.startswith("-"):
            problems.append(f"{line}: an option, not a locked package")
            continue
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement as error:
            problems.append(f"{line}: {error}")
            continue
        specifiers = list(parsed.specifier)
        hashes = tuple(option for option in options if HASH.fullmatch(option))
        if (
            parsed.url
            or len(specifiers) != 1
            or specifiers[0].operator != "=="
            or "*" in specifiers[0].version
        ):
            problems.append(f"{requirement}: not pinned to one version (name==version)")
        elif len(hashes) != len(options):
            problems.append(f"{requirement}: options other than --hash=sha256:<hex> ({options})")
        elif not hashes:
            problems.append(f"{requirement}: no sha256 hash")
        else:
            name = canonicalize_name(parsed.name)
            if name in locked:
                problems.append(f"{requirement}: locked twice")
            locked[name] = Locked(name, specifiers[0].version, hashes, line)
    return locked, problems


def read_lock(path: Path) -> dict[str, Locked]:
    locked, problems = lock_problems(path.read_text())
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)
    return locked


def direct_requirements(path: Path) -> list[Requirement]:
    """The requirements an .in file names, following its `-r` includes (`-c` constraints are not its own)."""
    requirements = []
    for line in logical_lines(path.read_text()):
        if line.startswith(("-r ", "--requirement ")):
            requirements += direct_requirements(ROOT / line.split(maxsplit=1)[1])
        elif not line.startswith("-"):
            requirements.append(Requirement(line))
    return requirements


def runtime_provided() -> set[str]:
    """The packages the layer's Makefile leaves to the Lambda runtime."""
    match = re.search(r"^RUNTIME_PROVIDED\s*:=\s*(.+)$", (LAYER / "Makefile").read_text(), re.MULTILINE)
    assert match, "layers/mmsbridge/Makefile defines no RUNTIME_PROVIDED"
    return {canonicalize_name(name) for name in match.group(1).split()}
