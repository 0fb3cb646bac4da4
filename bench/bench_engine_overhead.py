"""Engine overhead per run: `Engine.run` vs calling litellm directly, same simulator, one process.

    .venv/bin/python bench/bench_engine_overhead.py [--runs 300] [--concurrency 50]

Both sides talk to the LLM simulator (its own process, so it does not compete for
this process's CPU) at zero latency, so the difference is
what Ferry adds around an LLM call: request building, retry/budget checks, spans,
usage and cost, result building. Scenarios:
- text:  one LLM call answering text  (engine run  vs  1 direct acompletion)
- tool:  LLM → tool → LLM             (engine run  vs  2 direct acompletions)
Each is measured sequentially (latency per run) and with N concurrent runs
(throughput). Measurements alternate between the two sides in blocks, after a warm-up,
so machine noise hits both alike. Under concurrency the median latency is mostly
queueing; compare the runs/s columns there.

A last table times the engine on the in-process fake model (`FunctionLLM`, an instant answer):
the CPU Ferry itself spends per run, free of HTTP and litellm noise.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import Match, Rule, TextReply, ToolCall, ToolCallsReply, start_simulator_process
from app.engine import Engine, EngineSettings, LLMRequest, LLMUsage
from app.engine.llm import load_litellm
from app.engine.testing import FunctionLLM, Reply, tool_call
from app.project import Project, load_project

MODEL = "openai/sim-model"


def make_project(root: Path) -> Path:
    (root / "agents").mkdir()
    (root / "tools").mkdir()
    (root / "tools" / "calc.py").write_text(
        textwrap.dedent('''
        def add(a: int, b: int) -> int:
            """Add two numbers."""
            return a + b
        ''')
    )
    for name, tools in (("text", ""), ("tool", "tools:\n  - calc.add\n")):
        (root / "agents" / f"{name}.yaml").write_text(
            f'version: "1.0"\nname: {name}\ndescription: bench\nmodel: {MODEL}\n'
            f"system_prompt: You are a benchmark agent.\n{tools}"
        )
    return root


async def timed(fn: Callable[[], Awaitable[Any]], runs: int, concurrency: int) -> list[float]:
    """Per-run latencies (ms) of `runs` calls, at most `concurrency` at once."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            start = time.perf_counter()
            await fn()
            latencies.append((time.perf_counter() - start) * 1000)

    await asyncio.gather(*(one() for _ in range(runs)))
    return latencies


async def main(runs: int, concurrency: int, blocks: int) -> None:
    litellm = load_litellm()
    rules = [
        Rule(match=Match(has_tool_result="add"), reply=TextReply(text="3")),
        Rule(
            match=Match(any_message_contains="add two"),
            reply=ToolCallsReply(calls=[ToolCall(name="add", arguments={"a": 1, "b": 2})]),
        ),
        Rule(reply=TextReply(text="hello there")),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        project = load_project(make_project(Path(tmp)))
        sim = start_simulator_process(rules)
        try:
            engine = Engine(project, settings=EngineSettings(llm_base_url=sim.base_url, llm_api_key="bench"))
            messages = [{"role": "system", "content": "You are a benchmark agent."}, {"role": "user", "content": "hi"}]
            tool_schema = [dict(t.schema) for t in project.agents["tool"].resolved_tools]

            async def direct(msgs: list[dict[str, Any]], tools: Any = None) -> Any:
                kwargs = {"tools": tools} if tools else {}
                return await litellm.acompletion(
                    model=MODEL,
                    api_base=sim.base_url,
                    api_key="bench",
                    messages=msgs,
                    timeout=30,
                    num_retries=0,
                    max_retries=0,
                    **kwargs,
                )

            async def direct_text() -> None:
                await direct(messages)

            async def direct_tool() -> None:
                first = await direct([messages[0], {"role": "user", "content": "please add two numbers"}], tool_schema)
                call = first.choices[0].message.tool_calls[0]
                await direct(
                    [
                        messages[0],
                        {"role": "user", "content": "please add two numbers"},
                        {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {
                                    "id": call.id,
                                    "type": "function",
                                    "function": {"name": "add", "arguments": call.function.arguments},
                                }
                            ],
                        },
                        {"role": "tool", "tool_call_id": call.id, "content": "3"},
                    ],
                    tool_schema,
                )

            async def engine_run(agent: str, text: str) -> None:
                result = await engine.run(RunRequest.new(agent, text))
                assert result.status is RunStatus.COMPLETED, result.error

            sides: dict[str, dict[str, Callable[[], Awaitable[None]]]] = {
                "text": {"direct": direct_text, "engine": lambda: engine_run("text", "hi")},
                "tool": {"direct": direct_tool, "engine": lambda: engine_run("tool", "please add two numbers")},
            }
            for fns in sides.values():  # warm-up: first-call costs out of the numbers
                for fn in fns.values():
                    await timed(fn, 20, 5)

            print(f"runs={runs} per side and mode, blocks={blocks}, concurrency={concurrency}, simulator latency 0 ms")
            print(
                f"{'scenario':<6} {'mode':<11} {'direct ms/run':>14} {'engine ms/run':>14} {'overhead ms':>12}"
                f" {'direct runs/s':>14} {'engine runs/s':>14}"
            )
            for scenario, fns in sides.items():
                for mode, conc in (("sequential", 1), (f"conc={concurrency}", concurrency)):
                    lat: dict[str, list[float]] = {"direct": [], "engine": []}
                    wall: dict[str, float] = {"direct": 0.0, "engine": 0.0}
                    for _ in range(blocks):
                        for side, fn in fns.items():
                            start = time.perf_counter()
                            lat[side] += await timed(fn, runs // blocks, conc)
                            wall[side] += time.perf_counter() - start
                    d, e = statistics.median(lat["direct"]), statistics.median(lat["engine"])
                    print(
                        f"{scenario:<6} {mode:<11} {d:>14.2f} {e:>14.2f} {e - d:>12.2f}"
                        f" {len(lat['direct']) / wall['direct']:>14.1f} {len(lat['engine']) / wall['engine']:>14.1f}"
                    )
            await engine.aclose()
            await stubbed(project, runs)
        finally:
            sim.stop()


async def stubbed(project: Project, runs: int) -> None:
    def answer(request: LLMRequest) -> Reply:
        if request.tools and not any(m.get("role") == "tool" for m in request.messages):
            return Reply(
                tool_calls=[tool_call("add", {"a": 1, "b": 2}, id="c1")],
                usage=LLMUsage(prompt_tokens=20, completion_tokens=5),
            )
        return Reply(text="3", usage=LLMUsage(prompt_tokens=20, completion_tokens=1))

    engine = Engine(project, llm=FunctionLLM(answer))
    print("\nengine alone, LLM client stubbed (Ferry's own CPU per run):")
    for agent, text in (("text", "hi"), ("tool", "please add two numbers")):
        for _ in range(50):
            await engine.run(RunRequest.new(agent, text))
        start = time.perf_counter()
        for _ in range(runs):
            result = await engine.run(RunRequest.new(agent, text))
            assert result.status is RunStatus.COMPLETED, result.error
        per_run = (time.perf_counter() - start) * 1000 / runs
        print(f"{agent:<6} {per_run:>8.3f} ms/run sequential")
    await engine.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="runs per side, scenario and mode")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=5, help="alternations between direct and engine")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.concurrency, args.blocks))
