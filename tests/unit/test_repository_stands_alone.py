"""The repository stands alone: no tracked file refers to a path outside the checkout.

A fresh clone is all anyone has, so a test, benchmark, script or document that reads or links a folder beside
the repository (the provider's documents once sat in one) breaks or misleads there. Checked in every tracked
text file:

- names of places outside the checkout: a `shared` folder next to it, the checkout's parent taken from a
  root constant, an absolute machine path under the work folder, and the provider's reference document by
  its outside name (the reference in the repository is docs/provider-protocol.md);
- relative `../` chains that climb above the repository root from the file's own folder;
- in Python, a path taken from `__file__` with more parent steps than the file is deep, and `..` segments
  in path expressions (a path relative to the working directory, wherever that is);
- in Markdown, every relative link and image resolves inside the repository to a file or folder that exists.

The patterns below are written so that this file does not match them itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]

# (what the line refers to, pattern), for every tracked text file.
OUTSIDE_NAMES: list[tuple[str, re.Pattern[str]]] = [
    ("a shared folder beside the repository", re.compile(r"\.\.[/\\]shared\b")),
    ("a shared folder above a path", re.compile(r"""\bparents?(?:\[\s*\d+\s*\])?\s*/\s*["']shared["']""")),
    ("the parent of the repository root", re.compile(r"\bROOT\s*\.\s*parents?\b")),
    ("an absolute path on the machine the work was done on", re.compile(r"/work(?=/)")),
    ("the provider reference outside the repository", re.compile(r"\bAPI\.md\b")),
]
# A run of `../` steps that does not continue an earlier path segment (so `.../x` and `a/../b` are not it).
UPWARD = re.compile(r"(?<![\w.\-/\\])((?:\.\.[/\\])+)")
# Path(__file__)[.resolve()] followed by `.parents[N]` or by a chain of `.parent`.
FILE_PARENTS = re.compile(
    r"__file__\s*\)\s*(?:\.\s*(?:resolve|absolute)\(\s*\))?\s*\.\s*parents\s*\[\s*(\d+)\s*\]"
)
FILE_PARENT_CHAIN = re.compile(
    r"__file__\s*\)\s*(?:\.\s*(?:resolve|absolute)\(\s*\))?((?:\s*\.\s*parent\b(?!s))+)"
)
# `..` as a segment in a Python path expression: joined with `/`, given to Path(), or to os.path.join().
PY_DOTDOT = re.compile(r"""(?:/\s*|\bPath\(\s*|\bjoin\([^)\n]*?)[rbf]?["']\.\.(?:[/\\]|["'])""")
# Markdown links and images `[text](target "title")`, and reference definitions `[label]: target`.
MD_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
MD_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
MD_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
MD_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def tracked_files() -> list[str]:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    listed = subprocess.run(
        [git, "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True, timeout=60
    ).stdout
    return sorted(name for name in listed.decode("utf-8").split("\0") if name)


def text_of(name: str) -> str | None:
    """The file's text, or None for a binary file (or one removed from the working tree)."""
    path = ROOT / name
    if not path.is_file():
        return None
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def line_of(text: str, offset: int) -> tuple[int, str]:
    number = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return number, text[start : end if end != -1 else len(text)].strip()


def escapes(name: str, steps: int) -> bool:
    """Whether climbing `steps` folders from the folder that holds `name` leaves the repository."""
    return steps > len(PurePosixPath(name).parts) - 1


def markdown_without_code(text: str) -> str:
    """`text` with fenced blocks and code spans blanked out (same length, so offsets keep their lines)."""

    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return MD_CODE_SPAN.sub(blank, MD_FENCE.sub(blank, text))


def link_problem(name: str, target: str) -> str | None:
    """Why a Markdown link target in file `name` is not a path inside the repository, or None if it is."""
    if target.startswith("#") or SCHEME.match(target) or target.startswith("//"):
        return None  # an anchor on the same page, or a URL
    path = target.split("#", 1)[0].split("?", 1)[0]
    if not path:
        return None
    base = ROOT if path.startswith("/") else (ROOT / name).parent
    resolved = Path(os.path.normpath(base / path.lstrip("/")))
    if resolved != ROOT and ROOT not in resolved.parents:
        return f"link {target!r} leads outside the repository"
    if not resolved.exists():
        return f"link {target!r} names nothing in the repository"
    return None


def problems_in(name: str, text: str) -> list[str]:
    found = []

    def report(offset: int, why: str) -> None:
        number, line = line_of(text, offset)
        found.append(f"{name}:{number}: {why}: {line[:160]}")

    for why, pattern in OUTSIDE_NAMES:
        for match in pattern.finditer(text):
            report(match.start(), why)
    for match in UPWARD.finditer(text):
        steps = len(re.findall(r"\.\.[/\\]", match.group(1)))
        if escapes(name, steps):
            report(match.start(), f"{steps} steps up from {PurePosixPath(name).parent}/ leave the repository")
    if name.endswith(".py"):
        for match in FILE_PARENTS.finditer(text):
            if escapes(name, int(match.group(1))):  # parents[0] is the file's own folder
                report(match.start(), f"parents[{match.group(1)}] of this file is outside the repository")
        for match in FILE_PARENT_CHAIN.finditer(text):
            steps = match.group(1).count("parent")
            if escapes(name, steps - 1):  # the first .parent is the file's own folder
                report(match.start(), f"{steps} parents of this file are outside the repository")
        for match in PY_DOTDOT.finditer(text):
            report(match.start(), "a '..' segment in a path expression")
    if name.endswith(".md"):
        prose = markdown_without_code(text)
        for pattern in (MD_LINK, MD_REFERENCE):
            for match in pattern.finditer(prose):
                why = link_problem(name, match.group(1))
                if why:
                    report(match.start(1), why)
    return found


def test_no_tracked_file_refers_to_a_path_outside_the_repository():
    names = tracked_files()
    assert "tests/conftest.py" in names  # the listing is this repository's
    problems = []
    for name in names:
        text = text_of(name)
        if text is not None:
            problems += problems_in(name, text)
    assert problems == [], "\n" + "\n".join(problems)


# -- the checks themselves, on made-up lines -----------------------------------------------------------------

DOT2 = ".."  # written apart so that this file holds none of the lines it checks for


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("tests/unit/test_x.py", f'SAMPLES = Path("{DOT2}/shared/provider/samples")'),
        ("tests/unit/test_x.py", "SAMPLES = Path(__file__).resolve().par" + 'ents[3] / "shar' + 'ed" / "x"'),
        ("tests/conftest.py", "SAMPLES = ROOT.par" + 'ent / "shared"'),
        ("tests/conftest.py", "OTHER = ROOT.par" + 'ent / "elsewhere"'),
        ("bench/x.py", 'BODY = Path(__file__).parent.parent.parent / "x.xml"'),
        ("bench/x.py", 'BODY = Path(__file__).resolve().parents[2] / "x.xml"'),
        ("bench/x.py", f'BODY = ROOT / "{DOT2}" / "x.xml"'),
        ("bench/x.py", f'BODY = os.path.join(ROOT, "{DOT2}", "x.xml")'),
        ("Makefile", "\tcp /wo" + "rk/main/x y"),
        ("README.md", "See API" + ".md §3.2."),
        ("README.md", f"See [the samples]({DOT2}/samples/README.md)."),
        ("docs/x.md", f"See [the samples]({DOT2}/{DOT2}/samples/README.md)."),
        ("docs/x.md", "See [nothing](no-such-file.md)."),
        ("layers/mmsbridge/Makefile", f"\tcp {DOT2}/{DOT2}/{DOT2}/x ."),
    ],
)
def test_an_outside_reference_is_found(name, line):
    assert problems_in(name, line + "\n")


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("tests/conftest.py", "ROOT = Path(__file__).resolve().parent.parent"),
        ("tests/unit/test_x.py", 'EVENTS = Path(__file__).resolve().parents[2] / "events"'),
        ("tests/unit/test_x.py", 'CONTENT_URI = "layers/shared/"'),
        ("layers/mmsbridge/Makefile", f"\tcp {DOT2}/{DOT2}/template.yaml ."),
        (
            "docs/x.md",
            f"See [the README]({DOT2}/README.md#setup) and [the API](https://example.com/API" + ".mdx).",
        ),
        ("docs/x.md", "The reference is `docs/provider-protocol.md`; [above](#rules)."),
        ("docs/x.md", "```\n[not a link](nowhere.md)\n```"),
        ("local/simulator/__init__.py", "also `.../index.php` and a/b/c"),
        ("ops/x.py", 'if ".." in parts: raise ValueError("path traversal")'),
    ],
)
def test_a_reference_inside_the_repository_is_not_flagged(name, line):
    assert problems_in(name, line + "\n") == []
