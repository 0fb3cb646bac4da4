"""The Calfkit side of bench_peers.py; runs in Calfkit's own virtual environment, never imports app.

    <venv>/bin/python bench/peers_calfkit.py worker --broker B --agent NAME --base-url URL --cap 64
    <venv>/bin/python bench/peers_calfkit.py drive  --broker B --agent NAME --runs 300

`worker`: the smallest Calfkit agent doing one LLM call per request (OpenAI chat completions
against the simulator), `--cap` requests in flight, topics created by Calfkit's provisioning.
Prints "consuming" on stderr once started. `drive`: a Calfkit client sends a warm-up, then
prints "warm" and waits for a line on stdin (the bench reads the worker's CPU then), sends
`--runs` requests at once, and prints one JSON line: elapsed seconds and each run's
request→result latency in ms (from the send to the result read by the client); then waits
for `paced RATE COUNT` on stdin, sends COUNT requests on schedule at RATE/s and prints their
latencies the same way. Calfkit's worker keeps its own defaults (its INFO log per message
included); the driver's log is quieted. `--tools ONE,TWO` (multi-step workload): the agent
gets two tools, deployed as Calfkit `agent_tool` nodes in the same worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time

from calfkit import Agent, Client, OpenAIModelClient, ProvisioningConfig, Worker, agent_tool

SYSTEM = "Answer briefly."


def client(broker: str) -> Client:
    return Client.connect(broker, provisioning=ProvisioningConfig(enabled=True, num_partitions=1))


def step_one(text: str) -> str:
    """Step one: the text in upper case."""
    return text.upper()


def step_two(text: str) -> str:
    """Step two: the text reversed."""
    return text[::-1]


async def worker(args: argparse.Namespace) -> None:
    tools = []
    if args.tools:
        one, two = args.tools.split(",")
        tools = [agent_tool(step_one, name=one), agent_tool(step_two, name=two)]
    agent = Agent(
        name=args.agent,
        system_prompt=SYSTEM,
        model_client=OpenAIModelClient("sim-model", base_url=args.base_url, api_key="sim", timeout=30),
        tools=tools or None,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Worker(client(args.broker), nodes=[agent, *tools], max_workers=args.cap):
        print("consuming", file=sys.stderr, flush=True)
        await stop.wait()


async def drive(args: argparse.Namespace) -> None:
    logging.disable(logging.INFO)
    caller = client(args.broker)
    gateway = caller.agent(args.agent)

    async def one(i: int) -> float:
        sent = time.monotonic()
        result = await gateway.execute(f"run {i}", timeout=args.timeout)
        assert result.output, result
        return (time.monotonic() - sent) * 1000

    await asyncio.gather(*(one(i) for i in range(20)))  # warm-up: assignment, connections
    print("warm", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    t0 = time.monotonic()
    latencies = await asyncio.gather(*(one(i) for i in range(args.runs)))
    print(json.dumps({"elapsed_s": time.monotonic() - t0, "latencies_ms": latencies}), flush=True)
    _, rate, count = (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).split()

    async def on_time(i: int, start: float) -> float:
        await asyncio.sleep(max(0.0, start + i / float(rate) - time.monotonic()))
        return await one(i)

    start = time.monotonic()
    paced = await asyncio.gather(*(on_time(i, start) for i in range(int(count))))
    print(json.dumps({"elapsed_s": time.monotonic() - start, "latencies_ms": paced}), flush=True)
    await caller.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["worker", "drive"])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--base-url", default="")
    parser.add_argument("--cap", type=int, default=64)
    parser.add_argument("--tools", default="", help="ONE,TWO: names of the agent's two tools (multi-step)")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=300.0)
    parsed = parser.parse_args()
    asyncio.run(worker(parsed) if parsed.mode == "worker" else drive(parsed))
