"""CPU of the retry wrapper around one model or tool call that succeeds at once.

    .venv/bin/python bench/bench_retry.py [--calls 20000] [--tree DIR]

`call_with_retries` with an attempt that returns at once, `--calls` times in one event loop:
the CPU per call is what the wrapper costs every call a run makes. `--tree` measures another
Ferry tree (e.g. a worktree of an earlier commit) for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path


async def measure(calls: int) -> float:
    from app.engine.retry import RetryPolicy, call_with_retries

    class NoDeadline:
        def remaining(self) -> float | None:
            return None

    async def attempt(number: int) -> int:
        return number

    async def sleeper(seconds: float, error: object, attempt: int) -> None:
        return None

    rng = random.Random(1)
    started = time.process_time()
    for _ in range(calls):
        await call_with_retries(attempt, policy=RetryPolicy(), deadline=NoDeadline(), rng=rng, sleeper=sleeper)  # type: ignore[arg-type]
    return (time.process_time() - started) / calls * 1e6


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree))
    for round_ in (1, 2):
        print(f"round {round_}: {asyncio.run(measure(args.calls)):.1f} µs CPU per call ({args.tree})")
