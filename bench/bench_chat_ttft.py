"""What chat through Ferry adds to time-to-first-token, against calling the model directly.

    FERRY_BROKER=host:port .venv/bin/python bench/bench_chat_ttft.py [--messages 100] [--latency 0]

Processes: the LLM simulator (`--latency` ms before its first byte, then the answer
streamed in word-sized chunks), one `ferry worker`, and `ferry api` as a user starts them.
Both sides ask the same simulator for the same streamed answer, one message at a time:

- direct: the engine's OpenAI-protocol client in this process (`on_text`), timed from
  the call to its first text delta: the model's own time to first token;
- chat: a WebSocket message to `/v1/agents/{agent}/chat`, timed from `send` to the first
  `stream_chunk`: the API produces the request (acks=all), the worker consumes it, runs
  the agent, streams the model's first delta to the API's reply topic, the API forwards it.

The difference of the medians is what Ferry's path adds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

from app.devstack.llm_sim import Rule, TextReply, start_simulator_process  # noqa: E402
from app.engine.model import LLMRequest  # noqa: E402
from app.engine.openai_compat import OpenAICompatClient  # noqa: E402
from app.streams import TopicNames, apply_topics  # noqa: E402
from app.streams.topic_plan import plan_topics  # noqa: E402
from bench.bench_api import api_environment, start_api  # noqa: E402
from bench.bench_streams import AGENT, start_side, write_project  # noqa: E402

ANSWER = "Ferry streams this answer to the socket word by word as the model writes it"


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
        "max_ms": round(ordered[-1], 2),
    }


async def direct_ttft(base_url: str, count: int) -> list[float]:
    client = OpenAICompatClient.for_base_url(base_url, "bench")
    samples: list[float] = []
    try:
        for i in range(count):
            first = asyncio.get_running_loop().create_future()

            async def on_text(delta: str, first: asyncio.Future[float] = first) -> None:
                if not first.done():
                    first.set_result(time.perf_counter())

            started = time.perf_counter()
            await client.complete(
                LLMRequest(
                    model="openai/sim-model",
                    messages=[{"role": "user", "content": f"message {i}"}],
                    on_text=on_text,
                )
            )
            samples.append((first.result() - started) * 1000)
    finally:
        await client.aclose()
    return samples


async def chat_ttft(url: str, token: str, count: int) -> list[float]:
    samples: list[float] = []
    ws_url = url.replace("http://", "ws://") + f"/v1/agents/{AGENT}/chat"
    async with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        assert json.loads(await socket.recv())["type"] == "connected"
        for i in range(count):
            started = time.perf_counter()
            await socket.send(json.dumps({"type": "message", "id": str(i), "payload": {"message": f"message {i}"}}))
            first: float | None = None
            while True:
                event = json.loads(await socket.recv())
                if event["type"] == "stream_chunk" and first is None:
                    first = time.perf_counter()
                elif event["type"] == "stream_end":
                    if event["response"] != ANSWER:
                        raise RuntimeError(f"unexpected answer {event['response']!r}")
                    break
                elif event["type"] == "error":
                    raise RuntimeError(f"chat error: {event}")
            assert first is not None
            samples.append((first - started) * 1000)
    return samples


async def main(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench-chat-{uuid.uuid4().hex[:6]}."
    tmp = Path(tempfile.mkdtemp(prefix="ferry-bench-chat-"))
    project = write_project(tmp, 8)
    await apply_topics(args.broker, plan_topics(project, TopicNames(prefix)))
    env, token = api_environment(tmp)
    rules = [Rule(reply=TextReply(text=ANSWER), chunk_delay_ms=args.chunk_delay)]
    sim = start_simulator_process(rules, latency_ms=args.latency, extra_args=["--no-record"])
    worker = await start_side("ferry", tmp, args.broker, prefix, sim.base_url, 8)
    api, url = await start_api(tmp, args.broker, prefix, env)
    try:
        await chat_ttft(url, token, 10)  # warm: connections, the worker's assignment, first imports
        await direct_ttft(sim.base_url, 10)
        chat = await chat_ttft(url, token, args.messages)
        direct = await direct_ttft(sim.base_url, args.messages)
        added = statistics.median(chat) - statistics.median(direct)
        return {
            "messages": args.messages,
            "sim_first_byte_ms": args.latency,
            "direct": summary(direct),
            "chat": summary(chat),
            "added_p50_ms": round(added, 2),
            "load": os.getloadavg()[0],
        }
    finally:
        api.terminate()
        api.wait(30)
        worker.terminate()
        await worker.wait()
        sim.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default=os.environ.get("FERRY_BROKER"))
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--latency", type=int, default=0, help="simulator delay before its first byte, ms")
    parser.add_argument("--chunk-delay", type=int, default=5, help="simulator pause between chunks, ms")
    arguments = parser.parse_args()
    if not arguments.broker:
        sys.exit("set FERRY_BROKER or pass --broker")
    print(json.dumps(asyncio.run(main(arguments))))
