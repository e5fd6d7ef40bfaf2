"""`python -m local run`: the whole pipeline on this machine (what `make run` starts)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from local import stack
from local.serve import until_stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the local stack and serve until Ctrl-C")
    run.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=3000, help="API port (default 3000; 0 picks a free one)")
    run.add_argument("--moto-port", type=int, default=0, help="moto's port (default: a free one)")
    run.add_argument("--aws-endpoint-url", help="use this running AWS emulator instead of starting moto")
    run.add_argument(
        "--simulator-port",
        type=int,
        default=stack.DEFAULT_SIMULATOR_PORT,
        help=f"the provider simulator's port (default {stack.DEFAULT_SIMULATOR_PORT}; 0 picks a free one)",
    )
    run.add_argument(
        "--endpoints-file",
        type=Path,
        default=stack.DEFAULT_ENDPOINTS_FILE,
        help=f"where to write the live endpoints (default {stack.DEFAULT_ENDPOINTS_FILE})",
    )
    run.add_argument("--log-dir", type=Path, default=stack.ROOT / ".local" / "logs")
    args = parser.parse_args(argv)

    try:
        running = stack.start(
            host=args.host,
            port=args.port,
            moto_port=args.moto_port,
            aws_endpoint_url=args.aws_endpoint_url,
            endpoints_file=args.endpoints_file,
            log_dir=args.log_dir,
            simulator_port=args.simulator_port,
        )
    except stack.PortInUse as error:
        print(f"local: {error}", file=sys.stderr)
        return 2
    print(f"postback URL:  {running.postback_url}", flush=True)
    print(f"AWS endpoint:  {running.endpoint_url}", flush=True)
    if running.simulator:
        print(f"provider API:  {running.simulator.api_url} (simulator)", flush=True)
    print(f"endpoints:     {args.endpoints_file}", flush=True)
    try:
        until_stopped()
    finally:
        print("stopping the local stack", file=sys.stderr, flush=True)
        running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
