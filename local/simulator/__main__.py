"""`python -m local.simulator`: the provider simulator on its own, for manual use."""

from __future__ import annotations

import argparse
import json
import os
import sys

from local.serve import until_stopped
from local.simulator import PostbackSettings, ProviderFault, ProviderSimulator
from local.simulator.postbacks import DIALECTS, MMS_OUTCOMES, SMS_OUTCOMES, TEMPLATE_OUTCOMES

API_KEY_VARIABLE = "MMSBRIDGE_SIMULATOR_API_KEY"


def _outcome(choices: frozenset[str]) -> dict:
    return {"choices": [*sorted(choices), "none"], "type": str}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port (default 8089)")
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_VARIABLE), help=f"or ${API_KEY_VARIABLE}")
    parser.add_argument("--throughput", type=int, help="calls per second across all clients (default: none)")
    parser.add_argument("--throughput-per-action", action="store_true", help="count each action separately")
    parser.add_argument("--min-interval", type=float, help="seconds between two calls, E106 otherwise")
    parser.add_argument("--quota", type=int, help="API calls the account may make, E120 afterwards")
    parser.add_argument("--postback-url", help="where postbacks go (default: none are sent)")
    parser.add_argument("--mo-postback-url", help="separate URL for inbound SMS/MMS")
    parser.add_argument("--template", action="append", default=[], help="MMSID the account already has")
    parser.add_argument("--dialect", choices=DIALECTS, default="v1")
    parser.add_argument("--mms-outcome", default="N102", **_outcome(MMS_OUTCOMES))
    parser.add_argument("--sms-outcome", default="N202", **_outcome(SMS_OUTCOMES))
    parser.add_argument(
        "--status-text", help="STATUS of the outcome postback, e.g. 'Message Sent/Expired' on N102"
    )
    parser.add_argument("--template-outcome", default="N003", choices=sorted(TEMPLATE_OUTCOMES))
    parser.add_argument("--template-delay", type=float, default=1.0, help="seconds a template stays ENCODING")
    parser.add_argument("--retry-interval", type=float, default=300.0, help="postback retry interval (s)")
    parser.add_argument("--duplicates", type=int, default=1, help="send every postback this many times")
    parser.add_argument("--reverse-order", action="store_true", help="send the outcome before N101/N201")
    parser.add_argument(
        "--delay-first", type=float, default=0.0, help="hold N101/N201 until after the outcome"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        help='a provider fault as JSON (ProviderFault fields), e.g. \'{"kind": "answer", "code": "E503"}\'',
    )
    parser.add_argument("--seed", type=int, help="makes rate-based provider faults repeatable")
    parser.add_argument("--verbose", action="store_true", help="one line per HTTP request on stderr")
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error(f"an API key is required (--api-key or ${API_KEY_VARIABLE})")
    return args


def build(args: argparse.Namespace) -> ProviderSimulator:
    settings = PostbackSettings(
        dialect=args.dialect,
        mms_outcome=None if args.mms_outcome == "none" else args.mms_outcome,
        sms_outcome=None if args.sms_outcome == "none" else args.sms_outcome,
        status_text=args.status_text,
        template_outcome=args.template_outcome,
        template_delay_s=args.template_delay,
        retry_interval_s=args.retry_interval,
        duplicates=args.duplicates,
        reverse_order=args.reverse_order,
        delay_first_s=args.delay_first,
    )
    return ProviderSimulator(
        args.host,
        args.port,
        api_key=args.api_key,
        postback_url=args.postback_url,
        mo_postback_url=args.mo_postback_url,
        throughput_per_s=args.throughput,
        throughput_per_action=args.throughput_per_action,
        min_interval_s=args.min_interval,
        request_quota=args.quota,
        postbacks=settings,
        faults=[ProviderFault.from_json(json.loads(text)) for text in args.fault],
        seed=args.seed,
        templates=args.template,
        verbose=args.verbose,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        simulator = build(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with simulator:
        print(f"API URL:       {simulator.api_url}", flush=True)
        print(
            f"control:       {simulator.base_url}/_sim/ (log, stats, faults, config, inbound, reset)",
            flush=True,
        )
        print(f"postbacks to:  {simulator.postback_url or '(none)'}", flush=True)
        until_stopped()
    return 0


if __name__ == "__main__":
    sys.exit(main())
