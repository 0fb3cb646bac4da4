"""`python -m app.devstack.llm_sim`: the simulator as a process for `ferry dev` and `make run`.

Prints the base URL (`http://127.0.0.1:<port>/v1`) as its first stdout line, then
serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from app.devstack.llm_sim.rules import Rule, parse_rules
from app.devstack.llm_sim.server import LLMSimulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.devstack.llm_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument("--rules", type=Path, help='JSON file: {"rules": [...]} or a bare list of rules')
    parser.add_argument("--latency-ms", type=int, default=0, help="global delay before every response")
    parser.add_argument("--no-record", action="store_true", help="do not keep request bodies (long benchmarks)")
    return parser


async def _serve(args: argparse.Namespace, rules: list[Rule]) -> None:
    simulator = LLMSimulator(
        rules, host=args.host, port=args.port, latency_ms=args.latency_ms, record_requests=not args.no_record
    )
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    async with simulator:
        print(simulator.base_url, flush=True)
        await stopped.wait()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        rules = parse_rules(args.rules.read_bytes()).rules if args.rules else []
    except (OSError, ValidationError) as exc:
        parser.error(f"--rules {args.rules}: {exc}")
    asyncio.run(_serve(args, rules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
