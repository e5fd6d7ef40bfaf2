"""The local stack with a postback token: what `python -m local run` starts, with `PostbackToken` set.

`python -m local run` takes its parameters from samconfig.toml [local]; the token is a deploy-time secret
that file does not hold. This entry point starts the same stack from a samconfig of its own: the [local]
section's stack name and parameter overrides, plus the overrides it is given.

    python -m tests.hostile.local_stack --samconfig PATH --endpoints-file PATH --log-dir DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

from local import stack
from local.serve import until_stopped


def write_samconfig(path: Path, overrides: dict[str, str], *, source: Path = stack.SAMCONFIG) -> Path:
    """A samconfig with source's [local] deploy parameters and `overrides` added after them (they win)."""
    environment = tomllib.loads(source.read_text())["local"]
    section: dict = {}
    for command in ("global", "deploy"):  # deploy's values win, as in the SAM CLI
        section.update(environment.get(command, {}).get("parameters", {}))
    existing = section.get("parameter_overrides", [])
    items = existing if isinstance(existing, list) else [existing]
    items = [*items, *(f"{name}={value}" for name, value in overrides.items())]
    lines = [
        "version = 0.1",
        "[local.deploy.parameters]",
        f"stack_name = {json.dumps(section.get('stack_name', 'mmsbridge-local'))}",
        f"parameter_overrides = [{', '.join(json.dumps(item) for item in items)}]",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hostile.local_stack", description=__doc__)
    parser.add_argument("--samconfig", type=Path, required=True)
    parser.add_argument("--endpoints-file", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    running = stack.start(
        port=0,
        simulator_port=0,
        samconfig=args.samconfig,
        endpoints_file=args.endpoints_file,
        log_dir=args.log_dir,
    )
    print(f"postback URL:  {running.postback_url}/<token>", flush=True)
    try:
        until_stopped()
    finally:
        running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
