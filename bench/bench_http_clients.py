"""Which async HTTP client costs least per chat-completion call: aiohttp, httpx, the `openai` SDK.

    .venv/bin/python bench/bench_http_clients.py [--calls 3000] [--in-flight 64] [--rounds 3]

Each client posts the same chat-completion request to the LLM simulator (its own
process, latency 0 ms, requests not recorded) with `--in-flight` calls at once on one
pooled client, and parses the JSON answer. What is measured is this process's CPU time
per call (`time.process_time`: the client's own work, since the server runs elsewhere)
and calls/s. Clients alternate in rounds after a warm-up so that machine noise hits
them alike; the table shows the median round of each.

This picks the transport of Ferry's direct OpenAI-protocol client
(`app/engine/openai_compat`), whose per-call CPU sets a worker's runs/s per core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.devstack.llm_sim import Rule, TextReply, start_simulator_process

BODY: dict[str, Any] = {
    "model": "sim-model",
    "messages": [
        {"role": "system", "content": "You are a benchmark agent."},
        {"role": "user", "content": "Say hello to the benchmark."},
    ],
}

Call = Callable[[], Awaitable[None]]


async def aiohttp_client(base_url: str, in_flight: int) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight), json_serialize=json.dumps)
    url = f"{base_url}/chat/completions"
    headers = {"Authorization": "Bearer bench"}

    async def call() -> None:
        async with session.post(url, json=BODY, headers=headers) as response:
            data = json.loads(await response.read())
            assert response.status == 200 and data["choices"][0]["message"]["content"]

    return call, session.close


async def httpx_client(base_url: str, in_flight: int) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import httpx

    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    client = httpx.AsyncClient(base_url=base_url, limits=limits, headers={"Authorization": "Bearer bench"})

    async def call() -> None:
        response = await client.post("/chat/completions", json=BODY)
        data = response.json()
        assert response.status_code == 200 and data["choices"][0]["message"]["content"]

    return call, client.aclose


async def openai_sdk_client(base_url: str, in_flight: int) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import httpx
    import openai

    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    client = openai.AsyncOpenAI(
        base_url=base_url, api_key="bench", max_retries=0, http_client=httpx.AsyncClient(limits=limits)
    )

    async def call() -> None:
        completion = await client.chat.completions.create(model=BODY["model"], messages=BODY["messages"])
        assert completion.choices[0].message.content

    return call, client.close


CLIENTS = {"aiohttp": aiohttp_client, "httpx": httpx_client, "openai-sdk": openai_sdk_client}


async def measure(call: Call, calls: int, in_flight: int) -> tuple[float, float]:
    """(client CPU ms per call, calls/s) of `calls` calls, `in_flight` at once."""
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu * 1000 / calls, calls / wall


async def main(calls: int, in_flight: int, rounds: int) -> None:
    sim = start_simulator_process([Rule(reply=TextReply(text="hello benchmark"))], extra_args=["--no-record"])
    try:
        built = {name: await make(sim.base_url, in_flight) for name, make in CLIENTS.items()}
        for call, _ in built.values():  # warm-up: connections open, first-call costs out of the numbers
            await measure(call, 300, in_flight)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in built}
        for _ in range(rounds):
            for name, (call, _) in built.items():
                results[name].append(await measure(call, calls, in_flight))
        for _, close in built.values():
            await close()
    finally:
        sim.stop()
    print(f"calls={calls} per round, rounds={rounds}, in flight={in_flight}, simulator latency 0 ms (own process)")
    print(f"{'client':<11} {'CPU ms/call':>12} {'calls/s':>9}   (median round; all rounds: CPU ms/call)")
    for name, rows in results.items():
        cpu = statistics.median(r[0] for r in rows)
        rate = statistics.median(r[1] for r in rows)
        print(f"{name:<11} {cpu:>12.3f} {rate:>9.0f}   {', '.join(f'{r[0]:.3f}' for r in rows)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="calls per client and round")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.in_flight, args.rounds))
