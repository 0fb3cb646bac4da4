"""The two model paths side by side: CPU per call and runs/s, direct OpenAI-protocol client vs litellm.

    .venv/bin/python bench/bench_model_paths.py [--runs 1000] [--concurrency 64] [--rounds 3]

One project, two agents answering in one LLM call: `direct` on `openai/sim-model` (the
direct path, as every model is with FERRY_LLM_BASE_URL set) and `via-litellm` on
`openai/sim-litellm`, which `ferry.yaml` sends to litellm (`api: litellm`). Both call
the LLM simulator (its own process, latency 0 ms, requests not recorded), so this
process's CPU time (`time.process_time`) is what Ferry and its model client spend.

Rows: the model client alone (`complete`, the engine's model interface) and a whole
`Engine.run` of one LLM call (request, spans, usage, cost, result), each at
`--concurrency` runs in flight and sequentially. Paths alternate in rounds after a
warm-up so that machine noise hits both alike; the table shows the median round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import Rule, TextReply, start_simulator_process
from app.engine import Engine, EngineSettings, LLMRequest
from app.engine.llm import LiteLLMClient, load_litellm
from app.engine.model import LLMClient
from app.engine.openai_compat import OpenAICompatClient
from app.project import load_project

AGENTS = {"direct": "openai/sim-model", "via-litellm": "openai/sim-litellm"}


def make_project(root: Path) -> Path:
    (root / "agents").mkdir()
    for name, model in AGENTS.items():
        (root / "agents" / f"{name}.yaml").write_text(
            f'version: "1.0"\nname: {name}\ndescription: bench\nmodel: {model}\n'
            "system_prompt: You are a benchmark agent.\n"
        )
    (root / "ferry.yaml").write_text("models:\n  openai/sim-litellm:\n    api: litellm\n")
    return root


async def measure(fn: Callable[[], Awaitable[None]], runs: int, concurrency: int) -> tuple[float, float]:
    """(CPU ms per run, runs/s) of `runs` calls of `fn`, `concurrency` at once."""
    remaining = runs

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await fn()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu0) * 1000 / runs, runs / (time.perf_counter() - wall0)


async def main(runs: int, concurrency: int, rounds: int) -> None:
    load_litellm()  # its import is not what is measured
    sim = start_simulator_process([Rule(reply=TextReply(text="hello there"))], extra_args=["--no-record"])
    with tempfile.TemporaryDirectory() as tmp:
        project = load_project(make_project(Path(tmp)))
        engine = Engine(project, settings=EngineSettings(llm_base_url=sim.base_url, llm_api_key="bench"))
        clients: dict[str, LLMClient] = {
            "direct": OpenAICompatClient.for_base_url(sim.base_url, "bench"),
            "via-litellm": LiteLLMClient(base_url=sim.base_url, api_key="bench"),
        }
        messages = [{"role": "system", "content": "You are a benchmark agent."}, {"role": "user", "content": "hi"}]

        def client_call(path: str) -> Callable[[], Awaitable[None]]:
            client, request = clients[path], LLMRequest(model=AGENTS[path], messages=messages, timeout=30)

            async def call() -> None:
                await client.complete(request)

            return call

        def engine_run(path: str) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                result = await engine.run(RunRequest.new(path, "hi"))
                assert result.status is RunStatus.COMPLETED, result.error

            return run

        try:
            table: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
            for kind, make in (("client", client_call), ("engine run", engine_run)):
                for path in AGENTS:
                    await measure(make(path), 200, concurrency)  # warm-up: connections, first-call costs
                for _ in range(rounds):
                    for conc in (concurrency, 1):
                        for path in AGENTS:
                            n = runs if conc > 1 else max(runs // 4, 50)
                            table.setdefault((kind, path, conc), []).append(await measure(make(path), n, conc))
        finally:
            await engine.aclose()
            for client in clients.values():
                close = getattr(client, "aclose", None)
                if close is not None:
                    await close()
            sim.stop()
    print(f"runs={runs} per round at concurrency {concurrency} (a quarter sequentially), rounds={rounds}, sim 0 ms")
    print(f"{'what':<11} {'path':<12} {'in flight':>9} {'CPU ms/run':>11} {'runs/s':>8}")
    for (kind, path, conc), rows in table.items():
        cpu, rate = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        print(f"{kind:<11} {path:<12} {conc:>9} {cpu:>11.3f} {rate:>8.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="runs per path, kind and round (concurrent)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.concurrency, args.rounds))
